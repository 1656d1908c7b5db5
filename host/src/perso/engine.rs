//! Personalization, verification by reading back, and reading a card.
//!
//! [`personalize`] takes a blank card to the personalized state: issuer
//! authentication, the profile's scripts (file system and PINs), fingerprint
//! enrolment, the data groups, the security object, key pairs generated on
//! the card with their certificates, and closing personalization.
//! [`verify`] reads everything back and gives a verdict per check.
//!
//! Both are step machines without I/O ([`crate::transport::sansio`]):
//! [`personalization`] and [`verification`] are conversations that ask
//! their [`Io`] for each command and wait for the answer, and for what only
//! a channel does (a transaction, the secure channel installed, the
//! profile's scripts handed to the script interpreter: [`ScriptsWork`]).
//! [`personalize`] and [`verify`] have a [`Channel`] drive them; a test
//! drives them itself with canned answers (`tests/perso_machine.rs`).

use std::collections::BTreeMap;
use std::time::SystemTime;

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use crate::apdu::StatusWord;
use crate::hex;
use crate::pki;
use crate::script::eval::{Env, Value};
use crate::script::{self, runner};
use crate::tlv;
use crate::transport::sansio::{self, Io};
use crate::transport::{Channel, ExchangeError};

use super::card::{self, LifeCycle, StepError};
use super::certs;
use super::commands::Step;
use super::datagroups::{self, Fields};
use super::keys::IssuerKey;
use super::profile::{CertKind, KeySpec, KeyUsage, Profile};
use crate::scp03::keyfile::Scp03Keys;
use crate::scp03::link;

/// What the issuer brings to personalization.
pub struct Issuer<'a> {
    pub profile: &'a Profile,
    pub key: &'a IssuerKey,
    /// The security domain's SCP03 keys; needed when the profile names a
    /// security domain (`None` then sends everything in clear, which such a
    /// card refuses).
    pub scp03: Option<&'a Scp03Keys>,
    pub ca: &'a dyn pki::CertificateAuthority,
    pub signer: &'a dyn pki::DocumentSigner,
}

pub use super::input::{CardInput, FingerInput};

/// The personalization stages, in order. A failure names its stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    CheckBlank,
    SecureChannel,
    IssuerAuth,
    Scripts,
    Enrol,
    DataGroups,
    SecurityObject,
    Keys,
    Close,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::CheckBlank => "check blank",
            Stage::SecureChannel => "secure channel",
            Stage::IssuerAuth => "issuer auth",
            Stage::Scripts => "scripts",
            Stage::Enrol => "enrol",
            Stage::DataGroups => "data groups",
            Stage::Keys => "keys",
            Stage::SecurityObject => "security object",
            Stage::Close => "close",
        })
    }
}

/// Why personalization stopped.
#[derive(Debug, thiserror::Error)]
#[error("personalization failed at stage {stage}: {detail}")]
pub struct PersoError {
    pub stage: Stage,
    pub detail: String,
    /// The transport failed (card pulled, reader gone), as opposed to the
    /// card or the data saying no.
    pub transport: bool,
}

impl PersoError {
    fn at(stage: Stage) -> impl Fn(ExchangeError) -> PersoError {
        move |e| PersoError {
            stage,
            transport: matches!(e, ExchangeError::Transport(_)),
            detail: e.to_string(),
        }
    }
    fn msg(stage: Stage, detail: impl Into<String>) -> PersoError {
        PersoError {
            stage,
            detail: detail.into(),
            transport: false,
        }
    }
}

/// What personalization produced.
#[derive(Debug, Clone, Serialize)]
pub struct PersoResult {
    pub serial: String,
    /// Certificates written, by key name (DER).
    #[serde(skip)]
    pub certificates: Vec<(String, Vec<u8>)>,
    /// APDUs exchanged on the wire.
    pub apdus: usize,
    /// Bytes written into EFs (data groups, certificates, security object).
    pub bytes_written: usize,
    /// The secure channel personalization went over, e.g. "SCP03 C-MAC
    /// C-ENC R-MAC R-ENC, KVN 30"; `None` in clear.
    pub secure_channel: Option<String>,
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, b).as_ref());
    out
}

/// Personalize a blank card.
pub fn personalize(
    ch: &mut Channel,
    iss: &Issuer<'_>,
    input: &CardInput,
) -> Result<PersoResult, PersoError> {
    personalize_staged(ch, iss, input, &mut |_| {})
}

/// [`personalize`], calling `on_stage` as each stage begins (the line
/// journals a timestamp per stage). The channel drives [`personalization`]
/// and runs the profile's scripts when it asks ([`run_scripts`]).
pub fn personalize_staged(
    ch: &mut Channel,
    iss: &Issuer<'_>,
    input: &CardInput,
    on_stage: &mut dyn FnMut(Stage),
) -> Result<PersoResult, PersoError> {
    let p = iss.profile;
    transparent_security_domain(ch, p);
    ch.set_max_update_block(p.max_update_binary);
    let io = Io::new(ch.facts());
    let stage = std::cell::Cell::new(Stage::CheckBlank);
    let mut staged = |s: Stage| {
        stage.set(s);
        on_stage(s)
    };
    let conversation =
        async { Ok::<_, ExchangeError>(personalization(&io, iss, input, &mut staged).await) };
    ch.drive(&io, conversation, &mut run_scripts)
        .unwrap_or_else(|e| Err(PersoError::at(stage.get())(e)))
}

/// Personalization of a blank card as one conversation ([`sansio`]): the
/// commands it asks, in transactions, and the profile's scripts handed to
/// its driver ([`ScriptsWork`]). Whatever happens, the channel goes back
/// to plain commands and the card's session ends.
pub async fn personalization(
    io: &Io,
    iss: &Issuer<'_>,
    input: &CardInput,
    on_stage: &mut dyn FnMut(Stage),
) -> Result<PersoResult, PersoError> {
    let mut r = personalize_inner(io, iss, input, on_stage).await;
    if let Some(sd) = &iss.profile.security_domain {
        let _ = link::close_in(io, &sd.options()).await;
    }
    if let Ok(done) = &mut r {
        done.apdus = io.apdus();
    }
    r
}

async fn personalize_inner(
    io: &Io,
    iss: &Issuer<'_>,
    input: &CardInput,
    on_stage: &mut dyn FnMut(Stage),
) -> Result<PersoResult, PersoError> {
    let p = iss.profile;
    on_stage(Stage::CheckBlank);
    // Before the card is touched: the CA issues certificates that end with
    // this card (profile [certificates]), or the card would be spoilt.
    let terms = p
        .certificates
        .issue_terms(&input.expiry_date)
        .and_then(|t| iss.ca.accepts(&t).map(|()| t).map_err(|e| e.to_string()))
        .map_err(|e| {
            PersoError::msg(
                Stage::CheckBlank,
                format!("the CA cannot issue this card's certificates: {e}"),
            )
        })?;

    // Stage: the card must be blank; learn its serial; authenticate.
    let serial = io
        .transaction(async |io| {
            card::select_mf(io, p).await?;
            let lc = card::life_cycle(io, p).await?;
            let s = card::serial(io, p).await?;
            Ok::<_, ExchangeError>((lc, s))
        })
        .await
        .map_err(PersoError::at(Stage::CheckBlank))
        .and_then(|(lc, s)| {
            if lc == LifeCycle::Blank {
                Ok(s)
            } else {
                Err(PersoError::msg(
                    Stage::CheckBlank,
                    format!("the card is {lc}, not blank"),
                ))
            }
        })?;
    let serial_hex = hex::compact(&serial);
    let secure_channel = stage_issuer(io, iss, &serial, on_stage).await?;
    on_stage(Stage::Scripts);
    let dgs = build_data_groups(p, input, &serial_hex);
    stage_files(io, p, &dgs).await?;
    if !p.scripts.is_empty() {
        stage_scripts(io, iss, input, &dgs).await?;
    }
    on_stage(Stage::Enrol);
    stage_enrol(io, p, input).await?;
    on_stage(Stage::DataGroups);
    let mut bytes_written = stage_data_groups(io, p, &dgs).await?;
    // The security object covers the data groups only, so it is written
    // while the identity application is still selected, before the keys
    // move to the PKI application: one SELECT less.
    on_stage(Stage::SecurityObject);
    bytes_written += stage_security_object(io, iss, &dgs).await?;
    on_stage(Stage::Keys);
    let (certificates, cert_bytes) = stage_keys(io, iss, input, &terms).await?;
    bytes_written += cert_bytes;
    on_stage(Stage::Close);
    stage_close(io, p).await?;
    Ok(PersoResult {
        serial: serial_hex,
        certificates,
        apdus: 0,
        bytes_written,
        secure_channel,
    })
}

/// Tell the channel when the profile says selecting the card's security
/// domain leaves its current DF alone, so the DF is not selected again
/// around the secure channel.
fn transparent_security_domain(ch: &mut Channel, p: &Profile) {
    if let Some(sd) = p
        .security_domain
        .as_ref()
        .filter(|sd| sd.select_keeps_files)
    {
        ch.set_selection_transparent(&sd.aid);
    }
}

/// The issuer proves itself: with the security domain's secure channel
/// when the card has one (its label), else with EXTERNAL AUTHENTICATE.
async fn stage_issuer(
    io: &Io,
    iss: &Issuer<'_>,
    serial: &[u8; 8],
    on_stage: &mut dyn FnMut(Stage),
) -> Result<Option<String>, PersoError> {
    let p = iss.profile;
    let mut secure_channel = None;
    // The issuer proves itself with the security domain's secure channel
    // when the card has one, else with EXTERNAL AUTHENTICATE.
    if let Some(sd) = &p.security_domain {
        on_stage(Stage::SecureChannel);
        let keys = iss.scp03.ok_or_else(|| {
            PersoError::msg(
                Stage::SecureChannel,
                format!(
                    "the profile names a security domain ({}) but no SCP03 keys were given",
                    hex::compact(&sd.aid)
                ),
            )
        })?;
        let before = io.resets_recovered();
        match link::open_in(io, keys, &sd.options()).await {
            Ok(o) => {
                secure_channel = io.secure_label().map(|l| format!("{l}, KVN {:02X}", o.kvn));
            }
            Err(e) => {
                return Err(PersoError {
                    stage: Stage::SecureChannel,
                    transport: e.transport() || io.resets_recovered() != before,
                    detail: e.to_string(),
                })
            }
        }
    }
    // A card with neither (a profile's security domain left out for a card
    // made without one, `--no-secure-channel`) takes the issuer's commands
    // in clear until personalization closes: nothing to prove.
    if p.security_domain.is_none() && p.issuer_auth {
        on_stage(Stage::IssuerAuth);
        io.transaction(async |io| card::issuer_authenticate(io, p, iss.key, serial).await)
            .await
        .map_err(|e| match e {
            ExchangeError::Status { sw, .. } => PersoError::msg(
                Stage::IssuerAuth,
                format!(
                    "the card refused the issuer key from {} ({sw}); is it the transport key of this batch of cards?",
                    iss.key.source
                ),
            ),
            e => PersoError::at(Stage::IssuerAuth)(e),
        })?;
    }

    Ok(secure_channel)
}

/// The profile's scripts: file system, PINs in transport state.
async fn stage_scripts(
    io: &Io,
    iss: &Issuer<'_>,
    input: &CardInput,
    dgs: &BTreeMap<u8, Vec<u8>>,
) -> Result<(), PersoError> {
    let p = iss.profile;
    let photo_size = p
        .data_group(2)
        .and_then(|_| dgs.get(&2))
        .map(|b| datagroups::rounded_size(b.len(), p.photo_size_step))
        .unwrap_or(usize::from(p.photo_size_step));
    if photo_size > 0xFFFF {
        return Err(PersoError::msg(
            Stage::Scripts,
            format!(
                "the photo data group needs {photo_size} bytes; the profile allows at most 65535"
            ),
        ));
    }
    let mut env = Env::new();
    for (name, pin) in [
        ("id_pin", Some(p.id_pin)),
        ("sig_pin", Some(p.signature_pin)),
        ("puk", p.puk),
    ]
    .into_iter()
    .filter_map(|(n, s)| s.map(|s| (n, s)))
    {
        let v = iss
            .key
            .transport_pin(pin.reference, &input.national_id, pin.transport_digits);
        env.set(name, Value::secret(v.expose().to_vec()));
    }
    env.set(
        "photo_size",
        Value::plain((photo_size as u16).to_be_bytes().to_vec()),
    );
    let texts = p
        .script_texts()
        .map_err(|e| PersoError::msg(Stage::Scripts, e.to_string()))?;
    let mut scripts = Vec::new();
    for (name, text) in &texts {
        let s = script::parse_str(text, name)
            .map_err(|e| PersoError::msg(Stage::Scripts, e.to_string()))?;
        scripts.push((name.clone(), s));
    }
    let answer = io
        .extension(Box::new(ScriptsWork { scripts, env }))
        .await
        .map_err(PersoError::at(Stage::Scripts))?;
    match answer.downcast::<ScriptsOutcome>().map(|o| *o) {
        Ok(ScriptsOutcome::Passed) => Ok(()),
        Ok(ScriptsOutcome::Stopped(detail)) => Err(PersoError {
            stage: Stage::Scripts,
            detail,
            transport: true,
        }),
        Ok(ScriptsOutcome::Failed(first)) => Err(PersoError::msg(
            Stage::Scripts,
            format!("{first} (was the card partly personalized before?)"),
        )),
        Err(_) => Err(PersoError::msg(
            Stage::Scripts,
            "the driver did not run the profile's scripts",
        )),
    }
}

/// The profile's scripts with their variables, for the driver to run on
/// the script interpreter ([`run_scripts`]).
pub struct ScriptsWork {
    pub scripts: Vec<(String, script::Script)>,
    pub env: Env,
}

/// How the profile's scripts went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptsOutcome {
    Passed,
    /// The run stopped (the card or reader failed): why.
    Stopped(String),
    /// An expectation failed: the first failure's headline.
    Failed(String),
}

/// Personalization's driver work ([`sansio::ChannelNeed::Extension`]): run
/// the profile's scripts ([`ScriptsWork`]) on the channel with the script
/// interpreter; a [`ScriptsOutcome`] and the APDUs they took.
pub fn run_scripts(
    ch: &mut Channel,
    work: Box<dyn std::any::Any>,
) -> (Box<dyn std::any::Any>, usize) {
    let Ok(work) = work.downcast::<ScriptsWork>() else {
        return (Box::new(()), 0);
    };
    let ScriptsWork { scripts, env } = *work;
    let mut sink = std::io::sink();
    let (report, err) = runner::execute(
        &scripts,
        env,
        runner::Target::Card(ch),
        runner::RunConfig::default(),
        &mut sink,
    );
    let apdus = report
        .suites
        .iter()
        .flat_map(|s| &s.cases)
        .flat_map(|c| &c.steps)
        .map(|s| s.wire.len().max(usize::from(s.command.is_some())))
        .sum::<usize>();
    let outcome = if let Some(e) = err {
        ScriptsOutcome::Stopped(crate::errors::error_text(&e))
    } else if !report.summary.passed {
        ScriptsOutcome::Failed(
            report
                .suites
                .iter()
                .flat_map(|s| &s.cases)
                .flat_map(|c| &c.failures)
                .next()
                .map(|f| f.headline())
                .unwrap_or_else(|| "a script expectation failed".into()),
        )
    } else {
        ScriptsOutcome::Passed
    };
    (Box::new(outcome), apdus)
}

/// A card whose files come from the factory (`[[files]]`): each data
/// group and the security object must fit the EF made for it (from the
/// profile, before anything is sent); the EFs perso writes are checked at
/// the SELECT that precedes their write (its FCP gives the size) and the
/// applications when they are selected, so only the listed files perso
/// does not touch cost a SELECT of their own here. Nothing is written
/// before these checks.
async fn stage_files(io: &Io, p: &Profile, dgs: &BTreeMap<u8, Vec<u8>>) -> Result<(), PersoError> {
    if p.files.is_empty() {
        return Ok(());
    }
    for dg in &p.data_groups {
        if let (Some(size), Some(b)) = (dg.size, dgs.get(&dg.number)) {
            if b.len() > size {
                return Err(PersoError::msg(
                    Stage::Scripts,
                    format!(
                        "data group {} ({}) needs {} bytes but its EF {:04X} holds {size}",
                        dg.number,
                        dg.name,
                        b.len(),
                        dg.fid
                    ),
                ));
            }
        }
    }
    let written: Vec<u16> = p
        .data_groups
        .iter()
        .map(|d| d.fid)
        .chain([p.sod_fid])
        .chain(p.keys.iter().map(|k| k.certificate_fid))
        .collect();
    let apps = [p.identity_aid.as_slice(), p.pki_aid.as_slice()];
    let untouched: Vec<&super::profile::FactoryFile> = p
        .files
        .iter()
        .filter(|f| match (&f.aid, f.path.last()) {
            (Some(aid), _) => !apps.contains(&aid.as_slice()),
            (None, Some(fid)) => !written.contains(fid),
            (None, None) => true,
        })
        .collect();
    if untouched.is_empty() {
        return Ok(());
    }
    let r = io
        .transaction(async |io| {
            let mut problems = Vec::new();
            for f in &untouched {
                if let Err(why) = card::check_factory_file(io, p, f).await? {
                    problems.push(why);
                }
            }
            Ok::<_, ExchangeError>(problems)
        })
        .await;
    match r.map_err(PersoError::at(Stage::Scripts))? {
        problems if problems.is_empty() => Ok(()),
        problems => Err(PersoError::msg(
            Stage::Scripts,
            format!(
                "the card lacks files its profile says the factory made: {}",
                problems.join("; ")
            ),
        )),
    }
}

/// The record's fingerprints enrolled on the card.
async fn stage_enrol(io: &Io, p: &Profile, input: &CardInput) -> Result<(), PersoError> {
    if input.fingers.len() > p.bio_references.len() {
        return Err(PersoError::msg(
            Stage::Enrol,
            format!(
                "{} fingerprints but the profile has {} biometric references",
                input.fingers.len(),
                p.bio_references.len()
            ),
        ));
    }
    io.transaction(async |io| {
        card::select_aid(io, p, &p.identity_aid).await?;
        for (f, r) in input.fingers.iter().zip(&p.bio_references) {
            card::enrol_finger(io, p, *r, f.position_code, &f.minutiae).await?;
        }
        Ok::<_, ExchangeError>(())
    })
    .await
    .map_err(PersoError::at(Stage::Enrol))?;

    Ok(())
}

/// The data groups written (STORE DATA through the security domain, or
/// UPDATE BINARY); the bytes written.
async fn stage_data_groups(
    io: &Io,
    p: &Profile,
    dgs: &BTreeMap<u8, Vec<u8>>,
) -> Result<usize, PersoError> {
    let store_data = p.security_domain.as_ref().is_some_and(|sd| sd.store_data);
    io.transaction(async |io| {
        card::select_aid(io, p, &p.identity_aid).await?;
        if store_data {
            let dgis: Vec<(u16, Vec<u8>)> = p
                .data_groups
                .iter()
                .filter_map(|dg| dgs.get(&dg.number).map(|b| (dg.fid, b.clone())))
                .collect();
            card::store_data(io, &dgis).await?;
        } else {
            for dg in &p.data_groups {
                if let Some(b) = dgs.get(&dg.number) {
                    card::write_personal_ef(io, p, dg.fid, b).await?;
                }
            }
        }
        Ok::<_, ExchangeError>(())
    })
    .await
    .map_err(PersoError::at(Stage::DataGroups))?;

    Ok(dgs.values().map(Vec::len).sum::<usize>())
}

/// The certificates written to a card, by key name.
type Certificates = Vec<(String, Vec<u8>)>;

/// Each key generated on the card, its request signed by the card, its
/// certificate issued, checked and written; the certificates and their bytes.
async fn stage_keys(
    io: &Io,
    iss: &Issuer<'_>,
    input: &CardInput,
    terms: &pki::IssueTerms,
) -> Result<(Certificates, usize), PersoError> {
    let p = iss.profile;
    let mut bytes_written = 0;
    let mut certificates = Vec::new();
    // The certificates' end follows from the card's expiry (profile
    // [certificates]); the CA's answer is checked against the same rule.
    let expiry =
        certs::card_expiry(&input.expiry_date).map_err(|e| PersoError::msg(Stage::Keys, e))?;
    for k in &p.keys {
        let point = io
            .transaction(async |io| {
                card::select_aid(io, p, &p.pki_aid).await?;
                let r = card::generate_key(io, k).await;
                r
            })
            .await
            .map_err(PersoError::at(Stage::Keys))?;
        let info = pki::request_info_der(&input.subject, &point)
            .map_err(|e| PersoError::msg(Stage::Keys, format!("key {}: {e}", k.name)))?;
        let signature = io
            .transaction(async |io| {
                card::select_aid(io, p, &p.pki_aid).await?;
                card::factory_pin_for_key(io, p, k).await?;
                let r = card::sign_digest(io, k, &sha256(&info)).await;
                r.map_err(StepErr)
            })
            .await
            .map_err(|e| PersoError {
                stage: Stage::Keys,
                transport: matches!(&e.0, StepError::Exchange(ExchangeError::Transport(_))),
                detail: format!("key {}: signing the request: {}", k.name, e.0),
            })?;
        let csr = pki::assemble_csr(&info, &signature)
            .map_err(|e| PersoError::msg(Stage::Keys, format!("key {}: {e}", k.name)))?;
        let cert = iss.ca.issue(&csr, cert_profile(k), terms).map_err(|e| {
            PersoError::msg(Stage::Keys, format!("key {}: the CA refused: {e}", k.name))
        })?;
        pki::check_certificate(
            &cert,
            &point,
            cert_profile(k),
            &iss.ca.chain(),
            SystemTime::now(),
        )
        .map_err(|e| {
            PersoError::msg(
                Stage::Keys,
                format!("key {}: the CA's certificate is not right: {e}", k.name),
            )
        })?;
        certs::check(p, &cert, &expiry).map_err(|e| {
            PersoError::msg(
                Stage::Keys,
                format!(
                    "key {}: the CA's certificate does not follow the profile: {e}",
                    k.name
                ),
            )
        })?;
        io.transaction(async |io| {
            card::select_aid(io, p, &p.pki_aid).await?;
            let r = card::write_personal_ef(io, p, k.certificate_fid, &cert).await;
            r
        })
        .await
        .map_err(PersoError::at(Stage::Keys))?;
        bytes_written += cert.len();
        certificates.push((k.name.clone(), cert));
    }

    Ok((certificates, bytes_written))
}

/// The security object over the data groups, signed by the document
/// signer and written; its bytes.
async fn stage_security_object(
    io: &Io,
    iss: &Issuer<'_>,
    dgs: &BTreeMap<u8, Vec<u8>>,
) -> Result<usize, PersoError> {
    let p = iss.profile;
    let covered: Vec<(u8, &[u8])> = p
        .sod_data_groups
        .iter()
        .filter_map(|n| dgs.get(n).map(|b| (*n, b.as_slice())))
        .collect();
    let sod = pki::build_sod(&covered, iss.signer)
        .map_err(|e| PersoError::msg(Stage::SecurityObject, e.to_string()))?;
    io.transaction(async |io| {
        card::select_aid(io, p, &p.identity_aid).await?;
        let r = card::write_ef(io, p, p.sod_fid, &sod).await;
        r
    })
    .await
    .map_err(PersoError::at(Stage::SecurityObject))?;

    Ok(sod.len())
}

/// Personalization closed: ACTIVATE on the MF, the card personalized.
async fn stage_close(io: &Io, p: &Profile) -> Result<(), PersoError> {
    // The card's 9000 is its word; verification reads the life cycle
    // back (an extra GET DATA here would cost every card a round trip).
    let sw = io
        .transaction(async |io| {
            let sw = card::life_cycle_step(io, p, Step::ClosePersonalization).await?;
            Ok::<_, ExchangeError>(sw)
        })
        .await
        .map_err(PersoError::at(Stage::Close))?;
    if sw != StatusWord::Ok {
        return Err(PersoError::msg(
            Stage::Close,
            format!("closing personalization: the card answered {sw}"),
        ));
    }
    Ok(())
}

/// Wrapper so a card refusal can travel through [`Channel::run`].
struct StepErr(StepError);

impl From<ExchangeError> for StepErr {
    fn from(e: ExchangeError) -> Self {
        StepErr(StepError::Exchange(e))
    }
}

impl crate::transport::FromExchange for StepErr {
    fn card_reset(&self) -> bool {
        matches!(&self.0, StepError::Exchange(e) if e.card_reset())
    }
}

fn cert_profile(k: &KeySpec) -> pki::CertProfile {
    match k.certificate {
        CertKind::Authentication => pki::CertProfile::Authentication,
        CertKind::Signature => pki::CertProfile::Signature,
    }
}

/// The fields personalization adds to the record's own.
fn card_fields(input: &CardInput, serial_hex: &str) -> Fields {
    let mut f = input.fields.clone();
    f.insert(
        "card.serial".into(),
        datagroups::FieldValue::Text(serial_hex.to_string()),
    );
    f.insert(
        "card.issue_date".into(),
        datagroups::FieldValue::Date(input.issue_date.clone()),
    );
    f.insert(
        "card.expiry_date".into(),
        datagroups::FieldValue::Date(input.expiry_date.clone()),
    );
    f
}

/// The BITs of DG4: one per enrolled finger.
fn bits(p: &Profile, input: &CardInput) -> Vec<u8> {
    input
        .fingers
        .iter()
        .zip(&p.bio_references)
        .flat_map(|(f, r)| card::bit(p, *r, f.position_code))
        .collect()
}

fn build_data_groups(p: &Profile, input: &CardInput, serial_hex: &str) -> BTreeMap<u8, Vec<u8>> {
    let fields = card_fields(input, serial_hex);
    let mut extras = BTreeMap::new();
    extras.insert(4u8, bits(p, input));
    datagroups::build_all(p, &fields, &extras)
}

// ---------------------------------------------------------------------------
// Verification

/// One check and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// The card's verdict on one finger.
#[derive(Debug, Clone, Serialize)]
pub struct FingerVerdict {
    /// Finger position name, e.g. `right_index`.
    pub finger: String,
    /// Biometric reference, two hex digits (VERIFY P2).
    pub reference: String,
    /// `match`, `no_match`, `blocked` or `refused` (another status word).
    pub verdict: &'static str,
    /// Tries left after a `no_match`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tries_left: Option<u8>,
    /// The card's status word, 4 hex digits.
    pub status: String,
    /// Diagnostics from a card that gives its comparison score (the
    /// simulated card with `match_score_diagnostics`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug: Option<card::MatchDiagnostics>,
}

impl FingerVerdict {
    pub fn new(
        finger: &str,
        reference: u8,
        sw: StatusWord,
        debug: Option<card::MatchDiagnostics>,
    ) -> FingerVerdict {
        let (verdict, tries_left) = match sw {
            StatusWord::Ok => ("match", None),
            StatusWord::WrongPin { retries: 0 } | StatusWord::AuthenticationBlocked => {
                ("blocked", None)
            }
            StatusWord::WrongPin { retries } => ("no_match", Some(retries)),
            _ => ("refused", None),
        };
        FingerVerdict {
            finger: finger.to_string(),
            reference: format!("{reference:02X}"),
            verdict,
            tries_left,
            status: format!("{:04X}", sw.to_u16()),
            debug,
        }
    }
}

/// The verdict of `cardsmith verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub serial: Option<String>,
    pub record_id: String,
    pub life_cycle: Option<LifeCycle>,
    pub checks: Vec<Check>,
    /// The card's match verdict for each of the record's fingers (empty
    /// when no template could be sent).
    pub fingers: Vec<FingerVerdict>,
    pub passed: bool,
}

impl VerifyReport {
    fn push(&mut self, name: impl Into<String>, result: Result<String, String>) {
        let (passed, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.checks.push(Check {
            name: name.into(),
            passed,
            detail,
        });
    }

    /// Names of the failed checks.
    pub fn failures(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect()
    }
}

/// Strip trailing zero padding from an EF that is larger than its content:
/// the content is one TLV, so its own length says where it ends.
fn trim_to_tlv(b: &[u8]) -> &[u8] {
    match tlv::extent(b) {
        Some(n) if n <= b.len() => b.get(..n).unwrap_or(b),
        _ => b,
    }
}

/// Verify a personalized card against its record.
/// Whether the CA revoked `cert`: Err names the serial, the reason and
/// the date; Ok says what was checked.
pub fn not_revoked(ca: &dyn pki::CertificateAuthority, cert: &[u8]) -> Result<String, String> {
    let serial = pki::describe_certificate(cert)
        .map_err(|e| e.to_string())?
        .serial_hex;
    match ca.revocation(&serial) {
        Ok(None) => Ok("not revoked".into()),
        Ok(Some(r)) => Err(revoked_message(&r)),
        Err(pki::PkiError::NoRegister(_)) => {
            Ok("revocation not checked (no register of the CA's revocations)".into())
        }
        Err(e) => Err(format!(
            "certificate {serial}: its revocation status is unknown: {e}"
        )),
    }
}

/// "certificate … was revoked on … (reason)".
pub fn revoked_message(r: &crate::register::journal::Revocation) -> String {
    format!(
        "certificate {} was revoked on {} ({}, by {} at {})",
        r.serial,
        crate::register::journal::iso_time(r.revoked_at),
        r.reason.as_str(),
        r.operator,
        r.station
    )
}

/// Verify a personalized card against its record: the channel drives
/// [`verification`].
pub fn verify(
    ch: &mut Channel,
    iss: &Issuer<'_>,
    input: &CardInput,
) -> Result<VerifyReport, ExchangeError> {
    transparent_security_domain(ch, iss.profile);
    let io = Io::new(ch.facts());
    ch.drive(
        &io,
        verification(&io, iss, input),
        &mut sansio::no_extension,
    )
}

/// Verification as one conversation ([`sansio`]).
pub async fn verification(
    io: &Io,
    iss: &Issuer<'_>,
    input: &CardInput,
) -> Result<VerifyReport, ExchangeError> {
    let p = iss.profile;
    let mut rep = VerifyReport {
        serial: None,
        record_id: input.record_id.clone(),
        life_cycle: None,
        checks: vec![],
        fingers: vec![],
        passed: false,
    };
    let (lc, serial) = io
        .transaction(async |io| {
            card::select_mf(io, p).await?;
            Ok::<_, ExchangeError>((card::life_cycle(io, p).await?, card::serial(io, p).await?))
        })
        .await?;
    let serial_hex = hex::compact(&serial);
    rep.serial = Some(serial_hex.clone());
    rep.life_cycle = Some(lc);
    // The card is asked in the order of its applications, so that each is
    // selected once: the identity application (fingers, BITs, data groups,
    // security object), then the PKI application (certificates, public keys,
    // the keys' proofs), then the MF (closed for personalization). The
    // report keeps its own order: data groups, security object, keys,
    // fingers, BITs, PIN states, closed.
    let mut identity = VerifyReport {
        checks: vec![],
        fingers: vec![],
        ..rep.clone()
    };
    check_fingers(io, &mut identity, iss, input).await?;
    check_bits_on_card(io, &mut identity, p, input).await?;
    let rb = card::read_back_in(io, p, &expected_lengths(iss, input, &serial_hex)).await?;
    let chain = iss.ca.chain();
    check_data_groups(&mut rep, p, input, &rb, &serial_hex);
    check_security_object(&mut rep, p, &rb, &chain);
    // Issuer authentication, tried at most once per verification so that a
    // wrong key costs the card at most one of its tries.
    let mut auth = IssuerAuth {
        iss,
        serial,
        result: None,
    };
    check_keys(io, &mut rep, iss, input, &rb, &chain, lc, &mut auth).await?;
    rep.checks.append(&mut identity.checks);
    rep.fingers = identity.fingers;
    // PIN and biometric states.
    if p.status_tag.is_some() {
        let states = io
            .transaction(async |io| card::status_list(io, p).await)
            .await?;
        rep.push("PIN states", check_pin_states(p, lc, &states));
    }
    check_closed(io, p, &mut rep, lc, &mut auth).await?;
    rep.passed = rep.checks.iter().all(|c| c.passed);
    Ok(rep)
}

/// What the card should hold, by EF: the data groups the record makes,
/// exactly, and the longest security object the document signer makes
/// over them. Only the reads are sized with it (one READ BINARY each when
/// the card takes the length), never the verdicts.
fn expected_lengths(iss: &Issuer<'_>, input: &CardInput, serial_hex: &str) -> BTreeMap<u16, usize> {
    let p = iss.profile;
    let dgs = build_data_groups(p, input, serial_hex);
    let mut out: BTreeMap<u16, usize> = p
        .data_groups
        .iter()
        .filter_map(|dg| dgs.get(&dg.number).map(|b| (dg.fid, b.len())))
        .collect();
    let covered: Vec<(u8, &[u8])> = p
        .sod_data_groups
        .iter()
        .filter_map(|n| dgs.get(n).map(|b| (*n, b.as_slice())))
        .collect();
    if let Ok(n) = pki::sod_length_at_most(&covered, iss.signer.certificate(), SystemTime::now()) {
        out.insert(p.sod_fid, n);
    }
    out
}

/// Issuer authentication (GET CHALLENGE, EXTERNAL AUTHENTICATE), done at
/// most once per verification: a refusal is remembered, not retried.
struct IssuerAuth<'a> {
    iss: &'a Issuer<'a>,
    serial: [u8; 8],
    result: Option<Result<(), String>>,
}

impl IssuerAuth<'_> {
    /// `Ok(Err(why))` when the card refused; `Err` only for the transport.
    async fn get(&mut self, io: &Io) -> Result<Result<(), String>, ExchangeError> {
        if !self.iss.profile.issuer_auth {
            return Ok(Err(
                "the profile names no issuer authentication (the card's security domain guards it)"
                    .into(),
            ));
        }
        if self.result.is_none() {
            let (p, key, serial) = (self.iss.profile, self.iss.key, &self.serial);
            self.result = Some(
                match io
                    .transaction(async |io| card::issuer_authenticate(io, p, key, serial).await)
                    .await
                {
                    Ok(()) => Ok(()),
                    Err(e @ ExchangeError::Transport(_)) => return Err(e),
                    Err(e) => Err(format!(
                        "issuer authentication with the key from {} was refused: {e}",
                        key.source
                    )),
                },
            );
        }
        Ok(self.result.clone().unwrap_or(Ok(())))
    }
}

/// The data groups read back, field by field against the record (DG4: the
/// biometric information templates the record's fingers make).
fn check_data_groups(
    rep: &mut VerifyReport,
    p: &Profile,
    input: &CardInput,
    rb: &card::ReadBack,
    serial_hex: &str,
) {
    // Data groups, field by field.
    let fields = card_fields(input, serial_hex);
    for dg in &p.data_groups {
        let name = format!("DG{} {}", dg.number, dg.name);
        let result = match rb.dgs.get(&dg.number) {
            Some(Ok(bytes)) => {
                let bytes = trim_to_tlv(bytes);
                if dg.number == 4 {
                    let want = tlv::build(&dg.tag, &bits(p, input));
                    if bytes == want.as_slice() {
                        Ok(format!(
                            "{} biometric information template(s): {}",
                            input.fingers.len(),
                            input
                                .fingers
                                .iter()
                                .map(|f| f.position.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    } else {
                        Err(describe_bits(dg, bytes, &bits(p, input)))
                    }
                } else {
                    match datagroups::compare(dg, bytes, &fields, &[]) {
                        Ok(m) if m.is_empty() => {
                            Ok(format!("{} fields match the record", dg.fields.len()))
                        }
                        Ok(m) => Err(m
                            .iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")),
                        Err(e) => Err(format!("DG{}: {e}", dg.number)),
                    }
                }
            }
            Some(Err(e)) => Err(e.clone()),
            None => Err("not read".into()),
        };
        rep.push(name, result);
    }
}

/// The security object: its signature chain to the CA, then the hash of
/// each data group it lists.
fn check_security_object(
    rep: &mut VerifyReport,
    p: &Profile,
    rb: &card::ReadBack,
    chain: &[Vec<u8>],
) {
    // The security object: signature chain, then each hash.
    let sod = match &rb.sod {
        Some(Ok(b)) => {
            let b = trim_to_tlv(b);
            match pki::verify_sod(b, chain, SystemTime::now()) {
                Ok(s) => {
                    rep.push(
                        "security object signature",
                        Ok("signed by the document signer; chain to the CA verified".into()),
                    );
                    Some(s)
                }
                Err(e) => {
                    rep.push("security object signature", Err(e.to_string()));
                    None
                }
            }
        }
        Some(Err(e)) => {
            rep.push("security object signature", Err(e.clone()));
            None
        }
        None => None,
    };
    if let Some(sod) = &sod {
        for n in &p.sod_data_groups {
            let dg_name = p
                .data_group(*n)
                .map(|d| format!("DG{} {}", d.number, d.name))
                .unwrap_or_else(|| format!("DG{n}"));
            let result = match (sod.hashes.get(n), rb.dgs.get(n)) {
                (Some(h), Some(Ok(b))) => {
                    let actual = sha256(trim_to_tlv(b));
                    if h.as_slice() == actual {
                        Ok(format!("SHA-256 {}… matches", hex::compact(&actual[..8])))
                    } else {
                        Err(format!(
                            "{dg_name} was changed: the security object has SHA-256 {}…, the card's data hashes to {}…",
                            hex::compact(h.get(..8).unwrap_or_default()),
                            hex::compact(&actual[..8])
                        ))
                    }
                }
                (None, _) => Err(format!("the security object has no hash for {dg_name}")),
                (_, _) => Err(format!("{dg_name} could not be read")),
            };
            rep.push(format!("hash of {dg_name}"), result);
        }
    }
}

/// Each key: its certificate (issued by the CA for this card's key, not
/// revoked, the profile's terms), then a fresh challenge signed by the card.
#[allow(clippy::too_many_arguments)]
async fn check_keys(
    io: &Io,
    rep: &mut VerifyReport,
    iss: &Issuer<'_>,
    input: &CardInput,
    rb: &card::ReadBack,
    chain: &[Vec<u8>],
    lc: LifeCycle,
    auth: &mut IssuerAuth<'_>,
) -> Result<(), ExchangeError> {
    let p = iss.profile;
    // Keys: certificate, then a fresh challenge signed by the card.
    let rng = SystemRandom::new();
    let card_expiry = certs::card_expiry_on_card(p, &rb.dgs, &input.expiry_date);
    for k in &p.keys {
        let name = format!("{} key", k.name);
        let cert = match rb.certs.get(&k.reference) {
            Some(Ok(c)) => trim_to_tlv(c).to_vec(),
            Some(Err(e)) => {
                rep.push(format!("{name} certificate"), Err(e.clone()));
                continue;
            }
            None => continue,
        };
        let point = match rb.points.get(&k.reference) {
            Some(Ok(pt)) => pt.clone(),
            Some(Err(e)) => {
                rep.push(
                    format!("{name} certificate"),
                    Err(format!("reading the card's public key: {e}")),
                );
                continue;
            }
            None => continue,
        };
        let basic =
            pki::check_certificate(&cert, &point, cert_profile(k), chain, SystemTime::now())
                .map_err(|e| e.to_string())
                .and_then(|()| not_revoked(iss.ca, &cert));
        let terms = match &card_expiry {
            Ok(expiry) => certs::check(p, &cert, expiry),
            Err(e) => Err(e.clone()),
        };
        rep.push(
            format!("{name} certificate"),
            match (basic, terms) {
                (Ok(revocation), Ok(t)) => Ok(format!(
                    "issued by the CA for this card's key; key usage and validity right; {revocation}; {t}"
                )),
                (b, t) => Err([b.err(), t.err()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ")),
            },
        );
        let mut challenge = [0u8; 32];
        if rng.fill(&mut challenge).is_err() {
            rep.push(
                format!("{name} proof"),
                Err("the random generator failed".into()),
            );
            continue;
        }
        // A key whose PIN still has its factory value answers whoever gives
        // that value (the issuer knows it); on a card without factory PINs
        // the signature key answers only after issuer authentication while
        // the card is not yet activated.
        let factory_pin = lc != LifeCycle::Activated && p.key_factory_pin(k).is_some();
        if k.usage == KeyUsage::Sign && lc != LifeCycle::Activated && !factory_pin {
            if let Err(why) = auth.get(io).await? {
                rep.push(
                    format!("{name} proof"),
                    Err(format!(
                        "the signature key answers only the issuer before activation, and {why}"
                    )),
                );
                continue;
            }
        }
        let sig = io
            .transaction(async |io| {
                card::select_aid(io, p, &p.pki_aid).await?;
                if factory_pin {
                    card::factory_pin_for_key(io, p, k).await?;
                }
                card::sign_digest(io, k, &sha256(&challenge))
                    .await
                    .map_err(StepErr)
            })
            .await;
        let result = match sig {
            Ok(sig) => match pki::certificate_public_key(&cert) {
                Ok(cert_point) => ring::signature::UnparsedPublicKey::new(
                    &ring::signature::ECDSA_P256_SHA256_FIXED,
                    &cert_point,
                )
                .verify(&challenge, &sig)
                .map(|_| "the card signed a fresh 32-byte challenge; the signature verifies with the certificate's key".into())
                .map_err(|_| "the card's signature over a fresh challenge does not verify with the certificate's public key: the certificate does not belong to this card's key".into()),
                Err(e) => Err(format!("cannot take the public key from the certificate: {e}")),
            },
            Err(StepErr(StepError::Refused(sw))) => Err(format!("the card refused to sign: {sw}")),
            Err(StepErr(StepError::Exchange(e @ ExchangeError::Transport(_)))) => return Err(e),
            Err(StepErr(StepError::Exchange(e))) => Err(e.to_string()),
        };
        rep.push(format!("{name} proof"), result);
    }

    Ok(())
}

/// The record's own templates match on the card (over the secure channel
/// when the card has a security domain).
async fn check_fingers(
    io: &Io,
    rep: &mut VerifyReport,
    iss: &Issuer<'_>,
    input: &CardInput,
) -> Result<(), ExchangeError> {
    let p = iss.profile;
    // Fingerprints: the record's own template matches on the card. A
    // template goes to a card with a security domain only over its secure
    // channel.
    let mut verified = Vec::new();
    let secure = match (&p.security_domain, iss.scp03) {
        (None, _) => Ok(None),
        (Some(sd), Some(keys)) => match link::open_in(io, keys, &sd.options()).await {
            Ok(_) => Ok(Some(sd.options())),
            Err(e) if e.transport() => return Err(e.into()),
            Err(e) => Err(format!(
                "the secure channel did not open, so no template was sent: {e}"
            )),
        },
        (Some(_), None) => Err(
            "the card has a security domain but no SCP03 keys were given, so no template was sent"
                .to_string(),
        ),
    };
    if let Ok(opts) = &secure {
        let mut failed = None;
        // A card that gives no score for the first finger gives none for
        // the others: it is not asked again.
        let mut diagnostics = true;
        for (f, r) in input.fingers.iter().zip(&p.bio_references) {
            match io
                .transaction(async |io| {
                    card::select_aid(io, p, &p.identity_aid).await?;
                    if diagnostics {
                        card::verify_finger_diagnosed(io, p, *r, &f.minutiae).await
                    } else {
                        Ok((card::verify_finger(io, p, *r, &f.minutiae).await?, None))
                    }
                })
                .await
            {
                Ok((sw, diag)) => {
                    diagnostics = diag.is_some();
                    rep.fingers
                        .push(FingerVerdict::new(&f.position, *r, sw, diag));
                    verified.push((f.position.clone(), *r, sw));
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(o) = opts {
            let _ = link::close_in(io, o).await;
        }
        if let Some(e) = failed {
            return Err(e);
        }
    }
    rep.push(
        "fingerprint templates",
        if let Err(why) = secure {
            Err(why)
        } else if verified.iter().all(|(_, _, sw)| *sw == StatusWord::Ok) {
            Ok(format!(
                "the record's template matches on the card for {}",
                verified
                    .iter()
                    .map(|(p, r, _)| format!("{p} (reference {r:02X})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        } else {
            Err(verified
                .iter()
                .filter(|(_, _, sw)| *sw != StatusWord::Ok)
                .map(|(p, r, sw)| format!("{p} (reference {r:02X}): the card answered {sw}"))
                .collect::<Vec<_>>()
                .join("; "))
        },
    );

    Ok(())
}

/// The card's own BITs (GET DATA 7F61) are the ones DG4 lists.
async fn check_bits_on_card(
    io: &Io,
    rep: &mut VerifyReport,
    p: &Profile,
    input: &CardInput,
) -> Result<(), ExchangeError> {
    // The card's own BITs (GET DATA 7F61) are the ones DG4 lists, in the
    // layout of ISO/IEC 7816-11 / MINEX II (B1 inside A1).
    let on_card = io
        .transaction(async |io| {
            card::select_aid(io, p, &p.identity_aid).await?;
            card::bit_group(io, p).await
        })
        .await;
    rep.push(
        "biometric information templates on the card",
        match on_card {
            Err(e @ ExchangeError::Transport(_)) => return Err(e),
            Err(e) => Err(e.to_string()),
            Ok(None) => {
                Err("the card has no BIT group template (GET DATA 7F61 answered 6A88)".into())
            }
            Ok(Some(card_bits)) => compare_card_bits(p, input, &card_bits),
        },
    );

    Ok(())
}

/// Closed for personalization: the life cycle, and the profile's
/// `closed_probe` (a CREATE FILE on the reference card) refused.
async fn check_closed(
    io: &Io,
    p: &Profile,
    rep: &mut VerifyReport,
    lc: LifeCycle,
    auth: &mut IssuerAuth<'_>,
) -> Result<(), ExchangeError> {
    let closed = match lc {
        LifeCycle::Personalized | LifeCycle::Activated if !p.commands.has(Step::ClosedProbe) => {
            Ok(format!("the card is {lc}"))
        }
        LifeCycle::Personalized | LifeCycle::Activated => {
            let note = match auth.get(io).await? {
                Ok(()) => String::new(),
                Err(why) => format!(" ({why}; probed without it)"),
            };
            let sw = io
                .transaction(async |io| {
                    card::select_mf(io, p).await?;
                    Ok::<_, ExchangeError>(
                        card::send(
                            io,
                            &p.commands,
                            Step::ClosedProbe,
                            &crate::script::template::Vars::new(),
                        )
                        .await?
                        .sw,
                    )
                })
                .await?;
            if sw == StatusWord::Ok {
                Err(format!("the card is {lc} but accepted CREATE FILE{note}"))
            } else {
                Ok(format!(
                    "the card is {lc}; CREATE FILE was refused with {sw}{note}"
                ))
            }
        }
        other => Err(format!(
            "the card is {other}, not closed for personalization"
        )),
    };
    rep.push("closed for personalization", closed);
    Ok(())
}

fn check_pin_states(
    p: &Profile,
    lc: LifeCycle,
    states: &[card::RefStatus],
) -> Result<String, String> {
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for (name, spec) in [
        ("ID PIN", Some(p.id_pin)),
        ("signature PIN", Some(p.signature_pin)),
        ("PUK", p.puk),
    ]
    .into_iter()
    .filter_map(|(n, s)| s.map(|s| (n, s)))
    {
        match states
            .iter()
            .find(|s| !s.biometric && s.reference & 0x0F == spec.number())
        {
            None => problems.push(format!("{name}: not on the card")),
            Some(s) => {
                if s.blocked || s.tries_left != s.try_limit {
                    problems.push(format!(
                        "{name}: {} of {} tries left{}",
                        s.tries_left,
                        s.try_limit,
                        if s.blocked { ", blocked" } else { "" }
                    ));
                }
                if lc == LifeCycle::Personalized && !s.transport {
                    problems.push(format!("{name}: not in transport state"));
                }
                seen.push(name);
            }
        }
    }
    for r in &p.bio_references {
        if let Some(s) = states.iter().find(|s| s.biometric && s.reference == *r) {
            if s.blocked || s.tries_left != s.try_limit {
                problems.push(format!(
                    "fingerprint {r:02X}: {} of {} tries left",
                    s.tries_left, s.try_limit
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "{} present with all tries left{}",
            seen.join(", "),
            if lc == LifeCycle::Personalized {
                ", in transport state"
            } else {
                ""
            }
        ))
    } else {
        Err(problems.join("; "))
    }
}

/// Describe how DG4's BITs differ from the expected ones: per reference,
/// missing, unexpected, or different (BITs hold no secrets, so both are shown).
fn describe_bits(dg: &super::profile::DataGroup, bytes: &[u8], expected: &[u8]) -> String {
    let nodes = tlv::decode(bytes);
    let Ok(top) = tlv::expect_one(&nodes, &dg.tag) else {
        return format!(
            "DG{} is not a {} template",
            dg.number,
            hex::compact(&dg.tag)
        );
    };
    let exp_nodes = tlv::decode(expected);
    let by_ref = |n: &tlv::Node, all: &[u8]| -> (u8, Vec<u8>) {
        let r = bit_reference(n);
        (
            r,
            all.get(n.offset..n.offset + n.size())
                .unwrap_or_default()
                .to_vec(),
        )
    };
    // Node offsets count from the start of the decoded input.
    let card_bits: Vec<(u8, Vec<u8>)> = tlv::children(top)
        .iter()
        .map(|n| by_ref(n, bytes))
        .collect();
    let want_bits: Vec<(u8, Vec<u8>)> = exp_nodes.iter().map(|n| by_ref(n, expected)).collect();
    let mut out = Vec::new();
    for (r, want) in &want_bits {
        match card_bits.iter().find(|(cr, _)| cr == r) {
            None => out.push(format!("the BIT for reference {r:02X} is missing")),
            Some((_, got)) if got != want => out.push(format!(
                "the BIT for reference {r:02X} differs: expected {}, card has {}",
                hex::spaced(want),
                hex::spaced(got)
            )),
            Some(_) => {}
        }
    }
    for (r, _) in &card_bits {
        if !want_bits.iter().any(|(wr, _)| wr == r) {
            out.push(format!(
                "the card has an unexpected BIT for reference {r:02X}"
            ));
        }
    }
    if out.is_empty() {
        out.push(
            "the biometric information templates differ from the record in their framing".into(),
        );
    }
    format!("DG{}: {}", dg.number, out.join("; "))
}

/// The card's BITs against the expected ones, per reference.
fn compare_card_bits(
    p: &Profile,
    input: &CardInput,
    card_bits: &[Vec<u8>],
) -> Result<String, String> {
    let reference_of = |bit: &[u8]| -> u8 {
        let nodes = tlv::decode(bit);
        nodes.first().map_or(0, bit_reference)
    };
    let mut problems = Vec::new();
    for (f, r) in input.fingers.iter().zip(&p.bio_references) {
        let want = card::bit(p, *r, f.position_code);
        match card_bits.iter().find(|b| reference_of(b) == *r) {
            None => problems.push(format!("no BIT for reference {r:02X}")),
            Some(got) if *got != want => problems.push(format!(
                "the BIT for reference {r:02X} differs: expected {}, card has {}",
                hex::spaced(&want),
                hex::spaced(got)
            )),
            Some(_) => {}
        }
    }
    let mut unused = Vec::new();
    for b in card_bits {
        let r = reference_of(b);
        let enrolled = p
            .bio_references
            .iter()
            .take(input.fingers.len())
            .any(|x| *x == r);
        if enrolled {
            continue;
        }
        // A card whose biometric references come from the factory shows
        // the ones this record does not use, with no finger (its BIT as
        // the profile lays it out for finger position 0).
        if p.bio_references.contains(&r) && *b == card::bit(p, r, 0) {
            unused.push(format!("{r:02X}"));
        } else {
            problems.push(format!("an unexpected BIT for reference {r:02X}"));
        }
    }
    if problems.is_empty() {
        let layout = match p.bit_layout {
            super::profile::BitLayout::B1InsideA1 => {
                "algorithm parameters inside the biometric header template"
            }
            super::profile::BitLayout::B1BesideA1 => {
                "algorithm parameters beside the biometric header template"
            }
        };
        let spare = if unused.is_empty() {
            String::new()
        } else {
            format!(
                "; reference(s) {} made at the factory, no finger enrolled",
                unused.join(", ")
            )
        };
        Ok(format!(
            "{} BIT(s) enrolled, as in DG4 ({layout}){spare}",
            card_bits.len() - unused.len()
        ))
    } else {
        Err(problems.join("; "))
    }
}

/// (reference, finger position code) of each BIT in a DG4 template.
fn read_bits(top: &tlv::Node) -> Vec<(u8, u8)> {
    tlv::children(top)
        .iter()
        .filter(|n| matches!(&n.kind, tlv::NodeKind::Tlv { tag, .. } if tag == &[0x7F, 0x60]))
        .map(|bit| {
            let subtype = tlv::child(bit, &[0xA1])
                .and_then(|bht| tlv::child_value(bht, &[0x82]))
                .and_then(|v| v.first().copied())
                .unwrap_or(0);
            (bit_reference(bit), card::subtype_position(subtype))
        })
        .collect()
}

/// The biometric reference a BIT names (its 83), or 0.
fn bit_reference(bit: &tlv::Node) -> u8 {
    tlv::child_value(bit, &[0x83])
        .and_then(|v| v.first().copied())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Reading

/// One data group as read: its fields by name, shown as text.
#[derive(Debug, Clone, Serialize)]
pub struct DumpGroup {
    pub number: u8,
    pub name: String,
    /// (field, value as shown); dates with both calendars, bytes by size.
    pub fields: Vec<(String, String)>,
    pub problems: Vec<String>,
}

/// A card's certificate, summarized.
#[derive(Debug, Clone, Serialize)]
pub struct DumpCert {
    pub key: String,
    pub summary: Result<pki::CertSummary, String>,
}

/// A fingerprint reference, summarized (never the template).
#[derive(Debug, Clone, Serialize)]
pub struct DumpFinger {
    pub reference: u8,
    pub position: String,
    pub tries_left: Option<u8>,
    pub try_limit: Option<u8>,
}

/// `cardsmith read`.
#[derive(Debug, Clone, Serialize)]
pub struct CardDump {
    pub serial: String,
    pub life_cycle: LifeCycle,
    pub groups: Vec<DumpGroup>,
    pub certificates: Vec<DumpCert>,
    pub fingers: Vec<DumpFinger>,
    pub pins: Vec<card::RefStatus>,
    /// The photo, if DG2 held one (for saving to a file; not serialized).
    #[serde(skip)]
    pub photo: Option<Vec<u8>>,
}

fn date_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if s.len() == 8 && s.bytes().all(|c| c.is_ascii_digit()) => {
            format!("{}/{}/{}", &s[..4], &s[4..6], &s[6..])
        }
        _ => format!("malformed date {}", hex::spaced(b)),
    }
}

/// Read a personalized card's contents.
pub fn read(ch: &mut Channel, p: &Profile) -> Result<CardDump, ExchangeError> {
    let (lc, serial) = ch.converse(async |io| {
        card::select_mf(io, p).await?;
        Ok::<_, ExchangeError>((card::life_cycle(io, p).await?, card::serial(io, p).await?))
    })?;
    let rb = card::read_back(ch, p)?;
    let pins = ch
        .converse(async |io| card::status_list(io, p).await)
        .unwrap_or_default();
    let mut groups = Vec::new();
    let mut photo = None;
    let mut fingers = Vec::new();
    for dg in &p.data_groups {
        let mut g = DumpGroup {
            number: dg.number,
            name: dg.name.clone(),
            fields: vec![],
            problems: vec![],
        };
        match rb.dgs.get(&dg.number) {
            Some(Ok(bytes)) => match datagroups::parse(dg, trim_to_tlv(bytes)) {
                Ok(objects) => {
                    for f in &dg.fields {
                        let Some(v) = datagroups::field_bytes(&objects, dg, &f.field, f.encoding)
                        else {
                            continue;
                        };
                        let shown = match f.encoding {
                            super::profile::Encoding::Utf8 => {
                                String::from_utf8_lossy(v).into_owned()
                            }
                            super::profile::Encoding::Date => {
                                format!("{} (Solar Hijri)", date_text(v))
                            }
                            super::profile::Encoding::Gregorian => {
                                format!("{} (Gregorian)", date_text(v))
                            }
                            super::profile::Encoding::Bytes => {
                                if f.field == "photo" {
                                    photo = Some(v.to_vec());
                                }
                                format!("{} bytes", v.len())
                            }
                        };
                        g.fields.push((f.field.clone(), shown));
                    }
                    if dg.number == 4 {
                        let nodes = tlv::decode(trim_to_tlv(bytes));
                        if let Ok(top) = tlv::expect_one(&nodes, &dg.tag) {
                            for (r, code) in read_bits(top) {
                                let st = pins.iter().find(|s| s.biometric && s.reference == r);
                                fingers.push(DumpFinger {
                                    reference: r,
                                    position: crate::biometric::FingerPosition::from_code(code)
                                        .map(|f| f.as_str().to_string())
                                        .unwrap_or_else(|| format!("finger code {code}")),
                                    tries_left: st.map(|s| s.tries_left),
                                    try_limit: st.map(|s| s.try_limit),
                                });
                            }
                        }
                    }
                }
                Err(e) => g.problems.push(e),
            },
            Some(Err(e)) => g.problems.push(e.clone()),
            None => {}
        }
        groups.push(g);
    }
    let certificates = p
        .keys
        .iter()
        .map(|k| DumpCert {
            key: k.name.clone(),
            summary: match rb.certs.get(&k.reference) {
                Some(Ok(c)) => pki::describe_certificate(trim_to_tlv(c)).map_err(|e| e.to_string()),
                Some(Err(e)) => Err(e.clone()),
                None => Err("not read".into()),
            },
        })
        .collect();
    Ok(CardDump {
        serial: hex::compact(&serial),
        life_cycle: lc,
        groups,
        certificates,
        fingers,
        pins,
        photo,
    })
}
