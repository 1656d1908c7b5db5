//! The station's pages, server-rendered. Every data string goes through
//! [`esc`]; the only markup not written here is the QR code's SVG, made
//! by the `qrcode` crate from the delivery record. No page holds a PIN, a
//! template or a key: PIN fields are posted empty-handed back never.

use super::i18n::{digits, finger, gregorian_date, jalali_date, pin_reason, t, tf, Lang};
use super::station::{Flow, Outcome, PinWhich, Receipt, Shared};

/// HTML-escape text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Who is looking at the page.
pub struct Viewer<'a> {
    pub lang: Lang,
    pub operator: Option<&'a str>,
    pub csrf: &'a str,
}

fn csrf_field(v: &Viewer) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(v.csrf)
    )
}

/// The frame of every page: language and direction, the switch to the
/// other language, who is signed in. `poll`: the page follows the station
/// (the script reloads it when the station's version moves on).
pub fn frame(v: &Viewer, office: &str, path: &str, poll: Option<u64>, body: &str) -> String {
    let l = v.lang;
    let other = l.other();
    let mut head = String::new();
    head.push_str(&format!(
        "<a class=\"lang\" lang=\"{}\" href=\"{}{}lang={}\">{}</a>",
        other.code(),
        esc(path),
        if path.contains('?') { "&amp;" } else { "?" },
        other.code(),
        esc(t(l, "lang_switch"))
    ));
    if let Some(op) = v.operator {
        head.push_str(&format!(
            "<nav><a href=\"/counter\" id=\"nav-counter\">{}</a> <a href=\"/queue\" id=\"nav-queue\">{}</a> <a href=\"/line\" id=\"nav-line\">{}</a></nav>",
            esc(t(l, "counter")),
            esc(t(l, "queue")),
            esc(t(l, "line"))
        ));
        head.push_str(&format!(
            "<span class=\"who\">{}</span><form method=\"post\" action=\"/logout\" class=\"inline\">{}<button type=\"submit\" id=\"logout\">{}</button></form>",
            esc(&tf(l, "signed_in_as", &[op])),
            csrf_field(v),
            esc(t(l, "sign_out"))
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"{code}\" dir=\"{dir}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title>\
<link rel=\"stylesheet\" href=\"/static/counter.css\"><script src=\"/static/counter.js\" defer></script></head>\
<body class=\"{code}\"{poll}><header><h1>{title}</h1><span class=\"office\">{office}</span>{head}</header><main>{body}</main></body></html>\n",
        code = l.code(),
        dir = l.dir(),
        title = esc(t(l, "title")),
        office = esc(&digits(l, &tf(l, "office", &[office]))),
        poll = poll
            .map(|n| format!(" data-version=\"{n}\""))
            .unwrap_or_default(),
    )
}

pub fn login(v: &Viewer, office: &str, failed: bool, note: Option<&str>) -> String {
    let l = v.lang;
    let mut b = String::new();
    if let Some(n) = note {
        b.push_str(&format!("<p class=\"note\">{}</p>", esc(t(l, n))));
    }
    if failed {
        b.push_str(&format!(
            "<p class=\"refusal\" id=\"bad-login\">{}</p>",
            esc(t(l, "bad_login"))
        ));
    }
    b.push_str(&format!(
        "<form method=\"post\" action=\"/login\" id=\"login\">{csrf}\
<label>{n} <input name=\"name\" id=\"name\" autocomplete=\"username\" dir=\"ltr\" required></label>\
<label>{p} <input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"off\" dir=\"ltr\" required></label>\
<input type=\"hidden\" name=\"lang\" value=\"{code}\">\
<button type=\"submit\" id=\"sign-in\">{s}</button></form>",
        csrf = csrf_field(v),
        n = esc(t(l, "operator_name")),
        p = esc(t(l, "password")),
        s = esc(t(l, "sign_in")),
        code = l.code(),
    ));
    frame(v, office, "/login", None, &b)
}

fn row(l: Lang, key: &str, value: &str, cls: &str) -> String {
    format!(
        "<tr><th>{}</th><td class=\"{cls}\">{}</td></tr>",
        esc(t(l, key)),
        value
    )
}

fn holder_block(l: Lang, f: &Flow, version: u64) -> String {
    let Some(h) = &f.holder else {
        return String::new();
    };
    let mut b = String::from("<section class=\"holder\" id=\"holder\">");
    b.push_str(&format!("<h2>{}</h2>", esc(t(l, "holder"))));
    if h.photo.is_some() {
        b.push_str(&format!(
            "<img class=\"photo\" src=\"/counter/photo?v={version}\" alt=\"{}\"><p class=\"note\">{}</p>",
            esc(t(l, "photo_alt")),
            esc(t(l, "compare_photo"))
        ));
    }
    b.push_str("<table>");
    b.push_str(&row(
        l,
        "name",
        &format!(
            "<span lang=\"fa\" dir=\"rtl\" id=\"name-fa\">{}</span> <span lang=\"en\" dir=\"ltr\">({})</span>",
            esc(&h.name_fa()),
            esc(&h.name_latin)
        ),
        "",
    ));
    b.push_str(&row(
        l,
        "father",
        &format!(
            "<span lang=\"fa\" dir=\"rtl\">{}</span> <span lang=\"en\" dir=\"ltr\">({})</span>",
            esc(&h.father_fa),
            esc(&h.father_latin)
        ),
        "",
    ));
    b.push_str(&row(
        l,
        "national_id",
        &esc(&digits(l, &h.national_id)),
        "num",
    ));
    b.push_str(&row(l, "born", &esc(&jalali_date(l, &h.birth_date)), ""));
    b.push_str(&row(
        l,
        "birth_place",
        &format!(
            "<span lang=\"fa\" dir=\"rtl\">{}</span> <span lang=\"en\" dir=\"ltr\">({})</span>",
            esc(&h.birth_place_fa),
            esc(&h.birth_place_latin)
        ),
        "",
    ));
    b.push_str(&row(l, "issued", &esc(&jalali_date(l, &h.issue_date)), ""));
    b.push_str(&row(
        l,
        "expires",
        &esc(&jalali_date(l, &h.expiry_date)),
        "",
    ));
    b.push_str(&row(
        l,
        "card_serial",
        &format!("<span dir=\"ltr\">{}</span>", esc(&h.serial)),
        "",
    ));
    b.push_str("</table></section>");
    b
}

fn steps_bar(l: Lang, step: u8) -> String {
    let mut b = String::from("<ol class=\"steps\">");
    for n in 1..=5u8 {
        let cls = match n.cmp(&step) {
            std::cmp::Ordering::Less => "done",
            std::cmp::Ordering::Equal => "now",
            std::cmp::Ordering::Greater => "later",
        };
        b.push_str(&format!(
            "<li class=\"{cls}\">{}</li>",
            esc(t(l, &format!("step{n}")))
        ));
    }
    b.push_str("</ol>");
    b
}

/// What the refusal means, in the viewer's language; the engine's reason
/// (English, as journaled) beside it.
fn refusal_text(l: Lang, class: &str, reason: &str) -> String {
    let key = format!("refused.{class}");
    let head = if t(l, &key) == key {
        t(l, "refused.other")
    } else {
        t(l, &key)
    };
    let reason = if class == "pin_policy" {
        match reason.split_once(" was refused: ") {
            Some((_, why)) => pin_reason(l, why),
            None => reason.to_string(),
        }
    } else {
        reason.to_string()
    };
    format!(
        "<section class=\"refusal\" id=\"refusal\" data-class=\"{}\"><h2>{}</h2><p>{}</p><p><b>{}:</b> <span dir=\"ltr\" lang=\"en\">{}</span></p></section>",
        esc(class),
        esc(t(l, "refused")),
        esc(head),
        esc(t(l, "reason")),
        esc(&reason)
    )
}

/// The counter screen for the station's current state.
pub fn counter(v: &Viewer, shared: &Shared, f: &Flow) -> String {
    let l = v.lang;
    let me = v.operator.unwrap_or("");
    let mut b = String::new();
    let other_op = f
        .flow_operator
        .as_deref()
        .filter(|o| *o != me && (f.active || f.outcome.is_some()));
    if let Some(o) = other_op {
        b.push_str(&format!(
            "<p class=\"note\" id=\"held\">{}</p>",
            esc(&tf(l, "station_held", &[o]))
        ));
        return frame(v, &shared.office, "/counter", Some(f.version), &b);
    }
    if f.active {
        b.push_str(&format!(
            "<p class=\"stepno\" id=\"step\" data-step=\"{}\">{}</p>",
            f.step,
            esc(&digits(l, &tf(l, "step_of", &[&f.step.to_string()])))
        ));
        b.push_str(&steps_bar(l, f.step));
        b.push_str(&format!(
            "<h2 id=\"step-title\">{}</h2>",
            esc(t(l, &format!("step{}", f.step)))
        ));
        if let Some(n) = f.review {
            b.push_str(&review(v, shared, f, n));
        } else if let Some(p) = f.pin {
            b.push_str(&pin_form(v, shared, f, p));
        } else {
            if let Some((pos, left)) = &f.no_match {
                b.push_str(&format!(
                    "<p class=\"refusal\" id=\"no-match\">{}</p>",
                    esc(&digits(
                        l,
                        &tf(l, "no_match", &[&finger(l, pos), &left.to_string()])
                    ))
                ));
            }
            b.push_str(&finger_ask(v, shared, f));
            b.push_str(&holder_block(l, f, f.version));
        }
    } else if let Some(o) = &f.outcome {
        b.push_str(&outcome(v, f, o));
    } else {
        b.push_str(&format!(
            "<p class=\"ask\" id=\"waiting\">{}</p><p class=\"note\">{}</p>",
            esc(t(l, "waiting")),
            esc(&tf(l, "reader", &[&shared.reader]))
        ));
    }
    if !f.log.is_empty() && f.pin.is_none() {
        b.push_str(&format!(
            "<details><summary>{}</summary><pre dir=\"ltr\" lang=\"en\">",
            esc(t(l, "details"))
        ));
        for line in &f.log {
            b.push_str(&esc(line));
            b.push('\n');
        }
        b.push_str("</pre></details>");
    }
    frame(v, &shared.office, "/counter", Some(f.version), &b)
}

/// Step 3's ask: the finger to scan, the tries left, the scanner's folder
/// and the upload form.
fn finger_ask(v: &Viewer, shared: &Shared, f: &Flow) -> String {
    let l = v.lang;
    let mut b = String::new();
    let Some(a) = &f.finger else {
        return b;
    };
    b.push_str(&format!(
        "<p class=\"ask\" id=\"finger\" data-finger=\"{}\">{}</p>",
        esc(&a.position),
        esc(&tf(l, "scan_finger", &[&finger(l, &a.position)]))
    ));
    if let Some(n) = a.tries_left {
        b.push_str(&format!(
            "<p>{}</p>",
            esc(&digits(l, &tf(l, "tries_left", &[&n.to_string()])))
        ));
    }
    // The folder's path is Latin: isolated from the Persian around it.
    b.push_str(&format!(
        "<p class=\"note\">{}</p>",
        esc(&tf(l, "scanner_waiting", &["\u{1}"])).replace(
            '\u{1}',
            &format!(
                "<bdi dir=\"ltr\">{}</bdi>",
                esc(&shared.scanner_dir.display().to_string())
            )
        )
    ));
    b.push_str(&format!(
            "<form method=\"post\" action=\"/counter/upload\" enctype=\"multipart/form-data\" id=\"upload\">{}<label>{} <input type=\"file\" name=\"template\" id=\"template\" required></label><button type=\"submit\" id=\"upload-ok\">{}</button></form>",
            csrf_field(v),
            esc(t(l, "upload_scan")),
            esc(t(l, "upload"))
        ));
    b.push_str(&format!(
        "<form method=\"post\" action=\"/counter/finger\">{}",
        csrf_field(v)
    ));
    if a.others {
        b.push_str(&format!(
            "<button name=\"do\" value=\"next\" id=\"next-finger\">{}</button>",
            esc(t(l, "next_finger"))
        ));
    }
    b.push_str(&format!(
        "<button name=\"do\" value=\"cancel\" id=\"cancel\">{}</button></form>",
        esc(t(l, "cancel"))
    ));
    b
}

/// The end of a flow: the delivery with its receipt links, a refusal, or a
/// card pulled; then the way to the next card.
fn outcome(v: &Viewer, f: &Flow, o: &Outcome) -> String {
    let l = v.lang;
    let mut b = String::new();
    match o {
        Outcome::Activated(r) => {
            b.push_str(&format!(
                "<section class=\"done\" id=\"activated\"><h2>{}</h2>",
                esc(t(l, "activated"))
            ));
            b.push_str(&receipt_table(l, r));
            b.push_str(&format!(
                "<p><a id=\"receipt-a5\" href=\"/counter/receipt?layout=a5\">{}</a> · <a id=\"receipt-thermal\" href=\"/counter/receipt?layout=thermal\">{}</a></p></section>",
                esc(t(l, "receipt_a5")),
                esc(t(l, "receipt_thermal"))
            ));
        }
        Outcome::Refused { class, reason } => {
            b.push_str(&refusal_text(l, class, reason));
            b.push_str(&holder_block(l, f, f.version));
        }
        Outcome::Removed { step } => {
            b.push_str(&format!(
                "<section class=\"refusal\" id=\"removed\"><p>{}</p></section>",
                esc(&digits(l, &tf(l, "removed", &[&step.to_string()])))
            ));
        }
    }
    b.push_str(&format!(
        "<form method=\"post\" action=\"/counter/next\">{}<button id=\"next-card\">{}</button></form>",
        csrf_field(v),
        esc(t(l, "next_card"))
    ));
    if !matches!(o, Outcome::Removed { .. }) {
        b.push_str(&format!(
            "<p class=\"note\">{}</p>",
            esc(t(l, "remove_card"))
        ));
    }
    b
}

/// A card's status in the register (`terminated`, …) in the viewer's
/// language; an unknown one as the register says it.
fn card_status(l: Lang, status: &str) -> String {
    let key = format!("status.{status}");
    match t(l, &key) {
        k if k == key => status.to_string(),
        k => k.to_string(),
    }
}

/// The result of step 1 (the card is genuine: its checks) or step 2 (the
/// register's issuance record), with the holder, until the operator moves
/// on or cancels.
fn review(v: &Viewer, shared: &Shared, f: &Flow, step: u8) -> String {
    let l = v.lang;
    let mut b = String::new();
    if step == 1 {
        // The holder first: the clerk compares the photo with the person.
        b.push_str(&holder_block(l, f, f.version));
        b.push_str(&format!(
            "<section class=\"done\" id=\"genuine\"><p>{}</p><ul class=\"checks\">",
            esc(t(l, "genuine_ok"))
        ));
        for (name, passed, detail) in f.holder.iter().flat_map(|h| h.checks.iter()) {
            b.push_str(&format!(
                "<li class=\"{}\"><b>{}</b> <span dir=\"ltr\" lang=\"en\">{}: {}</span></li>",
                if *passed { "ok" } else { "failed" },
                esc(t(l, if *passed { "check_ok" } else { "check_failed" })),
                esc(name),
                esc(detail)
            ));
        }
        b.push_str(&format!(
            "<li class=\"ok\"><b>{}</b> {}</li></ul></section>",
            esc(t(l, "check_ok")),
            esc(t(l, "not_revoked"))
        ));
    } else if let Some(i) = &f.issuance {
        b.push_str(&format!(
            "<section class=\"done\" id=\"issuance\"><p>{}</p><table>",
            esc(t(l, "issuance_ok"))
        ));
        b.push_str(&row(
            l,
            "issuance_record",
            &format!(
                "<span dir=\"ltr\" id=\"record\">{}</span>",
                esc(&i.record_id)
            ),
            "",
        ));
        b.push_str(&row(
            l,
            "shipment",
            &format!(
                "<span id=\"shipped\">{}</span>",
                esc(&tf(
                    l,
                    "shipped_here",
                    &[
                        &digits(l, &shared.office),
                        &receipt_time(l, i.shipped_at),
                        &i.shipped_by
                    ]
                ))
            ),
            "",
        ));
        b.push_str(&row(
            l,
            "delivery",
            &format!(
                "<span id=\"not-delivered\">{}</span>",
                esc(t(l, "not_delivered"))
            ),
            "",
        ));
        let replacement = match &i.replaces {
            Some((card, status)) => format!(
                "<span id=\"replaces\">{}</span>",
                esc(&tf(l, "replaces", &[card, &card_status(l, status)]))
            ),
            None => format!("<span id=\"replaces\">{}</span>", esc(t(l, "first_issue"))),
        };
        b.push_str(&row(l, "replacement", &replacement, ""));
        b.push_str("</table></section>");
    }
    b.push_str(&format!(
        "<form method=\"post\" action=\"/counter/continue\" id=\"review\">{}<input type=\"hidden\" name=\"step\" value=\"{step}\"><button name=\"do\" value=\"continue\" id=\"continue-{step}\">{}</button> <button name=\"do\" value=\"cancel\" id=\"cancel\">{}</button></form>",
        csrf_field(v),
        esc(t(l, "continue")),
        esc(t(l, "cancel"))
    ));
    if step != 1 {
        b.push_str(&holder_block(l, f, f.version));
    }
    b
}

/// The holder's PIN screen: masked, never autocompleted, entered twice.
fn pin_form(v: &Viewer, shared: &Shared, f: &Flow, p: super::station::PinAsk) -> String {
    let l = v.lang;
    let label = match p.which {
        PinWhich::Id => t(l, "id_pin"),
        PinWhich::Signature => t(l, "signature_pin"),
    };
    let mut b = format!("<p class=\"note\">{}</p>", esc(t(l, "turn_to_holder")));
    if let Some(why) = &f.pin_refused {
        b.push_str(&format!(
            "<p class=\"refusal\" id=\"pin-refused\">{}</p>",
            esc(&tf(l, "pin_refused", &[&pin_reason(l, why)]))
        ));
    }
    let which = match p.which {
        PinWhich::Id => "id",
        PinWhich::Signature => "signature",
    };
    b.push_str(&format!(
        "<form method=\"post\" action=\"/counter/pins\" autocomplete=\"off\" id=\"pins\" data-pin=\"{which}\">{}",
        csrf_field(v)
    ));
    let field = |name: &str, text: &str| {
        format!(
            "<label>{} <input type=\"password\" name=\"{name}\" id=\"{name}\" autocomplete=\"off\" inputmode=\"numeric\" dir=\"ltr\" required></label>",
            esc(text)
        )
    };
    if p.choose {
        b.push_str(&format!(
            "<p class=\"ask\">{}</p>",
            esc(&digits(
                l,
                &tf(l, "choose_pin", &[label, &shared.policy_digits])
            ))
        ));
        b.push_str(&field("pin1", t(l, "pin")));
        b.push_str(&field("pin2", t(l, "pin_again")));
    } else {
        b.push_str(&format!(
            "<p class=\"ask\">{}</p>",
            esc(t(l, "enter_sig_pin"))
        ));
        b.push_str(&field("pin1", t(l, "pin")));
    }
    b.push_str(&format!(
        "<button type=\"submit\" id=\"pin-ok\">{}</button></form>",
        esc(t(l, "continue"))
    ));
    if f.waivable.is_some() {
        if f.override_refused {
            b.push_str(&format!(
                "<p class=\"refusal\" id=\"note\">{}</p>",
                esc(t(l, "override_refused"))
            ));
        }
        b.push_str(&format!(
            "<form method=\"post\" action=\"/counter/waive\" autocomplete=\"off\" id=\"waive\" class=\"override\">{}<h3>{}</h3><p class=\"note\">{}</p>\
<label>{} <input name=\"sup_name\" id=\"sup_name\" autocomplete=\"off\" dir=\"ltr\" required></label>\
<label>{} <input type=\"password\" name=\"sup_password\" id=\"sup_password\" autocomplete=\"off\" dir=\"ltr\" required></label>\
<label>{} <textarea name=\"reason\" id=\"reason\" minlength=\"10\" maxlength=\"500\" required></textarea></label>\
<button type=\"submit\" id=\"waive-ok\">{}</button></form>",
            csrf_field(v),
            esc(t(l, "override")),
            esc(t(l, "override_hint")),
            esc(t(l, "supervisor")),
            esc(t(l, "password")),
            esc(t(l, "written_reason")),
            esc(t(l, "accept_pin"))
        ));
    }
    b
}

fn receipt_time(l: Lang, ms: i64) -> String {
    let iso = crate::register::journal::iso_time(ms);
    // "YYYY-MM-DD HH:MM:SS…"
    let date = (|| {
        let y = iso.get(0..4)?.parse().ok()?;
        let m = iso.get(5..7)?.parse().ok()?;
        let d = iso.get(8..10)?.parse().ok()?;
        Some(gregorian_date(l, y, m, d))
    })()
    .unwrap_or_default();
    let clock = iso.get(11..19).unwrap_or("");
    digits(l, &format!("{date} {clock} UTC"))
}

fn receipt_table(l: Lang, r: &Receipt) -> String {
    let mut b = String::from("<table class=\"receipt\" id=\"receipt\">");
    b.push_str(&row(
        l,
        "name",
        &format!(
            "<span lang=\"fa\" dir=\"rtl\">{}</span> <span lang=\"en\" dir=\"ltr\">({})</span>",
            esc(&r.name_fa),
            esc(&r.name_latin)
        ),
        "",
    ));
    b.push_str(&row(l, "national_id", &esc(&digits(l, &r.national_id)), ""));
    b.push_str(&row(
        l,
        "card_serial",
        &format!("<span dir=\"ltr\" id=\"serial\">{}</span>", esc(&r.serial)),
        "",
    ));
    b.push_str(&row(l, "office_label", &esc(&digits(l, &r.office)), ""));
    b.push_str(&row(
        l,
        "operator",
        &format!(
            "<span dir=\"ltr\" id=\"receipt-operator\">{}</span>",
            esc(&r.operator)
        ),
        "",
    ));
    b.push_str(&row(l, "time", &esc(&receipt_time(l, r.at)), ""));
    b.push_str("</table>");
    b
}

/// The delivery record the QR code carries.
pub fn delivery_record(r: &Receipt) -> String {
    serde_json::json!({
        "delivery": {
            "card": r.serial,
            "record": r.record_id,
            "national_id": r.national_id,
            "office": r.office,
            "operator": r.operator,
            "station": r.station,
            "at": crate::register::journal::iso_time(r.at),
        }
    })
    .to_string()
}

/// The QR code of the delivery record, as inline SVG.
pub fn qr_svg(data: &str) -> String {
    match qrcode::QrCode::new(data.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(160, 160)
            .quiet_zone(true)
            .build(),
        Err(e) => format!("<p>QR: {}</p>", esc(&e.to_string())),
    }
}

/// The printable receipt (`a5` or `thermal` 80 mm).
pub fn receipt(v: &Viewer, office: &str, r: &Receipt, thermal: bool) -> String {
    let l = v.lang;
    let mut b = format!(
        "<article class=\"print {}\" id=\"print\"><h2>{}</h2>",
        if thermal { "thermal" } else { "a5" },
        esc(t(l, "receipt"))
    );
    b.push_str(&receipt_table(l, r));
    // The SVG is the qrcode crate's output over our own JSON (no outside text
    // reaches it as markup: the data is encoded in the modules' pattern).
    b.push_str(&format!(
        "<div class=\"qr\" id=\"qr\">{}</div></article>",
        qr_svg(&delivery_record(r))
    ));
    let path = if thermal {
        "/counter/receipt?layout=thermal"
    } else {
        "/counter/receipt?layout=a5"
    };
    frame(v, office, path, None, &b)
}

/// The holders expected at this office, with the search (POSTed, so that
/// names and national IDs stay out of URLs and the browser's history).
pub fn queue(v: &Viewer, office: &str, all: &[super::queue::Expected], q: &str) -> String {
    let l = v.lang;
    let mut b = format!(
        "<h2>{}</h2><form method=\"post\" action=\"/queue\" id=\"search\">{}<label>{} <input name=\"q\" id=\"q\" value=\"{}\" autocomplete=\"off\"></label><button type=\"submit\" id=\"search-go\">{}</button></form>",
        esc(t(l, "queue")),
        csrf_field(v),
        esc(t(l, "search_hint")),
        esc(q),
        esc(t(l, "search"))
    );
    let hits: Vec<&super::queue::Expected> =
        all.iter().filter(|x| super::queue::matches(x, q)).collect();
    b.push_str(&format!(
        "<p id=\"queue-count\">{}</p>",
        esc(&digits(
            l,
            &tf(
                l,
                "queue_count",
                &[&hits.len().to_string(), &all.len().to_string()]
            )
        ))
    ));
    b.push_str(&format!(
        "<table id=\"queue\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(t(l, "national_id")),
        esc(t(l, "name")),
        esc(t(l, "card_serial")),
        esc(t(l, "shipped"))
    ));
    for x in hits {
        let date = {
            let iso = crate::register::journal::iso_time(x.shipped_at);
            (|| {
                let y = iso.get(0..4)?.parse().ok()?;
                let m = iso.get(5..7)?.parse().ok()?;
                let d = iso.get(8..10)?.parse().ok()?;
                Some(gregorian_date(l, y, m, d))
            })()
            .unwrap_or(iso)
        };
        b.push_str(&format!(
            "<tr class=\"expected\" data-card=\"{}\"><td>{}</td><td><span lang=\"fa\" dir=\"rtl\">{}</span> <span lang=\"en\" dir=\"ltr\">{}</span></td><td dir=\"ltr\">{}</td><td>{}</td></tr>",
            esc(&x.card_serial),
            esc(&digits(l, &x.national_id)),
            esc(x.name_fa.as_deref().unwrap_or("—")),
            esc(&x.name_latin.as_deref().map(|n| format!("({n})")).unwrap_or_default()),
            esc(&x.card_serial),
            esc(&date)
        ));
    }
    b.push_str("</tbody></table>");
    frame(v, office, "/queue", None, &b)
}

/// The line dashboard: filled and kept up to date by `/static/line.js`
/// from the event stream (text only, never markup).
pub fn line(v: &Viewer, office: &str) -> String {
    let l = v.lang;
    let mut b = format!(
        "<h2>{}</h2><p class=\"note\" id=\"line-state\" data-live=\"{}\" data-no-batch=\"{}\"></p>",
        esc(t(l, "line_title")),
        esc(t(l, "live")),
        esc(t(l, "no_batch"))
    );
    b.push_str("<table id=\"line-summary\"><tbody>");
    for k in [
        "batch",
        "records",
        "pending",
        "in_progress",
        "good",
        "rejected",
        "interrupted",
    ] {
        b.push_str(&format!(
            "<tr><th>{}</th><td id=\"line-{k}\"></td></tr>",
            esc(t(l, k))
        ));
    }
    b.push_str("</tbody></table>");
    b.push_str(&format!(
        "<h2>{}</h2><table id=\"line-readers\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody></tbody></table>",
        esc(t(l, "readers")),
        esc(t(l, "reader_col")),
        esc(t(l, "card_in_reader")),
        esc(t(l, "busy_with")),
        esc(t(l, "last_attempt")),
        esc(t(l, "attempts"))
    ));
    b.push_str("<script src=\"/static/line.js\" defer></script>");
    frame(v, office, "/line", None, &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<script>\"a\"&'b'</script>"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn frames_carry_language_direction_and_the_switch() {
        let v = Viewer {
            lang: Lang::Fa,
            operator: Some("clerk<7>"),
            csrf: "tok",
        };
        let p = frame(&v, "1021", "/counter", Some(3), "x");
        assert!(p.contains("<html lang=\"fa\" dir=\"rtl\">"));
        assert!(p.contains("href=\"/counter?lang=en\""));
        assert!(p.contains("clerk&lt;7&gt;") && !p.contains("clerk<7>"));
        assert!(p.contains("۱۰۲۱"));
        assert!(p.contains("name=\"csrf\" value=\"tok\""));
        assert!(!p.contains("<script>"), "no inline script");
    }

    #[test]
    fn step_1_and_step_2_screens_show_their_results_escaped_with_a_continue_form() {
        use super::super::station::{HolderView, IssuanceView};
        let sh = Shared::new("r", "1021", "s", std::path::Path::new("/tmp"), "6-8");
        let mut f = Flow::default();
        f.active = true;
        f.flow_operator = Some("clerk7".into());
        f.step = 1;
        f.review = Some(1);
        f.holder = Some(HolderView {
            serial: "80F8".into(),
            given_fa: "حسین".into(),
            family_fa: "آقایی".into(),
            birth_date: "13680610".into(),
            checks: vec![
                ("security object".into(), true, "signed <ok>".into()),
                ("revocation".into(), false, "x".into()),
            ],
            ..HolderView::default()
        });
        for (lang, words) in [(Lang::En, "ok"), (Lang::Fa, "درست")] {
            let v = Viewer {
                lang,
                operator: Some("clerk7"),
                csrf: "tok",
            };
            let p = counter(&v, &sh, &f);
            assert!(p.contains("id=\"genuine\"") && p.contains("id=\"holder\""));
            assert!(p.contains("signed &lt;ok&gt;") && !p.contains("<ok>"));
            assert!(p.contains("<li class=\"failed\">"));
            assert!(p.contains(&format!("<b>{words}</b>")));
            assert!(p.contains("حسین آقایی"));
            assert!(p.contains(
                "action=\"/counter/continue\" id=\"review\"><input type=\"hidden\" name=\"csrf\" value=\"tok\"><input type=\"hidden\" name=\"step\" value=\"1\">"
            ));
            assert!(p.contains("id=\"continue-1\""));
            assert!(!p.contains("id=\"issuance\""));
        }
        f.step = 2;
        f.review = Some(2);
        f.issuance = Some(IssuanceView {
            record_id: "R-000001".into(),
            shipped_at: 1_764_892_800_000,
            shipped_by: "dispatch<1>".into(),
            replaces: Some(("80AA".into(), "terminated".into())),
        });
        let v = Viewer {
            lang: Lang::En,
            operator: Some("clerk7"),
            csrf: "tok",
        };
        let p = counter(&v, &sh, &f);
        assert!(p.contains("id=\"issuance\"") && p.contains("id=\"continue-2\""));
        assert!(p.contains("Shipped to this office (1021) on "));
        assert!(p.contains("by dispatch&lt;1&gt;"));
        assert!(p.contains("Replaces card 80AA (now terminated)"));
        assert!(p.contains("Not delivered yet."));
        let v = Viewer {
            lang: Lang::Fa,
            operator: Some("clerk7"),
            csrf: "tok",
        };
        let p = counter(&v, &sh, &f);
        assert!(p.contains("به این دفتر (۱۰۲۱) ارسال شده"));
        assert!(p.contains("جایگزین کارت 80AA (وضعیت آن: از کار افتاده)"));
        assert!(!p.contains("{}"), "a word left unfilled");
        f.issuance = None;
        f.review = None;
        f.step = 3;
        let p = counter(&v, &sh, &f);
        assert!(
            !p.contains("/counter/continue"),
            "no continue once past step 2"
        );
    }

    #[test]
    fn the_qr_code_is_svg_of_the_delivery_record() {
        let r = Receipt {
            serial: "1B2C73F3B021453B".into(),
            record_id: "R-000001".into(),
            national_id: "5328297441".into(),
            name_fa: "مینا عباسی".into(),
            name_latin: "Mina Abbasi".into(),
            office: "1021".into(),
            operator: "clerk7".into(),
            station: "pc1".into(),
            at: 0,
        };
        let d = delivery_record(&r);
        assert!(d.contains("\"card\":\"1B2C73F3B021453B\"") && d.contains("clerk7"));
        let svg = qr_svg(&d);
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
        let v = Viewer {
            lang: Lang::En,
            operator: Some("clerk7"),
            csrf: "t",
        };
        let page = receipt(&v, "1021", &r, true);
        assert!(page.contains("class=\"print thermal\""));
        assert!(!page.contains("{}"), "a placeholder left: {page}");
        assert!(page.contains("href=\"/counter/receipt?layout=thermal&amp;lang=fa\""));
        assert!(page.contains("1 Dey 1348 (Solar Hijri) — 1 January 1970 (Gregorian) 00:00:00 UTC"));
    }
}
