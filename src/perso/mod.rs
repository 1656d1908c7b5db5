//! Personalization of the reference national ID card and verification by
//! reading back: the host side of `cardsmith perso`, `verify` and `read`.
//! [`side::IssuerSide`] (profile, issuer key, CA, SCP03 keys) is what the
//! line stations and the counters share with it; [`cli`] holds the
//! commands' arguments and output, and no engine imports it.

pub mod card;
mod certs;
pub mod cli;
pub mod commands;
pub mod datagroups;
pub mod encoding;
pub mod engine;
pub mod input;
pub mod keys;
pub mod profile;
pub mod recognize;
pub mod side;
