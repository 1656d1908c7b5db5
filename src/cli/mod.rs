//! The command line: argument parsing, output, exit codes.
//!
//! Two phases, as in ripgrep: clap validates what the user typed, then each
//! subcommand builds the plain configuration values and working objects of
//! the host library (`cardsmith-host`, which has no clap). Every command
//! takes `--json`. anyhow is used only in this crate, at the edge; the
//! library's typed errors are downcast once, in [`exit_code`], to pick the
//! exit code:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other failure (I/O, bad file) |
//! | 2 | bad usage (clap's own code, and bad APDU hex) |
//! | 3 | no reader, no card, or no PC/SC service |
//! | 4 | the card answered an error status word |
//! | 5 | transport failure (card reset, mute, PC/SC error) |

pub mod activate;
pub mod common;
pub mod errors;
pub mod json_error;
pub mod line;
pub mod perso;
pub mod pki;
pub mod programme;
pub mod register;
pub mod scp03;
pub mod script;
pub mod web;

use crate::apdu::StatusWord;
use crate::atr;
pub use crate::cli::common::{
    default_data_dir, exit_code, CardStatusError, EXIT_ABSENT, EXIT_CARD_STATUS, EXIT_OTHER,
    EXIT_TRANSPORT, EXIT_USAGE,
};
use crate::hex;
use crate::sim::{self, SimCard, SimConfig};
use crate::tlv;
use crate::transport::pcsc::{self as pc, CardEvent, ConnectOptions};
use crate::transport::{Channel, ExchangeError, ExchangeOptions, Protocol, TransportError};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What `--trace-personal-data` says on stderr before anything else.
pub const PERSONAL_DATA_WARNING: &str = "warning: --trace-personal-data: APDU traces and script transcripts of this session show citizens' personal data (names, dates, national ID, photo, certificates) in clear; do not attach them to a ticket or keep them. Secrets (PINs, keys, templates) stay redacted.";

#[derive(Parser, Debug)]
#[command(
    name = "cardsmith",
    version,
    about = "Personalize, read and test smart cards over PC/SC",
    after_help = "Exit codes: 0 ok, 1 other failure, 2 bad usage, 3 no reader/card/service, 4 card error status, 5 transport failure.\nSet RUST_LOG=cardsmith::apdu=trace to log every APDU (secrets are redacted, personal data shows as PERSONAL(n bytes))."
)]
pub struct Cli {
    /// Machine-readable output (one JSON document on stdout, errors included).
    #[arg(long, global = true)]
    pub json: bool,
    /// Show citizens' personal data (names, dates, national ID, photo, certificates) in APDU traces and script transcripts, for a debugging session. Secrets stay redacted.
    #[arg(long, global = true)]
    pub trace_personal_data: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Personalize a blank card with a citizen record, then verify it by reading it back.
    Perso(crate::cli::perso::PersoArgs),
    /// Check a personalized card against its record: data groups, security object, keys, templates, PINs.
    Verify(crate::cli::perso::VerifyArgs),
    /// Show what a personalized card holds (names, dates in both calendars, certificates, template summary).
    Read(crate::cli::perso::ReadArgs),
    /// Card profiles: `profile check` validates one and dry-runs it on a simulated card.
    #[command(subcommand)]
    Profile(crate::cli::perso::ProfileCommand),
    /// Generate realistic synthetic citizen records (JSON lines) for demos, tests and benchmarks.
    SampleRecords(crate::cli::perso::SampleArgs),
    /// Measure the match-on-card matcher's false-match and false-non-match rates on synthetic fingers.
    BioRates(crate::cli::perso::BioRatesArgs),
    /// The personalization line: a batch across many readers, with a journal that loses nothing.
    #[command(subcommand)]
    Line(crate::cli::line::LineCommand),
    /// The journal itself: schema migrations, register logins, the one-time copy of an SQLite journal into PostgreSQL.
    #[command(subcommand)]
    Journal(crate::cli::register::JournalCommand),
    /// The local test CA: `ca crl` issues a signed revocation list of the certificates it revoked.
    #[command(subcommand)]
    Ca(crate::cli::pki::CaCommand),
    /// The programme's view: request-to-card time against the one-month target, backlog by age, uncollected cards, per office and consulate.
    #[command(subcommand)]
    Programme(crate::cli::programme::ProgrammeCommand),
    /// GlobalPlatform SCP03 with a card's security domain: check the keys, rotate them.
    #[command(subcommand)]
    Scp03(crate::cli::scp03::Scp03Command),
    /// The pickup counter: activate a card with its holder, journal the delivery, replacements and PIN unblock.
    #[command(subcommand)]
    Activate(crate::cli::activate::ActivateCommand),
    /// The pickup counter as a web station for a browser (Persian and English), and its operator accounts.
    #[command(subcommand)]
    Counter(crate::cli::web::CounterCommand),
    /// Run APDU scripts (scriptor-compatible, with expectations, variables, test cases).
    Run(crate::cli::script::RunArgs),
    /// Replay a transcript recorded with `run --record` against a fresh simulated card.
    #[command(
        after_help = "Examples:\n  cardsmith run --reader 0 --record card.json apdu-scripts/smoke.apdu\n  cardsmith replay card.json --out replayed.json"
    )]
    Replay(crate::cli::script::ReplayArgs),
    /// Compare two transcripts APDU by APDU.
    #[command(
        after_help = "Examples:\n  cardsmith diff card.json replayed.json\n  cardsmith diff --json a.json b.json"
    )]
    Diff(crate::cli::script::DiffArgs),
    /// List PC/SC readers and whether a card is present.
    #[command(
        after_help = "Examples:\n  cardsmith readers\n  cardsmith readers --wait insert --timeout 30\n  cardsmith readers --wait remove --reader 'Virtual PCD 00 00' --json"
    )]
    Readers {
        /// Wait until a card is inserted into (or removed from) a reader.
        #[arg(long, value_enum)]
        wait: Option<WaitFor>,
        /// With --wait: the reader to watch (index, exact name, or unique substring).
        #[arg(long, short)]
        reader: Option<String>,
        /// With --wait: give up after this many seconds.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// Decode an ATR: from the card in a reader, or given as hex.
    #[command(
        after_help = "Examples:\n  cardsmith atr --reader 0\n  cardsmith atr '3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A'\n  cardsmith atr 3B:02:14:50 --json"
    )]
    Atr {
        /// The ATR as hex (spaces, colons or none). Without it, the card in --reader.
        hex: Option<String>,
        #[arg(long, short)]
        reader: Option<String>,
        /// The ATR list to match against.
        #[arg(long, default_value = atr::list::AtrList::DEFAULT_PATH)]
        list: PathBuf,
    },
    /// Send APDUs to a card and show each response with its status meaning, decoded TLV and time.
    #[command(
        after_help = "Examples:\n  cardsmith send 00A40000023F00\n  cardsmith send --reader 'PCD 00 01' '00 84 00 00 08' '00 A4 00 04 02 3F 00 00'\n  cardsmith send --raw 00C0000010\n  cardsmith send --secret '00 20 00 01 04 31 32 33 34'   # data field never shown"
    )]
    Send {
        /// APDUs in hex.
        #[arg(required = true)]
        apdus: Vec<String>,
        #[arg(long, short)]
        reader: Option<String>,
        /// No automatic GET RESPONSE on 61xx and no re-send on 6Cxx.
        #[arg(long)]
        raw: bool,
        /// No automatic GET RESPONSE on 61xx.
        #[arg(long)]
        no_get_response: bool,
        /// No automatic re-send on 6Cxx.
        #[arg(long)]
        no_resend: bool,
        /// Connect exclusively (no other process can use the card meanwhile).
        #[arg(long)]
        exclusive: bool,
        /// Protocol to ask for (default: whichever the card and reader agree on).
        #[arg(long, value_enum)]
        protocol: Option<ProtoArg>,
        /// Treat the data fields as secret: shown as REDACTED.
        #[arg(long)]
        secret: bool,
        /// Keep sending after an error status word.
        #[arg(long)]
        keep_going: bool,
        /// Do not decode response data as TLV.
        #[arg(long)]
        no_tlv: bool,
    },
    /// Run simulated blank cards on the vpcd virtual reader slots (until Ctrl-C).
    #[command(
        after_help = "Examples:\n  cardsmith sim                         # one card in slot 0 (\"Virtual PCD 00 00\")\n  cardsmith sim --slots 0,1             # two cards\n  cardsmith sim --image /tmp/card.json  # keep the card's state in this file\n  cardsmith sim --t0 --no-extended      # a T=0 card without extended length\n  cardsmith sim --os domestic --no-security-domain   # the domestic card OS, personalized in clear"
    )]
    Sim(SimArgs),
}

// `sim`'s flags. No doc comment: clap would take it for the subcommand's
// about, which is `Command::Sim`'s.
#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// vpcd slots to put a card in (0 and 1 with Debian's vpcd).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    slots: Vec<u16>,
    /// Card image file (state survives restarts). With several slots, the slot number is appended.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Directory for card images when --image is not given.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Start from a fresh blank card even if an image exists.
    #[arg(long)]
    fresh: bool,
    /// The card OS: reference, or domestic (T=0, factory-made file system, proprietary commands; docs/simulated-card.md). A domestic card ignores --t0, --no-extended, --no-chaining and --force-get-response.
    #[arg(long, value_enum, default_value = "reference")]
    os: OsArg,
    /// Offer T=0 instead of T=1 (responses with data come as 61xx).
    #[arg(long)]
    t0: bool,
    /// Do not offer extended length.
    #[arg(long)]
    no_extended: bool,
    /// Do not offer command chaining.
    #[arg(long)]
    no_chaining: bool,
    /// Answer every response carrying data with 61xx (GET RESPONSE needed).
    #[arg(long)]
    force_get_response: bool,
    /// Fault: pull the card when APDU number K arrives.
    #[arg(long)]
    remove_at: Option<u64>,
    /// Fault: delay every answer by this many milliseconds.
    #[arg(long)]
    delay_ms: Option<u64>,
    /// Fault: stop answering from APDU number K on.
    #[arg(long)]
    mute_from: Option<u64>,
    /// Stop after this many seconds (default: run until killed).
    #[arg(long)]
    seconds: Option<f64>,
    /// The issuer transport key new blank cards get (hex file, mode 600). Default: $CARDSMITH_ISSUER_KEY, else <data dir>/issuer-key.
    #[arg(long, value_name = "FILE")]
    issuer_key: Option<PathBuf>,
    /// New blank cards get no issuer key and no security domain (anyone may personalize them).
    #[arg(long, conflicts_with = "issuer_key")]
    no_issuer_key: bool,
    /// The SCP03 keys new blank cards' security domain gets (key file, mode 600; docs/scp03.md). Default: $CARDSMITH_SCP03_KEYS, else <data dir>/scp03-keys.
    #[arg(long, value_name = "FILE", conflicts_with = "no_issuer_key")]
    scp03_keys: Option<PathBuf>,
    /// New blank cards get no security domain (personalization in clear).
    #[arg(long, conflicts_with = "scp03_keys")]
    no_security_domain: bool,
    /// Card handler mode: keep feeding fresh blank cards into the readers; a card leaves when the host powers it down after using it, and is saved in DIR.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["image", "fresh", "remove_at", "mute_from"])]
    feed: Option<PathBuf>,
    /// With --feed: use the first N cardsmith line readers ("Cardsmith Line 01" …, see scripts/setup.sh) instead of the vpcd slots.
    #[arg(long, value_name = "N", requires = "feed")]
    line_readers: Option<u16>,
    /// With --feed: stop after this many cards in total.
    #[arg(long, requires = "feed")]
    feed_count: Option<u64>,
    /// With --feed: time to move a card out and the next one in, in milliseconds.
    #[arg(long, default_value_t = 200, requires = "feed")]
    handling_ms: u64,
    /// The cards' timing model: none, typical, slow, fast, or e.g. latency=20ms,baud=115200,page=64,page-write=3ms,keygen=120ms.
    #[arg(long, default_value = "none")]
    timing: String,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum WaitFor {
    Insert,
    Remove,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum OsArg {
    Reference,
    Domestic,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ProtoArg {
    T0,
    T1,
}

/// Run the command; Ok carries the exit code for commands that have their
/// own verdict (scripts: 4 when an expectation failed).
pub fn run(cli: Cli) -> Result<i32> {
    let json = cli.json;
    if cli.trace_personal_data {
        crate::apdu::show_personal_data(true);
        eprintln!("{PERSONAL_DATA_WARNING}");
    }
    match cli.command {
        Command::Run(args) => return crate::cli::script::run(args, json),
        Command::Replay(args) => return crate::cli::script::replay_cmd(args, json),
        Command::Diff(args) => return crate::cli::script::diff_cmd(args, json),
        Command::Perso(args) => return crate::cli::perso::perso(args, json),
        Command::Verify(args) => return crate::cli::perso::verify(args, json),
        Command::Read(args) => return crate::cli::perso::read(args, json),
        Command::SampleRecords(args) => return crate::cli::perso::sample_records(args),
        Command::Profile(cmd) => return crate::cli::perso::profile(cmd, json),
        Command::BioRates(args) => return crate::cli::perso::bio_rates(args, json),
        Command::Line(cmd) => return crate::cli::line::line(cmd, json),
        Command::Journal(cmd) => return crate::cli::register::journal(cmd, json),
        Command::Ca(cmd) => return crate::cli::pki::ca(cmd, json),
        Command::Programme(cmd) => return crate::cli::programme::programme(cmd, json),
        Command::Scp03(cmd) => return crate::cli::scp03::run(cmd, json),
        Command::Activate(cmd) => return crate::cli::activate::activate(cmd, json),
        Command::Counter(cmd) => return crate::cli::web::counter(cmd, json),
        _ => {}
    }
    run_wire(cli).map(|()| 0)
}

fn run_wire(cli: Cli) -> Result<()> {
    let json = cli.json;
    match cli.command {
        Command::Run(_)
        | Command::Replay(_)
        | Command::Diff(_)
        | Command::Perso(_)
        | Command::Verify(_)
        | Command::Read(_)
        | Command::SampleRecords(_)
        | Command::Profile(_)
        | Command::BioRates(_)
        | Command::Line(_)
        | Command::Journal(_)
        | Command::Ca(_)
        | Command::Programme(_)
        | Command::Scp03(_)
        | Command::Activate(_)
        | Command::Counter(_) => Ok(()),
        Command::Readers {
            wait,
            reader,
            timeout,
        } => readers(json, wait, reader.as_deref(), timeout),
        Command::Atr { hex, reader, list } => {
            atr_cmd(json, hex.as_deref(), reader.as_deref(), &list)
        }
        Command::Send {
            apdus,
            reader,
            raw,
            no_get_response,
            no_resend,
            exclusive,
            protocol,
            secret,
            keep_going,
            no_tlv,
        } => {
            // Phase one: validate every APDU before touching a card.
            let parsed = parse_apdu_args(&apdus)?;
            let opts = send_exchange_options(raw, no_get_response, no_resend);
            let connect = ConnectOptions {
                exclusive,
                protocol: protocol.map(|p| match p {
                    ProtoArg::T0 => Protocol::T0,
                    ProtoArg::T1 => Protocol::T1,
                }),
            };
            send(
                json,
                reader.as_deref(),
                connect,
                opts,
                &parsed,
                secret,
                keep_going,
                !no_tlv,
            )
        }
        Command::Sim(args) => sim_cmd(json, args),
    }
}

/// `sim`: simulated cards in the vpcd slots until Ctrl-C, or with `--feed`
/// a stream of blank cards fed to line readers.
fn sim_cmd(json: bool, args: SimArgs) -> Result<()> {
    let SimArgs {
        slots,
        image,
        data_dir,
        fresh,
        os,
        t0,
        no_extended,
        no_chaining,
        force_get_response,
        remove_at,
        delay_ms,
        mute_from,
        seconds,
        issuer_key,
        no_issuer_key,
        scp03_keys,
        no_security_domain,
        feed,
        line_readers,
        feed_count,
        handling_ms,
        timing,
    } = args;
    let config = sim_config(
        &timing,
        t0,
        no_extended,
        no_chaining,
        force_get_response,
        os,
    )?;
    let faults = sim::faults::Faults {
        remove_at,
        delay: delay_ms.map(Duration::from_millis),
        mute_from,
    };
    let (key, scp03) = sim_keys(
        data_dir.as_deref(),
        issuer_key.as_deref(),
        no_issuer_key,
        scp03_keys.as_deref(),
        no_security_domain,
    )?;
    if let Some(dir) = feed {
        return feed_cards(
            json,
            feed_readers(line_readers, &slots),
            dir,
            feed_count,
            Duration::from_millis(handling_ms),
            config,
            seconds,
            key.as_ref().map(|k| k.expose().to_vec()),
            scp03,
        );
    }
    run_sim(
        json,
        &slots,
        image,
        data_dir,
        fresh,
        config,
        faults,
        seconds,
        sim::Provision {
            issuer_key: key.as_ref().map(|k| k.expose()),
            scp03: scp03.as_ref().map(|k| &k.keys),
        },
    )
}

/// `send`'s first phase: every APDU argument as bytes, so that a typo in
/// the third refuses the command before the first reaches a card.
fn parse_apdu_args(apdus: &[String]) -> Result<Vec<Vec<u8>>> {
    apdus
        .iter()
        .enumerate()
        .map(|(i, a)| hex::parse(a).with_context(|| format!("APDU argument {} ({a:?})", i + 1)))
        .collect()
}

/// `send`'s exchange options: raw or the default, less the automatic GET
/// RESPONSE or 6Cxx resend when their flags turn them off.
fn send_exchange_options(raw: bool, no_get_response: bool, no_resend: bool) -> ExchangeOptions {
    let mut opts = if raw {
        ExchangeOptions::raw()
    } else {
        ExchangeOptions::default()
    };
    if no_get_response {
        opts.auto_get_response = false;
    }
    if no_resend {
        opts.auto_resend_on_6c = false;
    }
    opts
}

/// The simulated card's configuration from `sim`'s flags: the timing
/// profile, protocol, extended length, chaining and card OS (a domestic
/// card takes its OS's defaults and only the timing profile).
fn sim_config(
    timing: &str,
    t0: bool,
    no_extended: bool,
    no_chaining: bool,
    force_get_response: bool,
    os: OsArg,
) -> Result<SimConfig> {
    let timing = sim::timing::Timing::parse(timing)
        .map_err(|e| anyhow::anyhow!(crate::cli::perso::RecordRefused(e)))?;
    let config = SimConfig {
        timing,
        protocol: if t0 {
            sim::SimProtocol::T0
        } else {
            sim::SimProtocol::T1
        },
        extended_length: !no_extended,
        command_chaining: !no_chaining,
        force_get_response: force_get_response || t0,
        ..SimConfig::default()
    };
    Ok(match os {
        OsArg::Reference => config,
        OsArg::Domestic => SimConfig {
            timing: config.timing,
            ..SimConfig::domestic()
        },
    })
}

/// The keys `sim` provisions its cards with: the issuer key unless
/// `--no-issuer-key`, and the SCP03 keys unless there is no issuer key or
/// no security domain; each from its file, else the environment, else the
/// data directory's default.
fn sim_keys(
    data_dir: Option<&std::path::Path>,
    issuer_key: Option<&std::path::Path>,
    no_issuer_key: bool,
    scp03_keys: Option<&std::path::Path>,
    no_security_domain: bool,
) -> Result<(
    Option<crate::perso::keys::IssuerKey>,
    Option<crate::scp03::keyfile::Scp03Keys>,
)> {
    let dir = || data_dir.map_or_else(default_data_dir, std::path::Path::to_path_buf);
    let key = if no_issuer_key {
        None
    } else {
        Some(
            crate::perso::keys::IssuerKey::locate(issuer_key, &dir())
                .map_err(crate::cli::json_error::key_refused)?,
        )
    };
    let scp03 = if no_issuer_key || no_security_domain {
        None
    } else {
        Some(
            crate::scp03::keyfile::Scp03Keys::locate(scp03_keys, &dir())
                .map_err(crate::cli::json_error::key_refused)?,
        )
    };
    Ok((key, scp03))
}

/// The readers `sim --feed` puts its cards in: the first `--line-readers`
/// line readers, else the vpcd slots.
fn feed_readers(line_readers: Option<u16>, slots: &[u16]) -> Vec<(String, std::net::SocketAddr)> {
    match line_readers {
        Some(n) => (0..n.min(sim::line_readers::LINE_READERS))
            .map(|i| {
                (
                    sim::line_readers::line_reader_name(i),
                    sim::line_readers::line_reader_addr(i),
                )
            })
            .collect(),
        None => slots
            .iter()
            .map(|&s| (format!("Virtual PCD 00 {s:02}"), sim::vpcd::slot_addr(s)))
            .collect(),
    }
}

fn readers(json: bool, wait: Option<WaitFor>, reader: Option<&str>, timeout: f64) -> Result<()> {
    if let Some(w) = wait {
        let ev = match w {
            WaitFor::Insert => CardEvent::Inserted,
            WaitFor::Remove => CardEvent::Removed,
        };
        let timeout = Duration::from_secs_f64(timeout.max(0.0));
        let r = pc::wait_for(reader, ev, timeout)?;
        if json {
            println!("{}", json!({"event": ev, "reader": r}));
        } else {
            match ev {
                CardEvent::Inserted => println!(
                    "card present in {}: {}",
                    r.name,
                    r.atr.as_deref().unwrap_or("")
                ),
                CardEvent::Removed => println!("no card in {}", r.name),
            }
        }
        return Ok(());
    }
    let list = pc::list_readers()?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "readers": list }))?
        );
    } else if list.is_empty() {
        println!("no readers");
    } else {
        for r in &list {
            let state = if r.card_present {
                format!("card present  {}", r.atr.as_deref().unwrap_or(""))
            } else {
                "no card".to_string()
            };
            println!("{}: {}  [{state}]", r.index, r.name);
        }
    }
    if list.is_empty() {
        return Err(TransportError::NoReaders.into());
    }
    Ok(())
}

fn atr_cmd(
    json: bool,
    hex_arg: Option<&str>,
    reader: Option<&str>,
    list: &std::path::Path,
) -> Result<()> {
    let bytes = match hex_arg {
        Some(h) => hex::parse(h).context("ATR argument")?,
        None => {
            let t = pc::PcscTransport::connect(reader, ConnectOptions::default())?;
            use crate::transport::Transport;
            t.atr()
        }
    };
    let parsed = atr::parse(&bytes);
    let atr_list = if list.exists() {
        Some(
            atr::list::AtrList::load(list)
                .with_context(|| format!("reading ATR list {}", list.display()))?,
        )
    } else {
        None
    };
    let matches: Vec<_> = atr_list
        .as_ref()
        .map(|l| l.matches(&bytes).into_iter().cloned().collect())
        .unwrap_or_default();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "atr": parsed,
                "list": if atr_list.is_some() { json!(list) } else { json!(null) },
                "matches": matches,
            }))?
        );
    } else {
        print!("{}", parsed.describe());
        match &atr_list {
            None => println!(
                "\nATR list {} not found (install pcsc-tools to match ATRs against it)",
                list.display()
            ),
            Some(_) if matches.is_empty() => println!("\nNot in {}", list.display()),
            Some(_) => {
                println!("\nKnown as (from {}):", list.display());
                for m in &matches {
                    println!("  line {}: {}", m.line, m.pattern);
                    for d in &m.descriptions {
                        println!("    {d}");
                    }
                }
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn send(
    json: bool,
    reader: Option<&str>,
    connect: ConnectOptions,
    opts: ExchangeOptions,
    apdus: &[Vec<u8>],
    secret: bool,
    keep_going: bool,
    show_tlv: bool,
) -> Result<()> {
    let t = pc::PcscTransport::connect(reader, connect)?;
    let mut ch = Channel::new(Box::new(t), opts);
    let reader_name = ch.reader();
    let protocol = ch.protocol();
    let mut results = Vec::new();
    let mut first_error: Option<StatusWord> = None;
    // One transaction for the whole sequence: nothing else can slip in between.
    ch.run(|ex| -> Result<(), ExchangeError> {
        for apdu in apdus {
            let t0 = Instant::now();
            let resp = ex.transmit_bytes(apdu, secret)?;
            let elapsed = t0.elapsed();
            let wire = ex.take_trace();
            let is_error = !(resp.sw.is_ok()
                || matches!(
                    resp.sw,
                    StatusWord::MoreData { .. } | StatusWord::WrongLe { .. }
                )
                || (resp.sw.is_warning() && !matches!(resp.sw, StatusWord::WrongPin { .. })));
            results.push((apdu, resp, elapsed, wire));
            if is_error && first_error.is_none() {
                first_error = Some(results.last().map(|r| r.1.sw).unwrap_or(StatusWord::Ok));
                if !keep_going {
                    break;
                }
            }
        }
        Ok(())
    })?;
    if json {
        let items: Vec<_> = results
            .iter()
            .map(|(apdu, resp, el, wire)| {
                let nodes = tlv::decode(&resp.data);
                json!({
                    "command": if secret { redact_hex(apdu) } else { hex::spaced(apdu) },
                    "data": hex::spaced(&resp.data),
                    "sw": hex::compact(&resp.sw.bytes()),
                    "meaning": resp.sw.meaning(),
                    "tlv": if show_tlv && !resp.data.is_empty() && tlv::is_clean(&nodes) { json!(nodes) } else { json!(null) },
                    "micros": el.as_micros() as u64,
                    "wire": wire,
                })
            })
            .collect();
        let doc = json!({
            "reader": reader_name,
            "protocol": protocol,
            "responses": items,
        });
        if first_error.is_some() {
            // One document: the error's, with the responses in it.
            crate::cli::json_error::attach("reader", json!(reader_name));
            crate::cli::json_error::attach("protocol", json!(protocol));
            crate::cli::json_error::attach("responses", json!(items));
        } else {
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
    } else {
        use std::io::Write;
        // One buffered writer for the whole listing: a line-buffered
        // stdout would make a write(2) per line, three per APDU.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        writeln!(out, "reader: {reader_name} ({protocol})")?;
        for (apdu, resp, el, wire) in &results {
            let shown = if secret {
                redact_hex(apdu)
            } else {
                hex::spaced(apdu)
            };
            writeln!(out, "> {shown}")?;
            if wire.len() > 1 {
                for w in wire {
                    writeln!(out, "    wire > {}", w.command)?;
                    writeln!(
                        out,
                        "    wire < {} {}",
                        w.response,
                        hex::compact(&w.sw.bytes())
                    )?;
                }
            }
            if !resp.data.is_empty() {
                for line in wrap_hex(&resp.data) {
                    writeln!(out, "< {line}")?;
                }
            }
            writeln!(out, "< {}  {:.3} ms", resp.sw, el.as_secs_f64() * 1000.0)?;
            if show_tlv && !resp.data.is_empty() {
                let nodes = tlv::decode(&resp.data);
                if tlv::is_clean(&nodes) {
                    for line in tlv::render(&nodes).lines() {
                        writeln!(out, "    {line}")?;
                    }
                }
            }
        }
        out.flush()?;
    }
    if let Some(sw) = first_error {
        return Err(CardStatusError { sw }.into());
    }
    Ok(())
}

fn redact_hex(apdu: &[u8]) -> String {
    match crate::apdu::Command::parse(apdu) {
        Ok(mut c) => {
            c.data = crate::apdu::Data::Sensitive(crate::secret::Secret::new(c.data().to_vec()));
            c.redacted()
        }
        Err(_) => format!("REDACTED({} bytes)", apdu.len()),
    }
}

fn wrap_hex(data: &[u8]) -> Vec<String> {
    data.chunks(16).map(hex::spaced).collect()
}

#[allow(clippy::too_many_arguments)]
fn feed_cards(
    json: bool,
    readers: Vec<(String, std::net::SocketAddr)>,
    dir: PathBuf,
    count: Option<u64>,
    handling: Duration,
    config: SimConfig,
    seconds: Option<f64>,
    issuer_key: Option<Vec<u8>>,
    scp03: Option<crate::scp03::keyfile::Scp03Keys>,
) -> Result<()> {
    let names: Vec<String> = readers.iter().map(|r| r.0.clone()).collect();
    let feeder = sim::feeder::Feeder::start(sim::feeder::FeedOptions {
        readers,
        out_dir: dir.clone(),
        count,
        timing: config.timing,
        config,
        issuer_key,
        scp03: scp03.map(|k| k.keys),
        handling,
    })
    .with_context(|| crate::cli::json_error::file("creating", &dir))?;
    eprintln!(
        "feeding blank cards into {}; used cards are saved in {}",
        names.join(", "),
        dir.display()
    );
    let started = Instant::now();
    let mut shown = 0;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let fed = feeder.fed();
        for f in fed.iter().skip(shown) {
            if json {
                println!(
                    "{}",
                    json!({"card": f.number, "reader": f.reader, "serial": f.serial, "image": f.image, "ended": f.ended})
                );
            } else {
                println!(
                    "card {} ({}) left {}: {}",
                    f.number, f.serial, f.reader, f.ended
                );
            }
        }
        shown = fed.len();
        if seconds.is_some_and(|s| started.elapsed().as_secs_f64() >= s)
            || count.is_some_and(|c| shown as u64 >= c)
        {
            break;
        }
    }
    feeder.stop();
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_sim(
    json: bool,
    slots: &[u16],
    image: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    fresh: bool,
    config: SimConfig,
    faults: sim::faults::Faults,
    seconds: Option<f64>,
    provision: sim::Provision<'_>,
) -> Result<()> {
    let dir = data_dir.unwrap_or_else(default_data_dir).join("sim");
    let mut cards = Vec::new();
    for &slot in slots {
        let path = match &image {
            Some(p) if slots.len() == 1 => p.clone(),
            Some(p) => PathBuf::from(format!("{}.{slot}", p.display())),
            None => dir.join(format!("slot{slot}.json")),
        };
        if let Some(parent) = path.parent() {
            crate::private::create_dir_all(parent)
                .with_context(|| crate::cli::json_error::file("creating", parent))?;
        }
        if fresh && path.exists() {
            std::fs::remove_file(&path)
                .with_context(|| crate::cli::json_error::file("removing", &path))?;
        }
        let card = SimCard::open_image_provisioned(&path, config.clone(), provision)
            .context("opening the simulated card image")?;
        let serial = hex::compact(&card.serial());
        let atr_hex = hex::spaced(&card.atr());
        let mut opts = sim::vpcd::VpcdOptions::slot(slot);
        opts.faults = faults.clone();
        let served = sim::vpcd::VpcdCard::start(card, opts)
            .with_context(|| format!("inserting the simulated card into vpcd slot {slot}"))?;
        if json {
            println!(
                "{}",
                json!({"slot": slot, "reader": format!("Virtual PCD 00 {slot:02}"), "image": path, "serial": serial, "atr": atr_hex})
            );
        } else {
            println!(
                "simulated card {serial} in vpcd slot {slot} (reader \"Virtual PCD 00 {slot:02}\"), image {}",
                path.display()
            );
            println!("  ATR {atr_hex}");
        }
        cards.push(served);
    }
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if seconds.is_some_and(|s| started.elapsed().as_secs_f64() >= s) {
            break;
        }
        if cards.iter().all(|c| !c.is_inserted()) && faults.remove_at.is_some() {
            break;
        }
    }
    for c in cards {
        c.remove()?;
    }
    Ok(())
}
