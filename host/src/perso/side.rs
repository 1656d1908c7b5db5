//! The issuer side of a card: the profile, the issuer key, the CA and the
//! security domain keys, loaded before a card is touched and shared by
//! `perso`, the line stations and the pickup counters. It is opened from
//! plain configuration ([`SideConfig`]); the command line builds that from
//! its arguments (`cardsmith::cli::common`), and the engines take the side
//! as it is.

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
        let scp03 = profile.security_domain.is_some();
        IssuerSide::with_profile(c, profile, scp03)
    }

    /// The issuer side a station shares among the card profiles it takes:
    /// `profiles`' first as [`IssuerSide::profile`] (`c.profile` is not
    /// read), and the SCP03 keys when any of them names a security domain.
    pub fn open_for(c: &SideConfig, profiles: &Profiles) -> Result<IssuerSide, SideError> {
        let scp03 = profiles.iter().any(|p| p.security_domain.is_some());
        IssuerSide::with_profile(c, profiles.first().clone(), scp03)
    }

    /// One issuer side per card profile of `profiles`, in order, with the
    /// same key, CA and (when any profile names a security domain) SCP03
    /// keys: a counter's, which takes the cards of each.
    pub fn open_each(c: &SideConfig, profiles: &Profiles) -> Result<Vec<IssuerSide>, SideError> {
        let scp03 = profiles.iter().any(|p| p.security_domain.is_some());
        profiles
            .iter()
            .map(|p| IssuerSide::with_profile(c, p.clone(), scp03))
            .collect()
    }

    fn with_profile(
        c: &SideConfig,
        profile: Profile,
        scp03: bool,
    ) -> Result<IssuerSide, SideError> {
        let key = IssuerKey::locate(c.issuer_key.as_deref(), &c.data_dir)?;
        let ca = LocalCa::open_or_create(&c.data_dir.join("ca"))?;
        let scp03 = match scp03 {
            true => Some(Scp03Keys::locate(c.scp03_keys.as_deref(), &c.data_dir)?),
            false => None,
        };
        Ok(IssuerSide {
            profile,
            key,
            ca,
            scp03,
        })
    }

    pub fn issuer(&self) -> Issuer<'_> {
        self.issuer_for(&self.profile)
    }

    /// The issuer for a card of `profile`, with this side's keys and CA
    /// (a station taking cards of several profiles, [`Profiles`]).
    pub fn issuer_for<'a>(&'a self, profile: &'a Profile) -> Issuer<'a> {
        Issuer {
            profile,
            key: &self.key,
            scp03: self.scp03.as_ref(),
            ca: &self.ca,
            signer: self.ca.document_signer(),
        }
    }
}

/// The card profiles a station takes, in the order it tries them on each
/// card it is given: the first whose `[card]` patterns recognize the
/// card's ATR is the card's profile, looked at before any command is sent.
/// Never empty.
#[derive(Debug, Clone)]
pub struct Profiles {
    first: Profile,
    more: Vec<Profile>,
}

impl Profiles {
    /// `first`, then `more`, in that order.
    pub fn new(first: Profile, more: Vec<Profile>) -> Profiles {
        Profiles { first, more }
    }

    /// The profiles built into the binary ([`Profile::installed`]).
    pub fn installed() -> Profiles {
        let mut all = Profile::installed().into_iter();
        let first = all.next().unwrap_or_else(Profile::reference);
        Profiles::new(first, all.collect())
    }

    /// These profile files, in order; none given, the installed profiles.
    /// The first bad file is named in the error.
    pub fn open(files: &[PathBuf]) -> Result<Profiles, ProfileError> {
        let Some((first, more)) = files.split_first() else {
            return Ok(Profiles::installed());
        };
        Ok(Profiles::new(
            Profile::load(first)?,
            more.iter()
                .map(|f| Profile::load(f))
                .collect::<Result<_, _>>()?,
        ))
    }

    pub fn first(&self) -> &Profile {
        &self.first
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        std::iter::once(&self.first).chain(&self.more)
    }

    /// The profile of the card with this ATR: the first that recognizes
    /// it. None does: why the card is not touched, with its ATR and the
    /// profiles tried.
    pub fn pick(&self, atr: &[u8]) -> Result<&Profile, String> {
        if let Some(p) = self.iter().find(|p| p.recognizes.recognizes(atr)) {
            return Ok(p);
        }
        let tried: Vec<(&str, &super::recognize::CardMatch)> = self
            .iter()
            .map(|p| (p.name.as_str(), &p.recognizes))
            .collect();
        Err(super::recognize::unknown_card_to_all(atr, &tried))
    }

    /// The fewest minutiae any of the cards takes: a record checked against
    /// it fits on a card of any of the profiles.
    pub fn max_minutiae(&self) -> u16 {
        self.iter()
            .map(|p| p.max_minutiae)
            .min()
            .unwrap_or(self.first.max_minutiae)
    }

    /// The names, in order, for messages.
    pub fn names(&self) -> Vec<&str> {
        self.iter().map(|p| p.name.as_str()).collect()
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
    fn a_station_takes_each_card_as_the_first_profile_that_recognizes_it() {
        let installed = Profiles::installed();
        assert_eq!(installed.names().len(), 2);
        let reference = [
            0x3B, 0x87, 0x81, 0x31, 0xFE, 0x45, 0x80, 0x73, 0xF4, 0x21, 0xC0, 0x81, 0x03, 0x00,
        ];
        let domestic = [
            0x3B, 0x0E, 0x80, 0x58, b'D', b'O', b'M', b'E', b'S', b'T', b'I', b'C', 0x71, 0xB0,
            0x81, 0x01,
        ];
        let name = |atr: &[u8]| installed.pick(atr).map(|p| p.name.clone());
        assert_eq!(
            name(&reference).unwrap(),
            "cardsmith reference national ID card"
        );
        assert_eq!(
            name(&domestic).unwrap(),
            "cardsmith domestic national ID card"
        );
        // The vsmartcard emulator's ATR: refused, naming every profile.
        let stranger = [
            0x3B, 0xD6, 0x18, 0x00, 0x80, 0xB1, 0x80, 0x6D, 0x1F, 0x03, 0x80, 0x51, 0x00, 0x61,
            0x10, 0x30, 0x9E,
        ];
        let e = name(&stranger).unwrap_err();
        assert!(
            e.contains("3B D6 18 00")
                && e.contains("cardsmith reference national ID card's")
                && e.contains("cardsmith domestic national ID card's")
                && e.contains("not touched"),
            "{e}"
        );
        // The domestic card takes the fewer minutiae.
        assert_eq!(installed.max_minutiae(), 40);
        // Files, in the order given; the first is the side's profile.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../apdu-scripts");
        let files = [
            root.join("domestic/profile.toml"),
            root.join("reference-card/profile.toml"),
        ];
        let given = Profiles::open(&files).unwrap();
        assert_eq!(given.first().name, "cardsmith domestic national ID card");
        assert_eq!(
            given.pick(&reference).unwrap().name,
            "cardsmith reference national ID card"
        );
        let only = Profiles::open(&files[..1]).unwrap();
        let e = only.pick(&reference).unwrap_err();
        assert!(
            e.contains("profile cardsmith domestic national ID card's"),
            "{e}"
        );
        let err = Profiles::open(&[root.join("nowhere.toml")]).unwrap_err();
        assert!(err.to_string().contains("nowhere.toml"), "{err}");
    }

    #[test]
    fn a_station_side_reads_the_scp03_keys_when_any_profile_needs_them() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let err = IssuerSide::open_for(&c, &Profiles::installed())
            .err()
            .unwrap();
        assert!(err.to_string().contains("no-such-scp03-keys"), "{err}");
        let mut clear = Profile::reference();
        clear.security_domain = None;
        let side = IssuerSide::open_for(&c, &Profiles::new(clear, vec![])).unwrap();
        assert!(side.scp03.is_none());
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
