//! The card image: JSON serialisation of [`CardState`], validation on load,
//! and atomic, durable writes.
//!
//! Format: `{"format":"cardsmith-sim-image","version":2, ...}` with binary
//! values as upper-case hex strings. Version-1 images (before the issuer
//! key, life cycle register, keys and biometric objects) still load, with
//! defaults for what they lack, and are written back as version 2. Writes go to a temporary file in the
//! same directory (mode 0600), are fsynced, then renamed over the image, and
//! the directory is fsynced, so a crash leaves either the old or the new
//! image, never a torn one.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::fs::{card_lc, lcs, CardState, FileKind, ISSUER_TRY_LIMIT, MF_FID, MF_ID};
use super::objects::{
    key_consistent, minutiae_ok, BIO_TYPE_FINGERPRINT, MAX_KID, USAGE_AUTH, USAGE_SIGN,
};
use super::security::compact_rule_valid;

pub(super) const FORMAT: &str = "cardsmith-sim-image";
pub(super) const VERSION: u32 = 2;
/// Oldest image version this build still reads.
const OLDEST_VERSION: u32 = 1;
pub(super) const SERIAL_LEN: usize = 8;
pub(super) const SALT_LEN: usize = 16;

/// Why a card image could not be loaded or written. Every variant names the
/// image path.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("card image {}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("card image {}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("card image {}: invalid JSON at line {line}, column {column}: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("card image {}: not a cardsmith simulated-card image (format is {found:?}, expected \"cardsmith-sim-image\")", path.display())]
    Format {
        path: PathBuf,
        found: Option<String>,
    },
    #[error("card image {}: unsupported version {found} (this build reads versions 1 and 2)", path.display())]
    Version { path: PathBuf, found: u64 },
    #[error("card image {}: inconsistent content: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

impl ImageError {
    /// The image file concerned.
    pub fn path(&self) -> &Path {
        match self {
            ImageError::Read { path, .. }
            | ImageError::Write { path, .. }
            | ImageError::Json { path, .. }
            | ImageError::Format { path, .. }
            | ImageError::Version { path, .. }
            | ImageError::Invalid { path, .. } => path,
        }
    }
}

fn json_err(path: &Path, e: serde_json::Error) -> ImageError {
    ImageError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: cardsmith_wire::json_message(&e),
    }
}

/// Read and validate an image.
pub(super) fn load(path: &Path) -> Result<CardState, ImageError> {
    let text = fs::read_to_string(path).map_err(|source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    #[derive(Deserialize)]
    struct Header {
        format: Option<String>,
        version: Option<u64>,
    }
    let header: Header = serde_json::from_str(&text).map_err(|e| json_err(path, e))?;
    if header.format.as_deref() != Some(FORMAT) {
        return Err(ImageError::Format {
            path: path.to_path_buf(),
            found: header.format,
        });
    }
    match header.version {
        Some(v) if (u64::from(OLDEST_VERSION)..=u64::from(VERSION)).contains(&v) => {}
        Some(v) => {
            return Err(ImageError::Version {
                path: path.to_path_buf(),
                found: v,
            })
        }
        None => {
            return Err(ImageError::Invalid {
                path: path.to_path_buf(),
                reason: "missing \"version\"".into(),
            })
        }
    }
    let mut state: CardState = serde_json::from_str(&text).map_err(|e| json_err(path, e))?;
    if state.version == 1 {
        // No life cycle register yet: derive it from the MF.
        state.life_cycle = card_lc::from_mf_lcs(state.mf_lcs());
        state.version = VERSION;
    }
    validate(&state).map_err(|reason| ImageError::Invalid {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(state)
}

/// Structural checks that serde cannot express. The checks run in a fixed
/// order and the first failure is the one reported.
fn validate(s: &CardState) -> Result<(), String> {
    if s.serial.len() != SERIAL_LEN {
        return Err(format!("serial must be {SERIAL_LEN} bytes"));
    }
    if s.pin_salt.len() != SALT_LEN {
        return Err(format!("pin_salt must be {SALT_LEN} bytes"));
    }
    validate_files(s)?;
    validate_tree(s)?;
    let mut numbers = validate_pins(s)?;
    if s.config.os == crate::CardOs::Domestic {
        super::domestic::validate(s)?;
    } else if s.domestic.is_some() {
        return Err("a reference card's image has a \"domestic\" state".into());
    }
    validate_life_cycle(s)?;
    if let Some(k) = &s.issuer_key {
        if !matches!(k.len(), 16 | 24 | 32) {
            return Err("issuer_key must be 16, 24 or 32 bytes".into());
        }
    }
    if s.issuer_tries_left > ISSUER_TRY_LIMIT {
        return Err(format!("issuer_tries_left above {ISSUER_TRY_LIMIT}"));
    }
    validate_keys(s)?;
    validate_bios(s, &mut numbers)
}

/// Each file on its own: unique id below `next_id`, a valid life cycle
/// status, well-formed security attributes, DF name and SFI in range.
fn validate_files(s: &CardState) -> Result<(), String> {
    let mut ids = std::collections::BTreeSet::new();
    for f in &s.files {
        if !ids.insert(f.id) {
            return Err(format!("duplicate file id {}", f.id));
        }
        if f.id >= s.next_id {
            return Err(format!("file id {} not below next_id", f.id));
        }
        if !lcs::valid(f.lcs) {
            return Err(format!(
                "file {:04X}: invalid life cycle status {:02X}",
                f.fid, f.lcs
            ));
        }
        if let Some(rule) = &f.security {
            if !compact_rule_valid(rule) {
                return Err(format!("file {:04X}: malformed security attributes", f.fid));
            }
        }
        match &f.kind {
            FileKind::Df { name: Some(n) } if n.is_empty() || n.len() > 16 => {
                return Err(format!("file {:04X}: DF name must be 1..16 bytes", f.fid))
            }
            FileKind::Ef { sfi: Some(x), .. } if !(1..=30).contains(x) => {
                return Err(format!("file {:04X}: SFI out of range", f.fid))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The files form one tree: id 0 is the MF, and every other file has a DF
/// as its parent and is reachable from the MF.
fn validate_tree(s: &CardState) -> Result<(), String> {
    match s.file(MF_ID) {
        Some(mf) if mf.parent.is_none() && mf.fid == MF_FID && mf.is_df() => {}
        _ => return Err("file id 0 must be the MF (3F00, a DF, no parent)".into()),
    }
    for f in &s.files {
        if f.id == MF_ID {
            continue;
        }
        let parent = f
            .parent
            .and_then(|p| s.file(p))
            .ok_or_else(|| format!("file {:04X}: parent missing", f.fid))?;
        if !parent.is_df() {
            return Err(format!("file {:04X}: parent is not a DF", f.fid));
        }
        if !s.is_within(f.id, MF_ID) {
            return Err(format!("file {:04X}: not reachable from the MF", f.fid));
        }
    }
    Ok(())
}

/// Each PIN's number is unique and its counters and lengths agree. Returns
/// the numbers taken, which the biometric objects share.
fn validate_pins(s: &CardState) -> Result<std::collections::BTreeSet<u8>, String> {
    let mut numbers = std::collections::BTreeSet::new();
    for p in &s.pins {
        if !(1..=15).contains(&p.number) || !numbers.insert(p.number) {
            return Err(format!("PIN {}: bad or duplicate number", p.number));
        }
        let ok = p.hash.len() == 32
            && (1..=15).contains(&p.try_limit)
            && p.tries_left <= p.try_limit
            && p.min_length >= 1
            && p.min_length <= p.max_length
            && p.max_length <= 16
            && (p.min_length..=p.max_length).contains(&p.length)
            && p.puk.is_none_or(|k| (1..=15).contains(&k));
        if !ok {
            return Err(format!("PIN {}: inconsistent fields", p.number));
        }
    }
    Ok(numbers)
}

/// A reference card's life cycle register is a valid state that agrees
/// with the MF's life cycle status (a domestic card keeps its
/// GlobalPlatform life cycle in its own state, checked by its OS).
fn validate_life_cycle(s: &CardState) -> Result<(), String> {
    if s.config.os != crate::CardOs::Reference {
        return Ok(());
    }
    if !card_lc::valid(s.life_cycle) {
        return Err(format!(
            "life_cycle {:02X} is not 01, 03, 07 or 0F",
            s.life_cycle
        ));
    }
    if !card_lc::consistent(s.life_cycle, s.mf_lcs()) {
        return Err(format!(
            "life_cycle {:02X} does not match the MF life cycle status {:02X}",
            s.life_cycle,
            s.mf_lcs()
        ));
    }
    Ok(())
}

/// Each key: a unique reference, a known usage, a consistent PIN
/// reference, and a private key that matches its public key.
fn validate_keys(s: &CardState) -> Result<(), String> {
    let mut kids = std::collections::BTreeSet::new();
    for k in &s.keys {
        if !(1..=MAX_KID).contains(&k.kid) || !kids.insert(k.kid) {
            return Err(format!("key {}: bad or duplicate key reference", k.kid));
        }
        if k.usage != USAGE_SIGN && k.usage != USAGE_AUTH {
            return Err(format!(
                "key {}: usage must be 182 (CRT B6, signature) or 164 (CRT A4, authentication)",
                k.kid
            ));
        }
        if k.pin.is_some_and(|n| !(1..=15).contains(&n)) || (k.pin_per_use && k.pin.is_none()) {
            return Err(format!("key {}: bad PIN reference", k.kid));
        }
        if !key_consistent(k) {
            return Err(format!(
                "key {}: private key invalid or not matching the public key",
                k.kid
            ));
        }
    }
    Ok(())
}

/// Each biometric object: a number not taken by a PIN or another object
/// (`numbers` holds those taken so far), a fingerprint template that
/// parses, and consistent counters.
fn validate_bios(
    s: &CardState,
    numbers: &mut std::collections::BTreeSet<u8>,
) -> Result<(), String> {
    for b in &s.bios {
        if !(1..=15).contains(&b.number) || !numbers.insert(b.number) {
            return Err(format!(
                "biometric object {}: bad number, or used twice (PIN and biometric objects share numbers)",
                b.number
            ));
        }
        let ok = b.bio_type == BIO_TYPE_FINGERPRINT
            && minutiae_ok(b.template.expose())
            && (1..=15).contains(&b.try_limit)
            && b.tries_left <= b.try_limit;
        if !ok {
            return Err(format!(
                "biometric object {}: inconsistent fields",
                b.number
            ));
        }
    }
    Ok(())
}

/// Write `state` to `path` atomically, as a private file (mode 600,
/// through [`cardsmith_wire::private`]): a card image holds the holder's data.
pub(super) fn save(path: &Path, state: &CardState) -> Result<(), ImageError> {
    let werr = |source| ImageError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut json =
        serde_json::to_vec_pretty(state).map_err(|e| werr(std::io::Error::other(e.to_string())))?;
    json.push(b'\n');
    cardsmith_wire::private::replace(path, &json)
        .map(|_| ())
        .map_err(werr)
}
