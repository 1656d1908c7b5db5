//! The personalization line: a batch of records across many readers, with
//! a journal that loses nothing. See `docs/line.md`.

pub mod progress;

pub mod report;
pub mod run;
pub mod slot;
pub mod station;
