//! cardsmith: personalize, read and test smart cards.
//!
//! Host side: [`apdu`] (commands, responses, status words), [`transport`]
//! (the seam to PC/SC and to the in-process simulator), [`atr`], [`tlv`].
//! Card side: [`sim`], a software ISO 7816-4 card that shares nothing with
//! the host side but APDU bytes; it takes plain keys, never host
//! configuration. Command line: [`cli`] and the `cli` module of each area,
//! sharing [`cli_common`]; no engine imports them. `tests/module_graph.rs`
//! fails on an import cycle or an upward import.

// No panic reachable from input (cards, files, the network): outside tests,
// no indexing or slicing that can go out of bounds, no unwrap, no expect.
// An invariant that cannot fail says so with an `allow` and its reason.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

pub mod activate;
pub mod apdu;
pub mod atr;
pub mod biometric;
pub mod cli;
pub mod cli_common;
pub mod crypto;
pub mod errors;
pub mod hex;
pub mod json_error;
pub mod keyfile;
pub mod line;
pub mod perso;
pub mod pki;
pub mod private;
pub mod programme;
pub mod record;
pub mod register;
pub mod scp03;
pub mod script;
pub mod secret;
pub mod sim;
pub mod tlv;
pub mod transport;
pub mod utc;
pub mod web;
