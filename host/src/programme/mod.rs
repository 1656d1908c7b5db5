//! The programme's view: how long citizens wait for their card, per office,
//! per consulate and for the whole programme, against the public target of
//! a card within a month of the request.
//!
//! The register gives its records grouped by office, request day and the
//! days each step happened ([`Journal::programme_groups`], one `GROUP BY`
//! query on SQLite and PostgreSQL alike); this module turns them into the
//! view's figures ([`compute`]) and renders them as text, JSON, CSV
//! ([`render`]) and a self-contained HTML page ([`html`]). Office names come
//! from the office directory ([`offices`]). See `docs/programme.md` for the
//! exact definitions.
//!
//! Layer: above the register and the record module; the command line is
//! `src/cli/programme.rs` in the `cardsmith` crate.

pub mod html;
pub mod offices;
pub mod render;

use crate::record::{normalize_digits, GregorianDate, JalaliDate};
use crate::register::journal::{ProgrammeGroup, IRAN_OFFSET_MS};
use serde::Serialize;
use std::collections::BTreeMap;

/// A day: days since 1970-01-01 (the register's day numbers).
pub type Day = i64;

/// Today in Iran time (UTC+03:30).
pub fn today() -> Day {
    (crate::register::journal::now_ms() + IRAN_OFFSET_MS).div_euclid(86_400_000)
}

/// Which calendar dates are shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Calendar {
    Jalali,
    Gregorian,
}

/// A day as `2025-09-23`.
pub fn gregorian(day: Day) -> String {
    GregorianDate::from_day_number(day)
        .map(|g| g.to_string())
        .unwrap_or_else(|| format!("day {day}"))
}

/// A day as `1404/07/01`.
pub fn jalali(day: Day) -> String {
    GregorianDate::from_day_number(day)
        .and_then(JalaliDate::from_gregorian)
        .map(|j| j.to_string())
        .unwrap_or_else(|| format!("day {day}"))
}

/// A day in `cal`.
pub fn show_day(day: Day, cal: Calendar) -> String {
    match cal {
        Calendar::Jalali => jalali(day),
        Calendar::Gregorian => gregorian(day),
    }
}

/// Which end of a period a date bounds: a month alone means its first day
/// as a start and its last day as an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Start,
    End,
}

/// A date given on the command line: Jalali `1404/07/01` (or a month,
/// `1404/07`) or Gregorian `2025-09-23` (or `2025-09`); Persian and
/// Arabic-Indic digits are accepted.
pub fn parse_day(s: &str, bound: Bound) -> Result<Day, String> {
    let t = normalize_digits(s.trim());
    let expected = "expected a Jalali date 1404/07/01 (or month 1404/07) or a Gregorian date 2025-09-23 (or month 2025-09)";
    let bad = |why: String| format!("{s:?}: {why}");
    if t.contains('/') {
        let parts: Vec<&str> = t.split('/').collect();
        let j = match parts.len() {
            3 => JalaliDate::parse(&t).map_err(|e| bad(e.to_string()))?,
            2 => {
                let (y, m) = month_parts(&parts, 4).ok_or_else(|| bad(expected.into()))?;
                let last = JalaliDate::days_in_month(y, m)
                    .ok_or_else(|| bad(format!("year {y} is out of range 1..=9999")))?;
                let d = if bound == Bound::Start { 1 } else { last };
                JalaliDate::new(y, m, d).map_err(|e| bad(e.to_string()))?
            }
            _ => return Err(bad(expected.into())),
        };
        return Ok(j.to_gregorian().day_number());
    }
    if t.contains('-') {
        let parts: Vec<&str> = t.split('-').collect();
        let g = match parts.len() {
            3 => GregorianDate::parse(&t).map_err(|_| bad(expected.into()))?,
            2 => {
                let (y, m) = month_parts(&parts, 4).ok_or_else(|| bad(expected.into()))?;
                if bound == Bound::Start {
                    GregorianDate::new(y, m, 1).map_err(|e| bad(e.to_string()))?
                } else {
                    // The day before the first of the next month.
                    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                    let next = GregorianDate::new(ny, nm, 1).map_err(|e| bad(e.to_string()))?;
                    return Ok(next.day_number() - 1);
                }
            }
            _ => return Err(bad(expected.into())),
        };
        return Ok(g.day_number());
    }
    Err(bad(expected.into()))
}

fn month_parts(parts: &[&str], year_len: usize) -> Option<(i32, u8)> {
    let (Some(&y), Some(&m)) = (parts.first(), parts.get(1)) else {
        return None;
    };
    if y.len() != year_len
        || !(1..=2).contains(&m.len())
        || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let m: u8 = m.parse().ok()?;
    (1..=12).contains(&m).then_some(())?;
    Some((y.parse().ok()?, m))
}

/// What the view is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Params {
    /// Requests made on or after this day (none: from the first).
    pub from: Option<Day>,
    /// Requests made on or before this day (none: up to `as_of`).
    pub to: Option<Day>,
    /// The day the view is taken: steps after it have not happened yet.
    pub as_of: Day,
    /// A card shipped to an office and not collected for more than this
    /// many days is counted as uncollected.
    pub uncollected_after: i64,
}

/// The day number a nearest-rank percentile falls on: the smallest value
/// with at least `p` percent of the values at or below it (rank
/// `ceil(p/100 * n)`, 1-based). `None` without values.
pub fn percentile(hist: &BTreeMap<i64, u64>, p: u32) -> Option<i64> {
    let n: u64 = hist.values().sum();
    if n == 0 {
        return None;
    }
    let rank = (u64::from(p) * n).div_ceil(100).max(1);
    let mut seen = 0u64;
    for (v, c) in hist {
        seen += c;
        if seen >= rank {
            return Some(*v);
        }
    }
    hist.keys().next_back().copied()
}

/// The age buckets of a waiting request, in days at `as_of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeBucket {
    /// 0 to 6 days.
    UnderWeek,
    /// 7 to 30 days.
    WeekToMonth,
    /// 31 days and more.
    OverMonth,
}

impl AgeBucket {
    pub fn of(age_days: i64) -> AgeBucket {
        if age_days < 7 {
            AgeBucket::UnderWeek
        } else if age_days <= 30 {
            AgeBucket::WeekToMonth
        } else {
            AgeBucket::OverMonth
        }
    }
}

/// The days from request to delivery within which the programme's target
/// is met.
pub const TARGET_DAYS: i64 = 30;

/// The level of a row of the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Office,
    Kind,
    Programme,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Office => "office",
            Level::Kind => "kind",
            Level::Programme => "programme",
        }
    }
}

/// One row of the view: an office, all offices of a kind, or the whole
/// programme.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub level: Level,
    /// `domestic`, `consulate`, `unknown` (records loaded before the
    /// register kept the request), or `all` for the programme.
    pub kind: String,
    /// The office code; `unknown` for records without one; `all` for the
    /// kind and programme rows.
    pub code: String,
    pub name_fa: Option<String>,
    pub name_en: Option<String>,
    /// Requests in the period made by `as_of`.
    pub requests: u64,
    /// Requests not delivered by `as_of`, by age at `as_of`.
    pub waiting_under_1w: u64,
    pub waiting_1w_to_1m: u64,
    pub waiting_over_1m: u64,
    /// Waiting requests whose request date the register does not know.
    pub waiting_age_unknown: u64,
    /// Requests whose good card was made by `as_of`.
    pub made: u64,
    /// … shipped to an office by `as_of`.
    pub shipped: u64,
    /// … delivered to the holder by `as_of`.
    pub delivered: u64,
    /// Delivered requests with a known request date (the time figures are
    /// over these).
    pub delivered_timed: u64,
    /// Request-to-delivery days, nearest-rank median and 90th percentile.
    pub median_days: Option<i64>,
    pub p90_days: Option<i64>,
    /// Share of `delivered_timed` delivered within [`TARGET_DAYS`] days.
    pub share_within_30d: Option<f64>,
    /// Cards shipped to this office, not delivered by `as_of`, that have
    /// been there more than `uncollected_after` days.
    pub uncollected: u64,
    /// Request-to-delivery days → deliveries (for the histogram).
    #[serde(skip)]
    pub delivery_days: BTreeMap<i64, u64>,
}

impl Row {
    fn new(level: Level, kind: &str, code: &str) -> Row {
        Row {
            level,
            kind: kind.to_string(),
            code: code.to_string(),
            name_fa: None,
            name_en: None,
            requests: 0,
            waiting_under_1w: 0,
            waiting_1w_to_1m: 0,
            waiting_over_1m: 0,
            waiting_age_unknown: 0,
            made: 0,
            shipped: 0,
            delivered: 0,
            delivered_timed: 0,
            median_days: None,
            p90_days: None,
            share_within_30d: None,
            uncollected: 0,
            delivery_days: BTreeMap::new(),
        }
    }

    /// Requests still waiting, whatever their age.
    pub fn waiting(&self) -> u64 {
        self.waiting_under_1w
            + self.waiting_1w_to_1m
            + self.waiting_over_1m
            + self.waiting_age_unknown
    }

    fn add(&mut self, o: &Row) {
        self.requests += o.requests;
        self.waiting_under_1w += o.waiting_under_1w;
        self.waiting_1w_to_1m += o.waiting_1w_to_1m;
        self.waiting_over_1m += o.waiting_over_1m;
        self.waiting_age_unknown += o.waiting_age_unknown;
        self.made += o.made;
        self.shipped += o.shipped;
        self.delivered += o.delivered;
        self.uncollected += o.uncollected;
        for (d, c) in &o.delivery_days {
            *self.delivery_days.entry(*d).or_default() += c;
        }
    }

    fn finish(&mut self) {
        let n: u64 = self.delivery_days.values().sum();
        self.delivered_timed = n;
        self.median_days = percentile(&self.delivery_days, 50);
        self.p90_days = percentile(&self.delivery_days, 90);
        self.share_within_30d = (n > 0).then(|| {
            let within: u64 = self
                .delivery_days
                .range(..=TARGET_DAYS)
                .map(|(_, c)| c)
                .sum();
            within as f64 / n as f64
        });
    }
}

/// The view: office rows (sorted by kind then code), kind rows, and the
/// programme row last.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    pub params: Params,
    pub rows: Vec<Row>,
}

impl View {
    #[allow(clippy::expect_used, reason = "compute always adds the programme row")]
    pub fn programme(&self) -> &Row {
        self.rows
            .iter()
            .find(|r| r.level == Level::Programme)
            .expect("compute always adds the programme row")
    }
    pub fn offices(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.level == Level::Office)
    }
}

/// The kind of an office code the register holds for a shipment: four
/// digits at home, `CC-XXX` abroad.
pub fn kind_of_code(code: &str) -> &'static str {
    if code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()) {
        "domestic"
    } else {
        "consulate"
    }
}

const UNKNOWN: &str = "unknown";

/// Compute the view from the register's groups.
///
/// A request is in the view when its request day is within
/// `from..=to` and not after `as_of`; with a period given, requests of
/// unknown date are left out (there is no telling when they were made);
/// without one they are counted, in the `unknown` age bucket and outside
/// the time figures. A step (made, shipped, delivered) counts when it
/// happened on or before `as_of`. A card counts as uncollected at the office
/// it was shipped to.
pub fn compute(groups: &[ProgrammeGroup], p: &Params, directory: &offices::Directory) -> View {
    let mut by_office: BTreeMap<(String, String), Row> = BTreeMap::new();
    let by_step = |d: Option<i64>| d.is_some_and(|d| d <= p.as_of);
    for g in groups {
        let in_period = match g.request_day {
            Some(d) => d <= p.as_of && p.from.is_none_or(|f| d >= f) && p.to.is_none_or(|t| d <= t),
            None => p.from.is_none() && p.to.is_none(),
        };
        if !in_period {
            continue;
        }
        let (kind, code) = match (&g.office_kind, &g.office_code) {
            (Some(k), Some(c)) => (k.clone(), c.clone()),
            _ => (UNKNOWN.to_string(), UNKNOWN.to_string()),
        };
        let row = by_office
            .entry((kind.clone(), code.clone()))
            .or_insert_with(|| Row::new(Level::Office, &kind, &code));
        let n = g.count;
        row.requests += n;
        let delivered = by_step(g.delivered_day);
        if by_step(g.made_day) {
            row.made += n;
        }
        if by_step(g.shipped_day) {
            row.shipped += n;
        }
        if delivered {
            row.delivered += n;
            if let (Some(r), Some(d)) = (g.request_day, g.delivered_day) {
                *row.delivery_days.entry(d.saturating_sub(r)).or_default() += n;
            }
        } else {
            match g.request_day {
                Some(r) => match AgeBucket::of(p.as_of.saturating_sub(r)) {
                    AgeBucket::UnderWeek => row.waiting_under_1w += n,
                    AgeBucket::WeekToMonth => row.waiting_1w_to_1m += n,
                    AgeBucket::OverMonth => row.waiting_over_1m += n,
                },
                None => row.waiting_age_unknown += n,
            }
            if let (Some(office), Some(s)) = (&g.ship_office, g.shipped_day) {
                if s <= p.as_of && p.as_of.saturating_sub(s) > p.uncollected_after {
                    let k = kind_of_code(office).to_string();
                    by_office
                        .entry((k.clone(), office.clone()))
                        .or_insert_with(|| Row::new(Level::Office, &k, office))
                        .uncollected += n;
                }
            }
        }
    }
    let mut rows: Vec<Row> = by_office.into_values().collect();
    let mut kinds: BTreeMap<String, Row> = BTreeMap::new();
    let mut all = Row::new(Level::Programme, "all", "all");
    for r in &mut rows {
        if let Some(o) = directory.get(&r.code) {
            r.name_fa = Some(o.name_fa.clone());
            r.name_en = Some(o.name_en.clone());
        }
        kinds
            .entry(r.kind.clone())
            .or_insert_with(|| Row::new(Level::Kind, &r.kind, "all"))
            .add(r);
        all.add(r);
        r.finish();
    }
    for (_, mut k) in kinds {
        k.finish();
        rows.push(k);
    }
    all.finish();
    rows.push(all);
    View {
        params: p.clone(),
        rows,
    }
}

/// The delivery-time histogram's bins, in request-to-delivery days
/// (inclusive); the last is open-ended.
pub const HISTOGRAM_BINS: &[(i64, Option<i64>)] = &[
    (0, Some(7)),
    (8, Some(14)),
    (15, Some(21)),
    (22, Some(30)),
    (31, Some(45)),
    (46, Some(60)),
    (61, Some(90)),
    (91, None),
];

/// Deliveries per [`HISTOGRAM_BINS`] bin (a negative time, a delivery
/// dated before its request, falls in the first).
pub fn histogram(days: &BTreeMap<i64, u64>) -> Vec<u64> {
    let mut out = vec![0u64; HISTOGRAM_BINS.len()];
    for (d, c) in days {
        let i = HISTOGRAM_BINS
            .iter()
            .position(|(_, hi)| hi.is_none_or(|hi| *d <= hi))
            .unwrap_or(HISTOGRAM_BINS.len() - 1);
        if let Some(slot) = out.get_mut(i) {
            *slot += c;
        }
    }
    out
}

#[cfg(test)]
mod tests;
