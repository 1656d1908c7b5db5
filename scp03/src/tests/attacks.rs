//! Wrong keys, tampering, replay and protocol misuse: each is refused with
//! its own error, by the side that must detect it.

use super::super::channel::Channel;
use super::sim::*;
use super::*;

const ALL: SecurityLevel = SecurityLevel::C_DEC_R_ENC_C_MAC_R_MAC;

fn echo(data: &[u8]) -> Command {
    Command::new(0x80, INS_ECHO, 0, 0)
        .with_data(data.to_vec())
        .with_ne(256)
}

#[test]
fn wrong_static_key_is_detected_from_the_card_cryptogram() {
    for len in [16, 24, 32] {
        for mode in [Mode::S8, Mode::S16] {
            let right = test_keys(0x30, len, 1);
            let mut card = pseudo_random_card(right.clone(), mode);
            // Only Key-MAC matters for the cryptogram; change just that key.
            let wrong = StaticKeys::new(
                0x30,
                right.enc().expose(),
                &vec![0x5A; len],
                right.dek().expose(),
            )
            .unwrap();
            let mut host = HostSession::new(wrong.into(), mode, &vec![7; mode.len()]).unwrap();
            let resp = card.transmit(&host.initialize_update().encode().unwrap());
            let err = host.process_initialize_update(&Response::from_bytes(&resp).unwrap());
            assert_eq!(err.err(), Some(Error::CardCryptogramMismatch));
            // Nothing more can be sent: no EXTERNAL AUTHENTICATE, no wrap.
            assert!(matches!(
                host.external_authenticate(SecurityLevel::C_MAC),
                Err(Error::State(_))
            ));
            assert!(host.wrap(&echo(&[1])).is_err());
            assert!(host.session_keys().is_none() && host.dek().is_none());
        }
    }
    // The same with a master key diversified for another card.
    let master = AesKey::new(&[0x11; 16]).unwrap();
    let card_keys =
        StaticKeys::diversified(&master, 0x30, b"0123456789", Diversification::GpProKdf3).unwrap();
    let source = ChallengeSource::PseudoRandom {
        sequence_counter: 0,
        aid: h("A000000151000000"),
    };
    let mut card = SimCard::new(CardSession::new(card_keys, *b"9876543210", 0x70, source).unwrap());
    let src = KeySource::Master {
        master,
        kvn: 0x30,
        method: Diversification::GpProKdf3,
    };
    let mut host = HostSession::new(src, Mode::S8, &[7; 8]).unwrap();
    let resp = card.transmit(&host.initialize_update().encode().unwrap());
    assert_eq!(
        host.process_initialize_update(&Response::from_bytes(&resp).unwrap())
            .err(),
        Some(Error::CardCryptogramMismatch)
    );
}

#[test]
fn tampered_c_mac_aborts_the_session() {
    for mode in [Mode::S8, Mode::S16] {
        let keys = test_keys(0x30, 16, 2);
        let mut card = pseudo_random_card(keys.clone(), mode);
        let mut host = open(
            &mut card,
            keys.clone().into(),
            mode,
            SecurityLevel::C_MAC,
            1,
        );
        let mut raw = host.wrap(&echo(b"pay 10")).unwrap().encode().unwrap();
        let mac_end = raw.len() - 2; // before Le
        raw[mac_end] ^= 0x01;
        assert_eq!(card.transmit(&raw), [0x69, 0x82]);
        assert!(card.sd.is_aborted() && card.sd.level().is_none());
        // Everything after is refused, even a correctly wrapped command.
        let next = host.wrap(&echo(b"x")).unwrap().encode().unwrap();
        assert_eq!(card.transmit(&next), [0x69, 0x82]);
        // A new INITIALIZE UPDATE starts over.
        open(&mut card, keys.into(), mode, SecurityLevel::C_MAC, 2);
        assert!(!card.sd.is_aborted());
    }
}

#[test]
fn tampered_data_header_or_ciphertext_is_refused() {
    let keys = test_keys(0x30, 32, 3);
    for level in [SecurityLevel::C_MAC, SecurityLevel::C_DEC_C_MAC, ALL] {
        // Flip each byte that the C-MAC covers: INS, P1, P2, Lc, data, MAC.
        let wrapped_len = {
            let mut card = pseudo_random_card(keys.clone(), Mode::S8);
            let mut host = open(&mut card, keys.clone().into(), Mode::S8, level, 3);
            host.wrap(&echo(b"transfer 100 to alice"))
                .unwrap()
                .encode()
                .unwrap()
                .len()
        };
        for pos in 1..wrapped_len - 1 {
            let mut card = pseudo_random_card(keys.clone(), Mode::S8);
            let mut host = open(&mut card, keys.clone().into(), Mode::S8, level, 3);
            let mut raw = host
                .wrap(&echo(b"transfer 100 to alice"))
                .unwrap()
                .encode()
                .unwrap();
            raw[pos] ^= 0x20;
            let out = card.sd.unwrap_command(&raw);
            assert!(out.is_err(), "{level:?} byte {pos} accepted");
            if pos >= 5 {
                assert_eq!(out.err(), Some(Error::CMacMismatch), "{level:?} byte {pos}");
            }
            assert!(card.sd.is_aborted());
        }
    }
}

#[test]
fn replayed_or_reordered_commands_are_refused() {
    let keys = test_keys(0x30, 16, 4);
    let mut card = pseudo_random_card(keys.clone(), Mode::S8);
    let mut host = open(&mut card, keys.clone().into(), Mode::S8, ALL, 4);
    let first = host.wrap(&echo(b"one")).unwrap().encode().unwrap();
    let resp = card.transmit(&first);
    host.unwrap(&Response::from_bytes(&resp).unwrap()).unwrap();
    // Replay: same bytes again.
    assert_eq!(
        card.sd.unwrap_command(&first).err(),
        Some(Error::CMacMismatch)
    );

    let mut card = pseudo_random_card(keys.clone(), Mode::S8);
    let mut host = open(&mut card, keys.into(), Mode::S8, ALL, 5);
    let a = host.wrap(&echo(b"a")).unwrap().encode().unwrap();
    let b = host.wrap(&echo(b"b")).unwrap().encode().unwrap();
    // Out of order: b before a.
    assert_eq!(card.transmit(&b), [0x69, 0x82]);
    assert_eq!(card.transmit(&a), [0x69, 0x82]);
}

#[test]
fn replay_into_a_new_session_is_refused() {
    let keys = test_keys(0x30, 16, 6);
    let mut card = pseudo_random_card(keys.clone(), Mode::S8);
    let mut host = open(
        &mut card,
        keys.clone().into(),
        Mode::S8,
        SecurityLevel::C_MAC,
        6,
    );
    let recorded = host.wrap(&echo(b"once")).unwrap().encode().unwrap();
    assert_eq!(card.transmit(&recorded).last(), Some(&0x00));
    // Same host challenge, but the card's pseudo-random challenge moved on.
    open(&mut card, keys.into(), Mode::S8, SecurityLevel::C_MAC, 6);
    assert_eq!(card.transmit(&recorded), [0x69, 0x82]);
}

#[test]
fn commands_without_protection_are_refused_in_a_session() {
    let keys = test_keys(0x30, 16, 7);
    let mut card = pseudo_random_card(keys.clone(), Mode::S8);
    open(&mut card, keys.into(), Mode::S8, SecurityLevel::C_MAC, 7);
    // A plain case 1 command has no room for a C-MAC.
    assert_eq!(card.transmit(&[0x80, INS_ECHO, 0, 0]), [0x69, 0x82]);
}

#[test]
fn tampered_r_mac_or_response_is_refused_by_the_host() {
    for mode in [Mode::S8, Mode::S16] {
        for level in [
            SecurityLevel::C_MAC_R_MAC,
            SecurityLevel::C_DEC_C_MAC_R_MAC,
            ALL,
        ] {
            let keys = test_keys(0x30, 24, 8);
            // Count the bytes of a genuine response first.
            let resp_len = {
                let mut card = pseudo_random_card(keys.clone(), mode);
                let mut host = open(&mut card, keys.clone().into(), mode, level, 8);
                let raw = host.wrap(&echo(b"balance?")).unwrap().encode().unwrap();
                card.transmit(&raw).len()
            };
            for pos in 0..resp_len {
                let mut card = pseudo_random_card(keys.clone(), mode);
                let mut host = open(&mut card, keys.clone().into(), mode, level, 8);
                let raw = host.wrap(&echo(b"balance?")).unwrap().encode().unwrap();
                let mut resp = card.transmit(&raw);
                resp[pos] ^= 0x04;
                let got = host.unwrap(&Response::from_bytes(&resp).unwrap());
                let sw_error_flip = pos >= resp_len - 2
                    && !cardsmith_wire::apdu::StatusWord::new(
                        resp[resp_len - 2],
                        resp[resp_len - 1],
                    )
                    .is_success_or_warning();
                if sw_error_flip {
                    // SW turned into an error status: data with an error SW is malformed.
                    assert!(
                        matches!(got, Err(Error::MalformedResponse(_))),
                        "{mode:?} {level:?} {pos}"
                    );
                } else {
                    assert_eq!(
                        got.err(),
                        Some(Error::RMacMismatch),
                        "{mode:?} {level:?} byte {pos}"
                    );
                }
                // The host session is dead after that.
                assert_eq!(host.wrap(&echo(b"x")).err(), Some(Error::SessionAborted));
            }
        }
    }
}

#[test]
fn stripped_r_mac_is_refused() {
    let keys = test_keys(0x30, 16, 9);
    let mut card = pseudo_random_card(keys.clone(), Mode::S8);
    let mut host = open(
        &mut card,
        keys.into(),
        Mode::S8,
        SecurityLevel::C_MAC_R_MAC,
        9,
    );
    host.wrap(&echo(b"x")).unwrap();
    assert!(matches!(
        host.unwrap(&Response::new(vec![1, 2, 3], 0x9000)),
        Err(Error::MalformedResponse(_))
    ));
}

#[test]
fn error_status_words_pass_without_r_mac() {
    let keys = test_keys(0x30, 16, 10);
    let mut card = pseudo_random_card(keys.clone(), Mode::S16);
    let mut host = open(&mut card, keys.into(), Mode::S16, ALL, 10);
    let resp = exchange(&mut host, &mut card, &Command::new(0x80, INS_FAIL, 0, 0));
    assert_eq!((resp.data.len(), resp.sw.to_u16()), (0, 0x6A82));
    // The session goes on.
    let resp = exchange(&mut host, &mut card, &echo(b"still here"));
    assert_eq!(resp.data, b"still here");
}

#[test]
fn host_cryptogram_and_external_authenticate_checks() {
    let keys = test_keys(0x30, 16, 11);
    let host_challenge = [3u8; 8];

    // A valid C-MAC over a wrong host cryptogram: '6300'.
    let mut card = pseudo_random_card(keys.clone(), Mode::S8);
    let mut host = HostSession::new(keys.clone().into(), Mode::S8, &host_challenge).unwrap();
    let resp = card.transmit(&host.initialize_update().encode().unwrap());
    host.process_initialize_update(&Response::from_bytes(&resp).unwrap())
        .unwrap();
    let session = host.session_keys().unwrap().clone();
    let mut forged = Channel::for_external_authenticate(session, Mode::S8);
    let bad = forged
        .wrap_command(&Command::new(0x80, 0x82, 0x01, 0x00).with_data(vec![0; 8]))
        .unwrap();
    assert_eq!(
        card.sd.external_authenticate(&bad.encode().unwrap()),
        Err(Error::HostCryptogramMismatch)
    );
    assert_eq!(Error::HostCryptogramMismatch.status_word(), 0x6300);
    assert!(card.sd.level().is_none());

    // A tampered EXTERNAL AUTHENTICATE C-MAC: '6982'.
    let mut card = pseudo_random_card(keys.clone(), Mode::S8);
    let mut host = HostSession::new(keys.clone().into(), Mode::S8, &host_challenge).unwrap();
    let resp = card.transmit(&host.initialize_update().encode().unwrap());
    host.process_initialize_update(&Response::from_bytes(&resp).unwrap())
        .unwrap();
    let mut ea = host
        .external_authenticate(SecurityLevel::C_MAC)
        .unwrap()
        .encode()
        .unwrap();
    let last = ea.len() - 1;
    ea[last] ^= 0xFF;
    assert_eq!(card.transmit(&ea), [0x69, 0x82]);
    assert_eq!(
        host.process_external_authenticate(&Response::status(0x6982)),
        Err(Error::CardStatus { sw: 0x6982 })
    );

    // EXTERNAL AUTHENTICATE with no INITIALIZE UPDATE before it.
    let mut card = pseudo_random_card(keys.clone(), Mode::S8);
    assert_eq!(card.transmit(&ea), [0x69, 0x85]);

    // A level the card's i parameter does not support: host and card refuse.
    let source = ChallengeSource::PseudoRandom {
        sequence_counter: 0,
        aid: h("A000000151000000"),
    };
    let mut card = SimCard::new(CardSession::new(keys.clone(), [0; 10], 0x10, source).unwrap());
    let mut host = HostSession::new(keys.clone().into(), Mode::S8, &host_challenge).unwrap();
    let resp = card.transmit(&host.initialize_update().encode().unwrap());
    host.process_initialize_update(&Response::from_bytes(&resp).unwrap())
        .unwrap();
    assert_eq!(
        host.external_authenticate(SecurityLevel::C_MAC_R_MAC).err(),
        Some(Error::LevelNotSupported {
            level: 0x11,
            i_param: 0x10
        })
    );
    let session = host.session_keys().unwrap().clone();
    let mut forged = Channel::for_external_authenticate(session, Mode::S8);
    let ea = forged
        .wrap_command(&Command::new(0x80, 0x82, 0x11, 0x00).with_data(vec![0; 8]))
        .unwrap();
    assert_eq!(card.transmit(&ea.encode().unwrap()), [0x6A, 0x86]);
    // The host can still authenticate at a supported level.
    let resp = card.transmit(&host.initialize_update().encode().unwrap());
    let mut host = HostSession::new(keys.into(), Mode::S8, &host_challenge).unwrap();
    host.process_initialize_update(&Response::from_bytes(&resp).unwrap())
        .unwrap();
    let ea = host
        .external_authenticate(SecurityLevel::C_DEC_C_MAC)
        .unwrap();
    assert_eq!(card.transmit(&ea.encode().unwrap()), [0x90, 0x00]);
}

#[test]
fn initialize_update_response_checks() {
    let keys = test_keys(0x30, 16, 12);
    // Mode mismatch: S16 host, S8 card (the card refuses the 16-byte challenge).
    let mut card = pseudo_random_card(keys.clone(), Mode::S8);
    let host = HostSession::new(keys.clone().into(), Mode::S16, &[1; 16]).unwrap();
    assert_eq!(
        card.transmit(&host.initialize_update().encode().unwrap()),
        [0x67, 0x00]
    );

    // A genuine S16 response given to an S8 host, another KVN, another SCP.
    let mut card16 = pseudo_random_card(keys.clone(), Mode::S16);
    let h16 = HostSession::new(keys.clone().into(), Mode::S16, &[1; 16]).unwrap();
    let raw = card16.transmit(&h16.initialize_update().encode().unwrap());
    let resp16 = Response::from_bytes(&raw).unwrap();
    let mut h8 = HostSession::new(keys.clone().into(), Mode::S8, &[1; 8]).unwrap();
    assert_eq!(
        h8.process_initialize_update(&resp16).err(),
        Some(Error::ModeMismatch)
    );

    let mut other = resp16.clone();
    other.data[10] = 0x31;
    let mut h = HostSession::new(keys.clone().into(), Mode::S16, &[1; 16]).unwrap();
    assert_eq!(
        h.process_initialize_update(&other).err(),
        Some(Error::KvnMismatch {
            requested: 0x30,
            returned: 0x31
        })
    );
    let mut other = resp16.clone();
    other.data[11] = 0x02;
    let mut h = HostSession::new(keys.clone().into(), Mode::S16, &[1; 16]).unwrap();
    assert_eq!(
        h.process_initialize_update(&other).err(),
        Some(Error::NotScp03 { scp: 2 })
    );

    // Unknown key version on the card.
    let stranger = test_keys(0x3F, 16, 12);
    let h = HostSession::new(stranger.into(), Mode::S8, &[1; 8]).unwrap();
    assert_eq!(
        card.transmit(&h.initialize_update().encode().unwrap()),
        [0x6A, 0x88]
    );

    // Wrong host challenge length is refused up front.
    assert!(HostSession::new(keys.into(), Mode::S8, &[1; 16]).is_err());
}

#[test]
fn card_session_configuration_is_checked() {
    let keys = test_keys(0x30, 16, 13);
    let pr = || ChallengeSource::PseudoRandom {
        sequence_counter: 0,
        aid: h("A000000151000000"),
    };
    assert!(
        CardSession::new(keys.clone(), [0; 10], 0x60, pr()).is_err(),
        "i says random"
    );
    assert!(
        CardSession::new(keys.clone(), [0; 10], 0x40, pr()).is_err(),
        "R-ENC without R-MAC"
    );
    let short_aid = ChallengeSource::PseudoRandom {
        sequence_counter: 0,
        aid: vec![1, 2, 3],
    };
    assert!(CardSession::new(keys.clone(), [0; 10], 0x70, short_aid).is_err());
    let random = ChallengeSource::Random(Box::new(|b: &mut [u8]| b.fill(9)));
    assert!(
        CardSession::new(keys, [0; 10], 0x70, random).is_err(),
        "i says pseudo-random"
    );
}
