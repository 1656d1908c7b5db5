//! A small WebDriver client for tests that need a real browser: it starts
//! `chromedriver` on a free port, opens a headless Chromium session and
//! speaks the W3C WebDriver protocol over plain HTTP/1.1
//! (`std::net::TcpStream` and `serde_json`, no other crate).
//!
//! ```ignore
//! let b = Browser::start(1024, 768).expect("chromedriver");
//! b.goto(&format!("file://{}", page.display())).unwrap();
//! let rows = b.find_all("table tr").unwrap();
//! let dir = b.css_value(&rows[1], "direction").unwrap();
//! let png = b.screenshot().unwrap();
//! ```
//!
//! The session is deleted and chromedriver killed when the `Browser` is
//! dropped. Environment: `CHROMEDRIVER` (driver program, default
//! `chromedriver`) and `CHROME_BIN` (browser binary; default: chromedriver's
//! own choice, `/usr/bin/chromium` on Debian).
#![allow(dead_code)]

use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// W3C's key for an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// What went wrong talking to the driver: the HTTP status and the
/// WebDriver error code and message when the driver sent one, or a
/// transport problem (status 0).
#[derive(Clone)]
pub struct WebDriverError {
    pub status: u16,
    pub error: String,
    pub message: String,
}

impl fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.status == 0 {
            write!(f, "webdriver: {}: {}", self.error, self.message)
        } else {
            write!(
                f,
                "webdriver: HTTP {}: {}: {}",
                self.status, self.error, self.message
            )
        }
    }
}

impl fmt::Debug for WebDriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for WebDriverError {}

fn transport(what: &str, e: impl fmt::Display) -> WebDriverError {
    WebDriverError {
        status: 0,
        error: what.to_string(),
        message: e.to_string(),
    }
}

pub type Result<T> = std::result::Result<T, WebDriverError>;

/// An element of the current page, as the driver names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element(pub String);

impl Element {
    fn json(&self) -> Value {
        json!({ ELEMENT_KEY: self.0 })
    }
}

/// An element's box in CSS pixels, relative to the page.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// How to start the browser.
#[derive(Clone, Debug)]
pub struct Options {
    pub width: u32,
    pub height: u32,
    /// Extra Chromium switches, e.g. `--lang=fa`.
    pub args: Vec<String>,
    /// How long to wait for chromedriver to come up.
    pub startup: Duration,
}

impl Options {
    pub fn new(width: u32, height: u32) -> Options {
        Options {
            width,
            height,
            args: Vec::new(),
            startup: Duration::from_secs(30),
        }
    }
}

/// A headless Chromium driven through chromedriver.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// One HTTP/1.1 exchange with chromedriver; returns the status and the
/// parsed JSON body.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| transport("connect", e))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| transport("socket", e))?;
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if body.is_some() {
        req.push_str("Content-Type: application/json; charset=utf-8\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", payload.len()));
    s.write_all(req.as_bytes())
        .and_then(|_| s.write_all(payload.as_bytes()))
        .map_err(|e| transport("send", e))?;
    // chromedriver may keep the connection open whatever we ask, so read
    // exactly the headers and then the body they announce.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut buf).map_err(|e| transport("receive", e))?;
        if n == 0 {
            return Err(transport("receive", "connection closed before headers"));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| transport("receive", format!("bad status line in {head:?}")))?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_ascii_lowercase())
        })
    };
    if let Some(len) = header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|e| transport("receive", format!("Content-Length {len:?}: {e}")))?;
        while body.len() < len {
            let n = s.read(&mut buf).map_err(|e| transport("receive", e))?;
            if n == 0 {
                return Err(transport("receive", "connection closed inside the body"));
            }
            body.extend_from_slice(&buf[..n]);
        }
        body.truncate(len);
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        while !body.ends_with(b"0\r\n\r\n") {
            let n = s.read(&mut buf).map_err(|e| transport("receive", e))?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
        body = dechunk(&body)?;
    } else {
        s.read_to_end(&mut body)
            .map_err(|e| transport("receive", e))?;
    }
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| transport("JSON from driver", e))?
    };
    Ok((status, value))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| transport("chunked body", "no chunk size line"))?;
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|e| transport("chunked body", format!("size {size_text:?}: {e}")))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size {
            return Err(transport("chunked body", "truncated chunk"));
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
}

/// The `value` of a WebDriver answer, or its error.
fn unwrap_value(status: u16, v: Value) -> Result<Value> {
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if status == 200 {
        return Ok(value);
    }
    Err(WebDriverError {
        status,
        error: value
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown error")
            .to_string(),
        message: value
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    })
}

fn as_element(v: &Value) -> Result<Element> {
    v.get(ELEMENT_KEY)
        .and_then(Value::as_str)
        .map(|s| Element(s.to_string()))
        .ok_or_else(|| transport("element reference", format!("not an element: {v}")))
}

impl Browser {
    /// A headless Chromium with a window of `width` x `height` CSS pixels.
    pub fn start(width: u32, height: u32) -> Result<Browser> {
        Browser::start_with(Options::new(width, height))
    }

    pub fn start_with(opts: Options) -> Result<Browser> {
        let port = free_port().map_err(|e| transport("free port", e))?;
        let program = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let driver = Command::new(&program)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| transport(&format!("starting {program}"), e))?;
        let profile = tempfile::Builder::new()
            .prefix("cardsmith-chromium")
            .tempdir()
            .map_err(|e| transport("profile directory", e))?;
        // From here on, Drop cleans up the driver if anything fails.
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        b.wait_ready(opts.startup)?;
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--hide-scrollbars".to_string(),
            format!("--window-size={},{}", opts.width, opts.height),
            format!("--user-data-dir={}", b._profile.path().display()),
        ];
        args.extend(opts.args.iter().cloned());
        let mut chrome = json!({ "args": args });
        if let Ok(bin) = std::env::var("CHROME_BIN") {
            chrome["binary"] = json!(bin);
        }
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": chrome,
            }}
        });
        let (status, v) = http(port, "POST", "/session", Some(&caps))?;
        let value = unwrap_value(status, v)?;
        b.session = value
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| transport("new session", format!("no sessionId in {value}")))?
            .to_string();
        // --window-size counts the browser's own frame even when headless;
        // make the page's viewport (and so a screenshot) the size asked.
        b.set_viewport(opts.width, opts.height)?;
        Ok(b)
    }

    /// The page's viewport (`innerWidth`, `innerHeight`) in CSS pixels.
    pub fn viewport(&self) -> Result<(u32, u32)> {
        let v = self.execute("return [window.innerWidth, window.innerHeight];", vec![])?;
        let n = |i: usize| v[i].as_u64().unwrap_or(0) as u32;
        Ok((n(0), n(1)))
    }

    /// Resizes the window so that the viewport is `width` x `height`.
    pub fn set_viewport(&self, width: u32, height: u32) -> Result<()> {
        for _ in 0..3 {
            let (iw, ih) = self.viewport()?;
            if (iw, ih) == (width, height) {
                return Ok(());
            }
            let r = self.command("GET", "/window/rect", None)?;
            let ow = r["width"].as_i64().unwrap_or(width as i64);
            let oh = r["height"].as_i64().unwrap_or(height as i64);
            let nw = ow + width as i64 - iw as i64;
            let nh = oh + height as i64 - ih as i64;
            self.command(
                "POST",
                "/window/rect",
                Some(json!({ "width": nw, "height": nh })),
            )?;
        }
        let got = self.viewport()?;
        Err(transport(
            "viewport",
            format!("asked {width}x{height}, got {}x{}", got.0, got.1),
        ))
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = self.driver.try_wait() {
                return Err(transport("chromedriver", format!("exited early: {st}")));
            }
            if let Ok((200, v)) = http(self.port, "GET", "/status", None) {
                if v["value"]["ready"].as_bool() == Some(true) {
                    return Ok(());
                }
            }
            if start.elapsed() > limit {
                return Err(transport(
                    "chromedriver",
                    format!("not ready on port {} after {limit:?}", self.port),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A command on the session: `path` is relative to `/session/{id}`.
    pub fn command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let full = format!("/session/{}{}", self.session, path);
        let body = match (method, body) {
            ("POST", None) => Some(json!({})),
            (_, b) => b,
        };
        let (status, v) = http(self.port, method, &full, body.as_ref())?;
        unwrap_value(status, v)
    }

    pub fn session_id(&self) -> &str {
        &self.session
    }

    /// Navigates to `url` (`file://…`, `http://…`, `data:…`) and waits for
    /// the page to load.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.command("POST", "/url", Some(json!({ "url": url })))
            .map(|_| ())
    }

    pub fn current_url(&self) -> Result<String> {
        Ok(self
            .command("GET", "/url", None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    pub fn title(&self) -> Result<String> {
        Ok(self
            .command("GET", "/title", None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// The page's current HTML.
    pub fn source(&self) -> Result<String> {
        Ok(self
            .command("GET", "/source", None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// The first element matching a CSS selector (error `no such element`
    /// if none).
    pub fn find(&self, css: &str) -> Result<Element> {
        let v = self.command(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        )?;
        as_element(&v)
    }

    /// Every element matching a CSS selector, in document order.
    pub fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let v = self.command(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        )?;
        v.as_array()
            .map(|a| a.iter().map(as_element).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Elements matching a CSS selector inside `parent`.
    pub fn find_all_in(&self, parent: &Element, css: &str) -> Result<Vec<Element>> {
        let v = self.command(
            "POST",
            &format!("/element/{}/elements", parent.0),
            Some(json!({ "using": "css selector", "value": css })),
        )?;
        v.as_array()
            .map(|a| a.iter().map(as_element).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Waits until an element matches `css`, polling up to `limit`.
    pub fn wait_for(&self, css: &str, limit: Duration) -> Result<Element> {
        let start = Instant::now();
        loop {
            match self.find(css) {
                Ok(e) => return Ok(e),
                Err(e) if e.error == "no such element" && start.elapsed() < limit => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The element's rendered text.
    pub fn text(&self, el: &Element) -> Result<String> {
        Ok(self
            .command("GET", &format!("/element/{}/text", el.0), None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// An HTML attribute, `None` when absent.
    pub fn attribute(&self, el: &Element, name: &str) -> Result<Option<String>> {
        let v = self.command("GET", &format!("/element/{}/attribute/{name}", el.0), None)?;
        Ok(v.as_str().map(str::to_string))
    }

    /// A DOM property (e.g. `value`, `checked`), as JSON.
    pub fn property(&self, el: &Element, name: &str) -> Result<Value> {
        self.command("GET", &format!("/element/{}/property/{name}", el.0), None)
    }

    /// A computed CSS value, e.g. `direction` or `text-align`.
    pub fn css_value(&self, el: &Element, prop: &str) -> Result<String> {
        Ok(self
            .command("GET", &format!("/element/{}/css/{prop}", el.0), None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    pub fn tag_name(&self, el: &Element) -> Result<String> {
        Ok(self
            .command("GET", &format!("/element/{}/name", el.0), None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    pub fn rect(&self, el: &Element) -> Result<Rect> {
        let v = self.command("GET", &format!("/element/{}/rect", el.0), None)?;
        let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
        Ok(Rect {
            x: f("x"),
            y: f("y"),
            width: f("width"),
            height: f("height"),
        })
    }

    pub fn is_displayed(&self, el: &Element) -> Result<bool> {
        Ok(self
            .command("GET", &format!("/element/{}/displayed", el.0), None)?
            .as_bool()
            .unwrap_or(false))
    }

    pub fn click(&self, el: &Element) -> Result<()> {
        self.command("POST", &format!("/element/{}/click", el.0), None)
            .map(|_| ())
    }

    pub fn clear(&self, el: &Element) -> Result<()> {
        self.command("POST", &format!("/element/{}/clear", el.0), None)
            .map(|_| ())
    }

    /// Types `text` into the element (WebDriver key codes such as
    /// `"\u{E007}"` for Enter are passed through).
    pub fn send_keys(&self, el: &Element, text: &str) -> Result<()> {
        self.command(
            "POST",
            &format!("/element/{}/value", el.0),
            Some(json!({ "text": text })),
        )
        .map(|_| ())
    }

    /// Runs JavaScript synchronously in the page; `args` are available as
    /// `arguments[i]` (pass `Element::json` values through `element_arg`).
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// An element as a script argument for `execute`.
    pub fn element_arg(el: &Element) -> Value {
        el.json()
    }

    /// A screenshot of the viewport, as PNG bytes.
    pub fn screenshot(&self) -> Result<Vec<u8>> {
        let v = self.command("GET", "/screenshot", None)?;
        let b64 = v
            .as_str()
            .ok_or_else(|| transport("screenshot", "no base64 string"))?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| transport("screenshot base64", e))
    }

    /// A screenshot of one element, as PNG bytes.
    pub fn element_screenshot(&self, el: &Element) -> Result<Vec<u8>> {
        let v = self.command("GET", &format!("/element/{}/screenshot", el.0), None)?;
        let b64 = v
            .as_str()
            .ok_or_else(|| transport("screenshot", "no base64 string"))?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| transport("screenshot base64", e))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Width and height of a PNG, read from its IHDR chunk; `None` if the bytes
/// are not a PNG.
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    const SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if png.len() < 24 || &png[..8] != SIG || &png[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(png[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(png[20..24].try_into().ok()?);
    Some((w, h))
}
