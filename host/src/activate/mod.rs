//! The pickup counter: a personalized card is handed to its holder, whose
//! live fingerprint unlocks it and who sets their own PINs; the card leaves
//! its transport state and the delivery goes into the line's journal.
//! Replacements, lost cards and PIN unblocks happen at the same counter.
//! See `docs/activate.md`.
//!
//! - [`ops`]: the card steps (genuineness, fingerprint, PINs, activation,
//!   test signature, unblock, termination), each over a `Channel`, so the
//!   same code runs over PC/SC and over the in-process simulated card.
//! - [`policy`]: the holder's PIN rules; [`pinentry`]: where PINs come
//!   from (terminal without echo, a file descriptor, a private file).
//! - [`display`]: Persian names for a terminal (shaping and bidi).
//! - [`counter`]: one card's activation as the counter runs it, talking to
//!   the operator through a small `Screen` trait. The commands are the
//!   command line's (`src/cli/activate.rs` in the `cardsmith` crate).

pub mod counter;
pub mod display;
pub mod ops;
pub mod pinentry;
pub mod policy;
