//! The simulated card's security domain under fuzzed commands inside a
//! real SCP03 session: the harness opens the session with the card's keys
//! (so the fuzzer's bytes reach the unwrapped-command paths: the card's
//! own commands, PUT KEY and STORE DATA parsing), then sends each chunk
//! either wrapped by the host (first byte even) or raw (odd), which also
//! exercises MAC failures and aborted sessions. Every answer has a status
//! word and nothing panics. A second target input form, the key file text,
//! is fuzzed in `scp03_keyfile`.
#![no_main]
use cardsmith_host::scp03::keyfile::Scp03Keys;
use cardsmith_host::scp03::{KeySource, StaticKeys};
use cardsmith_host::sim::{Provision, SimCard};
use cardsmith_host::transport::sim::SimTransport;
use cardsmith_host::transport::{Channel, ExchangeOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(k) = StaticKeys::single(0x30, &[0x42; 16]) else {
        return;
    };
    let keys = Scp03Keys {
        keys: KeySource::Static(k),
        origin: "fuzz".into(),
    };
    let Ok(card) = SimCard::blank_provisioned(
        Default::default(),
        Provision {
            issuer_key: Some(&[0; 16]),
            scp03: Some(&keys.keys),
        },
    ) else {
        return;
    };
    let mut card = card;
    card.power_on();
    let mut ch = Channel::new(Box::new(SimTransport::new(card)), ExchangeOptions::raw());
    let opts = cardsmith_host::scp03::link::Options {
        aid: cardsmith_host::sim::SD_DEFAULT_AID.to_vec(),
        level: cardsmith_host::scp03::SecurityLevel::from_p1(0x33).expect("level"),
        mode: cardsmith_host::scp03::Mode::S8,
    };
    let Ok((mut link, _)) = ch.run(|ex| cardsmith_host::scp03::link::handshake(ex, &keys, &opts)) else {
        panic!("the handshake with the right keys must succeed");
    };
    for chunk in data.split(|b| *b == 0xA5) {
        let Some((first, apdu)) = chunk.split_first() else {
            continue;
        };
        let bytes = if first & 1 == 0 {
            match link.wrap(apdu) {
                Ok(w) => w,
                Err(_) => continue,
            }
        } else {
            apdu.to_vec()
        };
        if let Ok(r) = ch.run(|ex| ex.transmit_bytes(&bytes, false)) {
            let _ = link.unwrap(&r.data, u16::from_be_bytes(r.sw.bytes()));
        }
    }
});
