//! GlobalPlatform SCP03 on the host: the core (key derivation, sessions,
//! secure messaging, PUT KEY and STORE DATA) is the `cardsmith-scp03` crate,
//! re-exported here, and this module adds what only a host has:
//!
//! * [`keyfile`]: key files, host configuration;
//! * [`link`]: a session under a [`crate::transport::Channel`].
//!
//! The `cardsmith scp03` commands are the command line's (`src/cli/scp03.rs`).
//!
//! The core and the simulated card use none of them: they are other crates
//! (`tests/crate_graph.rs`).

pub use cardsmith_scp03::*;

pub mod keyfile;
pub mod link;
