//! ATR decoding must never panic, and describing or serialising what it found must not either.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let atr = cardsmith_host::atr::parse(data);
    let _ = atr.describe();
    let _ = serde_json::to_string(&atr);
    let _ = atr.card_capabilities();
});
