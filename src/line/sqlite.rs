//! The default journal: one SQLite file (`<data dir>/line/journal.sqlite`).
//!
//! WAL mode with `synchronous=FULL`: every commit is on disk before the
//! call returns, so a card is never reported good before its attempt is
//! durable. The "one good card per record" and "one good record per card"
//! rules are partial unique indexes, so the database itself refuses a
//! second good attempt whatever the code above it does. Claims run in
//! `BEGIN IMMEDIATE` transactions, so concurrent workers (threads here, or
//! processes sharing the file) never draw the same record.

use super::journal::*;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const SCHEMA_VERSION: i64 = 1;

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

/// The SQLite journal.
pub struct SqliteJournal {
    path: PathBuf,
    conn: Mutex<Connection>,
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

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

impl SqliteJournal {
    /// Open (creating if needed) the journal at `path`.
    pub fn open(path: &Path) -> Result<SqliteJournal> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| JournalError::Storage {
                path: path.display().to_string(),
                detail: format!("creating {}: {e}", dir.display()),
            })?;
        }
        let err = storage(path);
        let conn = Connection::open(path).map_err(&err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(&err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(&err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(&err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(&err)?;
        conn.execute_batch(SCHEMA).map_err(&err)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(&err)?;
        match version.as_deref() {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )
                .map_err(&err)?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) => {
                return Err(JournalError::Storage {
                    path: path.display().to_string(),
                    detail: format!(
                        "schema version {v}; this cardsmith understands version {SCHEMA_VERSION}"
                    ),
                })
            }
        }
        Ok(SqliteJournal {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
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

fn insert_attempt(
    tx: &rusqlite::Transaction<'_>,
    record_id: &str,
    batch_id: i64,
    kind: AttemptKind,
    who: &Who,
    serial: &str,
) -> rusqlite::Result<i64> {
    let now = now_ms();
    tx.execute(
        "UPDATE records SET state = 'in_progress', updated_at = ?2 WHERE record_id = ?1",
        params![record_id, now],
    )?;
    tx.execute(
        "INSERT INTO attempts (record_id, batch_id, kind, station, reader, operator, card_serial, started_at, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'in_progress')",
        params![
            record_id,
            batch_id,
            kind.as_str(),
            who.station,
            who.reader.as_deref().unwrap_or(""),
            who.operator,
            serial,
            now
        ],
    )?;
    Ok(tx.last_insert_rowid())
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
        let err = self.err();
        self.with_j(|c| {
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
            let mut aside: Vec<SetAside> = set_aside.to_vec();
            let mut queued = 0u64;
            for r in records {
                let other: Option<i64> = tx
                    .query_row(
                        "SELECT batch_id FROM records WHERE record_id = ?1",
                        [&r.record_id],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(&err)?;
                if let Some(b) = other {
                    aside.push(SetAside {
                        record_id: Some(r.record_id.clone()),
                        line: r.line,
                        reason: if b == id {
                            format!("record_id {} appears twice in this batch", r.record_id)
                        } else {
                            format!("record_id {} is already in batch {b}", r.record_id)
                        },
                    });
                    continue;
                }
                tx.execute(
                    "INSERT INTO records (record_id, batch_id, line, state, updated_at) VALUES (?1, ?2, ?3, 'pending', ?4)",
                    params![r.record_id, id, r.line as i64, now],
                )
                .map_err(&err)?;
                queued += 1;
            }
            aside.sort_by_key(|a| a.line);
            for a in &aside {
                tx.execute(
                    "INSERT INTO set_aside (batch_id, line, record_id, reason) VALUES (?1, ?2, ?3, ?4)",
                    params![id, a.line as i64, a.record_id, a.reason],
                )
                .map_err(&err)?;
            }
            tx.execute(
                "UPDATE batches SET records = ?2, invalid = ?3 WHERE id = ?1",
                params![id, queued as i64, aside.len() as i64],
            )
            .map_err(&err)?;
            tx.execute(
                "INSERT INTO events (at, station, operator, reader, kind, detail) VALUES (?1, ?2, ?3, NULL, 'batch loaded', ?4)",
                params![now, who.station, who.operator, format!("batch {id} {name}: {queued} queued, {} set aside", aside.len())],
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
            Ok((b, aside))
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
                tx.execute(
                    "UPDATE records SET state = 'pending', updated_at = ?2 WHERE record_id = ?1 AND state = 'in_progress'",
                    params![a.record_id, now],
                )?;
            }
            if !rows.is_empty() {
                tx.execute(
                    "INSERT INTO events (at, station, operator, reader, kind, detail) VALUES (?1, ?2, ?3, NULL, 'resume', ?4)",
                    params![
                        now,
                        who.station,
                        who.operator,
                        format!(
                            "{} attempt(s) interrupted by the stop; records back in the queue: {}",
                            rows.len(),
                            rows.iter().map(|a| a.record_id.as_str()).collect::<Vec<_>>().join(", ")
                        )
                    ],
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
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let next = tx
                .query_row(
                    "SELECT record_id, line FROM records WHERE batch_id = ?1 AND state = 'pending' ORDER BY line LIMIT 1",
                    [batch],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                )
                .optional()?;
            let Some((record_id, line)) = next else {
                return Ok(None);
            };
            let attempt_id = insert_attempt(&tx, &record_id, batch, AttemptKind::Perso, who, serial)?;
            tx.commit()?;
            Ok(Some(Claim {
                attempt_id,
                record_id,
                line: line.max(0) as u64,
                kind: AttemptKind::Perso,
            }))
        })
    }

    fn claim_recovery(&self, who: &Who, serial: &str) -> Result<Option<Claim>> {
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
            let attempt_id =
                insert_attempt(&tx, &record_id, batch, AttemptKind::Recovery, who, serial)?;
            tx.commit()?;
            Ok(Some(Claim {
                attempt_id,
                record_id,
                line: line.max(0) as u64,
                kind: AttemptKind::Recovery,
            }))
        })
    }

    fn finish(&self, attempt_id: i64, f: &Finish) -> Result<()> {
        let err = self.err();
        self.with_j(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let (record_id, serial, outcome): (String, String, String) = tx
                .query_row(
                    "SELECT record_id, card_serial, outcome FROM attempts WHERE id = ?1",
                    [attempt_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(&err)?
                .ok_or(JournalError::NoSuchAttempt(attempt_id))?;
            if outcome != "in_progress" {
                return Err(JournalError::NoSuchAttempt(attempt_id));
            }
            let o = f.outcome.unwrap_or(Outcome::Interrupted);
            let now = now_ms();
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
                    "UPDATE records SET state = 'good', card_serial = ?2, reason = NULL, updated_at = ?3 WHERE record_id = ?1",
                    params![record_id, serial, now],
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
            tx.commit().map_err(&err)?;
            Ok(())
        })
    }

    fn reject_card(&self, who: &Who, serial: &str, reason: &str, terminated: bool) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO rejected_cards (serial, at, station, operator, reader, reason, terminated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    serial,
                    now_ms(),
                    who.station,
                    who.operator,
                    who.reader,
                    reason,
                    terminated
                ],
            )?;
            Ok(())
        })
    }

    fn event(&self, who: &Who, kind: &str, detail: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO events (at, station, operator, reader, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![now_ms(), who.station, who.operator, who.reader, kind, detail],
            )?;
            Ok(())
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
            tx.execute(
                "INSERT INTO events (at, station, operator, reader, kind, detail) VALUES (?1, ?2, ?3, NULL, 'requeue', ?4)",
                params![now, who.station, who.operator, format!("record {record_id} put back in the queue")],
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
                    s.records += n;
                    match state.as_str() {
                        "pending" => s.pending = n,
                        "in_progress" => s.in_progress = n,
                        "good" => s.good = n,
                        "held" => s.held = n,
                        _ => {}
                    }
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
                s.attempts += n;
                match o.as_str() {
                    "rejected" => s.rejected = n,
                    "interrupted" => s.interrupted = n,
                    _ => {}
                }
            }
            Ok(s)
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
                    },
                    NewRecord {
                        record_id: "r3".into(),
                        line: 2,
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
}
