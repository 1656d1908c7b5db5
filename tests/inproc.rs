//! The same exchange logic as through pcscd, over the in-process transport:
//! chaining, extended length, chunking, and faults injected mid-sequence.

use cardsmith::apdu::{cmd, StatusWord};
use cardsmith::sim::faults::Faults;
use cardsmith::sim::{SimCard, SimConfig};
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{Channel, ExchangeError, ExchangeOptions, TransportError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn channel(cfg: SimConfig, faults: Faults) -> Channel {
    let card = Arc::new(Mutex::new(SimCard::blank(cfg)));
    Channel::new(
        Box::new(SimTransport::shared(card, faults)),
        ExchangeOptions::default(),
    )
}

fn ef_fcp(fid: u16, size: usize) -> Vec<u8> {
    let mut body = vec![
        0x81,
        0x03,
        (size >> 16) as u8,
        (size >> 8) as u8,
        size as u8,
    ];
    body.extend_from_slice(&[0x82, 0x01, 0x01, 0x83, 0x02, (fid >> 8) as u8, fid as u8]);
    let mut fcp = vec![0x62, body.len() as u8];
    fcp.extend_from_slice(&body);
    fcp
}

/// Create an EF of `size`, write a pattern, read it back; the APDU count.
fn round_trip(ch: &mut Channel, size: usize, offset: usize) -> usize {
    let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
    let (back, n) = ch
        .run(|ex| -> Result<_, ExchangeError> {
            ex.expect_ok(&cmd::select_mf(cmd::SelectReturn::Nothing))?;
            ex.expect_ok(&cmd::create_file(&ef_fcp(0xEF05, offset + size)))?;
            ex.update_binary(offset, &data)?;
            let back = ex.read_binary(offset, size)?;
            for t in ex.trace() {
                eprintln!(
                    "{} -> {:?} {}",
                    &t.command[..t.command.len().min(40)],
                    t.sw,
                    t.response.len() / 3
                );
            }
            Ok((back, ex.trace().len()))
        })
        .unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "read back differs from what was written");
    n
}

#[test]
fn extended_length_in_one_apdu_each_way() {
    let mut ch = channel(SimConfig::default(), Faults::none());
    assert!(ch.caps().extended_length);
    assert_eq!(round_trip(&mut ch, 40_000, 0), 4);
}

#[test]
fn chaining_when_the_card_has_no_extended_length() {
    let cfg = SimConfig {
        extended_length: false,
        ..SimConfig::default()
    };
    let mut ch = channel(cfg, Faults::none());
    assert!(!ch.caps().extended_length && ch.caps().chaining);
    // 1000 bytes: 4 chained parts to write, 4 short reads.
    assert_eq!(round_trip(&mut ch, 1000, 0), 2 + 4 + 4);
}

#[test]
fn chunking_when_the_card_has_neither() {
    let cfg = SimConfig {
        extended_length: false,
        command_chaining: false,
        ..SimConfig::default()
    };
    let mut ch = channel(cfg, Faults::none());
    assert!(!ch.caps().extended_length && !ch.caps().chaining);
    // 1000 bytes: 4 UPDATE BINARY at offsets 0, 255, 510, 765; 4 reads.
    assert_eq!(round_trip(&mut ch, 1000, 0), 2 + 4 + 4);
    // A single command that does not fit is a clear error, not a silent truncation.
    let e = ch
        .run(|ex| ex.transmit(&cmd::update_binary(0, &[0; 300])))
        .unwrap_err();
    assert!(
        matches!(
            e,
            ExchangeError::TooLong {
                needed: 300,
                max: 255,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn offsets_above_32767_use_odd_ins() {
    let mut ch = channel(SimConfig::default(), Faults::none());
    round_trip(&mut ch, 5000, 40_000);
    let cfg = SimConfig {
        extended_length: false,
        command_chaining: false,
        ..SimConfig::default()
    };
    let mut ch = channel(cfg, Faults::none());
    round_trip(&mut ch, 600, 33_000);
}

#[test]
fn get_response_when_the_card_insists() {
    let cfg = SimConfig {
        force_get_response: true,
        ..SimConfig::default()
    };
    let mut ch = channel(cfg, Faults::none());
    let (r, wire) = ch
        .run(|ex| -> Result<_, ExchangeError> {
            let r = ex.transmit(&cmd::get_challenge(32))?;
            Ok((r, ex.take_trace()))
        })
        .unwrap();
    assert_eq!(r.sw, StatusWord::Ok);
    assert_eq!(r.data.len(), 32);
    assert_eq!(wire.len(), 2);
    assert_eq!(wire[0].sw, StatusWord::MoreData { available: 32 });
}

#[test]
fn removal_at_every_index_of_a_sequence() {
    // Pull the card at each APDU of a 6-APDU sequence: the operation fails
    // with CardRemoved at exactly that point, never with a panic or a wrong answer.
    for k in 1..=6u64 {
        let faults = Faults {
            remove_at: Some(k),
            ..Faults::default()
        };
        let mut ch = channel(SimConfig::default(), faults);
        let mut answered = 0;
        let e = ch
            .run(|ex| -> Result<(), ExchangeError> {
                ex.expect_ok(&cmd::select_mf(cmd::SelectReturn::Nothing))?;
                answered += 1;
                ex.expect_ok(&cmd::create_file(&ef_fcp(0xEF01, 600)))?;
                answered += 1;
                ex.update_binary(0, &[7; 600])?; // one extended APDU
                answered += 1;
                for _ in 0..3 {
                    ex.expect_ok(&cmd::get_challenge(8))?;
                    answered += 1;
                }
                Ok(())
            })
            .unwrap_err();
        assert_eq!(answered, k - 1, "pulled at {k}");
        assert!(
            matches!(
                e,
                ExchangeError::Transport(TransportError::CardRemoved { .. })
            ),
            "{e:?}"
        );
        // And the channel stays removed: no retry, no ghost answers.
        let again = ch
            .run(|ex| ex.transmit(&cmd::get_challenge(8)))
            .unwrap_err();
        assert!(matches!(
            again,
            ExchangeError::Transport(TransportError::CardRemoved { .. })
        ));
    }
}

#[test]
fn mute_card_times_out() {
    let faults = Faults {
        mute_from: Some(2),
        ..Faults::default()
    };
    let mut ch = channel(SimConfig::default(), faults);
    let e = ch
        .run(|ex| -> Result<(), ExchangeError> {
            ex.expect_ok(&cmd::get_challenge(8))?;
            ex.expect_ok(&cmd::get_challenge(8))?;
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(e, ExchangeError::Transport(TransportError::Timeout(_))),
        "{e:?}"
    );
}

#[test]
fn slow_card_still_answers_correctly() {
    let faults = Faults {
        delay: Some(Duration::from_millis(20)),
        ..Faults::default()
    };
    let mut ch = channel(SimConfig::default(), faults);
    let (r, t) = ch
        .run(|ex| -> Result<_, ExchangeError> {
            let r = ex.transmit(&cmd::select_mf(cmd::SelectReturn::Fcp))?;
            Ok((r, ex.take_trace()))
        })
        .unwrap();
    assert_eq!(r.sw, StatusWord::Ok);
    // The trace records the card's time (correctness of timing, not a speed test).
    assert!(t[0].elapsed >= Duration::from_millis(20));
}

#[test]
fn status_errors_carry_the_status_word() {
    let mut ch = channel(SimConfig::default(), Faults::none());
    let e = ch
        .run(|ex| ex.expect_ok(&cmd::select_by_fid(0x1234, cmd::SelectReturn::Nothing)))
        .unwrap_err();
    match e {
        ExchangeError::Status { sw, command } => {
            assert_eq!(sw, StatusWord::FileNotFound);
            assert!(command.contains("00 A4 00 0C"), "{command}");
        }
        other => panic!("{other:?}"),
    }
}
