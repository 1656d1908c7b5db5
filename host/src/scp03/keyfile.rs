//! Where the host gets the security domain's SCP03 keys from.
//!
//! Sources, first match wins (the same order as the issuer key's):
//! 1. `--scp03-keys FILE`; the file must not be readable by group or others.
//! 2. `CARDSMITH_SCP03_KEYS`: the same entries, separated by newlines or `;`.
//! 3. `<data dir>/scp03-keys`: the embedded default for simulated cards,
//!    created on first use with a random AES-128 master key (mode 0600).
//!
//! The format is one `name = value` entry per line, `#` comments:
//!
//! ```text
//! kvn = 30                 # key version number (hex, 01..7F)
//! master = 000102…0F       # a master key, diversified for each card
//! diversification = kdf3   # GlobalPlatformPro KDF3 over the card's KDD (the default)
//! ```
//!
//! or static keys shared by every card: `enc`, `mac` and `dek`, or `key`
//! for one value used as all three. Values are hex (16, 24 or 32 bytes).
//! Errors name the source, the line and the entry, never a value.

use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::keys::{AesKey, Diversification, KeySource, StaticKeys};
use crate::keyfile::{check_private, write_private_once, KeyError};

/// Environment variable that may hold the SCP03 key entries.
pub const ENV_VAR: &str = "CARDSMITH_SCP03_KEYS";
/// Name of the default key file in the data directory.
pub const DEFAULT_FILE: &str = "scp03-keys";

/// The security domain keys and where they came from.
#[derive(Clone)]
pub struct Scp03Keys {
    pub keys: KeySource,
    /// "file /x/scp03-keys" or "environment CARDSMITH_SCP03_KEYS".
    pub origin: String,
}

impl std::fmt::Debug for Scp03Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.keys {
            KeySource::Static(_) => "static keys",
            KeySource::Master { .. } => "master key, diversified",
        };
        write!(
            f,
            "Scp03Keys(KVN {:02X}, {kind}, from {})",
            self.keys.kvn(),
            self.origin
        )
    }
}

fn invalid(origin: &str, problem: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        source_name: format!("SCP03 key {origin}"),
        problem: problem.into(),
    }
}

fn key_value(origin: &str, line: usize, name: &str, value: &str) -> Result<AesKey, KeyError> {
    let bytes = Zeroizing::new(crate::hex::parse(value).map_err(|_| {
        invalid(
            origin,
            format!("line {line}: {name}: expected hex digits (32, 48 or 64 of them)"),
        )
    })?);
    AesKey::new(&bytes).map_err(|_| {
        invalid(
            origin,
            format!(
                "line {line}: {name}: expected an AES key of 16, 24 or 32 bytes, found {} bytes",
                bytes.len()
            ),
        )
    })
}

impl Scp03Keys {
    /// Parse key entries (a file's text, or the variable's with `;` as a
    /// line separator too).
    pub fn parse(text: &str, origin: &str) -> Result<Scp03Keys, KeyError> {
        let mut kvn: Option<u8> = None;
        let mut master = None;
        let mut single = None;
        let (mut enc, mut mac, mut dek) = (None, None, None);
        let mut diversify = Diversification::GpProKdf3;
        let entries = text.lines().enumerate().flat_map(|(n, l)| {
            let content = l.split('#').next().unwrap_or("");
            content.split(';').map(move |e| (n + 1, e.trim()))
        });
        for (line, entry) in entries {
            if entry.is_empty() {
                continue;
            }
            let Some((name, value)) = entry.split_once('=') else {
                return Err(invalid(
                    origin,
                    format!("line {line}: expected `name = value`"),
                ));
            };
            let name = name.trim();
            let value = value.trim().trim_matches('"');
            let slot = match name {
                "kvn" => {
                    let v = u8::from_str_radix(value, 16)
                        .ok()
                        .filter(|v| (1..=0x7F).contains(v))
                        .ok_or_else(|| {
                            invalid(
                                origin,
                                format!(
                                    "line {line}: kvn: expected a key version number, hex 01 to 7F"
                                ),
                            )
                        })?;
                    kvn = Some(v);
                    continue;
                }
                "diversification" => {
                    diversify = match value {
                        "kdf3" | "gppro-kdf3" => Diversification::GpProKdf3,
                        _ => {
                            return Err(invalid(
                                origin,
                                format!("line {line}: diversification: expected kdf3"),
                            ))
                        }
                    };
                    continue;
                }
                "master" => &mut master,
                "key" => &mut single,
                "enc" => &mut enc,
                "mac" => &mut mac,
                "dek" => &mut dek,
                other => {
                    // Quote the name only if it cannot be key material
                    // (a value typed on the wrong side of the `=`).
                    let shown = if other.len() <= 20
                        && other
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c == '_' || c == '-')
                    {
                        format!("{other:?}")
                    } else {
                        format!("({} characters, not shown)", other.chars().count())
                    };
                    return Err(invalid(
                        origin,
                        format!(
                            "line {line}: unknown entry {shown}; expected kvn, master, diversification, key, enc, mac or dek"
                        ),
                    ));
                }
            };
            if slot.is_some() {
                return Err(invalid(origin, format!("line {line}: {name} given twice")));
            }
            *slot = Some(key_value(origin, line, name, value)?);
        }
        let kvn = kvn.ok_or_else(|| invalid(origin, "no kvn entry (key version number)"))?;
        let err = |e: super::Error| invalid(origin, e.to_string());
        let keys =
            match (master, single, enc, mac, dek) {
                (Some(master), None, None, None, None) => KeySource::Master {
                    master,
                    kvn,
                    method: diversify,
                },
                (None, Some(k), None, None, None) => {
                    KeySource::Static(StaticKeys::single(kvn, k.expose()).map_err(err)?)
                }
                (None, None, Some(e), Some(m), Some(d)) => KeySource::Static(
                    StaticKeys::new(kvn, e.expose(), m.expose(), d.expose()).map_err(err)?,
                ),
                _ => return Err(invalid(
                    origin,
                    "expected either `master`, or `key`, or all three of `enc`, `mac` and `dek`",
                )),
            };
        Ok(Scp03Keys {
            keys,
            origin: origin.to_string(),
        })
    }

    /// Load from a file that must be private to its owner.
    pub fn from_file(path: &Path) -> Result<Scp03Keys, KeyError> {
        let origin = format!("file {}", path.display());
        check_private(path, &format!("SCP03 key {origin}"))?;
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|error| KeyError::Read {
                    source_name: format!("SCP03 key {origin}"),
                    error,
                })?,
            );
        Scp03Keys::parse(&text, &origin)
    }

    /// The keys from `--scp03-keys`, else the environment, else the data
    /// directory's default (created when missing).
    pub fn locate(explicit: Option<&Path>, data_dir: &Path) -> Result<Scp03Keys, KeyError> {
        use crate::keyfile::{resolve, KeyOrigin};
        let default = data_dir.join(DEFAULT_FILE);
        match resolve(explicit, ENV_VAR, default, Scp03Keys::create_default)? {
            KeyOrigin::File(p) => Scp03Keys::from_file(&p),
            KeyOrigin::Env(text) => Scp03Keys::parse(&text, &format!("environment {ENV_VAR}")),
        }
    }

    /// A new random master key (KVN 30, KDF3 diversification) in the file
    /// `path` (mode 600; never over an existing file).
    pub fn create_default(path: &Path) -> Result<(), KeyError> {
        let origin = format!("file {}", path.display());
        let mut key = Zeroizing::new([0u8; 16]);
        SystemRandom::new()
            .fill(key.as_mut())
            .map_err(|_| invalid(&origin, "the random generator failed"))?;
        let text = Zeroizing::new(format!(
            "# cardsmith SCP03 keys of the simulated blank cards' security domain; keep private\n\
             kvn = 30\n\
             master = {}\n\
             diversification = kdf3\n",
            crate::hex::compact(key.as_ref())
        ));
        write_private_once(path, &text, &format!("SCP03 key {origin}"))?;
        Ok(())
    }

    /// The static keys of the card with key diversification data `kdd`.
    pub fn for_card(&self, kdd: &[u8]) -> Result<StaticKeys, super::Error> {
        self.keys.resolve(kdd)
    }

    /// The key file text for a new key set (used by key rotation to write
    /// what it put on the card): static keys, version `kvn`.
    pub fn static_file_text(keys: &StaticKeys) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "# cardsmith SCP03 static keys; keep private\nkvn = {:02X}\nenc = {}\nmac = {}\ndek = {}\n",
            keys.kvn(),
            crate::hex::compact(keys.enc().expose()),
            crate::hex::compact(keys.mac().expose()),
            crate::hex::compact(keys.dek().expose()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "404142434445464748494A4B4C4D4E4F";

    #[test]
    fn master_static_and_single_forms() {
        let m = Scp03Keys::parse(&format!("kvn = 30\nmaster = {K}\n"), "t").unwrap();
        assert!(matches!(m.keys, KeySource::Master { kvn: 0x30, .. }));
        let s = Scp03Keys::parse(&format!("kvn=01; key=\"{K}\""), "t").unwrap();
        let KeySource::Static(k) = &s.keys else {
            panic!("static expected")
        };
        assert_eq!(k.kvn(), 1);
        assert_eq!(k.enc().expose(), k.dek().expose());
        let three = format!("kvn=2\nenc={K}\nmac={K}\ndek={K} # comment\n");
        assert!(Scp03Keys::parse(&three, "t").is_ok());
        // Diversification gives different keys for different cards.
        let a = m.for_card(&[1; 10]).unwrap();
        let b = m.for_card(&[2; 10]).unwrap();
        assert_ne!(a.enc().expose(), b.enc().expose());
        assert!(!format!("{m:?}").contains(K));
    }

    #[test]
    fn errors_name_the_line_and_entry_but_never_the_value() {
        let secret = "00112233445566778899AABBCCDDEEZZ";
        for (text, want) in [
            (format!("kvn = 30\nmaster = {secret}"), "line 2: master"),
            ("kvn = 30\nmaster = 0011".to_string(), "2 bytes"),
            (format!("kvn = 99\nmaster = {K}"), "line 1: kvn"),
            (format!("master = {K}"), "no kvn"),
            (format!("kvn=30\nsecret = {K}"), "unknown entry \"secret\""),
            (format!("kvn=30\nmaster={K}\nkey={K}"), "either"),
            (format!("kvn=30\nenc={K}\nmac={K}"), "either"),
            (format!("kvn=30\nmaster={K}\nmaster={K}"), "twice"),
            ("kvn=30\njust text".to_string(), "name = value"),
            (format!("kvn=30\n{K} = master"), "not shown"),
        ] {
            let e = Scp03Keys::parse(&text, "file k").unwrap_err().to_string();
            assert!(e.contains(want), "{e} (wanted {want})");
            assert!(e.contains("file k"), "{e}");
            assert!(!e.contains(secret) && !e.contains(K), "{e}");
        }
    }

    #[test]
    fn default_file_is_private_and_stable() {
        let d = tempfile::tempdir().unwrap();
        let a = Scp03Keys::locate(None, d.path());
        // The environment may be set by whoever runs the tests; only check
        // the default file when it is not.
        if std::env::var_os(ENV_VAR).is_some() {
            return;
        }
        let a = a.unwrap();
        let b = Scp03Keys::locate(None, d.path()).unwrap();
        assert_eq!(
            a.for_card(&[7; 10]).unwrap().kcvs(),
            b.for_card(&[7; 10]).unwrap().kcvs()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = d.path().join(DEFAULT_FILE);
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = Scp03Keys::from_file(&p).unwrap_err().to_string();
            assert!(e.contains("chmod 600"), "{e}");
        }
    }

    #[test]
    fn rotation_text_reads_back() {
        let k = StaticKeys::single(0x31, &[9; 16]).unwrap();
        let text = Scp03Keys::static_file_text(&k);
        let back = Scp03Keys::parse(&text, "t").unwrap();
        let KeySource::Static(b) = back.keys else {
            panic!("static expected")
        };
        assert_eq!(b.kcvs(), k.kcvs());
        assert_eq!(b.kvn(), 0x31);
    }
}
