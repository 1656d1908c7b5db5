//! Fingerprint minutiae templates for ID cards.
//!
//! * [`parse`]: strict parser for ISO/IEC 19794-2:2005 (`"FMR\0" " 20\0"`) and
//!   2011 (`"FMR\0" "030\0"`) finger minutiae records. Rules checked: format
//!   identifier and version; the record length field equals the input length;
//!   the number of views (2011: representations, each with its own length
//!   field) matches the data; each view's minutia count fits the bytes;
//!   extended data lengths (each counting its block's 4-byte header, in both
//!   editions) fit and add up, block type codes are not reserved;
//!   every minutia lies inside width × height; minutia type is not the
//!   reserved code 3; reserved bits (y's top two bits, the header's reserved
//!   byte) are zero; finger and minutia quality 0..=100 (2011 minutiae also
//!   254/255); finger position 0..=10; impression type defined by the
//!   edition; width/height 1..=16383; resolutions non-zero; at least one view
//!   and one minutia per view; no trailing bytes ([`parse_with_warnings`]
//!   accepts trailing zero padding with a warning); an ANSI/INCITS 378 record
//!   is named as such. Errors ([`TemplateError`])
//!   give byte offset, view/minutia (1-based), field, found and expected
//!   values, and never raw template bytes. The parser never panics.
//! * [`encode_2005`]: the inverse for 2005 records.
//! * [`to_compact`]: the ISO/IEC 19794-2 compact size card format (3 bytes per
//!   minutia) with the standard's minutia-removal rule for card limits.
//! * [`compact_match`] / [`compare`]: the on-card matcher.
//! * [`SyntheticFinger`] and [`evaluate`]: synthetic data and error rates.

// No panic reachable from input (cards, files, the network): outside tests,
// no indexing or slicing that can go out of bounds, no unwrap, no expect.
// An invariant that cannot fail says so with an `allow` and its reason.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]
mod compact;
mod encode;
mod error;
mod eval;
mod matcher;
mod parse;
mod synthetic;
mod types;

#[cfg(test)]
mod tests;

pub use compact::{
    parse_compact, serialize_compact, sort_compact, to_compact, to_compact_minutiae,
    CompactMinutia, CompactOrder,
};
pub use encode::encode_2005;
pub use error::{ErrorKind, Location, TemplateError};
pub use eval::{evaluate, Percentiles, RateReport, IMPOSTORS_PER_FINGER};
pub use matcher::{
    compact_match, compare, match_score, Score, MAX_MINUTIAE, MIN_PAIRED, THRESHOLD,
};
pub use parse::{parse, parse_with_warnings, ParseWarning, Parsed};
pub use synthetic::{Distortion, MasterMinutia, Pattern, SyntheticFinger};
pub use types::{
    Capture2011, CaptureDateTime, CertificationBlock, ExtendedDataBlock, FingerPosition,
    FingerRecord, FingerView, ImpressionType, Minutia, MinutiaKind, ParsePositionError,
    QualityBlock, Version,
};
