//! The journal's tamper-evident audit trail.
//!
//! Every change the journal makes to a row that records what happened —
//! a batch loaded, an attempt started or ended, a card rejected, an event,
//! a shipment, a delivery and its certificates, a replacement — appends an
//! entry to `audit` in the same transaction: the table, the row's key, the
//! whole row as it is after the change, who and when, the SHA-256 of the
//! entry before, and its own SHA-256 over all of that. `audit_head` keeps
//! the last entry, so entries removed from the end are seen too.
//!
//! [`check`] walks the chain and then compares every audited table with
//! the last state the chain recorded for each row, so it finds an edited
//! entry, an entry removed or inserted, and a row of a table edited,
//! removed or inserted behind the journal's back (with `sqlite3` or
//! `psql`). It names the first place the history breaks.
//!
//! Leases (`attempts.lease_until`) are operational and change every few
//! seconds; they are not part of the audited row. The queue (`records`,
//! `set_aside`) is derived state and not audited either.
//!
//! What this does not stop: someone who can write the tables *and* knows
//! to extend the chain with forged entries. The chain makes such changes
//! deliberate rather than silent; moving the chaining into the database
//! server (a trigger under a role the stations do not have) is the next
//! step for the shared register.

use super::rows::{TableSpec, V};
use crate::utc::{iso_millis, Millis};
use serde::Serialize;
use std::collections::BTreeMap;

/// The tables whose rows the trail covers.
pub const AUDITED: &[&str] = &[
    "batches",
    "attempts",
    "rejected_cards",
    "events",
    "shipments",
    "deliveries",
    "card_certificates",
    "replacements",
    "revocations",
    "crls",
];

/// Columns left out of the audited row.
const UNAUDITED_COLUMNS: &[&str] = &["lease_until"];

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry of the trail, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub seq: i64,
    pub at: Millis,
    pub station: String,
    pub operator: String,
    /// The table changed.
    pub table: String,
    /// The row's key, as a JSON array.
    pub row_key: String,
    /// The row after the change, as a JSON object (`null`: no such row).
    pub row: String,
    pub prev_sha256: String,
    pub sha256: String,
}

impl Entry {
    /// The SHA-256 this entry must carry, from everything else in it.
    pub fn expected_sha256(&self) -> String {
        let material = serde_json::json!([
            self.prev_sha256,
            self.seq,
            self.at,
            self.station,
            self.operator,
            self.table,
            self.row_key,
            self.row
        ])
        .to_string();
        crate::hex::compact(
            ring::digest::digest(&ring::digest::SHA256, material.as_bytes()).as_ref(),
        )
        .to_lowercase()
    }
}

/// The key columns of a table.
pub(crate) fn key_columns(spec: &TableSpec) -> Vec<&'static str> {
    spec.1.split(',').map(|k| k.trim()).collect()
}

/// The key of a row, as stored in the trail.
pub(crate) fn key_json(key: &[V]) -> String {
    serde_json::Value::Array(key.iter().map(V::json).collect()).to_string()
}

/// A row as the trail keeps it (`null` when there is none).
pub(crate) fn row_json(spec: &TableSpec, row: Option<&[V]>) -> String {
    let Some(row) = row else {
        return "null".into();
    };
    let map: BTreeMap<&str, serde_json::Value> = spec
        .2
        .iter()
        .zip(row.iter())
        .filter(|((name, _), _)| !UNAUDITED_COLUMNS.contains(name))
        .map(|((name, _), v)| (*name, v.json()))
        .collect();
    serde_json::to_string(&map).unwrap_or_else(|_| "null".into())
}

/// The key values of a row read with the spec's columns.
pub(crate) fn key_of(spec: &TableSpec, row: &[V]) -> Vec<V> {
    key_columns(spec)
        .iter()
        .filter_map(|k| spec.2.iter().position(|c| c.0 == *k))
        .filter_map(|i| row.get(i).cloned())
        .collect()
}

/// The next entry after `(seq, prev)`.
#[allow(clippy::too_many_arguments)]
pub fn next(
    seq: i64,
    prev: &str,
    at: Millis,
    station: &str,
    operator: &str,
    table: &str,
    row_key: String,
    row: String,
) -> Entry {
    let mut e = Entry {
        seq: seq + 1,
        at,
        station: station.to_string(),
        operator: operator.to_string(),
        table: table.to_string(),
        row_key,
        row,
        prev_sha256: prev.to_string(),
        sha256: String::new(),
    };
    e.sha256 = e.expected_sha256();
    e
}

/// Something wrong with the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The trail entry where the history breaks (when there is one).
    pub seq: Option<i64>,
    pub table: Option<String>,
    pub row_key: Option<String>,
    pub what: String,
}

/// The outcome of [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub entries: u64,
    pub rows: u64,
    pub intact: bool,
    /// Every finding, the first break first.
    pub findings: Vec<Finding>,
}

/// Walk the trail `entries` (in `seq` order) and the current rows of every
/// audited table; `head` is `audit_head`'s (seq, sha256).
pub(crate) fn check(
    entries: &[Entry],
    head: Option<(i64, String)>,
    tables: &[(&TableSpec, Vec<Vec<V>>)],
) -> Report {
    let mut findings = vec![];
    check_chain(entries, &mut findings);
    check_head(entries, head, &mut findings);
    let rows = check_rows(entries, tables, &mut findings);
    findings.sort_by_key(|f| (f.seq.is_none(), f.seq));
    Report {
        entries: entries.len() as u64,
        rows,
        intact: findings.is_empty(),
        findings,
    }
}

/// The entries in `seq` order, each hashing to its SHA-256 and following
/// the one before it.
fn check_chain(entries: &[Entry], findings: &mut Vec<Finding>) {
    let mut prev = GENESIS.to_string();
    let mut expect_seq = 1;
    for e in entries {
        if e.seq != expect_seq {
            if e.seq > expect_seq {
                findings.push(Finding {
                    seq: Some(expect_seq),
                    table: None,
                    row_key: None,
                    what: format!(
                        "entries {expect_seq} to {} were removed from the trail (the next one left is {})",
                        e.seq - 1,
                        e.seq
                    ),
                });
            } else {
                findings.push(Finding {
                    seq: Some(e.seq),
                    table: Some(e.table.clone()),
                    row_key: Some(e.row_key.clone()),
                    what: format!(
                        "entry {} appears out of order after entry {}",
                        e.seq,
                        expect_seq - 1
                    ),
                });
            }
        }
        if e.sha256 != e.expected_sha256() {
            findings.push(Finding {
                seq: Some(e.seq),
                table: Some(e.table.clone()),
                row_key: Some(e.row_key.clone()),
                what: format!(
                    "entry {} ({} {}) was changed: its content no longer matches its SHA-256",
                    e.seq, e.table, e.row_key
                ),
            });
        } else if e.prev_sha256 != prev {
            findings.push(Finding {
                seq: Some(e.seq),
                table: Some(e.table.clone()),
                row_key: Some(e.row_key.clone()),
                what: format!(
                    "entry {} ({} {}) does not follow the entry before it: inserted, or something before it was removed",
                    e.seq, e.table, e.row_key
                ),
            });
        }
        prev = e.sha256.clone();
        expect_seq = e.seq + 1;
    }
}

/// The trail's last entry against the journal's head: entries removed
/// from the end, or the head itself gone.
fn check_head(entries: &[Entry], head: Option<(i64, String)>, findings: &mut Vec<Finding>) {
    let last = entries.last().map(|e| (e.seq, e.sha256.clone()));
    match (&head, &last) {
        (Some((hs, hh)), Some((ls, lh))) if hs != ls || hh != lh => findings.push(Finding {
            seq: Some(ls + 1),
            table: None,
            row_key: None,
            what: format!(
                "the trail ends at entry {ls}, but the journal's head says {hs}: entries were removed from its end"
            ),
        }),
        (Some((hs, _)), None) if *hs > 0 => findings.push(Finding {
            seq: Some(1),
            table: None,
            row_key: None,
            what: format!("the trail is empty, but the journal's head says {hs} entries"),
        }),
        (None, _) => findings.push(Finding {
            seq: None,
            table: None,
            row_key: None,
            what: "the journal's audit head is missing".into(),
        }),
        _ => {}
    }
}

/// The current rows of every audited table against the last state the trail
/// recorded for them: rows inserted, changed or removed behind the journal's
/// back. Returns the number of rows looked at.
fn check_rows(
    entries: &[Entry],
    tables: &[(&TableSpec, Vec<Vec<V>>)],
    findings: &mut Vec<Finding>,
) -> u64 {
    // The last state the trail recorded for each row.
    let mut last_state: BTreeMap<(&str, &str), &Entry> = BTreeMap::new();
    for e in entries {
        last_state.insert((e.table.as_str(), e.row_key.as_str()), e);
    }
    let mut rows = 0u64;
    for (spec, current) in tables {
        let mut seen = std::collections::BTreeSet::new();
        for r in current {
            rows += 1;
            let key = key_json(&key_of(spec, r));
            let now = row_json(spec, Some(r));
            match last_state.get(&(spec.0, key.as_str())) {
                None => findings.push(Finding {
                    seq: None,
                    table: Some(spec.0.to_string()),
                    row_key: Some(key.clone()),
                    what: format!(
                        "{} row {key} is not in the trail: it was inserted behind the journal's back",
                        spec.0
                    ),
                }),
                Some(e) if e.row != now => findings.push(Finding {
                    seq: Some(e.seq),
                    table: Some(spec.0.to_string()),
                    row_key: Some(key.clone()),
                    what: format!(
                        "{} row {key} was changed after trail entry {} ({}): {}",
                        spec.0,
                        e.seq,
                        iso_millis(e.at),
                        differences(&e.row, &now)
                    ),
                }),
                Some(_) => {}
            }
            seen.insert(key);
        }
        for ((t, k), e) in &last_state {
            if *t == spec.0 && e.row != "null" && !seen.contains(*k) {
                findings.push(Finding {
                    seq: Some(e.seq),
                    table: Some(t.to_string()),
                    row_key: Some(k.to_string()),
                    what: format!(
                        "{t} row {k} was removed (last recorded in trail entry {})",
                        e.seq
                    ),
                });
            }
        }
    }
    rows
}

/// `column: recorded A, now B` for each column that differs.
fn differences(recorded: &str, now: &str) -> String {
    let a: BTreeMap<String, serde_json::Value> = serde_json::from_str(recorded).unwrap_or_default();
    let b: BTreeMap<String, serde_json::Value> = serde_json::from_str(now).unwrap_or_default();
    let diffs: Vec<String> = b
        .iter()
        .filter(|(k, v)| a.get(*k) != Some(*v))
        .map(|(k, v)| {
            format!(
                "{k} recorded {}, now {v}",
                a.get(k)
                    .map(|x| x.to_string())
                    .unwrap_or_else(|| "nothing".into())
            )
        })
        .collect();
    if diffs.is_empty() {
        "the row differs from the recorded one".into()
    } else {
        diffs.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<Entry> {
        let mut out: Vec<Entry> = vec![];
        for i in 0..n {
            let prev = out
                .last()
                .map(|e| e.sha256.clone())
                .unwrap_or(GENESIS.into());
            out.push(next(
                i,
                &prev,
                1000 + i,
                "st",
                "op",
                "events",
                format!("[{}]", i + 1),
                format!("{{\"id\":{}}}", i + 1),
            ));
        }
        out
    }

    #[test]
    fn an_intact_chain_passes_and_each_kind_of_break_is_named() {
        let c = chain(5);
        let head = Some((5, c[4].sha256.clone()));
        assert!(check(&c, head.clone(), &[]).intact);

        let mut changed = c.clone();
        changed[2].operator = "mallory".into();
        let r = check(&changed, head.clone(), &[]);
        assert_eq!(r.findings[0].seq, Some(3));
        assert!(r.findings[0].what.contains("was changed"), "{r:?}");

        let mut removed = c.clone();
        removed.remove(1);
        let r = check(&removed, head.clone(), &[]);
        assert_eq!(r.findings[0].seq, Some(2));
        assert!(r.findings[0].what.contains("removed"), "{r:?}");

        let tail = c[..4].to_vec();
        let r = check(&tail, head.clone(), &[]);
        assert!(r.findings[0].what.contains("removed from its end"), "{r:?}");

        // An entry forged in the middle with a correct hash of its own.
        let mut inserted = c.clone();
        let forged = next(2, "f00d", 5, "x", "y", "events", "[9]".into(), "{}".into());
        inserted.insert(2, forged);
        let r = check(&inserted, head, &[]);
        assert_eq!(r.findings[0].seq, Some(3));
        assert!(r.findings[0].what.contains("does not follow"), "{r:?}");
    }
}
