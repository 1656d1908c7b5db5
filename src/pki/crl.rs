//! X.509 v2 certificate revocation lists (RFC 5280 section 5), written with
//! the crate's DER writer and signed with the CA key (ECDSA P-256 SHA-256).
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

use ring::rand::SystemRandom;
use ring::signature::EcdsaKeyPair;

use super::der;
use super::PkiError;
use crate::line::journal::RevocationReason;

/// cRLNumber (RFC 5280 5.2.3).
pub(crate) const EXT_CRL_NUMBER: &[u64] = &[2, 5, 29, 20];
/// reasonCode CRL entry extension (RFC 5280 5.3.1).
pub(crate) const EXT_REASON_CODE: &[u64] = &[2, 5, 29, 21];
const TAG_ENUMERATED: u8 = 0x0a;

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

fn extension(arcs: &[u64], value: &[u8]) -> Vec<u8> {
    der::seq(&[&der::oid(arcs), &der::octet_string(value)])
}

/// Lower-case hex serial (as the register keeps it) to its magnitude.
pub fn serial_from_hex(hex: &str) -> Result<Vec<u8>, PkiError> {
    let bad = || PkiError::InvalidInput {
        what: "certificate serial",
        reason: format!("{hex:?} is not a serial number in hexadecimal (e.g. 4f1a…)"),
    };
    if hex.is_empty() || hex.len() > 40 || hex.len() % 2 != 0 {
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

/// The signed DER CRL.
pub(crate) fn sign_crl(
    t: &CrlTemplate<'_>,
    key: &EcdsaKeyPair,
    rng: &SystemRandom,
) -> Result<Vec<u8>, PkiError> {
    if t.next_update <= t.this_update {
        return Err(PkiError::InvalidInput {
            what: "CRL next update",
            reason: format!(
                "nextUpdate {} is not after thisUpdate {}",
                der::format_unix(t.next_update),
                der::format_unix(t.this_update)
            ),
        });
    }
    let sig_alg = der::algorithm_id(der::oids::ECDSA_WITH_SHA256);
    let entries: Vec<Vec<u8>> = t
        .entries
        .iter()
        .map(|e| {
            let reason = der::tlv(TAG_ENUMERATED, &[e.reason.code()]);
            der::seq(&[
                &der::uint(&e.serial),
                &der::time(e.revoked_at),
                &der::seq(&[&extension(EXT_REASON_CODE, &reason)]),
            ])
        })
        .collect();
    let entry_refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
    let aki = extension(
        der::oids::EXT_AUTHORITY_KEY_ID,
        &der::seq(&[&der::tlv(
            der::ctx_prim(0),
            &super::ca::key_identifier(t.issuer_point),
        )]),
    );
    let number = extension(EXT_CRL_NUMBER, &der::uint_small(t.number));
    let exts = der::tlv(der::ctx_cons(0), &der::seq(&[&aki, &number]));
    let version = der::uint_small(1);
    let this_update = der::time(t.this_update);
    let next_update = der::time(t.next_update);
    let revoked = der::seq(&entry_refs);
    let mut parts: Vec<&[u8]> = vec![&version, &sig_alg, t.issuer_name, &this_update, &next_update];
    if !entries.is_empty() {
        parts.push(&revoked);
    }
    parts.push(&exts);
    let tbs = der::seq(&parts);
    let sig = key
        .sign(rng, &tbs)
        .map_err(|_| PkiError::Crypto("CRL signing failed"))?;
    Ok(der::seq(&[&tbs, &sig_alg, &der::bit_string(0, sig.as_ref())]))
}

/// PEM (`X509 CRL`) of a DER CRL.
pub fn crl_pem(crl_der: &[u8]) -> String {
    der::pem_encode("X509 CRL", crl_der)
}
