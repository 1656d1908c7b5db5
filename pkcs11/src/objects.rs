//! The token's objects: for each key of the card's profile, its
//! certificate, its public key and its private key (a handle only). Their
//! attributes are built from what the card holds; nothing is created,
//! changed or destroyed (docs/pkcs11.md, "Objects").

use cryptoki_sys::*;

use crate::card::CardKey;

/// What kind of object a handle names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Certificate,
    PublicKey,
    PrivateKey,
}

const KINDS: [Kind; 3] = [Kind::Certificate, Kind::PublicKey, Kind::PrivateKey];

/// The handle of key `key`'s object of kind `kind` (never 0).
pub fn handle(key: usize, kind: Kind) -> CK_OBJECT_HANDLE {
    let k = KINDS.iter().position(|x| *x == kind).unwrap_or(0);
    (key * 3 + k + 1) as CK_OBJECT_HANDLE
}

/// The key and kind a handle names, if the token has it.
pub fn parse_handle(h: CK_OBJECT_HANDLE, keys: usize) -> Option<(usize, Kind)> {
    let i = usize::try_from(h).ok()?.checked_sub(1)?;
    let key = i / 3;
    let kind = *KINDS.get(i % 3)?;
    (key < keys).then_some((key, kind))
}

/// The mechanisms every key of the card signs with.
pub const MECHANISMS: [CK_MECHANISM_TYPE; 4] = [
    CKM_ECDSA,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
];

/// DER of the named curve P-256 (prime256v1, 1.2.840.10045.3.1.7).
pub const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

/// How a key may be used, from its profile entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Only visible and usable after C_Login as the user (the ID PIN).
    pub private: bool,
    /// Every use needs its PIN (C_Login with CKU_CONTEXT_SPECIFIC).
    pub always_authenticate: bool,
}

/// An attribute's value, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    Value(Vec<u8>),
    /// The object has it, but it never leaves the card.
    Sensitive,
    /// The object has no such attribute.
    Invalid,
}

fn b(v: bool) -> Attr {
    Attr::Value(vec![if v { CK_TRUE } else { CK_FALSE }])
}

fn ul(v: CK_ULONG) -> Attr {
    Attr::Value(v.to_ne_bytes().to_vec())
}

fn bytes(v: &[u8]) -> Attr {
    Attr::Value(v.to_vec())
}

/// DER length octets.
fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..=0x7F => vec![n as u8],
        0x80..=0xFF => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend(der_len(content.len()));
    v.extend_from_slice(content);
    v
}

/// SubjectPublicKeyInfo of an uncompressed P-256 point.
pub fn spki(point: &[u8]) -> Vec<u8> {
    let ec_public_key = [0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
    let mut alg = ec_public_key.to_vec();
    alg.extend_from_slice(&P256_PARAMS);
    let mut bits = vec![0x00];
    bits.extend_from_slice(point);
    let mut body = der(0x30, &alg);
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

/// What the certificate says that PKCS#11 attributes repeat.
#[derive(Debug, Clone, Default)]
struct CertParts {
    subject: Vec<u8>,
    issuer: Vec<u8>,
    serial: Vec<u8>,
}

fn cert_parts(der_cert: &[u8]) -> Option<CertParts> {
    let (_, c) = x509_parser::parse_x509_certificate(der_cert).ok()?;
    Some(CertParts {
        subject: c.tbs_certificate.subject.as_raw().to_vec(),
        issuer: c.tbs_certificate.issuer.as_raw().to_vec(),
        serial: der(0x02, c.tbs_certificate.raw_serial()),
    })
}

/// Key `k`'s attribute `t` on an object of kind `kind`.
pub fn attribute(k: &CardKey, access: Access, kind: Kind, t: CK_ATTRIBUTE_TYPE) -> Attr {
    let id = [k.spec.reference];
    let parts = k.cert.as_deref().and_then(cert_parts).unwrap_or_default();
    let class = match kind {
        Kind::Certificate => CKO_CERTIFICATE,
        Kind::PublicKey => CKO_PUBLIC_KEY,
        Kind::PrivateKey => CKO_PRIVATE_KEY,
    };
    // Common to every object.
    match t {
        CKA_CLASS => return ul(class),
        CKA_TOKEN => return b(true),
        CKA_PRIVATE => return b(kind == Kind::PrivateKey && access.private),
        CKA_MODIFIABLE | CKA_COPYABLE | CKA_DESTROYABLE => return b(false),
        CKA_LABEL => return bytes(k.spec.name.as_bytes()),
        CKA_ID => return bytes(&id),
        CKA_SUBJECT => return bytes(&parts.subject),
        _ => {}
    }
    if kind == Kind::Certificate {
        let Some(cert) = &k.cert else {
            return Attr::Invalid;
        };
        return match t {
            CKA_CERTIFICATE_TYPE => ul(CKC_X_509),
            CKA_TRUSTED => b(false),
            // 1: the token's user's own certificate.
            CKA_CERTIFICATE_CATEGORY => ul(1),
            CKA_CHECK_VALUE => {
                let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert);
                bytes(d.as_ref().get(..3).unwrap_or_default())
            }
            CKA_START_DATE
            | CKA_END_DATE
            | CKA_URL
            | CKA_HASH_OF_SUBJECT_PUBLIC_KEY
            | CKA_HASH_OF_ISSUER_PUBLIC_KEY => bytes(&[]),
            CKA_JAVA_MIDP_SECURITY_DOMAIN => ul(0),
            CKA_ISSUER => bytes(&parts.issuer),
            CKA_SERIAL_NUMBER => bytes(&parts.serial),
            CKA_VALUE => bytes(cert),
            _ => Attr::Invalid,
        };
    }
    // Keys.
    match t {
        CKA_KEY_TYPE => return ul(CKK_EC),
        CKA_START_DATE | CKA_END_DATE => return bytes(&[]),
        CKA_DERIVE => return b(false),
        CKA_LOCAL => return b(true),
        CKA_KEY_GEN_MECHANISM => return ul(CKM_EC_KEY_PAIR_GEN),
        CKA_ALLOWED_MECHANISMS => {
            return Attr::Value(MECHANISMS.iter().flat_map(|m| m.to_ne_bytes()).collect())
        }
        CKA_EC_PARAMS => return bytes(&P256_PARAMS),
        CKA_EC_POINT => return bytes(&der(0x04, &k.point)),
        CKA_PUBLIC_KEY_INFO => return bytes(&spki(&k.point)),
        _ => {}
    }
    match (kind, t) {
        (Kind::PublicKey, CKA_VERIFY) => b(true),
        (Kind::PublicKey, CKA_ENCRYPT | CKA_VERIFY_RECOVER | CKA_WRAP | CKA_TRUSTED) => b(false),
        (Kind::PrivateKey, CKA_SIGN) => b(true),
        (
            Kind::PrivateKey,
            CKA_DECRYPT | CKA_SIGN_RECOVER | CKA_UNWRAP | CKA_EXTRACTABLE | CKA_WRAP_WITH_TRUSTED,
        ) => b(false),
        (Kind::PrivateKey, CKA_SENSITIVE | CKA_ALWAYS_SENSITIVE | CKA_NEVER_EXTRACTABLE) => b(true),
        (Kind::PrivateKey, CKA_ALWAYS_AUTHENTICATE) => b(access.always_authenticate),
        (Kind::PrivateKey, CKA_VALUE) => Attr::Sensitive,
        _ => Attr::Invalid,
    }
}

/// The object kinds a key has on the token (no certificate object when
/// its EF is empty).
pub fn kinds(k: &CardKey) -> Vec<Kind> {
    KINDS
        .iter()
        .copied()
        .filter(|kind| *kind != Kind::Certificate || k.cert.is_some())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardsmith_host::perso::profile::Profile;

    fn key() -> CardKey {
        let p = Profile::reference();
        CardKey {
            spec: p.keys[1].clone(),
            cert: None,
            point: [vec![0x04], vec![0x11; 64]].concat(),
        }
    }

    #[test]
    fn handles_round_trip_and_unknown_ones_are_refused() {
        for key in 0..2 {
            for kind in KINDS {
                let h = handle(key, kind);
                assert_ne!(h, 0);
                assert_eq!(parse_handle(h, 2), Some((key, kind)));
            }
        }
        assert_eq!(parse_handle(0, 2), None);
        assert_eq!(parse_handle(7, 2), None);
        assert_eq!(parse_handle(CK_ULONG::MAX, 2), None);
    }

    #[test]
    fn private_keys_are_handles_only() {
        let k = key();
        let a = Access {
            private: false,
            always_authenticate: true,
        };
        assert_eq!(
            attribute(&k, a, Kind::PrivateKey, CKA_VALUE),
            Attr::Sensitive
        );
        assert_eq!(attribute(&k, a, Kind::PrivateKey, CKA_SENSITIVE), b(true));
        assert_eq!(
            attribute(&k, a, Kind::PrivateKey, CKA_EXTRACTABLE),
            b(false)
        );
        assert_eq!(
            attribute(&k, a, Kind::PrivateKey, CKA_ALWAYS_AUTHENTICATE),
            b(true)
        );
        assert_eq!(attribute(&k, a, Kind::PrivateKey, CKA_ID), bytes(&[2]));
        assert_eq!(
            attribute(&k, a, Kind::PrivateKey, CKA_LABEL),
            bytes(b"signature")
        );
        assert_eq!(attribute(&k, a, Kind::PublicKey, CKA_VALUE), Attr::Invalid);
        assert_eq!(kinds(&k), vec![Kind::PublicKey, Kind::PrivateKey]);
    }

    #[test]
    fn the_public_key_info_is_the_spki_openssl_reads() {
        let k = key();
        let info = spki(&k.point);
        assert_eq!(info.len(), 91);
        assert_eq!(&info[..4], &[0x30, 0x59, 0x30, 0x13]);
        let point = attribute(
            &k,
            Access {
                private: true,
                always_authenticate: false,
            },
            Kind::PublicKey,
            CKA_EC_POINT,
        );
        assert_eq!(
            point,
            Attr::Value([vec![0x04, 65], k.point.clone()].concat())
        );
    }
}
