//! The cardsmith line readers through the real pcscd: the project's own
//! driver (`ifd/`, installed by `scripts/setup.sh`) with one simulated card
//! per reader, all readers at once.

mod common;

use cardsmith::apdu::{cmd, Command, StatusWord};
use cardsmith::sim::faults::Faults;
use cardsmith::sim::line_readers::{line_reader_name, LINE_READERS};
use cardsmith::sim::vpcd::{Ended, VpcdCard};
use cardsmith::sim::SimConfig;
use cardsmith::transport::pcsc::{self as pc, CardEvent};
use cardsmith::transport::{Channel, ExchangeError};
use common::*;
use std::process::{Command as Process, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// CREATE FILE: transparent EF 'EF01' of 256 bytes, free access, in the
/// current DF; it becomes the current file.
const CREATE_EF: &str = "00 E0 00 00 13 62 11 80 02 01 00 82 01 01 83 02 EF 01 8A 01 03 8C 01 00";

fn create_ef(ch: &mut Channel) {
    let c = Command::parse(&cardsmith::hex::parse(CREATE_EF).unwrap()).unwrap();
    ch.run(|ex| -> Result<(), ExchangeError> {
        ex.expect_ok(&cmd::select_mf(cmd::SelectReturn::Nothing))?;
        ex.expect_ok(&c)?;
        Ok(())
    })
    .unwrap();
}

/// Write `data` to the current EF and read it back, in one transaction.
fn write_read(ch: &mut Channel, data: &[u8]) -> Vec<u8> {
    ch.run(|ex| -> Result<_, ExchangeError> {
        ex.expect_ok(&cmd::update_binary(0, data))?;
        ex.expect_ok(&cmd::read_binary(0, data.len()))
    })
    .unwrap()
}

fn wait(reader: &str, event: CardEvent) {
    pc::wait_for(Some(reader), event, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{reader}: waiting for {event:?}: {e}"));
}

#[test]
fn all_line_readers_work_at_once() {
    let _g = pcsc_lines();
    let readers: Vec<u16> = (0..LINE_READERS).collect();

    // A card into every reader; pcscd sees each.
    let cards: Vec<VpcdCard> = readers
        .iter()
        .map(|&i| {
            VpcdCard::start(blank(SimConfig::default()), line_opts(i, Faults::none()))
                .expect("connect to the line reader")
        })
        .collect();
    for &i in &readers {
        wait(&line_reader_name(i), CardEvent::Inserted);
    }
    for r in pc::list_readers().unwrap() {
        if r.name.starts_with("Cardsmith Line") {
            assert!(r.card_present, "{r:?}");
            assert!(
                r.atr.as_deref().is_some_and(|a| a.starts_with("3B")),
                "{r:?}"
            );
        }
    }

    // Every reader from its own thread at the same time; each card keeps
    // its own data, so nothing crosses between readers.
    const ROUNDS: u8 = 20;
    let start = Arc::new(Barrier::new(readers.len()));
    let workers: Vec<_> = readers
        .iter()
        .map(|&i| {
            let start = start.clone();
            std::thread::spawn(move || {
                let mut ch = channel(&line_reader_name(i));
                create_ef(&mut ch);
                start.wait();
                for round in 0..ROUNDS {
                    let data: Vec<u8> = (0..32).map(|k| (i as u8) ^ round ^ k).collect();
                    assert_eq!(write_read(&mut ch, &data), data, "reader {i} round {round}");
                }
                let r = ch.run(|ex| ex.transmit(&cmd::get_challenge(8))).unwrap();
                assert_eq!((r.sw, r.data.len()), (StatusWord::Ok, 8));
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    // SELECT + CREATE, a write and a read per round, GET CHALLENGE.
    let sent = 2 + 2 * u64::from(ROUNDS) + 1;
    for (card, &i) in cards.iter().zip(&readers) {
        let n = card.stats.apdus.load(Ordering::SeqCst);
        assert_eq!(n, sent, "reader {i}'s card got {n} APDUs");
    }

    // Out they come; pcscd sees each removal.
    for card in cards {
        assert_eq!(card.remove().unwrap(), Ended::Stopped);
    }
    for &i in &readers {
        wait(&line_reader_name(i), CardEvent::Removed);
    }

    // A new card goes into readers that had one: a fresh card (no EF01).
    for i in [0, LINE_READERS - 1] {
        let card = insert_line(blank(SimConfig::default()), i, Faults::none());
        let mut ch = channel(&line_reader_name(i));
        let r = ch
            .run(|ex| {
                ex.transmit(&Command::parse(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0xEF, 0x01]).unwrap())
            })
            .unwrap();
        assert_eq!(r.sw, StatusWord::from_u16(0x6A82), "reader {i}");
        create_ef(&mut ch);
        assert_eq!(write_read(&mut ch, b"again"), b"again");
        drop(ch);
        card.remove().unwrap();
        wait(&line_reader_name(i), CardEvent::Removed);
    }
}

#[test]
fn a_pulled_card_is_seen_at_once() {
    let _g = pcsc_lines();
    let name = line_reader_name(2);
    let card = insert_line(blank(SimConfig::default()), 2, Faults::none());
    let mut ch = channel(&name);
    create_ef(&mut ch);
    card.remove().unwrap();
    let t0 = Instant::now();
    wait(&name, CardEvent::Removed);
    let removed = t0.elapsed();
    let e = ch
        .run(|ex| ex.transmit(&cmd::select_mf(cmd::SelectReturn::Nothing)))
        .unwrap_err();
    assert!(
        matches!(e, ExchangeError::Transport(ref t) if t.is_absence()),
        "{e:?}"
    );
    // Figures only: the driver's polling thread against pcscd's 400 ms poll
    // of vpcd (from the client's connect returning / its socket closing).
    let card = VpcdCard::start(blank(SimConfig::default()), line_opts(2, Faults::none())).unwrap();
    let t0 = Instant::now();
    wait(&name, CardEvent::Inserted);
    let inserted = t0.elapsed();
    drop(card);
    wait(&name, CardEvent::Removed);
    let mut opts = cardsmith::sim::vpcd::VpcdOptions::slot(1);
    opts.reconnect = false;
    let card = VpcdCard::start(blank(SimConfig::default()), opts).unwrap();
    let t0 = Instant::now();
    wait(&reader(1), CardEvent::Inserted);
    let vpcd_inserted = t0.elapsed();
    card.remove().unwrap();
    let t0 = Instant::now();
    wait(&reader(1), CardEvent::Removed);
    let vpcd_removed = t0.elapsed();
    eprintln!(
        "pcscd saw: line reader insertion after {inserted:?}, removal after {removed:?}; \
         vpcd insertion after {vpcd_inserted:?}, removal after {vpcd_removed:?}"
    );
}

/// Puts pcscd back (with vpcd listening) if a test leaves it stopped.
struct RestorePcscd;

impl Drop for RestorePcscd {
    fn drop(&mut self) {
        if !pcscd_running() {
            start_pcscd();
        }
        let t0 = Instant::now();
        while !listening(35963) && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn pcscd_running() -> bool {
    Process::new("pgrep")
        .args(["-x", "pcscd"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn start_pcscd() {
    // pcscd daemonizes; keep it off the test's pipes.
    let ok = Process::new("pcscd")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "start pcscd (needs root, like scripts/setup.sh)");
}

/// Wait until pcscd lists `name` (it may not be running yet).
fn wait_listed(name: &str, timeout: Duration) {
    let t0 = Instant::now();
    loop {
        if pc::list_readers().is_ok_and(|rs| rs.iter().any(|r| r.name == name)) {
            return;
        }
        assert!(t0.elapsed() < timeout, "pcscd never listed {name}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn line_readers_come_back_after_a_pcscd_restart() {
    let _g = pcsc_lines();
    let i = LINE_READERS - 1;
    let name = line_reader_name(i);
    let mut opts = line_opts(i, Faults::none());
    opts.reconnect = true;
    opts.connect_timeout = Some(Duration::from_secs(30));
    let card = VpcdCard::start(blank(SimConfig::default()), opts).unwrap();
    wait(&name, CardEvent::Inserted);
    let mut ch = channel(&name);
    create_ef(&mut ch);
    assert_eq!(
        write_read(&mut ch, b"before the restart"),
        b"before the restart"
    );
    drop(ch);

    let _restore = RestorePcscd;
    assert!(Process::new("pkill")
        .args(["-x", "pcscd"])
        .status()
        .unwrap()
        .success());
    let t0 = Instant::now();
    while pcscd_running() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "pcscd does not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    start_pcscd();
    wait_listed(&name, Duration::from_secs(20));
    wait(&name, CardEvent::Inserted);
    assert!(card.is_inserted());

    // The same card (its file is still there), usable through the new pcscd.
    let mut ch = channel(&name);
    let data = ch
        .run(|ex| -> Result<_, ExchangeError> {
            ex.expect_ok(&Command::parse(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0xEF, 0x01]).unwrap())?;
            ex.expect_ok(&cmd::read_binary(0, 18))
        })
        .unwrap();
    assert_eq!(data, b"before the restart");
    drop(ch);
    card.remove().unwrap();
    wait(&name, CardEvent::Removed);

    // vpcd is back too: other tests need it.
    for slot in 0..2 {
        wait_listed(&reader(slot), Duration::from_secs(20));
    }
    let vcard = insert(blank(SimConfig::default()), 0, Faults::none());
    let mut ch = channel(&reader(0));
    ch.run(|ex| ex.expect_ok(&cmd::select_mf(cmd::SelectReturn::Nothing)))
        .unwrap();
    drop(ch);
    drop(vcard);
}

/// Not a pass/fail check: measures whether pcscd runs transmits on
/// different readers of the same driver in parallel. Every card answers
/// each APDU after a fixed delay; K APDUs on one reader alone are compared
/// with K APDUs on each of several readers at once. Prints the figures
/// (`cargo test --test line_readers -- --nocapture`).
#[test]
fn parallel_transmits_figures() {
    let _g = pcsc_lines();
    const K: usize = 10;
    const DELAY: Duration = Duration::from_millis(20);
    let slow = Faults {
        delay: Some(DELAY),
        ..Faults::none()
    };
    for (label, faults, k) in [
        ("20 ms card", slow, K),
        ("no delay", Faults::none(), 10 * K),
    ] {
        let one = run_on(&[0], faults.clone(), k);
        let mut lines = vec![format!(
            "{label}: 1 reader x {k} APDUs: {:.0} ms",
            one.as_secs_f64() * 1e3
        )];
        for n in [2u16, 4, 8, LINE_READERS] {
            let readers: Vec<u16> = (0..n).collect();
            let took = run_on(&readers, faults.clone(), k);
            lines.push(format!(
                "{label}: {n} readers x {k} APDUs at once: {:.0} ms wall ({:.1}x the APDUs of one reader per unit of time)",
                took.as_secs_f64() * 1e3,
                f64::from(n) * one.as_secs_f64() / took.as_secs_f64()
            ));
        }
        for l in lines {
            eprintln!("{l}");
        }
    }
}

/// Insert a card with `faults` in each of `readers`, connect to all, then
/// time `k` GET CHALLENGEs on every reader at once (wall time).
fn run_on(readers: &[u16], faults: Faults, k: usize) -> Duration {
    let cards: Vec<VpcdCard> = readers
        .iter()
        .map(|&i| insert_line(blank(SimConfig::default()), i, faults.clone()))
        .collect();
    let start = Arc::new(Barrier::new(readers.len() + 1));
    let workers: Vec<_> = readers
        .iter()
        .map(|&i| {
            let start = start.clone();
            std::thread::spawn(move || {
                let mut ch = channel(&line_reader_name(i));
                start.wait();
                for _ in 0..k {
                    let r = ch.run(|ex| ex.transmit(&cmd::get_challenge(8))).unwrap();
                    assert_eq!(r.sw, StatusWord::Ok);
                }
                start.wait();
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    start.wait();
    let took = t0.elapsed();
    for w in workers {
        w.join().expect("worker");
    }
    for (card, &i) in cards.into_iter().zip(readers) {
        card.remove().unwrap();
        wait(&line_reader_name(i), CardEvent::Removed);
    }
    took
}
