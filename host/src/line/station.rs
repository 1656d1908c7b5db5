//! What the line does with one card in one reader: identify it, decide
//! (new blank card, a card coming back after an interruption, a card the
//! line must not touch), personalize and verify, and journal every step.

use crate::perso::card::{self, LifeCycle};
use crate::perso::engine::{self, CardInput, Stage};
use crate::perso::profile::Profile;
use crate::perso::side::{IssuerSide, Profiles};
use crate::record::Record;
use crate::register::journal::{
    AttemptKind, CardKnown, Claim, Finish, Journal, JournalError, NewRecord, Outcome, RequestInfo,
    Who,
};
use crate::transport::{Channel, ExchangeError, SharedTranscript, Transcript};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The register's entry for a valid record at `line` of its batch file:
/// its id and the request it answers (date and office, for the programme
/// view).
pub fn new_record(line: u64, r: &Record) -> NewRecord {
    NewRecord {
        record_id: r.record_id().to_string(),
        line,
        request: Some(RequestInfo {
            day: r.request_date_gregorian().day_number(),
            office_kind: r.issuing_office().kind().to_string(),
            office_code: r.issuing_office().code(),
        }),
    }
}

/// Where the line finds the record a claim names. The journal holds ids and
/// lines only (no personal data), so the record itself comes from the batch
/// file: a map of the whole batch for small ones and tests, or
/// [`BatchFileRecords`], which reads the one record from the file when its
/// card comes, so a line of a million records holds none of them.
pub trait RecordSource: Send + Sync {
    /// The record `record_id`, which the journal says starts on `line`.
    fn record(&self, record_id: &str, line: u64) -> Result<Record, String>;
}

impl RecordSource for HashMap<String, Record> {
    fn record(&self, record_id: &str, _line: u64) -> Result<Record, String> {
        self.get(record_id)
            .cloned()
            .ok_or_else(|| format!("record {record_id} is not in the loaded batch file"))
    }
}

/// Records read from the batch file by line ([`crate::record::stream::LineIndex`])
/// and validated again, with the same template rules as at load time.
pub struct BatchFileRecords {
    pub index: crate::record::stream::LineIndex,
    pub validator: crate::perso::input::IsoTemplates,
}

impl RecordSource for BatchFileRecords {
    fn record(&self, record_id: &str, line: u64) -> Result<Record, String> {
        let r = self.index.record(line, &self.validator)?;
        if r.record_id() == record_id {
            Ok(r)
        } else {
            Err(format!(
                "line {line} of the batch file holds record {}, not {record_id}; the file changed since it was loaded",
                r.record_id()
            ))
        }
    }
}

/// Something happened on the line: a card's outcome is journaled, a
/// worker ended, readers changed, or the line is stopping. Whoever waits
/// for one of these (the supervisor, a worker holding a blank card until a
/// record comes back to the queue) sleeps on this instead of polling.
#[derive(Default)]
pub struct Events {
    count: Mutex<u64>,
    cv: Condvar,
}

impl Events {
    /// Wake every waiter.
    pub fn notify(&self) {
        let mut n = self.count.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.wrapping_add(1);
        self.cv.notify_all();
    }

    /// The events so far; pass it to [`Events::wait`] to wait for the next.
    pub fn seen(&self) -> u64 {
        *self.count.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait up to `timeout` for an event after `seen`; true if there was one.
    pub fn wait(&self, seen: u64, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut n = self.count.lock().unwrap_or_else(|p| p.into_inner());
        while *n == seen {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            n = match self.cv.wait_timeout(n, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}

/// Builds the card input for a record (dates, compact templates).
pub type InputFn =
    dyn Fn(&Record, &crate::perso::profile::Profile) -> Result<CardInput, String> + Send + Sync;

/// Everything the workers share.
pub struct StationCtx {
    pub journal: Arc<dyn Journal>,
    pub batch_id: i64,
    pub records: Box<dyn RecordSource>,
    /// The issuer key, CA and SCP03 keys every card is personalized with.
    pub issuer: IssuerSide,
    /// The card profiles this station takes, tried in order on each card
    /// (by its ATR, before any command): [`StationCtx::new`] makes it the
    /// issuer side's profile alone.
    pub profiles: Profiles,
    pub input: Box<InputFn>,
    pub who: Who,
    /// Rejections after which a record is held for a supervisor.
    pub max_rejects: u32,
    /// How often a worker holding a blank card looks for work when nothing
    /// happens at this station: records other stations give back are only
    /// seen this way (this station's own outcomes wake it at once).
    pub poll: Duration,
    /// Set by [`StationCtx::stop`].
    pub stop: AtomicBool,
    /// Wakes the supervisor and the workers waiting for work.
    pub events: Events,
}

impl StationCtx {
    /// The shared state of a line's workers, with the defaults: card input
    /// dated today, held after 3 rejections, looking for other stations'
    /// returned records every second.
    pub fn new(
        journal: Arc<dyn Journal>,
        batch_id: i64,
        records: HashMap<String, Record>,
        issuer: IssuerSide,
        who: Who,
    ) -> StationCtx {
        Self::with_source(journal, batch_id, Box::new(records), issuer, who)
    }

    /// [`StationCtx::new`] with records from any [`RecordSource`].
    pub fn with_source(
        journal: Arc<dyn Journal>,
        batch_id: i64,
        records: Box<dyn RecordSource>,
        issuer: IssuerSide,
        who: Who,
    ) -> StationCtx {
        let today = crate::perso::input::today();
        StationCtx {
            journal,
            batch_id,
            records,
            profiles: Profiles::new(issuer.profile.clone(), Vec::new()),
            issuer,
            input: Box::new(move |r, p| {
                crate::perso::input::card_input(r, p, today, &crate::perso::input::compact_template)
            }),
            who,
            max_rejects: 3,
            poll: Duration::from_secs(1),
            stop: AtomicBool::new(false),
            events: Events::default(),
        }
    }

    /// Stop the line: workers end after the card in hand, waiters wake.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.events.notify();
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The card input for a claimed record, on a card of profile `p`.
    fn input_for(&self, claim: &Claim, p: &Profile) -> Result<CardInput, String> {
        self.records
            .record(&claim.record_id, claim.line)
            .and_then(|r| (self.input)(&r, p))
    }
}

/// What became of one card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardResult {
    /// Personalized (or recovered) and verified; journaled good.
    Good {
        record_id: String,
        serial: String,
        recovered: bool,
    },
    /// Rejected; the record went back to the queue (or was held).
    Rejected {
        record_id: Option<String>,
        serial: Option<String>,
        reason: String,
        terminated: bool,
    },
    /// The card went away mid-attempt; the record went back to the queue.
    Interrupted {
        record_id: String,
        serial: String,
        reason: String,
    },
    /// The line did not touch the card (already good, another station's, …).
    Skipped { serial: String, reason: String },
    /// The card could not even be identified (counts against the reader).
    Unreadable { reason: String },
    /// A blank card, but nothing left to put on it.
    NoWork,
}

impl CardResult {
    /// Should the card leave the reader (power down → card handler moves it on)?
    pub fn release(&self) -> bool {
        !matches!(self, CardResult::NoWork)
    }
}

fn stage_name(s: Stage) -> &'static str {
    match s {
        Stage::CheckBlank => "check_blank",
        Stage::SecureChannel => "secure_channel",
        Stage::IssuerAuth => "issuer_auth",
        Stage::Scripts => "scripts",
        Stage::Enrol => "enrol",
        Stage::DataGroups => "data_groups",
        Stage::Keys => "keys",
        Stage::SecurityObject => "security_object",
        Stage::Close => "close",
    }
}

/// Stage timestamps and the transcript of one attempt.
struct AttemptLog {
    stages: Vec<(String, i64)>,
    transcript: SharedTranscript,
}

impl AttemptLog {
    /// An attempt on a card of profile `p`: its stages start with the
    /// claim and the profile the card was taken as (`profile <name>`, the
    /// journal's record of which card OS holds the record).
    fn new(ch: &mut Channel, p: &Profile) -> AttemptLog {
        let transcript: SharedTranscript = Arc::new(Mutex::new(Transcript::default()));
        ch.set_transcript(Some(transcript.clone()));
        let now = crate::register::journal::now_ms();
        AttemptLog {
            stages: vec![
                ("claimed".into(), now),
                (format!("{PROFILE_STAGE}{}", p.name), now),
            ],
            transcript,
        }
    }

    fn mark(&mut self, name: &str) {
        self.stages
            .push((name.to_string(), crate::register::journal::now_ms()));
    }

    fn finish(&self, outcome: Outcome, class: Option<String>, reason: Option<String>) -> Finish {
        let t = self
            .transcript
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        Finish {
            outcome: Some(outcome),
            reason_class: class,
            reason,
            stages: self.stages.clone(),
            apdus: t.apdus(),
            transcript_sha256: Some(t.sha256_hex()),
            max_rejects: 0,
            card_terminated: false,
        }
    }
}

/// The stage of an attempt that names the card's profile: `profile `
/// and the profile's name.
pub const PROFILE_STAGE: &str = "profile ";

/// The profile an attempt's card was taken as, from its stages.
pub fn attempt_profile(stages: &[(String, i64)]) -> Option<&str> {
    stages
        .iter()
        .find_map(|(name, _)| name.strip_prefix(PROFILE_STAGE))
}

/// Make a rejected card of profile `p` unusable (see [`card::terminate`]);
/// whether it took.
pub fn terminate(ch: &mut Channel, side: &IssuerSide, p: &Profile, serial: &[u8; 8]) -> bool {
    card::terminate(ch, p, &side.key, side.scp03.as_ref(), serial).is_ok()
}

/// Handle the card now connected in `reader`.
pub fn process_card(ctx: &StationCtx, ch: &mut Channel, reader: &str) -> CardResult {
    let who = ctx.who.at_reader(reader);
    // The card's profile, by its ATR; a card of none of them gets no
    // command.
    let atr = ch.atr();
    let p = match ctx.profiles.pick(&atr) {
        Ok(p) => p,
        Err(reason) => {
            let _ = ctx.journal.event(&who, "unknown card", &reason);
            return CardResult::Skipped {
                serial: format!("with ATR {}", crate::hex::spaced(&atr)),
                reason,
            };
        }
    };
    let ident = ch.converse(async |io| {
        card::select_mf(io, p).await?;
        Ok::<_, ExchangeError>((card::life_cycle(io, p).await?, card::serial(io, p).await?))
    });
    let (lc, serial) = match ident {
        Ok(x) => x,
        Err(e) => {
            return CardResult::Unreadable {
                reason: format!("cannot identify the card: {e}"),
            }
        }
    };
    let serial_hex = crate::hex::compact(&serial);
    let known = match ctx.journal.card(&serial_hex) {
        Ok(k) => k,
        Err(e) => {
            return CardResult::Skipped {
                serial: serial_hex,
                reason: format!("journal unavailable: {e}"),
            }
        }
    };
    match known {
        CardKnown::Good { record_id, .. } => CardResult::Skipped {
            serial: serial_hex,
            reason: format!("already a good card for record {record_id}; not touched"),
        },
        // Rejected while holding citizen data, but it left before it could
        // be terminated: finish the job now.
        CardKnown::Rejected {
            record_id: Some(record_id),
            terminated: false,
            reason,
        } if lc != LifeCycle::Terminated => {
            let terminated = terminate(ch, &ctx.issuer, p, &serial);
            let why = format!(
                "came back after being rejected for record {record_id} ({reason}); terminated now"
            );
            let _ = ctx.journal.reject_card(&who, &serial_hex, &why, terminated);
            CardResult::Rejected {
                record_id: None,
                serial: Some(serial_hex),
                reason: why,
                terminated,
            }
        }
        CardKnown::Rejected { reason, .. } => CardResult::Skipped {
            serial: serial_hex,
            reason: format!("rejected before ({reason}); not touched"),
        },
        CardKnown::InProgress {
            record_id, station, ..
        } => CardResult::Skipped {
            serial: serial_hex,
            reason: format!("an attempt for record {record_id} runs at station {station}"),
        },
        CardKnown::Interrupted { record_id, .. } => {
            recover(ctx, ch, &who, p, lc, serial, &serial_hex, &record_id)
        }
        CardKnown::Unknown if lc == LifeCycle::Blank => {
            new_card(ctx, ch, &who, p, serial, &serial_hex)
        }
        CardKnown::Unknown => {
            let reason = format!("not a blank card: it is {lc}");
            let _ = ctx.journal.reject_card(&who, &serial_hex, &reason, false);
            CardResult::Rejected {
                record_id: None,
                serial: Some(serial_hex),
                reason,
                terminated: false,
            }
        }
    }
}

/// Wait for a pending record for this blank card.
fn claim_for(ctx: &StationCtx, who: &Who, serial_hex: &str) -> Option<Claim> {
    loop {
        let seen = ctx.events.seen();
        match ctx.journal.claim(ctx.batch_id, who, serial_hex) {
            Ok(Some(c)) => return Some(c),
            Ok(None) => {}
            Err(e) => tracing::warn!("claiming a record: {e}"),
        }
        let finished = ctx
            .journal
            .summary(ctx.batch_id)
            .map(|s| s.finished())
            .unwrap_or(false);
        if finished || ctx.stopping() {
            return None;
        }
        // Woken by this station's next outcome (a record may be back in
        // the queue) or the stop; other stations' only after `poll`.
        ctx.events.wait(seen, ctx.poll);
    }
}

fn new_card(
    ctx: &StationCtx,
    ch: &mut Channel,
    who: &Who,
    p: &Profile,
    serial: [u8; 8],
    serial_hex: &str,
) -> CardResult {
    let Some(claim) = claim_for(ctx, who, serial_hex) else {
        return CardResult::NoWork;
    };
    let mut log = AttemptLog::new(ch, p);
    let input = match ctx.input_for(&claim, p) {
        Ok(i) => i,
        Err(e) => {
            return reject(
                ctx,
                ch,
                p,
                &claim,
                &log,
                serial,
                serial_hex,
                "record".into(),
                e,
                false,
            )
        }
    };
    let iss = ctx.issuer.issuer_for(p);
    let result = engine::personalize_staged(ch, &iss, &input, &mut |s| log.mark(stage_name(s)));
    match result {
        Ok(_) => {}
        Err(e) if e.transport => {
            return interrupted(
                ctx,
                &claim,
                &log,
                serial_hex,
                format!("card lost at {}", e.stage),
                e.detail,
            )
        }
        Err(e) => {
            return reject(
                ctx,
                ch,
                p,
                &claim,
                &log,
                serial,
                serial_hex,
                format!("perso: {}", e.stage),
                e.detail,
                true,
            )
        }
    }
    verify_and_finish(ctx, ch, p, &claim, &mut log, serial, serial_hex, &input)
}

#[allow(clippy::too_many_arguments)]
fn verify_and_finish(
    ctx: &StationCtx,
    ch: &mut Channel,
    p: &Profile,
    claim: &Claim,
    log: &mut AttemptLog,
    serial: [u8; 8],
    serial_hex: &str,
    input: &CardInput,
) -> CardResult {
    log.mark("verify");
    let iss = ctx.issuer.issuer_for(p);
    match engine::verify(ch, &iss, input) {
        Err(e) if matches!(e, ExchangeError::Transport(_)) => interrupted(
            ctx,
            claim,
            log,
            serial_hex,
            "card lost at verify".into(),
            e.to_string(),
        ),
        Err(e) => reject(
            ctx,
            ch,
            p,
            claim,
            log,
            serial,
            serial_hex,
            "verify: card error".into(),
            e.to_string(),
            true,
        ),
        Ok(rep) if !rep.passed => {
            let failed = rep.failures();
            let class = format!("verify: {}", failed.first().copied().unwrap_or("?"));
            let detail = rep
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect::<Vec<_>>()
                .join("; ");
            reject(
                ctx, ch, p, claim, log, serial, serial_hex, class, detail, true,
            )
        }
        Ok(_) => {
            log.mark("verified");
            let f = log.finish(Outcome::Good, None, None);
            match ctx.journal.finish(claim.attempt_id, &f) {
                Ok(()) => CardResult::Good {
                    record_id: claim.record_id.clone(),
                    serial: serial_hex.to_string(),
                    recovered: claim.kind == AttemptKind::Recovery,
                },
                Err(e @ JournalError::AlreadyGood { .. })
                | Err(e @ JournalError::CardTaken { .. }) => reject(
                    ctx,
                    ch,
                    p,
                    claim,
                    log,
                    serial,
                    serial_hex,
                    "duplicate".into(),
                    e.to_string(),
                    true,
                ),
                Err(e @ JournalError::ClaimLost { .. }) => {
                    // Fencing: the claim was taken away while this station
                    // worked (lease expired: stopped, paused or cut off).
                    // The record may already be on another card; this one
                    // is never made good.
                    let terminated = terminate(ch, &ctx.issuer, p, &serial);
                    let reason = format!("fenced: {e}");
                    let _ = ctx.journal.reject_card(
                        &ctx.who.at_reader(&ch.reader()),
                        serial_hex,
                        &reason,
                        terminated,
                    );
                    CardResult::Rejected {
                        record_id: Some(claim.record_id.clone()),
                        serial: Some(serial_hex.to_string()),
                        reason,
                        terminated,
                    }
                }
                Err(e) => {
                    // Not known to be durable: the card does not count as
                    // good here, and it is not terminated either, since the
                    // commit may have gone through. The journal decides when
                    // the card comes back: good (skipped), or interrupted
                    // (recovered, or terminated if the record went elsewhere).
                    CardResult::Interrupted {
                        record_id: claim.record_id.clone(),
                        serial: serial_hex.to_string(),
                        reason: format!("the journal could not record the good card: {e}"),
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn reject(
    ctx: &StationCtx,
    ch: &mut Channel,
    p: &Profile,
    claim: &Claim,
    log: &AttemptLog,
    serial: [u8; 8],
    serial_hex: &str,
    class: String,
    reason: String,
    terminate_card: bool,
) -> CardResult {
    let terminated = terminate_card && terminate(ch, &ctx.issuer, p, &serial);
    let mut f = log.finish(Outcome::Rejected, Some(class.clone()), Some(reason.clone()));
    f.max_rejects = ctx.max_rejects;
    f.card_terminated = terminated;
    // If the journal cannot end the attempt, the rejected-cards list still
    // gets the card.
    if ctx.journal.finish(claim.attempt_id, &f).is_err() {
        let _ = ctx.journal.reject_card(
            &ctx.who.at_reader(&ch.reader()),
            serial_hex,
            &format!("{class}: {reason}"),
            terminated,
        );
    }
    CardResult::Rejected {
        record_id: Some(claim.record_id.clone()),
        serial: Some(serial_hex.to_string()),
        reason: format!("{class}: {reason}"),
        terminated,
    }
}

fn interrupted(
    ctx: &StationCtx,
    claim: &Claim,
    log: &AttemptLog,
    serial_hex: &str,
    class: String,
    reason: String,
) -> CardResult {
    let f = log.finish(
        Outcome::Interrupted,
        Some(class.clone()),
        Some(reason.clone()),
    );
    if let Err(e) = ctx.journal.finish(claim.attempt_id, &f) {
        tracing::warn!(
            "journal: finishing interrupted attempt {}: {e}",
            claim.attempt_id
        );
    }
    CardResult::Interrupted {
        record_id: claim.record_id.clone(),
        serial: serial_hex.to_string(),
        reason: format!("{class}: {reason}"),
    }
}

/// A card whose last attempt was interrupted is back in a reader.
#[allow(clippy::too_many_arguments)]
fn recover(
    ctx: &StationCtx,
    ch: &mut Channel,
    who: &Who,
    p: &Profile,
    lc: LifeCycle,
    serial: [u8; 8],
    serial_hex: &str,
    record_id: &str,
) -> CardResult {
    match lc {
        LifeCycle::Blank => {
            // Interrupted before the scripts created anything: the card is
            // as it came, and takes the next record like any blank card.
            let fresh = matches!(
                ch.converse(async |io| card::select_aid(io, p, &p.identity_aid).await),
                Err(ExchangeError::Status { .. })
            );
            if fresh {
                return new_card(ctx, ch, who, p, serial, serial_hex);
            }
            let terminated = terminate(ch, &ctx.issuer, p, &serial);
            let reason = format!(
                "interrupted part-way through personalization for record {record_id}; a partly written card is not reused"
            );
            let _ = ctx
                .journal
                .reject_card(who, serial_hex, &reason, terminated);
            CardResult::Rejected {
                record_id: Some(record_id.to_string()),
                serial: Some(serial_hex.to_string()),
                reason,
                terminated,
            }
        }
        LifeCycle::Personalized => {
            let claim = match ctx.journal.claim_recovery(who, serial_hex) {
                Ok(Some(c)) => c,
                Ok(None) | Err(_) => {
                    let terminated = terminate(ch, &ctx.issuer, p, &serial);
                    let reason = format!(
                        "interrupted card for record {record_id}, which meanwhile went to another card or was done"
                    );
                    let _ = ctx
                        .journal
                        .reject_card(who, serial_hex, &reason, terminated);
                    return CardResult::Rejected {
                        record_id: Some(record_id.to_string()),
                        serial: Some(serial_hex.to_string()),
                        reason,
                        terminated,
                    };
                }
            };
            let mut log = AttemptLog::new(ch, p);
            let input = match ctx.input_for(&claim, p) {
                Ok(i) => i,
                Err(e) => {
                    return reject(
                        ctx,
                        ch,
                        p,
                        &claim,
                        &log,
                        serial,
                        serial_hex,
                        "record".into(),
                        e,
                        true,
                    )
                }
            };
            verify_and_finish(ctx, ch, p, &claim, &mut log, serial, serial_hex, &input)
        }
        other => {
            let reason = format!("interrupted card for record {record_id} is {other}; not touched");
            let _ = ctx.journal.reject_card(who, serial_hex, &reason, false);
            CardResult::Rejected {
                record_id: Some(record_id.to_string()),
                serial: Some(serial_hex.to_string()),
                reason,
                terminated: false,
            }
        }
    }
}
