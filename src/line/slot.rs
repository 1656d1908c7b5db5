//! Where the line's cards come from: a reader slot that presents cards one
//! after another. Two kinds: a PC/SC reader (through pcscd: real readers,
//! the vpcd virtual reader, the project's own line readers), and an
//! in-process slot fed with simulated cards (tests and benchmarks that
//! measure the line without the PC/SC stack).

use crate::sim::faults::Faults;
use crate::sim::vpcd::SharedCard;
use crate::transport::pcsc::{self as pc, CardEvent, ConnectOptions};
use crate::transport::sim::SimTransport;
use crate::transport::{Channel, ExchangeOptions, TransportError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// A reader slot the line draws cards from.
pub trait CardSlot: Send {
    fn name(&self) -> &str;
    /// Wait up to `timeout` for a card and connect to it.
    fn wait_card(&mut self, timeout: Duration) -> Result<Option<Channel>, SlotError>;
    /// Wait up to `timeout` until the card has left; true once it has.
    fn wait_removed(&mut self, timeout: Duration) -> Result<bool, SlotError>;
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

/// A reader seen through pcscd.
pub struct PcscSlot {
    name: String,
}

impl PcscSlot {
    pub fn new(name: &str) -> PcscSlot {
        PcscSlot {
            name: name.to_string(),
        }
    }
}

impl CardSlot for PcscSlot {
    fn name(&self) -> &str {
        &self.name
    }

    fn wait_card(&mut self, timeout: Duration) -> Result<Option<Channel>, SlotError> {
        match pc::wait_for(Some(&self.name), CardEvent::Inserted, timeout) {
            Ok(_) => {}
            Err(TransportError::WaitTimeout(_)) => return Ok(None),
            Err(e) => return Err(classify(e)),
        }
        match pc::PcscTransport::connect(Some(&self.name), ConnectOptions::default()) {
            Ok(t) => Ok(Some(Channel::new(Box::new(t), ExchangeOptions::default()))),
            // Pulled between the event and the connect.
            Err(TransportError::NoCard { .. }) | Err(TransportError::CardRemoved { .. }) => {
                Ok(None)
            }
            Err(e) => Err(classify(e)),
        }
    }

    fn wait_removed(&mut self, timeout: Duration) -> Result<bool, SlotError> {
        match pc::wait_for(Some(&self.name), CardEvent::Removed, timeout) {
            Ok(_) => Ok(true),
            Err(TransportError::WaitTimeout(_)) => Ok(false),
            Err(e) => Err(classify(e)),
        }
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

/// An in-process slot: cards from a [`SimFeed`], reached through
/// [`SimTransport`] (with the cards' own timing model).
pub struct SimSlot {
    name: String,
    feed: Arc<Mutex<SimFeed>>,
    current: Option<SharedCard>,
}

impl SimSlot {
    pub fn new(name: &str, feed: Arc<Mutex<SimFeed>>) -> SimSlot {
        SimSlot {
            name: name.to_string(),
            feed,
            current: None,
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
                    std::thread::sleep(timeout);
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
}

impl Drop for SimSlot {
    /// Cards still in the slot when the line stops go to the hopper too.
    fn drop(&mut self) {
        let _ = self.wait_removed(Duration::ZERO);
    }
}
