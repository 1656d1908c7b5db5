//! Biometric reference objects: enrolment and VERIFY with match-on-card.
//!
//! ISO/IEC 7816-11:2017 style: a biometric information template (7F60 with
//! the biometric header template A1) and reference data (5F2E) at
//! enrolment, a biometric data template (7F2E) with the probe at VERIFY
//! (INS 21). Templates are ISO/IEC 19794-2 compact card format minutiae, 3
//! bytes each; the comparison is [`crate::biometric::compact_match`].
//! Biometric objects share the number space 1..=15 with PINs. The retry
//! counter is protected against tearing exactly like a PIN's.

use serde::{Deserialize, Serialize};

use super::apdu::{sw, Command};
use super::card::{CmdResult, Resp, SimCard};
use super::fs::{card_lc, BIO_OVERHEAD};
use super::pin_cmds::sw_tries;
use super::security::{pin_number, SecretHex};
use super::tlv::parse_all;

/// Biometric type "fingerprint" (ISO/IEC 7816-11, tag 81 in A1).
pub(super) const BIO_TYPE_FINGERPRINT: u8 = 0x08;
/// Format owner in tag 87: ISO/IEC JTC 1/SC 37.
const FORMAT_OWNER_SC37: u16 = 0x0101;
/// Largest number of minutiae in a template.
pub(super) const MAX_MINUTIAE: usize = 60;
const DEFAULT_TRY_LIMIT: u8 = 5;

/// A persistent biometric reference object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BioObject {
    /// Object number 1..=15 (shared with PINs).
    pub number: u8,
    /// Biometric type (81), always fingerprint (08).
    pub bio_type: u8,
    /// Biometric subtype (82), e.g. which finger.
    pub subtype: u8,
    /// Format owner (87) and format type (88).
    pub format_owner: u16,
    pub format_type: u16,
    /// Reference minutiae, 3 bytes each.
    pub template: SecretHex,
    pub try_limit: u8,
    pub tries_left: u8,
}

/// A well-formed minutiae set: 1..=60 minutiae of 3 bytes.
pub(super) fn minutiae_ok(b: &[u8]) -> bool {
    !b.is_empty() && b.len().is_multiple_of(3) && b.len() / 3 <= MAX_MINUTIAE
}

/// Parse the BIT inside 7F60: exactly one A1 header template with 81 01 08
/// (required), 82 01 subtype (optional), 87 02 0101 (required), 88 02
/// format (required); beside it, at most one each of 80 (version), 83
/// (reference qualifier) and B1 (algorithm parameters), which are kept in
/// the BIT but not interpreted.
fn parse_header(value: &[u8]) -> Result<(u8, u8, u16, u16), ()> {
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
            0x80 | 0x83 | 0xB1 => {}
            _ => return Err(()),
        }
    }
    let a1 = a1.ok_or(())?;
    let (mut ty, mut sub, mut owner, mut format) = (None, None, None, None);
    for t in parse_all(a1.value)? {
        match (t.tag, t.value) {
            (0x81, [b]) if ty.is_none() => ty = Some(*b),
            (0x82, [b]) if sub.is_none() => sub = Some(*b),
            (0x87, [a, b]) if owner.is_none() => owner = Some(u16::from_be_bytes([*a, *b])),
            (0x88, [a, b]) if format.is_none() => format = Some(u16::from_be_bytes([*a, *b])),
            _ => return Err(()),
        }
    }
    let ty = ty.filter(|t| *t == BIO_TYPE_FINGERPRINT).ok_or(())?;
    let owner = owner.filter(|o| *o == FORMAT_OWNER_SC37).ok_or(())?;
    Ok((ty, sub.unwrap_or(0), owner, format.ok_or(())?))
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
                    header = Some(parse_header(v).map_err(|_| bad)?);
                }
                (0x5F2E, v) if template.is_none() => template = Some(v),
                (0x91, [b]) if limit.is_none() => limit = Some(*b),
                _ => return Err(bad),
            }
        }
        let (bio_type, subtype, format_owner, format_type) = header.ok_or(bad)?;
        let template = template.filter(|t| minutiae_ok(t)).ok_or(bad)?;
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
            bio_type,
            subtype,
            format_owner,
            format_type,
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
        let probe = parse_probe(&c.data).ok_or(sw::WRONG_DATA)?;
        let limit = b.try_limit;
        let left = b.tries_left.saturating_sub(1);
        let before = b.tries_left;
        // Anti-tearing: the try is spent on the image before comparing.
        self.set_bio_tries(number, left)?;
        let outcome = self
            .state
            .bio(number)
            .and_then(|b| crate::biometric::compact_match(b.template.expose(), probe));
        match outcome {
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
