//! SCP03 on cardsmith's one command type (`cardsmith_wire::apdu::Command`), the one
//! the exchange hands to secure messaging: a secret data field is protected
//! byte for byte as a plain one would be, the card accepts it, and a secret
//! or personal data field keeps its kind (and so stays wiped on drop and
//! `REDACTED` in traces) through the protection.

use super::sim::*;
use super::*;
use cardsmith_wire::apdu::{Command as IsoCommand, Response as IsoResponse};
use cardsmith_wire::secret::Secret;

const LEVELS: [u8; 4] = [0x01, 0x03, 0x13, 0x33];

#[test]
fn a_secret_field_wraps_to_the_bytes_of_a_plain_one() {
    let cases: Vec<(Vec<u8>, Option<usize>)> = vec![
        (vec![], None),
        (vec![], Some(256)),
        (b"123456".to_vec(), None),
        ((0..32).collect(), Some(16)),
        ((0..300).map(|i| i as u8).collect(), Some(65_536)),
        ((0..10).collect(), Some(1000)),
    ];
    for mode in [Mode::S8, Mode::S16] {
        for p1 in LEVELS {
            let level = SecurityLevel::from_p1(p1).unwrap();
            let keys = test_keys(0x30, 16, 5);
            // Two sessions in the same state: pseudo-random card
            // challenges from sequence counter 0, the same host challenge.
            let mut card_a = pseudo_random_card(keys.clone(), mode);
            let mut a = open(&mut card_a, KeySource::Static(keys.clone()), mode, level, 9);
            let mut card_b = pseudo_random_card(keys.clone(), mode);
            let mut b = open(&mut card_b, KeySource::Static(keys.clone()), mode, level, 9);
            for (data, le) in &cases {
                let mut gp = Command::new(0x00, 0x20, 0x00, 0x81).with_data(data.clone());
                gp.ne = *le;
                let mut iso =
                    IsoCommand::new(0x00, 0x20, 0x00, 0x81).with_secret(Secret::new(data.clone()));
                iso.ne = *le;
                let want = a.wrap(&gp).unwrap().encode().unwrap();
                let got = b.wrap(&iso).unwrap().encode().unwrap();
                assert_eq!(
                    hx(&got),
                    hx(&want),
                    "{mode:?} level {p1:02X} Nc {} Le {le:?}",
                    data.len()
                );
            }
        }
    }
}

#[test]
fn a_secret_stays_secret_through_secure_messaging() {
    let keys = test_keys(0x30, 16, 5);
    for p1 in LEVELS {
        let level = SecurityLevel::from_p1(p1).unwrap();
        let mut card = pseudo_random_card(keys.clone(), Mode::S8);
        let mut host = open(
            &mut card,
            KeySource::Static(keys.clone()),
            Mode::S8,
            level,
            3,
        );

        let pin = IsoCommand::new(0x80, INS_ECHO, 0x00, 0x00)
            .with_secret(Secret::new(b"123456".to_vec()))
            .with_ne(256);
        let w = host.wrap(&pin).unwrap();
        assert!(w.data.is_sensitive(), "level {p1:02X}");
        if !level.c_dec() {
            // C-MAC alone leaves the PIN readable in the protected field:
            // only its kind keeps it out of traces and wipes it.
            assert_eq!(w.data().get(..6), Some(&b"123456"[..]));
        }
        let shown = format!("{w:?} {}", w.redacted());
        assert!(shown.contains("REDACTED"), "{shown}");
        assert!(
            !shown.contains("31 32 33 34") && !shown.contains("31323334"),
            "{shown}"
        );
        // The card takes it, and the answer opens.
        let raw = card.transmit(&w.encode().unwrap());
        let r = host
            .unwrap(&IsoResponse::from_bytes(&raw).unwrap())
            .unwrap();
        assert_eq!(
            (r.data.as_slice(), r.sw.bytes()),
            (&b"123456"[..], [0x90, 0])
        );

        let personal = IsoCommand::new(0x80, INS_ECHO, 0, 0)
            .with_data(b"Mina".to_vec())
            .personal();
        let w = host.wrap(&personal).unwrap();
        assert!(w.data.is_personal(), "level {p1:02X}");
        let _ = card.transmit(&w.encode().unwrap());

        let plain = IsoCommand::new(0x80, INS_ECHO, 0, 0).with_data(vec![0x3F, 0x00]);
        let w = host.wrap(&plain).unwrap();
        assert!(!w.data.is_sensitive() && !w.data.is_personal());
    }
}
