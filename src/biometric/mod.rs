//! Biometric comparison (match-on-card).

// TEMPORARY: replaced by the real matcher at merge
/// Compare a reference minutiae set with a probe, both in the ISO/IEC
/// 19794-2 compact card format (3 bytes per minutia). `None` when either
/// input is malformed (empty or not a multiple of 3 bytes); otherwise
/// whether the probe matches the reference.
pub fn compact_match(reference: &[u8], probe: &[u8]) -> Option<bool> {
    let well_formed = |b: &[u8]| !b.is_empty() && b.len().is_multiple_of(3);
    if !well_formed(reference) || !well_formed(probe) {
        return None;
    }
    Some(reference == probe)
}
