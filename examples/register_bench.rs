//! Benchmark of the shared register (not a test): 1, 2, 4 and 8 line
//! stations of 8 in-process readers each, all on one PostgreSQL, under the
//! card timing model — cards per hour and scaling against linear; the
//! journal's own time per card on PostgreSQL against SQLite; claim latency
//! p50 and p99 with every reader of 8 stations claiming at once, against
//! one claimer alone. Every ratio is against a baseline of the same run.
//! Run with `bash bench/register.sh` (it starts a durable throwaway
//! PostgreSQL cluster and passes its URL in CARDSMITH_BENCH_PG).

use cardsmith::cli::perso::{CardArgs, SideFromArgs};
use cardsmith::line::progress::Progress;
use cardsmith::line::run::{self, Readers, RunOptions};
use cardsmith::line::slot::{CardSlot, SimFeed, SimSlot};
use cardsmith::line::station::StationCtx;
use cardsmith::perso::input;
use cardsmith::perso::input::IsoTemplates;
use cardsmith::perso::side::IssuerSide;
use cardsmith::record::{self, Record};
use cardsmith::register::journal::{Finish, Journal, NewRecord, Outcome, Who};
use cardsmith::register::pg::{PgJournal, PgOptions};
use cardsmith::register::pgconf;
use cardsmith::register::sqlite::SqliteJournal;
use cardsmith::sim::faults::Faults;
use cardsmith::sim::timing::Timing;
use cardsmith::sim::{Provision, SimCard, SimConfig};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const READERS_PER_STATION: usize = 8;

fn who(station: &str) -> Who {
    Who {
        station: station.into(),
        operator: "bench".into(),
        reader: None,
    }
}

fn pg(url: &str, station: &str, conns: usize) -> Arc<PgJournal> {
    let mut t = pgconf::parse(url, false).expect("CARDSMITH_BENCH_PG");
    t.config.application_name(&format!("cardsmith {station}"));
    Arc::new(
        PgJournal::open(
            t,
            PgOptions {
                max_connections: conns,
                ..PgOptions::default()
            },
        )
        .expect("register"),
    )
}

fn records(dir: &Path, n: usize, seed: u64) -> HashMap<String, Record> {
    let path = dir.join("batch.jsonl");
    let mut lines = cardsmith::perso::samples::sample_lines(n, 7, input::today());
    // Distinct record ids per run: one register holds every run's batch.
    for l in lines.iter_mut() {
        *l = l.replacen(
            "\"record_id\":\"R-",
            &format!("\"record_id\":\"B{seed}-R-"),
            1,
        );
    }
    std::fs::write(&path, lines.join("\n") + "\n").expect("batch");
    let b = record::load_records(&path, &IsoTemplates { max_minutiae: 60 }).expect("load");
    b.good
        .into_iter()
        .map(|(_, r)| (r.record_id().to_string(), r))
        .collect()
}

fn load(j: &dyn Journal, ids: &[String], digest: &str) -> i64 {
    let queued: Vec<NewRecord> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| NewRecord {
            record_id: id.clone(),
            line: i as u64 + 1,
            request: None,
        })
        .collect();
    j.load_batch("bench", "bench.jsonl", digest, &who("loader"), &queued, &[])
        .expect("load")
        .0
        .id
}

fn good() -> Finish {
    Finish {
        outcome: Some(Outcome::Good),
        stages: vec![("claimed".into(), 0); 10],
        transcript_sha256: Some("00".repeat(32)),
        ..Finish::default()
    }
}

/// The journal's work for one card, as a station does it: card lookup,
/// claim, synced good commit, summary. Seconds per card.
fn journal_per_card(j: &dyn Journal, tag: &str, n: usize) -> f64 {
    let ids: Vec<String> = (0..n).map(|i| format!("{tag}-{i:06}")).collect();
    let b = load(j, &ids, tag);
    let w = who(tag).at_reader("r");
    let t0 = Instant::now();
    for i in 0..n {
        let serial = format!("{tag}-CARD-{i:06}");
        let _ = j.card(&serial).expect("card");
        let c = j.claim(b, &w, &serial).expect("claim").expect("record");
        j.finish(c.attempt_id, &good()).expect("finish");
        let _ = j.summary(b).expect("summary");
    }
    t0.elapsed().as_secs_f64() / n as f64
}

/// Claim latencies (seconds) of `threads` claimers drawing one batch dry.
fn claim_latencies(url: &str, tag: &str, threads: usize, per_thread: usize) -> Vec<f64> {
    let loader = pg(url, "loader", 1);
    let ids: Vec<String> = (0..threads * per_thread)
        .map(|i| format!("{tag}-{i:06}"))
        .collect();
    let b = load(loader.as_ref(), &ids, tag);
    // One register connection per reader, as 8 stations of 8 readers.
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let url = url.to_string();
            let tag = tag.to_string();
            std::thread::spawn(move || {
                let station = format!("{tag}-station-{}", t / READERS_PER_STATION);
                let j = pg(&url, &station, 1);
                let w = who(&station).at_reader(&format!("r{t}"));
                let mut lat = vec![];
                for i in 0.. {
                    let serial = format!("{tag}-{t}-{i}");
                    let t0 = Instant::now();
                    let Some(c) = j.claim(b, &w, &serial).expect("claim") else {
                        break;
                    };
                    lat.push(t0.elapsed().as_secs_f64());
                    j.finish(c.attempt_id, &good()).expect("finish");
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<f64> = hs
        .into_iter()
        .flat_map(|h| h.join().expect("claimer"))
        .collect();
    all.sort_by(|a, b| a.total_cmp(b));
    all
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// `stations` stations of 8 in-process readers on one batch; wall seconds.
fn stations_run(
    url: &str,
    data: &Path,
    stations: usize,
    per_reader: usize,
    timing: Timing,
) -> (f64, u64) {
    let run_dir = tempfile::tempdir().expect("tempdir");
    let cards = stations * READERS_PER_STATION * per_reader;
    let tag = format!("{stations}{}", std::process::id() % 10_000);
    let recs = records(run_dir.path(), cards, tag.parse().unwrap_or(0));
    let mut ids: Vec<String> = recs.keys().cloned().collect();
    ids.sort();
    let loader = pg(url, "loader", 1);
    let batch = load(loader.as_ref(), &ids, &format!("stations-{tag}"));
    let t0 = Instant::now();
    let hs: Vec<_> = (0..stations)
        .map(|s| {
            let issuer = IssuerSide::load(&CardArgs {
                data_dir: Some(data.to_path_buf()),
                ..CardArgs::default()
            })
            .expect("issuer");
            let (url, recs) = (url.to_string(), recs.clone());
            std::thread::spawn(move || {
                let name = format!("station-{s}");
                let key = issuer.key.expose().to_vec();
                let scp03 = issuer.scp03.clone();
                let j = pg(&url, &name, 4);
                let mut ctx = StationCtx::new(j, batch, recs, issuer, who(&name));
                ctx.poll = Duration::from_millis(20);
                let feed = SimFeed::new(Box::new(move |_r: &str| {
                    let c = SimCard::blank_provisioned(
                        SimConfig {
                            timing: Some(timing),
                            ..SimConfig::default()
                        },
                        Provision {
                            issuer_key: Some(&key),
                            scp03: scp03.as_ref().map(|k| &k.keys),
                        },
                    )
                    .ok()?;
                    Some((Arc::new(Mutex::new(c)), Faults::none()))
                }));
                let slots: Vec<Box<dyn CardSlot>> = (0..READERS_PER_STATION)
                    .map(|i| {
                        Box::new(SimSlot::new(&format!("{name} sim {i:02}"), feed.clone()))
                            as Box<dyn CardSlot>
                    })
                    .collect();
                let opts = RunOptions {
                    wait_slice: Duration::from_millis(100),
                    tick: Duration::from_millis(50),
                    ..RunOptions::default()
                };
                run::run(
                    Arc::new(ctx),
                    Readers::Slots(slots),
                    Arc::new(Progress::new(false)),
                    opts,
                )
                .expect("run")
            })
        })
        .collect();
    for h in hs {
        h.join().expect("station");
    }
    let wall = t0.elapsed().as_secs_f64();
    let s = loader.summary(batch).expect("summary");
    assert_eq!(s.good as usize, cards, "{s:?}");
    (wall, s.good)
}

fn main() {
    let url = std::env::var("CARDSMITH_BENCH_PG")
        .expect("CARDSMITH_BENCH_PG: run through bash bench/register.sh");
    let args: Vec<String> = std::env::args().collect();
    let per_reader: usize = args
        .iter()
        .position(|a| a == "--cards-per-reader")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    {
        let t = pgconf::parse(&url, false).expect("url");
        let mut c = cardsmith::register::pg::connect(&t).expect("connect");
        cardsmith::register::pgschema::migrate(&mut c, &t.display).expect("migrate");
    }
    let data = tempfile::tempdir().expect("tempdir");
    let _ = IssuerSide::load(&CardArgs {
        data_dir: Some(data.path().to_path_buf()),
        ..CardArgs::default()
    })
    .expect("issuer");

    let sq_dir = tempfile::tempdir().expect("tempdir");
    let sq = SqliteJournal::open(&sq_dir.path().join("journal.sqlite")).expect("sqlite");
    let sqlite_card = journal_per_card(&sq, "sq", 300);
    let pg_card = journal_per_card(pg(&url, "single", 1).as_ref(), "pgj", 300);

    let alone = claim_latencies(&url, "alone", 1, 300);
    let crowd = claim_latencies(&url, "crowd", 8 * READERS_PER_STATION, 10);

    println!(
        "# cardsmith register benchmark (release build, {} cores, PostgreSQL with fsync on)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!();
    println!(
        "journal work per card (card lookup, claim, durable good commit, summary), one station:"
    );
    println!("  SQLite (baseline): {:.2} ms", sqlite_card * 1e3);
    println!(
        "  PostgreSQL:        {:.2} ms = {:.2} x SQLite",
        pg_card * 1e3,
        pg_card / sqlite_card
    );
    println!();
    println!("claim latency (claim only; each claimer also commits its good attempt):");
    println!(
        "  1 claimer alone (baseline): p50 {:.2} ms, p99 {:.2} ms ({} claims)",
        pct(&alone, 0.5) * 1e3,
        pct(&alone, 0.99) * 1e3,
        alone.len()
    );
    println!(
        "  {} claimers (8 stations x {} readers) at once: p50 {:.2} ms = {:.1} x, p99 {:.2} ms = {:.1} x ({} claims)",
        8 * READERS_PER_STATION,
        READERS_PER_STATION,
        pct(&crowd, 0.5) * 1e3,
        pct(&crowd, 0.5) / pct(&alone, 0.5).max(1e-9),
        pct(&crowd, 0.99) * 1e3,
        pct(&crowd, 0.99) / pct(&alone, 0.99).max(1e-9),
        crowd.len()
    );
    println!();
    let t = Timing::TYPICAL;
    println!(
        "stations of {READERS_PER_STATION} in-process readers on one register, timing model 'typical' ({} ms per APDU, keys in {} ms), {per_reader} cards per reader:",
        t.apdu_latency_us / 1000,
        t.keygen_us / 1000
    );
    println!();
    println!("| stations | readers | cards | wall s | cards/hour | scaling vs linear |");
    println!("|---|---|---|---|---|---|");
    let mut base = 0.0;
    for n in [1usize, 2, 4, 8] {
        let (wall, good) = stations_run(&url, data.path(), n, per_reader, t);
        let cph = good as f64 * 3600.0 / wall;
        if n == 1 {
            base = cph;
        }
        println!(
            "| {n} | {} | {good} | {wall:.1} | {cph:.0} | {:.2} |",
            n * READERS_PER_STATION,
            cph / (base * n as f64)
        );
    }
}
