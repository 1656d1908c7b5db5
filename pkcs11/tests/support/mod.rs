//! Shared by the module's tests: a card personalized and activated by
//! cardsmith through the real pcscd (vpcd's first reader), with the
//! holder's own PINs, which can be pulled and put back; the built module;
//! and the PKCS#11 function table loaded from it with dlopen. The card is
//! of either card operating system of the simulated card ([`Os`]): the
//! same code issues both, each from its own profile.
#![allow(dead_code)]

#[path = "../../../tests/activate_support/mod.rs"]
mod activate_support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cardsmith_host::activate::ops;
use cardsmith_host::apdu::StatusWord;
use cardsmith_host::perso::card::{self as pcard, RefStatus};
use cardsmith_host::perso::commands::Step;
use cardsmith_host::perso::engine;
use cardsmith_host::perso::input;
use cardsmith_host::perso::side::{IssuerSide, SideConfig};
use cardsmith_host::script::template::Vars;
use cardsmith_host::secret::Secret;
use cardsmith_host::sim::vpcd::{SharedCard, VpcdCard, VpcdOptions};
use cardsmith_host::sim::{Provision, SimCard, SimConfig};
use cardsmith_host::transport::pcsc::{self as pc, CardEvent, ConnectOptions, PcscTransport};
use cardsmith_host::transport::{Channel, ExchangeOptions};

pub const READER: &str = "Virtual PCD 00 00";
/// The holder's PINs, chosen at the counter.
pub const ID_PIN: &str = "480913";
pub const SIG_PIN: &str = "73920461";

/// The card operating systems of the simulated card (issue 17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// The reference card: its profile is built into cardsmith.
    Reference,
    /// The "domestic" card (`SimConfig::domestic()`), personalized from
    /// apdu-scripts/domestic/profile.toml: T=0, factory file system and
    /// PINs, proprietary key commands, no PIN status list, no logout.
    Domestic,
}

impl Os {
    /// The simulated card of this OS.
    pub fn config(self) -> SimConfig {
        match self {
            Os::Reference => SimConfig::default(),
            Os::Domestic => SimConfig::domestic(),
        }
    }

    /// The directory of the OS's profile in the repository.
    pub fn profile_dir(self) -> PathBuf {
        let name = match self {
            Os::Reference => "reference-card",
            Os::Domestic => "domestic",
        };
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../apdu-scripts")
            .join(name)
    }

    /// The CKA_ID of the authentication and signature keys (their key
    /// references), in hex as pkcs11-tool writes them.
    pub fn key_ids(self) -> (&'static str, &'static str) {
        match self {
            Os::Reference => ("01", "02"),
            Os::Domestic => ("21", "22"),
        }
    }
}

/// CARDSMITH_PKCS11_PROFILES naming both OSes' profiles in the
/// repository: the module picks each card's by its ATR.
pub fn both_profiles() -> std::ffi::OsString {
    let mut v = Os::Reference.profile_dir().into_os_string();
    v.push(":");
    v.push(Os::Domestic.profile_dir());
    v
}

/// The vpcd slots are shared by every PC/SC test of the repository: the
/// same lock as tests/common/mod.rs.
pub struct PcscGuard {
    _lock: File,
}

pub fn pcsc() -> PcscGuard {
    let f = File::create(std::env::temp_dir().join("cardsmith-vpcd.lock")).expect("lock file");
    f.lock().expect("lock vpcd");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", 35963)).is_ok(),
        "pcscd with vsmartcard-vpcd is not listening on 127.0.0.1:35963; run scripts/setup.sh"
    );
    for slot in ["Virtual PCD 00 00", "Virtual PCD 00 01"] {
        let _ = pc::wait_for(Some(slot), CardEvent::Removed, Duration::from_secs(5));
    }
    PcscGuard { _lock: f }
}

/// The module built with this test: target/debug/deps/libcardsmith_pkcs11.so
/// (cargo builds the library's cdylib there for the tests; the copy in
/// target/debug is refreshed only by a build of the package itself).
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let deps = exe.parent().expect("deps dir");
    for dir in [deps, deps.parent().expect("profile dir")] {
        let p = dir.join("libcardsmith_pkcs11.so");
        if p.is_file() {
            return p;
        }
    }
    panic!("libcardsmith_pkcs11.so not found next to {}", exe.display());
}

/// A card issued to a holder: personalized by cardsmith, activated with
/// the holder's PINs, in vpcd's first reader while `served` is set.
pub struct Issued {
    pub dir: tempfile::TempDir,
    pub side: IssuerSide,
    pub card: SharedCard,
    pub serial: String,
    pub os: Os,
    served: Option<VpcdCard>,
    _guard: PcscGuard,
}

fn channel() -> Channel {
    let t = PcscTransport::connect(Some(READER), ConnectOptions::default())
        .unwrap_or_else(|e| panic!("connect to {READER}: {e}"));
    Channel::new(Box::new(t), ExchangeOptions::default())
}

impl Issued {
    /// Personalize a blank card through pcscd and activate it as the
    /// counter does: live finger, the holder's PINs, the issuer's PUK.
    pub fn new(seed: u64) -> Issued {
        Issued::with_profile(seed, None)
    }

    /// [`Issued::new`] with another card profile: its `profile.toml` and
    /// `filesystem.apdu`, written to `<dir>/profiles/<name>/`.
    pub fn with_profile(seed: u64, profile: Option<(&str, &str, &str)>) -> Issued {
        Issued::make(seed, Os::Reference, profile, true)
    }

    /// A card personalized by the line but not yet handed to its holder:
    /// its PINs still hold the transport values.
    pub fn personalized(seed: u64) -> Issued {
        Issued::make(seed, Os::Reference, None, false)
    }

    /// [`Issued::new`] or [`Issued::personalized`] (`activate` false) for
    /// a card of `os`, each personalized and activated from its profile.
    pub fn of(os: Os, seed: u64, activate: bool) -> Issued {
        Issued::make(seed, os, None, activate)
    }

    fn make(seed: u64, os: Os, profile: Option<(&str, &str, &str)>, activate: bool) -> Issued {
        let guard = pcsc();
        let dir = tempfile::tempdir().expect("tempdir");
        let profile = profile.map(|(name, toml, script)| {
            let d = dir.path().join("profiles").join(name);
            std::fs::create_dir_all(&d).expect("profile dir");
            std::fs::write(d.join("profile.toml"), toml).expect("profile");
            std::fs::write(d.join("filesystem.apdu"), script).expect("script");
            d.join("profile.toml")
        });
        let profile = match os {
            Os::Reference => profile,
            Os::Domestic => Some(os.profile_dir().join("profile.toml")),
        };
        let side = IssuerSide::open(&SideConfig {
            data_dir: dir.path().to_path_buf(),
            profile,
            ..SideConfig::default()
        })
        .expect("issuer side");
        let (_, holders) = activate_support::batch(dir.path(), 2, seed);
        let h = activate_support::first_issues(&holders)
            .into_iter()
            .next()
            .expect("a first issue");
        let p = &side.profile;
        let input = input::card_input(&h.record, p, input::today(), &input::compact_template)
            .expect("card input");
        let blank = SimCard::blank_provisioned(
            os.config(),
            Provision {
                issuer_key: Some(side.key.expose()),
                scp03: side.scp03.as_ref().map(|k| &k.keys),
            },
        )
        .expect("blank card");
        let card: SharedCard = Arc::new(Mutex::new(blank));
        let mut issued = Issued {
            serial: String::new(),
            os,
            dir,
            card,
            served: None,
            _guard: guard,
            side,
        };
        issued.insert();
        let mut ch = channel();
        let p = &issued.side.profile;
        let done = engine::personalize(&mut ch, &issued.side.issuer(), &input).expect("perso");
        issued.serial = done.serial.clone();
        if !activate {
            return issued;
        }
        let live = std::fs::read(&h.live).expect("live capture");
        let probe = input::compact_template(&live, usize::from(p.max_minutiae)).expect("compact");
        let m = ops::verify_finger(&mut ch, p, p.bio_references[0], &Secret::new(probe))
            .expect("finger");
        assert_eq!(m, ops::FingerResult::Match);
        let id = Secret::new(ID_PIN.as_bytes().to_vec());
        let sig = Secret::new(SIG_PIN.as_bytes().to_vec());
        let puk = ops::issuer_puk(&issued.side.key, p, h.nid());
        let mut pins = vec![(p.id_pin.reference, &id), (p.signature_pin.reference, &sig)];
        if let (Some(spec), Some(puk)) = (p.puk, &puk) {
            pins.push((spec.reference, puk));
        }
        ops::set_pins(&mut ch, p, &pins).expect("PINs");
        ops::activate(&mut ch, p, issued.side.scp03.as_ref()).expect("activate");
        issued
    }

    /// Put the card into the reader (again) and wait until pcscd sees it.
    pub fn insert(&mut self) {
        self.insert_with(cardsmith_host::sim::faults::Faults::none());
    }

    /// [`Issued::insert`] with faults (the card pulled at APDU k of this
    /// insertion, …).
    pub fn insert_with(&mut self, faults: cardsmith_host::sim::faults::Faults) {
        pc::wait_for(Some(READER), CardEvent::Removed, Duration::from_secs(10))
            .expect("the reader is empty");
        let mut opts = VpcdOptions::slot(0);
        opts.reconnect = false;
        opts.faults = faults;
        self.served = Some(VpcdCard::start_shared(self.card.clone(), opts).expect("vpcd"));
        pc::wait_for(Some(READER), CardEvent::Inserted, Duration::from_secs(10))
            .expect("pcscd sees the card");
    }

    /// APDUs the card received in this insertion.
    pub fn apdus(&self) -> u64 {
        self.served.as_ref().map_or(0, |s| {
            s.stats.apdus.load(std::sync::atomic::Ordering::SeqCst)
        })
    }

    /// Whether the card is still in the reader (false once a fault pulled it).
    pub fn inserted(&self) -> bool {
        self.served.as_ref().is_some_and(|s| s.is_inserted())
    }

    /// Pull the card and wait until pcscd sees it gone.
    pub fn pull(&mut self) {
        if let Some(s) = self.served.take() {
            s.remove().expect("remove the card");
        }
        pc::wait_for(Some(READER), CardEvent::Removed, Duration::from_secs(10))
            .expect("pcscd sees the card gone");
    }

    /// The card's PIN states, read through pcscd by cardsmith itself.
    pub fn pins(&self) -> Vec<RefStatus> {
        let mut ch = channel();
        let p = &self.side.profile;
        ch.converse(async |io| {
            pcard::select_mf(io, p).await?;
            pcard::status_list(io, p).await
        })
        .expect("status list")
    }

    /// The tries left of PIN `reference`: from the status list, or on a
    /// card without one from VERIFY without data (the profile's
    /// `pin_status`), which must find the PIN not verified: whoever used
    /// the card before left no PIN verified behind.
    pub fn tries(&self, reference: u8) -> u8 {
        let p = &self.side.profile;
        if p.status_tag.is_some() {
            return self
                .pins()
                .into_iter()
                .find(|s| !s.biometric && s.reference == reference)
                .expect("PIN in the status list")
                .tries_left;
        }
        let mut ch = channel();
        let sw = ch
            .converse(async |io| {
                pcard::select_aid(io, p, &p.pki_aid).await?;
                let vars = Vars::new().byte("pin_reference", reference);
                pcard::send(io, &p.commands, Step::PinStatus, &vars).await
            })
            .expect("VERIFY without data")
            .sw;
        match sw {
            StatusWord::WrongPin { retries } => retries,
            StatusWord::AuthenticationBlocked => 0,
            other => panic!("PIN {reference:02X}: VERIFY without data answered {other:?}"),
        }
    }

    /// What CARDSMITH_PKCS11_PROFILES names for this card: for a
    /// reference card [`Issued::profiles_dir`], for a domestic one
    /// [`both_profiles`].
    pub fn profiles_env(&self) -> PathBuf {
        match self.os {
            Os::Reference => self.profiles_dir(),
            Os::Domestic => PathBuf::from(both_profiles()),
        }
    }

    /// A directory holding the reference profile (and the card's own, for
    /// a card made with another), for CARDSMITH_PKCS11_PROFILES.
    pub fn profiles_dir(&self) -> PathBuf {
        let d = self.dir.path().join("profiles/reference-card");
        std::fs::create_dir_all(&d).expect("profiles dir");
        std::fs::write(
            d.join("profile.toml"),
            cardsmith_host::perso::profile::REFERENCE_PROFILE,
        )
        .expect("profile");
        std::fs::write(
            d.join("filesystem.apdu"),
            cardsmith_host::perso::profile::REFERENCE_FILESYSTEM,
        )
        .expect("script");
        self.dir.path().join("profiles")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Issued {
    fn drop(&mut self) {
        if let Some(s) = self.served.take() {
            let _ = s.remove();
        }
    }
}

/// Run a command; its output and status, with the command in messages.
pub fn run(cmd: &mut std::process::Command) -> (bool, String) {
    run_stdin(cmd, None)
}

/// [`run`] with `stdin` written to the command's standard input.
pub fn run_stdin(cmd: &mut std::process::Command, stdin: Option<&str>) -> (bool, String) {
    use std::io::Write as _;
    use std::process::Stdio;
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
    if let (Some(mut si), Some(text)) = (child.stdin.take(), stdin) {
        si.write_all(text.as_bytes()).expect("stdin");
    }
    let o = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
    let text = format!(
        "$ {shown}\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

pub fn file_exists(p: &Path) -> bool {
    p.is_file()
}

/// Run `program` on a pseudo-terminal, as a holder at a terminal: each
/// answer is typed once its prompt has appeared and the program has
/// turned echo off to read it (a PIN prompt), so nothing is typed into
/// a line the program would flush or echo. Exit status and everything the
/// terminal showed.
pub fn run_pty(
    program: &str,
    args: &[&std::ffi::OsStr],
    envs: &[(&str, &std::ffi::OsStr)],
    answers: &[(&str, &str)],
) -> (bool, String) {
    use std::io::{Read as _, Write as _};
    use std::os::fd::{AsRawFd as _, FromRawFd as _};
    use std::time::Instant;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two descriptors that this function then owns.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty");
    let master = unsafe { File::from_raw_fd(master) };
    let slave = unsafe { File::from_raw_fd(slave) };
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(slave.try_clone().expect("dup"))
        .stdout(slave.try_clone().expect("dup"))
        .stderr(slave.try_clone().expect("dup"))
        .spawn()
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
    // The command holds copies of the terminal's descriptors.
    drop(cmd);
    let seen = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut reader = master.try_clone().expect("dup");
    let sink = seen.clone();
    let reading = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("transcript")
                .extend_from_slice(&buf[..n]);
        }
    });
    let text =
        |seen: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&seen.lock().expect("t")).into_owned();
    let echo_off = |f: &File| {
        // SAFETY: tcgetattr fills the termios of a terminal we hold open.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::tcgetattr(f.as_raw_fd(), &mut t) };
        ok == 0 && t.c_lflag & libc::ECHO == 0
    };
    let mut writer = master;
    for (i, (prompt, answer)) in answers.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(60);
        let before = answers[..i].iter().filter(|(p, _)| p == prompt).count();
        loop {
            if text(&seen).matches(prompt).count() > before && echo_off(&slave) {
                break;
            }
            if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{shown}: no prompt {prompt:?}:\n{}", text(&seen));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        writer
            .write_all(format!("{answer}\n").as_bytes())
            .expect("type the answer");
    }
    let status = child.wait().expect("wait");
    drop(slave);
    drop(writer);
    let _ = reading.join();
    (status.success(), format!("$ {shown}\n{}", text(&seen)))
}
