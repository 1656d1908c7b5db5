//! The off-card entity (host) side of an SCP03 secure channel.
//!
//! ```text
//! let mut host = HostSession::new(keys.into(), Mode::S8, &host_challenge)?;
//! send(host.initialize_update())                      -> resp
//! host.process_initialize_update(&resp)?              // card cryptogram checked here
//! send(host.external_authenticate(level)?)            -> resp
//! host.process_external_authenticate(&resp)?          // must be 9000
//! for each command:
//!     send(host.wrap(&cmd)?)                          -> resp
//!     let plain = host.unwrap(&resp)?;                // R-MAC checked, R-ENC removed
//! ```
//!
//! A wrong static key is detected in `process_initialize_update`
//! ([`Error::CardCryptogramMismatch`]); no EXTERNAL AUTHENTICATE can be built
//! after that. The host challenge is the caller's: it should be random and
//! fresh for every session (this module has no random source).

use super::channel::{Channel, InitUpdateResponse, Mode, SecurityLevel};
use super::error::{Error, Result};
use super::keys::{AesKey, KeySource, SessionKeys, StaticKeys};
use cardsmith_wire::apdu::{Command, Response};

/// CLA of INITIALIZE UPDATE (GlobalPlatform proprietary, logical channel 0).
const CLA_GP: u8 = 0x80;
/// INS of INITIALIZE UPDATE.
pub const INS_INITIALIZE_UPDATE: u8 = 0x50;
/// INS of EXTERNAL AUTHENTICATE.
pub const INS_EXTERNAL_AUTHENTICATE: u8 = 0x82;

enum State {
    /// INITIALIZE UPDATE built, response not yet processed.
    Started,
    /// Card authenticated; EXTERNAL AUTHENTICATE may be built.
    CardAuthenticated {
        keys: StaticKeys,
        session: SessionKeys,
        card_challenge: Vec<u8>,
    },
    /// EXTERNAL AUTHENTICATE built, its response not yet seen.
    AwaitingExternalAuthenticate {
        keys: StaticKeys,
        channel: Channel,
        level: SecurityLevel,
    },
    /// Secure channel open.
    Open { keys: StaticKeys, channel: Channel },
    /// A check failed; the session cannot be used any more.
    Failed,
}

/// One secure channel session, host side.
pub struct HostSession {
    source: KeySource,
    mode: Mode,
    host_challenge: Vec<u8>,
    card: Option<InitUpdateResponse>,
    state: State,
}

impl std::fmt::Debug for HostSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Started => "started",
            State::CardAuthenticated { .. } => "card authenticated",
            State::AwaitingExternalAuthenticate { .. } => "external authenticate sent",
            State::Open { .. } => "open",
            State::Failed => "failed",
        };
        f.debug_struct("HostSession")
            .field("kvn", &format_args!("{:02X}", self.source.kvn()))
            .field("mode", &self.mode)
            .field("state", &state)
            .field("level", &self.level())
            .finish()
    }
}

impl HostSession {
    /// Start a session with the card's keys (or a master key to diversify),
    /// the S8/S16 mode, and a fresh host challenge of 8 (S8) or 16 (S16)
    /// bytes.
    pub fn new(keys: KeySource, mode: Mode, host_challenge: &[u8]) -> Result<HostSession> {
        if host_challenge.len() != mode.len() {
            return Err(Error::BadChallengeLength {
                expected: mode.len(),
                got: host_challenge.len(),
            });
        }
        Ok(HostSession {
            source: keys,
            mode,
            host_challenge: host_challenge.to_vec(),
            card: None,
            state: State::Started,
        })
    }

    /// INITIALIZE UPDATE (GPCS §D.4.1, Amendment D §7.1.1):
    /// `80 50 KVN 00 Lc=08|10 <host challenge> 00`.
    ///
    /// P1 is the key version number ('00' lets the card pick its first key
    /// set), P2 the key identifier '00'.
    pub fn initialize_update(&self) -> Command {
        Command::new(CLA_GP, INS_INITIALIZE_UPDATE, self.source.kvn(), 0x00)
            .with_data(self.host_challenge.clone())
            .with_ne(256)
    }

    /// Check the card's answer to INITIALIZE UPDATE: status '9000', SCP '03',
    /// the key version asked for, the same S8/S16 mode, then derive the
    /// session keys and verify the card cryptogram.
    ///
    /// A card cryptogram mismatch — almost always wrong static keys — is
    /// [`Error::CardCryptogramMismatch`]; the session is then unusable, so no
    /// EXTERNAL AUTHENTICATE is ever sent.
    pub fn process_initialize_update(&mut self, resp: &Response) -> Result<&InitUpdateResponse> {
        if !matches!(self.state, State::Started) {
            return Err(Error::State("INITIALIZE UPDATE response already processed"));
        }
        match self.check_initialize_update(resp) {
            Ok((parsed, keys, session)) => {
                self.state = State::CardAuthenticated {
                    keys,
                    session,
                    card_challenge: parsed.card_challenge.clone(),
                };
                Ok(self.card.insert(parsed))
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    fn check_initialize_update(
        &self,
        resp: &Response,
    ) -> Result<(InitUpdateResponse, StaticKeys, SessionKeys)> {
        if !resp.sw.is_ok() {
            return Err(Error::CardStatus {
                sw: resp.sw.to_u16(),
            });
        }
        let parsed = InitUpdateResponse::parse(&resp.data)?;
        let requested = self.source.kvn();
        if requested != 0 && parsed.kvn != requested {
            return Err(Error::KvnMismatch {
                requested,
                returned: parsed.kvn,
            });
        }
        if parsed.mode() != self.mode {
            return Err(Error::ModeMismatch);
        }
        let keys = self.source.resolve(&parsed.kdd)?;
        let session = SessionKeys::derive(&keys, &self.host_challenge, &parsed.card_challenge)?;
        let expected = session.card_cryptogram(&self.host_challenge, &parsed.card_challenge)?;
        if !cardsmith_wire::crypto::ct_eq(&expected, &parsed.card_cryptogram) {
            return Err(Error::CardCryptogramMismatch);
        }
        Ok((parsed, keys, session))
    }

    /// EXTERNAL AUTHENTICATE (Amendment D §7.1.2):
    /// `84 82 <level> 00 Lc <host cryptogram> <C-MAC>`, no Le.
    ///
    /// The C-MAC is computed with a zero chaining value; it becomes the
    /// chaining value of the session. The level must be supported by the
    /// card's "i" parameter (R-MAC, R-ENC bits).
    pub fn external_authenticate(&mut self, level: SecurityLevel) -> Result<Command> {
        let i_param = self.card.as_ref().map_or(0, |c| c.i_param);
        let State::CardAuthenticated {
            keys,
            session,
            card_challenge,
        } = std::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(Error::State(
                "EXTERNAL AUTHENTICATE needs a verified INITIALIZE UPDATE response",
            ));
        };
        if !level.supported_by(i_param) {
            self.state = State::CardAuthenticated {
                keys,
                session,
                card_challenge,
            };
            return Err(Error::LevelNotSupported {
                level: level.p1(),
                i_param,
            });
        }
        let cryptogram = session.host_cryptogram(&self.host_challenge, &card_challenge)?;
        let mut channel = Channel::for_external_authenticate(session, self.mode);
        let plain =
            Command::new(CLA_GP, INS_EXTERNAL_AUTHENTICATE, level.p1(), 0x00).with_data(cryptogram);
        let cmd = channel.wrap_command(&plain)?;
        self.state = State::AwaitingExternalAuthenticate {
            keys,
            channel,
            level,
        };
        Ok(cmd)
    }

    /// The card's answer to EXTERNAL AUTHENTICATE must be exactly '9000' with
    /// no data (it carries no R-MAC, §6.2.5). On success the channel is open
    /// at the requested level.
    pub fn process_external_authenticate(&mut self, resp: &Response) -> Result<()> {
        let State::AwaitingExternalAuthenticate {
            keys,
            mut channel,
            level,
        } = std::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(Error::State("no EXTERNAL AUTHENTICATE outstanding"));
        };
        if !resp.sw.is_ok() {
            return Err(Error::CardStatus {
                sw: resp.sw.to_u16(),
            });
        }
        if !resp.data.is_empty() {
            return Err(Error::MalformedResponse(
                "EXTERNAL AUTHENTICATE returned data",
            ));
        }
        channel.open(level);
        self.state = State::Open { keys, channel };
        Ok(())
    }

    /// Protect a command for the open channel (see the channel rules:
    /// counter, C-DECRYPTION, C-MAC, CLA secure messaging bit, Lc, Le). The
    /// protected command keeps the kind of the data field (a secret stays a
    /// [`cardsmith_wire::secret::Secret`], personal data stays personal).
    pub fn wrap(&mut self, cmd: &Command) -> Result<Command> {
        match &mut self.state {
            State::Open { channel, .. } => channel.wrap_command(cmd),
            State::Failed => Err(Error::SessionAborted),
            _ => Err(Error::State("secure channel not open")),
        }
    }

    /// Check and strip the protection of the response to the last wrapped
    /// command: R-MAC ([`Error::RMacMismatch`] if wrong, which also fails the
    /// session), R-ENC decryption. Error status words pass through.
    pub fn unwrap(&mut self, resp: &Response) -> Result<Response> {
        let result = match &self.state {
            State::Open { channel, .. } => channel.unwrap_response(resp),
            State::Failed => return Err(Error::SessionAborted),
            _ => return Err(Error::State("secure channel not open")),
        };
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// The negotiated level once the channel is open.
    pub fn level(&self) -> Option<SecurityLevel> {
        match &self.state {
            State::Open { channel, .. } => Some(channel.level()),
            _ => None,
        }
    }

    /// S8 or S16.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The card's INITIALIZE UPDATE response, once processed successfully.
    pub fn card_info(&self) -> Option<&InitUpdateResponse> {
        self.card.as_ref()
    }

    /// The static Key-DEK of the card (for PUT KEY and encrypted STORE DATA),
    /// once the card is authenticated.
    pub fn dek(&self) -> Option<&AesKey> {
        match &self.state {
            State::CardAuthenticated { keys, .. }
            | State::AwaitingExternalAuthenticate { keys, .. }
            | State::Open { keys, .. } => Some(keys.dek()),
            _ => None,
        }
    }

    /// The session keys, once the card is authenticated (for diagnostics
    /// and tests against published values).
    pub fn session_keys(&self) -> Option<&SessionKeys> {
        match &self.state {
            State::CardAuthenticated { session, .. } => Some(session),
            State::AwaitingExternalAuthenticate { channel, .. } | State::Open { channel, .. } => {
                Some(channel.keys())
            }
            _ => None,
        }
    }

    /// Longest plain data field a command may have so that, once wrapped at
    /// the open channel's level, it fits in `max_wrapped` bytes (255 for a
    /// short APDU). `None` while the channel is not open.
    pub fn max_plain_data_len(&self, max_wrapped: usize) -> Option<usize> {
        match &self.state {
            State::Open { channel, .. } => {
                Some(channel.level().max_plain_len(channel.mode(), max_wrapped))
            }
            _ => None,
        }
    }

    /// The MAC chaining value (tests against published intermediate values).
    #[cfg(test)]
    pub(super) fn chaining_value(&self) -> Option<[u8; 16]> {
        match &self.state {
            State::AwaitingExternalAuthenticate { channel, .. } | State::Open { channel, .. } => {
                Some(channel.chaining_value())
            }
            _ => None,
        }
    }
}
