//! The AES primitives SCP03 needs (Amendment D §4.1): the block cipher for
//! 16, 24 and 32 byte keys, CBC with an explicit ICV (NIST SP 800-38A),
//! AES-CMAC (NIST SP 800-38B), the '80 00..' padding of §4.1.4 (ISO/IEC
//! 9797-1 method 2) and a constant-time comparison for MACs and cryptograms.
//!
//! Key schedules live only for the duration of one call.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256, Block};

use super::error::{Error, Result};

/// AES block length in bytes.
pub(super) const BLOCK: usize = 16;

enum Cipher {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl Cipher {
    fn new(key: &[u8]) -> Result<Cipher> {
        let bad = |_| Error::BadKeyLength { len: key.len() };
        Ok(match key.len() {
            16 => Cipher::A128(Aes128::new_from_slice(key).map_err(bad)?),
            24 => Cipher::A192(Aes192::new_from_slice(key).map_err(bad)?),
            32 => Cipher::A256(Aes256::new_from_slice(key).map_err(bad)?),
            len => return Err(Error::BadKeyLength { len }),
        })
    }

    fn encrypt(&self, block: &mut [u8; BLOCK]) {
        let b = Block::from_mut_slice(block);
        match self {
            Cipher::A128(c) => c.encrypt_block(b),
            Cipher::A192(c) => c.encrypt_block(b),
            Cipher::A256(c) => c.encrypt_block(b),
        }
    }

    fn decrypt(&self, block: &mut [u8; BLOCK]) {
        let b = Block::from_mut_slice(block);
        match self {
            Cipher::A128(c) => c.decrypt_block(b),
            Cipher::A192(c) => c.decrypt_block(b),
            Cipher::A256(c) => c.decrypt_block(b),
        }
    }
}

/// AES-ECB of a single block.
pub(super) fn encrypt_block(key: &[u8], block: [u8; BLOCK]) -> Result<[u8; BLOCK]> {
    let mut b = block;
    Cipher::new(key)?.encrypt(&mut b);
    Ok(b)
}

/// AES-CBC encryption in place; `data.len()` must be a multiple of 16.
pub(super) fn cbc_encrypt(key: &[u8], icv: [u8; BLOCK], data: &mut [u8]) -> Result<()> {
    if !data.len().is_multiple_of(BLOCK) {
        return Err(Error::BadCiphertext("length is not a multiple of 16"));
    }
    let cipher = Cipher::new(key)?;
    let mut chain = icv;
    for chunk in data.chunks_exact_mut(BLOCK) {
        for (c, x) in chain.iter_mut().zip(chunk.iter()) {
            *c ^= x;
        }
        cipher.encrypt(&mut chain);
        chunk.copy_from_slice(&chain);
    }
    Ok(())
}

/// AES-CBC decryption in place; `data.len()` must be a multiple of 16.
pub(super) fn cbc_decrypt(key: &[u8], icv: [u8; BLOCK], data: &mut [u8]) -> Result<()> {
    if !data.len().is_multiple_of(BLOCK) {
        return Err(Error::BadCiphertext("length is not a multiple of 16"));
    }
    let cipher = Cipher::new(key)?;
    let mut chain = icv;
    for chunk in data.chunks_exact_mut(BLOCK) {
        let mut block = [0u8; BLOCK];
        block.copy_from_slice(chunk);
        let ciphertext = block;
        cipher.decrypt(&mut block);
        for ((out, p), c) in chunk.iter_mut().zip(block.iter()).zip(chain.iter()) {
            *out = p ^ c;
        }
        chain = ciphertext;
    }
    Ok(())
}

/// AES-CMAC over the concatenation of `parts` (the crate's one CMAC).
pub(super) fn cmac(key: &[u8], parts: &[&[u8]]) -> Result<[u8; BLOCK]> {
    cardsmith_wire::crypto::aes_cmac_parts(key, parts).ok_or(Error::BadKeyLength { len: key.len() })
}

/// Amendment D §4.1.4 padding: append '80', then '00' up to a multiple of 16.
/// Always adds at least one byte (a full block for block-aligned input).
pub(super) fn pad80(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity((data.len() / BLOCK + 1) * BLOCK);
    out.extend_from_slice(data);
    out.push(0x80);
    while !out.len().is_multiple_of(BLOCK) {
        out.push(0);
    }
    out
}

/// Remove §4.1.4 padding: trailing '00' bytes, then one '80'.
///
/// Any number of '00' bytes is accepted, not only the 0–15 that §4.1.4
/// produces: GlobalPlatformPro, pySim and yubikit strip padding this way, and
/// the Samsung OpenSCP-Java test card pads responses with whole extra blocks
/// of zeros. Padding is only ever checked after the MAC over the ciphertext
/// verified, so this leniency gives no padding oracle.
pub(super) fn unpad80(mut data: Vec<u8>) -> Result<Vec<u8>> {
    while let Some(&0) = data.last() {
        data.pop();
    }
    if data.pop() != Some(0x80) {
        return Err(Error::BadCiphertext("padding is not '80 00..'"));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::h;

    #[test]
    fn cmac_rfc4493_and_sp800_38b_vectors() {
        // RFC 4493 §4, example 2 (AES-128).
        let k = h("2b7e151628aed2a6abf7158809cf4f3c");
        let m = h("6bc1bee22e409f96e93d7e117393172a");
        assert_eq!(
            cmac(&k, &[&m]).unwrap().to_vec(),
            h("070a16b46b4d4144f79bdd9dd04a287c")
        );
        // Split input gives the same tag.
        assert_eq!(
            cmac(&k, &[&m[..5], &m[5..]]).unwrap(),
            cmac(&k, &[&m]).unwrap()
        );
        // NIST SP 800-38B appendix D.3 example 10 (AES-192, 16-byte message).
        let k = h("8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b");
        assert_eq!(
            cmac(&k, &[&m]).unwrap().to_vec(),
            h("9e99a7bf31e710900662f65e617c5184")
        );
        // NIST SP 800-38B appendix D.4 example 14 (AES-256, 16-byte message).
        let k = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        assert_eq!(
            cmac(&k, &[&m]).unwrap().to_vec(),
            h("28a7023f452e8f82bd4bf28d8c37c35c")
        );
        assert_eq!(cmac(&[0; 15], &[]), Err(Error::BadKeyLength { len: 15 }));
    }

    #[test]
    fn cbc_sp800_38a_vector() {
        // NIST SP 800-38A F.2.1 CBC-AES128.Encrypt, first two blocks.
        let k = h("2b7e151628aed2a6abf7158809cf4f3c");
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&h("000102030405060708090a0b0c0d0e0f"));
        let plain = h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        let mut data = plain.clone();
        cbc_encrypt(&k, iv, &mut data).unwrap();
        assert_eq!(
            data,
            h("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2")
        );
        cbc_decrypt(&k, iv, &mut data).unwrap();
        assert_eq!(data, plain);
        assert!(cbc_encrypt(&k, iv, &mut [0u8; 15]).is_err());
    }

    #[test]
    fn padding() {
        assert_eq!(pad80(&[]), h("80000000000000000000000000000000"));
        assert_eq!(pad80(&[1; 15]).len(), 16);
        assert_eq!(pad80(&[1; 16]).len(), 32);
        for n in 0..40 {
            let d = vec![0u8; n];
            assert_eq!(unpad80(pad80(&d)).unwrap(), d);
        }
        assert!(unpad80(vec![0; 16]).is_err());
        assert!(unpad80(vec![]).is_err());
        assert!(unpad80(h("0102")).is_err());
        // Over-long zero runs are accepted (see unpad80).
        let mut long_zeros = vec![7, 0x80];
        long_zeros.extend_from_slice(&[0; 30]);
        assert_eq!(unpad80(long_zeros).unwrap(), [7]);
    }
}
