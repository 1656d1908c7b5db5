//! Benchmark of batch preparation (not a test): records validated and
//! loaded into the register per second, the time for a million, and the
//! peak memory, for today's whole-file path and the streamed one. Every
//! figure is measured in this run; ratios are against the baseline
//! measured here too. Run with `bash bench/prep.sh`.
//!
//! Each measurement runs in a child process of its own (this program run
//! again with `--phase`), so that each peak RSS (VmHWM) is that path's
//! alone.
//!
//! - baseline: `record::load_records` (the whole file, one thread) and one
//!   `Journal::load_batch` call, on `--baseline` records (default 20,000);
//! - streamed: what `cardsmith line run --batch` does now: one pass for the
//!   file's SHA-256 and line index, then `record::stream_records` (chunks,
//!   every core) into `Journal::load_batch_streamed`, on 100,000 records
//!   and on `--records` (default 1,000,000), into SQLite on disk, and into
//!   PostgreSQL when `CARDSMITH_BENCH_PG` names a server (bench/prep.sh
//!   --pg starts a throwaway one).
//!
//! The batch is made fast: 200 records from `cardsmith sample-records`'
//! generator, repeated with fresh ids (`record::replicate_records`); a copy
//! costs as much to validate as its original (photo, two templates).

use cardsmith::line::station::new_record;
use cardsmith::perso::input;
use cardsmith::perso::input::IsoTemplates;
use cardsmith::perso::samples::sample_lines;
use cardsmith::record::{self, stream::LineIndex, StreamOptions};
use cardsmith::register::journal::{BatchInfo, Journal, LoadChunk, NewRecord, SetAside, Who};
use cardsmith::register::pg::{PgJournal, PgOptions};
use cardsmith::register::pgconf;
use cardsmith::register::sqlite::SqliteJournal;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const V: IsoTemplates = IsoTemplates { max_minutiae: 60 };

fn who() -> Who {
    Who {
        station: "bench".into(),
        operator: "bench".into(),
        reader: None,
    }
}

/// Peak resident set size of this process, in MiB (VmHWM).
fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU time (user + system, every thread) of this process, in seconds.
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 11 and 12 after ")";
    // 100 clock ticks a second on Linux.
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn aside_of(bad: &[record::RecordError]) -> Vec<SetAside> {
    bad.iter()
        .map(|e| SetAside {
            record_id: e.record_id.clone(),
            line: e
                .location
                .rsplit(':')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            reason: format!("{}: {}", e.field, e.rule),
        })
        .collect()
}

fn open_journal(target: &str) -> Box<dyn Journal> {
    match target.strip_prefix("pg:") {
        Some(url) => {
            let t = pgconf::parse(url, false).expect("register URL");
            Box::new(
                PgJournal::open(
                    t,
                    PgOptions {
                        max_connections: 1,
                        ..PgOptions::default()
                    },
                )
                .expect("register"),
            )
        }
        None => Box::new(SqliteJournal::open(Path::new(target)).expect("journal")),
    }
}

/// A child's work: load `file` into `target` by `phase`; prints one line
/// `seconds scan_seconds records set_aside peak_mib cpu_seconds`.
fn child(phase: &str, file: &Path, target: &str) {
    let j = open_journal(target);
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let (info, scan): (BatchInfo, f64) = match phase {
        "old" => {
            let batch = record::load_records(file, &V).expect("load");
            let recs: Vec<NewRecord> = batch
                .good
                .iter()
                .map(|(n, r)| new_record(*n as u64, r))
                .collect();
            let digest = format!("old-{}", file.display());
            let (info, _) = j
                .load_batch(
                    "b",
                    &file.display().to_string(),
                    &digest,
                    &who(),
                    &recs,
                    &aside_of(&batch.bad),
                )
                .expect("load_batch");
            (info, 0.0)
        }
        _ => {
            let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
            let index = LineIndex::build(file, 64, &mut |b| sha.update(b)).expect("scan");
            let digest = cardsmith::hex::compact(sha.finish().as_ref());
            let scan = start.elapsed().as_secs_f64();
            let _ = index.lines();
            let loaded = record::stream_records(
                file,
                &V,
                &StreamOptions::default(),
                &|n, r| new_record(n as u64, &r),
                |chunks| {
                    j.load_batch_streamed(
                        "b",
                        &file.display().to_string(),
                        &digest,
                        &who(),
                        &mut || {
                            Ok(chunks.next().map(|c| {
                                let c = c.expect("read");
                                LoadChunk {
                                    set_aside: aside_of(&c.bad),
                                    records: c.good.into_iter().map(|(_, r)| r).collect(),
                                }
                            }))
                        },
                    )
                },
            )
            .expect("open")
            .expect("load");
            (loaded.0, scan)
        }
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{secs:.3} {scan:.3} {} {} {:.1} {:.3}",
        info.records,
        info.invalid,
        peak_rss_mib(),
        cpu_seconds() - cpu0
    );
}

struct Run {
    secs: f64,
    scan: f64,
    records: u64,
    invalid: u64,
    peak_mib: f64,
    cpu: f64,
}

impl Run {
    fn per_record_us(&self) -> f64 {
        self.secs * 1e6 / self.records.max(1) as f64
    }
    fn cpu_per_record_us(&self) -> f64 {
        self.cpu * 1e6 / self.records.max(1) as f64
    }
    fn rate(&self) -> f64 {
        self.records as f64 / self.secs
    }
}

fn measure(phase: &str, file: &Path, target: &str) -> Run {
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args(["--phase", phase, "--file"])
        .arg(file)
        .args(["--target", target])
        .output()
        .expect("child");
    assert!(
        out.status.success(),
        "{phase} {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let g = |i: usize| f.get(i).copied().unwrap_or(0.0);
    Run {
        secs: g(0),
        scan: g(1),
        records: g(2) as u64,
        invalid: g(3) as u64,
        peak_mib: g(4),
        cpu: g(5),
    }
}

fn make_batch(path: &Path, base: &[String], n: usize) {
    let f = std::fs::File::create(path).expect("batch file");
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    record::replicate_records(base, n, "B-", &mut w).expect("write batch");
    w.flush().expect("flush");
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(phase) = arg(&args, "--phase") {
        let file = PathBuf::from(arg(&args, "--file").expect("--file"));
        let target = arg(&args, "--target").expect("--target");
        child(&phase, &file, &target);
        return;
    }
    if let Some(file) = arg(&args, "--make") {
        // Only write a batch (for profiling a phase by hand).
        let n: usize = arg(&args, "--records")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        make_batch(Path::new(&file), &sample_lines(200, 99, input::today()), n);
        return;
    }
    let n: usize = arg(&args, "--records")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let baseline: usize = arg(&args, "--baseline")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let mid = 100_000.min(n);
    let dir = tempfile::Builder::new()
        .prefix("cardsmith-prep-bench")
        .tempdir_in(arg(&args, "--dir").unwrap_or_else(|| "/tmp".into()))
        .expect("tempdir");
    let pg = std::env::var("CARDSMITH_BENCH_PG").ok();

    let t = Instant::now();
    let base = sample_lines(200, 99, input::today());
    let sizes = [baseline, mid, n];
    let mut files = Vec::new();
    for &k in &sizes {
        let p = dir.path().join(format!("batch-{k}.jsonl"));
        make_batch(&p, &base, k);
        files.push(p);
    }
    let big_bytes = std::fs::metadata(&files[2]).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "made batches of {baseline}, {mid} and {n} records in {:.1} s ({:.2} GB for {n})",
        t.elapsed().as_secs_f64(),
        big_bytes as f64 / 1e9
    );
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "batch preparation: {cores} cores, load average before: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let sq = |name: &str| {
        dir.path()
            .join(format!("{name}.sqlite"))
            .display()
            .to_string()
    };

    let old = measure("old", &files[0], &sq("old"));
    let new_small = measure("new", &files[0], &sq("new-small"));
    let new_mid = measure("new", &files[1], &sq("new-mid"));
    let new_big = measure("new", &files[2], &sq("new-big"));
    let after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average after: {} (other work on the machine stretches wall times, not CPU times)",
        after
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let row = |label: &str, r: &Run| {
        println!(
            "  {label:<34} {:>9} records  {:>8.2} s  {:>9.0} records/s  {:>6.1} µs/record  CPU {:>6.1} µs/record  peak RSS {:>7.1} MiB{}",
            r.records,
            r.secs,
            r.rate(),
            r.per_record_us(),
            r.cpu_per_record_us(),
            r.peak_mib,
            if r.scan > 0.0 {
                format!("  (of which SHA-256 + index pass {:.2} s)", r.scan)
            } else {
                String::new()
            }
        );
        assert_eq!(r.invalid, 0, "{label}: the bench batch has no bad record");
    };
    println!("SQLite on disk:");
    row("baseline (load_records+load_batch)", &old);
    row("streamed, same batch", &new_small);
    row("streamed", &new_mid);
    row("streamed", &new_big);
    let million = new_big.per_record_us();
    println!(
        "  a million records: {:.1} s streamed, {:.1} s by the baseline (per-record time × 10^6); CPU {:.1} s streamed ({:.1} s on {cores} free cores), {:.1} s baseline",
        million,
        old.per_record_us(),
        new_big.cpu_per_record_us(),
        new_big.cpu_per_record_us() / cores as f64,
        old.cpu_per_record_us()
    );
    println!(
        "  ratio streamed/baseline per record: {:.3} at {} records, {:.3} at {n}",
        new_small.per_record_us() / old.per_record_us(),
        baseline,
        million / old.per_record_us()
    );
    println!(
        "  peak RSS: baseline {:.0} MiB for {baseline}; streamed {:.0} MiB for {mid}, {:.0} MiB for {n} (×{:.2} for ×{:.0} records)",
        old.peak_mib,
        new_mid.peak_mib,
        new_big.peak_mib,
        new_big.peak_mib / new_mid.peak_mib.max(1.0),
        n as f64 / mid as f64
    );

    if let Some(admin) = pg {
        let t = pgconf::parse(&admin, false).expect("CARDSMITH_BENCH_PG");
        let mut c = cardsmith::register::pg::connect(&t).expect("connect");
        let base_url = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin.clone());
        let mut db = |name: &str| -> String {
            c.batch_execute(&format!("CREATE DATABASE {name}"))
                .expect("create database");
            let url = format!("{base_url}/{name}");
            let t = pgconf::parse(&url, false).expect("url");
            let mut d = cardsmith::register::pg::connect(&t).expect("connect");
            cardsmith::register::pgschema::migrate(&mut d, name).expect("migrate");
            format!("pg:{url}")
        };
        let pg_old = measure("old", &files[0], &db("prep_old"));
        let pg_mid = measure("new", &files[1], &db("prep_mid"));
        let pg_big = measure("new", &files[2], &db("prep_big"));
        println!("PostgreSQL (throwaway cluster, fsync on):");
        row("baseline (load_records+load_batch)", &pg_old);
        row("streamed", &pg_mid);
        row("streamed", &pg_big);
        println!(
            "  a million records: {:.1} s streamed; ratio streamed/baseline per record {:.3}; peak RSS {:.0} MiB for {mid}, {:.0} MiB for {n}",
            pg_big.per_record_us(),
            pg_big.per_record_us() / pg_old.per_record_us(),
            pg_mid.peak_mib,
            pg_big.peak_mib
        );
    }
}
