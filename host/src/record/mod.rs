//! Citizen records: parsing, validation and normalization of the JSON /
//! JSONL input that drives card personalization, plus synthetic samples.
//!
//! The format is described in `docs/record-format.md`. Everything is checked
//! before any card is touched: [`parse_record`] returns either a fully
//! validated, normalized [`Record`] or every problem found in the record.

mod country;
pub mod date;
mod error;
pub mod national_id;
pub mod normalize;
pub mod photo;
mod samples;
pub mod stream;
mod strict_json;
#[cfg(test)]
mod tests;
mod wire;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use base64::Engine;
use serde_json::{Map, Value};

pub use date::{DateError, GregorianDate, JalaliDate};
pub use error::RecordError;
pub use national_id::{check_national_id, is_valid_national_id, national_id_check_digit};
pub use normalize::{normalize_digits, normalize_persian};
pub use photo::{JpegProcess, PhotoInfo};
pub use samples::{replicate_records, sample_records};
pub use stream::{stream_records, Chunk, StreamOptions};

/// Minimum age, in completed Jalali years, on the request date.
pub const MIN_AGE_YEARS: u32 = 15;
/// Maximum length, in characters, of every name field.
pub const MAX_NAME_CHARS: usize = 64;
/// The only accepted fingerprint template format.
pub const TEMPLATE_FORMAT: &str = "iso19794-2:2005";

/// Sex as printed on the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// `"M"`
    Male,
    /// `"F"`
    Female,
}

impl Sex {
    /// `"M"` or `"F"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "M",
            Sex::Female => "F",
        }
    }
}

/// A text in Persian script with its Latin transliteration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BilingualText {
    /// Persian text, normalized by [`normalize_persian`].
    pub fa: String,
    /// Latin transliteration, whitespace-normalized.
    pub latin: String,
}

/// The office that takes the application.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IssuingOffice {
    /// An office in Iran, identified by a 4-digit code.
    Domestic {
        /// Four ASCII digits.
        code: String,
    },
    /// A consulate abroad, `CC-XXX`.
    Consulate {
        /// ISO 3166-1 alpha-2 country code (never `IR`).
        country: String,
        /// Three upper-case letters naming the post.
        post: String,
    },
}

impl IssuingOffice {
    /// `"domestic"` or `"consulate"`.
    pub fn kind(&self) -> &'static str {
        match self {
            IssuingOffice::Domestic { .. } => "domestic",
            IssuingOffice::Consulate { .. } => "consulate",
        }
    }

    /// The code as written in a record: `1021` or `AE-DXB`.
    pub fn code(&self) -> String {
        match self {
            IssuingOffice::Domestic { code } => code.clone(),
            IssuingOffice::Consulate { country, post } => format!("{country}-{post}"),
        }
    }
}

/// Why a replacement card is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplacementReason {
    /// `"loss"`
    Loss,
    /// `"damage"`
    Damage,
    /// `"civil_data_change"`
    CivilDataChange,
}

impl ReplacementReason {
    /// All reasons.
    pub const ALL: [ReplacementReason; 3] = [
        ReplacementReason::Loss,
        ReplacementReason::Damage,
        ReplacementReason::CivilDataChange,
    ];

    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplacementReason::Loss => "loss",
            ReplacementReason::Damage => "damage",
            ReplacementReason::CivilDataChange => "civil_data_change",
        }
    }

    /// Parses the JSON spelling.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The kind of card request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Request {
    /// First card for this person.
    FirstIssue,
    /// A card replacing an earlier one.
    Replacement {
        /// Why.
        reason: ReplacementReason,
        /// Serial of the card being replaced: 16 upper-case hex digits.
        previous_card_serial: Option<String>,
    },
}

/// Finger positions, with their ISO/IEC 19794-2 codes (one type for records
/// and templates).
pub use crate::biometric::FingerPosition;

/// What a [`TemplateValidator`] reports about an accepted template.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TemplateSummary {
    /// Number of minutiae in the template.
    pub minutiae: usize,
    /// What was accepted but deserves a word (e.g. trailing zero padding
    /// after the record); shown to the user by [`load_records`]' callers
    /// through [`Batch::warnings`]. Never template bytes.
    pub warnings: Vec<String>,
}

/// Checks one fingerprint template (the ISO 19794-2 parser is plugged in
/// here). `Err` carries a short reason; it must not contain template bytes.
pub trait TemplateValidator {
    /// Validates the decoded template bytes for the given finger.
    fn validate(&self, position: FingerPosition, bytes: &[u8]) -> Result<TemplateSummary, String>;
}

/// A validated JPEG photo. `Debug` shows its size, never its bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Photo {
    jpeg: Vec<u8>,
    info: PhotoInfo,
}

impl Photo {
    /// The JPEG file.
    pub fn jpeg(&self) -> &[u8] {
        &self.jpeg
    }
    /// Dimensions and coding process.
    pub fn info(&self) -> PhotoInfo {
        self.info
    }
}

impl fmt::Debug for Photo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Photo")
            .field("bytes", &self.jpeg.len())
            .field("width", &self.info.width)
            .field("height", &self.info.height)
            .field("process", &self.info.process)
            .finish()
    }
}

/// A validated fingerprint template. `Debug` shows its size, never its bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    position: FingerPosition,
    template: Vec<u8>,
    summary: TemplateSummary,
}

impl Fingerprint {
    /// Finger.
    pub fn position(&self) -> FingerPosition {
        self.position
    }
    /// The ISO 19794-2 template bytes.
    pub fn template(&self) -> &[u8] {
        &self.template
    }
    /// What the validator reported.
    pub fn summary(&self) -> &TemplateSummary {
        &self.summary
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fingerprint")
            .field("position", &self.position)
            .field("bytes", &self.template.len())
            .field("minutiae", &self.summary.minutiae)
            .finish()
    }
}

/// A validated, normalized citizen record. Only [`parse_record`] and
/// [`load_records`] make one, so every value obeys the format's rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    record_id: String,
    national_id: String,
    given_name: BilingualText,
    family_name: BilingualText,
    father_name: BilingualText,
    sex: Sex,
    birth_date: JalaliDate,
    birth_date_gregorian: GregorianDate,
    birth_certificate_number: String,
    birth_place: BilingualText,
    issuing_office: IssuingOffice,
    request: Request,
    request_date: JalaliDate,
    request_date_gregorian: GregorianDate,
    photo: Photo,
    fingerprints: Vec<Fingerprint>,
}

impl Record {
    /// `record_id`.
    pub fn record_id(&self) -> &str {
        &self.record_id
    }
    /// National ID, 10 ASCII digits.
    pub fn national_id(&self) -> &str {
        &self.national_id
    }
    /// Given name.
    pub fn given_name(&self) -> &BilingualText {
        &self.given_name
    }
    /// Family name.
    pub fn family_name(&self) -> &BilingualText {
        &self.family_name
    }
    /// Father's given name.
    pub fn father_name(&self) -> &BilingualText {
        &self.father_name
    }
    /// Sex.
    pub fn sex(&self) -> Sex {
        self.sex
    }
    /// Birth date (Solar Hijri).
    pub fn birth_date(&self) -> JalaliDate {
        self.birth_date
    }
    /// Birth date (Gregorian, converted by ICU).
    pub fn birth_date_gregorian(&self) -> GregorianDate {
        self.birth_date_gregorian
    }
    /// Birth certificate number, 1..=10 ASCII digits.
    pub fn birth_certificate_number(&self) -> &str {
        &self.birth_certificate_number
    }
    /// Place of birth.
    pub fn birth_place(&self) -> &BilingualText {
        &self.birth_place
    }
    /// Issuing office.
    pub fn issuing_office(&self) -> &IssuingOffice {
        &self.issuing_office
    }
    /// Request kind.
    pub fn request(&self) -> &Request {
        &self.request
    }
    /// Request date (Solar Hijri).
    pub fn request_date(&self) -> JalaliDate {
        self.request_date
    }
    /// Request date (Gregorian, converted by ICU).
    pub fn request_date_gregorian(&self) -> GregorianDate {
        self.request_date_gregorian
    }
    /// Photo.
    pub fn photo(&self) -> &Photo {
        &self.photo
    }
    /// One or two fingerprints with distinct positions.
    pub fn fingerprints(&self) -> &[Fingerprint] {
        &self.fingerprints
    }
    /// Age in completed Jalali years on the request date (at least 15).
    pub fn age_on_request(&self) -> u32 {
        // A record is made only with its birth date on or before its
        // request date; 0 would be a record that was never checked.
        self.birth_date.age_on(self.request_date).unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

const TOP_FIELDS: [&str; 14] = [
    "record_id",
    "national_id",
    "given_name",
    "family_name",
    "father_name",
    "sex",
    "birth_date",
    "birth_certificate_number",
    "birth_place",
    "issuing_office",
    "request",
    "request_date",
    "photo",
    "fingerprints",
];

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Shows a user-supplied short value in an error, quoted and cut short.
fn quote(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    format!("{out:?}")
}

fn valid_record_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

struct Parser<'a> {
    errors: Vec<(String, String)>,
    validator: &'a dyn TemplateValidator,
}

impl<'a> Parser<'a> {
    fn err(&mut self, field: impl Into<String>, rule: impl Into<String>) {
        self.errors.push((field.into(), rule.into()));
    }

    /// Checks that `v` is an object and has no keys outside `allowed`.
    fn object<'v>(
        &mut self,
        v: &'v Value,
        path: &str,
        allowed: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(map) = v else {
            let rule = format!("must be a JSON object, found {}", type_name(v));
            self.err(path, rule);
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.err(
                    join(path, key),
                    format!("unknown field (allowed: {})", allowed.join(", ")),
                );
            }
        }
        Some(map)
    }

    fn field<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'v Value> {
        let v = map.get(key);
        if v.is_none() {
            self.err(join(path, key), "required field is missing");
        }
        v
    }

    fn string<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'v str> {
        match self.field(map, path, key)? {
            Value::String(s) => Some(s),
            other => {
                let rule = format!("must be a string, found {}", type_name(other));
                self.err(join(path, key), rule);
                None
            }
        }
    }

    fn name_part(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        persian: bool,
    ) -> Option<String> {
        let raw = self.string(map, path, key)?;
        let field = join(path, key);
        let value = if persian {
            normalize_persian(raw)
        } else {
            normalize::normalize_latin(raw)
        };
        let len = value.chars().count();
        if len == 0 {
            self.err(field, "must not be empty");
            return None;
        }
        if len > MAX_NAME_CHARS {
            self.err(
                field,
                format!("is {len} characters long; at most {MAX_NAME_CHARS} allowed"),
            );
            return None;
        }
        let check = if persian {
            normalize::check_persian_text(&value)
        } else {
            normalize::check_latin_text(&value)
        };
        match check {
            Ok(()) => Some(value),
            Err(rule) => {
                self.err(field, rule);
                None
            }
        }
    }

    fn bilingual(&mut self, top: &Map<String, Value>, key: &str) -> Option<BilingualText> {
        let v = self.field(top, "", key)?;
        let map = self.object(v, key, &["fa", "latin"])?;
        let fa = self.name_part(map, key, "fa", true);
        let latin = self.name_part(map, key, "latin", false);
        Some(BilingualText {
            fa: fa?,
            latin: latin?,
        })
    }

    fn date(&mut self, top: &Map<String, Value>, key: &str) -> Option<JalaliDate> {
        let raw = self.string(top, "", key)?;
        match JalaliDate::parse(raw) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(key, e.to_string());
                None
            }
        }
    }

    fn base64(&mut self, raw: &str, field: &str) -> Option<Vec<u8>> {
        // Whitespace (line-wrapped base64) is dropped; most data has none,
        // and is decoded in place (the copy was a tenth of a batch's time).
        let compact: std::borrow::Cow<'_, [u8]> = if raw.bytes().any(|b| b.is_ascii_whitespace()) {
            raw.bytes().filter(|b| !b.is_ascii_whitespace()).collect()
        } else {
            raw.as_bytes().into()
        };
        match STANDARD_PAD_INDIFFERENT.decode(&compact) {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                self.err(
                    field,
                    "is not valid base64 (standard alphabet A-Z a-z 0-9 + /, optional = padding)",
                );
                None
            }
        }
    }

    fn issuing_office(&mut self, top: &Map<String, Value>) -> Option<IssuingOffice> {
        let v = self.field(top, "", "issuing_office")?;
        let map = self.object(v, "issuing_office", &["kind", "code"])?;
        let kind = self.string(map, "issuing_office", "kind");
        let code = self.string(map, "issuing_office", "code");
        let kind = match kind {
            Some(k @ ("domestic" | "consulate")) => k,
            Some(other) => {
                let rule = format!(
                    "is {}; expected \"domestic\" or \"consulate\"",
                    quote(other)
                );
                self.err("issuing_office.kind", rule);
                return None;
            }
            None => return None,
        };
        let code = normalize_digits(code?);
        if kind == "domestic" {
            if code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()) {
                return Some(IssuingOffice::Domestic { code });
            }
            self.err(
                "issuing_office.code",
                format!(
                    "is {}; a domestic office code is exactly 4 digits",
                    quote(&code)
                ),
            );
            return None;
        }
        let bytes = code.as_bytes();
        let shaped = match bytes {
            [c1, c2, b'-', rest @ ..] => {
                rest.len() == 3 && [c1, c2].into_iter().chain(rest).all(u8::is_ascii_uppercase)
            }
            _ => false,
        };
        if !shaped {
            self.err(
                "issuing_office.code",
                format!(
                    "is {}; a consulate code is CC-XXX (ISO 3166-1 alpha-2 country, '-', 3 upper-case letters)",
                    quote(&code)
                ),
            );
            return None;
        }
        let country = &code[..2];
        if country == "IR" {
            self.err(
                "issuing_office.code",
                "country IR is not a consulate; use kind \"domestic\" for offices in Iran",
            );
            return None;
        }
        if !country::is_iso3166_alpha2(country) {
            self.err(
                "issuing_office.code",
                format!("{country} is not an assigned ISO 3166-1 alpha-2 country code"),
            );
            return None;
        }
        Some(IssuingOffice::Consulate {
            country: country.to_string(),
            post: code[3..].to_string(),
        })
    }

    fn request(&mut self, top: &Map<String, Value>) -> Option<Request> {
        let v = self.field(top, "", "request")?;
        let Value::Object(map) = v else {
            self.object(v, "request", &[]);
            return None;
        };
        let ty = match map.get("type") {
            Some(Value::String(s)) => Some(s.as_str()),
            _ => None,
        };
        let allowed: &[&str] = match ty {
            Some("first_issue") => &["type"],
            _ => &["type", "reason", "previous_card_serial"],
        };
        self.object(v, "request", allowed)?;
        let ty = self.string(map, "request", "type")?;
        match ty {
            "first_issue" => Some(Request::FirstIssue),
            "replacement" => {
                let reason = match self.string(map, "request", "reason") {
                    Some(r) => match ReplacementReason::from_name(r) {
                        Some(r) => Some(r),
                        None => {
                            let rule = format!(
                                "is {}; expected \"loss\", \"damage\" or \"civil_data_change\"",
                                quote(r)
                            );
                            self.err("request.reason", rule);
                            None
                        }
                    },
                    None => None,
                };
                let serial = match map.get("previous_card_serial") {
                    None | Some(Value::Null) => Some(None),
                    Some(Value::String(s)) => {
                        let s = normalize_digits(s);
                        if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                            Some(Some(s.to_ascii_uppercase()))
                        } else {
                            self.err(
                                "request.previous_card_serial",
                                "must be exactly 16 hexadecimal digits",
                            );
                            None
                        }
                    }
                    Some(other) => {
                        let rule = format!("must be a string, found {}", type_name(other));
                        self.err("request.previous_card_serial", rule);
                        None
                    }
                };
                Some(Request::Replacement {
                    reason: reason?,
                    previous_card_serial: serial?,
                })
            }
            other => {
                let rule = format!(
                    "is {}; expected \"first_issue\" or \"replacement\"",
                    quote(other)
                );
                self.err("request.type", rule);
                None
            }
        }
    }

    fn photo(&mut self, top: &Map<String, Value>) -> Option<Photo> {
        let v = self.field(top, "", "photo")?;
        let map = self.object(v, "photo", &["format", "data"])?;
        let format = self.string(map, "photo", "format");
        let data = self.string(map, "photo", "data");
        if let Some(f) = format {
            if f != "jpeg" {
                self.err(
                    "photo.format",
                    format!("is {}; only \"jpeg\" is accepted", quote(f)),
                );
            }
        }
        let bytes = self.base64(data?, "photo.data")?;
        match photo::inspect_jpeg(&bytes) {
            Ok(info) if format == Some("jpeg") => Some(Photo { jpeg: bytes, info }),
            Ok(_) => None,
            Err(rule) => {
                self.err("photo.data", rule);
                None
            }
        }
    }

    fn fingerprints(&mut self, top: &Map<String, Value>) -> Option<Vec<Fingerprint>> {
        let v = self.field(top, "", "fingerprints")?;
        let Value::Array(items) = v else {
            let rule = format!("must be an array, found {}", type_name(v));
            self.err("fingerprints", rule);
            return None;
        };
        if items.is_empty() || items.len() > 2 {
            self.err(
                "fingerprints",
                format!("has {} entries; 1 or 2 are required", items.len()),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("fingerprints[{i}]");
            let Some(map) = self.object(item, &path, &["position", "format", "data"]) else {
                ok = false;
                continue;
            };
            let position = match self.string(map, &path, "position") {
                Some(p) => match FingerPosition::from_name(p) {
                    Some(p) => Some(p),
                    None => {
                        let rule = format!(
                            "is {}; expected one of: {}",
                            quote(p),
                            FingerPosition::ALL.map(FingerPosition::as_str).join(", ")
                        );
                        self.err(format!("{path}.position"), rule);
                        None
                    }
                },
                None => None,
            };
            if let Some(p) = position {
                if let Some(j) = out.iter().position(|f: &Fingerprint| f.position == p) {
                    self.err(
                        format!("{path}.position"),
                        format!("duplicate position {p} (also fingerprints[{j}]); positions must be distinct"),
                    );
                    ok = false;
                    continue;
                }
            }
            let format_ok = match self.string(map, &path, "format") {
                Some(TEMPLATE_FORMAT) => true,
                Some(f) => {
                    let rule = format!("is {}; only \"{TEMPLATE_FORMAT}\" is accepted", quote(f));
                    self.err(format!("{path}.format"), rule);
                    false
                }
                None => false,
            };
            let data_field = format!("{path}.data");
            let bytes = match self.string(map, &path, "data") {
                Some(d) => self.base64(d, &data_field),
                None => None,
            };
            let (Some(position), Some(bytes), true) = (position, bytes, format_ok) else {
                ok = false;
                continue;
            };
            if bytes.is_empty() {
                self.err(data_field, "is empty; a template is required");
                ok = false;
                continue;
            }
            match self.validator.validate(position, &bytes) {
                Ok(summary) => out.push(Fingerprint {
                    position,
                    template: bytes,
                    summary,
                }),
                Err(reason) => {
                    self.err(data_field, format!("template refused: {reason}"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

/// The single-field rules of a record that need more than a type check.
impl Parser<'_> {
    /// `record_id`: 1..=64 characters of A-Z a-z 0-9 . _ -.
    fn record_id(&mut self, top: &Map<String, Value>) -> Option<String> {
        let s = self.string(top, "", "record_id")?;
        if valid_record_id(s) {
            Some(s.to_string())
        } else {
            self.err(
                "record_id",
                "must be 1..=64 characters of A-Z a-z 0-9 . _ -",
            );
            None
        }
    }

    /// `national_id`: ten digits (Persian or Arabic-Indic digits are
    /// normalized first) with a valid check digit.
    fn national_id(&mut self, top: &Map<String, Value>) -> Option<String> {
        let s = normalize_digits(self.string(top, "", "national_id")?);
        match check_national_id(&s) {
            Ok(()) => Some(s),
            Err(rule) => {
                self.err("national_id", rule);
                None
            }
        }
    }

    /// `sex`: "M" or "F".
    fn sex(&mut self, top: &Map<String, Value>) -> Option<Sex> {
        match self.string(top, "", "sex")? {
            "M" => Some(Sex::Male),
            "F" => Some(Sex::Female),
            other => {
                self.err(
                    "sex",
                    format!("is {}; expected \"M\" or \"F\"", quote(other)),
                );
                None
            }
        }
    }

    /// `birth_certificate_number`: 1..=10 digits, after normalization.
    fn birth_certificate_number(&mut self, top: &Map<String, Value>) -> Option<String> {
        let s = normalize_digits(self.string(top, "", "birth_certificate_number")?);
        if (1..=10).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Some(s)
        } else {
            self.err("birth_certificate_number", "must be 1..=10 digits");
            None
        }
    }

    /// The holder was born before the request and was at least
    /// [`MIN_AGE_YEARS`] old on its date.
    fn check_age(&mut self, birth: JalaliDate, request: JalaliDate) {
        match birth.age_on(request) {
            None => self.err(
                "birth_date",
                format!("{birth} is after the request date {request}"),
            ),
            Some(age) if age < MIN_AGE_YEARS => self.err(
                "birth_date",
                format!(
                    "age on the request date {request} is {age} years; at least {MIN_AGE_YEARS} is required"
                ),
            ),
            Some(_) => {}
        }
    }
}

/// `text` as JSON (strict: no duplicate keys), or the rule for a syntax
/// error with its position in the file (`text` starts on `first_line`).
fn parse_json(text: &str, first_line: usize) -> Result<Value, String> {
    strict_json::from_str(text).map_err(|e| {
        format!(
            "invalid JSON at line {}, column {}: {}",
            e.line() + first_line - 1,
            e.column(),
            strip_json_position(&e.to_string())
        )
    })
}

fn strip_json_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

/// Parses and validates one record. `first_line` is the file line on which
/// `text` starts, used for JSON syntax error positions.
fn parse_record_at(
    text: &str,
    location: &str,
    first_line: usize,
    v: &dyn TemplateValidator,
) -> Result<Record, Vec<RecordError>> {
    let whole = |field: &str, rule: String| {
        vec![RecordError {
            location: location.to_string(),
            record_id: None,
            field: field.to_string(),
            rule,
        }]
    };
    let value = parse_json(text, first_line).map_err(|rule| whole("", rule))?;
    let Value::Object(top) = &value else {
        return Err(whole(
            "",
            format!(
                "a record must be a JSON object, found {}",
                type_name(&value)
            ),
        ));
    };
    let record_id_for_errors = match top.get("record_id") {
        Some(Value::String(s)) if valid_record_id(s) => Some(s.clone()),
        _ => None,
    };
    let mut p = Parser {
        errors: Vec::new(),
        validator: v,
    };
    p.object(&value, "", &TOP_FIELDS);

    let record_id = p.record_id(top);
    let national_id = p.national_id(top);
    let given_name = p.bilingual(top, "given_name");
    let family_name = p.bilingual(top, "family_name");
    let father_name = p.bilingual(top, "father_name");
    let sex = p.sex(top);
    let birth_date = p.date(top, "birth_date");
    let birth_certificate_number = p.birth_certificate_number(top);
    let birth_place = p.bilingual(top, "birth_place");
    let issuing_office = p.issuing_office(top);
    let request = p.request(top);
    let request_date = p.date(top, "request_date");
    let photo = p.photo(top);
    let fingerprints = p.fingerprints(top);

    if let (Some(b), Some(r)) = (birth_date, request_date) {
        p.check_age(b, r);
    }

    if !p.errors.is_empty() {
        return Err(p
            .errors
            .into_iter()
            .map(|(field, rule)| RecordError {
                location: location.to_string(),
                record_id: record_id_for_errors.clone(),
                field,
                rule,
            })
            .collect());
    }
    let (
        Some(record_id),
        Some(national_id),
        Some(given_name),
        Some(family_name),
        Some(father_name),
        Some(sex),
        Some(birth_date),
        Some(birth_certificate_number),
        Some(birth_place),
        Some(issuing_office),
        Some(request),
        Some(request_date),
        Some(photo),
        Some(fingerprints),
    ) = (
        record_id,
        national_id,
        given_name,
        family_name,
        father_name,
        sex,
        birth_date,
        birth_certificate_number,
        birth_place,
        issuing_office,
        request,
        request_date,
        photo,
        fingerprints,
    )
    else {
        // Every `None` above is accompanied by an error; this is a safety net.
        return Err(whole("", "record could not be validated".into()));
    };
    Ok(Record {
        record_id,
        national_id,
        given_name,
        family_name,
        father_name,
        sex,
        birth_date_gregorian: birth_date.to_gregorian(),
        birth_date,
        birth_certificate_number,
        birth_place,
        issuing_office,
        request,
        request_date_gregorian: request_date.to_gregorian(),
        request_date,
        photo,
        fingerprints,
    })
}

/// Parses and validates one record (one JSON object). `location` names its
/// origin in errors, e.g. `batch.jsonl:7`. All field errors of the record are
/// returned, not just the first.
pub fn parse_record(
    text: &str,
    location: &str,
    v: &dyn TemplateValidator,
) -> Result<Record, Vec<RecordError>> {
    parse_record_at(text, location, 1, v)
}

/// The canonical JSON form of a record (one line, fields in documented
/// order, normalized values, standard padded base64). It parses back to an
/// equal [`Record`].
pub fn to_json_line(record: &Record) -> String {
    wire::WireRecord::from_record(record).to_line()
}

// ---------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------

/// The outcome of loading a file: valid records with their line numbers,
/// and every error found.
#[derive(Debug, Default)]
pub struct Batch {
    /// Valid records, with the 1-based line on which each starts.
    pub good: Vec<(usize, Record)>,
    /// Errors of refused records (several per record are possible).
    pub bad: Vec<RecordError>,
    /// Warnings about accepted records, in the shape of an error (where,
    /// which record and field, what): e.g. a fingerprint template with zero
    /// padding after its declared length.
    pub warnings: Vec<RecordError>,
}

/// Loads a file of records. A file holding one (pretty-printed) JSON object
/// is one record; otherwise each non-blank line is a record (JSONL). A
/// record whose `record_id` or `national_id` already appeared on an earlier
/// line of the batch is refused. Only I/O failures are `Err`.
pub fn load_records(path: &Path, v: &dyn TemplateValidator) -> std::io::Result<Batch> {
    let bytes = std::fs::read(path)?;
    let name = path.display().to_string();
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut batch = Batch::default();

    // Non-blank lines as (1-based number, text); invalid UTF-8 is an error
    // for that line.
    let mut lines: Vec<(usize, Result<&str, String>)> = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        match std::str::from_utf8(raw) {
            Ok(s) if s.trim().is_empty() => {}
            Ok(s) => lines.push((i + 1, Ok(s))),
            Err(e) => lines.push((
                i + 1,
                Err(format!(
                    "line is not valid UTF-8 (invalid byte at byte offset {})",
                    e.valid_up_to()
                )),
            )),
        }
    }

    let whole_text = std::str::from_utf8(bytes).ok();
    let single_document = lines.len() > 1
        && whole_text.is_some()
        && matches!(lines.first(), Some((_, Ok(first))) if first.trim() == "{");
    let mut results: Vec<(usize, Result<Record, Vec<RecordError>>)> = Vec::new();
    if single_document {
        let text = whole_text.unwrap_or_default();
        let at = lines.first().map_or(1, |(n, _)| *n);
        results.push((at, parse_record_at(text, &name, 1, v)));
    } else {
        for (n, line) in lines {
            let loc = format!("{name}:{n}");
            let result = match line {
                Ok(text) => parse_record_at(text, &loc, n, v),
                Err(rule) => Err(vec![RecordError {
                    location: loc,
                    record_id: None,
                    field: String::new(),
                    rule,
                }]),
            };
            results.push((n, result));
        }
    }

    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut nids: HashMap<String, usize> = HashMap::new();
    for (n, result) in results {
        match result {
            Err(errs) => batch.bad.extend(errs),
            Ok(record) => {
                let loc = if single_document {
                    name.clone()
                } else {
                    format!("{name}:{n}")
                };
                let mut dup = false;
                if let Some(&first) = ids.get(&record.record_id) {
                    batch.bad.push(RecordError {
                        location: loc.clone(),
                        record_id: Some(record.record_id.clone()),
                        field: "record_id".into(),
                        rule: format!("duplicate record_id; first used on line {first}"),
                    });
                    dup = true;
                }
                if let Some(&first) = nids.get(&record.national_id) {
                    batch.bad.push(RecordError {
                        location: loc.clone(),
                        record_id: Some(record.record_id.clone()),
                        field: "national_id".into(),
                        rule: format!("duplicate national_id; first used on line {first}"),
                    });
                    dup = true;
                }
                ids.entry(record.record_id.clone()).or_insert(n);
                nids.entry(record.national_id.clone()).or_insert(n);
                if !dup {
                    for (i, f) in record.fingerprints.iter().enumerate() {
                        for w in &f.summary.warnings {
                            batch.warnings.push(RecordError {
                                location: loc.clone(),
                                record_id: Some(record.record_id.clone()),
                                field: format!("fingerprints[{i}].data"),
                                rule: format!("template accepted with a warning: {w}"),
                            });
                        }
                    }
                    batch.good.push((n, record));
                }
            }
        }
    }
    Ok(batch)
}
