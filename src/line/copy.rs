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
use rusqlite::types::Value;
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Col {
    Int,
    Text,
    Bool,
}

use Col::*;

/// A table to copy: name, row order, columns with their types.
type TableSpec = (&'static str, &'static str, &'static [(&'static str, Col)]);

/// The tables, in foreign-key order.
const TABLES: &[TableSpec] = &[
    (
        "batches",
        "id",
        &[
            ("id", Int),
            ("name", Text),
            ("path", Text),
            ("digest", Text),
            ("loaded_at", Int),
            ("loaded_by", Text),
            ("station", Text),
            ("records", Int),
            ("invalid", Int),
        ],
    ),
    (
        "set_aside",
        "batch_id, line, record_id, reason",
        &[
            ("batch_id", Int),
            ("line", Int),
            ("record_id", Text),
            ("reason", Text),
        ],
    ),
    (
        "records",
        "record_id",
        &[
            ("record_id", Text),
            ("batch_id", Int),
            ("line", Int),
            ("state", Text),
            ("rejects", Int),
            ("card_serial", Text),
            ("reason", Text),
            ("updated_at", Int),
            ("claim_token", Int),
        ],
    ),
    (
        "attempts",
        "id",
        &[
            ("id", Int),
            ("record_id", Text),
            ("batch_id", Int),
            ("kind", Text),
            ("station", Text),
            ("reader", Text),
            ("operator", Text),
            ("card_serial", Text),
            ("started_at", Int),
            ("finished_at", Int),
            ("outcome", Text),
            ("reason_class", Text),
            ("reason", Text),
            ("stages", Text),
            ("apdus", Int),
            ("transcript_sha256", Text),
            ("card_terminated", Bool),
            ("token", Int),
            ("lease_until", Int),
        ],
    ),
    (
        "rejected_cards",
        "id",
        &[
            ("id", Int),
            ("serial", Text),
            ("at", Int),
            ("station", Text),
            ("operator", Text),
            ("reader", Text),
            ("reason", Text),
            ("terminated", Bool),
        ],
    ),
    (
        "events",
        "id",
        &[
            ("id", Int),
            ("at", Int),
            ("station", Text),
            ("operator", Text),
            ("reader", Text),
            ("kind", Text),
            ("detail", Text),
        ],
    ),
    (
        "shipments",
        "id",
        &[
            ("id", Int),
            ("card_serial", Text),
            ("record_id", Text),
            ("national_id", Text),
            ("office", Text),
            ("at", Int),
            ("station", Text),
            ("operator", Text),
        ],
    ),
    (
        "deliveries",
        "id",
        &[
            ("id", Int),
            ("card_serial", Text),
            ("record_id", Text),
            ("national_id", Text),
            ("office", Text),
            ("at", Int),
            ("station", Text),
            ("operator", Text),
            ("reader", Text),
            ("status", Text),
            ("reason", Text),
            ("status_at", Int),
            ("status_by", Text),
            ("replaced_by", Text),
        ],
    ),
    (
        "card_certificates",
        "card_serial, key",
        &[
            ("card_serial", Text),
            ("key", Text),
            ("serial", Text),
            ("subject", Text),
            ("issuer", Text),
            ("key_usage", Text),
            ("not_after", Text),
            ("sha256", Text),
        ],
    ),
    (
        "replacements",
        "id",
        &[
            ("id", Int),
            ("national_id", Text),
            ("previous_card", Text),
            ("reason", Text),
            ("previous_card_status", Text),
            ("office", Text),
            ("at", Int),
            ("station", Text),
            ("operator", Text),
            ("new_card", Text),
        ],
    ),
];

/// One value in a form both databases give the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
enum V {
    Null,
    Int(i64),
    Text(String),
}

impl V {
    fn render(&self, out: &mut Vec<u8>) {
        match self {
            V::Null => out.extend_from_slice(b"N;"),
            V::Int(i) => out.extend_from_slice(format!("I{i};").as_bytes()),
            V::Text(s) => {
                out.extend_from_slice(format!("T{}:", s.len()).as_bytes());
                out.extend_from_slice(s.as_bytes());
                out.push(b';');
            }
        }
    }
}

/// Rows, count and digest of one table on one side.
struct Table {
    rows: Vec<Vec<V>>,
    digest: String,
}

fn digest(rows: &[Vec<V>]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![];
    for r in rows {
        buf.clear();
        for v in r {
            v.render(&mut buf);
        }
        buf.push(b'\n');
        ctx.update(&buf);
    }
    crate::hex::compact(ctx.finish().as_ref()).to_lowercase()
}

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
    table: &str,
    order: &str,
    cols: &[(&str, Col)],
) -> Result<Table> {
    let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
    let sql = format!("SELECT {} FROM {table} ORDER BY {order}", names.join(", "));
    let err = |e: rusqlite::Error| storage(src, format!("reading {table}: {e}"));
    let mut st = c.prepare(&sql).map_err(err)?;
    let mut rows = vec![];
    let mut q = st.query([]).map_err(err)?;
    while let Some(r) = q.next().map_err(err)? {
        let mut row = Vec::with_capacity(cols.len());
        for (i, (name, kind)) in cols.iter().enumerate() {
            let v: Value = r.get(i).map_err(err)?;
            row.push(match (v, kind) {
                (Value::Null, _) => V::Null,
                (Value::Integer(n), Int | Bool) => V::Int(n),
                (Value::Text(s), Text) => V::Text(s),
                (other, _) => {
                    return Err(storage(
                        src,
                        format!(
                        "{table}.{name}: unexpected value {other:?} for the register's column type"
                    ),
                    ))
                }
            });
        }
        rows.push(row);
    }
    let digest = digest(&rows);
    Ok(Table { rows, digest })
}

fn read_pg(
    t: &mut postgres::Transaction<'_>,
    dst: &str,
    table: &str,
    order: &str,
    cols: &[(&str, Col)],
) -> Result<Table> {
    let names: Vec<String> = cols
        .iter()
        .map(|(n, k)| match k {
            // Booleans compare as 0/1, as SQLite keeps them.
            Bool => format!("{n}::INT::BIGINT"),
            _ => n.to_string(),
        })
        .collect();
    // Byte order for text keys, whatever the database's collation.
    let order: Vec<String> = order
        .split(',')
        .map(|k| {
            let k = k.trim();
            match cols.iter().find(|c| c.0 == k) {
                Some((_, Text)) => format!("{k} COLLATE \"C\""),
                _ => k.to_string(),
            }
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM {table} ORDER BY {}",
        names.join(", "),
        order.join(", ")
    );
    let rows = t
        .query(&sql, &[])
        .map_err(|e| storage(dst, format!("reading back {table}: {e}")))?;
    let rows: Vec<Vec<V>> = rows
        .iter()
        .map(|r| {
            cols.iter()
                .enumerate()
                .map(|(i, (_, k))| match k {
                    Text => r
                        .get::<_, Option<String>>(i)
                        .map(V::Text)
                        .unwrap_or(V::Null),
                    Int | Bool => r.get::<_, Option<i64>>(i).map(V::Int).unwrap_or(V::Null),
                })
                .collect()
        })
        .collect();
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
    let perr = |e: postgres::Error| storage(dst, format!("copying: {e}"));
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
    let mut done = vec![];
    for (table, order, cols) in TABLES {
        let from = read_sqlite(&s, &src_name, table, order, cols)?;
        let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
        let params: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, (_, k))| match k {
                Bool => format!("(${} <> 0)", i + 1),
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
            t.execute(&ins, &refs)
                .map_err(|e| storage(dst, format!("copying {table}: {e}")))?;
        }
        if cols.first().is_some_and(|c| c.0 == "id") {
            t.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
                ),
                &[],
            )
            .map_err(perr)?;
        }
        let back = read_pg(&mut t, dst, table, order, cols)?;
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
    t.execute(
        "INSERT INTO events (at, station, operator, reader, kind, detail)
         VALUES (cardsmith_now_ms(), '', 'cardsmith', NULL, 'journal copied', $1)",
        &[&format!(
            "copied from {src_name}: {}",
            done.iter()
                .map(|d| format!("{} {}", d.table, d.rows))
                .collect::<Vec<_>>()
                .join(", ")
        )],
    )
    .map_err(perr)?;
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
