//! The module through its own function table, as in pkcs11_module.rs, with
//! a card of the second card OS (issue 17) behind the real pcscd: the
//! "domestic" card, personalized and activated by cardsmith from
//! apdu-scripts/domestic/profile.toml, with the module given both
//! profiles and picking the card's by its ATR. What differs from the
//! reference card: no PIN status list (the PIN flags come from VERIFY
//! without data), no logout command (the module resets the card so that no
//! PIN stays verified), the authentication key behind the ID PIN, DER
//! signatures and bare points, T=0 with short APDUs. One test: the
//! module's state is per process.

mod support;
#[macro_use]
#[path = "support/p11.rs"]
mod p11;

use std::ptr::null_mut;

use cryptoki_sys::*;
use p11::{flags, point, verifies, P11};
use support::{Issued, Os, ID_PIN, READER, SIG_PIN};

const LOW: CK_FLAGS = CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED;

#[test]
fn the_module_through_its_function_table_with_a_domestic_card_behind_pcscd() {
    let card = Issued::of(Os::Domestic, 81, true);
    // SAFETY: the test sets its own environment before any thread starts.
    unsafe { std::env::set_var(cardsmith_pkcs11::profiles::ENV, card.profiles_env()) };
    let p = P11::load();
    let prof = &card.side.profile;
    let (id_ref, sig_ref) = (prof.id_pin.reference, prof.signature_pin.reference);
    let (auth_id, sig_id) = (prof.keys[0].reference, prof.keys[1].reference);
    assert_eq!((auth_id, sig_id), (0x21, 0x22));
    assert_eq!(call!(p, C_Initialize(null_mut())), CKR_OK);

    // The token, found by the domestic profile: serial from the CPLC, the
    // holder's PIN set (the card is activated), no count claimed low.
    let slot = p.slot_of(READER);
    assert!(p.token_slots().contains(&slot));
    let t = p.token(slot).expect("token");
    assert_eq!(String::from_utf8_lossy(&t.serialNumber), card.serial);
    assert_ne!(t.flags & CKF_USER_PIN_INITIALIZED, 0);
    assert_ne!(t.flags & CKF_LOGIN_REQUIRED, 0);
    assert_eq!(t.flags & LOW, 0);

    // Before login: the certificates, the public keys and the signature
    // key; the authentication key needs the ID PIN.
    let h = p.open(slot);
    assert_eq!(p.find(h, CKO_CERTIFICATE, None).len(), 2);
    assert_eq!(p.find(h, CKO_PUBLIC_KEY, None).len(), 2);
    assert!(p.find(h, CKO_PRIVATE_KEY, Some(auth_id)).is_empty());
    let sig_key = p.find(h, CKO_PRIVATE_KEY, Some(sig_id))[0];
    assert_eq!(
        p.attr(h, sig_key, CKA_ALWAYS_AUTHENTICATE),
        Ok(vec![CK_TRUE])
    );
    // The card's bare points, as CKA_EC_POINT, are the certificates'.
    let point_of = |id: u8| {
        point(
            &p.attr(h, p.find(h, CKO_PUBLIC_KEY, Some(id))[0], CKA_EC_POINT)
                .unwrap(),
        )
    };
    let (auth_point, sig_point) = (point_of(auth_id), point_of(sig_id));
    for (id, pt) in [(auth_id, &auth_point), (sig_id, &sig_point)] {
        let der = p
            .attr(h, p.find(h, CKO_CERTIFICATE, Some(id))[0], CKA_VALUE)
            .expect("certificate");
        let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("X.509");
        assert_eq!(&cert.public_key().subject_public_key.data[..], &pt[..]);
    }

    // The ID PIN: a wrong one costs a try (VERIFY without data tells the
    // module how many are left; the try limit it does not know, so the
    // count is not called low); the right one logs in.
    assert_eq!(p.login(h, CKU_USER, "000000"), CKR_PIN_INCORRECT);
    assert_eq!(flags(&p, slot) & LOW, 0);
    assert_eq!(card.tries(id_ref), 2);
    assert_eq!(p.login(h, CKU_USER, ID_PIN), CKR_OK);
    assert_eq!(flags(&p, slot) & LOW, 0);

    // The authentication key signs after C_Login; its DER answer comes out
    // as the raw r ‖ s PKCS#11 wants. (The card was reset by cardsmith's
    // own read above and after: the module gives the ID PIN again in the
    // signature's transaction.)
    let auth_key = p.find(h, CKO_PRIVATE_KEY, Some(auth_id))[0];
    for msg in [&b"log me in"[..], b"and again"] {
        assert_eq!(p.sign_init(h, CKM_ECDSA_SHA256, auth_key), CKR_OK);
        let sig = p.sign(h, msg).expect("signature");
        assert_eq!(sig.len(), 64);
        assert!(verifies(&auth_point, msg, &sig));
        assert!(!verifies(&sig_point, msg, &sig));
    }

    // The signature key: its PIN for every signature. A wrong one uses one
    // try of the signature PIN; the right one is checked and then
    // forgotten by the card (a reset: the card has no logout command)
    // until the signature gives it again.
    let msg = b"a document".to_vec();
    let digest = ring::digest::digest(&ring::digest::SHA256, &msg);
    assert_eq!(p.sign_init(h, CKM_ECDSA, sig_key), CKR_OK);
    assert_eq!(p.sign(h, digest.as_ref()), Err(CKR_USER_NOT_LOGGED_IN));
    assert_eq!(p.sign_init(h, CKM_ECDSA, sig_key), CKR_OK);
    assert_eq!(
        p.login(h, CKU_CONTEXT_SPECIFIC, "11112222"),
        CKR_PIN_INCORRECT
    );
    assert_eq!(card.tries(sig_ref), 2);
    assert_eq!(card.tries(id_ref), 3);
    assert_eq!(p.login(h, CKU_CONTEXT_SPECIFIC, SIG_PIN), CKR_OK);
    assert_eq!(card.tries(sig_ref), 3, "verified, then forgotten");
    let sig = p.sign(h, digest.as_ref()).expect("signature");
    assert!(verifies(&sig_point, &msg, &sig));
    // One PIN entry, one signature.
    assert_eq!(p.sign_init(h, CKM_ECDSA_SHA384, sig_key), CKR_OK);
    assert_eq!(p.sign(h, &msg), Err(CKR_USER_NOT_LOGGED_IN));

    // C_Logout: the card forgets the ID PIN (a reset), which
    // `card.tries` checks: VERIFY without data must not find it verified.
    assert_eq!(call!(p, C_Logout(h)), CKR_OK);
    assert_eq!(card.tries(id_ref), 3);
    assert!(p.find(h, CKO_PRIVATE_KEY, Some(auth_id)).is_empty());
    assert_eq!(p.login(h, CKU_USER, ID_PIN), CKR_OK);
    assert_eq!(p.sign_init(h, CKM_ECDSA_SHA256, auth_key), CKR_OK);
    assert!(verifies(
        &auth_point,
        b"back",
        &p.sign(h, b"back").expect("signature")
    ));
    assert_eq!(call!(p, C_Logout(h)), CKR_OK);

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

    assert_eq!(call!(p, C_Finalize(null_mut())), CKR_OK);
}
