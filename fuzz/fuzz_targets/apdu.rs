//! Command and response parsing: no panic, and what parses re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = cardsmith_host::apdu::Command::parse(data) {
        let again = c.encode().expect("a parsed command encodes");
        assert_eq!(again, data);
        let _ = c.redacted();
    }
    let _ = cardsmith_host::apdu::Response::from_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cardsmith_host::hex::parse(text);
    }
});
