//! Biometric reference objects: enrolment and VERIFY with match-on-card.
//!
//! ISO/IEC 7816-11: a biometric information template (BIT, 7F60) and
//! reference data (5F2E) at enrolment, a biometric data template (7F2E)
//! with the probe at VERIFY (INS 21). The BIT's layout is the one of
//! ISO/IEC 7816-11 §6 / Annex C as profiled for match-on-card by ISO/IEC
//! 19794-2:2005 §8.3, NIST MINEX II and SP 800-73-4 (the BIT group template
//! 7F61): the biometric matching algorithm parameters (B1: 81 minimum and
//! maximum number of minutiae, 82 minutiae order, 83 feature handling) are
//! nested INSIDE the biometric header template (A1), not beside it.
//! GET DATA 7F61 returns the card's BIT group template, one BIT per
//! enrolled finger, so the host can read how to format a probe.
//!
//! Templates are ISO/IEC 19794-2 compact card format minutiae, 3 bytes
//! each; the comparison is [`cardsmith_biometric::match_score`]. Biometric
//! objects share the number space 1..=15 with PINs. The retry counter is
//! protected against tearing exactly like a PIN's. The comparison score
//! never leaves the card, except through GET DATA DF72 on a simulated card
//! whose `match_score_diagnostics` is on (test benches only).

use super::apdu::{sw, Command};
use super::card::{CmdResult, LeRule, Resp, SimCard};
use super::fs::{card_lc, BIO_OVERHEAD};
use super::objects::{minutiae_ok, BioObject, Comparison, BIO_TYPE_FINGERPRINT, MAX_MINUTIAE};
use super::pin_cmds::sw_tries;
use super::security::{pin_number, SecretHex};
use super::tlv::{parse_all, tlv};

/// Format owner in tag 87: ISO/IEC JTC 1/SC 37.
const FORMAT_OWNER_SC37: u16 = 0x0101;
const DEFAULT_TRY_LIMIT: u8 = 5;
/// GET DATA tag of the BIT group template (SP 800-73-4, MINEX II).
pub(super) const BIT_GROUP_TAG: u16 = 0x7F61;
/// GET DATA tag of the last comparison's score (diagnostics only).
pub(super) const SCORE_TAG: u16 = 0xDF72;

/// What a BIT says (ISO/IEC 7816-11 BIT with the match-on-card algorithm
/// parameters of ISO/IEC 19794-2:2005 §8.3 / MINEX II).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BitFields {
    bio_type: u8,
    subtype: u8,
    format_owner: u16,
    format_type: u16,
    min_minutiae: u8,
    max_minutiae: u8,
    minutiae_order: u8,
    feature_handling: Option<u8>,
}

/// A minutiae order byte of ISO/IEC 19794-2 §8.3: b2-b1 00 none / 01
/// ascending / 10 descending, b5-b3 000 none / 001 x-y / 010 y-x / 011
/// angle / 100 polar; the rest zero.
fn order_ok(order: u8) -> bool {
    let direction = order & 0x03;
    let method = (order >> 2) & 0x07;
    order & 0xE0 == 0 && direction != 3 && method <= 4 && (direction == 0) == (method == 0)
}

/// Parse the BIT's content (inside 7F60): exactly one biometric header
/// template A1, beside it at most one each of 80 (algorithm reference) and
/// 83 (reference data qualifier). In A1: 81 01 08 (type fingerprint,
/// required), 82 01 subtype (optional), 87 02 0101 (format owner, required),
/// 88 02 format type (required) and the biometric matching algorithm
/// parameters B1 (required on a match-on-card object): 81 02 minimum and
/// maximum number of minutiae (required; min <= max, max 1..=60), 82 01
/// minutiae order (required), 83 01 feature handling (optional). Anything
/// else, a repeated tag, or B1 beside A1 instead of inside it, is refused.
fn parse_bit(value: &[u8]) -> Result<BitFields, ()> {
    let items = parse_all(value)?;
    let mut a1 = None;
    let mut seen: Vec<u32> = Vec::new();
    for t in &items {
        if seen.contains(&t.tag) {
            return Err(());
        }
        seen.push(t.tag);
        match t.tag {
            0xA1 => a1 = Some(t),
            0x80 | 0x83 => {}
            _ => return Err(()),
        }
    }
    let a1 = a1.ok_or(())?;
    let (mut ty, mut sub, mut owner, mut format, mut b1) = (None, None, None, None, None);
    for t in parse_all(a1.value)? {
        match (t.tag, t.value) {
            (0x81, [b]) if ty.is_none() => ty = Some(*b),
            (0x82, [b]) if sub.is_none() => sub = Some(*b),
            (0x87, [a, b]) if owner.is_none() => owner = Some(u16::from_be_bytes([*a, *b])),
            (0x88, [a, b]) if format.is_none() => format = Some(u16::from_be_bytes([*a, *b])),
            (0xB1, v) if b1.is_none() => b1 = Some(v),
            _ => return Err(()),
        }
    }
    let (mut minmax, mut order, mut handling) = (None, None, None);
    for t in parse_all(b1.ok_or(())?)? {
        match (t.tag, t.value) {
            (0x81, [lo, hi]) if minmax.is_none() => minmax = Some((*lo, *hi)),
            (0x82, [o]) if order.is_none() => order = Some(*o),
            (0x83, [f]) if handling.is_none() => handling = Some(*f),
            _ => return Err(()),
        }
    }
    let (min_minutiae, max_minutiae) = minmax
        .filter(|(lo, hi)| lo <= hi && *hi >= 1 && usize::from(*hi) <= MAX_MINUTIAE)
        .ok_or(())?;
    Ok(BitFields {
        bio_type: ty.filter(|t| *t == BIO_TYPE_FINGERPRINT).ok_or(())?,
        subtype: sub.unwrap_or(0),
        format_owner: owner.filter(|o| *o == FORMAT_OWNER_SC37).ok_or(())?,
        format_type: format.ok_or(())?,
        min_minutiae,
        max_minutiae,
        minutiae_order: order.filter(|o| order_ok(*o)).ok_or(())?,
        feature_handling: handling,
    })
}

impl BioObject {
    /// The object's BIT as the card gives it in its BIT group template.
    fn bit(&self) -> Vec<u8> {
        let mut b1 = tlv(0x81, &[self.min_minutiae, self.max_minutiae]);
        b1.extend(tlv(0x82, &[self.minutiae_order]));
        if let Some(f) = self.feature_handling {
            b1.extend(tlv(0x83, &[f]));
        }
        let mut a1 = tlv(0x81, &[self.bio_type]);
        a1.extend(tlv(0x82, &[self.subtype]));
        a1.extend(tlv(0x87, &self.format_owner.to_be_bytes()));
        a1.extend(tlv(0x88, &self.format_type.to_be_bytes()));
        a1.extend(tlv(0xB1, &b1));
        let mut bit = tlv(0x83, &[0x80 | self.number]);
        bit.extend(tlv(0xA1, &a1));
        tlv(0x7F60, &bit)
    }
}

/// The probe minutiae from VERIFY data `7F2E L { 81 L <minutiae> }`.
fn parse_probe(data: &[u8]) -> Option<&[u8]> {
    let items = parse_all(data).ok()?;
    let [outer] = items.as_slice() else {
        return None;
    };
    if outer.tag != 0x7F2E {
        return None;
    }
    let inner = parse_all(outer.value).ok()?;
    let [probe] = inner.as_slice() else {
        return None;
    };
    (probe.tag == 0x81 && minutiae_ok(probe.value)).then_some(probe.value)
}

impl SimCard {
    /// Biometric enrolment `00 DA 02 <80|n> Lc 7F60 { A1 { … } } 5F2E
    /// <minutiae> [91 01 try limit]`. Only while BLANK (else 6985). P2 not
    /// 81..8F, or a number used by a PIN → 6A86; no data → 6700; malformed
    /// data → 6A80; no memory → 6A84. An existing biometric object with that
    /// number is replaced.
    pub(super) fn enrol_bio(&mut self, c: &Command) -> CmdResult {
        let number = match c.p2 {
            0x81..=0x8F => c.p2 & 0x0F,
            _ => return Err(sw::WRONG_P1P2),
        };
        if self.state.life_cycle != card_lc::BLANK {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        if self.state.pin(number).is_some() {
            return Err(sw::WRONG_P1P2);
        }
        if c.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let bad = sw::WRONG_DATA;
        let (mut header, mut template, mut limit) = (None, None, None);
        for t in parse_all(&c.data).map_err(|_| bad)? {
            match (t.tag, t.value) {
                (0x7F60, v) if header.is_none() => {
                    header = Some(parse_bit(v).map_err(|_| bad)?);
                }
                (0x5F2E, v) if template.is_none() => template = Some(v),
                (0x91, [b]) if limit.is_none() => limit = Some(*b),
                _ => return Err(bad),
            }
        }
        let bit = header.ok_or(bad)?;
        let template = template
            .filter(|t| minutiae_ok(t) && t.len() / 3 <= usize::from(bit.max_minutiae))
            .ok_or(bad)?;
        let try_limit = limit.unwrap_or(DEFAULT_TRY_LIMIT);
        if !(1..=15).contains(&try_limit) {
            return Err(bad);
        }
        let old = self
            .state
            .bio(number)
            .map_or(0, |b| BIO_OVERHEAD.saturating_add(b.template.len()));
        let need = BIO_OVERHEAD.saturating_add(template.len());
        if need > self.state.free_memory().saturating_add(old) {
            return Err(sw::NOT_ENOUGH_MEMORY);
        }
        let obj = BioObject {
            number,
            bio_type: bit.bio_type,
            subtype: bit.subtype,
            format_owner: bit.format_owner,
            format_type: bit.format_type,
            min_minutiae: bit.min_minutiae,
            max_minutiae: bit.max_minutiae,
            minutiae_order: bit.minutiae_order,
            feature_handling: bit.feature_handling,
            template: SecretHex::new(template.to_vec()),
            try_limit,
            tries_left: try_limit,
        };
        self.mutate(|s| {
            s.bios.retain(|b| b.number != number);
            s.bios.push(obj);
            s.bios.sort_by_key(|b| b.number);
        })?;
        self.set_bio_verified(number, false);
        Ok(Resp::ok())
    }

    fn set_bio_verified(&mut self, number: u8, on: bool) {
        let bit = 1u16 << (number & 0x0F);
        if on {
            self.vol.bio_verified |= bit;
        } else {
            self.vol.bio_verified &= !bit;
        }
    }

    fn set_bio_tries(&mut self, number: u8, left: u8) -> Result<(), u16> {
        self.mutate(|s| {
            if let Some(b) = s.bio_mut(number) {
                b.tries_left = left;
            }
        })
    }

    /// VERIFY with biometric data `00 21 00 <ref> Lc 7F2E { 81 <probe> }`:
    /// match → 9000 (verified for the session); no match → 63Cx; blocked →
    /// 6983; malformed → 6A80 without using a try. No data: status query
    /// (9000 verified / 63Cx / 6983 blocked). `00 21 FF <ref>`: clear the
    /// verification status. Unknown reference → 6A88; other P1 → 6A86.
    pub(super) fn cmd_verify_bio(&mut self, c: &Command) -> CmdResult {
        let number = pin_number(c.p2).ok_or(sw::REF_NOT_FOUND)?;
        let b = self.state.bio(number).ok_or(sw::REF_NOT_FOUND)?;
        let verified = self.vol.bio_verified & (1u16 << number) != 0;
        match c.p1 {
            0xFF => {
                if !c.data.is_empty() {
                    return Err(sw::WRONG_LENGTH);
                }
                self.set_bio_verified(number, false);
                return Ok(Resp::ok());
            }
            0x00 => {}
            _ => return Err(sw::WRONG_P1P2),
        }
        if c.data.is_empty() {
            return if verified {
                Ok(Resp::ok())
            } else if b.tries_left == 0 {
                Err(sw::AUTH_BLOCKED)
            } else {
                Ok(Resp::status(sw_tries(b.tries_left)))
            };
        }
        if b.tries_left == 0 {
            return Err(sw::AUTH_BLOCKED);
        }
        let probe = parse_probe(&c.data)
            .filter(|p| p.len() / 3 <= usize::from(b.max_minutiae))
            .ok_or(sw::WRONG_DATA)?;
        let limit = b.try_limit;
        let left = b.tries_left.saturating_sub(1);
        let before = b.tries_left;
        // Anti-tearing: the try is spent on the image before comparing.
        self.set_bio_tries(number, left)?;
        let score = self
            .state
            .bio(number)
            .and_then(|b| cardsmith_biometric::match_score(b.template.expose(), probe));
        self.vol.last_comparison = score.map(|s| Comparison {
            number,
            score: (s.value.clamp(0.0, 1.0) * 10_000.0).round() as u16,
            threshold: (cardsmith_biometric::THRESHOLD * 10_000.0).round() as u16,
            paired: u8::try_from(s.paired).unwrap_or(u8::MAX),
        });
        match score.map(|s| s.is_match()) {
            None => {
                self.set_bio_tries(number, before)?;
                Err(sw::WRONG_DATA)
            }
            Some(true) => {
                self.set_bio_tries(number, limit)?;
                self.set_bio_verified(number, true);
                Ok(Resp::ok())
            }
            Some(false) => {
                self.set_bio_verified(number, false);
                Ok(Resp::status(sw_tries(left)))
            }
        }
    }
}

impl SimCard {
    /// GET DATA 7F61: the BIT group template, `7F61 { 02 01 n, 7F60 … }`
    /// with one BIT per biometric object in number order (SP 800-73-4 /
    /// MINEX II). GET DATA DF72 (diagnostics on only): the last comparison
    /// of this session, `83 01 reference, 80 02 score, 81 02 threshold, 82
    /// 01 paired minutiae` (no outer wrapper: DF72 is a primitive tag, as
    /// DF71's answer), scores in units of 1/10000; none yet → 6A88. `None`
    /// for another tag.
    pub(super) fn bio_get_data(&self, tag: u16) -> Option<CmdResult> {
        match tag {
            BIT_GROUP_TAG => {
                let count = u8::try_from(self.state.bios.len()).unwrap_or(u8::MAX);
                let mut v = tlv(0x02, &[count]);
                for b in &self.state.bios {
                    v.extend(b.bit());
                }
                Some(Ok(Resp::data(
                    tlv(BIT_GROUP_TAG, &v),
                    sw::OK,
                    LeRule::Fixed,
                )))
            }
            SCORE_TAG if self.state.config.match_score_diagnostics => {
                let Some(c) = self.vol.last_comparison else {
                    return Some(Err(sw::REF_NOT_FOUND));
                };
                let mut v = tlv(0x83, &[0x80 | c.number]);
                v.extend(tlv(0x80, &c.score.to_be_bytes()));
                v.extend(tlv(0x81, &c.threshold.to_be_bytes()));
                v.extend(tlv(0x82, &[c.paired]));
                Some(Ok(Resp::data(v, sw::OK, LeRule::Fixed)))
            }
            _ => None,
        }
    }
}
