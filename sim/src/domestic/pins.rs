//! PINs of the domestic OS: VERIFY `00 20 00 ref` and CHANGE REFERENCE
//! DATA `00 24 00 ref` (old ‖ new). Values travel as 8-byte PIN blocks
//! (4 to 8 ASCII digits padded with FF; anything else → 6A80). The factory
//! values ([`super::FACTORY_PINS`]) verify like any other. A wrong value
//! costs a try (63Cx; 63C0 for the last one, then 6983); the counter is written
//! down before the comparison, so pulling the card cannot save a try.
//! `00 24 01 ref` (new reference data only) is biometric enrolment, see
//! `bio`.

use cardsmith_wire::crypto::ct_eq;
use zeroize::Zeroizing;

use super::super::apdu::{sw, Command};
use super::super::card::SimCard;
use super::super::security::pin_hash;
use super::exec::{ok, DomResult};
use super::{life_cycle, pin_block_ok, ref_bit, DomPin, BIO_REFS, PIN_BLOCK};

pub(super) fn sw_tries(left: u8) -> u16 {
    0x63C0 | u16::from(left & 0x0F)
}

impl SimCard {
    fn dom_pin(&self, reference: u8) -> Result<DomPin, u16> {
        self.dom()?
            .pins
            .iter()
            .find(|p| p.reference == reference)
            .cloned()
            .ok_or(sw::REF_NOT_FOUND)
    }

    fn dom_set_pin_tries(&mut self, reference: u8, left: u8) -> Result<(), u16> {
        self.dom_mutate(|d| {
            if let Some(p) = d.pins.iter_mut().find(|p| p.reference == reference) {
                p.tries_left = left;
            }
        })
    }

    /// Check `block` against PIN `reference`, counting a try.
    fn dom_check_pin(&mut self, reference: u8, block: &[u8]) -> Result<(), u16> {
        let pin = self.dom_pin(reference)?;
        if pin.tries_left == 0 {
            return Err(sw::AUTH_BLOCKED);
        }
        if !pin_block_ok(block) {
            return Err(sw::WRONG_DATA);
        }
        let left = pin.tries_left.saturating_sub(1);
        self.dom_set_pin_tries(reference, left)?;
        let presented = Zeroizing::new(pin_hash(&self.state.pin_salt, reference, block));
        if ct_eq(&presented, &pin.hash) {
            self.dom_set_pin_tries(reference, pin.try_limit)?;
            Ok(())
        } else {
            self.dvol.verified &= !ref_bit(reference);
            Err(sw_tries(left))
        }
    }

    /// VERIFY `00 20 00 ref [8-byte PIN block]`. Without data: 9000 if
    /// verified in this session, else 63Cx (6983 when blocked). P1 ≠ 00 →
    /// 6A86; unknown reference → 6A88; data not 8 bytes → 6700.
    pub(super) fn dom_verify(&mut self, c: &Command) -> DomResult {
        if c.p1 != 0x00 {
            return Err(sw::WRONG_P1P2);
        }
        if BIO_REFS.contains(&c.p2) {
            // Biometric references answer VERIFY 21, not 20.
            return Err(sw::INCOMPATIBLE_FILE);
        }
        let pin = self.dom_pin(c.p2)?;
        if c.data.is_empty() {
            if self.dvol.verified & ref_bit(c.p2) != 0 {
                return ok(Vec::new());
            }
            return Err(if pin.tries_left == 0 {
                sw::AUTH_BLOCKED
            } else {
                sw_tries(pin.tries_left)
            });
        }
        if c.data.len() != PIN_BLOCK {
            return Err(sw::WRONG_LENGTH);
        }
        self.dom_check_pin(c.p2, &c.data)?;
        self.dvol.verified |= ref_bit(c.p2);
        ok(Vec::new())
    }

    /// CHANGE REFERENCE DATA `00 24 00 ref old‖new` (16 bytes: two PIN
    /// blocks). The old value is checked as VERIFY does; the new one must be
    /// a well-formed PIN block (else 6A80, no try counted). Afterwards the
    /// PIN is verified in this session. `00 24 01 ref` → biometric
    /// enrolment. Not while TERMINATED (the card refuses everything then).
    pub(super) fn dom_change_reference_data(&mut self, c: &Command) -> DomResult {
        if c.p1 == 0x01 && BIO_REFS.contains(&c.p2) {
            return self.dom_enrol_bio(c);
        }
        if c.p1 != 0x00 {
            return Err(sw::WRONG_P1P2);
        }
        self.dom_pin(c.p2)?;
        if c.data.len() != 2 * PIN_BLOCK {
            return Err(sw::WRONG_LENGTH);
        }
        let (old, new) = c.data.split_at(PIN_BLOCK);
        if !pin_block_ok(new) {
            return Err(sw::WRONG_DATA);
        }
        if self.dom_life_cycle() == life_cycle::TERMINATED {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        self.dom_check_pin(c.p2, old)?;
        let hash = pin_hash(&self.state.pin_salt, c.p2, new);
        let reference = c.p2;
        self.dom_mutate(|d| {
            if let Some(p) = d.pins.iter_mut().find(|p| p.reference == reference) {
                p.hash = hash;
                p.factory = false;
                p.tries_left = p.try_limit;
            }
        })?;
        self.dvol.verified |= ref_bit(reference);
        ok(Vec::new())
    }
}
