//! Personalization of the reference national ID card and verification by
//! reading back: the host side of `cardsmith perso`, `verify` and `read`.

pub mod card;
mod certs;
pub mod cli;
pub mod datagroups;
pub mod engine;
pub mod input;
pub mod keys;
pub mod profile;
pub mod side;
