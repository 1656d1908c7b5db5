//! Key files: the error every key source gives, the permission check and
//! the first-use writer, shared by the issuer key ([`crate::perso::keys`])
//! and the SCP03 key files ([`crate::scp03::keyfile`]). Both sit above
//! this module, so neither needs the other.

use std::path::Path;

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
