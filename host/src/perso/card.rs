//! The card operations personalization and verification need, each one a
//! few APDUs asked of an [`Io`] (a conversation without I/O, see
//! [`crate::transport::sansio`]). Every response is checked for shape; a
//! malformed one is an [`ExchangeError::BadResponseData`] that says what was
//! expected (and never quotes secret data). A caller holding a [`Channel`]
//! runs them with [`Channel::converse`].

use crate::apdu::{Response, StatusWord};
use crate::script::template::Vars;
use crate::secret::Secret;
use crate::tlv;
use crate::transport::sansio::Io;
use crate::transport::{Channel, ExchangeError, Selected};
use std::collections::BTreeMap;

use super::commands::{Commands, Step};
use super::keys::IssuerKey;
use super::profile::{BitLayout, KeySpec, LifeCycleValues, MinutiaeOrder, Profile};

/// Send the profile's commands for `step` with `vars`: every command but
/// the last must answer 9000 (an MSE SET before a signature, say); the
/// card's answer to the last. The engines send nothing else, so they know
/// what a command is for and never its bytes.
pub async fn send(
    io: &Io,
    commands: &Commands,
    step: Step,
    vars: &Vars,
) -> Result<Response, ExchangeError> {
    let cmds = commands
        .build(step, vars)
        .map_err(|detail| ExchangeError::Profile {
            command: step.to_string(),
            detail,
        })?;
    let mut last = None;
    let n = cmds.len();
    for (i, c) in cmds.iter().enumerate() {
        if i + 1 < n {
            io.expect_ok(c).await?;
        } else {
            last = Some(io.transmit(c).await?);
        }
    }
    last.ok_or_else(|| ExchangeError::Profile {
        command: step.to_string(),
        detail: "the step has no command".into(),
    })
}

/// [`send`], and the card must answer 9000: its data.
pub async fn send_ok(
    io: &Io,
    commands: &Commands,
    step: Step,
    vars: &Vars,
) -> Result<Vec<u8>, ExchangeError> {
    ok_or_status(send(io, commands, step, vars).await?, step_name(step))
}

/// The data of a 9000 answer; any other status is an error naming `what`.
fn ok_or_status(r: Response, what: impl Into<String>) -> Result<Vec<u8>, ExchangeError> {
    if r.sw.is_ok() {
        Ok(r.data)
    } else {
        Err(ExchangeError::Status {
            command: what.into(),
            sw: r.sw,
        })
    }
}

/// How a step is named in messages: what it is for.
fn step_name(step: Step) -> String {
    match step {
        Step::SelectMf => "SELECT MF",
        Step::SelectApplication => "SELECT application",
        Step::SelectFile | Step::SelectFileBare => "SELECT EF",
        Step::GetData => "GET DATA",
        Step::GetChallenge => "GET CHALLENGE",
        Step::ExternalAuthenticate => "EXTERNAL AUTHENTICATE",
        Step::VerifyPin => "VERIFY",
        Step::PinStatus => "VERIFY (PIN state)",
        Step::PinLogout => "VERIFY (log out)",
        Step::SetPin => "CHANGE REFERENCE DATA",
        Step::ResetRetryCounter => "RESET RETRY COUNTER",
        Step::EnrolFinger => "fingerprint enrolment",
        Step::VerifyFinger => "fingerprint VERIFY",
        Step::ClosePersonalization => "closing personalization",
        Step::Activate => "ACTIVATE",
        Step::Terminate => "TERMINATE",
        Step::ClosedProbe => "the closed-card probe",
        Step::Generate => "GENERATE ASYMMETRIC KEY PAIR",
        Step::ReadPublicKey => "GENERATE ASYMMETRIC KEY PAIR (read public key)",
        Step::Sign => "signature",
    }
    .to_string()
}

/// The card life cycle, as the card reports it (GET DATA, profile tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LifeCycle {
    Blank,
    Personalized,
    Activated,
    Terminated,
}

impl LifeCycle {
    /// A life cycle byte, by what the profile says its values mean.
    pub fn from_byte_in(b: u8, v: &LifeCycleValues) -> Option<LifeCycle> {
        [
            (v.blank, LifeCycle::Blank),
            (v.personalized, LifeCycle::Personalized),
            (v.activated, LifeCycle::Activated),
            (v.terminated, LifeCycle::Terminated),
        ]
        .into_iter()
        .find_map(|(x, lc)| (x == b).then_some(lc))
    }
}

impl std::fmt::Display for LifeCycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LifeCycle::Blank => "blank",
            LifeCycle::Personalized => "personalized",
            LifeCycle::Activated => "activated",
            LifeCycle::Terminated => "terminated",
        })
    }
}

/// One PIN or biometric reference in the card's status list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefStatus {
    pub reference: u8,
    pub biometric: bool,
    pub tries_left: u8,
    pub try_limit: u8,
    pub transport: bool,
    pub blocked: bool,
    pub is_puk: bool,
}

fn bad(command: &str, detail: impl Into<String>) -> ExchangeError {
    ExchangeError::BadResponseData {
        command: command.to_string(),
        detail: detail.into(),
    }
}

/// GET DATA of `tag` (the profile's `get_data`): the card's answer.
async fn get_data(io: &Io, p: &Profile, tag: u16) -> Result<Response, ExchangeError> {
    send(
        io,
        &p.commands,
        Step::GetData,
        &Vars::new().bytes("tag", &tag.to_be_bytes()),
    )
    .await
}

/// The value of primitive data object `tag` in a GET DATA response.
async fn get_data_value(
    io: &Io,
    p: &Profile,
    tag: u16,
    what: &str,
) -> Result<Vec<u8>, ExchangeError> {
    let r = get_data(io, p, tag).await?;
    let data = ok_or_status(r, what)?;
    let nodes = tlv::decode(&data);
    let tag_bytes = tag.to_be_bytes();
    let n = tlv::expect_one(
        &nodes,
        tag_bytes
            .get(usize::from(tag <= 0xFF)..)
            .unwrap_or_default(),
    )
    .map_err(|e| bad(what, e))?;
    match &n.kind {
        tlv::NodeKind::Tlv {
            value, children, ..
        } if children.is_empty() => Ok(value.clone()),
        _ => Err(bad(what, "expected a primitive data object")),
    }
}

/// Make the MF the current DF: a SELECT unless the channel knows the card
/// is there already (see [`crate::transport::Selected`]; after a reset or a
/// failed operation it does not know, and this selects).
pub async fn select_mf(io: &Io, p: &Profile) -> Result<(), ExchangeError> {
    if io.selected() == Some(Selected::Mf) {
        return Ok(());
    }
    send_ok(io, &p.commands, Step::SelectMf, &Vars::new()).await?;
    Ok(())
}

/// Make application `aid` the current DF: a SELECT unless the channel
/// knows the card is there already (as [`select_mf`]).
pub async fn select_aid(io: &Io, p: &Profile, aid: &[u8]) -> Result<(), ExchangeError> {
    if matches!(io.selected(), Some(Selected::Aid(a)) if a.as_slice() == aid) {
        return Ok(());
    }
    send_ok(
        io,
        &p.commands,
        Step::SelectApplication,
        &Vars::new().bytes("aid", aid),
    )
    .await?;
    Ok(())
}

/// Select EF `fid` in the current DF; its size from the FCP.
async fn select_ef_size(io: &Io, p: &Profile, fid: u16) -> Result<usize, ExchangeError> {
    let fcp = select_ef(io, p, fid).await?;
    fcp_size(&fcp, fid)
}

/// The file size in an FCP (62 with 80 or 81).
fn fcp_size(fcp: &[u8], fid: u16) -> Result<usize, ExchangeError> {
    let what = format!("SELECT EF {fid:04X}");
    let nodes = tlv::decode(fcp);
    let top = tlv::expect_one(&nodes, &[0x62]).map_err(|e| bad(&what, e))?;
    let size = tlv::child_value(top, &[0x80])
        .or_else(|| tlv::child_value(top, &[0x81]))
        .map(|v| v.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b)))
        .ok_or_else(|| bad(&what, "the FCP has no file size (80)"))?;
    if size > 1 << 20 {
        return Err(bad(&what, format!("file size {size} is implausible")));
    }
    Ok(size)
}

/// Select EF `fid` in the current DF (the profile's `select_file`): its FCP.
async fn select_ef(io: &Io, p: &Profile, fid: u16) -> Result<Vec<u8>, ExchangeError> {
    let r = send(
        io,
        &p.commands,
        Step::SelectFile,
        &Vars::new().bytes("fid", &fid.to_be_bytes()),
    )
    .await?;
    ok_or_status(r, format!("SELECT EF {fid:04X}"))
}

/// Whether factory file `f` is on the card: its application selected by
/// AID, or its EF selected in its DF with at least the size the profile
/// says. `Ok(Err(why))` names what is missing or too small.
pub async fn check_factory_file(
    io: &Io,
    p: &Profile,
    f: &super::profile::FactoryFile,
) -> Result<Result<(), String>, ExchangeError> {
    let path = f
        .path
        .iter()
        .map(|x| format!("{x:04X}"))
        .collect::<Vec<_>>()
        .join("/");
    if let Some(aid) = &f.aid {
        return Ok(match select_aid(io, p, aid).await {
            Ok(()) => Ok(()),
            Err(ExchangeError::Status { sw, .. }) => Err(format!("application {path}: {sw}")),
            Err(e) => return Err(e),
        });
    }
    // An EF: its parent application by the AID the profile gives it.
    let parent = f
        .path
        .split_last()
        .map(|(_, dirs)| dirs)
        .unwrap_or_default();
    if let Some(aid) = p
        .files
        .iter()
        .find(|d| d.aid.is_some() && d.path.as_slice() == parent)
        .and_then(|d| d.aid.as_deref())
    {
        select_aid(io, p, aid).await?;
    }
    let Some(fid) = f.path.last() else {
        return Ok(Err("an empty path".into()));
    };
    Ok(match select_ef_size(io, p, *fid).await {
        Ok(size) if f.size.is_none_or(|want| size >= want) => Ok(()),
        Ok(size) => Err(format!(
            "EF {path} holds {size} bytes, the profile says {}",
            f.size.unwrap_or_default()
        )),
        Err(ExchangeError::Status { sw, .. }) => Err(format!("EF {path}: {sw}")),
        Err(e) => return Err(e),
    })
}

/// How much the first READ BINARY of a data object asks for: small data
/// groups come back whole in one short APDU, larger ones need one more.
const FIRST_READ: usize = 256;

/// What a first read takes at least: a whole TLV header (up to two tag
/// bytes and five length bytes), so the object's length is known from it.
const TLV_HEADER_MAX: usize = 8;

/// Select EF `fid` in the current DF and read the one data object it holds:
/// a first chunk, then exactly the rest its header announces, so the padding
/// after it is not transferred. An EF whose start is not a TLV header is
/// read whole.
pub async fn read_tlv_ef(io: &Io, p: &Profile, fid: u16) -> Result<Vec<u8>, ExchangeError> {
    let size = select_ef_size(io, p, fid).await?;
    read_tlv_rest(io, size, None).await
}

/// [`read_tlv_ef`] for an EF that holds a citizen's personal data (a data
/// group, a certificate): the trace shows `PERSONAL(n bytes)` for what the
/// card answers to the READ BINARY commands.
pub async fn read_personal_ef(io: &Io, p: &Profile, fid: u16) -> Result<Vec<u8>, ExchangeError> {
    read_personal_ef_expecting(io, p, fid, None).await
}

/// [`read_personal_ef`] when the caller knows how long the data object
/// should be (verification knows the data groups it expects): the first
/// READ BINARY asks for that much, so a data object of the expected length
/// comes in one command (or as few as the card's Ne allows) and no padding
/// follows it. A longer one is still read whole, a shorter one trimmed by
/// its own length; the expectation only sizes the reads.
pub async fn read_personal_ef_expecting(
    io: &Io,
    p: &Profile,
    fid: u16,
    expected: Option<usize>,
) -> Result<Vec<u8>, ExchangeError> {
    match select_for_read(io, p, fid, expected).await? {
        ReadPlan::Known(n) => io.personal(read_tlv_known(io, n)).await,
        ReadPlan::Within(size) => io.personal(read_tlv_rest(io, size, expected)).await,
    }
}

/// How an EF selected for reading is read: to a length known beforehand,
/// or within the size its FCP gave.
enum ReadPlan {
    /// This many bytes are expected.
    Known(usize),
    /// The EF holds this many bytes.
    Within(usize),
}

/// Select EF `fid` to read it: with the profile's `select_file_bare` when
/// the length is known (no FCP to fetch: one GET RESPONSE less on a T=0
/// card), else with `select_file` for the EF's size.
async fn select_for_read(
    io: &Io,
    p: &Profile,
    fid: u16,
    expected: Option<usize>,
) -> Result<ReadPlan, ExchangeError> {
    if let (Some(n), true) = (expected, p.commands.has(Step::SelectFileBare)) {
        let vars = Vars::new().bytes("fid", &fid.to_be_bytes());
        send_ok(io, &p.commands, Step::SelectFileBare, &vars).await?;
        return Ok(ReadPlan::Known(n));
    }
    Ok(ReadPlan::Within(select_ef_size(io, p, fid).await?))
}

/// [`read_personal_ef_expecting`] for an EF that holds no personal data
/// (the security object).
async fn read_ef_expecting(
    io: &Io,
    p: &Profile,
    fid: u16,
    expected: Option<usize>,
) -> Result<Vec<u8>, ExchangeError> {
    match select_for_read(io, p, fid, expected).await? {
        ReadPlan::Known(n) => read_tlv_known(io, n).await,
        ReadPlan::Within(size) => read_tlv_rest(io, size, expected).await,
    }
}

/// The data object of the selected EF, whose length is thought to be
/// `expected`: that many bytes (at least a TLV header's worth), then the
/// rest its header announces if it is longer. Without a TLV header at the
/// start, what was read.
async fn read_tlv_known(io: &Io, expected: usize) -> Result<Vec<u8>, ExchangeError> {
    let head = io.read_binary(0, expected.max(TLV_HEADER_MAX)).await?;
    match tlv::extent(&head) {
        Some(n) if n <= head.len() => Ok(head.get(..n).unwrap_or_default().to_vec()),
        Some(n) if n <= 1 << 20 => {
            let mut all = head;
            let rest = io.read_binary(all.len(), n - all.len()).await?;
            all.extend(rest);
            Ok(all)
        }
        _ => Ok(head),
    }
}

/// The data object of the selected EF of `size` bytes; the first read asks
/// for `expected` bytes (at least a TLV header's worth) or [`FIRST_READ`].
async fn read_tlv_rest(
    io: &Io,
    size: usize,
    expected: Option<usize>,
) -> Result<Vec<u8>, ExchangeError> {
    let first = expected.map_or(FIRST_READ, |n| n.max(TLV_HEADER_MAX));
    let head = io.read_binary(0, size.min(first)).await?;
    match tlv::extent(&head) {
        Some(n) if n <= size => {
            if n <= head.len() {
                return Ok(head.get(..n).unwrap_or_default().to_vec());
            }
            let mut all = head;
            let rest = io.read_binary(all.len(), n - all.len()).await?;
            all.extend(rest);
            Ok(all)
        }
        _ => {
            let mut all = head;
            if size > all.len() {
                let rest = io.read_binary(all.len(), size - all.len()).await?;
                all.extend(rest);
            }
            Ok(all)
        }
    }
}

/// Select EF `fid` in the current DF and write `data` at offset 0.
pub async fn write_ef(io: &Io, p: &Profile, fid: u16, data: &[u8]) -> Result<(), ExchangeError> {
    select_ef_to_write(io, p, fid, data.len()).await?;
    io.update_binary(0, data).await
}

/// Select EF `fid` to write `len` bytes to it. With the profile's
/// `select_file_bare` (a SELECT that answers nothing: on a T=0 card an
/// FCP costs a GET RESPONSE) the card's own bounds guard the write; else,
/// when the card answers its FCP, the EF must hold that much (a file made
/// at the factory is checked here, at the SELECT the write needs anyway,
/// before a byte is written).
async fn select_ef_to_write(
    io: &Io,
    p: &Profile,
    fid: u16,
    len: usize,
) -> Result<(), ExchangeError> {
    if p.commands.has(Step::SelectFileBare) {
        let vars = Vars::new().bytes("fid", &fid.to_be_bytes());
        send_ok(io, &p.commands, Step::SelectFileBare, &vars).await?;
        return Ok(());
    }
    let fcp = select_ef(io, p, fid).await?;
    if fcp.is_empty() {
        return Ok(());
    }
    let size = fcp_size(&fcp, fid)?;
    if size < len {
        return Err(bad(
            &format!("SELECT EF {fid:04X}"),
            format!("the EF holds {size} bytes; {len} are to be written"),
        ));
    }
    Ok(())
}

/// [`write_ef`] for a citizen's personal data (a data group, a
/// certificate): the commands' data fields are marked personal.
pub async fn write_personal_ef(
    io: &Io,
    p: &Profile,
    fid: u16,
    data: &[u8],
) -> Result<(), ExchangeError> {
    select_ef_to_write(io, p, fid, data.len()).await?;
    io.update_binary_personal(0, data).await
}

/// Write EFs of the current DF with GlobalPlatform STORE DATA in DGI
/// format (DGI = FID), as many blocks as the channel needs. Only a card's
/// security domain answers it, over its secure channel. The data groups
/// are a citizen's personal data: every block is marked personal.
pub async fn store_data(io: &Io, dgis: &[(u16, Vec<u8>)]) -> Result<(), ExchangeError> {
    let what = "STORE DATA".to_string();
    let cmds = crate::scp03::commands::store_data(dgis, io.max_data_per_apdu()).map_err(|e| {
        ExchangeError::BadResponseData {
            command: what.clone(),
            detail: e.to_string(),
        }
    })?;
    for c in cmds {
        io.expect_ok(&c.personal()).await?;
    }
    Ok(())
}

pub async fn life_cycle(io: &Io, p: &Profile) -> Result<LifeCycle, ExchangeError> {
    let what = "GET DATA (card life cycle)";
    let v = get_data_value(io, p, p.life_cycle_tag, what).await?;
    match v.as_slice() {
        [b] => LifeCycle::from_byte_in(*b, &p.life_cycle_values)
            .ok_or_else(|| bad(what, format!("unknown life cycle value {b:02X}"))),
        _ => Err(bad(what, format!("expected 1 byte, found {}", v.len()))),
    }
}

/// The 8-byte card serial from the CPLC (IC serial number ‖ IC
/// pre-personalization equipment identifier).
pub async fn serial(io: &Io, p: &Profile) -> Result<[u8; 8], ExchangeError> {
    let what = "GET DATA 9F7F (CPLC)";
    // The GlobalPlatform card production life cycle data object.
    let v = get_data_value(io, p, 0x9F7F, what).await?;
    // IC serial number at CPLC offset 12, IC batch identifier at 30.
    let part = |at: usize| v.get(at..at + 4).and_then(|p| <[u8; 4]>::try_from(p).ok());
    match (v.len(), part(12), part(30)) {
        (42, Some([a, b, c, d]), Some([e, f, g, h])) => Ok([a, b, c, d, e, f, g, h]),
        _ => Err(bad(
            what,
            format!("expected 42 bytes of CPLC, found {}", v.len()),
        )),
    }
}

/// GET CHALLENGE and EXTERNAL AUTHENTICATE with the issuer key.
pub async fn issuer_authenticate(
    io: &Io,
    p: &Profile,
    key: &IssuerKey,
    serial: &[u8; 8],
) -> Result<(), ExchangeError> {
    let n = usize::from(p.challenge_length);
    let challenge = send_ok(
        io,
        &p.commands,
        Step::GetChallenge,
        &Vars::new().byte("length", p.challenge_length),
    )
    .await?;
    if challenge.len() != n {
        return Err(bad(
            "GET CHALLENGE",
            format!("expected {n} bytes, found {}", challenge.len()),
        ));
    }
    let cryptogram = Secret::new(key.cryptogram(&challenge, serial).to_vec());
    send_ok(
        io,
        &p.commands,
        Step::ExternalAuthenticate,
        &Vars::new()
            .byte("key_reference", p.issuer_key_reference)
            .secret("cryptogram", &cryptogram),
    )
    .await?;
    Ok(())
}

/// The card's PIN and biometric reference states.
pub async fn status_list(io: &Io, p: &Profile) -> Result<Vec<RefStatus>, ExchangeError> {
    let what = "GET DATA (PIN and biometric status)";
    // A card without a status list (the profile names none) lists nothing.
    let Some(status_tag) = p.status_tag else {
        return Ok(Vec::new());
    };
    let r = get_data(io, p, status_tag).await?;
    let data = ok_or_status(r, what)?;
    let nodes = tlv::decode(&data);
    // The entries, either bare or wrapped in the status tag.
    let tag = status_tag.to_be_bytes();
    let entries: &[tlv::Node] = match nodes.as_slice() {
        [one] if matches!(&one.kind, tlv::NodeKind::Tlv { tag: t, .. } if t.as_slice() == tag) => {
            tlv::children(one)
        }
        all => all,
    };
    let mut out = Vec::new();
    for n in entries {
        let tlv::NodeKind::Tlv { tag, .. } = &n.kind else {
            return Err(bad(what, format!("malformed entry at byte {}", n.offset)));
        };
        let biometric = match tag.as_slice() {
            [0xA0] => false,
            [0xA1] => true,
            _ => continue,
        };
        let get = |t: u8| -> Result<u8, ExchangeError> {
            tlv::child_value(n, &[t])
                .and_then(|v| match v {
                    [b] => Some(*b),
                    _ => None,
                })
                .ok_or_else(|| bad(what, format!("an entry lacks a 1-byte {t:02X}")))
        };
        let reference = get(0x83)?;
        let tries_left = get(0x91)?;
        let try_limit = get(0x92)?;
        let flags = get(0x93)?;
        out.push(RefStatus {
            reference,
            biometric,
            tries_left,
            try_limit,
            transport: flags & 0x01 != 0,
            blocked: flags & 0x02 != 0,
            is_puk: flags & 0x04 != 0,
        });
    }
    Ok(out)
}

/// The card's public point for key `k`, from its answer in the profile's
/// encoding ([`super::encoding::public_point`]).
fn parse_public_key(k: &KeySpec, data: &[u8], what: &str) -> Result<Vec<u8>, ExchangeError> {
    super::encoding::public_point(k.point_encoding, data).map_err(|e| bad(what, e))
}

/// Generate key pair `k` on the card; its public point.
pub async fn generate_key(io: &Io, k: &KeySpec) -> Result<Vec<u8>, ExchangeError> {
    let vars = Vars::new().byte("key_reference", k.reference);
    let data = send_ok(io, &k.commands, Step::Generate, &vars).await?;
    parse_public_key(k, &data, "GENERATE ASYMMETRIC KEY PAIR")
}

/// Read the public point of an existing key pair.
pub async fn read_public_key(io: &Io, k: &KeySpec) -> Result<Vec<u8>, ExchangeError> {
    let vars = Vars::new().byte("key_reference", k.reference);
    let data = send_ok(io, &k.commands, Step::ReadPublicKey, &vars).await?;
    parse_public_key(k, &data, "GENERATE ASYMMETRIC KEY PAIR (read public key)")
}

/// Have the card sign a SHA-256 digest with key `k` (the key's `sign`
/// commands); the raw r ‖ s, whatever the profile says the card answers.
pub async fn sign_digest(io: &Io, k: &KeySpec, digest: &[u8; 32]) -> Result<Vec<u8>, StepError> {
    let vars = Vars::new()
        .byte("key_reference", k.reference)
        .bytes("digest", digest);
    let r = send(io, &k.commands, Step::Sign, &vars).await?;
    if r.sw != StatusWord::Ok {
        return Err(StepError::Refused(r.sw));
    }
    super::encoding::raw_signature(k.signature_encoding, &r.data)
        .map_err(|e| StepError::Exchange(bad("signature", e)))
}

/// Before the issuer has a key sign (its certificate request): a card
/// whose PINs come from the factory wants the key's PIN even from the
/// issuer, who knows the factory value. VERIFY with it (the profile's
/// `verify_pin`, in its PIN block); nothing for a card without factory
/// values or a key without a PIN.
pub async fn factory_pin_for_key(io: &Io, p: &Profile, k: &KeySpec) -> Result<(), ExchangeError> {
    let Some((pin, value)) = p.key_factory_pin(k) else {
        return Ok(());
    };
    let vars = Vars::new()
        .byte("pin_reference", pin.reference)
        .secret("pin", &p.pin_block_of(value));
    send_ok(io, &p.commands, Step::VerifyPin, &vars).await?;
    Ok(())
}

/// Why a card step did not succeed: the exchange failed, or the card said no.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    #[error("the card refused: {0}")]
    Refused(StatusWord),
}

/// Smallest probe, in minutiae, that the card's comparison can match:
/// fewer than [`crate::biometric::MIN_PAIRED`] minutiae never pair enough.
pub const MIN_PROBE_MINUTIAE: u8 = crate::biometric::MIN_PAIRED as u8;

/// An ISO/IEC 7816-11 biometric information template for one finger, as
/// the profile's `bit_layout` has it. The reference card's
/// (`b1-inside-a1`) is laid out as ISO/IEC 7816-11 Annex C, ISO/IEC
/// 19794-2:2005 §8.3 and the NIST MINEX II / SP 800-73-4 match-on-card
/// profile have it:
///
/// ```text
/// 7F60 { 83 01 reference,
///        A1 { 81 01 08, 82 01 subtype, 87 02 owner, 88 02 type,
///             B1 { 81 02 min max, 82 01 order } } }
/// ```
///
/// with the biometric matching algorithm parameters (B1) inside the
/// biometric header template (A1), 81 in B1 being the minimum and the
/// maximum number of minutiae. In `b1-beside-a1` (the domestic card's) B1
/// follows A1 and its 81 is the maximum only. The order byte (82 in B1) is
/// the profile's `minutiae_order`.
pub fn bit(p: &Profile, reference: u8, position_code: u8) -> Vec<u8> {
    let max = u8::try_from(p.max_minutiae).unwrap_or(u8::MAX);
    let mut bht = tlv::build(&[0x81], &[0x08]);
    bht.extend(tlv::build(&[0x82], &[finger_subtype(position_code)]));
    bht.extend(tlv::build(&[0x87], &p.bio_format_owner.to_be_bytes()));
    bht.extend(tlv::build(&[0x88], &p.bio_format_type.to_be_bytes()));
    let mut inner = tlv::build(&[0x83], &[reference]);
    match p.bit_layout {
        BitLayout::B1InsideA1 => {
            let mut params = tlv::build(&[0x81], &[MIN_PROBE_MINUTIAE.min(max), max]);
            params.extend(tlv::build(&[0x82], &[p.minutiae_order.byte()]));
            bht.extend(tlv::build(&[0xB1], &params));
            inner.extend(tlv::build(&[0xA1], &bht));
        }
        BitLayout::B1BesideA1 => {
            let mut params = tlv::build(&[0x81], &[max]);
            params.extend(tlv::build(&[0x82], &[p.minutiae_order.byte()]));
            inner.extend(tlv::build(&[0xA1], &bht));
            inner.extend(tlv::build(&[0xB1], &params));
        }
    }
    tlv::build(&[0x7F, 0x60], &inner)
}

/// Compact card-format minutiae (3 bytes each: x, y, type and angle) in
/// the order the card wants (`[biometric] minutiae_order`): as they are,
/// or by x then y ascending.
pub fn order_minutiae(minutiae: &Secret, order: MinutiaeOrder) -> Secret {
    match order {
        MinutiaeOrder::Unordered => minutiae.clone(),
        MinutiaeOrder::XyAscending => {
            let mut m: Vec<&[u8]> = minutiae.expose().chunks(3).collect();
            m.sort_by_key(|c| (c.first().copied(), c.get(1).copied()));
            Secret::new(m.concat())
        }
    }
}

/// ISO/IEC 19785-3 biometric subtype of a finger: b2-b1 right (01) / left
/// (10), b5-b3 thumb 1 … little finger 5. Position codes are ISO/IEC
/// 19794-2's (1 right thumb … 10 left little; 0 unknown).
pub fn finger_subtype(position_code: u8) -> u8 {
    match position_code {
        1..=5 => 0b01 | (position_code << 2),
        6..=10 => 0b10 | ((position_code - 5) << 2),
        _ => 0,
    }
}

/// The ISO/IEC 19794-2 position code of a subtype (inverse of [`finger_subtype`]).
pub fn subtype_position(subtype: u8) -> u8 {
    let finger = (subtype >> 2) & 0x07;
    match (subtype & 0x03, finger) {
        (0b01, 1..=5) => finger,
        (0b10, 1..=5) => finger + 5,
        _ => 0,
    }
}

/// Enrol a biometric reference: BIT, compact minutiae, try limit.
pub async fn enrol_finger(
    io: &Io,
    p: &Profile,
    reference: u8,
    position_code: u8,
    minutiae: &Secret,
) -> Result<(), ExchangeError> {
    let vars = Vars::new()
        .byte("reference", reference)
        .byte("finger_position", position_code)
        .byte("finger_subtype", finger_subtype(position_code))
        .bytes("bit", &bit(p, reference, position_code))
        .secret("minutiae", &order_minutiae(minutiae, p.minutiae_order))
        .byte("try_limit", p.bio_try_limit);
    send_ok(io, &p.commands, Step::EnrolFinger, &vars).await?;
    Ok(())
}

/// VERIFY with a biometric probe (compact minutiae): the card's status word.
pub async fn verify_finger(
    io: &Io,
    p: &Profile,
    reference: u8,
    minutiae: &Secret,
) -> Result<StatusWord, ExchangeError> {
    let vars = Vars::new()
        .byte("reference", reference)
        .secret("minutiae", &order_minutiae(minutiae, p.minutiae_order));
    Ok(send(io, &p.commands, Step::VerifyFinger, &vars).await?.sw)
}

/// GET DATA tag of the card's BIT group template (SP 800-73-4, MINEX II).
pub const BIT_GROUP_TAG: u16 = 0x7F61;
/// GET DATA tag of the last comparison's score, answered only by a
/// simulated card with its diagnostics on (docs/simulated-card.md).
pub const SCORE_TAG: u16 = 0xDF72;

/// The card's comparison score, for diagnostics (test benches): never shown
/// to the holder, never journaled.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MatchDiagnostics {
    /// 0..=1.
    pub score: f64,
    /// The card's decision threshold, 0..=1.
    pub threshold: f64,
    /// Minutiae paired under the best alignment.
    pub paired: u8,
}

/// [`verify_finger`], then the card's score of that comparison when it
/// gives one (GET DATA DF72; a card without it answers 6A88 and this is
/// `None`).
pub async fn verify_finger_diagnosed(
    io: &Io,
    p: &Profile,
    reference: u8,
    minutiae: &Secret,
) -> Result<(StatusWord, Option<MatchDiagnostics>), ExchangeError> {
    let sw = verify_finger(io, p, reference, minutiae).await?;
    let r = get_data(io, p, SCORE_TAG).await?;
    if r.sw != StatusWord::Ok {
        return Ok((sw, None));
    }
    // The answer is the data objects themselves (DF72 is primitive).
    let nodes = tlv::decode(&r.data);
    let field = |t: u8| {
        let mut found = nodes.iter().filter_map(|n| match &n.kind {
            tlv::NodeKind::Tlv {
                tag,
                header_len,
                length,
                ..
            } if tag.as_slice() == [t] => r
                .data
                .get(n.offset + header_len..n.offset + header_len + length),
            _ => None,
        });
        let first = found.next();
        found.next().is_none().then_some(first).flatten()
    };
    let diag = match (field(0x83), field(0x80), field(0x81), field(0x82)) {
        (Some([r]), Some([s1, s2]), Some([t1, t2]), Some([paired])) if *r == reference => {
            Some(MatchDiagnostics {
                score: f64::from(u16::from_be_bytes([*s1, *s2])) / 10_000.0,
                threshold: f64::from(u16::from_be_bytes([*t1, *t2])) / 10_000.0,
                paired: *paired,
            })
        }
        _ => None,
    };
    Ok((sw, diag))
}

/// The card's BIT group template (GET DATA 7F61): its BITs, each as the
/// whole 7F60 data object. `None` when the card has no such object (6A88).
pub async fn bit_group(io: &Io, p: &Profile) -> Result<Option<Vec<Vec<u8>>>, ExchangeError> {
    let what = "GET DATA (biometric information template group)";
    let r = get_data(io, p, BIT_GROUP_TAG).await?;
    if matches!(
        r.sw,
        StatusWord::ReferenceNotFound | StatusWord::FileNotFound
    ) {
        return Ok(None);
    }
    if r.sw != StatusWord::Ok {
        return Err(bad(what, format!("the card answered {}", r.sw)));
    }
    let nodes = tlv::decode(&r.data);
    let top = tlv::expect_one(&nodes, &BIT_GROUP_TAG.to_be_bytes())
        .map_err(|_| bad(what, "not one 7F61 template".to_string()))?;
    let mut bits = Vec::new();
    let mut count = None;
    for n in tlv::children(top) {
        match &n.kind {
            tlv::NodeKind::Tlv { tag, .. } if tag.as_slice() == [0x02] => {
                count = tlv::child_value(top, &[0x02]).and_then(|v| v.first().copied());
            }
            tlv::NodeKind::Tlv { tag, .. } if tag.as_slice() == [0x7F, 0x60] => {
                // Node offsets count from the start of the response.
                bits.push(
                    r.data
                        .get(n.offset..n.offset + n.size())
                        .unwrap_or_default()
                        .to_vec(),
                );
            }
            _ => {
                return Err(bad(
                    what,
                    format!("unexpected data object at byte {}", n.offset),
                ))
            }
        }
    }
    if count.map(usize::from) != Some(bits.len()) {
        return Err(bad(
            what,
            format!(
                "the number of BITs (02) says {}, the template holds {}",
                count.map_or("nothing".to_string(), |c| c.to_string()),
                bits.len()
            ),
        ));
    }
    Ok(Some(bits))
}

/// A life cycle step of the profile (`close_personalization`,
/// `activate`, `terminate`): the card's status word. Where the card wants
/// it said (the MF selected first, on the reference card), the step's
/// commands say it.
pub async fn life_cycle_step(
    io: &Io,
    p: &Profile,
    step: Step,
) -> Result<StatusWord, ExchangeError> {
    Ok(send(io, &p.commands, step, &Vars::new()).await?.sw)
}

/// TERMINATE CARD USAGE on the MF (ISO/IEC 7816-9 §8.8): the card refuses
/// every command from then on. The one way cardsmith ends a card, for a
/// card the line rejects and for a card the counter retires. If the card
/// asks for the issuer first (6982), it gets it: over its security
/// domain's secure channel when the profile names one and its keys are at
/// hand (a blank card with a security domain takes it only that way), else
/// by issuer authentication. A refusal is `ExchangeError::Status`.
pub fn terminate(
    ch: &mut Channel,
    p: &Profile,
    key: &IssuerKey,
    scp03: Option<&crate::scp03::keyfile::Scp03Keys>,
    serial: &[u8; 8],
) -> Result<(), ExchangeError> {
    let what = "TERMINATE CARD USAGE";
    let sd = p.security_domain.as_ref().map(|sd| sd.options());
    for attempt in 0..2 {
        let secure = attempt == 1
            && match (&sd, scp03) {
                (Some(o), Some(keys)) => crate::scp03::link::open(ch, keys, o).is_ok(),
                _ => false,
            };
        let r = ch.converse(async |io| {
            // Over the secure channel the card knows the issuer already.
            if attempt == 1 && !secure && p.commands.has(Step::ExternalAuthenticate) {
                issuer_authenticate(io, p, key, serial).await?;
            }
            life_cycle_step(io, p, Step::Terminate).await
        });
        if let (true, Some(o)) = (secure, &sd) {
            crate::scp03::link::close(ch, o);
        }
        match r? {
            StatusWord::Ok => return Ok(()),
            StatusWord::SecurityNotSatisfied if attempt == 0 => continue,
            sw => {
                return Err(ExchangeError::Status {
                    command: what.into(),
                    sw,
                })
            }
        }
    }
    Err(ExchangeError::Status {
        command: what.into(),
        sw: StatusWord::SecurityNotSatisfied,
    })
}

/// What was read from a card for verification, `read` and the counter.
#[derive(Default)]
pub struct ReadBack {
    pub dgs: BTreeMap<u8, Result<Vec<u8>, String>>,
    pub sod: Option<Result<Vec<u8>, String>>,
    pub certs: BTreeMap<u8, Result<Vec<u8>, String>>,
    pub points: BTreeMap<u8, Result<Vec<u8>, String>>,
}

/// The one read-back of a personalized card: every data group, the
/// security object, each certificate and public key, in one transaction.
/// Used by `verify`, `read` and the counter's genuineness check.
pub fn read_back(ch: &mut Channel, p: &Profile) -> Result<ReadBack, ExchangeError> {
    read_back_expecting(ch, p, &BTreeMap::new())
}

/// [`read_back`] when the caller knows how long some EFs' data objects
/// should be (by FID): those are read in as few commands as their length
/// allows (see [`read_personal_ef_expecting`]).
pub fn read_back_expecting(
    ch: &mut Channel,
    p: &Profile,
    lengths: &BTreeMap<u16, usize>,
) -> Result<ReadBack, ExchangeError> {
    let io = Io::new(ch.facts());
    ch.drive(
        &io,
        read_back_in(&io, p, lengths),
        &mut crate::transport::sansio::no_extension,
    )
}

/// [`read_back_expecting`] as a conversation ([`crate::transport::sansio`]).
pub async fn read_back_in(
    io: &Io,
    p: &Profile,
    lengths: &BTreeMap<u16, usize>,
) -> Result<ReadBack, ExchangeError> {
    io.transaction(async |io| {
        let mut rb = ReadBack::default();
        select_aid(io, p, &p.identity_aid).await?;
        for dg in &p.data_groups {
            let expected = lengths.get(&dg.fid).copied();
            rb.dgs.insert(
                dg.number,
                soft(read_personal_ef_expecting(io, p, dg.fid, expected).await)?,
            );
        }
        let sod = read_ef_expecting(io, p, p.sod_fid, lengths.get(&p.sod_fid).copied()).await;
        rb.sod = Some(soft(sod)?);
        select_aid(io, p, &p.pki_aid).await?;
        for k in &p.keys {
            rb.certs.insert(
                k.reference,
                soft(read_personal_ef(io, p, k.certificate_fid).await)?,
            );
            rb.points
                .insert(k.reference, soft(read_public_key(io, k).await)?);
        }
        Ok(rb)
    })
    .await
}

/// A card status or malformed data becomes a per-item error; a transport
/// failure stops the whole read.
fn soft(r: Result<Vec<u8>, ExchangeError>) -> Result<Result<Vec<u8>, String>, ExchangeError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e @ ExchangeError::Transport(_)) => Err(e),
        Err(e) => Ok(Err(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apdu::{cmd, Command};

    fn one(p: &Profile, step: Step, vars: Vars) -> Vec<u8> {
        let c = p.commands.build(step, &vars).unwrap();
        assert_eq!(c.len(), 1, "{step}");
        c[0].encode().unwrap()
    }

    fn enc(c: &Command) -> Vec<u8> {
        c.encode().unwrap()
    }

    /// The reference profile's templates make exactly the commands the
    /// host sent before they moved into the profile (wire's ISO builders
    /// and the key commands' former hand-built bytes).
    #[test]
    fn the_reference_profile_makes_the_reference_cards_commands() {
        let p = Profile::reference();
        let none = cmd::SelectReturn::Nothing;
        let aid = [0xF0, 0x43, 0x53, 0x4D, 0x49, 0x44, 0x01];
        assert_eq!(
            one(&p, Step::SelectMf, Vars::new()),
            enc(&cmd::select_mf(none))
        );
        assert_eq!(
            one(&p, Step::SelectApplication, Vars::new().bytes("aid", &aid)),
            enc(&cmd::select_by_aid(&aid, none))
        );
        assert_eq!(
            one(
                &p,
                Step::SelectFile,
                Vars::new().bytes("fid", &[0x01, 0x02])
            ),
            enc(&cmd::select_ef(0x0102, cmd::SelectReturn::Fcp))
        );
        assert_eq!(
            one(&p, Step::GetData, Vars::new().bytes("tag", &[0x9F, 0x7F])),
            enc(&cmd::get_data(0x9F7F, 256))
        );
        assert_eq!(
            one(&p, Step::GetChallenge, Vars::new().byte("length", 16)),
            enc(&cmd::get_challenge(16))
        );
        let pin = Secret::new(b"123456".to_vec());
        let puk = Secret::new(b"87654321".to_vec());
        let v = || Vars::new().byte("pin_reference", 0x81);
        assert_eq!(
            one(&p, Step::VerifyPin, v().secret("pin", &pin)),
            enc(&cmd::verify(0x81, pin.clone()))
        );
        assert_eq!(one(&p, Step::PinLogout, v()), enc(&cmd::verify_reset(0x81)));
        assert_eq!(
            one(
                &p,
                Step::ResetRetryCounter,
                v().secret("puk", &puk).secret("new_pin", &pin)
            ),
            enc(&cmd::reset_retry_counter(0x81, &puk, &pin))
        );
        assert_eq!(
            one(
                &p,
                Step::SetPin,
                v().secret("old_pin", &puk).secret("new_pin", &pin)
            ),
            enc(&Command::new(0x00, 0x24, 0x01, 0x81).with_secret(pin.clone()))
        );
        // The life cycle commands act on the MF: the steps select it first.
        let two = |step| -> Vec<Vec<u8>> {
            p.commands
                .build(step, &Vars::new())
                .unwrap()
                .iter()
                .map(enc)
                .collect()
        };
        let mf = enc(&cmd::select_mf(none));
        for step in [Step::ClosePersonalization, Step::Activate] {
            assert_eq!(two(step), [mf.clone(), enc(&cmd::activate_file())]);
        }
        assert_eq!(
            two(Step::Terminate),
            [mf.clone(), enc(&cmd::terminate_card_usage())]
        );
        let fcp = tlv::build(
            &[0x62],
            &[
                tlv::build(&[0x80], &[0x00, 0x10]),
                tlv::build(&[0x82], &[0x01]),
                tlv::build(&[0x83], &[0x7F, 0x7E]),
            ]
            .concat(),
        );
        assert_eq!(
            one(&p, Step::ClosedProbe, Vars::new()),
            enc(&cmd::create_file(&fcp))
        );
        // Biometrics.
        let minutiae = Secret::new(vec![0x11; 30]);
        let bit = bit(&p, 0x85, 2);
        let mut body = bit.clone();
        body.extend(tlv::build(&[0x5F, 0x2E], minutiae.expose()));
        body.extend(tlv::build(&[0x91], &[p.bio_try_limit]));
        let enrol = Vars::new()
            .byte("reference", 0x85)
            .byte("finger_position", 2)
            .bytes("bit", &bit)
            .secret("minutiae", &minutiae)
            .byte("try_limit", p.bio_try_limit);
        assert_eq!(
            one(&p, Step::EnrolFinger, enrol),
            enc(&Command::new(0x00, 0xDA, 0x02, 0x85).with_secret(Secret::new(body)))
        );
        let probe = tlv::build(&[0x7F, 0x2E], &tlv::build(&[0x81], minutiae.expose()));
        assert_eq!(
            one(
                &p,
                Step::VerifyFinger,
                Vars::new()
                    .byte("reference", 0x85)
                    .secret("minutiae", &minutiae)
            ),
            enc(&Command::new(0x00, 0x21, 0x00, 0x85).with_secret(Secret::new(probe)))
        );
        // The keys: control reference templates A4 / B6 with the key
        // reference and ECDSA P-256 (80 11); the signature key bound to
        // PIN 2 for every use (9C 02, 9D 01).
        let digest = [7u8; 32];
        for k in &p.keys {
            // The control reference templates of the reference card's keys.
            let crt = match k.usage {
                super::super::profile::KeyUsage::Authenticate => 0xA4,
                super::super::profile::KeyUsage::Sign => 0xB6,
            };
            let kv = || Vars::new().byte("key_reference", k.reference);
            let mut inner = tlv::build(&[0x83], &[k.reference]);
            inner.extend(tlv::build(&[0x80], &[0x11]));
            let read = Command::new(0x00, 0x46, 0x81, 0x00)
                .with_data(tlv::build(&[crt], &inner))
                .with_ne(256);
            if let Some(pin) = k.pin {
                inner.extend(tlv::build(&[0x9C], &[pin]));
                inner.extend(tlv::build(&[0x9D], &[0x01]));
            }
            let generate = Command::new(0x00, 0x46, 0x00, 0x00)
                .with_data(tlv::build(&[crt], &inner))
                .with_ne(256);
            let key = |step| {
                k.commands
                    .build(step, &kv().bytes("digest", &digest))
                    .unwrap()
            };
            assert_eq!(
                key(Step::Generate).iter().map(enc).collect::<Vec<_>>(),
                [enc(&generate)]
            );
            assert_eq!(
                key(Step::ReadPublicKey).iter().map(enc).collect::<Vec<_>>(),
                [enc(&read)]
            );
            let mut mse = tlv::build(&[0x80], &[0x11]);
            mse.extend(tlv::build(&[0x84], &[k.reference]));
            let pso = match k.usage {
                super::super::profile::KeyUsage::Sign => Command::new(0x00, 0x2A, 0x9E, 0x9A),
                super::super::profile::KeyUsage::Authenticate => {
                    Command::new(0x00, 0x88, 0x00, 0x00)
                }
            }
            .with_data(digest.to_vec())
            .with_ne(256);
            assert_eq!(
                key(Step::Sign).iter().map(enc).collect::<Vec<_>>(),
                [
                    enc(&Command::new(0x00, 0x22, 0x41, crt).with_data(mse)),
                    enc(&pso)
                ]
            );
        }
    }

    #[test]
    fn finger_subtypes_round_trip() {
        for code in 0..=10 {
            assert_eq!(subtype_position(finger_subtype(code)), code);
        }
        assert_eq!(finger_subtype(2), 0b0000_1001); // right index
        assert_eq!(finger_subtype(7), 0b0000_1010); // left index
    }
}
