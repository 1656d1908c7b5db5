//! Minimal DER writer and strict DER reader (X.690), plus time and text
//! helpers used by the PKI module.
//!
//! Only the subset needed for PKCS#10, X.509 and CMS is supported:
//! single-byte tags (tag numbers < 31) and definite lengths. The reader
//! rejects indefinite lengths, non-minimal length encodings and trailing
//! data, so anything it accepts is DER-shaped at the TLV level.

use std::fmt;

pub(crate) const TAG_BOOLEAN: u8 = 0x01;
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;
pub(crate) const TAG_IA5_STRING: u8 = 0x16;
pub(crate) const TAG_PRINTABLE_STRING: u8 = 0x13;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;

/// Context-specific constructed tag `[n]`.
pub(crate) const fn ctx_cons(n: u8) -> u8 {
    0xa0 | n
}

/// Context-specific primitive tag `[n]`.
pub(crate) const fn ctx_prim(n: u8) -> u8 {
    0x80 | n
}

// ---------------------------------------------------------------------------
// Object identifiers (as dotted arcs; encoded on demand)
// ---------------------------------------------------------------------------

pub(crate) mod oids {
    pub const EC_PUBLIC_KEY: &[u64] = &[1, 2, 840, 10045, 2, 1];
    pub const PRIME256V1: &[u64] = &[1, 2, 840, 10045, 3, 1, 7];
    pub const SECP384R1: &[u64] = &[1, 3, 132, 0, 34];
    pub const RSA_ENCRYPTION: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];
    pub const ECDSA_WITH_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
    pub const ECDSA_WITH_SHA384: &[u64] = &[1, 2, 840, 10045, 4, 3, 3];
    pub const SHA256_WITH_RSA: &[u64] = &[1, 2, 840, 113549, 1, 1, 11];
    pub const SHA384_WITH_RSA: &[u64] = &[1, 2, 840, 113549, 1, 1, 12];
    pub const SHA512_WITH_RSA: &[u64] = &[1, 2, 840, 113549, 1, 1, 13];
    pub const SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];

    pub const AT_COMMON_NAME: &[u64] = &[2, 5, 4, 3];
    pub const AT_SURNAME: &[u64] = &[2, 5, 4, 4];
    pub const AT_SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];
    pub const AT_COUNTRY: &[u64] = &[2, 5, 4, 6];
    pub const AT_ORGANIZATION: &[u64] = &[2, 5, 4, 10];
    pub const AT_GIVEN_NAME: &[u64] = &[2, 5, 4, 42];

    pub const EXT_SUBJECT_KEY_ID: &[u64] = &[2, 5, 29, 14];
    pub const EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 15];
    pub const EXT_BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
    pub const EXT_AUTHORITY_KEY_ID: &[u64] = &[2, 5, 29, 35];
    pub const EXT_EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
    pub const KP_CLIENT_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 2];
    pub const EXT_CRL_DISTRIBUTION_POINTS: &[u64] = &[2, 5, 29, 31];
    pub const EXT_CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];
    /// id-qt-cps: a CPS pointer qualifier (RFC 5280 4.2.1.4).
    pub const QT_CPS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 2, 1];

    pub const CMS_SIGNED_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 2];
    pub const CMS_CONTENT_TYPE: &[u64] = &[1, 2, 840, 113549, 1, 9, 3];
    pub const CMS_MESSAGE_DIGEST: &[u64] = &[1, 2, 840, 113549, 1, 9, 4];
    pub const CMS_SIGNING_TIME: &[u64] = &[1, 2, 840, 113549, 1, 9, 5];
    pub const ICAO_LDS_SECURITY_OBJECT: &[u64] = &[2, 23, 136, 1, 1, 1];
}

/// Content octets of an OBJECT IDENTIFIER.
pub(crate) fn oid_content(arcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push_arc = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        out.extend_from_slice(&tmp);
    };
    // The project's own OID constants: at least two arcs, the first 0..=2
    // (checked by the tests of every constant).
    if let [a, b, rest @ ..] = arcs {
        push_arc(a * 40 + b);
        for &a in rest {
            push_arc(a);
        }
    }
    out
}

/// Dotted text of OID content octets; `None` if they are not a valid OID.
pub(crate) fn oid_to_string(content: &[u8]) -> Option<String> {
    if content.last().is_none_or(|b| b & 0x80 != 0) {
        return None;
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    let mut start = true;
    for &b in content {
        if start && b == 0x80 {
            return None; // non-minimal arc
        }
        start = false;
        if v > (u64::MAX >> 7) {
            return None;
        }
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(v);
            v = 0;
            start = true;
        }
    }
    let (&first, rest) = arcs.split_first()?;
    let (a, b) = if first < 40 {
        (0, first)
    } else if first < 80 {
        (1, first - 40)
    } else {
        (2, first - 80)
    };
    let mut s = format!("{a}.{b}");
    for x in rest {
        s.push('.');
        s.push_str(&x.to_string());
    }
    Some(s)
}

/// The arcs of a dotted OID such as `2.999.1`: at least two arcs, decimal
/// without leading zeros, the first 0, 1 or 2, the second below 40 unless
/// the first is 2. The error says what is wrong.
pub(crate) fn parse_dotted_oid(s: &str) -> Result<Vec<u64>, String> {
    let mut arcs = Vec::new();
    for (i, part) in s.split('.').enumerate() {
        let digits = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits {
            return Err(format!("arc {} ({part:?}) is not a decimal number", i + 1));
        }
        if part.len() > 1 && part.starts_with('0') {
            return Err(format!("arc {} ({part:?}) has a leading zero", i + 1));
        }
        let v: u64 = part
            .parse()
            .map_err(|_| format!("arc {} ({part}) is too large", i + 1))?;
        arcs.push(v);
    }
    match arcs.as_slice() {
        [] | [_] => Err("an OID has at least two arcs".into()),
        [a, ..] if *a > 2 => Err(format!("the first arc is {a}; it must be 0, 1 or 2")),
        [a, b, ..] if *a < 2 && *b >= 40 => Err(format!(
            "the second arc is {b}; under {a} it must be below 40"
        )),
        [2, b, ..] if *b > u64::MAX - 80 => Err(format!("the second arc ({b}) is too large")),
        _ => Ok(arcs),
    }
}

/// IA5String (ASCII) of a string already checked to be ASCII.
pub(crate) fn ia5_string(s: &str) -> Vec<u8> {
    debug_assert!(s.is_ascii());
    tlv(TAG_IA5_STRING, s.as_bytes())
}

pub(crate) fn dotted(arcs: &[u64]) -> String {
    arcs.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

pub(crate) fn encode_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    encode_length(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// Constructed element whose content is the concatenation of `parts`.
pub(crate) fn cons(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

pub(crate) fn seq(parts: &[&[u8]]) -> Vec<u8> {
    cons(TAG_SEQUENCE, parts)
}

/// DER `SET OF` with the elements sorted by their encodings (X.690 11.6).
pub(crate) fn set_of(mut items: Vec<Vec<u8>>) -> Vec<u8> {
    items.sort();
    tlv(TAG_SET, &items.concat())
}

pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    tlv(TAG_OID, &oid_content(arcs))
}

/// INTEGER from a big-endian unsigned magnitude (minimal, non-negative).
pub(crate) fn uint(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude.iter().take_while(|&&b| b == 0).count();
    let m = magnitude.get(skip..).unwrap_or_default();
    let mut content = Vec::with_capacity(m.len() + 1);
    if m.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(m);
    tlv(TAG_INTEGER, &content)
}

pub(crate) fn uint_small(v: u64) -> Vec<u8> {
    uint(&v.to_be_bytes())
}

pub(crate) fn octet_string(data: &[u8]) -> Vec<u8> {
    tlv(TAG_OCTET_STRING, data)
}

pub(crate) fn bit_string(unused_bits: u8, data: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(data.len() + 1);
    content.push(unused_bits);
    content.extend_from_slice(data);
    tlv(TAG_BIT_STRING, &content)
}

pub(crate) fn boolean(v: bool) -> Vec<u8> {
    tlv(TAG_BOOLEAN, &[if v { 0xff } else { 0x00 }])
}

pub(crate) fn utf8_string(s: &str) -> Vec<u8> {
    tlv(TAG_UTF8_STRING, s.as_bytes())
}

pub(crate) fn printable_string(s: &str) -> Vec<u8> {
    debug_assert!(is_printable_string(s));
    tlv(TAG_PRINTABLE_STRING, s.as_bytes())
}

/// X.680 PrintableString alphabet.
pub(crate) fn is_printable_string(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b))
}

/// AlgorithmIdentifier with absent parameters.
pub(crate) fn algorithm_id(arcs: &[u64]) -> Vec<u8> {
    seq(&[&oid(arcs)])
}

/// Time as RFC 5280 wants it: UTCTime through 2049, GeneralizedTime after.
pub(crate) fn time(unix: i64) -> Vec<u8> {
    let c = crate::utc::from_unix(unix);
    let (month, day, hour, minute, second) = (
        u8::from(c.month()),
        c.day(),
        c.hour(),
        c.minute(),
        c.second(),
    );
    if (1950..2050).contains(&c.year()) {
        let s = format!(
            "{:02}{month:02}{day:02}{hour:02}{minute:02}{second:02}Z",
            c.year() % 100,
        );
        tlv(TAG_UTC_TIME, s.as_bytes())
    } else {
        let s = format!(
            "{:04}{month:02}{day:02}{hour:02}{minute:02}{second:02}Z",
            c.year()
        );
        tlv(TAG_GENERALIZED_TIME, s.as_bytes())
    }
}

// ---------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------

/// Where and why strict DER parsing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DerError {
    pub element: String,
    pub expected: String,
    pub found: String,
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}",
            self.element, self.expected, self.found
        )
    }
}

pub(crate) fn der_err(
    element: &str,
    expected: impl Into<String>,
    found: impl Into<String>,
) -> DerError {
    DerError {
        element: element.to_string(),
        expected: expected.into(),
        found: found.into(),
    }
}

/// One TLV: its tag, content octets and the complete encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Reader over this element's content.
    pub fn reader(&self) -> Der<'a> {
        Der::new(self.content)
    }
}

/// Cursor over a sequence of DER TLVs.
#[derive(Debug, Clone)]
pub(crate) struct Der<'a> {
    data: &'a [u8],
}

pub(crate) fn tag_name(tag: u8) -> String {
    let name = match tag {
        TAG_BOOLEAN => "BOOLEAN",
        TAG_INTEGER => "INTEGER",
        TAG_BIT_STRING => "BIT STRING",
        TAG_OCTET_STRING => "OCTET STRING",
        TAG_NULL => "NULL",
        TAG_OID => "OBJECT IDENTIFIER",
        TAG_UTF8_STRING => "UTF8String",
        TAG_PRINTABLE_STRING => "PrintableString",
        TAG_UTC_TIME => "UTCTime",
        TAG_GENERALIZED_TIME => "GeneralizedTime",
        TAG_SEQUENCE => "SEQUENCE",
        TAG_SET => "SET",
        t if t & 0xe0 == 0xa0 => return format!("[{}] (constructed, tag {t:02X})", t & 0x1f),
        t if t & 0xe0 == 0x80 => return format!("[{}] (primitive, tag {t:02X})", t & 0x1f),
        t if t & 0xe0 == 0x60 => {
            return format!("[APPLICATION {}] (constructed, tag {t:02X})", t & 0x1f)
        }
        t => return format!("tag {t:02X}"),
    };
    format!("{name} (tag {tag:02X})")
}

impl<'a> Der<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Der { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Reads any single TLV.
    pub fn read_any(&mut self, element: &str) -> Result<Tlv<'a>, DerError> {
        let d = self.data;
        let Some(&tag) = d.first() else {
            return Err(der_err(element, "a DER element", "end of data"));
        };
        if tag & 0x1f == 0x1f {
            return Err(der_err(
                element,
                "a single-byte tag",
                format!("multi-byte tag starting {tag:02X}"),
            ));
        }
        let Some(&l0) = d.get(1) else {
            return Err(der_err(element, "a length octet", "end of data"));
        };
        let (len, hdr) = if l0 < 0x80 {
            (l0 as usize, 2usize)
        } else if l0 == 0x80 {
            return Err(der_err(
                element,
                "a definite length (DER)",
                "indefinite length (BER)",
            ));
        } else {
            let n = (l0 & 0x7f) as usize;
            if n > 4 {
                return Err(der_err(
                    element,
                    "a length of at most 4 octets",
                    format!("{n} length octets"),
                ));
            }
            let Some(lb) = d.get(2..2 + n) else {
                return Err(der_err(element, "length octets", "end of data"));
            };
            if lb.first() == Some(&0) {
                return Err(der_err(
                    element,
                    "a minimal length encoding",
                    "leading zero length octet",
                ));
            }
            let len = lb.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
            if len < 0x80 {
                return Err(der_err(
                    element,
                    "a minimal length encoding",
                    format!("long form for length {len}"),
                ));
            }
            (len, 2 + n)
        };
        let Some(end) = hdr.checked_add(len) else {
            return Err(der_err(element, "a sane length", "overflowing length"));
        };
        let (Some(raw), Some(content), Some(after)) = (d.get(..end), d.get(hdr..end), d.get(end..))
        else {
            return Err(der_err(
                element,
                format!("{len} content octets"),
                format!("only {} available (truncated)", d.len().saturating_sub(hdr)),
            ));
        };
        self.data = after;
        Ok(Tlv { tag, content, raw })
    }

    /// Reads a TLV that must carry `tag`.
    pub fn read(&mut self, tag: u8, element: &str) -> Result<Tlv<'a>, DerError> {
        match self.peek_tag() {
            Some(t) if t == tag => self.read_any(element),
            Some(t) => Err(der_err(element, tag_name(tag), tag_name(t))),
            None => Err(der_err(element, tag_name(tag), "end of data")),
        }
    }

    /// Reads an element if the next tag is `tag`.
    pub fn read_optional(&mut self, tag: u8, element: &str) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read_any(element).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails if unread data remains.
    pub fn finish(&self, element: &str) -> Result<(), DerError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(der_err(
                element,
                "no further data",
                format!(
                    "{} trailing bytes (next tag {:02X})",
                    self.data.len(),
                    self.data.first().copied().unwrap_or_default()
                ),
            ))
        }
    }

    pub fn read_oid(&mut self, element: &str) -> Result<Tlv<'a>, DerError> {
        let t = self.read(TAG_OID, element)?;
        if oid_to_string(t.content).is_none() {
            return Err(der_err(
                element,
                "a valid OBJECT IDENTIFIER",
                format!("bytes {}", crate::hex::lower(t.content)),
            ));
        }
        Ok(t)
    }

    /// Reads an OID and checks it against `arcs`.
    pub fn expect_oid(&mut self, arcs: &[u64], element: &str) -> Result<(), DerError> {
        let t = self.read_oid(element)?;
        if t.content != oid_content(arcs).as_slice() {
            return Err(der_err(
                element,
                dotted(arcs),
                oid_to_string(t.content).unwrap_or_default(),
            ));
        }
        Ok(())
    }

    /// INTEGER content checked for minimal encoding.
    pub fn read_integer(&mut self, element: &str) -> Result<&'a [u8], DerError> {
        let t = self.read(TAG_INTEGER, element)?;
        check_integer(t.content, element)?;
        Ok(t.content)
    }

    /// Small non-negative INTEGER.
    pub fn read_u64(&mut self, element: &str) -> Result<u64, DerError> {
        let c = self.read_integer(element)?;
        if c.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(der_err(
                element,
                "a non-negative INTEGER",
                "a negative INTEGER",
            ));
        }
        let c = match c {
            [0, rest @ ..] if !rest.is_empty() => rest,
            _ => c,
        };
        if c.len() > 8 {
            return Err(der_err(
                element,
                "a small INTEGER",
                format!("{}-byte INTEGER", c.len()),
            ));
        }
        Ok(c.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
    }

    pub fn read_octet_string(&mut self, element: &str) -> Result<&'a [u8], DerError> {
        Ok(self.read(TAG_OCTET_STRING, element)?.content)
    }
}

pub(crate) fn check_integer(c: &[u8], element: &str) -> Result<(), DerError> {
    if c.is_empty() {
        return Err(der_err(element, "INTEGER content", "empty INTEGER"));
    }
    if matches!(c, [0, b, ..] if b & 0x80 == 0) || matches!(c, [0xff, b, ..] if b & 0x80 != 0) {
        return Err(der_err(
            element,
            "a minimally encoded INTEGER",
            "redundant leading octet",
        ));
    }
    Ok(())
}

/// Parses UTCTime / GeneralizedTime content (the `Z` forms DER requires).
pub(crate) fn parse_time(t: &Tlv<'_>, element: &str) -> Result<i64, DerError> {
    let s = match std::str::from_utf8(t.content) {
        Ok(s) if s.is_ascii() => s,
        _ => return Err(der_err(element, "an ASCII time", "non-ASCII bytes")),
    };
    let (year, rest) = match t.tag {
        TAG_UTC_TIME if s.len() == 13 => {
            let yy: i64 = num(&s[..2]).ok_or_else(|| der_err(element, "YYMMDDHHMMSSZ", s))?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &s[2..])
        }
        TAG_GENERALIZED_TIME if s.len() == 15 => (
            num(&s[..4]).ok_or_else(|| der_err(element, "YYYYMMDDHHMMSSZ", s))?,
            &s[4..],
        ),
        TAG_UTC_TIME | TAG_GENERALIZED_TIME => {
            return Err(der_err(element, "a DER time ending in Z with seconds", s))
        }
        other => {
            return Err(der_err(
                element,
                "UTCTime or GeneralizedTime",
                tag_name(other),
            ))
        }
    };
    let bad = || der_err(element, "a valid date and time ending in Z", s);
    if rest.len() != 11 || !rest.ends_with('Z') {
        return Err(bad());
    }
    let f = |i: usize| num(&rest[i..i + 2]).ok_or_else(bad);
    let (mo, d, h, mi, se) = (f(0)?, f(2)?, f(4)?, f(6)?, f(8)?);
    let small = |v: i64| u8::try_from(v).ok();
    match (
        i32::try_from(year).ok(),
        small(mo),
        small(d),
        small(h),
        small(mi),
        small(se),
    ) {
        (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(se)) => {
            crate::utc::unix_of(y, mo, d, h, mi, se).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

fn num(s: &str) -> Option<i64> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// Text helpers
// ---------------------------------------------------------------------------

/// PEM armour (RFC 7468) with 64-character lines.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_oids_parse_or_say_why_not() {
        for good in ["2.999.364.1.1", "1.3.6.1.5.5.7.2.1", "0.0", "2.100.3"] {
            let arcs = parse_dotted_oid(good).unwrap();
            assert_eq!(dotted(&arcs), good);
            assert_eq!(oid_to_string(&oid_content(&arcs)).unwrap(), good);
        }
        for (bad, why) in [
            ("", "not a decimal number"),
            ("2", "at least two arcs"),
            ("2.999.", "arc 3"),
            ("2.x.1", "arc 2 (\"x\")"),
            ("1.3.06", "leading zero"),
            ("3.1", "must be 0, 1 or 2"),
            ("1.40", "below 40"),
            ("2.18446744073709551615", "too large"),
            ("1.2.99999999999999999999", "too large"),
            (" 1.2", "not a decimal number"),
        ] {
            let e = parse_dotted_oid(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn oid_encoding_known_values() {
        assert_eq!(
            oid(oids::EC_PUBLIC_KEY),
            [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]
        );
        assert_eq!(
            oid(oids::SHA256),
            [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]
        );
        assert_eq!(
            oid(oids::ICAO_LDS_SECURITY_OBJECT),
            [0x06, 0x06, 0x67, 0x81, 0x08, 0x01, 0x01, 0x01]
        );
        assert_eq!(
            oid_to_string(&oid_content(oids::PRIME256V1)).unwrap(),
            "1.2.840.10045.3.1.7"
        );
        assert_eq!(oid_to_string(&[0x80, 0x01]), None);
        assert_eq!(oid_to_string(&[0x2a, 0x86]), None);
    }

    #[test]
    fn lengths_and_integers() {
        assert_eq!(tlv(0x04, &[0u8; 0x80])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(tlv(0x04, &[0u8; 0x100])[..4], [0x04, 0x82, 0x01, 0x00]);
        assert_eq!(uint(&[0, 0, 0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(uint(&[0, 0]), [0x02, 0x01, 0x00]);
        assert_eq!(uint_small(2), [0x02, 0x01, 0x02]);
    }

    #[test]
    fn reader_rejects_non_der() {
        assert!(Der::new(&[0x30, 0x80, 0, 0]).read_any("x").is_err());
        assert!(Der::new(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5])
            .read_any("x")
            .is_err());
        assert!(Der::new(&[0x04, 0x05, 1]).read_any("x").is_err());
        assert!(Der::new(&[0x1f, 0x01, 0]).read_any("x").is_err());
        assert!(Der::new(&[0x02, 0x02, 0x00, 0x01])
            .read_integer("x")
            .is_err());
        let mut d = Der::new(&[0x02, 0x01, 0x05, 0x00]);
        assert_eq!(d.read_u64("x").unwrap(), 5);
        assert!(d.finish("x").is_err());
    }

    #[test]
    fn time_encoding_round_trip() {
        for t in [
            1_700_000_000i64,
            2_524_608_000, /* 2050-01-01 */
            2_524_607_999,
        ] {
            let enc = time(t);
            let tlv = Der::new(&enc).read_any("t").unwrap();
            assert_eq!(parse_time(&tlv, "t").unwrap(), t);
        }
        assert_eq!(time(2_524_608_000)[0], TAG_GENERALIZED_TIME);
        assert_eq!(time(2_524_607_999)[0], TAG_UTC_TIME);
        let bad = tlv(TAG_UTC_TIME, b"991332000000Z");
        assert!(parse_time(&Der::new(&bad).read_any("t").unwrap(), "t").is_err());
    }

    #[test]
    fn pem_base64() {
        let p = pem_encode("X", b"foobar!");
        assert_eq!(p, "-----BEGIN X-----\nZm9vYmFyIQ==\n-----END X-----\n");
        assert!(pem_encode("X", b"fo").contains("Zm8=\n"));
    }

    #[test]
    fn set_of_is_sorted() {
        let s = set_of(vec![vec![0x02, 0x01, 0x05], vec![0x02, 0x01, 0x01]]);
        assert_eq!(s, [0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x05]);
    }
}
