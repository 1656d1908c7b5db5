//! `cardsmith-pki`: PKI support for card personalization, a crate of its
//! own on the wire layer only (`tests/crate_graph.rs`). It knows no
//! register: the CA keeps its revocations and CRL numbers in a
//! [`revocation::RevocationStore`], which the host's register provides.
//!
//! * [`csr`] — PKCS#10 requests (RFC 2986) for the keys the card generates;
//!   the card signs, the host assembles.
//! * [`ca`] — the [`CertificateAuthority`] trait and [`LocalCa`], a file-backed
//!   test CA with a document signer.
//! * [`check`] — checks of a returned certificate against the card's key, the
//!   profile and the CA chain (x509-parser for parsing, ring for signatures),
//!   and against the card: validity ending with the card's, the profile's CRL
//!   distribution points and policy ([`check_card_terms`]).
//! * [`sod`] — ICAO Doc 9303 part 10 EF.SOD (CMS SignedData over an
//!   LDSSecurityObject).
//! * [`profile`] — what a certificate is for and under which policy, the
//!   words the CA issues by and the checker checks by; `x509` — the
//!   building blocks (PEM, key identifiers, extensions, times, signature
//!   values) that the CA, the CRL and the EF.SOD share. Both are leaves, so
//!   that the CA, the checker, the CRL and the EF.SOD do not import each
//!   other in a cycle.
//!
//! All signatures are ECDSA P-256 with SHA-256 via `ring`. Certificates,
//! requests, CRLs and the security object are the RustCrypto types
//! (`x509-cert`, `cms`, `spki`, encoded and strictly decoded by `der`);
//! `oid` holds what `const-oid` cannot (OIDs such as `2.999.…` as text).

// No panic reachable from input (certificates, requests, files): outside
// tests, no indexing or slicing that can go out of bounds, no unwrap, no
// expect.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

pub(crate) use cardsmith_wire::{hex, private};

pub mod ca;
pub mod check;
pub mod crl;
pub mod csr;
pub mod oid;
pub mod profile;
pub mod revocation;
pub mod sod;
pub mod utc;
pub(crate) mod x509;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests_fuzz;
#[cfg(test)]
mod tests_openssl;

use std::path::PathBuf;

pub use ca::{CertificateAuthority, IssueTerms, LocalCa, LocalDocumentSigner};
pub use check::{
    certificate_public_key, check_card_terms, check_certificate, describe_certificate, CardTerms,
    CertProblem, CertSummary,
};
pub use csr::{
    assemble_csr, der_to_raw_sig, raw_to_der_sig, request_info_der, verify_csr, CsrInfo,
    SubjectName,
};
pub use profile::{CertPolicy, CertProfile};
pub use sod::{
    build_sod, build_sod_at, sod_length_at_most, verify_sod, DocumentSigner, SodContents,
    SodProblem,
};

/// Errors of the PKI operations that produce data (CSR, issuance, SOD,
/// CA storage). Checks of received data use [`CertProblem`] / [`SodProblem`].
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A caller-supplied value is unusable.
    #[error("invalid {what}: {reason}")]
    InvalidInput { what: &'static str, reason: String },
    /// A raw or DER ECDSA signature has the wrong shape.
    #[error("bad ECDSA signature encoding: {0}")]
    SignatureEncoding(String),
    /// A PKCS#10 request could not be parsed or is not what we support.
    #[error("malformed certificate request: {0}")]
    CsrMalformed(String),
    /// The request's self-signature (proof of possession) does not verify.
    #[error(
        "certificate request signature does not verify (no proof of possession of the private key)"
    )]
    CsrSignatureInvalid,
    /// A file could not be read or written.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A CA file exists but its content is unusable.
    #[error("{}: {reason}", path.display())]
    BadFile { path: PathBuf, reason: String },
    /// A private key file may be read by group or others.
    #[error("private key file {} has mode {mode:04o}; it must not be accessible by group or others (use chmod 600)", path.display())]
    InsecureKeyFile { path: PathBuf, mode: u32 },
    /// Some but not all CA files are present.
    #[error("CA directory {} is incomplete: present {present:?}, missing {missing:?}; restore or remove the files", dir.display())]
    IncompleteCaDirectory {
        dir: PathBuf,
        present: Vec<&'static str>,
        missing: Vec<&'static str>,
    },
    /// A signing / key generation / randomness primitive failed.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// The CA was given no register, so it knows no revocations.
    #[error("the local CA in {} has no register to keep its revocations in", .0.display())]
    NoRegister(PathBuf),
    /// The register that keeps the CA's revocations refused or failed.
    #[error("register: {0}")]
    Register(String),
    /// A structure could not be DER-encoded (inputs are checked before, so
    /// this means a value beyond what DER or the profile can carry).
    #[error("DER encoding failed: {0}")]
    Encoding(#[from] der::Error),
    /// A certificate we rely on (e.g. the document signer's) is unusable.
    #[error("certificate problem: {0}")]
    Certificate(#[from] CertProblem),
}
