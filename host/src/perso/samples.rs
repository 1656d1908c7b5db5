//! Synthetic fingers and sample citizen records, for demos, tests and
//! benchmarks (`cardsmith sample-records`, the counters' "live" capture):
//! deterministic from a seed, so a record's enrolment template and a later
//! capture of the same finger match.

use rand::SeedableRng;

use crate::biometric;
use crate::record::{self, date::JalaliDate, FingerPosition};

/// The synthetic finger of person `seed` at `position` (the same finger
/// for the enrolment template and for a later live capture).
fn synthetic_finger(person: u64, position: FingerPosition) -> biometric::SyntheticFinger {
    biometric::SyntheticFinger::generate(
        person
            .wrapping_mul(31)
            .wrapping_add(u64::from(position.iso_code())),
    )
}

/// An ISO/IEC 19794-2 capture of person `person`'s synthetic finger at
/// `position`, labelled with the position; `capture_seed` picks the distortion.
pub fn synthetic_capture(person: u64, position: FingerPosition, capture_seed: u64) -> Vec<u8> {
    let finger = synthetic_finger(person, position);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(capture_seed);
    let d = biometric::Distortion::genuine_typical(&mut rng);
    let mut rec = finger.capture(capture_seed, &d);
    for v in &mut rec.views {
        v.position = position;
    }
    biometric::encode_2005(&rec).unwrap_or_default()
}

/// Capture seeds (xor the person's seed) for the enrolment template in a
/// sample record and for the later "live" capture at the counter.
pub const ENROLMENT_CAPTURE: u64 = 0x5EED_0001;
pub const LIVE_CAPTURE: u64 = 0x11FE_C0DE;

/// Sample records as JSON lines, with synthetic enrolment templates.
pub fn sample_lines(count: usize, seed: u64, date: JalaliDate) -> Vec<String> {
    record::sample_records(count, seed, date, &mut |person, pos| {
        synthetic_capture(person, pos, ENROLMENT_CAPTURE ^ person)
    })
}
