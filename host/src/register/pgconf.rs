//! Where the shared register is and how to log in: a `postgresql://` URL,
//! with the password from the environment or a password file, never from
//! the command line (any user can read a command line in `ps`).
//!
//! The URL is parsed by the PostgreSQL client crate; what cardsmith adds is
//! the password lookup libpq users expect (`PGPASSWORD`, `PGPASSFILE`,
//! `~/.pgpass`, the file ignored unless only its owner can read it) and a
//! display form with no password in it for every message, log and report.

use super::journal::JournalError;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where the password came from (for messages; never the password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordSource {
    None,
    /// In the URL given through `CARDSMITH_JOURNAL` (the environment).
    Url,
    Env,
    File,
}

/// A parsed register location.
#[derive(Clone)]
pub struct PgTarget {
    pub config: postgres::Config,
    /// `postgresql://user@host:port/db`: no password, safe to print.
    pub display: String,
    pub password_source: PasswordSource,
    pub tls: TlsSettings,
}

/// How the connection is encrypted (libpq's `sslmode` and `sslrootcert`).
///
/// Whenever TLS is used, the server's certificate is verified: against
/// `sslrootcert` (the programme's CA) or else the system's trusted roots,
/// and its name against the host (`verify-ca` skips only the name check).
/// `sslmode=require` and `verify-full` insist on TLS; `prefer` (the
/// default) uses it when the server offers it; `disable` never does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    pub root_cert: Option<std::path::PathBuf>,
    pub verify_hostname: bool,
    /// The mode as given (for messages).
    pub mode: String,
}

/// Take out of the URL's query what the client crate does not read
/// (`sslrootcert`, libpq's `verify-ca`/`verify-full` modes), returning the
/// URL it can parse and the TLS settings.
fn split_tls(url: &str) -> Result<(String, TlsSettings), String> {
    let mut tls = TlsSettings {
        root_cert: None,
        verify_hostname: true,
        mode: "prefer".into(),
    };
    let Some((head, query)) = url.split_once('?') else {
        return Ok((url.to_string(), tls));
    };
    let mut kept = vec![];
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "sslrootcert" => {
                if v.is_empty() {
                    return Err(
                        "sslrootcert is empty; expected the path of the CA certificate (PEM)"
                            .into(),
                    );
                }
                tls.root_cert = Some(std::path::PathBuf::from(v));
            }
            "sslmode" => {
                tls.mode = v.to_string();
                match v {
                    "disable" | "prefer" | "require" => kept.push(kv.to_string()),
                    "verify-full" => kept.push("sslmode=require".into()),
                    "verify-ca" => {
                        tls.verify_hostname = false;
                        kept.push("sslmode=require".into());
                    }
                    other => {
                        return Err(format!(
                            "sslmode={other}: expected disable, prefer, require, verify-ca or verify-full"
                        ))
                    }
                }
            }
            _ => kept.push(kv.to_string()),
        }
    }
    let url = if kept.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    Ok((url, tls))
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgTarget({})", self.display)
    }
}

/// Is this journal location a PostgreSQL URL?
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgresql://") || location.starts_with("postgres://")
}

/// The URL with any password replaced by `***`, for messages about a URL
/// that did not even parse.
pub fn mask(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            // Query parameters may carry a password too.
            let tail = mask_query(tail);
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => format!("{scheme}://{authority}{}", mask_query(tail)),
    }
}

fn mask_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let q: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{path}?{}", q.join("&"))
}

fn display_of(c: &postgres::Config) -> String {
    let user = c.get_user().unwrap_or("");
    let host = c
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(s) => s.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let db = c.get_dbname().unwrap_or(user);
    if user.is_empty() {
        format!("postgresql://{host}:{port}/{db}")
    } else {
        format!("postgresql://{user}@{host}:{port}/{db}")
    }
}

/// Parse a register URL. `from_command_line`: the URL came from an
/// argument, where a password is refused.
pub fn parse(url: &str, from_command_line: bool) -> Result<PgTarget, JournalError> {
    let bad = |detail: String| JournalError::Storage {
        path: mask(url),
        detail,
    };
    let (plain, tls) = split_tls(url).map_err(&bad)?;
    let mut config = postgres::Config::from_str(&plain).map_err(|e| {
        bad(format!(
            "not a valid PostgreSQL URL ({}); expected postgresql://USER@HOST:PORT/DATABASE",
            strip_secrets(&e.to_string(), url)
        ))
    })?;
    if config.get_user().is_none_or(|u| u.is_empty()) {
        return Err(bad(
            "the URL names no user; expected postgresql://USER@HOST:PORT/DATABASE".into(),
        ));
    }
    let mut source = PasswordSource::None;
    if config.get_password().is_some() {
        if from_command_line {
            return Err(bad(
                "the URL on the command line carries a password, which other users can read with ps; \
                 put it in a password file (PGPASSFILE, ~/.pgpass) or PGPASSWORD, or give the whole URL in CARDSMITH_JOURNAL"
                    .into(),
            ));
        }
        source = PasswordSource::Url;
    } else if let Ok(p) = std::env::var("PGPASSWORD") {
        config.password(p);
        source = PasswordSource::Env;
    } else if let Some(p) = passfile_password(&config)? {
        config.password(p);
        source = PasswordSource::File;
    }
    if config.get_application_name().is_none() {
        config.application_name("cardsmith");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    let display = display_of(&config);
    Ok(PgTarget {
        config,
        display,
        password_source: source,
        tls,
    })
}

/// An error text from the URL parser, with anything of the URL's password
/// removed.
fn strip_secrets(text: &str, url: &str) -> String {
    let mut out = text.to_string();
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, pw)) = userinfo.split_once(':') {
                if !pw.is_empty() {
                    out = out.replace(pw, "***");
                }
            }
        }
    }
    out
}

fn passfile_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGPASSFILE") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass"))
}

/// The password for this connection from the password file, as libpq
/// reads it: `host:port:database:user:password`, `*` matches anything,
/// `\:` and `\\` escape, the first matching line wins. A file that group
/// or others can read is ignored with a warning, as libpq does.
fn passfile_password(c: &postgres::Config) -> Result<Option<String>, JournalError> {
    let Some(path) = passfile_path() else {
        return Ok(None);
    };
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(None);
    };
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "password file {} is readable by group or others (mode {:o}); ignored: chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
            return Ok(None);
        }
    }
    let text = std::fs::read_to_string(&path).map_err(|e| JournalError::Storage {
        path: path.display().to_string(),
        detail: format!("reading the password file: {e}"),
    })?;
    let host = match c.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(_)) | None => "localhost".into(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432).to_string();
    let user = c.get_user().unwrap_or("").to_string();
    let db = c.get_dbname().unwrap_or(&user).to_string();
    Ok(lookup(&text, &host, &port, &db, &user))
}

/// Split a password-file line into its five fields, undoing escapes.
fn fields(line: &str) -> Option<Vec<String>> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut()?.push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            _ => out.last_mut()?.push(ch),
        }
    }
    (out.len() == 5).then_some(out)
}

/// The first line of a password file that matches.
pub fn lookup(text: &str, host: &str, port: &str, db: &str, user: &str) -> Option<String> {
    let want = [host, port, db, user];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(fields)
        .find(|f| {
            f.iter()
                .zip(want)
                .all(|(field, w)| field == "*" || field == w)
        })
        .and_then(|f| f.into_iter().nth(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_in_urls_and_queries() {
        assert_eq!(
            mask("postgresql://line1:s3cret@db.example:5432/register"),
            "postgresql://line1:***@db.example:5432/register"
        );
        assert_eq!(
            mask("postgresql://db/register?user=x&password=s3cret"),
            "postgresql://db/register?user=x&password=***"
        );
        assert_eq!(mask("postgresql://u@h/d"), "postgresql://u@h/d");
    }

    #[test]
    fn a_password_on_the_command_line_is_refused_and_not_repeated() {
        let e = parse("postgresql://line1:s3cret@127.0.0.1:5432/register", true)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("ps"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        assert!(e.contains("line1:***@"), "{e}");
    }

    #[test]
    fn a_url_without_a_user_or_malformed_is_named() {
        let e = parse("postgresql://127.0.0.1:5432/register", true)
            .expect_err("no user")
            .to_string();
        assert!(e.contains("names no user"), "{e}");
        let e = parse("postgresql://u:pw@host:notaport/db", false)
            .expect_err("bad port")
            .to_string();
        assert!(e.contains("not a valid PostgreSQL URL"), "{e}");
        assert!(!e.contains(":pw@"), "{e}");
    }

    #[test]
    fn password_file_lines_match_like_libpq() {
        let text = "# comment\n\
                    otherhost:5432:*:line1:wrong\n\
                    127.0.0.1:*:register:line1:pa\\:ss\\\\word\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            lookup(text, "127.0.0.1", "55432", "register", "line1").as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            lookup(text, "10.0.0.1", "5432", "register", "counter").as_deref(),
            Some("fallback")
        );
        assert_eq!(lookup("a:b:c\n", "a", "b", "c", "d"), None);
    }
}
