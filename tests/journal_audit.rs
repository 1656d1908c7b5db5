//! The tamper-evident audit trail, attacked from outside: rows edited,
//! removed and inserted with the sqlite3 tool and with SQL on the
//! PostgreSQL register, and `cardsmith journal audit` naming the first
//! place the history breaks.

mod pg_support;

use cardsmith::register::journal::*;
use cardsmith::register::sqlite::SqliteJournal;
use std::path::Path;
use std::process::Command;

fn who(station: &str) -> Who {
    Who {
        station: station.into(),
        operator: "tester".into(),
        reader: Some("r1".into()),
    }
}

/// A journal with a bit of everything: attempts good and rejected, a
/// rejected card, a shipment, a delivery with a certificate, a replacement.
fn fill(j: &dyn Journal) {
    let w = who("line-1");
    let recs: Vec<NewRecord> = (1..=4)
        .map(|i| NewRecord {
            record_id: format!("R-{i}"),
            line: i,
            request: None,
        })
        .collect();
    let (b, _) = j.load_batch("b", "/b", "d", &w, &recs, &[]).expect("load");
    for n in 0..3 {
        let c = j
            .claim(b.id, &w, &format!("CARD-{n}"))
            .expect("claim")
            .expect("some");
        let f = if n == 1 {
            Finish {
                outcome: Some(Outcome::Rejected),
                reason_class: Some("verify: DG1".into()),
                reason: Some("DG1 mismatch".into()),
                card_terminated: true,
                ..Finish::default()
            }
        } else {
            Finish {
                outcome: Some(Outcome::Good),
                ..Finish::default()
            }
        };
        j.finish(c.attempt_id, &f).expect("finish");
    }
    j.reject_card(&w, "CARD-X", "not blank", false)
        .expect("reject");
    j.ship(&w, "CARD-0", "R-1", "0012345678", "1021")
        .expect("ship");
    j.deliver(
        &who("counter-1021"),
        &Delivery {
            card_serial: "CARD-0".into(),
            record_id: "R-1".into(),
            national_id: "0012345678".into(),
            office: "1021".into(),
            certificates: vec![CertRow {
                key: "signature".into(),
                serial: "0A".into(),
                subject: "CN=Mina Abbasi".into(),
                issuer: "CN=Test CA".into(),
                key_usage: "nonRepudiation".into(),
                not_after: "2033-01-01T00:00:00Z".into(),
                sha256: "AB:CD".into(),
            }],
        },
    )
    .expect("deliver");
    j.request_replacement(
        &who("consulate"),
        "CARD-0",
        "loss",
        CardStatus::Lost,
        "AE-DXB",
    )
    .expect("replacement");
    j.event(&w, "reader added", "worker started")
        .expect("event");
}

fn audit(journal: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cardsmith"))
        .args(["journal", "audit", "--journal", journal])
        .env_remove("CARDSMITH_JOURNAL")
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn sqlite3(db: &Path, sql: &str) {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 tool (apt-get install sqlite3)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fresh() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().join("journal.sqlite");
    fill(&SqliteJournal::open(&p).expect("journal"));
    (d, p)
}

#[test]
fn an_untouched_journal_audits_clean() {
    let (_d, p) = fresh();
    let (code, out) = audit(p.to_str().expect("path"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit trail intact"), "{out}");
}

#[test]
fn one_row_edited_with_the_sqlite3_tool_is_found() {
    let (_d, p) = fresh();
    // Make the rejected attempt look like a clean pass.
    sqlite3(
        &p,
        "UPDATE attempts SET reason = NULL, reason_class = NULL WHERE id = 2",
    );
    let (code, out) = audit(p.to_str().expect("path"));
    assert_eq!(code, 4, "{out}");
    let first = out
        .lines()
        .find(|l| l.contains("first:"))
        .expect("first finding");
    assert!(first.contains("attempts row [2] was changed"), "{out}");
    assert!(
        first.contains("reason_class recorded \"verify: DG1\", now null"),
        "{out}"
    );
}

#[test]
fn removed_and_inserted_rows_and_an_edited_entry_are_found() {
    let (_d, p) = fresh();
    sqlite3(&p, "DELETE FROM events WHERE kind = 'reader added'");
    let (code, out) = audit(p.to_str().expect("path"));
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("events row") && out.contains("was removed"),
        "{out}"
    );

    let (_d, p) = fresh();
    sqlite3(
        &p,
        "INSERT INTO shipments (card_serial, record_id, national_id, office, at, station, operator)
         VALUES ('CARD-2', 'R-3', '0099999999', 'AE-DXB', 0, 'x', 'mallory')",
    );
    let (code, out) = audit(p.to_str().expect("path"));
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("inserted behind the journal's back"), "{out}");

    let (_d, p) = fresh();
    // The trail itself: entry 5 rewritten to hide what happened.
    sqlite3(&p, "UPDATE audit SET operator = 'nobody' WHERE seq = 5");
    let (code, out) = audit(p.to_str().expect("path"));
    assert_eq!(code, 4, "{out}");
    let first = out
        .lines()
        .find(|l| l.contains("first:"))
        .expect("first finding");
    assert!(
        first.contains("entry 5") && first.contains("was changed"),
        "{out}"
    );

    let (_d, p) = fresh();
    sqlite3(&p, "DELETE FROM audit WHERE seq = 3");
    let (code, out) = audit(p.to_str().expect("path"));
    assert_eq!(code, 4, "{out}");
    let first = out
        .lines()
        .find(|l| l.contains("first:"))
        .expect("first finding");
    assert!(first.contains("entries 3 to 3 were removed"), "{out}");
}

#[test]
fn the_register_on_postgresql_finds_an_edited_delivery() {
    let c = pg_support::Cluster::start();
    let url = c.register("register");
    let t = cardsmith::register::pgconf::parse(&url, false).expect("url");
    let j = cardsmith::register::pg::PgJournal::open(t, Default::default()).expect("open");
    fill(&j);
    let r = j.audit().expect("audit");
    assert!(r.intact, "{:?}", r.findings);
    let mut db = postgres::Client::connect(&url, postgres::NoTls).expect("db");
    db.batch_execute("UPDATE deliveries SET office = 'AE-DXB' WHERE card_serial = 'CARD-0'")
        .expect("tamper");
    let pw_free = c.url_for("postgres", "register");
    let pass = pg_support::passfile(
        c.path(),
        c.port,
        &[(
            "postgres",
            url.split(':')
                .nth(2)
                .and_then(|s| s.split('@').next())
                .expect("pw"),
        )],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cardsmith"))
        .args(["--json", "journal", "audit", "--journal", &pw_free])
        .env("PGPASSFILE", &pass)
        .env_remove("CARDSMITH_JOURNAL")
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let first = &v["audit"]["findings"][0];
    assert_eq!(first["table"], "deliveries");
    let what = first["what"].as_str().expect("what");
    assert!(
        what.contains("office recorded \"1021\", now \"AE-DXB\""),
        "{what}"
    );
}
