//! For the web counter's tests: cards personalized by the line through
//! pcscd and shipped (as in `activate_pcsc.rs`), the station as its own
//! process (`cardsmith counter serve`) with its log in a file, and a raw
//! HTTP/1.1 client for the requests a browser would not make.
#![allow(dead_code)]

use crate::activate_support::{self, Holder};
use crate::common;
use cardsmith::cli::perso::{CardArgs, SideFromArgs};
use cardsmith::perso::side::IssuerSide;
use cardsmith::register::journal::Journal as _;
use cardsmith::register::sqlite::SqliteJournal;
use cardsmith::sim::feeder::{FeedOptions, Feeder};
use cardsmith::sim::timing::Timing;
use cardsmith::sim::{SimCard, SimConfig};
use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const COUNTER: &str = "Virtual PCD 00 00";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub holders: Vec<Holder>,
    pub images: HashMap<String, PathBuf>,
    pub serials: HashMap<String, String>,
    pub _guard: common::PcscGuard,
}

pub fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cardsmith"))
        .args(args)
        .env("CARDSMITH_DATA_DIR", data)
        .env_remove("CARDSMITH_ISSUER_KEY")
        .env_remove("CARDSMITH_OPERATOR")
        .stdin(Stdio::null())
        .output()
        .expect("run cardsmith")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `count` sample records personalized by `cardsmith line run` on
/// "Cardsmith Line 01", with a card handler feeding blank cards.
pub fn setup(count: usize, seed: u64) -> Env {
    let guard = common::pcsc_lines();
    let dir = tempfile::tempdir().expect("tempdir");
    let (batch, holders) = activate_support::batch(dir.path(), count, seed);
    let data = dir.path();
    use cardsmith::sim::line_readers::{line_reader_addr, line_reader_name};
    let side = IssuerSide::load(&CardArgs {
        data_dir: Some(data.to_path_buf()),
        ..CardArgs::default()
    })
    .expect("issuer side");
    let feeder = Feeder::start(FeedOptions {
        readers: vec![(line_reader_name(0), line_reader_addr(0))],
        out_dir: data.join("hopper"),
        count: None,
        config: SimConfig::default(),
        timing: Some(Timing::FAST),
        issuer_key: Some(side.key.expose().to_vec()),
        scp03: side.scp03.as_ref().map(|k| k.keys.clone()),
        handling: Duration::from_millis(100),
    })
    .expect("feeder");
    let o = run(
        data,
        &[
            "line",
            "run",
            batch.to_str().expect("path"),
            "--reader",
            "Cardsmith Line 01",
            "--plain",
            "--operator",
            "line-tester",
        ],
    );
    feeder.stop();
    assert_eq!(o.status.code(), Some(0), "line run:\n{}", text(&o));
    let mut env = Env {
        dir,
        holders,
        images: HashMap::new(),
        serials: HashMap::new(),
        _guard: guard,
    };
    let j = env.journal();
    for f in std::fs::read_dir(env.data().join("hopper")).expect("hopper") {
        let f = f.expect("entry").path();
        let card = SimCard::open_image(&f, SimConfig::default()).expect("image");
        let serial = cardsmith::hex::compact(&card.serial());
        if let cardsmith::register::journal::CardKnown::Good { record_id, .. } =
            j.card(&serial).expect("journal")
        {
            env.serials.insert(record_id.clone(), serial);
            env.images.insert(record_id, f);
        }
    }
    env
}

impl Env {
    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    pub fn journal(&self) -> SqliteJournal {
        SqliteJournal::open(&self.data().join("line/journal.sqlite")).expect("journal")
    }

    pub fn first_issues(&self) -> Vec<&Holder> {
        activate_support::first_issues(&self.holders)
    }

    pub fn ship(&self, h: &Holder) {
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
        );
        assert_eq!(o.status.code(), Some(0), "ship:\n{}", text(&o));
    }

    /// Put `h`'s card into the counter's reader (removed when the handle
    /// is).
    pub fn insert(&self, h: &Holder) -> cardsmith::sim::vpcd::VpcdCard {
        let card = SimCard::open_image(&self.images[h.id()], SimConfig::default()).expect("image");
        common::insert(card, 0, cardsmith::sim::faults::Faults::none())
    }

    /// `h`'s card with faults (a card pulled at APDU k).
    pub fn insert_with(
        &self,
        h: &Holder,
        faults: cardsmith::sim::faults::Faults,
    ) -> cardsmith::sim::vpcd::VpcdCard {
        let card = SimCard::open_image(&self.images[h.id()], SimConfig::default()).expect("image");
        common::insert(card, 0, faults)
    }

    /// An operator account (password in a mode-600 file).
    pub fn operator(&self, name: &str, role: &str, password: &str) {
        let pw = activate_support::pins_file(self.data(), &format!("{name}.pw"), &[password]);
        let o = run(
            self.data(),
            &[
                "counter",
                "operator",
                "add",
                name,
                "--role",
                role,
                "--password-file",
                pw.to_str().expect("path"),
            ],
        );
        assert_eq!(o.status.code(), Some(0), "operator add:\n{}", text(&o));
    }
}

/// The station, as its own process.
pub struct Station {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
    pub scanner: PathBuf,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Station {
    pub fn start(env: &Env, office: &str, name: &str) -> Station {
        let port = free_port();
        let log = env.data().join(format!("{name}.log"));
        let scanner = env.data().join(format!("{name}-scanner"));
        std::fs::create_dir_all(&scanner).expect("scanner dir");
        let out = std::fs::File::create(&log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_cardsmith"))
            .args([
                "counter",
                "serve",
                "--office",
                office,
                "--reader",
                COUNTER,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--scanner-dir",
                scanner.to_str().expect("path"),
            ])
            .env("CARDSMITH_DATA_DIR", env.data())
            .env_remove("CARDSMITH_ISSUER_KEY")
            .env_remove("CARDSMITH_OPERATOR")
            .env("RUST_LOG", "cardsmith=debug,cardsmith::apdu=trace")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start counter serve");
        let mut child = child;
        let start = Instant::now();
        while !common::listening(port) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the station exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the station did not listen on {port}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Station {
            child,
            port,
            log,
            scanner,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Give the scanner's file to the station the way scanner software
    /// does: written under a hidden name, then renamed into the folder.
    pub fn scan(&self, capture: &Path) {
        let tmp = self.scanner.join(".writing");
        std::fs::copy(capture, &tmp).expect("copy capture");
        std::fs::rename(&tmp, self.scanner.join("capture.iso")).expect("rename capture");
    }

    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log_text()
    }
}

impl Drop for Station {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP/1.1 answer.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
    /// The value of cookie `name` set by this answer.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.header("Set-Cookie").iter().find_map(|c| {
            let first = c.split(';').next()?;
            let (k, v) = first.split_once('=')?;
            (k.trim() == name).then(|| v.to_string())
        })
    }
}

/// One request on its own connection.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if method == "POST" {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// The hidden CSRF field's value in a page.
pub fn csrf_of(html: &str) -> String {
    let k = "name=\"csrf\" value=\"";
    let i = html.find(k).expect("a csrf field") + k.len();
    html[i..].split('"').next().expect("value").to_string()
}

/// Sign in over raw HTTP; the session cookie and the session's CSRF token.
pub fn sign_in(port: u16, name: &str, password: &str) -> (String, String) {
    let page = http(port, "GET", "/login", &[], "");
    let pre = page.cookie("cs_pre").expect("pre-session cookie");
    let token = csrf_of(&page.body);
    let a = http(
        port,
        "POST",
        "/login",
        &[("Cookie", &format!("cs_pre={pre}"))],
        &format!("csrf={token}&name={name}&password={password}&lang=en"),
    );
    assert_eq!(a.status, 303, "sign-in: {}\n{}", a.head, a.body);
    let sid = a.cookie("cs_session").expect("session cookie");
    let page = http(
        port,
        "GET",
        "/counter",
        &[("Cookie", &format!("cs_session={sid}"))],
        "",
    );
    assert_eq!(page.status, 200, "{}", page.head);
    (sid, csrf_of(&page.body))
}

/// Where the tests write screenshots (printed by the tests).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let d = target.join("screenshots").join("counter-web");
    std::fs::create_dir_all(&d).expect("screenshot dir");
    d
}

/// Open the line dashboard's event stream and read events from it.
pub struct EventStream {
    s: std::net::TcpStream,
    buf: String,
}

impl EventStream {
    pub fn open(port: u16, cookie: &str) -> (u16, EventStream) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let req = format!(
            "GET /line/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\nCookie: {cookie}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).expect("send");
        let mut es = EventStream {
            s,
            buf: String::new(),
        };
        let head = es.until("\r\n\r\n");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        assert!(
            status != 200 || head.contains("text/event-stream"),
            "{head}"
        );
        (status, es)
    }

    fn until(&mut self, end: &str) -> String {
        let mut b = [0u8; 4096];
        loop {
            if let Some(i) = self.buf.find(end) {
                let out = self.buf[..i].to_string();
                self.buf.drain(..i + end.len());
                return out;
            }
            let n = self.s.read(&mut b).expect("read the event stream");
            assert!(n > 0, "the event stream ended: {:?}", self.buf);
            self.buf.push_str(&String::from_utf8_lossy(&b[..n]));
        }
    }

    /// The next `line` event's data (keep-alive comments skipped).
    pub fn next(&mut self) -> serde_json::Value {
        loop {
            let ev = self.until("\n\n");
            if let Some(data) = ev
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .filter(|_| ev.contains("event: line"))
            {
                return serde_json::from_str(data).expect("JSON event");
            }
        }
    }
}
