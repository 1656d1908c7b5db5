//! The domestic card's APDU scripts (apdu-scripts/domestic/) pass against
//! an in-process domestic simulated card, case by case; the same scripts
//! run through pcscd in tests/domestic_pcsc.rs.

use cardsmith::script::eval::{Env, Value};
use cardsmith::script::report::CaseStatus;
use cardsmith::script::{execute, load, ParseOptions, RunConfig, Target};
use cardsmith::sim::{SimCard, SimConfig};
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{Channel, ExchangeOptions};
use std::path::Path;

#[test]
fn domestic_perso_script_passes_in_process() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("apdu-scripts/domestic/perso.apdu");
    let script = load(&path, ParseOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(script.warnings.is_empty(), "{:?}", script.warnings);
    let mut ch = Channel::new(
        Box::new(SimTransport::new(SimCard::blank(SimConfig::domestic()))),
        ExchangeOptions::raw(),
    );
    let mut env = Env::new();
    env.set("id_pin_block", Value::secret(b"246810\xFF\xFF".to_vec()));
    env.set("sig_pin_block", Value::secret(b"13579246".to_vec()));
    let mut out = Vec::new();
    let (report, err) = execute(
        &[("perso.apdu".to_string(), script)],
        env,
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
            "{}: {:?}\n{trace}",
            c.name,
            c.failures
        );
    }
    assert!(report.summary.passed);
    assert_eq!(report.summary.tests, 18);
    // The 512-byte EF.DG1 went in three UPDATE BINARY blocks (240, 240, 32).
    let chunks = report
        .suites
        .iter()
        .flat_map(|s| &s.cases)
        .flat_map(|c| &c.steps)
        .filter(|s| s.kind == "chunk")
        .count();
    assert_eq!(chunks, 3);
    assert!(!trace.contains("32 34 36 38 31 30"), "{trace}");
}
