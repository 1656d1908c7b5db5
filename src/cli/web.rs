//! `cardsmith counter …`: the counter as a web station (`serve`) and its
//! operator accounts (`operator add`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};

use crate::activate::counter::Counter;
use crate::activate::display::RtlMode;
use crate::activate::policy::PinPolicy;
use crate::cli::activate::{check_may_record, station as open_station, CounterArgs};
use crate::cli::common::RecordRefused;
use crate::cli::register::{data_dir, parse_duration};
use crate::transport::pcsc as pc;
use crate::web::accounts::{self, Accounts, Role};
use crate::web::server::App;
use crate::web::session::Sessions;
use crate::web::station::{self, Shared};

/// `--role`, as the command line names it.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum RoleArg {
    /// Hands cards out.
    Clerk,
    /// Also records a written override of a refusal.
    Supervisor,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Clerk => Role::Clerk,
            RoleArg::Supervisor => Role::Supervisor,
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum CounterCommand {
    /// Serve the pickup counter to a browser on this PC (Persian and English), driving the card reader with the same engine as `activate counter`.
    #[command(
        after_help = "Example:\n  cardsmith counter operator add clerk7 --role clerk --password-file pw.txt\n  cardsmith counter serve --office 1021 --reader 'Virtual PCD 00 00'\n  # then open http://127.0.0.1:8470/ in the counter PC's browser\n\nA non-loopback --listen address needs --tls-cert and --tls-key (PEM): the station is then served over HTTPS only."
    )]
    Serve(Box<ServeArgs>),
    /// The station's operator accounts (Argon2id password hashes, in a mode-600 file).
    #[command(subcommand)]
    Operator(OperatorCommand),
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub counter: CounterArgs,
    /// The counter's reader (index, exact name, or unique part of the name).
    #[arg(long, short)]
    pub reader: String,
    /// Where to listen. Loopback by default; any other address needs TLS.
    #[arg(long, default_value = "127.0.0.1:8470", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// The server's certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The server's private key (PEM, mode 600).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The folder the fingerprint scanner software writes its ISO/IEC 19794-2 files to (default: <data dir>/counter/scanner). A file read is deleted.
    #[arg(long, value_name = "DIR")]
    pub scanner_dir: Option<PathBuf>,
    /// The operator accounts file (default: <data dir>/counter/operators.json).
    #[arg(long, value_name = "FILE")]
    pub operators: Option<PathBuf>,
    /// A session ends after this long without the operator doing anything.
    #[arg(long, default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub idle: Duration,
    /// A session ends after this long in any case.
    #[arg(long, default_value = "600m", value_parser = parse_duration, value_name = "DURATION")]
    pub session_max: Duration,
    /// PIN length the holder must choose, MIN-MAX digits (within the card's 6-12).
    #[arg(long, default_value = "6-8", value_name = "MIN-MAX")]
    pub pin_length: String,
    /// Where the holder's photo is saved (default: <data dir>/counter/photos).
    #[arg(long, value_name = "DIR")]
    pub photo_dir: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum OperatorCommand {
    /// Add an operator, or set an existing one's password and role.
    #[command(
        after_help = "Example:\n  cardsmith counter operator add sup1 --role supervisor --password-file pw.txt\n\nThe password file holds the password on its first line and must be mode 600."
    )]
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A mode-600 file whose first line is the password (at least 10 characters).
        #[arg(long, value_name = "FILE")]
        password_file: PathBuf,
        /// The operator accounts file (default: <data dir>/counter/operators.json).
        #[arg(long, value_name = "FILE")]
        operators: Option<PathBuf>,
        /// Where the station's files live (default: $CARDSMITH_DATA_DIR, …).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

pub fn counter(cmd: CounterCommand, json: bool) -> Result<i32> {
    match cmd {
        CounterCommand::Serve(a) => serve(*a),
        CounterCommand::Operator(OperatorCommand::Add {
            name,
            role,
            password_file,
            operators,
            data_dir: dir,
        }) => {
            let role: Role = role.into();
            let path = operators.unwrap_or_else(|| {
                accounts::default_path(&dir.unwrap_or_else(crate::cli::common::default_data_dir))
            });
            let password = read_password(&password_file)?;
            let mut accts = Accounts::load(&path).map_err(|e| anyhow!(RecordRefused(e)))?;
            accts
                .set(&name, role, password.as_bytes())
                .map_err(|e| anyhow!(RecordRefused(e)))?;
            accts.save(&path).map_err(|e| anyhow!(e))?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"operator": name, "role": role.as_str(), "accounts": path})
                );
            } else {
                println!(
                    "operator {name} ({}) saved in {}",
                    role.as_str(),
                    path.display()
                );
            }
            Ok(0)
        }
    }
}

/// The first line of a mode-600 file.
fn read_password(path: &std::path::Path) -> Result<zeroize::Zeroizing<String>> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|e| {
        anyhow!(RecordRefused(format!(
            "--password-file {}: {e}",
            path.display()
        )))
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(RecordRefused(format!(
            "--password-file {}: readable by group or others (mode {mode:o}); expected 600: chmod 600 {}",
            path.display(),
            path.display()
        )));
    }
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        anyhow!(RecordRefused(format!(
            "--password-file {}: {e}",
            path.display()
        )))
    })?);
    let first = text.lines().next().unwrap_or("");
    if first.is_empty() {
        bail!(RecordRefused(format!(
            "--password-file {}: line 1: expected the password, found nothing",
            path.display()
        )));
    }
    Ok(zeroize::Zeroizing::new(first.to_string()))
}

/// Whether the station may listen on `addr` as asked.
pub fn check_listen(addr: &SocketAddr, tls: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || tls {
        Ok(())
    } else {
        Err(format!(
            "--listen {addr}: not a loopback address; serving the counter beyond this PC needs TLS: give --tls-cert FILE and --tls-key FILE (PEM)"
        ))
    }
}

fn serve(a: ServeArgs) -> Result<i32> {
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => Some(tiny_http::SslConfig {
            certificate: std::fs::read(c)
                .map_err(|e| anyhow!(RecordRefused(format!("--tls-cert {}: {e}", c.display()))))?,
            private_key: std::fs::read(k)
                .map_err(|e| anyhow!(RecordRefused(format!("--tls-key {}: {e}", k.display()))))?,
        }),
        _ => None,
    };
    check_listen(&a.listen, tls.is_some()).map_err(|e| anyhow!(RecordRefused(e)))?;
    let policy = PinPolicy::parse_length(&a.pin_length).map_err(|e| anyhow!(RecordRefused(e)))?;
    let dir = data_dir(&a.counter.journal);
    let accounts_path = a
        .operators
        .clone()
        .unwrap_or_else(|| accounts::default_path(&dir));
    let accounts = Accounts::load(&accounts_path).map_err(|e| anyhow!(RecordRefused(e)))?;
    if accounts.operators.is_empty() {
        bail!(RecordRefused(format!(
            "no operator accounts in {}: add one first with `cardsmith counter operator add NAME --role clerk --password-file FILE`",
            accounts_path.display()
        )));
    }
    let scanner_dir = a
        .scanner_dir
        .clone()
        .unwrap_or_else(|| dir.join("counter").join("scanner"));
    crate::private::create_dir_all(&scanner_dir)
        .with_context(|| format!("creating the scanner folder {}", scanner_dir.display()))?;
    let photo_dir = a
        .photo_dir
        .clone()
        .unwrap_or_else(|| dir.join("counter").join("photos"));
    let st = open_station(&a.counter)?;
    check_may_record(&st)?;
    let readers = pc::list_readers()?;
    let reader = pc::choose_reader(&readers, Some(&a.reader))?;
    let server = match tls {
        Some(cfg) => tiny_http::Server::https(a.listen, cfg),
        None => tiny_http::Server::http(a.listen),
    }
    .map_err(|e| anyhow!("--listen {}: {e}", a.listen))?;
    let scheme = if a.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let digits = policy.describe();
    let shared = Shared::new(
        &reader,
        &st.office,
        &st.who.station,
        &scanner_dir,
        digits.trim_end_matches(" digits"),
    );
    let app = App {
        shared: &shared,
        sessions: Sessions::new(a.idle, a.session_max),
        accounts,
        journal: st.journal.as_ref(),
        who: st.who.clone(),
        tls: scheme == "https",
        streams: std::sync::atomic::AtomicUsize::new(0),
    };
    println!(
        "cardsmith counter station: {scheme}://{}/ (office {}, reader {reader}, scanner folder {}, {} operator account(s))",
        a.listen,
        st.office,
        scanner_dir.display(),
        app.accounts.operators.len()
    );
    let _ = app.journal.event(
        &st.who.at_reader(&reader),
        "counter opened",
        &format!(
            "office {}, web station on {scheme}://{}",
            st.office, a.listen
        ),
    );
    let make = |operator: &str| Counter {
        side: &st.side,
        others: &st.others,
        journal: st.journal.as_ref(),
        who: crate::register::journal::Who {
            operator: operator.to_string(),
            ..st.who.clone()
        },
        office: st.office.clone(),
        policy,
        rtl: RtlMode::Logical,
        photo_dir: photo_dir.clone(),
        pin_rounds: 5,
    };
    std::thread::scope(|s| {
        for _ in 0..crate::web::server::THREADS {
            s.spawn(|| {
                while let Ok(rq) = server.recv() {
                    app.handle(rq);
                }
            });
        }
        station::run(&shared, &make);
        server.unblock();
    });
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_local_address_needs_tls() {
        let lo: SocketAddr = "127.0.0.1:8470".parse().expect("addr");
        let any: SocketAddr = "0.0.0.0:8470".parse().expect("addr");
        assert!(check_listen(&lo, false).is_ok());
        let e = check_listen(&any, false).expect_err("refused");
        assert!(
            e.contains("--tls-cert") && e.contains("0.0.0.0:8470"),
            "{e}"
        );
        assert!(check_listen(&any, true).is_ok());
    }
}
