//! Static and session keys (Amendment D §6), key check values (§7.2.2) and
//! per-card diversification of a master key.
//!
//! Every key type wipes its bytes on drop, and its `Debug` shows only its
//! length (and the key version number): never key bytes, never a KCV.

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::crypto;
use super::error::{Error, Result};
use super::kdf;

/// One AES key of 16, 24 or 32 bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AesKey {
    bytes: [u8; 32],
    len: u8,
}

impl AesKey {
    /// Copy a key; errors unless it has 16, 24 or 32 bytes.
    pub fn new(key: &[u8]) -> Result<AesKey> {
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(Error::BadKeyLength { len: key.len() });
        }
        let mut bytes = [0u8; 32];
        bytes.iter_mut().zip(key).for_each(|(slot, b)| *slot = *b);
        Ok(AesKey {
            bytes,
            len: key.len() as u8,
        })
    }

    /// Key length in bytes (16, 24 or 32).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: an `AesKey` has 16, 24 or 32 bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The key bytes. Call only to hand them to a cipher or a KDF.
    pub fn expose(&self) -> &[u8] {
        self.bytes.get(..self.len()).unwrap_or_default()
    }

    /// Key check value (Amendment D §7.2.2): the first 3 bytes of
    /// AES(key, 16 × '01').
    pub fn kcv(&self) -> [u8; 3] {
        // The key length is valid by construction, so encryption cannot fail;
        // an all-zero KCV would only appear if that invariant broke.
        let block = crypto::encrypt_block(self.expose(), [0x01; 16]).unwrap_or([0; 16]);
        [block[0], block[1], block[2]]
    }
}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AesKey(AES-{})", self.len() * 8)
    }
}

/// The three static keys of one SCP03 key set and its key version number.
///
/// Key-ENC derives S-ENC (and pseudo-random card challenges), Key-MAC derives
/// S-MAC and S-RMAC, Key-DEK encrypts sensitive data such as new keys in
/// PUT KEY (Amendment D Table 6-1). All three have the same length.
#[derive(Clone)]
pub struct StaticKeys {
    enc: AesKey,
    mac: AesKey,
    dek: AesKey,
    kvn: u8,
}

impl StaticKeys {
    /// A key set from its three keys. `kvn` is the key version number
    /// ('01'–'7F' for a stored key set; '00' asks the card for its first
    /// available key set in INITIALIZE UPDATE, GPCS §D.4.1.3).
    pub fn new(kvn: u8, enc: &[u8], mac: &[u8], dek: &[u8]) -> Result<StaticKeys> {
        if kvn > 0x7F {
            return Err(Error::BadKvn { kvn });
        }
        let (enc, mac, dek) = (AesKey::new(enc)?, AesKey::new(mac)?, AesKey::new(dek)?);
        if enc.len() != mac.len() || enc.len() != dek.len() {
            return Err(Error::KeyLengthMismatch);
        }
        Ok(StaticKeys { enc, mac, dek, kvn })
    }

    /// Key set where ENC, MAC and DEK are the same key (as with the usual
    /// test key 40..4F).
    pub fn single(kvn: u8, key: &[u8]) -> Result<StaticKeys> {
        StaticKeys::new(kvn, key, key, key)
    }

    /// Diversify a master key for one card from its key diversification
    /// data (the first 10 bytes of its INITIALIZE UPDATE response).
    pub fn diversified(
        master: &AesKey,
        kvn: u8,
        kdd: &[u8],
        method: Diversification,
    ) -> Result<StaticKeys> {
        match method {
            Diversification::GpProKdf3 => {
                let enc = kdf::gppro_kdf3(master.expose(), 0x01, kdd)?;
                let mac = kdf::gppro_kdf3(master.expose(), 0x02, kdd)?;
                let dek = kdf::gppro_kdf3(master.expose(), 0x03, kdd)?;
                StaticKeys::new(kvn, &enc, &mac, &dek)
            }
        }
    }

    pub fn enc(&self) -> &AesKey {
        &self.enc
    }
    pub fn mac(&self) -> &AesKey {
        &self.mac
    }
    pub fn dek(&self) -> &AesKey {
        &self.dek
    }
    /// Key version number.
    pub fn kvn(&self) -> u8 {
        self.kvn
    }
    /// Length of each key in bytes (16, 24 or 32).
    pub fn key_len(&self) -> usize {
        self.enc.len()
    }
    /// The key check values of ENC, MAC and DEK, in that order.
    pub fn kcvs(&self) -> [[u8; 3]; 3] {
        [self.enc.kcv(), self.mac.kcv(), self.dek.kcv()]
    }
}

impl std::fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKeys")
            .field("kvn", &format_args!("{:02X}", self.kvn))
            .field("key_len", &self.key_len())
            .finish()
    }
}

/// How a master key becomes one card's static keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diversification {
    /// GlobalPlatformPro's "KDF3": see [`kdf::gppro_kdf3`].
    GpProKdf3,
}

/// Where the host gets the card's static keys from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// The card's own keys.
    Static(StaticKeys),
    /// A master key, diversified with the card's key diversification data
    /// once the INITIALIZE UPDATE response arrives.
    Master {
        master: AesKey,
        kvn: u8,
        method: Diversification,
    },
}

impl KeySource {
    /// Key version number to ask for in INITIALIZE UPDATE.
    pub fn kvn(&self) -> u8 {
        match self {
            KeySource::Static(k) => k.kvn(),
            KeySource::Master { kvn, .. } => *kvn,
        }
    }

    /// The card's static keys, given its key diversification data.
    pub fn resolve(&self, kdd: &[u8]) -> Result<StaticKeys> {
        match self {
            KeySource::Static(k) => Ok(k.clone()),
            KeySource::Master {
                master,
                kvn,
                method,
            } => StaticKeys::diversified(master, *kvn, kdd, *method),
        }
    }
}

impl From<StaticKeys> for KeySource {
    fn from(k: StaticKeys) -> KeySource {
        KeySource::Static(k)
    }
}

/// The session keys of one secure channel session (Amendment D §6.2.1).
#[derive(Clone)]
pub struct SessionKeys {
    /// S-ENC: command and response encryption (from Key-ENC, constant '04').
    pub s_enc: AesKey,
    /// S-MAC: C-MAC and cryptograms (from Key-MAC, constant '06').
    pub s_mac: AesKey,
    /// S-RMAC: R-MAC (from Key-MAC, constant '07').
    pub s_rmac: AesKey,
}

impl SessionKeys {
    /// Derive the session keys; context = host challenge ‖ card challenge,
    /// L = static key length in bits.
    ///
    /// Amendment D v1.1.1 §6.2.1 defines the context with 8-byte challenges;
    /// S16 mode uses its 16-byte challenges the same way.
    pub fn derive(
        keys: &StaticKeys,
        host_challenge: &[u8],
        card_challenge: &[u8],
    ) -> Result<SessionKeys> {
        let context = Zeroizing::new([host_challenge, card_challenge].concat());
        // 128, 192 or 256: key lengths are validated.
        let bits = (keys.key_len() * 8) as u16;
        let s_enc = kdf::derive(keys.enc().expose(), kdf::S_ENC_CONSTANT, &context, bits)?;
        let s_mac = kdf::derive(keys.mac().expose(), kdf::S_MAC_CONSTANT, &context, bits)?;
        let s_rmac = kdf::derive(keys.mac().expose(), kdf::S_RMAC_CONSTANT, &context, bits)?;
        Ok(SessionKeys {
            s_enc: AesKey::new(&s_enc)?,
            s_mac: AesKey::new(&s_mac)?,
            s_rmac: AesKey::new(&s_rmac)?,
        })
    }

    /// Card cryptogram (§6.2.2.2): KDF(S-MAC, '00', host ‖ card challenge),
    /// as long as the challenges.
    pub fn card_cryptogram(&self, host_challenge: &[u8], card_challenge: &[u8]) -> Result<Vec<u8>> {
        self.cryptogram(
            kdf::CARD_CRYPTOGRAM_CONSTANT,
            host_challenge,
            card_challenge,
        )
    }

    /// Host cryptogram (§6.2.2.3): KDF(S-MAC, '01', host ‖ card challenge).
    pub fn host_cryptogram(&self, host_challenge: &[u8], card_challenge: &[u8]) -> Result<Vec<u8>> {
        self.cryptogram(
            kdf::HOST_CRYPTOGRAM_CONSTANT,
            host_challenge,
            card_challenge,
        )
    }

    fn cryptogram(
        &self,
        constant: u8,
        host_challenge: &[u8],
        card_challenge: &[u8],
    ) -> Result<Vec<u8>> {
        let context = [host_challenge, card_challenge].concat();
        let bits = bit_length(card_challenge.len())?;
        Ok(kdf::derive(self.s_mac.expose(), constant, &context, bits)?.to_vec())
    }
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionKeys(AES-{})", self.s_enc.len() * 8)
    }
}

/// Pseudo-random card challenge (Amendment D §6.2.2.1):
/// KDF(Key-ENC, '02', sequence counter (3 bytes) ‖ invoking AID), as long as
/// `len` (8 in S8 mode, 16 in S16 mode).
pub fn pseudo_random_card_challenge(
    key_enc: &AesKey,
    sequence_counter: [u8; 3],
    aid: &[u8],
    len: usize,
) -> Result<Vec<u8>> {
    let context = [&sequence_counter[..], aid].concat();
    Ok(kdf::derive(
        key_enc.expose(),
        kdf::CARD_CHALLENGE_CONSTANT,
        &context,
        bit_length(len)?,
    )?
    .to_vec())
}

/// A challenge or cryptogram length (8 or 16 bytes) as the KDF's L in bits.
fn bit_length(len: usize) -> Result<u16> {
    match len {
        8 | 16 => Ok((len * 8) as u16),
        _ => Err(Error::BadChallengeLength {
            expected: 8,
            got: len,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tests::h;

    #[test]
    fn kcv_vectors() {
        // osmocom/pysim, tests/unittests/test_globalplatform.py (SCP03_KCV_Test).
        let k = StaticKeys::new(
            0x30,
            &h("000102030405060708090a0b0c0d0e0f"),
            &h("101112131415161718191a1b1c1d1e1f"),
            &h("202122232425262728292a2b2c2d2e2f"),
        )
        .unwrap();
        assert_eq!(
            k.kcvs(),
            [[0xC3, 0x52, 0x80], [0x01, 0x38, 0x08], [0x84, 0x0D, 0xE5]]
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let k = StaticKeys::single(0x30, &h("404142434445464748494A4B4C4D4E4F")).unwrap();
        let shown = format!("{k:?} {:?} {:#?}", k.enc(), k);
        assert!(
            !shown.contains("4041") && !shown.contains("40 41"),
            "{shown}"
        );
        assert!(
            !shown.contains("64, 65") && !shown.contains("0x40"),
            "{shown}"
        );
        assert!(shown.contains("kvn: 30"), "{shown}");
        assert!(shown.contains("key_len: 16"), "{shown}");
        let kcv = k.enc().kcv();
        let kcv_hex = format!("{:02X}{:02X}{:02X}", kcv[0], kcv[1], kcv[2]);
        assert!(!shown.contains(&kcv_hex));
    }

    #[test]
    fn key_validation() {
        assert_eq!(
            AesKey::new(&[0; 15]).err(),
            Some(Error::BadKeyLength { len: 15 })
        );
        assert_eq!(
            StaticKeys::new(1, &[0; 16], &[0; 24], &[0; 16]).err(),
            Some(Error::KeyLengthMismatch)
        );
        assert_eq!(
            StaticKeys::single(0x80, &[0; 16]).err(),
            Some(Error::BadKvn { kvn: 0x80 })
        );
    }

    #[test]
    fn diversified_keys_use_gppro_kdf3() {
        // GlobalPlatformPro TestSCP03.testKDF3 vector for ENC; MAC and DEK
        // use key ids 02 and 03 of the same scheme (no published values).
        let master = AesKey::new(&h(
            "8C72C72CF908411653018807950D82FBAD947562F0828A0B10B8B9606ABF3BCD",
        ))
        .unwrap();
        let kdd = h("D9B1DE5D0362DEDCE4FB");
        let k = StaticKeys::diversified(&master, 0x30, &kdd, Diversification::GpProKdf3).unwrap();
        assert_eq!(
            k.enc().expose(),
            &h("9AAC5D0B3601F89438A0D9D0B6B256CFB47E6462DFA5228D3420C4AC7C224781")[..]
        );
        assert_ne!(k.enc().expose(), k.mac().expose());
        assert_ne!(k.mac().expose(), k.dek().expose());
        assert_eq!(k.key_len(), 32);
    }
}
