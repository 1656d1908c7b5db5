//! The same journal tests on both backends: SQLite (a station's own file)
//! and PostgreSQL (the programme's shared register, a real server started
//! for the test). What the line and the counter rely on — claims, leases,
//! fencing, one good card per record, shipments, deliveries and the
//! replacement rule — must hold identically on either.

mod pg_support;

use cardsmith::register::journal::*;
use cardsmith::register::pg::{PgJournal, PgOptions};
use cardsmith::register::pgconf;
use cardsmith::register::sqlite::SqliteJournal;
use std::sync::Arc;
use std::time::Duration;

/// Keeps whatever backs the journal alive for the test.
#[allow(dead_code)]
enum Backing {
    Dir(tempfile::TempDir),
    Pg(pg_support::Cluster),
}

fn sqlite(lease: Duration) -> (Backing, Arc<dyn Journal>) {
    let d = tempfile::tempdir().expect("tempdir");
    let j = SqliteJournal::open(&d.path().join("j.sqlite"))
        .expect("open")
        .with_lease(lease);
    (Backing::Dir(d), Arc::new(j))
}

fn pg(lease: Duration) -> (Backing, Arc<dyn Journal>) {
    let c = pg_support::Cluster::start();
    let url = c.register("register");
    let t = pgconf::parse(&url, false).expect("url");
    let j = PgJournal::open(
        t,
        PgOptions {
            lease,
            retry_for: Duration::from_secs(60),
            max_connections: 4,
        },
    )
    .expect("open");
    (Backing::Pg(c), Arc::new(j))
}

fn who(station: &str, reader: &str) -> Who {
    Who {
        station: station.into(),
        operator: "tester".into(),
        reader: Some(reader.into()),
    }
}

fn load(j: &dyn Journal, ids: &[&str]) -> BatchInfo {
    let recs: Vec<NewRecord> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| NewRecord {
            record_id: id.to_string(),
            line: i as u64 + 1,
            request: None,
        })
        .collect();
    j.load_batch(
        "b",
        "/b.jsonl",
        &format!("digest-{}", ids.join(",")),
        &who("s1", "r"),
        &recs,
        &[],
    )
    .expect("load")
    .0
}

/// The audit trail covers everything the test did, unbroken.
fn intact(j: &dyn Journal) {
    let r = j.audit().expect("audit");
    assert!(r.intact, "{:#?}", r.findings);
    assert!(r.entries > 0);
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

fn claims_in_line_order_never_twice_across_stations(
    make: fn(Duration) -> (Backing, Arc<dyn Journal>),
) {
    let (_b, j) = make(Duration::from_secs(30));
    let ids: Vec<String> = (1..=40).map(|i| format!("R-{i:03}")).collect();
    let refs: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
    let b = load(j.as_ref(), &refs);
    // Three stations of two readers each draw concurrently.
    let mut handles = vec![];
    for s in 0..3 {
        for r in 0..2 {
            let j = j.clone();
            handles.push(std::thread::spawn(move || {
                let w = who(&format!("station-{s}"), &format!("reader-{r}"));
                let mut got = vec![];
                for n in 0.. {
                    let serial = format!("S{s}{r}{n:04}");
                    match j.claim(b.id, &w, &serial).expect("claim") {
                        Some(c) => {
                            j.finish(c.attempt_id, &good()).expect("finish");
                            got.push(c.record_id);
                        }
                        None => break,
                    }
                }
                got
            }));
        }
    }
    let mut all: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    all.sort();
    assert_eq!(all, ids, "every record handed out exactly once");
    let s = j.summary(b.id).expect("summary");
    assert_eq!((s.good, s.pending, s.in_progress), (40, 0, 0));
    intact(j.as_ref());
}

fn an_expired_claim_goes_back_and_its_station_cannot_make_the_card_good(
    make: fn(Duration) -> (Backing, Arc<dyn Journal>),
) {
    let (_b, j) = make(Duration::from_millis(1500));
    let b = load(j.as_ref(), &["R-1", "R-2"]);
    let paused = who("paused", "r1");
    let other = who("other", "r1");
    let c1 = j
        .claim(b.id, &paused, "CARD-A")
        .expect("claim")
        .expect("some");
    assert_eq!(c1.record_id, "R-1");
    // While the lease holds, the other station gets the next record.
    let c2 = j
        .claim(b.id, &other, "CARD-B")
        .expect("claim")
        .expect("some");
    assert_eq!(c2.record_id, "R-2");
    j.finish(c2.attempt_id, &good()).expect("good");
    // The paused station neither renews nor finishes in time.
    std::thread::sleep(Duration::from_millis(2200));
    let c3 = j
        .claim(b.id, &other, "CARD-C")
        .expect("claim")
        .expect("reaped");
    assert_eq!(
        c3.record_id, "R-1",
        "the expired claim went back to the queue"
    );
    assert!(c3.token > c1.token, "a new claim has a new fencing token");
    // The paused station wakes up and tries to make its card good: fenced.
    let e = j.finish(c1.attempt_id, &good()).expect_err("fenced");
    assert!(matches!(e, JournalError::ClaimLost { .. }), "{e}");
    assert!(e.to_string().contains("lease expired"), "{e}");
    j.finish(c3.attempt_id, &good()).expect("good elsewhere");
    let goods: Vec<AttemptRow> = j
        .attempts_for_record("R-1")
        .expect("attempts")
        .into_iter()
        .filter(|a| a.outcome == "good")
        .collect();
    assert_eq!(goods.len(), 1);
    assert_eq!(goods[0].card_serial.as_deref(), Some("CARD-C"));
    let first = &j.attempts_for_record("R-1").expect("attempts")[0];
    assert_eq!(first.outcome, "interrupted");
    assert_eq!(first.reason_class.as_deref(), Some(LEASE_EXPIRED));
    assert!(first.reason.as_deref().unwrap_or("").contains("paused"));
    intact(j.as_ref());
}

fn an_expired_lease_is_never_revived_even_unclaimed(
    make: fn(Duration) -> (Backing, Arc<dyn Journal>),
) {
    let (_b, j) = make(Duration::from_millis(300));
    let b = load(j.as_ref(), &["R-1"]);
    let w = who("slow", "r1");
    let c = j.claim(b.id, &w, "CARD-A").expect("claim").expect("some");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        j.renew(&w).expect("renew"),
        0,
        "an expired lease is not renewed"
    );
    let e = j.finish(c.attempt_id, &good()).expect_err("fenced");
    assert!(matches!(e, JournalError::ClaimLost { .. }), "{e}");
    let r = j.record("R-1").expect("record").expect("some");
    assert_eq!(r.state, "pending", "the record is back in the queue");
    intact(j.as_ref());
}

fn renewal_keeps_a_working_station_s_claim(make: fn(Duration) -> (Backing, Arc<dyn Journal>)) {
    let (_b, j) = make(Duration::from_millis(2000));
    let b = load(j.as_ref(), &["R-1", "R-2"]);
    let w = who("busy", "r1");
    let c = j.claim(b.id, &w, "CARD-A").expect("claim").expect("some");
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(j.renew(&w).expect("renew"), 1);
    }
    let o = j
        .claim(b.id, &who("other", "r"), "CARD-B")
        .expect("claim")
        .expect("some");
    assert_eq!(o.record_id, "R-2", "a renewed claim is not taken away");
    j.finish(c.attempt_id, &good())
        .expect("good after 3 s on a 2 s lease");
    intact(j.as_ref());
}

fn retries_are_answered_like_the_first_call(make: fn(Duration) -> (Backing, Arc<dyn Journal>)) {
    let (_b, j) = make(Duration::from_secs(30));
    let b = load(j.as_ref(), &["R-1", "R-2"]);
    let w = who("s", "r1");
    let c = j.claim(b.id, &w, "CARD-A").expect("claim").expect("some");
    let again = j.claim(b.id, &w, "CARD-A").expect("claim").expect("some");
    assert_eq!(again, c, "the same card asking again keeps its claim");
    j.finish(c.attempt_id, &good()).expect("good");
    j.finish(c.attempt_id, &good())
        .expect("finishing again with the same outcome is not an error");
    let s = j.summary(b.id).expect("summary");
    assert_eq!((s.good, s.pending, s.attempts), (1, 1, 1));
    intact(j.as_ref());
}

fn one_good_card_per_record_and_record_per_card(make: fn(Duration) -> (Backing, Arc<dyn Journal>)) {
    let (_b, j) = make(Duration::from_secs(30));
    let b = load(j.as_ref(), &["R-1", "R-2"]);
    let w = who("s", "r1");
    let c1 = j.claim(b.id, &w, "CARD-A").expect("claim").expect("some");
    j.finish(c1.attempt_id, &good()).expect("good");
    let c2 = j.claim(b.id, &w, "CARD-A").expect("claim").expect("some");
    let e = j.finish(c2.attempt_id, &good()).expect_err("card taken");
    assert!(matches!(e, JournalError::CardTaken { .. }), "{e}");
    assert!(matches!(
        j.card("CARD-A").expect("card"),
        CardKnown::Good { .. }
    ));
    intact(j.as_ref());
}

fn deliveries_and_replacements_meet_across_offices(
    make: fn(Duration) -> (Backing, Arc<dyn Journal>),
) {
    let (_b, j) = make(Duration::from_secs(30));
    let b = load(j.as_ref(), &["R-1", "R-2"]);
    let line = who("line-1", "r1");
    for (rec, card) in [("R-1", "CARD-A"), ("R-2", "CARD-B")] {
        let c = j.claim(b.id, &line, card).expect("claim").expect("some");
        assert_eq!(c.record_id, rec);
        j.finish(c.attempt_id, &good()).expect("good");
    }
    // Card A goes to a domestic counter, card B (the replacement) later.
    j.ship(&line, "CARD-A", "R-1", "0012345678", "1021")
        .expect("ship");
    let tehran = who("counter-1021", "c");
    // Not delivered yet: a consulate cannot take a replacement for it.
    let dubai = who("consulate-dxb", "c");
    let e = j
        .request_replacement(&dubai, "CARD-A", "loss", CardStatus::Lost, "AE-DXB")
        .expect_err("refused");
    assert!(e.to_string().contains("never delivered"), "{e}");
    j.deliver(
        &tehran,
        &Delivery {
            card_serial: "CARD-A".into(),
            record_id: "R-1".into(),
            national_id: "0012345678".into(),
            office: "1021".into(),
            certificates: vec![],
        },
    )
    .expect("deliver");
    // Delivered at home, reported lost at the consulate: checked against
    // that delivery.
    let r = j
        .request_replacement(&dubai, "CARD-A", "loss", CardStatus::Lost, "AE-DXB")
        .expect("replacement");
    assert_eq!(r.office, "AE-DXB");
    let e = j
        .request_replacement(&dubai, "CARD-A", "damage", CardStatus::Terminated, "AE-DXB")
        .expect_err("only once");
    assert!(e.to_string().contains("already lost"), "{e}");
    j.ship(&line, "CARD-B", "R-2", "0012345678", "AE-DXB")
        .expect("ship");
    j.deliver(
        &dubai,
        &Delivery {
            card_serial: "CARD-B".into(),
            record_id: "R-2".into(),
            national_id: "0012345678".into(),
            office: "AE-DXB".into(),
            certificates: vec![],
        },
    )
    .expect("deliver the replacement");
    let old = j.delivered("CARD-A").expect("delivered").expect("some");
    assert_eq!(old.status, CardStatus::Lost);
    assert_eq!(old.replaced_by.as_deref(), Some("CARD-B"));
    let reps = j.replacements("0012345678").expect("replacements");
    assert_eq!(reps.len(), 1);
    assert_eq!(reps[0].new_card.as_deref(), Some("CARD-B"));
    intact(j.as_ref());
}

fn recovery_finishes_the_interrupted_record_on_the_same_card(
    make: fn(Duration) -> (Backing, Arc<dyn Journal>),
) {
    let (_b, j) = make(Duration::from_secs(30));
    let b = load(j.as_ref(), &["r1", "r2"]);
    let c1 = j
        .claim(b.id, &who("st1", "A"), "S1")
        .expect("claim")
        .expect("r1");
    // Another station's resume leaves this station's attempt alone.
    assert!(j
        .recover_interrupted(&who("st2", "-"))
        .expect("recover")
        .is_empty());
    // The station dies; on its resume its attempt is interrupted.
    let rec = j.recover_interrupted(&who("st1", "-")).expect("recover");
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].id, c1.attempt_id);
    assert!(matches!(
        j.card("S1").expect("card"),
        CardKnown::Interrupted { .. }
    ));
    let r = j
        .claim_recovery(&who("st1", "A"), "S1")
        .expect("recovery")
        .expect("claimed");
    assert_eq!(
        (r.record_id.as_str(), r.kind),
        ("r1", AttemptKind::Recovery)
    );
    j.finish(r.attempt_id, &good()).expect("good");
    let c2 = j
        .claim(b.id, &who("st1", "A"), "S2")
        .expect("claim")
        .expect("r2");
    assert_eq!(c2.record_id, "r2");
    let hist = j.attempts_for_record("r1").expect("history");
    assert_eq!(
        hist.iter().map(|a| a.outcome.as_str()).collect::<Vec<_>>(),
        ["interrupted", "good"]
    );
    // Nothing is left to claim: r1 is good, r2 is in progress.
    let c3 = j.claim(b.id, &who("st1", "A"), "S3");
    assert!(c3.expect("claim").is_none());
    intact(j.as_ref());
}

fn rejections_requeue_until_the_record_is_held(make: fn(Duration) -> (Backing, Arc<dyn Journal>)) {
    let (_b, j) = make(Duration::from_secs(30));
    let b = load(j.as_ref(), &["r1"]);
    for (n, serial) in ["S1", "S2"].iter().enumerate() {
        let c = j
            .claim(b.id, &who("st1", "A"), serial)
            .expect("claim")
            .expect("r1");
        j.finish(
            c.attempt_id,
            &Finish {
                outcome: Some(Outcome::Rejected),
                reason_class: Some("keys".into()),
                reason: Some("the CA refused".into()),
                max_rejects: 2,
                ..Finish::default()
            },
        )
        .expect("rejected");
        let r = j.record("r1").expect("record").expect("r1");
        assert_eq!(r.state, if n == 0 { "pending" } else { "held" });
    }
    assert!(j
        .claim(b.id, &who("st1", "A"), "S3")
        .expect("claim")
        .is_none());
    assert_eq!(
        j.rejects_by_reason(Some(b.id)).expect("rejects"),
        vec![("keys".to_string(), 2)]
    );
    j.requeue(&who("st1", "-"), "r1").expect("requeue");
    assert!(j
        .claim(b.id, &who("st1", "A"), "S3")
        .expect("claim")
        .is_some());
    assert!(
        j.requeue(&who("st1", "-"), "r1").is_err(),
        "in progress is not held"
    );
    let s = j.summary(b.id).expect("summary");
    assert_eq!((s.attempts, s.rejected, s.in_progress), (3, 2, 1));
    intact(j.as_ref());
}

fn loading_the_same_file_again_is_the_same_batch(
    make: fn(Duration) -> (Backing, Arc<dyn Journal>),
) {
    let (_b, j) = make(Duration::from_secs(30));
    let b1 = load(j.as_ref(), &["r1", "r2"]);
    let b2 = load(j.as_ref(), &["r1", "r2"]);
    assert_eq!(b1, b2);
    let nr = |id: &str, line| NewRecord {
        record_id: id.into(),
        line,
        request: None,
    };
    let (b3, aside) = j
        .load_batch(
            "c",
            "/c.jsonl",
            "other",
            &who("st1", "-"),
            &[nr("r1", 1), nr("r3", 2), nr("r3", 3)],
            &[SetAside {
                record_id: None,
                line: 4,
                reason: "birth_date: not a Solar Hijri date".into(),
            }],
        )
        .expect("load");
    assert_eq!(b3.records, 1);
    assert_eq!(b3.invalid, 3);
    let reasons: Vec<&str> = aside.iter().map(|a| a.reason.as_str()).collect();
    assert!(reasons[0].contains("already in batch"), "{reasons:?}");
    assert!(reasons[1].contains("appears twice"), "{reasons:?}");
    assert_eq!(j.set_aside(b3.id).expect("aside"), aside);
    assert_eq!(j.batch(None).expect("latest"), Some(b3));
    intact(j.as_ref());
}

fn revocations_once_per_certificate_and_crl_numbers_grow(
    make: fn(Duration) -> (Backing, Arc<dyn Journal>),
) {
    let (_b, j) = make(Duration::from_secs(30));
    let b = load(j.as_ref(), &["R-1"]);
    let line = who("line-1", "r1");
    let c = j
        .claim(b.id, &line, "CARD-A")
        .expect("claim")
        .expect("some");
    j.finish(c.attempt_id, &good()).expect("good");
    j.ship(&line, "CARD-A", "R-1", "0012345678", "1021")
        .expect("ship");
    let counter = who("counter-1021", "c");
    let cert = |key: &str, serial: &str| CertRow {
        key: key.into(),
        serial: serial.into(),
        subject: "CN=Reza Ahmadi".into(),
        issuer: "CN=cardsmith local test CA".into(),
        key_usage: "digitalSignature".into(),
        not_after: "2031-01-01".into(),
        sha256: "AB:CD".into(),
    };
    j.deliver(
        &counter,
        &Delivery {
            card_serial: "CARD-A".into(),
            record_id: "R-1".into(),
            national_id: "0012345678".into(),
            office: "1021".into(),
            certificates: vec![cert("authentication", "4a01"), cert("signature", "4a02")],
        },
    )
    .expect("deliver");
    j.request_replacement(&counter, "CARD-A", "loss", CardStatus::Lost, "1021")
        .expect("replacement");
    let issuer = "C=IR, O=cardsmith test, CN=cardsmith local test CA";
    let rev = |serial: &str, reason| Revocation {
        serial: serial.into(),
        issuer: issuer.into(),
        reason,
        revoked_at: 0,
        card_serial: "CARD-A".into(),
        station: String::new(),
        operator: String::new(),
    };
    let first = j
        .record_revocation(&counter, &rev("4A01", RevocationReason::KeyCompromise))
        .expect("revoke");
    assert_eq!(first.serial, "4a01");
    assert_eq!(first.reason, RevocationReason::KeyCompromise);
    assert_eq!(first.station, "counter-1021");
    assert!(first.revoked_at > 0);
    // Once per certificate: the first revocation stands.
    let again = j
        .record_revocation(
            &who("counter-9", "c"),
            &rev("4a01", RevocationReason::Superseded),
        )
        .expect("again");
    assert_eq!(again, first);
    j.record_revocation(&counter, &rev("4a02", RevocationReason::KeyCompromise))
        .expect("revoke");
    assert_eq!(j.revocation("4A01").expect("q"), Some(first.clone()));
    assert_eq!(j.revocation("ffff").expect("q"), None);
    let all = j.revocations(issuer).expect("list");
    assert_eq!(
        all.iter().map(|r| r.serial.as_str()).collect::<Vec<_>>(),
        vec!["4a01", "4a02"]
    );
    assert!(j.revocations("CN=another CA").expect("list").is_empty());
    let events = j.events(0).expect("events");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "certificate revoked")
            .count(),
        2
    );
    // CRL numbers: 1, 2, … per issuer, never twice.
    let now = now_ms();
    let n1 = j
        .record_crl(&counter, issuer, now, now + 1000, 2)
        .expect("crl");
    let n2 = j
        .record_crl(&counter, issuer, now, now + 1000, 2)
        .expect("crl");
    let other = j
        .record_crl(&counter, "CN=another CA", now, now + 1000, 0)
        .expect("crl");
    assert_eq!((n1.number, n2.number, other.number), (1, 2, 1));
    intact(j.as_ref());
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $( #[test] fn $name() { super::$name(super::sqlite) } )*
        }
        mod postgresql_backend {
            $( #[test] fn $name() { super::$name(super::pg) } )*
        }
    };
}

both!(
    claims_in_line_order_never_twice_across_stations,
    an_expired_claim_goes_back_and_its_station_cannot_make_the_card_good,
    an_expired_lease_is_never_revived_even_unclaimed,
    renewal_keeps_a_working_station_s_claim,
    retries_are_answered_like_the_first_call,
    one_good_card_per_record_and_record_per_card,
    deliveries_and_replacements_meet_across_offices,
    recovery_finishes_the_interrupted_record_on_the_same_card,
    rejections_requeue_until_the_record_is_held,
    loading_the_same_file_again_is_the_same_batch,
    revocations_once_per_certificate_and_crl_numbers_grow,
);
