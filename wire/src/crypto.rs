//! AES-CMAC (RFC 4493, NIST SP 800-38B), for the issuer cryptogram on both
//! sides of the card edge (the host computes it, the simulated card checks
//! it) and for SCP03 (`cardsmith-scp03`); and the one constant-time comparison
//! of secrets (MACs, cryptograms, PIN hashes), on `subtle`.

use aes::{Aes128, Aes192, Aes256};
use cmac::{Cmac, Mac};

/// AES-CMAC of `data` under `key`; `None` unless the key has 16, 24 or 32 bytes.
pub fn aes_cmac(key: &[u8], data: &[u8]) -> Option<[u8; 16]> {
    aes_cmac_parts(key, &[data])
}

/// AES-CMAC over the concatenation of `parts` (no copy of the message);
/// `None` unless the key has 16, 24 or 32 bytes.
pub fn aes_cmac_parts(key: &[u8], parts: &[&[u8]]) -> Option<[u8; 16]> {
    fn run<M: Mac + cmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Option<[u8; 16]> {
        let mut m = <M as cmac::digest::KeyInit>::new_from_slice(key).ok()?;
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().as_slice().try_into().ok()
    }
    match key.len() {
        16 => run::<Cmac<Aes128>>(key, parts),
        24 => run::<Cmac<Aes192>>(key, parts),
        32 => run::<Cmac<Aes256>>(key, parts),
        _ => None,
    }
}

/// Equality of two byte strings in time independent of where they differ
/// (the length is not secret). For MACs, cryptograms and PIN hashes.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::{compact, parse};

    #[test]
    fn ct_eq_compares_whole_strings() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"xbc"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn rfc4493_aes128_vectors() {
        // RFC 4493 §4, key 2b7e1516 28aed2a6 abf71588 09cf4f3c.
        let k = parse("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        assert_eq!(
            compact(&aes_cmac(&k, b"").unwrap()),
            "BB1D6929E95937287FA37D129B756746"
        );
        let m = parse("6bc1bee22e409f96e93d7e117393172a").unwrap();
        assert_eq!(
            compact(&aes_cmac(&k, &m).unwrap()),
            "070A16B46B4D4144F79BDD9DD04A287C"
        );
        assert_eq!(aes_cmac(&[0; 15], b""), None);
    }
}
