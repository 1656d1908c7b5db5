//! The PostgreSQL register under faults and moves: connections cut and the
//! server restarted while stations claim and commit, the one-time copy of
//! an SQLite journal, and migrations applied once.

mod pg_support;

use cardsmith::register::journal::*;
use cardsmith::register::pg::{PgJournal, PgOptions};
use cardsmith::register::sqlite::SqliteJournal;
use cardsmith::register::{copy, pgconf, pgschema};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn who(station: &str) -> Who {
    Who {
        station: station.into(),
        operator: "tester".into(),
        reader: Some("r1".into()),
    }
}

fn open(url: &str, app: &str) -> PgJournal {
    let mut t = pgconf::parse(url, false).expect("url");
    t.config.application_name(app);
    PgJournal::open(
        t,
        PgOptions {
            lease: Duration::from_secs(30),
            retry_for: Duration::from_secs(90),
            max_connections: 2,
        },
    )
    .expect("open")
}

/// `n` records; the even ones carry their request (date and office), the
/// odd ones none, as records loaded by an older cardsmith.
fn records(n: usize) -> Vec<NewRecord> {
    (1..=n)
        .map(|i| NewRecord {
            record_id: format!("R-{i:04}"),
            line: i as u64,
            request: (i % 2 == 0).then(|| RequestInfo {
                day: 20_000 + i as i64,
                office_kind: "consulate".into(),
                office_code: "AE-DXB".into(),
            }),
        })
        .collect()
}

fn good() -> Finish {
    Finish {
        outcome: Some(Outcome::Good),
        apdus: 42,
        ..Finish::default()
    }
}

#[test]
fn stations_ride_through_cut_connections_and_a_server_restart() {
    let c = pg_support::Cluster::start();
    let url = c.register("register");
    let j = Arc::new(open(&url, "cardsmith chaos"));
    let (b, _) = j
        .load_batch("b", "/b", "d1", &who("loader"), &records(120), &[])
        .expect("load");
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = vec![];
    for s in 0..3 {
        let (j, stop) = (j.clone(), stop.clone());
        workers.push(std::thread::spawn(move || {
            let w = who(&format!("station-{s}"));
            let mut done = 0;
            for n in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let serial = format!("CARD-{s}-{n:05}");
                let claim = j.claim(b.id, &w, &serial).expect("claim survives faults");
                let Some(claim) = claim else { break };
                std::thread::sleep(Duration::from_millis(15));
                j.finish(claim.attempt_id, &good())
                    .expect("finish survives faults");
                done += 1;
            }
            done
        }));
    }
    // Cut every connection of the stations a few times, then restart the
    // server once, while they work.
    let mut cut = 0;
    for i in 0..6 {
        std::thread::sleep(Duration::from_millis(250));
        if i == 3 {
            c.restart();
        } else {
            cut += c.terminate("cardsmith chaos");
        }
    }
    assert!(cut > 0, "the test cut no connection");
    let done: usize = workers.into_iter().map(|h| h.join().expect("worker")).sum();
    stop.store(true, Ordering::SeqCst);
    assert_eq!(done, 120, "every claim was finished");
    // Checked in the database itself.
    let mut a = c.admin_client();
    let url_db = url.clone();
    let mut db = postgres::Client::connect(&url_db, postgres::NoTls).expect("db");
    let doubled = db
        .query(
            "SELECT record_id FROM attempts WHERE outcome = 'good' GROUP BY record_id HAVING COUNT(*) > 1",
            &[],
        )
        .expect("query");
    assert!(doubled.is_empty(), "a record on two good cards");
    let open_rows: i64 = db
        .query_one("SELECT COUNT(*) FROM records WHERE state <> 'good'", &[])
        .expect("query")
        .get(0);
    assert_eq!(open_rows, 0);
    let good_cards: i64 = db
        .query_one(
            "SELECT COUNT(DISTINCT card_serial) FROM attempts WHERE outcome = 'good'",
            &[],
        )
        .expect("query")
        .get(0);
    assert_eq!(good_cards, 120);
    drop(a.batch_execute("SELECT 1"));
}

#[test]
fn migrations_apply_once_and_edited_history_is_refused() {
    let c = pg_support::Cluster::start();
    let url = c.database("register");
    let mut db = postgres::Client::connect(&url, postgres::NoTls).expect("db");
    let first = pgschema::migrate(&mut db, "register").expect("migrate");
    assert_eq!((first.from, first.to), (0, pgschema::latest()));
    assert_eq!(first.applied.len(), pgschema::MIGRATIONS.len());
    let again = pgschema::migrate(&mut db, "register").expect("again");
    assert!(again.applied.is_empty(), "nothing applied twice");
    db.execute(
        "UPDATE schema_migrations SET sha256 = 'edited' WHERE version = 1",
        &[],
    )
    .expect("tamper");
    let e = pgschema::migrate(&mut db, "register")
        .expect_err("edited history")
        .to_string();
    assert!(e.contains("migration 1") && e.contains("edited"), "{e}");
}

/// A station's SQLite journal with a bit of everything in it.
fn busy_sqlite(path: &std::path::Path) -> SqliteJournal {
    let j = SqliteJournal::open(path).expect("sqlite");
    let w = who("old-station");
    let aside = vec![SetAside {
        record_id: None,
        line: 9,
        reason: "national_id: check digit — Persian text کارت".into(),
    }];
    let (b, _) = j
        .load_batch("b", "/b", "d1", &w, &records(6), &aside)
        .expect("load");
    for n in 0..4 {
        let cl = j
            .claim(b.id, &w, &format!("CARD-{n}"))
            .expect("claim")
            .expect("some");
        let f = if n == 2 {
            Finish {
                outcome: Some(Outcome::Rejected),
                reason_class: Some("verify: DG1".into()),
                reason: Some("mismatch".into()),
                card_terminated: true,
                max_rejects: 3,
                ..Finish::default()
            }
        } else {
            Finish {
                stages: vec![("claimed".into(), 5), ("verified".into(), 9)],
                ..good()
            }
        };
        j.finish(cl.attempt_id, &f).expect("finish");
    }
    j.reject_card(&w, "CARD-X", "not blank", false)
        .expect("reject");
    j.ship(&w, "CARD-0", "R-0001", "0012345678", "AE-DXB")
        .expect("ship");
    j.deliver(
        &who("dxb"),
        &Delivery {
            card_serial: "CARD-0".into(),
            record_id: "R-0001".into(),
            national_id: "0012345678".into(),
            office: "AE-DXB".into(),
            certificates: vec![CertRow {
                key: "signature".into(),
                serial: "01".into(),
                subject: "CN=x".into(),
                issuer: "CN=ca".into(),
                key_usage: "nonRepudiation".into(),
                not_after: "2031-01-01".into(),
                sha256: "AA:BB".into(),
            }],
        },
    )
    .expect("deliver");
    j.request_replacement(&who("1021"), "CARD-0", "loss", CardStatus::Lost, "1021")
        .expect("replace");
    j
}

#[test]
fn an_sqlite_journal_is_copied_once_and_checked_table_by_table() {
    let c = pg_support::Cluster::start();
    let url = c.register("register");
    let d = tempfile::tempdir().expect("tempdir");
    let src = d.path().join("journal.sqlite");
    let s = busy_sqlite(&src);
    let mut db = postgres::Client::connect(&url, postgres::NoTls).expect("db");
    let copied = copy::copy(&src, &mut db, "register").expect("copy");
    let rows = |t: &str| {
        copied
            .iter()
            .find(|c| c.table == t)
            .map(|c| c.rows)
            .unwrap_or(0)
    };
    assert_eq!(rows("records"), 6);
    assert_eq!(rows("attempts"), 4);
    assert_eq!(rows("deliveries"), 1);
    assert_eq!(rows("card_certificates"), 1);
    assert_eq!(rows("set_aside"), 1);
    // The register answers as the station's journal did.
    let p = open(&url, "cardsmith check");
    let b = s.batch(None).expect("batch").expect("some");
    assert_eq!(p.batch(None).expect("batch"), Some(b.clone()));
    assert_eq!(p.summary(b.id).expect("s"), s.summary(b.id).expect("s"));
    assert_eq!(p.records(b.id).expect("r"), s.records(b.id).expect("r"));
    assert_eq!(p.attempts(b.id).expect("a"), s.attempts(b.id).expect("a"));
    assert_eq!(p.set_aside(b.id).expect("a"), s.set_aside(b.id).expect("a"));
    // The register stamps the login that wrote each delivery: for copied
    // rows, the login that ran the copy (SQLite has no logins).
    let copied: Vec<DeliveredCard> = p.delivered_to("0012345678").expect("d");
    assert!(copied
        .iter()
        .all(|d| d.login.as_deref() == Some("postgres")));
    let unstamped: Vec<DeliveredCard> = copied
        .into_iter()
        .map(|d| DeliveredCard { login: None, ..d })
        .collect();
    assert_eq!(unstamped, s.delivered_to("0012345678").expect("d"));
    assert_eq!(
        p.replacements("0012345678").expect("r"),
        s.replacements("0012345678").expect("r")
    );
    assert_eq!(p.card("CARD-X").expect("c"), s.card("CARD-X").expect("c"));
    // The requests came along: the programme view's input is the same.
    let groups = |j: &dyn Journal| {
        let mut g = j.programme_groups().expect("groups");
        g.sort_by_key(|g| (g.request_day, g.made_day, g.shipped_day));
        g
    };
    let (pg_groups, sqlite_groups) = (groups(&p), groups(&s));
    assert!(pg_groups.iter().any(|g| g.request_day == Some(20_002)));
    assert_eq!(pg_groups, sqlite_groups);
    // The copied ids go on: new rows do not collide.
    let cl = p
        .claim(b.id, &who("new"), "CARD-NEW")
        .expect("claim")
        .expect("some");
    assert!(cl.attempt_id > 4);
    // The station's audit trail came along and goes on unbroken.
    let audit = p.audit().expect("audit");
    assert!(audit.intact, "{:?}", audit.findings);
    assert!(audit.entries > 10);
    // A second copy is refused: the register is not empty any more.
    let e = copy::copy(&src, &mut db, "register")
        .expect_err("once")
        .to_string();
    assert!(e.contains("already holds"), "{e}");
}

#[test]
fn the_copy_command_reports_counts_and_digests() {
    let c = pg_support::Cluster::start();
    let url = c.register("register");
    let d = tempfile::tempdir().expect("tempdir");
    let src = d.path().join("journal.sqlite");
    drop(busy_sqlite(&src));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cardsmith"))
        .args(["--json", "journal", "copy"])
        .arg(&src)
        .env("CARDSMITH_JOURNAL", &url)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    let tables = v["tables"].as_array().expect("tables");
    // Every table of the journal, revocations and CRL numbers included.
    assert_eq!(tables.len(), 14);
    assert!(tables
        .iter()
        .all(|t| t["sha256"].as_str().is_some_and(|s| s.len() == 64)));
    assert!(
        !stdout.contains(
            url.split('@')
                .next()
                .unwrap_or("x")
                .rsplit(':')
                .next()
                .unwrap_or("x")
        ),
        "the password is not in the output"
    );
}

#[test]
fn the_register_over_tls_verifies_the_server_certificate() {
    let refused = |t: &pgconf::PgTarget| match cardsmith::register::pg::connect(t) {
        Ok(_) => panic!("connected"),
        Err(e) => e.to_string(),
    };
    let c = pg_support::Cluster::start_tls();
    let ca = c.path().join("tls/ca.pem");
    let pw = c
        .admin
        .split(':')
        .nth(2)
        .and_then(|s| s.split('@').next())
        .expect("password")
        .to_string();
    let url =
        |host: &str, q: &str| format!("postgresql://postgres:{pw}@{host}:{}/postgres?{q}", c.port);
    // The programme's CA, the name checked: encrypted, as the server sees it.
    for (host, mode) in [
        ("localhost", "verify-full"),
        ("127.0.0.1", "require"),
        ("localhost", "verify-ca"),
    ] {
        let t = pgconf::parse(
            &url(
                host,
                &format!("sslmode={mode}&sslrootcert={}", ca.display()),
            ),
            false,
        )
        .expect("url");
        let mut db = cardsmith::register::pg::connect(&t).expect("TLS connection");
        let ssl: bool = db
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .expect("pg_stat_ssl")
            .get(0);
        assert!(ssl, "{host} {mode}: not encrypted");
    }
    // Without the CA the server's certificate is not trusted: refused at
    // once (not waited for as an unreachable server), password not shown.
    let t = pgconf::parse(&url("localhost", "sslmode=require"), false).expect("url");
    let e = refused(&t);
    assert!(
        e.contains("TLS") && e.contains("certificate verify failed"),
        "{e}"
    );
    assert!(!e.contains(&pw), "{e}");
    // Plain TCP is refused by the server (hostssl only).
    let t = pgconf::parse(&url("localhost", "sslmode=disable"), false).expect("url");
    let e = refused(&t);
    assert!(e.contains("no encryption"), "{e}");
    // A CA file that is not one is named.
    let junk = c.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").expect("write");
    let t = pgconf::parse(
        &url(
            "localhost",
            &format!("sslmode=require&sslrootcert={}", junk.display()),
        ),
        false,
    )
    .expect("url");
    let e = refused(&t);
    assert!(e.contains("sslrootcert") && e.contains("junk.pem"), "{e}");
    // An unknown mode is refused with the ones there are.
    let e = pgconf::parse(&url("localhost", "sslmode=maybe"), false)
        .expect_err("mode")
        .to_string();
    assert!(e.contains("verify-full"), "{e}");
}
