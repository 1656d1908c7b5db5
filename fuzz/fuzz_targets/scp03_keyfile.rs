//! The SCP03 key file parser: any text gives keys or an error, never a
//! panic, and an error never quotes a value.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = cardsmith_host::scp03::keyfile::Scp03Keys::parse(text, "fuzz") {
        let msg = e.to_string();
        // Values are 32+ hex digits; no error may carry such a run.
        let mut run = 0;
        for c in msg.chars() {
            run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
            assert!(run < 32, "an error quoted a value: {msg}");
        }
    }
});
