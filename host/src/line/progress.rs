//! The live view of the line: one line per reader and one for the batch,
//! redrawn in place on a terminal; plain event lines otherwise.

use super::station::CardResult;
use crate::register::journal::Summary;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
struct ReaderView {
    state: String,
    good: u64,
    rejected: u64,
    interrupted: u64,
    active: bool,
}

/// Shared by the workers and the renderer.
pub struct Progress {
    started: Instant,
    tty: bool,
    readers: Mutex<BTreeMap<String, ReaderView>>,
    /// Lines of the block last drawn (tty mode).
    drawn: Mutex<usize>,
    good_this_run: AtomicU64,
    total_hint: AtomicU64,
}

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s / 60) % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

impl Progress {
    pub fn new(tty: bool) -> Progress {
        Progress {
            started: Instant::now(),
            tty,
            readers: Mutex::new(BTreeMap::new()),
            drawn: Mutex::new(0),
            good_this_run: AtomicU64::new(0),
            total_hint: AtomicU64::new(0),
        }
    }

    pub fn is_tty(&self) -> bool {
        self.tty
    }

    fn readers(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ReaderView>> {
        self.readers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A reader's current activity ("waiting for a card", "personalizing R-1", …).
    pub fn reader_state(&self, reader: &str, state: &str, active: bool) {
        let mut r = self.readers();
        let v = r.entry(reader.to_string()).or_default();
        v.state = state.to_string();
        v.active = active;
    }

    /// Print a line (above the live block on a terminal).
    pub fn note(&self, msg: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let mut drawn = self.drawn.lock().unwrap_or_else(|p| p.into_inner());
            if *drawn > 0 {
                let _ = write!(err, "\x1b[{}A\x1b[J", *drawn);
                *drawn = 0;
            }
        }
        let _ = writeln!(err, "{msg}");
    }

    /// Count a card's outcome and report it.
    pub fn outcome(&self, reader: &str, res: &CardResult, summary: Option<&Summary>) {
        {
            let mut r = self.readers();
            let v = r.entry(reader.to_string()).or_default();
            match res {
                CardResult::Good { .. } => {
                    v.good += 1;
                    self.good_this_run.fetch_add(1, Ordering::SeqCst);
                }
                CardResult::Rejected { .. } => v.rejected += 1,
                CardResult::Interrupted { .. } => v.interrupted += 1,
                _ => {}
            }
        }
        let what = match res {
            CardResult::Good {
                record_id,
                serial,
                recovered,
            } => format!(
                "good: record {record_id} on card {serial}{}",
                if *recovered {
                    " (recovered after an interruption)"
                } else {
                    ""
                }
            ),
            CardResult::Rejected {
                record_id,
                serial,
                reason,
                terminated,
            } => format!(
                "REJECTED card {}{}{}: {reason}",
                serial.as_deref().unwrap_or("?"),
                record_id
                    .as_deref()
                    .map(|r| format!(" (record {r} back in the queue)"))
                    .unwrap_or_default(),
                if *terminated { ", card terminated" } else { "" }
            ),
            CardResult::Interrupted {
                record_id,
                serial,
                reason,
            } => format!(
                "interrupted: card {serial}, record {record_id} back in the queue: {reason}"
            ),
            CardResult::Skipped { serial, reason } => format!("card {serial} skipped: {reason}"),
            CardResult::Unreadable { reason } => format!("unreadable card: {reason}"),
            CardResult::NoWork => "blank card waiting: no record left to put on it".into(),
        };
        let tail = summary
            .map(|s| format!(" — {}", self.batch_line(s)))
            .unwrap_or_default();
        self.note(&format!(
            "{} [{reader}] {what}{tail}",
            crate::register::journal::iso_time(crate::register::journal::now_ms())
        ));
    }

    /// `done 12/100, rejected 1, remaining 87, 850 cards/h, ETA 6m10s`.
    pub fn batch_line(&self, s: &Summary) -> String {
        self.total_hint.store(s.records, Ordering::SeqCst);
        let elapsed = self.started.elapsed();
        let good_run = self.good_this_run.load(Ordering::SeqCst);
        let per_hour = if elapsed.as_secs_f64() > 0.5 {
            good_run as f64 * 3600.0 / elapsed.as_secs_f64()
        } else {
            0.0
        };
        let remaining = s.pending + s.in_progress;
        let eta = if per_hour > 0.0 && remaining > 0 {
            format!(
                ", ETA {}",
                fmt_duration(Duration::from_secs_f64(
                    remaining as f64 * 3600.0 / per_hour
                ))
            )
        } else {
            String::new()
        };
        format!(
            "done {}/{}, rejected {}, held {}, remaining {remaining}, {per_hour:.0} cards/h{eta}",
            s.good, s.records, s.rejected, s.held
        )
    }

    /// Redraw the live block (terminal only).
    pub fn draw(&self, s: &Summary) {
        if !self.tty {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let mut lines = Vec::new();
        for (name, v) in self.readers().iter() {
            lines.push(format!(
                "  {:<28} {:<44} good {:>4}  rejected {:>3}  {:>6.0}/h{}",
                name,
                v.state.chars().take(44).collect::<String>(),
                v.good,
                v.rejected,
                v.good as f64 * 3600.0 / elapsed,
                if v.active { "" } else { "  (out of rotation)" }
            ));
        }
        lines.push(format!("  batch: {}", self.batch_line(s)));
        let mut err = std::io::stderr().lock();
        let mut drawn = self.drawn.lock().unwrap_or_else(|p| p.into_inner());
        if *drawn > 0 {
            let _ = write!(err, "\x1b[{}A\x1b[J", *drawn);
        }
        for l in &lines {
            let _ = writeln!(err, "{l}");
        }
        *drawn = lines.len();
    }
}
