//! Data groups: built from the record's fields as the profile maps them, and
//! read back and compared field by field.

use std::collections::BTreeMap;

use crate::hex;
use crate::tlv;

pub use super::profile::DatePair;
use super::profile::{DataGroup, Encoding, Profile};

/// The value of one record field, ready to be written.
#[derive(Clone, PartialEq, Eq)]
pub enum FieldValue {
    Text(String),
    Date(DatePair),
    Bytes(Vec<u8>),
}

impl std::fmt::Debug for FieldValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldValue::Text(t) => write!(f, "{t:?}"),
            FieldValue::Date(d) => write!(f, "{} ({})", d.jalali, d.gregorian),
            FieldValue::Bytes(b) => write!(f, "{} bytes", b.len()),
        }
    }
}

/// Field name → value, for every field the profile may name (absent
/// optional fields are simply missing).
pub type Fields = BTreeMap<String, FieldValue>;

/// The bytes a field is written as.
pub fn encode_field(v: &FieldValue, enc: Encoding) -> Option<Vec<u8>> {
    match (v, enc) {
        (FieldValue::Text(t), Encoding::Utf8) => Some(t.as_bytes().to_vec()),
        (FieldValue::Date(d), Encoding::Date) => Some(d.jalali.as_bytes().to_vec()),
        (FieldValue::Date(d), Encoding::Gregorian) => Some(d.gregorian.as_bytes().to_vec()),
        (FieldValue::Bytes(b), Encoding::Bytes) => Some(b.clone()),
        _ => None,
    }
}

/// Build data group `dg`: its template tag around one data object per
/// field present. `extra` is appended inside the template (DG4's BITs).
pub fn build(dg: &DataGroup, fields: &Fields, extra: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    for f in &dg.fields {
        if let Some(bytes) = fields
            .get(&f.field)
            .and_then(|v| encode_field(v, f.encoding))
        {
            inner.extend(tlv::build(&f.tag, &bytes));
        }
    }
    inner.extend_from_slice(extra);
    tlv::build(&dg.tag, &inner)
}

/// A difference between the card and the record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mismatch {
    pub data_group: u8,
    pub field: String,
    pub expected: String,
    pub found: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DG{} {}: record has {}, card has {}",
            self.data_group, self.field, self.expected, self.found
        )
    }
}

/// How a value is shown in a mismatch: text as text, bytes by size and digest.
fn show(bytes: Option<&[u8]>, enc: Encoding) -> String {
    match bytes {
        None => "nothing".into(),
        Some(b) if enc == Encoding::Bytes => {
            let d = ring::digest::digest(&ring::digest::SHA256, b);
            format!(
                "{} bytes (SHA-256 {}…)",
                b.len(),
                hex::compact(d.as_ref().get(..8).unwrap_or_default())
            )
        }
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => format!("{s:?}"),
            Err(_) => format!("non-UTF-8 bytes {}", hex::spaced(b)),
        },
    }
}

/// Parse a data group read from the card: its template, and the value of
/// each child tag. Errors say what is wrong with the structure.
pub fn parse(dg: &DataGroup, bytes: &[u8]) -> Result<Vec<(Vec<u8>, tlv::Node)>, String> {
    let nodes = tlv::decode(bytes);
    let top = tlv::expect_one(&nodes, &dg.tag)?;
    let mut out = Vec::new();
    for n in tlv::children(top) {
        match &n.kind {
            tlv::NodeKind::Tlv { tag, .. } => out.push((tag.clone(), n.clone())),
            tlv::NodeKind::Padding { .. } => {}
            tlv::NodeKind::Raw { reason, .. } => {
                return Err(format!(
                    "malformed data object at byte {}: {reason}",
                    n.offset
                ))
            }
        }
    }
    Ok(out)
}

/// Compare data group `dg` read from the card with what the record says.
/// Fields named in `skip` (filled at personalization) are not compared.
pub fn compare(
    dg: &DataGroup,
    card: &[u8],
    fields: &Fields,
    skip: &[&str],
) -> Result<Vec<Mismatch>, String> {
    let objects = parse(dg, card)?;
    let mut out = Vec::new();
    for f in &dg.fields {
        if skip.contains(&f.field.as_str()) {
            continue;
        }
        let expected = fields
            .get(&f.field)
            .and_then(|v| encode_field(v, f.encoding));
        let found: Vec<&[u8]> = objects
            .iter()
            .filter(|(t, _)| *t == f.tag)
            .filter_map(|(_, n)| tlv::tag_value(n).map(|(_, v)| v))
            .collect();
        let label = match f.encoding {
            Encoding::Gregorian => format!("{} (Gregorian)", f.field),
            _ => f.field.clone(),
        };
        let found_one = match found.as_slice() {
            [] => None,
            [one] => Some(*one),
            _ => {
                out.push(Mismatch {
                    data_group: dg.number,
                    field: label,
                    expected: show(expected.as_deref(), f.encoding),
                    found: format!("{} copies of tag {}", found.len(), hex::compact(&f.tag)),
                });
                continue;
            }
        };
        if expected.as_deref() != found_one {
            out.push(Mismatch {
                data_group: dg.number,
                field: label,
                expected: show(expected.as_deref(), f.encoding),
                found: show(found_one, f.encoding),
            });
        }
    }
    Ok(out)
}

/// Read back one field's raw bytes from a parsed data group.
pub fn field_bytes<'a>(
    objects: &'a [(Vec<u8>, tlv::Node)],
    dg: &DataGroup,
    field: &str,
    enc: Encoding,
) -> Option<&'a [u8]> {
    let f = dg
        .fields
        .iter()
        .find(|f| f.field == field && f.encoding == enc)?;
    objects
        .iter()
        .find(|(t, _)| *t == f.tag)
        .and_then(|(_, n)| tlv::tag_value(n).map(|(_, v)| v))
}

/// The size EF.DG2 gets for a photo data group of `len` bytes.
pub fn rounded_size(len: usize, step: u16) -> usize {
    let step = usize::from(step.max(1));
    len.div_ceil(step) * step
}

/// All data groups of the profile, built. DG numbers with no fields get
/// `extra` content from `extras`.
pub fn build_all(
    p: &Profile,
    fields: &Fields,
    extras: &BTreeMap<u8, Vec<u8>>,
) -> BTreeMap<u8, Vec<u8>> {
    p.data_groups
        .iter()
        .map(|dg| {
            let extra = extras.get(&dg.number).map(Vec::as_slice).unwrap_or(&[]);
            (dg.number, build(dg, fields, extra))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields {
        let mut f = Fields::new();
        f.insert("national_id".into(), FieldValue::Text("0499370899".into()));
        f.insert("given_name.fa".into(), FieldValue::Text("محمد".into()));
        f.insert(
            "birth_date".into(),
            FieldValue::Date(DatePair {
                jalali: "13800715".into(),
                gregorian: "20011007".into(),
            }),
        );
        f
    }

    #[test]
    fn build_then_compare_finds_nothing_then_names_the_changed_field() {
        let p = Profile::reference();
        let dg1 = p.data_group(1).unwrap();
        let f = fields();
        let bytes = build(dg1, &f, &[]);
        assert!(compare(dg1, &bytes, &f, &[]).unwrap().is_empty());
        let mut other = f.clone();
        other.insert("given_name.fa".into(), FieldValue::Text("علی".into()));
        let m = compare(dg1, &bytes, &other, &[]).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].field, "given_name.fa");
        assert!(m[0].to_string().contains("\"علی\"") && m[0].to_string().contains("\"محمد\""));
        // A missing field on the card is named too.
        let mut more = f.clone();
        more.insert("sex".into(), FieldValue::Text("M".into()));
        let m = compare(dg1, &bytes, &more, &[]).unwrap();
        assert_eq!(m[0].field, "sex");
        assert_eq!(m[0].found, "nothing");
    }

    #[test]
    fn structure_errors_are_reported_not_panicked() {
        let p = Profile::reference();
        let dg1 = p.data_group(1).unwrap();
        for bad in [
            &[][..],
            &[0x71],
            &[0x71, 0x05, 0x80],
            &[0x72, 0x00],
            &[0xFF; 3],
        ] {
            assert!(compare(dg1, bad, &fields(), &[]).is_err());
        }
    }
}
