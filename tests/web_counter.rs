//! The web counter (`cardsmith counter serve`) in a real headless Chromium
//! through chromedriver, against the station's own process driving the
//! simulated card in vpcd's reader through pcscd: a whole activation in
//! Persian (sign in, card, holder's Persian name, genuine finger, a PIN
//! against the policy then good PINs, the receipt), the register showing
//! the delivery by the signed-in operator; the refusals on screen in both
//! languages (impostor finger, card pulled mid-flow, card for another
//! office, PIN against the policy); the security properties (no session,
//! a forged cross-site POST, no PIN in the server's log or any page, the
//! headers). Screenshots of each screen in fa and en go to
//! `target/screenshots/counter-web/` (the path is printed).

mod activate_support;
mod browser_support;
mod common;
mod web_support;

use browser_support::Browser;
use cardsmith::register::journal::{CardStatus, Journal as _};
use std::path::{Path, PathBuf};
use std::time::Duration;
use web_support::{http, sign_in, Env, Station};

const WAIT: Duration = Duration::from_secs(90);
const PASSWORD: &str = "counter-pass-7";
const SUP_PASSWORD: &str = "supervisor-pass-1";
const SIG_PIN: &str = "73920461";
const BAD_PIN: &str = "123456";

/// The browser and everything it was shown.
struct Seen {
    b: Browser,
    pages: Vec<String>,
    shots: PathBuf,
}

impl Seen {
    fn start() -> Seen {
        let b = Browser::start(1100, 1000).expect("chromedriver with headless Chromium");
        let shots = web_support::screenshot_dir();
        println!("screenshots: {}", shots.display());
        Seen {
            b,
            pages: Vec::new(),
            shots,
        }
    }

    /// Wait for `css` on the page (the page reloads itself as the station
    /// moves on), keep the page's HTML.
    fn wait(&mut self, css: &str) -> browser_support::Element {
        let e = self
            .b
            .wait_for(css, WAIT)
            .unwrap_or_else(|e| panic!("{css}: {e}\n{}", self.b.source().unwrap_or_default()));
        self.keep();
        e
    }

    fn keep(&mut self) {
        if let Ok(s) = self.b.source() {
            self.pages.push(s);
        }
    }

    fn text(&mut self, css: &str) -> String {
        let e = self.wait(css);
        self.b.text(&e).expect("text")
    }

    /// Click `el`, which loads a new page, and wait for the new page.
    fn click_to_new_page(&mut self, el: &browser_support::Element) {
        self.b
            .execute("document.body.setAttribute('data-old', '1');", vec![])
            .expect("mark the page");
        self.b.click(el).expect("click");
        self.wait("body:not([data-old])");
    }

    /// Wait until the text of `css` contains `want` (the page reloads
    /// meanwhile, so lookups may miss or go stale).
    fn wait_text(&mut self, css: &str, want: &str) {
        let start = std::time::Instant::now();
        loop {
            if let Ok(e) = self.b.find(css) {
                if self.b.text(&e).is_ok_and(|t| t.contains(want)) {
                    self.keep();
                    return;
                }
            }
            assert!(
                start.elapsed() < WAIT,
                "{css} never said {want:?}:\n{}",
                self.b.source().unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn lang(&self) -> String {
        let html = self.b.find("html").expect("html");
        self.b
            .attribute(&html, "lang")
            .expect("lang")
            .unwrap_or_default()
    }

    /// Switch to `lang` with the link every screen has.
    fn switch(&mut self, lang: &str) {
        if self.lang() != lang {
            let a = self.wait(&format!("a.lang[lang=\"{lang}\"]"));
            self.b.click(&a).expect("switch language");
            self.wait(&format!("html[lang=\"{lang}\"]"));
        }
        let html = self.b.find("html").expect("html");
        let dir = self
            .b
            .attribute(&html, "dir")
            .expect("dir")
            .unwrap_or_default();
        assert_eq!(dir, if lang == "fa" { "rtl" } else { "ltr" });
    }

    fn shot(&mut self, name: &str) {
        let png = self.b.screenshot().expect("screenshot");
        assert!(browser_support::png_size(&png).is_some());
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("write screenshot");
        self.keep();
    }

    /// Take the screen in both languages (`<lang>-<name>.png`), checking
    /// `fa` and `en` texts on it; ends in Persian.
    fn both(&mut self, css: &str, name: &str, fa: &str, en: &str) {
        for (lang, want) in [("fa", fa), ("en", en), ("fa", fa)] {
            self.switch(lang);
            let t = self.text(css);
            assert!(t.contains(want), "{lang} {css}: {want:?} not in {t:?}");
            if !self.shots.join(format!("{lang}-{name}.png")).exists() || lang == "en" {
                self.shot(&format!("{lang}-{name}"));
            }
        }
    }

    fn sign_in(&mut self, st: &Station, name: &str) {
        self.b.goto(&st.url("/counter")).expect("goto");
        self.wait("form#login");
        let n = self.b.find("#name").expect("name");
        self.b.send_keys(&n, name).expect("name");
        let p = self.b.find("#password").expect("password");
        self.b.send_keys(&p, PASSWORD).expect("password");
        let go = self.b.find("#sign-in").expect("button");
        self.b.click(&go).expect("sign in");
        self.wait("#waiting");
    }

    /// Move on from the result of step `n`, shown on a screen of its own.
    fn go_on(&mut self, n: u8) {
        let go = self.wait(&format!("#continue-{n}"));
        self.click_to_new_page(&go);
    }

    fn pins(&mut self, which: &str, pin: &str) {
        self.wait(&format!("form#pins[data-pin=\"{which}\"]"));
        for id in ["pin1", "pin2"] {
            let f = self.b.find(&format!("#{id}")).expect("pin field");
            assert_eq!(
                self.b.attribute(&f, "type").expect("type").as_deref(),
                Some("password")
            );
            assert_eq!(
                self.b.attribute(&f, "autocomplete").expect("ac").as_deref(),
                Some("off")
            );
            self.b.send_keys(&f, pin).expect("type the PIN");
        }
        let ok = self.b.find("#pin-ok").expect("ok");
        self.b.click(&ok).expect("submit");
    }
}

fn fresh_shot_dir(d: &Path) {
    for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(e.path());
    }
}

#[test]
fn a_whole_activation_in_chromium_the_refusals_in_both_languages_and_no_pin_anywhere() {
    let env = web_support::setup(8, 31);
    let fi = env.first_issues();
    assert!(fi.len() >= 3, "need three first-issue records");
    let (a, b, c) = (fi[0], fi[1], fi[2]);
    for h in [a, b, c] {
        env.ship(h);
    }
    env.operator("clerk7", "clerk", PASSWORD);
    env.operator("sup1", "supervisor", SUP_PASSWORD);
    let office = a.office();
    let st = Station::start(&env, &office, "station");
    let mut s = Seen::start();
    fresh_shot_dir(&s.shots);

    // Sign-in, Persian first.
    s.b.goto(&st.url("/counter")).expect("goto");
    s.wait("form#login");
    assert_eq!(s.lang(), "fa");
    s.both("#sign-in", "0-sign-in", "ورود", "Sign in");
    s.sign_in(&st, "clerk7");
    s.both(
        "#waiting",
        "1-waiting",
        "کارت دارنده",
        "Insert the holder's card",
    );
    assert_eq!(
        s.b.execute(
            "return [localStorage.length, sessionStorage.length];",
            vec![]
        )
        .expect("storage"),
        serde_json::json!([0, 0])
    );

    // The queue: a's card is expected here; found by name in either script
    // and by national ID in either digits.
    let serial = env.serials[a.id()].clone();
    let row = format!("tr.expected[data-card=\"{serial}\"]");
    let name_fa = format!("{} {}", a.record.given_name().fa, a.record.family_name().fa);
    let nid_fa: String = a
        .nid()
        .chars()
        .map(|c| char::from_u32(0x06F0 + c.to_digit(10).expect("digit")).expect("digit"))
        .collect();
    let nav = s.wait("#nav-queue");
    s.b.click(&nav).expect("queue");
    s.wait(&row);
    let latin = a.record.family_name().latin.to_lowercase();
    for q in [
        a.record.family_name().fa.as_str(),
        &nid_fa,
        &latin,
        "0000000000",
    ] {
        let field = s.wait("#q");
        s.b.clear(&field).expect("clear");
        s.b.send_keys(&field, q).expect("search");
        let go = s.b.find("#search-go").expect("go");
        s.click_to_new_page(&go);
        let hits = s.b.find_all(&row).expect("rows");
        assert_eq!(hits.len(), usize::from(q != "0000000000"), "search {q:?}");
    }
    s.b.goto(&st.url("/queue")).expect("queue");
    s.both(
        "#queue-count",
        "2-queue",
        "دارندهٔ منتظر",
        "holders expected at this office",
    );
    let nav = s.wait("#nav-counter");
    s.b.click(&nav).expect("counter");
    s.wait("#waiting");

    // Step 1 on its own screen: the card authenticated (its genuineness
    // checks), the holder shown with the Persian name.
    let card = env.insert(a);
    s.wait("#genuine");
    assert_eq!(s.text("#step").trim(), "مرحلهٔ ۱ از ۵");
    assert_eq!(s.text("#name-fa"), name_fa);
    assert!(s.text("#holder").contains(&nid_fa), "Persian digits");
    assert!(s.text("#holder").contains(&serial), "the card serial");
    assert!(s
        .b
        .find_all("#genuine li.failed")
        .expect("checks")
        .is_empty());
    assert!(s.b.find_all("#genuine li.ok").expect("checks").len() >= 2);
    s.both(
        "#genuine",
        "3a-card",
        "کارت اصل است",
        "No certificate of the card is revoked",
    );
    s.switch("en");
    assert_eq!(s.text("#name-fa"), name_fa, "Persian name, English page");
    assert!(s.text("#holder").contains("Solar Hijri"));
    assert!(s.text("#holder").contains(a.nid()));
    s.switch("fa");
    assert!(s.text("#holder").contains("هجری خورشیدی"));
    let photo = s.b.find("img.photo").expect("photo on step 1");
    let w =
        s.b.execute(
            "return arguments[0].naturalWidth;",
            vec![Browser::element_arg(&photo)],
        )
        .expect("photo width");
    assert!(w.as_u64().unwrap_or(0) > 0, "the photo loads on step 1");
    assert!(
        env.journal()
            .events(0)
            .expect("events")
            .iter()
            .all(|e| e.kind != "activation started"),
        "the flow waits on step 1's screen"
    );
    s.go_on(1);

    // Step 2 on its own screen: the issuance check against the register.
    s.wait("#issuance");
    let shipment = env
        .journal()
        .shipment(&serial)
        .expect("query")
        .expect("shipped");
    assert_eq!(s.text("#record"), shipment.record_id);
    assert_eq!(s.text("#name-fa"), name_fa);
    s.both(
        "#issuance",
        "3b-issuance",
        "به این دفتر",
        "Shipped to this office",
    );
    s.switch("en");
    let shipped = s.text("#shipped");
    assert!(
        shipped.contains(&format!("({office})")) && shipped.contains(&shipment.operator),
        "{shipped}"
    );
    assert_eq!(s.text("#not-delivered"), "Not delivered yet.");
    assert_eq!(s.text("#replaces"), "First issue: it replaces no card.");
    s.switch("fa");
    assert!(s.text("#not-delivered").contains("هنوز تحویل نشده"));
    assert!(s.text("#replaces").contains("صدور نخست"));
    s.go_on(2);

    // Step 3: the finger.
    s.wait("#finger");
    assert_eq!(s.text("#name-fa"), name_fa);
    assert!(s.text("#holder").contains(&nid_fa), "Persian digits");
    let photo = s.b.find("img.photo").expect("photo");
    let w =
        s.b.execute(
            "return arguments[0].naturalWidth;",
            vec![Browser::element_arg(&photo)],
        )
        .expect("photo width");
    assert!(w.as_u64().unwrap_or(0) > 0, "the photo loads");
    s.both("#finger", "3-finger", "اسکنر", "on the scanner");
    s.switch("en");
    assert_eq!(
        s.text("#name-fa"),
        name_fa,
        "the Persian name on the English page"
    );
    assert!(s.text("#holder").contains("Solar Hijri"));
    s.switch("fa");
    assert!(s.text("#holder").contains("هجری خورشیدی"));

    // The genuine finger, from the scanner's folder.
    st.scan(&a.live);
    s.wait("form#pins[data-pin=\"id\"]");
    s.both(
        "#pins",
        "4-pins",
        "رمز شناسایی جدید",
        "Choose your new ID PIN",
    );

    // A PIN against the policy: refused with the reason, asked again.
    s.pins("id", BAD_PIN);
    s.wait("#pin-refused");
    s.both(
        "#pin-refused",
        "4-pin-refused",
        "رقم‌های پشت‌سرهم صعودی",
        "ascending digits",
    );
    // The holder insists: only a supervisor's password with a written
    // reason lets the refused PIN through (a clerk's does not).
    let reason = "the holder insists; told what a guessable PIN risks";
    for (name, password) in [("clerk7", PASSWORD), ("sup1", SUP_PASSWORD)] {
        s.wait("form#waive");
        for (id, value) in [
            ("sup_name", name),
            ("sup_password", password),
            ("reason", reason),
        ] {
            let f = s.b.find(&format!("#{id}")).expect("override field");
            s.b.send_keys(&f, value).expect("type");
        }
        let ok = s.b.find("#waive-ok").expect("override");
        s.click_to_new_page(&ok);
        if name == "clerk7" {
            s.both(
                "#note",
                "4-override-refused",
                "اجازه پذیرفته نشد",
                "override was refused",
            );
        }
    }
    // The signature PIN: refused, and the holder chooses another.
    s.pins("signature", "876543");
    s.wait("#pin-refused");
    assert!(s.text("#pin-refused").contains("نزولی"));
    s.pins("signature", SIG_PIN);

    // Activation, test signature, the receipt.
    s.wait("#activated");
    assert_eq!(s.text("#receipt-operator"), "clerk7");
    assert_eq!(s.text("#serial"), serial);
    s.both(
        "#activated",
        "5-activated",
        "کارت فعال و تحویل شد",
        "activated and delivered",
    );
    for layout in ["a5", "thermal"] {
        s.b.goto(&st.url(&format!("/counter/receipt?layout={layout}")))
            .expect("receipt");
        s.wait(&format!("article.print.{layout} #qr svg"));
        assert!(s.text("#print").contains(&serial));
        s.both(
            "#print",
            &format!("6-receipt-{layout}"),
            "رسید تحویل",
            "Delivery receipt",
        );
    }
    card.remove().expect("remove the card");
    s.b.goto(&st.url("/queue")).expect("queue");
    s.wait("#queue-count");
    assert!(
        s.b.find_all(&row).expect("rows").is_empty(),
        "delivered, no longer expected"
    );

    // The register: delivered, by the signed-in operator.
    let d = env
        .journal()
        .delivered(&serial)
        .expect("query")
        .expect("delivered");
    assert_eq!(
        (d.status, d.delivered_by.as_str(), d.office.as_str()),
        (CardStatus::Activated, "clerk7", office.as_str())
    );
    let events = env.journal().events(0).expect("events");
    assert!(events
        .iter()
        .any(|e| e.kind == "pin refused" && e.operator == "clerk7"));
    assert!(
        events.iter().any(|e| e.kind == "supervisor override"
            && e.operator == "sup1"
            && e.detail.contains(reason)
            && e.detail.contains(&serial)),
        "{events:?}"
    );
    assert!(events
        .iter()
        .any(|e| e.kind == "supervisor override refused" && e.operator == "clerk7"));
    assert!(events
        .iter()
        .any(|e| e.kind == "pin rule waived" && e.detail.contains("sup1")));
    assert!(events
        .iter()
        .any(|e| e.kind == "web sign-in" && e.operator == "clerk7"));

    s.b.goto(&st.url("/counter")).expect("goto");
    let next = s.wait("#next-card");
    s.b.click(&next).expect("next card");
    s.wait("#waiting");

    // The line dashboard: the batch the line ran, live over Server-Sent
    // Events, numbers in the page's digits.
    let good = env.journal().summary(1).expect("summary").good;
    let nav = s.wait("#nav-line");
    s.b.click(&nav).expect("line");
    let good_fa: String = good
        .to_string()
        .chars()
        .map(|c| char::from_u32(0x06F0 + c.to_digit(10).expect("digit")).expect("digit"))
        .collect();
    for (lang, want) in [("fa", good_fa.clone()), ("en", good.to_string())] {
        s.switch(lang);
        let start = std::time::Instant::now();
        while s.text("#line-good") != want {
            assert!(start.elapsed() < WAIT, "{lang}: #line-good never {want}");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!s
            .b
            .find_all("#line-readers tr[data-reader^=\"Cardsmith Line 01\"]")
            .expect("rows")
            .is_empty());
        s.shot(&format!("{lang}-10-line"));
    }
    s.switch("fa");
    s.b.goto(&st.url("/counter")).expect("counter");
    s.wait("#waiting");
    let log_a = st.stop();

    // Refused: an impostor's finger (the card used a try), in both
    // languages, at b's office.
    let st = Station::start(&env, &b.office(), "station-b");
    s.sign_in(&st, "clerk7");
    let b_serial = env.serials[b.id()].clone();
    // Pulled while step 1's result is on screen, then while step 2's:
    // back to waiting, saying at which step, in both languages.
    let card = env.insert(b);
    s.wait("#genuine");
    card.remove().expect("pull the card at step 1's screen");
    s.wait("#removed");
    s.both(
        "#removed",
        "8-removed-step1-screen",
        "(مرحلهٔ ۱)",
        "removed mid-flow (step 1)",
    );
    let card = env.insert(b);
    s.go_on(1);
    s.wait("#issuance");
    card.remove().expect("pull the card at step 2's screen");
    s.wait_text("#removed", "(مرحلهٔ ۲)");
    s.both(
        "#removed",
        "8-removed-step2-screen",
        "(مرحلهٔ ۲)",
        "removed mid-flow (step 2)",
    );
    assert!(s.b.find_all("#holder").expect("holder").is_empty());
    assert!(env.journal().delivered(&b_serial).expect("q").is_none());
    assert_eq!(
        env.journal()
            .events(0)
            .expect("events")
            .iter()
            .filter(|e| e.kind == "activation refused"
                && e.detail.contains(&b_serial)
                && e.detail.contains("[cancelled] the flow ended after step"))
            .count(),
        2
    );
    let card = env.insert(b);
    s.go_on(1);
    s.go_on(2);
    s.wait("#finger");
    // This time the capture is uploaded from the browser.
    let input = s.wait("#template");
    s.b.send_keys(&input, b.impostor.to_str().expect("path"))
        .expect("choose the file");
    let send = s.b.find("#upload-ok").expect("send");
    s.click_to_new_page(&send);
    s.wait("#no-match");
    assert_eq!(
        std::fs::read_dir(&st.scanner).expect("scanner dir").count(),
        0,
        "the uploaded capture is deleted after use"
    );
    s.both("#no-match", "7-impostor", "مطابقت نداشت", "did not match");
    s.switch("en");
    assert!(s.text("#no-match").contains("4 tries left"));
    s.switch("fa");
    assert!(s.text("#no-match").contains("۴ بار تلاش"));

    // Refused: the card pulled mid-flow; the screen says so and waits.
    card.remove().expect("pull the card");
    s.wait("#removed");
    s.both(
        "#removed",
        "8-removed",
        "بیرون کشیده شد",
        "removed mid-flow (step 3)",
    );
    assert!(env
        .journal()
        .delivered(&env.serials[b.id()])
        .expect("q")
        .is_none());
    // Pulled while the card is being read (step 1, at its 8th command):
    // the exchange fails, and the screen says the card left.
    s.switch("en");
    let served = env.insert_with(
        b,
        cardsmith::sim::faults::Faults {
            remove_at: Some(8),
            ..cardsmith::sim::faults::Faults::none()
        },
    );
    s.wait_text("#removed", "removed mid-flow (step 1)");
    s.shot("en-8-removed-step1");
    s.switch("fa");
    s.wait_text("#removed", "(مرحلهٔ ۱)");
    s.shot("fa-8-removed-step1");
    let _ = served.remove();
    let log_b = st.stop();

    // Refused: a card for another office.
    let other = if c.office() == "1021" { "2034" } else { "1021" };
    let st2 = Station::start(&env, other, "station-2");
    s.sign_in(&st2, "clerk7");
    let card = env.insert(c);
    s.go_on(1);
    s.wait("#refusal[data-class=\"wrong_office\"]");
    s.both(
        "#refusal",
        "9-wrong-office",
        "برای دفتر دیگری ارسال شده",
        "sent to another office",
    );
    assert!(s
        .text("#refusal")
        .contains(&format!("meant for office {}", c.office())));
    card.remove().expect("remove");
    assert!(env
        .journal()
        .events(0)
        .expect("events")
        .iter()
        .any(|e| e.kind == "activation refused"
            && e.detail.contains("wrong_office")
            && e.operator == "clerk7"));

    // No PIN in the station's log (every APDU traced) or in any page seen.
    let log_c = st2.stop();
    let log = format!("{log_a}\n{log_b}\n{log_c}");
    assert!(log.contains("web: POST /counter/pins 303 clerk7"), "{log}");
    assert!(log.contains("REDACTED"), "APDUs were traced:\n{log}");
    for pin in [SIG_PIN, BAD_PIN, "876543"] {
        let hex: String = pin.bytes().map(|b| format!("{b:02X}")).collect();
        let spaced: Vec<String> = pin.bytes().map(|b| format!("{b:02X}")).collect();
        for (what, text) in
            std::iter::once(("the log", &log)).chain(s.pages.iter().map(|p| ("a page", p)))
        {
            assert!(
                !text.contains(pin) && !text.contains(&hex) && !text.contains(&spaced.join(" ")),
                "{pin} in {what}"
            );
        }
    }
    assert!(s.pages.len() > 20, "pages kept: {}", s.pages.len());
    for p in &s.pages {
        assert!(!p.contains("{}"), "a word left unfilled:\n{p}");
    }
}

#[test]
fn the_station_refuses_requests_without_a_session_and_forged_cross_site_posts() {
    let _guard = common::pcsc();
    let dir = tempfile::tempdir().expect("tmp");
    let env = Env {
        dir,
        holders: Vec::new(),
        images: Default::default(),
        serials: Default::default(),
        _guard,
    };
    // Refused before serving: no accounts yet; a password file others can read.
    let serve = [
        "counter",
        "serve",
        "--office",
        "1021",
        "--reader",
        web_support::COUNTER,
        "--listen",
        "127.0.0.1:0",
    ];
    let o = web_support::run(env.data(), &serve);
    assert_eq!(o.status.code(), Some(2), "{}", web_support::text(&o));
    assert!(web_support::text(&o).contains("no operator accounts in"));
    assert!(web_support::text(&o).contains("operators.json"));
    let pw = env.data().join("open.pw");
    std::fs::write(&pw, "a long password\n").expect("pw");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = web_support::run(
        env.data(),
        &[
            "counter",
            "operator",
            "add",
            "x1",
            "--role",
            "clerk",
            "--password-file",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([pw.display().to_string()])
        .collect::<Vec<_>>()
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", web_support::text(&o));
    assert!(web_support::text(&o).contains("open.pw: readable by group or others"));

    env.operator("clerk7", "clerk", PASSWORD);
    let st = Station::start(&env, "1021", "station");
    let p = st.port;

    // Without a session: pages send to sign-in, everything else is refused.
    let a = http(p, "GET", "/counter", &[], "");
    assert_eq!(a.status, 303);
    assert!(a.header("Location")[0].starts_with("/login"));
    for (m, path) in [
        ("GET", "/status"),
        ("GET", "/counter/photo"),
        ("POST", "/counter/pins"),
        ("POST", "/counter/continue"),
    ] {
        let a = http(p, m, path, &[], "pin1=480913&pin2=480913");
        assert_eq!(a.status, 401, "{m} {path}");
    }
    // Every answer: a strict CSP, nothing cached, session cookies strict.
    let login = http(p, "GET", "/login", &[], "");
    let csp = login.header("Content-Security-Policy").join(";");
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(login.header("Cache-Control"), vec!["no-store"]);
    assert!(!login.body.contains("<script>"), "no inline script");
    let c = login.header("Set-Cookie").join(";");
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict"),
        "{c}"
    );

    // A wrong password is refused and journaled.
    let pre = login.cookie("cs_pre").expect("pre");
    let token = web_support::csrf_of(&login.body);
    let a = http(
        p,
        "POST",
        "/login",
        &[("Cookie", &format!("cs_pre={pre}"))],
        &format!("csrf={token}&name=clerk7&password=wrong-password"),
    );
    assert_eq!(a.status, 403);
    assert!(a.cookie("cs_session").is_none());
    // A sign-in posted from another site (no pre-session token) is refused.
    let a = http(
        p,
        "POST",
        "/login",
        &[("Origin", "http://evil.example")],
        &format!("name=clerk7&password={PASSWORD}"),
    );
    assert_eq!(a.status, 403);

    let (sid, csrf) = sign_in(p, "clerk7", PASSWORD);
    let cookie = format!("cs_session={sid}");
    // Forged cross-site POSTs with the operator's cookie: refused.
    for (headers, body) in [
        (
            vec![("Origin", "http://evil.example")],
            "do=cancel".to_string(),
        ),
        (vec![], format!("csrf={}&do=cancel", "0".repeat(64))),
        (
            vec![("Origin", "http://evil.example")],
            format!("csrf={csrf}&do=cancel"),
        ),
        (
            vec![("Sec-Fetch-Site", "cross-site")],
            format!("csrf={csrf}&do=cancel"),
        ),
    ] {
        let mut h = vec![("Cookie", cookie.as_str())];
        h.extend(headers.iter().copied());
        let a = http(p, "POST", "/counter/next", &h, &body);
        assert_eq!(a.status, 403, "{headers:?} {body}");
    }
    // The line dashboard: refused without a session; live with one.
    let (status, _) = web_support::EventStream::open(p, "cs_session=nobody");
    assert_eq!(status, 401);
    let (status, mut events) = web_support::EventStream::open(p, &cookie);
    assert_eq!(status, 200);
    assert_eq!(events.next()["batch"], serde_json::Value::Null);
    {
        use cardsmith::register::journal::{NewRecord, Who};
        let j = env.journal();
        let w = Who {
            station: "line-1".into(),
            operator: "tech1".into(),
            reader: Some("Cardsmith Line 01".into()),
        };
        let recs: Vec<NewRecord> = (1..=3)
            .map(|i| NewRecord {
                record_id: format!("R-{i}"),
                line: i,
                request: None,
            })
            .collect();
        let (b, _) = j
            .load_batch("b1", "/b1", "d", &w, &recs, &[])
            .expect("load");
        let claim = j.claim(b.id, &w, "CARD-1").expect("claim").expect("record");
        let ev = events.next();
        assert_eq!(ev["batch"]["records"], 3, "{ev}");
        assert_eq!(ev["batch"]["in_progress"], 1, "{ev}");
        assert_eq!(ev["readers"][0]["name"], "Cardsmith Line 01", "{ev}");
        assert_eq!(
            ev["readers"][0]["busy_with"],
            claim.record_id.as_str(),
            "{ev}"
        );
    }
    drop(events);

    // The same POST from the station's own page goes through.
    let a = http(
        p,
        "POST",
        "/counter/next",
        &[
            ("Cookie", cookie.as_str()),
            ("Origin", &format!("http://127.0.0.1:{p}")),
        ],
        &format!("csrf={csrf}"),
    );
    assert_eq!(a.status, 303);
    // No step can be skipped: with no card waiting at step 1's screen,
    // moving on is refused (and a bad step is named).
    let own = [
        ("Cookie", cookie.as_str()),
        ("Origin", &format!("http://127.0.0.1:{p}")),
    ];
    let a = http(
        p,
        "POST",
        "/counter/continue",
        &own,
        &format!("csrf={csrf}&step=1&do=continue"),
    );
    assert_eq!(a.status, 409);
    let a = http(
        p,
        "POST",
        "/counter/continue",
        &own,
        &format!("csrf={csrf}&step=3&do=continue"),
    );
    assert_eq!(a.status, 400);
    // After sign-out the session is gone.
    let a = http(
        p,
        "POST",
        "/logout",
        &[("Cookie", cookie.as_str())],
        &format!("csrf={csrf}"),
    );
    assert_eq!(a.status, 303);
    assert_eq!(
        http(p, "GET", "/status", &[("Cookie", cookie.as_str())], "").status,
        401
    );
    let log = st.stop();
    assert!(!log.contains(PASSWORD) && !log.contains(&sid) && !log.contains(&csrf));
    let events = env.journal().events(0).expect("events");
    assert!(events.iter().any(|e| e.kind == "web request refused"));
    assert!(events.iter().any(|e| e.kind == "web sign-in refused"));

    // Beyond loopback, only with TLS.
    let o = web_support::run(
        env.data(),
        &[
            "counter",
            "serve",
            "--office",
            "1021",
            "--reader",
            web_support::COUNTER,
            "--listen",
            "0.0.0.0:18470",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", web_support::text(&o));
    assert!(web_support::text(&o).contains("needs TLS: give --tls-cert"));

    // With a certificate: HTTPS only, and the cookies are Secure.
    let (cert, key) = (env.data().join("cert.pem"), env.data().join("key.pem"));
    let o = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-days",
            "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "{}", web_support::text(&o));
    let port = web_support::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cardsmith"))
        .args([
            "counter",
            "serve",
            "--office",
            "1021",
            "--reader",
            web_support::COUNTER,
        ])
        .args(["--listen", &format!("0.0.0.0:{port}"), "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .env("CARDSMITH_DATA_DIR", env.data())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve over TLS");
    let start = std::time::Instant::now();
    while !common::listening(port) {
        assert!(start.elapsed() < WAIT, "no TLS station on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let curl = |url: &str| {
        std::process::Command::new("curl")
            .args(["-s", "-i", "--max-time", "20", "--cacert"])
            .arg(&cert)
            .arg(url)
            .output()
            .expect("curl")
    };
    let o = curl(&format!("https://127.0.0.1:{port}/login"));
    let t = String::from_utf8_lossy(&o.stdout).to_string();
    let _ = child.kill();
    let _ = child.wait();
    assert!(t.starts_with("HTTP/1.1 200"), "{t}");
    assert!(t.contains("HttpOnly; SameSite=Strict; Secure"), "{t}");
    let _ = child.stdout.take().map(|mut out| {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        assert!(s.contains(&format!("https://0.0.0.0:{port}/")), "{s}");
    });
}
