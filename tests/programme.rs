//! The programme view on a generated programme: records of several offices
//! and consulates with request dates spread over four months, loaded the
//! way the line loads a batch, personalized by the real line code on
//! simulated cards, shipped, and some delivered by the real counter; the
//! rest left waiting at the line, at the office, or made and not shipped.
//! `cardsmith programme status` (the binary) is then checked against counts
//! computed independently with plain SQL on the register's rows, on SQLite
//! and on a real PostgreSQL; and its HTML page is rendered in headless
//! Chromium (WebDriver), checked for its charts and right-to-left Persian
//! names, and photographed.

mod activate_support;
mod browser_support;
mod pg_support;

use activate_support::pins_file;
use cardsmith::activate::counter::{Counter, Screen, Templates};
use cardsmith::activate::display::RtlMode;
use cardsmith::activate::pinentry::LinePins;
use cardsmith::activate::policy::PinPolicy;
use cardsmith::biometric::FingerPosition;
use cardsmith::cli::perso::{CardArgs, SideFromArgs};
use cardsmith::line::station::{self, process_card, CardResult, StationCtx};
use cardsmith::perso::input::IsoTemplates;
use cardsmith::perso::samples::synthetic_capture;
use cardsmith::perso::samples::{ENROLMENT_CAPTURE, LIVE_CAPTURE};
use cardsmith::perso::side::IssuerSide;
use cardsmith::programme::{self, Day};
use cardsmith::record::{self, GregorianDate, JalaliDate, Record};
use cardsmith::register::journal::{Journal, NewRecord, Who};
use cardsmith::register::pg::{PgJournal, PgOptions};
use cardsmith::register::pgconf;
use cardsmith::register::pgschema::{self, RoleKind};
use cardsmith::register::sqlite::SqliteJournal;
use cardsmith::sim::vpcd::SharedCard;
use cardsmith::sim::{SimCard, SimConfig};
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{Channel, ExchangeOptions};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// (office kind, office code, request age in days today), in batch order.
/// The line makes the first ten cards; the first nine are shipped; the
/// counter delivers the ones in `DELIVER`.
const PLAN: &[(&str, &str, i64)] = &[
    ("domestic", "1021", 3),
    ("domestic", "1021", 12),
    ("domestic", "1021", 45),
    ("domestic", "1021", 70),
    ("domestic", "2101", 5),
    ("domestic", "2101", 25),
    ("domestic", "2101", 95),
    ("domestic", "4567", 33),
    ("consulate", "AE-DXB", 2),
    ("consulate", "AE-DXB", 40),
    ("consulate", "AE-DXB", 120),
    ("consulate", "TR-IST", 15),
    ("consulate", "TR-IST", 60),
];
const MADE: usize = 10;
const SHIPPED: usize = 9;
const DELIVER: &[usize] = &[0, 2, 4, 5, 8];
const PINS: [&str; 4] = ["480913", "480913", "73920461", "73920461"];

fn who(op: &str) -> Who {
    Who {
        station: "test-station".into(),
        operator: op.into(),
        reader: None,
    }
}

struct Holder {
    record: Record,
    live: PathBuf,
}

/// The batch file of `PLAN` (dates relative to `today`) and each holder's
/// live capture.
fn generate(dir: &Path, today: Day) -> (PathBuf, Vec<(usize, Holder)>) {
    let mut lines = Vec::new();
    let mut persons = Vec::new();
    for (i, (kind, code, age)) in PLAN.iter().enumerate() {
        let day = GregorianDate::from_day_number(today - age).expect("day");
        let request = JalaliDate::from_gregorian(day).expect("jalali");
        let mut first: Option<(u64, FingerPosition)> = None;
        let line = record::sample_records(1, 7000 + i as u64, request, &mut |person, pos| {
            first.get_or_insert((person, pos));
            synthetic_capture(person, pos, ENROLMENT_CAPTURE ^ person)
        })
        .pop()
        .expect("one record");
        let mut v: Value = serde_json::from_str(&line).expect("json");
        v["issuing_office"] = serde_json::json!({"kind": kind, "code": code});
        v["request"] = serde_json::json!({"type": "first_issue"});
        v["record_id"] = Value::String(format!("R-{:06}", 100 + i));
        lines.push(v.to_string());
        persons.push(first.expect("a finger"));
    }
    let path = dir.join("batch.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write batch");
    let loaded = record::load_records(&path, &IsoTemplates { max_minutiae: 60 }).expect("load");
    assert!(loaded.bad.is_empty(), "{:?}", loaded.bad);
    let mut out = Vec::new();
    for ((line, rec), (person, pos)) in loaded.good.into_iter().zip(persons) {
        let live = dir.join(format!("{}-live.iso", rec.record_id()));
        std::fs::write(&live, synthetic_capture(person, pos, LIVE_CAPTURE ^ person)).expect("live");
        out.push((line, Holder { record: rec, live }));
    }
    (path, out)
}

#[derive(Default)]
struct Log(Vec<String>);

impl Screen for Log {
    fn say(&mut self, text: &str) {
        self.0.push(text.to_string());
    }
    fn step(&mut self, n: u8, what: &str) {
        self.0.push(format!("[{n}] {what}"));
    }
    fn ask(&mut self, _: &str) -> std::io::Result<Option<String>> {
        Ok(None)
    }
}

fn channel(card: &SharedCard) -> Channel {
    Channel::new(
        Box::new(SimTransport::shared(card.clone(), Default::default())),
        ExchangeOptions::default(),
    )
}

/// Run the generated programme through the line and the counter on
/// `journal`. Also loads one record the way an older cardsmith did, with
/// no request date or office.
fn run_programme(dir: &Path, journal: Arc<dyn Journal>) {
    let today = programme::today();
    let (path, holders) = generate(dir, today);
    let side = || {
        IssuerSide::load(&CardArgs {
            data_dir: Some(dir.to_path_buf()),
            ..CardArgs::default()
        })
        .expect("issuer side")
    };
    let recs: Vec<NewRecord> = holders
        .iter()
        .map(|(line, h)| station::new_record(*line as u64, &h.record))
        .collect();
    let (b, aside) = journal
        .load_batch(
            "programme",
            &path.display().to_string(),
            "digest-programme",
            &who("line"),
            &recs,
            &[],
        )
        .expect("load");
    assert!(aside.is_empty(), "{aside:?}");
    journal
        .load_batch(
            "old",
            "/old.jsonl",
            "digest-old",
            &who("line"),
            &[NewRecord {
                record_id: "OLD-0001".into(),
                line: 1,
                request: None,
            }],
            &[],
        )
        .expect("old batch");
    let records: HashMap<String, Record> = holders
        .iter()
        .map(|(_, h)| (h.record.record_id().to_string(), h.record.clone()))
        .collect();
    let ctx = StationCtx::new(journal.clone(), b.id, records, side(), who("line"));
    std::fs::create_dir_all(dir.join("cards")).expect("cards dir");
    let mut cards: HashMap<String, SharedCard> = HashMap::new();
    for i in 0..MADE {
        let card = SimCard::open_image_provisioned(
            &dir.join("cards").join(format!("{i}.json")),
            SimConfig::default(),
            cardsmith::sim::Provision {
                issuer_key: Some(ctx.issuer.key.expose()),
                scp03: ctx.issuer.scp03.as_ref().map(|k| &k.keys),
            },
        )
        .expect("blank");
        let card: SharedCard = Arc::new(Mutex::new(card));
        match process_card(&ctx, &mut channel(&card), "sim reader") {
            CardResult::Good { record_id, .. } => {
                cards.insert(record_id, card);
            }
            other => panic!("personalization: {other:?}"),
        }
    }
    // The line takes records in batch order.
    for (_, h) in &holders[..MADE] {
        assert!(cards.contains_key(h.record.record_id()));
    }
    for (_, h) in &holders[..SHIPPED] {
        let r = &h.record;
        let serial = cardsmith::hex::compact(&cards[r.record_id()].lock().expect("card").serial());
        journal
            .ship(
                &who("dispatch"),
                &serial,
                r.record_id(),
                r.national_id(),
                &r.issuing_office().code(),
            )
            .expect("ship");
    }
    let side = side();
    let pins = pins_file(dir, "pins.txt", &PINS);
    for &i in DELIVER {
        let h = &holders[i].1;
        let office = h.record.issuing_office().code();
        let counter = Counter {
            side: &side,
            others: &[],
            journal: journal.as_ref(),
            who: who("clerk"),
            office: office.clone(),
            policy: PinPolicy::default(),
            rtl: RtlMode::Visual,
            photo_dir: dir.join("photos"),
            pin_rounds: 5,
        };
        let text = std::fs::read_to_string(&pins).expect("pins");
        let mut input = LinePins::new(Box::new(std::io::Cursor::new(text.into_bytes())), "test");
        input.echo_prompts = false;
        let mut log = Log::default();
        let r = counter.activate(
            &mut channel(&cards[h.record.record_id()]),
            &mut log,
            &mut input,
            &mut Templates::Files(vec![h.live.clone()]),
        );
        if let Err(e) = r {
            panic!("activation at {office}: {e:?}\n{}", log.0.join("\n"));
        }
    }
}

/// Plain SQL on the register's rows, the same text on both backends
/// (every value read as text).
enum Db {
    Sqlite(rusqlite::Connection),
    Pg(postgres::Client),
}

impl Db {
    fn rows(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        match self {
            Db::Sqlite(c) => {
                let mut st = c.prepare(sql).expect(sql);
                let n = st.column_count();
                st.query_map([], |r| {
                    (0..n).map(|i| r.get::<_, Option<String>>(i)).collect()
                })
                .expect(sql)
                .collect::<Result<_, _>>()
                .expect(sql)
            }
            Db::Pg(c) => c
                .query(sql, &[])
                .expect(sql)
                .iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.get::<_, Option<String>>(i))
                        .collect()
                })
                .collect(),
        }
    }
}

/// What the view should say for one office, counted here from rows.
#[derive(Debug, Default, Clone, PartialEq)]
struct Expect {
    requests: u64,
    made: u64,
    shipped: u64,
    delivered: u64,
    under_1w: u64,
    w1_to_1m: u64,
    over_1m: u64,
    age_unknown: u64,
    days: Vec<i64>,
    uncollected: u64,
}

fn num(v: &Option<String>) -> i64 {
    v.as_deref().expect("value").parse().expect("number")
}

fn code(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "unknown".into())
}

/// Counts per office code (`unknown` for rows without one), with the view
/// taken at `as_of` and `uncollected_after` days.
fn independent(db: &mut Db, as_of: Day, uncollected_after: i64) -> BTreeMap<String, Expect> {
    let mut m: BTreeMap<String, Expect> = BTreeMap::new();
    for r in db.rows("SELECT office_code, CAST(COUNT(*) AS TEXT) FROM records GROUP BY office_code")
    {
        m.entry(code(&r[0])).or_default().requests = num(&r[1]) as u64;
    }
    for r in db.rows(
        "SELECT r.office_code, CAST(COUNT(*) AS TEXT) FROM records r JOIN attempts a
           ON a.record_id = r.record_id AND a.outcome = 'good' GROUP BY r.office_code",
    ) {
        m.entry(code(&r[0])).or_default().made = num(&r[1]) as u64;
    }
    for r in db.rows(
        "SELECT r.office_code, CAST(COUNT(*) AS TEXT) FROM records r JOIN shipments s ON s.record_id = r.record_id
         GROUP BY r.office_code",
    ) {
        m.entry(code(&r[0])).or_default().shipped = num(&r[1]) as u64;
    }
    // Delivered: request day and delivery time of each.
    for r in db.rows(
        "SELECT r.office_code, CAST(r.request_day AS TEXT), CAST(d.at AS TEXT)
         FROM records r JOIN shipments s ON s.record_id = r.record_id
         JOIN deliveries d ON d.card_serial = s.card_serial",
    ) {
        let e = m.entry(code(&r[0])).or_default();
        e.delivered += 1;
        if r[1].is_some() {
            let delivered_day = (num(&r[2]) + 12_600_000).div_euclid(86_400_000);
            e.days.push(delivered_day - num(&r[1]));
        }
    }
    // Waiting: not delivered.
    for r in db.rows(
        "SELECT office_code, CAST(request_day AS TEXT) FROM records r WHERE NOT EXISTS (
             SELECT 1 FROM shipments s JOIN deliveries d ON d.card_serial = s.card_serial
             WHERE s.record_id = r.record_id)",
    ) {
        let e = m.entry(code(&r[0])).or_default();
        match &r[1] {
            None => e.age_unknown += 1,
            Some(_) => match as_of - num(&r[1]) {
                a if a < 7 => e.under_1w += 1,
                a if a <= 30 => e.w1_to_1m += 1,
                _ => e.over_1m += 1,
            },
        }
    }
    // Uncollected, at the office shipped to.
    for r in db.rows(
        "SELECT s.office, CAST(s.at AS TEXT) FROM shipments s
         WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.card_serial = s.card_serial)",
    ) {
        let shipped_day = (num(&r[1]) + 12_600_000).div_euclid(86_400_000);
        if as_of - shipped_day > uncollected_after {
            m.entry(code(&r[0])).or_default().uncollected += 1;
        }
    }
    m
}

/// Nearest rank, on a sorted copy.
fn nearest_rank(days: &[i64], p: usize) -> Option<i64> {
    let mut d = days.to_vec();
    d.sort();
    if d.is_empty() {
        return None;
    }
    let rank = (p * d.len()).div_ceil(100).max(1);
    Some(d[rank - 1])
}

fn cardsmith(journal: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cardsmith"))
        .args(["programme", "status"])
        .args(args)
        .env("CARDSMITH_JOURNAL", journal)
        .env("PGPASSFILE", "/nonexistent")
        .output()
        .expect("cardsmith");
    assert!(
        out.status.success(),
        "programme status {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Check one view (JSON from the binary) against the independent counts.
fn check_view(db: &mut Db, journal: &str, as_of: Day, after: i64) {
    let as_of_text = programme::jalali(as_of);
    let after_text = after.to_string();
    let out = cardsmith(
        journal,
        &[
            "--format",
            "json",
            "--as-of",
            &as_of_text,
            "--uncollected-after",
            &after_text,
        ],
    );
    let v: Value = serde_json::from_str(&out).expect("json");
    let want = independent(db, as_of, after);
    let rows = v["rows"].as_array().expect("rows");
    let offices: BTreeMap<String, &Value> = rows
        .iter()
        .filter(|r| r["level"] == "office")
        .map(|r| (r["code"].as_str().expect("code").to_string(), r))
        .collect();
    assert_eq!(
        offices.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "offices"
    );
    let mut all = Expect::default();
    for (c, e) in &want {
        let r = offices[c];
        let got = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{c}.{k}: {r}"));
        assert_eq!(got("requests"), e.requests, "{c} requests");
        assert_eq!(got("made"), e.made, "{c} made");
        assert_eq!(got("shipped"), e.shipped, "{c} shipped");
        assert_eq!(got("delivered"), e.delivered, "{c} delivered");
        assert_eq!(got("waiting_under_1w"), e.under_1w, "{c} <1w");
        assert_eq!(got("waiting_1w_to_1m"), e.w1_to_1m, "{c} 1w-1m");
        assert_eq!(got("waiting_over_1m"), e.over_1m, "{c} >1m");
        assert_eq!(got("waiting_age_unknown"), e.age_unknown, "{c} unknown age");
        assert_eq!(got("uncollected"), e.uncollected, "{c} uncollected");
        assert_eq!(
            r["median_days"].as_i64(),
            nearest_rank(&e.days, 50),
            "{c} median"
        );
        assert_eq!(r["p90_days"].as_i64(), nearest_rank(&e.days, 90), "{c} p90");
        let share = (!e.days.is_empty())
            .then(|| e.days.iter().filter(|d| **d <= 30).count() as f64 / e.days.len() as f64);
        match (r["share_within_30d"].as_f64(), share) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-4, "{c} share {a} vs {b}"),
            (a, b) => assert_eq!(a, b, "{c} share"),
        }
        all.requests += e.requests;
        all.delivered += e.delivered;
        all.uncollected += e.uncollected;
        all.days.extend(&e.days);
        all.under_1w += e.under_1w;
        all.over_1m += e.over_1m;
    }
    let p = rows.last().expect("programme row");
    assert_eq!(p["level"], "programme");
    assert_eq!(p["requests"].as_u64(), Some(all.requests));
    assert_eq!(p["delivered"].as_u64(), Some(all.delivered));
    assert_eq!(p["uncollected"].as_u64(), Some(all.uncollected));
    assert_eq!(p["waiting_under_1w"].as_u64(), Some(all.under_1w));
    assert_eq!(p["waiting_over_1m"].as_u64(), Some(all.over_1m));
    assert_eq!(p["median_days"].as_i64(), nearest_rank(&all.days, 50));
    assert_eq!(p["p90_days"].as_i64(), nearest_rank(&all.days, 90));
    // The kind rows add up their offices.
    for kind in ["domestic", "consulate", "unknown"] {
        let k = rows
            .iter()
            .find(|r| r["level"] == "kind" && r["kind"] == kind)
            .unwrap_or_else(|| panic!("kind {kind}"));
        let sum: u64 = rows
            .iter()
            .filter(|r| r["level"] == "office" && r["kind"] == kind)
            .map(|r| r["requests"].as_u64().expect("n"))
            .sum();
        assert_eq!(k["requests"].as_u64(), Some(sum), "{kind}");
    }
}

/// The scenario's own numbers, so that the independent counts are not
/// checked against themselves on a scenario that did not happen.
fn check_scenario(db: &mut Db) {
    let today = programme::today();
    let want = independent(db, today, 30);
    let total = |f: fn(&Expect) -> u64| want.values().map(f).sum::<u64>();
    assert_eq!(total(|e| e.requests), PLAN.len() as u64 + 1);
    assert_eq!(total(|e| e.made), MADE as u64);
    assert_eq!(total(|e| e.shipped), SHIPPED as u64);
    assert_eq!(total(|e| e.delivered), DELIVER.len() as u64);
    let mut days: Vec<i64> = want.values().flat_map(|e| e.days.clone()).collect();
    days.sort();
    let mut planned: Vec<i64> = DELIVER.iter().map(|&i| PLAN[i].2).collect();
    planned.sort();
    // A delivery made across Iran's midnight would add a day; the test
    // never checks time, but the plan must be what happened.
    assert!(
        days == planned || days.iter().zip(&planned).all(|(a, b)| a - b <= 1),
        "{days:?} vs {planned:?}"
    );
    assert_eq!(want["unknown"].age_unknown, 1);
}

fn check_all_views(db: &mut Db, journal: &str) {
    check_scenario(db);
    let today = programme::today();
    check_view(db, journal, today, 30);
    // Forty days on: shipped cards not collected are overdue, ages move.
    check_view(db, journal, today + 40, 30);
    check_view(db, journal, today + 40, 45);
    // A period: requests of the last 50 days only, by Gregorian dates.
    let out = cardsmith(
        journal,
        &[
            "--format",
            "json",
            "--from",
            &programme::gregorian(today - 50),
            "--to",
            &programme::gregorian(today),
        ],
    );
    let v: Value = serde_json::from_str(&out).expect("json");
    let n = PLAN.iter().filter(|p| p.2 <= 50).count() as u64;
    let all = v["rows"]
        .as_array()
        .and_then(|r| r.last())
        .expect("programme");
    assert_eq!(all["requests"].as_u64(), Some(n), "{all}");
    assert_eq!(all["waiting_age_unknown"].as_u64(), Some(0));
    // CSV and text carry the same programme row.
    let csv = cardsmith(journal, &["--format", "csv"]);
    let last = csv.lines().last().expect("csv");
    assert!(
        last.starts_with(&format!("programme,all,all,,,{},", PLAN.len() + 1)),
        "{csv}"
    );
    let text = cardsmith(journal, &["--calendar", "gregorian"]);
    assert!(text.contains("whole programme"), "{text}");
    assert!(
        text.contains("Tehran Central Civil Registry Office"),
        "{text}"
    );
}

#[test]
fn the_view_matches_independent_counts_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.sqlite");
    let j: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&path).expect("journal"));
    run_programme(dir.path(), j);
    let mut db = Db::Sqlite(rusqlite::Connection::open(&path).expect("sqlite"));
    check_all_views(&mut db, &path.display().to_string());
}

#[test]
fn the_view_matches_independent_counts_on_postgresql() {
    let cluster = pg_support::Cluster::start();
    let url = cluster.register("register");
    let t = pgconf::parse(&url, false).expect("url");
    let j: Arc<dyn Journal> = Arc::new(
        PgJournal::open(
            t,
            PgOptions {
                retry_for: Duration::from_secs(60),
                ..PgOptions::default()
            },
        )
        .expect("open"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    run_programme(dir.path(), j);
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    // The request of a record is fixed once loaded, for every role.
    let e = client
        .execute(
            "UPDATE records SET office_code = '9999' WHERE office_code = '1021'",
            &[],
        )
        .expect_err("request changed");
    assert!(
        e.to_string().contains("fixed once loaded")
            || format!("{e:?}").contains("fixed once loaded"),
        "{e:?}"
    );
    let mut db = Db::Pg(client);
    check_all_views(&mut db, &url);

    // Who reads the view (docs/programme.md): the supervisor, and the line
    // and the counters, which already read its tables; all see the same.
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("admin");
    let logins = [
        ("sup1", RoleKind::Supervisor, None),
        ("line1", RoleKind::Line, None),
        ("counter_dxb", RoleKind::Counter, Some("AE-DXB")),
    ];
    let mut passwords = Vec::new();
    for (login, kind, office) in logins {
        let pw = format!("pw-{login}-0123456789");
        pgschema::grant(
            &mut admin,
            "register",
            login,
            kind,
            office,
            Some(pw.as_bytes()),
        )
        .expect("grant");
        passwords.push((login, pw));
    }
    let pairs: Vec<(&str, &str)> = passwords.iter().map(|(l, p)| (*l, p.as_str())).collect();
    let passfile = pg_support::passfile(cluster.path(), cluster.port, &pairs);
    let rows = |journal: &str, passfile: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_cardsmith"))
            .args(["programme", "status", "--format", "json"])
            .env("CARDSMITH_JOURNAL", journal)
            .env("PGPASSFILE", passfile)
            .output()
            .expect("cardsmith");
        assert!(
            out.status.success(),
            "{journal}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        v["rows"].clone()
    };
    let want = rows(&url, "/nonexistent");
    for (login, _, _) in logins {
        let journal = cluster.url_for(login, "register");
        assert_eq!(
            rows(&journal, &passfile.display().to_string()),
            want,
            "{login}"
        );
    }
    // Not even the line, which loads the records, changes a request.
    let mut line = postgres::Client::connect(
        &format!(
            "postgresql://line1:{}@127.0.0.1:{}/register",
            passwords[1].1, cluster.port
        ),
        postgres::NoTls,
    )
    .expect("line1");
    let e = line
        .execute("UPDATE records SET request_day = request_day + 1", &[])
        .expect_err("request changed by the line");
    assert!(format!("{e:?}").contains("fixed once loaded"), "{e:?}");
}

/// The HTML page in a real browser: charts with the bars the data calls
/// for, Persian names laid out right to left, and a screenshot.
#[test]
fn the_html_page_renders_in_chromium_with_rtl_names_and_charts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.sqlite");
    let j: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&path).expect("journal"));
    run_programme(dir.path(), j);
    let journal = path.display().to_string();
    let as_of = programme::today() + 40;
    let page = dir.path().join("status.html");
    cardsmith(
        &journal,
        &[
            "--format",
            "html",
            "--as-of",
            &programme::gregorian(as_of),
            "--out",
            &page.display().to_string(),
        ],
    );
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(!html.contains("<script"), "no script in the page");
    for external in [
        "src=", "href=", "url(", "@import", "<link", "<iframe", "<object",
    ] {
        assert!(
            !html.contains(external),
            "the page fetches something: {external}"
        );
    }
    let mut db = Db::Sqlite(rusqlite::Connection::open(&path).expect("sqlite"));
    let want = independent(&mut db, as_of, 30);

    let (w, h) = (1280u32, 900u32);
    let b = browser_support::Browser::start(w, h).expect("chromedriver");
    b.goto(&format!("file://{}", page.display()))
        .expect("open page");
    let root = b.find("html").expect("html");
    assert_eq!(b.css_value(&root, "direction").expect("dir"), "rtl");

    // Histogram: one bar per bin, the counts adding to the deliveries.
    let bars = b.find_all("svg#delivery-histogram rect.bar").expect("bars");
    assert_eq!(bars.len(), programme::HISTOGRAM_BINS.len());
    let mut sum = 0;
    for bar in &bars {
        sum += b
            .attribute(bar, "data-count")
            .expect("attr")
            .expect("count")
            .parse::<u64>()
            .expect("n");
    }
    assert_eq!(sum, DELIVER.len() as u64);

    // Backlog: one stacked bar per office with requests waiting, one
    // segment per non-empty age bucket, with the independent counts.
    let waiting: BTreeMap<&String, &Expect> = want
        .iter()
        .filter(|(_, e)| e.under_1w + e.w1_to_1m + e.over_1m + e.age_unknown > 0)
        .collect();
    let groups = b.find_all("svg#backlog g.office-bar").expect("groups");
    assert_eq!(groups.len(), waiting.len());
    for g in &groups {
        let c = b.attribute(g, "data-code").expect("a").expect("code");
        let e = waiting[&c];
        let mut seen = BTreeMap::new();
        for s in b.find_all_in(g, "rect.segment").expect("segments") {
            let bucket = b.attribute(&s, "data-bucket").expect("a").expect("bucket");
            let n: u64 = b
                .attribute(&s, "data-count")
                .expect("a")
                .expect("n")
                .parse()
                .expect("n");
            // Drawn, with a width.
            assert!(b.rect(&s).expect("rect").width > 0.0, "{c} {bucket}");
            seen.insert(bucket, n);
        }
        let expect: BTreeMap<String, u64> = [
            ("under_1w", e.under_1w),
            ("1w_to_1m", e.w1_to_1m),
            ("over_1m", e.over_1m),
            ("age_unknown", e.age_unknown),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_string(), n))
        .collect();
        assert_eq!(seen, expect, "{c}");
    }

    // Ranking: offices with a delivery, best share within 30 days first.
    let mut ranked: Vec<(String, f64, usize)> = want
        .iter()
        .filter(|(_, e)| !e.days.is_empty())
        .map(|(c, e)| {
            let s = e.days.iter().filter(|d| **d <= 30).count() as f64 / e.days.len() as f64;
            (c.clone(), s, e.days.len())
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .expect("share")
            .then(b.2.cmp(&a.2))
            .then(a.0.cmp(&b.0))
    });
    let bars = b.find_all("svg#ranking rect.bar").expect("ranking");
    let codes: Vec<String> = bars
        .iter()
        .map(|r| b.attribute(r, "data-code").expect("a").expect("code"))
        .collect();
    assert_eq!(
        codes,
        ranked.iter().map(|r| r.0.clone()).collect::<Vec<_>>()
    );

    // Persian office names: right to left, right-aligned in their cells,
    // the first letter at the right.
    let cell = b
        .find(r#"table#offices tr[data-code="1021"] td.name-fa"#)
        .expect("Tehran's row");
    assert_eq!(
        b.text(&cell).expect("text"),
        "اداره ثبت احوال تهران - مرکزی"
    );
    let dubai = b.find_by_text("Consulate General in Dubai").expect("Dubai");
    assert_eq!(b.tag_name(&dubai).expect("tag"), "td");
    assert_eq!(
        b.attribute(&dubai, "dir").expect("dir").as_deref(),
        Some("ltr")
    );
    let names = b.find_all("table#offices td.name-fa").expect("names");
    assert_eq!(
        names.len(),
        want.len() + 3 + 1,
        "office, kind and programme rows"
    );
    for c in &names {
        assert_eq!(b.css_value(c, "direction").expect("dir"), "rtl");
        let geo = b
            .execute(
                "const c = arguments[0]; const t = c.firstChild;
                 const r = document.createRange(); r.selectNodeContents(c);
                 const box = r.getBoundingClientRect(); const cell = c.getBoundingClientRect();
                 const pad = parseFloat(getComputedStyle(c).paddingRight);
                 const first = document.createRange(); first.setStart(t, 0); first.setEnd(t, 1);
                 const n = t.length; const last = document.createRange(); last.setStart(t, n - 1); last.setEnd(t, n);
                 return [box.left, box.right, cell.left, cell.right, pad,
                         first.getBoundingClientRect().right, last.getBoundingClientRect().right];",
                vec![browser_support::Browser::element_arg(c)],
            )
            .expect("geometry");
        let f = |i: usize| geo[i].as_f64().expect("number");
        let (left, right, cell_left, cell_right, pad) = (f(0), f(1), f(2), f(3), f(4));
        assert!(
            (cell_right - pad - right).abs() < 1.5,
            "text not right-aligned: {geo}"
        );
        assert!(left > cell_left + pad + 5.0, "text fills the cell: {geo}");
        let text = b.text(c).expect("text");
        if text
            .chars()
            .next()
            .is_some_and(|ch| ('\u{0600}'..='\u{06FF}').contains(&ch))
        {
            assert!(
                f(5) > f(6),
                "{text:?}: first letter not right of the last: {geo}"
            );
        }
    }

    // A screenshot of the window.
    let png = b.screenshot().expect("screenshot");
    assert_eq!(browser_support::png_size(&png), Some((w, h)));
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("programme-status.png");
    std::fs::write(&shot, &png).expect("write screenshot");
    // The charts are in view and painted: the page is not blank.
    let hist = b.find("svg#delivery-histogram").expect("histogram");
    let part = b.element_screenshot(&hist).expect("chart screenshot");
    assert!(browser_support::png_size(&part).is_some_and(|(w, h)| w > 100 && h > 100));
}

/// Bad arguments are refused before the register is read, naming the
/// option or the file and line, with exit code 2.
#[test]
fn bad_arguments_name_what_was_expected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("journal.sqlite");
    drop(SqliteJournal::open(&journal).expect("journal"));
    let bad = dir.path().join("offices.csv");
    std::fs::write(
        &bad,
        "# directory\n1021,domestic,a,b,c\nAE-DXB,office,a,b,c\n",
    )
    .expect("write");
    let bad = bad.display().to_string();
    let j = journal.display().to_string();
    let missing = dir.path().join("nope.sqlite").display().to_string();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--journal", &j, "--from", "1404/13/01"],
            "--from \"1404/13/01\": month 13 does not exist".into(),
        ),
        (
            vec!["--journal", &j, "--as-of", "2025-02-30"],
            "--as-of \"2025-02-30\": expected a Jalali date".into(),
        ),
        (
            vec!["--journal", &j, "--from", "2025-10", "--to", "1404/06/31"],
            "--from 2025-10 is after --to 1404/06/31".into(),
        ),
        (
            vec!["--journal", &j, "--offices", &bad],
            format!("{bad}:3: kind \"office\"; expected domestic or consulate"),
        ),
        (
            vec!["--journal", &missing],
            format!("journal {missing}: no such file"),
        ),
    ];
    for (args, want) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_cardsmith"))
            .args(["programme", "status"])
            .args(&args)
            .env_remove("CARDSMITH_JOURNAL")
            .output()
            .expect("cardsmith");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // The missing journal was not created by asking.
    assert!(!Path::new(&missing).exists());
    // An empty register is a programme of zeros, in every format.
    for f in ["text", "json", "csv", "html"] {
        let out = cardsmith(&j, &["--format", f]);
        assert!(!out.is_empty(), "{f}");
    }
}
