//! The pcsc-tools ATR list parser never panics on any text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(list) = cardsmith_host::atr::list::AtrList::parse(&text) {
        let _ = list.matches(&[0x3B, 0x00]);
    }
});
