//! The holder's certificates against the card (profile `[certificates]`,
//! docs/card-profile.md "Certificate validity and revocation"): when the
//! card expires, and whether a certificate ends with it and carries the
//! profile's CRL distribution points and policy.

use std::collections::BTreeMap;

use crate::hex;
use crate::pki;
use crate::record::JalaliDate;
use crate::tlv;

use super::datagroups::{self, DatePair};
use super::input::date_pair;
use super::profile::{CertRules, Encoding, Profile};

/// When a card expires: the moment (Unix seconds) and how people read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardExpiry {
    pub end: i64,
    pub shown: String,
}

/// The expiry of a card with this expiry date.
pub fn card_expiry(expiry: &DatePair) -> Result<CardExpiry, String> {
    let end = CertRules::card_end(expiry)?;
    Ok(CardExpiry {
        end,
        shown: CertRules::show_card_expiry(expiry, end),
    })
}

/// The card's expiry as the card itself says it: the data group that maps
/// `card.expiry_date` (as read, `dgs`), or `fallback` (the record's) when
/// the profile maps none.
pub fn card_expiry_on_card(
    p: &Profile,
    dgs: &BTreeMap<u8, Result<Vec<u8>, String>>,
    fallback: &DatePair,
) -> Result<CardExpiry, String> {
    let field = "card.expiry_date";
    let Some(dg) = p.data_groups.iter().find(|d| {
        d.fields
            .iter()
            .any(|f| f.field == field && f.encoding == Encoding::Date)
    }) else {
        return card_expiry(fallback);
    };
    let unknown = |why: String| {
        format!(
            "cannot tell when the card expires: DG{} {field}: {why}",
            dg.number
        )
    };
    let bytes = match dgs.get(&dg.number) {
        Some(Ok(b)) => b.as_slice(),
        Some(Err(e)) => return Err(unknown(e.clone())),
        None => return Err(unknown("not read".into())),
    };
    // The EF may be larger than its one data object: drop the padding.
    let bytes = match tlv::extent(bytes) {
        Some(n) => bytes.get(..n).unwrap_or(bytes),
        None => bytes,
    };
    let objects = datagroups::parse(dg, bytes).map_err(unknown)?;
    let value = datagroups::field_bytes(&objects, dg, field, Encoding::Date)
        .ok_or_else(|| unknown("absent".into()))?;
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = value.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (Some(y), Some(m), Some(d), 8) = (digits(0..4), digits(4..6), digits(6..8), value.len())
    else {
        return Err(unknown(format!(
            "{} is not a YYYYMMDD date",
            hex::spaced(value)
        )));
    };
    let j = JalaliDate::new(y as i32, m as u8, d as u8).map_err(|e| {
        unknown(format!(
            "{y:04}/{m:02}/{d:02} is not a Solar Hijri date ({e})"
        ))
    })?;
    card_expiry(&date_pair(j))
}

/// Checks a certificate against the profile's rules for a card that
/// expires at `expiry`: the answer says when it ends, or every difference.
pub fn check(p: &Profile, cert: &[u8], expiry: &CardExpiry) -> Result<String, String> {
    pki::check_card_terms(cert, &p.certificates.card_terms(expiry.end, &expiry.shown)).map_err(
        |e| {
            e.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perso::profile::{REFERENCE_PATH, REFERENCE_PROFILE};

    fn reference() -> Profile {
        Profile::parse(REFERENCE_PROFILE, REFERENCE_PATH, None).unwrap()
    }

    fn dg3(expiry: &[u8]) -> Vec<u8> {
        let mut inner = tlv::build(&[0x80], b"R-1");
        inner.extend(tlv::build(&[0x92], expiry));
        let mut v = tlv::build(&[0x73], &inner);
        v.extend([0u8; 16]); // EF padding
        v
    }

    fn fallback() -> DatePair {
        DatePair {
            jalali: "14120913".into(),
            gregorian: "20331203".into(),
        }
    }

    #[test]
    fn the_card_says_when_it_expires() {
        let p = reference();
        let mut dgs = BTreeMap::new();
        dgs.insert(3u8, Ok(dg3(b"14110913")));
        let e = card_expiry_on_card(&p, &dgs, &fallback()).unwrap();
        // 1411/09/13 is 2032-12-03: the card's date, not the record's.
        assert_eq!(e.end, 1_985_644_800);
        assert_eq!(e.shown, "1411/09/13 (2032-12-03 00:00:00 UTC)");
    }

    #[test]
    fn an_unreadable_expiry_is_named_not_guessed() {
        let p = reference();
        for (data, why) in [
            (Ok(dg3(b"1411093")), "is not a YYYYMMDD date"),
            (Ok(dg3(b"1411-9-3")), "is not a YYYYMMDD date"),
            (Ok(dg3(b"14111331")), "is not a Solar Hijri date"),
            (
                Ok(dg3(b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8")),
                "is not a YYYYMMDD date",
            ),
            (
                Ok(tlv::build(&[0x73], &tlv::build(&[0x80], b"R-1"))),
                "absent",
            ),
            (Ok(vec![0x73, 0x05, 0x80]), "DG3"),
            (Err("6A82 (file not found)".to_string()), "6A82"),
        ] {
            let mut dgs = BTreeMap::new();
            dgs.insert(3u8, data);
            let e = card_expiry_on_card(&p, &dgs, &fallback()).unwrap_err();
            assert!(
                e.starts_with("cannot tell when the card expires: DG3 card.expiry_date: ")
                    && e.contains(why),
                "{e}"
            );
        }
        let e = card_expiry_on_card(&p, &BTreeMap::new(), &fallback()).unwrap_err();
        assert!(e.ends_with("not read"), "{e}");
    }

    #[test]
    fn a_profile_without_the_field_uses_the_record() {
        let text = REFERENCE_PROFILE.replace(
            "  { tag = \"92\", field = \"card.expiry_date\", encoding = \"date\" },\n",
            "",
        );
        assert_ne!(text, REFERENCE_PROFILE);
        let p = Profile::parse(&text, "x", None).unwrap();
        let e = card_expiry_on_card(&p, &BTreeMap::new(), &fallback()).unwrap();
        assert_eq!(e.end, 2_017_180_800);
    }
}
