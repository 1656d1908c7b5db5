//! Tests of the personalisation profile: issuer authentication, the card
//! life cycle register, PIN transport state, key objects, biometric
//! objects and image version 2. Driven by hex APDUs as a host sends them.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::tests::{create, h, hx, ok, ok_raw, sw_of, tx};
use super::*;
use ring::rand::SecureRandom;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

// ---------------------------------------------------------------- helpers

/// Short APDU (data ≤ 255 bytes).
fn apdu(hdr: [u8; 4], data: &[u8], le: Option<u8>) -> Vec<u8> {
    let mut v = hdr.to_vec();
    if !data.is_empty() {
        v.push(u8::try_from(data.len()).unwrap());
        v.extend_from_slice(data);
    }
    v.extend(le);
    v
}

fn swx(c: &mut SimCard, hdr: [u8; 4], data: &[u8], le: Option<u8>) -> u16 {
    sw_of(&c.transmit(&apdu(hdr, data, le)))
}

fn tlv(tag: u16, v: &[u8]) -> Vec<u8> {
    super::tlv::tlv(tag, v)
}

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    ring::rand::SystemRandom::new().fill(&mut v).unwrap();
    v
}

const KEY16: &str = "000102030405060708090A0B0C0D0E0F";

/// Host side of EXTERNAL AUTHENTICATE: AES-CMAC(key, challenge || serial).
fn cryptogram(key: &[u8], challenge: &[u8], serial: &[u8; 8]) -> Vec<u8> {
    let mut msg = challenge.to_vec();
    msg.extend_from_slice(serial);
    cardsmith_wire::crypto::aes_cmac(key, &msg)
        .unwrap()
        .to_vec()
}

fn ext_auth_apdu(crypt: &[u8]) -> Vec<u8> {
    apdu([0x00, 0x82, 0x00, 0x01], crypt, None)
}

/// GET CHALLENGE + EXTERNAL AUTHENTICATE with `key`; returns SW.
fn authenticate(c: &mut SimCard, key: &[u8], challenge_len: u8) -> u16 {
    let ch = ok_raw(c, &[0x00, 0x84, 0x00, 0x00, challenge_len]);
    let crypt = cryptogram(key, &ch, &c.serial());
    sw_of(&c.transmit(&ext_auth_apdu(&crypt)))
}

fn auth_ok(c: &mut SimCard) {
    assert_eq!(authenticate(c, &h(KEY16), 8), 0x9000);
}

fn keyed_card() -> SimCard {
    SimCard::blank_with_issuer_key(SimConfig::default(), &h(KEY16)).unwrap()
}

fn ef_fcp(fid: u16, size: u16, extra: &[u8]) -> Vec<u8> {
    let mut b = tlv(0x80, &size.to_be_bytes());
    b.extend(tlv(0x82, &[0x01]));
    b.extend(tlv(0x83, &fid.to_be_bytes()));
    b.extend_from_slice(extra);
    tlv(0x62, &b)
}

fn life_cycle(c: &mut SimCard) -> u8 {
    let r = ok(c, "00 CA DF 70 00");
    assert_eq!(r.len(), 4);
    assert_eq!(&r[..3], &[0xDF, 0x70, 0x01]);
    r[3]
}

/// `n` random minutiae in the compact card format: X, Y, then the type
/// (01 ending or 10 bifurcation, never the reserved 11) and a 6-bit angle.
fn minutiae(n: usize) -> Vec<u8> {
    random(3 * n)
        .chunks(3)
        .flat_map(|m| {
            [
                m[0],
                m[1],
                (if m[2] & 0x80 != 0 { 0x40 } else { 0x80 }) | (m[2] & 0x3F),
            ]
        })
        .collect()
}

/// Biometric matching algorithm parameters: 7..=60 minutiae, no order.
const B1: &str = "B1 07 8102073C 820100";

/// Enrolment data for a fingerprint with `template` and optional try limit.
/// The BIT nests the algorithm parameters B1 inside the header template A1
/// (ISO/IEC 7816-11 / 19794-2 §8.3 / MINEX II).
fn enrol_data(template: &[u8], limit: Option<u8>) -> Vec<u8> {
    let mut a1 = tlv(0x81, &[0x08]);
    a1.extend(tlv(0x82, &[0x05]));
    a1.extend(tlv(0x87, &[0x01, 0x01]));
    a1.extend(tlv(0x88, &[0x00, 0x06]));
    a1.extend(h(B1));
    let mut d = tlv(0x7F60, &tlv(0xA1, &a1));
    d.extend(tlv(0x5F2E, template));
    if let Some(l) = limit {
        d.extend(tlv(0x91, &[l]));
    }
    d
}

fn enrol(c: &mut SimCard, number: u8, template: &[u8], limit: Option<u8>) -> u16 {
    let d = enrol_data(template, limit);
    swx(c, [0x00, 0xDA, 0x02, 0x80 | number], &d, None)
}

fn probe_data(probe: &[u8]) -> Vec<u8> {
    tlv(0x7F2E, &tlv(0x81, probe))
}

fn verify_bio(c: &mut SimCard, number: u8, probe: &[u8]) -> u16 {
    swx(
        c,
        [0x00, 0x21, 0x00, 0x80 | number],
        &probe_data(probe),
        None,
    )
}

/// CRT for GENERATE ASYMMETRIC KEY PAIR.
fn crt(usage: u8, kid: u8, pin: Option<u8>, per_use: bool) -> Vec<u8> {
    let mut v = tlv(0x83, &[kid]);
    v.extend(tlv(0x80, &[0x11]));
    if let Some(p) = pin {
        v.extend(tlv(0x9C, &[p]));
    }
    if per_use {
        v.extend(tlv(0x9D, &[0x01]));
    }
    tlv(u16::from(usage), &v)
}

/// Generate a key, check the 7F49 layout, return the public point.
fn generate(c: &mut SimCard, usage: u8, kid: u8, pin: Option<u8>, per_use: bool) -> Vec<u8> {
    let r = ok_raw(
        c,
        &apdu(
            [0x00, 0x46, 0x00, 0x00],
            &crt(usage, kid, pin, per_use),
            Some(0),
        ),
    );
    parse_7f49(&r)
}

fn parse_7f49(r: &[u8]) -> Vec<u8> {
    assert_eq!(&r[..3], &[0x7F, 0x49, 0x4D], "{}", hx(r));
    assert_eq!(hx(&r[3..13]), "06082A8648CE3D030107");
    assert_eq!(&r[13..15], &[0x86, 0x41]);
    assert_eq!(r[15], 0x04);
    assert_eq!(r.len(), 80);
    r[15..].to_vec()
}

fn mse(c: &mut SimCard, usage: u8, kid: u8) -> u16 {
    let mut d = tlv(0x80, &[0x11]);
    d.extend(tlv(0x84, &[kid]));
    swx(c, [0x00, 0x22, 0x41, usage], &d, None)
}

fn sha256(m: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, m)
        .as_ref()
        .to_vec()
}

/// PSO CDS (ins 2A) or INTERNAL AUTHENTICATE (ins 88) over SHA-256(msg):
/// the raw response.
fn sign_raw(c: &mut SimCard, ins: u8, msg: &[u8]) -> Vec<u8> {
    let (p1, p2) = if ins == 0x2A { (0x9E, 0x9A) } else { (0, 0) };
    c.transmit(&apdu([0x00, ins, p1, p2], &sha256(msg), Some(0)))
}

/// Sign and check the signature with ring against `public`.
fn sign_and_check(c: &mut SimCard, ins: u8, public: &[u8]) {
    let msg = random(100);
    let r = sign_raw(c, ins, &msg);
    assert_eq!(sw_of(&r), 0x9000, "{}", hx(&r));
    let sig = &r[..r.len() - 2];
    assert_eq!(sig.len(), 64);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
        .verify(&msg, sig)
        .expect("signature verifies");
    // A different message does not verify with that signature.
    assert!(UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
        .verify(b"other", sig)
        .is_err());
}

fn sign_sw(c: &mut SimCard, ins: u8) -> u16 {
    sw_of(&sign_raw(c, ins, b"message"))
}

// ---------------------------------------------------------------- issuer key

#[test]
fn issuer_key_lengths() {
    for n in [16usize, 24, 32] {
        let key = random(n);
        let mut c = SimCard::blank_with_issuer_key(SimConfig::default(), &key).unwrap();
        assert_eq!(authenticate(&mut c, &key, 8), 0x9000, "AES-{}", n * 8);
        assert_eq!(authenticate(&mut c, &key, 16), 0x9000);
    }
    for n in [0usize, 8, 15, 17, 33] {
        let e = SimCard::blank_with_issuer_key(SimConfig::default(), &random(n))
            .err()
            .unwrap();
        assert_eq!(e.len, n);
    }
    let dir = tempfile::tempdir().unwrap();
    let e = SimCard::open_image_with(
        &dir.path().join("x.json"),
        SimConfig::default(),
        Some(&[1, 2, 3]),
    )
    .err()
    .unwrap();
    assert!(matches!(e, ImageError::Invalid { .. }), "{e}");
}

#[test]
fn blank_card_with_issuer_key_refuses_perso_without_auth() {
    let mut c = keyed_card();
    let refused = [
        "00 DA 01 01 06 80 04 31323334",
        "00 44 00 00",
        "00 04 00 00",
        "00 FE 00 00",
        "00 E4 00 00",
        "00 20 00 01 04 31323334",
        "00 20 FF 01",
        "00 24 00 01 08 3132333435363738",
        "00 2C 03 01",
        "00 22 41 B6 03 84 01 01",
        "00 2A 9E 9A 02 0000",
        "00 88 00 00 02 0000",
        "00 46 00 00 05 B6 03 830101 00",
        "00 D6 00 00 01 00",
        "00 E6 00 00",
    ];
    for a in refused {
        assert_eq!(tx(&mut c, a), "6982", "{a}");
    }
    assert_eq!(create(&mut c, &ef_fcp(0x1001, 4, &[])), 0x6982);
    let d = enrol_data(&minutiae(10), None);
    assert_eq!(swx(&mut c, [0, 0xDA, 0x02, 0x81], &d, None), 0x6982);
    // What works without authentication.
    ok(&mut c, "00 A4 00 0C 02 3F00");
    assert_eq!(tx(&mut c, "00 B0 00 00 01"), "6986"); // reaches READ BINARY
    assert_eq!(tx(&mut c, "00 B1 00 00 03 540100"), "6986");
    assert_eq!(ok(&mut c, "00 84 00 00 08").len(), 8);
    assert_eq!(life_cycle(&mut c), 0x01);
    ok(&mut c, "00 CA 9F 7F 00");
    assert_eq!(tx(&mut c, "00 20 00 01"), "6A88"); // status query reaches the card
    assert_eq!(tx(&mut c, "00 21 00 81"), "6A88");
    assert_eq!(tx(&mut c, "00 C0 00 00 00"), "6985");
    // After EXTERNAL AUTHENTICATE: personalisation works.
    auth_ok(&mut c);
    assert!(c.vol.issuer_authenticated);
    ok(&mut c, "00 DA 01 01 06 80 04 31323334");
    assert_eq!(create(&mut c, &ef_fcp(0x1001, 4, &[])), 0x9000);
    // Reset and power events clear the authentication.
    c.reset();
    assert_eq!(tx(&mut c, "00 DA 01 02 06 80 04 31323334"), "6982");
    auth_ok(&mut c);
    c.power_off();
    c.power_on();
    assert!(!c.vol.issuer_authenticated);
    assert_eq!(create(&mut c, &ef_fcp(0x1002, 4, &[])), 0x6982);
}

#[test]
fn external_authenticate_errors_and_single_use_challenge() {
    let mut c = keyed_card();
    let key = h(KEY16);
    let serial = c.serial();
    // No challenge.
    let dummy = [0u8; 16];
    assert_eq!(sw_of(&c.transmit(&ext_auth_apdu(&dummy))), 0x6985);
    let ch = ok(&mut c, "00 84 00 00 08");
    let good = cryptogram(&key, &ch, &serial);
    // Wrong P1 / P2 consume the challenge too.
    assert_eq!(swx(&mut c, [0, 0x82, 0x01, 0x01], &good, None), 0x6A86);
    assert_eq!(sw_of(&c.transmit(&ext_auth_apdu(&good))), 0x6985);
    let ch = ok(&mut c, "00 84 00 00 08");
    let good = cryptogram(&key, &ch, &serial);
    assert_eq!(swx(&mut c, [0, 0x82, 0x00, 0x02], &good, None), 0x6A88);
    let ch = ok(&mut c, "00 84 00 00 10");
    let good = cryptogram(&key, &ch, &serial);
    assert_eq!(swx(&mut c, [0, 0x82, 0x00, 0x01], &good[..8], None), 0x6700);
    assert_eq!(swx(&mut c, [0, 0x82, 0x00, 0x01], &[], None), 0x6700);
    // Challenge of another length than 8/16 is not usable.
    let ch = ok(&mut c, "00 84 00 00 04");
    let crypt = cryptogram(&key, &ch, &serial);
    assert_eq!(sw_of(&c.transmit(&ext_auth_apdu(&crypt))), 0x6985);
    // The right cryptogram works once, not twice.
    let ch = ok(&mut c, "00 84 00 00 10");
    let good = cryptogram(&key, &ch, &serial);
    assert_eq!(sw_of(&c.transmit(&ext_auth_apdu(&good))), 0x9000);
    assert_eq!(sw_of(&c.transmit(&ext_auth_apdu(&good))), 0x6985);
    // A failed EXTERNAL AUTHENTICATE drops the authentication.
    assert!(!c.vol.issuer_authenticated);
    assert_eq!(c.state.issuer_tries_left, 10);
    // The cryptogram is bound to the serial.
    let ch = ok(&mut c, "00 84 00 00 08");
    let other_serial = [0xFFu8; 8];
    let crypt = cryptogram(&key, &ch, &other_serial);
    assert_eq!(sw_of(&c.transmit(&ext_auth_apdu(&crypt))), 0x63C9);
    // A card without issuer key has no key 1.
    let mut plain = SimCard::blank(SimConfig::default());
    ok(&mut plain, "00 84 00 00 08");
    assert_eq!(sw_of(&plain.transmit(&ext_auth_apdu(&dummy))), 0x6A88);
}

#[test]
fn issuer_retry_counter_and_blocking_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let key = h(KEY16);
    let wrong = random(16);
    {
        let mut c = SimCard::open_image_with(&path, SimConfig::default(), Some(&key)).unwrap();
        assert_eq!(authenticate(&mut c, &wrong, 8), 0x63C9);
        assert_eq!(authenticate(&mut c, &wrong, 8), 0x63C8);
        // The right key restores the counter.
        assert_eq!(authenticate(&mut c, &key, 8), 0x9000);
        assert_eq!(c.state.issuer_tries_left, 10);
        for left in (0..10u16).rev() {
            assert_eq!(authenticate(&mut c, &wrong, 8), 0x63C0 | left);
        }
        assert!(!c.vol.issuer_authenticated);
        assert_eq!(authenticate(&mut c, &key, 8), 0x6983);
    }
    // Blocked for ever, also after reopening.
    let mut c = SimCard::open_image_with(&path, SimConfig::default(), None).unwrap();
    assert_eq!(c.state.issuer_tries_left, 0);
    assert_eq!(authenticate(&mut c, &key, 16), 0x6983);
    assert_eq!(tx(&mut c, "00 DA 01 01 06 80 04 31323334"), "6982");
}

#[test]
fn issuer_counter_is_tear_safe() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("card.json");
    let key = h(KEY16);
    let mut c = SimCard::open_image_with(&path, SimConfig::default(), Some(&key)).unwrap();
    std::fs::remove_dir_all(&sub).unwrap();
    // The decrement cannot be written: no comparison, counter unchanged.
    assert_eq!(authenticate(&mut c, &key, 8), 0x6581);
    assert_eq!(c.state.issuer_tries_left, 10);
    assert!(!c.vol.issuer_authenticated);
}

#[test]
fn external_authentication_in_access_rules() {
    use super::security::{access_allowed_with, SecStatus};
    let issuer = SecStatus {
        verified: 0,
        issuer: true,
    };
    let none = SecStatus::default();
    let pin1 = SecStatus {
        verified: 1 << 1,
        issuer: false,
    };
    let both = SecStatus {
        verified: 1 << 1,
        issuer: true,
    };
    // SC 21: external authentication (b6) with key 1.
    assert!(access_allowed_with(Some(&h("01 21")), 0x01, issuer).is_ok());
    assert_eq!(
        access_allowed_with(Some(&h("01 21")), 0x01, none),
        Err(0x6982)
    );
    assert_eq!(
        access_allowed_with(Some(&h("01 21")), 0x01, pin1),
        Err(0x6982)
    );
    // Key 2 does not exist.
    assert_eq!(
        access_allowed_with(Some(&h("01 22")), 0x01, issuer),
        Err(0x6982)
    );
    // SC 41 is secure messaging (b7), never satisfied.
    assert_eq!(
        access_allowed_with(Some(&h("01 41")), 0x01, issuer),
        Err(0x6982)
    );
    // 31: at least one of PIN 1 / key 1; B1: both.
    assert!(access_allowed_with(Some(&h("01 31")), 0x01, issuer).is_ok());
    assert!(access_allowed_with(Some(&h("01 31")), 0x01, pin1).is_ok());
    assert_eq!(
        access_allowed_with(Some(&h("01 B1")), 0x01, pin1),
        Err(0x6982)
    );
    assert_eq!(
        access_allowed_with(Some(&h("01 B1")), 0x01, issuer),
        Err(0x6982)
    );
    assert!(access_allowed_with(Some(&h("01 B1")), 0x01, both).is_ok());
    assert_eq!(
        access_allowed_with(Some(&h("01 A1")), 0x01, pin1),
        Err(0x6982)
    );
    assert!(access_allowed_with(Some(&h("01 A1")), 0x01, issuer).is_ok());
    assert_eq!(
        access_allowed_with(Some(&h("01 E1")), 0x01, both),
        Err(0x6982)
    );

    // Through the card: an EF whose UPDATE needs the issuer key, READ free.
    let mut c = keyed_card();
    auth_ok(&mut c);
    let rule = tlv(0x8C, &h("03 21 00"));
    assert_eq!(create(&mut c, &ef_fcp(0x2001, 4, &rule)), 0x9000);
    ok(&mut c, "00 A4 00 0C 02 3F00");
    ok(&mut c, "00 44 00 00"); // close personalisation
    c.reset();
    ok(&mut c, "00 A4 00 0C 02 2001");
    ok(&mut c, "00 B0 00 00 04");
    assert_eq!(tx(&mut c, "00 D6 00 00 01 AA"), "6982");
    auth_ok(&mut c);
    ok(&mut c, "00 D6 00 00 01 AA");
}

// ---------------------------------------------------------------- life cycle

#[test]
fn life_cycle_transitions_and_refusals() {
    let mut c = keyed_card();
    assert_eq!(life_cycle(&mut c), 0x01);
    assert_eq!(hx(&ok(&mut c, "80 CA DF 70 00")), "DF700101");
    assert_eq!(tx(&mut c, "00 CA DF 70 02"), "6C04");
    auth_ok(&mut c);
    ok(&mut c, "00 DA 01 01 09 80 04 31323334 85 01 01"); // transport PIN
    ok(&mut c, "00 DA 01 02 0D 80 08 3132333435363738 85 01 01"); // transport PUK
    ok(&mut c, "00 DA 01 01 0C 80 04 31323334 82 01 02 85 01 01");
    let finger = minutiae(20);
    assert_eq!(enrol(&mut c, 3, &finger, None), 0x9000);
    assert_eq!(create(&mut c, &ef_fcp(0x2001, 8, &[])), 0x9000);
    generate(&mut c, 0xB6, 1, Some(1), true);
    // Close personalisation.
    ok(&mut c, "00 A4 00 0C 02 3F00");
    ok(&mut c, "00 44 00 00");
    assert_eq!(life_cycle(&mut c), 0x03);
    assert_eq!(c.state.mf_lcs(), 0x05);
    assert_eq!(c.atr()[12], 0x05);
    // Structure and objects are frozen.
    assert_eq!(create(&mut c, &ef_fcp(0x2002, 8, &[])), 0x6985);
    assert_eq!(tx(&mut c, "00 E4 00 00 02 2001"), "6985");
    assert_eq!(tx(&mut c, "00 DA 01 04 06 80 04 31323334"), "6985");
    assert_eq!(enrol(&mut c, 5, &finger, None), 0x6985);
    let g = apdu([0, 0x46, 0, 0], &crt(0xB6, 2, None, false), Some(0));
    assert_eq!(sw_of(&c.transmit(&g)), 0x6985);
    auth_ok(&mut c); // even with the issuer key
    assert_eq!(create(&mut c, &ef_fcp(0x2002, 8, &[])), 0x6985);
    assert_eq!(sw_of(&c.transmit(&g)), 0x6985);
    c.reset();
    // Holder activation needs a biometric verification...
    assert_eq!(tx(&mut c, "00 44 00 00 02 3F00"), "6985");
    assert_eq!(verify_bio(&mut c, 3, &finger), 0x9000);
    // ...and no PIN (other than a PUK) in transport state.
    assert_eq!(tx(&mut c, "00 44 00 00 02 3F00"), "6985");
    assert_eq!(tx(&mut c, "00 24 00 01 08 31323334 35353535"), "9000");
    // PIN 2 is a PUK still in transport state: does not block activation.
    assert!(c.state.pin(2).unwrap().transport);
    ok(&mut c, "00 44 00 00 02 3F00");
    assert_eq!(life_cycle(&mut c), 0x07);
    assert_eq!(c.state.mf_lcs(), 0x05);
    // Again: no change.
    ok(&mut c, "00 44 00 00 02 3F00");
    assert_eq!(life_cycle(&mut c), 0x07);
    // Termination.
    ok(&mut c, "00 FE 00 00");
    assert_eq!(c.state.life_cycle, 0x0F);
    assert_eq!(tx(&mut c, "00 CA DF 70 00"), "6A81");
}

#[test]
fn keyless_card_life_cycle() {
    let mut c = SimCard::blank(SimConfig::default());
    assert_eq!(life_cycle(&mut c), 0x01);
    assert_eq!(enrol(&mut c, 1, &minutiae(12), None), 0x9000);
    ok(&mut c, "00 44 00 00");
    assert_eq!(life_cycle(&mut c), 0x03);
    // Without an issuer key the file structure stays open (as before).
    assert_eq!(create(&mut c, &ef_fcp(0x2002, 8, &[])), 0x9000);
    // PIN creation is closed, as before.
    assert_eq!(tx(&mut c, "00 DA 01 04 06 80 04 31323334"), "6985");
    assert_eq!(tx(&mut c, "00 A4 00 0C 02 3F00"), "9000");
    assert_eq!(tx(&mut c, "00 44 00 00"), "6985");
    // TERMINATE DF on the MF terminates the card too.
    ok(&mut c, "00 E6 00 00 02 3F00");
    assert_eq!(c.state.life_cycle, 0x0F);
}

#[test]
fn deactivated_mf_is_only_reactivated() {
    let mut c = SimCard::blank(SimConfig::default());
    ok(&mut c, "00 44 00 00");
    ok(&mut c, "00 04 00 00 02 3F00");
    assert_eq!(c.state.mf_lcs(), 0x04);
    ok(&mut c, "00 44 00 00 02 3F00"); // 04 → 05, no life cycle step
    assert_eq!(c.state.mf_lcs(), 0x05);
    assert_eq!(life_cycle(&mut c), 0x03);
}

// ---------------------------------------------------------------- PIN transport

#[test]
fn transport_pin_states() {
    let mut c = SimCard::blank(SimConfig::default());
    assert_eq!(tx(&mut c, "00 DA 01 01 09 80 04 31323334 85 01 02"), "6A80");
    assert_eq!(
        tx(&mut c, "00 DA 01 01 0A 80 04 31323334 85 02 0101"),
        "6A80"
    );
    // PIN 1 (transport, PUK 2), PUK 2 (transport), PIN 3 (transport), PIN 4.
    ok(&mut c, "00 DA 01 01 0C 80 04 31323334 82 01 02 85 01 01");
    ok(&mut c, "00 DA 01 02 0D 80 08 3837363534333231 85 01 01");
    ok(&mut c, "00 DA 01 83 09 80 04 30303030 85 01 01");
    ok(&mut c, "00 DA 01 04 09 80 04 39393939 85 01 00");
    let finger = minutiae(15);
    assert_eq!(enrol(&mut c, 5, &finger, Some(4)), 0x9000);
    // DF71: status of every object, no secrets.
    let d = ok(&mut c, "00 CA DF 71 00");
    assert_eq!(
        hx(&d),
        "A00C830181910103920103930101\
         A00C830182910103920103930105\
         A00C830183910103920103930101\
         A00C830184910103920103930100\
         A10C830185910104920104930100"
    );
    // VERIFY of a transport PIN: 6984, no try used.
    assert_eq!(tx(&mut c, "00 20 00 01 04 31323334"), "6984");
    assert_eq!(tx(&mut c, "00 20 00 01 04 30303030"), "6984");
    assert_eq!(tx(&mut c, "00 20 00 01"), "63C3");
    // RESET RETRY COUNTER with a transport PUK: 6984.
    assert_eq!(
        tx(&mut c, "00 2C 00 01 0C 3837363534333231 35353535"),
        "6984"
    );
    assert_eq!(tx(&mut c, "00 2C 01 01 08 3837363534333231"), "6984");
    // CHANGE REFERENCE DATA with the transport value: wrong old costs a try.
    assert_eq!(tx(&mut c, "00 24 00 01 08 30303030 35353535"), "63C2");
    assert_eq!(tx(&mut c, "00 24 00 01 08 31323334 35353535"), "9000");
    assert!(!c.state.pin(1).unwrap().transport);
    assert_eq!(tx(&mut c, "00 20 00 01"), "9000"); // verified by the change
    c.reset();
    assert_eq!(tx(&mut c, "00 20 00 01 04 35353535"), "9000");
    // PIN 3: new value with P1=01 needs a verified biometric object.
    assert_eq!(tx(&mut c, "00 24 01 03 04 36363636"), "6982");
    assert_eq!(verify_bio(&mut c, 5, &finger), 0x9000);
    assert_eq!(tx(&mut c, "00 24 01 03 04 36363636"), "9000");
    assert!(!c.state.pin(3).unwrap().transport);
    c.reset();
    assert_eq!(tx(&mut c, "00 20 00 03 04 36363636"), "9000");
    // The biometric rule is only for transport PINs: PIN 4 needs PIN 4.
    assert_eq!(verify_bio(&mut c, 5, &finger), 0x9000);
    assert_eq!(tx(&mut c, "00 24 01 04 04 37373737"), "6982");
    // PUK out of transport; then it can reset PIN 1.
    assert_eq!(
        tx(&mut c, "00 24 00 02 10 3837363534333231 3132313231323132"),
        "9000"
    );
    assert_eq!(
        tx(&mut c, "00 2C 00 01 0C 3132313231323132 34343434"),
        "9000"
    );
    let d = ok(&mut c, "00 CA DF 71 00");
    assert_eq!(
        hx(&d[..28]),
        "A00C830181910103920103930100A00C830182910103920103930104"
    );
    // A biometric number cannot be used for a PIN and vice versa.
    assert_eq!(tx(&mut c, "00 DA 01 05 06 80 04 31323334"), "6A86");
    assert_eq!(enrol(&mut c, 1, &finger, None), 0x6A86);
    // No PIN, no biometric object: empty DF71.
    let mut e = SimCard::blank(SimConfig::default());
    assert_eq!(tx(&mut e, "00 CA DF 71 00"), "9000");
}

// ---------------------------------------------------------------- keys

#[test]
fn keygen_mse_pso_signature_verifies_with_ring() {
    let mut c = SimCard::blank(SimConfig::default());
    let public = generate(&mut c, 0xB6, 1, None, false);
    // Read back (P1=81) the same point.
    let r = ok_raw(
        &mut c,
        &apdu([0, 0x46, 0x81, 0x00], &crt(0xB6, 1, None, false), Some(0)),
    );
    assert_eq!(parse_7f49(&r), public);
    assert_eq!(mse(&mut c, 0xB6, 1), 0x9000);
    sign_and_check(&mut c, 0x2A, &public);
    sign_and_check(&mut c, 0x2A, &public);
    // MSE without the algorithm reference.
    assert_eq!(
        swx(&mut c, [0, 0x22, 0x41, 0xB6], &h("840101"), None),
        0x9000
    );
    sign_and_check(&mut c, 0x2A, &public);
    // Regenerating the same reference replaces the key.
    let public2 = generate(&mut c, 0xB6, 1, None, false);
    assert_ne!(public, public2);
    assert_eq!(c.state.keys.len(), 1);
    sign_and_check(&mut c, 0x2A, &public2);
}

#[test]
fn key_command_errors() {
    let mut c = SimCard::blank(SimConfig::default());
    let g = |p1: u8, d: &[u8]| apdu([0, 0x46, p1, 0], d, Some(0));
    let sw = |c: &mut SimCard, a: Vec<u8>| sw_of(&c.transmit(&a));
    let good = crt(0xB6, 1, None, false);
    assert_eq!(sw(&mut c, g(0x01, &good)), 0x6A86);
    assert_eq!(sw(&mut c, g(0x80, &good)), 0x6A86);
    assert_eq!(sw(&mut c, apdu([0, 0x46, 0, 1], &good, Some(0))), 0x6A86);
    assert_eq!(sw(&mut c, g(0x00, &[])), 0x6700);
    for bad in [
        "B6 03 830105",               // kid 5
        "B6 03 830100",               // kid 0
        "B6 06 830101 800112",        // algorithm
        "B6 00",                      // no kid
        "B6 06 830101 830102",        // duplicate
        "B6 06 830101 990101",        // unknown object
        "B6 06 830101 9D0101",        // 9D without 9C
        "B6 09 830101 9C0101 9D0102", // 9D value
        "B6 06 830101 9C0110",        // bad PIN reference
        "A5 03 830101",               // other template
        "B6 03 830101 A4 03 830102",  // two templates
        "B6 04 830101",               // truncated
    ] {
        assert_eq!(sw(&mut c, g(0x00, &h(bad))), 0x6A80, "{bad}");
    }
    assert_eq!(sw(&mut c, g(0x81, &good)), 0x6A88);
    generate(&mut c, 0xB6, 1, None, false);
    generate(&mut c, 0xA4, 2, Some(0x81), false);
    // Read with the other usage.
    assert_eq!(sw(&mut c, g(0x81, &crt(0xA4, 1, None, false))), 0x6A88);
    // MSE.
    assert_eq!(mse(&mut c, 0xB6, 3), 0x6A88);
    assert_eq!(mse(&mut c, 0xA4, 1), 0x6A80);
    assert_eq!(mse(&mut c, 0xB6, 2), 0x6A80);
    assert_eq!(mse(&mut c, 0xB8, 1), 0x6A86);
    assert_eq!(
        swx(&mut c, [0, 0x22, 0x81, 0xB6], &h("840101"), None),
        0x6A86
    );
    assert_eq!(
        swx(&mut c, [0, 0x22, 0x41, 0xB6], &h("800112 840101"), None),
        0x6A80
    );
    assert_eq!(
        swx(&mut c, [0, 0x22, 0x41, 0xB6], &h("800111"), None),
        0x6A80
    );
    assert_eq!(swx(&mut c, [0, 0x22, 0x41, 0xB6], &[], None), 0x6A80);
    // PSO / INTERNAL AUTHENTICATE without MSE.
    assert_eq!(sign_sw(&mut c, 0x2A), 0x6985);
    assert_eq!(sign_sw(&mut c, 0x88), 0x6985);
    assert_eq!(mse(&mut c, 0xB6, 1), 0x9000);
    assert_eq!(
        swx(&mut c, [0, 0x2A, 0x9E, 0x9A], &[0; 31], Some(0)),
        0x6A80
    );
    assert_eq!(
        swx(&mut c, [0, 0x2A, 0x9E, 0x9A], &[0; 33], Some(0)),
        0x6A80
    );
    assert_eq!(swx(&mut c, [0, 0x2A, 0x9E, 0x9A], &[], Some(0)), 0x6A80);
    assert_eq!(
        swx(&mut c, [0, 0x2A, 0x9E, 0x9B], &[0; 32], Some(0)),
        0x6A86
    );
    assert_eq!(
        swx(&mut c, [0, 0x88, 0x00, 0x01], &[0; 32], Some(0)),
        0x6A86
    );
    // The MSE is volatile.
    c.reset();
    assert_eq!(sign_sw(&mut c, 0x2A), 0x6985);
    // Four key references at most; a fifth cannot be named.
    generate(&mut c, 0xA4, 3, None, false);
    generate(&mut c, 0xA4, 4, None, false);
    assert_eq!(c.state.keys.len(), 4);
}

#[test]
fn internal_authenticate_verifies_with_ring() {
    let mut c = keyed_card();
    auth_ok(&mut c);
    let public = generate(&mut c, 0xA4, 2, None, false);
    let sig_pub = generate(&mut c, 0xB6, 1, None, false);
    assert_eq!(mse(&mut c, 0xA4, 2), 0x9000);
    assert_eq!(mse(&mut c, 0xB6, 1), 0x9000);
    sign_and_check(&mut c, 0x88, &public); // BLANK, issuer authenticated
    sign_and_check(&mut c, 0x2A, &sig_pub);
    ok(&mut c, "00 44 00 00"); // PERSONALIZED
    c.reset();
    // Card-authenticity check at pickup: free; signatures need the issuer.
    assert_eq!(mse(&mut c, 0xA4, 2), 0x9000);
    assert_eq!(mse(&mut c, 0xB6, 1), 0x9000);
    sign_and_check(&mut c, 0x88, &public);
    assert_eq!(sign_sw(&mut c, 0x2A), 0x6982);
    auth_ok(&mut c);
    sign_and_check(&mut c, 0x2A, &sig_pub);
    // BLANK card with issuer key, not authenticated: even MSE is refused.
    let mut b = keyed_card();
    auth_ok(&mut b);
    generate(&mut b, 0xA4, 1, None, false);
    b.reset();
    assert_eq!(mse(&mut b, 0xA4, 1), 0x6982);
    assert_eq!(sign_sw(&mut b, 0x88), 0x6982);
}

/// Personalise a keyed card fully and activate it: PIN 1 (signature PIN,
/// "1234"), PIN 2 (authentication PIN, "5678"), fingerprint 3, key 1 (B6,
/// PIN 1, one entry per signature), key 2 (A4, PIN 2). Returns the
/// fingerprint and the two public keys.
fn activated_card(c: &mut SimCard) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    auth_ok(c);
    ok(c, "00 DA 01 01 06 80 04 31323334");
    ok(c, "00 DA 01 02 06 80 04 35363738");
    let finger = minutiae(25);
    assert_eq!(enrol(c, 3, &finger, None), 0x9000);
    let sig = generate(c, 0xB6, 1, Some(0x81), true);
    let aut = generate(c, 0xA4, 2, Some(0x82), false);
    ok(c, "00 44 00 00 02 3F00");
    assert_eq!(verify_bio(c, 3, &finger), 0x9000);
    ok(c, "00 44 00 00 02 3F00");
    assert_eq!(life_cycle(c), 0x07);
    c.reset();
    (finger, sig, aut)
}

#[test]
fn signature_pin_is_consumed_per_signature_after_activation() {
    let mut c = keyed_card();
    let (_, sig, aut) = activated_card(&mut c);
    assert_eq!(mse(&mut c, 0xB6, 1), 0x9000);
    assert_eq!(mse(&mut c, 0xA4, 2), 0x9000);
    // Issuer authentication does not replace the holder's PIN.
    auth_ok(&mut c);
    assert_eq!(sign_sw(&mut c, 0x2A), 0x6982);
    assert_eq!(sign_sw(&mut c, 0x88), 0x6982);
    // The wrong PIN does not authorise.
    ok(&mut c, "00 20 00 02 04 35363738");
    assert_eq!(sign_sw(&mut c, 0x2A), 0x6982);
    ok(&mut c, "00 20 00 01 04 31323334");
    sign_and_check(&mut c, 0x2A, &sig);
    // One PIN entry, one signature.
    assert_eq!(tx(&mut c, "00 20 00 01"), "63C3");
    assert_eq!(sign_sw(&mut c, 0x2A), 0x6982);
    ok(&mut c, "00 20 00 01 04 31323334");
    sign_and_check(&mut c, 0x2A, &sig);
    assert_eq!(sign_sw(&mut c, 0x2A), 0x6982);
    // The authentication key keeps its PIN verified (no 9D).
    sign_and_check(&mut c, 0x88, &aut);
    sign_and_check(&mut c, 0x88, &aut);
    c.reset();
    assert_eq!(mse(&mut c, 0xA4, 2), 0x9000);
    assert_eq!(sign_sw(&mut c, 0x88), 0x6982);
}

// ---------------------------------------------------------------- biometrics

#[test]
fn biometric_enrolment_rules() {
    let mut c = SimCard::blank(SimConfig::default());
    let m = minutiae(10);
    assert_eq!(enrol(&mut c, 1, &m[..29], None), 0x6A80); // not a multiple of 3
    assert_eq!(enrol(&mut c, 1, &[], None), 0x6A80);
    assert_eq!(enrol(&mut c, 1, &minutiae(61), None), 0x6A80);
    assert_eq!(enrol(&mut c, 1, &m, Some(0)), 0x6A80);
    assert_eq!(enrol(&mut c, 1, &m, Some(16)), 0x6A80);
    let enrol_raw = |c: &mut SimCard, p2: u8, d: &[u8]| swx(c, [0, 0xDA, 0x02, p2], d, None);
    assert_eq!(enrol_raw(&mut c, 0x01, &enrol_data(&m, None)), 0x6A86);
    assert_eq!(enrol_raw(&mut c, 0x80, &enrol_data(&m, None)), 0x6A86);
    assert_eq!(enrol_raw(&mut c, 0x90, &enrol_data(&m, None)), 0x6A86);
    assert_eq!(enrol_raw(&mut c, 0x81, &[]), 0x6700);
    // Header variants.
    let header = |a1: &str| {
        let mut d = tlv(0x7F60, &tlv(0xA1, &h(a1)));
        d.extend(tlv(0x5F2E, &m));
        d
    };
    assert_eq!(
        enrol_raw(
            &mut c,
            0x81,
            &header(&format!("810108 870201 01 880200 06 {B1}"))
        ),
        0x9000
    ); // 82 optional
    for bad in [
        format!("810109 870201 01 880200 06 {B1}"), // not a fingerprint
        format!("810108 870201 02 880200 06 {B1}"), // format owner
        format!("810108 870201 01 {B1}"),           // no format type
        format!("870201 01 880200 06 {B1}"),        // no type
        format!("810108 810108 870201 01 880200 06 {B1}"), // duplicate
        format!("810108 870201 01 880200 06 990100 {B1}"), // unknown
        "810108 870201 01 880200 06".to_string(),   // no algorithm parameters
        format!("810108 870201 01 880200 06 {B1} {B1}"), // two B1
        "810108 870201 01 880200 06 B1 03 820100".into(), // no min/max
        "810108 870201 01 880200 06 B1 03 81013C".into(), // 81 of one byte (the old layout)
        "810108 870201 01 880200 06 B1 04 8102073C".into(), // no order
        "810108 870201 01 880200 06 B1 07 8102073D 820100".into(), // max 61 > the card's 60
        "810108 870201 01 880200 06 B1 07 81020807 820100".into(), // min > max
        "810108 870201 01 880200 06 B1 07 8102073C 820103".into(), // order: ascending, no method
        "810108 870201 01 880200 06 B1 07 8102073C 820107".into(), // order: reserved direction
        "810108 870201 01 880200 06 B1 07 8102073C 820120".into(), // order: reserved bit
        "810108 870201 01 880200 06 B1 0A 8102073C 820100 990100".into(), // unknown in B1
    ] {
        assert_eq!(enrol_raw(&mut c, 0x81, &header(&bad)), 0x6A80, "{bad}");
    }
    // B1 beside A1 (in the BIT, not in the header template) is not the
    // standard's layout: refused.
    let a1 = h("810108 870201 01 880200 06");
    let mut beside = tlv(0xA1, &a1);
    beside.extend(h(B1));
    let mut d = tlv(0x7F60, &beside);
    d.extend(tlv(0x5F2E, &m));
    assert_eq!(enrol_raw(&mut c, 0x81, &d), 0x6A80);
    // A template longer than the BIT's maximum is refused.
    let mut d = tlv(
        0x7F60,
        &tlv(0xA1, &h("810108 870201 01 880200 06 B1 07 8102070A 820100")),
    );
    d.extend(tlv(0x5F2E, &minutiae(11)));
    assert_eq!(enrol_raw(&mut c, 0x81, &d), 0x6A80);
    let mut no_template = tlv(
        0x7F60,
        &tlv(0xA1, &h(&format!("810108 870201 01 880200 06 {B1}"))),
    );
    assert_eq!(enrol_raw(&mut c, 0x82, &no_template), 0x6A80);
    no_template.extend(tlv(0x5F2E, &m));
    no_template.extend(tlv(0x5F2E, &m));
    assert_eq!(enrol_raw(&mut c, 0x82, &no_template), 0x6A80);
    assert_eq!(enrol_raw(&mut c, 0x82, &tlv(0x5F2E, &m)), 0x6A80);
    // 60 minutiae is the maximum.
    assert_eq!(enrol(&mut c, 2, &minutiae(60), Some(15)), 0x9000);
    // Memory is charged.
    let mut small = SimCard::blank(SimConfig {
        memory_bytes: 100,
        ..SimConfig::default()
    });
    assert_eq!(enrol(&mut small, 1, &minutiae(60), None), 0x6A84);
}

#[test]
fn biometric_verify_tries_and_blocking() {
    let mut c = SimCard::blank(SimConfig::default());
    let finger = minutiae(30);
    assert_eq!(enrol(&mut c, 3, &finger, Some(3)), 0x9000);
    assert_eq!(tx(&mut c, "00 21 00 83"), "63C3");
    assert_eq!(tx(&mut c, "00 21 00 03"), "63C3"); // global reference, same object
    assert_eq!(tx(&mut c, "00 21 00 84"), "6A88");
    assert_eq!(tx(&mut c, "00 21 01 83"), "6A86");
    assert_eq!(verify_bio(&mut c, 3, &finger), 0x9000);
    assert_eq!(tx(&mut c, "00 21 00 83"), "9000");
    assert_eq!(tx(&mut c, "00 21 FF 83"), "9000");
    assert_eq!(tx(&mut c, "00 21 00 83"), "63C3");
    // Malformed probes: 6A80, no try used.
    for bad in [
        tlv(0x7F2E, &tlv(0x81, &finger[..4])),
        tlv(0x7F2E, &tlv(0x82, &finger)),
        tlv(0x7F2E, &[]),
        tlv(0x81, &finger),
        h("7F2E 05 81 03 0102"),
        tlv(0x7F2E, &tlv(0x81, &minutiae(61))),
    ] {
        assert_eq!(
            swx(&mut c, [0, 0x21, 0, 0x83], &bad, None),
            0x6A80,
            "{}",
            hx(&bad)
        );
    }
    assert_eq!(tx(&mut c, "00 21 00 83"), "63C3");
    // A probe of different random minutiae does not match.
    assert_eq!(verify_bio(&mut c, 3, &minutiae(30)), 0x63C2);
    assert_eq!(verify_bio(&mut c, 3, &finger), 0x9000); // counter restored
    assert_eq!(verify_bio(&mut c, 3, &minutiae(30)), 0x63C2);
    assert_eq!(tx(&mut c, "00 21 00 83"), "63C2"); // no match clears the status
    assert_eq!(verify_bio(&mut c, 3, &minutiae(30)), 0x63C1);
    assert_eq!(verify_bio(&mut c, 3, &minutiae(30)), 0x63C0);
    assert_eq!(verify_bio(&mut c, 3, &finger), 0x6983);
    assert_eq!(tx(&mut c, "00 21 00 83"), "6983");
    let d = ok(&mut c, "00 CA DF 71 00");
    assert_eq!(hx(&d), "A10C830183910100920103930102");
}

#[test]
fn biometric_object_satisfies_access_rules() {
    let mut c = SimCard::blank(SimConfig::default());
    let finger = minutiae(20);
    assert_eq!(enrol(&mut c, 4, &finger, None), 0x9000);
    // An EF created operational (8A 05): READ needs object 4.
    let mut extra = tlv(0x8A, &[0x05]);
    extra.extend(tlv(0x8C, &h("03 00 14")));
    assert_eq!(create(&mut c, &ef_fcp(0x3001, 4, &extra)), 0x9000);
    assert_eq!(tx(&mut c, "00 B0 00 00 04"), "6982");
    assert_eq!(verify_bio(&mut c, 4, &finger), 0x9000);
    ok(&mut c, "00 B0 00 00 04");
    c.reset();
    ok(&mut c, "00 A4 00 0C 02 3001");
    assert_eq!(tx(&mut c, "00 B0 00 00 04"), "6982");
}

#[test]
fn biometric_verify_is_tear_safe() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("card.json");
    let mut c = SimCard::open_image(&path, SimConfig::default()).unwrap();
    let finger = minutiae(20);
    assert_eq!(enrol(&mut c, 1, &finger, None), 0x9000);
    std::fs::remove_dir_all(&sub).unwrap();
    assert_eq!(verify_bio(&mut c, 1, &minutiae(20)), 0x6581);
    assert_eq!(verify_bio(&mut c, 1, &finger), 0x6581);
    assert_eq!(c.state.bio(1).unwrap().tries_left, 5);
    assert_eq!(tx(&mut c, "00 21 00 81"), "63C5");
}

// ---------------------------------------------------------------- image

#[test]
fn image_round_trip_of_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let key = h(KEY16);
    let (finger, sig, aut);
    let df71;
    {
        let mut c = SimCard::open_image_with(&path, SimConfig::default(), Some(&key)).unwrap();
        auth_ok(&mut c);
        ok(&mut c, "00 DA 01 01 09 80 04 31323334 85 01 01");
        ok(&mut c, "00 DA 01 02 06 80 04 35363738");
        finger = minutiae(25);
        assert_eq!(enrol(&mut c, 3, &finger, Some(7)), 0x9000);
        sig = generate(&mut c, 0xB6, 1, Some(0x81), true);
        aut = generate(&mut c, 0xA4, 4, Some(0x82), false);
        ok(&mut c, "00 44 00 00 02 3F00");
        assert_eq!(authenticate(&mut c, &random(16), 8), 0x63C9);
        assert_eq!(verify_bio(&mut c, 3, &minutiae(25)), 0x63C6);
        df71 = ok(&mut c, "00 CA DF 71 00");
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"version\": 2"), "{text}");
    // Reopen (an issuer key given now is ignored: the image has its own).
    let mut c = SimCard::open_image_with(&path, SimConfig::default(), Some(&random(16))).unwrap();
    assert_eq!(life_cycle(&mut c), 0x03);
    assert_eq!(ok(&mut c, "00 CA DF 71 00"), df71);
    assert_eq!(c.state.issuer_tries_left, 9);
    assert!(c.state.pin(1).unwrap().transport);
    // Keys survive: public keys read back, signatures verify with them.
    let r = ok_raw(
        &mut c,
        &apdu([0, 0x46, 0x81, 0], &crt(0xB6, 1, None, false), Some(0)),
    );
    assert_eq!(parse_7f49(&r), sig);
    assert_eq!(mse(&mut c, 0xB6, 1), 0x9000);
    assert_eq!(mse(&mut c, 0xA4, 4), 0x9000);
    sign_and_check(&mut c, 0x88, &aut); // PERSONALIZED: free
    auth_ok(&mut c); // the issuer key from the image
    assert_eq!(c.state.issuer_tries_left, 10);
    sign_and_check(&mut c, 0x2A, &sig);
    // Finish activation across another reopen.
    ok(&mut c, "00 24 00 01 08 31323334 39393939");
    drop(c);
    let mut c = SimCard::open_image(&path, SimConfig::default()).unwrap();
    assert!(!c.state.pin(1).unwrap().transport);
    assert_eq!(verify_bio(&mut c, 3, &finger), 0x9000);
    ok(&mut c, "00 44 00 00 02 3F00");
    drop(c);
    let mut c = SimCard::open_image(&path, SimConfig::default()).unwrap();
    assert_eq!(life_cycle(&mut c), 0x07);
    assert_eq!(mse(&mut c, 0xB6, 1), 0x9000);
    assert_eq!(sign_sw(&mut c, 0x2A), 0x6982);
    ok(&mut c, "00 20 00 01 04 39393939");
    sign_and_check(&mut c, 0x2A, &sig);
    assert_eq!(sign_sw(&mut c, 0x2A), 0x6982);
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let mut c = keyed_card();
    auth_ok(&mut c);
    let finger = minutiae(20);
    assert_eq!(enrol(&mut c, 1, &finger, None), 0x9000);
    generate(&mut c, 0xB6, 1, None, false);
    let shown = format!("{:?} {:#?}", c.state, c.state);
    let private = hx(c.state.keys[0].private.expose());
    assert!(!shown.contains(KEY16), "issuer key in Debug");
    assert!(!shown.contains(&private), "private key in Debug");
    assert!(!shown.contains(&hx(&finger)), "template in Debug");
    let dec = |b: &[u8]| format!("{:?}", b);
    assert!(!shown.contains(&dec(&h(KEY16))[1..20]));
    assert!(!shown.contains(&dec(&finger)[1..20]));
    assert!(shown.contains("REDACTED"));
    // Errors do not carry the key either.
    let e = SimCard::blank_with_issuer_key(SimConfig::default(), &h("0102030405"))
        .err()
        .unwrap();
    assert!(!format!("{e} {e:?}").contains("0102"));
}

/// A version-1 image as the previous build wrote it.
fn v1_image(mf_lcs: u8) -> String {
    format!(
        r#"{{
  "format": "cardsmith-sim-image",
  "version": 1,
  "config": {{ "protocol": "T1", "extended_length": true, "command_chaining": true,
              "force_get_response": false, "memory_bytes": 262144 }},
  "serial": "0102030405060708",
  "pin_salt": "00112233445566778899AABBCCDDEEFF",
  "next_id": 2,
  "files": [
    {{ "id": 0, "parent": null, "fid": "3F00", "lcs": {mf_lcs}, "security": null,
      "kind": {{ "type": "df", "name": null }} }},
    {{ "id": 1, "parent": 0, "fid": "1001", "lcs": {mf_lcs}, "security": "030011",
      "kind": {{ "type": "ef", "sfi": 1, "data": "00000000" }} }}
  ],
  "pins": [
    {{ "number": 1, "hash": "{hash}", "length": 4, "min_length": 4,
      "max_length": 16, "try_limit": 3, "tries_left": 2, "puk": null }}
  ]
}}"#,
        hash = hx(&super::security::pin_hash(
            &h("00112233445566778899AABBCCDDEEFF"),
            1,
            b"1234"
        ))
    )
}

#[test]
fn version_1_images_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.json");
    std::fs::write(&path, v1_image(3)).unwrap();
    let mut c = SimCard::open_image(&path, SimConfig::default()).unwrap();
    assert_eq!(life_cycle(&mut c), 0x01);
    assert!(c.state.issuer_key.is_none());
    assert_eq!(c.state.issuer_tries_left, 10);
    assert!(!c.state.pin(1).unwrap().transport);
    assert_eq!(tx(&mut c, "00 20 00 01"), "63C2");
    ok(&mut c, "00 20 00 01 04 31323334");
    // The next write is a version-2 image, which loads again.
    generate(&mut c, 0xB6, 1, None, false);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"version\": 2"));
    drop(c);
    let c = SimCard::open_image(&path, SimConfig::default()).unwrap();
    assert_eq!(c.state.keys.len(), 1);
    // An operational version-1 card counts as ACTIVATED.
    std::fs::write(&path, v1_image(5)).unwrap();
    let mut c = SimCard::open_image(&path, SimConfig::default()).unwrap();
    assert_eq!(life_cycle(&mut c), 0x07);
    std::fs::write(&path, v1_image(0x0F)).unwrap();
    let c = SimCard::open_image(&path, SimConfig::default()).unwrap();
    assert_eq!(c.state.life_cycle, 0x0F);
}

#[test]
fn version_2_images_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    {
        let mut c = SimCard::open_image_with(&path, SimConfig::default(), Some(&h(KEY16))).unwrap();
        auth_ok(&mut c);
        ok(&mut c, "00 DA 01 01 06 80 04 31323334");
        assert_eq!(enrol(&mut c, 2, &minutiae(10), None), 0x9000);
        generate(&mut c, 0xB6, 1, None, false);
    }
    let good = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    let check = |v: &serde_json::Value, what: &str| {
        std::fs::write(&path, serde_json::to_string_pretty(v).unwrap()).unwrap();
        match SimCard::open_image(&path, SimConfig::default()) {
            Ok(_) => panic!("accepted: {what}"),
            Err(e) => {
                assert!(matches!(e, ImageError::Invalid { .. }), "{what}: {e}");
                let msg = e.to_string();
                assert!(msg.contains(what), "{msg} should mention {what}");
                assert!(!msg.contains(KEY16));
            }
        }
    };
    let orig = v.clone();
    v["life_cycle"] = 5.into();
    check(&v, "life_cycle");
    v = orig.clone();
    v["life_cycle"] = 7.into(); // MF still 03
    check(&v, "life_cycle");
    v = orig.clone();
    v.as_object_mut().unwrap().remove("life_cycle");
    check(&v, "life_cycle");
    v = orig.clone();
    v["issuer_key"] = "0102".into();
    check(&v, "issuer_key");
    v = orig.clone();
    v["issuer_tries_left"] = 11.into();
    check(&v, "issuer_tries_left");
    v = orig.clone();
    v["keys"][0]["kid"] = 5.into();
    check(&v, "key 5");
    v = orig.clone();
    v["keys"][0]["usage"] = 0xA5.into();
    check(&v, "key 1");
    v = orig.clone();
    v["keys"][0]["public"] = hx(&[4u8; 65]).into();
    check(&v, "key 1");
    v = orig.clone();
    v["keys"][0]["private"] = hx(&[0u8; 32]).into();
    check(&v, "key 1");
    v = orig.clone();
    v["bios"][0]["number"] = 1.into();
    check(&v, "biometric object 1");
    v = orig.clone();
    v["bios"][0]["template"] = "0102".into();
    check(&v, "biometric object 2");
    v = orig.clone();
    v["bios"][0]["tries_left"] = 9.into();
    check(&v, "biometric object 2");
    // Bad hex in a secret field is a JSON/type error, without the value.
    v = orig.clone();
    v["issuer_key"] = "zz".into();
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let e = SimCard::open_image(&path, SimConfig::default())
        .err()
        .unwrap();
    assert!(matches!(e, ImageError::Json { .. }), "{e}");
    // The untouched image still loads.
    std::fs::write(&path, serde_json::to_string_pretty(&orig).unwrap()).unwrap();
    SimCard::open_image(&path, SimConfig::default()).unwrap();
}

// ---------------------------------------------------------------- fuzzing

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// A card in life cycle state `which`: 0 BLANK with issuer key, not
    /// authenticated; 1 BLANK authenticated; 2 PERSONALIZED; 3 ACTIVATED
    /// with PIN 1 and the fingerprint verified and both keys set by MSE;
    /// 4 BLANK without issuer key; 5 TERMINATED.
    fn card_in_state(which: u8) -> SimCard {
        let mut c = keyed_card();
        match which {
            0 => {}
            1 | 2 => {
                auth_ok(&mut c);
                ok(&mut c, "00 DA 01 01 0C 80 04 31323334 82 01 02 85 01 01");
                ok(&mut c, "00 DA 01 02 06 80 04 35363738");
                assert_eq!(enrol(&mut c, 3, &minutiae(10), None), 0x9000);
                generate(&mut c, 0xB6, 1, Some(1), true);
                generate(&mut c, 0xA4, 2, None, false);
                if which == 2 {
                    ok(&mut c, "00 44 00 00 02 3F00");
                }
            }
            3 => {
                let (finger, _, _) = activated_card(&mut c);
                ok(&mut c, "00 20 00 01 04 31323334");
                assert_eq!(verify_bio(&mut c, 3, &finger), 0x9000);
                assert_eq!(mse(&mut c, 0xB6, 1), 0x9000);
                assert_eq!(mse(&mut c, 0xA4, 2), 0x9000);
            }
            4 => c = SimCard::blank(SimConfig::default()),
            _ => {
                auth_ok(&mut c);
                ok(&mut c, "00 FE 00 00");
            }
        }
        c
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..80),
            // Mostly well-formed TLV data for the new commands.
            Just(h("B6 09 830101 800111 9C0101")),
            Just(h("A4 03 830102")),
            Just(h("800111 840101")),
            Just(h("840102")),
            Just(vec![0u8; 32]),
            Just(vec![0u8; 16]),
            Just(probe_data(&[1, 2, 3])),
            Just(enrol_data(&[1, 2, 3, 4, 5, 6], Some(2))),
            Just(h("80 04 31323334 85 01 01")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn random_apdus_in_every_life_cycle_state(
            which in 0u8..6,
            cmds in proptest::collection::vec(
                (prop::sample::select(vec![0x00u8, 0x10, 0x80, 0x0C]),
                 prop::sample::select(vec![0x82u8, 0x84, 0x21, 0x22, 0x2A, 0x46, 0x88,
                                           0xCA, 0xDA, 0x20, 0x24, 0x2C, 0x44, 0xE0,
                                           0xE4, 0xFE, 0xA4, 0xB0, 0xC0]),
                 prop_oneof![any::<u8>(), Just(0u8), Just(0x41), Just(0x81), Just(0x9E), Just(0xDF)],
                 prop_oneof![any::<u8>(), Just(0x01u8), Just(0x83), Just(0xB6), Just(0xA4),
                             Just(0x9A), Just(0x70), Just(0x71)],
                 body(),
                 proptest::option::of(any::<u8>())),
                1..12),
            raw in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut c = card_in_state(which);
            for (cla, ins, p1, p2, data, le) in &cmds {
                let r = c.transmit(&apdu([*cla, *ins, *p1, *p2], data, *le));
                prop_assert!(r.len() >= 2);
            }
            let r = c.transmit(&raw);
            prop_assert!(r.len() >= 2);
            c.reset();
            let r = c.transmit(&h("00 CA DF 71 00"));
            prop_assert!(r.len() >= 2);
        }
    }
}

#[test]
fn bit_group_template_gives_each_bit_in_the_standard_layout() {
    let mut c = SimCard::blank(SimConfig::default());
    // No biometric object: an empty group.
    assert_eq!(hx(&ok(&mut c, "00 CA 7F 61 00")), "7F6103020100");
    assert_eq!(enrol(&mut c, 6, &minutiae(20), None), 0x9000);
    let mut d = tlv(
        0x7F60,
        &tlv(
            0xA1,
            &h("810108 82010A 870201 01 880200 07 B1 0A 81020A28 820105 830101"),
        ),
    );
    d.extend(tlv(0x5F2E, &minutiae(30)));
    assert_eq!(swx(&mut c, [0, 0xDA, 0x02, 0x85], &d, None), 0x9000);
    let got = hx(&ok(&mut c, "00 CA 7F 61 00"));
    let bit5 = "7F601F 830185 A11A 810108 82010A 870201 01 880200 07 B10A 81020A28 820105 830101";
    let bit6 = "7F601C 830186 A117 810108 820105 870201 01 880200 06 B107 8102073C 820100";
    let want = format!("7F61 44 020102 {bit5} {bit6}").replace(' ', "");
    assert_eq!(got, want);
    // A probe longer than the BIT's maximum (40) is malformed: 6A80, no try.
    let probe = tlv(0x7F2E, &tlv(0x81, &minutiae(41)));
    assert_eq!(swx(&mut c, [0, 0x21, 0, 0x85], &probe, None), 0x6A80);
    assert_eq!(tx(&mut c, "00 21 00 85"), "63C5");
}

#[test]
fn comparison_score_only_with_diagnostics_on() {
    let finger = minutiae(30);
    // Off (the default): DF72 does not exist, before and after a VERIFY.
    let mut c = SimCard::blank(SimConfig::default());
    assert_eq!(enrol(&mut c, 5, &finger, None), 0x9000);
    assert_eq!(tx(&mut c, "00 CA DF 72 00"), "6A88");
    assert_eq!(verify_bio(&mut c, 5, &finger), 0x9000);
    assert_eq!(tx(&mut c, "00 CA DF 72 00"), "6A88");
    // On: nothing before the first comparison, then the last one.
    let mut c = SimCard::blank(SimConfig {
        match_score_diagnostics: true,
        ..SimConfig::default()
    });
    assert_eq!(enrol(&mut c, 5, &finger, None), 0x9000);
    assert_eq!(tx(&mut c, "00 CA DF 72 00"), "6A88");
    assert_eq!(verify_bio(&mut c, 5, &finger), 0x9000);
    let same = cardsmith_biometric::match_score(&finger, &finger).unwrap();
    let score = (same.value * 10_000.0).round() as u16;
    let thr = (cardsmith_biometric::THRESHOLD * 10_000.0).round() as u16;
    let want = format!(
        "830185 8002{score:04X} 8102{thr:04X} 8201{:02X}",
        same.paired
    )
    .replace(' ', "");
    assert_eq!(hx(&ok(&mut c, "00 CA DF 72 00")), want);
    let other = minutiae(30);
    assert_eq!(verify_bio(&mut c, 5, &other), 0x63C4);
    let d = ok(&mut c, "00 CA DF 72 00");
    let s = u16::from_be_bytes([d[5], d[6]]);
    assert!(
        s < thr,
        "an impostor's score {s} is below the threshold {thr}"
    );
    // Volatile: a reset forgets it.
    c.reset();
    assert_eq!(tx(&mut c, "00 CA DF 72 00"), "6A88");
}
