//! Card profiles: any text gives a profile or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cardsmith_host::perso::profile::Profile::parse(text, "fuzz.toml", None);
    }
});
