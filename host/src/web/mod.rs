//! The pickup counter as a web station: `cardsmith counter serve` serves
//! the counter to a browser on the counter PC (Persian first, right to
//! left, and English), and drives the reader with the same engine as the
//! terminal counter (`activate::counter::Counter`, through its `Screen`
//! and `PinInput` seams). See `docs/counter-web.md`.
//!
//! - [`station`]: the card thread and what the pages show;
//! - [`server`]: routes, cookies, CSRF, security headers;
//! - [`pages`]: the HTML (every data string escaped), the receipt and its
//!   QR code;
//! - [`queue`]: the holders expected at this office, and the search;
//! - [`dashboard`]: the line dashboard's snapshot, streamed as
//!   Server-Sent Events;
//! - [`i18n`]: the words of both languages in one table, digits, dates;
//! - [`session`], [`accounts`]: signed-in operators, Argon2id passwords.
//!
//! The commands are the command line's (`src/cli/web.rs` in the `cardsmith`
//! crate).

pub mod accounts;
pub mod dashboard;
pub mod i18n;
pub mod pages;
pub mod queue;
pub mod server;
pub mod session;
pub mod station;
