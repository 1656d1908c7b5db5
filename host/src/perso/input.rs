//! From a validated record to what goes on the card: the fields by the
//! names the profile uses, the certificate subject, the compact templates,
//! and the card's issue and expiry dates.

use crate::pki;
use crate::record::date::{GregorianDate, JalaliDate};
use crate::record::{IssuingOffice, Record, Request};
use crate::secret::Secret;

use super::datagroups::{DatePair, FieldValue, Fields};
use super::profile::Profile;

/// One fingerprint to enrol, already in the card's compact format.
pub struct FingerInput {
    /// ISO/IEC 19794-2 finger position code.
    pub position_code: u8,
    /// Its name, e.g. `right_index`.
    pub position: String,
    /// Reference minutiae (compact card format). Secret.
    pub minutiae: Secret,
}

/// Everything about one citizen that goes on the card.
pub struct CardInput {
    pub record_id: String,
    pub national_id: String,
    pub fields: Fields,
    pub subject: pki::SubjectName,
    pub fingers: Vec<FingerInput>,
    pub issue_date: DatePair,
    pub expiry_date: DatePair,
}

/// `YYYYMMDD` of a Jalali date, and of its Gregorian equivalent.
pub fn date_pair(j: JalaliDate) -> DatePair {
    let g = j.to_gregorian();
    DatePair {
        jalali: format!("{:04}{:02}{:02}", j.year(), j.month(), j.day()),
        gregorian: format!("{:04}{:02}{:02}", g.year(), g.month(), g.day()),
    }
}

/// Today in the Solar Hijri calendar (UTC date).
pub fn today() -> JalaliDate {
    let (y, m, d) = crate::utc::today();
    GregorianDate::new(y, m, d)
        .ok()
        .and_then(JalaliDate::from_gregorian)
        .unwrap_or_else(|| JalaliDate::new(1405, 1, 1).unwrap_or_else(|_| unreachable!()))
}

/// The date `years` Solar Hijri years after `from` (30 Esfand → 29 Esfand
/// in a common year).
pub fn add_years(from: JalaliDate, years: u8) -> JalaliDate {
    let y = from.year() + i32::from(years);
    JalaliDate::new(y, from.month(), from.day())
        .or_else(|_| JalaliDate::new(y, from.month(), from.day().saturating_sub(1)))
        .unwrap_or(from)
}

/// Turns a record's ISO/IEC 19794-2 template into the card's compact format.
pub type CompactFn<'a> = &'a dyn Fn(&[u8], usize) -> Result<Vec<u8>, String>;

/// Build the card input for `record`.
pub fn card_input(
    record: &Record,
    p: &Profile,
    issue_date: JalaliDate,
    compact: CompactFn<'_>,
) -> Result<CardInput, String> {
    let mut f = Fields::new();
    let mut text = |k: &str, v: &str| {
        f.insert(k.to_string(), FieldValue::Text(v.to_string()));
    };
    text("record_id", record.record_id());
    text("national_id", record.national_id());
    for (k, b) in [
        ("given_name", record.given_name()),
        ("family_name", record.family_name()),
        ("father_name", record.father_name()),
        ("birth_place", record.birth_place()),
    ] {
        text(&format!("{k}.fa"), &b.fa);
        text(&format!("{k}.latin"), &b.latin);
    }
    text("sex", record.sex().as_str());
    text(
        "birth_certificate_number",
        record.birth_certificate_number(),
    );
    let office: &IssuingOffice = record.issuing_office();
    text("issuing_office.kind", office.kind());
    text("issuing_office.code", &office.code());
    match record.request() {
        Request::FirstIssue => text("request.type", "first_issue"),
        Request::Replacement {
            reason,
            previous_card_serial,
        } => {
            text("request.type", "replacement");
            text("request.reason", reason.as_str());
            if let Some(s) = previous_card_serial {
                text("request.previous_card_serial", s);
            }
        }
    }
    f.insert(
        "birth_date".into(),
        FieldValue::Date(date_pair(record.birth_date())),
    );
    f.insert(
        "request_date".into(),
        FieldValue::Date(date_pair(record.request_date())),
    );
    f.insert(
        "photo".into(),
        FieldValue::Bytes(record.photo().jpeg().to_vec()),
    );
    let subject = pki::SubjectName::for_national_code(
        &record.given_name().latin,
        &record.family_name().latin,
        record.national_id(),
    )
    .map_err(|e| format!("certificate subject: {e}"))?;
    let mut fingers = Vec::new();
    for (i, fp) in record.fingerprints().iter().enumerate() {
        let minutiae = compact(fp.template(), usize::from(p.max_minutiae))
            .map_err(|e| format!("fingerprints[{i}]: {e}"))?;
        fingers.push(FingerInput {
            position_code: fp.position().iso_code(),
            position: fp.position().as_str().to_string(),
            minutiae: Secret::new(minutiae),
        });
    }
    Ok(CardInput {
        record_id: record.record_id().to_string(),
        national_id: record.national_id().to_string(),
        fields: f,
        subject,
        fingers,
        issue_date: date_pair(issue_date),
        expiry_date: date_pair(add_years(issue_date, p.validity_years)),
    })
}

/// Validates templates with the strict ISO/IEC 19794-2 parser, and checks
/// they convert to the card's compact format.
pub struct IsoTemplates {
    pub max_minutiae: usize,
}

impl crate::record::TemplateValidator for IsoTemplates {
    fn validate(
        &self,
        _position: crate::record::FingerPosition,
        bytes: &[u8],
    ) -> Result<crate::record::TemplateSummary, String> {
        let parsed = crate::biometric::parse_with_warnings(bytes).map_err(|e| e.to_string())?;
        let compact = crate::biometric::to_compact(&parsed.record, 0, self.max_minutiae)
            .map_err(|e| format!("cannot be converted to the card's compact format: {e}"))?;
        Ok(crate::record::TemplateSummary {
            minutiae: compact.len() / 3,
            warnings: parsed.warnings.iter().map(|w| w.to_string()).collect(),
        })
    }
}

/// A record's ISO template in the card's compact format. Warnings were
/// shown when the record was validated ([`IsoTemplates`]).
pub fn compact_template(bytes: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let rec = crate::biometric::parse_with_warnings(bytes)
        .map_err(|e| e.to_string())?
        .record;
    crate::biometric::to_compact(&rec, 0, max).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jalali_dates() {
        let nowruz = JalaliDate::new(1403, 1, 1).unwrap();
        assert_eq!(date_pair(nowruz).gregorian, "20240320");
        let leap = JalaliDate::new(1403, 12, 30).unwrap();
        let later = add_years(leap, 1);
        assert_eq!((later.year(), later.month(), later.day()), (1404, 12, 29));
        assert!(today().year() >= 1404);
    }
}
