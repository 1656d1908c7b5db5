//! Hex text in and out.
//!
//! People paste APDUs from specs, traces and chat windows, so the parser takes
//! every common spelling: `00A40400`, `00 a4 04 00`, `00:A4:04:00`, with tabs
//! or newlines between bytes, and an optional `0x` on each byte. What it does
//! not take gets an error that names the character position (1-based, counted
//! in characters, as an editor shows it) and what was expected there, because
//! "invalid hex" alone sends the user hunting through a 300-character line.

use std::fmt;

/// Why a hex string was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("column {column}: found {found:?}, expected a hex digit (0-9, a-f, A-F) or a separator (space, ':', '-', tab)")]
    BadChar { column: usize, found: char },
    #[error("column {column}: the byte starting here has only one hex digit; bytes are written as two digits (e.g. 0A, not A)")]
    OddDigit { column: usize },
    #[error("no hex digits found; expected bytes such as \"00 A4 04 00\"")]
    Empty,
}

/// Parse hex text in any of the forms described in the module header.
///
/// Digits must pair up into bytes between separators: `00A4` is two bytes,
/// `0 A4` is refused (column of the lone `0`), because a lone nibble is almost
/// always a copy-paste accident and guessing its meaning would send a wrong
/// APDU to a card.
pub fn parse(text: &str) -> Result<Vec<u8>, HexError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if is_separator(c) {
            i += 1;
            continue;
        }
        // Optional 0x prefix at the start of a group.
        if c == '0' && matches!(chars.get(i + 1), Some('x') | Some('X')) {
            i += 2;
            continue;
        }
        // A run of hex digits up to the next separator.
        let start = i;
        let mut digits = Vec::new();
        while let Some(&d) = chars.get(i).filter(|d| !is_separator(**d)) {
            match d.to_digit(16) {
                Some(v) => digits.push(v as u8),
                None => {
                    return Err(HexError::BadChar {
                        column: i + 1,
                        found: d,
                    })
                }
            }
            i += 1;
        }
        if !digits.len().is_multiple_of(2) {
            return Err(HexError::OddDigit { column: start + 1 });
        }
        out.extend(digits.chunks_exact(2).map(|p| match p {
            [hi, lo] => hi << 4 | lo,
            _ => 0,
        }));
    }
    if out.is_empty() {
        return Err(HexError::Empty);
    }
    Ok(out)
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || c == ':' || c == '-' || c == ','
}

/// Upper-case hex with one space between bytes: `00 A4 04 00`. Written
/// digit by digit (the same text as [`Spaced`]): every APDU of a trace
/// goes through here, and `{:02X}` per byte is several times slower.
pub fn spaced(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    let digit = |n: u8| {
        char::from(
            b"0123456789ABCDEF"
                .get(usize::from(n & 0x0F))
                .copied()
                .unwrap_or(b'0'),
        )
    };
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push(digit(b >> 4));
        s.push(digit(*b));
    }
    s
}

/// Upper-case hex with no separators: `00A40400`. Written straight into
/// the result (no temporary strings), so a caller that wipes the result
/// leaves no copy of a secret's digits behind.
pub fn compact(bytes: &[u8]) -> String {
    digits(bytes, b"0123456789ABCDEF")
}

/// Lower-case hex with no separators: `00a40400` (digests, as `sha256sum`
/// shows them).
pub fn lower(bytes: &[u8]) -> String {
    digits(bytes, b"0123456789abcdef")
}

/// Colon-separated upper-case hex, e.g. `AB:CD:01` (certificate serials and
/// fingerprints, as OpenSSL shows them).
pub fn colon(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&digits(&[*b], b"0123456789ABCDEF"));
    }
    s
}

fn digits(bytes: &[u8], alphabet: &[u8; 16]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    let digit = |n: u8| char::from(alphabet.get(usize::from(n & 0x0F)).copied().unwrap_or(b'0'));
    for b in bytes {
        s.push(digit(b >> 4));
        s.push(digit(*b));
    }
    s
}

/// Strict compact hex (`00A4…`, either case, nothing else, an even number
/// of digits; empty is empty): for machine-written files such as the
/// simulated card's image. No intermediate copies, so secrets parse
/// without leaving digits behind. `None` if anything else is there.
pub fn parse_compact(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    bytes
        .chunks_exact(2)
        .map(|p| match p {
            [a, b] => Some((digit(*a)? << 4) | digit(*b)?),
            _ => None,
        })
        .collect()
}

/// Display adapter that formats bytes as spaced hex without allocating first.
pub struct Spaced<'a>(pub &'a [u8]);

impl fmt::Display for Spaced<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaced_is_the_display_of_spaced() {
        let all: Vec<u8> = (0..=255).collect();
        for n in [0, 1, 2, 7, 256] {
            let b = all.get(..n).unwrap();
            assert_eq!(spaced(b), Spaced(b).to_string());
        }
        assert_eq!(spaced(&[0x00, 0xA4, 0x0F]), "00 A4 0F");
    }

    #[test]
    fn accepts_every_pasted_form() {
        let want = vec![0x00, 0xA4, 0x04, 0x00];
        for s in [
            "00A40400",
            "00 A4 04 00",
            "00 a4 04 00",
            "00:A4:04:00",
            "00-a4-04-00",
            "  00\tA4\n04 00  ",
            "0x00 0xA4 0x04 0x00",
            "00A4 0400",
            "00, A4, 04, 00",
        ] {
            assert_eq!(parse(s).unwrap(), want, "input {s:?}");
        }
    }

    #[test]
    fn bad_character_names_its_column() {
        assert_eq!(
            parse("00 A4 0G 00"),
            Err(HexError::BadChar {
                column: 8,
                found: 'G'
            })
        );
        let msg = parse("00 A4 0G 00").unwrap_err().to_string();
        assert!(msg.contains("column 8"), "{msg}");
    }

    #[test]
    fn odd_digit_count_names_the_run() {
        assert_eq!(parse("00 A40 00"), Err(HexError::OddDigit { column: 4 }));
        assert_eq!(parse("0"), Err(HexError::OddDigit { column: 1 }));
    }

    #[test]
    fn empty_is_refused() {
        assert_eq!(parse(""), Err(HexError::Empty));
        assert_eq!(parse(" :: "), Err(HexError::Empty));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        // The Persian digit is two bytes in UTF-8 but one column on screen.
        assert_eq!(
            parse("۰0"),
            Err(HexError::BadChar {
                column: 1,
                found: '۰'
            })
        );
        assert_eq!(
            parse("00 ۱"),
            Err(HexError::BadChar {
                column: 4,
                found: '۱'
            })
        );
    }

    #[test]
    fn formats() {
        assert_eq!(spaced(&[0, 0xa4, 4]), "00 A4 04");
        assert_eq!(compact(&[0, 0xa4, 4]), "00A404");
        assert_eq!(spaced(&[]), "");
    }
}
