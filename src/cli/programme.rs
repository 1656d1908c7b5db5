//! `cardsmith programme status`: the programme's view on the command line.

use crate::cli::common::{default_data_dir, RecordRefused};
use crate::programme::offices::Directory;
use crate::programme::{compute, html, parse_day, render, today, Bound, Calendar, Params};
use crate::register::journal::Journal;
use crate::register::pg::{PgJournal, PgOptions};
use crate::register::pgconf;
use crate::register::sqlite::SqliteJournal;
use anyhow::{anyhow, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum ProgrammeCommand {
    /// Requests waiting by age, cards made, shipped and delivered, request-to-delivery time (median, p90, share within 30 days) and uncollected cards, per office, per consulate and for the whole programme.
    #[command(
        after_help = "Examples:\n  cardsmith programme status --journal postgresql://supervisor@db.registry/register\n  cardsmith programme status --from 1404/07/01 --to 1404/09/30 --format html --out status.html\n  cardsmith programme status --from 2025-09 --to 2025-11 --calendar gregorian --format csv\n\nA period selects requests by their request date; everything shown is about those requests, as they stood at the end of --as-of (Iran time). See docs/programme.md."
    )]
    Status(StatusArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Csv,
    Html,
}

/// `--calendar`, as the command line names it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CalendarArg {
    Jalali,
    Gregorian,
}

impl From<CalendarArg> for Calendar {
    fn from(c: CalendarArg) -> Calendar {
        match c {
            CalendarArg::Jalali => Calendar::Jalali,
            CalendarArg::Gregorian => Calendar::Gregorian,
        }
    }
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The register: an SQLite file, or postgresql://USER@HOST:PORT/DB (password from PGPASSFILE, ~/.pgpass or PGPASSWORD, never here). Default: $CARDSMITH_JOURNAL, else <data dir>/line/journal.sqlite.
    #[arg(long, value_name = "FILE|URL")]
    pub journal: Option<String>,
    /// Where the default SQLite journal lives (default: $CARDSMITH_DATA_DIR, $XDG_DATA_HOME/cardsmith or ~/.local/share/cardsmith).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// First request date of the period: Jalali 1404/07/01 (or a month, 1404/07) or Gregorian 2025-09-23 (or 2025-09); Persian digits accepted.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Last request date of the period (a month means its last day).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// The day the view is taken (default: today, Iran time): steps after it have not happened yet.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// Calendar dates are shown in.
    #[arg(long, value_enum, default_value = "jalali")]
    pub calendar: CalendarArg,
    /// Count a card shipped to an office and not collected for more than this many days as uncollected.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub uncollected_after: u32,
    /// Output format (default: text, or json with --json).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the output to FILE (mode 600) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The office directory (code,kind,name_fa,name_en,region lines); default: the one shipped with cardsmith (data/offices.csv).
    #[arg(long, value_name = "FILE")]
    pub offices: Option<PathBuf>,
}

fn usage(msg: String) -> anyhow::Error {
    anyhow!(RecordRefused(msg))
}

/// Open the register for reading the view. A missing SQLite file is
/// refused rather than created.
fn open(a: &StatusArgs) -> Result<Box<dyn Journal>> {
    let (location, argv) = match (&a.journal, std::env::var("CARDSMITH_JOURNAL")) {
        (Some(j), _) => (j.clone(), true),
        (None, Ok(j)) if !j.trim().is_empty() => (j, false),
        _ => (
            a.data_dir
                .clone()
                .unwrap_or_else(default_data_dir)
                .join("line")
                .join("journal.sqlite")
                .display()
                .to_string(),
            false,
        ),
    };
    if pgconf::is_url(&location) {
        let mut t = pgconf::parse(&location, argv).map_err(|e| usage(e.to_string()))?;
        t.config.application_name("cardsmith programme");
        return Ok(Box::new(
            PgJournal::open(t, PgOptions::default()).map_err(|e| anyhow!(e))?,
        ));
    }
    let path = Path::new(&location);
    if !path.is_file() {
        return Err(usage(format!(
            "journal {location}: no such file (give the register with --journal FILE|URL)"
        )));
    }
    Ok(Box::new(SqliteJournal::open(path).map_err(|e| anyhow!(e))?))
}

pub fn programme(cmd: ProgrammeCommand, json: bool) -> Result<i32> {
    match cmd {
        ProgrammeCommand::Status(a) => status(a, json),
    }
}

fn status(a: StatusArgs, json: bool) -> Result<i32> {
    let day = |flag: &str, v: &Option<String>, b: Bound| -> Result<Option<i64>> {
        v.as_deref()
            .map(|s| parse_day(s, b).map_err(|e| usage(format!("{flag} {e}"))))
            .transpose()
    };
    let from = day("--from", &a.from, Bound::Start)?;
    let to = day("--to", &a.to, Bound::End)?;
    let as_of = day("--as-of", &a.as_of, Bound::End)?.unwrap_or_else(today);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(usage(format!(
                "--from {} is after --to {}",
                a.from.as_deref().unwrap_or(""),
                a.to.as_deref().unwrap_or("")
            )));
        }
    }
    let directory = match &a.offices {
        Some(p) => Directory::load(p).map_err(|e| usage(e.to_string()))?,
        None => Directory::builtin(),
    };
    let params = Params {
        from,
        to,
        as_of,
        uncollected_after: i64::from(a.uncollected_after),
    };
    let j = open(&a)?;
    let groups = j
        .programme_groups()
        .map_err(|e| anyhow!(e))
        .context("reading the programme view from the register")?;
    let view = compute(&groups, &params, &directory);
    let format = a
        .format
        .unwrap_or(if json { Format::Json } else { Format::Text });
    let out = match format {
        Format::Text => render::text(&view, a.calendar.into()),
        Format::Json => {
            serde_json::to_string_pretty(&render::json(&view, a.calendar.into()))? + "\n"
        }
        Format::Csv => render::csv(&view),
        Format::Html => html::page(&view, a.calendar.into()),
    };
    match &a.out {
        Some(p) => {
            crate::private::replace(p, out.as_bytes())
                .with_context(|| format!("writing {}", p.display()))?;
        }
        None => print!("{out}"),
    }
    Ok(0)
}
