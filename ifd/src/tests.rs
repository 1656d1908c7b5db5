//! The driver through its C entry points, against scripted vpcd clients on
//! ephemeral ports (no pcscd involved).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A Lun no other test uses (tests run in parallel).
fn new_lun() -> Dword {
    static NEXT: AtomicU64 = AtomicU64::new(0x100);
    (NEXT.fetch_add(1, Ordering::SeqCst) << 16) as Dword
}

fn open(timeouts: Timeouts) -> (Dword, SocketAddr) {
    let lun = new_lun();
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    assert_eq!(open_channel(lun, any, timeouts), IFD_SUCCESS);
    (lun, reader(lun).unwrap().addr())
}

fn quick() -> Timeouts {
    Timeouts {
        handshake: Duration::from_millis(500),
        control: Duration::from_millis(500),
        response: Duration::from_millis(500),
        write: Duration::from_millis(500),
    }
}

/// The client side of the vpcd protocol, scripted by the test.
struct Client(TcpStream);

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Client(s)
    }

    /// Connect and answer the ATR request: a card goes in.
    fn insert(addr: SocketAddr, atr: &[u8]) -> Client {
        let mut c = Client::connect(addr);
        assert_eq!(c.recv(), [0x04]);
        c.send(atr);
        c
    }

    fn recv(&mut self) -> Vec<u8> {
        let mut len = [0u8; 2];
        self.0.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.0.read_exact(&mut buf).unwrap();
        buf
    }

    fn send(&mut self, payload: &[u8]) {
        let mut msg = (payload.len() as u16).to_be_bytes().to_vec();
        msg.extend_from_slice(payload);
        self.0.write_all(&msg).unwrap();
    }

    /// Answer power on + get ATR, as pcscd's power up causes.
    fn serve_power_up(&mut self, atr: &[u8]) {
        assert_eq!(self.recv(), [0x01]);
        assert_eq!(self.recv(), [0x04]);
        self.send(atr);
    }

    /// True when the reader closed the connection.
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.0.read(&mut b), Ok(0) | Err(_))
    }
}

const ATR: &[u8] = &[0x3B, 0x80, 0x80, 0x01, 0x01];

fn presence(lun: Dword) -> ResponseCode {
    IFDHICCPresence(lun)
}

/// Wait (through the polling function) until presence is `want`.
fn wait_presence(lun: Dword, want: ResponseCode) -> Duration {
    let t0 = Instant::now();
    while presence(lun) != want {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "presence never became {want}"
        );
        poll_card_event(lun, 2000);
    }
    t0.elapsed()
}

fn power_up(lun: Dword) -> (ResponseCode, Vec<u8>) {
    let mut atr = [0u8; MAX_ATR_SIZE];
    let mut len = atr.len() as Dword;
    let rc = unsafe { IFDHPowerICC(lun, IFD_POWER_UP, atr.as_mut_ptr(), &mut len) };
    (rc, atr[..len as usize].to_vec())
}

fn transmit(lun: Dword, apdu: &[u8]) -> (ResponseCode, Vec<u8>) {
    let mut rx = vec![0u8; 300];
    let mut rx_len = rx.len() as Dword;
    let pci = ScardIoHeader {
        protocol: SCARD_PROTOCOL_T1,
        length: 16,
    };
    let mut recv_pci = ScardIoHeader {
        protocol: 0,
        length: 0,
    };
    let mut tx = apdu.to_vec();
    let rc = unsafe {
        IFDHTransmitToICC(
            lun,
            pci,
            tx.as_mut_ptr(),
            tx.len() as Dword,
            rx.as_mut_ptr(),
            &mut rx_len,
            &mut recv_pci,
        )
    };
    rx.truncate(rx_len as usize);
    (rc, rx)
}

fn cap(lun: Dword, tag: Dword, size: usize) -> (ResponseCode, Vec<u8>) {
    let mut buf = vec![0u8; size];
    let mut len = size as Dword;
    let rc = unsafe { IFDHGetCapabilities(lun, tag, &mut len, buf.as_mut_ptr()) };
    buf.truncate(len as usize);
    (rc, buf)
}

#[test]
fn capabilities_pcscd_asks_for() {
    let (lun, _) = open(quick());
    assert_eq!(cap(lun, TAG_IFD_SLOTS_NUMBER, 1), (IFD_SUCCESS, vec![1]));
    assert_eq!(cap(lun, TAG_IFD_THREAD_SAFE, 1), (IFD_SUCCESS, vec![1]));
    assert_eq!(
        cap(lun, TAG_IFD_SLOT_THREAD_SAFE, 1),
        (IFD_SUCCESS, vec![1])
    );
    assert_eq!(
        cap(lun, TAG_IFD_SIMULTANEOUS_ACCESS, 1),
        (IFD_SUCCESS, vec![16])
    );
    assert_eq!(
        cap(lun, TAG_IFD_POLLING_THREAD_KILLABLE, 1),
        (IFD_SUCCESS, vec![0])
    );
    let (rc, f) = cap(lun, TAG_IFD_POLLING_THREAD_WITH_TIMEOUT, 8);
    assert_eq!((rc, f.len()), (IFD_SUCCESS, std::mem::size_of::<PollFn>()));
    let (rc, f) = cap(lun, TAG_IFD_STOP_POLLING_THREAD, 8);
    assert_eq!((rc, f.len()), (IFD_SUCCESS, std::mem::size_of::<StopFn>()));
    // The pointer handed out is the polling function itself.
    let p = usize::from_ne_bytes(
        cap(lun, TAG_IFD_POLLING_THREAD_WITH_TIMEOUT, 8)
            .1
            .try_into()
            .unwrap(),
    );
    assert_eq!(p, poll_card_event as PollFn as usize);
    assert_eq!(cap(lun, 0x1234, 8).0, IFD_ERROR_TAG);
    assert_eq!(
        cap(lun, SCARD_ATTR_VENDOR_NAME, 2).0,
        IFD_ERROR_INSUFFICIENT_BUFFER
    );
    assert_eq!(cap(lun, TAG_IFD_ATR, 33), (IFD_SUCCESS, vec![]));
    assert_eq!(cap(lun, SCARD_ATTR_ICC_PRESENCE, 1), (IFD_SUCCESS, vec![0]));
    let mut n: Dword = 99;
    let rc = unsafe {
        IFDHControl(
            lun,
            CM_IOCTL_GET_FEATURE_REQUEST,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            0,
            &mut n,
        )
    };
    assert_eq!((rc, n), (IFD_SUCCESS, 0));
    assert_eq!(IFDHCloseChannel(lun), IFD_SUCCESS);
    assert_eq!(presence(lun), IFD_COMMUNICATION_ERROR);
}

#[test]
fn insert_power_transmit_remove() {
    let (lun, addr) = open(quick());
    assert_eq!(presence(lun), IFD_ICC_NOT_PRESENT);
    assert_eq!(transmit(lun, &[0, 0xA4, 0, 0]).0, IFD_ICC_NOT_PRESENT);

    let mut c = Client::insert(addr, ATR);
    // The polling function returns at the insertion, not at its timeout.
    let waited = wait_presence(lun, IFD_ICC_PRESENT);
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    assert_eq!(cap(lun, TAG_IFD_ATR, 33), (IFD_SUCCESS, ATR.to_vec()));
    // Not powered yet: no APDU goes out.
    assert_eq!(transmit(lun, &[0, 0xA4, 0, 0]).0, IFD_COMMUNICATION_ERROR);

    let t = std::thread::spawn(move || {
        c.serve_power_up(ATR);
        assert_eq!(c.recv(), [0x00, 0x84, 0x00, 0x00, 0x08]);
        c.send(&[1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00]);
        assert_eq!(c.recv(), [0x00]); // power off
        c
    });
    assert_eq!(power_up(lun), (IFD_SUCCESS, ATR.to_vec()));
    assert_eq!(
        transmit(lun, &[0x00, 0x84, 0x00, 0x00, 0x08]),
        (IFD_SUCCESS, vec![1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00])
    );
    let rc = unsafe {
        IFDHPowerICC(
            lun,
            IFD_POWER_DOWN,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, IFD_SUCCESS);
    let c = t.join().unwrap();

    // The client goes away: the card is removed, and the poll sees it at once.
    assert_eq!(presence(lun), IFD_ICC_PRESENT);
    drop(c);
    let waited = wait_presence(lun, IFD_ICC_NOT_PRESENT);
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    assert_eq!(transmit(lun, &[0, 0xA4, 0, 0]).0, IFD_ICC_NOT_PRESENT);

    // A new client is a new card.
    let _c = Client::insert(addr, ATR);
    wait_presence(lun, IFD_ICC_PRESENT);
    assert_eq!(IFDHCloseChannel(lun), IFD_SUCCESS);
}

#[test]
fn polling_function_times_out_and_can_be_stopped() {
    let (lun, _) = open(quick());
    assert_eq!(presence(lun), IFD_ICC_NOT_PRESENT);
    let t0 = Instant::now();
    assert_eq!(poll_card_event(lun, 100), IFD_SUCCESS);
    assert!(t0.elapsed() >= Duration::from_millis(100));
    let t = std::thread::spawn(move || {
        let t0 = Instant::now();
        poll_card_event(lun, 60_000);
        t0.elapsed()
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(stop_polling(lun), IFD_SUCCESS);
    assert!(t.join().unwrap() < Duration::from_secs(5));
    // Closing the reader also ends a running poll.
    let t = std::thread::spawn(move || {
        let t0 = Instant::now();
        poll_card_event(lun, 60_000);
        t0.elapsed()
    });
    std::thread::sleep(Duration::from_millis(100));
    IFDHCloseChannel(lun);
    assert!(t.join().unwrap() < Duration::from_secs(5));
    assert_eq!(poll_card_event(lun, 10), IFD_NO_SUCH_DEVICE);
}

#[test]
fn misbehaving_clients_are_cards_removed() {
    let (lun, addr) = open(quick());
    // An ATR longer than 33 bytes: rejected, connection closed.
    let mut c = Client::connect(addr);
    assert_eq!(c.recv(), [0x04]);
    c.send(&[0x3B; 40]);
    assert!(c.closed());
    assert_eq!(presence(lun), IFD_ICC_NOT_PRESENT);

    // No answer to the ATR request: dropped after the handshake timeout.
    let mut c = Client::connect(addr);
    assert_eq!(c.recv(), [0x04]);
    assert!(c.closed());

    // Unsolicited message: the card is removed.
    let mut c = Client::insert(addr, ATR);
    wait_presence(lun, IFD_ICC_PRESENT);
    c.send(&[0x90, 0x00]);
    wait_presence(lun, IFD_ICC_NOT_PRESENT);
    assert!(c.closed());

    // Mute card: the transmit times out, the card is removed.
    let mut c = Client::insert(addr, ATR);
    wait_presence(lun, IFD_ICC_PRESENT);
    let t = std::thread::spawn(move || {
        c.serve_power_up(ATR);
        assert_eq!(c.recv().len(), 5);
        c
    });
    assert_eq!(power_up(lun).0, IFD_SUCCESS);
    let t0 = Instant::now();
    assert_eq!(transmit(lun, &[0, 0x84, 0, 0, 8]).0, IFD_RESPONSE_TIMEOUT);
    assert!(t0.elapsed() < Duration::from_secs(3));
    let mut c = t.join().unwrap();
    assert!(c.closed());
    wait_presence(lun, IFD_ICC_NOT_PRESENT);

    // Half a message, then silence: same.
    let mut c = Client::insert(addr, ATR);
    wait_presence(lun, IFD_ICC_PRESENT);
    let t = std::thread::spawn(move || {
        c.serve_power_up(ATR);
        c.recv();
        c.0.write_all(&[0x01, 0x00, 0x90]).unwrap();
        c
    });
    assert_eq!(power_up(lun).0, IFD_SUCCESS);
    assert_eq!(transmit(lun, &[0, 0x84, 0, 0, 8]).0, IFD_RESPONSE_TIMEOUT);
    assert!(t.join().unwrap().closed());

    // A 1-byte command would read as a control message: refused, card stays.
    let mut c = Client::insert(addr, ATR);
    wait_presence(lun, IFD_ICC_PRESENT);
    let t = std::thread::spawn(move || {
        c.serve_power_up(ATR);
        c
    });
    assert_eq!(power_up(lun).0, IFD_SUCCESS);
    let _c = t.join().unwrap();
    assert_eq!(transmit(lun, &[0x04]).0, IFD_COMMUNICATION_ERROR);
    assert_eq!(presence(lun), IFD_ICC_PRESENT);
    IFDHCloseChannel(lun);
}

#[test]
fn response_too_big_for_the_buffer() {
    let (lun, addr) = open(quick());
    let mut c = Client::insert(addr, ATR);
    wait_presence(lun, IFD_ICC_PRESENT);
    let t = std::thread::spawn(move || {
        c.serve_power_up(ATR);
        c.recv();
        c.send(&[0xAB; 400]);
        c
    });
    assert_eq!(power_up(lun).0, IFD_SUCCESS);
    assert_eq!(
        transmit(lun, &[0, 0xB0, 0, 0, 0]),
        (IFD_ERROR_INSUFFICIENT_BUFFER, vec![])
    );
    let _c = t.join().unwrap();
    IFDHCloseChannel(lun);
}

#[test]
fn second_client_waits_for_the_slot() {
    let (lun, addr) = open(quick());
    let first = Client::insert(addr, ATR);
    wait_presence(lun, IFD_ICC_PRESENT);
    let mut second = Client::connect(addr);
    // Not asked for its ATR while the first card is in.
    second
        .0
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut b = [0u8; 1];
    assert!(
        second.0.read(&mut b).is_err(),
        "second client served too early"
    );
    drop(first);
    second
        .0
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(second.recv(), [0x04]);
    second.send(ATR);
    // pcscd sees the removal and the new insertion.
    let t0 = Instant::now();
    loop {
        let p = presence(lun);
        if p == IFD_ICC_PRESENT && reader(lun).unwrap().is_present() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5));
        poll_card_event(lun, 1000);
    }
    IFDHCloseChannel(lun);
}

#[test]
fn close_frees_the_port_and_disconnects_the_client() {
    let (lun, addr) = open(quick());
    let mut c = Client::insert(addr, ATR);
    wait_presence(lun, IFD_ICC_PRESENT);
    let t0 = Instant::now();
    assert_eq!(IFDHCloseChannel(lun), IFD_SUCCESS);
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(c.closed());
    // Same Lun, same port again (as after a pcscd reload).
    assert_eq!(open_channel(lun, addr, quick()), IFD_SUCCESS);
    let _c = Client::insert(addr, ATR);
    wait_presence(lun, IFD_ICC_PRESENT);
    // Opening a Lun that is open replaces it.
    assert_eq!(open_channel(lun, addr, quick()), IFD_SUCCESS);
    assert_eq!(presence(lun), IFD_ICC_NOT_PRESENT);
    IFDHCloseChannel(lun);
    // A port another reader holds cannot be opened.
    let (other, busy) = open(quick());
    assert_eq!(
        open_channel(new_lun(), busy, quick()),
        IFD_COMMUNICATION_ERROR
    );
    IFDHCloseChannel(other);
}

#[test]
fn device_names() {
    assert_eq!(
        parse_device("127.0.0.1:35970"),
        Some("127.0.0.1:35970".parse().unwrap())
    );
    assert_eq!(
        parse_device(" 35971 "),
        Some("127.0.0.1:35971".parse().unwrap())
    );
    assert_eq!(
        parse_device("[::1]:35972"),
        Some("[::1]:35972".parse().unwrap())
    );
    assert_eq!(parse_device("/dev/null"), None);
    let name = std::ffi::CString::new("not an address").unwrap();
    let rc = unsafe { IFDHCreateChannelByName(new_lun(), name.as_ptr().cast_mut()) };
    assert_eq!(rc, IFD_NO_SUCH_DEVICE);
    assert_eq!(
        unsafe { IFDHCreateChannelByName(new_lun(), std::ptr::null_mut()) },
        IFD_COMMUNICATION_ERROR
    );
    assert_eq!(IFDHCreateChannel(new_lun(), 0x1_0000), IFD_NO_SUCH_DEVICE);
}

/// Readers are independent: a slow card on one does not delay another.
#[test]
fn readers_run_in_parallel() {
    const READERS: usize = 4;
    const DELAY: Duration = Duration::from_millis(200);
    let mut luns = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..READERS {
        let (lun, addr) = open(Timeouts::default());
        let mut c = Client::insert(addr, ATR);
        wait_presence(lun, IFD_ICC_PRESENT);
        clients.push(std::thread::spawn(move || {
            c.serve_power_up(ATR);
            let apdu = c.recv();
            std::thread::sleep(DELAY);
            c.send(&[apdu[1], 0x90, 0x00]);
            c
        }));
        assert_eq!(power_up(lun).0, IFD_SUCCESS);
        luns.push(lun);
    }
    let t0 = Instant::now();
    let senders: Vec<_> = luns
        .iter()
        .enumerate()
        .map(|(i, &lun)| std::thread::spawn(move || transmit(lun, &[0x00, i as u8, 0, 0])))
        .collect();
    for (i, s) in senders.into_iter().enumerate() {
        assert_eq!(s.join().unwrap(), (IFD_SUCCESS, vec![i as u8, 0x90, 0x00]));
    }
    let took = t0.elapsed();
    assert!(took < DELAY * 2, "{READERS} readers took {took:?}");
    for c in clients {
        drop(c.join().unwrap());
    }
    for lun in luns {
        IFDHCloseChannel(lun);
    }
}
