//! SCP03 end to end with the simulated card's security domain: personal
//! data never crosses the wire in clear, the card refuses personalization
//! in clear and tampered MACs, a wrong key is found before EXTERNAL
//! AUTHENTICATE, PUT KEY rotates the keys. In process here; through pcscd
//! in `scp03_pcsc.rs`.

mod line_support;

use cardsmith::perso::datagroups::FieldValue;
use cardsmith::perso::engine;
use cardsmith::perso::input;
use cardsmith::perso::input::compact_template;
use cardsmith::scp03::keyfile::Scp03Keys;
use cardsmith::scp03::link::{self, OpenError};
use cardsmith::scp03::{commands, KeySource, StaticKeys};
use cardsmith::sim::vpcd::SharedCard;
use cardsmith::sim::{Provision, SimCard, SimConfig, SD_AUTH_TRY_LIMIT};
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{
    Channel, ExchangeOptions, Protocol, Session, Transport, TransportError,
};
use std::path::Path;
use std::sync::{Arc, Mutex};

type Wire = Arc<Mutex<Vec<Vec<u8>>>>;

/// A transport that records every command APDU exactly as it goes to the card.
struct Tap {
    inner: SimTransport,
    wire: Wire,
}

struct TapSession<'a> {
    inner: Box<dyn Session + 'a>,
    wire: Wire,
}

impl Session for TapSession<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.wire.lock().unwrap().push(apdu.to_vec());
        self.inner.transmit(apdu)
    }
}

impl Transport for Tap {
    fn begin(&mut self) -> Result<Box<dyn Session + '_>, TransportError> {
        let wire = self.wire.clone();
        Ok(Box::new(TapSession {
            inner: self.inner.begin()?,
            wire,
        }))
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), TransportError> {
        self.inner.reconnect(reset)
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn protocol(&self) -> Protocol {
        self.inner.protocol()
    }
    fn reader(&self) -> String {
        self.inner.reader()
    }
}

fn tapped(card: &SharedCard) -> (Channel, Wire) {
    let wire: Wire = Arc::default();
    let t = Tap {
        inner: SimTransport::shared(card.clone(), Default::default()),
        wire: wire.clone(),
    };
    (Channel::new(Box::new(t), ExchangeOptions::default()), wire)
}

fn provisioned(keys: &line_support::BlankKeys) -> SharedCard {
    Arc::new(Mutex::new(keys.card(SimConfig::default())))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.len() <= hay.len() && hay.windows(needle.len()).any(|w| w == needle)
}

fn field(input: &engine::CardInput, name: &str) -> Vec<u8> {
    match input.fields.get(name) {
        Some(FieldValue::Text(t)) => t.as_bytes().to_vec(),
        Some(FieldValue::Bytes(b)) => b.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

fn scp03_of(dir: &Path) -> Scp03Keys {
    line_support::issuer(dir)
        .scp03
        .expect("the reference profile has a security domain")
}

fn sd_options(dir: &Path) -> link::Options {
    line_support::issuer(dir)
        .profile
        .security_domain
        .expect("security domain")
        .options()
}

/// Personalization through a tap: after the handshake every command is
/// protected (CLA with the secure messaging bit), and no name, national
/// ID, transport PIN, fingerprint template or photo is in any command.
#[test]
fn personalization_goes_over_scp03_and_nothing_personal_is_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let recs = line_support::batch(&dir.path().join("b.jsonl"), 1, 71);
    let rec = recs.values().next().unwrap();
    let side = line_support::issuer(dir.path());
    let keys = line_support::BlankKeys::of(dir.path());
    let card = provisioned(&keys);
    let (mut ch, wire) = tapped(&card);
    let input = input::card_input(rec, &side.profile, input::today(), &compact_template).unwrap();
    let done = engine::personalize(&mut ch, &side.issuer(), &input).expect("perso over SCP03");
    let label = done
        .secure_channel
        .clone()
        .expect("went over a secure channel");
    assert!(
        label.starts_with("SCP03 C-MAC C-ENC R-MAC R-ENC"),
        "{label}"
    );
    // The card is personalized and verifies.
    let rep = engine::verify(&mut ch, &side.issuer(), &input).unwrap();
    assert!(rep.passed, "{:?}", rep.failures());

    let wire = wire.lock().unwrap().clone();
    // Commands are: identification in clear, SELECT ISD, INITIALIZE UPDATE,
    // EXTERNAL AUTHENTICATE, then protected commands until the closing
    // SELECT ISD, then verification in clear.
    let ia = wire
        .iter()
        .position(|c| c[0] == 0x80 && c[1] == 0x50)
        .expect("INITIALIZE UPDATE");
    let aid = &side.profile.security_domain.as_ref().unwrap().aid;
    let close = wire
        .iter()
        .skip(ia)
        .position(|c| c[0] == 0x00 && c[1] == 0xA4 && contains(c, aid))
        .map(|i| i + ia)
        .expect("closing SELECT of the security domain");
    let protected = &wire[ia + 1..close];
    assert!(
        protected.len() > 20,
        "{} protected commands",
        protected.len()
    );
    for c in protected {
        let get_response = c[1] == 0xC0 && c[0] & 0x04 == 0;
        assert!(
            c[0] & 0x04 != 0 || get_response,
            "unprotected command during personalization: {}",
            cardsmith::hex::spaced(&c[..4])
        );
    }
    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("national ID".into(), rec.national_id().as_bytes().to_vec()),
        ("Persian given name".into(), field(&input, "given_name.fa")),
        (
            "Latin family name".into(),
            field(&input, "family_name.latin"),
        ),
    ];
    for f in &input.fingers {
        secrets.push((
            format!("template {}", f.position),
            f.minutiae.expose()[..24].to_vec(),
        ));
    }
    for (r, digits) in [
        (
            side.profile.id_pin.reference,
            side.profile.id_pin.transport_digits,
        ),
        {
            let puk = side.profile.puk.expect("the reference card has a PUK");
            (puk.reference, puk.transport_digits)
        },
    ] {
        let pin = side.key.transport_pin(r, rec.national_id(), digits);
        secrets.push((format!("transport PIN {r:02X}"), pin.expose().to_vec()));
    }
    let photo = field(&input, "photo");
    assert!(photo.len() > 100);
    secrets.push(("photo".into(), photo[40..72].to_vec()));
    for (what, bytes) in &secrets {
        assert!(bytes.len() >= 6, "{what} too short to test");
        for c in &wire {
            assert!(!contains(c, bytes), "{what} crossed the wire in clear");
        }
    }
}

/// The same blank card refuses personalization in clear: with issuer
/// authentication but no secure channel, CREATE FILE and UPDATE answer 6982.
#[test]
fn personalization_in_clear_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let recs = line_support::batch(&dir.path().join("b.jsonl"), 1, 72);
    let rec = recs.values().next().unwrap();
    let mut side = line_support::issuer(dir.path());
    let keys = line_support::BlankKeys::of(dir.path());
    let card = provisioned(&keys);
    let (mut ch, _) = tapped(&card);
    let input = input::card_input(rec, &side.profile, input::today(), &compact_template).unwrap();
    side.scp03 = None;
    let e = engine::personalize(&mut ch, &side.issuer(), &input).unwrap_err();
    assert!(e.to_string().contains("no SCP03 keys"), "{e}");
    // Force the clear path: a profile without the security domain.
    side.profile.security_domain = None;
    let e = engine::personalize(&mut ch, &side.issuer(), &input).unwrap_err();
    assert!(
        e.to_string().contains("6982"),
        "the card must refuse personalization in clear: {e}"
    );
    // Nothing was written: the card is still blank with an empty MF.
    let st = line_support::card_state(&card, &line_support::issuer(dir.path()));
    assert_eq!(
        st.1,
        line_support::CardState::Life(cardsmith::perso::card::LifeCycle::Blank)
    );
}

/// A command whose C-MAC was changed is refused with 6982, and the session
/// is aborted: even a correct command after it is refused.
#[test]
fn tampered_mac_is_refused_and_aborts_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let keys = line_support::BlankKeys::of(dir.path());
    let card = provisioned(&keys);
    let (mut ch, _) = tapped(&card);
    let (mut l, _opened) = ch
        .run(|ex| link::handshake(ex, &scp03_of(dir.path()), &sd_options(dir.path())))
        .expect("handshake");
    // SELECT MF, protected, then tampered in its last (MAC) byte.
    let plain = cardsmith::hex::parse("00A4000C023F00").unwrap();
    let mut wrapped = l.wrap(&plain).unwrap();
    let last = wrapped.len() - 1;
    wrapped[last] ^= 0x01;
    let r = ch.run(|ex| ex.transmit_bytes(&wrapped, false)).unwrap();
    assert_eq!(r.sw.to_string().split(' ').next(), Some("6982"), "{}", r.sw);
    assert!(
        card.lock()
            .unwrap()
            .security_domain()
            .unwrap()
            .session_aborted
    );
    // The next, correctly protected command: the session is gone.
    let good = l.wrap(&plain).unwrap();
    let r = ch.run(|ex| ex.transmit_bytes(&good, false)).unwrap();
    assert_eq!(r.sw.to_string().split(' ').next(), Some("6982"), "{}", r.sw);
    // An untampered session works: the same command goes through.
    let (mut l2, _) = ch
        .run(|ex| link::handshake(ex, &scp03_of(dir.path()), &sd_options(dir.path())))
        .expect("handshake");
    let w = l2.wrap(&plain).unwrap();
    let r = ch.run(|ex| ex.transmit_bytes(&w, false)).unwrap();
    let (_, sw) = l2
        .unwrap(&r.data, u16::from_be_bytes(r.sw.bytes()))
        .unwrap();
    assert_eq!(sw, 0x9000);
}

/// With another card batch's keys, the host finds the mismatch in the card
/// cryptogram and never sends EXTERNAL AUTHENTICATE: the card's failure
/// count is untouched. A forged EXTERNAL AUTHENTICATE, for contrast, costs
/// a try.
#[test]
fn wrong_key_is_found_before_external_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let keys = line_support::BlankKeys::of(dir.path());
    let card = provisioned(&keys);
    let (mut ch, wire) = tapped(&card);
    let wrong = Scp03Keys {
        keys: KeySource::Static(StaticKeys::single(0x30, &[0x5A; 16]).unwrap()),
        origin: "test wrong keys".into(),
    };
    let e = link::open(&mut ch, &wrong, &sd_options(dir.path())).unwrap_err();
    assert!(matches!(e, OpenError::WrongKey { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("EXTERNAL AUTHENTICATE was not sent"), "{msg}");
    assert!(!msg.contains("5A5A"), "{msg}");
    let sent = wire.lock().unwrap().clone();
    assert!(sent.iter().any(|c| c[1] == 0x50), "INITIALIZE UPDATE sent");
    assert!(
        !sent.iter().any(|c| c[1] == 0x82),
        "EXTERNAL AUTHENTICATE must not be sent"
    );
    let info = card.lock().unwrap().security_domain().unwrap();
    assert_eq!(info.auth_tries_left, SD_AUTH_TRY_LIMIT);

    // Contrast: INITIALIZE UPDATE then a made-up EXTERNAL AUTHENTICATE.
    let r = ch
        .run(|ex| {
            ex.transmit_bytes(
                &cardsmith::hex::parse("00A4040008A000000151000000").unwrap(),
                false,
            )?;
            ex.transmit_bytes(
                &cardsmith::hex::parse("80500000080102030405060708").unwrap(),
                false,
            )?;
            ex.transmit_bytes(
                &cardsmith::hex::parse("848233001000000000000000000000000000000000").unwrap(),
                false,
            )
        })
        .unwrap();
    assert!(!r.sw.is_ok());
    let info = card.lock().unwrap().security_domain().unwrap();
    assert_eq!(info.auth_tries_left, SD_AUTH_TRY_LIMIT - 1);
    // The right keys still open it, and restore the count.
    link::open(&mut ch, &scp03_of(dir.path()), &sd_options(dir.path())).expect("open");
    let info = card.lock().unwrap().security_domain().unwrap();
    assert_eq!(info.auth_tries_left, SD_AUTH_TRY_LIMIT);
}

/// PUT KEY over the channel replaces the key set: the old keys stop
/// working, the new ones work, and the image keeps them.
#[test]
fn put_key_rotates_the_keys_and_the_image_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let keys = line_support::BlankKeys::of(dir.path());
    let image = dir.path().join("card.json");
    let provision = Provision {
        issuer_key: Some(&keys.key),
        scp03: keys.scp03.as_ref().map(|k| &k.keys),
    };
    let card = SimCard::open_image_provisioned(&image, SimConfig::default(), provision).unwrap();
    let card: SharedCard = Arc::new(Mutex::new(card));
    let (mut ch, wire) = tapped(&card);
    let old = scp03_of(dir.path());
    let opts = sd_options(dir.path());
    let opened = link::open(&mut ch, &old, &opts).expect("open with the shipped keys");
    assert_eq!(opened.kvn, 0x30);
    let old_static = old.for_card(&opened.kdd).unwrap();
    let new = StaticKeys::new(0x31, &[0x11; 16], &[0x22; 16], &[0x33; 16]).unwrap();
    let pk = commands::put_key(&new, 0x31, 0x30, old_static.dek()).unwrap();
    let cmd = cardsmith::apdu::Command::parse(&pk.command.encode().unwrap()).unwrap();
    let r = ch.run(|ex| ex.transmit(&cmd)).unwrap();
    assert!(r.sw.is_ok(), "{}", r.sw);
    pk.check_response(&cardsmith::apdu::Response::new(
        r.data.clone(),
        u16::from_be_bytes(r.sw.bytes()),
    ))
    .expect("key check values match");
    // The new keys travelled encrypted: not in any command in clear.
    for c in wire.lock().unwrap().iter() {
        assert!(!contains(c, &[0x11; 16]) && !contains(c, &[0x33; 16]));
    }
    link::close(&mut ch, &opts);
    let e = link::open(&mut ch, &old, &opts).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::WrongKey { .. } | OpenError::InitializeUpdate { .. }
        ),
        "{e}"
    );
    let rotated = Scp03Keys {
        keys: KeySource::Static(new.clone()),
        origin: "rotated".into(),
    };
    let o = link::open(&mut ch, &rotated, &opts).expect("open with the new keys");
    assert_eq!(o.kvn, 0x31);
    link::close(&mut ch, &opts);
    drop(ch);
    // From the image: the new key set, sequence counter restarted.
    let again = SimCard::open_image(&image, SimConfig::default()).unwrap();
    let info = again.security_domain().unwrap();
    assert_eq!(info.kvn, 0x31);
    assert_eq!(info.kcvs, new.kcvs());
    assert_eq!(info.sequence_counter, 1);
}

/// Cards from one master key get different diversified keys, and the host
/// holding the master opens both.
#[test]
fn diversified_keys_differ_per_card_and_the_master_opens_each() {
    let dir = tempfile::tempdir().unwrap();
    let keys = line_support::BlankKeys::of(dir.path());
    let a = provisioned(&keys);
    let b = provisioned(&keys);
    let ka = a.lock().unwrap().security_domain().unwrap().kcvs;
    let kb = b.lock().unwrap().security_domain().unwrap().kcvs;
    assert_ne!(ka, kb);
    for card in [&a, &b] {
        let (mut ch, _) = tapped(card);
        link::open(&mut ch, &scp03_of(dir.path()), &sd_options(dir.path())).expect("open");
    }
}

/// AES-192 and AES-256 keys, S8 and S16: personalization over each, end to
/// end, with the card answering in the mode its "i" parameter says.
#[test]
fn personalization_over_every_key_length_and_mode() {
    use cardsmith::scp03::Mode;
    let dir = tempfile::tempdir().unwrap();
    let recs = line_support::batch(&dir.path().join("b.jsonl"), 1, 73);
    let rec = recs.values().next().unwrap();
    let base = line_support::issuer(dir.path());
    let keys = line_support::BlankKeys::of(dir.path());
    for (len, mode) in [(24usize, Mode::S8), (32, Mode::S16), (16, Mode::S16)] {
        let k =
            StaticKeys::new(0x20, &vec![0x31; len], &vec![0x32; len], &vec![0x33; len]).unwrap();
        let mut side = line_support::issuer(dir.path());
        let sd = side.profile.security_domain.as_mut().unwrap();
        sd.mode = mode;
        let level = sd.level;
        let aid = sd.aid.clone();
        side.scp03 = Some(Scp03Keys {
            keys: KeySource::Static(k.clone()),
            origin: format!("AES-{} {mode:?}", len * 8),
        });
        let mut card = SimCard::blank_provisioned(
            SimConfig::default(),
            Provision {
                issuer_key: Some(&keys.key),
                scp03: None,
            },
        )
        .unwrap();
        card.install_security_domain_mode(&aid, &k, level, mode)
            .unwrap();
        let card: SharedCard = Arc::new(Mutex::new(card));
        let (mut ch, _) = tapped(&card);
        let input =
            input::card_input(rec, &base.profile, input::today(), &compact_template).unwrap();
        let done = engine::personalize(&mut ch, &side.issuer(), &input)
            .unwrap_or_else(|e| panic!("AES-{} {mode:?}: {e}", len * 8));
        assert!(done.secure_channel.is_some());
        let rep = engine::verify(&mut ch, &side.issuer(), &input).unwrap();
        assert!(rep.passed, "AES-{} {mode:?}: {:?}", len * 8, rep.failures());
        // A host in the other mode is stopped at INITIALIZE UPDATE: the
        // card refuses its challenge length (or the host the card's mode).
        let other = if mode == Mode::S8 {
            Mode::S16
        } else {
            Mode::S8
        };
        let mut o = side.profile.security_domain.as_ref().unwrap().options();
        o.mode = other;
        let e = link::open(&mut ch, side.scp03.as_ref().unwrap(), &o).unwrap_err();
        let m = e.to_string();
        assert!(
            matches!(
                e,
                OpenError::InitializeUpdate { .. } | OpenError::Protocol(_)
            ) && (m.contains("6700") || m.contains("S8/S16 mode")),
            "{m}"
        );
        link::close(&mut ch, &o);
    }
}
