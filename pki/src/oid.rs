//! Object identifiers as text, and the few the OID database lacks.
//!
//! `const-oid` (the OID type of `der`, `x509-cert` and `cms`) keeps the
//! second arc below 40 even under arc 2, so it refuses `2.999.364.1.1` —
//! the policy arc a profile may well use. Policy OIDs therefore travel as
//! checked content octets ([`policy_oid_der`]), and [`oid_to_string`] reads
//! any OID for messages (x509-parser's `to_id_string` misreads `2.999` as
//! `3.16.55`). Everything else uses `const_oid::db`.

use der::asn1::{Any, ObjectIdentifier};
use der::Tag;

/// id-icao-mrtd-security-ldsSecurityObject (ICAO Doc 9303 part 10).
pub(crate) const ICAO_LDS_SECURITY_OBJECT: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.23.136.1.1.1");

/// Content octets of the OBJECT IDENTIFIER with these arcs (at least two,
/// as [`parse_dotted_oid`] returns them).
fn oid_content(arcs: &[u64]) -> Vec<u8> {
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
    let (a, b) = match first {
        0..40 => (0, first),
        40..80 => (1, first - 40),
        _ => (2, first - 80),
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
pub fn parse_dotted_oid(s: &str) -> Result<Vec<u64>, String> {
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

/// A dotted OID as a DER element (tag 06), for the places an
/// [`ObjectIdentifier`] cannot hold it.
pub(crate) fn policy_oid_der(s: &str) -> Result<Any, String> {
    let arcs = parse_dotted_oid(s)?;
    Any::new(Tag::ObjectIdentifier, oid_content(&arcs)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    fn dotted(arcs: &[u64]) -> String {
        arcs.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(".")
    }

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
        // The same octets as const-oid's, where const-oid can hold the OID.
        for oid in [
            const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
            const_oid::db::rfc5912::ID_SHA_256,
            ICAO_LDS_SECURITY_OBJECT,
        ] {
            let text = oid.to_string();
            assert_eq!(
                policy_oid_der(&text).unwrap().to_der().unwrap(),
                oid.to_der().unwrap()
            );
            assert_eq!(oid_to_string(oid.as_bytes()).unwrap(), text);
        }
        assert_eq!(
            policy_oid_der("2.999.1").unwrap().to_der().unwrap(),
            [0x06, 0x03, 0x88, 0x37, 0x01]
        );
        assert_eq!(oid_to_string(&[0x80, 0x01]), None);
        assert_eq!(oid_to_string(&[0x2a, 0x86]), None);
    }
}
