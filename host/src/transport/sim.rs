//! The in-process implementation of [`Transport`]: a simulated card in the
//! same process, for fast tests of card logic without pcscd.
//!
//! It hands the card raw APDU bytes and nothing else, exactly as the vpcd
//! connector does, so logic tested here behaves the same over PC/SC. The
//! same [`Faults`] apply: removal at APDU k gives
//! [`TransportError::CardRemoved`], a mute card gives a timeout after
//! `mute_timeout` (PC/SC has no such timeout; pcscd would wait for the reader).

use super::{Protocol, Session, Transport, TransportError};
use crate::sim::faults::{FaultAction, Faults};
use crate::sim::vpcd::SharedCard;
use crate::sim::SimCard;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct SimTransport {
    card: SharedCard,
    faults: Faults,
    count: u64,
    removed: bool,
    name: String,
    pub mute_timeout: Duration,
}

impl SimTransport {
    pub fn new(card: SimCard) -> SimTransport {
        Self::shared(Arc::new(Mutex::new(card)), Faults::none())
    }

    pub fn shared(card: SharedCard, faults: Faults) -> SimTransport {
        if let Ok(mut c) = card.lock() {
            c.power_on();
        }
        SimTransport {
            card,
            faults,
            count: 0,
            removed: false,
            name: "cardsmith in-process simulated card".into(),
            mute_timeout: Duration::from_millis(200),
        }
    }

    pub fn card(&self) -> SharedCard {
        self.card.clone()
    }

    /// Name the reader this card sits in (for messages and journals).
    pub fn with_name(mut self, name: &str) -> SimTransport {
        self.name = name.to_string();
        self
    }

    /// Put the card back after a removal: power-on, fresh APDU count.
    pub fn reinsert(&mut self, faults: Faults) {
        self.removed = false;
        self.count = 0;
        self.faults = faults;
        if let Ok(mut c) = self.card.lock() {
            c.power_on();
        }
    }

    fn with_card<T>(&self, f: impl FnOnce(&mut SimCard) -> T) -> Result<T, TransportError> {
        let mut c = self.card.lock().map_err(|_| TransportError::Unresponsive {
            reader: self.name.clone(),
        })?;
        Ok(f(&mut c))
    }
}

struct SimSession<'a>(&'a mut SimTransport);

impl Session for SimSession<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let t = &mut *self.0;
        if t.removed {
            return Err(TransportError::CardRemoved {
                reader: t.name.clone(),
            });
        }
        t.count += 1;
        match t.faults.action_for(t.count) {
            FaultAction::Remove => {
                t.removed = true;
                if let Ok(mut c) = t.card.lock() {
                    c.power_off();
                }
                return Err(TransportError::CardRemoved {
                    reader: t.name.clone(),
                });
            }
            FaultAction::Mute => {
                std::thread::sleep(t.mute_timeout);
                return Err(TransportError::Timeout(t.mute_timeout));
            }
            FaultAction::Answer => {}
        }
        if let Some(d) = t.faults.delay {
            std::thread::sleep(d);
        }
        let (resp, cost) = t.with_card(|c| {
            let r = c.transmit(apdu);
            (r, c.take_cost())
        })?;
        if !cost.is_zero() {
            std::thread::sleep(cost);
        }
        Ok(resp)
    }
}

impl Transport for SimTransport {
    fn begin(&mut self) -> Result<Box<dyn Session + '_>, TransportError> {
        if self.removed {
            return Err(TransportError::CardRemoved {
                reader: self.name.clone(),
            });
        }
        Ok(Box::new(SimSession(self)))
    }

    fn reconnect(&mut self, reset: bool) -> Result<(), TransportError> {
        if self.removed {
            return Err(TransportError::NoCard {
                reader: self.name.clone(),
            });
        }
        if reset {
            self.with_card(|c| c.reset())?;
        }
        Ok(())
    }

    fn atr(&self) -> Vec<u8> {
        self.with_card(|c| c.atr()).unwrap_or_default()
    }

    fn protocol(&self) -> Protocol {
        Protocol::T1
    }

    fn reader(&self) -> String {
        self.name.clone()
    }

    fn release(&mut self) {
        let _ = self.with_card(|c| c.power_off());
    }
}
