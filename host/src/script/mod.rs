//! APDU scripts: a superset of pcsc-tools' `scriptor` format with expected
//! responses, variables, TLV building, chunked writes, includes, named test
//! cases and secrets that never reach a trace. The grammar and examples are
//! in `docs/scripts.md`.
//!
//! Pipeline: [`parse_str`] (text → [`Script`]), [`load`] (file → script with
//! includes inlined), [`check_vars`] (every `${name}` defined before use),
//! then [`runner`] executes the statements over a
//! transport `Channel` and [`report`] renders the outcome as
//! text, JSON and JUnit XML.
//!
//! No input makes the parser panic: there is no unchecked indexing on
//! input-derived data (a proptest and the `fuzz_targets/script.rs` cargo-fuzz
//! target check this, and clippy denies indexing and unwrap outside tests).

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod ast;
pub mod eval;
pub mod lexer;
pub mod parser;
pub mod report;
pub mod runner;
pub mod template;
pub mod transcript;

pub use ast::{Loc, Script, Stmt, StmtKind, Warning};
pub use report::Report;
pub use runner::{execute, RunConfig, Target};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A script that cannot be used: where, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{file}:{line}:{col}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(file: &Arc<str>, line: usize, col: usize, message: impl Into<String>) -> Self {
        ParseError {
            file: file.to_string(),
            line,
            col,
            message: message.into(),
        }
    }
}

/// Parsing options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Classify lines exactly as scriptor does: any line containing "exit"
    /// ends the script, any other line containing "reset" resets the card,
    /// `#` starts a comment only in column 1, and no extensions.
    pub scriptor_quirks: bool,
}

/// Parse script text. `file` is the name used in errors and reports.
/// `include` statements are kept as they are (see [`load`]).
pub fn parse_str(text: &str, file: &str) -> Result<Script, ParseError> {
    parser::parse(text, file, false)
}

/// [`parse_str`] with options.
pub fn parse_with(text: &str, file: &str, opts: ParseOptions) -> Result<Script, ParseError> {
    parser::parse(text, file, opts.scriptor_quirks)
}

/// Deepest include nesting.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// Read and parse a script file, inlining `include`s (paths relative to the
/// including file). Errors name the file, line and column; a missing or
/// cyclic include is reported at the `include` line.
pub fn load(path: &Path, opts: ParseOptions) -> Result<Script, ParseError> {
    let text = std::fs::read(path).map_err(|e| ParseError {
        file: path.display().to_string(),
        line: 0,
        col: 0,
        message: format!("cannot read the script: {e}"),
    })?;
    let text = String::from_utf8(text).map_err(|e| {
        let upto = e
            .as_bytes()
            .get(..e.utf8_error().valid_up_to())
            .unwrap_or(&[]);
        let line = upto.iter().filter(|b| **b == b'\n').count() + 1;
        let col = String::from_utf8_lossy(upto)
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count() + 1)
            .unwrap_or(1);
        ParseError {
            file: path.display().to_string(),
            line,
            col,
            message: "the file is not valid UTF-8".into(),
        }
    })?;
    let mut stack = Vec::new();
    load_text(&text, path, opts, &mut stack)
}

fn load_text(
    text: &str,
    path: &Path,
    opts: ParseOptions,
    stack: &mut Vec<PathBuf>,
) -> Result<Script, ParseError> {
    let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    stack.push(canon);
    let parsed = parse_with(text, &path.display().to_string(), opts)?;
    let mut out = Script {
        stmts: Vec::new(),
        warnings: parsed.warnings,
    };
    let base = path.parent().unwrap_or(Path::new("."));
    for st in parsed.stmts {
        let StmtKind::Include { path: inc } = &st.kind else {
            out.stmts.push(st);
            continue;
        };
        let at = |message: String| ParseError {
            file: st.loc.file.to_string(),
            line: st.loc.line,
            col: st.loc.col,
            message,
        };
        let target = base.join(inc);
        if stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(at(format!(
                "includes are nested more than {MAX_INCLUDE_DEPTH} deep"
            )));
        }
        let canon = target.canonicalize().unwrap_or_else(|_| target.clone());
        if stack.contains(&canon) {
            return Err(at(format!(
                "{} includes itself (directly or through other files)",
                target.display()
            )));
        }
        let text = std::fs::read_to_string(&target)
            .map_err(|e| at(format!("cannot include {}: {e}", target.display())))?;
        let sub = load_text(&text, &target, opts, stack)?;
        out.stmts.extend(sub.stmts);
        out.warnings.extend(sub.warnings);
    }
    stack.pop();
    Ok(out)
}

/// Check that every `${name}` is defined before it is used: by `external`
/// (command line, record file), `let` or `capture` on an earlier line.
/// Also checks that `secret` names something.
pub fn check_vars(script: &Script, external: &BTreeSet<String>) -> Result<(), ParseError> {
    let mut defined: BTreeSet<String> = external.clone();
    for st in &script.stmts {
        let mut used = Vec::new();
        match &st.kind {
            StmtKind::Command { apdu, expect } => {
                vars_in(apdu, &mut used);
                expect_vars(expect, &mut used);
            }
            StmtKind::Chunked { data, expect, .. } => {
                vars_in(data, &mut used);
                expect_vars(expect, &mut used);
            }
            StmtKind::Let { value, .. } => vars_in(value, &mut used),
            _ => {}
        }
        for (name, loc) in used {
            if !defined.contains(&name) {
                return Err(ParseError {
                    file: loc.file.to_string(),
                    line: loc.line,
                    col: loc.col,
                    message: format!("${{{name}}} is not defined: give it with --var {name}=…, in a --vars file, or with let/capture on an earlier line"),
                });
            }
        }
        match &st.kind {
            StmtKind::Let { name, .. } | StmtKind::Capture { name, .. } => {
                defined.insert(name.clone());
            }
            _ => {}
        }
    }
    Ok(())
}

fn expect_vars(e: &Option<ast::Expect>, used: &mut Vec<(String, Loc)>) {
    if let Some(items) = e.as_ref().and_then(|e| e.data.as_ref()) {
        for it in items {
            if let ast::PatItem::Expr(x) = it {
                vars_in(x, used);
            }
        }
    }
}

fn vars_in(e: &ast::Expr, used: &mut Vec<(String, Loc)>) {
    for t in &e.terms {
        match t {
            ast::Term::Var { name, loc } => used.push((name.clone(), loc.clone())),
            ast::Term::Tlv { tag, value } => {
                vars_in(tag, used);
                vars_in(value, used);
            }
            ast::Term::Len { of, .. } | ast::Term::Secret(of) | ast::Term::Personal(of) => {
                vars_in(of, used)
            }
            ast::Term::Apdu {
                header, data, le, ..
            } => {
                vars_in(header, used);
                vars_in(data, used);
                if let Some(l) = le {
                    vars_in(l, used);
                }
            }
            ast::Term::Hex(_) | ast::Term::Text(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
