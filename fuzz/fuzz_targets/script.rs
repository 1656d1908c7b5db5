//! cargo-fuzz target for the script parser.
//!
//! Add to fuzz/Cargo.toml of the main crate:
//!
//! ```toml
//! [[bin]]
//! name = "script"
//! path = "fuzz_targets/script.rs"
//! test = false
//! doc = false
//! bench = false
//! ```
//!
//! Run with `cargo fuzz run script`.
#![no_main]

use cardsmith_host::script::{check_vars, parse_with, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for quirks in [false, true] {
        if let Ok(s) = parse_with(
            &text,
            "fuzz",
            ParseOptions {
                scriptor_quirks: quirks,
            },
        ) {
            let _ = check_vars(&s, &Default::default());
        }
    }
});
