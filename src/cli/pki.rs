//! `cardsmith ca …`: the local test CA's revocation list.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde_json::json;

use crate::cli::perso::RecordRefused;
use crate::cli::register::{data_dir, open_journal, who, JournalArgs};
use crate::pki::ca::{CertificateAuthority, LocalCa};
use crate::pki::crl::crl_pem;
use crate::register::journal::iso_time;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlFormat {
    Pem,
    Der,
}

#[derive(clap::Subcommand, Debug)]
pub enum CaCommand {
    /// Issue a signed X.509 v2 CRL of every certificate the local CA revoked (kept in the register), with the next CRL number.
    #[command(
        after_help = "Examples:\n  cardsmith ca crl --out crl.pem\n  cardsmith ca crl --out crl.der --format der --next-update 12h --journal postgresql://supervisor@db.registry/register\n\nCheck it: openssl crl -in crl.pem -CAfile <data dir>/ca/ca-cert.pem -verify -noout"
    )]
    Crl {
        /// Write the CRL here (default: PEM on standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// PEM (`X509 CRL`) or DER.
        #[arg(long, value_enum, default_value = "pem")]
        format: CrlFormat,
        /// How long the CRL is valid: its nextUpdate is this long after now (e.g. 12h, 7d, 90m).
        #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_validity)]
        next_update: Duration,
        #[command(flatten)]
        journal: JournalArgs,
    },
}

/// A CRL validity: a whole number with m, h or d.
pub fn parse_validity(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration such as 90m, 12h or 7d"))?;
    let unit_secs = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; expected m, h or d")),
    };
    match n.checked_mul(unit_secs) {
        Some(secs) if secs > 0 && secs <= 366 * 86_400 => Ok(Duration::from_secs(secs)),
        _ => Err(format!("{s:?}: expected more than 0 and at most 366d")),
    }
}

pub fn ca(cmd: CaCommand, json: bool) -> Result<i32> {
    match cmd {
        CaCommand::Crl {
            out,
            format,
            next_update,
            journal,
        } => {
            let j = open_journal(&journal)?;
            let dir = data_dir(&journal).join("ca");
            let ca = LocalCa::open_or_create(&dir)
                .map_err(|e| anyhow!(RecordRefused(e.to_string())))?
                .with_register(std::sync::Arc::new(
                    crate::register::journal::JournalRevocations(j),
                ));
            let (issued, der) = ca
                .crl(&who(&journal), next_update)
                .map_err(|e| anyhow!(RecordRefused(e.to_string())))?;
            let bytes = match format {
                CrlFormat::Pem => crl_pem(&der).into_bytes(),
                CrlFormat::Der => der,
            };
            match &out {
                Some(path) => std::fs::write(path, &bytes)
                    .with_context(|| format!("writing the CRL to {}", path.display()))?,
                None if format == CrlFormat::Der => {
                    return Err(anyhow!(RecordRefused(
                        "--format der needs --out FILE (DER is binary)".into()
                    )))
                }
                None => print!("{}", String::from_utf8_lossy(&bytes)),
            }
            let summary = format!(
                "CRL number {} of {}: {} revoked certificate(s), this update {}, next update {}",
                issued.number,
                issued.issuer,
                issued.entries,
                iso_time(issued.this_update),
                iso_time(issued.next_update)
            );
            if json {
                if out.is_some() {
                    println!("{}", json!({"crl": issued, "out": out}));
                } else {
                    eprintln!("{}", json!({"crl": issued}));
                }
            } else {
                eprintln!("{summary}");
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_units() {
        assert_eq!(
            parse_validity("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(parse_validity("12h").unwrap(), Duration::from_secs(43_200));
        assert_eq!(parse_validity("90m").unwrap(), Duration::from_secs(5400));
        for bad in [
            "",
            "7",
            "0d",
            "7w",
            "-1d",
            "367d",
            "99999999999999999999d",
            "1.5d",
        ] {
            assert!(parse_validity(bad).is_err(), "{bad}");
        }
    }
}
