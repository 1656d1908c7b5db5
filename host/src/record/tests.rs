use std::io::Write;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::normalize::ZWNJ;
use super::samples::{portrait_jpeg, FAMILY_NAMES, FEMALE_NAMES, MALE_NAMES, PLACES};
use super::*;

/// Accepts templates that start with `FMR\0`; byte 7 is the minutiae count.
struct TestValidator;

impl TemplateValidator for TestValidator {
    fn validate(&self, _position: FingerPosition, bytes: &[u8]) -> Result<TemplateSummary, String> {
        if bytes.len() >= 8 && bytes.starts_with(b"FMR\0") {
            Ok(TemplateSummary {
                minutiae: usize::from(bytes[7]),
                warnings: Vec::new(),
            })
        } else {
            Err("no ISO 19794-2 record header".into())
        }
    }
}

fn template(seed: u64, position: FingerPosition) -> Vec<u8> {
    let mut t = b"FMR\0 20\0".to_vec();
    t[7] = 20 + (seed % 30) as u8;
    t.extend_from_slice(&seed.to_be_bytes());
    t.push(position.iso_code());
    t
}

/// `kind`: 0 = repeating pattern, 1 = noise, 2 = flat grey.
fn jpeg(w: u16, h: u16, quality: u8, progressive: bool, kind: u8) -> Vec<u8> {
    let mut px = Vec::with_capacity(usize::from(w) * usize::from(h) * 3);
    let mut x: u32 = 12345;
    for i in 0..usize::from(w) * usize::from(h) * 3 {
        match kind {
            1 => {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                px.push((x >> 16) as u8);
            }
            2 => px.push(128),
            _ => px.push((i % 251) as u8),
        }
    }
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality);
    enc.set_progressive(progressive);
    enc.encode(&px, w, h, jpeg_encoder::ColorType::Rgb).unwrap();
    out
}

fn good() -> Value {
    json!({
        "record_id": "R-000001",
        "national_id": "0499370899",
        "given_name":  {"fa": "محمد", "latin": "Mohammad"},
        "family_name": {"fa": "رضایی", "latin": "Rezaei"},
        "father_name": {"fa": "علی", "latin": "Ali"},
        "sex": "M",
        "birth_date": "1380/07/15",
        "birth_certificate_number": "1234",
        "birth_place": {"fa": "تهران", "latin": "Tehran"},
        "issuing_office": {"kind": "domestic", "code": "1021"},
        "request": {"type": "first_issue"},
        "request_date": "1404/08/30",
        "photo": {"format": "jpeg", "data": STANDARD.encode(portrait_jpeg(7, false))},
        "fingerprints": [{"position": "right_index", "format": "iso19794-2:2005",
                          "data": STANDARD.encode(template(7, FingerPosition::RightIndex))}]
    })
}

fn parse(v: &Value) -> Result<Record, Vec<RecordError>> {
    parse_record(&v.to_string(), "test.jsonl:1", &TestValidator)
}

/// Sets `path` (dot-separated; numbers index arrays) to `new`, or removes
/// the field when `new` is `None`.
fn with(path: &str, new: Option<Value>) -> Value {
    let mut v = good();
    let mut cur = &mut v;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        cur = match p.parse::<usize>() {
            Ok(i) => &mut cur[i],
            Err(_) => &mut cur[*p],
        };
    }
    let last = parts[parts.len() - 1];
    let obj = cur.as_object_mut().unwrap();
    match new {
        Some(n) => {
            obj.insert(last.to_string(), n);
        }
        None => {
            obj.remove(last);
        }
    }
    v
}

/// Asserts the record is refused with an error on `field` whose rule
/// contains `rule`.
#[track_caller]
fn refused(v: &Value, field: &str, rule: &str) -> Vec<RecordError> {
    let errs = parse(v).expect_err("record should be refused");
    assert!(
        errs.iter()
            .any(|e| e.field == field && e.rule.contains(rule)),
        "expected {field}: …{rule}…, got {errs:#?}"
    );
    errs
}

#[track_caller]
fn accepted(v: &Value) -> Record {
    match parse(v) {
        Ok(r) => r,
        Err(e) => panic!("record should be accepted: {e:#?}"),
    }
}

// --- the good record -------------------------------------------------------

#[test]
fn good_record_is_accepted() {
    let r = accepted(&good());
    assert_eq!(r.record_id(), "R-000001");
    assert_eq!(r.national_id(), "0499370899");
    assert_eq!(r.sex(), Sex::Male);
    assert_eq!(r.birth_date().to_string(), "1380/07/15");
    assert_eq!(r.birth_date_gregorian().to_string(), "2001-10-07");
    assert_eq!(r.request_date_gregorian().to_string(), "2025-11-21");
    assert_eq!(r.age_on_request(), 24);
    assert_eq!(r.issuing_office().code(), "1021");
    assert_eq!(r.request(), &Request::FirstIssue);
    assert_eq!(r.photo().info().width, 120);
    assert_eq!(r.photo().info().height, 160);
    assert_eq!(r.fingerprints().len(), 1);
    assert_eq!(r.fingerprints()[0].position(), FingerPosition::RightIndex);
    assert_eq!(r.fingerprints()[0].summary().minutiae, 27);
}

#[test]
fn canonical_json_round_trips() {
    let mut v = with("given_name.fa", Some(json!("  علي ")));
    v["request"] = json!({"type": "replacement", "reason": "damage", "previous_card_serial": "00ab00cd00ef0012"});
    v["issuing_office"] = json!({"kind": "consulate", "code": "AE-DXB"});
    let r = accepted(&v);
    let line = to_json_line(&r);
    assert!(!line.contains('\n'));
    assert!(line.contains("\"given_name\":{\"fa\":\"علی\""));
    assert!(line.contains("00AB00CD00EF0012"));
    let again = parse_record(&line, "x", &TestValidator).unwrap();
    assert_eq!(again, r);
    assert_eq!(to_json_line(&again), line);
    // Field order is the documented one.
    assert!(line.starts_with("{\"record_id\":\"R-000001\",\"national_id\":"));
}

#[test]
fn debug_and_errors_never_show_binary_data() {
    let v = good();
    let photo_b64 = v["photo"]["data"].as_str().unwrap().to_string();
    let r = accepted(&v);
    let dbg = format!("{r:?}");
    assert!(!dbg.contains(&photo_b64[..40]));
    assert!(dbg.contains("bytes"));
    // An error in the photo does not echo it either.
    let bad = with("photo.data", Some(json!(format!("{}!!", &photo_b64))));
    let errs = refused(&bad, "photo.data", "base64");
    for e in errs {
        assert!(!e.to_string().contains(&photo_b64[..20]));
        assert!(!format!("{e:?}").contains(&photo_b64[..20]));
    }
}

// --- record_id ---------------------------------------------------------------

#[test]
fn record_id_charset() {
    refused(
        &with("record_id", Some(json!("R 1"))),
        "record_id",
        "1..=64 characters",
    );
    refused(
        &with("record_id", Some(json!(""))),
        "record_id",
        "1..=64 characters",
    );
    refused(
        &with("record_id", Some(json!("x".repeat(65)))),
        "record_id",
        "1..=64",
    );
    refused(
        &with("record_id", Some(json!(12))),
        "record_id",
        "must be a string, found a number",
    );
    accepted(&with("record_id", Some(json!("a.B_c-9"))));
}

// --- national ID -------------------------------------------------------------

#[test]
fn national_id_check_digit_rule() {
    refused(
        &with("national_id", Some(json!("0499370898"))),
        "national_id",
        "check digit is 8 but",
    );
    // r < 2 case: 000000001 → s = 2 → r = 2 → 9; 100000000 → s = 10 → r = 10 → 1.
    assert_eq!(national_id_check_digit(&[1, 0, 0, 0, 0, 0, 0, 0, 0]), 1);
    assert_eq!(national_id_check_digit(&[0, 0, 0, 0, 0, 0, 0, 0, 1]), 9);
    // s = 11 → r = 0 → 0 (two ones at weights 9 and 2).
    assert_eq!(national_id_check_digit(&[0, 1, 0, 0, 0, 0, 0, 0, 1]), 0);
    accepted(&with("national_id", Some(json!("0100000010"))));
}

#[test]
fn national_id_all_same_digits_refused() {
    for d in 0..10 {
        let id = d.to_string().repeat(10);
        // They all pass the arithmetic...
        let digits: Vec<u8> = vec![d; 9];
        assert_eq!(national_id_check_digit(&digits.try_into().unwrap()), d);
        // ...and are refused anyway.
        refused(
            &with("national_id", Some(json!(id))),
            "national_id",
            "all ten digits are the same",
        );
    }
}

#[test]
fn national_id_length_and_digits() {
    refused(
        &with("national_id", Some(json!("049937089"))),
        "national_id",
        "exactly 10 digits",
    );
    refused(
        &with("national_id", Some(json!("04993708990"))),
        "national_id",
        "exactly 10 digits",
    );
    refused(
        &with("national_id", Some(json!("04993708a9"))),
        "national_id",
        "exactly 10 digits",
    );
}

#[test]
fn national_id_persian_and_arabic_digits_normalized() {
    let r = accepted(&with("national_id", Some(json!("۰۴۹۹۳۷۰۸۹۹"))));
    assert_eq!(r.national_id(), "0499370899");
    let r = accepted(&with("national_id", Some(json!("\u{200F}٠٤٩٩٣٧٠٨٩٩ "))));
    assert_eq!(r.national_id(), "0499370899");
}

// --- names -------------------------------------------------------------------

#[test]
fn persian_field_with_latin_letters() {
    let errs = refused(
        &with("given_name.fa", Some(json!("محمد Ali"))),
        "given_name.fa",
        "contains Latin letters",
    );
    let shown = errs[0].to_string();
    assert_eq!(
        shown,
        "test.jsonl:1 (record R-000001): given_name.fa: contains Latin letters; expected Persian script"
    );
}

#[test]
fn persian_field_with_digits_or_symbols() {
    refused(
        &with("family_name.fa", Some(json!("رضایی۲"))),
        "family_name.fa",
        "contains digits",
    );
    refused(
        &with("family_name.fa", Some(json!("رضا@یی"))),
        "family_name.fa",
        "U+0040",
    );
    refused(
        &with("family_name.fa", Some(json!("-رضایی"))),
        "family_name.fa",
        "must start with a Persian letter",
    );
}

#[test]
fn latin_field_rules() {
    refused(
        &with("given_name.latin", Some(json!("محمد"))),
        "given_name.latin",
        "contains Persian letters",
    );
    refused(
        &with("given_name.latin", Some(json!("Ali2"))),
        "given_name.latin",
        "contains digits",
    );
    refused(
        &with("birth_place.latin", Some(json!("Tehran!"))),
        "birth_place.latin",
        "U+0021",
    );
    let r = accepted(&with(
        "family_name.latin",
        Some(json!("  Ja’fari-Nezhad  O'Neil ")),
    ));
    assert_eq!(r.family_name().latin, "Ja'fari-Nezhad O'Neil");
    accepted(&with("family_name.latin", Some(json!("Ṭabāṭabā'ī"))));
}

#[test]
fn name_lengths() {
    let long_fa: String = "ب".repeat(65);
    refused(
        &with("family_name.fa", Some(json!(long_fa))),
        "family_name.fa",
        "65 characters long; at most 64",
    );
    accepted(&with("family_name.fa", Some(json!("ب".repeat(64)))));
    refused(
        &with("family_name.latin", Some(json!("B".repeat(65)))),
        "family_name.latin",
        "at most 64",
    );
    refused(
        &with("father_name.fa", Some(json!(" \u{200C} "))),
        "father_name.fa",
        "must not be empty",
    );
    refused(
        &with("father_name.latin", Some(json!(""))),
        "father_name.latin",
        "must not be empty",
    );
}

#[test]
fn names_required() {
    refused(
        &with("father_name.fa", None),
        "father_name.fa",
        "required field is missing",
    );
    refused(
        &with("birth_place", None),
        "birth_place",
        "required field is missing",
    );
    refused(
        &with("given_name", Some(json!("محمد"))),
        "given_name",
        "must be a JSON object, found a string",
    );
}

// --- normalization -------------------------------------------------------------

#[test]
fn normalize_yeh_and_kaf() {
    assert_eq!(normalize_persian("علي"), "علی");
    assert_eq!(normalize_persian("موسى"), "موسی");
    assert_eq!(normalize_persian("كريمي"), "کریمی");
    let r = accepted(&with("family_name.fa", Some(json!("كريمي"))));
    assert_eq!(r.family_name().fa, "کریمی");
}

#[test]
fn normalize_whitespace_and_format_chars() {
    assert_eq!(normalize_persian("  محمد \t  رضا \n"), "محمد رضا");
    assert_eq!(normalize_persian("\u{FEFF}مح\u{200B}مد\u{200F}"), "محمد");
    assert_eq!(normalize_persian("علی\u{200D}رضا"), "علیرضا");
    assert_eq!(normalize_persian("\u{202B}تهران\u{202C}"), "تهران");
}

#[test]
fn normalize_zwnj() {
    let z = '\u{200C}';
    // Kept between two letters, a double one collapses.
    assert_eq!(
        normalize_persian(&format!("نیک{z}نام")),
        format!("نیک{z}نام")
    );
    assert_eq!(
        normalize_persian(&format!("نیک{z}{z}نام")),
        format!("نیک{z}نام")
    );
    // Removed at the ends and next to spaces.
    assert_eq!(normalize_persian(&format!("{z}علی{z}")), "علی");
    assert_eq!(normalize_persian(&format!("علی {z}رضا")), "علی رضا");
    assert_eq!(normalize_persian(&format!("علی{z} رضا")), "علی رضا");
    assert_eq!(normalize_persian(&format!("علی {z} رضا")), "علی رضا");
    // Not between two letters (next to punctuation).
    assert_eq!(normalize_persian(&format!("علی{z}-رضا")), "علی-رضا");
    // A ZWJ between ZWNJs goes, leaving one ZWNJ.
    assert_eq!(
        normalize_persian(&format!("می{z}\u{200D}{z}روم")),
        format!("می{z}روم")
    );
    // After a diacritic on a letter it is still between letters.
    assert_eq!(
        normalize_persian(&format!("نیکُ{z}نام")),
        format!("نیکُ{z}نام")
    );
}

#[test]
fn normalize_nfc() {
    // Alef + combining madda composes to آ.
    assert_eq!(normalize_persian("\u{0627}\u{0653}رش"), "آرش");
    // Yeh + hamza above composes to U+0626 before the yeh mapping applies.
    assert_eq!(normalize_persian("\u{064A}\u{0654}"), "\u{0626}");
    assert_eq!(normalize_persian("\u{06CC}\u{0654}"), "\u{06CC}\u{0654}");
}

#[test]
fn normalized_text_is_stored() {
    let z = '\u{200C}';
    let r = accepted(&with(
        "family_name.fa",
        Some(json!(format!(" نيك{z}{z}نام "))),
    ));
    assert_eq!(r.family_name().fa, format!("نیک{z}نام"));
}

#[test]
fn digit_normalization() {
    assert_eq!(normalize_digits("۱۳۸۰/۰۷/۱۵"), "1380/07/15");
    assert_eq!(normalize_digits("١٣٨٠/٠٧/١٥"), "1380/07/15");
    assert_eq!(normalize_digits(" \u{200E}12\u{200F} "), "12");
    let mut v = with("birth_date", Some(json!("۱۳۸۰/۰۷/۱۵")));
    v["request_date"] = json!("١٤٠٤/٠٨/٣٠");
    v["birth_certificate_number"] = json!("۱۲۳۴");
    v["issuing_office"]["code"] = json!("۱۰۲۱");
    let r = accepted(&v);
    assert_eq!(r.birth_date().to_string(), "1380/07/15");
    assert_eq!(r.request_date().to_string(), "1404/08/30");
    assert_eq!(r.birth_certificate_number(), "1234");
    assert_eq!(r.issuing_office().code(), "1021");
}

// --- sex -------------------------------------------------------------------------

#[test]
fn sex_values() {
    refused(
        &with("sex", Some(json!("X"))),
        "sex",
        "expected \"M\" or \"F\"",
    );
    refused(
        &with("sex", Some(json!("m"))),
        "sex",
        "expected \"M\" or \"F\"",
    );
    assert_eq!(accepted(&with("sex", Some(json!("F")))).sex(), Sex::Female);
}

// --- dates -------------------------------------------------------------------------

#[test]
fn jalali_gregorian_known_pairs() {
    let pairs = [
        ((1403, 1, 1), (2024, 3, 20)),
        ((1399, 12, 30), (2021, 3, 20)),
        ((1400, 1, 1), (2021, 3, 21)),
        ((1403, 12, 30), (2025, 3, 20)),
        ((1404, 1, 1), (2025, 3, 21)),
        ((1380, 7, 15), (2001, 10, 7)),
        ((1357, 11, 22), (1979, 2, 11)),
    ];
    for ((y, m, d), (gy, gm, gd)) in pairs {
        let j = JalaliDate::new(y, m, d).unwrap();
        let g = GregorianDate::new(gy, gm, gd).unwrap();
        assert_eq!(j.to_gregorian(), g, "{j}");
        assert_eq!(JalaliDate::from_gregorian(g), Some(j));
    }
}

#[test]
fn leap_esfand() {
    assert!(JalaliDate::is_leap_year(1399));
    assert!(JalaliDate::is_leap_year(1403));
    assert!(!JalaliDate::is_leap_year(1400));
    assert!(!JalaliDate::is_leap_year(1404));
    assert_eq!(JalaliDate::days_in_month(1400, 12), Some(29));
    assert_eq!(JalaliDate::days_in_month(1403, 12), Some(30));
    assert_eq!(JalaliDate::days_in_month(1403, 6), Some(31));
    assert_eq!(JalaliDate::days_in_month(1403, 7), Some(30));
    let e = JalaliDate::parse("1400/12/30").unwrap_err();
    assert_eq!(
        e.to_string(),
        "1400/12/30 does not exist: Esfand 1400 has 29 days (not a leap year)"
    );
    refused(
        &with("birth_date", Some(json!("1400/12/30"))),
        "birth_date",
        "does not exist",
    );
    accepted(&with("birth_date", Some(json!("1379/12/30"))));
}

#[test]
fn date_ranges_and_format() {
    refused(
        &with("birth_date", Some(json!("1380/13/01"))),
        "birth_date",
        "month 13 does not exist",
    );
    refused(
        &with("birth_date", Some(json!("1380/00/01"))),
        "birth_date",
        "month 0",
    );
    refused(
        &with("birth_date", Some(json!("1380/07/31"))),
        "birth_date",
        "Mehr 1380 has 30 days",
    );
    refused(
        &with("birth_date", Some(json!("1380/07/00"))),
        "birth_date",
        "does not exist",
    );
    refused(
        &with("request_date", Some(json!("1404-08-30"))),
        "request_date",
        "expected a date written YYYY/MM/DD",
    );
    refused(
        &with("request_date", Some(json!("04/08/30"))),
        "request_date",
        "YYYY/MM/DD",
    );
    refused(
        &with("request_date", Some(json!("0000/01/01"))),
        "request_date",
        "year 0",
    );
    let r = accepted(&with("birth_date", Some(json!("1380/7/5"))));
    assert_eq!(r.birth_date().to_string(), "1380/07/05");
}

#[test]
fn birth_not_after_request() {
    refused(
        &with("birth_date", Some(json!("1404/09/01"))),
        "birth_date",
        "is after the request date 1404/08/30",
    );
}

#[test]
fn age_boundary() {
    // Request date 1404/08/30: exactly 15 years passes, one day short fails.
    let r = accepted(&with("birth_date", Some(json!("1389/08/30"))));
    assert_eq!(r.age_on_request(), 15);
    refused(
        &with("birth_date", Some(json!("1389/09/01"))),
        "birth_date",
        "is 14 years; at least 15",
    );
    // Age counting across years.
    let b = JalaliDate::new(1380, 7, 15).unwrap();
    assert_eq!(b.age_on(JalaliDate::new(1395, 7, 14).unwrap()), Some(14));
    assert_eq!(b.age_on(JalaliDate::new(1395, 7, 15).unwrap()), Some(15));
    assert_eq!(b.age_on(JalaliDate::new(1380, 7, 14).unwrap()), None);
}

#[test]
fn age_for_30_esfand_birthday() {
    // 1383 is a leap year; 1398 is not, 1399 is.
    assert!(JalaliDate::is_leap_year(1383));
    assert!(!JalaliDate::is_leap_year(1398));
    let born = JalaliDate::new(1383, 12, 30).unwrap();
    // In a common year the birthday falls on 1 Farvardin: still 14 on 29 Esfand.
    assert_eq!(
        born.age_on(JalaliDate::new(1398, 12, 29).unwrap()),
        Some(14)
    );
    assert_eq!(born.age_on(JalaliDate::new(1399, 1, 1).unwrap()), Some(15));
    // In a leap year it is 30 Esfand itself.
    let born = JalaliDate::new(1384, 12, 29).unwrap();
    assert_eq!(
        born.age_on(JalaliDate::new(1399, 12, 29).unwrap()),
        Some(15)
    );
    let born = JalaliDate::new(1399, 12, 30).unwrap();
    assert_eq!(born.age_on(JalaliDate::new(1403, 12, 30).unwrap()), Some(4));
    assert_eq!(born.age_on(JalaliDate::new(1403, 12, 29).unwrap()), Some(3));

    let mut v = with("birth_date", Some(json!("1383/12/30")));
    v["request_date"] = json!("1398/12/29");
    refused(&v, "birth_date", "is 14 years");
    v["request_date"] = json!("1399/01/01");
    assert_eq!(accepted(&v).age_on_request(), 15);
}

#[test]
fn month_names() {
    let d = JalaliDate::new(1380, 7, 15).unwrap();
    assert_eq!(d.month_name_latin(), "Mehr");
    assert_eq!(d.month_name_fa(), "مهر");
    assert_eq!(
        JalaliDate::new(1380, 12, 1).unwrap().month_name_latin(),
        "Esfand"
    );
    assert_eq!("1380/07/15".parse::<JalaliDate>().unwrap(), d);
}

// --- birth certificate -----------------------------------------------------------

#[test]
fn birth_certificate_number_rule() {
    refused(
        &with("birth_certificate_number", Some(json!("12345678901"))),
        "birth_certificate_number",
        "1..=10 digits",
    );
    refused(
        &with("birth_certificate_number", Some(json!(""))),
        "birth_certificate_number",
        "1..=10 digits",
    );
    refused(
        &with("birth_certificate_number", Some(json!("12-3"))),
        "birth_certificate_number",
        "1..=10 digits",
    );
    accepted(&with("birth_certificate_number", Some(json!("1234567890"))));
}

// --- issuing office ----------------------------------------------------------------

#[test]
fn issuing_office_rules() {
    let office = |o: Value| with("issuing_office", Some(o));
    refused(
        &office(json!({"kind": "embassy", "code": "1021"})),
        "issuing_office.kind",
        "\"domestic\" or \"consulate\"",
    );
    refused(
        &office(json!({"kind": "domestic", "code": "102"})),
        "issuing_office.code",
        "exactly 4 digits",
    );
    refused(
        &office(json!({"kind": "domestic", "code": "AE-DXB"})),
        "issuing_office.code",
        "exactly 4 digits",
    );
    refused(
        &office(json!({"kind": "consulate", "code": "IR-THR"})),
        "issuing_office.code",
        "country IR",
    );
    refused(
        &office(json!({"kind": "consulate", "code": "XX-ABC"})),
        "issuing_office.code",
        "not an assigned ISO 3166-1",
    );
    refused(
        &office(json!({"kind": "consulate", "code": "ae-dxb"})),
        "issuing_office.code",
        "CC-XXX",
    );
    refused(
        &office(json!({"kind": "consulate", "code": "AE-DX"})),
        "issuing_office.code",
        "CC-XXX",
    );
    refused(
        &office(json!({"kind": "consulate"})),
        "issuing_office.code",
        "required field is missing",
    );
    refused(
        &office(json!({"kind": "domestic", "code": "1021", "city": "x"})),
        "issuing_office.city",
        "unknown field",
    );
    let r = accepted(&office(json!({"kind": "consulate", "code": "AE-DXB"})));
    assert_eq!(
        r.issuing_office(),
        &IssuingOffice::Consulate {
            country: "AE".into(),
            post: "DXB".into()
        }
    );
    assert_eq!(super::country::assigned_count(), 249);
}

// --- request -----------------------------------------------------------------------

#[test]
fn request_rules() {
    let req = |r: Value| with("request", Some(r));
    refused(
        &req(json!({"type": "renewal"})),
        "request.type",
        "\"first_issue\" or \"replacement\"",
    );
    refused(
        &req(json!({"type": "replacement"})),
        "request.reason",
        "required field is missing",
    );
    refused(
        &req(json!({"type": "replacement", "reason": "stolen"})),
        "request.reason",
        "\"loss\", \"damage\" or \"civil_data_change\"",
    );
    refused(
        &req(json!({"type": "first_issue", "reason": "loss"})),
        "request.reason",
        "unknown field",
    );
    refused(
        &req(json!({"type": "replacement", "reason": "loss", "previous_card_serial": "12345"})),
        "request.previous_card_serial",
        "16 hexadecimal digits",
    );
    refused(&req(json!({})), "request.type", "required field is missing");
    let r = accepted(&req(
        json!({"type": "replacement", "reason": "civil_data_change"}),
    ));
    assert_eq!(
        r.request(),
        &Request::Replacement {
            reason: ReplacementReason::CivilDataChange,
            previous_card_serial: None
        }
    );
    accepted(&req(
        json!({"type": "replacement", "reason": "loss", "previous_card_serial": null}),
    ));
}

// --- photo -------------------------------------------------------------------------

#[test]
fn photo_base64() {
    refused(
        &with("photo.data", Some(json!("not base64 at all!"))),
        "photo.data",
        "not valid base64",
    );
}

#[test]
fn photo_not_jpeg() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    refused(
        &with("photo.data", Some(json!(STANDARD.encode(png)))),
        "photo.data",
        "is not a JPEG",
    );
    refused(
        &with("photo.format", Some(json!("png"))),
        "photo.format",
        "only \"jpeg\"",
    );
}

#[test]
fn photo_truncated_or_corrupt() {
    let full = portrait_jpeg(3, true);
    let cut = &full[..full.len() * 2 / 3];
    refused(
        &with("photo.data", Some(json!(STANDARD.encode(cut)))),
        "photo.data",
        "truncated",
    );
    let head = &full[..100];
    refused(
        &with("photo.data", Some(json!(STANDARD.encode(head)))),
        "photo.data",
        "truncated",
    );
}

#[test]
fn photo_size_limit() {
    let big = jpeg(400, 500, 100, false, 1);
    assert!(big.len() > 20 * 1024);
    refused(
        &with("photo.data", Some(json!(STANDARD.encode(&big)))),
        "photo.data",
        "the limit is 20480 bytes",
    );
}

#[test]
fn photo_dimensions() {
    let small = jpeg(89, 120, 80, false, 0);
    refused(
        &with("photo.data", Some(json!(STANDARD.encode(small)))),
        "photo.data",
        "is 89×120 pixels",
    );
    let short = jpeg(90, 119, 80, false, 0);
    refused(
        &with("photo.data", Some(json!(STANDARD.encode(short)))),
        "photo.data",
        "is 90×119 pixels",
    );
    let wide = jpeg(1201, 200, 50, false, 2);
    refused(
        &with("photo.data", Some(json!(STANDARD.encode(wide)))),
        "photo.data",
        "is 1201×200 pixels",
    );
    let min = jpeg(90, 120, 80, false, 0);
    accepted(&with("photo.data", Some(json!(STANDARD.encode(min)))));
}

#[test]
fn photo_progressive_accepted() {
    let p = jpeg(120, 160, 75, true, 0);
    let r = accepted(&with("photo.data", Some(json!(STANDARD.encode(&p)))));
    assert_eq!(r.photo().info().process, JpegProcess::Progressive);
    assert_eq!(r.photo().jpeg(), &p[..]);
}

// --- fingerprints ------------------------------------------------------------------

fn fp(position: &str, seed: u64) -> Value {
    let pos = FingerPosition::from_name(position).unwrap_or(FingerPosition::Unknown);
    json!({"position": position, "format": "iso19794-2:2005", "data": STANDARD.encode(template(seed, pos))})
}

#[test]
fn fingerprint_count() {
    refused(
        &with("fingerprints", Some(json!([]))),
        "fingerprints",
        "has 0 entries; 1 or 2",
    );
    let three = json!([
        fp("right_index", 1),
        fp("left_index", 2),
        fp("right_thumb", 3)
    ]);
    refused(
        &with("fingerprints", Some(three)),
        "fingerprints",
        "has 3 entries",
    );
    refused(
        &with("fingerprints", Some(json!({}))),
        "fingerprints",
        "must be an array",
    );
    let r = accepted(&with(
        "fingerprints",
        Some(json!([fp("right_index", 1), fp("left_thumb", 2)])),
    ));
    assert_eq!(r.fingerprints().len(), 2);
}

#[test]
fn fingerprint_positions() {
    let dup = json!([fp("right_index", 1), fp("right_index", 2)]);
    refused(
        &with("fingerprints", Some(dup)),
        "fingerprints[1].position",
        "duplicate position right_index",
    );
    let bad = json!([fp("right_pinky", 1)]);
    refused(
        &with("fingerprints", Some(bad)),
        "fingerprints[0].position",
        "expected one of: unknown, right_thumb",
    );
    for p in FingerPosition::ALL {
        assert_eq!(FingerPosition::from_name(p.as_str()), Some(p));
    }
    assert_eq!(FingerPosition::LeftLittle.iso_code(), 10);
}

#[test]
fn fingerprint_format_base64_and_validator() {
    refused(
        &with("fingerprints.0.format", Some(json!("ansi378"))),
        "fingerprints[0].format",
        "only \"iso19794-2:2005\"",
    );
    refused(
        &with("fingerprints.0.data", Some(json!("%%%"))),
        "fingerprints[0].data",
        "not valid base64",
    );
    refused(
        &with("fingerprints.0.data", Some(json!(""))),
        "fingerprints[0].data",
        "is empty",
    );
    let junk = STANDARD.encode(b"not a template");
    refused(
        &with("fingerprints.0.data", Some(json!(junk))),
        "fingerprints[0].data",
        "template refused: no ISO 19794-2 record header",
    );
    refused(
        &with("fingerprints.0.quality", Some(json!(80))),
        "fingerprints[0].quality",
        "unknown field",
    );
}

// --- structure -----------------------------------------------------------------------

#[test]
fn unknown_fields_named() {
    refused(
        &with("nickname", Some(json!("x"))),
        "nickname",
        "unknown field",
    );
    refused(
        &with("given_name.en", Some(json!("x"))),
        "given_name.en",
        "unknown field",
    );
    refused(
        &with("photo.width", Some(json!(1))),
        "photo.width",
        "unknown field",
    );
}

#[test]
fn missing_fields_named() {
    for field in TOP_FIELDS {
        refused(&with(field, None), field, "required field is missing");
    }
}

#[test]
fn all_errors_collected() {
    let mut v = good();
    v["sex"] = json!("X");
    v["national_id"] = json!("1111111111");
    v["given_name"]["latin"] = json!("Ali1");
    v["extra"] = json!(true);
    let errs = parse(&v).unwrap_err();
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    for f in ["sex", "national_id", "given_name.latin", "extra"] {
        assert!(fields.contains(&f), "{fields:?}");
    }
    assert!(errs
        .iter()
        .all(|e| e.record_id.as_deref() == Some("R-000001")));
}

#[test]
fn json_syntax_error_has_line_and_column() {
    let errs = parse_record(
        "{\"record_id\": \"R-1\",\n  \"sex\": M}",
        "f.json",
        &TestValidator,
    )
    .unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .rule
            .starts_with("invalid JSON at line 2, column 10"),
        "{}",
        errs[0].rule
    );
    assert_eq!(errs[0].record_id, None);
    let dup = "{\"record_id\": \"R-1\",\n \"sex\": \"M\", \"sex\": \"F\"}";
    let errs = parse_record(dup, "f.json", &TestValidator).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].rule.starts_with("invalid JSON at line 2, column ")
            && errs[0].rule.ends_with("duplicate field `sex`"),
        "{}",
        errs[0].rule
    );
    let nested = with("given_name", Some(json!({"fa": "علی", "latin": "Ali"})))
        .to_string()
        .replace("\"latin\":\"Ali\"", "\"latin\":\"Ali\",\"fa\":\"رضا\"");
    let errs = parse_record(&nested, "f.json", &TestValidator).unwrap_err();
    assert!(
        errs[0].rule.ends_with("duplicate field `fa`"),
        "{}",
        errs[0].rule
    );
    let errs = parse_record("[1,2]", "f.json", &TestValidator).unwrap_err();
    assert!(errs[0]
        .rule
        .contains("must be a JSON object, found an array"));
    assert_eq!(
        errs[0].to_string(),
        "f.json: a record must be a JSON object, found an array"
    );
}

#[test]
fn deeply_nested_json_is_refused_without_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let errs = parse_record(&deep, "f", &TestValidator).unwrap_err();
    assert!(errs[0].rule.contains("recursion limit"), "{}", errs[0].rule);
    let deep = format!("{{\"record_id\":{}", "{\"a\":".repeat(100_000));
    assert!(parse_record(&deep, "f", &TestValidator).is_err());
}

// --- batches ---------------------------------------------------------------------------

#[test]
fn load_jsonl_batch() {
    let lines = sample_records(4, 11, JalaliDate::new(1404, 8, 30).unwrap(), &mut template);
    let mut dup_id: Value = serde_json::from_str(&lines[1]).unwrap();
    dup_id["national_id"] = json!("0499370899");
    let mut dup_nid: Value = serde_json::from_str(&lines[2]).unwrap();
    dup_nid["record_id"] = json!("R-999999");
    let mut bad: Value = serde_json::from_str(&lines[3]).unwrap();
    bad["sex"] = json!("Q");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    write!(
        f,
        "{}\r\n\n{}\n{}\n   \n{}\n{}\n{}\n{{broken\n",
        lines[0], lines[1], lines[2], dup_id, dup_nid, bad
    )
    .unwrap();
    drop(f);
    let batch = load_records(&path, &TestValidator).unwrap();
    let good_lines: Vec<usize> = batch.good.iter().map(|(n, _)| *n).collect();
    assert_eq!(good_lines, vec![1, 3, 4]);
    let name = path.display().to_string();
    let shown: Vec<String> = batch.bad.iter().map(|e| e.to_string()).collect();
    assert_eq!(batch.bad.len(), 4, "{shown:#?}");
    assert_eq!(batch.bad[0].location, format!("{name}:6"));
    assert_eq!(batch.bad[0].field, "record_id");
    assert!(batch.bad[0].rule.contains("first used on line 3"));
    assert_eq!(batch.bad[1].location, format!("{name}:7"));
    assert_eq!(batch.bad[1].field, "national_id");
    assert!(batch.bad[1].rule.contains("first used on line 4"));
    assert_eq!(batch.bad[2].field, "sex");
    assert_eq!(batch.bad[2].record_id.as_deref(), Some("R-000004"));
    assert_eq!(batch.bad[3].location, format!("{name}:9"));
    assert!(
        batch.bad[3]
            .rule
            .starts_with("invalid JSON at line 9, column 2"),
        "{}",
        batch.bad[3].rule
    );
}

#[test]
fn load_single_pretty_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.json");
    std::fs::write(&path, serde_json::to_string_pretty(&good()).unwrap()).unwrap();
    let batch = load_records(&path, &TestValidator).unwrap();
    assert!(batch.bad.is_empty(), "{:?}", batch.bad);
    assert_eq!(batch.good.len(), 1);
    assert_eq!(batch.good[0].0, 1);

    let mut v = good();
    v["sex"] = json!("?");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let batch = load_records(&path, &TestValidator).unwrap();
    assert_eq!(batch.bad.len(), 1);
    assert_eq!(batch.bad[0].location, path.display().to_string());
    assert_eq!(batch.bad[0].field, "sex");

    std::fs::write(&path, "{\n  \"record_id\": \"R-1\",\n  \"sex\": \n}\n").unwrap();
    let batch = load_records(&path, &TestValidator).unwrap();
    assert_eq!(batch.bad.len(), 1);
    assert!(
        batch.bad[0]
            .rule
            .starts_with("invalid JSON at line 4, column 1"),
        "{}",
        batch.bad[0].rule
    );
}

#[test]
fn load_reports_invalid_utf8_and_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.jsonl");
    let mut bytes = good().to_string().into_bytes();
    bytes.extend_from_slice(b"\n{\"a\xff\": 1}\n");
    std::fs::write(&path, bytes).unwrap();
    let batch = load_records(&path, &TestValidator).unwrap();
    assert_eq!(batch.good.len(), 1);
    assert_eq!(batch.bad.len(), 1);
    assert!(batch.bad[0].rule.contains("not valid UTF-8"));
    assert!(load_records(&dir.path().join("missing.jsonl"), &TestValidator).is_err());
}

// --- samples -----------------------------------------------------------------------------

#[test]
fn sample_name_lists_are_normalized_and_valid() {
    for (fa, latin) in MALE_NAMES
        .iter()
        .chain(&FEMALE_NAMES)
        .chain(&FAMILY_NAMES)
        .chain(&PLACES)
    {
        assert_eq!(normalize_persian(fa), *fa);
        normalize::check_persian_text(fa).unwrap();
        normalize::check_latin_text(latin).unwrap();
    }
    assert!(MALE_NAMES.len() >= 40 && FEMALE_NAMES.len() >= 40 && FAMILY_NAMES.len() >= 50);
}

#[test]
fn samples_pass_validation() {
    let req = JalaliDate::new(1404, 8, 30).unwrap();
    let lines = sample_records(200, 42, req, &mut template);
    assert_eq!(lines.len(), 200);
    let mut consulates = 0;
    let mut replacements = 0;
    let mut nids = std::collections::HashSet::new();
    for (i, line) in lines.iter().enumerate() {
        let r = parse_record(line, &format!("sample:{}", i + 1), &TestValidator)
            .unwrap_or_else(|e| panic!("{e:#?}"));
        assert!((15..=90).contains(&r.age_on_request()));
        assert!(
            r.photo().jpeg().len() < 10 * 1024,
            "{}",
            r.photo().jpeg().len()
        );
        assert!(nids.insert(r.national_id().to_string()));
        let names: &[(&str, &str)] = match r.sex() {
            Sex::Male => &MALE_NAMES,
            Sex::Female => &FEMALE_NAMES,
        };
        assert!(names.iter().any(|(fa, _)| *fa == r.given_name().fa));
        if matches!(r.issuing_office(), IssuingOffice::Consulate { .. }) {
            consulates += 1;
        }
        if matches!(r.request(), Request::Replacement { .. }) {
            replacements += 1;
        }
        assert_eq!(&to_json_line(&r), line);
    }
    assert!((5..=40).contains(&consulates), "{consulates}");
    assert!((5..=40).contains(&replacements), "{replacements}");
}

#[test]
fn samples_are_deterministic() {
    let req = JalaliDate::new(1404, 8, 30).unwrap();
    let a = sample_records(5, 9, req, &mut template);
    let b = sample_records(5, 9, req, &mut template);
    let c = sample_records(5, 10, req, &mut template);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mut calls = Vec::new();
    sample_records(3, 9, req, &mut |seed, pos| {
        calls.push((seed, pos));
        template(seed, pos)
    });
    assert!((3..=6).contains(&calls.len()));
}

#[test]
#[ignore = "writes sample portraits to the temp dir for a visual check"]
fn write_sample_portrait() {
    let dir = std::env::temp_dir();
    std::fs::write(dir.join("sample_portrait_m.jpg"), portrait_jpeg(1, false)).unwrap();
    std::fs::write(dir.join("sample_portrait_f.jpg"), portrait_jpeg(2, true)).unwrap();
    for (name, seed, female) in [
        ("m", 1, false),
        ("f", 2, true),
        ("m2", 3, false),
        ("f2", 4, true),
    ] {
        let j = portrait_jpeg(seed, female);
        let mut d = zune_jpeg::JpegDecoder::new(std::io::Cursor::new(&j));
        std::fs::write(
            dir.join(format!("sample_portrait_{name}.rgb")),
            d.decode().unwrap(),
        )
        .unwrap();
    }
}

// --- property tests --------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn normalize_persian_is_idempotent(s in "\\PC{0,40}") {
        let once = normalize_persian(&s);
        prop_assert_eq!(normalize_persian(&once), once.clone());
    }

    #[test]
    fn normalize_persian_is_idempotent_on_persian_mix(
        s in "[ \u{200B}-\u{200F}\u{FEFF}\u{0621}-\u{065F}\u{0670}\u{067E}\u{06A9}\u{06CC}\u{06F0}-\u{06F9}a-c\t]{0,30}"
    ) {
        let once = normalize_persian(&s);
        prop_assert_eq!(normalize_persian(&once), once.clone());
        let (yeh, kaf, z) = ('\u{064A}', '\u{0643}', ZWNJ);
        prop_assert!(!once.contains(yeh) && !once.contains(kaf), "{:?}", once);
        prop_assert!(!once.starts_with(z) && !once.ends_with(z), "{:?}", once);
        prop_assert!(!once.contains("\u{200C}\u{200C}") && !once.contains("  "), "{:?}", once);
    }

    #[test]
    fn parse_record_never_panics_on_strings(s in "\\PC{0,200}") {
        let _ = parse_record(&s, "p", &TestValidator);
    }

    #[test]
    fn parse_record_never_panics_on_bytes(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_record(&String::from_utf8_lossy(&b), "p", &TestValidator);
    }

    #[test]
    fn parse_record_never_panics_on_mutated_fields(
        field in proptest::sample::select(TOP_FIELDS.to_vec()),
        s in "\\PC{0,30}",
        n in any::<i64>(),
        pick in 0u8..4,
    ) {
        let value = match pick {
            0 => json!(s),
            1 => json!(n),
            2 => json!({ "fa": s, "latin": s, "type": s, "kind": s, "code": s }),
            _ => json!([s]),
        };
        let _ = parse(&with(field, Some(value)));
    }

    #[test]
    fn photo_check_never_panics_on_damaged_jpeg(pos in 0usize..4000, byte in any::<u8>(), cut in 0usize..4000) {
        let mut j = portrait_jpeg(5, false);
        let p = pos % j.len();
        j[p] = byte;
        j.truncate(j.len() - cut.min(j.len() / 2));
        let _ = photo::inspect_jpeg(&j);
    }
}
