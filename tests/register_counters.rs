//! Counters and consulates on the shared PostgreSQL register (a real,
//! throwaway server per test), each station logged in with its own
//! database role:
//! - through the real pcscd and the real binary: the line (login `line1`)
//!   personalizes cards into the register and ships two to the consulate
//!   AE-DXB; the consulate's counter (login `counter_dxb`) activates one;
//!   a domestic counter (login `counter_1021`) takes a replacement request
//!   for it, and is refused one for the card that was shipped but never
//!   delivered; neither `counter_1021` nor `line1` can activate a card at
//!   AE-DXB, and they are stopped before the card is touched;
//! - the roles themselves, in SQL under each login and through the
//!   library: the database refuses what a role may not do;
//! - bad configuration through the binary: every message names the
//!   register, and no password ever appears in the output or the logs.

mod activate_support;
mod common;
mod pg_support;

use activate_support::Holder;
use cardsmith::cli::perso::{CardArgs, SideFromArgs};
use cardsmith::perso::side::IssuerSide;
use cardsmith::register::journal::*;
use cardsmith::register::pg::{PgJournal, PgOptions};
use cardsmith::register::pgconf;
use cardsmith::register::pgschema::{self, RoleKind};
use cardsmith::sim::faults::Faults;
use cardsmith::sim::feeder::{FeedOptions, Feeder};
use cardsmith::sim::timing::Timing;
use cardsmith::sim::{SimCard, SimConfig};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const COUNTER: &str = "Virtual PCD 00 00";
const PINS: &str = "480913\n480913\n73920461\n73920461\n";
const DXB: &str = "AE-DXB";

/// Passwords of the logins (tests only; each must never be printed).
const LOGINS: &[(&str, &str)] = &[
    ("line1", "Line1-pw-7Hq2"),
    ("counter_dxb", "Dxb-pw-Xk91m"),
    ("counter_1021", "Thr-pw-Pq55z"),
    ("sup1", "Sup-pw-Lm30c"),
];

fn password(login: &str) -> &'static str {
    LOGINS
        .iter()
        .find(|(l, _)| *l == login)
        .map(|(_, p)| *p)
        .expect("known login")
}

fn assert_no_password(out: &str) {
    for (_, pw) in LOGINS {
        assert!(!out.contains(pw), "a password was printed:\n{out}");
    }
}

/// The password in a superuser URL `postgresql://postgres:PW@host:port/db`.
fn url_password(url: &str) -> &str {
    let userinfo = url
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .map(|(u, _)| u)
        .expect("userinfo");
    userinfo.split_once(':').map(|(_, p)| p).expect("password")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The register with the programme's logins: `line1` (line), `counter_dxb`
/// (counter, AE-DXB), `counter_1021` (counter, 1021), `sup1` (supervisor).
struct Register {
    cluster: pg_support::Cluster,
    /// Superuser URL of the register database (password included).
    admin: String,
    passfile: PathBuf,
}

impl Register {
    fn start() -> Register {
        let cluster = pg_support::Cluster::start();
        let admin = cluster.register("register");
        let passfile = pg_support::passfile(cluster.path(), cluster.port, LOGINS);
        Register {
            cluster,
            admin,
            passfile,
        }
    }

    /// Create the logins with the library (the binary's `journal grant` is
    /// exercised in the pcscd test).
    fn grant_all(&self) {
        let mut c = postgres::Client::connect(&self.admin, postgres::NoTls).expect("admin");
        for (login, kind, office) in [
            ("line1", RoleKind::Line, None),
            ("counter_dxb", RoleKind::Counter, Some(DXB)),
            ("counter_1021", RoleKind::Counter, Some("1021")),
            ("sup1", RoleKind::Supervisor, None),
        ] {
            pgschema::grant(
                &mut c,
                "register",
                login,
                kind,
                office,
                Some(password(login).as_bytes()),
            )
            .expect("grant");
        }
    }

    fn url(&self, login: &str) -> String {
        self.cluster.url_for(login, "register")
    }

    /// The register through the library, logged in as `login` (password
    /// from the password file, as a station has it).
    fn journal(&self, login: &str) -> PgJournal {
        let mut t = pgconf::parse(&self.url(login), false).expect("url");
        t.config.password(password(login));
        PgJournal::open(
            t,
            PgOptions {
                lease: Duration::from_secs(30),
                retry_for: Duration::from_secs(5),
                max_connections: 2,
            },
        )
        .expect("open the register")
    }

    /// A plain SQL session as `login`.
    fn sql(&self, login: &str) -> postgres::Client {
        let mut cfg: postgres::Config = self.url(login).parse().expect("url");
        cfg.password(password(login));
        cfg.connect(postgres::NoTls).expect("sql login")
    }
}

/// The real binary with the register's password file and nothing else that
/// could carry a password.
fn run(data: &Path, passfile: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    run_env(data, passfile, args, stdin, &[])
}

fn run_env(
    data: &Path,
    passfile: &Path,
    args: &[&str],
    stdin: Option<&str>,
    envs: &[(&str, &str)],
) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cardsmith"));
    c.args(args)
        .env("CARDSMITH_DATA_DIR", data)
        .env("PGPASSFILE", passfile)
        .env_remove("PGPASSWORD")
        .env_remove("CARDSMITH_JOURNAL")
        .env_remove("CARDSMITH_ISSUER_KEY")
        .env_remove("CARDSMITH_OPERATOR")
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run cardsmith");
    if let Some(mut si) = child.stdin.take() {
        if let Some(t) = stdin {
            si.write_all(t.as_bytes()).expect("stdin");
        }
    }
    child.wait_with_output().expect("wait")
}

fn side(data: &Path) -> IssuerSide {
    IssuerSide::load(&CardArgs {
        data_dir: Some(data.to_path_buf()),
        ..CardArgs::default()
    })
    .expect("issuer side")
}

/// Rewrite the batch to hold only the records of `ids`, as the consulate
/// AE-DXB's.
fn to_consulate(batch: &Path, ids: &[&str]) {
    let text = std::fs::read_to_string(batch).expect("batch");
    let lines: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("json");
            if !ids.contains(&v["record_id"].as_str().unwrap_or("")) {
                return None;
            }
            v["issuing_office"] = serde_json::json!({"kind": "consulate", "code": DXB});
            Some(v.to_string())
        })
        .collect();
    assert_eq!(lines.len(), ids.len());
    std::fs::write(batch, lines.join("\n") + "\n").expect("rewrite batch");
}

/// `cardsmith line run` through pcscd on "Cardsmith Line 01", logged in to
/// the register as `line1` with the whole URL, password included, in
/// `CARDSMITH_JOURNAL`; the password is in neither its output nor its
/// report.
fn personalize(data: &Path, reg: &Register, batch: &Path) {
    use cardsmith::sim::line_readers::{line_reader_addr, line_reader_name};
    let side = side(data);
    let feeder = Feeder::start(FeedOptions {
        readers: vec![(line_reader_name(0), line_reader_addr(0))],
        out_dir: data.join("hopper"),
        count: None,
        config: SimConfig::default(),
        timing: Some(Timing::FAST),
        issuer_key: Some(side.key.expose().to_vec()),
        scp03: side.scp03.as_ref().map(|k| k.keys.clone()),
        handling: Duration::from_millis(100),
    })
    .expect("feeder");
    let url = format!(
        "postgresql://line1:{}@127.0.0.1:{}/register",
        password("line1"),
        reg.cluster.port
    );
    let o = run_env(
        data,
        &data.join("no-pgpass"),
        &[
            "line",
            "run",
            batch.to_str().expect("path"),
            "--reader",
            "Cardsmith Line 01",
            "--plain",
            "--operator",
            "line-tester",
            "--station",
            "line-station-1",
        ],
        None,
        &[("CARDSMITH_JOURNAL", &url)],
    );
    feeder.stop();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "line run:\n{t}");
    assert!(t.contains(&reg.url("line1")), "the register is named:\n{t}");
    assert_no_password(&t);
    let reports: Vec<PathBuf> = std::fs::read_dir(data.join("line/reports"))
        .expect("reports")
        .map(|f| f.expect("entry").path())
        .collect();
    assert!(!reports.is_empty());
    for f in reports {
        assert_no_password(&std::fs::read_to_string(&f).expect("report"));
    }
}

/// Card image and serial of each good record (the register's good cards).
fn cards(data: &Path, j: &dyn Journal) -> HashMap<String, (PathBuf, String)> {
    let mut out = HashMap::new();
    for f in std::fs::read_dir(data.join("hopper")).expect("hopper") {
        let f = f.expect("entry").path();
        let card = SimCard::open_image(&f, SimConfig::default()).expect("image");
        let serial = cardsmith::hex::compact(&card.serial());
        if let CardKnown::Good { record_id, .. } = j.card(&serial).expect("register") {
            out.insert(record_id, (f, serial));
        }
    }
    out
}

fn with_image<T>(image: &Path, f: impl FnOnce() -> T) -> T {
    let card = SimCard::open_image(image, SimConfig::default()).expect("image");
    let served = common::insert(card, 0, Faults::none());
    let out = f();
    served.remove().expect("remove the card");
    out
}

fn activate_as(
    data: &Path,
    reg: &Register,
    login: &str,
    office: &str,
    h: &Holder,
    operator: &str,
) -> Output {
    run(
        data,
        &reg.passfile,
        &[
            "activate",
            "card",
            "--office",
            office,
            "--reader",
            COUNTER,
            "--template",
            h.live.to_str().expect("path"),
            "--pins-from-fd",
            "0",
            "--operator",
            operator,
            "--station",
            &format!("{login}-station"),
            "--journal",
            &reg.url(login),
        ],
        Some(PINS),
    )
}

#[test]
fn a_consulate_activates_through_pcscd_and_replacements_at_another_office_follow_the_delivery() {
    let _guard = common::pcsc_lines();
    let reg = Register::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();

    // The logins, through the binary as the register's owner (the whole
    // URL with its password in CARDSMITH_JOURNAL, never in argv).
    let mut grants: Vec<(&str, Vec<&str>)> = vec![
        ("line1", vec!["--role", "line"]),
        ("counter_dxb", vec!["--role", "counter", "--office", DXB]),
        (
            "counter_1021",
            vec!["--role", "counter", "--office", "1021"],
        ),
        ("sup1", vec!["--role", "supervisor"]),
    ];
    for (login, role) in grants.drain(..) {
        let pwfile = data.join(format!("{login}.pw"));
        std::fs::write(&pwfile, format!("{}\n", password(login))).expect("pw file");
        let mut args = vec!["journal", "grant", login];
        args.extend(role);
        args.extend(["--password-file", pwfile.to_str().expect("p")]);
        let o = run_env(
            data,
            &reg.passfile,
            &args,
            None,
            &[
                ("CARDSMITH_JOURNAL", reg.admin.as_str()),
                ("RUST_LOG", "trace"),
            ],
        );
        let t = text(&o);
        assert_eq!(o.status.code(), Some(0), "grant {login}:\n{t}");
        assert!(t.contains(&format!("login {login} is cardsmith_")), "{t}");
        assert_no_password(&t);
        assert!(
            !t.contains(url_password(&reg.admin)),
            "the owner's password was printed:\n{t}"
        );
    }

    // The batch: two first-issue records, the consulate's.
    let (batch, holders) = activate_support::batch(data, 6, 31);
    let fi = activate_support::first_issues(&holders);
    assert!(fi.len() >= 2, "need two first-issue records");
    let (a, b) = (fi[0], fi[1]);
    to_consulate(&batch, &[a.id(), b.id()]);
    personalize(data, &reg, &batch);
    let sup = reg.journal("sup1");
    let cards = cards(data, &sup);
    let (img_a, serial_a) = cards.get(a.id()).expect("a's card").clone();
    let (img_b, serial_b) = cards.get(b.id()).expect("b's card").clone();

    // The line ships both to the consulate (the line role may ship).
    for h in [a, b] {
        let o = run(
            data,
            &reg.passfile,
            &[
                "activate",
                "ship",
                "--office",
                DXB,
                "--record",
                h.id(),
                "--operator",
                "dispatch1",
                "--journal",
                &reg.url("line1"),
            ],
            None,
        );
        let t = text(&o);
        assert_eq!(o.status.code(), Some(0), "ship:\n{t}");
        assert!(t.contains(&format!("to office {DXB}")), "{t}");
    }

    // A counter of another office cannot activate a consulate's card by
    // naming the consulate's office, nor can the line's login: both are
    // stopped before the card is touched.
    for (login, why) in [
        ("counter_1021", "for office 1021 only, not AE-DXB"),
        ("line1", "may not record deliveries"),
    ] {
        let o = with_image(&img_a, || {
            activate_as(data, &reg, login, DXB, a, "intruder")
        });
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{login}:\n{t}");
        assert!(
            t.contains(why) && t.contains(&format!("login {login}")),
            "{t}"
        );
        assert!(t.contains(&reg.url(login)), "the register is named:\n{t}");
        assert!(!t.contains("[1/5]"), "the card was touched:\n{t}");
        assert_no_password(&t);
    }
    assert!(sup.delivered(&serial_a).expect("q").is_none());

    // The consulate's counter activates it through pcscd.
    let o = with_image(&img_a, || {
        activate_as(data, &reg, "counter_dxb", DXB, a, "clerk-dxb")
    });
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains("ACTIVATED") && t.contains("delivered at office AE-DXB"),
        "{t}"
    );
    assert_no_password(&t);
    let d = sup.delivered(&serial_a).expect("q").expect("delivered");
    assert_eq!(
        (
            d.office.as_str(),
            d.delivered_by.as_str(),
            d.station.as_str()
        ),
        (DXB, "clerk-dxb", "counter_dxb-station")
    );
    assert_eq!(d.status, CardStatus::Activated);
    assert_eq!(
        d.login.as_deref(),
        Some("counter_dxb"),
        "the register names the login that delivered"
    );
    assert_eq!(sup.certificates(&serial_a).expect("certs").len(), 2);

    // Reported lost at home (office 1021): taken, because it was delivered.
    let o = run(
        data,
        &reg.passfile,
        &[
            "activate",
            "replace",
            "--office",
            "1021",
            "--reason",
            "loss",
            "--lost",
            "--card",
            &serial_a,
            "--operator",
            "clerk-thr",
            "--journal",
            &reg.url("counter_1021"),
            "--json",
        ],
        None,
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["request"]["office"], "1021", "{t}");
    assert_eq!(
        v["certificates_to_revoke"].as_array().map(|c| c.len()),
        Some(2)
    );
    let d = sup.delivered(&serial_a).expect("q").expect("delivered");
    assert_eq!(
        (d.status, d.status_by.as_str()),
        (CardStatus::Lost, "clerk-thr")
    );
    // Who did what, as the server authenticated them.
    let mut admin = postgres::Client::connect(&reg.admin, postgres::NoTls).expect("admin");
    let row = admin
        .query_one(
            "SELECT s.office, s.login, d.office, d.login, r.office, r.login
             FROM shipments s JOIN deliveries d USING (card_serial)
             JOIN replacements r ON r.previous_card = s.card_serial
             WHERE s.card_serial = $1",
            &[&serial_a],
        )
        .expect("q");
    let got: Vec<String> = (0..6).map(|i| row.get(i)).collect();
    assert_eq!(
        got,
        [DXB, "line1", DXB, "counter_dxb", "1021", "counter_1021"]
    );
    let o = run(
        data,
        &reg.passfile,
        &[
            "activate",
            "status",
            "--card",
            &serial_a,
            "--journal",
            &reg.url("sup1"),
        ],
        None,
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains("delivered at office AE-DXB")
            && t.contains("by clerk-dxb (station counter_dxb-station, register login counter_dxb)")
            && t.contains("status LOST"),
        "{t}"
    );

    // b was shipped to the consulate but never delivered: refused with the
    // register's reason, and nothing changed.
    let o = run(
        data,
        &reg.passfile,
        &[
            "activate",
            "replace",
            "--office",
            "1021",
            "--reason",
            "loss",
            "--lost",
            "--card",
            &serial_b,
            "--operator",
            "clerk-thr",
            "--journal",
            &reg.url("counter_1021"),
        ],
        None,
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(
        t.contains(&format!(
            "card {serial_b} was shipped to office AE-DXB but never delivered"
        )),
        "{t}"
    );
    assert!(sup.delivered(&serial_b).expect("q").is_none());
    assert!(sup.replacements(b.nid()).expect("q").is_empty());
    let events = sup.events(0).expect("events");
    assert!(events
        .iter()
        .any(|e| e.kind == "replacement refused" && e.operator == "clerk-thr"));
    assert!(events
        .iter()
        .any(|e| e.kind == "delivered" && e.operator == "clerk-dxb"));
    let _ = img_b;
}

fn load(j: &dyn Journal, who: &Who, ids: &[&str]) -> BatchInfo {
    let recs: Vec<NewRecord> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| NewRecord {
            record_id: id.to_string(),
            line: i as u64 + 1,
            request: None,
        })
        .collect();
    j.load_batch("b", "/b.jsonl", "digest-b", who, &recs, &[])
        .expect("load")
        .0
}

fn good() -> Finish {
    Finish {
        outcome: Some(Outcome::Good),
        stages: vec![("claimed".into(), 1)],
        apdus: 50,
        transcript_sha256: Some("ab".into()),
        ..Finish::default()
    }
}

fn who(station: &str) -> Who {
    Who {
        station: station.into(),
        operator: format!("{station}-operator"),
        reader: Some("r".into()),
    }
}

fn delivery(serial: &str, record: &str, office: &str) -> Delivery {
    Delivery {
        card_serial: serial.into(),
        record_id: record.into(),
        national_id: format!("00{record}"),
        office: office.into(),
        certificates: vec![],
    }
}

/// The register's refusal as cardsmith shows it.
fn refused_by_register(e: &JournalError, what: &str) {
    let m = e.to_string();
    assert!(matches!(e, JournalError::Refused(_)), "{m}");
    assert!(
        m.starts_with("the register refused it: ")
            && m.contains(what)
            && m.ends_with("(the role this station logs in with may not do this)"),
        "{m}"
    );
}

/// SQLSTATE 42501 (insufficient privilege, which row-level security
/// refusals share) from the server itself.
fn denied(r: std::result::Result<u64, postgres::Error>, what: &str) {
    let e = r.expect_err("the server refuses");
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "42501", "{}", db.message());
    assert!(db.message().contains(what), "{}", db.message());
}

#[test]
fn the_database_refuses_what_each_role_may_not_do() {
    let reg = Register::start();
    reg.grant_all();
    let line = reg.journal("line1");
    let dxb = reg.journal("counter_dxb");
    let thr = reg.journal("counter_1021");
    let sup = reg.journal("sup1");

    // The line's own work is allowed: load, claim, finish, ship.
    let b = load(&line, &who("line"), &["R-1", "R-2", "R-3", "R-4"]);
    for (rec, card) in [("R-1", "CARD-A"), ("R-2", "CARD-B")] {
        let c = line
            .claim(b.id, &who("line"), card)
            .expect("claim")
            .expect("some");
        assert_eq!(c.record_id, rec);
        line.finish(c.attempt_id, &good()).expect("good");
    }

    // A counter cannot claim, finish, requeue, load or ship: the server
    // says so, and cardsmith says it is the role.
    let e = dxb.claim(b.id, &who("dxb"), "CARD-X").expect_err("claim");
    refused_by_register(&e, "permission denied for table");
    let open = line
        .claim(b.id, &who("line"), "CARD-C")
        .expect("claim")
        .expect("some");
    let e = dxb.finish(open.attempt_id, &good()).expect_err("finish");
    refused_by_register(&e, "permission denied for table");
    let e = dxb.requeue(&who("dxb"), "R-4").expect_err("requeue");
    refused_by_register(&e, "permission denied for table records");
    let e = dxb
        .load_batch("x", "/x", "digest-x", &who("dxb"), &[], &[])
        .expect_err("load");
    refused_by_register(&e, "permission denied for table batches");
    let e = dxb
        .ship(&who("dxb"), "CARD-A", "R-1", "00R-1", DXB)
        .expect_err("ship");
    refused_by_register(&e, "permission denied for table shipments");
    line.ship(&who("line"), "CARD-A", "R-1", "00R-1", DXB)
        .expect("the line ships");
    line.ship(&who("line"), "CARD-B", "R-2", "00R-2", "1021")
        .expect("the line ships");
    // And through the binary: the message says it is the role.
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(
        dir.path(),
        &reg.passfile,
        &[
            "line",
            "requeue",
            "R-4",
            "--journal",
            &reg.url("counter_dxb"),
        ],
        None,
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("error: the register refused it: permission denied for table records (the role this station logs in with may not do this)"),
        "{t}"
    );
    assert_no_password(&t);
    assert_eq!(
        line.record("R-3").expect("q").expect("R-3").state,
        "in_progress",
        "the line's claim is untouched"
    );
    // The same in plain SQL under the counter's login.
    let mut sql = reg.sql("counter_dxb");
    denied(
        sql.execute(
            "UPDATE records SET state = 'pending' WHERE record_id = 'R-3'",
            &[],
        ),
        "permission denied for table records",
    );
    denied(
        sql.execute(
            "INSERT INTO attempts (record_id, batch_id, kind, station, reader, operator, card_serial, started_at, outcome)
             VALUES ('R-4', $1, 'perso', 's', 'r', 'o', 'CARD-Y', 0, 'in_progress')",
            &[&b.id],
        ),
        "permission denied for table attempts",
    );
    denied(
        sql.execute(
            "UPDATE attempts SET outcome = 'good' WHERE card_serial = 'CARD-C'",
            &[],
        ),
        "permission denied for table attempts",
    );

    // A counter records deliveries for its own office only: CARD-B was
    // shipped to 1021, so the client's own checks pass and row-level
    // security refuses the consulate's login.
    let e = dxb
        .deliver(&who("dxb"), &delivery("CARD-B", "R-2", "1021"))
        .expect_err("another office");
    refused_by_register(&e, "row-level security policy for table \"deliveries\"");
    denied(
        sql.execute(
            "INSERT INTO deliveries (card_serial, record_id, national_id, office, at, station, operator, status, status_at, status_by)
             VALUES ('CARD-B', 'R-2', '00R-2', '1021', 0, 's', 'o', 'activated', 0, 'o')",
            &[],
        ),
        "row-level security",
    );
    let e = dxb.may_record_at("1021").expect_err("asked first");
    assert!(
        e.to_string()
            .contains("login counter_dxb records deliveries and replacement requests for office AE-DXB only, not 1021"),
        "{e}"
    );
    dxb.may_record_at(DXB).expect("its own office");

    // A line station cannot record a delivery at all.
    let e = line
        .deliver(&who("line"), &delivery("CARD-A", "R-1", DXB))
        .expect_err("line delivers");
    refused_by_register(&e, "permission denied for table deliveries");
    denied(
        reg.sql("line1").execute(
            "INSERT INTO deliveries (card_serial, record_id, national_id, office, at, station, operator, status, status_at, status_by)
             VALUES ('CARD-A', 'R-1', '00R-1', 'AE-DXB', 0, 's', 'o', 'activated', 0, 'o')",
            &[],
        ),
        "permission denied for table deliveries",
    );
    let e = line.may_record_at(DXB).expect_err("asked first");
    assert!(
        e.to_string()
            .contains("login line1 may not record deliveries"),
        "{e}"
    );
    assert!(line.delivered("CARD-A").expect("q").is_none());

    // The consulate delivers its own card; a domestic counter cannot file
    // the loss report under the consulate's office, and the refused
    // request changes nothing (one transaction).
    dxb.deliver(&who("dxb"), &delivery("CARD-A", "R-1", DXB))
        .expect("its own office");
    assert_eq!(
        sup.delivered("CARD-A")
            .expect("q")
            .expect("a")
            .login
            .as_deref(),
        Some("counter_dxb")
    );
    let e = thr
        .request_replacement(&who("thr"), "CARD-A", "loss", CardStatus::Lost, DXB)
        .expect_err("other office");
    refused_by_register(&e, "row-level security policy for table \"replacements\"");
    assert_eq!(
        thr.delivered("CARD-A").expect("q").expect("a").status,
        CardStatus::Activated
    );
    thr.request_replacement(&who("thr"), "CARD-A", "loss", CardStatus::Lost, "1021")
        .expect("at its own office, for a card delivered elsewhere");
    // The replacement card (the line's claim on R-3, made good) is handed
    // out at the consulate: its delivery closes the request taken at 1021
    // and marks the lost card replaced, both rows of another office.
    line.finish(open.attempt_id, &good()).expect("good");
    line.ship(&who("line"), "CARD-C", "R-3", "00R-1", DXB)
        .expect("ship the replacement");
    dxb.deliver(
        &who("dxb"),
        &Delivery {
            card_serial: "CARD-C".into(),
            record_id: "R-3".into(),
            national_id: "00R-1".into(),
            office: DXB.into(),
            certificates: vec![],
        },
    )
    .expect("the replacement is delivered");
    let old = sup.delivered("CARD-A").expect("q").expect("a");
    assert_eq!(
        (old.status, old.replaced_by.as_deref()),
        (CardStatus::Lost, Some("CARD-C"))
    );
    let reqs = sup.replacements("00R-1").expect("q");
    assert_eq!(
        (
            reqs.len(),
            reqs[0].office.as_str(),
            reqs[0].new_card.as_deref()
        ),
        (1, "1021", Some("CARD-C"))
    );

    // The login is the server's to write: a counter naming another login
    // in its own row is overruled, and cannot change it afterwards.
    reg.sql("counter_1021")
        .execute(
            "INSERT INTO deliveries (card_serial, record_id, national_id, office, at, station, operator, status, status_at, status_by, login)
             VALUES ('CARD-B', 'R-2', '00R-2', '1021', 0, 's', 'o', 'activated', 0, 'o', 'sup1')",
            &[],
        )
        .expect("its own office");
    assert_eq!(
        sup.delivered("CARD-B")
            .expect("q")
            .expect("b")
            .login
            .as_deref(),
        Some("counter_1021")
    );
    denied(
        reg.sql("counter_1021").execute(
            "UPDATE deliveries SET login = 'sup1' WHERE card_serial = 'CARD-B'",
            &[],
        ),
        "permission denied for table deliveries",
    );

    // A supervisor may do both: claim line work and deliver at any office.
    let c = sup
        .claim(b.id, &who("sup"), "CARD-D")
        .expect("claim")
        .expect("some");
    assert_eq!(c.record_id, "R-4");
    sup.finish(c.attempt_id, &good()).expect("good");
    sup.ship(&who("sup"), "CARD-D", "R-4", "00R-4", "2034")
        .expect("ship");
    sup.may_record_at("2034").expect("any office");
    sup.deliver(&who("sup"), &delivery("CARD-D", "R-4", "2034"))
        .expect("any office");
    let d = sup.delivered("CARD-D").expect("q").expect("d");
    assert_eq!(
        (d.office.as_str(), d.login.as_deref()),
        ("2034", Some("sup1"))
    );
}

#[test]
fn a_counter_revokes_only_through_a_replacement_at_its_office() {
    let reg = Register::start();
    reg.grant_all();
    let line = reg.journal("line1");
    let dxb = reg.journal("counter_dxb");
    let thr = reg.journal("counter_1021");
    let sup = reg.journal("sup1");
    let b = load(&line, &who("line"), &["R-1", "R-2", "R-3"]);
    for card in ["CARD-A", "CARD-B", "CARD-C"] {
        let c = line
            .claim(b.id, &who("line"), card)
            .expect("claim")
            .expect("some");
        line.finish(c.attempt_id, &good()).expect("good");
    }
    line.ship(&who("line"), "CARD-A", "R-1", "00R-1", DXB)
        .expect("ship");
    line.ship(&who("line"), "CARD-B", "R-2", "00R-2", "1021")
        .expect("ship");
    // CARD-C is the replacement of the holder of CARD-A, delivered at home.
    line.ship(&who("line"), "CARD-C", "R-3", "00R-1", "1021")
        .expect("ship");
    dxb.deliver(&who("dxb"), &delivery("CARD-A", "R-1", DXB))
        .expect("deliver");
    thr.deliver(&who("thr"), &delivery("CARD-B", "R-2", "1021"))
        .expect("deliver");
    let rev = |serial: &str, card: &str, reason| Revocation {
        serial: serial.into(),
        issuer: "CN=CA".into(),
        reason,
        revoked_at: 0,
        card_serial: card.into(),
        station: String::new(),
        operator: String::new(),
    };
    let policy = "row-level security policy for table \"revocations\"";
    // No replacement: no counter revokes, not even the delivering one.
    let e = dxb
        .record_revocation(
            &who("dxb"),
            &rev("a1", "CARD-A", RevocationReason::KeyCompromise),
        )
        .expect_err("no replacement");
    refused_by_register(&e, policy);
    dxb.request_replacement(&who("dxb"), "CARD-A", "loss", CardStatus::Lost, DXB)
        .expect("replacement at the consulate");
    // Replaced at Dubai: Dubai revokes, Tehran (no part in it) does not.
    let r = dxb
        .record_revocation(
            &who("dxb"),
            &rev("a1", "CARD-A", RevocationReason::KeyCompromise),
        )
        .expect("the replacing office revokes");
    assert_eq!(r.station, "dxb");
    let e = thr
        .record_revocation(
            &who("thr"),
            &rev("a2", "CARD-A", RevocationReason::Superseded),
        )
        .expect_err("another office");
    refused_by_register(&e, policy);
    // Tehran delivers the replacement: now it may supersede what is left.
    thr.deliver(
        &who("thr"),
        &Delivery {
            national_id: "00R-1".into(),
            ..delivery("CARD-C", "R-3", "1021")
        },
    )
    .expect("deliver the replacement");
    thr.record_revocation(
        &who("thr"),
        &rev("a2", "CARD-A", RevocationReason::Superseded),
    )
    .expect("the delivering office supersedes");
    // The line only reads; CRL numbers are the supervisor's.
    let e = line
        .record_revocation(
            &who("line"),
            &rev("b1", "CARD-B", RevocationReason::Superseded),
        )
        .expect_err("line");
    refused_by_register(&e, "permission denied for table revocations");
    assert_eq!(line.revocations("CN=CA").expect("reads").len(), 2);
    let e = dxb
        .record_crl(&who("dxb"), "CN=CA", 1, 2, 2)
        .expect_err("counter");
    refused_by_register(&e, "permission denied for table crls");
    assert_eq!(
        sup.record_crl(&who("sup"), "CN=CA", 1, 2, 2)
            .expect("sup")
            .number,
        1
    );
    // The supervisor revokes anywhere.
    sup.record_revocation(
        &who("sup"),
        &rev("b1", "CARD-B", RevocationReason::Superseded),
    )
    .expect("supervisor");
    let audit = sup.audit().expect("audit");
    assert!(audit.intact, "{:?}", audit.findings);
}

#[test]
fn a_login_given_another_role_loses_the_previous_one() {
    let reg = Register::start();
    let mut admin = postgres::Client::connect(&reg.admin, postgres::NoTls).expect("admin");
    let pw = Some(password("counter_dxb").as_bytes());
    pgschema::grant(
        &mut admin,
        "register",
        "counter_dxb",
        RoleKind::Line,
        None,
        pw,
    )
    .expect("grant line");
    pgschema::grant(
        &mut admin,
        "register",
        "line1",
        RoleKind::Line,
        None,
        Some(password("line1").as_bytes()),
    )
    .expect("grant line1");
    let line = reg.journal("line1");
    let b = load(&line, &who("line"), &["R-1"]);
    // The station's login is given to a consulate's counter.
    pgschema::grant(
        &mut admin,
        "register",
        "counter_dxb",
        RoleKind::Counter,
        Some(DXB),
        pw,
    )
    .expect("grant counter");
    let dxb = reg.journal("counter_dxb");
    let e = dxb
        .claim(b.id, &who("dxb"), "CARD-X")
        .expect_err("no longer a line station");
    refused_by_register(&e, "permission denied for table");
    let groups: Vec<String> = admin
        .query(
            "SELECT g.rolname::TEXT FROM pg_auth_members m
             JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
             WHERE u.rolname = 'counter_dxb' ORDER BY 1",
            &[],
        )
        .expect("q")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(groups, ["cardsmith_counter"]);
}

#[test]
fn bad_register_configuration_is_named_with_the_password_masked() {
    let reg = Register::start();
    reg.grant_all();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let port = reg.cluster.port;
    let status = |journal: Option<&str>, passfile: &Path, envs: &[(&str, &str)]| {
        let mut args = vec!["activate", "status", "--card", "0011223344556677"];
        if let Some(j) = journal {
            args.extend(["--journal", j]);
        }
        let o = run_env(data, passfile, &args, None, envs);
        let t = text(&o);
        assert_no_password(&t);
        (o.status.code(), t)
    };

    // It works with the password file: the card is simply unknown.
    let good = reg.url("counter_dxb");
    let (code, t) = status(Some(&good), &reg.passfile, &[("RUST_LOG", "trace")]);
    assert_eq!(code, Some(0), "{t}");
    assert!(
        t.contains("not shipped") && t.contains("not delivered"),
        "{t}"
    );
    // And with PGPASSWORD, or the whole URL in CARDSMITH_JOURNAL, traced.
    let nofile = data.join("no-such-pgpass");
    let (code, t) = status(
        Some(&good),
        &nofile,
        &[
            ("PGPASSWORD", password("counter_dxb")),
            ("RUST_LOG", "trace"),
        ],
    );
    assert_eq!(code, Some(0), "{t}");
    let whole = format!(
        "postgresql://counter_dxb:{}@127.0.0.1:{port}/register",
        password("counter_dxb")
    );
    let (code, t) = status(
        None,
        &nofile,
        &[("CARDSMITH_JOURNAL", &whole), ("RUST_LOG", "trace")],
    );
    assert_eq!(code, Some(0), "{t}");

    // A counter login's office must be one a counter can give; a line or
    // supervisor login has none. Nothing is created.
    for (role, office, why) in [
        (
            "counter",
            "ae-dxb",
            "--office \"ae-dxb\": expected 4 digits",
        ),
        ("counter", "1021 ", "--office \"1021 \": expected 4 digits"),
        ("line", "1021", "--office is for a counter login"),
    ] {
        let o = run_env(
            data,
            &nofile,
            &[
                "journal",
                "grant",
                "typo_login",
                "--role",
                role,
                "--office",
                office,
            ],
            None,
            &[("CARDSMITH_JOURNAL", reg.admin.as_str())],
        );
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{t}");
        assert!(t.contains(why), "{t}");
    }
    let mut admin = postgres::Client::connect(&reg.admin, postgres::NoTls).expect("admin");
    assert!(admin
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = 'typo_login'", &[])
        .expect("q")
        .is_none());

    // A password on the command line is refused (ps shows argv) and not
    // repeated.
    let (code, t) = status(Some(&whole), &reg.passfile, &[]);
    assert_eq!(code, Some(2), "{t}");
    assert!(t.contains("ps") && t.contains("counter_dxb:***@"), "{t}");

    // Wrong port: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("postgresql://counter_dxb@127.0.0.1:{closed}/register");
    let (code, t) = status(Some(&url), &reg.passfile, &[]);
    assert_eq!(code, Some(1), "{t}");
    assert!(
        t.contains(&format!("journal {url}: cannot reach the register")),
        "{t}"
    );
    // A port that is no number, with the password in the environment's URL.
    let bad = format!(
        "postgresql://counter_dxb:{}@127.0.0.1:port/register",
        password("counter_dxb")
    );
    let (code, t) = status(None, &nofile, &[("CARDSMITH_JOURNAL", &bad)]);
    assert_ne!(code, Some(0), "{t}");
    assert!(
        t.contains("postgresql://counter_dxb:***@127.0.0.1:port/register")
            && t.contains("not a valid PostgreSQL URL"),
        "{t}"
    );

    // A refused login: the wrong password in the password file, or in the
    // environment's URL.
    let wrong = pg_support::passfile(data, port, &[("counter_dxb", "Not-the-pw-42")]);
    let (code, t) = status(Some(&good), &wrong, &[]);
    assert_eq!(code, Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "journal {good}: login refused for user counter_dxb"
        )),
        "{t}"
    );
    assert!(!t.contains("Not-the-pw-42"), "{t}");
    let (code, t) = status(
        None,
        &nofile,
        &[(
            "CARDSMITH_JOURNAL",
            &format!("postgresql://counter_dxb:Not-the-pw-42@127.0.0.1:{port}/register"),
        )],
    );
    assert_eq!(code, Some(1), "{t}");
    assert!(t.contains("login refused for user counter_dxb"), "{t}");
    assert!(!t.contains("Not-the-pw-42"), "{t}");

    // No password anywhere.
    let (code, t) = status(Some(&good), &nofile, &[]);
    assert_eq!(code, Some(1), "{t}");
    assert!(t.contains("no password for user counter_dxb"), "{t}");

    // A database that does not exist.
    let url = reg.cluster.url_for("counter_dxb", "nosuch");
    let (code, t) = status(Some(&url), &reg.passfile, &[]);
    assert_eq!(code, Some(1), "{t}");
    assert!(
        t.contains(&format!("journal {url}: database nosuch does not exist")),
        "{t}"
    );

    // A database without the register.
    reg.cluster.database("empty");
    let url = reg.cluster.url_for("counter_dxb", "empty");
    let (code, t) = status(Some(&url), &reg.passfile, &[]);
    assert_eq!(code, Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "journal {url}: the database has no cardsmith register yet"
        )) && t.contains("cardsmith journal migrate"),
        "{t}"
    );

    // A register newer than this program.
    admin
        .execute(
            "INSERT INTO schema_migrations (version, name, sha256) VALUES (99, 'from the future', 'x')",
            &[],
        )
        .expect("insert");
    let (code, t) = status(Some(&good), &reg.passfile, &[]);
    assert_eq!(code, Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "journal {good}: schema version 99 is newer than this cardsmith understands (version {})",
            pgschema::latest()
        )),
        "{t}"
    );
}
