//! The card side of the pickup counter: each step a few APDUs over a
//! [`Channel`], named after what it does for the holder.
//!
//! - [`inspect`]: is this a genuine card of ours, and whose is it? Reads
//!   the data groups, checks the security object's signature and its chain
//!   to the CA, each data group's hash, each certificate against the CA and
//!   the card's own key, and has the authentication key sign a fresh
//!   challenge. It never presents a fingerprint or a PIN: activation must
//!   be unlocked by the holder's live finger, not by the enrolment data.
//! - [`verify_finger`]: the holder's live template matched on the card.
//! - [`set_pins`], [`activate`], [`test_signature`]: the holder's PINs
//!   replace the transport values, the card leaves its transport state,
//!   and the signature key proves itself with the holder's PIN.
//! - [`unblock`]: the issuer's PUK resets a blocked PIN to a new value.
//!
//! Every function keeps the card's answer as a typed status word, so the
//! counter can say "no match, 3 tries left" rather than "error".

use std::collections::BTreeMap;
use std::time::SystemTime;

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use crate::apdu::StatusWord;
use crate::biometric::FingerPosition;
use crate::hex;
use crate::perso::card::{self, LifeCycle, RefStatus, StepError};
use crate::perso::commands::Step;
use crate::perso::datagroups;
use crate::perso::keys::IssuerKey;
use crate::perso::profile::{CertKind, Encoding, KeyUsage, Profile};
use crate::pki;
use crate::script::template::Vars;
use crate::secret::Secret;
use crate::tlv;
use crate::transport::{Channel, ExchangeError, FromExchange};

/// One genuineness check and its verdict: verification's own.
pub use crate::perso::engine::Check;

/// An enrolled finger, as DG4 and the status list tell it.
#[derive(Debug, Clone, Serialize)]
pub struct Finger {
    pub reference: u8,
    /// ISO/IEC 19794-2 position code (0: unknown).
    pub position_code: u8,
    /// `right_index`, …
    pub position: String,
    pub tries_left: Option<u8>,
    pub try_limit: Option<u8>,
}

impl Finger {
    /// `RIGHT INDEX`, for the operator's screen.
    pub fn shout(&self) -> String {
        self.position.replace('_', " ").to_uppercase()
    }
}

/// A certificate on the card, summarized (public data).
#[derive(Debug, Clone, Serialize)]
pub struct CardCert {
    pub key: String,
    #[serde(skip)]
    pub der: Vec<u8>,
    pub summary: Option<pki::CertSummary>,
}

/// What the counter learned about the card in the reader.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub serial: String,
    #[serde(skip)]
    pub serial_bytes: [u8; 8],
    pub life_cycle: LifeCycle,
    /// Record fields as stored on the card (text; dates `YYYYMMDD`), by the
    /// profile's field names; Gregorian dates under `<field>.gregorian`.
    pub fields: BTreeMap<String, String>,
    #[serde(skip)]
    pub photo: Option<Vec<u8>>,
    pub fingers: Vec<Finger>,
    pub pins: Vec<RefStatus>,
    pub certificates: Vec<CardCert>,
    pub checks: Vec<Check>,
}

impl Inspection {
    /// Every genuineness check passed.
    pub fn genuine(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }

    fn push(&mut self, name: &str, r: Result<String, String>) {
        let (passed, detail) = match r {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.checks.push(Check {
            name: name.into(),
            passed,
            detail,
        });
    }

    /// The PIN state of `reference`.
    pub fn pin(&self, reference: u8) -> Option<&RefStatus> {
        self.pins
            .iter()
            .find(|s| !s.biometric && s.reference & 0x0F == reference & 0x0F)
    }
}

/// Why a card step failed.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// Every command is answered 6A81: TERMINATE CARD USAGE was done.
    #[error("the card is terminated: it answers 6A81 (function not supported) to every command")]
    Terminated,
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    #[error("{what}: the card refused: {sw}")]
    Refused { what: String, sw: StatusWord },
    #[error("{0}")]
    Other(String),
}

impl CardError {
    /// The card, reader or service went away (as opposed to the card saying no).
    pub fn is_transport(&self) -> bool {
        matches!(self, CardError::Exchange(ExchangeError::Transport(_)))
    }
}

impl From<StepError> for CardError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::Exchange(e) => CardError::Exchange(e),
            StepError::Refused(sw) => CardError::Refused {
                what: "signature".into(),
                sw,
            },
        }
    }
}

impl FromExchange for CardError {
    fn card_reset(&self) -> bool {
        matches!(self, CardError::Exchange(e) if e.card_reset())
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, b).as_ref());
    out
}

/// A terminated card answers 6A81 to the very first SELECT.
fn terminated_or(e: ExchangeError) -> CardError {
    match &e {
        ExchangeError::Status {
            sw: StatusWord::FunctionNotSupported,
            ..
        } => CardError::Terminated,
        _ => CardError::Exchange(e),
    }
}

/// Serial and life cycle, the first thing asked of any card.
pub fn identify(ch: &mut Channel, p: &Profile) -> Result<([u8; 8], LifeCycle), CardError> {
    ch.converse(async |io| {
        card::select_mf(io, p).await?;
        Ok::<_, ExchangeError>((card::serial(io, p).await?, card::life_cycle(io, p).await?))
    })
    .map_err(terminated_or)
}

fn date_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Read the card and check that it is genuine (see the module doc).
pub fn inspect(ch: &mut Channel, p: &Profile, chain: &[Vec<u8>]) -> Result<Inspection, CardError> {
    // Not a card of the profile: refused by its ATR before any command.
    let atr = ch.atr();
    if !p.recognizes.recognizes(&atr) {
        return Err(CardError::Other(crate::perso::recognize::unknown_card(
            &atr,
            &p.name,
            &p.recognizes,
        )));
    }
    let (serial, lc) = identify(ch, p)?;
    let serial_hex = hex::compact(&serial);
    let mut ins = Inspection {
        serial: serial_hex.clone(),
        serial_bytes: serial,
        life_cycle: lc,
        fields: BTreeMap::new(),
        photo: None,
        fingers: vec![],
        pins: vec![],
        certificates: vec![],
        checks: vec![],
    };
    if !matches!(lc, LifeCycle::Personalized | LifeCycle::Activated) {
        return Ok(ins);
    }
    let rb = card::read_back(ch, p)?;
    let (dgs, certs, points) = (rb.dgs, rb.certs, rb.points);
    let sod = rb.sod.unwrap_or_else(|| Err("not read".into()));
    ins.pins = ch.converse(async |io| card::status_list(io, p).await)?;

    holder_data(&mut ins, p, &dgs);
    security_object(&mut ins, p, &dgs, &sod, chain);
    // The data belongs to this chip.
    let on_card = ins.field("card.serial").to_string();
    ins.push(
        "card serial",
        if on_card.eq_ignore_ascii_case(&serial_hex) {
            Ok(format!("DG3 names this chip ({serial_hex})"))
        } else {
            Err(format!(
                "DG3 names card {on_card:?} but the chip is {serial_hex}: the data was copied from another card"
            ))
        },
    );

    certificates_and_proof(ch, &mut ins, p, &certs, &points, chain)?;
    Ok(ins)
}

type Soft = Result<Vec<u8>, String>;

/// The holder's data as stored: the fields of every data group, the photo,
/// and the fingers DG4 lists with the card's tries for each.
fn holder_data(ins: &mut Inspection, p: &Profile, dgs: &BTreeMap<u8, Soft>) {
    let mut problems = Vec::new();
    for dg in &p.data_groups {
        let Some(Ok(bytes)) = dgs.get(&dg.number) else {
            problems.push(format!("DG{} {} could not be read", dg.number, dg.name));
            continue;
        };
        let objects = match datagroups::parse(dg, bytes) {
            Ok(o) => o,
            Err(e) => {
                problems.push(format!("DG{} {}: {e}", dg.number, dg.name));
                continue;
            }
        };
        for f in &dg.fields {
            let Some(v) = datagroups::field_bytes(&objects, dg, &f.field, f.encoding) else {
                continue;
            };
            match f.encoding {
                Encoding::Utf8 => {
                    ins.fields
                        .insert(f.field.clone(), String::from_utf8_lossy(v).into_owned());
                }
                Encoding::Date => {
                    ins.fields.insert(f.field.clone(), date_text(v));
                }
                Encoding::Gregorian => {
                    ins.fields
                        .insert(format!("{}.gregorian", f.field), date_text(v));
                }
                Encoding::Bytes => {
                    if f.field == "photo" {
                        ins.photo = Some(v.to_vec());
                    }
                }
            }
        }
        if dg.number == 4 {
            biometric_templates(ins, dg, bytes);
        }
    }
    ins.push(
        "data groups",
        if problems.is_empty() {
            Ok(format!("{} data groups read", p.data_groups.len()))
        } else {
            Err(problems.join("; "))
        },
    );
}

/// DG4's biometric information templates: which finger each reference is.
fn biometric_templates(ins: &mut Inspection, dg: &crate::perso::profile::DataGroup, bytes: &[u8]) {
    let nodes = tlv::decode(bytes);
    if let Ok(top) = tlv::expect_one(&nodes, &dg.tag) {
        for bit in tlv::children(top) {
            let reference = tlv::child_value(bit, &[0x83])
                .and_then(|v| v.first().copied())
                .unwrap_or(0);
            let subtype = tlv::child(bit, &[0xA1])
                .and_then(|bht| tlv::child_value(bht, &[0x82]))
                .and_then(|v| v.first().copied())
                .unwrap_or(0);
            let code = card::subtype_position(subtype);
            let st = ins
                .pins
                .iter()
                .find(|s| s.biometric && s.reference == reference);
            ins.fingers.push(Finger {
                reference,
                position_code: code,
                position: FingerPosition::from_code(code)
                    .map(|f| f.as_str().to_string())
                    .unwrap_or_else(|| format!("finger code {code}")),
                tries_left: st.map(|s| s.tries_left),
                try_limit: st.map(|s| s.try_limit),
            });
        }
    }
}

/// The security object's signature chain and the hashes it vouches for.
fn security_object(
    ins: &mut Inspection,
    p: &Profile,
    dgs: &BTreeMap<u8, Soft>,
    sod: &Soft,
    chain: &[Vec<u8>],
) {
    let now = SystemTime::now();
    match sod {
        Ok(b) => match pki::verify_sod(b, chain, now) {
            Ok(s) => {
                ins.push(
                    "security object",
                    Ok("signed by the document signer; chain to the CA verified".into()),
                );
                let mut bad = Vec::new();
                for n in &p.sod_data_groups {
                    match (s.hashes.get(n), dgs.get(n)) {
                        (Some(h), Some(Ok(b))) if h.as_slice() == sha256(b) => {}
                        (Some(_), Some(Ok(_))) => bad.push(format!("DG{n} was changed")),
                        (None, _) => bad.push(format!("no hash for DG{n}")),
                        (_, _) => bad.push(format!("DG{n} could not be read")),
                    }
                }
                ins.push(
                    "data group hashes",
                    if bad.is_empty() {
                        Ok(format!(
                            "DG{} match the security object",
                            p.sod_data_groups
                                .iter()
                                .map(u8::to_string)
                                .collect::<Vec<_>>()
                                .join(", DG")
                        ))
                    } else {
                        Err(bad.join("; "))
                    },
                );
            }
            Err(e) => ins.push("security object", Err(e.to_string())),
        },
        Err(e) => ins.push("security object", Err(e.clone())),
    }
}

/// Each certificate against the CA and the card's key, and a fresh
/// challenge signed by the authentication key.
fn certificates_and_proof(
    ch: &mut Channel,
    ins: &mut Inspection,
    p: &Profile,
    certs: &BTreeMap<u8, Soft>,
    points: &BTreeMap<u8, Soft>,
    chain: &[Vec<u8>],
) -> Result<(), CardError> {
    let now = SystemTime::now();
    let rng = SystemRandom::new();
    for k in &p.keys {
        let cert = match certs.get(&k.reference) {
            Some(Ok(c)) => c.clone(),
            Some(Err(e)) => {
                ins.push(&format!("{} certificate", k.name), Err(e.clone()));
                continue;
            }
            None => continue,
        };
        ins.certificates.push(CardCert {
            key: k.name.clone(),
            summary: pki::describe_certificate(&cert).ok(),
            der: cert.clone(),
        });
        let profile = match k.certificate {
            CertKind::Authentication => pki::CertProfile::Authentication,
            CertKind::Signature => pki::CertProfile::Signature,
        };
        let checked = match points.get(&k.reference) {
            Some(Ok(pt)) => pki::check_certificate(&cert, pt, profile, chain, now)
                .map(|_| {
                    "issued by the CA for this card's key; usage and validity right".to_string()
                })
                .map_err(|e| e.to_string()),
            Some(Err(e)) => Err(format!("reading the card's public key: {e}")),
            None => Err("no public key".into()),
        };
        ins.push(&format!("{} certificate", k.name), checked);
        if k.usage != KeyUsage::Authenticate {
            continue;
        }
        let mut challenge = [0u8; 32];
        if rng.fill(&mut challenge).is_err() {
            ins.push(
                &format!("{} key proof", k.name),
                Err("the random generator failed".into()),
            );
            continue;
        }
        let sig = ch.converse(async |io| {
            card::select_aid(io, p, &p.pki_aid).await?;
            // A card whose PINs come from the factory wants the key's PIN
            // even for this; the issuer knows the factory value.
            card::factory_pin_for_key(io, p, k).await?;
            card::sign_digest(io, k, &sha256(&challenge))
                .await
                .map_err(CardError::from)
        });
        let proof = match sig {
            Ok(sig) => verify_with_cert(&cert, &challenge, &sig)
                .map(|_| "the card signed a fresh 32-byte challenge; it verifies with the certificate's key".to_string()),
            Err(e) if e.is_transport() => return Err(e),
            Err(e) => Err(e.to_string()),
        };
        ins.push(&format!("{} key proof", k.name), proof);
    }
    Ok(())
}

/// Check an ECDSA P-256 signature (r ‖ s) over `message` with the key in `cert`.
pub fn verify_with_cert(cert: &[u8], message: &[u8], sig: &[u8]) -> Result<(), String> {
    let point = pki::certificate_public_key(cert)
        .map_err(|e| format!("cannot take the public key from the certificate: {e}"))?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point)
        .verify(message, sig)
        .map_err(|_| "the signature does not verify with the certificate's public key".to_string())
}

/// What the card said to a live fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum FingerResult {
    Match,
    NoMatch { tries_left: u8 },
    Blocked,
}

/// VERIFY the holder's live template (compact card format) against
/// biometric reference `reference`.
pub fn verify_finger(
    ch: &mut Channel,
    p: &Profile,
    reference: u8,
    minutiae: &Secret,
) -> Result<FingerResult, CardError> {
    let sw = ch.converse(async |io| {
        card::select_aid(io, p, &p.identity_aid).await?;
        card::verify_finger(io, p, reference, minutiae).await
    })?;
    finger_result(reference, sw)
}

/// [`verify_finger`], also giving the card's status word and, from a card
/// that reports it for diagnostics, the comparison score (never for the
/// holder's eyes).
pub fn verify_finger_diagnosed(
    ch: &mut Channel,
    p: &Profile,
    reference: u8,
    minutiae: &Secret,
) -> Result<(FingerResult, StatusWord, Option<card::MatchDiagnostics>), CardError> {
    let (sw, debug) = ch.converse(async |io| {
        card::select_aid(io, p, &p.identity_aid).await?;
        card::verify_finger_diagnosed(io, p, reference, minutiae).await
    })?;
    Ok((finger_result(reference, sw)?, sw, debug))
}

fn finger_result(reference: u8, sw: StatusWord) -> Result<FingerResult, CardError> {
    match sw {
        StatusWord::Ok => Ok(FingerResult::Match),
        StatusWord::WrongPin { retries: 0 } | StatusWord::AuthenticationBlocked => {
            Ok(FingerResult::Blocked)
        }
        StatusWord::WrongPin { retries } => Ok(FingerResult::NoMatch {
            tries_left: retries,
        }),
        sw => Err(CardError::Refused {
            what: format!("fingerprint VERIFY (reference {reference:02X})"),
            sw,
        }),
    }
}

/// The holder's new values replace the transport values: CHANGE
/// REFERENCE DATA with P1=01 (new value only), which the card allows for a
/// PIN in transport state once a fingerprint matched in this session.
/// The changes are one transaction; if the card was reset since the
/// fingerprint match (another process, a pulled card), the match is gone
/// and the card answers 6982, which the counter reports.
pub fn set_pins(ch: &mut Channel, p: &Profile, values: &[(u8, &Secret)]) -> Result<(), CardError> {
    ch.converse(async |io| {
        for (reference, v) in values {
            // A card that comes with factory PINs wants the old value.
            let mut vars = Vars::new()
                .byte("pin_reference", *reference)
                .secret("new_pin", &p.pin_block_of(v));
            if let Some(old) = p.factory_pin(*reference) {
                vars = vars.secret("old_pin", &p.pin_block_of(old));
            }
            let r = card::send(io, &p.commands, Step::SetPin, &vars).await?;
            if r.sw != StatusWord::Ok {
                return Err(CardError::Refused {
                    what: format!("CHANGE REFERENCE DATA (reference {reference:02X})"),
                    sw: r.sw,
                });
            }
        }
        Ok(())
    })
}

/// The profile's `activate` on the MF: personalized → activated. The
/// reference card allows it only after a fingerprint match in this
/// session, with no PIN but the PUK in transport state. A card that wants
/// its issuer for it (6982; the domestic card's SET STATUS) gets it over
/// its security domain's secure channel when the profile names one and
/// its keys are at hand.
pub fn activate(
    ch: &mut Channel,
    p: &Profile,
    scp03: Option<&crate::scp03::keyfile::Scp03Keys>,
) -> Result<LifeCycle, CardError> {
    let step = |ch: &mut Channel| {
        ch.converse(async |io| {
            let sw = card::life_cycle_step(io, p, Step::Activate).await?;
            Ok::<_, ExchangeError>((sw, card::life_cycle(io, p).await?))
        })
    };
    let (mut sw, mut lc) = step(ch)?;
    if let (StatusWord::SecurityNotSatisfied, Some(sd), Some(keys)) =
        (sw, &p.security_domain, scp03)
    {
        let o = sd.options();
        crate::scp03::link::open(ch, keys, &o).map_err(|e| CardError::Refused {
            what: format!("ACTIVATE over the security domain (opening it: {e})"),
            sw,
        })?;
        let r = step(ch);
        crate::scp03::link::close(ch, &o);
        (sw, lc) = r?;
    }
    if sw != StatusWord::Ok {
        return Err(CardError::Refused {
            what: "ACTIVATE (holder activation)".into(),
            sw,
        });
    }
    Ok(lc)
}

/// What the test signature showed.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureProof {
    /// SHA-256 of the test message, hex (the message is random).
    pub digest: String,
    /// The signature verified with the certificate's key (ring).
    pub verified: bool,
    /// What the card answered to a second signature without the PIN.
    pub without_pin: String,
}

/// Sign a fresh random message with the signature key after VERIFY of the
/// signature PIN, check it against the signature certificate, then ask
/// again without the PIN: the card must refuse (one PIN entry per
/// signature).
pub fn test_signature(
    ch: &mut Channel,
    p: &Profile,
    pin: &Secret,
    cert: &[u8],
) -> Result<SignatureProof, CardError> {
    let k = p
        .key(KeyUsage::Sign)
        .ok_or_else(|| CardError::Other("the profile has no signature key".into()))?;
    let mut message = [0u8; 32];
    SystemRandom::new()
        .fill(&mut message)
        .map_err(|_| CardError::Other("the random generator failed".into()))?;
    let d = sha256(&message);
    let pin_ref = p.signature_pin.reference;
    let sig = ch.converse(async |io| {
        card::select_aid(io, p, &p.pki_aid).await?;
        let r = card::send(
            io,
            &p.commands,
            Step::VerifyPin,
            &Vars::new()
                .byte("pin_reference", pin_ref)
                .secret("pin", &p.pin_block_of(pin)),
        )
        .await?;
        if r.sw != StatusWord::Ok {
            return Err(CardError::Refused {
                what: "VERIFY signature PIN".into(),
                sw: r.sw,
            });
        }
        card::sign_digest(io, k, &d).await.map_err(CardError::from)
    })?;
    verify_with_cert(cert, &message, &sig).map_err(CardError::Other)?;
    let again = ch.converse(async |io| {
        card::select_aid(io, p, &p.pki_aid).await?;
        Ok::<_, CardError>(card::sign_digest(io, k, &d).await)
    })?;
    let without_pin = match again {
        Err(StepError::Refused(sw)) => sw,
        Ok(_) => {
            return Err(CardError::Other(
                "the card signed a second time without the signature PIN".into(),
            ))
        }
        Err(StepError::Exchange(e)) => return Err(e.into()),
    };
    Ok(SignatureProof {
        digest: hex::compact(&d),
        verified: true,
        without_pin: without_pin.to_string(),
    })
}

/// What RESET RETRY COUNTER did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum UnblockResult {
    Done,
    /// The PUK was refused; tries left on the PUK.
    WrongPuk {
        tries_left: u8,
    },
    PukBlocked,
}

/// RESET RETRY COUNTER with the PUK and the new PIN (P1=00).
pub fn unblock(
    ch: &mut Channel,
    p: &Profile,
    pin_reference: u8,
    puk: &Secret,
    new_pin: &Secret,
) -> Result<UnblockResult, CardError> {
    let sw = ch.converse(async |io| {
        card::select_mf(io, p).await?;
        let vars = Vars::new()
            .byte("pin_reference", pin_reference)
            .secret("puk", &p.pin_block_of(puk))
            .secret("new_pin", &p.pin_block_of(new_pin));
        Ok::<_, ExchangeError>(
            card::send(io, &p.commands, Step::ResetRetryCounter, &vars)
                .await?
                .sw,
        )
    })?;
    match sw {
        StatusWord::Ok => Ok(UnblockResult::Done),
        StatusWord::WrongPin { retries: 0 } | StatusWord::AuthenticationBlocked => {
            Ok(UnblockResult::PukBlocked)
        }
        StatusWord::WrongPin { retries } => Ok(UnblockResult::WrongPuk {
            tries_left: retries,
        }),
        sw => Err(CardError::Refused {
            what: format!("RESET RETRY COUNTER (reference {pin_reference:02X})"),
            sw,
        }),
    }
}

/// The PUK the issuer keeps for a card once it is activated: like the
/// transport values, derived from the issuer key and the national ID, but
/// with its own label, so knowing the transport PUK (which travelled with
/// the card) does not give it.
/// `None` for a card without a PUK.
pub fn issuer_puk(key: &IssuerKey, p: &Profile, national_id: &str) -> Option<Secret> {
    p.puk.map(|puk| {
        key.derived_pin(
            b"cardsmith issuer PUK",
            puk.reference,
            national_id,
            puk.transport_digits,
        )
    })
}
