//! ISO/IEC 19794-2 compact size card format (the on-card comparison format).
//!
//! Facts used (sources: NIST MINEX II match-on-card field table, as quoted in
//! the cims-bioko/cims-prints wiki page "Fingerprint Format"; ISO/IEC
//! 19794-2:2011 clause 9.3.2 "Removing minutiae for card processing", quoted
//! at mealir.com; confirmed by templates.machinezoo.com/iso-19794-2-2005-card):
//!
//! * each minutia takes 3 bytes and there is no header;
//! * byte 1: X, byte 2: Y, both in units of 0.1 mm (10⁻¹ mm), 0..=255, so at
//!   most 25.5 mm from the image origin;
//! * byte 3: minutia type in the 2 high bits (00 other, 01 ridge ending,
//!   10 bifurcation, 11 reserved) and the angle in the 6 low bits, in units of
//!   360/64 = 5.625 degrees, measured as in the record format;
//! * when a card accepts fewer minutiae than the template has, the
//!   lowest-quality minutiae are removed first; among equal quality the one
//!   farthest (Euclidean) from the centre of mass of the whole set, computed
//!   before any removal, goes first; then ridge endings before other types;
//!   then the larger angle first. Removal happens before any sorting;
//! * a card may require a particular minutia order, announced in its
//!   Biometric Information Template (ISO/IEC 7816-11); without such a
//!   requirement no order is imposed. [`to_compact`] keeps record order;
//!   [`sort_compact`] applies the common orders when a card asks for one.

use super::error::{ErrorKind, Location, TemplateError};
use super::types::{FingerRecord, MinutiaKind};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// One minutia in the compact card format (3 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CompactMinutia {
    x: u8,
    y: u8,
    kind: MinutiaKind,
    angle: u8,
}

impl CompactMinutia {
    /// Bytes per minutia.
    pub const SIZE: usize = 3;

    /// `x`, `y` in 0.1 mm; `angle` in units of 5.625° (0..=63).
    pub fn new(kind: MinutiaKind, x: u8, y: u8, angle: u8) -> Result<Self, TemplateError> {
        if angle > 63 {
            return Err(TemplateError::without_offset(
                Location::Argument,
                ErrorKind::OutOfRange {
                    field: "compact angle",
                    found: angle.into(),
                    expected: "0..=63 (units of 5.625 degrees)",
                },
            ));
        }
        Ok(CompactMinutia { x, y, kind, angle })
    }

    /// X in 0.1 mm.
    pub fn x(&self) -> u8 {
        self.x
    }
    /// Y in 0.1 mm.
    pub fn y(&self) -> u8 {
        self.y
    }
    pub fn kind(&self) -> MinutiaKind {
        self.kind
    }
    /// Angle in units of 5.625° (0..=63).
    pub fn angle(&self) -> u8 {
        self.angle
    }
    /// Angle in degrees.
    pub fn angle_degrees(&self) -> f64 {
        f64::from(self.angle) * 5.625
    }

    /// The 3-byte encoding.
    pub fn to_bytes(self) -> [u8; 3] {
        [
            self.x,
            self.y,
            (self.kind.code() << 6) | (self.angle & 0x3f),
        ]
    }

    /// Decodes 3 bytes; fails only for the reserved type code 3.
    pub fn from_bytes(bytes: [u8; 3]) -> Result<Self, TemplateError> {
        let [x, y, ta] = bytes;
        let kind = MinutiaKind::from_code(ta >> 6).ok_or_else(|| {
            TemplateError::without_offset(
                Location::Argument,
                ErrorKind::OutOfRange {
                    field: "compact minutia type",
                    found: u64::from(ta >> 6),
                    expected: "0 (other), 1 (ending) or 2 (bifurcation)",
                },
            )
        })?;
        Ok(CompactMinutia {
            x,
            y,
            kind,
            angle: ta & 0x3f,
        })
    }
}

/// Parses a compact template: a non-empty sequence of 3-byte minutiae.
pub fn parse_compact(bytes: &[u8]) -> Result<Vec<CompactMinutia>, TemplateError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(CompactMinutia::SIZE) {
        return Err(TemplateError::without_offset(
            Location::Header,
            ErrorKind::LengthMismatch {
                field: "compact template length",
                found: bytes.len() as u64,
                expected: "a non-zero multiple of 3 bytes".to_owned(),
            },
        ));
    }
    bytes
        .chunks_exact(CompactMinutia::SIZE)
        .enumerate()
        .map(|(i, c)| {
            let arr = [
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
                c.get(2).copied().unwrap_or(0),
            ];
            CompactMinutia::from_bytes(arr).map_err(|e| TemplateError {
                offset: Some(i * 3 + 2),
                location: Location::Compact { minutia: i + 1 },
                kind: e.kind,
            })
        })
        .collect()
}

/// Serializes compact minutiae (3 bytes each, no header).
pub fn serialize_compact(minutiae: &[CompactMinutia]) -> Vec<u8> {
    minutiae.iter().flat_map(|m| m.to_bytes()).collect()
}

/// Minutia orders a card may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactOrder {
    XAscending,
    XDescending,
    YAscending,
    YDescending,
}

/// Sorts compact minutiae in place (stable; ties keep their order).
pub fn sort_compact(minutiae: &mut [CompactMinutia], order: CompactOrder) {
    match order {
        CompactOrder::XAscending => minutiae.sort_by_key(|m| m.x),
        CompactOrder::XDescending => minutiae.sort_by_key(|m| std::cmp::Reverse(m.x)),
        CompactOrder::YAscending => minutiae.sort_by_key(|m| m.y),
        CompactOrder::YDescending => minutiae.sort_by_key(|m| std::cmp::Reverse(m.y)),
    }
}

/// Pixels to 0.1 mm, rounding half up. `res` is in pixels per centimetre,
/// i.e. pixels per 100 units of 0.1 mm.
fn to_tenth_mm(px: u16, res: u16) -> u64 {
    let res = u64::from(res.max(1));
    (u64::from(px) * 200 + res) / (2 * res)
}

/// Converts view `view_index` (0-based) of `record` to compact minutiae.
///
/// Positions go from pixels to 0.1 mm with the record's resolution (pixels per
/// cm), angles from 256 to 64 steps (rounded to nearest). When the view has
/// more than `max_minutiae`, the best are kept by the ISO/IEC 19794-2:2011
/// 9.3.2 rule: highest quality first; equal quality, the one closer to the
/// centroid (centre of mass of all the view's minutiae, in millimetres) first;
/// then non-endings before endings; then the smaller angle first; then record
/// order. Kept minutiae stay in record order. A kept minutia whose position
/// exceeds 255 (25.5 mm) is an error, not clamped.
pub fn to_compact_minutiae(
    record: &FingerRecord,
    view_index: usize,
    max_minutiae: usize,
) -> Result<Vec<CompactMinutia>, TemplateError> {
    let arg = Location::Argument;
    let view = record.views.get(view_index).ok_or_else(|| {
        TemplateError::without_offset(
            arg,
            ErrorKind::LengthMismatch {
                field: "view index",
                found: view_index as u64,
                expected: format!(
                    "the record has {} views (0-based index)",
                    record.views.len()
                ),
            },
        )
    })?;
    let vloc = Location::View {
        view: view_index + 1,
    };
    if max_minutiae == 0 {
        return Err(TemplateError::without_offset(
            arg,
            ErrorKind::OutOfRange {
                field: "max_minutiae",
                found: 0,
                expected: "at least 1",
            },
        ));
    }
    if view.minutiae.is_empty() {
        return Err(TemplateError::without_offset(
            vloc,
            ErrorKind::OutOfRange {
                field: "number of minutiae",
                found: 0,
                expected: "at least 1",
            },
        ));
    }
    for (field, res) in [
        ("x resolution", record.resolution_x),
        ("y resolution", record.resolution_y),
    ] {
        if res == 0 {
            return Err(TemplateError::without_offset(
                Location::Header,
                ErrorKind::OutOfRange {
                    field,
                    found: 0,
                    expected: "a non-zero pixels/cm value",
                },
            ));
        }
    }
    let rx = f64::from(record.resolution_x);
    let ry = f64::from(record.resolution_y);
    let n = view.minutiae.len() as f64;
    // Centre of mass in pixels (exact for integer sums), distances in cm.
    let cx = view.minutiae.iter().map(|m| f64::from(m.x)).sum::<f64>() / n;
    let cy = view.minutiae.iter().map(|m| f64::from(m.y)).sum::<f64>() / n;
    let mut order: Vec<usize> = (0..view.minutiae.len()).collect();
    if order.len() > max_minutiae {
        let dist: Vec<f64> = view
            .minutiae
            .iter()
            .map(|m| ((f64::from(m.x) - cx) / rx).hypot((f64::from(m.y) - cy) / ry))
            .collect();
        let key = |i: usize| view.minutiae.get(i).copied();
        order.sort_by(|&a, &b| {
            let (Some(ma), Some(mb)) = (key(a), key(b)) else {
                return Ordering::Equal;
            };
            let da = dist.get(a).copied().unwrap_or(f64::MAX);
            let db = dist.get(b).copied().unwrap_or(f64::MAX);
            mb.quality
                .cmp(&ma.quality)
                .then(da.total_cmp(&db))
                .then((ma.kind == MinutiaKind::Ending).cmp(&(mb.kind == MinutiaKind::Ending)))
                .then(ma.angle.cmp(&mb.angle))
                .then(a.cmp(&b))
        });
        order.truncate(max_minutiae);
        order.sort_unstable();
    }
    let mut out = Vec::with_capacity(order.len());
    for i in order {
        let Some(m) = view.minutiae.get(i) else {
            continue;
        };
        let mloc = Location::Minutia {
            view: view_index + 1,
            minutia: i + 1,
        };
        let x = to_tenth_mm(m.x, record.resolution_x);
        let y = to_tenth_mm(m.y, record.resolution_y);
        for (axis, v) in [("x", x), ("y", y)] {
            if v > 255 {
                return Err(TemplateError::without_offset(
                    mloc,
                    ErrorKind::NotRepresentable { axis, found: v },
                ));
            }
        }
        let angle = (((u16::from(m.angle) + 2) / 4) % 64) as u8;
        out.push(CompactMinutia {
            x: x as u8,
            y: y as u8,
            kind: m.kind,
            angle,
        });
    }
    Ok(out)
}

/// [`to_compact_minutiae`], serialized: 3 bytes per minutia.
pub fn to_compact(
    record: &FingerRecord,
    view_index: usize,
    max_minutiae: usize,
) -> Result<Vec<u8>, TemplateError> {
    to_compact_minutiae(record, view_index, max_minutiae).map(|m| serialize_compact(&m))
}
