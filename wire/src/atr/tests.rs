//! Tests of the ATR module: decoding real-world ATRs, each defect kind, the
//! pcsc-tools list corpus, and property tests that no input panics.

mod corpus;
mod decode;
mod defects;
mod list;
mod props;

/// Parse "3B 02 14 50" (spaces optional) into bytes; test helper only.
pub(super) fn h(text: &str) -> Vec<u8> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex fixture {text:?}");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex fixture"))
        .collect()
}
