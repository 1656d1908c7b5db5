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

/// A connection on which another process resets the card when APDU number
/// `reset_at` arrives: the card powers up again (its selection is gone) and
/// that APDU fails with CardReset, as PC/SC reports it.
struct ResettingTransport {
    inner: SimTransport,
    card: Arc<Mutex<SimCard>>,
    count: Arc<Mutex<u64>>,
    reset_at: Arc<Mutex<Option<u64>>>,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
}

struct ResettingSession<'a> {
    inner: Box<dyn cardsmith::transport::Session + 'a>,
    card: Arc<Mutex<SimCard>>,
    count: Arc<Mutex<u64>>,
    reset_at: Arc<Mutex<Option<u64>>>,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl cardsmith::transport::Session for ResettingSession<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let n = {
            let mut c = self.count.lock().unwrap();
            *c += 1;
            *c
        };
        if *self.reset_at.lock().unwrap() == Some(n) {
            self.card.lock().unwrap().power_on();
            return Err(TransportError::CardReset {
                reader: "sim".into(),
            });
        }
        self.sent.lock().unwrap().push(apdu.to_vec());
        self.inner.transmit(apdu)
    }
}

impl cardsmith::transport::Transport for ResettingTransport {
    fn begin(&mut self) -> Result<Box<dyn cardsmith::transport::Session + '_>, TransportError> {
        let (card, count, reset_at, sent) = (
            self.card.clone(),
            self.count.clone(),
            self.reset_at.clone(),
            self.sent.clone(),
        );
        Ok(Box::new(ResettingSession {
            inner: self.inner.begin()?,
            card,
            count,
            reset_at,
            sent,
        }))
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), TransportError> {
        self.inner.reconnect(reset)
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn protocol(&self) -> cardsmith::transport::Protocol {
        self.inner.protocol()
    }
    fn reader(&self) -> String {
        self.inner.reader()
    }
}

/// The channel selects an application only when the card is not known to
/// be in it, and after a reset by another process the operation it runs
/// again selects it again (the card is back in the MF): selection tracking
/// keeps reset safety.
#[test]
fn a_known_selection_is_not_repeated_and_a_reset_forgets_it() {
    use cardsmith::perso::card;
    use cardsmith::transport::Selected;
    const AID: [u8; 5] = [0xF0, 0x01, 0x02, 0x03, 0x04];
    let sim = Arc::new(Mutex::new(SimCard::blank(SimConfig::default())));
    let count = Arc::new(Mutex::new(0u64));
    let reset_at = Arc::new(Mutex::new(None));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let mut ch = Channel::new(
        Box::new(ResettingTransport {
            inner: SimTransport::shared(sim.clone(), Faults::none()),
            card: sim,
            count: count.clone(),
            reset_at: reset_at.clone(),
            sent: sent.clone(),
        }),
        ExchangeOptions::default(),
    );
    // An application DF with one EF (the EF is created in the new DF).
    let mut df = vec![0x82, 0x01, 0x38, 0x83, 0x02, 0x50, 0x00, 0x84, 0x05];
    df.extend_from_slice(&AID);
    let mut df_fcp = vec![0x62, df.len() as u8];
    df_fcp.extend_from_slice(&df);
    ch.run(|ex| -> Result<(), ExchangeError> {
        ex.expect_ok(&cmd::create_file(&df_fcp))?;
        ex.expect_ok(&cmd::create_file(&ef_fcp(0x0101, 16)))?;
        Ok(())
    })
    .unwrap();
    // A DF just created: the channel does not assume where the card is.
    assert_eq!(ch.selected(), None);
    let select_and_open_ef = async |io: &cardsmith::transport::sansio::Io| {
        card::select_aid(io, &cardsmith::perso::profile::Profile::reference(), &AID).await?;
        io.expect_ok(&cmd::select_ef(0x0101, cmd::SelectReturn::Nothing))
            .await
            .map(|_| ())
    };
    let is_select_aid = |a: &Vec<u8>| a.get(1..3) == Some(&[0xA4, 0x04][..]);
    let before = sent.lock().unwrap().len();
    ch.converse(select_and_open_ef).unwrap();
    assert_eq!(ch.selected(), Some(&Selected::Aid(AID.to_vec())));
    assert_eq!(sent.lock().unwrap().len(), before + 2);
    // Known: only the EF is selected.
    ch.converse(select_and_open_ef).unwrap();
    let after = sent.lock().unwrap().clone();
    assert_eq!(after.len(), before + 3);
    assert!(!is_select_aid(&after[before + 2]));
    // Another process resets the card at the next APDU: the operation is
    // run again from an unknown selection, so it selects the application
    // first (else SELECT EF 0101 would not find the EF from the MF).
    let n = *count.lock().unwrap();
    *reset_at.lock().unwrap() = Some(n + 1);
    ch.converse(select_and_open_ef).unwrap();
    assert_eq!(ch.resets_recovered(), 1);
    let last = sent.lock().unwrap().clone();
    assert_eq!(
        last.len(),
        before + 5,
        "the rerun selects the application, then the EF"
    );
    assert!(is_select_aid(&last[before + 3]));
    assert_eq!(ch.selected(), Some(&Selected::Aid(AID.to_vec())));
}
