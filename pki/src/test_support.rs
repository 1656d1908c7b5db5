//! Shared test fixtures: a ring key pair plays the card.

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::ca::{IssueTerms, LocalCa};
use super::csr::{assemble_csr, request_info_der, SubjectName};
use super::profile::CertPolicy;

/// A fresh P-256 key pair producing raw `r‖s` signatures, like the card.
pub fn card_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

pub fn card_point(key: &EcdsaKeyPair) -> &[u8] {
    key.public_key().as_ref()
}

/// What the card does: SHA-256 over the message, ECDSA, raw 64-byte r‖s.
pub fn card_sign(key: &EcdsaKeyPair, msg: &[u8]) -> Vec<u8> {
    let sig = key.sign(&SystemRandom::new(), msg).unwrap();
    assert_eq!(sig.as_ref().len(), 64);
    sig.as_ref().to_vec()
}

pub fn subject() -> SubjectName {
    SubjectName::for_national_code("Reza", "Ahmadi", "0012345679").unwrap()
}

pub fn make_csr(key: &EcdsaKeyPair, subject: &SubjectName) -> Vec<u8> {
    let info = request_info_der(subject, card_point(key)).unwrap();
    let raw = card_sign(key, &info);
    assemble_csr(&info, &raw).unwrap()
}

pub fn new_ca() -> (tempfile::TempDir, LocalCa) {
    let dir = tempfile::tempdir().unwrap();
    let ca = LocalCa::open_or_create(&dir.path().join("ca")).unwrap();
    (dir, ca)
}

pub const TEST_CRL: &str = "http://pki.national-id.example/crl/card-ca.crl";
pub const TEST_POLICY: &str = "2.999.364.1.1";
pub const TEST_CPS: &str = "https://pki.national-id.example/cps";

/// Terms ending at `not_after` (Unix seconds), with a CRL distribution
/// point and a policy with its CPS.
pub fn terms_ending(not_after: i64) -> IssueTerms {
    IssueTerms {
        not_after,
        crl_distribution_points: vec![TEST_CRL.to_string()],
        policy: Some(CertPolicy {
            oid: TEST_POLICY.to_string(),
            cps_uri: Some(TEST_CPS.to_string()),
        }),
    }
}

/// Terms for a certificate that ends 5 × 365 days from now.
pub fn terms() -> IssueTerms {
    terms_ending(crate::utc::unix_secs(std::time::SystemTime::now()) + 5 * 365 * 86_400)
}
