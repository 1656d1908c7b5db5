//! GlobalPlatform Secure Channel Protocol '03' (SCP03): GlobalPlatform Card
//! Specification v2.3.1 Amendment D, host and card sides.
//!
//! * [`kdf`]: the NIST SP 800-108 / AES-CMAC data derivation scheme (§4.1.5)
//!   and its derivation constants, plus GlobalPlatformPro's "KDF3" master
//!   key diversification.
//! * [`keys`]: static key sets ([`keys::StaticKeys`], with KVN, wiped on drop,
//!   never printed), session keys, key check values, diversification.
//! * [`channel`]: S8/S16 mode, "i" parameter, security levels, the
//!   INITIALIZE UPDATE response, and the secure messaging shared by both sides.
//! * [`host`]: [`host::HostSession`], the off-card entity: INITIALIZE UPDATE,
//!   card cryptogram check, EXTERNAL AUTHENTICATE, `wrap` / `unwrap`.
//! * [`card`]: [`card::CardSession`], the security domain for the simulated
//!   card: answers INITIALIZE UPDATE, verifies EXTERNAL AUTHENTICATE,
//!   `unwrap_command` / `wrap_response`.
//! * [`commands`]: PUT KEY (AES keys under Key-DEK) and STORE DATA (DGI
//!   blocks), with card-side parsers.
//!
//! Commands and responses are cardsmith's one APDU type,
//! [`cardsmith_wire::apdu`]:
//! the host wraps it keeping a secret data field secret, the card side
//! parses received bytes into it, and the published vectors are checked
//! against its encoding.
//!
//! This crate does no I/O and knows no host configuration: the host's key
//! files, its link to a transport channel and its command line are in the
//! host crate (`cardsmith::scp03::{keyfile, link, cli}`). The simulated card
//! (`cardsmith-sim`) uses this crate for its security domain.
//!
//! Spec sections cited as "§x.y" are Amendment D v1.1.1 unless marked GPCS
//! (Card Specification v2.3.1). S16 mode (16-byte challenges, cryptograms and
//! MACs; "i" bit b1) comes from later Amendment D versions.
//!
//! Modules refer to each other with `super::`, never through the crate root.

// No panic reachable from input (cards, files, the network): outside tests,
// no indexing or slicing that can go out of bounds, no unwrap, no expect.
// An invariant that cannot fail says so with an `allow` and its reason.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

pub mod card;
pub mod channel;
pub mod commands;
pub mod error;
pub mod host;
pub mod kdf;
pub mod keys;

mod crypto;
mod reader;

pub use card::{CardSession, ChallengeSource, Incoming};
pub use channel::{InitUpdateResponse, Mode, SecurityLevel};
pub use error::Error;
pub use host::HostSession;
pub use keys::{AesKey, Diversification, KeySource, SessionKeys, StaticKeys};

#[cfg(test)]
mod tests;
