//! The one seam between card logic and a physical (or simulated) card.
//!
//! A [`Transport`] is a connected card. [`Transport::begin`] opens one
//! transaction (one PC/SC transaction on a real reader) and returns a
//! [`Session`], whose only job is to move raw APDU bytes. Everything above
//! that — GET RESPONSE on 61xx, re-sending on 6Cxx, command chaining, the
//! short/extended decision, the trace — is in [`Exchange`], written once and
//! used unchanged over PC/SC and over the in-process simulator. Card logic
//! never names `pcsc::`.
//!
//! Conversations: card logic above this module is written without I/O
//! ([`sansio`]): an `async fn` over a [`sansio::Io`] asks for each command
//! and waits for the answer, and [`Channel::drive`] (or, inside one
//! transaction, [`sansio::drive`]) is the one loop that sends the commands
//! through an [`Exchange`].
//!
//! Recovery: [`Channel::run`] runs one logical operation in one transaction.
//! If another process resets the card in the middle, the operation's card
//! state (selected file, verified PINs) is gone, so the channel reconnects and
//! runs the whole operation again from its start, once. Operations passed to
//! `run` must therefore start from a known state (SELECT first), which every
//! operation in cardsmith does. A removed card is never retried: it is
//! reported as [`TransportError::CardRemoved`].
//!
//! Selection: every APDU costs a card round trip (12–60 ms on real cards),
//! so the channel keeps track of the card's current DF ([`Selected`]) from
//! the commands it sees and their answers, and [`Exchange::selected`] lets
//! an operation "start from a known state" without a SELECT when the card is
//! already there. The tracking is conservative: any command that may move
//! the selection and is not understood (a failed SELECT, CREATE FILE of a
//! DF, DELETE FILE, MANAGE CHANNEL, an operation that ended in an error,
//! a reconnect or reset) makes it unknown, and the next operation selects
//! again. It assumes that no other process selects files on the card
//! between this channel's transactions (a shared connection's neighbour
//! would have to SELECT in between; the card then answers 6A82 to the next
//! EF this channel names, or reads another DF's EF of the same FID).

pub mod pcsc;
pub mod sansio;
pub mod sim;

use crate::apdu::{ApduError, Command, Data, Response, ResponseError, StatusWord};
use crate::atr;
use crate::hex;
use serde::Serialize;
use std::time::{Duration, Instant};

/// What went wrong below the APDU level.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the PC/SC service is not running (start pcscd): {0}")]
    NoService(String),
    #[error("no smart card readers are connected")]
    NoReaders,
    #[error("no reader matches {query:?}; readers: {available}")]
    ReaderNotFound { query: String, available: String },
    #[error("{query:?} matches several readers ({matches}); give more of the name or an index")]
    AmbiguousReader { query: String, matches: String },
    #[error("no card in reader {reader:?}")]
    NoCard { reader: String },
    #[error("the card was removed from reader {reader:?}")]
    CardRemoved { reader: String },
    #[error("the card in reader {reader:?} was reset by another process")]
    CardReset { reader: String },
    #[error("the card in reader {reader:?} is used exclusively by another process")]
    SharingViolation { reader: String },
    #[error("the card did not answer within {0:?}")]
    Timeout(Duration),
    #[error("timed out after {0:?} waiting for the card event")]
    WaitTimeout(Duration),
    #[error("the card in reader {reader:?} is unresponsive or mute")]
    Unresponsive { reader: String },
    #[error("PC/SC error in {op}: {detail}")]
    Pcsc { op: &'static str, detail: String },
}

impl TransportError {
    /// True for "there is no reader or no card" (exit code 3), false for a
    /// failure of the transport itself (exit code 5).
    pub fn is_absence(&self) -> bool {
        matches!(
            self,
            TransportError::NoReaders
                | TransportError::ReaderNotFound { .. }
                | TransportError::AmbiguousReader { .. }
                | TransportError::NoCard { .. }
                | TransportError::CardRemoved { .. }
                | TransportError::NoService(_)
                | TransportError::WaitTimeout(_)
        )
    }
}

/// The transmission protocol in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Protocol {
    T0,
    T1,
    Raw,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::T0 => "T=0",
            Protocol::T1 => "T=1",
            Protocol::Raw => "raw",
        })
    }
}

/// A connected card.
pub trait Transport: Send {
    /// Open one transaction. The session ends when dropped.
    fn begin(&mut self) -> Result<Box<dyn Session + '_>, TransportError>;
    /// Re-establish the connection after the card was reset by someone else;
    /// `reset` additionally warm-resets the card ourselves.
    fn reconnect(&mut self, reset: bool) -> Result<(), TransportError>;
    fn atr(&self) -> Vec<u8>;
    fn protocol(&self) -> Protocol;
    fn reader(&self) -> String;
    /// The host is done with the card: power it down (best effort).
    fn release(&mut self) {}
}

/// One transaction: raw bytes in, raw bytes out.
pub trait Session {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
}

/// What the host does about 61xx, 6Cxx and long commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExchangeOptions {
    /// Fetch remaining data with GET RESPONSE on 61xx.
    pub auto_get_response: bool,
    /// Re-send with the exact Le on 6Cxx.
    pub auto_resend_on_6c: bool,
    /// Use extended length when the card announces it (ATR card capabilities).
    pub allow_extended: bool,
    /// Use command chaining when the card announces it and extended length is not available.
    pub allow_chaining: bool,
}

impl Default for ExchangeOptions {
    fn default() -> Self {
        ExchangeOptions {
            auto_get_response: true,
            auto_resend_on_6c: true,
            allow_extended: true,
            allow_chaining: true,
        }
    }
}

impl ExchangeOptions {
    /// Every automatic behaviour off: the bytes given are the bytes sent.
    pub fn raw() -> Self {
        ExchangeOptions {
            auto_get_response: false,
            auto_resend_on_6c: false,
            allow_extended: true,
            allow_chaining: false,
        }
    }
}

/// What the card can take, from its ATR (ISO 7816-4 §8.1.1.2.7 card capabilities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CardCaps {
    pub extended_length: bool,
    pub chaining: bool,
}

impl CardCaps {
    pub fn from_atr(atr_bytes: &[u8]) -> CardCaps {
        match atr::parse(atr_bytes).card_capabilities() {
            Some(c) => CardCaps {
                extended_length: c.extended_lc_le,
                chaining: c.command_chaining,
            },
            None => CardCaps {
                extended_length: false,
                chaining: false,
            },
        }
    }
}

/// Errors of one command exchange.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("cannot encode the command: {0}")]
    Encode(#[from] ApduError),
    #[error("malformed card response: {0}")]
    Response(#[from] ResponseError),
    #[error("{what}: the command needs {needed} data bytes but this card takes at most {max} per APDU (no extended length, no chaining); split it, e.g. into several UPDATE BINARY")]
    TooLong {
        what: String,
        needed: usize,
        max: usize,
    },
    #[error("{command}: card answered {sw} to part {part} of a chained command")]
    ChainBroken {
        command: String,
        part: usize,
        sw: StatusWord,
    },
    #[error("{command}: card answered {sw}")]
    Status { command: String, sw: StatusWord },
    #[error("{command}: unexpected response data: {detail}")]
    BadResponseData { command: String, detail: String },
    #[error("{command}: GET RESPONSE loop exceeded {limit} rounds; the card keeps answering 61xx")]
    GetResponseLoop { command: String, limit: usize },
    #[error("{command}: secure channel: {detail}")]
    SecureChannel { command: String, detail: String },
    /// The card profile's command for a step cannot be made (no such step,
    /// or a value that does not fit its template).
    #[error("{command}: the card profile's command: {detail}")]
    Profile { command: String, detail: String },
    /// A card conversation ([`sansio`]) asked its driver for what the
    /// driver does not do: a defect of the program, never of the card.
    #[error("card conversation: {0}")]
    Driver(String),
}

/// Secure messaging for every command of a [`Channel`] (a GlobalPlatform
/// SCP03 session, for instance): commands are protected before they go on
/// the wire and responses checked and opened before anyone sees them. The
/// trace shows the plain, redacted command and the plain response, marked
/// as protected: what went over the wire is ciphertext and MACs.
pub trait SecureMessaging: Send {
    /// Protect a plain command. The protected command keeps the kind of
    /// the data field ([`Data::Sensitive`] stays sensitive: wiped on drop,
    /// `REDACTED` wherever it is shown), so a secret never passes through
    /// plain bytes on its way to the card.
    fn wrap(&mut self, plain: &Command) -> Result<Command, String>;
    /// Check and open the response to the last wrapped command.
    fn unwrap(&mut self, resp: &Response) -> Result<Response, String>;
    /// Longest plain data field whose protected form fits `max_wrapped`.
    fn max_plain(&self, max_wrapped: usize) -> usize;
    /// A short label for traces and messages, e.g. "SCP03 C-MAC C-DEC R-MAC".
    fn label(&self) -> String;
}

/// One physical APDU on the wire, for the trace. Sensitive data is already redacted.
#[derive(Debug, Clone, Serialize)]
pub struct TraceEntry {
    pub command: String,
    pub response: String,
    pub sw: StatusWord,
    #[serde(serialize_with = "ser_micros")]
    pub elapsed: Duration,
}

fn ser_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// A running SHA-256 over the redacted APDU trace of a [`Channel`]: what
/// a journal keeps as proof of the exchange without keeping the exchange
/// (commands are already redacted when they reach it).
#[derive(Clone)]
pub struct Transcript {
    ctx: ring::digest::Context,
    apdus: u64,
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript {
            ctx: ring::digest::Context::new(&ring::digest::SHA256),
            apdus: 0,
        }
    }
}

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transcript({} APDUs)", self.apdus)
    }
}

impl Transcript {
    fn absorb(&mut self, command: &str, response: &str, sw: StatusWord) {
        self.ctx.update(command.as_bytes());
        self.ctx.update(b"\n");
        self.ctx.update(response.as_bytes());
        self.ctx.update(&sw.bytes());
        self.ctx.update(b"\n");
        self.apdus += 1;
    }

    /// APDUs absorbed so far.
    pub fn apdus(&self) -> u64 {
        self.apdus
    }

    /// SHA-256 of everything so far, lower-case hex.
    pub fn sha256_hex(&self) -> String {
        hex::compact(self.ctx.clone().finish().as_ref()).to_ascii_lowercase()
    }
}

/// A transcript several owners can feed (the channel and whoever reads it).
pub type SharedTranscript = std::sync::Arc<std::sync::Mutex<Transcript>>;

/// The card's current DF as far as the host knows it: the MF, or an
/// application DF selected by name. `None` (in an `Option<Selected>`)
/// means unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Selected {
    Mf,
    Aid(Vec<u8>),
}

/// The current DF after command `c` was answered (`ok`: with 9000 or a
/// warning that still executed it), given what it was before: ISO/IEC
/// 7816-4 §7.1.1 (SELECT), 7816-9 §8.2 (CREATE FILE: the new file becomes
/// current, so an EF leaves its DF current), §6.5 (ACTIVATE FILE on the
/// current file). Commands known not to touch the selection keep it;
/// anything else makes it unknown.
fn selected_after(
    before: Option<Selected>,
    c: &Command,
    ok: bool,
    transparent: &[Vec<u8>],
) -> Option<Selected> {
    // Logical channels other than the basic one, and proprietary classes
    // other than GlobalPlatform's, are not followed.
    let basic = c.cla & 0x03 == 0 && (c.cla & 0x80 == 0 || matches!(c.cla, 0x80..=0x87));
    if !basic {
        return None;
    }
    match c.ins {
        0xA4 if c.cla & 0x80 == 0 && ok => match (c.p1, c.data()) {
            (0x00, []) | (0x00, [0x3F, 0x00]) => Some(Selected::Mf),
            // An application the card selects beside its files (a
            // security domain, see [`Channel::set_selection_transparent`]).
            (0x04, aid) if transparent.iter().any(|t| t.as_slice() == aid) => before,
            (0x04, aid) if !aid.is_empty() => Some(Selected::Aid(aid.to_vec())),
            // An EF under the current DF: the DF stays current.
            (0x02, _) => before,
            _ => None,
        },
        0xA4 if c.p1 == 0x04 && transparent.iter().any(|t| t.as_slice() == c.data()) => before,
        0xA4 => None,
        0xE0 => {
            if !ok {
                return before;
            }
            // 62 { 82 descriptor … }: b6-b4 set (38) is a DF, which becomes current.
            let nodes = crate::tlv::decode(c.data());
            let descriptor = crate::tlv::expect_one(&nodes, &[0x62])
                .ok()
                .and_then(|t| crate::tlv::child_value(t, &[0x82]))
                .and_then(|v| v.first().copied());
            match descriptor {
                Some(d) if d & 0x38 != 0x38 => before,
                _ => None,
            }
        }
        // ACTIVATE / DEACTIVATE FILE on the current file (no data).
        0x44 | 0x04 if c.p1 == 0 && c.p2 == 0 && c.data().is_empty() => before,
        // Reads, writes, data objects, authentication, keys, signatures,
        // GET RESPONSE, PIN management, GlobalPlatform INITIALIZE UPDATE,
        // EXTERNAL AUTHENTICATE, STORE DATA, PUT KEY, GET STATUS.
        0xB0 | 0xB1 | 0xD6 | 0xD7 | 0xCA | 0xCB | 0xDA | 0xDB | 0x84 | 0x82 | 0x88 | 0x2A
        | 0x22 | 0x20 | 0x21 | 0x46 | 0xC0 | 0x24 | 0x2C | 0x50 | 0xE2 | 0xD8 | 0xF2 => before,
        _ => None,
    }
}

/// Runs commands over a [`Session`]: encoding, 61xx/6Cxx, chaining, trace.
pub struct Exchange<'s> {
    session: Box<dyn Session + 's>,
    opts: ExchangeOptions,
    caps: CardCaps,
    trace: Vec<TraceEntry>,
    transcript: Option<SharedTranscript>,
    secure: Option<&'s mut (dyn SecureMessaging + 's)>,
    /// Responses are a citizen's personal data (see [`Exchange::personal`]).
    personal_responses: bool,
    /// The card's current DF as far as the commands sent so far tell.
    selected: Option<Selected>,
    /// AIDs whose selection leaves the current DF as it was.
    transparent: Vec<Vec<u8>>,
    /// The largest UPDATE BINARY block the card takes (its profile's).
    max_update_block: Option<usize>,
    /// Physical APDUs sent, traced or not (GET RESPONSE rounds inside
    /// secure messaging are not traced on their own).
    wire_apdus: usize,
}

/// How a command shows: always redacted (errors, journal digests), and as
/// the trace shows it (personal data in clear only with
/// `--trace-personal-data`).
struct Shown {
    /// None: the same as `traced` (no personal data in the command).
    redacted: Option<String>,
    traced: String,
}

impl Shown {
    fn of(c: &Command) -> Shown {
        // Plain data shows the same both ways: encode and format it once.
        if matches!(c.data, Data::Plain(_)) {
            return Shown::same(c.redacted());
        }
        Shown {
            redacted: Some(c.redacted()),
            traced: c.traced(),
        }
    }
    fn same(s: String) -> Shown {
        Shown {
            redacted: None,
            traced: s,
        }
    }
    fn redacted(&self) -> &str {
        self.redacted.as_deref().unwrap_or(&self.traced)
    }
}

/// Largest data field one APDU carries to a card of `caps` under `opts`,
/// after the secure messaging `sm` (if any) has wrapped it.
fn max_data(
    caps: CardCaps,
    opts: ExchangeOptions,
    sm: Option<&(dyn SecureMessaging + '_)>,
) -> usize {
    let wire = if caps.extended_length && opts.allow_extended {
        crate::apdu::EXTENDED_MAX_NC
    } else {
        crate::apdu::SHORT_MAX_NC
    };
    sm.map_or(wire, |sm| sm.max_plain(wire))
}

/// Largest Ne one APDU asks of a card of `caps` under `opts`.
fn max_ne(caps: CardCaps, opts: ExchangeOptions) -> usize {
    if caps.extended_length && opts.allow_extended {
        crate::apdu::EXTENDED_MAX_NE
    } else {
        crate::apdu::SHORT_MAX_NE
    }
}

/// Upper bound on GET RESPONSE rounds: 65,536 bytes at 256 a round, with slack.
const MAX_GET_RESPONSE_ROUNDS: usize = 300;

impl<'s> Exchange<'s> {
    pub fn new(session: Box<dyn Session + 's>, opts: ExchangeOptions, caps: CardCaps) -> Self {
        Exchange {
            session,
            opts,
            caps,
            trace: Vec::new(),
            transcript: None,
            secure: None,
            personal_responses: false,
            selected: None,
            transparent: Vec::new(),
            max_update_block: None,
            wire_apdus: 0,
        }
    }

    /// Physical APDUs this exchange has sent, traced or not.
    pub fn wire_apdus(&self) -> usize {
        self.wire_apdus
    }

    /// SELECTs of these AIDs leave the current DF as it was (see
    /// [`Channel::set_selection_transparent`]).
    pub fn with_transparent(mut self, aids: Vec<Vec<u8>>) -> Self {
        self.transparent = aids;
        self
    }

    /// UPDATE BINARY in blocks of at most `n` bytes (see
    /// [`Channel::set_max_update_block`]).
    pub fn with_max_update_block(mut self, n: Option<usize>) -> Self {
        self.max_update_block = n;
        self
    }

    /// Start from what the card is known to have selected (the channel's
    /// tracking; `None`: unknown).
    pub fn with_selected(mut self, s: Option<Selected>) -> Self {
        self.selected = s;
        self
    }

    /// The card's current DF as far as the host knows (`None`: unknown).
    /// Updated from every command sent through this exchange.
    pub fn selected(&self) -> Option<&Selected> {
        self.selected.as_ref()
    }

    /// Run `f` with every response marked as a citizen's personal data: the
    /// trace shows `PERSONAL(n bytes)` for their data unless the session
    /// asked for personal data (reads of data groups and certificates).
    pub fn personal<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let before = std::mem::replace(&mut self.personal_responses, true);
        let r = f(self);
        self.personal_responses = before;
        r
    }

    /// Protect every command with `sm` (see [`SecureMessaging`]).
    pub fn with_secure(mut self, sm: Option<&'s mut (dyn SecureMessaging + 's)>) -> Self {
        self.secure = sm;
        self
    }

    /// The secure messaging in force, if any (its label).
    pub fn secure_label(&self) -> Option<String> {
        self.secure.as_ref().map(|s| s.label())
    }

    /// Also feed every APDU into `t`.
    pub fn with_transcript(mut self, t: Option<SharedTranscript>) -> Self {
        self.transcript = t;
        self
    }

    /// The physical APDUs so far, oldest first.
    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    pub fn take_trace(&mut self) -> Vec<TraceEntry> {
        std::mem::take(&mut self.trace)
    }

    /// Largest data field the card takes in one APDU.
    pub fn max_data_per_apdu(&self) -> usize {
        max_data(self.caps, self.opts, self.secure.as_deref())
    }

    /// Largest Ne the card takes in one APDU.
    pub fn max_ne_per_apdu(&self) -> usize {
        max_ne(self.caps, self.opts)
    }

    /// Send one raw APDU exactly as given; record it. No automatic behaviour.
    fn wire(&mut self, apdu: &[u8], shown: Shown) -> Result<Response, ExchangeError> {
        let t = Instant::now();
        self.wire_apdus += 1;
        let raw = self.session.transmit(apdu)?;
        let elapsed = t.elapsed();
        let resp = Response::from_bytes(&raw)?;
        self.record(shown, &resp, elapsed);
        Ok(resp)
    }

    fn record(&mut self, shown: Shown, resp: &Response, elapsed: Duration) {
        let personal = self.personal_responses && !resp.data.is_empty();
        let response_traced = if personal {
            crate::apdu::traced_personal(&resp.data)
        } else {
            hex::spaced(&resp.data)
        };
        tracing::trace!(target: "cardsmith::apdu", "> {}", shown.traced);
        tracing::trace!(target: "cardsmith::apdu", "< {} {} ({:?})", response_traced, resp.sw, elapsed);
        // The journal's digest is over the redacted form, whatever the
        // session shows.
        if let Some(t) = &self.transcript {
            if let Ok(mut t) = t.lock() {
                let placeholder;
                let response_redacted = if personal {
                    placeholder = crate::apdu::personal_placeholder(resp.data.len());
                    placeholder.as_str()
                } else {
                    response_traced.as_str()
                };
                t.absorb(shown.redacted(), response_redacted, resp.sw);
            }
        }
        self.trace.push(TraceEntry {
            command: shown.traced,
            response: response_traced,
            sw: resp.sw,
            elapsed,
        });
    }

    /// One command under secure messaging: protect, send (collecting 61xx
    /// with GET RESPONSE, which travels unprotected), check and open the
    /// response. The trace gets one entry: the plain redacted command and
    /// the plain response, marked with the channel's label.
    fn secure_transmit(&mut self, c: &Command) -> Result<Response, ExchangeError> {
        let Some(sm) = self.secure.as_mut() else {
            return Err(ExchangeError::SecureChannel {
                command: describe(c),
                detail: "no secure channel".into(),
            });
        };
        let label = sm.label();
        let protected = sm.wrap(c).map_err(|detail| ExchangeError::SecureChannel {
            command: describe(c),
            detail,
        })?;
        // The wire bytes of a secret's command are wiped after sending.
        let wrapped = zeroize::Zeroizing::new(protected.encode()?);
        let ext_ok = self.caps.extended_length && self.opts.allow_extended;
        if wrapped.len() > 5 + crate::apdu::SHORT_MAX_NC + 1 && !ext_ok {
            return Err(ExchangeError::TooLong {
                what: format!("{} under {label}", describe(c)),
                needed: wrapped.len().saturating_sub(5),
                max: crate::apdu::SHORT_MAX_NC,
            });
        }
        let t = Instant::now();
        self.wire_apdus += 1;
        let raw = self.session.transmit(&wrapped)?;
        // The protected response is opened whole, so its GET RESPONSE
        // rounds are not traced on their own.
        let resp = self.get_more(c, Response::from_bytes(&raw)?, false)?;
        let opened = match self.secure.as_mut() {
            Some(sm) => sm.unwrap(&resp),
            None => Err("the secure channel went away".into()),
        }
        .map_err(|detail| ExchangeError::SecureChannel {
            command: describe(c),
            detail,
        })?;
        // The card saw Le '00' (the protected response is longer than the
        // plain one), so it may answer more than the plain Ne. For READ
        // BINARY the extra bytes are simply the rest of the file; for any
        // other command (GET CHALLENGE above all, whose answer the card
        // remembers) the difference matters, so it is an error.
        let Response { mut data, sw } = opened;
        if let Some(ne) = c.ne.filter(|ne| data.len() > *ne) {
            if matches!(c.ins, 0xB0 | 0xB1) {
                data.truncate(ne);
            } else {
                return Err(ExchangeError::SecureChannel {
                    command: describe(c),
                    detail: format!(
                        "asked for {ne} bytes but the card, which sees Le 00 under secure messaging, answered {}",
                        data.len()
                    ),
                });
            }
        }
        let open = Response { data, sw };
        let shown = Shown::of(c);
        let shown = Shown {
            redacted: shown.redacted.map(|r| format!("{r} [{label}]")),
            traced: format!("{} [{label}]", shown.traced),
        };
        self.record(shown, &open, t.elapsed());
        Ok(open)
    }

    fn wire_cmd(&mut self, c: &Command) -> Result<Response, ExchangeError> {
        // The wire bytes of a secret's command (a PIN) are wiped after sending.
        let bytes = zeroize::Zeroizing::new(c.encode()?);
        self.wire(&bytes, Shown::of(c))
    }

    /// Send a command with the automatic behaviour the options allow.
    pub fn transmit(&mut self, c: &Command) -> Result<Response, ExchangeError> {
        let r = self.transmit_plain_or_secure(c);
        self.observe(c, &r);
        r
    }

    /// Follow the card's selection through command `c` and its outcome.
    fn observe(&mut self, c: &Command, r: &Result<Response, ExchangeError>) {
        self.selected = match r {
            Ok(resp) => selected_after(self.selected.take(), c, resp.sw.is_ok(), &self.transparent),
            Err(_) => None,
        };
    }

    fn transmit_plain_or_secure(&mut self, c: &Command) -> Result<Response, ExchangeError> {
        if self.secure.is_some() {
            return self.secure_transmit(c);
        }
        let ext_ok = self.caps.extended_length && self.opts.allow_extended;
        let nc = c.data().len();
        let mut to_send = c.clone();
        // The card cannot take extended Ne: ask for 256 and let 61xx bring the rest.
        if !ext_ok && to_send.ne.is_some_and(|n| n > crate::apdu::SHORT_MAX_NE) {
            to_send.ne = Some(crate::apdu::SHORT_MAX_NE);
        }
        let first = if nc > crate::apdu::SHORT_MAX_NC && !ext_ok {
            if self.caps.chaining && self.opts.allow_chaining {
                self.send_chained(&to_send)?
            } else {
                return Err(ExchangeError::TooLong {
                    what: describe(c),
                    needed: nc,
                    max: crate::apdu::SHORT_MAX_NC,
                });
            }
        } else {
            if !ext_ok && c.form == crate::apdu::LengthForm::Extended {
                to_send.form = crate::apdu::LengthForm::Auto;
            }
            self.wire_cmd(&to_send)?
        };
        self.finish(&to_send, first)
    }

    /// Send raw bytes (from `send` or a script), then apply 61xx/6Cxx handling
    /// as the options allow. Sensitive: whether to redact the data field in the trace.
    pub fn transmit_bytes(
        &mut self,
        apdu: &[u8],
        sensitive: bool,
    ) -> Result<Response, ExchangeError> {
        self.transmit_bytes_as(apdu, sensitive, false)
    }

    /// [`Exchange::transmit_bytes`] for a command whose data field is a
    /// citizen's personal data (a script's `personal(…)`): traced as
    /// `PERSONAL(n bytes)` unless the session asked for personal data.
    pub fn transmit_bytes_personal(&mut self, apdu: &[u8]) -> Result<Response, ExchangeError> {
        self.transmit_bytes_as(apdu, false, true)
    }

    fn transmit_bytes_as(
        &mut self,
        apdu: &[u8],
        sensitive: bool,
        personal: bool,
    ) -> Result<Response, ExchangeError> {
        match Command::parse(apdu) {
            Ok(mut c) => {
                if sensitive {
                    c.data = Data::Sensitive(crate::secret::Secret::new(c.data().to_vec()));
                } else if personal {
                    c = c.personal();
                }
                let r = if self.secure.is_some() {
                    self.secure_transmit(&c)
                } else {
                    self.wire(apdu, Shown::of(&c))
                        .and_then(|first| self.finish(&c, first))
                };
                self.observe(&c, &r);
                r
            }
            // Not a well-formed command: still send it (the user may be testing
            // the card's error handling), without automatic behaviour.
            Err(_) => {
                self.selected = None;
                let shown = if sensitive {
                    Shown::same(format!("REDACTED({} bytes)", apdu.len()))
                } else if personal {
                    Shown {
                        redacted: Some(crate::apdu::personal_placeholder(apdu.len())),
                        traced: crate::apdu::traced_personal(apdu),
                    }
                } else {
                    Shown::same(hex::spaced(apdu))
                };
                self.wire(apdu, shown)
            }
        }
    }

    /// Apply 6Cxx re-send and 61xx GET RESPONSE to the first response.
    fn finish(&mut self, sent: &Command, mut resp: Response) -> Result<Response, ExchangeError> {
        if let StatusWord::WrongLe { exact } = resp.sw {
            if self.opts.auto_resend_on_6c {
                let again = sent.clone().with_ne(exact as usize);
                resp = self.wire_cmd(&again)?;
            }
        }
        if self.opts.auto_get_response {
            resp = self.get_more(sent, resp, true)?;
        }
        Ok(resp)
    }

    /// Fetch the rest of a 61xx response with GET RESPONSE rounds (traced
    /// one by one when `traced`) and join the data.
    fn get_more(
        &mut self,
        sent: &Command,
        mut resp: Response,
        traced: bool,
    ) -> Result<Response, ExchangeError> {
        let mut rounds = 0;
        while let StatusWord::MoreData { available } = resp.sw {
            rounds += 1;
            if rounds > MAX_GET_RESPONSE_ROUNDS {
                return Err(ExchangeError::GetResponseLoop {
                    command: describe(sent),
                    limit: MAX_GET_RESPONSE_ROUNDS,
                });
            }
            let cla = sent.cla & 0x03; // keep the logical channel, drop chaining/SM bits
            let mut gr = crate::apdu::cmd::get_response(available as usize);
            gr.cla = cla;
            let send = |ex: &mut Self, c: &Command| {
                if traced {
                    ex.wire_cmd(c)
                } else {
                    ex.wire_apdus += 1;
                    Ok(Response::from_bytes(&ex.session.transmit(&c.encode()?)?)?)
                }
            };
            let mut next = send(self, &gr)?;
            // Some cards answer GET RESPONSE's Le with 6Cxx.
            if let StatusWord::WrongLe { exact } = next.sw {
                next = send(self, &gr.with_ne(exact as usize))?;
            }
            let mut data = std::mem::take(&mut resp.data);
            data.extend_from_slice(&next.data);
            resp = Response { data, sw: next.sw };
        }
        Ok(resp)
    }

    /// Send a command and require 9000; the data on success.
    pub fn expect_ok(&mut self, c: &Command) -> Result<Vec<u8>, ExchangeError> {
        ok_data(c, self.transmit(c)?)
    }

    /// Read `len` bytes of the current EF from `offset`, in as few READ BINARY
    /// commands as the card allows ([`sansio::Io::read_binary`]).
    pub fn read_binary(&mut self, offset: usize, len: usize) -> Result<Vec<u8>, ExchangeError> {
        sansio::converse(self, async |io| io.read_binary(offset, len).await)
    }

    /// Write `data` into the current EF at `offset`, in as few UPDATE
    /// BINARY commands as the card allows ([`sansio::Io::update_binary`]).
    pub fn update_binary(&mut self, offset: usize, data: &[u8]) -> Result<(), ExchangeError> {
        sansio::converse(self, async |io| io.update_binary(offset, data).await)
    }

    /// [`Exchange::update_binary`] for a citizen's personal data: every
    /// command's data field is marked [`Data::Personal`].
    pub fn update_binary_personal(
        &mut self,
        offset: usize,
        data: &[u8],
    ) -> Result<(), ExchangeError> {
        sansio::converse(self, async |io| {
            io.update_binary_personal(offset, data).await
        })
    }

    /// ISO 7816-4 §5.3.3 command chaining: all parts but the last have CLA b5 set.
    fn send_chained(&mut self, c: &Command) -> Result<Response, ExchangeError> {
        let chunks: Vec<&[u8]> = c.data().chunks(crate::apdu::SHORT_MAX_NC).collect();
        let n = chunks.len();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == n;
            let mut part = Command::new(if last { c.cla } else { c.cla | 0x10 }, c.ins, c.p1, c.p2);
            part.data = c.data.same_kind(chunk.to_vec());
            if last {
                part.ne = c.ne;
                return self.wire_cmd(&part);
            }
            let r = self.wire_cmd(&part)?;
            if !r.sw.is_ok() {
                return Err(ExchangeError::ChainBroken {
                    command: describe(c),
                    part: i + 1,
                    sw: r.sw,
                });
            }
        }
        // Only reached for empty data, which is never chained.
        self.wire_cmd(c)
    }
}

/// The data of `r`, the card's answer to `c`, if it is 9000; any other
/// status is an error naming the command.
pub(crate) fn ok_data(c: &Command, r: Response) -> Result<Vec<u8>, ExchangeError> {
    if r.sw.is_ok() {
        Ok(r.data)
    } else {
        Err(ExchangeError::Status {
            command: describe(c),
            sw: r.sw,
        })
    }
}

pub(crate) fn describe(c: &Command) -> String {
    format!(
        "{} (INS {:02X}, {} data bytes)",
        crate::hex::spaced(&c.header()),
        c.ins,
        c.data().len()
    )
}

/// A transport plus the exchange policy: the thing card logic holds.
pub struct Channel {
    transport: Box<dyn Transport>,
    pub opts: ExchangeOptions,
    caps: CardCaps,
    resets_recovered: u32,
    transcript: Option<SharedTranscript>,
    secure: Option<Box<dyn SecureMessaging>>,
    /// The card's current DF after the last operation (see [`Selected`]).
    selected: Option<Selected>,
    /// Carry the selection from one transaction to the next (see
    /// [`Channel::keep_selection`]).
    keep_selection: bool,
    /// See [`Channel::set_selection_transparent`].
    transparent: Vec<Vec<u8>>,
    /// See [`Channel::set_max_update_block`].
    max_update_block: Option<usize>,
}

/// Errors of a logical operation: the exchange failed, or the operation itself did.
pub trait FromExchange: From<ExchangeError> {
    fn card_reset(&self) -> bool;
}

impl FromExchange for ExchangeError {
    fn card_reset(&self) -> bool {
        matches!(
            self,
            ExchangeError::Transport(TransportError::CardReset { .. })
        )
    }
}

impl Channel {
    pub fn new(transport: Box<dyn Transport>, opts: ExchangeOptions) -> Channel {
        let caps = CardCaps::from_atr(&transport.atr());
        Channel {
            transport,
            opts,
            caps,
            resets_recovered: 0,
            transcript: None,
            secure: None,
            selected: None,
            keep_selection: true,
            transparent: Vec::new(),
            max_update_block: None,
        }
    }

    /// The card takes UPDATE BINARY blocks of at most `n` bytes (its
    /// profile's `[perso] max_update_binary`): longer writes go in blocks
    /// of that size, even where the transport could send more.
    pub fn set_max_update_block(&mut self, n: Option<usize>) {
        self.max_update_block = n;
    }

    /// The card selects application `aid` beside its file system (a
    /// security domain that guards the whole card and is not an applet):
    /// selecting it leaves the current DF as it was. What the card's
    /// profile says; without it a SELECT of any AID moves the selection.
    pub fn set_selection_transparent(&mut self, aid: &[u8]) {
        if !self.transparent.iter().any(|t| t.as_slice() == aid) {
            self.transparent.push(aid.to_vec());
        }
    }

    /// Whether an operation may rely on the selection the previous one left
    /// (the default), or starts from "unknown" and selects what it needs.
    /// Within one transaction the card is this channel's alone, so the
    /// selection is always followed there; between transactions only a
    /// card no other process uses (a station's own reader) keeps it. A
    /// card shared with other applications (a PKCS#11 module's) should not.
    pub fn keep_selection(&mut self, keep: bool) {
        self.keep_selection = keep;
        if !keep {
            self.selected = None;
        }
    }

    /// The card's current DF as far as this channel knows (`None`: unknown).
    pub fn selected(&self) -> Option<&Selected> {
        self.selected.as_ref()
    }

    /// Forget the card's selection: the next operation selects what it
    /// needs. For a caller that knows something else touched the card.
    pub fn forget_selection(&mut self) {
        self.selected = None;
    }

    /// Protect every command from now on with `sm` (None: back to plain).
    /// A reset or reconnect ends a card's secure channel session, so
    /// [`Channel::reconnect`] drops it too.
    pub fn set_secure(&mut self, sm: Option<Box<dyn SecureMessaging>>) {
        self.secure = sm;
    }

    /// The label of the secure messaging in force, if any.
    pub fn secure_label(&self) -> Option<String> {
        self.secure.as_ref().map(|s| s.label())
    }

    /// Feed every APDU from now on into `t` (None: stop).
    pub fn set_transcript(&mut self, t: Option<SharedTranscript>) {
        self.transcript = t;
    }

    /// The host is done with the card: power it down. A card handler (a
    /// personalization machine's transport) moves the card on when this
    /// happens. Errors are ignored: the card may already be gone.
    pub fn release(&mut self) {
        self.selected = None;
        self.transport.release();
    }

    /// How many times [`Channel::run`] reconnected after a reset by another process.
    pub fn resets_recovered(&self) -> u32 {
        self.resets_recovered
    }

    pub fn caps(&self) -> CardCaps {
        self.caps
    }

    /// Override what the ATR says (for cards whose ATR under-reports, or to test the chunked path).
    pub fn set_caps(&mut self, caps: CardCaps) {
        self.caps = caps;
    }

    pub fn atr(&self) -> Vec<u8> {
        self.transport.atr()
    }

    pub fn reader(&self) -> String {
        self.transport.reader()
    }

    pub fn protocol(&self) -> Protocol {
        self.transport.protocol()
    }

    pub fn reconnect(&mut self, reset: bool) -> Result<(), TransportError> {
        self.secure = None;
        self.selected = None;
        self.transport.reconnect(reset)?;
        self.caps = CardCaps::from_atr(&self.transport.atr());
        Ok(())
    }

    /// [`Channel::run`] for a conversation ([`sansio`]): `op` asks its
    /// [`sansio::Io`] and the exchange answers, in one transaction; run
    /// again from its start, once, if another process reset the card.
    pub fn converse<T, E: FromExchange>(
        &mut self,
        op: impl AsyncFnMut(&sansio::Io) -> Result<T, E>,
    ) -> Result<T, E> {
        let io = sansio::Io::new(self.facts());
        self.drive(&io, io.transaction(op), &mut sansio::no_extension)
    }

    /// What a conversation starting now knows of the channel.
    pub fn facts(&self) -> sansio::Facts {
        sansio::Facts {
            selected: self.selected.clone(),
            max_data: max_data(self.caps, self.opts, self.secure.as_deref()),
            max_ne: max_ne(self.caps, self.opts),
            chaining: self.caps.chaining && self.opts.allow_chaining,
            max_update_block: self.max_update_block,
            secure_label: self.secure_label(),
        }
    }

    /// Drive a whole conversation (an engine: personalization,
    /// verification) over this channel: the one loop. A command asked
    /// outside a transaction goes in one of its own; `extension` does the
    /// work of the driver's own kind ([`sansio::ChannelNeed::Extension`])
    /// and says how many APDUs it sent.
    pub fn drive<T, E: FromExchange>(
        &mut self,
        io: &sansio::Io,
        conversation: impl std::future::Future<Output = Result<T, E>>,
        extension: &mut sansio::Extension<'_>,
    ) -> Result<T, E> {
        let mut m = sansio::Machine::new(io, conversation);
        loop {
            match m.resume() {
                sansio::Next::Done(r) => return r,
                sansio::Next::Send { command, personal } => {
                    let mut apdus = 0;
                    let r = self.run(|ex| {
                        let (r, n) = sansio::transmit_counted(ex, &command, personal);
                        apdus += n;
                        r
                    });
                    m.answer_wire(r, self.selected.clone(), apdus);
                }
                sansio::Next::Channel(sansio::ChannelNeed::Begin) => {
                    if let Some(done) = self.transaction(&mut m) {
                        return done;
                    }
                }
                sansio::Next::Channel(sansio::ChannelNeed::End { .. }) => {
                    m.answer_channel(Ok(()), None)
                }
                sansio::Next::Channel(sansio::ChannelNeed::Reconnect) => {
                    let r = self
                        .transport
                        .reconnect(false)
                        .map_err(ExchangeError::Transport);
                    if r.is_ok() {
                        self.resets_recovered += 1;
                    }
                    self.selected = None;
                    m.answer_channel(r, Some(self.facts()));
                }
                sansio::Next::Channel(sansio::ChannelNeed::Secure(sm)) => {
                    self.set_secure(sm);
                    m.answer_channel(Ok(()), Some(self.facts()));
                }
                sansio::Next::Channel(sansio::ChannelNeed::Extension(work)) => {
                    let (answer, apdus) = extension(self, work);
                    m.answer_extension(answer, apdus, self.facts());
                }
            }
        }
    }

    /// One transaction of a driven conversation, from its begin to its
    /// end: `Some` when the conversation ended inside it.
    fn transaction<T, E, F>(&mut self, m: &mut sansio::Machine<'_, F>) -> Option<Result<T, E>>
    where
        E: FromExchange,
        F: std::future::Future<Output = Result<T, E>>,
    {
        // Taken out for the transaction: if it fails, the selection is
        // unknown (as in [`Channel::run`]).
        let selected = self.selected.take();
        let session = match self.transport.begin() {
            Ok(s) => s,
            Err(e) => {
                m.answer_channel(Err(ExchangeError::Transport(e)), None);
                return None;
            }
        };
        let mut ex = Exchange::new(session, self.opts, self.caps)
            .with_transcript(self.transcript.clone())
            .with_secure(self.secure.as_deref_mut().map(|s| s as _))
            .with_selected(selected)
            .with_transparent(self.transparent.clone())
            .with_max_update_block(self.max_update_block);
        m.answer_channel(Ok(()), Some(sansio::facts_of(&ex)));
        loop {
            match m.resume() {
                sansio::Next::Done(r) => return Some(r),
                sansio::Next::Send { command, personal } => {
                    let (r, n) = sansio::transmit_counted(&mut ex, &command, personal);
                    m.answer_wire(r, ex.selected().cloned(), n);
                }
                sansio::Next::Channel(sansio::ChannelNeed::End { ok }) => {
                    if ok && self.keep_selection {
                        self.selected = ex.selected.take();
                    }
                    m.answer_channel(Ok(()), None);
                    return None;
                }
                // Nested: the same transaction.
                sansio::Next::Channel(sansio::ChannelNeed::Begin) => m.answer_channel(Ok(()), None),
                sansio::Next::Channel(need) => m.answer_channel(
                    Err(ExchangeError::Driver(format!(
                        "{need:?} inside a transaction"
                    ))),
                    None,
                ),
            }
        }
    }

    /// Run one logical operation in one transaction. If another process reset
    /// the card during it, reconnect and run it again from the start, once.
    pub fn run<T, E: FromExchange>(
        &mut self,
        mut op: impl FnMut(&mut Exchange<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Taken out for the operation: if it fails, the selection is
            // unknown (the card may have been reset, or the operation
            // stopped half-way through a change of DF).
            let selected = self.selected.take();
            let result = match self.transport.begin() {
                Ok(session) => {
                    let mut ex = Exchange::new(session, self.opts, self.caps)
                        .with_transcript(self.transcript.clone())
                        .with_secure(self.secure.as_deref_mut().map(|s| s as _))
                        .with_selected(selected)
                        .with_transparent(self.transparent.clone())
                        .with_max_update_block(self.max_update_block);
                    let r = op(&mut ex);
                    if r.is_ok() && self.keep_selection {
                        self.selected = ex.selected.take();
                    }
                    r
                }
                Err(e) => Err(E::from(ExchangeError::Transport(e))),
            };
            match result {
                Err(e) if e.card_reset() && attempt == 1 => {
                    if self.secure.is_some() {
                        // The card's secure channel session is gone with
                        // the reset; running again in clear would be wrong.
                        self.secure = None;
                        return Err(e);
                    }
                    tracing::info!("card was reset by another process; reconnecting and running the operation again");
                    self.transport
                        .reconnect(false)
                        .map_err(|e| E::from(ExchangeError::Transport(e)))?;
                    self.resets_recovered += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Exchange logic against a scripted card: a unit-test double that answers
    //! from a fixed list, so each automatic behaviour is checked byte for byte.
    use super::*;
    use crate::apdu::cmd;
    use crate::hex::parse as h;
    use std::collections::VecDeque;

    struct Scripted {
        expect: VecDeque<(Vec<u8>, Vec<u8>)>,
        sent: Vec<Vec<u8>>,
    }

    impl Session for &mut Scripted {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            self.sent.push(apdu.to_vec());
            let (want, answer) = self.expect.pop_front().expect("unexpected extra APDU");
            assert_eq!(hex::spaced(apdu), hex::spaced(&want));
            Ok(answer)
        }
    }

    fn scripted(pairs: &[(&str, &str)]) -> Scripted {
        Scripted {
            expect: pairs
                .iter()
                .map(|(c, r)| (h(c).unwrap(), h(r).unwrap()))
                .collect(),
            sent: vec![],
        }
    }

    fn caps(ext: bool, chain: bool) -> CardCaps {
        CardCaps {
            extended_length: ext,
            chaining: chain,
        }
    }

    #[test]
    fn the_selection_follows_the_commands_and_is_forgotten_when_unsure() {
        let mf = Some(Selected::Mf);
        let app = Some(Selected::Aid(vec![0xF0, 0x01]));
        let after = |before: &Option<Selected>, c: &Command, ok: bool| {
            selected_after(before.clone(), c, ok, &[])
        };
        let nothing = cmd::SelectReturn::Nothing;
        assert_eq!(after(&None, &cmd::select_mf(nothing), true), mf);
        assert_eq!(
            after(&mf, &cmd::select_by_aid(&[0xF0, 0x01], nothing), true),
            app
        );
        // An EF of the current DF, reads and writes: the DF stays current.
        assert_eq!(after(&app, &cmd::select_ef(0x0101, nothing), true), app);
        assert_eq!(after(&app, &cmd::read_binary(0, 16), true), app);
        assert_eq!(after(&app, &cmd::update_binary(0, &[1, 2]), true), app);
        assert_eq!(after(&app, &cmd::get_data(0x7F61, 256), true), app);
        // A failed SELECT, a SELECT by FID (a DF or an EF?), by path, of
        // the parent, or on another logical channel: unknown.
        assert_eq!(after(&app, &cmd::select_mf(nothing), false), None);
        assert_eq!(
            after(&app, &cmd::select_by_fid(0x5000, nothing), true),
            None
        );
        assert_eq!(after(&app, &cmd::select_parent(nothing), true), None);
        let mut other_channel = cmd::select_mf(nothing);
        other_channel.cla = 0x01;
        assert_eq!(after(&app, &other_channel, true), None);
        // CREATE FILE: an EF leaves its DF current, a DF becomes current.
        let ef = h("62 0B 80 02 00 10 82 01 01 83 02 01 01").unwrap();
        let df = h("62 07 82 01 38 83 02 60 00").unwrap();
        assert_eq!(after(&app, &cmd::create_file(&ef), true), app);
        assert_eq!(after(&app, &cmd::create_file(&df), true), None);
        assert_eq!(after(&app, &cmd::create_file(&df), false), app);
        // ACTIVATE on the current file keeps it; an unknown command forgets.
        assert_eq!(after(&mf, &cmd::activate_file(), true), mf);
        assert_eq!(after(&mf, &cmd::delete_file(0x0101), true), None);
        // A security domain the card selects beside its files.
        let sd = [0xA0, 0x00, 0x00, 0x01, 0x51];
        let select_sd = cmd::select_by_aid(&sd, cmd::SelectReturn::Fci);
        assert_eq!(
            after(&app, &select_sd, true),
            Some(Selected::Aid(sd.to_vec()))
        );
        assert_eq!(
            selected_after(app.clone(), &select_sd, true, &[sd.to_vec()]),
            app
        );
        assert_eq!(
            after(&mf, &Command::new(0x00, 0x70, 0x00, 0x00), true),
            None
        );
    }

    #[test]
    fn get_response_collects_all_data() {
        let mut s = scripted(&[
            ("00 A4 00 00 02 3F 00 00", "61 04"),
            ("00 C0 00 00 04", "01 02 03 04 61 02"),
            ("00 C0 00 00 02", "05 06 90 00"),
        ]);
        let mut ex = Exchange::new(
            Box::new(&mut s),
            ExchangeOptions::default(),
            caps(false, false),
        );
        let r = ex
            .transmit(&cmd::select_mf(cmd::SelectReturn::Fci))
            .unwrap();
        assert_eq!(r.data, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(r.sw, StatusWord::Ok);
        assert_eq!(ex.trace().len(), 3);
    }

    #[test]
    fn get_response_can_be_switched_off() {
        let mut s = scripted(&[("00 A4 00 00 02 3F 00 00", "61 04")]);
        let mut ex = Exchange::new(Box::new(&mut s), ExchangeOptions::raw(), caps(false, false));
        let r = ex
            .transmit(&cmd::select_mf(cmd::SelectReturn::Fci))
            .unwrap();
        assert_eq!(r.sw, StatusWord::MoreData { available: 4 });
    }

    #[test]
    fn wrong_le_is_resent_with_exact_le() {
        let mut s = scripted(&[
            ("00 84 00 00 05", "6C 08"),
            ("00 84 00 00 08", "11 22 33 44 55 66 77 88 90 00"),
        ]);
        let mut ex = Exchange::new(
            Box::new(&mut s),
            ExchangeOptions::default(),
            caps(false, false),
        );
        let r = ex.transmit(&cmd::get_challenge(5)).unwrap();
        assert_eq!(r.data.len(), 8);
        let mut s = scripted(&[("00 84 00 00 05", "6C 08")]);
        let mut ex = Exchange::new(Box::new(&mut s), ExchangeOptions::raw(), caps(false, false));
        assert_eq!(
            ex.transmit(&cmd::get_challenge(5)).unwrap().sw,
            StatusWord::WrongLe { exact: 8 }
        );
    }

    #[test]
    fn long_data_is_chained_when_no_extended_length() {
        let data: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        let first = format!("10 D6 00 00 FF {}", hex::spaced(&data[..255]));
        let second = format!("00 D6 00 00 2D {}", hex::spaced(&data[255..]));
        let mut s = scripted(&[(&first, "90 00"), (&second, "90 00")]);
        let mut ex = Exchange::new(
            Box::new(&mut s),
            ExchangeOptions::default(),
            caps(false, true),
        );
        let r = ex.transmit(&cmd::update_binary(0, &data)).unwrap();
        assert_eq!(r.sw, StatusWord::Ok);
    }

    #[test]
    fn chain_stops_at_first_error() {
        let data = vec![0u8; 300];
        let first = format!("10 D6 00 00 FF {}", hex::spaced(&data[..255]));
        let mut s = scripted(&[(&first, "6A 84")]);
        let mut ex = Exchange::new(
            Box::new(&mut s),
            ExchangeOptions::default(),
            caps(false, true),
        );
        let e = ex.transmit(&cmd::update_binary(0, &data)).unwrap_err();
        assert!(
            matches!(e, ExchangeError::ChainBroken { part: 1, .. }),
            "{e}"
        );
    }

    #[test]
    fn long_data_uses_extended_length_when_offered() {
        let data = vec![0x5A; 300];
        let apdu = format!("00 D6 00 00 00 01 2C {}", hex::spaced(&data));
        let mut s = scripted(&[(&apdu, "90 00")]);
        let mut ex = Exchange::new(
            Box::new(&mut s),
            ExchangeOptions::default(),
            caps(true, true),
        );
        ex.transmit(&cmd::update_binary(0, &data)).unwrap();
    }

    #[test]
    fn too_long_without_extended_or_chaining_is_a_clear_error() {
        let mut s = scripted(&[]);
        let mut ex = Exchange::new(
            Box::new(&mut s),
            ExchangeOptions::default(),
            caps(false, false),
        );
        let e = ex.transmit(&cmd::update_binary(0, &[0; 300])).unwrap_err();
        assert!(e.to_string().contains("at most 255"), "{e}");
    }

    #[test]
    fn large_ne_falls_back_to_short_and_get_response() {
        let mut s = scripted(&[
            (
                "00 B0 00 00 00",
                &format!("{} 61 2C", hex::spaced(&[1; 256])),
            ),
            (
                "00 C0 00 00 2C",
                &format!("{} 90 00", hex::spaced(&[2; 44])),
            ),
        ]);
        let mut ex = Exchange::new(
            Box::new(&mut s),
            ExchangeOptions::default(),
            caps(false, false),
        );
        let r = ex.transmit(&cmd::read_binary(0, 300)).unwrap();
        assert_eq!(r.data.len(), 300);
    }

    #[test]
    fn sensitive_chunks_stay_redacted_in_trace() {
        let pin = crate::secret::Secret::new(b"246810".to_vec());
        let mut s = scripted(&[("00 20 00 01 06 32 34 36 38 31 30", "63 C2")]);
        let mut ex = Exchange::new(
            Box::new(&mut s),
            ExchangeOptions::default(),
            caps(false, false),
        );
        let r = ex.transmit(&cmd::verify(1, pin)).unwrap();
        assert_eq!(r.sw, StatusWord::WrongPin { retries: 2 });
        let t = serde_json::to_string(ex.trace()).unwrap();
        assert!(!t.contains("32 34 36"), "{t}");
        assert!(t.contains("REDACTED"), "{t}");
    }
}
