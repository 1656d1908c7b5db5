//! Proprietary key generation and signing of the domestic OS.
//!
//! - `80 46 00 ref` (no data, Le 00): generate an ECDSA P-256 key pair in
//!   the factory-made slot `ref`, answering the bare uncompressed point
//!   04 ‖ X ‖ Y (65 bytes). Only from the issuer (6982) and before the card
//!   is SECURED (6985). `80 46 01 ref` reads the public point back (6A88
//!   while the slot is empty).
//! - `80 2A 00 ref` with a 32-byte SHA-256 digest: the signature as DER
//!   `SEQUENCE { INTEGER r, INTEGER s }` (RFC 6979 nonces). The slot's PIN
//!   must be verified (6982); the signature key's verification is consumed
//!   by each signature.

use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use zeroize::Zeroizing;

use super::super::apdu::{sw, Command};
use super::super::card::SimCard;
use super::super::objects::public_point;
use super::super::security::SecretHex;
use super::exec::{ok, DomResult};
use super::{life_cycle, ref_bit, DomKey};

impl SimCard {
    fn dom_key(&self, reference: u8) -> Result<DomKey, u16> {
        self.dom()?
            .keys
            .iter()
            .find(|k| k.reference == reference)
            .cloned()
            .ok_or(sw::REF_NOT_FOUND)
    }

    /// `80 46 P1 ref`: P1 00 generate, 01 read the public point.
    pub(super) fn dom_generate_key(&mut self, c: &Command) -> DomResult {
        if !c.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let slot = self.dom_key(c.p2)?;
        match c.p1 {
            0x01 => return slot.public.ok_or(sw::REF_NOT_FOUND).and_then(ok),
            0x00 => {}
            _ => return Err(sw::WRONG_P1P2),
        }
        if !self.dom_issuer() {
            return Err(sw::SECURITY_NOT_SATISFIED);
        }
        if self.dom_life_cycle() >= life_cycle::SECURED {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        let sk = self.dom_new_key().ok_or(sw::NO_DIAGNOSIS)?;
        let public = public_point(&sk);
        let private = SecretHex::new(sk.to_bytes().to_vec());
        let (reference, point) = (c.p2, public.clone());
        self.dom_mutate(|d| {
            if let Some(k) = d.keys.iter_mut().find(|k| k.reference == reference) {
                k.private = Some(private);
                k.public = Some(point);
            }
        })?;
        ok(public)
    }

    fn dom_new_key(&self) -> Option<SigningKey> {
        for _ in 0..8 {
            let bytes = Zeroizing::new(self.random(32)?);
            if let Ok(sk) = SigningKey::from_slice(&bytes) {
                return Some(sk);
            }
        }
        None
    }

    /// `80 2A 00 ref digest(32)`: DER ECDSA signature.
    pub(super) fn dom_sign(&mut self, c: &Command) -> DomResult {
        if c.p1 != 0x00 {
            return Err(sw::WRONG_P1P2);
        }
        let k = self.dom_key(c.p2)?;
        if c.data.len() != 32 {
            return Err(sw::WRONG_LENGTH);
        }
        let private = k.private.as_ref().ok_or(sw::CONDITIONS_NOT_SATISFIED)?;
        if self.dvol.verified & ref_bit(k.pin) == 0 {
            return Err(sw::SECURITY_NOT_SATISFIED);
        }
        let sk = SigningKey::from_slice(private.expose()).map_err(|_| sw::NO_DIAGNOSIS)?;
        let sig: Signature = sk.sign_prehash(&c.data).map_err(|_| sw::NO_DIAGNOSIS)?;
        if k.pin_per_use {
            self.dvol.verified &= !ref_bit(k.pin);
        }
        let bytes = sig.to_bytes();
        let (r, s) = bytes.split_at(32);
        ok(der_signature(r, s))
    }
}

/// A DER INTEGER of a big-endian unsigned value: leading zeros dropped, a
/// 00 prepended when the high bit is set.
fn der_uint(v: &[u8]) -> Vec<u8> {
    let start = v
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(v.len().saturating_sub(1));
    let digits = v.get(start..).unwrap_or(&[0]);
    let mut out = vec![0x02];
    let pad = digits.first().is_some_and(|b| b & 0x80 != 0);
    out.push((digits.len() + usize::from(pad)) as u8);
    if pad {
        out.push(0x00);
    }
    out.extend_from_slice(digits);
    out
}

/// `30 L { 02 r, 02 s }` (at most 72 bytes for P-256).
pub(super) fn der_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut body = der_uint(r);
    body.extend(der_uint(s));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}
