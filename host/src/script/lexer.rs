//! From text to tokens, in two steps.
//!
//! 1. [`logical_lines`] splits the text into physical lines, recognises the
//!    scriptor keywords `reset` and `exit`, strips comments, joins lines
//!    continued with `\` and skips blank and comment lines (also in the
//!    middle of a continued command, as scriptor does). Each character keeps
//!    its physical line and column, so errors point into the file even
//!    after joining.
//! 2. [`tokenize`] cuts one logical line into tokens.
//!
//! Nothing here indexes into input-derived data without a bound check.

use super::ast::Warning;
use super::ParseError;
use std::sync::Arc;

/// A character of a logical line and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PChar {
    pub c: char,
    pub line: usize,
    pub col: usize,
}

/// What step 1 produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A statement to parse further (possibly joined from several lines).
    Code {
        chars: Vec<PChar>,
        /// Position just past the last character, for "end of line" errors.
        end: (usize, usize),
    },
    Reset {
        line: usize,
        col: usize,
    },
    Exit {
        line: usize,
        col: usize,
    },
}

/// Case-insensitive search for an ASCII word; returns the char index.
fn find_ci(chars: &[char], word: &str) -> Option<usize> {
    let w: Vec<char> = word.chars().collect();
    if w.is_empty() || chars.len() < w.len() {
        return None;
    }
    (0..=chars.len() - w.len()).find(|&i| {
        chars
            .get(i..i + w.len())
            .is_some_and(|s| s.iter().zip(&w).all(|(a, b)| a.eq_ignore_ascii_case(b)))
    })
}

/// Index of the `#` that starts a comment (outside string literals), if any.
fn comment_start(chars: &[char]) -> Option<usize> {
    let mut in_str = false;
    let mut escaped = false;
    for (i, &c) in chars.iter().enumerate() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else if c == '#' {
            return Some(i);
        }
    }
    None
}

/// The first word of `chars` (ASCII letters), lower-cased, with its start index.
fn first_word(chars: &[char]) -> Option<(String, usize)> {
    let start = chars.iter().position(|c| !c.is_whitespace())?;
    let word: String = chars
        .iter()
        .skip(start)
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '-')
        .collect();
    Some((word.to_ascii_lowercase(), start))
}

struct Pending {
    chars: Vec<PChar>,
    first_line: usize,
}

fn warn(file: &Arc<str>, line: usize, col: usize, message: impl Into<String>) -> Warning {
    Warning {
        file: file.to_string(),
        line,
        col,
        message: message.into(),
    }
}

/// What a physical line is, before continuation lines are joined.
enum Classified {
    /// Blank, a comment, or a line that acted already (`reset`).
    Skip,
    /// `exit`: the script ends here.
    Exit,
    /// Code in the line's characters up to this index.
    Code(usize),
}

/// Step 1. `quirks`: classify lines exactly as scriptor does (substring
/// matches for `exit` and `reset`, comments only with `#` in column 1).
pub fn logical_lines(
    text: &str,
    file: &Arc<str>,
    quirks: bool,
) -> Result<(Vec<Line>, Vec<Warning>), ParseError> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut pending: Option<Pending> = None;
    let mut exited = false;
    // A byte-order mark (Windows editors) is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (idx, raw) in text.split('\n').enumerate() {
        let lineno = idx + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let chars: Vec<char> = raw.chars().collect();
        let mut line = LineCtx {
            file,
            lineno,
            continued_above: pending.is_some(),
            out: &mut out,
            warnings: &mut warnings,
        };
        let classified = if quirks {
            line.classify_quirks(&chars)
        } else {
            line.classify(&chars)?
        };
        match classified {
            Classified::Skip => continue,
            Classified::Exit => {
                exited = true;
                break;
            }
            Classified::Code(code_end) => {
                let code = chars.get(..code_end).unwrap_or(&[]);
                join_code(&mut pending, code, lineno, &mut out);
            }
        }
    }
    if !exited {
        if let Some(p) = pending {
            warnings.push(warn(file, p.first_line, 1, "this command ends with `\\` but no line follows, so it is never sent (scriptor drops it as well)"));
        }
    }
    Ok((out, warnings))
}

/// One physical line being classified, and where its findings go.
struct LineCtx<'a> {
    file: &'a Arc<str>,
    lineno: usize,
    /// The line above ended with a continuation `\`.
    continued_above: bool,
    out: &'a mut Vec<Line>,
    warnings: &'a mut Vec<Warning>,
}

impl LineCtx<'_> {
    /// scriptor's reading: any line containing `exit` ends the script, any
    /// containing `reset` resets, `#` in column 1 is a comment.
    fn classify_quirks(&mut self, chars: &[char]) -> Classified {
        let (file, lineno, continued_above) = (self.file, self.lineno, self.continued_above);
        let (out, warnings) = (&mut *self.out, &mut *self.warnings);
        if let Some(i) = find_ci(chars, "exit") {
            if continued_above {
                warnings.push(warn(file, lineno, i + 1, "the continued command above is never sent: the script ends here (scriptor drops it as well)"));
            }
            out.push(Line::Exit {
                line: lineno,
                col: i + 1,
            });
            return Classified::Exit;
        }
        if chars.iter().all(|c| c.is_whitespace()) || chars.first() == Some(&'#') {
            return Classified::Skip;
        }
        if let Some(i) = find_ci(chars, "reset") {
            out.push(Line::Reset {
                line: lineno,
                col: i + 1,
            });
            return Classified::Skip;
        }
        Classified::Code(chars.len())
    }

    /// cardsmith's reading: `exit` and `reset` are commands, comments run
    /// from `#` to the end of the line; where scriptor would act
    /// differently, a warning says so.
    fn classify(&mut self, chars: &[char]) -> Result<Classified, ParseError> {
        let (file, lineno, continued_above) = (self.file, self.lineno, self.continued_above);
        let (out, warnings) = (&mut *self.out, &mut *self.warnings);
        let cstart = comment_start(chars);
        let code_end = cstart.unwrap_or(chars.len());
        let code = chars.get(..code_end).unwrap_or(&[]);
        let word = first_word(code);
        let is_kw = |w: &str| word.as_ref().is_some_and(|(x, _)| x == w);
        // Where scriptor would act differently, say so.
        if !is_kw("exit") {
            if let Some(i) = find_ci(chars, "exit") {
                warnings.push(warn(file, lineno, i + 1, "scriptor would end the script at this line (it stops at any line containing \"exit\", even in a comment); cardsmith ends only at an `exit` command. Use --scriptor-quirks for scriptor's behaviour"));
            } else if !is_kw("reset") && chars.first() != Some(&'#') {
                if let Some(i) = find_ci(chars, "reset") {
                    warnings.push(warn(file, lineno, i + 1, "scriptor would reset the card at this line (it resets on any line containing \"reset\" that does not start with #); cardsmith resets only at a `reset` command. Use --scriptor-quirks for scriptor's behaviour"));
                }
            }
        }
        if let Some((w, start)) = word.clone() {
            if w == "exit" || w == "reset" {
                let after = start + w.chars().count();
                if let Some(extra) = code
                    .iter()
                    .enumerate()
                    .skip(after)
                    .find(|(_, c)| !c.is_whitespace())
                {
                    return Err(ParseError::new(
                        file,
                        lineno,
                        extra.0 + 1,
                        format!("unexpected text after `{w}`: only a comment (# …) may follow it (scriptor would accept any line containing \"{w}\"; run with --scriptor-quirks for that)"),
                    ));
                }
                if w == "exit" {
                    if continued_above {
                        warnings.push(warn(file, lineno, start + 1, "the continued command above is never sent: the script ends here (scriptor drops it as well)"));
                    }
                    out.push(Line::Exit {
                        line: lineno,
                        col: start + 1,
                    });
                    return Ok(Classified::Exit);
                }
                if continued_above {
                    warnings.push(warn(file, lineno, start + 1, "`reset` inside a continued command: the card is reset before the command is sent, as scriptor does"));
                }
                out.push(Line::Reset {
                    line: lineno,
                    col: start + 1,
                });
                return Ok(Classified::Skip);
            }
        }
        if code.iter().all(|c| c.is_whitespace()) {
            return Ok(Classified::Skip);
        }
        Ok(Classified::Code(code_end))
    }
}

/// Add a line's code to the pending command: trailing blanks trimmed, a
/// final `\` continues it on the next line; a command that does not
/// continue is complete and goes out.
fn join_code(pending: &mut Option<Pending>, code: &[char], lineno: usize, out: &mut Vec<Line>) {
    // Code: trim trailing blanks, look for the continuation backslash.
    let mut end = code.len();
    while end > 0 && code.get(end - 1).is_some_and(|c| c.is_whitespace()) {
        end -= 1;
    }
    let continued = end > 0 && code.get(end - 1) == Some(&'\\') && !ends_inside_string(code);
    let body_end = if continued { end - 1 } else { end };
    let p = pending.get_or_insert_with(|| Pending {
        chars: Vec::new(),
        first_line: lineno,
    });
    if !p.chars.is_empty() {
        // Joined lines are separated by one blank, as scriptor does.
        let (l, c) = p
            .chars
            .last()
            .map(|x| (x.line, x.col + 1))
            .unwrap_or((lineno, 1));
        p.chars.push(PChar {
            c: ' ',
            line: l,
            col: c,
        });
    }
    for (i, &c) in code.iter().take(body_end).enumerate() {
        p.chars.push(PChar {
            c,
            line: lineno,
            col: i + 1,
        });
    }
    if !continued {
        if let Some(p) = pending.take() {
            let end = p
                .chars
                .last()
                .map(|x| (x.line, x.col + 1))
                .unwrap_or((p.first_line, 1));
            out.push(Line::Code {
                chars: p.chars,
                end,
            });
        }
    }
}

/// True when the code ends inside an open string literal (so a final `\` is
/// an escape, not a continuation).
fn ends_inside_string(chars: &[char]) -> bool {
    let mut in_str = false;
    let mut escaped = false;
    for &c in chars {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        }
    }
    in_str
}

/// A token of a logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A run of letters, digits, `_`, `.` and `-` (hex, keywords, names, numbers, patterns).
    Word(String),
    /// A string literal, already decoded to bytes.
    Str {
        bytes: Vec<u8>,
        utf8: bool,
    },
    /// `${name}`.
    Var(String),
    LParen,
    RParen,
    Comma,
    LBracket,
    RBracket,
    Eq,
    Arrow,
    Star,
    Pipe,
    Slash,
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Str { utf8: false, .. } => "a string".into(),
            Tok::Str { utf8: true, .. } => "a u\"…\" string".into(),
            Tok::Var(n) => format!("`${{{n}}}`"),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Eq => "`=`".into(),
            Tok::Arrow => "`=>`".into(),
            Tok::Star => "`*`".into(),
            Tok::Pipe => "`|`".into(),
            Tok::Slash => "`/`".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
}

pub fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'
}

/// Step 2: the tokens of one logical line.
pub fn tokenize(chars: &[PChar], file: &Arc<str>) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut i = 0;
    let err = |p: &PChar, msg: String| ParseError::new(file, p.line, p.col, msg);
    while let Some(p) = chars.get(i) {
        let c = p.c;
        let next = chars.get(i + 1).map(|x| x.c);
        let mut push = |tok: Tok| {
            out.push(Token {
                tok,
                line: p.line,
                col: p.col,
            })
        };
        match c {
            _ if c.is_whitespace() => {
                i += 1;
            }
            '"' => {
                let (bytes, n) = string_lit(chars, i + 1, false, file, p)?;
                push(Tok::Str { bytes, utf8: false });
                i = n;
            }
            'u' | 'U' if next == Some('"') => {
                let (bytes, n) = string_lit(chars, i + 2, true, file, p)?;
                push(Tok::Str { bytes, utf8: true });
                i = n;
            }
            '$' => {
                let (name, n) = variable(chars, i, p, file)?;
                push(Tok::Var(name));
                i = n;
            }
            '(' | ')' | ',' | '[' | ']' | '*' | '|' | '/' => {
                push(match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    ',' => Tok::Comma,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    '*' => Tok::Star,
                    '|' => Tok::Pipe,
                    _ => Tok::Slash,
                });
                i += 1;
            }
            '=' if next == Some('>') => {
                push(Tok::Arrow);
                i += 2;
            }
            '=' => {
                push(Tok::Eq);
                i += 1;
            }
            _ if is_word_char(c) => {
                let mut w = String::new();
                let mut j = i;
                while let Some(q) = chars.get(j) {
                    if is_word_char(q.c) {
                        w.push(q.c);
                        j += 1;
                    } else {
                        break;
                    }
                }
                push(Tok::Word(w));
                i = j;
            }
            _ => {
                return Err(err(
                    p,
                    format!("unexpected character {c:?}: expected hex bytes, \"text\", ${{name}}, a function such as tlv(…), or `=>` before an expected response"),
                ))
            }
        }
    }
    Ok(out)
}

/// A `${name}` reference whose `$` is `p`, at index `i`: the name and the
/// index after the closing brace.
fn variable(
    chars: &[PChar],
    i: usize,
    p: &PChar,
    file: &Arc<str>,
) -> Result<(String, usize), ParseError> {
    let err = |p: &PChar, msg: String| ParseError::new(file, p.line, p.col, msg);
    if chars.get(i + 1).map(|x| x.c) != Some('{') {
        return Err(err(
            p,
            "expected `{` after `$`: variables are written ${name}".into(),
        ));
    }
    let mut j = i + 2;
    let mut name = String::new();
    while let Some(q) = chars.get(j) {
        if q.c.is_ascii_alphanumeric() || q.c == '_' || q.c == '-' || q.c == '.' {
            name.push(q.c);
            j += 1;
        } else {
            break;
        }
    }
    match chars.get(j) {
        _ if name.is_empty() => {
            let at = chars.get(j).unwrap_or(p);
            return Err(err(
                at,
                "expected a variable name (letters, digits, _) after `${`".into(),
            ));
        }
        Some(q) if q.c == '}' => {}
        Some(q) => {
            return Err(err(
                q,
                format!("expected `}}` to close ${{{name}, found {:?}", q.c),
            ))
        }
        None => {
            let last = chars.last().unwrap_or(p);
            return Err(ParseError::new(
                file,
                last.line,
                last.col + 1,
                format!("expected `}}` to close ${{{name} before the end of the line"),
            ));
        }
    }
    if !name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
    {
        return Err(err(
            p,
            format!("variable names start with a letter or `_`, not {name:?}"),
        ));
    }
    Ok((name, j + 1))
}

/// Read a string literal whose content starts at `start`; returns the bytes
/// and the index after the closing quote.
fn string_lit(
    chars: &[PChar],
    start: usize,
    utf8: bool,
    file: &Arc<str>,
    open: &PChar,
) -> Result<(Vec<u8>, usize), ParseError> {
    let mut out = Vec::new();
    let mut i = start;
    loop {
        let Some(p) = chars.get(i) else {
            return Err(ParseError::new(
                file,
                open.line,
                open.col,
                "this string is not closed: expected `\"` before the end of the line",
            ));
        };
        match p.c {
            '"' => return Ok((out, i + 1)),
            '\\' => {
                let Some(e) = chars.get(i + 1) else {
                    return Err(ParseError::new(
                        file,
                        p.line,
                        p.col,
                        "expected an escape after `\\` (\\\" \\\\ \\n \\r \\t \\0 \\xHH)",
                    ));
                };
                match e.c {
                    '"' => out.push(b'"'),
                    '\\' => out.push(b'\\'),
                    'n' => out.push(b'\n'),
                    'r' => out.push(b'\r'),
                    't' => out.push(b'\t'),
                    '0' => out.push(0),
                    'x' => {
                        let hi = chars.get(i + 2).and_then(|x| x.c.to_digit(16));
                        let lo = chars.get(i + 3).and_then(|x| x.c.to_digit(16));
                        match (hi, lo) {
                            (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                            _ => {
                                return Err(ParseError::new(
                                    file,
                                    e.line,
                                    e.col,
                                    "expected two hex digits after \\x",
                                ))
                            }
                        }
                        i += 2;
                    }
                    other => {
                        return Err(ParseError::new(
                            file,
                            e.line,
                            e.col,
                            format!(
                            "unknown escape \\{other}: expected \\\" \\\\ \\n \\r \\t \\0 or \\xHH"
                        ),
                        ))
                    }
                }
                i += 2;
            }
            c => {
                if !utf8 && !c.is_ascii() {
                    return Err(ParseError::new(
                        file,
                        p.line,
                        p.col,
                        format!("{c:?} is not ASCII: \"…\" strings are ASCII; write u\"…\" for UTF-8 text"),
                    ));
                }
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += 1;
            }
        }
    }
}
