//! The personalization line: a batch of records across many readers, with
//! a journal that loses nothing. See `docs/line.md`.

pub mod audit;
pub mod cli;
pub mod copy;
pub mod journal;
pub mod pg;
pub mod pgconf;
pub mod pgschema;
pub mod progress;
pub mod register_cli;
pub mod report;
pub(crate) mod rows;
pub mod run;
pub mod slot;
pub mod sqlite;
pub mod station;
