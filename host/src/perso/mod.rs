//! Personalization of a national ID card and verification by reading
//! back: the host side of `cardsmith perso`, `verify` and `read`, for any
//! card its profile describes ([`profile`]). Every command the engines send
//! is a named step of the profile ([`commands`], sent by [`card::send`]):
//! the engines know what a command is for, never its bytes. [`side`] holds
//! what the line stations and the counters share with it (the profiles,
//! the issuer key, the CA, the SCP03 keys); [`recognize`] matches a card's
//! ATR to a profile before anything is sent; [`samples`] makes synthetic
//! fingers and sample records. The commands' arguments and output are the
//! command line's (`src/cli/perso.rs` in the `cardsmith` crate), which no
//! engine can import.

pub mod card;
mod certs;
pub mod commands;
pub mod datagroups;
pub mod encoding;
pub mod engine;
pub mod input;
pub mod keys;
pub mod profile;
pub mod recognize;
pub mod samples;
pub mod side;
