//! Streamed batch loading: a batch file read in chunks and validated in
//! parallel gives exactly what the whole-file reader gives (records,
//! errors with line, field and rule, warnings), a record is found again by
//! its line, and the streamed register load keeps the one-transaction
//! semantics of `load_batch` — the same contents, nothing of a load cut
//! short, and a file loaded once however often it is loaded — on SQLite
//! and on PostgreSQL.

mod pg_support;

use cardsmith::perso::input::IsoTemplates;
use cardsmith::perso::samples::{synthetic_capture, ENROLMENT_CAPTURE};
use cardsmith::record::stream::LineIndex;
use cardsmith::record::{self, JalaliDate, Record, RecordError, StreamOptions};
use cardsmith::register::journal::*;
use cardsmith::register::pg::{PgJournal, PgOptions};
use cardsmith::register::pgconf;
use cardsmith::register::sqlite::SqliteJournal;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const V: IsoTemplates = IsoTemplates { max_minutiae: 60 };

fn base(n: usize) -> Vec<String> {
    let date = JalaliDate::parse("1403/05/10").expect("date");
    record::sample_records(n, 11, date, &mut |p, pos| {
        synthetic_capture(p, pos, ENROLMENT_CAPTURE ^ p)
    })
}

fn replicated(n: usize, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    record::replicate_records(&base(6), n, prefix, &mut out).expect("replicate");
    String::from_utf8(out)
        .expect("utf8")
        .lines()
        .map(str::to_string)
        .collect()
}

/// A batch of `n` good lines, with refused and odd lines put in at the
/// given 1-based lines (the good lines move down). Returns the file's
/// bytes.
fn batch_bytes(n: usize, prefix: &str) -> (Vec<u8>, Vec<(usize, &'static str)>) {
    let mut lines: Vec<Vec<u8>> = replicated(n, prefix)
        .into_iter()
        .map(String::into_bytes)
        .collect();
    let wrong_sex = String::from_utf8(lines[4].clone())
        .expect("utf8")
        .replace("\"sex\":\"M\"", "\"sex\":\"X\"")
        .replace("\"sex\":\"F\"", "\"sex\":\"X\"");
    let dup_id = lines[2].clone();
    // Same national ID as line 2, another record_id.
    let dup_nid = String::from_utf8(lines[1].clone())
        .expect("utf8")
        .replace(&format!("{prefix}00000002"), &format!("{prefix}99999999"));
    let odd: Vec<(usize, Vec<u8>, &'static str)> = vec![
        (5, wrong_sex.into_bytes(), "sex"),
        (9, b"{\"record_id\": \"broken".to_vec(), "json"),
        (10, Vec::new(), "blank"),
        (13, b"\xff\xfe not text".to_vec(), "utf8"),
        (17, dup_id, "duplicate record_id"),
        (21, dup_nid.into_bytes(), "duplicate national_id"),
        (22, b"   \t".to_vec(), "blank"),
    ];
    let mut kinds = Vec::new();
    for (at, line, kind) in odd {
        lines.insert(at - 1, line);
        kinds.push((at, kind));
    }
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    for (i, l) in lines.iter().enumerate() {
        bytes.extend_from_slice(l);
        // Some CRLF line ends, and no line end after the last line.
        if i + 1 < lines.len() {
            bytes.extend_from_slice(if i % 5 == 3 { b"\r\n" } else { b"\n" });
        }
    }
    (bytes, kinds)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).expect("create");
    f.write_all(bytes).expect("write");
    p
}

type Streamed = (Vec<(usize, Record)>, Vec<RecordError>, Vec<RecordError>);

fn stream_all(path: &Path, opts: &StreamOptions) -> Streamed {
    record::stream_records(path, &V, opts, &|_, r| r, |chunks| {
        let mut all: Streamed = (vec![], vec![], vec![]);
        let mut last_line = 0;
        for c in chunks {
            let c = c.expect("read");
            // Chunks come in line order: each after the one before.
            let lines: Vec<usize> = c
                .good
                .iter()
                .map(|(n, _)| *n)
                .chain(c.bad.iter().map(|e| line_of(&e.location)))
                .collect();
            if let (Some(lo), Some(hi)) = (lines.iter().min(), lines.iter().max()) {
                assert!(
                    *lo > last_line,
                    "chunk starting at {lo} after line {last_line}"
                );
                last_line = *hi;
            }
            all.0.extend(c.good);
            all.1.extend(c.bad);
            all.2.extend(c.warnings);
        }
        all
    })
    .expect("open")
}

fn line_of(location: &str) -> usize {
    location
        .rsplit(':')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn opts(chunk_lines: usize, workers: usize) -> StreamOptions {
    StreamOptions {
        chunk_lines,
        chunk_bytes: 1 << 30,
        workers,
    }
}

#[test]
fn streamed_validation_gives_what_the_whole_file_reader_gives() {
    let d = tempfile::tempdir().expect("tempdir");
    let (bytes, _) = batch_bytes(40, "S-");
    let path = write(d.path(), "batch.jsonl", &bytes);
    let whole = record::load_records(&path, &V).expect("load");
    assert_eq!(whole.good.len(), 40);
    assert!(!whole.bad.is_empty());
    for (chunk, workers) in [(1, 1), (3, 2), (7, 3), (16, 2), (1000, 2)] {
        let (good, bad, warnings) = stream_all(&path, &opts(chunk, workers));
        assert_eq!(good, whole.good, "chunk {chunk}, workers {workers}");
        assert_eq!(bad, whole.bad, "chunk {chunk}, workers {workers}");
        assert_eq!(warnings, whole.warnings, "chunk {chunk}, workers {workers}");
    }
    // A chunk that ends on its bytes, not its lines.
    let small_bytes = StreamOptions {
        chunk_lines: 1000,
        chunk_bytes: 1,
        workers: 2,
    };
    let (good, bad, _) = stream_all(&path, &small_bytes);
    assert_eq!(good, whole.good);
    assert_eq!(bad, whole.bad);
}

#[test]
fn one_pretty_printed_record_is_one_record_as_before() {
    let d = tempfile::tempdir().expect("tempdir");
    let line = &replicated(1, "P-")[0];
    let v: serde_json::Value = serde_json::from_str(line).expect("json");
    let pretty = serde_json::to_string_pretty(&v).expect("pretty");
    let path = write(d.path(), "one.json", pretty.as_bytes());
    let whole = record::load_records(&path, &V).expect("load");
    assert_eq!(whole.good.len(), 1);
    let (good, bad, _) = stream_all(&path, &opts(2, 2));
    assert_eq!(good, whole.good);
    assert_eq!(bad, whole.bad);
    let index = LineIndex::build(&path, 4, &mut |_| {}).expect("index");
    let r = index.record(1, &V).expect("record");
    assert_eq!(&r, &whole.good[0].1);
}

#[test]
fn a_bad_record_in_the_middle_of_a_large_file_is_reported_with_its_line() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut lines = replicated(600, "M-");
    lines[300] = lines[300]
        .replace("\"sex\":\"M\"", "\"sex\":\"Q\"")
        .replace("\"sex\":\"F\"", "\"sex\":\"Q\"");
    let path = write(d.path(), "big.jsonl", (lines.join("\n") + "\n").as_bytes());
    let (good, bad, _) = stream_all(&path, &opts(16, 2));
    assert_eq!(good.len(), 599);
    assert_eq!(bad.len(), 1);
    let e = &bad[0];
    assert_eq!(e.location, format!("{}:301", path.display()));
    assert_eq!(e.record_id.as_deref(), Some("M-00000301"));
    assert_eq!(e.field, "sex");
    assert_eq!(e.rule, "is \"Q\"; expected \"M\" or \"F\"");
    assert_eq!(
        e.to_string(),
        format!(
            "{}:301 (record M-00000301): sex: is \"Q\"; expected \"M\" or \"F\"",
            path.display()
        )
    );
    // The same as the whole-file reader says.
    assert_eq!(bad, record::load_records(&path, &V).expect("load").bad);
}

#[test]
fn records_are_found_again_by_their_line() {
    let d = tempfile::tempdir().expect("tempdir");
    let (bytes, _) = batch_bytes(30, "L-");
    let path = write(d.path(), "batch.jsonl", &bytes);
    let whole = record::load_records(&path, &V).expect("load");
    for every in [1, 3, 4, 64] {
        let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
        let index = LineIndex::build(&path, every, &mut |b| sha.update(b)).expect("index");
        assert_eq!(index.lines(), 37);
        for (n, r) in &whole.good {
            assert_eq!(
                &index.record(*n as u64, &V).expect("record"),
                r,
                "line {n}, every {every}"
            );
        }
        let refused = index.record(5, &V).expect_err("line 5 is refused");
        assert!(
            refused.contains(":5 (record L-00000005): sex: is \"X\""),
            "{refused}"
        );
        assert!(index.record(0, &V).is_err());
        assert!(index
            .record(38, &V)
            .expect_err("past the end")
            .contains("has 37 lines"));
        assert_eq!(
            sha.finish().as_ref(),
            ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref(),
            "the index pass hashes the whole file"
        );
    }
}

// --- The register ---------------------------------------------------------

fn who() -> Who {
    Who {
        station: "s1".into(),
        operator: "loader".into(),
        reader: None,
    }
}

fn new_record(n: usize, r: &Record) -> NewRecord {
    cardsmith::line::station::new_record(n as u64, r)
}

/// [`new_record`] as the stream's map (on the validating threads).
fn queued(n: usize, r: Record) -> NewRecord {
    new_record(n, &r)
}

/// One set-aside entry per error, reason = field: rule (the test's own
/// grouping; the line's grouping is exercised through the CLI).
fn aside_of(bad: &[RecordError]) -> Vec<SetAside> {
    bad.iter()
        .map(|e| SetAside {
            record_id: e.record_id.clone(),
            line: line_of(&e.location) as u64,
            reason: format!("{}: {}", e.field, e.rule),
        })
        .collect()
}

/// Load `path` streamed in chunks of `chunk` lines.
fn load_streamed(
    j: &dyn Journal,
    path: &Path,
    digest: &str,
    chunk: usize,
    pulled: &mut usize,
) -> Result<(BatchInfo, Vec<SetAside>)> {
    record::stream_records(path, &V, &opts(chunk, 2), &queued, |chunks| {
        j.load_batch_streamed(
            "b",
            &path.display().to_string(),
            digest,
            &who(),
            &mut || {
                *pulled += 1;
                Ok(chunks.next().map(|c| {
                    let c = c.expect("read");
                    LoadChunk {
                        set_aside: aside_of(&c.bad),
                        records: c.good.into_iter().map(|(_, r)| r).collect(),
                    }
                }))
            },
        )
    })
    .expect("open")
}

/// Load `path` the old way: the whole file, then `load_batch`.
fn load_whole(j: &dyn Journal, path: &Path, digest: &str) -> (BatchInfo, Vec<SetAside>) {
    let whole = record::load_records(path, &V).expect("load");
    let recs: Vec<NewRecord> = whole.good.iter().map(|(n, r)| new_record(*n, r)).collect();
    j.load_batch(
        "b",
        &path.display().to_string(),
        digest,
        &who(),
        &recs,
        &aside_of(&whole.bad),
    )
    .expect("load_batch")
}

/// What the register holds of a batch, without times and the batch's id
/// (which each database numbers its own way).
fn contents(j: &dyn Journal, b: &BatchInfo) -> (Vec<RecordRow>, Vec<SetAside>, u64, u64, Summary) {
    (
        j.records(b.id)
            .expect("records")
            .into_iter()
            .map(|r| RecordRow { batch_id: 0, ..r })
            .collect(),
        j.set_aside(b.id).expect("set aside"),
        b.records,
        b.invalid,
        j.summary(b.id).expect("summary"),
    )
}

/// Every scenario against two fresh journals of one backend.
fn scenarios(open: &mut dyn FnMut() -> Box<dyn Journal>) {
    let d = tempfile::tempdir().expect("tempdir");
    let (bytes, _) = batch_bytes(60, "J-");
    let path = write(d.path(), "batch.jsonl", &bytes);
    let digest = "digest-of-batch";

    // The streamed load of a multi-chunk file holds what the old load holds.
    let old = open();
    let new = open();
    let (b_old, aside_old) = load_whole(old.as_ref(), &path, digest);
    let mut pulled = 0;
    let (b_new, aside_new) =
        load_streamed(new.as_ref(), &path, digest, 4, &mut pulled).expect("load");
    assert!(pulled > 10, "many chunks ({pulled})");
    assert_eq!(aside_new, aside_old);
    assert_eq!(
        contents(new.as_ref(), &b_new),
        contents(old.as_ref(), &b_old)
    );
    assert_eq!(b_new.records, 60);
    // Five refused lines, one (a copy of line 3) with two errors.
    assert_eq!(b_new.invalid, 6);
    assert_eq!(
        new.set_aside(b_new.id)
            .expect("aside")
            .iter()
            .filter(|a| a.line == 9)
            .count(),
        1
    );

    // Loading the same file again is the same batch, and takes no chunk.
    let mut pulled = 0;
    let (again, aside) =
        load_streamed(new.as_ref(), &path, digest, 4, &mut pulled).expect("reload");
    assert_eq!(again, b_new);
    assert!(aside.is_empty());
    assert_eq!(pulled, 0);
    assert_eq!(
        contents(new.as_ref(), &again),
        contents(old.as_ref(), &b_old)
    );

    // Another file with two records of the first: those are set aside.
    let fresh = replicated(5, "K-");
    let first = replicated(2, "J-");
    let mixed = write(
        d.path(),
        "mixed.jsonl",
        format!(
            "{}\n{}\n{}\n{}\n{}\n",
            fresh[2], fresh[3], fresh[4], first[0], first[1]
        )
        .as_bytes(),
    );
    let mut pulled = 0;
    let (b_mixed, aside) =
        load_streamed(new.as_ref(), &mixed, "digest-of-mixed", 2, &mut pulled).expect("load");
    assert_eq!(b_mixed.records, 3);
    let expect: Vec<(u64, String)> = vec![
        (
            4,
            format!("record_id J-00000001 is already in batch {}", b_new.id),
        ),
        (
            5,
            format!("record_id J-00000002 is already in batch {}", b_new.id),
        ),
    ];
    let got: Vec<(u64, String)> = aside.iter().map(|a| (a.line, a.reason.clone())).collect();
    assert_eq!(got, expect);

    // A load that fails midway leaves nothing; the file loads afterwards.
    let cut = open();
    let mut calls = 0;
    let failed = record::stream_records(&path, &V, &opts(5, 2), &queued, |chunks| {
        cut.load_batch_streamed("b", "/b", digest, &who(), &mut || {
            calls += 1;
            if calls == 4 {
                return Err(JournalError::Refused("the file went away".into()));
            }
            Ok(chunks.next().map(|c| {
                let c = c.expect("read");
                LoadChunk {
                    set_aside: aside_of(&c.bad),
                    records: c.good.into_iter().map(|(_, r)| r).collect(),
                }
            }))
        })
    })
    .expect("open");
    assert!(matches!(failed, Err(JournalError::Refused(ref m)) if m == "the file went away"));
    assert_eq!(cut.batch(None).expect("batch"), None);
    assert_eq!(cut.record("J-00000001").expect("record"), None);
    let mut pulled = 0;
    let (b_cut, _) = load_streamed(cut.as_ref(), &path, digest, 5, &mut pulled).expect("load");
    assert_eq!(
        contents(cut.as_ref(), &b_cut),
        contents(old.as_ref(), &b_old)
    );
    assert!(cut.audit().expect("audit").intact);
    assert!(new.audit().expect("audit").intact);
}

#[test]
fn streamed_loads_on_sqlite() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    scenarios(&mut || {
        n += 1;
        Box::new(SqliteJournal::open(&d.path().join(format!("j{n}.sqlite"))).expect("open"))
    });
}

#[test]
fn streamed_loads_on_postgresql() {
    let c = pg_support::Cluster::start();
    let mut n = 0;
    scenarios(&mut || {
        n += 1;
        let url = c.register(&format!("register{n}"));
        let t = pgconf::parse(&url, false).expect("url");
        Box::new(
            PgJournal::open(
                t,
                PgOptions {
                    lease: Duration::from_secs(30),
                    retry_for: Duration::from_secs(30),
                    max_connections: 2,
                },
            )
            .expect("open"),
        )
    });
}

/// `cardsmith line run` killed (SIGKILL) at several moments while it loads
/// a batch: whatever the moment, the journal holds either no batch and no
/// record, or the whole batch; loading the file again then gives the whole
/// batch, once. (The moments only pick which of the two is found.)
#[test]
fn a_line_killed_while_loading_leaves_all_of_the_batch_or_none() {
    let n = 3000;
    for wait_ms in [250u64, 1000, 4000, 12000] {
        let data = tempfile::tempdir().expect("tempdir");
        let batch = write(
            data.path(),
            "batch.jsonl",
            (replicated(n, "X-").join("\n") + "\n").as_bytes(),
        );
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cardsmith"))
            .args(["line", "run"])
            .arg(&batch)
            .args(["--sim-readers", "1", "--timing", "none", "--plain"])
            .args(["--operator", "t"])
            .env("CARDSMITH_DATA_DIR", data.path())
            .env_remove("CARDSMITH_ISSUER_KEY")
            .env_remove("CARDSMITH_SCP03_KEYS")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("line run");
        std::thread::sleep(Duration::from_millis(wait_ms));
        let _ = child.kill();
        let _ = child.wait();
        let path = data.path().join("line/journal.sqlite");
        if !path.exists() {
            continue;
        }
        let j = SqliteJournal::open(&path).expect("journal");
        let found = j.batch(None).expect("batch");
        eprintln!(
            "killed after {wait_ms} ms: {}",
            if found.is_some() {
                "whole batch"
            } else {
                "no batch"
            }
        );
        match found {
            Some(b) => {
                assert_eq!(b.records, n as u64, "killed after {wait_ms} ms");
                assert_eq!(j.records(b.id).expect("records").len(), n);
            }
            None => assert_eq!(
                j.record("X-00000001").expect("record"),
                None,
                "killed after {wait_ms} ms: a record without its batch"
            ),
        }
        let bytes = std::fs::read(&batch).expect("read");
        let digest: String = ring::digest::digest(&ring::digest::SHA256, &bytes)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut pulled = 0;
        let (b, _) = load_streamed(&j, &batch, &digest, 500, &mut pulled).expect("reload");
        assert_eq!(b.records, n as u64);
        assert_eq!(j.records(b.id).expect("records").len(), n);
        assert!(j.audit().expect("audit").intact);
    }
}
