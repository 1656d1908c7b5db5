//! The issuance register: the journal of every batch, record, attempt,
//! card, shipment, delivery, replacement and revocation, as a store of its
//! own below the line, the counter and the CA (see `docs/register.md`).
//!
//! [`journal::Journal`] is the interface; [`sqlite`] keeps it in one file
//! for a station, [`pg`] in the programme's shared PostgreSQL register
//! ([`pgconf`] where and how to log in, [`pgschema`] its migrations and
//! roles). [`audit`] is the tamper-evident trail both keep (`pgaudit` writes
//! it in PostgreSQL for [`pg`], [`pgschema`] and [`copy`]); [`copy`] moves
//! a station's file into the shared register once. Nothing here knows the
//! command line.

pub mod audit;
pub mod copy;
pub mod journal;
pub mod pg;
pub(crate) mod pgaudit;
pub mod pgconf;
pub mod pgschema;
#[cfg(test)]
mod revocation_tests;
pub(crate) mod rows;
pub mod sqlite;
