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
use super::revocation::RevocationReason;
use super::x509::{authority_key_id, extension, pem_encode, sign, time};
use super::PkiError;

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
    use crate::ca::CertificateAuthority;
    use crate::revocation::Who;
    use crate::test_support::new_ca;

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
    fn without_a_register_nothing_is_revoked() {
        let (_d, ca) = new_ca();
        let e = ca
            .revoke(&who(), "01", "C", RevocationReason::Superseded)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no register"), "{e}");
    }
}
