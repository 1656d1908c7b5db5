//! The line dashboard for technicians: the register's latest batch and
//! what each line reader is doing, pushed to the browser as Server-Sent
//! Events (`/line/events`) whenever it changes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::register::journal::Journal;
use crate::transport::pcsc as pc;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchView {
    pub id: i64,
    pub name: String,
    pub records: u64,
    pub pending: u64,
    pub in_progress: u64,
    pub good: u64,
    pub rejected: u64,
    pub interrupted: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReaderView {
    pub name: String,
    /// PC/SC sees a card in it (None: not a reader of this PC).
    pub card_present: Option<bool>,
    /// The record being personalized there now.
    pub busy_with: Option<String>,
    /// The last finished attempt there: record and outcome.
    pub last: Option<(String, String)>,
    pub attempts: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub batch: Option<BatchView>,
    pub readers: Vec<ReaderView>,
}

/// The line as the register and PC/SC see it now.
pub fn snapshot(j: &dyn Journal) -> Result<Snapshot, String> {
    let e = |e: crate::register::journal::JournalError| e.to_string();
    let Some(b) = j.batch(None).map_err(e)? else {
        return Ok(Snapshot {
            batch: None,
            readers: Vec::new(),
        });
    };
    let s = j.summary(b.id).map_err(e)?;
    let mut readers: BTreeMap<String, ReaderView> = BTreeMap::new();
    let mut attempts = j.attempts(b.id).map_err(e)?;
    attempts.sort_by_key(|a| (a.started_at, a.id));
    for a in attempts {
        let r = readers
            .entry(a.reader.clone())
            .or_insert_with(|| ReaderView {
                name: a.reader.clone(),
                card_present: None,
                busy_with: None,
                last: None,
                attempts: 0,
            });
        r.attempts += 1;
        if a.finished_at.is_none() {
            r.busy_with = Some(a.record_id.clone());
        } else {
            if r.busy_with.as_deref() == Some(a.record_id.as_str()) {
                r.busy_with = None;
            }
            r.last = Some((a.record_id, a.outcome));
        }
    }
    if let Ok(list) = pc::list_readers() {
        for r in readers.values_mut() {
            r.card_present = list
                .iter()
                .find(|p| p.name == r.name)
                .map(|p| p.card_present);
        }
    }
    Ok(Snapshot {
        batch: Some(BatchView {
            id: b.id,
            name: b.name,
            records: s.records,
            pending: s.pending,
            in_progress: s.in_progress,
            good: s.good,
            rejected: s.rejected,
            interrupted: s.interrupted,
        }),
        readers: readers.into_values().collect(),
    })
}

/// One Server-Sent Event.
pub fn event(s: &Snapshot) -> String {
    format!(
        "event: line\ndata: {}\n\n",
        serde_json::to_string(s).unwrap_or_else(|_| "null".into())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::journal::{NewRecord, Who};

    #[test]
    fn the_snapshot_follows_the_register() {
        let d = tempfile::tempdir().expect("tmp");
        let j = crate::register::sqlite::SqliteJournal::open(&d.path().join("j.sqlite"))
            .expect("journal");
        assert_eq!(snapshot(&j).expect("snap").batch, None);
        let w = Who {
            station: "line-1".into(),
            operator: "tech".into(),
            reader: Some("Cardsmith Line 01".into()),
        };
        let recs: Vec<NewRecord> = (1..=3)
            .map(|i| NewRecord {
                record_id: format!("R-{i}"),
                line: i,
                request: None,
            })
            .collect();
        let (b, _) = j
            .load_batch("b1", "/b1", "d", &w, &recs, &[])
            .expect("load");
        let claim = j
            .claim(b.id, &w, "CARD-1")
            .expect("claim")
            .expect("a record");
        let s = snapshot(&j).expect("snap");
        let bv = s.batch.expect("batch");
        assert_eq!((bv.records, bv.in_progress, bv.pending), (3, 1, 2));
        assert_eq!(s.readers.len(), 1);
        assert_eq!(s.readers[0].name, "Cardsmith Line 01");
        assert_eq!(
            s.readers[0].busy_with.as_deref(),
            Some(claim.record_id.as_str())
        );
        let ev = event(&snapshot(&j).expect("snap"));
        assert!(ev.starts_with("event: line\ndata: {") && ev.ends_with("}\n\n"));
        assert!(!ev[5..ev.len() - 2].contains("\n\n"));
    }
}
