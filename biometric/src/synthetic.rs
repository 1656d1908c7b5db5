//! Synthetic fingers for demos, tests and benchmarks.
//!
//! A [`SyntheticFinger`] is a master set of minutiae in a finger-shaped
//! (elliptical) region of a 300×400 pixel, 500 dpi (197 px/cm) image. Minutia
//! directions follow a ridge orientation field drawn from a zero-pole model
//! (arch, left loop, right loop or whorl), so that unrelated fingers share the
//! smooth flow that makes real impostor comparisons hard. Each
//! [`SyntheticFinger::capture`] applies a [`Distortion`] and yields a 2005
//! record with one view.

use super::types::*;
use rand::seq::SliceRandom;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f64::consts::{PI, TAU};

/// Image width in pixels.
pub const IMAGE_WIDTH: u16 = 300;
/// Image height in pixels.
pub const IMAGE_HEIGHT: u16 = 400;
/// 500 dpi in pixels per centimetre.
pub const RESOLUTION: u16 = 197;
/// Minimum distance between master minutiae, pixels (about 0.4 mm).
pub const MIN_SPACING: f64 = 8.0;

const CENTER: (f64, f64) = (IMAGE_WIDTH as f64 / 2.0, IMAGE_HEIGHT as f64 / 2.0);

/// A master minutia: position in pixels, direction in radians in the
/// x-right/y-down image frame (the ISO angle is its negative).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MasterMinutia {
    pub x: f64,
    pub y: f64,
    pub direction: f64,
    pub kind: MinutiaKind,
}

/// Ridge flow class of a synthetic finger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Arch,
    LeftLoop,
    RightLoop,
    Whorl,
}

/// A synthetic finger: the "true" minutiae every capture is derived from.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticFinger {
    pub seed: u64,
    pub pattern: Pattern,
    pub position: FingerPosition,
    /// Finger region: ellipse centre and semi-axes, pixels.
    pub region: ((f64, f64), (f64, f64)),
    pub minutiae: Vec<MasterMinutia>,
}

/// How one capture differs from the master finger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Distortion {
    /// Rotation about the image centre, degrees (positive turns clockwise on screen).
    pub rotation_deg: f64,
    /// Shift in pixels.
    pub shift_x: f64,
    pub shift_y: f64,
    /// Fraction of master minutiae not detected (0..1).
    pub missing: f64,
    /// Spurious minutiae added.
    pub spurious: usize,
    /// Per-minutia positional jitter, uniform in ±this many pixels per axis.
    pub jitter_px: f64,
    /// Per-minutia direction noise, uniform in ±this many degrees.
    pub angle_noise_deg: f64,
}

impl Distortion {
    /// No distortion at all.
    pub fn none() -> Self {
        Distortion {
            rotation_deg: 0.0,
            shift_x: 0.0,
            shift_y: 0.0,
            missing: 0.0,
            spurious: 0,
            jitter_px: 0.0,
            angle_noise_deg: 0.0,
        }
    }

    /// Typical genuine capture: rotation ±20°, shift ±30 px per axis, 10–25 %
    /// missing, 0–5 spurious, jitter ±3 px, direction noise ±8°.
    pub fn genuine_typical<R: Rng + ?Sized>(rng: &mut R) -> Self {
        Distortion {
            rotation_deg: rng.random_range(-20.0..=20.0),
            shift_x: rng.random_range(-30.0..=30.0),
            shift_y: rng.random_range(-30.0..=30.0),
            missing: rng.random_range(0.10..=0.25),
            spurious: rng.random_range(0..=5),
            jitter_px: 3.0,
            angle_noise_deg: 8.0,
        }
    }
}

fn kind<R: Rng + ?Sized>(rng: &mut R) -> MinutiaKind {
    match rng.random_range(0..100) {
        0..47 => MinutiaKind::Ending,
        47..94 => MinutiaKind::Bifurcation,
        _ => MinutiaKind::Other,
    }
}

fn in_ellipse(x: f64, y: f64, c: (f64, f64), r: (f64, f64)) -> bool {
    ((x - c.0) / r.0).powi(2) + ((y - c.1) / r.1).powi(2) <= 1.0
}

fn in_image(x: f64, y: f64) -> bool {
    x >= 0.0 && y >= 0.0 && x < f64::from(IMAGE_WIDTH) && y < f64::from(IMAGE_HEIGHT)
}

impl SyntheticFinger {
    /// A new finger with 35–60 minutiae at least `MIN_SPACING` (8 px) apart.
    pub fn generate(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let pattern = match rng.random_range(0..10) {
            0 => Pattern::Arch,
            1..4 => Pattern::LeftLoop,
            4..7 => Pattern::RightLoop,
            _ => Pattern::Whorl,
        };
        let position = FingerPosition::ALL
            .get(rng.random_range(1..=10))
            .copied()
            .unwrap_or(FingerPosition::Unknown);
        let c = (
            CENTER.0 + rng.random_range(-10.0..=10.0),
            CENTER.1 + rng.random_range(0.0..=20.0),
        );
        let r = (
            rng.random_range(110.0..=130.0),
            rng.random_range(165.0..=190.0),
        );
        let core = (
            c.0 + rng.random_range(-25.0..=25.0),
            c.1 - rng.random_range(10.0..=50.0),
        );
        let side = rng.random_range(60.0..=90.0);
        let below = rng.random_range(70.0..=110.0);
        type Points = Vec<(f64, f64)>;
        let (cores, deltas): (Points, Points) = match pattern {
            Pattern::Arch => (vec![], vec![]),
            Pattern::LeftLoop => (vec![core], vec![(core.0 + side, core.1 + below)]),
            Pattern::RightLoop => (vec![core], vec![(core.0 - side, core.1 + below)]),
            Pattern::Whorl => (
                vec![(core.0 - 12.0, core.1), (core.0 + 12.0, core.1 + 15.0)],
                vec![
                    (core.0 - side, core.1 + below),
                    (core.0 + side, core.1 + below),
                ],
            ),
        };
        let base = rng.random_range(-0.2..=0.2);
        let arch_k = rng.random_range(0.4..=0.8);
        let flow = |x: f64, y: f64| -> f64 {
            let mut t = base;
            for (cx, cy) in &cores {
                t += 0.5 * (y - cy).atan2(x - cx);
            }
            for (dx, dy) in &deltas {
                t -= 0.5 * (y - dy).atan2(x - dx);
            }
            if cores.is_empty() {
                t += arch_k * ((x - c.0) / r.0) * (-((y - c.1 + 40.0) / 90.0).powi(2)).exp();
            }
            t
        };
        let target = rng.random_range(35..=60);
        let mut minutiae: Vec<MasterMinutia> = Vec::with_capacity(target);
        let mut attempts = 0;
        while minutiae.len() < target && attempts < 20_000 {
            attempts += 1;
            let x = rng.random_range(c.0 - r.0..=c.0 + r.0);
            let y = rng.random_range(c.1 - r.1..=c.1 + r.1);
            if !in_ellipse(x, y, c, r) || !in_image(x, y) {
                continue;
            }
            if minutiae
                .iter()
                .any(|m| (m.x - x).hypot(m.y - y) < MIN_SPACING)
            {
                continue;
            }
            let flip = if rng.random_bool(0.5) { PI } else { 0.0 };
            let noise = rng.random_range(-10.0f64..=10.0).to_radians();
            minutiae.push(MasterMinutia {
                x,
                y,
                direction: (flow(x, y) + flip + noise).rem_euclid(TAU),
                kind: kind(&mut rng),
            });
        }
        SyntheticFinger {
            seed,
            pattern,
            position,
            region: (c, r),
            minutiae,
        }
    }

    /// One capture: a 2005 record (300×400 px, 197 px/cm, one view) of this
    /// finger under `distortion`, with per-minutia randomness from `seed`.
    /// Qualities are uniform in 40..=100; minutiae that leave the image are
    /// dropped; the record always has at least one minutia.
    pub fn capture(&self, seed: u64, distortion: &Distortion) -> FingerRecord {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ self.seed.rotate_left(17) ^ 0x5bd1_e995);
        let d = distortion;
        let mut kept: Vec<MasterMinutia> = self.minutiae.clone();
        kept.shuffle(&mut rng);
        let drop = ((self.minutiae.len() as f64) * d.missing.clamp(0.0, 1.0)).round() as usize;
        kept.truncate(self.minutiae.len().saturating_sub(drop));
        let rot = d.rotation_deg.to_radians();
        let (s, co) = rot.sin_cos();
        let place = |x: f64, y: f64| -> (f64, f64) {
            let (dx, dy) = (x - CENTER.0, y - CENTER.1);
            (
                CENTER.0 + co * dx - s * dy + d.shift_x,
                CENTER.1 + s * dx + co * dy + d.shift_y,
            )
        };
        let mut out: Vec<(f64, f64, f64, MinutiaKind)> = Vec::new();
        for m in &kept {
            let (x, y) = place(m.x, m.y);
            let jx = if d.jitter_px > 0.0 {
                rng.random_range(-d.jitter_px..=d.jitter_px)
            } else {
                0.0
            };
            let jy = if d.jitter_px > 0.0 {
                rng.random_range(-d.jitter_px..=d.jitter_px)
            } else {
                0.0
            };
            let an = if d.angle_noise_deg > 0.0 {
                rng.random_range(-d.angle_noise_deg..=d.angle_noise_deg)
                    .to_radians()
            } else {
                0.0
            };
            out.push((x + jx, y + jy, m.direction + rot + an, m.kind));
        }
        let (c, r) = self.region;
        let (cx, cy) = place(c.0, c.1);
        let mut placed = 0;
        let mut attempts = 0;
        while placed < d.spurious && attempts < 10_000 {
            attempts += 1;
            let x = rng.random_range(0.0..f64::from(IMAGE_WIDTH));
            let y = rng.random_range(0.0..f64::from(IMAGE_HEIGHT));
            // The region turns with the finger; an ellipse test on the
            // un-rotated offsets is close enough for placing noise.
            if !in_ellipse(x, y, (cx, cy), r) {
                continue;
            }
            placed += 1;
            out.push((x, y, rng.random_range(0.0..TAU), kind(&mut rng)));
        }
        let mut minutiae: Vec<Minutia> = out
            .into_iter()
            .filter(|&(x, y, _, _)| in_image(x.round(), y.round()))
            .map(|(x, y, dir, kind)| Minutia {
                kind,
                x: x.round() as u16,
                y: y.round() as u16,
                angle: ((-dir).rem_euclid(TAU) / TAU * 256.0).round() as u16 as u8,
                quality: rng.random_range(40..=100),
            })
            .collect();
        if minutiae.is_empty() {
            minutiae.push(Minutia {
                kind: MinutiaKind::Other,
                x: IMAGE_WIDTH / 2,
                y: IMAGE_HEIGHT / 2,
                angle: 0,
                quality: 40,
            });
        }
        minutiae.sort_by_key(|m| (m.y, m.x));
        let quality = (minutiae.iter().map(|m| u32::from(m.quality)).sum::<u32>()
            / minutiae.len() as u32) as u8;
        FingerRecord {
            version: Version::V2005,
            capture_equipment_compliance: 0,
            capture_equipment_id: 0,
            width: IMAGE_WIDTH,
            height: IMAGE_HEIGHT,
            resolution_x: RESOLUTION,
            resolution_y: RESOLUTION,
            certification_flag: false,
            views: vec![FingerView {
                position: self.position,
                view_number: 0,
                impression_type: ImpressionType::LivePlain,
                quality,
                minutiae,
                extended_data_len: 0,
                extended_data: vec![],
                capture_2011: None,
            }],
        }
    }
}
