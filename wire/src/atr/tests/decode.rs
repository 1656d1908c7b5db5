//! Real-world ATRs decoded field by field.

use super::super::*;
use super::h;

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 0.01)
}

/// Gemalto IDPrime .NET: T=0 only (implicit), TA1 only, no TCK.
#[test]
fn t0_only_without_tck() {
    let atr = parse(&h("3B 16 96 41 73 74 72 69 64"));
    assert!(atr.is_well_formed(), "{:?}", atr.defects());
    assert_eq!(atr.convention(), Some(Convention::Direct));
    let t0 = atr.t0().expect("T0");
    assert_eq!((t0.y1, t0.k), (0x1, 6));
    assert_eq!(atr.groups().len(), 1);
    assert_eq!(atr.interface_byte(InterfaceByteKind::Ta, 1), Some(0x96));
    let p = atr.protocols();
    assert_eq!(p.offered, vec![0]);
    assert!(p.implicit_t0 && !p.tck_required && !p.global_t15);
    let c = atr.clock_rate();
    assert_eq!((c.fi, c.f_max_khz, c.di), (Some(512), Some(5000), Some(32)));
    assert_eq!(c.f_max_mhz, Some(5.0));
    assert!(close(c.baud_at_f_max, 312_500.0));
    assert!(close(c.etu_us_at_f_max, 3.2));
    assert!(!c.rfu);
    assert_eq!(atr.tck(), None);
    assert_eq!(atr.tck_status(), &TckStatus::AbsentAsAllowed);
    assert_eq!(
        atr.historical(),
        &Historical::Proprietary {
            category: 0x41,
            data: b"Astrid".to_vec()
        }
    );
    let t0p = atr.t0_params().expect("T=0 params");
    assert_eq!(t0p.wi, 10);
    assert_eq!(t0p.wt_clock_cycles, Some(10 * 960 * 512));
    assert!(atr.t1_params().is_none());
    assert_eq!(atr.to_hex(), "3B 16 96 41 73 74 72 69 64");
}

/// Estonian ID card: T=0 and T=1, T=15 global bytes, category 00 with status indicator.
#[test]
fn t1_with_tck_t15_and_category_00() {
    let atr = parse(&h(
        "3B DB 96 00 80 B1 FE 45 1F 83 00 12 23 3F 53 65 49 44 0F 90 00 F1",
    ));
    assert!(atr.is_well_formed(), "{:?}", atr.defects());
    let p = atr.protocols();
    assert_eq!(p.offered, vec![0, 1]);
    assert_eq!(p.default_protocol, 0);
    assert!(p.global_t15 && p.tck_required && !p.implicit_t0);
    let levels: Vec<(usize, Option<u8>)> =
        atr.groups().iter().map(|g| (g.level, g.protocol)).collect();
    assert_eq!(
        levels,
        vec![(1, None), (2, Some(0)), (3, Some(1)), (4, Some(15))]
    );
    assert_eq!(atr.interface_byte(InterfaceByteKind::Tc, 1), Some(0x00));
    assert_eq!(atr.extra_guard_time().guard_time_t0_etu, 12);
    let t1 = atr.t1_params().expect("T=1");
    assert_eq!((t1.ifsc, t1.bwi, t1.cwi), (254, 4, 5));
    assert_eq!(t1.cwt_etu, 11 + 32);
    assert_eq!(t1.error_detection, ErrorDetection::Lrc);
    assert_eq!(t1.tc, None);
    let t15 = atr.t15_params().expect("T=15");
    assert_eq!(t15.clock_stop, Some(ClockStop::StateH));
    assert_eq!(t15.classes, vec![VoltageClass::A, VoltageClass::B]);
    assert_eq!(atr.tck(), Some(0xF1));
    assert_eq!(atr.tck_status(), &TckStatus::Valid { value: 0xF1 });
    match atr.historical() {
        Historical::CompactTlv {
            category,
            objects,
            status,
            undecoded,
        } => {
            assert_eq!(*category, 0x00);
            assert!(undecoded.is_empty());
            assert_eq!(objects.len(), 2);
            assert_eq!(
                objects[0].content,
                TlvContent::CountryCode {
                    code: Some("233".into())
                }
            );
            assert_eq!(objects[0].offset, 11);
            assert_eq!(objects[1].tag, 5);
            assert_eq!(objects[1].value, b"eID".to_vec());
            assert_eq!(
                status,
                &Some(StatusIndicator {
                    lcs: Some(0x0F),
                    sw: Some(0x9000)
                })
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(StatusIndicator::lcs_meaning(0x0F), "termination state");
}

/// YubiKey 5 NFC: T=1 only, category 80 with card capabilities.
#[test]
fn javacard_with_card_capabilities() {
    let atr = parse(&h(
        "3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40",
    ));
    assert!(atr.is_well_formed(), "{:?}", atr.defects());
    assert_eq!(atr.protocols().offered, vec![1]);
    let c = atr.clock_rate();
    assert_eq!((c.fi, c.di), (Some(372), Some(4)));
    assert!(close(c.baud_at_f_max, 5_000_000.0 * 4.0 / 372.0));
    assert!(atr.t0_params().is_none());
    let t1 = atr.t1_params().expect("T=1");
    assert_eq!((t1.ifsc, t1.bwi, t1.cwi), (254, 1, 5));
    let vpp = atr.legacy_vpp().expect("TB1");
    assert!(!vpp.connected);
    let caps = atr.card_capabilities().expect("capabilities");
    assert!(caps.command_chaining);
    assert!(caps.extended_lc_le);
    assert_eq!(caps.logical_channels, 1);
    let sel = caps.selection.as_ref().expect("table 1");
    assert!(sel.by_full_df_name && sel.by_partial_df_name && !sel.by_path && !sel.short_ef_id);
    let dc = caps.data_coding.as_ref().expect("table 2");
    assert_eq!(dc.write_behaviour, WriteBehaviour::Proprietary);
    assert_eq!(dc.data_unit_quartets, 2);
    assert!(!dc.tlv_efs && !dc.ff_tag_valid);
    let objects = atr.historical().objects();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[1].content, TlvContent::CardIssuerData);
    assert_eq!(objects[1].value, b"YubiKey".to_vec());
    assert!(atr.status_indicator().is_none());
    assert_eq!(atr.tck_status(), &TckStatus::Valid { value: 0x40 });
}

/// JCOP-style category 00: card capabilities with logical channels, then LCS + SW.
#[test]
fn category_00_with_capabilities_and_status() {
    let atr = parse(&h("3B F8 18 00 00 81 31 FE 45 00 73 C8 40 13 00 90 00 93"));
    assert!(atr.is_well_formed(), "{:?}", atr.defects());
    let c = atr.clock_rate();
    assert_eq!((c.fi, c.di), (Some(372), Some(12)));
    assert!(close(c.baud_at_f_max, 161_290.32));
    let caps = atr.card_capabilities().expect("capabilities");
    assert!(!caps.command_chaining && !caps.extended_lc_le);
    assert_eq!(caps.logical_channels, 4);
    let third = caps.third.as_ref().expect("table 3");
    assert!(third.channels_assigned_by_card && !third.channels_assigned_by_ifd);
    let sel = caps.selection.as_ref().expect("table 1");
    assert!(sel.by_full_df_name && sel.by_partial_df_name && sel.implicit && !sel.by_file_id);
    assert_eq!(
        caps.data_coding
            .as_ref()
            .map(|d| (d.write_behaviour, d.data_unit_quartets)),
        Some((WriteBehaviour::WriteOr, 1))
    );
    assert_eq!(
        atr.status_indicator(),
        Some(&StatusIndicator {
            lcs: Some(0),
            sw: Some(0x9000)
        })
    );
    let t1 = atr.t1_params().expect("T=1");
    assert_eq!((t1.ifsc, t1.bwi, t1.cwi), (254, 4, 5));
}

/// GSM SIM in inverse convention: TB1 = 00, proprietary historical bytes.
#[test]
fn inverse_convention() {
    let atr = parse(&h("3F 2F 00 36 AF 69 02 04 01 80 00 00 0A 0E 83 3E 9F 16"));
    assert!(atr.is_well_formed(), "{:?}", atr.defects());
    assert_eq!(atr.convention(), Some(Convention::Inverse));
    assert_eq!(atr.ts().map(|t| t.value), Some(0x3F));
    assert_eq!(atr.interface_byte(InterfaceByteKind::Tb, 1), Some(0));
    assert_eq!(atr.historical_bytes().len(), 15);
    assert!(matches!(
        atr.historical(),
        Historical::Proprietary { category: 0x36, .. }
    ));
    assert_eq!(atr.protocols().offered, vec![0]);
    assert!(atr.describe().contains("inverse convention"));
}

/// NXP SAM: TC1 = 255, T=1 with TC3 (LRC), T=15 with class indicator and SPU.
#[test]
fn sam_with_minimum_guard_time_and_t15() {
    let atr = parse(&h(
        "3B DE 18 FF 81 F1 FE 43 00 3F 07 83 44 45 53 46 69 72 65 38 20 53 41 4D 2D 58 17",
    ));
    assert!(atr.is_well_formed(), "{:?}", atr.defects());
    let g = atr.extra_guard_time();
    assert!(g.minimum);
    assert_eq!(
        (g.n, g.guard_time_t0_etu, g.guard_time_t1_etu),
        (255, 12, 11)
    );
    let t1 = atr.t1_params().expect("T=1");
    assert_eq!((t1.ifsc, t1.bwi, t1.cwi, t1.tc), (254, 4, 3, Some(0)));
    assert_eq!(t1.error_detection, ErrorDetection::Lrc);
    let t15 = atr.t15_params().expect("T=15");
    assert_eq!(t15.clock_stop, Some(ClockStop::NotSupported));
    assert_eq!(
        t15.classes,
        vec![VoltageClass::A, VoltageClass::B, VoltageClass::C]
    );
    assert_eq!(t15.spu, Some(0x83));
    assert!(atr.describe().contains("minimum guard time"));
}

/// Specific mode: TA2 = 81 (T=1, cannot change, parameters from TA1).
#[test]
fn specific_mode_ta2() {
    let atr = parse(&h(
        "3B FE 91 00 FF 91 81 71 FE 40 00 41 28 00 01 80 81 00 73 C8 40 00 00 90 00 4D",
    ));
    assert!(atr.is_well_formed(), "{:?}", atr.defects());
    let sm = atr.specific_mode().expect("TA2");
    assert_eq!(sm.protocol, 1);
    assert!(!sm.can_change_mode && !sm.implicit_parameters && !sm.rfu_bits_set);
    let c = atr.clock_rate();
    assert_eq!((c.fi, c.di), (Some(512), Some(1)));
    assert!(close(c.baud_at_f_max, 9765.625));
    let t1 = atr.t1_params().expect("T=1");
    assert_eq!((t1.ifsc, t1.bwi, t1.cwi), (254, 4, 0));
    assert_eq!(atr.summary().specific_mode_protocol, Some(1));
}

/// PC/SC Part 3 synthesized ATR of a MIFARE Classic 1K.
#[test]
fn pcsc_storage_card() {
    let atr = parse(&h(
        "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A",
    ));
    assert!(atr.is_well_formed(), "{:?}", atr.defects());
    match atr.historical() {
        Historical::PcscStorageCard(c) => {
            assert_eq!(c.standard, Some(3));
            assert_eq!(c.card_name, Some(1));
            assert_eq!(c.card_name_text.as_deref(), Some("MIFARE Classic 1K"));
            assert_eq!(c.rfu, vec![0, 0, 0, 0]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(atr.protocols().offered, vec![0, 1]);
    let t1 = atr.t1_params().expect("T=1");
    assert_eq!((t1.ifsc, t1.bwi, t1.cwi), (32, 4, 13));
}

/// Default TA1 and RFU codes.
#[test]
fn clock_rate_defaults_and_rfu() {
    let d = ClockRate::from_ta1(None);
    assert_eq!(
        (d.code, d.fi, d.f_max_khz, d.di),
        (0x11, Some(372), Some(5000), Some(1))
    );
    assert!(close(d.baud_at_f_max, 13_440.86));
    // FI = 7 and DI = 0 are RFU: flagged, no baud rate, not a defect.
    let atr = parse(&h("3B 10 70"));
    assert!(atr.is_well_formed(), "{:?}", atr.defects());
    let c = atr.clock_rate();
    assert!(c.rfu);
    assert_eq!((c.fi, c.di, c.baud_at_f_max), (None, None, None));
    assert!(atr.describe().contains("RFU"));
    // f(max) 7.5 MHz.
    let c = ClockRate::from_ta1(Some(0xA1));
    assert_eq!((c.fi, c.f_max_mhz), (Some(768), Some(7.5)));
}

/// Every byte has a note; describe mentions each level; serde works.
#[test]
fn layout_describe_and_serde() {
    let bytes = h("3B DB 96 00 80 B1 FE 45 1F 83 00 12 23 3F 53 65 49 44 0F 90 00 F1");
    let atr = parse(&bytes);
    let offsets: Vec<usize> = atr.layout().iter().map(|n| n.offset).collect();
    assert_eq!(offsets, (0..bytes.len()).collect::<Vec<_>>());
    let names: Vec<&str> = atr.layout().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        &names[..10],
        &["TS", "T0", "TA1", "TC1", "TD1", "TD2", "TA3", "TB3", "TD3", "TA4"]
    );
    assert_eq!(names.last(), Some(&"TCK"));
    let text = atr.describe();
    for needle in [
        "Level 1",
        "Level 2",
        "Level 3",
        "Level 4",
        "IFSC = 254",
        "country code 233",
        "TCK: valid (F1)",
        "Defects: none",
        "312500 bit/s",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let json = serde_json::to_value(&atr).expect("serialize");
    assert_eq!(json["protocols"]["offered"], serde_json::json!([0, 1]));
    assert_eq!(json["tck_status"]["status"], "valid");
    assert_eq!(json["historical"]["format"], "compact_tlv");
    let summary = serde_json::to_value(atr.summary()).expect("serialize summary");
    assert_eq!(summary["ifsc"], 254);
    assert_eq!(summary["well_formed"], true);
    assert_eq!(summary["fi"], 512);
}

/// Card service data bits.
#[test]
fn card_service_data() {
    // Built by hand: T=0 and T=1, category 80, card service data E0,
    // card capabilities FE 21 17 (8 or more logical channels), then TCK.
    let mut bytes = h("3B 87 80 01 80 31 E0 73 FE 21 17");
    let tck = bytes.iter().skip(1).fold(0u8, |a, b| a ^ b);
    bytes.push(tck);
    let atr = parse(&bytes);
    assert!(atr.is_well_formed(), "{:?}", atr.defects());
    let objects = atr.historical().objects();
    match &objects[0].content {
        TlvContent::CardServiceData(s) => {
            assert!(s.select_by_full_df_name && s.select_by_partial_df_name && s.bertlv_in_ef_dir);
            assert!(!s.bertlv_in_ef_atr);
            assert_eq!(s.ef_access, EfAccess::ReadRecord);
            assert!(s.has_mf);
        }
        other => panic!("unexpected {other:?}"),
    }
    let caps = atr.card_capabilities().expect("capabilities");
    assert_eq!(caps.logical_channels, 8);
    assert!(!caps.command_chaining);
    assert!(caps
        .selection
        .as_ref()
        .is_some_and(|s| s.short_ef_id && s.record_number && !s.record_identifier));
}
