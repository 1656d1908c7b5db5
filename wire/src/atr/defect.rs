//! Defects found while decoding an ATR.
//!
//! A defect is a deviation from ISO/IEC 7816-3 (structure, check byte) or
//! ISO/IEC 7816-4 (historical bytes) that a careful engineer wants to know
//! about. Values the standards mark as RFU are *not* defects: they are
//! flagged on the decoded value itself.

use serde::Serialize;
use std::fmt;

/// Which of the four interface bytes of a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum InterfaceByteKind {
    /// TAi
    #[serde(rename = "TA")]
    Ta,
    /// TBi
    #[serde(rename = "TB")]
    Tb,
    /// TCi
    #[serde(rename = "TC")]
    Tc,
    /// TDi
    #[serde(rename = "TD")]
    Td,
}

impl InterfaceByteKind {
    /// The four kinds in transmission order, with the presence bit each one
    /// has in the Y nibble of T0 / TDi (ISO/IEC 7816-3:2006 §8.2.2, §8.2.3).
    pub(super) const ORDER: [(u8, InterfaceByteKind); 4] = [
        (0x1, InterfaceByteKind::Ta),
        (0x2, InterfaceByteKind::Tb),
        (0x4, InterfaceByteKind::Tc),
        (0x8, InterfaceByteKind::Td),
    ];

    /// "TA", "TB", "TC" or "TD".
    pub fn name(self) -> &'static str {
        match self {
            InterfaceByteKind::Ta => "TA",
            InterfaceByteKind::Tb => "TB",
            InterfaceByteKind::Tc => "TC",
            InterfaceByteKind::Td => "TD",
        }
    }
}

impl fmt::Display for InterfaceByteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a run of compact-TLV historical bytes could not be decoded
/// (ISO/IEC 7816-4:2013 §8.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum TlvProblem {
    /// The length nibble announces more value bytes than remain.
    LengthOverrun {
        /// Tag nibble of the object.
        tag: u8,
        /// Length announced by the length nibble.
        declared: usize,
        /// Bytes actually left after the header byte.
        available: usize,
    },
    /// Category indicator '00' needs a final 3-byte status indicator.
    MissingStatusIndicator {
        /// Bytes present after the category indicator.
        available: usize,
    },
    /// Category indicator '10' needs a following DIR data reference byte.
    MissingDirReference,
    /// An object whose length is not one the standard allows.
    UnexpectedLength {
        /// Tag nibble of the object.
        tag: u8,
        /// Length found.
        length: usize,
        /// Lengths the standard allows, as text ("1", "1 to 3").
        allowed: &'static str,
    },
}

impl fmt::Display for TlvProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlvProblem::LengthOverrun {
                tag,
                declared,
                available,
            } => write!(
                f,
                "object with tag {tag:X} announces {declared} value byte(s) but only {available} remain"
            ),
            TlvProblem::MissingStatusIndicator { available } => write!(
                f,
                "category indicator 00 requires a 3-byte status indicator at the end, but only {available} byte(s) follow it"
            ),
            TlvProblem::MissingDirReference => f.write_str(
                "category indicator 10 must be followed by a DIR data reference byte, but it is the last historical byte",
            ),
            TlvProblem::UnexpectedLength {
                tag,
                length,
                allowed,
            } => write!(
                f,
                "object with tag {tag:X} has length {length}; ISO/IEC 7816-4 allows {allowed}"
            ),
        }
    }
}

/// A deviation from ISO/IEC 7816-3 / 7816-4 found in an ATR.
///
/// Offsets are 0-based byte positions in the ATR as given (TS is offset 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Defect {
    /// No byte at all.
    Empty,
    /// TS is neither '3B' (direct) nor '3F' (inverse convention).
    InvalidTs {
        /// The byte found at offset 0.
        value: u8,
    },
    /// The ATR stops after TS: T0 is missing.
    MissingT0,
    /// An interface byte announced by T0 or TD(i-1) is missing: the ATR ends first.
    TruncatedInterfaceBytes {
        /// Level i of the missing byte.
        level: usize,
        /// Which byte of that level.
        byte: InterfaceByteKind,
        /// Offset where it should have been.
        offset: usize,
        /// "T0" or "TDi": the byte whose Y nibble announced it.
        announced_by: String,
        /// Value of that announcing byte.
        announcer_value: u8,
    },
    /// T0 announces K historical bytes but fewer are present.
    HistoricalBytesTruncated {
        /// K from T0.
        announced: usize,
        /// Historical bytes actually present.
        present: usize,
        /// Offset of the first historical byte.
        offset: usize,
    },
    /// A protocol other than T=0 is offered, so TCK is mandatory, but it is absent.
    MissingTck {
        /// Offset where TCK was expected.
        offset: usize,
    },
    /// The XOR of T0..TCK is not zero.
    WrongTck {
        /// Offset of TCK.
        offset: usize,
        /// The TCK value that would make the XOR zero.
        expected: u8,
        /// The TCK value found.
        found: u8,
    },
    /// Bytes after the end of the ATR (after TCK, or after the historical
    /// bytes when no TCK is due).
    TrailingBytes {
        /// Offset of the first trailing byte.
        offset: usize,
        /// The trailing bytes.
        bytes: Vec<u8>,
        /// True when there is exactly one trailing byte, no TCK was due
        /// (only T=0), and that byte would be a correct TCK: the card most
        /// likely sends a TCK it is not supposed to send.
        checksum_like: bool,
    },
    /// More than 33 bytes were given (ISO/IEC 7816-3:2006 §8.2.1 caps an ATR at 32 bytes after TS).
    TooLong {
        /// Number of bytes given.
        length: usize,
    },
    /// TD1 announces T=15, which ISO/IEC 7816-3:2006 §8.2.3 forbids in TD1.
    T15InTd1 {
        /// Offset of TD1.
        offset: usize,
    },
    /// Historical bytes that should be compact-TLV coded but are not decodable.
    MalformedCompactTlv {
        /// Offset of the byte where decoding failed.
        offset: usize,
        /// What is wrong there.
        reason: TlvProblem,
    },
}

impl Defect {
    /// A short stable name of the defect kind (the serde tag), for counting.
    pub fn kind(&self) -> &'static str {
        match self {
            Defect::Empty => "empty",
            Defect::InvalidTs { .. } => "invalid_ts",
            Defect::MissingT0 => "missing_t0",
            Defect::TruncatedInterfaceBytes { .. } => "truncated_interface_bytes",
            Defect::HistoricalBytesTruncated { .. } => "historical_bytes_truncated",
            Defect::MissingTck { .. } => "missing_tck",
            Defect::WrongTck { .. } => "wrong_tck",
            Defect::TrailingBytes { .. } => "trailing_bytes",
            Defect::TooLong { .. } => "too_long",
            Defect::T15InTd1 { .. } => "t15_in_td1",
            Defect::MalformedCompactTlv { .. } => "malformed_compact_tlv",
        }
    }
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Defect::Empty => f.write_str("the ATR is empty: not even TS is present"),
            Defect::InvalidTs { value } => {
                write!(
                    f,
                    "TS (offset 0) is {value:02X}; it must be 3B (direct convention) or 3F (inverse convention)"
                )?;
                if *value == 0x03 {
                    f.write_str(
                        "; 03 is what an inverse-convention TS looks like when read with the direct convention, so the bytes may not have been converted",
                    )?;
                }
                Ok(())
            }
            Defect::MissingT0 => {
                f.write_str("the ATR ends after TS: the format byte T0 (offset 1) is missing")
            }
            Defect::TruncatedInterfaceBytes {
                level,
                byte,
                offset,
                announced_by,
                announcer_value,
            } => write!(
                f,
                "interface byte {byte}{level} is announced by {announced_by} = {announcer_value:02X} but missing: the ATR ends at offset {offset}"
            ),
            Defect::HistoricalBytesTruncated {
                announced,
                present,
                offset,
            } => write!(
                f,
                "T0 announces {announced} historical byte(s) starting at offset {offset}, but only {present} are present"
            ),
            Defect::MissingTck { offset } => write!(
                f,
                "TCK is missing at offset {offset}: it is mandatory because a protocol other than T=0 is indicated"
            ),
            Defect::WrongTck {
                offset,
                expected,
                found,
            } => write!(
                f,
                "TCK at offset {offset} is {found:02X} but should be {expected:02X} (XOR of T0..TCK must be 00)"
            ),
            Defect::TrailingBytes {
                offset,
                bytes,
                checksum_like,
            } => {
                write!(
                    f,
                    "{} byte(s) after the end of the ATR at offset {offset}: {}",
                    bytes.len(),
                    super::hex(bytes)
                )?;
                if *checksum_like {
                    f.write_str(
                        " (it is a valid check byte: the card sends a TCK although only T=0 is indicated)",
                    )?;
                }
                Ok(())
            }
            Defect::TooLong { length } => write!(
                f,
                "{length} bytes given; an ATR has at most 33 bytes (TS plus 32)"
            ),
            Defect::T15InTd1 { offset } => write!(
                f,
                "TD1 at offset {offset} indicates T=15, which is invalid in TD1"
            ),
            Defect::MalformedCompactTlv { offset, reason } => {
                write!(f, "malformed historical bytes at offset {offset}: {reason}")
            }
        }
    }
}
