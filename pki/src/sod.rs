//! ICAO Doc 9303 part 10 EF.SOD: the document security object.
//!
//! ```text
//! EF.SOD       ::= [APPLICATION 23] (tag 77) ContentInfo
//! ContentInfo  ::= SEQUENCE { id-signedData, [0] EXPLICIT SignedData }
//! SignedData   ::= SEQUENCE { version 3, digestAlgorithms { sha256 },
//!                   encapContentInfo { id-icao-mrtd-security-ldsSecurityObject,
//!                                      [0] EXPLICIT OCTET STRING (LDSSecurityObject) },
//!                   certificates [0] IMPLICIT { DS certificate },
//!                   signerInfos { SignerInfo } }
//! SignerInfo   ::= SEQUENCE { version 1, issuerAndSerialNumber, sha256,
//!                   signedAttrs [0] IMPLICIT { contentType, messageDigest, signingTime },
//!                   ecdsa-with-SHA256, signature OCTET STRING }
//! LDSSecurityObject ::= SEQUENCE { version 0, sha256,
//!                   SEQUENCE OF DataGroupHash { dataGroupNumber INTEGER,
//!                                               dataGroupHashValue OCTET STRING } }
//! ```
//!
//! AlgorithmIdentifiers are written with absent parameters (RFC 5754); the
//! verifier also accepts NULL parameters. Data group numbers 1..=255 are
//! accepted (ICAO names 1..=16; national profiles may add more).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::db::rfc5911::{ID_CONTENT_TYPE, ID_MESSAGE_DIGEST, ID_SIGNED_DATA, ID_SIGNING_TIME};
use const_oid::db::rfc5912::{ECDSA_WITH_SHA_256, ID_SHA_256};
use der::asn1::{
    Any, AnyRef, ObjectIdentifier, OctetString, OctetStringRef, PrintableString, SetOfVec,
};
use der::{Decode, Encode, Reader, Sequence, SliceReader, Tag, TagNumber, Tagged};
use ring::digest;
use ring::signature::{self, UnparsedPublicKey};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::time::Time;

use super::check::{self, parse_cert, CertProblem};
use super::csr::{algorithm, der_to_raw_sig, parse_p256_spki};
use super::oid::ICAO_LDS_SECURITY_OBJECT;
use super::x509::time;
use super::PkiError;

/// The EF.SOD tag (`[APPLICATION 23]`, constructed).
pub const SOD_TAG: u8 = 0x77;

/// Something that holds a document signer key.
pub trait DocumentSigner {
    /// DER of the document signer certificate.
    fn certificate(&self) -> &[u8];
    /// ECDSA-with-SHA-256 over `message`; returns a DER `ECDSA-Sig-Value`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError>;
}

/// What a verified EF.SOD vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SodContents {
    /// SHA-256 per data group number. The caller compares them with the
    /// data groups it read.
    pub hashes: BTreeMap<u8, Vec<u8>>,
    /// DER of the document signer certificate that signed the SOD.
    pub signer_certificate: Vec<u8>,
    /// The signingTime signed attribute, if present.
    pub signing_time: Option<SystemTime>,
}

/// Why an EF.SOD was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SodProblem {
    #[error("EF.SOD {element}: expected {expected}, found {found}")]
    Malformed {
        element: String,
        expected: String,
        found: String,
    },
    #[error("EF.SOD {element}: unsupported {found} (supported: {expected})")]
    Unsupported {
        element: String,
        expected: String,
        found: String,
    },
    #[error("LDSSecurityObject lists data group {number} more than once")]
    DuplicateDataGroup { number: u8 },
    #[error("signed contentType {signed} does not match eContentType {encapsulated}")]
    ContentTypeMismatch {
        signed: String,
        encapsulated: String,
    },
    #[error("messageDigest {signed} does not match SHA-256 of the LDSSecurityObject {computed}")]
    MessageDigestMismatch { signed: String, computed: String },
    #[error("no certificate in SignedData.certificates matches the signer (issuer \"{issuer}\", serial {serial})")]
    SignerCertificateNotFound { issuer: String, serial: String },
    #[error("SignerInfo signature does not verify with the document signer key")]
    BadSignature,
    #[error("document signer certificate: {0}")]
    SignerCertificate(CertProblem),
    #[error("document signer certificate keyUsage {found}: expected digitalSignature")]
    SignerKeyUsage { found: String },
    #[error("document signer issuer \"{issuer}\" is not among the trust anchors")]
    UntrustedSigner { issuer: String },
    #[error("trust anchor #{index}: {problem}")]
    TrustAnchor { index: usize, problem: CertProblem },
}

fn malformed(element: &str, expected: &str, found: impl Into<String>) -> SodProblem {
    SodProblem::Malformed {
        element: element.into(),
        expected: expected.into(),
        found: found.into(),
    }
}

/// A decoding failure of `element`, which was to be `expected`.
fn undecodable<'a>(element: &'a str, expected: &'a str) -> impl Fn(der::Error) -> SodProblem + 'a {
    move |e| malformed(element, expected, e.to_string())
}

fn name_string(raw: &[u8]) -> String {
    use x509_parser::prelude::{FromDer, X509Name};
    match X509Name::from_der(raw) {
        Ok((_, n)) => n.to_string(),
        Err(_) => crate::hex::lower(raw),
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

/// `[APPLICATION 23]`, constructed: the EF.SOD wrapper.
fn sod_tag() -> Tag {
    Tag::Application {
        constructed: true,
        number: TagNumber::N23,
    }
}

/// ```text
/// LDSSecurityObject ::= SEQUENCE {
///     version LDSSecurityObjectVersion, hashAlgorithm DigestAlgorithmIdentifier,
///     dataGroupHashValues SEQUENCE OF DataGroupHash,
///     ldsVersionInfo LDSVersionInfo OPTIONAL -- present in version 1 }
/// ```
#[derive(Sequence)]
struct LdsSecurityObject {
    version: u64,
    hash_algorithm: AlgorithmIdentifierOwned,
    data_group_hash_values: Vec<DataGroupHash>,
    #[asn1(optional = "true")]
    lds_version_info: Option<LdsVersionInfo>,
}

/// `DataGroupHash ::= SEQUENCE { dataGroupNumber, dataGroupHashValue }`.
#[derive(Sequence)]
struct DataGroupHash {
    data_group_number: u64,
    data_group_hash_value: OctetString,
}

/// `LDSVersionInfo ::= SEQUENCE { ldsVersion, unicodeVersion }`.
#[derive(Sequence)]
struct LdsVersionInfo {
    lds_version: PrintableString,
    unicode_version: PrintableString,
}

/// Builds the DER LDSSecurityObject (version 0, SHA-256) over the data
/// groups' contents. Fails on number 0 or duplicates; output is sorted.
pub fn lds_security_object(data_groups: &[(u8, &[u8])]) -> Result<Vec<u8>, PkiError> {
    if data_groups.is_empty() {
        return Err(PkiError::InvalidInput {
            what: "data groups",
            reason: "at least one data group is required".into(),
        });
    }
    let mut map = BTreeMap::new();
    for &(n, content) in data_groups {
        if n == 0 {
            return Err(PkiError::InvalidInput {
                what: "data group number",
                reason: "0 is not a data group".into(),
            });
        }
        if map.insert(n, sha256(content)).is_some() {
            return Err(PkiError::InvalidInput {
                what: "data group number",
                reason: format!("DG{n} given twice"),
            });
        }
    }
    let mut hashes = Vec::with_capacity(map.len());
    for (n, h) in map {
        hashes.push(DataGroupHash {
            data_group_number: u64::from(n),
            data_group_hash_value: OctetString::new(h)?,
        });
    }
    let lds = LdsSecurityObject {
        version: 0,
        hash_algorithm: algorithm(ID_SHA_256),
        data_group_hash_values: hashes,
        lds_version_info: None,
    };
    Ok(lds.to_der()?)
}

/// [`build_sod_at`] with the current time as signingTime.
pub fn build_sod(
    data_groups: &[(u8, &[u8])],
    signer: &dyn DocumentSigner,
) -> Result<Vec<u8>, PkiError> {
    build_sod_at(data_groups, signer, SystemTime::now())
}

/// Builds EF.SOD (tag 77) over `data_groups` (number, content), signed by
/// `signer`, with `signing_time` as the signingTime attribute. The
/// signature is checked against the signer's certificate before returning.
pub fn build_sod_at(
    data_groups: &[(u8, &[u8])],
    signer: &dyn DocumentSigner,
    signing_time: SystemTime,
) -> Result<Vec<u8>, PkiError> {
    const DS: &str = "document signer certificate";
    let lds = lds_security_object(data_groups)?;
    let cert_der = signer.certificate();
    let cert = parse_cert(cert_der, DS)?;
    let ds_point = parse_p256_spki(cert.tbs_certificate.subject_pki.raw).map_err(|detail| {
        CertProblem::UnsupportedKey {
            which: DS.into(),
            detail,
        }
    })?;
    let ds_cert = ds_certificate(cert_der)?;

    let signed_attrs = signed_attributes(&lds, signing_time)?;
    // RFC 5652 5.4: the signature is over the attributes as a SET OF.
    let attrs = signed_attrs.to_der()?;
    let sig = signer.sign(&attrs)?;
    der_to_raw_sig(&sig)?; // strict DER ECDSA-Sig-Value
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &ds_point)
        .verify(&attrs, &sig)
        .map_err(|_| PkiError::InvalidInput {
            what: "document signer",
            reason: "signature does not verify with the key in its certificate".into(),
        })?;
    assemble_sod(&lds, signed_attrs, ds_cert, &sig)
}

/// The document signer's certificate as x509-cert reads it, for the
/// SignedData's certificates and signer identifier.
fn ds_certificate(cert_der: &[u8]) -> Result<x509_cert::Certificate, PkiError> {
    x509_cert::Certificate::from_der(cert_der).map_err(|e| {
        PkiError::Certificate(CertProblem::Malformed {
            which: "document signer certificate".into(),
            expected: "an X.509 certificate".into(),
            detail: e.to_string(),
        })
    })
}

/// The signed attributes (RFC 5652 5.3): content type, the LDS security
/// object's digest, signing time.
fn signed_attributes(
    lds: &[u8],
    signing_time: SystemTime,
) -> Result<SetOfVec<Attribute>, PkiError> {
    let attr = |oid: ObjectIdentifier, value: der::Result<Any>| -> Result<Attribute, PkiError> {
        let values = value.and_then(|v| SetOfVec::try_from(vec![v]))?;
        Ok(Attribute { oid, values })
    };
    let digest = OctetString::new(sha256(lds))?;
    Ok(SetOfVec::try_from(vec![
        attr(ID_CONTENT_TYPE, Any::encode_from(&ICAO_LDS_SECURITY_OBJECT))?,
        attr(ID_MESSAGE_DIGEST, Any::encode_from(&digest))?,
        attr(
            ID_SIGNING_TIME,
            Any::encode_from(&time(crate::utc::unix_secs(signing_time))?),
        )?,
    ])?)
}

/// The length of the longest EF.SOD [`build_sod_at`] can make over
/// `data_groups` with the document signer certificate `cert_der`: the
/// signature is the only part whose length varies (a DER ECDSA-Sig-Value
/// of P-256 is at most 72 bytes). Nothing is signed. A reader that knows
/// what the card should hold sizes its reads with it.
pub fn sod_length_at_most(
    data_groups: &[(u8, &[u8])],
    cert_der: &[u8],
    signing_time: SystemTime,
) -> Result<usize, PkiError> {
    let lds = lds_security_object(data_groups)?;
    let ds_cert = ds_certificate(cert_der)?;
    let signed_attrs = signed_attributes(&lds, signing_time)?;
    let longest_sig = [0u8; 72];
    Ok(assemble_sod(&lds, signed_attrs, ds_cert, &longest_sig)?.len())
}

/// EF.SOD around the signature `sig` over `signed_attrs`.
fn assemble_sod(
    lds: &[u8],
    signed_attrs: SetOfVec<Attribute>,
    ds_cert: x509_cert::Certificate,
    sig: &[u8],
) -> Result<Vec<u8>, PkiError> {
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: ds_cert.tbs_certificate.issuer.clone(),
            serial_number: ds_cert.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: algorithm(ID_SHA_256),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: algorithm(ECDSA_WITH_SHA_256),
        signature: OctetString::new(sig)?,
        unsigned_attrs: None,
    };
    let econtent = OctetString::new(lds).and_then(|o| Any::encode_from(&o));
    let signed_data = SignedData {
        version: CmsVersion::V3,
        digest_algorithms: SetOfVec::try_from(vec![algorithm(ID_SHA_256)])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ICAO_LDS_SECURITY_OBJECT,
            econtent: Some(econtent?),
        },
        certificates: Some(
            SetOfVec::try_from(vec![CertificateChoices::Certificate(ds_cert)])
                .map(CertificateSet)?,
        ),
        crls: None,
        signer_infos: SetOfVec::try_from(vec![signer_info]).map(SignerInfos)?,
    };
    let content_info = ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed_data)?,
    };
    let inner = content_info.to_der()?;
    let wrapped = Any::new(sod_tag(), inner)?;
    Ok(wrapped.to_der()?)
}

/// The parameters of an AlgorithmIdentifier are absent or NULL.
fn check_params(a: &AlgorithmIdentifierOwned, element: &str) -> Result<(), SodProblem> {
    match &a.parameters {
        None => Ok(()),
        Some(p) if p.tag() == Tag::Null && p.value().is_empty() => Ok(()),
        Some(p) if p.tag() == Tag::Null => Err(malformed(
            element,
            "NULL parameters to be empty",
            "non-empty NULL",
        )),
        Some(p) => Err(malformed(
            &format!("{element} (parameters must be absent or NULL)"),
            "no further data",
            p.tag().to_string(),
        )),
    }
}

fn require_alg(
    a: &AlgorithmIdentifierOwned,
    element: &str,
    oid: ObjectIdentifier,
    name: &str,
) -> Result<(), SodProblem> {
    check_params(a, element)?;
    if a.oid != oid {
        return Err(SodProblem::Unsupported {
            element: element.into(),
            expected: format!("{name} ({oid})"),
            found: a.oid.to_string(),
        });
    }
    Ok(())
}

fn require_version(v: u64, element: &str, allowed: &[u64]) -> Result<u64, SodProblem> {
    if !allowed.contains(&v) {
        return Err(malformed(
            element,
            &format!(
                "version {}",
                allowed
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            v.to_string(),
        ));
    }
    Ok(v)
}

/// Parses a DER LDSSecurityObject into DG number → hash.
pub fn parse_lds_security_object(lds: &[u8]) -> Result<BTreeMap<u8, Vec<u8>>, SodProblem> {
    let o = LdsSecurityObject::from_der(lds)
        .map_err(undecodable("LDSSecurityObject", "a DER LDSSecurityObject"))?;
    let version = require_version(o.version, "LDSSecurityObject.version", &[0, 1])?;
    require_alg(
        &o.hash_algorithm,
        "LDSSecurityObject.hashAlgorithm",
        ID_SHA_256,
        "SHA-256",
    )?;
    match (version, &o.lds_version_info) {
        (1, None) => {
            return Err(malformed(
                "LDSSecurityObject.ldsVersionInfo",
                "an LDSVersionInfo in version 1",
                "none",
            ))
        }
        (0, Some(_)) => {
            return Err(malformed(
                "LDSSecurityObject.ldsVersionInfo",
                "none in version 0",
                "an LDSVersionInfo",
            ))
        }
        _ => {}
    }
    let mut hashes = BTreeMap::new();
    for dgh in &o.data_group_hash_values {
        let n = dgh.data_group_number;
        let n = u8::try_from(n)
            .ok()
            .filter(|&n| n != 0)
            .ok_or_else(|| malformed("DataGroupHash.dataGroupNumber", "1..=255", n.to_string()))?;
        let value = dgh.data_group_hash_value.as_bytes();
        if value.len() != 32 {
            return Err(malformed(
                &format!("DataGroupHash.dataGroupHashValue of DG{n}"),
                "a 32-byte SHA-256 value",
                format!("{} bytes", value.len()),
            ));
        }
        if hashes.insert(n, value.to_vec()).is_some() {
            return Err(SodProblem::DuplicateDataGroup { number: n });
        }
    }
    if hashes.is_empty() {
        return Err(malformed(
            "LDSSecurityObject.dataGroupHashValues",
            "at least one DataGroupHash",
            "an empty list",
        ));
    }
    Ok(hashes)
}

/// What the one SignerInfo says, checked for shape.
struct SignerFacts<'a> {
    sid: &'a IssuerAndSerialNumber,
    signed_attrs_der: Vec<u8>,
    signature: &'a [u8],
    content_type: ObjectIdentifier,
    message_digest: OctetString,
    signing_time: Option<Duration>,
}

/// The single value of a signed attribute, decoded as `T`.
fn single_value<T: for<'b> Decode<'b>>(a: &Attribute, name: &str) -> Result<T, SodProblem> {
    let [v] = a.values.as_slice() else {
        return Err(malformed(
            &format!("{name} attrValues (exactly one value)"),
            "no further data",
            format!("{} values", a.values.len()),
        ));
    };
    v.to_der().and_then(|d| T::from_der(&d)).map_err(|e| {
        malformed(
            &format!("{name} attribute value"),
            "its type",
            e.to_string(),
        )
    })
}

fn parse_signer_info(si: &SignerInfo) -> Result<SignerFacts<'_>, SodProblem> {
    require_version(si.version as u64, "SignerInfo.version", &[1])?;
    let SignerIdentifier::IssuerAndSerialNumber(sid) = &si.sid else {
        return Err(malformed(
            "SignerInfo.sid (issuerAndSerialNumber)",
            "issuerAndSerialNumber",
            "subjectKeyIdentifier [0]",
        ));
    };
    require_alg(
        &si.digest_alg,
        "SignerInfo.digestAlgorithm",
        ID_SHA_256,
        "SHA-256",
    )?;
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| malformed("SignerInfo.signedAttrs [0]", "signed attributes", "none"))?;
    require_alg(
        &si.signature_algorithm,
        "SignerInfo.signatureAlgorithm",
        ECDSA_WITH_SHA_256,
        "ecdsa-with-SHA256",
    )?;

    let mut content_type = None;
    let mut message_digest = None;
    let mut signing_time = None;
    let mut seen: Vec<ObjectIdentifier> = Vec::new();
    for at in attrs.iter() {
        if seen.contains(&at.oid) {
            return Err(malformed(
                "signedAttrs",
                "each attribute type once",
                format!("{} twice", at.oid),
            ));
        }
        seen.push(at.oid);
        if at.oid == ID_CONTENT_TYPE {
            content_type = Some(single_value::<ObjectIdentifier>(at, "contentType")?);
        } else if at.oid == ID_MESSAGE_DIGEST {
            message_digest = Some(single_value::<OctetString>(at, "messageDigest")?);
        } else if at.oid == ID_SIGNING_TIME {
            signing_time = Some(single_value::<Time>(at, "signingTime")?.to_unix_duration());
        }
    }
    Ok(SignerFacts {
        sid,
        signed_attrs_der: attrs
            .to_der()
            .map_err(undecodable("signedAttrs", "a DER SET OF Attribute"))?,
        signature: si.signature.as_bytes(),
        content_type: content_type
            .ok_or_else(|| malformed("signedAttrs", "a contentType attribute", "none"))?,
        message_digest: message_digest
            .ok_or_else(|| malformed("signedAttrs", "a messageDigest attribute", "none"))?,
        signing_time,
    })
}

/// The ContentInfo inside the EF.SOD wrapper (tag 77), nothing after it.
fn unwrap_sod(sod: &[u8]) -> Result<ContentInfo, SodProblem> {
    let mut top = SliceReader::new(sod).map_err(undecodable("EF.SOD", "a DER element"))?;
    let wrapper = AnyRef::decode(&mut top)
        .map_err(undecodable("EF.SOD wrapper", "[APPLICATION 23] (tag 77)"))?;
    top.finish(())
        .map_err(undecodable("EF.SOD", "no further data"))?;
    if wrapper.tag() != sod_tag() {
        return Err(malformed(
            "EF.SOD wrapper",
            "[APPLICATION 23] (tag 77)",
            wrapper.tag().to_string(),
        ));
    }
    ContentInfo::from_der(wrapper.value()).map_err(undecodable(
        "EF.SOD content (one ContentInfo)",
        "a DER ContentInfo",
    ))
}

/// Parses and verifies an EF.SOD: structure (strict DER), messageDigest,
/// the document signer's signature, and the DS certificate against
/// `trust_anchors` (CA certificates, DER) at `now`: issuer name, signature,
/// validity and keyUsage digitalSignature; the anchor must be a CA valid at
/// `now`.
pub fn verify_sod(
    sod: &[u8],
    trust_anchors: &[Vec<u8>],
    now: SystemTime,
) -> Result<SodContents, SodProblem> {
    // --- structure -------------------------------------------------------
    let sd = signed_data(sod)?;
    let eci = &sd.encap_content_info;
    let econtent = lds_content(eci)?;
    let hashes = parse_lds_security_object(econtent)?;
    let [si] = sd.signer_infos.0.as_slice() else {
        return Err(malformed(
            "SignedData.signerInfos (exactly one SignerInfo)",
            "one SignerInfo",
            format!("{}", sd.signer_infos.0.len()),
        ));
    };
    let si = parse_signer_info(si)?;
    check_content_binding(&si, eci, econtent)?;

    // --- signer certificate and signature --------------------------------
    let cert_der = signer_certificate(&sd, &si)?;
    let ds = parse_cert(&cert_der, DS).map_err(SodProblem::SignerCertificate)?;
    check_signature(&ds, &si)?;

    // --- document signer certificate -------------------------------------
    let now_s = crate::utc::unix_secs(now);
    check_document_signer(&ds, now_s)?;
    check_trust(&ds, trust_anchors, now_s)?;
    Ok(SodContents {
        hashes,
        signer_certificate: cert_der,
        signing_time: si.signing_time.map(|t| UNIX_EPOCH + t),
    })
}

/// How errors about the document signer certificate name it.
const DS: &str = "document signer certificate";

/// The SignedData of an EF.SOD: id-signedData content, version 3, and
/// SHA-256 among its digest algorithms (each with valid parameters).
fn signed_data(sod: &[u8]) -> Result<SignedData, SodProblem> {
    let ci = unwrap_sod(sod)?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(malformed(
            "ContentInfo.contentType (id-signedData)",
            &ID_SIGNED_DATA.to_string(),
            ci.content_type.to_string(),
        ));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(undecodable("SignedData", "a DER SignedData"))?;
    require_version(sd.version as u64, "SignedData.version", &[3])?;
    let mut has_sha256 = false;
    for alg in sd.digest_algorithms.iter() {
        check_params(alg, "SignedData.digestAlgorithms item")?;
        has_sha256 |= alg.oid == ID_SHA_256;
    }
    if !has_sha256 {
        return Err(SodProblem::Unsupported {
            element: "SignedData.digestAlgorithms".into(),
            expected: "SHA-256 (2.16.840.1.101.3.4.2.1)".into(),
            found: "a set without SHA-256".into(),
        });
    }
    Ok(sd)
}

/// The encapsulated LDSSecurityObject's bytes: the eContent OCTET STRING
/// of an id-icao-mrtd-security-ldsSecurityObject content.
fn lds_content(eci: &EncapsulatedContentInfo) -> Result<&[u8], SodProblem> {
    if eci.econtent_type != ICAO_LDS_SECURITY_OBJECT {
        return Err(SodProblem::Unsupported {
            element: "encapContentInfo.eContentType".into(),
            expected: "id-icao-mrtd-security-ldsSecurityObject (2.23.136.1.1.1)".into(),
            found: eci.econtent_type.to_string(),
        });
    }
    Ok(eci
        .econtent
        .as_ref()
        .ok_or_else(|| malformed("encapContentInfo.eContent [0]", "the eContent", "none"))?
        .decode_as::<OctetStringRef<'_>>()
        .map_err(undecodable(
            "encapContentInfo.eContent OCTET STRING",
            "an OCTET STRING",
        ))?
        .as_bytes())
}

/// The signed attributes bind the encapsulated content: the same content
/// type, and a messageDigest equal to the content's SHA-256.
fn check_content_binding(
    si: &SignerFacts<'_>,
    eci: &EncapsulatedContentInfo,
    econtent: &[u8],
) -> Result<(), SodProblem> {
    if si.content_type != eci.econtent_type {
        return Err(SodProblem::ContentTypeMismatch {
            signed: si.content_type.to_string(),
            encapsulated: eci.econtent_type.to_string(),
        });
    }
    let computed = sha256(econtent);
    if si.message_digest.as_bytes() != computed.as_slice() {
        return Err(SodProblem::MessageDigestMismatch {
            signed: crate::hex::lower(si.message_digest.as_bytes()),
            computed: crate::hex::lower(&computed),
        });
    }
    Ok(())
}

/// DER of the certificate in SignedData.certificates that the SignerInfo
/// names by issuer and serial number.
fn signer_certificate(sd: &SignedData, si: &SignerFacts<'_>) -> Result<Vec<u8>, SodProblem> {
    let signer_cert = sd
        .certificates
        .iter()
        .flat_map(|c| c.0.iter())
        .find_map(|c| match c {
            CertificateChoices::Certificate(c)
                if c.tbs_certificate.issuer == si.sid.issuer
                    && c.tbs_certificate.serial_number == si.sid.serial_number =>
            {
                Some(c)
            }
            _ => None,
        });
    let not_found = || SodProblem::SignerCertificateNotFound {
        issuer: name_string(&si.sid.issuer.to_der().unwrap_or_default()),
        serial: crate::hex::lower(si.sid.serial_number.as_bytes()),
    };
    signer_cert
        .ok_or_else(not_found)?
        .to_der()
        .map_err(undecodable(
            "SignedData.certificates item (Certificate)",
            "a DER Certificate",
        ))
}

/// The SignerInfo's signature is a well-formed ECDSA-Sig-Value over the
/// signed attributes, made by the document signer's P-256 key.
fn check_signature(
    ds: &x509_parser::certificate::X509Certificate<'_>,
    si: &SignerFacts<'_>,
) -> Result<(), SodProblem> {
    let ds_point = parse_p256_spki(ds.tbs_certificate.subject_pki.raw).map_err(|e| {
        SodProblem::Unsupported {
            element: "document signer public key".into(),
            expected: "ECDSA P-256".into(),
            found: e,
        }
    })?;
    der_to_raw_sig(si.signature).map_err(|e| {
        malformed(
            "SignerInfo.signature",
            "a DER ECDSA-Sig-Value",
            e.to_string(),
        )
    })?;
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &ds_point)
        .verify(&si.signed_attrs_der, si.signature)
        .map_err(|_| SodProblem::BadSignature)
}

/// The document signer certificate on its own: valid at `now_s`, not a
/// CA, and with keyUsage digitalSignature.
fn check_document_signer(
    ds: &x509_parser::certificate::X509Certificate<'_>,
    now_s: i64,
) -> Result<(), SodProblem> {
    check::check_validity(ds, DS, now_s).map_err(SodProblem::SignerCertificate)?;
    if ds.is_ca() {
        return Err(SodProblem::SignerCertificate(CertProblem::UnexpectedCa {
            which: DS.into(),
        }));
    }
    match ds.key_usage() {
        Ok(Some(ku)) if ku.value.digital_signature() => Ok(()),
        Ok(Some(ku)) => Err(SodProblem::SignerKeyUsage {
            found: format!("{:?}", ku.value),
        }),
        Ok(None) => Err(SodProblem::SignerKeyUsage {
            found: "(absent)".into(),
        }),
        Err(e) => Err(SodProblem::SignerKeyUsage {
            found: format!("unparseable ({e})"),
        }),
    }
}

/// The document signer was issued by one of `trust_anchors` (every anchor
/// must parse), and that anchor is a CA valid at `now_s`. When anchors of
/// the right name exist but none issued it, the first one's refusal is
/// reported.
fn check_trust(
    ds: &x509_parser::certificate::X509Certificate<'_>,
    trust_anchors: &[Vec<u8>],
    now_s: i64,
) -> Result<(), SodProblem> {
    let mut first_err = None;
    let mut candidates = 0;
    for (index, anchor_der) in trust_anchors.iter().enumerate() {
        let name = format!("trust anchor #{index}");
        let anchor = parse_cert(anchor_der, &name)
            .map_err(|problem| SodProblem::TrustAnchor { index, problem })?;
        if anchor.subject().as_raw() != ds.issuer().as_raw() {
            continue;
        }
        candidates += 1;
        match check::check_issued_by(ds, DS, &anchor) {
            Ok(()) => {
                return check::check_ca(&anchor, &name, now_s)
                    .map_err(|problem| SodProblem::TrustAnchor { index, problem });
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) if candidates > 0 => Err(SodProblem::SignerCertificate(e)),
        _ => Err(SodProblem::UntrustedSigner {
            issuer: ds.issuer().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{CertificateAuthority, LocalCa};
    use crate::profile::CertProfile;
    use crate::test_support::{make_csr, new_ca, subject, terms};
    use ring::rand::SystemRandom;
    use ring::signature::{
        EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING,
    };

    const DG1: &[u8] = b"\x61\x0bDG1 content";
    const DG2: &[u8] = b"\x75\x0fDG2 face image.";
    const DG14: &[u8] = b"\x6e\x05DG14.";

    fn dgs() -> Vec<(u8, &'static [u8])> {
        vec![(2, DG2), (1, DG1), (14, DG14)]
    }

    fn setup() -> (tempfile::TempDir, LocalCa, Vec<u8>) {
        let (t, ca) = new_ca();
        let sod = build_sod(&dgs(), ca.document_signer()).unwrap();
        (t, ca, sod)
    }

    fn flip(data: &[u8], pos: usize) -> Vec<u8> {
        let mut v = data.to_vec();
        v[pos] ^= 0x01;
        v
    }

    fn find(hay: &[u8], needle: &[u8]) -> usize {
        hay.windows(needle.len()).position(|w| w == needle).unwrap()
    }

    #[test]
    fn round_trip() {
        let (_t, ca, sod) = setup();
        assert_eq!(sod[0], SOD_TAG);
        let out = verify_sod(&sod, &ca.chain(), SystemTime::now()).unwrap();
        assert_eq!(
            out.hashes.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 14]
        );
        assert_eq!(out.hashes[&1], sha256(DG1));
        assert_eq!(out.hashes[&2], sha256(DG2));
        assert_eq!(out.hashes[&14], sha256(DG14));
        assert_eq!(out.signer_certificate, ca.document_signer().certificate());
        let st = out.signing_time.unwrap();
        let age = SystemTime::now().duration_since(st).unwrap_or_default();
        assert!(age < Duration::from_secs(120));
    }

    #[test]
    fn lds_object_layout() {
        let lds = lds_security_object(&[(1, b"abc")]).unwrap();
        // SEQ(57) { INT 0, SEQ { sha256 }, SEQ { SEQ { INT 1, OCTET STRING(32) } } }
        assert_eq!(&lds[..5], &[0x30, 0x39, 0x02, 0x01, 0x00]);
        assert_eq!(parse_lds_security_object(&lds).unwrap()[&1], sha256(b"abc"));
        assert!(lds_security_object(&[]).is_err());
        assert!(lds_security_object(&[(0, b"x")]).is_err());
        assert!(lds_security_object(&[(3, b"x"), (3, b"y")]).is_err());
    }

    #[test]
    fn tampered_dg_hash_fails_message_digest() {
        let (_t, ca, sod) = setup();
        let pos = find(&sod, &sha256(DG2));
        let e = verify_sod(&flip(&sod, pos + 5), &ca.chain(), SystemTime::now()).unwrap_err();
        assert!(matches!(e, SodProblem::MessageDigestMismatch { .. }), "{e}");
    }

    #[test]
    fn tampered_econtent_dg_number_fails_message_digest() {
        let (_t, ca, sod) = setup();
        // DataGroupHash for DG14: 30 25 02 01 0E 04 20 …
        let pos = find(&sod, &[0x30, 0x25, 0x02, 0x01, 0x0e, 0x04, 0x20]);
        let e = verify_sod(&flip(&sod, pos + 4), &ca.chain(), SystemTime::now()).unwrap_err();
        assert!(matches!(e, SodProblem::MessageDigestMismatch { .. }), "{e}");
    }

    #[test]
    fn tampered_message_digest_attribute_fails() {
        let (_t, ca, sod) = setup();
        let lds = lds_security_object(&dgs()).unwrap();
        let pos = find(&sod, &sha256(&lds));
        let e = verify_sod(&flip(&sod, pos + 3), &ca.chain(), SystemTime::now()).unwrap_err();
        assert!(matches!(e, SodProblem::MessageDigestMismatch { .. }), "{e}");
    }

    #[test]
    fn tampered_signature_fails() {
        let (_t, ca, sod) = setup();
        // The signature is the last element: flip a byte inside s.
        let e = verify_sod(&flip(&sod, sod.len() - 3), &ca.chain(), SystemTime::now()).unwrap_err();
        assert_eq!(e, SodProblem::BadSignature);
    }

    #[test]
    fn tampered_signing_time_fails_signature() {
        let (_t, ca, sod) = setup();
        let pos = find(&sod, &ID_SIGNING_TIME.to_der().unwrap());
        // 06 09 <oid> 31 0f 17 0d YYMMDD… : flip a seconds digit (0 <-> 1).
        let tpos = pos + 11 + 4 + 11;
        let mut t = sod.clone();
        t[tpos] = if t[tpos] == b'0' { b'1' } else { b'0' };
        let e = verify_sod(&t, &ca.chain(), SystemTime::now()).unwrap_err();
        assert_eq!(e, SodProblem::BadSignature);
    }

    #[test]
    fn tampered_certificate_fails() {
        let (_t, ca, sod) = setup();
        let cert = ca.document_signer().certificate();
        let pos = find(&sod, cert);
        // Inside the certificate's own signature value.
        let e = verify_sod(
            &flip(&sod, pos + cert.len() - 3),
            &ca.chain(),
            SystemTime::now(),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                SodProblem::SignerCertificate(CertProblem::BadSignature { .. })
            ),
            "{e}"
        );
        // Inside its serial number: no certificate matches the sid any more.
        let serial_pos = pos + 4 + 2 + 5 + 2 + 2; // 30 82 LL LL | 30 82 LL LL | a0 03 02 01 02 | 02 11 00?
        let e =
            verify_sod(&flip(&sod, serial_pos + 3), &ca.chain(), SystemTime::now()).unwrap_err();
        assert!(
            matches!(e, SodProblem::SignerCertificateNotFound { .. }),
            "{e}"
        );
    }

    #[test]
    fn wrong_or_missing_trust_anchor() {
        let (_t, _ca, sod) = setup();
        let (_t2, other) = new_ca();
        let e = verify_sod(&sod, &other.chain(), SystemTime::now()).unwrap_err();
        assert!(
            matches!(
                e,
                SodProblem::SignerCertificate(CertProblem::BadSignature { .. })
            ),
            "{e}"
        );
        let e = verify_sod(&sod, &[], SystemTime::now()).unwrap_err();
        assert!(matches!(e, SodProblem::UntrustedSigner { .. }), "{e}");
        let e = verify_sod(&sod, &[b"bad".to_vec()], SystemTime::now()).unwrap_err();
        assert!(matches!(e, SodProblem::TrustAnchor { index: 0, .. }), "{e}");
    }

    #[test]
    fn expired_signer() {
        let (_t, ca, sod) = setup();
        let later = SystemTime::now() + Duration::from_secs(11 * 366 * 86400);
        let e = verify_sod(&sod, &ca.chain(), later).unwrap_err();
        assert!(
            matches!(
                e,
                SodProblem::SignerCertificate(CertProblem::Expired { .. })
            ),
            "{e}"
        );
        let earlier = SystemTime::now() - Duration::from_secs(3600);
        let e = verify_sod(&sod, &ca.chain(), earlier).unwrap_err();
        assert!(
            matches!(
                e,
                SodProblem::SignerCertificate(CertProblem::NotYetValid { .. })
            ),
            "{e}"
        );
    }

    struct TestSigner {
        cert: Vec<u8>,
        key: EcdsaKeyPair,
    }

    impl DocumentSigner for TestSigner {
        fn certificate(&self) -> &[u8] {
            &self.cert
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
            Ok(self
                .key
                .sign(&SystemRandom::new(), message)
                .unwrap()
                .as_ref()
                .to_vec())
        }
    }

    fn asn1_and_fixed_keys() -> (EcdsaKeyPair, EcdsaKeyPair) {
        let rng = SystemRandom::new();
        let p8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        (
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, p8.as_ref(), &rng).unwrap(),
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, p8.as_ref(), &rng).unwrap(),
        )
    }

    #[test]
    fn signer_without_digital_signature_usage_is_refused() {
        let (_t, ca) = new_ca();
        let (asn1, fixed) = asn1_and_fixed_keys();
        let cert = ca
            .issue(
                &make_csr(&fixed, &subject()),
                CertProfile::Signature,
                &terms(),
            )
            .unwrap();
        let signer = TestSigner { cert, key: asn1 };
        let sod = build_sod(&dgs(), &signer).unwrap();
        let e = verify_sod(&sod, &ca.chain(), SystemTime::now()).unwrap_err();
        assert!(matches!(e, SodProblem::SignerKeyUsage { .. }), "{e}");
    }

    #[test]
    fn build_refuses_mismatched_or_raw_signer() {
        let (_t, ca) = new_ca();
        let (asn1, fixed) = asn1_and_fixed_keys();
        let cert = ca.document_signer().certificate().to_vec();
        let wrong_key = TestSigner {
            cert: cert.clone(),
            key: asn1,
        };
        assert!(matches!(
            build_sod(&dgs(), &wrong_key),
            Err(PkiError::InvalidInput {
                what: "document signer",
                ..
            })
        ));
        let raw_sig = TestSigner { cert, key: fixed };
        assert!(matches!(
            build_sod(&dgs(), &raw_sig),
            Err(PkiError::SignatureEncoding(_))
        ));
    }

    #[test]
    fn structural_errors_name_the_element() {
        let (_t, ca, sod) = setup();
        let now = SystemTime::now();
        // Without the 77 wrapper.
        let inner = AnyRef::from_der(&sod).unwrap().value().to_vec();
        match verify_sod(&inner, &ca.chain(), now).unwrap_err() {
            SodProblem::Malformed { element, .. } => assert_eq!(element, "EF.SOD wrapper"),
            e => panic!("{e}"),
        }
        // Truncated.
        let e = verify_sod(&sod[..sod.len() - 1], &ca.chain(), now).unwrap_err();
        assert!(matches!(e, SodProblem::Malformed { .. }), "{e}");
        // Trailing byte.
        let mut t = sod.clone();
        t.push(0);
        match verify_sod(&t, &ca.chain(), now).unwrap_err() {
            SodProblem::Malformed { element, .. } => assert_eq!(element, "EF.SOD"),
            e => panic!("{e}"),
        }
        // SignedData version 3 -> 4.
        let pos = find(&sod, &[0x02, 0x01, 0x03, 0x31]);
        let mut t = sod.clone();
        t[pos + 2] = 4;
        match verify_sod(&t, &ca.chain(), now).unwrap_err() {
            SodProblem::Malformed {
                element,
                expected,
                found,
            } => {
                assert_eq!(element, "SignedData.version");
                assert_eq!(expected, "version 3");
                assert_eq!(found, "4");
            }
            e => panic!("{e}"),
        }
        // eContentType changed (last arc 1 -> 2).
        let pos = find(&sod, &ICAO_LDS_SECURITY_OBJECT.to_der().unwrap());
        let e = verify_sod(&flip(&sod, pos + 7), &ca.chain(), now).unwrap_err();
        assert!(
            matches!(e, SodProblem::Unsupported { ref element, .. } if element == "encapContentInfo.eContentType"),
            "{e}"
        );
    }

    #[test]
    fn lds_parser_rejects_bad_shapes() {
        let good = lds_security_object(&[(1, b"a")]).unwrap();
        assert!(parse_lds_security_object(&good).is_ok());
        let mut v2 = good.clone();
        v2[4] = 2;
        assert!(matches!(
            parse_lds_security_object(&v2),
            Err(SodProblem::Malformed { .. })
        ));
        let lds = |alg: AlgorithmIdentifierOwned, dgs: &[(u64, &[u8])]| {
            LdsSecurityObject {
                version: 0,
                hash_algorithm: alg,
                data_group_hash_values: dgs
                    .iter()
                    .map(|&(n, h)| DataGroupHash {
                        data_group_number: n,
                        data_group_hash_value: OctetString::new(h).unwrap(),
                    })
                    .collect(),
                lds_version_info: None,
            }
            .to_der()
            .unwrap()
        };
        let dup = lds(algorithm(ID_SHA_256), &[(1, &[0; 32]), (1, &[1; 32])]);
        assert_eq!(
            parse_lds_security_object(&dup),
            Err(SodProblem::DuplicateDataGroup { number: 1 })
        );
        let short = lds(algorithm(ID_SHA_256), &[(1, &[0; 20])]);
        assert!(matches!(
            parse_lds_security_object(&short),
            Err(SodProblem::Malformed { .. })
        ));
        let sha1 = lds(
            algorithm(ObjectIdentifier::new_unwrap("1.3.14.3.2.26")),
            &[],
        );
        assert!(matches!(
            parse_lds_security_object(&sha1),
            Err(SodProblem::Unsupported { .. })
        ));
        // NULL parameters are accepted.
        let with_null = lds(
            AlgorithmIdentifierOwned {
                oid: ID_SHA_256,
                parameters: Some(Any::new(Tag::Null, Vec::new()).unwrap()),
            },
            &[(3, &[0; 32])],
        );
        assert!(parse_lds_security_object(&with_null).is_ok());
    }
}
