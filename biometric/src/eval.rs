//! Error-rate evaluation of the compact matcher on synthetic fingers.

use super::compact::to_compact;
use super::matcher::{match_score, THRESHOLD};
use super::synthetic::{Distortion, SyntheticFinger};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::fmt;

/// Impostor comparisons per finger: its first capture against the second
/// captures of the next this many fingers (cyclically).
pub const IMPOSTORS_PER_FINGER: usize = 10;

/// A few points of a score distribution.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Percentiles {
    pub min: f64,
    pub p1: f64,
    pub p5: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(scores: &mut [f64]) -> Self {
        scores.sort_by(f64::total_cmp);
        let at = |p: f64| -> f64 {
            if scores.is_empty() {
                return 0.0;
            }
            let i = ((scores.len() - 1) as f64 * p).round() as usize;
            scores.get(i).copied().unwrap_or(0.0)
        };
        Percentiles {
            min: at(0.0),
            p1: at(0.01),
            p5: at(0.05),
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        }
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "min {:.3}  p1 {:.3}  p5 {:.3}  p50 {:.3}  p95 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            self.min, self.p1, self.p5, self.p50, self.p95, self.p99, self.p999, self.max
        )
    }
}

/// Outcome of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct RateReport {
    pub fingers: usize,
    pub seed: u64,
    pub max_minutiae: usize,
    pub threshold: f64,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    /// Genuine pairs that did not match (including templates that could not be built).
    pub false_non_matches: usize,
    /// Impostor pairs that matched.
    pub false_matches: usize,
    /// Captures that could not be turned into a compact template.
    pub conversion_failures: usize,
    /// False non-match rate, 0..=1.
    pub fnmr: f64,
    /// False match rate, 0..=1.
    pub fmr: f64,
    pub genuine_scores: Percentiles,
    pub impostor_scores: Percentiles,
    /// Mean minutiae per compact template.
    pub mean_minutiae: f64,
}

impl fmt::Display for RateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} fingers, seed {}, card limit {} minutiae (mean {:.1} per template), threshold {}",
            self.fingers, self.seed, self.max_minutiae, self.mean_minutiae, self.threshold
        )?;
        writeln!(
            f,
            "FNMR {:.2}% ({} of {} genuine), FMR {:.3}% ({} of {} impostor), {} conversion failures",
            self.fnmr * 100.0,
            self.false_non_matches,
            self.genuine_pairs,
            self.fmr * 100.0,
            self.false_matches,
            self.impostor_pairs,
            self.conversion_failures
        )?;
        writeln!(f, "genuine scores:  {}", self.genuine_scores)?;
        write!(f, "impostor scores: {}", self.impostor_scores)
    }
}

fn mix(seed: u64, a: u64, b: u64) -> u64 {
    // splitmix64 finaliser over the combined inputs.
    let mut z = seed
        .wrapping_add(a.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(b.wrapping_mul(0xbf58_476d_1ce4_e5b9));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Generates `fingers` synthetic fingers, captures each twice under
/// [`Distortion::genuine_typical`], converts both captures to compact
/// templates limited to `max_minutiae`, and runs [`super::compact_match`]
/// on every genuine pair (capture 1 vs capture 2 of the same finger) and on
/// [`IMPOSTORS_PER_FINGER`] impostor pairs per finger (capture 1 of finger
/// `f` vs capture 2 of finger `f + k`). Deterministic for a given seed.
pub fn evaluate(fingers: usize, seed: u64, max_minutiae: usize) -> RateReport {
    let mut firsts: Vec<Option<Vec<u8>>> = Vec::with_capacity(fingers);
    let mut seconds: Vec<Option<Vec<u8>>> = Vec::with_capacity(fingers);
    let mut conversion_failures = 0;
    let mut total_minutiae = 0usize;
    let mut templates = 0usize;
    for f in 0..fingers as u64 {
        let finger = SyntheticFinger::generate(mix(seed, f, 0));
        for (k, slot) in [(1u64, &mut firsts), (2u64, &mut seconds)] {
            let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, f, k));
            let distortion = Distortion::genuine_typical(&mut rng);
            let record = finger.capture(mix(seed, f, k + 10), &distortion);
            match to_compact(&record, 0, max_minutiae) {
                Ok(t) => {
                    total_minutiae += t.len() / 3;
                    templates += 1;
                    slot.push(Some(t));
                }
                Err(_) => {
                    conversion_failures += 1;
                    slot.push(None);
                }
            }
        }
    }
    let run = |a: &Option<Vec<u8>>, b: &Option<Vec<u8>>| -> (bool, f64) {
        match (a, b) {
            (Some(a), Some(b)) => match match_score(a, b) {
                Some(s) => (s.is_match(), s.value),
                None => (false, 0.0),
            },
            _ => (false, 0.0),
        }
    };
    let mut genuine = Vec::with_capacity(fingers);
    let mut false_non_matches = 0;
    for (a, b) in firsts.iter().zip(&seconds) {
        let (m, s) = run(a, b);
        if !m {
            false_non_matches += 1;
        }
        genuine.push(s);
    }
    let mut impostor = Vec::new();
    let mut false_matches = 0;
    let per = IMPOSTORS_PER_FINGER.min(fingers.saturating_sub(1));
    for f in 0..fingers {
        for k in 1..=per {
            let g = (f + k) % fingers;
            let (Some(a), Some(b)) = (firsts.get(f), seconds.get(g)) else {
                continue;
            };
            let (m, s) = run(a, b);
            if m {
                false_matches += 1;
            }
            impostor.push(s);
        }
    }
    let rate = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    RateReport {
        fingers,
        seed,
        max_minutiae,
        threshold: THRESHOLD,
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
        false_non_matches,
        false_matches,
        conversion_failures,
        fnmr: rate(false_non_matches, genuine.len()),
        fmr: rate(false_matches, impostor.len()),
        genuine_scores: Percentiles::of(&mut genuine),
        impostor_scores: Percentiles::of(&mut impostor),
        mean_minutiae: rate(total_minutiae, templates),
    }
}
