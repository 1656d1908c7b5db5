//! Which card is this? A profile names the cards it describes by their ATR
//! or their historical bytes (`[card] atr` and `historical_bytes`,
//! docs/card-profile.md): patterns of hex bytes where `..` stands for any
//! byte, matched against the whole ATR or the whole historical bytes. The
//! line and the counter look at the ATR before they send a single command,
//! so a card that no profile describes is refused by name with its ATR and
//! left untouched.

use crate::hex;

/// A pattern of bytes: `Some(b)` must be `b`, `None` is any byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BytePattern(Vec<Option<u8>>);

impl BytePattern {
    /// Parse `"3B 8F .. 80"`: hex bytes and `..` wildcards, separated by
    /// blanks (or written together, `3B8F..80`). The error says which byte
    /// and what was expected.
    pub fn parse(text: &str) -> Result<BytePattern, String> {
        let compact: String = text.split_whitespace().collect();
        let chars: Vec<char> = compact.chars().collect();
        if chars.is_empty() {
            return Err("empty: expected hex bytes, `..` for any byte".into());
        }
        if !chars.len().is_multiple_of(2) {
            return Err(format!(
                "{text:?}: an odd number of digits; expected whole bytes (two hex digits or `..`)"
            ));
        }
        let mut out = Vec::with_capacity(chars.len() / 2);
        for (i, pair) in chars.chunks(2).enumerate() {
            let s: String = pair.iter().collect();
            if s == ".." {
                out.push(None);
                continue;
            }
            match hex::parse_compact(&s).as_deref() {
                Some([b]) => out.push(Some(*b)),
                _ => {
                    return Err(format!(
                        "{text:?}: byte {} is {s:?}; expected two hex digits or `..`",
                        i + 1
                    ))
                }
            }
        }
        Ok(BytePattern(out))
    }

    /// Whether `bytes` starts with the pattern.
    pub fn starts(&self, bytes: &[u8]) -> bool {
        bytes
            .get(..self.0.len())
            .is_some_and(|head| self.matches(head))
    }

    /// Whether `bytes` has the pattern's length and its bytes.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        self.0.len() == bytes.len()
            && self
                .0
                .iter()
                .zip(bytes)
                .all(|(p, b)| p.is_none_or(|p| p == *b))
    }
}

impl std::fmt::Display for BytePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|b| b.map_or("..".to_string(), |b| format!("{b:02X}")))
            .collect();
        f.write_str(&parts.join(" "))
    }
}

/// The cards a profile describes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardMatch {
    /// Patterns for the whole ATR.
    pub atr: Vec<BytePattern>,
    /// Patterns for the whole historical bytes.
    pub historical_bytes: Vec<BytePattern>,
    /// The ATR's first bytes (`[card] atr_prefix`).
    pub atr_prefix: Option<BytePattern>,
}

impl CardMatch {
    /// Whether the card with this ATR is one of the profile's. A profile
    /// with no pattern at all takes any card (profiles written before the
    /// patterns existed).
    pub fn recognizes(&self, atr: &[u8]) -> bool {
        if self.atr.is_empty() && self.historical_bytes.is_empty() && self.atr_prefix.is_none() {
            return true;
        }
        if self.atr.iter().any(|p| p.matches(atr))
            || self.atr_prefix.as_ref().is_some_and(|p| p.starts(atr))
        {
            return true;
        }
        let parsed = crate::atr::parse(atr);
        let historical = parsed.historical_bytes();
        self.historical_bytes.iter().any(|p| p.matches(historical))
    }

    /// The patterns, for messages.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.atr.iter().map(|p| format!("ATR {p}")).collect();
        parts.extend(self.atr_prefix.iter().map(|p| format!("ATR starting {p}")));
        parts.extend(
            self.historical_bytes
                .iter()
                .map(|p| format!("historical bytes {p}")),
        );
        parts.join(", or ")
    }
}

/// Why a card was not touched: no profile recognizes its ATR.
pub fn unknown_card(atr: &[u8], profile: &str, m: &CardMatch) -> String {
    format!(
        "unknown card: its ATR {} is not one of profile {profile}'s ({}); not touched",
        hex::spaced(atr),
        m.describe()
    )
}

/// Why a card was not touched: none of the profiles tried, given as
/// (name, patterns) in the order they were tried, recognizes its ATR. With
/// one profile this is [`unknown_card`].
pub fn unknown_card_to_all(atr: &[u8], tried: &[(&str, &CardMatch)]) -> String {
    if let [(name, m)] = tried {
        return unknown_card(atr, name, m);
    }
    let each: Vec<String> = tried
        .iter()
        .map(|(name, m)| format!("{name}'s ({})", m.describe()))
        .collect();
    format!(
        "unknown card: its ATR {} is none of profiles {}; not touched",
        hex::spaced(atr),
        each.join(", nor ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_byte_strings_with_wildcards() {
        let p = BytePattern::parse("80 73 F4 21 .. 81 ..").unwrap();
        assert!(p.matches(&[0x80, 0x73, 0xF4, 0x21, 0xC0, 0x81, 0x0F]));
        assert!(p.matches(&[0x80, 0x73, 0xF4, 0x21, 0x00, 0x81, 0x01]));
        assert!(!p.matches(&[0x80, 0x73, 0xF4, 0x22, 0xC0, 0x81, 0x0F]));
        // Neither shorter nor longer.
        assert!(!p.matches(&[0x80, 0x73, 0xF4, 0x21, 0xC0, 0x81]));
        assert!(!p.matches(&[0x80, 0x73, 0xF4, 0x21, 0xC0, 0x81, 0x0F, 0x00]));
        assert_eq!(p.to_string(), "80 73 F4 21 .. 81 ..");
        assert_eq!(
            BytePattern::parse("3b8f..80").unwrap().to_string(),
            "3B 8F .. 80"
        );
    }

    #[test]
    fn bad_patterns_say_which_byte() {
        let e = BytePattern::parse("3B 8G").unwrap_err();
        assert!(e.contains("byte 2") && e.contains("\"8G\""), "{e}");
        let e = BytePattern::parse("3B 8").unwrap_err();
        assert!(e.contains("odd number of digits"), "{e}");
        assert!(BytePattern::parse("  ").unwrap_err().contains("empty"));
        assert!(BytePattern::parse("3B .").is_err());
    }

    #[test]
    fn a_card_is_recognized_by_its_atr_or_its_historical_bytes() {
        // The simulated reference card: T=1, historical bytes with the
        // card capabilities and the life cycle status.
        let reference = [
            0x3B, 0x87, 0x81, 0x31, 0xFE, 0x45, 0x80, 0x73, 0xF4, 0x21, 0xC0, 0x81, 0x03, 0x00,
        ];
        let m = CardMatch {
            atr: vec![],
            historical_bytes: vec![BytePattern::parse("80 73 F4 21 .. 81 ..").unwrap()],
            atr_prefix: None,
        };
        assert!(m.recognizes(&reference));
        // Another card OS: its own historical bytes.
        let domestic = [
            0x3B, 0x0E, 0x80, 0x58, b'D', b'O', b'M', b'E', b'S', b'T', b'I', b'C', 0x71, 0xB0,
            0x81, 0x01,
        ];
        assert!(!m.recognizes(&domestic));
        let by_atr = CardMatch {
            atr: vec![
                BytePattern::parse("3B 0E 80 58 44 4F 4D 45 53 54 49 43 71 B0 81 ..").unwrap(),
            ],
            historical_bytes: vec![],
            atr_prefix: None,
        };
        assert!(by_atr.recognizes(&domestic));
        assert!(!by_atr.recognizes(&reference));
        let by_prefix = CardMatch {
            atr_prefix: Some(BytePattern::parse("3B0E8058444F4D455354494371B081").unwrap()),
            ..CardMatch::default()
        };
        assert!(by_prefix.recognizes(&domestic));
        assert!(!by_prefix.recognizes(&reference));
        assert!(!by_prefix.recognizes(&domestic[..10]));
        // No pattern: any card.
        assert!(CardMatch::default().recognizes(&domestic));
        let e = unknown_card(&domestic, "reference-card", &m);
        assert!(
            e.contains("3B 0E 80 58") && e.contains("reference-card") && e.contains("not touched"),
            "{e}"
        );
        // One profile tried: the same message; several: each by name.
        assert_eq!(unknown_card_to_all(&domestic, &[("reference-card", &m)]), e);
        let e = unknown_card_to_all(&reference, &[("a", &by_atr), ("b", &by_prefix)]);
        assert!(
            e.starts_with("unknown card: its ATR 3B 87 81 31")
                && e.contains("none of profiles a's (ATR 3B 0E")
                && e.contains(", nor b's (ATR starting 3B 0E")
                && e.ends_with("not touched"),
            "{e}"
        );
    }
}
