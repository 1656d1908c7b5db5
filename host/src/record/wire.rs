//! The canonical JSON shape of a record, used for output (`to_json_line`,
//! samples). Field order follows the documented format.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;

use super::{BilingualText, IssuingOffice, Record, Request, TEMPLATE_FORMAT};

#[derive(Serialize)]
pub(crate) struct WireText {
    pub fa: String,
    pub latin: String,
}

impl From<&BilingualText> for WireText {
    fn from(t: &BilingualText) -> Self {
        WireText {
            fa: t.fa.clone(),
            latin: t.latin.clone(),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct WireOffice {
    pub kind: &'static str,
    pub code: String,
}

#[derive(Serialize)]
pub(crate) struct WireRequest {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_card_serial: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct WirePhoto {
    pub format: &'static str,
    pub data: String,
}

#[derive(Serialize)]
pub(crate) struct WireFingerprint {
    pub position: &'static str,
    pub format: &'static str,
    pub data: String,
}

#[derive(Serialize)]
pub(crate) struct WireRecord {
    pub record_id: String,
    pub national_id: String,
    pub given_name: WireText,
    pub family_name: WireText,
    pub father_name: WireText,
    pub sex: &'static str,
    pub birth_date: String,
    pub birth_certificate_number: String,
    pub birth_place: WireText,
    pub issuing_office: WireOffice,
    pub request: WireRequest,
    pub request_date: String,
    pub photo: WirePhoto,
    pub fingerprints: Vec<WireFingerprint>,
}

impl WireRequest {
    pub fn from_request(r: &Request) -> Self {
        match r {
            Request::FirstIssue => WireRequest {
                kind: "first_issue",
                reason: None,
                previous_card_serial: None,
            },
            Request::Replacement {
                reason,
                previous_card_serial,
            } => WireRequest {
                kind: "replacement",
                reason: Some(reason.as_str()),
                previous_card_serial: previous_card_serial.clone(),
            },
        }
    }
}

impl WireOffice {
    pub fn from_office(o: &IssuingOffice) -> Self {
        WireOffice {
            kind: o.kind(),
            code: o.code(),
        }
    }
}

impl WireRecord {
    pub fn from_record(r: &Record) -> Self {
        WireRecord {
            record_id: r.record_id.clone(),
            national_id: r.national_id.clone(),
            given_name: (&r.given_name).into(),
            family_name: (&r.family_name).into(),
            father_name: (&r.father_name).into(),
            sex: r.sex.as_str(),
            birth_date: r.birth_date.to_string(),
            birth_certificate_number: r.birth_certificate_number.clone(),
            birth_place: (&r.birth_place).into(),
            issuing_office: WireOffice::from_office(&r.issuing_office),
            request: WireRequest::from_request(&r.request),
            request_date: r.request_date.to_string(),
            photo: WirePhoto {
                format: "jpeg",
                data: STANDARD.encode(&r.photo.jpeg),
            },
            fingerprints: r
                .fingerprints
                .iter()
                .map(|f| WireFingerprint {
                    position: f.position.as_str(),
                    format: TEMPLATE_FORMAT,
                    data: STANDARD.encode(&f.template),
                })
                .collect(),
        }
    }

    #[allow(
        clippy::expect_used,
        reason = "a record has only string keys and plain values"
    )]
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a record always serializes")
    }
}
