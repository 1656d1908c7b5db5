//! GET CHALLENGE and GET DATA.
//!
//! GET CHALLENGE: ISO/IEC 7816-4:2013 §7.5.3. GET DATA: §7.4.2, with the
//! GlobalPlatform Card Specification CPLC data object (tag 9F7F), the only
//! data object this card exposes.

use super::apdu::{sw, Command};
use super::card::{CmdResult, LeRule, Resp, SimCard};
use super::tlv::tlv;

impl SimCard {
    /// GET CHALLENGE: P1-P2 00 00, no data, Le mandatory; answers Ne random
    /// bytes (1..=256, or up to 65536 extended) and remembers them as the
    /// last challenge.
    pub(super) fn cmd_get_challenge(&mut self, c: &Command) -> CmdResult {
        if c.p1p2() != 0 {
            return Err(sw::WRONG_P1P2);
        }
        if !c.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let le = c.le.ok_or(sw::WRONG_LENGTH)?;
        let bytes = self.random(le.ne).ok_or(sw::NO_DIAGNOSIS)?;
        self.vol.challenge = Some(bytes.clone());
        Ok(Resp::data(bytes, sw::OK, LeRule::Variable))
    }

    /// The CPLC data (GlobalPlatform Card Specification, "Card Production
    /// Life Cycle"): 42 bytes. IC serial number (4 bytes) = serial bytes
    /// 0–3; IC pre-personaliser equipment identifier (4 bytes) = serial bytes
    /// 4–7. Other fields are fixed placeholders.
    pub(super) fn cplc(&self) -> Vec<u8> {
        let s = self.serial();
        let mut v = Vec::with_capacity(42);
        v.extend_from_slice(&[0x00, 0x00]); // IC fabricator
        v.extend_from_slice(&[0x00, 0x00]); // IC type
        v.extend_from_slice(&[0x43, 0x53]); // OS identifier "CS"
        v.extend_from_slice(&[0x50, 0x01]); // OS release date (YDDD)
        v.extend_from_slice(&[0x00, 0x01]); // OS release level
        v.extend_from_slice(&[0x00, 0x00]); // IC fabrication date
        v.extend_from_slice(s.get(0..4).unwrap_or(&[0; 4])); // IC serial number
        v.extend_from_slice(&[0x00, 0x00]); // IC batch identifier
        v.extend_from_slice(&[0x00, 0x00]); // IC module fabricator
        v.extend_from_slice(&[0x00, 0x00]); // IC module packaging date
        v.extend_from_slice(&[0x00, 0x00]); // ICC manufacturer
        v.extend_from_slice(&[0x00, 0x00]); // IC embedding date
        v.extend_from_slice(&[0x00, 0x00]); // IC pre-personaliser
        v.extend_from_slice(&[0x00, 0x00]); // IC pre-perso equipment date
        v.extend_from_slice(s.get(4..8).unwrap_or(&[0; 4])); // IC pre-perso equipment id
        v.extend_from_slice(&[0x00, 0x00]); // IC personaliser
        v.extend_from_slice(&[0x00, 0x00]); // IC personalisation date
        v.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]); // IC perso equipment id
        v
    }

    /// GET DATA (CLA 00 or 80, INS CA): P1-P2 9F7F → CPLC; DF70 → card
    /// life cycle register; DF71 → PIN and biometric object status; 7F61 →
    /// BIT group template; DF72 → last comparison score (diagnostics only);
    /// any other data object → 6A88. A data field → 6700.
    pub(super) fn cmd_get_data(&mut self, c: &Command) -> CmdResult {
        if !c.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        match c.p1p2() {
            0x9F7F => Ok(Resp::data(tlv(0x9F7F, &self.cplc()), sw::OK, LeRule::Fixed)),
            tag => match self.bio_get_data(tag) {
                Some(r) => r,
                None => self.perso_get_data(tag).ok_or(sw::REF_NOT_FOUND),
            },
        }
    }
}
