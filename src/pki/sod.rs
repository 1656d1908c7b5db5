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

use ring::digest;
use ring::signature::{self, UnparsedPublicKey};

use super::check::{self, parse_cert, CertProblem};
use super::csr::{der_to_raw_sig, parse_p256_spki};
use super::der::{self, oids, Der, DerError, TAG_OCTET_STRING, TAG_SEQUENCE, TAG_SET};
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

impl From<DerError> for SodProblem {
    fn from(e: DerError) -> Self {
        SodProblem::Malformed {
            element: e.element,
            expected: e.expected,
            found: e.found,
        }
    }
}

fn malformed(element: &str, expected: &str, found: impl Into<String>) -> SodProblem {
    SodProblem::Malformed {
        element: element.into(),
        expected: expected.into(),
        found: found.into(),
    }
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
    let hashes: Vec<Vec<u8>> = map
        .iter()
        .map(|(&n, h)| der::seq(&[&der::uint_small(u64::from(n)), &der::octet_string(h)]))
        .collect();
    let refs: Vec<&[u8]> = hashes.iter().map(|h| h.as_slice()).collect();
    Ok(der::seq(&[
        &der::uint_small(0),
        &der::algorithm_id(oids::SHA256),
        &der::seq(&refs),
    ]))
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
    let lds = lds_security_object(data_groups)?;
    let cert_der = signer.certificate();
    let cert = parse_cert(cert_der, "document signer certificate")?;
    let ds_point = parse_p256_spki(cert.tbs_certificate.subject_pki.raw).map_err(|e| {
        CertProblem::UnsupportedKey {
            which: "document signer certificate".into(),
            detail: e.to_string(),
        }
    })?;

    let attr =
        |arcs: &[u64], value: Vec<u8>| der::seq(&[&der::oid(arcs), &der::set_of(vec![value])]);
    let attrs = der::set_of(vec![
        attr(
            oids::CMS_CONTENT_TYPE,
            der::oid(oids::ICAO_LDS_SECURITY_OBJECT),
        ),
        attr(oids::CMS_MESSAGE_DIGEST, der::octet_string(&sha256(&lds))),
        attr(
            oids::CMS_SIGNING_TIME,
            der::time(crate::utc::unix_secs(signing_time)),
        ),
    ]);
    let sig = signer.sign(&attrs)?;
    der_to_raw_sig(&sig)?; // strict DER ECDSA-Sig-Value
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &ds_point)
        .verify(&attrs, &sig)
        .map_err(|_| PkiError::InvalidInput {
            what: "document signer",
            reason: "signature does not verify with the key in its certificate".into(),
        })?;
    Ok(assemble_sod(&lds, attrs, &cert, cert_der, &sig))
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
    let cert = parse_cert(cert_der, "document signer certificate")?;
    let attr =
        |arcs: &[u64], value: Vec<u8>| der::seq(&[&der::oid(arcs), &der::set_of(vec![value])]);
    let attrs = der::set_of(vec![
        attr(
            oids::CMS_CONTENT_TYPE,
            der::oid(oids::ICAO_LDS_SECURITY_OBJECT),
        ),
        attr(oids::CMS_MESSAGE_DIGEST, der::octet_string(&sha256(&lds))),
        attr(
            oids::CMS_SIGNING_TIME,
            der::time(crate::utc::unix_secs(signing_time)),
        ),
    ]);
    let longest_sig = [0u8; 72];
    Ok(assemble_sod(&lds, attrs, &cert, cert_der, &longest_sig).len())
}

/// EF.SOD around a signature over `attrs` (the signed attributes as a SET).
fn assemble_sod(
    lds: &[u8],
    attrs: Vec<u8>,
    cert: &x509_parser::certificate::X509Certificate<'_>,
    cert_der: &[u8],
    sig: &[u8],
) -> Vec<u8> {
    let mut signed_attrs = attrs;
    if let Some(tag) = signed_attrs.first_mut() {
        *tag = der::ctx_cons(0); // SET -> [0] IMPLICIT
    }

    let sid = der::seq(&[
        cert.issuer().as_raw(),
        &der::tlv(der::TAG_INTEGER, cert.raw_serial()),
    ]);
    let signer_info = der::seq(&[
        &der::uint_small(1),
        &sid,
        &der::algorithm_id(oids::SHA256),
        &signed_attrs,
        &der::algorithm_id(oids::ECDSA_WITH_SHA256),
        &der::octet_string(sig),
    ]);
    let signed_data = der::seq(&[
        &der::uint_small(3),
        &der::set_of(vec![der::algorithm_id(oids::SHA256)]),
        &der::seq(&[
            &der::oid(oids::ICAO_LDS_SECURITY_OBJECT),
            &der::tlv(der::ctx_cons(0), &der::octet_string(lds)),
        ]),
        &der::tlv(der::ctx_cons(0), cert_der),
        &der::set_of(vec![signer_info]),
    ]);
    let content_info = der::seq(&[
        &der::oid(oids::CMS_SIGNED_DATA),
        &der::tlv(der::ctx_cons(0), &signed_data),
    ]);
    der::tlv(SOD_TAG, &content_info)
}

/// AlgorithmIdentifier whose parameters are absent or NULL; returns the OID.
fn read_alg<'a>(d: &mut Der<'a>, element: &str) -> Result<&'a [u8], SodProblem> {
    let s = d.read(TAG_SEQUENCE, element)?;
    let mut r = s.reader();
    let oid = r.read_oid(&format!("{element}.algorithm"))?;
    if let Some(p) = r.read_optional(der::TAG_NULL, &format!("{element}.parameters"))? {
        if !p.content.is_empty() {
            return Err(malformed(
                element,
                "NULL parameters to be empty",
                "non-empty NULL",
            ));
        }
    }
    r.finish(&format!("{element} (parameters must be absent or NULL)"))?;
    Ok(oid.content)
}

fn require_alg(d: &mut Der<'_>, element: &str, arcs: &[u64], name: &str) -> Result<(), SodProblem> {
    let oid = read_alg(d, element)?;
    if oid != der::oid_content(arcs).as_slice() {
        return Err(SodProblem::Unsupported {
            element: element.into(),
            expected: format!("{name} ({})", der::dotted(arcs)),
            found: der::oid_to_string(oid).unwrap_or_default(),
        });
    }
    Ok(())
}

fn require_version(d: &mut Der<'_>, element: &str, allowed: &[u64]) -> Result<u64, SodProblem> {
    let v = d.read_u64(element)?;
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
    let mut outer = Der::new(lds);
    let s = outer.read(TAG_SEQUENCE, "LDSSecurityObject")?;
    outer.finish("LDSSecurityObject")?;
    let mut r = s.reader();
    let version = require_version(&mut r, "LDSSecurityObject.version", &[0, 1])?;
    require_alg(
        &mut r,
        "LDSSecurityObject.hashAlgorithm",
        oids::SHA256,
        "SHA-256",
    )?;
    let list = r.read(TAG_SEQUENCE, "LDSSecurityObject.dataGroupHashValues")?;
    if version == 1 {
        r.read(TAG_SEQUENCE, "LDSSecurityObject.ldsVersionInfo")?;
    }
    r.finish("LDSSecurityObject")?;
    let mut hashes = BTreeMap::new();
    let mut items = list.reader();
    while !items.is_empty() {
        let dgh = items.read(TAG_SEQUENCE, "DataGroupHash")?;
        let mut h = dgh.reader();
        let n = h.read_u64("DataGroupHash.dataGroupNumber")?;
        let n = u8::try_from(n)
            .ok()
            .filter(|&n| n != 0)
            .ok_or_else(|| malformed("DataGroupHash.dataGroupNumber", "1..=255", n.to_string()))?;
        let value = h.read_octet_string("DataGroupHash.dataGroupHashValue")?;
        h.finish("DataGroupHash")?;
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

struct SignerInfo<'a> {
    issuer: &'a [u8],
    serial: &'a [u8],
    signed_attrs_raw: &'a [u8],
    signature: &'a [u8],
    content_type: &'a [u8],
    message_digest: &'a [u8],
    signing_time: Option<i64>,
}

fn parse_signer_info<'a>(si: &der::Tlv<'a>) -> Result<SignerInfo<'a>, SodProblem> {
    let mut r = si.reader();
    require_version(&mut r, "SignerInfo.version", &[1])?;
    let sid = r.read(TAG_SEQUENCE, "SignerInfo.sid (issuerAndSerialNumber)")?;
    let mut s = sid.reader();
    let issuer = s.read(TAG_SEQUENCE, "issuerAndSerialNumber.issuer")?;
    let serial = s.read_integer("issuerAndSerialNumber.serialNumber")?;
    s.finish("issuerAndSerialNumber")?;
    require_alg(
        &mut r,
        "SignerInfo.digestAlgorithm",
        oids::SHA256,
        "SHA-256",
    )?;
    let attrs = r.read(der::ctx_cons(0), "SignerInfo.signedAttrs [0]")?;
    require_alg(
        &mut r,
        "SignerInfo.signatureAlgorithm",
        oids::ECDSA_WITH_SHA256,
        "ecdsa-with-SHA256",
    )?;
    let signature = r.read_octet_string("SignerInfo.signature")?;
    r.read_optional(der::ctx_cons(1), "SignerInfo.unsignedAttrs [1]")?;
    r.finish("SignerInfo")?;

    let mut content_type = None;
    let mut message_digest = None;
    let mut signing_time = None;
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut a = attrs.reader();
    while !a.is_empty() {
        let at = a.read(TAG_SEQUENCE, "signedAttrs Attribute")?;
        let mut ar = at.reader();
        let ty = ar.read_oid("Attribute.attrType")?.content;
        let values = ar.read(TAG_SET, "Attribute.attrValues")?;
        ar.finish("Attribute")?;
        if seen.contains(&ty) {
            return Err(malformed(
                "signedAttrs",
                "each attribute type once",
                format!("{} twice", der::oid_to_string(ty).unwrap_or_default()),
            ));
        }
        seen.push(ty);
        let mut vr = values.reader();
        let is = |arcs: &[u64]| der::oid_content(arcs) == ty;
        if is(oids::CMS_CONTENT_TYPE) {
            content_type = Some(vr.read_oid("contentType attribute value")?.content);
            vr.finish("contentType attrValues (exactly one value)")?;
        } else if is(oids::CMS_MESSAGE_DIGEST) {
            message_digest = Some(vr.read_octet_string("messageDigest attribute value")?);
            vr.finish("messageDigest attrValues (exactly one value)")?;
        } else if is(oids::CMS_SIGNING_TIME) {
            let t = vr.read_any("signingTime attribute value")?;
            signing_time = Some(der::parse_time(&t, "signingTime attribute value")?);
            vr.finish("signingTime attrValues (exactly one value)")?;
        }
    }
    Ok(SignerInfo {
        issuer: issuer.raw,
        serial,
        signed_attrs_raw: attrs.raw,
        signature,
        content_type: content_type
            .ok_or_else(|| malformed("signedAttrs", "a contentType attribute", "none"))?,
        message_digest: message_digest
            .ok_or_else(|| malformed("signedAttrs", "a messageDigest attribute", "none"))?,
        signing_time,
    })
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
    let mut top = Der::new(sod);
    let wrapper = top.read(SOD_TAG, "EF.SOD wrapper")?;
    top.finish("EF.SOD")?;
    let mut w = wrapper.reader();
    let ci = w.read(TAG_SEQUENCE, "ContentInfo")?;
    w.finish("EF.SOD content (one ContentInfo)")?;
    let mut c = ci.reader();
    c.expect_oid(
        oids::CMS_SIGNED_DATA,
        "ContentInfo.contentType (id-signedData)",
    )?;
    let explicit = c.read(der::ctx_cons(0), "ContentInfo.content [0]")?;
    c.finish("ContentInfo")?;
    let mut e = explicit.reader();
    let sd = e.read(TAG_SEQUENCE, "SignedData")?;
    e.finish("ContentInfo.content [0] (one SignedData)")?;

    let mut r = sd.reader();
    require_version(&mut r, "SignedData.version", &[3])?;
    let algs = r.read(TAG_SET, "SignedData.digestAlgorithms")?;
    let mut has_sha256 = false;
    let mut ar = algs.reader();
    while !ar.is_empty() {
        let oid = read_alg(&mut ar, "SignedData.digestAlgorithms item")?;
        has_sha256 |= oid == der::oid_content(oids::SHA256).as_slice();
    }
    if !has_sha256 {
        return Err(SodProblem::Unsupported {
            element: "SignedData.digestAlgorithms".into(),
            expected: "SHA-256 (2.16.840.1.101.3.4.2.1)".into(),
            found: "a set without SHA-256".into(),
        });
    }
    let eci = r.read(TAG_SEQUENCE, "SignedData.encapContentInfo")?;
    let certs = r.read_optional(der::ctx_cons(0), "SignedData.certificates [0]")?;
    r.read_optional(der::ctx_cons(1), "SignedData.crls [1]")?;
    let infos = r.read(TAG_SET, "SignedData.signerInfos")?;
    r.finish("SignedData")?;

    let mut er = eci.reader();
    let e_type = er.read_oid("encapContentInfo.eContentType")?.content;
    if e_type != der::oid_content(oids::ICAO_LDS_SECURITY_OBJECT).as_slice() {
        return Err(SodProblem::Unsupported {
            element: "encapContentInfo.eContentType".into(),
            expected: "id-icao-mrtd-security-ldsSecurityObject (2.23.136.1.1.1)".into(),
            found: der::oid_to_string(e_type).unwrap_or_default(),
        });
    }
    let econtent_explicit = er.read(der::ctx_cons(0), "encapContentInfo.eContent [0]")?;
    er.finish("encapContentInfo")?;
    let mut ecr = econtent_explicit.reader();
    let econtent = ecr
        .read(TAG_OCTET_STRING, "encapContentInfo.eContent OCTET STRING")?
        .content;
    ecr.finish("encapContentInfo.eContent [0]")?;
    let hashes = parse_lds_security_object(econtent)?;

    let mut ir = infos.reader();
    let si_tlv = ir.read(TAG_SEQUENCE, "SignerInfo")?;
    ir.finish("SignedData.signerInfos (exactly one SignerInfo)")?;
    let si = parse_signer_info(&si_tlv)?;

    // --- content binding -------------------------------------------------
    if si.content_type != e_type {
        return Err(SodProblem::ContentTypeMismatch {
            signed: der::oid_to_string(si.content_type).unwrap_or_default(),
            encapsulated: der::oid_to_string(e_type).unwrap_or_default(),
        });
    }
    let computed = sha256(econtent);
    if si.message_digest != computed.as_slice() {
        return Err(SodProblem::MessageDigestMismatch {
            signed: crate::hex::lower(si.message_digest),
            computed: crate::hex::lower(&computed),
        });
    }

    // --- signer certificate and signature --------------------------------
    let mut cert_der = None;
    if let Some(certs) = certs {
        let mut cr = certs.reader();
        while !cr.is_empty() {
            let t = cr.read(TAG_SEQUENCE, "SignedData.certificates item (Certificate)")?;
            let cert = parse_cert(t.raw, "certificate in SignedData.certificates")
                .map_err(SodProblem::SignerCertificate)?;
            if cert.issuer().as_raw() == si.issuer && cert.raw_serial() == si.serial {
                cert_der = Some(t.raw);
                break;
            }
        }
    }
    let cert_der = cert_der.ok_or_else(|| SodProblem::SignerCertificateNotFound {
        issuer: name_string(si.issuer),
        serial: crate::hex::lower(si.serial),
    })?;
    let ds = parse_cert(cert_der, "document signer certificate")
        .map_err(SodProblem::SignerCertificate)?;
    let ds_point = parse_p256_spki(ds.tbs_certificate.subject_pki.raw).map_err(|e| {
        SodProblem::Unsupported {
            element: "document signer public key".into(),
            expected: "ECDSA P-256".into(),
            found: e.to_string(),
        }
    })?;
    der_to_raw_sig(si.signature).map_err(|e| {
        malformed(
            "SignerInfo.signature",
            "a DER ECDSA-Sig-Value",
            e.to_string(),
        )
    })?;
    let mut to_verify = si.signed_attrs_raw.to_vec();
    if let Some(tag) = to_verify.first_mut() {
        *tag = TAG_SET; // RFC 5652 5.4: signature is over the EXPLICIT SET OF
    }
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &ds_point)
        .verify(&to_verify, si.signature)
        .map_err(|_| SodProblem::BadSignature)?;

    // --- document signer certificate -------------------------------------
    const DS: &str = "document signer certificate";
    let now_s = crate::utc::unix_secs(now);
    check::check_validity(&ds, DS, now_s).map_err(SodProblem::SignerCertificate)?;
    if ds.is_ca() {
        return Err(SodProblem::SignerCertificate(CertProblem::UnexpectedCa {
            which: DS.into(),
        }));
    }
    match ds.key_usage() {
        Ok(Some(ku)) if ku.value.digital_signature() => {}
        Ok(Some(ku)) => {
            return Err(SodProblem::SignerKeyUsage {
                found: format!("{:?}", ku.value),
            })
        }
        Ok(None) => {
            return Err(SodProblem::SignerKeyUsage {
                found: "(absent)".into(),
            })
        }
        Err(e) => {
            return Err(SodProblem::SignerKeyUsage {
                found: format!("unparseable ({e})"),
            })
        }
    }
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
        match check::check_issued_by(&ds, DS, &anchor) {
            Ok(()) => {
                check::check_ca(&anchor, &name, now_s)
                    .map_err(|problem| SodProblem::TrustAnchor { index, problem })?;
                return Ok(SodContents {
                    hashes,
                    signer_certificate: cert_der.to_vec(),
                    signing_time: si
                        .signing_time
                        .and_then(|t| u64::try_from(t).ok())
                        .map(|t| UNIX_EPOCH + Duration::from_secs(t)),
                });
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
    use crate::pki::ca::{CertProfile, CertificateAuthority, LocalCa};
    use crate::pki::test_support::{make_csr, new_ca, subject, terms};
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
        let pos = find(&sod, &der::oid(oids::CMS_SIGNING_TIME));
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
        let inner = Der::new(&sod).read_any("x").unwrap().content.to_vec();
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
        let pos = find(&sod, &der::oid(oids::ICAO_LDS_SECURITY_OBJECT));
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
        let dup = der::seq(&[
            &der::uint_small(0),
            &der::algorithm_id(oids::SHA256),
            &der::seq(&[
                &der::seq(&[&der::uint_small(1), &der::octet_string(&[0; 32])]),
                &der::seq(&[&der::uint_small(1), &der::octet_string(&[1; 32])]),
            ]),
        ]);
        assert_eq!(
            parse_lds_security_object(&dup),
            Err(SodProblem::DuplicateDataGroup { number: 1 })
        );
        let short = der::seq(&[
            &der::uint_small(0),
            &der::algorithm_id(oids::SHA256),
            &der::seq(&[&der::seq(&[
                &der::uint_small(1),
                &der::octet_string(&[0; 20]),
            ])]),
        ]);
        assert!(matches!(
            parse_lds_security_object(&short),
            Err(SodProblem::Malformed { .. })
        ));
        let sha1 = der::seq(&[
            &der::uint_small(0),
            &der::algorithm_id(&[1, 3, 14, 3, 2, 26]),
            &der::seq(&[]),
        ]);
        assert!(matches!(
            parse_lds_security_object(&sha1),
            Err(SodProblem::Unsupported { .. })
        ));
        // NULL parameters are accepted.
        let with_null = der::seq(&[
            &der::uint_small(0),
            &der::seq(&[&der::oid(oids::SHA256), &der::tlv(der::TAG_NULL, &[])]),
            &der::seq(&[&der::seq(&[
                &der::uint_small(3),
                &der::octet_string(&[0; 32]),
            ])]),
        ]);
        assert!(parse_lds_security_object(&with_null).is_ok());
    }
}
