//! PKCS#10 certification requests (RFC 2986) for card-resident P-256 keys.
//!
//! The card never releases its private key; it signs the SHA-256 digest of
//! the `CertificationRequestInfo` and returns the raw 64-byte `r‖s`. The host
//! therefore works in two steps: [`request_info_der`] builds the bytes to be
//! signed, [`assemble_csr`] wraps them with the card's signature.
//!
//! # Subject
//!
//! `C=IR, SN=<surname>, GN=<given name>, serialNumber=<id>, CN=<common name>`
//! with `C` and `serialNumber` as PrintableString (RFC 5280 upper bounds and
//! string types) and the names as UTF8String (Latin script only).
//!
//! `serial_number` carries the holder's identifier in the ETSI EN 319 412-1
//! §5.1.3 "semantics identifier" form `<type><country>-<identifier>`. The
//! Iranian 10-digit national code (کد ملی) is a national *personal* number,
//! so [`SubjectName::for_national_code`] produces `PNOIR-0012345679`
//! (`IDC` would denote the number of the identity *card* document, which
//! changes on re-issue). Any other PrintableString value is accepted when the
//! struct is filled in by hand.

use const_oid::db::{rfc4519, rfc5912};
use der::asn1::{Any, BitString, IntRef, PrintableStringRef, SetOfVec, UintRef, Utf8StringRef};
use der::{Decode, Encode, Sequence, Tag, Tagged};
use ring::signature::{self, UnparsedPublicKey};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::request::{CertReq, CertReqInfo, Version};

use super::PkiError;

/// Length of an uncompressed P-256 point (`04 ‖ X ‖ Y`).
pub const P256_POINT_LEN: usize = 65;
/// Length of a raw P-256 ECDSA signature (`r ‖ s`).
pub const RAW_SIG_LEN: usize = 64;

/// Maximum length of each name attribute (RFC 5280 `ub-common-name` = 64;
/// also used for the other attributes to keep certificates compact).
pub const MAX_NAME_LEN: usize = 64;

/// Distinguished name of a card holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectName {
    /// e.g. `"REZA AHMADI"`.
    pub common_name: String,
    pub given_name: String,
    pub surname: String,
    /// ETSI semantics identifier, e.g. `"PNOIR-0012345679"` (see module docs).
    pub serial_number: String,
    /// ISO 3166 alpha-2 code, `"IR"`.
    pub country: String,
}

/// What [`verify_csr`] found in a request whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrInfo {
    pub subject: SubjectName,
    /// 65-byte uncompressed P-256 point.
    pub public_point: Vec<u8>,
}

/// Checks the check digit of an Iranian 10-digit national code.
pub fn is_valid_national_code(code: &str) -> bool {
    let d: Vec<u32> = code.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 10 || code.len() != 10 {
        return false;
    }
    // A code of ten equal digits passes the arithmetic but is never issued.
    if d.windows(2).all(|w| matches!(w, [x, y] if x == y)) {
        return false;
    }
    let Some((&last, body)) = d.split_last() else {
        return false;
    };
    let sum: u32 = body
        .iter()
        .enumerate()
        .map(|(i, &x)| x * (10 - i as u32))
        .sum();
    let r = sum % 11;
    let check = if r < 2 { r } else { 11 - r };
    check == last
}

fn check_latin_name(what: &'static str, v: &str) -> Result<(), PkiError> {
    let bad = |reason: String| Err(PkiError::InvalidInput { what, reason });
    if v.trim().is_empty() {
        return bad("must not be empty".into());
    }
    if v.chars().count() > MAX_NAME_LEN {
        return bad(format!("longer than {MAX_NAME_LEN} characters"));
    }
    if v != v.trim() {
        return bad("has leading or trailing spaces".into());
    }
    for c in v.chars() {
        let latin_letter = c.is_ascii_alphabetic()
            || (('\u{c0}'..='\u{24f}').contains(&c) && c != '\u{d7}' && c != '\u{f7}');
        if !(latin_letter || matches!(c, ' ' | '-' | '\'' | '.')) {
            return bad(format!(
                "character {c:?} is not allowed (Latin letters, space, - ' . only)"
            ));
        }
    }
    Ok(())
}

impl SubjectName {
    /// Builds a subject for an Iranian card holder: `CN = "<given> <surname>"`,
    /// `serialNumber = "PNOIR-<national code>"`, `C = IR`. The national code
    /// must be 10 digits with a valid check digit.
    pub fn for_national_code(
        given_name: &str,
        surname: &str,
        national_code: &str,
    ) -> Result<SubjectName, PkiError> {
        if !is_valid_national_code(national_code) {
            return Err(PkiError::InvalidInput {
                what: "national code",
                reason: "expected 10 digits with a valid check digit".into(),
            });
        }
        let s = SubjectName {
            common_name: format!("{given_name} {surname}"),
            given_name: given_name.to_string(),
            surname: surname.to_string(),
            serial_number: format!("PNOIR-{national_code}"),
            country: "IR".to_string(),
        };
        s.validate()?;
        Ok(s)
    }

    /// Checks lengths and character sets of every attribute.
    pub fn validate(&self) -> Result<(), PkiError> {
        check_latin_name("common name", &self.common_name)?;
        check_latin_name("given name", &self.given_name)?;
        check_latin_name("surname", &self.surname)?;
        let sn = &self.serial_number;
        if sn.is_empty() || sn.len() > MAX_NAME_LEN || PrintableStringRef::new(sn).is_err() {
            return Err(PkiError::InvalidInput {
                what: "serial number",
                reason: format!("expected 1..={MAX_NAME_LEN} PrintableString characters"),
            });
        }
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(PkiError::InvalidInput {
                what: "country",
                reason: "expected an ISO 3166 alpha-2 code such as \"IR\"".into(),
            });
        }
        Ok(())
    }

    /// DER `Name` (RDNSequence), one attribute per RDN.
    pub fn to_der(&self) -> Result<Vec<u8>, PkiError> {
        Ok(self.to_name()?.to_der()?)
    }

    /// The `Name`: C, SN, GN, serialNumber, CN, one attribute per RDN.
    pub(crate) fn to_name(&self) -> Result<Name, PkiError> {
        self.validate()?;
        name_of(&[
            (rfc4519::COUNTRY_NAME, Text::Printable(&self.country)),
            (rfc4519::SN, Text::Utf8(&self.surname)),
            (rfc4519::GIVEN_NAME, Text::Utf8(&self.given_name)),
            (rfc4519::SERIAL_NUMBER, Text::Printable(&self.serial_number)),
            (rfc4519::CN, Text::Utf8(&self.common_name)),
        ])
    }

    /// Parses a DER `Name` of the shape written by [`SubjectName::to_der`]
    /// (any RDN order; each attribute exactly once; no others).
    pub fn from_der(name_der: &[u8]) -> Result<SubjectName, PkiError> {
        let name = RdnSequence::from_der(name_der)
            .map_err(|e| PkiError::CsrMalformed(format!("subject Name: {e}")))?;
        let mut fields: [Option<String>; 5] = Default::default();
        let labels = ["C", "SN", "GN", "serialNumber", "CN"];
        for rdn in name.0.iter() {
            let [atv] = rdn.0.as_slice() else {
                return Err(PkiError::CsrMalformed(format!(
                    "subject RelativeDistinguishedName: expected one attribute, found {}",
                    rdn.0.len()
                )));
            };
            let idx = [
                rfc4519::COUNTRY_NAME,
                rfc4519::SN,
                rfc4519::GIVEN_NAME,
                rfc4519::SERIAL_NUMBER,
                rfc4519::CN,
            ]
            .iter()
            .position(|o| *o == atv.oid)
            .ok_or_else(|| {
                PkiError::CsrMalformed(format!("subject: unexpected attribute {}", atv.oid))
            })?;
            let label = labels.get(idx).copied().unwrap_or("attribute");
            let ok_tag = if idx == 0 || idx == 3 {
                Tag::PrintableString
            } else {
                Tag::Utf8String
            };
            if atv.value.tag() != ok_tag {
                return Err(PkiError::CsrMalformed(format!(
                    "subject {label}: expected {ok_tag}, found {}",
                    atv.value.tag()
                )));
            }
            let s = std::str::from_utf8(atv.value.value())
                .map_err(|_| PkiError::CsrMalformed(format!("subject {label}: invalid UTF-8")))?;
            if let Some(field) = fields.get_mut(idx) {
                if field.replace(s.to_string()).is_some() {
                    return Err(PkiError::CsrMalformed(format!(
                        "subject: attribute {label} appears twice"
                    )));
                }
            }
        }
        let [c, sn, gn, serial, cn] = fields;
        let missing = |what: &str| PkiError::CsrMalformed(format!("subject: {what} missing"));
        let s = SubjectName {
            country: c.ok_or_else(|| missing("C"))?,
            surname: sn.ok_or_else(|| missing("SN (surname)"))?,
            given_name: gn.ok_or_else(|| missing("GN (given name)"))?,
            serial_number: serial.ok_or_else(|| missing("serialNumber"))?,
            common_name: cn.ok_or_else(|| missing("CN"))?,
        };
        s.validate()
            .map_err(|e| PkiError::CsrMalformed(format!("subject: {e}")))?;
        Ok(s)
    }
}

/// A directory string of a name attribute, already checked for its type.
pub(crate) enum Text<'a> {
    Printable(&'a str),
    Utf8(&'a str),
}

/// A `Name` with one attribute per RDN, in the order given (the strings
/// are checked for their type before).
pub(crate) fn name_of(attrs: &[(ObjectIdentifier, Text<'_>)]) -> Result<Name, PkiError> {
    let mut rdns = Vec::with_capacity(attrs.len());
    for (oid, text) in attrs {
        let value = match text {
            Text::Printable(s) => Any::encode_from(&PrintableStringRef::new(s)?)?,
            Text::Utf8(s) => Any::encode_from(&Utf8StringRef::new(s)?)?,
        };
        let atv = AttributeTypeAndValue { oid: *oid, value };
        rdns.push(RelativeDistinguishedName(SetOfVec::try_from(vec![atv])?));
    }
    Ok(RdnSequence(rdns))
}

/// Checks that `point` looks like an uncompressed P-256 point.
pub(crate) fn check_point(point: &[u8]) -> Result<(), PkiError> {
    if point.len() != P256_POINT_LEN || point.first() != Some(&0x04) {
        return Err(PkiError::InvalidInput {
            what: "public point",
            reason: format!(
                "expected {P256_POINT_LEN} bytes starting with 04 (uncompressed P-256), got {} bytes{}",
                point.len(),
                point.first().map(|b| format!(" starting with {b:02X}")).unwrap_or_default()
            ),
        });
    }
    Ok(())
}

/// AlgorithmIdentifier with absent parameters.
pub(crate) fn algorithm(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

/// SubjectPublicKeyInfo for a P-256 point.
pub(crate) fn p256_spki(point: &[u8]) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: rfc5912::ID_EC_PUBLIC_KEY,
            parameters: Some(Any::encode_from(&rfc5912::SECP_256_R_1)?),
        },
        subject_public_key: BitString::from_bytes(point)?,
    })
}

/// `element: expected X, found Y`, the shape of every structural message.
fn expected(
    element: &str,
    expected: impl std::fmt::Display,
    found: impl std::fmt::Display,
) -> String {
    format!("{element}: expected {expected}, found {found}")
}

/// Parses a SubjectPublicKeyInfo that must hold an uncompressed P-256 point.
pub(crate) fn parse_p256_spki(spki: &[u8]) -> Result<Vec<u8>, String> {
    let s = spki::SubjectPublicKeyInfoRef::from_der(spki)
        .map_err(|e| format!("SubjectPublicKeyInfo: {e}"))?;
    if s.algorithm.oid != rfc5912::ID_EC_PUBLIC_KEY {
        return Err(expected(
            "SubjectPublicKeyInfo.algorithm (id-ecPublicKey)",
            rfc5912::ID_EC_PUBLIC_KEY,
            s.algorithm.oid,
        ));
    }
    let curve = s
        .algorithm
        .parameters
        .map(|p| p.decode_as::<ObjectIdentifier>());
    match curve {
        Some(Ok(c)) if c == rfc5912::SECP_256_R_1 => {}
        Some(Ok(c)) => {
            return Err(expected(
                "EC parameters namedCurve (prime256v1)",
                rfc5912::SECP_256_R_1,
                c,
            ))
        }
        Some(Err(e)) => {
            return Err(expected(
                "EC parameters namedCurve (prime256v1)",
                rfc5912::SECP_256_R_1,
                e,
            ))
        }
        None => {
            return Err(expected(
                "EC parameters namedCurve (prime256v1)",
                rfc5912::SECP_256_R_1,
                "no parameters",
            ))
        }
    }
    match s.subject_public_key.as_bytes() {
        Some(point) if point.len() == P256_POINT_LEN && point.first() == Some(&4) => {
            Ok(point.to_vec())
        }
        other => Err(expected(
            "SubjectPublicKeyInfo.subjectPublicKey",
            "an uncompressed 65-byte P-256 point (04 ‖ X ‖ Y)",
            format!(
                "{} bytes",
                other.map_or(s.subject_public_key.raw_bytes().len(), <[u8]>::len)
            ),
        )),
    }
}

/// Builds the DER `CertificationRequestInfo` the card has to sign: version 0,
/// the subject, a P-256 SubjectPublicKeyInfo, and empty attributes.
pub fn request_info_der(subject: &SubjectName, public_point: &[u8]) -> Result<Vec<u8>, PkiError> {
    check_point(public_point)?;
    let info = CertReqInfo {
        version: Version::V1,
        subject: subject.to_name()?,
        public_key: p256_spki(public_point)?,
        attributes: SetOfVec::new(),
    };
    Ok(info.to_der()?)
}

/// Wraps a `CertificationRequestInfo` and the card's raw `r‖s` signature
/// into a DER PKCS#10 `CertificationRequest` (ecdsa-with-SHA256).
pub fn assemble_csr(info_der: &[u8], raw_signature_rs: &[u8]) -> Result<Vec<u8>, PkiError> {
    let bad = |reason: String| PkiError::InvalidInput {
        what: "request info",
        reason,
    };
    let info = CertReqInfo::from_der(info_der)
        .map_err(|e| bad(format!("CertificationRequestInfo: {e}")))?;
    // The card signed these bytes: they must come out of the encoder again.
    if info.to_der().ok().as_deref() != Some(info_der) {
        return Err(bad(expected(
            "CertificationRequestInfo",
            "DER",
            "an encoding that is not the canonical one",
        )));
    }
    let sig = raw_to_der_sig(raw_signature_rs)?;
    let req = CertReq {
        info,
        algorithm: algorithm(rfc5912::ECDSA_WITH_SHA_256),
        signature: BitString::from_bytes(&sig)?,
    };
    Ok(req.to_der()?)
}

/// `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (RFC 5480), as
/// written: positive magnitudes.
#[derive(Sequence)]
struct EcdsaSigOut<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// `ECDSA-Sig-Value` as read: signed, so that a negative value is named.
#[derive(Sequence)]
struct EcdsaSigIn<'a> {
    r: IntRef<'a>,
    s: IntRef<'a>,
}

/// Converts a raw P-256 signature `r‖s` (32 + 32 bytes, big-endian) into a
/// DER `ECDSA-Sig-Value` (two minimal positive INTEGERs).
pub fn raw_to_der_sig(raw: &[u8]) -> Result<Vec<u8>, PkiError> {
    if raw.len() != RAW_SIG_LEN {
        return Err(PkiError::SignatureEncoding(format!(
            "raw signature must be {RAW_SIG_LEN} bytes (r‖s), got {}",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(RAW_SIG_LEN / 2);
    if r.iter().all(|&b| b == 0) || s.iter().all(|&b| b == 0) {
        return Err(PkiError::SignatureEncoding("r or s is zero".into()));
    }
    let sig = EcdsaSigOut {
        r: UintRef::new(r)?,
        s: UintRef::new(s)?,
    };
    Ok(sig.to_der()?)
}

/// Converts a DER `ECDSA-Sig-Value` into the raw 64-byte `r‖s` form.
/// Strict: minimal positive INTEGERs of at most 32 significant bytes.
pub fn der_to_raw_sig(der_sig: &[u8]) -> Result<Vec<u8>, PkiError> {
    let sig = EcdsaSigIn::from_der(der_sig)
        .map_err(|e| PkiError::SignatureEncoding(format!("ECDSA-Sig-Value: {e}")))?;
    let mut out = vec![0u8; RAW_SIG_LEN];
    for (i, (name, v)) in [("r", sig.r), ("s", sig.s)].into_iter().enumerate() {
        let v = v.as_bytes();
        if v.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(PkiError::SignatureEncoding(format!("{name} is negative")));
        }
        let v = match v {
            [0, rest @ ..] => rest,
            _ => v,
        };
        if v.is_empty() {
            return Err(PkiError::SignatureEncoding(format!("{name} is zero")));
        }
        if v.len() > 32 {
            return Err(PkiError::SignatureEncoding(format!(
                "{name} has {} significant bytes, at most 32 allowed for P-256",
                v.len()
            )));
        }
        let end = 32 * (i + 1);
        if let Some(slot) = out.get_mut(end - v.len()..end) {
            slot.copy_from_slice(v);
        }
    }
    Ok(out)
}

/// Parses a DER PKCS#10 request, checks it is a P-256 / ecdsa-with-SHA256
/// request of our subject shape, and verifies its self-signature.
pub fn verify_csr(csr_der: &[u8]) -> Result<CsrInfo, PkiError> {
    let req = CertReq::from_der(csr_der)
        .map_err(|e| PkiError::CsrMalformed(format!("CertificationRequest: {e}")))?;
    // Strict DER: what was signed is what the encoder writes again.
    let info_der = req.info.to_der().ok();
    if req.to_der().ok().as_deref() != Some(csr_der) {
        return Err(PkiError::CsrMalformed(expected(
            "CertificationRequest",
            "DER",
            "an encoding that is not the canonical one",
        )));
    }
    if req.algorithm.oid != rfc5912::ECDSA_WITH_SHA_256 {
        return Err(PkiError::CsrMalformed(expected(
            "signatureAlgorithm (ecdsa-with-SHA256)",
            rfc5912::ECDSA_WITH_SHA_256,
            req.algorithm.oid,
        )));
    }
    if let Some(p) = &req.algorithm.parameters {
        return Err(PkiError::CsrMalformed(expected(
            "signatureAlgorithm (parameters must be absent)",
            "no further data",
            p.tag(),
        )));
    }
    let spki = req
        .info
        .public_key
        .to_der()
        .map_err(|e| PkiError::CsrMalformed(format!("subjectPKInfo: {e}")))?;
    let point = parse_p256_spki(&spki).map_err(PkiError::CsrMalformed)?;
    let name = req
        .info
        .subject
        .to_der()
        .map_err(|e| PkiError::CsrMalformed(format!("subject: {e}")))?;
    let subject = SubjectName::from_der(&name)?;
    let sig_der = req.signature.as_bytes().ok_or_else(|| {
        PkiError::CsrMalformed("signature: expected a BIT STRING with 0 unused bits".into())
    })?;
    let info_der = info_der.unwrap_or_default();
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &point)
        .verify(&info_der, sig_der)
        .map_err(|_| PkiError::CsrSignatureInvalid)?;
    Ok(CsrInfo {
        subject,
        public_point: point,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{card_key, card_point, make_csr, subject};

    #[test]
    fn national_code_check_digit() {
        assert!(is_valid_national_code("0012345679"));
        assert!(!is_valid_national_code("0012345678"));
        assert!(!is_valid_national_code("001234567"));
        assert!(!is_valid_national_code("1111111111"));
        assert!(!is_valid_national_code("00123456７9"));
    }

    #[test]
    fn subject_constructor_and_validation() {
        let s = subject();
        assert_eq!(s.serial_number, "PNOIR-0012345679");
        assert_eq!(s.common_name, "Reza Ahmadi");
        assert!(SubjectName::for_national_code("Reza", "Ahmadi", "0012345678").is_err());
        assert!(SubjectName::for_national_code("رضا", "Ahmadi", "0012345679").is_err());
        let mut bad = s.clone();
        bad.country = "Iran".into();
        assert!(bad.validate().is_err());
        let mut bad = s.clone();
        bad.serial_number = "PNOIR_001".into();
        assert!(bad.validate().is_err());
        let mut ok = s.clone();
        ok.surname = "Émile-O'Brien".into();
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn subject_der_round_trip() {
        let s = subject();
        let d = s.to_der().unwrap();
        assert_eq!(SubjectName::from_der(&d).unwrap(), s);
    }

    #[test]
    fn raw_der_sig_round_trip_and_padding() {
        // High bit set in r: needs a 00 pad; leading zeros in s: stripped.
        let mut raw = [0u8; 64];
        raw[0] = 0x80;
        raw[31] = 1;
        raw[62] = 0x7f;
        raw[63] = 0x01;
        let d = raw_to_der_sig(&raw).unwrap();
        assert_eq!(&d[..5], &[0x30, 0x27, 0x02, 0x21, 0x00]);
        assert_eq!(&d[d.len() - 4..], &[0x02, 0x02, 0x7f, 0x01]);
        assert_eq!(der_to_raw_sig(&d).unwrap(), raw.to_vec());
        assert!(raw_to_der_sig(&raw[..63]).is_err());
        assert!(raw_to_der_sig(&[0u8; 64]).is_err());
    }

    #[test]
    fn der_to_raw_rejects_bad_forms() {
        // negative r
        assert!(der_to_raw_sig(&[0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01]).is_err());
        // non-minimal r
        assert!(der_to_raw_sig(&[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01]).is_err());
        // trailing garbage
        assert!(der_to_raw_sig(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00]).is_err());
        // 33 significant bytes
        let mut big = vec![0x30, 0x26, 0x02, 0x21];
        big.extend([0x01; 33]);
        big.extend([0x02, 0x01, 0x01]);
        assert!(der_to_raw_sig(&big).is_err());
        assert!(der_to_raw_sig(&[]).is_err());
    }

    #[test]
    fn ring_signatures_convert_both_ways() {
        let key = card_key();
        for i in 0..20u8 {
            let raw = crate::test_support::card_sign(&key, &[i; 10]);
            let d = raw_to_der_sig(&raw).unwrap();
            assert_eq!(der_to_raw_sig(&d).unwrap(), raw);
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, card_point(&key))
                .verify(&[i; 10], &d)
                .unwrap();
        }
    }

    #[test]
    fn request_info_rejects_bad_point() {
        let s = subject();
        assert!(request_info_der(&s, &[4u8; 64]).is_err());
        let mut p = vec![0u8; 65];
        p[0] = 0x02;
        assert!(request_info_der(&s, &p).is_err());
    }

    #[test]
    fn csr_round_trip() {
        let key = card_key();
        let csr = make_csr(&key, &subject());
        let info = verify_csr(&csr).unwrap();
        assert_eq!(info.subject, subject());
        assert_eq!(info.public_point, card_point(&key));
    }

    #[test]
    fn csr_with_wrong_signature_is_refused() {
        let key = card_key();
        let other = card_key();
        let s = subject();
        let info = request_info_der(&s, card_point(&key)).unwrap();
        let raw = crate::test_support::card_sign(&other, &info);
        let csr = assemble_csr(&info, &raw).unwrap();
        assert!(matches!(
            verify_csr(&csr),
            Err(PkiError::CsrSignatureInvalid)
        ));
    }

    #[test]
    fn csr_tampered_subject_is_refused() {
        let key = card_key();
        let mut csr = make_csr(&key, &subject());
        let pos = csr.windows(6).position(|w| w == b"Ahmadi").unwrap();
        csr[pos] = b'B';
        assert!(matches!(
            verify_csr(&csr),
            Err(PkiError::CsrSignatureInvalid)
        ));
    }

    #[test]
    fn csr_malformed_is_reported() {
        let key = card_key();
        let csr = make_csr(&key, &subject());
        assert!(matches!(
            verify_csr(&csr[..csr.len() - 1]),
            Err(PkiError::CsrMalformed(_))
        ));
        let mut extra = csr.clone();
        extra.push(0);
        assert!(matches!(verify_csr(&extra), Err(PkiError::CsrMalformed(_))));
        assert!(matches!(verify_csr(b""), Err(PkiError::CsrMalformed(_))));
    }

    #[test]
    fn assemble_rejects_garbage_info() {
        assert!(assemble_csr(&[0x30, 0x05, 0x00], &[1u8; 64]).is_err());
        assert!(assemble_csr(&[0x02, 0x01, 0x00], &[1u8; 64]).is_err());
    }
}
