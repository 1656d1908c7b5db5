//! Software smart card ("sim"): a card that behaves like a real ISO/IEC 7816-4
//! card, reachable only through raw APDU bytes.
//!
//! This module owns everything on the card side and deliberately shares nothing
//! with the host side of cardsmith: the only interface is `bytes in, bytes out`
//! ([`SimCard::transmit`]) plus the ATR and power/reset events a reader would
//! deliver. The card's persistent state can live in a JSON image file
//! ([`SimCard::open_image`]) so that a card survives process restarts.
//!
//! Layout:
//! - `apdu`: command APDU parsing (ISO/IEC 7816-4:2013 §5.1, §5.4.1 class byte)
//! - `atr`: answer-to-reset (ISO/IEC 7816-3 §8, 7816-4 §8.1.1 historical bytes)
//! - `tlv`: minimal BER-TLV / compact-TLV helpers (7816-4 §5.2 / §5.2.2)
//! - `fs`: file tree, memory accounting and lookups (7816-4 §5.3)
//! - `fcp`: FCP/FCI/FMD encoding and CREATE FILE template parsing (7816-4 §5.3.3)
//! - `security`: compact access rules and PIN objects (7816-4 §5.4.3.2, §7.5)
//! - `image`: persistent state, JSON image, atomic writes
//! - `card`: [`SimCard`], volatile state, response shaping, dispatch
//! - `file_cmds`, `pin_cmds`, `misc_cmds`: the command implementations
//! - `perso_cmds`: issuer authentication and the card life cycle register
//! - `keys`: ECDSA P-256 key objects, key generation, MSE, PSO CDS,
//!   INTERNAL AUTHENTICATE
//! - `bio`: biometric reference objects (match-on-card, ISO/IEC 7816-11)
//! - `domestic`, `domestic_state`: the second card OS (issue 17), chosen by
//!   [`SimConfig::os`]: its commands, and what it keeps in memory

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod apdu;
mod atr;
mod bio;
mod card;
pub mod domestic;
mod domestic_state;
pub mod faults;
mod fcp;
pub mod feeder;
mod file_cmds;
mod fs;
mod image;
mod keys;
pub mod line_readers;
mod misc_cmds;
mod objects;
mod perso_cmds;
mod pin_cmds;
mod sd;
mod security;
mod serde_hex;
pub mod timing;
mod tlv;
pub mod vpcd;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_perso;

pub use card::{BadIssuerKey, Provision, SimCard};
pub use image::ImageError;
pub use sd::{SdError, SdInfo, AUTH_TRY_LIMIT as SD_AUTH_TRY_LIMIT, DEFAULT_AID as SD_DEFAULT_AID};

use serde::{Deserialize, Serialize};

/// Transmission protocol(s) announced in the ATR (ISO/IEC 7816-3 §8.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SimProtocol {
    /// Block protocol T=1 only.
    #[default]
    T1,
    /// Character protocol T=0 only (no TCK in the ATR).
    T0,
    /// Both, T=0 first (the default protocol) then T=1.
    Both,
}

/// The card operating system ("personality") the simulated card runs.
/// Chosen at creation (it is part of [`SimConfig`], kept in the image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardOs {
    /// The reference OS: T=1 with extended length, CREATE FILE, STORE DATA,
    /// ACTIVATE, interindustry key generation and signing.
    #[default]
    Reference,
    /// The "domestic" OS (issue 17): T=0 only, short APDUs, a file system
    /// made at the factory, proprietary key generation and signing,
    /// GlobalPlatform SET STATUS. See `domestic` and
    /// docs/simulated-card.md.
    Domestic,
}

impl CardOs {
    fn is_reference(&self) -> bool {
        *self == CardOs::Reference
    }
}

/// Card configuration. Stored in the card image; fixed for the card's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// The card operating system. A domestic card ignores `protocol`,
    /// `extended_length`, `command_chaining` and `force_get_response`: it
    /// is T=0 only, short APDUs only, without chaining, by construction.
    #[serde(skip_serializing_if = "CardOs::is_reference")]
    pub os: CardOs,
    /// Protocols offered in the ATR.
    pub protocol: SimProtocol,
    /// Accept extended Lc/Le fields (7816-4 §5.1); otherwise they answer 6700.
    pub extended_length: bool,
    /// Accept command chaining (CLA b5, 7816-4 §5.1.1.1); otherwise 6884.
    pub command_chaining: bool,
    /// Answer every response that carries data with 61xx, the data being
    /// fetched with GET RESPONSE, as T=0 cards do.
    pub force_get_response: bool,
    /// Size of the card's non-volatile memory, used for CREATE FILE / PINs.
    pub memory_bytes: usize,
    /// How long the card takes per command (none: answer at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<timing::Timing>,
    /// Diagnostics for test benches, never for a card that is issued: GET
    /// DATA DF72 answers the score of the last biometric comparison. Off,
    /// DF72 is not found (6A88), as on a real card.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub match_score_diagnostics: bool,
}

impl SimConfig {
    /// The configuration of a domestic card (see [`CardOs::Domestic`]).
    pub fn domestic() -> SimConfig {
        SimConfig {
            os: CardOs::Domestic,
            protocol: SimProtocol::T0,
            extended_length: false,
            command_chaining: false,
            force_get_response: true,
            ..SimConfig::default()
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            os: CardOs::Reference,
            protocol: SimProtocol::T1,
            extended_length: true,
            command_chaining: true,
            force_get_response: false,
            memory_bytes: 256 * 1024,
            timing: None,
            match_score_diagnostics: false,
        }
    }
}
