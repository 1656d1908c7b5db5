//! cardsmith's host library: personalize, read and test smart cards.
//!
//! Host side: [`apdu`] (commands, responses, status words), [`transport`]
//! (the seam to PC/SC and to the in-process simulator), [`atr`], [`tlv`].
//! Card side: [`sim`], a software ISO 7816-4 card that shares nothing with
//! the host side but APDU bytes; it takes plain keys, never host
//! configuration. The command line is another crate (`cardsmith`, the only
//! one that knows clap and anyhow): it builds the plain configuration
//! values the engines here take. `tests/module_graph.rs` fails on an
//! import cycle or an upward import, `tests/crate_graph.rs` if this crate
//! ever depends on clap, anyhow or the command line.

// No panic reachable from input (cards, files, the network): outside tests,
// no indexing or slicing that can go out of bounds, no unwrap, no expect.
// An invariant that cannot fail says so with an `allow` and its reason.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

// The layers below the host are crates of their own, re-exported under
// their old names so that `crate::apdu`, `cardsmith::sim` and the like keep
// meaning what they meant.
pub use cardsmith_biometric as biometric;
pub use cardsmith_pki as pki;
pub use cardsmith_pki::utc;
pub use cardsmith_sim as sim;
pub use cardsmith_wire::{apdu, atr, crypto, hex, private, secret, tlv};

pub mod activate;
pub mod errors;
pub mod keyfile;
pub mod line;
pub mod perso;
pub mod programme;
pub mod record;
pub mod register;
pub mod scp03;
pub mod script;
pub mod transport;
pub mod web;
