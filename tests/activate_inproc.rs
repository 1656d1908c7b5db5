//! The pickup counter's flow over the in-process simulated card: the line
//! personalizes the cards (real line code, real SQLite journal), and the
//! counter activates them through the same transport seam as PC/SC. The
//! same scenarios run through pcscd with the real binary in
//! `activate_pcsc.rs`; these are the fast, fine-grained checks.

mod activate_support;

use activate_support::Holder;
use cardsmith::activate::counter::{Counter, PinChoice, Refusal, Screen, Templates};
use cardsmith::activate::display::RtlMode;
use cardsmith::activate::ops;
use cardsmith::activate::pinentry::LinePins;
use cardsmith::activate::policy::PinPolicy;
use cardsmith::apdu::{cmd, StatusWord};
use cardsmith::cli::perso::{CardArgs, SideFromArgs};
use cardsmith::line::station::{process_card, CardResult, StationCtx};
use cardsmith::perso::card::{self as pcard, LifeCycle};
use cardsmith::perso::side::IssuerSide;
use cardsmith::register::journal::{CardStatus, Journal, NewRecord, Who};
use cardsmith::register::sqlite::SqliteJournal;
use cardsmith::secret::Secret;
use cardsmith::sim::vpcd::SharedCard;
use cardsmith::sim::{SimCard, SimConfig};
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{Channel, ExchangeOptions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

struct Env {
    dir: tempfile::TempDir,
    side: IssuerSide,
    journal: Arc<SqliteJournal>,
    holders: Vec<Holder>,
    cards: HashMap<String, SharedCard>,
}

fn who(op: &str) -> Who {
    Who {
        station: "test-station".into(),
        operator: op.into(),
        reader: None,
    }
}

fn issuer(dir: &std::path::Path) -> IssuerSide {
    issuer_with(dir, None)
}

fn issuer_with(dir: &std::path::Path, profile: Option<&std::path::Path>) -> IssuerSide {
    IssuerSide::load(&CardArgs {
        data_dir: Some(dir.to_path_buf()),
        profile: profile.map(std::path::Path::to_path_buf),
        ..CardArgs::default()
    })
    .expect("issuer side")
}

/// `count` records personalized by the line, each on its own card.
fn setup(count: usize, seed: u64) -> Env {
    setup_with(count, seed, SimConfig::default())
}

fn setup_with(count: usize, seed: u64, config: SimConfig) -> Env {
    setup_profile(count, seed, config, None)
}

/// [`setup_with`] for the cards of another profile.
fn setup_profile(
    count: usize,
    seed: u64,
    config: SimConfig,
    profile: Option<&std::path::Path>,
) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, holders) = activate_support::batch(dir.path(), count, seed);
    let journal =
        Arc::new(SqliteJournal::open(&dir.path().join("journal.sqlite")).expect("journal"));
    let recs: Vec<NewRecord> = holders
        .iter()
        .enumerate()
        .map(|(i, h)| NewRecord {
            record_id: h.id().to_string(),
            line: i as u64 + 1,
            request: None,
        })
        .collect();
    let (b, _) = journal
        .load_batch(
            "batch",
            &path.display().to_string(),
            "digest",
            &who("line"),
            &recs,
            &[],
        )
        .expect("load");
    let records = holders
        .iter()
        .map(|h| (h.id().to_string(), h.record.clone()))
        .collect();
    let ctx = StationCtx::new(
        journal.clone(),
        b.id,
        records,
        issuer_with(dir.path(), profile),
        who("line"),
    );
    let mut cards = HashMap::new();
    std::fs::create_dir_all(dir.path().join("cards")).expect("cards dir");
    for (i, _) in holders.iter().enumerate() {
        // Each card keeps its state in an image file (a test may edit it).
        let card = SimCard::open_image_provisioned(
            &dir.path().join("cards").join(format!("{i}.json")),
            config.clone(),
            cardsmith::sim::Provision {
                issuer_key: Some(ctx.issuer.key.expose()),
                scp03: ctx.issuer.scp03.as_ref().map(|k| &k.keys),
            },
        )
        .expect("blank");
        let card: SharedCard = Arc::new(Mutex::new(card));
        let mut ch = channel(&card);
        match process_card(&ctx, &mut ch, "sim reader") {
            CardResult::Good { record_id, .. } => {
                cards.insert(record_id, card);
            }
            other => panic!("personalization: {other:?}"),
        }
    }
    Env {
        side: issuer_with(dir.path(), profile),
        dir,
        journal,
        holders,
        cards,
    }
}

fn channel(card: &SharedCard) -> Channel {
    Channel::new(
        Box::new(SimTransport::shared(card.clone(), Default::default())),
        ExchangeOptions::default(),
    )
}

#[derive(Default)]
struct Log(Vec<String>);

impl Screen for Log {
    fn say(&mut self, text: &str) {
        self.0.push(text.to_string());
    }
    fn step(&mut self, n: u8, what: &str) {
        self.0.push(format!("[{n}] {what}"));
    }
    fn ask(&mut self, _: &str) -> std::io::Result<Option<String>> {
        Ok(None)
    }
}

impl Env {
    fn counter(&self, office: &str) -> Counter<'_> {
        Counter {
            side: &self.side,
            others: &[],
            journal: self.journal.as_ref(),
            who: who("clerk7"),
            office: office.to_string(),
            policy: PinPolicy::default(),
            rtl: RtlMode::Visual,
            photo_dir: self.dir.path().join("photos"),
            pin_rounds: 5,
        }
    }

    fn first(&self) -> &Holder {
        activate_support::first_issues(&self.holders)
            .into_iter()
            .next()
            .expect("a first-issue record")
    }

    fn ship(&self, h: &Holder, office: &str) {
        let serial = self.serial(h);
        self.journal
            .ship(&who("dispatch"), &serial, h.id(), h.nid(), office)
            .expect("ship");
    }

    fn serial(&self, h: &Holder) -> String {
        cardsmith::hex::compact(&self.cards[h.id()].lock().expect("card").serial())
    }

    fn activate(
        &self,
        h: &Holder,
        office: &str,
        templates: Vec<std::path::PathBuf>,
        pins: &[&str],
    ) -> (
        Result<cardsmith::activate::counter::Activated, Refusal>,
        Log,
    ) {
        let mut ch = channel(&self.cards[h.id()]);
        let text = pins.join("\n") + "\n";
        let mut input = LinePins::new(Box::new(std::io::Cursor::new(text.into_bytes())), "test");
        input.echo_prompts = false;
        let mut log = Log::default();
        let r = self.counter(office).activate(
            &mut ch,
            &mut log,
            &mut input,
            &mut Templates::Files(templates),
        );
        (r, log)
    }

    fn finger_tries(&self, h: &Holder) -> u8 {
        let mut ch = channel(&self.cards[h.id()]);
        let st = ch
            .converse(async |io| pcard::status_list(io, &self.side.profile).await)
            .expect("status");
        st.iter()
            .find(|s| s.biometric && s.reference == self.side.profile.bio_references[0])
            .expect("bio ref")
            .tries_left
    }

    fn life_cycle(&self, h: &Holder) -> LifeCycle {
        ops::identify(&mut channel(&self.cards[h.id()]), &self.side.profile)
            .expect("identify")
            .1
    }
}

const PINS: [&str; 4] = ["480913", "480913", "73920461", "73920461"];

#[test]
fn the_holder_s_other_capture_activates_and_an_impostor_uses_a_try() {
    let env = setup(6, 11);
    let h = env.first();
    env.ship(h, &h.office());
    assert_eq!(env.finger_tries(h), 5);

    let (r, log) = env.activate(h, &h.office(), vec![h.impostor.clone()], &PINS);
    let refusal = r.expect_err("an impostor");
    assert_eq!(refusal.class, "fingerprint", "{refusal:?}");
    assert!(
        refusal.reason.contains("4 tries left"),
        "{}",
        refusal.reason
    );
    // The refusal's JSON gives the card's verdict for the finger tried;
    // this card reports no score, so there is no debug field.
    let j = serde_json::to_value(&refusal).expect("json");
    assert_eq!(
        j["fingerprint"],
        serde_json::json!([{
            "finger": h.finger.as_str(),
            "reference": format!("{:02X}", env.side.profile.bio_references[0]),
            "verdict": "no_match",
            "tries_left": 4,
            "status": "63C4",
        }]),
        "{j}"
    );
    assert_eq!(env.finger_tries(h), 4);
    assert_eq!(env.life_cycle(h), LifeCycle::Personalized);
    let shown = log.0.join("\n");
    assert!(
        shown.contains(&h.finger.as_str().replace('_', " ").to_uppercase()),
        "{shown}"
    );

    let (r, log) = env.activate(h, &h.office(), vec![h.live.clone()], &PINS);
    let a = r.unwrap_or_else(|e| panic!("{e:?}\n{}", log.0.join("\n")));
    assert_eq!(a.record_id, h.id());
    let j = serde_json::to_value(&a).expect("json");
    assert_eq!(j["fingerprint"][0]["verdict"], "match", "{j}");
    assert!(j["fingerprint"][0].get("debug").is_none(), "{j}");
    assert_eq!(env.life_cycle(h), LifeCycle::Activated);
    assert_eq!(env.finger_tries(h), 5, "a match restores the counter");
    let shown = log.0.join("\n");
    for pin in ["480913", "73920461"] {
        assert!(!shown.contains(pin), "a PIN reached the screen:\n{shown}");
    }
    // The photo is a JPEG, private to the operator.
    let photo = a.photo.expect("photo");
    let bytes = std::fs::read(&photo).expect("photo file");
    assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&photo)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // The journal: delivery, status, certificates, events with who.
    let d = env
        .journal
        .delivered(&a.serial)
        .expect("q")
        .expect("delivered");
    assert_eq!(d.status, CardStatus::Activated);
    assert_eq!(d.delivered_by, "clerk7");
    assert_eq!(d.office, h.office());
    assert_eq!(env.journal.certificates(&a.serial).expect("certs").len(), 2);
    let events = env.journal.events(0).expect("events");
    assert!(events
        .iter()
        .any(|e| e.kind == "fingerprint no match" && e.operator == "clerk7"));
    assert!(events.iter().any(|e| e.kind == "delivered"));
    for e in &events {
        assert!(
            !e.detail.contains("480913") && !e.detail.contains("73920461"),
            "{e:?}"
        );
    }

    // Signing: with the signature PIN yes, without it no.
    let p = &env.side.profile;
    let k = p
        .key(cardsmith::perso::profile::KeyUsage::Sign)
        .expect("sig key");
    let mut ch = channel(&env.cards[h.id()]);
    let refused = ch
        .converse(async |io| {
            pcard::select_aid(io, p, &p.pki_aid).await?;
            Ok::<_, cardsmith::transport::ExchangeError>(
                pcard::sign_digest(io, k, &[7u8; 32]).await,
            )
        })
        .expect("exchange");
    assert!(
        matches!(
            refused,
            Err(pcard::StepError::Refused(StatusWord::SecurityNotSatisfied))
        ),
        "{refused:?}"
    );
    let signed = ch
        .converse(async |io| {
            pcard::select_aid(io, p, &p.pki_aid).await?;
            let sw = io
                .transmit(&cmd::verify(
                    p.signature_pin.reference,
                    Secret::new(b"73920461".to_vec()),
                ))
                .await?
                .sw;
            assert_eq!(sw, StatusWord::Ok);
            Ok::<_, cardsmith::transport::ExchangeError>(
                pcard::sign_digest(io, k, &[7u8; 32]).await,
            )
        })
        .expect("exchange");
    assert!(signed.is_ok(), "{signed:?}");

    // A second activation of the same card is refused.
    let (r, _) = env.activate(h, &h.office(), vec![h.live.clone()], &PINS);
    assert_eq!(r.expect_err("again").class, "already_activated");
}

#[test]
fn another_office_unshipped_cards_and_bad_pins_are_refused() {
    let env = setup(6, 12);
    let h = env.first();
    // Not shipped.
    let (r, _) = env.activate(h, &h.office(), vec![h.live.clone()], &PINS);
    assert_eq!(r.expect_err("unshipped").class, "not_shipped");
    // Shipped elsewhere: refused at this office before any finger is asked.
    env.ship(h, &h.office());
    let other = if h.office() == "1021" { "2034" } else { "1021" };
    let (r, _) = env.activate(h, other, vec![h.live.clone()], &PINS);
    let refusal = r.expect_err("wrong office");
    assert_eq!(refusal.class, "wrong_office", "{refusal:?}");
    assert!(refusal.reason.contains(&h.office()), "{}", refusal.reason);
    assert_eq!(env.finger_tries(h), 5, "no try used");

    // PINs that break the policy: each refused with its reason; the card
    // keeps its transport state.
    let transport = env.side.key.transport_pin(0x81, h.nid(), 6);
    let transport = String::from_utf8(transport.expose().to_vec()).expect("digits");
    for (pins, why) in [
        (vec!["111111", "111111"], "same"),
        (vec!["234567", "234567"], "ascending"),
        (vec!["12345", "12345"], "5 digits"),
        (vec!["480913", "480914"], "differ"),
        (vec![transport.as_str(), transport.as_str()], "transport"),
        (
            vec!["480913", "480913", "480913", "480913"],
            "same as the ID PIN",
        ),
    ] {
        let (r, log) = env.activate(h, &h.office(), vec![h.live.clone()], &pins);
        let refusal = r.expect_err("policy");
        assert_eq!(refusal.class, "pin_policy", "{refusal:?}");
        assert!(refusal.reason.contains(why), "{why}: {}", refusal.reason);
        assert!(!log.0.join("\n").contains(pins[0]), "the PIN was shown");
        assert_eq!(env.life_cycle(h), LifeCycle::Personalized);
        let mut ch = channel(&env.cards[h.id()]);
        let st = ch
            .converse(async |io| pcard::status_list(io, &env.side.profile).await)
            .expect("status");
        assert!(
            st.iter().filter(|s| !s.biometric).all(|s| s.transport),
            "{st:?}"
        );
    }
    // A bad scanner file costs no try and names the file.
    let bad = env.dir.path().join("not-a-template.iso");
    std::fs::write(&bad, b"hello").expect("write");
    let (r, _) = env.activate(h, &h.office(), vec![bad.clone()], &PINS);
    let refusal = r.expect_err("bad file");
    assert_eq!(refusal.class, "bad_template");
    assert!(
        refusal.reason.contains("not-a-template.iso") && refusal.reason.contains("19794-2"),
        "{}",
        refusal.reason
    );
    assert_eq!(env.finger_tries(h), 5);
    // Then it works.
    let (r, log) = env.activate(h, &h.office(), vec![h.live.clone()], &PINS);
    r.unwrap_or_else(|e| panic!("{e:?}\n{}", log.0.join("\n")));
}

#[test]
fn a_blocked_pin_is_unblocked_with_a_fingerprint_and_the_issuer_s_puk() {
    let env = setup(6, 13);
    let h = env.first();
    env.ship(h, &h.office());
    let (r, log) = env.activate(h, &h.office(), vec![h.live.clone()], &PINS);
    r.unwrap_or_else(|e| panic!("{e:?}\n{}", log.0.join("\n")));
    // The holder forgets the ID PIN: three wrong tries block it.
    let mut ch = channel(&env.cards[h.id()]);
    for _ in 0..3 {
        ch.run(|ex| ex.transmit(&cmd::verify(0x81, Secret::new(b"000999".to_vec()))))
            .expect("verify");
    }
    let sw = ch
        .run(|ex| ex.transmit(&cmd::verify(0x81, Secret::new(b"480913".to_vec()))))
        .expect("verify")
        .sw;
    assert_eq!(sw, StatusWord::AuthenticationBlocked);
    // Unblock: an impostor's finger is refused first.
    let unblock = |templates: Vec<std::path::PathBuf>, pins: &str| {
        let mut input = LinePins::new(
            Box::new(std::io::Cursor::new(pins.as_bytes().to_vec())),
            "t",
        );
        input.echo_prompts = false;
        let mut log = Log::default();
        let r = env.counter(&h.office()).unblock(
            &mut channel(&env.cards[h.id()]),
            &mut log,
            &mut input,
            &mut Templates::Files(templates),
            PinChoice::Id,
        );
        (r, log)
    };
    let (r, _) = unblock(vec![h.impostor.clone()], "592730\n592730\n");
    let refusal = r.expect_err("impostor");
    assert_eq!(refusal.class, "fingerprint");
    assert_eq!(refusal.fingerprint.len(), 1);
    assert_eq!(refusal.fingerprint[0].verdict, "no_match");
    let (r, log) = unblock(vec![h.live.clone()], "592730\n592730\n");
    let u = r.unwrap_or_else(|e| panic!("{e:?}\n{}", log.0.join("\n")));
    let verdicts: Vec<&str> = u.fingerprint.iter().map(|v| v.verdict).collect();
    assert_eq!(verdicts, ["match"]);
    let sw = ch
        .run(|ex| ex.transmit(&cmd::verify(0x81, Secret::new(b"592730".to_vec()))))
        .expect("verify")
        .sw;
    assert_eq!(sw, StatusWord::Ok);
    assert!(env
        .journal
        .events(0)
        .expect("events")
        .iter()
        .any(|e| e.kind == "pin unblocked" && e.operator == "clerk7"));
}

#[test]
fn a_card_pulled_after_its_pins_were_set_is_activated_at_the_next_visit() {
    let env = setup(6, 14);
    let h = env.first();
    env.ship(h, &h.office());
    // The first visit got as far as the PINs, then the card was pulled.
    let p = &env.side.profile;
    let mut ch = channel(&env.cards[h.id()]);
    let probe = cardsmith::activate::counter::load_live_template(
        &h.live,
        &ops::Finger {
            reference: p.bio_references[0],
            position_code: h.finger.iso_code(),
            position: h.finger.as_str().into(),
            tries_left: None,
            try_limit: None,
        },
        60,
    )
    .expect("template")
    .0;
    assert_eq!(
        ops::verify_finger(&mut ch, p, p.bio_references[0], &probe).expect("verify"),
        ops::FingerResult::Match
    );
    let (id, sig) = (
        Secret::new(b"480913".to_vec()),
        Secret::new(b"73920461".to_vec()),
    );
    ops::set_pins(&mut ch, p, &[(0x81, &id), (0x82, &sig)]).expect("set pins");
    env.cards[h.id()].lock().expect("card").power_off();
    // The next visit: finger again, then only the signature PIN.
    let (r, log) = env.activate(h, &h.office(), vec![h.live.clone()], &["73920461"]);
    let a = r.unwrap_or_else(|e| panic!("{e:?}\n{}", log.0.join("\n")));
    assert!(log.0.join("\n").contains("earlier, interrupted visit"));
    assert_eq!(env.life_cycle(h), LifeCycle::Activated);
    assert!(env.journal.delivered(&a.serial).expect("q").is_some());
    let mut ch = channel(&env.cards[h.id()]);
    let st = ch
        .converse(async |io| pcard::status_list(io, p).await)
        .expect("status");
    assert!(
        st.iter().filter(|s| !s.biometric).all(|s| !s.transport),
        "{st:?}"
    );
}

#[test]
fn a_card_whose_data_was_changed_is_not_genuine_and_is_refused() {
    let mut env = setup(6, 15);
    let h = env.first();
    let id = h.id().to_string();
    let office = h.office();
    let latin = h.record.given_name().latin.clone();
    env.ship(h, &office);
    let image = {
        let serial = env.serial(h);
        std::fs::read_dir(env.dir.path().join("cards"))
            .expect("cards")
            .map(|e| e.expect("entry").path())
            .find(|p| {
                SimCard::open_image(p, SimConfig::default())
                    .map(|c| cardsmith::hex::compact(&c.serial()) == serial)
                    .unwrap_or(false)
            })
            .expect("the card's image")
    };
    env.cards.remove(&id);
    // One letter of the Latin given name in EF.DG1, changed in the image.
    let text = std::fs::read_to_string(&image).expect("image");
    let name_hex = cardsmith::hex::compact(latin.as_bytes());
    let first = &name_hex[..2];
    let swapped = if first == "51" { "5A" } else { "51" };
    let changed = text.replacen(&name_hex, &format!("{swapped}{}", &name_hex[2..]), 1);
    assert_ne!(changed, text, "the name is in the image");
    std::fs::write(&image, changed).expect("write image");
    let card = SimCard::open_image(&image, SimConfig::default()).expect("reopen");
    env.cards.insert(id.clone(), Arc::new(Mutex::new(card)));

    let h = env.holders.iter().find(|x| x.id() == id).expect("holder");
    let (r, log) = env.activate(h, &office, vec![h.live.clone()], &PINS);
    let refusal = r.expect_err("tampered");
    assert_eq!(refusal.class, "not_genuine", "{refusal:?}");
    assert!(
        refusal.reason.contains("DG1 was changed"),
        "{}",
        refusal.reason
    );
    assert!(
        log.0.iter().any(|l| l.contains("FAIL data group hashes")),
        "{:?}",
        log.0
    );
    assert_eq!(env.finger_tries(h), 5, "no fingerprint was asked for");
    assert_eq!(env.life_cycle(h), LifeCycle::Personalized);
}

#[test]
fn a_card_with_diagnostics_gives_its_score_in_debug_never_on_screen() {
    let env = setup_with(
        6,
        15,
        SimConfig {
            match_score_diagnostics: true,
            ..SimConfig::default()
        },
    );
    let h = env.first();
    env.ship(h, &h.office());
    let (r, log) = env.activate(
        h,
        &h.office(),
        vec![h.impostor.clone(), h.live.clone()],
        &PINS,
    );
    let a = r.unwrap_or_else(|e| panic!("{e:?}\n{}", log.0.join("\n")));
    let j = serde_json::to_value(&a).expect("json");
    let tries = j["fingerprint"].as_array().expect("verdicts");
    assert_eq!(tries.len(), 2, "{j}");
    assert_eq!(tries[0]["verdict"], "no_match", "{j}");
    assert_eq!(tries[1]["verdict"], "match", "{j}");
    let score = |t: &serde_json::Value| t["debug"]["score"].as_f64().expect("score");
    let threshold = tries[1]["debug"]["threshold"]
        .as_f64()
        .unwrap_or_else(|| panic!("{j}"));
    assert!(score(&tries[0]) < threshold, "{j}");
    assert!(score(&tries[1]) >= threshold, "{j}");
    // Nothing of it reaches the screen or the journal.
    let shown = log.0.join("\n").to_lowercase();
    assert!(!shown.contains("score"), "{shown}");
    for t in tries {
        let s = format!("{:.4}", score(t));
        assert!(!shown.contains(&s), "{shown}");
    }
    for e in env.journal.events(0).expect("events") {
        assert!(!e.detail.to_lowercase().contains("score"), "{e:?}");
    }
}

#[test]
fn a_zero_padded_live_capture_matches_and_the_operator_is_told() {
    let env = setup(6, 16);
    let h = env.first();
    env.ship(h, &h.office());
    // A capture SDK's fixed-size buffer: the record, then zero bytes.
    let mut bytes = std::fs::read(&h.live).expect("live capture");
    let declared = bytes.len();
    bytes.resize(1024, 0);
    let padded = env.dir.path().join("padded.iso");
    std::fs::write(&padded, &bytes).expect("write");
    let (r, log) = env.activate(h, &h.office(), vec![padded], &PINS);
    let shown = log.0.join("\n");
    r.unwrap_or_else(|e| panic!("{e:?}\n{shown}"));
    assert!(
        shown.contains(&format!(
            "warning: {}: {} zero bytes of padding after the declared record length (bytes {declared}..1024) were ignored",
            env.dir.path().join("padded.iso").display(),
            1024 - declared
        )),
        "{shown}"
    );
}

/// The real binary, on this test's data directory and journal.
fn cardsmith(env: &Env, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cardsmith"))
        .args(args)
        .args([
            "--data-dir",
            &env.dir.path().display().to_string(),
            "--journal",
            &env.dir.path().join("journal.sqlite").display().to_string(),
            "--operator",
            "clerk7",
            "--station",
            "counter1",
        ])
        .env_remove("CARDSMITH_JOURNAL")
        .output()
        .expect("run cardsmith");
    out
}

fn openssl(args: &[&str]) -> (bool, String) {
    let o = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

impl Env {
    /// The line makes a replacement card for `h` (record `<id>-R`, the
    /// same person and fingers) and ships it to `h`'s office.
    fn replacement_card(&mut self, h_index: usize, previous: &str) -> String {
        let h = &self.holders[h_index];
        let batch = std::fs::read_to_string(self.dir.path().join("batch.jsonl")).expect("batch");
        let line = batch
            .lines()
            .find(|l| l.contains(&format!("\"record_id\":\"{}\"", h.id())))
            .expect("the holder's line");
        let mut v: serde_json::Value = serde_json::from_str(line).expect("json");
        let id = format!("{}-R", h.id());
        v["record_id"] = serde_json::Value::String(id.clone());
        v["request"] = serde_json::json!({"type": "replacement", "reason": "damage", "previous_card_serial": previous});
        let path = self.dir.path().join(format!("{id}.jsonl"));
        std::fs::write(&path, v.to_string() + "\n").expect("write");
        let loaded = cardsmith::record::load_records(
            &path,
            &cardsmith::perso::input::IsoTemplates { max_minutiae: 60 },
        )
        .expect("load");
        let (_, rec) = loaded
            .good
            .into_iter()
            .next()
            .expect("the replacement record");
        let (b, _) = self
            .journal
            .load_batch(
                &id,
                &path.display().to_string(),
                &id,
                &who("line"),
                &[NewRecord {
                    record_id: id.clone(),
                    line: 1,
                    request: None,
                }],
                &[],
            )
            .expect("load batch");
        let ctx = StationCtx::new(
            self.journal.clone(),
            b.id,
            [(id.clone(), rec)].into_iter().collect(),
            issuer(self.dir.path()),
            who("line"),
        );
        let card = SimCard::open_image_provisioned(
            &self.dir.path().join("cards").join(format!("{id}.json")),
            SimConfig::default(),
            cardsmith::sim::Provision {
                issuer_key: Some(ctx.issuer.key.expose()),
                scp03: ctx.issuer.scp03.as_ref().map(|k| &k.keys),
            },
        )
        .expect("blank");
        let card: SharedCard = Arc::new(Mutex::new(card));
        match process_card(&ctx, &mut channel(&card), "sim reader") {
            CardResult::Good { .. } => {}
            other => panic!("personalization: {other:?}"),
        }
        let office = h.office();
        let nid = h.nid().to_string();
        self.cards.insert(id.clone(), card);
        let serial = cardsmith::hex::compact(&self.cards[&id].lock().expect("card").serial());
        self.journal
            .ship(&who("dispatch"), &serial, &id, &nid, &office)
            .expect("ship");
        id
    }

    /// Activate the card of record `id` for holder `h`.
    fn activate_record(
        &self,
        h: &Holder,
        id: &str,
    ) -> (
        Result<cardsmith::activate::counter::Activated, Refusal>,
        Log,
    ) {
        let mut ch = channel(&self.cards[id]);
        let text = PINS.join("\n") + "\n";
        let mut input = LinePins::new(Box::new(std::io::Cursor::new(text.into_bytes())), "test");
        input.echo_prompts = false;
        let mut log = Log::default();
        let r = self.counter(&h.office()).activate(
            &mut ch,
            &mut log,
            &mut input,
            &mut Templates::Files(vec![h.live.clone()]),
        );
        (r, log)
    }

    /// The card's certificates, PEM files named `<name>-<key>.pem`.
    fn certificate_files(&self, id: &str, name: &str) -> Vec<std::path::PathBuf> {
        let ins = ops::inspect(
            &mut channel(&self.cards[id]),
            &self.side.profile,
            &cardsmith::pki::CertificateAuthority::chain(&self.side.ca),
        )
        .expect("inspect");
        assert_eq!(ins.certificates.len(), 2);
        ins.certificates
            .iter()
            .map(|c| {
                let p = self.dir.path().join(format!("{name}-{}.pem", c.key));
                std::fs::write(&p, cardsmith::pki::ca::certificate_pem(&c.der)).expect("pem");
                p
            })
            .collect()
    }
}

#[test]
fn replaced_cards_are_revoked_on_the_crl_and_refused_when_they_come_back() {
    use cardsmith::register::journal::RevocationReason;
    let mut env = setup(6, 31);
    let fi: Vec<usize> = env
        .holders
        .iter()
        .enumerate()
        .filter(|(_, h)| *h.record.request() == cardsmith::record::Request::FirstIssue)
        .map(|(i, _)| i)
        .collect();
    assert!(fi.len() >= 2, "need two first-issue records");
    let (ia, ib) = (fi[0], fi[1]);
    for i in [ia, ib] {
        let h = &env.holders[i];
        env.ship(h, &h.office());
        let (r, log) = env.activate(h, &h.office(), vec![h.live.clone()], &PINS);
        r.unwrap_or_else(|e| panic!("{e:?}\n{}", log.0.join("\n")));
    }
    let (id_a, id_b) = (
        env.holders[ia].id().to_string(),
        env.holders[ib].id().to_string(),
    );
    let (serial_a, serial_b) = (env.serial(&env.holders[ia]), env.serial(&env.holders[ib]));
    let old_a = env.certificate_files(&id_a, "old-a");
    let old_b = env.certificate_files(&id_b, "old-b");

    // a's card is lost: the real binary takes the request and revokes.
    let o = cardsmith(
        &env,
        &[
            "--json",
            "activate",
            "replace",
            "--lost",
            "--card",
            &serial_a,
            "--reason",
            "loss",
            "--office",
            &env.holders[ia].office(),
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["revoked"].as_array().map(Vec::len), Some(2), "{v}");
    for c in env.journal.certificates(&serial_a).expect("certs") {
        let r = env
            .journal
            .revocation(&c.serial)
            .expect("q")
            .expect("revoked");
        assert_eq!(r.reason, RevocationReason::KeyCompromise);
        assert_eq!(r.card_serial, serial_a);
    }
    // b's replacement was requested where no CA was at hand (the journal
    // only): its certificates are not revoked yet.
    env.journal
        .request_replacement(
            &who("clerk9"),
            &serial_b,
            "damage",
            CardStatus::Terminated,
            &env.holders[ib].office(),
        )
        .expect("request");
    for c in env.journal.certificates(&serial_b).expect("certs") {
        assert!(env.journal.revocation(&c.serial).expect("q").is_none());
    }

    // The replacement cards are delivered: b's old certificates are
    // superseded, a's stay keyCompromise.
    let ra = env.replacement_card(ia, &serial_a);
    let rb = env.replacement_card(ib, &serial_b);
    for (i, r, prev) in [(ia, &ra, &serial_a), (ib, &rb, &serial_b)] {
        let (res, log) = env.activate_record(&env.holders[i], r);
        let a = res.unwrap_or_else(|e| panic!("{e:?}\n{}", log.0.join("\n")));
        assert_eq!(a.replaces.as_deref(), Some(prev.as_str()));
    }
    let reasons = |serial: &str| -> Vec<RevocationReason> {
        env.journal
            .certificates(serial)
            .expect("certs")
            .iter()
            .map(|c| {
                env.journal
                    .revocation(&c.serial)
                    .expect("q")
                    .expect("revoked")
                    .reason
            })
            .collect()
    };
    assert_eq!(reasons(&serial_a), vec![RevocationReason::KeyCompromise; 2]);
    assert_eq!(reasons(&serial_b), vec![RevocationReason::Superseded; 2]);
    let new_a = env.certificate_files(&ra, "new-a");
    let new_b = env.certificate_files(&rb, "new-b");

    // The CRL, through the real binary; openssl checks it.
    let crl = env.dir.path().join("crl.pem");
    let o = cardsmith(
        &env,
        &[
            "ca",
            "crl",
            "--out",
            &crl.display().to_string(),
            "--next-update",
            "2d",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ca = env.dir.path().join("ca").join("ca-cert.pem");
    let (crl_s, ca_s) = (crl.display().to_string(), ca.display().to_string());
    let (ok, t) = openssl(&[
        "crl", "-in", &crl_s, "-CAfile", &ca_s, "-verify", "-noout", "-text",
    ]);
    assert!(ok && t.contains("verify OK"), "{t}");
    assert!(
        t.contains("X509v3 CRL Number") && t.contains("Next Update"),
        "{t}"
    );
    assert_eq!(t.matches("Key Compromise").count(), 2, "{t}");
    assert_eq!(t.matches("Superseded").count(), 2, "{t}");
    for old in old_a.iter().chain(&old_b) {
        let (ok, t) = openssl(&[
            "verify",
            "-crl_check",
            "-CRLfile",
            &crl_s,
            "-CAfile",
            &ca_s,
            &old.display().to_string(),
        ]);
        assert!(
            !ok && t.contains("certificate revoked"),
            "{}: {t}",
            old.display()
        );
    }
    for new in new_a.iter().chain(&new_b) {
        let (ok, t) = openssl(&[
            "verify",
            "-crl_check",
            "-CRLfile",
            &crl_s,
            "-CAfile",
            &ca_s,
            &new.display().to_string(),
        ]);
        assert!(ok, "{}: {t}", new.display());
    }

    // `cardsmith verify` with the register: the old card's certificates
    // fail, naming serial, date and reason; the new card's pass.
    let verify = |record: &std::path::Path, image: &std::path::Path| -> serde_json::Value {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_cardsmith"))
            .args(["--json", "verify", "--record"])
            .arg(record)
            .arg("--sim-image")
            .arg(image)
            .arg("--data-dir")
            .arg(env.dir.path())
            .arg("--journal")
            .arg(env.dir.path().join("journal.sqlite"))
            .env_remove("CARDSMITH_JOURNAL")
            .output()
            .expect("verify");
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
    };
    let cert_checks = |v: &serde_json::Value| -> Vec<(bool, String)> {
        v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .filter(|c| {
                c["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("key certificate"))
            })
            .map(|c| {
                (
                    c["passed"].as_bool().expect("passed"),
                    c["detail"].as_str().expect("detail").to_string(),
                )
            })
            .collect()
    };
    let line_a = std::fs::read_to_string(env.dir.path().join("batch.jsonl"))
        .expect("batch")
        .lines()
        .find(|l| l.contains(&format!("\"record_id\":\"{id_a}\"")))
        .expect("a's line")
        .to_string();
    let rec_a = env.dir.path().join("rec-a.jsonl");
    std::fs::write(&rec_a, line_a + "\n").expect("record");
    let v = verify(
        &rec_a,
        &env.dir.path().join("cards").join(format!("{ia}.json")),
    );
    let checks = cert_checks(&v);
    assert_eq!(checks.len(), 2, "{v}");
    for (passed, detail) in &checks {
        assert!(!passed, "{detail}");
        assert!(
            detail.contains("was revoked on") && detail.contains("keyCompromise"),
            "{detail}"
        );
    }
    assert_eq!(v["passed"], false);
    let v = verify(
        &env.dir.path().join(format!("{ra}.jsonl")),
        &env.dir.path().join("cards").join(format!("{ra}.json")),
    );
    let checks = cert_checks(&v);
    assert_eq!(checks.len(), 2, "{v}");
    for (passed, detail) in &checks {
        assert!(*passed && detail.contains("not revoked"), "{detail}");
    }

    // `activate status` shows them.
    let o = cardsmith(&env, &["--json", "activate", "status", "--card", &serial_b]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("status json");
    let shown = v.to_string();
    assert_eq!(shown.matches("\"superseded\"").count(), 2, "{shown}");

    // The old card comes back to the counter: refused before anything else.
    let (r, _) = env.activate(
        &env.holders[ia],
        &env.holders[ia].office(),
        vec![env.holders[ia].live.clone()],
        &PINS,
    );
    let refusal = r.expect_err("a revoked card");
    assert_eq!(refusal.class, "revoked", "{refusal:?}");
    assert!(
        refusal.reason.contains("keyCompromise") && refusal.reason.contains(&serial_a),
        "{}",
        refusal.reason
    );
    let (r, _) = env.activate(
        &env.holders[ib],
        &env.holders[ib].office(),
        vec![env.holders[ib].live.clone()],
        &PINS,
    );
    let refusal = r.expect_err("a revoked card");
    assert_eq!(refusal.class, "revoked", "{refusal:?}");
    assert!(refusal.reason.contains("superseded"), "{}", refusal.reason);
    assert!(env.journal.audit().expect("audit").intact);
}

/// A front end that lays steps 1 and 2 out on screens of their own
/// (`Screen::proceed`), ending the flow on the screen of `stop_at`.
struct Paused {
    log: Log,
    stop_at: u8,
    asked: Vec<u8>,
    issued: Option<(String, String, Option<String>)>,
}

impl Screen for Paused {
    fn say(&mut self, text: &str) {
        self.log.say(text);
    }
    fn step(&mut self, n: u8, what: &str) {
        self.log.step(n, what);
    }
    fn ask(&mut self, _: &str) -> std::io::Result<Option<String>> {
        Ok(None)
    }
    fn show(&mut self, what: cardsmith::activate::counter::Shown<'_>) {
        if let cardsmith::activate::counter::Shown::Issued {
            record_id,
            shipped_by,
            replaces,
            ..
        } = what
        {
            self.issued = Some((
                record_id.to_string(),
                shipped_by.to_string(),
                replaces.map(|(c, _)| c.to_string()),
            ));
        }
    }
    fn proceed(&mut self, done: u8) -> bool {
        self.asked.push(done);
        done != self.stop_at
    }
}

#[test]
fn a_front_end_may_stop_the_flow_on_step_1_s_or_step_2_s_screen_and_the_card_stays_untouched() {
    let env = setup(4, 19);
    let h = env.first();
    env.ship(h, &h.office());
    let serial = env.serial(h);
    for stop_at in [1u8, 2, 0] {
        let mut ch = channel(&env.cards[h.id()]);
        let text = PINS.join("\n") + "\n";
        let mut input = LinePins::new(Box::new(std::io::Cursor::new(text.into_bytes())), "test");
        input.echo_prompts = false;
        let mut screen = Paused {
            log: Log::default(),
            stop_at,
            asked: Vec::new(),
            issued: None,
        };
        let r = env.counter(&h.office()).activate(
            &mut ch,
            &mut screen,
            &mut input,
            &mut Templates::Files(vec![h.live.clone()]),
        );
        let shown = screen.log.0.join("\n");
        if stop_at == 0 {
            r.unwrap_or_else(|e| panic!("{e:?}\n{shown}"));
            assert_eq!(screen.asked, vec![1, 2]);
            assert_eq!(env.life_cycle(h), LifeCycle::Activated);
        } else {
            let e = r.expect_err("stopped on a step's screen");
            assert_eq!(e.class, "cancelled");
            assert!(
                e.reason
                    .contains(&format!("the flow ended after step {stop_at}")),
                "{}",
                e.reason
            );
            assert_eq!(screen.asked, (1..=stop_at).collect::<Vec<_>>());
            assert!(!shown.contains("[3]"), "no step 3 after a stop:\n{shown}");
            assert_eq!(env.life_cycle(h), LifeCycle::Personalized);
            assert_eq!(env.finger_tries(h), 5, "no finger was tried");
            assert!(env.journal.delivered(&serial).expect("q").is_none());
        }
        // Step 2's result is shown only once step 2 ran and passed.
        if stop_at == 1 {
            assert!(screen.issued.is_none());
        } else {
            assert_eq!(
                screen.issued,
                Some((h.id().to_string(), "dispatch".to_string(), None))
            );
        }
    }
    let events = env.journal.events(0).expect("events");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "activation refused"
                && e.detail.contains("[cancelled] the flow ended after step"))
            .count(),
        2
    );
}

/// A card of another operating system at the counter (the domestic
/// simulated card: no profile of this counter names its ATR) is refused by
/// its ATR, before a single command reaches it.
#[test]
fn a_card_no_profile_names_is_refused_at_the_counter_by_its_atr() {
    let mut env = setup(2, 19);
    let h = env.first();
    let id = h.id().to_string();
    let office = h.office();
    let stranger: SharedCard = Arc::new(Mutex::new(SimCard::blank(SimConfig::domestic())));
    let atr = cardsmith::hex::spaced(&stranger.lock().expect("card").atr());
    env.cards.insert(id.clone(), stranger.clone());
    let h = env.holders.iter().find(|x| x.id() == id).expect("holder");
    let (r, _log) = env.activate(h, &office, vec![h.live.clone()], &PINS);
    let refusal = r.expect_err("an unknown card");
    assert!(
        refusal.reason.contains("unknown card")
            && refusal.reason.contains(&atr)
            && refusal.reason.contains("not touched"),
        "{refusal:?}"
    );
    assert_eq!(stranger.lock().expect("card").apdus_processed(), 0);
}

/// The domestic card (issue 17), personalized by the line and activated at
/// the counter from its profile alone: genuineness with the factory ID PIN
/// for the key proof, the finger matched on the card in its own minutiae
/// order, the holder's PINs replacing the factory values (CHANGE REFERENCE
/// DATA with the old value, in its PIN block), SET STATUS over the security
/// domain, and the test signature with the holder's signature PIN.
#[test]
fn the_domestic_card_is_activated_at_the_counter_from_its_profile() {
    let profile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("apdu-scripts/domestic/profile.toml");
    let env = setup_profile(3, 21, SimConfig::domestic(), Some(&profile));
    let h = env.first();
    env.ship(h, &h.office());
    let (r, log) = env.activate(h, &h.office(), vec![h.live.clone()], &PINS);
    let a = r.unwrap_or_else(|e| panic!("{e:?}\n{}", log.0.join("\n")));
    assert_eq!(env.life_cycle(h), LifeCycle::Activated);
    assert!(env.journal.delivered(&a.serial).expect("q").is_some());
    // The holder's signature PIN signs; the factory one no longer does.
    let p = &env.side.profile;
    let k = p
        .key(cardsmith::perso::profile::KeyUsage::Sign)
        .expect("sign key");
    let mut ch = channel(&env.cards[h.id()]);
    let pin = |v: &str| p.pin_block_of(&Secret::new(v.as_bytes().to_vec()));
    let verify = |ch: &mut Channel, v: &str| {
        ch.converse(async |io| {
            pcard::select_aid(io, p, &p.pki_aid).await?;
            pcard::send(
                io,
                &p.commands,
                cardsmith::perso::commands::Step::VerifyPin,
                &cardsmith::script::template::Vars::new()
                    .byte("pin_reference", p.signature_pin.reference)
                    .secret("pin", &pin(v)),
            )
            .await
        })
        .expect("verify")
        .sw
    };
    assert_ne!(verify(&mut ch, "12345678"), StatusWord::Ok);
    assert_eq!(verify(&mut ch, "73920461"), StatusWord::Ok);
    let sig = ch
        .converse(async |io| {
            pcard::select_aid(io, p, &p.pki_aid).await?;
            Ok::<_, cardsmith::transport::ExchangeError>(
                pcard::sign_digest(io, k, &[7u8; 32]).await,
            )
        })
        .expect("sign");
    assert_eq!(sig.expect("signature").len(), 64);
}

/// The counter takes the cards of several profiles and picks each card's
/// by its ATR (issue 17): a counter whose first profile is the reference
/// card's activates a domestic card with the domestic profile, and a third
/// card that no profile names is refused by name with its ATR, both
/// profiles named, and gets no command.
#[test]
fn the_counter_picks_each_card_s_profile_by_its_atr() {
    let profile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("apdu-scripts/domestic/profile.toml");
    let env = setup_profile(3, 22, SimConfig::domestic(), Some(&profile));
    let h = env.first();
    env.ship(h, &h.office());
    let reference = issuer(env.dir.path());
    let others = [issuer_with(env.dir.path(), Some(&profile))];
    let counter = Counter {
        side: &reference,
        others: &others,
        ..env.counter(&h.office())
    };
    let run = |ch: &mut Channel| {
        let text = PINS.join("\n") + "\n";
        let mut input = LinePins::new(Box::new(std::io::Cursor::new(text.into_bytes())), "test");
        input.echo_prompts = false;
        let mut log = Log::default();
        let r = counter.activate(
            ch,
            &mut log,
            &mut input,
            &mut Templates::Files(vec![h.live.clone()]),
        );
        (r, log)
    };
    let (r, log) = run(&mut channel(&env.cards[h.id()]));
    let a = r.unwrap_or_else(|e| panic!("{e:?}\n{}", log.0.join("\n")));
    assert_eq!(env.life_cycle(h), LifeCycle::Activated);
    assert!(env.journal.delivered(&a.serial).expect("q").is_some());

    // A card whose ATR no profile names (the vsmartcard emulator's).
    let other = &env.holders[1];
    let card = env.cards[other.id()].clone();
    let before = card.lock().expect("card").apdus_processed();
    let vicc = vec![
        0x3B, 0xD6, 0x18, 0x00, 0x80, 0xB1, 0x80, 0x6D, 0x1F, 0x03, 0x80, 0x51, 0x00, 0x61, 0x10,
        0x30, 0x9E,
    ];
    let mut ch = Channel::new(
        Box::new(OtherAtr {
            inner: SimTransport::shared(card.clone(), Default::default()),
            atr: vicc,
        }),
        ExchangeOptions::default(),
    );
    let (r, log) = run(&mut ch);
    let e = r.expect_err("an unknown card");
    assert!(
        e.reason.contains("3B D6 18 00")
            && e.reason.contains(&reference.profile.name)
            && e.reason.contains(&others[0].profile.name)
            && e.reason.contains("not touched"),
        "{e:?}\n{}",
        log.0.join("\n")
    );
    assert_eq!(
        card.lock().expect("card").apdus_processed(),
        before,
        "no command"
    );
}

/// A simulated card seen with another ATR.
struct OtherAtr {
    inner: SimTransport,
    atr: Vec<u8>,
}

impl cardsmith::transport::Transport for OtherAtr {
    fn begin(
        &mut self,
    ) -> Result<Box<dyn cardsmith::transport::Session + '_>, cardsmith::transport::TransportError>
    {
        self.inner.begin()
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), cardsmith::transport::TransportError> {
        self.inner.reconnect(reset)
    }
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }
    fn protocol(&self) -> cardsmith::transport::Protocol {
        self.inner.protocol()
    }
    fn reader(&self) -> String {
        self.inner.reader()
    }
}
