//! `cardsmith perso`, `verify`, `read`, `sample-records` and `bio-rates`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use crate::biometric;
use crate::cli::common::{EXIT_CARD_STATUS, EXIT_TRANSPORT, EXIT_USAGE};
use crate::record::{self, date::JalaliDate, FingerPosition};
use crate::sim::{SimCard, SimConfig};
use crate::transport::pcsc::{ConnectOptions, PcscTransport};
use crate::transport::sim::SimTransport;
use crate::transport::{Channel, ExchangeOptions};

use crate::perso::engine::{self, CardInput, VerifyReport};
use crate::perso::input;
use crate::perso::profile::Profile;

pub use crate::cli::common::{CardArgs, RecordRefused, SideFromArgs};
use crate::perso::input::{compact_template, IsoTemplates};
use crate::perso::samples::{sample_lines, synthetic_capture, ENROLMENT_CAPTURE, LIVE_CAPTURE};
use crate::perso::side::IssuerSide;

/// `cardsmith perso`
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Examples:\n  cardsmith sample-records --count 1 > rec.json && cardsmith perso --record rec.json --reader 0\n  cardsmith perso --record rec.json --sim-image /tmp/card.json --json\n\nExit codes: 0 personalized and verified, 2 bad record/profile/key (no card touched), 3 no reader or card, 4 personalization refused or verification failed, 5 transport failure."
)]
pub struct PersoArgs {
    /// The citizen record (one JSON object; docs/record-format.md).
    #[arg(long, value_name = "FILE")]
    pub record: PathBuf,
    #[command(flatten)]
    pub card: CardArgs,
    /// Skip the read-back verification (not recommended).
    #[arg(long)]
    pub no_verify: bool,
}

/// `cardsmith verify`
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Examples:\n  cardsmith verify --record rec.json --reader 0\n  cardsmith verify --record rec.json --reader 0 --json\n\nExit codes: 0 every check passed, 2 bad record, 4 a check failed, 3/5 reader or transport problem."
)]
pub struct VerifyArgs {
    #[arg(long, value_name = "FILE")]
    pub record: PathBuf,
    /// The register that keeps the CA's revocations (SQLite file or postgresql:// URL). Default: $CARDSMITH_JOURNAL, else <data dir>/line/journal.sqlite when it exists; without one, revocation is not checked and the report says so.
    #[arg(long, value_name = "FILE|URL")]
    pub journal: Option<String>,
    #[command(flatten)]
    pub card: CardArgs,
}

/// `cardsmith read`
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Examples:\n  cardsmith read --reader 0\n  cardsmith read --reader 0 --photo holder.jpg --json"
)]
pub struct ReadArgs {
    #[command(flatten)]
    pub card: CardArgs,
    /// Save the holder's photo (JPEG) to this file.
    #[arg(long, value_name = "FILE")]
    pub photo: Option<PathBuf>,
}

/// `cardsmith sample-records`
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Examples:\n  cardsmith sample-records --count 5 > batch.jsonl\n  cardsmith sample-records --count 1000 --seed 42 --out batch.jsonl\n  cardsmith sample-records --count 3 --live-captures captures/   # a second capture of each finger, as a scanner at the counter would give"
)]
pub struct SampleArgs {
    #[arg(long, default_value_t = 5)]
    pub count: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The request date (Solar Hijri, YYYY/MM/DD); default today.
    #[arg(long)]
    pub request_date: Option<String>,
    /// Write the JSON lines here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write a different capture of each person's fingers to DIR/<record id>-<finger>.iso (ISO/IEC 19794-2).
    #[arg(long, value_name = "DIR")]
    pub live_captures: Option<PathBuf>,
}

/// `cardsmith bio-rates`
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Examples:\n  cardsmith bio-rates\n  cardsmith bio-rates --fingers 1000 --seed 11 --max-minutiae 60 --json"
)]
pub struct BioRatesArgs {
    /// Synthetic fingers: one genuine pair each, 10 impostor pairs each.
    #[arg(long, default_value_t = 500)]
    pub fingers: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The card's limit on minutiae per template.
    #[arg(long, default_value_t = 60)]
    pub max_minutiae: usize,
}

/// Load exactly one valid record from `path`; every problem is reported.
fn load_one(path: &Path, p: &Profile) -> Result<record::Record> {
    let v = IsoTemplates {
        max_minutiae: usize::from(p.max_minutiae),
    };
    let batch = record::load_records(path, &v)
        .with_context(|| crate::cli::json_error::file("reading record file", path))?;
    for w in &batch.warnings {
        eprintln!("warning: {w}");
    }
    if !batch.bad.is_empty() {
        let list: Vec<String> = batch.bad.iter().map(|e| format!("  {e}")).collect();
        return Err(anyhow!(crate::cli::json_error::RecordsRefused {
            message: format!(
                "the record was refused before any card was touched:\n{}",
                list.join("\n")
            ),
            errors: batch.bad,
        }));
    }
    match batch.good.len() {
        1 => Ok(batch
            .good
            .into_iter()
            .next()
            .map(|(_, r)| r)
            .unwrap_or_else(|| unreachable!())),
        0 => Err(anyhow!(RecordRefused(format!(
            "{}: no record in the file",
            path.display()
        )))),
        n => Err(anyhow!(RecordRefused(format!(
            "{}: {n} records; perso takes one (use the line command for batches)",
            path.display()
        )))),
    }
}

/// The simulated card OS a new `--sim-image` card is made of: the first
/// whose blank card the profile recognizes by its ATR (the reference OS for
/// a profile that names no ATR).
pub fn sim_config_for(p: &crate::perso::profile::Profile) -> SimConfig {
    [SimConfig::default(), SimConfig::domestic()]
        .into_iter()
        .find(|c| p.recognizes.recognizes(&SimCard::blank(c.clone()).atr()))
        .unwrap_or_default()
}

/// Open the card: a reader, or an in-process simulated card image.
pub fn open_channel(a: &CardArgs, side: &IssuerSide) -> Result<Channel> {
    if let Some(img) = &a.sim_image {
        if let Some(dir) = img.parent() {
            crate::private::create_dir_all(dir)
                .with_context(|| crate::cli::json_error::file("creating", dir))?;
        }
        let provision = crate::sim::Provision {
            issuer_key: Some(side.key.expose()),
            scp03: side.scp03.as_ref().map(|k| &k.keys),
        };
        let card = SimCard::open_image_provisioned(img, sim_config_for(&side.profile), provision)
            .context("opening the simulated card image")?;
        let mut card = card;
        card.power_on();
        return Ok(Channel::new(
            Box::new(SimTransport::new(card)),
            ExchangeOptions::default(),
        ));
    }
    let t = PcscTransport::connect(a.reader.as_deref(), ConnectOptions::default())?;
    Ok(Channel::new(Box::new(t), ExchangeOptions::default()))
}

fn card_input(side: &IssuerSide, r: &record::Record) -> Result<CardInput> {
    input::card_input(r, &side.profile, input::today(), &compact_template)
        .map_err(|e| anyhow!(RecordRefused(format!("record {}: {e}", r.record_id()))))
}

fn print_verify(rep: &VerifyReport) {
    println!(
        "verify card {} against record {}:",
        rep.serial.as_deref().unwrap_or("?"),
        rep.record_id
    );
    for c in &rep.checks {
        println!(
            "  {} {}: {}",
            if c.passed { "PASS" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    println!(
        "{}",
        if rep.passed {
            "PASS: the card holds the record, and every check passed"
        } else {
            "FAIL"
        }
    );
}

/// Exit code for an error: refused input 2, transport 5 or 3, else 1.
pub fn error_code(e: &anyhow::Error) -> i32 {
    if e.downcast_ref::<RecordRefused>().is_some() {
        EXIT_USAGE
    } else {
        crate::cli::common::exit_code(e)
    }
}

pub fn perso(a: PersoArgs, json: bool) -> Result<i32> {
    let side = IssuerSide::load(&a.card)?;
    let rec = load_one(&a.record, &side.profile)?;
    let input = card_input(&side, &rec)?;
    let mut ch = open_channel(&a.card, &side)?;
    let iss = side.issuer();
    let started = std::time::Instant::now();
    let result = engine::personalize(&mut ch, &iss, &input);
    let perso_time = started.elapsed();
    let done = match result {
        Ok(r) => r,
        Err(e) => {
            let code = if e.transport {
                EXIT_TRANSPORT
            } else {
                EXIT_CARD_STATUS
            };
            let message = format!("record {}: {e}", input.record_id);
            if json {
                // The error document (README, "Errors under --json"), with
                // the stage that failed.
                println!(
                    "{}",
                    json!({"record_id": input.record_id, "personalized": false,
                           "error": {"kind": if e.transport { "transport" } else { "card_status" },
                                     "exit_code": code, "message": message,
                                     "stage": e.stage, "record_id": input.record_id}})
                );
            } else {
                eprintln!("error: {message}");
            }
            return Ok(code);
        }
    };
    let rep = if a.no_verify {
        None
    } else {
        Some(engine::verify(&mut ch, &iss, &input)?)
    };
    if json {
        println!(
            "{}",
            json!({"record_id": input.record_id, "personalized": true, "perso": done,
                   "millis": perso_time.as_millis() as u64, "verify": rep})
        );
    } else {
        println!(
            "personalized card {} with record {} ({} APDUs, {} bytes written, {} ms, {})",
            done.serial,
            input.record_id,
            done.apdus,
            done.bytes_written,
            perso_time.as_millis(),
            done.secure_channel.as_deref().unwrap_or("in clear")
        );
        if let Some(r) = &rep {
            print_verify(r);
        }
    }
    Ok(match rep {
        Some(r) if !r.passed => EXIT_CARD_STATUS,
        _ => 0,
    })
}

pub fn verify(a: VerifyArgs, json: bool) -> Result<i32> {
    let mut side = IssuerSide::load(&a.card)?;
    let ja = crate::cli::register::JournalArgs {
        journal: a.journal.clone(),
        lease: None,
        data_dir: a.card.data_dir.clone(),
        operator: None,
        station: None,
    };
    let (location, named) = crate::cli::register::journal_location(&ja);
    if named
        || crate::register::pgconf::is_url(&location)
        || std::path::Path::new(&location).exists()
    {
        side.ca.set_register(std::sync::Arc::new(
            crate::register::journal::JournalRevocations(crate::cli::register::open_journal(&ja)?),
        ));
    }
    let rec = load_one(&a.record, &side.profile)?;
    let input = card_input(&side, &rec)?;
    let mut ch = open_channel(&a.card, &side)?;
    let rep = engine::verify(&mut ch, &side.issuer(), &input)?;
    if json {
        println!("{}", serde_json::to_string(&rep)?);
    } else {
        print_verify(&rep);
    }
    Ok(if rep.passed { 0 } else { EXIT_CARD_STATUS })
}

pub fn read(a: ReadArgs, json: bool) -> Result<i32> {
    let profile = Profile::load_or_reference(a.card.profile.as_deref())
        .map_err(|e| anyhow!(RecordRefused(e.to_string())))?;
    let mut ch = if a.card.sim_image.is_some() {
        let side = IssuerSide::load(&a.card)?;
        open_channel(&a.card, &side)?
    } else {
        let t = PcscTransport::connect(a.card.reader.as_deref(), ConnectOptions::default())?;
        Channel::new(Box::new(t), ExchangeOptions::default())
    };
    let dump = engine::read(&mut ch, &profile)?;
    if let (Some(path), Some(photo)) = (&a.photo, &dump.photo) {
        let w = crate::private::write(path, photo)
            .with_context(|| crate::cli::json_error::file("writing", path))?;
        crate::private::warn_tightened(path, w);
    }
    if json {
        println!("{}", serde_json::to_string(&dump)?);
        return Ok(0);
    }
    println!("card {} ({})", dump.serial, dump.life_cycle);
    for g in &dump.groups {
        println!("DG{} {}", g.number, g.name);
        for (k, v) in &g.fields {
            println!("  {k:<30} {v}");
        }
        for p in &g.problems {
            println!("  problem: {p}");
        }
    }
    println!("fingerprints (match-on-card; the templates never leave the card)");
    for f in &dump.fingers {
        println!(
            "  reference {:02X}: {} ({} of {} tries left)",
            f.reference,
            f.position,
            f.tries_left.map_or("?".into(), |t| t.to_string()),
            f.try_limit.map_or("?".into(), |t| t.to_string())
        );
    }
    println!("PINs");
    for p in dump.pins.iter().filter(|p| !p.biometric) {
        println!(
            "  reference {:02X}: {} of {} tries left{}{}{}",
            p.reference,
            p.tries_left,
            p.try_limit,
            if p.transport { ", transport state" } else { "" },
            if p.blocked { ", blocked" } else { "" },
            if p.is_puk { " (PUK)" } else { "" }
        );
    }
    println!("certificates");
    for c in &dump.certificates {
        match &c.summary {
            Ok(s) => println!("  {} key:\n{}", c.key, indent(&s.to_string(), 4)),
            Err(e) => println!("  {} key: {e}", c.key),
        }
    }
    if let (Some(path), Some(_)) = (&a.photo, &dump.photo) {
        println!("photo saved to {}", path.display());
    }
    Ok(0)
}

fn indent(s: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    s.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn sample_records(a: SampleArgs) -> Result<i32> {
    let date = match &a.request_date {
        Some(s) => JalaliDate::parse(s)
            .map_err(|e| anyhow!(RecordRefused(format!("--request-date {s:?}: {e}"))))?,
        None => input::today(),
    };
    let mut persons: Vec<(u64, FingerPosition)> = Vec::new();
    let lines = record::sample_records(a.count, a.seed, date, &mut |person, pos| {
        persons.push((person, pos));
        synthetic_capture(person, pos, ENROLMENT_CAPTURE ^ person)
    });
    let mut out: Box<dyn std::io::Write> = match &a.out {
        Some(p) => {
            let (f, w) = crate::private::create(p)
                .with_context(|| crate::cli::json_error::file("creating", p))?;
            crate::private::warn_tightened(p, w);
            Box::new(std::io::BufWriter::new(f))
        }
        None => Box::new(std::io::stdout().lock()),
    };
    for l in &lines {
        writeln!(out, "{l}")?;
    }
    out.flush()?;
    if let Some(dir) = &a.live_captures {
        crate::private::create_dir_all(dir)
            .with_context(|| crate::cli::json_error::file("creating", dir))?;
        // The callback ran once per finger, in record order.
        let mut it = persons.iter();
        for l in &lines {
            let v: serde_json::Value = serde_json::from_str(l)?;
            let id = v
                .get("record_id")
                .and_then(|x| x.as_str())
                .unwrap_or("record")
                .to_string();
            let n = v
                .get("fingerprints")
                .and_then(|x| x.as_array())
                .map_or(0, Vec::len);
            for _ in 0..n {
                let Some((person, pos)) = it.next() else {
                    break;
                };
                let path = dir.join(format!("{id}-{}.iso", pos.as_str()));
                let w = crate::private::write(
                    &path,
                    &synthetic_capture(*person, *pos, LIVE_CAPTURE ^ person),
                )
                .with_context(|| crate::cli::json_error::file("writing", &path))?;
                crate::private::warn_tightened(&path, w);
            }
        }
    }
    Ok(0)
}

pub fn bio_rates(a: BioRatesArgs, json: bool) -> Result<i32> {
    if a.fingers < 2 {
        bail!(RecordRefused(
            "--fingers: at least 2 are needed for impostor pairs".into()
        ));
    }
    let r = biometric::evaluate(a.fingers, a.seed, a.max_minutiae);
    if json {
        println!(
            "{}",
            json!({"fingers": r.fingers, "seed": r.seed, "max_minutiae": r.max_minutiae,
                   "threshold": r.threshold, "genuine_pairs": r.genuine_pairs,
                   "impostor_pairs": r.impostor_pairs, "false_non_matches": r.false_non_matches,
                   "false_matches": r.false_matches, "fnmr": r.fnmr, "fmr": r.fmr,
                   "mean_minutiae": r.mean_minutiae})
        );
    } else {
        print!("{r}");
    }
    Ok(0)
}

/// `cardsmith profile …`: card profiles.
#[derive(Debug, clap::Subcommand)]
pub enum ProfileCommand {
    /// Validate a card profile, naming the file, line and key of every problem, then dry-run it: personalize, verify and read a simulated card of that profile in a throwaway data directory (its own issuer key, CA and SCP03 keys).
    #[command(
        after_help = "Examples:\n  cardsmith profile check apdu-scripts/reference-card/profile.toml\n  cardsmith profile check --no-dry-run my-card/profile.toml --json"
    )]
    Check(ProfileCheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct ProfileCheckArgs {
    /// The profile file (profile.toml).
    pub profile: PathBuf,
    /// Only validate the profile; do not personalize a simulated card with it.
    #[arg(long)]
    pub no_dry_run: bool,
}

pub fn profile(cmd: ProfileCommand, json: bool) -> Result<i32> {
    match cmd {
        ProfileCommand::Check(a) => profile_check(a, json),
    }
}

/// What a dry run of a profile did on its simulated card.
#[derive(Debug, serde::Serialize)]
struct DryRun {
    serial: String,
    perso_apdus: usize,
    secure_channel: Option<String>,
    verify_passed: bool,
    verify_failures: Vec<String>,
    read_data_groups: usize,
}

fn profile_check(a: ProfileCheckArgs, json: bool) -> Result<i32> {
    let profile = Profile::load(&a.profile).map_err(|e| anyhow!(RecordRefused(e.to_string())))?;
    let summary = format!(
        "{} data groups, {} keys, {}",
        profile.data_groups.len(),
        profile.keys.len(),
        match &profile.security_domain {
            Some(_) => "a security domain (SCP03)",
            None => "no security domain",
        }
    );
    if a.no_dry_run {
        if json {
            println!(
                "{}",
                json!({"profile": a.profile, "valid": true, "summary": summary})
            );
        } else {
            println!("profile {}: valid ({summary})", a.profile.display());
        }
        return Ok(0);
    }
    let dir = std::env::temp_dir().join(format!(
        "cardsmith-profile-check-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    let run = dry_run(&a.profile, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let run = run?;
    let ok = run.verify_passed;
    if json {
        println!(
            "{}",
            json!({"profile": a.profile, "valid": true, "summary": summary, "dry_run": run})
        );
    } else {
        println!("profile {}: valid ({summary})", a.profile.display());
        println!(
            "dry run on a simulated card {}: personalized in {} APDUs{}; verify {}; read {} data groups back",
            run.serial,
            run.perso_apdus,
            run.secure_channel
                .as_deref()
                .map(|s| format!(" over {s}"))
                .unwrap_or_else(|| " in clear".into()),
            if ok {
                "passed".to_string()
            } else {
                format!("FAILED: {}", run.verify_failures.join("; "))
            },
            run.read_data_groups
        );
    }
    Ok(if ok { 0 } else { EXIT_CARD_STATUS })
}

/// Personalize, verify and read a blank simulated card with the profile at
/// `path`, everything (keys, CA, the card's image) in `dir`: never the
/// station's own keys, whatever the environment names.
fn dry_run(path: &Path, dir: &Path) -> Result<DryRun> {
    crate::private::create_dir_all(dir)
        .with_context(|| crate::cli::json_error::file("creating", dir))?;
    crate::perso::keys::create_default(&dir.join("issuer-key"))?;
    crate::scp03::keyfile::Scp03Keys::create_default(&dir.join("scp03-keys"))?;
    let card = CardArgs {
        sim_image: Some(dir.join("card.json")),
        profile: Some(path.to_path_buf()),
        issuer_key: Some(dir.join("issuer-key")),
        scp03_keys: Some(dir.join("scp03-keys")),
        data_dir: Some(dir.to_path_buf()),
        ..CardArgs::default()
    };
    let side = IssuerSide::load(&card)?;
    let line = sample_lines(1, 1, input::today())
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no sample record"))?;
    let v = IsoTemplates {
        max_minutiae: usize::from(side.profile.max_minutiae),
    };
    let rec = record::parse_record(&line, "sample record", &v).map_err(|errs| {
        anyhow!(RecordRefused(format!(
            "the sample record does not fit the profile: {}",
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )))
    })?;
    let input = card_input(&side, &rec)?;
    let mut ch = open_channel(&card, &side)?;
    let done =
        engine::personalize(&mut ch, &side.issuer(), &input).context("dry run: personalization")?;
    let rep = engine::verify(&mut ch, &side.issuer(), &input).context("dry run: verify")?;
    let dump = engine::read(&mut ch, &side.profile).context("dry run: read")?;
    Ok(DryRun {
        serial: done.serial,
        perso_apdus: done.apdus,
        secure_channel: done.secure_channel,
        verify_passed: rep.passed,
        verify_failures: rep.failures().into_iter().map(str::to_string).collect(),
        read_data_groups: dump.groups.len(),
    })
}
