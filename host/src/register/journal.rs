//! The line's journal: every batch, record, attempt and operator action.
//!
//! The journal is the arbiter of the line's guarantee: a record is on a
//! good card only once the journal has durably committed that attempt as
//! `good`, and the journal refuses a second good attempt for the same
//! record (and a second good record for the same card). Everything else —
//! which record goes on which card, what happened after a crash — is
//! decided by claiming and finishing attempts through this interface.
//!
//! [`Journal`] is the interface; [`super::sqlite::SqliteJournal`] is the
//! default implementation (one file in the data directory). A shared
//! server-backed journal (PostgreSQL) implements the same trait: claims
//! are single transactions that take the lowest pending record (`FOR UPDATE
//! SKIP LOCKED` there, `BEGIN IMMEDIATE` in SQLite), so several stations
//! can draw from one batch without handing out a record twice.
//!
//! No secret goes into the journal: records are referenced by id and line,
//! never by content (the batch file holds portraits and fingerprint
//! templates); transcripts are stored as a SHA-256 digest of the redacted
//! APDU trace.

use serde::Serialize;

pub use crate::pki::revocation::{CrlIssued, Revocation, RevocationReason, Who};
pub use crate::utc::Millis;

/// How long a claim is held without renewal, unless configured
/// (`--lease`). A card takes seconds; a station renews every third of it.
pub const DEFAULT_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// The reason written on an attempt whose lease ran out.
pub const LEASE_EXPIRED: &str = "lease expired";

/// Now, in journal time.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Render journal time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso_time(ms: Millis) -> String {
    crate::utc::iso_millis(ms)
}

/// A batch as the journal knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchInfo {
    pub id: i64,
    pub name: String,
    /// Where the batch file was loaded from (resume reads it again).
    pub path: String,
    /// SHA-256 of the batch file, hex.
    pub digest: String,
    pub loaded_at: Millis,
    pub loaded_by: String,
    /// Valid records taken into the queue.
    pub records: u64,
    /// Records set aside when the batch was loaded.
    pub invalid: u64,
}

/// A valid record to queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewRecord {
    pub record_id: String,
    /// 1-based line in the batch file.
    pub line: u64,
    /// When and where the citizen asked for the card (the programme view
    /// reads it). `None` stores nothing: the view shows it as unknown.
    pub request: Option<RequestInfo>,
}

/// The request a record answers: its date and the office that took it.
/// Not secret (no name, no national ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// The request date as days since 1970-01-01 (the Gregorian day of
    /// the record's Solar Hijri `request_date`).
    pub day: i64,
    /// `domestic` or `consulate` (the record's `issuing_office.kind`).
    pub office_kind: String,
    /// `1021`, `AE-DXB` (the record's `issuing_office.code`).
    pub office_code: String,
}

/// One group of the programme view's input: the records that share an
/// office, a request day and the days each step happened (days since
/// 1970-01-01 in Iran time, UTC+03:30). `None`: not recorded (old rows)
/// or the step has not happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgrammeGroup {
    pub office_kind: Option<String>,
    pub office_code: Option<String>,
    pub request_day: Option<i64>,
    /// The day the record's good card was made (its good attempt ended).
    pub made_day: Option<i64>,
    /// Where and when the good card was shipped.
    pub ship_office: Option<String>,
    pub shipped_day: Option<i64>,
    /// The day the card was delivered to its holder.
    pub delivered_day: Option<i64>,
    pub count: u64,
}

/// Iran Standard Time (UTC+03:30, no daylight saving since 2022), in ms:
/// the programme counts days in it.
pub const IRAN_OFFSET_MS: i64 = 12_600_000;

/// A record set aside at load time, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetAside {
    pub record_id: Option<String>,
    pub line: u64,
    pub reason: String,
}

/// One chunk of a streamed batch load ([`Journal::load_batch_streamed`]):
/// the valid records to queue and the records set aside, of a run of
/// lines that all come after the previous chunk's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadChunk {
    pub records: Vec<NewRecord>,
    pub set_aside: Vec<SetAside>,
}

/// Where a streamed load takes its chunks from: `Ok(None)` at the end; an
/// `Err` abandons the load (nothing of it is kept).
pub type ChunkSource<'a> = dyn FnMut() -> Result<Option<LoadChunk>> + 'a;

/// Why an attempt was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    /// A blank card gets a pending record.
    Perso,
    /// A card whose attempt was interrupted (crash, pull, pcscd restart)
    /// came back; it is verified against its record and kept if complete.
    Recovery,
}

impl AttemptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptKind::Perso => "perso",
            AttemptKind::Recovery => "recovery",
        }
    }
}

/// A record handed to a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub attempt_id: i64,
    pub record_id: String,
    pub line: u64,
    pub kind: AttemptKind,
    /// The fencing token: grows with every claim of the record. The good
    /// commit names it, so a claim that was taken away (lease expired and
    /// the record handed to another card) can never be made good.
    pub token: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Personalized and verified; the record is done.
    Good,
    /// The card or the data said no; the card is rejected and the record
    /// goes back to the queue (or is held after too many rejections).
    Rejected,
    /// The card, reader or service went away mid-attempt; the record goes
    /// back to the queue, and the card is recovered if it comes back.
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Good => "good",
            Outcome::Rejected => "rejected",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// What the journal writes when an attempt ends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Finish {
    pub outcome: Option<Outcome>,
    /// Short reason class, for "rejects by reason" (e.g. `verify: DG1`).
    pub reason_class: Option<String>,
    /// The full reason (no secrets: it comes from redacted errors).
    pub reason: Option<String>,
    /// When each stage was reached, in order.
    pub stages: Vec<(String, Millis)>,
    pub apdus: u64,
    /// SHA-256 of the redacted APDU transcript, hex.
    pub transcript_sha256: Option<String>,
    /// After this many rejections the record is held for a supervisor
    /// instead of going back to the queue.
    pub max_rejects: u32,
    /// The card was terminated (made unusable) after the rejection.
    pub card_terminated: bool,
}

/// What the journal knows about a card serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CardKnown {
    Unknown,
    Good {
        record_id: String,
        attempt_id: i64,
    },
    Rejected {
        record_id: Option<String>,
        reason: String,
        terminated: bool,
    },
    Interrupted {
        record_id: String,
        attempt_id: i64,
    },
    /// An attempt on this card is running right now (another worker, or
    /// a station that crashed and has not resumed).
    InProgress {
        record_id: String,
        attempt_id: i64,
        station: String,
    },
}

/// A row of the attempts table, for queries and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRow {
    pub id: i64,
    pub record_id: String,
    pub batch_id: i64,
    pub kind: String,
    pub station: String,
    pub reader: String,
    pub operator: String,
    pub card_serial: Option<String>,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    pub outcome: String,
    pub reason_class: Option<String>,
    pub reason: Option<String>,
    pub stages: Vec<(String, Millis)>,
    pub apdus: u64,
    pub transcript_sha256: Option<String>,
}

/// Where a record stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordRow {
    pub record_id: String,
    pub batch_id: i64,
    pub line: u64,
    pub state: String,
    pub rejects: u64,
    pub card_serial: Option<String>,
    pub reason: Option<String>,
}

/// Counts for one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    pub records: u64,
    pub pending: u64,
    pub in_progress: u64,
    pub good: u64,
    pub held: u64,
    pub invalid: u64,
    pub attempts: u64,
    pub rejected: u64,
    pub interrupted: u64,
}

impl Summary {
    /// Nothing is left to put on a card.
    pub fn finished(&self) -> bool {
        self.pending == 0 && self.in_progress == 0
    }

    /// Count `n` records in `state` (the backends' `GROUP BY state` rows).
    pub fn add_records(&mut self, state: &str, n: u64) {
        self.records += n;
        match state {
            "pending" => self.pending = n,
            "in_progress" => self.in_progress = n,
            "good" => self.good = n,
            "held" => self.held = n,
            _ => {}
        }
    }

    /// Count `n` attempts with `outcome` (the backends' `GROUP BY outcome` rows).
    pub fn add_attempts(&mut self, outcome: &str, n: u64) {
        self.attempts += n;
        match outcome {
            "rejected" => self.rejected = n,
            "interrupted" => self.interrupted = n,
            _ => {}
        }
    }
}

/// Good and rejected cards per reader and hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThroughputRow {
    pub reader: String,
    /// Start of the hour, journal time.
    pub hour: Millis,
    pub good: u64,
    pub rejected: u64,
    pub interrupted: u64,
}

/// An operator or line event (reader added, taken out of rotation, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRow {
    pub at: Millis,
    pub station: String,
    pub operator: String,
    pub reader: Option<String>,
    pub kind: String,
    pub detail: String,
}

/// A good card sent to an office for delivery to its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shipment {
    pub id: i64,
    pub card_serial: String,
    pub record_id: String,
    pub national_id: String,
    /// The office code (`1021`, `AE-DXB`).
    pub office: String,
    pub at: Millis,
    pub station: String,
    pub operator: String,
}

/// A certificate of a delivered card (public data), kept so that a lost
/// card's certificates can still be listed for revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertRow {
    /// The card key it certifies (`authentication`, `signature`).
    pub key: String,
    /// Certificate serial number, hex.
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    pub key_usage: String,
    pub not_after: String,
    /// SHA-256 fingerprint, `AB:CD:…`.
    pub sha256: String,
}

/// A card handed to its holder and activated at the counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub card_serial: String,
    pub record_id: String,
    pub national_id: String,
    pub office: String,
    pub certificates: Vec<CertRow>,
}

/// What became of a delivered card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CardStatus {
    /// Delivered and activated: in the holder's hands.
    Activated,
    /// Reported lost by its holder (replacement requested).
    Lost,
    /// Terminated on the card at the counter (replacement requested).
    Terminated,
}

impl CardStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Activated => "activated",
            CardStatus::Lost => "lost",
            CardStatus::Terminated => "terminated",
        }
    }
    pub fn from_name(s: &str) -> Option<CardStatus> {
        [
            CardStatus::Activated,
            CardStatus::Lost,
            CardStatus::Terminated,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A delivered card and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveredCard {
    pub card_serial: String,
    pub record_id: String,
    pub national_id: String,
    pub office: String,
    pub delivered_at: Millis,
    pub delivered_by: String,
    pub station: String,
    pub status: CardStatus,
    /// Why it left the holder's hands (replacement reason).
    pub reason: Option<String>,
    pub status_at: Millis,
    pub status_by: String,
    /// The card that replaced it, once that one was delivered.
    pub replaced_by: Option<String>,
    /// The register login that recorded the delivery, as the server
    /// authenticated it (PostgreSQL; a station's SQLite journal has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
}

/// A replacement request taken at a counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replacement {
    pub id: i64,
    pub national_id: String,
    pub previous_card: String,
    /// `loss`, `damage`, `civil_data_change`.
    pub reason: String,
    /// What was done with the previous card: terminated or lost.
    pub previous_card_status: CardStatus,
    pub office: String,
    pub at: Millis,
    pub station: String,
    pub operator: String,
    /// The replacement card, once delivered.
    pub new_card: Option<String>,
}

/// The reason for the certificates of a card that left its holder's
/// hands with `status`: a lost card's keys are compromised, a terminated
/// card ceased operation.
pub fn revocation_reason_for(status: CardStatus) -> Option<RevocationReason> {
    match status {
        CardStatus::Activated => None,
        CardStatus::Lost => Some(RevocationReason::KeyCompromise),
        CardStatus::Terminated => Some(RevocationReason::CessationOfOperation),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("record {record_id} is already on good card {serial}; the journal keeps one good card per record")]
    AlreadyGood { record_id: String, serial: String },
    #[error("card {serial} already holds good record {record_id}")]
    CardTaken { serial: String, record_id: String },
    #[error("no attempt {0} in progress")]
    NoSuchAttempt(i64),
    #[error("no record {0} in the journal")]
    NoSuchRecord(String),
    #[error("{0}")]
    Refused(String),
    /// The claim was no longer held when the attempt ended: its lease ran
    /// out (station stopped, paused or cut off from the register) and the
    /// record may be on its way to another card. The card must not be
    /// reported good; the line terminates it.
    #[error("attempt {attempt_id} for record {record_id} lost its claim: {why}")]
    ClaimLost {
        attempt_id: i64,
        record_id: String,
        why: String,
    },
    #[error("journal {path}: {detail}")]
    Storage { path: String, detail: String },
}

pub type Result<T> = std::result::Result<T, JournalError>;

/// The journal interface the line, the queries and the reports use.
///
/// Every method is one transaction. Implementations are shared between the
/// line's worker threads (`Send + Sync`).
pub trait Journal: Send + Sync {
    /// Where the journal lives (for messages).
    fn location(&self) -> String;

    /// Load a batch: queue `records`, remember `set_aside`. A batch file
    /// already loaded (same digest) is not loaded twice: its existing entry
    /// is returned. Records whose id is already in the journal (another
    /// batch) are set aside too; they are returned with the reason.
    fn load_batch(
        &self,
        name: &str,
        path: &str,
        digest: &str,
        who: &Who,
        records: &[NewRecord],
        set_aside: &[SetAside],
    ) -> Result<(BatchInfo, Vec<SetAside>)>;

    /// [`Journal::load_batch`] for a batch of any size: the records come
    /// chunk by chunk from `next` and go into the register in large
    /// statements, so memory holds one chunk, not the batch. Still one
    /// transaction: a load that fails or is killed midway leaves nothing
    /// (no batch, no record), and loading the file again starts afresh. A
    /// file already loaded (same digest) returns its batch without taking a
    /// chunk. The outcome is the one [`Journal::load_batch`] would give for
    /// the chunks put together.
    ///
    /// Not retried on a lost connection (the chunks are gone once taken):
    /// the error is returned and the caller loads the file again.
    fn load_batch_streamed(
        &self,
        name: &str,
        path: &str,
        digest: &str,
        who: &Who,
        next: &mut ChunkSource<'_>,
    ) -> Result<(BatchInfo, Vec<SetAside>)>;

    /// A batch by id, or the latest one.
    fn batch(&self, id: Option<i64>) -> Result<Option<BatchInfo>>;

    /// Records set aside when `batch` was loaded.
    fn set_aside(&self, batch: i64) -> Result<Vec<SetAside>>;

    /// Attempts of `station` still marked in progress (the station
    /// crashed) become interrupted and their records go back to the queue.
    fn recover_interrupted(&self, who: &Who) -> Result<Vec<AttemptRow>>;

    /// What the journal knows about this card.
    fn card(&self, serial: &str) -> Result<CardKnown>;

    /// Hand the lowest pending record of `batch` to the card `serial` in
    /// `who.reader`, and start an attempt. `None`: nothing is pending.
    ///
    /// A claim is a lease of [`Journal::lease`]: the station renews it
    /// ([`Journal::renew`]) while it works. Attempts whose lease ran out
    /// are returned to the queue by the next claim of any station (they end
    /// `interrupted`, reason class `lease expired`). The same card asking
    /// again while its claim is held gets the same claim back.
    fn claim(&self, batch: i64, who: &Who, serial: &str) -> Result<Option<Claim>>;

    /// A card whose last attempt was interrupted came back: start a
    /// recovery attempt for its record if the record is still pending.
    /// `None`: the record was meanwhile taken by another card or is done.
    fn claim_recovery(&self, who: &Who, serial: &str) -> Result<Option<Claim>>;

    /// End an attempt. A good outcome is committed and synced before this
    /// returns; it fails with [`JournalError::AlreadyGood`] if the record is
    /// already on another good card, and with [`JournalError::ClaimLost`]
    /// unless the claim is still held: the attempt in progress, its lease
    /// not expired (by the register's clock) and its fencing token the
    /// record's current one. Ending an attempt again with the outcome it
    /// already has is not an error (a retry after a lost connection).
    fn finish(&self, attempt_id: i64, f: &Finish) -> Result<()>;

    /// Extend the leases of `who.station`'s attempts in progress that have
    /// not expired yet (an expired lease is never revived). Returns how many.
    fn renew(&self, who: &Who) -> Result<u64>;

    /// How long a claim is held without renewal.
    fn lease(&self) -> std::time::Duration;

    /// Walk the audit trail and compare every audited table with it
    /// ([`super::audit`]): the first place the history was changed,
    /// removed or inserted behind the journal's back.
    fn audit(&self) -> Result<super::audit::Report>;

    /// Record a card the line rejected without an attempt (not blank,
    /// unreadable, …); `terminated` when the line made it unusable.
    fn reject_card(&self, who: &Who, serial: &str, reason: &str, terminated: bool) -> Result<()>;

    /// Log an operator or line event.
    fn event(&self, who: &Who, kind: &str, detail: &str) -> Result<()>;

    /// Put a held record back in the queue (a supervisor's decision).
    fn requeue(&self, who: &Who, record_id: &str) -> Result<()>;

    fn summary(&self, batch: i64) -> Result<Summary>;
    fn record(&self, record_id: &str) -> Result<Option<RecordRow>>;
    /// The programme view's input: every record grouped by office, request
    /// day and the days it was made, shipped and delivered (see
    /// [`ProgrammeGroup`]), in no particular order. One query with
    /// `GROUP BY`, so its size grows with offices and days, not with
    /// records.
    fn programme_groups(&self) -> Result<Vec<ProgrammeGroup>>;
    fn records(&self, batch: i64) -> Result<Vec<RecordRow>>;
    fn attempts_for_record(&self, record_id: &str) -> Result<Vec<AttemptRow>>;
    fn attempts_for_card(&self, serial: &str) -> Result<Vec<AttemptRow>>;
    fn attempts(&self, batch: i64) -> Result<Vec<AttemptRow>>;
    fn rejects_by_reason(&self, batch: Option<i64>) -> Result<Vec<(String, u64)>>;
    fn throughput(&self, batch: Option<i64>) -> Result<Vec<ThroughputRow>>;
    fn events(&self, since: Millis) -> Result<Vec<EventRow>>;

    // --- The pickup counter (`cardsmith activate`) ---

    /// Send good card `serial` (holding `record_id`) to `office`. Refused
    /// unless the journal has the card good for that record; shipping the
    /// same card to the same office again returns the first shipment, to
    /// another office is refused.
    fn ship(
        &self,
        who: &Who,
        serial: &str,
        record_id: &str,
        national_id: &str,
        office: &str,
    ) -> Result<Shipment>;

    /// The shipment of a card, if any.
    fn shipment(&self, serial: &str) -> Result<Option<Shipment>>;

    /// The card was handed over and activated: record the delivery (office,
    /// operator, station, time), its certificates, and its status
    /// `activated`. If the holder has an open replacement request, the new
    /// card closes it and the previous card is marked replaced by this one.
    /// Refused if the card was delivered before.
    fn deliver(&self, who: &Who, d: &Delivery) -> Result<()>;

    /// A delivered card and its status.
    fn delivered(&self, serial: &str) -> Result<Option<DeliveredCard>>;

    /// Every card delivered to the holder of `national_id`, oldest first.
    fn delivered_to(&self, national_id: &str) -> Result<Vec<DeliveredCard>>;

    /// The certificates recorded when the card was delivered.
    fn certificates(&self, serial: &str) -> Result<Vec<CertRow>>;

    /// Take a replacement request for delivered card `previous_card`, which
    /// was `status` (terminated at the counter, or lost). One transaction:
    /// refused unless the card is delivered and still activated.
    fn request_replacement(
        &self,
        who: &Who,
        previous_card: &str,
        reason: &str,
        status: CardStatus,
        office: &str,
    ) -> Result<Replacement>;

    /// Replacement requests for the holder of `national_id`, oldest first.
    fn replacements(&self, national_id: &str) -> Result<Vec<Replacement>>;

    // --- Revocation (the local test CA keeps its revocations here) ---

    /// Record that certificate `r.serial` (hex, stored lower-case) of card
    /// `r.card_serial` was revoked by `r.issuer` for `r.reason`, now (the
    /// register's clock), by `who` (`r.revoked_at`, `r.station` and
    /// `r.operator` are not read). Once per certificate: a certificate
    /// already revoked keeps its first revocation (reason and time), which
    /// is returned, whatever reason is asked now.
    fn record_revocation(&self, who: &Who, r: &Revocation) -> Result<Revocation>;

    /// The revocation of a certificate (serial, lower-case hex), if any.
    fn revocation(&self, serial: &str) -> Result<Option<Revocation>>;

    /// Every revocation by `issuer`, oldest first.
    fn revocations(&self, issuer: &str) -> Result<Vec<Revocation>>;

    /// Take the next CRL number of `issuer` (1, 2, …; never given twice)
    /// and record the CRL's validity and size.
    fn record_crl(
        &self,
        who: &Who,
        issuer: &str,
        this_update: Millis,
        next_update: Millis,
        entries: u64,
    ) -> Result<CrlIssued>;

    /// May this journal's login record deliveries and replacement requests
    /// at `office`? Asked by a counter before an irreversible step on a
    /// card (activating it, terminating it), so that no card is activated
    /// or terminated whose journaling the register would then refuse. The
    /// register enforces the rule itself either way; a station's own
    /// SQLite journal has no logins and allows everything.
    fn may_record_at(&self, office: &str) -> Result<()> {
        let _ = office;
        Ok(())
    }
}

/// The register as the CA's [`crate::pki::revocation::RevocationStore`]:
/// over an `Arc<dyn Journal>` (a CA that keeps its register) or a
/// `&dyn Journal` (a counter revoking through the register it journals in).
pub struct JournalRevocations<J>(pub J);

impl<J> crate::pki::revocation::RevocationStore for JournalRevocations<J>
where
    J: std::ops::Deref + Send + Sync,
    J::Target: Journal,
{
    fn location(&self) -> String {
        self.0.location()
    }
    fn record_revocation(
        &self,
        who: &Who,
        r: &Revocation,
    ) -> std::result::Result<Revocation, String> {
        self.0.record_revocation(who, r).map_err(|e| e.to_string())
    }
    fn revocation(&self, serial: &str) -> std::result::Result<Option<Revocation>, String> {
        self.0.revocation(serial).map_err(|e| e.to_string())
    }
    fn revocations(&self, issuer: &str) -> std::result::Result<Vec<Revocation>, String> {
        self.0.revocations(issuer).map_err(|e| e.to_string())
    }
    fn record_crl(
        &self,
        who: &Who,
        issuer: &str,
        this_update: Millis,
        next_update: Millis,
        entries: u64,
    ) -> std::result::Result<CrlIssued, String> {
        self.0
            .record_crl(who, issuer, this_update, next_update, entries)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_time_renders_utc() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        // 2026-11-21T10:20:30.456Z
        assert_eq!(iso_time(1_795_256_430_456), "2026-11-21T10:20:30.456Z");
        assert_eq!(iso_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
