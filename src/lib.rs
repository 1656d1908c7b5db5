//! cardsmith's command line: the only crate that knows clap and anyhow.
//!
//! Everything else is the host library, [`cardsmith_host`], re-exported
//! here whole so that `cardsmith::perso::engine` and the like keep meaning
//! what they meant. [`cli`] parses and validates the arguments of each
//! subcommand (one module per area, sharing [`cli::common`]), builds the
//! plain configuration values the engines take, runs them, and maps their
//! errors to exit codes and to the `--json` error document
//! ([`cli::json_error`]). No engine can take a clap struct: the host crate
//! has no clap (`tests/crate_graph.rs` fails if it ever gets one).

// No panic reachable from input: outside tests, no indexing or slicing that
// can go out of bounds, no unwrap, no expect.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

pub use cardsmith_host::*;

pub mod cli;
