//! Scripts through the real pcscd: scriptor and `cardsmith run` agree on a
//! scriptor-format corpus, the apdu-scripts suite passes on the simulated
//! card behind vpcd, a failing expectation is reported with file:line and
//! counted in JUnit, and a transcript recorded through pcscd replays against
//! the in-process card with identical responses.

mod common;

use cardsmith::sim::faults::Faults;
use cardsmith::sim::SimConfig;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn compact(hex: &str) -> String {
    hex.chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect::<String>()
        .to_uppercase()
}

/// scriptor's output as (command, response) pairs. An answer runs from its
/// "< " line to the line holding " : " (scriptor wraps long answers and
/// echoes the script's own lines in between). A reset is ("RESET", ATR).
fn scriptor_pairs(out: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut cmd: Option<String> = None;
    let mut answer: Option<String> = None;
    for line in out.lines() {
        if let Some(a) = answer.as_mut() {
            a.push(' ');
            a.push_str(line);
        } else if let Some(c) = line.strip_prefix("> ") {
            cmd = Some(if c.trim() == "RESET" {
                "RESET".into()
            } else {
                compact(c)
            });
            continue;
        } else if let Some(a) = line.strip_prefix("< ") {
            answer = Some(a.to_string());
        } else {
            continue;
        }
        let a = answer.clone().unwrap_or_default();
        let done = a.contains(" : ") || a.starts_with("OK: ");
        if done {
            let resp = match a.strip_prefix("OK: ") {
                Some(atr) => compact(atr),
                None => compact(a.split(" : ").next().unwrap_or("")),
            };
            pairs.push((cmd.take().unwrap_or_default(), resp));
            answer = None;
        }
    }
    pairs
}

/// A transcript written by `cardsmith run --record` as the same pairs.
fn transcript_pairs(path: &Path) -> Vec<(String, String)> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            if e["kind"] == "reset" {
                (
                    "RESET".to_string(),
                    compact(e["response"].as_str().unwrap()),
                )
            } else {
                (
                    compact(e["command"].as_str().unwrap()),
                    compact(&format!(
                        "{} {}",
                        e["response"].as_str().unwrap(),
                        e["sw"].as_str().unwrap()
                    )),
                )
            }
        })
        .collect()
}

fn run_scriptor(script: &Path) -> Vec<(String, String)> {
    let card = insert(blank(SimConfig::default()), 0, Faults::none());
    let o = Command::new("scriptor")
        .args(["-r", &reader(0)])
        .arg(script)
        .output()
        .expect("scriptor is installed (scripts/setup.sh)");
    drop(card);
    assert!(o.status.success(), "{}", stderr(&o));
    scriptor_pairs(&stdout(&o))
}

fn run_cardsmith(script: &Path, record: &Path) -> std::process::Output {
    let card = insert(blank(SimConfig::default()), 0, Faults::none());
    let o = cardsmith(&[
        "run",
        "--reader",
        "0",
        "--record",
        record.to_str().unwrap(),
        script.to_str().unwrap(),
    ]);
    drop(card);
    o
}

#[test]
fn scriptor_and_cardsmith_send_and_receive_the_same() {
    let _g = pcsc();
    let dir = tempfile::tempdir().unwrap();
    for name in ["features.script", "pins.script"] {
        let script = root().join("tests/data/scriptor").join(name);
        let theirs = run_scriptor(&script);
        let rec = dir.path().join(format!("{name}.json"));
        let o = run_cardsmith(&script, &rec);
        assert!(o.status.success(), "{name}: {}\n{}", stdout(&o), stderr(&o));
        let ours = transcript_pairs(&rec);
        assert!(
            theirs.len() >= 9,
            "{name}: scriptor ran {} commands",
            theirs.len()
        );
        assert_eq!(ours, theirs, "{name}: APDU sequence and responses differ");
    }
}

#[test]
fn apdu_scripts_suite_passes_through_pcscd() {
    let _g = pcsc();
    let dir = tempfile::tempdir().unwrap();
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(root().join("apdu-scripts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "apdu"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 3);
    for s in scripts {
        let junit = dir.path().join("junit.xml");
        let card = insert(blank(SimConfig::default()), 0, Faults::none());
        let o = cardsmith(&[
            "run",
            "--reader",
            "0",
            "--junit",
            junit.to_str().unwrap(),
            s.to_str().unwrap(),
        ]);
        drop(card);
        assert!(
            o.status.success(),
            "{}: {}\n{}",
            s.display(),
            stdout(&o),
            stderr(&o)
        );
        let x = std::fs::read_to_string(&junit).unwrap();
        let cases = script_support::junit_cases(&x).unwrap_or_else(|e| panic!("{e}\n{x}"));
        assert!(cases.iter().all(|c| c.outcome == "passed"), "{x}");
        // One testcase per `test` line, and one for the top level of
        // smoke.apdu, which sends commands before its first test.
        let text = std::fs::read_to_string(&s).unwrap();
        let tests = text.lines().filter(|l| l.starts_with("test ")).count();
        let top = usize::from(s.ends_with("smoke.apdu"));
        assert_eq!(cases.len(), tests + top, "{}: {x}", s.display());
    }
}

#[test]
fn failing_expectation_names_file_and_line_and_counts_in_junit() {
    let _g = pcsc();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.apdu");
    std::fs::write(
        &script,
        "test \"select\"\n00 A4 00 0C 02 3F 00 => 9000\n00 A4 00 0C 02 12 34 => 9000\n",
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    let card = insert(blank(SimConfig::default()), 0, Faults::none());
    let o = cardsmith(&[
        "run",
        "--reader",
        "0",
        "--junit",
        junit.to_str().unwrap(),
        script.to_str().unwrap(),
    ]);
    drop(card);
    assert_eq!(o.status.code(), Some(4), "{}\n{}", stdout(&o), stderr(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("bad.apdu:3"), "{all}");
    assert!(all.contains("6A82"), "{all}");
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.starts_with("<?xml"), "{x}");
    assert!(x.contains("failures=\"1\""), "{x}");
    // Well-formed XML with one failing testcase.
    let doc = roxmltree::Document::parse(&x)
        .unwrap_or_else(|e| panic!("JUnit not well-formed: {e}\n{x}"));
    let failures = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .count();
    assert_eq!(failures, 1, "{x}");
    let root_el = doc.root_element();
    assert_eq!(root_el.tag_name().name(), "testsuites");
    assert_eq!(root_el.attribute("failures"), Some("1"));
}

#[test]
fn transcript_recorded_through_pcscd_replays_in_process() {
    let _g = pcsc();
    let dir = tempfile::tempdir().unwrap();
    for name in ["features.script", "pins.script"] {
        let script = root().join("tests/data/scriptor").join(name);
        let rec = dir.path().join(format!("{name}.pcsc.json"));
        let o = run_cardsmith(&script, &rec);
        assert!(o.status.success(), "{}", stderr(&o));
        let replayed = dir.path().join(format!("{name}.replay.json"));
        let o = cardsmith(&[
            "replay",
            rec.to_str().unwrap(),
            "--out",
            replayed.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
        let o = cardsmith(&["diff", rec.to_str().unwrap(), replayed.to_str().unwrap()]);
        assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
        let a = transcript_pairs(&rec);
        let b = transcript_pairs(&replayed);
        assert_eq!(a, b, "{name}");
    }
}

#[path = "script_support/mod.rs"]
mod script_support;

/// Four test cases; the top level only binds a variable. APDUs: 1–2 in
/// "one", 3–4 in "two", 5 in "three", 6 in "four".
const FOUR_CASES: &str = "let mf = 3F 00\ntest \"one\"\n00 A4 00 0C 02 ${mf} => 9000\n00 84 00 00 08 => 9000\ntest \"two\"\n00 A4 00 0C 02 3F 00 => 9000\n00 84 00 00 08 => 9000\ntest \"three\"\n00 84 00 00 08 => 9000\ntest \"four\"\n00 84 00 00 08 => 9000\n";

#[test]
fn card_pulled_mid_run_through_pcscd_is_an_error_in_every_report() {
    let _g = pcsc();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("four.apdu");
    std::fs::write(&script, FOUR_CASES).unwrap();
    let junit = dir.path().join("junit.xml");
    let json = dir.path().join("report.json");
    let faults = Faults {
        remove_at: Some(4),
        ..Faults::none()
    };
    let card = insert(blank(SimConfig::default()), 0, faults);
    let o = cardsmith(&[
        "run",
        "--reader",
        "0",
        "--junit",
        junit.to_str().unwrap(),
        "--report-json",
        json.to_str().unwrap(),
        script.to_str().unwrap(),
    ]);
    drop(card);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(3), "{all}");
    assert!(all.contains("was removed"), "{all}");
    assert!(
        all.contains("4 tests, 0 failed, 1 error, 2 skipped"),
        "{all}"
    );
    assert!(all.contains("ERROR two"), "{all}");

    let x = std::fs::read_to_string(&junit).unwrap();
    let cases = script_support::junit_cases(&x).unwrap_or_else(|e| panic!("{e}\n{x}"));
    let got: Vec<(&str, &str)> = cases
        .iter()
        .map(|c| (c.name.as_str(), c.outcome.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("one", "passed"),
            ("two", "error"),
            ("three", "skipped"),
            ("four", "skipped")
        ],
        "{x}"
    );
    assert!(
        cases[1].message.as_deref().unwrap().contains("was removed"),
        "{x}"
    );

    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let s = &j["summary"];
    assert_eq!(s["passed"], false, "{s}");
    assert_eq!(s["tests"], 4, "{s}");
    assert_eq!(s["errors"], 1, "{s}");
    assert_eq!(s["failures"], 0, "{s}");
    assert_eq!(s["skipped"], 2, "{s}");
}

/// The trace of a run; when `marker` appears in it, another PC/SC
/// connection resets the card in reader 0 (the run holds no transaction
/// while it writes a script's `== FILE` line).
struct ResetOn {
    marker: &'static str,
    seen: String,
    done: bool,
}

impl std::io::Write for ResetOn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.seen.push_str(&String::from_utf8_lossy(buf));
        if !self.done && self.seen.contains(self.marker) {
            self.done = true;
            let mut other = PcscTransport::connect(Some(&reader(0)), ConnectOptions::default())
                .expect("a second connection to the card");
            other
                .reconnect(true)
                .expect("the other process resets the card");
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

use cardsmith::script::eval::Env;
use cardsmith::script::{execute, parse_str, RunConfig, Target};
use cardsmith::transport::pcsc::{ConnectOptions, PcscTransport};
use cardsmith::transport::{Channel, ExchangeOptions, Transport};

#[test]
fn card_reset_by_another_process_mid_run_through_pcscd_is_an_error() {
    let _g = pcsc();
    let card = insert(blank(SimConfig::default()), 0, Faults::none());
    let a = "test \"a1\"\n00 A4 00 0C 02 3F 00 => 9000\n00 84 00 00 08 => 9000\ntest \"a2\"\n00 84 00 00 08 => 9000\n";
    let b = "test \"b1\"\n00 84 00 00 08 => 9000\ntest \"b2\"\n00 84 00 00 08 => 9000\n";
    let scripts = vec![
        ("a.apdu".to_string(), parse_str(a, "a.apdu").unwrap()),
        ("b.apdu".to_string(), parse_str(b, "b.apdu").unwrap()),
    ];
    let t = PcscTransport::connect(Some(&reader(0)), ConnectOptions::default()).unwrap();
    let mut ch = Channel::new(Box::new(t) as Box<dyn Transport>, ExchangeOptions::raw());
    let mut trace = ResetOn {
        marker: "== b.apdu",
        seen: String::new(),
        done: false,
    };
    let (r, err) = execute(
        &scripts,
        Env::new(),
        Target::Card(&mut ch),
        RunConfig::default(),
        &mut trace,
    );
    drop(ch);
    drop(card);
    assert!(trace.done, "{}", trace.seen);
    // As the command line has it (the runner's error is a plain
    // ExchangeError; anyhow is the command line's).
    let err = anyhow::Error::new(err.expect("the run ends with the reset"));
    assert!(
        format!("{err:#}").contains("reset by another process"),
        "{err:#}"
    );
    assert_eq!(cardsmith::cli::exit_code(&err), 5);
    let x = r.to_junit();
    let cases = script_support::junit_cases(&x).unwrap_or_else(|e| panic!("{e}\n{x}"));
    let got: Vec<(&str, &str, &str)> = cases
        .iter()
        .map(|c| (c.suite.as_str(), c.name.as_str(), c.outcome.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("a.apdu", "a1", "passed"),
            ("a.apdu", "a2", "passed"),
            ("b.apdu", "b1", "error"),
            ("b.apdu", "b2", "skipped")
        ],
        "{x}"
    );
    assert!(
        cases[2]
            .message
            .as_deref()
            .unwrap()
            .contains("reset by another process"),
        "{x}"
    );
    let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(j["summary"]["passed"], false);
    assert_eq!(j["summary"]["errors"], 1);
    assert_eq!(j["summary"]["tests"], 4);
}
