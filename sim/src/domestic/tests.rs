//! The domestic OS, command by command, with its refusals.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use ring::rand::SecureRandom;

use super::super::{CardOs, Provision, SimCard, SimConfig};
use super::*;

fn h(s: &str) -> Vec<u8> {
    cardsmith_wire::hex::parse(s).unwrap()
}

fn card() -> SimCard {
    let mut c = SimCard::blank(SimConfig::domestic());
    c.power_on();
    c
}

fn sw(r: &[u8]) -> u16 {
    u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]])
}

/// Send `apdu`; on 61xx fetch everything with GET RESPONSE (exact Le).
/// Returns (data, final status word).
fn x(c: &mut SimCard, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut r = c.transmit(apdu);
    let mut data = Vec::new();
    while r.len() == 2 && r[0] == 0x61 {
        let la = r[1];
        r = c.transmit(&[0x00, 0xC0, 0x00, 0x00, la]);
        data.extend_from_slice(&r[..r.len() - 2]);
        if !(r.len() >= 2 && r[r.len() - 2] == 0x61) {
            break;
        }
        r = r[r.len() - 2..].to_vec();
    }
    let s = sw(&r);
    (data, s)
}

fn xs(c: &mut SimCard, apdu: &str) -> (Vec<u8>, u16) {
    x(c, &h(apdu))
}

fn apdu(hdr: [u8; 4], data: &[u8], le: Option<u8>) -> Vec<u8> {
    let mut v = hdr.to_vec();
    if !data.is_empty() {
        v.push(data.len() as u8);
        v.extend_from_slice(data);
    }
    if let Some(l) = le {
        v.push(l);
    }
    v
}

fn select_eid(c: &mut SimCard) {
    let mut a = h("00 A4 04 0C");
    a.push(EID_AID.len() as u8);
    a.extend_from_slice(&EID_AID);
    assert_eq!(x(c, &a).1, 0x9000);
}

fn select_ef(c: &mut SimCard, fid: u16) {
    let [a, b] = fid.to_be_bytes();
    assert_eq!(x(c, &[0x00, 0xA4, 0x00, 0x0C, 0x02, a, b]).1, 0x9000);
}

fn verify(c: &mut SimCard, reference: u8, pin: &str) -> u16 {
    x(
        c,
        &apdu([0x00, 0x20, 0x00, reference], &pin_block(pin), None),
    )
    .1
}

fn set_status(c: &mut SimCard, state: u8) -> u16 {
    x(c, &[0x80, 0xF0, 0x80, state]).1
}

/// `n` random minutiae (never the reserved type), sorted by x then y.
fn minutiae(n: usize) -> Vec<u8> {
    let mut raw = vec![0u8; 3 * n];
    ring::rand::SystemRandom::new().fill(&mut raw).unwrap();
    let mut m: Vec<[u8; 3]> = raw
        .chunks(3)
        .map(|m| {
            [
                m[0],
                m[1],
                (if m[2] & 0x80 != 0 { 0x40 } else { 0x80 }) | (m[2] & 0x3F),
            ]
        })
        .collect();
    m.sort_by_key(|m| (m[0], m[1]));
    m.concat()
}

fn enrol(c: &mut SimCard, reference: u8, m: &[u8]) -> u16 {
    let mut inner = vec![0x82, 0x01, 0x02];
    inner.extend(super::super::tlv::tlv(0x81, m));
    let d = super::super::tlv::tlv(0x7F2E, &inner);
    x(c, &apdu([0x00, 0x24, 0x01, reference], &d, None)).1
}

fn verify_bio(c: &mut SimCard, reference: u8, m: &[u8]) -> u16 {
    let d = super::super::tlv::tlv(0x7F2E, &super::super::tlv::tlv(0x81, m));
    x(c, &apdu([0x00, 0x21, 0x00, reference], &d, None)).1
}

#[test]
fn atr_is_t0_only_and_names_the_os() {
    let c = card();
    let mut want = h("3B 0E 80 58");
    want.extend_from_slice(b"DOMESTIC");
    want.extend_from_slice(&h("71 B0 81 01"));
    assert_eq!(c.atr(), want);
    assert_eq!(c.config().os, CardOs::Domestic);
    // The reference card's ATR is untouched.
    let r = SimCard::blank(SimConfig::default());
    assert_eq!(r.atr(), h("3B 87 81 31 FE 45 80 73 F4 21 C0 81 03 E8"));
}

#[test]
fn responses_with_data_come_through_61xx_and_get_response() {
    let mut c = card();
    let mut a = h("00 A4 04 04");
    a.push(EID_AID.len() as u8);
    a.extend_from_slice(&EID_AID);
    a.push(0x00);
    let r = c.transmit(&a);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0], 0x61);
    let la = r[1];
    // A wrong Le gets 6C La, and the data stays.
    assert_eq!(
        c.transmit(&[0x00, 0xC0, 0x00, 0x00, la + 1]),
        vec![0x6C, la]
    );
    assert_eq!(c.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x00]), vec![0x6C, la]);
    assert_eq!(c.transmit(&[0x00, 0xC0, 0x00, 0x00]), vec![0x6C, la]);
    let r = c.transmit(&[0x00, 0xC0, 0x00, 0x00, la]);
    assert_eq!(r.len(), usize::from(la) + 2);
    assert_eq!(sw(&r), 0x9000);
    assert_eq!(r[0], 0x62);
    // Nothing left.
    assert_eq!(c.transmit(&[0x00, 0xC0, 0x00, 0x00, la]), vec![0x69, 0x85]);
    assert_eq!(c.transmit(&h("00 C0 00 01 10")), vec![0x6A, 0x86]);
}

#[test]
fn long_responses_come_in_pieces_of_256() {
    let mut c = card();
    select_eid(&mut c);
    select_ef(&mut c, 0x7101);
    let data: Vec<u8> = (0..240u32).map(|i| i as u8).collect();
    assert_eq!(
        x(&mut c, &apdu([0x00, 0xD6, 0x00, 0x00], &data, None)).1,
        0x9000
    );
    // Le 00 = 256 bytes: 61 00, then GET RESPONSE 00 hands out 256.
    assert_eq!(c.transmit(&h("00 B0 00 00 00")), vec![0x61, 0x00]);
    let r = c.transmit(&h("00 C0 00 00 00"));
    assert_eq!(r.len(), 258);
    assert_eq!(&r[..240], data.as_slice());
    assert_eq!(sw(&r), 0x9000);
    // Another command discards parked data.
    assert_eq!(c.transmit(&h("00 B0 00 00 10")), vec![0x61, 0x10]);
    assert_eq!(x(&mut c, &h("00 A4 00 0C 02 71 01")).1, 0x9000);
    assert_eq!(c.transmit(&h("00 C0 00 00 10")), vec![0x69, 0x85]);
}

#[test]
fn short_apdus_only_no_chaining_no_create_file() {
    let mut c = card();
    // Extended length.
    assert_eq!(c.transmit(&h("00 B0 00 00 00 01 00")), vec![0x67, 0x00]);
    assert_eq!(
        c.transmit(&h("00 D6 00 00 00 00 02 01 02")),
        vec![0x67, 0x00]
    );
    // Chaining.
    assert_eq!(c.transmit(&h("10 D6 00 00 02 01 02")), vec![0x68, 0x84]);
    // CREATE FILE, DELETE FILE, ACTIVATE, STORE DATA, PSO, reference
    // key generation: not this OS's commands.
    assert_eq!(
        c.transmit(&h("00 E0 00 00 05 62 03 83 01 01")),
        vec![0x6D, 0x00]
    );
    assert_eq!(c.transmit(&h("00 E4 00 00")), vec![0x6D, 0x00]);
    assert_eq!(c.transmit(&h("00 44 00 00")), vec![0x6D, 0x00]);
    assert_eq!(c.transmit(&h("80 E2 80 00 01 00")), vec![0x6D, 0x00]);
    // Known instruction, other class.
    assert_eq!(c.transmit(&h("00 46 00 21 00")), vec![0x6E, 0x00]);
    assert_eq!(c.transmit(&h("80 A4 00 0C 02 3F 00")), vec![0x6E, 0x00]);
    assert_eq!(c.transmit(&h("A0 A4 00 0C 02 3F 00")), vec![0x6E, 0x00]);
    // Logical channel, secure messaging without a security domain.
    assert_eq!(c.transmit(&h("01 A4 00 0C 02 3F 00")), vec![0x68, 0x81]);
    assert_eq!(c.transmit(&h("0C A4 00 0C 02 3F 00")), vec![0x68, 0x82]);
    assert_eq!(c.transmit(&h("00 A4")), vec![0x67, 0x00]);
}

#[test]
fn the_file_system_is_made_at_the_factory() {
    let mut c = card();
    for (parent, fid, size) in FACTORY_EFS {
        let [p1, p2] = parent.to_be_bytes();
        let [f1, f2] = fid.to_be_bytes();
        let (fcp, s) = x(
            &mut c,
            &[0x00, 0xA4, 0x08, 0x04, 0x04, p1, p2, f1, f2, 0x00],
        );
        assert_eq!(s, 0x9000, "{fid:04X}");
        let [s1, s2] = (size as u16).to_be_bytes();
        assert_eq!(
            fcp,
            vec![0x62, 0x0B, 0x82, 0x01, 0x01, 0x83, 0x02, f1, f2, 0x80, 0x02, s1, s2]
        );
    }
    let mut a = h("00 A4 04 04");
    a.push(PKI_AID.len() as u8);
    a.extend_from_slice(&PKI_AID);
    a.push(0x00);
    let (fcp, s) = x(&mut c, &a);
    assert_eq!(s, 0x9000);
    assert_eq!(&fcp[2..9], &h("82 01 38 83 02 7F 20"));
    // The reference card's AIDs and FIDs are not there.
    assert_eq!(xs(&mut c, "00 A4 04 0C 07 F0 43 53 4D 49 44 01").1, 0x6A82);
    assert_eq!(xs(&mut c, "00 A4 00 0C 02 50 00").1, 0x6A82);
    // Partial DF names are not supported.
    assert_eq!(xs(&mut c, "00 A4 04 0C 04 D3 64 00 00").1, 0x6A82);
    assert_eq!(xs(&mut c, "00 A4 00 0C 01 3F").1, 0x6700);
    assert_eq!(xs(&mut c, "00 A4 00 00 02 3F 00").1, 0x6A86);
    assert_eq!(xs(&mut c, "00 A4 03 0C").1, 0x6A86);
    // No current EF; SFI not supported.
    assert_eq!(xs(&mut c, "00 A4 00 0C 02 3F 00").1, 0x9000);
    assert_eq!(xs(&mut c, "00 B0 00 00 10").1, 0x6986);
    assert_eq!(xs(&mut c, "00 B0 81 00 10").1, 0x6A86);
}

#[test]
fn update_binary_takes_at_most_240_bytes() {
    let mut c = card();
    select_eid(&mut c);
    select_ef(&mut c, 0x7103);
    let block: Vec<u8> = (0..240u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(
        x(&mut c, &apdu([0x00, 0xD6, 0x00, 0x00], &block, None)).1,
        0x9000
    );
    let mut big = block.clone();
    big.push(0xAA);
    assert_eq!(
        x(&mut c, &apdu([0x00, 0xD6, 0x00, 0xF0], &big, None)).1,
        0x6700
    );
    assert_eq!(
        x(&mut c, &apdu([0x00, 0xD6, 0x00, 0xF0], &block[..16], None)).1,
        0x9000
    );
    // Past the end of the 256-byte EF.
    assert_eq!(
        x(&mut c, &apdu([0x00, 0xD6, 0x00, 0xF1], &block[..16], None)).1,
        0x6A84
    );
    assert_eq!(
        x(&mut c, &apdu([0x00, 0xD6, 0x01, 0x01], &block[..1], None)).1,
        0x6B00
    );
    assert_eq!(xs(&mut c, "00 D6 00 00").1, 0x6700);
    let (d, s) = xs(&mut c, "00 B0 00 00 00");
    assert_eq!(s, 0x9000);
    assert_eq!(&d[..240], block.as_slice());
    assert_eq!(&d[240..], &block[..16]);
    // An explicit Le past the end: the rest, with 6282.
    let (d, s) = xs(&mut c, "00 B0 00 F8 10");
    assert_eq!((d.len(), s), (8, 0x6282));
    assert_eq!(xs(&mut c, "00 B0 01 01 01").1, 0x6B00);
}

#[test]
fn pins_come_with_factory_values_and_change_with_the_old_one() {
    let mut c = card();
    // Status query, then the factory value.
    assert_eq!(xs(&mut c, "00 20 00 11").1, 0x63C3);
    assert_eq!(verify(&mut c, PIN_HOLDER, "123456"), 0x9000);
    assert_eq!(xs(&mut c, "00 20 00 11").1, 0x9000);
    assert_eq!(verify(&mut c, PIN_SIGNATURE, "12345678"), 0x9000);
    // The reference card's PIN references do not exist here.
    assert_eq!(verify(&mut c, 0x81, "123456"), 0x6A88);
    assert_eq!(verify(&mut c, 0x01, "123456"), 0x6A88);
    // A wrong PIN costs a try; the right one restores them.
    assert_eq!(verify(&mut c, PIN_HOLDER, "000000"), 0x63C2);
    assert_eq!(xs(&mut c, "00 20 00 11").1, 0x63C2);
    // CHANGE REFERENCE DATA old || new.
    let mut d = pin_block("123456");
    d.extend(pin_block("246810"));
    assert_eq!(
        x(&mut c, &apdu([0x00, 0x24, 0x00, PIN_HOLDER], &d, None)).1,
        0x9000
    );
    c.reset();
    assert_eq!(verify(&mut c, PIN_HOLDER, "123456"), 0x63C2);
    assert_eq!(verify(&mut c, PIN_HOLDER, "246810"), 0x9000);
    assert!(!c.state.domestic.as_ref().unwrap().pins[0].factory);
    // A wrong old value is a wrong PIN.
    let mut d = pin_block("999999");
    d.extend(pin_block("111111"));
    assert_eq!(
        x(&mut c, &apdu([0x00, 0x24, 0x00, PIN_HOLDER], &d, None)).1,
        0x63C2
    );
    // A malformed new value costs nothing.
    let mut d = pin_block("246810");
    d.extend(h("31 32 33 FF 35 36 FF FF"));
    assert_eq!(
        x(&mut c, &apdu([0x00, 0x24, 0x00, PIN_HOLDER], &d, None)).1,
        0x6A80
    );
    assert_eq!(
        x(&mut c, &apdu([0x00, 0x24, 0x00, PIN_HOLDER], &d[..8], None)).1,
        0x6700
    );
    assert_eq!(xs(&mut c, "00 20 00 11").1, 0x63C2);
    // Malformed blocks and lengths.
    assert_eq!(
        xs(&mut c, "00 20 00 11 08 31 32 33 FF FF FF FF FF").1,
        0x6A80
    );
    assert_eq!(xs(&mut c, "00 20 00 11 06 31 32 33 34 35 36").1, 0x6700);
    assert_eq!(xs(&mut c, "00 20 01 11").1, 0x6A86);
    // Blocked after three failures.
    for want in [0x63C1, 0x63C0] {
        assert_eq!(verify(&mut c, PIN_HOLDER, "000000"), want);
    }
    assert_eq!(verify(&mut c, PIN_HOLDER, "246810"), 0x6983);
    assert_eq!(xs(&mut c, "00 20 00 11").1, 0x6983);
}

#[test]
fn key_generation_answers_the_bare_point_and_signing_der() {
    let mut c = card();
    assert_eq!(c.transmit(&h("80 46 00 22 00")), vec![0x61, 0x41]);
    let r = c.transmit(&h("00 C0 00 00 41"));
    assert_eq!(r.len(), 67);
    assert_eq!(sw(&r), 0x9000);
    let point = r[..65].to_vec();
    assert_eq!(point[0], 0x04);
    let vk = VerifyingKey::from_sec1_bytes(&point).unwrap();
    // Read back.
    assert_eq!(xs(&mut c, "80 46 01 22 00"), (point.clone(), 0x9000));
    assert_eq!(xs(&mut c, "80 46 01 21 00").1, 0x6A88);
    assert_eq!(xs(&mut c, "80 46 00 23 00").1, 0x6A88);
    assert_eq!(xs(&mut c, "80 46 02 22 00").1, 0x6A86);
    assert_eq!(xs(&mut c, "80 46 00 22 02 B6 00 00").1, 0x6700);
    // Signing needs the signature PIN, for every signature.
    let digest = ring::digest::digest(&ring::digest::SHA256, b"hello");
    let sign = apdu([0x80, 0x2A, 0x00, KEY_SIGN], digest.as_ref(), Some(0));
    assert_eq!(x(&mut c, &sign).1, 0x6982);
    assert_eq!(verify(&mut c, PIN_HOLDER, "123456"), 0x9000);
    assert_eq!(x(&mut c, &sign).1, 0x6982);
    assert_eq!(verify(&mut c, PIN_SIGNATURE, "12345678"), 0x9000);
    let (der, s) = x(&mut c, &sign);
    assert_eq!(s, 0x9000);
    assert_eq!(der[0], 0x30);
    assert_eq!(usize::from(der[1]), der.len() - 2);
    let sig = Signature::from_der(&der).unwrap();
    vk.verify_prehash(digest.as_ref(), &sig).unwrap();
    assert_eq!(x(&mut c, &sign).1, 0x6982);
    // The empty slot, a digest of the wrong length.
    let auth = apdu([0x80, 0x2A, 0x00, KEY_AUTH], digest.as_ref(), Some(0));
    assert_eq!(x(&mut c, &auth).1, 0x6985);
    assert_eq!(xs(&mut c, "80 2A 00 22 04 01 02 03 04 00").1, 0x6700);
}

#[test]
fn der_integers_are_minimal() {
    let mut r = [0u8; 32];
    r[31] = 0x05;
    let mut s = [0xFFu8; 32];
    s[0] = 0x80;
    let der = keys::der_signature(&r, &s);
    let mut want = h("30 26 02 01 05 02 21 00");
    want.extend_from_slice(&s);
    assert_eq!(der, want);
    assert_eq!(
        keys::der_signature(&[0u8; 32], &[0x7F; 32])[..5],
        h("30 25 02 01 00")
    );
}

#[test]
fn set_status_walks_the_globalplatform_life_cycle() {
    let mut c = card();
    assert_eq!(xs(&mut c, "80 CA 9F 70 00"), (h("9F 70 01 01"), 0x9000));
    assert_eq!(set_status(&mut c, 0x0F), 0x6985);
    assert_eq!(set_status(&mut c, 0x03), 0x6A80);
    assert_eq!(set_status(&mut c, 0x7F), 0x6A80);
    assert_eq!(xs(&mut c, "80 F0 40 07").1, 0x6A86);
    assert_eq!(xs(&mut c, "80 F0 80 07 01 00").1, 0x6700);
    assert_eq!(set_status(&mut c, 0x07), 0x9000);
    assert_eq!(*c.atr().last().unwrap(), 0x07);
    assert_eq!(set_status(&mut c, 0x01), 0x6985);
    // Keys and enrolment still possible while INITIALIZED.
    assert_eq!(xs(&mut c, "80 46 00 21 00").1, 0x9000);
    assert_eq!(set_status(&mut c, 0x0F), 0x9000);
    assert_eq!(xs(&mut c, "80 CA 9F 70 00"), (h("9F 70 01 0F"), 0x9000));
    // SECURED: no key generation, no enrolment, no writing; and, without
    // a security domain, no more issuer commands at all.
    assert_eq!(xs(&mut c, "80 46 00 21 00").1, 0x6982);
    assert_eq!(enrol(&mut c, BIO_REFS[0], &minutiae(12)), 0x6982);
    select_eid(&mut c);
    select_ef(&mut c, 0x7101);
    assert_eq!(xs(&mut c, "00 D6 00 00 01 00").1, 0x6982);
    assert_eq!(xs(&mut c, "00 B0 00 00 04"), (vec![0; 4], 0x9000));
    assert_eq!(set_status(&mut c, 0xFF), 0x6982);
    // The reference card's ACTIVATE / TERMINATE do not exist.
    assert_eq!(xs(&mut c, "00 44 00 00").1, 0x6D00);
    assert_eq!(xs(&mut c, "00 FE 00 00").1, 0x6D00);
}

#[test]
fn terminated_refuses_everything() {
    let mut c = card();
    assert_eq!(set_status(&mut c, 0xFF), 0x9000);
    assert_eq!(*c.atr().last().unwrap(), 0xFF);
    assert_eq!(xs(&mut c, "00 A4 00 0C 02 3F 00").1, 0x6A81);
    assert_eq!(xs(&mut c, "80 CA 9F 7F 00").1, 0x6A81);
}

#[test]
fn enrolment_wants_at_most_40_minutiae_in_coordinate_order() {
    let mut c = card();
    let finger = minutiae(30);
    // Out of order: refused, not reordered.
    let mut shuffled: Vec<[u8; 3]> = finger.chunks(3).map(|m| [m[0], m[1], m[2]]).collect();
    shuffled.reverse();
    if shuffled.first().map(|m| (m[0], m[1])) == shuffled.last().map(|m| (m[0], m[1])) {
        shuffled.swap(0, 1);
    }
    assert_eq!(enrol(&mut c, BIO_REFS[0], &shuffled.concat()), 0x6A80);
    assert_eq!(enrol(&mut c, BIO_REFS[0], &minutiae(41)), 0x6A80);
    assert_eq!(
        enrol(&mut c, BIO_REFS[0], &finger[..finger.len() - 1]),
        0x6A80
    );
    // Not enrolled yet.
    assert_eq!(verify_bio(&mut c, BIO_REFS[0], &finger), 0x6984);
    assert_eq!(enrol(&mut c, BIO_REFS[0], &minutiae(40)), 0x9000);
    assert_eq!(enrol(&mut c, BIO_REFS[0], &finger), 0x9000);
    // The reference card's biometric numbers do not exist; PIN refs are
    // not biometric.
    assert_eq!(enrol(&mut c, 0x85, &finger), 0x6A86);
    assert_eq!(verify_bio(&mut c, 0x85, &finger), 0x6A88);
    assert_eq!(verify(&mut c, BIO_REFS[0], "123456"), 0x6981);
    // Verify: the same finger matches, another does not (a try spent).
    assert_eq!(xs(&mut c, "00 21 00 1C").1, 0x63C5);
    assert_eq!(verify_bio(&mut c, BIO_REFS[0], &finger), 0x9000);
    assert_eq!(xs(&mut c, "00 21 00 1C").1, 0x9000);
    assert_eq!(verify_bio(&mut c, BIO_REFS[0], &minutiae(30)), 0x63C4);
    // A probe out of order costs nothing.
    assert_eq!(verify_bio(&mut c, BIO_REFS[0], &shuffled.concat()), 0x6A80);
    assert_eq!(xs(&mut c, "00 21 00 1C").1, 0x63C4);
    assert_eq!(verify_bio(&mut c, BIO_REFS[0], &finger), 0x9000);
    assert_eq!(xs(&mut c, "00 21 00 1C").1, 0x9000);
    assert_eq!(xs(&mut c, "00 21 00 1D").1, 0x63C5);
}

#[test]
fn the_bit_keeps_the_algorithm_parameters_beside_the_header() {
    let mut c = card();
    assert_eq!(enrol(&mut c, BIO_REFS[1], &minutiae(20)), 0x9000);
    let (d, s) = xs(&mut c, "80 CA 7F 61 00");
    assert_eq!(s, 0x9000);
    let bit = |r: u8, pos: u8| {
        format!(
            "7F60 1B 8301{r:02X} A1 0E 810108 8201{pos:02X} 87020101 88020007 B1 06 810128 820105"
        )
    };
    let want = h(&format!("7F61 3F 020102 {} {}", bit(0x1C, 0), bit(0x1D, 2)));
    assert_eq!(d, want);
    assert_eq!(xs(&mut c, "80 CA DF 70 00").1, 0x6A88);
    // CPLC carries the serial.
    let (cplc, s) = xs(&mut c, "80 CA 9F 7F 00");
    assert_eq!(s, 0x9000);
    assert_eq!(&cplc[..3], &h("9F 7F 2A"));
    let serial = c.serial();
    assert_eq!(&cplc[3 + 12..3 + 16], &serial[..4]);
    assert_eq!(&cplc[3 + 30..3 + 34], &serial[4..]);
}

/// Select the security domain and open a session at C-MAC + C-DECRYPTION
/// with `keys`; the host's error if the card does not prove those keys.
fn try_session(
    c: &mut SimCard,
    keys: cardsmith_scp03::StaticKeys,
) -> Result<cardsmith_scp03::HostSession, cardsmith_scp03::Error> {
    use cardsmith_scp03::{HostSession, KeySource, Mode, SecurityLevel};
    use cardsmith_wire::apdu::Response;
    let mut sel = h("00 A4 04 00");
    sel.push(SD_AID.len() as u8);
    sel.extend_from_slice(&SD_AID);
    sel.push(0);
    let (fci, s) = x(c, &sel);
    assert_eq!(s, 0x9000);
    assert_eq!(fci[..4], [0x6F, 0x0F, 0x84, 0x07]);
    let mut host = HostSession::new(KeySource::Static(keys), Mode::S8, &[7u8; 8])?;
    let (d, s) = x(c, &host.initialize_update().encode().unwrap());
    host.process_initialize_update(&Response::new(d, s))?;
    let ea = host.external_authenticate(SecurityLevel::from_p1(0x03)?)?;
    let (d, s) = x(c, &ea.encode().unwrap());
    host.process_external_authenticate(&Response::new(d, s))?;
    Ok(host)
}

fn wrapped(
    c: &mut SimCard,
    host: &mut cardsmith_scp03::HostSession,
    cmd: cardsmith_wire::apdu::Command,
) -> (Vec<u8>, u16) {
    let w = host.wrap(&cmd).unwrap();
    let (d, s) = x(c, &w.encode().unwrap());
    let r = host
        .unwrap(&cardsmith_wire::apdu::Response::new(d, s))
        .unwrap();
    (r.data.clone(), r.sw.to_u16())
}

#[test]
fn its_security_domain_has_its_own_aid_and_keys() {
    use cardsmith_wire::apdu::Command;
    let keys = default_scp03_keys().unwrap();
    let source = cardsmith_scp03::KeySource::Static(keys.clone());
    let mut c = SimCard::blank_provisioned(
        SimConfig::domestic(),
        Provision {
            issuer_key: Some(&[0x11; 16]),
            scp03: Some(&source),
        },
    )
    .unwrap();
    c.power_on();
    assert!(c.state.issuer_key.is_none());
    let info = c.security_domain().unwrap();
    assert_eq!(info.aid, SD_AID.to_vec());
    assert_eq!(info.kvn, DEFAULT_KVN);
    // The GlobalPlatform default ISD AID is not this card's.
    assert_eq!(
        xs(&mut c, "00 A4 04 0C 08 A0 00 00 01 51 00 00 00").1,
        0x6A82
    );
    // INITIALIZE UPDATE needs the security domain selected.
    assert_eq!(
        xs(&mut c, "80 50 00 00 08 01 02 03 04 05 06 07 08 00").1,
        0x6985
    );
    // The GP test keys do not open it.
    let gp = cardsmith_scp03::StaticKeys::new(0x31, &[0x40; 16], &[0x41; 16], &[0x42; 16]).unwrap();
    assert!(try_session(&mut c, gp).is_err());
    // In clear, the issuer's commands are refused.
    select_eid(&mut c);
    select_ef(&mut c, 0x7101);
    assert_eq!(xs(&mut c, "00 D6 00 00 02 01 02").1, 0x6982);
    assert_eq!(xs(&mut c, "80 46 00 21 00").1, 0x6982);
    assert_eq!(set_status(&mut c, 0x07), 0x6982);
    // Through the channel they pass.
    let mut host = try_session(&mut c, keys).unwrap();
    let sel = Command::new(0x00, 0xA4, 0x00, 0x0C).with_data(vec![0x71, 0x01]);
    assert_eq!(wrapped(&mut c, &mut host, sel).1, 0x9000);
    let upd = Command::new(0x00, 0xD6, 0x00, 0x00).with_data(vec![0xAB; 239]);
    assert_eq!(wrapped(&mut c, &mut host, upd).1, 0x9000);
    let gen = Command::new(0x80, 0x46, 0x00, KEY_AUTH).with_ne(256);
    let (point, s) = wrapped(&mut c, &mut host, gen);
    assert_eq!((point.len(), point[0], s), (65, 0x04, 0x9000));
    let st = Command::new(0x80, 0xF0, 0x80, 0x07);
    assert_eq!(wrapped(&mut c, &mut host, st).1, 0x9000);
    // Plain commands beside the session are still not the issuer's.
    assert_eq!(xs(&mut c, "00 D6 00 00 02 01 02").1, 0x6982);
    assert_eq!(xs(&mut c, "00 B0 00 00 02"), (vec![0xAB, 0xAB], 0x9000));
    assert_eq!(c.security_domain().unwrap().sequence_counter, 2);
    // SECURED: through the channel the issuer still writes EFs
    // (certificate renewal), but generates no key.
    let st = Command::new(0x80, 0xF0, 0x80, 0x0F);
    assert_eq!(wrapped(&mut c, &mut host, st).1, 0x9000);
    let upd = Command::new(0x00, 0xD6, 0x00, 0x00).with_data(vec![0xCD; 4]);
    assert_eq!(wrapped(&mut c, &mut host, upd).1, 0x9000);
    let gen = Command::new(0x80, 0x46, 0x00, KEY_SIGN).with_ne(256);
    assert_eq!(wrapped(&mut c, &mut host, gen).1, 0x6985);
    // A reset ends the session: secure messaging is then refused.
    c.reset();
    assert_eq!(
        xs(&mut c, "04 D6 00 00 0A 01 02 01 02 03 04 05 06 07 08").1,
        0x6882
    );
    assert_eq!(
        xs(&mut c, "84 F0 80 FF 08 01 02 03 04 05 06 07 08").1,
        0x6882
    );
}

#[test]
fn the_image_keeps_the_os() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let mut c = SimCard::open_image(&path, SimConfig::domestic()).unwrap();
    c.power_on();
    let atr = c.atr();
    let mut d = pin_block("123456");
    d.extend(pin_block("5555"));
    assert_eq!(
        x(&mut c, &apdu([0x00, 0x24, 0x00, PIN_HOLDER], &d, None)).1,
        0x9000
    );
    let point = xs(&mut c, "80 46 00 21 00").0;
    drop(c);
    // Reopened with the reference configuration: the image decides.
    let mut c = SimCard::open_image(&path, SimConfig::default()).unwrap();
    c.power_on();
    assert_eq!(c.config().os, CardOs::Domestic);
    assert_eq!(c.atr(), atr);
    assert_eq!(verify(&mut c, PIN_HOLDER, "5555"), 0x9000);
    assert_eq!(xs(&mut c, "80 46 01 21 00").0, point);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"os\": \"domestic\""));
    // A reference image does not name its OS (unchanged format).
    let rpath = dir.path().join("ref.json");
    SimCard::open_image(&rpath, SimConfig::default()).unwrap();
    let text = std::fs::read_to_string(&rpath).unwrap();
    assert!(!text.contains("\"os\""));
    assert!(!text.contains("domestic"));
}

#[test]
fn a_domestic_image_without_its_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    SimCard::open_image(&path, SimConfig::domestic()).unwrap();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("domestic");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let e = SimCard::open_image(&path, SimConfig::domestic())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("domestic"), "{e}");
}

#[test]
fn inconsistent_domestic_images_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    SimCard::open_image(&path, SimConfig::domestic()).unwrap();
    let good: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    type Tamper = fn(&mut serde_json::Value);
    let cases: [(&str, Tamper); 4] = [
        ("life_cycle", |v| v["domestic"]["life_cycle"] = 3.into()),
        ("PIN 11", |v| {
            v["domestic"]["pins"][0]["tries_left"] = 9.into()
        }),
        ("key 21", |v| {
            v["domestic"]["keys"][0]["public"] = "04AA".into()
        }),
        ("reference card", |v| v["config"]["os"] = "reference".into()),
    ];
    for (what, tamper) in cases {
        let mut v = good.clone();
        tamper(&mut v);
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        let e = SimCard::open_image(&path, SimConfig::domestic())
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"))
            .to_string();
        assert!(
            e.contains("inconsistent") || e.contains("domestic"),
            "{what}: {e}"
        );
    }
}

fn provisioned() -> SimCard {
    let source = cardsmith_scp03::KeySource::Static(default_scp03_keys().unwrap());
    let mut c = SimCard::blank_provisioned(
        SimConfig::domestic(),
        Provision {
            issuer_key: None,
            scp03: Some(&source),
        },
    )
    .unwrap();
    c.power_on();
    c
}

proptest::proptest! {
    #[test]
    fn random_apdus_never_panic_with_a_security_domain(cmds in proptest::collection::vec(
        proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 1..20)) {
        let mut c = provisioned();
        let mut sel = h("00 A4 04 00 07");
        sel.extend_from_slice(&SD_AID);
        c.transmit(&sel);
        for mut a in cmds {
            if a.len() >= 2 {
                a[0] &= 0x8C;
                if a[1] & 1 == 1 {
                    a[1] = 0x50;
                }
            }
            let r = c.transmit(&a);
            proptest::prop_assert!(r.len() >= 2);
        }
    }

    #[test]
    fn random_apdus_never_panic(cmds in proptest::collection::vec(
        proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 1..20)) {
        let mut c = card();
        for mut a in cmds {
            if a.len() >= 2 {
                a[0] &= 0x9C;
            }
            let r = c.transmit(&a);
            proptest::prop_assert!(r.len() >= 2);
        }
    }
}
