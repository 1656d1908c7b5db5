//! What the command-line modules share: exit codes and the mapping of
//! errors to them, the refusals found before a card is touched, the data
//! directory, the card arguments and the issuer side built from them.
//!
//! `cli` and its area modules (`cli::perso`, `cli::line`, `cli::activate`,
//! `cli::scp03`, …) and `cli::json_error` import this module; it imports
//! none of them, so the command-line modules form no cycle (see
//! `tests/module_graph.rs`).

use std::path::PathBuf;

use anyhow::{anyhow, Result};

use crate::apdu::{ApduError, StatusWord};
use crate::hex;
use crate::perso::side::{IssuerSide, SideConfig, SideError};
use crate::transport::{ExchangeError, TransportError};

pub const EXIT_OTHER: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_ABSENT: i32 = 3;
pub const EXIT_CARD_STATUS: i32 = 4;
pub const EXIT_TRANSPORT: i32 = 5;

/// A card answered an error status (exit code 4).
#[derive(Debug, thiserror::Error)]
#[error("card answered {sw}")]
pub struct CardStatusError {
    pub sw: StatusWord,
}

/// Pick the exit code for an error from anywhere below.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if let Some(t) = cause.downcast_ref::<TransportError>() {
            return if t.is_absence() {
                EXIT_ABSENT
            } else {
                EXIT_TRANSPORT
            };
        }
        if let Some(x) = cause.downcast_ref::<ExchangeError>() {
            return match x {
                ExchangeError::Transport(t) if t.is_absence() => EXIT_ABSENT,
                ExchangeError::Transport(_)
                | ExchangeError::Response(_)
                | ExchangeError::BadResponseData { .. } => EXIT_TRANSPORT,
                ExchangeError::ChainBroken { .. } | ExchangeError::Status { .. } => {
                    EXIT_CARD_STATUS
                }
                ExchangeError::Encode(_)
                | ExchangeError::TooLong { .. }
                | ExchangeError::Profile { .. }
                | ExchangeError::Driver(_) => EXIT_USAGE,
                ExchangeError::GetResponseLoop { .. } | ExchangeError::SecureChannel { .. } => {
                    EXIT_TRANSPORT
                }
            };
        }
        if cause.downcast_ref::<CardStatusError>().is_some()
            || cause.downcast_ref::<ChannelRefused>().is_some()
        {
            return EXIT_CARD_STATUS;
        }
        if cause.downcast_ref::<RecordRefused>().is_some()
            || cause.downcast_ref::<RecordsRefused>().is_some()
            || cause.downcast_ref::<UsageError>().is_some()
            || cause.downcast_ref::<KeyRefused>().is_some()
            || cause
                .downcast_ref::<crate::script::runner::UsageError>()
                .is_some()
        {
            return EXIT_USAGE;
        }
        if cause.downcast_ref::<ApduError>().is_some()
            || cause.downcast_ref::<hex::HexError>().is_some()
        {
            return EXIT_USAGE;
        }
    }
    EXIT_OTHER
}

/// Where cardsmith keeps its state: `$CARDSMITH_DATA_DIR`, else
/// `$XDG_DATA_HOME/cardsmith`, else `~/.local/share/cardsmith`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARDSMITH_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("cardsmith");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/cardsmith")
}

/// Citizen records refused before any card was touched (exit code 2), each
/// with its file, line, record and field.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RecordsRefused {
    pub message: String,
    pub errors: Vec<crate::record::RecordError>,
}

/// A key that could not be had, found before any card was touched (exit
/// code 2); the error document names its file and line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyRefused(pub crate::keyfile::KeyError);

/// `KeyRefused` as an `anyhow::Error` (for `map_err`).
pub fn key_refused(e: crate::keyfile::KeyError) -> anyhow::Error {
    anyhow::Error::new(KeyRefused(e))
}

/// A usage error found by the argument parser (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    pub message: String,
    pub argument: Option<String>,
}

/// Bad input found before any card was touched (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RecordRefused(pub String);

/// The card refused the channel or the keys are not its (exit code 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ChannelRefused(pub String);

/// Where the card is and what to use with it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CardArgs {
    /// The reader (index, exact name, or unique part of the name).
    #[arg(long, short)]
    pub reader: Option<String>,
    /// Use an in-process simulated card kept in this image file (created blank
    /// with the issuer key when missing) instead of a reader.
    #[arg(long, value_name = "FILE", conflicts_with = "reader")]
    pub sim_image: Option<PathBuf>,
    /// The card profile (default: the built-in reference card).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// The issuer transport key file (hex, mode 600). Default: $CARDSMITH_ISSUER_KEY, else <data dir>/issuer-key.
    #[arg(long, value_name = "FILE")]
    pub issuer_key: Option<PathBuf>,
    /// The SCP03 key file of the cards' security domain (mode 600; docs/scp03.md). Default: $CARDSMITH_SCP03_KEYS, else <data dir>/scp03-keys. Used when the profile names a security domain.
    #[arg(long, value_name = "FILE")]
    pub scp03_keys: Option<PathBuf>,
    /// Personalize in clear, as for a card without a security domain (a card with one refuses with 6982; a new --sim-image card is made without one).
    #[arg(long)]
    pub no_secure_channel: bool,
    /// Where the local CA and the default issuer key live (default: $CARDSMITH_DATA_DIR, $XDG_DATA_HOME/cardsmith or ~/.local/share/cardsmith).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl CardArgs {
    /// The issuer side's configuration: these arguments, with the data
    /// directory's default.
    pub fn side_config(&self) -> SideConfig {
        SideConfig {
            profile: self.profile.clone(),
            issuer_key: self.issuer_key.clone(),
            scp03_keys: self.scp03_keys.clone(),
            no_secure_channel: self.no_secure_channel,
            data_dir: self.data_dir.clone().unwrap_or_else(default_data_dir),
        }
    }
}

/// [`IssuerSide::open`] from the command line's arguments (the side is a
/// host type, so this is a trait the command line implements for it).
pub trait SideFromArgs: Sized {
    /// Open the side [`CardArgs`] configure: a bad profile or CA is refused
    /// input, a bad key a refused key (exit code 2 for both).
    fn load(a: &CardArgs) -> Result<Self>;
}

impl SideFromArgs for IssuerSide {
    fn load(a: &CardArgs) -> Result<IssuerSide> {
        IssuerSide::open(&a.side_config()).map_err(|e| match e {
            SideError::Key(k) => key_refused(k),
            other => anyhow!(RecordRefused(other.to_string())),
        })
    }
}

/// An office code as records write it.
pub fn check_office(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let domestic = b.len() == 4 && b.iter().all(u8::is_ascii_digit);
    let consulate = match b {
        [c1, c2, b'-', rest @ ..] => {
            rest.len() == 3
                && [c1, c2].into_iter().chain(rest).all(u8::is_ascii_uppercase)
                && [*c1, *c2] != *b"IR"
        }
        _ => false,
    };
    if domestic || consulate {
        Ok(s.to_string())
    } else {
        Err(anyhow!(RecordRefused(format!(
            "--office {s:?}: expected 4 digits for an office at home (1021) or CC-XXX for a consulate (AE-DXB)"
        ))))
    }
}
