//! Access rules and PIN objects.
//!
//! Owns (1) the evaluation of compact-format access rules (tag 8C, ISO/IEC
//! 7816-4:2013 §7.4.3, tables 16–18 and 20) against the volatile security
//! status, and (2) the persistent PIN objects: salted SHA-256 reference data,
//! lengths and retry counters (§7.5.6 VERIFY ff.). PIN comparisons are
//! constant time; PIN buffers are wiped after use.

use ring::digest;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::apdu::sw;

/// Access-mode bits for EFs (7816-4 table 17).
pub(super) mod ef_am {
    pub const READ: u8 = 0x01;
    pub const UPDATE: u8 = 0x02;
    #[allow(dead_code)]
    pub const WRITE: u8 = 0x04;
    pub const DEACTIVATE: u8 = 0x08;
    pub const ACTIVATE: u8 = 0x10;
    pub const TERMINATE: u8 = 0x20;
    pub const DELETE: u8 = 0x40;
}

/// Access-mode bits for DFs (7816-4 table 16).
pub(super) mod df_am {
    pub const DELETE_CHILD: u8 = 0x01;
    pub const CREATE_EF: u8 = 0x02;
    pub const CREATE_DF: u8 = 0x04;
    pub const DEACTIVATE: u8 = 0x08;
    pub const ACTIVATE: u8 = 0x10;
    pub const TERMINATE: u8 = 0x20;
    pub const DELETE_SELF: u8 = 0x40;
}

/// Check that `rule` (the value of 8C) is well formed: one or more access
/// rules, each an access-mode byte with b8 = 0 followed by exactly one
/// security-condition byte per bit set in b7..b1. Several rules in a row
/// are alternatives (OR). Proprietary access-mode bytes (b8 = 1) are refused.
pub(super) fn compact_rule_valid(rule: &[u8]) -> bool {
    if rule.is_empty() {
        return false;
    }
    let mut rest = rule;
    while let Some((&am, tail)) = rest.split_first() {
        if am & 0x80 != 0 {
            return false;
        }
        let n = (am & 0x7F).count_ones() as usize;
        match tail.split_at_checked(n) {
            Some((_, r)) => rest = r,
            None => return false,
        }
    }
    true
}

/// The volatile security status that access rules are checked against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SecStatus {
    /// Bit n set: PIN or biometric object number n verified (the two share
    /// one number space, so one bitmap serves both).
    pub verified: u16,
    /// EXTERNAL AUTHENTICATE with the issuer key (key number 1) succeeded.
    pub issuer: bool,
}

/// Decide whether the operation whose access-mode bit is `bit` is allowed
/// under the compact rule `rule`, given the bitmap of verified PIN numbers
/// (no external authentication). See [`access_allowed_with`].
#[cfg_attr(not(test), allow(dead_code))]
pub(super) fn access_allowed(rule: Option<&[u8]>, bit: u8, verified: u16) -> Result<(), u16> {
    access_allowed_with(
        rule,
        bit,
        SecStatus {
            verified,
            issuer: false,
        },
    )
}

/// Decide whether the operation whose access-mode bit is `bit` is allowed
/// under the compact rule `rule`, given the security status.
///
/// - no rule at all (file without 8C) → always allowed;
/// - an access-mode bit that is not set → no condition defined → never
///   (6982);
/// - SC 00 → always; SC FF → never;
/// - otherwise SC b5 (user authentication) is satisfied when the PIN or
///   biometric object whose number is in SC b4..b1 (1..=15) is verified in
///   this session (the card reads b4..b1 as an object number, not as an SE
///   identifier); SC b6 (external authentication) is satisfied when b4..b1
///   is 1 (the issuer key) and EXTERNAL AUTHENTICATE with it succeeded in
///   this session. b7 (secure messaging) cannot be satisfied on this card.
///   With b8 = 1 (all conditions) every indicated method must be
///   satisfied; with b8 = 0 (at least one) one of them is enough.
pub(super) fn access_allowed_with(rule: Option<&[u8]>, bit: u8, st: SecStatus) -> Result<(), u16> {
    let Some(rule) = rule else { return Ok(()) };
    let mut rest = rule;
    while let Some((&am, tail)) = rest.split_first() {
        let n = (am & 0x7F).count_ones() as usize;
        let Some((scs, r)) = tail.split_at_checked(n) else {
            break;
        };
        rest = r;
        if am & 0x80 != 0 || am & bit == 0 {
            continue;
        }
        // SC bytes follow the set bits from b7 down to b1.
        let above = am & 0x7F & !(bit | bit.wrapping_sub(1));
        let idx = above.count_ones() as usize;
        if let Some(&sc) = scs.get(idx) {
            if sc_satisfied(sc, st) {
                return Ok(());
            }
        }
    }
    Err(sw::SECURITY_NOT_SATISFIED)
}

fn sc_satisfied(sc: u8, st: SecStatus) -> bool {
    match sc {
        0x00 => true,
        0xFF => false,
        _ => {
            let all = sc & 0x80 != 0;
            let sm = sc & 0x40 != 0;
            let ext = sc & 0x20 != 0;
            let user = sc & 0x10 != 0;
            let number = sc & 0x0F;
            let user_ok = user && number != 0 && st.verified & (1u16 << number) != 0;
            let ext_ok = ext && number == 1 && st.issuer;
            if all {
                (user || ext) && !sm && (!user || user_ok) && (!ext || ext_ok)
            } else {
                user_ok || ext_ok
            }
        }
    }
}

/// Map a PIN reference (P2 of VERIFY etc.) to the PIN number 1..=15.
/// Global references 01..0F and specific references 81..8F name the same
/// PIN object (keyed by the low nibble).
pub(super) fn pin_number(reference: u8) -> Option<u8> {
    match reference {
        0x01..=0x0F => Some(reference),
        0x81..=0x8F => Some(reference & 0x0F),
        _ => None,
    }
}

/// A persistent PIN object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PinObject {
    /// PIN number 1..=15.
    pub number: u8,
    /// SHA-256(card salt || number || PIN).
    #[serde(with = "super::serde_hex::hex_bytes")]
    pub hash: Vec<u8>,
    /// Length of the stored PIN in bytes.
    pub length: u8,
    pub min_length: u8,
    pub max_length: u8,
    pub try_limit: u8,
    pub tries_left: u8,
    /// Number of the PIN that unblocks this one (RESET RETRY COUNTER).
    pub puk: Option<u8>,
    /// Transport state: the value was set by the issuer and must be changed
    /// (CHANGE REFERENCE DATA) before the PIN can be verified.
    #[serde(default)]
    pub transport: bool,
}

/// Secret bytes kept in the card state (keys, biometric templates): hex in
/// the image, wiped on drop, and never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct SecretHex(Zeroizing<Vec<u8>>);

impl SecretHex {
    pub fn new(bytes: Vec<u8>) -> SecretHex {
        SecretHex(Zeroizing::new(bytes))
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for SecretHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "REDACTED({} bytes)", self.0.len())
    }
}

impl Serialize for SecretHex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(cardsmith_wire::hex::compact(&self.0));
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for SecretHex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SecretHex, D::Error> {
        use serde::de::Error;
        let text = Zeroizing::new(String::deserialize(d)?);
        cardsmith_wire::hex::parse_compact(&text)
            .map(SecretHex::new)
            .ok_or_else(|| D::Error::custom("invalid hex string"))
    }
}

/// Hash a PIN value with the card salt and the PIN number.
pub(super) fn pin_hash(salt: &[u8], number: u8, pin: &[u8]) -> Vec<u8> {
    let mut buf = Zeroizing::new(Vec::with_capacity(salt.len() + 1 + pin.len()));
    buf.extend_from_slice(salt);
    buf.push(number);
    buf.extend_from_slice(pin);
    digest::digest(&digest::SHA256, &buf).as_ref().to_vec()
}
