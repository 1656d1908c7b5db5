//! Validation errors.

use std::fmt;

/// One refused field of one record.
///
/// Displays as
/// `batch.jsonl:7 (record R-000007): given_name.fa: contains Latin letters; expected Persian script`.
/// The record part is left out when the record has no valid `record_id`, and
/// the field part when the error concerns the record as a whole (e.g. a JSON
/// syntax error). Errors never carry photo or template bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordError {
    /// Where the record came from, e.g. `batch.jsonl:7`.
    pub location: String,
    /// The record's `record_id`, if it had a valid one.
    pub record_id: Option<String>,
    /// JSON path of the field, e.g. `given_name.fa` or `fingerprints[1].data`;
    /// empty for errors about the whole record.
    pub field: String,
    /// The rule that was broken.
    pub rule: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location)?;
        if let Some(id) = &self.record_id {
            write!(f, " (record {id})")?;
        }
        f.write_str(": ")?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.rule)
    }
}

impl std::error::Error for RecordError {}
