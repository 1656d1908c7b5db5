//! Benchmark of the personalization line (not a test): cards per hour with
//! 1, 2, 4, 8 and 16 readers under the card timing model, the scaling
//! against linear, the host CPU per card, and the journal's overhead per
//! card. Every figure is measured in this run; ratios are against the
//! baselines measured here too. Run with `bash bench/line.sh`.

use cardsmith::line::progress::Progress;
use cardsmith::line::run::{self, Readers, RunOptions};
use cardsmith::line::slot::{CardSlot, SimFeed, SimSlot};
use cardsmith::line::station::StationCtx;
use cardsmith::perso::cli::{compact_template, CardArgs, IsoTemplates, IssuerSide};
use cardsmith::perso::{engine, input};
use cardsmith::record::{self, Record};
use cardsmith::register::journal::{Finish, Journal, NewRecord, Outcome, Who};
use cardsmith::register::sqlite::SqliteJournal;
use cardsmith::sim::faults::Faults;
use cardsmith::sim::feeder::{FeedOptions, Feeder};
use cardsmith::sim::timing::Timing;
use cardsmith::sim::{Provision, SimCard, SimConfig};
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{Channel, ExchangeOptions};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Process CPU time (user + system) from /proc/self/stat, in seconds.
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat are utime and stime; after the ")" they are
    // at 11 and 12 (0-based). Clock ticks are 100 per second on Linux.
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
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
    let lines = cardsmith::perso::cli::sample_lines(n, 99, input::today());
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
    let mut ctx = StationCtx::new(journal.clone(), batch_id, recs, issuer, who());
    ctx.poll = Duration::from_millis(20);
    let ctx = Arc::new(ctx);
    let opts = RunOptions {
        wait_slice: Duration::from_millis(100),
        tick: Duration::from_millis(50),
        ..RunOptions::default()
    };
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
            use cardsmith::sim::line_readers::{line_reader_addr, line_reader_name};
            let rs: Vec<(String, std::net::SocketAddr)> = (0..readers as u16)
                .map(|i| (line_reader_name(i), line_reader_addr(i)))
                .collect();
            let patterns = rs.iter().map(|r| r.0.clone()).collect();
            feeder = Some(
                Feeder::start(FeedOptions {
                    readers: rs,
                    out_dir: run_dir.path().join("hopper"),
                    count: None,
                    config: SimConfig::default(),
                    timing,
                    issuer_key: Some(key),
                    scp03: scp03.map(|k| k.keys),
                    handling: Duration::from_millis(100),
                })
                .expect("feeder"),
            );
            Readers::Pcsc { patterns }
        }
    };
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let s = run::run(ctx, source, Arc::new(Progress::new(false)), opts).expect("run");
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    if let Some(f) = feeder {
        f.stop();
    }
    assert_eq!(s.good as usize, cards, "{s:?}");
    (wall, s.good, cpu)
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

    // Baseline 1: perso + verify of one card straight through the engine,
    // no line, no journal, no timing model: host + simulated card CPU.
    let recs = records(data.path(), 20);
    let issuer = side(data.path());
    let key = issuer.key.expose().to_vec();
    let today = input::today();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    for r in recs.values() {
        let card = SimCard::blank_provisioned(
            SimConfig::default(),
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
        engine::personalize(&mut ch, &issuer.issuer(), &input).expect("perso");
        let rep = engine::verify(&mut ch, &issuer.issuer(), &input).expect("verify");
        assert!(rep.passed);
    }
    let engine_wall = t0.elapsed().as_secs_f64() / recs.len() as f64;
    let engine_cpu = (cpu_seconds() - cpu0) / recs.len() as f64;

    // Baseline 2: the journal's own work per card (lookup, claim, good),
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

    // The line without a timing model: its CPU per card against baseline 1.
    let (wall0, good0, cpu_line) = line_run(data.path(), 1, 20, None, Where::InProcess);
    let line_cpu = cpu_line / good0 as f64;

    println!(
        "# cardsmith line benchmark (release build, {} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!();
    println!("baselines, measured in this run:");
    println!("  perso + verify through the engine, in process, no timing model: {:.1} ms wall, {:.1} ms CPU per card (host and simulated card)", engine_wall * 1e3, engine_cpu * 1e3);
    println!("  journal work per card (card lookup, claim, synced good commit, summary): {:.2} ms = {:.3} x the engine's perso + verify", journal_per_card * 1e3, journal_per_card / engine_wall);
    println!("  line, 1 in-process reader, no timing model, 20 cards: {:.1} ms wall and {:.1} ms CPU per card = {:.2} x the engine's CPU per card", wall0 / good0 as f64 * 1e3, line_cpu * 1e3, line_cpu / engine_cpu);
    println!();
    let t = Timing::TYPICAL;
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
            let w = if place == "in process" {
                Where::InProcess
            } else {
                Where::Pcscd
            };
            let (wall, good, cpu) = line_run(data.path(), n, cards, Some(t), w);
            let cph = good as f64 * 3600.0 / wall;
            if n == 1 {
                base = cph;
            }
            let linear = base * n as f64;
            rows.push(format!(
                "| {place} | {n} | {cards} | {:.1} | {:.2} | {cph:.0} | {:.2} | {:.1} |",
                wall,
                wall * n as f64 / good as f64,
                cph / linear,
                cpu / good as f64 * 1e3
            ));
        }
    }
    println!();
    println!("| readers via | readers | cards | wall s | s per card per reader | cards/hour | scaling vs linear | CPU ms/card |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
