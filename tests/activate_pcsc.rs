//! The pickup counter end to end through the real pcscd: the line
//! personalizes a batch on a cardsmith line reader (`cardsmith line run`,
//! cards fed by the simulated card handler), the cards are shipped with
//! `cardsmith activate ship`, and each card is then put into vpcd's reader
//! and handled by the real binary (`activate card`, `replace`, `send`).

mod activate_support;
mod common;

use activate_support::Holder;
use cardsmith::cli::perso::{CardArgs, SideFromArgs};
use cardsmith::perso::side::IssuerSide;
use cardsmith::register::journal::{CardStatus, Journal, RevocationReason};
use cardsmith::register::sqlite::SqliteJournal;
use cardsmith::sim::faults::Faults;
use cardsmith::sim::feeder::{FeedOptions, Feeder};
use cardsmith::sim::timing::Timing;
use cardsmith::sim::{SimCard, SimConfig};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const COUNTER: &str = "Virtual PCD 00 00";

struct Env {
    dir: tempfile::TempDir,
    holders: Vec<Holder>,
    /// Card image by record id.
    images: HashMap<String, PathBuf>,
    serials: HashMap<String, String>,
    /// The cards' profile when not the built-in reference one.
    profile: Option<PathBuf>,
    _guard: common::PcscGuard,
}

fn side(data: &Path) -> IssuerSide {
    IssuerSide::load(&CardArgs {
        data_dir: Some(data.to_path_buf()),
        ..CardArgs::default()
    })
    .expect("issuer side")
}

fn run(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    run_env(data, args, stdin, &[])
}

fn run_env(data: &Path, args: &[&str], stdin: Option<&str>, envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cardsmith"));
    c.envs(envs.iter().copied());
    c.args(args)
        .env("CARDSMITH_DATA_DIR", data)
        .env_remove("CARDSMITH_ISSUER_KEY")
        .env_remove("CARDSMITH_OPERATOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run cardsmith");
    if let Some(mut si) = child.stdin.take() {
        if let Some(text) = stdin {
            si.write_all(text.as_bytes()).expect("stdin");
        }
    }
    child.wait_with_output().expect("wait")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Personalize `count` sample records through pcscd with the line.
fn setup(count: usize, seed: u64) -> Env {
    setup_os(count, seed, None, SimConfig::default())
}

/// [`setup`] with the blank cards of `config` and their `profile`.
fn setup_os(count: usize, seed: u64, profile: Option<PathBuf>, config: SimConfig) -> Env {
    let guard = common::pcsc_lines();
    let dir = tempfile::tempdir().expect("tempdir");
    let (batch, holders) = activate_support::batch(dir.path(), count, seed);
    personalize_as(dir.path(), &batch, profile.as_deref(), config);
    let mut env = Env {
        dir,
        holders,
        images: HashMap::new(),
        serials: HashMap::new(),
        profile,
        _guard: guard,
    };
    env.find_cards();
    env
}

/// `cardsmith line run` on "Cardsmith Line 01" with a card handler.
fn personalize(data: &Path, batch: &Path) {
    personalize_as(data, batch, None, SimConfig::default())
}

/// [`personalize`] on blank cards of `config` with their `profile`.
fn personalize_as(data: &Path, batch: &Path, profile: Option<&Path>, config: SimConfig) {
    use cardsmith::sim::line_readers::{line_reader_addr, line_reader_name};
    let side = side(data);
    let key = side.key.expose().to_vec();
    let feeder = Feeder::start(FeedOptions {
        readers: vec![(line_reader_name(0), line_reader_addr(0))],
        out_dir: data.join("hopper"),
        count: None,
        config,
        timing: Some(Timing::FAST),
        issuer_key: Some(key),
        scp03: side.scp03.as_ref().map(|k| k.keys.clone()),
        handling: Duration::from_millis(100),
    })
    .expect("feeder");
    let mut args = vec![
        "line",
        "run",
        batch.to_str().expect("path"),
        "--reader",
        "Cardsmith Line 01",
        "--plain",
        "--operator",
        "line-tester",
    ];
    if let Some(p) = profile {
        args.extend(["--profile", p.to_str().expect("path")]);
    }
    let o = run(data, &args, None);
    feeder.stop();
    assert_eq!(o.status.code(), Some(0), "line run:\n{}", text(&o));
}

impl Env {
    fn data(&self) -> &Path {
        self.dir.path()
    }

    /// Which card image holds which record (the journal's good cards).
    fn find_cards(&mut self) {
        let j = self.journal();
        for f in std::fs::read_dir(self.data().join("hopper")).expect("hopper") {
            let f = f.expect("entry").path();
            let card = SimCard::open_image(&f, SimConfig::default()).expect("image");
            let serial = cardsmith::hex::compact(&card.serial());
            if let cardsmith::register::journal::CardKnown::Good { record_id, .. } =
                j.card(&serial).expect("journal")
            {
                self.serials.insert(record_id.clone(), serial);
                self.images.insert(record_id, f);
            }
        }
    }

    /// A replacement record for `h` (same person, same fingers), with
    /// record id `<id>-R` and `previous` as the card it replaces.
    fn replacement_line(&self, h: &Holder, previous: &str) -> String {
        let batch = std::fs::read_to_string(self.data().join("batch.jsonl")).expect("batch");
        let line = batch
            .lines()
            .find(|l| l.contains(&format!("\"record_id\":\"{}\"", h.id())))
            .expect("the holder's line");
        let mut v: serde_json::Value = serde_json::from_str(line).expect("json");
        v["record_id"] = serde_json::Value::String(format!("{}-R", h.id()));
        v["request"] = serde_json::json!({"type": "replacement", "reason": "damage", "previous_card_serial": previous});
        v.to_string()
    }

    /// Personalize a second batch of `lines` with the line.
    fn personalize_more(&mut self, name: &str, lines: &[String]) {
        let path = self.data().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").expect("batch 2");
        personalize(self.data(), &path);
        self.find_cards();
    }

    fn first_issues(&self) -> Vec<&Holder> {
        activate_support::first_issues(&self.holders)
    }

    fn ship(&self, h: &Holder) {
        let o = run(
            self.data(),
            &[
                "activate",
                "ship",
                "--office",
                &h.office(),
                "--record",
                h.id(),
                "--operator",
                "dispatch1",
            ],
            None,
        );
        assert_eq!(o.status.code(), Some(0), "ship:\n{}", text(&o));
        assert!(text(&o).contains("shipped card"), "{}", text(&o));
    }

    /// Put `h`'s card in the counter's reader for the duration of `f`.
    fn with_card<T>(&self, h: &Holder, f: impl FnOnce() -> T) -> T {
        self.with_image(&self.images[h.id()], f)
    }

    fn with_image<T>(&self, image: &Path, f: impl FnOnce() -> T) -> T {
        let card = SimCard::open_image(image, SimConfig::default()).expect("image");
        let served = common::insert(card, 0, Faults::none());
        let out = f();
        served.remove().expect("remove the card");
        out
    }

    /// Activate the card in `image` for holder `h` at `h`'s office.
    fn activate_image(&self, h: &Holder, image: &Path) -> Output {
        self.with_image(image, || self.run_activate(&h.office(), &h.live, PINS))
    }

    fn activate(&self, h: &Holder, office: &str, template: &Path, pins: &str) -> Output {
        self.with_card(h, || self.run_activate(office, template, pins))
    }

    fn run_activate(&self, office: &str, template: &Path, pins: &str) -> Output {
        let mut args = vec![
            "activate",
            "card",
            "--office",
            office,
            "--reader",
            COUNTER,
            "--template",
            template.to_str().expect("path"),
            "--pins-from-fd",
            "0",
            "--operator",
            "clerk7",
        ];
        if let Some(p) = &self.profile {
            args.extend(["--profile", p.to_str().expect("path")]);
        }
        run(self.data(), &args, Some(pins))
    }

    fn journal(&self) -> SqliteJournal {
        SqliteJournal::open(&self.data().join("line/journal.sqlite")).expect("journal")
    }
}

const PINS: &str = "480913\n480913\n73920461\n73920461\n";

fn assert_no_pins(out: &str) {
    for pin in ["480913", "73920461"] {
        assert!(!out.contains(pin), "a PIN was printed:\n{out}");
    }
}

#[test]
fn activation_through_pcscd_genuine_capture_impostor_office_policy_and_signing() {
    let env = setup(8, 21);
    let fi = env.first_issues();
    assert!(fi.len() >= 2, "need two first-issue records");
    let (a, b) = (fi[0], fi[1]);
    env.ship(a);
    env.ship(b);

    // An impostor: refused, and the card used up a try.
    let o = env.activate(a, &a.office(), &a.impostor, PINS);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(t.contains("NO MATCH") && t.contains("4 tries left"), "{t}");
    let finger = a.finger.as_str().replace('_', " ").to_uppercase();
    assert!(t.contains(&format!("place their {finger} finger")), "{t}");
    assert_no_pins(&t);

    // The holder's own finger, captured differently (rotated, shifted, partial).
    let o = env.activate(a, &a.office(), &a.live, PINS);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("ACTIVATED"), "{t}");
    assert!(t.contains("Solar Hijri") && t.contains("Gregorian"), "{t}");
    assert!(t.contains("Photo saved to"), "{t}");
    assert_no_pins(&t);
    let serial_a = &env.serials[a.id()];
    let d = env
        .journal()
        .delivered(serial_a)
        .expect("q")
        .expect("delivered");
    assert_eq!(
        (d.status, d.delivered_by.as_str()),
        (CardStatus::Activated, "clerk7")
    );

    // Signing through pcscd: refused without the PIN, verified with it.
    env.with_card(a, || {
        let side = side(env.data());
        let p = &side.profile;
        let k = p
            .key(cardsmith::perso::profile::KeyUsage::Sign)
            .expect("key");
        let mut ch = common::channel(COUNTER);
        let digest = [0x5Au8; 32];
        let refused = ch
            .converse(async |io| {
                cardsmith::perso::card::select_aid(io, p, &p.pki_aid).await?;
                Ok::<_, cardsmith::transport::ExchangeError>(
                    cardsmith::perso::card::sign_digest(io, k, &digest).await,
                )
            })
            .expect("exchange");
        assert!(refused.is_err(), "signed without the PIN");
        let ins = cardsmith::activate::ops::inspect(&mut ch, p, &{
            use cardsmith::pki::CertificateAuthority as _;
            side.ca.chain()
        })
        .expect("inspect");
        let cert = ins
            .certificates
            .iter()
            .find(|c| c.key == k.name)
            .expect("cert")
            .der
            .clone();
        let proof = cardsmith::activate::ops::test_signature(
            &mut ch,
            p,
            &cardsmith::secret::Secret::new(b"73920461".to_vec()),
            &cert,
        )
        .expect("signature with the PIN");
        assert!(proof.verified);
        let wrong = cardsmith::activate::ops::test_signature(
            &mut ch,
            p,
            &cardsmith::secret::Secret::new(b"11112222".to_vec()),
            &cert,
        );
        assert!(wrong.is_err(), "signed with a wrong PIN");
    });

    // A card meant for another office is refused there.
    let other = if b.office() == "1021" { "2034" } else { "1021" };
    let o = env.activate(b, other, &b.live, PINS);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(
        t.contains(&format!("meant for office {}", b.office())),
        "{t}"
    );
    // A PIN that breaks the policy is refused; the card stays personalized.
    let o = env.activate(b, &b.office(), &b.live, "123456\n123456\n");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(t.contains("ascending digits"), "{t}");
    assert!(!t.contains("123456"), "{t}");
    assert!(env
        .journal()
        .delivered(&env.serials[b.id()])
        .expect("q")
        .is_none());
    // With every APDU traced, no PIN, PUK or template reaches the log.
    let o = env.with_card(b, || {
        run_env(
            env.data(),
            &[
                "activate",
                "card",
                "--office",
                &b.office(),
                "--reader",
                COUNTER,
                "--template",
                b.live.to_str().expect("p"),
                "--pins-from-fd",
                "0",
                "--operator",
                "clerk7",
            ],
            Some(PINS),
            &[("RUST_LOG", "cardsmith::apdu=trace")],
        )
    });
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("REDACTED"), "no APDU trace:\n{t}");
    assert_no_pins(&t);
    for pin in ["480913", "73920461"] {
        let hex: String = pin.bytes().map(|b| format!("{b:02X}")).collect();
        let spaced: Vec<String> = pin.bytes().map(|b| format!("{b:02X}")).collect();
        assert!(
            !t.contains(&hex) && !t.contains(&spaced.join(" ")),
            "{pin} in the trace:\n{t}"
        );
    }
    let events = env.journal().events(0).expect("events");
    assert!(events.iter().any(|e| e.kind == "activation refused"
        && e.detail.contains("wrong_office")
        && e.operator == "clerk7"));
    assert!(events.iter().any(|e| e.kind == "pin refused"));
}

#[test]
fn replacement_rules_through_pcscd_and_a_terminated_card_refuses_everything() {
    let env = setup(6, 22);
    let fi = env.first_issues();
    assert!(fi.len() >= 3, "need three first-issue records");
    let (a, b, c) = (fi[0], fi[1], fi[2]);
    for h in [a, b, c] {
        env.ship(h);
    }
    for h in [a, c] {
        let o = env.activate(h, &h.office(), &h.live, PINS);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }

    // b was shipped but never delivered: no replacement, and b is untouched.
    let o = env.with_card(b, || {
        run(
            env.data(),
            &[
                "activate",
                "replace",
                "--office",
                &b.office(),
                "--reason",
                "damage",
                "--reader",
                COUNTER,
                "--operator",
                "clerk7",
            ],
            None,
        )
    });
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(t.contains("never delivered"), "{t}");
    let o = env.activate(b, &b.office(), &b.live, PINS);
    assert_eq!(o.status.code(), Some(0), "b still activates: {}", text(&o));

    // a is at hand: terminated on the card, certificates listed.
    let o = env.with_card(a, || {
        run(
            env.data(),
            &[
                "activate",
                "replace",
                "--office",
                &a.office(),
                "--reason",
                "damage",
                "--reader",
                COUNTER,
                "--operator",
                "clerk7",
                "--json",
            ],
            None,
        )
    });
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let certs = v["certificates_to_revoke"].as_array().expect("certs");
    assert_eq!(certs.len(), 2, "{t}");
    for cert in certs {
        assert!(!cert["serial"].as_str().unwrap_or("").is_empty());
        assert!(
            cert["subject"].as_str().unwrap_or("").contains(a.nid()),
            "{cert}"
        );
    }
    assert_eq!(
        env.journal()
            .delivered(&env.serials[a.id()])
            .expect("q")
            .expect("a")
            .status,
        CardStatus::Terminated
    );
    // The terminated card refuses everything.
    env.with_card(a, || {
        let o = run(
            env.data(),
            &["send", "--reader", COUNTER, "00 A4 00 0C 02 3F 00"],
            None,
        );
        assert!(text(&o).contains("6A81"), "{}", text(&o));
        let o = run(
            env.data(),
            &["send", "--reader", COUNTER, "00 84 00 00 08"],
            None,
        );
        assert!(text(&o).contains("6A81"), "{}", text(&o));
        let o = run(env.data(), &["read", "--reader", COUNTER], None);
        assert_ne!(o.status.code(), Some(0), "{}", text(&o));
        let o = run(
            env.data(),
            &[
                "activate",
                "card",
                "--office",
                &a.office(),
                "--reader",
                COUNTER,
                "--template",
                a.live.to_str().expect("p"),
                "--pins-from-fd",
                "0",
            ],
            Some(PINS),
        );
        assert_eq!(o.status.code(), Some(4), "{}", text(&o));
        assert!(text(&o).contains("terminated"), "{}", text(&o));
        // And it cannot be replaced twice.
        let o = run(
            env.data(),
            &[
                "activate",
                "replace",
                "--office",
                &a.office(),
                "--reason",
                "damage",
                "--reader",
                COUNTER,
            ],
            None,
        );
        assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    });

    // c is lost: marked lost, certificates listed from the journal.
    let o = run(
        env.data(),
        &[
            "activate",
            "replace",
            "--office",
            &c.office(),
            "--reason",
            "loss",
            "--lost",
            "--national-id",
            c.nid(),
            "--operator",
            "clerk7",
        ],
        None,
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains("lost") && t.contains("certificates to revoke (2)"),
        "{t}"
    );
    let o = run(
        env.data(),
        &[
            "activate",
            "replace",
            "--office",
            &c.office(),
            "--reason",
            "loss",
            "--lost",
            "--national-id",
            c.nid(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("no active card"), "{}", text(&o));
    let o = run(
        env.data(),
        &["activate", "status", "--national-id", a.nid()],
        None,
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains("status TERMINATED (damage") && t.contains("replacement request"),
        "{t}"
    );
    let events = env.journal().events(0).expect("events");
    assert!(events
        .iter()
        .any(|e| e.kind == "replacement refused" && e.operator == "clerk7"));
    assert!(events.iter().any(|e| e.kind == "card lost"));
    assert!(events.iter().any(|e| e.kind == "card terminated"));

    // Both were revoked at the CA: a terminated, c lost.
    let j = env.journal();
    for (h, reason) in [
        (a, RevocationReason::CessationOfOperation),
        (c, RevocationReason::KeyCompromise),
    ] {
        let certs = j.certificates(&env.serials[h.id()]).expect("certs");
        assert_eq!(certs.len(), 2);
        for cert in certs {
            let r = j.revocation(&cert.serial).expect("q").expect("revoked");
            assert_eq!(r.reason, reason);
            assert_eq!(r.operator, "clerk7");
        }
    }
    // The lost card is found and comes back to the counter through pcscd:
    // refused at the first step, naming the certificate and the reason.
    let o = env.activate(c, &c.office(), &c.live, PINS);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(
        t.contains("was revoked on") && t.contains("keyCompromise"),
        "{t}"
    );
}

#[test]
fn a_replacement_card_activates_only_after_the_replacement_was_requested() {
    let mut env = setup(6, 23);
    let fi: Vec<String> = env
        .first_issues()
        .iter()
        .map(|h| h.id().to_string())
        .collect();
    assert!(fi.len() >= 2, "need two first-issue records");
    let holder = |id: &str| {
        env.holders
            .iter()
            .position(|h| h.id() == id)
            .expect("holder")
    };
    let (ia, ib) = (holder(&fi[0]), holder(&fi[1]));
    for i in [ia, ib] {
        let h = &env.holders[i];
        env.ship(h);
        let o = env.activate(h, &h.office(), &h.live, PINS);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let serial_a = env.serials[env.holders[ia].id()].clone();
    let serial_b = env.serials[env.holders[ib].id()].clone();
    // a's card is damaged and handed in; b asks for nothing.
    let a = &env.holders[ia];
    let o = env.with_card(a, || {
        run(
            env.data(),
            &[
                "activate",
                "replace",
                "--office",
                &a.office(),
                "--reason",
                "damage",
                "--reader",
                COUNTER,
                "--operator",
                "clerk7",
            ],
            None,
        )
    });
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The registry issues replacement records for both; the line makes them.
    let lines = vec![
        env.replacement_line(&env.holders[ia], &serial_a),
        env.replacement_line(&env.holders[ib], &serial_b),
    ];
    env.personalize_more("replacements.jsonl", &lines);
    let (ra, rb) = (format!("{}-R", fi[0]), format!("{}-R", fi[1]));
    for (r, i) in [(&ra, ia), (&rb, ib)] {
        let office = env.holders[i].office();
        let o = run(
            env.data(),
            &["activate", "ship", "--office", &office, "--record", r],
            None,
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    // The new cards carry the same holder and fingers: the live captures
    // work on them.
    let o = env.activate_image(&env.holders[ia], &env.images[&ra]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains(&format!("Replacement for card {serial_a}")),
        "{t}"
    );
    let old = env.journal().delivered(&serial_a).expect("q").expect("a");
    assert_eq!(old.replaced_by.as_deref(), Some(env.serials[&ra].as_str()));
    // b's replacement was never requested: refused.
    let o = env.activate_image(&env.holders[ib], &env.images[&rb]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(t.contains("no replacement was requested"), "{t}");
}

/// A tmux server of this test's own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let socket = format!("cardsmith-counter-{}", std::process::id());
        let st = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-u",
                "new-session",
                "-d",
                "-s",
                "counter",
                "-x",
                "220",
                "-y",
                "60",
                command,
            ])
            .env("LANG", "C.UTF-8")
            .status()
            .expect("tmux (scripts/setup.sh installs it)");
        assert!(st.success(), "tmux did not start");
        Tmux { socket }
    }

    fn keys(&self, keys: &[&str]) {
        let st = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "counter"])
            .args(keys)
            .status()
            .expect("send-keys");
        assert!(st.success());
    }

    /// Type a line (literally) and Enter.
    fn line(&self, text: &str) {
        self.keys(&["-l", text]);
        self.keys(&["Enter"]);
    }

    /// The whole pane, history included.
    fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "capture-pane",
                "-p",
                "-J",
                "-S",
                "-",
                "-t",
                "counter",
            ])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Wait until the screen shows `text` `times` times; the screen.
    fn wait_for(&self, text: &str, times: usize) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let s = self.screen();
            if s.matches(text).count() >= times {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the counter never showed {text:?} ({times}x); the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn the_counter_in_a_real_terminal_hides_pins_and_says_what_to_do_next() {
    let env = setup(4, 24);
    let h = env.first_issues()[0];
    // Ship the whole batch's cards for this office at once.
    let o = run(
        env.data(),
        &[
            "activate",
            "ship",
            "--office",
            &h.office(),
            "--batch",
            "1",
            "--operator",
            "dispatch1",
        ],
        None,
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    for other in &env.holders {
        let line = format!(
            "shipped card {} (record {})",
            env.serials[other.id()],
            other.id()
        );
        assert_eq!(
            t.contains(&line),
            other.office() == h.office(),
            "{}: {t}",
            other.id()
        );
    }
    let command = format!(
        "env -u CARDSMITH_ISSUER_KEY CARDSMITH_DATA_DIR='{}' '{}' activate counter --office {} --reader '{COUNTER}' --operator clerk9; sleep 60",
        env.data().display(),
        env!("CARGO_BIN_EXE_cardsmith"),
        h.office()
    );
    let tmux = Tmux::start(&command);
    tmux.wait_for("Insert the holder's card", 1);
    let card = SimCard::open_image(&env.images[h.id()], SimConfig::default()).expect("image");
    let served = common::insert(card, 0, Faults::none());

    // Step 3: the screen names the finger; an impostor's scan first.
    let finger = h.finger.as_str().replace('_', " ").to_uppercase();
    tmux.wait_for(&format!("Scanner file for the {finger} finger"), 1);
    tmux.line(h.impostor.to_str().expect("path"));
    tmux.wait_for("4 tries left on the card. Ask the holder", 1);
    tmux.wait_for(&format!("Scanner file for the {finger} finger"), 2);
    tmux.wait_for("4 tries left on the card).", 1);
    tmux.line(h.live.to_str().expect("path"));

    // Step 4: PINs, typed into the terminal, never shown. A sequence first.
    tmux.wait_for("Holder: choose your new ID PIN", 1);
    tmux.line("123456");
    tmux.wait_for("Holder: enter the new ID PIN again", 1);
    tmux.line("123456");
    tmux.wait_for("ID PIN REFUSED: it is a run of ascending digits", 1);
    tmux.wait_for("Holder: choose your new ID PIN", 2);
    tmux.line("480913");
    tmux.wait_for("Holder: enter the new ID PIN again", 2);
    tmux.line("480913");
    tmux.wait_for("Holder: choose your new signature PIN", 1);
    tmux.line("73920461");
    tmux.wait_for("Holder: enter the new signature PIN again", 1);
    tmux.line("73920461");
    let screen = tmux.wait_for("Remove the card and hand it to the holder", 1);
    served.remove().expect("remove");
    // Back to waiting for the next card.
    let screen_after = tmux.wait_for("Insert the holder's card", 2);

    for shown in [&screen, &screen_after] {
        for secret in ["123456", "480913", "73920461"] {
            assert!(
                !shown.contains(secret),
                "{secret} is on the screen:\n{shown}"
            );
        }
    }
    for step in [
        "[1/5] Reading the card",
        "[2/5] Checking the issuance record",
        &format!("[3/5] Ask the holder to place their {finger} finger on the scanner"),
        "[4/5] Turn the PIN pad to the holder",
        "[5/5] Activating the card",
        "ACTIVATED: card",
        "Waiting for the card to be removed",
    ] {
        assert!(
            screen_after.contains(step),
            "missing {step:?}:\n{screen_after}"
        );
    }
    // The holder's Persian name, shaped and in visual order.
    let name = cardsmith::activate::display::for_terminal(
        &h.record.given_name().fa,
        cardsmith::activate::display::RtlMode::Visual,
    );
    assert!(
        screen_after.contains(&name),
        "{name:?} not on the screen:\n{screen_after}"
    );
    let d = env
        .journal()
        .delivered(&env.serials[h.id()])
        .expect("q")
        .expect("delivered");
    assert_eq!(d.delivered_by, "clerk9");
    if std::env::var_os("CARDSMITH_SHOW_SCREEN").is_some() {
        eprintln!("{screen_after}");
    }
}

/// The domestic card (issue 17) through pcscd: the line personalizes it
/// and the counter activates it, each from the domestic profile alone.
#[test]
fn the_domestic_card_is_personalized_and_activated_through_pcscd() {
    let profile =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("apdu-scripts/domestic/profile.toml");
    let env = setup_os(2, 23, Some(profile), SimConfig::domestic());
    let a = env.first_issues()[0];
    env.ship(a);
    let o = env.activate(a, &a.office(), &a.live, PINS);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("ACTIVATED"), "{t}");
    assert_no_pins(&t);
    let d = env
        .journal()
        .delivered(&env.serials[a.id()])
        .expect("q")
        .expect("delivered");
    assert_eq!(d.status, CardStatus::Activated);
    // The card's own GlobalPlatform life cycle: SECURED.
    let mut card = SimCard::open_image(&env.images[a.id()], SimConfig::domestic()).expect("image");
    card.power_on();
    let r = card.transmit(&[0x80, 0xCA, 0x9F, 0x70, 0x00]);
    let r = match r.as_slice() {
        [0x61, n] => card.transmit(&[0x00, 0xC0, 0x00, 0x00, *n]),
        _ => r,
    };
    assert_eq!(r, [0x9F, 0x70, 0x01, 0x0F, 0x90, 0x00]);
}
