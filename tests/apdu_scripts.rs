//! The scripts in apdu-scripts/ pass against a fresh simulated card each.

#[path = "script_support/mod.rs"]
mod common;

use cardsmith::script::eval::Env;
use cardsmith::script::report::CaseStatus;
use cardsmith::script::{execute, load, ParseOptions, RunConfig, Target};
use cardsmith::sim::{SimCard, SimConfig};
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{Channel, ExchangeOptions};
use std::path::Path;

fn run_file(name: &str) -> cardsmith::script::Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("apdu-scripts")
        .join(name);
    let script = load(&path, ParseOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(script.warnings.is_empty(), "{name}: {:?}", script.warnings);
    let mut ch = Channel::new(
        Box::new(SimTransport::new(SimCard::blank(SimConfig::default()))),
        ExchangeOptions::raw(),
    );
    let mut out = Vec::new();
    let (report, err) = execute(
        &[(name.to_string(), script)],
        Env::new(),
        Target::Card(&mut ch),
        RunConfig::default(),
        &mut out,
    );
    assert!(err.is_none(), "{err:?}");
    let trace = String::from_utf8(out).unwrap();
    for c in report.suites.iter().flat_map(|s| &s.cases) {
        assert_eq!(
            c.status,
            CaseStatus::Passed,
            "{name}: {}: {:?}\n{trace}",
            c.name,
            c.failures
        );
    }
    assert!(report.summary.passed);
    report
}

#[test]
fn smoke() {
    let r = run_file("smoke.apdu");
    assert_eq!(r.summary.tests, 5);
    assert!(r.summary.commands >= 14);
}

#[test]
fn filesystem() {
    let r = run_file("filesystem.apdu");
    assert_eq!(r.summary.tests, 5);
    // The 700-byte write with max=100 is seven UPDATE BINARY commands.
    let chunks = r
        .suites
        .iter()
        .flat_map(|s| &s.cases)
        .flat_map(|c| &c.steps)
        .filter(|s| s.kind == "chunk")
        .count();
    assert_eq!(chunks, 1 + 1 + 7);
}

#[test]
fn pin_life_cycle() {
    let r = run_file("pin.apdu");
    assert_eq!(r.summary.tests, 7);
    let json = r.to_json();
    for needle in ["31 32 33 34", "31323334", "38 37 36 35", "34 33 32 31"] {
        assert!(!json.contains(needle), "{needle} in report");
    }
}

#[test]
fn every_script_in_the_folder_is_tested() {
    let mut names: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("apdu-scripts"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".apdu"))
            .collect();
    names.sort();
    assert_eq!(names, ["filesystem.apdu", "pin.apdu", "smoke.apdu"]);
}
