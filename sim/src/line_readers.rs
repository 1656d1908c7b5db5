//! The cardsmith line readers: more simulated-card readers in the real pcscd
//! than vpcd's two, for tests and benchmarks that run one worker per reader.
//!
//! `scripts/setup.sh` installs the project's own pcscd driver (`ifd/`,
//! `libcardsmith_ifd.so`) with one `/etc/reader.conf.d/cardsmith-line` entry
//! per reader. Each reader is a TCP port on 127.0.0.1 speaking the vpcd
//! protocol, so a card goes in with the usual connector:
//!
//! ```no_run
//! use cardsmith_sim::line_readers::{line_reader_addr, line_reader_name};
//! use cardsmith_sim::vpcd::{VpcdCard, VpcdOptions};
//! use cardsmith_sim::{SimCard, SimConfig};
//!
//! let mut opts = VpcdOptions::slot(0);
//! opts.addr = line_reader_addr(3);
//! let card = VpcdCard::start(SimCard::blank(SimConfig::default()), opts)?;
//! // ... talk to the card through PC/SC reader `line_reader_name(3)` ...
//! # let _ = (card, line_reader_name(3));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Readers are numbered from 0 here; their PC/SC names count from 01.

use std::net::{Ipv4Addr, SocketAddr};

/// TCP port of line reader 0; reader `i` listens on this plus `i`.
pub const LINE_BASE_PORT: u16 = 35970;

/// How many line readers `scripts/setup.sh` configures: pcscd 1.9.9 has a
/// fixed table of 16 reader contexts (`PCSCLITE_MAX_READERS_CONTEXTS`) for
/// all drivers together and vpcd's two slots take two of them.
pub const LINE_READERS: u16 = 14;

/// The PC/SC name pcscd gives line reader `i` (0-based, `i < LINE_READERS`).
///
/// The configured name is "Cardsmith Line NN" (NN = i + 1). pcscd appends
/// the reader's number among the readers of the same driver, in hex, and
/// the slot: reader 0 is "Cardsmith Line 01 00 00", reader 10 is
/// "Cardsmith Line 11 0A 00". This holds while every entry of the
/// configuration loads, in order (an entry that fails to load gives its
/// number to the next one).
pub fn line_reader_name(i: u16) -> String {
    format!("Cardsmith Line {:02} {:02X} 00", u32::from(i) + 1, i)
}

/// The TCP address a simulated card connects to, to go into line reader `i`.
pub fn line_reader_addr(i: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, LINE_BASE_PORT.saturating_add(i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses() {
        assert_eq!(line_reader_name(0), "Cardsmith Line 01 00 00");
        assert_eq!(line_reader_name(10), "Cardsmith Line 11 0A 00");
        assert_eq!(
            line_reader_name(LINE_READERS - 1),
            "Cardsmith Line 14 0D 00"
        );
        assert_eq!(line_reader_addr(0).to_string(), "127.0.0.1:35970");
        assert_eq!(line_reader_addr(13).to_string(), "127.0.0.1:35983");
    }
}
