//! The runner, in process: expectations, captures, chunking, secrets,
//! reports, exit codes, transcripts.

#[path = "script_support/mod.rs"]
mod common;

use cardsmith::cli::script::{run, RunArgs};
use cardsmith::script::eval::{Env, Value};
use cardsmith::script::report::CaseStatus;
use cardsmith::script::transcript::{self, Transcript};
use cardsmith::script::{execute, parse_str, RunConfig, Target};
use cardsmith::sim::SimConfig;
use cardsmith::transport::{Channel, ExchangeOptions};
use cardsmith::transport::{Protocol, Session, Transport, TransportError};
use common::*;
use std::sync::{Arc, Mutex};

const CREATE_EF: &str = "00 A4 00 0C 02 3F 00 => 9000\napdu(00 E0 00 00, tlv(62, tlv(80, 0400) tlv(82, 01) tlv(83, 2001))) => 9000\n";

#[test]
fn expectations_pass_and_fail_with_location_and_details() {
    let (r, trace) = run_default(
        "test \"one\"\n00 A4 00 0C 02 3F 00 => 9000\n00 A4 00 0C 02 12 34 => 9000  # not there\n00 84 00 00 08 => 9000\n",
    );
    assert!(!r.summary.passed);
    assert_eq!(r.summary.failures, 1);
    // The top level sends nothing: "one" is the only case.
    assert_eq!(r.suites[0].cases.len(), 1);
    let case = &r.suites[0].cases[0];
    assert_eq!(case.name, "one");
    assert_eq!(case.status, CaseStatus::Failed);
    let f = &case.failures[0];
    assert_eq!((f.file.as_str(), f.line, f.col), ("inline.apdu", 3, 1));
    assert_eq!(f.command.as_deref(), Some("00 A4 00 0C 02 12 34"));
    assert_eq!(f.expected.as_deref(), Some("9000"));
    assert!(f.got.as_deref().unwrap().starts_with("6A82"), "{f:?}");
    assert!(
        f.message.contains("expected status 9000, got 6A82"),
        "{f:?}"
    );
    // Stopped: GET CHALLENGE never sent.
    assert_eq!(wire_commands(&r).len(), 2);
    assert!(trace.contains("FAILED"), "{trace}");
}

#[test]
fn keep_going_runs_everything_and_skips_nothing() {
    let text = "test \"a\"\n00 A4 00 0C 02 12 34 => 9000\ntest \"b\"\n00 84 00 00 08 => 9000\ntest \"c\"\n00 84 00 00 08 => 6700\n";
    let (r, _) = run_text(text, SimConfig::default(), Env::new(), true);
    assert_eq!(wire_commands(&r).len(), 3);
    assert_eq!(r.summary.failures, 2);
    assert_eq!(r.summary.skipped, 0);
    // Without --keep-going the later tests are skipped.
    let (r, _) = run_default(text);
    assert_eq!(r.summary.failures, 1);
    assert_eq!(r.summary.skipped, 2);
    assert_eq!(r.summary.tests, 3);
}

#[test]
fn data_patterns_and_alternatives() {
    let (r, _) = run_default(
        "00 A4 00 04 02 3F 00 00 => 9000 [62 .. 82 01 38 *]\n00 A4 00 04 02 3F 00 00 => 6A82|9000 [6x * 8A 01 0x *]\n00 20 00 01 => 6A88|63Cx\n",
    );
    assert!(r.summary.passed, "{:?}", r.suites[0].cases[0].failures);
    let (r, _) = run_default("00 A4 00 04 02 3F 00 00 => 9000 [62 .. 82 01 01 *]\n");
    let f = &r.suites[0].cases[0].failures[0];
    assert!(
        f.message.contains("does not match [62 xx 82 01 01 *]"),
        "{f:?}"
    );
}

#[test]
fn captures_feed_later_commands() {
    let (r, trace) = run_default(&format!(
        "{CREATE_EF}00 A4 00 04 02 20 01 00 => 9000\ncapture fid = tlv 62/83\ncapture size = tlv 62/80\ncapture sw = sw\ncapture first2 = data ..2\n00 A4 02 0C 02 ${{fid}} => 9000\n00 D6 00 00 02 ${{first2}} => 9000\n00 B0 00 00 02 => 9000 [${{first2}}]\n"
    ));
    assert!(r.summary.passed, "{trace}");
    assert!(trace.contains("captured ${fid} = 20 01"), "{trace}");
    assert!(trace.contains("captured ${size} = 04 00"), "{trace}");
}

#[test]
fn a_failed_capture_is_a_failure() {
    let (r, _) = run_default(
        "00 A4 00 04 02 3F 00 00 => 9000\ncapture x = tlv 62/99\ncapture y = data 0..500\n",
    );
    assert_eq!(r.summary.failures, 1);
    let f = &r.suites[0].cases[0].failures;
    assert!(f[0].message.contains("no data object 62/99"), "{f:?}");
    // With keep-going, a later use of the variable says why it has no value.
    let (r, _) = run_text(
        "00 A4 00 04 02 3F 00 00 => 9000\ncapture x = tlv 62/99\n00 A4 00 0C 02 ${x}\n",
        SimConfig::default(),
        Env::new(),
        true,
    );
    let f = &r.suites[0].cases[0].failures;
    assert_eq!(f.len(), 2);
    assert!(
        f[1].message.contains("capture at inline.apdu:2:1 failed"),
        "{f:?}"
    );
}

#[test]
fn chunked_update_binary_on_a_card_without_extended_length() {
    let data: String = (0..700)
        .map(|i| format!("{:02X}", (i * 13 % 251) as u8))
        .collect();
    let text = format!(
        "{CREATE_EF}let big = {data}\nupdate-binary ${{big}}\noption get-response on\n00 B0 00 00 00 => 9000\n00 B0 01 00 00 => 9000\n00 B0 02 00 BC => 9000\n"
    );
    let (r, trace) = run_text(&text, no_extended(), Env::new(), false);
    assert!(r.summary.passed, "{trace}");
    let cmds = wire_commands(&r);
    let updates: Vec<&String> = cmds.iter().filter(|c| c.starts_with("00 D6")).collect();
    assert_eq!(updates.len(), 3, "{updates:?}");
    assert!(updates[0].starts_with("00 D6 00 00 FF"));
    assert!(updates[1].starts_with("00 D6 00 FF FF"));
    assert!(updates[2].starts_with("00 D6 01 FE BE"));
    // What was written is what is read back.
    let reads: String = r.suites[0].cases[0]
        .steps
        .iter()
        .filter(|s| s.command.as_deref().is_some_and(|c| c.starts_with("00 B0")))
        .map(|s| s.data.clone().unwrap().replace(' ', ""))
        .collect();
    assert_eq!(reads, data);
    // The same data in one extended APDU is refused by this card.
    let (r, _) = run_text(
        &format!("{CREATE_EF}00 D6 00 00 00 02 BC {data} => 9000\n"),
        no_extended(),
        Env::new(),
        false,
    );
    assert!(!r.summary.passed);
}

#[test]
fn chunked_update_binary_with_sfi_and_offset() {
    let text = "00 A4 00 0C 02 3F 00\napdu(00 E0 00 00, tlv(62, tlv(80, 0400) tlv(82, 01) tlv(83, 2001) tlv(88, 10)))\n00 A4 00 0C 02 3F 00\nupdate-binary sfi=2 offset=16 max=4 0102030405060708090A\n00 B0 82 10 0A => 9000 [0102030405060708090A]\n";
    let (r, trace) = run_default(text);
    assert!(r.summary.passed, "{trace}");
    let cmds = wire_commands(&r);
    assert_eq!(cmds[3], "00 D6 82 10 04 01 02 03 04");
    assert_eq!(cmds[4], "00 D6 00 14 04 05 06 07 08");
    assert_eq!(cmds[5], "00 D6 00 18 02 09 0A");
}

/// A card that answers 9000 to everything and records what it got.
struct Recorder {
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
}

struct RecSession(Arc<Mutex<Vec<Vec<u8>>>>);

impl Session for RecSession {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.0.lock().unwrap().push(apdu.to_vec());
        Ok(vec![0x90, 0x00])
    }
}

impl Transport for Recorder {
    fn begin(&mut self) -> Result<Box<dyn Session + '_>, TransportError> {
        Ok(Box::new(RecSession(self.sent.clone())))
    }
    fn reconnect(&mut self, _reset: bool) -> Result<(), TransportError> {
        Ok(())
    }
    fn atr(&self) -> Vec<u8> {
        vec![0x3B, 0x00]
    }
    fn protocol(&self) -> Protocol {
        Protocol::T1
    }
    fn reader(&self) -> String {
        "recorder".into()
    }
}

#[test]
fn chunked_store_data_numbers_blocks() {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let mut ch = Channel::new(
        Box::new(Recorder { sent: sent.clone() }),
        ExchangeOptions::raw(),
    );
    let data = "AB".repeat(600);
    let script = parse_str(
        &format!("store-data p1=10 tlv(70, {data})\nstore-data cla=84 max=2 010203\n"),
        "s.apdu",
    )
    .unwrap();
    let (r, err) = execute(
        &[("s.apdu".into(), script)],
        Env::new(),
        Target::Card(&mut ch),
        RunConfig::default(),
        &mut std::io::sink(),
    );
    assert!(err.is_none() && r.summary.passed);
    let sent = sent.lock().unwrap();
    // 604 bytes (70 82 02 58 + 600) in blocks of 255: 255, 255, 94.
    assert_eq!(sent.len(), 5);
    assert_eq!(&sent[0][..5], &[0x80, 0xE2, 0x10, 0x00, 0xFF]);
    assert_eq!(&sent[0][5..9], &[0x70, 0x82, 0x02, 0x58]);
    assert_eq!(&sent[1][..5], &[0x80, 0xE2, 0x10, 0x01, 0xFF]);
    assert_eq!(&sent[2][..5], &[0x80, 0xE2, 0x90, 0x02, 94]);
    assert_eq!(sent[3], vec![0x84, 0xE2, 0x00, 0x00, 0x02, 0x01, 0x02]);
    assert_eq!(sent[4], vec![0x84, 0xE2, 0x80, 0x01, 0x01, 0x03]);
}

const SECRET_SCRIPT: &str = "secret pin\nlet puk = secret(\"87654321\")\n00 A4 00 0C 02 3F 00 => 9000\napdu(00 DA 01 02, tlv(80, ${puk}))\napdu(00 DA 01 01, tlv(80, ${pin}) tlv(82, 02)) => 9000\napdu(00 20 00 01, ${pin}) => 9000\n00 20 00 01 04 ${pin} => 9000\napdu(00 2C 00 01, ${puk} ${pin}) => 6A88\n";

fn leaks(s: &str) -> Vec<&'static str> {
    [
        "35 37 38 31",
        "35373831",
        "5781",
        "57 81",
        "38 37 36 35",
        "38373635",
        "8765",
    ]
    .into_iter()
    .filter(|n| s.contains(n))
    .collect()
}

#[test]
fn sensitive_values_never_appear_in_trace_json_junit_or_transcript() {
    let mut env = Env::new();
    env.set("pin", Value::plain(b"5781".to_vec()));
    let (r, trace) = run_text(SECRET_SCRIPT, SimConfig::default(), env, true);
    assert_eq!(r.summary.failures, 1, "{trace}"); // the deliberate 6A88
    assert!(trace.contains("REDACTED"), "{trace}");
    let json = r.to_json();
    let junit = r.to_junit();
    let record = Transcript::from_report(&r).to_json();
    for (what, s) in [
        ("trace", &trace),
        ("json", &json),
        ("junit", &junit),
        ("record", &record),
    ] {
        assert!(leaks(s).is_empty(), "{what} leaks {:?}:\n{s}", leaks(s));
    }
}

#[test]
fn secret_bytes_echoed_in_a_response_are_hidden() {
    let mut env = Env::new();
    env.set("key", Value::secret(vec![0xC0, 0xFF, 0xEE, 0x11, 0x22]));
    let (r, trace) = run_text(
        &format!("{CREATE_EF}update-binary offset=4 ${{key}}\n00 B0 00 00 0C => 9000 [* ${{key}} *]\ncapture k = data 4..9\n"),
        SimConfig::default(),
        env,
        false,
    );
    assert!(r.summary.passed, "{trace}");
    assert!(!trace.contains("C0 FF EE"), "{trace}");
    assert!(
        trace.contains("00 00 00 00 ** ** ** ** ** 00 00 00"),
        "{trace}"
    );
    assert!(!r.to_json().contains("C0 FF EE"));
}

#[test]
fn a_secret_in_the_header_is_refused() {
    let (r, _) = run_default("let p1 = secret(01)\n00 A4 ${p1} 00 02 3F00\n");
    let f = &r.suites[0].cases[0].failures[0];
    assert!(f.message.contains("header"), "{f:?}");
    assert!(wire_commands(&r).is_empty());
}

#[test]
fn junit_is_well_formed_and_counts() {
    let (r, _) = run_text(
        "00 A4 00 0C 02 3F 00 => 9000\ntest \"<a & \\\"b\\\">\"\n00 A4 00 0C 02 12 34 => 9000\ntest \"ok\"\n00 84 00 00 04 => 9000\ntest \"bad again\"\n00 84 00 00 => 9000\n",
        SimConfig::default(),
        Env::new(),
        true,
    );
    let x = r.to_junit();
    check_xml(&x).unwrap_or_else(|e| panic!("{e}\n{x}"));
    assert_eq!(attr(&x, "testsuites", "tests").as_deref(), Some("4"));
    assert_eq!(attr(&x, "testsuites", "failures").as_deref(), Some("2"));
    assert_eq!(attr(&x, "testsuite", "failures").as_deref(), Some("2"));
    assert!(x.contains("name=\"&lt;a &amp; &quot;b&quot;&gt;\""), "{x}");
    assert_eq!(x.matches("<failure ").count(), 2);
    assert!(x.contains("inline.apdu (top level)"));
    // Skipped tests are marked.
    let (r, _) = run_default("test \"a\"\n00 84 00 00 => 9000\ntest \"b\"\n00 84 00 00 08\n");
    let x = r.to_junit();
    check_xml(&x).unwrap();
    assert_eq!(attr(&x, "testsuites", "skipped").as_deref(), Some("1"));
    assert!(x.contains("<skipped/>"));
}

#[test]
fn reset_and_exit() {
    let (r, trace) = run_default(
        "00 20 00 01\n00 A4 00 0C 02 3F 00\nreset\n00 C0 00 00 01 => 6985\nexit\n00 84 00 00 08 => 6D00\n",
    );
    assert!(r.summary.passed, "{trace}");
    assert!(r.summary.exited);
    assert!(trace.contains("> RESET"), "{trace}");
    assert_eq!(wire_commands(&r).len(), 3);
}

#[test]
fn get_response_is_raw_unless_switched_on() {
    let t0 = SimConfig {
        force_get_response: true,
        ..SimConfig::default()
    };
    let (r, _) = run_text(
        "00 A4 00 04 02 3F 00 00 => 61xx\ncapture n = data\n00 C0 00 00 14 => 9000 [62 *]\noption get-response on\n00 A4 00 04 02 3F 00 00 => 9000 [62 *]\n",
        t0,
        Env::new(),
        false,
    );
    assert!(r.summary.passed, "{:?}", r.suites[0].cases[0].failures);
    let steps = &r.suites[0].cases[0].steps;
    assert_eq!(steps.last().unwrap().wire.len(), 2);
}

#[test]
fn dry_run_needs_no_card() {
    let script = parse_str(
        "let aid = A000000003\n00 A4 04 00 len(${aid}) ${aid} 00 => 9000\ncapture x = tlv 6F/84\n00 A4 04 00 len(${x}) ${x}\nupdate-binary max=2 010203\napdu(00 20 00 01, secret(\"1234\"))\n",
        "d.apdu",
    )
    .unwrap();
    let mut out = Vec::new();
    let (r, err) = execute(
        &[("d.apdu".into(), script)],
        Env::new(),
        Target::DryRun,
        RunConfig {
            keep_going: false,
            dry_run: true,
        },
        &mut out,
    );
    assert!(err.is_none());
    let trace = String::from_utf8(out).unwrap();
    assert!(r.dry_run && r.summary.passed, "{trace}");
    assert!(
        trace.contains("> 00 A4 04 00 05 A0 00 00 00 03 00"),
        "{trace}"
    );
    assert!(trace.contains("needs ${x}"), "{trace}");
    assert!(trace.contains("> 00 D6 00 00 02 01 02"), "{trace}");
    assert!(trace.contains("> 00 D6 00 02 01 03"), "{trace}");
    assert!(
        trace.contains("00 20 00 01 04 REDACTED(4 bytes)"),
        "{trace}"
    );
    assert!(!trace.contains("31 32 33 34"));
}

#[test]
fn trace_has_times_and_decoded_tlv() {
    let (_, trace) = run_default("00 A4 00 04 02 3F 00 00\n");
    assert!(trace.contains(" ms"), "{trace}");
    assert!(trace.contains("(File Control Parameters (FCP))"), "{trace}");
}

// ------------------------------------------------------------ run() end to end

fn args(dir: &std::path::Path, script: &str) -> RunArgs {
    let p = dir.join("s.apdu");
    std::fs::write(&p, script).unwrap();
    RunArgs {
        scripts: vec![p],
        sim: true,
        ..RunArgs::default()
    }
}

#[test]
fn exit_codes_and_report_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(dir.path(), "test \"t\"\n00 A4 00 0C 02 3F 00 => 9000\n");
    a.report_json = Some(dir.path().join("r.json"));
    a.junit = Some(dir.path().join("r.xml"));
    a.record = Some(dir.path().join("rec.json"));
    assert_eq!(run(a.clone(), true).unwrap(), 0);
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(j["summary"]["tests"], 1);
    assert_eq!(j["format"], "cardsmith-script-report");
    check_xml(&std::fs::read_to_string(dir.path().join("r.xml")).unwrap()).unwrap();
    let rec = Transcript::from_json(&std::fs::read_to_string(dir.path().join("rec.json")).unwrap())
        .unwrap();
    assert_eq!(rec.entries.len(), 1);
    assert!(rec.atr.is_some());
    assert_eq!(rec.protocol.as_deref(), Some("T=1"));

    let a = args(dir.path(), "00 A4 00 0C 02 12 34 => 9000\n");
    assert_eq!(run(a, true).unwrap(), 4);
    let a = args(dir.path(), "00 A4 0G\n");
    assert_eq!(run(a, true).unwrap(), 2);
    let a = args(dir.path(), "00 ${nope}\n");
    assert_eq!(run(a, true).unwrap(), 2);
    let mut a = args(dir.path(), "00 A4 00 0C 02 ${fid} => 9000\n");
    a.vars = vec!["fid=3F00".into()];
    assert_eq!(run(a.clone(), true).unwrap(), 0);
    a.vars = vec!["fid=3F0".into()];
    assert_eq!(run(a.clone(), true).unwrap(), 2);
    a.vars = vec!["fid".into()];
    assert_eq!(run(a, true).unwrap(), 2);
    // Dry run without a card.
    let mut a = args(dir.path(), "00 A4 00 0C 02 3F 00 => 9000\n");
    a.sim = false;
    a.dry_run = true;
    assert_eq!(run(a, true).unwrap(), 0);
}

#[test]
fn record_file_of_variables() {
    let dir = tempfile::tempdir().unwrap();
    let vars = dir.path().join("vars.json");
    std::fs::write(
        &vars,
        r#"{"fid": "3F 00", "name": {"text": "ALICE"}, "pin": {"text": "2468", "secret": true}, "city": {"utf8": "Zürich"}}"#,
    )
    .unwrap();
    let mut a = args(
        dir.path(),
        "00 A4 00 0C 02 ${fid} => 9000\napdu(00 DA 01 01, tlv(80, ${pin})) => 9000\napdu(00 20 00 01, ${pin}) => 9000\nlet n = tlv(5F20, ${name}) tlv(5F21, ${city})\n",
    );
    a.vars_file = Some(vars.clone());
    a.report_json = Some(dir.path().join("r.json"));
    assert_eq!(run(a.clone(), true).unwrap(), 0);
    let r = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
    assert!(!r.contains("32 34 36 38"), "{r}");
    for bad in [
        r#"{"x": 5}"#,
        r#"{"x": {"text": "é"}}"#,
        r#"{"x": {"hex": "01", "text": "a"}}"#,
        "[1]",
        "{",
    ] {
        std::fs::write(&vars, bad).unwrap();
        assert_eq!(run(a.clone(), true).unwrap(), 2, "{bad}");
    }
}

#[test]
fn replay_and_diff_transcripts() {
    let (r, _) = run_default(&format!(
        "{CREATE_EF}00 D6 00 00 03 010203\n00 B0 00 00 03\nreset\n00 A4 00 04 02 3F 00 00\n"
    ));
    let t = Transcript::from_report(&r);
    assert_eq!(t.entries.len(), 6);
    let again =
        transcript::replay(&t, cardsmith::sim::SimCard::blank(SimConfig::default())).unwrap();
    let d: Vec<_> = transcript::diff(&t, &again)
        .into_iter()
        .filter(|x| x.what != "response" || !x.left.contains("A5"))
        .collect();
    // Same commands, same status words; the FCP's free-memory bytes may differ.
    assert!(d.iter().all(|x| x.what == "response"), "{d:?}");
    // A changed status word is found.
    let mut other = again.clone();
    other.entries[3].sw = "6A82".into();
    other.entries.pop();
    let d = transcript::diff(&again, &other);
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[0].what, "sw");
    assert_eq!(d[1].what, "missing-right");
}

#[test]
fn errors_about_secret_values_do_not_repeat_them() {
    use cardsmith::script::runner::{var_from_arg, vars_from_json};
    let e = var_from_arg("pin=\"12é4\"", true).unwrap_err();
    assert!(!e.contains("12") && e.contains("withheld"), "{e}");
    let e = var_from_arg("pin=123G5", true).unwrap_err();
    assert!(!e.contains("123") && !e.contains('G'), "{e}");
    let e = var_from_arg("pin=123G5", false).unwrap_err();
    assert!(e.contains("column 4"), "{e}");
    let (n, v) = var_from_arg("pin=\"1234\"", true).unwrap();
    assert_eq!(n, "pin");
    assert!(v.is_sensitive());
    let e = vars_from_json(r#"{"pin": {"hex": "31G2", "secret": true}}"#).unwrap_err();
    assert!(!e.contains("G") || e.contains("withheld"), "{e}");
    assert!(!e.contains("31"), "{e}");
    let e = vars_from_json(r#"{"pin": {"text": "1é", "secret": true}}"#).unwrap_err();
    assert!(!e.contains('é'), "{e}");
}

#[test]
fn byte_order_mark_is_ignored() {
    let (r, _) = run_default("\u{feff}00 A4 00 0C 02 3F 00 => 9000\n");
    assert!(r.summary.passed);
}

#[test]
fn scriptor_quirks_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(
        dir.path(),
        "00 A4 00 0C 02 3F 00\n# exit before the bad line\n00 A4 0G\n",
    );
    // Normal mode reads the whole file and finds the bad hex.
    assert_eq!(run(a.clone(), true).unwrap(), 2);
    a.scriptor_quirks = true;
    a.report_json = Some(dir.path().join("r.json"));
    assert_eq!(run(a, true).unwrap(), 0);
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(j["summary"]["exited"], true);
    assert_eq!(j["summary"]["commands"], 1);
}

#[test]
fn chunked_update_binary_past_offset_32767_uses_odd_ins() {
    // A 40,000-byte EF; 600 bytes written at 32,700 straddle the D6/D7 border.
    let create = "00 A4 00 0C 02 3F 00\napdu(00 E0 00 00, tlv(62, tlv(81, 009C40) tlv(82, 01) tlv(83, EF07)))\n";
    let data: String = (0..600)
        .map(|i| format!("{:02X}", (i * 7 % 251) as u8))
        .collect();
    let text = format!(
        "{create}let big = {data}\nupdate-binary offset=32700 ${{big}}\n\
         00 B1 00 00 04 54 02 7F BC CB => 9000\n\
         00 B1 00 00 04 54 02 80 84 CB => 9000\n\
         00 B1 00 00 04 54 02 81 4C CB => 9000\n"
    );
    let (r, trace) = run_text(&text, no_extended(), Env::new(), false);
    assert!(r.summary.passed, "{trace}");
    let cmds = wire_commands(&r);
    let d6: Vec<&String> = cmds.iter().filter(|c| c.starts_with("00 D6")).collect();
    let d7: Vec<&String> = cmds.iter().filter(|c| c.starts_with("00 D7")).collect();
    // 32700..32767 fits one D6 piece of 255 (it may run past 32767); the rest go as D7.
    assert_eq!(d6.len(), 1, "{cmds:?}");
    assert!(d6[0].starts_with("00 D6 7F BC FF"), "{cmds:?}");
    assert_eq!(d7.len(), 2, "{cmds:?}");
    assert!(
        d7[0].starts_with("00 D7 00 00 FD 54 02 80 BB 53 81 F6"),
        "{cmds:?}"
    );
    // Read back with odd INS B1: three reads of 200 bytes (Ne 203 leaves room
    // for the DO 53 header 53 81 C8), and compare with what was written.
    let back: String = r.suites[0].cases[0]
        .steps
        .iter()
        .filter(|s| s.command.as_deref().is_some_and(|c| c.starts_with("00 B1")))
        .map(|s| {
            let d = s.data.clone().unwrap().replace(' ', "");
            assert!(d.starts_with("5381C8"), "{d}");
            d[6..].to_string()
        })
        .collect();
    assert_eq!(back, data, "{trace}");
}

// ------------------------------------------- the card goes away mid-run

use cardsmith::sim::faults::Faults;
use cardsmith::sim::SimCard;
use cardsmith::transport::sim::SimTransport;
use std::sync::atomic::{AtomicU64, Ordering};

/// Four test cases; the top level only binds a variable. APDUs: 1–2 in
/// "one", 3–4 in "two", 5 in "three", 6 in "four".
const FOUR_CASES: &str = "let mf = 3F 00\ntest \"one\"\n00 A4 00 0C 02 ${mf} => 9000\n00 84 00 00 08 => 9000\ntest \"two\"\n00 A4 00 0C 02 3F 00 => 9000\n00 84 00 00 08 => 9000\ntest \"three\"\n00 84 00 00 08 => 9000\ntest \"four\"\n00 84 00 00 08 => 9000\n";

/// When [`PcscFault`] strikes.
#[derive(Clone, Copy)]
enum When {
    /// At APDU number k (1-based).
    Apdu(u64),
    /// At transaction number k (1-based).
    Begin(u64),
    /// At the first reconnect (a `reset` line).
    Reconnect,
}

/// The simulated card with a PC/SC error injected at the transport seam:
/// from the moment `when` on, every transmit, new transaction and
/// reconnect fails with `code`, turned into a `TransportError` by the PC/SC
/// transport's own mapping. This is how the kinds the simulated card cannot
/// produce itself reach the runner: a reset by another process
/// (`ResetCard`) and pcscd going away (`ServiceStopped`).
struct PcscFault {
    inner: SimTransport,
    code: pcsc::Error,
    when: When,
    sent: Arc<AtomicU64>,
    begun: u64,
    fired: Arc<Mutex<bool>>,
}

fn injected(op: &'static str, code: pcsc::Error) -> TransportError {
    cardsmith::transport::pcsc::map_error(op, "Injected Reader 00", code)
}

impl PcscFault {
    fn new(code: pcsc::Error, when: When) -> PcscFault {
        PcscFault {
            inner: SimTransport::new(SimCard::blank(SimConfig::default())),
            code,
            when,
            sent: Arc::new(AtomicU64::new(0)),
            begun: 0,
            fired: Arc::new(Mutex::new(false)),
        }
    }
    fn fired(&self) -> bool {
        *self.fired.lock().unwrap()
    }
    fn fire(&self) {
        *self.fired.lock().unwrap() = true;
    }
}

struct PcscFaultSession<'a> {
    inner: Box<dyn Session + 'a>,
    code: pcsc::Error,
    at: Option<u64>,
    sent: Arc<AtomicU64>,
    fired: Arc<Mutex<bool>>,
}

impl Session for PcscFaultSession<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let n = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        if *self.fired.lock().unwrap() || self.at.is_some_and(|k| n >= k) {
            *self.fired.lock().unwrap() = true;
            return Err(injected("transmit", self.code));
        }
        self.inner.transmit(apdu)
    }
}

impl Transport for PcscFault {
    fn begin(&mut self) -> Result<Box<dyn Session + '_>, TransportError> {
        self.begun += 1;
        if self.fired() || matches!(self.when, When::Begin(k) if self.begun >= k) {
            self.fire();
            return Err(injected("begin transaction", self.code));
        }
        let at = match self.when {
            When::Apdu(k) => Some(k),
            _ => None,
        };
        let (code, sent, fired) = (self.code, self.sent.clone(), self.fired.clone());
        Ok(Box::new(PcscFaultSession {
            inner: self.inner.begin()?,
            code,
            at,
            sent,
            fired,
        }))
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), TransportError> {
        if self.fired() || matches!(self.when, When::Reconnect) {
            self.fire();
            return Err(injected("reconnect", self.code));
        }
        self.inner.reconnect(reset)
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn protocol(&self) -> Protocol {
        self.inner.protocol()
    }
    fn reader(&self) -> String {
        "Injected Reader 00".into()
    }
}

fn sim_with(faults: Faults) -> Box<dyn Transport> {
    let card = Arc::new(Mutex::new(SimCard::blank(SimConfig::default())));
    Box::new(SimTransport::shared(card, faults))
}

/// Run scripts (name, text) over `transport`: the report and the error that ended the run.
fn run_over(
    transport: Box<dyn Transport>,
    scripts: &[(&str, &str)],
    keep_going: bool,
) -> (cardsmith::script::Report, Option<anyhow::Error>) {
    let parsed: Vec<_> = scripts
        .iter()
        .map(|(name, text)| (name.to_string(), parse_str(text, name).unwrap()))
        .collect();
    let mut ch = Channel::new(transport, ExchangeOptions::raw());
    let (report, err) = execute(
        &parsed,
        Env::new(),
        Target::Card(&mut ch),
        RunConfig {
            keep_going,
            dry_run: false,
        },
        &mut std::io::sink(),
    );
    // As the command line has it (the runner's error is a plain
    // ExchangeError; anyhow is the command line's).
    (report, err.map(anyhow::Error::new))
}

/// (name, status) of every case in the JSON report.
fn json_statuses(j: &serde_json::Value) -> Vec<(String, String)> {
    j["suites"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["cases"].as_array().unwrap())
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The reports of a run that the card left during "two" of FOUR_CASES:
/// "one" passed, "two" an error carrying the transport failure, "three"
/// and "four" skipped once each, the summary failed, 4 tests; the error
/// leads to exit code `exit`.
fn assert_interrupted_in_two(
    r: &cardsmith::script::Report,
    err: Option<anyhow::Error>,
    failure: &str,
    exit: i32,
) {
    let err = err.expect("the run ends with the transport error");
    assert!(format!("{err:#}").contains(failure), "{err:#}");
    assert_eq!(cardsmith::cli::exit_code(&err), exit, "{err:#}");
    let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let s = &j["summary"];
    assert_eq!(s["passed"], false, "{s}");
    assert_eq!(s["tests"], 4, "{s}");
    assert_eq!(s["errors"], 1, "{s}");
    assert_eq!(s["failures"], 0, "{s}");
    assert_eq!(s["skipped"], 2, "{s}");
    assert_eq!(
        json_statuses(&j),
        pairs(&[
            ("one", "passed"),
            ("two", "error"),
            ("three", "skipped"),
            ("four", "skipped")
        ])
    );
    let two = &j["suites"][0]["cases"][1];
    assert!(
        two["error"].as_str().unwrap_or("").contains(failure),
        "{two}"
    );
    // The command that was on its way is in the case, with the failure.
    let last = two["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["command"], "00 84 00 00 08", "{last}");
    assert_eq!(last["ok"], false, "{last}");
    assert!(
        last["message"].as_str().unwrap().contains(failure),
        "{last}"
    );

    let x = r.to_junit();
    let cases = junit_cases(&x).unwrap_or_else(|e| panic!("{e}\n{x}"));
    assert_eq!(
        outcomes(&cases),
        pairs(&[
            ("one", "passed"),
            ("two", "error"),
            ("three", "skipped"),
            ("four", "skipped")
        ]),
        "{x}"
    );
    assert!(
        cases[1].message.as_deref().unwrap().contains(failure),
        "{x}"
    );
    assert_eq!(
        attr(&x, "testsuites", "errors").as_deref(),
        Some("1"),
        "{x}"
    );
    assert!(x.contains("type=\"transport\""), "{x}");
}

#[test]
fn card_removed_mid_run_is_an_error_in_every_report() {
    let (r, err) = run_over(
        sim_with(Faults {
            remove_at: Some(4),
            ..Faults::none()
        }),
        &[("s.apdu", FOUR_CASES)],
        false,
    );
    assert_interrupted_in_two(&r, err, "was removed", 3);
}

#[test]
fn mute_card_mid_run_is_an_error_in_every_report() {
    let (r, err) = run_over(
        sim_with(Faults {
            mute_from: Some(4),
            ..Faults::none()
        }),
        &[("s.apdu", FOUR_CASES)],
        false,
    );
    assert_interrupted_in_two(&r, err, "did not answer", 5);
}

#[test]
fn card_reset_by_another_process_mid_run_is_an_error_in_every_report() {
    let t = PcscFault::new(pcsc::Error::ResetCard, When::Apdu(4));
    let (r, err) = run_over(Box::new(t), &[("s.apdu", FOUR_CASES)], false);
    assert_interrupted_in_two(&r, err, "was reset by another process", 5);
}

#[test]
fn pcscd_gone_mid_run_is_an_error_in_every_report() {
    let t = PcscFault::new(pcsc::Error::ServiceStopped, When::Apdu(4));
    let (r, err) = run_over(Box::new(t), &[("s.apdu", FOUR_CASES)], false);
    assert_interrupted_in_two(&r, err, "PC/SC service is not running", 3);
}

#[test]
fn keep_going_does_not_hide_a_transport_error() {
    // "one" fails an expectation, then the card is pulled in "two".
    let text = FOUR_CASES.replace("${mf} => 9000", "${mf} => 6A82");
    let (r, err) = run_over(
        sim_with(Faults {
            remove_at: Some(4),
            ..Faults::none()
        }),
        &[("s.apdu", &text)],
        true,
    );
    assert_eq!(cardsmith::cli::exit_code(&err.unwrap()), 3);
    let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(
        json_statuses(&j),
        pairs(&[
            ("one", "failed"),
            ("two", "error"),
            ("three", "skipped"),
            ("four", "skipped")
        ])
    );
    assert_eq!(j["summary"]["failures"], 1);
    assert_eq!(j["summary"]["errors"], 1);
    assert_eq!(j["summary"]["passed"], false);
    let cases = junit_cases(&r.to_junit()).unwrap();
    assert_eq!(cases[0].outcome, "failure");
    assert_eq!(cases[1].outcome, "error");
}

#[test]
fn transaction_refused_between_cases_is_an_error_of_the_next_case() {
    // `option` lines split the script into transactions; the second one
    // cannot begin. "one" had run completely: it passed. "two" is where the
    // run was when the card went away.
    let text = FOUR_CASES.replace("test \"two\"", "option resend-6c off\ntest \"two\"");
    let t = PcscFault::new(pcsc::Error::RemovedCard, When::Begin(2));
    let (r, err) = run_over(Box::new(t), &[("s.apdu", &text)], false);
    assert_eq!(cardsmith::cli::exit_code(&err.unwrap()), 3);
    let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(
        json_statuses(&j),
        pairs(&[
            ("one", "passed"),
            ("two", "error"),
            ("three", "skipped"),
            ("four", "skipped")
        ])
    );
    assert!(junit_cases(&r.to_junit()).is_ok());
    // Refused in the middle of "two": "two" is the error, not "three".
    let text = FOUR_CASES.replace(
        "00 A4 00 0C 02 3F 00 => 9000\n",
        "00 A4 00 0C 02 3F 00 => 9000\noption resend-6c off\n",
    );
    let t = PcscFault::new(pcsc::Error::RemovedCard, When::Begin(2));
    let (r, _) = run_over(Box::new(t), &[("s.apdu", &text)], false);
    let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(
        json_statuses(&j),
        pairs(&[
            ("one", "passed"),
            ("two", "error"),
            ("three", "skipped"),
            ("four", "skipped")
        ])
    );
}

#[test]
fn a_failed_reset_is_an_error_of_its_case() {
    // The card is gone when the `reset` line of "b" reconnects.
    let text = "test \"a\"\n00 A4 00 0C 02 3F 00 => 9000\ntest \"b\"\nreset\n00 84 00 00 08 => 9000\ntest \"c\"\n00 84 00 00 08\n";
    let t = PcscFault::new(pcsc::Error::RemovedCard, When::Reconnect);
    let (r, err) = run_over(Box::new(t), &[("s.apdu", text)], false);
    assert_eq!(cardsmith::cli::exit_code(&err.unwrap()), 3);
    let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(
        json_statuses(&j),
        pairs(&[("a", "passed"), ("b", "error"), ("c", "skipped")])
    );
    let b = &j["suites"][0]["cases"][1];
    assert!(b["error"].as_str().unwrap().contains("was removed"), "{b}");
    let step = &b["steps"][0];
    assert_eq!(step["kind"], "reset", "{b}");
    assert_eq!(step["ok"], false, "{b}");
    // The transcript has the command that was answered, and no reset.
    let t = Transcript::from_report(&r);
    assert_eq!(t.entries.len(), 1, "{:?}", t.entries);
    assert_eq!(t.entries[0].kind, "apdu");
    let cases = junit_cases(&r.to_junit()).unwrap();
    assert_eq!(cases.len(), 3);
}

#[test]
fn later_scripts_are_skipped_once_after_a_transport_error() {
    let (r, err) = run_over(
        sim_with(Faults {
            remove_at: Some(4),
            ..Faults::none()
        }),
        &[
            ("s.apdu", FOUR_CASES),
            (
                "t.apdu",
                "00 A4 00 0C 02 3F 00\ntest \"t1\"\n00 84 00 00 08\n",
            ),
            (
                "u.apdu",
                "let x = 01\ntest \"u1\"\n00 84 00 00 08\ntest \"u2\"\n",
            ),
        ],
        false,
    );
    assert!(err.is_some());
    let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(
        json_statuses(&j),
        pairs(&[
            ("one", "passed"),
            ("two", "error"),
            ("three", "skipped"),
            ("four", "skipped"),
            ("t.apdu (top level)", "skipped"),
            ("t1", "skipped"),
            ("u1", "skipped"),
            ("u2", "skipped"),
        ])
    );
    assert_eq!(j["summary"]["tests"], 8);
    assert_eq!(j["summary"]["skipped"], 6);
    let cases = junit_cases(&r.to_junit()).unwrap();
    assert_eq!(cases.len(), 8);
}

#[test]
fn counts_match_the_script() {
    // Four test cases and a top level that only binds a variable: 4 tests.
    let (r, trace) = run_default(FOUR_CASES);
    let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(j["summary"]["tests"], 4, "{trace}");
    assert_eq!(j["summary"]["passed"], true);
    let cases = junit_cases(&r.to_junit()).unwrap();
    assert_eq!(cases.len(), 4);
    assert!(cases.iter().all(|c| c.outcome == "passed"));
    // Commands before the first test are a case of their own.
    let (r, _) = run_default(&format!("00 A4 00 0C 02 3F 00 => 9000\n{FOUR_CASES}"));
    let cases = junit_cases(&r.to_junit()).unwrap();
    assert_eq!(cases.len(), 5);
    assert_eq!(cases[0].name, "inline.apdu (top level)");
    // A script without tests is one case; an empty script none.
    let (r, _) = run_default("00 A4 00 0C 02 3F 00 => 9000\n");
    assert_eq!(junit_cases(&r.to_junit()).unwrap().len(), 1);
    let (r, _) = run_default("# nothing\n");
    assert_eq!(junit_cases(&r.to_junit()).unwrap().len(), 0);
    // A `let` that fails at the top level is reported, in the top-level case.
    let (r, _) = run_default(&format!(
        "let big = len({})\n{FOUR_CASES}",
        "00 ".repeat(300)
    ));
    let cases = junit_cases(&r.to_junit()).unwrap();
    assert_eq!(cases[0].name, "inline.apdu (top level)");
    assert_eq!(cases[0].outcome, "failure");
    assert_eq!(cases.len(), 5);
    assert!(cases[1..].iter().all(|c| c.outcome == "skipped"));
}

/// A card that answers one byte (no status word) from APDU number 2 on.
struct Garbled {
    n: Arc<AtomicU64>,
}

struct GarbledSession(Arc<AtomicU64>);

impl Session for GarbledSession {
    fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(if n >= 2 { vec![0x90] } else { vec![0x90, 0x00] })
    }
}

impl Transport for Garbled {
    fn begin(&mut self) -> Result<Box<dyn Session + '_>, TransportError> {
        Ok(Box::new(GarbledSession(self.n.clone())))
    }
    fn reconnect(&mut self, _reset: bool) -> Result<(), TransportError> {
        Ok(())
    }
    fn atr(&self) -> Vec<u8> {
        vec![0x3B, 0x00]
    }
    fn protocol(&self) -> Protocol {
        Protocol::T1
    }
    fn reader(&self) -> String {
        "garbled".into()
    }
}

#[test]
fn a_malformed_answer_is_an_exchange_error() {
    let t = Garbled {
        n: Arc::new(AtomicU64::new(0)),
    };
    let (r, err) = run_over(Box::new(t), &[("s.apdu", FOUR_CASES)], false);
    assert_eq!(cardsmith::cli::exit_code(&err.unwrap()), 5);
    let x = r.to_junit();
    let cases = junit_cases(&x).unwrap_or_else(|e| panic!("{e}\n{x}"));
    assert_eq!(
        outcomes(&cases),
        pairs(&[
            ("one", "error"),
            ("two", "skipped"),
            ("three", "skipped"),
            ("four", "skipped")
        ])
    );
    assert!(x.contains("type=\"exchange\""), "{x}");
    assert!(
        cases[0].message.as_deref().unwrap().contains("malformed"),
        "{x}"
    );
}
