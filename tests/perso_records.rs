//! Record validation through the `cardsmith perso` binary: every bad record
//! is refused (exit code 2, the field named) before any card is touched,
//! and Persian text reaches the card normalized.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Output;

/// A test's working directory: a data directory with an issuer key, and a
/// good sample record.
struct Setup {
    dir: tempfile::TempDir,
    good: Value,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        write_issuer_key(&dir.path().join("data"), &[0x5A; 16]);
        let out = dir.path().join("good.jsonl");
        let s = Setup {
            dir,
            good: Value::Null,
        };
        let o = s.run(&[
            "sample-records",
            "--count",
            "1",
            "--seed",
            "5",
            "--request-date",
            "1404/08/30",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let good = serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim()).unwrap();
        Setup { good, ..s }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        cardsmith_env(
            args,
            &[("CARDSMITH_DATA_DIR", self.dir.path().join("data"))],
        )
    }

    /// Write `rec` as the single record of a file and `perso` it onto a
    /// simulated card kept in `card.json`.
    fn perso(&self, rec: &Value) -> Output {
        let path = self.path("record.json");
        std::fs::write(&path, format!("{}\n", serde_json::to_string(rec).unwrap())).unwrap();
        self.run(&[
            "perso",
            "--record",
            path.to_str().unwrap(),
            "--sim-image",
            self.path("card.json").to_str().unwrap(),
            "--json",
        ])
    }
}

/// Edit the good record with `edit`; `perso` must refuse it with exit code
/// 2, naming `field` with `message`, and never create the card image.
fn refused(edit: impl FnOnce(&mut Value), field: &str, message: &str) {
    let s = Setup::new();
    // The good record as it is is accepted (checked once, in
    // `arabic_yeh_and_kaf_reach_the_card_as_persian`); here a copy is broken.
    let mut rec = s.good.clone();
    edit(&mut rec);
    assert_ne!(rec, s.good, "the edit changed nothing");
    let o = s.perso(&rec);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{}\n{err}", stdout(&o));
    assert!(err.contains("refused before any card was touched"), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains(&format!(": {field}: ")))
        .unwrap_or_else(|| panic!("no error names {field}: {err}"));
    assert!(line.contains(message), "expected {message:?}: {line}");
    assert!(
        !s.path("card.json").exists(),
        "the simulated card image was created: the card was touched"
    );
    // Errors never show the photo or template bytes.
    let photo = s.good["photo"]["data"].as_str().unwrap();
    assert!(!err.contains(&photo[..40]), "photo base64 in the error");
    // Under --json, stdout is the error document, naming the field.
    let doc: Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON document");
    assert_eq!(doc["error"]["exit_code"], 2, "{doc}");
    assert_eq!(doc["error"]["kind"], "record_refused", "{doc}");
    assert!(
        doc["error"]["problems"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["field"] == field)),
        "{doc}"
    );
    assert!(
        !stdout(&o).contains(&photo[..40]),
        "photo base64 in the document"
    );
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn b64_decode(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

#[test]
fn bad_check_digit() {
    refused(
        |r| {
            let id = r["national_id"].as_str().unwrap();
            let last = id.as_bytes()[9] - b'0';
            let bad = format!("{}{}", &id[..9], (last + 1) % 10);
            r["national_id"] = json!(bad);
        },
        "national_id",
        "check digit",
    );
}

#[test]
fn all_same_digit_national_id() {
    // 1111111111 passes the check digit rule (s = 54, r = 10, 11 - 10 = 1).
    refused(
        |r| r["national_id"] = json!("1111111111"),
        "national_id",
        "all ten digits are the same",
    );
}

#[test]
fn fourteen_year_old() {
    // Request date 1404/08/30: born 1390/01/01, the holder is 14.
    refused(
        |r| r["birth_date"] = json!("1390/01/01"),
        "birth_date",
        "is 14 years; at least 15",
    );
}

#[test]
fn jalali_date_that_does_not_exist() {
    // 1400 is not a leap year: Esfand has 29 days.
    refused(
        |r| r["birth_date"] = json!("1400/12/30"),
        "birth_date",
        "does not exist",
    );
}

#[test]
fn latin_letters_in_a_persian_name() {
    refused(
        |r| r["given_name"]["fa"] = json!("علی Ali"),
        "given_name.fa",
        "contains Latin letters",
    );
}

#[test]
fn photo_that_is_not_a_jpeg() {
    refused(
        |r| r["photo"]["data"] = b64(b"\x89PNG\r\n\x1a\n not a jpeg at all"),
        "photo.data",
        "not a JPEG",
    );
}

#[test]
fn oversized_photo() {
    // A real, complete baseline JPEG of a valid size (600 x 800), but far
    // more than 20 KiB: noise does not compress.
    let (w, h) = (600u16, 800u16);
    let mut x: u32 = 0x1234_5678;
    let px: Vec<u8> = (0..usize::from(w) * usize::from(h) * 3)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 90)
        .encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    assert!(jpeg.len() > 20 * 1024, "{} bytes", jpeg.len());
    let size = jpeg.len();
    refused(
        move |r| r["photo"]["data"] = b64(&jpeg),
        "photo.data",
        &format!("{size} bytes"),
    );
}

#[test]
fn truncated_fingerprint_template() {
    refused(
        |r| {
            let t = b64_decode(&r["fingerprints"][0]["data"]);
            r["fingerprints"][0]["data"] = b64(&t[..t.len() / 2]);
        },
        "fingerprints[0].data",
        "record length",
    );
}

#[test]
fn fingerprint_minutia_outside_the_image() {
    refused(
        |r| {
            let mut t = b64_decode(&r["fingerprints"][0]["data"]);
            // ISO/IEC 19794-2:2005: "FMR\0", " 20\0", length (4), equipment
            // (2), width (2) at 14; the first view at 24 (4 bytes), the first
            // minutia at 28: type (2 bits) and x (14 bits).
            assert_eq!(&t[..8], b"FMR\0 20\0");
            let width = u16::from_be_bytes([t[14], t[15]]);
            assert!(t[27] > 0, "the first view has minutiae");
            let x = (u16::from_be_bytes([t[28], t[29]]) & 0xC000) | (width + 5);
            t[28..30].copy_from_slice(&x.to_be_bytes());
            r["fingerprints"][0]["data"] = b64(&t);
        },
        "fingerprints[0].data",
        "is outside the image width",
    );
}

#[test]
fn unknown_field() {
    refused(
        |r| r["nickname"] = json!("Mamad"),
        "nickname",
        "unknown field",
    );
}

#[test]
fn missing_field() {
    refused(
        |r| {
            r.as_object_mut().unwrap().remove("sex");
        },
        "sex",
        "required field is missing",
    );
}

#[test]
fn consulate_in_iran() {
    refused(
        |r| r["issuing_office"] = json!({"kind": "consulate", "code": "IR-THR"}),
        "issuing_office.code",
        "country IR is not a consulate",
    );
}

fn field<'a>(dump: &'a Value, name: &str) -> &'a str {
    dump["groups"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f[0] == name)
        .unwrap_or_else(|| panic!("no field {name} in DG1: {dump}"))[1]
        .as_str()
        .unwrap()
}

#[test]
fn arabic_yeh_and_kaf_reach_the_card_as_persian() {
    let s = Setup::new();
    let mut rec = s.good.clone();
    // Arabic yeh U+064A and Arabic kaf U+0643.
    rec["given_name"]["fa"] = json!("علي");
    rec["family_name"]["fa"] = json!("كريمي");
    let o = s.perso(&rec);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verify"]["passed"], true, "{v}");
    assert!(s.path("card.json").exists());

    let o = s.run(&[
        "read",
        "--sim-image",
        s.path("card.json").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    // Persian yeh U+06CC and Persian kaf U+06A9.
    assert_eq!(field(&d, "given_name.fa"), "علی");
    assert_eq!(field(&d, "family_name.fa"), "کریمی");
    assert_eq!(field(&d, "given_name.fa"), "\u{0639}\u{0644}\u{06CC}");
    assert_eq!(
        field(&d, "family_name.fa"),
        "\u{06A9}\u{0631}\u{06CC}\u{0645}\u{06CC}"
    );

    // The bytes in EF.DG1 itself: Persian letters, no Arabic yeh or kaf.
    let img: Value = serde_json::from_slice(&std::fs::read(s.path("card.json")).unwrap()).unwrap();
    let files = img["files"].as_array().unwrap();
    let dg1 = files
        .iter()
        .find(|f| f["fid"] == "0101" && f["kind"]["type"] == "ef")
        .unwrap();
    let dg1 = cardsmith::hex::parse(dg1["kind"]["data"].as_str().unwrap()).unwrap();
    let has = |s: &str| dg1.windows(s.len()).any(|w| w == s.as_bytes());
    assert!(has("\u{0639}\u{0644}\u{06CC}"));
    assert!(has("\u{06A9}\u{0631}\u{06CC}\u{0645}\u{06CC}"));
    assert!(!has("\u{064A}"), "Arabic yeh on the card");
    assert!(!has("\u{0643}"), "Arabic kaf on the card");
}

/// A verify run with the wrong issuer key still reports every check, fails
/// only the ones that need the issuer, and costs the card exactly one of
/// its issuer-authentication tries.
#[test]
fn verify_with_the_wrong_issuer_key_reports_and_costs_one_try() {
    let s = Setup::new();
    let o = s.perso(&s.good);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let rec = s.path("record.json");
    let wrong = s.path("wrong-key");
    write_issuer_key(&s.path("other"), &[0x11; 16]);
    std::fs::rename(s.path("other").join("issuer-key"), &wrong).unwrap();
    let o = s.run(&[
        "verify",
        "--record",
        rec.to_str().unwrap(),
        "--sim-image",
        s.path("card.json").to_str().unwrap(),
        "--issuer-key",
        wrong.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}\n{}", stdout(&o), stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let failed: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec!["signature key proof"], "{v}");
    let detail = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "signature key proof")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("was refused") && detail.contains("63C9"),
        "{detail}"
    );
    // The card's issuer counter went from 10 to 9, not further.
    let img: Value = serde_json::from_slice(&std::fs::read(s.path("card.json")).unwrap()).unwrap();
    assert_eq!(img["issuer_tries_left"], 9);
}

/// The good record's first template, edited by `edit`, `perso`ed: accepted.
fn accepted(s: &Setup, edit: impl FnOnce(&mut Vec<u8>)) -> Output {
    let mut rec = s.good.clone();
    let mut t = b64_decode(&rec["fingerprints"][0]["data"]);
    edit(&mut t);
    rec["fingerprints"][0]["data"] = b64(&t);
    let o = s.perso(&rec);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verify"]["passed"], true, "{v}");
    // The card matched the record's own templates, finger by finger.
    let fingers = v["verify"]["fingers"].as_array().unwrap();
    assert_eq!(
        fingers.len(),
        rec["fingerprints"].as_array().unwrap().len(),
        "{v}"
    );
    assert!(fingers.iter().all(|f| f["verdict"] == "match"), "{v}");
    o
}

#[test]
fn zero_padded_fingerprint_template_is_accepted_with_a_warning() {
    let s = Setup::new();
    let mut declared = 0;
    let o = accepted(&s, |t| {
        declared = t.len();
        t.extend_from_slice(&[0; 64]);
    });
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.starts_with("warning: ") && l.contains("fingerprints[0].data"))
        .unwrap_or_else(|| panic!("no warning names the template: {err}"));
    assert!(
        line.contains(&format!(
            "64 zero bytes of padding after the declared record length (bytes {declared}..{}) were ignored",
            declared + 64
        )),
        "{line}"
    );
}

#[test]
fn trailing_bytes_that_are_not_zero_padding_are_refused() {
    refused(
        |r| {
            let mut t = b64_decode(&r["fingerprints"][0]["data"]);
            t.extend_from_slice(&[0, 0, 0, 9, 0]);
            r["fingerprints"][0]["data"] = b64(&t);
        },
        "fingerprints[0].data",
        "is not zero padding",
    );
}

#[test]
fn ansi_378_template_is_named() {
    refused(
        |r| {
            // The same finger view as an ANSI/INCITS 378-2004 record: a
            // 2-byte record length and a CBEFF product identifier where ISO
            // has a 4-byte length.
            let t = b64_decode(&r["fingerprints"][0]["data"]);
            assert_eq!(&t[..8], b"FMR\0 20\0");
            let mut a = t[..8].to_vec();
            a.extend_from_slice(&((t.len() + 2) as u16).to_be_bytes());
            a.extend_from_slice(&[0x00, 0x33, 0x00, 0x01]);
            a.extend_from_slice(&t[12..]);
            r["fingerprints"][0]["data"] = b64(&a);
        },
        "fingerprints[0].data",
        "this is an ANSI/INCITS 378 record, not ISO/IEC 19794-2",
    );
}

#[test]
fn template_with_standard_extended_data_is_accepted() {
    let s = Setup::new();
    accepted(&s, |t| {
        // One view: its extended data block length is the record's last
        // two bytes. Add a ridge count block (type 1: method 1, then one
        // (index, index, count)) and a core and delta block (type 2: one
        // core with angle, no delta), each length counting its 4-byte header.
        assert_eq!(t[22], 1, "one view");
        let n = t.len();
        assert_eq!(&t[n - 2..], &[0, 0], "no extended data yet");
        let mut ext = vec![0x00, 0x01, 0x00, 0x08, 0x01, 0x01, 0x02, 0x03];
        ext.extend_from_slice(&[0x00, 0x02, 0x00, 0x0A, 0x41, 0x00, 0x20, 0x00, 0x30, 0x40]);
        t.truncate(n - 2);
        t.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        t.extend_from_slice(&ext);
        let len = t.len() as u32;
        t[8..12].copy_from_slice(&len.to_be_bytes());
    });
}
