//! Certificate issuance: the [`CertificateAuthority`] trait and a local,
//! file-backed test CA ([`LocalCa`]) that also holds an ICAO document signer.
//!
//! # Profiles
//!
//! Both profiles get: X.509 v3, a random positive 128-bit serial, validity
//! from one minute before issuance to the end the issuer asks for in
//! [`IssueTerms`] (the card profile derives it from the card's expiry; the CA
//! refuses an end past its own notAfter or before issuance),
//! basicConstraints `cA=FALSE` (critical), cRLDistributionPoints and
//! certificatePolicies (non-critical) as [`IssueTerms`] gives them,
//! subjectKeyIdentifier and authorityKeyIdentifier (RFC 7093 method 1: the
//! leftmost 160 bits of SHA-256 over the public key bits).
//!
//! * [`CertProfile::Authentication`]: keyUsage `digitalSignature` (critical),
//!   extKeyUsage `clientAuth` (non-critical).
//! * [`CertProfile::Signature`]: keyUsage `nonRepudiation` (a.k.a.
//!   contentCommitment) **only**, critical; no extKeyUsage. This is ETSI
//!   EN 319 412-2 §4.3.2 key-usage "type A" for certificates that validate
//!   commitment to signed content. `digitalSignature` is deliberately left out
//!   so that the signature key can't be used for authentication protocols
//!   (which would let a relying party obtain a "signature" over a challenge);
//!   authentication has its own key and certificate.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use x509_parser::prelude::X509Certificate;

use super::check::{self, parse_cert};
use super::crl::{self, CrlEntry, CrlTemplate};
use super::csr::{algorithm, name_of, Text};
use super::csr::{p256_spki, parse_p256_spki, verify_csr};
use super::oid;
use super::profile::{CertPolicy, CertProfile};
use super::revocation::{CrlIssued, Revocation, RevocationReason, RevocationStore, Who};
use super::sod::DocumentSigner;
use super::x509::{authority_key_id, extension, key_id, pem_encode, sign, time};
use super::PkiError;
use const_oid::db::rfc4519;
use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS, ID_CE_CERTIFICATE_POLICIES,
    ID_CE_CRL_DISTRIBUTION_POINTS, ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE,
    ID_CE_SUBJECT_KEY_IDENTIFIER, ID_KP_CLIENT_AUTH, ID_QT_CPS,
};
use const_oid::db::rfc5912::ECDSA_WITH_SHA_256;
use der::asn1::{Any, Ia5String, ObjectIdentifier};
use der::flagset::FlagSet;
use der::{Decode, Encode, Sequence};
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    BasicConstraints, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

/// What the issuer asks of one certificate beyond the request and the
/// profile: when it ends, and where relying parties find its revocation
/// status and policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueTerms {
    /// notAfter, Unix seconds (UTC).
    pub not_after: i64,
    /// cRLDistributionPoints: one distribution point (fullName) per URI;
    /// empty leaves the extension out.
    pub crl_distribution_points: Vec<String>,
    /// certificatePolicies; `None` leaves the extension out.
    pub policy: Option<CertPolicy>,
}

/// Something that turns a PKCS#10 request into a certificate.
pub trait CertificateAuthority {
    /// Verifies the request's proof of possession and issues a DER
    /// certificate with the given profile and terms.
    fn issue(
        &self,
        csr_der: &[u8],
        profile: CertProfile,
        terms: &IssueTerms,
    ) -> Result<Vec<u8>, PkiError>;
    /// Whether it would issue with `terms` now, asked before a card is
    /// touched so that a card is not half personalized for nothing.
    fn accepts(&self, terms: &IssueTerms) -> Result<(), PkiError>;
    /// DER CA certificates, issuing CA first, root last.
    fn chain(&self) -> Vec<Vec<u8>>;
    /// Revoke certificate `serial` (hex) of card `card_serial`. A
    /// certificate is revoked once: revoking it again returns the first
    /// revocation, whose reason stands.
    fn revoke(
        &self,
        who: &Who,
        serial: &str,
        card_serial: &str,
        reason: RevocationReason,
    ) -> Result<Revocation, PkiError>;
    /// The revocation of certificate `serial` (hex), if it is revoked;
    /// [`PkiError::NoRegister`] when the CA keeps no revocations here.
    fn revocation(&self, serial: &str) -> Result<Option<Revocation>, PkiError>;
    /// Issue a signed DER CRL of every certificate revoked so far, with
    /// the next CRL number, valid from now for `valid_for`.
    fn crl(&self, who: &Who, valid_for: Duration) -> Result<(CrlIssued, Vec<u8>), PkiError>;
}

/// File names inside a [`LocalCa`] directory.
pub const CA_CERT_FILE: &str = "ca-cert.pem";
pub const CA_KEY_FILE: &str = "ca-key.p8";
pub const DS_CERT_FILE: &str = "ds-cert.pem";
pub const DS_KEY_FILE: &str = "ds-key.p8";
const LOCK_FILE: &str = ".cardsmith-ca.lock";
const ALL_FILES: [&str; 4] = [CA_CERT_FILE, CA_KEY_FILE, DS_CERT_FILE, DS_KEY_FILE];

const CA_YEARS: i32 = 15;
const DS_YEARS: i32 = 10;
const BACKDATE_SECS: i64 = 60;

// keyUsage bit numbers (RFC 5280 4.2.1.3)
const KU_DIGITAL_SIGNATURE: u8 = 0;
const KU_NON_REPUDIATION: u8 = 1;
const KU_KEY_CERT_SIGN: u8 = 5;
const KU_CRL_SIGN: u8 = 6;

/// PEM (`CERTIFICATE`) of a DER certificate.
pub fn certificate_pem(cert_der: &[u8]) -> String {
    pem_encode("CERTIFICATE", cert_der)
}

/// A document signer whose key lives in memory (loaded from `ds-key.p8`).
pub struct LocalDocumentSigner {
    cert: Vec<u8>,
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for LocalDocumentSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalDocumentSigner")
            .field(
                "certificate_sha256",
                &crate::hex::lower(digest::digest(&digest::SHA256, &self.cert).as_ref()),
            )
            .field("key", &"<redacted>")
            .finish()
    }
}

impl DocumentSigner for LocalDocumentSigner {
    fn certificate(&self) -> &[u8] {
        &self.cert
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        self.key
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| PkiError::Crypto("document signer ECDSA signing failed"))
    }
}

/// A file-backed test CA: a self-signed P-256 root that issues card
/// certificates, plus a document signer certificate/key for EF.SOD.
///
/// Not for production: keys are plain PKCS#8 files protected only by file
/// permissions.
pub struct LocalCa {
    dir: PathBuf,
    ca_cert: Vec<u8>,
    ca_key: EcdsaKeyPair,
    ca_not_after: i64,
    ds: LocalDocumentSigner,
    rng: SystemRandom,
    /// Where revocations and CRL numbers are kept.
    register: Option<Arc<dyn RevocationStore>>,
}

impl fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCa")
            .field("dir", &self.dir)
            .field(
                "ca_certificate_sha256",
                &crate::hex::lower(digest::digest(&digest::SHA256, &self.ca_cert).as_ref()),
            )
            .field("ca_key", &"<redacted>")
            .field("document_signer", &self.ds)
            .field("register", &self.register.as_ref().map(|j| j.location()))
            .finish()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn bad_file(path: &Path, reason: impl Into<String>) -> PkiError {
    PkiError::BadFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// keyUsage (critical) from bit numbers.
fn key_usage_ext(bits: &[u8]) -> Result<Extension, PkiError> {
    let v = bits.iter().fold(0u16, |v, &b| v | (1 << b));
    let usages = FlagSet::<KeyUsages>::new(v).map_err(|_| PkiError::InvalidInput {
        what: "key usage",
        reason: format!("bits {bits:?} are not all keyUsage bits"),
    })?;
    extension(ID_CE_KEY_USAGE, true, &KeyUsage(usages))
}

/// An absolute URI for an IA5String GeneralName or qualifier: ASCII, no
/// spaces or controls, `scheme:` first.
fn check_uri(what: &'static str, uri: &str) -> Result<(), PkiError> {
    let scheme_ok = uri.split_once(':').is_some_and(|(s, rest)| {
        !rest.is_empty()
            && s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if !uri.bytes().all(|b| b.is_ascii_graphic()) || !scheme_ok {
        return Err(PkiError::InvalidInput {
            what,
            reason: format!("{uri:?} is not an absolute URI in ASCII"),
        });
    }
    Ok(())
}

/// cRLDistributionPoints with one DistributionPoint per URI, each
/// `distributionPoint [0] { fullName [0] { uniformResourceIdentifier [6] } }`.
fn crl_distribution_points_ext(uris: &[String]) -> Result<Extension, PkiError> {
    let mut points = Vec::new();
    for u in uris {
        check_uri("CRL distribution point", u)?;
        let uri = Ia5String::new(u).map_err(|e| PkiError::InvalidInput {
            what: "CRL distribution point",
            reason: format!("{u:?}: {e}"),
        })?;
        points.push(DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![
                GeneralName::UniformResourceIdentifier(uri),
            ])),
            reasons: None,
            crl_issuer: None,
        });
    }
    extension(
        ID_CE_CRL_DISTRIBUTION_POINTS,
        false,
        &CrlDistributionPoints(points),
    )
}

/// `PolicyInformation` (RFC 5280 4.2.1.4) with the policy OID held as a
/// DER element: `x509-cert`'s own type takes a const-oid OID, which cannot
/// hold arcs such as `2.999` (see [`super::oid`]).
#[derive(Sequence)]
struct PolicyInformation {
    policy_identifier: Any,
    #[asn1(optional = "true")]
    policy_qualifiers: Option<Vec<PolicyQualifierInfo>>,
}

/// `PolicyQualifierInfo` with a CPS pointer (id-qt-cps, IA5String).
#[derive(Sequence)]
struct PolicyQualifierInfo {
    policy_qualifier_id: ObjectIdentifier,
    qualifier: Ia5String,
}

/// certificatePolicies with one PolicyInformation, and its CPS pointer.
fn certificate_policies_ext(p: &CertPolicy) -> Result<Extension, PkiError> {
    let policy_identifier = oid::policy_oid_der(&p.oid).map_err(|e| PkiError::InvalidInput {
        what: "certificate policy OID",
        reason: format!("{:?}: {e}", p.oid),
    })?;
    let policy_qualifiers = match &p.cps_uri {
        Some(u) => {
            check_uri("certificate policy CPS URI", u)?;
            let qualifier = Ia5String::new(u).map_err(|e| PkiError::InvalidInput {
                what: "certificate policy CPS URI",
                reason: format!("{u:?}: {e}"),
            })?;
            Some(vec![PolicyQualifierInfo {
                policy_qualifier_id: ID_QT_CPS,
                qualifier,
            }])
        }
        None => None,
    };
    extension(
        ID_CE_CERTIFICATE_POLICIES,
        false,
        &vec![PolicyInformation {
            policy_identifier,
            policy_qualifiers,
        }],
    )
}

fn name(cn: &str) -> Result<Name, PkiError> {
    name_of(&[
        (rfc4519::COUNTRY_NAME, Text::Printable("IR")),
        (rfc4519::ORGANIZATION_NAME, Text::Utf8("cardsmith test")),
        (rfc4519::CN, Text::Utf8(cn)),
    ])
}

fn name_from_der(raw: &[u8], what: &'static str) -> Result<Name, PkiError> {
    Name::from_der(raw).map_err(|e| PkiError::InvalidInput {
        what,
        reason: e.to_string(),
    })
}

/// basicConstraints cA=FALSE (critical): an empty SEQUENCE in DER.
fn end_entity() -> Result<Extension, PkiError> {
    extension(
        ID_CE_BASIC_CONSTRAINTS,
        true,
        &BasicConstraints {
            ca: false,
            path_len_constraint: None,
        },
    )
}

struct Template<'a> {
    issuer_name: Name,
    issuer_point: &'a [u8],
    subject_name: Name,
    subject_point: &'a [u8],
    not_before: i64,
    not_after: i64,
    /// Extensions other than the key identifiers.
    extensions: Vec<Extension>,
}

fn random_serial(rng: &SystemRandom) -> Result<SerialNumber, PkiError> {
    let mut s = [0u8; 16];
    rng.fill(&mut s)
        .map_err(|_| PkiError::Crypto("random number generation failed"))?;
    // Positive and exactly 16 significant bytes.
    s[0] = (s[0] & 0x7f) | 0x40;
    Ok(SerialNumber::new(&s)?)
}

/// The TBSCertificate of `t` with `serial` (what the issuer key signs).
fn tbs_certificate(t: Template<'_>, serial: SerialNumber) -> Result<TbsCertificate, PkiError> {
    let mut exts = t.extensions;
    exts.push(extension(
        ID_CE_SUBJECT_KEY_IDENTIFIER,
        false,
        &key_id(t.subject_point)?,
    )?);
    exts.push(extension(
        ID_CE_AUTHORITY_KEY_IDENTIFIER,
        false,
        &authority_key_id(t.issuer_point)?,
    )?);
    Ok(TbsCertificate {
        version: Version::V3,
        serial_number: serial,
        signature: algorithm(ECDSA_WITH_SHA_256),
        issuer: t.issuer_name,
        validity: Validity {
            not_before: time(t.not_before)?,
            not_after: time(t.not_after)?,
        },
        subject: t.subject_name,
        subject_public_key_info: p256_spki(t.subject_point)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(exts),
    })
}

fn sign_certificate(
    t: Template<'_>,
    issuer_key: &EcdsaKeyPair,
    rng: &SystemRandom,
) -> Result<Vec<u8>, PkiError> {
    let tbs = tbs_certificate(t, random_serial(rng)?)?;
    let signature = sign(
        &tbs.to_der()?,
        issuer_key,
        rng,
        "certificate signing failed",
    )?;
    let signed = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm(ECDSA_WITH_SHA_256),
        signature,
    };
    Ok(signed.to_der()?)
}

fn write_file(dir: &Path, name: &str, data: &[u8], secret: bool) -> Result<(), PkiError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    let _ = secret;
    let _ = fs::remove_file(&tmp);
    let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
    f.write_all(data).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(io_err(&path))
}

fn read_key(path: &Path, rng: &SystemRandom) -> Result<EcdsaKeyPair, PkiError> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(PkiError::InsecureKeyFile {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    if !meta.is_file() {
        return Err(bad_file(path, "not a regular file"));
    }
    let bytes = fs::read(path).map_err(io_err(path))?;
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &bytes, rng).map_err(|e| {
        bad_file(
            path,
            format!("not a DER PKCS#8 ECDSA P-256 private key ({e})"),
        )
    })
}

fn read_cert(path: &Path) -> Result<Vec<u8>, PkiError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes)
        .map_err(|e| bad_file(path, format!("not a PEM file ({e})")))?;
    if pem.label != "CERTIFICATE" {
        return Err(bad_file(
            path,
            format!("expected a PEM CERTIFICATE block, found {:?}", pem.label),
        ));
    }
    parse_cert(&pem.contents, "certificate").map_err(|e| bad_file(path, e.to_string()))?;
    Ok(pem.contents)
}

fn cert_point(cert: &X509Certificate<'_>) -> Result<Vec<u8>, String> {
    parse_p256_spki(cert.tbs_certificate.subject_pki.raw)
}

impl LocalCa {
    /// Opens the CA stored in `dir`, creating directory, keys and
    /// certificates on first use.
    ///
    /// Concurrent callers (threads or processes) are serialized with an
    /// exclusive advisory lock on `dir/.cardsmith-ca.lock`; files are written
    /// to temporary names and renamed into place.
    pub fn open_or_create(dir: &Path) -> Result<LocalCa, PkiError> {
        crate::private::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock: File = crate::private::open_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;

        let present: Vec<&'static str> = ALL_FILES
            .iter()
            .copied()
            .filter(|f| dir.join(f).exists())
            .collect();
        let result = if present.is_empty() {
            Self::create(dir).and_then(|()| Self::load(dir))
        } else if present.len() == ALL_FILES.len() {
            Self::load(dir)
        } else {
            Err(PkiError::IncompleteCaDirectory {
                dir: dir.to_path_buf(),
                missing: ALL_FILES
                    .iter()
                    .copied()
                    .filter(|f| !present.contains(f))
                    .collect(),
                present,
            })
        };
        drop(lock); // releases the advisory lock
        result
    }

    fn create(dir: &Path) -> Result<(), PkiError> {
        let rng = SystemRandom::new();
        let gen = || {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                .map_err(|_| PkiError::Crypto("key generation failed"))
        };
        let load = |p8: &[u8]| {
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, p8, &rng)
                .map_err(|_| PkiError::Crypto("generated key did not load"))
        };
        let ca_p8 = gen()?;
        let ds_p8 = gen()?;
        let ca_key = load(ca_p8.as_ref())?;
        let ds_key = load(ds_p8.as_ref())?;
        let ca_point = ca_key.public_key().as_ref();
        let ds_point = ds_key.public_key().as_ref();

        let now = crate::utc::unix_secs(SystemTime::now());
        let not_before = now - BACKDATE_SECS;
        let ca_name = name("cardsmith local test CA")?;
        let ca_not_after = crate::utc::add_years(now, CA_YEARS);
        let ca_cert = sign_certificate(
            Template {
                issuer_name: ca_name.clone(),
                issuer_point: ca_point,
                subject_name: ca_name.clone(),
                subject_point: ca_point,
                not_before,
                not_after: ca_not_after,
                extensions: vec![
                    extension(
                        ID_CE_BASIC_CONSTRAINTS,
                        true,
                        &BasicConstraints {
                            ca: true,
                            path_len_constraint: Some(0),
                        },
                    )?,
                    key_usage_ext(&[KU_KEY_CERT_SIGN, KU_CRL_SIGN])?,
                ],
            },
            &ca_key,
            &rng,
        )?;
        let ds_cert = sign_certificate(
            Template {
                issuer_name: ca_name,
                issuer_point: ca_point,
                subject_name: name("cardsmith local document signer")?,
                subject_point: ds_point,
                not_before,
                not_after: crate::utc::add_years(now, DS_YEARS).min(ca_not_after),
                extensions: vec![end_entity()?, key_usage_ext(&[KU_DIGITAL_SIGNATURE])?],
            },
            &ca_key,
            &rng,
        )?;
        write_file(dir, CA_KEY_FILE, ca_p8.as_ref(), true)?;
        write_file(dir, DS_KEY_FILE, ds_p8.as_ref(), true)?;
        write_file(
            dir,
            DS_CERT_FILE,
            certificate_pem(&ds_cert).as_bytes(),
            false,
        )?;
        write_file(
            dir,
            CA_CERT_FILE,
            certificate_pem(&ca_cert).as_bytes(),
            false,
        )?;
        Ok(())
    }

    fn load(dir: &Path) -> Result<LocalCa, PkiError> {
        let rng = SystemRandom::new();
        let p = |f: &str| dir.join(f);
        let ca_key = read_key(&p(CA_KEY_FILE), &rng)?;
        let ds_key = read_key(&p(DS_KEY_FILE), &rng)?;
        let ca_cert = read_cert(&p(CA_CERT_FILE))?;
        let ds_cert = read_cert(&p(DS_CERT_FILE))?;

        let ca = parse_cert(&ca_cert, "CA certificate")
            .map_err(|e| bad_file(&p(CA_CERT_FILE), e.to_string()))?;
        let ds = parse_cert(&ds_cert, "document signer certificate")
            .map_err(|e| bad_file(&p(DS_CERT_FILE), e.to_string()))?;
        let ca_point = cert_point(&ca).map_err(|e| bad_file(&p(CA_CERT_FILE), e))?;
        if ca_point != ca_key.public_key().as_ref() {
            return Err(bad_file(
                &p(CA_CERT_FILE),
                format!("public key does not match the private key in {CA_KEY_FILE}"),
            ));
        }
        let ds_point = cert_point(&ds).map_err(|e| bad_file(&p(DS_CERT_FILE), e))?;
        if ds_point != ds_key.public_key().as_ref() {
            return Err(bad_file(
                &p(DS_CERT_FILE),
                format!("public key does not match the private key in {DS_KEY_FILE}"),
            ));
        }
        if !ca.is_ca() {
            return Err(bad_file(
                &p(CA_CERT_FILE),
                "certificate is not a CA (basicConstraints cA=TRUE missing)",
            ));
        }
        check::verify_signed_by(&ca, &ca).map_err(|e| {
            bad_file(
                &p(CA_CERT_FILE),
                format!("self-signature does not verify: {e}"),
            )
        })?;
        check::verify_signed_by(&ds, &ca).map_err(|e| {
            bad_file(
                &p(DS_CERT_FILE),
                format!("not signed by the CA in {CA_CERT_FILE}: {e}"),
            )
        })?;
        let ca_not_after = ca.validity().not_after.timestamp();
        drop(ca);
        drop(ds);
        Ok(LocalCa {
            dir: dir.to_path_buf(),
            ca_cert,
            ca_key,
            ca_not_after,
            ds: LocalDocumentSigner {
                cert: ds_cert,
                key: ds_key,
                rng: SystemRandom::new(),
            },
            rng,
            register: None,
        })
    }

    /// The register that keeps this CA's revocations and CRL numbers.
    pub fn with_register(mut self, register: Arc<dyn RevocationStore>) -> LocalCa {
        self.register = Some(register);
        self
    }

    /// Keep revocations and CRL numbers in `register` from now on.
    pub fn set_register(&mut self, register: Arc<dyn RevocationStore>) {
        self.register = Some(register);
    }

    /// [`CertificateAuthority::revoke`], kept in `register` (a counter
    /// revokes through the register it journals in).
    pub fn revoke_in(
        &self,
        register: &dyn RevocationStore,
        who: &Who,
        serial: &str,
        card_serial: &str,
        reason: RevocationReason,
    ) -> Result<Revocation, PkiError> {
        crl::serial_from_hex(serial)?;
        register
            .record_revocation(
                who,
                &Revocation {
                    serial: serial.to_ascii_lowercase(),
                    issuer: self.issuer()?,
                    reason,
                    revoked_at: 0,
                    card_serial: card_serial.to_string(),
                    station: who.station.clone(),
                    operator: who.operator.clone(),
                },
            )
            .map_err(|e| PkiError::Register(e.to_string()))
    }

    fn register(&self) -> Result<&dyn RevocationStore, PkiError> {
        self.register
            .as_deref()
            .ok_or_else(|| PkiError::NoRegister(self.dir.clone()))
    }

    /// The CA's subject as text (the issuer of its revocations).
    pub fn issuer(&self) -> Result<String, PkiError> {
        Ok(parse_cert(&self.ca_cert, "CA certificate")?
            .subject()
            .to_string())
    }

    /// [`CertificateAuthority::crl`] at `now` (Unix seconds).
    pub fn crl_at(
        &self,
        who: &Who,
        now: i64,
        valid_for: Duration,
    ) -> Result<(CrlIssued, Vec<u8>), PkiError> {
        let j = self.register()?;
        let ca = parse_cert(&self.ca_cert, "CA certificate")?;
        let issuer = ca.subject().to_string();
        let next_update = i64::try_from(valid_for.as_secs())
            .ok()
            .and_then(|v| now.checked_add(v))
            .filter(|n| *n > now && *n <= self.ca_not_after)
            .ok_or_else(|| PkiError::InvalidInput {
                what: "CRL next update",
                reason: format!(
                    "{}s from {} is not a time between now and the end of the CA certificate ({})",
                    valid_for.as_secs(),
                    crate::utc::format_unix(now),
                    crate::utc::format_unix(self.ca_not_after)
                ),
            })?;
        let revoked = j
            .revocations(&issuer)
            .map_err(|e| PkiError::Register(e.to_string()))?;
        let mut entries = Vec::with_capacity(revoked.len());
        for r in &revoked {
            entries.push(CrlEntry {
                serial: crl::serial_from_hex(&r.serial)?,
                revoked_at: r.revoked_at.div_euclid(1000),
                reason: r.reason,
            });
        }
        let issued = j
            .record_crl(
                who,
                &issuer,
                now.saturating_mul(1000),
                next_update.saturating_mul(1000),
                entries.len() as u64,
            )
            .map_err(|e| PkiError::Register(e.to_string()))?;
        let number = u64::try_from(issued.number).map_err(|_| {
            PkiError::Register(format!("CRL number {} is not positive", issued.number))
        })?;
        let der = crl::sign_crl(
            &CrlTemplate {
                issuer_name: ca.subject().as_raw(),
                issuer_point: self.ca_key.public_key().as_ref(),
                number,
                this_update: now,
                next_update,
                entries: &entries,
            },
            &self.ca_key,
            &self.rng,
        )?;
        Ok((issued, der))
    }

    /// Directory holding the CA files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// DER of the self-signed CA certificate.
    pub fn ca_certificate(&self) -> &[u8] {
        &self.ca_cert
    }

    /// The document signer (implements [`DocumentSigner`]).
    pub fn document_signer(&self) -> &LocalDocumentSigner {
        &self.ds
    }

    /// [`CertificateAuthority::accepts`] at `now` (Unix seconds): the end is
    /// after `now` and not after the CA certificate's; the CRL URIs, the
    /// policy OID and its CPS URI can be written.
    pub fn accepts_at(&self, terms: &IssueTerms, now: i64) -> Result<(), PkiError> {
        let not_after = terms.not_after;
        if not_after <= now {
            return Err(PkiError::InvalidInput {
                what: "certificate end",
                reason: format!(
                    "notAfter {} is not after the issuance time {}",
                    crate::utc::format_unix(not_after),
                    crate::utc::format_unix(now)
                ),
            });
        }
        if not_after > self.ca_not_after {
            return Err(PkiError::InvalidInput {
                what: "certificate end",
                reason: format!(
                    "notAfter {} is after the end of the CA certificate in {} ({}): a certificate cannot outlive its issuer",
                    crate::utc::format_unix(not_after),
                    self.dir.join(CA_CERT_FILE).display(),
                    crate::utc::format_unix(self.ca_not_after)
                ),
            });
        }
        crl_distribution_points_ext(&terms.crl_distribution_points)?;
        if let Some(p) = &terms.policy {
            certificate_policies_ext(p)?;
        }
        Ok(())
    }

    /// Issues with an explicit issuance time (validity starts one minute
    /// before `now` and ends at `terms.not_after`).
    pub fn issue_at(
        &self,
        csr_der: &[u8],
        profile: CertProfile,
        terms: &IssueTerms,
        now: SystemTime,
    ) -> Result<Vec<u8>, PkiError> {
        let info = verify_csr(csr_der)?;
        let subject_name = info.subject.to_name()?;
        let ca = parse_cert(&self.ca_cert, "CA certificate")?;
        let now = crate::utc::unix_secs(now);
        self.accepts_at(terms, now)?;
        let mut extensions = vec![end_entity()?];
        match profile {
            CertProfile::Authentication => {
                extensions.push(key_usage_ext(&[KU_DIGITAL_SIGNATURE])?);
                extensions.push(extension(
                    ID_CE_EXT_KEY_USAGE,
                    false,
                    &ExtendedKeyUsage(vec![ID_KP_CLIENT_AUTH]),
                )?);
            }
            CertProfile::Signature => extensions.push(key_usage_ext(&[KU_NON_REPUDIATION])?),
        }
        if !terms.crl_distribution_points.is_empty() {
            extensions.push(crl_distribution_points_ext(&terms.crl_distribution_points)?);
        }
        if let Some(p) = &terms.policy {
            extensions.push(certificate_policies_ext(p)?);
        }
        sign_certificate(
            Template {
                issuer_name: name_from_der(ca.subject().as_raw(), "CA certificate subject")?,
                issuer_point: self.ca_key.public_key().as_ref(),
                subject_name,
                subject_point: &info.public_point,
                not_before: now - BACKDATE_SECS,
                not_after: terms.not_after,
                extensions,
            },
            &self.ca_key,
            &self.rng,
        )
    }
}

impl CertificateAuthority for LocalCa {
    fn issue(
        &self,
        csr_der: &[u8],
        profile: CertProfile,
        terms: &IssueTerms,
    ) -> Result<Vec<u8>, PkiError> {
        self.issue_at(csr_der, profile, terms, SystemTime::now())
    }

    fn accepts(&self, terms: &IssueTerms) -> Result<(), PkiError> {
        self.accepts_at(terms, crate::utc::unix_secs(SystemTime::now()))
    }

    fn chain(&self) -> Vec<Vec<u8>> {
        vec![self.ca_cert.clone()]
    }

    fn revoke(
        &self,
        who: &Who,
        serial: &str,
        card_serial: &str,
        reason: RevocationReason,
    ) -> Result<Revocation, PkiError> {
        self.revoke_in(self.register()?, who, serial, card_serial, reason)
    }

    fn revocation(&self, serial: &str) -> Result<Option<Revocation>, PkiError> {
        self.register()?
            .revocation(serial)
            .map_err(|e| PkiError::Register(e.to_string()))
    }

    fn crl(&self, who: &Who, valid_for: Duration) -> Result<(CrlIssued, Vec<u8>), PkiError> {
        self.crl_at(who, crate::utc::unix_secs(SystemTime::now()), valid_for)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{check_certificate, describe_certificate};
    use crate::test_support::{
        card_key, card_point, card_sign, make_csr, new_ca, subject, terms, terms_ending,
    };

    #[test]
    fn key_usage_encoding() {
        // digitalSignature: 03 02 07 80
        let e = key_usage_ext(&[KU_DIGITAL_SIGNATURE])
            .unwrap()
            .to_der()
            .unwrap();
        assert!(e.ends_with(&[0x04, 0x04, 0x03, 0x02, 0x07, 0x80]));
        let e = key_usage_ext(&[KU_NON_REPUDIATION])
            .unwrap()
            .to_der()
            .unwrap();
        assert!(e.ends_with(&[0x03, 0x02, 0x06, 0x40]));
        let e = key_usage_ext(&[KU_KEY_CERT_SIGN, KU_CRL_SIGN])
            .unwrap()
            .to_der()
            .unwrap();
        assert!(e.ends_with(&[0x03, 0x02, 0x01, 0x06]));
    }

    #[test]
    fn creates_files_with_modes_and_reloads() {
        let (tmp, ca) = new_ca();
        let dir = tmp.path().join("ca");
        for f in ALL_FILES {
            assert!(dir.join(f).is_file(), "{f}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in [CA_KEY_FILE, DS_KEY_FILE] {
                let m = fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
                assert_eq!(m, 0o600, "{f}");
            }
        }
        let again = LocalCa::open_or_create(&dir).unwrap();
        assert_eq!(again.ca_certificate(), ca.ca_certificate());
        assert_eq!(
            again.document_signer().certificate(),
            ca.document_signer().certificate()
        );
        let s = describe_certificate(ca.ca_certificate()).unwrap();
        assert!(s.is_ca);
        assert_eq!(
            s.subject,
            "C=IR, O=cardsmith test, CN=cardsmith local test CA"
        );
        assert_eq!(s.key_usage, vec!["keyCertSign", "cRLSign"]);
        let span = s.not_after_unix - s.not_before_unix;
        assert!(span > 15 * 365 * 86400 && span < 15 * 366 * 86400 + 120);
        let d = describe_certificate(ca.document_signer().certificate()).unwrap();
        assert_eq!(d.key_usage, vec!["digitalSignature"]);
        assert_eq!(d.issuer, s.subject);
    }

    #[test]
    fn debug_hides_keys() {
        let (tmp, ca) = new_ca();
        let dbg = format!("{ca:?}");
        assert!(dbg.contains("<redacted>"));
        let key = fs::read(tmp.path().join("ca").join(CA_KEY_FILE)).unwrap();
        // No long run of the key bytes (hex) appears.
        let key_hex = crate::hex::lower(&key[key.len() - 40..key.len() - 8]);
        assert!(!dbg.to_lowercase().contains(&key_hex));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_readable_key_file() {
        use std::os::unix::fs::PermissionsExt;
        let (tmp, _ca) = new_ca();
        let dir = tmp.path().join("ca");
        let key = dir.join(DS_KEY_FILE);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
        match LocalCa::open_or_create(&dir) {
            Err(PkiError::InsecureKeyFile { path, mode }) => {
                assert_eq!(path, key);
                assert_eq!(mode, 0o640);
            }
            other => panic!("expected InsecureKeyFile, got {other:?}"),
        }
    }

    #[test]
    fn refuses_malformed_files_naming_them() {
        let (tmp, _ca) = new_ca();
        let dir = tmp.path().join("ca");
        let cert = dir.join(CA_CERT_FILE);
        let orig = fs::read(&cert).unwrap();
        fs::write(
            &cert,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = LocalCa::open_or_create(&dir).unwrap_err();
        assert!(
            matches!(&e, PkiError::BadFile { path, .. } if *path == cert),
            "{e}"
        );
        assert!(e.to_string().contains(CA_CERT_FILE));
        fs::write(&cert, &orig).unwrap();

        let key = dir.join(CA_KEY_FILE);
        write_file(&dir, CA_KEY_FILE, b"garbage", true).unwrap();
        let e = LocalCa::open_or_create(&dir).unwrap_err();
        assert!(
            matches!(&e, PkiError::BadFile { path, .. } if *path == key),
            "{e}"
        );

        // Swap in another CA's key: mismatch is detected and named.
        let (tmp2, _ca2) = new_ca();
        let other = fs::read(tmp2.path().join("ca").join(CA_KEY_FILE)).unwrap();
        write_file(&dir, CA_KEY_FILE, &other, true).unwrap();
        let e = LocalCa::open_or_create(&dir).unwrap_err();
        assert!(e.to_string().contains(CA_CERT_FILE), "{e}");
        assert!(e.to_string().contains("does not match"), "{e}");
    }

    #[test]
    fn incomplete_directory_is_reported() {
        let (tmp, _ca) = new_ca();
        let dir = tmp.path().join("ca");
        fs::remove_file(dir.join(DS_CERT_FILE)).unwrap();
        match LocalCa::open_or_create(&dir) {
            Err(PkiError::IncompleteCaDirectory { missing, .. }) => {
                assert_eq!(missing, vec![DS_CERT_FILE])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn concurrent_creation_yields_one_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("shared-ca");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let d = dir.clone();
                std::thread::spawn(move || {
                    LocalCa::open_or_create(&d)
                        .unwrap()
                        .ca_certificate()
                        .to_vec()
                })
            })
            .collect();
        let certs: Vec<Vec<u8>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(certs.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn issues_both_profiles() {
        let (_tmp, ca) = new_ca();
        let key = card_key();
        let csr = make_csr(&key, &subject());
        for profile in [CertProfile::Authentication, CertProfile::Signature] {
            let cert = ca.issue(&csr, profile, &terms()).unwrap();
            check_certificate(
                &cert,
                card_point(&key),
                profile,
                &ca.chain(),
                SystemTime::now(),
            )
            .unwrap();
            let s = describe_certificate(&cert).unwrap();
            assert!(!s.is_ca);
            assert_eq!(s.serial_hex.len(), 32, "{}", s.serial_hex);
            assert!(s.subject.contains("PNOIR-0012345679"), "{}", s.subject);
            let span = s.not_after_unix - s.not_before_unix;
            assert!((5 * 365 * 86400..=5 * 365 * 86400 + 61).contains(&span));
            match profile {
                CertProfile::Authentication => {
                    assert_eq!(s.key_usage, vec!["digitalSignature"]);
                    assert_eq!(s.extended_key_usage, vec!["clientAuth"]);
                }
                CertProfile::Signature => {
                    assert_eq!(s.key_usage, vec!["nonRepudiation"]);
                    assert!(s.extended_key_usage.is_empty());
                }
            }
        }
        // Serials differ.
        let a = describe_certificate(&ca.issue(&csr, CertProfile::Signature, &terms()).unwrap())
            .unwrap();
        let b = describe_certificate(&ca.issue(&csr, CertProfile::Signature, &terms()).unwrap())
            .unwrap();
        assert_ne!(a.serial_hex, b.serial_hex);
    }

    #[test]
    fn certificate_ends_when_the_terms_say_and_carries_crl_and_policy() {
        let (_tmp, ca) = new_ca();
        let key = card_key();
        let csr = make_csr(&key, &subject());
        let now = crate::utc::unix_secs(SystemTime::now());
        // Seven years and a day: past the five years this CA used to give.
        let end = (now / 86_400 + 7 * 365 + 1) * 86_400;
        for profile in [CertProfile::Authentication, CertProfile::Signature] {
            let cert = ca.issue(&csr, profile, &terms_ending(end)).unwrap();
            let s = describe_certificate(&cert).unwrap();
            assert_eq!(s.not_after_unix, end);
            assert_eq!(
                s.crl_distribution_points,
                vec!["http://pki.national-id.example/crl/card-ca.crl"]
            );
            assert_eq!(
                s.policies,
                vec!["2.999.364.1.1 (CPS https://pki.national-id.example/cps)"]
            );
        }
        // Without CRL and policy, neither extension is written.
        let bare = IssueTerms {
            not_after: end,
            crl_distribution_points: vec![],
            policy: None,
        };
        let s =
            describe_certificate(&ca.issue(&csr, CertProfile::Signature, &bare).unwrap()).unwrap();
        assert!(s.crl_distribution_points.is_empty() && s.policies.is_empty());
        // A policy without a CPS.
        let no_cps = IssueTerms {
            policy: Some(CertPolicy {
                oid: "1.2.3.4".into(),
                cps_uri: None,
            }),
            ..bare
        };
        let s = describe_certificate(&ca.issue(&csr, CertProfile::Signature, &no_cps).unwrap())
            .unwrap();
        assert_eq!(s.policies, vec!["1.2.3.4"]);
    }

    /// OIDs under 2.48 and above (first subidentifier of two bytes) are
    /// shown as written, in extKeyUsage as in certificatePolicies.
    #[test]
    fn oids_under_the_example_arc_are_shown_as_written() {
        let (_tmp, ca) = new_ca();
        let key = card_key();
        let point = card_point(&key).to_vec();
        let ca_cert = parse_cert(ca.ca_certificate(), "CA").unwrap();
        let now = crate::utc::unix_secs(SystemTime::now());
        let cert = sign_certificate(
            Template {
                issuer_name: name_from_der(ca_cert.subject().as_raw(), "CA").unwrap(),
                issuer_point: ca.ca_key.public_key().as_ref(),
                subject_name: name("eku test").unwrap(),
                subject_point: &point,
                not_before: now,
                not_after: now + 86_400,
                // const-oid cannot hold 2.999.1: the SEQUENCE OF is written by hand.
                extensions: vec![extension(
                    ID_CE_EXT_KEY_USAGE,
                    false,
                    &vec![
                        oid::policy_oid_der("2.999.1").unwrap(),
                        Any::encode_from(&ID_KP_CLIENT_AUTH).unwrap(),
                    ],
                )
                .unwrap()],
            },
            &ca.ca_key,
            &ca.rng,
        )
        .unwrap();
        let s = describe_certificate(&cert).unwrap();
        assert_eq!(s.extended_key_usage, vec!["clientAuth", "2.999.1"]);
    }

    #[test]
    fn refuses_terms_it_cannot_honour() {
        let (_tmp, ca) = new_ca();
        let key = card_key();
        let csr = make_csr(&key, &subject());
        let now = crate::utc::unix_secs(SystemTime::now());
        let ca_end = describe_certificate(ca.ca_certificate())
            .unwrap()
            .not_after_unix;
        let why = |t: &IssueTerms| match ca.issue(&csr, CertProfile::Authentication, t) {
            Err(e @ PkiError::InvalidInput { .. }) => {
                // Asked beforehand, the CA says the same.
                assert_eq!(ca.accepts(t).unwrap_err().to_string(), e.to_string());
                e.to_string()
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        };
        let e = why(&terms_ending(ca_end + 1));
        assert!(
            e.contains("cannot outlive its issuer") && e.contains(CA_CERT_FILE),
            "{e}"
        );
        let e = why(&terms_ending(now - 10));
        assert!(e.contains("is not after the issuance time"), "{e}");
        let mut t = terms();
        t.crl_distribution_points = vec!["http://crl.example/ca crl".into()];
        assert!(why(&t).contains("CRL distribution point"));
        t.crl_distribution_points = vec!["crl.example/ca.crl".into()];
        assert!(why(&t).contains("not an absolute URI"));
        let mut t = terms();
        t.policy = Some(CertPolicy {
            oid: "2.999.x".into(),
            cps_uri: None,
        });
        let e = why(&t);
        assert!(e.contains("policy OID") && e.contains("arc 3"), "{e}");
        t.policy = Some(CertPolicy {
            oid: "2.999".into(),
            cps_uri: Some("https://pki.example/cps\u{e9}".into()),
        });
        assert!(why(&t).contains("CPS URI"));
        // The largest end the CA allows is accepted.
        ca.accepts(&terms_ending(ca_end)).unwrap();
        ca.issue(&csr, CertProfile::Authentication, &terms_ending(ca_end))
            .unwrap();
    }

    #[test]
    fn refuses_csr_without_proof_of_possession() {
        let (_tmp, ca) = new_ca();
        let key = card_key();
        let other = card_key();
        let info = crate::csr::request_info_der(&subject(), card_point(&key)).unwrap();
        let csr = crate::csr::assemble_csr(&info, &card_sign(&other, &info)).unwrap();
        assert!(matches!(
            ca.issue(&csr, CertProfile::Authentication, &terms()),
            Err(PkiError::CsrSignatureInvalid)
        ));
        assert!(matches!(
            ca.issue(b"\x30\x00", CertProfile::Authentication, &terms()),
            Err(PkiError::CsrMalformed(_))
        ));
    }
}
