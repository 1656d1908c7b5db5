//! The module loaded with dlopen and driven through its own function table
//! (C_GetFunctionList), as every PKCS#11 application does, with a card
//! personalized and activated by cardsmith in vpcd's reader behind the
//! real pcscd: bad arguments (null pointers, short buffers), the PIN
//! flags following the card's tries, login and context-specific login,
//! signatures checked with ring, the card pulled mid-session and put back,
//! several threads at once. One test: the module's state is per process.

mod support;
#[macro_use]
#[path = "support/p11.rs"]
mod p11;

use std::ffi::c_void;
use std::ptr::null_mut;

use cryptoki_sys::*;
use p11::{flags, point, verifies, P11};
use support::{Issued, ID_PIN, READER, SIG_PIN};

#[test]
fn the_module_through_its_function_table_with_a_card_behind_pcscd() {
    let mut card = Issued::new(71);
    let profiles = card.profiles_dir();
    // SAFETY: the test sets its own environment before any thread starts.
    unsafe { std::env::set_var(cardsmith_pkcs11::profiles::ENV, &profiles) };
    let p = P11::load();
    let id_ref = card.side.profile.id_pin.reference;
    let sig_ref = card.side.profile.signature_pin.reference;

    // Before C_Initialize, and bad initialization arguments.
    let mut n: CK_ULONG = 0;
    assert_eq!(
        call!(p, C_GetSlotList(CK_TRUE, null_mut(), &mut n)),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: CKF_OS_LOCKING_OK,
        pReserved: std::ptr::dangling_mut::<c_void>(),
    };
    assert_eq!(
        call!(p, C_Initialize(&mut args as *mut _ as *mut c_void)),
        CKR_ARGUMENTS_BAD
    );
    args.pReserved = null_mut();
    assert_eq!(
        call!(p, C_Initialize(&mut args as *mut _ as *mut c_void)),
        CKR_OK
    );
    assert_eq!(
        call!(p, C_Initialize(null_mut())),
        CKR_CRYPTOKI_ALREADY_INITIALIZED
    );
    assert_eq!(call!(p, C_GetInfo(null_mut())), CKR_ARGUMENTS_BAD);
    let mut info = CK_INFO::default();
    assert_eq!(call!(p, C_GetInfo(&mut info)), CKR_OK);
    assert_eq!(
        (info.cryptokiVersion.major, info.cryptokiVersion.minor),
        (2, 40)
    );

    // Slots: null count, a short buffer.
    assert_eq!(
        call!(p, C_GetSlotList(CK_TRUE, null_mut(), null_mut())),
        CKR_ARGUMENTS_BAD
    );
    let slot = p.slot_of(READER);
    assert!(p.token_slots().contains(&slot));
    let mut none: CK_ULONG = 0;
    let mut one = [0 as CK_SLOT_ID; 1];
    assert_eq!(
        call!(p, C_GetSlotList(CK_FALSE, one.as_mut_ptr(), &mut none)),
        CKR_BUFFER_TOO_SMALL
    );
    assert!(none >= 2, "every reader is a slot: {none}");
    assert_eq!(call!(p, C_GetSlotInfo(slot, null_mut())), CKR_ARGUMENTS_BAD);
    assert_eq!(
        call!(
            p,
            C_GetSlotInfo(CK_ULONG::MAX, &mut CK_SLOT_INFO::default())
        ),
        CKR_SLOT_ID_INVALID
    );

    // The token: label and serial from the card, PIN flags from its tries.
    let t = p.token(slot).expect("token");
    let label = String::from_utf8_lossy(&t.label).trim_end().to_string();
    assert_eq!(label, format!("cardsmith {}", card.serial));
    assert_eq!(String::from_utf8_lossy(&t.serialNumber), card.serial);
    for f in [
        CKF_WRITE_PROTECTED,
        CKF_LOGIN_REQUIRED,
        CKF_USER_PIN_INITIALIZED,
        CKF_TOKEN_INITIALIZED,
    ] {
        assert_ne!(t.flags & f, 0, "flag {f:#x}");
    }
    assert_eq!(
        t.flags & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED),
        0
    );
    let mut mechs = [0 as CK_MECHANISM_TYPE; 8];
    let mut nm = 8;
    assert_eq!(
        call!(p, C_GetMechanismList(slot, mechs.as_mut_ptr(), &mut nm)),
        CKR_OK
    );
    assert_eq!(
        &mechs[..nm as usize],
        &[
            CKM_ECDSA,
            CKM_ECDSA_SHA256,
            CKM_ECDSA_SHA384,
            CKM_ECDSA_SHA512
        ]
    );
    let mut mi = CK_MECHANISM_INFO::default();
    assert_eq!(
        call!(p, C_GetMechanismInfo(slot, CKM_RSA_PKCS, &mut mi)),
        CKR_MECHANISM_INVALID
    );

    // Sessions.
    let mut h = 0;
    assert_eq!(
        call!(p, C_OpenSession(slot, 0, null_mut(), None, &mut h)),
        CKR_SESSION_PARALLEL_NOT_SUPPORTED
    );
    assert_eq!(
        call!(
            p,
            C_OpenSession(slot, CKF_SERIAL_SESSION, null_mut(), None, null_mut())
        ),
        CKR_ARGUMENTS_BAD
    );
    let h = p.open(slot);
    assert_eq!(
        call!(
            p,
            C_GetSessionInfo(h + 1000, &mut CK_SESSION_INFO::default())
        ),
        CKR_SESSION_HANDLE_INVALID
    );

    // Objects before login: the certificates, the public keys, and the
    // signature key (its own PIN guards each use); bad find arguments.
    assert_eq!(
        call!(p, C_FindObjectsInit(h, null_mut(), 1)),
        CKR_ARGUMENTS_BAD
    );
    let mut found = [0 as CK_OBJECT_HANDLE; 4];
    assert_eq!(
        call!(p, C_FindObjects(h, found.as_mut_ptr(), 4, &mut n)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(p.find(h, CKO_CERTIFICATE, None).len(), 2);
    assert_eq!(p.find(h, CKO_PUBLIC_KEY, None).len(), 2);
    assert!(p.find(h, CKO_PRIVATE_KEY, Some(1)).is_empty());
    let sig_key = p.find(h, CKO_PRIVATE_KEY, Some(2));
    assert_eq!(sig_key.len(), 1);
    let sig_key = sig_key[0];
    assert_eq!(
        p.attr(h, sig_key, CKA_ALWAYS_AUTHENTICATE),
        Ok(vec![CK_TRUE])
    );
    assert_eq!(p.attr(h, sig_key, CKA_SENSITIVE), Ok(vec![CK_TRUE]));
    assert_eq!(p.attr(h, sig_key, CKA_EXTRACTABLE), Ok(vec![CK_FALSE]));

    // Attributes: sensitive, unknown, a short buffer.
    let mut a = CK_ATTRIBUTE {
        type_: CKA_VALUE,
        pValue: null_mut(),
        ulValueLen: 0,
    };
    assert_eq!(
        call!(p, C_GetAttributeValue(h, sig_key, &mut a, 1)),
        CKR_ATTRIBUTE_SENSITIVE
    );
    assert_eq!(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    a.type_ = CKA_MODULUS;
    assert_eq!(
        call!(p, C_GetAttributeValue(h, sig_key, &mut a, 1)),
        CKR_ATTRIBUTE_TYPE_INVALID
    );
    assert_eq!(
        call!(p, C_GetAttributeValue(h, sig_key, null_mut(), 1)),
        CKR_ARGUMENTS_BAD
    );
    let cert = p.find(h, CKO_CERTIFICATE, Some(1))[0];
    let der = p.attr(h, cert, CKA_VALUE).expect("certificate");
    assert_eq!(der[0], 0x30);
    let mut small = [0u8; 8];
    let mut a = CK_ATTRIBUTE {
        type_: CKA_VALUE,
        pValue: small.as_mut_ptr() as *mut c_void,
        ulValueLen: small.len() as CK_ULONG,
    };
    assert_eq!(
        call!(p, C_GetAttributeValue(h, cert, &mut a, 1)),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(
        call!(p, C_GetAttributeValue(h, 999, &mut a, 1)),
        CKR_OBJECT_HANDLE_INVALID
    );
    let auth_point = point(
        &p.attr(h, p.find(h, CKO_PUBLIC_KEY, Some(1))[0], CKA_EC_POINT)
            .unwrap(),
    );
    let sig_point = point(
        &p.attr(h, p.find(h, CKO_PUBLIC_KEY, Some(2))[0], CKA_EC_POINT)
            .unwrap(),
    );

    // The read-only token.
    assert_eq!(
        call!(p, C_DestroyObject(h, cert)),
        CKR_TOKEN_WRITE_PROTECTED
    );
    assert_eq!(
        call!(p, C_GenerateRandom(h, small.as_mut_ptr(), 8)),
        CKR_FUNCTION_NOT_SUPPORTED
    );

    // The ID PIN: a wrong one costs a try and shows in the flags; the
    // right one logs in and restores the tries.
    assert_eq!(p.login(h, CKU_USER, "000000"), CKR_PIN_INCORRECT);
    let f = flags(&p, slot);
    assert_ne!(f & CKF_USER_PIN_COUNT_LOW, 0);
    assert_eq!(f & CKF_USER_PIN_FINAL_TRY, 0);
    assert_eq!(
        call!(p, C_Login(h, CKU_USER, null_mut(), 6)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(p.login(h, CKU_SO, ID_PIN), CKR_USER_TYPE_INVALID);
    assert_eq!(p.login(h, CKU_USER, ID_PIN), CKR_OK);
    assert_eq!(p.login(h, CKU_USER, ID_PIN), CKR_USER_ALREADY_LOGGED_IN);
    assert_eq!(flags(&p, slot) & CKF_USER_PIN_COUNT_LOW, 0);

    // The authentication key: C_Sign's length query and a short buffer
    // leave the operation active; the signature verifies.
    let auth_key = p.find(h, CKO_PRIVATE_KEY, Some(1));
    assert_eq!(auth_key.len(), 1);
    let auth_key = auth_key[0];
    assert_eq!(
        p.sign_init(h, CKM_RSA_PKCS, auth_key),
        CKR_MECHANISM_INVALID
    );
    assert_eq!(
        p.sign_init(h, CKM_ECDSA_SHA256, cert),
        CKR_KEY_HANDLE_INVALID
    );
    assert_eq!(
        call!(p, C_SignInit(h, null_mut(), auth_key)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(p.sign_init(h, CKM_ECDSA_SHA256, auth_key), CKR_OK);
    assert_eq!(
        p.sign_init(h, CKM_ECDSA_SHA256, auth_key),
        CKR_OPERATION_ACTIVE
    );
    let mut msg = b"log me in".to_vec();
    let mut len: CK_ULONG = 0;
    assert_eq!(
        call!(
            p,
            C_Sign(
                h,
                msg.as_mut_ptr(),
                msg.len() as CK_ULONG,
                null_mut(),
                &mut len
            )
        ),
        CKR_OK
    );
    assert_eq!(len, 64);
    let mut short = [0u8; 10];
    let mut len: CK_ULONG = 10;
    assert_eq!(
        call!(
            p,
            C_Sign(
                h,
                msg.as_mut_ptr(),
                msg.len() as CK_ULONG,
                short.as_mut_ptr(),
                &mut len
            )
        ),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, 64);
    let sig = p.sign(h, &msg).expect("signature");
    assert!(verifies(&auth_point, &msg, &sig));
    assert!(!verifies(&sig_point, &msg, &sig));
    // CKM_ECDSA takes a hash, not a message.
    assert_eq!(p.sign_init(h, CKM_ECDSA, auth_key), CKR_OK);
    assert_eq!(p.sign(h, b"not a hash"), Err(CKR_DATA_LEN_RANGE));
    assert_eq!(p.sign(h, b"not a hash"), Err(CKR_OPERATION_NOT_INITIALIZED));

    // The signature key: its PIN at every use, given with
    // CKU_CONTEXT_SPECIFIC after C_SignInit; a wrong one uses one try.
    assert_eq!(
        p.login(h, CKU_CONTEXT_SPECIFIC, SIG_PIN),
        CKR_OPERATION_NOT_INITIALIZED
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, &msg);
    assert_eq!(p.sign_init(h, CKM_ECDSA, sig_key), CKR_OK);
    assert_eq!(p.sign(h, digest.as_ref()), Err(CKR_USER_NOT_LOGGED_IN));
    assert_eq!(p.sign_init(h, CKM_ECDSA, sig_key), CKR_OK);
    assert_eq!(
        p.login(h, CKU_CONTEXT_SPECIFIC, "11112222"),
        CKR_PIN_INCORRECT
    );
    assert_eq!(p.login(h, CKU_CONTEXT_SPECIFIC, SIG_PIN), CKR_OK);
    let sig = p.sign(h, digest.as_ref()).expect("signature");
    assert!(verifies(&sig_point, &msg, &sig));
    // One PIN entry, one signature.
    assert_eq!(p.sign_init(h, CKM_ECDSA, sig_key), CKR_OK);
    assert_eq!(p.sign(h, digest.as_ref()), Err(CKR_USER_NOT_LOGGED_IN));
    // Multi-part, with the module hashing.
    assert_eq!(p.sign_init(h, CKM_ECDSA_SHA256, sig_key), CKR_OK);
    assert_eq!(p.login(h, CKU_CONTEXT_SPECIFIC, SIG_PIN), CKR_OK);
    let (a1, a2) = msg.split_at_mut(4);
    assert_eq!(
        call!(p, C_SignUpdate(h, a1.as_mut_ptr(), a1.len() as CK_ULONG)),
        CKR_OK
    );
    assert_eq!(
        call!(p, C_SignUpdate(h, a2.as_mut_ptr(), a2.len() as CK_ULONG)),
        CKR_OK
    );
    let mut sig = [0u8; 64];
    let mut len: CK_ULONG = 64;
    assert_eq!(call!(p, C_SignFinal(h, sig.as_mut_ptr(), &mut len)), CKR_OK);
    assert!(verifies(&sig_point, &msg, &sig));

    // Several threads at once, each with its own sessions.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5 {
                    let h = p.open(slot);
                    assert_eq!(p.find(h, CKO_CERTIFICATE, None).len(), 2);
                    assert_eq!(p.attr(h, cert, CKA_VALUE).as_deref(), Ok(&der[..]));
                    assert_eq!(p.sign_init(h, CKM_ECDSA_SHA256, auth_key), CKR_OK);
                    let sig = p.sign(h, b"threads").expect("signature");
                    assert!(verifies(&auth_point, b"threads", &sig));
                    assert_eq!(call!(p, C_CloseSession(h)), CKR_OK);
                }
            });
        }
    });

    // The card pulled in the middle of a signature: the removal error,
    // never a crash; the token is gone.
    assert_eq!(p.sign_init(h, CKM_ECDSA_SHA256, auth_key), CKR_OK);
    card.pull();
    assert_eq!(p.sign(h, b"gone"), Err(CKR_DEVICE_REMOVED));
    assert_eq!(p.attr(h, cert, CKA_VALUE), Err(CKR_DEVICE_REMOVED));
    assert_eq!(
        call!(p, C_GetSessionInfo(h, &mut CK_SESSION_INFO::default())),
        CKR_DEVICE_REMOVED
    );
    assert_eq!(p.token(slot).err(), Some(CKR_TOKEN_NOT_PRESENT));
    assert!(!p.token_slots().contains(&slot));
    let mut h2 = 0;
    assert_eq!(
        call!(
            p,
            C_OpenSession(slot, CKF_SERIAL_SESSION, null_mut(), None, &mut h2)
        ),
        CKR_TOKEN_NOT_PRESENT
    );

    // The card comes back: the token reappears; the old session stays
    // gone, a new one works, the login is to be given again.
    card.insert();
    assert!(p.token_slots().contains(&slot));
    let t = p.token(slot).expect("the token again");
    assert_eq!(String::from_utf8_lossy(&t.serialNumber), card.serial);
    assert_eq!(p.attr(h, cert, CKA_VALUE), Err(CKR_DEVICE_REMOVED));
    assert_eq!(call!(p, C_CloseSession(h)), CKR_OK);
    let h = p.open(slot);
    assert!(p.find(h, CKO_PRIVATE_KEY, Some(1)).is_empty());
    assert_eq!(p.login(h, CKU_USER, ID_PIN), CKR_OK);
    assert_eq!(p.sign_init(h, CKM_ECDSA_SHA256, auth_key), CKR_OK);
    let sig = p.sign(h, b"back").expect("signature");
    assert!(verifies(&auth_point, b"back", &sig));
    assert_eq!(call!(p, C_Logout(h)), CKR_OK);
    assert_eq!(call!(p, C_Logout(h)), CKR_USER_NOT_LOGGED_IN);

    // Another process reading the card (cardsmith itself, which resets
    // it when it disconnects) does not end the module's sessions.
    assert_eq!(card.tries(sig_ref), 3);
    assert_eq!(p.find(h, CKO_CERTIFICATE, None).len(), 2);

    // The card pulled during the signature's own APDU (INTERNAL
    // AUTHENTICATE, the third of its transaction): the same removal error.
    // The same calls are made twice, the first time to count the APDUs.
    let prepare = |h: CK_SESSION_HANDLE| {
        assert_eq!(p.token(slot).map(|_| ()), Ok(()));
        assert_eq!(p.sign_init(h, CKM_ECDSA_SHA256, auth_key), CKR_OK);
    };
    // Pulled and put back between two calls: the module sees a new
    // insertion (the reader's event count), not the same card going on.
    card.pull();
    card.insert();
    let before = card.apdus();
    assert_eq!(p.attr(h, cert, CKA_VALUE), Err(CKR_DEVICE_REMOVED));
    assert_eq!(call!(p, C_CloseSession(h)), CKR_OK);
    assert!(p.token_slots().contains(&slot));
    let h = p.open(slot);
    assert_eq!(p.login(h, CKU_USER, ID_PIN), CKR_OK);
    let probed = card.apdus();
    prepare(h);
    let prepared = card.apdus() - probed;
    let sig = p.sign(h, b"counted").expect("signature");
    assert!(verifies(&auth_point, b"counted", &sig));
    assert_eq!(
        card.apdus() - probed - prepared,
        3,
        "SELECT, MSE SET, INTERNAL AUTHENTICATE"
    );
    card.pull();
    card.insert_with(cardsmith_host::sim::faults::Faults {
        remove_at: Some(probed - before + prepared + 3),
        ..Default::default()
    });
    assert!(p.token_slots().contains(&slot));
    let h2 = p.open(slot);
    assert_eq!(p.login(h2, CKU_USER, ID_PIN), CKR_OK);
    prepare(h2);
    assert!(card.inserted());
    assert_eq!(p.sign(h2, b"pulled"), Err(CKR_DEVICE_REMOVED));
    assert!(!card.inserted());
    assert_eq!(p.token(slot).err(), Some(CKR_TOKEN_NOT_PRESENT));
    assert_eq!(call!(p, C_CloseSession(h2)), CKR_OK);
    card.pull();
    card.insert();
    let h = p.open(slot);

    // PINs blocked: the flags say so, and C_Login says CKR_PIN_LOCKED.
    assert_eq!(p.login(h, CKU_USER, "000000"), CKR_PIN_INCORRECT);
    assert_eq!(p.login(h, CKU_USER, "000000"), CKR_PIN_INCORRECT);
    assert_ne!(flags(&p, slot) & CKF_USER_PIN_FINAL_TRY, 0);
    assert_eq!(p.login(h, CKU_USER, "000000"), CKR_PIN_LOCKED);
    assert_ne!(flags(&p, slot) & CKF_USER_PIN_LOCKED, 0);
    assert_eq!(p.login(h, CKU_USER, ID_PIN), CKR_PIN_LOCKED);
    assert_eq!(p.sign_init(h, CKM_ECDSA_SHA256, sig_key), CKR_OK);
    for rv in [
        CKR_PIN_INCORRECT,
        CKR_PIN_INCORRECT,
        CKR_PIN_LOCKED,
        CKR_PIN_LOCKED,
    ] {
        assert_eq!(p.login(h, CKU_CONTEXT_SPECIFIC, "11112222"), rv);
    }
    assert_eq!(p.login(h, CKU_CONTEXT_SPECIFIC, SIG_PIN), CKR_PIN_LOCKED);
    assert_eq!(card.tries(id_ref), 0);
    assert_eq!(card.tries(sig_ref), 0);

    assert_eq!(
        call!(p, C_Finalize(std::ptr::dangling_mut::<c_void>())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(p, C_Finalize(null_mut())), CKR_OK);
    assert_eq!(
        call!(p, C_GetSlotList(CK_TRUE, null_mut(), &mut n)),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
}
