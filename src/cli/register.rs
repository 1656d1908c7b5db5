//! The register's command line: where the journal is and who is working
//! (`JournalArgs`, shared by every command family that writes to the
//! register: the line, the counter, perso, the CA, the programme view),
//! and `cardsmith journal …`: the register itself — its schema, its logins,
//! and the one-time move of a station's SQLite journal into it.

use crate::cli::common::{check_office, RecordRefused};
use crate::register::journal::{Journal, Who, DEFAULT_LEASE};
use crate::register::pg::{PgJournal, PgOptions};
use crate::register::pgconf::{self, PgTarget};
use crate::register::pgschema::{self, RoleKind};
use crate::register::sqlite::SqliteJournal;
use anyhow::{anyhow, Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the journal is and who is working.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct JournalArgs {
    /// The journal: an SQLite file, or the shared register as postgresql://USER@HOST:PORT/DB (password from PGPASSFILE, ~/.pgpass or PGPASSWORD, never here). Default: $CARDSMITH_JOURNAL, else <data dir>/line/journal.sqlite.
    #[arg(long, value_name = "FILE|URL")]
    pub journal: Option<String>,
    /// How long a claim is held without renewal (e.g. 30s, 500ms); a station that stops renewing loses its claims after this.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lease: Option<std::time::Duration>,
    /// Where the journal, the local CA and the issuer key live (default: $CARDSMITH_DATA_DIR, $XDG_DATA_HOME/cardsmith or ~/.local/share/cardsmith).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Who is at the station (default: $CARDSMITH_OPERATOR, else $USER).
    #[arg(long)]
    pub operator: Option<String>,
    /// This line station's name (default: the host name).
    #[arg(long)]
    pub station: Option<String>,
}

pub fn data_dir(a: &JournalArgs) -> PathBuf {
    a.data_dir
        .clone()
        .unwrap_or_else(crate::cli::common::default_data_dir)
}

/// A duration as `30s`, `500ms`, `2m` or plain seconds.
pub fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration such as 30s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; expected ms, s or m")),
    };
    if !(secs > 0.0 && secs < 86_400.0) {
        return Err(format!("{s:?}: expected more than 0 and less than a day"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Where the journal is: the argument, else `CARDSMITH_JOURNAL`, else the
/// data directory's SQLite file. The flag says whether it came from the
/// command line (where a password is refused).
pub fn journal_location(a: &JournalArgs) -> (String, bool) {
    if let Some(j) = &a.journal {
        return (j.clone(), true);
    }
    if let Some(j) = std::env::var("CARDSMITH_JOURNAL")
        .ok()
        .filter(|s| !s.trim().is_empty())
    {
        return (j, false);
    }
    (
        data_dir(a)
            .join("line")
            .join("journal.sqlite")
            .display()
            .to_string(),
        false,
    )
}

/// The register target of a `postgresql://` location, named after the
/// station in `pg_stat_activity`.
pub fn pg_target(a: &JournalArgs, location: &str, argv: bool) -> Result<PgTarget> {
    let mut t = pgconf::parse(location, argv).map_err(|e| anyhow!(RecordRefused(e.to_string())))?;
    t.config
        .application_name(&format!("cardsmith {}", who(a).station));
    Ok(t)
}

pub fn open_journal(a: &JournalArgs) -> Result<Arc<dyn Journal>> {
    let lease = a.lease.unwrap_or(DEFAULT_LEASE);
    let (location, argv) = journal_location(a);
    if pgconf::is_url(&location) {
        let t = pg_target(a, &location, argv)?;
        let opts = PgOptions {
            lease,
            ..PgOptions::default()
        };
        let j = PgJournal::open(t, opts).map_err(|e| anyhow!(e))?;
        return Ok(Arc::new(j));
    }
    let j = SqliteJournal::open(Path::new(&location))
        .map_err(|e| anyhow!(e))?
        .with_lease(lease);
    Ok(Arc::new(j))
}

pub fn who(a: &JournalArgs) -> Who {
    let operator = a
        .operator
        .clone()
        .or_else(|| std::env::var("CARDSMITH_OPERATOR").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "unknown".into());
    let station = a
        .station
        .clone()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "station".into());
    Who {
        station,
        operator,
        reader: None,
    }
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum RoleArg {
    /// A personalization line station.
    Line,
    /// A pickup counter (domestic office or consulate): needs --office.
    Counter,
    /// A supervisor: every office, overrides.
    Supervisor,
}

#[derive(clap::Subcommand, Debug)]
pub enum JournalCommand {
    /// Create or upgrade the journal's schema. On PostgreSQL: the numbered migrations not applied yet, each once, and the programme's roles; run it as the database owner. Safe to run again.
    #[command(
        after_help = "Examples:\n  cardsmith journal migrate --journal postgresql://cardsmith@db.registry:5432/register\n  cardsmith journal migrate --journal /var/lib/cardsmith/line/journal.sqlite"
    )]
    Migrate {
        #[command(flatten)]
        journal: JournalArgs,
    },
    /// Create (or update) a login of the shared register for a line station, a counter or a supervisor (PostgreSQL only).
    #[command(
        after_help = "Example:\n  cardsmith journal grant counter_dxb --role counter --office AE-DXB --password-file dxb.pw --journal postgresql://cardsmith@db.registry/register\n\nThe password file holds the password on its first line; it is sent to the server only as a SCRAM-SHA-256 verifier."
    )]
    Grant {
        /// The login name (lower-case letters, digits, _).
        login: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The office a counter login records deliveries for (office code, e.g. 1021 or AE-DXB).
        #[arg(long)]
        office: Option<String>,
        /// Set the login's password from this file (first line).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        #[command(flatten)]
        journal: JournalArgs,
    },
    /// Walk the journal's tamper-evident audit trail and compare every audited table with it: names the first entry or row that was changed, removed or inserted behind the journal's back. Exit 4 when the history is broken.
    #[command(
        after_help = "Examples:\n  cardsmith journal audit\n  cardsmith journal audit --journal postgresql://auditor@db.registry/register --json"
    )]
    Audit {
        #[command(flatten)]
        journal: JournalArgs,
    },
    /// Copy a station's SQLite journal into the (migrated, empty) PostgreSQL register, once; every table is checked by row count and SHA-256 before the copy commits.
    #[command(
        after_help = "Example:\n  cardsmith journal copy ~/.local/share/cardsmith/line/journal.sqlite --journal postgresql://cardsmith@db.registry/register"
    )]
    Copy {
        /// The SQLite journal to copy.
        from: PathBuf,
        #[command(flatten)]
        journal: JournalArgs,
    },
}

fn refused(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!(RecordRefused(e.to_string()))
}

fn pg_client(a: &JournalArgs) -> Result<(postgres::Client, String)> {
    let (location, argv) = journal_location(a);
    if !pgconf::is_url(&location) {
        return Err(refused(format!(
            "journal {location}: this command works on the shared register; give --journal postgresql://USER@HOST:PORT/DB"
        )));
    }
    let t = pg_target(a, &location, argv)?;
    let c = crate::register::pg::connect(&t).map_err(|e| anyhow!(e))?;
    Ok((c, t.display))
}

fn read_password(path: &Path) -> Result<zeroize::Zeroizing<String>> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("password file {}", path.display()))?,
    );
    let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if first.is_empty() {
        return Err(refused(format!(
            "password file {}: the first line is empty; expected the password",
            path.display()
        )));
    }
    Ok(zeroize::Zeroizing::new(first.to_string()))
}

pub fn journal(cmd: JournalCommand, json: bool) -> Result<i32> {
    match cmd {
        JournalCommand::Migrate { journal } => migrate(&journal, json),
        JournalCommand::Grant {
            login,
            role,
            office,
            password_file,
            journal,
        } => grant(
            &login,
            role,
            office.as_deref(),
            password_file.as_deref(),
            &journal,
            json,
        ),
        JournalCommand::Audit { journal } => audit(&journal, json),
        JournalCommand::Copy { from, journal } => copy(&from, &journal, json),
    }
}

/// `journal migrate`: bring an SQLite journal or the shared PostgreSQL
/// register to the current schema, and say what was applied.
fn migrate(journal: &JournalArgs, json: bool) -> Result<i32> {
    let (location, _) = journal_location(journal);
    if !pgconf::is_url(&location) {
        // Opening an SQLite journal brings it to the current schema.
        drop(SqliteJournal::open(Path::new(&location)).map_err(|e| anyhow!(e))?);
        if json {
            println!(
                "{}",
                json!({"journal": location, "backend": "sqlite", "migrated": true})
            );
        } else {
            println!("journal {location}: SQLite schema is current");
        }
        return Ok(0);
    }
    let (mut c, display) = pg_client(journal)?;
    let m = pgschema::migrate(&mut c, &display).map_err(|e| anyhow!(e))?;
    if json {
        println!(
            "{}",
            json!({"journal": display, "backend": "postgresql", "migrated": m})
        );
    } else if m.applied.is_empty() {
        println!(
            "register {display}: schema version {} is current; nothing to apply",
            m.to
        );
    } else {
        println!(
            "register {display}: schema version {} -> {}; applied {}",
            m.from,
            m.to,
            m.applied.join(", ")
        );
    }
    Ok(0)
}

/// The role a `--role` names.
fn role_kind(role: RoleArg) -> RoleKind {
    match role {
        RoleArg::Line => RoleKind::Line,
        RoleArg::Counter => RoleKind::Counter,
        RoleArg::Supervisor => RoleKind::Supervisor,
    }
}

/// `--office` is only for a counter login, and must be a code a counter
/// can give: the office binds a counter's deliveries (row-level security
/// compares it with the counter's --office), so a code the counter could
/// never give would leave the login unable to deliver.
fn check_grant_office(kind: RoleKind, office: Option<&str>) -> Result<()> {
    match (kind, office) {
        (RoleKind::Counter, Some(o)) => check_office(o).map(drop),
        (_, None) => Ok(()),
        (_, Some(_)) => Err(refused(format!(
            "--office is for a counter login; a {} login works for every office",
            kind.group()
        ))),
    }
}

/// `journal grant`: give a login a role on the shared register (and a
/// password, from the first line of `password_file`, when given).
fn grant(
    login: &str,
    role: RoleArg,
    office: Option<&str>,
    password_file: Option<&Path>,
    journal: &JournalArgs,
    json: bool,
) -> Result<i32> {
    let kind = role_kind(role);
    check_grant_office(kind, office)?;
    let pw = password_file.map(read_password).transpose()?;
    let (mut c, display) = pg_client(journal)?;
    pgschema::grant(
        &mut c,
        &display,
        login,
        kind,
        office,
        pw.as_ref().map(|p| p.as_bytes()),
    )
    .map_err(|e| match e {
        crate::register::journal::JournalError::Refused(m) => refused(m),
        e => anyhow!(e),
    })?;
    if json {
        println!(
            "{}",
            json!({"journal": display, "login": login, "role": kind.group(), "office": office, "password_set": pw.is_some()})
        );
    } else {
        println!(
            "register {display}: login {login} is {}{}{}",
            kind.group(),
            office
                .map(|o| format!(" for office {o}"))
                .unwrap_or_default(),
            if pw.is_some() { "; password set" } else { "" }
        );
    }
    Ok(0)
}

/// `journal audit`: compare the audit trail with the audited tables; a
/// changed history exits with the card-status code.
fn audit(journal: &JournalArgs, json: bool) -> Result<i32> {
    let j = crate::cli::register::open_journal(journal)?;
    let rep = j.audit().map_err(|e| anyhow!(e))?;
    if json {
        println!("{}", json!({"journal": j.location(), "audit": rep}));
    } else if rep.intact {
        println!(
            "journal {}: audit trail intact: {} entries, {} rows of the audited tables match it",
            j.location(),
            rep.entries,
            rep.rows
        );
    } else {
        println!(
            "journal {}: the history was changed ({} finding(s); {} entries, {} rows)",
            j.location(),
            rep.findings.len(),
            rep.entries,
            rep.rows
        );
        for (i, f) in rep.findings.iter().enumerate() {
            let lead = if i == 0 { "first" } else { "     " };
            println!("  {lead}: {}", f.what);
        }
    }
    Ok(if rep.intact {
        0
    } else {
        crate::cli::common::EXIT_CARD_STATUS
    })
}

/// `journal copy`: copy an SQLite journal into the shared register (at the
/// current schema), each table checked by row count and digest.
fn copy(from: &Path, journal: &JournalArgs, json: bool) -> Result<i32> {
    let (mut c, display) = pg_client(journal)?;
    let v = pgschema::version(&mut c).map_err(|e| anyhow!("register {display}: {e}"))?;
    pgschema::check_version(v, &display).map_err(|e| anyhow!(e))?;
    let done = crate::register::copy::copy(from, &mut c, &display).map_err(|e| anyhow!(e))?;
    if json {
        println!(
            "{}",
            json!({"from": from, "journal": display, "tables": done})
        );
    } else {
        println!("copied {} into {display}:", from.display());
        for d in &done {
            println!("  {:<18} {:>8} rows  SHA-256 {}", d.table, d.rows, d.sha256);
        }
        println!("every table matches the source by count and digest");
    }
    Ok(0)
}
