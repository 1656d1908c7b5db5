//! The card profile: a TOML file that tells the host side where things are
//! on a card and how the record maps onto its data groups.
//!
//! The embedded default is `apdu-scripts/reference-card/profile.toml`
//! (documented in `docs/card-profile.md`). Another vendor's card gets its
//! own directory with a profile and its personalization scripts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::hex;

use super::commands::Step;
use super::encoding::{PointEncoding, SignatureEncoding};

/// The reference profile, built into the binary.
pub const REFERENCE_PROFILE: &str =
    include_str!("../../../apdu-scripts/reference-card/profile.toml");
/// The reference profile's personalization script, built into the binary.
pub const REFERENCE_FILESYSTEM: &str =
    include_str!("../../../apdu-scripts/reference-card/filesystem.apdu");
/// Where the reference profile lives in the source tree (for messages).
pub const REFERENCE_PATH: &str = "apdu-scripts/reference-card/profile.toml";
/// The domestic card's profile, built into the binary (it has no scripts:
/// its file system is made at the factory).
pub const DOMESTIC_PROFILE: &str = include_str!("../../../apdu-scripts/domestic/profile.toml");
/// Where the domestic profile lives in the source tree (for messages).
pub const DOMESTIC_PATH: &str = "apdu-scripts/domestic/profile.toml";

/// A date in both calendars, each as `YYYYMMDD` (a record's dates, the
/// card's issue and expiry dates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatePair {
    pub jalali: String,
    pub gregorian: String,
}

/// Why a profile could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("card profile {file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("card profile {file}: {message}")]
    Syntax { file: String, message: String },
    #[error("card profile {file}: {key}: {message}")]
    Invalid {
        file: String,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    version: u32,
    card: RawCard,
    #[serde(default)]
    issuer: Option<RawIssuer>,
    perso: RawPerso,
    pins: RawPins,
    identity: RawApp,
    pki: RawPki,
    certificates: RawCerts,
    biometric: RawBio,
    data_groups: Vec<RawDataGroup>,
    security_object: RawSod,
    #[serde(default)]
    security_domain: Option<RawSd>,
    /// `[commands]`: every card command, by what it is for ([`super::commands`]).
    #[serde(default)]
    commands: super::commands::RawSteps,
    #[serde(default)]
    files: Vec<RawFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSd {
    aid: String,
    level: Vec<String>,
    #[serde(default = "default_mode")]
    mode: String,
    #[serde(default)]
    store_data: bool,
    #[serde(default)]
    select_keeps_files: bool,
    /// The vendor's default key version number (informational: the host
    /// opens the channel with the key file's version).
    #[serde(default)]
    default_kvn: Option<u8>,
}

fn default_mode() -> String {
    "S8".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCard {
    life_cycle_tag: String,
    #[serde(default)]
    status_tag: Option<String>,
    serial: String,
    validity_years: u8,
    #[serde(default)]
    atr: Vec<String>,
    #[serde(default)]
    historical_bytes: Vec<String>,
    /// The ATR's first bytes (any ATR that starts with them).
    #[serde(default)]
    atr_prefix: Option<String>,
    /// What the life cycle byte's values mean (the reference card's when
    /// left out).
    #[serde(default)]
    life_cycle_values: Option<RawLifeCycleValues>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLifeCycleValues {
    blank: String,
    personalized: String,
    activated: String,
    terminated: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    key_reference: u8,
    challenge_length: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerso {
    scripts: Vec<String>,
    photo_size_step: u16,
    /// The largest UPDATE BINARY block the card takes (the transport's
    /// limit when left out).
    #[serde(default)]
    max_update_binary: Option<u16>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPin {
    reference: u8,
    transport_digits: u8,
    /// The value the card comes with from the factory (then the holder's
    /// PIN replaces it with CHANGE REFERENCE DATA giving it as the old one).
    #[serde(default)]
    factory_value: Option<String>,
}

/// `[pins] pin_block`: how a PIN goes to the card.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPinBlock {
    length: u8,
    min_digits: u8,
    padding: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPins {
    id_pin: RawPin,
    signature_pin: RawPin,
    #[serde(default)]
    puk: Option<RawPin>,
    #[serde(default)]
    pin_block: Option<RawPinBlock>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    aid: String,
    fid: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPki {
    aid: String,
    fid: String,
    keys: Vec<RawKey>,
    #[serde(default)]
    commands: RawPkiCommands,
}

/// `[pki.commands]`: how the card answers its key commands
/// ([`super::encoding`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPkiCommands {
    public_key_encoding: Option<String>,
    signature_encoding: Option<String>,
    generate: Option<toml::Spanned<super::commands::RawStep>>,
    read_public_key: Option<toml::Spanned<super::commands::RawStep>>,
    sign: Option<toml::Spanned<super::commands::RawStep>>,
}

/// The commands of a key (`[pki.commands]` for every key, or one key's
/// entry) as a table of steps.
fn key_steps(
    generate: &Option<toml::Spanned<super::commands::RawStep>>,
    read_public_key: &Option<toml::Spanned<super::commands::RawStep>>,
    sign: &Option<toml::Spanned<super::commands::RawStep>>,
) -> super::commands::RawSteps {
    [
        ("generate", generate),
        ("read_public_key", read_public_key),
        ("sign", sign),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().map(|v| (k.to_string(), v)))
    .collect()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    name: String,
    reference: u8,
    usage: String,
    certificate_fid: String,
    certificate_profile: String,
    #[serde(default)]
    pin: Option<String>,
    #[serde(default)]
    pin_per_use: bool,
    /// The key's own commands, where they differ from `[pki.commands]`.
    generate: Option<toml::Spanned<super::commands::RawStep>>,
    read_public_key: Option<toml::Spanned<super::commands::RawStep>>,
    sign: Option<toml::Spanned<super::commands::RawStep>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCerts {
    #[serde(default)]
    end_before_card_days: u16,
    #[serde(default = "default_tolerance_days")]
    tolerance_days: u16,
    crl_distribution_points: Vec<String>,
    policy_oid: String,
    #[serde(default)]
    cps_uri: Option<String>,
}

fn default_tolerance_days() -> u16 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBio {
    references: Vec<u8>,
    try_limit: u8,
    max_minutiae: u16,
    format_owner: String,
    format_type: String,
    #[serde(default)]
    minutiae_order: Option<String>,
    #[serde(default)]
    bit_layout: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    tag: String,
    field: String,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataGroup {
    number: u8,
    name: String,
    fid: String,
    tag: String,
    fields: Vec<RawField>,
    /// The EF's size when the card comes with it made (factory files).
    #[serde(default)]
    size: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSod {
    fid: String,
    data_groups: Vec<u8>,
    #[serde(default)]
    size: Option<u32>,
}

/// `[[files]]`: a file the card must come with from the factory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    path: String,
    #[serde(default)]
    aid: Option<String>,
    #[serde(default)]
    size: Option<u32>,
}

/// How a field's value is written into its data object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The text as UTF-8.
    Utf8,
    /// A Jalali date as 8 ASCII digits, `YYYYMMDD`.
    Date,
    /// The Gregorian equivalent of a Jalali date field, `YYYYMMDD`.
    Gregorian,
    /// Raw bytes (the photo).
    Bytes,
}

/// One data object of a data group: `tag` holds record field `field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMap {
    pub tag: Vec<u8>,
    pub field: String,
    pub encoding: Encoding,
}

/// A data group: an EF in the identity application holding one constructed
/// data object.
#[derive(Debug, Clone)]
pub struct DataGroup {
    pub number: u8,
    pub name: String,
    pub fid: u16,
    pub tag: Vec<u8>,
    pub fields: Vec<FieldMap>,
    /// The EF's size when the card comes with it made at the factory.
    pub size: Option<usize>,
}

/// What the card's life cycle byte values mean (`[card]
/// life_cycle_values`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifeCycleValues {
    pub blank: u8,
    pub personalized: u8,
    pub activated: u8,
    pub terminated: u8,
}

impl LifeCycleValues {
    /// The reference card's: 01, 03, 07, 0F.
    pub const REFERENCE: LifeCycleValues = LifeCycleValues {
        blank: 0x01,
        personalized: 0x03,
        activated: 0x07,
        terminated: 0x0F,
    };
}

/// `[pins] pin_block`: a PIN as `length` bytes, its ASCII digits padded
/// with `padding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinBlock {
    pub length: u8,
    pub min_digits: u8,
    pub padding: u8,
}

/// `[biometric] minutiae_order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinutiaeOrder {
    /// No particular order (best quality first), ISO/IEC 19794-2 order 00.
    Unordered,
    /// By x, then y, ascending (order byte 05).
    XyAscending,
}

impl MinutiaeOrder {
    /// The ISO/IEC 19794-2:2005 §8.3 order byte.
    pub fn byte(self) -> u8 {
        match self {
            MinutiaeOrder::Unordered => 0x00,
            MinutiaeOrder::XyAscending => 0x05,
        }
    }
}

/// `[biometric] bit_layout`: where the biometric matching algorithm
/// parameters (B1) sit in a BIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitLayout {
    /// Inside the biometric header template A1, with 81 = min and max
    /// minutiae (ISO/IEC 7816-11 Annex C, MINEX II).
    B1InsideA1,
    /// Beside A1, with 81 = the maximum only.
    B1BesideA1,
}

/// A file the card comes with from the factory (`[[files]]`): its path
/// from the MF, its AID when it is an application, its size when it is an EF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactoryFile {
    pub path: Vec<u16>,
    pub aid: Option<Vec<u8>>,
    pub size: Option<usize>,
}

/// What a key is used with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsage {
    /// INTERNAL AUTHENTICATE, control reference template A4.
    Authenticate,
    /// PSO COMPUTE DIGITAL SIGNATURE, control reference template B6.
    Sign,
}

/// Which certificate profile the CA applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    Authentication,
    Signature,
}

/// One on-card key pair and its certificate file.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub name: String,
    pub reference: u8,
    pub usage: KeyUsage,
    pub certificate_fid: u16,
    pub certificate: CertKind,
    /// The PIN number that authorizes use once the card is activated.
    pub pin: Option<u8>,
    pub pin_per_use: bool,
    /// How the card answers GENERATE and READ PUBLIC KEY for this key
    /// (`[pki.commands] public_key_encoding`).
    pub point_encoding: PointEncoding,
    /// How the card gives this key's signatures (`[pki.commands]
    /// signature_encoding`).
    pub signature_encoding: SignatureEncoding,
    /// Its `generate`, `read_public_key` and `sign` commands (its own, else
    /// `[pki.commands]`'s).
    pub commands: super::commands::Commands,
}

/// `[certificates]`: how the holder's certificates relate to the card
/// (docs/card-profile.md, "Certificate validity and revocation").
#[derive(Debug, Clone)]
pub struct CertRules {
    /// Certificates end this many days before the card expires.
    pub end_before_card_days: u16,
    /// `verify` also accepts a certificate that ends up to this many days
    /// earlier than the rule says.
    pub tolerance_days: u16,
    /// URIs of the CRL distribution points, in order.
    pub crl_distribution_points: Vec<String>,
    pub policy: crate::pki::CertPolicy,
}

impl CertRules {
    /// The moment a card expires: 00:00:00 UTC of its expiry date (the
    /// Gregorian day of DG3's Solar Hijri `card.expiry_date`).
    pub fn card_end(expiry: &DatePair) -> Result<i64, String> {
        let g = expiry.gregorian.as_bytes();
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = g.get(r)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(part).ok()?.parse().ok()
        };
        let date = match (g.len(), num(0..4), num(4..6), num(6..8)) {
            (8, Some(y), Some(m), Some(d)) => (|| {
                crate::utc::unix_of_date(
                    i32::try_from(y).ok()?,
                    u8::try_from(m).ok()?,
                    u8::try_from(d).ok()?,
                )
            })(),
            _ => None,
        };
        match date {
            Some(t) => Ok(t),
            None => Err(format!(
                "the card's expiry date {:?} is not a Gregorian YYYYMMDD date",
                expiry.gregorian
            )),
        }
    }

    /// The card's expiry for messages: `1412/09/13 (2033-12-03 00:00:00 UTC)`.
    pub fn show_card_expiry(expiry: &DatePair, card_end: i64) -> String {
        let j = &expiry.jalali;
        let jalali = match (j.get(..4), j.get(4..6), j.get(6..8)) {
            (Some(y), Some(m), Some(d)) if j.len() == 8 => format!("{y}/{m}/{d}"),
            _ => j.clone(),
        };
        format!("{jalali} ({})", crate::utc::format_unix(card_end))
    }

    /// What to ask the CA for, for a card that expires on `card_expiry`.
    pub fn issue_terms(&self, card_expiry: &DatePair) -> Result<crate::pki::IssueTerms, String> {
        let end = Self::card_end(card_expiry)?;
        Ok(crate::pki::IssueTerms {
            not_after: end - i64::from(self.end_before_card_days) * 86_400,
            crl_distribution_points: self.crl_distribution_points.clone(),
            policy: Some(self.policy.clone()),
        })
    }

    /// What `verify` (and personalization, on the CA's answer) checks.
    pub fn card_terms<'a>(
        &'a self,
        card_end: i64,
        card_expiry: &'a str,
    ) -> crate::pki::CardTerms<'a> {
        crate::pki::CardTerms {
            card_end,
            card_expiry,
            max_days_before: i64::from(self.end_before_card_days) + i64::from(self.tolerance_days),
            crl_distribution_points: &self.crl_distribution_points,
            policy: &self.policy,
        }
    }
}

/// A PIN object.
#[derive(Debug, Clone, Copy)]
pub struct PinSpec {
    pub reference: u8,
    pub transport_digits: u8,
}

impl PinSpec {
    /// The PIN number (low nibble of the reference).
    pub fn number(&self) -> u8 {
        self.reference & 0x0F
    }
}

/// The validated card profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    /// Where it came from (a path, or the reference path for the embedded one).
    pub source: String,
    /// The directory scripts are resolved in; `None` for the embedded profile.
    pub dir: Option<PathBuf>,
    /// The cards this profile describes, by ATR or historical bytes
    /// (`[card] atr`, `historical_bytes`).
    pub recognizes: super::recognize::CardMatch,
    pub life_cycle_tag: u16,
    /// What the life cycle byte's values mean.
    pub life_cycle_values: LifeCycleValues,
    /// GET DATA tag of the PIN and biometric status list; `None`: the
    /// card has none.
    pub status_tag: Option<u16>,
    pub validity_years: u8,
    /// `[issuer]`: the issuer authenticates with GET CHALLENGE and
    /// EXTERNAL AUTHENTICATE. Without it, only over the security domain.
    pub issuer_auth: bool,
    pub issuer_key_reference: u8,
    pub challenge_length: u8,
    pub scripts: Vec<String>,
    pub photo_size_step: u16,
    /// The largest UPDATE BINARY block the card takes, if it says.
    pub max_update_binary: Option<usize>,
    pub id_pin: PinSpec,
    pub signature_pin: PinSpec,
    /// `None`: the card has no PUK (no unblocking).
    pub puk: Option<PinSpec>,
    /// How a PIN goes to the card (`None`: its ASCII digits as they are).
    pub pin_block: Option<PinBlock>,
    /// The PINs' factory values, by reference, for a card that comes with
    /// them ([`PinSpec`]'s transport value otherwise).
    pub factory_pins: Vec<(u8, crate::secret::Secret)>,
    /// How the card wants the minutiae ordered.
    pub minutiae_order: MinutiaeOrder,
    /// How the card lays out a biometric information template.
    pub bit_layout: BitLayout,
    /// The files the card comes with from the factory, checked before
    /// personalization writes anything (`[[files]]`).
    pub files: Vec<FactoryFile>,
    /// EF.SOD's size when the card comes with it made.
    pub sod_size: Option<usize>,
    pub identity_aid: Vec<u8>,
    pub identity_fid: u16,
    pub pki_aid: Vec<u8>,
    pub pki_fid: u16,
    pub keys: Vec<KeySpec>,
    pub certificates: CertRules,
    pub bio_references: Vec<u8>,
    pub bio_try_limit: u8,
    pub max_minutiae: u16,
    pub bio_format_owner: u16,
    pub bio_format_type: u16,
    pub data_groups: Vec<DataGroup>,
    pub sod_fid: u16,
    pub sod_data_groups: Vec<u8>,
    /// The card's issuer security domain: personalization goes over SCP03.
    pub security_domain: Option<SecurityDomain>,
    /// Every card command, by what it is for (`[commands]`).
    pub commands: super::commands::Commands,
}

/// `[security_domain]`: the card's GlobalPlatform issuer security domain.
#[derive(Debug, Clone)]
pub struct SecurityDomain {
    pub aid: Vec<u8>,
    /// The SCP03 security level personalization asks for.
    pub level: crate::scp03::SecurityLevel,
    pub mode: crate::scp03::Mode,
    /// Write the data groups with STORE DATA (DGI = the EF's FID).
    pub store_data: bool,
    /// Selecting the security domain leaves the card's current DF as it
    /// was (a file-system card whose security domain is not an applet):
    /// the host need not select its DF again after the secure channel
    /// opens or closes. Off, the host assumes the selection moved.
    pub select_keeps_files: bool,
    /// The vendor's default key version number, for the programme's key
    /// ceremony (PUT KEY replaces those keys); the host opens the channel
    /// with its key file's version.
    pub default_kvn: Option<u8>,
}

impl SecurityDomain {
    /// The link options for opening a channel with it.
    pub fn options(&self) -> crate::scp03::link::Options {
        crate::scp03::link::Options {
            aid: self.aid.clone(),
            level: self.level,
            mode: self.mode,
        }
    }
}

/// Record fields a data group may name (see `docs/record-format.md`), plus
/// the ones personalization fills in.
pub const KNOWN_FIELDS: &[&str] = &[
    "record_id",
    "national_id",
    "given_name.fa",
    "given_name.latin",
    "family_name.fa",
    "family_name.latin",
    "father_name.fa",
    "father_name.latin",
    "sex",
    "birth_date",
    "birth_certificate_number",
    "birth_place.fa",
    "birth_place.latin",
    "issuing_office.kind",
    "issuing_office.code",
    "request.type",
    "request.reason",
    "request.previous_card_serial",
    "request_date",
    "photo",
    "card.serial",
    "card.issue_date",
    "card.expiry_date",
];

/// Date fields (the ones `date` and `gregorian` encodings accept).
const DATE_FIELDS: &[&str] = &[
    "birth_date",
    "request_date",
    "card.issue_date",
    "card.expiry_date",
];

impl Profile {
    /// The embedded reference profile.
    pub fn reference() -> Profile {
        // The embedded file is checked by a unit test; a broken build of it
        // would be a bug in this crate, not bad input.
        match Profile::parse(REFERENCE_PROFILE, REFERENCE_PATH, None) {
            Ok(p) => p,
            Err(e) => unreachable!("embedded reference profile is invalid: {e}"),
        }
    }

    /// The profiles built into the binary, in the order a station tries
    /// them on a card: the reference card, then the domestic card.
    pub fn installed() -> Vec<Profile> {
        let domestic = match Profile::parse(DOMESTIC_PROFILE, DOMESTIC_PATH, None) {
            Ok(p) => p,
            Err(e) => unreachable!("embedded domestic profile is invalid: {e}"),
        };
        vec![Profile::reference(), domestic]
    }

    /// Load a profile file; its scripts are resolved next to it.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            file: file.clone(),
            source,
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let p = Profile::parse(&text, &file, Some(dir))?;
        for s in &p.scripts {
            let sp = p.script_path(s);
            if !sp.as_ref().is_some_and(|x| x.is_file()) {
                return Err(ProfileError::Invalid {
                    file,
                    key: "perso.scripts".into(),
                    message: format!("script {s:?} not found next to the profile"),
                });
            }
        }
        Ok(p)
    }

    /// The profile named on the command line, or the reference one.
    pub fn load_or_reference(path: Option<&Path>) -> Result<Profile, ProfileError> {
        match path {
            Some(p) => Profile::load(p),
            None => Ok(Profile::reference()),
        }
    }

    fn script_path(&self, name: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(name))
    }

    /// The personalization scripts as (display name, text).
    pub fn script_texts(&self) -> Result<Vec<(String, String)>, ProfileError> {
        let mut out = Vec::new();
        for s in &self.scripts {
            match self.script_path(s) {
                Some(p) => {
                    let text =
                        std::fs::read_to_string(&p).map_err(|source| ProfileError::Read {
                            file: p.display().to_string(),
                            source,
                        })?;
                    out.push((p.display().to_string(), text));
                }
                None if s == "filesystem.apdu" => out.push((
                    "apdu-scripts/reference-card/filesystem.apdu".into(),
                    REFERENCE_FILESYSTEM.into(),
                )),
                None => {
                    return Err(ProfileError::Invalid {
                        file: self.source.clone(),
                        key: "perso.scripts".into(),
                        message: format!("the embedded profile has no script {s:?}"),
                    })
                }
            }
        }
        Ok(out)
    }

    pub fn data_group(&self, number: u8) -> Option<&DataGroup> {
        self.data_groups.iter().find(|d| d.number == number)
    }

    pub fn key(&self, usage: KeyUsage) -> Option<&KeySpec> {
        self.keys.iter().find(|k| k.usage == usage)
    }

    /// The PIN with this number (a key's `pin`).
    pub fn pin_by_number(&self, number: u8) -> Option<PinSpec> {
        [Some(self.id_pin), Some(self.signature_pin), self.puk]
            .into_iter()
            .flatten()
            .find(|p| p.number() == number)
    }

    /// Key `k`'s PIN and the value it has when the card leaves the
    /// factory, for a key behind a PIN that comes with a factory value:
    /// the issuer gives it before the key signs for it.
    pub fn key_factory_pin(&self, k: &KeySpec) -> Option<(PinSpec, &crate::secret::Secret)> {
        let pin = k.pin.and_then(|n| self.pin_by_number(n))?;
        self.factory_pin(pin.reference).map(|v| (pin, v))
    }

    /// The value PIN `reference` has when the card leaves the factory, if
    /// the profile gives one (`factory_value`).
    pub fn factory_pin(&self, reference: u8) -> Option<&crate::secret::Secret> {
        self.factory_pins
            .iter()
            .find(|(r, _)| *r == reference)
            .map(|(_, v)| v)
    }

    /// A PIN as the card takes it: in the profile's PIN block (its ASCII
    /// digits padded to the block's length), or as it is.
    pub fn pin_block_of(&self, pin: &crate::secret::Secret) -> crate::secret::Secret {
        match self.pin_block {
            None => pin.clone(),
            Some(b) => {
                let mut v = pin.expose().to_vec();
                v.resize(usize::from(b.length).max(v.len()), b.padding);
                crate::secret::Secret::new(v)
            }
        }
    }

    /// Parse and check a profile's text.
    pub fn parse(text: &str, file: &str, dir: Option<PathBuf>) -> Result<Profile, ProfileError> {
        let raw: RawProfile = toml::from_str(text).map_err(|e| ProfileError::Syntax {
            file: file.to_string(),
            message: toml_message(text, &e),
        })?;
        let c = Check { file };
        c.header(&raw)?;
        let (id_pin, signature_pin, puk, mut numbers) = c.pin_specs(&raw.pins)?;
        let pin_block = c.pin_block(raw.pins.pin_block.as_ref())?;
        let factory_pins = c.factory_pins(&raw.pins)?;
        let certificates = cert_rules(&raw.certificates, raw.card.validity_years, &|k, m| {
            c.bad(k, m)
        })?;
        let keys = c.key_specs(&raw.pki, id_pin, signature_pin, text)?;
        let commands = c.card_commands(&raw, text)?;
        let files = c.files(&raw.files)?;
        c.biometric(&raw.biometric, &mut numbers)?;
        let data_groups = c.data_groups(&raw.data_groups)?;
        for n in &raw.security_object.data_groups {
            if !data_groups.iter().any(|d| d.number == *n) {
                return Err(c.bad(
                    "security_object.data_groups",
                    format!("data group {n} is not defined"),
                ));
            }
        }
        let security_domain = match &raw.security_domain {
            None => None,
            Some(sd) => Some(c.security_domain(sd)?),
        };
        let (tag2, fid, aid) = (
            |k: &str, v: &str| c.tag2(k, v),
            |k: &str, v: &str| c.fid(k, v),
            |k: &str, v: &str| c.aid(k, v),
        );
        Ok(Profile {
            name: raw.name,
            source: file.to_string(),
            dir,
            recognizes: c.card_match(&raw.card)?,
            life_cycle_tag: tag2("card.life_cycle_tag", &raw.card.life_cycle_tag)?,
            life_cycle_values: c.life_cycle_values(raw.card.life_cycle_values.as_ref())?,
            status_tag: match &raw.card.status_tag {
                Some(t) => Some(tag2("card.status_tag", t)?),
                None => None,
            },
            validity_years: raw.card.validity_years,
            issuer_auth: raw.issuer.is_some(),
            issuer_key_reference: raw.issuer.as_ref().map_or(0, |i| i.key_reference),
            challenge_length: raw.issuer.as_ref().map_or(0, |i| i.challenge_length),
            scripts: raw.perso.scripts,
            photo_size_step: raw.perso.photo_size_step,
            max_update_binary: raw.perso.max_update_binary.map(usize::from),
            id_pin,
            signature_pin,
            puk,
            pin_block,
            factory_pins,
            minutiae_order: c.minutiae_order(raw.biometric.minutiae_order.as_deref())?,
            bit_layout: c.bit_layout(raw.biometric.bit_layout.as_deref())?,
            files,
            sod_size: raw.security_object.size.map(|n| n as usize),
            identity_aid: aid("identity.aid", &raw.identity.aid)?,
            identity_fid: fid("identity.fid", &raw.identity.fid)?,
            pki_aid: aid("pki.aid", &raw.pki.aid)?,
            pki_fid: fid("pki.fid", &raw.pki.fid)?,
            keys,
            certificates,
            bio_references: raw.biometric.references,
            bio_try_limit: raw.biometric.try_limit,
            max_minutiae: raw.biometric.max_minutiae,
            bio_format_owner: tag2("biometric.format_owner", &raw.biometric.format_owner)?,
            bio_format_type: tag2("biometric.format_type", &raw.biometric.format_type)?,
            data_groups,
            sod_fid: fid("security_object.fid", &raw.security_object.fid)?,
            sod_data_groups: raw.security_object.data_groups,
            security_domain,
            commands,
        })
    }
}

/// An absolute URI of one of `schemes`, written as the URL standard
/// serializes it (so that the certificate says exactly what the profile
/// does), with a host for http and https.
fn profile_uri(v: &str, schemes: &[&str]) -> Result<String, String> {
    let want = format!(
        "an absolute {} URI, e.g. \"http://pki.example/ca.crl\"",
        match schemes {
            [a, b] => format!("{a} or {b}"),
            [a, b, c] => format!("{a}, {b} or {c}"),
            _ => schemes.join(", "),
        }
    );
    let u = url::Url::parse(v).map_err(|e| format!("expected {want}, found {v:?} ({e})"))?;
    if !schemes.contains(&u.scheme()) {
        return Err(format!(
            "expected {want}, found the scheme {:?} in {v:?}",
            u.scheme()
        ));
    }
    if matches!(u.scheme(), "http" | "https") && u.host_str().is_none_or(str::is_empty) {
        return Err(format!("expected {want}, found no host in {v:?}"));
    }
    if u.as_str() != v {
        return Err(format!(
            "expected {want} in its normal form: write {:?} (found {v:?})",
            u.as_str()
        ));
    }
    Ok(v.to_string())
}

/// The checks of one profile file: every problem names the file and the
/// key, and says what was expected.
struct Check<'a> {
    file: &'a str,
}

impl Check<'_> {
    fn bad(&self, key: &str, message: String) -> ProfileError {
        ProfileError::Invalid {
            file: self.file.to_string(),
            key: key.to_string(),
            message,
        }
    }

    /// `[pins]`: the ID PIN, the signature PIN and the PUK if any, and the
    /// PIN numbers they take (each used once).
    fn pin_specs(
        &self,
        raw: &RawPins,
    ) -> Result<(PinSpec, PinSpec, Option<PinSpec>, BTreeSet<u8>), ProfileError> {
        let id_pin = self.pin("pins.id_pin", &raw.id_pin)?;
        let signature_pin = self.pin("pins.signature_pin", &raw.signature_pin)?;
        let puk = match &raw.puk {
            Some(r) => Some(self.pin("pins.puk", r)?),
            None => None,
        };
        let mut numbers = BTreeSet::new();
        for (k, p) in [
            ("pins.id_pin", Some(id_pin)),
            ("pins.signature_pin", Some(signature_pin)),
            ("pins.puk", puk),
        ] {
            if p.is_some_and(|p| !numbers.insert(p.number())) {
                return Err(self.bad(k, "reference used twice".into()));
            }
        }
        Ok((id_pin, signature_pin, puk, numbers))
    }

    /// `[[pki.keys]]` with the encodings and commands of `[pki.commands]`,
    /// a key's own commands first: every key has all three.
    fn key_specs(
        &self,
        raw: &RawPki,
        id_pin: PinSpec,
        signature_pin: PinSpec,
        text: &str,
    ) -> Result<Vec<KeySpec>, ProfileError> {
        let (point_encoding, signature_encoding) = self.encodings(&raw.commands)?;
        let pc = &raw.commands;
        let key_defaults = self.steps(
            &key_steps(&pc.generate, &pc.read_public_key, &pc.sign),
            "pki.commands",
            Step::KEY,
            text,
        )?;
        let mut keys = Vec::new();
        for (i, (k, r)) in self
            .keys(&raw.keys, id_pin, signature_pin)?
            .into_iter()
            .zip(&raw.keys)
            .enumerate()
        {
            let table = format!("pki.keys[{i}]");
            let commands = self
                .steps(
                    &key_steps(&r.generate, &r.read_public_key, &r.sign),
                    &table,
                    Step::KEY,
                    text,
                )?
                .or(&key_defaults);
            if let Some(m) = commands.missing(Step::KEY) {
                return Err(self.bad(
                    &table,
                    format!(
                        "key {:?} has no `{m}` command here or in [pki.commands]",
                        k.name
                    ),
                ));
            }
            keys.push(KeySpec {
                point_encoding,
                signature_encoding,
                commands,
                ..k
            });
        }
        Ok(keys)
    }

    /// `[commands]`: every step the profile must have, and issuer
    /// authentication's when there is an `[issuer]`.
    fn card_commands(
        &self,
        raw: &RawProfile,
        text: &str,
    ) -> Result<super::commands::Commands, ProfileError> {
        let commands = self.steps(&raw.commands, "commands", Step::CARD, text)?;
        if let Some(m) = commands.missing(Step::CARD) {
            return Err(self.bad(
                "commands",
                format!(
                    "the profile has no `{m}` command (docs/card-profile.md, \"Card commands\")"
                ),
            ));
        }
        self.issuer_or_domain(raw, &commands)?;
        Ok(commands)
    }

    /// A table of card commands ([`super::commands`]).
    fn steps(
        &self,
        raw: &super::commands::RawSteps,
        table: &str,
        allowed: &[Step],
        text: &str,
    ) -> Result<super::commands::Commands, ProfileError> {
        super::commands::Commands::parse(raw, table, allowed, self.file, text)
            .map_err(|p| self.bad(&p.key, p.message))
    }

    /// The version and the single-valued settings of [card], [issuer] and
    /// [perso].
    fn header(&self, raw: &RawProfile) -> Result<(), ProfileError> {
        if raw.version != 1 {
            return Err(self.bad(
                "version",
                format!("{} is not supported (expected 1)", raw.version),
            ));
        }
        if raw.card.serial != "cplc" {
            return Err(self.bad(
                "card.serial",
                format!("{:?} is not supported (expected \"cplc\")", raw.card.serial),
            ));
        }
        if !(1..=20).contains(&raw.card.validity_years) {
            return Err(self.bad("card.validity_years", "expected 1 to 20".into()));
        }
        if let Some(i) = raw
            .issuer
            .as_ref()
            .filter(|i| !(8..=64).contains(&i.challenge_length))
        {
            return Err(self.bad(
                "issuer.challenge_length",
                format!("{}: expected 8 to 64", i.challenge_length),
            ));
        }
        if raw.perso.scripts.is_empty() && raw.files.is_empty() {
            return Err(self.bad(
                "perso.scripts",
                "expected at least one script, or [[files]] made at the factory".into(),
            ));
        }
        if let Some(n) = raw
            .perso
            .max_update_binary
            .filter(|n| !(16..=65_535).contains(n))
        {
            return Err(self.bad(
                "perso.max_update_binary",
                format!("{n}: expected 16 to 65535 bytes"),
            ));
        }
        if raw.perso.photo_size_step == 0 {
            return Err(self.bad("perso.photo_size_step", "expected at least 1".into()));
        }
        Ok(())
    }

    /// A card needs `[issuer]` (with its commands) or a security domain:
    /// the issuer must prove itself to a blank card somehow.
    fn issuer_or_domain(
        &self,
        raw: &RawProfile,
        commands: &super::commands::Commands,
    ) -> Result<(), ProfileError> {
        match (&raw.issuer, &raw.security_domain) {
            (None, None) => Err(self.bad(
                "issuer",
                "expected [issuer] or [security_domain]: the issuer must prove itself to a blank card"
                    .into(),
            )),
            (Some(_), _) => match [Step::GetChallenge, Step::ExternalAuthenticate]
                .into_iter()
                .find(|s| !commands.has(*s))
            {
                Some(step) => Err(self.bad(
                    "commands",
                    format!("[issuer] needs the `{step}` command"),
                )),
                None => Ok(()),
            },
            (None, Some(_)) => Ok(()),
        }
    }

    /// `[card] life_cycle_values`: four different bytes.
    fn life_cycle_values(
        &self,
        raw: Option<&RawLifeCycleValues>,
    ) -> Result<LifeCycleValues, ProfileError> {
        let Some(r) = raw else {
            return Ok(LifeCycleValues::REFERENCE);
        };
        let byte = |k: &str, v: &str| -> Result<u8, ProfileError> {
            match hex::parse(v).as_deref() {
                Ok([b]) => Ok(*b),
                _ => Err(self.bad(
                    &format!("card.life_cycle_values.{k}"),
                    format!("expected one byte of hex, e.g. \"07\", found {v:?}"),
                )),
            }
        };
        let v = LifeCycleValues {
            blank: byte("blank", &r.blank)?,
            personalized: byte("personalized", &r.personalized)?,
            activated: byte("activated", &r.activated)?,
            terminated: byte("terminated", &r.terminated)?,
        };
        let all = BTreeSet::from([v.blank, v.personalized, v.activated, v.terminated]);
        if all.len() != 4 {
            return Err(self.bad(
                "card.life_cycle_values",
                "expected four different values".into(),
            ));
        }
        Ok(v)
    }

    /// `[pins] pin_block`.
    fn pin_block(&self, raw: Option<&RawPinBlock>) -> Result<Option<PinBlock>, ProfileError> {
        let Some(r) = raw else { return Ok(None) };
        let padding = match hex::parse(&r.padding).as_deref() {
            Ok([b]) => *b,
            _ => {
                return Err(self.bad(
                    "pins.pin_block.padding",
                    format!(
                        "expected one byte of hex, e.g. \"FF\", found {:?}",
                        r.padding
                    ),
                ))
            }
        };
        if !(4..=16).contains(&r.length) || !(1..=r.length).contains(&r.min_digits) {
            return Err(self.bad(
                "pins.pin_block",
                "expected a length of 4 to 16 bytes and min_digits from 1 to the length".into(),
            ));
        }
        Ok(Some(PinBlock {
            length: r.length,
            min_digits: r.min_digits,
            padding,
        }))
    }

    /// The PINs' `factory_value`s: as many ASCII digits as `transport_digits`.
    fn factory_pins(
        &self,
        raw: &RawPins,
    ) -> Result<Vec<(u8, crate::secret::Secret)>, ProfileError> {
        let mut out = Vec::new();
        for (k, r) in [
            ("pins.id_pin", Some(&raw.id_pin)),
            ("pins.signature_pin", Some(&raw.signature_pin)),
            ("pins.puk", raw.puk.as_ref()),
        ] {
            let Some((r, v)) = r.and_then(|r| r.factory_value.as_ref().map(|v| (r, v))) else {
                continue;
            };
            if !v.bytes().all(|b| b.is_ascii_digit()) || v.len() != usize::from(r.transport_digits)
            {
                return Err(self.bad(
                    &format!("{k}.factory_value"),
                    format!(
                        "expected {} ASCII digits (its transport_digits)",
                        r.transport_digits
                    ),
                ));
            }
            out.push((
                r.reference,
                crate::secret::Secret::new(v.as_bytes().to_vec()),
            ));
        }
        Ok(out)
    }

    fn minutiae_order(&self, v: Option<&str>) -> Result<MinutiaeOrder, ProfileError> {
        match v {
            None | Some("none") => Ok(MinutiaeOrder::Unordered),
            Some("x-y ascending") => Ok(MinutiaeOrder::XyAscending),
            Some(other) => Err(self.bad(
                "biometric.minutiae_order",
                format!("{other:?}: expected \"none\" or \"x-y ascending\""),
            )),
        }
    }

    fn bit_layout(&self, v: Option<&str>) -> Result<BitLayout, ProfileError> {
        match v {
            None | Some("b1-inside-a1") => Ok(BitLayout::B1InsideA1),
            Some("b1-beside-a1") => Ok(BitLayout::B1BesideA1),
            Some(other) => Err(self.bad(
                "biometric.bit_layout",
                format!("{other:?}: expected \"b1-inside-a1\" or \"b1-beside-a1\""),
            )),
        }
    }

    /// `[[files]]`: paths of FIDs from the MF, an AID for a DF, a size for an EF.
    fn files(&self, raw: &[RawFile]) -> Result<Vec<FactoryFile>, ProfileError> {
        let mut out = Vec::new();
        for (i, f) in raw.iter().enumerate() {
            let key = format!("files[{i}]");
            let path = f
                .path
                .split('/')
                .map(|part| self.fid(&format!("{key}.path"), part))
                .collect::<Result<Vec<u16>, _>>()?;
            let aid = match &f.aid {
                Some(a) => Some(self.aid(&format!("{key}.aid"), a)?),
                None => None,
            };
            if aid.is_none() == f.size.is_none() {
                return Err(self.bad(
                    &key,
                    "expected an aid (an application DF) or a size (an EF), not both or neither"
                        .into(),
                ));
            }
            out.push(FactoryFile {
                path,
                aid,
                size: f.size.map(|n| n as usize),
            });
        }
        Ok(out)
    }

    fn tag2(&self, key: &str, v: &str) -> Result<u16, ProfileError> {
        let b = hex::parse(v).map_err(|e| self.bad(key, format!("{e}")))?;
        match b.as_slice() {
            [a, b] => Ok(u16::from_be_bytes([*a, *b])),
            _ => Err(self.bad(
                key,
                format!("expected 2 bytes of hex, e.g. \"DF70\", found {v:?}"),
            )),
        }
    }

    fn fid(&self, key: &str, v: &str) -> Result<u16, ProfileError> {
        let f = self.tag2(key, v)?;
        if matches!(f, 0x3F00 | 0x3FFF | 0xFFFF) {
            return Err(self.bad(key, format!("{v} is reserved and cannot be a FID")));
        }
        Ok(f)
    }

    fn aid(&self, key: &str, v: &str) -> Result<Vec<u8>, ProfileError> {
        let b = hex::parse(v).map_err(|e| self.bad(key, format!("{e}")))?;
        if !(5..=16).contains(&b.len()) {
            return Err(self.bad(key, format!("an AID has 5 to 16 bytes, found {}", b.len())));
        }
        Ok(b)
    }

    fn ber_tag(&self, key: &str, v: &str) -> Result<Vec<u8>, ProfileError> {
        let b = hex::parse(v).map_err(|e| self.bad(key, format!("{e}")))?;
        if crate::tlv::valid_tag(&b) {
            Ok(b)
        } else {
            Err(self.bad(key, format!("{v:?} is not a complete BER-TLV tag")))
        }
    }

    fn pin(&self, key: &str, p: &RawPin) -> Result<PinSpec, ProfileError> {
        if !is_reference(p.reference) {
            return Err(self.bad(
                &format!("{key}.reference"),
                format!(
                    "0x{:02X} is not a PIN reference (expected 0x01 to 0x1F, global, or 0x81 to 0x9F, specific)",
                    p.reference
                ),
            ));
        }
        if !(4..=12).contains(&p.transport_digits) {
            return Err(self.bad(
                &format!("{key}.transport_digits"),
                "expected 4 to 12".into(),
            ));
        }
        Ok(PinSpec {
            reference: p.reference,
            transport_digits: p.transport_digits,
        })
    }

    /// `[card] atr` and `historical_bytes`: the patterns that recognize the
    /// profile's cards.
    fn card_match(&self, raw: &RawCard) -> Result<super::recognize::CardMatch, ProfileError> {
        use super::recognize::BytePattern;
        let parse = |key: &str, list: &[String]| -> Result<Vec<BytePattern>, ProfileError> {
            list.iter()
                .enumerate()
                .map(|(i, t)| {
                    BytePattern::parse(t).map_err(|e| self.bad(&format!("card.{key}[{i}]"), e))
                })
                .collect()
        };
        Ok(super::recognize::CardMatch {
            atr: parse("atr", &raw.atr)?,
            historical_bytes: parse("historical_bytes", &raw.historical_bytes)?,
            atr_prefix: match &raw.atr_prefix {
                Some(t) => Some(BytePattern::parse(t).map_err(|e| self.bad("card.atr_prefix", e))?),
                None => None,
            },
        })
    }

    /// `[pki.commands]`: the encodings of the card's public keys and
    /// signatures; the reference card's when not given.
    fn encodings(
        &self,
        raw: &RawPkiCommands,
    ) -> Result<(PointEncoding, SignatureEncoding), ProfileError> {
        let point = match raw.public_key_encoding.as_deref() {
            None => PointEncoding::default(),
            Some(name) => PointEncoding::from_name(name).ok_or_else(|| {
                self.bad(
                    "pki.commands.public_key_encoding",
                    format!("{name:?}: expected {}", PointEncoding::EXPECTED),
                )
            })?,
        };
        let signature = match raw.signature_encoding.as_deref() {
            None => SignatureEncoding::default(),
            Some(name) => SignatureEncoding::from_name(name).ok_or_else(|| {
                self.bad(
                    "pki.commands.signature_encoding",
                    format!("{name:?}: expected {}", SignatureEncoding::EXPECTED),
                )
            })?,
        };
        Ok((point, signature))
    }

    /// [[pki.keys]]: one key per usage, each with its certificate file and
    /// the PIN that guards it.
    fn keys(
        &self,
        raw: &[RawKey],
        id_pin: PinSpec,
        signature_pin: PinSpec,
    ) -> Result<Vec<KeySpec>, ProfileError> {
        let mut keys: Vec<KeySpec> = Vec::new();
        for (i, k) in raw.iter().enumerate() {
            let key = format!("pki.keys[{i}]");
            let usage = match k.usage.as_str() {
                "authenticate" => KeyUsage::Authenticate,
                "sign" => KeyUsage::Sign,
                other => {
                    return Err(self.bad(
                        &format!("{key}.usage"),
                        format!("{other:?}: expected \"authenticate\" or \"sign\""),
                    ))
                }
            };
            let certificate = match k.certificate_profile.as_str() {
                "authentication" => CertKind::Authentication,
                "signature" => CertKind::Signature,
                other => {
                    return Err(self.bad(
                        &format!("{key}.certificate_profile"),
                        format!("{other:?}: expected \"authentication\" or \"signature\""),
                    ))
                }
            };
            if !(1..=0xFE).contains(&k.reference) {
                return Err(self.bad(&format!("{key}.reference"), "expected 1 to FE".into()));
            }
            let pin = match k.pin.as_deref() {
                None => None,
                Some("id_pin") => Some(id_pin.number()),
                Some("signature_pin") => Some(signature_pin.number()),
                Some(other) => {
                    return Err(self.bad(
                        &format!("{key}.pin"),
                        format!("{other:?}: expected \"id_pin\" or \"signature_pin\""),
                    ))
                }
            };
            if keys
                .iter()
                .any(|x| x.usage == usage || x.reference == k.reference)
            {
                return Err(self.bad(&key, "a second key with the same usage or reference".into()));
            }
            keys.push(KeySpec {
                name: k.name.clone(),
                reference: k.reference,
                usage,
                certificate_fid: self.fid(&format!("{key}.certificate_fid"), &k.certificate_fid)?,
                certificate,
                pin,
                pin_per_use: k.pin_per_use,
                point_encoding: PointEncoding::default(),
                signature_encoding: SignatureEncoding::default(),
                commands: super::commands::Commands::default(),
            });
        }
        for u in [KeyUsage::Authenticate, KeyUsage::Sign] {
            if !keys.iter().any(|k| k.usage == u) {
                return Err(self.bad("pki.keys", format!("expected a key with usage {u:?}")));
            }
        }
        Ok(keys)
    }

    /// [biometric]: its references (not used by a PIN), tries, minutiae.
    fn biometric(&self, raw: &RawBio, numbers: &mut BTreeSet<u8>) -> Result<(), ProfileError> {
        if raw.references.is_empty() || raw.references.len() > 2 {
            return Err(self.bad(
                "biometric.references",
                "expected one or two references".into(),
            ));
        }
        for r in &raw.references {
            if !is_reference(*r) || !numbers.insert(r & 0x0F) {
                return Err(self.bad(
                    "biometric.references",
                    format!("0x{r:02X}: expected an unused reference 0x01 to 0x1F or 0x81 to 0x9F"),
                ));
            }
        }
        if !(1..=15).contains(&raw.try_limit) {
            return Err(self.bad("biometric.try_limit", "expected 1 to 15".into()));
        }
        if !(10..=85).contains(&raw.max_minutiae) {
            return Err(self.bad(
                "biometric.max_minutiae",
                "expected 10 to 85 (3 bytes each in a short APDU)".into(),
            ));
        }
        Ok(())
    }

    /// [[data_groups]]: unique numbers, record fields in encodings that fit
    /// them, unique tags.
    fn data_groups(&self, raw: &[RawDataGroup]) -> Result<Vec<DataGroup>, ProfileError> {
        let mut data_groups: Vec<DataGroup> = Vec::new();
        for (i, d) in raw.iter().enumerate() {
            let key = format!("data_groups[{i}]");
            if !(1..=16).contains(&d.number) || data_groups.iter().any(|x| x.number == d.number) {
                return Err(self.bad(
                    &format!("{key}.number"),
                    format!("{}: expected a unique number 1 to 16", d.number),
                ));
            }
            let mut fields: Vec<FieldMap> = Vec::new();
            for (j, f) in d.fields.iter().enumerate() {
                let field = self.field(&format!("{key}.fields[{j}]"), f)?;
                if fields.iter().any(|x| x.tag == field.tag) {
                    return Err(self.bad(
                        &format!("{key}.fields[{j}].tag"),
                        "tag used twice in the group".into(),
                    ));
                }
                fields.push(field);
            }
            data_groups.push(DataGroup {
                number: d.number,
                name: d.name.clone(),
                fid: self.fid(&format!("{key}.fid"), &d.fid)?,
                tag: self.ber_tag(&format!("{key}.tag"), &d.tag)?,
                fields,
                size: d.size.map(|n| n as usize),
            });
        }
        Ok(data_groups)
    }

    /// One field of a data group.
    fn field(&self, fkey: &str, f: &RawField) -> Result<FieldMap, ProfileError> {
        if !KNOWN_FIELDS.contains(&f.field.as_str()) {
            return Err(self.bad(
                &format!("{fkey}.field"),
                format!(
                    "{:?} is not a record field (known: {})",
                    f.field,
                    KNOWN_FIELDS.join(", ")
                ),
            ));
        }
        let encoding = match f.encoding.as_deref() {
            None | Some("utf8") => Encoding::Utf8,
            Some("date") => Encoding::Date,
            Some("gregorian") => Encoding::Gregorian,
            Some("bytes") => Encoding::Bytes,
            Some(other) => {
                return Err(self.bad(
                    &format!("{fkey}.encoding"),
                    format!("{other:?}: expected utf8, date, gregorian or bytes"),
                ))
            }
        };
        let is_date = DATE_FIELDS.contains(&f.field.as_str());
        let ok = match encoding {
            Encoding::Date | Encoding::Gregorian => is_date,
            Encoding::Bytes => f.field == "photo",
            Encoding::Utf8 => !is_date && f.field != "photo",
        };
        if !ok {
            return Err(self.bad(
                &format!("{fkey}.encoding"),
                format!("{encoding:?} does not fit field {:?}", f.field),
            ));
        }
        Ok(FieldMap {
            tag: self.ber_tag(&format!("{fkey}.tag"), &f.tag)?,
            field: f.field.clone(),
            encoding,
        })
    }

    /// [security_domain]: its AID, at least C-MAC, the S8/S16 mode.
    fn security_domain(&self, sd: &RawSd) -> Result<SecurityDomain, ProfileError> {
        let mut p1 = 0u8;
        for l in &sd.level {
            p1 |= match l.as_str() {
                "C-MAC" => 0x01,
                "C-DECRYPTION" | "C-ENC" => 0x02,
                "R-MAC" => 0x10,
                "R-ENCRYPTION" | "R-ENC" => 0x20,
                other => {
                    return Err(self.bad(
                        "security_domain.level",
                        format!("{other:?}: expected C-MAC, C-DECRYPTION, R-MAC or R-ENCRYPTION"),
                    ))
                }
            };
        }
        if p1 & 0x01 == 0 {
            return Err(self.bad(
                "security_domain.level",
                "personalization needs at least C-MAC".into(),
            ));
        }
        let level = crate::scp03::SecurityLevel::from_p1(p1)
            .map_err(|e| self.bad("security_domain.level", e.to_string()))?;
        let mode = match sd.mode.as_str() {
            "S8" => crate::scp03::Mode::S8,
            "S16" => crate::scp03::Mode::S16,
            other => {
                return Err(self.bad(
                    "security_domain.mode",
                    format!("{other:?}: expected \"S8\" or \"S16\""),
                ))
            }
        };
        Ok(SecurityDomain {
            aid: self.aid("security_domain.aid", &sd.aid)?,
            level,
            mode,
            store_data: sd.store_data,
            select_keeps_files: sd.select_keeps_files,
            default_kvn: sd.default_kvn,
        })
    }
}

/// `[certificates]`, validated against the card's validity.
fn cert_rules(
    raw: &RawCerts,
    validity_years: u8,
    bad: &dyn Fn(&str, String) -> ProfileError,
) -> Result<CertRules, ProfileError> {
    let card_days = u32::from(validity_years) * 365;
    if u32::from(raw.end_before_card_days) >= card_days {
        return Err(bad(
            "certificates.end_before_card_days",
            format!(
                "{} days before the card's expiry is before the card is issued (card.validity_years = {validity_years}); expected fewer than {card_days} days",
                raw.end_before_card_days
            ),
        ));
    }
    if raw.tolerance_days > 366 {
        return Err(bad(
            "certificates.tolerance_days",
            format!("{} is too many: expected 0 to 366 days", raw.tolerance_days),
        ));
    }
    if raw.crl_distribution_points.is_empty() {
        return Err(bad(
            "certificates.crl_distribution_points",
            "expected at least one URI, e.g. [\"http://pki.example/ca.crl\"]".into(),
        ));
    }
    let mut crl = Vec::new();
    for (i, u) in raw.crl_distribution_points.iter().enumerate() {
        crl.push(
            profile_uri(u, &["http", "https", "ldap"])
                .map_err(|e| bad(&format!("certificates.crl_distribution_points[{i}]"), e))?,
        );
    }
    crate::pki::oid::parse_dotted_oid(&raw.policy_oid).map_err(|e| {
        bad(
            "certificates.policy_oid",
            format!(
                "expected a dotted OID such as \"2.999.364.1.1\", found {:?}: {e}",
                raw.policy_oid
            ),
        )
    })?;
    let cps_uri = match &raw.cps_uri {
        Some(u) => {
            Some(profile_uri(u, &["http", "https"]).map_err(|e| bad("certificates.cps_uri", e))?)
        }
        None => None,
    };
    Ok(CertRules {
        end_before_card_days: raw.end_before_card_days,
        tolerance_days: raw.tolerance_days,
        crl_distribution_points: crl,
        policy: crate::pki::CertPolicy {
            oid: raw.policy_oid.clone(),
            cps_uri,
        },
    })
}

/// An ISO/IEC 7816-4 reference of a PIN or a biometric reference: b8 global
/// (0) or specific (1), b7-b6 zero, a number in b5-b1 that is not zero.
fn is_reference(r: u8) -> bool {
    r & 0x60 == 0 && r & 0x1F != 0
}

/// A TOML error as "line L, column C: message".
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().to_string();
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or("");
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {col}: {msg}")
        }
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_profile_is_valid() {
        let p = Profile::parse(REFERENCE_PROFILE, REFERENCE_PATH, None).unwrap();
        assert_eq!(p.data_groups.len(), 4);
        assert_eq!(p.keys.len(), 2);
        assert_eq!(p.id_pin.number(), 1);
        assert_eq!(p.sod_data_groups, vec![1, 2, 3, 4]);
        assert_eq!(p.script_texts().unwrap().len(), 1);
    }

    #[test]
    fn the_installed_profiles_are_the_reference_then_the_domestic_card() {
        let installed = Profile::installed();
        let names: Vec<&str> = installed.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cardsmith reference national ID card",
                "cardsmith domestic national ID card"
            ]
        );
        // The built-in domestic profile is the file's, scripts and all.
        let file = Profile::load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(DOMESTIC_PATH),
        )
        .unwrap();
        let built_in = installed.get(1).unwrap();
        assert_eq!(built_in.recognizes, file.recognizes);
        assert_eq!(built_in.max_minutiae, file.max_minutiae);
        assert_eq!(
            built_in.script_texts().unwrap(),
            file.script_texts().unwrap()
        );
    }

    #[test]
    fn errors_name_the_key() {
        let bad = REFERENCE_PROFILE.replace("fid = \"0102\"", "fid = \"3F00\"");
        let e = Profile::parse(&bad, "x.toml", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.toml") && e.contains("data_groups[1].fid"),
            "{e}"
        );
        let bad = REFERENCE_PROFILE.replace("field = \"sex\"", "field = \"gender\"");
        let e = Profile::parse(&bad, "x.toml", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("data_groups[0].fields[7].field"), "{e}");
        let bad = REFERENCE_PROFILE.replace("[issuer]", "[issuer]\nbogus = 1");
        let e = Profile::parse(&bad, "x.toml", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line") && e.contains("bogus"), "{e}");
        let bad = REFERENCE_PROFILE.replace("data_groups = [1, 2, 3, 4]", "data_groups = [1, 9]");
        let e = Profile::parse(&bad, "x.toml", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("data group 9"), "{e}");
    }

    #[test]
    fn key_and_signature_encodings_come_from_the_profile() {
        let p = Profile::parse(REFERENCE_PROFILE, REFERENCE_PATH, None).unwrap();
        for k in &p.keys {
            assert_eq!(k.point_encoding, PointEncoding::PublicKeyTemplate);
            assert_eq!(k.signature_encoding, SignatureEncoding::Raw);
        }
        let other = REFERENCE_PROFILE
            .replace(
                "public_key_encoding = \"7f49-template\"",
                "public_key_encoding = \"uncompressed-point\"",
            )
            .replace(
                "signature_encoding = \"raw\"",
                "signature_encoding = \"der\"",
            );
        let p = Profile::parse(&other, "other/profile.toml", None).unwrap();
        for k in &p.keys {
            assert_eq!(k.point_encoding, PointEncoding::UncompressedPoint);
            assert_eq!(k.signature_encoding, SignatureEncoding::Der);
        }
        // Left out, they are the reference card's.
        let none = REFERENCE_PROFILE
            .replace("public_key_encoding = \"7f49-template\"\n", "")
            .replace("signature_encoding = \"raw\"\n", "");
        let p = Profile::parse(&none, "none/profile.toml", None).unwrap();
        assert!(p
            .keys
            .iter()
            .all(|k| k.signature_encoding == SignatureEncoding::Raw));
    }

    #[test]
    fn an_unknown_encoding_is_refused_by_key_with_the_names_expected() {
        let e = refused(
            "signature_encoding = \"raw\"",
            "signature_encoding = \"asn1\"",
        );
        assert!(
            e.contains("custom/profile.toml")
                && e.contains("pki.commands.signature_encoding")
                && e.contains("\"raw\" or \"der\""),
            "{e}"
        );
        let e = refused(
            "public_key_encoding = \"7f49-template\"",
            "public_key_encoding = \"compressed\"",
        );
        assert!(
            e.contains("pki.commands.public_key_encoding") && e.contains("uncompressed-point"),
            "{e}"
        );
        let e = refused("[pki.commands]", "[pki.commands]\nsign = \"80 2A 00 00\"");
        assert!(e.contains("sign"), "{e}");
    }

    /// The reference profile with `from` replaced by `to`, parsed: the error.
    fn refused(from: &str, to: &str) -> String {
        assert!(REFERENCE_PROFILE.contains(from), "{from}");
        let text = REFERENCE_PROFILE.replace(from, to);
        Profile::parse(&text, "custom/profile.toml", None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn certificate_rules_of_the_reference_profile() {
        let p = Profile::parse(REFERENCE_PROFILE, REFERENCE_PATH, None).unwrap();
        let c = &p.certificates;
        assert_eq!((c.end_before_card_days, c.tolerance_days), (0, 1));
        assert_eq!(
            c.crl_distribution_points,
            vec!["http://pki.national-id.example/crl/card-ca.crl"]
        );
        assert_eq!(c.policy.oid, "2.999.364.1.1");
        assert_eq!(
            c.policy.cps_uri.as_deref(),
            Some("https://pki.national-id.example/cps")
        );
        // The card's end: 00:00 UTC of the Gregorian expiry date.
        let expiry = DatePair {
            jalali: "14120913".into(),
            gregorian: "20331203".into(),
        };
        let end = CertRules::card_end(&expiry).unwrap();
        assert_eq!(end, 2_017_180_800);
        assert_eq!(
            CertRules::show_card_expiry(&expiry, end),
            "1412/09/13 (2033-12-03 00:00:00 UTC)"
        );
        let t = c.issue_terms(&expiry).unwrap();
        assert_eq!(t.not_after, end);
        assert_eq!(t.crl_distribution_points, c.crl_distribution_points);
        assert_eq!(t.policy.as_ref(), Some(&c.policy));
        let ct = c.card_terms(end, "x");
        assert_eq!(ct.max_days_before, 1);
        // N days before the card.
        let text =
            REFERENCE_PROFILE.replace("end_before_card_days = 0", "end_before_card_days = 30");
        let p = Profile::parse(&text, "x", None).unwrap();
        let t = p.certificates.issue_terms(&expiry).unwrap();
        assert_eq!(t.not_after, end - 30 * 86_400);
        assert_eq!(p.certificates.card_terms(end, "x").max_days_before, 31);
        // Defaults when the keys are left out.
        let text = REFERENCE_PROFILE
            .replace("end_before_card_days = 0\n", "")
            .replace("tolerance_days = 1\n", "")
            .replace("cps_uri = \"https://pki.national-id.example/cps\"\n", "");
        let p = Profile::parse(&text, "x", None).unwrap();
        assert_eq!(p.certificates.end_before_card_days, 0);
        assert_eq!(p.certificates.tolerance_days, 1);
        assert_eq!(p.certificates.policy.cps_uri, None);
    }

    #[test]
    fn a_card_expiry_that_is_not_a_date_is_an_error() {
        for g in [
            "",
            "2033120",
            "203312031",
            "20331303",
            "20330230",
            "2033-1-3",
            "２０３３１２０３",
        ] {
            let e = CertRules::card_end(&DatePair {
                jalali: "14120913".into(),
                gregorian: g.into(),
            })
            .unwrap_err();
            assert!(e.contains("not a Gregorian YYYYMMDD date"), "{g}: {e}");
        }
    }

    #[test]
    fn malformed_certificate_rules_name_file_key_and_what_was_expected() {
        let oid = "policy_oid = \"2.999.364.1.1\"";
        let crl = "\"http://pki.national-id.example/crl/card-ca.crl\"]";
        for (from, to, key, expected) in [
            (oid, "policy_oid = \"2.999..1\"", "certificates.policy_oid", "dotted OID"),
            (oid, "policy_oid = \"3.1\"", "certificates.policy_oid", "must be 0, 1 or 2"),
            (oid, "policy_oid = \"\"", "certificates.policy_oid", "dotted OID"),
            (
                crl,
                "\"crl.example/ca.crl\"]",
                "certificates.crl_distribution_points[0]",
                "absolute http, https or ldap URI",
            ),
            (
                crl,
                "\"http://pki.example/a.crl\", \"ftp://pki.example/ca.crl\"]",
                "certificates.crl_distribution_points[1]",
                "the scheme \"ftp\"",
            ),
            (
                crl,
                "\"HTTP://PKI.example/ca crl\"]",
                "certificates.crl_distribution_points[0]",
                "write \"http://pki.example/ca%20crl\"",
            ),
            (
                crl,
                "\"http:ca.crl\"]",
                "certificates.crl_distribution_points[0]",
                "absolute http",
            ),
            (
                "crl_distribution_points = [\"http://pki.national-id.example/crl/card-ca.crl\"]",
                "crl_distribution_points = []",
                "certificates.crl_distribution_points",
                "at least one URI",
            ),
            (
                "cps_uri = \"https://pki.national-id.example/cps\"",
                "cps_uri = \"ldap://pki.example/cps\"",
                "certificates.cps_uri",
                "absolute http or https URI",
            ),
            (
                "end_before_card_days = 0",
                "end_before_card_days = 2555",
                "certificates.end_before_card_days",
                "before the card is issued (card.validity_years = 7); expected fewer than 2555 days",
            ),
            (
                "tolerance_days = 1",
                "tolerance_days = 400",
                "certificates.tolerance_days",
                "expected 0 to 366",
            ),
        ] {
            let e = refused(from, to);
            assert!(
                e.starts_with("card profile custom/profile.toml: ")
                    && e.contains(&format!("{key}: "))
                    && e.contains(expected),
                "{to}: {e}"
            );
        }
        // A rule that fits a 7-year card is impossible for a 1-year one.
        let text = REFERENCE_PROFILE
            .replace("validity_years = 7", "validity_years = 1")
            .replace("end_before_card_days = 0", "end_before_card_days = 400");
        let e = Profile::parse(&text, "x", None).unwrap_err().to_string();
        assert!(e.contains("certificates.end_before_card_days"), "{e}");
        // A missing section or key is named too.
        let e = refused("policy_oid = \"2.999.364.1.1\"\n", "");
        assert!(e.contains("policy_oid"), "{e}");
        let e = refused("end_before_card_days = 0", "end_before_card_days = -1");
        assert!(e.contains("line ") && e.contains("expected u16"), "{e}");
    }

    #[test]
    fn arbitrary_text_never_panics() {
        for s in ["", "name = 1", "[[data_groups]]\nnumber = 300", "\u{0}"] {
            assert!(Profile::parse(s, "x", None).is_err());
        }
    }
}
