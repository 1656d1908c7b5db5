//! The issuer side of a card: the profile, the issuer key, the CA and the
//! security domain keys, loaded before a card is touched and shared by
//! `perso`, the line stations and the pickup counters. It is opened from
//! plain configuration ([`SideConfig`]); the command line builds that from
//! its arguments (`cli_common`), and the engines take the side as it is.

use std::path::PathBuf;

use crate::keyfile::KeyError;
use crate::pki::{LocalCa, PkiError};
use crate::scp03::keyfile::Scp03Keys;

use super::engine::Issuer;
use super::keys::IssuerKey;
use super::profile::{Profile, ProfileError};

/// Where the issuer side comes from.
#[derive(Debug, Clone, Default)]
pub struct SideConfig {
    /// The card profile file; `None` for the built-in reference card.
    pub profile: Option<PathBuf>,
    /// The issuer key file; `None` for `$CARDSMITH_ISSUER_KEY`, else
    /// `<data dir>/issuer-key`.
    pub issuer_key: Option<PathBuf>,
    /// The SCP03 key file; `None` for `$CARDSMITH_SCP03_KEYS`, else
    /// `<data dir>/scp03-keys`. Read only when the profile names a
    /// security domain.
    pub scp03_keys: Option<PathBuf>,
    /// Treat the card as if it had no security domain.
    pub no_secure_channel: bool,
    /// Where the default keys and the local CA live.
    pub data_dir: PathBuf,
}

/// Why the issuer side could not be opened (nothing was touched).
#[derive(Debug, thiserror::Error)]
pub enum SideError {
    #[error("{0}")]
    Profile(#[from] ProfileError),
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("local CA: {0}")]
    Ca(#[from] PkiError),
}

/// Everything the issuer side needs, loaded before the card is touched.
pub struct IssuerSide {
    pub profile: Profile,
    pub key: IssuerKey,
    pub ca: LocalCa,
    /// The security domain keys, when the profile names a security domain.
    pub scp03: Option<Scp03Keys>,
}

impl IssuerSide {
    /// Load the profile, the issuer key, the local CA (created on first
    /// use) and, when the profile names a security domain, its SCP03 keys.
    pub fn open(c: &SideConfig) -> Result<IssuerSide, SideError> {
        let mut profile = Profile::load_or_reference(c.profile.as_deref())?;
        if c.no_secure_channel {
            // Treat the card as if it had no security domain: everything
            // in clear, issuer EXTERNAL AUTHENTICATE instead.
            profile.security_domain = None;
        }
        let key = IssuerKey::locate(c.issuer_key.as_deref(), &c.data_dir)?;
        let ca = LocalCa::open_or_create(&c.data_dir.join("ca"))?;
        let scp03 = match &profile.security_domain {
            Some(_) => Some(Scp03Keys::locate(c.scp03_keys.as_deref(), &c.data_dir)?),
            None => None,
        };
        Ok(IssuerSide {
            profile,
            key,
            ca,
            scp03,
        })
    }

    pub fn issuer(&self) -> Issuer<'_> {
        Issuer {
            profile: &self.profile,
            key: &self.key,
            scp03: self.scp03.as_ref(),
            ca: &self.ca,
            signer: self.ca.document_signer(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> SideConfig {
        let key = dir.join("issuer-key");
        crate::private::write(&key, b"000102030405060708090A0B0C0D0E0F\n").unwrap();
        SideConfig {
            issuer_key: Some(key),
            scp03_keys: Some(dir.join("no-such-scp03-keys")),
            data_dir: dir.to_path_buf(),
            ..SideConfig::default()
        }
    }

    #[test]
    fn opens_from_plain_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        // The reference profile names a security domain: its key file is read.
        let err = IssuerSide::open(&c).err().unwrap();
        assert!(matches!(err, SideError::Key(_)), "{err}");
        assert!(err.to_string().contains("no-such-scp03-keys"), "{err}");
        // Without the secure channel the SCP03 keys are never read.
        c.no_secure_channel = true;
        let side = IssuerSide::open(&c).unwrap();
        assert!(side.scp03.is_none() && side.profile.security_domain.is_none());
        assert!(dir.path().join("ca").is_dir());
    }

    #[test]
    fn a_bad_profile_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let c = SideConfig {
            profile: Some(dir.path().join("missing.toml")),
            ..config(dir.path())
        };
        let err = IssuerSide::open(&c).err().unwrap();
        assert!(matches!(err, SideError::Profile(_)), "{err}");
        assert!(err.to_string().contains("missing.toml"), "{err}");
    }
}
