//! A line that takes both vendors' cards (issue 17): each inserted card is
//! taken as the first of the station's profiles that recognizes its ATR,
//! so one run puts reference and domestic blank cards through the same
//! workers, journal and engines; a card of no profile is refused by name
//! with its ATR, before a single command. In process here (the same line
//! code as through pcscd), and `cardsmith line run --profile … --profile …`.

mod line_support;

use cardsmith::line::progress::Progress;
use cardsmith::line::run::{self, Readers, RunOptions};
use cardsmith::line::slot::{CardSlot, SimFeed, SimSlot};
use cardsmith::line::station::{attempt_profile, process_card, CardResult, StationCtx};
use cardsmith::perso::profile::Profile;
use cardsmith::perso::side::Profiles;
use cardsmith::record::Record;
use cardsmith::register::journal::{Journal, NewRecord, Who};
use cardsmith::register::sqlite::SqliteJournal;
use cardsmith::sim::faults::Faults;
use cardsmith::sim::vpcd::SharedCard;
use cardsmith::sim::{CardOs, SimConfig};
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{
    Channel, ExchangeOptions, Protocol, Session, Transport, TransportError,
};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const REFERENCE: &str = "cardsmith reference national ID card";
const DOMESTIC: &str = "cardsmith domestic national ID card";

fn who() -> Who {
    Who {
        station: "mixed-station".into(),
        operator: "tester".into(),
        reader: None,
    }
}

/// A journal with `records` queued as one batch.
fn queued(dir: &Path, records: &HashMap<String, Record>) -> (Arc<SqliteJournal>, i64) {
    let journal = Arc::new(SqliteJournal::open(&dir.join("journal.sqlite")).expect("journal"));
    let mut ids: Vec<&String> = records.keys().collect();
    ids.sort();
    let rows: Vec<NewRecord> = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| NewRecord {
            record_id: id.clone(),
            line: i as u64 + 1,
            request: None,
        })
        .collect();
    let (b, aside) = journal
        .load_batch("mixed", "mixed.jsonl", "digest", &who(), &rows, &[])
        .expect("load");
    assert!(aside.is_empty());
    (journal, b.id)
}

/// A small xorshift, so the feed order is random but replayable (the seed
/// is printed).
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn profile_name(p: &Profile) -> &str {
    p.name.as_str()
}

/// 20 records, 4 readers, blank cards of both vendors fed in a random
/// (seeded) order: every record ends on exactly one good card of either
/// vendor, which verifies with its own profile; both vendors are used; the
/// journal says which profile each good card was personalized with, and it
/// is the card's.
#[test]
fn a_mixed_batch_on_four_readers_ends_with_every_record_on_one_good_card_of_either_vendor() {
    let data = tempfile::tempdir().expect("tempdir");
    let records = line_support::batch(&data.path().join("b.jsonl"), 20, 1717);
    let (journal, batch_id) = queued(data.path(), &records);
    let side = line_support::issuer(data.path());
    let keys = line_support::BlankKeys::of(data.path());
    let mut ctx = StationCtx::new(
        journal.clone(),
        batch_id,
        records.clone(),
        line_support::issuer(data.path()),
        who(),
    );
    ctx.profiles = Profiles::installed();
    ctx.poll = Duration::from_millis(20);
    // Replay a run with LINE_MIXED_SEED=<the printed seed>.
    let mut seed = std::env::var("LINE_MIXED_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(17)
        })
        | 1;
    eprintln!("feed seed {seed} (LINE_MIXED_SEED)");
    let fed = Arc::new(AtomicUsize::new(0));
    let fed2 = fed.clone();
    let feed = SimFeed::new(Box::new(move |_reader: &str| {
        fed2.fetch_add(1, Ordering::SeqCst);
        let config = if next(&mut seed).is_multiple_of(2) {
            SimConfig::default()
        } else {
            SimConfig::domestic()
        };
        Some((Arc::new(Mutex::new(keys.card(config))), Faults::none()))
    }));
    let slots: Vec<Box<dyn CardSlot>> = (1..=4)
        .map(|i| {
            Box::new(SimSlot::new(&format!("mixed reader {i}"), feed.clone())) as Box<dyn CardSlot>
        })
        .collect();
    let profiles = ctx.profiles.clone();
    run::run(
        Arc::new(ctx),
        Readers::Slots(slots),
        Arc::new(Progress::new(false)),
        RunOptions {
            wait_slice: Duration::from_millis(50),
            tick: Duration::from_millis(20),
            ..RunOptions::default()
        },
    )
    .expect("run");
    let mut cards: Vec<SharedCard> = Vec::new();
    for (_, c) in std::mem::take(&mut feed.lock().expect("feed").hopper) {
        if !cards.iter().any(|o| Arc::ptr_eq(o, &c)) {
            cards.push(c);
        }
    }
    // Every record on exactly one good card, verified with the card's own
    // profile; no card good twice; every other card accounted for.
    let summary = line_support::account_as(&journal, batch_id, &records, &cards, &side, &profiles);
    eprintln!("{} cards fed: {summary}", fed.load(Ordering::SeqCst));
    // Which vendor holds each record: by the card, and by the journal.
    let mut by_vendor: HashMap<String, usize> = HashMap::new();
    let mut serials = HashSet::new();
    for id in records.keys() {
        let attempts = journal.attempts_for_record(id).expect("attempts");
        let good = attempts
            .iter()
            .find(|a| a.outcome == "good")
            .expect("a good attempt");
        let serial = good.card_serial.clone().expect("serial");
        assert!(serials.insert(serial.clone()), "card {serial} twice");
        let card = cards
            .iter()
            .find(|c| cardsmith::hex::compact(&c.lock().expect("card").serial()) == serial)
            .expect("the good card");
        let (os, atr) = {
            let c = card.lock().expect("card");
            (c.config().os, c.atr())
        };
        let picked = profiles.pick(&atr).expect("a card of the line");
        let expected = match os {
            CardOs::Reference => REFERENCE,
            CardOs::Domestic => DOMESTIC,
        };
        assert_eq!(profile_name(picked), expected, "card {serial}");
        assert_eq!(
            attempt_profile(&good.stages),
            Some(expected),
            "record {id}: the journal names the card's profile: {:?}",
            good.stages
        );
        *by_vendor.entry(expected.to_string()).or_default() += 1;
    }
    eprintln!("good cards by vendor: {by_vendor:?}");
    assert_eq!(by_vendor.values().sum::<usize>(), 20);
    assert!(
        by_vendor.contains_key(REFERENCE) && by_vendor.contains_key(DOMESTIC),
        "both vendors' cards hold records: {by_vendor:?}"
    );
}

/// What the mixed batch rests on: every record of the batch can go onto a
/// blank card of either vendor, personalized and verified by the engines
/// with that card's profile, whichever the line picks.
#[test]
fn every_record_of_the_batch_verifies_on_a_card_of_either_vendor() {
    let data = tempfile::tempdir().expect("tempdir");
    let records = line_support::batch(&data.path().join("b.jsonl"), 20, 1717);
    let side = line_support::issuer(data.path());
    let keys = line_support::BlankKeys::of(data.path());
    let profiles = Profiles::installed();
    let mut ids: Vec<&String> = records.keys().collect();
    ids.sort();
    let mut failed = Vec::new();
    for id in ids {
        let rec = &records[id];
        for config in [SimConfig::default(), SimConfig::domestic()] {
            let card: SharedCard = Arc::new(Mutex::new(keys.card(config)));
            let atr = card.lock().expect("card").atr();
            let p = profiles.pick(&atr).expect("a card of the line");
            let mut ch = Channel::new(
                Box::new(SimTransport::shared(card.clone(), Default::default())),
                ExchangeOptions::default(),
            );
            let input = cardsmith::perso::input::card_input(
                rec,
                p,
                cardsmith::perso::input::today(),
                &cardsmith::perso::input::compact_template,
            )
            .expect("input");
            let iss = side.issuer_for(p);
            let outcome = cardsmith::perso::engine::personalize(&mut ch, &iss, &input)
                .map_err(|e| format!("perso: {e}"))
                .and_then(|_| {
                    cardsmith::perso::engine::verify(&mut ch, &iss, &input)
                        .map_err(|e| format!("verify: {e}"))
                })
                .and_then(|rep| match rep.passed {
                    true => Ok(()),
                    false => Err(rep
                        .checks
                        .iter()
                        .filter(|c| !c.passed)
                        .map(|c| format!("{}: {}", c.name, c.detail))
                        .collect::<Vec<_>>()
                        .join("; ")),
                });
            if let Err(e) = outcome {
                failed.push(format!(
                    "{id} ({} fingerprint(s)) on a {}: {e}",
                    rec.fingerprints().len(),
                    profile_name(p)
                ));
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

type Wire = Arc<Mutex<Vec<Vec<u8>>>>;

/// A simulated card seen through a transport that reports another ATR
/// (the vsmartcard emulator's) and records every command sent.
struct Stranger {
    inner: SimTransport,
    atr: Vec<u8>,
    wire: Wire,
}

struct TapSession<'a> {
    inner: Box<dyn Session + 'a>,
    wire: Wire,
}

impl Session for TapSession<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.wire.lock().expect("wire").push(apdu.to_vec());
        self.inner.transmit(apdu)
    }
}

impl Transport for Stranger {
    fn begin(&mut self) -> Result<Box<dyn Session + '_>, TransportError> {
        let wire = self.wire.clone();
        Ok(Box::new(TapSession {
            inner: self.inner.begin()?,
            wire,
        }))
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), TransportError> {
        self.inner.reconnect(reset)
    }
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }
    fn protocol(&self) -> Protocol {
        self.inner.protocol()
    }
    fn reader(&self) -> String {
        self.inner.reader()
    }
}

/// The ATR of the vsmartcard emulator's ISO 7816 card (vicc).
const VICC_ATR: [u8; 17] = [
    0x3B, 0xD6, 0x18, 0x00, 0x80, 0xB1, 0x80, 0x6D, 0x1F, 0x03, 0x80, 0x51, 0x00, 0x61, 0x10, 0x30,
    0x9E,
];

/// A third, unknown card is refused by name with its ATR and the profiles
/// tried, and gets no command: a card with the emulator's ATR on a line of
/// the installed profiles, and the reference card on a line given only the
/// domestic profile.
#[test]
fn a_card_of_no_profile_is_refused_by_name_and_gets_no_command() {
    let data = tempfile::tempdir().expect("tempdir");
    let records = line_support::batch(&data.path().join("b.jsonl"), 1, 1718);
    let (journal, batch_id) = queued(data.path(), &records);
    let keys = line_support::BlankKeys::of(data.path());
    let mut ctx = StationCtx::new(
        journal.clone(),
        batch_id,
        records.clone(),
        line_support::issuer(data.path()),
        who(),
    );
    ctx.profiles = Profiles::installed();

    let card: SharedCard = Arc::new(Mutex::new(keys.card(SimConfig::default())));
    let wire: Wire = Arc::default();
    let mut ch = Channel::new(
        Box::new(Stranger {
            inner: SimTransport::shared(card.clone(), Default::default()),
            atr: VICC_ATR.to_vec(),
            wire: wire.clone(),
        }),
        ExchangeOptions::default(),
    );
    let r = process_card(&ctx, &mut ch, "stranger reader");
    let CardResult::Skipped { reason, .. } = &r else {
        panic!("the stranger was not refused: {r:?}");
    };
    assert!(
        reason.contains("unknown card")
            && reason.contains("3B D6 18 00 80 B1 80 6D 1F 03 80 51 00 61 10 30 9E")
            && reason.contains(REFERENCE)
            && reason.contains(DOMESTIC)
            && reason.contains("not touched"),
        "{reason}"
    );
    assert!(wire.lock().expect("wire").is_empty(), "commands were sent");
    assert_eq!(card.lock().expect("card").apdus_processed(), 0);
    let events = journal.events(0).expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.kind == "unknown card" && e.detail == *reason),
        "{events:?}"
    );
    // Nothing was claimed for it.
    let s = journal.summary(batch_id).expect("summary");
    assert_eq!((s.pending, s.attempts), (1, 0), "{s:?}");

    // A line given only the domestic profile: the reference card is the
    // unknown one, refused under the domestic profile's name.
    let domestic = Profile::load(&profile_file("domestic")).expect("domestic profile");
    ctx.profiles = Profiles::new(domestic, Vec::new());
    let reference: SharedCard = Arc::new(Mutex::new(keys.card(SimConfig::default())));
    let atr = cardsmith::hex::spaced(&reference.lock().expect("card").atr());
    let mut ch = Channel::new(
        Box::new(SimTransport::shared(reference.clone(), Default::default())),
        ExchangeOptions::default(),
    );
    let r = process_card(&ctx, &mut ch, "reader");
    let CardResult::Skipped { reason, .. } = &r else {
        panic!("the reference card was not refused: {r:?}");
    };
    assert!(
        reason.contains(&atr)
            && reason.contains(&format!("profile {DOMESTIC}'s"))
            && !reason.contains(REFERENCE),
        "{reason}"
    );
    assert_eq!(reference.lock().expect("card").apdus_processed(), 0);
    // And the domestic card is the line's.
    let blank: SharedCard = Arc::new(Mutex::new(keys.card(SimConfig::domestic())));
    let mut ch = Channel::new(
        Box::new(SimTransport::shared(blank.clone(), Default::default())),
        ExchangeOptions::default(),
    );
    ctx.poll = Duration::from_millis(20);
    let r = process_card(&ctx, &mut ch, "reader");
    assert!(matches!(r, CardResult::Good { .. }), "{r:?}");
}

fn profile_file(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("apdu-scripts")
        .join(dir)
        .join("profile.toml")
}

fn cli(data: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cardsmith"))
        .args(args)
        .env("CARDSMITH_DATA_DIR", data)
        .env_remove("CARDSMITH_ISSUER_KEY")
        .env_remove("CARDSMITH_SCP03_KEYS")
        .output()
        .expect("run cardsmith")
}

/// `cardsmith line run --profile A --profile B`: both profiles are the
/// line's, the in-process readers get both vendors' blank cards in turn,
/// and each record's attempt names the profile of its card; a bad second
/// profile is named before any card.
#[test]
fn the_line_takes_the_profiles_given_on_the_command_line() {
    let data = tempfile::tempdir().expect("tempdir");
    let batch = data.path().join("b.jsonl");
    let records = line_support::batch(&batch, 4, 1719);
    let (domestic, reference) = (profile_file("domestic"), profile_file("reference-card"));
    let (d, r) = (
        domestic.to_str().expect("path"),
        reference.to_str().expect("path"),
    );
    let journal = data.path().join("j.sqlite");
    let j = journal.to_str().expect("path");
    let bad = data.path().join("no-such-profile.toml");
    let out = cli(
        data.path(),
        &[
            "line",
            "run",
            batch.to_str().expect("path"),
            "--profile",
            d,
            "--profile",
            bad.to_str().expect("path"),
            "--sim-readers",
            "1",
            "--journal",
            j,
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no-such-profile.toml"), "{err}");
    assert!(!journal.exists(), "the journal was opened: {err}");

    let out = cli(
        data.path(),
        &[
            "line",
            "run",
            batch.to_str().expect("path"),
            "--profile",
            d,
            "--profile",
            r,
            "--sim-readers",
            "2",
            "--timing",
            "none",
            "--plain",
            "--operator",
            "t",
            "--journal",
            j,
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "cards taken as the first of these profiles that recognizes them: {DOMESTIC}, {REFERENCE}"
        )),
        "{err}"
    );
    let mut used = HashSet::new();
    for id in records.keys() {
        let out = cli(data.path(), &["line", "record", id, "--journal", j]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let good = text
            .lines()
            .find(|l| l.starts_with("  attempt ") && l.contains(": GOOD on card"))
            .unwrap_or_else(|| panic!("no good attempt: {text}"));
        for name in [REFERENCE, DOMESTIC] {
            if good.contains(&format!("({name})")) {
                used.insert(name);
            }
        }
    }
    assert_eq!(used.len(), 2, "both vendors' cards hold records: {used:?}");
}
