//! The shared issuance register on PostgreSQL: every line station, counter
//! and consulate of the programme writes to one database.
//!
//! The rules that matter are the database's, not the client's:
//! - one good card per record and one good record per card are partial
//!   unique indexes, as in SQLite;
//! - a claim takes the lowest pending record with `FOR UPDATE SKIP LOCKED`,
//!   so stations never wait on each other's claims, and bumps the record's
//!   fencing token; the claim is a lease in the register's clock;
//! - the good commit locks the attempt and the record and proves the claim
//!   is still held (in progress, lease not expired, token unchanged), or
//!   the card is refused ([`JournalError::ClaimLost`]) and terminated;
//! - roles (migration 2): a line station, a counter and a supervisor each
//!   get a role; row-level security keeps a counter's deliveries to its
//!   own office ([`super::pgschema`]).
//!
//! The connection is re-established when it breaks (server restart,
//! `pg_terminate_backend`, network cut): each call is one transaction,
//! retried on a fresh connection for up to [`PgOptions::retry_for`]. Calls
//! are written so that a retry after a commit whose answer was lost does
//! the right thing: finishing an attempt again with its outcome, shipping
//! a card again to its office, asking for the same claim again.

use super::audit;
use super::journal::*;
use super::pgaudit::{audit_row, Fail, F};
use super::pgconf::PgTarget;
use super::pgschema;
use super::rows::{self, V};
use postgres::{Client, Row, Transaction};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How the register connection behaves.
#[derive(Debug, Clone, Copy)]
pub struct PgOptions {
    /// Claim lease.
    pub lease: Duration,
    /// How long a call keeps retrying while the register is unreachable.
    pub retry_for: Duration,
    /// Connections kept open for the station's workers.
    pub max_connections: usize,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions {
            lease: DEFAULT_LEASE,
            retry_for: Duration::from_secs(300),
            max_connections: 4,
        }
    }
}

/// The PostgreSQL register.
pub struct PgJournal {
    target: PgTarget,
    opts: PgOptions,
    idle: Mutex<Pool>,
    freed: Condvar,
}

struct Pool {
    idle: Vec<Client>,
    open: usize,
}

/// SQLSTATE of a database error, if it is one.
fn sqlstate(e: &postgres::Error) -> Option<&str> {
    e.code().map(|c| c.code())
}

/// Worth a retry on a fresh connection: the connection broke, the server
/// is shutting down or starting, or the transaction lost a race.
pub(crate) fn retryable(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match sqlstate(e) {
        // Serialization failure, deadlock.
        Some("40001") | Some("40P01") => true,
        // Admin/crash shutdown, cannot connect now.
        Some(c) if c.starts_with("57P") => true,
        // The server ended a session that sat inside a transaction
        // ([`IDLE_IN_TRANSACTION`]: the station was paused or cut off);
        // the transaction rolled back, so it is safe to run again.
        Some("25P03") => true,
        // Connection exceptions.
        Some(c) if c.starts_with("08") => true,
        Some(_) => false,
        // No SQLSTATE: I/O, closed socket, timeouts.
        None => true,
    }
}

/// A message for a database error that never repeats a secret.
pub(crate) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!(": {d}"));
            }
            s
        }
        None => {
            // The error's source chain says why (connection refused, …).
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(x) = src {
                let t = x.to_string();
                if !s.contains(&t) {
                    s.push_str(&format!(": {t}"));
                }
                src = x.source();
            }
            s
        }
    }
}

impl PgJournal {
    /// Connect to the register and check its schema (present, not newer
    /// than this program, all migrations applied). Fails at once with a
    /// clear message for a wrong URL, a refused login or a missing
    /// database.
    pub fn open(target: PgTarget, opts: PgOptions) -> Result<PgJournal> {
        let j = PgJournal {
            target,
            opts,
            idle: Mutex::new(Pool {
                idle: vec![],
                open: 0,
            }),
            freed: Condvar::new(),
        };
        let mut c = j.connect()?;
        let v = pgschema::version(&mut c).map_err(|e| j.storage(&e))?;
        pgschema::check_version(v, &j.target.display)?;
        j.put(c);
        Ok(j)
    }

    /// Connect once, mapping login and database errors to clear messages.
    /// The session is ended by the server when it sits inside a
    /// transaction for [`IDLE_IN_TRANSACTION`].
    pub fn connect(&self) -> Result<Client> {
        let mut c = connect(&self.target)?;
        c.batch_execute(&format!(
            "SET idle_in_transaction_session_timeout = {}",
            IDLE_IN_TRANSACTION.as_millis()
        ))
        .map_err(|e| {
            if retryable(&e) {
                // The server went away between the login and this
                // statement (it is restarting): waited for like a refused
                // connection.
                JournalError::Storage {
                    path: self.target.display.clone(),
                    detail: format!("{UNREACHABLE}: {}", describe(&e)),
                }
            } else {
                self.storage(&e)
            }
        })?;
        Ok(c)
    }

    fn storage(&self, e: &postgres::Error) -> JournalError {
        JournalError::Storage {
            path: self.target.display.clone(),
            detail: describe(e),
        }
    }

    fn take(&self) -> Result<Client> {
        let mut p = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(c) = p.idle.pop() {
                if !c.is_closed() {
                    return Ok(c);
                }
                p.open = p.open.saturating_sub(1);
                continue;
            }
            if p.open < self.opts.max_connections.max(1) {
                p.open += 1;
                drop(p);
                return self.connect().inspect_err(|_| {
                    let mut p = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                    p.open = p.open.saturating_sub(1);
                });
            }
            p = self.freed.wait(p).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn put(&self, c: Client) {
        let mut p = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if c.is_closed() {
            p.open = p.open.saturating_sub(1);
        } else {
            p.idle.push(c);
        }
        self.freed.notify_one();
    }

    fn discard(&self) {
        let mut p = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        p.open = p.open.saturating_sub(1);
        self.freed.notify_one();
    }

    /// Run `f` in one transaction once, without retrying: for work that
    /// cannot be repeated (a streamed load consumes its chunks). A failed
    /// connection is dropped; the transaction rolled back with it.
    fn tx_once<T>(&self, f: impl FnOnce(&mut Transaction<'_>) -> F<T>) -> Result<T> {
        let mut c = self.take()?;
        let r = (|| -> F<T> {
            let mut t = c.transaction()?;
            let v = f(&mut t)?;
            t.commit()?;
            Ok(v)
        })();
        match r {
            Ok(v) => {
                self.put(c);
                Ok(v)
            }
            Err(Fail::J(e)) => {
                self.put(c);
                Err(e)
            }
            Err(Fail::Pg(e)) => {
                if c.is_closed() {
                    drop(c);
                    self.discard();
                } else {
                    self.put(c);
                }
                Err(map_refusal(&e).unwrap_or_else(|| self.storage(&e)))
            }
        }
    }

    /// Run `f` in one transaction, retrying on a fresh connection while
    /// the register is unreachable (up to `retry_for`).
    fn tx<T>(&self, f: impl Fn(&mut Transaction<'_>) -> F<T>) -> Result<T> {
        let deadline = Instant::now() + self.opts.retry_for;
        let mut pause = Duration::from_millis(50);
        let mut warned = false;
        loop {
            let attempt = self.take().and_then(|mut c| {
                let r = (|| -> F<T> {
                    let mut t = c.transaction()?;
                    let v = f(&mut t)?;
                    t.commit()?;
                    Ok(v)
                })();
                match r {
                    Ok(v) => {
                        self.put(c);
                        Ok(Ok(v))
                    }
                    Err(Fail::J(e)) => {
                        self.put(c);
                        Err(e)
                    }
                    Err(Fail::Pg(e)) if retryable(&e) => {
                        drop(c);
                        self.discard();
                        Ok(Err(e))
                    }
                    Err(Fail::Pg(e)) => {
                        self.put(c);
                        Err(map_refusal(&e).unwrap_or_else(|| self.storage(&e)))
                    }
                }
            });
            let why = match attempt {
                Ok(Ok(v)) => {
                    if warned {
                        tracing::warn!("register {} is back", self.target.display);
                    }
                    return Ok(v);
                }
                Ok(Err(e)) => describe(&e),
                // Connecting failed: a refused login is final, an
                // unreachable server is waited for.
                Err(JournalError::Storage { detail, .. }) if detail.starts_with(UNREACHABLE) => {
                    detail
                }
                Err(e) => return Err(e),
            };
            if Instant::now() >= deadline {
                return Err(JournalError::Storage {
                    path: self.target.display.clone(),
                    detail: format!(
                        "unreachable for {} s, gave up: {why}",
                        self.opts.retry_for.as_secs()
                    ),
                });
            }
            if !warned {
                tracing::warn!(
                    "register {} unreachable ({why}); waiting and reconnecting",
                    self.target.display
                );
                warned = true;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.opts.lease.as_millis()).unwrap_or(i64::MAX / 2)
    }

    /// Attempts whose `column` (a fixed name, never input) equals `value`,
    /// oldest first.
    fn attempts_where(
        &self,
        column: &str,
        value: &(dyn postgres::types::ToSql + Sync),
    ) -> Result<Vec<AttemptRow>> {
        let sql = format!("SELECT {ATTEMPT_COLS} FROM attempts WHERE {column} = $1 ORDER BY id");
        self.tx(|t| Ok(t.query(&sql, &[value])?.iter().map(attempt_row).collect()))
    }
}

const UNREACHABLE: &str = "cannot reach the register";

/// How long the server lets a station's session sit inside a transaction
/// before it ends the session. A working station sends the statements of
/// a transaction back to back; one that sits there was stopped, paused or
/// cut off in the middle, and its open transaction holds rows (its
/// attempt, its record) that the other stations must update to take its
/// expired claims back. Without a limit they would wait for it for as long
/// as it is gone. The transaction rolls back; a station that wakes up
/// retries it on a fresh connection.
pub const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(5);

/// Connect to a register, with messages that name what went wrong.
pub fn connect(t: &PgTarget) -> Result<Client> {
    let tls = tls_connector(t)?;
    t.config.connect(tls).map_err(|e| {
        let detail = match sqlstate(&e) {
            Some("28P01") | Some("28000") => format!(
                "login refused for user {} ({}); check the password in PGPASSFILE/~/.pgpass or PGPASSWORD",
                t.config.get_user().unwrap_or("?"),
                e.as_db_error().map(|d| d.message()).unwrap_or("authentication failed")
            ),
            Some("3D000") => format!(
                "database {} does not exist on the server; create it (createdb) and run `cardsmith journal migrate`",
                t.config.get_dbname().unwrap_or("?")
            ),
            // Shutting down, starting up, connection failures: wait.
            Some(_) if retryable(&e) => format!("{UNREACHABLE}: {}", describe(&e)),
            Some(_) => describe(&e),
            // The client's own configuration error ("invalid
            // configuration") says why only in its source: no password.
            // It is final, not a server to wait for.
            None if describe(&e).contains("TLS") => format!(
                "TLS with the register failed (sslmode {}): {}; the server's certificate must be signed by the CA in sslrootcert= (or a system root) and name the host",
                t.tls.mode,
                describe(&e)
            ),
            None if describe(&e).contains("password missing") => format!(
                "no password for user {}: put it in a password file (PGPASSFILE, ~/.pgpass, mode 600) or PGPASSWORD",
                t.config.get_user().unwrap_or("?")
            ),
            None if e.to_string().starts_with("invalid configuration") => describe(&e),
            None => format!("{UNREACHABLE}: {}", describe(&e)),
        };
        JournalError::Storage {
            path: t.display.clone(),
            detail,
        }
    })
}

/// The TLS side of a connection: the server's certificate is always
/// verified when TLS is used (see [`super::pgconf::TlsSettings`]).
fn tls_connector(t: &PgTarget) -> Result<postgres_openssl::MakeTlsConnector> {
    use openssl::ssl::{SslConnector, SslMethod};
    let bad = |detail: String| JournalError::Storage {
        path: t.display.clone(),
        detail,
    };
    let mut b =
        SslConnector::builder(SslMethod::tls()).map_err(|e| bad(format!("setting up TLS: {e}")))?;
    if let Some(ca) = &t.tls.root_cert {
        b.set_ca_file(ca).map_err(|e| {
            bad(format!(
                "sslrootcert {}: cannot read it as a PEM CA certificate ({e})",
                ca.display()
            ))
        })?;
    }
    let mut c = postgres_openssl::MakeTlsConnector::new(b.build());
    if !t.tls.verify_hostname {
        c.set_callback(|cfg, _| {
            cfg.set_verify_hostname(false);
            Ok(())
        });
    }
    Ok(c)
}

/// Permission errors are the database refusing what the role may not do.
fn map_refusal(e: &postgres::Error) -> Option<JournalError> {
    let db = e.as_db_error()?;
    (db.code().code() == "42501").then(|| {
        JournalError::Refused(format!(
            "the register refused it: {} (the role this station logs in with may not do this)",
            db.message()
        ))
    })
}

fn now(t: &mut Transaction<'_>) -> F<Millis> {
    Ok(t.query_one("SELECT cardsmith_now_ms()", &[])?.get(0))
}

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

const ATTEMPT_COLS: &str =
    "id, record_id, batch_id, kind, station, reader, operator, card_serial, \
     started_at, finished_at, outcome, reason_class, reason, stages, apdus, transcript_sha256";

fn attempt_row(r: &Row) -> AttemptRow {
    AttemptRow {
        id: r.get(0),
        record_id: r.get(1),
        batch_id: r.get(2),
        kind: r.get(3),
        station: r.get(4),
        reader: r.get(5),
        operator: r.get(6),
        card_serial: r.get(7),
        started_at: r.get(8),
        finished_at: r.get(9),
        outcome: r.get(10),
        reason_class: r.get(11),
        reason: r.get(12),
        stages: serde_json::from_str(r.get::<_, &str>(13)).unwrap_or_default(),
        apdus: u(r.get(14)),
        transcript_sha256: r.get(15),
    }
}

const RECORD_COLS: &str = "record_id, batch_id, line, state, rejects, card_serial, reason";

fn record_row(r: &Row) -> RecordRow {
    RecordRow {
        record_id: r.get(0),
        batch_id: r.get(1),
        line: u(r.get(2)),
        state: r.get(3),
        rejects: u(r.get(4)),
        card_serial: r.get(5),
        reason: r.get(6),
    }
}

const BATCH_COLS: &str = "id, name, path, digest, loaded_at, loaded_by, records, invalid";

fn batch_row(r: &Row) -> BatchInfo {
    BatchInfo {
        id: r.get(0),
        name: r.get(1),
        path: r.get(2),
        digest: r.get(3),
        loaded_at: r.get(4),
        loaded_by: r.get(5),
        records: u(r.get(6)),
        invalid: u(r.get(7)),
    }
}

const SHIPMENT_COLS: &str =
    "id, card_serial, record_id, national_id, office, at, station, operator";

fn shipment_row(r: &Row) -> Shipment {
    Shipment {
        id: r.get(0),
        card_serial: r.get(1),
        record_id: r.get(2),
        national_id: r.get(3),
        office: r.get(4),
        at: r.get(5),
        station: r.get(6),
        operator: r.get(7),
    }
}

const DELIVERY_COLS: &str = "card_serial, record_id, national_id, office, at, operator, station, \
     status, reason, status_at, status_by, replaced_by, login";

fn status(s: &str) -> F<CardStatus> {
    CardStatus::from_name(s).ok_or_else(|| {
        Fail::J(JournalError::Refused(format!(
            "the register holds an unknown card status {s:?}"
        )))
    })
}

fn delivered_row(r: &Row) -> F<DeliveredCard> {
    Ok(DeliveredCard {
        card_serial: r.get(0),
        record_id: r.get(1),
        national_id: r.get(2),
        office: r.get(3),
        delivered_at: r.get(4),
        delivered_by: r.get(5),
        station: r.get(6),
        status: status(r.get(7))?,
        reason: r.get(8),
        status_at: r.get(9),
        status_by: r.get(10),
        replaced_by: r.get(11),
        login: Some(r.get(12)),
    })
}

const REPLACEMENT_COLS: &str = "id, national_id, previous_card, reason, previous_card_status, \
     office, at, station, operator, new_card";

fn replacement_row(r: &Row) -> F<Replacement> {
    Ok(Replacement {
        id: r.get(0),
        national_id: r.get(1),
        previous_card: r.get(2),
        reason: r.get(3),
        previous_card_status: status(r.get(4))?,
        office: r.get(5),
        at: r.get(6),
        station: r.get(7),
        operator: r.get(8),
        new_card: r.get(9),
    })
}

fn event(
    t: &mut Transaction<'_>,
    at: Millis,
    who: &Who,
    reader: Option<&str>,
    kind: &str,
    detail: &str,
) -> F<()> {
    let id: i64 = t
        .query_one(
            "INSERT INTO events (at, station, operator, reader, kind, detail) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[&at, &who.station, &who.operator, &reader, &kind, &detail],
        )?
        .get(0);
    audit_row(t, &who.station, &who.operator, at, "events", &[V::Int(id)])
}

const REVOCATION_COLS: &str = "serial, issuer, reason, revoked_at, card_serial, station, operator";

fn revocation_row(r: &postgres::Row) -> F<Revocation> {
    let code: i64 = r.get(2);
    Ok(Revocation {
        serial: r.get(0),
        issuer: r.get(1),
        reason: RevocationReason::from_code(code).ok_or_else(|| {
            Fail::J(JournalError::Storage {
                path: "revocations".into(),
                detail: format!("reason {code} is not keyCompromise (1), superseded (4) or cessationOfOperation (5)"),
            })
        })?,
        revoked_at: r.get(3),
        card_serial: r.get(4),
        station: r.get(5),
        operator: r.get(6),
    })
}

/// Start an attempt on a locked record: new fencing token, lease from now.
#[allow(clippy::too_many_arguments)]
fn insert_attempt(
    t: &mut Transaction<'_>,
    record_id: &str,
    batch_id: i64,
    kind: AttemptKind,
    who: &Who,
    serial: &str,
    now: Millis,
    lease_ms: i64,
) -> F<(i64, i64)> {
    let token: i64 = t
        .query_one(
            "UPDATE records SET state = 'in_progress', updated_at = $2, claim_token = claim_token + 1
             WHERE record_id = $1 RETURNING claim_token",
            &[&record_id, &now],
        )?
        .get(0);
    let id: i64 = t
        .query_one(
            "INSERT INTO attempts (record_id, batch_id, kind, station, reader, operator, card_serial,
                                   started_at, outcome, token, lease_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'in_progress', $9, cardsmith_now_ms() + $10)
             RETURNING id",
            &[
                &record_id,
                &batch_id,
                &kind.as_str(),
                &who.station,
                &who.reader.as_deref().unwrap_or(""),
                &who.operator,
                &serial,
                &now,
                &token,
                // The lease runs from now, not from the start of the
                // transaction: a claim that waited on a lock (another
                // station's stalled transaction) is not born expired.
                &lease_ms,
            ],
        )?
        .get(0);
    audit_row(
        t,
        &who.station,
        &who.operator,
        now,
        "attempts",
        &[V::Int(id)],
    )?;
    Ok((id, token))
}

/// Expired claims of `batch` (or of every batch) end interrupted; their
/// records go back to the queue unless claimed again meanwhile.
fn reap_expired(t: &mut Transaction<'_>, batch: Option<i64>, now: Millis) -> F<Vec<String>> {
    let rows = t.query(
        "WITH expired AS (
             UPDATE attempts SET outcome = 'interrupted', finished_at = $2, reason_class = $3,
                 reason = 'station ' || station || ' held the claim past its lease (stopped, paused or cut off from the register); the record went back to the queue'
             WHERE outcome = 'in_progress' AND lease_until < $2 AND ($1::BIGINT IS NULL OR batch_id = $1)
             RETURNING id, record_id, token),
         requeued AS (
             UPDATE records r SET state = 'pending', updated_at = $2
             FROM expired e
             WHERE r.record_id = e.record_id AND r.state = 'in_progress' AND r.claim_token = e.token)
         SELECT id, record_id FROM expired ORDER BY id",
        &[&batch, &now, &LEASE_EXPIRED],
    )?;
    for r in &rows {
        audit_row(t, "", "cardsmith", now, "attempts", &[V::Int(r.get(0))])?;
    }
    let ids: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
    if !ids.is_empty() {
        let who = Who {
            station: String::new(),
            operator: "cardsmith".into(),
            reader: None,
        };
        event(
            t,
            now,
            &who,
            None,
            "lease expired",
            &format!(
                "{} claim(s) expired; records back in the queue: {}",
                ids.len(),
                ids.join(", ")
            ),
        )?;
    }
    Ok(ids)
}

/// Load a batch in the transaction `t`, chunk by chunk from `next`: a
/// batch already loaded (same digest) is returned as it is; otherwise each
/// chunk's free record ids are queued in one statement, and the others set
/// aside with why.
fn load_chunks(
    t: &mut Transaction<'_>,
    name: &str,
    path: &str,
    digest: &str,
    who: &Who,
    next: &mut ChunkSource<'_>,
) -> F<(BatchInfo, Vec<SetAside>)> {
    // One loader at a time: two stations loading the same file at once
    // get the same batch; one transaction for the whole batch.
    t.execute("LOCK TABLE batches IN SHARE ROW EXCLUSIVE MODE", &[])?;
    if let Some(b) = t.query_opt(
        &format!("SELECT {BATCH_COLS} FROM batches WHERE digest = $1"),
        &[&digest],
    )? {
        return Ok((batch_row(&b), vec![]));
    }
    let now = now(t)?;
    let id: i64 = t
        .query_one(
            "INSERT INTO batches (name, path, digest, loaded_at, loaded_by, station, records, invalid)
             VALUES ($1, $2, $3, $4, $5, $6, 0, 0) RETURNING id",
            &[&name, &path, &digest, &now, &who.operator, &who.station],
        )?
        .get(0);
    // One statement a chunk: the records whose id is free are
    // queued; the others come back by their absence from RETURNING
    // (a duplicate within the chunk loses to its first line).
    let insert = t.prepare(
        "INSERT INTO records (record_id, batch_id, line, state, updated_at, request_day, office_kind, office_code)
         SELECT rid, $1, ln, 'pending', $4, rday, okind, ocode
         FROM unnest($2::TEXT[], $3::BIGINT[], $5::BIGINT[], $6::TEXT[], $7::TEXT[])
              WITH ORDINALITY AS q(rid, ln, rday, okind, ocode, ord)
         ORDER BY ord
         ON CONFLICT (record_id) DO NOTHING
         RETURNING line",
    )?;
    let owners = t.prepare("SELECT record_id, batch_id FROM records WHERE record_id = ANY($1)")?;
    let aside_rows = t.prepare(
        "INSERT INTO set_aside (batch_id, line, record_id, reason)
         SELECT $1, ln, rid, why
         FROM unnest($2::BIGINT[], $3::TEXT[], $4::TEXT[]) WITH ORDINALITY AS a(ln, rid, why, ord)
         ORDER BY ord",
    )?;
    let mut all_aside: Vec<SetAside> = Vec::new();
    let mut queued = 0i64;
    while let Some(chunk) = next().map_err(Fail::J)? {
        let ids: Vec<&str> = chunk.records.iter().map(|r| r.record_id.as_str()).collect();
        let lines: Vec<i64> = chunk.records.iter().map(|r| r.line as i64).collect();
        let days: Vec<Option<i64>> = chunk
            .records
            .iter()
            .map(|r| r.request.as_ref().map(|q| q.day))
            .collect();
        let kinds: Vec<Option<&str>> = chunk
            .records
            .iter()
            .map(|r| r.request.as_ref().map(|q| q.office_kind.as_str()))
            .collect();
        let codes: Vec<Option<&str>> = chunk
            .records
            .iter()
            .map(|r| r.request.as_ref().map(|q| q.office_code.as_str()))
            .collect();
        let inserted: std::collections::HashSet<i64> = t
            .query(&insert, &[&id, &ids, &lines, &now, &days, &kinds, &codes])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        queued += inserted.len() as i64;
        let mut aside = chunk.set_aside;
        let refused: Vec<&NewRecord> = chunk
            .records
            .iter()
            .filter(|r| !inserted.contains(&(r.line as i64)))
            .collect();
        if !refused.is_empty() {
            let refused_ids: Vec<&str> = refused.iter().map(|r| r.record_id.as_str()).collect();
            let owner: std::collections::HashMap<String, i64> = t
                .query(&owners, &[&refused_ids])?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for r in refused {
                let b = owner.get(&r.record_id).copied().unwrap_or(id);
                aside.push(SetAside {
                    record_id: Some(r.record_id.clone()),
                    line: r.line,
                    reason: if b == id {
                        format!("record_id {} appears twice in this batch", r.record_id)
                    } else {
                        format!("record_id {} is already in batch {b}", r.record_id)
                    },
                });
            }
        }
        aside.sort_by_key(|a| a.line);
        let a_lines: Vec<i64> = aside.iter().map(|a| a.line as i64).collect();
        let a_ids: Vec<Option<&str>> = aside.iter().map(|a| a.record_id.as_deref()).collect();
        let a_why: Vec<&str> = aside.iter().map(|a| a.reason.as_str()).collect();
        if !aside.is_empty() {
            t.execute(&aside_rows, &[&id, &a_lines, &a_ids, &a_why])?;
        }
        all_aside.append(&mut aside);
    }
    let b = t.query_one(
        &format!(
            "UPDATE batches SET records = $2, invalid = $3 WHERE id = $1 RETURNING {BATCH_COLS}"
        ),
        &[&id, &queued, &(all_aside.len() as i64)],
    )?;
    audit_row(
        t,
        &who.station,
        &who.operator,
        now,
        "batches",
        &[V::Int(id)],
    )?;
    event(
        t,
        now,
        who,
        None,
        "batch loaded",
        &format!(
            "batch {id} {name}: {queued} queued, {} set aside",
            all_aside.len()
        ),
    )?;
    Ok((batch_row(&b), all_aside))
}

impl Journal for PgJournal {
    fn location(&self) -> String {
        self.target.display.clone()
    }

    fn load_batch(
        &self,
        name: &str,
        path: &str,
        digest: &str,
        who: &Who,
        records: &[NewRecord],
        set_aside: &[SetAside],
    ) -> Result<(BatchInfo, Vec<SetAside>)> {
        // The streamed load with one chunk, made afresh for each try (the
        // records are at hand, so a cut connection can be retried).
        self.tx(|t| {
            let mut once = Some(LoadChunk {
                records: records.to_vec(),
                set_aside: set_aside.to_vec(),
            });
            load_chunks(t, name, path, digest, who, &mut || Ok(once.take()))
        })
    }

    fn load_batch_streamed(
        &self,
        name: &str,
        path: &str,
        digest: &str,
        who: &Who,
        next: &mut ChunkSource<'_>,
    ) -> Result<(BatchInfo, Vec<SetAside>)> {
        // Chunks cannot be read twice: one try; a load cut short leaves
        // nothing and is loaded again.
        self.tx_once(|t| load_chunks(t, name, path, digest, who, next))
    }

    fn batch(&self, id: Option<i64>) -> Result<Option<BatchInfo>> {
        self.tx(|t| {
            let r = match id {
                Some(id) => t.query_opt(
                    &format!("SELECT {BATCH_COLS} FROM batches WHERE id = $1"),
                    &[&id],
                )?,
                None => t.query_opt(
                    &format!("SELECT {BATCH_COLS} FROM batches ORDER BY id DESC LIMIT 1"),
                    &[],
                )?,
            };
            Ok(r.as_ref().map(batch_row))
        })
    }

    fn set_aside(&self, batch: i64) -> Result<Vec<SetAside>> {
        self.tx(|t| {
            Ok(t.query(
                "SELECT record_id, line, reason FROM set_aside WHERE batch_id = $1 ORDER BY line",
                &[&batch],
            )?
            .iter()
            .map(|r| SetAside {
                record_id: r.get(0),
                line: u(r.get(1)),
                reason: r.get(2),
            })
            .collect())
        })
    }

    fn recover_interrupted(&self, who: &Who) -> Result<Vec<AttemptRow>> {
        self.tx(|t| {
            let now = now(t)?;
            let rows: Vec<AttemptRow> = t
                .query(
                    &format!(
                        "UPDATE attempts SET outcome = 'interrupted', finished_at = $2,
                             reason_class = 'station stopped',
                             reason = 'the line stopped during this attempt (found on resume)'
                         WHERE outcome = 'in_progress' AND station = $1
                         RETURNING {ATTEMPT_COLS}"
                    ),
                    &[&who.station, &now],
                )?
                .iter()
                .map(attempt_row)
                .collect();
            let mut rows = rows;
            rows.sort_by_key(|a| a.id);
            for a in &rows {
                t.execute(
                    "UPDATE records SET state = 'pending', updated_at = $2
                     WHERE record_id = $1 AND state = 'in_progress'",
                    &[&a.record_id, &now],
                )?;
                audit_row(
                    t,
                    &who.station,
                    &who.operator,
                    now,
                    "attempts",
                    &[V::Int(a.id)],
                )?;
            }
            if !rows.is_empty() {
                event(
                    t,
                    now,
                    who,
                    None,
                    "resume",
                    &format!(
                        "{} attempt(s) interrupted by the stop; records back in the queue: {}",
                        rows.len(),
                        rows.iter()
                            .map(|a| a.record_id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )?;
            }
            Ok(rows)
        })
    }

    fn card(&self, serial: &str) -> Result<CardKnown> {
        self.tx(|t| {
            let last = t.query_opt(
                "SELECT id, record_id, outcome, station, reason, card_terminated FROM attempts
                 WHERE card_serial = $1 ORDER BY (outcome = 'good') DESC, id DESC LIMIT 1",
                &[&serial],
            )?;
            let rejected = t.query_opt(
                "SELECT reason, terminated FROM rejected_cards WHERE serial = $1 ORDER BY id DESC LIMIT 1",
                &[&serial],
            )?;
            let last = last.map(|r| {
                (
                    r.get::<_, i64>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    r.get::<_, String>(3),
                    r.get::<_, Option<String>>(4),
                    r.get::<_, bool>(5),
                )
            });
            Ok(match (last, rejected) {
                (Some((id, rec, o, _, _, _)), _) if o == "good" => CardKnown::Good {
                    record_id: rec,
                    attempt_id: id,
                },
                (Some((id, rec, o, st, _, _)), _) if o == "in_progress" => CardKnown::InProgress {
                    record_id: rec,
                    attempt_id: id,
                    station: st,
                },
                (last, Some(r)) => CardKnown::Rejected {
                    record_id: last.map(|l| l.1),
                    reason: r.get(0),
                    terminated: r.get(1),
                },
                (Some((_, rec, o, _, reason, term)), None) if o == "rejected" => {
                    CardKnown::Rejected {
                        record_id: Some(rec),
                        reason: reason.unwrap_or_default(),
                        terminated: term,
                    }
                }
                (Some((id, rec, _, _, _, _)), None) => CardKnown::Interrupted {
                    record_id: rec,
                    attempt_id: id,
                },
                (None, None) => CardKnown::Unknown,
            })
        })
    }

    fn claim(&self, batch: i64, who: &Who, serial: &str) -> Result<Option<Claim>> {
        let lease = self.lease_ms();
        self.tx(|t| {
            let now = now(t)?;
            // The same card asking again (a retry after a lost answer)
            // keeps its live claim.
            if let Some(r) = t.query_opt(
                "SELECT a.id, a.record_id, r.line, a.token FROM attempts a
                 JOIN records r ON r.record_id = a.record_id
                 WHERE a.card_serial = $1 AND a.station = $2 AND a.batch_id = $3 AND a.kind = 'perso'
                   AND a.outcome = 'in_progress' AND a.lease_until >= $4
                 ORDER BY a.id DESC LIMIT 1 FOR UPDATE OF a",
                &[&serial, &who.station, &batch, &now],
            )? {
                let attempt_id: i64 = r.get(0);
                t.execute(
                    "UPDATE attempts SET lease_until = cardsmith_now_ms() + $2 WHERE id = $1",
                    &[&attempt_id, &lease],
                )?;
                return Ok(Some(Claim {
                    attempt_id,
                    record_id: r.get(1),
                    line: u(r.get(2)),
                    kind: AttemptKind::Perso,
                    token: r.get(3),
                }));
            }
            reap_expired(t, Some(batch), now)?;
            let Some(next) = t.query_opt(
                "SELECT record_id, line FROM records WHERE batch_id = $1 AND state = 'pending'
                 ORDER BY line LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[&batch],
            )?
            else {
                return Ok(None);
            };
            let record_id: String = next.get(0);
            let (attempt_id, token) = insert_attempt(
                t,
                &record_id,
                batch,
                AttemptKind::Perso,
                who,
                serial,
                now,
                lease,
            )?;
            Ok(Some(Claim {
                attempt_id,
                record_id,
                line: u(next.get(1)),
                kind: AttemptKind::Perso,
                token,
            }))
        })
    }

    fn claim_recovery(&self, who: &Who, serial: &str) -> Result<Option<Claim>> {
        let lease = self.lease_ms();
        self.tx(|t| {
            let now = now(t)?;
            let Some(last) = t.query_opt(
                "SELECT a.record_id, a.batch_id, a.outcome FROM attempts a
                 WHERE a.card_serial = $1 ORDER BY a.id DESC LIMIT 1",
                &[&serial],
            )?
            else {
                return Ok(None);
            };
            let (record_id, batch, outcome): (String, i64, String) =
                (last.get(0), last.get(1), last.get(2));
            if outcome != "interrupted" {
                return Ok(None);
            }
            let Some(rec) = t.query_opt(
                "SELECT state, line FROM records WHERE record_id = $1 FOR UPDATE",
                &[&record_id],
            )?
            else {
                return Ok(None);
            };
            if rec.get::<_, &str>(0) != "pending" {
                return Ok(None);
            }
            let (attempt_id, token) = insert_attempt(
                t,
                &record_id,
                batch,
                AttemptKind::Recovery,
                who,
                serial,
                now,
                lease,
            )?;
            Ok(Some(Claim {
                attempt_id,
                record_id,
                line: u(rec.get(1)),
                kind: AttemptKind::Recovery,
                token,
            }))
        })
    }

    fn finish(&self, attempt_id: i64, f: &Finish) -> Result<()> {
        self.tx(|t| {
            let Some(a) = t.query_opt(
                "SELECT record_id, card_serial, outcome, token, lease_until, reason_class, station, operator
                 FROM attempts WHERE id = $1 FOR UPDATE",
                &[&attempt_id],
            )?
            else {
                return Err(JournalError::NoSuchAttempt(attempt_id).into());
            };
            let (record_id, serial, outcome): (String, String, String) =
                (a.get(0), a.get(1), a.get(2));
            let (token, lease_until, reason_class): (i64, Option<i64>, Option<String>) =
                (a.get(3), a.get(4), a.get(5));
            let o = f.outcome.unwrap_or(Outcome::Interrupted);
            let lost = |why: &str| {
                Fail::J(JournalError::ClaimLost {
                    attempt_id,
                    record_id: record_id.clone(),
                    why: why.to_string(),
                })
            };
            if outcome == o.as_str() {
                return Ok(());
            }
            if outcome != "in_progress" {
                return Err(if reason_class.as_deref() == Some(LEASE_EXPIRED) {
                    lost("its lease expired and the record went back to the queue")
                } else {
                    JournalError::NoSuchAttempt(attempt_id).into()
                });
            }
            let current: i64 = t
                .query_one(
                    "SELECT claim_token FROM records WHERE record_id = $1 FOR UPDATE",
                    &[&record_id],
                )?
                .get(0);
            let now = now(t)?;
            if current != token || lease_until.is_some_and(|l| l < now) {
                // Refused; the expired claim is reaped below, in a
                // transaction of its own (this one rolls back).
                return Err(if current != token {
                    lost(&format!(
                        "the record was claimed again since (token {current}, this attempt holds {token})"
                    ))
                } else {
                    lost("its lease expired before the attempt ended")
                });
            }
            if o == Outcome::Good {
                if let Some(r) = t.query_opt(
                    "SELECT card_serial FROM attempts WHERE record_id = $1 AND outcome = 'good'",
                    &[&record_id],
                )? {
                    return Err(JournalError::AlreadyGood {
                        record_id: record_id.clone(),
                        serial: r.get(0),
                    }
                    .into());
                }
                if t.query_opt(
                    "SELECT 1 FROM attempts WHERE card_serial = $1 AND outcome = 'good'",
                    &[&serial],
                )?
                .is_some()
                {
                    return Err(JournalError::CardTaken {
                        serial: serial.clone(),
                        record_id: record_id.clone(),
                    }
                    .into());
                }
            }
            t.execute(
                "UPDATE attempts SET outcome = $2, finished_at = $3, reason_class = $4, reason = $5,
                     stages = $6, apdus = $7, transcript_sha256 = $8, card_terminated = $9
                 WHERE id = $1",
                &[
                    &attempt_id,
                    &o.as_str(),
                    &now,
                    &f.reason_class,
                    &f.reason,
                    &serde_json::to_string(&f.stages).unwrap_or_else(|_| "[]".into()),
                    &(f.apdus as i64),
                    &f.transcript_sha256,
                    &f.card_terminated,
                ],
            )?;
            match o {
                Outcome::Good => t.execute(
                    "UPDATE records SET state = 'good', card_serial = $2, reason = NULL, updated_at = $3
                     WHERE record_id = $1 AND claim_token = $4",
                    &[&record_id, &serial, &now, &token],
                )?,
                Outcome::Rejected => t.execute(
                    "UPDATE records SET rejects = rejects + 1, reason = $2, updated_at = $3,
                         state = CASE WHEN rejects + 1 >= $4 AND $4 > 0 THEN 'held' ELSE 'pending' END
                     WHERE record_id = $1 AND state = 'in_progress'",
                    &[&record_id, &f.reason, &now, &i64::from(f.max_rejects)],
                )?,
                Outcome::Interrupted => t.execute(
                    "UPDATE records SET state = 'pending', updated_at = $2
                     WHERE record_id = $1 AND state = 'in_progress'",
                    &[&record_id, &now],
                )?,
            };
            let (station, operator): (String, String) = (a.get(6), a.get(7));
            audit_row(t, &station, &operator, now, "attempts", &[V::Int(attempt_id)])?;
            Ok(())
        })
        .map_err(|e| {
            if matches!(e, JournalError::ClaimLost { .. }) {
                let _ = self.tx(|t| {
                    let now = now(t)?;
                    reap_expired(t, None, now)
                });
            }
            e
        })
    }

    fn renew(&self, who: &Who) -> Result<u64> {
        let lease = self.lease_ms();
        self.tx(|t| {
            let now = now(t)?;
            Ok(t.execute(
                "UPDATE attempts SET lease_until = $2
                 WHERE station = $1 AND outcome = 'in_progress' AND lease_until >= $3",
                &[&who.station, &now.saturating_add(lease), &now],
            )?)
        })
    }

    fn lease(&self) -> Duration {
        self.opts.lease
    }

    fn audit(&self) -> Result<audit::Report> {
        self.tx(|t| {
            // One consistent snapshot of the trail and the tables.
            t.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
            let entries: Vec<audit::Entry> = t
                .query(
                    "SELECT seq, at, station, operator, tbl, row_key, row, prev_sha256, sha256 FROM audit ORDER BY seq",
                    &[],
                )?
                .iter()
                .map(|r| audit::Entry {
                    seq: r.get(0),
                    at: r.get(1),
                    station: r.get(2),
                    operator: r.get(3),
                    table: r.get(4),
                    row_key: r.get(5),
                    row: r.get(6),
                    prev_sha256: r.get(7),
                    sha256: r.get(8),
                })
                .collect();
            let head = t
                .query_opt("SELECT seq, sha256 FROM audit_head WHERE id = 1", &[])?
                .map(|r| (r.get(0), r.get(1)));
            let mut tables = vec![];
            for name in audit::AUDITED {
                if let Some(spec) = rows::spec(name) {
                    tables.push((spec, rows::pg_rows(t, spec, None)?));
                }
            }
            Ok(audit::check(&entries, head, &tables))
        })
    }

    fn reject_card(&self, who: &Who, serial: &str, reason: &str, terminated: bool) -> Result<()> {
        self.tx(|t| {
            let now = now(t)?;
            let id: i64 = t
                .query_one(
                    "INSERT INTO rejected_cards (serial, at, station, operator, reader, reason, terminated)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    &[&serial, &now, &who.station, &who.operator, &who.reader, &reason, &terminated],
                )?
                .get(0);
            audit_row(t, &who.station, &who.operator, now, "rejected_cards", &[V::Int(id)])
        })
    }

    fn event(&self, who: &Who, kind: &str, detail: &str) -> Result<()> {
        self.tx(|t| {
            let now = now(t)?;
            event(t, now, who, who.reader.as_deref(), kind, detail)
        })
    }

    fn requeue(&self, who: &Who, record_id: &str) -> Result<()> {
        self.tx(|t| {
            let state: String = t
                .query_opt(
                    "SELECT state FROM records WHERE record_id = $1 FOR UPDATE",
                    &[&record_id],
                )?
                .ok_or_else(|| JournalError::NoSuchRecord(record_id.to_string()))?
                .get(0);
            if state != "held" {
                return Err(JournalError::Refused(format!(
                    "record {record_id} is {state}; only held records can be requeued"
                ))
                .into());
            }
            let now = now(t)?;
            t.execute(
                "UPDATE records SET state = 'pending', rejects = 0, updated_at = $2 WHERE record_id = $1",
                &[&record_id, &now],
            )?;
            event(
                t,
                now,
                who,
                None,
                "requeue",
                &format!("record {record_id} put back in the queue"),
            )
        })
    }

    fn summary(&self, batch: i64) -> Result<Summary> {
        self.tx(|t| {
            let mut s = Summary::default();
            for r in t.query(
                "SELECT state, COUNT(*) FROM records WHERE batch_id = $1 GROUP BY state",
                &[&batch],
            )? {
                s.add_records(r.get(0), u(r.get(1)));
            }
            s.invalid = u(t
                .query_one(
                    "SELECT COUNT(*) FROM set_aside WHERE batch_id = $1",
                    &[&batch],
                )?
                .get(0));
            for r in t.query(
                "SELECT outcome, COUNT(*) FROM attempts WHERE batch_id = $1 GROUP BY outcome",
                &[&batch],
            )? {
                s.add_attempts(r.get(0), u(r.get(1)));
            }
            Ok(s)
        })
    }

    fn programme_groups(&self) -> Result<Vec<ProgrammeGroup>> {
        let sql = crate::register::sqlite::PROGRAMME_GROUPS_SQL.replace("?1", "$1::BIGINT");
        self.tx(|t| {
            Ok(t.query(sql.as_str(), &[&IRAN_OFFSET_MS])?
                .iter()
                .map(|r| ProgrammeGroup {
                    office_kind: r.get(0),
                    office_code: r.get(1),
                    request_day: r.get(2),
                    made_day: r.get(3),
                    ship_office: r.get(4),
                    shipped_day: r.get(5),
                    delivered_day: r.get(6),
                    count: u(r.get(7)),
                })
                .collect())
        })
    }

    fn record(&self, record_id: &str) -> Result<Option<RecordRow>> {
        self.tx(|t| {
            Ok(t.query_opt(
                &format!("SELECT {RECORD_COLS} FROM records WHERE record_id = $1"),
                &[&record_id],
            )?
            .as_ref()
            .map(record_row))
        })
    }

    fn records(&self, batch: i64) -> Result<Vec<RecordRow>> {
        self.tx(|t| {
            Ok(t.query(
                &format!("SELECT {RECORD_COLS} FROM records WHERE batch_id = $1 ORDER BY line"),
                &[&batch],
            )?
            .iter()
            .map(record_row)
            .collect())
        })
    }

    fn attempts_for_record(&self, record_id: &str) -> Result<Vec<AttemptRow>> {
        self.attempts_where("record_id", &record_id)
    }

    fn attempts_for_card(&self, serial: &str) -> Result<Vec<AttemptRow>> {
        self.attempts_where("card_serial", &serial)
    }

    fn attempts(&self, batch: i64) -> Result<Vec<AttemptRow>> {
        self.attempts_where("batch_id", &batch)
    }

    fn rejects_by_reason(&self, batch: Option<i64>) -> Result<Vec<(String, u64)>> {
        self.tx(|t| {
            Ok(t.query(
                "SELECT reason, COUNT(*) FROM (
                     SELECT COALESCE(reason_class, 'unspecified') AS reason FROM attempts
                     WHERE outcome IN ('rejected', 'interrupted') AND ($1::BIGINT IS NULL OR batch_id = $1)
                     UNION ALL
                     SELECT reason FROM rejected_cards WHERE $1::BIGINT IS NULL
                 ) AS x GROUP BY reason ORDER BY COUNT(*) DESC, reason",
                &[&batch],
            )?
            .iter()
            .map(|r| (r.get(0), u(r.get(1))))
            .collect())
        })
    }

    fn throughput(&self, batch: Option<i64>) -> Result<Vec<ThroughputRow>> {
        self.tx(|t| {
            Ok(t.query(
                "SELECT reader, (finished_at / 3600000) * 3600000 AS hour,
                        COUNT(*) FILTER (WHERE outcome = 'good'),
                        COUNT(*) FILTER (WHERE outcome = 'rejected'),
                        COUNT(*) FILTER (WHERE outcome = 'interrupted')
                 FROM attempts WHERE finished_at IS NOT NULL AND ($1::BIGINT IS NULL OR batch_id = $1)
                 GROUP BY reader, hour ORDER BY hour, reader",
                &[&batch],
            )?
            .iter()
            .map(|r| ThroughputRow {
                reader: r.get(0),
                hour: r.get(1),
                good: u(r.get(2)),
                rejected: u(r.get(3)),
                interrupted: u(r.get(4)),
            })
            .collect())
        })
    }

    fn events(&self, since: Millis) -> Result<Vec<EventRow>> {
        self.tx(|t| {
            Ok(t.query(
                "SELECT at, station, operator, reader, kind, detail FROM events WHERE at >= $1 ORDER BY id",
                &[&since],
            )?
            .iter()
            .map(|r| EventRow {
                at: r.get(0),
                station: r.get(1),
                operator: r.get(2),
                reader: r.get(3),
                kind: r.get(4),
                detail: r.get(5),
            })
            .collect())
        })
    }

    fn ship(
        &self,
        who: &Who,
        serial: &str,
        record_id: &str,
        national_id: &str,
        office: &str,
    ) -> Result<Shipment> {
        self.tx(|t| {
            let good: Option<String> = t
                .query_opt(
                    "SELECT record_id FROM attempts WHERE card_serial = $1 AND outcome = 'good'",
                    &[&serial],
                )?
                .map(|r| r.get(0));
            match good {
                None => {
                    return Err(JournalError::Refused(format!(
                        "card {serial} is not a good card of the line: the journal has no good personalization for it"
                    ))
                    .into())
                }
                Some(r) if r != record_id => {
                    return Err(JournalError::Refused(format!(
                        "card {serial} holds record {r}, not {record_id}"
                    ))
                    .into())
                }
                Some(_) => {}
            }
            if let Some(r) = t.query_opt(
                &format!("SELECT {SHIPMENT_COLS} FROM shipments WHERE card_serial = $1"),
                &[&serial],
            )? {
                let s = shipment_row(&r);
                if s.office == office {
                    return Ok(s);
                }
                return Err(JournalError::Refused(format!(
                    "card {serial} was already shipped to office {} on {} by {}",
                    s.office,
                    iso_time(s.at),
                    s.operator
                ))
                .into());
            }
            let now = now(t)?;
            let r = t.query_one(
                &format!(
                    "INSERT INTO shipments (card_serial, record_id, national_id, office, at, station, operator)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {SHIPMENT_COLS}"
                ),
                &[&serial, &record_id, &national_id, &office, &now, &who.station, &who.operator],
            )?;
            audit_row(t, &who.station, &who.operator, now, "shipments", &[V::Int(r.get(0))])?;
            event(
                t,
                now,
                who,
                who.reader.as_deref(),
                "shipped",
                &format!("card {serial} (record {record_id}) to office {office}"),
            )?;
            Ok(shipment_row(&r))
        })
    }

    fn shipment(&self, serial: &str) -> Result<Option<Shipment>> {
        self.tx(|t| {
            Ok(t.query_opt(
                &format!("SELECT {SHIPMENT_COLS} FROM shipments WHERE card_serial = $1"),
                &[&serial],
            )?
            .as_ref()
            .map(shipment_row))
        })
    }

    fn deliver(&self, who: &Who, d: &Delivery) -> Result<()> {
        self.tx(|t| {
            let shipped: Option<String> = t
                .query_opt(
                    "SELECT office FROM shipments WHERE card_serial = $1",
                    &[&d.card_serial],
                )?
                .map(|r| r.get(0));
            match shipped {
                None => {
                    return Err(JournalError::Refused(format!(
                        "card {} was never shipped",
                        d.card_serial
                    ))
                    .into())
                }
                Some(o) if o != d.office => {
                    return Err(JournalError::Refused(format!(
                        "card {} was shipped to office {o}, not {}",
                        d.card_serial, d.office
                    ))
                    .into())
                }
                Some(_) => {}
            }
            if let Some(r) = t.query_opt(
                "SELECT station, operator FROM deliveries WHERE card_serial = $1",
                &[&d.card_serial],
            )? {
                // A retry of this very delivery whose answer was lost.
                if r.get::<_, &str>(0) == who.station && r.get::<_, &str>(1) == who.operator {
                    return Ok(());
                }
                return Err(JournalError::Refused(format!(
                    "card {} was already delivered",
                    d.card_serial
                ))
                .into());
            }
            let now = now(t)?;
            let did: i64 = t
                .query_one(
                    "INSERT INTO deliveries (card_serial, record_id, national_id, office, at, station, operator, reader,
                                             status, status_at, status_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'activated', $5, $7) RETURNING id",
                    &[&d.card_serial, &d.record_id, &d.national_id, &d.office, &now, &who.station, &who.operator, &who.reader],
                )?
                .get(0);
            audit_row(t, &who.station, &who.operator, now, "deliveries", &[V::Int(did)])?;
            for c in &d.certificates {
                t.execute(
                    "INSERT INTO card_certificates (card_serial, key, serial, subject, issuer, key_usage, not_after, sha256)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[&d.card_serial, &c.key, &c.serial, &c.subject, &c.issuer, &c.key_usage, &c.not_after, &c.sha256],
                )?;
                let key = [V::Text(d.card_serial.clone()), V::Text(c.key.clone())];
                audit_row(t, &who.station, &who.operator, now, "card_certificates", &key)?;
            }
            let open = t.query_opt(
                "SELECT id, previous_card FROM replacements WHERE national_id = $1 AND new_card IS NULL
                 ORDER BY id LIMIT 1 FOR UPDATE",
                &[&d.national_id],
            )?;
            let mut detail = format!(
                "card {} (record {}) delivered and activated at office {}",
                d.card_serial, d.record_id, d.office
            );
            if let Some(r) = open {
                let (id, previous): (i64, String) = (r.get(0), r.get(1));
                t.execute(
                    "UPDATE replacements SET new_card = $2 WHERE id = $1",
                    &[&id, &d.card_serial],
                )?;
                audit_row(t, &who.station, &who.operator, now, "replacements", &[V::Int(id)])?;
                let prev_id: i64 = t
                    .query_one(
                        "UPDATE deliveries SET replaced_by = $2 WHERE card_serial = $1 RETURNING id",
                        &[&previous, &d.card_serial],
                    )?
                    .get(0);
                audit_row(t, &who.station, &who.operator, now, "deliveries", &[V::Int(prev_id)])?;
                detail.push_str(&format!("; replaces card {previous} (request {id})"));
            }
            event(t, now, who, who.reader.as_deref(), "delivered", &detail)
        })
    }

    fn delivered(&self, serial: &str) -> Result<Option<DeliveredCard>> {
        self.tx(|t| {
            t.query_opt(
                &format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE card_serial = $1"),
                &[&serial],
            )?
            .as_ref()
            .map(delivered_row)
            .transpose()
        })
    }

    fn delivered_to(&self, national_id: &str) -> Result<Vec<DeliveredCard>> {
        self.tx(|t| {
            t.query(
                &format!(
                    "SELECT {DELIVERY_COLS} FROM deliveries WHERE national_id = $1 ORDER BY id"
                ),
                &[&national_id],
            )?
            .iter()
            .map(delivered_row)
            .collect()
        })
    }

    fn certificates(&self, serial: &str) -> Result<Vec<CertRow>> {
        self.tx(|t| {
            Ok(t.query(
                "SELECT key, serial, subject, issuer, key_usage, not_after, sha256
                 FROM card_certificates WHERE card_serial = $1 ORDER BY key",
                &[&serial],
            )?
            .iter()
            .map(|r| CertRow {
                key: r.get(0),
                serial: r.get(1),
                subject: r.get(2),
                issuer: r.get(3),
                key_usage: r.get(4),
                not_after: r.get(5),
                sha256: r.get(6),
            })
            .collect())
        })
    }

    fn request_replacement(
        &self,
        who: &Who,
        previous_card: &str,
        reason: &str,
        status: CardStatus,
        office: &str,
    ) -> Result<Replacement> {
        if status == CardStatus::Activated {
            return Err(JournalError::Refused(
                "a replaced card is either terminated or lost".into(),
            ));
        }
        self.tx(|t| {
            let card = t
                .query_opt(
                    &format!(
                        "SELECT {DELIVERY_COLS} FROM deliveries WHERE card_serial = $1 FOR UPDATE"
                    ),
                    &[&previous_card],
                )?
                .as_ref()
                .map(delivered_row)
                .transpose()?;
            let Some(card) = card else {
                let shipped: Option<String> = t
                    .query_opt(
                        "SELECT office FROM shipments WHERE card_serial = $1",
                        &[&previous_card],
                    )?
                    .map(|r| r.get(0));
                let why = match shipped {
                    Some(o) => format!(
                        "card {previous_card} was shipped to office {o} but never delivered to its holder and activated"
                    ),
                    None => format!(
                        "card {previous_card} was never delivered to a holder (the journal has no delivery of it)"
                    ),
                };
                return Err(JournalError::Refused(why).into());
            };
            if card.status != CardStatus::Activated {
                // A retry of this very request whose answer was lost.
                if let Some(r) = t.query_opt(
                    &format!(
                        "SELECT {REPLACEMENT_COLS} FROM replacements
                         WHERE previous_card = $1 AND station = $2 AND operator = $3 AND reason = $4 AND office = $5"
                    ),
                    &[&previous_card, &who.station, &who.operator, &reason, &office],
                )? {
                    let r = replacement_row(&r)?;
                    if r.previous_card_status == status {
                        return Ok(r);
                    }
                }
                return Err(JournalError::Refused(format!(
                    "card {previous_card} is already {} (since {}, by {}); it was replaced before",
                    card.status.as_str(),
                    iso_time(card.status_at),
                    card.status_by
                ))
                .into());
            }
            let now = now(t)?;
            let did: i64 = t
                .query_one(
                    "UPDATE deliveries SET status = $2, reason = $3, status_at = $4, status_by = $5 WHERE card_serial = $1 RETURNING id",
                    &[&previous_card, &status.as_str(), &reason, &now, &who.operator],
                )?
                .get(0);
            audit_row(t, &who.station, &who.operator, now, "deliveries", &[V::Int(did)])?;
            let r = t.query_one(
                &format!(
                    "INSERT INTO replacements (national_id, previous_card, reason, previous_card_status, office, at, station, operator)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {REPLACEMENT_COLS}"
                ),
                &[&card.national_id, &previous_card, &reason, &status.as_str(), &office, &now, &who.station, &who.operator],
            )?;
            let rep = replacement_row(&r)?;
            audit_row(t, &who.station, &who.operator, now, "replacements", &[V::Int(rep.id)])?;
            event(
                t,
                now,
                who,
                who.reader.as_deref(),
                &format!("card {}", status.as_str()),
                &format!(
                    "card {previous_card}: replacement request {} ({reason}) at office {office}",
                    rep.id
                ),
            )?;
            Ok(rep)
        })
    }

    fn record_revocation(&self, who: &Who, r: &Revocation) -> Result<Revocation> {
        let serial = r.serial.to_ascii_lowercase();
        self.tx(|t| {
            let q = format!("SELECT {REVOCATION_COLS} FROM revocations WHERE serial = $1");
            if let Some(first) = t.query_opt(&q, &[&serial])? {
                return revocation_row(&first);
            }
            let now = now(t)?;
            let inserted = t.execute(
                "INSERT INTO revocations (serial, issuer, reason, revoked_at, card_serial, station, operator)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (serial) DO NOTHING",
                &[&serial, &r.issuer, &i64::from(r.reason.code()), &now, &r.card_serial, &who.station, &who.operator],
            )?;
            if inserted == 1 {
                audit_row(t, &who.station, &who.operator, now, "revocations", &[V::Text(serial.clone())])?;
                event(
                    t,
                    now,
                    who,
                    who.reader.as_deref(),
                    "certificate revoked",
                    &format!(
                        "certificate {serial} of card {} revoked ({})",
                        r.card_serial,
                        r.reason.as_str()
                    ),
                )?;
            }
            revocation_row(&t.query_one(&q, &[&serial])?)
        })
    }

    fn revocation(&self, serial: &str) -> Result<Option<Revocation>> {
        let serial = serial.to_ascii_lowercase();
        self.tx(|t| {
            t.query_opt(
                &format!("SELECT {REVOCATION_COLS} FROM revocations WHERE serial = $1"),
                &[&serial],
            )?
            .as_ref()
            .map(revocation_row)
            .transpose()
        })
    }

    fn revocations(&self, issuer: &str) -> Result<Vec<Revocation>> {
        self.tx(|t| {
            t.query(
                &format!(
                    "SELECT {REVOCATION_COLS} FROM revocations WHERE issuer = $1 ORDER BY revoked_at, serial COLLATE \"C\""
                ),
                &[&issuer],
            )?
            .iter()
            .map(revocation_row)
            .collect()
        })
    }

    fn record_crl(
        &self,
        who: &Who,
        issuer: &str,
        this_update: Millis,
        next_update: Millis,
        entries: u64,
    ) -> Result<CrlIssued> {
        let n_entries = i64::try_from(entries).unwrap_or(i64::MAX);
        self.tx(|t| {
            // One CRL number at a time per register: a transaction-level
            // advisory lock (LOCK TABLE would need UPDATE on crls, which no
            // role has: CRL rows are never changed).
            t.execute(
                "SELECT pg_advisory_xact_lock(hashtext('cardsmith crl number'))",
                &[],
            )?;
            let number: i64 = t
                .query_one(
                    "SELECT COALESCE(MAX(number), 0) + 1 FROM crls WHERE issuer = $1",
                    &[&issuer],
                )?
                .get(0);
            t.execute(
                "INSERT INTO crls (issuer, number, this_update, next_update, entries, station, operator)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&issuer, &number, &this_update, &next_update, &n_entries, &who.station, &who.operator],
            )?;
            audit_row(
                t,
                &who.station,
                &who.operator,
                this_update,
                "crls",
                &[V::Text(issuer.to_string()), V::Int(number)],
            )?;
            Ok(CrlIssued {
                number,
                issuer: issuer.to_string(),
                this_update,
                next_update,
                entries,
            })
        })
    }

    fn may_record_at(&self, office: &str) -> Result<()> {
        let row = self.tx(|t| {
            Ok(t.query_one(
                "SELECT current_user::TEXT,
                        has_table_privilege('deliveries', 'INSERT')
                            AND has_table_privilege('replacements', 'INSERT'),
                        r.rolsuper OR r.rolbypassrls
                            OR pg_has_role('cardsmith_supervisor', 'USAGE')
                            OR pg_has_role((SELECT relowner FROM pg_class WHERE oid = 'deliveries'::regclass), 'USAGE'),
                        pg_has_role('cardsmith_counter', 'USAGE'),
                        cardsmith_office()
                 FROM pg_roles r WHERE r.rolname = current_user",
                &[],
            )?)
        })?;
        let (login, may_insert, everywhere, counter, own): (
            String,
            bool,
            bool,
            bool,
            Option<String>,
        ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        if !may_insert {
            return Err(JournalError::Refused(format!(
                "register {}: login {login} may not record deliveries or replacement requests (the register grants it no INSERT on them; a line station's login cannot); a counter needs its own login: `cardsmith journal grant LOGIN --role counter --office {office}`",
                self.target.display
            )));
        }
        if everywhere || !counter {
            return Ok(());
        }
        match own {
            Some(o) if o == office => Ok(()),
            Some(o) => Err(JournalError::Refused(format!(
                "register {}: login {login} records deliveries and replacement requests for office {o} only, not {office}; the register would refuse them (row-level security). Use office {office}'s own login",
                self.target.display
            ))),
            None => Err(JournalError::Refused(format!(
                "register {}: counter login {login} has no office in the register; give it one: `cardsmith journal grant {login} --role counter --office {office}`",
                self.target.display
            ))),
        }
    }

    fn replacements(&self, national_id: &str) -> Result<Vec<Replacement>> {
        self.tx(|t| {
            t.query(
                &format!(
                    "SELECT {REPLACEMENT_COLS} FROM replacements WHERE national_id = $1 ORDER BY id"
                ),
                &[&national_id],
            )?
            .iter()
            .map(replacement_row)
            .collect()
        })
    }
}
