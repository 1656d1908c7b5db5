//! Every exact ATR of the pcsc-tools list: parses without panicking, is
//! either well-formed and completely decoded or carries a defect, and
//! matches its own list entry.

use super::super::{parse, AtrList, ByteRole, Historical};
use std::collections::BTreeMap;
use std::path::Path;

fn load_list() -> AtrList {
    let path = Path::new(AtrList::DEFAULT_PATH);
    assert!(
        path.exists(),
        "{} is missing: install pcsc-tools (apt-get install pcsc-tools) to run the ATR corpus test",
        AtrList::DEFAULT_PATH
    );
    AtrList::load(path).unwrap_or_else(|e| panic!("loading the ATR list failed: {e}"))
}

#[test]
fn corpus_of_exact_atrs() {
    let list = load_list();
    let exact = list.exact_atrs();
    assert!(
        exact.len() >= 3000,
        "expected at least 3000 exact ATRs in {}, found {}",
        AtrList::DEFAULT_PATH,
        exact.len()
    );
    let mut well_formed = 0usize;
    let mut per_kind: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut with_defects = 0usize;
    let mut formats: BTreeMap<String, usize> = BTreeMap::new();
    for (line, bytes) in &exact {
        let atr = parse(bytes);
        let _ = atr.describe();
        let layout = atr.layout();
        // Every byte is shown exactly once, in order.
        let offsets: Vec<usize> = layout.iter().map(|n| n.offset).collect();
        let mut sorted = offsets.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            offsets.len(),
            "line {line}: duplicate byte notes"
        );
        let key = match atr.historical() {
            Historical::Proprietary { .. } => "proprietary".to_string(),
            Historical::Rfu { .. } => "rfu".to_string(),
            other => other.format_name(),
        };
        *formats.entry(key).or_default() += 1;
        if atr.is_well_formed() {
            well_formed += 1;
            assert_eq!(
                offsets,
                (0..bytes.len()).collect::<Vec<_>>(),
                "line {line}: well-formed ATR whose bytes are not all accounted for"
            );
            assert!(
                layout.iter().all(|n| !n.meaning.is_empty()
                    && !matches!(n.role, ByteRole::Undecoded | ByteRole::Trailing)),
                "line {line}: well-formed ATR with undecoded bytes"
            );
            if let Historical::CompactTlv { undecoded, .. } = atr.historical() {
                assert!(undecoded.is_empty(), "line {line}");
            }
        } else {
            with_defects += 1;
            for d in atr.defects() {
                *per_kind.entry(d.kind()).or_default() += 1;
                assert!(!d.to_string().is_empty());
            }
        }
        let own = list.matches(bytes);
        assert!(
            own.iter().any(|e| e.line == *line),
            "line {line}: exact ATR {} does not match its own entry",
            atr.to_hex()
        );
    }
    // Lookup speed over the whole list (a wildcard entry must match too).
    let mifare = [
        0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06, 0x03, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x00, 0x6A,
    ];
    let start = std::time::Instant::now();
    let hits = list.matches(&mifare);
    let per_lookup = start.elapsed();
    assert!(
        hits.iter().any(|e| e
            .descriptions
            .iter()
            .any(|d| d.contains("MIFARE Classic 1K"))),
        "the MIFARE Classic 1K wildcard entry does not match"
    );
    println!("ATR corpus ({}):", AtrList::DEFAULT_PATH);
    println!("  one lookup over the whole list: {per_lookup:?}");
    println!(
        "  list entries: {} usable, {} skipped",
        list.len(),
        list.skipped().len()
    );
    for s in list.skipped() {
        println!("    skipped line {}: {} ({})", s.line, s.pattern, s.reason);
    }
    println!("  exact ATRs: {}", exact.len());
    println!("  well-formed: {well_formed}");
    println!("  with defects: {with_defects}");
    for (k, n) in &per_kind {
        println!("    {k}: {n}");
    }
    println!("  historical byte formats:");
    for (k, n) in &formats {
        println!("    {k}: {n}");
    }
    assert_eq!(well_formed + with_defects, exact.len());
}
