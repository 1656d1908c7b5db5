//! Property tests: no input makes the decoder panic.

use super::super::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let atr = parse(&bytes);
        prop_assert_eq!(atr.raw(), &bytes[..]);
        let _ = atr.describe();
        let _ = atr.summary();
        let _ = atr.card_capabilities();
        serde_json::to_string(&atr).map_err(|e| TestCaseError::fail(e.to_string()))?;
        serde_json::to_string(&atr.summary()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for d in atr.defects() {
            prop_assert!(!d.to_string().is_empty());
        }
        // Each byte is noted at most once, and only bytes that exist.
        let mut seen = vec![false; bytes.len()];
        for n in atr.layout() {
            prop_assert!(n.offset < bytes.len());
            prop_assert!(!seen[n.offset]);
            seen[n.offset] = true;
        }
    }

    /// ATR-shaped inputs (valid TS, random structure) reach deeper code paths.
    #[test]
    fn atr_shaped_never_panics(
        ts in prop_oneof![Just(0x3Bu8), Just(0x3F)],
        rest in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut bytes = vec![ts];
        bytes.extend(rest);
        let atr = parse(&bytes);
        let _ = atr.describe();
        serde_json::to_string(&atr).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if atr.is_well_formed() {
            prop_assert_eq!(atr.layout().len(), bytes.len());
        }
    }

    /// Compact-TLV historical bytes behind a valid header.
    #[test]
    fn compact_tlv_never_panics(
        cat in prop_oneof![Just(0x00u8), Just(0x80), Just(0x10)],
        hist in proptest::collection::vec(any::<u8>(), 0..14),
    ) {
        let mut bytes = vec![0x3B, 0x80 | (hist.len() as u8 + 1), 0x01, cat];
        bytes.extend(&hist);
        let x = bytes.iter().skip(1).fold(0u8, |a, b| a ^ b);
        bytes.push(x);
        let atr = parse(&bytes);
        let _ = atr.describe();
        let valid = matches!(atr.tck_status(), TckStatus::Valid { .. });
        prop_assert!(valid, "TCK not valid for {}", atr.to_hex());
    }

    #[test]
    fn list_parse_never_panics(text in "[0-9A-F .\\[\\]^\\-\\t\\n#*()]{0,200}") {
        if let Ok(list) = AtrList::parse(&text) {
            let _ = list.matches(&[0x3B, 0x00]);
            let _ = list.exact_atrs();
        }
    }
}
