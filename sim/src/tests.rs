//! Unit tests of the simulated card, driven by hex APDUs exactly as a host
//! would send them (plus a few looks at the persistent state).

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::apdu::Le;
use super::card::{LeRule, Resp};
use super::*;
use std::path::Path;

// ---------------------------------------------------------------- helpers

pub(super) fn h(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len().is_multiple_of(2), "odd hex: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(super) fn hx(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Send a hex APDU, return the hex response.
pub(super) fn tx(c: &mut SimCard, apdu: &str) -> String {
    hx(&c.transmit(&h(apdu)))
}

pub(super) fn sw_of(r: &[u8]) -> u16 {
    assert!(r.len() >= 2);
    u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]])
}

/// Send a hex APDU and return SW1SW2.
fn sw(c: &mut SimCard, apdu: &str) -> u16 {
    sw_of(&c.transmit(&h(apdu)))
}

/// Send raw bytes, expect 9000, return the data.
pub(super) fn ok_raw(c: &mut SimCard, apdu: &[u8]) -> Vec<u8> {
    let r = c.transmit(apdu);
    assert_eq!(sw_of(&r), 0x9000, "APDU {} → {}", hx(apdu), hx(&r));
    r[..r.len() - 2].to_vec()
}

pub(super) fn ok(c: &mut SimCard, apdu: &str) -> Vec<u8> {
    ok_raw(c, &h(apdu))
}

/// Build an APDU, short when possible, extended otherwise.
fn apdu(hdr: [u8; 4], data: &[u8], le: Option<usize>) -> Vec<u8> {
    let ext = data.len() > 255 || le.is_some_and(|l| l > 256);
    let mut v = hdr.to_vec();
    if ext {
        v.push(0);
        if !data.is_empty() {
            v.extend_from_slice(&(data.len() as u16).to_be_bytes());
            v.extend_from_slice(data);
        }
        if let Some(l) = le {
            v.extend_from_slice(&((l % 65536) as u16).to_be_bytes());
        }
    } else {
        if !data.is_empty() {
            v.push(data.len() as u8);
            v.extend_from_slice(data);
        }
        if let Some(l) = le {
            v.push((l % 256) as u8);
        }
    }
    v
}

fn tlv(tag: u8, v: &[u8]) -> Vec<u8> {
    super::tlv::tlv(u16::from(tag), v)
}

/// FCP for a transparent EF.
fn ef_fcp(fid: u16, size: usize, extra: &[u8]) -> Vec<u8> {
    let size_b = if size > 0xFFFF {
        (size as u32).to_be_bytes()[1..].to_vec()
    } else {
        (size as u16).to_be_bytes().to_vec()
    };
    let mut b = tlv(0x80, &size_b);
    b.extend(tlv(0x82, &[0x01]));
    b.extend(tlv(0x83, &fid.to_be_bytes()));
    b.extend_from_slice(extra);
    tlv(0x62, &b)
}

/// FCP for a DF.
fn df_fcp(fid: u16, name: Option<&[u8]>, extra: &[u8]) -> Vec<u8> {
    let mut b = tlv(0x82, &[0x38]);
    b.extend(tlv(0x83, &fid.to_be_bytes()));
    if let Some(n) = name {
        b.extend(tlv(0x84, n));
    }
    b.extend_from_slice(extra);
    tlv(0x62, &b)
}

pub(super) fn create(c: &mut SimCard, fcp: &[u8]) -> u16 {
    sw_of(&c.transmit(&apdu([0, 0xE0, 0, 0], fcp, None)))
}

const AID: &str = "A000000001020304";

/// DF 1000 (AID) containing EF 1001 (32 bytes, READ needs PIN 1, UPDATE
/// always) and EF 1002 (16 bytes, no rules); PIN 1 "1234" (3 tries, PUK 2
/// "87654321").
fn personalise(c: &mut SimCard) {
    assert_eq!(create(c, &df_fcp(0x1000, Some(&h(AID)), &[])), 0x9000);
    let rule = tlv(0x8C, &h("03 00 11")); // b2 UPDATE: 00, b1 READ: PIN 1
    assert_eq!(create(c, &ef_fcp(0x1001, 32, &rule)), 0x9000);
    ok(c, "00 A4 00 0C 02 1000");
    assert_eq!(create(c, &ef_fcp(0x1002, 16, &[])), 0x9000);
    ok(c, "00 DA 01 02 0A 80 08 3837363534333231");
    ok(c, "00 DA 01 01 0C 80 04 31323334 81 01 03 82 01 02");
}

// ---------------------------------------------------------------- ATR

#[test]
fn atr_t1_default_with_tck() {
    let c = SimCard::blank(SimConfig::default());
    let atr = c.atr();
    assert_eq!(&atr[..6], &h("3B 87 81 31 FE 45")[..]);
    assert_eq!(&atr[6..13], &h("80 73 F4 21 C0 81 03")[..]);
    // TCK: XOR of T0..TCK is zero.
    assert_eq!(atr[1..].iter().fold(0u8, |a, b| a ^ b), 0);
    assert_eq!(atr.len(), 14);
}

#[test]
fn atr_t0_has_no_tck_and_both_has_one() {
    let cfg = SimConfig {
        protocol: SimProtocol::T0,
        extended_length: false,
        command_chaining: false,
        ..SimConfig::default()
    };
    let atr = SimCard::blank(cfg).atr();
    assert_eq!(hx(&atr), "3B078073F421008103");
    let cfg = SimConfig {
        protocol: SimProtocol::Both,
        ..SimConfig::default()
    };
    let atr = SimCard::blank(cfg).atr();
    assert_eq!(&atr[..6], &h("3B 87 80 31 FE 45")[..]);
    assert_eq!(atr[1..].iter().fold(0u8, |a, b| a ^ b), 0);
}

#[test]
fn atr_reflects_life_cycle() {
    let mut c = SimCard::blank(SimConfig::default());
    ok(&mut c, "00 44 00 00");
    let atr = c.atr();
    assert_eq!(atr[12], 0x05);
    assert_eq!(atr[1..].iter().fold(0u8, |a, b| a ^ b), 0);
}

// ---------------------------------------------------------------- parsing

#[test]
fn apdu_length_errors() {
    let mut c = SimCard::blank(SimConfig::default());
    assert_eq!(c.transmit(&[]), h("6700"));
    assert_eq!(tx(&mut c, "00A400"), "6700");
    assert_eq!(tx(&mut c, "00 A4 00 0C 03 3F00"), "6700"); // Lc too big
    assert_eq!(tx(&mut c, "00 A4 00 0C 01 3F00 00 00"), "6700"); // too long
    assert_eq!(tx(&mut c, "00 A4 00 0C 00 00"), "6700"); // 6 bytes
    assert_eq!(tx(&mut c, "00 A4 00 0C 00 0000 00"), "6700"); // ext Lc 0
    assert_eq!(tx(&mut c, "00 A4 00 0C 00 0002 3F00 00"), "6700"); // 1 Le byte
                                                                   // Extended form works when enabled...
    assert_eq!(tx(&mut c, "00 A4 00 0C 00 0002 3F00"), "9000");
    // ...and is refused otherwise.
    let mut c = SimCard::blank(SimConfig {
        extended_length: false,
        ..SimConfig::default()
    });
    assert_eq!(tx(&mut c, "00 A4 00 0C 00 0002 3F00"), "6700");
    assert_eq!(tx(&mut c, "00 84 00 00 00 0008"), "6700");
}

#[test]
fn class_and_instruction_errors() {
    let mut c = SimCard::blank(SimConfig::default());
    assert_eq!(tx(&mut c, "01 A4 00 0C 02 3F00"), "6881");
    assert_eq!(tx(&mut c, "03 A4 00 0C 02 3F00"), "6881");
    assert_eq!(tx(&mut c, "40 A4 00 0C 02 3F00"), "6881");
    assert_eq!(tx(&mut c, "04 A4 00 0C 02 3F00"), "6882");
    assert_eq!(tx(&mut c, "0C A4 00 0C 02 3F00"), "6882");
    assert_eq!(tx(&mut c, "FF A4 00 0C 02 3F00"), "6E00");
    assert_eq!(tx(&mut c, "20 A4 00 0C 02 3F00"), "6E00");
    assert_eq!(tx(&mut c, "84 A4 00 0C 02 3F00"), "6E00");
    assert_eq!(tx(&mut c, "80 A4 00 0C 02 3F00"), "6E00");
    assert_eq!(tx(&mut c, "00 12 00 00"), "6D00");
    assert_eq!(tx(&mut c, "00 60 00 00"), "6D00");
    assert_eq!(sw(&mut c, "80 CA 9F 7F 00"), 0x9000);
}

// ---------------------------------------------------------------- SELECT

#[test]
fn select_mf_fcp_fci_fmd() {
    let mut c = SimCard::blank(SimConfig::default());
    let fcp = ok(&mut c, "00 A4 00 04 02 3F00 00");
    assert_eq!(fcp[0], 0x62);
    assert_eq!(usize::from(fcp[1]), fcp.len() - 2);
    let body = hx(&fcp[2..]);
    assert!(body.starts_with("820138" /* DF */), "{body}");
    assert!(body.contains("83023F00"));
    assert!(body.contains("8A0103"));
    assert!(body.contains("A506C104")); // free memory
    let fci = ok(&mut c, "00 A4 00 00 02 3F00 00");
    assert_eq!(fci[0], 0x6F);
    assert_eq!(&fci[1..], &fcp[1..]);
    assert_eq!(hx(&ok(&mut c, "00 A4 00 08 02 3F00 00")), "6400");
    assert_eq!(tx(&mut c, "00 A4 00 0C 02 3F00"), "9000");
    assert_eq!(tx(&mut c, "00 A4 00 0C"), "9000"); // no data: MF
                                                   // No Le → no data.
    assert_eq!(tx(&mut c, "00 A4 00 04 02 3F00"), "9000");
}

#[test]
fn select_variants_and_errors() {
    let mut c = SimCard::blank(SimConfig::default());
    personalise(&mut c);
    ok(&mut c, "00 A4 00 0C 02 3F00");
    assert_eq!(tx(&mut c, "00 A4 01 0C 02 1000"), "9000"); // child DF
    assert_eq!(tx(&mut c, "00 A4 02 0C 02 1001"), "9000"); // EF in current DF
    assert_eq!(tx(&mut c, "00 A4 02 0C 02 1000"), "6A82"); // a DF is not an EF
    assert_eq!(tx(&mut c, "00 A4 03 0C"), "9000"); // parent of 1000 = MF
    assert_eq!(tx(&mut c, "00 A4 03 0C"), "6A82"); // MF has no parent
    assert_eq!(tx(&mut c, "00 A4 01 0C 02 1001"), "6A82"); // not in MF
    assert_eq!(tx(&mut c, "00 A4 08 0C 04 1000 1002"), "9000"); // path from MF
    assert_eq!(tx(&mut c, "00 A4 08 0C 04 1002 1000"), "6A82");
    assert_eq!(tx(&mut c, "00 A4 08 0C 03 100010"), "6700");
    ok(&mut c, "00 A4 00 0C 02 1000");
    assert_eq!(tx(&mut c, "00 A4 09 0C 02 1001"), "9000"); // path from current DF
    assert_eq!(tx(&mut c, "00 A4 00 0C 02 1002"), "9000"); // sibling by FID
    assert_eq!(tx(&mut c, "00 A4 00 0C 03 100200"), "6700");
    assert_eq!(tx(&mut c, "00 A4 00 0C 02 2222"), "6A82");
    assert_eq!(tx(&mut c, "00 A4 05 0C 02 1000"), "6A86");
    assert_eq!(tx(&mut c, "00 A4 00 10 02 1000"), "6A86");
    assert_eq!(tx(&mut c, "00 A4 00 0E 02 1000"), "6A86"); // next occ. w/o name
                                                           // By DF name: exact, partial.
    let r = ok(&mut c, &format!("00 A4 04 04 08 {AID} 00"));
    assert!(hx(&r).contains(&format!("8408{AID}")));
    assert_eq!(tx(&mut c, "00 A4 04 0C 05 A000000001"), "9000");
    assert_eq!(tx(&mut c, "00 A4 04 0C 05 A000000002"), "6A82");
    // A second DF with a longer name sharing the prefix: next occurrence.
    ok(&mut c, "00 A4 00 0C 02 3F00");
    assert_eq!(
        create(&mut c, &df_fcp(0x2000, Some(&h("A00000000105")), &[])),
        0x9000
    );
    let first = ok(&mut c, "00 A4 04 04 05 A000000001 00");
    assert!(hx(&first).contains("83021000"));
    let next = ok(&mut c, "00 A4 04 06 05 A000000001 00");
    assert!(hx(&next).contains("83022000"));
    assert_eq!(tx(&mut c, "00 A4 04 0E 05 A000000001"), "6A82");
}

#[test]
fn select_6cxx_with_too_small_le() {
    let mut c = SimCard::blank(SimConfig::default());
    let full = ok(&mut c, "00 A4 00 04 02 3F00 00");
    let r = tx(&mut c, "00 A4 00 04 02 3F00 05");
    assert_eq!(r, format!("6C{:02X}", full.len()));
    let again = ok(&mut c, &format!("00 A4 00 04 02 3F00 {:02X}", full.len()));
    assert_eq!(again, full);
    // Larger Le than needed is fine.
    assert_eq!(ok(&mut c, "00 A4 00 04 02 3F00 FF"), full);
}

// ---------------------------------------------------------------- GET CHALLENGE / DATA

#[test]
fn get_challenge() {
    let mut c = SimCard::blank(SimConfig::default());
    let a = ok(&mut c, "00 84 00 00 08");
    let b = ok(&mut c, "00 84 00 00 08");
    assert_eq!(a.len(), 8);
    assert_ne!(a, b);
    assert_eq!(c.vol.challenge.as_deref(), Some(&b[..]));
    assert_eq!(ok(&mut c, "00 84 00 00 00").len(), 256);
    assert_eq!(ok(&mut c, "00 84 00 00 00 03E8").len(), 1000);
    assert_eq!(tx(&mut c, "00 84 00 00"), "6700");
    assert_eq!(tx(&mut c, "00 84 01 00 08"), "6A86");
    assert_eq!(tx(&mut c, "00 84 00 00 01 00 08"), "6700");
}

#[test]
fn get_data_cplc() {
    let mut c = SimCard::blank(SimConfig::default());
    let r = ok(&mut c, "00 CA 9F 7F 00");
    assert_eq!(&r[..3], &h("9F7F2A")[..]);
    assert_eq!(r.len(), 45);
    let serial = c.serial();
    // IC serial number at offset 12 of the CPLC value, pre-perso equipment id at 30.
    assert_eq!(&r[3 + 12..3 + 16], &serial[..4]);
    assert_eq!(&r[3 + 30..3 + 34], &serial[4..]);
    assert_eq!(tx(&mut c, "00 CA 00 66 00"), "6A88");
    assert_eq!(tx(&mut c, "00 CA 00 6E 00"), "6A88");
    assert_eq!(tx(&mut c, "00 CA 9F 7F 10"), "6C2D");
}

// ---------------------------------------------------------------- files

#[test]
fn create_update_read_round_trip() {
    let mut c = SimCard::blank(SimConfig::default());
    assert_eq!(create(&mut c, &df_fcp(0x1000, Some(&h(AID)), &[])), 0x9000);
    // The new DF is current: the EF goes inside it.
    assert_eq!(create(&mut c, &ef_fcp(0x1003, 20, &[])), 0x9000);
    // The new EF is current.
    ok(&mut c, "00 D6 00 00 05 0102030405");
    ok(&mut c, "00 D6 00 05 03 AABBCC");
    assert_eq!(hx(&ok(&mut c, "00 B0 00 00 08")), "0102030405AABBCC");
    assert_eq!(hx(&ok(&mut c, "00 B0 00 03 02")), "0405");
    // Beyond the end with explicit Le: what there is + 6282.
    assert_eq!(tx(&mut c, "00 B0 00 10 10"), "000000006282");
    // Le 00: whole rest, 9000.
    assert_eq!(ok(&mut c, "00 B0 00 00 00").len(), 20);
    assert_eq!(tx(&mut c, "00 B0 00 15 01"), "6B00");
    assert_eq!(tx(&mut c, "00 D6 00 15 01 00"), "6B00");
    assert_eq!(tx(&mut c, "00 D6 00 12 03 000000"), "6A84");
    assert_eq!(tx(&mut c, "00 D6 00 00"), "6700");
    // Le absent: no data.
    assert_eq!(tx(&mut c, "00 B0 00 00"), "9000");
    // The FCP of the EF.
    let fcp = hx(&ok(&mut c, "00 A4 02 04 02 1003 00"));
    assert!(fcp.starts_with("62"), "{fcp}");
    for part in ["80020014", "820101", "83021003", "880118", "8A0103"] {
        assert!(fcp.contains(part), "{part} in {fcp}");
    }
    // Read by SFI (03 from FID 1003) from the DF.
    ok(&mut c, "00 A4 00 0C 02 1000");
    assert_eq!(tx(&mut c, "00 B0 00 00 01"), "6986"); // no current EF
    assert_eq!(hx(&ok(&mut c, "00 B0 83 00 02")), "0102");
    assert_eq!(hx(&ok(&mut c, "00 B0 00 01 01")), "02"); // selected as side effect
    assert_eq!(tx(&mut c, "00 B0 84 00 01"), "6A82");
    assert_eq!(tx(&mut c, "00 B0 A3 00 01"), "6A86");
    assert_eq!(tx(&mut c, "00 D6 83 01 01 FF"), "9000");
    assert_eq!(hx(&ok(&mut c, "00 B0 00 00 02")), "01FF");
}

#[test]
fn create_file_errors() {
    let mut c = SimCard::blank(SimConfig {
        memory_bytes: 4096,
        ..SimConfig::default()
    });
    assert_eq!(create(&mut c, &df_fcp(0x1000, Some(&h(AID)), &[])), 0x9000);
    ok(&mut c, "00 A4 00 0C 02 3F00");
    assert_eq!(create(&mut c, &df_fcp(0x1000, None, &[])), 0x6A89);
    assert_eq!(create(&mut c, &ef_fcp(0x1000, 4, &[])), 0x6A89);
    assert_eq!(create(&mut c, &df_fcp(0x1100, Some(&h(AID)), &[])), 0x6A8A);
    assert_eq!(create(&mut c, &ef_fcp(0x2000, 100_000, &[])), 0x6A84);
    // Malformed templates.
    assert_eq!(create(&mut c, &h("6F 03 820101")), 0x6A80); // not 62
    assert_eq!(create(&mut c, &h("62 05 820101")), 0x6A80); // truncated
    assert_eq!(create(&mut c, &h("62 07 820101 83021234")), 0x6A80); // EF without size
    assert_eq!(create(&mut c, &h("62 03 820138")), 0x6A80); // no FID
    assert_eq!(create(&mut c, &df_fcp(0x3F00, None, &[])), 0x6A80);
    assert_eq!(create(&mut c, &df_fcp(0x1200, None, &h("8A0107"))), 0x6A80);
    assert_eq!(
        create(&mut c, &df_fcp(0x1200, None, &h("8C020300"))),
        0x6A80
    );
    assert_eq!(create(&mut c, &ef_fcp(0x1200, 4, &h("8401AA"))), 0x6A80);
    assert_eq!(create(&mut c, &h("62 09 820141 83021234 800104")), 0x6A80);
    assert_eq!(
        create(&mut c, &h("62 0C 820101 820101 83021234 800104")),
        0x6A80
    );
    assert_eq!(sw(&mut c, "00 E0 00 01 05 6203820138"), 0x6A86);
    assert_eq!(sw(&mut c, "00 E0 00 00"), 0x6700);
}

#[test]
fn delete_file() {
    let mut c = SimCard::blank(SimConfig::default());
    personalise(&mut c);
    ok(&mut c, "00 A4 00 0C 02 1000");
    ok(&mut c, "00 E4 00 00 02 1002");
    assert_eq!(tx(&mut c, "00 A4 02 0C 02 1002"), "6A82");
    ok(&mut c, "00 A4 00 0C 02 3F00");
    let before = c.state.free_memory();
    ok(&mut c, "00 E4 00 00 02 1000"); // DF with its subtree
    assert!(c.state.free_memory() > before);
    assert_eq!(c.state.files.len(), 1);
    assert_eq!(tx(&mut c, "00 E4 00 00"), "6985"); // the MF itself
    assert_eq!(tx(&mut c, "00 E4 00 00 02 1000"), "6A82");
}

#[test]
fn extended_length_40000_byte_ef() {
    let mut c = SimCard::blank(SimConfig::default());
    assert_eq!(create(&mut c, &ef_fcp(0x2F00, 40_000, &[])), 0x9000);
    let content: Vec<u8> = (0..40_000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    ok_raw(&mut c, &apdu([0, 0xD6, 0, 0], &content, None));
    let back = ok_raw(&mut c, &apdu([0, 0xB0, 0, 0], &[], Some(65536)));
    assert_eq!(back, content);
    let part = ok_raw(&mut c, &apdu([0, 0xB0, 0x7F, 0xFF], &[], Some(1000)));
    assert_eq!(&part[..], &content[32767..33767]);
    // Short Le still caps at 256.
    assert_eq!(ok(&mut c, "00 B0 00 00 00").len(), 256);
}

#[test]
fn odd_ins_above_32767() {
    let mut c = SimCard::blank(SimConfig::default());
    assert_eq!(create(&mut c, &ef_fcp(0x2F01, 40_000, &[])), 0x9000);
    ok(&mut c, "00 A4 00 0C 02 3F00");
    // D7 by FID, offset 0x9C3C = 39996, 4 bytes.
    ok(&mut c, "00 D7 2F 01 0B 54 03 009C3C 53 04 DEADBEEF");
    // B1 by current EF (selected as a side effect of D7).
    assert_eq!(
        tx(&mut c, "00 B1 00 00 04 54 02 9C3C 00"),
        "5304DEADBEEF9000"
    );
    assert_eq!(tx(&mut c, "00 B1 2F 01 04 54 02 9C3E 06"), "5302BEEF6282");
    assert_eq!(tx(&mut c, "00 B1 2F 01 04 54 02 9C3E 04"), "5302BEEF9000");
    assert_eq!(tx(&mut c, "00 B1 00 00 04 54 02 9C3C 04"), "5302DEAD9000");
    assert_eq!(tx(&mut c, "00 B1 00 00 04 54 02 9C41 00"), "6B00");
    assert_eq!(
        tx(&mut c, "00 D7 00 00 0B 54 03 009C3E 53 04 DEADBEEF"),
        "6A84"
    );
    assert_eq!(tx(&mut c, "00 B1 00 00 04 55 02 0000 00"), "6A80");
    assert_eq!(tx(&mut c, "00 B1 00 00 03 54 02 00 00"), "6A80");
    assert_eq!(tx(&mut c, "00 D7 00 00 04 54 02 0000"), "6A80");
    assert_eq!(tx(&mut c, "00 B1 3F 00 04 54 02 0000 00"), "6981");
    assert_eq!(tx(&mut c, "00 B1 77 77 04 54 02 0000 00"), "6A82");
    ok(&mut c, "00 A4 00 0C 02 3F00");
    assert_eq!(tx(&mut c, "00 B1 00 00 04 54 02 0000 00"), "6986");
    // Even-INS 15-bit offset cannot go past 32767; with odd INS it can.
    ok(&mut c, "00 A4 00 0C 02 2F01");
    assert_eq!(hx(&ok(&mut c, "00 B0 7F FF 01")), "00");
}

#[test]
fn command_chaining_600_bytes() {
    let mut c = SimCard::blank(SimConfig::default());
    assert_eq!(create(&mut c, &ef_fcp(0x2F02, 600, &[])), 0x9000);
    let content: Vec<u8> = (0..600u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        sw_of(&c.transmit(&apdu([0x10, 0xD6, 0, 0], &content[..200], None))),
        0x9000
    );
    assert_eq!(
        sw_of(&c.transmit(&apdu([0x10, 0xD6, 0, 0], &content[200..400], None))),
        0x9000
    );
    // Not written yet.
    assert!(matches!(&c.state.file(1).unwrap().kind,
        super::fs::FileKind::Ef { data, .. } if data.iter().all(|b| *b == 0)));
    assert_eq!(
        sw_of(&c.transmit(&apdu([0x00, 0xD6, 0, 0], &content[400..], None))),
        0x9000
    );
    let back = ok_raw(&mut c, &apdu([0, 0xB0, 0, 0], &[], Some(600)));
    assert_eq!(back, content);
}

#[test]
fn chaining_errors() {
    let mut c = SimCard::blank(SimConfig::default());
    assert_eq!(create(&mut c, &ef_fcp(0x2F02, 8, &[])), 0x9000);
    assert_eq!(tx(&mut c, "10 D6 00 00 02 0102"), "9000");
    assert_eq!(tx(&mut c, "00 B0 00 00 02"), "6883");
    // The chain is gone: a lone last command works normally.
    assert_eq!(tx(&mut c, "00 D6 00 00 02 0304"), "9000");
    assert_eq!(tx(&mut c, "10 D6 00 00 02 0102"), "9000");
    assert_eq!(tx(&mut c, "10 B0 00 00 02"), "6883");
    let mut c = SimCard::blank(SimConfig {
        command_chaining: false,
        ..SimConfig::default()
    });
    assert_eq!(tx(&mut c, "10 D6 00 00 02 0102"), "6884");
    assert_eq!(c.atr()[10], 0x40);
}

// ---------------------------------------------------------------- Le / GET RESPONSE

#[test]
fn force_get_response_mode() {
    let mut c = SimCard::blank(SimConfig {
        force_get_response: true,
        ..SimConfig::default()
    });
    let r = tx(&mut c, "00 A4 00 04 02 3F00 00");
    assert!(r.starts_with("61"), "{r}");
    let n = u8::from_str_radix(&r[2..], 16).unwrap();
    assert_eq!(tx(&mut c, "00 C0 00 00 02"), format!("6C{n:02X}"));
    let data = ok(&mut c, &format!("00 C0 00 00 {n:02X}"));
    assert_eq!(data.len(), usize::from(n));
    assert_eq!(data[0], 0x62);
    assert_eq!(tx(&mut c, "00 C0 00 00 00"), "6985"); // nothing pending
                                                      // Long data: chunks of 256 with 61xx while more remains.
    assert_eq!(create(&mut c, &ef_fcp(0x2F00, 300, &[])), 0x9000);
    assert_eq!(tx(&mut c, "00 B0 00 00 00 012C"), "6100");
    let first = c.transmit(&h("00 C0 00 00 00"));
    assert_eq!(first.len(), 258);
    assert_eq!(hx(&first[256..]), "612C");
    assert_eq!(ok(&mut c, "00 C0 00 00 2C").len(), 44);
    // Warnings survive the detour: 6282 arrives with the last chunk.
    assert_eq!(tx(&mut c, "00 B0 01 28 08"), "6104");
    assert_eq!(tx(&mut c, "00 C0 00 00 04"), "000000006282");
    // Another command drops pending data.
    assert_eq!(tx(&mut c, "00 84 00 00 04"), "6104");
    ok(&mut c, "00 A4 00 0C 02 3F00");
    assert_eq!(tx(&mut c, "00 C0 00 00 04"), "6985");
    assert_eq!(tx(&mut c, "00 C0 00 01 04"), "6A86");
}

#[test]
fn t0_protocol_le_absent_gives_61xx() {
    let mut c = SimCard::blank(SimConfig {
        protocol: SimProtocol::T0,
        ..SimConfig::default()
    });
    let r = tx(&mut c, "00 A4 00 00 02 3F00");
    assert!(r.starts_with("61"), "{r}");
    // With Le the data comes directly.
    assert_eq!(ok(&mut c, "00 A4 00 00 02 3F00 00")[0], 0x6F);
}

#[test]
fn long_response_with_short_le_is_chunked() {
    let mut c = SimCard::blank(SimConfig::default());
    let data: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    let le = Le {
        ne: 256,
        wildcard: true,
    };
    let r = c.shape(Resp::data(data.clone(), 0x9000, LeRule::Fixed), Some(le));
    assert_eq!(r.len(), 258);
    assert_eq!(hx(&r[256..]), "612C");
    let rest = ok(&mut c, "00 C0 00 00 2C");
    assert_eq!(rest, data[256..].to_vec());
}

// ---------------------------------------------------------------- PINs

#[test]
fn pin_life_cycle() {
    let mut c = SimCard::blank(SimConfig::default());
    personalise(&mut c);
    assert_eq!(tx(&mut c, "00 20 00 01"), "63C3");
    assert_eq!(tx(&mut c, "00 20 00 01 04 39393939"), "63C2");
    assert_eq!(tx(&mut c, "00 20 00 01 04 39393939"), "63C1");
    assert_eq!(tx(&mut c, "00 20 00 01 04 39393939"), "63C0");
    assert_eq!(tx(&mut c, "00 20 00 01 04 31323334"), "6983");
    assert_eq!(tx(&mut c, "00 20 00 01"), "6983");
    assert_eq!(tx(&mut c, "00 24 00 01 08 3132333435363738"), "6983");
    // Wrong PUK costs a PUK try.
    assert_eq!(
        tx(&mut c, "00 2C 00 01 0C 3030303030303030 35353535"),
        "63C2"
    );
    assert_eq!(
        tx(&mut c, "00 2C 00 01 0C 3837363534333231 35353535"),
        "9000"
    );
    assert_eq!(c.state.pin(2).unwrap().tries_left, 3);
    assert_eq!(tx(&mut c, "00 20 00 01 04 31323334"), "63C2");
    assert_eq!(tx(&mut c, "00 20 00 81 04 35353535"), "9000"); // specific ref, same PIN
    assert_eq!(tx(&mut c, "00 20 00 01"), "9000");
    // CHANGE REFERENCE DATA, old || new.
    assert_eq!(tx(&mut c, "00 24 00 01 09 35353535 3636363636"), "9000");
    assert_eq!(tx(&mut c, "00 20 00 01 04 35353535"), "63C2");
    assert_eq!(tx(&mut c, "00 20 00 01 05 3636363636"), "9000");
    // Wrong old value.
    assert_eq!(tx(&mut c, "00 24 00 01 09 3030303030 37373737"), "63C2");
    // P1=01 needs a verified PIN.
    assert_eq!(tx(&mut c, "00 24 01 01 04 37373737"), "6982");
    assert_eq!(tx(&mut c, "00 20 00 01 05 3636363636"), "9000");
    assert_eq!(tx(&mut c, "00 24 01 01 04 37373737"), "9000");
    assert_eq!(tx(&mut c, "00 20 00 01 04 37373737"), "9000");
    // Reset verification status.
    assert_eq!(tx(&mut c, "00 20 FF 01"), "9000");
    assert_eq!(tx(&mut c, "00 20 00 01"), "63C3");
}

#[test]
fn pin_errors() {
    let mut c = SimCard::blank(SimConfig::default());
    personalise(&mut c);
    assert_eq!(tx(&mut c, "00 20 00 05 04 31323334"), "6A88");
    assert_eq!(tx(&mut c, "00 20 00 00 04 31323334"), "6A88");
    assert_eq!(tx(&mut c, "00 20 01 01 04 31323334"), "6A86");
    // Too short / too long: 6700, no try used.
    assert_eq!(tx(&mut c, "00 20 00 01 03 313233"), "6700");
    assert_eq!(
        tx(&mut c, "00 20 00 01 11 3131313131313131313131313131313131"),
        "6700"
    );
    assert_eq!(tx(&mut c, "00 20 00 01"), "63C3");
    assert_eq!(tx(&mut c, "00 24 02 01 04 31323334"), "6A86");
    assert_eq!(tx(&mut c, "00 24 00 01 04 31323334"), "6700"); // no new value
    assert_eq!(tx(&mut c, "00 24 00 01 06 31323334 3535"), "6A80"); // new too short
                                                                    // PIN 2 has no PUK.
    assert_eq!(tx(&mut c, "00 2C 01 02 04 31323334"), "6985");
    // P1=02/03 need the PUK verified.
    assert_eq!(tx(&mut c, "00 2C 03 01"), "6982");
    assert_eq!(tx(&mut c, "00 2C 02 01 04 39393939"), "6982");
    ok(&mut c, "00 20 00 02 08 3837363534333231");
    assert_eq!(tx(&mut c, "00 2C 03 01 01 00"), "6700");
    assert_eq!(tx(&mut c, "00 2C 03 01"), "9000");
    assert_eq!(tx(&mut c, "00 2C 02 01 04 39393939"), "9000");
    assert_eq!(tx(&mut c, "00 20 00 01 04 39393939"), "9000");
    assert_eq!(tx(&mut c, "00 2C 04 01"), "6A86");
    // P1=01: counter reset only.
    assert_eq!(tx(&mut c, "00 20 00 01 04 30303030"), "63C2");
    assert_eq!(tx(&mut c, "00 2C 01 01 08 3837363534333231"), "9000");
    assert_eq!(tx(&mut c, "00 20 00 01"), "63C3");
    // Blocked PUK.
    for left in ["63C2", "63C1", "63C0"] {
        assert_eq!(tx(&mut c, "00 20 00 02 08 3030303030303030"), left);
    }
    assert_eq!(
        tx(&mut c, "00 2C 00 01 0C 3837363534333231 35353535"),
        "6983"
    );
}

#[test]
fn pin_creation_rules() {
    let mut c = SimCard::blank(SimConfig::default());
    assert_eq!(tx(&mut c, "00 DA 01 01 04 80 02 3132"), "6A80"); // too short
    assert_eq!(tx(&mut c, "00 DA 01 01 09 80 04 31323334 81 01 10"), "6A80"); // limit 16
    assert_eq!(tx(&mut c, "00 DA 01 01 09 80 04 31323334 83 01 05"), "6A80"); // < min
    assert_eq!(tx(&mut c, "00 DA 01 01 09 80 04 31323334 82 01 01"), "6A80"); // own PUK
    assert_eq!(tx(&mut c, "00 DA 01 01 09 80 04 31323334 99 01 01"), "6A80");
    assert_eq!(tx(&mut c, "00 DA 01 01 05 80 04 313233"), "6A80"); // truncated
    assert_eq!(tx(&mut c, "00 DA 01 10 06 80 04 31323334"), "6A86");
    assert_eq!(tx(&mut c, "00 DA 02 01 06 80 04 31323334"), "6A86");
    assert_eq!(tx(&mut c, "00 DA 01 81 09 80 04 31323334 81 01 05"), "9000");
    assert_eq!(tx(&mut c, "00 20 00 01"), "63C5");
    // The PIN is stored hashed, not in clear.
    let p = c.state.pin(1).unwrap();
    assert_eq!(p.hash.len(), 32);
    assert!(!hx(&p.hash).contains("31323334"));
    ok(&mut c, "00 44 00 00"); // card operational
    assert_eq!(tx(&mut c, "00 DA 01 03 06 80 04 31323334"), "6985");
}

// ---------------------------------------------------------------- access & life cycle

#[test]
fn access_conditions_after_activation() {
    let mut c = SimCard::blank(SimConfig::default());
    personalise(&mut c);
    // Initialisation: rules stored but not enforced.
    ok(&mut c, "00 A4 08 0C 04 1000 1001");
    ok(&mut c, "00 D6 00 00 04 CAFEBABE");
    assert_eq!(hx(&ok(&mut c, "00 B0 00 00 04")), "CAFEBABE");
    // Activate the card (MF), which activates the files too.
    ok(&mut c, "00 A4 00 0C 02 3F00");
    ok(&mut c, "00 44 00 00");
    assert_eq!(c.state.mf_lcs(), 0x05);
    ok(&mut c, "00 A4 08 0C 04 1000 1001");
    assert_eq!(tx(&mut c, "00 B0 00 00 04"), "6982");
    ok(&mut c, "00 D6 00 00 01 00"); // UPDATE: always
    assert_eq!(tx(&mut c, "00 20 00 01 04 30303030"), "63C2");
    assert_eq!(tx(&mut c, "00 B0 00 00 04"), "6982");
    ok(&mut c, "00 20 00 01 04 31323334");
    assert_eq!(hx(&ok(&mut c, "00 B0 00 00 04")), "00FEBABE");
    // Reset clears the security status and the current EF.
    c.reset();
    assert_eq!(tx(&mut c, "00 B0 00 00 04"), "6986");
    ok(&mut c, "00 A4 08 0C 04 1000 1001");
    assert_eq!(tx(&mut c, "00 B0 00 00 04"), "6982");
    // Access-mode bits not set: never. DELETE (b7) is not in the rule.
    assert_eq!(tx(&mut c, "00 E4 00 00"), "6982");
    // Files without 8C: always.
    ok(&mut c, "00 A4 00 0C 02 1002");
    assert_eq!(ok(&mut c, "00 B0 00 00 02").len(), 2);
}

#[test]
fn security_condition_bytes() {
    use super::security::access_allowed;
    let pin1 = 1u16 << 1;
    assert!(access_allowed(None, 0x01, 0).is_ok());
    assert!(access_allowed(Some(&h("01 00")), 0x01, 0).is_ok());
    assert_eq!(access_allowed(Some(&h("01 FF")), 0x01, pin1), Err(0x6982));
    assert_eq!(access_allowed(Some(&h("02 00")), 0x01, 0), Err(0x6982));
    assert!(access_allowed(Some(&h("01 11")), 0x01, pin1).is_ok());
    assert_eq!(access_allowed(Some(&h("01 12")), 0x01, pin1), Err(0x6982));
    // External authentication / SM cannot be satisfied...
    assert_eq!(access_allowed(Some(&h("01 20")), 0x01, pin1), Err(0x6982));
    assert_eq!(access_allowed(Some(&h("01 B1")), 0x01, pin1), Err(0x6982));
    // ...unless "at least one" lets user authentication suffice.
    assert!(access_allowed(Some(&h("01 31")), 0x01, pin1).is_ok());
    // SC order follows b7..b1; several rules are alternatives.
    assert!(access_allowed(Some(&h("43 FF 11 00")), 0x01, 0).is_ok());
    assert_eq!(
        access_allowed(Some(&h("43 FF 11 00")), 0x02, 0),
        Err(0x6982)
    );
    assert!(access_allowed(Some(&h("01 FF 01 00")), 0x01, 0).is_ok());
}

#[test]
fn deactivate_activate_terminate() {
    let mut c = SimCard::blank(SimConfig::default());
    personalise(&mut c);
    ok(&mut c, "00 A4 08 0C 04 1000 1002");
    // Not operational yet: cannot deactivate.
    assert_eq!(tx(&mut c, "00 04 00 00"), "6985");
    ok(&mut c, "00 44 00 00"); // activate the EF only
    assert_eq!(c.state.mf_lcs(), 0x03);
    ok(&mut c, "00 04 00 00");
    assert_eq!(tx(&mut c, "00 A4 00 0C 02 1002"), "6283");
    let fcp = hx(&c.transmit(&h("00 A4 00 04 02 1002 00")));
    assert!(fcp.contains("8A0104") && fcp.ends_with("6283"), "{fcp}");
    assert_eq!(tx(&mut c, "00 B0 00 00 01"), "6985");
    assert_eq!(tx(&mut c, "00 D6 00 00 01 00"), "6985");
    ok(&mut c, "00 44 00 00 02 1002");
    assert_eq!(tx(&mut c, "00 A4 00 0C 02 1002"), "9000");
    ok(&mut c, "00 B0 00 00 01");
    // TERMINATE EF.
    assert_eq!(tx(&mut c, "00 E6 00 00 02 1002"), "6981");
    ok(&mut c, "00 E8 00 00");
    assert_eq!(tx(&mut c, "00 A4 00 0C 02 1002"), "6285");
    assert_eq!(tx(&mut c, "00 B0 00 00 01"), "6985");
    assert_eq!(tx(&mut c, "00 44 00 00"), "6985");
    assert_eq!(tx(&mut c, "00 E8 00 00"), "6985");
    // TERMINATE DF: everything below refuses.
    ok(&mut c, "00 A4 00 0C 02 1001");
    assert_eq!(tx(&mut c, "00 E8 00 00 02 1000"), "6981");
    ok(&mut c, "00 E6 00 00 02 1000");
    assert_eq!(tx(&mut c, "00 A4 00 0C 02 1000"), "6285");
    assert_eq!(tx(&mut c, "00 A4 02 0C 02 1001"), "6285");
    assert_eq!(tx(&mut c, "00 B0 00 00 01"), "6985");
    assert_eq!(create(&mut c, &ef_fcp(0x1003, 4, &[])), 0x6985);
    // TERMINATE CARD USAGE: all commands refused from now on.
    assert_eq!(tx(&mut c, "00 FE 00 01"), "6A86");
    ok(&mut c, "00 FE 00 00");
    assert_eq!(tx(&mut c, "00 A4 00 0C 02 3F00"), "6A81");
    assert_eq!(tx(&mut c, "00 84 00 00 08"), "6A81");
    c.reset();
    assert_eq!(tx(&mut c, "00 A4 00 0C"), "6A81");
    assert_eq!(c.atr()[12], 0x0F);
}

#[test]
fn ac_on_lifecycle_and_create() {
    let mut c = SimCard::blank(SimConfig::default());
    ok(&mut c, "00 DA 01 01 06 80 04 31323334");
    // DF whose CREATE EF (b2) needs PIN 1 and CREATE DF (b3) is never.
    let rule = tlv(0x8C, &h("7E FF FF FF 11 FF 11")); // b7..b2
    assert_eq!(create(&mut c, &df_fcp(0x4000, None, &rule)), 0x9000);
    ok(&mut c, "00 A4 00 0C 02 3F00");
    ok(&mut c, "00 44 00 00");
    ok(&mut c, "00 A4 00 0C 02 4000");
    assert_eq!(create(&mut c, &ef_fcp(0x4001, 4, &[])), 0x6982);
    assert_eq!(create(&mut c, &df_fcp(0x4100, None, &[])), 0x6982);
    assert_eq!(tx(&mut c, "00 04 00 00"), "6982"); // DEACTIVATE needs PIN 1
    ok(&mut c, "00 20 00 01 04 31323334");
    assert_eq!(create(&mut c, &ef_fcp(0x4001, 4, &[])), 0x9000);
    // On an operational card a new file starts in creation (01).
    assert!(hx(&ok(&mut c, "00 A4 00 04 02 4001 00")).contains("8A0101"));
    ok(&mut c, "00 A4 00 0C 02 4000");
    assert_eq!(create(&mut c, &df_fcp(0x4100, None, &[])), 0x6982);
    assert_eq!(tx(&mut c, "00 E6 00 00"), "6982"); // TERMINATE: never
    ok(&mut c, "00 04 00 00");
    assert_eq!(tx(&mut c, "00 A4 00 0C 02 4000"), "6283");
}

// ---------------------------------------------------------------- persistence

#[test]
fn image_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let serial;
    let state;
    {
        let mut c = SimCard::open_image(&path, SimConfig::default()).unwrap();
        serial = c.serial();
        personalise(&mut c);
        ok(&mut c, "00 A4 08 0C 04 1000 1002");
        ok(&mut c, "00 D6 00 00 04 01020304");
        assert_eq!(tx(&mut c, "00 20 00 01 04 30303030"), "63C2");
        ok(&mut c, "00 A4 00 0C 02 3F00");
        ok(&mut c, "00 44 00 00");
        state = c.state.clone();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"format\": \"cardsmith-sim-image\""));
    assert!(!text.contains("31323334"));
    let mut c = SimCard::open_image(&path, SimConfig::default()).unwrap();
    assert_eq!(c.state, state);
    assert_eq!(c.serial(), serial);
    assert_eq!(c.atr()[12], 0x05);
    assert_eq!(tx(&mut c, "00 20 00 01"), "63C2");
    ok(&mut c, "00 A4 08 0C 04 1000 1002");
    assert_eq!(hx(&ok(&mut c, "00 B0 00 00 04")), "01020304");
    // No stray temporary files.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // A config given for an existing image is ignored.
    drop(c);
    let c = SimCard::open_image(
        &path,
        SimConfig {
            protocol: SimProtocol::T0,
            ..SimConfig::default()
        },
    )
    .unwrap();
    assert_eq!(c.config().protocol, SimProtocol::T1);
}

#[test]
fn terminated_card_stays_terminated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let mut c = SimCard::open_image(&path, SimConfig::default()).unwrap();
    ok(&mut c, "00 FE 00 00");
    drop(c);
    let mut c = SimCard::open_image(&path, SimConfig::default()).unwrap();
    assert_eq!(tx(&mut c, "00 A4 00 0C"), "6A81");
}

fn expect_err(path: &Path) -> ImageError {
    match SimCard::open_image(path, SimConfig::default()) {
        Ok(_) => panic!("image {} accepted", path.display()),
        Err(e) => e,
    }
}

#[test]
fn corrupt_images_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    drop(SimCard::open_image(&path, SimConfig::default()).unwrap());
    let good = std::fs::read_to_string(&path).unwrap();

    std::fs::write(
        &path,
        "{\n  \"format\": \"cardsmith-sim-image\",\n  \"version\": 1,\n  oops\n}",
    )
    .unwrap();
    let e = expect_err(&path);
    match &e {
        ImageError::Json { line, column, .. } => {
            assert_eq!(*line, 4);
            assert!(*column > 0);
        }
        other => panic!("{other}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("line 4"),
        "{msg}"
    );
    assert_eq!(e.path(), path.as_path());

    std::fs::write(&path, good.replace("\"version\": 2", "\"version\": 7")).unwrap();
    assert!(matches!(
        expect_err(&path),
        ImageError::Version { found: 7, .. }
    ));

    std::fs::write(&path, good.replace("cardsmith-sim-image", "other")).unwrap();
    assert!(matches!(expect_err(&path), ImageError::Format { .. }));

    std::fs::write(&path, good.replace("\"fid\": \"3F00\"", "\"fid\": \"3F0\"")).unwrap();
    let e = expect_err(&path);
    assert!(matches!(e, ImageError::Json { .. }), "{e}");

    std::fs::write(
        &path,
        good.replace("\"fid\": \"3F00\"", "\"fid\": \"3F01\""),
    )
    .unwrap();
    let e = expect_err(&path);
    assert!(matches!(e, ImageError::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("MF"), "{e}");

    std::fs::write(&path, good.replace("\"lcs\": 3", "\"lcs\": 2")).unwrap();
    assert!(matches!(expect_err(&path), ImageError::Invalid { .. }));
}

#[test]
fn failed_image_write_answers_6581_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("card.json");
    let mut c = SimCard::open_image(&path, SimConfig::default()).unwrap();
    personalise(&mut c);
    std::fs::remove_dir_all(&sub).unwrap();
    assert_eq!(tx(&mut c, "00 20 00 01 04 30303030"), "6581");
    assert_eq!(c.state.pin(1).unwrap().tries_left, 3);
    assert_eq!(tx(&mut c, "00 20 00 01"), "63C3");
    assert_eq!(tx(&mut c, "00 20 00 01 04 31323334"), "6581");
    assert_eq!(tx(&mut c, "00 20 00 01"), "63C3");
    ok(&mut c, "00 A4 08 0C 04 1000 1002");
    assert_eq!(tx(&mut c, "00 D6 00 00 01 AA"), "6581");
    assert_eq!(hx(&ok(&mut c, "00 B0 00 00 01")), "00");
    let files = c.state.files.len();
    assert_eq!(create(&mut c, &ef_fcp(0x1003, 4, &[])), 0x6581);
    assert_eq!(c.state.files.len(), files);
}

#[test]
fn power_events_clear_volatile_state() {
    let mut c = SimCard::blank(SimConfig {
        force_get_response: true,
        ..SimConfig::default()
    });
    personalise(&mut c);
    ok(&mut c, "00 20 00 01 04 31323334");
    ok(&mut c, "00 A4 00 0C 02 1001");
    assert_eq!(tx(&mut c, "10 D6 00 00 01 00"), "9000");
    c.power_off();
    c.power_on();
    assert_eq!(c.vol.verified, 0);
    assert_eq!(c.vol.cur_df, 0);
    assert!(c.vol.cur_ef.is_none() && c.vol.chain.is_none() && c.vol.pending.is_none());
    assert_eq!(tx(&mut c, "00 84 00 00 08"), "6108");
    c.reset();
    assert_eq!(tx(&mut c, "00 C0 00 00 08"), "6985");
    assert!(c.vol.challenge.is_none());
}

// ---------------------------------------------------------------- fuzzing

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn configs() -> impl Strategy<Value = SimConfig> {
        (0u8..3, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(p, e, ch, f)| SimConfig {
            protocol: match p {
                0 => SimProtocol::T1,
                1 => SimProtocol::T0,
                _ => SimProtocol::Both,
            },
            extended_length: e,
            command_chaining: ch,
            force_get_response: f,
            memory_bytes: 64 * 1024,
            timing: None,
            match_score_diagnostics: false,
            ..SimConfig::default()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn transmit_never_panics(cfg in configs(),
                                 apdus in proptest::collection::vec(
                                     proptest::collection::vec(any::<u8>(), 0..600), 1..8)) {
            let mut c = SimCard::blank(cfg);
            personalise(&mut c);
            for a in &apdus {
                let r = c.transmit(a);
                prop_assert!(r.len() >= 2);
            }
        }

        #[test]
        fn structured_apdus_never_panic(ins in prop::sample::select(vec![
                                            0x04u8, 0x20, 0x24, 0x2C, 0x44, 0x84, 0xA4, 0xB0, 0xB1,
                                            0xC0, 0xCA, 0xD6, 0xD7, 0xDA, 0xE0, 0xE4, 0xE6, 0xE8, 0xFE]),
                                        cla in prop::sample::select(vec![0x00u8, 0x10, 0x80]),
                                        p1 in any::<u8>(), p2 in any::<u8>(),
                                        data in proptest::collection::vec(any::<u8>(), 0..300),
                                        le in proptest::option::of(0usize..70000)) {
            let mut c = SimCard::blank(SimConfig::default());
            personalise(&mut c);
            let a = apdu([cla, ins, p1, p2], &data, le);
            let r = c.transmit(&a);
            prop_assert!(r.len() >= 2);
            let r = c.transmit(&h("00 C0 00 00 00"));
            prop_assert!(r.len() >= 2);
        }
    }
}
