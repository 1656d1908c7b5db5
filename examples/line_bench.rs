//! Benchmark of the personalization line (not a test): cards per hour with
//! 1, 2, 4, 8 and 16 readers under the card timing model, the scaling
//! against linear, the line's CPU per card against the engine's own, and
//! the journal's overhead per card. Every figure is measured in this run;
//! ratios are against the baselines measured here too. Run with
//! `bash bench/line.sh`.
//!
//! CPU is read with `clock_gettime` (process and thread CPU clocks,
//! nanoseconds). The baselines are like for like with what they are
//! compared with:
//! - in process, the simulated cards run inside the line's worker threads,
//!   so the line's process CPU includes the cards' own work; its baseline
//!   is the engine's perso + verify in process, cards included;
//! - through pcscd, the cards run in a card handler of their own (a child
//!   `cardsmith sim --feed` process), so the line's process CPU is host work
//!   only; its baseline is the engine's perso + verify of cards in the same
//!   readers through the same pcscd (connect, perso, verify, power down),
//!   on this thread's CPU clock.

use cardsmith::cli::perso::{CardArgs, SideFromArgs};
use cardsmith::line::progress::Progress;
use cardsmith::line::run::{self, Readers, RunOptions};
use cardsmith::line::slot::{CardSlot, SimFeed, SimSlot};
use cardsmith::line::station::StationCtx;
use cardsmith::perso::input::{compact_template, IsoTemplates};
use cardsmith::perso::side::IssuerSide;
use cardsmith::perso::{engine, input};
use cardsmith::record::{self, Record};
use cardsmith::register::journal::{Finish, Journal, NewRecord, Outcome, Who};
use cardsmith::register::sqlite::SqliteJournal;
use cardsmith::sim::faults::Faults;
use cardsmith::sim::timing::Timing;
use cardsmith::sim::{Provision, SimCard, SimConfig};
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{Channel, ExchangeOptions};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn clock_seconds(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec it is given.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// CPU time (user + system) of the whole process, in seconds.
fn cpu_seconds() -> f64 {
    clock_seconds(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time of the calling thread, in seconds.
fn thread_cpu_seconds() -> f64 {
    clock_seconds(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// A card handler feeding blank cards into the first `readers` line
/// readers, in a process of its own (`cardsmith sim --feed`), so that the
/// cards' CPU is not the line's.
struct ChildFeeder(std::process::Child);

impl ChildFeeder {
    fn start(data: &Path, hopper: &Path, readers: usize, timing: &str) -> ChildFeeder {
        let exe = std::env::current_exe().expect("exe");
        let bin = exe
            .parent()
            .and_then(|d| d.parent())
            .map(|d| d.join("cardsmith"))
            .expect("target dir");
        let child = std::process::Command::new(&bin)
            .arg("sim")
            .arg("--data-dir")
            .arg(data)
            .arg("--feed")
            .arg(hopper)
            .args(["--line-readers", &readers.to_string()])
            .args(["--timing", timing, "--handling-ms", "100"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {}: {e} (bench/line.sh builds it)", bin.display())
            });
        ChildFeeder(child)
    }
}

impl Drop for ChildFeeder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn who() -> Who {
    Who {
        station: "bench".into(),
        operator: "bench".into(),
        reader: None,
    }
}

fn records(dir: &Path, n: usize) -> HashMap<String, Record> {
    let path = dir.join("batch.jsonl");
    let lines = cardsmith::perso::samples::sample_lines(n, 99, input::today());
    std::fs::write(&path, lines.join("\n") + "\n").expect("batch");
    let b = record::load_records(&path, &IsoTemplates { max_minutiae: 60 }).expect("load");
    b.good
        .into_iter()
        .map(|(_, r)| (r.record_id().to_string(), r))
        .collect()
}

fn side(dir: &Path) -> IssuerSide {
    IssuerSide::load(&CardArgs {
        data_dir: Some(dir.to_path_buf()),
        ..CardArgs::default()
    })
    .expect("issuer")
}

fn journal_with(dir: &Path, recs: &HashMap<String, Record>) -> (Arc<SqliteJournal>, i64) {
    let j = Arc::new(SqliteJournal::open(&dir.join("journal.sqlite")).expect("journal"));
    let mut ids: Vec<&String> = recs.keys().collect();
    ids.sort();
    let queued: Vec<NewRecord> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| NewRecord {
            record_id: (*id).clone(),
            line: i as u64 + 1,
            request: None,
        })
        .collect();
    let (b, _) = j
        .load_batch(
            "bench",
            "bench.jsonl",
            &format!("{}", recs.len()),
            &who(),
            &queued,
            &[],
        )
        .expect("load");
    (j, b.id)
}

enum Where {
    InProcess,
    Pcscd,
}

/// Run one batch; returns (wall seconds, cards good, process CPU seconds).
fn line_run(
    data: &Path,
    readers: usize,
    cards: usize,
    timing: Option<Timing>,
    place: Where,
) -> (f64, u64, f64) {
    let run_dir = tempfile::tempdir().expect("tempdir");
    let recs = records(run_dir.path(), cards);
    let (journal, batch_id) = journal_with(run_dir.path(), &recs);
    let issuer = side(data);
    let key = issuer.key.expose().to_vec();
    let scp03 = issuer.scp03.clone();
    let ctx = Arc::new(StationCtx::new(
        journal.clone(),
        batch_id,
        recs,
        issuer,
        who(),
    ));
    let opts = RunOptions::default();
    let mut feeder = None;
    let source = match place {
        Where::InProcess => {
            let k = key.clone();
            let sd = scp03.clone();
            let feed = SimFeed::new(Box::new(move |_r: &str| {
                let config = SimConfig {
                    timing,
                    ..SimConfig::default()
                };
                let c = SimCard::blank_provisioned(
                    config,
                    Provision {
                        issuer_key: Some(&k),
                        scp03: sd.as_ref().map(|k| &k.keys),
                    },
                )
                .ok()?;
                Some((Arc::new(Mutex::new(c)), Faults::none()))
            }));
            let slots: Vec<Box<dyn CardSlot>> = (0..readers)
                .map(|i| {
                    Box::new(SimSlot::new(&format!("sim {i:02}"), feed.clone()))
                        as Box<dyn CardSlot>
                })
                .collect();
            Readers::Slots(slots)
        }
        Where::Pcscd => {
            use cardsmith::sim::line_readers::line_reader_name;
            let patterns = (0..readers as u16).map(line_reader_name).collect();
            feeder = Some(ChildFeeder::start(
                data,
                &run_dir.path().join("hopper"),
                readers,
                if timing.is_some() { "typical" } else { "none" },
            ));
            Readers::Pcsc { patterns }
        }
    };
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let s = run::run(ctx, source, Arc::new(Progress::new(false)), opts).expect("run");
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    drop(feeder);
    assert_eq!(s.good as usize, cards, "{s:?}");
    (wall, s.good, cpu)
}

/// The engine's own host CPU per card through pcscd: cards fed into line
/// reader 0 by a child card handler, each connected, personalized,
/// verified and powered down on this thread, whose CPU clock counts only
/// that (not the waits for the card to come and go).
fn engine_pcscd(
    data: &Path,
    recs: &HashMap<String, Record>,
    issuer: &IssuerSide,
    timing: &str,
    cards: usize,
) -> f64 {
    use cardsmith::sim::line_readers::line_reader_name;
    use cardsmith::transport::pcsc::{CardEvent, CardWaiter, ConnectOptions, PcscTransport};
    let hopper = tempfile::tempdir().expect("tempdir");
    let _feeder = ChildFeeder::start(data, hopper.path(), 1, timing);
    let name = line_reader_name(0);
    let mut waiter = CardWaiter::new(&name);
    let today = input::today();
    let iss = issuer.issuer();
    let mut cpu = 0.0;
    let mut n = 0;
    for r in recs.values().take(cards) {
        n += 1;
        let there = waiter
            .wait(CardEvent::Inserted, Duration::from_secs(30))
            .expect("wait for a card");
        assert!(there, "no card in {name} within 30 s");
        let t0 = thread_cpu_seconds();
        let t = PcscTransport::connect_named(&name, ConnectOptions::default()).expect("connect");
        let mut ch = Channel::new(Box::new(t), ExchangeOptions::default());
        let input = input::card_input(r, &issuer.profile, today, &compact_template).expect("input");
        engine::personalize(&mut ch, &iss, &input).expect("perso");
        let rep = engine::verify(&mut ch, &iss, &input).expect("verify");
        assert!(rep.passed);
        ch.release();
        drop(ch);
        cpu += thread_cpu_seconds() - t0;
        let gone = waiter
            .wait(CardEvent::Removed, Duration::from_secs(30))
            .expect("wait for the card to leave");
        assert!(gone, "the card did not leave {name}");
    }
    cpu / n as f64
}

/// Cards in the baselines under the timing model (each takes seconds).
const TIMED_BASELINE_CARDS: usize = 5;

/// The engine's perso + verify in process, one card after another on this
/// thread: (wall, CPU) per card, the simulated card's own work included
/// (it runs inside the transport's transmit, as in the line's in-process
/// readers). Under a timing model the card sleeps for each command as a
/// real card would take; the host's work between those sleeps runs with
/// cold caches, which costs more CPU than the same work back to back, so
/// the line under a timing model is compared with this engine under the
/// same model.
fn engine_in_process(
    recs: &HashMap<String, Record>,
    issuer: &IssuerSide,
    timing: Option<Timing>,
    cards: usize,
) -> (f64, f64) {
    let key = issuer.key.expose().to_vec();
    let today = input::today();
    let iss = issuer.issuer();
    let cpu0 = thread_cpu_seconds();
    let t0 = Instant::now();
    let mut n = 0;
    for r in recs.values().take(cards) {
        n += 1;
        let card = SimCard::blank_provisioned(
            SimConfig {
                timing,
                ..SimConfig::default()
            },
            Provision {
                issuer_key: Some(&key),
                scp03: issuer.scp03.as_ref().map(|k| &k.keys),
            },
        )
        .expect("card");
        let mut ch = Channel::new(
            Box::new(SimTransport::new(card)),
            ExchangeOptions::default(),
        );
        let input = input::card_input(r, &issuer.profile, today, &compact_template).expect("input");
        engine::personalize(&mut ch, &iss, &input).expect("perso");
        let rep = engine::verify(&mut ch, &iss, &input).expect("verify");
        assert!(rep.passed);
    }
    (
        t0.elapsed().as_secs_f64() / n as f64,
        (thread_cpu_seconds() - cpu0) / n as f64,
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pcscd = args.iter().any(|a| a == "--pcscd");
    let per_reader: usize = args
        .iter()
        .position(|a| a == "--cards-per-reader")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let data = tempfile::tempdir().expect("tempdir");
    let _ = side(data.path());

    // Baseline 1: perso + verify straight through the engine, one card
    // after another, no line, no journal: host + simulated card CPU,
    // without and with the timing model.
    let recs = records(data.path(), 20);
    let issuer = side(data.path());
    let (engine_wall, engine_cpu) = engine_in_process(&recs, &issuer, None, usize::MAX);
    let t = Timing::TYPICAL;
    let (_, engine_cpu_t) = engine_in_process(&recs, &issuer, Some(t), TIMED_BASELINE_CARDS);

    // Baseline 2: the engine through pcscd, host only.
    let engine_pc = pcscd.then(|| engine_pcscd(data.path(), &recs, &issuer, "none", usize::MAX));
    let engine_pc_t =
        pcscd.then(|| engine_pcscd(data.path(), &recs, &issuer, "typical", TIMED_BASELINE_CARDS));

    // Baseline 3: the journal's own work per card (lookup, claim, good),
    // synced commits, on this machine's disk.
    let jdir = tempfile::tempdir().expect("tempdir");
    let jrecs: HashMap<String, Record> = recs.clone();
    let (j, bid) = journal_with(jdir.path(), &jrecs);
    let t0 = Instant::now();
    for i in 0..jrecs.len() {
        let serial = format!("{i:016X}");
        let _ = j.card(&serial).expect("card");
        let c = j
            .claim(bid, &who(), &serial)
            .expect("claim")
            .expect("record");
        j.finish(
            c.attempt_id,
            &Finish {
                outcome: Some(Outcome::Good),
                stages: vec![("claimed".into(), 0); 10],
                transcript_sha256: Some("00".repeat(32)),
                ..Finish::default()
            },
        )
        .expect("finish");
        let _ = j.summary(bid).expect("summary");
    }
    let journal_per_card = t0.elapsed().as_secs_f64() / jrecs.len() as f64;

    // The line without a timing model: its CPU per card against the baselines.
    let (wall0, good0, cpu_line) = line_run(data.path(), 1, 20, None, Where::InProcess);
    let line_cpu = cpu_line / good0 as f64;
    let pc0 = pcscd.then(|| {
        let (w, g, c) = line_run(data.path(), 1, 20, None, Where::Pcscd);
        (w / g as f64, c / g as f64)
    });

    println!(
        "# cardsmith line benchmark (release build, {} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!();
    println!("baselines, measured in this run:");
    println!("  engine in process (perso + verify, host and simulated card), no timing model: {:.1} ms wall, {:.2} ms CPU per card", engine_wall * 1e3, engine_cpu * 1e3);
    println!("  engine in process, timing model 'typical' ({TIMED_BASELINE_CARDS} cards): {:.2} ms CPU per card", engine_cpu_t * 1e3);
    if let (Some(e), Some(et)) = (engine_pc, engine_pc_t) {
        println!("  engine through pcscd (connect, perso + verify, power down; host only, the card in its own process), no timing model: {:.2} ms CPU per card", e * 1e3);
        println!("  engine through pcscd, timing model 'typical' ({TIMED_BASELINE_CARDS} cards): {:.2} ms CPU per card", et * 1e3);
    }
    println!("  journal work per card (card lookup, claim, synced good commit, summary): {:.2} ms = {:.3} x the engine's perso + verify", journal_per_card * 1e3, journal_per_card / engine_wall);
    println!();
    println!("the line, 20 cards, no timing model:");
    println!("  1 in-process reader: {:.1} ms wall and {:.2} ms CPU per card = {:.2} x the engine in process", wall0 / good0 as f64 * 1e3, line_cpu * 1e3, line_cpu / engine_cpu);
    if let (Some((w, c)), Some(e)) = (pc0, engine_pc) {
        println!(
            "  1 reader through pcscd: {:.1} ms wall and {:.2} ms CPU per card = {:.2} x the engine through pcscd",
            w * 1e3,
            c * 1e3,
            c / e
        );
    }
    println!();
    println!(
        "timing model 'typical': {} ms per APDU, {} bit/s, {}-byte pages in {} ms, keys in {} ms",
        t.apdu_latency_us / 1000,
        t.baud,
        t.page_bytes,
        t.page_write_us / 1000,
        t.keygen_us / 1000
    );
    let mut rows = Vec::new();
    let places: Vec<(&str, Vec<usize>)> = if pcscd {
        vec![
            ("pcscd + line readers", vec![1, 2, 4, 8, 14]),
            ("in process", vec![1, 2, 4, 8, 16]),
        ]
    } else {
        vec![("in process", vec![1, 2, 4, 8, 16])]
    };
    for (place, ns) in places {
        let mut base = 0.0;
        for n in ns {
            let cards = n * per_reader;
            let (w, baseline) = if place == "in process" {
                (Where::InProcess, engine_cpu_t)
            } else {
                (Where::Pcscd, engine_pc_t.unwrap_or(f64::NAN))
            };
            let (wall, good, cpu) = line_run(data.path(), n, cards, Some(t), w);
            let cph = good as f64 * 3600.0 / wall;
            if n == 1 {
                base = cph;
            }
            let linear = base * n as f64;
            let per_card = cpu / good as f64;
            rows.push(format!(
                "| {place} | {n} | {cards} | {:.1} | {:.2} | {cph:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
                wall,
                wall * n as f64 / good as f64,
                cph / linear,
                per_card * 1e3,
                baseline * 1e3,
                per_card / baseline
            ));
        }
    }
    println!();
    println!("| readers via | readers | cards | wall s | s per card per reader | cards/hour | scaling vs linear | line CPU ms/card | engine CPU ms/card (same timing) | line / engine |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
