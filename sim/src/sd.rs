//! The card's issuer security domain: GlobalPlatform SCP03 (Card
//! Specification v2.3.1 Amendment D) protecting the personalization phase.
//!
//! The simulated card is a native file-system card, not a Java Card with
//! applets, so its security domain guards the whole card rather than one
//! applet:
//!
//! * `SELECT` by the security domain's AID selects it (FCI '6F', proprietary
//!   data 'A5' with the maximum command length) and ends any secure channel
//!   session. The session then survives `SELECT`s of files and DFs, which
//!   here are not applet selections; it ends with a reset, power-off, a new
//!   INITIALIZE UPDATE or a security error.
//! * While the card is BLANK, every command that is not free (reading,
//!   selecting, authenticating, status queries) must arrive through the
//!   session at the card's personalization level (by default C-MAC and
//!   C-DECRYPTION); otherwise '6982'. Such a command counts as coming from
//!   the issuer (the channel's mutual authentication proved it), so
//!   EXTERNAL AUTHENTICATE with the issuer key is not needed on top; it
//!   remains the issuer's proof outside the personalization phase.
//! * A security error (a tampered, replayed or reordered C-MAC; bad padding)
//!   aborts the session: every command then answers '6982' until the next
//!   INITIALIZE UPDATE.
//! * A failed EXTERNAL AUTHENTICATE (wrong host cryptogram) counts against
//!   [`AUTH_TRY_LIMIT`]; at zero the security domain is locked and
//!   INITIALIZE UPDATE answers '6983'. A success restores the count.
//! * PUT KEY (over the session, key data under the static Key-DEK) replaces
//!   the key set; the sequence counter restarts at zero.
//! * STORE DATA in DGI format (over the session): each DGI is written to the
//!   EF of the same number in the current DF, e.g. DGI '0101' → EF 0101. The
//!   EF must exist and be large enough; its own access rules apply.
//!
//! Challenges are pseudo-random ("i" = '70': S8, R-MAC and R-ENC supported):
//! the 3-byte sequence counter is kept in the image, written before the
//! INITIALIZE UPDATE response leaves the card.

use super::apdu::{self, sw};
use super::card::{known_ins, LeRule, Resp, SimCard};
use super::fs::card_lc;
use super::objects::SdState;
use super::security::SecretHex;
use cardsmith_scp03::commands::{self as gp, StoreDataAssembler};
use cardsmith_scp03::{
    CardSession, ChallengeSource, Incoming, KeySource, SecurityLevel, StaticKeys,
};

/// The GlobalPlatform default AID of the issuer security domain.
pub const DEFAULT_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];
/// EXTERNAL AUTHENTICATE failures before the security domain locks.
pub const AUTH_TRY_LIMIT: u8 = 10;
/// "i" parameter: S8, pseudo-random card challenge, R-MAC and R-ENC (S16
/// adds '01').
const I_PARAM: u8 = 0x70;

/// What the card's security domain looks like from outside (tests, `sim` status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdInfo {
    pub aid: Vec<u8>,
    pub kvn: u8,
    pub kcvs: [[u8; 3]; 3],
    pub sequence_counter: u32,
    pub auth_tries_left: u8,
    /// The open session's level (P1 bits), if a session is open.
    pub session_level: Option<u8>,
    pub session_aborted: bool,
}

/// Why a security domain could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("security domain: {0}")]
pub struct SdError(String);

impl SimCard {
    /// Key diversification data of this card: '0000' ‖ serial.
    pub fn kdd(&self) -> [u8; 10] {
        let mut k = [0u8; 10];
        k[2..].copy_from_slice(&self.serial());
        k
    }

    /// Give the card an issuer security domain with `keys`, answering
    /// SELECT by `aid`; personalization commands will need `perso_level`
    /// (C-MAC at least).
    pub fn install_security_domain(
        &mut self,
        aid: &[u8],
        keys: &StaticKeys,
        perso_level: SecurityLevel,
    ) -> Result<(), SdError> {
        self.install_security_domain_mode(aid, keys, perso_level, cardsmith_scp03::Mode::S8)
    }

    /// As [`SimCard::install_security_domain`], answering in S8 or S16 mode
    /// ("i" = '70' or '71').
    pub fn install_security_domain_mode(
        &mut self,
        aid: &[u8],
        keys: &StaticKeys,
        perso_level: SecurityLevel,
        mode: cardsmith_scp03::Mode,
    ) -> Result<(), SdError> {
        if !(5..=16).contains(&aid.len()) {
            return Err(SdError("the AID must have 5 to 16 bytes".into()));
        }
        if !perso_level.c_mac() {
            return Err(SdError(
                "personalization needs at least C-MAC (level 01)".into(),
            ));
        }
        let sd = SdState {
            aid: aid.to_vec(),
            kvn: keys.kvn(),
            enc: SecretHex::new(keys.enc().expose().to_vec()),
            mac: SecretHex::new(keys.mac().expose().to_vec()),
            dek: SecretHex::new(keys.dek().expose().to_vec()),
            kdd: self.kdd().to_vec(),
            i_param: match mode {
                cardsmith_scp03::Mode::S8 => I_PARAM,
                cardsmith_scp03::Mode::S16 => I_PARAM | cardsmith_scp03::channel::I_S16,
            },
            sequence_counter: 0,
            perso_level: perso_level.p1(),
            auth_tries_left: AUTH_TRY_LIMIT,
        };
        self.mutate(|s| s.sd = Some(sd))
            .map_err(|e| SdError(format!("the card image could not be written ({e:04X})")))?;
        self.vol.sd = None;
        Ok(())
    }

    /// Install the default security domain (GlobalPlatform ISD AID, or the
    /// domestic card's own ([`crate::domestic_state::SD_AID`]); C-MAC and
    /// C-DECRYPTION for personalization) with this card's keys from
    /// `keys` (diversified with the card's KDD when it is a master key).
    pub fn provision_security_domain(&mut self, keys: &KeySource) -> Result<(), SdError> {
        let k = keys
            .resolve(&self.kdd())
            .map_err(|e| SdError(e.to_string()))?;
        let level = SecurityLevel::from_p1(0x03).map_err(|e| SdError(e.to_string()))?;
        let aid: &[u8] = match self.state.config.os {
            crate::CardOs::Reference => &DEFAULT_AID,
            crate::CardOs::Domestic => &crate::domestic_state::SD_AID,
        };
        self.install_security_domain(aid, &k, level)
    }

    /// The security domain's public state, if the card has one.
    pub fn security_domain(&self) -> Option<SdInfo> {
        let sd = self.state.sd.as_ref()?;
        let keys = sd_keys(sd).ok()?;
        Some(SdInfo {
            aid: sd.aid.clone(),
            kvn: sd.kvn,
            kcvs: keys.kcvs(),
            sequence_counter: sd.sequence_counter,
            auth_tries_left: sd.auth_tries_left,
            session_level: self.vol.sd.as_ref().and_then(|s| s.level()).map(|l| l.p1()),
            session_aborted: self.vol.sd.as_ref().is_some_and(|s| s.is_aborted()),
        })
    }

    /// Whether a BLANK card with a security domain lets `c` through: only
    /// when it arrived through the session at the personalization level.
    pub(super) fn sd_gate(&self) -> Result<(), u16> {
        match &self.state.sd {
            Some(sd)
                if self.state.life_cycle == card_lc::BLANK
                    && self.vol.sm_level & sd.perso_level != sd.perso_level =>
            {
                Err(sw::SECURITY_NOT_SATISFIED)
            }
            _ => Ok(()),
        }
    }

    /// The command being processed came through the secure channel at the
    /// personalization level: it comes from the issuer.
    pub(super) fn sd_issuer(&self) -> bool {
        self.state
            .sd
            .as_ref()
            .is_some_and(|sd| self.vol.sm_level & sd.perso_level == sd.perso_level)
    }

    /// Route a command APDU through the security domain. `None`: not its
    /// business, the plain pipeline takes it.
    pub(super) fn sd_route(&mut self, raw: &[u8]) -> Option<Vec<u8>> {
        let sd = self.state.sd.as_ref()?;
        let (cla, ins) = (*raw.first()?, *raw.get(1)?);
        let plain_interindustry = cla & 0xFC == 0;
        if plain_interindustry && ins == 0xA4 && raw.get(2) == Some(&0x04) {
            let aid = sd.aid.clone();
            let c = apdu::parse(raw, self.state.config.extended_length).ok()?;
            if c.data.as_slice() != aid.as_slice() {
                return None;
            }
            self.vol.sd_selected = true;
            self.vol.sd = None;
            self.vol.store = None;
            let mut fci = vec![0x6F, (aid.len() + 7) as u8, 0x84, aid.len() as u8];
            fci.extend_from_slice(&aid);
            fci.extend_from_slice(&[0xA5, 0x03, 0x9F, 0x65, 0xFF]);
            return Some(self.shape(Resp::data(fci, sw::OK, LeRule::Fixed), c.le));
        }
        let gp_cla = matches!(cla, 0x80..=0x87);
        let sm = cla & 0x0C != 0 && cla & 0x40 == 0;
        let live = self
            .vol
            .sd
            .as_ref()
            .is_some_and(|s| s.level().is_some() || s.is_aborted());
        if ins == 0xC0 && !sm && !gp_cla {
            return None; // GET RESPONSE travels in clear
        }
        let sd_command = gp_cla && matches!(ins, 0x50 | 0x82 | 0xD8 | 0xE2);
        if !(live || sm || (sd_command && self.vol.sd_selected)) {
            if let Some(s) = self.vol.sd.as_mut() {
                // Anything between INITIALIZE UPDATE and EXTERNAL
                // AUTHENTICATE ends the pending initiation.
                let _ = s.unwrap_command(raw);
            }
            return None;
        }
        if !self.vol.sd_selected && !live {
            return Some(sw::SM_NOT_SUPPORTED.to_be_bytes().to_vec());
        }
        if ins == 0x50 && gp_cla && sd.auth_tries_left == 0 {
            return Some(sw::AUTH_BLOCKED.to_be_bytes().to_vec());
        }
        // A protected response always carries its R-MAC, even to a command
        // without Le: answer as if Le were '00'.
        let le = apdu::parse(raw, true)
            .ok()
            .and_then(|c| c.le)
            .or(Some(apdu::Le {
                ne: 256,
                wildcard: true,
            }));
        let mut session = match self.vol.sd.take() {
            Some(s) => s,
            None => match new_session(sd) {
                Some(s) => s,
                None => return Some(sw::MEMORY_FAILURE.to_be_bytes().to_vec()),
            },
        };
        let incoming = session.receive(raw);
        let out = match incoming {
            Incoming::Handled(r) => {
                if let Err(e) = self.after_handshake(ins, gp_cla, r.sw.to_u16(), &session) {
                    self.vol.sd = Some(session);
                    return Some(e.to_be_bytes().to_vec());
                }
                self.shape(Resp::data(r.data, r.sw.to_u16(), LeRule::Variable), le)
            }
            Incoming::Application(cmd) => {
                let level = session.level().map_or(0, |l| l.p1());
                let (data, status) = if cmd.cla & 0x80 != 0 && matches!(cmd.ins, 0xD8 | 0xE2) {
                    self.sd_command(&cmd, &mut session)
                } else {
                    match cmd.encode() {
                        Ok(b) => self.run_protected(&b, level),
                        Err(_) => (Vec::new(), sw::WRONG_LENGTH),
                    }
                };
                match session.wrap_response(&data, status) {
                    Ok(r) => self.shape(Resp::data(r.data, r.sw.to_u16(), LeRule::Variable), le),
                    Err(e) => e.status_word().to_be_bytes().to_vec(),
                }
            }
        };
        self.vol.sd = Some(session);
        Some(out)
    }

    /// Persist what INITIALIZE UPDATE and EXTERNAL AUTHENTICATE changed:
    /// the sequence counter, the failure count (both card OSes).
    pub(super) fn after_handshake(
        &mut self,
        ins: u8,
        gp_cla: bool,
        status: u16,
        session: &CardSession,
    ) -> Result<(), u16> {
        if !gp_cla {
            return Ok(());
        }
        match ins {
            0x50 if status == sw::OK => {
                let counter = session.sequence_counter().unwrap_or(0);
                self.mutate(|s| {
                    if let Some(sd) = s.sd.as_mut() {
                        sd.sequence_counter = counter;
                    }
                })
            }
            0x82 => {
                let ok = status == sw::OK;
                self.mutate(|s| {
                    if let Some(sd) = s.sd.as_mut() {
                        sd.auth_tries_left = if ok {
                            AUTH_TRY_LIMIT
                        } else {
                            sd.auth_tries_left.saturating_sub(1)
                        };
                    }
                })
            }
            _ => Ok(()),
        }
    }

    /// Run an unwrapped command through the card's own commands, with the
    /// session level it arrived under; the unshaped response.
    fn run_protected(&mut self, plain: &[u8], level: u8) -> (Vec<u8>, u16) {
        let cmd = match apdu::parse(plain, true) {
            Ok(c) => c,
            Err(e) => return (Vec::new(), e),
        };
        let class = match apdu::decode_class(cmd.cla) {
            Ok(c) => c,
            Err(e) => return (Vec::new(), e),
        };
        if class.chaining {
            return (Vec::new(), sw::CHAINING_NOT_SUPPORTED);
        }
        if cmd.ins == 0xC0 {
            return (Vec::new(), sw::CONDITIONS_NOT_SATISFIED);
        }
        if !known_ins(cmd.ins) {
            return (Vec::new(), sw::INS_NOT_SUPPORTED);
        }
        if class.proprietary && cmd.ins != 0xCA {
            return (Vec::new(), sw::CLA_NOT_SUPPORTED);
        }
        self.vol.pending = None;
        self.vol.sm_level = level;
        let r = self.dispatch(&cmd);
        self.vol.sm_level = 0;
        match r {
            Ok(resp) => (resp.data, resp.sw),
            Err(e) => (Vec::new(), e),
        }
    }

    /// PUT KEY and STORE DATA, which only the security domain answers.
    fn sd_command(
        &mut self,
        cmd: &cardsmith_wire::apdu::Command,
        session: &mut CardSession,
    ) -> (Vec<u8>, u16) {
        let Some(sd) = self.state.sd.clone() else {
            return (Vec::new(), sw::CONDITIONS_NOT_SATISFIED);
        };
        let level = session.level().map_or(0, |l| l.p1());
        if cmd.ins == 0xD8 {
            // Key data is under the static DEK; the command itself must be
            // at least MACed.
            if level & 0x01 == 0 {
                return (Vec::new(), sw::SECURITY_NOT_SATISFIED);
            }
            let dek = match cardsmith_scp03::AesKey::new(sd.dek.expose()) {
                Ok(k) => k,
                Err(_) => return (Vec::new(), sw::MEMORY_FAILURE),
            };
            let parsed = match gp::parse_put_key(cmd, &dek) {
                Ok(p) => p,
                Err(e) => return (Vec::new(), e.status_word()),
            };
            if parsed.old_kvn != 0 && parsed.old_kvn != sd.kvn {
                return (Vec::new(), sw::REF_NOT_FOUND);
            }
            let new = match parsed.to_static_keys() {
                Ok(k) => k,
                Err(e) => return (Vec::new(), e.status_word()),
            };
            let stored = self.mutate(|s| {
                if let Some(sd) = s.sd.as_mut() {
                    sd.kvn = new.kvn();
                    sd.enc = SecretHex::new(new.enc().expose().to_vec());
                    sd.mac = SecretHex::new(new.mac().expose().to_vec());
                    sd.dek = SecretHex::new(new.dek().expose().to_vec());
                    sd.sequence_counter = 0;
                }
            });
            if let Err(e) = stored {
                return (Vec::new(), e);
            }
            session.replace_keys(new);
            return (parsed.response_data(), sw::OK);
        }
        // STORE DATA: a personalization command.
        if self.state.life_cycle != card_lc::BLANK {
            return (Vec::new(), sw::CONDITIONS_NOT_SATISFIED);
        }
        if level & sd.perso_level != sd.perso_level {
            return (Vec::new(), sw::SECURITY_NOT_SATISFIED);
        }
        let assembler = self.vol.store.get_or_insert_with(StoreDataAssembler::new);
        let dgis = match assembler.push(cmd) {
            Ok(None) => return (Vec::new(), sw::OK),
            Ok(Some(d)) => d,
            Err(e) => {
                self.vol.store = None;
                return (Vec::new(), e.status_word());
            }
        };
        self.vol.store = None;
        self.vol.sm_level = level;
        let r = self.store_dgis(&dgis);
        self.vol.sm_level = 0;
        match r {
            Ok(()) => (Vec::new(), sw::OK),
            Err(e) => (Vec::new(), e),
        }
    }

    /// Write each DGI to the EF of the same number in the current DF.
    fn store_dgis(&mut self, dgis: &[gp::Dgi]) -> Result<(), u16> {
        for (dgi, value) in dgis {
            let df = self.vol.cur_df;
            let id = self
                .state
                .child_by_fid(df, *dgi)
                .filter(|f| !f.is_df())
                .map(|f| f.id)
                .ok_or(sw::REF_NOT_FOUND)?;
            self.write_ef(id, 0, value)?;
        }
        Ok(())
    }
}

fn sd_keys(sd: &SdState) -> Result<StaticKeys, cardsmith_scp03::Error> {
    StaticKeys::new(sd.kvn, sd.enc.expose(), sd.mac.expose(), sd.dek.expose())
}

fn new_session(sd: &SdState) -> Option<CardSession> {
    let mut kdd = [0u8; 10];
    if sd.kdd.len() != 10 {
        return None;
    }
    kdd.copy_from_slice(&sd.kdd);
    CardSession::new(
        sd_keys(sd).ok()?,
        kdd,
        sd.i_param,
        ChallengeSource::PseudoRandom {
            sequence_counter: sd.sequence_counter,
            aid: sd.aid.clone(),
        },
    )
    .ok()
}
