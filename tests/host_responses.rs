//! Host-side response handling under rewritten card answers (see
//! `host_responses_support`): perso, verify, read and the counter's
//! inspection, each under a few hundred seeded scripts, must end without a
//! panic and without looping. `fuzz/fuzz_targets/host_responses.rs` runs the
//! same harness under libFuzzer.

mod host_responses_support;
use host_responses_support::{run, Fixture, Flow, FLOWS};

/// xorshift64*: a fixed, seedable byte source.
fn script(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

#[test]
fn clean_answers_give_the_whole_flows() {
    let fx = Fixture::new();
    // An empty script rewrites nothing: every flow runs to its end.
    let perso = run(&fx, Flow::Perso, &[]);
    let verify = run(&fx, Flow::Verify, &[]);
    assert!(perso > 30 && verify > 20, "perso {perso}, verify {verify}");
}

#[test]
fn rewritten_answers_never_panic_or_loop() {
    let fx = Fixture::new();
    // HOST_RESPONSES_ROUNDS=N searches longer (N scripts per flow).
    let more: Option<u64> = std::env::var("HOST_RESPONSES_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut total = 0;
    for flow in FLOWS {
        let rounds = more.unwrap_or(if flow == Flow::Perso { 60 } else { 150 });
        for seed in 0..rounds {
            total += run(&fx, flow, &script(seed, 256));
        }
    }
    eprintln!("{total} commands reached the card");
    assert!(total > 1_000, "only {total} commands reached the card");
}
