//! PIN commands: PIN object creation (PUT DATA 00 DA 01 <ref>), VERIFY,
//! CHANGE REFERENCE DATA, RESET RETRY COUNTER.
//!
//! ISO/IEC 7816-4:2013 §7.5.6–§7.5.10. Anti-tearing as on real cards: a PIN
//! check first decrements the retry counter and writes the image, only then
//! compares, and on success restores the counter and writes again. If a
//! write fails the command answers 6581 and the in-memory counter equals
//! the stored one.

use zeroize::Zeroizing;

use super::apdu::{sw, Command};
use super::card::{CmdResult, Resp, SimCard};
use super::fs::{card_lc, PIN_OVERHEAD};
use super::security::{pin_hash, pin_number, PinObject};
use super::tlv::parse_all;
use cardsmith_wire::crypto::ct_eq;

/// Outcome of presenting a PIN value.
enum Check {
    Correct,
    Wrong(u8),
}

pub(super) fn sw_tries(left: u8) -> u16 {
    0x63C0 | u16::from(left & 0x0F)
}

impl SimCard {
    fn pin_obj(&self, number: u8) -> Result<&PinObject, u16> {
        self.state.pin(number).ok_or(sw::REF_NOT_FOUND)
    }

    pub(super) fn is_verified(&self, number: u8) -> bool {
        self.vol.verified & (1u16 << (number & 0x0F)) != 0
    }

    pub(super) fn set_verified(&mut self, number: u8, on: bool) {
        let bit = 1u16 << (number & 0x0F);
        if on {
            self.vol.verified |= bit;
        } else {
            self.vol.verified &= !bit;
        }
    }

    /// Present `candidate` to PIN `number` (anti-tearing order, see module
    /// doc). Blocked → 6983.
    fn check_pin(&mut self, number: u8, candidate: &[u8]) -> Result<Check, u16> {
        let p = self.pin_obj(number)?;
        if p.tries_left == 0 {
            return Err(sw::AUTH_BLOCKED);
        }
        let left = p.tries_left.saturating_sub(1);
        let limit = p.try_limit;
        let expected = p.hash.clone();
        self.mutate(|s| {
            if let Some(p) = s.pin_mut(number) {
                p.tries_left = left;
            }
        })?;
        let presented = pin_hash(&self.state.pin_salt, number, candidate);
        if ct_eq(&presented, &expected) {
            self.mutate(|s| {
                if let Some(p) = s.pin_mut(number) {
                    p.tries_left = limit;
                }
            })?;
            Ok(Check::Correct)
        } else {
            self.set_verified(number, false);
            Ok(Check::Wrong(left))
        }
    }

    /// Store a new value for PIN `number` (counter back to its limit). A
    /// new value always leaves the transport state.
    fn store_pin(&mut self, number: u8, value: &[u8]) -> Result<(), u16> {
        let hash = pin_hash(&self.state.pin_salt, number, value);
        let len = u8::try_from(value.len()).map_err(|_| sw::WRONG_DATA)?;
        self.mutate(|s| {
            if let Some(p) = s.pin_mut(number) {
                p.hash = hash;
                p.length = len;
                p.tries_left = p.try_limit;
                p.transport = false;
            }
        })
    }

    fn new_value_ok(&self, number: u8, value: &[u8]) -> Result<(), u16> {
        let p = self.pin_obj(number)?;
        let len = value.len();
        if len < usize::from(p.min_length) || len > usize::from(p.max_length) {
            return Err(sw::WRONG_DATA);
        }
        Ok(())
    }

    /// PUT DATA `00 DA P1 P2`: P1 = 01 PIN creation, 02 biometric
    /// enrolment (see `bio`); other P1 → 6A86.
    pub(super) fn cmd_put_data(&mut self, c: &Command) -> CmdResult {
        match c.p1 {
            0x01 => self.create_pin(c),
            0x02 => self.enrol_bio(c),
            _ => Err(sw::WRONG_P1P2),
        }
    }

    /// PIN creation, PUT DATA style: `00 DA 01 <ref>`, ref 01..0F or 81..8F
    /// (same object), data = 80 PIN value (4–16 bytes), optional 81 try
    /// limit (1–15, default 3), 82 PUK number, 83 minimum and 84 maximum
    /// length (default 4 and 16), 85 01 01 transport state (85 01 00: not).
    /// Only while the card is BLANK (MF in LCS 01/03, else 6985). An
    /// existing PIN with that number is replaced; a number used by a
    /// biometric object → 6A86. Malformed data → 6A80; bad reference → 6A86.
    fn create_pin(&mut self, c: &Command) -> CmdResult {
        let number = pin_number(c.p2).ok_or(sw::WRONG_P1P2)?;
        if self.state.life_cycle != card_lc::BLANK {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        if self.state.bio(number).is_some() {
            return Err(sw::WRONG_P1P2);
        }
        if c.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let bad = sw::WRONG_DATA;
        let items = parse_all(&c.data).map_err(|_| bad)?;
        let mut value: Option<Zeroizing<Vec<u8>>> = None;
        let (mut limit, mut puk, mut min, mut max) = (3u8, None, 4u8, 16u8);
        let mut transport = false;
        let mut seen = 0u8;
        for t in items {
            let byte = match t.value {
                [b] => Some(*b),
                _ => None,
            };
            let (flag, ok) = match t.tag {
                0x80 => {
                    value = Some(Zeroizing::new(t.value.to_vec()));
                    (0x01, true)
                }
                0x81 => (0x02, byte.map(|b| limit = b).is_some()),
                0x82 => (0x04, byte.map(|b| puk = Some(b)).is_some()),
                0x83 => (0x08, byte.map(|b| min = b).is_some()),
                0x84 => (0x10, byte.map(|b| max = b).is_some()),
                0x85 => (
                    0x20,
                    match byte {
                        Some(0x00) => true,
                        Some(0x01) => {
                            transport = true;
                            true
                        }
                        _ => false,
                    },
                ),
                _ => (0, false),
            };
            if !ok || seen & flag != 0 {
                return Err(bad);
            }
            seen |= flag;
        }
        let value = value.ok_or(bad)?;
        let puk = match puk {
            None => None,
            Some(r) => Some(pin_number(r).filter(|n| *n != number).ok_or(bad)?),
        };
        let len = value.len();
        let valid = (1..=15).contains(&limit)
            && (1..=16).contains(&min)
            && (1..=16).contains(&max)
            && min <= max
            && (4..=16).contains(&len)
            && len >= usize::from(min)
            && len <= usize::from(max);
        if !valid {
            return Err(bad);
        }
        let exists = self.state.pin(number).is_some();
        if !exists && PIN_OVERHEAD > self.state.free_memory() {
            return Err(sw::NOT_ENOUGH_MEMORY);
        }
        let obj = PinObject {
            number,
            hash: pin_hash(&self.state.pin_salt, number, &value),
            length: len as u8,
            min_length: min,
            max_length: max,
            try_limit: limit,
            tries_left: limit,
            puk,
            transport,
        };
        self.mutate(|s| {
            s.pins.retain(|p| p.number != number);
            s.pins.push(obj);
            s.pins.sort_by_key(|p| p.number);
        })?;
        self.set_verified(number, false);
        Ok(Resp::ok())
    }

    /// VERIFY (7816-4 §7.5.6). P1=00: data = PIN → 9000 / 63Cx (x = tries
    /// left, 63C0 when it just reached 0) / 6983 blocked; empty data → 9000
    /// if verified, else 63Cx. A length outside [min, max] → 6700 without
    /// using a try (the bounds are public). P1=FF: reset the verification
    /// status (no data) → 9000. Unknown reference → 6A88.
    pub(super) fn cmd_verify(&mut self, c: &Command) -> CmdResult {
        let number = pin_number(c.p2).ok_or(sw::REF_NOT_FOUND)?;
        match c.p1 {
            0xFF => {
                self.pin_obj(number)?;
                if !c.data.is_empty() {
                    return Err(sw::WRONG_LENGTH);
                }
                self.set_verified(number, false);
                Ok(Resp::ok())
            }
            0x00 => {
                let p = self.pin_obj(number)?;
                if c.data.is_empty() {
                    if self.is_verified(number) {
                        return Ok(Resp::ok());
                    }
                    if p.tries_left == 0 {
                        return Err(sw::AUTH_BLOCKED);
                    }
                    return Ok(Resp::status(sw_tries(p.tries_left)));
                }
                if p.tries_left == 0 {
                    return Err(sw::AUTH_BLOCKED);
                }
                if p.transport {
                    return Err(sw::REF_DATA_NOT_USABLE);
                }
                let len = c.data.len();
                if len < usize::from(p.min_length) || len > usize::from(p.max_length) {
                    return Err(sw::WRONG_LENGTH);
                }
                match self.check_pin(number, &c.data)? {
                    Check::Correct => {
                        self.set_verified(number, true);
                        Ok(Resp::ok())
                    }
                    Check::Wrong(left) => Ok(Resp::status(sw_tries(left))),
                }
            }
            _ => Err(sw::WRONG_P1P2),
        }
    }

    /// CHANGE REFERENCE DATA (7816-4 §7.5.7). P1=00: data = old || new,
    /// split at the stored PIN length (data not longer than that → 6700);
    /// wrong old → 63Cx. P1=01: data = new only, allowed only if the PIN is
    /// verified in this session, or, for a PIN in transport state, if a
    /// biometric object is verified in this session (else 6982). New value
    /// outside [min, max] → 6A80. Success leaves the PIN verified and out
    /// of transport state.
    pub(super) fn cmd_change_reference_data(&mut self, c: &Command) -> CmdResult {
        let number = pin_number(c.p2).ok_or(sw::REF_NOT_FOUND)?;
        let p = self.pin_obj(number)?;
        if c.p1 > 0x01 {
            return Err(sw::WRONG_P1P2);
        }
        if p.tries_left == 0 {
            return Err(sw::AUTH_BLOCKED);
        }
        let new: Zeroizing<Vec<u8>> = if c.p1 == 0x00 {
            let (old, new) = c
                .data
                .split_at_checked(usize::from(p.length))
                .ok_or(sw::WRONG_LENGTH)?;
            if new.is_empty() {
                return Err(sw::WRONG_LENGTH);
            }
            self.new_value_ok(number, new)?;
            let old = Zeroizing::new(old.to_vec());
            let new = Zeroizing::new(new.to_vec());
            if let Check::Wrong(left) = self.check_pin(number, &old)? {
                return Ok(Resp::status(sw_tries(left)));
            }
            new
        } else {
            let by_bio = p.transport && self.vol.bio_verified != 0;
            if !self.is_verified(number) && !by_bio {
                return Err(sw::SECURITY_NOT_SATISFIED);
            }
            if c.data.is_empty() {
                return Err(sw::WRONG_LENGTH);
            }
            self.new_value_ok(number, &c.data)?;
            Zeroizing::new(c.data.to_vec())
        };
        self.store_pin(number, &new)?;
        self.set_verified(number, true);
        Ok(Resp::ok())
    }

    /// RESET RETRY COUNTER (7816-4 §7.5.10), P2 = PIN reference.
    /// P1=00: data = PUK || new PIN; 01: data = PUK (counter reset only);
    /// 02: data = new PIN, PUK already verified; 03: no data, PUK already
    /// verified. No PUK defined (or the PUK object is missing) → 6985; wrong
    /// PUK → 63Cx on the PUK's own counter; blocked PUK → 6983; PUK not
    /// verified for 02/03 → 6982; a PUK still in transport state → 6984.
    /// The PIN's verification status is cleared; a new PIN value (P1 00/02)
    /// leaves the transport state.
    pub(super) fn cmd_reset_retry_counter(&mut self, c: &Command) -> CmdResult {
        let number = pin_number(c.p2).ok_or(sw::REF_NOT_FOUND)?;
        if c.p1 > 0x03 {
            return Err(sw::WRONG_P1P2);
        }
        let p = self.pin_obj(number)?;
        let puk = p.puk.ok_or(sw::CONDITIONS_NOT_SATISFIED)?;
        let puk_obj = self.state.pin(puk).ok_or(sw::CONDITIONS_NOT_SATISFIED)?;
        if puk_obj.transport {
            return Err(sw::REF_DATA_NOT_USABLE);
        }
        let puk_len = usize::from(puk_obj.length);
        let puk_blocked = puk_obj.tries_left == 0;
        let new: Option<Zeroizing<Vec<u8>>> = match c.p1 {
            0x00 | 0x01 => {
                if puk_blocked {
                    return Err(sw::AUTH_BLOCKED);
                }
                let (given, new) = if c.p1 == 0x00 {
                    let (a, b) = c.data.split_at_checked(puk_len).ok_or(sw::WRONG_LENGTH)?;
                    if b.is_empty() {
                        return Err(sw::WRONG_LENGTH);
                    }
                    self.new_value_ok(number, b)?;
                    (a, Some(Zeroizing::new(b.to_vec())))
                } else {
                    if c.data.is_empty() {
                        return Err(sw::WRONG_LENGTH);
                    }
                    (c.data.as_slice(), None)
                };
                let given = Zeroizing::new(given.to_vec());
                if let Check::Wrong(left) = self.check_pin(puk, &given)? {
                    return Ok(Resp::status(sw_tries(left)));
                }
                new
            }
            _ => {
                if !self.is_verified(puk) {
                    return Err(sw::SECURITY_NOT_SATISFIED);
                }
                if c.p1 == 0x02 {
                    if c.data.is_empty() {
                        return Err(sw::WRONG_LENGTH);
                    }
                    self.new_value_ok(number, &c.data)?;
                    Some(Zeroizing::new(c.data.to_vec()))
                } else {
                    if !c.data.is_empty() {
                        return Err(sw::WRONG_LENGTH);
                    }
                    None
                }
            }
        };
        match new {
            Some(v) => self.store_pin(number, &v)?,
            None => self.mutate(|s| {
                if let Some(p) = s.pin_mut(number) {
                    p.tries_left = p.try_limit;
                }
            })?,
        }
        self.set_verified(number, false);
        Ok(Resp::ok())
    }
}
