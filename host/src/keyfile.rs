//! Key files: the one resolver (command-line file, else environment, else
//! the data directory's default), the error every key source gives, the
//! permission check and the first-use writer, shared by the issuer key
//! ([`crate::perso::keys`]) and the SCP03 key files
//! ([`crate::scp03::keyfile`]). Both sit above this module, so neither
//! needs the other.

use std::path::{Path, PathBuf};

/// Where a key is to be read from.
pub enum KeyOrigin {
    /// A key file (checked private by its reader).
    File(PathBuf),
    /// The text of the environment variable that names the key.
    Env(zeroize::Zeroizing<String>),
}

/// The one key resolver: the file given on the command line, else the
/// environment variable `env_var`, else `default` (the data directory's
/// file), made by `create` when it is missing.
pub fn resolve(
    explicit: Option<&Path>,
    env_var: &str,
    default: PathBuf,
    create: impl FnOnce(&Path) -> Result<(), KeyError>,
) -> Result<KeyOrigin, KeyError> {
    if let Some(p) = explicit {
        return Ok(KeyOrigin::File(p.to_path_buf()));
    }
    if let Some(v) = std::env::var_os(env_var) {
        return Ok(KeyOrigin::Env(zeroize::Zeroizing::new(
            v.to_string_lossy().into_owned(),
        )));
    }
    if !default.exists() {
        create(&default)?;
    }
    Ok(KeyOrigin::File(default))
}

/// Why a key (the issuer key, SCP03 keys) could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{}: cannot read: {error}", named(source_name))]
    Read {
        source_name: String,
        error: std::io::Error,
    },
    #[error("{}: {problem}", named(source_name))]
    Invalid {
        source_name: String,
        problem: String,
    },
}

/// The key a source holds, named: "issuer key file /x/issuer-key", or the
/// source name as given when it names its key itself ("SCP03 key file …").
fn named(source_name: &str) -> String {
    if source_name.starts_with("SCP03 ") {
        source_name.to_string()
    } else {
        format!("issuer key {source_name}")
    }
}

impl KeyError {
    fn source_name(&self) -> &str {
        match self {
            KeyError::Read { source_name, .. } | KeyError::Invalid { source_name, .. } => {
                source_name
            }
        }
    }

    /// The key file the error is about, when the key came from a file.
    pub fn file(&self) -> Option<&str> {
        let s = self.source_name();
        s.find("file ").map(|i| &s[i + "file ".len()..])
    }

    /// The line of the key file or variable the error is about, if it names one.
    pub fn line(&self) -> Option<u64> {
        match self {
            KeyError::Invalid { problem, .. } => problem
                .strip_prefix("line ")
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse().ok()),
            KeyError::Read { .. } => None,
        }
    }
}

/// Refuse a key file that group or others may read.
#[cfg(unix)]
pub(crate) fn check_private(path: &Path, source: &str) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|error| KeyError::Read {
        source_name: source.into(),
        error,
    })?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::Invalid {
            source_name: source.into(),
            problem: format!(
                "readable by group or others (mode {:o}); expected 600: chmod 600 {}",
                mode & 0o777,
                path.display()
            ),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check_private(_: &Path, _: &str) -> Result<(), KeyError> {
    Ok(())
}

/// Write a new private file (mode 0600, through [`crate::private`])
/// atomically. If another process created `path` first, theirs is kept.
pub(crate) fn write_private_once(path: &Path, text: &str, source: &str) -> Result<(), KeyError> {
    crate::private::write_new(path, text.as_bytes())
        .map(|_| ())
        .map_err(|error| KeyError::Read {
            source_name: source.to_string(),
            error,
        })
}

#[cfg(test)]
mod resolve_tests {
    use super::*;

    #[test]
    fn the_command_line_file_comes_first_then_the_default_made_once() {
        let dir = std::env::temp_dir().join(format!("cardsmith-keyfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let env = "CARDSMITH_TEST_KEY_NEVER_SET";
        let default = dir.join("key");
        let made = std::cell::Cell::new(0);
        let create = |p: &Path| {
            made.set(made.get() + 1);
            std::fs::write(p, "k").map_err(|error| KeyError::Read {
                source_name: p.display().to_string(),
                error,
            })
        };
        // Given on the command line: that file, nothing made.
        let given = dir.join("given");
        match resolve(Some(&given), env, default.clone(), create).unwrap() {
            KeyOrigin::File(p) => assert_eq!(p, given),
            KeyOrigin::Env(_) => panic!("not from the environment"),
        }
        assert_eq!(made.get(), 0);
        // Not given: the default, made when missing, then reused.
        for _ in 0..2 {
            match resolve(None, env, default.clone(), create).unwrap() {
                KeyOrigin::File(p) => assert_eq!(p, default),
                KeyOrigin::Env(_) => panic!("not from the environment"),
            }
        }
        assert_eq!(made.get(), 1);
        // A default that cannot be made is the creator's error.
        let nowhere = dir.join("no/such/dir/key");
        let e = resolve(None, env, nowhere, |p: &Path| {
            std::fs::write(p, "k").map_err(|error| KeyError::Read {
                source_name: p.display().to_string(),
                error,
            })
        });
        assert!(matches!(e, Err(KeyError::Read { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
