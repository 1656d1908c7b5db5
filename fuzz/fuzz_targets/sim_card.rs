//! The simulated card answers every byte sequence with at least a status word, and never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut card = cardsmith::sim::SimCard::blank(Default::default());
    // Split the input into several APDUs so that state builds up between them.
    for apdu in data.split(|b| *b == 0xA5) {
        let r = card.transmit(apdu);
        assert!(r.len() >= 2);
    }
});
