//! Cross-module tests: published vectors, host↔card round trips, attacks,
//! PUT KEY / STORE DATA through the channel, and random-input robustness.

mod apdu_kinds;
mod attacks;
mod fuzz;
mod roundtrip;
mod sim;
mod vectors;

pub(super) use super::card::{CardSession, ChallengeSource, Incoming};
pub(super) use super::channel::{InitUpdateResponse, Mode, SecurityLevel};
pub(super) use super::commands::{self, Dgi, StoreDataAssembler};
pub(super) use super::error::Error;
pub(super) use super::host::HostSession;
pub(super) use super::keys::{AesKey, Diversification, KeySource, StaticKeys};
pub(super) use cardsmith_wire::apdu::{Command, Response};

/// Hex to bytes (the crate's parser). Test input only.
pub(super) fn h(s: &str) -> Vec<u8> {
    cardsmith_wire::hex::parse(s).expect("test hex")
}

/// Bytes to upper-case hex.
pub(super) fn hx(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Deterministic xorshift64* generator for test data.
pub(super) struct XorShift(u64);

impl XorShift {
    pub(super) fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }
    pub(super) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish in 0..n (n > 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub(super) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
    pub(super) fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_u64() as u8;
        }
    }
}
