//! Shared test plumbing for tests that go through the real pcscd.
//!
//! The two vpcd slots are a machine-wide resource, so every such test holds
//! an exclusive file lock for its whole run (works across the threads of
//! `cargo test` and the processes of `cargo nextest`).
#![allow(dead_code)]

use cardsmith::sim::faults::Faults;
use cardsmith::sim::vpcd::{VpcdCard, VpcdOptions};
use cardsmith::sim::{SimCard, SimConfig};
use cardsmith::transport::pcsc::{self as pc, CardEvent};
use std::fs::File;
use std::process::{Command, Output};
use std::time::Duration;

pub struct PcscGuard {
    _lock: File,
}

/// Take the vpcd lock and check pcscd with vpcd is up (scripts/setup.sh starts it).
pub fn pcsc() -> PcscGuard {
    let f = File::create(std::env::temp_dir().join("cardsmith-vpcd.lock")).expect("lock file");
    f.lock().expect("lock vpcd");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", 35963)).is_ok(),
        "pcscd with vsmartcard-vpcd is not listening on 127.0.0.1:35963; run scripts/setup.sh"
    );
    // A previous test's card must be gone from both slots.
    for slot in 0..2 {
        let _ = pc::wait_for(
            Some(&reader(slot)),
            CardEvent::Removed,
            Duration::from_secs(5),
        );
    }
    PcscGuard { _lock: f }
}

pub fn reader(slot: u16) -> String {
    format!("Virtual PCD 00 {slot:02}")
}

/// Insert `card` into vpcd `slot` and wait until pcscd reports it present.
pub fn insert(card: SimCard, slot: u16, faults: Faults) -> VpcdCard {
    // pcscd notices a removal on its next poll of the vpcd slot: until it
    // has, "card present" would still describe the previous card.
    pc::wait_for(
        Some(&reader(slot)),
        CardEvent::Removed,
        Duration::from_secs(10),
    )
    .expect("the previous card leaves the slot");
    let mut opts = VpcdOptions::slot(slot);
    opts.faults = faults;
    opts.reconnect = false;
    let served = VpcdCard::start(card, opts).expect("connect the simulated card to vpcd");
    pc::wait_for(
        Some(&reader(slot)),
        CardEvent::Inserted,
        Duration::from_secs(10),
    )
    .expect("pcscd sees the card");
    served
}

pub fn blank(config: SimConfig) -> SimCard {
    SimCard::blank(config)
}

pub fn cardsmith(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cardsmith"))
        .args(args)
        .output()
        .expect("run cardsmith")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run the built `cardsmith` with extra environment variables (e.g.
/// `CARDSMITH_DATA_DIR`); an issuer key in the caller's own environment
/// (`CARDSMITH_ISSUER_KEY`) is not passed on.
pub fn cardsmith_env<V: AsRef<std::ffi::OsStr>>(args: &[&str], envs: &[(&str, V)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cardsmith"));
    c.args(args)
        .env_remove("CARDSMITH_ISSUER_KEY")
        .env_remove("CARDSMITH_SCP03_KEYS");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("run cardsmith")
}

/// Create `dir` (a cardsmith data directory) holding the issuer key file
/// `issuer-key` (hex, mode 600) with `key`.
pub fn write_issuer_key(dir: &std::path::Path, key: &[u8]) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(dir).expect("create the data directory");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join("issuer-key"))
        .expect("create the issuer key file");
    let hex: String = key.iter().map(|b| format!("{b:02X}")).collect();
    writeln!(f, "# test issuer transport key\n{hex}").expect("write the issuer key");
}

/// Stop pcscd and start it again (as `scripts/setup.sh` starts it), then
/// wait until the vpcd readers are back. Needs root (CI and the test
/// command run as root).
pub fn restart_pcscd() {
    let _ = Command::new("pkill").args(["-x", "pcscd"]).status();
    for _ in 0..100 {
        let running = Command::new("pgrep")
            .args(["-x", "pcscd"])
            .stdout(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !running {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // pcscd daemonizes; keep it off the test's pipes.
    let st = Command::new("pcscd")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("start pcscd");
    assert!(st.success(), "pcscd did not start");
    for _ in 0..100 {
        if let Ok(list) = pc::list_readers() {
            if list.iter().any(|r| r.name == reader(0)) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("pcscd restarted but the vpcd readers did not come back");
}

/// Take the PC/SC lock (as [`pcsc`]) and check the cardsmith line readers
/// (`scripts/setup.sh`, `ifd/`) are all listed and empty.
pub fn pcsc_lines() -> PcscGuard {
    use cardsmith::sim::line_readers::{line_reader_name, LINE_READERS};
    let guard = pcsc();
    let listed: Vec<String> = pc::list_readers()
        .expect("list readers")
        .into_iter()
        .map(|r| r.name)
        .collect();
    for i in 0..LINE_READERS {
        let name = line_reader_name(i);
        assert!(
            listed.contains(&name),
            "pcscd does not list {name:?} (run scripts/setup.sh); it lists {listed:?}"
        );
    }
    for i in 0..LINE_READERS {
        pc::wait_for(
            Some(&line_reader_name(i)),
            CardEvent::Removed,
            Duration::from_secs(10),
        )
        .expect("a previous card leaves the line reader");
    }
    guard
}

/// Options to serve a card on line reader `i` (no reconnect, like [`insert`]).
pub fn line_opts(i: u16, faults: Faults) -> VpcdOptions {
    let mut opts = VpcdOptions::slot(0);
    opts.addr = cardsmith::sim::line_readers::line_reader_addr(i);
    opts.faults = faults;
    opts.reconnect = false;
    opts
}

/// Insert `card` into line reader `i` and wait until pcscd reports it present.
pub fn insert_line(card: SimCard, i: u16, faults: Faults) -> VpcdCard {
    let name = cardsmith::sim::line_readers::line_reader_name(i);
    pc::wait_for(Some(&name), CardEvent::Removed, Duration::from_secs(10))
        .expect("the previous card leaves the line reader");
    let served = VpcdCard::start(card, line_opts(i, faults)).expect("connect to the line reader");
    pc::wait_for(Some(&name), CardEvent::Inserted, Duration::from_secs(10))
        .expect("pcscd sees the card in the line reader");
    served
}

/// A PC/SC channel to the card in the reader named `name` (exact name).
pub fn channel(name: &str) -> cardsmith::transport::Channel {
    use cardsmith::transport::pcsc::{ConnectOptions, PcscTransport};
    use cardsmith::transport::{Channel, ExchangeOptions};
    let t = PcscTransport::connect(Some(name), ConnectOptions::default())
        .unwrap_or_else(|e| panic!("connect to {name}: {e}"));
    Channel::new(Box::new(t), ExchangeOptions::default())
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_ok()
}
