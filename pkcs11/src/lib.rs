//! `cardsmith-pkcs11`: a PKCS#11 v2.40 module for national ID cards
//! personalized by cardsmith, so that browsers, mail clients, document
//! signers, OpenSSL and ssh can use the holder's keys (docs/pkcs11.md).
//!
//! - `lib.rs` (this file): the C entry points and the function list. Every
//!   entry point runs inside `catch_unwind` (nothing unwinds into C), takes
//!   the one global lock (CKF_OS_LOCKING_OK), checks its pointers and turns
//!   them into safe calls.
//! - [`module`]: slots, tokens, sessions, login, objects, signing.
//! - [`card`]: what is asked of the card, one PC/SC transaction each.
//! - [`objects`]: the objects' attributes.
//! - [`profiles`]: where the card profiles come from.
//!
//! PINs arrive in wiped buffers, go to the card as secret command data
//! (redacted in any trace) and are never logged; the module logs nothing.

#![allow(non_snake_case)]
// No panic reachable from a card or a caller: outside tests, no indexing
// or slicing that can go out of bounds, no unwrap, no expect.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]
#![allow(clippy::missing_safety_doc)]

pub mod card;
pub mod module;
pub mod objects;
pub mod profiles;

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};

use cryptoki_sys::*;
use zeroize::Zeroizing;

use module::{Module, R};
use objects::Attr;

static STATE: Mutex<Option<Module>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<Module>> {
    // A panic is caught at the entry point; the state stays usable.
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run `f`; a panic becomes CKR_GENERAL_ERROR instead of unwinding into C.
fn guard(f: impl FnOnce() -> CK_RV) -> CK_RV {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(CKR_GENERAL_ERROR)
}

/// Run `f` on the initialized module.
fn with(f: impl FnOnce(&mut Module) -> R<()>) -> CK_RV {
    guard(|| {
        let mut g = lock();
        match g.as_mut() {
            None => CKR_CRYPTOKI_NOT_INITIALIZED,
            Some(m) => match f(m) {
                Ok(()) => CKR_OK,
                Err(rv) => rv,
            },
        }
    })
}

/// `*p`, or CKR_ARGUMENTS_BAD for a null pointer.
unsafe fn out<'a, T>(p: *mut T) -> R<&'a mut T> {
    // SAFETY: the caller passes a pointer to a valid T or null.
    unsafe { p.as_mut() }.ok_or(CKR_ARGUMENTS_BAD)
}

/// The `len` bytes at `p` (null only with length 0).
unsafe fn input<'a>(p: *const u8, len: CK_ULONG) -> R<&'a [u8]> {
    let n = usize::try_from(len).map_err(|_| CKR_ARGUMENTS_BAD)?;
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: the caller gives `len` readable bytes at `p`.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// The PKCS#11 output convention for a list: a null buffer asks for the
/// count; a short one gets the count and CKR_BUFFER_TOO_SMALL.
unsafe fn put_list<T: Copy>(items: &[T], p: *mut T, count: *mut CK_ULONG) -> R<()> {
    let count = unsafe { out(count) }?;
    let n = items.len() as CK_ULONG;
    if p.is_null() {
        *count = n;
        return Ok(());
    }
    if *count < n {
        *count = n;
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: the caller's buffer holds `*count` >= n items.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), p, items.len()) };
    *count = n;
    Ok(())
}

/// Copy `s` into a blank-padded fixed-size PKCS#11 text field, cut at a
/// character boundary.
fn pad(field: &mut [u8], s: &str) {
    field.fill(b' ');
    let mut end = s.len().min(field.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    if let (Some(dst), Some(src)) = (field.get_mut(..end), s.as_bytes().get(..end)) {
        dst.copy_from_slice(src);
    }
}

const VERSION: CK_VERSION = CK_VERSION { major: 0, minor: 1 };

// ---- general purpose ------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn C_Initialize(args: *mut c_void) -> CK_RV {
    guard(|| {
        if !args.is_null() {
            // SAFETY: a non-null argument is a CK_C_INITIALIZE_ARGS.
            let a = unsafe { &*(args as *const CK_C_INITIALIZE_ARGS) };
            if !a.pReserved.is_null() {
                return CKR_ARGUMENTS_BAD;
            }
            let given = [
                a.CreateMutex.is_some(),
                a.DestroyMutex.is_some(),
                a.LockMutex.is_some(),
                a.UnlockMutex.is_some(),
            ];
            if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
                return CKR_ARGUMENTS_BAD;
            }
            // The module locks with the operating system's primitives
            // whatever the application offers: it is always thread-safe.
        }
        let mut g = lock();
        if g.is_some() {
            return CKR_CRYPTOKI_ALREADY_INITIALIZED;
        }
        let env = std::env::var(profiles::ENV).ok();
        match profiles::load(env.as_deref()) {
            Ok(p) => {
                *g = Some(Module::new(p));
                CKR_OK
            }
            Err(e) => {
                // A configuration error, never secret: say which file and
                // key, since the application only sees the code.
                eprintln!("cardsmith-pkcs11: {e}");
                CKR_GENERAL_ERROR
            }
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    guard(|| {
        if !reserved.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        let mut g = lock();
        match g.take() {
            Some(mut m) => {
                m.finalize();
                CKR_OK
            }
            None => CKR_CRYPTOKI_NOT_INITIALIZED,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    with(|_| {
        let info = unsafe { out(info) }?;
        info.cryptokiVersion = CK_VERSION {
            major: 2,
            minor: 40,
        };
        pad(&mut info.manufacturerID, "cardsmith");
        info.flags = 0;
        pad(&mut info.libraryDescription, "cardsmith national ID card");
        info.libraryVersion = VERSION;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(pp: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard(|| match unsafe { out(pp) } {
        Ok(p) => {
            *p = &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST;
            CKR_OK
        }
        Err(rv) => rv,
    })
}

// ---- slots and tokens -----------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn C_GetSlotList(
    token_present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    with(|m| {
        if count.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let ids = m.slot_list(token_present != CK_FALSE);
        unsafe { put_list(&ids, list, count) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetSlotInfo(id: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    with(|m| {
        let info = unsafe { out(info) }?;
        let slot = m.slot(id)?;
        pad(&mut info.slotDescription, &slot.reader);
        pad(&mut info.manufacturerID, "PC/SC");
        info.flags = CKF_REMOVABLE_DEVICE
            | CKF_HW_SLOT
            | if slot.token.is_some() {
                CKF_TOKEN_PRESENT
            } else {
                0
            };
        info.hardwareVersion = CK_VERSION { major: 0, minor: 0 };
        info.firmwareVersion = CK_VERSION { major: 0, minor: 0 };
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetTokenInfo(id: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    with(|m| {
        let info = unsafe { out(info) }?;
        let (serial, status) = m.token_info(id)?;
        let serial_hex = cardsmith_host::hex::compact(&serial);
        pad(&mut info.label, &format!("cardsmith {serial_hex}"));
        pad(&mut info.manufacturerID, "cardsmith");
        pad(&mut info.model, "cardsmith card");
        pad(&mut info.serialNumber, &serial_hex);
        let mut flags = CKF_WRITE_PROTECTED | CKF_LOGIN_REQUIRED | CKF_TOKEN_INITIALIZED;
        if let Some(s) = status {
            if s.initialized {
                flags |= CKF_USER_PIN_INITIALIZED;
            }
            if s.count_low {
                flags |= CKF_USER_PIN_COUNT_LOW;
            }
            if s.final_try {
                flags |= CKF_USER_PIN_FINAL_TRY;
            }
            if s.locked {
                flags |= CKF_USER_PIN_LOCKED;
            }
        }
        info.flags = flags;
        info.ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
        info.ulSessionCount = CK_UNAVAILABLE_INFORMATION;
        info.ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
        info.ulRwSessionCount = CK_UNAVAILABLE_INFORMATION;
        info.ulMaxPinLen = module::MAX_PIN as CK_ULONG;
        info.ulMinPinLen = 1;
        info.ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
        info.ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
        info.ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
        info.ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
        info.hardwareVersion = CK_VERSION { major: 0, minor: 0 };
        info.firmwareVersion = CK_VERSION { major: 0, minor: 0 };
        info.utcTime.fill(b' ');
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismList(
    id: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    with(|m| {
        if count.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        if m.slot(id)?.token.is_none() {
            return Err(CKR_TOKEN_NOT_PRESENT);
        }
        unsafe { put_list(&objects::MECHANISMS, list, count) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismInfo(
    id: CK_SLOT_ID,
    mech: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    with(|m| {
        let info = unsafe { out(info) }?;
        if m.slot(id)?.token.is_none() {
            return Err(CKR_TOKEN_NOT_PRESENT);
        }
        if !objects::MECHANISMS.contains(&mech) {
            return Err(CKR_MECHANISM_INVALID);
        }
        info.ulMinKeySize = 256;
        info.ulMaxKeySize = 256;
        info.flags = CKF_HW | CKF_SIGN | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_InitToken(
    id: CK_SLOT_ID,
    _pin: *mut CK_UTF8CHAR,
    _len: CK_ULONG,
    _label: *mut CK_UTF8CHAR,
) -> CK_RV {
    with(|m| {
        m.slot(id)?;
        Err(CKR_TOKEN_WRITE_PROTECTED)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_InitPIN(
    h: CK_SESSION_HANDLE,
    _pin: *mut CK_UTF8CHAR,
    _len: CK_ULONG,
) -> CK_RV {
    with(|m| {
        m.check(h)?;
        Err(CKR_TOKEN_WRITE_PROTECTED)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SetPIN(
    h: CK_SESSION_HANDLE,
    _old: *mut CK_UTF8CHAR,
    _old_len: CK_ULONG,
    _new: *mut CK_UTF8CHAR,
    _new_len: CK_ULONG,
) -> CK_RV {
    // PINs are changed and unblocked at a counter (cardsmith activate).
    with(|m| {
        m.check(h)?;
        Err(CKR_TOKEN_WRITE_PROTECTED)
    })
}

// ---- sessions -------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn C_OpenSession(
    id: CK_SLOT_ID,
    flags: CK_FLAGS,
    _app: *mut c_void,
    _notify: CK_NOTIFY,
    ph: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    with(|m| {
        let ph = unsafe { out(ph) }?;
        *ph = m.open_session(id, flags)?;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_CloseSession(h: CK_SESSION_HANDLE) -> CK_RV {
    with(|m| m.close_session(h))
}

#[no_mangle]
pub unsafe extern "C" fn C_CloseAllSessions(id: CK_SLOT_ID) -> CK_RV {
    with(|m| m.close_all(id))
}

#[no_mangle]
pub unsafe extern "C" fn C_GetSessionInfo(
    h: CK_SESSION_HANDLE,
    info: *mut CK_SESSION_INFO,
) -> CK_RV {
    with(|m| {
        let info = unsafe { out(info) }?;
        let (slot, state, flags) = m.session_info(h)?;
        info.slotID = slot;
        info.state = state;
        info.flags = flags;
        info.ulDeviceError = 0;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Login(
    h: CK_SESSION_HANDLE,
    user_type: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    len: CK_ULONG,
) -> CK_RV {
    with(|m| {
        // Into a buffer that is wiped when it goes.
        let pin = Zeroizing::new(unsafe { input(pin, len) }?.to_vec());
        m.login(h, user_type, pin)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Logout(h: CK_SESSION_HANDLE) -> CK_RV {
    with(|m| m.logout(h))
}

// ---- objects --------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn C_GetAttributeValue(
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    with(|m| {
        let n = usize::try_from(count).map_err(|_| CKR_ARGUMENTS_BAD)?;
        if template.is_null() && n > 0 {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let get = m.attributes(h, o)?;
        let mut rv = CKR_OK;
        for i in 0..n {
            // SAFETY: the caller's template holds `count` attributes.
            let a = unsafe { &mut *template.add(i) };
            match get(a.type_) {
                Attr::Value(v) => {
                    let len = v.len() as CK_ULONG;
                    if a.pValue.is_null() {
                        a.ulValueLen = len;
                    } else if a.ulValueLen < len {
                        a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        rv = CKR_BUFFER_TOO_SMALL;
                    } else {
                        // SAFETY: pValue holds ulValueLen >= len bytes.
                        unsafe {
                            std::ptr::copy_nonoverlapping(v.as_ptr(), a.pValue as *mut u8, v.len())
                        };
                        a.ulValueLen = len;
                    }
                }
                Attr::Sensitive => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = CKR_ATTRIBUTE_SENSITIVE;
                }
                Attr::Invalid => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = CKR_ATTRIBUTE_TYPE_INVALID;
                }
            }
        }
        if rv == CKR_OK {
            Ok(())
        } else {
            Err(rv)
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsInit(
    h: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    with(|m| {
        let n = usize::try_from(count).map_err(|_| CKR_ARGUMENTS_BAD)?;
        if template.is_null() && n > 0 {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let mut want = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: the caller's template holds `count` attributes.
            let a = unsafe { &*template.add(i) };
            let v = unsafe { input(a.pValue as *const u8, a.ulValueLen) }?;
            want.push((a.type_, v.to_vec()));
        }
        m.find_init(h, &want)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_FindObjects(
    h: CK_SESSION_HANDLE,
    ph: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    with(|m| {
        let count = unsafe { out(count) }?;
        let max = usize::try_from(max).map_err(|_| CKR_ARGUMENTS_BAD)?;
        if ph.is_null() && max > 0 {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let found = m.find(h, max)?;
        // SAFETY: the caller's array holds `max` >= found.len() handles.
        unsafe { std::ptr::copy_nonoverlapping(found.as_ptr(), ph, found.len()) };
        *count = found.len() as CK_ULONG;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsFinal(h: CK_SESSION_HANDLE) -> CK_RV {
    with(|m| m.find_final(h))
}

// ---- signing --------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn C_SignInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    with(|m| {
        let mech = unsafe { out(mech) }?;
        let has_param = !mech.pParameter.is_null() || mech.ulParameterLen != 0;
        m.sign_init(h, mech.mechanism, has_param, key)
    })
}

/// The signature into the caller's buffer; a length query or a short
/// buffer leaves the operation active and the card untouched.
unsafe fn finish_sign(
    m: &mut Module,
    h: CK_SESSION_HANDLE,
    last: *const u8,
    last_len: CK_ULONG,
    sig: *mut u8,
    sig_len: *mut CK_ULONG,
) -> R<()> {
    m.sign_active(h)?;
    let (sig_len, data) = match (unsafe { out(sig_len) }, unsafe { input(last, last_len) }) {
        (Ok(l), Ok(d)) => (l, d),
        (Err(rv), _) | (_, Err(rv)) => {
            m.sign_end(h);
            return Err(rv);
        }
    };
    let need = module::SIGNATURE_LEN as CK_ULONG;
    if sig.is_null() {
        *sig_len = need;
        return Ok(());
    }
    if *sig_len < need {
        *sig_len = need;
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    let s = m.sign_final(h, data)?;
    // SAFETY: the caller's buffer holds `*sig_len` >= 64 bytes.
    unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), sig, s.len()) };
    *sig_len = s.len() as CK_ULONG;
    Ok(())
}

#[no_mangle]
pub unsafe extern "C" fn C_Sign(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    with(|m| unsafe { finish_sign(m, h, data, len, sig, sig_len) })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignUpdate(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    with(|m| {
        m.sign_active(h)?;
        let r = unsafe { input(data, len) }.and_then(|d| m.sign_update(h, d));
        if r.is_err() {
            m.sign_end(h);
        }
        r
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignFinal(
    h: CK_SESSION_HANDLE,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    with(|m| unsafe { finish_sign(m, h, std::ptr::null(), 0, sig, sig_len) })
}

// ---- what a read-only signing token does not do ---------------------------

/// A session function the token does not offer: the session is checked
/// first, so a bad handle is still CKR_SESSION_HANDLE_INVALID.
fn unsupported(h: CK_SESSION_HANDLE, rv: CK_RV) -> CK_RV {
    with(|m| {
        m.check(h)?;
        Err(rv)
    })
}

macro_rules! not_supported {
    ($rv:expr => $( fn $name:ident ( $( $arg:ident : $ty:ty ),* ); )*) => {
        $(
            #[no_mangle]
            pub unsafe extern "C" fn $name(h: CK_SESSION_HANDLE, $( $arg: $ty ),*) -> CK_RV {
                $( let _ = $arg; )*
                unsupported(h, $rv)
            }
        )*
    };
}

not_supported! { CKR_TOKEN_WRITE_PROTECTED =>
    fn C_CreateObject(t: *mut CK_ATTRIBUTE, n: CK_ULONG, o: *mut CK_OBJECT_HANDLE);
    fn C_CopyObject(o: CK_OBJECT_HANDLE, t: *mut CK_ATTRIBUTE, n: CK_ULONG, p: *mut CK_OBJECT_HANDLE);
    fn C_DestroyObject(o: CK_OBJECT_HANDLE);
    fn C_SetAttributeValue(o: CK_OBJECT_HANDLE, t: *mut CK_ATTRIBUTE, n: CK_ULONG);
    fn C_GenerateKey(m: *mut CK_MECHANISM, t: *mut CK_ATTRIBUTE, n: CK_ULONG, o: *mut CK_OBJECT_HANDLE);
    fn C_GenerateKeyPair(m: *mut CK_MECHANISM, t: *mut CK_ATTRIBUTE, n: CK_ULONG, t2: *mut CK_ATTRIBUTE, n2: CK_ULONG, o: *mut CK_OBJECT_HANDLE, o2: *mut CK_OBJECT_HANDLE);
    fn C_UnwrapKey(m: *mut CK_MECHANISM, k: CK_OBJECT_HANDLE, w: *mut CK_BYTE, wl: CK_ULONG, t: *mut CK_ATTRIBUTE, n: CK_ULONG, o: *mut CK_OBJECT_HANDLE);
    fn C_DeriveKey(m: *mut CK_MECHANISM, k: CK_OBJECT_HANDLE, t: *mut CK_ATTRIBUTE, n: CK_ULONG, o: *mut CK_OBJECT_HANDLE);
}

not_supported! { CKR_FUNCTION_NOT_SUPPORTED =>
    fn C_GetOperationState(s: *mut CK_BYTE, l: *mut CK_ULONG);
    fn C_SetOperationState(s: *mut CK_BYTE, l: CK_ULONG, e: CK_OBJECT_HANDLE, a: CK_OBJECT_HANDLE);
    fn C_GetObjectSize(o: CK_OBJECT_HANDLE, l: *mut CK_ULONG);
    fn C_EncryptInit(m: *mut CK_MECHANISM, k: CK_OBJECT_HANDLE);
    fn C_Encrypt(d: *mut CK_BYTE, l: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_EncryptUpdate(d: *mut CK_BYTE, l: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_EncryptFinal(o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_DecryptInit(m: *mut CK_MECHANISM, k: CK_OBJECT_HANDLE);
    fn C_Decrypt(d: *mut CK_BYTE, l: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_DecryptUpdate(d: *mut CK_BYTE, l: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_DecryptFinal(o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_DigestInit(m: *mut CK_MECHANISM);
    fn C_Digest(d: *mut CK_BYTE, l: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_DigestUpdate(d: *mut CK_BYTE, l: CK_ULONG);
    fn C_DigestKey(k: CK_OBJECT_HANDLE);
    fn C_DigestFinal(o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_SignRecoverInit(m: *mut CK_MECHANISM, k: CK_OBJECT_HANDLE);
    fn C_SignRecover(d: *mut CK_BYTE, l: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_VerifyInit(m: *mut CK_MECHANISM, k: CK_OBJECT_HANDLE);
    fn C_Verify(d: *mut CK_BYTE, l: CK_ULONG, s: *mut CK_BYTE, sl: CK_ULONG);
    fn C_VerifyUpdate(d: *mut CK_BYTE, l: CK_ULONG);
    fn C_VerifyFinal(s: *mut CK_BYTE, sl: CK_ULONG);
    fn C_VerifyRecoverInit(m: *mut CK_MECHANISM, k: CK_OBJECT_HANDLE);
    fn C_VerifyRecover(s: *mut CK_BYTE, sl: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_DigestEncryptUpdate(d: *mut CK_BYTE, l: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_DecryptDigestUpdate(d: *mut CK_BYTE, l: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_SignEncryptUpdate(d: *mut CK_BYTE, l: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_DecryptVerifyUpdate(d: *mut CK_BYTE, l: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_WrapKey(m: *mut CK_MECHANISM, w: CK_OBJECT_HANDLE, k: CK_OBJECT_HANDLE, o: *mut CK_BYTE, ol: *mut CK_ULONG);
    fn C_SeedRandom(s: *mut CK_BYTE, l: CK_ULONG);
    fn C_GenerateRandom(o: *mut CK_BYTE, l: CK_ULONG);
}

not_supported! { CKR_FUNCTION_NOT_PARALLEL =>
    fn C_GetFunctionStatus();
    fn C_CancelFunction();
}

#[no_mangle]
pub unsafe extern "C" fn C_WaitForSlotEvent(
    _flags: CK_FLAGS,
    _slot: *mut CK_SLOT_ID,
    _r: *mut c_void,
) -> CK_RV {
    with(|_| Err(CKR_FUNCTION_NOT_SUPPORTED))
}

static FUNCTION_LIST: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
    version: CK_VERSION {
        major: 2,
        minor: 40,
    },
    C_Initialize: Some(C_Initialize),
    C_Finalize: Some(C_Finalize),
    C_GetInfo: Some(C_GetInfo),
    C_GetFunctionList: Some(C_GetFunctionList),
    C_GetSlotList: Some(C_GetSlotList),
    C_GetSlotInfo: Some(C_GetSlotInfo),
    C_GetTokenInfo: Some(C_GetTokenInfo),
    C_GetMechanismList: Some(C_GetMechanismList),
    C_GetMechanismInfo: Some(C_GetMechanismInfo),
    C_InitToken: Some(C_InitToken),
    C_InitPIN: Some(C_InitPIN),
    C_SetPIN: Some(C_SetPIN),
    C_OpenSession: Some(C_OpenSession),
    C_CloseSession: Some(C_CloseSession),
    C_CloseAllSessions: Some(C_CloseAllSessions),
    C_GetSessionInfo: Some(C_GetSessionInfo),
    C_GetOperationState: Some(C_GetOperationState),
    C_SetOperationState: Some(C_SetOperationState),
    C_Login: Some(C_Login),
    C_Logout: Some(C_Logout),
    C_CreateObject: Some(C_CreateObject),
    C_CopyObject: Some(C_CopyObject),
    C_DestroyObject: Some(C_DestroyObject),
    C_GetObjectSize: Some(C_GetObjectSize),
    C_GetAttributeValue: Some(C_GetAttributeValue),
    C_SetAttributeValue: Some(C_SetAttributeValue),
    C_FindObjectsInit: Some(C_FindObjectsInit),
    C_FindObjects: Some(C_FindObjects),
    C_FindObjectsFinal: Some(C_FindObjectsFinal),
    C_EncryptInit: Some(C_EncryptInit),
    C_Encrypt: Some(C_Encrypt),
    C_EncryptUpdate: Some(C_EncryptUpdate),
    C_EncryptFinal: Some(C_EncryptFinal),
    C_DecryptInit: Some(C_DecryptInit),
    C_Decrypt: Some(C_Decrypt),
    C_DecryptUpdate: Some(C_DecryptUpdate),
    C_DecryptFinal: Some(C_DecryptFinal),
    C_DigestInit: Some(C_DigestInit),
    C_Digest: Some(C_Digest),
    C_DigestUpdate: Some(C_DigestUpdate),
    C_DigestKey: Some(C_DigestKey),
    C_DigestFinal: Some(C_DigestFinal),
    C_SignInit: Some(C_SignInit),
    C_Sign: Some(C_Sign),
    C_SignUpdate: Some(C_SignUpdate),
    C_SignFinal: Some(C_SignFinal),
    C_SignRecoverInit: Some(C_SignRecoverInit),
    C_SignRecover: Some(C_SignRecover),
    C_VerifyInit: Some(C_VerifyInit),
    C_Verify: Some(C_Verify),
    C_VerifyUpdate: Some(C_VerifyUpdate),
    C_VerifyFinal: Some(C_VerifyFinal),
    C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
    C_VerifyRecover: Some(C_VerifyRecover),
    C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
    C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
    C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
    C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
    C_GenerateKey: Some(C_GenerateKey),
    C_GenerateKeyPair: Some(C_GenerateKeyPair),
    C_WrapKey: Some(C_WrapKey),
    C_UnwrapKey: Some(C_UnwrapKey),
    C_DeriveKey: Some(C_DeriveKey),
    C_SeedRandom: Some(C_SeedRandom),
    C_GenerateRandom: Some(C_GenerateRandom),
    C_GetFunctionStatus: Some(C_GetFunctionStatus),
    C_CancelFunction: Some(C_CancelFunction),
    C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_code_and_the_state_stays_usable() {
        assert_eq!(guard(|| CKR_OK), CKR_OK);
        let rv = guard(|| {
            let _g = lock();
            panic!("inside the lock");
        });
        assert_eq!(rv, CKR_GENERAL_ERROR);
        // The poisoned lock is taken again; no entry point is stuck.
        assert!(lock().is_none());
        let mut n: CK_ULONG = 0;
        assert_eq!(
            unsafe { C_GetSlotList(CK_TRUE, std::ptr::null_mut(), &mut n) },
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
    }

    #[test]
    fn text_fields_are_blank_padded_and_cut_at_a_character() {
        let mut f = [0u8; 8];
        pad(&mut f, "ab");
        assert_eq!(&f, b"ab      ");
        pad(&mut f, "cardsmith card");
        assert_eq!(&f, b"cardsmit");
        pad(&mut f, "کارت ملی");
        assert!(std::str::from_utf8(f.as_slice()).is_ok());
    }
}
