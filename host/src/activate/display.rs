//! Persian text for a terminal.
//!
//! Terminals lay text out cell by cell, left to right, in the order the
//! bytes arrive. Most of them (xterm, tmux, the Linux console, many SSH
//! clients) neither reorder right-to-left runs (the Unicode Bidirectional
//! Algorithm, UAX #9) nor join Arabic-script letters: a name sent in logical
//! order shows up backwards, with every letter in its isolated form. A few
//! terminals (Konsole, mlterm, GNOME Terminal with VTE's BiDi support) do
//! both themselves, and reordering for them as well would turn the text
//! backwards again.
//!
//! So the display has two modes:
//! - [`RtlMode::Visual`] (the default): shape first, on the logical text,
//!   replacing each letter with its contextual presentation form (Unicode
//!   blocks FB50–FDFF and FE70–FEFF: initial, medial, final, isolated, and
//!   the lam-alef ligature) with the `ar-reshaper` crate; then reorder each
//!   value into visual order with the `unicode-bidi` crate, with a
//!   right-to-left paragraph level so that digits and Latin inside a Persian
//!   value keep their own left-to-right order. The result is what the
//!   holder's name looks like on paper, on any terminal. Presentation forms
//!   are for display only: copied from the screen they are not the stored
//!   text, which is why the journal, JSON output and files always carry the
//!   logical, unshaped text.
//! - [`RtlMode::Logical`] (`--no-bidi`): the text as stored, for terminals
//!   that apply the bidirectional algorithm and shaping themselves.
//!
//! Shaping is done before reordering because a letter's form depends on
//! its logical neighbours. The zero-width non-joiner (U+200C), common in
//! Persian names, has done its job once the letters are shaped and is
//! dropped from the visual text (some terminals draw it as a visible cell).

use unicode_bidi::{BidiInfo, Level};

/// How right-to-left text is sent to the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtlMode {
    /// Shaped and reordered by cardsmith (for ordinary terminals).
    Visual,
    /// As stored (for terminals that do bidi and shaping themselves).
    Logical,
}

const ZWNJ: char = '\u{200C}';

/// Does `text` contain right-to-left characters at all?
pub fn has_rtl(text: &str) -> bool {
    text.chars().any(|c| {
        matches!(
            unicode_bidi::bidi_class(c),
            unicode_bidi::BidiClass::R | unicode_bidi::BidiClass::AL
        )
    })
}

/// `text` (one line, logical order) as it should be written to the terminal.
/// Text without right-to-left characters is returned unchanged.
pub fn for_terminal(text: &str, mode: RtlMode) -> String {
    if mode == RtlMode::Logical || !has_rtl(text) {
        return text.to_string();
    }
    let shaped: String = ar_reshaper::reshape_line(text)
        .chars()
        .filter(|c| *c != ZWNJ)
        .collect();
    let info = BidiInfo::new(&shaped, Some(Level::rtl()));
    let mut out = String::with_capacity(shaped.len());
    for para in &info.paragraphs {
        let line = para.range.clone();
        out.push_str(&info.reorder_line(para, line));
    }
    out
}

/// How many terminal cells `s` takes (the characters shown here are all
/// one cell wide; combining marks take none).
pub fn cells(s: &str) -> usize {
    s.chars()
        .filter(|c| {
            !matches!(
                unicode_bidi::bidi_class(*c),
                unicode_bidi::BidiClass::NSM | unicode_bidi::BidiClass::BN
            ) && *c != ZWNJ
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> String {
        for_terminal(s, RtlMode::Visual)
    }

    #[test]
    fn a_joined_name_is_shaped_and_reversed() {
        // محمدرضا: م ح م د ر ض ا. On screen, left to right, the last letter
        // comes first: alef in its final form (after ض, which joins), and
        // the first mim in its initial form comes last.
        let out = v("محمدرضا");
        let cells: Vec<char> = out.chars().collect();
        assert_eq!(cells.len(), 7, "{out:?}");
        assert_eq!(cells[0], '\u{FE8E}', "alef final form first on screen");
        assert_eq!(
            cells[1], '\u{FEBF}',
            "zad initial: reh before it does not join forward"
        );
        assert_eq!(cells[6], '\u{FEE3}', "mim initial form last on screen");
        // Dal and reh do not join to the left: reh is isolated after dal.
        assert_eq!(cells[2], '\u{FEAD}', "reh isolated");
        assert_eq!(cells[3], '\u{FEAA}', "dal final");
        // Nothing of the logical text is left unshaped.
        assert!(out.chars().all(|c| ('\u{FB50}'..='\u{FEFF}').contains(&c)));
    }

    #[test]
    fn two_words_come_out_in_right_to_left_order() {
        // زهرا کریمی: the family name is on the left of the screen.
        let out = v("زهرا کریمی");
        let words: Vec<&str> = out.split(' ').collect();
        assert_eq!(words.len(), 2, "{out:?}");
        // کریمی ends with yeh: its final form (Farsi yeh FBFD) is leftmost.
        assert_eq!(words[0].chars().next(), Some('\u{FBFD}'), "{out:?}");
        // and starts with keheh: initial form (FB90) is its rightmost cell.
        assert_eq!(words[0].chars().last(), Some('\u{FB90}'), "{out:?}");
        // زهرا: zain isolated (it does not join forward) is the rightmost cell.
        assert_eq!(words[1].chars().last(), Some('\u{FEAF}'), "{out:?}");
        assert_eq!(cells(&out), 10);
        // The whole line, as the counter sends it: alef after reh (which
        // does not join forward) is isolated (FE8D), not final.
        assert_eq!(
            out,
            "\u{FBFD}\u{FEE4}\u{FBFE}\u{FEAE}\u{FB90} \u{FE8D}\u{FEAE}\u{FEEB}\u{FEAF}"
        );
    }

    #[test]
    fn digits_inside_persian_keep_their_order() {
        // "پلاک 12 تهران" and the same with Persian digits ۱۲.
        for (text, digits) in [("پلاک 12 تهران", "12"), ("پلاک ۱۲ تهران", "۱۲")]
        {
            let out = v(text);
            let at = out.find(digits).unwrap_or_else(|| panic!("{out:?}"));
            // تهران (last logically) is left of the number, پلاک right of it.
            let teh_initial = out.find('\u{FE97}').expect("teh initial");
            let peh_initial = out.find('\u{FB58}').expect("peh initial");
            assert!(teh_initial < at && at < peh_initial, "{out:?}");
        }
    }

    #[test]
    fn zwnj_is_used_for_shaping_then_dropped() {
        // علی‌اکبر: the ZWNJ stops yeh from joining alef.
        let out = v("علی\u{200C}اکبر");
        assert!(!out.contains(ZWNJ));
        // yeh after lam is final (FBFD), not medial, because of the ZWNJ.
        assert!(out.contains('\u{FBFD}'), "{out:?}");
    }

    #[test]
    fn latin_and_logical_mode_are_untouched() {
        assert_eq!(v("Zahra Karimi 1358/04/12"), "Zahra Karimi 1358/04/12");
        assert_eq!(for_terminal("زهرا", RtlMode::Logical), "زهرا");
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_shown_without_panic_and_without_losing_letters(
            s in "[\u{0600}-\u{06FF}\u{FB50}-\u{FEFF}\u{200C}-\u{200F}\u{202A}-\u{202E} a-z0-9/()-]{0,40}"
        ) {
            let out = for_terminal(&s, RtlMode::Visual);
            // Shaping may join lam-alef and drops ZWNJ, nothing more.
            proptest::prop_assert!(out.chars().count() <= s.chars().count());
            let _ = cells(&out);
        }

        #[test]
        fn any_unicode_is_shown_without_panic(s in "\\PC{0,60}") {
            let _ = for_terminal(&s, RtlMode::Visual);
        }
    }
}
