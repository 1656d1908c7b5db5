//! What the card keeps in non-volatile memory besides files: biometric
//! reference objects, key objects and the security domain's state, with the
//! checks the card image applies to them. The command handlers (`bio`,
//! `keys`, `sd`) work on these; the file system (`fs`) and the image hold
//! them. This module uses neither, so the card's state sits below its
//! commands.

use p256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};

use super::security::SecretHex;
use super::serde_hex::hex_bytes;

/// Biometric type "fingerprint" (ISO/IEC 7816-11, tag 81 in A1).
pub(super) const BIO_TYPE_FINGERPRINT: u8 = 0x08;
/// Largest number of minutiae in a template.
pub(super) const MAX_MINUTIAE: usize = 60;

fn default_max_minutiae() -> u8 {
    MAX_MINUTIAE as u8
}

/// The outcome of the last comparison in this session, kept for GET DATA
/// DF72 (diagnostics). Never persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Comparison {
    pub number: u8,
    /// Score in units of 1/10000 (0..=10000).
    pub score: u16,
    /// The decision threshold in the same units.
    pub threshold: u16,
    /// Minutiae paired under the best alignment.
    pub paired: u8,
}

/// A persistent biometric reference object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BioObject {
    /// Object number 1..=15 (shared with PINs).
    pub number: u8,
    /// Biometric type (81), always fingerprint (08).
    pub bio_type: u8,
    /// Biometric subtype (82), e.g. which finger.
    pub subtype: u8,
    /// Format owner (87) and format type (88).
    pub format_owner: u16,
    pub format_type: u16,
    /// Algorithm parameters (A1 / B1): minimum and maximum number of
    /// minutiae (81), minutiae order (82), feature handling (83).
    #[serde(default)]
    pub min_minutiae: u8,
    #[serde(default = "default_max_minutiae")]
    pub max_minutiae: u8,
    #[serde(default)]
    pub minutiae_order: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_handling: Option<u8>,
    /// Reference minutiae, 3 bytes each.
    pub template: SecretHex,
    pub try_limit: u8,
    pub tries_left: u8,
}

/// A well-formed minutiae set: 1..=60 minutiae of 3 bytes.
pub(super) fn minutiae_ok(b: &[u8]) -> bool {
    !b.is_empty() && b.len().is_multiple_of(3) && b.len() / 3 <= MAX_MINUTIAE
}

/// CRT tag of a digital signature key (DST).
pub(super) const USAGE_SIGN: u8 = 0xB6;
/// CRT tag of an authentication key (AT).
pub(super) const USAGE_AUTH: u8 = 0xA4;
/// Key references 1..=MAX_KID.
pub(super) const MAX_KID: u8 = 4;

/// A persistent key object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct KeyObject {
    /// Key reference 1..=4.
    pub kid: u8,
    /// [`USAGE_SIGN`] (B6) or [`USAGE_AUTH`] (A4).
    pub usage: u8,
    /// Private scalar, 32 bytes big-endian.
    pub private: SecretHex,
    /// Public point, uncompressed (04 || X || Y).
    #[serde(with = "hex_bytes")]
    pub public: Vec<u8>,
    /// PIN whose verification authorises use once the card is ACTIVATED.
    #[serde(default)]
    pub pin: Option<u8>,
    /// Each use consumes that PIN verification.
    #[serde(default)]
    pub pin_per_use: bool,
}

impl KeyObject {
    pub(super) fn signing_key(&self) -> Option<SigningKey> {
        SigningKey::from_slice(self.private.expose()).ok()
    }
}

/// Whether `k` holds a usable private key whose public point is `k.public`
/// (image validation).
pub(super) fn key_consistent(k: &KeyObject) -> bool {
    k.signing_key()
        .is_some_and(|sk| public_point(&sk) == k.public)
}

pub(super) fn public_point(sk: &SigningKey) -> Vec<u8> {
    sk.verifying_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec()
}

/// The security domain in non-volatile memory (and in the image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SdState {
    #[serde(with = "hex_bytes")]
    pub aid: Vec<u8>,
    pub kvn: u8,
    pub enc: SecretHex,
    pub mac: SecretHex,
    pub dek: SecretHex,
    #[serde(with = "hex_bytes")]
    pub kdd: Vec<u8>,
    pub i_param: u8,
    /// Last sequence counter value used.
    pub sequence_counter: u32,
    /// Security level (EXTERNAL AUTHENTICATE P1 bits) every personalization
    /// command must arrive with.
    pub perso_level: u8,
    pub auth_tries_left: u8,
}
