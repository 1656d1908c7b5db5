//! Running scripts against a card (or rendering them, for `--dry-run`).
//!
//! The exchange starts raw, as scriptor sends APDUs: no automatic GET
//! RESPONSE on 61xx and no re-send on 6Cxx, because scriptor scripts send
//! their own GET RESPONSE and would otherwise get a different answer. A
//! script switches either on with `option get-response on` /
//! `option resend-6c on`.
//!
//! The statements between two `reset`/`option` lines run in one card
//! transaction. If another process resets the card in the middle, the run
//! stops with the transport error instead of replaying the statements
//! (a replay would spend PIN tries a second time).

use super::ast::*;
use super::eval::{self, Binding, Env, EvalError, Value};
use super::report::{self, CaptureNote, Case, CaseStatus, Failure, Report, Step, Suite, Wire};
use super::ParseError;
use crate::apdu::{Command, Data, Response, SHORT_MAX_NC};
use crate::hex;
use crate::secret::Secret;
use crate::tlv;
use crate::transport::{Channel, Exchange, ExchangeError, FromExchange, TraceEntry};
use std::collections::BTreeSet;
use std::io::Write;
use std::time::Instant;

/// How to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunConfig {
    pub keep_going: bool,
    pub dry_run: bool,
}

/// What to run against.
pub enum Target<'a> {
    Card(&'a mut Channel),
    DryRun,
}

/// The script error, printed and turned into exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("{0}")]
    Var(String),
}

/// `NAME=VALUE` with VALUE in script syntax. For a secret value the error
/// says where the value is wrong but never repeats any of it.
pub fn var_from_arg(kv: &str, secret: bool) -> Result<(String, Value), String> {
    let flag = if secret { "--secret-var" } else { "--var" };
    let Some((name, value)) = kv.split_once('=') else {
        let shown = if secret { "(value withheld)" } else { kv };
        return Err(format!(
            "{flag} {shown:?}: expected NAME=VALUE, e.g. aid=A000000003 or 'name=\"ALICE\"'"
        ));
    };
    let name = name.trim();
    let text = format!("let {name} = {value}");
    let script = super::parse_str(&text, flag).map_err(|e| {
        // Columns refer to the VALUE part.
        let col = e.col.saturating_sub(7 + name.chars().count()).max(1);
        if secret {
            format!("{flag} {name}: the value is not valid at column {col} (expected hex, \"text\", u\"text\" or tlv(…); details withheld because the value is secret)")
        } else {
            format!("{flag} {name}: column {col} of the value: {}", e.message)
        }
    })?;
    match script.stmts.as_slice() {
        [Stmt {
            kind: StmtKind::Let { name, value },
            ..
        }] => {
            let mut v = Env::new().eval(value).map_err(|e| match e {
                EvalError::At { message, .. } if !secret => format!("{flag} {name}: {message}"),
                _ => format!(
                    "{flag} {name}: the value cannot be computed (variables are not allowed here)"
                ),
            })?;
            if secret {
                v.mark_sensitive();
            }
            Ok((name.clone(), v))
        }
        _ => Err(format!("{flag} {name}: expected NAME=VALUE")),
    }
}

/// A record file: a JSON object of name → value.
pub fn vars_from_json(text: &str) -> Result<Vec<(String, Value)>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "line {}, column {}: {}",
            e.line(),
            e.column(),
            crate::errors::json_message(&e)
        )
    })?;
    let serde_json::Value::Object(map) = v else {
        return Err("expected a JSON object of variables, e.g. {\"aid\": \"A000000003\", \"name\": {\"text\": \"ALICE\"}}".into());
    };
    let mut out = Vec::new();
    for (name, val) in map {
        let bad = |m: &str| format!("variable {name:?}: {m}");
        let mut personal = false;
        let (bytes, secret) = match &val {
            serde_json::Value::String(s) => (hex_or_empty(s, false).map_err(|e| bad(&e))?, false),
            serde_json::Value::Object(o) => {
                let secret = match o.get("secret") {
                    None => false,
                    Some(serde_json::Value::Bool(b)) => *b,
                    Some(_) => return Err(bad("\"secret\" must be true or false")),
                };
                personal = match o.get("personal") {
                    None => false,
                    Some(serde_json::Value::Bool(b)) => *b,
                    Some(_) => return Err(bad("\"personal\" must be true or false")),
                };
                let forms: Vec<&str> = ["hex", "text", "utf8"]
                    .into_iter()
                    .filter(|k| o.contains_key(*k))
                    .collect();
                let [form] = forms.as_slice() else {
                    return Err(bad(
                        "give exactly one of \"hex\", \"text\" (ASCII) or \"utf8\"",
                    ));
                };
                if let Some(k) = o
                    .keys()
                    .find(|k| !["hex", "text", "utf8", "secret", "personal"].contains(&k.as_str()))
                {
                    return Err(bad(&format!(
                        "unknown key {k:?}; expected hex, text, utf8, secret, personal"
                    )));
                }
                let Some(serde_json::Value::String(s)) = o.get(*form) else {
                    return Err(bad(&format!("\"{form}\" must be a string")));
                };
                let bytes = match *form {
                    "hex" => hex_or_empty(s, secret).map_err(|e| bad(&e))?,
                    "text" => {
                        if let Some(c) = s.chars().find(|c| !c.is_ascii()) {
                            let c = if secret {
                                "a character".to_string()
                            } else {
                                format!("{c:?}")
                            };
                            return Err(bad(&format!(
                                "{c} is not ASCII; use \"utf8\" for UTF-8 text"
                            )));
                        }
                        s.as_bytes().to_vec()
                    }
                    _ => s.as_bytes().to_vec(),
                };
                (bytes, secret)
            }
            _ => {
                return Err(bad(
                    "expected a hex string or an object such as {\"text\": \"ALICE\"}",
                ))
            }
        };
        if super::lexer::is_word_char(name.chars().next().unwrap_or(' '))
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            out.push((
                name.clone(),
                if secret {
                    Value::secret(bytes)
                } else if personal {
                    let mut v = Value::plain(bytes);
                    v.mark_personal();
                    v
                } else {
                    Value::plain(bytes)
                },
            ));
        } else {
            return Err(bad("names are letters, digits, _ and -"));
        }
    }
    Ok(out)
}

fn hex_or_empty(s: &str, secret: bool) -> Result<Vec<u8>, String> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    hex::parse(s).map_err(|e| {
        if secret {
            "the value is not valid hex (details withheld because it is secret)".to_string()
        } else {
            e.to_string()
        }
    })
}

/// Sensitive byte strings seen so far; response bytes that repeat one of
/// them (3 bytes or longer) are shown as `**`.
#[derive(Default)]
struct Redactor {
    needles: Vec<Secret>,
}

impl Redactor {
    const MIN: usize = 3;

    /// Learn the sensitive runs of `v`, and its personal ones unless the
    /// session asked for personal data (`--trace-personal-data`): a card
    /// echoing them back shows `**` in their place.
    fn learn(&mut self, v: &Value) {
        let bytes = v.expose();
        let hide_personal = !crate::apdu::personal_data_shown();
        let mut run_start = None;
        for i in 0..=bytes.len() {
            let s = i < bytes.len()
                && (v.sensitive_in(i..i + 1) || (hide_personal && v.personal_in(i..i + 1)));
            match (s, run_start) {
                (true, None) => run_start = Some(i),
                (false, Some(st)) => {
                    if i - st >= Self::MIN {
                        let n = bytes.get(st..i).unwrap_or(&[]);
                        if !self.needles.iter().any(|x| x.expose() == n) {
                            self.needles.push(Secret::new(n.to_vec()));
                        }
                    }
                    run_start = None;
                }
                _ => {}
            }
        }
    }

    /// Spaced hex with sensitive repeats as `**`; and whether anything was hidden.
    fn show(&self, data: &[u8]) -> (String, bool) {
        let mut hide = vec![false; data.len()];
        for n in &self.needles {
            let n = n.expose();
            if n.is_empty() || n.len() > data.len() {
                continue;
            }
            for i in 0..=data.len() - n.len() {
                if data.get(i..i + n.len()) == Some(n) {
                    for h in hide.iter_mut().skip(i).take(n.len()) {
                        *h = true;
                    }
                }
            }
        }
        let hidden = hide.iter().any(|h| *h);
        let s = data
            .iter()
            .zip(&hide)
            .map(|(b, h)| if *h { "**".into() } else { format!("{b:02X}") })
            .collect::<Vec<_>>()
            .join(" ");
        (s, hidden)
    }
}

/// The exchange error of a script segment; never replayed after a reset.
struct SegErr(ExchangeError);

impl From<ExchangeError> for SegErr {
    fn from(e: ExchangeError) -> Self {
        SegErr(e)
    }
}

impl FromExchange for SegErr {
    fn card_reset(&self) -> bool {
        false
    }
}

struct Exec<'w> {
    cfg: RunConfig,
    env: Env,
    redactor: Redactor,
    report: Report,
    /// The case being filled.
    case: Option<Case>,
    case_start: Instant,
    /// The last command step, kept open for the captures below it.
    pending: Option<Step>,
    last_resp: Option<(Vec<u8>, [u8; 2])>,
    secret_names: BTreeSet<String>,
    stop: bool,
    /// The script being run (for its top-level case).
    file: String,
    /// Index, within the segment being run, of the statement under way.
    at: Option<usize>,
    out: &'w mut dyn Write,
}

/// Whether a statement needs the card: these alone are run inside a card
/// transaction, and commands before a script's first `test` make its
/// top-level case.
fn touches_card(st: &Stmt) -> bool {
    matches!(
        st.kind,
        StmtKind::Command { .. } | StmtKind::Chunked { .. } | StmtKind::Reset
    )
}

/// Whether the statements before a script's first `test` send anything:
/// only then is "FILE (top level)" a test case of its own.
fn has_top_level_case(stmts: &[Stmt]) -> bool {
    stmts
        .iter()
        .take_while(|s| !matches!(s.kind, StmtKind::Test { .. }))
        .any(touches_card)
}

impl Exec<'_> {
    /// The scripts' warnings go into the report; `secret NAME` applies to
    /// the whole run, wherever it is written, and the values of secret
    /// variables are redacted from the start.
    fn learn_secrets(&mut self, scripts: &[(String, Script)]) {
        for (_, s) in scripts {
            self.report.warnings.extend(s.warnings.iter().cloned());
            for st in &s.stmts {
                if let StmtKind::SecretDecl { names } = &st.kind {
                    for n in names {
                        self.secret_names.insert(n.clone());
                        self.env.declare_secret(n);
                    }
                }
            }
        }
        let names: Vec<String> = self.env.names().cloned().collect();
        for n in names {
            if let Some(Binding::Known(v)) = self.env.get(&n) {
                let v = v.clone();
                self.redactor.learn(&v);
            }
        }
    }

    /// `reset`: the card is reset and reconnected; on failure the rest of
    /// the script (`rest`, from the reset on) is reported as interrupted.
    fn card_reset(
        &mut self,
        ch: &mut Channel,
        st: &Stmt,
        rest: &[Stmt],
    ) -> Result<(), ExchangeError> {
        self.flush();
        let t0 = Instant::now();
        let reconnected = ch.reconnect(true);
        let micros = t0.elapsed().as_micros() as u64;
        if let Err(e) = reconnected {
            let e = ExchangeError::Transport(e);
            self.push_step(Step {
                file: st.loc.file.to_string(),
                line: st.loc.line,
                kind: "reset".into(),
                ok: false,
                message: Some(e.to_string()),
                micros,
                ..Step::default()
            });
            self.interrupt(rest, true, &e);
            return Err(e);
        }
        let atr = hex::spaced(&ch.atr());
        self.push_step(Step {
            file: st.loc.file.to_string(),
            line: st.loc.line,
            kind: "reset".into(),
            data: Some(atr),
            ok: true,
            micros,
            ..Step::default()
        });
        Ok(())
    }
}

/// Run (or, with [`Target::DryRun`], render) scripts. `scripts` are
/// (file name, script) pairs; `env` holds the external variables. The
/// trace is written to `trace` as it happens. Returns the report, and the
/// transport error that ended the run early, if any.
pub fn execute(
    scripts: &[(String, Script)],
    env: Env,
    mut target: Target<'_>,
    cfg: RunConfig,
    trace: &mut dyn Write,
) -> (Report, Option<ExchangeError>) {
    let mut ex = Exec::new(cfg, env, matches!(target, Target::DryRun), trace);
    ex.learn_secrets(scripts);
    if let Target::Card(ch) = &target {
        ex.note_card(ch);
    }
    let mut error = None;
    for (file, script) in scripts {
        if let Some(e) = ex.run_script(file, &script.stmts, &mut target) {
            error = Some(e);
        }
    }
    ex.flush();
    ex.close_case();
    ex.report.error = error.as_ref().map(|e| e.to_string());
    ex.report.finish();
    (ex.report, error)
}

/// Where the run of statements that starts at `i` ends: at the next
/// `reset` or option switch (which run outside a card transaction), or at
/// the end of the script.
fn segment_end(stmts: &[Stmt], i: usize) -> usize {
    stmts
        .iter()
        .skip(i)
        .position(|s| matches!(s.kind, StmtKind::Reset | StmtKind::SetOption { .. }))
        .map(|k| i + k)
        .unwrap_or(stmts.len())
}

/// Turn one of the exchange's automatic behaviours on or off.
fn set_option(ch: &mut Channel, name: OptionName, on: bool) {
    match name {
        OptionName::GetResponse => ch.opts.auto_get_response = on,
        OptionName::Resend6C => ch.opts.auto_resend_on_6c = on,
    }
}

impl<'w> Exec<'w> {
    /// A run with an empty report, writing its trace to `out`.
    fn new(cfg: RunConfig, env: Env, dry_run: bool, out: &'w mut dyn Write) -> Self {
        Exec {
            cfg,
            env,
            redactor: Redactor::default(),
            report: Report {
                format: report::FORMAT,
                version: 1,
                dry_run,
                ..Report::default()
            },
            case: None,
            case_start: Instant::now(),
            pending: None,
            last_resp: None,
            secret_names: BTreeSet::new(),
            stop: false,
            file: String::new(),
            at: None,
            out,
        }
    }
}

impl Exec<'_> {
    /// The card the run talks to: reader, protocol and ATR, in the report
    /// and at the head of the trace.
    fn note_card(&mut self, ch: &Channel) {
        self.report.reader = Some(ch.reader());
        self.report.protocol = Some(ch.protocol().to_string());
        self.report.atr = Some(hex::spaced(&ch.atr()));
        let _ = writeln!(
            self.out,
            "reader: {} ({})\nATR: {}",
            ch.reader(),
            ch.protocol(),
            hex::spaced(&ch.atr())
        );
    }

    /// One script file: its suite, its top-level case, and its statements
    /// until the end or a stop (a run already stopped skips them all).
    /// Returns the transport error that ended it early, if any.
    fn run_script(
        &mut self,
        file: &str,
        stmts: &[Stmt],
        target: &mut Target<'_>,
    ) -> Option<ExchangeError> {
        self.report.suites.push(Suite {
            file: file.to_string(),
            cases: Vec::new(),
        });
        let _ = writeln!(self.out, "== {file}");
        self.file = file.to_string();
        if has_top_level_case(stmts) {
            self.open_case(file, 1, true);
        }
        if self.stop {
            self.skip_rest(stmts);
            self.close_case();
            return None;
        }
        let mut error = None;
        let mut i = 0;
        while i < stmts.len() && !self.stop {
            let Some(st) = stmts.get(i) else { break };
            match (&st.kind, &mut *target) {
                (StmtKind::Reset, Target::Card(ch)) => {
                    if let Err(e) = self.card_reset(ch, st, stmts.get(i..).unwrap_or(&[])) {
                        error = Some(e);
                        break;
                    }
                    i += 1;
                }
                (StmtKind::Reset, Target::DryRun) => {
                    self.dry_run_reset(st);
                    i += 1;
                }
                (StmtKind::SetOption { name, on }, t) => {
                    if let Target::Card(ch) = t {
                        set_option(ch, *name, *on);
                    }
                    i += 1;
                }
                (_, t) => {
                    let end = segment_end(stmts, i);
                    if let Err(e) = self.run_segment(t, stmts, i, end) {
                        error = Some(e);
                        break;
                    }
                    i = end;
                }
            }
        }
        self.flush();
        self.close_case();
        error
    }

    /// `reset` in a dry run: a step that says so.
    fn dry_run_reset(&mut self, st: &Stmt) {
        self.flush();
        self.push_step(Step {
            file: st.loc.file.to_string(),
            line: st.loc.line,
            kind: "reset".into(),
            data: Some("(dry run)".into()),
            ok: true,
            ..Step::default()
        });
    }

    /// Statements `i..end` of `stmts`, with no reset or option switch among
    /// them: in one card transaction if any of them touches the card. On a
    /// transport failure the rest of the script is reported as interrupted
    /// and the error returned; when the run stops, the rest is skipped.
    fn run_segment(
        &mut self,
        t: &mut Target<'_>,
        stmts: &[Stmt],
        i: usize,
        end: usize,
    ) -> Result<(), ExchangeError> {
        let seg = stmts.get(i..end).unwrap_or(&[]);
        let mut done = 0;
        match t {
            // Statements that do not need the card (variables,
            // test names, exit) need no transaction either.
            Target::Card(_) if !seg.iter().any(touches_card) => done = self.run_stmts(None, seg),
            Target::DryRun => done = self.run_stmts(None, seg),
            Target::Card(ch) => {
                self.at = None;
                let r = ch.run(|x| -> Result<(), SegErr> {
                    done = self.run_stmts_live(x, seg)?;
                    Ok(())
                });
                if let Err(SegErr(e)) = r {
                    // Either a statement met the failure, or the
                    // transaction could not begin (nothing ran).
                    let (from, failing) = match self.at {
                        Some(k) => (i + k, true),
                        None => (i, false),
                    };
                    self.interrupt(stmts.get(from..).unwrap_or(&[]), failing, &e);
                    return Err(e);
                }
            }
        }
        if self.stop {
            self.skip_rest(stmts.get(i + done..).unwrap_or(&[]));
        }
        Ok(())
    }
}

impl Exec<'_> {
    fn open_case(&mut self, file: &str, line: usize, top: bool) {
        self.flush();
        self.close_case();
        let name = if top {
            format!("{file} (top level)")
        } else {
            String::new()
        };
        self.case = Some(Case::new(
            name,
            top,
            file.to_string(),
            line,
            if self.stop {
                CaseStatus::Skipped
            } else {
                CaseStatus::Passed
            },
        ));
        self.case_start = Instant::now();
    }

    /// Start the case of a `test` line.
    fn open_test(&mut self, st: &Stmt, name: &str) {
        self.open_case(&st.loc.file, st.loc.line, false);
        if let Some(c) = self.case.as_mut() {
            c.name = name.to_string();
        }
    }

    /// The case to record into: the open one, or else the script's
    /// top-level case (for a top level that only binds variables, it is
    /// opened when one of them fails).
    fn ensure_case(&mut self) {
        if self.case.is_none() {
            let file = self.file.clone();
            self.case = Some(Case::new(
                format!("{file} (top level)"),
                true,
                file,
                1,
                CaseStatus::Passed,
            ));
            self.case_start = Instant::now();
        }
    }

    fn close_case(&mut self) {
        if let Some(mut c) = self.case.take() {
            if c.status != CaseStatus::Skipped {
                c.micros = self.case_start.elapsed().as_micros() as u64;
            }
            if let Some(s) = self.report.suites.last_mut() {
                s.cases.push(c);
            }
        }
    }

    /// Mark named tests among `rest` as skipped (the run stopped before
    /// they started). The open case is closed as it is.
    fn skip_rest(&mut self, rest: &[Stmt]) {
        self.flush();
        for st in rest {
            if let StmtKind::Test { name } = &st.kind {
                self.close_case();
                self.case = Some(Case::new(
                    name.clone(),
                    false,
                    st.loc.file.to_string(),
                    st.loc.line,
                    CaseStatus::Skipped,
                ));
            }
        }
    }

    /// The transport failed. `rest` are the script's statements that did
    /// not finish, from the one that met the failure (`failing`), or from
    /// the first of a transaction that could not begin. The case holding
    /// the first of them that needs the card is where the run was: it is
    /// an error with the failure as its message. Cases before it that have
    /// nothing for the card and cases after it never started: skipped.
    fn interrupt(&mut self, rest: &[Stmt], failing: bool, e: &ExchangeError) {
        self.flush();
        let k = if failing {
            0
        } else {
            rest.iter().position(touches_card).unwrap_or(0)
        };
        let upto = rest.get(..=k).unwrap_or(rest);
        match upto
            .iter()
            .rposition(|s| matches!(s.kind, StmtKind::Test { .. }))
        {
            Some(t) => {
                self.skip_rest(upto.get(..t).unwrap_or(&[]));
                if let Some(
                    st @ Stmt {
                        kind: StmtKind::Test { name },
                        ..
                    },
                ) = upto.get(t)
                {
                    self.open_test(st, name);
                }
            }
            None => self.ensure_case(),
        }
        if let Some(c) = self.case.as_mut() {
            c.status = CaseStatus::Error;
            c.error = Some(e.to_string());
            c.error_type = Some(
                match e {
                    ExchangeError::Transport(_) => "transport",
                    _ => "exchange",
                }
                .into(),
            );
        }
        if !failing {
            // No step shows it: the transaction could not begin.
            let _ = writeln!(self.out, "! {e}");
        }
        self.stop = true;
        self.skip_rest(rest.get(k + 1..).unwrap_or(&[]));
    }

    fn flush(&mut self) {
        if let Some(s) = self.pending.take() {
            let _ = write!(self.out, "{}", report::step_text(&s));
            self.ensure_case();
            if let Some(c) = self.case.as_mut() {
                c.steps.push(s);
            }
        }
    }

    fn push_step(&mut self, s: Step) {
        self.flush();
        self.pending = Some(s);
        self.flush();
    }

    fn fail(&mut self, f: Failure) {
        self.ensure_case();
        if let Some(c) = self.case.as_mut() {
            c.status = CaseStatus::Failed;
            c.failures.push(f);
        }
        if !self.cfg.keep_going {
            self.stop = true;
        }
    }

    fn run_stmts_live(
        &mut self,
        x: &mut Exchange<'_>,
        seg: &[Stmt],
    ) -> Result<usize, ExchangeError> {
        self.run_inner(Some(x), seg)
    }

    fn run_stmts(&mut self, x: Option<&mut Exchange<'_>>, seg: &[Stmt]) -> usize {
        // Without an exchange nothing can fail at the transport level.
        self.run_inner(x, seg).unwrap_or(seg.len())
    }

    /// Run statements; returns how many ran.
    fn run_inner(
        &mut self,
        mut x: Option<&mut Exchange<'_>>,
        seg: &[Stmt],
    ) -> Result<usize, ExchangeError> {
        for (k, st) in seg.iter().enumerate() {
            if self.stop {
                return Ok(k);
            }
            self.at = Some(k);
            match &st.kind {
                StmtKind::Test { name } => {
                    self.open_test(st, name);
                    let _ = writeln!(self.out, "-- test \"{name}\"  [{}]", st.loc);
                }
                StmtKind::Let { name, value } => {
                    self.flush();
                    match self.env.eval(value) {
                        Ok(v) => self.bind(name, v),
                        Err(EvalError::Pending { .. }) => {
                            self.env.set_binding(name, Binding::Pending)
                        }
                        Err(e) => {
                            self.env.set_binding(name, Binding::Failed(st.loc.clone()));
                            self.eval_failure(st, &e, "let");
                        }
                    }
                }
                StmtKind::SecretDecl { .. } | StmtKind::Include { .. } => {}
                StmtKind::Exit => {
                    self.flush();
                    self.report.summary.exited = true;
                    let _ = writeln!(self.out, "> EXIT  [{}]", st.loc);
                    self.stop = true;
                    return Ok(k + 1);
                }
                StmtKind::Reset | StmtKind::SetOption { .. } => {}
                StmtKind::Capture { name, source } => self.capture(st, name, source),
                StmtKind::Command { apdu, expect } => {
                    self.flush();
                    self.last_resp = None;
                    self.command(x.as_deref_mut(), st, apdu, expect.as_ref())?;
                }
                StmtKind::Chunked {
                    kind,
                    max,
                    data,
                    expect,
                } => {
                    self.flush();
                    self.last_resp = None;
                    self.chunked(x.as_deref_mut(), st, kind, *max, data, expect.as_ref())?;
                }
            }
        }
        Ok(seg.len())
    }

    fn bind(&mut self, name: &str, mut v: Value) {
        if self.secret_names.contains(name) {
            v.mark_sensitive();
        }
        self.redactor.learn(&v);
        self.env.set(name, v);
    }

    fn eval_failure(&mut self, st: &Stmt, e: &EvalError, kind: &str) {
        let (loc, message) = match e {
            EvalError::At { loc, message } => (loc.clone(), message.clone()),
            EvalError::Pending { .. } => (st.loc.clone(), e.to_string()),
        };
        self.push_step(Step {
            file: st.loc.file.to_string(),
            line: st.loc.line,
            kind: kind.into(),
            ok: false,
            message: Some(message.clone()),
            ..Step::default()
        });
        self.fail(Failure {
            file: loc.file.to_string(),
            line: loc.line,
            col: loc.col,
            command: None,
            expected: None,
            got: None,
            message,
        });
    }

    /// The APDU as shown: sensitive data field as REDACTED, personal data
    /// as PERSONAL(n bytes) unless the session asked for personal data.
    fn show_apdu(v: &Value) -> Result<(String, bool), String> {
        let bytes = v.expose();
        if !v.is_sensitive() && v.is_personal() {
            return match Command::parse(bytes) {
                Ok(c) => {
                    let nc = c.data().len();
                    let data_start = if nc == 0 {
                        bytes.len()
                    } else if c.needs_extended() {
                        7
                    } else {
                        5
                    };
                    let data_range = data_start..data_start + nc;
                    let outside = (0..bytes.len())
                        .filter(|i| !data_range.contains(i))
                        .any(|i| v.personal_in(i..i + 1));
                    if outside {
                        return Err("a personal value is in the APDU header or length fields; only the data field can be marked personal".into());
                    }
                    Ok((c.personal().traced(), false))
                }
                Err(_) => Ok((crate::apdu::traced_personal(bytes), false)),
            };
        }
        if !v.is_sensitive() {
            return Ok((hex::spaced(bytes), false));
        }
        match Command::parse(bytes) {
            Ok(mut c) => {
                let nc = c.data().len();
                let data_start = if nc == 0 {
                    bytes.len()
                } else if c.needs_extended() {
                    7
                } else {
                    5
                };
                let data_range = data_start..data_start + nc;
                let outside = (0..bytes.len())
                    .filter(|i| !data_range.contains(i))
                    .any(|i| v.sensitive_in(i..i + 1));
                if outside {
                    return Err("a sensitive value is in the APDU header or length fields; only the data field can be kept secret".into());
                }
                c.data = Data::Sensitive(Secret::new(c.data().to_vec()));
                Ok((c.redacted(), true))
            }
            Err(_) => Ok((format!("REDACTED({} bytes)", bytes.len()), true)),
        }
    }

    /// Evaluate an expression for a statement. A variable that is only
    /// captured at run time (a dry run) becomes a "dry-run" step naming it;
    /// any other failure is recorded against the statement. None in both cases.
    fn eval_or_note(
        &mut self,
        st: &Stmt,
        expr: &Expr,
        label: &str,
        expect: Option<&Expect>,
        what: &str,
    ) -> Option<Value> {
        match self.env.eval(expr) {
            Ok(v) => Some(v),
            Err(EvalError::Pending { name }) => {
                self.push_step(Step {
                    file: st.loc.file.to_string(),
                    line: st.loc.line,
                    kind: "dry-run".into(),
                    command: Some(format!(
                        "{label}{}  (needs ${{{name}}}, captured at run time)",
                        eval::describe_expr(expr)
                    )),
                    expected: expect.map(eval::describe_expect),
                    ok: true,
                    ..Step::default()
                });
                None
            }
            Err(e) => {
                self.eval_failure(st, &e, what);
                None
            }
        }
    }

    fn command(
        &mut self,
        x: Option<&mut Exchange<'_>>,
        st: &Stmt,
        apdu: &Expr,
        expect: Option<&Expect>,
    ) -> Result<(), ExchangeError> {
        let Some(v) = self.eval_or_note(st, apdu, "", expect, "command") else {
            return Ok(());
        };
        self.redactor.learn(&v);
        let (shown, sensitive) = match Self::show_apdu(&v) {
            Ok(x) => x,
            Err(m) => {
                self.eval_failure(
                    st,
                    &EvalError::At {
                        loc: st.loc.clone(),
                        message: m,
                    },
                    "command",
                );
                return Ok(());
            }
        };
        let Some(x) = x else {
            self.push_step(Step {
                file: st.loc.file.to_string(),
                line: st.loc.line,
                kind: "command".into(),
                command: Some(shown),
                expected: expect.map(eval::describe_expect),
                ok: true,
                ..Step::default()
            });
            return Ok(());
        };
        let t0 = Instant::now();
        let sent = if !sensitive && v.is_personal() {
            x.transmit_bytes_personal(v.expose())
        } else {
            x.transmit_bytes(v.expose(), sensitive)
        };
        let micros = t0.elapsed().as_micros() as u64;
        let wire = x.take_trace();
        match sent {
            Ok(resp) => {
                self.finish_step(st, "command", shown, &resp, micros, wire, expect);
                Ok(())
            }
            Err(e) => {
                self.transport_step(st, "command", shown, micros, wire, expect, &e);
                Err(e)
            }
        }
    }

    /// The APDUs on the wire, response data redacted.
    fn wire(&self, wire: Vec<TraceEntry>) -> Vec<Wire> {
        wire.iter()
            .map(|w| Wire {
                command: w.command.clone(),
                data: match hex::parse(&w.response) {
                    Ok(b) => self.redactor.show(&b).0,
                    Err(_) => String::new(),
                },
                sw: hex::compact(&w.sw.bytes()),
                micros: w.elapsed.as_micros() as u64,
            })
            .collect()
    }

    /// The step of a command that met a transport failure: no response, the
    /// failure as its message. (The case becomes an error in `interrupt`.)
    #[allow(clippy::too_many_arguments)]
    fn transport_step(
        &mut self,
        st: &Stmt,
        kind: &str,
        shown: String,
        micros: u64,
        wire: Vec<TraceEntry>,
        expect: Option<&Expect>,
        e: &ExchangeError,
    ) {
        let wire = self.wire(wire);
        self.push_step(Step {
            file: st.loc.file.to_string(),
            line: st.loc.line,
            kind: kind.into(),
            command: Some(shown),
            expected: expect.map(eval::describe_expect),
            ok: false,
            message: Some(e.to_string()),
            micros,
            wire,
            ..Step::default()
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_step(
        &mut self,
        st: &Stmt,
        kind: &str,
        shown: String,
        resp: &Response,
        micros: u64,
        wire: Vec<TraceEntry>,
        expect: Option<&Expect>,
    ) {
        let sw = resp.sw.bytes();
        let (data_hex, hidden) = self.redactor.show(&resp.data);
        let nodes = tlv::decode(&resp.data);
        let tlv_text = (!resp.data.is_empty() && !hidden && tlv::is_clean(&nodes))
            .then(|| tlv::render(&nodes));
        let wire = self.wire(wire);
        let check = expect.map(|e| self.check(e, resp));
        let ok = !matches!(check, Some(Err(_)));
        let message = match &check {
            Some(Err(m)) => Some(m.clone()),
            _ => None,
        };
        let got = format!(
            "{}{}{}",
            data_hex,
            if data_hex.is_empty() { "" } else { " " },
            resp.sw
        );
        let step = Step {
            file: st.loc.file.to_string(),
            line: st.loc.line,
            kind: kind.into(),
            command: Some(shown.clone()),
            data: Some(data_hex),
            sw: Some(hex::compact(&sw)),
            meaning: Some(resp.sw.meaning()),
            expected: expect.map(eval::describe_expect),
            ok,
            message: message.clone(),
            tlv: tlv_text,
            // The card's time: the sum of the wire APDUs, when there were any.
            micros: if wire.is_empty() {
                micros
            } else {
                wire.iter().map(|w| w.micros).sum()
            },
            wire,
            captures: Vec::new(),
        };
        self.flush();
        self.pending = Some(step);
        self.last_resp = Some((resp.data.clone(), sw));
        if let Some(m) = message {
            self.fail(Failure {
                file: st.loc.file.to_string(),
                line: st.loc.line,
                col: st.loc.col,
                command: Some(shown),
                expected: expect.map(eval::describe_expect),
                got: Some(got),
                message: m,
            });
        }
    }

    fn check(&self, e: &Expect, resp: &Response) -> Result<(), String> {
        let sw = resp.sw.to_u16();
        if !e.sw.iter().any(|p| p.matches(sw)) {
            return Err(format!(
                "expected status {}, got {}",
                e.sw.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
                resp.sw
            ));
        }
        if let Some(items) = &e.data {
            let pat = self.env.resolve_pattern(items).map_err(|e| e.to_string())?;
            if !eval::matches(&pat, &resp.data) {
                let want = eval::describe_expect(&Expect {
                    sw: vec![],
                    data: Some(items.clone()),
                });
                return Err(format!(
                    "response data does not match {}: got [{}]",
                    want.trim(),
                    self.redactor.show(&resp.data).0
                ));
            }
        }
        Ok(())
    }

    fn capture(&mut self, st: &Stmt, name: &str, source: &CaptureSource) {
        if self.cfg.dry_run {
            self.env.set_binding(name, Binding::Pending);
            return;
        }
        let result = match &self.last_resp {
            Some((data, sw)) => eval::capture(source, data, *sw),
            None => Err("the command above was not sent".into()),
        };
        let secret = self.secret_names.contains(name);
        let note = match result {
            Ok(bytes) => {
                // Bytes that repeat a known secret keep being secret.
                let secret = secret || self.redactor.show(&bytes).1;
                let v = if secret {
                    Value::secret(bytes)
                } else {
                    Value::plain(bytes)
                };
                let shown = if secret {
                    format!("REDACTED({} bytes)", v.len())
                } else {
                    hex::spaced(v.expose())
                };
                self.bind(name, v);
                // A secret captured from this response must not stay visible in it.
                if secret {
                    if let (Some(p), Some((data, _))) = (self.pending.as_mut(), &self.last_resp) {
                        let (h, hidden) = self.redactor.show(data);
                        p.data = Some(h);
                        if hidden {
                            p.tlv = None;
                            for w in p.wire.iter_mut() {
                                if let Ok(b) = hex::parse(&w.data) {
                                    w.data = self.redactor.show(&b).0;
                                }
                            }
                        }
                    }
                }
                CaptureNote {
                    name: name.to_string(),
                    line: st.loc.line,
                    value: shown,
                    ok: true,
                }
            }
            Err(m) => {
                self.env.set_binding(name, Binding::Failed(st.loc.clone()));
                let message = format!("capture ${{{name}}}: {m}");
                self.fail(Failure {
                    file: st.loc.file.to_string(),
                    line: st.loc.line,
                    col: st.loc.col,
                    command: self.pending.as_ref().and_then(|p| p.command.clone()),
                    expected: None,
                    got: self
                        .pending
                        .as_ref()
                        .and_then(|p| p.data.clone())
                        .filter(|d| !d.is_empty()),
                    message: message.clone(),
                });
                if let Some(p) = self.pending.as_mut() {
                    p.ok = false;
                    p.message.get_or_insert(message);
                }
                CaptureNote {
                    name: name.to_string(),
                    line: st.loc.line,
                    value: m,
                    ok: false,
                }
            }
        };
        if let Some(p) = self.pending.as_mut() {
            p.captures.push(note);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn chunked(
        &mut self,
        x: Option<&mut Exchange<'_>>,
        st: &Stmt,
        kind: &ChunkKind,
        max: Option<usize>,
        data: &Expr,
        expect: Option<&Expect>,
    ) -> Result<(), ExchangeError> {
        let Some(v) = self.eval_or_note(st, data, "chunked write of ", None, "chunk") else {
            return Ok(());
        };
        self.redactor.learn(&v);
        let card_max = match &x {
            Some(x) => x.max_data_per_apdu(),
            None => SHORT_MAX_NC,
        };
        let size = max.unwrap_or(usize::MAX).min(card_max).max(1);
        let default_expect = Expect {
            sw: vec![SwPattern {
                value: 0x9000,
                mask: 0xFFFF,
            }],
            data: None,
        };
        let expect = expect.unwrap_or(&default_expect);
        // Build every command first: limits are checked before anything is sent.
        let mut cmds = Vec::new();
        let n = v.len().div_ceil(size).max(1);
        let mut start = 0;
        let mut k = 0;
        while k == 0 || start < v.len() {
            // Above offset 32767, UPDATE BINARY takes odd INS D7 with the
            // offset in DO 54 and the data in DO 53: up to 9 header bytes
            // that must fit in the same data field.
            let odd =
                matches!(kind, ChunkKind::UpdateBinary { offset, .. } if offset + start > 0x7FFF);
            let step = if odd {
                size.saturating_sub(9).max(1)
            } else {
                size
            };
            let piece = v.slice(start, start + step);
            let mut c = match kind {
                ChunkKind::UpdateBinary { offset, sfi } => {
                    let at = offset + start;
                    if at > 0xFF_FFFF {
                        self.eval_failure(st, &EvalError::At { loc: st.loc.clone(), message: format!("update-binary: offset {at} is beyond 16 MiB, the reach of an offset data object") }, "chunk");
                        return Ok(());
                    }
                    match (sfi, k, odd) {
                        (_, _, true) => {
                            let body =
                                crate::apdu::cmd::update_binary_odd(at as u32, piece.expose())
                                    .data()
                                    .to_vec();
                            let mut c = Command::new(0x00, 0xD7, 0x00, 0x00);
                            c.data = if piece.is_sensitive() {
                                Data::Sensitive(Secret::new(body))
                            } else if piece.is_personal() {
                                Data::Personal(body)
                            } else {
                                Data::Plain(body)
                            };
                            cmds.push(c);
                            start += step;
                            k += 1;
                            continue;
                        }
                        (Some(s), 0, false) => Command::new(0x00, 0xD6, 0x80 | s, at as u8),
                        _ => Command::new(0x00, 0xD6, (at >> 8) as u8 & 0x7F, at as u8),
                    }
                }
                ChunkKind::StoreData { cla, p1 } => {
                    if n > 256 {
                        self.eval_failure(st, &EvalError::At { loc: st.loc.clone(), message: format!("store-data: {} bytes need {n} blocks of {size}, but STORE DATA numbers at most 256 blocks", v.len()) }, "chunk");
                        return Ok(());
                    }
                    let last = k + 1 == n;
                    Command::new(*cla, 0xE2, p1 | if last { 0x80 } else { 0 }, k as u8)
                }
            };
            c.data = if piece.is_sensitive() {
                Data::Sensitive(Secret::new(piece.expose().to_vec()))
            } else if piece.is_personal() {
                Data::Personal(piece.expose().to_vec())
            } else {
                Data::Plain(piece.expose().to_vec())
            };
            cmds.push(c);
            start += step;
            k += 1;
        }
        let Some(x) = x else {
            for c in &cmds {
                self.push_step(Step {
                    file: st.loc.file.to_string(),
                    line: st.loc.line,
                    kind: "chunk".into(),
                    command: Some(c.traced()),
                    expected: Some(eval::describe_expect(expect)),
                    ok: true,
                    ..Step::default()
                });
            }
            return Ok(());
        };
        for c in &cmds {
            let t0 = Instant::now();
            let sent = x.transmit(c);
            let micros = t0.elapsed().as_micros() as u64;
            let wire = x.take_trace();
            let resp = match sent {
                Ok(resp) => resp,
                Err(e) => {
                    self.transport_step(st, "chunk", c.traced(), micros, wire, Some(expect), &e);
                    return Err(e);
                }
            };
            let failed_before = self.case.as_ref().map(|c| c.failures.len()).unwrap_or(0);
            self.finish_step(st, "chunk", c.traced(), &resp, micros, wire, Some(expect));
            let failed_after = self.case.as_ref().map(|c| c.failures.len()).unwrap_or(0);
            if failed_after > failed_before {
                break;
            }
        }
        Ok(())
    }
}
