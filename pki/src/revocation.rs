//! Revocations as the CA sees them: who revokes, why, what the register
//! keeps of a revocation and of a CRL, and [`RevocationStore`], the one
//! thing the CA needs of the register (the register implements it; the
//! CA never names the register).

use crate::utc::Millis;
use serde::Serialize;

/// Who does something, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Who {
    /// The line station (host name unless configured).
    pub station: String,
    /// The technician or supervisor logged in.
    pub operator: String,
    /// The reader, when the action concerns one.
    pub reader: Option<String>,
}

impl Who {
    pub fn at_reader(&self, reader: &str) -> Who {
        Who {
            reader: Some(reader.to_string()),
            ..self.clone()
        }
    }
}

/// Why a certificate was revoked (RFC 5280 5.3.1 CRLReason), the reasons
/// the programme uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RevocationReason {
    /// The card was lost: its keys may be in someone else's hands.
    #[serde(rename = "keyCompromise")]
    KeyCompromise,
    /// A replacement card was delivered to the holder.
    #[serde(rename = "superseded")]
    Superseded,
    /// The card was terminated at a counter.
    #[serde(rename = "cessationOfOperation")]
    CessationOfOperation,
}

impl RevocationReason {
    /// The CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            RevocationReason::KeyCompromise => 1,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
        }
    }
    /// The RFC 5280 name (`keyCompromise`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
        }
    }
    pub fn from_code(code: i64) -> Option<RevocationReason> {
        [
            RevocationReason::KeyCompromise,
            RevocationReason::Superseded,
            RevocationReason::CessationOfOperation,
        ]
        .into_iter()
        .find(|r| i64::from(r.code()) == code)
    }
}

/// A certificate revoked by the CA, as the register keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revocation {
    /// Certificate serial number, lower-case hex (as the register's certificate rows have it).
    pub serial: String,
    /// The issuing CA's subject, as text.
    pub issuer: String,
    pub reason: RevocationReason,
    pub revoked_at: Millis,
    /// The card that held the certificate.
    pub card_serial: String,
    pub station: String,
    pub operator: String,
}

/// A CRL the CA issued: its number and validity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrlIssued {
    pub number: i64,
    pub issuer: String,
    pub this_update: Millis,
    pub next_update: Millis,
    /// Revoked certificates it lists.
    pub entries: u64,
}

/// Where the CA keeps its revocations and takes its CRL numbers: the
/// issuance register (`register::JournalRevocations`). Errors are the
/// store's own, as text.
pub trait RevocationStore: Send + Sync {
    /// Where the store is, for messages (never a password).
    fn location(&self) -> String;
    /// Keep a revocation (its time is the store's); as kept.
    fn record_revocation(&self, who: &Who, r: &Revocation) -> Result<Revocation, String>;
    /// The revocation of a certificate (serial, lower-case hex), if any.
    fn revocation(&self, serial: &str) -> Result<Option<Revocation>, String>;
    /// Every revocation by `issuer`, oldest first.
    fn revocations(&self, issuer: &str) -> Result<Vec<Revocation>, String>;
    /// Take the next CRL number of `issuer` and record the CRL.
    fn record_crl(
        &self,
        who: &Who,
        issuer: &str,
        this_update: Millis,
        next_update: Millis,
        entries: u64,
    ) -> Result<CrlIssued, String>;
}
