//! Decoded finger minutiae record (ISO/IEC 19794-2:2005 and :2011).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Finger position code (ISO/IEC 19794-2, finger position table; codes 0..=10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FingerPosition {
    Unknown = 0,
    RightThumb = 1,
    RightIndex = 2,
    RightMiddle = 3,
    RightRing = 4,
    RightLittle = 5,
    LeftThumb = 6,
    LeftIndex = 7,
    LeftMiddle = 8,
    LeftRing = 9,
    LeftLittle = 10,
}

impl FingerPosition {
    /// All positions in code order.
    pub const ALL: [FingerPosition; 11] = [
        FingerPosition::Unknown,
        FingerPosition::RightThumb,
        FingerPosition::RightIndex,
        FingerPosition::RightMiddle,
        FingerPosition::RightRing,
        FingerPosition::RightLittle,
        FingerPosition::LeftThumb,
        FingerPosition::LeftIndex,
        FingerPosition::LeftMiddle,
        FingerPosition::LeftRing,
        FingerPosition::LeftLittle,
    ];

    /// The position with this code, if the code is 0..=10.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// The code written in a record.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The ISO/IEC 19794-2 code (same as [`FingerPosition::code`]).
    pub fn iso_code(self) -> u8 {
        self.code()
    }

    /// The record format's spelling, e.g. `right_index` (same as [`FingerPosition::name`]).
    pub fn as_str(self) -> &'static str {
        self.name()
    }

    /// Parses the record format's spelling exactly (no case or separator
    /// folding, unlike `FromStr`).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }

    /// The snake_case name used by serde, `Display` and `FromStr`.
    pub fn name(self) -> &'static str {
        match self {
            FingerPosition::Unknown => "unknown",
            FingerPosition::RightThumb => "right_thumb",
            FingerPosition::RightIndex => "right_index",
            FingerPosition::RightMiddle => "right_middle",
            FingerPosition::RightRing => "right_ring",
            FingerPosition::RightLittle => "right_little",
            FingerPosition::LeftThumb => "left_thumb",
            FingerPosition::LeftIndex => "left_index",
            FingerPosition::LeftMiddle => "left_middle",
            FingerPosition::LeftRing => "left_ring",
            FingerPosition::LeftLittle => "left_little",
        }
    }
}

impl fmt::Display for FingerPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a finger position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown finger position {0:?}, expected e.g. right_index or left_thumb")]
pub struct ParsePositionError(pub String);

impl FromStr for FingerPosition {
    type Err = ParsePositionError;

    /// Accepts the snake_case names (`right_index`), case-insensitively, with
    /// `-` or space in place of `_`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s
            .trim()
            .chars()
            .map(|c| match c {
                '-' | ' ' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.name() == norm)
            .ok_or_else(|| ParsePositionError(s.to_owned()))
    }
}

/// Minutia type (2 bits in both the record and the compact card format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MinutiaKind {
    /// Code 0.
    Other = 0,
    /// Code 1: ridge ending.
    Ending = 1,
    /// Code 2: ridge bifurcation.
    Bifurcation = 2,
}

impl MinutiaKind {
    /// The kind with this 2-bit code; code 3 is reserved.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(MinutiaKind::Other),
            1 => Some(MinutiaKind::Ending),
            2 => Some(MinutiaKind::Bifurcation),
            _ => None,
        }
    }

    /// The 2-bit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for MinutiaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MinutiaKind::Other => "other",
            MinutiaKind::Ending => "ending",
            MinutiaKind::Bifurcation => "bifurcation",
        })
    }
}

/// Impression type code. 2005 allows 0..=3 and 8; 2011 allows 0..=9, 24, 28, 29.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImpressionType {
    LivePlain = 0,
    LiveRolled = 1,
    NonLivePlain = 2,
    NonLiveRolled = 3,
    LatentImpression = 4,
    LatentTracing = 5,
    LatentPhoto = 6,
    LatentLift = 7,
    Swipe = 8,
    VerticalRoll = 9,
    LiveContactless = 24,
    Other = 28,
    Unknown = 29,
}

impl ImpressionType {
    /// The impression type with this code, if `version` allows it.
    pub fn from_code(code: u8, version: Version) -> Option<Self> {
        use ImpressionType::*;
        let t = match code {
            0 => LivePlain,
            1 => LiveRolled,
            2 => NonLivePlain,
            3 => NonLiveRolled,
            4 => LatentImpression,
            5 => LatentTracing,
            6 => LatentPhoto,
            7 => LatentLift,
            8 => Swipe,
            9 => VerticalRoll,
            24 => LiveContactless,
            28 => Other,
            29 => Unknown,
            _ => return None,
        };
        t.allowed_in(version).then_some(t)
    }

    /// Whether the edition `version` defines this code.
    pub fn allowed_in(self, version: Version) -> bool {
        match version {
            Version::V2005 => matches!(self.code(), 0..=3 | 8),
            Version::V2011 => true,
        }
    }

    /// The code written in a record.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Edition of ISO/IEC 19794-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Version {
    /// ISO/IEC 19794-2:2005, version field `" 20\0"`.
    V2005,
    /// ISO/IEC 19794-2:2011, version field `"030\0"`.
    V2011,
}

/// One minutia in record units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Minutia {
    pub kind: MinutiaKind,
    /// Pixels from the left edge, `< width`.
    pub x: u16,
    /// Pixels from the top edge, `< height`.
    pub y: u16,
    /// Direction in units of 360/256 degrees, counter-clockwise from the
    /// horizontal axis pointing right (as seen on the image).
    pub angle: u8,
    /// 0..=100 (2011 also allows 254 "not reported" and 255 "failed").
    pub quality: u8,
}

/// An extended data block of a view: type code and opaque content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExtendedDataBlock {
    /// 1 ridge counts, 2 core and delta, 0x0100.. vendor defined.
    pub type_code: u16,
    pub data: Vec<u8>,
}

/// Capture date and time of a 2011 representation; 0xFF / 0xFFFF fill means "not given".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CaptureDateTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub millisecond: u16,
}

/// A 2011 quality block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QualityBlock {
    /// 0..=100, or 255 for "failed to compute".
    pub score: u8,
    pub vendor: u16,
    pub algorithm: u16,
}

/// A 2011 certification block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CertificationBlock {
    pub authority: u16,
    pub scheme: u8,
}

/// Fields that only a 2011 representation header carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Capture2011 {
    pub datetime: CaptureDateTime,
    /// Capture device technology code (0 = unknown).
    pub device_technology: u8,
    pub device_vendor: u16,
    pub device_type: u16,
    pub quality_blocks: Vec<QualityBlock>,
    pub certifications: Vec<CertificationBlock>,
    /// 0: endings at valley skeleton bifurcations, 1: at ridge skeleton end points.
    pub ending_type: u8,
    /// Whether minutiae carry a quality byte (6-byte minutiae) or not (5-byte;
    /// their `quality` is then 254, "not reported").
    pub minutia_quality_present: bool,
}

/// One finger view (2005) or finger representation (2011).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FingerView {
    pub position: FingerPosition,
    /// 0..=15 (2005: 4-bit view number; 2011: representation number).
    pub view_number: u8,
    pub impression_type: ImpressionType,
    /// Finger quality 0..=100. For 2011, the score of the first quality block
    /// (254 when there is none); the encoder of 2011 records is not provided.
    pub quality: u8,
    pub minutiae: Vec<Minutia>,
    /// Value of the extended data block length field: the total size of
    /// `extended_data` including each block's 4-byte type and length header.
    pub extended_data_len: u16,
    /// The extended data blocks, content kept opaque.
    pub extended_data: Vec<ExtendedDataBlock>,
    /// 2011 only.
    pub capture_2011: Option<Capture2011>,
}

impl FingerView {
    /// The extended data length implied by `extended_data` (what the encoder writes).
    pub fn computed_extended_data_len(&self) -> usize {
        self.extended_data.iter().map(|b| 4 + b.data.len()).sum()
    }
}

/// A finger minutiae record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FingerRecord {
    pub version: Version,
    /// 2005: capture equipment compliance (4 bits); 0 for 2011.
    pub capture_equipment_compliance: u8,
    /// 2005: capture equipment ID (12 bits); 0 for 2011 (see `Capture2011`).
    pub capture_equipment_id: u16,
    /// Image width in pixels.
    pub width: u16,
    /// Image height in pixels.
    pub height: u16,
    /// Horizontal resolution, pixels per centimetre (197 = 500 dpi).
    pub resolution_x: u16,
    /// Vertical resolution, pixels per centimetre.
    pub resolution_y: u16,
    /// 2011: the general header's certification flag; false for 2005.
    pub certification_flag: bool,
    pub views: Vec<FingerView>,
}
