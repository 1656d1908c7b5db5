//! Command and response APDUs (ISO/IEC 7816-3:2006 §12.1, ISO/IEC 7816-4:2013 §5).
//!
//! There is one `Command` type and one encoder. Typed constructors
//! (`select_by_aid`, `verify`, `update_binary`, …) build commands; script files
//! and the `send` subcommand parse into the same type with [`Command::parse`].
//! All Lc/Le arithmetic and the short/extended decision live in
//! [`Command::encode`], so no other module writes length bytes by hand.
//!
//! Command data is either plain or [`Secret`]. A secret data field prints as
//! `REDACTED` in `Debug`, in [`Command::redacted`] (what traces use), and in
//! every error, so a PIN never reaches a log by accident.
//!
//! Command data may also be [`Data::Personal`]: a citizen's names, dates,
//! national ID, photo or certificates. It goes to the card like any data,
//! and shows as `PERSONAL(n bytes)` wherever a secret shows as `REDACTED`,
//! except in the APDU trace of a session started with
//! `--trace-personal-data` ([`show_personal_data`]), which is for debugging
//! with synthetic records. Secrets are never shown, flag or not.

mod status;

pub use status::StatusWord;

use crate::hex;
use crate::secret::Secret;
use serde::Serialize;

/// Largest Nc and Ne in short form (ISO 7816-4 §5.1).
pub const SHORT_MAX_NC: usize = 255;
pub const SHORT_MAX_NE: usize = 256;
/// Largest Nc and Ne in extended form.
pub const EXTENDED_MAX_NC: usize = 65_535;
pub const EXTENDED_MAX_NE: usize = 65_536;

/// The data field of a command: shown, never shown (secret), or shown only
/// in traces of a session that asked for personal data.
#[derive(Clone, PartialEq, Eq)]
pub enum Data {
    Plain(Vec<u8>),
    Sensitive(Secret),
    /// A citizen's personal data (names, dates, national ID, photo,
    /// certificates): `PERSONAL(n bytes)` unless [`show_personal_data`].
    Personal(Vec<u8>),
}

impl Data {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Data::Plain(v) | Data::Personal(v) => v,
            Data::Sensitive(s) => s.expose(),
        }
    }
    pub fn is_sensitive(&self) -> bool {
        matches!(self, Data::Sensitive(_))
    }
    pub fn is_personal(&self) -> bool {
        matches!(self, Data::Personal(_))
    }
    /// The same kind of data field holding `bytes` (for pieces of a
    /// chained or chunked command).
    pub fn same_kind(&self, bytes: Vec<u8>) -> Data {
        match self {
            Data::Plain(_) => Data::Plain(bytes),
            Data::Sensitive(_) => Data::Sensitive(Secret::new(bytes)),
            Data::Personal(_) => Data::Personal(bytes),
        }
    }
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Data::Plain(v) => write!(f, "{}", hex::spaced(v)),
            Data::Sensitive(s) => write!(f, "{s:?}"),
            Data::Personal(v) => write!(f, "{}", personal_placeholder(v.len())),
        }
    }
}

static SHOW_PERSONAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Show personal data in APDU traces and script transcripts from now on
/// (`--trace-personal-data`). Secrets stay redacted.
pub fn show_personal_data(on: bool) {
    SHOW_PERSONAL.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether traces show personal data (see [`show_personal_data`]).
pub fn personal_data_shown() -> bool {
    SHOW_PERSONAL.load(std::sync::atomic::Ordering::Relaxed)
}

/// What a trace shows in place of `n` bytes of personal data.
pub fn personal_placeholder(n: usize) -> String {
    format!("PERSONAL({n} bytes)")
}

/// Personal bytes as a trace shows them: spaced hex when the session asked
/// for personal data, the placeholder otherwise.
pub fn traced_personal(bytes: &[u8]) -> String {
    if personal_data_shown() {
        hex::spaced(bytes)
    } else {
        personal_placeholder(bytes.len())
    }
}

/// The four command cases of ISO 7816-3 §12.1.2, each short (S) or extended (E).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Case {
    /// No data, no response data.
    C1,
    C2S,
    C3S,
    C4S,
    C2E,
    C3E,
    C4E,
}

/// Length form for encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LengthForm {
    /// Short when Nc ≤ 255 and Ne ≤ 256, otherwise extended.
    #[default]
    Auto,
    /// Extended even when short would fit (some cards want this for e.g. GENERATE KEY).
    Extended,
}

/// A command APDU.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Data,
    /// Ne: the number of response bytes expected, 1..=65536, or None for no Le field.
    /// 256 encodes as short Le=00, 65536 as extended Le=0000.
    pub ne: Option<usize>,
    pub form: LengthForm,
}

/// Why a command could not be encoded or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    #[error("command data is {len} bytes; the most an APDU can carry is 65535")]
    DataTooLong { len: usize },
    #[error("Ne {ne} is out of range; expected 1 to 65536")]
    BadNe { ne: usize },
    #[error("APDU is {len} bytes; a command needs at least the 4 header bytes CLA INS P1 P2")]
    TooShort { len: usize },
    #[error("APDU length fields do not match its size: {detail}")]
    BadLength { detail: String },
    #[error(transparent)]
    Hex(#[from] hex::HexError),
}

impl Command {
    /// A case 1 command: header only.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Command {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: Data::Plain(Vec::new()),
            ne: None,
            form: LengthForm::Auto,
        }
    }

    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Command {
        self.data = Data::Plain(data.into());
        self
    }

    pub fn with_secret(mut self, data: Secret) -> Command {
        self.data = Data::Sensitive(data);
        self
    }

    /// Mark the data field as a citizen's personal data (see [`Data::Personal`]).
    pub fn personal(mut self) -> Command {
        self.data = match self.data {
            Data::Plain(v) => Data::Personal(v),
            // A secret stays a secret.
            other => other,
        };
        self
    }

    /// Expect up to `ne` response bytes (1..=65536).
    pub fn with_ne(mut self, ne: usize) -> Command {
        self.ne = Some(ne);
        self
    }

    pub fn extended(mut self) -> Command {
        self.form = LengthForm::Extended;
        self
    }

    pub fn header(&self) -> [u8; 4] {
        [self.cla, self.ins, self.p1, self.p2]
    }

    pub fn data(&self) -> &[u8] {
        self.data.bytes()
    }

    /// Whether this command needs the extended form.
    pub fn needs_extended(&self) -> bool {
        self.form == LengthForm::Extended
            || self.data().len() > SHORT_MAX_NC
            || self.ne.is_some_and(|n| n > SHORT_MAX_NE)
    }

    pub fn case(&self) -> Case {
        let ext = self.needs_extended();
        match (self.data().is_empty(), self.ne.is_some(), ext) {
            (true, false, _) => Case::C1,
            (true, true, false) => Case::C2S,
            (true, true, true) => Case::C2E,
            (false, false, false) => Case::C3S,
            (false, false, true) => Case::C3E,
            (false, true, false) => Case::C4S,
            (false, true, true) => Case::C4E,
        }
    }

    /// Encode per ISO 7816-3 §12.1.3. This is the only place length fields are written.
    pub fn encode(&self) -> Result<Vec<u8>, ApduError> {
        let nc = self.data().len();
        if nc > EXTENDED_MAX_NC {
            return Err(ApduError::DataTooLong { len: nc });
        }
        if let Some(ne) = self.ne {
            if ne == 0 || ne > EXTENDED_MAX_NE {
                return Err(ApduError::BadNe { ne });
            }
        }
        let mut out = Vec::with_capacity(4 + 3 + nc + 3);
        out.extend_from_slice(&self.header());
        let case = self.case();
        // Ne=256 is 00 in short form; Ne=65536 is 0000 in extended form.
        let ne_short = |n: usize| (n % 256) as u8;
        let ne_ext = |n: usize| ((n % 65_536) as u16).to_be_bytes();
        match case {
            Case::C1 => {}
            Case::C2S => out.push(ne_short(self.ne.unwrap_or(256))),
            Case::C3S => {
                out.push(nc as u8);
                out.extend_from_slice(self.data());
            }
            Case::C4S => {
                out.push(nc as u8);
                out.extend_from_slice(self.data());
                out.push(ne_short(self.ne.unwrap_or(256)));
            }
            Case::C2E => {
                out.push(0);
                out.extend_from_slice(&ne_ext(self.ne.unwrap_or(65_536)));
            }
            Case::C3E => {
                out.push(0);
                out.extend_from_slice(&(nc as u16).to_be_bytes());
                out.extend_from_slice(self.data());
            }
            Case::C4E => {
                out.push(0);
                out.extend_from_slice(&(nc as u16).to_be_bytes());
                out.extend_from_slice(self.data());
                out.extend_from_slice(&ne_ext(self.ne.unwrap_or(65_536)));
            }
        }
        Ok(out)
    }

    /// Decode an APDU per ISO 7816-3 §12.1.3. The data field is plain; mark it
    /// sensitive afterwards if it is.
    pub fn parse(bytes: &[u8]) -> Result<Command, ApduError> {
        let Some((header, body)) = bytes.split_first_chunk::<4>() else {
            return Err(ApduError::TooShort { len: bytes.len() });
        };
        let mut cmd = Command::new(header[0], header[1], header[2], header[3]);
        let n = body.len();
        let short = |b: u8| if b == 0 { 256 } else { b as usize };
        let ext = |hi: u8, lo: u8| {
            let v = u16::from_be_bytes([hi, lo]) as usize;
            if v == 0 {
                65_536
            } else {
                v
            }
        };
        match body {
            [] => {}
            [le] => cmd.ne = Some(short(*le)),
            [0, hi, lo] => {
                cmd.ne = Some(ext(*hi, *lo));
                cmd.form = LengthForm::Extended;
            }
            [lc, rest @ ..] if *lc != 0 => {
                let nc = *lc as usize;
                if n == 1 + nc {
                    cmd.data = Data::Plain(rest.to_vec());
                } else if let (true, Some((le, data))) = (n == 2 + nc, rest.split_last()) {
                    cmd.data = Data::Plain(data.to_vec());
                    cmd.ne = Some(short(*le));
                } else {
                    return Err(ApduError::BadLength {
                        detail: format!(
                            "Lc says {nc} data bytes, so the body after the header must be {} or {} bytes, but it is {n}",
                            1 + nc,
                            2 + nc
                        ),
                    });
                }
            }
            [0, hi, lo, rest @ ..] => {
                let nc = u16::from_be_bytes([*hi, *lo]) as usize;
                if nc == 0 {
                    return Err(ApduError::BadLength {
                        detail: "extended Lc is 0000, which ISO 7816-3 does not allow".into(),
                    });
                }
                cmd.form = LengthForm::Extended;
                if rest.len() == nc {
                    cmd.data = Data::Plain(rest.to_vec());
                } else if let (true, Some((data, [hi, lo]))) =
                    (rest.len() == nc + 2, rest.split_last_chunk::<2>())
                {
                    cmd.data = Data::Plain(data.to_vec());
                    cmd.ne = Some(ext(*hi, *lo));
                } else {
                    return Err(ApduError::BadLength {
                        detail: format!(
                            "extended Lc says {nc} data bytes, so {} or {} bytes must follow it, but {} do",
                            nc,
                            nc + 2,
                            rest.len()
                        ),
                    });
                }
            }
            _ => {
                return Err(ApduError::BadLength {
                    detail: format!(
                        "body of {n} bytes starting 00 is neither extended Le (00 xx xx) nor extended Lc"
                    ),
                })
            }
        }
        Ok(cmd)
    }

    /// Parse hex text (any pasted form) into a command.
    pub fn parse_hex(text: &str) -> Result<Command, ApduError> {
        Command::parse(&hex::parse(text)?)
    }

    /// The encoded APDU as spaced hex, with a sensitive data field replaced by
    /// `REDACTED` and a personal one by `PERSONAL(n bytes)`, always. This is
    /// what errors, logs and the journal's transcript digests use.
    pub fn redacted(&self) -> String {
        self.shown(false)
    }

    /// The command as an APDU trace shows it: like [`Command::redacted`],
    /// but personal data in clear when the session asked for it
    /// ([`show_personal_data`]).
    pub fn traced(&self) -> String {
        self.shown(personal_data_shown())
    }

    fn shown(&self, personal_in_clear: bool) -> String {
        let placeholder = match &self.data {
            Data::Plain(_) => None,
            Data::Personal(_) if personal_in_clear => None,
            Data::Personal(v) => Some(personal_placeholder(v.len())),
            Data::Sensitive(s) => Some(format!("REDACTED({} bytes)", s.len())),
        };
        // The encoding holds a secret's bytes (a PIN): wiped when dropped.
        match (placeholder, self.encode().map(zeroize::Zeroizing::new)) {
            (None, Ok(bytes)) => hex::spaced(&bytes),
            (Some(shown), Ok(bytes)) => {
                let n = self.data().len();
                let data_at = bytes.len() - n - self.le_field_len();
                let head = bytes.get(..data_at).unwrap_or_default();
                let tail = bytes.get(data_at + n..).unwrap_or_default();
                let mut out = hex::spaced(head);
                out.push(' ');
                out.push_str(&shown);
                if !tail.is_empty() {
                    out.push(' ');
                    out.push_str(&hex::spaced(tail));
                }
                out
            }
            (_, Err(e)) => format!("{} <unencodable: {e}>", hex::spaced(&self.header())),
        }
    }

    fn le_field_len(&self) -> usize {
        match self.case() {
            Case::C2S | Case::C4S => 1,
            Case::C4E => 2,
            Case::C2E => 3,
            _ => 0,
        }
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Command({})", self.redacted())
    }
}

/// A response APDU: data and status word.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: StatusWord,
}

impl Response {
    pub fn new(data: impl Into<Vec<u8>>, sw: impl Into<StatusWord>) -> Response {
        Response {
            data: data.into(),
            sw: sw.into(),
        }
    }

    /// A response with no data.
    pub fn status(sw: impl Into<StatusWord>) -> Response {
        Response::new(Vec::new(), sw)
    }

    /// Split raw response bytes (data || SW1 SW2).
    pub fn from_bytes(raw: &[u8]) -> Result<Response, ResponseError> {
        match raw.split_last_chunk::<2>() {
            Some((data, [sw1, sw2])) => Ok(Response {
                data: data.to_vec(),
                sw: StatusWord::new(*sw1, *sw2),
            }),
            None => Err(ResponseError::TooShort { len: raw.len() }),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.data.clone();
        v.extend_from_slice(&self.sw.bytes());
        v
    }

    /// The data, if the status word is 9000; otherwise the status as an error.
    pub fn ok(self) -> Result<Vec<u8>, StatusWord> {
        if self.sw.is_ok() {
            Ok(self.data)
        } else {
            Err(self.sw)
        }
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Response({} | {})", hex::spaced(&self.data), self.sw)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("card response is {len} bytes; a response needs at least the 2 status bytes SW1 SW2")]
    TooShort { len: usize },
}

/// Typed constructors for the ISO 7816-4/8/9 commands cardsmith uses.
/// Each names its section; none writes a length byte.
pub mod cmd {
    use super::Command;
    use crate::secret::Secret;

    /// What SELECT returns (ISO 7816-4 §11.1.1, table 63, P2 b4-b3).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum SelectReturn {
        Fci = 0x00,
        Fcp = 0x04,
        Fmd = 0x08,
        Nothing = 0x0C,
    }

    fn select(p1: u8, ret: SelectReturn, data: &[u8]) -> Command {
        let c = Command::new(0x00, 0xA4, p1, ret as u8).with_data(data.to_vec());
        if ret == SelectReturn::Nothing {
            c
        } else {
            c.with_ne(256)
        }
    }

    /// SELECT MF (ISO 7816-4 §11.1.1, P1=00 with FID 3F00).
    pub fn select_mf(ret: SelectReturn) -> Command {
        select(0x00, ret, &[0x3F, 0x00])
    }

    /// SELECT by file identifier (P1=00).
    pub fn select_by_fid(fid: u16, ret: SelectReturn) -> Command {
        select(0x00, ret, &fid.to_be_bytes())
    }

    /// SELECT EF under the current DF (P1=02).
    pub fn select_ef(fid: u16, ret: SelectReturn) -> Command {
        select(0x02, ret, &fid.to_be_bytes())
    }

    /// SELECT parent DF (P1=03).
    pub fn select_parent(ret: SelectReturn) -> Command {
        select(0x03, ret, &[])
    }

    /// SELECT by DF name, i.e. application identifier (P1=04).
    pub fn select_by_aid(aid: &[u8], ret: SelectReturn) -> Command {
        select(0x04, ret, aid)
    }

    /// SELECT by path from the MF (P1=08) or from the current DF (P1=09).
    /// The path is a list of FIDs, without 3F00 at the start.
    pub fn select_by_path(path: &[u16], from_mf: bool, ret: SelectReturn) -> Command {
        let data: Vec<u8> = path.iter().flat_map(|f| f.to_be_bytes()).collect();
        select(if from_mf { 0x08 } else { 0x09 }, ret, &data)
    }

    /// READ BINARY with a 15-bit offset (ISO 7816-4 §11.2.3, INS B0).
    pub fn read_binary(offset: u16, ne: usize) -> Command {
        Command::new(0x00, 0xB0, (offset >> 8) as u8 & 0x7F, offset as u8).with_ne(ne)
    }

    /// READ BINARY of the EF with short identifier `sfi` (1..=30), offset 0..=255.
    pub fn read_binary_sfi(sfi: u8, offset: u8, ne: usize) -> Command {
        Command::new(0x00, 0xB0, 0x80 | (sfi & 0x1F), offset).with_ne(ne)
    }

    /// The offset data object (tag 54) for odd-INS commands: shortest big-endian form.
    fn offset_do(offset: u32) -> Vec<u8> {
        let b = offset.to_be_bytes();
        let skip = b.iter().take(3).take_while(|x| **x == 0).count();
        let mut v = vec![0x54, (4 - skip) as u8];
        v.extend_from_slice(b.get(skip..).unwrap_or_default());
        v
    }

    /// READ BINARY with odd INS B1 for offsets above 32767 (§11.2.3): current EF,
    /// offset in DO 54; the card answers with the data in DO 53.
    pub fn read_binary_odd(offset: u32, ne: usize) -> Command {
        Command::new(0x00, 0xB1, 0x00, 0x00)
            .with_data(offset_do(offset))
            .with_ne(ne)
    }

    /// UPDATE BINARY with a 15-bit offset (§11.2.5, INS D6).
    pub fn update_binary(offset: u16, data: &[u8]) -> Command {
        Command::new(0x00, 0xD6, (offset >> 8) as u8 & 0x7F, offset as u8).with_data(data.to_vec())
    }

    /// UPDATE BINARY with odd INS D7: offset in DO 54, data in DO 53.
    pub fn update_binary_odd(offset: u32, data: &[u8]) -> Command {
        let mut body = offset_do(offset);
        body.push(0x53);
        crate::tlv::push_len(&mut body, data.len());
        body.extend_from_slice(data);
        Command::new(0x00, 0xD7, 0x00, 0x00).with_data(body)
    }

    /// Sensitive UPDATE BINARY: for files holding secrets or biometric data.
    pub fn update_binary_secret(offset: u16, data: Secret) -> Command {
        Command::new(0x00, 0xD6, (offset >> 8) as u8 & 0x7F, offset as u8).with_secret(data)
    }

    /// GET RESPONSE (§11.7.1).
    pub fn get_response(ne: usize) -> Command {
        Command::new(0x00, 0xC0, 0x00, 0x00).with_ne(ne)
    }

    /// GET CHALLENGE (§11.5.3).
    pub fn get_challenge(ne: usize) -> Command {
        Command::new(0x00, 0x84, 0x00, 0x00).with_ne(ne)
    }

    /// GET DATA for a tag in P1-P2 (§11.4.3, INS CA).
    pub fn get_data(tag: u16, ne: usize) -> Command {
        Command::new(0x00, 0xCA, (tag >> 8) as u8, tag as u8).with_ne(ne)
    }

    /// VERIFY (§11.5.6): check `pin` against reference `reference`.
    pub fn verify(reference: u8, pin: Secret) -> Command {
        Command::new(0x00, 0x20, 0x00, reference).with_secret(pin)
    }

    /// VERIFY with no data: ask the verification status (9000 or 63Cx).
    pub fn verify_status(reference: u8) -> Command {
        Command::new(0x00, 0x20, 0x00, reference)
    }

    /// VERIFY P1=FF: reset the verification status (ISO 7816-4:2013).
    pub fn verify_reset(reference: u8) -> Command {
        Command::new(0x00, 0x20, 0xFF, reference)
    }

    /// CHANGE REFERENCE DATA (§11.5.7), P1=00: old then new.
    pub fn change_reference_data(reference: u8, old: &Secret, new: &Secret) -> Command {
        let mut v = old.expose().to_vec();
        v.extend_from_slice(new.expose());
        Command::new(0x00, 0x24, 0x00, reference).with_secret(Secret::new(v))
    }

    /// RESET RETRY COUNTER (§11.5.10), P1=00: resetting code then new reference data.
    pub fn reset_retry_counter(reference: u8, puk: &Secret, new: &Secret) -> Command {
        let mut v = puk.expose().to_vec();
        v.extend_from_slice(new.expose());
        Command::new(0x00, 0x2C, 0x00, reference).with_secret(Secret::new(v))
    }

    /// CREATE FILE (ISO 7816-9 §6.2) with an FCP template (tag 62).
    pub fn create_file(fcp: &[u8]) -> Command {
        Command::new(0x00, 0xE0, 0x00, 0x00).with_data(fcp.to_vec())
    }

    /// DELETE FILE (ISO 7816-9 §6.3) by FID.
    pub fn delete_file(fid: u16) -> Command {
        Command::new(0x00, 0xE4, 0x00, 0x00).with_data(fid.to_be_bytes().to_vec())
    }

    /// ACTIVATE FILE (ISO 7816-9 §6.5) on the current file.
    pub fn activate_file() -> Command {
        Command::new(0x00, 0x44, 0x00, 0x00)
    }

    /// DEACTIVATE FILE (ISO 7816-9 §6.4) on the current file.
    pub fn deactivate_file() -> Command {
        Command::new(0x00, 0x04, 0x00, 0x00)
    }

    /// TERMINATE DF (ISO 7816-9 §6.7) on the current DF.
    pub fn terminate_df() -> Command {
        Command::new(0x00, 0xE6, 0x00, 0x00)
    }

    /// TERMINATE EF (ISO 7816-9 §6.8) on the current EF.
    pub fn terminate_ef() -> Command {
        Command::new(0x00, 0xE8, 0x00, 0x00)
    }

    /// TERMINATE CARD USAGE (ISO 7816-9 §6.9).
    pub fn terminate_card_usage() -> Command {
        Command::new(0x00, 0xFE, 0x00, 0x00)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::parse as h;

    fn enc(c: &Command) -> Vec<u8> {
        c.encode().unwrap()
    }

    #[test]
    fn personal_data_is_sent_but_shown_as_personal() {
        let c = cmd::update_binary(0, b"Mina").personal();
        assert!(c.data.is_personal());
        assert_eq!(enc(&c), h("00 D6 00 00 04 4D 69 6E 61").unwrap());
        assert_eq!(c.redacted(), "00 D6 00 00 04 PERSONAL(4 bytes)");
        assert_eq!(format!("{:?}", c.data), "PERSONAL(4 bytes)");
        assert!(!format!("{c:?}").contains("4D 69"));
        // Chunks of a personal command stay personal; a secret stays secret.
        assert!(c.data.same_kind(vec![1]).is_personal());
        let s = Command::new(0, 0x20, 0, 1)
            .with_secret(Secret::new(b"1234".to_vec()))
            .personal();
        assert!(s.data.is_sensitive());
        assert_eq!(s.redacted(), "00 20 00 01 04 REDACTED(4 bytes)");
    }

    #[test]
    fn case_1() {
        let c = Command::new(0x00, 0x44, 0, 0);
        assert_eq!(c.case(), Case::C1);
        assert_eq!(enc(&c), h("00 44 00 00").unwrap());
    }

    #[test]
    fn case_2_short_and_extended() {
        let c = cmd::get_challenge(8);
        assert_eq!(c.case(), Case::C2S);
        assert_eq!(enc(&c), h("00 84 00 00 08").unwrap());
        assert_eq!(enc(&cmd::get_challenge(256)), h("00 84 00 00 00").unwrap());
        let c = cmd::read_binary(0, 1000);
        assert_eq!(c.case(), Case::C2E);
        assert_eq!(enc(&c), h("00 B0 00 00 00 03 E8").unwrap());
        assert_eq!(
            enc(&cmd::read_binary(0, 65_536)),
            h("00 B0 00 00 00 00 00").unwrap()
        );
        // Forced extended for a small Ne.
        assert_eq!(
            enc(&cmd::get_challenge(8).extended()),
            h("00 84 00 00 00 00 08").unwrap()
        );
    }

    #[test]
    fn case_3_short_and_extended() {
        let c = cmd::update_binary(0x0102, &[1, 2, 3]);
        assert_eq!(c.case(), Case::C3S);
        assert_eq!(enc(&c), h("00 D6 01 02 03 01 02 03").unwrap());
        let big = vec![0xAB; 300];
        let c = cmd::update_binary(0, &big);
        assert_eq!(c.case(), Case::C3E);
        let e = enc(&c);
        assert_eq!(&e[..7], &h("00 D6 00 00 00 01 2C").unwrap()[..]);
        assert_eq!(e.len(), 7 + 300);
        // 255 still short, 256 extended.
        assert_eq!(cmd::update_binary(0, &[0; 255]).case(), Case::C3S);
        assert_eq!(cmd::update_binary(0, &[0; 256]).case(), Case::C3E);
    }

    #[test]
    fn case_4_short_and_extended() {
        let c = cmd::select_by_aid(&h("A0 00 00 00 03").unwrap(), cmd::SelectReturn::Fci);
        assert_eq!(c.case(), Case::C4S);
        assert_eq!(enc(&c), h("00 A4 04 00 05 A0 00 00 00 03 00").unwrap());
        let c = Command::new(0x00, 0x88, 0, 0)
            .with_data(vec![7; 300])
            .with_ne(65_536);
        assert_eq!(c.case(), Case::C4E);
        let e = enc(&c);
        assert_eq!(&e[..7], &h("00 88 00 00 00 01 2C").unwrap()[..]);
        assert_eq!(&e[e.len() - 2..], &[0, 0]);
        // Short data with large Ne forces both fields extended.
        let c = Command::new(0x00, 0x88, 0, 0)
            .with_data(vec![1])
            .with_ne(300);
        assert_eq!(enc(&c), h("00 88 00 00 00 00 01 01 01 2C").unwrap());
    }

    #[test]
    fn limits_are_errors() {
        assert_eq!(
            Command::new(0, 0xD6, 0, 0)
                .with_data(vec![0; 65_536])
                .encode(),
            Err(ApduError::DataTooLong { len: 65_536 })
        );
        assert_eq!(
            Command::new(0, 0xB0, 0, 0).with_ne(0).encode(),
            Err(ApduError::BadNe { ne: 0 })
        );
        assert_eq!(
            Command::new(0, 0xB0, 0, 0).with_ne(65_537).encode(),
            Err(ApduError::BadNe { ne: 65_537 })
        );
    }

    #[test]
    fn parse_round_trips_every_case() {
        let cmds = [
            Command::new(0x80, 0xCA, 0x9F, 0x7F),
            cmd::get_challenge(8),
            cmd::get_challenge(256),
            cmd::read_binary(5, 1000),
            cmd::read_binary(5, 65_536),
            cmd::update_binary(1, &[9; 10]),
            cmd::update_binary(1, &[9; 1000]),
            cmd::select_mf(cmd::SelectReturn::Fcp),
            Command::new(0, 0x88, 0, 0)
                .with_data(vec![1; 400])
                .with_ne(400),
            Command::new(0, 0x88, 0, 0)
                .with_data(vec![1; 2])
                .with_ne(65_536),
        ];
        for c in cmds {
            let bytes = enc(&c);
            let back = Command::parse(&bytes).unwrap();
            assert_eq!(enc(&back), bytes, "{c:?}");
            assert_eq!(back.case(), c.case());
        }
    }

    #[test]
    fn parse_rejects_inconsistent_lengths_with_detail() {
        assert_eq!(
            Command::parse(&[0, 0xA4]),
            Err(ApduError::TooShort { len: 2 })
        );
        let e = Command::parse_hex("00 A4 04 00 05 A0 00").unwrap_err();
        assert!(e.to_string().contains("Lc says 5 data bytes"), "{e}");
        let e = Command::parse_hex("00 D6 00 00 00 00 03 01 02").unwrap_err();
        assert!(e.to_string().contains("extended Lc says 3"), "{e}");
        let e = Command::parse_hex("00 D6 00 00 00 00 00 01").unwrap_err();
        assert!(matches!(e, ApduError::BadLength { .. }), "{e}");
        let e = Command::parse_hex("00 A4 0G").unwrap_err();
        assert!(matches!(e, ApduError::Hex(_)), "{e}");
    }

    #[test]
    fn secrets_are_redacted_everywhere() {
        let c = cmd::verify(0x01, Secret::new(b"987654".to_vec()));
        let shown = format!("{c:?} {}", c.redacted());
        assert!(!shown.contains("39 38 37"), "{shown}");
        assert!(!shown.contains("393837"), "{shown}");
        assert_eq!(c.redacted(), "00 20 00 01 06 REDACTED(6 bytes)");
        let c = Command::new(0, 0x88, 0, 0)
            .with_secret(Secret::new(vec![0x55; 3]))
            .with_ne(256);
        assert_eq!(c.redacted(), "00 88 00 00 03 REDACTED(3 bytes) 00");
        assert_eq!(enc(&c), h("00 88 00 00 03 55 55 55 00").unwrap());
    }

    #[test]
    fn odd_ins_offsets() {
        let c = cmd::read_binary_odd(40_000, 16);
        assert_eq!(enc(&c), h("00 B1 00 00 04 54 02 9C 40 10").unwrap());
        let c = cmd::update_binary_odd(0x12_3456, &[1, 2]);
        assert_eq!(
            enc(&c),
            h("00 D7 00 00 09 54 03 12 34 56 53 02 01 02").unwrap()
        );
        assert_eq!(
            enc(&cmd::read_binary_odd(0, 1)),
            h("00 B1 00 00 03 54 01 00 01").unwrap()
        );
    }

    #[test]
    fn response_split() {
        let r = Response::from_bytes(&[1, 2, 0x90, 0]).unwrap();
        assert_eq!(r.data, vec![1, 2]);
        assert_eq!(r.sw, StatusWord::Ok);
        assert_eq!(r.to_bytes(), vec![1, 2, 0x90, 0]);
        assert_eq!(
            Response::from_bytes(&[0x90]),
            Err(ResponseError::TooShort { len: 1 })
        );
        assert_eq!(
            Response::from_bytes(&[0x6A, 0x82]).unwrap().ok(),
            Err(StatusWord::FileNotFound)
        );
    }
}
