//! The view as text (a table for a terminal), JSON and CSV. Fields are
//! the same in all three and documented in `docs/programme.md`.

use super::{gregorian, jalali, show_day, Calendar, Row, View, HISTOGRAM_BINS};
use serde_json::{json, Value};

/// The CSV columns, in order (also the JSON rows' fields).
pub const CSV_COLUMNS: &[&str] = &[
    "level",
    "kind",
    "code",
    "name_en",
    "name_fa",
    "requests",
    "waiting_under_1w",
    "waiting_1w_to_1m",
    "waiting_over_1m",
    "waiting_age_unknown",
    "made",
    "shipped",
    "delivered",
    "delivered_timed",
    "median_days",
    "p90_days",
    "share_within_30d",
    "uncollected",
];

fn share(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.4}")).unwrap_or_default()
}

fn opt(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn row_json(r: &Row) -> Value {
    json!({
        "level": r.level.as_str(),
        "kind": r.kind,
        "code": r.code,
        "name_en": r.name_en,
        "name_fa": r.name_fa,
        "requests": r.requests,
        "waiting_under_1w": r.waiting_under_1w,
        "waiting_1w_to_1m": r.waiting_1w_to_1m,
        "waiting_over_1m": r.waiting_over_1m,
        "waiting_age_unknown": r.waiting_age_unknown,
        "made": r.made,
        "shipped": r.shipped,
        "delivered": r.delivered,
        "delivered_timed": r.delivered_timed,
        "median_days": r.median_days,
        "p90_days": r.p90_days,
        "share_within_30d": r.share_within_30d.map(|s| (s * 10_000.0).round() / 10_000.0),
        "uncollected": r.uncollected,
    })
}

/// The period and the day of the view, in both calendars.
fn header_json(v: &View, cal: Calendar) -> Value {
    let day = |d: Option<i64>| d.map(|d| json!({"gregorian": gregorian(d), "jalali": jalali(d)}));
    json!({
        "as_of": day(Some(v.params.as_of)),
        "from": day(v.params.from),
        "to": day(v.params.to),
        "calendar": cal,
        "uncollected_after_days": v.params.uncollected_after,
        "target_days": super::TARGET_DAYS,
    })
}

pub fn json(v: &View, cal: Calendar) -> Value {
    let hist = super::histogram(&v.programme().delivery_days);
    let mut head = header_json(v, cal);
    if let Some(o) = head.as_object_mut() {
        o.insert(
            "rows".into(),
            Value::Array(v.rows.iter().map(row_json).collect()),
        );
        o.insert(
            "delivery_days_histogram".into(),
            Value::Array(
                HISTOGRAM_BINS
                    .iter()
                    .zip(hist)
                    .map(|((lo, hi), n)| json!({"from_days": lo, "to_days": hi, "deliveries": n}))
                    .collect(),
            ),
        );
    }
    head
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn csv(v: &View) -> String {
    let mut out = CSV_COLUMNS.join(",") + "\n";
    for r in &v.rows {
        let fields = [
            r.level.as_str().to_string(),
            r.kind.clone(),
            r.code.clone(),
            r.name_en.clone().unwrap_or_default(),
            r.name_fa.clone().unwrap_or_default(),
            r.requests.to_string(),
            r.waiting_under_1w.to_string(),
            r.waiting_1w_to_1m.to_string(),
            r.waiting_over_1m.to_string(),
            r.waiting_age_unknown.to_string(),
            r.made.to_string(),
            r.shipped.to_string(),
            r.delivered.to_string(),
            r.delivered_timed.to_string(),
            opt(r.median_days),
            opt(r.p90_days),
            share(r.share_within_30d),
            r.uncollected.to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// A name for a terminal: the English name (Persian text in a terminal is
/// laid out by the terminal, often wrongly; the HTML page shows it).
fn label(r: &Row) -> String {
    match r.level {
        super::Level::Programme => "whole programme".into(),
        super::Level::Kind if r.kind == "unknown" => "office unknown (older records)".into(),
        super::Level::Kind => format!("all {} offices", r.kind),
        super::Level::Office => r.name_en.clone().unwrap_or_else(|| "-".into()),
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

pub fn text(v: &View, cal: Calendar) -> String {
    let p = &v.params;
    let mut out = String::new();
    let period = match (p.from, p.to) {
        (None, None) => "all requests".to_string(),
        (f, t) => format!(
            "requests made {} … {}",
            f.map(|d| show_day(d, cal))
                .unwrap_or_else(|| "first".into()),
            t.map(|d| show_day(d, cal))
                .unwrap_or_else(|| "as of".into())
        ),
    };
    out.push_str(&format!(
        "Programme status as of {} ({}), {period}; uncollected after {} days; target {} days\n\n",
        show_day(p.as_of, cal),
        match cal {
            Calendar::Jalali => gregorian(p.as_of),
            Calendar::Gregorian => jalali(p.as_of),
        },
        p.uncollected_after,
        super::TARGET_DAYS
    ));
    out.push_str(&format!(
        "{:<9} {:<7} {:<40} {:>7} | {:>5} {:>6} {:>5} {:>4} | {:>6} {:>7} {:>7} | {:>6} {:>4} {:>6} | {:>6}\n",
        "level", "code", "name", "reqs", "<1w", "1w-1m", ">1m", "?", "made", "shipped", "deliv.",
        "median", "p90", "<=30d", "uncoll"
    ));
    let mut previous = super::Level::Office;
    for r in &v.rows {
        if r.level != previous {
            out.push('\n');
            previous = r.level;
        }
        out.push_str(&format!(
            "{:<9} {:<7} {:<40} {:>7} | {:>5} {:>6} {:>5} {:>4} | {:>6} {:>7} {:>7} | {:>6} {:>4} {:>6} | {:>6}\n",
            r.level.as_str(),
            clip(&r.code, 7),
            clip(&label(r), 40),
            r.requests,
            r.waiting_under_1w,
            r.waiting_1w_to_1m,
            r.waiting_over_1m,
            r.waiting_age_unknown,
            r.made,
            r.shipped,
            r.delivered,
            r.median_days.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
            r.p90_days.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
            r.share_within_30d
                .map(|s| format!("{:.1}%", s * 100.0))
                .unwrap_or_else(|| "-".into()),
            r.uncollected,
        ));
    }
    out
}
