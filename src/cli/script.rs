//! `cardsmith run`: the command-line face of the script runner (arguments,
//! output, exit codes). The runner itself ([`crate::script::runner`]) takes parsed
//! scripts and variables, never these arguments.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::script::eval::Env;
use crate::script::report::{CaseStatus, Report};
use crate::script::runner::{execute, var_from_arg, vars_from_json, RunConfig, Target, UsageError};
use crate::script::transcript::Transcript;
use crate::script::{check_vars, load, ParseOptions, Script};
use crate::sim::{SimCard, SimConfig};
use crate::transport::pcsc::{ConnectOptions, PcscTransport};
use crate::transport::sim::SimTransport;
use crate::transport::{Channel, ExchangeOptions, Transport};
use std::io::Write;

/// Exit code: every expectation met.
pub const EXIT_OK: i32 = 0;
/// Exit code: a script or a variable could not be used (nothing was sent).
pub const EXIT_USAGE: i32 = 2;
/// Exit code: an expectation was not met.
pub const EXIT_FAILED: i32 = 4;

/// `cardsmith run SCRIPT...`
#[derive(clap::Args, Debug, Clone, Default)]
#[command(
    after_help = "Examples:\n  cardsmith run --sim apdu-scripts/smoke.apdu\n  cardsmith run --reader 0 --var 'pin=\"1234\"' --junit out.xml perso.apdu\n  cardsmith run --dry-run --vars record.json perso.apdu\n\nExit codes: 0 all expectations met, 2 script or variable error (nothing sent), 4 an expectation failed, 3/5 reader or transport problem."
)]
pub struct RunArgs {
    /// Script files, run one after the other on the same card.
    #[arg(required = true, value_name = "SCRIPT")]
    pub scripts: Vec<PathBuf>,
    /// The reader (index, exact name, or unique part of the name).
    #[arg(long, short)]
    pub reader: Option<String>,
    /// Set a variable: NAME=VALUE, VALUE written as in a script (A0000000, "text", u"text", tlv(…)).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Like --var, but the value is sensitive: never shown in traces or reports.
    #[arg(long = "secret-var", value_name = "NAME=VALUE")]
    pub secret_vars: Vec<String>,
    /// A record file: a JSON object of variables ("name": "hex", or {"text"|"utf8"|"hex": …, "secret": true} or "personal": true).
    #[arg(long = "vars", value_name = "FILE")]
    pub vars_file: Option<PathBuf>,
    /// Go on after an unmet expectation (the exit code is still 4).
    #[arg(long)]
    pub keep_going: bool,
    /// Show the APDUs without a card.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Write the report as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a transcript (ATR, protocol, every APDU with its response and time) to this file.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Run against a fresh in-process simulated card instead of a reader.
    #[arg(long, conflicts_with = "reader")]
    pub sim: bool,
    /// Read lines exactly as pcsc-tools' scriptor does ("exit"/"reset" anywhere in a line, comments only in column 1, no extensions).
    #[arg(long)]
    pub scriptor_quirks: bool,
}

/// `cardsmith run`: parse everything, connect, run, report. Returns the exit code.
pub fn run(args: RunArgs, json: bool) -> anyhow::Result<i32> {
    let opts = ParseOptions {
        scriptor_quirks: args.scriptor_quirks,
    };
    let prepared = prepare(&args, opts);
    let (scripts, env) = match prepared {
        Ok(x) => x,
        // Exit code 2; under --json the error document (README, "Errors
        // under --json") names the file, line and column.
        Err(e) => {
            if json {
                println!(
                    "{}",
                    crate::cli::json_error::document(&anyhow::Error::new(e))
                );
            } else {
                eprintln!("error: {e}");
            }
            return Ok(EXIT_USAGE);
        }
    };
    if !json {
        for (_, s) in &scripts {
            for w in &s.warnings {
                eprintln!("{w}");
            }
        }
    }
    let cfg = RunConfig {
        keep_going: args.keep_going,
        dry_run: args.dry_run,
    };
    let mut stdout = std::io::stdout();
    let mut sink = std::io::sink();
    let trace: &mut dyn Write = if json { &mut sink } else { &mut stdout };
    let (report, err) = if args.dry_run {
        execute(&scripts, env, Target::DryRun, cfg, trace)
    } else {
        let transport: Box<dyn Transport> = if args.sim {
            Box::new(SimTransport::new(SimCard::blank(SimConfig::default())))
        } else {
            Box::new(PcscTransport::connect(
                args.reader.as_deref(),
                ConnectOptions::default(),
            )?)
        };
        let mut ch = Channel::new(transport, ExchangeOptions::raw());
        execute(&scripts, env, Target::Card(&mut ch), cfg, trace)
    };
    if json {
        // Should anything below fail, the one JSON document on stdout is
        // the error's, with the report in it.
        crate::cli::json_error::attach(
            "report",
            serde_json::from_str(&report.to_json()).unwrap_or_default(),
        );
    }
    if let Some(p) = &args.report_json {
        crate::private::write(p, report.to_json().as_bytes()).map_err(|e| {
            anyhow::Error::new(e).context(crate::cli::json_error::file("writing", p))
        })?;
    }
    if let Some(p) = &args.junit {
        crate::private::write(p, report.to_junit().as_bytes()).map_err(|e| {
            anyhow::Error::new(e).context(crate::cli::json_error::file("writing", p))
        })?;
    }
    if let Some(p) = &args.record {
        let t = Transcript::from_report(&report);
        crate::private::write(p, t.to_json().as_bytes()).map_err(|e| {
            anyhow::Error::new(e).context(crate::cli::json_error::file("writing", p))
        })?;
    }
    match (&err, json) {
        // The error document carries the report (attached above).
        (Some(_), true) => {}
        (None, true) => println!("{}", report.to_json()),
        (_, false) => print_summary(&report),
    }
    if let Some(e) = err {
        return Err(e.into());
    }
    Ok(if report.summary.passed {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

fn print_summary(r: &Report) {
    let s = &r.summary;
    println!();
    for suite in &r.suites {
        for c in &suite.cases {
            if c.status == CaseStatus::Failed {
                println!("FAILED {} ({}:{})", c.name, c.file, c.line);
                for f in &c.failures {
                    println!("  {}", f.headline());
                    if let Some(cmd) = &f.command {
                        println!("    command:  {cmd}");
                    }
                    if let Some(e) = &f.expected {
                        println!("    expected: {e}");
                    }
                    if let Some(g) = &f.got {
                        println!("    got:      {g}");
                    }
                }
            }
            if c.status == CaseStatus::Error {
                println!("ERROR {} ({}:{})", c.name, c.file, c.line);
                if let Some(st) = c.steps.last().filter(|st| !st.ok) {
                    println!(
                        "  {}:{}: {}",
                        st.file,
                        st.line,
                        c.error.as_deref().unwrap_or("")
                    );
                } else {
                    println!("  {}", c.error.as_deref().unwrap_or(""));
                }
            }
        }
    }
    println!(
        "{} tests, {} failed, {} {}, {} skipped, {} commands{}{}",
        s.tests,
        s.failures,
        s.errors,
        if s.errors == 1 { "error" } else { "errors" },
        s.skipped,
        s.commands,
        if r.dry_run { " (dry run)" } else { "" },
        if s.exited { " (ended at exit)" } else { "" }
    );
}

/// Load the scripts and the variables; check that every variable is defined.
pub fn prepare(
    args: &RunArgs,
    opts: ParseOptions,
) -> Result<(Vec<(String, Script)>, Env), UsageError> {
    let mut scripts = Vec::new();
    for p in &args.scripts {
        scripts.push((p.display().to_string(), load(p, opts)?));
    }
    let mut env = Env::new();
    if let Some(f) = &args.vars_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| UsageError::Var(format!("cannot read {}: {e}", f.display())))?;
        for (name, v) in
            vars_from_json(&text).map_err(|m| UsageError::Var(format!("{}: {m}", f.display())))?
        {
            env.set(&name, v);
        }
    }
    for (list, secret) in [(&args.vars, false), (&args.secret_vars, true)] {
        for kv in list {
            let (name, v) = var_from_arg(kv, secret).map_err(UsageError::Var)?;
            env.set(&name, v);
        }
    }
    let external: BTreeSet<String> = env.names().cloned().collect();
    let mut all = Script::default();
    for (_, s) in &scripts {
        all.stmts.extend(s.stmts.iter().cloned());
    }
    check_vars(&all, &external)?;
    Ok((scripts, env))
}

/// `cardsmith replay TRANSCRIPT`: against a fresh simulated card.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplayArgs {
    /// A transcript written by `cardsmith run --record`.
    pub transcript: std::path::PathBuf,
    /// Write the new transcript here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

/// `cardsmith diff A B`: compare two transcripts.
#[derive(clap::Args, Debug, Clone)]
pub struct DiffArgs {
    pub left: std::path::PathBuf,
    pub right: std::path::PathBuf,
}

fn read_transcript(p: &std::path::Path) -> anyhow::Result<crate::script::transcript::Transcript> {
    use anyhow::Context as _;
    let text = std::fs::read_to_string(p).with_context(|| crate::errors::file("reading", p))?;
    crate::script::transcript::Transcript::from_json(&text)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| crate::errors::file("transcript", p))
}

fn print_diff(d: &[crate::script::transcript::Difference], json: bool) {
    if json {
        println!("{}", serde_json::json!({ "differences": d }));
        return;
    }
    for x in d {
        println!(
            "#{} {}:{} {}\n  - {}\n  + {}",
            x.index, x.file, x.line, x.what, x.left, x.right
        );
    }
    println!("{} differences", d.len());
}

/// Replay, print the differences from the recording; exit code 0 when none, 4 otherwise.
pub fn replay_cmd(args: ReplayArgs, json: bool) -> anyhow::Result<i32> {
    let t = read_transcript(&args.transcript)?;
    let again = crate::script::transcript::replay(
        &t,
        crate::sim::SimCard::blank(crate::sim::SimConfig::default()),
    )?;
    if let Some(p) = &args.out {
        crate::private::write(p, again.to_json().as_bytes())
            .map_err(|e| anyhow::Error::new(e).context(crate::errors::file("writing", p)))?;
    }
    // The ATR and reader differ by nature between a card and the simulator.
    let d: Vec<_> = crate::script::transcript::diff(&t, &again)
        .into_iter()
        .filter(|x| x.what != "atr" && x.what != "protocol")
        .collect();
    print_diff(&d, json);
    Ok(if d.is_empty() { 0 } else { 4 })
}

/// Compare two transcripts; exit code 0 when equal, 4 otherwise.
pub fn diff_cmd(args: DiffArgs, json: bool) -> anyhow::Result<i32> {
    let d = crate::script::transcript::diff(
        &read_transcript(&args.left)?,
        &read_transcript(&args.right)?,
    );
    print_diff(&d, json);
    Ok(if d.is_empty() { 0 } else { 4 })
}
