//! The view as one self-contained HTML page: inline CSS and inline SVG
//! charts, nothing fetched, no script. The page is Persian first
//! (`lang="fa" dir="rtl"`, Persian digits) with English beside every
//! heading and name (`lang="en" dir="ltr"`). Every string from the register
//! or the office directory is escaped.
//!
//! Hooks for checks (and for styling): `svg#delivery-histogram rect.bar`
//! (one per histogram bin, `data-count`), `svg#backlog g.office-bar` (one
//! per office with requests waiting, `data-code`, holding one
//! `rect.segment` per non-empty age bucket, `data-bucket`, `data-count`),
//! `svg#ranking rect.bar` (one per office with a timed delivery, best share
//! first, `data-code`, `data-share`), `table#offices td.name-fa` (the
//! Persian names), numbers with `data-value` in ASCII.

use super::{gregorian, histogram, jalali, Calendar, Level, Row, View, HISTOGRAM_BINS};
use std::fmt::Write as _;

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// ASCII digits as Persian digits (with the Persian decimal separator and
/// percent sign), for numbers shown in Persian.
pub fn fa_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(0x06F0 + (c as u32 - '0' as u32)).unwrap_or(c),
            '.' => '\u{066B}',
            '%' => '\u{066A}',
            _ => c,
        })
        .collect()
}

fn fa_num(n: u64) -> String {
    fa_digits(&n.to_string())
}

fn fa_share(s: Option<f64>) -> String {
    s.map(|s| fa_digits(&format!("{:.1}%", s * 100.0)))
        .unwrap_or_else(|| "–".into())
}

fn fa_days(d: Option<i64>) -> String {
    d.map(|d| fa_digits(&d.to_string()))
        .unwrap_or_else(|| "–".into())
}

/// The Persian and English names of a row.
fn names(r: &Row) -> (String, String) {
    match r.level {
        Level::Programme => ("کل برنامه".into(), "Whole programme".into()),
        Level::Kind => match r.kind.as_str() {
            "domestic" => ("همه دفاتر داخل کشور".into(), "All offices at home".into()),
            "consulate" => ("همه کنسولگری‌ها".into(), "All consulates".into()),
            _ => ("دفتر نامعلوم".into(), "Office unknown".into()),
        },
        Level::Office => (
            r.name_fa.clone().unwrap_or_else(|| {
                if r.code == "unknown" {
                    "نامعلوم".into()
                } else {
                    r.code.clone()
                }
            }),
            r.name_en.clone().unwrap_or_else(|| r.code.clone()),
        ),
    }
}

const STYLE: &str = r#"
body { font-family: "Noto Naskh Arabic", "Noto Sans Arabic", "Vazirmatn", "DejaVu Sans", sans-serif; margin: 1.5em; color: #1d2430; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .2em; }
h2 { font-size: 1.15em; margin: 1.4em 0 .4em; }
.en { direction: ltr; unicode-bidi: isolate; font-family: "Noto Sans", "DejaVu Sans", sans-serif; color: #4a5568; font-size: .85em; font-weight: normal; }
h1 .en, h2 .en { display: block; }
.meta { color: #4a5568; }
.figures { display: flex; flex-wrap: wrap; gap: .8em; margin: 1em 0; padding: 0; list-style: none; }
.figures li { border: 1px solid #cbd5e0; border-radius: 6px; padding: .5em .9em; min-width: 9em; }
.figures b { display: block; font-size: 1.4em; }
svg { display: block; margin: .3em 0; direction: ltr; }
svg text { font-size: 12px; fill: #1d2430; }
table { border-collapse: collapse; margin-top: .6em; }
th, td { border-bottom: 1px solid #e2e8f0; padding: .3em .5em; vertical-align: top; }
th { font-size: .85em; }
th { background: #f7fafc; font-weight: 600; }
td.name-fa { text-align: right; direction: rtl; min-width: 16em; }
td.name-en { min-width: 10em; }
.scroll { overflow-x: auto; max-width: 100%; }
td.name-en, td.code { direction: ltr; text-align: left; unicode-bidi: isolate; }
td.num { text-align: left; direction: ltr; unicode-bidi: isolate; font-variant-numeric: tabular-nums; }
tr.kind td, tr.programme td { font-weight: 600; background: #f7fafc; }
.legend span { display: inline-block; margin-inline-end: 1.2em; }
.swatch { display: inline-block; width: .9em; height: .9em; vertical-align: middle; margin-inline-end: .3em; }
"#;

const BUCKETS: &[(&str, &str, &str, &str)] = &[
    ("under_1w", "کمتر از یک هفته", "under 1 week", "#38a169"),
    (
        "1w_to_1m",
        "یک هفته تا یک ماه",
        "1 week to 1 month",
        "#d69e2e",
    ),
    ("over_1m", "بیش از یک ماه", "over 1 month", "#e53e3e"),
    ("age_unknown", "تاریخ نامعلوم", "date unknown", "#a0aec0"),
];

fn bucket_counts(r: &Row) -> [u64; 4] {
    [
        r.waiting_under_1w,
        r.waiting_1w_to_1m,
        r.waiting_over_1m,
        r.waiting_age_unknown,
    ]
}

fn histogram_svg(v: &View) -> String {
    let counts = histogram(&v.programme().delivery_days);
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let (w, h, left, bottom, top) = (640.0, 240.0, 40.0, 36.0, 16.0);
    let slot = (w - left - 10.0) / counts.len() as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="delivery-histogram" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="Delivery time distribution">"#
    );
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{y}" x2="{x2}" y2="{y}" stroke="#718096"/>"##,
        y = h - bottom,
        x2 = w - 10.0
    );
    for (i, ((lo, hi), n)) in HISTOGRAM_BINS.iter().zip(counts.iter()).enumerate() {
        let bh = (*n as f64 / max as f64) * (h - bottom - top);
        let x = left + i as f64 * slot + slot * 0.1;
        let y = h - bottom - bh;
        let range = match hi {
            Some(hi) => format!("{lo}–{hi}"),
            None => format!("{lo}+"),
        };
        let over = hi.is_none_or(|hi| hi > super::TARGET_DAYS);
        let _ = write!(
            s,
            r#"<rect class="bar" data-bin="{range}" data-count="{n}" x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{bh:.1}" fill="{fill}"><title>{range} days: {n}</title></rect>"#,
            bw = slot * 0.8,
            fill = if over { "#e53e3e" } else { "#3182ce" },
        );
        let _ = write!(
            s,
            r#"<text x="{cx:.1}" y="{ty:.1}" text-anchor="middle">{label}</text><text x="{cx:.1}" y="{ny:.1}" text-anchor="middle">{count}</text>"#,
            cx = x + slot * 0.4,
            ty = h - bottom + 16.0,
            label = fa_digits(&range),
            ny = (y - 4.0).max(12.0),
            count = fa_num(*n),
        );
    }
    let _ = write!(
        s,
        r#"<text x="{x}" y="{y}" text-anchor="end">روز / days</text></svg>"#,
        x = w - 10.0,
        y = h - 4.0
    );
    s
}

fn backlog_svg(v: &View) -> String {
    let offices: Vec<&Row> = v.offices().filter(|r| r.waiting() > 0).collect();
    let max = offices
        .iter()
        .map(|r| r.waiting())
        .max()
        .unwrap_or(0)
        .max(1);
    let (w, row_h, label_w) = (640.0, 24.0, 90.0);
    let h = (offices.len() as f64 * row_h + 10.0).max(30.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="backlog" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="Backlog by age per office">"#
    );
    for (i, r) in offices.iter().enumerate() {
        let y = 5.0 + i as f64 * row_h;
        let _ = write!(
            s,
            r#"<g class="office-bar" data-code="{code}" data-waiting="{n}"><text x="{tx}" y="{ty:.1}" text-anchor="end">{code}</text>"#,
            code = esc(&r.code),
            n = r.waiting(),
            tx = label_w - 6.0,
            ty = y + row_h * 0.65,
        );
        let mut x = label_w;
        for ((key, _, en, color), n) in BUCKETS.iter().zip(bucket_counts(r)) {
            if n == 0 {
                continue;
            }
            let bw = n as f64 / max as f64 * (w - label_w - 50.0);
            let _ = write!(
                s,
                r#"<rect class="segment" data-bucket="{key}" data-count="{n}" x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{bh:.1}" fill="{color}"><title>{code}: {n} {en}</title></rect>"#,
                bh = row_h * 0.75,
                code = esc(&r.code),
            );
            x += bw;
        }
        let _ = write!(
            s,
            r#"<text x="{x:.1}" y="{ty:.1}">{n}</text></g>"#,
            x = x + 4.0,
            ty = y + row_h * 0.65,
            n = fa_num(r.waiting()),
        );
    }
    s.push_str("</svg>");
    s
}

/// Offices with a timed delivery, best share within the target first
/// (ties: more deliveries first, then code).
pub fn ranking(v: &View) -> Vec<&Row> {
    let mut offices: Vec<&Row> = v
        .offices()
        .filter(|r| r.share_within_30d.is_some())
        .collect();
    offices.sort_by(|a, b| {
        b.share_within_30d
            .partial_cmp(&a.share_within_30d)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.delivered_timed.cmp(&a.delivered_timed))
            .then(a.code.cmp(&b.code))
    });
    offices
}

fn ranking_svg(v: &View) -> String {
    let offices = ranking(v);
    let (w, row_h, label_w) = (640.0, 24.0, 90.0);
    let h = (offices.len() as f64 * row_h + 10.0).max(30.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="ranking" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="Offices ranked by share delivered within 30 days">"#
    );
    for (i, r) in offices.iter().enumerate() {
        let y = 5.0 + i as f64 * row_h;
        let share = r.share_within_30d.unwrap_or(0.0);
        let bw = share * (w - label_w - 70.0);
        let _ = write!(
            s,
            r##"<text x="{tx}" y="{ty:.1}" text-anchor="end">{code}</text><rect class="bar" data-code="{code}" data-share="{share:.4}" x="{label_w}" y="{y:.1}" width="{bw:.1}" height="{bh:.1}" fill="#3182ce"><title>{code}: {pct:.1}%</title></rect><text x="{px:.1}" y="{ty:.1}">{fa}</text>"##,
            code = esc(&r.code),
            tx = label_w - 6.0,
            ty = y + row_h * 0.65,
            bh = row_h * 0.75,
            pct = share * 100.0,
            px = label_w + bw + 4.0,
            fa = fa_share(Some(share)),
        );
    }
    s.push_str("</svg>");
    s
}

fn num_cell(n: u64) -> String {
    format!(r#"<td class="num" data-value="{n}">{}</td>"#, fa_num(n))
}

fn table(v: &View) -> String {
    let mut s = String::from(
        r#"<table id="offices"><thead><tr>
<th>دفتر <span class="en">Office</span></th><th><span class="en">Office (English)</span></th><th>کد <span class="en">Code</span></th>
<th>درخواست‌ها <span class="en">Requests</span></th>
<th>در انتظار &lt; ۱ هفته <span class="en">Waiting &lt;1 week</span></th>
<th>۱ هفته تا ۱ ماه <span class="en">1 week–1 month</span></th>
<th>&gt; ۱ ماه <span class="en">&gt;1 month</span></th>
<th>تاریخ نامعلوم <span class="en">Date unknown</span></th>
<th>ساخته شده <span class="en">Made</span></th>
<th>ارسال شده <span class="en">Shipped</span></th>
<th>تحویل شده <span class="en">Delivered</span></th>
<th>میانه (روز) <span class="en">Median days</span></th>
<th>صدک ۹۰ <span class="en">p90 days</span></th>
<th>تا ۳۰ روز <span class="en">Within 30 days</span></th>
<th>تحویل‌نگرفته <span class="en">Uncollected</span></th>
</tr></thead><tbody>
"#,
    );
    for r in &v.rows {
        let (fa, en) = names(r);
        let code = if r.level == Level::Office {
            r.code.as_str()
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<tr class="{level}" data-level="{level}" data-kind="{kind}" data-code="{codeattr}"><td class="name-fa" lang="fa" dir="rtl">{fa}</td><td class="name-en" lang="en" dir="ltr">{en}</td><td class="code" dir="ltr">{code}</td>{req}{a}{b}{c}{d}{made}{shipped}{delivered}<td class="num" data-value="{med}">{fmed}</td><td class="num" data-value="{p90}">{fp90}</td><td class="num" data-value="{sh}">{fsh}</td>{unc}</tr>"#,
            level = r.level.as_str(),
            kind = esc(&r.kind),
            codeattr = esc(&r.code),
            fa = esc(&fa),
            en = esc(&en),
            code = esc(code),
            req = num_cell(r.requests),
            a = num_cell(r.waiting_under_1w),
            b = num_cell(r.waiting_1w_to_1m),
            c = num_cell(r.waiting_over_1m),
            d = num_cell(r.waiting_age_unknown),
            made = num_cell(r.made),
            shipped = num_cell(r.shipped),
            delivered = num_cell(r.delivered),
            med = r.median_days.map(|d| d.to_string()).unwrap_or_default(),
            fmed = fa_days(r.median_days),
            p90 = r.p90_days.map(|d| d.to_string()).unwrap_or_default(),
            fp90 = fa_days(r.p90_days),
            sh = r
                .share_within_30d
                .map(|s| format!("{s:.4}"))
                .unwrap_or_default(),
            fsh = fa_share(r.share_within_30d),
            unc = num_cell(r.uncollected),
        );
    }
    s.push_str("</tbody></table>\n");
    s
}

/// The whole page.
pub fn page(v: &View, cal: Calendar) -> String {
    let p = &v.params;
    let all = v.programme();
    let shown = |d: i64| match cal {
        Calendar::Jalali => (fa_digits(&jalali(d)), gregorian(d)),
        Calendar::Gregorian => (fa_digits(&gregorian(d)), jalali(d)),
    };
    let (as_fa, as_other) = shown(p.as_of);
    let period = match (p.from, p.to) {
        (None, None) => ("همه درخواست‌ها".to_string(), "all requests".to_string()),
        (f, t) => {
            let fa = |d: Option<i64>| d.map(|d| shown(d).0).unwrap_or_else(|| "…".into());
            let en = |d: Option<i64>| {
                d.map(|d| match cal {
                    Calendar::Jalali => jalali(d),
                    Calendar::Gregorian => gregorian(d),
                })
                .unwrap_or_else(|| "…".into())
            };
            (
                format!("درخواست‌های {} تا {}", fa(f), fa(t)),
                format!("requests made {} to {}", en(f), en(t)),
            )
        }
    };
    let legend: String = BUCKETS
        .iter()
        .map(|(_, fa, en, color)| {
            format!(
                r#"<span><i class="swatch" style="background:{color}"></i>{fa} <span class="en">{en}</span></span>"#
            )
        })
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="fa" dir="rtl">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>وضعیت برنامه کارت ملی هوشمند — Programme status</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>وضعیت برنامه کارت ملی هوشمند <span class="en" lang="en">Smart national card: programme status</span></h1>
<p class="meta">تا تاریخ {as_fa} ({as_other_fa}) — {period_fa}؛ هدف: تحویل کارت کمتر از {target_fa} روز پس از درخواست
<span class="en" lang="en">As of {as_en}; {period_en}; target: the card within {target} days of the request; uncollected after {unc} days.</span></p>
</header>
<ul class="figures" id="figures">
<li>درخواست‌ها <span class="en">Requests</span><b data-value="{req}">{req_fa}</b></li>
<li>در انتظار <span class="en">Waiting</span><b data-value="{wait}">{wait_fa}</b></li>
<li>تحویل شده <span class="en">Delivered</span><b data-value="{deliv}">{deliv_fa}</b></li>
<li>میانه روزها <span class="en">Median days</span><b>{med_fa}</b></li>
<li>صدک ۹۰ روزها <span class="en">p90 days</span><b>{p90_fa}</b></li>
<li>تا ۳۰ روز <span class="en">Within 30 days</span><b>{share_fa}</b></li>
<li>تحویل‌نگرفته <span class="en">Uncollected</span><b data-value="{unc_n}">{unc_fa}</b></li>
</ul>
<section id="chart-histogram">
<h2>توزیع زمان تحویل <span class="en" lang="en">Delivery time distribution (days from request to delivery)</span></h2>
{hist}
</section>
<section id="chart-backlog">
<h2>درخواست‌های در انتظار بر حسب سن <span class="en" lang="en">Backlog by age, per office</span></h2>
<p class="legend">{legend}</p>
{backlog}
</section>
<section id="chart-ranking">
<h2>رتبه دفاتر بر حسب سهم تحویل تا ۳۰ روز <span class="en" lang="en">Offices ranked by share delivered within 30 days</span></h2>
{ranking}
</section>
<section id="table">
<h2>جدول دفاتر <span class="en" lang="en">Offices</span></h2>
<div class="scroll">{table}</div>
</section>
</body>
</html>
"#,
        as_other_fa = fa_digits(&as_other),
        period_fa = esc(&period.0),
        period_en = esc(&period.1),
        as_en = match cal {
            Calendar::Jalali => format!("{} ({})", jalali(p.as_of), gregorian(p.as_of)),
            Calendar::Gregorian => format!("{} ({})", gregorian(p.as_of), jalali(p.as_of)),
        },
        target = super::TARGET_DAYS,
        target_fa = fa_digits(&super::TARGET_DAYS.to_string()),
        unc = p.uncollected_after,
        req = all.requests,
        req_fa = fa_num(all.requests),
        wait = all.waiting(),
        wait_fa = fa_num(all.waiting()),
        deliv = all.delivered,
        deliv_fa = fa_num(all.delivered),
        med_fa = fa_days(all.median_days),
        p90_fa = fa_days(all.p90_days),
        share_fa = fa_share(all.share_within_30d),
        unc_n = all.uncollected,
        unc_fa = fa_num(all.uncollected),
        hist = histogram_svg(v),
        backlog = backlog_svg(v),
        ranking = ranking_svg(v),
        table = table(v),
    )
}
