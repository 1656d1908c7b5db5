//! The module's state and the PKCS#11 semantics: slots for PC/SC readers,
//! a token for a card of one of the profiles, sessions, login, object
//! search and signing. Everything here is safe Rust returning `CK_RV`
//! codes; `lib.rs` turns C pointers into these calls.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::time::Duration;

use cardsmith_host::perso::card::LifeCycle;
use cardsmith_host::perso::profile::{KeySpec, Profile};
use cardsmith_host::transport::Channel;
use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::card::{self, CardKey, Found, PinFirst, PinState};
use crate::objects::{self, Access, Attr, Kind};

pub type R<T> = Result<T, CK_RV>;

/// Longest PIN the module takes (the card checks its own bounds).
pub const MAX_PIN: usize = 64;

/// A card of one of the profiles, present in a reader.
pub struct Token {
    chan: Channel,
    event: u32,
    atr: Vec<u8>,
    pub found: Found,
    generation: u64,
    user: bool,
    /// The ID PIN, kept while logged in only when a key needs it given
    /// again in its own transaction (a profile whose key names the ID PIN).
    id_pin: Option<Zeroizing<Vec<u8>>>,
}

/// A PC/SC reader.
pub struct Slot {
    pub reader: String,
    listed: bool,
    pub token: Option<Token>,
    /// (event count, ATR) of the card in the reader that is no token, so
    /// that it is asked only once.
    not_ours: Option<(u32, Vec<u8>)>,
}

enum Input {
    /// CKM_ECDSA: the caller's hash.
    Raw(Vec<u8>),
    /// CKM_ECDSA_SHA*: the module hashes.
    Hash(ring::digest::Context),
}

struct SignOp {
    key: usize,
    /// What the mechanism makes of the data (CKM_ECDSA or CKM_ECDSA_SHA*).
    input: Input,
    /// The PIN given with CKU_CONTEXT_SPECIFIC for this signature.
    pin: Option<Zeroizing<Vec<u8>>>,
}

struct Session {
    slot: usize,
    generation: u64,
    rw: bool,
    find: Option<Vec<CK_OBJECT_HANDLE>>,
    sign: Option<SignOp>,
}

pub struct Module {
    profiles: Vec<Profile>,
    ctx: Option<pcsc::Context>,
    pub slots: Vec<Slot>,
    sessions: BTreeMap<CK_SESSION_HANDLE, Session>,
    next_session: CK_SESSION_HANDLE,
    generations: u64,
}

/// The key's PIN reference and how the key may be used (docs/pkcs11.md,
/// "PINs").
pub fn access(p: &Profile, k: &KeySpec) -> Access {
    let id = p.id_pin.number();
    match k.pin {
        Some(n) if n != id => Access {
            private: false,
            always_authenticate: true,
        },
        Some(_) => Access {
            private: true,
            always_authenticate: k.pin_per_use,
        },
        None => Access {
            private: true,
            always_authenticate: false,
        },
    }
}

/// The reference of PIN number `n` of profile `p`.
fn pin_reference(p: &Profile, n: u8) -> Option<u8> {
    p.pin_by_number(n).map(|s| s.reference)
}

/// Whether PIN `reference` of a card still holds its factory value: a
/// card whose PINs come from the factory keeps them until it is activated
/// for its holder, and its factory values are no secret. Such a PIN is
/// not the holder's, and the module does not try it (it would match).
fn factory_value_in_place(p: &Profile, life_cycle: LifeCycle, reference: u8) -> bool {
    p.factory_pin(reference).is_some() && life_cycle != LifeCycle::Activated
}

/// The 32 bytes the card signs: the hash (the caller's, or the module's
/// SHA-2), taken as ECDSA takes it for a 256-bit curve (FIPS 186-4 §6.4):
/// the leftmost 256 bits of a longer hash; a shorter one is the same
/// integer with leading zeros.
pub fn value_to_sign(mech: CK_MECHANISM_TYPE, data: &[u8]) -> R<[u8; 32]> {
    let alg = match mech {
        CKM_ECDSA => None,
        CKM_ECDSA_SHA256 => Some(&ring::digest::SHA256),
        CKM_ECDSA_SHA384 => Some(&ring::digest::SHA384),
        CKM_ECDSA_SHA512 => Some(&ring::digest::SHA512),
        _ => return Err(CKR_MECHANISM_INVALID),
    };
    let hashed;
    let h: &[u8] = match alg {
        Some(a) => {
            hashed = ring::digest::digest(a, data);
            hashed.as_ref()
        }
        None => data,
    };
    finish_value(h)
}

fn finish_value(h: &[u8]) -> R<[u8; 32]> {
    // The hash lengths of SHA-1, SHA-224, SHA-256, SHA-384 and SHA-512.
    if !matches!(h.len(), 20 | 28 | 32 | 48 | 64) {
        return Err(CKR_DATA_LEN_RANGE);
    }
    // Longer hashes are cut to the curve's 32 bytes (FIPS 186-4 §6.4),
    // shorter ones right-aligned.
    let mut v = [0u8; 32];
    let take = h.len().min(32);
    let src = h.get(..take).unwrap_or_default();
    if let Some(dst) = v.get_mut(32 - take..) {
        dst.copy_from_slice(src);
    }
    Ok(v)
}

/// A raw ECDSA P-256 signature is 64 bytes, r ‖ s.
pub const SIGNATURE_LEN: usize = 64;

impl Module {
    pub fn new(profiles: Vec<Profile>) -> Module {
        Module {
            profiles,
            ctx: None,
            slots: Vec::new(),
            sessions: BTreeMap::new(),
            next_session: 1,
            generations: 0,
        }
    }

    fn context(&mut self) -> Option<&pcsc::Context> {
        if self.ctx.is_none() {
            self.ctx = pcsc::Context::establish(pcsc::Scope::User).ok();
        }
        self.ctx.as_ref()
    }

    fn service_gone(&mut self, e: pcsc::Error) {
        if matches!(
            e,
            pcsc::Error::NoService | pcsc::Error::ServiceStopped | pcsc::Error::InvalidHandle
        ) {
            self.ctx = None;
        }
    }

    /// The readers PC/SC lists now (none when pcscd is not running).
    fn reader_names(&mut self) -> Vec<String> {
        let Some(ctx) = self.context() else {
            return Vec::new();
        };
        match ctx.list_readers_owned() {
            Ok(v) => v
                .into_iter()
                .map(|n| n.to_string_lossy().into_owned())
                .collect(),
            Err(e) => {
                self.service_gone(e);
                Vec::new()
            }
        }
    }

    /// Whether the reader holds a card, its event count and ATR.
    fn reader_state(&mut self, name: &str) -> Option<(u32, Vec<u8>)> {
        let cname = CString::new(name).ok()?;
        let ctx = self.context()?;
        let mut rs = [pcsc::ReaderState::new(cname, pcsc::State::UNAWARE)];
        if let Err(e) = ctx.get_status_change(Duration::ZERO, &mut rs) {
            self.service_gone(e);
            return None;
        }
        let st = rs[0].event_state();
        if !st.contains(pcsc::State::PRESENT) || st.contains(pcsc::State::MUTE) {
            return None;
        }
        Some((rs[0].event_count(), rs[0].atr().to_vec()))
    }

    /// Bring slot `i` up to date with its reader: a card gone drops the
    /// token (its sessions then answer CKR_DEVICE_REMOVED), a new card is
    /// asked whether it is one of the profiles' cards.
    fn refresh(&mut self, i: usize) {
        let reader = match self.slots.get(i) {
            Some(s) => s.reader.clone(),
            None => return,
        };
        let state = self.reader_state(&reader);
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        let Some((event, atr)) = state else {
            slot.token = None;
            slot.not_ours = None;
            return;
        };
        if let Some(t) = &slot.token {
            if t.event == event && t.atr == atr {
                return;
            }
            slot.token = None;
        }
        if slot.not_ours.as_ref() == Some(&(event, atr.clone())) {
            return;
        }
        let Ok(mut chan) = card::connect(&reader) else {
            return;
        };
        match card::probe(&mut chan, &self.profiles) {
            Ok(Some(found)) => {
                self.generations += 1;
                let generation = self.generations;
                let Some(slot) = self.slots.get_mut(i) else {
                    return;
                };
                slot.token = Some(Token {
                    chan,
                    event,
                    atr,
                    found,
                    generation,
                    user: false,
                    id_pin: None,
                });
            }
            Ok(None) => {
                if let Some(slot) = self.slots.get_mut(i) {
                    slot.not_ours = Some((event, atr));
                }
            }
            // Gone while it was read, or a transient failure: ask again
            // next time.
            Err(_) => {}
        }
    }

    /// Update the slot list from PC/SC; the slot IDs of `token_present`
    /// or all listed readers.
    pub fn slot_list(&mut self, token_present: bool) -> Vec<CK_SLOT_ID> {
        let names = self.reader_names();
        for s in &mut self.slots {
            s.listed = names.contains(&s.reader);
            if !s.listed {
                s.token = None;
            }
        }
        for n in names {
            if !self.slots.iter().any(|s| s.reader == n) {
                self.slots.push(Slot {
                    reader: n,
                    listed: true,
                    token: None,
                    not_ours: None,
                });
            }
        }
        let mut out = Vec::new();
        for i in 0..self.slots.len() {
            if !self.slots.get(i).is_some_and(|s| s.listed) {
                continue;
            }
            if token_present {
                self.refresh(i);
                if self.token_of(i).is_none() {
                    continue;
                }
            }
            out.push(i as CK_SLOT_ID);
        }
        out
    }

    fn token_of(&self, i: usize) -> Option<&Token> {
        self.slots.get(i).and_then(|s| s.token.as_ref())
    }

    fn logged_in(&self, i: usize) -> bool {
        self.token_of(i).is_some_and(|t| t.user)
    }

    fn drop_token(&mut self, i: usize) {
        if let Some(s) = self.slots.get_mut(i) {
            s.token = None;
        }
    }

    fn session(&self, h: CK_SESSION_HANDLE) -> R<&Session> {
        self.sessions.get(&h).ok_or(CKR_SESSION_HANDLE_INVALID)
    }

    fn slot_index(&self, id: CK_SLOT_ID) -> R<usize> {
        usize::try_from(id)
            .ok()
            .filter(|i| *i < self.slots.len())
            .ok_or(CKR_SLOT_ID_INVALID)
    }

    /// Slot `id`, refreshed; whether it has a token.
    pub fn slot(&mut self, id: CK_SLOT_ID) -> R<&Slot> {
        let i = self.slot_index(id)?;
        self.refresh(i);
        self.slots.get(i).ok_or(CKR_SLOT_ID_INVALID)
    }

    pub fn profile_of(&self, t: &Token) -> R<&Profile> {
        self.profiles.get(t.found.profile).ok_or(CKR_GENERAL_ERROR)
    }

    /// The serial of the token in slot `id`, with the holder's ID PIN
    /// state on the card.
    pub fn token_info(&mut self, id: CK_SLOT_ID) -> R<([u8; 8], Option<PinState>)> {
        let i = self.slot_index(id)?;
        self.refresh(i);
        let profiles = &self.profiles;
        let slot = self.slots.get_mut(i).ok_or(CKR_SLOT_ID_INVALID)?;
        let Some(t) = slot.token.as_mut() else {
            return Err(CKR_TOKEN_NOT_PRESENT);
        };
        let p = profiles.get(t.found.profile).ok_or(CKR_GENERAL_ERROR)?;
        let status = match card::pin_status(&mut t.chan, p, &p.id_pin, t.found.life_cycle) {
            Ok(s) => s,
            Err(rv) => {
                if rv == CKR_DEVICE_REMOVED {
                    slot.token = None;
                }
                return Err(rv);
            }
        };
        Ok((t.found.serial, status))
    }

    pub fn open_session(&mut self, id: CK_SLOT_ID, flags: CK_FLAGS) -> R<CK_SESSION_HANDLE> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
        }
        let i = self.slot_index(id)?;
        self.refresh(i);
        let generation = self.token_of(i).ok_or(CKR_TOKEN_NOT_PRESENT)?.generation;
        let h = self.next_session;
        self.next_session += 1;
        self.sessions.insert(
            h,
            Session {
                slot: i,
                generation,
                rw: flags & CKF_RW_SESSION != 0,
                find: None,
                sign: None,
            },
        );
        Ok(h)
    }

    /// Log out of slot `i` when no session of it is left (PKCS#11: the
    /// login belongs to the application's sessions with the token).
    fn logout_if_idle(&mut self, i: usize) {
        if self.sessions.values().any(|s| s.slot == i) {
            return;
        }
        self.logout_slot(i);
    }

    fn logout_slot(&mut self, i: usize) {
        let profiles = &self.profiles;
        if let Some(t) = self.slots.get_mut(i).and_then(|s| s.token.as_mut()) {
            if t.user {
                t.user = false;
                t.id_pin = None;
                if let Some(p) = profiles.get(t.found.profile) {
                    card::forget_pin(&mut t.chan, p, &p.pki_aid, p.id_pin.reference);
                }
            }
        }
    }

    pub fn close_session(&mut self, h: CK_SESSION_HANDLE) -> R<()> {
        let s = self.sessions.remove(&h).ok_or(CKR_SESSION_HANDLE_INVALID)?;
        self.logout_if_idle(s.slot);
        Ok(())
    }

    pub fn close_all(&mut self, id: CK_SLOT_ID) -> R<()> {
        let i = self.slot_index(id)?;
        self.sessions.retain(|_, s| s.slot != i);
        self.logout_slot(i);
        Ok(())
    }

    /// The slot of session `h` whose token is still the one it was opened
    /// on: a card pulled (even if put back) is CKR_DEVICE_REMOVED.
    fn live(&mut self, h: CK_SESSION_HANDLE) -> R<usize> {
        let (i, generation) = self
            .sessions
            .get(&h)
            .map(|s| (s.slot, s.generation))
            .ok_or(CKR_SESSION_HANDLE_INVALID)?;
        self.refresh(i);
        match self.token_of(i) {
            Some(t) if t.generation == generation => Ok(i),
            _ => Err(CKR_DEVICE_REMOVED),
        }
    }

    /// A card operation failed: when the card is gone, so is the token.
    fn card_failed(&mut self, i: usize, rv: CK_RV) -> CK_RV {
        if rv == CKR_DEVICE_REMOVED {
            self.drop_token(i);
        }
        rv
    }

    pub fn session_info(&mut self, h: CK_SESSION_HANDLE) -> R<(CK_SLOT_ID, CK_STATE, CK_FLAGS)> {
        let i = self.live(h)?;
        let rw = self.session(h)?.rw;
        let user = self.logged_in(i);
        let state = match (rw, user) {
            (false, false) => CKS_RO_PUBLIC_SESSION,
            (false, true) => CKS_RO_USER_FUNCTIONS,
            (true, false) => CKS_RW_PUBLIC_SESSION,
            (true, true) => CKS_RW_USER_FUNCTIONS,
        };
        let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
        Ok((i as CK_SLOT_ID, state, flags))
    }

    pub fn login(
        &mut self,
        h: CK_SESSION_HANDLE,
        user_type: CK_USER_TYPE,
        pin: Zeroizing<Vec<u8>>,
    ) -> R<()> {
        let i = self.live(h)?;
        if pin.is_empty() || pin.len() > MAX_PIN {
            return Err(CKR_PIN_LEN_RANGE);
        }
        match user_type {
            CKU_USER => self.login_user(i, pin),
            CKU_CONTEXT_SPECIFIC => self.login_context(h, i, pin),
            CKU_SO => Err(CKR_USER_TYPE_INVALID),
            _ => Err(CKR_USER_TYPE_INVALID),
        }
    }

    fn login_user(&mut self, i: usize, pin: Zeroizing<Vec<u8>>) -> R<()> {
        let profiles = &self.profiles;
        let Some(t) = self.slots.get_mut(i).and_then(|s| s.token.as_mut()) else {
            return Err(CKR_DEVICE_REMOVED);
        };
        if t.user {
            return Err(CKR_USER_ALREADY_LOGGED_IN);
        }
        let p = profiles.get(t.found.profile).ok_or(CKR_GENERAL_ERROR)?;
        if factory_value_in_place(p, t.found.life_cycle, p.id_pin.reference) {
            return Err(CKR_USER_PIN_NOT_INITIALIZED);
        }
        let r = card::verify_pin(&mut t.chan, p, &p.pki_aid, p.id_pin.reference, &pin, false);
        if let Err(rv) = r {
            return Err(self.card_failed(i, rv));
        }
        let keep = t.found.keys.iter().any(|k| {
            k.spec.pin == Some(p.id_pin.number()) && !access(p, &k.spec).always_authenticate
        });
        t.user = true;
        t.id_pin = keep.then_some(pin);
        Ok(())
    }

    fn login_context(&mut self, h: CK_SESSION_HANDLE, i: usize, pin: Zeroizing<Vec<u8>>) -> R<()> {
        let key = match self.sessions.get(&h).and_then(|s| s.sign.as_ref()) {
            Some(op) => op.key,
            None => return Err(CKR_OPERATION_NOT_INITIALIZED),
        };
        let profiles = &self.profiles;
        let Some(t) = self.slots.get_mut(i).and_then(|s| s.token.as_mut()) else {
            return Err(CKR_DEVICE_REMOVED);
        };
        let p = profiles.get(t.found.profile).ok_or(CKR_GENERAL_ERROR)?;
        let spec = &t.found.keys.get(key).ok_or(CKR_KEY_HANDLE_INVALID)?.spec;
        if !access(p, spec).always_authenticate {
            return Err(CKR_OPERATION_NOT_INITIALIZED);
        }
        let reference = spec
            .pin
            .and_then(|n| pin_reference(p, n))
            .ok_or(CKR_GENERAL_ERROR)?;
        if factory_value_in_place(p, t.found.life_cycle, reference) {
            return Err(CKR_USER_PIN_NOT_INITIALIZED);
        }
        // The PIN is checked now, so a wrong one is told at once and uses
        // one try; the card forgets it again (its logout command, or a
        // reset), and the signature gives it once more in its own
        // transaction.
        if let Err(rv) = card::verify_pin(&mut t.chan, p, &p.pki_aid, reference, &pin, true) {
            return Err(self.card_failed(i, rv));
        }
        if let Some(op) = self.sessions.get_mut(&h).and_then(|s| s.sign.as_mut()) {
            op.pin = Some(pin);
        }
        Ok(())
    }

    pub fn logout(&mut self, h: CK_SESSION_HANDLE) -> R<()> {
        let i = self.live(h)?;
        if !self.logged_in(i) {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        self.logout_slot(i);
        Ok(())
    }

    /// The keys of the token of slot `i` with their access.
    fn keys(&self, i: usize) -> Vec<(CardKey, Access)> {
        match self.token_of(i) {
            Some(t) => match self.profiles.get(t.found.profile) {
                Some(p) => t
                    .found
                    .keys
                    .iter()
                    .map(|k| (k.clone(), access(p, &k.spec)))
                    .collect(),
                None => Vec::new(),
            },
            None => Vec::new(),
        }
    }

    /// The object `o` in the token of slot `i`, if it exists and the
    /// session may see it.
    fn object(&self, i: usize, o: CK_OBJECT_HANDLE) -> R<(CardKey, Access, Kind)> {
        let keys = self.keys(i);
        let user = self.logged_in(i);
        let (key, kind) = objects::parse_handle(o, keys.len()).ok_or(CKR_OBJECT_HANDLE_INVALID)?;
        let (k, a) = keys.get(key).cloned().ok_or(CKR_OBJECT_HANDLE_INVALID)?;
        if !objects::kinds(&k).contains(&kind) || (kind == Kind::PrivateKey && a.private && !user) {
            return Err(CKR_OBJECT_HANDLE_INVALID);
        }
        Ok((k, a, kind))
    }

    pub fn attributes(
        &mut self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
    ) -> R<impl Fn(CK_ATTRIBUTE_TYPE) -> Attr> {
        let i = self.live(h)?;
        let (k, a, kind) = self.object(i, o)?;
        Ok(move |t| objects::attribute(&k, a, kind, t))
    }

    pub fn find_init(
        &mut self,
        h: CK_SESSION_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> R<()> {
        let i = self.live(h)?;
        if self.session(h)?.find.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let user = self.logged_in(i);
        let mut found = Vec::new();
        for (n, (k, a)) in self.keys(i).into_iter().enumerate() {
            for kind in objects::kinds(&k) {
                if kind == Kind::PrivateKey && a.private && !user {
                    continue;
                }
                let matches = template
                    .iter()
                    .all(|(t, v)| objects::attribute(&k, a, kind, *t) == Attr::Value(v.clone()));
                if matches {
                    found.push(objects::handle(n, kind));
                }
            }
        }
        found.reverse();
        if let Some(s) = self.sessions.get_mut(&h) {
            s.find = Some(found);
        }
        Ok(())
    }

    pub fn find(&mut self, h: CK_SESSION_HANDLE, max: usize) -> R<Vec<CK_OBJECT_HANDLE>> {
        self.live(h)?;
        let s = self
            .sessions
            .get_mut(&h)
            .ok_or(CKR_SESSION_HANDLE_INVALID)?;
        let left = s.find.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let mut out = Vec::new();
        while out.len() < max {
            match left.pop() {
                Some(o) => out.push(o),
                None => break,
            }
        }
        Ok(out)
    }

    pub fn find_final(&mut self, h: CK_SESSION_HANDLE) -> R<()> {
        self.live(h)?;
        let s = self
            .sessions
            .get_mut(&h)
            .ok_or(CKR_SESSION_HANDLE_INVALID)?;
        s.find.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        Ok(())
    }

    /// Check that session `h` is a session of a present token (for the
    /// functions the token does not offer).
    pub fn check(&mut self, h: CK_SESSION_HANDLE) -> R<()> {
        self.live(h).map(|_| ())
    }

    pub fn sign_init(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: CK_MECHANISM_TYPE,
        has_param: bool,
        o: CK_OBJECT_HANDLE,
    ) -> R<()> {
        let i = self.live(h)?;
        if self.session(h)?.sign.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        if !objects::MECHANISMS.contains(&mech) {
            return Err(CKR_MECHANISM_INVALID);
        }
        if has_param {
            return Err(CKR_MECHANISM_PARAM_INVALID);
        }
        let keys = self.keys(i);
        let user = self.logged_in(i);
        let (key, kind) = objects::parse_handle(o, keys.len()).ok_or(CKR_KEY_HANDLE_INVALID)?;
        let (k, a) = keys.get(key).ok_or(CKR_KEY_HANDLE_INVALID)?;
        if !objects::kinds(k).contains(&kind) || kind == Kind::Certificate {
            return Err(CKR_KEY_HANDLE_INVALID);
        }
        if kind != Kind::PrivateKey {
            return Err(CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        if a.private && !user {
            // The object is not visible to this session either.
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        let input = match mech {
            CKM_ECDSA => Input::Raw(Vec::new()),
            CKM_ECDSA_SHA256 => Input::Hash(ring::digest::Context::new(&ring::digest::SHA256)),
            CKM_ECDSA_SHA384 => Input::Hash(ring::digest::Context::new(&ring::digest::SHA384)),
            _ => Input::Hash(ring::digest::Context::new(&ring::digest::SHA512)),
        };
        if let Some(s) = self.sessions.get_mut(&h) {
            s.sign = Some(SignOp {
                key,
                input,
                pin: None,
            });
        }
        Ok(())
    }

    fn sign_op(&mut self, h: CK_SESSION_HANDLE) -> R<&mut SignOp> {
        self.sessions
            .get_mut(&h)
            .ok_or(CKR_SESSION_HANDLE_INVALID)?
            .sign
            .as_mut()
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)
    }

    /// Whether a signing operation is active (for C_Sign's length query,
    /// which answers without touching the card).
    pub fn sign_active(&mut self, h: CK_SESSION_HANDLE) -> R<()> {
        self.live(h)?;
        self.sign_op(h).map(|_| ())
    }

    pub fn sign_end(&mut self, h: CK_SESSION_HANDLE) {
        if let Some(s) = self.sessions.get_mut(&h) {
            s.sign = None;
        }
    }

    pub fn sign_update(&mut self, h: CK_SESSION_HANDLE, data: &[u8]) -> R<()> {
        self.live(h)?;
        let op = self.sign_op(h)?;
        match &mut op.input {
            Input::Raw(v) => {
                if v.len() + data.len() > 64 {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                v.extend_from_slice(data);
            }
            Input::Hash(c) => c.update(data),
        }
        Ok(())
    }

    /// Finish the signature over what `sign_update` gave (and `last`).
    /// The operation ends, whatever the outcome.
    pub fn sign_final(&mut self, h: CK_SESSION_HANDLE, last: &[u8]) -> R<Vec<u8>> {
        let r = self.sign_inner(h, last);
        self.sign_end(h);
        r
    }

    fn sign_inner(&mut self, h: CK_SESSION_HANDLE, last: &[u8]) -> R<Vec<u8>> {
        let i = self.live(h)?;
        let op = self.sign_op(h)?;
        let value = match &mut op.input {
            Input::Raw(v) => {
                v.extend_from_slice(last);
                value_to_sign(CKM_ECDSA, v)?
            }
            Input::Hash(c) => {
                c.update(last);
                finish_value(c.clone().finish().as_ref())?
            }
        };
        let key = op.key;
        let op_pin = op.pin.take();
        let profiles = &self.profiles;
        let Some(t) = self.slots.get_mut(i).and_then(|s| s.token.as_mut()) else {
            return Err(CKR_DEVICE_REMOVED);
        };
        let p = profiles.get(t.found.profile).ok_or(CKR_GENERAL_ERROR)?;
        let spec = t
            .found
            .keys
            .get(key)
            .ok_or(CKR_KEY_HANDLE_INVALID)?
            .spec
            .clone();
        let a = access(p, &spec);
        let pin_ref = spec.pin.and_then(|n| pin_reference(p, n));
        let first = if a.always_authenticate {
            let Some(pin) = op_pin.as_ref() else {
                return Err(CKR_USER_NOT_LOGGED_IN);
            };
            Some(PinFirst {
                reference: pin_ref.ok_or(CKR_GENERAL_ERROR)?,
                pin,
            })
        } else {
            match (&t.id_pin, pin_ref) {
                (Some(pin), Some(reference)) => Some(PinFirst { reference, pin }),
                _ => None,
            }
        };
        let r = card::sign(&mut t.chan, p, &spec, &value, first);
        r.map_err(|rv| self.card_failed(i, rv))
    }

    /// Every session closes (C_Finalize).
    pub fn finalize(&mut self) {
        for i in 0..self.slots.len() {
            self.logout_slot(i);
        }
        self.sessions.clear();
        self.slots.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_to_sign_follow_ecdsa_truncation() {
        let h32 = [7u8; 32];
        assert_eq!(value_to_sign(CKM_ECDSA, &h32).unwrap(), h32);
        let h48: Vec<u8> = (0..48).collect();
        assert_eq!(
            value_to_sign(CKM_ECDSA, &h48).unwrap().to_vec(),
            h48[..32].to_vec()
        );
        let h20 = [9u8; 20];
        let v = value_to_sign(CKM_ECDSA, &h20).unwrap();
        assert_eq!(&v[..12], &[0; 12]);
        assert_eq!(&v[12..], &h20);
        assert_eq!(value_to_sign(CKM_ECDSA, &[1; 31]), Err(CKR_DATA_LEN_RANGE));
        assert_eq!(value_to_sign(CKM_ECDSA, b""), Err(CKR_DATA_LEN_RANGE));
        let d = ring::digest::digest(&ring::digest::SHA384, b"abc");
        assert_eq!(
            value_to_sign(CKM_ECDSA_SHA384, b"abc").unwrap().to_vec(),
            d.as_ref()[..32].to_vec()
        );
        assert_eq!(
            value_to_sign(CKM_RSA_PKCS, b"abc"),
            Err(CKR_MECHANISM_INVALID)
        );
    }

    #[test]
    fn the_reference_profile_maps_its_keys_to_pins() {
        let p = Profile::reference();
        let auth = p.keys.iter().find(|k| k.name == "authentication").unwrap();
        let sig = p.keys.iter().find(|k| k.name == "signature").unwrap();
        assert_eq!(
            access(&p, auth),
            Access {
                private: true,
                always_authenticate: false
            }
        );
        assert_eq!(
            access(&p, sig),
            Access {
                private: false,
                always_authenticate: true
            }
        );
        assert_eq!(pin_reference(&p, sig.pin.unwrap()), Some(0x82));
        // No factory PINs: the card itself says whether its PIN is set.
        assert!(!factory_value_in_place(&p, LifeCycle::Personalized, 0x81));
    }

    #[test]
    fn the_domestic_profile_puts_its_authentication_key_behind_the_id_pin() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../apdu-scripts/domestic/profile.toml");
        let p = Profile::load(&path).unwrap();
        let auth = p.keys.iter().find(|k| k.name == "authentication").unwrap();
        let sig = p.keys.iter().find(|k| k.name == "signature").unwrap();
        assert_eq!(
            access(&p, auth),
            Access {
                private: true,
                always_authenticate: false
            }
        );
        assert_eq!(
            access(&p, sig),
            Access {
                private: false,
                always_authenticate: true
            }
        );
        assert_eq!(pin_reference(&p, auth.pin.unwrap()), Some(0x11));
        assert_eq!(pin_reference(&p, sig.pin.unwrap()), Some(0x12));
        // Its factory PINs are never tried before activation.
        for lc in [LifeCycle::Blank, LifeCycle::Personalized] {
            assert!(factory_value_in_place(&p, lc, 0x11));
        }
        assert!(!factory_value_in_place(&p, LifeCycle::Activated, 0x11));
    }
}
