//! What a run produced: per script (suite), per test case, per step; as
//! text (the trace), JSON and JUnit XML. Every string in here was redacted
//! before it was stored: commands by `Command::redacted`,
//! response bytes by the runner's redactor.

use super::ast::Warning;
use serde::Serialize;
use std::fmt::Write as _;

pub const FORMAT: &str = "cardsmith-script-report";

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub format: &'static str,
    pub version: u32,
    pub reader: Option<String>,
    pub protocol: Option<String>,
    pub atr: Option<String>,
    pub dry_run: bool,
    pub suites: Vec<Suite>,
    pub warnings: Vec<Warning>,
    /// The transport failure that ended the run (card removed or reset,
    /// mute card, PC/SC service gone), if one did.
    pub error: Option<String>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct Summary {
    pub tests: usize,
    /// Cases with an unmet expectation.
    pub failures: usize,
    /// Cases interrupted by a transport failure.
    pub errors: usize,
    pub skipped: usize,
    pub commands: usize,
    pub passed: bool,
    /// The script ended at an `exit` command.
    pub exited: bool,
}

/// One script file.
#[derive(Debug, Clone, Serialize)]
pub struct Suite {
    pub file: String,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Passed,
    Failed,
    /// The run was in this case when the transport failed (card removed
    /// or reset, mute card, PC/SC service gone): `Case::error` says how.
    Error,
    /// Not started: an earlier failure stopped the run, or `exit` ended it.
    Skipped,
}

/// One test case: a named `test`, or the unnamed statements at the top of a script.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    pub name: String,
    /// True for the statements before the first `test` of a script.
    pub top: bool,
    pub file: String,
    pub line: usize,
    pub status: CaseStatus,
    pub micros: u64,
    pub steps: Vec<Step>,
    pub failures: Vec<Failure>,
    /// The failure that interrupted this case (status `error`).
    pub error: Option<String>,
    /// What failed: `transport` (the card was removed or reset, a mute
    /// card, the PC/SC service gone) or `exchange` (the card's answer could
    /// not be used: malformed, an endless GET RESPONSE loop).
    pub error_type: Option<String>,
}

impl Case {
    /// A case with nothing recorded yet.
    pub fn new(name: String, top: bool, file: String, line: usize, status: CaseStatus) -> Case {
        Case {
            name,
            top,
            file,
            line,
            status,
            micros: 0,
            steps: Vec::new(),
            failures: Vec::new(),
            error: None,
            error_type: None,
        }
    }
}

/// One thing sent (or done) and what came back.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Step {
    pub file: String,
    pub line: usize,
    /// command, chunk, reset, let, dry-run
    pub kind: String,
    /// The command as sent, sensitive data replaced by REDACTED.
    pub command: Option<String>,
    /// Response data (spaced hex; sensitive bytes as **).
    pub data: Option<String>,
    pub sw: Option<String>,
    pub meaning: Option<String>,
    pub expected: Option<String>,
    pub ok: bool,
    pub message: Option<String>,
    /// Decoded TLV of the response data, when it is clean TLV.
    pub tlv: Option<String>,
    pub micros: u64,
    /// Every APDU on the wire for this step (GET RESPONSE, re-sends …).
    pub wire: Vec<Wire>,
    pub captures: Vec<CaptureNote>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Wire {
    pub command: String,
    pub data: String,
    pub sw: String,
    pub micros: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaptureNote {
    pub name: String,
    pub line: usize,
    /// The captured bytes (REDACTED for secret variables), or why it failed.
    pub value: String,
    pub ok: bool,
}

/// An unmet expectation (or a step that could not be done).
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub command: Option<String>,
    pub expected: Option<String>,
    pub got: Option<String>,
    pub message: String,
}

impl Failure {
    pub fn headline(&self) -> String {
        format!("{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }
}

impl Report {
    pub fn finish(&mut self) {
        let cases = self.suites.iter().flat_map(|s| &s.cases);
        self.summary.tests = cases.clone().count();
        self.summary.failures = cases
            .clone()
            .filter(|c| c.status == CaseStatus::Failed)
            .count();
        self.summary.errors = cases
            .clone()
            .filter(|c| c.status == CaseStatus::Error)
            .count();
        self.summary.skipped = cases
            .clone()
            .filter(|c| c.status == CaseStatus::Skipped)
            .count();
        self.summary.commands = cases
            .flat_map(|c| &c.steps)
            .filter(|s| (s.kind == "command" || s.kind == "chunk") && s.command.is_some())
            .count();
        self.summary.passed =
            self.summary.failures == 0 && self.summary.errors == 0 && self.error.is_none();
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// JUnit XML: one `testsuite` per script, one `testcase` per case. A
    /// case has at most one outcome element: `<failure>` (unmet
    /// expectations), `<error>` (the transport failed during it; any unmet
    /// expectations before that are listed in its text) or `<skipped/>`;
    /// the `tests`, `failures`, `errors` and `skipped` counts of every
    /// suite and of the whole report are the counts of those elements.
    pub fn to_junit(&self) -> String {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let count =
            |cases: &[Case], st: CaseStatus| cases.iter().filter(|c| c.status == st).count();
        let total_time: u64 = self
            .suites
            .iter()
            .flat_map(|s| &s.cases)
            .map(|c| c.micros)
            .sum();
        let _ = writeln!(
            x,
            "<testsuites name=\"cardsmith run\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.6}\">",
            self.summary.tests,
            self.summary.failures,
            self.summary.errors,
            self.summary.skipped,
            total_time as f64 / 1e6
        );
        for s in &self.suites {
            let time: u64 = s.cases.iter().map(|c| c.micros).sum();
            let _ = writeln!(
                x,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.6}\">",
                xml_escape(&s.file),
                s.cases.len(),
                count(&s.cases, CaseStatus::Failed),
                count(&s.cases, CaseStatus::Error),
                count(&s.cases, CaseStatus::Skipped),
                time as f64 / 1e6
            );
            for c in &s.cases {
                let _ = write!(
                    x,
                    "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\" time=\"{:.6}\"",
                    xml_escape(&c.name),
                    xml_escape(&s.file),
                    xml_escape(&c.file),
                    c.line,
                    c.micros as f64 / 1e6
                );
                match c.status {
                    CaseStatus::Passed => x.push_str("/>\n"),
                    CaseStatus::Skipped => {
                        x.push_str(">\n      <skipped/>\n    </testcase>\n");
                    }
                    CaseStatus::Failed => {
                        let msg = c.failures.first().map(|f| f.headline()).unwrap_or_default();
                        let _ = writeln!(
                            x,
                            ">\n      <failure message=\"{}\" type=\"expectation\">{}</failure>",
                            xml_escape(&msg),
                            xml_text(&failures_text(&c.failures))
                        );
                        x.push_str("    </testcase>\n");
                    }
                    CaseStatus::Error => {
                        let msg = c.error.as_deref().unwrap_or("the transport failed");
                        let mut body = String::new();
                        // Where it happened: the step that met the failure.
                        if let Some(st) = c.steps.last().filter(|st| !st.ok) {
                            let _ = writeln!(body, "{}:{}: {msg}", st.file, st.line);
                            if let Some(cmd) = &st.command {
                                let _ = writeln!(body, "  command:  {cmd}");
                            }
                        } else {
                            let _ = writeln!(body, "{msg}");
                        }
                        body.push_str(&failures_text(&c.failures));
                        let _ = writeln!(
                            x,
                            ">\n      <error message=\"{}\" type=\"{}\">{}</error>",
                            xml_escape(msg),
                            xml_escape(c.error_type.as_deref().unwrap_or("transport")),
                            xml_text(&body)
                        );
                        x.push_str("    </testcase>\n");
                    }
                }
            }
            x.push_str("  </testsuite>\n");
        }
        x.push_str("</testsuites>\n");
        x
    }
}

/// Every unmet expectation, with the command, what was expected and what came back.
fn failures_text(failures: &[Failure]) -> String {
    let mut body = String::new();
    for f in failures {
        let _ = writeln!(body, "{}", f.headline());
        if let Some(cmd) = &f.command {
            let _ = writeln!(body, "  command:  {cmd}");
        }
        if let Some(e) = &f.expected {
            let _ = writeln!(body, "  expected: {e}");
        }
        if let Some(g) = &f.got {
            let _ = writeln!(body, "  got:      {g}");
        }
    }
    body
}

/// Escape for XML text and attribute values. Characters XML 1.0 cannot
/// carry at all (most C0 controls) become U+FFFD.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Escape for XML element text: as [`xml_escape`], but line breaks and
/// tabs stay as they are.
pub fn xml_text(s: &str) -> String {
    s.split('\n')
        .map(|line| {
            line.split('\t')
                .map(xml_escape)
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text trace of one step, as printed while running.
pub fn step_text(s: &Step) -> String {
    let mut t = String::new();
    let at = format!("{}:{}", s.file, s.line);
    match s.kind.as_str() {
        "reset" if !s.ok => {
            let _ = writeln!(
                t,
                "> RESET  [{at}]\n  FAILED: {}",
                s.message
                    .as_deref()
                    .unwrap_or("the card could not be reset")
            );
        }
        "reset" => {
            let _ = writeln!(t, "> RESET  [{at}]\n< {}", s.data.as_deref().unwrap_or(""));
        }
        "let" => {
            if let Some(m) = &s.message {
                let _ = writeln!(t, "! {m}  [{at}]");
            }
        }
        _ => {
            if let Some(c) = &s.command {
                let _ = writeln!(t, "> {c}  [{at}]");
            }
            if s.wire.len() > 1 {
                for w in &s.wire {
                    let _ = writeln!(t, "    wire > {}", w.command);
                    let _ = writeln!(
                        t,
                        "    wire < {}{}{}  {:.3} ms",
                        w.data,
                        if w.data.is_empty() { "" } else { " " },
                        w.sw,
                        w.micros as f64 / 1000.0
                    );
                }
            }
            if let Some(d) = s.data.as_deref().filter(|d| !d.is_empty()) {
                for chunk in d.split(' ').collect::<Vec<_>>().chunks(16) {
                    let _ = writeln!(t, "< {}", chunk.join(" "));
                }
            }
            if let Some(sw) = &s.sw {
                let _ = writeln!(
                    t,
                    "< {sw} ({})  {:.3} ms",
                    s.meaning.as_deref().unwrap_or(""),
                    s.micros as f64 / 1000.0
                );
            }
            if let Some(tlv) = &s.tlv {
                for l in tlv.lines() {
                    let _ = writeln!(t, "    {l}");
                }
            }
            for c in &s.captures {
                let _ = writeln!(
                    t,
                    "  {} ${{{}}} = {}",
                    if c.ok { "captured" } else { "CAPTURE FAILED" },
                    c.name,
                    c.value
                );
            }
            match (&s.expected, s.ok) {
                (Some(e), true) if s.sw.is_none() => {
                    let _ = writeln!(t, "  expect {e}");
                }
                (Some(e), true) => {
                    let _ = writeln!(t, "  ok: expected {e}");
                }
                (_, false) => {
                    let _ = writeln!(
                        t,
                        "  FAILED: {}",
                        s.message.as_deref().unwrap_or("expectation not met")
                    );
                }
                _ => {}
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_keeps_line_breaks() {
        assert_eq!(xml_text("a<\n\tb\r"), "a&lt;\n\tb&#13;");
    }

    #[test]
    fn escapes() {
        assert_eq!(
            xml_escape("a<b>&\"c'\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;\u{FFFD}"
        );
    }
}
