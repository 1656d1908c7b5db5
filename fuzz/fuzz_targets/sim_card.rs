//! The simulated card answers every byte sequence with at least a status
//! word, and never panics: a keyless blank card, and a card with an issuer
//! key (first input byte odd) whose perso commands the fuzzer can reach by
//! guessing nothing: the key is all zeros and the input can carry the
//! EXTERNAL AUTHENTICATE cryptogram only by chance, so keyed runs mostly
//! exercise the refusals and the life-cycle register.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keyed = data.first().is_some_and(|b| b & 1 == 1);
    let mut card = if keyed {
        match cardsmith_host::sim::SimCard::blank_with_issuer_key(Default::default(), &[0; 16]) {
            Ok(c) => c,
            Err(_) => return,
        }
    } else {
        cardsmith_host::sim::SimCard::blank(Default::default())
    };
    // Split the input into several APDUs so that state builds up between them.
    for apdu in data.split(|b| *b == 0xA5) {
        let r = card.transmit(apdu);
        assert!(r.len() >= 2);
    }
});
