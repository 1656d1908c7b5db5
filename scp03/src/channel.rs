//! Secure channel parameters and the secure messaging both sides share:
//! S8/S16 mode, the "i" parameter, security levels, the INITIALIZE UPDATE
//! response layout, and the C-MAC / C-ENC / R-MAC / R-ENC transformations
//! (Amendment D §6.2.3–§6.2.7).
//!
//! The (private) channel state holds the four transformations: the host
//! wraps commands and unwraps responses, the card unwraps commands and wraps
//! responses. Keeping the four in one place keeps the two sides consistent.

use super::crypto::{self, BLOCK};
use super::error::{Error, Result};
use super::keys::SessionKeys;
use super::reader::Reader;
use cardsmith_wire::apdu::{
    Command, Data, LengthForm, Response, StatusWord, EXTENDED_MAX_NC, SHORT_MAX_NC,
};
use zeroize::Zeroizing;

/// A command's protected parts (see [`Channel::wrap_parts`]).
struct Wrapped {
    cla: u8,
    data: Zeroizing<Vec<u8>>,
    le: Option<usize>,
    /// Whether the protected command is in the extended length form (the
    /// C-MAC covered its Lc that way).
    extended: bool,
}

/// "i" parameter bit b1: S16 mode (16-byte challenges, cryptograms and MACs).
/// Not in Amendment D v1.1.1 (where b1 is RFU); added with S16 mode in later
/// versions, and what S16 cards send (e.g. i = '71').
pub const I_S16: u8 = 0x01;
/// "i" bit b5: pseudo-random card challenge (Amendment D Table 5-1).
pub const I_PSEUDO_RANDOM: u8 = 0x10;
/// "i" bit b6: R-MAC supported.
pub const I_R_MAC: u8 = 0x20;
/// "i" bit b7: R-ENC supported (only together with b6).
pub const I_R_ENC: u8 = 0x40;

/// Check an "i" parameter: b8 and b4–b2 are RFU (must be 0), and R-ENC
/// support needs R-MAC support.
pub fn check_i_param(i_param: u8) -> Result<()> {
    let rfu = 0x8E;
    if i_param & rfu != 0 || i_param & (I_R_MAC | I_R_ENC) == I_R_ENC {
        return Err(Error::BadIParameter { i_param });
    }
    Ok(())
}

/// S8 or S16 mode: the length of challenges, cryptograms, C-MAC and R-MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// 8-byte challenges, cryptograms and MACs (the original SCP03).
    S8,
    /// 16-byte challenges, cryptograms and MACs.
    S16,
}

impl Mode {
    /// 8 or 16.
    pub fn len(self) -> usize {
        match self {
            Mode::S8 => 8,
            Mode::S16 => 16,
        }
    }

    /// Never true; here for symmetry with `len`.
    pub fn is_empty(self) -> bool {
        false
    }

    /// The mode an "i" parameter selects (bit b1).
    pub fn from_i_param(i_param: u8) -> Mode {
        if i_param & I_S16 != 0 {
            Mode::S16
        } else {
            Mode::S8
        }
    }
}

/// A security level: the P1 of EXTERNAL AUTHENTICATE (Amendment D Table 7-3).
///
/// Bits: b1 ('01') C-MAC, b2 ('02') C-DECRYPTION, b5 ('10') R-MAC,
/// b6 ('20') R-ENCRYPTION. Only the six combinations below are valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SecurityLevel(u8);

impl SecurityLevel {
    /// '00': authenticated, but no secure messaging on later commands.
    pub const NO_SECURE_MESSAGING: SecurityLevel = SecurityLevel(0x00);
    /// '01': C-MAC.
    pub const C_MAC: SecurityLevel = SecurityLevel(0x01);
    /// '03': C-DECRYPTION and C-MAC.
    pub const C_DEC_C_MAC: SecurityLevel = SecurityLevel(0x03);
    /// '11': C-MAC and R-MAC.
    pub const C_MAC_R_MAC: SecurityLevel = SecurityLevel(0x11);
    /// '13': C-DECRYPTION, C-MAC and R-MAC.
    pub const C_DEC_C_MAC_R_MAC: SecurityLevel = SecurityLevel(0x13);
    /// '33': C-DECRYPTION, R-ENCRYPTION, C-MAC and R-MAC.
    pub const C_DEC_R_ENC_C_MAC_R_MAC: SecurityLevel = SecurityLevel(0x33);

    /// Every valid level, weakest first.
    pub const ALL: [SecurityLevel; 6] = [
        SecurityLevel::NO_SECURE_MESSAGING,
        SecurityLevel::C_MAC,
        SecurityLevel::C_DEC_C_MAC,
        SecurityLevel::C_MAC_R_MAC,
        SecurityLevel::C_DEC_C_MAC_R_MAC,
        SecurityLevel::C_DEC_R_ENC_C_MAC_R_MAC,
    ];

    /// The level for an EXTERNAL AUTHENTICATE P1 byte.
    pub fn from_p1(p1: u8) -> Result<SecurityLevel> {
        SecurityLevel::ALL
            .into_iter()
            .find(|l| l.0 == p1)
            .ok_or(Error::BadSecurityLevel { level: p1 })
    }

    /// The P1 byte.
    pub fn p1(self) -> u8 {
        self.0
    }
    pub fn c_mac(self) -> bool {
        self.0 & 0x01 != 0
    }
    pub fn c_dec(self) -> bool {
        self.0 & 0x02 != 0
    }
    pub fn r_mac(self) -> bool {
        self.0 & 0x10 != 0
    }
    pub fn r_enc(self) -> bool {
        self.0 & 0x20 != 0
    }

    /// The protections in force, in the order C-MAC, C-DECRYPTION, R-MAC,
    /// R-ENCRYPTION, as Amendment D names them (`short`: the abbreviations
    /// C-MAC, C-ENC, R-MAC, R-ENC).
    pub fn names(self, short: bool) -> Vec<&'static str> {
        [
            (self.c_mac(), "C-MAC", "C-MAC"),
            (self.c_dec(), "C-DECRYPTION", "C-ENC"),
            (self.r_mac(), "R-MAC", "R-MAC"),
            (self.r_enc(), "R-ENCRYPTION", "R-ENC"),
        ]
        .into_iter()
        .filter(|(on, _, _)| *on)
        .map(|(_, long, abbr)| if short { abbr } else { long })
        .collect()
    }

    /// Whether a card with this "i" parameter supports this level.
    pub fn supported_by(self, i_param: u8) -> bool {
        (!self.r_mac() || i_param & I_R_MAC != 0) && (!self.r_enc() || i_param & I_R_ENC != 0)
    }

    /// The longest plain command data field that still fits in
    /// `max_wrapped` bytes (255 for short APDUs) once this level added its
    /// padding (C-DECRYPTION: '80 00..' to a multiple of 16, at least one
    /// byte) and C-MAC (8 or 16 bytes).
    pub fn max_plain_len(self, mode: Mode, max_wrapped: usize) -> usize {
        if !self.c_mac() {
            return max_wrapped;
        }
        let room = max_wrapped.saturating_sub(mode.len());
        if self.c_dec() {
            // Padded length is the largest multiple of 16 ≤ room; the plain
            // data is at least one byte shorter.
            (room / BLOCK * BLOCK).saturating_sub(1)
        } else {
            room
        }
    }
}

/// The CLA byte covered by the C-MAC and the CLA byte sent, for a plain CLA
/// (Amendment D §6.2.4).
///
/// The C-MAC always covers the first-interindustry form with logical channel
/// 0, b4 = 0 and b3 = 1 (e.g. '84'); b8 and the command chaining bit b5 are
/// kept. The CLA sent keeps the logical channel: b3 ('04') marks secure
/// messaging for channels 0–3, b6 ('20') for channels 4–19 (GPCS Tables
/// 11-11/11-12).
pub(super) fn secure_cla(cla: u8) -> Result<(u8, u8)> {
    let unsupported = Err(Error::UnsupportedCla { cla });
    if cla == 0xFF {
        return unsupported;
    }
    if cla & 0x40 == 0 {
        // First interindustry: b7 = 0; b6 must be 0 too, b4 b3 (SM) must be 0.
        if cla & 0x20 != 0 || cla & 0x0C != 0 {
            return unsupported;
        }
        Ok(((cla & 0x90) | 0x04, cla | 0x04))
    } else {
        // Further interindustry: b6 is the SM indication.
        if cla & 0x20 != 0 {
            return unsupported;
        }
        Ok(((cla & 0x90) | 0x04, cla | 0x20))
    }
}

/// For a received CLA: the CLA covered by the C-MAC and the CLA without the
/// secure messaging indication (what the application sees).
pub(super) fn received_cla(cla: u8) -> Result<(u8, u8)> {
    if cla == 0xFF || cla & 0x60 == 0x20 {
        return Err(Error::UnsupportedCla { cla });
    }
    let plain = if cla & 0x40 == 0 {
        cla & !0x04
    } else {
        cla & !0x20
    };
    Ok(((cla & 0x90) | 0x04, plain))
}

/// The data field of a successful INITIALIZE UPDATE response (Amendment D
/// Table 7-2).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct InitUpdateResponse {
    /// Key diversification data (10 bytes), used by back ends to derive the
    /// card's static keys.
    pub kdd: [u8; 10],
    /// Key information, byte 1: the key version number used.
    pub kvn: u8,
    /// Key information, byte 2: the Secure Channel Protocol identifier ('03').
    pub scp: u8,
    /// Key information, byte 3: the "i" parameter.
    pub i_param: u8,
    /// Card challenge (8 or 16 bytes).
    pub card_challenge: Vec<u8>,
    /// Card cryptogram (8 or 16 bytes).
    pub card_cryptogram: Vec<u8>,
    /// Sequence counter (3 bytes), present only with pseudo-random challenges.
    pub sequence_counter: Option<[u8; 3]>,
}

impl InitUpdateResponse {
    /// Parse the response data field (without SW1 SW2).
    ///
    /// The layout depends on the "i" parameter: S16 mode (b1) doubles the
    /// challenge and cryptogram; pseudo-random challenges (b5) add the
    /// sequence counter. Lengths are thus 29, 32, 45 or 48 bytes.
    pub fn parse(data: &[u8]) -> Result<InitUpdateResponse> {
        let mut r = Reader::new(data, Error::MalformedInitUpdateResponse("too short"));
        let kdd = r.array::<10>()?;
        let [kvn, scp, i_param] = r.array::<3>()?;
        if scp != 0x03 {
            return Err(Error::NotScp03 { scp });
        }
        check_i_param(i_param)?;
        let n = Mode::from_i_param(i_param).len();
        let pseudo = i_param & I_PSEUDO_RANDOM != 0;
        let expected = 2 * n + if pseudo { 3 } else { 0 };
        if r.remaining() != expected {
            return Err(Error::MalformedInitUpdateResponse(
                "length does not match the i parameter",
            ));
        }
        let card_challenge = r.take(n)?.to_vec();
        let card_cryptogram = r.take(n)?.to_vec();
        let sequence_counter = if pseudo { Some(r.array::<3>()?) } else { None };
        Ok(InitUpdateResponse {
            kdd,
            kvn,
            scp,
            i_param,
            card_challenge,
            card_cryptogram,
            sequence_counter,
        })
    }

    /// Encode as the card sends it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.kdd.to_vec();
        out.extend_from_slice(&[self.kvn, self.scp, self.i_param]);
        out.extend_from_slice(&self.card_challenge);
        out.extend_from_slice(&self.card_cryptogram);
        if let Some(c) = self.sequence_counter {
            out.extend_from_slice(&c);
        }
        out
    }

    /// The S8/S16 mode the "i" parameter selects.
    pub fn mode(&self) -> Mode {
        Mode::from_i_param(self.i_param)
    }
}

/// The state of an open secure channel session: session keys, MAC chaining
/// value, encryption counter and security level.
pub(super) struct Channel {
    keys: SessionKeys,
    mode: Mode,
    level: SecurityLevel,
    /// The last full 16-byte C-MAC ('00' × 16 before EXTERNAL AUTHENTICATE).
    chain: [u8; BLOCK],
    /// The encryption counter of §6.2.6: 0 before the first command after
    /// EXTERNAL AUTHENTICATE, incremented for every command.
    counter: u128,
}

impl Channel {
    /// A channel for the EXTERNAL AUTHENTICATE exchange: chaining value zero,
    /// C-MAC only.
    pub(super) fn for_external_authenticate(keys: SessionKeys, mode: Mode) -> Channel {
        Channel {
            keys,
            mode,
            level: SecurityLevel::C_MAC,
            chain: [0; BLOCK],
            counter: 0,
        }
    }

    /// After EXTERNAL AUTHENTICATE: switch to the negotiated level. The MAC
    /// chaining value stays the EXTERNAL AUTHENTICATE C-MAC; the encryption
    /// counter restarts so that the next command uses 1.
    pub(super) fn open(&mut self, level: SecurityLevel) {
        self.level = level;
        self.counter = 0;
    }

    pub(super) fn level(&self) -> SecurityLevel {
        self.level
    }

    pub(super) fn mode(&self) -> Mode {
        self.mode
    }

    pub(super) fn keys(&self) -> &SessionKeys {
        &self.keys
    }

    fn increment_counter(&mut self) -> Result<()> {
        self.counter = self.counter.checked_add(1).ok_or(Error::CounterExhausted)?;
        Ok(())
    }

    /// ICV for command (`response = false`) or response encryption: S-ENC
    /// applied to the counter as a 16-byte big-endian block, whose first byte
    /// is set to '80' for responses (§6.2.6, §6.2.7).
    fn icv(&self, response: bool) -> Result<[u8; BLOCK]> {
        let mut block = self.counter.to_be_bytes();
        if response {
            block[0] = 0x80;
        }
        crypto::encrypt_block(self.keys.s_enc.expose(), block)
    }

    fn encrypt(&self, plain: &[u8], response: bool) -> Result<Vec<u8>> {
        let mut data = crypto::pad80(plain);
        crypto::cbc_encrypt(self.keys.s_enc.expose(), self.icv(response)?, &mut data)?;
        Ok(data)
    }

    fn decrypt(&self, cipher: &[u8], response: bool) -> Result<Vec<u8>> {
        if !cipher.len().is_multiple_of(BLOCK) {
            return Err(Error::BadCiphertext("length is not a multiple of 16"));
        }
        let mut data = cipher.to_vec();
        crypto::cbc_decrypt(self.keys.s_enc.expose(), self.icv(response)?, &mut data)?;
        let plain = crypto::unpad80(data)?;
        if plain.is_empty() {
            // Empty data fields are never encrypted (§6.2.6, §6.2.7).
            return Err(Error::BadCiphertext("encrypted empty data field"));
        }
        Ok(plain)
    }

    /// Host side: protect a command at the current level (§6.2.4, §6.2.6).
    ///
    /// * The encryption counter is incremented for every command.
    /// * C-DECRYPTION: a non-empty data field is padded and encrypted with
    ///   S-ENC in CBC mode, ICV = AES(S-ENC, counter block).
    /// * C-MAC: CMAC(S-MAC, chaining value ‖ CLA' INS P1 P2 Lc' ‖ data')
    ///   where CLA' is the secure messaging CLA with channel 0 and Lc'
    ///   counts the MAC; the first 8 (S8) or 16 (S16) bytes are appended and
    ///   all 16 become the new chaining value.
    /// * A command that had an Le field gets the largest Le of its length
    ///   form (short '00', extended '0000'): R-MAC and R-ENC padding make the
    ///   response longer than the caller's Ne.
    /// * Short form unless the protected data exceeds 255 bytes, the
    ///   caller's Ne exceeds 256 or the caller asked for the extended form.
    /// * The protected command keeps the kind of the data field: a secret
    ///   (a PIN, a key) stays a [`cardsmith_wire::secret::Secret`], wiped on drop and
    ///   shown as `REDACTED`, when C-MAC alone leaves it readable in the
    ///   protected field, and personal data stays personal.
    pub(super) fn wrap_command(&mut self, cmd: &Command) -> Result<Command> {
        let extended = cmd.form == LengthForm::Extended;
        let mut w = self.wrap_parts(cmd.header(), cmd.data(), cmd.ne, extended)?;
        Ok(Command {
            cla: w.cla,
            ins: cmd.ins,
            p1: cmd.p1,
            p2: cmd.p2,
            data: cmd.data.same_kind(std::mem::take(&mut *w.data)),
            ne: w.le,
            form: if w.extended {
                LengthForm::Extended
            } else {
                LengthForm::Auto
            },
        })
    }

    /// [`Channel::wrap_command`] on the parts of a command: the protected
    /// CLA, data field and Le. The data field is built in a buffer that is
    /// wiped when dropped, so a secret's plain bytes (C-MAC without
    /// C-DECRYPTION leaves them in the protected field) are never left in
    /// freed memory; the caller takes the bytes out with `mem::take`.
    fn wrap_parts(
        &mut self,
        [cla, ins, p1, p2]: [u8; 4],
        plain: &[u8],
        le: Option<usize>,
        force_extended: bool,
    ) -> Result<Wrapped> {
        if let Some(le) = le {
            if le == 0 || le > 65_536 {
                return Err(Error::BadLe { le });
            }
        }
        if !self.level.c_mac() {
            return Ok(Wrapped {
                cla,
                data: Zeroizing::new(plain.to_vec()),
                le,
                extended: force_extended,
            });
        }
        let (mac_cla, wire_cla) = secure_cla(cla)?;
        let n = self.mode.len();
        let encrypt = self.level.c_dec() && !plain.is_empty();
        let protected_len = if encrypt {
            (plain.len() / BLOCK + 1) * BLOCK + n
        } else {
            plain.len() + n
        };
        if protected_len > EXTENDED_MAX_NC {
            return Err(Error::DataTooLong { len: protected_len });
        }
        self.increment_counter()?;
        let mut data = Zeroizing::new(Vec::with_capacity(protected_len));
        if encrypt {
            data.extend_from_slice(&self.encrypt(plain, false)?);
        } else {
            data.extend_from_slice(plain);
        }
        let extended =
            force_extended || protected_len > SHORT_MAX_NC || le.is_some_and(|le| le > 256);
        let le = le.map(|_| if extended { 65_536 } else { 256 });
        let body_len = data.len();
        data.resize(protected_len, 0);
        // CLA' INS P1 P2 Lc' as the encoder writes them: Lc' on one byte
        // (short) or '00' and two bytes (extended); Lc' ≥ n > 0.
        let mut header = vec![mac_cla, ins, p1, p2];
        if extended {
            header.push(0);
            header.extend_from_slice(&(protected_len as u16).to_be_bytes());
        } else {
            header.push(protected_len as u8);
        }
        let (body, mac_field) = data.split_at_mut(body_len);
        let mac = crypto::cmac(self.keys.s_mac.expose(), &[&self.chain, &header, body])?;
        self.chain = mac;
        mac_field.copy_from_slice(mac.get(..n).unwrap_or_default());
        Ok(Wrapped {
            cla: wire_cla,
            data,
            le,
            extended,
        })
    }

    /// Card side: verify and strip the protection of a received command
    /// (raw APDU bytes, so the C-MAC covers Lc exactly as transmitted).
    ///
    /// The security of the command is checked against the current level
    /// whatever its CLA says (§5.6). A C-MAC that does not verify is
    /// [`Error::CMacMismatch`] and leaves the chaining value unchanged; the
    /// caller aborts the session.
    pub(super) fn unwrap_command(&mut self, raw: &[u8]) -> Result<Command> {
        let cmd = Command::parse(raw)?;
        if !self.level.c_mac() {
            return Ok(cmd);
        }
        let (mac_cla, plain_cla) = received_cla(cmd.cla)?;
        self.increment_counter()?;
        let n = self.mode.len();
        let Some(body_len) = cmd.data().len().checked_sub(n) else {
            return Err(Error::CMacMismatch);
        };
        let (body, mac) = cmd.data().split_at(body_len);
        // Header as transmitted: CLA INS P1 P2 and a 1-byte (short) or 3-byte
        // (extended, first byte '00') Lc; data is non-empty here.
        let lc_len = if raw.get(4) == Some(&0) { 3 } else { 1 };
        let mut header = match raw.get(..4 + lc_len) {
            Some(h) => h.to_vec(),
            None => {
                return Err(Error::Apdu(cardsmith_wire::apdu::ApduError::BadLength {
                    detail: "no Lc field".into(),
                }))
            }
        };
        if let Some(first) = header.first_mut() {
            *first = mac_cla;
        }
        let expected = crypto::cmac(self.keys.s_mac.expose(), &[&self.chain, &header, body])?;
        if !cardsmith_wire::crypto::ct_eq(expected.get(..n).unwrap_or_default(), mac) {
            return Err(Error::CMacMismatch);
        }
        self.chain = expected;
        // Plain on the card side: which fields are secret is the card
        // application's knowledge (a PIN, a key), not the channel's.
        let data = Data::Plain(if self.level.c_dec() && !body.is_empty() {
            self.decrypt(body, false)?
        } else {
            body.to_vec()
        });
        Ok(Command {
            cla: plain_cla,
            ins: cmd.ins,
            p1: cmd.p1,
            p2: cmd.p2,
            data,
            ne: cmd.ne,
            form: cmd.form,
        })
    }

    /// Card side: protect a response (§6.2.5, §6.2.7).
    ///
    /// Without R-MAC the response goes out as it is. With R-MAC, an error
    /// status word (anything but '9000', '62xx', '63xx') goes out alone, its
    /// data dropped; otherwise R-ENC encrypts a non-empty data field (ICV from
    /// the counter block with first byte '80') and the R-MAC,
    /// CMAC(S-RMAC, chaining value ‖ data' ‖ SW)[..8 or 16], is appended.
    pub(super) fn wrap_response(&self, data: &[u8], sw: u16) -> Result<Response> {
        if !self.level.r_mac() {
            return Ok(Response::new(data, sw));
        }
        if !StatusWord::from_u16(sw).is_success_or_warning() {
            return Ok(Response::status(sw));
        }
        let mut body = if self.level.r_enc() && !data.is_empty() {
            self.encrypt(data, true)?
        } else {
            data.to_vec()
        };
        let mac = crypto::cmac(
            self.keys.s_rmac.expose(),
            &[&self.chain, &body, &sw.to_be_bytes()],
        )?;
        body.extend_from_slice(mac.get(..self.mode.len()).unwrap_or_default());
        Ok(Response::new(body, sw))
    }

    /// Host side: verify the R-MAC of a response and decrypt R-ENC data.
    /// Error status words carry no R-MAC and must carry no data.
    pub(super) fn unwrap_response(&self, resp: &Response) -> Result<Response> {
        if !self.level.r_mac() {
            return Ok(resp.clone());
        }
        if !resp.sw.is_success_or_warning() {
            if !resp.data.is_empty() {
                return Err(Error::MalformedResponse("error status word with data"));
            }
            return Ok(resp.clone());
        }
        let n = self.mode.len();
        let Some(body_len) = resp.data.len().checked_sub(n) else {
            return Err(Error::MalformedResponse("too short to hold an R-MAC"));
        };
        let (body, mac) = resp.data.split_at(body_len);
        let expected = crypto::cmac(
            self.keys.s_rmac.expose(),
            &[&self.chain, body, &resp.sw.bytes()],
        )?;
        if !cardsmith_wire::crypto::ct_eq(expected.get(..n).unwrap_or_default(), mac) {
            return Err(Error::RMacMismatch);
        }
        let data = if self.level.r_enc() && !body.is_empty() {
            self.decrypt(body, true)?
        } else {
            body.to_vec()
        };
        Ok(Response::new(data, resp.sw))
    }

    /// The MAC chaining value (for tests against published intermediate values).
    #[cfg(test)]
    pub(super) fn chaining_value(&self) -> [u8; BLOCK] {
        self.chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cla_rules() {
        assert_eq!(secure_cla(0x80).unwrap(), (0x84, 0x84));
        assert_eq!(secure_cla(0x00).unwrap(), (0x04, 0x04));
        assert_eq!(secure_cla(0x83).unwrap(), (0x84, 0x87));
        assert_eq!(secure_cla(0x90).unwrap(), (0x94, 0x94));
        assert_eq!(secure_cla(0xC5).unwrap(), (0x84, 0xE5));
        assert_eq!(secure_cla(0x41).unwrap(), (0x04, 0x61));
        for bad in [0x84, 0x88, 0xE0, 0xA0, 0xFF, 0x20] {
            assert!(secure_cla(bad).is_err(), "{bad:02X}");
        }
        assert_eq!(received_cla(0x87).unwrap(), (0x84, 0x83));
        assert_eq!(received_cla(0xE5).unwrap(), (0x84, 0xC5));
        assert_eq!(received_cla(0x04).unwrap(), (0x04, 0x00));
        assert!(received_cla(0xA4).is_err());
    }

    #[test]
    fn levels() {
        for l in SecurityLevel::ALL {
            assert_eq!(SecurityLevel::from_p1(l.p1()).unwrap(), l);
        }
        for bad in [0x02, 0x10, 0x31, 0x23, 0x21, 0x80] {
            assert!(SecurityLevel::from_p1(bad).is_err());
        }
        let all = SecurityLevel::C_DEC_R_ENC_C_MAC_R_MAC;
        assert!(all.supported_by(0x70) && !all.supported_by(0x30) && !all.supported_by(0x10));
        assert!(SecurityLevel::C_MAC_R_MAC.supported_by(0x20));
        assert_eq!(SecurityLevel::C_MAC.max_plain_len(Mode::S8, 255), 247);
        assert_eq!(SecurityLevel::C_DEC_C_MAC.max_plain_len(Mode::S8, 255), 239);
        assert_eq!(
            SecurityLevel::C_DEC_C_MAC.max_plain_len(Mode::S16, 255),
            223
        );
        assert_eq!(
            SecurityLevel::NO_SECURE_MESSAGING.max_plain_len(Mode::S16, 255),
            255
        );
    }

    #[test]
    fn i_param() {
        for ok in [0x00, 0x10, 0x20, 0x60, 0x70, 0x71, 0x61, 0x01] {
            check_i_param(ok).unwrap();
        }
        for bad in [0x40, 0x50, 0x02, 0x04, 0x08, 0x80, 0xF0] {
            assert!(check_i_param(bad).is_err(), "{bad:02X}");
        }
    }
}
