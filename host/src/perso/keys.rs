//! The issuer transport key: where it comes from, the EXTERNAL AUTHENTICATE
//! cryptogram, and the transport PINs derived from it.
//!
//! Sources, first match wins:
//! 1. `--issuer-key FILE`: hex (16, 24 or 32 bytes), `#` comments allowed.
//!    The file must not be readable by group or others.
//! 2. `CARDSMITH_ISSUER_KEY`: the same hex in the environment.
//! 3. `<data dir>/issuer-key`: the embedded default for simulated cards,
//!    created with a random AES-128 key (mode 0600) on first use.
//!
//! The key never appears in any output: [`IssuerKey`] holds a [`Secret`],
//! and errors say which source was wrong and how, never what it held.

use std::path::Path;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::secret::Secret;

// The key-file error and checks are shared with the SCP03 key files; they
// live below both in `crate::keyfile` (re-exported for existing paths).
pub use crate::keyfile::KeyError;
pub(crate) use crate::keyfile::{check_private, write_private_once};

/// Environment variable that may hold the issuer key (hex).
pub const ENV_VAR: &str = "CARDSMITH_ISSUER_KEY";
/// Name of the default key file in the data directory.
pub const DEFAULT_FILE: &str = "issuer-key";

/// An AES issuer transport key.
#[derive(Clone)]
pub struct IssuerKey {
    key: Secret,
    /// Where it came from, for messages ("file /x/issuer-key", "environment CARDSMITH_ISSUER_KEY").
    pub source: String,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "IssuerKey(AES-{}, from {})",
            self.key.len() * 8,
            self.source
        )
    }
}

impl IssuerKey {
    /// A key from raw bytes (16, 24 or 32).
    pub fn from_bytes(bytes: Vec<u8>, source: &str) -> Result<IssuerKey, KeyError> {
        let key = Secret::new(bytes);
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(KeyError::Invalid {
                source_name: source.into(),
                problem: format!(
                    "expected an AES key of 16, 24 or 32 bytes, found {} bytes",
                    key.len()
                ),
            });
        }
        Ok(IssuerKey {
            key,
            source: source.into(),
        })
    }

    /// Parse the hex text of a key file or variable. Errors never quote it.
    pub fn from_hex_text(text: &str, source: &str) -> Result<IssuerKey, KeyError> {
        let mut digits = zeroize::Zeroizing::new(String::new());
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            for c in line.chars().filter(|c| !c.is_whitespace() && *c != ':') {
                if !c.is_ascii_hexdigit() {
                    return Err(KeyError::Invalid {
                        source_name: source.into(),
                        problem: format!(
                            "line {}: a character that is not a hex digit (expected hex, e.g. 32 hex digits for AES-128)",
                            n + 1
                        ),
                    });
                }
                digits.push(c);
            }
        }
        if !digits.len().is_multiple_of(2) {
            return Err(KeyError::Invalid {
                source_name: source.into(),
                problem: "an odd number of hex digits".into(),
            });
        }
        // Digits only, checked above: the one hex parser takes them.
        let bytes = crate::hex::parse(&digits).map_err(|_| KeyError::Invalid {
            source_name: source.into(),
            problem: "no hex digits (expected e.g. 32 hex digits for AES-128)".into(),
        })?;
        IssuerKey::from_bytes(bytes, source)
    }

    /// Load from a file that must be private to its owner.
    pub fn from_file(path: &Path) -> Result<IssuerKey, KeyError> {
        let source = format!("file {}", path.display());
        check_private(path, &source)?;
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|error| {
            KeyError::Read {
                source_name: source.clone(),
                error,
            }
        })?);
        IssuerKey::from_hex_text(&text, &source)
    }

    /// The key from `--issuer-key`, else the environment, else the data
    /// directory's default (created when missing).
    pub fn locate(explicit: Option<&Path>, data_dir: &Path) -> Result<IssuerKey, KeyError> {
        use crate::keyfile::{resolve, KeyOrigin};
        match resolve(
            explicit,
            ENV_VAR,
            data_dir.join(DEFAULT_FILE),
            create_default,
        )? {
            KeyOrigin::File(p) => IssuerKey::from_file(&p),
            KeyOrigin::Env(text) => {
                IssuerKey::from_hex_text(&text, &format!("environment {ENV_VAR}"))
            }
        }
    }

    /// The raw key, for the simulated card that is created with it.
    pub fn expose(&self) -> &[u8] {
        self.key.expose()
    }

    /// AES-CMAC over `data` (RFC 4493; NIST SP 800-38B).
    pub fn cmac(&self, data: &[u8]) -> [u8; 16] {
        // The key length was checked when the IssuerKey was made.
        crate::crypto::aes_cmac(self.key.expose(), data).unwrap_or_default()
    }

    /// The EXTERNAL AUTHENTICATE cryptogram: AES-CMAC(K, challenge ‖ serial).
    pub fn cryptogram(&self, challenge: &[u8], serial: &[u8]) -> [u8; 16] {
        let mut m = challenge.to_vec();
        m.extend_from_slice(serial);
        self.cmac(&m)
    }

    /// The transport value of PIN `reference` for the holder of
    /// `national_id`: `digits` decimal digits taken from
    /// HMAC-SHA-256(K, "cardsmith transport PIN" ‖ reference ‖ national ID).
    /// Only someone holding the issuer key can compute it.
    pub fn transport_pin(&self, reference: u8, national_id: &str, digits: u8) -> Secret {
        self.derived_pin(b"cardsmith transport PIN", reference, national_id, digits)
    }

    /// A PIN value only the issuer can compute: `digits` decimal digits of
    /// HMAC-SHA-256(K, label ‖ reference ‖ national ID). Different labels
    /// give unrelated values (the transport PINs, the issuer's PUK of an
    /// activated card).
    pub fn derived_pin(
        &self,
        label: &[u8],
        reference: u8,
        national_id: &str,
        digits: u8,
    ) -> Secret {
        let k = hmac::Key::new(hmac::HMAC_SHA256, self.key.expose());
        let mut msg = label.to_vec();
        msg.push(reference);
        msg.extend_from_slice(national_id.as_bytes());
        let tag = hmac::sign(&k, &msg);
        let v = tag.as_ref().first_chunk::<8>().copied().unwrap_or_default();
        let n = u64::from_be_bytes(v) % 10u64.pow(u32::from(digits));
        let text = zeroize::Zeroizing::new(format!("{n:0width$}", width = usize::from(digits)));
        Secret::new(text.as_bytes().to_vec())
    }
}

/// Create the default key file: a random AES-128 key, mode 0600, written
/// to a temporary file and renamed, so a racing second process sees either
/// nothing or the whole key (and then keeps the first one).
/// A new random issuer key in the file `path` (mode 600; never over an
/// existing file).
pub fn create_default(path: &Path) -> Result<(), KeyError> {
    let source = format!("file {}", path.display());
    let mut key = zeroize::Zeroizing::new([0u8; 16]);
    SystemRandom::new()
        .fill(key.as_mut())
        .map_err(|_| KeyError::Invalid {
            source_name: source.clone(),
            problem: "the random generator failed".into(),
        })?;
    let text = zeroize::Zeroizing::new(format!(
        "# cardsmith issuer transport key (AES-128) for simulated cards; keep private\n{}\n",
        crate::hex::compact(key.as_ref())
    ));
    write_private_once(path, &text, &source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_key_cmac_is_rfc4493() {
        // RFC 4493 §4, key 2b7e1516 28aed2a6 abf71588 09cf4f3c.
        let k = IssuerKey::from_hex_text("2b7e151628aed2a6abf7158809cf4f3c", "test").unwrap();
        assert_eq!(
            crate::hex::compact(&k.cmac(b"")),
            "BB1D6929E95937287FA37D129B756746"
        );
        let m = crate::hex::parse("6bc1bee22e409f96e93d7e117393172a").unwrap();
        assert_eq!(
            crate::hex::compact(&k.cmac(&m)),
            "070A16B46B4D4144F79BDD9DD04A287C"
        );
    }

    #[test]
    fn bad_keys_are_refused_without_quoting_them() {
        let e = IssuerKey::from_hex_text("0011zz", "environment X")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("environment X") && e.contains("line 1") && !e.contains("zz"),
            "{e}"
        );
        let e = IssuerKey::from_hex_text("00112233", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("4 bytes"), "{e}");
    }

    #[test]
    fn default_file_is_created_private_and_reused() {
        let d = tempfile::tempdir().unwrap();
        let a = IssuerKey::locate(None, d.path());
        // The environment may carry a key in some runs; only test the file path then.
        if std::env::var_os(ENV_VAR).is_none() {
            let a = a.unwrap();
            let b = IssuerKey::locate(None, d.path()).unwrap();
            assert_eq!(a.expose(), b.expose());
            assert!(!format!("{a:?}").contains(&crate::hex::compact(a.expose())));
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let m = std::fs::metadata(d.path().join(DEFAULT_FILE))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(m & 0o777, 0o600);
                std::fs::set_permissions(
                    d.path().join(DEFAULT_FILE),
                    std::fs::Permissions::from_mode(0o644),
                )
                .unwrap();
                let e = IssuerKey::locate(None, d.path()).unwrap_err().to_string();
                assert!(e.contains("chmod 600"), "{e}");
            }
        }
    }

    #[test]
    fn transport_pins_are_digits_and_differ_by_reference() {
        let k = IssuerKey::from_bytes(vec![7; 16], "t").unwrap();
        let a = k.transport_pin(0x81, "0499370899", 6);
        let b = k.transport_pin(0x82, "0499370899", 6);
        assert_eq!(a.len(), 6);
        assert!(a.expose().iter().all(u8::is_ascii_digit));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(k.transport_pin(0x83, "0499370899", 8).len(), 8);
    }
}
