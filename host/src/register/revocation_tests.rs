//! The CA with the register behind it: revocations kept once, CRL numbers
//! taken in order, and the CRL listing exactly what the register holds.

use crate::pki::ca::{CertificateAuthority, LocalCa};
use crate::pki::revocation::{RevocationReason, Who};
use crate::register::journal::{Journal, JournalRevocations};
use crate::register::sqlite::SqliteJournal;
use std::sync::Arc;
use std::time::Duration;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

fn new_ca() -> (tempfile::TempDir, LocalCa) {
    let dir = tempfile::tempdir().unwrap();
    let ca = LocalCa::open_or_create(&dir.path().join("ca")).unwrap();
    (dir, ca)
}

fn who() -> Who {
    Who {
        station: "ca1".into(),
        operator: "supervisor".into(),
        reader: None,
    }
}

/// RFC 7093 method 1: the first 160 bits of SHA-256 over the key.
fn key_identifier(point: &[u8]) -> Vec<u8> {
    let d = ring::digest::digest(&ring::digest::SHA256, point);
    d.as_ref()[..20].to_vec()
}

#[test]
fn crl_fields_read_back() {
    let (dir, ca) = new_ca();
    let j: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&dir.path().join("j.sqlite")).unwrap());
    let ca = ca.with_register(Arc::new(JournalRevocations(j.clone())));
    let w = who();
    let a = ca
        .revoke(&w, "4a0102", "CARD1", RevocationReason::KeyCompromise)
        .unwrap();
    // High bit set: the INTEGER needs a leading zero octet.
    ca.revoke(&w, "c0ffee", "CARD2", RevocationReason::Superseded)
        .unwrap();
    ca.revoke(&w, "0d", "CARD3", RevocationReason::CessationOfOperation)
        .unwrap();
    // Once per certificate: the first reason stands.
    let again = ca
        .revoke(&w, "4A0102", "CARD1", RevocationReason::Superseded)
        .unwrap();
    assert_eq!(again, a);
    assert_eq!(a.reason, RevocationReason::KeyCompromise);

    let now = 1_800_000_000;
    let (first, _) = ca.crl_at(&w, now, Duration::from_secs(3600)).unwrap();
    let (issued, der) = ca.crl_at(&w, now, Duration::from_secs(7 * 86_400)).unwrap();
    assert_eq!((first.number, issued.number), (1, 2));
    assert_eq!(issued.entries, 3);

    let (rest, crl) = CertificateRevocationList::from_der(&der).unwrap();
    assert!(rest.is_empty());
    assert_eq!(crl.version().map(|v| v.0), Some(1));
    assert_eq!(
        crl.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.2"
    );
    assert_eq!(
        crl.tbs_cert_list.signature.algorithm.to_id_string(),
        "1.2.840.10045.4.3.2"
    );
    let (_, ca_cert) = x509_parser::parse_x509_certificate(ca.ca_certificate()).unwrap();
    assert_eq!(crl.issuer().as_raw(), ca_cert.subject().as_raw());
    assert_eq!(crl.last_update().timestamp(), now);
    assert_eq!(crl.next_update().unwrap().timestamp(), now + 7 * 86_400);
    assert_eq!(crl.crl_number().unwrap().to_string(), "2");
    let aki = crl
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => Some(a),
            _ => None,
        })
        .expect("authorityKeyIdentifier");
    let ca_point = ca_cert
        .tbs_certificate
        .subject_pki
        .subject_public_key
        .data
        .to_vec();
    assert_eq!(
        aki.key_identifier.as_ref().unwrap().0,
        key_identifier(&ca_point).as_slice()
    );
    let mut got: Vec<(String, u8, i64)> = crl
        .iter_revoked_certificates()
        .map(|r| {
            (
                crate::hex::lower(r.serial().to_bytes_be().as_slice()),
                r.reason_code().unwrap().1 .0,
                r.revocation_date.timestamp(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, u8, i64)> = j
        .revocations(&ca.issuer().unwrap())
        .unwrap()
        .iter()
        .map(|r| (r.serial.clone(), r.reason.code(), r.revoked_at / 1000))
        .collect();
    want.sort();
    assert_eq!(
        got.iter().map(|g| (&g.0[..], g.1)).collect::<Vec<_>>(),
        vec![("0d", 5), ("4a0102", 1), ("c0ffee", 4)]
    );
    assert_eq!(got, want);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &ca_point)
        .verify(crl.tbs_cert_list.as_ref(), &crl.signature_value.data)
        .expect("signed by the CA key");
    assert!(j.audit().unwrap().intact);
}

#[test]
fn empty_crl_leaves_the_list_out_and_bad_validity_is_refused() {
    let (dir, ca) = new_ca();
    let j: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&dir.path().join("j.sqlite")).unwrap());
    let ca = ca.with_register(Arc::new(JournalRevocations(j)));
    let (_, der) = ca.crl(&who(), Duration::from_secs(60)).unwrap();
    let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
    assert_eq!(crl.iter_revoked_certificates().count(), 0);
    let e = ca
        .crl(&who(), Duration::from_secs(0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("CRL next update"), "{e}");
    let e = ca
        .crl(&who(), Duration::from_secs(100 * 365 * 86_400))
        .unwrap_err()
        .to_string();
    assert!(e.contains("end of the CA certificate"), "{e}");
}
