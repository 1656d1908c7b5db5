//! BER-TLV decoding and display (ISO/IEC 7816-4 data objects).
//!
//! This module owns one job: turn *any* byte string a card hands back (a
//! SELECT response, GET DATA output, the content of an EF) into a tree of
//! [`Node`]s that accounts for every input byte, name the well-known tags
//! (ISO/IEC 7816-4/-6/-11, GlobalPlatform, card-verifiable certificates),
//! and render the tree for an engineer. It never fails and never panics:
//! whatever does not parse is kept as a [`NodeKind::Raw`] node that says why.
//!
//! Why it is shaped this way:
//!
//! * `iso7816-tlv` is the parser of record: every element it can safely be
//!   given goes through `Tlv::from_bytes`, and the node is built from the
//!   `Tlv` it returns. Tags are always validated with the crate's `Tag`.
//! * The crate cannot be handed arbitrary input as-is, so we first *frame*
//!   each element ourselves (tag bytes checked by `Tag::try_from`, length
//!   decoded here) to learn its exact extent, and hand the crate exactly that
//!   slice. Reasons: `parse_all` silently drops a bad tail; a constructed
//!   TLV with one bad child is rejected whole; it reads the indefinite length
//!   `0x80` as "length 0"; it measures children by their *re-encoded* size,
//!   so a non-minimal length (e.g. `81 05`, legal BER) inside a template makes
//!   it read past the template's end; it recurses without a depth limit; and
//!   its positions are not exposed. Before calling it on a constructed element
//!   we check (iteratively) that the whole subtree is one it handles exactly
//!   (no padding, minimal lengths, depth within [`MAX_DEPTH`]).
//! * When the crate cannot or will not take an element, we fall back to our
//!   own framing for that element: its header is shown as a TLV node and its
//!   value is decoded child by child with the same procedure, so the inner
//!   TLVs that are fine are shown as TLVs and only the bad part is raw.
//! * Padding: ISO/IEC 7816-4 allows `00` and `FF` bytes before, between and
//!   after BER-TLV data objects. They are shown as [`NodeKind::Padding`]
//!   nodes, which are not errors ([`is_clean`] ignores them).
//! * Nodes keep `header_len` (tag + length field) so that the bytes of a node
//!   can be accounted for even when the length field is not minimal.

use std::fmt::{self, Write as _};

use iso7816_tlv::ber::{Tag, Tlv, Value};
use serde::Serialize;

/// Deepest nesting that is decoded. A constructed node at this depth (top
/// level is depth 0) keeps its value as one raw child instead of children.
pub const MAX_DEPTH: usize = 32;

/// How many value bytes [`render`] prints before eliding the rest.
pub const RENDER_MAX_VALUE_BYTES: usize = 64;

/// One element of decoded data, at `offset` bytes from the start of the input
/// given to [`decode`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub offset: usize,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeKind {
    /// A BER-TLV data object.
    Tlv {
        /// Raw tag bytes (1 to 3).
        tag: Vec<u8>,
        /// Constructed encoding (bit 6 of the first tag byte).
        constructed: bool,
        /// Bytes taken by the tag and length fields; the value starts at
        /// `offset + header_len`.
        header_len: usize,
        /// Length of the value field, in bytes.
        length: usize,
        /// Well-known name of the tag in its context, if any.
        name: Option<&'static str>,
        /// Value bytes (primitive only; empty when constructed).
        value: Vec<u8>,
        /// Decoded value (constructed only; empty when primitive).
        children: Vec<Node>,
    },
    /// `00` / `FF` filler allowed by ISO/IEC 7816-4 around data objects.
    Padding { bytes: Vec<u8> },
    /// Bytes that did not parse, with why.
    Raw { bytes: Vec<u8>, reason: String },
}

impl Node {
    /// Number of input bytes this node covers (header, value, children,
    /// padding or raw bytes).
    pub fn size(&self) -> usize {
        match &self.kind {
            NodeKind::Tlv {
                header_len, length, ..
            } => header_len.saturating_add(*length),
            NodeKind::Padding { bytes } | NodeKind::Raw { bytes, .. } => bytes.len(),
        }
    }
}

/// Decodes `data` as a sequence of BER-TLV data objects. Never panics and
/// never drops a byte: the nodes tile the input exactly.
pub fn decode(data: &[u8]) -> Vec<Node> {
    decode_seq(data, 0, 0, Ctx::default())
}

/// True when every node is a TLV (padding allowed) and no `Raw` node exists
/// at any depth.
pub fn is_clean(nodes: &[Node]) -> bool {
    nodes.iter().all(|n| match &n.kind {
        NodeKind::Tlv { children, .. } => is_clean(children),
        NodeKind::Padding { .. } => true,
        NodeKind::Raw { .. } => false,
    })
}

/// Name of a tag, given the tag of the enclosing template (if any). Tags
/// whose meaning depends on the template (context-specific ones such as
/// `80`) are named only when `parent` tells which template it is.
pub fn tag_name(tag: &[u8], parent: Option<&[u8]>) -> Option<&'static str> {
    names::lookup(
        tag,
        Ctx {
            parent,
            grandparent: None,
        },
    )
}

/// Renders nodes as an indented tree, one node per line, 2 spaces per level.
pub fn render(nodes: &[Node]) -> String {
    let mut out = String::new();
    render_into(&mut out, nodes, 0, Ctx::default());
    out
}

// ---------------------------------------------------------------------------
// Errors (reasons attached to raw nodes)
// ---------------------------------------------------------------------------

/// `iso7816_tlv::TlvError` does not implement `std::error::Error` (the crate
/// gates that impl behind a feature it never declares), so it is wrapped.
#[derive(Debug, Clone, PartialEq)]
struct CrateError(iso7816_tlv::TlvError);

impl fmt::Display for CrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for CrateError {}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum Malformed {
    #[error("truncated tag: input ends after {have} byte(s) of a multi-byte tag")]
    TruncatedTag { have: usize },
    #[error("tag longer than 3 bytes (reserved for future use in ISO/IEC 7816)")]
    TagTooLong,
    #[error("invalid tag: {0}")]
    BadTag(#[source] CrateError),
    #[error("missing length: input ends after the tag")]
    MissingLength,
    #[error("truncated length: 0x{first:02X} announces {need} length byte(s), {have} left")]
    TruncatedLength { first: u8, need: usize, have: usize },
    #[error("indefinite length (0x80) is not allowed in ISO/IEC 7816 BER-TLV")]
    IndefiniteLength,
    #[error("unsupported length field 0x{0:02X} (at most 4 subsequent length bytes)")]
    LengthTooLong(u8),
    #[error("length 0x{length:X} runs past the end: {left} bytes left")]
    PastEnd { length: usize, left: usize },
    #[error("nested deeper than {MAX_DEPTH} levels: value not decoded")]
    TooDeep,
    #[error("rejected by iso7816-tlv: {0}")]
    Rejected(#[source] CrateError),
}

// ---------------------------------------------------------------------------
// Framing: our own view of one element's header
// ---------------------------------------------------------------------------

/// The enclosing templates of a position, used for context-dependent names
/// and value decodes.
#[derive(Debug, Clone, Copy, Default)]
struct Ctx<'a> {
    parent: Option<&'a [u8]>,
    grandparent: Option<&'a [u8]>,
}

impl<'a> Ctx<'a> {
    fn child(self, tag: &'a [u8]) -> Ctx<'a> {
        Ctx {
            parent: Some(tag),
            grandparent: self.parent,
        }
    }
}

#[derive(Debug, Clone)]
struct Header {
    tag_len: usize,
    constructed: bool,
    header_len: usize,
    length: usize,
    /// Length field uses the shortest form for `length`.
    minimal: bool,
}

fn is_padding(b: u8) -> bool {
    b == 0x00 || b == 0xFF
}

/// Size of the shortest length field for `length`.
fn len_field_size(length: usize) -> usize {
    match length {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        0x100..=0xFFFF => 3,
        0x1_0000..=0xFF_FFFF => 4,
        _ => 5,
    }
}

/// Reads the tag and length fields at the start of `data` (non-empty, first
/// byte not padding). Does not check that the value fits.
fn read_header(data: &[u8]) -> Result<Header, Malformed> {
    let first = *data.first().ok_or(Malformed::TruncatedTag { have: 0 })?;
    let mut tag_len = 1;
    if first & 0x1F == 0x1F {
        loop {
            let b = *data
                .get(tag_len)
                .ok_or(Malformed::TruncatedTag { have: tag_len })?;
            tag_len += 1;
            if b & 0x80 == 0 {
                break;
            }
            if tag_len >= 3 {
                return Err(Malformed::TagTooLong);
            }
        }
    }
    let tag_bytes = data
        .get(..tag_len)
        .ok_or(Malformed::TruncatedTag { have: data.len() })?;
    let tag_value = tag_bytes
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let tag = Tag::try_from(tag_value).map_err(|e| Malformed::BadTag(CrateError(e)))?;

    let l0 = *data.get(tag_len).ok_or(Malformed::MissingLength)?;
    let (length, len_len) = if l0 < 0x80 {
        (usize::from(l0), 1)
    } else if l0 == 0x80 {
        return Err(Malformed::IndefiniteLength);
    } else {
        let n = usize::from(l0 & 0x7F);
        if n > 4 {
            return Err(Malformed::LengthTooLong(l0));
        }
        let start = tag_len + 1;
        let bytes = data
            .get(start..start + n)
            .ok_or(Malformed::TruncatedLength {
                first: l0,
                need: n,
                have: data.len().saturating_sub(start),
            })?;
        let v = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        (usize::try_from(v).unwrap_or(usize::MAX), 1 + n)
    };
    Ok(Header {
        tag_len,
        constructed: tag.is_constructed(),
        header_len: tag_len + len_len,
        length,
        minimal: len_len == len_field_size(length),
    })
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Decodes a sequence of elements (top level or a constructed value).
/// `base` is the offset of `data[0]` in the original input.
fn decode_seq(data: &[u8], base: usize, depth: usize, ctx: Ctx<'_>) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut pos = 0;
    while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
        let offset = base + pos;
        let pad = rest.iter().take_while(|&&b| is_padding(b)).count();
        if pad > 0 {
            let bytes = rest.get(..pad).unwrap_or(rest).to_vec();
            nodes.push(Node {
                offset,
                kind: NodeKind::Padding { bytes },
            });
            pos += pad;
            continue;
        }
        let header = match read_header(rest) {
            Ok(h) => h,
            Err(e) => {
                nodes.push(raw(offset, rest, &e));
                break;
            }
        };
        let left = rest.len().saturating_sub(header.header_len);
        if header.length > left {
            let e = Malformed::PastEnd {
                length: header.length,
                left,
            };
            nodes.push(raw(offset, rest, &e));
            break;
        }
        let Some(elem) = rest.get(..header.header_len + header.length) else {
            // Unreachable given the check above; keep the bytes anyway.
            let e = Malformed::PastEnd {
                length: header.length,
                left,
            };
            nodes.push(raw(offset, rest, &e));
            break;
        };
        nodes.push(decode_element(elem, &header, offset, depth, ctx));
        pos += elem.len();
    }
    nodes
}

fn raw(offset: usize, bytes: &[u8], reason: &Malformed) -> Node {
    Node {
        offset,
        kind: NodeKind::Raw {
            bytes: bytes.to_vec(),
            reason: reason.to_string(),
        },
    }
}

/// Decodes one framed element: `elem` is exactly its tag, length and value.
fn decode_element(elem: &[u8], header: &Header, offset: usize, depth: usize, ctx: Ctx<'_>) -> Node {
    if crate_can_take(elem, header, depth) {
        match Tlv::from_bytes(elem) {
            Ok(tlv) => {
                if let Some(node) = from_crate(&tlv, offset, header.header_len, ctx) {
                    return node;
                }
            }
            Err(e) if !header.constructed => {
                return raw(offset, elem, &Malformed::Rejected(CrateError(e)));
            }
            Err(_) => {}
        }
    }
    fallback(elem, header, offset, depth, ctx)
}

/// Whether `iso7816-tlv` will parse `elem` exactly as BER framing says:
/// every descendant well-formed, minimal length fields, no padding, and
/// nesting within [`MAX_DEPTH`]. Iterative, so deep input cannot exhaust the
/// stack here (the crate itself recurses once per level).
fn crate_can_take(elem: &[u8], header: &Header, depth: usize) -> bool {
    if !header.constructed {
        return true;
    }
    if depth >= MAX_DEPTH {
        return false;
    }
    // Ends of the open containers; the element itself is the outermost.
    let mut ends: Vec<usize> = vec![elem.len()];
    let mut pos = header.header_len;
    loop {
        while ends.last() == Some(&pos) {
            ends.pop();
        }
        let Some(&end) = ends.last() else {
            return true;
        };
        let Some(rest) = elem.get(pos..end) else {
            return false;
        };
        match rest.first() {
            None => return false,
            Some(&b) if is_padding(b) => return false,
            Some(_) => {}
        }
        let Ok(h) = read_header(rest) else {
            return false;
        };
        if !h.minimal || h.length > rest.len().saturating_sub(h.header_len) {
            return false;
        }
        if h.constructed && h.length > 0 {
            if depth + ends.len() >= MAX_DEPTH {
                return false;
            }
            ends.push(pos + h.header_len + h.length);
            pos += h.header_len;
        } else {
            pos += h.header_len + h.length;
        }
    }
}

/// Builds nodes from the crate's parse. Only called on subtrees that
/// [`crate_can_take`] accepted, where every child's encoded size equals the
/// crate's re-encoded size, so offsets follow from the lengths. Returns
/// `None` if the tree does not add up (then the caller falls back).
fn from_crate(tlv: &Tlv, offset: usize, header_len: usize, ctx: Ctx<'_>) -> Option<Node> {
    let tag = tlv.tag().to_bytes();
    let name = names::lookup(tag, ctx);
    let kind = match tlv.value() {
        Value::Primitive(v) => NodeKind::Tlv {
            tag: tag.to_vec(),
            constructed: false,
            header_len,
            length: v.len(),
            name,
            value: v.clone(),
            children: Vec::new(),
        },
        Value::Constructed(kids) => {
            let start = offset + header_len;
            let mut pos = start;
            let mut children = Vec::with_capacity(kids.len());
            for kid in kids {
                let kid_header = kid.tag().len_as_bytes() + len_field_size(kid.length());
                let node = from_crate(kid, pos, kid_header, ctx.child(tag))?;
                pos = pos.checked_add(node.size())?;
                children.push(node);
            }
            let length = pos - start;
            if length != tlv.length() {
                return None;
            }
            NodeKind::Tlv {
                tag: tag.to_vec(),
                constructed: true,
                header_len,
                length,
                name,
                value: Vec::new(),
                children,
            }
        }
    };
    Some(Node { offset, kind })
}

/// Our own view of an element the crate could not take: the header from our
/// framing, the value decoded child by child (constructed) or kept as is.
fn fallback(elem: &[u8], header: &Header, offset: usize, depth: usize, ctx: Ctx<'_>) -> Node {
    let tag = elem.get(..header.tag_len).unwrap_or_default();
    let value = elem.get(header.header_len..).unwrap_or_default();
    let value_offset = offset + header.header_len;
    let (value_bytes, children) = if !header.constructed {
        (value.to_vec(), Vec::new())
    } else if value.is_empty() {
        (Vec::new(), Vec::new())
    } else if depth >= MAX_DEPTH {
        (
            Vec::new(),
            vec![raw(value_offset, value, &Malformed::TooDeep)],
        )
    } else {
        let children = decode_seq(value, value_offset, depth + 1, ctx.child(tag));
        (Vec::new(), children)
    };
    Node {
        offset,
        kind: NodeKind::Tlv {
            tag: tag.to_vec(),
            constructed: header.constructed,
            header_len: header.header_len,
            length: value.len(),
            name: names::lookup(tag, ctx),
            value: value_bytes,
            children,
        },
    }
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

fn render_into(out: &mut String, nodes: &[Node], level: usize, ctx: Ctx<'_>) {
    for node in nodes {
        let indent = "  ".repeat(level);
        out.push_str(&indent);
        match &node.kind {
            NodeKind::Tlv {
                tag,
                constructed,
                header_len,
                length,
                name,
                value,
                children,
            } => {
                out.push_str(&hex_compact(tag));
                if let Some(name) = name {
                    let _ = write!(out, " ({name})");
                }
                let _ = write!(out, " len {length}");
                if tag.len() + len_field_size(*length) != *header_len {
                    out.push_str(" [non-minimal length field]");
                }
                if !*constructed && !value.is_empty() {
                    out.push_str(": ");
                    out.push_str(&hex_spaced_limited(value));
                    // A specific decode beats the ASCII view (`82 01 38` is
                    // a DF, not the text "8").
                    match decode_value(tag, value, ctx) {
                        Some(meaning) => {
                            let _ = write!(out, " = {meaning}");
                        }
                        None => {
                            if let Some(text) = printable(value) {
                                let _ = write!(out, " \"{text}\"");
                            }
                        }
                    }
                }
                out.push('\n');
                render_into(out, children, level + 1, ctx.child(tag));
            }
            NodeKind::Padding { bytes } => {
                let _ = writeln!(
                    out,
                    "padding @{} ({}): {}",
                    node.offset,
                    count_bytes(bytes.len()),
                    hex_spaced_limited(bytes)
                );
            }
            NodeKind::Raw { bytes, reason } => {
                let _ = writeln!(
                    out,
                    "RAW @{} ({}): {} -- {reason}",
                    node.offset,
                    count_bytes(bytes.len()),
                    hex_spaced_limited(bytes)
                );
            }
        }
    }
}

fn count_bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

fn hex_compact(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn hex_spaced_limited(bytes: &[u8]) -> String {
    let shown = bytes.get(..RENDER_MAX_VALUE_BYTES).unwrap_or(bytes);
    let mut s = shown
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ");
    if bytes.len() > shown.len() {
        let _ = write!(s, " ... ({} bytes in all)", bytes.len());
    }
    s
}

/// The value as text when every byte is printable ASCII.
fn printable(value: &[u8]) -> Option<String> {
    if value.is_empty() || !value.iter().all(|b| (0x20..=0x7E).contains(b)) {
        return None;
    }
    let shown = value.get(..RENDER_MAX_VALUE_BYTES).unwrap_or(value);
    let mut s = String::with_capacity(shown.len());
    for &b in shown {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            _ => s.push(char::from(b)),
        }
    }
    if value.len() > shown.len() {
        s.push_str("...");
    }
    Some(s)
}

fn be_uint(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 8 {
        return None;
    }
    Some(value.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Short meaning of well-known primitive values, where cheap and unambiguous.
fn decode_value(tag: &[u8], value: &[u8], ctx: Ctx<'_>) -> Option<String> {
    let in_fcx = matches!(ctx.parent, Some([0x62] | [0x6F]));
    match (tag, value) {
        ([0x06], _) => decode_oid(value),
        ([0x80] | [0x81], _) if in_fcx => be_uint(value).map(|n| format!("{n} bytes")),
        ([0x82], [fdb, ..]) if in_fcx => Some(file_descriptor(*fdb)),
        ([0x83], [hi, lo]) if in_fcx => Some(if [*hi, *lo] == [0x3F, 0x00] {
            "FID 3F00 (MF)".to_string()
        } else {
            format!("FID {hi:02X}{lo:02X}")
        }),
        ([0x88], [b]) if in_fcx && b & 0x07 == 0 => Some(format!("SFI {}", b >> 3)),
        ([0x8A], [b]) if in_fcx => Some(lcs_meaning(*b).to_string()),
        ([0x9F, 0x65], _) if ctx.parent == Some(&[0xA5]) => {
            be_uint(value).map(|n| format!("{n} bytes"))
        }
        _ => None,
    }
}

/// File descriptor byte, ISO/IEC 7816-4 (first byte of tag `82`).
fn file_descriptor(b: u8) -> String {
    if b & 0x80 != 0 {
        return "proprietary file descriptor".to_string();
    }
    let share = if b & 0x40 != 0 {
        "shareable"
    } else {
        "not shareable"
    };
    let kind = match b & 0x3F {
        0x38 => "DF".to_string(),
        0x39 => "EF for BER-TLV data objects".to_string(),
        0x3A => "EF for SIMPLE-TLV data objects".to_string(),
        low => {
            let category = match (low >> 3) & 0x07 {
                0 => "working EF",
                1 => "internal EF",
                7 => "RFU",
                _ => "proprietary EF",
            };
            let structure = match low & 0x07 {
                0 => "no structure information",
                1 => "transparent",
                2 => "linear fixed",
                3 => "linear fixed, TLV",
                4 => "linear variable",
                5 => "linear variable, TLV",
                6 => "cyclic",
                _ => "cyclic, TLV",
            };
            format!("{category}, {structure}")
        }
    };
    format!("{kind}, {share}")
}

/// Dotted form of a DER object identifier value.
fn decode_oid(value: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    let mut in_arc = false;
    for &b in value {
        if !in_arc && b == 0x80 {
            return None; // non-minimal sub-identifier
        }
        acc = acc.checked_mul(128)? | u64::from(b & 0x7F);
        in_arc = b & 0x80 != 0;
        if !in_arc {
            arcs.push(acc);
            acc = 0;
        }
    }
    if in_arc || arcs.is_empty() {
        return None;
    }
    let first = *arcs.first()?;
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut s = format!("OID {a}.{b}");
    for arc in arcs.iter().skip(1) {
        let _ = write!(s, ".{arc}");
    }
    Some(s)
}

// ---------------------------------------------------------------------------
// Tag names
// ---------------------------------------------------------------------------

mod names {
    //! Names of well-known tags. Context-specific (`8x`, `Ax`) and private
    //! (`Cx`, `Ex`) tags only mean something inside a known template, so they
    //! are named from the parent (and, where needed, grandparent). Tags we are
    //! not sure of are left unnamed.

    use super::Ctx;

    pub(super) fn lookup(tag: &[u8], ctx: Ctx<'_>) -> Option<&'static str> {
        in_context(tag, ctx).or_else(|| anywhere(tag, ctx))
    }

    fn in_context(tag: &[u8], ctx: Ctx<'_>) -> Option<&'static str> {
        let parent = ctx.parent?;
        let name = match parent {
            // FCP / FCI templates, ISO/IEC 7816-4.
            [0x62] | [0x6F] => match tag {
                [0x80] => "File size (data bytes)",
                [0x81] => "Total file size (incl. structural information)",
                [0x82] => "File descriptor",
                [0x83] => "File identifier",
                [0x84] => "DF name",
                [0x85] => "Proprietary information (not BER-TLV)",
                [0x86] => "Security attribute (proprietary format)",
                [0x87] => "Identifier of an EF containing an FCI extension",
                [0x88] => "Short EF identifier",
                [0x8A] => "Life cycle status",
                [0x8B] => "Security attribute (referencing expanded format)",
                [0x8C] => "Security attribute (compact format)",
                [0x8D] => "Identifier of an EF containing security environment templates",
                [0x8E] => "Channel security attribute",
                [0xA0] => "Security attribute template for data objects",
                [0xA1] => "Security attribute template (proprietary format)",
                [0xA2] => "Short EF identifier / path pairs template",
                [0xA5] => "Proprietary information",
                [0xAB] => "Security attribute template (expanded format)",
                [0xAC] => "Cryptographic mechanism identifier template",
                _ => return None,
            },
            // Proprietary data of a GlobalPlatform / EMV FCI.
            [0xA5] => match tag {
                [0x73] => "Security domain management data",
                [0x88] => "Short EF identifier",
                [0x9F, 0x65] => "Maximum length of data field in command message",
                [0x9F, 0x6E] => "Application production life cycle data",
                [0xBF, 0x0C] => "FCI issuer discretionary data",
                _ => return None,
            },
            // GlobalPlatform card data.
            [0x66] => match tag {
                [0x73] => "Card recognition data",
                _ => return None,
            },
            // GlobalPlatform card recognition / SD management data.
            [0x73] => match tag {
                [0x06] => "Object identifier (GlobalPlatform)",
                [0x60] => "Card management type and version",
                [0x63] => "Card identification scheme",
                [0x64] => "Secure channel protocol and implementation options",
                [0x65] => "Card configuration details",
                [0x66] => "Card / chip details",
                _ => return None,
            },
            // GlobalPlatform registry data (GET STATUS).
            [0xE3] => match tag {
                [0x4F] => "Application identifier (AID)",
                [0x84] => "Executable module AID",
                [0x9F, 0x70] => "Life cycle state",
                [0xC4] => "Application's executable load file AID",
                [0xC5] => "Privileges",
                [0xCC] => "Associated security domain AID",
                [0xCE] => "Executable load file version number",
                _ => return None,
            },
            // GlobalPlatform key information template.
            [0xE0] => match tag {
                [0xC0] => "Key information data",
                _ => return None,
            },
            // Public key (ISO/IEC 7816-8, card-verifiable certificates).
            [0x7F, 0x49] => match tag {
                [0x06] => "Object identifier (algorithm)",
                [0x81] => "Modulus",
                [0x82] => "Public exponent (RSA) or first coefficient a (EC)",
                [0x83] => "Second coefficient b (EC)",
                [0x84] => "Base point G (EC)",
                [0x85] => "Order of the base point r (EC)",
                [0x86] => "Public point (EC)",
                [0x87] => "Cofactor f (EC)",
                _ => return None,
            },
            // Card-verifiable certificate and its body.
            [0x7F, 0x21] => match tag {
                [0x7F, 0x4E] => "Certificate body",
                [0x5F, 0x37] => "Signature",
                _ => return None,
            },
            [0x7F, 0x4E] => match tag {
                [0x42] => "Certification authority reference",
                [0x5F, 0x20] => "Certificate holder reference",
                [0x5F, 0x24] => "Certificate expiration date",
                [0x5F, 0x25] => "Certificate effective date",
                [0x5F, 0x29] => "Certificate profile identifier",
                [0x65] => "Certificate extensions",
                _ => return None,
            },
            // Biometric information templates, ISO/IEC 7816-11.
            [0x7F, 0x61] => match tag {
                [0x02] => "Number of biometric information templates",
                _ => return None,
            },
            [0x7F, 0x60] => match tag {
                [0xA1] => "Biometric header template (BHT)",
                _ => return None,
            },
            // Inside a BHT; an `A1` under an FCP is a proprietary template.
            [0xA1] if matches!(ctx.grandparent, None | Some([0x7F, 0x60])) => match tag {
                [0x80] => "Patron header version",
                [0x81] => "Biometric type",
                [0x82] => "Biometric subtype",
                [0x83] => "Creation date and time",
                [0x85] => "Validity period",
                [0x86] => "Creator of the biometric reference data",
                [0x87] => "BDB format owner",
                [0x88] => "BDB format type",
                _ => return None,
            },
            _ => return None,
        };
        Some(name)
    }

    /// Interindustry (application class) and a few GlobalPlatform tags whose
    /// meaning does not depend on the enclosing template.
    fn anywhere(tag: &[u8], ctx: Ctx<'_>) -> Option<&'static str> {
        let name = match tag {
            [0x06] => "Object identifier",
            [0x41] => "Country code and national data",
            [0x42] => "Issuer identification number",
            [0x43] => "Card service data",
            [0x44] => "Initial access data",
            [0x45] => "Card issuer's data",
            [0x46] => "Pre-issuing data",
            [0x47] => "Card capabilities",
            [0x48] => "Status information",
            [0x4D] => "Extended header list",
            [0x4F] => "Application identifier (AID)",
            [0x50] => "Application label",
            [0x51] => "Path",
            [0x52] => "Command to perform",
            [0x53] => "Discretionary data",
            [0x5C] => "Tag list",
            [0x5D] => "Header list",
            [0x5F, 0x20] => "Cardholder name",
            [0x5F, 0x24] => "Application expiration date",
            [0x5F, 0x25] => "Application effective date",
            [0x5F, 0x28] => "Issuer country code",
            [0x5F, 0x2D] => "Language preference",
            [0x5F, 0x2E] => "Biometric data block (BDB)",
            [0x5F, 0x50] => "Uniform resource locator",
            [0x61] => "Application template",
            [0x62] => "File Control Parameters (FCP)",
            [0x64] => "File Management Data (FMD)",
            [0x66] if ctx.parent.is_none() => "Card data",
            [0x6F] => "File Control Information (FCI)",
            [0x73] => "Discretionary data objects template",
            [0x7F, 0x21] => "Cardholder certificate",
            [0x7F, 0x49] => "Public key template",
            [0x7F, 0x4C] => "Certificate holder authorization template",
            [0x7F, 0x4E] => "Certificate body",
            [0x7F, 0x60] => "Biometric information template (BIT)",
            [0x7F, 0x61] => "Biometric information group template",
            [0x7F, 0x66] => "Extended length information",
            [0x9F, 0x7F] => "Card production life cycle data (CPLC)",
            [0xE0] if ctx.parent.is_none() => "Key information template",
            [0xE3] if ctx.parent.is_none() => "GlobalPlatform registry data",
            _ => return None,
        };
        Some(name)
    }
}

/// True when `tag` is exactly one complete BER-TLV tag (1 to 3 bytes).
pub fn valid_tag(tag: &[u8]) -> bool {
    if tag.is_empty() || tag.len() > 3 {
        return false;
    }
    let v = tag.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    Tag::try_from(v).is_ok_and(|t| t.to_bytes() == tag)
}

/// Meaning of a life cycle status byte (ISO/IEC 7816-4:2013 §7.4.10,
/// Table 15), as FCP tag 8A and the ATR's status indicator carry it.
pub fn lcs_meaning(lcs: u8) -> &'static str {
    match lcs {
        0x00 => "no information given",
        0x01 => "creation state",
        0x03 => "initialisation state",
        0x05 | 0x07 => "operational state (activated)",
        0x04 | 0x06 => "operational state (deactivated)",
        0x0C..=0x0F => "termination state",
        0x10..=0xFF => "proprietary",
        _ => "RFU",
    }
}

/// One BER-TLV data object: `tag`, minimal definite length, `value`.
/// The one TLV writer: the host's commands, the script language's `len()`
/// and the simulated card's answers all write through it.
pub fn build(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + 4 + value.len());
    push(&mut out, tag, value);
    out
}

/// Append one BER-TLV data object to `out`.
pub fn push(out: &mut Vec<u8>, tag: &[u8], value: &[u8]) {
    out.extend_from_slice(tag);
    push_len(out, value.len());
    out.extend_from_slice(value);
}

/// Append a minimal definite BER length (ISO/IEC 7816-4 §6.3): one byte
/// below 128, else 81, 82 or 83 and the length on 1 to 3 bytes (a length
/// beyond 16 MiB, which no card takes, is written on 3 bytes truncated).
pub fn push_len(out: &mut Vec<u8>, n: usize) {
    let [_, _, _, _, _, b2, b1, b0] = (n as u64).to_be_bytes();
    match n {
        0..=0x7F => out.push(b0),
        0x80..=0xFF => out.extend_from_slice(&[0x81, b0]),
        0x100..=0xFFFF => out.extend_from_slice(&[0x82, b1, b0]),
        _ => out.extend_from_slice(&[0x83, b2, b1, b0]),
    }
}

/// [`push_len`] as a fresh vector.
pub fn len_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    push_len(&mut out, n);
    out
}

/// Strictly parse `data` as exactly one TLV with tag `tag`, followed by
/// nothing but padding. Returns its node, or why not (for error messages;
/// never any value bytes).
pub fn expect_one<'n>(nodes: &'n [Node], tag: &[u8]) -> Result<&'n Node, String> {
    let mut found = None;
    for n in nodes {
        match &n.kind {
            NodeKind::Padding { .. } => {}
            NodeKind::Raw { reason, .. } => {
                return Err(format!("malformed TLV at byte {}: {reason}", n.offset))
            }
            NodeKind::Tlv { tag: t, .. } if t.as_slice() == tag && found.is_none() => {
                found = Some(n)
            }
            NodeKind::Tlv { tag: t, .. } => {
                return Err(format!(
                    "unexpected data object {} at byte {} (expected only {})",
                    crate::hex::compact(t),
                    n.offset,
                    crate::hex::compact(tag)
                ))
            }
        }
    }
    found.ok_or_else(|| format!("no data object {} found", crate::hex::compact(tag)))
}

/// The children of a constructed node (empty for anything else).
pub fn children(n: &Node) -> &[Node] {
    match &n.kind {
        NodeKind::Tlv { children, .. } => children,
        _ => &[],
    }
}

/// The value of the first primitive child of `n` with tag `tag`.
pub fn child_value<'n>(n: &'n Node, tag: &[u8]) -> Option<&'n [u8]> {
    children(n)
        .iter()
        .filter_map(tag_value)
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v)
}

/// The first child of `n` with tag `tag`.
pub fn child<'n>(n: &'n Node, tag: &[u8]) -> Option<&'n Node> {
    children(n)
        .iter()
        .find(|c| matches!(&c.kind, NodeKind::Tlv { tag: t, .. } if t.as_slice() == tag))
}

/// The tag and primitive value of a node, if it is a TLV.
pub fn tag_value(n: &Node) -> Option<(&[u8], &[u8])> {
    match &n.kind {
        NodeKind::Tlv { tag, value, .. } => Some((tag, value)),
        _ => None,
    }
}

/// The size (header and value) of the BER-TLV data object at the start of
/// `b`, from its tag and length fields alone; `None` when they are not a
/// complete, definite header (1-3 byte tag, length up to 3 bytes).
pub fn extent(b: &[u8]) -> Option<usize> {
    let first = *b.first()?;
    if first == 0x00 || first == 0xFF {
        return None;
    }
    let mut i = 1;
    if first & 0x1F == 0x1F {
        loop {
            let t = *b.get(i)?;
            i += 1;
            if t & 0x80 == 0 {
                break;
            }
            if i >= 3 {
                return None;
            }
        }
    }
    let l0 = *b.get(i)?;
    i += 1;
    let len = match l0 {
        0x00..=0x7F => usize::from(l0),
        0x81..=0x83 => {
            let n = usize::from(l0 & 0x7F);
            let bytes = b.get(i..i + n)?;
            i += n;
            bytes.iter().fold(0usize, |a, &x| (a << 8) | usize::from(x))
        }
        _ => return None,
    };
    Some(i + len)
}

#[cfg(test)]
mod tests {

    #[test]
    fn extent_reads_the_header_only() {
        assert_eq!(extent(&[0x71, 0x03, 1, 2, 3, 0, 0]), Some(5));
        assert_eq!(extent(&[0x5F, 0x40, 0x81, 0x80]), Some(4 + 0x80));
        assert_eq!(extent(&[0x77, 0x82, 0x04, 0x00]), Some(4 + 0x400));
        assert_eq!(extent(&[0x7F, 0x60]), None);
        assert_eq!(extent(&[0x00, 0x01]), None);
        assert_eq!(extent(&[0x30, 0x84, 0, 0, 0, 1]), None);
        assert_eq!(extent(&[0x1F, 0x81, 0x81, 0x01, 0x00]), None);
        assert_eq!(extent(&[]), None);
    }
    use super::*;

    #[test]
    fn lengths_are_minimal_definite() {
        for (n, want) in [
            (0usize, vec![0x00]),
            (0x7F, vec![0x7F]),
            (0x80, vec![0x81, 0x80]),
            (0xFF, vec![0x81, 0xFF]),
            (0x100, vec![0x82, 0x01, 0x00]),
            (0xFFFF, vec![0x82, 0xFF, 0xFF]),
            (0x1_0000, vec![0x83, 0x01, 0x00, 0x00]),
        ] {
            assert_eq!(len_bytes(n), want, "{n}");
        }
        assert_eq!(build(&[0x5F, 0x20], b"AB"), [0x5F, 0x20, 0x02, b'A', b'B']);
        let long = build(&[0x53], &[7; 300]);
        assert_eq!(long.get(..4), Some(&[0x53, 0x82, 0x01, 0x2C][..]));
        assert_eq!(decode(&long).len(), 1);
    }
    use proptest::prelude::*;

    /// Hex fixture to bytes; whitespace is ignored.
    fn h(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        assert!(digits.len().is_multiple_of(2), "odd hex fixture");
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// Asserts that `nodes` tile `data` exactly: each node starts where the
    /// previous ended, containers are tiled by their children, every shown
    /// byte equals the input byte at its offset, and the shown bytes add up
    /// to the input length.
    fn assert_accounts(data: &[u8], nodes: &[Node]) {
        let shown = check_seq(data, nodes, 0, data.len());
        assert_eq!(shown, data.len(), "shown bytes != input length");
    }

    fn check_seq(data: &[u8], nodes: &[Node], start: usize, end: usize) -> usize {
        let mut pos = start;
        let mut shown = 0;
        for n in nodes {
            assert_eq!(n.offset, pos, "node at wrong offset: {n:?}");
            let size = n.size();
            assert!(pos + size <= end, "node runs past its container: {n:?}");
            match &n.kind {
                NodeKind::Tlv {
                    tag,
                    constructed,
                    header_len,
                    length,
                    value,
                    children,
                    ..
                } => {
                    assert_eq!(&data[pos..pos + tag.len()], tag.as_slice());
                    assert!(*header_len > tag.len());
                    shown += header_len;
                    let vstart = pos + header_len;
                    if *constructed {
                        assert!(value.is_empty());
                        shown += check_seq(data, children, vstart, vstart + length);
                    } else {
                        assert!(children.is_empty());
                        assert_eq!(value.len(), *length);
                        assert_eq!(&data[vstart..vstart + length], value.as_slice());
                        shown += value.len();
                    }
                }
                NodeKind::Padding { bytes } => {
                    assert!(!bytes.is_empty());
                    assert!(bytes.iter().all(|&b| b == 0 || b == 0xFF));
                    assert_eq!(&data[pos..pos + size], bytes.as_slice());
                    shown += size;
                }
                NodeKind::Raw { bytes, reason } => {
                    assert!(!bytes.is_empty());
                    assert!(!reason.is_empty());
                    assert_eq!(&data[pos..pos + size], bytes.as_slice());
                    shown += size;
                }
            }
            pos += size;
        }
        assert_eq!(pos, end, "nodes do not cover their container");
        shown
    }

    fn tlv_parts(n: &Node) -> (&[u8], usize, Option<&'static str>, &[u8], &[Node]) {
        match &n.kind {
            NodeKind::Tlv {
                tag,
                length,
                name,
                value,
                children,
                ..
            } => (tag, *length, *name, value, children),
            other => panic!("expected a TLV, got {other:?}"),
        }
    }

    fn raw_parts(n: &Node) -> (&[u8], &str) {
        match &n.kind {
            NodeKind::Raw { bytes, reason } => (bytes, reason),
            other => panic!("expected raw bytes, got {other:?}"),
        }
    }

    #[test]
    fn empty_input() {
        let nodes = decode(&[]);
        assert!(nodes.is_empty());
        assert!(is_clean(&nodes));
        assert_eq!(render(&nodes), "");
    }

    #[test]
    fn gp_fci() {
        // SELECT response of an issuer security domain.
        let data = h("6F 26
                        84 08 A000000151000000
                        A5 1A
                          73 10
                            06 07 2A864886FC6B01
                            60 05 06 03 2A8648
                          9F6E 01 01
                          9F65 01 FF");
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        assert!(is_clean(&nodes));
        assert_eq!(nodes.len(), 1);
        let (tag, len, name, _, kids) = tlv_parts(&nodes[0]);
        assert_eq!(
            (tag, len, name),
            (&[0x6F][..], 0x26, Some("File Control Information (FCI)"))
        );
        assert_eq!(kids.len(), 2);
        let (_, _, name, value, _) = tlv_parts(&kids[0]);
        assert_eq!(name, Some("DF name"));
        assert_eq!(value, h("A000000151000000").as_slice());
        assert_eq!(kids[1].offset, 12);
        let (_, _, name, _, a5) = tlv_parts(&kids[1]);
        assert_eq!(name, Some("Proprietary information"));
        let names: Vec<_> = a5.iter().map(|n| tlv_parts(n).2).collect();
        assert_eq!(
            names,
            [
                Some("Security domain management data"),
                Some("Application production life cycle data"),
                Some("Maximum length of data field in command message"),
            ]
        );
        let text = render(&nodes);
        let expected = "\
6F (File Control Information (FCI)) len 38
  84 (DF name) len 8: A0 00 00 01 51 00 00 00
  A5 (Proprietary information) len 26
    73 (Security domain management data) len 16
      06 (Object identifier (GlobalPlatform)) len 7: 2A 86 48 86 FC 6B 01 = OID 1.2.840.114283.1
      60 (Card management type and version) len 5
        06 (Object identifier) len 3: 2A 86 48 = OID 1.2.840
    9F6E (Application production life cycle data) len 1: 01
    9F65 (Maximum length of data field in command message) len 1: FF = 255 bytes
";
        assert_eq!(text, expected);
    }

    #[test]
    fn iso_fcp_with_nested_a5() {
        let data = h("62 18
                        80 02 0100
                        82 01 38
                        83 02 3F00
                        8A 01 05
                        A5 08 5F2D 02 656E 53 01 07");
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        assert!(is_clean(&nodes));
        let text = render(&nodes);
        let expected = "\
62 (File Control Parameters (FCP)) len 24
  80 (File size (data bytes)) len 2: 01 00 = 256 bytes
  82 (File descriptor) len 1: 38 = DF, not shareable
  83 (File identifier) len 2: 3F 00 = FID 3F00 (MF)
  8A (Life cycle status) len 1: 05 = operational state (activated)
  A5 (Proprietary information) len 8
    5F2D (Language preference) len 2: 65 6E \"en\"
    53 (Discretionary data) len 1: 07
";
        assert_eq!(text, expected);
    }

    #[test]
    fn fcp_decodes_ef_descriptor_sfi_and_total_size() {
        let data = h("62 0F 82 02 4121 83 02 011C 88 01 E8 81 02 0200");
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        let text = render(&nodes);
        assert!(
            text.contains("82 (File descriptor) len 2: 41 21 = working EF, transparent, shareable"),
            "{text}"
        );
        assert!(text.contains("= FID 011C\n"), "{text}");
        assert!(
            text.contains("88 (Short EF identifier) len 1: E8 = SFI 29"),
            "{text}"
        );
        assert!(text.contains("len 2: 02 00 = 512 bytes"), "{text}");
    }

    #[test]
    fn multi_byte_tags_and_long_form_81() {
        // CPLC (42 bytes), then a CV-certificate style public key with a
        // 128-byte modulus (81 80) inside a 136-byte template (81 88).
        let mut data = h("9F7F 2A");
        data.extend((0u8..42).collect::<Vec<_>>());
        data.extend(h("7F49 81 88 81 81 80"));
        data.extend(vec![0xC3; 128]);
        data.extend(h("82 03 010001 5F2D 04 656E6672"));
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        assert!(is_clean(&nodes));
        assert_eq!(nodes.len(), 3);
        let (tag, len, name, value, _) = tlv_parts(&nodes[0]);
        assert_eq!(tag, [0x9F, 0x7F]);
        assert_eq!(len, 42);
        assert_eq!(name, Some("Card production life cycle data (CPLC)"));
        assert_eq!(value.len(), 42);
        assert_eq!(nodes[1].offset, 45);
        let (tag, len, name, _, kids) = tlv_parts(&nodes[1]);
        assert_eq!(
            (tag, len, name),
            (&[0x7F, 0x49][..], 136, Some("Public key template"))
        );
        assert_eq!(kids[0].offset, 45 + 4);
        assert_eq!(tlv_parts(&kids[0]).1, 128);
        assert_eq!(tlv_parts(&kids[0]).2, Some("Modulus"));
        assert_eq!(kids[1].offset, 45 + 4 + 3 + 128);
        assert_eq!(nodes[2].offset, 45 + 4 + 136);
        let (tag, _, name, value, _) = tlv_parts(&nodes[2]);
        assert_eq!(
            (tag, name, value),
            (&[0x5F, 0x2D][..], Some("Language preference"), &b"enfr"[..])
        );
        let text = render(&nodes);
        assert!(text.contains("... (128 bytes in all)"), "{text}");
        assert!(text.contains("5F2D (Language preference) len 4: 65 6E 66 72 \"enfr\""));
    }

    #[test]
    fn three_byte_tag() {
        let data = h("5F8101 01 AA");
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        assert!(is_clean(&nodes));
        assert_eq!(tlv_parts(&nodes[0]).0, [0x5F, 0x81, 0x01]);
    }

    #[test]
    fn long_form_82_and_83() {
        let mut data = h("53 82 0100");
        data.extend(vec![0x11; 256]);
        data.extend(h("C1 83 000002 AABB")); // non-minimal 3-byte length of 2
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        assert!(is_clean(&nodes));
        assert_eq!(tlv_parts(&nodes[0]).1, 256);
        assert_eq!(nodes[1].offset, 260);
        assert_eq!(tlv_parts(&nodes[1]).1, 2);
        assert!(render(&nodes).contains("C1 len 2 [non-minimal length field]: AA BB"));
    }

    #[test]
    fn several_tlvs_in_sequence() {
        let data = h("4F 07 A0000000031010  50 05 48454C4C4F  5F2D 02 656E  5C 00");
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        assert!(is_clean(&nodes));
        let offsets: Vec<_> = nodes.iter().map(|n| n.offset).collect();
        assert_eq!(offsets, [0, 9, 16, 21]);
        let text = render(&nodes);
        assert_eq!(
            text,
            "4F (Application identifier (AID)) len 7: A0 00 00 00 03 10 10\n\
             50 (Application label) len 5: 48 45 4C 4C 4F \"HELLO\"\n\
             5F2D (Language preference) len 2: 65 6E \"en\"\n\
             5C (Tag list) len 0\n"
        );
    }

    #[test]
    fn padding_before_between_after_and_inside() {
        let data = h("00 00 4F 02 A000 FF FF 00 70 06 00 50 01 41 FF 00 00 00");
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        assert!(is_clean(&nodes), "padding is not an error");
        assert!(matches!(&nodes[0].kind, NodeKind::Padding { bytes } if bytes == &[0, 0]));
        assert_eq!(nodes[1].offset, 2);
        assert!(matches!(&nodes[2].kind, NodeKind::Padding { bytes } if bytes.len() == 3));
        let (_, _, _, _, kids) = tlv_parts(&nodes[3]);
        assert!(matches!(kids[0].kind, NodeKind::Padding { .. }));
        assert_eq!(tlv_parts(&kids[1]).0, [0x50]);
        assert!(matches!(kids[2].kind, NodeKind::Padding { .. }));
        assert!(matches!(&nodes[4].kind, NodeKind::Padding { bytes } if bytes.len() == 2));
        let text = render(&nodes);
        assert!(text.starts_with("padding @0 (2 bytes): 00 00\n"), "{text}");
        assert!(text.contains("  padding @11 (1 byte): 00\n"), "{text}");
    }

    #[test]
    fn length_past_end() {
        let mut data = h("84 20");
        data.extend([0xAB; 12]);
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        assert!(!is_clean(&nodes));
        assert_eq!(nodes.len(), 1);
        let (bytes, reason) = raw_parts(&nodes[0]);
        assert_eq!(bytes.len(), 14);
        assert_eq!(reason, "length 0x20 runs past the end: 12 bytes left");
    }

    #[test]
    fn truncated_length() {
        // 82 announces two length bytes, one is there; after a good TLV.
        let data = h("50 01 41 84 82 01");
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        assert_eq!(nodes[1].offset, 3);
        let (bytes, reason) = raw_parts(&nodes[1]);
        assert_eq!(bytes, h("84 82 01").as_slice());
        assert_eq!(
            reason,
            "truncated length: 0x82 announces 2 length byte(s), 1 left"
        );

        let data = h("50 01 41 5F2D");
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        assert_eq!(
            raw_parts(&nodes[1]).1,
            "missing length: input ends after the tag"
        );
    }

    #[test]
    fn truncated_and_overlong_tags() {
        for (fixture, offset, reason) in [
            (
                "50 01 41 9F",
                3,
                "truncated tag: input ends after 1 byte(s) of a multi-byte tag",
            ),
            (
                "50 01 41 5F 81",
                3,
                "truncated tag: input ends after 2 byte(s) of a multi-byte tag",
            ),
            (
                "5F 81 81 01 00",
                0,
                "tag longer than 3 bytes (reserved for future use in ISO/IEC 7816)",
            ),
        ] {
            let data = h(fixture);
            let nodes = decode(&data);
            assert_accounts(&data, &nodes);
            let last = nodes.last().unwrap();
            assert_eq!(last.offset, offset, "{fixture}");
            assert_eq!(raw_parts(last).1, reason, "{fixture}");
        }
    }

    #[test]
    fn indefinite_length_is_raw() {
        let data = h("6F 80 84 01 AA 00 00");
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        assert_eq!(nodes.len(), 1);
        assert!(raw_parts(&nodes[0]).1.contains("indefinite length"));

        // iso7816-tlv would read an inner `80 80` as an empty TLV; we do not.
        let data = h("A5 04 80 80 01 00");
        assert!(iso7816_tlv::ber::Tlv::from_bytes(&data).is_ok());
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        let (_, _, _, _, kids) = tlv_parts(&nodes[0]);
        assert_eq!(kids[0].offset, 2);
        assert!(raw_parts(&kids[0]).1.contains("indefinite length"));
    }

    #[test]
    fn bad_inner_tlv_keeps_header_and_good_children() {
        // 85 claims 5 bytes but its template has only 2 left.
        let data = h("6F 09 84 03 A00000 85 05 0102   90 00");
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        assert!(!is_clean(&nodes));
        assert_eq!(nodes.len(), 2);
        let (tag, len, name, _, kids) = tlv_parts(&nodes[0]);
        assert_eq!(
            (tag, len, name),
            (&[0x6F][..], 9, Some("File Control Information (FCI)"))
        );
        assert_eq!(tlv_parts(&kids[0]).2, Some("DF name"));
        assert_eq!(kids[1].offset, 7);
        let (bytes, reason) = raw_parts(&kids[1]);
        assert_eq!(bytes, h("85 05 0102").as_slice());
        assert_eq!(reason, "length 0x5 runs past the end: 2 bytes left");
        // The TLV after the broken template is still found.
        assert_eq!(nodes[1].offset, 11);
        assert_eq!(tlv_parts(&nodes[1]).0, [0x90]);
        let text = render(&nodes);
        assert!(
            text.contains(
                "  RAW @7 (4 bytes): 85 05 01 02 -- length 0x5 runs past the end: 2 bytes left\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn bad_tlv_deep_inside() {
        let data = h("70 0B 71 09 50 01 41 72 04 5F 81 81 01");
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        let (_, _, _, _, l1) = tlv_parts(&nodes[0]);
        let (_, _, _, _, l2) = tlv_parts(&l1[0]);
        assert_eq!(tlv_parts(&l2[0]).0, [0x50]);
        let (_, _, _, _, l3) = tlv_parts(&l2[1]);
        assert_eq!(l3[0].offset, 9);
        assert!(raw_parts(&l3[0]).1.starts_with("tag longer than 3 bytes"));
    }

    #[test]
    fn non_minimal_inner_length_is_shown_not_swallowed() {
        // iso7816-tlv sizes `80 81 03 ...` as 5 bytes instead of 6, so it
        // reads the following `90 00` as part of A5. We do not.
        let data = h("A5 07 80 81 03 010203 90 00");
        let (crate_view, rest) = iso7816_tlv::ber::Tlv::parse(&data);
        assert!(crate_view.is_ok());
        assert!(
            rest.is_empty(),
            "the crate's quirk this module guards against"
        );
        let nodes = decode(&h("A5 06 80 81 03 010203 90 00"));
        assert_accounts(&h("A5 06 80 81 03 010203 90 00"), &nodes);
        assert!(is_clean(&nodes));
        assert_eq!(nodes.len(), 2);
        let (_, _, _, _, kids) = tlv_parts(&nodes[0]);
        assert_eq!(kids.len(), 1);
        assert_eq!(tlv_parts(&kids[0]).3, [1, 2, 3]);
        assert_eq!(nodes[1].offset, 8);
    }

    #[test]
    fn deep_nesting_is_cut_at_max_depth() {
        let levels = MAX_DEPTH + 8;
        let mut data = h("50 01 41");
        for _ in 0..levels {
            let mut outer = vec![0x70, u8::try_from(data.len()).unwrap()];
            if data.len() > 0x7F {
                outer = vec![0x70, 0x81, u8::try_from(data.len()).unwrap()];
            }
            outer.extend(&data);
            data = outer;
            if data.len() > 250 {
                break;
            }
        }
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        let mut depth = 0;
        let mut cur = &nodes;
        while let Some(NodeKind::Tlv { children, .. }) = cur.first().map(|n| &n.kind) {
            cur = children;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH + 1);
        assert!(raw_parts(&cur[0]).1.starts_with("nested deeper than"));
        let _ = render(&nodes);
    }

    #[test]
    fn very_deep_input_does_not_overflow_the_stack() {
        // 20 000 nested templates with 3-byte lengths: the crate would
        // recurse once per level; we never hand it more than MAX_DEPTH.
        let n = 20_000usize;
        let mut data = Vec::with_capacity(n * 5 + 2);
        for i in 0..n {
            let inner = (n - i - 1) * 5 + 2;
            data.extend([0x70, 0x83]);
            data.extend(&u32::try_from(inner).unwrap().to_be_bytes()[1..]);
        }
        data.extend([0x50, 0x00]);
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        assert!(!is_clean(&nodes));
    }

    #[test]
    fn crate_is_used_for_well_formed_elements_only() {
        let can_take = |fixture: &str| {
            let data = h(fixture);
            let header = read_header(&data).unwrap();
            crate_can_take(&data, &header, 0)
        };
        assert!(can_take("6F 07 84 01 AA A5 02 53 00"));
        assert!(
            can_take("84 81 01 AA"),
            "a primitive's own header may be non-minimal"
        );
        assert!(!can_take("6F 04 00 84 01 AA"), "padding inside");
        assert!(
            !can_take("6F 05 84 81 01 AA 00"),
            "non-minimal inner length"
        );
        assert!(!can_take("6F 04 84 80 01 00"), "indefinite inner length");
        assert!(!can_take("6F 03 84 05 AA"), "inner length past the end");
    }

    #[test]
    fn context_dependent_names() {
        assert_eq!(
            tag_name(&[0x80], Some(&[0x62])),
            Some("File size (data bytes)")
        );
        assert_eq!(tag_name(&[0x80], None), None);
        assert_eq!(tag_name(&[0x81], Some(&[0x7F, 0x49])), Some("Modulus"));
        assert_eq!(
            tag_name(&[0x86], Some(&[0x7F, 0x49])),
            Some("Public point (EC)")
        );
        assert_eq!(tag_name(&[0x64], None), Some("File Management Data (FMD)"));
        assert_eq!(
            tag_name(&[0x64], Some(&[0x73])),
            Some("Secure channel protocol and implementation options")
        );
        assert_eq!(
            tag_name(&[0x73], Some(&[0x66])),
            Some("Card recognition data")
        );
        assert_eq!(tag_name(&[0x5F, 0x20], None), Some("Cardholder name"));
        assert_eq!(
            tag_name(&[0x5F, 0x20], Some(&[0x7F, 0x4E])),
            Some("Certificate holder reference")
        );
        assert_eq!(tag_name(&[0xC5], Some(&[0xE3])), Some("Privileges"));
        assert_eq!(tag_name(&[0xC5], None), None);
        assert_eq!(
            tag_name(&[0x9F, 0x7F], Some(&[0x70])),
            Some("Card production life cycle data (CPLC)")
        );
        assert_eq!(tag_name(&[0x81], Some(&[0xA1])), Some("Biometric type"));
        assert_eq!(
            tag_name(&[0x9F, 0x65], None),
            None,
            "EMV uses 9F65 differently"
        );
    }

    #[test]
    fn biometric_template_names_use_the_grandparent() {
        let data = h("7F61 12 02 01 01 7F60 0C A1 06 81 01 02 87 01 01 5F2E 01 AA");
        let nodes = decode(&data);
        assert_accounts(&data, &nodes);
        let text = render(&nodes);
        assert!(
            text.contains("02 (Number of biometric information templates) len 1: 01"),
            "{text}"
        );
        assert!(
            text.contains("    A1 (Biometric header template (BHT)) len 6\n"),
            "{text}"
        );
        assert!(
            text.contains("      81 (Biometric type) len 1: 02\n"),
            "{text}"
        );
        assert!(
            text.contains("    5F2E (Biometric data block (BDB)) len 1: AA\n"),
            "{text}"
        );
        // The same tags under an FCP's proprietary A1 stay unnamed.
        let data = h("62 05 A1 03 81 01 02");
        let text = render(&decode(&data));
        assert!(text.contains("    81 len 1: 02\n"), "{text}");
    }

    #[test]
    fn serializes_to_json() {
        let nodes = decode(&h("6F 03 84 01 AA 01"));
        let json = serde_json::to_value(&nodes).unwrap();
        assert_eq!(json[0]["offset"], 0);
        assert_eq!(json[0]["kind"]["type"], "tlv");
        assert_eq!(json[0]["kind"]["tag"], serde_json::json!([0x6F]));
        assert_eq!(json[0]["kind"]["children"][0]["kind"]["name"], "DF name");
        assert_eq!(json[1]["kind"]["type"], "raw");
    }

    // --- property tests -------------------------------------------------

    /// A generated well-formed data object.
    #[derive(Debug, Clone)]
    enum Gen {
        Prim(Vec<u8>, Vec<u8>),
        Cons(Vec<u8>, Vec<Gen>),
    }

    fn encode_len(len: usize, out: &mut Vec<u8>) {
        match len_field_size(len) {
            1 => out.push(len as u8),
            n => {
                out.push(0x80 | (n as u8 - 1));
                out.extend(&(len as u32).to_be_bytes()[5 - n..]);
            }
        }
    }

    fn encode(g: &Gen, out: &mut Vec<u8>) {
        match g {
            Gen::Prim(tag, v) => {
                out.extend(tag);
                encode_len(v.len(), out);
                out.extend(v);
            }
            Gen::Cons(tag, kids) => {
                let mut inner = Vec::new();
                for k in kids {
                    encode(k, &mut inner);
                }
                out.extend(tag);
                encode_len(inner.len(), out);
                out.extend(inner);
            }
        }
    }

    fn tag_strategy(constructed: bool) -> impl Strategy<Value = Vec<u8>> {
        let c = if constructed { 0x20 } else { 0x00 };
        prop_oneof![
            // one byte: any class, number 1..=30 (not 00, not FF)
            (0u8..4, 1u8..31).prop_map(move |(class, n)| vec![class << 6 | c | n]),
            // two bytes
            (0u8..4, 0x1Fu8..0x80).prop_map(move |(class, b)| vec![class << 6 | c | 0x1F, b]),
            // three bytes
            (0u8..4, 0x81u8..=0xFF, 0u8..0x80).prop_map(move |(class, b, d)| vec![
                class << 6 | c | 0x1F,
                b,
                d
            ]),
        ]
        .prop_filter("FF is padding", |t| t.first() != Some(&0xFF))
    }

    fn gen_strategy() -> impl Strategy<Value = Gen> {
        let leaf = (
            tag_strategy(false),
            proptest::collection::vec(any::<u8>(), 0..140),
        )
            .prop_map(|(t, v)| Gen::Prim(t, v));
        leaf.prop_recursive(5, 40, 4, |inner| {
            (tag_strategy(true), proptest::collection::vec(inner, 0..4))
                .prop_map(|(t, k)| Gen::Cons(t, k))
        })
    }

    fn same_tree(g: &Gen, n: &Node) -> bool {
        match (g, &n.kind) {
            (
                Gen::Prim(t, v),
                NodeKind::Tlv {
                    tag,
                    constructed: false,
                    value,
                    ..
                },
            ) => t == tag && v == value,
            (
                Gen::Cons(t, kids),
                NodeKind::Tlv {
                    tag,
                    constructed: true,
                    children,
                    ..
                },
            ) => {
                t == tag
                    && kids.len() == children.len()
                    && kids.iter().zip(children).all(|(g, n)| same_tree(g, n))
            }
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic_and_are_accounted(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let nodes = decode(&data);
            assert_accounts(&data, &nodes);
            let text = render(&nodes);
            prop_assert_eq!(text.is_empty(), data.is_empty());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn well_formed_trees_decode_exactly(gens in proptest::collection::vec(gen_strategy(), 0..4)) {
            let mut data = Vec::new();
            for g in &gens {
                encode(g, &mut data);
            }
            let nodes = decode(&data);
            assert_accounts(&data, &nodes);
            prop_assert!(is_clean(&nodes));
            prop_assert_eq!(nodes.len(), gens.len());
            for (g, n) in gens.iter().zip(&nodes) {
                prop_assert!(same_tree(g, n), "{:?} vs {:?}", g, n);
            }
            let _ = render(&nodes);
        }

        #[test]
        fn damaged_trees_are_accounted(
            g in gen_strategy(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
            do_cut in any::<bool>(),
        ) {
            let mut data = Vec::new();
            encode(&g, &mut data);
            for (at, b) in flips {
                if !data.is_empty() {
                    let i = at.index(data.len());
                    data[i] = b;
                }
            }
            if do_cut && !data.is_empty() {
                data.truncate(cut.index(data.len()));
            }
            let nodes = decode(&data);
            assert_accounts(&data, &nodes);
            let _ = render(&nodes);
        }
    }
}
