//! The error type shared by the parser, the encoder and the compact-format code.
//!
//! Errors say where (byte offset and view/minutia), which field, what was found
//! and what was expected. They never carry raw template bytes: only the decoded
//! value of the one field that was wrong.

use std::fmt;

/// Where in a record an error was found. View, minutia and extension numbers
/// are 1-based, as a person counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The general record header.
    Header,
    /// The header of a finger view (2005) or representation (2011).
    View { view: usize },
    /// One minutia of a view.
    Minutia { view: usize, minutia: usize },
    /// One extended data block of a view.
    Extension { view: usize, block: usize },
    /// One minutia of a compact card template.
    Compact { minutia: usize },
    /// Arguments given by the caller rather than the record.
    Argument,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Location::Header => f.write_str("header"),
            Location::View { view } => write!(f, "view {view}"),
            Location::Minutia { view, minutia } => write!(f, "view {view} minutia {minutia}"),
            Location::Extension { view, block } => {
                write!(f, "view {view} extended data block {block}")
            }
            Location::Compact { minutia } => write!(f, "compact minutia {minutia}"),
            Location::Argument => f.write_str("argument"),
        }
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The input ends inside a field.
    #[error("{field} needs {needed} bytes but only {available} remain")]
    Truncated {
        field: &'static str,
        needed: usize,
        available: usize,
    },
    /// The format identifier is not `"FMR\0"`.
    #[error("format identifier is {found:#010x}, expected 0x464d5200 (\"FMR\\0\")")]
    BadMagic { found: u32 },
    /// The version field names neither supported edition.
    #[error("version is {found:#010x}, expected \" 20\\0\" (2005) or \"030\\0\" (2011)")]
    UnsupportedVersion { found: u32 },
    /// A length or count field disagrees with the data.
    #[error("{field} = {found}, but {expected}")]
    LengthMismatch {
        field: &'static str,
        found: u64,
        expected: String,
    },
    /// A field holds a value outside its allowed range or code list.
    #[error("{field} = {found} is not allowed, expected {expected}")]
    OutOfRange {
        field: &'static str,
        found: u64,
        expected: &'static str,
    },
    /// Reserved bits are set.
    #[error("reserved bits of {field} are {found:#x}, expected 0")]
    Reserved { field: &'static str, found: u64 },
    /// A minutia lies outside the image.
    #[error("{axis} = {found} is outside the image {dimension} {limit}")]
    OutsideImage {
        axis: &'static str,
        found: u64,
        dimension: &'static str,
        limit: u64,
    },
    /// An ANSI/INCITS 378 record: same format identifier and version, but a
    /// 2- or 6-byte record length followed by a CBEFF product identifier.
    #[error("this is an ANSI/INCITS 378 record, not ISO/IEC 19794-2 (its record length, {declared_length} bytes, is in ANSI's 2- or 6-byte form and a CBEFF product identifier follows it); ask the capture software for an ISO/IEC 19794-2 record")]
    AnsiRecord { declared_length: u64 },
    /// Bytes follow the last view.
    #[error("{count} bytes follow the last view, expected none")]
    TrailingBytes { count: usize },
    /// A coordinate does not fit the one-byte compact field.
    #[error("{axis} = {found} (0.1 mm) does not fit the compact format, maximum 255")]
    NotRepresentable { axis: &'static str, found: u64 },
    /// The record is valid but uses something this module does not handle.
    #[error("unsupported: {what}")]
    Unsupported { what: &'static str },
}

/// An invalid, truncated or unsupported finger minutiae template.
///
/// Display: `byte 28: view 1 minutia 3: x = 600 is outside the image width 512`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte offset of the offending field in the input, when there is one.
    pub offset: Option<usize>,
    /// Which part of the record.
    pub location: Location,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl TemplateError {
    pub(crate) fn at(offset: usize, location: Location, kind: ErrorKind) -> Self {
        TemplateError {
            offset: Some(offset),
            location,
            kind,
        }
    }

    pub(crate) fn without_offset(location: Location, kind: ErrorKind) -> Self {
        TemplateError {
            offset: None,
            location,
            kind,
        }
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(offset) = self.offset {
            write!(f, "byte {offset}: ")?;
        }
        write!(f, "{}: {}", self.location, self.kind)
    }
}

impl std::error::Error for TemplateError {}
