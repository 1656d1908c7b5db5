//! Issuer (transport) key authentication and the card life cycle register.
//!
//! EXTERNAL AUTHENTICATE (ISO/IEC 7816-4:2013 §7.5.4) with the card's issuer
//! key: the host proves knowledge of the key by returning AES-CMAC
//! (NIST SP 800-38B) over the last GET CHALLENGE and the card serial. The
//! retry counter is persistent and protected against tearing like a PIN's.
//! GET DATA objects DF70 (life cycle register) and DF71 (status of the
//! PIN and biometric objects, no secrets).

use super::apdu::{sw, Command};
use super::card::{CmdResult, LeRule, Resp, SimCard};
use super::fs::ISSUER_TRY_LIMIT;
use super::pin_cmds::sw_tries;
use super::tlv::{push_tlv, tlv};

/// Key reference of the issuer key (P2 of EXTERNAL AUTHENTICATE, and the
/// key number in an SC byte with b6 set).
pub(super) const ISSUER_KEY_REF: u8 = 0x01;

/// Length of the cryptogram (one AES block).
const CRYPTOGRAM_LEN: usize = 16;

impl SimCard {
    /// EXTERNAL AUTHENTICATE `00 82 00 01 10 <cryptogram>`, cryptogram =
    /// AES-CMAC(issuer key, challenge || serial). The pending challenge
    /// (8 or 16 bytes from GET CHALLENGE) is consumed by every EXTERNAL
    /// AUTHENTICATE, whatever its outcome. P1 ≠ 00 → 6A86; P2 ≠ 01 or no
    /// issuer key → 6A88; counter at 0 → 6983; data not 16 bytes → 6700;
    /// no usable challenge → 6985; wrong cryptogram → 63Cx (x tries left
    /// of 10). Anti-tearing: decrement and write, compare, restore and
    /// write.
    pub(super) fn cmd_external_authenticate(&mut self, c: &Command) -> CmdResult {
        let challenge = self.vol.challenge.take();
        self.vol.issuer_authenticated = false;
        if c.p1 != 0x00 {
            return Err(sw::WRONG_P1P2);
        }
        if c.p2 != ISSUER_KEY_REF {
            return Err(sw::REF_NOT_FOUND);
        }
        let Some(key) = self.state.issuer_key.clone() else {
            return Err(sw::REF_NOT_FOUND);
        };
        if self.state.issuer_tries_left == 0 {
            return Err(sw::AUTH_BLOCKED);
        }
        if c.data.len() != CRYPTOGRAM_LEN {
            return Err(sw::WRONG_LENGTH);
        }
        let challenge = challenge
            .filter(|ch| ch.len() == 8 || ch.len() == 16)
            .ok_or(sw::CONDITIONS_NOT_SATISFIED)?;
        let mut msg = challenge;
        msg.extend_from_slice(&self.serial());
        let expected =
            cardsmith_wire::crypto::aes_cmac(key.expose(), &msg).ok_or(sw::NO_DIAGNOSIS)?;
        let left = self.state.issuer_tries_left.saturating_sub(1);
        self.mutate(|s| s.issuer_tries_left = left)?;
        if cardsmith_wire::crypto::ct_eq(&expected, &c.data) {
            self.mutate(|s| s.issuer_tries_left = ISSUER_TRY_LIMIT)?;
            self.vol.issuer_authenticated = true;
            Ok(Resp::ok())
        } else {
            Ok(Resp::status(sw_tries(left)))
        }
    }

    /// GET DATA DF70: the card life cycle register, `DF70 01 <value>`.
    pub(super) fn life_cycle_do(&self) -> Vec<u8> {
        tlv(0xDF70, &[self.state.life_cycle])
    }

    /// GET DATA DF71: for each PIN (number order) `A0 { 83 01 80|n, 91 01
    /// tries left, 92 01 try limit, 93 01 flags }` with flags b1 transport,
    /// b2 blocked, b3 PUK; then for each biometric object `A1 { 83 01 80|n,
    /// 91, 92, 93 (b2 blocked) }`. The concatenated templates are the whole
    /// response (no outer DF71 wrapper).
    pub(super) fn security_objects_do(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let entry = |out: &mut Vec<u8>, tag: u16, n: u8, left: u8, limit: u8, flags: u8| {
            let mut inner = Vec::with_capacity(12);
            push_tlv(&mut inner, 0x83, &[0x80 | n]);
            push_tlv(&mut inner, 0x91, &[left]);
            push_tlv(&mut inner, 0x92, &[limit]);
            push_tlv(&mut inner, 0x93, &[flags]);
            push_tlv(out, tag, &inner);
        };
        for p in &self.state.pins {
            let mut flags = 0u8;
            if p.transport {
                flags |= 0x01;
            }
            if p.tries_left == 0 {
                flags |= 0x02;
            }
            if self.state.is_puk(p.number) {
                flags |= 0x04;
            }
            entry(&mut out, 0xA0, p.number, p.tries_left, p.try_limit, flags);
        }
        for b in &self.state.bios {
            let flags = if b.tries_left == 0 { 0x02 } else { 0x00 };
            entry(&mut out, 0xA1, b.number, b.tries_left, b.try_limit, flags);
        }
        out
    }

    /// Response for GET DATA of the card-profile objects (DF70, DF71), or
    /// `None` for another tag.
    pub(super) fn perso_get_data(&self, tag: u16) -> Option<Resp> {
        match tag {
            0xDF70 => Some(Resp::data(self.life_cycle_do(), sw::OK, LeRule::Fixed)),
            0xDF71 => Some(Resp::data(
                self.security_objects_do(),
                sw::OK,
                LeRule::Fixed,
            )),
            _ => None,
        }
    }
}
