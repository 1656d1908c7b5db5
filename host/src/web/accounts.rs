//! Operator accounts of a web counter station: name, role and an Argon2id
//! password hash (memory-hard), in one JSON file written with the private
//! writer (mode 600 in a 700 directory). No password is ever stored.

use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use serde::{Deserialize, Serialize};

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Hands cards out.
    Clerk,
    /// Also records a written override of a refusal.
    Supervisor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clerk => "clerk",
            Role::Supervisor => "supervisor",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub role: Role,
    /// PHC string (`$argon2id$v=19$…`).
    pub hash: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Accounts {
    pub operators: Vec<Account>,
}

/// Operator names as the register records them: 1–64 of letters, digits,
/// `.`, `_`, `-`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "operator name {name:?}: expected 1–64 characters of a–z, A–Z, 0–9, '.', '_', '-'"
        ))
    }
}

impl Accounts {
    /// The accounts file, or none when it does not exist yet.
    pub fn load(path: &Path) -> Result<Accounts, String> {
        match std::fs::read_to_string(path) {
            Ok(s) => serde_json::from_str(&s).map_err(|e| {
                format!(
                    "{}: line {}, column {}: not an operator accounts file ({e}); expected {{\"operators\": [{{\"name\", \"role\", \"hash\"}}]}}",
                    path.display(),
                    e.line(),
                    e.column()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Accounts::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private::create_dir_all(dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        crate::private::replace(path, text.as_bytes())
            .map(|_| ())
            .map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// Add an operator, or give an existing one a new password and role.
    pub fn set(&mut self, name: &str, role: Role, password: &[u8]) -> Result<(), String> {
        check_name(name)?;
        if password.len() < 10 {
            return Err(format!(
                "the password of {name} has {} characters; at least 10 are needed",
                password.len()
            ));
        }
        let salt = salt()?;
        let hash = Argon2::default()
            .hash_password(password, &salt)
            .map_err(|e| format!("hashing the password: {e}"))?
            .to_string();
        self.operators.retain(|a| a.name != name);
        self.operators.push(Account {
            name: name.to_string(),
            role,
            hash,
        });
        Ok(())
    }

    /// The account when the password is right. An unknown name costs the
    /// same hash computation as a known one.
    pub fn verify(&self, name: &str, password: &[u8]) -> Option<&Account> {
        let account = self.operators.iter().find(|a| a.name == name);
        let hash = match account {
            Some(a) => a.hash.clone(),
            None => dummy_hash().to_string(),
        };
        let parsed = PasswordHash::new(&hash).ok()?;
        let ok = Argon2::default().verify_password(password, &parsed).is_ok();
        if ok {
            account
        } else {
            None
        }
    }
}

fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        salt()
            .ok()
            .and_then(|salt| {
                Argon2::default()
                    .hash_password(b"no such operator", &salt)
                    .ok()
                    .map(|h| h.to_string())
            })
            .unwrap_or_default()
    })
}

/// 16 random bytes from the system's generator.
fn salt() -> Result<SaltString, String> {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| "the system's random generator failed".to_string())?;
    SaltString::encode_b64(&b).map_err(|e| e.to_string())
}

/// Where a station keeps its accounts by default.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join("counter").join("operators.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hashed_with_argon2id_and_checked() {
        let mut a = Accounts::default();
        a.set("clerk7", Role::Clerk, b"correct horse").expect("set");
        assert!(a.operators[0].hash.starts_with("$argon2id$"));
        assert!(!a.operators[0].hash.contains("correct horse"));
        assert_eq!(
            a.verify("clerk7", b"correct horse").map(|x| x.role),
            Some(Role::Clerk)
        );
        assert!(a.verify("clerk7", b"wrong horse!").is_none());
        assert!(a.verify("nobody", b"correct horse").is_none());
        assert!(a.set("bad name", Role::Clerk, b"correct horse").is_err());
        assert!(a.set("x", Role::Clerk, b"short").is_err());
    }

    #[test]
    fn the_file_is_private_and_a_bad_file_is_named() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("counter/operators.json");
        let mut a = Accounts::default();
        a.set("sup1", Role::Supervisor, b"a long password")
            .expect("set");
        a.save(&p).expect("save");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(Accounts::load(&p).expect("load").operators.len(), 1);
        std::fs::write(&p, "{\n \"operators\": 3}").expect("write");
        let e = Accounts::load(&p).expect_err("bad");
        assert!(e.contains("operators.json: line 2"), "{e}");
    }
}
