//! The PKCS#11 function table of the built module, loaded with dlopen as
//! an application loads it, with small helpers for the calls the tests
//! make; shared by the C API tests (one card OS per test binary: the
//! module's state is per process).
#![allow(dead_code)]

use std::ffi::c_void;
use std::ptr::null_mut;

use cryptoki_sys::*;

pub struct P11 {
    pub f: &'static CK_FUNCTION_LIST,
    _lib: cryptoki_sys::Pkcs11,
}

macro_rules! call {
    ($p:expr, $name:ident ( $($arg:expr),* )) => {
        unsafe { ($p.f.$name.expect(stringify!($name)))($($arg),*) }
    };
}

impl P11 {
    pub fn load() -> P11 {
        let lib =
            unsafe { cryptoki_sys::Pkcs11::new(super::support::module_path()) }.expect("dlopen");
        assert_eq!(
            unsafe { lib.C_GetFunctionList(null_mut()) },
            CKR_ARGUMENTS_BAD
        );
        let mut f: *mut CK_FUNCTION_LIST = null_mut();
        assert_eq!(unsafe { lib.C_GetFunctionList(&mut f) }, CKR_OK);
        P11 {
            f: unsafe { &*f },
            _lib: lib,
        }
    }

    pub fn slot_of(&self, reader: &str) -> CK_SLOT_ID {
        let mut n: CK_ULONG = 0;
        assert_eq!(
            call!(self, C_GetSlotList(CK_FALSE, null_mut(), &mut n)),
            CKR_OK
        );
        let mut ids = vec![0; n as usize];
        assert_eq!(
            call!(self, C_GetSlotList(CK_FALSE, ids.as_mut_ptr(), &mut n)),
            CKR_OK
        );
        for id in ids {
            let mut info = CK_SLOT_INFO::default();
            assert_eq!(call!(self, C_GetSlotInfo(id, &mut info)), CKR_OK);
            if String::from_utf8_lossy(&info.slotDescription).trim_end() == reader {
                return id;
            }
        }
        panic!("no slot for {reader}");
    }

    pub fn token_slots(&self) -> Vec<CK_SLOT_ID> {
        let mut n: CK_ULONG = 0;
        assert_eq!(
            call!(self, C_GetSlotList(CK_TRUE, null_mut(), &mut n)),
            CKR_OK
        );
        let mut ids = vec![0; n as usize];
        assert_eq!(
            call!(self, C_GetSlotList(CK_TRUE, ids.as_mut_ptr(), &mut n)),
            CKR_OK
        );
        ids.truncate(n as usize);
        ids
    }

    pub fn token(&self, slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO, CK_RV> {
        let mut info = CK_TOKEN_INFO::default();
        match call!(self, C_GetTokenInfo(slot, &mut info)) {
            CKR_OK => Ok(info),
            rv => Err(rv),
        }
    }

    pub fn open(&self, slot: CK_SLOT_ID) -> CK_SESSION_HANDLE {
        let mut h = 0;
        assert_eq!(
            call!(
                self,
                C_OpenSession(slot, CKF_SERIAL_SESSION, null_mut(), None, &mut h)
            ),
            CKR_OK
        );
        h
    }

    pub fn login(&self, h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &str) -> CK_RV {
        let mut pin = pin.as_bytes().to_vec();
        call!(
            self,
            C_Login(h, user, pin.as_mut_ptr(), pin.len() as CK_ULONG)
        )
    }

    pub fn find(
        &self,
        h: CK_SESSION_HANDLE,
        class: CK_OBJECT_CLASS,
        id: Option<u8>,
    ) -> Vec<CK_OBJECT_HANDLE> {
        let mut class = class;
        let mut id = id.map(|i| [i]);
        let mut t = vec![CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: &mut class as *mut _ as *mut c_void,
            ulValueLen: std::mem::size_of::<CK_OBJECT_CLASS>() as CK_ULONG,
        }];
        if let Some(id) = id.as_mut() {
            t.push(CK_ATTRIBUTE {
                type_: CKA_ID,
                pValue: id.as_mut_ptr() as *mut c_void,
                ulValueLen: 1,
            });
        }
        assert_eq!(
            call!(
                self,
                C_FindObjectsInit(h, t.as_mut_ptr(), t.len() as CK_ULONG)
            ),
            CKR_OK
        );
        let mut out = vec![0; 16];
        let mut n = 0;
        assert_eq!(
            call!(self, C_FindObjects(h, out.as_mut_ptr(), 16, &mut n)),
            CKR_OK
        );
        assert_eq!(call!(self, C_FindObjectsFinal(h)), CKR_OK);
        out.truncate(n as usize);
        out
    }

    pub fn attr(
        &self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        t: CK_ATTRIBUTE_TYPE,
    ) -> Result<Vec<u8>, CK_RV> {
        let mut a = CK_ATTRIBUTE {
            type_: t,
            pValue: null_mut(),
            ulValueLen: 0,
        };
        let rv = call!(self, C_GetAttributeValue(h, o, &mut a, 1));
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut v = vec![0u8; a.ulValueLen as usize];
        a.pValue = v.as_mut_ptr() as *mut c_void;
        match call!(self, C_GetAttributeValue(h, o, &mut a, 1)) {
            CKR_OK => Ok(v),
            rv => Err(rv),
        }
    }

    pub fn sign_init(
        &self,
        h: CK_SESSION_HANDLE,
        mech: CK_MECHANISM_TYPE,
        key: CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut m = CK_MECHANISM {
            mechanism: mech,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        call!(self, C_SignInit(h, &mut m, key))
    }

    pub fn sign(&self, h: CK_SESSION_HANDLE, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
        let mut d = data.to_vec();
        let mut sig = vec![0u8; 128];
        let mut n = sig.len() as CK_ULONG;
        match call!(
            self,
            C_Sign(
                h,
                d.as_mut_ptr(),
                d.len() as CK_ULONG,
                sig.as_mut_ptr(),
                &mut n
            )
        ) {
            CKR_OK => {
                sig.truncate(n as usize);
                Ok(sig)
            }
            rv => Err(rv),
        }
    }
}

pub fn flags(p: &P11, slot: CK_SLOT_ID) -> CK_FLAGS {
    p.token(slot).expect("token").flags
}

/// The uncompressed point in a CKA_EC_POINT (DER OCTET STRING).
pub fn point(ec_point: &[u8]) -> Vec<u8> {
    assert_eq!(&ec_point[..2], &[0x04, 0x41]);
    ec_point[2..].to_vec()
}

pub fn verifies(point: &[u8], message: &[u8], sig: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
        .verify(message, sig)
        .is_ok()
}
