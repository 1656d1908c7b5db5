//! Personal data in traces, JSON error documents, and the SCP03 key-file
//! errors, through the `cardsmith` binary on in-process simulated cards
//! (no PC/SC needed except for the "no reader" case, which only lists
//! readers). The file modes and the PC/SC exit codes are in
//! `privacy_pcsc.rs`.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().expect("utf-8 path").to_string()
    }

    fn run_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let data = self.path("data");
        let mut all: Vec<(&str, String)> = vec![("CARDSMITH_DATA_DIR", data.display().to_string())];
        all.extend(envs.iter().map(|(k, v)| (*k, v.to_string())));
        cardsmith_env(args, &all)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// One sample record in `rec.json`, parsed.
    fn record(&self) -> Value {
        let o = self.run(&[
            "sample-records",
            "--count",
            "1",
            "--seed",
            "5",
            "--request-date",
            "1404/08/30",
            "--out",
            &self.p("rec.json"),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        serde_json::from_str(
            std::fs::read_to_string(self.path("rec.json"))
                .unwrap()
                .trim(),
        )
        .unwrap()
    }
}

/// Every form in which `bytes` could show in a trace: spaced and compact
/// hex in either case, and the text itself when it is text.
fn forms(bytes: &[u8]) -> Vec<String> {
    let spaced = cardsmith::hex::spaced(bytes);
    let compact = cardsmith::hex::compact(bytes);
    let mut v = vec![
        spaced.clone(),
        spaced.to_lowercase(),
        compact.clone(),
        compact.to_lowercase(),
    ];
    if let Ok(s) = std::str::from_utf8(bytes) {
        v.push(s.to_string());
    }
    v
}

/// The holder's personal values the trace must not show: names in Persian
/// and Latin, the national ID, a piece of the photo (as bytes and as the
/// record's base64).
fn personal_values(rec: &Value) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for name in ["given_name", "family_name"] {
        for script in ["fa", "latin"] {
            let s = rec[name][script].as_str().unwrap();
            out.push((format!("{name}.{script}"), forms(s.as_bytes())));
        }
    }
    let nid = rec["national_id"].as_str().unwrap();
    out.push(("national_id".into(), forms(nid.as_bytes())));
    let b64 = rec["photo"]["data"].as_str().unwrap();
    let photo = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    // Past the JPEG header, which every photo shares; short enough to sit
    // in one APDU.
    let piece = &photo[600..624];
    let mut f = forms(piece);
    f.push(b64[800..840].to_string());
    out.push(("photo".into(), f));
    out
}

/// A whole perso (with its verification) and a separate verify and read,
/// at trace level; all output, stdout and stderr.
fn traced_session(s: &Setup, flag: bool) -> String {
    let mut text = String::new();
    let image = s.p(if flag { "card-flag.json" } else { "card.json" });
    let rec = s.p("rec.json");
    let runs: [Vec<&str>; 3] = [
        vec!["perso", "--record", &rec, "--sim-image", &image],
        vec!["verify", "--record", &rec, "--sim-image", &image],
        vec!["read", "--sim-image", &image, "--json"],
    ];
    for args in runs {
        let mut args = args.clone();
        if flag {
            args.insert(0, "--trace-personal-data");
        }
        let o = s.run_env(&args, &[("RUST_LOG", "trace")]);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("cardsmith::apdu") && err.contains("TRACE"),
            "no APDU trace: {err}"
        );
        if args[0] != "read" {
            // `read` prints what the card holds on stdout, by design; the
            // trace is on stderr.
            text.push_str(&stdout(&o));
        }
        text.push_str(&err);
    }
    text
}

#[test]
fn traces_show_personal_data_only_with_the_flag() {
    let s = Setup::new();
    let rec = s.record();
    let values = personal_values(&rec);

    let plain = traced_session(&s, false);
    for (what, forms) in &values {
        for f in forms {
            assert!(
                !plain.contains(f.as_str()),
                "{what} appears in the trace as {f:?} without --trace-personal-data"
            );
        }
    }
    assert!(plain.contains("PERSONAL("), "nothing marked personal");
    assert!(
        !plain.contains("--trace-personal-data"),
        "warning without the flag"
    );

    let shown = traced_session(&s, true);
    for (what, forms) in &values {
        assert!(
            forms.iter().any(|f| shown.contains(f.as_str())),
            "{what} does not appear in the trace with --trace-personal-data"
        );
    }
    assert!(
        shown.contains("warning: --trace-personal-data"),
        "no warning at start"
    );
    // Secrets stay redacted with the flag: the transport PINs and the
    // templates go as REDACTED data fields.
    assert!(
        shown.contains("REDACTED("),
        "secrets are no longer redacted"
    );
}

/// The error document of a failed command: exactly one JSON document on
/// stdout, with kind, message and the exit code the process exited with.
fn error_doc(o: &Output) -> Value {
    let out = stdout(o);
    let mut docs = serde_json::Deserializer::from_str(&out).into_iter::<Value>();
    let doc = docs
        .next()
        .unwrap_or_else(|| panic!("no JSON on stdout; stderr: {}", stderr(o)))
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out}"));
    assert!(docs.next().is_none(), "more than one JSON document: {out}");
    let code = o.status.code().expect("exit code");
    let err = &doc["error"];
    assert!(err.is_object(), "no error object: {doc}");
    assert_eq!(err["exit_code"], code, "{doc}");
    assert!(err["kind"].is_string(), "{doc}");
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{doc}"
    );
    doc
}

fn expect(o: &Output, code: i32, kind: &str) -> Value {
    assert_eq!(o.status.code(), Some(code), "{}\n{}", stdout(o), stderr(o));
    let d = error_doc(o);
    assert_eq!(d["error"]["kind"], kind, "{d}");
    d
}

#[test]
fn json_errors_of_sample_records() {
    let s = Setup::new();
    let o = s.run(&["sample-records", "--json", "--request-date", "1404/13/01"]);
    expect(&o, 2, "bad_input");
    let o = s.run(&["sample-records", "--json", "--count", "many"]);
    let d = expect(&o, 2, "usage");
    assert_eq!(d["error"]["field"], "--count <COUNT>", "{d}");
    // An --out path under a file cannot be created.
    std::fs::write(s.path("plain-file"), "x").unwrap();
    let out = s.p("plain-file/batch.jsonl");
    let o = s.run(&["sample-records", "--json", "--count", "1", "--out", &out]);
    let d = expect(&o, 1, "io");
    assert_eq!(d["error"]["file"], out.as_str(), "{d}");
}

#[test]
fn json_errors_of_perso_verify_and_read() {
    let s = Setup::new();
    let mut rec = s.record();
    rec["national_id"] = Value::String("1111111111".into());
    let bad = s.path("bad.json");
    std::fs::write(&bad, format!("{rec}\n")).unwrap();
    let image = s.p("card.json");
    for cmd in ["perso", "verify"] {
        let o = s.run(&[
            cmd,
            "--json",
            "--record",
            bad.to_str().unwrap(),
            "--sim-image",
            &image,
        ]);
        let d = expect(&o, 2, "record_refused");
        let e = &d["error"];
        assert_eq!(e["file"], bad.to_str().unwrap(), "{d}");
        assert_eq!(e["line"], 1, "{d}");
        assert_eq!(e["field"], "national_id", "{d}");
        assert_eq!(e["problems"][0]["record_id"], "R-000001", "{d}");
        // The refusal does not quote the photo.
        let photo = rec["photo"]["data"].as_str().unwrap();
        assert!(!stdout(&o).contains(&photo[..40]));
    }
    // A missing record file: exit 1, the file named.
    let missing = s.p("missing.json");
    let o = s.run(&[
        "perso",
        "--json",
        "--record",
        &missing,
        "--sim-image",
        &image,
    ]);
    let d = expect(&o, 1, "io");
    assert_eq!(d["error"]["file"], missing.as_str(), "{d}");
    // A card image that is not one: exit 1, the image named.
    std::fs::write(s.path("junk.json"), "{").unwrap();
    let o = s.run(&["read", "--json", "--sim-image", &s.p("junk.json")]);
    let d = expect(&o, 1, "card_image");
    assert_eq!(d["error"]["file"], s.p("junk.json").as_str(), "{d}");
    // No such reader: exit 3, the reader named.
    let o = s.run(&["read", "--json", "--reader", "No Such Reader 99"]);
    let d = expect(&o, 3, o_kind_absent(&o));
    if d["error"]["kind"] == "no_reader" {
        assert_eq!(d["error"]["reader"], "No Such Reader 99", "{d}");
    }
    // A card that refuses: perso onto a card that is already personalized
    // stops at the blank check with the card's status (exit 4).
    s.record();
    let good = s.p("rec.json");
    let o = s.run(&["perso", "--record", &good, "--sim-image", &image]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = s.run(&["perso", "--json", "--record", &good, "--sim-image", &image]);
    let d = expect(&o, 4, "card_status");
    assert!(d["error"]["stage"].is_string(), "{d}");
    assert_eq!(d["personalized"], false, "{d}");
}

/// "no_reader" when pcscd runs, "no_service" when it does not: both exit 3.
fn o_kind_absent(o: &Output) -> &'static str {
    if stdout(o).contains("no_service") {
        "no_service"
    } else {
        "no_reader"
    }
}

#[test]
fn json_errors_of_line_and_activate() {
    let s = Setup::new();
    // A journal that cannot be created: exit 1, the journal named.
    std::fs::write(s.path("plain-file"), "x").unwrap();
    let j = s.p("plain-file/journal.sqlite");
    let o = s.run(&["line", "status", "--json", "--journal", &j]);
    let d = expect(&o, 1, "journal");
    assert_eq!(d["error"]["file"], j.as_str(), "{d}");
    // Bad usage.
    let o = s.run(&["line", "run", "--json"]);
    expect(&o, 2, "usage");
    let o = s.run(&[
        "line",
        "requeue",
        "R-9",
        "--json",
        "--journal",
        &s.p("j.sqlite"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    error_doc(&o);
    // A batch file that does not exist.
    let o = s.run(&[
        "line",
        "run",
        &s.p("nope.jsonl"),
        "--sim-readers",
        "1",
        "--json",
        "--journal",
        &s.p("j.sqlite"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    error_doc(&o);
    // The counter: a bad office code and a PIN file that is not private.
    let pins = s.path("pins");
    std::fs::write(&pins, "480913\n").unwrap();
    let o = s.run(&[
        "activate",
        "card",
        "--json",
        "--office",
        "12",
        "--reader",
        "0",
        "--template",
        "x.iso",
        "--pins-file",
        pins.to_str().unwrap(),
    ]);
    expect(&o, 2, "bad_input");
    let o = s.run(&[
        "activate",
        "replace",
        "--json",
        "--office",
        "1021",
        "--reason",
        "loss",
        "--lost",
        "--national-id",
        "5328297441",
        "--journal",
        &s.p("j.sqlite"),
    ]);
    // No delivered card for that holder: refused, exit 4, one document.
    assert_eq!(o.status.code(), Some(4), "{}\n{}", stdout(&o), stderr(&o));
    let d = expect(&o, 4, "refused");
    assert_eq!(d["replacement"], false, "{d}");
    // A record the journal does not have: exit 3.
    let o = s.run(&[
        "line",
        "record",
        "R-404",
        "--json",
        "--journal",
        &s.p("j.sqlite"),
    ]);
    let d = expect(&o, 3, "not_found");
    assert_eq!(d["error"]["record_id"], "R-404", "{d}");
    let o = s.run(&[
        "activate",
        "card",
        "--json",
        "--office",
        "1021",
        "--reader",
        "No Such Reader 99",
        "--template",
        "x.iso",
        "--pins-file",
        pins.to_str().unwrap(),
    ]);
    assert!(
        matches!(o.status.code(), Some(2) | Some(3)),
        "{}",
        stderr(&o)
    );
    error_doc(&o);
}

#[test]
fn json_errors_of_scripts_and_tools() {
    let s = Setup::new();
    // A script that does not parse: exit 2, file, line and column.
    let bad = s.path("bad.apdu");
    std::fs::write(&bad, "00 A4 04 00\n00 A4 0Z\n").unwrap();
    let o = s.run(&["run", "--json", "--sim", bad.to_str().unwrap()]);
    let d = expect(&o, 2, "script");
    assert_eq!(d["error"]["file"], bad.to_str().unwrap(), "{d}");
    assert_eq!(d["error"]["line"], 2, "{d}");
    assert!(d["error"]["column"].is_number(), "{d}");
    // An unmet expectation is the script's verdict: exit 4 and its report,
    // one document.
    let fail = s.path("fail.apdu");
    std::fs::write(&fail, "00 A4 00 04 02 7F 7F\n# expect 9000\n").unwrap();
    let o = s.run(&["run", "--json", "--sim", fail.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(matches!(o.status.code(), Some(0) | Some(4)), "{out}");
    let _: Value = serde_json::from_str(out.trim()).expect("one JSON document");
    // A report that cannot be written: exit 1, the file named.
    std::fs::write(s.path("plain-file"), "x").unwrap();
    let rep = s.p("plain-file/report.json");
    let smoke = s.path("smoke.apdu");
    std::fs::write(&smoke, "00 84 00 00 08\n").unwrap();
    let o = s.run(&[
        "run",
        "--json",
        "--sim",
        "--report-json",
        &rep,
        smoke.to_str().unwrap(),
    ]);
    let d = expect(&o, 1, "io");
    assert_eq!(d["error"]["file"], rep.as_str(), "{d}");
    assert!(
        d["report"].is_object(),
        "the report is kept in the document: {d}"
    );
    // Transcripts.
    let o = s.run(&["replay", "--json", &s.p("none.json")]);
    let d = expect(&o, 1, "io");
    assert_eq!(d["error"]["file"], s.p("none.json").as_str(), "{d}");
    let o = s.run(&["diff", "--json", &s.p("a.json"), &s.p("b.json")]);
    expect(&o, 1, "io");
    // ATR and send: bad hex names the column.
    let o = s.run(&["atr", "--json", "3B 0Z"]);
    let d = expect(&o, 2, "bad_hex");
    assert_eq!(d["error"]["column"], 5, "{d}");
    // (Checked before any reader is touched.)
    let o = s.run(&["send", "--json", "00 A4 0"]);
    let d = expect(&o, 2, "bad_hex");
    assert_eq!(d["error"]["column"], 7, "{d}");
    let o = s.run(&["atr", "--json", "--bogus"]);
    let d = expect(&o, 2, "usage");
    assert_eq!(d["error"]["field"], "--bogus", "{d}");
    let o = s.run(&[
        "send",
        "--json",
        "--reader",
        "No Such Reader 99",
        "00 84 00 00 08",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    error_doc(&o);
    // Help is not an error.
    let o = s.run(&["atr", "--json", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("Usage"));
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn scp03_key_file_errors_name_the_scp03_key_file() {
    let s = Setup::new();
    let keys = s.path("batch.keys");
    write_private(&keys, "kvn = 30\nmaster = 00112233\n");
    let o = s.run(&[
        "scp03",
        "check",
        "--json",
        "--reader",
        "0",
        "--scp03-keys",
        keys.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    let d = error_doc(&o);
    let msg = d["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "SCP03 key file {}: line 2: master",
            keys.display()
        )),
        "{msg}"
    );
    assert!(!msg.contains("issuer key"), "{msg}");
    assert_eq!(d["error"]["file"], keys.to_str().unwrap(), "{d}");
    assert_eq!(d["error"]["line"], 2, "{d}");
    assert!(!msg.contains("00112233"), "the key value is quoted: {msg}");

    // A key file that others may read, and one that cannot be read.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = s.run(&[
        "perso",
        "--record",
        "x.json",
        "--sim-image",
        &s.p("c.json"),
        "--scp03-keys",
        keys.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "SCP03 key file {}: readable by group or others",
            keys.display()
        )),
        "{err}"
    );
    assert!(!err.contains("issuer key"), "{err}");

    // The default key file in a data directory that cannot be created.
    std::fs::write(s.path("plain-file"), "x").unwrap();
    let o = cardsmith_env(
        &["scp03", "check", "--reader", "0"],
        &[("CARDSMITH_DATA_DIR", s.path("plain-file"))],
    );
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "SCP03 key file {}: cannot read",
            s.path("plain-file").join("scp03-keys").display()
        )),
        "{err}"
    );
    assert!(!err.contains("issuer key"), "{err}");
}

/// A script that marks values personal (`personal(…)` and a `--vars` entry
/// with `"personal": true`): its trace, report and transcript show
/// PERSONAL(n bytes) instead of them, unless --trace-personal-data.
#[test]
fn scripts_mark_values_personal() {
    let s = Setup::new();
    let script = s.path("personal.apdu");
    std::fs::write(
        &script,
        "# the holder's name goes to the card\n\
         let name = personal(\"Mina Abbasi\")\n\
         apdu(00 DA 01 01, ${name})\n\
         apdu(00 DA 01 02, ${nid})\n\
         00 84 00 00 08\n",
    )
    .unwrap();
    let vars = s.path("vars.json");
    std::fs::write(
        &vars,
        r#"{"nid": {"text": "5328297441", "personal": true}}"#,
    )
    .unwrap();
    let values = ["Mina Abbasi", "5328297441"];
    let run = |flag: bool, tag: &str| {
        let rec = s.p(&format!("{tag}-transcript.json"));
        let rep = s.p(&format!("{tag}-report.json"));
        let mut args = vec![
            "run",
            "--sim",
            "--keep-going",
            "--vars",
            vars.to_str().unwrap(),
            "--record",
            &rec,
            "--report-json",
            &rep,
            script.to_str().unwrap(),
        ];
        if flag {
            args.insert(0, "--trace-personal-data");
        }
        let o = s.run_env(&args, &[("RUST_LOG", "cardsmith::apdu=trace")]);
        assert!(
            matches!(o.status.code(), Some(0) | Some(4)),
            "{}",
            stderr(&o)
        );
        format!(
            "{}{}{}{}",
            stdout(&o),
            stderr(&o),
            std::fs::read_to_string(&rec).unwrap(),
            std::fs::read_to_string(&rep).unwrap()
        )
    };
    let plain = run(false, "plain");
    for v in values {
        for f in forms(v.as_bytes()) {
            assert!(!plain.contains(&f), "{v:?} shows as {f:?}:\n{plain}");
        }
    }
    assert!(plain.contains("PERSONAL(11 bytes)"), "{plain}");
    assert!(plain.contains("PERSONAL(10 bytes)"), "{plain}");
    // The unmarked command is shown as it is.
    assert!(plain.contains("00 84 00 00 08"), "{plain}");

    let shown = run(true, "shown");
    for v in values {
        let spaced = cardsmith::hex::spaced(v.as_bytes());
        assert!(
            shown.contains(&spaced),
            "{v:?} not shown with the flag:\n{shown}"
        );
    }
}
