//! File control information: building the FCP / FCI / FMD templates returned
//! by SELECT, and parsing the FCP template given to CREATE FILE.
//!
//! ISO/IEC 7816-4:2013 §5.3.3 (tables 10–14): FCP template 62, FMD template
//! 64, FCI template 6F; ISO/IEC 7816-9 for CREATE FILE.

use super::apdu::sw;
use super::fs::{lcs, CardState, FileKind, FileRec, MF_FID};
use super::security::compact_rule_valid;
use super::tlv::{be_min, be_uint, parse_all, parse_one, push_tlv, tlv};

/// File descriptor byte: transparent working EF (table 11).
pub(super) const FDB_TRANSPARENT_EF: u8 = 0x01;
/// File descriptor byte: DF.
pub(super) const FDB_DF: u8 = 0x38;
/// Largest EF this card creates (offsets are at most 3 bytes in DO 54).
pub(super) const MAX_EF_SIZE: usize = 0x00FF_FFFF;

/// The inner data objects of the FCP for `f`.
fn fcp_body(state: &CardState, f: &FileRec) -> Vec<u8> {
    let mut b = Vec::new();
    if let FileKind::Ef { data, .. } = &f.kind {
        let size = data.len();
        let enc = if size <= 0xFFFF {
            (size as u16).to_be_bytes().to_vec()
        } else {
            be_min(size)
        };
        push_tlv(&mut b, 0x80, &enc);
    }
    let fdb = if f.is_df() {
        FDB_DF
    } else {
        FDB_TRANSPARENT_EF
    };
    push_tlv(&mut b, 0x82, &[fdb]);
    push_tlv(&mut b, 0x83, &f.fid.to_be_bytes());
    if let Some(n) = f.name() {
        push_tlv(&mut b, 0x84, n);
    }
    if let Some(sfi) = f.sfi() {
        push_tlv(&mut b, 0x88, &[sfi << 3]);
    }
    push_tlv(&mut b, 0x8A, &[f.lcs]);
    if let Some(sec) = &f.security {
        push_tlv(&mut b, 0x8C, sec);
    }
    if f.is_df() {
        // Proprietary information: C1 = free memory in bytes (4 bytes).
        let free = u32::try_from(state.free_memory()).unwrap_or(u32::MAX);
        push_tlv(&mut b, 0xA5, &tlv(0xC1, &free.to_be_bytes()));
    }
    b
}

/// FCP template (62).
pub(super) fn fcp(state: &CardState, f: &FileRec) -> Vec<u8> {
    tlv(0x62, &fcp_body(state, f))
}

/// FCI template (6F): this card puts the FCP data objects and, for named DFs,
/// nothing more (the DF name 84 is already part of them).
pub(super) fn fci(state: &CardState, f: &FileRec) -> Vec<u8> {
    tlv(0x6F, &fcp_body(state, f))
}

/// FMD template (64): the DF name for named DFs, otherwise empty.
pub(super) fn fmd(f: &FileRec) -> Vec<u8> {
    match f.name() {
        Some(n) => tlv(0x64, &tlv(0x84, n)),
        None => vec![0x64, 0x00],
    }
}

/// What CREATE FILE asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NewFile {
    pub fid: u16,
    pub is_df: bool,
    pub size: usize,
    pub name: Option<Vec<u8>>,
    pub lcs: Option<u8>,
    pub security: Option<Vec<u8>>,
    /// Explicit SFI from tag 88: `Some(None)` = "no SFI" (88 empty).
    pub sfi: Option<Option<u8>>,
}

/// Parse the CREATE FILE data field. Returns 6A80 when:
/// - the field is not exactly one FCP template 62, or a data object in it is
///   malformed (truncated, bad length) or appears twice;
/// - 82 (file descriptor) is missing or not 01 (transparent working EF) /
///   38 (DF);
/// - 83 (FID) is missing, not 2 bytes, or reserved (3F00, 3FFF, FFFF);
/// - an EF has no size (80 or 81, 1–4 bytes) or one above 16 MiB − 1;
/// - 84 (DF name) is on an EF or not 1–16 bytes;
/// - 8A is not one byte of 01, 03, 04 or 05;
/// - 8C is not a well-formed compact access rule (see `security`);
/// - 88 is longer than 1 byte, or names an SFI outside 1..=30, or is on a DF.
///
/// Other data objects (86, A1, A5, …) are accepted and ignored.
pub(super) fn parse_create(data: &[u8]) -> Result<NewFile, u16> {
    let bad = sw::WRONG_DATA;
    let (outer, rest) = parse_one(data).map_err(|_| bad)?;
    if outer.tag != 0x62 || !rest.is_empty() {
        return Err(bad);
    }
    let items = parse_all(outer.value).map_err(|_| bad)?;
    let mut seen = std::collections::BTreeSet::new();
    for t in &items {
        if !seen.insert(t.tag) {
            return Err(bad);
        }
    }
    let get = |tag: u32| items.iter().find(|t| t.tag == tag).map(|t| t.value);
    let is_df = match get(0x82) {
        Some([FDB_DF, ..]) => true,
        Some([FDB_TRANSPARENT_EF, ..]) => false,
        _ => return Err(bad),
    };
    let fid = match get(0x83) {
        Some([a, b]) => u16::from_be_bytes([*a, *b]),
        _ => return Err(bad),
    };
    if fid == MF_FID || fid == 0x3FFF || fid == 0xFFFF {
        return Err(bad);
    }
    let size_of = |v: &[u8]| be_uint(v).ok_or(bad);
    let size = match (get(0x80), get(0x81)) {
        (Some(v), _) | (None, Some(v)) => size_of(v)?,
        (None, None) if is_df => 0,
        (None, None) => return Err(bad),
    };
    if !is_df && size > MAX_EF_SIZE {
        return Err(bad);
    }
    let name = match get(0x84) {
        None => None,
        Some(n) if is_df && (1..=16).contains(&n.len()) => Some(n.to_vec()),
        Some(_) => return Err(bad),
    };
    let lcs = match get(0x8A) {
        None => None,
        Some([v @ (lcs::CREATION | lcs::INITIALISATION | lcs::DEACTIVATED | lcs::ACTIVATED)]) => {
            Some(*v)
        }
        Some(_) => return Err(bad),
    };
    let security = match get(0x8C) {
        None => None,
        Some(r) if compact_rule_valid(r) => Some(r.to_vec()),
        Some(_) => return Err(bad),
    };
    let sfi = match get(0x88) {
        None => None,
        Some(_) if is_df => return Err(bad),
        Some([]) => Some(None),
        Some([b]) if b & 0x07 == 0 && (1..=30).contains(&(b >> 3)) => Some(Some(b >> 3)),
        Some(_) => return Err(bad),
    };
    Ok(NewFile {
        fid,
        is_df,
        size: if is_df { 0 } else { size },
        name,
        lcs,
        security,
        sfi,
    })
}
