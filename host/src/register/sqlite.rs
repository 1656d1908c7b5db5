//! The default journal: one SQLite file (`<data dir>/line/journal.sqlite`).
//!
//! WAL mode with `synchronous=FULL`: every commit is on disk before the
//! call returns, so a card is never reported good before its attempt is
//! durable. The "one good card per record" and "one good record per card"
//! rules are partial unique indexes, so the database itself refuses a
//! second good attempt whatever the code above it does. Claims run in
//! `BEGIN IMMEDIATE` transactions, so concurrent workers (threads here, or
//! processes sharing the file) never draw the same record.

use super::audit;
use super::journal::*;
use super::rows::{self, V};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const SCHEMA_VERSION: i64 = 6;

/// Version 1: the personalization line.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL,
    path      TEXT NOT NULL,
    digest    TEXT NOT NULL UNIQUE,
    loaded_at INTEGER NOT NULL,
    loaded_by TEXT NOT NULL,
    station   TEXT NOT NULL,
    records   INTEGER NOT NULL,
    invalid   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS set_aside (
    batch_id  INTEGER NOT NULL REFERENCES batches(id),
    line      INTEGER NOT NULL,
    record_id TEXT,
    reason    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    record_id   TEXT PRIMARY KEY,
    batch_id    INTEGER NOT NULL REFERENCES batches(id),
    line        INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'in_progress', 'good', 'held')),
    rejects     INTEGER NOT NULL DEFAULT 0,
    card_serial TEXT,
    reason      TEXT,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_queue ON records(batch_id, state, line);
CREATE TABLE IF NOT EXISTS attempts (
    id                INTEGER PRIMARY KEY,
    record_id         TEXT NOT NULL REFERENCES records(record_id),
    batch_id          INTEGER NOT NULL REFERENCES batches(id),
    kind              TEXT NOT NULL CHECK (kind IN ('perso', 'recovery')),
    station           TEXT NOT NULL,
    reader            TEXT NOT NULL,
    operator          TEXT NOT NULL,
    card_serial       TEXT NOT NULL,
    started_at        INTEGER NOT NULL,
    finished_at       INTEGER,
    outcome           TEXT NOT NULL CHECK (outcome IN ('in_progress', 'good', 'rejected', 'interrupted')),
    reason_class      TEXT,
    reason            TEXT,
    stages            TEXT NOT NULL DEFAULT '[]',
    apdus             INTEGER NOT NULL DEFAULT 0,
    transcript_sha256 TEXT,
    card_terminated   INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS one_good_card_per_record ON attempts(record_id) WHERE outcome = 'good';
CREATE UNIQUE INDEX IF NOT EXISTS one_good_record_per_card ON attempts(card_serial) WHERE outcome = 'good';
CREATE INDEX IF NOT EXISTS attempts_by_card ON attempts(card_serial);
CREATE INDEX IF NOT EXISTS attempts_by_batch ON attempts(batch_id);
CREATE TABLE IF NOT EXISTS rejected_cards (
    id         INTEGER PRIMARY KEY,
    serial     TEXT NOT NULL,
    at         INTEGER NOT NULL,
    station    TEXT NOT NULL,
    operator   TEXT NOT NULL,
    reader     TEXT,
    reason     TEXT NOT NULL,
    terminated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rejected_by_serial ON rejected_cards(serial);
CREATE TABLE IF NOT EXISTS events (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    station  TEXT NOT NULL,
    operator TEXT NOT NULL,
    reader   TEXT,
    kind     TEXT NOT NULL,
    detail   TEXT NOT NULL
);
"#;

/// Version 2: the pickup counter (`cardsmith activate`): shipments to
/// offices, deliveries, the status of delivered cards, their certificates
/// (for revocation), and replacement requests. Additive only: a version 1
/// journal keeps every row and gains these tables.
const MIGRATION_V2: &str = r#"
CREATE TABLE IF NOT EXISTS shipments (
    id          INTEGER PRIMARY KEY,
    card_serial TEXT NOT NULL UNIQUE,
    record_id   TEXT NOT NULL REFERENCES records(record_id),
    national_id TEXT NOT NULL,
    office      TEXT NOT NULL,
    at          INTEGER NOT NULL,
    station     TEXT NOT NULL,
    operator    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS shipments_by_office ON shipments(office);
CREATE TABLE IF NOT EXISTS deliveries (
    id          INTEGER PRIMARY KEY,
    card_serial TEXT NOT NULL UNIQUE REFERENCES shipments(card_serial),
    record_id   TEXT NOT NULL,
    national_id TEXT NOT NULL,
    office      TEXT NOT NULL,
    at          INTEGER NOT NULL,
    station     TEXT NOT NULL,
    operator    TEXT NOT NULL,
    reader      TEXT,
    status      TEXT NOT NULL CHECK (status IN ('activated', 'lost', 'terminated')),
    reason      TEXT,
    status_at   INTEGER NOT NULL,
    status_by   TEXT NOT NULL,
    replaced_by TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_by_holder ON deliveries(national_id);
CREATE TABLE IF NOT EXISTS card_certificates (
    card_serial TEXT NOT NULL REFERENCES deliveries(card_serial),
    key         TEXT NOT NULL,
    serial      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    key_usage   TEXT NOT NULL,
    not_after   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    PRIMARY KEY (card_serial, key)
);
CREATE TABLE IF NOT EXISTS replacements (
    id            INTEGER PRIMARY KEY,
    national_id   TEXT NOT NULL,
    previous_card TEXT NOT NULL UNIQUE REFERENCES deliveries(card_serial),
    reason        TEXT NOT NULL,
    previous_card_status TEXT NOT NULL CHECK (previous_card_status IN ('lost', 'terminated')),
    office        TEXT NOT NULL,
    at            INTEGER NOT NULL,
    station       TEXT NOT NULL,
    operator      TEXT NOT NULL,
    new_card      TEXT
);
CREATE INDEX IF NOT EXISTS replacements_by_holder ON replacements(national_id);
"#;

/// Version 3: claims are leases with fencing tokens (shared registers,
/// several stations on one batch). Rows of older journals get token 0 and
/// no lease: their attempts in progress are recovered by their station's
/// resume, as before.
const MIGRATION_V3: &str = r#"
ALTER TABLE records ADD COLUMN claim_token INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN token INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN lease_until INTEGER;
CREATE INDEX IF NOT EXISTS attempts_in_progress ON attempts(outcome, lease_until);
"#;

/// Version 4: the tamper-evident audit trail (see [`super::audit`]). The
/// rows an older journal holds are adopted into the trail when it is
/// upgraded, so the trail covers the whole journal from then on.
const MIGRATION_V4: &str = r#"
CREATE TABLE IF NOT EXISTS audit (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    station     TEXT NOT NULL,
    operator    TEXT NOT NULL,
    tbl         TEXT NOT NULL,
    row_key     TEXT NOT NULL,
    row         TEXT NOT NULL,
    prev_sha256 TEXT NOT NULL,
    sha256      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    seq    INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
INSERT OR IGNORE INTO audit_head (id, seq, sha256)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
"#;

/// Version 5: certificates revoked by the CA, and the CRLs it issued
/// (their numbers grow by one per issuer).
const MIGRATION_V5: &str = r#"
CREATE TABLE IF NOT EXISTS revocations (
    serial      TEXT PRIMARY KEY,
    issuer      TEXT NOT NULL,
    reason      INTEGER NOT NULL CHECK (reason IN (1, 4, 5)),
    revoked_at  INTEGER NOT NULL,
    card_serial TEXT NOT NULL,
    station     TEXT NOT NULL,
    operator    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS revocations_by_issuer ON revocations(issuer, revoked_at);
CREATE TABLE IF NOT EXISTS crls (
    issuer      TEXT NOT NULL,
    number      INTEGER NOT NULL CHECK (number > 0),
    this_update INTEGER NOT NULL,
    next_update INTEGER NOT NULL,
    entries     INTEGER NOT NULL,
    station     TEXT NOT NULL,
    operator    TEXT NOT NULL,
    PRIMARY KEY (issuer, number)
);
"#;

/// Version 6: the request each record answers (the programme view): its
/// date as days since 1970-01-01 and the office that took it. Rows of older
/// journals keep NULL there and are shown as unknown.
const MIGRATION_V6: &str = r#"
ALTER TABLE records ADD COLUMN request_day INTEGER;
ALTER TABLE records ADD COLUMN office_kind TEXT CHECK (office_kind IN ('domestic', 'consulate'));
ALTER TABLE records ADD COLUMN office_code TEXT;
CREATE INDEX IF NOT EXISTS shipments_by_record ON shipments(record_id);
"#;

/// Schema upgrades, in order: (version reached, SQL).
const MIGRATIONS: &[(i64, &str)] = &[
    (2, MIGRATION_V2),
    (3, MIGRATION_V3),
    (4, MIGRATION_V4),
    (5, MIGRATION_V5),
    (6, MIGRATION_V6),
];

/// The programme view's groups (see [`Journal::programme_groups`]); `?1`
/// is the Iran offset in ms. Both backends run the same text.
pub(crate) const PROGRAMME_GROUPS_SQL: &str = "
SELECT r.office_kind, r.office_code, r.request_day,
       (a.finished_at + ?1) / 86400000,
       s.office, (s.at + ?1) / 86400000,
       (d.at + ?1) / 86400000,
       COUNT(*)
FROM records r
LEFT JOIN attempts a ON a.record_id = r.record_id AND a.outcome = 'good'
LEFT JOIN shipments s ON s.record_id = r.record_id AND s.card_serial = a.card_serial
LEFT JOIN deliveries d ON d.card_serial = s.card_serial
GROUP BY r.office_kind, r.office_code, r.request_day,
         (a.finished_at + ?1) / 86400000, s.office, (s.at + ?1) / 86400000,
         (d.at + ?1) / 86400000";

fn revocation_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Revocation> {
    let code: i64 = r.get(2)?;
    Ok(Revocation {
        serial: r.get(0)?,
        issuer: r.get(1)?,
        reason: RevocationReason::from_code(code).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Integer,
                format!("revocations.reason: {code} is not keyCompromise (1), superseded (4) or cessationOfOperation (5)").into(),
            )
        })?,
        revoked_at: r.get(3)?,
        card_serial: r.get(4)?,
        station: r.get(5)?,
        operator: r.get(6)?,
    })
}

const REVOCATION_COLS: &str = "serial, issuer, reason, revoked_at, card_serial, station, operator";

/// Append the row `key` of `table`, as it is now, to the audit trail.
fn audit(
    tx: &rusqlite::Connection,
    station: &str,
    operator: &str,
    at: Millis,
    table: &str,
    key: &[V],
) -> rusqlite::Result<()> {
    let spec = rows::spec(table).ok_or_else(|| {
        rusqlite::Error::InvalidParameterName(format!("no audited table {table}"))
    })?;
    let row = rows::sqlite_rows(tx, spec, Some(key))?.into_iter().next();
    let (seq, prev): (i64, String) =
        tx.query_row("SELECT seq, sha256 FROM audit_head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let e = audit::next(
        seq,
        &prev,
        at,
        station,
        operator,
        table,
        audit::key_json(key),
        audit::row_json(spec, row.as_deref()),
    );
    tx.execute(
        "INSERT INTO audit (seq, at, station, operator, tbl, row_key, row, prev_sha256, sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            e.seq,
            e.at,
            e.station,
            e.operator,
            e.table,
            e.row_key,
            e.row,
            e.prev_sha256,
            e.sha256
        ],
    )?;
    tx.execute(
        "UPDATE audit_head SET seq = ?1, sha256 = ?2 WHERE id = 1",
        params![e.seq, e.sha256],
    )?;
    Ok(())
}

/// [`audit`] for `who`.
fn audit_by(
    tx: &rusqlite::Connection,
    who: &Who,
    at: Millis,
    table: &str,
    key: &[V],
) -> rusqlite::Result<()> {
    audit(tx, &who.station, &who.operator, at, table, key)
}

/// An event row, audited.
#[allow(clippy::too_many_arguments)]
fn log_event(
    tx: &rusqlite::Connection,
    at: Millis,
    station: &str,
    operator: &str,
    reader: Option<&str>,
    kind: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO events (at, station, operator, reader, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at, station, operator, reader, kind, detail],
    )?;
    let id = tx.last_insert_rowid();
    audit(tx, station, operator, at, "events", &[V::Int(id)])
}

/// Every row of the audited tables, adopted into the trail (an upgrade
/// from a journal without one).
fn adopt_into_trail(tx: &rusqlite::Connection) -> rusqlite::Result<()> {
    let now = now_ms();
    for table in audit::AUDITED {
        let Some(spec) = rows::spec(table) else {
            continue;
        };
        for r in rows::sqlite_rows(tx, spec, None)? {
            let key = audit::key_of(spec, &r);
            audit(
                tx,
                "",
                "cardsmith (adopted into the audit trail)",
                now,
                table,
                &key,
            )?;
        }
    }
    Ok(())
}

/// The SQLite journal.
pub struct SqliteJournal {
    path: PathBuf,
    conn: Mutex<Connection>,
    lease: std::time::Duration,
}

fn storage(path: &Path) -> impl Fn(rusqlite::Error) -> JournalError + '_ {
    move |e| JournalError::Storage {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

fn stages_json(stages: &[(String, Millis)]) -> String {
    serde_json::to_string(stages).unwrap_or_else(|_| "[]".into())
}

fn stages_from(s: &str) -> Vec<(String, Millis)> {
    serde_json::from_str(s).unwrap_or_default()
}

const ATTEMPT_COLS: &str =
    "id, record_id, batch_id, kind, station, reader, operator, card_serial, \
     started_at, finished_at, outcome, reason_class, reason, stages, apdus, transcript_sha256";

fn attempt_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AttemptRow> {
    Ok(AttemptRow {
        id: r.get(0)?,
        record_id: r.get(1)?,
        batch_id: r.get(2)?,
        kind: r.get(3)?,
        station: r.get(4)?,
        reader: r.get(5)?,
        operator: r.get(6)?,
        card_serial: r.get(7)?,
        started_at: r.get(8)?,
        finished_at: r.get(9)?,
        outcome: r.get(10)?,
        reason_class: r.get(11)?,
        reason: r.get(12)?,
        stages: stages_from(&r.get::<_, String>(13)?),
        apdus: r.get::<_, i64>(14)?.max(0) as u64,
        transcript_sha256: r.get(15)?,
    })
}

fn record_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordRow> {
    Ok(RecordRow {
        record_id: r.get(0)?,
        batch_id: r.get(1)?,
        line: r.get::<_, i64>(2)?.max(0) as u64,
        state: r.get(3)?,
        rejects: r.get::<_, i64>(4)?.max(0) as u64,
        card_serial: r.get(5)?,
        reason: r.get(6)?,
    })
}

fn batch_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BatchInfo> {
    Ok(BatchInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        path: r.get(2)?,
        digest: r.get(3)?,
        loaded_at: r.get(4)?,
        loaded_by: r.get(5)?,
        records: r.get::<_, i64>(6)?.max(0) as u64,
        invalid: r.get::<_, i64>(7)?.max(0) as u64,
    })
}

const BATCH_COLS: &str = "id, name, path, digest, loaded_at, loaded_by, records, invalid";

const SHIPMENT_COLS: &str =
    "id, card_serial, record_id, national_id, office, at, station, operator";

fn shipment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Shipment> {
    Ok(Shipment {
        id: r.get(0)?,
        card_serial: r.get(1)?,
        record_id: r.get(2)?,
        national_id: r.get(3)?,
        office: r.get(4)?,
        at: r.get(5)?,
        station: r.get(6)?,
        operator: r.get(7)?,
    })
}

const DELIVERY_COLS: &str = "card_serial, record_id, national_id, office, at, operator, station, \
     status, reason, status_at, status_by, replaced_by";

fn status_col(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<CardStatus> {
    let s: String = r.get(i)?;
    CardStatus::from_name(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown card status {s:?}").into(),
        )
    })
}

fn delivered_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveredCard> {
    Ok(DeliveredCard {
        card_serial: r.get(0)?,
        record_id: r.get(1)?,
        national_id: r.get(2)?,
        office: r.get(3)?,
        delivered_at: r.get(4)?,
        delivered_by: r.get(5)?,
        station: r.get(6)?,
        status: status_col(r, 7)?,
        reason: r.get(8)?,
        status_at: r.get(9)?,
        status_by: r.get(10)?,
        replaced_by: r.get(11)?,
        login: None,
    })
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

impl SqliteJournal {
    /// Open (creating if needed) the journal at `path`.
    pub fn open(path: &Path) -> Result<SqliteJournal> {
        // Created private (600, directories 700) before SQLite opens it;
        // its -wal and -shm files take the database file's mode.
        crate::private::prepare(path).map_err(|e| JournalError::Storage {
            path: path.display().to_string(),
            detail: format!("creating it private: {e}"),
        })?;
        let err = storage(path);
        let mut conn = Connection::open(path).map_err(&err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(&err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(&err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(&err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(&err)?;
        conn.execute_batch(SCHEMA).map_err(&err)?;
        migrate(&mut conn, path)?;
        Ok(SqliteJournal {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            lease: DEFAULT_LEASE,
        })
    }

    /// The same journal with claims leased for `lease`.
    pub fn with_lease(mut self, lease: std::time::Duration) -> SqliteJournal {
        self.lease = lease.max(std::time::Duration::from_millis(1));
        self
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 2)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> std::result::Result<T, rusqlite::Error>,
    ) -> Result<T> {
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut c).map_err(storage(&self.path))
    }

    /// Like [`Self::with`] for closures that produce journal errors themselves.
    fn with_j<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut c)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> JournalError + '_ {
        storage(&self.path)
    }
}

/// Bring the schema to [`SCHEMA_VERSION`] in one immediate transaction (so
/// two processes opening an old journal at once migrate it once). A journal
/// from a newer cardsmith is refused, never downgraded.
fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let err = storage(path);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    let version: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(&err)?;
    let current = match version.as_deref() {
        // A new journal: version 1 was just created.
        None => 1,
        Some(v) => v.parse::<i64>().map_err(|_| JournalError::Storage {
            path: path.display().to_string(),
            detail: format!("schema version {v:?} is not a number"),
        })?,
    };
    if current > SCHEMA_VERSION {
        return Err(JournalError::Storage {
            path: path.display().to_string(),
            detail: format!(
                "schema version {current}; this cardsmith understands version {SCHEMA_VERSION}"
            ),
        });
    }
    for (to, sql) in MIGRATIONS {
        if *to > current {
            tx.execute_batch(sql).map_err(&err)?;
        }
    }
    if current < 4 {
        adopt_into_trail(&tx).map_err(&err)?;
    }
    if version.as_deref() != Some(SCHEMA_VERSION.to_string().as_str()) {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [SCHEMA_VERSION.to_string()],
        )
        .map_err(&err)?;
        if version.is_some() {
            log_event(
                &tx,
                now_ms(),
                "",
                "cardsmith",
                None,
                "journal upgraded",
                &format!("schema version {current} to {SCHEMA_VERSION}"),
            )
            .map_err(&err)?;
        }
    }
    tx.commit().map_err(&err)
}

/// Start an attempt: the record goes in progress with a new fencing token,
/// and the attempt holds it for `lease_ms`. Returns (attempt id, token).
#[allow(clippy::too_many_arguments)]
fn insert_attempt(
    tx: &rusqlite::Transaction<'_>,
    record_id: &str,
    batch_id: i64,
    kind: AttemptKind,
    who: &Who,
    serial: &str,
    lease_ms: i64,
) -> rusqlite::Result<(i64, i64)> {
    let now = now_ms();
    let token: i64 = tx.query_row(
        "UPDATE records SET state = 'in_progress', updated_at = ?2, claim_token = claim_token + 1
         WHERE record_id = ?1 RETURNING claim_token",
        params![record_id, now],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO attempts (record_id, batch_id, kind, station, reader, operator, card_serial, started_at, outcome, token, lease_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'in_progress', ?9, ?10)",
        params![
            record_id,
            batch_id,
            kind.as_str(),
            who.station,
            who.reader.as_deref().unwrap_or(""),
            who.operator,
            serial,
            now,
            token,
            now.saturating_add(lease_ms)
        ],
    )?;
    let id = tx.last_insert_rowid();
    audit_by(tx, who, now, "attempts", &[V::Int(id)])?;
    Ok((id, token))
}

/// Attempts of `batch` (any batch when `None`) whose lease ran out end
/// interrupted, and their records go back to the queue (only if no later
/// claim took them). Returns the record ids.
fn reap_expired(
    tx: &rusqlite::Transaction<'_>,
    batch: Option<i64>,
    now: Millis,
) -> rusqlite::Result<Vec<String>> {
    let expired: Vec<(i64, String, i64, String)> = {
        let mut st = tx.prepare(
            "SELECT id, record_id, token, station FROM attempts
             WHERE outcome = 'in_progress' AND lease_until IS NOT NULL AND lease_until < ?2
               AND (?1 IS NULL OR batch_id = ?1)",
        )?;
        let rows = st.query_map(params![batch, now], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (id, record_id, token, station) in &expired {
        tx.execute(
            "UPDATE attempts SET outcome = 'interrupted', finished_at = ?2, reason_class = ?3,
                 reason = ?4
             WHERE id = ?1 AND outcome = 'in_progress'",
            params![
                id,
                now,
                LEASE_EXPIRED,
                format!("station {station} held the claim past its lease (stopped, paused or cut off from the journal); the record went back to the queue")
            ],
        )?;
        audit(tx, "", "cardsmith", now, "attempts", &[V::Int(*id)])?;
        tx.execute(
            "UPDATE records SET state = 'pending', updated_at = ?2
             WHERE record_id = ?1 AND state = 'in_progress' AND claim_token = ?3",
            params![record_id, now, token],
        )?;
    }
    if !expired.is_empty() {
        log_event(
            tx,
            now,
            "",
            "cardsmith",
            None,
            "lease expired",
            &format!(
                "{} claim(s) expired; records back in the queue: {}",
                expired.len(),
                expired
                    .iter()
                    .map(|e| e.1.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )?;
    }
    Ok(expired.into_iter().map(|e| e.1).collect())
}

impl Journal for SqliteJournal {
    fn location(&self) -> String {
        self.path.display().to_string()
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
        // One chunk; the streamed load sorts each chunk's set-asides by
        // line, which for one chunk is the whole batch's order.
        let mut once = Some(LoadChunk {
            records: records.to_vec(),
            set_aside: set_aside.to_vec(),
        });
        self.load_batch_streamed(name, path, digest, who, &mut || Ok(once.take()))
    }

    fn load_batch_streamed(
        &self,
        name: &str,
        path: &str,
        digest: &str,
        who: &Who,
        next: &mut ChunkSource<'_>,
    ) -> Result<(BatchInfo, Vec<SetAside>)> {
        let err = self.err();
        self.with_j(|c| {
            // One immediate transaction for the whole batch: a load cut
            // short rolls back whole, and the line never sees half a batch.
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let existing = tx
                .query_row(
                    &format!("SELECT {BATCH_COLS} FROM batches WHERE digest = ?1"),
                    [digest],
                    batch_row,
                )
                .optional()
                .map_err(&err)?;
            if let Some(b) = existing {
                return Ok((b, vec![]));
            }
            let now = now_ms();
            tx.execute(
                "INSERT INTO batches (name, path, digest, loaded_at, loaded_by, station, records, invalid)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0)",
                params![name, path, digest, now, who.operator, who.station],
            )
            .map_err(&err)?;
            let id = tx.last_insert_rowid();
            let mut all_aside: Vec<SetAside> = Vec::new();
            let mut queued = 0u64;
            {
                let mut insert = tx
                    .prepare(
                        "INSERT INTO records (record_id, batch_id, line, state, updated_at, request_day, office_kind, office_code)
                         VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7)
                         ON CONFLICT (record_id) DO NOTHING",
                    )
                    .map_err(&err)?;
                let mut owner = tx
                    .prepare("SELECT batch_id FROM records WHERE record_id = ?1")
                    .map_err(&err)?;
                let mut aside_row = tx
                    .prepare(
                        "INSERT INTO set_aside (batch_id, line, record_id, reason) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(&err)?;
                while let Some(chunk) = next()? {
                    let mut aside = chunk.set_aside;
                    for r in &chunk.records {
                        let q = r.request.as_ref();
                        let n = insert
                            .execute(params![
                                r.record_id,
                                id,
                                r.line as i64,
                                now,
                                q.map(|q| q.day),
                                q.map(|q| q.office_kind.as_str()),
                                q.map(|q| q.office_code.as_str())
                            ])
                            .map_err(&err)?;
                        if n == 1 {
                            queued += 1;
                            continue;
                        }
                        let b: i64 = owner
                            .query_row([&r.record_id], |row| row.get(0))
                            .map_err(&err)?;
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
                    aside.sort_by_key(|a| a.line);
                    for a in &aside {
                        aside_row
                            .execute(params![id, a.line as i64, a.record_id, a.reason])
                            .map_err(&err)?;
                    }
                    all_aside.append(&mut aside);
                }
            }
            tx.execute(
                "UPDATE batches SET records = ?2, invalid = ?3 WHERE id = ?1",
                params![id, queued as i64, all_aside.len() as i64],
            )
            .map_err(&err)?;
            audit_by(&tx, who, now, "batches", &[V::Int(id)]).map_err(&err)?;
            log_event(
                &tx,
                now,
                &who.station,
                &who.operator,
                None,
                "batch loaded",
                &format!(
                    "batch {id} {name}: {queued} queued, {} set aside",
                    all_aside.len()
                ),
            )
            .map_err(&err)?;
            let b = tx
                .query_row(
                    &format!("SELECT {BATCH_COLS} FROM batches WHERE id = ?1"),
                    [id],
                    batch_row,
                )
                .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok((b, all_aside))
        })
    }

    fn batch(&self, id: Option<i64>) -> Result<Option<BatchInfo>> {
        self.with(|c| match id {
            Some(id) => c
                .query_row(
                    &format!("SELECT {BATCH_COLS} FROM batches WHERE id = ?1"),
                    [id],
                    batch_row,
                )
                .optional(),
            None => c
                .query_row(
                    &format!("SELECT {BATCH_COLS} FROM batches ORDER BY id DESC LIMIT 1"),
                    [],
                    batch_row,
                )
                .optional(),
        })
    }

    fn set_aside(&self, batch: i64) -> Result<Vec<SetAside>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT record_id, line, reason FROM set_aside WHERE batch_id = ?1 ORDER BY line",
            )?;
            let rows = st.query_map([batch], |r| {
                Ok(SetAside {
                    record_id: r.get(0)?,
                    line: r.get::<_, i64>(1)?.max(0) as u64,
                    reason: r.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    fn recover_interrupted(&self, who: &Who) -> Result<Vec<AttemptRow>> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let rows: Vec<AttemptRow> = {
                let mut st = tx.prepare(&format!(
                    "SELECT {ATTEMPT_COLS} FROM attempts WHERE outcome = 'in_progress' AND station = ?1 ORDER BY id"
                ))?;
                let r = st.query_map([&who.station], attempt_row)?;
                r.collect::<rusqlite::Result<_>>()?
            };
            let now = now_ms();
            for a in &rows {
                tx.execute(
                    "UPDATE attempts SET outcome = 'interrupted', finished_at = ?2,
                         reason_class = 'station stopped', reason = 'the line stopped during this attempt (found on resume)'
                     WHERE id = ?1",
                    params![a.id, now],
                )?;
                audit_by(&tx, who, now, "attempts", &[V::Int(a.id)])?;
                tx.execute(
                    "UPDATE records SET state = 'pending', updated_at = ?2 WHERE record_id = ?1 AND state = 'in_progress'",
                    params![a.record_id, now],
                )?;
            }
            if !rows.is_empty() {
                log_event(
                    &tx,
                    now,
                    &who.station,
                    &who.operator,
                    None,
                    "resume",
                    &format!(
                        "{} attempt(s) interrupted by the stop; records back in the queue: {}",
                        rows.len(),
                        rows.iter().map(|a| a.record_id.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                )?;
            }
            tx.commit()?;
            Ok(rows)
        })
    }

    fn card(&self, serial: &str) -> Result<CardKnown> {
        self.with(|c| {
            let last = c
                .query_row(
                    "SELECT id, record_id, outcome, station, reason, card_terminated FROM attempts
                     WHERE card_serial = ?1 ORDER BY (outcome = 'good') DESC, id DESC LIMIT 1",
                    [serial],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, bool>(5)?,
                        ))
                    },
                )
                .optional()?;
            let rejected = c
                .query_row(
                    "SELECT reason, terminated FROM rejected_cards WHERE serial = ?1 ORDER BY id DESC LIMIT 1",
                    [serial],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)),
                )
                .optional()?;
            Ok(match last {
                Some((id, rec, o, _, _, _)) if o == "good" => CardKnown::Good {
                    record_id: rec,
                    attempt_id: id,
                },
                Some((id, rec, o, st, _, _)) if o == "in_progress" => CardKnown::InProgress {
                    record_id: rec,
                    attempt_id: id,
                    station: st,
                },
                _ if rejected.is_some() => {
                    let (reason, terminated) = rejected.unwrap_or_default();
                    CardKnown::Rejected {
                        record_id: last.map(|l| l.1),
                        reason,
                        terminated,
                    }
                }
                Some((_, rec, o, _, reason, term)) if o == "rejected" => CardKnown::Rejected {
                    record_id: Some(rec),
                    reason: reason.unwrap_or_default(),
                    terminated: term,
                },
                Some((id, rec, _, _, _, _)) => CardKnown::Interrupted {
                    record_id: rec,
                    attempt_id: id,
                },
                None => CardKnown::Unknown,
            })
        })
    }

    fn claim(&self, batch: i64, who: &Who, serial: &str) -> Result<Option<Claim>> {
        let lease = self.lease_ms();
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_ms();
            // The same card asking again (a retry) keeps its live claim.
            let held = tx
                .query_row(
                    "SELECT a.id, a.record_id, r.line, a.token FROM attempts a
                     JOIN records r ON r.record_id = a.record_id
                     WHERE a.card_serial = ?1 AND a.station = ?2 AND a.batch_id = ?3 AND a.kind = 'perso'
                       AND a.outcome = 'in_progress' AND a.lease_until >= ?4
                     ORDER BY a.id DESC LIMIT 1",
                    params![serial, who.station, batch, now],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?)),
                )
                .optional()?;
            if let Some((attempt_id, record_id, line, token)) = held {
                tx.execute(
                    "UPDATE attempts SET lease_until = ?2 WHERE id = ?1",
                    params![attempt_id, now.saturating_add(lease)],
                )?;
                tx.commit()?;
                return Ok(Some(Claim {
                    attempt_id,
                    record_id,
                    line: line.max(0) as u64,
                    kind: AttemptKind::Perso,
                    token,
                }));
            }
            reap_expired(&tx, Some(batch), now)?;
            let next = tx
                .query_row(
                    "SELECT record_id, line FROM records WHERE batch_id = ?1 AND state = 'pending' ORDER BY line LIMIT 1",
                    [batch],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                )
                .optional()?;
            let Some((record_id, line)) = next else {
                tx.commit()?;
                return Ok(None);
            };
            let (attempt_id, token) =
                insert_attempt(&tx, &record_id, batch, AttemptKind::Perso, who, serial, lease)?;
            tx.commit()?;
            Ok(Some(Claim {
                attempt_id,
                record_id,
                line: line.max(0) as u64,
                kind: AttemptKind::Perso,
                token,
            }))
        })
    }

    fn claim_recovery(&self, who: &Who, serial: &str) -> Result<Option<Claim>> {
        let lease = self.lease_ms();
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let last = tx
                .query_row(
                    "SELECT a.record_id, a.batch_id, a.outcome, r.state, r.line FROM attempts a
                     JOIN records r ON r.record_id = a.record_id
                     WHERE a.card_serial = ?1 ORDER BY a.id DESC LIMIT 1",
                    [serial],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()?;
            let Some((record_id, batch, outcome, state, line)) = last else {
                return Ok(None);
            };
            if outcome != "interrupted" || state != "pending" {
                return Ok(None);
            }
            let (attempt_id, token) = insert_attempt(
                &tx,
                &record_id,
                batch,
                AttemptKind::Recovery,
                who,
                serial,
                lease,
            )?;
            tx.commit()?;
            Ok(Some(Claim {
                attempt_id,
                record_id,
                line: line.max(0) as u64,
                kind: AttemptKind::Recovery,
                token,
            }))
        })
    }

    fn finish(&self, attempt_id: i64, f: &Finish) -> Result<()> {
        let err = self.err();
        self.with_j(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            type Row = (String, String, String, i64, Option<i64>, Option<String>, (String, String));
            let (record_id, serial, outcome, token, lease_until, reason_class, (st, op)): Row = tx
                .query_row(
                    "SELECT record_id, card_serial, outcome, token, lease_until, reason_class, station, operator FROM attempts WHERE id = ?1",
                    [attempt_id],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            (r.get(6)?, r.get(7)?),
                        ))
                    },
                )
                .optional()
                .map_err(&err)?
                .ok_or(JournalError::NoSuchAttempt(attempt_id))?;
            let o = f.outcome.unwrap_or(Outcome::Interrupted);
            let now = now_ms();
            let lost = |why: String| JournalError::ClaimLost {
                attempt_id,
                record_id: record_id.clone(),
                why,
            };
            if outcome == o.as_str() {
                // Already ended this way: a retry of a commit that went through.
                return Ok(());
            }
            if outcome != "in_progress" {
                return Err(if reason_class.as_deref() == Some(LEASE_EXPIRED) {
                    lost("its lease expired and the record went back to the queue".into())
                } else {
                    JournalError::NoSuchAttempt(attempt_id)
                });
            }
            let current: i64 = tx
                .query_row(
                    "SELECT claim_token FROM records WHERE record_id = ?1",
                    [&record_id],
                    |r| r.get(0),
                )
                .map_err(&err)?;
            let expired = lease_until.is_some_and(|l| l < now);
            if current != token || expired {
                let why = if current != token {
                    format!("the record was claimed again since (token {current}, this attempt holds {token})")
                } else {
                    "its lease expired before the attempt ended".to_string()
                };
                // The attempt is over either way; a later claim reaps it.
                reap_expired(&tx, None, now).map_err(&err)?;
                tx.commit().map_err(&err)?;
                return Err(lost(why));
            }
            let r = tx.execute(
                "UPDATE attempts SET outcome = ?2, finished_at = ?3, reason_class = ?4, reason = ?5,
                     stages = ?6, apdus = ?7, transcript_sha256 = ?8, card_terminated = ?9
                 WHERE id = ?1",
                params![
                    attempt_id,
                    o.as_str(),
                    now,
                    f.reason_class,
                    f.reason,
                    stages_json(&f.stages),
                    f.apdus as i64,
                    f.transcript_sha256,
                    f.card_terminated
                ],
            );
            if let Err(e) = r {
                if is_unique_violation(&e) {
                    let held: Option<String> = tx
                        .query_row(
                            "SELECT card_serial FROM attempts WHERE record_id = ?1 AND outcome = 'good'",
                            [&record_id],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(&err)?;
                    return Err(match held {
                        Some(s) => JournalError::AlreadyGood {
                            record_id,
                            serial: s,
                        },
                        None => JournalError::CardTaken {
                            serial,
                            record_id,
                        },
                    });
                }
                return Err(err(e));
            }
            match o {
                Outcome::Good => tx.execute(
                    "UPDATE records SET state = 'good', card_serial = ?2, reason = NULL, updated_at = ?3 WHERE record_id = ?1 AND claim_token = ?4",
                    params![record_id, serial, now, token],
                ),
                Outcome::Rejected => tx.execute(
                    "UPDATE records SET rejects = rejects + 1, reason = ?2, updated_at = ?3,
                         state = CASE WHEN rejects + 1 >= ?4 AND ?4 > 0 THEN 'held' ELSE 'pending' END
                     WHERE record_id = ?1 AND state = 'in_progress'",
                    params![record_id, f.reason, now, i64::from(f.max_rejects)],
                ),
                Outcome::Interrupted => tx.execute(
                    "UPDATE records SET state = 'pending', updated_at = ?2 WHERE record_id = ?1 AND state = 'in_progress'",
                    params![record_id, now],
                ),
            }
            .map_err(&err)?;
            audit(&tx, &st, &op, now, "attempts", &[V::Int(attempt_id)]).map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(())
        })
    }

    fn renew(&self, who: &Who) -> Result<u64> {
        let lease = self.lease_ms();
        self.with(|c| {
            let now = now_ms();
            let n = c.execute(
                "UPDATE attempts SET lease_until = ?2
                 WHERE station = ?1 AND outcome = 'in_progress' AND lease_until >= ?3",
                params![who.station, now.saturating_add(lease), now],
            )?;
            Ok(n as u64)
        })
    }

    fn lease(&self) -> std::time::Duration {
        self.lease
    }

    fn audit(&self) -> Result<audit::Report> {
        self.with(|c| {
            let tx = c.transaction()?;
            let entries: Vec<audit::Entry> = {
                let mut st = tx.prepare(
                    "SELECT seq, at, station, operator, tbl, row_key, row, prev_sha256, sha256 FROM audit ORDER BY seq",
                )?;
                let rows = st.query_map([], |r| {
                    Ok(audit::Entry {
                        seq: r.get(0)?,
                        at: r.get(1)?,
                        station: r.get(2)?,
                        operator: r.get(3)?,
                        table: r.get(4)?,
                        row_key: r.get(5)?,
                        row: r.get(6)?,
                        prev_sha256: r.get(7)?,
                        sha256: r.get(8)?,
                    })
                })?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let head = tx
                .query_row("SELECT seq, sha256 FROM audit_head WHERE id = 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let mut tables = vec![];
            for t in audit::AUDITED {
                if let Some(spec) = rows::spec(t) {
                    tables.push((spec, rows::sqlite_rows(&tx, spec, None)?));
                }
            }
            Ok(audit::check(&entries, head, &tables))
        })
    }

    fn reject_card(&self, who: &Who, serial: &str, reason: &str, terminated: bool) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_ms();
            tx.execute(
                "INSERT INTO rejected_cards (serial, at, station, operator, reader, reason, terminated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![serial, now, who.station, who.operator, who.reader, reason, terminated],
            )?;
            let id = tx.last_insert_rowid();
            audit_by(&tx, who, now, "rejected_cards", &[V::Int(id)])?;
            tx.commit()
        })
    }

    fn event(&self, who: &Who, kind: &str, detail: &str) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            log_event(
                &tx,
                now_ms(),
                &who.station,
                &who.operator,
                who.reader.as_deref(),
                kind,
                detail,
            )?;
            tx.commit()
        })
    }

    fn requeue(&self, who: &Who, record_id: &str) -> Result<()> {
        let err = self.err();
        self.with_j(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let state: String = tx
                .query_row(
                    "SELECT state FROM records WHERE record_id = ?1",
                    [record_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&err)?
                .ok_or_else(|| JournalError::NoSuchRecord(record_id.to_string()))?;
            if state != "held" {
                return Err(JournalError::Refused(format!(
                    "record {record_id} is {state}; only held records can be requeued"
                )));
            }
            let now = now_ms();
            tx.execute(
                "UPDATE records SET state = 'pending', rejects = 0, updated_at = ?2 WHERE record_id = ?1",
                params![record_id, now],
            )
            .map_err(&err)?;
            log_event(
                &tx,
                now,
                &who.station,
                &who.operator,
                None,
                "requeue",
                &format!("record {record_id} put back in the queue"),
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(())
        })
    }

    fn summary(&self, batch: i64) -> Result<Summary> {
        self.with(|c| {
            let mut s = Summary::default();
            {
                let mut st = c.prepare(
                    "SELECT state, COUNT(*) FROM records WHERE batch_id = ?1 GROUP BY state",
                )?;
                let rows = st.query_map([batch], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
                })?;
                for row in rows {
                    let (state, n) = row?;
                    s.add_records(&state, n);
                }
            }
            s.invalid = c
                .query_row(
                    "SELECT COUNT(*) FROM set_aside WHERE batch_id = ?1",
                    [batch],
                    |r| r.get::<_, i64>(0),
                )?
                .max(0) as u64;
            let mut st = c.prepare(
                "SELECT outcome, COUNT(*) FROM attempts WHERE batch_id = ?1 GROUP BY outcome",
            )?;
            let rows = st.query_map([batch], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })?;
            for row in rows {
                let (o, n) = row?;
                s.add_attempts(&o, n);
            }
            Ok(s)
        })
    }

    fn programme_groups(&self) -> Result<Vec<ProgrammeGroup>> {
        self.with(|c| {
            let mut st = c.prepare(PROGRAMME_GROUPS_SQL)?;
            let rows = st.query_map([IRAN_OFFSET_MS], |r| {
                Ok(ProgrammeGroup {
                    office_kind: r.get(0)?,
                    office_code: r.get(1)?,
                    request_day: r.get(2)?,
                    made_day: r.get(3)?,
                    ship_office: r.get(4)?,
                    shipped_day: r.get(5)?,
                    delivered_day: r.get(6)?,
                    count: r.get::<_, i64>(7)?.max(0) as u64,
                })
            })?;
            rows.collect()
        })
    }

    fn record(&self, record_id: &str) -> Result<Option<RecordRow>> {
        self.with(|c| {
            c.query_row(
                "SELECT record_id, batch_id, line, state, rejects, card_serial, reason FROM records WHERE record_id = ?1",
                [record_id],
                record_row,
            )
            .optional()
        })
    }

    fn records(&self, batch: i64) -> Result<Vec<RecordRow>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT record_id, batch_id, line, state, rejects, card_serial, reason FROM records WHERE batch_id = ?1 ORDER BY line",
            )?;
            let rows = st.query_map([batch], record_row)?;
            rows.collect()
        })
    }

    fn attempts_for_record(&self, record_id: &str) -> Result<Vec<AttemptRow>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {ATTEMPT_COLS} FROM attempts WHERE record_id = ?1 ORDER BY id"
            ))?;
            let rows = st.query_map([record_id], attempt_row)?;
            rows.collect()
        })
    }

    fn attempts_for_card(&self, serial: &str) -> Result<Vec<AttemptRow>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {ATTEMPT_COLS} FROM attempts WHERE card_serial = ?1 ORDER BY id"
            ))?;
            let rows = st.query_map([serial], attempt_row)?;
            rows.collect()
        })
    }

    fn attempts(&self, batch: i64) -> Result<Vec<AttemptRow>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {ATTEMPT_COLS} FROM attempts WHERE batch_id = ?1 ORDER BY id"
            ))?;
            let rows = st.query_map([batch], attempt_row)?;
            rows.collect()
        })
    }

    fn rejects_by_reason(&self, batch: Option<i64>) -> Result<Vec<(String, u64)>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT reason, COUNT(*) FROM (
                     SELECT COALESCE(reason_class, 'unspecified') AS reason FROM attempts
                     WHERE outcome IN ('rejected', 'interrupted') AND (?1 IS NULL OR batch_id = ?1)
                     UNION ALL
                     SELECT reason FROM rejected_cards WHERE ?1 IS NULL
                 ) GROUP BY reason ORDER BY COUNT(*) DESC, reason",
            )?;
            let rows = st.query_map([batch], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })?;
            rows.collect()
        })
    }

    fn throughput(&self, batch: Option<i64>) -> Result<Vec<ThroughputRow>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT reader, (finished_at / 3600000) * 3600000 AS hour,
                        SUM(outcome = 'good'), SUM(outcome = 'rejected'), SUM(outcome = 'interrupted')
                 FROM attempts WHERE finished_at IS NOT NULL AND (?1 IS NULL OR batch_id = ?1)
                 GROUP BY reader, hour ORDER BY hour, reader",
            )?;
            let rows = st.query_map([batch], |r| {
                Ok(ThroughputRow {
                    reader: r.get(0)?,
                    hour: r.get(1)?,
                    good: r.get::<_, i64>(2)?.max(0) as u64,
                    rejected: r.get::<_, i64>(3)?.max(0) as u64,
                    interrupted: r.get::<_, i64>(4)?.max(0) as u64,
                })
            })?;
            rows.collect()
        })
    }

    fn events(&self, since: Millis) -> Result<Vec<EventRow>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT at, station, operator, reader, kind, detail FROM events WHERE at >= ?1 ORDER BY id",
            )?;
            let rows = st.query_map([since], |r| {
                Ok(EventRow {
                    at: r.get(0)?,
                    station: r.get(1)?,
                    operator: r.get(2)?,
                    reader: r.get(3)?,
                    kind: r.get(4)?,
                    detail: r.get(5)?,
                })
            })?;
            rows.collect()
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
        let err = self.err();
        self.with_j(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let good: Option<String> = tx
                .query_row(
                    "SELECT record_id FROM attempts WHERE card_serial = ?1 AND outcome = 'good'",
                    [serial],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&err)?;
            match good {
                None => {
                    return Err(JournalError::Refused(format!(
                        "card {serial} is not a good card of the line: the journal has no good personalization for it"
                    )))
                }
                Some(r) if r != record_id => {
                    return Err(JournalError::Refused(format!(
                        "card {serial} holds record {r}, not {record_id}"
                    )))
                }
                Some(_) => {}
            }
            if let Some(s) = tx
                .query_row(
                    &format!("SELECT {SHIPMENT_COLS} FROM shipments WHERE card_serial = ?1"),
                    [serial],
                    shipment_row,
                )
                .optional()
                .map_err(&err)?
            {
                if s.office == office {
                    return Ok(s);
                }
                return Err(JournalError::Refused(format!(
                    "card {serial} was already shipped to office {} on {} by {}",
                    s.office,
                    iso_time(s.at),
                    s.operator
                )));
            }
            let now = now_ms();
            tx.execute(
                "INSERT INTO shipments (card_serial, record_id, national_id, office, at, station, operator)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![serial, record_id, national_id, office, now, who.station, who.operator],
            )
            .map_err(&err)?;
            let id = tx.last_insert_rowid();
            audit_by(&tx, who, now, "shipments", &[V::Int(id)]).map_err(&err)?;
            log_event(
                &tx,
                now,
                &who.station,
                &who.operator,
                who.reader.as_deref(),
                "shipped",
                &format!("card {serial} (record {record_id}) to office {office}"),
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(Shipment {
                id,
                card_serial: serial.to_string(),
                record_id: record_id.to_string(),
                national_id: national_id.to_string(),
                office: office.to_string(),
                at: now,
                station: who.station.clone(),
                operator: who.operator.clone(),
            })
        })
    }

    fn shipment(&self, serial: &str) -> Result<Option<Shipment>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {SHIPMENT_COLS} FROM shipments WHERE card_serial = ?1"),
                [serial],
                shipment_row,
            )
            .optional()
        })
    }

    fn deliver(&self, who: &Who, d: &Delivery) -> Result<()> {
        let err = self.err();
        self.with_j(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let shipped: Option<String> = tx
                .query_row(
                    "SELECT office FROM shipments WHERE card_serial = ?1",
                    [&d.card_serial],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&err)?;
            match shipped {
                None => {
                    return Err(JournalError::Refused(format!(
                        "card {} was never shipped",
                        d.card_serial
                    )))
                }
                Some(o) if o != d.office => {
                    return Err(JournalError::Refused(format!(
                        "card {} was shipped to office {o}, not {}",
                        d.card_serial, d.office
                    )))
                }
                Some(_) => {}
            }
            let now = now_ms();
            let inserted = tx.execute(
                "INSERT INTO deliveries (card_serial, record_id, national_id, office, at, station, operator, reader, status, status_at, status_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'activated', ?5, ?7)",
                params![d.card_serial, d.record_id, d.national_id, d.office, now, who.station, who.operator, who.reader],
            );
            match inserted {
                Err(e) if is_unique_violation(&e) => {
                    return Err(JournalError::Refused(format!(
                        "card {} was already delivered",
                        d.card_serial
                    )))
                }
                r => r.map_err(&err)?,
            };
            let did = tx.last_insert_rowid();
            audit_by(&tx, who, now, "deliveries", &[V::Int(did)]).map_err(&err)?;
            for cert in &d.certificates {
                tx.execute(
                    "INSERT INTO card_certificates (card_serial, key, serial, subject, issuer, key_usage, not_after, sha256)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![d.card_serial, cert.key, cert.serial, cert.subject, cert.issuer, cert.key_usage, cert.not_after, cert.sha256],
                )
                .map_err(&err)?;
                let key = [V::Text(d.card_serial.clone()), V::Text(cert.key.clone())];
                audit_by(&tx, who, now, "card_certificates", &key).map_err(&err)?;
            }
            let open: Option<(i64, String)> = tx
                .query_row(
                    "SELECT id, previous_card FROM replacements WHERE national_id = ?1 AND new_card IS NULL ORDER BY id LIMIT 1",
                    [&d.national_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(&err)?;
            let mut detail = format!(
                "card {} (record {}) delivered and activated at office {}",
                d.card_serial, d.record_id, d.office
            );
            if let Some((id, previous)) = open {
                tx.execute(
                    "UPDATE replacements SET new_card = ?2 WHERE id = ?1",
                    params![id, d.card_serial],
                )
                .map_err(&err)?;
                audit_by(&tx, who, now, "replacements", &[V::Int(id)]).map_err(&err)?;
                let prev_id: i64 = tx
                    .query_row(
                        "UPDATE deliveries SET replaced_by = ?2 WHERE card_serial = ?1 RETURNING id",
                        params![previous, d.card_serial],
                        |r| r.get(0),
                    )
                    .map_err(&err)?;
                audit_by(&tx, who, now, "deliveries", &[V::Int(prev_id)]).map_err(&err)?;
                detail.push_str(&format!("; replaces card {previous} (request {id})"));
            }
            log_event(
                &tx,
                now,
                &who.station,
                &who.operator,
                who.reader.as_deref(),
                "delivered",
                &detail,
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)
        })
    }

    fn delivered(&self, serial: &str) -> Result<Option<DeliveredCard>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE card_serial = ?1"),
                [serial],
                delivered_row,
            )
            .optional()
        })
    }

    fn delivered_to(&self, national_id: &str) -> Result<Vec<DeliveredCard>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {DELIVERY_COLS} FROM deliveries WHERE national_id = ?1 ORDER BY id"
            ))?;
            let rows = st.query_map([national_id], delivered_row)?;
            rows.collect()
        })
    }

    fn certificates(&self, serial: &str) -> Result<Vec<CertRow>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT key, serial, subject, issuer, key_usage, not_after, sha256 FROM card_certificates WHERE card_serial = ?1 ORDER BY key",
            )?;
            let rows = st.query_map([serial], |r| {
                Ok(CertRow {
                    key: r.get(0)?,
                    serial: r.get(1)?,
                    subject: r.get(2)?,
                    issuer: r.get(3)?,
                    key_usage: r.get(4)?,
                    not_after: r.get(5)?,
                    sha256: r.get(6)?,
                })
            })?;
            rows.collect()
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
        let err = self.err();
        self.with_j(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let card = tx
                .query_row(
                    &format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE card_serial = ?1"),
                    [previous_card],
                    delivered_row,
                )
                .optional()
                .map_err(&err)?;
            let Some(card) = card else {
                let why = match tx
                    .query_row(
                        "SELECT office FROM shipments WHERE card_serial = ?1",
                        [previous_card],
                        |r| r.get::<_, String>(0),
                    )
                    .optional()
                    .map_err(&err)?
                {
                    Some(o) => format!(
                        "card {previous_card} was shipped to office {o} but never delivered to its holder and activated"
                    ),
                    None => format!(
                        "card {previous_card} was never delivered to a holder (the journal has no delivery of it)"
                    ),
                };
                return Err(JournalError::Refused(why));
            };
            if card.status != CardStatus::Activated {
                return Err(JournalError::Refused(format!(
                    "card {previous_card} is already {} (since {}, by {}); it was replaced before",
                    card.status.as_str(),
                    iso_time(card.status_at),
                    card.status_by
                )));
            }
            let now = now_ms();
            let did: i64 = tx
                .query_row(
                    "UPDATE deliveries SET status = ?2, reason = ?3, status_at = ?4, status_by = ?5 WHERE card_serial = ?1 RETURNING id",
                    params![previous_card, status.as_str(), reason, now, who.operator],
                    |r| r.get(0),
                )
                .map_err(&err)?;
            audit_by(&tx, who, now, "deliveries", &[V::Int(did)]).map_err(&err)?;
            tx.execute(
                "INSERT INTO replacements (national_id, previous_card, reason, previous_card_status, office, at, station, operator)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![card.national_id, previous_card, reason, status.as_str(), office, now, who.station, who.operator],
            )
            .map_err(&err)?;
            let id = tx.last_insert_rowid();
            audit_by(&tx, who, now, "replacements", &[V::Int(id)]).map_err(&err)?;
            log_event(
                &tx,
                now,
                &who.station,
                &who.operator,
                who.reader.as_deref(),
                &format!("card {}", status.as_str()),
                &format!("card {previous_card}: replacement request {id} ({reason}) at office {office}"),
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(Replacement {
                id,
                national_id: card.national_id,
                previous_card: previous_card.to_string(),
                reason: reason.to_string(),
                previous_card_status: status,
                office: office.to_string(),
                at: now,
                station: who.station.clone(),
                operator: who.operator.clone(),
                new_card: None,
            })
        })
    }

    fn record_revocation(&self, who: &Who, r: &Revocation) -> Result<Revocation> {
        let err = self.err();
        let serial = r.serial.to_ascii_lowercase();
        self.with_j(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let q = format!("SELECT {REVOCATION_COLS} FROM revocations WHERE serial = ?1");
            if let Some(first) = tx
                .query_row(&q, [&serial], revocation_row)
                .optional()
                .map_err(&err)?
            {
                return Ok(first);
            }
            let now = now_ms();
            tx.execute(
                "INSERT INTO revocations (serial, issuer, reason, revoked_at, card_serial, station, operator)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![serial, r.issuer, i64::from(r.reason.code()), now, r.card_serial, who.station, who.operator],
            )
            .map_err(&err)?;
            audit_by(&tx, who, now, "revocations", &[V::Text(serial.clone())]).map_err(&err)?;
            let row = tx.query_row(&q, [&serial], revocation_row).map_err(&err)?;
            log_event(
                &tx,
                now,
                &who.station,
                &who.operator,
                who.reader.as_deref(),
                "certificate revoked",
                &format!(
                    "certificate {serial} of card {} revoked ({})",
                    r.card_serial,
                    r.reason.as_str()
                ),
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(row)
        })
    }

    fn revocation(&self, serial: &str) -> Result<Option<Revocation>> {
        let serial = serial.to_ascii_lowercase();
        self.with(|c| {
            c.query_row(
                &format!("SELECT {REVOCATION_COLS} FROM revocations WHERE serial = ?1"),
                [&serial],
                revocation_row,
            )
            .optional()
        })
    }

    fn revocations(&self, issuer: &str) -> Result<Vec<Revocation>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {REVOCATION_COLS} FROM revocations WHERE issuer = ?1 ORDER BY revoked_at, serial"
            ))?;
            let rows = st.query_map([issuer], revocation_row)?;
            rows.collect()
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
        let err = self.err();
        self.with_j(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let number: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(number), 0) + 1 FROM crls WHERE issuer = ?1",
                    [issuer],
                    |r| r.get(0),
                )
                .map_err(&err)?;
            tx.execute(
                "INSERT INTO crls (issuer, number, this_update, next_update, entries, station, operator)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![issuer, number, this_update, next_update, entries as i64, who.station, who.operator],
            )
            .map_err(&err)?;
            let key = [V::Text(issuer.to_string()), V::Int(number)];
            audit_by(&tx, who, this_update, "crls", &key).map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(CrlIssued {
                number,
                issuer: issuer.to_string(),
                this_update,
                next_update,
                entries,
            })
        })
    }

    fn replacements(&self, national_id: &str) -> Result<Vec<Replacement>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, national_id, previous_card, reason, previous_card_status, office, at, station, operator, new_card
                 FROM replacements WHERE national_id = ?1 ORDER BY id",
            )?;
            let rows = st.query_map([national_id], |r| {
                Ok(Replacement {
                    id: r.get(0)?,
                    national_id: r.get(1)?,
                    previous_card: r.get(2)?,
                    reason: r.get(3)?,
                    previous_card_status: status_col(r, 4)?,
                    office: r.get(5)?,
                    at: r.get(6)?,
                    station: r.get(7)?,
                    operator: r.get(8)?,
                    new_card: r.get(9)?,
                })
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(reader: &str) -> Who {
        Who {
            station: "st1".into(),
            operator: "op".into(),
            reader: Some(reader.into()),
        }
    }

    fn journal() -> (tempfile::TempDir, SqliteJournal) {
        let d = tempfile::tempdir().expect("tempdir");
        let j = SqliteJournal::open(&d.path().join("j.sqlite")).expect("open");
        (d, j)
    }

    fn load(j: &SqliteJournal, ids: &[&str]) -> BatchInfo {
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
            "/tmp/b.jsonl",
            &format!("d-{}", ids.join(",")),
            &who("-"),
            &recs,
            &[],
        )
        .expect("load")
        .0
    }

    fn good() -> Finish {
        Finish {
            outcome: Some(Outcome::Good),
            ..Finish::default()
        }
    }

    #[test]
    fn claims_in_line_order_and_never_twice() {
        let (_d, j) = journal();
        let b = load(&j, &["r1", "r2"]);
        let c1 = j.claim(b.id, &who("A"), "S1").expect("claim").expect("r1");
        let c2 = j.claim(b.id, &who("B"), "S2").expect("claim").expect("r2");
        assert_eq!((c1.record_id.as_str(), c2.record_id.as_str()), ("r1", "r2"));
        assert!(j.claim(b.id, &who("C"), "S3").expect("claim").is_none());
        let s = j.summary(b.id).expect("summary");
        assert_eq!((s.pending, s.in_progress), (0, 2));
    }

    #[test]
    fn one_good_card_per_record_is_enforced_by_the_database() {
        let (_d, j) = journal();
        let b = load(&j, &["r1"]);
        let c1 = j.claim(b.id, &who("A"), "S1").expect("claim").expect("r1");
        j.finish(
            c1.attempt_id,
            &Finish {
                outcome: Some(Outcome::Interrupted),
                ..Finish::default()
            },
        )
        .expect("interrupted");
        let c2 = j
            .claim(b.id, &who("B"), "S2")
            .expect("claim")
            .expect("again");
        j.finish(c2.attempt_id, &good()).expect("good");
        // The first card comes back: its record is no longer pending.
        assert!(j
            .claim_recovery(&who("A"), "S1")
            .expect("recovery")
            .is_none());
        // Even forced through SQL, a second good attempt is refused.
        let forced = j.with(|c| {
            c.execute(
                "INSERT INTO attempts (record_id, batch_id, kind, station, reader, operator, card_serial, started_at, outcome)
                 VALUES ('r1', ?1, 'perso', 's', 'r', 'o', 'S9', 0, 'good')",
                [b.id],
            )
        });
        assert!(forced.is_err(), "second good attempt accepted");
        assert_eq!(
            j.card("S2").expect("card"),
            CardKnown::Good {
                record_id: "r1".into(),
                attempt_id: c2.attempt_id
            }
        );
    }

    #[test]
    fn recovery_finishes_the_interrupted_record_on_the_same_card() {
        let (_d, j) = journal();
        let b = load(&j, &["r1", "r2"]);
        let c1 = j.claim(b.id, &who("A"), "S1").expect("claim").expect("r1");
        // The station dies; on resume its attempt is interrupted.
        let rec = j.recover_interrupted(&who("-")).expect("recover");
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].id, c1.attempt_id);
        assert!(matches!(
            j.card("S1").expect("card"),
            CardKnown::Interrupted { .. }
        ));
        let r = j
            .claim_recovery(&who("A"), "S1")
            .expect("recovery")
            .expect("claimed");
        assert_eq!(
            (r.record_id.as_str(), r.kind),
            ("r1", AttemptKind::Recovery)
        );
        j.finish(r.attempt_id, &good()).expect("good");
        // The queue hands out r2 next, never r1 again.
        let c2 = j.claim(b.id, &who("A"), "S2").expect("claim").expect("r2");
        assert_eq!(c2.record_id, "r2");
        let hist = j.attempts_for_record("r1").expect("history");
        assert_eq!(
            hist.iter().map(|a| a.outcome.as_str()).collect::<Vec<_>>(),
            ["interrupted", "good"]
        );
    }

    #[test]
    fn rejections_requeue_until_the_record_is_held() {
        let (_d, j) = journal();
        let b = load(&j, &["r1"]);
        for (n, serial) in ["S1", "S2"].iter().enumerate() {
            let c = j
                .claim(b.id, &who("A"), serial)
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
        assert!(j.claim(b.id, &who("A"), "S3").expect("claim").is_none());
        assert_eq!(
            j.rejects_by_reason(Some(b.id)).expect("rejects"),
            vec![("keys".to_string(), 2)]
        );
        j.requeue(&who("-"), "r1").expect("requeue");
        assert!(j.claim(b.id, &who("A"), "S3").expect("claim").is_some());
        assert!(
            j.requeue(&who("-"), "r1").is_err(),
            "in progress is not held"
        );
    }

    #[test]
    fn loading_the_same_file_again_is_the_same_batch() {
        let (_d, j) = journal();
        let b1 = load(&j, &["r1", "r2"]);
        let b2 = load(&j, &["r1", "r2"]);
        assert_eq!(b1, b2);
        // A new file repeating r1 sets it aside.
        let (b3, aside) = j
            .load_batch(
                "c",
                "/tmp/c.jsonl",
                "other",
                &who("-"),
                &[
                    NewRecord {
                        record_id: "r1".into(),
                        line: 1,
                        request: None,
                    },
                    NewRecord {
                        record_id: "r3".into(),
                        line: 2,
                        request: None,
                    },
                ],
                &[],
            )
            .expect("load");
        assert_eq!(b3.records, 1);
        assert_eq!(aside.len(), 1);
        assert!(
            aside[0].reason.contains("already in batch"),
            "{}",
            aside[0].reason
        );
    }

    #[test]
    fn reopening_keeps_everything_and_checks_the_schema_version() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("j.sqlite");
        {
            let j = SqliteJournal::open(&p).expect("open");
            let b = load(&j, &["r1"]);
            let c = j.claim(b.id, &who("A"), "S1").expect("claim").expect("r1");
            j.finish(c.attempt_id, &good()).expect("good");
        }
        let j = SqliteJournal::open(&p).expect("reopen");
        assert_eq!(j.record("r1").expect("r").expect("r1").state, "good");
        j.with(|c| {
            c.execute(
                "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
                [],
            )
        })
        .expect("bump");
        drop(j);
        let e = SqliteJournal::open(&p).err().expect("refused").to_string();
        assert!(e.contains("schema version 99"), "{e}");
    }
    #[test]
    fn records_of_an_older_journal_have_an_unknown_request_and_new_ones_theirs() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("j.sqlite");
        {
            // Version 5: records without request date or office.
            let c = Connection::open(&p).expect("open");
            c.execute_batch(SCHEMA).expect("v1 schema");
            for (_, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= 5) {
                c.execute_batch(sql).expect("to v5");
            }
            adopt_into_trail(&c).expect("trail");
            c.execute_batch(
                "INSERT INTO meta (key, value) VALUES ('schema_version', '5');
                 INSERT INTO batches (id, name, path, digest, loaded_at, loaded_by, station, records, invalid)
                     VALUES (1, 'old', '/old', 'd-old', 1, 'o', 's', 1, 0);
                 INSERT INTO records (record_id, batch_id, line, state, updated_at)
                     VALUES ('old-1', 1, 1, 'pending', 1);",
            )
            .expect("v5 rows");
        }
        let j = SqliteJournal::open(&p).expect("upgrade");
        j.load_batch(
            "new",
            "/new",
            "d-new",
            &who("-"),
            &[NewRecord {
                record_id: "new-1".into(),
                line: 1,
                request: Some(RequestInfo {
                    day: 20_000,
                    office_kind: "consulate".into(),
                    office_code: "AE-DXB".into(),
                }),
            }],
            &[],
        )
        .expect("load");
        let mut g = j.programme_groups().expect("groups");
        g.sort_by_key(|g| g.request_day);
        assert_eq!(g.len(), 2, "{g:?}");
        assert_eq!(
            (g[0].office_code.as_deref(), g[0].request_day, g[0].count),
            (None, None, 1)
        );
        assert_eq!(
            (
                g[1].office_kind.as_deref(),
                g[1].office_code.as_deref(),
                g[1].request_day,
                g[1].made_day,
                g[1].count
            ),
            (Some("consulate"), Some("AE-DXB"), Some(20_000), None, 1)
        );
    }

    #[test]
    fn a_version_1_journal_is_upgraded_in_place() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("j.sqlite");
        {
            // A journal as cardsmith with schema version 1 left it.
            let c = Connection::open(&p).expect("open");
            c.execute_batch(SCHEMA).expect("v1 schema");
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', '1')",
                [],
            )
            .expect("v1");
            c.execute(
                "INSERT INTO events (at, station, operator, reader, kind, detail) VALUES (1, 's', 'o', NULL, 'k', 'kept')",
                [],
            )
            .expect("row");
        }
        let j = SqliteJournal::open(&p).expect("upgrade");
        let v: String = j
            .with(|c| {
                c.query_row(
                    "SELECT value FROM meta WHERE key = 'schema_version'",
                    [],
                    |r| r.get(0),
                )
            })
            .expect("version");
        assert_eq!(v, SCHEMA_VERSION.to_string());
        let ev = j.events(0).expect("events");
        assert_eq!(ev[0].detail, "kept");
        assert!(ev.iter().any(|e| e.kind == "journal upgraded"
            && e.detail.contains(&format!("1 to {SCHEMA_VERSION}"))));
        // The new tables work on the upgraded journal.
        assert!(j.shipment("S1").expect("query").is_none());
        drop(j);
        // Opening again changes nothing.
        let j = SqliteJournal::open(&p).expect("reopen");
        assert_eq!(
            j.events(0)
                .expect("events")
                .iter()
                .filter(|e| e.kind == "journal upgraded")
                .count(),
            1
        );
    }

    fn delivered(j: &SqliteJournal, record: &str, serial: &str, nid: &str) {
        let b = load(j, &[record]);
        let c = j
            .claim(b.id, &who("A"), serial)
            .expect("claim")
            .expect("claimed");
        j.finish(c.attempt_id, &good()).expect("good");
        j.ship(&who("A"), serial, record, nid, "1021")
            .expect("ship");
        j.deliver(
            &who("counter"),
            &Delivery {
                card_serial: serial.into(),
                record_id: record.into(),
                national_id: nid.into(),
                office: "1021".into(),
                certificates: vec![CertRow {
                    key: "signature".into(),
                    serial: "0a".into(),
                    subject: "CN=x".into(),
                    issuer: "CN=ca".into(),
                    key_usage: "nonRepudiation".into(),
                    not_after: "2031".into(),
                    sha256: "AB".into(),
                }],
            },
        )
        .expect("deliver");
    }

    #[test]
    fn shipping_needs_a_good_card_and_one_office() {
        let (_d, j) = journal();
        let b = load(&j, &["r1"]);
        let e = j
            .ship(&who("A"), "S1", "r1", "0000000000", "1021")
            .expect_err("not good");
        assert!(e.to_string().contains("no good personalization"), "{e}");
        let c = j.claim(b.id, &who("A"), "S1").expect("claim").expect("r1");
        j.finish(c.attempt_id, &good()).expect("good");
        let e = j
            .ship(&who("A"), "S1", "r9", "0000000000", "1021")
            .expect_err("other record");
        assert!(e.to_string().contains("holds record r1"), "{e}");
        let s = j
            .ship(&who("A"), "S1", "r1", "0000000000", "1021")
            .expect("ship");
        assert_eq!(
            j.ship(&who("A"), "S1", "r1", "0000000000", "1021")
                .expect("again"),
            s
        );
        let e = j
            .ship(&who("A"), "S1", "r1", "0000000000", "2034")
            .expect_err("elsewhere");
        assert!(
            e.to_string().contains("already shipped to office 1021"),
            "{e}"
        );
        let e = j
            .deliver(
                &who("counter"),
                &Delivery {
                    card_serial: "S1".into(),
                    record_id: "r1".into(),
                    national_id: "0000000000".into(),
                    office: "2034".into(),
                    certificates: vec![],
                },
            )
            .expect_err("wrong office");
        assert!(
            e.to_string().contains("shipped to office 1021, not 2034"),
            "{e}"
        );
    }

    #[test]
    fn a_replacement_needs_a_delivered_active_card_and_closes_it_once() {
        let (_d, j) = journal();
        // Shipped but never delivered: refused.
        let b = load(&j, &["r0"]);
        let c = j.claim(b.id, &who("A"), "S0").expect("claim").expect("r0");
        j.finish(c.attempt_id, &good()).expect("good");
        j.ship(&who("A"), "S0", "r0", "1111111111", "1021")
            .expect("ship");
        let e = j
            .request_replacement(&who("c"), "S0", "loss", CardStatus::Lost, "1021")
            .expect_err("not delivered");
        assert!(e.to_string().contains("never delivered"), "{e}");
        let e = j
            .request_replacement(&who("c"), "S9", "loss", CardStatus::Lost, "1021")
            .expect_err("unknown");
        assert!(e.to_string().contains("never delivered"), "{e}");

        delivered(&j, "r1", "S1", "2222222222");
        assert_eq!(j.certificates("S1").expect("certs").len(), 1);
        let r = j
            .request_replacement(&who("c"), "S1", "loss", CardStatus::Lost, "1021")
            .expect("replacement");
        assert_eq!(r.national_id, "2222222222");
        let card = j.delivered("S1").expect("q").expect("S1");
        assert_eq!(card.status, CardStatus::Lost);
        let e = j
            .request_replacement(&who("c"), "S1", "damage", CardStatus::Terminated, "1021")
            .expect_err("twice");
        assert!(e.to_string().contains("already lost"), "{e}");
        // The new card's delivery closes the request.
        delivered(&j, "r2", "S2", "2222222222");
        assert_eq!(
            j.delivered("S1")
                .expect("q")
                .expect("S1")
                .replaced_by
                .as_deref(),
            Some("S2")
        );
        assert_eq!(
            j.replacements("2222222222").expect("q")[0]
                .new_card
                .as_deref(),
            Some("S2")
        );
        assert_eq!(j.delivered_to("2222222222").expect("q").len(), 2);
    }

    #[test]
    fn the_sqlite_journal_and_its_wal_and_shm_files_are_600() {
        use crate::register::journal::{Journal, Who};
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        // The journal goes through crate::private: its files are 600, its new
        // directory 700.
        let d =
            std::env::temp_dir().join(format!("cardsmith-private-sqlite-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("line/journal.sqlite");
        let j = SqliteJournal::open(&p).unwrap();
        let who = Who {
            station: "s".into(),
            operator: "o".into(),
            reader: None,
        };
        j.event(&who, "test", "a write that goes through the WAL")
            .unwrap();
        // While the journal is open, SQLite keeps its -wal and -shm files.
        for f in ["journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"] {
            let f = d.join("line").join(f);
            assert!(f.exists(), "{}", f.display());
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
        assert_eq!(mode(&d.join("line")), 0o700);
        drop(j);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
