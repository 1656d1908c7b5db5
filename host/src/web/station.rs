//! The counter station behind the pages: one reader, one card at a time,
//! the same engine as the terminal counter (`activate::counter::Counter`).
//!
//! A card thread waits for a card, runs `Counter::activate` on it, and
//! talks to the browser through the engine's two seams: [`WebScreen`]
//! (the steps, the lines, the holder, the finger; the scanner's file from
//! the watched folder; the operator's `next`/`cancel`) and [`WebPins`]
//! (the holder's PINs, POSTed by the holder's screen). Both block the card
//! thread until the browser answers or the card leaves the reader. Every
//! change bumps [`Flow::version`]; the pages poll it and reload.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::activate::counter::{Counter, Screen, Shown, Templates};
use crate::activate::ops::Inspection;
use crate::activate::pinentry::{PinInput, Waiver};
use crate::register::journal::{now_ms, Millis};
use crate::secret::Secret;
use crate::transport::pcsc::{self as pc, CardEvent};
use crate::transport::{Channel, ExchangeOptions};

/// What the holder's card says about its holder, for the screen.
#[derive(Clone, Default)]
pub struct HolderView {
    pub serial: String,
    pub national_id: String,
    pub given_fa: String,
    pub family_fa: String,
    pub name_latin: String,
    pub father_fa: String,
    pub father_latin: String,
    /// Dates as the card stores them (`YYYYMMDD`, Solar Hijri).
    pub birth_date: String,
    pub birth_place_fa: String,
    pub birth_place_latin: String,
    pub issue_date: String,
    pub expiry_date: String,
    pub photo: Option<Vec<u8>>,
    /// The genuineness checks of step 1: name, passed, detail (English).
    pub checks: Vec<(String, bool, String)>,
}

impl HolderView {
    fn from(ins: &Inspection) -> HolderView {
        let f = |k: &str| ins.field(k).to_string();
        HolderView {
            serial: ins.serial.clone(),
            national_id: f("national_id"),
            given_fa: f("given_name.fa"),
            family_fa: f("family_name.fa"),
            name_latin: format!("{} {}", f("given_name.latin"), f("family_name.latin")),
            father_fa: f("father_name.fa"),
            father_latin: f("father_name.latin"),
            birth_date: f("birth_date"),
            birth_place_fa: f("birth_place.fa"),
            birth_place_latin: f("birth_place.latin"),
            issue_date: f("card.issue_date"),
            expiry_date: f("card.expiry_date"),
            photo: ins.photo.clone(),
            checks: ins
                .checks
                .iter()
                .map(|c| (c.name.clone(), c.passed, c.detail.clone()))
                .collect(),
        }
    }
    pub fn name_fa(&self) -> String {
        format!("{} {}", self.given_fa, self.family_fa)
    }
}

/// The delivery, as the receipt shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Receipt {
    pub serial: String,
    pub record_id: String,
    pub national_id: String,
    pub name_fa: String,
    pub name_latin: String,
    pub office: String,
    pub operator: String,
    pub station: String,
    pub at: Millis,
}

/// What the register said about the card at step 2.
#[derive(Clone, Debug)]
pub struct IssuanceView {
    pub record_id: String,
    pub shipped_at: Millis,
    pub shipped_by: String,
    /// A replacement: the card it replaces, and that card's status.
    pub replaces: Option<(String, String)>,
}

/// How the last card ended.
#[derive(Clone)]
pub enum Outcome {
    Activated(Receipt),
    /// The engine's refusal: its class and reason (English, as journaled).
    Refused {
        class: String,
        reason: String,
    },
    /// The card left the reader at this step.
    Removed {
        step: u8,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PinWhich {
    Id,
    Signature,
}

/// The holder's PIN screen.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PinAsk {
    pub which: PinWhich,
    /// A new PIN, entered twice (else: the signature PIN chosen earlier).
    pub choose: bool,
}

#[derive(Clone)]
pub struct FingerAsk {
    pub position: String,
    pub tries_left: Option<u8>,
    pub others: bool,
}

/// Everything the pages show, and what the browser answered.
#[derive(Default)]
pub struct Flow {
    pub version: u64,
    /// The operator the station works for (the last one who signed in).
    pub operator: Option<String>,
    /// A card is being handled.
    pub active: bool,
    /// The operator of the card being handled.
    pub flow_operator: Option<String>,
    pub step: u8,
    pub log: Vec<String>,
    pub holder: Option<HolderView>,
    /// Step 2's result, once it passed.
    pub issuance: Option<IssuanceView>,
    /// The step (1 or 2) whose result is on screen until the operator
    /// moves on.
    pub review: Option<u8>,
    /// The operator's answer to it: go on (`true`) or cancel.
    go: Option<bool>,
    pub finger: Option<FingerAsk>,
    pub no_match: Option<(String, u8)>,
    pub pin: Option<PinAsk>,
    /// The policy's reason for the last refused PIN (English).
    pub pin_refused: Option<String>,
    pub outcome: Option<Outcome>,
    /// The refused PIN broke only a rule a supervisor may waive (the
    /// policy's reason): the screen offers the supervisor's override.
    pub waivable: Option<String>,
    /// The last override for it was refused (not a supervisor, no reason).
    pub override_refused: bool,
    waiver: Option<Waiver>,
    answer: Option<String>,
    pins: VecDeque<Secret>,
    removed: bool,
}

/// The station's state, shared by the card thread and the request threads.
pub struct Shared {
    flow: Mutex<Flow>,
    cv: Condvar,
    pub reader: String,
    pub office: String,
    pub station: String,
    pub scanner_dir: PathBuf,
    pub policy_digits: String,
    stop: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub fn new(
        reader: &str,
        office: &str,
        station: &str,
        scanner_dir: &Path,
        policy_digits: &str,
    ) -> Shared {
        Shared {
            flow: Mutex::new(Flow::default()),
            cv: Condvar::new(),
            reader: reader.to_string(),
            office: office.to_string(),
            station: station.to_string(),
            scanner_dir: scanner_dir.to_path_buf(),
            policy_digits: policy_digits.to_string(),
            stop: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Flow> {
        self.flow.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn change(&self, f: impl FnOnce(&mut Flow)) {
        let mut g = self.lock();
        f(&mut g);
        g.version += 1;
        self.cv.notify_all();
    }

    pub fn version(&self) -> u64 {
        self.lock().version
    }

    pub fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.change(|_| {});
    }

    pub fn stopping(&self) -> bool {
        self.stopped()
    }

    fn stopped(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The operator signed in: the station works for them from now on
    /// (a card already in the flow stays with its operator).
    pub fn take(&self, operator: &str) {
        self.change(|f| f.operator = Some(operator.to_string()));
    }

    pub fn release(&self, operator: &str) {
        self.change(|f| {
            if f.operator.as_deref() == Some(operator) {
                f.operator = None;
            }
        });
    }

    /// Whether `operator` may answer the card in the flow.
    fn owns(f: &Flow, operator: &str) -> bool {
        f.active && f.flow_operator.as_deref() == Some(operator)
    }

    /// The operator's answer to the scanner step (`next`, `cancel`).
    pub fn answer(&self, operator: &str, text: &str) -> Result<(), &'static str> {
        let mut g = self.lock();
        if !Self::owns(&g, operator) || g.finger.is_none() {
            return Err("no card of yours is waiting for a finger");
        }
        g.answer = Some(text.to_string());
        g.version += 1;
        self.cv.notify_all();
        Ok(())
    }

    /// The operator moves on from the result of step 1 or 2 (`step` is
    /// the one the page showed), or cancels.
    pub fn proceed(&self, operator: &str, step: u8, go: bool) -> Result<(), &'static str> {
        let mut g = self.lock();
        if !Self::owns(&g, operator) || g.review != Some(step) {
            return Err("no card of yours is waiting at that step");
        }
        g.go = Some(go);
        g.version += 1;
        self.cv.notify_all();
        Ok(())
    }

    /// The holder's PIN entries (one, or the same PIN twice).
    pub fn give_pins(&self, operator: &str, entries: Vec<Secret>) -> Result<(), &'static str> {
        let mut g = self.lock();
        if !Self::owns(&g, operator) || g.pin.is_none() {
            return Err("no card of yours is waiting for a PIN");
        }
        g.pins.extend(entries);
        g.pin = None;
        g.version += 1;
        self.cv.notify_all();
        Ok(())
    }

    /// A supervisor's waiver of the refused PIN (the server checked the
    /// supervisor's password and the written reason).
    pub fn give_waiver(&self, operator: &str, w: Waiver) -> Result<(), &'static str> {
        let mut g = self.lock();
        if !Self::owns(&g, operator) || g.waivable.is_none() {
            return Err("no refused PIN of yours is waiting for a supervisor");
        }
        g.waiver = Some(w);
        g.waivable = None;
        g.override_refused = false;
        g.version += 1;
        self.cv.notify_all();
        Ok(())
    }

    /// An override was refused: the screen says so until the next one.
    pub fn refuse_override(&self) {
        self.change(|f| f.override_refused = true);
    }

    /// The serial of the card in the flow (for the journal).
    pub fn serial(&self) -> String {
        self.lock()
            .holder
            .as_ref()
            .map(|h| h.serial.clone())
            .unwrap_or_else(|| "?".into())
    }

    /// The scanner's file, uploaded from the browser: written into the
    /// watched folder (mode 600, under a hidden name first), where the
    /// scanner step takes it like any capture (and deletes it after use).
    pub fn upload(&self, operator: &str, data: &[u8]) -> Result<(), String> {
        {
            let g = self.lock();
            if !Self::owns(&g, operator) || g.finger.is_none() {
                return Err("no card of yours is waiting for a finger".into());
            }
        }
        let name = super::session::token();
        if name.is_empty() {
            return Err("the system's random generator failed".into());
        }
        let tmp = self.scanner_dir.join(format!(".upload-{name}"));
        let path = self.scanner_dir.join(format!("upload-{name}.iso"));
        crate::private::write(&tmp, data)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| {
                format!(
                    "writing the upload into {}: {e}",
                    self.scanner_dir.display()
                )
            })
    }

    /// The operator has read the outcome: back to waiting.
    pub fn clear(&self, operator: &str) {
        self.change(|f| {
            if !f.active && f.flow_operator.as_deref().is_none_or(|o| o == operator) {
                f.outcome = None;
                f.holder = None;
                f.issuance = None;
                f.log.clear();
            }
        });
    }

    /// Wait up to `d` for a change after `version`, on the card thread.
    fn wait<'g>(&self, g: MutexGuard<'g, Flow>, d: Duration) -> MutexGuard<'g, Flow> {
        match self.cv.wait_timeout(g, d) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        }
    }
}

/// Whether the reader has a card (unknown counts as present: a PC/SC
/// hiccup must not end a holder's flow).
fn card_present(reader: &str) -> bool {
    match pc::list_readers() {
        Ok(list) => list
            .iter()
            .find(|r| r.name == reader)
            .is_none_or(|r| r.card_present),
        Err(_) => true,
    }
}

/// The scanner software's output folder: a file that appears or changes
/// there (and has kept its size for one poll) is the next capture. A file
/// the engine has read is deleted: templates are not left lying around.
pub struct Scanner {
    dir: PathBuf,
    seen: HashMap<PathBuf, (SystemTime, u64)>,
    pending: HashMap<PathBuf, u64>,
    taken: Option<PathBuf>,
}

impl Scanner {
    /// Files already in the folder are not new captures.
    pub fn new(dir: &Path) -> Scanner {
        let mut s = Scanner {
            dir: dir.to_path_buf(),
            seen: HashMap::new(),
            pending: HashMap::new(),
            taken: None,
        };
        for (p, m) in s.list() {
            s.seen.insert(p, m);
        }
        s
    }

    fn list(&self) -> Vec<(PathBuf, (SystemTime, u64))> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.filter_map(|e| {
            let e = e.ok()?;
            let m = e.metadata().ok()?;
            if !m.is_file() || e.file_name().to_string_lossy().starts_with('.') {
                return None;
            }
            Some((e.path(), (m.modified().ok()?, m.len())))
        })
        .collect()
    }

    /// Delete the capture the engine has read.
    pub fn forget_taken(&mut self) {
        if let Some(p) = self.taken.take() {
            let _ = std::fs::remove_file(&p);
            self.seen.remove(&p);
        }
    }

    /// A new, complete capture, if one has come.
    pub fn poll(&mut self) -> Option<PathBuf> {
        let mut found = None;
        for (p, m) in self.list() {
            if self.seen.get(&p) == Some(&m) {
                continue;
            }
            match self.pending.insert(p.clone(), m.1) {
                Some(len) if len == m.1 && m.1 > 0 => {
                    self.pending.remove(&p);
                    self.seen.insert(p.clone(), m);
                    found = Some(p);
                    break;
                }
                _ => {}
            }
        }
        if let Some(p) = &found {
            self.taken = Some(p.clone());
        }
        found
    }
}

const POLL: Duration = Duration::from_millis(250);

/// The engine's screen on the web.
pub struct WebScreen<'s> {
    shared: &'s Shared,
    scanner: Scanner,
}

impl Screen for WebScreen<'_> {
    fn say(&mut self, text: &str) {
        self.shared.change(|f| f.log.push(text.to_string()));
    }
    fn step(&mut self, n: u8, what: &str) {
        if n != 3 {
            self.scanner.forget_taken();
        }
        self.shared.change(|f| {
            f.step = n;
            if n != 3 {
                f.finger = None;
            }
            f.log.push(format!("[{n}/5] {what}"));
        });
    }
    fn show(&mut self, what: Shown<'_>) {
        match what {
            Shown::Holder(ins) => {
                let h = HolderView::from(ins);
                self.shared.change(|f| f.holder = Some(h));
            }
            Shown::Finger { finger, others } => {
                let a = FingerAsk {
                    position: finger.position.clone(),
                    tries_left: finger.tries_left,
                    others,
                };
                self.shared.change(|f| f.finger = Some(a));
            }
            Shown::NoMatch { finger, tries_left } => {
                // The card has compared the capture: it is read, delete it
                // before the screen says so.
                self.scanner.forget_taken();
                let p = finger.position.clone();
                self.shared.change(|f| f.no_match = Some((p, tries_left)));
            }
            Shown::Issued {
                record_id,
                shipped_at,
                shipped_by,
                replaces,
            } => {
                let v = IssuanceView {
                    record_id: record_id.to_string(),
                    shipped_at,
                    shipped_by: shipped_by.to_string(),
                    replaces: replaces.map(|(c, st)| (c.to_string(), st.to_string())),
                };
                self.shared.change(|f| f.issuance = Some(v));
            }
            Shown::PinRefused { why, .. } => {
                let w = why.to_string();
                self.shared.change(|f| f.pin_refused = Some(w));
            }
        }
    }
    /// The result of step 1 or 2 stays on screen until the operator moves
    /// on or cancels; `false` also when the card left the reader.
    fn proceed(&mut self, done: u8) -> bool {
        self.shared.change(|f| {
            f.review = Some(done);
            f.go = None;
        });
        loop {
            {
                let mut g = self.shared.lock();
                if g.removed || self.shared.stopped() {
                    g.review = None;
                    return false;
                }
                if let Some(go) = g.go.take() {
                    g.review = None;
                    g.version += 1;
                    self.shared.cv.notify_all();
                    return go;
                }
                drop(self.shared.wait(g, POLL));
            }
            if !card_present(&self.shared.reader) {
                self.shared.change(|f| f.removed = true);
            }
        }
    }
    /// The scanner's file: from the watched folder, or the operator's
    /// `next` / `cancel`. `None` when the card left the reader.
    fn ask(&mut self, _prompt: &str) -> std::io::Result<Option<String>> {
        self.scanner.forget_taken();
        loop {
            {
                let mut g = self.shared.lock();
                if g.removed || self.shared.stopped() {
                    return Ok(None);
                }
                if let Some(a) = g.answer.take() {
                    if a == "next" {
                        g.no_match = None;
                    }
                    return Ok(Some(a));
                }
                drop(self.shared.wait(g, POLL));
            }
            if let Some(p) = self.scanner.poll() {
                self.shared.change(|f| f.no_match = None);
                return Ok(Some(p.to_string_lossy().into_owned()));
            }
            if !card_present(&self.shared.reader) {
                self.shared.change(|f| f.removed = true);
            }
        }
    }
}

/// The holder's PIN entries from the browser.
pub struct WebPins<'s> {
    shared: &'s Shared,
}

impl PinInput for WebPins<'_> {
    fn secret(&mut self, prompt: &str) -> std::io::Result<Option<Secret>> {
        let which = if prompt.contains("signature PIN") {
            PinWhich::Signature
        } else {
            PinWhich::Id
        };
        // "choose your new …" asks for a new PIN (the form takes it twice);
        // "enter your signature PIN" for the one chosen at an earlier visit.
        let choose = !prompt.contains("enter your signature PIN");
        {
            let mut g = self.shared.lock();
            if let Some(s) = g.pins.pop_front() {
                return Ok(Some(s));
            }
            g.pin = Some(PinAsk { which, choose });
            g.version += 1;
            self.shared.cv.notify_all();
        }
        loop {
            {
                let mut g = self.shared.lock();
                if g.removed || self.shared.stopped() {
                    g.pin = None;
                    g.pins.clear();
                    return Ok(None);
                }
                if let Some(s) = g.pins.pop_front() {
                    if choose {
                        g.pin_refused = None;
                    }
                    return Ok(Some(s));
                }
                drop(self.shared.wait(g, POLL));
            }
            if !card_present(&self.shared.reader) {
                self.shared.change(|f| f.removed = true);
            }
        }
    }
    fn interactive(&self) -> bool {
        true
    }
    /// Offer the supervisor's override next to the new PIN form; whichever
    /// comes first: the waiver, or the holder's next PIN (left queued for
    /// the engine's next question).
    fn waiver(&mut self, label: &str, why: &str) -> Option<Waiver> {
        let which = if label.contains("signature") {
            PinWhich::Signature
        } else {
            PinWhich::Id
        };
        self.shared.change(|f| {
            f.waivable = Some(why.to_string());
            f.override_refused = false;
            f.waiver = None;
            f.pin = Some(PinAsk {
                which,
                choose: true,
            });
        });
        loop {
            {
                let mut g = self.shared.lock();
                if let Some(w) = g.waiver.take() {
                    g.waivable = None;
                    g.pin = None;
                    g.pin_refused = None;
                    g.version += 1;
                    return Some(w);
                }
                if g.removed || self.shared.stopped() || !g.pins.is_empty() {
                    g.waivable = None;
                    g.version += 1;
                    return None;
                }
                drop(self.shared.wait(g, POLL));
            }
            if !card_present(&self.shared.reader) {
                self.shared.change(|f| f.removed = true);
            }
        }
    }
}

/// The card thread: wait for a card and an operator, run the engine, show
/// the outcome, wait for the card to leave; until the station stops.
/// `counter(operator)` gives the engine for the operator in charge.
pub fn run<'a>(shared: &Shared, counter: &dyn Fn(&str) -> Counter<'a>) {
    let mut scanner = Scanner::new(&shared.scanner_dir);
    while !shared.stopped() {
        // A card, and someone signed in to hand it out.
        match pc::wait_for(Some(&shared.reader), CardEvent::Inserted, POLL * 2) {
            Ok(_) => {}
            Err(_) => continue,
        }
        let Some(operator) = shared.lock().operator.clone() else {
            std::thread::sleep(POLL);
            continue;
        };
        shared.change(|f| {
            *f = Flow {
                version: f.version,
                operator: f.operator.clone(),
                active: true,
                flow_operator: Some(operator.clone()),
                step: 1,
                ..Flow::default()
            };
        });
        let mut ct = counter(&operator);
        ct.who = ct.who.at_reader(&shared.reader);
        let outcome = match crate::transport::pcsc::PcscTransport::connect(
            Some(&shared.reader),
            Default::default(),
        ) {
            Ok(t) => {
                let mut ch = Channel::new(Box::new(t), ExchangeOptions::default());
                let mut screen = WebScreen { shared, scanner };
                let mut pins = WebPins { shared };
                let r = ct.activate(&mut ch, &mut screen, &mut pins, &mut Templates::Ask);
                scanner = screen.scanner;
                scanner.forget_taken();
                ch.release();
                let gone = shared.lock().removed || !card_present(&shared.reader);
                match r {
                    _ if gone && r.is_err() => Outcome::Removed {
                        step: shared.lock().step,
                    },
                    Ok(a) => {
                        let h = shared.lock().holder.clone().unwrap_or_default();
                        Outcome::Activated(Receipt {
                            serial: a.serial,
                            record_id: a.record_id,
                            national_id: a.national_id,
                            name_fa: h.name_fa(),
                            name_latin: h.name_latin,
                            office: a.office,
                            operator: operator.clone(),
                            station: ct.who.station.clone(),
                            at: now_ms(),
                        })
                    }
                    Err(r) => Outcome::Refused {
                        class: r.class,
                        reason: r.reason,
                    },
                }
            }
            Err(e) => Outcome::Refused {
                class: "unreadable".into(),
                reason: crate::errors::error_text(&e),
            },
        };
        let removed = matches!(outcome, Outcome::Removed { .. });
        shared.change(|f| {
            f.active = false;
            f.finger = None;
            f.pin = None;
            f.pins.clear();
            f.answer = None;
            f.review = None;
            f.go = None;
            if removed {
                f.holder = None;
                f.issuance = None;
            }
            f.outcome = Some(outcome);
        });
        // The next card only after this one left the reader.
        while !shared.stopped() {
            if pc::wait_for(Some(&shared.reader), CardEvent::Removed, POLL * 2).is_ok() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scanner_takes_a_new_complete_file_once_and_deletes_it_after_use() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::write(d.path().join("old.iso"), b"old").expect("old");
        let mut s = Scanner::new(d.path());
        assert_eq!(s.poll(), None, "an old file is no capture");
        std::fs::write(d.path().join("scan.iso"), b"FMR\0 1").expect("scan");
        assert_eq!(s.poll(), None, "taken only once its size held for a poll");
        let p = s.poll().expect("the new capture");
        assert!(p.ends_with("scan.iso"));
        assert_eq!(s.poll(), None, "taken once");
        s.forget_taken();
        assert!(!p.exists(), "the capture is deleted after use");
        assert!(d.path().join("old.iso").exists());
        std::fs::write(d.path().join(".partial"), b"x").expect("hidden");
        assert_eq!(s.poll(), None);
        assert_eq!(s.poll(), None, "hidden files are being written");
    }
}
