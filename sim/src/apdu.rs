//! Command APDU parsing and status-word constants.
//!
//! Owns the decoding of the raw command bytes into header, data field and Le
//! (ISO/IEC 7816-4:2013 §5.1, cases 1–4 in short and extended form) and of the
//! class byte (§5.4.1: chaining, secure messaging, logical channels). Nothing
//! here panics on any input.

use zeroize::Zeroizing;

/// Status words used by the card (ISO/IEC 7816-4:2013 §5.6, tables 5–6).
pub(super) mod sw {
    pub const OK: u16 = 0x9000;
    pub const EOF_REACHED: u16 = 0x6282;
    pub const FILE_DEACTIVATED: u16 = 0x6283;
    pub const FILE_TERMINATED: u16 = 0x6285;
    pub const MEMORY_FAILURE: u16 = 0x6581;
    pub const WRONG_LENGTH: u16 = 0x6700;
    pub const CHANNEL_NOT_SUPPORTED: u16 = 0x6881;
    pub const SM_NOT_SUPPORTED: u16 = 0x6882;
    pub const LAST_COMMAND_EXPECTED: u16 = 0x6883;
    pub const CHAINING_NOT_SUPPORTED: u16 = 0x6884;
    pub const INCOMPATIBLE_FILE: u16 = 0x6981;
    pub const SECURITY_NOT_SATISFIED: u16 = 0x6982;
    pub const AUTH_BLOCKED: u16 = 0x6983;
    pub const REF_DATA_NOT_USABLE: u16 = 0x6984;
    pub const CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
    pub const NO_CURRENT_EF: u16 = 0x6986;
    pub const WRONG_DATA: u16 = 0x6A80;
    pub const FUNC_NOT_SUPPORTED: u16 = 0x6A81;
    pub const FILE_NOT_FOUND: u16 = 0x6A82;
    pub const NOT_ENOUGH_MEMORY: u16 = 0x6A84;
    pub const WRONG_P1P2: u16 = 0x6A86;
    pub const REF_NOT_FOUND: u16 = 0x6A88;
    pub const FILE_EXISTS: u16 = 0x6A89;
    pub const NAME_EXISTS: u16 = 0x6A8A;
    pub const OFFSET_OUTSIDE: u16 = 0x6B00;
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
    pub const NO_DIAGNOSIS: u16 = 0x6F00;
}

/// Expected response length (Ne) as encoded by the Le field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Le {
    /// Ne: 1..=256 (short) or 1..=65536 (extended).
    pub ne: usize,
    /// Le was all zeros ("up to 256 / 65536, whatever is available").
    pub wildcard: bool,
}

/// A parsed command APDU. The data field is wiped when dropped (it may hold
/// a PIN).
pub(super) struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Zeroizing<Vec<u8>>,
    pub le: Option<Le>,
}

impl Command {
    pub fn p1p2(&self) -> u16 {
        u16::from_be_bytes([self.p1, self.p2])
    }
}

/// Parse a command APDU (ISO/IEC 7816-4:2013 §5.1, table 1).
///
/// Errors: fewer than 4 bytes, a body whose length does not match any case,
/// an extended Lc of zero, or an extended form when `extended` is false:
/// all answer 6700.
pub(super) fn parse(apdu: &[u8], extended: bool) -> Result<Command, u16> {
    let (header, body) = match apdu.split_at_checked(4) {
        Some(x) => x,
        None => return Err(sw::WRONG_LENGTH),
    };
    let [cla, ins, p1, p2] = match <[u8; 4]>::try_from(header) {
        Ok(h) => h,
        Err(_) => return Err(sw::WRONG_LENGTH),
    };
    let mk = |data: &[u8], le: Option<Le>| Command {
        cla,
        ins,
        p1,
        p2,
        data: Zeroizing::new(data.to_vec()),
        le,
    };
    let short_le = |b: u8| Le {
        ne: if b == 0 { 256 } else { usize::from(b) },
        wildcard: b == 0,
    };
    let ext_le = |hi: u8, lo: u8| {
        let v = usize::from(u16::from_be_bytes([hi, lo]));
        Le {
            ne: if v == 0 { 65536 } else { v },
            wildcard: v == 0,
        }
    };
    match body {
        // Case 1.
        [] => Ok(mk(&[], None)),
        // Case 2S.
        [le] => Ok(mk(&[], Some(short_le(*le)))),
        [0, rest @ ..] if rest.len() >= 2 => {
            if !extended {
                return Err(sw::WRONG_LENGTH);
            }
            match rest {
                // Case 2E.
                [hi, lo] => Ok(mk(&[], Some(ext_le(*hi, *lo)))),
                [hi, lo, tail @ ..] => {
                    let lc = usize::from(u16::from_be_bytes([*hi, *lo]));
                    if lc == 0 {
                        return Err(sw::WRONG_LENGTH);
                    }
                    if tail.len() == lc {
                        // Case 3E.
                        Ok(mk(tail, None))
                    } else if tail.len() == lc.saturating_add(2) {
                        // Case 4E.
                        let (data, le) = tail.split_at_checked(lc).ok_or(sw::WRONG_LENGTH)?;
                        match le {
                            [a, b] => Ok(mk(data, Some(ext_le(*a, *b)))),
                            _ => Err(sw::WRONG_LENGTH),
                        }
                    } else {
                        Err(sw::WRONG_LENGTH)
                    }
                }
                _ => Err(sw::WRONG_LENGTH),
            }
        }
        [lc, tail @ ..] => {
            let lc = usize::from(*lc);
            if lc == 0 {
                return Err(sw::WRONG_LENGTH);
            }
            if tail.len() == lc {
                // Case 3S.
                Ok(mk(tail, None))
            } else if tail.len() == lc + 1 {
                // Case 4S.
                match tail.split_last() {
                    Some((le, data)) => Ok(mk(data, Some(short_le(*le)))),
                    None => Err(sw::WRONG_LENGTH),
                }
            } else {
                Err(sw::WRONG_LENGTH)
            }
        }
    }
}

/// What the class byte says (ISO/IEC 7816-4:2013 §5.4.1, tables 2–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Class {
    /// CLA b5 (first interindustry) / b5 (further interindustry): not the
    /// last command of a chain.
    pub chaining: bool,
    /// The proprietary class 0x80 (only accepted for GET DATA, GlobalPlatform
    /// style).
    pub proprietary: bool,
}

/// Decode the class byte. Logical channels other than 0 → 6881, any secure
/// messaging indication → 6882, RFU / unsupported proprietary classes → 6E00.
pub(super) fn decode_class(cla: u8) -> Result<Class, u16> {
    match cla {
        0x00..=0x1F => {
            if cla & 0x03 != 0 {
                return Err(sw::CHANNEL_NOT_SUPPORTED);
            }
            if cla & 0x0C != 0 {
                return Err(sw::SM_NOT_SUPPORTED);
            }
            Ok(Class {
                chaining: cla & 0x10 != 0,
                proprietary: false,
            })
        }
        // Further interindustry classes address logical channels 4..=19.
        0x40..=0x7F => Err(sw::CHANNEL_NOT_SUPPORTED),
        0x80 => Ok(Class {
            chaining: false,
            proprietary: true,
        }),
        _ => Err(sw::CLA_NOT_SUPPORTED),
    }
}
