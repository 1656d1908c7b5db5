//! `cardsmith scp03`: open a secure channel with a card's security domain
//! (`check`), and rotate its keys with PUT KEY (`rotate`).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use serde_json::json;

pub use crate::cli::common::ChannelRefused;
use crate::cli::common::{default_data_dir, RecordRefused};
use crate::perso::profile::Profile;
use crate::scp03::commands;
use crate::scp03::keyfile::Scp03Keys;
use crate::scp03::link::{self, Opened, Options};
use crate::scp03::{KeySource, Mode, SecurityLevel};
use crate::transport::pcsc::{ConnectOptions, PcscTransport};
use crate::transport::{Channel, ExchangeOptions};

/// Where the card is and which keys open its security domain.
#[derive(clap::Args, Debug, Clone)]
pub struct SdArgs {
    /// The reader (index, exact name, or unique part of the name).
    #[arg(long, short)]
    pub reader: Option<String>,
    /// The SCP03 key file (mode 600). Default: $CARDSMITH_SCP03_KEYS, else <data dir>/scp03-keys.
    #[arg(long, value_name = "FILE")]
    pub scp03_keys: Option<PathBuf>,
    /// The card profile whose [security_domain] names the AID and level (default: the reference card).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// The security domain's AID, instead of the profile's.
    #[arg(long, value_name = "HEX")]
    pub aid: Option<String>,
    /// Where the default key file lives.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `cardsmith scp03 …`
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Scp03Command {
    /// Open a secure channel and report the key version, level and sequence counter. A wrong key is found before EXTERNAL AUTHENTICATE, so the card's counter is untouched.
    #[command(
        after_help = "Examples:\n  cardsmith scp03 check --reader 0\n  cardsmith scp03 check --reader 0 --scp03-keys keys/batch-17 --json\n\nExit codes: 0 channel opened, 2 bad key file or profile, 3 no reader or card, 4 the card refused or the keys are not its, 5 transport failure."
    )]
    Check(SdArgs),
    /// Replace the card's SCP03 key set with PUT KEY over a secure channel, then prove the new keys by opening a channel with them.
    #[command(
        after_help = "Examples:\n  cardsmith scp03 rotate --reader 0 --new-keys keys/production\n\nThe new key file has the same format (docs/scp03.md); a master key is diversified with this card's KDD. Key check values are printed, keys never."
    )]
    Rotate {
        #[command(flatten)]
        card: SdArgs,
        /// The key file with the new key set (mode 600).
        #[arg(long, value_name = "FILE")]
        new_keys: PathBuf,
    },
}

struct Target {
    keys: Scp03Keys,
    opts: Options,
    ch: Channel,
}

fn target(a: &SdArgs) -> Result<Target> {
    let dir = a.data_dir.clone().unwrap_or_else(default_data_dir);
    let refused = |e: String| anyhow!(RecordRefused(e));
    let keys = Scp03Keys::locate(a.scp03_keys.as_deref(), &dir)
        .map_err(crate::cli::json_error::key_refused)?;
    let profile =
        Profile::load_or_reference(a.profile.as_deref()).map_err(|e| refused(e.to_string()))?;
    let opts = match (&a.aid, &profile.security_domain) {
        (Some(aid), sd) => Options {
            aid: crate::hex::parse(aid).map_err(|e| refused(format!("--aid: {e}")))?,
            level: sd.as_ref().map_or(SecurityLevel::ALL[0], |s| s.level),
            mode: sd.as_ref().map_or(Mode::S8, |s| s.mode),
        },
        (None, Some(sd)) => sd.options(),
        (None, None) => {
            return Err(refused(format!(
                "the profile {} names no security domain; give --aid",
                profile.source
            )))
        }
    };
    let t = PcscTransport::connect(a.reader.as_deref(), ConnectOptions::default())?;
    let ch = Channel::new(Box::new(t), ExchangeOptions::default());
    Ok(Target { keys, opts, ch })
}

fn open(t: &mut Target) -> Result<Opened> {
    link::open(&mut t.ch, &t.keys, &t.opts).map_err(|e| match e {
        link::OpenError::Exchange(x) => anyhow!(x),
        other => anyhow!(ChannelRefused(other.to_string())),
    })
}

fn level_text(l: SecurityLevel) -> String {
    l.names(false).join(" ")
}

fn kcv_hex(k: &crate::scp03::StaticKeys) -> [String; 3] {
    k.kcvs().map(|c| crate::hex::compact(&c))
}

pub fn run(cmd: Scp03Command, json: bool) -> Result<i32> {
    match cmd {
        Scp03Command::Check(a) => {
            let mut t = target(&a)?;
            let o = open(&mut t)?;
            report(json, "opened", &o, None);
            Ok(0)
        }
        Scp03Command::Rotate { card, new_keys } => {
            let mut t = target(&card)?;
            let new =
                Scp03Keys::from_file(&new_keys).map_err(crate::cli::json_error::key_refused)?;
            let o = open(&mut t)?;
            let new_static = new
                .for_card(&o.kdd)
                .map_err(|e| anyhow!(RecordRefused(format!("new keys: {e}"))))?;
            let dek = t
                .keys
                .for_card(&o.kdd)
                .map_err(|e| anyhow!(RecordRefused(e.to_string())))?;
            let pk = commands::put_key(&new_static, new_static.kvn(), o.kvn, dek.dek())
                .map_err(|e| anyhow!(RecordRefused(format!("PUT KEY: {e}"))))?;
            let resp = t.ch.run(|ex| ex.transmit(&pk.command))?;
            if let Err(e) = pk.check_response(&resp) {
                bail!(ChannelRefused(format!(
                    "PUT KEY: the card answered {} ({e}); the old keys are still in force",
                    resp.sw
                )));
            }
            link::close(&mut t.ch, &t.opts);
            // Prove the new keys: a fresh channel with them.
            t.ch.reconnect(true)?;
            t.keys = Scp03Keys {
                keys: KeySource::Static(new_static.clone()),
                origin: format!("file {}", new_keys.display()),
            };
            let again = open(&mut t)?;
            report(json, "rotated", &again, Some(&new_static));
            Ok(0)
        }
    }
}

fn report(json: bool, what: &str, o: &Opened, new: Option<&crate::scp03::StaticKeys>) {
    if json {
        let mut v = json!({
            "result": what,
            "kvn": format!("{:02X}", o.kvn),
            "level": level_text(o.level),
            "mode": format!("{:?}", o.mode),
            "kdd": crate::hex::compact(&o.kdd),
            "sequence_counter": o.sequence_counter,
        });
        if let Some(k) = new {
            if let Some(obj) = v.as_object_mut() {
                obj.insert("kcv".into(), json!(kcv_hex(k)));
            }
        }
        println!("{v}");
    } else {
        println!(
            "secure channel {what}: KVN {:02X}, {}, {:?}, KDD {}{}",
            o.kvn,
            level_text(o.level),
            o.mode,
            crate::hex::compact(&o.kdd),
            o.sequence_counter
                .map(|c| format!(", sequence counter {c:06X}"))
                .unwrap_or_default()
        );
        if let Some(k) = new {
            let [enc, mac, dek] = kcv_hex(k);
            println!(
                "new key set KVN {:02X} in force; key check values ENC {enc} MAC {mac} DEK {dek}",
                k.kvn(),
            );
        }
    }
}
