//! The card side of the module: what it asks a card, each step one PC/SC
//! transaction ([`Channel::run`]) over cardsmith's transport, every
//! number from the card's profile.

use cardsmith_host::apdu::StatusWord;
use cardsmith_host::perso::card::{self as pcard, LifeCycle, RefStatus};
use cardsmith_host::perso::commands::Step;
use cardsmith_host::perso::profile::{KeySpec, PinSpec, Profile};
use cardsmith_host::script::template::Vars;
use cardsmith_host::secret::Secret;
use cardsmith_host::transport::pcsc::{ConnectOptions, PcscTransport};
use cardsmith_host::transport::{
    Channel, ExchangeError, ExchangeOptions, Protocol, Session, Transport, TransportError,
};
use cryptoki_sys::*;

/// A PC/SC connection that leaves the card as it is when it ends. The
/// module is a guest: it must not reset a card it looked at (the `pcsc`
/// crate resets on drop), nor, for another application's sake, one whose
/// PIN the holder just gave.
struct Guest(Option<PcscTransport>);

impl Guest {
    fn inner(&mut self) -> Result<&mut PcscTransport, TransportError> {
        self.0.as_mut().ok_or(TransportError::NoReaders)
    }
}

impl Transport for Guest {
    fn begin(&mut self) -> Result<Box<dyn Session + '_>, TransportError> {
        self.inner()?.begin()
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), TransportError> {
        self.inner()?.reconnect(reset)
    }
    fn atr(&self) -> Vec<u8> {
        self.0.as_ref().map(|t| t.atr()).unwrap_or_default()
    }
    fn protocol(&self) -> Protocol {
        self.0.as_ref().map_or(Protocol::T1, |t| t.protocol())
    }
    fn reader(&self) -> String {
        self.0.as_ref().map(|t| t.reader()).unwrap_or_default()
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.disconnect(false);
        }
    }
}

/// The PKCS#11 code for a failed exchange: the card or reader went away,
/// or the device failed.
pub fn rv_of(e: &ExchangeError) -> CK_RV {
    match e {
        ExchangeError::Transport(t) if t.is_absence() => CKR_DEVICE_REMOVED,
        _ => CKR_DEVICE_ERROR,
    }
}

/// Connect to the card in `reader` (its exact PC/SC name).
pub fn connect(reader: &str) -> Result<Channel, CK_RV> {
    let t = PcscTransport::connect(Some(reader), ConnectOptions::default()).map_err(|e| {
        if e.is_absence() {
            CKR_TOKEN_NOT_PRESENT
        } else {
            CKR_DEVICE_ERROR
        }
    })?;
    let mut ch = Channel::new(Box::new(Guest(Some(t))), ExchangeOptions::default());
    // Other applications share the card between this module's
    // transactions: every operation selects what it needs.
    ch.keep_selection(false);
    Ok(ch)
}

/// One of the card's key pairs, as the profile names it, with what the
/// card holds for it.
#[derive(Debug, Clone)]
pub struct CardKey {
    pub spec: KeySpec,
    /// The certificate (DER); `None` when its EF is empty or unreadable.
    pub cert: Option<Vec<u8>>,
    /// The uncompressed P-256 point (65 bytes).
    pub point: Vec<u8>,
}

/// What the module learned from a card of one of its profiles.
#[derive(Debug, Clone)]
pub struct Found {
    pub profile: usize,
    pub serial: [u8; 8],
    pub life_cycle: LifeCycle,
    pub keys: Vec<CardKey>,
}

/// Whether the card holds a certificate: an EF never written is all
/// zeros or all FF.
fn certificate(data: Vec<u8>) -> Option<Vec<u8>> {
    (data.first() == Some(&0x30)).then_some(data)
}

/// Is the card in `ch` one of `profiles`' cards, personalized or
/// activated? Only the profiles that name the card's ATR (`[card] atr`,
/// `atr_prefix`, `historical_bytes`) are tried, as the line and the
/// counter do: a card none of them describes gets no command at all.
/// Each is tried in one transaction: SELECT of its PKI application, then
/// serial, life cycle, certificates and public keys.
pub fn probe(ch: &mut Channel, profiles: &[Profile]) -> Result<Option<Found>, CK_RV> {
    let atr = ch.atr();
    for (i, p) in profiles.iter().enumerate() {
        if !p.recognizes.recognizes(&atr) {
            continue;
        }
        let r = ch.converse(async |io| {
            let sel = pcard::send(
                io,
                &p.commands,
                Step::SelectApplication,
                &Vars::new().bytes("aid", &p.pki_aid),
            )
            .await?;
            if !sel.sw.is_ok() {
                return Ok(None);
            }
            pcard::select_mf(io, p).await?;
            let serial = pcard::serial(io, p).await?;
            let life_cycle = pcard::life_cycle(io, p).await?;
            if !matches!(life_cycle, LifeCycle::Personalized | LifeCycle::Activated) {
                return Ok(None);
            }
            pcard::select_aid(io, p, &p.pki_aid).await?;
            let mut keys = Vec::new();
            for k in &p.keys {
                let cert = pcard::read_personal_ef(io, p, k.certificate_fid)
                    .await
                    .ok()
                    .and_then(certificate);
                pcard::select_aid(io, p, &p.pki_aid).await?;
                let point = pcard::read_public_key(io, k).await?;
                keys.push(CardKey {
                    spec: k.clone(),
                    cert,
                    point,
                });
            }
            Ok::<_, ExchangeError>(Some(Found {
                profile: i,
                serial,
                life_cycle,
                keys,
            }))
        });
        match r {
            Ok(Some(f)) => return Ok(Some(f)),
            Ok(None) => continue,
            // A card that answers another profile's commands wrongly is
            // simply not of that profile.
            Err(ExchangeError::Transport(t)) if t.is_absence() => return Err(CKR_DEVICE_REMOVED),
            Err(ExchangeError::Transport(_)) => return Err(CKR_DEVICE_ERROR),
            Err(_) => continue,
        }
    }
    Ok(None)
}

/// What the token flags say of a PIN (CKF_USER_PIN_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PinState {
    /// The holder has set it (not the transport or factory value).
    pub initialized: bool,
    /// A wrong value was given since the last right one.
    pub count_low: bool,
    pub final_try: bool,
    pub locked: bool,
}

impl PinState {
    /// From the card's status list entry.
    fn of_status(s: &RefStatus) -> PinState {
        PinState {
            initialized: !s.transport,
            count_low: s.tries_left < s.try_limit,
            final_try: s.tries_left == 1,
            locked: s.blocked || s.tries_left == 0,
        }
    }

    /// From the card's answer to the profile's `pin_status` (VERIFY
    /// without data), on a card without a status list. Whether the holder
    /// set the PIN is the life cycle's to say: a card keeps its factory
    /// PINs until it is activated for its holder. The try limit is not
    /// known, so a count left is never called low, only the last one.
    fn of_answer(sw: StatusWord, activated: bool) -> Option<PinState> {
        let mut st = PinState {
            initialized: activated,
            ..PinState::default()
        };
        match sw {
            // Verified in this card session: the last try was right.
            StatusWord::Ok => {}
            StatusWord::WrongPin { retries: 0 } | StatusWord::AuthenticationBlocked => {
                st.locked = true;
            }
            StatusWord::WrongPin { retries } => st.final_try = retries == 1,
            StatusWord::ReferenceDataNotUsable => st.initialized = false,
            // Any other answer says nothing about the PIN.
            _ => return None,
        }
        Some(st)
    }
}

/// PIN `pin`'s state on the card: from the profile's status list, or,
/// for a card without one, from its `pin_status` step; `None` when the
/// profile has neither (or the card's answer says nothing), and the token
/// then claims nothing about the PIN but what the life cycle says.
pub fn pin_status(
    ch: &mut Channel,
    p: &Profile,
    pin: &PinSpec,
    life_cycle: LifeCycle,
) -> Result<Option<PinState>, CK_RV> {
    let activated = life_cycle == LifeCycle::Activated;
    if p.status_tag.is_none() {
        if !p.commands.has(Step::PinStatus) {
            return Ok(Some(PinState {
                initialized: activated,
                ..PinState::default()
            }));
        }
        let sw = ch
            .converse(async |io| {
                pcard::select_aid(io, p, &p.pki_aid).await?;
                let vars = Vars::new().byte("pin_reference", pin.reference);
                Ok::<_, ExchangeError>(
                    pcard::send(io, &p.commands, Step::PinStatus, &vars)
                        .await?
                        .sw,
                )
            })
            .map_err(|e| rv_of(&e))?;
        return Ok(PinState::of_answer(sw, activated));
    }
    let list = ch
        .converse(async |io| {
            pcard::select_mf(io, p).await?;
            pcard::status_list(io, p).await
        })
        .map_err(|e| rv_of(&e))?;
    Ok(list
        .into_iter()
        .find(|s| !s.biometric && s.reference & 0x0F == pin.reference & 0x0F)
        .map(|s| PinState::of_status(&s)))
}

/// The PKCS#11 code for the card's answer to VERIFY.
pub fn verify_rv(sw: StatusWord) -> CK_RV {
    match sw {
        StatusWord::Ok => CKR_OK,
        StatusWord::WrongPin { retries: 0 } | StatusWord::AuthenticationBlocked => CKR_PIN_LOCKED,
        StatusWord::WrongPin { .. } => CKR_PIN_INCORRECT,
        // The holder has not replaced the transport PIN yet (pickup).
        StatusWord::ReferenceDataNotUsable => CKR_USER_PIN_NOT_INITIALIZED,
        StatusWord::WrongLength => CKR_PIN_LEN_RANGE,
        _ => CKR_DEVICE_ERROR,
    }
}

/// VERIFY `pin` against PIN `reference` in the application `aid`; when
/// `reset_after` and it matched, the card forgets it again at once (the
/// PIN is given again with the operation it is for).
pub fn verify_pin(
    ch: &mut Channel,
    p: &Profile,
    aid: &[u8],
    reference: u8,
    pin: &[u8],
    reset_after: bool,
) -> Result<(), CK_RV> {
    let sw = ch
        .converse(async |io| {
            pcard::select_aid(io, p, aid).await?;
            let sw = verify(io, p, reference, pin).await?;
            if sw.is_ok() && reset_after {
                logout(io, p, reference).await;
            }
            Ok::<_, ExchangeError>(sw)
        })
        .map_err(|e| rv_of(&e))?;
    if sw.is_ok() && reset_after {
        reset_without_logout(ch, p);
    }
    match verify_rv(sw) {
        CKR_OK => Ok(()),
        rv => Err(rv),
    }
}

/// Forget PIN `reference`'s verification (C_Logout). Best effort.
pub fn forget_pin(ch: &mut Channel, p: &Profile, aid: &[u8], reference: u8) {
    if p.commands.has(Step::PinLogout) {
        let _ = ch.converse(async |io| {
            pcard::select_aid(io, p, aid).await?;
            logout(io, p, reference).await;
            Ok::<_, ExchangeError>(())
        });
    } else {
        reset_without_logout(ch, p);
    }
}

/// A card whose profile has no `pin_logout` forgets its verified PINs
/// only when it is reset (docs/card-profile.md): reset it, so that a
/// PIN the holder gave for one login or one signature does not stay
/// verified for whoever uses the card next. Best effort: a card gone is
/// found gone by the next operation.
fn reset_without_logout(ch: &mut Channel, p: &Profile) {
    if !p.commands.has(Step::PinLogout) {
        let _ = ch.reconnect(true);
    }
}

/// The profile's `verify_pin`: the card's answer.
async fn verify(
    io: &cardsmith_host::transport::sansio::Io,
    p: &Profile,
    reference: u8,
    pin: &[u8],
) -> Result<StatusWord, ExchangeError> {
    let vars = Vars::new()
        .byte("pin_reference", reference)
        .secret("pin", &p.pin_block_of(&Secret::new(pin.to_vec())));
    Ok(pcard::send(io, &p.commands, Step::VerifyPin, &vars)
        .await?
        .sw)
}

/// The profile's `pin_logout`, when it has one. Best effort.
async fn logout(io: &cardsmith_host::transport::sansio::Io, p: &Profile, reference: u8) {
    if p.commands.has(Step::PinLogout) {
        let vars = Vars::new().byte("pin_reference", reference);
        let _ = pcard::send(io, &p.commands, Step::PinLogout, &vars).await;
    }
}

/// The PIN a signature needs before it, given again in the signature's
/// own transaction.
pub struct PinFirst<'a> {
    pub reference: u8,
    pub pin: &'a [u8],
}

/// Sign a 32-byte value with key `k` in one transaction: SELECT, the PIN
/// if one is given, MSE SET, then PSO COMPUTE DIGITAL SIGNATURE or
/// INTERNAL AUTHENTICATE. The raw r ‖ s.
pub fn sign(
    ch: &mut Channel,
    p: &Profile,
    k: &KeySpec,
    value: &[u8; 32],
    pin: Option<PinFirst<'_>>,
) -> Result<Vec<u8>, CK_RV> {
    ch.converse(async |io| {
        pcard::select_aid(io, p, &p.pki_aid).await?;
        if let Some(pf) = &pin {
            let sw = verify(io, p, pf.reference, pf.pin).await?;
            if !sw.is_ok() {
                return Ok(Err(verify_rv(sw)));
            }
        }
        let vars = Vars::new()
            .byte("key_reference", k.reference)
            .bytes("digest", value);
        // A refused command before the last (an MSE SET) is the device's
        // failure, not the holder's.
        let resp = match pcard::send(io, &k.commands, Step::Sign, &vars).await {
            Ok(r) => r,
            Err(ExchangeError::Status { .. }) => return Ok(Err(CKR_DEVICE_ERROR)),
            Err(e) => return Err(e),
        };
        Ok::<_, ExchangeError>(match resp.sw {
            StatusWord::Ok => {
                // In the encoding the profile names for this card.
                cardsmith_host::perso::encoding::raw_signature(k.signature_encoding, &resp.data)
                    .map_err(|_| CKR_DEVICE_ERROR)
            }
            // The card wants its PIN first.
            StatusWord::SecurityNotSatisfied => Err(CKR_USER_NOT_LOGGED_IN),
            StatusWord::AuthenticationBlocked => Err(CKR_PIN_LOCKED),
            _ => Err(CKR_FUNCTION_FAILED),
        })
    })
    .map_err(|e| rv_of(&e))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_answers_map_to_pkcs11_codes() {
        assert_eq!(
            verify_rv(StatusWord::WrongPin { retries: 2 }),
            CKR_PIN_INCORRECT
        );
        assert_eq!(
            verify_rv(StatusWord::WrongPin { retries: 0 }),
            CKR_PIN_LOCKED
        );
        assert_eq!(verify_rv(StatusWord::AuthenticationBlocked), CKR_PIN_LOCKED);
        assert_eq!(
            verify_rv(StatusWord::ReferenceDataNotUsable),
            CKR_USER_PIN_NOT_INITIALIZED
        );
        assert_eq!(verify_rv(StatusWord::WrongLength), CKR_PIN_LEN_RANGE);
        assert_eq!(verify_rv(StatusWord::Ok), CKR_OK);
    }

    #[test]
    fn a_pin_state_from_verify_without_data() {
        let st = |sw, activated| PinState::of_answer(sw, activated);
        // Verified, or tries left: the holder's PIN once activated, and
        // the count is never called low (the try limit is not known).
        assert_eq!(
            st(StatusWord::Ok, true),
            Some(PinState {
                initialized: true,
                ..PinState::default()
            })
        );
        assert_eq!(
            st(StatusWord::WrongPin { retries: 2 }, true),
            Some(PinState {
                initialized: true,
                ..PinState::default()
            })
        );
        // Before activation the factory value is in place.
        assert_eq!(
            st(StatusWord::WrongPin { retries: 3 }, false),
            Some(PinState::default())
        );
        let last = st(StatusWord::WrongPin { retries: 1 }, true).unwrap();
        assert!(last.final_try && !last.locked && !last.count_low);
        for sw in [
            StatusWord::WrongPin { retries: 0 },
            StatusWord::AuthenticationBlocked,
        ] {
            assert!(st(sw, true).unwrap().locked);
        }
        assert!(
            !st(StatusWord::ReferenceDataNotUsable, true)
                .unwrap()
                .initialized
        );
        // An answer that says nothing of the PIN claims nothing.
        assert_eq!(st(StatusWord::InsNotSupported, true), None);
    }
}
