//! Property tests: mutated SOD / certificate / CSR bytes never panic, and a
//! mutated input that still verifies vouches for nothing new.

use std::sync::OnceLock;
use std::time::SystemTime;

use proptest::prelude::*;

use super::ca::{CertificateAuthority, LocalCa};
use super::check::{check_card_terms, check_certificate, describe_certificate, CardTerms};
use super::csr::{der_to_raw_sig, verify_csr, SubjectName};
use super::profile::CertProfile;
use super::sod::{build_sod, verify_sod};
use super::test_support::{card_key, card_point, make_csr, new_ca, subject, terms};

struct Fixture {
    _dir: tempfile::TempDir,
    ca: LocalCa,
    point: Vec<u8>,
    csr: Vec<u8>,
    cert: Vec<u8>,
    sod: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (dir, ca) = new_ca();
        let key = card_key();
        let csr = make_csr(&key, &subject());
        let cert = ca
            .issue(&csr, CertProfile::Authentication, &terms())
            .unwrap();
        let sod = build_sod(&[(1, b"dg1".as_slice()), (2, b"dg2")], ca.document_signer()).unwrap();
        Fixture {
            point: card_point(&key).to_vec(),
            _dir: dir,
            ca,
            csr,
            cert,
            sod,
        }
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Xor(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Delete(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..).prop_map(|(i, b)| Mutation::Xor(i, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<usize>().prop_map(Mutation::Delete),
    ]
}

fn apply(base: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut v = base.to_vec();
    for m in muts {
        let n = v.len().max(1);
        match *m {
            Mutation::Xor(i, b) if !v.is_empty() => v[i % n] ^= b,
            Mutation::Set(i, b) if !v.is_empty() => v[i % n] = b,
            Mutation::Truncate(i) => v.truncate(i % n),
            Mutation::Insert(i, b) => v.insert(i % (v.len() + 1), b),
            Mutation::Delete(i) if !v.is_empty() => {
                v.remove(i % n);
            }
            _ => {}
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_sod_never_panics(muts in prop::collection::vec(mutation(), 1..4)) {
        let f = fixture();
        let m = apply(&f.sod, &muts);
        let res = verify_sod(&m, &f.ca.chain(), SystemTime::now());
        if let Ok(c) = res {
            let orig = verify_sod(&f.sod, &f.ca.chain(), SystemTime::now()).unwrap();
            prop_assert_eq!(c.hashes, orig.hashes);
        }
        // Without the trust anchor it must never succeed.
        prop_assert!(verify_sod(&m, &[], SystemTime::now()).is_err());
    }

    #[test]
    fn mutated_certificate_never_panics(muts in prop::collection::vec(mutation(), 1..4)) {
        let f = fixture();
        let m = apply(&f.cert, &muts);
        let _ = describe_certificate(&m);
        let res = check_certificate(&m, &f.point, CertProfile::Authentication, &f.ca.chain(), SystemTime::now());
        if m != f.cert {
            // Any change to the signed bytes breaks the CA signature; a change
            // only to the outer encoding may still parse to the same TBS.
            if res.is_ok() {
                let a = describe_certificate(&m).unwrap();
                let b = describe_certificate(&f.cert).unwrap();
                prop_assert_eq!(a.subject, b.subject);
                prop_assert_eq!(a.serial_hex, b.serial_hex);
            }
        }
        // The card's rules (end, CRL, policy) on mutated bytes.
        let t = terms();
        let policy = t.policy.clone().unwrap();
        let rules = CardTerms {
            card_end: t.not_after,
            card_expiry: "x",
            max_days_before: 1,
            crl_distribution_points: &t.crl_distribution_points,
            policy: &policy,
        };
        let _ = check_card_terms(&m, &rules);
        // Mutated CA chain.
        let _ = check_certificate(&f.cert, &f.point, CertProfile::Authentication, &[m], SystemTime::now());
    }

    #[test]
    fn mutated_csr_never_panics(muts in prop::collection::vec(mutation(), 1..4)) {
        let f = fixture();
        let m = apply(&f.csr, &muts);
        if let Ok(info) = verify_csr(&m) {
            prop_assert_eq!(info.public_point, f.point.clone());
            prop_assert_eq!(info.subject, subject());
        }
        let _ = f.ca.issue(&m, CertProfile::Signature, &terms());
        let _ = SubjectName::from_der(&m);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        let f = fixture();
        let _ = verify_sod(&data, &f.ca.chain(), SystemTime::now());
        let _ = verify_csr(&data);
        let _ = describe_certificate(&data);
        let _ = der_to_raw_sig(&data);
        let _ = check_certificate(&data, &f.point, CertProfile::Signature, &f.ca.chain(), SystemTime::now());
    }
}
