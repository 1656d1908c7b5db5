//! The line's supervisor: one worker thread per reader, readers coming and
//! going while the line runs, misbehaving readers taken out of rotation.
//!
//! Every thread here sleeps until something happens, because a line spends
//! nearly all its time waiting for cards (seconds per card) and a poll
//! loop's CPU, multiplied by the readers, used to cost several times what
//! personalizing a card does: workers block on their reader's card events,
//! the supervisor on [`StationCtx::events`], the reader watch on PC/SC's PnP
//! notification, and the lease renewal until its next renewal is due.

use super::progress::Progress;
use super::slot::{CardSlot, Interrupt, PcscSlot, SlotError};
use super::station::{process_card, CardResult, StationCtx};
use crate::register::journal::{JournalError, Summary};
use crate::transport::pcsc::{self as pc, WaitCancel};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where the readers come from.
pub enum Readers {
    /// PC/SC readers whose name contains one of the patterns (every reader
    /// when there is none); readers plugged in later join the line.
    Pcsc { patterns: Vec<String> },
    /// In-process slots (fixed set).
    Slots(Vec<Box<dyn CardSlot>>),
}

/// Tuning of the supervisor.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Consecutive failures (unreadable cards, reader errors) after which
    /// a reader is taken out of rotation until it is unplugged.
    pub misbehave_after: u32,
    /// How long a worker blocks in one wait before looking at the stop
    /// flag, for slots that cannot be interrupted (see
    /// [`CardSlot::interrupter`]); also the pause after a reader error and
    /// while a blank card waits at the end of the batch.
    pub wait_slice: Duration,
    /// How often the supervisor looks for the PC/SC service while it is
    /// down (readers coming and going wake it without delay).
    pub tick: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            misbehave_after: 3,
            wait_slice: Duration::from_millis(500),
            tick: Duration::from_millis(250),
        }
    }
}

/// Why a worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WorkerExit {
    Stopped,
    Gone(String),
    Service(String),
    OutOfRotation(String),
}

/// Journal and show why a worker ended; true when its reader is now out of
/// rotation.
fn ended_worker(
    ctx: &StationCtx,
    progress: &Progress,
    name: &str,
    exit: WorkerExit,
    service_down: &mut bool,
) -> bool {
    let who = ctx.who.at_reader(name);
    match exit {
        WorkerExit::Stopped => false,
        WorkerExit::Gone(e) => {
            let _ = ctx.journal.event(&who, "reader removed", &e);
            progress.reader_state(name, "gone", false);
            progress.note(&format!("reader removed: {name}"));
            false
        }
        WorkerExit::Service(e) => {
            progress.reader_state(name, "PC/SC service down", false);
            if !*service_down {
                progress.note(&format!("PC/SC service unavailable: {e}"));
                *service_down = true;
            }
            false
        }
        WorkerExit::OutOfRotation(e) => {
            let _ = ctx.journal.event(&who, "reader out of rotation", &e);
            progress.reader_state(name, "out of rotation", false);
            progress.note(&format!("reader taken out of rotation: {name}: {e}"));
            true
        }
    }
}

/// Sleep up to `d`, or less if the line stops.
fn pause(ctx: &StationCtx, d: Duration) {
    let until = Instant::now() + d;
    while !ctx.stopping() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let seen = ctx.events.seen();
        if ctx.stopping() {
            return;
        }
        ctx.events.wait(seen, left);
    }
}

/// How long one wait of a slot that can be interrupted lasts: long enough
/// that a waiting reader costs nothing, short enough to be a sane value for
/// every transport (an interrupted wait ends at once anyway).
const LONG_WAIT: Duration = Duration::from_secs(3600);

fn worker(
    ctx: &StationCtx,
    slot: &mut dyn CardSlot,
    progress: &Progress,
    opts: RunOptions,
    interruptible: bool,
) -> WorkerExit {
    let name = slot.name().to_string();
    // A slot the supervisor can interrupt is waited on for its events
    // only; others in slices, looking at the stop flag in between.
    let wait = if interruptible {
        LONG_WAIT
    } else {
        opts.wait_slice
    };
    let mut failures = 0u32;
    let fail = |why: String, failures: &mut u32| -> Option<WorkerExit> {
        *failures += 1;
        (*failures >= opts.misbehave_after).then(|| {
            WorkerExit::OutOfRotation(format!("{} failures in a row; last: {why}", *failures))
        })
    };
    // Gone and service errors end the worker; other failures count.
    let slot_error = |e: SlotError, failures: &mut u32| match e {
        SlotError::Gone(e) => Some(WorkerExit::Gone(e)),
        SlotError::Service(e) => Some(WorkerExit::Service(e)),
        SlotError::Failed(e) => fail(e, failures),
    };
    loop {
        if ctx.stopping() {
            return WorkerExit::Stopped;
        }
        progress.reader_state(&name, "waiting for a blank card", true);
        let mut ch = match slot.wait_card(wait) {
            Ok(Some(ch)) => ch,
            Ok(None) => continue,
            Err(e) => {
                if let Some(x) = slot_error(e, &mut failures) {
                    return x;
                }
                pause(ctx, opts.wait_slice);
                continue;
            }
        };
        progress.reader_state(&name, "personalizing", true);
        let seen = ctx.events.seen();
        let res = process_card(ctx, &mut ch, &name);
        if res == CardResult::NoWork {
            drop(ch);
            progress.reader_state(&name, "blank card waiting; batch done", true);
            // Nothing to do until something changes (the line stops, a
            // record comes back), or a while has passed.
            ctx.events.wait(seen, opts.wait_slice);
            continue;
        }
        let summary = ctx.journal.summary(ctx.batch_id).ok();
        progress.outcome(&name, &res, summary.as_ref());
        // The supervisor looks at the batch again; workers waiting for a
        // record look at the queue again.
        ctx.events.notify();
        let failed = match &res {
            CardResult::Unreadable { reason } => Some(reason.clone()),
            CardResult::Interrupted { reason, .. } => Some(reason.clone()),
            _ => None,
        };
        match failed {
            Some(why) => {
                if let Some(x) = fail(why, &mut failures) {
                    ch.release();
                    return x;
                }
            }
            None => failures = 0,
        }
        ch.release();
        drop(ch);
        progress.reader_state(&name, "take the card out", true);
        loop {
            if ctx.stopping() {
                return WorkerExit::Stopped;
            }
            match slot.wait_removed(wait) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    if let Some(x) = slot_error(e, &mut failures) {
                        return x;
                    }
                    pause(ctx, opts.wait_slice);
                }
            }
        }
    }
}

fn matches(name: &str, patterns: &[String]) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| name.contains(p.as_str()))
}

/// Workers that have ended, with why, for the supervisor to reap.
type Ended = Arc<Mutex<Vec<(String, WorkerExit)>>>;

/// Reports a worker's end when its thread ends, however it ends: a worker
/// that panics is reported as out of rotation.
struct EndReport {
    name: String,
    exit: WorkerExit,
    ended: Ended,
    ctx: Arc<StationCtx>,
}

impl Drop for EndReport {
    fn drop(&mut self) {
        let exit = std::mem::replace(&mut self.exit, WorkerExit::Stopped);
        self.ended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((std::mem::take(&mut self.name), exit));
        self.ctx.events.notify();
    }
}

/// A running worker: its thread and the handle that interrupts its waits.
struct Running {
    handle: JoinHandle<()>,
    interrupt: Option<Interrupt>,
}

/// Watches for PC/SC readers coming and going on a thread of its own and
/// wakes the supervisor when they do; while the service is down it looks
/// for it again every `tick`.
struct ReaderWatcher {
    cancel: WaitCancel,
    handle: Option<JoinHandle<()>>,
}

impl ReaderWatcher {
    fn start(ctx: &Arc<StationCtx>, changed: Arc<AtomicBool>, tick: Duration) -> ReaderWatcher {
        let cancel = WaitCancel::default();
        let (c, k) = (ctx.clone(), cancel.clone());
        let handle = std::thread::Builder::new()
            .name("reader watch".into())
            .spawn(move || {
                while !k.is_cancelled() {
                    let ok = match pc::ReaderWatch::new(k.clone()) {
                        Ok(mut w) => loop {
                            match w.wait() {
                                Ok(true) => {
                                    changed.store(true, Ordering::SeqCst);
                                    c.events.notify();
                                }
                                Ok(false) => break true,
                                Err(_) => break false,
                            }
                        },
                        Err(_) => false,
                    };
                    if ok {
                        break;
                    }
                    // The service went away: look again, and let the
                    // supervisor list (and say so).
                    changed.store(true, Ordering::SeqCst);
                    c.events.notify();
                    pause(&c, tick);
                }
            })
            .ok();
        ReaderWatcher { cancel, handle }
    }
}

impl Drop for ReaderWatcher {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            while !h.is_finished() {
                self.cancel.cancel();
                std::thread::sleep(SHUTDOWN_NUDGE);
            }
            let _ = h.join();
        }
    }
}

/// How often the shutdown repeats an interrupt until the thread has ended
/// (an interrupt may land just before the wait it was meant for).
const SHUTDOWN_NUDGE: Duration = Duration::from_millis(20);

/// Interrupt a worker's waits until its thread has ended, join it, and
/// journal why it ended (a panic counts as out of rotation); true when its
/// reader is now out of rotation.
fn join_worker(
    ctx: &StationCtx,
    progress: &Progress,
    name: &str,
    w: Running,
    ended: &Ended,
    service_down: &mut bool,
) -> bool {
    if let Some(i) = &w.interrupt {
        while !w.handle.is_finished() {
            i();
            std::thread::sleep(SHUTDOWN_NUDGE);
        }
    }
    let _ = w.handle.join();
    let exit = {
        let mut e = ended.lock().unwrap_or_else(|p| p.into_inner());
        match e.iter().position(|(n, _)| n == name) {
            Some(i) => e.remove(i).1,
            None => WorkerExit::OutOfRotation("the worker panicked".into()),
        }
    };
    ended_worker(ctx, progress, name, exit, service_down)
}

/// The supervisor's state between wake-ups: the worker of each reader,
/// the workers that ended, the readers out of rotation, and what it knows
/// of the PC/SC service.
struct Supervisor {
    ctx: Arc<StationCtx>,
    progress: Arc<Progress>,
    opts: RunOptions,
    workers: BTreeMap<String, Running>,
    ended: Ended,
    /// Readers taken out of rotation until they are unplugged.
    benched: BTreeSet<String>,
    service_down: bool,
    /// Set when the readers may have changed: a worker ended, or the
    /// reader watch saw a reader come or go.
    readers_changed: Arc<AtomicBool>,
}

impl Supervisor {
    /// A supervisor with no worker yet, that will look at the readers first.
    fn new(ctx: &Arc<StationCtx>, progress: &Arc<Progress>, opts: RunOptions) -> Supervisor {
        Supervisor {
            ctx: ctx.clone(),
            progress: progress.clone(),
            opts,
            workers: BTreeMap::new(),
            ended: Arc::new(Mutex::new(Vec::new())),
            benched: BTreeSet::new(),
            service_down: false,
            readers_changed: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Start a worker thread on `slot`; its end, however it ends, is
    /// reported through `ended`.
    fn spawn(&self, mut slot: Box<dyn CardSlot>) -> Result<Running, JournalError> {
        let (c, p, e) = (self.ctx.clone(), self.progress.clone(), self.ended.clone());
        let opts = self.opts;
        let interrupt = slot.interrupter();
        let interruptible = interrupt.is_some();
        let name = slot.name().to_string();
        std::thread::Builder::new()
            .name(format!("reader {name}"))
            .spawn(move || {
                let mut report = EndReport {
                    name,
                    exit: WorkerExit::OutOfRotation("the worker panicked".into()),
                    ended: e,
                    ctx: c.clone(),
                };
                report.exit = worker(&c, slot.as_mut(), &p, opts, interruptible);
            })
            .map(|handle| Running { handle, interrupt })
            .map_err(|e| JournalError::Refused(format!("starting a worker: {e}")))
    }

    /// Join the workers that ended (a reader taken out of rotation is
    /// benched); their readers, if still there, get a new worker at the
    /// next look at the readers.
    fn reap(&mut self) {
        let done: Vec<String> = self
            .ended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        for name in done {
            let Some(w) = self.workers.remove(&name) else {
                continue;
            };
            if join_worker(
                &self.ctx,
                &self.progress,
                &name,
                w,
                &self.ended,
                &mut self.service_down,
            ) {
                self.benched.insert(name);
            }
            self.readers_changed.store(true, Ordering::SeqCst);
        }
    }

    /// When the readers may have changed, or the service is down, list the
    /// PC/SC readers and start a worker on each new one matching
    /// `patterns`; the service going away or coming back is noted once.
    fn look_at_readers(&mut self, patterns: &[String]) -> Result<(), JournalError> {
        if !(self.readers_changed.swap(false, Ordering::SeqCst) || self.service_down) {
            return Ok(());
        }
        match pc::list_readers() {
            Ok(list) => {
                if self.service_down {
                    self.progress.note("PC/SC service is back");
                    self.service_down = false;
                }
                let present: BTreeSet<String> = list
                    .into_iter()
                    .map(|r| r.name)
                    .filter(|n| matches(n, patterns))
                    .collect();
                self.add_readers(&present)
            }
            Err(e) => {
                if !self.service_down {
                    self.progress
                        .note(&format!("waiting for the PC/SC service: {e}"));
                    self.service_down = true;
                }
                Ok(())
            }
        }
    }

    /// Start a worker, journaled and noted, on each reader of `present`
    /// that has none and is not out of rotation; an unplugged reader comes
    /// back into rotation.
    fn add_readers(&mut self, present: &BTreeSet<String>) -> Result<(), JournalError> {
        self.benched.retain(|n| present.contains(n));
        for name in present {
            if self.workers.contains_key(name) || self.benched.contains(name) {
                continue;
            }
            let w = self.spawn(Box::new(PcscSlot::new(name)))?;
            self.workers.insert(name.clone(), w);
            let _ = self.ctx.journal.event(
                &self.ctx.who.at_reader(name),
                "reader added",
                "worker started",
            );
            self.progress.note(&format!("reader added: {name}"));
        }
        Ok(())
    }

    /// How long to sleep when nothing happens here: other stations on the
    /// same register finish records (and the whole batch) without an event
    /// on this one, so the batch is looked at again every `poll` (one
    /// summary query). A terminal's view shows the time going by; a
    /// service that is down is looked for every tick.
    fn quiet_wait(&self) -> Duration {
        if self.service_down {
            self.opts.tick
        } else if self.progress.is_tty() {
            Duration::from_secs(1).min(self.ctx.poll)
        } else {
            self.ctx.poll
        }
    }

    /// Join every worker still running. Workers that ended on their own
    /// while the batch finished are accounted for like any other: a reader
    /// taken out of rotation in the last moments is still journaled.
    fn join_all(mut self) {
        for (name, w) in std::mem::take(&mut self.workers) {
            join_worker(
                &self.ctx,
                &self.progress,
                &name,
                w,
                &self.ended,
                &mut self.service_down,
            );
        }
    }
}

/// Run the line until every record of the batch is on a good card or
/// held, or until `ctx.stop` is set. Returns the batch's final counts.
///
/// Nothing here polls: the workers block on their readers' card events,
/// the supervisor wakes on [`StationCtx::events`] (an outcome, a worker's
/// end, readers coming or going), and a terminal's live view is redrawn
/// once a second.
pub fn run(
    ctx: Arc<StationCtx>,
    readers: Readers,
    progress: Arc<Progress>,
    opts: RunOptions,
) -> Result<Summary, JournalError> {
    let heartbeat = Heartbeat::start(&ctx);
    let mut sup = Supervisor::new(&ctx, &progress, opts);
    let patterns = match readers {
        Readers::Slots(slots) => {
            for s in slots {
                let name = s.name().to_string();
                let w = sup.spawn(s)?;
                sup.workers.insert(name, w);
            }
            None
        }
        Readers::Pcsc { patterns } => Some(patterns),
    };
    let watcher = patterns
        .is_some()
        .then(|| ReaderWatcher::start(&ctx, sup.readers_changed.clone(), opts.tick));
    let mut summary;
    loop {
        let seen = ctx.events.seen();
        sup.reap();
        if let Some(patterns) = &patterns {
            sup.look_at_readers(patterns)?;
        }
        summary = ctx.journal.summary(ctx.batch_id)?;
        progress.draw(&summary);
        if summary.finished() || ctx.stopping() {
            break;
        }
        if patterns.is_none() && sup.workers.is_empty() {
            progress.note("every reader has stopped; the batch is not finished");
            break;
        }
        // Sleep until something happens here, or until the register may
        // have changed elsewhere.
        ctx.events.wait(seen, sup.quiet_wait());
    }
    ctx.stop();
    drop(watcher);
    sup.join_all();
    drop(heartbeat);
    summary = ctx.journal.summary(ctx.batch_id)?;
    progress.draw(&summary);
    Ok(summary)
}

/// Renews the station's claims every third of the lease, on a thread of
/// its own so that a worker busy with a card (or a slow journal call)
/// never lets a live claim expire. A station that is stopped, paused or
/// cut off stops renewing, and its claims go back to the queue.
struct Heartbeat {
    stop: Option<std::sync::mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Heartbeat {
    fn start(ctx: &Arc<StationCtx>) -> Heartbeat {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let c = ctx.clone();
        let every = (c.journal.lease() / 3).max(Duration::from_millis(20));
        let handle = std::thread::Builder::new()
            .name("lease renewal".into())
            .spawn(move || {
                // Asleep until the next renewal is due; the sender's drop
                // ends the wait at once.
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    if let Err(e) = c.journal.renew(&c.who) {
                        tracing::warn!("renewing the station's claims: {e}");
                    }
                }
            })
            .ok();
        Heartbeat {
            stop: Some(tx),
            handle,
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
