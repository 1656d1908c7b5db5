//! TLV decoding accounts for every byte and never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let nodes = cardsmith_host::tlv::decode(data);
    let covered: usize = nodes.iter().map(|n| n.size()).sum();
    assert_eq!(covered, data.len());
    let _ = cardsmith_host::tlv::render(&nodes);
});
