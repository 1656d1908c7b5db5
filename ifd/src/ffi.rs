//! C types and constants of the pcsc-lite IFD handler API v3, as the
//! headers of pcsc-lite 1.9.9 define them for Linux (`PCSC/wintypes.h`,
//! `PCSC/pcsclite.h`, `PCSC/ifdhandler.h`, `PCSC/reader.h`).
//!
//! Outside macOS, `DWORD` is `unsigned long` and `RESPONSECODE` is `long`:
//! both 64 bits wide on 64-bit Linux, so they map to `c_ulong`/`c_long`.

use std::os::raw::{c_long, c_ulong};

/// `DWORD`: `unsigned long`.
pub type Dword = c_ulong;
/// `RESPONSECODE`: `long`.
pub type ResponseCode = c_long;

/// `SCARD_IO_HEADER`, passed by value to `IFDHTransmitToICC`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ScardIoHeader {
    pub protocol: Dword,
    pub length: Dword,
}

/// `MAX_ATR_SIZE` (pcsclite.h).
pub const MAX_ATR_SIZE: usize = 33;
/// `PCSCLITE_MAX_READERS_CONTEXTS` (pcsclite.h): pcscd's fixed table of
/// reader contexts, shared by all drivers.
pub const PCSCLITE_MAX_READERS_CONTEXTS: u8 = 16;

pub const SCARD_PROTOCOL_T0: Dword = 0x0001;
pub const SCARD_PROTOCOL_T1: Dword = 0x0002;

// Capability tags (ifdhandler.h).
pub const TAG_IFD_ATR: Dword = 0x0303;
pub const TAG_IFD_SLOT_THREAD_SAFE: Dword = 0x0FAC;
pub const TAG_IFD_THREAD_SAFE: Dword = 0x0FAD;
pub const TAG_IFD_SLOTS_NUMBER: Dword = 0x0FAE;
pub const TAG_IFD_SIMULTANEOUS_ACCESS: Dword = 0x0FAF;
pub const TAG_IFD_POLLING_THREAD_KILLABLE: Dword = 0x0FB1;
pub const TAG_IFD_STOP_POLLING_THREAD: Dword = 0x0FB2;
pub const TAG_IFD_POLLING_THREAD_WITH_TIMEOUT: Dword = 0x0FB3;

// SCardGetAttrib attributes (reader.h), passed through by pcscd.
/// `SCARD_ATTR_VALUE(class, tag)`.
const fn attr(class: Dword, tag: Dword) -> Dword {
    (class << 16) | tag
}
pub const SCARD_ATTR_VENDOR_NAME: Dword = attr(1, 0x0100);
pub const SCARD_ATTR_VENDOR_IFD_TYPE: Dword = attr(1, 0x0101);
pub const SCARD_ATTR_ICC_PRESENCE: Dword = attr(9, 0x0300);
pub const SCARD_ATTR_ICC_INTERFACE_STATUS: Dword = attr(9, 0x0301);
pub const SCARD_ATTR_ATR_STRING: Dword = attr(9, 0x0303);

/// `CM_IOCTL_GET_FEATURE_REQUEST` = `SCARD_CTL_CODE(3400)` (reader.h).
pub const CM_IOCTL_GET_FEATURE_REQUEST: Dword = 0x4200_0000 + 3400;

// IFDHPowerICC actions.
pub const IFD_POWER_UP: Dword = 500;
pub const IFD_POWER_DOWN: Dword = 501;
pub const IFD_RESET: Dword = 502;

// Return codes.
pub const IFD_SUCCESS: ResponseCode = 0;
pub const IFD_ERROR_TAG: ResponseCode = 600;
pub const IFD_ERROR_POWER_ACTION: ResponseCode = 608;
pub const IFD_ERROR_NOT_SUPPORTED: ResponseCode = 606;
pub const IFD_PROTOCOL_NOT_SUPPORTED: ResponseCode = 607;
pub const IFD_COMMUNICATION_ERROR: ResponseCode = 612;
pub const IFD_RESPONSE_TIMEOUT: ResponseCode = 613;
pub const IFD_NOT_SUPPORTED: ResponseCode = 614;
pub const IFD_ICC_PRESENT: ResponseCode = 615;
pub const IFD_ICC_NOT_PRESENT: ResponseCode = 616;
pub const IFD_NO_SUCH_DEVICE: ResponseCode = 617;
pub const IFD_ERROR_INSUFFICIENT_BUFFER: ResponseCode = 618;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    fn c_layout_on_64_bit_linux() {
        assert_eq!(std::mem::size_of::<Dword>(), 8);
        assert_eq!(std::mem::size_of::<ResponseCode>(), 8);
        assert_eq!(std::mem::size_of::<ScardIoHeader>(), 16);
        assert_eq!(SCARD_ATTR_ATR_STRING, 0x0009_0303);
        assert_eq!(CM_IOCTL_GET_FEATURE_REQUEST, 0x4200_0D48);
    }
}
