//! The one-time move of a station's SQLite journal into the shared
//! PostgreSQL register (`cardsmith journal copy`).
//!
//! Every table is copied row for row with its ids, in one transaction on
//! the register. Before that transaction commits, each table is read back
//! from the register and compared with the source by row count and by a
//! SHA-256 over its rows in a canonical form (same order, same rendering
//! of each value on both sides); any difference rolls the copy back. The
//! register must be migrated and hold no batch yet: the copy is the
//! register's beginning, never a merge.

use super::journal::{JournalError, Result};
use super::sqlite::SqliteJournal;
use postgres::types::ToSql;
use postgres::Client;
use std::path::Path;

use super::rows::{digest, pg_rows, sqlite_rows, Col::*, Table, TABLES, V};

/// What was copied, table by table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    pub table: String,
    pub rows: u64,
    pub sha256: String,
}

fn storage(place: &str, detail: String) -> JournalError {
    JournalError::Storage {
        path: place.to_string(),
        detail,
    }
}

fn read_sqlite(
    c: &rusqlite::Connection,
    src: &str,
    spec: &super::rows::TableSpec,
) -> Result<Table> {
    let rows =
        sqlite_rows(c, spec, None).map_err(|e| storage(src, format!("reading {}: {e}", spec.0)))?;
    let digest = digest(&rows);
    Ok(Table { rows, digest })
}

fn read_pg(
    t: &mut postgres::Transaction<'_>,
    dst: &str,
    spec: &super::rows::TableSpec,
) -> Result<Table> {
    let rows = pg_rows(t, spec, None)
        .map_err(|e| storage(dst, format!("reading back {}: {e}", spec.0)))?;
    let digest = digest(&rows);
    Ok(Table { rows, digest })
}

/// Copy the SQLite journal at `src` into the register `c` (migrated,
/// empty). The source is upgraded to the current SQLite schema first (as
/// any cardsmith opening it would), and otherwise only read.
pub fn copy(src: &Path, c: &mut Client, dst: &str) -> Result<Vec<Copied>> {
    let src_name = src.display().to_string();
    if !src.is_file() {
        return Err(storage(&src_name, "no such journal file".into()));
    }
    drop(SqliteJournal::open(src)?);
    let s = rusqlite::Connection::open_with_flags(src, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| storage(&src_name, e.to_string()))?;
    let perr = |e: postgres::Error| storage(dst, format!("copying: {}", super::pg::describe(&e)));
    let mut t = c.transaction().map_err(perr)?;
    let batches: i64 = t
        .query_one("SELECT COUNT(*) FROM batches", &[])
        .map_err(perr)?
        .get(0);
    if batches > 0 {
        return Err(storage(
            dst,
            format!("the register already holds {batches} batch(es); a journal is copied only into an empty register, once"),
        ));
    }
    // The copy brings the station's trail and its head.
    t.execute("DELETE FROM audit_head", &[]).map_err(perr)?;
    let mut done = vec![];
    for spec in TABLES {
        let (table, _, cols) = spec;
        let from = read_sqlite(&s, &src_name, spec)?;
        let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
        let params: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, (_, k))| match k {
                Bool => format!("(${}::BIGINT <> 0)", i + 1),
                _ => format!("${}", i + 1),
            })
            .collect();
        let ins = t
            .prepare(&format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                names.join(", "),
                params.join(", ")
            ))
            .map_err(perr)?;
        for row in &from.rows {
            let vals: Vec<Box<dyn ToSql + Sync>> = row
                .iter()
                .zip(cols.iter())
                .map(|(v, (_, k))| -> Box<dyn ToSql + Sync> {
                    match (v, k) {
                        (V::Int(n), _) => Box::new(*n),
                        (V::Text(s), _) => Box::new(s.clone()),
                        (V::Null, Text) => Box::new(None::<String>),
                        (V::Null, _) => Box::new(None::<i64>),
                    }
                })
                .collect();
            let refs: Vec<&(dyn ToSql + Sync)> = vals.iter().map(|b| b.as_ref()).collect();
            t.execute(&ins, &refs).map_err(|e| {
                storage(dst, format!("copying {table}: {}", super::pg::describe(&e)))
            })?;
        }
        if cols.first().is_some_and(|c| c.0 == "id") && *table != "audit_head" {
            t.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
                ),
                &[],
            )
            .map_err(perr)?;
        }
        let back = read_pg(&mut t, dst, spec)?;
        if back.rows.len() != from.rows.len() || back.digest != from.digest {
            return Err(storage(
                dst,
                format!(
                    "{table}: the copy differs from the source ({} rows, SHA-256 {} in {src_name}; {} rows, SHA-256 {} in the register); nothing was copied",
                    from.rows.len(),
                    from.digest,
                    back.rows.len(),
                    back.digest
                ),
            ));
        }
        done.push(Copied {
            table: table.to_string(),
            rows: from.rows.len() as u64,
            sha256: from.digest,
        });
    }
    let note = format!(
        "copied from {src_name}: {}",
        done.iter()
            .map(|d| format!("{} {}", d.table, d.rows))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let r = t
        .query_one(
            "INSERT INTO events (at, station, operator, reader, kind, detail)
             VALUES (cardsmith_now_ms(), '', 'cardsmith', NULL, 'journal copied', $1) RETURNING id, at",
            &[&note],
        )
        .map_err(perr)?;
    super::pgaudit::audit_row(
        &mut t,
        "",
        "cardsmith",
        r.get(1),
        "events",
        &[V::Int(r.get(0))],
    )
    .map_err(|f| match f {
        super::pgaudit::Fail::Pg(e) => perr(e),
        super::pgaudit::Fail::J(j) => j,
    })?;
    t.commit().map_err(perr)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_tells_null_from_empty_and_splits_fields() {
        let a = vec![vec![V::Text("ab".into()), V::Text("c".into())]];
        let b = vec![vec![V::Text("a".into()), V::Text("bc".into())]];
        assert_ne!(digest(&a), digest(&b));
        assert_ne!(
            digest(&[vec![V::Null]]),
            digest(&[vec![V::Text(String::new())]])
        );
        assert_ne!(
            digest(&[vec![V::Int(1)]]),
            digest(&[vec![V::Text("1".into())]])
        );
    }
}
