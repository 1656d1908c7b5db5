//! Connects a simulated card to pcscd through the vsmartcard virtual reader.
//!
//! vpcd (Debian `vsmartcard-vpcd`) is a pcscd reader driver that listens on
//! TCP, port 35963 for slot 0 and 35964 for slot 1. A card "inserts" itself by
//! connecting; it is "removed" when the connection closes. Every message in
//! both directions is a 2-byte big-endian length followed by that many bytes.
//! A 1-byte message from vpcd is a control message: 00 power off, 01 power on,
//! 02 reset (none answered), 04 get ATR (answered with the ATR). Anything
//! longer is a command APDU, answered with the response APDU.
//!
//! The connector keeps the card and the socket apart: the card only sees
//! APDU bytes and power events. It reconnects when pcscd goes away and comes
//! back (pcscd restart), unless told not to, and honours [`Faults`].

use super::faults::{FaultAction, Faults};
use super::SimCard;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// TCP port of vpcd slot 0; slot n is at this plus n.
pub const VPCD_BASE_PORT: u16 = 35963;

/// A card shared between its connector and whoever inspects it (tests, the CLI).
pub type SharedCard = Arc<Mutex<SimCard>>;

pub fn slot_addr(slot: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], VPCD_BASE_PORT.saturating_add(slot)))
}

/// How to serve a card on a vpcd slot.
#[derive(Debug, Clone)]
pub struct VpcdOptions {
    pub addr: SocketAddr,
    pub faults: Faults,
    /// Reconnect when the connection drops (pcscd restarted). A removal
    /// fault always ends serving.
    pub reconnect: bool,
    /// Give up if vpcd cannot be reached for this long (None: keep trying).
    pub connect_timeout: Option<Duration>,
    /// Act like a card handler: when the host powers the card down after
    /// using it (at least one APDU), the card leaves the reader.
    pub eject_on_power_off: bool,
}

impl VpcdOptions {
    pub fn slot(slot: u16) -> VpcdOptions {
        VpcdOptions {
            addr: slot_addr(slot),
            faults: Faults::none(),
            reconnect: true,
            connect_timeout: Some(Duration::from_secs(10)),
            eject_on_power_off: false,
        }
    }
}

/// Why serving ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The stop flag was set; the card was removed cleanly.
    Stopped,
    /// A removal fault pulled the card when APDU number `at` arrived.
    Removed { at: u64 },
    /// vpcd closed the connection and `reconnect` was off.
    Disconnected,
    /// The host powered the card down after `apdus` APDUs and
    /// `eject_on_power_off` was set: the card handler took it out.
    Ejected { apdus: u64 },
}

/// Counters a caller can watch while the card is served.
#[derive(Debug, Default)]
pub struct Stats {
    pub apdus: std::sync::atomic::AtomicU64,
    pub connected: AtomicBool,
}

/// Serve `card` on vpcd until `stop` is set, a removal fault fires, or the
/// connection drops with `reconnect` off.
pub fn serve(
    card: &SharedCard,
    opts: &VpcdOptions,
    stop: &AtomicBool,
    stats: &Stats,
) -> io::Result<Ended> {
    loop {
        let Some(mut stream) = connect(opts, stop)? else {
            return Ok(Ended::Stopped);
        };
        stats.connected.store(true, Ordering::SeqCst);
        tracing::debug!("simulated card inserted at {}", opts.addr);
        let end = serve_connection(card, &mut stream, opts, stop, stats);
        stats.connected.store(false, Ordering::SeqCst);
        let _ = stream.shutdown(Shutdown::Both);
        match end {
            Ok(Ended::Disconnected) if opts.reconnect && !stop.load(Ordering::SeqCst) => {
                tracing::info!("vpcd at {} went away; reconnecting", opts.addr);
                if let Ok(mut c) = card.lock() {
                    c.power_off();
                }
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            other => return other,
        }
    }
}

fn connect(opts: &VpcdOptions, stop: &AtomicBool) -> io::Result<Option<TcpStream>> {
    let started = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        match TcpStream::connect_timeout(&opts.addr, Duration::from_millis(500)) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_millis(100)))?;
                return Ok(Some(s));
            }
            Err(e) => {
                if opts.connect_timeout.is_some_and(|t| started.elapsed() > t) {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "cannot reach vpcd at {} (is pcscd running with vsmartcard-vpcd installed?): {e}",
                            opts.addr
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Read exactly `buf.len()` bytes, checking the stop flag on every read timeout.
/// Ok(false) means the peer closed the connection or stop was requested.
fn read_full(stream: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let Some(rest) = buf.get_mut(got..) else {
            return Ok(true);
        };
        match stream.read(rest) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                got += n;
                quick_ack(stream);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// vpcd writes the 2-byte length and the payload as two segments. With
/// Nagle on its side and delayed ACKs on ours, the payload would wait ~40 ms
/// for our ACK of the length: acknowledge at once instead. The kernel turns
/// quick-ACK mode off again by itself, so this is set after every read.
fn quick_ack(stream: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
}

fn send(stream: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let len = u16::try_from(payload.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "response of {} bytes does not fit vpcd's 2-byte length",
                payload.len()
            ),
        )
    })?;
    let mut msg = Vec::with_capacity(2 + payload.len());
    msg.extend_from_slice(&len.to_be_bytes());
    msg.extend_from_slice(payload);
    stream.write_all(&msg)
}

fn serve_connection(
    card: &SharedCard,
    stream: &mut TcpStream,
    opts: &VpcdOptions,
    stop: &AtomicBool,
    stats: &Stats,
) -> io::Result<Ended> {
    let mut count: u64 = 0;
    let lock = || {
        card.lock()
            .map_err(|_| io::Error::other("simulated card state poisoned by a panic"))
    };
    loop {
        let mut len = [0u8; 2];
        if !read_full(stream, &mut len, stop)? {
            return Ok(if stop.load(Ordering::SeqCst) {
                Ended::Stopped
            } else {
                Ended::Disconnected
            });
        }
        let n = u16::from_be_bytes(len) as usize;
        let mut msg = vec![0u8; n];
        if !read_full(stream, &mut msg, stop)? {
            return Ok(if stop.load(Ordering::SeqCst) {
                Ended::Stopped
            } else {
                Ended::Disconnected
            });
        }
        match msg.as_slice() {
            [0x00] => {
                lock()?.power_off();
                if opts.eject_on_power_off && count > 0 {
                    return Ok(Ended::Ejected { apdus: count });
                }
            }
            [0x01] => lock()?.power_on(),
            [0x02] => lock()?.reset(),
            [0x04] => {
                let atr = lock()?.atr();
                send(stream, &atr)?;
            }
            [other] => tracing::warn!("unknown vpcd control byte {other:02X}; ignored"),
            apdu => {
                count += 1;
                stats.apdus.fetch_add(1, Ordering::SeqCst);
                match opts.faults.action_for(count) {
                    FaultAction::Remove => {
                        tracing::info!("fault: card pulled at APDU {count}");
                        return Ok(Ended::Removed { at: count });
                    }
                    FaultAction::Mute => continue,
                    FaultAction::Answer => {}
                }
                if let Some(d) = opts.faults.delay {
                    std::thread::sleep(d);
                }
                let (resp, cost) = {
                    let mut c = lock()?;
                    let r = c.transmit(apdu);
                    (r, c.take_cost())
                };
                if !cost.is_zero() {
                    std::thread::sleep(cost);
                }
                send(stream, &resp)?;
            }
        }
    }
}

/// A card served on a vpcd slot from a background thread; removed on drop.
pub struct VpcdCard {
    pub card: SharedCard,
    pub stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<io::Result<Ended>>>,
}

impl VpcdCard {
    /// Start serving and wait until vpcd has accepted the connection.
    pub fn start(card: SimCard, opts: VpcdOptions) -> io::Result<VpcdCard> {
        let card = Arc::new(Mutex::new(card));
        Self::start_shared(card, opts)
    }

    pub fn start_shared(card: SharedCard, opts: VpcdOptions) -> io::Result<VpcdCard> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let (c, s, st) = (card.clone(), stop.clone(), stats.clone());
        let timeout = opts.connect_timeout.unwrap_or(Duration::from_secs(10));
        let handle = std::thread::spawn(move || serve(&c, &opts, &s, &st));
        let started = Instant::now();
        while !stats.connected.load(Ordering::SeqCst) {
            if handle.is_finished() {
                return match handle.join() {
                    Ok(Err(e)) => Err(e),
                    _ => Err(io::Error::other("vpcd connector ended before connecting")),
                };
            }
            if started.elapsed() > timeout {
                stop.store(true, Ordering::SeqCst);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "timed out connecting to vpcd",
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(VpcdCard {
            card,
            stats,
            stop,
            handle: Some(handle),
        })
    }

    /// Whether the connector still runs (false after a removal fault).
    pub fn is_inserted(&self) -> bool {
        self.stats.connected.load(Ordering::SeqCst)
    }

    /// Remove the card and wait for the connector to end.
    pub fn remove(mut self) -> io::Result<Ended> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<Ended> {
        self.stop.store(true, Ordering::SeqCst);
        match self.handle.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("vpcd connector panicked"))),
            None => Ok(Ended::Stopped),
        }
    }
}

impl Drop for VpcdCard {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}
