//! cardsmith's wire layer: what both sides of the card interface share.
//!
//! [`apdu`] (the one command, response and status-word type), [`tlv`]
//! (BER-TLV reading and the one writer), [`atr`] (answer-to-reset
//! decoding and the smart card list), [`hex`], [`secret`] (values that
//! are wiped on drop and never printed), [`crypto`] (AES-CMAC and the one
//! constant-time comparison) and [`private`] (the one writer for files that
//! hold personal or secret data).
//!
//! This crate depends on no other cardsmith crate. The host (`cardsmith`),
//! the secure channel core (`cardsmith-scp03`) and the simulated card
//! (`cardsmith-sim`) all build on it.

// No panic reachable from input (cards, files, the network): outside tests,
// no indexing or slicing that can go out of bounds, no unwrap, no expect.
// An invariant that cannot fail says so with an `allow` and its reason.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

pub mod apdu;
pub mod atr;
pub mod crypto;
pub mod hex;
pub mod private;
pub mod secret;
pub mod tlv;

/// A serde_json error's message without the ` at line L column C` that
/// its `Display` appends, for messages that give the position themselves.
pub fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(m) => m.to_string(),
        None => text,
    }
}
