//! The domestic card's GlobalPlatform side: its issuer security domain
//! (SCP03 through the wire crate's card session, with its own AID and
//! keys), SET STATUS for the card life cycle, and GET DATA.
//!
//! - `00 A4 04 00 <SD AID>` selects the security domain (FCI `6F { 84 AID,
//!   A5 { 9F 65 01 F0 } }`: at most 240 bytes of command data) and ends any
//!   session. INITIALIZE UPDATE (`80 50`) needs it selected (else 6985);
//!   EXTERNAL AUTHENTICATE (`84 82`) opens the session. Commands with
//!   secure messaging (CLA 04 / 84) are unwrapped and run as the domestic
//!   OS's own commands, then their answers wrapped; one that arrives at the
//!   personalization level (C-MAC + C-DECRYPTION) comes from the issuer.
//!   Plain commands pass in clear beside a session and do not count as the
//!   issuer's. With C-DECRYPTION a short APDU carries at most 239 bytes of
//!   plain data, so UPDATE BINARY blocks in the channel are 239 bytes at
//!   most. GET RESPONSE travels in clear.
//! - A card made without a security domain (`Provision` without SCP03
//!   keys) takes the issuer's commands in clear until it is SECURED.
//! - SET STATUS `80 F0 80 state` (no data): OP_READY 01 → INITIALIZED 07
//!   → SECURED 0F, TERMINATED FF from any state; only from the issuer
//!   (6982). Another step → 6985; an unknown state → 6A80; P1 ≠ 80 → 6A86.
//! - GET DATA `80 CA`: 9F7F CPLC (serial in the IC serial number and the
//!   pre-personalization equipment identifier), 9F70 the card life cycle,
//!   7F61 the biometric information templates; anything else → 6A88.

use cardsmith_scp03::{CardSession, ChallengeSource, Incoming, StaticKeys};

use super::super::apdu::{self, sw, Command};
use super::super::card::SimCard;
use super::super::objects::SdState;
use super::super::tlv::tlv;
use super::exec::{ok, DomResult};
use super::life_cycle;

fn sw_bytes(sw: u16) -> Vec<u8> {
    sw.to_be_bytes().to_vec()
}

impl SimCard {
    /// Route a command through the security domain; `None`: the plain
    /// pipeline takes it.
    pub(super) fn dom_sd_route(&mut self, raw: &[u8]) -> Option<Vec<u8>> {
        let sd = self.state.sd.clone()?;
        let (cla, ins) = (*raw.first()?, *raw.get(1)?);
        if cla == 0x00 && ins == 0xA4 && raw.get(2) == Some(&0x04) {
            let c = apdu::parse(raw, false).ok()?;
            if c.data.as_slice() != sd.aid.as_slice() {
                return None;
            }
            self.dvol.pending = None;
            self.dvol.sd_selected = true;
            self.dvol.sd = None;
            let mut fci = tlv(0x84, &sd.aid);
            fci.extend(tlv(0xA5, &tlv(0x9F65, &[0xF0])));
            return Some(self.dom_shape(tlv(0x6F, &fci), sw::OK));
        }
        let sm = cla & 0x40 == 0 && cla & 0x0C != 0;
        let init_update = cla == 0x80 && ins == 0x50;
        if !(sm || init_update) {
            return None;
        }
        self.dvol.pending = None;
        if let Err(e) = apdu::parse(raw, false) {
            return Some(sw_bytes(e));
        }
        if init_update && !self.dvol.sd_selected {
            return Some(sw_bytes(sw::CONDITIONS_NOT_SATISFIED));
        }
        if init_update && sd.auth_tries_left == 0 {
            return Some(sw_bytes(sw::AUTH_BLOCKED));
        }
        if !init_update && self.dvol.sd.is_none() {
            return Some(sw_bytes(sw::SM_NOT_SUPPORTED));
        }
        let mut session = match self.dvol.sd.take() {
            Some(s) => s,
            None => match new_session(&sd) {
                Some(s) => s,
                None => return Some(sw_bytes(sw::MEMORY_FAILURE)),
            },
        };
        let out = match session.receive(raw) {
            Incoming::Handled(r) => {
                let status = r.sw.to_u16();
                match self.after_handshake(ins, true, status, &session) {
                    Ok(()) => self.dom_shape(r.data, status),
                    Err(e) => sw_bytes(e),
                }
            }
            Incoming::Application(cmd) => {
                let level = session.level().map_or(0, |l| l.p1());
                let (data, status) = self.dom_run_protected(&cmd, level);
                match session.wrap_response(&data, status) {
                    Ok(r) => self.dom_shape(r.data, r.sw.to_u16()),
                    Err(e) => sw_bytes(e.status_word()),
                }
            }
        };
        self.dvol.sd = Some(session);
        Some(out)
    }

    /// Run an unwrapped command with the level it arrived under.
    fn dom_run_protected(
        &mut self,
        cmd: &cardsmith_wire::apdu::Command,
        level: u8,
    ) -> (Vec<u8>, u16) {
        let plain = match cmd.encode() {
            Ok(b) => b,
            Err(_) => return (Vec::new(), sw::WRONG_LENGTH),
        };
        let c = match apdu::parse(&plain, false) {
            Ok(c) => c,
            Err(e) => return (Vec::new(), e),
        };
        if !matches!(c.cla, 0x00 | 0x80) {
            return (Vec::new(), sw::CLA_NOT_SUPPORTED);
        }
        if c.ins == 0xC0 {
            return (Vec::new(), sw::CONDITIONS_NOT_SATISFIED);
        }
        self.dvol.sm_level = level;
        let r = self.dom_dispatch(&c);
        self.dvol.sm_level = 0;
        r.unwrap_or_else(|e| (Vec::new(), e))
    }

    /// SET STATUS `80 F0 80 state`.
    pub(super) fn dom_set_status(&mut self, c: &Command) -> DomResult {
        if c.p1 != 0x80 {
            return Err(sw::WRONG_P1P2);
        }
        if !c.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        if !life_cycle::valid(c.p2) {
            return Err(sw::WRONG_DATA);
        }
        if !self.dom_issuer() {
            return Err(sw::SECURITY_NOT_SATISFIED);
        }
        let next = match self.dom_life_cycle() {
            life_cycle::OP_READY => life_cycle::INITIALIZED,
            life_cycle::INITIALIZED => life_cycle::SECURED,
            _ => life_cycle::TERMINATED,
        };
        if c.p2 != next && c.p2 != life_cycle::TERMINATED {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        let state = c.p2;
        self.dom_mutate(|d| d.life_cycle = state)?;
        ok(Vec::new())
    }

    /// GET DATA `80 CA P1 P2`.
    pub(super) fn dom_get_data(&mut self, c: &Command) -> DomResult {
        if !c.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        match c.p1p2() {
            0x9F7F => ok(tlv(0x9F7F, &self.dom_cplc())),
            0x9F70 => ok(tlv(0x9F70, &[self.dom_life_cycle()])),
            0x7F61 => self.dom_bit_group(),
            _ => Err(sw::REF_NOT_FOUND),
        }
    }

    /// CPLC (42 bytes): the serial's first half as the IC serial number,
    /// its second half as the IC pre-personalization equipment identifier;
    /// OS identifier "DM", the rest fixed.
    fn dom_cplc(&self) -> Vec<u8> {
        let s = self.serial();
        let mut v = Vec::with_capacity(42);
        v.extend_from_slice(&[0x47, 0x90, 0xD3, 0x64]); // IC fabricator, IC type
        v.extend_from_slice(b"DM"); // OS identifier
        v.extend_from_slice(&[0x60, 0x01, 0x02, 0x00]); // OS release date, level
        v.extend_from_slice(&[0x00, 0x00]); // IC fabrication date
        v.extend_from_slice(s.get(0..4).unwrap_or(&[0; 4])); // IC serial number
        v.extend_from_slice(&[0u8; 14]); // batch … pre-perso equipment date
        v.extend_from_slice(s.get(4..8).unwrap_or(&[0; 4])); // pre-perso equipment id
        v.extend_from_slice(&[0u8; 8]); // personaliser, date, equipment
        v
    }
}

fn sd_keys(sd: &SdState) -> Option<StaticKeys> {
    StaticKeys::new(sd.kvn, sd.enc.expose(), sd.mac.expose(), sd.dek.expose()).ok()
}

fn new_session(sd: &SdState) -> Option<CardSession> {
    let kdd: [u8; 10] = sd.kdd.as_slice().try_into().ok()?;
    CardSession::new(
        sd_keys(sd)?,
        kdd,
        sd.i_param,
        ChallengeSource::PseudoRandom {
            sequence_counter: sd.sequence_counter,
            aid: sd.aid.clone(),
        },
    )
    .ok()
}
