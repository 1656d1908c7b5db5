//! SCP03 on a cardsmith [`Channel`]: open a session with a card's security
//! domain, then let the channel protect every command with it.
//!
//! ```text
//! let opened = link::open(&mut ch, &keys, &Options::new(aid, level))?;   // SELECT, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE
//! ch.run(|ex| ex.expect_ok(&cmd))?;                                      // wrapped and unwrapped on the way
//! link::close(&mut ch, &options);
//! ```
//!
//! A wrong key is found from the card cryptogram in the INITIALIZE UPDATE
//! response ([`OpenError::WrongKey`]): EXTERNAL AUTHENTICATE is then never
//! sent, so the card's authentication failure counter is not touched.

use ring::rand::{SecureRandom, SystemRandom};

use super::channel::{Mode, SecurityLevel};
use super::host::HostSession;
use super::keyfile::Scp03Keys;
use crate::apdu::{cmd, Command, Response};
use crate::transport::sansio::{self, Io};
use crate::transport::{Channel, Exchange, ExchangeError, SecureMessaging};

/// The security domain and the protection to ask for.
#[derive(Debug, Clone)]
pub struct Options {
    /// AID of the security domain (SELECT by name).
    pub aid: Vec<u8>,
    pub level: SecurityLevel,
    pub mode: Mode,
}

/// What the card said when the channel opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub kvn: u8,
    pub level: SecurityLevel,
    pub mode: Mode,
    /// The card's key diversification data.
    pub kdd: Vec<u8>,
    /// The sequence counter (pseudo-random challenges only).
    pub sequence_counter: Option<u32>,
    /// APDUs the handshake took.
    pub apdus: usize,
}

/// Why the secure channel did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    #[error("the card has no security domain {aid} (SELECT answered {sw})")]
    NoSecurityDomain { aid: String, sw: String },
    #[error("the card refused INITIALIZE UPDATE ({sw}); is key version {kvn:02X} on the card?")]
    InitializeUpdate { sw: String, kvn: u8 },
    #[error("the card cryptogram does not match: the SCP03 keys from {origin} are not this card's (KVN {kvn:02X}); EXTERNAL AUTHENTICATE was not sent, so the card's counter is untouched")]
    WrongKey { origin: String, kvn: u8 },
    #[error("the card refused EXTERNAL AUTHENTICATE ({sw})")]
    ExternalAuthenticate { sw: String },
    #[error("SCP03: {0}")]
    Protocol(String),
}

impl OpenError {
    /// The card went away or the link failed under the exchange.
    pub fn transport(&self) -> bool {
        matches!(self, OpenError::Exchange(ExchangeError::Transport(_)))
    }
}

/// The host session, as the channel's secure messaging.
pub struct Scp03Link {
    host: HostSession,
}

impl Scp03Link {
    pub fn host(&self) -> &HostSession {
        &self.host
    }

    /// Protect an encoded command APDU (for tools and tests that hold raw
    /// bytes, e.g. to tamper with the result); the channel itself wraps
    /// commands through [`SecureMessaging::wrap`].
    pub fn wrap(&mut self, plain: &[u8]) -> Result<Vec<u8>, String> {
        let c = Command::parse(plain).map_err(|e| e.to_string())?;
        let w = self.host.wrap(&c).map_err(|e| e.to_string())?;
        w.encode().map_err(|e| e.to_string())
    }

    /// Check and open the response to the last wrapped command, given as
    /// its data field and status word (the raw-bytes side of
    /// [`Scp03Link::wrap`]).
    pub fn unwrap(&mut self, data: &[u8], sw: u16) -> Result<(Vec<u8>, u16), String> {
        let r = self
            .host
            .unwrap(&Response::new(data, sw))
            .map_err(|e| e.to_string())?;
        Ok((r.data, r.sw.to_u16()))
    }
}

impl SecureMessaging for Scp03Link {
    fn wrap(&mut self, plain: &Command) -> Result<Command, String> {
        self.host.wrap(plain).map_err(|e| e.to_string())
    }

    fn unwrap(&mut self, resp: &Response) -> Result<Response, String> {
        self.host.unwrap(resp).map_err(|e| e.to_string())
    }

    fn max_plain(&self, max_wrapped: usize) -> usize {
        self.host
            .max_plain_data_len(max_wrapped)
            .unwrap_or(max_wrapped)
    }

    fn label(&self) -> String {
        let mut s = String::from("SCP03");
        for name in self.host.level().map(|l| l.names(true)).unwrap_or_default() {
            s.push(' ');
            s.push_str(name);
        }
        s
    }
}

async fn send(io: &Io, c: &Command) -> Result<Response, OpenError> {
    Ok(io.transmit(c).await?)
}

/// Open a session on `ex` (SELECT the security domain, INITIALIZE UPDATE,
/// check the card cryptogram, EXTERNAL AUTHENTICATE); the link to install
/// on the channel.
pub fn handshake(
    ex: &mut Exchange<'_>,
    keys: &Scp03Keys,
    opts: &Options,
) -> Result<(Scp03Link, Opened), OpenError> {
    sansio::converse(ex, async |io| handshake_in(io, keys, opts).await)
}

/// [`handshake`] as a conversation ([`sansio`]).
pub async fn handshake_in(
    io: &Io,
    keys: &Scp03Keys,
    opts: &Options,
) -> Result<(Scp03Link, Opened), OpenError> {
    let before = io.apdus();
    let sel = io
        .transmit(&cmd::select_by_aid(&opts.aid, cmd::SelectReturn::Fci))
        .await?;
    if !sel.sw.is_ok() {
        return Err(OpenError::NoSecurityDomain {
            aid: crate::hex::compact(&opts.aid),
            sw: sel.sw.to_string(),
        });
    }
    let mut challenge = vec![0u8; opts.mode.len()];
    SystemRandom::new()
        .fill(&mut challenge)
        .map_err(|_| OpenError::Protocol("the random generator failed".into()))?;
    let mut host = HostSession::new(keys.keys.clone(), opts.mode, &challenge)
        .map_err(|e| OpenError::Protocol(e.to_string()))?;
    let kvn = keys.keys.kvn();
    let r = send(io, &host.initialize_update()).await?;
    if !r.sw.is_ok() {
        return Err(OpenError::InitializeUpdate {
            sw: r.sw.to_string(),
            kvn,
        });
    }
    let info = match host.process_initialize_update(&r) {
        Ok(info) => info.clone(),
        Err(super::Error::CardCryptogramMismatch) => {
            return Err(OpenError::WrongKey {
                origin: keys.origin.clone(),
                kvn,
            })
        }
        Err(e) => return Err(OpenError::Protocol(e.to_string())),
    };
    let ea = host
        .external_authenticate(opts.level)
        .map_err(|e| OpenError::Protocol(e.to_string()))?;
    let r = send(io, &ea).await?;
    if !r.sw.is_ok() {
        return Err(OpenError::ExternalAuthenticate {
            sw: r.sw.to_string(),
        });
    }
    host.process_external_authenticate(&r)
        .map_err(|e| OpenError::Protocol(e.to_string()))?;
    let opened = Opened {
        kvn: info.kvn,
        level: opts.level,
        mode: opts.mode,
        kdd: info.kdd.to_vec(),
        sequence_counter: info
            .sequence_counter
            .map(|c| u32::from_be_bytes([0, c[0], c[1], c[2]])),
        apdus: io.apdus() - before,
    };
    Ok((Scp03Link { host }, opened))
}

/// Open a session and install it on the channel: every command from now on
/// is protected until [`close`] (or a reset).
pub fn open(ch: &mut Channel, keys: &Scp03Keys, opts: &Options) -> Result<Opened, OpenError> {
    let io = Io::new(ch.facts());
    ch.drive(&io, open_in(&io, keys, opts), &mut sansio::no_extension)
}

/// [`open`] as a conversation ([`sansio`]).
pub async fn open_in(io: &Io, keys: &Scp03Keys, opts: &Options) -> Result<Opened, OpenError> {
    io.secure(None).await?;
    let (link, opened) = io
        .transaction(async |io| handshake_in(io, keys, opts).await)
        .await?;
    io.secure(Some(Box::new(link))).await?;
    Ok(opened)
}

/// End the session: back to plain commands, and SELECT the security
/// domain again in clear, which ends the card's session (a plain command
/// into an open session would abort it instead). Errors are ignored: the
/// card may be gone, and a reset ends the session too. Returns the APDUs
/// sent (0 or 1).
pub fn close(ch: &mut Channel, opts: &Options) -> usize {
    let io = Io::new(ch.facts());
    ch.drive(&io, close_in(&io, opts), &mut sansio::no_extension)
        .unwrap_or(0)
}

/// [`close`] as a conversation ([`sansio`]).
pub async fn close_in(io: &Io, opts: &Options) -> Result<usize, ExchangeError> {
    if io.secure_label().is_none() {
        return Ok(0);
    }
    io.secure(None).await?;
    let select = cmd::select_by_aid(&opts.aid, cmd::SelectReturn::Fci);
    let _ = io.transaction(async |io| io.transmit(&select).await).await;
    Ok(1)
}

impl From<OpenError> for ExchangeError {
    fn from(e: OpenError) -> ExchangeError {
        match e {
            OpenError::Exchange(x) => x,
            other => ExchangeError::SecureChannel {
                command: "opening the secure channel".into(),
                detail: other.to_string(),
            },
        }
    }
}

impl crate::transport::FromExchange for OpenError {
    fn card_reset(&self) -> bool {
        matches!(self, OpenError::Exchange(e) if e.card_reset())
    }
}
