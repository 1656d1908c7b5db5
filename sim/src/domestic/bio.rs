//! Match-on-card of the domestic OS. Its biometric references (finger 1
//! and 2: [`BIO_REFS`]) exist from the factory, with their biometric
//! information templates fixed: at most 40 minutiae, in x-y ascending
//! order. Enrolment is CHANGE REFERENCE DATA with new data only,
//! `00 24 01 ref 7F2E { [82 01 finger position] 81 minutiae }`; VERIFY is
//! `00 21 00 ref 7F2E { 81 minutiae }`. Minutiae are ISO/IEC 19794-2
//! compact card format (3 bytes: x, y, type and angle).
//!
//! Order: the card compares minutiae in the order its BIT announces —
//! ascending x, equal x by ascending y. It refuses (6A80), and does not
//! reorder, a reference or a probe out of that order or with more than 40
//! minutiae: reordering on the card would hide a host that ignores the BIT.
//! A refused probe costs no try.
//!
//! The BIT group (GET DATA `80 CA 7F 61`) is `7F61 { 02 01 n, 7F60 … }`,
//! each BIT `7F60 { 83 01 ref, A1 { 81 01 08, 82 01 position, 87 02 0101,
//! 88 02 0007 }, B1 { 81 01 max minutiae, 82 01 order } }`: the matching
//! algorithm parameters B1 sit beside the biometric header template A1
//! (ISO/IEC 7816-11 layout), not inside it as on the reference card, and
//! give only the maximum number of minutiae.

use zeroize::Zeroizing;

use super::super::apdu::{sw, Command};
use super::super::card::SimCard;
use super::super::security::SecretHex;
use super::super::tlv::{parse_all, tlv};
use super::exec::{ok, DomResult};
use super::pins::sw_tries;
use super::{
    life_cycle, ref_bit, DomBio, BIO_FORMAT_OWNER, BIO_FORMAT_TYPE, BIO_MAX_MINUTIAE,
    BIO_ORDER_XY_ASCENDING,
};

/// 1..=40 well-formed compact minutiae, ascending by x then y.
pub(super) fn minutiae_in_order(b: &[u8]) -> bool {
    if b.is_empty() || !b.len().is_multiple_of(3) || b.len() / 3 > BIO_MAX_MINUTIAE {
        return false;
    }
    if cardsmith_biometric::parse_compact(b).is_err() {
        return false;
    }
    let xy: Vec<(u8, u8)> = b
        .chunks_exact(3)
        .map(|m| {
            (
                m.first().copied().unwrap_or(0),
                m.get(1).copied().unwrap_or(0),
            )
        })
        .collect();
    xy.windows(2).all(|w| match w {
        [a, b] => a <= b,
        _ => true,
    })
}

/// `7F2E { [82 01 position] 81 minutiae }` → (position, minutiae).
fn parse_7f2e(data: &[u8], position_allowed: bool) -> Result<(Option<u8>, &[u8]), u16> {
    let items = parse_all(data).map_err(|()| sw::WRONG_DATA)?;
    let [outer] = items.as_slice() else {
        return Err(sw::WRONG_DATA);
    };
    if outer.tag != 0x7F2E {
        return Err(sw::WRONG_DATA);
    }
    let (mut position, mut minutiae) = (None, None);
    for t in parse_all(outer.value).map_err(|()| sw::WRONG_DATA)? {
        match (t.tag, t.value) {
            (0x82, [p]) if position_allowed && position.is_none() => position = Some(*p),
            (0x81, v) if minutiae.is_none() => minutiae = Some(v),
            _ => return Err(sw::WRONG_DATA),
        }
    }
    let m = minutiae.ok_or(sw::WRONG_DATA)?;
    if !minutiae_in_order(m) {
        return Err(sw::WRONG_DATA);
    }
    Ok((position, m))
}

impl DomBio {
    /// This reference's BIT (domestic layout).
    fn bit(&self) -> Vec<u8> {
        let mut a1 = tlv(0x81, &[0x08]);
        a1.extend(tlv(0x82, &[self.subtype]));
        a1.extend(tlv(0x87, &BIO_FORMAT_OWNER.to_be_bytes()));
        a1.extend(tlv(0x88, &BIO_FORMAT_TYPE.to_be_bytes()));
        let mut b1 = tlv(0x81, &[BIO_MAX_MINUTIAE as u8]);
        b1.extend(tlv(0x82, &[BIO_ORDER_XY_ASCENDING]));
        let mut bit = tlv(0x83, &[self.reference]);
        bit.extend(tlv(0xA1, &a1));
        bit.extend(tlv(0xB1, &b1));
        tlv(0x7F60, &bit)
    }
}

impl SimCard {
    fn dom_bio(&self, reference: u8) -> Result<DomBio, u16> {
        self.dom()?
            .bios
            .iter()
            .find(|b| b.reference == reference)
            .cloned()
            .ok_or(sw::REF_NOT_FOUND)
    }

    /// The BIT group template.
    pub(super) fn dom_bit_group(&self) -> DomResult {
        let d = self.dom()?;
        let mut v = tlv(0x02, &[d.bios.len() as u8]);
        for b in &d.bios {
            v.extend(b.bit());
        }
        ok(tlv(0x7F61, &v))
    }

    /// Enrolment `00 24 01 ref 7F2E { [82 01 position] 81 minutiae }`:
    /// from the issuer (6982) before SECURED (6985); replaces an earlier
    /// enrolment and restores the try counter. Malformed, more than 40
    /// minutiae, or out of order → 6A80.
    pub(super) fn dom_enrol_bio(&mut self, c: &Command) -> DomResult {
        self.dom_bio(c.p2)?;
        if c.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        if !self.dom_issuer() {
            return Err(sw::SECURITY_NOT_SATISFIED);
        }
        if self.dom_life_cycle() >= life_cycle::SECURED {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        let (position, minutiae) = parse_7f2e(&c.data, true)?;
        let template = SecretHex::new(minutiae.to_vec());
        let reference = c.p2;
        self.dom_mutate(|d| {
            if let Some(b) = d.bios.iter_mut().find(|b| b.reference == reference) {
                b.template = Some(template);
                b.subtype = position.unwrap_or(0);
                b.tries_left = b.try_limit;
            }
        })?;
        self.dvol.verified &= !ref_bit(reference);
        ok(Vec::new())
    }

    fn dom_set_bio_tries(&mut self, reference: u8, left: u8) -> Result<(), u16> {
        self.dom_mutate(|d| {
            if let Some(b) = d.bios.iter_mut().find(|b| b.reference == reference) {
                b.tries_left = left;
            }
        })
    }

    /// VERIFY `00 21 00 ref [7F2E { 81 probe }]`. Without data: 9000 if
    /// verified in this session, else 63Cx. Not enrolled → 6984; blocked
    /// → 6983; no match → 63Cx (63C0 for the last try) (a try spent, written before comparing).
    pub(super) fn dom_verify_bio(&mut self, c: &Command) -> DomResult {
        if c.p1 != 0x00 {
            return Err(sw::WRONG_P1P2);
        }
        let b = self.dom_bio(c.p2)?;
        if c.data.is_empty() {
            if self.dvol.verified & ref_bit(c.p2) != 0 {
                return ok(Vec::new());
            }
            return Err(if b.tries_left == 0 {
                sw::AUTH_BLOCKED
            } else {
                sw_tries(b.tries_left)
            });
        }
        let reference = b.template.as_ref().ok_or(sw::REF_DATA_NOT_USABLE)?;
        if b.tries_left == 0 {
            return Err(sw::AUTH_BLOCKED);
        }
        let (_, probe) = parse_7f2e(&c.data, false)?;
        let probe = Zeroizing::new(probe.to_vec());
        let left = b.tries_left.saturating_sub(1);
        self.dom_set_bio_tries(c.p2, left)?;
        let matched =
            cardsmith_biometric::compact_match(reference.expose(), &probe).ok_or(sw::WRONG_DATA)?;
        if matched {
            self.dom_set_bio_tries(c.p2, b.try_limit)?;
            self.dvol.verified |= ref_bit(c.p2);
            ok(Vec::new())
        } else {
            self.dvol.verified &= !ref_bit(c.p2);
            Err(sw_tries(left))
        }
    }
}
