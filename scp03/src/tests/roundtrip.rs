//! Host ↔ card round trips over every key length, mode and security level.

use super::sim::*;
use super::*;

const KEY_LENS: [usize; 3] = [16, 24, 32];
const MODES: [Mode; 2] = [Mode::S8, Mode::S16];

/// Commands of every ISO case, short and extended, plus error and warning
/// status words.
fn workload(max_short: usize) -> Vec<(Command, Vec<u8>, u16)> {
    let echo = |p2: u8| Command::new(0x80, INS_ECHO, 0x00, p2);
    let data = |n: usize| -> Vec<u8> { (0..n).map(|i| (i * 31 + 7) as u8).collect() };
    vec![
        // case 1: no data, no Le; the card answers nothing.
        (echo(0), vec![], 0x9000),
        // case 2: no data, Le; the card answers 20 bytes.
        (echo(20).with_ne(256), data_p2(20), 0x9000),
        // case 2 with a small Le: the wrapped Le is '00' so R-MAC fits.
        (echo(16).with_ne(16), data_p2(16), 0x9000),
        // case 3: data, no Le.
        (echo(0).with_data(data(17)), data(17), 0x9000),
        // case 4: data and Le, block-aligned data (a full padding block).
        (echo(0).with_data(data(32)).with_ne(256), data(32), 0x9000),
        // largest data that still fits a short APDU at this level.
        (
            echo(0).with_data(data(max_short)).with_ne(256),
            data(max_short),
            0x9000,
        ),
        // extended length: 1000 bytes of data, Ne 65536.
        (
            echo(0).with_data(data(1000)).with_ne(65_536),
            data(1000),
            0x9000,
        ),
        // ISO command (CLA 00) and logical channel 1 (CLA 81) and 5 (C1).
        (
            Command::new(0x00, INS_ECHO, 0, 0).with_data(data(3)),
            data(3),
            0x9000,
        ),
        (
            Command::new(0x81, INS_ECHO, 0, 0)
                .with_data(data(5))
                .with_ne(256),
            data(5),
            0x9000,
        ),
        (
            Command::new(0xC1, INS_ECHO, 0, 0).with_data(data(9)),
            data(9),
            0x9000,
        ),
        // error status: with R-MAC, only the status word goes out (§6.2.5);
        // without, the response is untouched.
        (
            Command::new(0x80, INS_FAIL, 0, 0).with_data(data(4)),
            b"ignored".to_vec(),
            0x6A82,
        ),
        // warning status: protected like '9000'.
        (
            Command::new(0x80, INS_WARN, 0, 0).with_ne(256),
            vec![1, 2, 3, 4, 5],
            0x63C1,
        ),
    ]
}

fn data_p2(n: u8) -> Vec<u8> {
    (0..n).collect()
}

#[test]
fn every_key_length_mode_and_level() {
    let mut sessions = 0;
    for (k, len) in KEY_LENS.into_iter().enumerate() {
        for mode in MODES {
            for level in SecurityLevel::ALL {
                for pseudo in [true, false] {
                    let seed = (k * 100 + usize::from(level.p1())) as u64 + u64::from(pseudo);
                    let keys = test_keys(0x30, len, seed as u8);
                    let mut card = if pseudo {
                        pseudo_random_card(keys.clone(), mode)
                    } else {
                        random_card(keys.clone(), mode, seed)
                    };
                    let mut host = open(&mut card, keys.into(), mode, level, seed);
                    let max_short = host.max_plain_data_len(255).unwrap();
                    for (i, (cmd, answer, sw)) in workload(max_short).into_iter().enumerate() {
                        let wrapped = host.wrap(&cmd).unwrap();
                        let raw = wrapped.encode().unwrap();
                        if cmd.data().len() <= max_short && cmd.ne.is_none_or(|le| le <= 256) {
                            assert!(!wrapped.needs_extended(), "{len} {mode:?} {level:?} #{i}");
                        }
                        let resp = card.transmit(&raw);
                        let got = host.unwrap(&Response::from_bytes(&resp).unwrap()).unwrap();
                        let answer = if sw == 0x6A82 && level.r_mac() {
                            vec![]
                        } else {
                            answer
                        };
                        assert_eq!(
                            (got.data, got.sw.to_u16()),
                            (answer, sw),
                            "{len} {mode:?} {level:?} #{i}"
                        );
                        let seen = card.seen.last().unwrap();
                        assert_eq!(
                            (
                                seen.cla,
                                seen.ins,
                                seen.p1,
                                seen.p2,
                                seen.data(),
                                seen.ne.is_some()
                            ),
                            (
                                cmd.cla,
                                cmd.ins,
                                cmd.p1,
                                cmd.p2,
                                cmd.data(),
                                cmd.ne.is_some()
                            ),
                            "{len} {mode:?} {level:?} #{i}"
                        );
                        if level.c_dec() && !cmd.data().is_empty() {
                            // The plain data never appears on the wire.
                            assert!(!raw.windows(cmd.data().len()).any(|w| w == cmd.data()));
                        }
                    }
                    sessions += 1;
                }
            }
        }
    }
    assert_eq!(sessions, 3 * 2 * 6 * 2);
}

#[test]
fn sequence_counter_advances_and_challenges_differ() {
    let keys = test_keys(0x30, 16, 1);
    let mut card = pseudo_random_card(keys.clone(), Mode::S8);
    let mut challenges = Vec::new();
    for n in 1..=3u32 {
        let host = open(
            &mut card,
            keys.clone().into(),
            Mode::S8,
            SecurityLevel::C_MAC,
            9,
        );
        let info = host.card_info().unwrap();
        assert_eq!(info.sequence_counter, Some([0, 0, n as u8]));
        challenges.push(info.card_challenge.clone());
        assert_eq!(card.sd.sequence_counter(), Some(n));
    }
    assert_ne!(challenges[0], challenges[1]);
    assert_ne!(challenges[1], challenges[2]);
}

#[test]
fn counter_exhaustion_is_refused() {
    let keys = test_keys(0x30, 16, 1);
    let source = ChallengeSource::PseudoRandom {
        sequence_counter: 0xFF_FFFE,
        aid: h("A000000151000000"),
    };
    let mut card = SimCard::new(CardSession::new(keys.clone(), [0; 10], 0x70, source).unwrap());
    open(
        &mut card,
        keys.clone().into(),
        Mode::S8,
        SecurityLevel::C_MAC,
        1,
    );
    let host = HostSession::new(keys.into(), Mode::S8, &[0; 8]).unwrap();
    let resp = card.transmit(&host.initialize_update().encode().unwrap());
    assert_eq!(resp, [0x69, 0x85]);
}

#[test]
fn diversified_master_key() {
    let master = AesKey::new(&h(
        "8C72C72CF908411653018807950D82FBAD947562F0828A0B10B8B9606ABF3BCD",
    ))
    .unwrap();
    let kdd = *b"\xD9\xB1\xDE\x5D\x03\x62\xDE\xDC\xE4\xFB";
    let card_keys =
        StaticKeys::diversified(&master, 0x30, &kdd, Diversification::GpProKdf3).unwrap();
    let source = ChallengeSource::PseudoRandom {
        sequence_counter: 0,
        aid: h("A000000151000000"),
    };
    let mut card = SimCard::new(CardSession::new(card_keys, kdd, 0x70, source).unwrap());
    let source = KeySource::Master {
        master,
        kvn: 0x30,
        method: Diversification::GpProKdf3,
    };
    let mut host = open(
        &mut card,
        source,
        Mode::S8,
        SecurityLevel::C_DEC_R_ENC_C_MAC_R_MAC,
        3,
    );
    let r = exchange(
        &mut host,
        &mut card,
        &Command::new(0x80, INS_ECHO, 0, 0).with_data(vec![1, 2, 3]),
    );
    assert_eq!(r.data, [1, 2, 3]);
}

#[test]
fn kvn_zero_takes_the_cards_key_set() {
    let keys = test_keys(0x35, 16, 4);
    let mut card = pseudo_random_card(keys.clone(), Mode::S8);
    let any = StaticKeys::new(
        0x00,
        keys.enc().expose(),
        keys.mac().expose(),
        keys.dek().expose(),
    )
    .unwrap();
    let host = open(&mut card, any.into(), Mode::S8, SecurityLevel::C_MAC, 4);
    assert_eq!(host.card_info().unwrap().kvn, 0x35);
}

#[test]
fn put_key_round_trip_and_new_keys_work() {
    for len in KEY_LENS {
        for mode in MODES {
            for level in [
                SecurityLevel::C_MAC,
                SecurityLevel::C_DEC_C_MAC,
                SecurityLevel::C_DEC_R_ENC_C_MAC_R_MAC,
            ] {
                let old = test_keys(0x30, len, 1);
                let new = test_keys(0x31, len, 2);
                let mut card = pseudo_random_card(old.clone(), mode);
                let mut host = open(&mut card, old.clone().into(), mode, level, 5);
                let put = commands::put_key(&new, 0x31, 0x30, host.dek().unwrap()).unwrap();
                // 1 + 3 × (1 type + 1 length + 1 key length + 16/32 + 1 + 3)
                let block = len.div_ceil(16) * 16;
                assert_eq!(put.command.data().len(), 1 + 3 * (7 + block));
                let resp = exchange(&mut host, &mut card, &put.command);
                put.check_response(&resp).unwrap();
                assert_eq!(card.sd.keys().kcvs(), new.kcvs());
                assert_eq!(card.sd.keys().kvn(), 0x31);
                // The card's counter restarted with the new key set.
                assert_eq!(card.sd.sequence_counter(), Some(0));
                // Old keys no longer open a session; new ones do.
                let mut stale =
                    HostSession::new(old.clone().into(), mode, &vec![1; mode.len()]).unwrap();
                let raw = card.transmit(&stale.initialize_update().encode().unwrap());
                assert_eq!(raw, [0x6A, 0x88], "old KVN is gone");
                assert!(stale
                    .process_initialize_update(&Response::from_bytes(&raw).unwrap())
                    .is_err());
                let host = open(&mut card, new.clone().into(), mode, level, 6);
                assert_eq!(host.card_info().unwrap().sequence_counter, Some([0, 0, 1]));
            }
        }
    }
}

#[test]
fn put_key_command_layout() {
    // Amendment D Table 7-10: 88 | 11 or 21 | 10/18/20 | ciphered key | 03 | KCV.
    let dek = AesKey::new(&[0x44; 16]).unwrap();
    for (len, l1) in [(16, 0x11), (24, 0x21), (32, 0x21)] {
        let new = test_keys(0x31, len, 9);
        let put = commands::put_key(&new, 0x31, 0x00, &dek).unwrap();
        let c = &put.command;
        assert_eq!(
            (c.cla, c.ins, c.p1, c.p2, c.ne),
            (0x80, 0xD8, 0x00, 0x81, Some(256))
        );
        assert_eq!(c.data()[0], 0x31);
        assert_eq!(&c.data()[1..4], &[0x88, l1, len as u8]);
        let kcv_at = 4 + (l1 as usize - 1);
        assert_eq!(c.data()[kcv_at], 3);
        assert_eq!(&c.data()[kcv_at + 1..kcv_at + 4], &new.enc().kcv());
        let mut expected = vec![0x31];
        for kcv in new.kcvs() {
            expected.extend_from_slice(&kcv);
        }
        assert_eq!(put.expected_response, expected);
        let parsed = commands::parse_put_key(c, &dek).unwrap();
        assert_eq!(parsed.to_static_keys().unwrap().kcvs(), new.kcvs());
        assert_eq!(
            (parsed.old_kvn, parsed.first_key_id, parsed.multiple),
            (0, 1, true)
        );
    }
    assert!(commands::put_key(&test_keys(0x31, 16, 9), 0x32, 0x30, &dek).is_err());
    assert!(commands::put_key(&test_keys(0x31, 16, 9), 0x31, 0x80, &dek).is_err());
}

#[test]
fn put_key_bare_ciphertext_format_is_accepted() {
    // GPCS v2.3.1 Table 11-71: a key component block of whole AES blocks may
    // be the bare ciphertext ('88 10 <16 bytes> 03 KCV'), as some tools send.
    let dek = AesKey::new(&[0x44; 16]).unwrap();
    let new = test_keys(0x31, 16, 9);
    let put = commands::put_key(&new, 0x31, 0x30, &dek).unwrap();
    let mut data = vec![0x31];
    for chunk in put.command.data()[1..].chunks(23) {
        // 88 11 10 <16> 03 <3>  →  88 10 <16> 03 <3>
        data.extend_from_slice(&[0x88, 0x10]);
        data.extend_from_slice(&chunk[3..]);
    }
    let cmd = Command {
        data: cardsmith_wire::apdu::Data::Plain(data),
        ..put.command.clone()
    };
    let parsed = commands::parse_put_key(&cmd, &dek).unwrap();
    assert_eq!(parsed.to_static_keys().unwrap().kcvs(), new.kcvs());
    assert_eq!(parsed.response_data(), put.expected_response);
}

#[test]
fn put_key_wrong_kcv_or_dek_is_refused() {
    let dek = AesKey::new(&[0x44; 16]).unwrap();
    let new = test_keys(0x31, 16, 9);
    let put = commands::put_key(&new, 0x31, 0x30, &dek).unwrap();
    let mut bad = put.command.clone();
    let mut flipped = bad.data().to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    bad.data = cardsmith_wire::apdu::Data::Plain(flipped);
    assert_eq!(
        commands::parse_put_key(&bad, &dek).err(),
        Some(Error::KcvMismatch { index: 2 })
    );
    assert_eq!(Error::KcvMismatch { index: 2 }.status_word(), 0x6982);
    let other = AesKey::new(&[0x45; 16]).unwrap();
    assert_eq!(
        commands::parse_put_key(&put.command, &other).err(),
        Some(Error::KcvMismatch { index: 0 })
    );
    // A response with other KCVs is caught by the host.
    let mut resp = put.expected_response.clone();
    resp[4] ^= 0x80;
    assert_eq!(
        put.check_response(&Response::new(resp, 0x9000)),
        Err(Error::KcvMismatch { index: 1 })
    );
    assert_eq!(
        put.check_response(&Response::status(0x6982)),
        Err(Error::CardStatus { sw: 0x6982 })
    );
}

fn sample_dgis() -> Vec<Dgi> {
    let v = |n: usize, s: u8| -> Vec<u8> { (0..n).map(|i| (i as u8).wrapping_mul(s)).collect() };
    vec![
        (0x0101, v(0, 1)),
        (0x0102, v(1, 3)),
        (0x8010, v(254, 5)),
        (0x8020, v(255, 7)),
        (0x0070, v(1000, 11)),
        (0x9F45, v(300, 13)),
    ]
}

#[test]
fn store_data_blocks_reassemble() {
    for mode in MODES {
        for level in SecurityLevel::ALL {
            let keys = test_keys(0x30, 16, 3);
            let mut card = pseudo_random_card(keys.clone(), mode);
            let mut host = open(&mut card, keys.into(), mode, level, 8);
            let max = host.max_plain_data_len(255).unwrap();
            let blocks = commands::store_data(&sample_dgis(), max).unwrap();
            assert!(blocks.len() > 5);
            for (i, b) in blocks.iter().enumerate() {
                assert_eq!(b.p2, i as u8);
                assert_eq!(b.p1, if i + 1 == blocks.len() { 0x88 } else { 0x08 });
                let wrapped = host.wrap(b).unwrap();
                let raw = wrapped.encode().unwrap();
                assert!(
                    raw.len() <= 5 + 255 && !wrapped.needs_extended(),
                    "{mode:?} {level:?} block {i}"
                );
                let resp = card.transmit(&raw);
                let r = host.unwrap(&Response::from_bytes(&resp).unwrap()).unwrap();
                assert_eq!(r.sw, 0x9000);
            }
            assert_eq!(card.stored, sample_dgis(), "{mode:?} {level:?}");
        }
    }
}

#[test]
fn dgi_encoding() {
    let enc = commands::encode_dgis(&[(0x0101, vec![0xAA]), (0x8020, vec![0; 255])]).unwrap();
    assert_eq!(&enc[..4], &[0x01, 0x01, 0x01, 0xAA]);
    assert_eq!(&enc[4..9], &[0x80, 0x20, 0xFF, 0x00, 0xFF]);
    assert_eq!(commands::parse_dgis(&enc).unwrap()[1].1.len(), 255);
    assert!(commands::encode_dgis(&[(1, vec![0; 65_536])]).is_err());
    for bad in [
        &[0x01][..],
        &[0x01, 0x01],
        &[0x01, 0x01, 0x02, 0xAA],
        &[0x01, 0x01, 0xFF, 0x00],
    ] {
        assert!(
            matches!(commands::parse_dgis(bad), Err(Error::MalformedDgi(_))),
            "{bad:02X?}"
        );
    }
    assert!(commands::store_data(&[], 100).is_err());
    assert!(commands::store_data(&sample_dgis(), 0).is_err());
    assert!(matches!(
        commands::store_data(&[(1, vec![0; 60_000])], 200),
        Err(Error::TooManyBlocks { .. })
    ));
}

#[test]
fn store_data_out_of_sequence_is_refused() {
    let blocks = commands::store_data(&sample_dgis(), 100).unwrap();
    let mut a = StoreDataAssembler::new();
    assert_eq!(a.push(&blocks[0]).unwrap(), None);
    assert_eq!(
        a.push(&blocks[2]),
        Err(Error::StoreDataSequence {
            expected: 1,
            got: 2
        })
    );
    // After the error the assembler starts over at block 0.
    for (i, b) in blocks.iter().enumerate() {
        let r = a.push(b).unwrap();
        assert_eq!(r.is_some(), i + 1 == blocks.len());
        if let Some(dgis) = r {
            assert_eq!(dgis, sample_dgis());
        }
    }
}
