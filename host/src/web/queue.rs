//! The queue: the holders expected at this office (good cards shipped here
//! and not delivered yet), searchable by national ID (Latin or Persian
//! digits) or by name in either script.
//!
//! Read from the register: every batch's good cards, their shipment and
//! delivery. Names come from the batch files the register points to; where
//! a batch file is not readable on this PC (a counter on the shared
//! register far from the line), the holder is listed by national ID only.

use crate::perso::input::IsoTemplates;
use crate::record::stream::LineIndex;
use crate::record::{normalize_digits, normalize_persian};
use crate::register::journal::{Journal, Millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub national_id: String,
    pub name_fa: Option<String>,
    pub name_latin: Option<String>,
    pub card_serial: String,
    pub record_id: String,
    pub shipped_at: Millis,
}

/// The holders expected at `office`, oldest shipment first.
pub fn expected(j: &dyn Journal, office: &str) -> Result<Vec<Expected>, String> {
    let e = |e: crate::register::journal::JournalError| e.to_string();
    let Some(latest) = j.batch(None).map_err(e)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for id in 1..=latest.id {
        let Some(batch) = j.batch(Some(id)).map_err(e)? else {
            continue;
        };
        // The batch file's line index, built when a name is first needed
        // (`None` inside: the file is not readable here).
        let mut index: Option<Option<LineIndex>> = None;
        for row in j.records(id).map_err(e)? {
            let Some(serial) = row.card_serial.filter(|_| row.state == "good") else {
                continue;
            };
            let Some(ship) = j.shipment(&serial).map_err(e)? else {
                continue;
            };
            if ship.office != office || j.delivered(&serial).map_err(e)?.is_some() {
                continue;
            }
            let index = index.get_or_insert_with(|| {
                LineIndex::build(std::path::Path::new(&batch.path), 64, &mut |_| {}).ok()
            });
            let names = index
                .as_ref()
                .and_then(|ix| name_at(ix, row.line, &row.record_id));
            let n = names.as_ref();
            out.push(Expected {
                national_id: ship.national_id,
                name_fa: n.map(|n| n.0.clone()),
                name_latin: n.map(|n| n.1.clone()),
                card_serial: serial,
                record_id: row.record_id,
                shipped_at: ship.at,
            });
        }
    }
    out.sort_by_key(|x| x.shipped_at);
    Ok(out)
}

/// (Persian name, Latin name) of the record on `line` of a batch file, read
/// by its line (a batch may hold a million records); `None` when the line
/// does not hold that valid record.
fn name_at(index: &LineIndex, line: u64, record_id: &str) -> Option<(String, String)> {
    let v = IsoTemplates { max_minutiae: 60 };
    let r = index.record(line, &v).ok()?;
    (r.record_id() == record_id).then(|| {
        (
            format!("{} {}", r.given_name().fa, r.family_name().fa),
            format!("{} {}", r.given_name().latin, r.family_name().latin),
        )
    })
}

/// Whether `x` answers the search `q`: national ID digits (any digit
/// forms), or part of the name in Persian (normalized: Arabic yeh and kaf
/// match the Persian ones) or in Latin script (any case).
pub fn matches(x: &Expected, q: &str) -> bool {
    let q = q.trim();
    if q.is_empty() {
        return true;
    }
    let digits = normalize_digits(q);
    if digits.chars().all(|c| c.is_ascii_digit()) {
        return x.national_id.contains(&digits);
    }
    let fa = normalize_persian(q);
    if x.name_fa
        .as_ref()
        .is_some_and(|n| normalize_persian(n).contains(&fa))
    {
        return true;
    }
    let lower = q.to_lowercase();
    x.name_latin
        .as_ref()
        .is_some_and(|n| n.to_lowercase().contains(&lower))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_by_national_id_in_either_digits_or_name_in_either_script() {
        let x = Expected {
            national_id: "5328297441".into(),
            name_fa: Some("مینا عباسی".into()),
            name_latin: Some("Mina Abbasi".into()),
            card_serial: "1B2C".into(),
            record_id: "R-1".into(),
            shipped_at: 0,
        };
        for q in [
            "",
            "5328297441",
            "۵۳۲۸۲۹",
            "297",
            "عباسی",
            "مينا",
            "abbasi",
            "MINA A",
        ] {
            assert!(matches(&x, q), "{q}");
        }
        for q in ["1111", "رحیمی", "Rahimi"] {
            assert!(!matches(&x, q), "{q}");
        }
        let nameless = Expected {
            name_fa: None,
            name_latin: None,
            ..x
        };
        assert!(!matches(&nameless, "Mina"));
        assert!(matches(&nameless, "5328"));
    }
}
