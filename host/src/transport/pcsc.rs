//! The PC/SC implementation of [`Transport`], on the `pcsc` crate.
//!
//! This is the only module that names `pcsc::`. It maps PC/SC errors onto
//! [`TransportError`] so that "card removed", "card reset by someone else",
//! "no reader" and "no service" stay distinct all the way to the exit code.
//!
//! The receive buffer is always the extended maximum: pcsc-rust warns that an
//! "insufficient buffer" failure comes *after* the card executed the command,
//! so a too-small buffer would silently turn a write into a lost answer.

use super::{Protocol, Session, Transport, TransportError};
use serde::Serialize;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The [`TransportError`] for a PC/SC error of operation `op` on `reader`:
/// the one mapping every PC/SC call goes through (public so that tests can
/// inject a PC/SC failure, such as pcscd going away, at the transport seam).
pub fn map_error(op: &'static str, reader: &str, e: pcsc::Error) -> TransportError {
    pcsc_err(op, reader, e)
}

fn pcsc_err(op: &'static str, reader: &str, e: pcsc::Error) -> TransportError {
    use pcsc::Error as E;
    let reader = reader.to_string();
    match e {
        E::NoService | E::ServiceStopped | E::NoReadersAvailable if op == "establish" => {
            TransportError::NoService(e.to_string())
        }
        E::NoService | E::ServiceStopped => TransportError::NoService(e.to_string()),
        E::NoReadersAvailable => TransportError::NoReaders,
        E::UnknownReader | E::ReaderUnavailable => TransportError::ReaderNotFound {
            query: reader,
            available: "(reader went away)".into(),
        },
        E::NoSmartcard => TransportError::NoCard { reader },
        E::RemovedCard => TransportError::CardRemoved { reader },
        E::ResetCard => TransportError::CardReset { reader },
        E::SharingViolation => TransportError::SharingViolation { reader },
        E::UnresponsiveCard | E::UnpoweredCard | E::UnsupportedCard => {
            TransportError::Unresponsive { reader }
        }
        E::Timeout => TransportError::WaitTimeout(Duration::ZERO),
        other => TransportError::Pcsc {
            op,
            detail: format!("{other} ({other:?})"),
        },
    }
}

fn context() -> Result<pcsc::Context, TransportError> {
    pcsc::Context::establish(pcsc::Scope::User).map_err(|e| pcsc_err("establish", "", e))
}

/// A reader and what is in it.
#[derive(Debug, Clone, Serialize)]
pub struct ReaderInfo {
    pub index: usize,
    pub name: String,
    pub card_present: bool,
    pub in_use_exclusively: bool,
    pub atr: Option<String>,
}

/// List readers with their card state.
pub fn list_readers() -> Result<Vec<ReaderInfo>, TransportError> {
    let ctx = context()?;
    list_with(&ctx)
}

fn reader_names(ctx: &pcsc::Context) -> Result<Vec<CString>, TransportError> {
    match ctx.list_readers_owned() {
        Ok(v) => Ok(v),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(pcsc_err("list readers", "", e)),
    }
}

fn list_with(ctx: &pcsc::Context) -> Result<Vec<ReaderInfo>, TransportError> {
    let names = reader_names(ctx)?;
    let mut states: Vec<pcsc::ReaderState> = names
        .iter()
        .map(|n| pcsc::ReaderState::new(n.clone(), pcsc::State::UNAWARE))
        .collect();
    if !states.is_empty() {
        ctx.get_status_change(Duration::ZERO, &mut states)
            .map_err(|e| pcsc_err("get status", "", e))?;
    }
    Ok(states
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let present = s.event_state().contains(pcsc::State::PRESENT);
            ReaderInfo {
                index,
                name: s.name().to_string_lossy().into_owned(),
                card_present: present,
                in_use_exclusively: s.event_state().contains(pcsc::State::EXCLUSIVE),
                atr: present.then(|| crate::hex::spaced(s.atr())),
            }
        })
        .collect())
}

/// Pick a reader: by index, by exact name, or by a substring matching exactly
/// one reader (case-insensitive). With no query: the first reader with a card.
pub fn choose_reader(
    readers: &[ReaderInfo],
    query: Option<&str>,
) -> Result<String, TransportError> {
    if readers.is_empty() {
        return Err(TransportError::NoReaders);
    }
    let all = || {
        readers
            .iter()
            .map(|r| format!("{}: {}", r.index, r.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(q) = query else {
        return readers
            .iter()
            .find(|r| r.card_present)
            .or(readers.first())
            .map(|r| r.name.clone())
            .ok_or(TransportError::NoReaders);
    };
    if let Ok(i) = q.trim().parse::<usize>() {
        return readers.get(i).map(|r| r.name.clone()).ok_or_else(|| {
            TransportError::ReaderNotFound {
                query: q.to_string(),
                available: all(),
            }
        });
    }
    if let Some(r) = readers.iter().find(|r| r.name == q) {
        return Ok(r.name.clone());
    }
    let ql = q.to_lowercase();
    let hits: Vec<&ReaderInfo> = readers
        .iter()
        .filter(|r| r.name.to_lowercase().contains(&ql))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.name.clone()),
        [] => Err(TransportError::ReaderNotFound {
            query: q.to_string(),
            available: all(),
        }),
        many => Err(TransportError::AmbiguousReader {
            query: q.to_string(),
            matches: many
                .iter()
                .map(|r| format!("{}: {}", r.index, r.name))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// How to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectOptions {
    pub exclusive: bool,
    /// None: let the reader choose among T=0 and T=1.
    pub protocol: Option<Protocol>,
}

/// A card connected through PC/SC.
pub struct PcscTransport {
    // `card` must drop before `_ctx`; fields drop in declaration order.
    card: pcsc::Card,
    _ctx: pcsc::Context,
    reader: String,
    opts: ConnectOptions,
    atr: Vec<u8>,
    protocol: Protocol,
}

fn share(o: &ConnectOptions) -> pcsc::ShareMode {
    if o.exclusive {
        pcsc::ShareMode::Exclusive
    } else {
        pcsc::ShareMode::Shared
    }
}

fn protocols(o: &ConnectOptions) -> pcsc::Protocols {
    match o.protocol {
        Some(Protocol::T0) => pcsc::Protocols::T0,
        Some(Protocol::T1) => pcsc::Protocols::T1,
        Some(Protocol::Raw) => pcsc::Protocols::RAW,
        None => pcsc::Protocols::T0 | pcsc::Protocols::T1,
    }
}

impl PcscTransport {
    /// Connect to the reader chosen by `query` (see [`choose_reader`]).
    pub fn connect(
        query: Option<&str>,
        opts: ConnectOptions,
    ) -> Result<PcscTransport, TransportError> {
        let ctx = context()?;
        let readers = list_with(&ctx)?;
        let name = choose_reader(&readers, query)?;
        let cname = CString::new(name.clone()).map_err(|_| TransportError::ReaderNotFound {
            query: name.clone(),
            available: String::new(),
        })?;
        let card = ctx
            .connect(&cname, share(&opts), protocols(&opts))
            .map_err(|e| pcsc_err("connect", &name, e))?;
        let mut t = PcscTransport {
            card,
            _ctx: ctx,
            reader: name,
            opts,
            atr: Vec::new(),
            protocol: Protocol::T1,
        };
        t.refresh_status()?;
        Ok(t)
    }

    /// Connect to the reader named exactly `name`, without listing the
    /// readers first (the line's workers know their reader's name).
    pub fn connect_named(
        name: &str,
        opts: ConnectOptions,
    ) -> Result<PcscTransport, TransportError> {
        let ctx = context()?;
        let cname = CString::new(name).map_err(|_| TransportError::ReaderNotFound {
            query: name.to_string(),
            available: String::new(),
        })?;
        let card = ctx
            .connect(&cname, share(&opts), protocols(&opts))
            .map_err(|e| pcsc_err("connect", name, e))?;
        let mut t = PcscTransport {
            card,
            _ctx: ctx,
            reader: name.to_string(),
            opts,
            atr: Vec::new(),
            protocol: Protocol::T1,
        };
        t.refresh_status()?;
        Ok(t)
    }

    /// Disconnect; `reset` false leaves the card as it is (powered, its
    /// security state kept). Dropping a transport resets the card (the
    /// `pcsc` crate's default), which a guest such as the PKCS#11 module
    /// must not do to a card it only looked at.
    pub fn disconnect(self, reset: bool) {
        let disp = if reset {
            pcsc::Disposition::ResetCard
        } else {
            pcsc::Disposition::LeaveCard
        };
        let _ = self.card.disconnect(disp);
    }

    fn refresh_status(&mut self) -> Result<(), TransportError> {
        let st = self
            .card
            .status2_owned()
            .map_err(|e| pcsc_err("status", &self.reader, e))?;
        self.atr = st.atr().to_vec();
        self.protocol = match st.protocol2() {
            Some(pcsc::Protocol::T0) => Protocol::T0,
            Some(pcsc::Protocol::T1) => Protocol::T1,
            _ => Protocol::Raw,
        };
        Ok(())
    }
}

struct PcscSession<'a> {
    tx: pcsc::Transaction<'a>,
    reader: &'a str,
    buf: Vec<u8>,
}

impl PcscSession<'_> {
    /// Err(CardRemoved) when the reader no longer has the card we were talking to.
    /// The reader's driver may notice the removal only on its next presence
    /// poll, so look for up to a second before calling the card present.
    fn check_present(&self) -> Result<(), TransportError> {
        for _ in 0..10 {
            match self.tx.status2_owned() {
                Ok(st) if st.status().contains(pcsc::Status::PRESENT) => {}
                Ok(_) | Err(pcsc::Error::RemovedCard) | Err(pcsc::Error::NoSmartcard) => {
                    return Err(TransportError::CardRemoved {
                        reader: self.reader.to_string(),
                    })
                }
                Err(e) => return Err(pcsc_err("status", self.reader, e)),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

impl Session for PcscSession<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self.tx.transmit(apdu, &mut self.buf) {
            Ok(r) if r.len() >= 2 => Ok(r.to_vec()),
            // A card pulled mid-command can surface as an empty answer or a
            // communication error; ask the reader which it was.
            Ok(r) => {
                let r = r.to_vec();
                self.check_present()?;
                Ok(r)
            }
            Err(
                e @ (pcsc::Error::CommError
                | pcsc::Error::NotTransacted
                | pcsc::Error::UnknownError),
            ) => {
                self.check_present()?;
                Err(pcsc_err("transmit", self.reader, e))
            }
            Err(e) => Err(pcsc_err("transmit", self.reader, e)),
        }
    }
}

impl Transport for PcscTransport {
    fn begin(&mut self) -> Result<Box<dyn Session + '_>, TransportError> {
        let reader = self.reader.as_str();
        let tx = self
            .card
            .transaction()
            .map_err(|e| pcsc_err("begin transaction", reader, e))?;
        Ok(Box::new(PcscSession {
            tx,
            reader,
            buf: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        }))
    }

    fn reconnect(&mut self, reset: bool) -> Result<(), TransportError> {
        let disp = if reset {
            pcsc::Disposition::ResetCard
        } else {
            pcsc::Disposition::LeaveCard
        };
        self.card
            .reconnect(share(&self.opts), protocols(&self.opts), disp)
            .map_err(|e| pcsc_err("reconnect", &self.reader, e))?;
        self.refresh_status()
    }

    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn reader(&self) -> String {
        self.reader.clone()
    }

    fn release(&mut self) {
        // SCardReconnect with SCARD_UNPOWER_CARD powers the card down (and
        // up again if it is still there); a card handler ejects it on the
        // power-down.
        let _ = self.card.reconnect(
            share(&self.opts),
            protocols(&self.opts),
            pcsc::Disposition::UnpowerCard,
        );
    }
}

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CardEvent {
    Inserted,
    Removed,
}

/// Wait until a card is present in (`Inserted`) or absent from (`Removed`)
/// the reader chosen by `query` (any reader when None), using PC/SC status
/// change events. Returns at once if that is already so. Readers plugged in
/// while waiting are noticed through the PnP notification.
pub fn wait_for(
    query: Option<&str>,
    event: CardEvent,
    timeout: Duration,
) -> Result<ReaderInfo, TransportError> {
    let ctx = context()?;
    let deadline = Instant::now() + timeout;
    let pnp: &CStr = pcsc::PNP_NOTIFICATION();
    loop {
        let readers = list_with(&ctx)?;
        let candidates: Vec<&ReaderInfo> = match query {
            Some(q) if !readers.is_empty() => {
                let name = choose_reader(&readers, Some(q))?;
                readers.iter().filter(|r| r.name == name).collect()
            }
            _ => readers.iter().collect(),
        };
        let hit = candidates.iter().find(|r| match event {
            CardEvent::Inserted => r.card_present,
            CardEvent::Removed => !r.card_present,
        });
        if let Some(r) = hit {
            return Ok((*r).clone());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(TransportError::WaitTimeout(timeout));
        }
        let mut states: Vec<pcsc::ReaderState> = candidates
            .iter()
            .map(|r| {
                let mut s = pcsc::ReaderState::new(
                    CString::new(r.name.clone()).unwrap_or_default(),
                    pcsc::State::UNAWARE,
                );
                // Learn the current state first so the blocking call waits for a change.
                s.sync_current_state();
                s
            })
            .collect();
        states.push(pcsc::ReaderState::new(pnp.to_owned(), pcsc::State::UNAWARE));
        // One non-blocking call to learn the current states, then block.
        let _ = ctx.get_status_change(Duration::ZERO, &mut states);
        for s in states.iter_mut() {
            s.sync_current_state();
        }
        let left = deadline
            .saturating_duration_since(now)
            .min(Duration::from_secs(1));
        match ctx.get_status_change(left, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(pcsc_err("wait for card", query.unwrap_or(""), e)),
        }
    }
}

/// Ends the waits of a [`CardWaiter`] or a [`ReaderWatch`] from another
/// thread, for good: the wait under way returns at once (SCardCancel on
/// the waiter's context), and every later wait returns before blocking.
/// A cancel that lands just before a wait blocks is caught by the flag
/// only if the wait has not yet checked it, so a caller that must be sure
/// cancels until the waiting thread has ended.
#[derive(Clone, Default)]
pub struct WaitCancel {
    inner: Arc<CancelInner>,
}

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    ctx: Mutex<Option<pcsc::Context>>,
}

impl WaitCancel {
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        if let Ok(ctx) = self.inner.ctx.lock() {
            if let Some(c) = ctx.as_ref() {
                let _ = c.cancel();
            }
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    fn register(&self, ctx: &pcsc::Context) {
        if let Ok(mut c) = self.inner.ctx.lock() {
            *c = Some(ctx.clone());
        }
    }
}

/// Waits for a card to arrive in or leave one reader. The waiter keeps one
/// PC/SC context and blocks in SCardGetStatusChange until pcscd reports a
/// change of the reader's state: no polling, one wake-up per event, so a
/// reader waiting for its next card costs no CPU. [`WaitCancel`] ends the
/// wait for shutdown.
pub struct CardWaiter {
    reader: String,
    cname: CString,
    ctx: Option<pcsc::Context>,
    cancel: WaitCancel,
}

impl CardWaiter {
    pub fn new(reader: &str) -> CardWaiter {
        CardWaiter {
            reader: reader.to_string(),
            cname: CString::new(reader.replace('\0', "")).unwrap_or_default(),
            ctx: None,
            cancel: WaitCancel::default(),
        }
    }

    /// The handle that ends this waiter's waits.
    pub fn canceller(&self) -> WaitCancel {
        self.cancel.clone()
    }

    fn context(&mut self) -> Result<pcsc::Context, TransportError> {
        if let Some(c) = &self.ctx {
            return Ok(c.clone());
        }
        let c = context()?;
        self.cancel.register(&c);
        self.ctx = Some(c.clone());
        Ok(c)
    }

    /// Wait up to `timeout` until `event` holds (at once if it already
    /// does): Ok(true) when it does, Ok(false) on timeout or cancel. A
    /// reader that goes away is [`TransportError::ReaderNotFound`].
    pub fn wait(&mut self, event: CardEvent, timeout: Duration) -> Result<bool, TransportError> {
        let ctx = self.context()?;
        let deadline = Instant::now().checked_add(timeout);
        let mut state = [pcsc::ReaderState::new(
            self.cname.clone(),
            pcsc::State::UNAWARE,
        )];
        loop {
            if self.cancel.is_cancelled() {
                return Ok(false);
            }
            // None: past any representable deadline, i.e. no limit.
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            match ctx.get_status_change(left, &mut state) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) | Err(pcsc::Error::Cancelled) => return Ok(false),
                Err(e) => {
                    if matches!(e, pcsc::Error::NoService | pcsc::Error::ServiceStopped) {
                        // A new pcscd needs a new context.
                        self.ctx = None;
                    }
                    return Err(pcsc_err("wait for card", &self.reader, e));
                }
            }
            let [s] = &mut state;
            let ev = s.event_state();
            if ev.intersects(pcsc::State::UNKNOWN | pcsc::State::IGNORE) {
                return Err(TransportError::ReaderNotFound {
                    query: self.reader.clone(),
                    available: "(reader went away)".into(),
                });
            }
            let present = ev.contains(pcsc::State::PRESENT);
            if present == (event == CardEvent::Inserted) {
                return Ok(true);
            }
            if left.is_some_and(|l| l.is_zero()) {
                return Ok(false);
            }
            s.sync_current_state();
        }
    }
}

/// Waits for readers to be plugged in or removed (the PnP notification
/// pseudo-reader), blocking in SCardGetStatusChange.
pub struct ReaderWatch {
    ctx: pcsc::Context,
    state: [pcsc::ReaderState; 1],
    cancel: WaitCancel,
}

impl ReaderWatch {
    /// Start watching: changes from now on end [`ReaderWatch::wait`].
    pub fn new(cancel: WaitCancel) -> Result<ReaderWatch, TransportError> {
        let ctx = context()?;
        cancel.register(&ctx);
        let pnp: &CStr = pcsc::PNP_NOTIFICATION();
        let mut state = [pcsc::ReaderState::new(pnp.to_owned(), pcsc::State::UNAWARE)];
        match ctx.get_status_change(Duration::ZERO, &mut state) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(pcsc_err("watch readers", "", e)),
        }
        let [s] = &mut state;
        s.sync_current_state();
        Ok(ReaderWatch { ctx, state, cancel })
    }

    /// Block until the set of readers changes (Ok(true)), or until
    /// cancelled (Ok(false)).
    pub fn wait(&mut self) -> Result<bool, TransportError> {
        if self.cancel.is_cancelled() {
            return Ok(false);
        }
        match self.ctx.get_status_change(None, &mut self.state) {
            Ok(()) => {
                let [s] = &mut self.state;
                s.sync_current_state();
                Ok(true)
            }
            Err(pcsc::Error::Cancelled) => Ok(false),
            Err(pcsc::Error::Timeout) => Ok(true),
            Err(e) => Err(pcsc_err("watch readers", "", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(i: usize, name: &str, card: bool) -> ReaderInfo {
        ReaderInfo {
            index: i,
            name: name.into(),
            card_present: card,
            in_use_exclusively: false,
            atr: None,
        }
    }

    #[test]
    fn reader_choice() {
        let rs = vec![
            r(0, "Virtual PCD 00 00", false),
            r(1, "Virtual PCD 00 01", true),
            r(2, "ACS ACR39U 01 00", false),
        ];
        assert_eq!(choose_reader(&rs, None).unwrap(), "Virtual PCD 00 01");
        assert_eq!(choose_reader(&rs, Some("0")).unwrap(), "Virtual PCD 00 00");
        assert_eq!(
            choose_reader(&rs, Some("acr39")).unwrap(),
            "ACS ACR39U 01 00"
        );
        assert_eq!(
            choose_reader(&rs, Some("Virtual PCD 00 01")).unwrap(),
            "Virtual PCD 00 01"
        );
        assert!(matches!(
            choose_reader(&rs, Some("virtual")),
            Err(TransportError::AmbiguousReader { .. })
        ));
        assert!(matches!(
            choose_reader(&rs, Some("7")),
            Err(TransportError::ReaderNotFound { .. })
        ));
        assert!(matches!(
            choose_reader(&rs, Some("gemalto")),
            Err(TransportError::ReaderNotFound { .. })
        ));
        assert!(matches!(
            choose_reader(&[], None),
            Err(TransportError::NoReaders)
        ));
    }
}
