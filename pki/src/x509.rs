//! The X.509 building blocks that the CA ([`super::ca`]), the CRL
//! ([`super::crl`]) and the EF.SOD writer ([`super::sod`]) share: PEM
//! armour, key identifiers, extensions, RFC 5280 times and ECDSA signature
//! values. A leaf, so that none of them has to import another for these.

use std::time::Duration;

use der::asn1::{BitString, GeneralizedTime, ObjectIdentifier, OctetString, UtcTime};
use der::{DateTime, Encode};
use ring::digest;
use ring::rand::SystemRandom;
use ring::signature::EcdsaKeyPair;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::ext::Extension;
use x509_cert::time::Time;

use super::PkiError;

/// PEM armour (RFC 7468) with 64-character lines.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// RFC 7093 method 1 key identifier.
pub(crate) fn key_identifier(point: &[u8]) -> Vec<u8> {
    let d = digest::digest(&digest::SHA256, point);
    d.as_ref().iter().take(20).copied().collect()
}

/// An extension whose value is the DER of `value`.
pub(crate) fn extension(
    oid: ObjectIdentifier,
    critical: bool,
    value: &impl Encode,
) -> Result<Extension, PkiError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// authorityKeyIdentifier with the issuer's key identifier only.
pub(crate) fn authority_key_id(issuer_point: &[u8]) -> Result<AuthorityKeyIdentifier, PkiError> {
    Ok(AuthorityKeyIdentifier {
        key_identifier: Some(key_id(issuer_point)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    })
}

pub(crate) fn key_id(point: &[u8]) -> Result<OctetString, PkiError> {
    Ok(OctetString::new(key_identifier(point))?)
}

/// Time as RFC 5280 wants it: UTCTime through 2049, GeneralizedTime after.
pub(crate) fn time(unix: i64) -> Result<Time, PkiError> {
    let bad = |reason: String| PkiError::InvalidInput {
        what: "time",
        reason: format!("{}: {reason}", crate::utc::format_unix(unix)),
    };
    let secs = u64::try_from(unix).map_err(|_| bad("before 1970".into()))?;
    let dt =
        DateTime::from_unix_duration(Duration::from_secs(secs)).map_err(|e| bad(e.to_string()))?;
    if dt.year() < 2050 {
        UtcTime::from_date_time(dt)
            .map(Time::UtcTime)
            .map_err(|e| bad(e.to_string()))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
    }
}

/// ECDSA P-256 SHA-256 over `tbs` with `key`, as a signature BIT STRING.
pub(crate) fn sign(
    tbs: &[u8],
    key: &EcdsaKeyPair,
    rng: &SystemRandom,
    what: &'static str,
) -> Result<BitString, PkiError> {
    let sig = key.sign(rng, tbs).map_err(|_| PkiError::Crypto(what))?;
    Ok(BitString::from_bytes(sig.as_ref())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_base64() {
        let p = pem_encode("X", b"foobar!");
        assert_eq!(p, "-----BEGIN X-----\nZm9vYmFyIQ==\n-----END X-----\n");
        assert!(pem_encode("X", b"fo").contains("Zm8=\n"));
    }

    #[test]
    fn time_encoding_round_trip() {
        for t in [
            1_700_000_000i64,
            2_524_608_000, /* 2050-01-01 */
            2_524_607_999,
        ] {
            let enc = time(t).unwrap();
            assert_eq!(enc.to_unix_duration().as_secs() as i64, t);
        }
        assert!(matches!(time(2_524_608_000).unwrap(), Time::GeneralTime(_)));
        assert!(matches!(time(2_524_607_999).unwrap(), Time::UtcTime(_)));
        assert!(time(-1).is_err());
    }
}
