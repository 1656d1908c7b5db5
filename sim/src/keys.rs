//! ECDSA P-256 key objects and the commands that use them.
//!
//! GENERATE ASYMMETRIC KEY PAIR (ISO/IEC 7816-8:2021 §5.1, control
//! reference template B6 = digital signature, A4 = authentication), MANAGE
//! SECURITY ENVIRONMENT SET (7816-4 §7.5.11), PERFORM SECURITY OPERATION
//! COMPUTE DIGITAL SIGNATURE (7816-8 §5.4) and INTERNAL AUTHENTICATE
//! (7816-4 §7.5.2). The host hashes (SHA-256) and sends the 32-byte digest;
//! the card signs it as is (ECDSA with deterministic nonces, RFC 6979) and
//! answers r || s, 64 bytes. Private keys never leave the card; in the image
//! they are hex and never shown by `Debug`.

use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use zeroize::Zeroizing;

use super::apdu::{sw, Command};
use super::card::{CmdResult, LeRule, Resp, SimCard};
use super::fs::{card_lc, KEY_OVERHEAD};
use super::objects::{public_point, KeyObject, MAX_KID, USAGE_AUTH, USAGE_SIGN};
use super::security::{pin_number, SecretHex};
use super::tlv::{parse_all, push_tlv, tlv};

/// Algorithm reference: ECDSA on P-256 with SHA-256.
const ALG_ECDSA_P256_SHA256: u8 = 0x11;
/// DER of the OID 1.2.840.10045.3.1.7 (prime256v1 / secp256r1).
const OID_P256: [u8; 8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const DIGEST_LEN: usize = 32;

/// The contents of a control reference template in GENERATE ASYMMETRIC KEY
/// PAIR.
struct Crt {
    usage: u8,
    kid: u8,
    pin: Option<u8>,
    pin_per_use: bool,
}

/// Parse `B6|A4 L { 83 01 kid, [80 01 11], [9C 01 pin], [9D 01 01] }`.
/// Anything else (another template, unknown or repeated objects, a bad
/// value) → 6A80.
fn parse_crt(data: &[u8]) -> Result<Crt, u16> {
    let bad = sw::WRONG_DATA;
    let items = parse_all(data).map_err(|_| bad)?;
    let [outer] = items.as_slice() else {
        return Err(bad);
    };
    let usage = match outer.tag {
        0xB6 => USAGE_SIGN,
        0xA4 => USAGE_AUTH,
        _ => return Err(bad),
    };
    let (mut kid, mut alg, mut pin, mut per_use) = (None, None, None, None);
    for t in parse_all(outer.value).map_err(|_| bad)? {
        let [b] = t.value else { return Err(bad) };
        let slot = match t.tag {
            0x83 => &mut kid,
            0x80 => &mut alg,
            0x9C => &mut pin,
            0x9D => &mut per_use,
            _ => return Err(bad),
        };
        if slot.replace(*b).is_some() {
            return Err(bad);
        }
    }
    let kid = kid.filter(|k| (1..=MAX_KID).contains(k)).ok_or(bad)?;
    if alg.is_some_and(|a| a != ALG_ECDSA_P256_SHA256) {
        return Err(bad);
    }
    let pin = match pin {
        None => None,
        Some(r) => Some(pin_number(r).ok_or(bad)?),
    };
    let pin_per_use = match per_use {
        None => false,
        Some(0x01) => true,
        Some(_) => return Err(bad),
    };
    if pin_per_use && pin.is_none() {
        return Err(bad);
    }
    Ok(Crt {
        usage,
        kid,
        pin,
        pin_per_use,
    })
}

/// `7F49 { 06 OID, 86 04||X||Y }`.
fn public_key_do(public: &[u8]) -> Vec<u8> {
    let mut inner = Vec::with_capacity(80);
    push_tlv(&mut inner, 0x06, &OID_P256);
    push_tlv(&mut inner, 0x86, public);
    tlv(0x7F49, &inner)
}

impl SimCard {
    /// A new private key from the OS generator (ring `SystemRandom`),
    /// drawing again in the (negligible) case the bytes are not a valid
    /// scalar.
    fn new_signing_key(&self) -> Option<SigningKey> {
        for _ in 0..8 {
            let bytes = Zeroizing::new(self.random(32)?);
            if let Ok(sk) = SigningKey::from_slice(&bytes) {
                return Some(sk);
            }
        }
        None
    }

    /// GENERATE ASYMMETRIC KEY PAIR `00 46 P1 00 Lc <CRT> Le`. P1 = 00:
    /// generate (only while BLANK, else 6985; replaces a key with that
    /// reference); P1 = 81: read the public key of an existing key of that
    /// usage (none → 6A88). Other P1 or P2 ≠ 00 → 6A86; malformed CRT →
    /// 6A80; no data → 6700. Answer `7F49 { 06 08 <OID P-256>, 86 41 04 X Y }`.
    pub(super) fn cmd_generate_key(&mut self, c: &Command) -> CmdResult {
        if c.p2 != 0x00 || !matches!(c.p1, 0x00 | 0x81) {
            return Err(sw::WRONG_P1P2);
        }
        if c.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let crt = parse_crt(&c.data)?;
        if c.p1 == 0x81 {
            let k = self
                .state
                .key(crt.kid)
                .filter(|k| k.usage == crt.usage)
                .ok_or(sw::REF_NOT_FOUND)?;
            return Ok(Resp::data(
                public_key_do(&k.public),
                sw::OK,
                LeRule::Variable,
            ));
        }
        if self.state.life_cycle != card_lc::BLANK {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        if self.state.key(crt.kid).is_none() && KEY_OVERHEAD > self.state.free_memory() {
            return Err(sw::NOT_ENOUGH_MEMORY);
        }
        let sk = self.new_signing_key().ok_or(sw::NO_DIAGNOSIS)?;
        let public = public_point(&sk);
        let private = SecretHex::new(sk.to_bytes().to_vec());
        let obj = KeyObject {
            kid: crt.kid,
            usage: crt.usage,
            private,
            public: public.clone(),
            pin: crt.pin,
            pin_per_use: crt.pin_per_use,
        };
        let kid = crt.kid;
        self.mutate(|s| {
            s.keys.retain(|k| k.kid != kid);
            s.keys.push(obj);
            s.keys.sort_by_key(|k| k.kid);
        })?;
        Ok(Resp::data(public_key_do(&public), sw::OK, LeRule::Variable))
    }

    /// MANAGE SECURITY ENVIRONMENT SET `00 22 41 B6|A4 Lc { [80 01 11],
    /// 84 01 kid }`: selects the key for PSO COMPUTE DIGITAL SIGNATURE (B6)
    /// or INTERNAL AUTHENTICATE (A4), until reset. Other P1-P2 → 6A86;
    /// malformed data (84 missing, other objects, algorithm ≠ 11) or a key
    /// of the other usage → 6A80; no such key → 6A88.
    pub(super) fn cmd_mse(&mut self, c: &Command) -> CmdResult {
        let usage = match (c.p1, c.p2) {
            (0x41, 0xB6) => USAGE_SIGN,
            (0x41, 0xA4) => USAGE_AUTH,
            _ => return Err(sw::WRONG_P1P2),
        };
        let bad = sw::WRONG_DATA;
        let (mut kid, mut alg) = (None, None);
        for t in parse_all(&c.data).map_err(|_| bad)? {
            let [b] = t.value else { return Err(bad) };
            let slot = match t.tag {
                0x84 => &mut kid,
                0x80 => &mut alg,
                _ => return Err(bad),
            };
            if slot.replace(*b).is_some() {
                return Err(bad);
            }
        }
        let kid = kid.ok_or(bad)?;
        if alg.is_some_and(|a| a != ALG_ECDSA_P256_SHA256) {
            return Err(bad);
        }
        let k = self.state.key(kid).ok_or(sw::REF_NOT_FOUND)?;
        if k.usage != usage {
            return Err(bad);
        }
        if usage == USAGE_SIGN {
            self.vol.dst_kid = Some(kid);
        } else {
            self.vol.at_kid = Some(kid);
        }
        Ok(Resp::ok())
    }

    /// Whether key `k` may be used now (see the docs: BLANK → issuer
    /// authentication if the card has an issuer key, or the security
    /// domain's channel at the personalization level; PERSONALIZED → the
    /// same for signatures, free for INTERNAL AUTHENTICATE; ACTIVATED → the
    /// key's PIN, if it has one).
    fn key_use_allowed(&self, k: &KeyObject) -> bool {
        let issuer_ok = self.state.issuer_key.is_none() || self.sec_status().issuer;
        match self.state.life_cycle {
            card_lc::BLANK => issuer_ok,
            card_lc::PERSONALIZED => k.usage == USAGE_AUTH || issuer_ok,
            card_lc::ACTIVATED => k.pin.is_none_or(|n| self.is_verified(n)),
            _ => false,
        }
    }

    /// Sign `digest` with the key selected for `usage`; the common part of
    /// PSO CDS and INTERNAL AUTHENTICATE.
    fn sign_with(&mut self, kid: Option<u8>, usage: u8, digest: &[u8]) -> CmdResult {
        let kid = kid.ok_or(sw::CONDITIONS_NOT_SATISFIED)?;
        if digest.len() != DIGEST_LEN {
            return Err(sw::WRONG_DATA);
        }
        let k = self
            .state
            .key(kid)
            .filter(|k| k.usage == usage)
            .ok_or(sw::CONDITIONS_NOT_SATISFIED)?;
        if !self.key_use_allowed(k) {
            return Err(sw::SECURITY_NOT_SATISFIED);
        }
        let consume = (self.state.life_cycle == card_lc::ACTIVATED && k.pin_per_use)
            .then_some(k.pin)
            .flatten();
        let sk = k.signing_key().ok_or(sw::NO_DIAGNOSIS)?;
        let sig: Signature = sk.sign_prehash(digest).map_err(|_| sw::NO_DIAGNOSIS)?;
        if let Some(n) = consume {
            self.set_verified(n, false);
        }
        Ok(Resp::data(
            sig.to_bytes().to_vec(),
            sw::OK,
            LeRule::Variable,
        ))
    }

    /// PERFORM SECURITY OPERATION COMPUTE DIGITAL SIGNATURE `00 2A 9E 9A Lc
    /// <SHA-256 digest> Le` → r || s. Other P1-P2 → 6A86; no key set by
    /// MSE → 6985; data not 32 bytes → 6A80; not authorised → 6982.
    pub(super) fn cmd_pso(&mut self, c: &Command) -> CmdResult {
        if c.p1p2() != 0x9E9A {
            return Err(sw::WRONG_P1P2);
        }
        self.sign_with(self.vol.dst_kid, USAGE_SIGN, &c.data)
    }

    /// INTERNAL AUTHENTICATE `00 88 00 00 Lc <SHA-256 digest> Le` → r || s
    /// with the authentication key set by MSE (none → 6985).
    pub(super) fn cmd_internal_authenticate(&mut self, c: &Command) -> CmdResult {
        if c.p1p2() != 0x0000 {
            return Err(sw::WRONG_P1P2);
        }
        self.sign_with(self.vol.at_kid, USAGE_AUTH, &c.data)
    }
}
