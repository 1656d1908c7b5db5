//! One crafted ATR per defect kind: the defect is reported with its
//! positions and values, and what could be decoded still is.

use super::super::*;
use super::h;

/// Append the correct TCK.
fn with_tck(text: &str) -> Vec<u8> {
    let mut b = h(text);
    let x = b.iter().skip(1).fold(0u8, |a, v| a ^ v);
    b.push(x);
    b
}

fn only(atr: &Atr) -> &Defect {
    assert_eq!(atr.defects().len(), 1, "{:#?}", atr.defects());
    &atr.defects()[0]
}

#[test]
fn empty() {
    let atr = parse(&[]);
    assert_eq!(atr.defects(), &[Defect::Empty]);
    assert!(atr.ts().is_none() && atr.t0().is_none());
    assert_eq!(atr.to_hex(), "");
    assert!(atr.describe().contains("empty"));
}

#[test]
fn invalid_ts() {
    let atr = parse(&h("3A 10 96"));
    assert_eq!(only(&atr), &Defect::InvalidTs { value: 0x3A });
    assert_eq!(atr.ts().map(|t| t.convention), Some(None));
    // The rest is still decoded.
    assert_eq!(atr.clock_rate().fi, Some(512));
    assert_eq!(atr.clock_rate().di, Some(32));
    let text = only(&atr).to_string();
    assert!(text.contains("3A") && text.contains("offset 0"), "{text}");
    // 03 is an unconverted inverse-convention TS.
    let atr = parse(&h("03 00"));
    assert!(only(&atr).to_string().contains("inverse"));
}

#[test]
fn missing_t0() {
    let atr = parse(&h("3B"));
    assert_eq!(only(&atr), &Defect::MissingT0);
    assert_eq!(atr.convention(), Some(Convention::Direct));
    assert_eq!(atr.tck_status(), &TckStatus::Undetermined);
}

#[test]
fn truncated_interface_bytes_level_1() {
    let atr = parse(&h("3B F0 96 00"));
    assert_eq!(
        only(&atr),
        &Defect::TruncatedInterfaceBytes {
            level: 1,
            byte: InterfaceByteKind::Tc,
            offset: 4,
            announced_by: "T0".into(),
            announcer_value: 0xF0,
        }
    );
    assert_eq!(atr.interface_byte(InterfaceByteKind::Ta, 1), Some(0x96));
    assert_eq!(atr.interface_byte(InterfaceByteKind::Tb, 1), Some(0x00));
    assert_eq!(atr.clock_rate().fi, Some(512));
    assert_eq!(atr.tck_status(), &TckStatus::Undetermined);
    let text = only(&atr).to_string();
    assert!(
        text.contains("TC1") && text.contains("T0 = F0") && text.contains("offset 4"),
        "{text}"
    );
}

#[test]
fn truncated_interface_bytes_level_2() {
    let atr = parse(&h("3B 80 91"));
    assert_eq!(
        only(&atr),
        &Defect::TruncatedInterfaceBytes {
            level: 2,
            byte: InterfaceByteKind::Ta,
            offset: 3,
            announced_by: "TD1".into(),
            announcer_value: 0x91,
        }
    );
    // TD1 is decoded: T=1 is offered. No separate missing-TCK defect.
    assert_eq!(atr.protocols().offered, vec![1]);
    assert!(atr.describe().contains("TA2"));
}

#[test]
fn historical_bytes_truncated() {
    let atr = parse(&h("3B 05 41 42"));
    assert_eq!(
        only(&atr),
        &Defect::HistoricalBytesTruncated {
            announced: 5,
            present: 2,
            offset: 2
        }
    );
    assert_eq!(atr.historical_bytes(), &[0x41, 0x42]);
    assert!(matches!(
        atr.historical(),
        Historical::Proprietary { category: 0x41, .. }
    ));
    let text = only(&atr).to_string();
    assert!(text.contains('5') && text.contains('2'), "{text}");
}

#[test]
fn missing_tck() {
    let atr = parse(&h("3B 81 01 41"));
    assert_eq!(only(&atr), &Defect::MissingTck { offset: 4 });
    assert_eq!(atr.tck_status(), &TckStatus::Missing);
    assert_eq!(atr.protocols().offered, vec![1]);
    assert_eq!(atr.t1_params().map(|t| t.ifsc), Some(32));
    assert!(only(&atr).to_string().contains("offset 4"));
}

#[test]
fn wrong_tck() {
    let atr = parse(&h(
        "3B DB 96 00 80 B1 FE 45 1F 83 00 12 23 3F 53 65 49 44 0F 90 00 F2",
    ));
    assert_eq!(
        only(&atr),
        &Defect::WrongTck {
            offset: 21,
            expected: 0xF1,
            found: 0xF2
        }
    );
    assert_eq!(
        atr.tck_status(),
        &TckStatus::Wrong {
            expected: 0xF1,
            found: 0xF2
        }
    );
    assert_eq!(atr.t1_params().map(|t| t.ifsc), Some(254));
    assert_eq!(atr.historical().objects().len(), 2);
    let text = only(&atr).to_string();
    assert!(
        text.contains("F1") && text.contains("F2") && text.contains("21"),
        "{text}"
    );
}

#[test]
fn trailing_bytes() {
    let atr = parse(&h("3B 02 14 50 90 00"));
    assert_eq!(
        only(&atr),
        &Defect::TrailingBytes {
            offset: 4,
            bytes: vec![0x90, 0x00],
            checksum_like: false
        }
    );
    assert_eq!(atr.historical_bytes(), &[0x14, 0x50]);
    assert_eq!(atr.trailing(), &[0x90, 0x00]);
    assert!(only(&atr).to_string().contains("90 00"));
    // A T=0-only card that sends a (correct) TCK anyway.
    let atr = parse(&with_tck("3B 02 14 50"));
    assert!(matches!(
        only(&atr),
        Defect::TrailingBytes {
            checksum_like: true,
            ..
        }
    ));
    assert!(only(&atr).to_string().contains("valid check byte"));
}

#[test]
fn too_long() {
    let mut bytes = h("3B 0F");
    bytes.extend(std::iter::repeat_n(0x41, 15 + 20));
    let atr = parse(&bytes);
    assert!(atr.defects().contains(&Defect::TooLong { length: 37 }));
    assert!(atr.defects().iter().any(
        |d| matches!(d, Defect::TrailingBytes { offset: 17, bytes, .. } if bytes.len() == 20)
    ));
    assert_eq!(atr.historical_bytes().len(), 15);
    // Too long by structure alone: four levels of TD plus 15 historical bytes and TCK.
    let bytes = with_tck("3B FF 11 00 00 F1 00 00 00 F1 00 00 00 F1 00 00 00 01 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41");
    let atr = parse(&bytes);
    assert_eq!(only(&atr), &Defect::TooLong { length: 34 });
    assert!(only(&atr).to_string().contains("34"));
}

#[test]
fn t15_in_td1() {
    let atr = parse(&with_tck("3B 80 0F"));
    assert_eq!(only(&atr), &Defect::T15InTd1 { offset: 2 });
    assert!(atr.protocols().global_t15);
    assert!(atr.protocols().implicit_t0);
    assert!(atr.t15_params().is_some());
}

#[test]
fn malformed_compact_tlv_overrun() {
    let atr = parse(&h("3B 05 80 31 C0 35 01"));
    assert_eq!(
        only(&atr),
        &Defect::MalformedCompactTlv {
            offset: 5,
            reason: TlvProblem::LengthOverrun {
                tag: 3,
                declared: 5,
                available: 1
            }
        }
    );
    // The object before the malformation is decoded.
    let objects = atr.historical().objects();
    assert_eq!(objects.len(), 1);
    assert!(matches!(objects[0].content, TlvContent::CardServiceData(_)));
    match atr.historical() {
        Historical::CompactTlv { undecoded, .. } => assert_eq!(undecoded, &vec![0x35, 0x01]),
        other => panic!("unexpected {other:?}"),
    }
    assert!(atr
        .layout()
        .iter()
        .any(|n| n.role == ByteRole::Undecoded && n.offset == 5));
    let text = only(&atr).to_string();
    assert!(
        text.contains("offset 5") && text.contains("announces 5"),
        "{text}"
    );
}

#[test]
fn malformed_compact_tlv_other_reasons() {
    let atr = parse(&h("3B 02 00 90"));
    assert_eq!(
        only(&atr),
        &Defect::MalformedCompactTlv {
            offset: 3,
            reason: TlvProblem::MissingStatusIndicator { available: 1 }
        }
    );
    let atr = parse(&h("3B 01 10"));
    assert_eq!(
        only(&atr),
        &Defect::MalformedCompactTlv {
            offset: 2,
            reason: TlvProblem::MissingDirReference
        }
    );
    let atr = parse(&h("3B 02 80 30"));
    assert_eq!(
        only(&atr),
        &Defect::MalformedCompactTlv {
            offset: 3,
            reason: TlvProblem::UnexpectedLength {
                tag: 3,
                length: 0,
                allowed: "1"
            }
        }
    );
}

#[test]
fn defects_serialize_with_kind() {
    let atr = parse(&h("3B 81 01 41"));
    let v = serde_json::to_value(atr.defects()).expect("serialize");
    assert_eq!(v[0]["kind"], "missing_tck");
    assert_eq!(v[0]["offset"], 4);
    assert_eq!(atr.defects()[0].kind(), "missing_tck");
    let s = atr.summary();
    assert!(!s.well_formed);
    assert_eq!(s.defects.len(), 1);
}
