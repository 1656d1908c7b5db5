//! X.509 v2 certificate revocation lists (RFC 5280 section 5), built from
//! `x509-cert`'s `CertificateList` and signed with the CA key (ECDSA P-256
//! SHA-256, ring).
//!
//! ```text
//! CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }
//! TBSCertList ::= SEQUENCE {
//!     version v2(1), signature, issuer, thisUpdate, nextUpdate,
//!     revokedCertificates SEQUENCE OF SEQUENCE {
//!         userCertificate, revocationDate, crlEntryExtensions { reasonCode } }
//!         -- left out when nothing is revoked
//!     crlExtensions [0] { authorityKeyIdentifier, cRLNumber } }
//! ```

use const_oid::db::rfc5280::{ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS};
use const_oid::db::rfc5912::ECDSA_WITH_SHA_256;
use der::asn1::Any;
use der::{Decode, Encode, Tag};
use ring::rand::SystemRandom;
use ring::signature::EcdsaKeyPair;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Version;

use super::csr::algorithm;
use super::x509::{authority_key_id, extension, pem_encode, sign, time};
use super::PkiError;
use crate::register::journal::RevocationReason;

/// One revoked certificate on a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlEntry {
    /// The certificate's serial number, big-endian magnitude.
    pub serial: Vec<u8>,
    /// Unix seconds.
    pub revoked_at: i64,
    pub reason: RevocationReason,
}

/// What one CRL says, besides its entries.
pub(crate) struct CrlTemplate<'a> {
    pub issuer_name: &'a [u8],
    pub issuer_point: &'a [u8],
    pub number: u64,
    pub this_update: i64,
    pub next_update: i64,
    pub entries: &'a [CrlEntry],
}

/// Lower-case hex serial (as the register keeps it) to its magnitude.
pub fn serial_from_hex(hex: &str) -> Result<Vec<u8>, PkiError> {
    let bad = || PkiError::InvalidInput {
        what: "certificate serial",
        reason: format!("{hex:?} is not a serial number in hexadecimal (e.g. 4f1a…)"),
    };
    if hex.is_empty() || hex.len() > 40 || !hex.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

/// The TBSCertList of `t` (what the CA key signs).
fn tbs_cert_list(t: &CrlTemplate<'_>) -> Result<TbsCertList, PkiError> {
    if t.next_update <= t.this_update {
        return Err(PkiError::InvalidInput {
            what: "CRL next update",
            reason: format!(
                "nextUpdate {} is not after thisUpdate {}",
                crate::utc::format_unix(t.next_update),
                crate::utc::format_unix(t.this_update)
            ),
        });
    }
    let mut revoked = Vec::with_capacity(t.entries.len());
    for e in t.entries {
        let serial = SerialNumber::new(&e.serial).map_err(|err| PkiError::InvalidInput {
            what: "certificate serial",
            reason: format!("{}: {err}", crate::hex::lower(&e.serial)),
        })?;
        let reason = Any::new(Tag::Enumerated, [e.reason.code()].as_slice())?;
        revoked.push(RevokedCert {
            serial_number: serial,
            revocation_date: time(e.revoked_at)?,
            crl_entry_extensions: Some(vec![extension(ID_CE_CRL_REASONS, false, &reason)?]),
        });
    }
    Ok(TbsCertList {
        version: Version::V2,
        signature: algorithm(ECDSA_WITH_SHA_256),
        issuer: Name::from_der(t.issuer_name).map_err(|e| PkiError::InvalidInput {
            what: "CRL issuer",
            reason: e.to_string(),
        })?,
        this_update: time(t.this_update)?,
        next_update: Some(time(t.next_update)?),
        revoked_certificates: (!revoked.is_empty()).then_some(revoked),
        crl_extensions: Some(vec![
            extension(
                ID_CE_AUTHORITY_KEY_IDENTIFIER,
                false,
                &authority_key_id(t.issuer_point)?,
            )?,
            extension(ID_CE_CRL_NUMBER, false, &t.number)?,
        ]),
    })
}

/// The signed DER CRL.
pub(crate) fn sign_crl(
    t: &CrlTemplate<'_>,
    key: &EcdsaKeyPair,
    rng: &SystemRandom,
) -> Result<Vec<u8>, PkiError> {
    let tbs = tbs_cert_list(t)?;
    let signature = sign(&tbs.to_der()?, key, rng, "CRL signing failed")?;
    let signed = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: algorithm(ECDSA_WITH_SHA_256),
        signature,
    };
    Ok(signed.to_der()?)
}

/// PEM (`X509 CRL`) of a DER CRL.
pub fn crl_pem(crl_der: &[u8]) -> String {
    pem_encode("X509 CRL", crl_der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::CertificateAuthority;
    use crate::pki::test_support::new_ca;
    use crate::register::journal::{Journal, Who};
    use crate::register::sqlite::SqliteJournal;
    use std::sync::Arc;
    use std::time::Duration;
    use x509_parser::extensions::ParsedExtension;
    use x509_parser::prelude::FromDer;
    use x509_parser::revocation_list::CertificateRevocationList;

    fn who() -> Who {
        Who {
            station: "ca1".into(),
            operator: "supervisor".into(),
            reader: None,
        }
    }

    #[test]
    fn serials_in_hex_only() {
        assert_eq!(serial_from_hex("4f01").unwrap(), vec![0x4f, 0x01]);
        for bad in ["", "4f0", "zz", "4f:01", &"ab".repeat(21)] {
            let e = serial_from_hex(bad).unwrap_err().to_string();
            assert!(e.contains("certificate serial"), "{e}");
        }
    }

    #[test]
    fn crl_fields_read_back() {
        let (dir, ca) = new_ca();
        let j: Arc<dyn Journal> =
            Arc::new(SqliteJournal::open(&dir.path().join("j.sqlite")).unwrap());
        let ca = ca.with_register(j.clone());
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
        let ca_cert = crate::pki::check::parse_cert(ca.ca_certificate(), "CA").unwrap();
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
        let ca_point =
            crate::pki::csr::parse_p256_spki(ca_cert.tbs_certificate.subject_pki.raw).unwrap();
        assert_eq!(
            aki.key_identifier.as_ref().unwrap().0,
            crate::pki::x509::key_identifier(&ca_point).as_slice()
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
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            &ca_point,
        )
        .verify(crl.tbs_cert_list.as_ref(), &crl.signature_value.data)
        .expect("signed by the CA key");
        assert!(j.audit().unwrap().intact);
    }

    #[test]
    fn empty_crl_leaves_the_list_out_and_bad_validity_is_refused() {
        let (dir, ca) = new_ca();
        let j: Arc<dyn Journal> =
            Arc::new(SqliteJournal::open(&dir.path().join("j.sqlite")).unwrap());
        let ca = ca.with_register(j);
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

    #[test]
    fn without_a_register_nothing_is_revoked() {
        let (_d, ca) = new_ca();
        let e = ca
            .revoke(&who(), "01", "C", RevocationReason::Superseded)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no register"), "{e}");
    }
}
