//! The personalization line: a batch of records across many readers, with
//! a journal that loses nothing. See `docs/line.md`.

pub mod journal;
pub mod sqlite;
pub mod progress;
pub mod run;
pub mod slot;
pub mod station;
pub mod cli;
pub mod report;
