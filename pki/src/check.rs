//! Checks of a certificate returned by a CA before it is written to the card,
//! and a human-readable summary for display.
//!
//! Parsing is done by `x509-parser`; signatures are verified with `ring`
//! (ECDSA P-256/P-384 with SHA-256/384, RSA PKCS#1 v1.5 with SHA-256/384/512
//! for CA keys; card keys must be P-256). Names are compared as DER bytes,
//! which is exact for CAs that copy their subject into the issuer field (as
//! RFC 5280 §4.1.2.4 recommends).

use std::fmt;
use std::time::SystemTime;

use ring::digest;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::csr::parse_p256_spki;
use super::oid::oid_to_string;
use super::profile::{CertPolicy, CertProfile};
use const_oid::db::rfc5280::{
    ID_CE_CERTIFICATE_POLICIES, ID_CE_CRL_DISTRIBUTION_POINTS, ID_QT_CPS,
};
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1,
    SECP_384_R_1, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
};
use der::asn1::{Ia5StringRef, ObjectIdentifier};
use der::{Decode, Tagged};

/// Why a certificate is not acceptable. Each variant names the certificate
/// it is about (`which`) where more than one is involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertProblem {
    #[error("{which} could not be parsed: expected {expected}; {detail}")]
    Malformed {
        which: String,
        expected: String,
        detail: String,
    },
    #[error("no CA certificates given to check against")]
    EmptyChain,
    #[error("{which}: unsupported public key: {detail}")]
    UnsupportedKey { which: String, detail: String },
    #[error("certificate public key differs from the card's key: card SHA-256 {card}, certificate SHA-256 {certificate}")]
    PublicKeyMismatch { card: String, certificate: String },
    #[error("keyUsage {found} is wrong for the {profile} profile: expected {expected}")]
    KeyUsage {
        profile: CertProfile,
        found: String,
        expected: String,
    },
    #[error("extendedKeyUsage {found} is wrong for the {profile} profile: expected {expected}")]
    ExtendedKeyUsage {
        profile: CertProfile,
        found: String,
        expected: String,
    },
    #[error("{which} is marked as a CA (basicConstraints cA=TRUE) but should be an end-entity certificate")]
    UnexpectedCa { which: String },
    #[error("{which} is not yet valid: notBefore {not_before}, now {now}")]
    NotYetValid {
        which: String,
        not_before: String,
        now: String,
    },
    #[error("{which} has expired: notAfter {not_after}, now {now}")]
    Expired {
        which: String,
        not_after: String,
        now: String,
    },
    #[error("{which}: issuer \"{issuer}\" does not match the CA subject \"{ca_subject}\"")]
    IssuerMismatch {
        which: String,
        issuer: String,
        ca_subject: String,
    },
    #[error("{which}: signature does not verify with the key of \"{signer}\": {detail}")]
    BadSignature {
        which: String,
        signer: String,
        detail: String,
    },
    #[error("{which} (\"{subject}\") is not a CA: {detail}")]
    NotACa {
        which: String,
        subject: String,
        detail: String,
    },
    #[error("{which} (\"{subject}\") is the last in the chain but is not a valid self-signed root: {detail}")]
    RootNotSelfSigned {
        which: String,
        subject: String,
        detail: String,
    },
    #[error("the certificate outlives the card: the certificate ends {not_after}, the card expires {card_expiry}")]
    OutlivesCard {
        not_after: String,
        card_expiry: String,
    },
    #[error("the certificate ends {days} days before the card, and the profile allows at most {allowed}: the certificate ends {not_after}, the card expires {card_expiry}")]
    EndsTooEarly {
        days: i64,
        allowed: String,
        not_after: String,
        card_expiry: String,
    },
    #[error("CRL distribution points are {found}, the profile says {expected}")]
    CrlDistributionPoints { found: String, expected: String },
    #[error("certificate policies are {found}, the profile says {expected}")]
    Policies { found: String, expected: String },
}

/// Human-readable summary of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    /// Serial number as lower-case hex of the DER INTEGER content.
    pub serial_hex: String,
    pub not_before: String,
    pub not_after: String,
    pub not_before_unix: i64,
    pub not_after_unix: i64,
    /// keyUsage bit names (RFC 5280 spelling), empty if absent.
    pub key_usage: Vec<&'static str>,
    /// extKeyUsage purposes (names for common ones, else dotted OIDs).
    pub extended_key_usage: Vec<String>,
    pub is_ca: bool,
    /// cRLDistributionPoints URIs, empty if absent.
    pub crl_distribution_points: Vec<String>,
    /// certificatePolicies, each `OID` or `OID (CPS uri)`; empty if absent.
    pub policies: Vec<String>,
    /// SHA-256 of the whole certificate, `AB:CD:…`.
    pub sha256_fingerprint: String,
}

impl fmt::Display for CertSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Subject:     {}", self.subject)?;
        writeln!(f, "Issuer:      {}", self.issuer)?;
        writeln!(f, "Serial:      {}", self.serial_hex)?;
        writeln!(f, "Valid from:  {}", self.not_before)?;
        writeln!(f, "Valid until: {}", self.not_after)?;
        writeln!(f, "Key usage:   {}", list(&self.key_usage))?;
        writeln!(f, "Ext. usage:  {}", list(&self.extended_key_usage))?;
        writeln!(f, "CA:          {}", if self.is_ca { "yes" } else { "no" })?;
        writeln!(f, "CRL:         {}", list(&self.crl_distribution_points))?;
        writeln!(f, "Policy:      {}", list(&self.policies))?;
        write!(f, "SHA-256:     {}", self.sha256_fingerprint)
    }
}

fn list<S: AsRef<str>>(v: &[S]) -> String {
    if v.is_empty() {
        "(none)".to_string()
    } else {
        v.iter().map(|s| s.as_ref()).collect::<Vec<_>>().join(", ")
    }
}

/// Parses one DER certificate (no trailing data).
pub(crate) fn parse_cert<'a>(
    der: &'a [u8],
    which: &str,
) -> Result<X509Certificate<'a>, CertProblem> {
    let malformed = |detail: String| CertProblem::Malformed {
        which: which.to_string(),
        expected: "a single DER X.509 Certificate (RFC 5280)".to_string(),
        detail,
    };
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => {
            if cert.signature_algorithm != cert.tbs_certificate.signature {
                return Err(malformed(
                    "signatureAlgorithm differs from tbsCertificate.signature".to_string(),
                ));
            }
            Ok(cert)
        }
        Ok((rest, _)) => Err(malformed(format!("{} bytes of trailing data", rest.len()))),
        Err(e) => Err(malformed(e.to_string())),
    }
}

fn subject_str(c: &X509Certificate<'_>) -> String {
    c.subject().to_string()
}

/// SHA-256 of a public key, hex.
fn key_fingerprint(point: &[u8]) -> String {
    crate::hex::lower(digest::digest(&digest::SHA256, point).as_ref())
}

/// Verifies `child`'s signature with `issuer`'s public key.
pub(crate) fn verify_signed_by(
    child: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<(), String> {
    let alg_oid = child.signature_algorithm.algorithm.as_bytes();
    let (key_alg, curve, key) = parse_any_spki(issuer.tbs_certificate.subject_pki.raw)?;
    let is = |want: ObjectIdentifier, oid: &[u8]| want.as_bytes() == oid;
    let ec = is(ID_EC_PUBLIC_KEY, &key_alg);
    let p256 = curve.as_deref().is_some_and(|c| is(SECP_256_R_1, c));
    let p384 = curve.as_deref().is_some_and(|c| is(SECP_384_R_1, c));
    let rsa = is(RSA_ENCRYPTION, &key_alg);
    let alg: &'static dyn VerificationAlgorithm = if is(ECDSA_WITH_SHA_256, alg_oid) && ec && p256 {
        &signature::ECDSA_P256_SHA256_ASN1
    } else if is(ECDSA_WITH_SHA_256, alg_oid) && ec && p384 {
        &signature::ECDSA_P384_SHA256_ASN1
    } else if is(ECDSA_WITH_SHA_384, alg_oid) && ec && p256 {
        &signature::ECDSA_P256_SHA384_ASN1
    } else if is(ECDSA_WITH_SHA_384, alg_oid) && ec && p384 {
        &signature::ECDSA_P384_SHA384_ASN1
    } else if is(SHA_256_WITH_RSA_ENCRYPTION, alg_oid) && rsa {
        &signature::RSA_PKCS1_2048_8192_SHA256
    } else if is(SHA_384_WITH_RSA_ENCRYPTION, alg_oid) && rsa {
        &signature::RSA_PKCS1_2048_8192_SHA384
    } else if is(SHA_512_WITH_RSA_ENCRYPTION, alg_oid) && rsa {
        &signature::RSA_PKCS1_2048_8192_SHA512
    } else {
        return Err(format!(
            "unsupported combination of signature algorithm {} and issuer key algorithm {}",
            oid_to_string(alg_oid).unwrap_or_default(),
            oid_to_string(&key_alg).unwrap_or_default()
        ));
    };
    if child.signature_value.unused_bits != 0 {
        return Err("signature BIT STRING has unused bits".into());
    }
    UnparsedPublicKey::new(alg, key)
        .verify(
            child.tbs_certificate.as_ref(),
            child.signature_value.data.as_ref(),
        )
        .map_err(|_| "signature value is not valid for the TBS certificate".to_string())
}

/// Algorithm OID content, named curve OID content if any, key bits.
type SpkiParts = (Vec<u8>, Option<Vec<u8>>, Vec<u8>);

fn parse_any_spki(spki: &[u8]) -> Result<SpkiParts, String> {
    let s = spki::SubjectPublicKeyInfoRef::from_der(spki)
        .map_err(|e| format!("issuer SubjectPublicKeyInfo: {e}"))?;
    let curve = match s.algorithm.parameters {
        Some(p) if p.tag() == der::Tag::ObjectIdentifier => Some(
            p.decode_as::<ObjectIdentifier>()
                .map_err(|e| format!("issuer key curve: {e}"))?
                .as_bytes()
                .to_vec(),
        ),
        _ => None,
    };
    match s.subject_public_key.as_bytes() {
        Some(key) => Ok((s.algorithm.oid.as_bytes().to_vec(), curve, key.to_vec())),
        None => Err("issuer subjectPublicKey has unused bits".into()),
    }
}

fn key_usage_names(c: &X509Certificate<'_>) -> Result<Option<Vec<&'static str>>, String> {
    let ku = c.key_usage().map_err(|e| format!("keyUsage: {e}"))?;
    Ok(ku.map(|ku| {
        let k = ku.value;
        [
            (k.digital_signature(), "digitalSignature"),
            (k.non_repudiation(), "nonRepudiation"),
            (k.key_encipherment(), "keyEncipherment"),
            (k.data_encipherment(), "dataEncipherment"),
            (k.key_agreement(), "keyAgreement"),
            (k.key_cert_sign(), "keyCertSign"),
            (k.crl_sign(), "cRLSign"),
            (k.encipher_only(), "encipherOnly"),
            (k.decipher_only(), "decipherOnly"),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, n)| *n)
        .collect()
    }))
}

fn ext_key_usage_names(c: &X509Certificate<'_>) -> Result<Option<Vec<String>>, String> {
    let eku = c
        .extended_key_usage()
        .map_err(|e| format!("extKeyUsage: {e}"))?;
    Ok(eku.map(|e| {
        let e = e.value;
        let mut v: Vec<String> = [
            (e.any, "anyExtendedKeyUsage"),
            (e.server_auth, "serverAuth"),
            (e.client_auth, "clientAuth"),
            (e.code_signing, "codeSigning"),
            (e.email_protection, "emailProtection"),
            (e.time_stamping, "timeStamping"),
            (e.ocsp_signing, "OCSPSigning"),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, n)| n.to_string())
        .collect();
        // Our own decoder (asn1-rs prints 2.999.1 as 3.16.55.1).
        v.extend(
            e.other
                .iter()
                .map(|o| oid_to_string(o.as_bytes()).unwrap_or_else(|| o.to_id_string())),
        );
        v
    }))
}

fn is_ca(c: &X509Certificate<'_>, which: &str) -> Result<bool, CertProblem> {
    c.basic_constraints()
        .map(|bc| bc.is_some_and(|bc| bc.value.ca))
        .map_err(|e| CertProblem::Malformed {
            which: which.to_string(),
            expected: "at most one valid basicConstraints extension".into(),
            detail: e.to_string(),
        })
}

pub(crate) fn check_validity(
    c: &X509Certificate<'_>,
    which: &str,
    now: i64,
) -> Result<(), CertProblem> {
    let v = c.validity();
    let (nb, na) = (v.not_before.timestamp(), v.not_after.timestamp());
    if now < nb {
        return Err(CertProblem::NotYetValid {
            which: which.to_string(),
            not_before: crate::utc::format_unix(nb),
            now: crate::utc::format_unix(now),
        });
    }
    if now > na {
        return Err(CertProblem::Expired {
            which: which.to_string(),
            not_after: crate::utc::format_unix(na),
            now: crate::utc::format_unix(now),
        });
    }
    Ok(())
}

/// Checks that `ca` is a usable CA certificate at `now`.
pub(crate) fn check_ca(ca: &X509Certificate<'_>, which: &str, now: i64) -> Result<(), CertProblem> {
    let not_ca = |detail: &str| CertProblem::NotACa {
        which: which.to_string(),
        subject: subject_str(ca),
        detail: detail.to_string(),
    };
    if !is_ca(ca, which)? {
        return Err(not_ca("basicConstraints cA=TRUE is missing"));
    }
    match key_usage_names(ca) {
        Ok(Some(ku)) if !ku.contains(&"keyCertSign") => {
            return Err(not_ca("keyUsage lacks keyCertSign"))
        }
        Err(e) => return Err(not_ca(&e)),
        _ => {}
    }
    check_validity(ca, which, now)
}

/// Issuer-name match and signature of `child` by `issuer`.
pub(crate) fn check_issued_by(
    child: &X509Certificate<'_>,
    child_which: &str,
    issuer: &X509Certificate<'_>,
) -> Result<(), CertProblem> {
    if child.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(CertProblem::IssuerMismatch {
            which: child_which.to_string(),
            issuer: child.issuer().to_string(),
            ca_subject: subject_str(issuer),
        });
    }
    verify_signed_by(child, issuer).map_err(|detail| CertProblem::BadSignature {
        which: child_which.to_string(),
        signer: subject_str(issuer),
        detail,
    })
}

/// Checks the CA chain (issuing CA first, root last): each is a valid CA at
/// `now`, each is issued by the next, and the last is a self-signed root.
pub(crate) fn check_chain(
    chain: &[X509Certificate<'_>],
    names: &[String],
    now: i64,
) -> Result<(), CertProblem> {
    for (i, (ca, name)) in chain.iter().zip(names).enumerate() {
        check_ca(ca, name, now)?;
        if let Some(next) = chain.get(i + 1) {
            check_issued_by(ca, name, next)?;
        } else {
            let root_err = |detail: String| CertProblem::RootNotSelfSigned {
                which: name.clone(),
                subject: subject_str(ca),
                detail,
            };
            if ca.issuer().as_raw() != ca.subject().as_raw() {
                return Err(root_err("issuer differs from subject".into()));
            }
            verify_signed_by(ca, ca).map_err(root_err)?;
        }
    }
    Ok(())
}

/// Checks a certificate returned by a CA for the card key `expected_point`
/// (65-byte uncompressed P-256) and `profile`, against `chain` (issuing CA
/// first … root) at time `now`.
///
/// Profile rules: *Authentication* needs keyUsage digitalSignature without
/// nonRepudiation/keyCertSign/cRLSign and extKeyUsage containing clientAuth.
/// *Signature* needs keyUsage nonRepudiation (digitalSignature tolerated, as
/// ETSI type B) without keyCertSign/cRLSign, and any extKeyUsage must not
/// contain clientAuth or serverAuth.
pub fn check_certificate(
    cert_der: &[u8],
    expected_point: &[u8],
    profile: CertProfile,
    chain: &[Vec<u8>],
    now: SystemTime,
) -> Result<(), CertProblem> {
    const EE: &str = "end-entity certificate";
    let cert = parse_cert(cert_der, EE)?;
    if chain.is_empty() {
        return Err(CertProblem::EmptyChain);
    }
    let names: Vec<String> = (0..chain.len())
        .map(|i| format!("CA certificate #{i}"))
        .collect();
    let cas = chain
        .iter()
        .zip(&names)
        .map(|(c, n)| parse_cert(c, n))
        .collect::<Result<Vec<_>, _>>()?;
    let now = crate::utc::unix_secs(now);

    // 1. Key.
    let point = parse_p256_spki(cert.tbs_certificate.subject_pki.raw).map_err(|e| {
        CertProblem::UnsupportedKey {
            which: EE.to_string(),
            detail: e.to_string(),
        }
    })?;
    if point != expected_point {
        return Err(CertProblem::PublicKeyMismatch {
            card: key_fingerprint(expected_point),
            certificate: key_fingerprint(&point),
        });
    }

    // 2. Profile.
    if is_ca(&cert, EE)? {
        return Err(CertProblem::UnexpectedCa { which: EE.into() });
    }
    let ku = key_usage_names(&cert).map_err(|detail| CertProblem::Malformed {
        which: EE.into(),
        expected: "a valid keyUsage extension".into(),
        detail,
    })?;
    let eku = ext_key_usage_names(&cert).map_err(|detail| CertProblem::Malformed {
        which: EE.into(),
        expected: "a valid extKeyUsage extension".into(),
        detail,
    })?;
    let ku_found = ku.as_ref().map_or("(absent)".to_string(), |k| list(k));
    let eku_found = eku.as_ref().map_or("(absent)".to_string(), |k| list(k));
    let ku = ku.unwrap_or_default();
    let has = |n: &str| ku.contains(&n);
    let ca_bits = has("keyCertSign") || has("cRLSign");
    match profile {
        CertProfile::Authentication => {
            if !has("digitalSignature") || has("nonRepudiation") || ca_bits {
                return Err(CertProblem::KeyUsage {
                    profile,
                    found: ku_found,
                    expected: "digitalSignature (without nonRepudiation, keyCertSign, cRLSign)"
                        .into(),
                });
            }
            if !eku
                .as_ref()
                .is_some_and(|e| e.iter().any(|p| p == "clientAuth"))
            {
                return Err(CertProblem::ExtendedKeyUsage {
                    profile,
                    found: eku_found,
                    expected: "clientAuth".into(),
                });
            }
        }
        CertProfile::Signature => {
            if !has("nonRepudiation") || ca_bits {
                return Err(CertProblem::KeyUsage {
                    profile,
                    found: ku_found,
                    expected: "nonRepudiation (contentCommitment), without keyCertSign, cRLSign"
                        .into(),
                });
            }
            if eku
                .as_ref()
                .is_some_and(|e| e.iter().any(|p| p == "clientAuth" || p == "serverAuth"))
            {
                return Err(CertProblem::ExtendedKeyUsage {
                    profile,
                    found: eku_found,
                    expected: "no TLS purposes (clientAuth/serverAuth)".into(),
                });
            }
        }
    }

    // 3. Time.
    check_validity(&cert, EE, now)?;

    // 4. Issuer and signature, then the chain itself.
    let issuer = cas.first().ok_or(CertProblem::EmptyChain)?;
    check_issued_by(&cert, EE, issuer)?;
    check_chain(&cas, &names, now)
}

/// The extension with `arcs`, if present.
fn find_extension<'a, 'c>(
    c: &'c X509Certificate<'a>,
    oid: ObjectIdentifier,
) -> Option<&'c x509_parser::extensions::X509Extension<'a>> {
    c.extensions()
        .iter()
        .find(|e| e.oid.as_bytes() == oid.as_bytes())
}

/// The URIs of the cRLDistributionPoints extension (fullName URIs of every
/// distribution point); empty when the extension is absent.
fn crl_uris(c: &X509Certificate<'_>) -> Result<Vec<String>, String> {
    use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
    let Some(ext) = find_extension(c, ID_CE_CRL_DISTRIBUTION_POINTS) else {
        return Ok(vec![]);
    };
    let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() else {
        return Err("the extension could not be parsed".into());
    };
    let mut out = Vec::new();
    for (i, p) in points.iter().enumerate() {
        match &p.distribution_point {
            Some(DistributionPointName::FullName(names)) => {
                for n in names {
                    match n {
                        GeneralName::URI(u) => out.push(u.to_string()),
                        other => out.push(format!("{other}")),
                    }
                }
            }
            Some(DistributionPointName::NameRelativeToCRLIssuer(_)) => out.push(format!(
                "distribution point {i}: a name relative to the CRL issuer"
            )),
            None => out.push(format!("distribution point {i}: no distributionPoint")),
        }
    }
    Ok(out)
}

/// The certificatePolicies extension as policies with their CPS URI (a
/// policy with other qualifiers keeps only its OID and first CPS).
fn policies(c: &X509Certificate<'_>) -> Result<Vec<CertPolicy>, String> {
    use x509_parser::extensions::ParsedExtension;
    let Some(ext) = find_extension(c, ID_CE_CERTIFICATE_POLICIES) else {
        return Ok(vec![]);
    };
    let ParsedExtension::CertificatePolicies(list) = ext.parsed_extension() else {
        return Err("the extension could not be parsed".into());
    };
    let mut out = Vec::new();
    for p in list {
        let mut cps_uri = None;
        for q in p.policy_qualifiers.iter().flatten() {
            if q.policy_qualifier_id.as_bytes() == ID_QT_CPS.as_bytes() && cps_uri.is_none() {
                let v = Ia5StringRef::from_der(q.qualifier).map_err(|e| format!("CPS URI: {e}"))?;
                cps_uri = Some(v.as_str().to_string());
            }
        }
        // Our own decoder: asn1-rs's to_id_string misreads OIDs whose first
        // subidentifier takes more than one byte (2.999 comes out 3.16.55).
        let oid = oid_to_string(p.policy_id.as_bytes())
            .ok_or("the policy identifier is not a valid OID")?;
        out.push(CertPolicy { oid, cps_uri });
    }
    Ok(out)
}

/// What a holder's certificate must say beyond key, usage and chain: it
/// ends no later than the card and at most `max_days_before` days before
/// it, and carries the profile's CRL distribution points and policy.
#[derive(Debug, Clone)]
pub struct CardTerms<'a> {
    /// The moment the card expires (Unix seconds).
    pub card_end: i64,
    /// The card's expiry as people read it, for messages.
    pub card_expiry: &'a str,
    /// How many days before `card_end` the certificate may end at most.
    pub max_days_before: i64,
    pub crl_distribution_points: &'a [String],
    pub policy: &'a CertPolicy,
}

fn days(n: i64) -> String {
    if n == 1 {
        "1 day".into()
    } else {
        format!("{n} days")
    }
}

fn show_list(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

/// Checks `cert_der` against `t`. Every difference is reported; on success
/// the answer says when the certificate ends relative to the card.
pub fn check_card_terms(cert_der: &[u8], t: &CardTerms<'_>) -> Result<String, Vec<CertProblem>> {
    let bad = |expected: &str, detail: String| CertProblem::Malformed {
        which: "end-entity certificate".into(),
        expected: expected.into(),
        detail,
    };
    let c = parse_cert(cert_der, "end-entity certificate").map_err(|e| vec![e])?;
    let mut problems = Vec::new();
    let not_after = c.validity().not_after.timestamp();
    let before = t.card_end - not_after;
    let ends = if before < 0 {
        problems.push(CertProblem::OutlivesCard {
            not_after: crate::utc::format_unix(not_after),
            card_expiry: t.card_expiry.to_string(),
        });
        String::new()
    } else if before > t.max_days_before * 86_400 {
        problems.push(CertProblem::EndsTooEarly {
            days: (before + 86_399) / 86_400,
            allowed: days(t.max_days_before),
            not_after: crate::utc::format_unix(not_after),
            card_expiry: t.card_expiry.to_string(),
        });
        String::new()
    } else if before == 0 {
        format!("ends with the card, {}", crate::utc::format_unix(not_after))
    } else {
        format!(
            "ends {} before the card, {}",
            if before % 86_400 == 0 {
                days(before / 86_400)
            } else {
                format!("{before} s")
            },
            crate::utc::format_unix(not_after)
        )
    };
    match crl_uris(&c) {
        Ok(found) if found == t.crl_distribution_points => {}
        Ok(found) => problems.push(CertProblem::CrlDistributionPoints {
            found: show_list(&found),
            expected: show_list(t.crl_distribution_points),
        }),
        Err(e) => problems.push(bad("a valid cRLDistributionPoints extension", e)),
    }
    match policies(&c) {
        Ok(found) if found.as_slice() == std::slice::from_ref(t.policy) => {}
        Ok(found) => problems.push(CertProblem::Policies {
            found: show_list(&found.iter().map(|p| p.to_string()).collect::<Vec<_>>()),
            expected: t.policy.to_string(),
        }),
        Err(e) => problems.push(bad("a valid certificatePolicies extension", e)),
    }
    if problems.is_empty() {
        Ok(format!(
            "{ends}; CRL distribution point and policy as the profile says"
        ))
    } else {
        Err(problems)
    }
}

/// The subject public key of a certificate (for EC keys, the point as
/// written in the certificate: 04 ‖ X ‖ Y for P-256).
pub fn certificate_public_key(cert_der: &[u8]) -> Result<Vec<u8>, CertProblem> {
    let c = parse_cert(cert_der, "certificate")?;
    Ok(c.tbs_certificate
        .subject_pki
        .subject_public_key
        .data
        .to_vec())
}

/// Summarizes a certificate for display. Fails only if it can't be parsed.
pub fn describe_certificate(cert_der: &[u8]) -> Result<CertSummary, CertProblem> {
    let c = parse_cert(cert_der, "certificate")?;
    let v = c.validity();
    let (nb, na) = (v.not_before.timestamp(), v.not_after.timestamp());
    let bad = |expected: &str, detail: String| CertProblem::Malformed {
        which: "certificate".into(),
        expected: expected.into(),
        detail,
    };
    Ok(CertSummary {
        subject: c.subject().to_string(),
        issuer: c.issuer().to_string(),
        serial_hex: crate::hex::lower(c.raw_serial()),
        not_before: crate::utc::format_unix(nb),
        not_after: crate::utc::format_unix(na),
        not_before_unix: nb,
        not_after_unix: na,
        key_usage: key_usage_names(&c)
            .map_err(|e| bad("a valid keyUsage", e))?
            .unwrap_or_default(),
        extended_key_usage: ext_key_usage_names(&c)
            .map_err(|e| bad("a valid extKeyUsage", e))?
            .unwrap_or_default(),
        is_ca: is_ca(&c, "certificate")?,
        crl_distribution_points: crl_uris(&c)
            .map_err(|e| bad("a valid cRLDistributionPoints", e))?,
        policies: policies(&c)
            .map_err(|e| bad("a valid certificatePolicies", e))?
            .iter()
            .map(|p| p.to_string())
            .collect(),
        sha256_fingerprint: crate::hex::colon(digest::digest(&digest::SHA256, cert_der).as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{CertificateAuthority, LocalCa};
    use crate::sod::DocumentSigner;
    use crate::test_support::{card_key, card_point, make_csr, new_ca, subject, terms};
    use std::time::Duration;

    struct Fixture {
        _tmp: tempfile::TempDir,
        ca: LocalCa,
        point: Vec<u8>,
        auth: Vec<u8>,
        sig: Vec<u8>,
    }

    fn fixture() -> Fixture {
        let (tmp, ca) = new_ca();
        let key = card_key();
        let csr = make_csr(&key, &subject());
        Fixture {
            auth: ca
                .issue(&csr, CertProfile::Authentication, &terms())
                .unwrap(),
            sig: ca.issue(&csr, CertProfile::Signature, &terms()).unwrap(),
            point: card_point(&key).to_vec(),
            ca,
            _tmp: tmp,
        }
    }

    fn now() -> SystemTime {
        SystemTime::now()
    }

    #[test]
    fn good_certificates_pass() {
        let f = fixture();
        let chain = f.ca.chain();
        check_certificate(
            &f.auth,
            &f.point,
            CertProfile::Authentication,
            &chain,
            now(),
        )
        .unwrap();
        check_certificate(&f.sig, &f.point, CertProfile::Signature, &chain, now()).unwrap();
    }

    #[test]
    fn wrong_profile_is_reported() {
        let f = fixture();
        let chain = f.ca.chain();
        let e = check_certificate(&f.auth, &f.point, CertProfile::Signature, &chain, now());
        assert!(matches!(e, Err(CertProblem::KeyUsage { .. })), "{e:?}");
        let e = check_certificate(&f.sig, &f.point, CertProfile::Authentication, &chain, now());
        assert!(matches!(e, Err(CertProblem::KeyUsage { .. })), "{e:?}");
        // The DS certificate has digitalSignature but no clientAuth.
        let ds = f.ca.document_signer().certificate().to_vec();
        let ds_point = parse_p256_spki(parse_cert(&ds, "x").unwrap().public_key().raw).unwrap();
        let e = check_certificate(&ds, &ds_point, CertProfile::Authentication, &chain, now());
        assert!(
            matches!(e, Err(CertProblem::ExtendedKeyUsage { .. })),
            "{e:?}"
        );
        // The CA certificate is a CA.
        let ca_point =
            parse_p256_spki(parse_cert(&chain[0], "x").unwrap().public_key().raw).unwrap();
        let e = check_certificate(&chain[0], &ca_point, CertProfile::Signature, &chain, now());
        assert!(matches!(e, Err(CertProblem::UnexpectedCa { .. })), "{e:?}");
    }

    #[test]
    fn wrong_key_is_reported_with_fingerprints() {
        let f = fixture();
        let other = card_key();
        let e = check_certificate(
            &f.auth,
            card_point(&other),
            CertProfile::Authentication,
            &f.ca.chain(),
            now(),
        )
        .unwrap_err();
        match &e {
            CertProblem::PublicKeyMismatch { card, certificate } => {
                assert_eq!(card, &key_fingerprint(card_point(&other)));
                assert_eq!(certificate, &key_fingerprint(&f.point));
            }
            _ => panic!("{e:?}"),
        }
        assert!(e.to_string().contains("differs"));
    }

    #[test]
    fn time_window() {
        let f = fixture();
        let chain = f.ca.chain();
        let later = now() + Duration::from_secs(6 * 366 * 86400);
        let e = check_certificate(
            &f.auth,
            &f.point,
            CertProfile::Authentication,
            &chain,
            later,
        );
        assert!(matches!(e, Err(CertProblem::Expired { .. })), "{e:?}");
        let earlier = now() - Duration::from_secs(3600);
        let e = check_certificate(
            &f.auth,
            &f.point,
            CertProfile::Authentication,
            &chain,
            earlier,
        );
        assert!(matches!(e, Err(CertProblem::NotYetValid { .. })), "{e:?}");
        // Certificate itself valid but the CA expired: only possible with a
        // CA whose validity ends first; simulate by checking far beyond.
        let far = now() + Duration::from_secs(20 * 366 * 86400);
        let e = check_certificate(&f.auth, &f.point, CertProfile::Authentication, &chain, far);
        assert!(matches!(e, Err(CertProblem::Expired { .. })), "{e:?}");
    }

    #[test]
    fn wrong_ca_is_reported() {
        let f = fixture();
        let (_t2, other) = new_ca();
        // Same subject name, different key: signature fails.
        let e = check_certificate(
            &f.auth,
            &f.point,
            CertProfile::Authentication,
            &other.chain(),
            now(),
        );
        assert!(matches!(e, Err(CertProblem::BadSignature { .. })), "{e:?}");
        // A CA with a different name: issuer mismatch. Use the DS cert as "CA".
        let ds = f.ca.document_signer().certificate().to_vec();
        let e = check_certificate(
            &f.auth,
            &f.point,
            CertProfile::Authentication,
            std::slice::from_ref(&ds),
            now(),
        );
        assert!(
            matches!(e, Err(CertProblem::IssuerMismatch { .. })),
            "{e:?}"
        );
        // Chain whose first element is not a CA.
        let ds_cert_as_chain = [ds, f.ca.ca_certificate().to_vec()];
        let e = check_chain(
            &ds_cert_as_chain
                .iter()
                .map(|c| parse_cert(c, "x").unwrap())
                .collect::<Vec<_>>(),
            &["a".into(), "b".into()],
            crate::utc::unix_secs(now()),
        );
        assert!(matches!(e, Err(CertProblem::NotACa { .. })), "{e:?}");
        let e = check_certificate(&f.auth, &f.point, CertProfile::Authentication, &[], now());
        assert_eq!(e, Err(CertProblem::EmptyChain));
    }

    #[test]
    fn root_that_is_not_self_signed() {
        let f = fixture();
        let (_t2, other) = new_ca();
        // Splice: take our CA cert but corrupt its signature.
        let mut ca = f.ca.ca_certificate().to_vec();
        let n = ca.len();
        ca[n - 5] ^= 0x01;
        let e = check_certificate(&f.auth, &f.point, CertProfile::Authentication, &[ca], now());
        assert!(
            matches!(e, Err(CertProblem::RootNotSelfSigned { .. })),
            "{e:?}"
        );
        // Our CA followed by a root that did not issue it.
        let e = check_certificate(
            &f.auth,
            &f.point,
            CertProfile::Authentication,
            &[
                f.ca.ca_certificate().to_vec(),
                other.ca_certificate().to_vec(),
            ],
            now(),
        );
        assert!(matches!(e, Err(CertProblem::BadSignature { .. })), "{e:?}");
    }

    #[test]
    fn tampered_certificate_fails_signature() {
        let f = fixture();
        let mut c = f.auth.clone();
        // Flip a bit inside the subject's serialNumber value.
        let pos = c.windows(5).position(|w| w == b"PNOIR").unwrap();
        c[pos + 7] ^= 0x01;
        let e = check_certificate(
            &c,
            &f.point,
            CertProfile::Authentication,
            &f.ca.chain(),
            now(),
        );
        assert!(matches!(e, Err(CertProblem::BadSignature { .. })), "{e:?}");
    }

    #[test]
    fn malformed_inputs() {
        let f = fixture();
        let e = check_certificate(
            b"junk",
            &f.point,
            CertProfile::Authentication,
            &f.ca.chain(),
            now(),
        );
        assert!(matches!(e, Err(CertProblem::Malformed { .. })), "{e:?}");
        let e = check_certificate(
            &f.auth,
            &f.point,
            CertProfile::Authentication,
            &[b"junk".to_vec()],
            now(),
        );
        match e {
            Err(CertProblem::Malformed { which, .. }) => assert_eq!(which, "CA certificate #0"),
            other => panic!("{other:?}"),
        }
        let mut extra = f.auth.clone();
        extra.push(0);
        assert!(describe_certificate(&extra).is_err());
        assert!(describe_certificate(&f.auth[..f.auth.len() - 1]).is_err());
    }

    /// Rules for a card that ends at `card_end`, with the test CRL and policy.
    fn card_terms<'a>(
        card_end: i64,
        crl: &'a [String],
        policy: &'a CertPolicy,
        max_days_before: i64,
    ) -> CardTerms<'a> {
        CardTerms {
            card_end,
            card_expiry: "1412/09/13 (2033-12-03 00:00:00 UTC)",
            max_days_before,
            crl_distribution_points: crl,
            policy,
        }
    }

    #[test]
    fn card_terms_end_crl_and_policy() {
        use crate::test_support::{terms_ending, TEST_CPS, TEST_CRL, TEST_POLICY};
        let (_tmp, ca) = new_ca();
        let csr = make_csr(&card_key(), &subject());
        let day = 86_400;
        let card_end = (crate::utc::unix_secs(now()) / day + 7 * 365) * day;
        let issue = |end: i64| {
            ca.issue(&csr, CertProfile::Signature, &terms_ending(end))
                .unwrap()
        };
        let crl = vec![TEST_CRL.to_string()];
        let policy = CertPolicy {
            oid: TEST_POLICY.into(),
            cps_uri: Some(TEST_CPS.into()),
        };
        let rules = card_terms(card_end, &crl, &policy, 1);

        let ok = check_card_terms(&issue(card_end), &rules).unwrap();
        assert!(ok.starts_with("ends with the card"), "{ok}");
        let ok = check_card_terms(&issue(card_end - day), &rules).unwrap();
        assert!(ok.starts_with("ends 1 day before the card"), "{ok}");

        // One second after the card: outlives it, both dates named.
        let e = check_card_terms(&issue(card_end + 1), &rules).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        let msg = e[0].to_string();
        assert!(matches!(e[0], CertProblem::OutlivesCard { .. }), "{msg}");
        assert!(
            msg.contains(&crate::utc::format_unix(card_end + 1))
                && msg.contains("1412/09/13 (2033-12-03 00:00:00 UTC)"),
            "{msg}"
        );
        // One second earlier than the tolerance allows.
        let e = check_card_terms(&issue(card_end - day - 1), &rules).unwrap_err();
        let msg = e[0].to_string();
        assert!(
            msg.contains("ends 2 days before the card")
                && msg.contains("allows at most 1 day")
                && msg.contains(&crate::utc::format_unix(card_end - day - 1)),
            "{msg}"
        );
        // Five years, as this CA used to issue for a 7-year card.
        let e = check_card_terms(&issue(card_end - 2 * 365 * day), &rules).unwrap_err();
        assert!(
            e[0].to_string().contains("730 days before the card"),
            "{e:?}"
        );

        // Other CRL and policy: each difference named with both values, and
        // the end checked as well.
        let other_crl = vec!["ldap://ldap.example/cn=CA?certificateRevocationList".to_string()];
        let other_policy = CertPolicy {
            oid: "2.999.1".into(),
            cps_uri: None,
        };
        let rules2 = card_terms(card_end - 10 * day, &other_crl, &other_policy, 1);
        let e = check_card_terms(&issue(card_end), &rules2).unwrap_err();
        let msgs: Vec<String> = e.iter().map(|p| p.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].contains("outlives the card"), "{msgs:?}");
        assert!(
            msgs[1].contains(TEST_CRL) && msgs[1].contains(&other_crl[0]),
            "{msgs:?}"
        );
        assert!(
            msgs[2].contains("2.999.364.1.1 (CPS https://pki.national-id.example/cps)")
                && msgs[2].contains("the profile says 2.999.1"),
            "{msgs:?}"
        );
        // The same policy with another CPS is a difference too.
        let other_cps = CertPolicy {
            oid: TEST_POLICY.into(),
            cps_uri: Some("https://other.example/cps".into()),
        };
        let e = check_card_terms(&issue(card_end), &card_terms(card_end, &crl, &other_cps, 1))
            .unwrap_err();
        assert!(matches!(e[0], CertProblem::Policies { .. }), "{e:?}");

        // A certificate without the extensions (as the CA issued before).
        let bare = ca
            .issue(
                &csr,
                CertProfile::Signature,
                &crate::IssueTerms {
                    not_after: card_end,
                    crl_distribution_points: vec![],
                    policy: None,
                },
            )
            .unwrap();
        let e = check_card_terms(&bare, &rules).unwrap_err();
        let msgs: Vec<String> = e.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                format!("CRL distribution points are (none), the profile says {TEST_CRL}"),
                format!("certificate policies are (none), the profile says {policy}"),
            ]
        );
        // Garbage is a parse error, not a panic.
        let e = check_card_terms(b"\x30\x03\x02\x01\x00", &rules).unwrap_err();
        assert!(matches!(e[0], CertProblem::Malformed { .. }), "{e:?}");
    }

    #[test]
    fn summary_display() {
        let f = fixture();
        let s = describe_certificate(&f.sig).unwrap();
        let text = s.to_string();
        assert!(text.contains("nonRepudiation"), "{text}");
        assert!(
            text.contains("CRL:         http://pki.national-id.example/crl/card-ca.crl"),
            "{text}"
        );
        assert!(
            text.contains("Policy:      2.999.364.1.1 (CPS https://pki.national-id.example/cps)"),
            "{text}"
        );
        assert!(text.contains("Issuer:      C=IR, O=cardsmith test, CN=cardsmith local test CA"));
        assert_eq!(s.sha256_fingerprint.len(), 32 * 3 - 1);
    }
}
