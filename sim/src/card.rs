//! [`SimCard`]: the card object, its volatile state, and the APDU pipeline.
//!
//! Owns the path every command takes: parse (ISO/IEC 7816-4:2013 §5.1),
//! class checks (§5.4.1), command chaining (§5.1.1.1), dispatch to the
//! command modules, and response shaping: Le/Ne handling, 61xx + GET
//! RESPONSE (§5.3.4 / §7.6.1 of 7816-4, ISO/IEC 7816-3 §12.2 for T=0) and
//! 6Cxx. It also owns the commit helper that writes the image before a
//! response leaves the card, rolling the in-memory state back if that fails
//! (6581).

use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::apdu::{self, sw, Command, Le};
use super::fs::{card_lc, lcs, CardState, FileKind, FileRec, ISSUER_TRY_LIMIT, MF_FID, MF_ID};
use super::image::{self, ImageError, FORMAT, SALT_LEN, SERIAL_LEN, VERSION};
use super::security::{SecStatus, SecretHex};
use super::{atr, domestic, CardOs, SimConfig, SimProtocol};

/// Pending response data waiting for GET RESPONSE, with the status word to
/// send once all of it has been fetched.
pub(super) struct Pending {
    pub data: Vec<u8>,
    pub sw: u16,
}

/// An unfinished command chain.
pub(super) struct Chain {
    pub ins: u8,
    pub data: Zeroizing<Vec<u8>>,
}

/// State lost on power-off / reset.
pub(super) struct Volatile {
    pub cur_df: u32,
    pub cur_ef: Option<u32>,
    /// Bit n set: PIN number n verified in this session.
    pub verified: u16,
    pub pending: Option<Pending>,
    pub challenge: Option<Vec<u8>>,
    pub chain: Option<Chain>,
    /// Last DF found by SELECT by DF name (for "next occurrence").
    pub last_name_match: Option<u32>,
    /// Bit n set: biometric object number n verified in this session.
    pub bio_verified: u16,
    /// EXTERNAL AUTHENTICATE with the issuer key succeeded.
    pub issuer_authenticated: bool,
    /// Key reference set by MANAGE SECURITY ENVIRONMENT for PSO COMPUTE
    /// DIGITAL SIGNATURE (DST, CRT B6).
    pub dst_kid: Option<u8>,
    /// Key reference set by MANAGE SECURITY ENVIRONMENT for INTERNAL
    /// AUTHENTICATE (AT, CRT A4).
    pub at_kid: Option<u8>,
    /// The security domain was selected in this session.
    pub sd_selected: bool,
    /// The security domain's secure channel session (see `sd.rs`).
    pub sd: Option<cardsmith_scp03::CardSession>,
    /// Security level (SCP03 P1 bits) the command being processed arrived
    /// under; 0 for a plain command.
    pub sm_level: u8,
    /// STORE DATA blocks received so far.
    pub store: Option<cardsmith_scp03::commands::StoreDataAssembler>,
    /// The last biometric comparison of this session (for GET DATA DF72
    /// when the card's diagnostics are on).
    pub last_comparison: Option<super::objects::Comparison>,
}

impl Default for Volatile {
    fn default() -> Self {
        Volatile {
            cur_df: MF_ID,
            cur_ef: None,
            verified: 0,
            pending: None,
            challenge: None,
            chain: None,
            last_name_match: None,
            bio_verified: 0,
            issuer_authenticated: false,
            dst_kid: None,
            at_kid: None,
            sd_selected: false,
            sd: None,
            sm_level: 0,
            store: None,
            last_comparison: None,
        }
    }
}

/// How the response length may be negotiated (7816-4 §5.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LeRule {
    /// The response has one possible length (SELECT, GET DATA): an explicit
    /// Le that is too short is answered 6Cxx with the exact length.
    Fixed,
    /// The command already sized its response to Ne (READ BINARY, GET
    /// CHALLENGE); anything longer than Ne is chunked with 61xx.
    Variable,
}

/// The outcome of a command that did not fail.
pub(super) struct Resp {
    pub data: Vec<u8>,
    pub sw: u16,
    pub rule: LeRule,
}

impl Resp {
    pub fn status(sw: u16) -> Resp {
        Resp {
            data: Vec::new(),
            sw,
            rule: LeRule::Variable,
        }
    }
    pub fn ok() -> Resp {
        Resp::status(sw::OK)
    }
    pub fn data(data: Vec<u8>, sw: u16, rule: LeRule) -> Resp {
        Resp { data, sw, rule }
    }
}

pub(super) type CmdResult = Result<Resp, u16>;

/// A simulated ISO/IEC 7816-4 card. See the module documentation and
/// `docs/simulated-card.md`.
pub struct SimCard {
    pub(super) state: CardState,
    pub(super) vol: Volatile,
    /// Volatile state of the domestic OS (unused on a reference card).
    pub(super) dvol: domestic::DomVolatile,
    image: Option<PathBuf>,
    rng: SystemRandom,
    /// What the last command would have cost a real card (timing model).
    cost: std::time::Duration,
    /// Command APDUs processed since the card object was made.
    apdus: u64,
}

fn sw_bytes(sw: u16) -> Vec<u8> {
    sw.to_be_bytes().to_vec()
}

/// 61xx for `remaining` bytes (xx = 00 when 256 or more remain).
fn sw_61(remaining: usize) -> u16 {
    0x6100 | u16::from(u8::try_from(remaining).unwrap_or(0))
}

pub(super) fn known_ins(ins: u8) -> bool {
    matches!(
        ins,
        0x04 | 0x20
            | 0x21
            | 0x22
            | 0x24
            | 0x2A
            | 0x46
            | 0x82
            | 0x88
            | 0x2C
            | 0x44
            | 0x84
            | 0xA4
            | 0xB0
            | 0xB1
            | 0xC0
            | 0xCA
            | 0xD6
            | 0xD7
            | 0xDA
            | 0xE0
            | 0xE4
            | 0xE6
            | 0xE8
            | 0xFE
    )
}

impl SimCard {
    /// A fresh blank card, kept in memory only: an MF (3F00) in LCS 03
    /// (initialisation), no other file, no PIN; random serial and PIN salt.
    /// It has no issuer key: personalisation needs no authentication.
    /// With `config.os` = [`CardOs::Domestic`], the card as the domestic
    /// vendor's factory makes it instead: its file system, PINs, key slots
    /// and biometric references already there (see `domestic`).
    pub fn blank(config: SimConfig) -> SimCard {
        let rng = SystemRandom::new();
        let serial = random_or_fallback(&rng, SERIAL_LEN);
        let pin_salt = random_or_fallback(&rng, SALT_LEN);
        let mf = FileRec {
            id: MF_ID,
            parent: None,
            fid: MF_FID,
            lcs: lcs::INITIALISATION,
            security: None,
            kind: FileKind::Df { name: None },
        };
        let mut card = SimCard {
            state: CardState {
                format: FORMAT.to_string(),
                version: VERSION,
                config,
                serial,
                pin_salt,
                next_id: MF_ID + 1,
                files: vec![mf],
                pins: Vec::new(),
                life_cycle: card_lc::BLANK,
                issuer_key: None,
                issuer_tries_left: ISSUER_TRY_LIMIT,
                keys: Vec::new(),
                bios: Vec::new(),
                sd: None,
                domestic: None,
            },
            vol: Volatile::default(),
            dvol: domestic::DomVolatile::default(),
            image: None,
            rng,
            cost: std::time::Duration::ZERO,
            apdus: 0,
        };
        if card.state.config.os == CardOs::Domestic {
            domestic::factory(&mut card.state);
        }
        card
    }

    /// A fresh blank card (as [`SimCard::blank`]) with an issuer transport
    /// key: AES-128, -192 or -256, given as 16, 24 or 32 raw bytes (other
    /// lengths → `Err(BadIssuerKey)`). While the card is BLANK, everything
    /// but reading and authenticating needs EXTERNAL AUTHENTICATE with it.
    /// A domestic card has no issuer transport key (its issuer proves
    /// itself through the security domain): the key is checked, not kept.
    pub fn blank_with_issuer_key(config: SimConfig, key: &[u8]) -> Result<SimCard, BadIssuerKey> {
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(BadIssuerKey { len: key.len() });
        }
        let mut card = SimCard::blank(config);
        if card.state.config.os == CardOs::Reference {
            card.state.issuer_key = Some(SecretHex::new(key.to_vec()));
        }
        Ok(card)
    }

    /// Open the card image at `path`, or create a blank card there (with
    /// `config_if_new`) if the file does not exist. An existing image keeps
    /// its own configuration. Every later change to persistent state is
    /// written back before the response to the command leaves the card.
    pub fn open_image(path: &Path, config_if_new: SimConfig) -> Result<SimCard, ImageError> {
        SimCard::open_image_with(path, config_if_new, None)
    }

    /// As [`SimCard::open_image`]; a card created here (no image at `path`
    /// yet) gets `issuer_key_if_new` as its issuer transport key (16, 24 or
    /// 32 bytes, else `ImageError::Invalid`). An existing image keeps its
    /// own key (or lack of one).
    pub fn open_image_with(
        path: &Path,
        config_if_new: SimConfig,
        issuer_key_if_new: Option<&[u8]>,
    ) -> Result<SimCard, ImageError> {
        SimCard::open_image_provisioned(
            path,
            config_if_new,
            Provision {
                issuer_key: issuer_key_if_new,
                scp03: None,
            },
        )
    }

    /// A fresh blank card as a card vendor ships it: with the issuer
    /// transport key and, given SCP03 keys, an issuer security domain
    /// holding this card's keys (diversified from a master key with the
    /// card's KDD).
    pub fn blank_provisioned(config: SimConfig, p: Provision<'_>) -> Result<SimCard, String> {
        let mut card = match p.issuer_key {
            None => SimCard::blank(config),
            Some(k) => SimCard::blank_with_issuer_key(config, k).map_err(|e| e.to_string())?,
        };
        if let Some(keys) = p.scp03 {
            card.provision_security_domain(keys)
                .map_err(|e| e.to_string())?;
        }
        Ok(card)
    }

    /// As [`SimCard::open_image`]; a card created here (no image at `path`
    /// yet) is provisioned with `p` (see [`SimCard::blank_provisioned`]).
    /// An existing image keeps its own keys (or lack of them).
    pub fn open_image_provisioned(
        path: &Path,
        config_if_new: SimConfig,
        p: Provision<'_>,
    ) -> Result<SimCard, ImageError> {
        let exists = path.try_exists().map_err(|source| ImageError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if exists {
            let state = image::load(path)?;
            Ok(SimCard {
                state,
                vol: Volatile::default(),
                dvol: domestic::DomVolatile::default(),
                image: Some(path.to_path_buf()),
                rng: SystemRandom::new(),
                cost: std::time::Duration::ZERO,
                apdus: 0,
            })
        } else {
            let mut card = SimCard::blank_provisioned(config_if_new, p).map_err(|reason| {
                ImageError::Invalid {
                    path: path.to_path_buf(),
                    reason,
                }
            })?;
            image::save(path, &card.state)?;
            card.image = Some(path.to_path_buf());
            Ok(card)
        }
    }

    /// The card's configuration.
    pub fn config(&self) -> &SimConfig {
        &self.state.config
    }

    /// Answer-to-reset for the current configuration and life cycle.
    pub fn atr(&self) -> Vec<u8> {
        match self.state.config.os {
            CardOs::Reference => atr::build(&self.state.config, self.state.mf_lcs()),
            CardOs::Domestic => domestic::atr(self.dom_life_cycle()),
        }
    }

    /// Contacts activated: volatile state cleared.
    pub fn power_on(&mut self) {
        self.vol = Volatile::default();
        self.dvol = domestic::DomVolatile::default();
    }
    /// Contacts deactivated: volatile state cleared.
    pub fn power_off(&mut self) {
        self.vol = Volatile::default();
        self.dvol = domestic::DomVolatile::default();
    }
    /// Warm reset: volatile state cleared.
    pub fn reset(&mut self) {
        self.vol = Volatile::default();
        self.dvol = domestic::DomVolatile::default();
    }

    /// The card serial number (random at creation, persistent).
    pub fn serial(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        for (o, b) in out.iter_mut().zip(&self.state.serial) {
            *o = *b;
        }
        out
    }

    /// Process one command APDU; returns response data followed by SW1 SW2.
    /// Never panics, whatever the input. With a timing model, what the
    /// command would cost a real card is kept for [`SimCard::take_cost`].
    pub fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.apdus = self.apdus.saturating_add(1);
        let resp = match self.state.config.os {
            CardOs::Reference => self.execute(apdu),
            CardOs::Domestic => self.domestic_execute(apdu),
        };
        if let Some(t) = self.state.config.timing {
            let sw = match resp.as_slice() {
                [.., a, b] => u16::from_be_bytes([*a, *b]),
                _ => 0,
            };
            self.cost = self.cost.saturating_add(t.apdu_cost(apdu, resp.len(), sw));
        }
        resp
    }

    /// The time the commands since the last call would have taken a real
    /// card (zero without a timing model). The server of the card sleeps
    /// it before answering, outside any lock.
    pub fn take_cost(&mut self) -> std::time::Duration {
        std::mem::take(&mut self.cost)
    }

    /// Command APDUs this card object has processed (not kept in the image).
    pub fn apdus_processed(&self) -> u64 {
        self.apdus
    }

    /// Set or clear the card's timing model (kept in its image).
    pub fn set_timing(&mut self, t: Option<super::timing::Timing>) {
        self.state.config.timing = t;
    }

    fn execute(&mut self, apdu: &[u8]) -> Vec<u8> {
        if !lcs::terminated(self.state.mf_lcs()) {
            if let Some(out) = self.sd_route(apdu) {
                return out;
            }
        }
        let cmd = match apdu::parse(apdu, self.state.config.extended_length) {
            Ok(c) => c,
            Err(e) => {
                self.vol.pending = None;
                return sw_bytes(e);
            }
        };
        let class = match apdu::decode_class(cmd.cla) {
            Ok(c) => c,
            Err(e) => {
                self.vol.pending = None;
                return sw_bytes(e);
            }
        };
        // TERMINATE CARD USAGE (or a terminated MF): the card refuses all.
        if lcs::terminated(self.state.mf_lcs()) {
            return sw_bytes(sw::FUNC_NOT_SUPPORTED);
        }
        if cmd.ins != 0xC0 {
            self.vol.pending = None;
        }
        if !known_ins(cmd.ins) {
            return sw_bytes(sw::INS_NOT_SUPPORTED);
        }
        if class.proprietary && cmd.ins != 0xCA {
            return sw_bytes(sw::CLA_NOT_SUPPORTED);
        }
        let mut cmd = cmd;
        let max_chain = self
            .state
            .config
            .memory_bytes
            .max(65_535)
            .saturating_add(512);
        if class.chaining {
            if !self.state.config.command_chaining {
                self.vol.chain = None;
                return sw_bytes(sw::CHAINING_NOT_SUPPORTED);
            }
            match &mut self.vol.chain {
                Some(ch) if ch.ins != cmd.ins => {
                    self.vol.chain = None;
                    return sw_bytes(sw::LAST_COMMAND_EXPECTED);
                }
                Some(ch) => {
                    if ch.data.len().saturating_add(cmd.data.len()) > max_chain {
                        self.vol.chain = None;
                        return sw_bytes(sw::WRONG_LENGTH);
                    }
                    ch.data.extend_from_slice(&cmd.data);
                }
                None => {
                    self.vol.chain = Some(Chain {
                        ins: cmd.ins,
                        data: cmd.data.clone(),
                    });
                }
            }
            return sw_bytes(sw::OK);
        } else if let Some(mut ch) = self.vol.chain.take() {
            if ch.ins != cmd.ins {
                return sw_bytes(sw::LAST_COMMAND_EXPECTED);
            }
            if ch.data.len().saturating_add(cmd.data.len()) > max_chain {
                return sw_bytes(sw::WRONG_LENGTH);
            }
            ch.data.extend_from_slice(&cmd.data);
            cmd.data = ch.data;
        }
        if cmd.ins == 0xC0 {
            return self.get_response(&cmd);
        }
        match self.dispatch(&cmd) {
            Ok(resp) => self.shape(resp, cmd.le),
            Err(e) => sw_bytes(e),
        }
    }

    /// While a card is BLANK, only reading, authenticating and status
    /// queries are free. Everything else must come from the issuer: on a
    /// card with a security domain, through its secure channel at the
    /// personalization level; otherwise after EXTERNAL AUTHENTICATE with
    /// the issuer key (if the card has one).
    fn issuer_gate(&self, c: &Command) -> Result<(), u16> {
        if self.state.life_cycle != card_lc::BLANK {
            return Ok(());
        }
        let free = match c.ins {
            0xA4 | 0xB0 | 0xB1 | 0x84 | 0x82 | 0xCA => true,
            0x20 | 0x21 => c.p1 == 0x00 && c.data.is_empty(),
            _ => false,
        };
        if free {
            return Ok(());
        }
        if self.state.sd.is_some() {
            return self.sd_gate();
        }
        if self.state.issuer_key.is_some() && !self.vol.issuer_authenticated {
            return Err(sw::SECURITY_NOT_SATISFIED);
        }
        Ok(())
    }

    /// The security status access rules are checked against. A command
    /// that came through the security domain's channel at the
    /// personalization level comes from the issuer.
    pub(super) fn sec_status(&self) -> SecStatus {
        SecStatus {
            verified: self.vol.verified | self.vol.bio_verified,
            issuer: self.vol.issuer_authenticated || self.sd_issuer(),
        }
    }

    pub(super) fn dispatch(&mut self, c: &Command) -> CmdResult {
        self.issuer_gate(c)?;
        match c.ins {
            0xA4 => self.cmd_select(c),
            0xB0 => self.cmd_read_binary(c),
            0xB1 => self.cmd_read_binary_odd(c),
            0xD6 => self.cmd_update_binary(c),
            0xD7 => self.cmd_update_binary_odd(c),
            0xE0 => self.cmd_create_file(c),
            0xE4 => self.cmd_delete_file(c),
            0x44 => self.cmd_activate(c),
            0x04 => self.cmd_deactivate(c),
            0xE6 => self.cmd_terminate_df(c),
            0xE8 => self.cmd_terminate_ef(c),
            0xFE => self.cmd_terminate_card(c),
            0x84 => self.cmd_get_challenge(c),
            0xCA => self.cmd_get_data(c),
            0xDA => self.cmd_put_data(c),
            0x20 => self.cmd_verify(c),
            0x24 => self.cmd_change_reference_data(c),
            0x2C => self.cmd_reset_retry_counter(c),
            0x82 => self.cmd_external_authenticate(c),
            0x21 => self.cmd_verify_bio(c),
            0x46 => self.cmd_generate_key(c),
            0x22 => self.cmd_mse(c),
            0x2A => self.cmd_pso(c),
            0x88 => self.cmd_internal_authenticate(c),
            _ => Err(sw::INS_NOT_SUPPORTED),
        }
    }

    /// Park `data` for GET RESPONSE and answer 61xx.
    fn pend(&mut self, data: Vec<u8>, final_sw: u16) -> Vec<u8> {
        let n = data.len();
        self.vol.pending = Some(Pending { data, sw: final_sw });
        sw_bytes(sw_61(n))
    }

    /// Turn a command result into response bytes according to Le.
    pub(super) fn shape(&mut self, resp: Resp, le: Option<Le>) -> Vec<u8> {
        let Resp { mut data, sw, rule } = resp;
        if data.is_empty() {
            return sw_bytes(sw);
        }
        let cfg = &self.state.config;
        let force = cfg.force_get_response;
        let t0 = force || cfg.protocol == SimProtocol::T0;
        let Some(le) = le else {
            // No Le: no data, except that a T=0 card announces it with 61xx.
            return if t0 {
                self.pend(data, sw)
            } else {
                sw_bytes(sw)
            };
        };
        if force {
            return self.pend(data, sw);
        }
        let len = data.len();
        if rule == LeRule::Fixed && !le.wildcard && le.ne < len && len <= 256 {
            return sw_bytes(0x6C00 | (len & 0xFF) as u16);
        }
        if len > le.ne {
            let rest = data.split_off(le.ne);
            let rest_len = rest.len();
            self.vol.pending = Some(Pending { data: rest, sw });
            data.extend_from_slice(&sw_61(rest_len).to_be_bytes());
            return data;
        }
        data.extend_from_slice(&sw.to_be_bytes());
        data
    }

    /// GET RESPONSE (7816-4 §7.6.1): P1-P2 00 00, Le mandatory.
    fn get_response(&mut self, c: &Command) -> Vec<u8> {
        if c.p1p2() != 0 {
            return sw_bytes(sw::WRONG_P1P2);
        }
        if !c.data.is_empty() {
            return sw_bytes(sw::WRONG_LENGTH);
        }
        let Some(le) = c.le else {
            return sw_bytes(sw::WRONG_LENGTH);
        };
        let Some(p) = self.vol.pending.as_mut() else {
            return sw_bytes(sw::CONDITIONS_NOT_SATISFIED);
        };
        let avail = p.data.len();
        let chunk_max = avail.min(256);
        if !le.wildcard && le.ne < chunk_max {
            // Fixed-length response: tell the exact length.
            return sw_bytes(0x6C00 | (chunk_max & 0xFF) as u16);
        }
        let n = avail.min(le.ne);
        let rest = p.data.split_off(n);
        let mut out = std::mem::replace(&mut p.data, rest);
        if p.data.is_empty() {
            out.extend_from_slice(&p.sw.to_be_bytes());
            self.vol.pending = None;
        } else {
            out.extend_from_slice(&sw_61(p.data.len()).to_be_bytes());
        }
        out
    }

    /// Write the card's state as an image file at `path` (the card keeps
    /// its own image, if any).
    pub fn save_image_to(&self, path: &Path) -> Result<(), ImageError> {
        image::save(path, &self.state)
    }

    /// Write the image (if any). Failure → 6581.
    pub(super) fn persist(&mut self) -> Result<(), u16> {
        match &self.image {
            Some(p) => image::save(p, &self.state).map_err(|_| sw::MEMORY_FAILURE),
            None => Ok(()),
        }
    }

    /// Apply `f` to the persistent state and write the image; if the write
    /// fails, roll the state back and answer 6581.
    pub(super) fn mutate(&mut self, f: impl FnOnce(&mut CardState)) -> Result<(), u16> {
        let snapshot = self.image.is_some().then(|| self.state.clone());
        f(&mut self.state);
        if let Some(snap) = snapshot {
            if let Err(e) = self.persist() {
                self.state = snap;
                return Err(e);
            }
        }
        Ok(())
    }

    /// `n` random bytes from the system generator.
    pub(super) fn random(&self, n: usize) -> Option<Vec<u8>> {
        let mut v = vec![0u8; n];
        self.rng.fill(&mut v).ok()?;
        Some(v)
    }
}

/// The keys a blank card ships with.
#[derive(Clone, Copy, Default)]
pub struct Provision<'a> {
    /// The issuer transport key (16, 24 or 32 bytes).
    pub issuer_key: Option<&'a [u8]>,
    /// SCP03 keys for an issuer security domain: the card's own static
    /// keys, or a master key diversified with the card's KDD. Plain keys,
    /// never the host's key file.
    pub scp03: Option<&'a cardsmith_scp03::KeySource>,
}

/// An issuer key of a length AES does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("issuer key must be 16, 24 or 32 bytes (AES-128/192/256), got {len}")]
pub struct BadIssuerKey {
    pub len: usize,
}

/// Random bytes; should the OS generator fail, derive bytes from the clock
/// and process id instead of panicking (uniqueness is all that matters).
fn random_or_fallback(rng: &SystemRandom, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    if rng.fill(&mut v).is_ok() {
        return v;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut seed = nanos.to_be_bytes().to_vec();
    seed.extend_from_slice(&std::process::id().to_be_bytes());
    let d = ring::digest::digest(&ring::digest::SHA256, &seed);
    d.as_ref().iter().copied().cycle().take(n).collect()
}
