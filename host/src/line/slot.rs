//! Where the line's cards come from: a reader slot that presents cards one
//! after another. Two kinds: a PC/SC reader (through pcscd: real readers,
//! the vpcd virtual reader, the project's own line readers), and an
//! in-process slot fed with simulated cards (tests and benchmarks that
//! measure the line without the PC/SC stack).

use crate::sim::faults::Faults;
use crate::sim::vpcd::SharedCard;
use crate::transport::pcsc::{self as pc, CardEvent, CardWaiter, ConnectOptions};
use crate::transport::sim::SimTransport;
use crate::transport::{Channel, ExchangeOptions, TransportError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Why a slot cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotError {
    /// The reader is gone (unplugged, or removed from pcscd).
    Gone(String),
    /// The PC/SC service is down (pcscd stopped or restarting).
    Service(String),
    /// The reader failed in some other way (counts towards taking it out
    /// of rotation).
    Failed(String),
}

impl std::fmt::Display for SlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SlotError::Gone(s) => write!(f, "reader gone: {s}"),
            SlotError::Service(s) => write!(f, "PC/SC service unavailable: {s}"),
            SlotError::Failed(s) => write!(f, "reader failed: {s}"),
        }
    }
}

/// Ends a slot's waits from another thread (see [`CardSlot::interrupter`]).
pub type Interrupt = Box<dyn Fn() + Send + Sync>;

/// A reader slot the line draws cards from.
pub trait CardSlot: Send {
    fn name(&self) -> &str;
    /// Wait up to `timeout` for a card and connect to it.
    fn wait_card(&mut self, timeout: Duration) -> Result<Option<Channel>, SlotError>;
    /// Wait up to `timeout` until the card has left; true once it has.
    fn wait_removed(&mut self, timeout: Duration) -> Result<bool, SlotError>;
    /// A handle that ends this slot's waits for good, callable from another
    /// thread while a wait is under way (the line's shutdown). A slot that
    /// has one is waited on without a time limit, woken only by its card
    /// events; a slot without one is waited on in slices, looking at the
    /// stop flag between them.
    fn interrupter(&self) -> Option<Interrupt> {
        None
    }
}

fn classify(e: TransportError) -> SlotError {
    match e {
        TransportError::NoService(s) => SlotError::Service(s),
        TransportError::NoReaders | TransportError::ReaderNotFound { .. } => {
            SlotError::Gone(e.to_string())
        }
        TransportError::Pcsc { ref detail, .. }
            if detail.contains("service") || detail.contains("Service") =>
        {
            SlotError::Service(e.to_string())
        }
        TransportError::Pcsc { ref detail, .. }
            if detail.contains("nknown reader") || detail.contains("no longer available") =>
        {
            SlotError::Gone(e.to_string())
        }
        e => SlotError::Failed(e.to_string()),
    }
}

/// A reader seen through pcscd. Waits block in SCardGetStatusChange on
/// the slot's own PC/SC context until the reader reports a change; the
/// line's shutdown cancels them.
pub struct PcscSlot {
    name: String,
    waiter: CardWaiter,
}

impl PcscSlot {
    pub fn new(name: &str) -> PcscSlot {
        PcscSlot {
            name: name.to_string(),
            waiter: CardWaiter::new(name),
        }
    }
}

impl CardSlot for PcscSlot {
    fn name(&self) -> &str {
        &self.name
    }

    fn wait_card(&mut self, timeout: Duration) -> Result<Option<Channel>, SlotError> {
        match self.waiter.wait(CardEvent::Inserted, timeout) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return Err(classify(e)),
        }
        match pc::PcscTransport::connect_named(&self.name, ConnectOptions::default()) {
            Ok(t) => Ok(Some(Channel::new(Box::new(t), ExchangeOptions::default()))),
            // Pulled between the event and the connect.
            Err(TransportError::NoCard { .. }) | Err(TransportError::CardRemoved { .. }) => {
                Ok(None)
            }
            Err(e) => Err(classify(e)),
        }
    }

    fn wait_removed(&mut self, timeout: Duration) -> Result<bool, SlotError> {
        self.waiter
            .wait(CardEvent::Removed, timeout)
            .map_err(classify)
    }

    fn interrupter(&self) -> Option<Interrupt> {
        let c = self.waiter.canceller();
        Some(Box::new(move || c.cancel()))
    }
}

/// Gives the next card for an in-process slot: the card and the faults it
/// has in this insertion. `None`: the feeder is empty.
pub type FeedFn = dyn FnMut(&str) -> Option<(SharedCard, Faults)> + Send;

/// Cards for in-process slots, and the hopper the used ones go to.
pub struct SimFeed {
    next: Box<FeedFn>,
    /// Every card that left a slot, in order.
    pub hopper: Vec<(String, SharedCard)>,
}

impl SimFeed {
    pub fn new(next: Box<FeedFn>) -> Arc<Mutex<SimFeed>> {
        Arc::new(Mutex::new(SimFeed {
            next,
            hopper: Vec::new(),
        }))
    }
}

/// How soon an in-process slot whose feed was empty asks it again.
const EMPTY_FEED_RETRY: Duration = Duration::from_millis(50);

/// An in-process slot: cards from a [`SimFeed`], reached through
/// [`SimTransport`] (with the cards' own timing model).
pub struct SimSlot {
    name: String,
    feed: Arc<Mutex<SimFeed>>,
    current: Option<SharedCard>,
    /// Set (and signalled) when the line shuts down.
    cancelled: Arc<(Mutex<bool>, Condvar)>,
}

impl SimSlot {
    pub fn new(name: &str, feed: Arc<Mutex<SimFeed>>) -> SimSlot {
        SimSlot {
            name: name.to_string(),
            feed,
            current: None,
            cancelled: Arc::new((Mutex::new(false), Condvar::new())),
        }
    }

    /// An empty feeder: wait out `timeout` unless the line shuts down.
    fn idle(&self, timeout: Duration) {
        let (flag, cv) = &*self.cancelled;
        let deadline = Instant::now().checked_add(timeout);
        let mut done = flag.lock().unwrap_or_else(|p| p.into_inner());
        while !*done {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return;
            }
            done = match cv.wait_timeout(done, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

impl CardSlot for SimSlot {
    fn name(&self) -> &str {
        &self.name
    }

    fn wait_card(&mut self, timeout: Duration) -> Result<Option<Channel>, SlotError> {
        let faults = if self.current.is_some() {
            Faults::none()
        } else {
            let next = {
                let mut f = self.feed.lock().unwrap_or_else(|p| p.into_inner());
                (f.next)(&self.name)
            };
            match next {
                Some((card, faults)) => {
                    self.current = Some(card);
                    faults
                }
                None => {
                    // An empty hopper cannot say when it has cards again
                    // (the feed is a function): look again shortly.
                    self.idle(timeout.min(EMPTY_FEED_RETRY));
                    return Ok(None);
                }
            }
        };
        let Some(card) = self.current.clone() else {
            return Ok(None);
        };
        let t = SimTransport::shared(card, faults).with_name(&self.name);
        Ok(Some(Channel::new(Box::new(t), ExchangeOptions::default())))
    }

    fn wait_removed(&mut self, _timeout: Duration) -> Result<bool, SlotError> {
        if let Some(c) = self.current.take() {
            let mut f = self.feed.lock().unwrap_or_else(|p| p.into_inner());
            f.hopper.push((self.name.clone(), c));
        }
        Ok(true)
    }

    fn interrupter(&self) -> Option<Interrupt> {
        let c = self.cancelled.clone();
        Some(Box::new(move || {
            let (flag, cv) = &*c;
            *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
        }))
    }
}

impl Drop for SimSlot {
    /// Cards still in the slot when the line stops go to the hopper too.
    fn drop(&mut self) {
        let _ = self.wait_removed(Duration::ZERO);
    }
}
