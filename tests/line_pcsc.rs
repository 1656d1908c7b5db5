//! The personalization line through the real pcscd: the line runs as its
//! own process (`cardsmith line run`/`resume`), a simulated card handler
//! feeds blank cards into the virtual readers, and the test kills the line
//! with SIGKILL at random points, or restarts pcscd under it.

mod common;
mod line_support;

use cardsmith::register::journal::Journal;
use cardsmith::register::sqlite::SqliteJournal;
use cardsmith::sim::feeder::{FeedOptions, Feeder};
use cardsmith::sim::timing::Timing;
use cardsmith::sim::vpcd::SharedCard;
use cardsmith::sim::{SimCard, SimConfig};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The readers the line uses in these tests: three of the project's own
/// line readers (`ifd/`), with the addresses their cards connect to.
fn readers() -> Vec<(String, std::net::SocketAddr)> {
    use cardsmith::sim::line_readers::{line_reader_addr, line_reader_name};
    (0..3)
        .map(|i| (line_reader_name(i), line_reader_addr(i)))
        .collect()
}

/// Matches "Cardsmith Line 01 00 00" … "Cardsmith Line 03 02 00" only.
const READER_PATTERNS: [&str; 6] = [
    "--reader",
    "Cardsmith Line 01",
    "--reader",
    "Cardsmith Line 02",
    "--reader",
    "Cardsmith Line 03",
];

fn feeder(data: &Path, out: &Path) -> Feeder {
    let keys = line_support::BlankKeys::of(data);
    Feeder::start(FeedOptions {
        readers: readers(),
        out_dir: out.to_path_buf(),
        count: None,
        config: SimConfig::default(),
        timing: Some(Timing::FAST),
        issuer_key: Some(keys.key),
        scp03: keys.scp03.map(|k| k.keys),
        handling: Duration::from_millis(100),
    })
    .expect("feeder")
}

fn line(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cardsmith"));
    c.arg("line")
        .args(args)
        .args(READER_PATTERNS)
        .args(["--plain", "--operator", "line-tester"])
        .env("CARDSMITH_DATA_DIR", data)
        .env_remove("CARDSMITH_ISSUER_KEY")
        .env_remove("CARDSMITH_SCP03_KEYS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn finish(child: Child, limit: Duration) -> (i32, String) {
    let started = Instant::now();
    let mut child = child;
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return (st.code().unwrap_or(-1), text);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "the line did not finish within {limit:?}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn cards_from(feeder: Feeder) -> Vec<SharedCard> {
    feeder
        .stop()
        .into_iter()
        .map(|f| {
            let c = SimCard::open_image(&f.image, SimConfig::default()).expect("card image");
            Arc::new(Mutex::new(c)) as SharedCard
        })
        .collect()
}

/// A small xorshift so the kill points differ per run but can be replayed
/// (the seed is printed).
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn sigkill_at_random_points_then_resume_accounts_for_every_record() {
    let _g = common::pcsc_lines();
    let data = tempfile::tempdir().expect("tempdir");
    let batch = data.path().join("batch.jsonl");
    let records = line_support::batch(&batch, 5, 61);
    let feed = feeder(data.path(), &data.path().join("hopper"));
    let mut seed = std::env::var("CARDSMITH_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(7)
        });
    eprintln!("kill points from seed {seed} (replay with CARDSMITH_KILL_SEED={seed})");
    let batch_s = batch.display().to_string();
    let mut kills = Vec::new();
    for round in 0..4 {
        let args: Vec<&str> = if round == 0 {
            vec!["run", &batch_s]
        } else {
            vec!["resume"]
        };
        let mut child = line(data.path(), &args).spawn().expect("start the line");
        let after = Duration::from_millis(400 + next(&mut seed) % 3_500);
        std::thread::sleep(after);
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        child.kill().expect("SIGKILL the line");
        let _ = child.wait();
        kills.push(after);
    }
    eprintln!("killed after {kills:?}");
    let (code, out) = finish(
        line(data.path(), &["resume"]).spawn().expect("resume"),
        Duration::from_secs(240),
    );
    assert_eq!(code, 0, "{out}");
    let journal = SqliteJournal::open(&data.path().join("line/journal.sqlite")).expect("journal");
    let b = journal.batch(None).expect("batch").expect("one batch");
    let cards = cards_from(feed);
    let side = line_support::issuer(data.path());
    eprintln!(
        "{}",
        line_support::account(&journal, b.id, &records, &cards, &side)
    );
    // Every kill left its mark: the resumed line found the attempts that
    // were running and put their records back.
    let events = journal.events(0).expect("events");
    assert!(events.iter().all(|e| e.operator == "line-tester"));
}

/// Restart pcscd in the middle of a batch: the line notices, waits for the
/// service, picks the readers up again and finishes by itself.
#[test]
fn pcscd_restart_mid_batch_recovers_without_operator_action() {
    let _g = common::pcsc_lines();
    let data = tempfile::tempdir().expect("tempdir");
    let batch = data.path().join("batch.jsonl");
    let records = line_support::batch(&batch, 5, 62);
    let feed = feeder(data.path(), &data.path().join("hopper"));
    let child = line(data.path(), &["run", &batch.display().to_string()])
        .spawn()
        .expect("start the line");
    let jpath = data.path().join("line/journal.sqlite");
    // Wait for the first good card, then pull the rug.
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if let Ok(j) = SqliteJournal::open(&jpath) {
            if let Ok(Some(b)) = j.batch(None) {
                if j.summary(b.id).map(|s| s.good >= 1).unwrap_or(false) {
                    break;
                }
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no good card");
    }
    std::thread::sleep(Duration::from_millis(700));
    common::restart_pcscd();
    let (code, out) = finish(child, Duration::from_secs(240));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PC/SC service"), "{out}");
    let journal = SqliteJournal::open(&jpath).expect("journal");
    let b = journal.batch(None).expect("batch").expect("one batch");
    let cards = cards_from(feed);
    let side = line_support::issuer(data.path());
    eprintln!(
        "{}",
        line_support::account(&journal, b.id, &records, &cards, &side)
    );
    eprintln!("{out}");
}

/// A mixed batch through pcscd: two line readers get reference blank
/// cards and the third domestic ones; `cardsmith line run` without
/// `--profile` takes the installed profiles and puts every record on
/// exactly one good card of either vendor, each verified with its own
/// profile, both vendors used.
#[test]
fn a_mixed_batch_through_pcscd_uses_both_vendors_cards() {
    let _g = common::pcsc_lines();
    let data = tempfile::tempdir().expect("tempdir");
    let batch = data.path().join("batch.jsonl");
    // Records with two fingerprints and with one.
    let records = line_support::batch(&batch, 6, 63);
    assert!(records.values().any(|r| r.fingerprints().len() == 1));
    let keys = line_support::BlankKeys::of(data.path());
    let all = readers();
    let feed = |readers: Vec<(String, std::net::SocketAddr)>, config: SimConfig, out: &str| {
        Feeder::start(FeedOptions {
            readers,
            out_dir: data.path().join(out),
            count: None,
            config,
            timing: Some(Timing::FAST),
            issuer_key: Some(keys.key.clone()),
            scp03: keys.scp03.clone().map(|k| k.keys),
            handling: Duration::from_millis(100),
        })
        .expect("feeder")
    };
    let reference = feed(all[..2].to_vec(), SimConfig::default(), "hopper-reference");
    let domestic = feed(all[2..].to_vec(), SimConfig::domestic(), "hopper-domestic");
    let (code, out) = finish(
        line(data.path(), &["run", &batch.display().to_string()])
            .spawn()
            .expect("start the line"),
        Duration::from_secs(240),
    );
    assert_eq!(code, 0, "{out}");
    let journal = SqliteJournal::open(&data.path().join("line/journal.sqlite")).expect("journal");
    let b = journal.batch(None).expect("batch").expect("one batch");
    let mut cards = cards_from(reference);
    let domestic_cards: Vec<SharedCard> = domestic
        .stop()
        .into_iter()
        .map(|f| {
            let c = SimCard::open_image(&f.image, SimConfig::domestic()).expect("card image");
            Arc::new(Mutex::new(c)) as SharedCard
        })
        .collect();
    let domestic_serials: Vec<String> = domestic_cards
        .iter()
        .map(|c| cardsmith::hex::compact(&c.lock().expect("card").serial()))
        .collect();
    cards.extend(domestic_cards);
    let side = line_support::issuer(data.path());
    let profiles = cardsmith::perso::side::Profiles::installed();
    eprintln!(
        "{}",
        line_support::account_as(&journal, b.id, &records, &cards, &side, &profiles)
    );
    let on_domestic = records
        .keys()
        .filter(|id| {
            let r = journal.record(id).expect("journal").expect("record");
            r.card_serial.is_some_and(|s| domestic_serials.contains(&s))
        })
        .count();
    eprintln!(
        "{on_domestic} of {} records on domestic cards",
        records.len()
    );
    assert!(
        on_domestic > 0 && on_domestic < records.len(),
        "both vendors' cards hold records: {on_domestic} of {} on domestic cards",
        records.len()
    );
}
