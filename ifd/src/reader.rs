//! One simulated reader: the server side of the vpcd protocol on a TCP port.
//!
//! Wire format (the same as vsmartcard's vpcd, so cardsmith's simulated-card
//! client connects unchanged): every message in both directions is a 2-byte
//! big-endian length and that many bytes. A 1-byte message from the reader
//! is a control message (00 power off, 01 power on, 02 reset, 04 get ATR);
//! only "get ATR" is answered. A longer message is a command APDU, answered
//! by the response APDU.
//!
//! A card is present while a client is connected that answered the ATR
//! request it gets on connecting. One client at a time: the reader thread
//! accepts the next connection only when the current one has ended, so a
//! second client waits in the listen backlog like a card waiting to go in.
//!
//! Locking: `state` is held only for short bookkeeping, never across socket
//! I/O, so presence checks and pcscd's polling thread never wait for a slow
//! card. `io` serialises exchanges on this one reader. Readers share nothing.

use crate::log;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const POWER_OFF: u8 = 0x00;
const POWER_ON: u8 = 0x01;
const RESET: u8 = 0x02;
const GET_ATR: u8 = 0x04;

/// Longest ATR the IFD API can carry (`MAX_ATR_SIZE`).
const MAX_ATR: usize = crate::ffi::MAX_ATR_SIZE;

/// How long the reader waits for its client.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A client that connects must answer the ATR request within this.
    pub handshake: Duration,
    /// The ATR after power on or reset.
    pub control: Duration,
    /// A response APDU. A client that misses it is disconnected (the card
    /// counts as removed): a late answer could no longer be matched.
    pub response: Duration,
    /// Sending one message.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            handshake: Duration::from_secs(5),
            control: Duration::from_secs(5),
            response: Duration::from_secs(15),
            write: Duration::from_secs(5),
        }
    }
}

/// Why an operation on the card failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// No card (no client), or not the card that was powered up.
    Absent,
    /// The card was present but is not powered.
    Unpowered,
    /// The connection broke during the exchange; the card is gone now.
    Lost,
    /// The client did not answer in time; it has been disconnected.
    Timeout,
    /// The caller's message cannot be sent (too long, or 0/1 bytes which
    /// the wire would read as a control message).
    BadCommand,
}

pub struct Reader {
    addr: SocketAddr,
    timeouts: Timeouts,
    state: Mutex<State>,
    /// Signalled on every change of `state`.
    changed: Condvar,
    io: Mutex<()>,
    closing: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    conn: Option<Conn>,
    /// A connection being asked for its ATR (so close() can cut it short).
    handshaking: Option<Arc<TcpStream>>,
    next_id: u64,
    /// The connection `poll_presence` last reported present.
    reported: Option<u64>,
    /// The connection powered up by the last power up / reset.
    powered: Option<u64>,
    /// pcscd asked its polling call to return (TAG_IFD_STOP_POLLING_THREAD).
    wake_poll: bool,
    /// An exchange waits for the client's answer.
    awaiting: bool,
    reply: Option<Vec<u8>>,
}

struct Conn {
    id: u64,
    stream: Arc<TcpStream>,
    atr: Vec<u8>,
}

/// Lock, ignoring poisoning: every panic is caught at the API boundary and
/// the state stays consistent between statements that could panic.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Reader {
    /// Listen on `addr` (std sets SO_REUSEADDR) and start the reader thread.
    pub fn open(addr: SocketAddr, timeouts: Timeouts) -> io::Result<Arc<Reader>> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let reader = Arc::new(Reader {
            addr,
            timeouts,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            io: Mutex::new(()),
            closing: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let r = reader.clone();
        let handle = std::thread::Builder::new()
            .name(format!("cardsmith-{}", addr.port()))
            .spawn(move || r.serve(listener))?;
        *lock(&reader.thread) = Some(handle);
        Ok(reader)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    fn serve(&self, listener: TcpListener) {
        let run =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.accept_loop(&listener)));
        if run.is_err() {
            log!(
                "{}: reader thread panicked; no more cards on this reader",
                self.addr
            );
        }
        self.end_conn(None);
    }

    fn accept_loop(&self, listener: &TcpListener) {
        while !self.is_closing() {
            let stream = match listener.accept() {
                Ok((s, _)) => Arc::new(s),
                Err(e) => {
                    if !self.is_closing() {
                        log!("{}: accept failed: {e}", self.addr);
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    continue;
                }
            };
            lock(&self.state).handshaking = Some(stream.clone());
            // close() sets `closing` before it takes the state lock: either
            // it saw `handshaking` and shut the socket, or we see `closing`.
            if self.is_closing() {
                break;
            }
            let atr = handshake(&stream, &self.timeouts);
            lock(&self.state).handshaking = None;
            let atr = match atr {
                Ok(atr) => atr,
                Err(e) => {
                    log!("{}: client rejected: {e}", self.addr);
                    let _ = stream.shutdown(Shutdown::Both);
                    continue;
                }
            };
            let id = self.install(stream.clone(), atr);
            if self.is_closing() {
                self.end_conn(Some(id));
                break;
            }
            let why = self.read_loop(id, &stream);
            self.end_conn(Some(id));
            log!("{}: card removed ({why})", self.addr);
        }
    }

    fn install(&self, stream: Arc<TcpStream>, atr: Vec<u8>) -> u64 {
        let mut st = lock(&self.state);
        st.next_id += 1;
        let id = st.next_id;
        st.conn = Some(Conn { id, stream, atr });
        st.awaiting = false;
        st.reply = None;
        drop(st);
        self.changed.notify_all();
        id
    }

    /// End connection `id` (None: whichever is current): the card is removed.
    fn end_conn(&self, id: Option<u64>) {
        let mut st = lock(&self.state);
        if st
            .conn
            .as_ref()
            .is_some_and(|c| id.is_none_or(|id| c.id == id))
        {
            if let Some(c) = st.conn.take() {
                let _ = c.stream.shutdown(Shutdown::Both);
            }
            st.awaiting = false;
            st.reply = None;
        }
        drop(st);
        self.changed.notify_all();
    }

    /// Read the client's messages until the connection ends; hand each to
    /// the exchange waiting for it. Returns why it ended.
    fn read_loop(&self, id: u64, stream: &TcpStream) -> String {
        loop {
            let read = read_frame(stream, None, usize::from(u16::MAX));
            let mut st = lock(&self.state);
            if st.conn.as_ref().map(|c| c.id) != Some(id) {
                return "connection ended by the reader".into();
            }
            let msg = match read {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return "client disconnected".into()
                }
                Err(e) => return format!("connection failed: {e}"),
            };
            if !st.awaiting {
                return format!("unsolicited {}-byte message from the client", msg.len());
            }
            st.awaiting = false;
            st.reply = Some(msg);
            drop(st);
            self.changed.notify_all();
        }
    }

    /// Send `msg` to the current client (which must be connection `expect`
    /// when given); with `reply`, wait that long for its answer. The caller
    /// holds `io`. Returns the connection used and the answer (empty when
    /// none was asked for).
    fn exchange(
        &self,
        expect: Option<u64>,
        msg: &[u8],
        reply: Option<Duration>,
    ) -> Result<(u64, Vec<u8>), Error> {
        let (id, stream) = {
            let mut st = lock(&self.state);
            let conn = st.conn.as_ref().ok_or(Error::Absent)?;
            if expect.is_some_and(|e| e != conn.id) {
                return Err(Error::Absent);
            }
            let found = (conn.id, conn.stream.clone());
            st.awaiting = reply.is_some();
            st.reply = None;
            found
        };
        if let Err(e) = write_frame(&stream, msg) {
            log!("{}: sending to the client failed: {e}", self.addr);
            self.end_conn(Some(id));
            return Err(Error::Lost);
        }
        let Some(timeout) = reply else {
            return Ok((id, Vec::new()));
        };
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.state);
        loop {
            if st.conn.as_ref().map(|c| c.id) != Some(id) {
                return Err(Error::Lost);
            }
            if let Some(r) = st.reply.take() {
                return Ok((id, r));
            }
            let now = Instant::now();
            if now >= deadline {
                st.awaiting = false;
                drop(st);
                log!(
                    "{}: no answer within {timeout:?}; disconnecting the client",
                    self.addr
                );
                self.end_conn(Some(id));
                return Err(Error::Timeout);
            }
            st = match self.changed.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Power on (`POWER_ON`) or reset (`RESET`) the card and read its ATR.
    fn power(&self, action: u8) -> Result<Vec<u8>, Error> {
        let _io = lock(&self.io);
        let (id, _) = self.exchange(None, &[action], None)?;
        let (_, atr) = self.exchange(Some(id), &[GET_ATR], Some(self.timeouts.control))?;
        if atr.is_empty() || atr.len() > MAX_ATR {
            log!("{}: client sent a {}-byte ATR", self.addr, atr.len());
            self.end_conn(Some(id));
            return Err(Error::Lost);
        }
        let mut st = lock(&self.state);
        match st.conn.as_mut() {
            Some(c) if c.id == id => {
                c.atr = atr.clone();
                st.powered = Some(id);
                Ok(atr)
            }
            _ => Err(Error::Lost),
        }
    }

    pub fn power_up(&self) -> Result<Vec<u8>, Error> {
        self.power(POWER_ON)
    }

    pub fn reset(&self) -> Result<Vec<u8>, Error> {
        self.power(RESET)
    }

    /// Power the card off. With no card (or a card that just went) there
    /// is nothing to power off, which is not an error.
    pub fn power_down(&self) -> Result<(), Error> {
        let _io = lock(&self.io);
        lock(&self.state).powered = None;
        match self.exchange(None, &[POWER_OFF], None) {
            Ok(_) | Err(Error::Absent) | Err(Error::Lost) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Send a command APDU to the powered card and return its response.
    pub fn transmit(&self, apdu: &[u8]) -> Result<Vec<u8>, Error> {
        if apdu.len() < 2 || apdu.len() > usize::from(u16::MAX) {
            return Err(Error::BadCommand);
        }
        let _io = lock(&self.io);
        let (current, powered) = {
            let st = lock(&self.state);
            (st.conn.as_ref().map(|c| c.id), st.powered)
        };
        match (current, powered) {
            (None, _) => Err(Error::Absent),
            (Some(c), Some(p)) if c == p => self
                .exchange(Some(c), apdu, Some(self.timeouts.response))
                .map(|(_, r)| r),
            // pcscd powered a card that has since been replaced.
            (Some(_), Some(_)) => Err(Error::Absent),
            (Some(_), None) => Err(Error::Unpowered),
        }
    }

    /// Presence as pcscd's IFDHICCPresence asks for it. A card replaced
    /// between two calls is reported absent once, so pcscd sees a removal
    /// and an insertion rather than a silent swap.
    pub fn poll_presence(&self) -> bool {
        let mut st = lock(&self.state);
        let current = st.conn.as_ref().map(|c| c.id);
        let present = match (current, st.reported) {
            (Some(c), Some(r)) if c != r => {
                st.reported = None;
                false
            }
            (Some(c), _) => {
                st.reported = Some(c);
                true
            }
            (None, _) => {
                st.reported = None;
                false
            }
        };
        drop(st);
        present
    }

    /// Whether a card is present, without touching what pcscd was told.
    pub fn is_present(&self) -> bool {
        lock(&self.state).conn.is_some()
    }

    /// Whether the present card is powered.
    pub fn is_powered(&self) -> bool {
        let st = lock(&self.state);
        st.conn.as_ref().is_some_and(|c| st.powered == Some(c.id))
    }

    /// The present card's ATR.
    pub fn atr(&self) -> Option<Vec<u8>> {
        lock(&self.state).conn.as_ref().map(|c| c.atr.clone())
    }

    /// pcscd's polling thread: return when presence differs from what
    /// `poll_presence` last said, when pcscd asks ([`Reader::wake_poll`]),
    /// when the reader closes, or after `timeout`.
    pub fn wait_for_change(&self, timeout: Duration) {
        let deadline = Instant::now().checked_add(timeout);
        let mut st = lock(&self.state);
        loop {
            if st.wake_poll {
                st.wake_poll = false;
                return;
            }
            if self.is_closing() || st.conn.as_ref().map(|c| c.id) != st.reported {
                return;
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return;
            }
            st = match self.changed.wait_timeout(st, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Make the current (or next) `wait_for_change` return now.
    pub fn wake_poll(&self) {
        lock(&self.state).wake_poll = true;
        self.changed.notify_all();
    }

    /// Stop: drop the client, stop listening, end the reader thread.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        {
            let mut st = lock(&self.state);
            if let Some(c) = st.conn.take() {
                let _ = c.stream.shutdown(Shutdown::Both);
            }
            if let Some(s) = st.handshaking.take() {
                let _ = s.shutdown(Shutdown::Both);
            }
            st.awaiting = false;
            st.reply = None;
        }
        self.changed.notify_all();
        // A blocking accept() returns only for a connection: make one.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        let handle = lock(&self.thread).take();
        if let Some(h) = handle {
            let started = Instant::now();
            while !h.is_finished() && started.elapsed() < Duration::from_secs(3) {
                std::thread::sleep(Duration::from_millis(5));
            }
            if h.is_finished() {
                let _ = h.join();
            } else {
                // Harmless: the library is linked NODELETE, so the thread's
                // code stays mapped; it ends on its next wake-up.
                log!("{}: reader thread did not stop in time", self.addr);
            }
        }
    }
}

/// Ask a new client for its ATR.
fn handshake(stream: &TcpStream, t: &Timeouts) -> io::Result<Vec<u8>> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(t.write))?;
    write_frame(stream, &[GET_ATR])?;
    let atr = read_frame(stream, Some(Instant::now() + t.handshake), MAX_ATR)?;
    if atr.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "empty ATR"));
    }
    stream.set_read_timeout(None)?;
    Ok(atr)
}

fn write_frame(mut stream: &TcpStream, payload: &[u8]) -> io::Result<()> {
    let len = u16::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too long"))?;
    let mut msg = Vec::with_capacity(2 + payload.len());
    msg.extend_from_slice(&len.to_be_bytes());
    msg.extend_from_slice(payload);
    // One write: no Nagle/delayed-ACK stall between length and payload.
    stream.write_all(&msg)
}

/// Read one message of at most `max` bytes, by `deadline` if given.
fn read_frame(stream: &TcpStream, deadline: Option<Instant>, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    read_exact_by(stream, &mut len, deadline)?;
    let n = usize::from(u16::from_be_bytes(len));
    if n > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{n}-byte message where at most {max} fit"),
        ));
    }
    let mut buf = vec![0u8; n];
    read_exact_by(stream, &mut buf, deadline)?;
    Ok(buf)
}

fn read_exact_by(
    mut stream: &TcpStream,
    buf: &mut [u8],
    deadline: Option<Instant>,
) -> io::Result<()> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "client too slow"));
            }
            stream.set_read_timeout(Some(left))?;
        }
        match stream.read(rest) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ) && deadline.is_some() => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
