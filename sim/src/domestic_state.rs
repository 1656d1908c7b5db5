//! What the domestic card OS keeps in non-volatile memory besides files
//! and the security domain: its PINs, key slots, biometric references and
//! GlobalPlatform card life cycle. The card's state (`fs`) and image hold
//! these; the domestic OS's commands (`domestic`) work on them. This module
//! uses neither, so the state sits below the commands (as `objects` does
//! for the reference OS).

use serde::{Deserialize, Serialize};

use super::security::SecretHex;
use super::serde_hex::{hex_bytes, opt_hex_bytes};

/// AID of the domestic card's issuer security domain ('D' registration
/// category, country code 364).
pub const SD_AID: [u8; 7] = [0xD3, 0x64, 0x00, 0x00, 0x00, 0x01, 0x00];

/// A PIN of the domestic card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DomPin {
    pub reference: u8,
    /// SHA-256(card salt ‖ reference ‖ PIN block).
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
    pub try_limit: u8,
    pub tries_left: u8,
    /// Still the factory value.
    pub factory: bool,
}

/// A key slot, made at the factory, empty until 80 46.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DomKey {
    pub reference: u8,
    /// PIN whose verification the key needs.
    pub pin: u8,
    /// Every use consumes that verification.
    pub pin_per_use: bool,
    #[serde(default)]
    pub private: Option<SecretHex>,
    #[serde(default, with = "opt_hex_bytes")]
    pub public: Option<Vec<u8>>,
}

/// A biometric reference, made at the factory, empty until enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DomBio {
    pub reference: u8,
    /// Finger position (ISO/IEC 19794-2), set at enrolment.
    pub subtype: u8,
    pub try_limit: u8,
    pub tries_left: u8,
    #[serde(default)]
    pub template: Option<SecretHex>,
}

/// What the domestic OS keeps in non-volatile memory besides files and the
/// security domain (which live in the generic card state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DomState {
    /// GlobalPlatform card life cycle ([`crate::domestic::life_cycle`]).
    pub life_cycle: u8,
    pub pins: Vec<DomPin>,
    pub keys: Vec<DomKey>,
    pub bios: Vec<DomBio>,
}
