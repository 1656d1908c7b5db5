//! The end-of-batch report: JSON (everything), CSV (one row per attempt)
//! and an HTML page with a chart of throughput over time and a chart of
//! rejects by reason. Built from the journal alone, so it can be made
//! again at any time (`cardsmith line report`).

use crate::register::journal::{
    iso_time, AttemptRow, BatchInfo, Journal, Result, SetAside, Summary,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One reader's figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReaderFigures {
    pub reader: String,
    pub good: u64,
    pub rejected: u64,
    pub interrupted: u64,
    /// Good cards per hour over the reader's working span.
    pub cards_per_hour: f64,
    /// Mean time of a good attempt, claim to journaled good.
    pub mean_good_seconds: f64,
}

/// Good cards finished in one time bin.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bin {
    pub start: String,
    pub good: u64,
    pub rejected: u64,
    /// The bin's good count as a rate.
    pub cards_per_hour: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LineReport {
    pub batch: BatchInfo,
    pub summary: Summary,
    pub first_attempt: Option<String>,
    pub last_finish: Option<String>,
    pub cards_per_hour: f64,
    pub readers: Vec<ReaderFigures>,
    pub rejects_by_reason: Vec<(String, u64)>,
    pub bin_seconds: i64,
    pub throughput: Vec<Bin>,
    pub set_aside: Vec<SetAside>,
    pub attempts: Vec<AttemptRow>,
}

fn rate(n: u64, span_ms: i64) -> f64 {
    if span_ms <= 0 {
        0.0
    } else {
        n as f64 * 3_600_000.0 / span_ms as f64
    }
}

/// Bin width: a round number of seconds giving at most 60 bins.
fn bin_width(span_ms: i64) -> i64 {
    const STEPS: [i64; 12] = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
    let want = span_ms / 1000 / 60 + 1;
    STEPS.iter().copied().find(|s| *s >= want).unwrap_or(want)
}

/// Collect the report for `batch` from the journal.
pub fn build(j: &dyn Journal, batch: &BatchInfo) -> Result<LineReport> {
    let summary = j.summary(batch.id)?;
    let attempts = j.attempts(batch.id)?;
    let rejects_by_reason = j.rejects_by_reason(Some(batch.id))?;
    let set_aside = j.set_aside(batch.id)?;
    let first = attempts.iter().map(|a| a.started_at).min();
    let last = attempts.iter().filter_map(|a| a.finished_at).max();
    let span = match (first, last) {
        (Some(f), Some(l)) => l - f,
        _ => 0,
    };
    let mut per: BTreeMap<&str, (u64, u64, u64, i64, i64, i64)> = BTreeMap::new();
    for a in &attempts {
        let e = per
            .entry(a.reader.as_str())
            .or_insert((0, 0, 0, i64::MAX, i64::MIN, 0));
        match a.outcome.as_str() {
            "good" => {
                e.0 += 1;
                e.5 += a.finished_at.unwrap_or(a.started_at) - a.started_at;
            }
            "rejected" => e.1 += 1,
            "interrupted" => e.2 += 1,
            _ => {}
        }
        e.3 = e.3.min(a.started_at);
        e.4 = e.4.max(a.finished_at.unwrap_or(a.started_at));
    }
    let readers = per
        .into_iter()
        .map(|(r, (g, rj, i, f, l, total))| ReaderFigures {
            reader: r.to_string(),
            good: g,
            rejected: rj,
            interrupted: i,
            cards_per_hour: rate(g, l - f),
            mean_good_seconds: if g > 0 {
                total as f64 / g as f64 / 1000.0
            } else {
                0.0
            },
        })
        .collect();
    let width = bin_width(span);
    let mut throughput = Vec::new();
    if let (Some(f), Some(l)) = (first, last) {
        let n = ((l - f) / (width * 1000) + 1).max(1);
        let mut bins = vec![(0u64, 0u64); n as usize];
        for a in &attempts {
            let Some(t) = a.finished_at else { continue };
            let i = (((t - f) / (width * 1000)).clamp(0, n - 1)) as usize;
            if let Some(b) = bins.get_mut(i) {
                match a.outcome.as_str() {
                    "good" => b.0 += 1,
                    "rejected" => b.1 += 1,
                    _ => {}
                }
            }
        }
        for (i, (g, r)) in bins.into_iter().enumerate() {
            throughput.push(Bin {
                start: iso_time(f + i as i64 * width * 1000),
                good: g,
                rejected: r,
                cards_per_hour: rate(g, width * 1000),
            });
        }
    }
    Ok(LineReport {
        batch: batch.clone(),
        summary,
        first_attempt: first.map(iso_time),
        last_finish: last.map(iso_time),
        cards_per_hour: rate(summary.good, span),
        readers,
        rejects_by_reason,
        bin_seconds: width,
        throughput,
        set_aside,
        attempts,
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row per attempt.
pub fn to_csv(r: &LineReport) -> String {
    let mut out = String::from(
        "attempt,record_id,kind,reader,station,operator,card_serial,started_at,finished_at,seconds,outcome,reason_class,reason,apdus,transcript_sha256\n",
    );
    for a in &r.attempts {
        let secs = a
            .finished_at
            .map(|f| format!("{:.3}", (f - a.started_at) as f64 / 1000.0))
            .unwrap_or_default();
        let row = [
            a.id.to_string(),
            a.record_id.clone(),
            a.kind.clone(),
            a.reader.clone(),
            a.station.clone(),
            a.operator.clone(),
            a.card_serial.clone().unwrap_or_default(),
            iso_time(a.started_at),
            a.finished_at.map(iso_time).unwrap_or_default(),
            secs,
            a.outcome.clone(),
            a.reason_class.clone().unwrap_or_default(),
            a.reason.clone().unwrap_or_default(),
            a.apdus.to_string(),
            a.transcript_sha256.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Bars of good cards per bin, as an inline SVG.
fn throughput_svg(r: &LineReport) -> String {
    let (w, h, left, bottom) = (720.0f64, 240.0f64, 56.0f64, 28.0f64);
    let max = r
        .throughput
        .iter()
        .map(|b| b.cards_per_hour)
        .fold(0.0f64, f64::max)
        .max(1.0);
    let n = r.throughput.len().max(1) as f64;
    let bw = (w - left - 8.0) / n;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="throughput over time"><line x1="{left}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#444"/><line x1="{left}" y1="8" x2="{left}" y2="{y0}" stroke="#444"/><text x="4" y="16" font-size="11">{max:.0}/h</text><text x="4" y="{y0}" font-size="11">0</text>"##,
        y0 = h - bottom,
        x1 = w - 8.0
    );
    for (i, b) in r.throughput.iter().enumerate() {
        let bh = (h - bottom - 8.0) * b.cards_per_hour / max;
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#2a7"><title>{}: {} good, {} rejected ({:.0} cards/h)</title></rect>"##,
            left + i as f64 * bw + 1.0,
            h - bottom - bh,
            (bw - 2.0).max(1.0),
            bh,
            esc(&b.start),
            b.good,
            b.rejected,
            b.cards_per_hour
        );
    }
    if let (Some(f), Some(l)) = (r.throughput.first(), r.throughput.last()) {
        let _ = write!(
            s,
            r#"<text x="{left}" y="{}" font-size="11">{}</text><text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>"#,
            h - 8.0,
            esc(&f.start),
            w - 8.0,
            h - 8.0,
            esc(&l.start)
        );
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars of rejects by reason, as an inline SVG.
fn rejects_svg(r: &LineReport) -> String {
    let rows = r.rejects_by_reason.len().max(1) as f64;
    let (w, row_h, label) = (720.0f64, 22.0f64, 300.0f64);
    let h = rows * row_h + 8.0;
    let max = r
        .rejects_by_reason
        .iter()
        .map(|x| x.1)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="rejects by reason">"#
    );
    if r.rejects_by_reason.is_empty() {
        s.push_str(r#"<text x="4" y="16" font-size="12">no rejects</text>"#);
    }
    for (i, (reason, n)) in r.rejects_by_reason.iter().enumerate() {
        let y = 4.0 + i as f64 * row_h;
        let bw = (w - label - 48.0) * (*n as f64) / max;
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text><rect x="{label}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="#c43"/><text x="{:.1}" y="{:.1}" font-size="12">{n}</text>"##,
            label - 6.0,
            y + 14.0,
            esc(reason),
            row_h - 6.0,
            label + bw + 4.0,
            y + 14.0
        );
    }
    s.push_str("</svg>");
    s
}

/// The HTML page (self-contained: no script, no external resources).
pub fn to_html(r: &LineReport) -> String {
    let s = &r.summary;
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/><title>cardsmith line report: batch {id} {name}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:right}}th:first-child,td:first-child{{text-align:left}}</style></head><body>
<h1>Batch {id}: {name}</h1>
<p>File <code>{path}</code> (SHA-256 <code>{digest}</code>), loaded {loaded} by {by}.</p>
<table><tr><th>records</th><th>good</th><th>pending</th><th>in progress</th><th>held</th><th>set aside</th><th>attempts</th><th>rejected</th><th>interrupted</th><th>cards/hour</th></tr>
<tr><td>{records}</td><td>{good}</td><td>{pending}</td><td>{inp}</td><td>{held}</td><td>{invalid}</td><td>{attempts}</td><td>{rejected}</td><td>{interrupted}</td><td>{cph:.0}</td></tr></table>
"#,
        id = r.batch.id,
        name = esc(&r.batch.name),
        path = esc(&r.batch.path),
        digest = esc(&r.batch.digest),
        loaded = iso_time(r.batch.loaded_at),
        by = esc(&r.batch.loaded_by),
        records = s.records,
        good = s.good,
        pending = s.pending,
        inp = s.in_progress,
        held = s.held,
        invalid = s.invalid,
        attempts = s.attempts,
        rejected = s.rejected,
        interrupted = s.interrupted,
        cph = r.cards_per_hour,
    );
    let _ = write!(
        h,
        "<h2>Throughput over time</h2><p>Good cards per {}-second bin, shown as cards per hour.</p>{}",
        r.bin_seconds,
        throughput_svg(r)
    );
    let _ = write!(h, "<h2>Rejects by reason</h2>{}", rejects_svg(r));
    h.push_str("<h2>Readers</h2><table><tr><th>reader</th><th>good</th><th>rejected</th><th>interrupted</th><th>cards/hour</th><th>mean s/card</th></tr>");
    for rd in &r.readers {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.2}</td></tr>",
            esc(&rd.reader),
            rd.good,
            rd.rejected,
            rd.interrupted,
            rd.cards_per_hour,
            rd.mean_good_seconds
        );
    }
    h.push_str("</table>");
    if !r.set_aside.is_empty() {
        h.push_str("<h2>Records set aside at load</h2><table><tr><th>line</th><th>record</th><th>reason</th></tr>");
        for a in &r.set_aside {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
                a.line,
                esc(a.record_id.as_deref().unwrap_or("?")),
                esc(&a.reason)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::journal::*;
    use crate::register::sqlite::SqliteJournal;

    #[test]
    fn report_counts_and_renders() {
        let d = tempfile::tempdir().expect("tempdir");
        let j = SqliteJournal::open(&d.path().join("j.sqlite")).expect("open");
        let who = Who {
            station: "st".into(),
            operator: "op".into(),
            reader: Some("R \"1\" <a>".into()),
        };
        let recs: Vec<NewRecord> = (1..=3)
            .map(|i| NewRecord {
                record_id: format!("r{i}"),
                line: i,
                request: None,
            })
            .collect();
        let (b, _) = j
            .load_batch(
                "b",
                "/x/b.jsonl",
                "dd",
                &who,
                &recs,
                &[SetAside {
                    record_id: Some("bad".into()),
                    line: 4,
                    reason: "national_id: check digit".into(),
                }],
            )
            .expect("load");
        for (serial, outcome) in [
            ("S1", Outcome::Good),
            ("S2", Outcome::Rejected),
            ("S3", Outcome::Good),
        ] {
            let c = j.claim(b.id, &who, serial).expect("claim").expect("some");
            j.finish(
                c.attempt_id,
                &Finish {
                    outcome: Some(outcome),
                    reason_class: (outcome == Outcome::Rejected)
                        .then(|| "verify: DG1, \"names\"".to_string()),
                    max_rejects: 3,
                    ..Finish::default()
                },
            )
            .expect("finish");
        }
        let r = build(&j, &b).expect("report");
        assert_eq!(
            (r.summary.good, r.summary.rejected, r.summary.invalid),
            (2, 1, 1)
        );
        assert_eq!(
            r.rejects_by_reason,
            vec![("verify: DG1, \"names\"".to_string(), 1)]
        );
        assert_eq!(r.readers.len(), 1);
        assert_eq!(r.throughput.iter().map(|b| b.good).sum::<u64>(), 2);
        let csv = to_csv(&r);
        assert_eq!(csv.lines().count(), 4);
        assert!(csv.contains("\"verify: DG1, \"\"names\"\"\""), "{csv}");
        let html = to_html(&r);
        assert!(html.contains("<svg") && html.contains("rejects by reason"));
        assert!(
            html.contains("R &quot;1&quot; &lt;a&gt;"),
            "reader name escaped"
        );
        assert!(!html.contains("<a>"));
        // The HTML is well-formed XML apart from the doctype.
        let body = html.trim_start_matches("<!DOCTYPE html>");
        roxmltree::Document::parse(body).expect("well-formed");
        let json = serde_json::to_string(&r).expect("json");
        assert!(json.contains("\"cards_per_hour\""));
    }
}
