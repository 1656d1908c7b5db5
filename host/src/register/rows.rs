//! The journal's tables as plain values that both backends read and
//! render alike: the one-time copy compares SQLite with PostgreSQL through
//! them, and the audit trail hashes rows with them.

use postgres::types::ToSql;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Int,
    Text,
    Bool,
}

use Col::*;

/// A table to copy: name, row order, columns with their types.
pub(crate) type TableSpec = (&'static str, &'static str, &'static [(&'static str, Col)]);

/// The tables, in foreign-key order.
pub(crate) const TABLES: &[TableSpec] = &[
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
            ("request_day", Int),
            ("office_kind", Text),
            ("office_code", Text),
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
    (
        "revocations",
        "serial",
        &[
            ("serial", Text),
            ("issuer", Text),
            ("reason", Int),
            ("revoked_at", Int),
            ("card_serial", Text),
            ("station", Text),
            ("operator", Text),
        ],
    ),
    (
        "crls",
        "issuer, number",
        &[
            ("issuer", Text),
            ("number", Int),
            ("this_update", Int),
            ("next_update", Int),
            ("entries", Int),
            ("station", Text),
            ("operator", Text),
        ],
    ),
    (
        "audit",
        "seq",
        &[
            ("seq", Int),
            ("at", Int),
            ("station", Text),
            ("operator", Text),
            ("tbl", Text),
            ("row_key", Text),
            ("row", Text),
            ("prev_sha256", Text),
            ("sha256", Text),
        ],
    ),
    (
        "audit_head",
        "id",
        &[("id", Int), ("seq", Int), ("sha256", Text)],
    ),
];

/// One value in a form both databases give the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum V {
    Null,
    Int(i64),
    Text(String),
}

impl V {
    pub(crate) fn render(&self, out: &mut Vec<u8>) {
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
pub(crate) struct Table {
    pub rows: Vec<Vec<V>>,
    pub digest: String,
}

pub(crate) fn digest(rows: &[Vec<V>]) -> String {
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

impl V {
    /// As JSON (booleans are integers, as SQLite keeps them).
    pub(crate) fn json(&self) -> serde_json::Value {
        match self {
            V::Null => serde_json::Value::Null,
            V::Int(i) => serde_json::Value::from(*i),
            V::Text(s) => serde_json::Value::from(s.as_str()),
        }
    }
}

/// The columns of a table as SQL (booleans read as integers on
/// PostgreSQL), the key columns for a `WHERE`, and the table's spec.
pub(crate) fn spec(table: &str) -> Option<&'static TableSpec> {
    TABLES.iter().find(|t| t.0 == table)
}

fn select(spec: &TableSpec, filter: bool, pg: bool) -> String {
    let (table, order, cols) = spec;
    let names: Vec<String> = cols
        .iter()
        .map(|(n, k)| match (k, pg) {
            (Bool, true) => format!("{n}::INT::BIGINT"),
            _ => n.to_string(),
        })
        .collect();
    let keys: Vec<&str> = order.split(',').map(|k| k.trim()).collect();
    let mut sql = format!("SELECT {} FROM {table}", names.join(", "));
    if filter {
        let conds: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                if pg {
                    format!("{k} = ${}", i + 1)
                } else {
                    format!("{k} = ?{}", i + 1)
                }
            })
            .collect();
        sql.push_str(&format!(" WHERE {}", conds.join(" AND ")));
    }
    // Byte order for text keys, whatever the database's collation.
    let order: Vec<String> = keys
        .iter()
        .map(|k| match (cols.iter().find(|c| c.0 == *k), pg) {
            (Some((_, Text)), true) => format!("{k} COLLATE \"C\""),
            _ => k.to_string(),
        })
        .collect();
    sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
    sql
}

/// Rows of a table from SQLite (all, or the one whose key is `key`).
pub(crate) fn sqlite_rows(
    c: &rusqlite::Connection,
    spec: &TableSpec,
    key: Option<&[V]>,
) -> rusqlite::Result<Vec<Vec<V>>> {
    let (table, _, cols) = spec;
    let mut st = c.prepare(&select(spec, key.is_some(), false))?;
    let params: Vec<rusqlite::types::Value> = key
        .unwrap_or(&[])
        .iter()
        .map(|v| match v {
            V::Null => rusqlite::types::Value::Null,
            V::Int(i) => rusqlite::types::Value::Integer(*i),
            V::Text(s) => rusqlite::types::Value::Text(s.clone()),
        })
        .collect();
    let mut q = st.query(rusqlite::params_from_iter(params))?;
    let mut rows = vec![];
    while let Some(r) = q.next()? {
        let mut row = Vec::with_capacity(cols.len());
        for (i, (name, kind)) in cols.iter().enumerate() {
            let v: rusqlite::types::Value = r.get(i)?;
            row.push(match (v, kind) {
                (rusqlite::types::Value::Null, _) => V::Null,
                (rusqlite::types::Value::Integer(n), Int | Bool) => V::Int(n),
                (rusqlite::types::Value::Text(s), Text) => V::Text(s),
                (other, _) => {
                    return Err(rusqlite::Error::FromSqlConversionFailure(
                        i,
                        other.data_type(),
                        format!("{table}.{name}: unexpected value {other:?} for the column's type")
                            .into(),
                    ))
                }
            });
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Rows of a table from PostgreSQL (all, or the one whose key is `key`).
pub(crate) fn pg_rows(
    c: &mut impl postgres::GenericClient,
    spec: &TableSpec,
    key: Option<&[V]>,
) -> Result<Vec<Vec<V>>, postgres::Error> {
    let (_, _, cols) = spec;
    let boxed: Vec<Box<dyn ToSql + Sync>> = key
        .unwrap_or(&[])
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync> {
            match v {
                V::Int(i) => Box::new(*i),
                V::Text(s) => Box::new(s.clone()),
                V::Null => Box::new(None::<String>),
            }
        })
        .collect();
    let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
    let rows = c.query(&select(spec, key.is_some(), true), &refs)?;
    Ok(rows
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
        .collect())
}
