//! The holder's certificates against the card profile, through the
//! `cardsmith` binary on a simulated card image: their validity ends with
//! the card's (never after it), they carry the profile's CRL distribution
//! point and certificate policy, and `verify` fails a certificate that breaks
//! either rule, naming what it found and what the profile wants.

mod common;

use cardsmith::record::JalaliDate;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

const IDENTITY_DF: &str = "5000";
const PKI_DF: &str = "6000";
/// The reference profile's values (apdu-scripts/reference-card/profile.toml).
const REF_CRL: &str = "http://pki.national-id.example/crl/card-ca.crl";
const REF_POLICY: &str = "2.999.364.1.1";
const REF_CPS: &str = "https://pki.national-id.example/cps";

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        write_issuer_key(&dir.path().join("data"), &[0x6B; 16]);
        let s = Setup { dir };
        let o = s.run(&[
            "sample-records",
            "--count",
            "1",
            "--seed",
            "7",
            "--out",
            s.path("record.json").to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        s
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

    /// `perso` (or `verify`) of the record onto the card image `image`,
    /// with `extra` arguments.
    fn card_cmd(&self, cmd: &str, image: &Path, extra: &[&str]) -> Output {
        let rec = self.path("record.json");
        let mut args = vec![
            cmd,
            "--record",
            rec.to_str().unwrap(),
            "--sim-image",
            image.to_str().unwrap(),
            "--json",
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn perso(&self, image: &str, extra: &[&str]) -> Value {
        let o = self.card_cmd("perso", &self.path(image), extra);
        assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
        let v = json(&o);
        assert_eq!(v["verify"]["passed"], true, "{v}");
        v
    }

    fn verify(&self, image: &Path, extra: &[&str]) -> (Option<i32>, Value) {
        let o = self.card_cmd("verify", image, extra);
        (o.status.code(), json(&o))
    }

    /// A copy of the reference profile directory with `edit` applied to
    /// `profile.toml`; returns the path of the edited profile.
    fn profile(&self, name: &str, edit: impl FnOnce(&str) -> String) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("apdu-scripts/reference-card");
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["profile.toml", "filesystem.apdu"] {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
        let p = dir.join("profile.toml");
        let text = std::fs::read_to_string(&p).unwrap();
        let edited = edit(&text);
        assert_ne!(edited, text, "the edit changed nothing in the profile");
        std::fs::write(&p, edited).unwrap();
        p
    }
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
}

fn load_image(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn ef_index(img: &Value, df: &str, fid: &str) -> usize {
    let files = img["files"].as_array().unwrap();
    let df_id = files
        .iter()
        .find(|f| f["fid"] == df && f["kind"]["type"] == "df")
        .unwrap_or_else(|| panic!("no DF {df}"))["id"]
        .clone();
    files
        .iter()
        .position(|f| f["fid"] == fid && f["parent"] == df_id)
        .unwrap_or_else(|| panic!("no EF {fid} under {df}"))
}

fn ef_data(img: &Value, df: &str, fid: &str) -> Vec<u8> {
    let i = ef_index(img, df, fid);
    cardsmith::hex::parse(img["files"][i]["kind"]["data"].as_str().unwrap()).unwrap()
}

fn set_ef_data(img: &mut Value, df: &str, fid: &str, data: &[u8]) {
    let i = ef_index(img, df, fid);
    img["files"][i]["kind"]["data"] = Value::String(cardsmith::hex::compact(data));
}

/// The DER certificate in an EF (without the padding after it).
fn cert_der(ef: &[u8]) -> Vec<u8> {
    assert_eq!(ef[0], 0x30);
    let (len, n) = match ef[1] {
        l if l < 0x80 => (usize::from(l), 2),
        0x81 => (usize::from(ef[2]), 3),
        0x82 => (usize::from(u16::from_be_bytes([ef[2], ef[3]])), 4),
        l => panic!("length byte {l:02X}"),
    };
    ef[..n + len].to_vec()
}

/// The card's expiry date as DG3 tag 92 holds it (Jalali `YYYYMMDD`), and
/// the position of its 8 digits in EF.DG3.
fn dg3_expiry(dg3: &[u8]) -> (String, usize) {
    let pos = dg3
        .windows(2)
        .position(|w| w == [0x92, 0x08])
        .expect("tag 92 with 8 bytes in DG3")
        + 2;
    (String::from_utf8(dg3[pos..pos + 8].to_vec()).unwrap(), pos)
}

/// 00:00:00 UTC of the Gregorian day of a Jalali `YYYYMMDD`, in Unix seconds.
fn jalali_midnight_utc(yyyymmdd: &str) -> i64 {
    let j = JalaliDate::new(
        yyyymmdd[..4].parse().unwrap(),
        yyyymmdd[4..6].parse().unwrap(),
        yyyymmdd[6..].parse().unwrap(),
    )
    .unwrap();
    let g = j.to_gregorian();
    // Days from 1970-01-01 (proleptic Gregorian).
    let (y, m, d) = (
        i64::from(g.year()),
        i64::from(g.month()),
        i64::from(g.day()),
    );
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400
}

fn check<'a>(rep: &'a Value, name: &str) -> &'a Value {
    rep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {rep}"))
}

fn failed_checks(rep: &Value) -> Vec<String> {
    let mut v: Vec<String> = rep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] != true)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// `read --json` of a card image.
fn read(s: &Setup, image: &Path) -> Value {
    let o = s.run(&["read", "--sim-image", image.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    json(&o)
}

#[test]
fn certificates_end_with_the_card() {
    let s = Setup::new();
    s.perso("card.json", &[]);
    let img = load_image(&s.path("card.json"));
    let (expiry, _) = dg3_expiry(&ef_data(&img, IDENTITY_DF, "0103"));
    let card_end = jalali_midnight_utc(&expiry);
    let d = read(&s, &s.path("card.json"));
    let certs = d["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2, "{d}");
    for c in certs {
        let sum = &c["summary"]["Ok"];
        assert_eq!(
            sum["not_after_unix"].as_i64(),
            Some(card_end),
            "the {} certificate ends {}, the card expires {expiry} (00:00 UTC of it is {card_end}): {d}",
            c["key"],
            sum["not_after"]
        );
        assert_eq!(sum["crl_distribution_points"], serde_json::json!([REF_CRL]));
        assert_eq!(
            sum["policies"],
            serde_json::json!([format!("{REF_POLICY} (CPS {REF_CPS})")])
        );
    }
    // `verify` says so in its certificate checks.
    let (code, rep) = s.verify(&s.path("card.json"), &[]);
    assert_eq!(code, Some(0), "{rep}");
    for key in ["authentication", "signature"] {
        let detail = check(&rep, &format!("{key} key certificate"))["detail"]
            .as_str()
            .unwrap();
        assert!(detail.contains("ends with the card"), "{detail}");
    }
}

/// Shift the card's expiry date in DG3 by `years` and verify the image.
fn verify_with_expiry_moved(s: &Setup, years: i32) -> (String, String, Value) {
    let mut img = load_image(&s.path("card.json"));
    let mut dg3 = ef_data(&img, IDENTITY_DF, "0103");
    let (expiry, pos) = dg3_expiry(&dg3);
    let year: i32 = expiry[..4].parse().unwrap();
    let moved = format!("{:04}{}", year + years, &expiry[4..]);
    dg3[pos..pos + 8].copy_from_slice(moved.as_bytes());
    set_ef_data(&mut img, IDENTITY_DF, "0103", &dg3);
    let path = s.path(&format!("moved{years}.json"));
    std::fs::write(&path, serde_json::to_vec(&img).unwrap()).unwrap();
    let (code, rep) = s.verify(&path, &[]);
    assert_eq!(code, Some(4), "{rep}");
    (expiry, moved, rep)
}

#[test]
fn verify_fails_a_certificate_that_outlives_the_card() {
    let s = Setup::new();
    s.perso("card.json", &[]);
    let d = read(&s, &s.path("card.json"));
    let cert_end = d["certificates"][0]["summary"]["Ok"]["not_after"]
        .as_str()
        .unwrap()
        .to_string();
    // The card now says it expires a year earlier than the certificates.
    let (_, moved, rep) = verify_with_expiry_moved(&s, -1);
    let failed = failed_checks(&rep);
    for key in ["authentication", "signature"] {
        let name = format!("{key} key certificate");
        assert!(failed.contains(&name), "{name} passed: {rep}");
        let detail = check(&rep, &name)["detail"].as_str().unwrap();
        let jalali = format!("{}/{}/{}", &moved[..4], &moved[4..6], &moved[6..]);
        assert!(
            detail.contains("outlives the card")
                && detail.contains(&cert_end)
                && detail.contains(&jalali),
            "{detail} (certificate ends {cert_end}, card {jalali})"
        );
    }
}

#[test]
fn verify_fails_a_certificate_that_dies_long_before_the_card() {
    let s = Setup::new();
    s.perso("card.json", &[]);
    // The card now says it expires a year later than the certificates.
    let (_, moved, rep) = verify_with_expiry_moved(&s, 1);
    let jalali = format!("{}/{}/{}", &moved[..4], &moved[4..6], &moved[6..]);
    for key in ["authentication", "signature"] {
        let name = format!("{key} key certificate");
        let c = check(&rep, &name);
        assert_eq!(c["passed"], false, "{rep}");
        let detail = c["detail"].as_str().unwrap();
        assert!(
            detail.contains("before the card") && detail.contains(&jalali),
            "{detail}"
        );
        assert!(
            detail.contains("the profile allows at most 1 day"),
            "{detail}"
        );
    }
}

#[test]
fn certificates_carry_the_profiles_crl_and_policy_and_verify_compares_them() {
    let s = Setup::new();
    let crl = "http://crl.other-programme.example/ca7.crl";
    let custom = s.profile("custom", |t| {
        t.replace(REF_CRL, crl)
            .replace(REF_POLICY, "2.999.77.2")
            .replace("end_before_card_days = 0", "end_before_card_days = 30")
    });
    let custom = custom.to_str().unwrap();
    s.perso("card.json", &["--profile", custom]);
    let img = load_image(&s.path("card.json"));
    let (expiry, _) = dg3_expiry(&ef_data(&img, IDENTITY_DF, "0103"));

    // OpenSSL sees the extensions, and the 30 days.
    for fid in ["6101", "6102"] {
        let der = cert_der(&ef_data(&img, PKI_DF, fid));
        let file = s.path(&format!("{fid}.der"));
        std::fs::write(&file, &der).unwrap();
        let o = std::process::Command::new("openssl")
            .args(["x509", "-inform", "DER", "-noout", "-text", "-in"])
            .arg(&file)
            .output()
            .expect("run openssl");
        assert!(o.status.success(), "{}", stderr(&o));
        let text = stdout(&o);
        assert!(text.contains("X509v3 CRL Distribution Points"), "{text}");
        assert!(text.contains(&format!("URI:{crl}")), "{text}");
        assert!(text.contains("X509v3 Certificate Policies"), "{text}");
        assert!(text.contains("Policy: 2.999.77.2"), "{text}");
        assert!(text.contains(&format!("CPS: {REF_CPS}")), "{text}");
        let o = std::process::Command::new("openssl")
            .args(["x509", "-inform", "DER", "-noout", "-enddate", "-dateopt"])
            .args(["iso_8601", "-in"])
            .arg(&file)
            .output()
            .expect("run openssl");
        assert!(o.status.success(), "{}", stderr(&o));
        let end = jalali_midnight_utc(&expiry) - 30 * 86_400;
        let d = read(&s, &s.path("card.json"));
        assert_eq!(
            d["certificates"][0]["summary"]["Ok"]["not_after_unix"].as_i64(),
            Some(end),
            "{d}"
        );
        let want = d["certificates"][0]["summary"]["Ok"]["not_after"]
            .as_str()
            .unwrap()
            .replace(" UTC", "Z");
        assert!(
            stdout(&o).trim() == format!("notAfter={want}"),
            "{} vs {want}",
            stdout(&o)
        );
    }

    // The same profile's verify passes.
    let (code, rep) = s.verify(&s.path("card.json"), &["--profile", custom]);
    assert_eq!(code, Some(0), "{rep}");

    // The reference profile wants other values and a certificate that ends
    // with the card: each difference is named.
    let (code, rep) = s.verify(&s.path("card.json"), &[]);
    assert_eq!(code, Some(4), "{rep}");
    assert_eq!(
        failed_checks(&rep),
        vec![
            "authentication key certificate",
            "signature key certificate"
        ],
        "{rep}"
    );
    let detail = check(&rep, "signature key certificate")["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("30 days before the card"), "{detail}");
    assert!(detail.contains(crl) && detail.contains(REF_CRL), "{detail}");
    assert!(
        detail.contains("2.999.77.2") && detail.contains(REF_POLICY),
        "{detail}"
    );
}

#[test]
fn a_malformed_certificate_rule_is_refused_naming_file_and_key() {
    let s = Setup::new();
    for (edit_from, edit_to, key, expected) in [
        (
            REF_POLICY,
            "2.999.x.1",
            "certificates.policy_oid",
            "dotted OID",
        ),
        (
            REF_CRL,
            "crl.example/ca.crl",
            "certificates.crl_distribution_points[0]",
            "absolute http, https or ldap URI",
        ),
        (
            "end_before_card_days = 0",
            "end_before_card_days = 3000",
            "certificates.end_before_card_days",
            "before the card is issued",
        ),
    ] {
        let p = s.profile(&format!("bad-{key}"), |t| t.replace(edit_from, edit_to));
        let o = s.card_cmd(
            "perso",
            &s.path("never.json"),
            &["--profile", p.to_str().unwrap()],
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(p.to_str().unwrap()) && err.contains(key) && err.contains(expected),
            "{key}: {err}"
        );
        assert!(!s.path("never.json").exists(), "the card was touched");
    }
}

/// A card valid longer than the CA: perso stops before it writes anything,
/// naming both ends, so the blank card is not spoilt.
#[test]
fn a_card_that_would_outlive_the_ca_is_left_blank() {
    let s = Setup::new();
    let long = s.profile("long", |t| {
        t.replace("validity_years = 7", "validity_years = 20")
    });
    let image = s.path("card.json");
    let o = s.card_cmd("perso", &image, &["--profile", long.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4), "{}\n{}", stdout(&o), stderr(&o));
    let v = json(&o);
    assert_eq!(v["personalized"], false, "{v}");
    assert_eq!(v["error"]["stage"], "check_blank", "{v}");
    let e = v["error"]["message"].as_str().unwrap();
    assert!(
        e.contains("the CA cannot issue this card's certificates")
            && e.contains("cannot outlive its issuer")
            && e.contains("ca-cert.pem"),
        "{e}"
    );
    // Still blank (life cycle 01): the same card takes a profile the CA can
    // serve.
    assert_eq!(load_image(&image)["life_cycle"], 1, "{v}");
    s.perso("card.json", &[]);
}
