//! Plain command and response APDUs (ISO/IEC 7816-3 §12.1, ISO/IEC 7816-4 §5.1).
//!
//! These are deliberately small: cardsmith's `apdu::Command` is richer (secret
//! data, explicit length form). The host's secure messaging takes that one
//! directly ([`super::host::HostSession::wrap_apdu`]); these serve the core,
//! the card side and the published vectors. Both encoders make the same
//! short/extended decision: short unless Nc > 255 or Ne > 256.

use super::error::{Error, Result};

/// Largest Nc / Ne in short form.
pub const SHORT_MAX_NC: usize = 255;
pub const SHORT_MAX_NE: usize = 256;
/// Largest Nc / Ne in extended form.
pub const EXTENDED_MAX_NC: usize = 65_535;
pub const EXTENDED_MAX_NE: usize = 65_536;

/// A command APDU.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Command {
    /// Class byte. b8 = 1 for GlobalPlatform proprietary commands; b3 ('04')
    /// marks GlobalPlatform secure messaging; b2-b1 the logical channel.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter bytes.
    pub p1: u8,
    pub p2: u8,
    /// Command data field (Nc = its length; empty for cases 1 and 2).
    pub data: Vec<u8>,
    /// Ne, the most response bytes expected, 1..=65536; `None` for no Le field.
    /// 256 encodes as short `00`, 65536 as extended `00 00`.
    pub le: Option<usize>,
}

impl Command {
    /// A case 1 command (header only).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Command {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
        }
    }

    /// The same command with this data field.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Command {
        self.data = data.into();
        self
    }

    /// The same command with this Ne.
    pub fn with_le(mut self, le: usize) -> Command {
        self.le = Some(le);
        self
    }

    /// Whether [`Command::to_bytes`] uses the extended length form.
    pub fn is_extended(&self) -> bool {
        self.data.len() > SHORT_MAX_NC || self.le.is_some_and(|n| n > SHORT_MAX_NE)
    }

    /// The header and Lc field exactly as [`Command::to_bytes`] writes them:
    /// `CLA INS P1 P2` then nothing (no data), `Lc` (short) or `00 Lc1 Lc2`
    /// (extended). This is the part of the command that SCP03's C-MAC covers
    /// in front of the data field.
    pub(super) fn header_and_lc(&self) -> Vec<u8> {
        let mut out = vec![self.cla, self.ins, self.p1, self.p2];
        let nc = self.data.len();
        if nc > 0 {
            if self.is_extended() {
                out.push(0);
                out.extend_from_slice(&(nc as u16).to_be_bytes());
            } else {
                out.push(nc as u8);
            }
        }
        out
    }

    /// Encode (ISO/IEC 7816-3 §12.1.3): short form when Nc ≤ 255 and
    /// Ne ≤ 256, extended form otherwise.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let nc = self.data.len();
        if nc > EXTENDED_MAX_NC {
            return Err(Error::DataTooLong { len: nc });
        }
        if let Some(le) = self.le {
            if le == 0 || le > EXTENDED_MAX_NE {
                return Err(Error::BadLe { le });
            }
        }
        let mut out = self.header_and_lc();
        out.extend_from_slice(&self.data);
        if let Some(le) = self.le {
            if self.is_extended() {
                if nc == 0 {
                    // Case 2E: the Le field is 00 Le1 Le2.
                    out.push(0);
                }
                out.extend_from_slice(&((le % 65_536) as u16).to_be_bytes());
            } else {
                out.push((le % 256) as u8);
            }
        }
        Ok(out)
    }

    /// Parse an encoded command APDU; any inconsistency is an error.
    ///
    /// Cases (ISO/IEC 7816-3 §12.1.3), with `n` the APDU length and `b4` its
    /// fifth byte:
    /// * 1: `n = 4`;
    /// * 2S: `n = 5` (Le = b4, 00 → 256);
    /// * 3S / 4S: `b4 ≠ 0` is Lc, `n = 5 + Lc` / `n = 6 + Lc`;
    /// * 2E: `b4 = 0`, `n = 7` (Le on 2 bytes, 0000 → 65536);
    /// * 3E / 4E: `b4 = 0`, Lc on the next 2 bytes (≠ 0), `n = 7 + Lc` /
    ///   `n = 9 + Lc`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Command> {
        let (header, body) = match bytes.split_first_chunk::<4>() {
            Some(parts) => parts,
            None => return Err(Error::ApduTooShort { len: bytes.len() }),
        };
        let [cla, ins, p1, p2] = *header;
        let mut cmd = Command::new(cla, ins, p1, p2);
        let short_le = |b: u8| if b == 0 { 256 } else { usize::from(b) };
        let ext_le = |hi: u8, lo: u8| match u16::from_be_bytes([hi, lo]) {
            0 => 65_536,
            n => usize::from(n),
        };
        match body {
            [] => {}
            [le] => cmd.le = Some(short_le(*le)),
            [0, hi, lo] => cmd.le = Some(ext_le(*hi, *lo)),
            [0, hi, lo, rest @ ..] => {
                let nc = usize::from(u16::from_be_bytes([*hi, *lo]));
                if nc == 0 {
                    return Err(Error::ApduLength("extended Lc of 0000"));
                }
                match rest.len().checked_sub(nc) {
                    Some(0) => cmd.data = rest.to_vec(),
                    Some(2) => {
                        let (data, le) = rest.split_at(nc);
                        cmd.data = data.to_vec();
                        if let [a, b] = *le {
                            cmd.le = Some(ext_le(a, b));
                        }
                    }
                    _ => {
                        return Err(Error::ApduLength(
                            "extended Lc disagrees with the APDU size",
                        ))
                    }
                }
            }
            [lc, rest @ ..] => {
                let nc = usize::from(*lc);
                // lc ≠ 0 here: a 0 first byte matched an arm above or is
                // followed by too few bytes for an extended form.
                if nc == 0 {
                    return Err(Error::ApduLength("Lc of 00 in short form"));
                }
                match rest.len().checked_sub(nc) {
                    Some(0) => cmd.data = rest.to_vec(),
                    Some(1) => {
                        let (data, le) = rest.split_at(nc);
                        cmd.data = data.to_vec();
                        if let [b] = *le {
                            cmd.le = Some(short_le(b));
                        }
                    }
                    _ => return Err(Error::ApduLength("Lc disagrees with the APDU size")),
                }
            }
        }
        Ok(cmd)
    }
}

/// A response APDU: data field and status word SW1-SW2.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: u16,
}

impl Response {
    pub fn new(data: impl Into<Vec<u8>>, sw: u16) -> Response {
        Response {
            data: data.into(),
            sw,
        }
    }

    /// A response with status only.
    pub fn status(sw: u16) -> Response {
        Response::new(Vec::new(), sw)
    }

    /// Data then SW1 SW2.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.data.clone();
        out.extend_from_slice(&self.sw.to_be_bytes());
        out
    }

    /// Split raw response bytes into data and SW1 SW2.
    pub fn from_bytes(bytes: &[u8]) -> Result<Response> {
        match bytes.split_last_chunk::<2>() {
            Some((data, sw)) => Ok(Response::new(data, u16::from_be_bytes(*sw))),
            None => Err(Error::ResponseTooShort { len: bytes.len() }),
        }
    }

    /// Whether the status word is '9000' or a warning ('62xx', '63xx'): the
    /// responses that SCP03 protects (Amendment D §6.2.5). All others are
    /// error status words and travel unprotected.
    pub fn is_protected_status(sw: u16) -> bool {
        sw == 0x9000 || matches!(sw >> 8, 0x62 | 0x63)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_seven_cases_round_trip() {
        let cases = [
            Command::new(0x80, 0xCA, 0x00, 0x66),
            Command::new(0x80, 0xCA, 0x00, 0x66).with_le(256),
            Command::new(0x80, 0xCA, 0x00, 0x66).with_le(12),
            Command::new(0x80, 0xE2, 0x88, 0x00).with_data(vec![1, 2, 3]),
            Command::new(0x80, 0xE2, 0x89, 0x00)
                .with_data(vec![1, 2, 3])
                .with_le(256),
            Command::new(0x80, 0xCA, 0x00, 0x66).with_le(65_536),
            Command::new(0x80, 0xCA, 0x00, 0x66).with_le(300),
            Command::new(0x80, 0xE2, 0x88, 0x00).with_data(vec![7; 300]),
            Command::new(0x80, 0xE2, 0x88, 0x00)
                .with_data(vec![7; 300])
                .with_le(65_536),
            Command::new(0x80, 0xE2, 0x88, 0x00)
                .with_data(vec![7; 3])
                .with_le(1000),
        ];
        for c in cases {
            let bytes = c.to_bytes().unwrap();
            assert_eq!(Command::from_bytes(&bytes).unwrap(), c, "{bytes:02X?}");
        }
    }

    #[test]
    fn encodings_match_iso() {
        let c = Command::new(0x80, 0xCA, 0x00, 0x66).with_le(256);
        assert_eq!(c.to_bytes().unwrap(), [0x80, 0xCA, 0x00, 0x66, 0x00]);
        let c = Command::new(0x80, 0xCA, 0x00, 0x66).with_le(65_536);
        assert_eq!(c.to_bytes().unwrap(), [0x80, 0xCA, 0x00, 0x66, 0, 0, 0]);
        let c = Command::new(0x00, 0xA4, 0x04, 0x00)
            .with_data(vec![0xA0; 300])
            .with_le(256);
        let b = c.to_bytes().unwrap();
        assert_eq!(&b[4..7], &[0x00, 0x01, 0x2C]);
        assert_eq!(&b[b.len() - 2..], &[0x01, 0x00]);
    }

    #[test]
    fn malformed_apdus_are_errors() {
        for bad in [
            &[][..],
            &[0x80, 0xCA, 0x00],
            &[0x80, 0xCA, 0x00, 0x66, 0x02, 0x01],
            &[0x80, 0xCA, 0x00, 0x66, 0x01, 0x01, 0x00, 0x00],
            &[0x80, 0xCA, 0x00, 0x66, 0x00, 0x00],
            &[0x80, 0xCA, 0x00, 0x66, 0x00, 0x00, 0x00, 0x01],
            &[0x80, 0xCA, 0x00, 0x66, 0x00, 0x00, 0x02, 0x01],
        ] {
            assert!(Command::from_bytes(bad).is_err(), "{bad:02X?}");
        }
        assert_eq!(
            Command::new(0, 0, 0, 0).with_le(0).to_bytes(),
            Err(Error::BadLe { le: 0 })
        );
        assert!(Command::new(0, 0, 0, 0)
            .with_data(vec![0; 65_536])
            .to_bytes()
            .is_err());
        assert!(Response::from_bytes(&[0x90]).is_err());
    }
}
