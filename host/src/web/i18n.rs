//! The station's words in Persian and English, in one table, and the
//! forms a language gives numbers and dates. Persian text goes to the
//! browser in logical order, unshaped: the browser shapes it and lays it
//! out right to left (`dir="rtl"`); nothing here reorders it.

use crate::record::date::{GregorianDate, JalaliDate};

/// The language of a screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fa,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fa => "fa",
            Lang::En => "en",
        }
    }
    pub fn dir(self) -> &'static str {
        match self {
            Lang::Fa => "rtl",
            Lang::En => "ltr",
        }
    }
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "fa" => Some(Lang::Fa),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
    /// The other language (the switch on every screen).
    pub fn other(self) -> Lang {
        match self {
            Lang::Fa => Lang::En,
            Lang::En => Lang::Fa,
        }
    }
}

/// Key, Persian, English. `{}` marks where a value goes ([`tf`]).
const TABLE: &[(&str, &str, &str)] = &[
    ("title", "پیشخوان تحویل کارت ملی", "National ID card counter"),
    ("lang_switch", "English", "فارسی"),
    ("sign_in", "ورود", "Sign in"),
    ("sign_out", "خروج", "Sign out"),
    ("operator_name", "نام کاربری", "Operator"),
    ("password", "گذرواژه", "Password"),
    ("bad_login", "نام کاربری یا گذرواژه نادرست است.", "Wrong operator name or password."),
    ("signed_in_as", "کاربر: {}", "Operator: {}"),
    ("office", "دفتر {}", "Office {}"),
    ("station_held", "این پیشخوان در دست کاربر {} است.", "This counter is in use by operator {}."),
    ("waiting", "کارت دارنده را در کارت‌خوان بگذارید.", "Insert the holder's card into the reader."),
    ("reader", "کارت‌خوان: {}", "Reader: {}"),
    ("step_of", "مرحلهٔ {} از ۵", "Step {} of 5"),
    ("step1", "خواندن کارت و بررسی اصالت آن", "Reading the card and checking that it is genuine"),
    ("step2", "بررسی سابقهٔ صدور", "Checking the issuance record"),
    ("step3", "اثر انگشت دارنده", "The holder's fingerprint"),
    ("step4", "انتخاب رمزها توسط دارنده", "The holder chooses the PINs"),
    ("step5", "فعال‌سازی و امضای آزمایشی", "Activation and test signature"),
    ("holder", "دارندهٔ کارت", "Card holder"),
    ("name", "نام", "Name"),
    ("father", "نام پدر", "Father's name"),
    ("national_id", "کد ملی", "National ID"),
    ("born", "تاریخ تولد", "Date of birth"),
    ("birth_place", "محل تولد", "Place of birth"),
    ("issued", "تاریخ صدور", "Issued"),
    ("expires", "تاریخ انقضا", "Expires"),
    ("card_serial", "شمارهٔ کارت", "Card serial"),
    ("photo_alt", "عکس دارنده", "Holder's photo"),
    ("compare_photo", "عکس را با شخص حاضر مقایسه کنید.", "Compare the photo with the person in front of you."),
    ("scan_finger", "از دارنده بخواهید انگشت {} را روی اسکنر بگذارد.", "Ask the holder to place their {} finger on the scanner."),
    ("tries_left", "{} بار تلاش روی کارت باقی است.", "{} tries left on the card."),
    ("scanner_waiting", "در انتظار فایل اسکنر در پوشهٔ {} …", "Waiting for the scanner's file in {} …"),
    ("next_finger", "انگشت دیگر", "Another finger"),
    ("upload_scan", "یا فایل اسکنر (ISO/IEC 19794-2) را بفرستید:", "Or send the scanner's file (ISO/IEC 19794-2):"),
    ("upload", "ارسال", "Send"),
    ("cancel", "لغو", "Cancel"),
    ("no_match", "اثر انگشت {} روی کارت مطابقت نداشت؛ {} بار تلاش باقی است. از دارنده بخواهید انگشت را تمیز کند و دوباره اسکن کند.", "The {} finger did not match on the card; {} tries left. Ask the holder to clean the finger and scan again."),
    ("turn_to_holder", "صفحه را به سمت دارنده بچرخانید.", "Turn the screen to the holder."),
    ("choose_pin", "رمز {} جدید خود را انتخاب کنید ({} رقم).", "Choose your new {} ({} digits)."),
    ("enter_sig_pin", "رمز امضای خود را وارد کنید.", "Enter your signature PIN."),
    ("pin_again", "تکرار رمز", "Again"),
    ("pin", "رمز", "PIN"),
    ("id_pin", "شناسایی", "ID PIN"),
    ("signature_pin", "امضا", "signature PIN"),
    ("continue", "ادامه", "Continue"),
    ("pin_refused", "رمز پذیرفته نشد: {}. رمز دیگری انتخاب کنید.", "The PIN was refused: {}. Choose another PIN."),
    ("activated", "کارت فعال و تحویل شد.", "The card is activated and delivered."),
    ("receipt", "رسید تحویل", "Delivery receipt"),
    ("receipt_a5", "چاپ A5", "Print A5"),
    ("receipt_thermal", "چاپ حرارتی ۸۰ میلی‌متری", "Print 80 mm thermal"),
    ("time", "زمان", "Time"),
    ("office_label", "دفتر", "Office"),
    ("operator", "کاربر", "Operator"),
    ("next_card", "کارت بعدی", "Next card"),
    ("refused", "کارت تحویل نشد", "The card was not delivered"),
    ("refused.fingerprint", "اثر انگشت با کارت مطابقت نداشت.", "The fingerprint did not match the card."),
    ("refused.fingerprint_blocked", "انگشت‌های ثبت‌شده روی کارت قفل شده‌اند.", "Every enrolled finger is blocked on the card."),
    ("refused.wrong_office", "این کارت برای دفتر دیگری ارسال شده است؛ کارت را نگه دارید و به آن دفتر بفرستید.", "This card was sent to another office; keep the card and send it on."),
    ("refused.pin_policy", "رمز با سیاست رمز سازگار نبود.", "The PIN did not meet the PIN policy."),
    ("refused.not_genuine", "کارت اصل نیست.", "The card is not genuine."),
    ("refused.already_activated", "این کارت قبلاً فعال شده است.", "This card is already activated."),
    ("refused.already_delivered", "این کارت قبلاً تحویل شده است.", "This card was already delivered."),
    ("refused.not_shipped", "این کارت به هیچ دفتری ارسال نشده است.", "This card was never shipped to an office."),
    ("refused.revoked", "گواهی این کارت باطل شده است.", "A certificate of this card is revoked."),
    ("refused.cancelled", "کاربر روند را لغو کرد.", "The operator cancelled."),
    ("refused.other", "روند متوقف شد.", "The flow stopped."),
    ("removed", "کارت در میانهٔ کار (مرحلهٔ {}) از کارت‌خوان بیرون کشیده شد؛ کارت تحویل نشد. کارت را دوباره بگذارید تا از نو شروع شود.", "The card was removed mid-flow (step {}); it was not delivered. Insert it again to start over."),
    ("remove_card", "کارت را بردارید.", "Remove the card."),
    ("reason", "علت", "Reason"),
    ("details", "جزئیات فنی", "Technical details"),
    ("sign_in_first", "برای ادامه وارد شوید.", "Sign in to continue."),
    ("queue", "صف تحویل", "Pickup queue"),
    ("counter", "پیشخوان", "Counter"),
    ("override", "اجازهٔ سرپرست", "Supervisor override"),
    ("override_hint", "سرپرست می‌تواند این رمز را با ذکر دلیل کتبی بپذیرد؛ دلیل در دفتر ثبت می‌شود.", "A supervisor may accept this PIN with a written reason; the reason is journaled."),
    ("supervisor", "سرپرست", "Supervisor"),
    ("written_reason", "دلیل کتبی", "Written reason"),
    ("accept_pin", "پذیرش رمز", "Accept the PIN"),
    ("override_refused", "اجازه پذیرفته نشد: نام یا گذرواژهٔ سرپرست نادرست است، یا دلیل کوتاه‌تر از ۱۰ نویسه است.", "The override was refused: wrong supervisor name or password, or a reason shorter than 10 characters."),
    ("line", "خط صدور", "Line"),
    ("line_title", "خط شخصی‌سازی: آخرین دسته", "The personalization line: the latest batch"),
    ("batch", "دسته", "Batch"),
    ("records", "رکوردها", "Records"),
    ("pending", "در انتظار", "Pending"),
    ("in_progress", "در حال کار", "In progress"),
    ("good", "سالم", "Good"),
    ("rejected", "ردشده", "Rejected"),
    ("interrupted", "قطع‌شده", "Interrupted"),
    ("readers", "کارت‌خوان‌ها", "Readers"),
    ("reader_col", "کارت‌خوان", "Reader"),
    ("card_in_reader", "کارت در کارت‌خوان", "Card in reader"),
    ("busy_with", "در حال کار روی", "Working on"),
    ("last_attempt", "آخرین تلاش", "Last attempt"),
    ("attempts", "تلاش‌ها", "Attempts"),
    ("live", "زنده", "Live"),
    ("no_batch", "هنوز دسته‌ای در دفتر ثبت نیست.", "No batch in the register yet."),
    ("search", "جستجو", "Search"),
    ("search_hint", "کد ملی یا نام (فارسی یا لاتین)", "National ID or name (Persian or Latin)"),
    ("queue_count", "{} از {} دارندهٔ منتظر در این دفتر", "{} of {} holders expected at this office"),
    ("shipped", "ارسال", "Shipped"),
    ("genuine_ok", "کارت اصل است: امضای داده‌ها و گواهی‌های کارت بررسی شد.", "The card is genuine: its data signature and certificates were checked."),
    ("check_ok", "درست", "ok"),
    ("check_failed", "نادرست", "failed"),
    ("not_revoked", "هیچ گواهی کارت باطل نشده است.", "No certificate of the card is revoked."),
    ("issuance_ok", "سابقهٔ صدور در دفتر ثبت با کارت می‌خواند: کارت را می‌توان در این دفتر تحویل داد.", "The issuance register agrees with the card: it may be handed out at this office."),
    ("issuance_record", "رکورد صدور", "Issuance record"),
    ("shipment", "ارسال", "Shipment"),
    ("shipped_here", "به این دفتر ({}) ارسال شده در {} توسط {}", "Shipped to this office ({}) on {} by {}"),
    ("delivery", "تحویل", "Delivery"),
    ("not_delivered", "هنوز تحویل نشده است.", "Not delivered yet."),
    ("replacement", "جایگزینی", "Replacement"),
    ("replaces", "جایگزین کارت {} (وضعیت آن: {})؛ درخواست جایگزینی در پیشخوان ثبت شده است.", "Replaces card {} (now {}); the replacement was requested at a counter."),
    ("status.activated", "فعال", "activated"),
    ("status.lost", "گم‌شده", "lost"),
    ("status.terminated", "از کار افتاده", "terminated"),
    ("first_issue", "صدور نخست: جایگزین کارت دیگری نیست.", "First issue: it replaces no card."),
    ("solar_hijri", "هجری خورشیدی", "Solar Hijri"),
    ("gregorian", "میلادی", "Gregorian"),
];

/// The text of `key` in `lang` (the key itself when missing, so a gap
/// shows on screen and in the tests rather than vanishing).
pub fn t(lang: Lang, key: &str) -> &str {
    match TABLE.iter().find(|(k, _, _)| *k == key) {
        Some((_, fa, en)) => match lang {
            Lang::Fa => fa,
            Lang::En => en,
        },
        None => key_fallback(key),
    }
}

fn key_fallback(key: &str) -> &str {
    key
}

/// `t` with its `{}` replaced by `args` in order.
pub fn tf(lang: Lang, key: &str, args: &[&str]) -> String {
    let mut out = String::new();
    let mut rest = t(lang, key);
    let mut it = args.iter();
    while let Some(i) = rest.find("{}") {
        out.push_str(&rest[..i]);
        out.push_str(it.next().copied().unwrap_or(""));
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    out
}

/// ASCII digits in the language's form (Persian ۰–۹ for `fa`).
pub fn digits(lang: Lang, s: &str) -> String {
    match lang {
        Lang::En => s.to_string(),
        Lang::Fa => s
            .chars()
            .map(|c| match c.to_digit(10) {
                Some(d) if c.is_ascii_digit() => char::from_u32(0x06F0 + d).unwrap_or(c),
                _ => c,
            })
            .collect(),
    }
}

const GREGORIAN_FA: [&str; 12] = [
    "ژانویه",
    "فوریه",
    "مارس",
    "آوریل",
    "مه",
    "ژوئن",
    "ژوئیه",
    "اوت",
    "سپتامبر",
    "اکتبر",
    "نوامبر",
    "دسامبر",
];
const GREGORIAN_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A Solar Hijri date (`YYYYMMDD` as the card stores it) with the
/// Gregorian beside it, in the language's words and digits. A value that
/// is no date is shown as it is, marked.
pub fn jalali_date(lang: Lang, yyyymmdd: &str) -> String {
    let parse = || -> Option<JalaliDate> {
        let y = yyyymmdd.get(0..4)?.parse().ok()?;
        let m = yyyymmdd.get(4..6)?.parse().ok()?;
        let d = yyyymmdd.get(6..8)?.parse().ok()?;
        JalaliDate::new(y, m, d).ok()
    };
    match parse() {
        Some(j) => both(lang, j),
        None => format!("{yyyymmdd} (?)"),
    }
}

/// A Gregorian day with the Solar Hijri first.
pub fn gregorian_date(lang: Lang, y: i32, m: u8, d: u8) -> String {
    match GregorianDate::new(y, m, d)
        .ok()
        .and_then(JalaliDate::from_gregorian)
    {
        Some(j) => both(lang, j),
        None => format!("{y:04}-{m:02}-{d:02}"),
    }
}

fn both(lang: Lang, j: JalaliDate) -> String {
    let g = j.to_gregorian();
    let gi = usize::from(g.month().clamp(1, 12)) - 1;
    let month = |names: &'static [&'static str; 12]| names.get(gi).copied().unwrap_or("?");
    let s = match lang {
        Lang::Fa => format!(
            "{} {} {} ({}) — {} {} {} ({})",
            j.day(),
            j.month_name_fa(),
            j.year(),
            t(lang, "solar_hijri"),
            g.day(),
            month(&GREGORIAN_FA),
            g.year(),
            t(lang, "gregorian"),
        ),
        Lang::En => format!(
            "{} {} {} ({}) — {} {} {} ({})",
            j.day(),
            j.month_name_latin(),
            j.year(),
            t(lang, "solar_hijri"),
            g.day(),
            month(&GREGORIAN_EN),
            g.year(),
            t(lang, "gregorian"),
        ),
    };
    digits(lang, &s)
}

/// The policy's reason for refusing a PIN (as `activate::policy` says it)
/// in the language; a reason this table does not know stays in English.
pub fn pin_reason(lang: Lang, why: &str) -> String {
    if lang == Lang::En {
        return why.to_string();
    }
    const FA: &[(&str, &str)] = &[
        ("the two entries differ", "دو بار واردشده یکسان نیستند"),
        (
            "only the digits 0–9 are allowed",
            "فقط رقم‌های ۰ تا ۹ مجاز است",
        ),
        ("all its digits are the same", "همهٔ رقم‌هایش یکسان است"),
        (
            "it is a run of ascending digits",
            "رشته‌ای از رقم‌های پشت‌سرهم صعودی است",
        ),
        (
            "it is a run of descending digits",
            "رشته‌ای از رقم‌های پشت‌سرهم نزولی است",
        ),
        ("it is a transport PIN of this card", "رمز حمل این کارت است"),
        ("it is the same as the ID PIN", "همان رمز شناسایی است"),
        ("nothing was entered", "چیزی وارد نشد"),
    ];
    if let Some((_, fa)) = FA.iter().find(|(en, _)| *en == why) {
        return fa.to_string();
    }
    // "it has 5 digits; the PIN must have 6–8 digits"
    if let Some(rest) = why.strip_prefix("it has ") {
        if let Some((n, must)) = rest.split_once(" digits; the PIN must have ") {
            let must = must.trim_end_matches(" digits");
            return digits(
                lang,
                &format!("{n} رقم دارد؛ رمز باید {must} رقم داشته باشد"),
            );
        }
    }
    why.to_string()
}

/// A finger position (`right_index`) in the language.
pub fn finger(lang: Lang, position: &str) -> String {
    if lang == Lang::En {
        return position.replace('_', " ").to_uppercase();
    }
    let (side, name) = position.split_once('_').unwrap_or(("", position));
    let name = match name {
        "thumb" => "شست",
        "index" => "اشاره",
        "middle" => "میانی",
        "ring" => "حلقه",
        "little" => "کوچک",
        other => other,
    };
    let side = match side {
        "right" => "دست راست",
        "left" => "دست چپ",
        _ => "",
    };
    format!("{name} {side}").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_both_languages_and_no_key_twice() {
        let mut seen = std::collections::BTreeSet::new();
        for (k, fa, en) in TABLE {
            assert!(seen.insert(*k), "{k} twice");
            assert!(!fa.is_empty() && !en.is_empty(), "{k}");
            assert_eq!(fa.matches("{}").count(), en.matches("{}").count(), "{k}");
        }
    }

    #[test]
    fn digits_and_dates_in_each_language() {
        assert_eq!(digits(Lang::Fa, "1021-AB"), "۱۰۲۱-AB");
        assert_eq!(digits(Lang::En, "1021"), "1021");
        assert_eq!(
            jalali_date(Lang::En, "13430217"),
            "17 Ordibehesht 1343 (Solar Hijri) — 7 May 1964 (Gregorian)"
        );
        let fa = jalali_date(Lang::Fa, "13430217");
        assert!(fa.starts_with("۱۷ اردیبهشت ۱۳۴۳"), "{fa}");
        assert!(fa.contains("۷ مه ۱۹۶۴"), "{fa}");
        assert_eq!(jalali_date(Lang::Fa, "1343"), "1343 (?)");
        assert!(gregorian_date(Lang::En, 2024, 3, 20).starts_with("1 Farvardin 1403"));
    }

    #[test]
    fn policy_reasons_and_fingers_in_persian() {
        assert_eq!(
            pin_reason(Lang::Fa, "it is a run of ascending digits"),
            "رشته‌ای از رقم‌های پشت‌سرهم صعودی است"
        );
        assert_eq!(
            pin_reason(Lang::Fa, "it has 5 digits; the PIN must have 6–8 digits"),
            "۵ رقم دارد؛ رمز باید ۶–۸ رقم داشته باشد"
        );
        assert_eq!(pin_reason(Lang::En, "x"), "x");
        assert_eq!(finger(Lang::Fa, "right_index"), "اشاره دست راست");
        assert_eq!(finger(Lang::En, "left_middle"), "LEFT MIDDLE");
        assert_eq!(tf(Lang::En, "office", &["1021"]), "Office 1021");
    }
}
