//! Text normalization for Persian and Latin fields, and digit normalization
//! for numeric fields (IDs, dates, codes).

use unicode_normalization::UnicodeNormalization;

/// ZERO WIDTH NON-JOINER, the only format character Persian text keeps.
pub const ZWNJ: char = '\u{200C}';

/// True for Unicode format characters (general category Cf, plus the soft
/// hyphen) that are stripped from text fields. ZWNJ is handled separately.
fn is_strippable_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200D}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Maps Persian (۰-۹) and Arabic-Indic (٠-٩) digits to ASCII; other
/// characters are returned unchanged.
pub fn ascii_digit(c: char) -> char {
    match c {
        '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
        '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
        _ => c,
    }
}

/// Normalization for fields where a number is expected (national ID, dates,
/// office codes, certificate numbers): Persian and Arabic-Indic digits become
/// ASCII, format characters (LRM, RLM, ZWSP, BOM, ...) and ZWNJ are removed,
/// and surrounding whitespace is trimmed. Inner characters are otherwise kept,
/// so that validation can report them.
pub fn normalize_digits(s: &str) -> String {
    s.chars()
        .filter(|&c| !is_strippable_format(c) && c != ZWNJ)
        .map(ascii_digit)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Letter-like for the ZWNJ rule: letters and the combining marks that sit
/// on them (Arabic harakat are marks, not letters).
fn is_letterish(c: char) -> bool {
    c.is_alphabetic() || matches!(c, '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{06D6}'..='\u{06ED}')
}

/// Replaces every run of whitespace with one ASCII space and trims the ends.
fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = true;
        } else {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    }
    out
}

/// Normalizes a Persian text field. The result is what gets stored and
/// compared. Steps:
///
/// 1. NFC;
/// 2. Arabic yeh (U+064A, U+0649) → Persian yeh (U+06CC), Arabic kaf (U+0643)
///    → Persian kaf (U+06A9);
/// 3. format characters (ZWSP, ZWJ, LRM, RLM, BOM, bidi embeddings and
///    isolates, soft hyphen, ...) are removed, except ZWNJ;
/// 4. a run of ZWNJ is kept as a single ZWNJ only if it stands between two
///    letters (a combining mark counts as part of its letter); otherwise it is
///    removed (start/end of text, next to a space, next to punctuation);
/// 5. whitespace runs collapse to one space, ends are trimmed;
/// 6. NFC again.
///
/// Digits are left as they are (names must not contain digits; numeric
/// fields use [`normalize_digits`]). The function is idempotent.
pub fn normalize_persian(s: &str) -> String {
    let mapped: Vec<char> = s
        .nfc()
        .filter(|&c| !is_strippable_format(c))
        .map(|c| match c {
            '\u{064A}' | '\u{0649}' => '\u{06CC}',
            '\u{0643}' => '\u{06A9}',
            c => c,
        })
        .collect();

    let mut joined = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    let mut i = 0;
    while let Some(&c) = mapped.get(i) {
        if c == ZWNJ {
            let mut j = i;
            while mapped.get(j) == Some(&ZWNJ) {
                j += 1;
            }
            let before = prev.is_some_and(is_letterish);
            let after = mapped.get(j).copied().is_some_and(|n| n.is_alphabetic());
            if before && after {
                joined.push(ZWNJ);
                prev = Some(ZWNJ);
            }
            i = j;
            continue;
        }
        joined.push(c);
        prev = Some(c);
        i += 1;
    }
    collapse_whitespace(&joined).nfc().collect()
}

/// Normalizes a Latin text field: NFC, format characters and ZWNJ removed,
/// typographic apostrophes (U+2019, U+02BC) → ASCII apostrophe, whitespace
/// collapsed and trimmed.
pub fn normalize_latin(s: &str) -> String {
    let cleaned: String = s
        .nfc()
        .filter(|&c| !is_strippable_format(c) && c != ZWNJ)
        .map(|c| match c {
            '\u{2019}' | '\u{02BC}' => '\'',
            c => c,
        })
        .collect();
    collapse_whitespace(&cleaned).nfc().collect()
}

/// Letters accepted in Persian text (after [`normalize_persian`]).
pub fn is_persian_letter(c: char) -> bool {
    matches!(
        c,
        '\u{0621}'..='\u{063A}'
            | '\u{0641}'..='\u{0648}'
            | '\u{067E}' // پ
            | '\u{0686}' // چ
            | '\u{0698}' // ژ
            | '\u{06A9}' // ک
            | '\u{06AF}' // گ
            | '\u{06C0}' // ۀ
            | '\u{06CC}' // ی
    )
}

/// Combining marks accepted in Persian text (harakat, tanwin, hamza above
/// and below, superscript alef).
fn is_persian_mark(c: char) -> bool {
    matches!(c, '\u{064B}'..='\u{0655}' | '\u{0670}')
}

fn is_digit_any(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '\u{06F0}'..='\u{06F9}' | '\u{0660}'..='\u{0669}')
}

fn describe(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{}'", c as u32, c)
    }
}

/// Checks already-normalized Persian text: Persian letters and marks, space,
/// ZWNJ, hyphen and full stop; it must start with a letter. Returns the rule
/// that is broken.
pub fn check_persian_text(s: &str) -> Result<(), String> {
    if s.chars().any(|c| c.is_ascii_alphabetic()) {
        return Err("contains Latin letters; expected Persian script".into());
    }
    if s.chars().any(is_digit_any) {
        return Err("contains digits; expected Persian script".into());
    }
    for c in s.chars() {
        let ok = is_persian_letter(c) || is_persian_mark(c) || matches!(c, ' ' | ZWNJ | '-' | '.');
        if !ok {
            return Err(format!(
                "contains {}, which is not allowed; expected Persian script (letters, space, ZWNJ, '-', '.')",
                describe(c)
            ));
        }
    }
    if !s.chars().next().is_some_and(is_persian_letter) {
        return Err("must start with a Persian letter".into());
    }
    Ok(())
}

/// Latin letters accepted in transliterations: ASCII letters and the
/// accented letters of Latin-1 Supplement, Latin Extended-A/B and Latin
/// Extended Additional.
pub fn is_latin_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
        || (matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}') && c.is_alphabetic())
}

/// Checks already-normalized Latin text: Latin letters, space, hyphen and
/// apostrophe; it must start with a letter.
pub fn check_latin_text(s: &str) -> Result<(), String> {
    if s.chars().any(is_persian_letter) {
        return Err("contains Persian letters; expected Latin script".into());
    }
    if s.chars().any(is_digit_any) {
        return Err("contains digits; expected Latin letters".into());
    }
    for c in s.chars() {
        if !(is_latin_letter(c) || matches!(c, ' ' | '-' | '\'')) {
            return Err(format!(
                "contains {}, which is not allowed; expected Latin letters, space, '-' or '''",
                describe(c)
            ));
        }
    }
    if !s.chars().next().is_some_and(is_latin_letter) {
        return Err("must start with a Latin letter".into());
    }
    Ok(())
}
