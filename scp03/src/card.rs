//! The card (security domain) side of an SCP03 secure channel, for the
//! simulated card.
//!
//! ```text
//! let mut sd = CardSession::new(keys, kdd, 0x70, ChallengeSource::PseudoRandom { .. })?;
//! for apdu in incoming {
//!     match sd.receive(&apdu) {
//!         Incoming::Handled(resp) => reply(resp),            // INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, or a rejection
//!         Incoming::Application(cmd) => {                    // verified and decrypted
//!             let (data, sw) = run(cmd, sd.level());
//!             reply(sd.wrap_response(&data, sw)?)            // R-MAC / R-ENC
//!         }
//!     }
//! }
//! ```
//!
//! Protocol rules (Amendment D §5.6): a new INITIALIZE UPDATE ends any
//! session; a security error (bad C-MAC, bad cryptogram or padding) aborts
//! the session, after which every command is refused with '6982' until the
//! next INITIALIZE UPDATE; without a session, plain commands pass through
//! unchecked and the application applies its own rules using [`CardSession::level`].

use super::channel::{
    check_i_param, Channel, InitUpdateResponse, Mode, SecurityLevel, I_PSEUDO_RANDOM,
};
use super::error::{Error, Result};
use super::host::{INS_EXTERNAL_AUTHENTICATE, INS_INITIALIZE_UPDATE};
use super::keys::{pseudo_random_card_challenge, SessionKeys, StaticKeys};
use cardsmith_wire::apdu::{Command, Response};

/// Largest 3-byte sequence counter value.
const SEQUENCE_COUNTER_MAX: u32 = 0x00FF_FFFF;

/// A caller-supplied random source: fills the buffer with fresh random bytes.
pub type RandomFill = Box<dyn FnMut(&mut [u8]) + Send>;

/// How the card makes its challenges; must agree with the "i" parameter's
/// b5 (Amendment D Table 5-1).
pub enum ChallengeSource {
    /// Pseudo-random challenges (i b5 = 1, §6.2.2.1): each INITIALIZE UPDATE
    /// increments the key set's 3-byte sequence counter and derives the
    /// challenge with KDF(Key-ENC, '02', counter ‖ AID). `sequence_counter` is
    /// the last value used (0 for a fresh key set, so the first session uses
    /// 000001); `aid` is the AID of the application invoking the secure
    /// channel (5 to 16 bytes), normally the security domain's own.
    PseudoRandom { sequence_counter: u32, aid: Vec<u8> },
    /// Random challenges (i b5 = 0): this closure fills the challenge.
    Random(RandomFill),
}

impl std::fmt::Debug for ChallengeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChallengeSource::PseudoRandom {
                sequence_counter,
                aid,
            } => f
                .debug_struct("PseudoRandom")
                .field("sequence_counter", &format_args!("{sequence_counter:06X}"))
                .field("aid_len", &aid.len())
                .finish(),
            ChallengeSource::Random(_) => f.write_str("Random"),
        }
    }
}

enum State {
    /// No secure channel session (NO_SECURITY_LEVEL).
    Idle,
    /// INITIALIZE UPDATE answered; waiting for EXTERNAL AUTHENTICATE.
    Initialized {
        session: SessionKeys,
        host_challenge: Vec<u8>,
        card_challenge: Vec<u8>,
    },
    /// Secure channel session open.
    Open(Channel),
    /// Aborted after a security error: everything is refused until the next
    /// INITIALIZE UPDATE.
    Aborted,
}

/// What [`CardSession::receive`] made of an incoming APDU.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// Answer this to the host right away: the response to INITIALIZE UPDATE
    /// or EXTERNAL AUTHENTICATE, or the status word of a rejected command.
    Handled(Response),
    /// A command for the application, with secure messaging removed. Answer
    /// it through [`CardSession::wrap_response`].
    Application(Command),
}

/// A security domain's SCP03 key set and its secure channel session.
pub struct CardSession {
    keys: StaticKeys,
    kdd: [u8; 10],
    i_param: u8,
    challenges: ChallengeSource,
    state: State,
}

impl std::fmt::Debug for CardSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Idle => "idle",
            State::Initialized { .. } => "initialized",
            State::Open(_) => "open",
            State::Aborted => "aborted",
        };
        f.debug_struct("CardSession")
            .field("keys", &self.keys)
            .field("i_param", &format_args!("{:02X}", self.i_param))
            .field("challenges", &self.challenges)
            .field("state", &state)
            .field("level", &self.level())
            .finish()
    }
}

impl CardSession {
    /// A security domain with this key set, key diversification data (the
    /// first 10 bytes of its INITIALIZE UPDATE responses), "i" parameter
    /// (e.g. '70': pseudo-random challenges, R-MAC and R-ENC, S8; '71' the
    /// same in S16) and challenge source.
    pub fn new(
        keys: StaticKeys,
        kdd: [u8; 10],
        i_param: u8,
        challenges: ChallengeSource,
    ) -> Result<CardSession> {
        check_i_param(i_param)?;
        let pseudo = i_param & I_PSEUDO_RANDOM != 0;
        match &challenges {
            ChallengeSource::PseudoRandom {
                sequence_counter,
                aid,
            } => {
                if !pseudo {
                    return Err(Error::BadIParameter { i_param });
                }
                if !(5..=16).contains(&aid.len()) {
                    return Err(Error::WrongLength("AID must have 5 to 16 bytes"));
                }
                if *sequence_counter > SEQUENCE_COUNTER_MAX {
                    return Err(Error::SequenceCounterExhausted);
                }
            }
            ChallengeSource::Random(_) => {
                if pseudo {
                    return Err(Error::BadIParameter { i_param });
                }
            }
        }
        Ok(CardSession {
            keys,
            kdd,
            i_param,
            challenges,
            state: State::Idle,
        })
    }

    /// S8 or S16, from the "i" parameter.
    pub fn mode(&self) -> Mode {
        Mode::from_i_param(self.i_param)
    }

    pub fn i_param(&self) -> u8 {
        self.i_param
    }

    /// The key set in use.
    pub fn keys(&self) -> &StaticKeys {
        &self.keys
    }

    /// The last sequence counter value used (pseudo-random challenges only).
    pub fn sequence_counter(&self) -> Option<u32> {
        match &self.challenges {
            ChallengeSource::PseudoRandom {
                sequence_counter, ..
            } => Some(*sequence_counter),
            ChallengeSource::Random(_) => None,
        }
    }

    /// Replace the whole key set (after a successful PUT KEY). The sequence
    /// counter restarts at zero (§6.2.2.1). The open session, if any, keeps
    /// its session keys until it ends.
    pub fn replace_keys(&mut self, keys: StaticKeys) {
        self.keys = keys;
        if let ChallengeSource::PseudoRandom {
            sequence_counter, ..
        } = &mut self.challenges
        {
            *sequence_counter = 0;
        }
    }

    /// The security level of the open session; `None` when no session is
    /// open (NO_SECURITY_LEVEL), including after an abort.
    pub fn level(&self) -> Option<SecurityLevel> {
        match &self.state {
            State::Open(channel) => Some(channel.level()),
            _ => None,
        }
    }

    /// The Current Security Level as the GlobalPlatform API reports it
    /// (Amendment D §5.5): '00' without a session, otherwise AUTHENTICATED
    /// ('80') plus C_MAC '01', C_DECRYPTION '02', R_MAC '10', R_ENCRYPTION '20'.
    pub fn current_security_level(&self) -> u8 {
        self.level().map_or(0x00, |l| 0x80 | l.p1())
    }

    /// Whether the session was aborted by a security error.
    pub fn is_aborted(&self) -> bool {
        matches!(self.state, State::Aborted)
    }

    /// Route an incoming APDU: INITIALIZE UPDATE (INS '50', CLA '80'–'83' or
    /// 'C0'–'CF') and EXTERNAL AUTHENTICATE (INS '82' while one is expected)
    /// are answered here; any other command is checked and unwrapped with
    /// [`CardSession::unwrap_command`]. Every error becomes its status word.
    pub fn receive(&mut self, apdu: &[u8]) -> Incoming {
        let (cla, ins) = match apdu {
            [cla, ins, ..] => (*cla, *ins),
            _ => {
                return Incoming::Handled(Response::status(
                    Error::Apdu(cardsmith_wire::apdu::ApduError::TooShort { len: apdu.len() })
                        .status_word(),
                ))
            }
        };
        let handled = |r: Result<Response>| {
            Incoming::Handled(r.unwrap_or_else(|e| Response::status(e.status_word())))
        };
        let gp_plain_cla = matches!(cla, 0x80..=0x83 | 0xC0..=0xCF);
        if ins == INS_INITIALIZE_UPDATE && gp_plain_cla {
            return handled(self.initialize_update(apdu));
        }
        if ins == INS_EXTERNAL_AUTHENTICATE && matches!(self.state, State::Initialized { .. }) {
            return handled(self.external_authenticate(apdu));
        }
        match self.unwrap_command(apdu) {
            Ok(cmd) => Incoming::Application(cmd),
            Err(e) => Incoming::Handled(Response::status(e.status_word())),
        }
    }

    /// Answer INITIALIZE UPDATE (GPCS §D.4.1, Amendment D §7.1.1): check the
    /// command, make the card challenge, derive the session keys and return
    /// KDD ‖ KVN '03' i ‖ card challenge ‖ card cryptogram [‖ sequence
    /// counter] with '9000'. Any session in progress ends first.
    pub fn initialize_update(&mut self, apdu: &[u8]) -> Result<Response> {
        self.state = State::Idle;
        let cmd = Command::parse(apdu)?;
        if !matches!(cmd.cla, 0x80..=0x83 | 0xC0..=0xCF) {
            return Err(Error::UnsupportedCla { cla: cmd.cla });
        }
        if cmd.ins != INS_INITIALIZE_UPDATE {
            return Err(Error::UnexpectedCommand("not INITIALIZE UPDATE"));
        }
        if cmd.p1 != 0 && cmd.p1 != self.keys.kvn() {
            return Err(Error::KeyNotFound { kvn: cmd.p1 });
        }
        let n = self.mode().len();
        if cmd.data().len() != n {
            return Err(Error::BadChallengeLength {
                expected: n,
                got: cmd.data().len(),
            });
        }
        let host_challenge = cmd.data().to_vec();
        let (card_challenge, sequence_counter) = match &mut self.challenges {
            ChallengeSource::PseudoRandom {
                sequence_counter,
                aid,
            } => {
                if *sequence_counter >= SEQUENCE_COUNTER_MAX {
                    return Err(Error::SequenceCounterExhausted);
                }
                *sequence_counter += 1;
                let [_, a, b, c] = sequence_counter.to_be_bytes();
                let counter = [a, b, c];
                let challenge = pseudo_random_card_challenge(self.keys.enc(), counter, aid, n)?;
                (challenge, Some(counter))
            }
            ChallengeSource::Random(fill) => {
                let mut challenge = vec![0u8; n];
                fill(&mut challenge);
                (challenge, None)
            }
        };
        let session = SessionKeys::derive(&self.keys, &host_challenge, &card_challenge)?;
        let card_cryptogram = session.card_cryptogram(&host_challenge, &card_challenge)?;
        let resp = InitUpdateResponse {
            kdd: self.kdd,
            kvn: self.keys.kvn(),
            scp: 0x03,
            i_param: self.i_param,
            card_challenge: card_challenge.clone(),
            card_cryptogram,
            sequence_counter,
        };
        self.state = State::Initialized {
            session,
            host_challenge,
            card_challenge,
        };
        Ok(Response::new(resp.to_bytes(), 0x9000))
    }

    /// Verify EXTERNAL AUTHENTICATE (Amendment D §7.1.2): P1 a valid level
    /// the "i" parameter supports, P2 '00', data = host cryptogram ‖ C-MAC
    /// (chaining value zero). Checks the C-MAC ('6982' if wrong) then the
    /// host cryptogram ('6300' if wrong); on success the session opens at
    /// that level and the answer is '9000' without R-MAC. Any failure aborts
    /// the session attempt.
    pub fn external_authenticate(&mut self, apdu: &[u8]) -> Result<Response> {
        let State::Initialized {
            session,
            host_challenge,
            card_challenge,
        } = std::mem::replace(&mut self.state, State::Aborted)
        else {
            return Err(Error::UnexpectedCommand(
                "EXTERNAL AUTHENTICATE without INITIALIZE UPDATE",
            ));
        };
        let cmd = Command::parse(apdu)?;
        if cmd.ins != INS_EXTERNAL_AUTHENTICATE {
            return Err(Error::UnexpectedCommand("not EXTERNAL AUTHENTICATE"));
        }
        let level = SecurityLevel::from_p1(cmd.p1)?;
        if !level.supported_by(self.i_param) {
            return Err(Error::LevelNotSupported {
                level: level.p1(),
                i_param: self.i_param,
            });
        }
        if cmd.p2 != 0 {
            return Err(Error::WrongParameters(
                "EXTERNAL AUTHENTICATE P2 must be 00",
            ));
        }
        let n = self.mode().len();
        if cmd.data().len() != 2 * n {
            return Err(Error::WrongLength(
                "EXTERNAL AUTHENTICATE data is host cryptogram and C-MAC",
            ));
        }
        let expected = session.host_cryptogram(&host_challenge, &card_challenge)?;
        let mut channel = Channel::for_external_authenticate(session, self.mode());
        let plain = channel.unwrap_command(apdu)?;
        if !cardsmith_wire::crypto::ct_eq(plain.data(), &expected) {
            return Err(Error::HostCryptogramMismatch);
        }
        channel.open(level);
        self.state = State::Open(channel);
        Ok(Response::status(0x9000))
    }

    /// Check and strip secure messaging from a command at the session's
    /// level: C-MAC (chained; [`Error::CMacMismatch`] → '6982' for a tampered,
    /// replayed or reordered command), then C-DECRYPTION. Any error aborts
    /// the session. Without a session, plain commands pass through and
    /// commands marked as secure messaging are refused.
    pub fn unwrap_command(&mut self, apdu: &[u8]) -> Result<Command> {
        match &mut self.state {
            State::Open(channel) => {
                let result = channel.unwrap_command(apdu);
                if result.is_err() {
                    self.state = State::Aborted;
                }
                result
            }
            State::Aborted => Err(Error::SessionAborted),
            State::Idle | State::Initialized { .. } => {
                // A command other than EXTERNAL AUTHENTICATE ends a pending
                // initiation.
                self.state = State::Idle;
                let cmd = Command::parse(apdu)?;
                let sm = if cmd.cla & 0x40 == 0 {
                    cmd.cla & 0x0C != 0
                } else {
                    cmd.cla & 0x20 != 0
                };
                if sm {
                    return Err(Error::State(
                        "secure messaging without a secure channel session",
                    ));
                }
                Ok(cmd)
            }
        }
    }

    /// Protect the application's answer to the last unwrapped command: R-MAC
    /// and R-ENC per the session level; error status words go out alone.
    /// Without a session the response is returned as is.
    pub fn wrap_response(&mut self, data: &[u8], sw: u16) -> Result<Response> {
        match &self.state {
            State::Open(channel) => channel.wrap_response(data, sw),
            _ => Ok(Response::new(data, sw)),
        }
    }
}
