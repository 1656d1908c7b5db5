//! The HTTP side: routes, cookies, CSRF, the security headers. Synchronous
//! (`tiny_http`), a few request threads next to the card thread.
//!
//! Every response carries a strict Content-Security-Policy (`default-src
//! 'self'`, no inline script or style), `no-store`, `nosniff`,
//! `Referrer-Policy: same-origin` (with `no-referrer` Chromium posts forms with `Origin: null`) and `frame-ancestors 'none'`. Every POST needs the
//! session's CSRF token in the form (sign-in: the token of a pre-session
//! cookie), and is refused when the browser says it comes from another
//! site. The log line of a request has its method, path (never the query
//! or the body), status and operator.

use std::collections::HashMap;
use std::io::Read as _;

use tiny_http::{Header, Request, Response};
use zeroize::Zeroizing;

use super::accounts::Accounts;
use super::i18n::Lang;
use super::pages::{self, Viewer};
use super::session::{same, token, Session, Sessions};
use super::station::{Outcome, Shared};
use crate::register::journal::{Journal, Who};
use crate::secret::Secret;

const JS: &str = include_str!("counter.js");
const LINE_JS: &str = include_str!("line.js");
const CSS: &str = include_str!("counter.css");
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const MAX_BODY: u64 = 16 * 1024;
/// An upload of the scanner's file (a finger minutiae record is at most
/// 64 KiB) with its form.
const MAX_UPLOAD: u64 = 80 * 1024;
/// Dashboards open at once (each holds a request thread).
const MAX_STREAMS: usize = 2;
/// Request threads.
pub const THREADS: usize = 6;

/// Everything the request threads share.
pub struct App<'a> {
    pub shared: &'a Shared,
    pub sessions: Sessions,
    pub accounts: Accounts,
    pub journal: &'a dyn Journal,
    /// The station (operator filled in per action).
    pub who: Who,
    pub tls: bool,
    /// Dashboards streaming now.
    pub streams: std::sync::atomic::AtomicUsize,
}

struct Reply {
    status: u16,
    ctype: &'static str,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Reply {
    fn html(status: u16, body: String) -> Reply {
        Reply {
            status,
            ctype: "text/html; charset=utf-8",
            body: body.into_bytes(),
            headers: Vec::new(),
        }
    }
    fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            ctype: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
            headers: Vec::new(),
        }
    }
    fn redirect(to: &str) -> Reply {
        let mut r = Reply::text(303, "");
        r.headers.push(("Location".into(), to.into()));
        r
    }
    fn cookie(mut self, c: String) -> Reply {
        self.headers.push(("Set-Cookie".into(), c));
        self
    }
}

/// A request, read: path, query, cookies, form (secret values zeroized on
/// drop).
struct Req {
    method: String,
    path: String,
    query: HashMap<String, String>,
    cookies: HashMap<String, String>,
    form: Vec<(String, Zeroizing<String>)>,
    /// The scanner's file, uploaded (`template` part of a multipart form).
    file: Option<Zeroizing<Vec<u8>>>,
    origin: Option<String>,
    fetch_site: Option<String>,
    host: Option<String>,
}

impl Req {
    fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `application/x-www-form-urlencoded`, decoded into zeroizing strings.
fn parse_form(body: &[u8]) -> Vec<(String, Zeroizing<String>)> {
    fn decode(s: &[u8]) -> Zeroizing<String> {
        let mut out = Zeroizing::new(Vec::with_capacity(s.len()));
        let mut i = 0;
        while let Some(&c) = s.get(i) {
            match c {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    let hex = s
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok());
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        Zeroizing::new(String::from_utf8_lossy(&out).into_owned())
    }
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = match p.iter().position(|b| *b == b'=') {
                Some(i) => (
                    p.get(..i).unwrap_or_default(),
                    p.get(i + 1..).unwrap_or_default(),
                ),
                None => (p, &[][..]),
            };
            (decode(k).to_string(), decode(v))
        })
        .collect()
}

/// The parts of a `multipart/form-data` body: name and content. None
/// when the body does not follow the form (no boundary, a part without a
/// name).
fn parse_multipart(ctype: &str, body: &[u8]) -> Option<Vec<(String, Zeroizing<Vec<u8>>)>> {
    let boundary = ctype
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    if boundary.is_empty() || boundary.len() > 200 {
        return None;
    }
    let delim = format!("--{boundary}").into_bytes();
    let find = |hay: &[u8], needle: &[u8], from: usize| -> Option<usize> {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    };
    let mut at = find(body, &delim, 0)? + delim.len();
    let mut parts = Vec::new();
    loop {
        // "--" after a delimiter closes the body.
        if body.get(at..at + 2) == Some(b"--") {
            return Some(parts);
        }
        let start = at + 2; // CRLF after the delimiter
        let head_end = find(body, b"\r\n\r\n", start)?;
        let head = String::from_utf8_lossy(body.get(start..head_end)?).into_owned();
        let name = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?
            .split(';')
            .find_map(|p| p.trim().strip_prefix("name="))?
            .trim_matches('"')
            .to_string();
        let next = find(body, &delim, head_end + 4)?;
        // The content ends with the CRLF before the next delimiter.
        let end = next.checked_sub(2).filter(|e| *e >= head_end + 4)?;
        parts.push((name, Zeroizing::new(body.get(head_end + 4..end)?.to_vec())));
        at = next + delim.len();
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}

fn read(req: &mut Request) -> Result<Req, Reply> {
    let url = req.url().to_string();
    let (path, q) = url.split_once('?').unwrap_or((&url, ""));
    let query = parse_form(q.as_bytes())
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    let cookies = header(req, "Cookie")
        .map(|c| {
            c.split(';')
                .filter_map(|kv| kv.trim().split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut body = Zeroizing::new(Vec::new());
    let ctype = header(req, "Content-Type").unwrap_or_default();
    let multipart = ctype.starts_with("multipart/form-data");
    let limit = if multipart { MAX_UPLOAD } else { MAX_BODY };
    if req.method() == &tiny_http::Method::Post {
        if req.body_length().is_some_and(|n| n as u64 > limit) {
            return Err(Reply::text(
                413,
                &format!("request body too large: at most {limit} bytes"),
            ));
        }
        let r = req.as_reader().take(limit + 1).read_to_end(&mut body);
        if r.is_err() || body.len() as u64 > limit {
            return Err(Reply::text(
                413,
                &format!("request body too large or unreadable: at most {limit} bytes"),
            ));
        }
    }
    let (form, file) = if multipart {
        match parse_multipart(&ctype, &body) {
            Some(parts) => {
                let mut form = Vec::new();
                let mut file = None;
                for (name, data) in parts {
                    if name == "template" {
                        file = Some(data);
                    } else {
                        form.push((
                            name,
                            Zeroizing::new(String::from_utf8_lossy(&data).into_owned()),
                        ));
                    }
                }
                (form, file)
            }
            None => return Err(Reply::text(
                400,
                "multipart/form-data: expected a boundary and parts with Content-Disposition names",
            )),
        }
    } else {
        (parse_form(&body), None)
    };
    Ok(Req {
        method: req.method().as_str().to_string(),
        path: path.to_string(),
        query,
        cookies,
        form,
        file,
        origin: header(req, "Origin"),
        fetch_site: header(req, "Sec-Fetch-Site"),
        host: header(req, "Host"),
    })
}

impl App<'_> {
    fn cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> String {
        format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Strict{}{}",
            if self.tls { "; Secure" } else { "" },
            max_age
                .map(|s| format!("; Max-Age={s}"))
                .unwrap_or_default()
        )
    }

    fn who(&self, operator: &str) -> Who {
        Who {
            operator: operator.to_string(),
            ..self.who.clone()
        }
    }

    fn event(&self, operator: &str, kind: &str, detail: &str) {
        if let Err(e) = self.journal.event(&self.who(operator), kind, detail) {
            eprintln!("web: journal: {e}");
        }
    }

    /// A POST from this site's own page? (The browser says so with Origin
    /// and Sec-Fetch-Site; the CSRF token is checked separately.)
    fn same_site(&self, r: &Req) -> bool {
        if let Some(site) = &r.fetch_site {
            if site != "same-origin" && site != "none" {
                return false;
            }
        }
        match (&r.origin, &r.host) {
            (Some(o), Some(h)) => {
                let scheme = if self.tls { "https" } else { "http" };
                o == &format!("{scheme}://{h}")
            }
            (Some(_), None) => false,
            _ => true,
        }
    }

    /// The line dashboard's event stream: the latest batch and the line
    /// readers, sent whenever they change (a comment every ~15 s keeps the
    /// connection alive), until the session ends or the browser leaves.
    /// Written on the connection directly, so each event is flushed.
    fn events(&self, request: Request) {
        use std::io::Write as _;
        use std::sync::atomic::Ordering::SeqCst;
        let sid = header(&request, "Cookie")
            .and_then(|c| {
                c.split(';')
                    .filter_map(|kv| kv.trim().split_once('='))
                    .find(|(k, _)| *k == "cs_session")
                    .map(|(_, v)| v.to_string())
            })
            .unwrap_or_default();
        let Some(s) = self.sessions.get(&sid, true) else {
            eprintln!("web: GET /line/events 401 -");
            let _ = request.respond(Response::from_string("sign in first").with_status_code(401));
            return;
        };
        if self.streams.fetch_add(1, SeqCst) >= MAX_STREAMS {
            self.streams.fetch_sub(1, SeqCst);
            eprintln!("web: GET /line/events 503 {}", s.operator);
            let _ = request
                .respond(Response::from_string("too many dashboards open").with_status_code(503));
            return;
        }
        eprintln!("web: GET /line/events 200 {}", s.operator);
        let mut w = request.into_writer();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nContent-Security-Policy: {CSP}\r\nConnection: close\r\n\r\n"
        );
        let mut last = String::new();
        let mut quiet = 0u32;
        let mut ok = w.write_all(head.as_bytes()).and_then(|_| w.flush()).is_ok();
        while ok && self.sessions.get(&sid, false).is_some() && !self.shared.stopping() {
            let ev = match super::dashboard::snapshot(self.journal) {
                Ok(snap) => super::dashboard::event(&snap),
                Err(e) => format!("event: failure\ndata: {}\n\n", serde_json::Value::String(e)),
            };
            let out = if ev != last {
                quiet = 0;
                last = ev.clone();
                Some(ev)
            } else {
                quiet += 1;
                quiet
                    .is_multiple_of(30)
                    .then(|| ": keep-alive\n\n".to_string())
            };
            if let Some(out) = out {
                ok = w.write_all(out.as_bytes()).and_then(|_| w.flush()).is_ok();
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        self.streams.fetch_sub(1, SeqCst);
    }

    /// Handle one request; the operator for the log line.
    pub fn handle(&self, mut request: Request) {
        if request.method() == &tiny_http::Method::Get && request.url() == "/line/events" {
            return self.events(request);
        }
        let (reply, operator, method, path) = match read(&mut request) {
            Ok(r) => {
                let (reply, op) = self.route(&r);
                (reply, op, r.method.clone(), r.path.clone())
            }
            Err(reply) => (
                reply,
                None,
                request.method().as_str().to_string(),
                String::new(),
            ),
        };
        eprintln!(
            "web: {method} {path} {} {}",
            reply.status,
            operator.as_deref().unwrap_or("-")
        );
        let mut resp = Response::from_data(reply.body).with_status_code(reply.status);
        let mut hs = vec![
            ("Content-Type".to_string(), reply.ctype.to_string()),
            ("Content-Security-Policy".into(), CSP.into()),
            ("Cache-Control".into(), "no-store".into()),
            ("X-Content-Type-Options".into(), "nosniff".into()),
            ("Referrer-Policy".into(), "same-origin".into()),
            ("X-Frame-Options".into(), "DENY".into()),
        ];
        hs.extend(reply.headers);
        for (k, v) in hs {
            if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                resp.add_header(h);
            }
        }
        let _ = request.respond(resp);
    }

    fn route(&self, r: &Req) -> (Reply, Option<String>) {
        let sid = r.cookies.get("cs_session").cloned().unwrap_or_default();
        let poll = r.path == "/status";
        let session = self.sessions.get(&sid, !poll);
        if let (Some(l), Some(_)) = (r.query.get("lang").and_then(|l| Lang::parse(l)), &session) {
            self.sessions.set_lang(&sid, l);
        }
        let session = self.sessions.get(&sid, false);
        let op = session.as_ref().map(|s| s.operator.clone());
        if let Some(asset) = static_asset(&r.method, &r.path) {
            return (asset, op);
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/login") => return (self.login_page(r, false), op),
            ("POST", "/login") => return self.login(r),
            _ => {}
        }
        let Some(s) = session else {
            return (
                match r.method.as_str() {
                    "GET" if r.path != "/status" && !r.path.starts_with("/counter/") => {
                        Reply::redirect("/login?note=1")
                    }
                    _ => Reply::text(401, "sign in first"),
                },
                None,
            );
        };
        if r.method == "POST" {
            let token_ok = r.field("csrf").is_some_and(|t| same(t, &s.csrf));
            if !token_ok || !self.same_site(r) {
                self.event(
                    &s.operator,
                    "web request refused",
                    &format!("POST {}: cross-site or without the form's token", r.path),
                );
                return (
                    Reply::text(
                        403,
                        "refused: the request did not come from this station's own page",
                    ),
                    op,
                );
            }
        }
        (self.signed_in(r, &s, &sid), op)
    }

    /// The routes of a signed-in operator (the form's token checked).
    fn signed_in(&self, r: &Req, s: &Session, sid: &str) -> Reply {
        let v = Viewer {
            lang: s.lang,
            operator: Some(&s.operator),
            csrf: &s.csrf,
        };
        let sh = self.shared;
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/") => Reply::redirect("/counter"),
            ("GET", "/counter") => Reply::html(200, pages::counter(&v, sh, &sh.lock())),
            ("GET", "/status") => Reply {
                status: 200,
                ctype: "application/json",
                body: format!("{{\"v\":{}}}", sh.version()).into_bytes(),
                headers: Vec::new(),
            },
            ("GET", "/counter/photo") => self.photo(s),
            ("GET", "/counter/receipt") => self.receipt(r, s, &v),
            ("POST", "/logout") => {
                self.sessions.close(sid);
                if !self.sessions.signed_in(&s.operator) {
                    sh.release(&s.operator);
                }
                self.event(
                    &s.operator,
                    "web sign-out",
                    &format!("office {}", sh.office),
                );
                Reply::redirect("/login").cookie(self.cookie("cs_session", "", Some(0)))
            }
            ("POST", "/counter/upload") => match &r.file {
                Some(f) if !f.is_empty() => match sh.upload(&s.operator, f) {
                    Ok(()) => Reply::redirect("/counter"),
                    Err(e) => Reply::text(409, &e),
                },
                _ => Reply::text(
                    400,
                    "field template: expected the scanner's ISO/IEC 19794-2 file",
                ),
            },
            ("POST", "/counter/continue") => self.continue_step(r, s),
            ("POST", "/counter/finger") => match r.field("do") {
                Some(a @ ("next" | "cancel")) => match sh.answer(&s.operator, a) {
                    Ok(()) => Reply::redirect("/counter"),
                    Err(e) => Reply::text(409, e),
                },
                _ => Reply::text(400, "field do: expected next or cancel"),
            },
            ("POST", "/counter/pins") => self.pins(r, s),
            ("GET", "/queue") | ("POST", "/queue") => {
                match super::queue::expected(self.journal, &sh.office) {
                    Ok(all) => Reply::html(
                        200,
                        pages::queue(&v, &sh.office, &all, r.field("q").unwrap_or("")),
                    ),
                    Err(e) => Reply::text(503, &format!("the register cannot be read: {e}")),
                }
            }
            ("GET", "/line") => Reply::html(200, pages::line(&v, &sh.office)),
            ("POST", "/counter/waive") => self.waive(r, &s.operator),
            ("POST", "/counter/next") => {
                sh.clear(&s.operator);
                Reply::redirect("/counter")
            }
            _ => Reply::text(404, "no such page"),
        }
    }

    /// The holder's photo, to the operator whose flow it is.
    fn photo(&self, s: &Session) -> Reply {
        let sh = self.shared;
        let f = sh.lock();
        let mine = f.flow_operator.as_deref() == Some(s.operator.as_str());
        match f.holder.as_ref().and_then(|h| h.photo.clone()) {
            Some(p) if mine => Reply {
                status: 200,
                ctype: "image/jpeg",
                body: p,
                headers: Vec::new(),
            },
            _ => Reply::text(404, "no photo"),
        }
    }

    /// The delivery receipt (A5, or `layout=thermal` for 80 mm), to the
    /// operator who made the delivery.
    fn receipt(&self, r: &Req, s: &Session, v: &Viewer<'_>) -> Reply {
        let sh = self.shared;
        let f = sh.lock();
        match &f.outcome {
            Some(Outcome::Activated(rc)) if rc.operator == s.operator => {
                let thermal = r.query.get("layout").map(String::as_str) == Some("thermal");
                Reply::html(200, pages::receipt(v, &sh.office, rc, thermal))
            }
            _ => Reply::text(404, "no delivery of yours to print"),
        }
    }

    /// Steps 1 and 2: go on, or cancel.
    fn continue_step(&self, r: &Req, s: &Session) -> Reply {
        let sh = self.shared;
        let step = match r.field("step") {
            Some("1") => Some(1),
            Some("2") => Some(2),
            _ => None,
        };
        match (step, r.field("do")) {
            (Some(n), Some(a @ ("continue" | "cancel"))) => {
                match sh.proceed(&s.operator, n, a == "continue") {
                    Ok(()) => Reply::redirect("/counter"),
                    Err(e) => Reply::text(409, e),
                }
            }
            (None, _) => Reply::text(400, "field step: expected 1 or 2"),
            _ => Reply::text(400, "field do: expected continue or cancel"),
        }
    }

    /// The holder's PINs, entered twice.
    fn pins(&self, r: &Req, s: &Session) -> Reply {
        let sh = self.shared;
        let secret = |name: &str| r.field(name).map(|p| Secret::new(p.as_bytes().to_vec()));
        let entries: Vec<Secret> = [secret("pin1"), secret("pin2")]
            .into_iter()
            .flatten()
            .collect();
        if entries.is_empty() {
            Reply::text(400, "field pin1: expected the PIN")
        } else {
            match sh.give_pins(&s.operator, entries) {
                Ok(()) => Reply::redirect("/counter"),
                Err(e) => Reply::text(409, e),
            }
        }
    }

    /// A supervisor waives the rule that refused the holder's PIN: the
    /// supervisor's own name and password (four eyes, whoever is signed
    /// in) and a written reason, journaled with the supervisor as operator.
    fn waive(&self, r: &Req, operator: &str) -> Reply {
        let sh = self.shared;
        let name = r.field("sup_name").unwrap_or("").trim();
        let password = r.field("sup_password").unwrap_or("");
        let reason = r.field("reason").unwrap_or("").trim();
        let ok = self
            .accounts
            .verify(name, password.as_bytes())
            .filter(|a| a.role == super::accounts::Role::Supervisor)
            .is_some();
        if !ok || reason.chars().count() < 10 || reason.chars().count() > 500 {
            self.event(
                operator,
                "supervisor override refused",
                &format!(
                    "card {}: {name:?} is not a supervisor with that password, or gave no written reason",
                    sh.serial()
                ),
            );
            sh.refuse_override();
            return Reply::redirect("/counter");
        }
        let why = sh.lock().waivable.clone().unwrap_or_default();
        let w = crate::activate::pinentry::Waiver {
            supervisor: name.to_string(),
            reason: reason.to_string(),
        };
        match sh.give_waiver(operator, w) {
            Ok(()) => {
                self.event(
                    name,
                    "supervisor override",
                    &format!(
                        "card {}: PIN refused ({why}) at {operator}'s counter, accepted; reason: {reason}",
                        sh.serial()
                    ),
                );
                Reply::redirect("/counter")
            }
            Err(e) => Reply::text(409, e),
        }
    }

    fn login_page(&self, r: &Req, failed: bool) -> Reply {
        let lang = r
            .query
            .get("lang")
            .and_then(|l| Lang::parse(l))
            .or_else(|| r.field("lang").and_then(Lang::parse))
            .unwrap_or(Lang::Fa);
        let pre = r
            .cookies
            .get("cs_pre")
            .filter(|t| t.len() == 64)
            .cloned()
            .unwrap_or_else(token);
        let v = Viewer {
            lang,
            operator: None,
            csrf: &pre,
        };
        let note = r.query.contains_key("note").then_some("sign_in_first");
        Reply::html(
            if failed { 403 } else { 200 },
            pages::login(&v, &self.shared.office, failed, note),
        )
        .cookie(self.cookie("cs_pre", &pre, None))
    }

    fn login(&self, r: &Req) -> (Reply, Option<String>) {
        let pre = r.cookies.get("cs_pre").map(String::as_str).unwrap_or("");
        if !r.field("csrf").is_some_and(|t| same(t, pre)) || !self.same_site(r) {
            return (
                Reply::text(
                    403,
                    "refused: the sign-in did not come from this station's own page",
                ),
                None,
            );
        }
        let name = r.field("name").unwrap_or("").trim().to_string();
        let password = r.field("password").unwrap_or("");
        let lang = r.field("lang").and_then(Lang::parse).unwrap_or(Lang::Fa);
        match self.accounts.verify(&name, password.as_bytes()) {
            Some(acct) => match self.sessions.open(&acct.name, acct.role, lang) {
                Some(id) => {
                    self.shared.take(&acct.name);
                    self.event(
                        &acct.name,
                        "web sign-in",
                        &format!("office {}, role {}", self.shared.office, acct.role.as_str()),
                    );
                    (
                        Reply::redirect("/counter").cookie(self.cookie("cs_session", &id, None)),
                        Some(acct.name.clone()),
                    )
                }
                None => (Reply::text(500, "no session could be made"), None),
            },
            None => {
                self.event(
                    "-",
                    "web sign-in refused",
                    &format!("operator {name:?}: wrong name or password"),
                );
                (self.login_page(r, true), None)
            }
        }
    }
}

/// The station's own scripts and style sheet.
fn static_asset(method: &str, path: &str) -> Option<Reply> {
    if method != "GET" {
        return None;
    }
    let (ctype, body) = match path {
        "/static/counter.js" => ("text/javascript; charset=utf-8", JS),
        "/static/line.js" => ("text/javascript; charset=utf-8", LINE_JS),
        "/static/counter.css" => ("text/css; charset=utf-8", CSS),
        _ => return None,
    };
    Some(Reply {
        status: 200,
        ctype,
        body: body.as_bytes().to_vec(),
        headers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_and_bad_escapes_stay_as_they_are() {
        let f = parse_form(b"name=clerk%37&pin1=480913&x=a+b%2&y=%zz&&flag");
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.to_string());
        assert_eq!(get("name").as_deref(), Some("clerk7"));
        assert_eq!(get("pin1").as_deref(), Some("480913"));
        assert_eq!(get("x").as_deref(), Some("a b%2"));
        assert_eq!(get("y").as_deref(), Some("%zz"));
        assert_eq!(get("flag").as_deref(), Some(""));
        assert!(parse_form(b"%").len() == 1);
    }

    #[test]
    fn multipart_forms_give_their_parts_and_bad_ones_none() {
        let ct = "multipart/form-data; boundary=----XyZ";
        let body = b"------XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nABC\r\n------XyZ\r\nContent-Disposition: form-data; name=\"template\"; filename=\"scan.iso\"\r\nContent-Type: application/octet-stream\r\n\r\nFMR\0\r\n\x01\r\n------XyZ--\r\n";
        let parts = parse_multipart(ct, body).expect("parts");
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].0.as_str(), parts[0].1.as_slice()),
            ("csrf", &b"ABC"[..])
        );
        assert_eq!(parts[1].0, "template");
        assert_eq!(parts[1].1.as_slice(), b"FMR\0\r\n\x01");
        assert!(parse_multipart("multipart/form-data", body).is_none());
        assert!(parse_multipart(ct, b"------XyZ\r\nno head").is_none());
        assert!(parse_multipart(ct, b"").is_none());
        let nameless = b"------XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n------XyZ--";
        assert!(parse_multipart(ct, nameless).is_none());
    }
}
