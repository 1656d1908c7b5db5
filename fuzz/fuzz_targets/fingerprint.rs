//! ISO/IEC 19794-2 parsing, compact conversion and matching never panic;
//! whatever parses re-encodes to a record that parses to the same value.
#![no_main]
use cardsmith_host::biometric;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Whatever the lenient parser accepts (zero padding, data-only block
    // lengths) re-encodes to a record the strict parser takes as is.
    if let Ok(p) = biometric::parse_with_warnings(data) {
        if let Ok(bytes) = biometric::encode_2005(&p.record) {
            assert_eq!(biometric::parse(&bytes).ok(), Some(p.record.clone()));
        }
    }
    if let Ok(rec) = biometric::parse(data) {
        if let Ok(bytes) = biometric::encode_2005(&rec) {
            assert_eq!(biometric::parse(&bytes).ok(), Some(rec.clone()));
        }
        for i in 0..rec.views.len() {
            let _ = biometric::to_compact(&rec, i, 60);
        }
    }
    let (a, b) = data.split_at(data.len() / 2);
    let _ = biometric::compact_match(a, b);
});
