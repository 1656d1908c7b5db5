//! Encoder for ISO/IEC 19794-2:2005 finger minutiae records.

use super::error::{ErrorKind, Location, TemplateError};
use super::parse::parse;
use super::types::*;

fn too_big(
    loc: Location,
    field: &'static str,
    found: usize,
    expected: &'static str,
) -> TemplateError {
    TemplateError::without_offset(
        loc,
        ErrorKind::OutOfRange {
            field,
            found: found as u64,
            expected,
        },
    )
}

/// Encodes `record` as an ISO/IEC 19794-2:2005 record.
///
/// Returns an error (instead of writing a record that [`parse`] would reject or
/// decode differently) when a value does not fit its field or breaks a rule of
/// the format; so whenever this succeeds, `parse(&encode_2005(r)?) == Ok(r)`.
/// Errors found by the final parse-back check carry offsets into the encoded
/// output. A 2011 record is rejected (`Unsupported`): its per-representation
/// capture data has no place in a 2005 record.
pub fn encode_2005(record: &FingerRecord) -> Result<Vec<u8>, TemplateError> {
    let h = Location::Header;
    if record.version != Version::V2005 {
        return Err(TemplateError::without_offset(
            h,
            ErrorKind::Unsupported {
                what: "encoding a 2011 record as 2005",
            },
        ));
    }
    if record.capture_equipment_compliance > 0x0f {
        return Err(too_big(
            h,
            "capture equipment compliance",
            record.capture_equipment_compliance.into(),
            "0..=15",
        ));
    }
    if record.capture_equipment_id > 0x0fff {
        return Err(too_big(
            h,
            "capture equipment ID",
            record.capture_equipment_id.into(),
            "0..=4095",
        ));
    }
    if record.views.len() > 255 {
        return Err(too_big(
            h,
            "number of finger views",
            record.views.len(),
            "1..=255",
        ));
    }
    let mut out = Vec::with_capacity(
        24 + record
            .views
            .iter()
            .map(|v| 6 + 6 * v.minutiae.len())
            .sum::<usize>(),
    );
    out.extend_from_slice(b"FMR\0 20\0");
    out.extend_from_slice(&[0; 4]); // record length, patched below
    let equipment =
        (u16::from(record.capture_equipment_compliance) << 12) | record.capture_equipment_id;
    for v in [
        equipment,
        record.width,
        record.height,
        record.resolution_x,
        record.resolution_y,
    ] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.push(record.views.len() as u8);
    out.push(0);
    for (vi, view) in record.views.iter().enumerate() {
        encode_view_2005(view, vi + 1, &mut out)?;
    }
    let len = u32::try_from(out.len())
        .map_err(|_| too_big(h, "record length", out.len(), "at most 2^32-1 bytes"))?;
    if let Some(slot) = out.get_mut(8..12) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
    let back = parse(&out)?;
    if back != *record {
        // Only fields the 2005 format cannot express differ here.
        let what =
            if record.certification_flag || record.views.iter().any(|v| v.capture_2011.is_some()) {
                "2011 capture fields in a 2005 record"
            } else {
                "extended_data_len differs from the size of extended_data"
            };
        return Err(TemplateError::without_offset(
            h,
            ErrorKind::Unsupported { what },
        ));
    }
    Ok(out)
}

/// One finger view of a 2005 record, view `number` (1-based): its header,
/// its minutiae and its extended data blocks.
fn encode_view_2005(
    view: &FingerView,
    number: usize,
    out: &mut Vec<u8>,
) -> Result<(), TemplateError> {
    let vloc = Location::View { view: number };
    if view.view_number > 0x0f {
        return Err(too_big(
            vloc,
            "view number",
            view.view_number.into(),
            "0..=15",
        ));
    }
    if view.minutiae.len() > 255 {
        return Err(too_big(
            vloc,
            "number of minutiae",
            view.minutiae.len(),
            "1..=255",
        ));
    }
    out.push(view.position.code());
    out.push((view.view_number << 4) | (view.impression_type.code() & 0x0f));
    if view.impression_type.code() > 0x0f {
        return Err(too_big(
            vloc,
            "impression type",
            view.impression_type.code().into(),
            "0..=3 or 8",
        ));
    }
    out.push(view.quality);
    out.push(view.minutiae.len() as u8);
    for (mi, m) in view.minutiae.iter().enumerate() {
        let mloc = Location::Minutia {
            view: number,
            minutia: mi + 1,
        };
        if m.x > 0x3fff {
            return Err(too_big(mloc, "minutia x", m.x.into(), "0..=16383"));
        }
        if m.y > 0x3fff {
            return Err(too_big(mloc, "minutia y", m.y.into(), "0..=16383"));
        }
        out.extend_from_slice(&((u16::from(m.kind.code()) << 14) | m.x).to_be_bytes());
        out.extend_from_slice(&m.y.to_be_bytes());
        out.push(m.angle);
        out.push(m.quality);
    }
    let total = view.computed_extended_data_len();
    if total > usize::from(u16::MAX) {
        return Err(too_big(
            vloc,
            "extended data block length",
            total,
            "0..=65535",
        ));
    }
    out.extend_from_slice(&(total as u16).to_be_bytes());
    for b in &view.extended_data {
        out.extend_from_slice(&b.type_code.to_be_bytes());
        // The block length counts its 4-byte header (ISO/IEC 19794-2:2005 §7.5).
        out.extend_from_slice(&((4 + b.data.len()) as u16).to_be_bytes());
        out.extend_from_slice(&b.data);
    }
    Ok(())
}
