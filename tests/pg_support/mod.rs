//! A real PostgreSQL for tests: Debian's server, started by
//! `scripts/pg-cluster.sh` as a throwaway cluster in a temporary directory
//! on a free port, one per test (nextest runs each test in its own
//! process), removed when the test ends.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// Superuser URL, password included (tests only).
    pub admin: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_with(false)
    }

    /// A cluster with its own test CA (`tls/ca.pem` in its directory) that
    /// takes TCP logins over TLS only.
    pub fn start_tls() -> Cluster {
        Cluster::start_with(true)
    }

    fn start_with(tls: bool) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("cardsmith-pg")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let out = Command::new("bash")
            .arg(root().join("scripts/pg-cluster.sh"))
            .arg("start")
            .arg(dir.path())
            .arg(port.to_string())
            .env("CARDSMITH_PG_TLS", if tls { "1" } else { "0" })
            .output()
            .expect("pg-cluster.sh");
        assert!(
            out.status.success(),
            "starting PostgreSQL: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let admin = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Cluster { dir, port, admin }
    }

    fn script(&self, cmd: &str) {
        let out = Command::new("bash")
            .arg(root().join("scripts/pg-cluster.sh"))
            .arg(cmd)
            .arg(self.dir.path())
            .output()
            .expect("pg-cluster.sh");
        assert!(
            out.status.success(),
            "pg-cluster {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Fast restart: every connection is cut, the server comes back.
    pub fn restart(&self) {
        self.script("restart");
    }

    pub fn admin_client(&self) -> postgres::Client {
        postgres::Client::connect(&self.admin, postgres::NoTls).expect("admin connection")
    }

    /// A new database; returns its superuser URL (password included).
    pub fn database(&self, name: &str) -> String {
        let mut c = self.admin_client();
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let base = self
            .admin
            .strip_suffix("/postgres")
            .expect("admin URL ends in /postgres");
        format!("{base}/{name}")
    }

    /// A database with the register migrated in it.
    pub fn register(&self, name: &str) -> String {
        let url = self.database(name);
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        cardsmith::register::pgschema::migrate(&mut c, name).expect("migrate");
        url
    }

    /// The URL of `login` on `db`, without a password.
    pub fn url_for(&self, login: &str, db: &str) -> String {
        format!("postgresql://{login}@127.0.0.1:{}/{db}", self.port)
    }

    /// Cut every connection whose application name contains `needle`.
    pub fn terminate(&self, needle: &str) -> u64 {
        let mut c = self.admin_client();
        c.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
            &[&needle],
        )
        .expect("terminate")
        .len() as u64
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("scripts/pg-cluster.sh"))
            .arg("remove")
            .arg(self.dir.path())
            .output();
    }
}

/// A password file (mode 600) with one line per (login, password).
pub fn passfile(dir: &Path, port: u16, logins: &[(&str, &str)]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("pgpass");
    let text: String = logins
        .iter()
        .map(|(l, pw)| format!("127.0.0.1:{port}:*:{l}:{pw}\n"))
        .collect();
    std::fs::write(&p, text).expect("pgpass");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    p
}
