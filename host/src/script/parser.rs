//! Logical lines to statements. See `docs/scripts.md` for the grammar.

use super::ast::*;
use super::lexer::{self, Line, Tok, Token};
use super::ParseError;
use std::sync::Arc;

/// Parse one script text. `file` names it in errors and locations.
/// Includes are left as [`StmtKind::Include`]; [`super::load`] resolves them.
pub fn parse(text: &str, file: &str, quirks: bool) -> Result<Script, ParseError> {
    let file: Arc<str> = Arc::from(file);
    let (lines, warnings) = lexer::logical_lines(text, &file, quirks)?;
    let mut stmts: Vec<Stmt> = Vec::new();
    for line in lines {
        match line {
            Line::Reset { line, col } => stmts.push(Stmt {
                loc: Loc::new(&file, line, col),
                kind: StmtKind::Reset,
            }),
            Line::Exit { line, col } => stmts.push(Stmt {
                loc: Loc::new(&file, line, col),
                kind: StmtKind::Exit,
            }),
            Line::Code { chars, end } => {
                let toks = lexer::tokenize(&chars, &file)?;
                let Some(first) = toks.first() else {
                    continue;
                };
                let loc = Loc::new(&file, first.line, first.col);
                let mut p = Parser {
                    toks: &toks,
                    i: 0,
                    file: &file,
                    end,
                    depth: 0,
                };
                let kind = if quirks {
                    p.scriptor_line()?
                } else {
                    p.statement(&stmts)?
                };
                stmts.push(Stmt { loc, kind });
            }
        }
    }
    Ok(Script { stmts, warnings })
}

/// Parse a command template: one `apdu(header, data[, le])` expression on
/// one line (a card profile's named steps, [`super::template`]). `file`
/// names it in errors, whose line is `line` (where the template sits in
/// its file) and whose column counts from the template's first character.
pub fn parse_command(text: &str, file: &str, line: usize) -> Result<Term, ParseError> {
    let file: Arc<str> = Arc::from(file);
    let chars: Vec<lexer::PChar> = text
        .chars()
        .enumerate()
        .map(|(i, c)| lexer::PChar {
            c,
            line,
            col: i + 1,
        })
        .collect();
    let toks = lexer::tokenize(&chars, &file)?;
    let mut p = Parser {
        toks: &toks,
        i: 0,
        file: &file,
        end: (line, chars.len() + 1),
        depth: 0,
    };
    let expr = p.expr(&[])?;
    if let Some(t) = p.peek() {
        return Err(p.err_at(
            t,
            format!("unexpected {} after the command", t.tok.describe()),
        ));
    }
    match <[Term; 1]>::try_from(expr.terms) {
        Ok([t @ Term::Apdu { .. }]) => Ok(t),
        _ => Err(ParseError::new(
            &file,
            line,
            1,
            "expected one command written apdu(CLA INS P1 P2, data[, Le])",
        )),
    }
}

const KEYWORDS: &str =
    "let, test, include, capture, secret, update-binary, store-data, option, reset, exit";

struct Parser<'a> {
    toks: &'a [Token],
    i: usize,
    file: &'a Arc<str>,
    end: (usize, usize),
    /// Function-call nesting, bounded so that no input exhausts the stack.
    depth: usize,
}

/// Deepest nesting of function calls such as tlv(…).
pub const MAX_NESTING: usize = 64;

fn is_hex_word(w: &str) -> bool {
    let w = w
        .strip_prefix("0x")
        .or_else(|| w.strip_prefix("0X"))
        .unwrap_or(w);
    !w.is_empty() && w.chars().all(|c| c.is_ascii_hexdigit())
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.toks.get(self.i)
    }

    fn peek_tok(&self) -> Option<&'a Tok> {
        self.peek().map(|t| &t.tok)
    }

    fn next(&mut self) -> Option<&'a Token> {
        let t = self.toks.get(self.i);
        if t.is_some() {
            self.i += 1;
        }
        t
    }

    fn loc(&self, t: &Token) -> Loc {
        Loc::new(self.file, t.line, t.col)
    }

    /// An error at the current token (or at the end of the line).
    fn err_here(&self, msg: impl Into<String>) -> ParseError {
        let msg = msg.into();
        match self.peek() {
            Some(t) => ParseError::new(
                self.file,
                t.line,
                t.col,
                format!("{msg}, found {}", t.tok.describe()),
            ),
            None => ParseError::new(
                self.file,
                self.end.0,
                self.end.1,
                format!("{msg}, found the end of the line"),
            ),
        }
    }

    fn err_at(&self, t: &Token, msg: impl Into<String>) -> ParseError {
        ParseError::new(self.file, t.line, t.col, msg)
    }

    fn expect_end(&self, what: &str) -> Result<(), ParseError> {
        if self.peek().is_some() {
            return Err(self.err_here(format!("expected the end of the line after {what}")));
        }
        Ok(())
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<&'a Token, ParseError> {
        match self.peek() {
            Some(t) if t.tok == want => {
                self.i += 1;
                Ok(t)
            }
            _ => Err(self.err_here(format!("expected {what}"))),
        }
    }

    fn ident(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek() {
            Some(Token {
                tok: Tok::Word(w), ..
            }) if valid_ident(w) => {
                self.i += 1;
                Ok(w.clone())
            }
            _ => Err(self.err_here(format!(
                "expected {what} (a letter or _, then letters, digits, _ or -)"
            ))),
        }
    }

    /// In --scriptor-quirks mode a code line is hex only.
    fn scriptor_line(&mut self) -> Result<StmtKind, ParseError> {
        let mut bytes = Vec::new();
        while let Some(t) = self.next() {
            match &t.tok {
                Tok::Word(w) => bytes.extend(self.hex_word(t, w)?),
                other => {
                    return Err(self.err_at(
                        t,
                        format!(
                            "expected hex bytes, found {} (in --scriptor-quirks mode lines are hex, reset, exit or # comments)",
                            other.describe()
                        ),
                    ))
                }
            }
        }
        Ok(StmtKind::Command {
            apdu: Expr {
                terms: vec![Term::Hex(bytes)],
            },
            expect: None,
        })
    }

    fn statement(&mut self, before: &[Stmt]) -> Result<StmtKind, ParseError> {
        let Some(first) = self.peek() else {
            return Err(self.err_here("expected a statement"));
        };
        if let Tok::Word(w) = &first.tok {
            let kw = w.to_ascii_lowercase();
            let call_follows =
                matches!(self.toks.get(self.i + 1).map(|t| &t.tok), Some(Tok::LParen));
            match kw.as_str() {
                "let" => return self.let_stmt(),
                "test" => return self.test_stmt(),
                "include" => return self.include_stmt(),
                "secret" if !call_follows => return self.secret_stmt(),
                "capture" => return self.capture_stmt(first, before),
                "option" => return self.option_stmt(),
                "update-binary" | "store-data" => {
                    self.i += 1;
                    return self.chunked(kw == "store-data");
                }
                _ => {}
            }
            if !call_follows
                && !is_hex_word(w)
                && w.chars()
                    .all(|c| c.is_ascii_alphabetic() || c == '-' || c == '_')
            {
                return Err(self.err_at(
                    first,
                    format!("unknown command `{w}`: a line is hex bytes (an APDU), or starts with one of {KEYWORDS}"),
                ));
            }
        }
        // A command line.
        let apdu = self.expr(&[Tok::Arrow])?;
        if apdu.terms.is_empty() {
            return Err(self.err_here("expected the APDU bytes before `=>`"));
        }
        let expect = self.opt_expect()?;
        self.expect_end("the command")?;
        Ok(StmtKind::Command { apdu, expect })
    }

    /// `let name = value`.
    fn let_stmt(&mut self) -> Result<StmtKind, ParseError> {
        self.i += 1;
        let name = self.ident("a variable name after `let`")?;
        self.expect(Tok::Eq, "`=` after the variable name")?;
        let value = self.expr(&[])?;
        if value.terms.is_empty() {
            return Err(self.err_here("expected a value after `=`"));
        }
        self.expect_end("the value")?;
        Ok(StmtKind::Let { name, value })
    }

    /// `test "name"`: a named test case starts.
    fn test_stmt(&mut self) -> Result<StmtKind, ParseError> {
        self.i += 1;
        let name = match self.next() {
            Some(Token {
                tok: Tok::Str { bytes, .. },
                ..
            }) => String::from_utf8_lossy(bytes).into_owned(),
            _ => {
                self.i = self.i.saturating_sub(1).max(1);
                return Err(
                    self.err_here("expected the test name in quotes, e.g. test \"verify PIN\"")
                );
            }
        };
        self.expect_end("the test name")?;
        Ok(StmtKind::Test { name })
    }

    /// `include "file"`.
    fn include_stmt(&mut self) -> Result<StmtKind, ParseError> {
        self.i += 1;
        let path = match self.peek() {
            Some(Token {
                tok: Tok::Str { bytes, .. },
                ..
            }) => {
                self.i += 1;
                String::from_utf8_lossy(bytes).into_owned()
            }
            _ => {
                return Err(self.err_here(
                    "expected the file to include in quotes, e.g. include \"common.apdu\"",
                ))
            }
        };
        self.expect_end("the file name")?;
        Ok(StmtKind::Include { path })
    }

    /// `secret a, b`: variables whose values are never shown.
    fn secret_stmt(&mut self) -> Result<StmtKind, ParseError> {
        self.i += 1;
        let mut names = vec![self.ident("a variable name after `secret`")?];
        while self.peek_tok() == Some(&Tok::Comma) {
            self.i += 1;
            names.push(self.ident("a variable name after `,`")?);
        }
        self.expect_end("the variable names")?;
        Ok(StmtKind::SecretDecl { names })
    }

    /// `capture name = source`, after a command or another capture.
    fn capture_stmt(&mut self, first: &Token, before: &[Stmt]) -> Result<StmtKind, ParseError> {
        self.i += 1;
        if !before
            .last()
            .is_some_and(|s| matches!(s.kind, StmtKind::Command { .. } | StmtKind::Capture { .. }))
        {
            return Err(self.err_at(
                first,
                "`capture` takes its value from the response of the command just above it, but there is none (a capture must follow a command line or another capture)",
            ));
        }
        let name = self.ident("a variable name after `capture`")?;
        self.expect(Tok::Eq, "`=` after the variable name")?;
        let source = self.capture_source()?;
        self.expect_end("the capture")?;
        Ok(StmtKind::Capture { name, source })
    }

    /// `option get-response|resend-6c on|off`.
    fn option_stmt(&mut self) -> Result<StmtKind, ParseError> {
        self.i += 1;
        let t = self.peek();
        let name = match self.next().map(|t| &t.tok) {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("get-response") => OptionName::GetResponse,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("resend-6c") => OptionName::Resend6C,
            _ => {
                self.i -= usize::from(t.is_some());
                return Err(self.err_here("expected an option name: get-response or resend-6c"));
            }
        };
        let on = match self.peek_tok() {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("on") => true,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("off") => false,
            _ => return Err(self.err_here("expected `on` or `off`")),
        };
        self.i += 1;
        self.expect_end("the option")?;
        Ok(StmtKind::SetOption { name, on })
    }

    fn opt_expect(&mut self) -> Result<Option<Expect>, ParseError> {
        if self.peek_tok() == Some(&Tok::Arrow) {
            self.i += 1;
            Ok(Some(self.expectation()?))
        } else {
            Ok(None)
        }
    }

    fn chunked(&mut self, store: bool) -> Result<StmtKind, ParseError> {
        let mut offset = 0usize;
        let mut sfi = None;
        let mut max = None;
        let mut cla = 0x80u8;
        let mut p1 = 0x00u8;
        // key=value options come first.
        while let (
            Some(Token {
                tok: Tok::Word(key),
                ..
            }),
            Some(Tok::Eq),
        ) = (self.peek(), self.toks.get(self.i + 1).map(|t| &t.tok))
        {
            let key_tok = self.peek();
            self.i += 2;
            let Some(vt) = self.next() else {
                return Err(self.err_here(format!("expected a value after `{key}=`")));
            };
            let Tok::Word(v) = &vt.tok else {
                return Err(self.err_at(vt, format!("expected a number after `{key}=`")));
            };
            match (key.to_ascii_lowercase().as_str(), store) {
                ("offset", false) => {
                    let n = self.number(vt, v)?;
                    if n > 0xFF_FFFF {
                        return Err(self.err_at(
                            vt,
                            format!("offset {n} is above 16777215, the largest offset data object (DO 54) this writes"),
                        ));
                    }
                    offset = n;
                }
                ("sfi", false) => {
                    let n = self.number(vt, v)?;
                    if !(1..=30).contains(&n) {
                        return Err(
                            self.err_at(vt, format!("SFI {n} is out of range; expected 1 to 30"))
                        );
                    }
                    sfi = Some(n as u8);
                }
                ("max", _) => {
                    let n = self.number(vt, v)?;
                    if n == 0 || n > 65_535 {
                        return Err(self.err_at(
                            vt,
                            format!("max {n} is out of range; expected 1 to 65535 data bytes per command"),
                        ));
                    }
                    max = Some(n);
                }
                ("cla", true) => cla = self.hex_byte(vt, v)?,
                ("p1", true) => {
                    let b = self.hex_byte(vt, v)?;
                    if b & 0x80 != 0 {
                        return Err(self.err_at(vt, "P1 b8 is set by cardsmith on the last block; give P1 without it (e.g. p1=00 or p1=10)"));
                    }
                    p1 = b;
                }
                (k, _) => {
                    let t = key_tok.unwrap_or(vt);
                    let allowed = if store {
                        "cla, p1, max"
                    } else {
                        "offset, sfi, max"
                    };
                    return Err(self.err_at(
                        t,
                        format!("unknown option `{k}`; expected one of {allowed}"),
                    ));
                }
            }
        }
        if let Some(s) = sfi {
            if offset > 255 {
                return Err(self.err_here(format!(
                    "with sfi={s} the first offset must be at most 255 (it goes in P2)"
                )));
            }
        }
        let data = self.expr(&[Tok::Arrow])?;
        if data.terms.is_empty() {
            return Err(self.err_here("expected the data to write"));
        }
        let expect = self.opt_expect()?;
        self.expect_end("the command")?;
        if sfi.is_some() && offset > 0xFF {
            return Err(self.err_here(format!(
                "offset {offset} with sfi=: READ/UPDATE BINARY with a short EF identifier reach offset 255 only (ISO 7816-4 P2)"
            )));
        }
        let kind = if store {
            ChunkKind::StoreData { cla, p1 }
        } else {
            ChunkKind::UpdateBinary { offset, sfi }
        };
        Ok(StmtKind::Chunked {
            kind,
            max,
            data,
            expect,
        })
    }

    fn number(&self, t: &Token, w: &str) -> Result<usize, ParseError> {
        let parsed = if let Some(h) = w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
            usize::from_str_radix(h, 16).ok()
        } else {
            w.parse::<usize>().ok()
        };
        parsed.ok_or_else(|| {
            self.err_at(
                t,
                format!("expected a number (decimal, or hex with 0x), found `{w}`"),
            )
        })
    }

    fn hex_byte(&self, t: &Token, w: &str) -> Result<u8, ParseError> {
        match self.hex_word(t, w)?.as_slice() {
            [b] => Ok(*b),
            _ => Err(self.err_at(t, format!("expected one byte in hex, found `{w}`"))),
        }
    }

    /// Hex digits (optionally 0x-prefixed) to bytes, with the column of the problem.
    fn hex_word(&self, t: &Token, w: &str) -> Result<Vec<u8>, ParseError> {
        let (skip, digits) = match w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
            Some(d) => (2, d),
            None => (0, w),
        };
        if let Some((i, c)) = digits
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_hexdigit())
        {
            let hint = if c == 'x' || c == 'X' || c == '.' {
                " (wildcards like xx and .. are for expected responses, after `=>`)"
            } else {
                ""
            };
            return Err(ParseError::new(
                self.file,
                t.line,
                t.col + skip + i,
                format!("expected a hex digit (0-9, A-F), found {c:?}{hint}"),
            ));
        }
        if digits.is_empty() {
            return Err(self.err_at(t, "expected hex digits after 0x"));
        }
        if !digits.len().is_multiple_of(2) {
            return Err(self.err_at(
                t,
                format!(
                    "`{w}` has an odd number of hex digits; bytes are two digits each (0A, not A)"
                ),
            ));
        }
        let mut out = Vec::with_capacity(digits.len() / 2);
        let cs: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(16)).collect();
        for pair in cs.chunks_exact(2) {
            if let [h, l] = pair {
                out.push((h * 16 + l) as u8);
            }
        }
        Ok(out)
    }

    /// Terms until the end of the line, a `)`/`,` (inside calls) or a stop token.
    fn expr(&mut self, stop: &[Tok]) -> Result<Expr, ParseError> {
        let mut terms = Vec::new();
        while let Some(t) = self.peek() {
            if stop.contains(&t.tok) || matches!(t.tok, Tok::RParen | Tok::Comma) {
                break;
            }
            terms.push(self.term()?);
        }
        Ok(Expr { terms })
    }

    fn term(&mut self) -> Result<Term, ParseError> {
        let Some(t) = self.next() else {
            return Err(self.err_here("expected bytes"));
        };
        match &t.tok {
            Tok::Word(w) if self.peek_tok() == Some(&Tok::LParen) => self.call(t, w),
            Tok::Word(w) => Ok(Term::Hex(self.hex_word(t, w)?)),
            Tok::Str { bytes, .. } => Ok(Term::Text(bytes.clone())),
            Tok::Var(name) => Ok(Term::Var {
                name: name.clone(),
                loc: self.loc(t),
            }),
            other => Err(self.err_at(
                t,
                format!(
                    "expected hex bytes, \"text\", ${{name}} or a function such as tlv(…), found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn call(&mut self, name_tok: &Token, name: &str) -> Result<Term, ParseError> {
        if self.depth >= MAX_NESTING {
            return Err(self.err_at(
                name_tok,
                format!("functions are nested more than {MAX_NESTING} deep"),
            ));
        }
        self.i += 1; // (
        self.depth += 1;
        let mut args = vec![self.expr(&[])?];
        while self.peek_tok() == Some(&Tok::Comma) {
            self.i += 1;
            args.push(self.expr(&[])?);
        }
        self.depth -= 1;
        if self.peek_tok() != Some(&Tok::RParen) {
            return Err(self.err_here(format!("expected `,` or `)` in {name}(…)")));
        }
        self.i += 1;
        let loc = self.loc(name_tok);
        let n = args.len();
        let arity = |want: &str| {
            self.err_at(
                name_tok,
                format!("{name}(…) takes {want}, but {n} were given"),
            )
        };
        let mut it = args.into_iter();
        let mut arg = || Box::new(it.next().unwrap_or(Expr { terms: vec![] }));
        match name.to_ascii_lowercase().as_str() {
            "tlv" => {
                if n != 2 {
                    return Err(arity("two arguments, tlv(TAG, VALUE) (put several values side by side: tlv(62, tlv(80, 01) tlv(82, 01)))"));
                }
                let tag = arg();
                if let Some(bytes) = literal(&tag) {
                    if let Err(e) = check_tag(&bytes) {
                        return Err(self.err_at(name_tok, format!("tlv(…): {e}")));
                    }
                }
                Ok(Term::Tlv { tag, value: arg() })
            }
            "len" => {
                if n != 1 {
                    return Err(arity("one argument"));
                }
                Ok(Term::Len { of: arg(), loc })
            }
            "secret" => {
                if n != 1 {
                    return Err(arity("one argument"));
                }
                Ok(Term::Secret(arg()))
            }
            "personal" => {
                if n != 1 {
                    return Err(arity("one argument"));
                }
                Ok(Term::Personal(arg()))
            }
            "apdu" => {
                if !(2..=3).contains(&n) {
                    return Err(arity(
                        "two or three arguments, apdu(CLA INS P1 P2, DATA[, LE])",
                    ));
                }
                let header = arg();
                if let Some(h) = literal(&header) {
                    if h.len() != 4 {
                        return Err(self.err_at(
                            name_tok,
                            format!(
                                "apdu(…): the header is CLA INS P1 P2, 4 bytes, not {}",
                                h.len()
                            ),
                        ));
                    }
                }
                let data = arg();
                let le = if n == 3 { Some(arg()) } else { None };
                if let Some(l) = le.as_deref().and_then(literal) {
                    if !(1..=2).contains(&l.len()) {
                        return Err(self.err_at(name_tok, "apdu(…): Le is one byte (short, 00 = 256) or two bytes (extended, 0000 = 65536)"));
                    }
                }
                Ok(Term::Apdu {
                    header,
                    data,
                    le,
                    loc,
                })
            }
            _ => Err(self.err_at(
                name_tok,
                format!("unknown function `{name}`; expected tlv, len, secret, personal or apdu"),
            )),
        }
    }

    fn expectation(&mut self) -> Result<Expect, ParseError> {
        let mut sw = vec![self.sw_pattern()?];
        while self.peek_tok() == Some(&Tok::Pipe) {
            self.i += 1;
            sw.push(self.sw_pattern()?);
        }
        let data = if self.peek_tok() == Some(&Tok::LBracket) {
            self.i += 1;
            let mut items = Vec::new();
            loop {
                let Some(t) = self.peek() else {
                    return Err(self.err_here("expected `]` to close the data pattern"));
                };
                match &t.tok {
                    Tok::RBracket => {
                        self.i += 1;
                        break;
                    }
                    Tok::Star => {
                        self.i += 1;
                        items.push(PatItem::Any);
                    }
                    Tok::Word(w) if self.toks.get(self.i + 1).map(|x| &x.tok) != Some(&Tok::LParen) => {
                        self.i += 1;
                        items.extend(self.pattern_word(t, w)?);
                    }
                    Tok::Word(_) | Tok::Str { .. } | Tok::Var(_) => {
                        let term = self.term()?;
                        items.push(PatItem::Expr(Expr { terms: vec![term] }));
                    }
                    _ => {
                        return Err(self.err_here(
                            "expected response bytes (hex, with xx or .. for any byte and x for any nibble), `*` for any bytes, \"text\", ${name}, or `]`",
                        ))
                    }
                }
            }
            Some(items)
        } else {
            None
        };
        Ok(Expect { sw, data })
    }

    fn sw_pattern(&mut self) -> Result<SwPattern, ParseError> {
        let msg = "expected a status word pattern such as 9000, 61xx or 63Cx";
        let Some(t) = self.peek() else {
            return Err(self.err_here(msg));
        };
        let Tok::Word(w) = &t.tok else {
            return Err(self.err_here(msg));
        };
        let mut text = w.clone();
        self.i += 1;
        // Also accept "90 00".
        if text.chars().count() == 2 {
            if let Some(Token {
                tok: Tok::Word(w2), ..
            }) = self.peek()
            {
                if w2.chars().count() == 2 {
                    text.push_str(w2);
                    self.i += 1;
                }
            }
        }
        if text.chars().count() != 4 {
            return Err(self.err_at(t, format!("{msg}: four hex digits, found `{text}`")));
        }
        let mut value = 0u16;
        let mut mask = 0u16;
        for (i, c) in text.chars().enumerate() {
            value <<= 4;
            mask <<= 4;
            match c {
                'x' | 'X' | '.' => {}
                _ => match c.to_digit(16) {
                    Some(d) => {
                        value |= d as u16;
                        mask |= 0xF;
                    }
                    None => {
                        return Err(ParseError::new(
                            self.file,
                            t.line,
                            t.col + i,
                            format!("{msg}: found {c:?}; use x for any hex digit"),
                        ))
                    }
                },
            }
        }
        Ok(SwPattern { value, mask })
    }

    fn pattern_word(&self, t: &Token, w: &str) -> Result<Vec<PatItem>, ParseError> {
        let cs: Vec<char> = w.chars().collect();
        if !cs.len().is_multiple_of(2) {
            return Err(self.err_at(
                t,
                format!("`{w}` has an odd number of digits; each byte is two (hex, x for any digit, .. or xx for any byte)"),
            ));
        }
        let nib = |i: usize, c: char| -> Result<(u8, u8), ParseError> {
            match c {
                'x' | 'X' | '.' => Ok((0, 0)),
                _ => c.to_digit(16).map(|d| (d as u8, 0xF)).ok_or_else(|| {
                    ParseError::new(
                        self.file,
                        t.line,
                        t.col + i,
                        format!("expected a hex digit or a wildcard (x, .), found {c:?}"),
                    )
                }),
            }
        };
        let mut out = Vec::new();
        for (k, pair) in cs.chunks_exact(2).enumerate() {
            if let [a, b] = pair {
                let (hv, hm) = nib(2 * k, *a)?;
                let (lv, lm) = nib(2 * k + 1, *b)?;
                out.push(PatItem::Byte {
                    value: hv << 4 | lv,
                    mask: hm << 4 | lm,
                });
            }
        }
        Ok(out)
    }

    fn capture_source(&mut self) -> Result<CaptureSource, ParseError> {
        let msg = "expected where to capture from: tlv PATH (e.g. tlv 6F/84), data START..END (e.g. data 2..6), or sw";
        let Some(t) = self.next() else {
            return Err(self.err_here(msg));
        };
        let Tok::Word(w) = &t.tok else {
            self.i -= 1;
            return Err(self.err_here(msg));
        };
        match w.to_ascii_lowercase().as_str() {
            "sw" => Ok(CaptureSource::Sw),
            "data" => {
                let Some(rt) = self.peek() else {
                    return Ok(CaptureSource::Range {
                        start: 0,
                        end: None,
                    });
                };
                let Tok::Word(r) = &rt.tok else {
                    return Err(self.err_here("expected a byte range such as 2..6, 2.. or ..6"));
                };
                self.i += 1;
                let Some((a, b)) = r.split_once("..") else {
                    return Err(self.err_at(
                        rt,
                        format!("expected a byte range such as 2..6 (bytes 2 to 5), 2.. or ..6, found `{r}`"),
                    ));
                };
                let start = if a.is_empty() { 0 } else { self.number(rt, a)? };
                let end = if b.is_empty() {
                    None
                } else {
                    Some(self.number(rt, b)?)
                };
                if end.is_some_and(|e| e < start) {
                    return Err(self.err_at(rt, format!("the range {r} ends before it starts")));
                }
                Ok(CaptureSource::Range { start, end })
            }
            "tlv" => {
                let mut steps = Vec::new();
                loop {
                    let Some(tt) = self.next() else {
                        return Err(self.err_here("expected a tag (hex) in the path"));
                    };
                    let Tok::Word(tag) = &tt.tok else {
                        self.i -= 1;
                        return Err(self.err_here("expected a tag (hex) in the path"));
                    };
                    let bytes = self.hex_word(tt, tag)?;
                    if let Err(e) = check_tag(&bytes) {
                        return Err(self.err_at(tt, e));
                    }
                    let mut index = 0;
                    if self.peek_tok() == Some(&Tok::LBracket) {
                        self.i += 1;
                        let Some(nt) = self.next() else {
                            return Err(self.err_here("expected an occurrence number (0 = first)"));
                        };
                        let Tok::Word(n) = &nt.tok else {
                            self.i -= 1;
                            return Err(self.err_here("expected an occurrence number (0 = first)"));
                        };
                        index = self.number(nt, n)?;
                        self.expect(Tok::RBracket, "`]`")?;
                    }
                    steps.push(PathStep { tag: bytes, index });
                    if self.peek_tok() == Some(&Tok::Slash) {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                Ok(CaptureSource::Tlv(steps))
            }
            _ => Err(self.err_at(t, msg)),
        }
    }
}

fn valid_ident(w: &str) -> bool {
    w.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The bytes of an expression made only of literals.
fn literal(e: &Expr) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for t in &e.terms {
        match t {
            Term::Hex(b) | Term::Text(b) => out.extend_from_slice(b),
            _ => return None,
        }
    }
    Some(out)
}

/// A BER tag: 1 to 3 bytes, more bytes only when the first says so
/// (low 5 bits all set) and each but the last has b8 set.
pub fn check_tag(tag: &[u8]) -> Result<(), String> {
    let shown = cardsmith_hex(tag);
    match tag {
        [] => Err("the tag is empty".into()),
        [t] if t & 0x1F == 0x1F => Err(format!(
            "tag {shown} announces more tag bytes (low 5 bits set) but has none"
        )),
        [_] => Ok(()),
        [t, rest @ ..] if tag.len() <= 3 => {
            if t & 0x1F != 0x1F {
                return Err(format!(
                    "tag {shown}: a multi-byte tag starts with a byte whose low 5 bits are set (e.g. 5F, 7F, 9F, BF)"
                ));
            }
            let (last, mid) = rest.split_last().ok_or("empty")?;
            if mid.iter().any(|b| b & 0x80 == 0) || last & 0x80 != 0 {
                return Err(format!(
                    "tag {shown}: subsequent tag bytes have b8 set except the last"
                ));
            }
            Ok(())
        }
        _ => Err(format!("tag {shown} is longer than 3 bytes")),
    }
}

fn cardsmith_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}
