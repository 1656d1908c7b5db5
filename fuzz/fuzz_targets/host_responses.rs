//! Host-side response handling (perso, verify, read, the counter's
//! inspection; the exchange's GET RESPONSE, 6Cxx and secure messaging
//! paths under them) with card answers rewritten by the fuzzer's bytes,
//! through the harness `tests/host_responses.rs` runs in the suite. The
//! first byte picks the flow; the rest is the rewrite script.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/host_responses_support/mod.rs"]
mod host_responses_support;
use host_responses_support::{run, Fixture, FLOWS};

thread_local! {
    static FIXTURE: Fixture = Fixture::new();
}

fuzz_target!(|data: &[u8]| {
    let Some((first, script)) = data.split_first() else {
        return;
    };
    let flow = FLOWS[usize::from(*first) % FLOWS.len()];
    FIXTURE.with(|fx| {
        run(fx, flow, script);
    });
});
