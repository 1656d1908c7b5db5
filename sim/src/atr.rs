//! Answer-to-reset.
//!
//! ISO/IEC 7816-3:2006 §8.2 (TS, T0, interface bytes, TCK) and ISO/IEC
//! 7816-4:2013 §8.1.1 (historical bytes: category indicator 80 followed by
//! compact-TLV data objects).
//!
//! Layout (T=1, the default):
//! `3B 87 81 31 FE 45 | 80 73 F4 21 xx 81 LL | TCK`
//! - TS 3B: direct convention; T0 87: TD1 present, 7 historical bytes;
//! - TD1 81: TD2 present, T=1; TD2 31: TA3, TB3 present, T=1;
//! - TA3 FE: IFSC 254; TB3 45: BWI 4, CWI 5;
//! - historical bytes: 80 (category), 73 card capabilities (3 bytes),
//!   81 status indicator (1 byte: LCS of the MF);
//! - TCK: XOR of T0..last historical byte.
//!
//! T=0 only: `3B 07 | historical` (no interface bytes, no TCK, as 7816-3
//! requires when only T=0 is indicated). Both: `3B 87 80 31 FE 45 | hist | TCK`
//! (TD1 80 = T=0 first, TD2 31 = T=1 with its IFSC/BWI/CWI).

use super::{SimConfig, SimProtocol};

/// First software function table (7816-4 table 118): DF selection by full
/// DF name (b8), partial DF name (b7), path (b6), FID (b5); short EF
/// identifier supported (b3).
const CAPS1: u8 = 0xF4;
/// Second table (data coding byte, table 119): b6 set (write functions
/// proprietary: UPDATE replaces), data unit of one byte (b4..b1 = 0001).
const CAPS2: u8 = 0x21;

/// Historical bytes for the given configuration and MF life cycle status.
pub(super) fn historical_bytes(cfg: &SimConfig, mf_lcs: u8) -> Vec<u8> {
    // Third table (table 120): b8 command chaining, b7 extended Lc/Le;
    // b5..b4 = 00 no logical channel assignment, b3..b1 = 000 (one channel).
    let mut caps3 = 0u8;
    if cfg.command_chaining {
        caps3 |= 0x80;
    }
    if cfg.extended_length {
        caps3 |= 0x40;
    }
    vec![0x80, 0x73, CAPS1, CAPS2, caps3, 0x81, mf_lcs]
}

/// Build the ATR.
pub(super) fn build(cfg: &SimConfig, mf_lcs: u8) -> Vec<u8> {
    let hist = historical_bytes(cfg, mf_lcs);
    let k = (hist.len() & 0x0F) as u8;
    let mut atr = vec![0x3B];
    match cfg.protocol {
        SimProtocol::T0 => {
            atr.push(k);
            atr.extend_from_slice(&hist);
            return atr;
        }
        SimProtocol::T1 => atr.extend_from_slice(&[0x80 | k, 0x81, 0x31, 0xFE, 0x45]),
        SimProtocol::Both => atr.extend_from_slice(&[0x80 | k, 0x80, 0x31, 0xFE, 0x45]),
    }
    atr.extend_from_slice(&hist);
    let tck = atr.iter().skip(1).fold(0u8, |a, b| a ^ b);
    atr.push(tck);
    atr
}
