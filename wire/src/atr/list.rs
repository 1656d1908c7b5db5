//! The pcsc-tools list of known ATRs (`smartcard_list.txt`) and matching
//! an ATR against it.
//!
//! Format: a line holding an ATR pattern, then one or more description
//! lines starting with a TAB; `#` starts a comment line; blank lines
//! separate entries. A pattern is a regular expression matched against the
//! whole ATR written as upper-case hex bytes separated by single spaces
//! ("3B 02 14 50"), case-insensitively: `.` is a wildcard nibble, and some
//! entries use classes such as `[0-9A-F]` or `.*`.
//!
//! Almost every pattern is "fixed width": one pattern character per
//! character of the ATR string. Those are compiled into a per-position set
//! of allowed characters and matched without the regex engine, which keeps
//! a lookup over ~4,000 patterns to a few microseconds. The rest are
//! compiled once with the `regex` crate. A pattern that cannot be compiled,
//! or can never match an ATR string, is skipped and recorded
//! ([`AtrList::skipped`]); it does not make loading fail.

use regex::{Regex, RegexBuilder};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtrListEntry {
    /// 1-based line number of the pattern.
    pub line: usize,
    /// The pattern as written (trailing white space removed).
    pub pattern: String,
    /// The description lines, without the leading TAB.
    pub descriptions: Vec<String>,
}

/// A pattern line that was not kept, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedPattern {
    /// 1-based line number.
    pub line: usize,
    /// The pattern as written.
    pub pattern: String,
    /// Why it was skipped.
    pub reason: String,
}

/// Errors that make a list unusable as a whole.
#[derive(Debug, thiserror::Error)]
pub enum AtrListError {
    /// The file could not be read.
    #[error("cannot read ATR list {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A description line comes before any pattern: this is not an ATR list.
    #[error("{}line {line}: description line before any ATR pattern", location(.path))]
    OrphanDescription {
        /// The file, when loaded from one.
        path: Option<PathBuf>,
        /// 1-based line number.
        line: usize,
    },
    /// There are pattern lines, but none could be used.
    #[error("{}none of the {skipped} ATR pattern line(s) is usable (first bad one at line {first_line}: {reason})", location(.path))]
    NoUsablePattern {
        /// The file, when loaded from one.
        path: Option<PathBuf>,
        /// Number of skipped pattern lines.
        skipped: usize,
        /// Line of the first one.
        first_line: usize,
        /// Why it was skipped.
        reason: String,
    },
}

fn location(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!("{}: ", p.display()),
        None => String::new(),
    }
}

/// Bit for a character of an ATR string: hex digits 0-15, space 16.
const SPACE: u32 = 1 << 16;
const HEX_DIGITS: u32 = 0xFFFF;
const ANY: u32 = HEX_DIGITS | SPACE;

fn char_bit(c: u8) -> u32 {
    match c {
        b'0'..=b'9' => 1 << (c - b'0'),
        b'A'..=b'F' => 1 << (c - b'A' + 10),
        b'a'..=b'f' => 1 << (c - b'a' + 10),
        b' ' => SPACE,
        _ => 0,
    }
}

/// Bits of the ATR-string characters matched (case-insensitively) by the
/// range `lo..=hi` of a regex class.
fn range_bits(lo: u8, hi: u8) -> u32 {
    let mut bits = 0;
    for c in b"0123456789ABCDEF ".iter().copied() {
        let lower = c.to_ascii_lowercase();
        if (lo..=hi).contains(&c) || (lo..=hi).contains(&lower) {
            bits |= char_bit(c);
        }
    }
    bits
}

/// Compile a pattern that uses only hex digits, spaces, `.` and simple
/// bracket classes into one character set per position. `None` when the
/// pattern uses anything else (then the regex engine is used).
fn compile_fixed(pattern: &str) -> Option<Vec<u32>> {
    let b = pattern.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'.' => out.push(ANY),
            b'[' => {
                let mut j = i + 1;
                let negated = b.get(j) == Some(&b'^');
                if negated {
                    j += 1;
                }
                if b.get(j) == Some(&b']') {
                    return None;
                }
                let mut set = 0u32;
                loop {
                    let ch = *b.get(j)?;
                    match ch {
                        b']' => break,
                        b'\\' | b'[' => return None,
                        _ if !ch.is_ascii() => return None,
                        _ => {}
                    }
                    match (b.get(j + 1), b.get(j + 2)) {
                        (Some(&b'-'), Some(&hi)) if hi != b']' => {
                            if hi < ch || hi == b'\\' || hi == b'[' || !hi.is_ascii() {
                                return None;
                            }
                            set |= range_bits(ch, hi);
                            j += 3;
                        }
                        _ => {
                            set |= range_bits(ch, ch);
                            j += 1;
                        }
                    }
                }
                out.push(if negated { ANY & !set } else { set });
                i = j;
            }
            _ => {
                let bit = char_bit(c);
                if bit == 0 {
                    return None;
                }
                out.push(bit);
            }
        }
        i += 1;
    }
    Some(out)
}

/// Why a fixed-width pattern can never match "XX XX … XX", if it can't.
fn fixed_never_matches(sets: &[u32]) -> Option<String> {
    if sets.len() % 3 != 2 {
        return Some(format!(
            "pattern is {} characters long; an ATR written as hex bytes separated by single spaces has 3n-1",
            sets.len()
        ));
    }
    for (i, &s) in sets.iter().enumerate() {
        let ok = if i % 3 == 2 {
            s & SPACE != 0
        } else {
            s & HEX_DIGITS != 0
        };
        if !ok {
            return Some(format!(
                "character {} of the pattern cannot match the {} at that position",
                i + 1,
                if i % 3 == 2 { "space" } else { "hex digit" }
            ));
        }
    }
    None
}

#[derive(Debug, Clone)]
enum Matcher {
    Fixed(Vec<u32>),
    Regex(Box<Regex>),
}

impl Matcher {
    fn compile(pattern: &str) -> Result<Matcher, String> {
        if let Some(sets) = compile_fixed(pattern) {
            return match fixed_never_matches(&sets) {
                Some(reason) => Err(reason),
                None => Ok(Matcher::Fixed(sets)),
            };
        }
        RegexBuilder::new(&format!("^(?:{pattern})$"))
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map(|r| Matcher::Regex(Box::new(r)))
            .map_err(|e| {
                let text = e.to_string();
                let last = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                format!("invalid regular expression: {}", last.trim())
            })
    }

    fn is_match(&self, text: &str, bits: &[u32]) -> bool {
        match self {
            Matcher::Fixed(sets) => {
                sets.len() == bits.len() && sets.iter().zip(bits).all(|(s, b)| s & b != 0)
            }
            Matcher::Regex(r) => r.is_match(text),
        }
    }
}

/// The bytes of a pattern made only of 2-digit hex bytes separated by single spaces.
fn exact_bytes(pattern: &str) -> Option<Vec<u8>> {
    pattern
        .split(' ')
        .map(|tok| {
            if tok.len() == 2 && tok.bytes().all(|c| c.is_ascii_hexdigit()) {
                u8::from_str_radix(tok, 16).ok()
            } else {
                None
            }
        })
        .collect()
}

/// A loaded ATR list.
#[derive(Debug, Clone)]
pub struct AtrList {
    entries: Vec<AtrListEntry>,
    matchers: Vec<Matcher>,
    skipped: Vec<SkippedPattern>,
    source: Option<PathBuf>,
}

impl AtrList {
    /// Where pcsc-tools installs the list on Debian and derivatives.
    pub const DEFAULT_PATH: &'static str = "/usr/share/pcsc/smartcard_list.txt";

    /// Read and parse a list file. The file need not be valid UTF-8
    /// (invalid sequences are replaced).
    pub fn load(path: &Path) -> Result<AtrList, AtrListError> {
        let bytes = std::fs::read(path).map_err(|source| AtrListError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let mut list = Self::parse_inner(&text, Some(path))?;
        list.source = Some(path.to_path_buf());
        Ok(list)
    }

    /// Parse list text.
    pub fn parse(text: &str) -> Result<AtrList, AtrListError> {
        Self::parse_inner(text, None)
    }

    fn parse_inner(text: &str, path: Option<&Path>) -> Result<AtrList, AtrListError> {
        enum Current {
            None,
            Entry(usize),
            Skipped,
        }
        let mut list = AtrList {
            entries: Vec::new(),
            matchers: Vec::new(),
            skipped: Vec::new(),
            source: None,
        };
        let mut current = Current::None;
        for (idx, line) in text.lines().enumerate() {
            let line_no = idx + 1;
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with('\t') || line.starts_with(' ') {
                let d = line.trim().to_string();
                match current {
                    Current::Entry(i) => {
                        if let Some(e) = list.entries.get_mut(i) {
                            e.descriptions.push(d);
                        }
                    }
                    Current::Skipped => {}
                    Current::None => {
                        return Err(AtrListError::OrphanDescription {
                            path: path.map(Path::to_path_buf),
                            line: line_no,
                        })
                    }
                }
                continue;
            }
            let pattern = line.trim_end().to_string();
            match Matcher::compile(&pattern) {
                Ok(m) => {
                    list.entries.push(AtrListEntry {
                        line: line_no,
                        pattern,
                        descriptions: Vec::new(),
                    });
                    list.matchers.push(m);
                    current = Current::Entry(list.entries.len() - 1);
                }
                Err(reason) => {
                    list.skipped.push(SkippedPattern {
                        line: line_no,
                        pattern,
                        reason,
                    });
                    current = Current::Skipped;
                }
            }
        }
        if list.entries.is_empty() {
            if let Some(first) = list.skipped.first() {
                return Err(AtrListError::NoUsablePattern {
                    path: path.map(Path::to_path_buf),
                    skipped: list.skipped.len(),
                    first_line: first.line,
                    reason: first.reason.clone(),
                });
            }
        }
        Ok(list)
    }

    /// All usable entries, in file order.
    pub fn entries(&self) -> &[AtrListEntry] {
        &self.entries
    }

    /// Pattern lines that were skipped, with the reason.
    pub fn skipped(&self) -> &[SkippedPattern] {
        &self.skipped
    }

    /// The file the list was loaded from.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Number of usable entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no usable entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries whose pattern matches the whole ATR (case-insensitive), in file order.
    pub fn matches(&self, atr: &[u8]) -> Vec<&AtrListEntry> {
        let text = super::hex(atr);
        let bits: Vec<u32> = text.bytes().map(char_bit).collect();
        self.entries
            .iter()
            .zip(&self.matchers)
            .filter(|(_, m)| m.is_match(&text, &bits))
            .map(|(e, _)| e)
            .collect()
    }

    /// Entries whose pattern is a plain ATR (no wildcard or regex syntax):
    /// (line, bytes).
    pub fn exact_atrs(&self) -> Vec<(usize, Vec<u8>)> {
        self.entries
            .iter()
            .filter_map(|e| exact_bytes(&e.pattern).map(|b| (e.line, b)))
            .collect()
    }
}
