//! `cardsmith line …`: run a batch across readers, resume it, and ask the
//! journal what happened.

use crate::cli::common::{CardArgs, RecordRefused};
use crate::cli::register::{data_dir, open_journal, who, JournalArgs};
use crate::line::progress::Progress;
use crate::line::report;
use crate::line::run::{self, Readers, RunOptions};
use crate::line::slot::{CardSlot, SimFeed, SimSlot};
use crate::line::station::StationCtx;
use crate::perso::input::IsoTemplates;
use crate::perso::side::{IssuerSide, Profiles, SideError};
use crate::record;
use crate::register::journal::{
    iso_time, AttemptRow, BatchInfo, CardKnown, Journal, JournalError, LoadChunk, NewRecord,
    SetAside, Summary, Who,
};
use crate::scp03::keyfile::Scp03Keys;
use crate::sim::faults::Faults;
use crate::sim::timing::Timing;
use crate::sim::{Provision, SimCard, SimConfig};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Options of `line run` and `line resume`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Use PC/SC readers whose name contains this (repeatable; default: every reader).
    #[arg(long = "reader", short = 'r', value_name = "PATTERN")]
    pub readers: Vec<String>,
    /// Instead of PC/SC, run N in-process readers fed with simulated blank cards.
    #[arg(long, value_name = "N", conflicts_with = "readers")]
    pub sim_readers: Option<usize>,
    /// Timing model of the in-process simulated cards: typical, slow, fast, none, or e.g. latency=20ms,baud=115200,page=64,page-write=3ms,keygen=120ms.
    #[arg(long, default_value = "typical", requires = "sim_readers")]
    pub timing: String,
    /// A card profile the line takes cards of (repeatable: each card is taken as the first of them that recognizes its ATR; a card none recognizes is refused untouched). Default: the installed profiles, the reference card then the domestic card.
    #[arg(long = "profile", value_name = "FILE")]
    pub profiles: Vec<PathBuf>,
    /// The issuer transport key file (hex, mode 600). Default: $CARDSMITH_ISSUER_KEY, else <data dir>/issuer-key.
    #[arg(long, value_name = "FILE")]
    pub issuer_key: Option<PathBuf>,
    /// The SCP03 key file of the blank cards' security domain (mode 600). Default: $CARDSMITH_SCP03_KEYS, else <data dir>/scp03-keys.
    #[arg(long, value_name = "FILE")]
    pub scp03_keys: Option<PathBuf>,
    /// Rejections after which a record is held for a supervisor instead of requeued.
    #[arg(long, default_value_t = 3)]
    pub max_rejects: u32,
    /// Consecutive failures after which a reader is taken out of rotation.
    #[arg(long, default_value_t = 3)]
    pub misbehave_after: u32,
    /// Write the end-of-batch report (JSON, CSV, HTML) into this directory (default: <data dir>/line/reports).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum LineCommand {
    /// Load a batch of records and personalize them across the readers.
    #[command(
        after_help = "Examples:\n  cardsmith line run batch.jsonl --reader \"Cardsmith Line\"\n  cardsmith line run batch.jsonl --sim-readers 4 --timing typical\n\nExit codes: 0 every valid record is on a good card, 4 records were set aside or are held, 2 bad batch/profile/key, 1 other failure."
    )]
    Run {
        /// The batch file (JSON lines, see docs/record-format.md).
        batch: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Go on with an unfinished batch after a crash, kill or stop.
    #[command(after_help = "Example:\n  cardsmith line resume --reader \"Cardsmith Line\"")]
    Resume {
        /// The batch (default: the latest one).
        #[arg(long)]
        batch: Option<i64>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Counts for a batch.
    #[command(after_help = "Example:\n  cardsmith line status --json")]
    Status {
        #[arg(long)]
        batch: Option<i64>,
        #[command(flatten)]
        journal: JournalArgs,
    },
    /// What happened to a record: every attempt, card and reason.
    #[command(after_help = "Example:\n  cardsmith line record R-0000001")]
    Record {
        record_id: String,
        #[command(flatten)]
        journal: JournalArgs,
    },
    /// What is on a card (by serial), and its history.
    #[command(after_help = "Example:\n  cardsmith line card 4A3F00112233AABB")]
    Card {
        serial: String,
        #[command(flatten)]
        journal: JournalArgs,
    },
    /// Rejected and interrupted attempts by reason.
    #[command(after_help = "Example:\n  cardsmith line rejects --batch 1")]
    Rejects {
        #[arg(long)]
        batch: Option<i64>,
        #[command(flatten)]
        journal: JournalArgs,
    },
    /// Good, rejected and interrupted cards by reader and hour.
    #[command(after_help = "Example:\n  cardsmith line throughput --json")]
    Throughput {
        #[arg(long)]
        batch: Option<i64>,
        #[command(flatten)]
        journal: JournalArgs,
    },
    /// Write the batch report (JSON, CSV, HTML) again.
    #[command(after_help = "Example:\n  cardsmith line report --out /tmp/report")]
    Report {
        #[arg(long)]
        batch: Option<i64>,
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        journal: JournalArgs,
    },
    /// Put a held record back in the queue (journaled with the operator).
    #[command(after_help = "Example:\n  cardsmith line requeue R-0000007 --operator supervisor1")]
    Requeue {
        record_id: String,
        #[command(flatten)]
        journal: JournalArgs,
    },
    /// Operator and line events (readers added, removed, out of rotation, resumes).
    #[command(after_help = "Example:\n  cardsmith line events")]
    Events {
        #[command(flatten)]
        journal: JournalArgs,
    },
}

/// Lines between the marks of the batch file's index (see
/// [`record::stream::LineIndex`]): a look-up reads at most this many lines.
const INDEX_EVERY: usize = 64;

/// One pass over the batch file: its SHA-256 (hex) and the index the
/// workers find their records by. Reads in blocks: memory does not grow
/// with the file.
fn scan_file(path: &Path) -> Result<(String, record::stream::LineIndex)> {
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    let index = record::stream::LineIndex::build(path, INDEX_EVERY, &mut |b| sha.update(b))
        .with_context(|| format!("reading batch file {}", path.display()))?;
    let digest = crate::hex::compact(sha.finish().as_ref()).to_ascii_lowercase();
    Ok((digest, index))
}

fn line_of(location: &str) -> u64 {
    location
        .rsplit(':')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The register's chunk for a validated chunk of the file: the records to
/// queue, and one set-aside entry per refused line with every problem of
/// it. (Every error of a line is in the line's chunk.)
fn load_chunk(chunk: record::Chunk<NewRecord>) -> LoadChunk {
    for w in &chunk.warnings {
        eprintln!("warning: {w}");
    }
    let mut aside: Vec<SetAside> = Vec::new();
    let mut at: HashMap<u64, usize> = HashMap::new();
    for e in &chunk.bad {
        let line = line_of(&e.location);
        let what = if e.field.is_empty() {
            e.rule.clone()
        } else {
            format!("{}: {}", e.field, e.rule)
        };
        match at.get(&line).and_then(|&i| aside.get_mut(i)) {
            Some(a) => {
                a.reason.push_str("; ");
                a.reason.push_str(&what);
            }
            None => {
                at.insert(line, aside.len());
                aside.push(SetAside {
                    record_id: e.record_id.clone(),
                    line,
                    reason: what,
                });
            }
        }
    }
    LoadChunk {
        records: chunk.good.into_iter().map(|(_, r)| r).collect(),
        set_aside: aside,
    }
}

/// Validate the batch file chunk by chunk on every core and load it into
/// the register as it goes (one transaction; see
/// [`Journal::load_batch_streamed`]).
fn load_streamed(
    journal: &dyn Journal,
    path: &Path,
    digest: &str,
    who: &crate::register::journal::Who,
    profiles: &Profiles,
) -> Result<(BatchInfo, Vec<SetAside>)> {
    // Checked against the card that takes the fewest minutiae: a record
    // fits whichever card comes.
    let v = IsoTemplates {
        max_minutiae: usize::from(profiles.max_minutiae()),
    };
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "batch".into());
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut read_error = None;
    let loaded = record::stream_records(
        path,
        &v,
        &record::StreamOptions::default(),
        &|line, r| crate::line::station::new_record(line as u64, &r),
        |chunks| {
            journal.load_batch_streamed(&name, &abs.display().to_string(), digest, who, &mut || {
                match chunks.next() {
                    None => Ok(None),
                    Some(Ok(c)) => Ok(Some(load_chunk(c))),
                    Some(Err(e)) => {
                        let why = format!("reading batch file {}: {e}", path.display());
                        read_error = Some(e);
                        Err(JournalError::Refused(why))
                    }
                }
            })
        },
    )
    .with_context(|| format!("reading batch file {}", path.display()))?;
    match (loaded, read_error) {
        (Ok(v), _) => Ok(v),
        (Err(_), Some(e)) => Err(anyhow!(e)).with_context(|| {
            format!(
                "reading batch file {} (nothing of it was loaded)",
                path.display()
            )
        }),
        (Err(e), None) => Err(anyhow!(e)),
    }
}

fn print_set_aside(batch: &BatchInfo, aside: &[SetAside]) {
    if aside.is_empty() {
        return;
    }
    eprintln!(
        "batch {} ({}): {} record(s) set aside, the rest proceed:",
        batch.id,
        batch.name,
        aside.len()
    );
    for a in aside {
        eprintln!(
            "  {}:{} record {}: {}",
            batch.path,
            a.line,
            a.record_id.as_deref().unwrap_or("?"),
            a.reason
        );
    }
}

/// `n` in-process slots sharing one feed of blank cards: in turn, a card
/// of each simulated card OS (the reference card, the domestic card) that
/// one of the station's profiles takes.
fn sim_slots(
    n: usize,
    timing: Option<Timing>,
    key: &[u8],
    scp03: Option<Scp03Keys>,
    profiles: &Profiles,
) -> Result<Vec<Box<dyn CardSlot>>> {
    let key = key.to_vec();
    let provision = move |config| {
        SimCard::blank_provisioned(
            config,
            Provision {
                issuer_key: Some(&key),
                scp03: scp03.as_ref().map(|k| &k.keys),
            },
        )
    };
    // Check the keys once; every card gets them.
    let mut kinds = Vec::new();
    for config in [SimConfig::default(), SimConfig::domestic()] {
        let card = provision(config.clone()).map_err(|e| anyhow!("{e}"))?;
        if profiles.pick(&card.atr()).is_ok() {
            kinds.push(SimConfig { timing, ..config });
        }
    }
    if kinds.is_empty() {
        bail!(RecordRefused(format!(
            "none of the line's profiles ({}) takes the simulated cards (the reference card, the domestic card)",
            profiles.names().join(", ")
        )));
    }
    let mut turn = 0usize;
    let feed = SimFeed::new(Box::new(move |_reader: &str| {
        let config = kinds.get(turn % kinds.len())?.clone();
        turn = turn.wrapping_add(1);
        let card = provision(config).ok()?;
        Some((Arc::new(Mutex::new(card)), Faults::none()))
    }));
    let slots = (0..n)
        .map(|i| {
            Box::new(SimSlot::new(
                &format!("sim reader {:02}", i + 1),
                feed.clone(),
            )) as Box<dyn CardSlot>
        })
        .collect();
    Ok(slots)
}

/// `line run` (a batch file) and `line resume` (a batch of the journal):
/// open the station, run the line to the end, write the report and say
/// how the batch stands.
fn start(batch: Option<&Path>, resume_id: Option<i64>, a: RunArgs, json: bool) -> Result<i32> {
    let profiles =
        Profiles::open(&a.profiles).map_err(|e| anyhow!(RecordRefused(e.to_string())))?;
    let side = open_side(&a, &profiles)?;
    let journal = open_journal(&a.journal)?;
    let who = who(&a.journal);
    recover_interrupted(journal.as_ref(), &who)?;
    let (info, index) = match batch {
        Some(path) => load_batch(journal.as_ref(), path, &who, &profiles)?,
        None => batch_to_resume(journal.as_ref(), resume_id)?,
    };
    let records = crate::line::station::BatchFileRecords {
        index,
        validator: IsoTemplates {
            max_minutiae: usize::from(profiles.max_minutiae()),
        },
    };
    let mut ctx = StationCtx::with_source(
        journal.clone(),
        info.id,
        Box::new(records),
        side,
        who.clone(),
    );
    ctx.max_rejects = a.max_rejects;
    ctx.profiles = profiles;
    let ctx = Arc::new(ctx);
    announce(&ctx, &info)?;
    let readers = line_readers(&a, &ctx)?;
    let progress = Arc::new(Progress::new(!a.plain && std::io::stderr().is_terminal()));
    let opts = RunOptions {
        misbehave_after: a.misbehave_after.max(1),
        ..RunOptions::default()
    };
    let summary = run::run(ctx, readers, progress.clone(), opts).map_err(|e| anyhow!(e))?;
    let rep = report::build(journal.as_ref(), &info).map_err(|e| anyhow!(e))?;
    let dir = a
        .report_dir
        .clone()
        .unwrap_or_else(|| data_dir(&a.journal).join("line").join("reports"));
    let files = write_report(&rep, &dir)?;
    print_run_end(&info, &summary, &progress, &files, json);
    Ok(run_exit_code(&summary))
}

/// The issuer side of the line (its keys and CA, for every profile); a
/// key file that is refused says so with its own exit code.
fn open_side(a: &RunArgs, profiles: &Profiles) -> Result<IssuerSide> {
    IssuerSide::open_for(
        &CardArgs {
            reader: None,
            sim_image: None,
            profile: None,
            issuer_key: a.issuer_key.clone(),
            scp03_keys: a.scp03_keys.clone(),
            no_secure_channel: false,
            data_dir: a.journal.data_dir.clone(),
        }
        .side_config(),
        profiles,
    )
    .map_err(|e| match e {
        SideError::Key(k) => crate::cli::common::key_refused(k),
        other => anyhow!(RecordRefused(other.to_string())),
    })
}

/// Put back in the queue the attempts a previous run of this station left
/// in progress when it died, and say which.
fn recover_interrupted(journal: &dyn Journal, who: &Who) -> Result<()> {
    let recovered = journal.recover_interrupted(who).map_err(|e| anyhow!(e))?;
    for r in &recovered {
        eprintln!(
            "resume: attempt {} (record {}, card {}, reader {}) was interrupted by the stop; the record is back in the queue and the card will be recovered if it comes back",
            r.id,
            r.record_id,
            r.card_serial.as_deref().unwrap_or("?"),
            r.reader
        );
    }
    Ok(())
}

/// `line run`: load the batch file as a new batch (saying which records
/// were set aside) and index it.
fn load_batch(
    journal: &dyn Journal,
    path: &Path,
    who: &Who,
    profiles: &Profiles,
) -> Result<(BatchInfo, record::stream::LineIndex)> {
    let (digest, index) = scan_file(path)?;
    let (info, aside) = load_streamed(journal, path, &digest, who, profiles)?;
    print_set_aside(&info, &aside);
    Ok((info, index))
}

/// `line resume`: the batch to go on with (the latest when none is named)
/// and the index of its file, refused if the file changed since the batch
/// was loaded.
fn batch_to_resume(
    journal: &dyn Journal,
    resume_id: Option<i64>,
) -> Result<(BatchInfo, record::stream::LineIndex)> {
    let info = journal
        .batch(resume_id)
        .map_err(|e| anyhow!(e))?
        .ok_or_else(|| anyhow!(RecordRefused("no batch in the journal to resume".into())))?;
    let path = PathBuf::from(&info.path);
    let (digest, index) = scan_file(&path)?;
    if digest != info.digest {
        bail!(RecordRefused(format!(
            "batch file {} changed since batch {} was loaded (SHA-256 {} then, {} now); load the new file as a new batch",
            info.path, info.id, info.digest, digest
        )));
    }
    Ok((info, index))
}

/// Say on stderr how the batch stands before the line starts, where the
/// journal is, who works, and (with several) the profiles cards are taken
/// by.
fn announce(ctx: &StationCtx, info: &BatchInfo) -> Result<()> {
    let before = ctx.journal.summary(info.id).map_err(|e| anyhow!(e))?;
    eprintln!(
        "batch {} ({}): {} records, {} good, {} pending, {} held, {} set aside; journal {}; station {}, operator {}",
        info.id,
        info.name,
        before.records,
        before.good,
        before.pending + before.in_progress,
        before.held,
        before.invalid,
        ctx.journal.location(),
        ctx.who.station,
        ctx.who.operator
    );
    if let [_, _, ..] = ctx.profiles.names().as_slice() {
        eprintln!(
            "cards taken as the first of these profiles that recognizes them: {}",
            ctx.profiles.names().join(", ")
        );
    }
    Ok(())
}

/// The readers the line runs on: `--sim-readers` in-process slots with
/// the station's keys, else the PC/SC readers matching `--reader`.
fn line_readers(a: &RunArgs, ctx: &StationCtx) -> Result<Readers> {
    Ok(match a.sim_readers {
        Some(n) => {
            let timing = Timing::parse(&a.timing).map_err(|e| anyhow!(RecordRefused(e)))?;
            let slots = sim_slots(
                n,
                timing,
                ctx.issuer.key.expose(),
                ctx.issuer.scp03.clone(),
                &ctx.profiles,
            )?;
            Readers::Slots(slots)
        }
        None => Readers::Pcsc {
            patterns: a.readers.clone(),
        },
    })
}

/// Print the batch's final counts and the report's files (one JSON object
/// with `--json`).
fn print_run_end(
    info: &BatchInfo,
    summary: &Summary,
    progress: &Progress,
    files: &[PathBuf],
    json: bool,
) {
    if json {
        println!(
            "{}",
            json!({"batch": info, "summary": summary, "report": files})
        );
    } else {
        println!(
            "batch {} ({}): {}",
            info.id,
            info.name,
            progress.batch_line(summary)
        );
        println!(
            "report: {}",
            files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// 0 when every valid record of the batch is on a good card, else the
/// card-status code (records set aside, held, or not finished).
fn run_exit_code(summary: &Summary) -> i32 {
    if summary.finished() && summary.held == 0 && summary.invalid == 0 {
        0
    } else {
        crate::cli::common::EXIT_CARD_STATUS
    }
}

fn write_report(rep: &report::LineReport, dir: &Path) -> Result<Vec<PathBuf>> {
    crate::private::create_dir_all(dir)
        .with_context(|| crate::cli::json_error::file("creating", dir))?;
    let base = format!("batch-{}", rep.batch.id);
    let mut out = Vec::new();
    for (ext, text) in [
        (
            "json",
            serde_json::to_string_pretty(rep).unwrap_or_default(),
        ),
        ("csv", report::to_csv(rep)),
        ("html", report::to_html(rep)),
    ] {
        let p = dir.join(format!("{base}.{ext}"));
        let w = crate::private::write(&p, text.as_bytes())
            .with_context(|| crate::cli::json_error::file("writing", &p))?;
        crate::private::warn_tightened(&p, w);
        out.push(p);
    }
    Ok(out)
}

fn batch_or_latest(j: &dyn Journal, id: Option<i64>) -> Result<BatchInfo> {
    j.batch(id)
        .map_err(|e| anyhow!(e))?
        .ok_or_else(|| anyhow!("no such batch in the journal"))
}

fn print_attempts(rows: &[AttemptRow]) {
    for a in rows {
        println!(
            "  attempt {} {} {}: {} on card {}{} in {} by {} at {}, {} s{}{}",
            a.id,
            a.kind,
            a.record_id,
            a.outcome.to_uppercase(),
            a.card_serial.as_deref().unwrap_or("?"),
            crate::line::station::attempt_profile(&a.stages)
                .map(|p| format!(" ({p})"))
                .unwrap_or_default(),
            a.reader,
            a.operator,
            iso_time(a.started_at),
            a.finished_at
                .map(|f| format!("{:.1}", (f - a.started_at) as f64 / 1000.0))
                .unwrap_or_else(|| "-".into()),
            a.reason_class
                .as_deref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default(),
            a.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
}

/// `cardsmith line …`: run one subcommand and return its exit code.
pub fn line(cmd: LineCommand, json: bool) -> Result<i32> {
    match cmd {
        LineCommand::Run { batch, run } => start(Some(&batch), None, run, json),
        LineCommand::Resume { batch, run } => start(None, batch, run, json),
        LineCommand::Status { batch, journal } => status(batch, &journal, json),
        LineCommand::Record { record_id, journal } => record_history(&record_id, &journal, json),
        LineCommand::Card { serial, journal } => card_history(&serial, &journal, json),
        LineCommand::Rejects { batch, journal } => rejects(batch, &journal, json),
        LineCommand::Throughput { batch, journal } => throughput(batch, &journal, json),
        LineCommand::Report {
            batch,
            out,
            journal,
        } => report_again(batch, out, &journal),
        LineCommand::Requeue { record_id, journal } => requeue(&record_id, &journal),
        LineCommand::Events { journal } => events(&journal, json),
    }
}

/// `line status`: the counts of a batch (the latest when none is named).
fn status(batch: Option<i64>, journal: &JournalArgs, json: bool) -> Result<i32> {
    let j = open_journal(journal)?;
    let b = batch_or_latest(j.as_ref(), batch)?;
    let s = j.summary(b.id).map_err(|e| anyhow!(e))?;
    if json {
        println!("{}", json!({"batch": b, "summary": s}));
    } else {
        println!(
            "batch {} ({}), loaded {} by {}: {} records: {} good, {} pending, {} in progress, {} held, {} set aside; {} attempts ({} rejected, {} interrupted){}",
            b.id, b.name, iso_time(b.loaded_at), b.loaded_by, s.records, s.good, s.pending, s.in_progress, s.held, s.invalid, s.attempts, s.rejected, s.interrupted,
            if s.finished() { "; finished" } else { "; not finished (cardsmith line resume)" }
        );
    }
    Ok(0)
}

/// `line record`: a record's state and every attempt at it; a record the
/// journal does not know exits with the absent code.
fn record_history(record_id: &str, journal: &JournalArgs, json: bool) -> Result<i32> {
    let j = open_journal(journal)?;
    let Some(r) = j.record(record_id).map_err(|e| anyhow!(e))? else {
        let message = format!("record {record_id} is not in the journal");
        eprintln!("error: {message}");
        if json {
            println!(
                "{}",
                json!({"error": {"kind": "not_found", "exit_code": crate::cli::common::EXIT_ABSENT,
                                 "message": message, "record_id": record_id}})
            );
        }
        return Ok(crate::cli::common::EXIT_ABSENT);
    };
    let attempts = j.attempts_for_record(record_id).map_err(|e| anyhow!(e))?;
    if json {
        println!("{}", json!({"record": r, "attempts": attempts}));
    } else {
        println!(
            "record {} (batch {}, line {}): {}{}{}",
            r.record_id,
            r.batch_id,
            r.line,
            r.state.to_uppercase(),
            r.card_serial
                .as_deref()
                .map(|s| format!(" on card {s}"))
                .unwrap_or_default(),
            r.reason
                .as_deref()
                .map(|s| format!("; last reason: {s}"))
                .unwrap_or_default()
        );
        print_attempts(&attempts);
    }
    Ok(0)
}

/// `line card`: what the journal knows of a card (by serial) and every
/// attempt on it; a card it does not know exits with the absent code.
fn card_history(serial: &str, journal: &JournalArgs, json: bool) -> Result<i32> {
    let j = open_journal(journal)?;
    let serial = serial.to_ascii_uppercase();
    let known = j.card(&serial).map_err(|e| anyhow!(e))?;
    let attempts = j.attempts_for_card(&serial).map_err(|e| anyhow!(e))?;
    if json {
        println!(
            "{}",
            json!({"serial": serial, "card": known, "attempts": attempts})
        );
    } else {
        println!("card {serial}: {}", card_state(&known));
        print_attempts(&attempts);
    }
    Ok(if known == CardKnown::Unknown {
        crate::cli::common::EXIT_ABSENT
    } else {
        0
    })
}

/// What the journal knows of a card, in words.
fn card_state(known: &CardKnown) -> String {
    match known {
        CardKnown::Unknown => "unknown to the journal".to_string(),
        CardKnown::Good { record_id, .. } => format!("GOOD: holds record {record_id}"),
        CardKnown::Rejected { record_id, reason, terminated } => format!(
            "REJECTED{}{}: {reason}",
            record_id.as_deref().map(|r| format!(" (record {r})")).unwrap_or_default(),
            if *terminated { ", terminated" } else { "" }
        ),
        CardKnown::Interrupted { record_id, .. } => format!(
            "INTERRUPTED while personalizing record {record_id}; not a good card (recovered or rejected if it comes back)"
        ),
        CardKnown::InProgress { record_id, station, .. } => {
            format!("IN PROGRESS: record {record_id} at station {station}")
        }
    }
}

/// `line rejects`: rejected and interrupted attempts counted by reason.
fn rejects(batch: Option<i64>, journal: &JournalArgs, json: bool) -> Result<i32> {
    let j = open_journal(journal)?;
    let rows = j.rejects_by_reason(batch).map_err(|e| anyhow!(e))?;
    if json {
        println!(
            "{}",
            json!(rows
                .iter()
                .map(|(r, n)| json!({"reason": r, "count": n}))
                .collect::<Vec<_>>())
        );
    } else if rows.is_empty() {
        println!("no rejects");
    } else {
        for (r, n) in rows {
            println!("{n:>6}  {r}");
        }
    }
    Ok(0)
}

/// `line throughput`: good, rejected and interrupted cards by reader and
/// hour, as a table.
fn throughput(batch: Option<i64>, journal: &JournalArgs, json: bool) -> Result<i32> {
    let j = open_journal(journal)?;
    let rows = j.throughput(batch).map_err(|e| anyhow!(e))?;
    if json {
        println!("{}", json!(rows));
    } else {
        println!(
            "{:<20} {:<32} {:>6} {:>9} {:>12}",
            "hour (UTC)", "reader", "good", "rejected", "interrupted"
        );
        for r in rows {
            println!(
                "{:<20} {:<32} {:>6} {:>9} {:>12}",
                iso_time(r.hour).get(..16).unwrap_or(""),
                r.reader,
                r.good,
                r.rejected,
                r.interrupted
            );
        }
    }
    Ok(0)
}

/// `line report`: write a batch's report again (into `out`, default the
/// data directory's reports) and list its files.
fn report_again(batch: Option<i64>, out: Option<PathBuf>, journal: &JournalArgs) -> Result<i32> {
    let j = open_journal(journal)?;
    let b = batch_or_latest(j.as_ref(), batch)?;
    let rep = report::build(j.as_ref(), &b).map_err(|e| anyhow!(e))?;
    let dir = out.unwrap_or_else(|| data_dir(journal).join("line").join("reports"));
    let files = write_report(&rep, &dir)?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(0)
}

/// `line requeue`: put a held record back in the queue, journaled with the
/// operator.
fn requeue(record_id: &str, journal: &JournalArgs) -> Result<i32> {
    let j = open_journal(journal)?;
    j.requeue(&who(journal), record_id)
        .map_err(|e| anyhow!(e))?;
    println!("record {record_id} is back in the queue");
    Ok(0)
}

/// `line events`: the operator and line events (readers added, removed,
/// out of rotation, resumes).
fn events(journal: &JournalArgs, json: bool) -> Result<i32> {
    let j = open_journal(journal)?;
    let rows = j.events(0).map_err(|e| anyhow!(e))?;
    if json {
        println!("{}", json!(rows));
    } else {
        for e in rows {
            println!(
                "{} {} {} {}{}: {}",
                iso_time(e.at),
                e.station,
                e.operator,
                e.kind,
                e.reader
                    .as_deref()
                    .map(|r| format!(" [{r}]"))
                    .unwrap_or_default(),
                e.detail
            );
        }
    }
    Ok(0)
}
