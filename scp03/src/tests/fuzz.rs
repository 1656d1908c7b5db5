//! Random input for every parser: errors are fine, panics are not. A seeded
//! xorshift keeps runs reproducible.

use super::sim::*;
use super::*;

const ROUNDS: usize = 20_000;

/// Random bytes, often shaped like an APDU header with a plausible Lc.
fn random_apdu(rng: &mut XorShift) -> Vec<u8> {
    let len = rng.below(300);
    let mut b = rng.bytes(len);
    if len > 5 && rng.below(2) == 0 {
        b[4] = (len - 5 - rng.below(2)) as u8;
    }
    b
}

#[test]
fn apdu_parsers_never_panic() {
    let mut rng = XorShift::new(0x5C03_0001);
    for _ in 0..ROUNDS {
        let b = random_apdu(&mut rng);
        if let Ok(cmd) = Command::parse(&b) {
            // Whatever parses re-encodes to the same length class and back.
            let again = cmd.encode().unwrap();
            assert_eq!(Command::parse(&again).unwrap(), cmd);
        }
        let _ = Response::from_bytes(&b);
    }
}

#[test]
fn random_commands_round_trip_through_the_encoder() {
    let mut rng = XorShift::new(0x5C03_0002);
    for _ in 0..2_000 {
        let nc = match rng.below(4) {
            0 => 0,
            1 => rng.below(256),
            2 => 256 + rng.below(1000),
            _ => rng.below(20),
        };
        let le = match rng.below(4) {
            0 => None,
            1 => Some(1 + rng.below(256)),
            2 => Some(1 + rng.below(65_536)),
            _ => Some(256),
        };
        let mut cmd = Command {
            cla: rng.next_u64() as u8,
            ins: rng.next_u64() as u8,
            p1: rng.next_u64() as u8,
            p2: rng.next_u64() as u8,
            data: cardsmith_wire::apdu::Data::Plain(rng.bytes(nc)),
            ne: le,
            form: cardsmith_wire::apdu::LengthForm::Auto,
        };
        // The parser records the length form it read.
        if cmd.needs_extended() {
            cmd.form = cardsmith_wire::apdu::LengthForm::Extended;
        }
        assert_eq!(Command::parse(&cmd.encode().unwrap()).unwrap(), cmd);
    }
}

#[test]
fn data_parsers_never_panic() {
    let mut rng = XorShift::new(0x5C03_0003);
    let dek = AesKey::new(&[0x44; 16]).unwrap();
    let mut assembler = StoreDataAssembler::new();
    for round in 0..ROUNDS {
        let len = rng.below(120);
        let mut b = rng.bytes(len);
        // INITIALIZE UPDATE responses: random, and random with a valid key
        // information field so the length checks are reached.
        let _ = InitUpdateResponse::parse(&b);
        if b.len() > 13 {
            b[11] = 0x03;
            b[12] = [0x00, 0x10, 0x70, 0x71, 0x61, 0x31][rng.below(6)];
            let _ = InitUpdateResponse::parse(&b);
        }
        let _ = commands::parse_dgis(&b);
        // PUT KEY data, sometimes with a plausible key type and length.
        if b.len() > 3 && round % 2 == 0 {
            b[1] = 0x88;
            b[2] = [0x10, 0x11, 0x21, 0x81, 0x82, 0x80, 0x20][rng.below(7)];
        }
        let put = Command::new(
            0x80,
            commands::INS_PUT_KEY,
            b.first().copied().unwrap_or(0),
            0x81,
        )
        .with_data(b.clone());
        let _ = commands::parse_put_key(&put, &dek);
        let store = Command::new(
            0x80,
            commands::INS_STORE_DATA,
            [0x08, 0x88, 0x00][rng.below(3)],
            rng.below(3) as u8,
        )
        .with_data(b);
        let _ = assembler.push(&store);
    }
}

#[test]
fn card_side_never_panics_on_random_apdus() {
    let mut rng = XorShift::new(0x5C03_0004);
    let keys = test_keys(0x30, 16, 1);
    for mode in [Mode::S8, Mode::S16] {
        for level in [SecurityLevel::C_MAC, SecurityLevel::C_DEC_R_ENC_C_MAC_R_MAC] {
            let mut card = pseudo_random_card(keys.clone(), mode);
            for round in 0..4_000 {
                // Keep a session open (or pending) most of the time so the
                // MAC, decryption and authentication paths see the input.
                if round % 500 == 0 {
                    open(&mut card, keys.clone().into(), mode, level, round as u64);
                }
                if round % 500 == 250 {
                    let host =
                        HostSession::new(keys.clone().into(), mode, &vec![1; mode.len()]).unwrap();
                    card.transmit(&host.initialize_update().encode().unwrap());
                }
                let mut apdu = random_apdu(&mut rng);
                if apdu.len() > 2 && rng.below(4) == 0 {
                    apdu[0] = [0x80, 0x84, 0x00, 0xC4, 0xE0][rng.below(5)];
                    apdu[1] = [0x50, 0x82, 0xE2, 0xD8][rng.below(4)];
                }
                let raw = card.transmit(&apdu);
                assert!(raw.len() >= 2);
                let _ = card.sd.unwrap_command(&apdu);
                let _ = card.sd.wrap_response(&apdu, 0x9000);
            }
        }
    }
}

#[test]
fn host_side_never_panics_on_random_responses() {
    let mut rng = XorShift::new(0x5C03_0005);
    let keys = test_keys(0x30, 32, 2);
    for mode in [Mode::S8, Mode::S16] {
        for _ in 0..2_000 {
            let mut host =
                HostSession::new(keys.clone().into(), mode, &vec![2; mode.len()]).unwrap();
            let len = rng.below(60);
            let sw = [0x9000, 0x6A88, 0x6310, rng.next_u64() as u16][rng.below(4)];
            let _ = host.process_initialize_update(&Response::new(rng.bytes(len), sw));
            let _ = host.external_authenticate(SecurityLevel::C_MAC);
        }
        let mut card = pseudo_random_card(keys.clone(), mode);
        let mut host = open(
            &mut card,
            keys.clone().into(),
            mode,
            SecurityLevel::C_DEC_R_ENC_C_MAC_R_MAC,
            1,
        );
        for _ in 0..2_000 {
            host.wrap(&Command::new(0x80, INS_ECHO, 0, 0).with_ne(256))
                .ok();
            let len = rng.below(80);
            let sw = [0x9000, 0x6A88, 0x6310, rng.next_u64() as u16][rng.below(4)];
            let _ = host.unwrap(&Response::new(rng.bytes(len), sw));
        }
    }
}

#[test]
fn mutated_wrapped_commands_are_never_accepted_with_other_content() {
    // Bit flips anywhere in a genuine wrapped command: the card either
    // refuses it or (for bits outside the C-MAC: CLA secure messaging bit,
    // Le) delivers exactly the original INS, P1, P2 and data.
    let mut rng = XorShift::new(0x5C03_0006);
    let keys = test_keys(0x30, 16, 3);
    let original = Command::new(0x80, INS_ECHO, 0x12, 0x34)
        .with_data(b"amount=100".to_vec())
        .with_ne(256);
    for round in 0..300 {
        let level = [SecurityLevel::C_MAC, SecurityLevel::C_DEC_C_MAC][round % 2];
        let mut card = pseudo_random_card(keys.clone(), Mode::S8);
        let mut host = open(
            &mut card,
            keys.clone().into(),
            Mode::S8,
            level,
            round as u64,
        );
        let mut raw = host.wrap(&original).unwrap().encode().unwrap();
        let flips = 1 + rng.below(3);
        for _ in 0..flips {
            let pos = rng.below(raw.len());
            raw[pos] ^= 1 << rng.below(8);
        }
        if let Ok(cmd) = card.sd.unwrap_command(&raw) {
            assert_eq!(
                (cmd.ins, cmd.p1, cmd.p2, cmd.data()),
                (original.ins, original.p1, original.p2, original.data())
            );
        }
    }
}
