//! `cardsmith activate …`: the pickup counter's commands.
//!
//! Arguments are checked first (office code, PIN length, where PINs come
//! from, files), then the issuer side and the journal are opened, and only
//! then is a card touched.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use serde_json::json;

use crate::activate::counter::{Counter, PinChoice, Refusal, Screen, Templates};
use crate::activate::display::RtlMode;
use crate::activate::ops;
use crate::activate::pinentry::{LinePins, PinInput, TtyPins};
use crate::activate::policy::PinPolicy;
use crate::cli::common::{check_office, CardArgs, RecordRefused, EXIT_CARD_STATUS, EXIT_TRANSPORT};
use crate::cli::register::{data_dir, open_journal, who, JournalArgs};
use crate::perso::input::IsoTemplates;
use crate::perso::side::IssuerSide;
use crate::pki::CertificateAuthority as _;
use crate::register::journal::{iso_time, CardStatus, CertRow, Journal, JournalRevocations, Who};
use crate::transport::pcsc::{self as pc, CardEvent, ConnectOptions, PcscTransport};
use crate::transport::{Channel, ExchangeOptions};

/// Who is at which counter.
/// Which PIN to unblock, as the command line names it.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum PinArg {
    Id,
    Signature,
}

#[derive(clap::Args, Debug, Clone)]
pub struct CounterArgs {
    /// This office's code: 4 digits for an office at home (1021), CC-XXX for a consulate (AE-DXB).
    #[arg(long)]
    pub office: String,
    #[command(flatten)]
    pub journal: JournalArgs,
    /// A card profile the counter takes cards of (repeatable: each card is taken as the first of them that recognizes its ATR; a card none recognizes is refused untouched). Default: the installed profiles, the reference card then the domestic card.
    #[arg(long = "profile", value_name = "FILE")]
    pub profiles: Vec<PathBuf>,
    /// The issuer key file (hex, mode 600). Default: $CARDSMITH_ISSUER_KEY, else <data dir>/issuer-key.
    #[arg(long, value_name = "FILE")]
    pub issuer_key: Option<PathBuf>,
}

/// Where the holder's PINs come from (never the command line).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PinArgs {
    /// Read the PINs one per line from this open file descriptor (e.g. 3 with `3<pins`), in the order they are asked for.
    #[arg(long, value_name = "N", conflicts_with = "pins_file")]
    pub pins_from_fd: Option<u32>,
    /// Read the PINs one per line from this file, which must be mode 600.
    #[arg(long, value_name = "FILE")]
    pub pins_file: Option<PathBuf>,
    /// PIN length the holder must choose, MIN-MAX digits (within the card's 6-12).
    #[arg(long, default_value = "6-8", value_name = "MIN-MAX")]
    pub pin_length: String,
}

/// How the holder's data is shown.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ShowArgs {
    /// Send Persian text in logical order, unshaped (for terminals that do bidi and Arabic shaping themselves).
    #[arg(long)]
    pub no_bidi: bool,
    /// Where the holder's photo is saved (default: <data dir>/counter/photos).
    #[arg(long, value_name = "DIR")]
    pub photo_dir: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum ActivateCommand {
    /// The counter: wait for a card, activate it with its holder, journal the delivery, wait for the next card.
    #[command(
        after_help = "Example:\n  cardsmith activate counter --office 1021 --reader 'Virtual PCD 00 00' --operator clerk7\n\nThe operator is told each step: insert the card, check the photo, which finger to scan (type the scanner's file), turn the PIN pad to the holder (PINs are never shown), remove the card. An already activated card can have a PIN unblocked. Ctrl-C closes the counter."
    )]
    Counter {
        #[command(flatten)]
        counter: CounterArgs,
        /// The counter's reader (index, exact name, or unique part of the name).
        #[arg(long, short)]
        reader: String,
        #[command(flatten)]
        pins: PinArgs,
        #[command(flatten)]
        show: ShowArgs,
    },
    /// Activate one card (one-shot, for scripts): the scanner file is given, the PINs come from a file descriptor or a private file.
    #[command(
        after_help = "Examples:\n  cardsmith activate card --office 1021 --reader 0 --template scan.iso --pins-from-fd 3 3<pins.txt\n  cardsmith activate card --office AE-DXB --reader 0 --template scan.iso --pins-file pins.txt --json\n\nThe PIN lines are taken in the order asked: ID PIN, ID PIN again, signature PIN, signature PIN again.\nExit codes: 0 activated and journaled, 2 bad arguments, 3 no reader or card, 4 refused (the reason is printed and journaled), 5 transport failure."
    )]
    Card {
        #[command(flatten)]
        counter: CounterArgs,
        #[arg(long, short)]
        reader: String,
        /// The scanner's ISO/IEC 19794-2 file of the holder's finger (repeat for further tries).
        #[arg(long, value_name = "FILE", required = true)]
        template: Vec<PathBuf>,
        #[command(flatten)]
        pins: PinArgs,
        #[command(flatten)]
        show: ShowArgs,
    },
    /// Record that personalized cards were sent to an office (only there can they be handed out).
    #[command(
        after_help = "Examples:\n  cardsmith activate ship --office 1021 --record R-000001\n  cardsmith activate ship --office 1021 --batch 1     # every good card of batch 1 for office 1021\n  cardsmith activate ship --office AE-DXB --card 274067C1DECF8D11"
    )]
    Ship {
        #[command(flatten)]
        counter: CounterArgs,
        /// A record whose good card is shipped (repeatable).
        #[arg(long = "record", value_name = "ID")]
        records: Vec<String>,
        /// A good card, by serial (repeatable).
        #[arg(long = "card", value_name = "SERIAL")]
        cards: Vec<String>,
        /// Every good card of this batch whose record names this office.
        #[arg(long, value_name = "N")]
        batch: Option<i64>,
    },
    /// Request a replacement: the previous card must have been delivered and activated; it is terminated on the card (card at hand) or marked lost, and its certificates are listed for revocation.
    #[command(
        after_help = "Examples:\n  cardsmith activate replace --office 1021 --reason damage --reader 0\n  cardsmith activate replace --office 1021 --reason loss --lost --national-id 5328297441\n  cardsmith activate replace --office 1021 --reason loss --lost --card 274067C1DECF8D11 --json\n\nExit codes: 0 request taken, 4 refused (the reason is printed and journaled)."
    )]
    Replace {
        #[command(flatten)]
        counter: CounterArgs,
        /// Why: loss, damage or civil_data_change.
        #[arg(long)]
        reason: String,
        /// The card is at hand in this reader: it is terminated.
        #[arg(long, short, conflicts_with = "lost")]
        reader: Option<String>,
        /// The card is lost: it is marked lost in the journal.
        #[arg(long)]
        lost: bool,
        /// The lost card, by serial.
        #[arg(long, value_name = "SERIAL")]
        card: Option<String>,
        /// The holder (the latest active card is the one replaced).
        #[arg(long)]
        national_id: Option<String>,
    },
    /// Unblock a PIN: the holder's fingerprint matches, the issuer's PUK resets the retry counter, the holder sets a new PIN.
    #[command(
        after_help = "Example:\n  cardsmith activate unblock --office 1021 --reader 0 --pin signature --template scan.iso --pins-from-fd 3 3<pins.txt"
    )]
    Unblock {
        #[command(flatten)]
        counter: CounterArgs,
        #[arg(long, short)]
        reader: String,
        /// Which PIN.
        #[arg(long, value_enum)]
        pin: PinArg,
        /// The scanner's ISO/IEC 19794-2 file (repeat for further tries); without it, asked for on the terminal.
        #[arg(long, value_name = "FILE")]
        template: Vec<PathBuf>,
        #[command(flatten)]
        pins: PinArgs,
        #[command(flatten)]
        show: ShowArgs,
    },
    /// What the journal knows about a card's delivery, or a holder's cards.
    #[command(
        after_help = "Examples:\n  cardsmith activate status --card 274067C1DECF8D11\n  cardsmith activate status --national-id 5328297441 --json"
    )]
    Status {
        #[arg(long, value_name = "SERIAL", required_unless_present = "national_id")]
        card: Option<String>,
        #[arg(long)]
        national_id: Option<String>,
        #[command(flatten)]
        journal: JournalArgs,
    },
}

fn pin_source(a: &PinArgs) -> Result<Box<dyn PinInput>> {
    if let Some(fd) = a.pins_from_fd {
        let p = LinePins::from_fd(fd).map_err(|e| {
            anyhow!(RecordRefused(format!(
                "--pins-from-fd {fd}: cannot open the descriptor: {e}"
            )))
        })?;
        return Ok(Box::new(p));
    }
    if let Some(f) = &a.pins_file {
        return Ok(Box::new(
            LinePins::from_file(f).map_err(|e| anyhow!(RecordRefused(e)))?,
        ));
    }
    if std::io::stdin().is_terminal() {
        return Ok(Box::new(TtyPins));
    }
    bail!(RecordRefused(
        "no terminal for the holder's PINs: run on a terminal, or give --pins-from-fd N or --pins-file FILE (mode 600)".into()
    ))
}

/// The operator's terminal (or a log, for the one-shot commands).
struct Term {
    out: Box<dyn std::io::Write>,
    interactive: bool,
}

impl Screen for Term {
    fn say(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }
    fn step(&mut self, n: u8, what: &str) {
        let _ = writeln!(
            self.out,
            "\n[{n}/{}] {what}",
            crate::activate::counter::STEPS
        );
        let _ = self.out.flush();
    }
    fn ask(&mut self, prompt: &str) -> std::io::Result<Option<String>> {
        if !self.interactive {
            return Ok(None);
        }
        write!(self.out, "{prompt}")?;
        self.out.flush()?;
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(line.trim_end_matches(['\n', '\r']).to_string()))
    }
}

/// A counter station's setup, shared with the web station (`web::cli`).
pub(crate) struct Station {
    /// The first profile's side; `others`, the other profiles' (same keys).
    pub(crate) side: IssuerSide,
    pub(crate) others: Vec<IssuerSide>,
    pub(crate) journal: std::sync::Arc<dyn Journal>,
    pub(crate) who: Who,
    pub(crate) office: String,
}

pub(crate) fn station(c: &CounterArgs) -> Result<Station> {
    let office = check_office(&c.office)?;
    let profiles = crate::perso::side::Profiles::open(&c.profiles)
        .map_err(|e| anyhow!(RecordRefused(e.to_string())))?;
    let config = CardArgs {
        reader: None,
        sim_image: None,
        profile: None,
        issuer_key: c.issuer_key.clone(),
        scp03_keys: None,
        no_secure_channel: false,
        data_dir: c.journal.data_dir.clone(),
    }
    .side_config();
    let mut sides = IssuerSide::open_each(&config, &profiles)
        .map_err(|e| match e {
            crate::perso::side::SideError::Key(k) => crate::cli::common::key_refused(k),
            other => anyhow!(RecordRefused(other.to_string())),
        })?
        .into_iter();
    let side = sides
        .next()
        .ok_or_else(|| anyhow!(RecordRefused("no card profile".into())))?;
    let journal = open_journal(&c.journal)?;
    Ok(Station {
        side,
        others: sides.collect(),
        journal,
        who: who(&c.journal),
        office,
    })
}

/// Before a card is touched: the journal's login may record this
/// office's deliveries and replacement requests (on the shared register a
/// counter's login is bound to its office, and a line station's login
/// records none). Refused as a bad argument, nothing touched.
pub(crate) fn check_may_record(st: &Station) -> Result<()> {
    st.journal.may_record_at(&st.office).map_err(|e| match e {
        crate::register::journal::JournalError::Refused(m) => anyhow!(RecordRefused(m)),
        e => anyhow!(e),
    })
}

pub(crate) fn counter<'a>(
    st: &'a Station,
    c: &CounterArgs,
    pins: &PinArgs,
    show: &ShowArgs,
) -> Result<Counter<'a>> {
    let policy =
        PinPolicy::parse_length(&pins.pin_length).map_err(|e| anyhow!(RecordRefused(e)))?;
    Ok(Counter {
        side: &st.side,
        others: &st.others,
        journal: st.journal.as_ref(),
        who: st.who.clone(),
        office: st.office.clone(),
        policy,
        rtl: if show.no_bidi {
            RtlMode::Logical
        } else {
            RtlMode::Visual
        },
        photo_dir: show
            .photo_dir
            .clone()
            .unwrap_or_else(|| data_dir(&c.journal).join("counter").join("photos")),
        pin_rounds: 5,
    })
}

fn connect(reader: &str) -> Result<Channel> {
    let t = PcscTransport::connect(Some(reader), ConnectOptions::default())?;
    Ok(Channel::new(Box::new(t), ExchangeOptions::default()))
}

/// Report a refusal of a one-shot command (`what`: the JSON key that would
/// have been true) and give its exit code.
fn refused(json: bool, what: &str, r: &Refusal) -> i32 {
    let code = refusal_code(r);
    if json {
        // With the common error object (README, "Errors under --json").
        let kind = if r.transport { "transport" } else { "refused" };
        println!(
            "{}",
            json!({what: false, "refusal": r,
                   "error": {"kind": kind, "exit_code": code, "message": r.reason, "class": r.class}})
        );
    } else {
        eprintln!("\nREFUSED: {}", r.reason);
    }
    code
}

fn refusal_code(r: &Refusal) -> i32 {
    if r.transport {
        EXIT_TRANSPORT
    } else {
        EXIT_CARD_STATUS
    }
}

pub fn activate(cmd: ActivateCommand, json: bool) -> Result<i32> {
    match cmd {
        ActivateCommand::Card {
            counter: c,
            reader,
            template,
            pins,
            show,
        } => {
            let mut pin_in = pin_source(&pins)?;
            let st = station(&c)?;
            check_may_record(&st)?;
            let mut ct = counter(&st, &c, &pins, &show)?;
            let mut ch = connect(&reader)?;
            ct.who = ct.who.at_reader(&ch.reader());
            let mut screen = Term {
                out: if json {
                    Box::new(std::io::stderr())
                } else {
                    Box::new(std::io::stdout())
                },
                interactive: false,
            };
            let mut templates = Templates::Files(template);
            let r = ct.activate(&mut ch, &mut screen, pin_in.as_mut(), &mut templates);
            match r {
                Ok(a) => {
                    if json {
                        println!("{}", json!({"activated": true, "card": a}));
                    } else {
                        println!(
                            "\nACTIVATED: card {} (record {}) delivered at office {} by {}. Remove the card and hand it to the holder.",
                            a.serial, a.record_id, a.office, ct.who.operator
                        );
                    }
                    Ok(0)
                }
                Err(r) => Ok(refused(json, "activated", &r)),
            }
        }
        ActivateCommand::Counter {
            counter: c,
            reader,
            pins,
            show,
        } => run_counter(&c, &reader, &pins, &show),
        ActivateCommand::Ship {
            counter: c,
            records,
            cards,
            batch,
        } => ship(&c, records, cards, batch, json),
        ActivateCommand::Replace {
            counter: c,
            reason,
            reader,
            lost,
            card,
            national_id,
        } => replace(&c, &reason, reader, lost, card, national_id, json),
        ActivateCommand::Unblock {
            counter: c,
            reader,
            pin,
            template,
            pins,
            show,
        } => {
            let mut pin_in = pin_source(&pins)?;
            let st = station(&c)?;
            let mut ct = counter(&st, &c, &pins, &show)?;
            let mut ch = connect(&reader)?;
            ct.who = ct.who.at_reader(&ch.reader());
            let interactive = template.is_empty();
            if interactive && !std::io::stdin().is_terminal() {
                bail!(RecordRefused(
                    "--template FILE is needed when not on a terminal".into()
                ));
            }
            let mut templates = if interactive {
                Templates::Ask
            } else {
                Templates::Files(template)
            };
            let mut screen = Term {
                out: if json {
                    Box::new(std::io::stderr())
                } else {
                    Box::new(std::io::stdout())
                },
                interactive,
            };
            let pin = match pin {
                PinArg::Id => PinChoice::Id,
                PinArg::Signature => PinChoice::Signature,
            };
            match ct.unblock(&mut ch, &mut screen, pin_in.as_mut(), &mut templates, pin) {
                Ok(u) => {
                    if json {
                        println!(
                            "{}",
                            json!({"unblocked": true, "detail": u.detail, "fingerprint": u.fingerprint})
                        );
                    } else {
                        println!("\nUNBLOCKED: {}", u.detail);
                    }
                    Ok(0)
                }
                Err(r) => Ok(refused(json, "unblocked", &r)),
            }
        }
        ActivateCommand::Status {
            card,
            national_id,
            journal,
        } => status(&journal, card, national_id, json),
    }
}

/// The counter loop: one card after another until Ctrl-C.
fn run_counter(c: &CounterArgs, reader: &str, pins: &PinArgs, show: &ShowArgs) -> Result<i32> {
    let mut pin_in = pin_source(pins)?;
    let st = station(c)?;
    check_may_record(&st)?;
    let mut ct = counter(&st, c, pins, show)?;
    let mut screen = Term {
        out: Box::new(std::io::stdout()),
        interactive: true,
    };
    // Resolve the reader once (a pattern), so every wait is on the same one.
    let name = pc::list_readers()
        .map_err(anyhow::Error::from)
        .and_then(|list| {
            let infos = list;
            let hit = pc::choose_reader(&infos, Some(reader)).map_err(anyhow::Error::from)?;
            Ok(hit)
        })?;
    ct.who = ct.who.at_reader(&name);
    screen.say(&format!(
        "cardsmith pickup counter: office {}, operator {}, station {}, reader {name}",
        ct.office, ct.who.operator, ct.who.station
    ));
    let _ = ct
        .journal
        .event(&ct.who, "counter opened", &format!("office {}", ct.office));
    loop {
        screen.say(&format!(
            "\n=== Insert the holder's card into {name}. (Ctrl-C closes the counter.) ==="
        ));
        loop {
            match pc::wait_for(Some(&name), CardEvent::Inserted, Duration::from_secs(3600)) {
                Ok(_) => break,
                Err(crate::transport::TransportError::WaitTimeout(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        match connect(&name) {
            Ok(mut ch) => {
                let mut templates = Templates::Ask;
                match ct.activate(&mut ch, &mut screen, pin_in.as_mut(), &mut templates) {
                    Ok(a) => screen.say(&format!(
                        "\nACTIVATED: card {} (record {}) is delivered. Remove the card and hand it to the holder.",
                        a.serial, a.record_id
                    )),
                    Err(r) if r.class == "already_activated" => {
                        screen.say("\nThis card is already activated.");
                        let choice = screen.ask(
                            "Type 'unblock id' or 'unblock signature' to unblock a PIN, or press Enter to finish: ",
                        )?;
                        let which = match choice.as_deref().map(str::trim) {
                            Some("unblock id") => Some(PinChoice::Id),
                            Some("unblock signature") => Some(PinChoice::Signature),
                            _ => None,
                        };
                        if let Some(which) = which {
                            let mut templates = Templates::Ask;
                            match ct.unblock(&mut ch, &mut screen, pin_in.as_mut(), &mut templates, which) {
                                Ok(u) => screen.say(&format!("\nUNBLOCKED: {}. Remove the card and hand it to the holder.", u.detail)),
                                Err(r) => screen.say(&format!("\nREFUSED: {}. Remove the card.", r.reason)),
                            }
                        } else {
                            screen.say("Remove the card.");
                        }
                    }
                    Err(r) => screen.say(&format!(
                        "\nREFUSED: {}. Remove the card{}.",
                        r.reason,
                        if r.class == "wrong_office" { " and keep it apart" } else { "" }
                    )),
                }
                ch.release();
            }
            Err(e) => screen.say(&format!(
                "\nThe card cannot be read: {}. Remove the card.",
                crate::cli::errors::error_text(&e)
            )),
        }
        screen.say("Waiting for the card to be removed …");
        loop {
            match pc::wait_for(Some(&name), CardEvent::Removed, Duration::from_secs(3600)) {
                Ok(_) => break,
                Err(crate::transport::TransportError::WaitTimeout(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The record behind a good card, from its batch file: national ID and office.
fn record_office(j: &dyn Journal, side: &IssuerSide, record_id: &str) -> Result<(String, String)> {
    let row = j
        .record(record_id)
        .map_err(|e| anyhow!(e))?
        .ok_or_else(|| {
            anyhow!(RecordRefused(format!(
                "record {record_id} is not in the journal"
            )))
        })?;
    let batch = j
        .batch(Some(row.batch_id))
        .map_err(|e| anyhow!(e))?
        .ok_or_else(|| anyhow!("batch {} is not in the journal", row.batch_id))?;
    let path = PathBuf::from(&batch.path);
    let v = IsoTemplates {
        max_minutiae: usize::from(side.profile.max_minutiae),
    };
    // The one record, read by its line (a batch may hold a million).
    let index = crate::record::stream::LineIndex::build(&path, 64, &mut |_| {}).map_err(|e| {
        anyhow!(RecordRefused(format!(
            "batch file {} of batch {} (needed for the record's office): {e}",
            batch.path, batch.id
        )))
    })?;
    let rec = index
        .record(row.line, &v)
        .ok()
        .filter(|r| r.record_id() == record_id)
        .ok_or_else(|| {
            anyhow!(RecordRefused(format!(
                "record {record_id} is not in batch file {}",
                batch.path
            )))
        })?;
    Ok((rec.national_id().to_string(), rec.issuing_office().code()))
}

fn ship(
    c: &CounterArgs,
    records: Vec<String>,
    cards: Vec<String>,
    batch: Option<i64>,
    json: bool,
) -> Result<i32> {
    let st = station(c)?;
    let j = st.journal.as_ref();
    let mut wanted: Vec<(String, String)> = Vec::new(); // (serial, record)
    for r in records {
        let row = j
            .record(&r)
            .map_err(|e| anyhow!(e))?
            .ok_or_else(|| anyhow!(RecordRefused(format!("record {r} is not in the journal"))))?;
        match (row.state.as_str(), row.card_serial) {
            ("good", Some(s)) => wanted.push((s, r)),
            (state, _) => bail!(RecordRefused(format!(
                "record {r} is {state}, not on a good card: nothing to ship"
            ))),
        }
    }
    for s in cards {
        let s = s.to_ascii_uppercase();
        match j.card(&s).map_err(|e| anyhow!(e))? {
            crate::register::journal::CardKnown::Good { record_id, .. } => {
                wanted.push((s, record_id))
            }
            other => bail!(RecordRefused(format!(
                "card {s} is not a good card of the line ({other:?})"
            ))),
        }
    }
    let by_batch = batch.is_some();
    if let Some(b) = batch {
        for row in j.records(b).map_err(|e| anyhow!(e))? {
            if let (true, Some(s)) = (row.state == "good", row.card_serial.clone()) {
                if j.shipment(&s).map_err(|e| anyhow!(e))?.is_none() {
                    wanted.push((s, row.record_id));
                }
            }
        }
    }
    if wanted.is_empty() {
        bail!(RecordRefused(
            "nothing to ship: give --record, --card or --batch".into()
        ));
    }
    let mut shipped = Vec::new();
    let mut refused = Vec::new();
    for (serial, record_id) in wanted {
        let (nid, office) = record_office(j, &st.side, &record_id)?;
        if office != st.office {
            if !by_batch {
                refused.push(format!(
                    "card {serial}: record {record_id} is for office {office}, not {}",
                    st.office
                ));
            }
            continue;
        }
        match j.ship(&st.who, &serial, &record_id, &nid, &st.office) {
            Ok(s) => shipped.push(s),
            Err(e) => refused.push(format!("card {serial}: {e}")),
        }
    }
    for r in &refused {
        let _ = j.event(&st.who, "shipment refused", r);
    }
    if json {
        println!("{}", json!({"shipped": shipped, "refused": refused}));
    } else {
        for s in &shipped {
            println!(
                "shipped card {} (record {}) to office {} at {} by {}",
                s.card_serial,
                s.record_id,
                s.office,
                iso_time(s.at),
                s.operator
            );
        }
        for r in &refused {
            eprintln!("refused: {r}");
        }
        if shipped.is_empty() && refused.is_empty() {
            println!("nothing to ship for office {}", st.office);
        }
    }
    Ok(if refused.is_empty() {
        0
    } else {
        EXIT_CARD_STATUS
    })
}

fn print_certs(certs: &[CertRow]) {
    println!("certificates to revoke ({}):", certs.len());
    for c in certs {
        println!(
            "  {} key: serial {}\n    subject    {}\n    issuer     {}\n    key usage  {}\n    valid to   {}\n    SHA-256    {}",
            c.key, c.serial, c.subject, c.issuer, c.key_usage, c.not_after, c.sha256
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn replace(
    c: &CounterArgs,
    reason: &str,
    reader: Option<String>,
    lost: bool,
    card: Option<String>,
    national_id: Option<String>,
    json: bool,
) -> Result<i32> {
    if crate::record::ReplacementReason::from_name(reason).is_none() {
        bail!(RecordRefused(format!(
            "--reason {reason:?}: expected loss, damage or civil_data_change"
        )));
    }
    if reader.is_none() && !lost {
        bail!(RecordRefused(
            "say where the previous card is: --reader R (at hand: it is terminated) or --lost"
                .into()
        ));
    }
    if lost && card.is_none() && national_id.is_none() {
        bail!(RecordRefused(
            "--lost needs --card SERIAL or --national-id".into()
        ));
    }
    let st = station(c)?;
    check_may_record(&st)?;
    let j = st.journal.as_ref();
    let mut who = st.who.clone();
    let refuse = |who: &Who, why: String| -> Result<i32> {
        let _ = j.event(who, "replacement refused", &why);
        if json {
            println!(
                "{}",
                json!({"replacement": false, "reason": why,
                       "error": {"kind": "refused", "exit_code": EXIT_CARD_STATUS, "message": why}})
            );
        } else {
            eprintln!("REFUSED: {why}");
        }
        Ok(EXIT_CARD_STATUS)
    };
    // Which card is replaced.
    let found = if let Some(r) = &reader {
        terminate_previous(&st, r, &mut who, national_id.as_deref())?
            .map(|(serial, certs)| (serial, Some(certs)))
    } else if let Some(s) = &card {
        Ok((s.to_ascii_uppercase(), None))
    } else {
        active_card_of(j, national_id.as_deref().unwrap_or_default())?.map(|s| (s, None))
    };
    let (serial, certs_from_card) = match found {
        Ok(f) => f,
        Err(why) => return refuse(&who, why),
    };
    let status = if reader.is_some() {
        CardStatus::Terminated
    } else {
        CardStatus::Lost
    };
    let req = match j.request_replacement(&who, &serial, reason, status, &st.office) {
        Ok(r) => r,
        Err(e) => return refuse(&who, e.to_string()),
    };
    let mut certs = j.certificates(&serial).map_err(|e| anyhow!(e))?;
    if certs.is_empty() {
        certs = certs_from_card.unwrap_or_default();
    }
    let (revoked, not_revoked) = revoke(&st, &who, &serial, &certs, status);
    for why in &not_revoked {
        let _ = j.event(&who, "revocation failed", why);
    }
    if json {
        println!(
            "{}",
            json!({"replacement": true, "request": req, "certificates_to_revoke": certs,
                   "revoked": revoked, "not_revoked": not_revoked})
        );
    } else {
        println!(
            "replacement request {} taken at office {} by {}: card {} of national ID {} is {} ({})",
            req.id,
            req.office,
            req.operator,
            req.previous_card,
            req.national_id,
            status.as_str(),
            reason
        );
        print_certs(&certs);
        for r in &revoked {
            println!(
                "  revoked: certificate {} ({}) at {}",
                r.serial,
                r.reason.as_str(),
                iso_time(r.revoked_at)
            );
        }
        for why in &not_revoked {
            eprintln!("WARNING: not revoked: {why}");
        }
    }
    Ok(if not_revoked.is_empty() {
        0
    } else {
        EXIT_CARD_STATUS
    })
}

/// The previous card, in the reader: genuine, the holder's, delivered and
/// activated; then terminated, and checked to answer no more. `Ok(Err(why))`
/// is a refusal; `Err` a failure to talk to the card or the register.
fn terminate_previous(
    st: &Station,
    reader: &str,
    who: &mut Who,
    national_id: Option<&str>,
) -> Result<std::result::Result<(String, Vec<CertRow>), String>> {
    let j = st.journal.as_ref();
    let mut ch = connect(reader)?;
    *who = who.at_reader(&ch.reader());
    let ins = match ops::inspect(&mut ch, &st.side.profile, &st.side.ca.chain()) {
        Ok(i) => i,
        Err(ops::CardError::Terminated) => {
            return Ok(Err("the card in the reader is already terminated".into()))
        }
        Err(e) => return Err(anyhow!(e)),
    };
    if !ins.genuine() {
        return Ok(Err(format!(
            "card {} is not a genuine card of this issuer",
            ins.serial
        )));
    }
    if let Some(n) = national_id {
        if n != ins.field("national_id") {
            return Ok(Err(format!(
                "card {} belongs to another holder than national ID {n}",
                ins.serial
            )));
        }
    }
    // The rule first, then the irreversible step.
    match j.delivered(&ins.serial).map_err(|e| anyhow!(e))? {
        Some(d) if d.status == CardStatus::Activated => {}
        Some(d) => {
            return Ok(Err(format!("card {} is already {}", ins.serial, d.status.as_str()),
            ))
        }
        None => {
            return Ok(Err(format!(
                    "card {} was never delivered to its holder and activated ({}); a replacement can be requested only for a delivered, activated card",
                    ins.serial, ins.life_cycle
                ),
            ))
        }
    }
    if let Err(e) = crate::perso::card::terminate(
        &mut ch,
        &st.side.profile,
        &st.side.key,
        st.side.scp03.as_ref(),
        &ins.serial_bytes,
    ) {
        return Ok(Err(format!("card {}: terminating failed: {e}", ins.serial)));
    }
    match ops::identify(&mut ch, &st.side.profile) {
        Err(ops::CardError::Terminated) => {}
        other => {
            return Ok(Err(format!(
                "card {}: TERMINATE CARD USAGE was accepted but the card still answers ({:?})",
                ins.serial,
                other.map(|(_, lc)| lc)
            )))
        }
    }
    ch.release();
    Ok(Ok((
        ins.serial.clone(),
        crate::activate::counter::cert_rows(&ins),
    )))
}

/// A lost card: the holder's last activated card in the register.
fn active_card_of(j: &dyn Journal, nid: &str) -> Result<std::result::Result<String, String>> {
    let cards = j.delivered_to(nid).map_err(|e| anyhow!(e))?;
    match cards
        .iter()
        .rev()
        .find(|d| d.status == CardStatus::Activated)
    {
        Some(d) => Ok(Ok(d.card_serial.clone())),
        None => Ok(Err(if cards.is_empty() {
            format!("the journal has no card delivered to national ID {nid}: a replacement can be requested only for a delivered, activated card")
        } else {
            format!(
                "no active card of national ID {nid}: {}",
                cards
                    .iter()
                    .map(|d| format!("{} is {}", d.card_serial, d.status.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })),
    }
}

/// Revoke the replaced card's certificates at the CA now: a lost card's
/// keys may be in other hands (keyCompromise), a terminated card ceased
/// operation. Returns what was revoked and why the rest was not.
fn revoke(
    st: &Station,
    who: &Who,
    serial: &str,
    certs: &[CertRow],
    status: CardStatus,
) -> (Vec<crate::register::journal::Revocation>, Vec<String>) {
    let j = st.journal.as_ref();
    let mut revoked = Vec::new();
    let mut not_revoked = Vec::new();
    if let Some(why) = crate::register::journal::revocation_reason_for(status) {
        for c in certs {
            match st
                .side
                .ca
                .revoke_in(&JournalRevocations(j), who, &c.serial, serial, why)
            {
                Ok(r) => revoked.push(r),
                Err(e) => not_revoked.push(format!("certificate {}: {e}", c.serial)),
            }
        }
    }
    (revoked, not_revoked)
}

fn status(
    a: &JournalArgs,
    card: Option<String>,
    national_id: Option<String>,
    json: bool,
) -> Result<i32> {
    let j = open_journal(a)?;
    let mut serials: Vec<String> = Vec::new();
    if let Some(c) = card {
        serials.push(c.to_ascii_uppercase());
    }
    if let Some(n) = &national_id {
        for d in j.delivered_to(n).map_err(|e| anyhow!(e))? {
            if !serials.contains(&d.card_serial) {
                serials.push(d.card_serial);
            }
        }
    }
    let mut out = Vec::new();
    for s in &serials {
        let shipment = j.shipment(s).map_err(|e| anyhow!(e))?;
        let delivered = j.delivered(s).map_err(|e| anyhow!(e))?;
        let certs = j.certificates(s).map_err(|e| anyhow!(e))?;
        let mut revocations = Vec::new();
        for c in &certs {
            if let Some(r) = j.revocation(&c.serial).map_err(|e| anyhow!(e))? {
                revocations.push(r);
            }
        }
        out.push(
            json!({"card": s, "shipment": shipment, "delivery": delivered,
                        "certificates": certs, "revocations": revocations}),
        );
        if !json {
            println!("card {s}");
            match &shipment {
                Some(x) => println!(
                    "  shipped to office {} at {} by {} (record {})",
                    x.office,
                    iso_time(x.at),
                    x.operator,
                    x.record_id
                ),
                None => println!("  not shipped"),
            }
            match &delivered {
                Some(d) => {
                    println!(
                        "  delivered at office {} at {} by {} (station {}{})",
                        d.office,
                        iso_time(d.delivered_at),
                        d.delivered_by,
                        d.station,
                        d.login
                            .as_deref()
                            .map(|l| format!(", register login {l}"))
                            .unwrap_or_default()
                    );
                    println!(
                        "  status {}{}{}",
                        d.status.as_str().to_uppercase(),
                        d.reason
                            .as_deref()
                            .map(|r| format!(
                                " ({r}, {} by {})",
                                iso_time(d.status_at),
                                d.status_by
                            ))
                            .unwrap_or_default(),
                        d.replaced_by
                            .as_deref()
                            .map(|r| format!("; replaced by card {r}"))
                            .unwrap_or_default()
                    );
                }
                None => println!("  not delivered"),
            }
            for r in &revocations {
                println!(
                    "  certificate {} revoked ({}) at {} by {}",
                    r.serial,
                    r.reason.as_str(),
                    iso_time(r.revoked_at),
                    r.operator
                );
            }
        }
    }
    let reqs = match &national_id {
        Some(n) => j.replacements(n).map_err(|e| anyhow!(e))?,
        None => vec![],
    };
    if json {
        println!("{}", json!({"cards": out, "replacements": reqs}));
    } else {
        for r in &reqs {
            println!(
                "replacement request {}: card {} {} ({}) at office {} by {} on {}{}",
                r.id,
                r.previous_card,
                r.previous_card_status.as_str(),
                r.reason,
                r.office,
                r.operator,
                iso_time(r.at),
                r.new_card
                    .as_deref()
                    .map(|n| format!("; new card {n}"))
                    .unwrap_or_else(|| "; open".into())
            );
        }
        if serials.is_empty() {
            println!("the journal has no card for that");
        }
    }
    Ok(if serials.is_empty() {
        crate::cli::common::EXIT_ABSENT
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn office_codes_are_checked_before_anything_else() {
        assert_eq!(check_office("1021").ok().as_deref(), Some("1021"));
        assert_eq!(check_office("AE-DXB").ok().as_deref(), Some("AE-DXB"));
        for bad in ["102", "10210", "ae-dxb", "IR-THR", "AE_DXB", "", "۱۰۲۱"] {
            let e = check_office(bad).expect_err(bad).to_string();
            assert!(e.contains("--office") && e.contains("CC-XXX"), "{bad}: {e}");
        }
    }
}
