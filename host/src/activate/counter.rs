//! One card at the counter: the steps of the issue, in order, with the
//! operator told at each point what to do next.
//!
//! The flow talks to people only through [`Screen`] (what the operator
//! reads and types) and [`PinInput`] (what the holder types, never shown),
//! so the interactive counter, the one-shot command and the tests drive the
//! same code. Every decision and every operator action goes into the
//! journal as an event with who did it; nothing secret does (no PIN, no
//! template, no key).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::display::{for_terminal, RtlMode};
use super::ops::{self, CardError, Finger, FingerResult, Inspection, UnblockResult};
use super::pinentry::PinInput;
use super::policy::PinPolicy;
use crate::biometric;
use crate::perso::card::LifeCycle;
use crate::perso::engine::FingerVerdict;
use crate::perso::side::IssuerSide;
use crate::pki::CertificateAuthority;
use crate::record::date::JalaliDate;
use crate::register::journal::{CardKnown, CertRow, Delivery, Journal, RevocationReason, Who};
use crate::secret::Secret;
use crate::transport::Channel;

/// What the operator sees and types.
pub trait Screen {
    /// A line of information.
    fn say(&mut self, text: &str);
    /// The next step, and what the operator (or holder) must do.
    fn step(&mut self, n: u8, what: &str);
    /// Ask the operator for a line (shown as typed: paths, choices).
    /// `Ok(None)`: no more input (the one-shot command never asks).
    fn ask(&mut self, prompt: &str) -> std::io::Result<Option<String>>;
    /// What the flow has to show beyond its lines, for a front end that
    /// lays the screen out itself (the web station). The terminal shows
    /// the lines only, so the default does nothing.
    fn show(&mut self, _what: Shown<'_>) {}
    /// Step `done` (1 or 2) has passed: a front end that lays each step
    /// out on a screen of its own (the web station) waits here until the
    /// operator moves on. `false` ends the flow: the operator cancelled,
    /// or the card left the reader. The terminal goes straight on, so the
    /// default says `true` at once.
    fn proceed(&mut self, _done: u8) -> bool {
        true
    }
}

/// The moments of the flow a front end may lay out on its own, each with
/// the same facts the lines carry (never a PIN or a template).
pub enum Shown<'a> {
    /// Step 1 passed: the card is genuine; its holder's data and photo.
    Holder(&'a Inspection),
    /// Step 3: the finger to scan; `others` when `next` may switch finger.
    Finger { finger: &'a Finger, others: bool },
    /// The live finger did not match on the card.
    NoMatch { finger: &'a Finger, tries_left: u8 },
    /// Step 2 passed: what the register says about the card (a good
    /// personalization of `record_id`, shipped to this office, not
    /// delivered yet), and for a replacement the card it replaces with
    /// that card's status.
    Issued {
        record_id: &'a str,
        shipped_at: crate::register::journal::Millis,
        shipped_by: &'a str,
        replaces: Option<(&'a str, &'a str)>,
    },
    /// The holder's PIN was refused by the policy (`why` as the policy
    /// says it); the holder is asked again.
    PinRefused { label: &'a str, why: &'a str },
}

/// The steps of an activation.
pub const STEPS: u8 = 5;

/// Where the live fingerprint comes from.
pub enum Templates {
    /// One scanner file per try, given up front (one-shot; the list is
    /// used in order, one VERIFY each).
    Files(Vec<PathBuf>),
    /// Ask the operator for the scanner's file at each try.
    Ask,
}

/// Everything a counter station knows before a card comes.
pub struct Counter<'a> {
    pub side: &'a IssuerSide,
    /// The other card profiles this counter takes, each with the same keys
    /// and CA: a card goes to the first of `side` and these whose profile
    /// recognizes its ATR (issue 17); a card none recognizes is refused by
    /// name with its ATR, before any command. Empty: `side`'s cards only.
    pub others: &'a [IssuerSide],
    pub journal: &'a dyn Journal,
    /// Station, operator and reader.
    pub who: Who,
    /// This office's code (`1021`, `AE-DXB`).
    pub office: String,
    pub policy: PinPolicy,
    pub rtl: RtlMode,
    /// Where the holder's photo is written.
    pub photo_dir: PathBuf,
    /// How often a refused or mistyped PIN may be entered again.
    pub pin_rounds: u32,
}

/// Why the counter stopped with a card.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// `not_genuine`, `wrong_office`, `fingerprint`, `pin_policy`, …
    pub class: String,
    pub reason: String,
    /// The card itself refused or failed (exit 4), as opposed to the
    /// transport (exit 5).
    pub transport: bool,
    /// The card's verdict on each finger tried before the refusal.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fingerprint: Vec<FingerVerdict>,
}

impl Refusal {
    fn new(class: &str, reason: impl Into<String>) -> Refusal {
        Refusal {
            class: class.into(),
            reason: reason.into(),
            transport: false,
            fingerprint: Vec::new(),
        }
    }
    fn card(class: &str, e: CardError) -> Refusal {
        Refusal {
            class: class.into(),
            transport: e.is_transport(),
            reason: e.to_string(),
            fingerprint: Vec::new(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// A card delivered and activated.
#[derive(Debug, Clone, Serialize)]
pub struct Activated {
    pub serial: String,
    pub record_id: String,
    pub national_id: String,
    pub office: String,
    pub finger: String,
    /// The card's verdict on each try, in order (the last one matched).
    pub fingerprint: Vec<FingerVerdict>,
    pub photo: Option<PathBuf>,
    pub signature: ops::SignatureProof,
    pub replaces: Option<String>,
}

/// A PIN unblocked at the counter.
#[derive(Debug, Clone, Serialize)]
pub struct Unblocked {
    /// What was done, as journaled.
    pub detail: String,
    /// The card's verdict on each fingerprint try, in order.
    pub fingerprint: Vec<FingerVerdict>,
}

/// The holder's data as the counter shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Holder {
    pub national_id: String,
    pub name_fa: String,
    pub name_latin: String,
    pub father_fa: String,
    pub father_latin: String,
    pub sex: String,
    pub birth_date: String,
    pub birth_place_fa: String,
    pub birth_place_latin: String,
    pub issue_date: String,
    pub expiry_date: String,
}

/// `YYYYMMDD` (Jalali) as `1358/04/12 (12 Tir 1358) = 1979-07-03`.
pub fn both_calendars(jalali: &str) -> String {
    let parse = || -> Option<JalaliDate> {
        let y = jalali.get(0..4)?.parse().ok()?;
        let m = jalali.get(4..6)?.parse().ok()?;
        let d = jalali.get(6..8)?.parse().ok()?;
        JalaliDate::new(y, m, d).ok()
    };
    match parse() {
        Some(j) => {
            let g = j.to_gregorian();
            format!(
                "{:04}/{:02}/{:02} ({} {} {}, Solar Hijri) = {:04}-{:02}-{:02} (Gregorian)",
                j.year(),
                j.month(),
                j.day(),
                j.day(),
                j.month_name_latin(),
                j.year(),
                g.year(),
                g.month(),
                g.day()
            )
        }
        None => format!("{jalali:?} (not a Solar Hijri date)"),
    }
}

impl Holder {
    pub fn from(ins: &Inspection) -> Holder {
        let f = |k: &str| ins.field(k).to_string();
        Holder {
            national_id: f("national_id"),
            name_fa: format!("{} {}", f("given_name.fa"), f("family_name.fa")),
            name_latin: format!("{} {}", f("given_name.latin"), f("family_name.latin")),
            father_fa: f("father_name.fa"),
            father_latin: f("father_name.latin"),
            sex: f("sex"),
            birth_date: both_calendars(ins.field("birth_date")),
            birth_place_fa: f("birth_place.fa"),
            birth_place_latin: f("birth_place.latin"),
            issue_date: both_calendars(ins.field("card.issue_date")),
            expiry_date: both_calendars(ins.field("card.expiry_date")),
        }
    }

    /// The lines the operator sees (Persian prepared for the terminal).
    pub fn lines(&self, rtl: RtlMode) -> Vec<String> {
        let fa = |s: &str| for_terminal(s, rtl);
        vec![
            format!(
                "  Name          {}   ({})",
                fa(&self.name_fa),
                self.name_latin
            ),
            format!(
                "  Father        {}   ({})",
                fa(&self.father_fa),
                self.father_latin
            ),
            format!("  National ID   {}", self.national_id),
            format!("  Sex           {}", self.sex),
            format!("  Born          {}", self.birth_date),
            format!(
                "  Birth place   {}   ({})",
                fa(&self.birth_place_fa),
                self.birth_place_latin
            ),
            format!("  Card issued   {}", self.issue_date),
            format!("  Card expires  {}", self.expiry_date),
        ]
    }
}

/// Step 3's ask: which finger, its reference and the card's tries left.
fn ask_for_finger(screen: &mut dyn Screen, finger: &Finger, others: bool) {
    screen.step(
        3,
        &format!(
            "Ask the holder to place their {} finger on the scanner (reference {:02X}{}).",
            finger.shout(),
            finger.reference,
            finger
                .tries_left
                .map(|t| format!(", {t} tries left on the card"))
                .unwrap_or_default()
        ),
    );
    screen.show(Shown::Finger { finger, others });
}

/// What the operator gave for the finger to scan.
enum Scan {
    /// The scanner's file.
    File(PathBuf),
    /// Nothing yet: ask again.
    Again,
    /// Another of the enrolled fingers.
    OtherFinger,
}

/// The next scan for `finger`: the next of the files given on the command
/// line (none left: the fingerprint did not match), or the operator's
/// answer.
fn next_scan(
    screen: &mut dyn Screen,
    finger: &Finger,
    others: bool,
    given: &mut Option<std::vec::IntoIter<PathBuf>>,
) -> Result<Scan, Refusal> {
    if let Some(files) = given {
        return match files.next() {
            Some(p) => Ok(Scan::File(p)),
            None => Err(Refusal::new(
                "fingerprint",
                "the holder's fingerprint did not match on the card",
            )),
        };
    }
    let hint = if others {
        ", 'next' for another finger"
    } else {
        ""
    };
    let answer = screen
        .ask(&format!(
            "Scanner file for the {} finger (ISO/IEC 19794-2){hint}, or 'cancel': ",
            finger.shout()
        ))
        .map_err(|e| Refusal::new("input", e.to_string()))?;
    let Some(answer) = answer else {
        return Err(Refusal::new("cancelled", "the operator input ended"));
    };
    Ok(match answer.trim() {
        "" => Scan::Again,
        "cancel" | "c" => return Err(Refusal::new("cancelled", "cancelled by the operator")),
        "next" | "n" if others => Scan::OtherFinger,
        path => Scan::File(PathBuf::from(path)),
    })
}

/// Load a scanner file and turn it into the card's compact format, with
/// what was accepted with a warning (zero padding after the record, as some
/// capture SDKs write). The error names the file and what was expected; it
/// never shows the template.
pub fn load_live_template(
    path: &Path,
    expected: &Finger,
    max_minutiae: usize,
) -> Result<(Secret, Vec<String>), String> {
    const MAX_FILE: u64 = 64 * 1024;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_FILE {
        return Err(format!(
            "{}: {} bytes; a finger minutiae record (ISO/IEC 19794-2) is at most {MAX_FILE} bytes",
            path.display(),
            meta.len()
        ));
    }
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?,
    );
    let parsed = biometric::parse_with_warnings(&bytes).map_err(|e| {
        format!(
            "{}: not an ISO/IEC 19794-2 finger minutiae record: {e}",
            path.display()
        )
    })?;
    let warnings = parsed
        .warnings
        .iter()
        .map(|w| format!("{}: {w}", path.display()))
        .collect();
    let rec = parsed.record;
    if let Some(v) = rec.views.first() {
        let code = v.position.iso_code();
        if code != 0 && expected.position_code != 0 && code != expected.position_code {
            return Err(format!(
                "{}: the scanner labelled this capture {}, but the card asks for {}; scan the {} finger",
                path.display(),
                v.position.as_str().replace('_', " ").to_uppercase(),
                expected.shout(),
                expected.shout()
            ));
        }
    }
    biometric::to_compact(&rec, 0, max_minutiae)
        .map(|t| (Secret::new(t), warnings))
        .map_err(|e| {
            format!(
                "{}: cannot be converted to the card's compact format: {e}",
                path.display()
            )
        })
}

/// Save the holder's photo as `<dir>/<serial>.jpg`, readable only by the
/// operator's account.
fn save_photo(dir: &Path, serial: &str, jpeg: &[u8]) -> Result<PathBuf, String> {
    let path = dir.join(format!("{serial}.jpg"));
    crate::private::write(&path, jpeg).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

/// The front end ended the flow on the screen of step `done`.
fn stopped_after(done: u8) -> Refusal {
    Refusal::new(
        "cancelled",
        format!(
            "the flow ended after step {done}: the operator cancelled or the card left the reader"
        ),
    )
}

impl<'a> Counter<'a> {
    fn event(&self, kind: &str, detail: &str) {
        if let Err(e) = self.journal.event(&self.who, kind, detail) {
            tracing::warn!("journal: {e}");
        }
    }

    fn refuse(&self, serial: &str, r: Refusal) -> Refusal {
        self.event(
            "activation refused",
            &format!("card {serial}: [{}] {}", r.class, r.reason),
        );
        r
    }

    /// Step 1: read the card, check it is genuine, show the holder.
    /// The counter for the card in `ch`, by its ATR: `None` when it is
    /// `side`'s (or the counter has no other profiles), else the counter
    /// of the first of `others` whose profile recognizes it. A card none
    /// recognizes is refused by name with its ATR and the profiles tried,
    /// before any command.
    fn for_card(&self, ch: &Channel) -> Result<Option<Counter<'a>>, Refusal> {
        if self.others.is_empty() {
            return Ok(None);
        }
        let atr = ch.atr();
        if self.side.profile.recognizes.recognizes(&atr) {
            return Ok(None);
        }
        if let Some(side) = self
            .others
            .iter()
            .find(|s| s.profile.recognizes.recognizes(&atr))
        {
            return Ok(Some(Counter {
                side,
                others: &[],
                journal: self.journal,
                who: self.who.clone(),
                office: self.office.clone(),
                policy: self.policy,
                rtl: self.rtl,
                photo_dir: self.photo_dir.clone(),
                pin_rounds: self.pin_rounds,
            }));
        }
        let tried: Vec<(&str, &crate::perso::recognize::CardMatch)> = std::iter::once(self.side)
            .chain(self.others)
            .map(|s| (s.profile.name.as_str(), &s.profile.recognizes))
            .collect();
        Err(Refusal::card(
            "unreadable",
            CardError::Other(crate::perso::recognize::unknown_card_to_all(&atr, &tried)),
        ))
    }

    pub fn authenticate(
        &self,
        ch: &mut Channel,
        screen: &mut dyn Screen,
    ) -> Result<(Inspection, Option<PathBuf>), Refusal> {
        let p = &self.side.profile;
        let chain = self.side.ca.chain();
        screen.step(1, "Reading the card and checking that it is genuine …");
        let ins = ops::inspect(ch, p, &chain).map_err(|e| match e {
            CardError::Terminated => Refusal::new(
                "terminated",
                "the card is terminated: it answers 6A81 to every command and can never be used again",
            ),
            e => Refusal::card("unreadable", e),
        })?;
        screen.say(&format!("  Card {} ({})", ins.serial, ins.life_cycle));
        if ins.life_cycle == LifeCycle::Blank {
            return Err(Refusal::new(
                "blank",
                "the card is blank: it was never personalized",
            ));
        }
        for c in &ins.checks {
            screen.say(&format!(
                "  {} {}: {}",
                if c.passed { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            ));
        }
        if !ins.genuine() {
            let failed: Vec<String> = ins
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect();
            return Err(Refusal::new(
                "not_genuine",
                format!(
                    "the card is not a genuine card of this issuer: {}",
                    failed.join("; ")
                ),
            ));
        }
        // A revoked certificate: the card was lost, terminated or replaced.
        for c in cert_rows(&ins) {
            match self.journal.revocation(&c.serial) {
                Ok(None) => {}
                Ok(Some(r)) => {
                    return Err(Refusal::new(
                        "revoked",
                        format!(
                            "the card's {} {}; card {} must not be used",
                            c.key,
                            crate::perso::engine::revoked_message(&r),
                            r.card_serial
                        ),
                    ))
                }
                Err(e) => {
                    return Err(Refusal::new(
                        "journal",
                        format!(
                            "the revocation status of the card's {} certificate {} is unknown: {e}",
                            c.key, c.serial
                        ),
                    ))
                }
            }
        }
        screen.say("  ok   no certificate of the card is revoked");
        screen.say("  Holder:");
        for l in Holder::from(&ins).lines(self.rtl) {
            screen.say(&l);
        }
        screen.show(Shown::Holder(&ins));
        let photo = match &ins.photo {
            Some(jpeg) => match save_photo(&self.photo_dir, &ins.serial, jpeg) {
                Ok(path) => {
                    screen.say(&format!(
                        "  Photo saved to {} — compare it with the person in front of you.",
                        path.display()
                    ));
                    Some(path)
                }
                Err(e) => {
                    screen.say(&format!("  The photo could not be saved: {e}"));
                    None
                }
            },
            None => None,
        };
        Ok((ins, photo))
    }

    /// Step 2: the card is in the journal, good, shipped to this office,
    /// and not delivered yet. Returns the record id and, for a replacement,
    /// the card it replaces.
    pub fn check_issuance(
        &self,
        ins: &Inspection,
        screen: &mut dyn Screen,
    ) -> Result<(String, Option<String>), Refusal> {
        screen.step(2, "Checking the issuance record …");
        let serial = &ins.serial;
        let record_id = self.good_record(serial)?;
        let on_card = ins.field("record_id");
        if on_card != record_id {
            return Err(Refusal::new(
                "record_mismatch",
                format!("the card holds record {on_card:?} but the journal has card {serial} for record {record_id}"),
            ));
        }
        let shipment = self.shipment_here(ins, &record_id)?;
        let replaced = self.open_replacement(ins, screen)?;
        let replaces = replaced.as_ref().map(|(card, _)| card.clone());
        screen.say(&format!(
            "  ok   record {record_id}, shipped to this office ({}) on {} by {}",
            self.office,
            crate::register::journal::iso_time(shipment.at),
            shipment.operator
        ));
        screen.show(Shown::Issued {
            record_id: &record_id,
            shipped_at: shipment.at,
            shipped_by: &shipment.operator,
            replaces: replaced
                .as_ref()
                .map(|(card, status)| (card.as_str(), status.as_str())),
        });
        Ok((record_id, replaces))
    }

    /// The line's good personalization of the card: its record id.
    fn good_record(&self, serial: &str) -> Result<String, Refusal> {
        let j = |e: crate::register::journal::JournalError| Refusal::new("journal", e.to_string());
        match self.journal.card(serial).map_err(j)? {
            CardKnown::Good { record_id, .. } => Ok(record_id),
            other => {
                Err(Refusal::new(
                    "unknown_card",
                    format!(
                        "the journal has no good personalization of card {serial} ({}); it cannot be handed out",
                        match other {
                            CardKnown::Unknown => "unknown card".to_string(),
                            CardKnown::Rejected { reason, .. } => format!("rejected by the line: {reason}"),
                            CardKnown::Interrupted { .. } => "its personalization was interrupted".into(),
                            CardKnown::InProgress { .. } => "still being personalized".into(),
                            CardKnown::Good { .. } => String::new(),
                        }
                    ),
                ))
            }
        }
    }

    /// The card's shipment: to this office, for the holder on the card, and
    /// not delivered yet.
    fn shipment_here(
        &self,
        ins: &Inspection,
        record_id: &str,
    ) -> Result<crate::register::journal::Shipment, Refusal> {
        let serial = &ins.serial;
        let j = |e: crate::register::journal::JournalError| Refusal::new("journal", e.to_string());
        let Some(shipment) = self.journal.shipment(serial).map_err(j)? else {
            return Err(Refusal::new(
                "not_shipped",
                format!("card {serial} (record {record_id}) was never shipped to an office; it cannot be handed out here"),
            ));
        };
        if shipment.office != self.office {
            return Err(Refusal::new(
                "wrong_office",
                format!(
                    "card {serial} (record {record_id}) is meant for office {}, not this office {}: it was shipped there on {} by {}. Keep the card and send it on",
                    shipment.office,
                    self.office,
                    crate::register::journal::iso_time(shipment.at),
                    shipment.operator
                ),
            ));
        }
        let card_office = ins.field("issuing_office.code");
        if card_office != self.office {
            return Err(Refusal::new(
                "wrong_office",
                format!(
                    "the card's issuance data names office {card_office:?}, not this office {}",
                    self.office
                ),
            ));
        }
        if shipment.national_id != ins.field("national_id") {
            return Err(Refusal::new(
                "record_mismatch",
                "the national ID on the card is not the one the shipment was made for",
            ));
        }
        if let Some(d) = self.journal.delivered(serial).map_err(j)? {
            return Err(Refusal::new(
                "already_delivered",
                format!(
                    "card {serial} was already delivered on {} by {} at office {} (now {})",
                    crate::register::journal::iso_time(d.delivered_at),
                    d.delivered_by,
                    d.office,
                    d.status.as_str()
                ),
            ));
        }
        Ok(shipment)
    }

    /// For a replacement card, the open replacement request of the holder:
    /// the previous card and its status.
    fn open_replacement(
        &self,
        ins: &Inspection,
        screen: &mut dyn Screen,
    ) -> Result<Option<(String, String)>, Refusal> {
        let j = |e: crate::register::journal::JournalError| Refusal::new("journal", e.to_string());
        if ins.field("request.type") != "replacement" {
            return Ok(None);
        }
        let open = self
            .journal
            .replacements(ins.field("national_id"))
            .map_err(j)?
            .into_iter()
            .find(|r| r.new_card.is_none());
        match open {
            Some(r) => {
                screen.say(&format!(
                    "  Replacement for card {} ({}; request {} of {} at office {})",
                    r.previous_card,
                    r.previous_card_status.as_str(),
                    r.id,
                    crate::register::journal::iso_time(r.at),
                    r.office
                ));
                Ok(Some((
                    r.previous_card.clone(),
                    r.previous_card_status.as_str().to_string(),
                )))
            }
            None => {
                Err(Refusal::new(
                    "replacement_not_requested",
                    format!(
                        "this card is a replacement{}, but no replacement was requested for the holder at a counter: the previous card must first be terminated or reported lost (cardsmith activate replace)",
                        match ins.field("request.previous_card_serial") {
                            "" => String::new(),
                            s => format!(" of card {s}"),
                        }
                    ),
                ))
            }
        }
    }

    /// Step 3: the holder's live finger, matched on the card. Each try
    /// uses up one of the card's tries only when the card compares; a bad
    /// file costs nothing. Gives the card's verdict on every try (also in
    /// the refusal); a comparison score, when the card gives one for
    /// diagnostics, goes only into the verdict's `debug`, never on screen.
    pub fn verify_holder(
        &self,
        ch: &mut Channel,
        ins: &Inspection,
        screen: &mut dyn Screen,
        templates: &mut Templates,
    ) -> Result<(Finger, Vec<FingerVerdict>), Refusal> {
        let mut verdicts = Vec::new();
        match self.try_fingers(ch, ins, screen, templates, &mut verdicts) {
            Ok(f) => Ok((f, verdicts)),
            Err(mut r) => {
                r.fingerprint = verdicts;
                Err(r)
            }
        }
    }

    /// A finger that did not match: journaled, and told on screen with the
    /// card's tries left.
    fn no_match(&self, screen: &mut dyn Screen, ins: &Inspection, finger: &Finger, tries_left: u8) {
        self.event(
            "fingerprint no match",
            &format!(
                "card {}: {} (reference {:02X}), {tries_left} tries left",
                ins.serial, finger.position, finger.reference
            ),
        );
        screen.say(&format!(
            "  NO MATCH: the {} finger did not match; {tries_left} tries left on the card. Ask the holder to clean the finger and scan again.",
            finger.shout()
        ));
        screen.show(Shown::NoMatch { finger, tries_left });
    }

    fn try_fingers(
        &self,
        ch: &mut Channel,
        ins: &Inspection,
        screen: &mut dyn Screen,
        templates: &mut Templates,
        verdicts: &mut Vec<FingerVerdict>,
    ) -> Result<Finger, Refusal> {
        let p = &self.side.profile;
        let mut usable: Vec<Finger> = ins
            .fingers
            .iter()
            .filter(|f| f.tries_left != Some(0))
            .cloned()
            .collect();
        if usable.is_empty() {
            return Err(Refusal::new(
                "fingerprint_blocked",
                "every enrolled finger is blocked on the card (no tries left); the card cannot be activated",
            ));
        }
        let mut which = 0usize;
        let mut given = match templates {
            Templates::Files(v) => Some(std::mem::take(v).into_iter()),
            Templates::Ask => None,
        };
        loop {
            let Some(finger) = usable.get(which).cloned() else {
                return Err(Refusal::new(
                    "fingerprint_blocked",
                    "no enrolled finger has tries left",
                ));
            };
            ask_for_finger(screen, &finger, usable.len() > 1);
            let path = match next_scan(screen, &finger, usable.len() > 1, &mut given)? {
                Scan::File(path) => path,
                Scan::Again => continue,
                Scan::OtherFinger => {
                    which = (which + 1) % usable.len();
                    continue;
                }
            };
            let probe = match load_live_template(&path, &finger, usize::from(p.max_minutiae)) {
                Ok((t, warnings)) => {
                    for w in warnings {
                        screen.say(&format!("  warning: {w}"));
                    }
                    t
                }
                Err(e) => {
                    screen.say(&format!("  {e}"));
                    screen.say("  (no try was used)");
                    if given.is_some() {
                        return Err(Refusal::new("bad_template", e));
                    }
                    continue;
                }
            };
            let (result, sw, debug) = ops::verify_finger_diagnosed(ch, p, finger.reference, &probe)
                .map_err(|e| Refusal::card("fingerprint", e))?;
            verdicts.push(FingerVerdict::new(
                &finger.position,
                finger.reference,
                sw,
                debug,
            ));
            match result {
                FingerResult::Match => {
                    screen.say(&format!(
                        "  ok   the {} finger matched on the card",
                        finger.shout()
                    ));
                    self.event(
                        "fingerprint matched",
                        &format!(
                            "card {}: {} (reference {:02X})",
                            ins.serial, finger.position, finger.reference
                        ),
                    );
                    return Ok(finger);
                }
                FingerResult::NoMatch { tries_left } => {
                    if let Some(f) = usable.get_mut(which) {
                        f.tries_left = Some(tries_left);
                    }
                    self.no_match(screen, ins, &finger, tries_left);
                    if given.as_ref().is_some_and(|f| f.len() == 0) {
                        return Err(Refusal::new(
                            "fingerprint",
                            format!(
                                "the fingerprint did not match the {} finger on the card; {tries_left} tries left",
                                finger.shout()
                            ),
                        ));
                    }
                }
                FingerResult::Blocked => {
                    self.event(
                        "fingerprint blocked",
                        &format!("card {}: reference {:02X}", ins.serial, finger.reference),
                    );
                    screen.say(&format!(
                        "  The {} finger is now blocked on the card.",
                        finger.shout()
                    ));
                    if which + 1 < usable.len() {
                        which += 1;
                    } else {
                        return Err(Refusal::new(
                            "fingerprint_blocked",
                            "the holder's fingerprint did not match and no finger has tries left",
                        ));
                    }
                }
            }
        }
    }

    /// Ask the holder for a new PIN twice, check it against the policy, and
    /// ask again when it is refused (a non-interactive source gets no
    /// second chance: a script's next lines would be out of step).
    pub fn new_pin(
        &self,
        screen: &mut dyn Screen,
        pins: &mut dyn PinInput,
        label: &str,
        forbidden: &[(&Secret, &str)],
    ) -> Result<Secret, Refusal> {
        for _ in 0..self.pin_rounds.max(1) {
            let read = |pins: &mut dyn PinInput, prompt: &str| -> Result<Secret, Refusal> {
                match pins.secret(prompt) {
                    Ok(Some(s)) => Ok(s),
                    Ok(None) => Err(Refusal::new(
                        "cancelled",
                        format!("the PIN entry ended before the {label} was set"),
                    )),
                    Err(e) => Err(Refusal::new("input", format!("reading the {label}: {e}"))),
                }
            };
            let first = read(
                pins,
                &format!(
                    "Holder: choose your new {label} ({}); it is not shown: ",
                    self.policy.describe()
                ),
            )?;
            let second = read(pins, &format!("Holder: enter the new {label} again: "))?;
            let why = if first != second {
                Some("the two entries differ".to_string())
            } else {
                self.policy.check(&first, forbidden).err()
            };
            match why {
                None => {
                    screen.say(&format!("  ok   {label} accepted"));
                    return Ok(first);
                }
                Some(why) => {
                    self.event("pin refused", &format!("{label}: {why}"));
                    screen.say(&format!(
                        "  {label} REFUSED: {why}. Holder: choose another {label}."
                    ));
                    screen.show(Shown::PinRefused { label, why: &why });
                    if first == second && self.policy.waivable(&first, forbidden) {
                        if let Some(w) = pins.waiver(label, &why) {
                            self.event(
                                "pin rule waived",
                                &format!(
                                    "{label}: {why}; waived by supervisor {}: {}",
                                    w.supervisor, w.reason
                                ),
                            );
                            screen.say(&format!(
                                "  ok   {label} accepted: supervisor {} waived the rule ({why})",
                                w.supervisor
                            ));
                            return Ok(first);
                        }
                    }
                    if !pins.interactive() {
                        return Err(Refusal::new(
                            "pin_policy",
                            format!("the {label} was refused: {why}"),
                        ));
                    }
                }
            }
        }
        Err(Refusal::new(
            "pin_policy",
            format!("no acceptable {label} after {} rounds", self.pin_rounds),
        ))
    }

    /// Step 4: the holder chooses the ID PIN and the signature PIN (or, after
    /// an interrupted visit that already set them, enters the signature
    /// PIN), and the card takes them with the issuer's PUK. Returns the
    /// signature PIN, for step 5's test signature.
    fn holder_pins(
        &self,
        ch: &mut Channel,
        ins: &Inspection,
        nid: &str,
        screen: &mut dyn Screen,
        pins: &mut dyn PinInput,
    ) -> Result<Secret, Refusal> {
        let p = &self.side.profile;
        let key = &self.side.key;
        let t_id = key.transport_pin(p.id_pin.reference, nid, p.id_pin.transport_digits);
        let t_sig = key.transport_pin(
            p.signature_pin.reference,
            nid,
            p.signature_pin.transport_digits,
        );
        // A card without a PUK (the profile has none) has nothing to set.
        let t_puk = p
            .puk
            .map(|puk| key.transport_pin(puk.reference, nid, puk.transport_digits));
        let in_transport = |r: u8| ins.pin(r).is_none_or(|s| s.transport);
        let (need_id, need_sig, need_puk) = (
            in_transport(p.id_pin.reference),
            in_transport(p.signature_pin.reference),
            p.puk.is_some_and(|puk| in_transport(puk.reference)),
        );
        let mut transport = vec![
            (&t_id, "it is a transport PIN of this card"),
            (&t_sig, "it is a transport PIN of this card"),
        ];
        if let Some(t) = &t_puk {
            transport.push((t, "it is a transport PIN of this card"));
        }
        if need_id || need_sig {
            screen.step(
                4,
                "Turn the PIN pad to the holder: the holder chooses the ID PIN and the signature PIN.",
            );
        } else {
            screen.step(
                4,
                "The holder's PINs were set at an earlier, interrupted visit: the holder enters the signature PIN.",
            );
        }
        let id_pin = if need_id {
            Some(self.new_pin(screen, pins, "ID PIN", &transport)?)
        } else {
            None
        };
        let sig_pin = if need_sig {
            let mut forbidden = transport.to_vec();
            if let Some(id) = &id_pin {
                forbidden.push((id, "it is the same as the ID PIN"));
            }
            self.new_pin(screen, pins, "signature PIN", &forbidden)?
        } else {
            match pins.secret("Holder: enter your signature PIN; it is not shown: ") {
                Ok(Some(s)) => s,
                _ => {
                    return Err(Refusal::new(
                        "cancelled",
                        "the signature PIN was not entered",
                    ))
                }
            }
        };
        let puk = ops::issuer_puk(key, p, nid);
        let mut changes: Vec<(u8, &Secret)> = Vec::new();
        if let Some(id) = &id_pin {
            changes.push((p.id_pin.reference, id));
        }
        if need_sig {
            changes.push((p.signature_pin.reference, &sig_pin));
        }
        if let (true, Some(spec), Some(puk)) = (need_puk, p.puk, &puk) {
            changes.push((spec.reference, puk));
        }
        if !changes.is_empty() {
            ops::set_pins(ch, p, &changes).map_err(|e| Refusal::card("set_pins", e))?;
            screen.say("  ok   the card took the holder's PINs; the transport PINs are gone");
        }
        Ok(sig_pin)
    }

    /// The whole activation of the card in `ch` (steps 1–5).
    pub fn activate(
        &self,
        ch: &mut Channel,
        screen: &mut dyn Screen,
        pins: &mut dyn PinInput,
        templates: &mut Templates,
    ) -> Result<Activated, Refusal> {
        match self.for_card(ch) {
            Ok(Some(c)) => return c.activate(ch, screen, pins, templates),
            Ok(None) => {}
            Err(r) => return Err(self.refuse("?", r)),
        }
        let p = &self.side.profile;
        let (ins, photo) = match self.authenticate(ch, screen) {
            Ok(x) => x,
            Err(r) => return Err(self.refuse("?", r)),
        };
        let serial = ins.serial.clone();
        if ins.life_cycle == LifeCycle::Activated {
            return Err(self.refuse(
                &serial,
                Refusal::new("already_activated", "the card is already activated"),
            ));
        }
        if !screen.proceed(1) {
            return Err(self.refuse(&serial, stopped_after(1)));
        }
        self.event(
            "activation started",
            &format!("card {serial}, record {}", ins.field("record_id")),
        );
        let (record_id, replaces) = self
            .check_issuance(&ins, screen)
            .map_err(|r| self.refuse(&serial, r))?;
        if !screen.proceed(2) {
            return Err(self.refuse(&serial, stopped_after(2)));
        }
        let (finger, fingerprint) = self
            .verify_holder(ch, &ins, screen, templates)
            .map_err(|r| self.refuse(&serial, r))?;

        // Step 4: the holder's PINs.
        let nid = ins.field("national_id").to_string();
        let sig_pin = self
            .holder_pins(ch, &ins, &nid, screen, pins)
            .map_err(|r| self.refuse(&serial, r))?;

        // Step 5: activate, prove the signature key, record the delivery.
        screen.step(5, "Activating the card and proving the signature key …");
        let lc = ops::activate(ch, p, self.side.scp03.as_ref())
            .map_err(|e| self.refuse(&serial, Refusal::card("activate", e)))?;
        if lc != LifeCycle::Activated {
            return Err(self.refuse(
                &serial,
                Refusal::new("activate", format!("after ACTIVATE the card is {lc}")),
            ));
        }
        screen.say("  ok   the card is activated");
        let sig_cert = p
            .key(crate::perso::profile::KeyUsage::Sign)
            .and_then(|k| ins.certificates.iter().find(|c| c.key == k.name))
            .map(|c| c.der.clone())
            .unwrap_or_default();
        let proof = ops::test_signature(ch, p, &sig_pin, &sig_cert).map_err(|e| {
            self.refuse(
                &serial,
                Refusal::card(
                    "test_signature",
                    CardError::Other(format!(
                        "the card is activated but its test signature failed ({e}); keep the card and report it"
                    )),
                ),
            )
        })?;
        screen.say(&format!(
            "  ok   test signature over a fresh digest verified with the signature certificate; without the PIN the card refused ({})",
            proof.without_pin
        ));
        let certificates = cert_rows(&ins);
        self.journal
            .deliver(
                &self.who,
                &Delivery {
                    card_serial: serial.clone(),
                    record_id: record_id.clone(),
                    national_id: nid.clone(),
                    office: self.office.clone(),
                    certificates,
                },
            )
            .map_err(|e| {
                self.refuse(
                    &serial,
                    Refusal::new(
                        "journal",
                        format!(
                            "the card is activated but the delivery could not be journaled: {e}"
                        ),
                    ),
                )
            })?;
        screen.say(&format!(
            "  ok   delivery journaled: card {serial}, record {record_id}, office {}, operator {}",
            self.office, self.who.operator
        ));
        if let Some(previous) = &replaces {
            self.supersede(previous, &serial, screen);
        }
        Ok(Activated {
            serial,
            record_id,
            national_id: nid,
            office: self.office.clone(),
            finger: finger.position,
            fingerprint,
            photo,
            signature: proof,
            replaces,
        })
    }

    /// The replacement `new_card` was delivered: the certificates of the
    /// card it replaces that are not revoked yet (the request's revocation
    /// failed or was never made) are revoked now: keyCompromise if that card
    /// was lost (a loss is never downgraded), superseded otherwise. A
    /// certificate revoked already keeps its reason. The new card is
    /// activated either way; a failure is shown and journaled as an event
    /// for the supervisor.
    fn supersede(&self, previous: &str, new_card: &str, screen: &mut dyn Screen) {
        let reason = match self.journal.delivered(previous) {
            Ok(Some(d)) if d.status == crate::register::journal::CardStatus::Lost => {
                RevocationReason::KeyCompromise
            }
            _ => RevocationReason::Superseded,
        };
        let certs = match self.journal.certificates(previous) {
            Ok(c) => c,
            Err(e) => {
                let why = format!(
                    "card {previous} replaced by {new_card}: its certificates could not be listed for revocation: {e}"
                );
                screen.say(&format!("  WARNING {why}"));
                let _ = self.journal.event(&self.who, "revocation failed", &why);
                return;
            }
        };
        for c in certs {
            match self.side.ca.revoke_in(
                &crate::register::journal::JournalRevocations(self.journal),
                &self.who,
                &c.serial,
                previous,
                reason,
            ) {
                Ok(r) => screen.say(&format!(
                    "  ok   card {previous}'s {} certificate {} revoked: {}",
                    c.key,
                    r.serial,
                    r.reason.as_str()
                )),
                Err(e) => {
                    let why = format!(
                        "card {previous}'s {} certificate {} could not be revoked as superseded: {e}",
                        c.key, c.serial
                    );
                    screen.say(&format!("  WARNING {why}"));
                    let _ = self.journal.event(&self.who, "revocation failed", &why);
                }
            }
        }
    }

    /// PIN unblock at the counter: genuine, delivered card; the holder's
    /// finger matches; the issuer's PUK resets the PIN to a new value the
    /// holder chooses.
    pub fn unblock(
        &self,
        ch: &mut Channel,
        screen: &mut dyn Screen,
        pins: &mut dyn PinInput,
        templates: &mut Templates,
        which: PinChoice,
    ) -> Result<Unblocked, Refusal> {
        match self.for_card(ch) {
            Ok(Some(c)) => return c.unblock(ch, screen, pins, templates, which),
            Ok(None) => {}
            Err(r) => return Err(self.refuse_unblock("?", r)),
        }
        let p = &self.side.profile;
        let (ins, _) = self
            .authenticate(ch, screen)
            .map_err(|r| self.refuse_unblock("?", r))?;
        let serial = ins.serial.clone();
        if ins.life_cycle != LifeCycle::Activated {
            return Err(self.refuse_unblock(
                &serial,
                Refusal::new(
                    "not_activated",
                    format!(
                        "the card is {}, not activated: activate it instead",
                        ins.life_cycle
                    ),
                ),
            ));
        }
        let j = |e: crate::register::journal::JournalError| Refusal::new("journal", e.to_string());
        match self.journal.delivered(&serial).map_err(j)? {
            Some(d) if d.status == crate::register::journal::CardStatus::Activated => {}
            Some(d) => {
                return Err(self.refuse_unblock(
                    &serial,
                    Refusal::new(
                        "card_closed",
                        format!("card {serial} is {}", d.status.as_str()),
                    ),
                ))
            }
            None => {
                return Err(self.refuse_unblock(
                    &serial,
                    Refusal::new(
                        "not_delivered",
                        format!("the journal has no delivery of card {serial}"),
                    ),
                ))
            }
        }
        let (reference, label) = match which {
            PinChoice::Id => (p.id_pin.reference, "ID PIN"),
            PinChoice::Signature => (p.signature_pin.reference, "signature PIN"),
        };
        if let Some(s) = ins.pin(reference) {
            screen.say(&format!(
                "  {label}: {} of {} tries left{}",
                s.tries_left,
                s.try_limit,
                if s.blocked { ", BLOCKED" } else { "" }
            ));
        }
        let (finger, fingerprint) = self
            .verify_holder(ch, &ins, screen, templates)
            .map_err(|r| self.refuse_unblock(&serial, r))?;
        screen.step(
            4,
            &format!("Turn the PIN pad to the holder: the holder chooses a new {label}."),
        );
        let nid = ins.field("national_id").to_string();
        let key = &self.side.key;
        let t = |s: crate::perso::profile::PinSpec| {
            key.transport_pin(s.reference, &nid, s.transport_digits)
        };
        let (t1, t2) = (t(p.id_pin), t(p.signature_pin));
        let t3 = p.puk.map(t).unwrap_or_else(|| t1.clone());
        let forbidden = [
            (&t1, "it is a transport PIN of this card"),
            (&t2, "it is a transport PIN of this card"),
            (&t3, "it is a transport PIN of this card"),
        ];
        let new = self
            .new_pin(screen, pins, label, &forbidden)
            .map_err(|r| self.refuse_unblock(&serial, r))?;
        screen.step(5, &format!("Resetting the {label} with the issuer's PUK …"));
        let Some(puk) = ops::issuer_puk(key, p, &nid) else {
            return Err(self.refuse_unblock(
                &serial,
                Refusal::new(
                    "no PUK",
                    "this card has no PUK: a blocked PIN cannot be reset",
                ),
            ));
        };
        match ops::unblock(ch, p, reference, &puk, &new)
            .map_err(|e| self.refuse_unblock(&serial, Refusal::card("unblock", e)))?
        {
            UnblockResult::Done => {
                let d = format!(
                    "card {serial}: {label} reset with the PUK after a {} fingerprint match; new PIN set by the holder",
                    finger.position
                );
                self.event("pin unblocked", &d);
                screen.say(&format!("  ok   the {label} is unblocked and has the holder's new value"));
                Ok(Unblocked {
                    detail: d,
                    fingerprint,
                })
            }
            UnblockResult::WrongPuk { tries_left } => Err(self.refuse_unblock(
                &serial,
                Refusal::new(
                    "puk",
                    format!("the card refused the issuer's PUK ({tries_left} PUK tries left): is this card from another issuer key?"),
                ),
            )),
            UnblockResult::PukBlocked => Err(self.refuse_unblock(
                &serial,
                Refusal::new("puk", "the card's PUK is blocked; the card must be replaced"),
            )),
        }
    }

    fn refuse_unblock(&self, serial: &str, r: Refusal) -> Refusal {
        self.event(
            "unblock refused",
            &format!("card {serial}: [{}] {}", r.class, r.reason),
        );
        r
    }
}

/// Which PIN to unblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinChoice {
    Id,
    Signature,
}

/// The card's certificates as journal rows.
pub fn cert_rows(ins: &Inspection) -> Vec<CertRow> {
    ins.certificates
        .iter()
        .filter_map(|c| {
            let s = c.summary.as_ref()?;
            Some(CertRow {
                key: c.key.clone(),
                serial: s.serial_hex.clone(),
                subject: s.subject.clone(),
                issuer: s.issuer.clone(),
                key_usage: s.key_usage.join(", "),
                not_after: s.not_after.clone(),
                sha256: s.sha256_fingerprint.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_show_in_both_calendars() {
        assert_eq!(
            both_calendars("13430217"),
            "1343/02/17 (17 Ordibehesht 1343, Solar Hijri) = 1964-05-07 (Gregorian)"
        );
        // 1 Farvardin 1403 is 20 March 2024 (a leap-year Nowruz).
        assert!(both_calendars("14030101").ends_with("2024-03-20 (Gregorian)"));
        assert!(both_calendars("13431317").contains("not a Solar Hijri date"));
        assert!(both_calendars("").contains("not a Solar Hijri date"));
    }
}
