//! SCP03 data derivation (Amendment D §4.1.5): NIST SP 800-108 KDF in
//! counter mode with AES-CMAC as PRF, used for session keys, card and host
//! cryptograms and pseudo-random card challenges.
//!
//! The PRF input for iteration `i` (1, 2, …) is, in this order:
//!
//! | bytes | content                                                  |
//! |-------|----------------------------------------------------------|
//! | 11    | label: '00' × 11                                          |
//! | 1     | derivation constant (see the `*_CONSTANT` items below)    |
//! | 1     | separation indicator '00'                                 |
//! | 2     | L, the output length in **bits**, big-endian ('0040'…)    |
//! | 1     | counter i                                                 |
//! | n     | context (host challenge ‖ card challenge, or sequence counter ‖ AID) |
//!
//! The output is CMAC(K, input₁) ‖ CMAC(K, input₂) ‖ … truncated to L bits.
//!
//! This module also holds the per-card key diversification that
//! GlobalPlatformPro calls "KDF3" ([`gppro_kdf3`]); it is *not* the layout
//! above (see its documentation).

use zeroize::Zeroizing;

use super::crypto::{cmac, BLOCK};
use super::error::{Error, Result};

/// Derivation constant for the card cryptogram (Amendment D Table 4-1).
pub const CARD_CRYPTOGRAM_CONSTANT: u8 = 0x00;
/// Derivation constant for the host cryptogram.
pub const HOST_CRYPTOGRAM_CONSTANT: u8 = 0x01;
/// Derivation constant for the pseudo-random card challenge.
pub const CARD_CHALLENGE_CONSTANT: u8 = 0x02;
/// Derivation constant for S-ENC (from Key-ENC).
pub const S_ENC_CONSTANT: u8 = 0x04;
/// Derivation constant for S-MAC (from Key-MAC).
pub const S_MAC_CONSTANT: u8 = 0x06;
/// Derivation constant for S-RMAC (from Key-MAC).
pub const S_RMAC_CONSTANT: u8 = 0x07;

/// The SCP03 KDF: `out_bits` bits derived from `key` (16, 24 or 32 bytes)
/// with this derivation constant and context.
///
/// `out_bits` must be a positive multiple of 8 needing at most 255 PRF
/// calls; SCP03 uses 64, 128, 192 and 256.
pub fn derive(
    key: &[u8],
    constant: u8,
    context: &[u8],
    out_bits: u16,
) -> Result<Zeroizing<Vec<u8>>> {
    if out_bits == 0 || !out_bits.is_multiple_of(8) {
        return Err(Error::WrongParameters(
            "KDF output length must be a positive multiple of 8 bits",
        ));
    }
    let out_len = usize::from(out_bits / 8);
    let blocks = out_len.div_ceil(BLOCK);
    let Ok(blocks) = u8::try_from(blocks) else {
        return Err(Error::WrongParameters(
            "KDF output needs more than 255 PRF calls",
        ));
    };
    let mut fixed = [0u8; 15];
    fixed[11] = constant;
    // fixed[12] is the separation indicator '00'.
    fixed[13..15].copy_from_slice(&out_bits.to_be_bytes());
    let mut out = Zeroizing::new(Vec::with_capacity(usize::from(blocks) * BLOCK));
    for i in 1..=blocks {
        let block = Zeroizing::new(cmac(key, &[&fixed, &[i], context])?);
        out.extend_from_slice(&block[..]);
    }
    out.truncate(out_len);
    Ok(out)
}

/// Per-card key diversification as implemented by GlobalPlatformPro under the
/// name "KDF3" (`--key-kdf kdf3`, template `"$_ 0x00 0x00 0x00 $k 0x00 $0 … $9"`).
///
/// Output (as long as `master`) = CMAC(master, input₁) ‖ CMAC(master, input₂) …
/// with the 16-byte input
///
/// `i ‖ '00 00 00' ‖ key_id ‖ '00' ‖ KDD (10 bytes)`
///
/// where `i` is the iteration counter (1, 2) and `key_id` is '01' for
/// Key-ENC, '02' for Key-MAC, '03' for Key-DEK. This is SP 800-108 counter
/// mode with the counter *first* and no L field, which differs from
/// Amendment D's own data derivation scheme ([`derive()`]).
///
/// Sources: GlobalPlatformPro `library/src/main/java/pro/javacard/gp/keys/PlaintextKeys.java`
/// (`kdf_templates`, `diversify`) and its test vector in
/// `library/src/test/java/pro/javacard/gp/TestSCP03.java` (`testKDF3`).
/// GlobalPlatform publishes no SCP03 master-key diversification; the
/// GlobalPlatformPro maintainer notes (issue #112) that no authoritative document
/// describes this "KDF mode", and card vendors (IDEMIA, issue #249) use it.
pub fn gppro_kdf3(master: &[u8], key_id: u8, kdd: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if kdd.len() != 10 {
        return Err(Error::BadKdd { len: kdd.len() });
    }
    let out_len = master.len();
    let mut out = Zeroizing::new(Vec::with_capacity(2 * BLOCK));
    let mut i: u8 = 1;
    while out.len() < out_len {
        let block = Zeroizing::new(cmac(master, &[&[i, 0, 0, 0, key_id, 0], kdd])?);
        out.extend_from_slice(&block[..]);
        i += 1;
    }
    out.truncate(out_len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tests::h;

    #[test]
    fn output_length_and_block_split() {
        let k = [0x40u8; 16];
        let a = derive(&k, S_ENC_CONSTANT, b"ctx", 256).unwrap();
        assert_eq!(a.len(), 32);
        // The first 16 bytes of a 256-bit derivation are not the 128-bit
        // derivation: L is part of every PRF input.
        let b = derive(&k, S_ENC_CONSTANT, b"ctx", 128).unwrap();
        assert_ne!(&a[..16], &b[..]);
        // Layout check against a hand-built PRF input.
        let mut input = vec![0u8; 11];
        input.extend_from_slice(&[S_ENC_CONSTANT, 0x00, 0x00, 0x80, 0x01]);
        input.extend_from_slice(b"ctx");
        assert_eq!(&b[..], &cmac(&k, &[&input]).unwrap()[..]);
        assert!(derive(&k, 0, b"", 0).is_err());
        assert!(derive(&k, 0, b"", 12).is_err());
        assert!(derive(&[0; 17], 0, b"", 64).is_err());
    }

    #[test]
    fn gppro_kdf3_vector() {
        // GlobalPlatformPro, library/src/test/java/pro/javacard/gp/TestSCP03.java
        // (testKDF3): AES-256 master key, ENC key (key id 01).
        let kdd = h("D9B1DE5D0362DEDCE4FB");
        let master = h("8C72C72CF908411653018807950D82FBAD947562F0828A0B10B8B9606ABF3BCD");
        let enc = gppro_kdf3(&master, 0x01, &kdd).unwrap();
        assert_eq!(
            &enc[..],
            &h("9AAC5D0B3601F89438A0D9D0B6B256CFB47E6462DFA5228D3420C4AC7C224781")[..]
        );
        assert!(gppro_kdf3(&master, 1, &kdd[..9]).is_err());
    }
}
