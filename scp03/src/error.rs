//! One error type for every SCP03 operation, host side and card side.
//!
//! Every variant that the card side can raise maps to the status word a
//! security domain should answer with ([`Error::status_word`]), so the
//! simulated card never has to guess.  Errors never carry key bytes, session
//! keys, plaintext or MAC values: only lengths, header bytes and status words.

/// What went wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- APDU framing -------------------------------------------------
    /// A command APDU that does not parse: shorter than its 4 header bytes,
    /// or Lc/Le fields that do not match its size (ISO/IEC 7816-3 §12.1.3).
    #[error(transparent)]
    Apdu(#[from] cardsmith_wire::apdu::ApduError),
    /// More command data than an APDU can carry (65 535 bytes), also after
    /// secure messaging added its padding and MAC.
    #[error("command data is {len} bytes; an APDU carries at most 65535")]
    DataTooLong { len: usize },
    /// Ne outside 1..=65536.
    #[error("Le (Ne) {le} is out of range 1..=65536")]
    BadLe { le: usize },
    /// A response APDU needs at least SW1 SW2.
    #[error("response is {len} bytes; it needs at least SW1 SW2")]
    ResponseTooShort { len: usize },
    /// A CLA byte this module cannot secure (already marked as secure
    /// messaging, or not an ISO/GlobalPlatform class).
    #[error("CLA {cla:02X} cannot carry GlobalPlatform secure messaging here")]
    UnsupportedCla { cla: u8 },

    // ---- keys -----------------------------------------------------------
    /// AES keys are 16, 24 or 32 bytes.
    #[error("AES key is {len} bytes; expected 16, 24 or 32")]
    BadKeyLength { len: usize },
    /// Key-ENC, Key-MAC and Key-DEK of one key set must have the same length
    /// (Amendment D §6.1).
    #[error("ENC, MAC and DEK keys of one key set must have the same length")]
    KeyLengthMismatch,
    /// Key version numbers are '01'..'7F' (GPCS §11.8.2.1).
    #[error("key version number {kvn:02X} is out of range 01..7F")]
    BadKvn { kvn: u8 },
    /// Key diversification data is the first 10 bytes of the INITIALIZE
    /// UPDATE response.
    #[error("key diversification data is {len} bytes; expected 10")]
    BadKdd { len: usize },

    // ---- protocol parameters ----------------------------------------------
    /// Host challenge of the wrong length for the S8/S16 mode.
    #[error("challenge is {got} bytes; this mode needs {expected}")]
    BadChallengeLength { expected: usize, got: usize },
    /// Not one of the EXTERNAL AUTHENTICATE P1 values of Amendment D Table 7-3.
    #[error("security level {level:02X} is not one of 00, 01, 03, 11, 13, 33")]
    BadSecurityLevel { level: u8 },
    /// The level asks for R-MAC or R-ENC but the "i" parameter says the card
    /// does not support it (Amendment D Table 5-1).
    #[error("security level {level:02X} is not supported with i={i_param:02X}")]
    LevelNotSupported { level: u8, i_param: u8 },
    /// "i" parameter with RFU bits set, or R-ENC without R-MAC.
    #[error("SCP03 i parameter {i_param:02X} is not valid")]
    BadIParameter { i_param: u8 },

    // ---- INITIALIZE UPDATE ------------------------------------------------
    /// The INITIALIZE UPDATE response data is not laid out as Amendment D
    /// Table 7-2 says.
    #[error("malformed INITIALIZE UPDATE response: {0}")]
    MalformedInitUpdateResponse(&'static str),
    /// The card answered with another Secure Channel Protocol.
    #[error("card uses SCP{scp:02X}, not SCP03")]
    NotScp03 { scp: u8 },
    /// The card used another key version than the one asked for.
    #[error("asked for key version {requested:02X}, card used {returned:02X}")]
    KvnMismatch { requested: u8, returned: u8 },
    /// The card's "i" parameter selects S8 and the host uses S16, or the
    /// other way round.
    #[error("the card's i parameter selects another S8/S16 mode than the host's")]
    ModeMismatch,
    /// **Wrong static keys**: the card cryptogram in the INITIALIZE UPDATE
    /// response is not the one the host computes. Nothing more is sent.
    #[error(
        "card cryptogram does not match: the static keys are wrong (or the card is not genuine)"
    )]
    CardCryptogramMismatch,
    /// The 3-byte sequence counter reached FFFFFF (Amendment D §6.2.2.1).
    #[error("the sequence counter is exhausted; the key set must be replaced")]
    SequenceCounterExhausted,
    /// The card has no key set with the requested version.
    #[error("no key set with version {kvn:02X}")]
    KeyNotFound { kvn: u8 },

    // ---- card-side authentication -----------------------------------------
    /// The host cryptogram in EXTERNAL AUTHENTICATE is wrong.
    #[error("host cryptogram does not match")]
    HostCryptogramMismatch,
    /// The command is not the one expected here (wrong INS, or EXTERNAL
    /// AUTHENTICATE without a preceding INITIALIZE UPDATE).
    #[error("command not allowed here: {0}")]
    UnexpectedCommand(&'static str),
    /// P1/P2 are not valid for this command.
    #[error("incorrect P1/P2: {0}")]
    WrongParameters(&'static str),
    /// The data field has the wrong length for this command.
    #[error("wrong data length: {0}")]
    WrongLength(&'static str),

    // ---- secure messaging ---------------------------------------------------
    /// The C-MAC of a command does not verify (tampered, replayed, or sent
    /// out of order). The card aborts the session and answers '6982'.
    #[error("C-MAC does not verify")]
    CMacMismatch,
    /// The R-MAC of a response does not verify.
    #[error("R-MAC does not verify")]
    RMacMismatch,
    /// Encrypted data whose length is not a multiple of 16, or whose
    /// ISO/IEC 9797-1 method 2 padding is wrong after decryption.
    #[error("encrypted data is malformed: {0}")]
    BadCiphertext(&'static str),
    /// A response that should carry an R-MAC is too short to hold one, or an
    /// error status word comes with data.
    #[error("malformed secured response: {0}")]
    MalformedResponse(&'static str),
    /// The operation needs another state of the session (e.g. `wrap` before
    /// EXTERNAL AUTHENTICATE succeeded).
    #[error("secure channel is not in the right state: {0}")]
    State(&'static str),
    /// A security error aborted the session; only a new INITIALIZE UPDATE
    /// opens another one (Amendment D §5.6).
    #[error("the secure channel session was aborted after a security error")]
    SessionAborted,
    /// The 128-bit encryption counter wrapped around (not reachable in practice).
    #[error("encryption counter exhausted")]
    CounterExhausted,
    /// The card answered a secure channel command with this status word.
    #[error("card answered with status {sw:04X}")]
    CardStatus { sw: u16 },

    // ---- PUT KEY / STORE DATA / DGI -------------------------------------------
    /// A DGI stream that does not parse (truncated header, length or value).
    #[error("malformed DGI data: {0}")]
    MalformedDgi(&'static str),
    /// A PUT KEY data field that does not parse.
    #[error("malformed PUT KEY data: {0}")]
    MalformedPutKey(&'static str),
    /// The key check value of the key at this position (0-based) does not
    /// match the decrypted key, or the card returned other KCVs than sent.
    #[error("key check value mismatch for key {index}")]
    KcvMismatch { index: usize },
    /// STORE DATA blocks out of sequence (P2 block number).
    #[error("STORE DATA block {got} received, expected {expected}")]
    StoreDataSequence { expected: u8, got: u8 },
    /// STORE DATA numbers blocks 00..FF, so at most 256 blocks fit.
    #[error("STORE DATA needs {blocks} blocks; at most 256 are possible")]
    TooManyBlocks { blocks: usize },
}

impl Error {
    /// The status word a card answers with when it hits this error.
    ///
    /// Values from GPCS v2.3.1 §11.1.3 (general error conditions), Table
    /// 11-78 (PUT KEY), Table D-9 (EXTERNAL AUTHENTICATE: '6300' for a wrong
    /// host cryptogram) and Amendment D §6.2.2.1 ('6985' when the sequence counter is
    /// exhausted). Security errors in secure messaging are '6982'.
    pub fn status_word(&self) -> u16 {
        match self {
            Error::Apdu(_)
            | Error::DataTooLong { .. }
            | Error::BadLe { .. }
            | Error::WrongLength(_)
            | Error::BadChallengeLength { .. } => 0x6700,
            Error::UnsupportedCla { .. } => 0x6E00,
            Error::HostCryptogramMismatch => 0x6300,
            Error::CMacMismatch
            | Error::BadCiphertext(_)
            | Error::SessionAborted
            | Error::KcvMismatch { .. } => 0x6982,
            Error::SequenceCounterExhausted | Error::UnexpectedCommand(_) | Error::State(_) => {
                0x6985
            }
            Error::BadSecurityLevel { .. }
            | Error::LevelNotSupported { .. }
            | Error::WrongParameters(_)
            | Error::StoreDataSequence { .. } => 0x6A86,
            Error::KeyNotFound { .. } => 0x6A88,
            Error::CardStatus { sw } => *sw,
            // Everything else is a malformed data field.
            _ => 0x6A80,
        }
    }
}

/// Result with this module's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
