//! Personalization end to end through the real pcscd: the `cardsmith`
//! binary personalizes, verifies and reads a simulated card on the vpcd
//! virtual reader; tampered card images are caught by `verify`; and the
//! results (EF.SOD, certificates, a card signature) are checked by OpenSSL.

mod common;

use base64::Engine as _;
use cardsmith::scp03::keyfile::Scp03Keys;
use cardsmith::sim::faults::Faults;
use cardsmith::sim::{Provision, SimCard, SimConfig};
use common::*;
use serde_json::Value;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Output;

const READER: &str = "Virtual PCD 00 00";
const IDENTITY_DF: &str = "5000";
const PKI_DF: &str = "6000";

/// A test's working directory: a data directory with a known issuer key,
/// and sample records.
struct Setup {
    dir: tempfile::TempDir,
    key: Vec<u8>,
    /// The data directory's SCP03 keys (the CLI finds the same file).
    scp03: Scp03Keys,
}

impl Setup {
    fn new(key_byte: u8) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let key: Vec<u8> = (0..16u8).map(|i| i.wrapping_mul(17) ^ key_byte).collect();
        write_issuer_key(&dir.path().join("data"), &key);
        let scp03 = Scp03Keys::locate(None, &dir.path().join("data")).unwrap();
        Setup { dir, key, scp03 }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    fn run(&self, args: &[&str]) -> Output {
        cardsmith_env(args, &[("CARDSMITH_DATA_DIR", self.data_dir())])
    }

    /// `count` sample records, each in its own file `r<i>.json`.
    fn records(&self, count: usize, seed: u64) -> Vec<(PathBuf, Value)> {
        let all = self.path("records.jsonl");
        let o = self.run(&[
            "sample-records",
            "--count",
            &count.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
            all.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let text = std::fs::read_to_string(&all).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), count);
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let p = self.path(&format!("r{i}.json"));
                std::fs::write(&p, format!("{l}\n")).unwrap();
                (p, serde_json::from_str(l).unwrap())
            })
            .collect()
    }

    /// A blank card kept in the image file `name`, with this setup's issuer key.
    fn image_card(&self, name: &str) -> SimCard {
        SimCard::open_image_provisioned(&self.path(name), SimConfig::default(), self.provision())
            .expect("open the card image")
    }

    /// What this setup's blank cards ship with.
    fn provision(&self) -> Provision<'_> {
        Provision {
            issuer_key: Some(&self.key),
            scp03: Some(&self.scp03.keys),
        }
    }

    /// A fresh blank card with this setup's keys.
    fn blank(&self) -> SimCard {
        SimCard::blank_provisioned(SimConfig::default(), self.provision()).unwrap()
    }

    /// Personalize the blank card in image `image` with `record` through
    /// pcscd (slot 0); the card is removed again afterwards.
    fn personalize_image(&self, record: &Path, image: &str) {
        let card = insert(self.image_card(image), 0, Faults::default());
        let o = self.run(&[
            "perso",
            "--record",
            record.to_str().unwrap(),
            "--reader",
            READER,
            "--json",
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "perso: {}\n{}",
            stdout(&o),
            stderr(&o)
        );
        assert_eq!(json(&o)["verify"]["passed"], true, "{}", stdout(&o));
        card.remove().unwrap();
    }

    /// `verify --json` of the card in image `image` against `record` through pcscd.
    fn verify_image(&self, record: &Path, image: &Path) -> (Option<i32>, Value) {
        let card = SimCard::open_image_with(image, SimConfig::default(), None).unwrap();
        let card = insert(card, 0, Faults::default());
        let o = self.run(&[
            "verify",
            "--record",
            record.to_str().unwrap(),
            "--reader",
            READER,
            "--json",
        ]);
        card.remove().unwrap();
        (o.status.code(), json(&o))
    }
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
}

fn b64(s: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.as_str().unwrap())
        .unwrap()
}

fn sha256(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .to_vec()
}

/// One BER-TLV starting at `pos`: its tag bytes and the range of its value.
fn tlv_at(b: &[u8], pos: usize) -> (Vec<u8>, Range<usize>) {
    let mut i = pos;
    let mut tag = vec![b[i]];
    i += 1;
    if b[pos] & 0x1F == 0x1F {
        loop {
            tag.push(b[i]);
            i += 1;
            if b[i - 1] & 0x80 == 0 {
                break;
            }
        }
    }
    let (len, n) = match b[i] {
        l if l < 0x80 => (usize::from(l), 1),
        0x81 => (usize::from(b[i + 1]), 2),
        0x82 => (usize::from(u16::from_be_bytes([b[i + 1], b[i + 2]])), 3),
        l => panic!("unexpected length byte {l:02X} at {i}"),
    };
    i += n;
    assert!(i + len <= b.len(), "TLV at {pos} runs past the end");
    (tag, i..i + len)
}

/// The first TLV of an EF's content, without the zero padding after it.
fn content(b: &[u8]) -> &[u8] {
    let (_, v) = tlv_at(b, 0);
    &b[..v.end]
}

/// The value range of the first child with `tag` inside `outer` (a value range).
fn child(b: &[u8], outer: Range<usize>, tag: &[u8]) -> Range<usize> {
    let mut pos = outer.start;
    while pos < outer.end {
        let (t, v) = tlv_at(b, pos);
        if t == tag {
            return v;
        }
        pos = v.end;
    }
    panic!("no tag {tag:02X?} in {outer:?}");
}

fn load_image(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn save_image(p: &Path, img: &Value) {
    std::fs::write(p, serde_json::to_vec_pretty(img).unwrap()).unwrap();
}

/// The index in `files` of EF `fid` under the DF `df`.
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

/// Every check `verify` makes on the reference card.
const ALL_CHECKS: [&str; 17] = [
    "DG1 demographics",
    "DG2 photo",
    "DG3 issuance",
    "DG4 biometric information",
    "security object signature",
    "hash of DG1 demographics",
    "hash of DG2 photo",
    "hash of DG3 issuance",
    "hash of DG4 biometric information",
    "authentication key certificate",
    "authentication key proof",
    "signature key certificate",
    "signature key proof",
    "fingerprint templates",
    "biometric information templates on the card",
    "PIN states",
    "closed for personalization",
];

fn assert_all_passed(rep: &Value) {
    assert_eq!(rep["passed"], true, "{rep}");
    let names: Vec<&str> = rep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ALL_CHECKS, "{rep}");
    assert!(failed_checks(rep).is_empty(), "{rep}");
}

fn field<'a>(dump: &'a Value, dg: usize, name: &str) -> &'a str {
    dump["groups"][dg - 1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f[0] == name)
        .unwrap_or_else(|| panic!("no field {name} in DG{dg}: {dump}"))[1]
        .as_str()
        .unwrap()
}

#[test]
fn perso_then_verify_passes() {
    let _g = pcsc();
    let s = Setup::new(0x11);
    let (rec_path, rec) = s.records(1, 21).remove(0);
    let rec_arg = rec_path.to_str().unwrap();
    let card = s.blank();
    let card = insert(card, 0, Faults::default());

    let o = s.run(&["perso", "--record", rec_arg, "--reader", READER, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let v = json(&o);
    assert_eq!(v["personalized"], true, "{v}");
    assert_eq!(v["record_id"], rec["record_id"], "{v}");
    assert_all_passed(&v["verify"]);
    // Through pcscd, over the card's security domain.
    let sc = v["perso"]["secure_channel"].as_str().unwrap_or_default();
    assert!(
        sc.starts_with("SCP03 C-MAC C-ENC R-MAC R-ENC, KVN 30"),
        "{v}"
    );
    let serial = v["perso"]["serial"].as_str().unwrap().to_string();
    assert_eq!(serial.len(), 16, "{v}");
    assert_eq!(v["verify"]["serial"], serial.as_str());
    assert_eq!(v["verify"]["life_cycle"], "personalized");

    // A separate verify run, a new connection to the same card.
    let o = s.run(&["verify", "--record", rec_arg, "--reader", READER, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let v = json(&o);
    assert_all_passed(&v);
    assert_eq!(v["serial"], serial.as_str());
    // The card's BITs (GET DATA 7F61) were checked against DG4's.
    assert_eq!(
        check(&v, "biometric information templates on the card")["passed"],
        true,
        "{v}"
    );
    // The card's verdict per finger; a card without diagnostics gives no
    // score, so there is no debug field.
    let fingers = v["fingers"].as_array().expect("fingers");
    assert_eq!(
        fingers.len(),
        rec["fingerprints"].as_array().unwrap().len(),
        "{v}"
    );
    for (f, r) in fingers.iter().zip(rec["fingerprints"].as_array().unwrap()) {
        assert_eq!(f["finger"], r["position"], "{v}");
        assert_eq!(f["verdict"], "match", "{v}");
        assert!(f.get("debug").is_none(), "{v}");
    }

    // read: the record's identity, and the photo byte for byte.
    let photo = s.path("photo.jpg");
    let o = s.run(&[
        "read",
        "--reader",
        READER,
        "--json",
        "--photo",
        photo.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let d = json(&o);
    assert_eq!(d["serial"], serial.as_str());
    assert_eq!(d["life_cycle"], "personalized");
    assert_eq!(field(&d, 1, "national_id"), rec["national_id"]);
    assert_eq!(field(&d, 1, "given_name.fa"), rec["given_name"]["fa"]);
    assert_eq!(field(&d, 1, "given_name.latin"), rec["given_name"]["latin"]);
    assert_eq!(field(&d, 1, "family_name.fa"), rec["family_name"]["fa"]);
    assert_eq!(
        field(&d, 1, "family_name.latin"),
        rec["family_name"]["latin"]
    );
    assert_eq!(field(&d, 3, "record_id"), rec["record_id"]);
    assert_eq!(field(&d, 3, "card.serial"), serial.as_str(), "{d}");
    let want = b64(&rec["photo"]["data"]);
    let got = std::fs::read(&photo).expect("the photo file was written");
    assert_eq!(&got[..2], &[0xFF, 0xD8], "a JPEG (SOI)");
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the saved photo differs from the record's");
    assert_eq!(
        field(&d, 2, "photo"),
        format!("{} bytes", want.len()).as_str()
    );
    let fingers: Vec<&str> = d["fingers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["position"].as_str().unwrap())
        .collect();
    let want_fingers: Vec<&str> = rec["fingerprints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["position"].as_str().unwrap())
        .collect();
    assert_eq!(fingers, want_fingers);
    card.remove().unwrap();
}

/// Change one byte inside data group `n`'s content (never in its padding).
fn tamper(dg: u8, data: &mut [u8]) -> String {
    let (tag, top) = tlv_at(data, 0);
    assert_eq!(tag, [0x70 + dg], "DG{dg} template tag");
    match dg {
        1 => {
            // The first letter of the Latin given name.
            let v = child(data, top, &[0x83]);
            let old = data[v.start];
            data[v.start] = if old == b'Q' { b'Z' } else { b'Q' };
            String::from_utf8(data[v].to_vec()).unwrap()
        }
        2 => {
            // A byte in the middle of the JPEG.
            let v = child(data, top, &[0x5F, 0x40]);
            let mid = v.start + v.len() / 2;
            data[mid] ^= 0x01;
            format!("photo byte {}", mid - v.start)
        }
        3 => {
            // The last character of the record id.
            let v = child(data, top, &[0x80]);
            let last = v.end - 1;
            data[last] = if data[last] == b'7' { b'8' } else { b'7' };
            String::from_utf8(data[v].to_vec()).unwrap()
        }
        4 => {
            // The first BIT's "at most 60 minutiae" parameter: B1 inside
            // the biometric header template A1, 81 = minimum, maximum.
            let bit = child(data, top, &[0x7F, 0x60]);
            let bht = child(data, bit, &[0xA1]);
            let params = child(data, bht, &[0xB1]);
            let max = child(data, params, &[0x81]);
            assert_eq!(data[max.start + 1], 60);
            data[max.start + 1] = 59;
            "max minutiae 59".into()
        }
        _ => unreachable!(),
    }
}

#[test]
fn tampering_with_each_data_group_is_named() {
    let _g = pcsc();
    let s = Setup::new(0x22);
    let (rec, _) = s.records(1, 22).remove(0);
    s.personalize_image(&rec, "card.json");
    let original = load_image(&s.path("card.json"));

    // The untouched image verifies.
    let copy = s.path("copy.json");
    save_image(&copy, &original);
    let (code, rep) = s.verify_image(&rec, &copy);
    assert_eq!(code, Some(0), "{rep}");
    assert_all_passed(&rep);

    let names = [
        (1, "DG1 demographics"),
        (2, "DG2 photo"),
        (3, "DG3 issuance"),
        (4, "DG4 biometric information"),
    ];
    for (n, name) in names {
        let fid = format!("010{n}");
        let mut img = original.clone();
        let mut data = ef_data(&img, IDENTITY_DF, &fid);
        let before = data.clone();
        let what = tamper(n, &mut data);
        assert_eq!(
            data.iter().zip(&before).filter(|(a, b)| a != b).count(),
            1,
            "exactly one byte changed"
        );
        assert_eq!(content(&data).len(), content(&before).len());
        set_ef_data(&mut img, IDENTITY_DF, &fid, &data);
        let path = s.path(&format!("dg{n}.json"));
        save_image(&path, &img);

        let (code, rep) = s.verify_image(&rec, &path);
        assert_eq!(code, Some(4), "DG{n} ({what}): {rep}");
        assert_eq!(rep["passed"], false, "{rep}");
        let hash_check = format!("hash of {name}");
        let mut want = vec![name.to_string(), hash_check.clone()];
        want.sort();
        assert_eq!(failed_checks(&rep), want, "DG{n} ({what}): {rep}");
        let h = check(&rep, &hash_check);
        assert_eq!(h["passed"], false);
        let detail = h["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("DG{n}")), "{detail}");
        let d = check(&rep, name)["detail"].as_str().unwrap();
        assert!(d.contains(&format!("DG{n}")), "{d}");
        if n == 4 {
            // The first BIT's minutiae limit was changed: 3C → 3B.
            assert!(d.contains("the BIT for reference 85 differs"), "{d}");
            assert!(
                d.contains("81 02 07 3C") && d.contains("81 02 07 3B"),
                "{d}"
            );
        }
        if n == 1 {
            assert!(d.contains("given_name.latin"), "{d}");
            assert!(d.contains(&what), "the tampered name {what}: {d}");
        }
        if n == 3 {
            assert!(d.contains("record_id"), "{d}");
        }
        for (m, other) in names {
            if m != n {
                assert_eq!(check(&rep, &format!("hash of {other}"))["passed"], true);
                assert_eq!(check(&rep, other)["passed"], true);
            }
        }
        assert_eq!(check(&rep, "security object signature")["passed"], true);
    }
}

#[test]
fn wrong_certificate_fails_the_key_proof() {
    let _g = pcsc();
    let s = Setup::new(0x33);
    let recs = s.records(2, 23);
    s.personalize_image(&recs[0].0, "a.json");
    s.personalize_image(&recs[1].0, "b.json");
    let a = load_image(&s.path("a.json"));
    let b = load_image(&s.path("b.json"));

    for (fid, key) in [("6101", "authentication"), ("6102", "signature")] {
        let theirs = ef_data(&b, PKI_DF, fid);
        assert_ne!(
            ef_data(&a, PKI_DF, fid),
            theirs,
            "two cards, two certificates"
        );
        let mut img = a.clone();
        set_ef_data(&mut img, PKI_DF, fid, &theirs);
        let path = s.path(&format!("a-with-b-{fid}.json"));
        save_image(&path, &img);

        let (code, rep) = s.verify_image(&recs[0].0, &path);
        assert_eq!(code, Some(4), "{key}: {rep}");
        assert_eq!(rep["passed"], false);
        let mut want = vec![format!("{key} key certificate"), format!("{key} key proof")];
        want.sort();
        assert_eq!(failed_checks(&rep), want, "{key}: {rep}");
        let proof = check(&rep, &format!("{key} key proof"))["detail"]
            .as_str()
            .unwrap();
        assert!(proof.contains("does not verify"), "{proof}");
        let other = if key == "signature" {
            "authentication"
        } else {
            "signature"
        };
        assert_eq!(
            check(&rep, &format!("{other} key proof"))["passed"],
            true,
            "{rep}"
        );
    }
}

fn openssl(args: &[&str]) -> Output {
    std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl")
}

fn assert_ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what}: {}\n{}", stdout(o), stderr(o));
}

#[test]
fn openssl_accepts_the_results() {
    let _g = pcsc();
    let s = Setup::new(0x44);
    let (rec, _) = s.records(1, 24).remove(0);
    s.personalize_image(&rec, "card.json");
    let img = load_image(&s.path("card.json"));
    let ca = s.data_dir().join("ca").join("ca-cert.pem");
    let ca = ca.to_str().unwrap();
    let p = |n: &str| s.path(n).to_str().unwrap().to_string();

    // EF.SOD: tag 77 around the CMS SignedData.
    let sod = ef_data(&img, IDENTITY_DF, "011D");
    let (tag, v) = tlv_at(&sod, 0);
    assert_eq!(tag, [0x77]);
    std::fs::write(s.path("sod.der"), &sod[v]).unwrap();
    let o = openssl(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        &p("sod.der"),
        "-CAfile",
        ca,
        "-binary",
        "-purpose",
        "any",
        "-out",
        &p("econtent.der"),
    ]);
    assert_ok(&o, "openssl cms -verify");
    // The signed content lists each data group's SHA-256:
    // DataGroupHash ::= SEQUENCE { INTEGER n, OCTET STRING hash }.
    let econtent = std::fs::read(s.path("econtent.der")).unwrap();
    for n in 1..=4u8 {
        let dg = ef_data(&img, IDENTITY_DF, &format!("010{n}"));
        let mut want = vec![0x30, 0x25, 0x02, 0x01, n, 0x04, 0x20];
        want.extend(sha256(content(&dg)));
        assert!(
            econtent.windows(want.len()).any(|w| w == want.as_slice()),
            "no SHA-256 of DG{n} in the LDS security object"
        );
    }
    // A changed security object is refused by OpenSSL too.
    let mut bad = std::fs::read(s.path("sod.der")).unwrap();
    let n = bad.len();
    bad[n - 10] ^= 0x01;
    std::fs::write(s.path("bad-sod.der"), &bad).unwrap();
    let o = openssl(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        &p("bad-sod.der"),
        "-CAfile",
        ca,
        "-binary",
        "-purpose",
        "any",
        "-out",
        &p("bad-econtent.der"),
    ]);
    assert!(!o.status.success(), "a damaged signature was accepted");

    // Both card certificates chain to the CA.
    for (fid, name) in [("6101", "auth"), ("6102", "sig")] {
        let der = ef_data(&img, PKI_DF, fid);
        std::fs::write(s.path(&format!("{name}.der")), content(&der)).unwrap();
        let o = openssl(&[
            "x509",
            "-inform",
            "DER",
            "-in",
            &p(&format!("{name}.der")),
            "-out",
            &p(&format!("{name}.pem")),
        ]);
        assert_ok(&o, "openssl x509 DER to PEM");
        let o = openssl(&["verify", "-CAfile", ca, &p(&format!("{name}.pem"))]);
        assert_ok(&o, "openssl verify");
        assert_eq!(
            stdout(&o).trim(),
            format!("{}: OK", p(&format!("{name}.pem")))
        );
    }
    // They end when the card does (00:00 UTC of DG3's expiry date) and name
    // the reference profile's CRL distribution point and policy.
    let dg3 = ef_data(&img, IDENTITY_DF, "0103");
    let (_, top) = tlv_at(&dg3, 0);
    let expiry = String::from_utf8(dg3[child(&dg3, top, &[0x92])].to_vec()).unwrap();
    let g = cardsmith::record::JalaliDate::new(
        expiry[..4].parse().unwrap(),
        expiry[4..6].parse().unwrap(),
        expiry[6..].parse().unwrap(),
    )
    .unwrap()
    .to_gregorian();
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let not_after = format!(
        "Not After : {} {:>2} 00:00:00 {} GMT",
        MONTHS[usize::from(g.month()) - 1],
        g.day(),
        g.year()
    );
    for name in ["auth", "sig"] {
        let o = openssl(&["x509", "-in", &p(&format!("{name}.pem")), "-noout", "-text"]);
        assert_ok(&o, "openssl x509 -text");
        let t = stdout(&o);
        assert!(t.contains(&not_after), "{name}: want {not_after:?}:\n{t}");
        assert!(
            t.contains("X509v3 CRL Distribution Points")
                && t.contains("URI:http://pki.national-id.example/crl/card-ca.crl"),
            "{name}:\n{t}"
        );
        assert!(
            t.contains("X509v3 Certificate Policies")
                && t.contains("Policy: 2.999.364.1.1")
                && t.contains("CPS: https://pki.national-id.example/cps"),
            "{name}:\n{t}"
        );
    }
    let o = openssl(&[
        "x509",
        "-in",
        &p("auth.pem"),
        "-pubkey",
        "-noout",
        "-out",
        &p("pub.pem"),
    ]);
    assert_ok(&o, "openssl x509 -pubkey");

    // The card signs with its authentication key (INTERNAL AUTHENTICATE,
    // allowed without PIN on a personalized card).
    let data = b"cardsmith: a challenge for the card's authentication key";
    std::fs::write(s.path("data.bin"), data).unwrap();
    let digest = sha256(data);
    let ia = format!("00 88 00 00 20 {} 00", cardsmith::hex::spaced(&digest));
    let card = insert(
        SimCard::open_image_with(&s.path("card.json"), SimConfig::default(), None).unwrap(),
        0,
        Faults::default(),
    );
    let o = s.run(&[
        "send",
        "--reader",
        READER,
        "--json",
        "00 A4 04 0C 07 F043534D504B01",
        "00 22 41 A4 06 80 01 11 84 01 01",
        &ia,
    ]);
    card.remove().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let v = json(&o);
    let rs = v["responses"].as_array().unwrap();
    assert_eq!(rs.len(), 3, "{v}");
    assert!(rs.iter().all(|r| r["sw"] == "9000"), "{v}");
    let raw = cardsmith::hex::parse(rs[2]["data"].as_str().unwrap()).unwrap();
    assert_eq!(raw.len(), 64, "r ‖ s");
    let der = cardsmith::pki::raw_to_der_sig(&raw).unwrap();
    std::fs::write(s.path("sig.der"), &der).unwrap();
    let o = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &p("pub.pem"),
        "-signature",
        &p("sig.der"),
        &p("data.bin"),
    ]);
    assert_ok(&o, "openssl dgst -verify");
    assert_eq!(stdout(&o).trim(), "Verified OK");
    // Other data: the same signature does not verify.
    std::fs::write(s.path("other.bin"), b"something else").unwrap();
    let o = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &p("pub.pem"),
        "-signature",
        &p("sig.der"),
        &p("other.bin"),
    ]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert_eq!(stdout(&o).trim(), "Verification failure");
}

#[test]
fn verify_json_gives_the_score_of_a_card_with_diagnostics_only_as_debug() {
    let _g = pcsc();
    let s = Setup::new(0x33);
    let (rec, _) = s.records(1, 23).remove(0);
    s.personalize_image(&rec, "card.json");
    let mut img = load_image(&s.path("card.json"));
    img["config"]["match_score_diagnostics"] = Value::Bool(true);
    let path = s.path("diag.json");
    save_image(&path, &img);
    let (code, rep) = s.verify_image(&rec, &path);
    assert_eq!(code, Some(0), "{rep}");
    let fingers = rep["fingers"].as_array().expect("fingers");
    assert!(!fingers.is_empty(), "{rep}");
    for f in fingers {
        assert_eq!(f["verdict"], "match", "{rep}");
        let d = &f["debug"];
        let (score, threshold) = (
            d["score"].as_f64().unwrap(),
            d["threshold"].as_f64().unwrap(),
        );
        assert!(score >= threshold && score <= 1.0, "{rep}");
        assert!(d["paired"].as_u64().unwrap() >= 7, "{rep}");
    }
    // The text report (what an operator reads) carries no score.
    let card = SimCard::open_image_with(&path, SimConfig::default(), None).unwrap();
    let card = insert(card, 0, Faults::default());
    let o = s.run(&[
        "verify",
        "--record",
        rec.to_str().unwrap(),
        "--reader",
        READER,
    ]);
    card.remove().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        !stdout(&o).to_lowercase().contains("score"),
        "{}",
        stdout(&o)
    );
}
