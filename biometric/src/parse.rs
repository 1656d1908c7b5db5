//! Strict parser for ISO/IEC 19794-2 finger minutiae records (2005 and 2011).
//!
//! Layout facts (all integers big-endian; sizes in bytes unless noted).
//!
//! 2005 header: `"FMR\0"`, `" 20\0"`, record length (4), capture equipment
//! compliance (4 bits) and ID (12 bits), width (2), height (2), x and y
//! resolution in pixels/cm (2 each), number of views (1), reserved (1).
//! Per view: finger position (1), view number (4 bits) and impression type
//! (4 bits), finger quality (1), minutia count (1), then 6 bytes per minutia
//! (type 2 bits and x 14 bits, reserved 2 bits and y 14 bits, angle, quality),
//! then the extended data block length (2) and that many bytes of blocks,
//! each a type (2), a length (2) and the data. A block's length counts the
//! whole block, its 4-byte type and length header included (ISO/IEC
//! 19794-2:2005 §7.5; NIST's reference reader, libfmr, reads it so).
//!
//! 2011 header: `"FMR\0"`, `"030\0"`, record length (4), number of
//! representations (2), certification flag (1). Per representation: length
//! (4), capture date/time (9), device technology (1), vendor (2), device type
//! (2), quality blocks (count, then 5 each), certification blocks (count, then
//! 3 each; only when the flag is set), finger position (1), representation
//! number (1), resolutions (2 each), impression type (1), width (2), height
//! (2), minutia size (4 bits: 5 or 6) and ridge ending type (4 bits), minutia
//! count (1), minutiae, extended data as in 2005.
//!
//! Capture SDKs that write into a fixed-size buffer leave zero bytes after
//! the declared record length: [`parse_with_warnings`] accepts them and says
//! so ([`ParseWarning::ZeroPadding`]); any other disagreement between the
//! record length field and the input is an error at byte 8.
//!
//! ANSI/INCITS 378-2004 records share the format identifier and version but
//! have a 2-byte (or 0 + 4-byte) record length followed by a CBEFF product
//! identifier; such a record is named as what it is
//! ([`ErrorKind::AnsiRecord`]) instead of failing on its length.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::error::{ErrorKind, Location, TemplateError};
use super::types::*;

const MAGIC: u32 = 0x464d_5200;
const VERSION_2005: u32 = 0x2032_3000;
const VERSION_2011: u32 = 0x3033_3000;

type Result<T> = std::result::Result<T, TemplateError>;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Accept what real writers get wrong in a known way, with a warning.
    lenient: bool,
    warnings: Vec<ParseWarning>,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str, loc: Location) -> Result<&'a [u8]> {
        let available = self.bytes.len().saturating_sub(self.pos);
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.bytes.get(self.pos..end)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(TemplateError::at(
                self.pos,
                loc,
                ErrorKind::Truncated {
                    field,
                    needed: n,
                    available,
                },
            )),
        }
    }

    fn u8(&mut self, field: &'static str, loc: Location) -> Result<u8> {
        let s = self.take(1, field, loc)?;
        Ok(s.iter().fold(0u8, |_, b| *b))
    }

    fn u16(&mut self, field: &'static str, loc: Location) -> Result<u16> {
        let s = self.take(2, field, loc)?;
        Ok(s.iter().fold(0u16, |acc, b| (acc << 8) | u16::from(*b)))
    }

    fn u32(&mut self, field: &'static str, loc: Location) -> Result<u32> {
        let s = self.take(4, field, loc)?;
        Ok(s.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }
}

fn out_of_range(
    offset: usize,
    loc: Location,
    field: &'static str,
    found: impl Into<u64>,
    expected: &'static str,
) -> TemplateError {
    TemplateError::at(
        offset,
        loc,
        ErrorKind::OutOfRange {
            field,
            found: found.into(),
            expected,
        },
    )
}

/// Something accepted but worth telling the user about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseWarning {
    /// Zero bytes follow the declared record length (a capture SDK's
    /// fixed-size buffer); they were ignored.
    #[error(
        "{count} zero bytes of padding after the declared record length (bytes {offset}..{end}) were ignored",
        end = offset + count
    )]
    ZeroPadding {
        /// The declared record length: where the padding starts.
        offset: usize,
        /// How many padding bytes.
        count: usize,
    },
    /// A view's extended data block lengths count only the data, not the
    /// 4-byte type and length header the standard includes; the blocks were
    /// read that way because they then add up exactly.
    #[error(
        "view {view}: the extended data block lengths at byte {offset} count only the data, not the 4-byte block header that ISO/IEC 19794-2 includes; read them that way"
    )]
    DataOnlyBlockLengths {
        view: usize,
        /// Offset of the view's extended data block length field.
        offset: usize,
    },
}

/// A record and what was accepted with a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub record: FingerRecord,
    pub warnings: Vec<ParseWarning>,
}

/// Parses an ISO/IEC 19794-2:2005 (`" 20\0"`) or :2011 (`"030\0"`) finger
/// minutiae record, checking every field (see the module documentation of
/// `biometric` for the list of rules). The record length field must equal
/// the input length: trailing zero padding is refused here (see
/// [`parse_with_warnings`]). Never panics.
pub fn parse(bytes: &[u8]) -> Result<FingerRecord> {
    parse_inner(bytes, false).map(|p| p.record)
}

/// [`parse`], except that it accepts, each with a [`ParseWarning`], what
/// real writers get wrong in a known way: zero bytes after the declared
/// record length ([`ParseWarning::ZeroPadding`]), and extended data block
/// lengths that count only the data when the blocks then add up exactly
/// ([`ParseWarning::DataOnlyBlockLengths`]). Trailing bytes that are not
/// all zero stay an error that names the first non-zero byte.
pub fn parse_with_warnings(bytes: &[u8]) -> Result<Parsed> {
    parse_inner(bytes, true)
}

fn parse_inner(bytes: &[u8], lenient: bool) -> Result<Parsed> {
    let mut r = Reader {
        bytes,
        pos: 0,
        lenient,
        warnings: Vec::new(),
    };
    let h = Location::Header;
    let magic = r.u32("format identifier", h)?;
    if magic != MAGIC {
        return Err(TemplateError::at(
            0,
            h,
            ErrorKind::BadMagic { found: magic },
        ));
    }
    let version = r.u32("version", h)?;
    let version = match version {
        VERSION_2005 => Version::V2005,
        VERSION_2011 => Version::V2011,
        found => {
            return Err(TemplateError::at(
                4,
                h,
                ErrorKind::UnsupportedVersion { found },
            ))
        }
    };
    let length = r.u32("record length", h)?;
    let mut warnings = Vec::new();
    let body = if u64::from(length) == bytes.len() as u64 {
        bytes
    } else {
        if version == Version::V2005 {
            if let Some(declared) = ansi_378_length(bytes) {
                return Err(TemplateError::at(
                    8,
                    h,
                    ErrorKind::AnsiRecord {
                        declared_length: declared as u64,
                    },
                ));
            }
        }
        let declared = usize::try_from(length).unwrap_or(usize::MAX);
        let tail = bytes.get(declared..).filter(|_| declared >= 12);
        let first_nonzero = tail.map(|t| t.iter().position(|b| *b != 0));
        match first_nonzero {
            Some(None) if lenient => {
                warnings.push(ParseWarning::ZeroPadding {
                    offset: declared,
                    count: bytes.len() - declared,
                });
                bytes.get(..declared).unwrap_or(bytes)
            }
            Some(nonzero) => {
                let why = match nonzero {
                    Some(i) => format!(
                        "the record is {} bytes long and byte {} after the declared end is not zero padding",
                        bytes.len(),
                        declared + i
                    ),
                    None => format!(
                        "the record is {} bytes long ({} bytes of zero padding follow the declared end)",
                        bytes.len(),
                        bytes.len() - declared
                    ),
                };
                return Err(TemplateError::at(
                    8,
                    h,
                    ErrorKind::LengthMismatch {
                        field: "record length",
                        found: u64::from(length),
                        expected: why,
                    },
                ));
            }
            None => {
                return Err(TemplateError::at(
                    8,
                    h,
                    ErrorKind::LengthMismatch {
                        field: "record length",
                        found: u64::from(length),
                        expected: format!("the record is {} bytes long", bytes.len()),
                    },
                ))
            }
        }
    };
    let mut r = Reader {
        bytes: body,
        pos: r.pos,
        lenient,
        warnings,
    };
    let record = match version {
        Version::V2005 => parse_2005_body(&mut r)?,
        Version::V2011 => parse_2011_body(&mut r)?,
    };
    if r.remaining() != 0 {
        return Err(TemplateError::at(
            r.pos,
            h,
            ErrorKind::TrailingBytes {
                count: r.remaining(),
            },
        ));
    }
    Ok(Parsed {
        record,
        warnings: r.warnings,
    })
}

/// The declared length of `bytes` read as an ANSI/INCITS 378-2004 record,
/// when its whole structure fits that layout: record length in 2 bytes (or
/// 2 zero bytes and 4 bytes), CBEFF product identifier (4), capture
/// equipment (2), width, height, x and y resolution (2 each), number of
/// views (1, at least one), reserved (1, zero); then per view a 4-byte
/// header, 6 bytes per minutia and an extended data area whose length comes
/// first, the views ending exactly at the declared length, followed by
/// nothing or zero padding.
fn ansi_378_length(bytes: &[u8]) -> Option<usize> {
    let be16 = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at + 2)?;
        Some(usize::from(u16::from_be_bytes([*b.first()?, *b.get(1)?])))
    };
    let (declared, header) = match be16(8)? {
        0 => {
            let b = bytes.get(10..14)?;
            let mut n = 0usize;
            for x in b {
                n = (n << 8) | usize::from(*x);
            }
            (n, 30)
        }
        n => (n, 26),
    };
    let tail = bytes.get(declared..)?;
    if declared < header || tail.iter().any(|b| *b != 0) {
        return None;
    }
    let views = usize::from(*bytes.get(header - 2)?);
    if views == 0 || *bytes.get(header - 1)? != 0 {
        return None;
    }
    let mut pos = header;
    for _ in 0..views {
        let minutiae = usize::from(*bytes.get(pos + 3)?);
        pos += 4 + 6 * minutiae;
        let ext = be16(pos)?;
        pos += 2 + ext;
        if pos > declared {
            return None;
        }
    }
    (pos == declared).then_some(declared)
}

fn check_resolution(offset: usize, loc: Location, field: &'static str, v: u16) -> Result<()> {
    if v == 0 {
        return Err(out_of_range(
            offset,
            loc,
            field,
            v,
            "a non-zero pixels/cm value",
        ));
    }
    Ok(())
}

fn check_size(offset: usize, loc: Location, field: &'static str, v: u16) -> Result<()> {
    if v == 0 || v > 0x3fff {
        return Err(out_of_range(offset, loc, field, v, "1..=16383 pixels"));
    }
    Ok(())
}

fn parse_2005_body(r: &mut Reader<'_>) -> Result<FingerRecord> {
    let h = Location::Header;
    let equipment = r.u16("capture equipment", h)?;
    let width_at = r.pos;
    let width = r.u16("image width", h)?;
    check_size(width_at, h, "image width", width)?;
    let height_at = r.pos;
    let height = r.u16("image height", h)?;
    check_size(height_at, h, "image height", height)?;
    let rx_at = r.pos;
    let resolution_x = r.u16("x resolution", h)?;
    check_resolution(rx_at, h, "x resolution", resolution_x)?;
    let ry_at = r.pos;
    let resolution_y = r.u16("y resolution", h)?;
    check_resolution(ry_at, h, "y resolution", resolution_y)?;
    let count_at = r.pos;
    let view_count = r.u8("number of finger views", h)?;
    if view_count == 0 {
        return Err(out_of_range(
            count_at,
            h,
            "number of finger views",
            view_count,
            "at least 1",
        ));
    }
    let reserved_at = r.pos;
    let reserved = r.u8("reserved byte", h)?;
    if reserved != 0 {
        return Err(TemplateError::at(
            reserved_at,
            h,
            ErrorKind::Reserved {
                field: "header reserved byte",
                found: u64::from(reserved),
            },
        ));
    }
    let mut views = Vec::with_capacity(usize::from(view_count));
    for v in 1..=usize::from(view_count) {
        let loc = Location::View { view: v };
        if r.remaining() == 0 {
            return Err(TemplateError::at(
                r.pos,
                h,
                ErrorKind::LengthMismatch {
                    field: "number of finger views",
                    found: u64::from(view_count),
                    expected: format!("the record ends after {} views", v - 1),
                },
            ));
        }
        let pos_at = r.pos;
        let position = r.u8("finger position", loc)?;
        let position = FingerPosition::from_code(position)
            .ok_or_else(|| out_of_range(pos_at, loc, "finger position", position, "0..=10"))?;
        let vi_at = r.pos;
        let vi = r.u8("view number and impression type", loc)?;
        let view_number = vi >> 4;
        let impression_type = ImpressionType::from_code(vi & 0x0f, Version::V2005)
            .ok_or_else(|| out_of_range(vi_at, loc, "impression type", vi & 0x0f, "0..=3 or 8"))?;
        let q_at = r.pos;
        let quality = r.u8("finger quality", loc)?;
        if quality > 100 {
            return Err(out_of_range(
                q_at,
                loc,
                "finger quality",
                quality,
                "0..=100",
            ));
        }
        let minutiae = parse_minutiae(r, v, width, height, Version::V2005, true)?;
        let (extended_data_len, extended_data) = parse_extended(r, v)?;
        views.push(FingerView {
            position,
            view_number,
            impression_type,
            quality,
            minutiae,
            extended_data_len,
            extended_data,
            capture_2011: None,
        });
    }
    Ok(FingerRecord {
        version: Version::V2005,
        capture_equipment_compliance: (equipment >> 12) as u8,
        capture_equipment_id: equipment & 0x0fff,
        width,
        height,
        resolution_x,
        resolution_y,
        certification_flag: false,
        views,
    })
}

fn parse_minutiae(
    r: &mut Reader<'_>,
    view: usize,
    width: u16,
    height: u16,
    version: Version,
    with_quality: bool,
) -> Result<Vec<Minutia>> {
    let vloc = Location::View { view };
    let count_at = r.pos;
    let count = r.u8("number of minutiae", vloc)?;
    if count == 0 {
        return Err(out_of_range(
            count_at,
            vloc,
            "number of minutiae",
            count,
            "at least 1",
        ));
    }
    let size = if with_quality { 6 } else { 5 };
    let needed = usize::from(count) * size;
    if r.remaining() < needed {
        return Err(TemplateError::at(
            count_at,
            vloc,
            ErrorKind::LengthMismatch {
                field: "number of minutiae",
                found: u64::from(count),
                expected: format!(
                    "only {} bytes remain, room for {} minutiae of {size} bytes",
                    r.remaining(),
                    r.remaining() / size
                ),
            },
        ));
    }
    let mut minutiae = Vec::with_capacity(usize::from(count));
    for m in 1..=usize::from(count) {
        let loc = Location::Minutia { view, minutia: m };
        let x_at = r.pos;
        let tx = r.u16("minutia type and x", loc)?;
        let y_at = r.pos;
        let ry = r.u16("minutia y", loc)?;
        let angle = r.u8("minutia angle", loc)?;
        let q_at = r.pos;
        let quality = if with_quality {
            r.u8("minutia quality", loc)?
        } else {
            254
        };
        let kind = MinutiaKind::from_code((tx >> 14) as u8).ok_or_else(|| {
            out_of_range(
                x_at,
                loc,
                "minutia type",
                tx >> 14,
                "0 (other), 1 (ending) or 2 (bifurcation)",
            )
        })?;
        let x = tx & 0x3fff;
        if ry >> 14 != 0 {
            return Err(TemplateError::at(
                y_at,
                loc,
                ErrorKind::Reserved {
                    field: "minutia y",
                    found: u64::from(ry >> 14),
                },
            ));
        }
        let y = ry & 0x3fff;
        if x >= width {
            return Err(TemplateError::at(
                x_at,
                loc,
                ErrorKind::OutsideImage {
                    axis: "x",
                    found: u64::from(x),
                    dimension: "width",
                    limit: u64::from(width),
                },
            ));
        }
        if y >= height {
            return Err(TemplateError::at(
                y_at,
                loc,
                ErrorKind::OutsideImage {
                    axis: "y",
                    found: u64::from(y),
                    dimension: "height",
                    limit: u64::from(height),
                },
            ));
        }
        let quality_ok = match version {
            Version::V2005 => quality <= 100,
            Version::V2011 => quality <= 100 || quality >= 254,
        };
        if !quality_ok {
            let expected = match version {
                Version::V2005 => "0..=100",
                Version::V2011 => "0..=100, 254 or 255",
            };
            return Err(out_of_range(
                q_at,
                loc,
                "minutia quality",
                quality,
                expected,
            ));
        }
        // Every angle byte is valid: 256 steps of 360/256 degrees.
        minutiae.push(Minutia {
            kind,
            x,
            y,
            angle,
            quality,
        });
    }
    Ok(minutiae)
}

fn parse_extended(r: &mut Reader<'_>, view: usize) -> Result<(u16, Vec<ExtendedDataBlock>)> {
    let vloc = Location::View { view };
    let len_at = r.pos;
    let total = r.u16("extended data block length", vloc)?;
    if usize::from(total) > r.remaining() {
        return Err(TemplateError::at(
            len_at,
            vloc,
            ErrorKind::LengthMismatch {
                field: "extended data block length",
                found: u64::from(total),
                expected: format!("only {} bytes remain in the record", r.remaining()),
            },
        ));
    }
    let end = r.pos + usize::from(total);
    let start = r.pos;
    let standard = read_blocks(r, view, total, end, true);
    let e = match standard {
        Ok(blocks) => return Ok((total, blocks)),
        Err(e) => e,
    };
    // Some writers count only the data in a block's length. Read that way
    // too; if the area then adds up exactly, say so (lenient: a warning;
    // strict: an error that names the convention).
    let mut trial = Reader {
        bytes: r.bytes,
        pos: start,
        lenient: r.lenient,
        warnings: Vec::new(),
    };
    match read_blocks(&mut trial, view, total, end, false) {
        Ok(blocks) if r.lenient => {
            r.pos = trial.pos;
            r.warnings.push(ParseWarning::DataOnlyBlockLengths {
                view,
                offset: len_at,
            });
            Ok((total, blocks))
        }
        Ok(_) => {
            let first = r.bytes.get(start + 2..start + 4).map_or(0, |b| {
                b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x))
            });
            Err(TemplateError::at(
                start + 2,
                Location::Extension { view, block: 1 },
                ErrorKind::LengthMismatch {
                    field: "extended data length",
                    found: first,
                    expected: "a block length that counts the block's 4-byte type and length header too (ISO/IEC 19794-2 §7.5); this view's block lengths count only the data".into(),
                },
            ))
        }
        Err(_) => Err(e),
    }
}

/// The extended data blocks from `r.pos` to `end`; a block's length counts
/// its 4-byte header when `header_included` (the standard), else only its data.
fn read_blocks(
    r: &mut Reader<'_>,
    view: usize,
    total: u16,
    end: usize,
    header_included: bool,
) -> Result<Vec<ExtendedDataBlock>> {
    let mut blocks = Vec::new();
    let mut n = 0;
    while r.pos < end {
        n += 1;
        let loc = Location::Extension { view, block: n };
        let left = end - r.pos;
        if left < 4 {
            return Err(TemplateError::at(
                r.pos,
                loc,
                ErrorKind::LengthMismatch {
                    field: "extended data block length",
                    found: u64::from(total),
                    expected: format!("{left} bytes left over cannot hold a 4-byte block header"),
                },
            ));
        }
        let type_at = r.pos;
        let type_code = r.u16("extended data type", loc)?;
        let reserved =
            type_code == 0 || type_code & 0x00ff == 0 || (type_code >> 8 == 0 && type_code > 2);
        if reserved {
            return Err(out_of_range(
                type_at,
                loc,
                "extended data type",
                type_code,
                "1 (ridge counts), 2 (core and delta) or a vendor code 0x0101..=0xffff with a non-zero low byte",
            ));
        }
        let dlen_at = r.pos;
        let field = r.u16("extended data length", loc)?;
        // Both editions count the whole block, its 4-byte header included.
        let dlen = if header_included {
            field.checked_sub(4)
        } else {
            Some(field)
        };
        let dlen = dlen.ok_or_else(|| {
            out_of_range(
                dlen_at,
                loc,
                "extended data length",
                field,
                "at least 4 (the length counts the block's 4-byte type and length header)",
            )
        })?;
        if usize::from(dlen) > end - r.pos {
            return Err(TemplateError::at(
                dlen_at,
                loc,
                ErrorKind::LengthMismatch {
                    field: "extended data length",
                    found: u64::from(field),
                    expected: format!(
                        "the block (header included) is longer than the {} bytes left in the view's extended data",
                        end - r.pos + 4
                    ),
                },
            ));
        }
        let data = r.take(usize::from(dlen), "extended data", loc)?.to_vec();
        blocks.push(ExtendedDataBlock { type_code, data });
    }
    Ok(blocks)
}

fn parse_2011_body(r: &mut Reader<'_>) -> Result<FingerRecord> {
    let h = Location::Header;
    let count_at = r.pos;
    let rep_count = r.u16("number of finger representations", h)?;
    if rep_count == 0 {
        return Err(out_of_range(
            count_at,
            h,
            "number of finger representations",
            rep_count,
            "at least 1",
        ));
    }
    let flag_at = r.pos;
    let flag = r.u8("certification flag", h)?;
    if flag > 1 {
        return Err(out_of_range(
            flag_at,
            h,
            "certification flag",
            flag,
            "0 or 1",
        ));
    }
    let mut views = Vec::with_capacity(usize::from(rep_count).min(64));
    let mut geometry: Option<(u16, u16, u16, u16)> = None;
    for v in 1..=usize::from(rep_count) {
        views.push(parse_2011_representation(
            r,
            v,
            rep_count,
            flag,
            &mut geometry,
        )?);
    }
    let (width, height, resolution_x, resolution_y) = geometry.unwrap_or((0, 0, 0, 0));
    Ok(FingerRecord {
        version: Version::V2011,
        capture_equipment_compliance: 0,
        capture_equipment_id: 0,
        width,
        height,
        resolution_x,
        resolution_y,
        certification_flag: flag == 1,
        views,
    })
}

/// One representation of a 2011 record, `v` of `rep_count` (1-based). The
/// first one sets the record's image size and resolutions; the others must
/// repeat them.
fn parse_2011_representation(
    r: &mut Reader<'_>,
    v: usize,
    rep_count: u16,
    flag: u8,
    geometry: &mut Option<(u16, u16, u16, u16)>,
) -> Result<FingerView> {
    let h = Location::Header;
    let loc = Location::View { view: v };
    if r.remaining() == 0 {
        return Err(TemplateError::at(
            r.pos,
            h,
            ErrorKind::LengthMismatch {
                field: "number of finger representations",
                found: u64::from(rep_count),
                expected: format!("the record ends after {} representations", v - 1),
            },
        ));
    }
    let start = r.pos;
    let rep_len = r.u32("representation length", loc)?;
    let max_len = r.remaining() + 4;
    if rep_len as usize > max_len || rep_len < 4 {
        return Err(TemplateError::at(
            start,
            loc,
            ErrorKind::LengthMismatch {
                field: "representation length",
                found: u64::from(rep_len),
                expected: format!("4..={max_len} bytes (what remains of the record)"),
            },
        ));
    }
    let capture = parse_2011_capture(r, loc, flag)?;
    let pos_at = r.pos;
    let position = r.u8("finger position", loc)?;
    let position = FingerPosition::from_code(position)
        .ok_or_else(|| out_of_range(pos_at, loc, "finger position", position, "0..=10"))?;
    let vn_at = r.pos;
    let view_number = r.u8("representation number", loc)?;
    if view_number > 15 {
        return Err(out_of_range(
            vn_at,
            loc,
            "representation number",
            view_number,
            "0..=15",
        ));
    }
    let rx_at = r.pos;
    let resolution_x = r.u16("x resolution", loc)?;
    check_resolution(rx_at, loc, "x resolution", resolution_x)?;
    let ry_at = r.pos;
    let resolution_y = r.u16("y resolution", loc)?;
    check_resolution(ry_at, loc, "y resolution", resolution_y)?;
    let it_at = r.pos;
    let it = r.u8("impression type", loc)?;
    let impression_type = ImpressionType::from_code(it, Version::V2011)
        .ok_or_else(|| out_of_range(it_at, loc, "impression type", it, "0..=9, 24, 28 or 29"))?;
    let w_at = r.pos;
    let width = r.u16("image width", loc)?;
    check_size(w_at, loc, "image width", width)?;
    let h_at = r.pos;
    let height = r.u16("image height", loc)?;
    check_size(h_at, loc, "image height", height)?;
    let this = (width, height, resolution_x, resolution_y);
    match *geometry {
        None => *geometry = Some(this),
        Some(g) if g != this => {
            return Err(TemplateError::at(
                rx_at,
                loc,
                ErrorKind::Unsupported {
                    what: "2011 representations with different image sizes or resolutions",
                },
            ))
        }
        Some(_) => {}
    }
    let (size, ending_type) = parse_2011_minutia_format(r, loc)?;
    let minutiae = parse_minutiae(r, v, width, height, Version::V2011, size == 6)?;
    let (extended_data_len, extended_data) = parse_extended(r, v)?;
    let consumed = r.pos - start;
    if consumed != rep_len as usize {
        return Err(TemplateError::at(
            start,
            loc,
            ErrorKind::LengthMismatch {
                field: "representation length",
                found: u64::from(rep_len),
                expected: format!("the representation's fields take {consumed} bytes"),
            },
        ));
    }
    let quality = capture.quality_blocks.first().map_or(254, |q| q.score);
    Ok(FingerView {
        position,
        view_number,
        impression_type,
        quality,
        minutiae,
        extended_data_len,
        extended_data,
        capture_2011: Some(Capture2011 {
            ending_type,
            minutia_quality_present: size == 6,
            ..capture
        }),
    })
}

/// The 2011 representation's minutia record size (5 or 6 bytes) and ridge
/// ending type (0 or 1), from their shared byte.
fn parse_2011_minutia_format(r: &mut Reader<'_>, loc: Location) -> Result<(u8, u8)> {
    let f_at = r.pos;
    let fields = r.u8("minutia size and ending type", loc)?;
    let size = fields >> 4;
    if size != 5 && size != 6 {
        return Err(out_of_range(
            f_at,
            loc,
            "minutia record size",
            size,
            "5 or 6",
        ));
    }
    let ending_type = fields & 0x0f;
    if ending_type > 1 {
        return Err(out_of_range(
            f_at,
            loc,
            "ridge ending type",
            ending_type,
            "0 or 1",
        ));
    }
    Ok((size, ending_type))
}

/// What a 2011 representation says about its capture: date and time,
/// device, quality blocks and (with the certification flag) certification
/// blocks. The ending type and minutia size come later in the
/// representation; the caller fills them in.
fn parse_2011_capture(r: &mut Reader<'_>, loc: Location, flag: u8) -> Result<Capture2011> {
    let datetime = CaptureDateTime {
        year: r.u16("capture year", loc)?,
        month: r.u8("capture month", loc)?,
        day: r.u8("capture day", loc)?,
        hour: r.u8("capture hour", loc)?,
        minute: r.u8("capture minute", loc)?,
        second: r.u8("capture second", loc)?,
        millisecond: r.u16("capture millisecond", loc)?,
    };
    let device_technology = r.u8("capture device technology", loc)?;
    let device_vendor = r.u16("capture device vendor", loc)?;
    let device_type = r.u16("capture device type", loc)?;
    let nq = r.u8("number of quality blocks", loc)?;
    let mut quality_blocks = Vec::with_capacity(usize::from(nq));
    for _ in 0..nq {
        let q_at = r.pos;
        let score = r.u8("quality score", loc)?;
        if score > 100 && score != 255 {
            return Err(out_of_range(
                q_at,
                loc,
                "quality score",
                score,
                "0..=100 or 255",
            ));
        }
        quality_blocks.push(QualityBlock {
            score,
            vendor: r.u16("quality algorithm vendor", loc)?,
            algorithm: r.u16("quality algorithm", loc)?,
        });
    }
    let mut certifications = Vec::new();
    if flag == 1 {
        let nc = r.u8("number of certification blocks", loc)?;
        for _ in 0..nc {
            certifications.push(CertificationBlock {
                authority: r.u16("certification authority", loc)?,
                scheme: r.u8("certification scheme", loc)?,
            });
        }
    }
    Ok(Capture2011 {
        datetime,
        device_technology,
        device_vendor,
        device_type,
        quality_blocks,
        certifications,
        ending_type: 0,
        minutia_quality_present: false,
    })
}
