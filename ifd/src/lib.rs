//! cardsmith-ifd: a pcsc-lite IFD handler (driver API v3) whose readers are
//! TCP ports speaking the vpcd protocol, so cardsmith's simulated cards can
//! sit in as many readers of the real pcscd as its reader table allows.
//!
//! pcscd loads the library once for every `/etc/reader.conf.d` entry that
//! names it and tells the readers apart by their Lun. It gives distinct Luns
//! (0x00000000, 0x00010000, ...) only to drivers that answer
//! `TAG_IFD_SIMULTANEOUS_ACCESS` with more than 1; otherwise every entry gets
//! Lun 0, which is why extra entries for vpcd's driver never see a card. All
//! state here is per Lun: a map from the full Lun to its [`reader::Reader`],
//! locked only to look a reader up. Each reader has its own locks, and
//! `TAG_IFD_THREAD_SAFE` = 1 tells pcscd to give each its own mutex, so
//! readers of this one library run in parallel.
//!
//! Each entry's `DEVICENAME` is the TCP address to listen on
//! (`127.0.0.1:35970`); a bare port or a `CHANNELID` (no `DEVICENAME`)
//! means that port on 127.0.0.1.
//!
//! Card events reach pcscd at once through the polling-thread API
//! (`TAG_IFD_POLLING_THREAD_WITH_TIMEOUT`), not on pcscd's 400 ms poll. The
//! polling thread is declared not killable, with a stop function instead:
//! pthread_cancel would unwind through Rust frames, which is undefined
//! behaviour.
//!
//! Every exported function catches panics and returns an error code; nothing
//! a client sends can panic (a malformed message removes the card).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod ffi;
mod reader;

use ffi::*;
use reader::{lock, Reader, Timeouts};
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Write a line to pcscd's stderr (seen when it runs with `-f`).
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log_line(format_args!($($arg)*))
    };
}
pub(crate) use log;

pub(crate) fn log_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "cardsmith-ifd: {args}");
}

/// The open readers, by Lun.
static READERS: Mutex<BTreeMap<Dword, Arc<Reader>>> = Mutex::new(BTreeMap::new());

fn reader(lun: Dword) -> Option<Arc<Reader>> {
    lock(&READERS).get(&lun).cloned()
}

/// Run `f`, turning a panic into `IFD_COMMUNICATION_ERROR`.
fn guard(f: impl FnOnce() -> ResponseCode) -> ResponseCode {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        log!("internal error (panic) caught at the driver boundary");
        IFD_COMMUNICATION_ERROR
    })
}

/// `host:port`, `[v6]:port`, or a bare port on 127.0.0.1.
fn parse_device(name: &str) -> Option<SocketAddr> {
    let name = name.trim();
    if let Ok(port) = name.parse::<u16>() {
        return Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    name.to_socket_addrs().ok()?.next()
}

fn open_channel(lun: Dword, addr: SocketAddr, timeouts: Timeouts) -> ResponseCode {
    let old = lock(&READERS).remove(&lun);
    if let Some(old) = old {
        old.close();
    }
    match Reader::open(addr, timeouts) {
        Ok(r) => {
            log!("Lun {lun:#x}: listening on {}", r.addr());
            lock(&READERS).insert(lun, r);
            IFD_SUCCESS
        }
        Err(e) => {
            log!("Lun {lun:#x}: cannot listen on {addr}: {e}");
            IFD_COMMUNICATION_ERROR
        }
    }
}

/// Copy `bytes` to a caller's buffer of `*len` bytes at `out` and set `*len`.
///
/// # Safety
/// `len` must be valid for reads and writes, `out` for `*len` bytes of
/// writes (or null).
unsafe fn put(len: *mut Dword, out: *mut u8, bytes: &[u8]) -> ResponseCode {
    // SAFETY: the caller guarantees `len` is valid.
    let cap = unsafe { *len };
    if usize::try_from(cap).map_or(true, |cap| cap < bytes.len()) {
        return IFD_ERROR_INSUFFICIENT_BUFFER;
    }
    if !bytes.is_empty() {
        if out.is_null() {
            return IFD_COMMUNICATION_ERROR;
        }
        // SAFETY: `out` holds `cap` >= `bytes.len()` bytes; no overlap with ours.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len()) };
    }
    // SAFETY: as above.
    unsafe { *len = bytes.len() as Dword };
    IFD_SUCCESS
}

type PollFn = extern "C" fn(Dword, c_int) -> ResponseCode;
type StopFn = extern "C" fn(Dword) -> ResponseCode;

/// pcscd's polling thread calls this in a loop (between presence checks):
/// return when the card comes or goes, or after `timeout_ms`.
extern "C" fn poll_card_event(lun: Dword, timeout_ms: c_int) -> ResponseCode {
    guard(|| {
        let Some(r) = reader(lun) else {
            return IFD_NO_SUCH_DEVICE;
        };
        let ms = u64::try_from(timeout_ms).unwrap_or(0);
        r.wait_for_change(Duration::from_millis(ms));
        IFD_SUCCESS
    })
}

/// pcscd calls this to make a running `poll_card_event` return (on
/// disconnect, to re-poll with a new timeout, and at reader removal).
extern "C" fn stop_polling(lun: Dword) -> ResponseCode {
    guard(|| {
        if let Some(r) = reader(lun) {
            r.wake_poll();
        }
        IFD_SUCCESS
    })
}

/// Open the reader `Lun` listening on the TCP address `DeviceName`.
///
/// # Safety
/// `device_name` must be null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn IFDHCreateChannelByName(
    lun: Dword,
    device_name: *mut c_char,
) -> ResponseCode {
    guard(|| {
        if device_name.is_null() {
            return IFD_COMMUNICATION_ERROR;
        }
        // SAFETY: non-null and NUL-terminated per the contract.
        let name = unsafe { CStr::from_ptr(device_name) }.to_string_lossy();
        match parse_device(&name) {
            Some(addr) => open_channel(lun, addr, Timeouts::default()),
            None => {
                log!("Lun {lun:#x}: DEVICENAME {name:?} is not host:port");
                IFD_NO_SUCH_DEVICE
            }
        }
    })
}

/// Open the reader `Lun` listening on 127.0.0.1, port `Channel`.
#[no_mangle]
pub extern "C" fn IFDHCreateChannel(lun: Dword, channel: Dword) -> ResponseCode {
    guard(|| match u16::try_from(channel) {
        Ok(port) if port != 0 => open_channel(
            lun,
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            Timeouts::default(),
        ),
        _ => {
            log!("Lun {lun:#x}: CHANNELID {channel:#x} is not a TCP port");
            IFD_NO_SUCH_DEVICE
        }
    })
}

/// Close the reader: the client is disconnected, the port freed.
#[no_mangle]
pub extern "C" fn IFDHCloseChannel(lun: Dword) -> ResponseCode {
    guard(|| {
        let r = lock(&READERS).remove(&lun);
        if let Some(r) = r {
            r.close();
        }
        IFD_SUCCESS
    })
}

/// # Safety
/// `length` must be valid for reads and writes, `value` for `*length`
/// bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn IFDHGetCapabilities(
    lun: Dword,
    tag: Dword,
    length: *mut Dword,
    value: *mut u8,
) -> ResponseCode {
    guard(|| {
        if length.is_null() {
            return IFD_COMMUNICATION_ERROR;
        }
        let with_reader = |f: &dyn Fn(&Reader) -> Vec<u8>| reader(lun).map(|r| f(&r));
        let bytes: Option<Vec<u8>> = match tag {
            TAG_IFD_ATR | SCARD_ATTR_ATR_STRING => with_reader(&|r| r.atr().unwrap_or_default()),
            SCARD_ATTR_ICC_PRESENCE => with_reader(&|r| vec![if r.is_present() { 2 } else { 0 }]),
            SCARD_ATTR_ICC_INTERFACE_STATUS => with_reader(&|r| vec![u8::from(r.is_powered())]),
            TAG_IFD_SLOTS_NUMBER => Some(vec![1]),
            TAG_IFD_THREAD_SAFE | TAG_IFD_SLOT_THREAD_SAFE => Some(vec![1]),
            // pcscd's whole reader table: the limit is pcscd's, not ours.
            TAG_IFD_SIMULTANEOUS_ACCESS => Some(vec![PCSCLITE_MAX_READERS_CONTEXTS]),
            TAG_IFD_POLLING_THREAD_WITH_TIMEOUT => {
                let f: PollFn = poll_card_event;
                Some((f as usize).to_ne_bytes().to_vec())
            }
            TAG_IFD_POLLING_THREAD_KILLABLE => Some(vec![0]),
            TAG_IFD_STOP_POLLING_THREAD => {
                let f: StopFn = stop_polling;
                Some((f as usize).to_ne_bytes().to_vec())
            }
            SCARD_ATTR_VENDOR_NAME => Some(b"cardsmith\0".to_vec()),
            SCARD_ATTR_VENDOR_IFD_TYPE => Some(b"cardsmith line reader (vpcd protocol)\0".to_vec()),
            _ => return IFD_ERROR_TAG,
        };
        match bytes {
            // SAFETY: pointer validity per this function's contract.
            Some(b) => unsafe { put(length, value, &b) },
            None => IFD_COMMUNICATION_ERROR,
        }
    })
}

/// Nothing is settable.
#[no_mangle]
pub extern "C" fn IFDHSetCapabilities(
    _lun: Dword,
    _tag: Dword,
    _length: Dword,
    _value: *mut u8,
) -> ResponseCode {
    IFD_ERROR_TAG
}

/// T=0 and T=1 are both "negotiated" at once: the wire carries APDUs.
#[no_mangle]
pub extern "C" fn IFDHSetProtocolParameters(
    lun: Dword,
    protocol: Dword,
    _flags: u8,
    _pts1: u8,
    _pts2: u8,
    _pts3: u8,
) -> ResponseCode {
    guard(|| match reader(lun) {
        None => IFD_COMMUNICATION_ERROR,
        Some(r) if !r.is_present() => IFD_COMMUNICATION_ERROR,
        Some(_) if protocol == SCARD_PROTOCOL_T0 || protocol == SCARD_PROTOCOL_T1 => IFD_SUCCESS,
        Some(_) => IFD_PROTOCOL_NOT_SUPPORTED,
    })
}

/// # Safety
/// `atr_length` must be null or valid for reads and writes, `atr` null or
/// valid for `*atr_length` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn IFDHPowerICC(
    lun: Dword,
    action: Dword,
    atr: *mut u8,
    atr_length: *mut Dword,
) -> ResponseCode {
    guard(|| {
        let cap = if atr_length.is_null() {
            0
        } else {
            // SAFETY: non-null, valid per the contract.
            unsafe { std::mem::replace(&mut *atr_length, 0) }
        };
        let Some(r) = reader(lun) else {
            return IFD_COMMUNICATION_ERROR;
        };
        let result = match action {
            IFD_POWER_DOWN => {
                return match r.power_down() {
                    Ok(()) => IFD_SUCCESS,
                    Err(_) => IFD_ERROR_POWER_ACTION,
                }
            }
            IFD_POWER_UP => r.power_up(),
            IFD_RESET => r.reset(),
            _ => return IFD_NOT_SUPPORTED,
        };
        match result {
            Ok(bytes) if !atr_length.is_null() => {
                // SAFETY: restore the caller's capacity, then `put` checks it.
                unsafe {
                    *atr_length = cap;
                    let rc = put(atr_length, atr, &bytes);
                    if rc != IFD_SUCCESS {
                        *atr_length = 0;
                    }
                    rc
                }
            }
            Ok(_) => IFD_COMMUNICATION_ERROR,
            Err(_) => IFD_ERROR_POWER_ACTION,
        }
    })
}

/// # Safety
/// `tx_buffer` must be valid for `tx_length` bytes of reads, `rx_length`
/// valid for reads and writes, `rx_buffer` valid for `*rx_length` bytes of
/// writes, `recv_pci` null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn IFDHTransmitToICC(
    lun: Dword,
    send_pci: ScardIoHeader,
    tx_buffer: *mut u8,
    tx_length: Dword,
    rx_buffer: *mut u8,
    rx_length: *mut Dword,
    recv_pci: *mut ScardIoHeader,
) -> ResponseCode {
    guard(|| {
        if rx_length.is_null() {
            return IFD_COMMUNICATION_ERROR;
        }
        // SAFETY: non-null, valid per the contract.
        let cap = unsafe { std::mem::replace(&mut *rx_length, 0) };
        let Ok(tx_len) = usize::try_from(tx_length) else {
            return IFD_COMMUNICATION_ERROR;
        };
        let apdu: &[u8] = if tx_len == 0 {
            &[]
        } else if tx_buffer.is_null() {
            return IFD_COMMUNICATION_ERROR;
        } else {
            // SAFETY: `tx_buffer` holds `tx_length` bytes per the contract.
            unsafe { std::slice::from_raw_parts(tx_buffer, tx_len) }
        };
        let Some(r) = reader(lun) else {
            return IFD_COMMUNICATION_ERROR;
        };
        match r.transmit(apdu) {
            Ok(resp) => {
                // SAFETY: restore the capacity; `put` checks it against the
                // response and `rx_buffer` is valid for it.
                let rc = unsafe {
                    *rx_length = cap;
                    let rc = put(rx_length, rx_buffer, &resp);
                    if rc != IFD_SUCCESS {
                        *rx_length = 0;
                    }
                    rc
                };
                if rc == IFD_SUCCESS && !recv_pci.is_null() {
                    // SAFETY: non-null, valid per the contract.
                    unsafe { *recv_pci = send_pci };
                }
                rc
            }
            Err(reader::Error::Absent) => IFD_ICC_NOT_PRESENT,
            Err(reader::Error::Timeout) => IFD_RESPONSE_TIMEOUT,
            Err(_) => IFD_COMMUNICATION_ERROR,
        }
    })
}

/// No reader features; `CM_IOCTL_GET_FEATURE_REQUEST` answers an empty list.
///
/// # Safety
/// `bytes_returned` must be null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn IFDHControl(
    _lun: Dword,
    control_code: Dword,
    _tx_buffer: *mut u8,
    _tx_length: Dword,
    _rx_buffer: *mut u8,
    _rx_length: Dword,
    bytes_returned: *mut Dword,
) -> ResponseCode {
    guard(|| {
        if !bytes_returned.is_null() {
            // SAFETY: non-null, valid per the contract.
            unsafe { *bytes_returned = 0 };
        }
        if control_code == CM_IOCTL_GET_FEATURE_REQUEST {
            IFD_SUCCESS
        } else {
            IFD_ERROR_NOT_SUPPORTED
        }
    })
}

#[no_mangle]
pub extern "C" fn IFDHICCPresence(lun: Dword) -> ResponseCode {
    guard(|| match reader(lun) {
        Some(r) if r.poll_presence() => IFD_ICC_PRESENT,
        Some(_) => IFD_ICC_NOT_PRESENT,
        None => IFD_COMMUNICATION_ERROR,
    })
}

#[cfg(test)]
mod tests;
