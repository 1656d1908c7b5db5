use super::offices::Directory;
use super::*;

fn hist(v: &[(i64, u64)]) -> BTreeMap<i64, u64> {
    v.iter().copied().collect()
}

#[test]
fn nearest_rank_percentiles() {
    assert_eq!(percentile(&hist(&[]), 50), None);
    assert_eq!(percentile(&hist(&[(12, 1)]), 50), Some(12));
    assert_eq!(percentile(&hist(&[(12, 1)]), 90), Some(12));
    // 1..=10: median is the 5th value, p90 the 9th.
    let ten: Vec<(i64, u64)> = (1..=10).map(|d| (d, 1)).collect();
    assert_eq!(percentile(&hist(&ten), 50), Some(5));
    assert_eq!(percentile(&hist(&ten), 90), Some(9));
    // Two values: the median is the lower (rank ceil(1) = 1).
    assert_eq!(percentile(&hist(&[(3, 1), (40, 1)]), 50), Some(3));
    assert_eq!(percentile(&hist(&[(3, 1), (40, 1)]), 90), Some(40));
    // Counts weigh: 9 at 2 days, 1 at 100 days.
    assert_eq!(percentile(&hist(&[(2, 9), (100, 1)]), 90), Some(2));
    assert_eq!(percentile(&hist(&[(2, 9), (100, 1)]), 100), Some(100));
}

#[test]
fn age_buckets_edges() {
    assert_eq!(AgeBucket::of(0), AgeBucket::UnderWeek);
    assert_eq!(AgeBucket::of(6), AgeBucket::UnderWeek);
    assert_eq!(AgeBucket::of(7), AgeBucket::WeekToMonth);
    assert_eq!(AgeBucket::of(30), AgeBucket::WeekToMonth);
    assert_eq!(AgeBucket::of(31), AgeBucket::OverMonth);
}

#[test]
fn days_in_both_calendars() {
    // 1404/07/01 is 2025-09-23.
    let d = parse_day("1404/07/01", Bound::Start).expect("jalali");
    assert_eq!(d, parse_day("2025-09-23", Bound::Start).expect("gregorian"));
    assert_eq!(gregorian(d), "2025-09-23");
    assert_eq!(jalali(d), "1404/07/01");
    assert_eq!(parse_day("۱۴۰۴/۰۷/۰۱", Bound::Start), Ok(d));
    assert_eq!(gregorian(0), "1970-01-01");
    assert_eq!(
        GregorianDate::parse("2000-03-01").expect("d").day_number(),
        11_017
    );
    // A Jalali month: Mehr has 30 days; Esfand 1403 is a leap month (30).
    assert_eq!(parse_day("1404/07", Bound::Start), Ok(d));
    assert_eq!(parse_day("1404/07", Bound::End), Ok(d + 29));
    assert_eq!(
        jalali(parse_day("1403/12", Bound::End).expect("e")),
        "1403/12/30"
    );
    assert_eq!(
        jalali(parse_day("1404/12", Bound::End).expect("e")),
        "1404/12/29"
    );
    // A Gregorian month, February of a leap year.
    assert_eq!(
        gregorian(parse_day("2024-02", Bound::End).expect("e")),
        "2024-02-29"
    );
    assert_eq!(
        gregorian(parse_day("2024-12", Bound::End).expect("e")),
        "2024-12-31"
    );
    for bad in [
        "",
        "1404",
        "1404/13/01",
        "1404/07/31",
        "2025-02-30",
        "2025/13",
        "25-09-01",
        "tomorrow",
    ] {
        let e = parse_day(bad, Bound::Start).expect_err(bad);
        assert!(e.contains(&format!("{bad:?}")), "{e}");
    }
}

#[test]
fn day_numbers_round_trip() {
    for d in [-800_000, -1, 0, 1, 11_016, 11_017, 20_354, 2_932_896] {
        let g = GregorianDate::from_day_number(d).expect("date");
        assert_eq!(g.day_number(), d, "{g}");
    }
    assert!(GregorianDate::from_day_number(i64::MAX).is_none());
    assert!(GregorianDate::from_day_number(i64::MIN).is_none());
}

fn g(
    code: Option<&str>,
    req: Option<i64>,
    made: Option<i64>,
    shipped: Option<i64>,
    delivered: Option<i64>,
    n: u64,
) -> ProgrammeGroup {
    ProgrammeGroup {
        office_kind: code.map(|c| kind_of_code(c).to_string()),
        office_code: code.map(str::to_string),
        request_day: req,
        made_day: made,
        ship_office: shipped.and(code.map(str::to_string)),
        shipped_day: shipped,
        delivered_day: delivered,
        count: n,
    }
}

#[test]
fn the_view_counts_each_step_as_of_its_day() {
    let groups = vec![
        // Delivered in 10 and 40 days.
        g(Some("1021"), Some(100), Some(105), Some(106), Some(110), 3),
        g(Some("1021"), Some(100), Some(120), Some(125), Some(140), 1),
        // Waiting: made and shipped on day 150, not collected.
        g(Some("1021"), Some(140), Some(150), Some(150), None, 2),
        // Waiting at the line, 3 days old.
        g(Some("AE-DXB"), Some(197), None, None, None, 5),
        // Delivered after the view's day: still waiting at as_of.
        g(
            Some("AE-DXB"),
            Some(180),
            Some(185),
            Some(186),
            Some(260),
            1,
        ),
        // Made after the view's day, and requested after it: not counted.
        g(Some("AE-DXB"), Some(250), None, None, None, 7),
        // An old row without request data.
        g(None, None, Some(90), None, None, 4),
    ];
    let p = Params {
        from: None,
        to: None,
        as_of: 200,
        uncollected_after: 30,
    };
    let v = compute(&groups, &p, &Directory::builtin());
    let office = |c: &str| v.offices().find(|r| r.code == c).expect(c).clone();
    let t = office("1021");
    assert_eq!(
        t.name_en.as_deref(),
        Some("Tehran Central Civil Registry Office")
    );
    assert_eq!((t.requests, t.made, t.shipped, t.delivered), (6, 6, 6, 4));
    assert_eq!((t.waiting_over_1m, t.uncollected), (2, 2));
    assert_eq!((t.median_days, t.p90_days), (Some(10), Some(40)));
    assert_eq!(t.share_within_30d, Some(0.75));
    let d = office("AE-DXB");
    assert_eq!((d.requests, d.made, d.shipped, d.delivered), (6, 1, 1, 0));
    assert_eq!((d.waiting_under_1w, d.waiting_1w_to_1m), (5, 1));
    assert_eq!((d.median_days, d.share_within_30d), (None, None));
    let u = office("unknown");
    assert_eq!(
        (u.kind.as_str(), u.requests, u.made, u.waiting_age_unknown),
        ("unknown", 4, 4, 4)
    );
    let all = v.programme();
    assert_eq!(all.requests, 16);
    assert_eq!(all.waiting(), 12);
    assert_eq!(all.delivered_timed, 4);
    assert_eq!(v.rows.last().map(|r| r.level), Some(Level::Programme));
    let kinds: Vec<&str> = v
        .rows
        .iter()
        .filter(|r| r.level == Level::Kind)
        .map(|r| r.kind.as_str())
        .collect();
    assert_eq!(kinds, ["consulate", "domestic", "unknown"]);

    // A period leaves out requests of unknown date and those outside it.
    let v = compute(
        &groups,
        &Params {
            from: Some(150),
            to: Some(199),
            ..p.clone()
        },
        &Directory::builtin(),
    );
    let all = v.programme();
    assert_eq!((all.requests, all.waiting_age_unknown), (6, 0));
    // Uncollected: more than N days at the office.
    let v = compute(
        &groups,
        &Params {
            uncollected_after: 50,
            ..p.clone()
        },
        &Directory::builtin(),
    );
    assert_eq!(v.programme().uncollected, 0);
    let v = compute(
        &groups,
        &Params {
            uncollected_after: 49,
            ..p
        },
        &Directory::builtin(),
    );
    assert_eq!(v.programme().uncollected, 2);
}

#[test]
fn an_empty_register_has_a_programme_row_of_zeros() {
    let p = Params {
        from: None,
        to: None,
        as_of: 0,
        uncollected_after: 30,
    };
    let v = compute(&[], &p, &Directory::default());
    assert_eq!(v.rows.len(), 1);
    let all = v.programme();
    assert_eq!(
        (all.requests, all.median_days, all.share_within_30d),
        (0, None, None)
    );
    // Every format renders it.
    assert!(render::text(&v, Calendar::Jalali).contains("whole programme"));
    assert!(render::csv(&v).lines().count() == 2);
    assert_eq!(
        render::json(&v, Calendar::Gregorian)["rows"][0]["median_days"],
        serde_json::Value::Null
    );
    assert!(html::page(&v, Calendar::Jalali).contains(r#"<svg id="ranking""#));
}

#[test]
fn histogram_bins_are_inclusive() {
    let h = histogram(&hist(&[
        (-1, 1),
        (0, 1),
        (7, 1),
        (8, 1),
        (30, 2),
        (31, 1),
        (91, 1),
        (400, 1),
    ]));
    assert_eq!(h, vec![3, 1, 0, 2, 1, 0, 0, 2]);
}

#[test]
fn the_shipped_directory_parses_and_has_the_consulates() {
    let d = Directory::builtin();
    assert_eq!(d.get("AE-DXB").map(|o| o.kind.as_str()), Some("consulate"));
    assert_eq!(
        d.get("1021").map(|o| o.name_fa.as_str()),
        Some("اداره ثبت احوال تهران - مرکزی")
    );
    // Every consulate code the sample generator uses is named.
    for c in [
        "AE-DXB", "AE-AUH", "TR-IST", "TR-ANK", "DE-HAM", "DE-FRA", "GB-LON", "FR-PAR", "IQ-NJF",
        "AM-EVN", "OM-MCT", "MY-KUL",
    ] {
        assert!(d.get(c).is_some(), "{c}");
    }
}

#[test]
fn a_bad_directory_names_file_line_and_field() {
    let e = Directory::parse("# c\n1021,domestic,a,b,c\nAE-DXB,office,a,b,c\n", "o.csv")
        .expect_err("kind");
    assert_eq!((e.file.as_str(), e.line), ("o.csv", 3));
    assert!(e.what.contains("kind \"office\""), "{e}");
    let e = Directory::parse("12,domestic,a,b,c\n", "o.csv").expect_err("code");
    assert!(e.to_string().starts_with("o.csv:1: code \"12\""), "{e}");
    let e = Directory::parse("1021,domestic,a,b\n", "o.csv").expect_err("fields");
    assert!(e.what.contains("4 fields; expected 5"), "{e}");
    let e =
        Directory::parse("1021,domestic,a,b,c\n1021,domestic,a,b,c\n", "o.csv").expect_err("twice");
    assert!(e.what.contains("twice") && e.line == 2, "{e}");
    let e = Directory::parse("1021,domestic,\"a\",b,c\n", "o.csv").expect_err("quote");
    assert!(e.what.contains("double quotes"), "{e}");
}

#[test]
fn html_escapes_data_and_shows_persian_digits() {
    let groups = vec![g(
        Some("1021"),
        Some(100),
        Some(101),
        Some(102),
        Some(112),
        2,
    )];
    let dir = Directory::parse(
        "1021,domestic,<b>دفتر</b> & \"x,Evil <script>alert(1)</script>,R\n",
        "o",
    )
    .err()
    .map(|_| {
        Directory::parse(
            "1021,domestic,<b>دفتر</b> & x,Evil <script>alert(1)</script>,R\n",
            "o",
        )
        .expect("dir")
    })
    .expect("quotes refused");
    let p = Params {
        from: None,
        to: None,
        as_of: 120,
        uncollected_after: 30,
    };
    let page = html::page(&compute(&groups, &p, &dir), Calendar::Jalali);
    assert!(!page.contains("<script"), "unescaped data");
    assert!(!page.contains("<b>دفتر"), "unescaped data");
    assert!(page.contains("&lt;b&gt;دفتر&lt;/b&gt; &amp; x"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Median 12 days, in Persian digits, with its ASCII value beside.
    assert!(page.contains(r#"data-value="12">۱۲</td>"#), "{page}");
    assert_eq!(html::fa_digits("12.5%"), "۱۲٫۵٪");
    // CSV quotes what needs it.
    let csv = render::csv(&compute(
        &groups,
        &p,
        &Directory::parse("1021,domestic,a,b;c,R\n", "o").expect("d"),
    ));
    assert!(
        csv.lines()
            .nth(1)
            .expect("row")
            .starts_with("office,domestic,1021,b;c,a,2,"),
        "{csv}"
    );
}

#[test]
fn absurd_days_from_an_edited_register_do_not_panic() {
    // Rows edited behind cardsmith's back can hold any day number.
    let groups = vec![
        g(
            Some("1021"),
            Some(i64::MIN),
            Some(i64::MIN),
            Some(i64::MIN),
            Some(i64::MAX),
            1,
        ),
        g(
            Some("1021"),
            Some(i64::MIN),
            Some(0),
            Some(i64::MIN),
            None,
            1,
        ),
        g(Some("1021"), Some(i64::MAX), None, None, None, 1),
    ];
    for as_of in [i64::MIN, 0, i64::MAX] {
        let p = Params {
            from: None,
            to: None,
            as_of,
            uncollected_after: 30,
        };
        let v = compute(&groups, &p, &Directory::builtin());
        let _ = render::text(&v, Calendar::Jalali);
        let _ = html::page(&v, Calendar::Gregorian);
    }
}
