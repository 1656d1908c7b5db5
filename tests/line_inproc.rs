//! The personalization line with in-process simulated readers: the same
//! workers, journal and card logic as through pcscd, with cards pulled at
//! chosen APDUs and readers that misbehave.

mod line_support;

use cardsmith::line::progress::Progress;
use cardsmith::line::run::{self, Readers, RunOptions};
use cardsmith::line::slot::{CardSlot, SimFeed, SimSlot, SlotError};
use cardsmith::line::station::StationCtx;
use cardsmith::record::Record;
use cardsmith::register::journal::{Journal, NewRecord, Who};
use cardsmith::register::sqlite::SqliteJournal;
use cardsmith::sim::faults::Faults;
use cardsmith::sim::vpcd::SharedCard;
use cardsmith::sim::SimConfig;
use cardsmith::transport::Channel;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn who() -> Who {
    Who {
        station: "test-station".into(),
        operator: "tester".into(),
        reader: None,
    }
}

struct Line {
    journal: Arc<SqliteJournal>,
    batch_id: i64,
}

fn new_line(dir: &Path, records: &HashMap<String, Record>) -> Line {
    let journal = Arc::new(SqliteJournal::open(&dir.join("journal.sqlite")).expect("journal"));
    let mut queued: Vec<NewRecord> = records
        .keys()
        .map(|id| NewRecord {
            record_id: id.clone(),
            line: 0,
            request: None,
        })
        .collect();
    queued.sort_by(|a, b| a.record_id.cmp(&b.record_id));
    for (i, r) in queued.iter_mut().enumerate() {
        r.line = i as u64 + 1;
    }
    let (b, aside) = journal
        .load_batch("t", "t.jsonl", "digest", &who(), &queued, &[])
        .expect("load");
    assert!(aside.is_empty());
    Line {
        journal,
        batch_id: b.id,
    }
}

fn run_line(
    line: &Line,
    data_dir: &Path,
    records: &HashMap<String, Record>,
    slots: Vec<Box<dyn CardSlot>>,
) {
    let mut ctx = StationCtx::new(
        line.journal.clone(),
        line.batch_id,
        records.clone(),
        line_support::issuer(data_dir),
        who(),
    );
    ctx.poll = Duration::from_millis(20);
    let ctx = Arc::new(ctx);
    let opts = RunOptions {
        wait_slice: Duration::from_millis(50),
        tick: Duration::from_millis(20),
        ..RunOptions::default()
    };
    run::run(
        ctx,
        Readers::Slots(slots),
        Arc::new(Progress::new(false)),
        opts,
    )
    .expect("run");
}

fn key(dir: &Path) -> line_support::BlankKeys {
    line_support::BlankKeys::of(dir)
}

fn blank(keys: &line_support::BlankKeys) -> SharedCard {
    Arc::new(Mutex::new(keys.card(SimConfig::default())))
}

fn unique(cards: Vec<(String, SharedCard)>) -> Vec<SharedCard> {
    let mut out: Vec<SharedCard> = Vec::new();
    for (_, c) in cards {
        if !out.iter().any(|o| Arc::ptr_eq(o, &c)) {
            out.push(c);
        }
    }
    out
}

/// Pull the card at every APDU index of personalization and verification
/// in turn, then put the same card back. Each time the record goes back to
/// the queue, and the card is recovered (pulled after closing), safely
/// personalized again (pulled before anything was written) or rejected and
/// terminated (partly written); the record ends on exactly one good card.
#[test]
fn pull_at_every_apdu_index() {
    let data = tempfile::tempdir().expect("tempdir");
    let records = line_support::batch(&data.path().join("b.jsonl"), 1, 51);
    let key = key(data.path());
    let mut outcomes: HashMap<String, Vec<u64>> = HashMap::new();
    let mut k = 1u64;
    loop {
        let dir = tempfile::tempdir().expect("tempdir");
        let line = new_line(dir.path(), &records);
        let first = blank(&key);
        let step = Arc::new(Mutex::new(0u32));
        let processed = Arc::new(Mutex::new(0u64));
        let (f, kk, key2, seen) = (first.clone(), k, key.clone(), processed.clone());
        let feed = SimFeed::new(Box::new(move |_reader: &str| {
            let mut s = step.lock().expect("step");
            *s += 1;
            if *s == 2 {
                *seen.lock().expect("seen") = f.lock().expect("card").apdus_processed();
            }
            match *s {
                1 => Some((
                    f.clone(),
                    Faults {
                        remove_at: Some(kk),
                        ..Faults::none()
                    },
                )),
                2 => Some((f.clone(), Faults::none())),
                _ => Some((blank(&key2), Faults::none())),
            }
        }));
        let slot = SimSlot::new("pull reader", feed.clone());
        run_line(&line, data.path(), &records, vec![Box::new(slot)]);
        let cards = unique(std::mem::take(&mut feed.lock().expect("feed").hopper));
        let side = line_support::issuer(data.path());
        let summary = line_support::account(&line.journal, line.batch_id, &records, &cards, &side);
        let s = line.journal.summary(line.batch_id).expect("summary");
        let before_pull = *processed.lock().expect("processed");
        // Past identification (3 APDUs) a pull always interrupts the attempt;
        // no interruption means the card took all its APDUs before index k,
        // so every index has been covered.
        if k > 3 && s.interrupted == 0 {
            assert!(k > 60, "only {k} APDUs?");
            assert!(before_pull < k, "{before_pull} APDUs before a pull at {k}?");
            assert_eq!(s.attempts, 1, "{summary}");
            break;
        }
        assert_eq!(before_pull, k - 1);
        // Pulled while being identified: no attempt had started.
        assert!(s.interrupted == 1 || k <= 3, "k={k}: {summary}");
        let serial = cardsmith::hex::compact(&first.lock().expect("card").serial());
        let fate = match line.journal.card(&serial).expect("card") {
            cardsmith::register::journal::CardKnown::Good { .. } => {
                let attempts = line.journal.attempts_for_card(&serial).expect("attempts");
                if attempts
                    .iter()
                    .any(|a| a.kind == "recovery" && a.outcome == "good")
                {
                    "recovered after the pull"
                } else {
                    "personalized again (nothing had been written)"
                }
            }
            cardsmith::register::journal::CardKnown::Rejected { terminated, .. } => {
                assert!(
                    terminated,
                    "k={k}: a rejected partly written card is terminated"
                );
                "rejected and terminated"
            }
            cardsmith::register::journal::CardKnown::Unknown if k <= 3 => {
                // Identification never finished; the card came back and took the record.
                panic!("k={k}: a card that came back must end in the journal")
            }
            other => panic!("k={k}: pulled card ends as {other:?}"),
        };
        outcomes.entry(fate.to_string()).or_default().push(k);
        k += 1;
        assert!(k < 400, "the pull never stopped mattering");
    }
    eprintln!("pull indices 1..{}: ", k - 1);
    for (fate, ks) in &outcomes {
        eprintln!(
            "  {fate}: {} indices ({}..{})",
            ks.len(),
            ks[0],
            ks[ks.len() - 1]
        );
    }
    assert_eq!(outcomes.len(), 3, "all three fates occur: {outcomes:?}");
}

/// A slot that never gives a card; counts how often it was asked.
struct Broken(Arc<std::sync::atomic::AtomicU32>);

impl CardSlot for Broken {
    fn name(&self) -> &str {
        "broken reader"
    }
    fn wait_card(&mut self, _t: Duration) -> Result<Option<Channel>, SlotError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(SlotError::Failed("the reader answers garbage".into()))
    }
    fn wait_removed(&mut self, _t: Duration) -> Result<bool, SlotError> {
        Ok(true)
    }
}

/// A misbehaving reader is taken out of rotation; the others finish the batch.
#[test]
fn misbehaving_reader_leaves_the_rotation_and_the_batch_finishes() {
    let data = tempfile::tempdir().expect("tempdir");
    let records = line_support::batch(&data.path().join("b.jsonl"), 3, 52);
    let line = new_line(data.path(), &records);
    let key = key(data.path());
    // No blank card reaches the good readers until the broken one has failed
    // often enough to leave the rotation, so the batch cannot finish first.
    let asked = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = asked.clone();
    let feed = SimFeed::new(Box::new(move |_r: &str| {
        (seen.load(std::sync::atomic::Ordering::SeqCst) >= 3).then(|| (blank(&key), Faults::none()))
    }));
    let slots: Vec<Box<dyn CardSlot>> = vec![
        Box::new(Broken(asked)),
        Box::new(SimSlot::new("good reader 1", feed.clone())),
        Box::new(SimSlot::new("good reader 2", feed.clone())),
    ];
    run_line(&line, data.path(), &records, slots);
    let cards = unique(std::mem::take(&mut feed.lock().expect("feed").hopper));
    let side = line_support::issuer(data.path());
    eprintln!(
        "{}",
        line_support::account(&line.journal, line.batch_id, &records, &cards, &side)
    );
    let events = line.journal.events(0).expect("events");
    let out: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "reader out of rotation")
        .collect();
    assert_eq!(out.len(), 1, "{events:?}");
    assert_eq!(out[0].reader.as_deref(), Some("broken reader"));
    assert!(out[0].detail.contains("3 failures"), "{}", out[0].detail);
    assert_eq!(out[0].operator, "tester");
    // Both good readers did work.
    let t = line
        .journal
        .throughput(Some(line.batch_id))
        .expect("throughput");
    assert!(
        t.iter().all(|r| r.reader.starts_with("good reader")),
        "{t:?}"
    );
}

/// A card that is not blank and unknown to the journal is rejected and
/// left alone (not terminated: it may be another programme's card); a
/// good card coming back is skipped, never personalized twice.
#[test]
fn foreign_and_returning_cards_are_not_touched() {
    let data = tempfile::tempdir().expect("tempdir");
    let records = line_support::batch(&data.path().join("b.jsonl"), 1, 53);
    let line = new_line(data.path(), &records);
    let key = key(data.path());
    // A card personalized elsewhere (another journal).
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = new_line(other_dir.path(), &records);
    let foreign = blank(&key);
    let f2 = foreign.clone();
    let feed = SimFeed::new(Box::new(move |_r: &str| Some((f2.clone(), Faults::none()))));
    run_line(
        &other,
        data.path(),
        &records,
        vec![Box::new(SimSlot::new("other line", feed))],
    );
    // Our line gets the foreign card first, then blanks.
    let step = Arc::new(Mutex::new(0));
    let (f3, k2) = (foreign.clone(), key.clone());
    let feed = SimFeed::new(Box::new(move |_r: &str| {
        let mut s = step.lock().expect("step");
        *s += 1;
        Some((
            if *s == 1 { f3.clone() } else { blank(&k2) },
            Faults::none(),
        ))
    }));
    run_line(
        &line,
        data.path(),
        &records,
        vec![Box::new(SimSlot::new("r", feed.clone()))],
    );
    let cards = unique(std::mem::take(&mut feed.lock().expect("feed").hopper));
    let serial = cardsmith::hex::compact(&foreign.lock().expect("card").serial());
    match line.journal.card(&serial).expect("card") {
        cardsmith::register::journal::CardKnown::Rejected {
            terminated, reason, ..
        } => {
            assert!(!terminated);
            assert!(reason.contains("not a blank card"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let side = line_support::issuer(data.path());
    let (_, st) = line_support::card_state(&foreign, &side);
    assert_eq!(
        st,
        line_support::CardState::Life(cardsmith::perso::card::LifeCycle::Personalized),
        "the foreign card is untouched"
    );
    let good: Vec<SharedCard> = cards
        .into_iter()
        .filter(|c| !Arc::ptr_eq(c, &foreign))
        .collect();
    eprintln!(
        "{}",
        line_support::account(&line.journal, line.batch_id, &records, &good, &side)
    );
}

/// `cardsmith line run`: a bad record in the batch is reported with its
/// line, field and rule and set aside before any card; the others are
/// personalized; the exit code says something needs a supervisor.
#[test]
fn bad_records_are_set_aside_and_the_rest_proceed() {
    let data = tempfile::tempdir().expect("tempdir");
    let batch = data.path().join("b.jsonl");
    line_support::batch(&batch, 3, 54);
    let text = std::fs::read_to_string(&batch).expect("read");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Break line 2's national ID check digit.
    let v: serde_json::Value = serde_json::from_str(&lines[1]).expect("json");
    let nid = v["national_id"].as_str().expect("nid").to_string();
    let last = nid
        .chars()
        .last()
        .expect("digit")
        .to_digit(10)
        .expect("digit");
    let bad = format!("{}{}", &nid[..9], (last + 1) % 10);
    lines[1] = lines[1].replace(&nid, &bad);
    std::fs::write(&batch, lines.join("\n") + "\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cardsmith"))
        .args(["line", "run"])
        .arg(&batch)
        .args([
            "--sim-readers",
            "2",
            "--timing",
            "none",
            "--plain",
            "--operator",
            "t",
        ])
        .env("CARDSMITH_DATA_DIR", data.path())
        .env_remove("CARDSMITH_ISSUER_KEY")
        .env_remove("CARDSMITH_SCP03_KEYS")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("1 record(s) set aside"), "{err}");
    assert!(
        err.contains(":2 record ") && err.contains("national_id"),
        "{err}"
    );
    let j = SqliteJournal::open(&data.path().join("line/journal.sqlite")).expect("journal");
    let b = j.batch(None).expect("batch").expect("one");
    let s = j.summary(b.id).expect("summary");
    assert_eq!((s.records, s.good, s.invalid), (2, 2, 1), "{s:?}");
    let aside = j.set_aside(b.id).expect("aside");
    assert_eq!(aside.len(), 1);
    assert_eq!(aside[0].line, 2);
    assert!(
        aside[0].reason.contains("national_id"),
        "{}",
        aside[0].reason
    );
}

/// A card of another operating system (the domestic simulated card, whose
/// ATR the reference profile does not name) is refused by its ATR before
/// any command: not one APDU reaches it, the journal says why with the ATR,
/// and the record goes onto the blank that follows.
#[test]
fn a_card_no_profile_names_is_refused_by_its_atr_and_not_touched() {
    let data = tempfile::tempdir().expect("tempdir");
    let records = line_support::batch(&data.path().join("b.jsonl"), 1, 57);
    let line = new_line(data.path(), &records);
    let key = key(data.path());
    let stranger: SharedCard = Arc::new(Mutex::new(cardsmith::sim::SimCard::blank(
        SimConfig::domestic(),
    )));
    let atr = cardsmith::hex::spaced(&stranger.lock().expect("card").atr());
    let step = Arc::new(Mutex::new(0));
    let (s2, k2) = (stranger.clone(), key.clone());
    let feed = SimFeed::new(Box::new(move |_r: &str| {
        let mut s = step.lock().expect("step");
        *s += 1;
        Some((
            if *s == 1 { s2.clone() } else { blank(&k2) },
            Faults::none(),
        ))
    }));
    run_line(
        &line,
        data.path(),
        &records,
        vec![Box::new(SimSlot::new("r", feed.clone()))],
    );
    assert_eq!(
        stranger.lock().expect("card").apdus_processed(),
        0,
        "the unknown card got commands"
    );
    let events = line.journal.events(0).expect("events");
    let why = events
        .iter()
        .find(|e| e.kind == "unknown card")
        .unwrap_or_else(|| panic!("no unknown-card event in {events:?}"));
    assert!(
        why.detail.contains(&atr) && why.detail.contains("not touched"),
        "{}",
        why.detail
    );
    let cards = unique(std::mem::take(&mut feed.lock().expect("feed").hopper));
    let good: Vec<SharedCard> = cards
        .into_iter()
        .filter(|c| !Arc::ptr_eq(c, &stranger))
        .collect();
    let side = line_support::issuer(data.path());
    eprintln!(
        "{}",
        line_support::account(&line.journal, line.batch_id, &records, &good, &side)
    );
}
