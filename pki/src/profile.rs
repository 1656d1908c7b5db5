//! What a certificate is for ([`CertProfile`]) and under which policy
//! ([`CertPolicy`]): the words the CA issues by ([`super::ca`]) and the
//! checker checks by ([`super::check`]). A leaf, so that the checker does
//! not import the CA.

use std::fmt;

/// Which of the card's two keys a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertProfile {
    /// TLS-client style authentication key.
    Authentication,
    /// Qualified-style electronic signature key (non-repudiation).
    Signature,
}

impl fmt::Display for CertProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertProfile::Authentication => "authentication",
            CertProfile::Signature => "signature",
        })
    }
}

/// A certificate policy (RFC 5280 4.2.1.4): its OID, and optionally the
/// URI of the certification practice statement (an id-qt-cps qualifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPolicy {
    /// Dotted OID, e.g. `2.999.364.1.1`.
    pub oid: String,
    pub cps_uri: Option<String>,
}

impl fmt::Display for CertPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cps_uri {
            Some(u) => write!(f, "{} (CPS {u})", self.oid),
            None => f.write_str(&self.oid),
        }
    }
}
