//! The parsed form of a script: statements with their source locations.
//!
//! Nothing here holds a secret in the clear: literal bytes inside
//! `secret(...)` are kept in [`Expr::Secret`] and only become bytes in
//! [`super::eval`], wrapped in a zeroizing buffer.

use std::fmt;
use std::sync::Arc;

/// Where something is in a script: file, 1-based line and column (columns
/// count characters, as an editor shows them).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: usize,
    pub col: usize,
}

impl Loc {
    pub fn new(file: &Arc<str>, line: usize, col: usize) -> Loc {
        Loc {
            file: file.clone(),
            line,
            col,
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

impl fmt::Debug for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A byte expression: the concatenation of its terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    pub terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// Hex bytes as written.
    Hex(Vec<u8>),
    /// `"text"` (ASCII) or `u"text"` (UTF-8), already encoded.
    Text(Vec<u8>),
    /// `${name}`.
    Var { name: String, loc: Loc },
    /// `tlv(tag, value)`: tag, BER length of value, value.
    Tlv { tag: Box<Expr>, value: Box<Expr> },
    /// `len(x)`: the length of x as one byte (error above 255).
    Len { of: Box<Expr>, loc: Loc },
    /// `secret(x)`: x, marked sensitive.
    Secret(Box<Expr>),
    /// `personal(x)`: x, marked as a citizen's personal data.
    Personal(Box<Expr>),
    /// `apdu(header, data[, le])`: a command with Lc (and Le) computed.
    Apdu {
        header: Box<Expr>,
        data: Box<Expr>,
        le: Option<Box<Expr>>,
        loc: Loc,
    },
}

/// One element of a response data pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatItem {
    /// A byte with a mask: the response byte `b` matches when `b & mask == value`.
    Byte { value: u8, mask: u8 },
    /// `*`: any number of bytes (also none).
    Any,
    /// Exact bytes of an expression (`${var}`, `"text"`, `tlv(...)`).
    Expr(Expr),
}

/// A status word pattern such as `9000`, `61xx` or `63Cx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwPattern {
    pub value: u16,
    pub mask: u16,
}

impl SwPattern {
    pub fn matches(&self, sw: u16) -> bool {
        sw & self.mask == self.value
    }
}

impl fmt::Display for SwPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in (0..4).rev() {
            let shift = i * 4;
            if (self.mask >> shift) & 0xF == 0 {
                f.write_str("x")?;
            } else {
                write!(f, "{:X}", (self.value >> shift) & 0xF)?;
            }
        }
        Ok(())
    }
}

/// What a command's response must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// Alternatives: the status word must match one of them.
    pub sw: Vec<SwPattern>,
    /// The whole response data must match, if given.
    pub data: Option<Vec<PatItem>>,
}

/// A tag path step: a tag and which occurrence of it (0 = first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStep {
    pub tag: Vec<u8>,
    pub index: usize,
}

/// Where a capture takes its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureSource {
    /// The value of the data object at this tag path, e.g. `6F/84`.
    Tlv(Vec<PathStep>),
    /// Bytes `start..end` of the response data (end exclusive; None = to the end).
    Range { start: usize, end: Option<usize> },
    /// The status word, two bytes.
    Sw,
}

/// How a chunked write addresses its pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkKind {
    /// UPDATE BINARY (INS D6) at increasing offsets; the first piece may
    /// name the EF by short identifier.
    UpdateBinary { offset: usize, sfi: Option<u8> },
    /// STORE DATA (INS E2) with block numbers in P2; P1 b8 marks the last block.
    StoreData { cla: u8, p1: u8 },
}

/// A switchable automatic behaviour of the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionName {
    /// GET RESPONSE on 61xx.
    GetResponse,
    /// Re-send with the exact Le on 6Cxx.
    Resend6C,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    /// Send an APDU.
    Command { apdu: Expr, expect: Option<Expect> },
    /// Send large data in as many commands as the card needs.
    Chunked {
        kind: ChunkKind,
        max: Option<usize>,
        data: Expr,
        expect: Option<Expect>,
    },
    /// Store part of the last response in a variable.
    Capture { name: String, source: CaptureSource },
    /// Bind a variable.
    Let { name: String, value: Expr },
    /// Mark variables sensitive, wherever their value comes from.
    SecretDecl { names: Vec<String> },
    /// Start a named test case.
    Test { name: String },
    /// Another script, inlined by the loader.
    Include { path: String },
    /// Switch an automatic behaviour on or off.
    SetOption { name: OptionName, on: bool },
    /// Warm reset of the card.
    Reset,
    /// End of the script (nothing after it runs).
    Exit,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub loc: Loc,
    pub kind: StmtKind,
}

/// A message about a construct that parses but deserves attention
/// (mostly: where pcsc-tools' scriptor would do something else).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: warning: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

/// A parsed script (includes already inlined when it came from [`super::load`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Script {
    pub stmts: Vec<Stmt>,
    pub warnings: Vec<Warning>,
}
