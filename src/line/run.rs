//! The line's supervisor: one worker thread per reader, readers coming and
//! going while the line runs, misbehaving readers taken out of rotation.

use super::progress::Progress;
use super::slot::{CardSlot, PcscSlot, SlotError};
use super::station::{process_card, CardResult, StationCtx};
use crate::register::journal::{JournalError, Summary};
use crate::transport::pcsc as pc;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
    /// How long a worker blocks in one wait before looking at the stop flag.
    pub wait_slice: Duration,
    /// How often the supervisor looks for readers and redraws.
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

fn worker(
    ctx: Arc<StationCtx>,
    mut slot: Box<dyn CardSlot>,
    progress: Arc<Progress>,
    opts: RunOptions,
) -> WorkerExit {
    let name = slot.name().to_string();
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
        if ctx.stop.load(Ordering::SeqCst) {
            return WorkerExit::Stopped;
        }
        progress.reader_state(&name, "waiting for a blank card", true);
        let mut ch = match slot.wait_card(opts.wait_slice) {
            Ok(Some(ch)) => ch,
            Ok(None) => continue,
            Err(e) => {
                if let Some(x) = slot_error(e, &mut failures) {
                    return x;
                }
                std::thread::sleep(opts.wait_slice);
                continue;
            }
        };
        progress.reader_state(&name, "personalizing", true);
        let res = process_card(&ctx, &mut ch, &name);
        if res == CardResult::NoWork {
            drop(ch);
            progress.reader_state(&name, "blank card waiting; batch done", true);
            std::thread::sleep(opts.wait_slice);
            continue;
        }
        let summary = ctx.journal.summary(ctx.batch_id).ok();
        progress.outcome(&name, &res, summary.as_ref());
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
            if ctx.stop.load(Ordering::SeqCst) {
                return WorkerExit::Stopped;
            }
            match slot.wait_removed(opts.wait_slice) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    if let Some(x) = slot_error(e, &mut failures) {
                        return x;
                    }
                    std::thread::sleep(opts.wait_slice);
                }
            }
        }
    }
}

fn matches(name: &str, patterns: &[String]) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| name.contains(p.as_str()))
}

/// Run the line until every record of the batch is on a good card or
/// held, or until `ctx.stop` is set. Returns the batch's final counts.
pub fn run(
    ctx: Arc<StationCtx>,
    readers: Readers,
    progress: Arc<Progress>,
    opts: RunOptions,
) -> Result<Summary, JournalError> {
    let heartbeat = Heartbeat::start(&ctx);
    let mut workers: BTreeMap<String, JoinHandle<WorkerExit>> = BTreeMap::new();
    let mut benched: BTreeSet<String> = BTreeSet::new();
    let mut service_down = false;
    let spawn = |slot: Box<dyn CardSlot>| {
        let (c, p) = (ctx.clone(), progress.clone());
        std::thread::Builder::new()
            .name(format!("reader {}", slot.name()))
            .spawn(move || worker(c, slot, p, opts))
    };
    let patterns = match readers {
        Readers::Slots(slots) => {
            for s in slots {
                let name = s.name().to_string();
                let h = spawn(s)
                    .map_err(|e| JournalError::Refused(format!("starting a worker: {e}")))?;
                workers.insert(name, h);
            }
            None
        }
        Readers::Pcsc { patterns } => Some(patterns),
    };
    let mut summary;
    loop {
        if let Some(patterns) = &patterns {
            match pc::list_readers() {
                Ok(list) => {
                    if service_down {
                        progress.note("PC/SC service is back");
                        service_down = false;
                    }
                    let present: BTreeSet<String> = list
                        .into_iter()
                        .map(|r| r.name)
                        .filter(|n| matches(n, patterns))
                        .collect();
                    // An unplugged reader may come back into rotation.
                    benched.retain(|n| present.contains(n));
                    for name in &present {
                        if workers.contains_key(name) || benched.contains(name) {
                            continue;
                        }
                        let h = spawn(Box::new(PcscSlot::new(name))).map_err(|e| {
                            JournalError::Refused(format!("starting a worker: {e}"))
                        })?;
                        workers.insert(name.clone(), h);
                        let _ = ctx.journal.event(
                            &ctx.who.at_reader(name),
                            "reader added",
                            "worker started",
                        );
                        progress.note(&format!("reader added: {name}"));
                    }
                }
                Err(e) => {
                    if !service_down {
                        progress.note(&format!("waiting for the PC/SC service: {e}"));
                        service_down = true;
                    }
                }
            }
        }
        // Reap workers that ended.
        let ended: Vec<String> = workers
            .iter()
            .filter(|(_, h)| h.is_finished())
            .map(|(n, _)| n.clone())
            .collect();
        for name in ended {
            let Some(h) = workers.remove(&name) else {
                continue;
            };
            let exit = h
                .join()
                .unwrap_or_else(|_| WorkerExit::OutOfRotation("the worker panicked".into()));
            if ended_worker(&ctx, &progress, &name, exit, &mut service_down) {
                benched.insert(name);
            }
        }
        summary = ctx.journal.summary(ctx.batch_id)?;
        progress.draw(&summary);
        if summary.finished() || ctx.stop.load(Ordering::SeqCst) {
            break;
        }
        if patterns.is_none() && workers.is_empty() {
            progress.note("every reader has stopped; the batch is not finished");
            break;
        }
        std::thread::sleep(opts.tick);
    }
    ctx.stop.store(true, Ordering::SeqCst);
    // Workers that ended on their own while the batch finished are
    // accounted for like any other: a reader taken out of rotation in the
    // last moments is still journaled.
    for (name, h) in workers {
        let exit = h
            .join()
            .unwrap_or_else(|_| WorkerExit::OutOfRotation("the worker panicked".into()));
        ended_worker(&ctx, &progress, &name, exit, &mut service_down);
    }
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
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Heartbeat {
    fn start(ctx: &Arc<StationCtx>) -> Heartbeat {
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (ctx.clone(), stop.clone());
        let every = (c.journal.lease() / 3).max(Duration::from_millis(20));
        let handle = std::thread::Builder::new()
            .name("lease renewal".into())
            .spawn(move || {
                let mut last = Instant::now();
                while !s.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20).min(every));
                    if last.elapsed() >= every {
                        if let Err(e) = c.journal.renew(&c.who) {
                            tracing::warn!("renewing the station's claims: {e}");
                        }
                        last = Instant::now();
                    }
                }
            })
            .ok();
        Heartbeat { stop, handle }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
