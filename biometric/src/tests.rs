#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use proptest::prelude::*;
use serde_json::Value;
use std::path::PathBuf;

/// Test data: `CARDSMITH_TESTDATA`, then the copy kept in the repository
/// (`tests/data` at the workspace root, so a fresh clone has it), then
/// `<workspace>/../shared/testdata`.
fn testdata_dir() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("CARDSMITH_TESTDATA") {
        candidates.push(PathBuf::from(dir));
    }
    candidates.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data"));
    candidates.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"));
    candidates
        .iter()
        .find(|d| d.join("fingerprints").is_dir())
        .cloned()
        .unwrap_or_else(|| panic!("fingerprint test data not found in any of {candidates:?}"))
}

fn sample(name: &str) -> (Vec<u8>, Value) {
    let dir = testdata_dir().join("fingerprints");
    let dat = std::fs::read(dir.join(format!("{name}.dat"))).unwrap();
    let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
    (dat, serde_json::from_str(&json).unwrap())
}

fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64"),
        }
    };
    let clean: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c) << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn upper<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .unwrap()
        .as_str()
        .unwrap()
        .to_uppercase()
}

fn int(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn check_minutiae(view: &FingerView, json: &Value) {
    let jm = json["minutiae"].as_array().unwrap();
    assert_eq!(view.minutiae.len(), jm.len());
    for (m, j) in view.minutiae.iter().zip(jm) {
        assert_eq!(upper(&m.kind), j["type"].as_str().unwrap());
        assert_eq!(u64::from(m.x), int(&j["positionX"]));
        assert_eq!(u64::from(m.y), int(&j["positionY"]));
        assert_eq!(u64::from(m.angle), int(&j["angle"]));
        assert_eq!(u64::from(m.quality), int(&j["quality"]));
    }
}

fn check_extensions(view: &FingerView, json: &Value) {
    let je = json["extensions"].as_array().unwrap();
    assert_eq!(view.extended_data.len(), je.len());
    for (b, j) in view.extended_data.iter().zip(je) {
        assert_eq!(u64::from(b.type_code), int(&j["type"]));
        assert_eq!(b.data, base64(j["data"].as_str().unwrap()));
    }
    assert_eq!(
        usize::from(view.extended_data_len),
        view.computed_extended_data_len()
    );
}

#[test]
fn sample_2005_matches_json() {
    let (dat, json) = sample("iso19794-2-2005-sample");
    // The sample's one extended data block (view 2, vendor type 0x0221, 6
    // data bytes) has the length 6: the data only. ISO/IEC 19794-2:2005
    // counts the 4-byte block header too, so the strict parser refuses it
    // and names the convention; the lenient one reads it with a warning.
    let strict = parse(&dat).unwrap_err();
    assert_eq!(strict.offset, Some(332));
    assert_eq!(strict.location, Location::Extension { view: 2, block: 1 });
    assert!(
        strict.to_string().contains("count only the data"),
        "{strict}"
    );
    let parsed = parse_with_warnings(&dat).unwrap();
    assert_eq!(
        parsed.warnings,
        vec![ParseWarning::DataOnlyBlockLengths {
            view: 2,
            offset: 328
        }]
    );
    let r = parsed.record;
    assert_eq!(r.version, Version::V2005);
    assert_eq!(u64::from(r.width), int(&json["width"]));
    assert_eq!(u64::from(r.height), int(&json["height"]));
    assert_eq!(u64::from(r.resolution_x), int(&json["resolutionX"]));
    assert_eq!(u64::from(r.resolution_y), int(&json["resolutionY"]));
    assert_eq!(u64::from(r.capture_equipment_id), int(&json["sensorId"]));
    assert_eq!(
        r.capture_equipment_compliance != 0,
        json["sensorCertified"].as_bool().unwrap()
    );
    let jf = json["fingerprints"].as_array().unwrap();
    assert_eq!(r.views.len(), jf.len());
    for (v, j) in r.views.iter().zip(jf) {
        assert_eq!(
            v.position.name().to_uppercase(),
            j["position"].as_str().unwrap()
        );
        assert_eq!(u64::from(v.view_number), int(&j["view"]));
        assert_eq!(upper(&v.impression_type), j["scanType"].as_str().unwrap());
        assert_eq!(u64::from(v.quality), int(&j["quality"]));
        assert!(v.capture_2011.is_none());
        check_minutiae(v, j);
        check_extensions(v, j);
    }
    assert_eq!(r.views[0].minutiae.len(), 27);
    assert_eq!(r.views[1].minutiae.len(), 22);
    // The encoder writes the standard's block length (4 + 6 = 10); apart
    // from that byte the file is reproduced, and the result parses strictly.
    let again = encode_2005(&r).unwrap();
    assert_eq!(again.len(), dat.len());
    assert_eq!((dat[333], again[333]), (6, 10));
    let differing: Vec<usize> = (0..dat.len()).filter(|&i| dat[i] != again[i]).collect();
    assert_eq!(differing, vec![333]);
    assert_eq!(parse(&again).unwrap(), r);
}

#[test]
fn sample_2011_matches_json() {
    let (dat, json) = sample("iso19794-2-2011-sample");
    let r = parse(&dat).unwrap();
    assert_eq!(r.version, Version::V2011);
    let jf = json["fingerprints"].as_array().unwrap();
    assert_eq!(r.views.len(), jf.len());
    for (v, j) in r.views.iter().zip(jf) {
        let c = v.capture_2011.as_ref().unwrap();
        let dt = &j["datetime"];
        assert_eq!(u64::from(c.datetime.year), int(&dt["year"]));
        assert_eq!(u64::from(c.datetime.month), int(&dt["month"]));
        assert_eq!(u64::from(c.datetime.day), int(&dt["day"]));
        assert_eq!(u64::from(c.datetime.hour), int(&dt["hour"]));
        assert_eq!(u64::from(c.datetime.minute), int(&dt["minute"]));
        assert_eq!(u64::from(c.datetime.second), int(&dt["second"]));
        assert_eq!(u64::from(c.datetime.millisecond), int(&dt["millisecond"]));
        assert_eq!(j["sensorType"], "UNKNOWN");
        assert_eq!(c.device_technology, 0);
        assert_eq!(u64::from(c.device_vendor), int(&j["sensorVendor"]));
        assert_eq!(u64::from(c.device_type), int(&j["sensorId"]));
        let jq = j["qrecords"].as_array().unwrap();
        assert_eq!(c.quality_blocks.len(), jq.len());
        for (q, jq) in c.quality_blocks.iter().zip(jq) {
            assert_eq!(u64::from(q.score), int(&jq["quality"]));
            assert_eq!(u64::from(q.vendor), int(&jq["vendor"]));
            assert_eq!(u64::from(q.algorithm), int(&jq["algorithm"]));
        }
        assert_eq!(
            c.certifications.len(),
            j["certificates"].as_array().unwrap().len()
        );
        assert_eq!(
            v.position.name().to_uppercase(),
            j["position"].as_str().unwrap()
        );
        assert_eq!(u64::from(v.view_number), int(&j["view"]));
        assert_eq!(u64::from(r.resolution_x), int(&j["resolutionX"]));
        assert_eq!(u64::from(r.resolution_y), int(&j["resolutionY"]));
        assert_eq!(upper(&v.impression_type), j["scanType"].as_str().unwrap());
        assert_eq!(u64::from(r.width), int(&j["width"]));
        assert_eq!(u64::from(r.height), int(&j["height"]));
        let ending =
            ["VALLEY_SKELETON_BIFURCATION", "RIDGE_SKELETON_ENDPOINT"][usize::from(c.ending_type)];
        assert_eq!(ending, j["endingType"].as_str().unwrap());
        assert!(j["counts"].is_null() && j["coredelta"].is_null() && j["zones"].is_null());
        check_minutiae(v, j);
        check_extensions(v, j);
    }
    // Both editions of the sample hold the same minutiae.
    let (dat05, _) = sample("iso19794-2-2005-sample");
    let r05 = parse_with_warnings(&dat05).unwrap().record;
    for (a, b) in r.views.iter().zip(&r05.views) {
        assert_eq!(a.minutiae, b.minutiae);
    }
    assert!(encode_2005(&r).is_err());
}

// ---------------------------------------------------------------------------
// Hand-made malformed records, one per rule.

/// A valid 2005 record: 512×512 at 197 px/cm, one view with two minutiae.
fn minimal() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"FMR\0 20\0");
    b.extend_from_slice(&42u32.to_be_bytes());
    b.extend_from_slice(&[
        0x00, 0xb5, 0x02, 0x00, 0x02, 0x00, 0x00, 0xc5, 0x00, 0xc5, 0x01, 0x00,
    ]);
    b.extend_from_slice(&[0x07, 0x00, 0x5a, 0x02]); // left index, view 0 live plain, quality 90, 2 minutiae
    b.extend_from_slice(&[0x40, 0x64, 0x00, 0x0e, 0x50, 0x5a]); // ending (100, 14) angle 80 q 90
    b.extend_from_slice(&[0x80, 0x37, 0x00, 0x12, 0x10, 0x5a]); // bifurcation (55, 18)
    b.extend_from_slice(&[0x00, 0x00]);
    assert_eq!(b.len(), 42);
    b
}

fn fix_len(mut b: Vec<u8>) -> Vec<u8> {
    let n = (b.len() as u32).to_be_bytes();
    b[8..12].copy_from_slice(&n);
    b
}

fn err(b: &[u8]) -> TemplateError {
    parse(b).expect_err("record should be rejected")
}

#[test]
fn minimal_record_is_valid() {
    let r = parse(&minimal()).unwrap();
    assert_eq!(r.views[0].minutiae.len(), 2);
    assert_eq!(r.views[0].position, FingerPosition::LeftIndex);
    assert_eq!(encode_2005(&r).unwrap(), minimal());
}

#[test]
fn rejects_bad_magic_and_version() {
    let mut b = minimal();
    b[0] = b'X';
    let e = err(&b);
    assert!(matches!(e.kind, ErrorKind::BadMagic { .. }));
    assert_eq!(e.offset, Some(0));
    let mut b = minimal();
    b[5] = b'3';
    let e = err(&b);
    assert!(matches!(e.kind, ErrorKind::UnsupportedVersion { .. }));
    assert_eq!(e.offset, Some(4));
    assert!(matches!(err(&[]).kind, ErrorKind::Truncated { .. }));
    assert!(matches!(err(b"FMR").kind, ErrorKind::Truncated { .. }));
}

#[test]
fn rejects_record_length_mismatch() {
    let mut b = minimal();
    b[11] = 43;
    let e = err(&b);
    assert_eq!(e.offset, Some(8));
    assert_eq!(
        e.to_string(),
        "byte 8: header: record length = 43, but the record is 42 bytes long"
    );
}

#[test]
fn rejects_view_count_mismatch() {
    let mut b = minimal();
    b[22] = 2;
    let e = err(&b);
    assert!(
        matches!(
            e.kind,
            ErrorKind::LengthMismatch {
                field: "number of finger views",
                ..
            }
        ),
        "{e}"
    );
    let mut b = minimal();
    b[22] = 0;
    assert!(matches!(
        err(&b).kind,
        ErrorKind::OutOfRange {
            field: "number of finger views",
            ..
        }
    ));
}

#[test]
fn rejects_minutia_count_mismatch() {
    let mut b = minimal();
    b[27] = 3;
    let e = err(&b);
    assert_eq!(e.offset, Some(27));
    assert!(
        matches!(
            e.kind,
            ErrorKind::LengthMismatch {
                field: "number of minutiae",
                ..
            }
        ),
        "{e}"
    );
    // One minutia fewer than present: the leftover bytes are misread as the
    // extended data length and overrun the record.
    let mut b = minimal();
    b[27] = 1;
    assert!(parse(&b).is_err());
    let mut b = minimal();
    b[27] = 0;
    assert!(matches!(
        err(&b).kind,
        ErrorKind::OutOfRange {
            field: "number of minutiae",
            ..
        }
    ));
}

#[test]
fn rejects_extended_data_that_does_not_fit() {
    let mut b = minimal();
    b[41] = 1;
    let e = err(&b);
    assert_eq!(e.offset, Some(40));
    assert!(matches!(
        e.kind,
        ErrorKind::LengthMismatch {
            field: "extended data block length",
            ..
        }
    ));
    // A block whose own length overruns the area.
    let mut b = minimal();
    b.truncate(40);
    b.extend_from_slice(&[0x00, 0x06, 0x01, 0x01, 0x00, 0x07, 0xaa, 0xbb]);
    let e = err(&fix_len(b));
    assert!(
        matches!(
            e.kind,
            ErrorKind::LengthMismatch {
                field: "extended data length",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.location, Location::Extension { view: 1, block: 1 });
    // An area too short for a block header.
    let mut b = minimal();
    b.truncate(40);
    b.extend_from_slice(&[0x00, 0x02, 0x01, 0x01]);
    assert!(matches!(
        err(&fix_len(b)).kind,
        ErrorKind::LengthMismatch { .. }
    ));
    // A reserved block type.
    let mut b = minimal();
    b.truncate(40);
    b.extend_from_slice(&[0x00, 0x05, 0x00, 0x07, 0x00, 0x05, 0xaa]);
    assert!(matches!(
        err(&fix_len(b)).kind,
        ErrorKind::OutOfRange {
            field: "extended data type",
            ..
        }
    ));
    // A valid vendor block parses and round-trips.
    let mut b = minimal();
    b.truncate(40);
    b.extend_from_slice(&[0x00, 0x05, 0x01, 0x01, 0x00, 0x05, 0xaa]);
    let b = fix_len(b);
    let r = parse(&b).unwrap();
    assert_eq!(r.views[0].extended_data_len, 5);
    assert_eq!(encode_2005(&r).unwrap(), b);
}

#[test]
fn rejects_coordinates_outside_image() {
    let mut b = minimal();
    b[28..30].copy_from_slice(&(0x4000u16 | 600).to_be_bytes());
    let e = err(&b);
    assert_eq!(
        e.to_string(),
        "byte 28: view 1 minutia 1: x = 600 is outside the image width 512"
    );
    let mut b = minimal();
    b[36..38].copy_from_slice(&512u16.to_be_bytes());
    let e = err(&b);
    assert_eq!(e.offset, Some(36));
    assert_eq!(
        e.location,
        Location::Minutia {
            view: 1,
            minutia: 2
        }
    );
    assert!(matches!(
        e.kind,
        ErrorKind::OutsideImage {
            axis: "y",
            found: 512,
            ..
        }
    ));
}

#[test]
fn rejects_reserved_and_out_of_range_fields() {
    let cases: [(usize, u8, &str); 8] = [
        (23, 1, "header reserved byte"),
        (24, 11, "finger position"),
        (25, 0x04, "impression type"),
        (26, 101, "finger quality"),
        (28, 0xc0, "minutia type"),
        (30, 0x40, "minutia y"),
        (33, 101, "minutia quality"),
        (39, 200, "minutia quality"),
    ];
    for (at, value, field) in cases {
        let mut b = minimal();
        b[at] = value;
        let e = err(&b);
        let f = match &e.kind {
            ErrorKind::OutOfRange { field, .. } | ErrorKind::Reserved { field, .. } => *field,
            other => panic!("byte {at}: unexpected {other:?}"),
        };
        assert!(f.contains(field), "byte {at}: {e}");
    }
    // Swipe (8) is a valid 2005 impression type; view number uses the high nibble.
    let mut b = minimal();
    b[25] = 0x38;
    let r = parse(&b).unwrap();
    assert_eq!(r.views[0].view_number, 3);
    assert_eq!(r.views[0].impression_type, ImpressionType::Swipe);
}

#[test]
fn rejects_zero_resolution_and_size() {
    for (at, field) in [
        (18, "x resolution"),
        (20, "y resolution"),
        (14, "image width"),
        (16, "image height"),
    ] {
        let mut b = minimal();
        b[at] = 0;
        b[at + 1] = 0;
        let e = err(&b);
        assert_eq!(e.offset, Some(at));
        assert!(
            matches!(e.kind, ErrorKind::OutOfRange { field: f, .. } if f == field),
            "{e}"
        );
    }
}

// ---------------------------------------------------------------------------
// Extended data blocks as the standard lays them out (ISO/IEC 19794-2:2005
// §7.5): the view's extended data block length, then blocks of type (2),
// length (2) counting the whole block with its 4-byte header, and data.

/// `minimal()` with the given extended data blocks on its view.
fn with_blocks(blocks: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = minimal();
    b.truncate(40);
    let total: usize = blocks.iter().map(|(_, d)| 4 + d.len()).sum();
    b.extend_from_slice(&(total as u16).to_be_bytes());
    for (ty, data) in blocks {
        b.extend_from_slice(&ty.to_be_bytes());
        b.extend_from_slice(&((4 + data.len()) as u16).to_be_bytes());
        b.extend_from_slice(data);
    }
    fix_len(b)
}

/// Ridge count data (type 0x0001, §7.5.2): extraction method (1 = four
/// neighbours), then (index 1, index 2, count) per ridge count.
fn ridge_counts() -> (u16, Vec<u8>) {
    (0x0001, vec![0x01, 0x01, 0x02, 0x05])
}

/// Core and delta data (type 0x0002, §7.5.3): core information type 01
/// (with angle) and one core at (120, 200) angle 64; delta information type
/// 01 and one delta at (60, 300) with its three angles.
fn cores_and_deltas() -> (u16, Vec<u8>) {
    let mut d = vec![0x41];
    d.extend_from_slice(&120u16.to_be_bytes());
    d.extend_from_slice(&200u16.to_be_bytes());
    d.push(64);
    d.push(0x41);
    d.extend_from_slice(&60u16.to_be_bytes());
    d.extend_from_slice(&300u16.to_be_bytes());
    d.extend_from_slice(&[10, 90, 170]);
    (0x0002, d)
}

/// A vendor-defined block (type 0x0101..=0xFFFF with a non-zero low byte).
fn vendor_block() -> (u16, Vec<u8>) {
    (0x1234, b"vendor data".to_vec())
}

#[test]
fn extended_data_blocks_count_their_header() {
    let cases = [
        vec![ridge_counts()],
        vec![cores_and_deltas()],
        vec![vendor_block()],
        vec![ridge_counts(), cores_and_deltas(), vendor_block()],
        // A block with no data is its header alone: length 4.
        vec![(0x0101, Vec::new())],
    ];
    for blocks in cases {
        let b = with_blocks(&blocks);
        let r = parse(&b).unwrap_or_else(|e| panic!("{blocks:02x?}: {e}"));
        let view = &r.views[0];
        assert_eq!(view.extended_data.len(), blocks.len());
        for (got, (ty, data)) in view.extended_data.iter().zip(&blocks) {
            assert_eq!(got.type_code, *ty);
            assert_eq!(&got.data, data);
        }
        assert_eq!(
            usize::from(view.extended_data_len),
            view.computed_extended_data_len()
        );
        // Re-encoding gives the same bytes, and they parse to the same record.
        let again = encode_2005(&r).unwrap();
        assert_eq!(again, b);
        assert_eq!(parse(&again).unwrap(), r);
    }
}

#[test]
fn extended_data_block_shorter_than_its_header_is_refused() {
    let mut b = minimal();
    b.truncate(40);
    b.extend_from_slice(&[0x00, 0x07, 0x00, 0x01, 0x00, 0x02, 0x01, 0x01, 0x02]);
    let e = err(&fix_len(b));
    assert_eq!(e.offset, Some(44));
    assert_eq!(e.location, Location::Extension { view: 1, block: 1 });
    assert!(e.to_string().contains("at least 4"), "{e}");
}

// ---------------------------------------------------------------------------
// Trailing zero padding from capture SDKs' fixed-size buffers.

#[test]
fn zero_padding_is_accepted_with_a_warning() {
    let mut b = minimal();
    b.extend_from_slice(&[0; 22]);
    let p = parse_with_warnings(&b).unwrap();
    assert_eq!(p.record, parse(&minimal()).unwrap());
    assert_eq!(
        p.warnings,
        vec![ParseWarning::ZeroPadding {
            offset: 42,
            count: 22
        }]
    );
    assert_eq!(
        p.warnings[0].to_string(),
        "22 zero bytes of padding after the declared record length (bytes 42..64) were ignored"
    );
    // The strict parser still refuses it, and says it is zero padding.
    let e = err(&b);
    assert_eq!(e.offset, Some(8));
    assert!(e.to_string().contains("zero padding"), "{e}");
    // The shared samples padded to a 1 KiB buffer.
    for name in ["iso19794-2-2005-sample", "iso19794-2-2011-sample"] {
        let (dat, _) = sample(name);
        let mut padded = dat.clone();
        padded.resize(1024, 0);
        let p = parse_with_warnings(&padded).unwrap();
        let plain = parse_with_warnings(&dat).unwrap();
        assert_eq!(p.record, plain.record);
        let mut want = vec![ParseWarning::ZeroPadding {
            offset: dat.len(),
            count: 1024 - dat.len(),
        }];
        want.extend(plain.warnings);
        assert_eq!(p.warnings, want);
    }
    // No padding, no warning.
    assert!(parse_with_warnings(&minimal()).unwrap().warnings.is_empty());
}

#[test]
fn trailing_bytes_that_are_not_zero_stay_an_error_with_the_offset() {
    let mut b = minimal();
    b.extend_from_slice(&[0, 0, 0x07, 0]);
    let e = parse_with_warnings(&b).unwrap_err();
    assert_eq!(e.offset, Some(8));
    assert_eq!(
        e.to_string(),
        "byte 8: header: record length = 42, but the record is 46 bytes long and byte 44 after the declared end is not zero padding"
    );
    // A declared length beyond the input is no padding either.
    let mut b = minimal();
    b[11] = 50;
    let e = parse_with_warnings(&b).unwrap_err();
    assert_eq!(
        e.to_string(),
        "byte 8: header: record length = 50, but the record is 42 bytes long"
    );
    // A record cut inside its declared length is refused even when zero
    // bytes follow the cut (the length field then names the zeros).
    let mut b = minimal();
    b.truncate(36);
    b[8..12].copy_from_slice(&36u32.to_be_bytes());
    b.extend_from_slice(&[0; 8]);
    assert!(parse_with_warnings(&b).is_err());
}

// ---------------------------------------------------------------------------
// ANSI/INCITS 378-2004 records: same "FMR\0" and " 20\0".

/// An ANSI/INCITS 378-2004 record of `minimal()`'s view: 2-byte record
/// length (or 0 and a 4-byte length when `long`), CBEFF product identifier,
/// capture equipment, width, height, resolutions, views, reserved, then the
/// view as in ISO 2005 (ANSI angles are in 2° units).
fn ansi_378(long: bool) -> Vec<u8> {
    let mut b = b"FMR\0 20\0".to_vec();
    let header = if long { 30 } else { 26 };
    let total = header + 4 + 12 + 2;
    if long {
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&(total as u32).to_be_bytes());
    } else {
        b.extend_from_slice(&(total as u16).to_be_bytes());
    }
    b.extend_from_slice(&[0x00, 0x33, 0x00, 0x01]); // CBEFF product identifier
    b.extend_from_slice(&[0x00, 0xb5]); // capture equipment
    b.extend_from_slice(&[0x02, 0x00, 0x02, 0x00, 0x00, 0xc5, 0x00, 0xc5, 0x01, 0x00]);
    b.extend_from_slice(&[0x07, 0x00, 0x5a, 0x02]);
    b.extend_from_slice(&[0x40, 0x64, 0x00, 0x0e, 0x38, 0x5a]);
    b.extend_from_slice(&[0x80, 0x37, 0x00, 0x12, 0x0b, 0x5a]);
    b.extend_from_slice(&[0x00, 0x00]);
    assert_eq!(b.len(), total);
    b
}

#[test]
fn ansi_378_records_are_named() {
    for long in [false, true] {
        let b = ansi_378(long);
        let e = parse(&b).unwrap_err();
        assert_eq!(e.offset, Some(8));
        assert_eq!(
            e.kind,
            ErrorKind::AnsiRecord {
                declared_length: b.len() as u64
            }
        );
        assert!(
            e.to_string()
                .contains("this is an ANSI/INCITS 378 record, not ISO/IEC 19794-2"),
            "{e}"
        );
        // Also when the capture SDK padded it.
        let mut padded = b.clone();
        padded.extend_from_slice(&[0; 10]);
        assert!(matches!(
            parse_with_warnings(&padded).unwrap_err().kind,
            ErrorKind::AnsiRecord { .. }
        ));
        // A damaged ANSI record is not guessed to be one: plain length error.
        let mut bad = b.clone();
        bad.push(0x01);
        assert!(matches!(
            parse(&bad).unwrap_err().kind,
            ErrorKind::LengthMismatch { .. }
        ));
    }
}

#[test]
fn rejects_trailing_bytes() {
    let mut b = minimal();
    b.push(0);
    let e = err(&fix_len(b));
    assert_eq!(e.offset, Some(42));
    assert_eq!(e.kind, ErrorKind::TrailingBytes { count: 1 });
}

#[test]
fn rejects_truncation_everywhere() {
    let full = minimal();
    for n in 0..full.len() {
        let mut b = full[..n].to_vec();
        if n >= 12 {
            b = fix_len(b);
        }
        assert!(parse(&b).is_err(), "prefix of {n} bytes accepted");
    }
}

#[test]
fn rejects_malformed_2011() {
    let (dat, _) = sample("iso19794-2-2011-sample");
    // Representation length off by one.
    let mut b = dat.clone();
    b[18] += 1;
    let e = err(&b);
    assert!(
        matches!(
            e.kind,
            ErrorKind::LengthMismatch {
                field: "representation length",
                ..
            }
        ),
        "{e}"
    );
    // Minutia size nibble 7.
    let mut b = dat.clone();
    b[0x32] = 0x70;
    assert!(matches!(
        err(&b).kind,
        ErrorKind::OutOfRange {
            field: "minutia record size",
            ..
        }
    ));
    // Ridge ending type 2.
    let mut b = dat.clone();
    b[0x32] = 0x62;
    assert!(matches!(
        err(&b).kind,
        ErrorKind::OutOfRange {
            field: "ridge ending type",
            ..
        }
    ));
    // Impression type 10 is undefined.
    let mut b = dat.clone();
    b[0x2d] = 10;
    assert!(matches!(
        err(&b).kind,
        ErrorKind::OutOfRange {
            field: "impression type",
            ..
        }
    ));
    // Certification flag 2.
    let mut b = dat.clone();
    b[14] = 2;
    assert!(matches!(
        err(&b).kind,
        ErrorKind::OutOfRange {
            field: "certification flag",
            ..
        }
    ));
    // Trailing byte.
    let mut b = dat;
    b.push(0);
    assert!(matches!(
        err(&fix_len(b)).kind,
        ErrorKind::TrailingBytes { count: 1 }
    ));
}

#[test]
fn errors_carry_no_template_bytes() {
    // The error type holds only decoded scalar values and static field
    // names; a long extended block must not show up in the message.
    let mut b = minimal();
    b.truncate(40);
    b.extend_from_slice(&[0x00, 0x20, 0x01, 0x01, 0x00, 0x40]);
    b.extend_from_slice(&[0xde; 26]);
    let e = err(&fix_len(b));
    let text = format!("{e} {e:?}");
    assert!(
        !text.contains("222") && !text.to_lowercase().contains("dede"),
        "{text}"
    );
}

#[test]
fn encoder_rejects_unrepresentable_records() {
    let mut r = parse(&minimal()).unwrap();
    r.views[0].minutiae[0].x = 600;
    assert!(matches!(
        encode_2005(&r).unwrap_err().kind,
        ErrorKind::OutsideImage { .. }
    ));
    let mut r = parse(&minimal()).unwrap();
    r.views[0].minutiae[0].x = 0x4000;
    assert!(encode_2005(&r).is_err());
    let mut r = parse(&minimal()).unwrap();
    r.views[0].extended_data_len = 9;
    assert!(matches!(
        encode_2005(&r).unwrap_err().kind,
        ErrorKind::Unsupported { .. }
    ));
    let mut r = parse(&minimal()).unwrap();
    r.views[0].minutiae = vec![r.views[0].minutiae[0]; 256];
    assert!(encode_2005(&r).is_err());
}

#[test]
fn finger_position_names() {
    for p in FingerPosition::ALL {
        assert_eq!(p.to_string().parse::<FingerPosition>().unwrap(), p);
        assert_eq!(
            serde_json::to_value(p).unwrap(),
            Value::String(p.name().into())
        );
        assert_eq!(FingerPosition::from_code(p.code()), Some(p));
    }
    assert_eq!(
        "Right-Index".parse::<FingerPosition>().unwrap(),
        FingerPosition::RightIndex
    );
    assert!("right_toe".parse::<FingerPosition>().is_err());
    assert_eq!(FingerPosition::from_code(11), None);
}

// ---------------------------------------------------------------------------
// Compact card format.

#[test]
fn compact_conversion_units() {
    let r = parse(&minimal()).unwrap();
    let c = to_compact_minutiae(&r, 0, 60).unwrap();
    // 100 px at 197 px/cm = 5.076 mm -> 51; 14 px -> 7.1 -> 7; angle 80/4 = 20.
    assert_eq!(c[0].x(), 51);
    assert_eq!(c[0].y(), 7);
    assert_eq!(c[0].angle(), 20);
    assert_eq!(c[0].kind(), MinutiaKind::Ending);
    assert_eq!(c[0].to_bytes(), [51, 7, 0x40 | 20]);
    // 55 px -> 2.79 mm -> 28; 18 px -> 9; bifurcation, angle 16/4 = 4.
    assert_eq!(c[1].to_bytes(), [28, 9, 0x80 | 4]);
    let bytes = to_compact(&r, 0, 60).unwrap();
    assert_eq!(parse_compact(&bytes).unwrap(), c);
    assert_eq!(serialize_compact(&c), bytes);
    // Angles round to the nearest 5.625° step and wrap.
    let mut r2 = r.clone();
    r2.views[0].minutiae[0].angle = 254;
    r2.views[0].minutiae[1].angle = 6;
    let c = to_compact_minutiae(&r2, 0, 60).unwrap();
    assert_eq!((c[0].angle(), c[1].angle()), (0, 2));
}

#[test]
fn compact_keeps_best_minutiae() {
    let mut r = parse(&minimal()).unwrap();
    let m = |x: u16, y: u16, quality: u8, kind: MinutiaKind, angle: u8| Minutia {
        kind,
        x,
        y,
        angle,
        quality,
    };
    use MinutiaKind::*;
    // Centroid is (200, 200).
    r.views[0].minutiae = vec![
        m(100, 200, 50, Ending, 0),      // 0: far, low quality
        m(300, 200, 90, Ending, 0),      // 1: far, high quality
        m(200, 190, 50, Ending, 0),      // 2: near, low quality
        m(200, 210, 50, Bifurcation, 0), // 3: near (same distance as 2), low quality, bifurcation
        m(200, 200, 60, Ending, 0),      // 4: centre, middle quality
    ];
    let kept = |n: usize| -> Vec<(u8, u8)> {
        to_compact_minutiae(&r, 0, n)
            .unwrap()
            .iter()
            .map(|c| (c.x(), c.y()))
            .collect()
    };
    let px = |x: u16, y: u16| {
        (
            ((u32::from(x) * 200 + 197) / 394) as u8,
            ((u32::from(y) * 200 + 197) / 394) as u8,
        )
    };
    assert_eq!(kept(1), vec![px(300, 200)]);
    assert_eq!(kept(2), vec![px(300, 200), px(200, 200)]);
    // Equal quality and distance: the ending goes before the bifurcation.
    assert_eq!(kept(3), vec![px(300, 200), px(200, 210), px(200, 200)]);
    assert_eq!(
        kept(4),
        vec![px(300, 200), px(200, 190), px(200, 210), px(200, 200)]
    );
    assert_eq!(kept(5).len(), 5);
}

#[test]
fn compact_errors() {
    let r = parse(&minimal()).unwrap();
    assert!(to_compact(&r, 1, 10).is_err());
    assert!(to_compact(&r, 0, 0).is_err());
    let mut big = r.clone();
    big.width = 1000;
    big.views[0].minutiae[0].x = 600; // 30.5 mm
    let e = to_compact(&big, 0, 10).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::NotRepresentable {
            axis: "x",
            found: 305
        }
    );
    // Dropping the far minutia makes it fit.
    big.views[0].minutiae[0].quality = 10;
    assert!(to_compact(&big, 0, 1).is_ok());
    assert!(parse_compact(&[]).is_err());
    assert!(parse_compact(&[1, 2]).is_err());
    assert_eq!(parse_compact(&[1, 2, 0xc0]).unwrap_err().offset, Some(2));
    assert!(CompactMinutia::new(MinutiaKind::Ending, 1, 2, 64).is_err());
    let mut v = vec![
        CompactMinutia::new(MinutiaKind::Ending, 9, 1, 0).unwrap(),
        CompactMinutia::new(MinutiaKind::Ending, 3, 2, 0).unwrap(),
    ];
    sort_compact(&mut v, CompactOrder::XAscending);
    assert_eq!(v[0].x(), 3);
    sort_compact(&mut v, CompactOrder::YDescending);
    assert_eq!(v[0].y(), 2);
}

#[test]
fn sample_converts_to_compact() {
    let (dat, _) = sample("iso19794-2-2005-sample");
    let r = parse_with_warnings(&dat).unwrap().record;
    let c = to_compact(&r, 0, 20).unwrap();
    assert_eq!(c.len(), 60);
    assert_eq!(compact_match(&c, &c), Some(true));
    let other = to_compact(&r, 1, 20).unwrap();
    assert_eq!(compact_match(&c, &other), Some(false));
}

// ---------------------------------------------------------------------------
// Matcher.

fn capture(finger: &SyntheticFinger, seed: u64, d: &Distortion, limit: usize) -> Vec<u8> {
    to_compact(&finger.capture(seed, d), 0, limit).unwrap()
}

#[test]
fn compact_match_rejects_malformed() {
    let ok = capture(&SyntheticFinger::generate(1), 1, &Distortion::none(), 60);
    assert_eq!(compact_match(&[], &ok), None);
    assert_eq!(compact_match(&ok, &[]), None);
    assert_eq!(compact_match(&ok, &ok[..4]), None);
    assert_eq!(compact_match(&[0, 0, 0xc0], &ok), None);
    assert_eq!(
        compact_match(&vec![0x10; 3 * (MAX_MINUTIAE + 1)], &ok),
        None
    );
    assert_eq!(compact_match(&ok, &ok), Some(true));
}

#[test]
fn matcher_tolerates_rotation_translation_and_partial_capture() {
    for seed in 0..10u64 {
        let finger = SyntheticFinger::generate(seed);
        let reference = capture(&finger, 100 + seed, &Distortion::none(), 60);
        for rotation_deg in [-30.0, 30.0] {
            let d = Distortion {
                rotation_deg,
                shift_x: 25.0,
                shift_y: -25.0,
                missing: 0.25,
                spurious: 5,
                jitter_px: 3.0,
                angle_noise_deg: 8.0,
            };
            let probe = capture(&finger, 200 + seed, &d, 60);
            let s = compare(
                &parse_compact(&reference).unwrap(),
                &parse_compact(&probe).unwrap(),
            );
            assert!(s.is_match(), "seed {seed} rotation {rotation_deg}: {s:?}");
        }
        let other = capture(
            &SyntheticFinger::generate(seed + 1000),
            300 + seed,
            &Distortion::none(),
            60,
        );
        assert_eq!(
            compact_match(&reference, &other),
            Some(false),
            "seed {seed}"
        );
    }
}

#[test]
fn matcher_is_deterministic() {
    let a = capture(&SyntheticFinger::generate(5), 1, &Distortion::none(), 60);
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3);
    let b = capture(
        &SyntheticFinger::generate(5),
        2,
        &Distortion::genuine_typical(&mut rng),
        60,
    );
    let first = match_score(&a, &b).unwrap();
    for _ in 0..3 {
        assert_eq!(match_score(&a, &b).unwrap(), first);
    }
}

#[test]
fn synthetic_fingers_are_realistic() {
    for seed in 0..20u64 {
        let f = SyntheticFinger::generate(seed);
        assert!(
            (35..=60).contains(&f.minutiae.len()),
            "{}",
            f.minutiae.len()
        );
        for (i, a) in f.minutiae.iter().enumerate() {
            for b in &f.minutiae[i + 1..] {
                assert!((a.x - b.x).hypot(a.y - b.y) >= 8.0);
            }
        }
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
        let d = Distortion::genuine_typical(&mut rng);
        let r = f.capture(seed, &d);
        let bytes = encode_2005(&r).unwrap();
        assert_eq!(parse(&bytes).unwrap(), r);
        for m in &r.views[0].minutiae {
            assert!((40..=100).contains(&m.quality));
        }
        assert_eq!(f.capture(seed, &d), r, "captures are deterministic");
    }
}

/// Error rates at the decision threshold (see the report for the figures).
#[test]
fn error_rates_on_synthetic_fingers() {
    let report = evaluate(200, 7, 48);
    println!("{report}");
    assert_eq!(report.genuine_pairs, 200);
    assert_eq!(report.impostor_pairs, 200 * IMPOSTORS_PER_FINGER);
    assert_eq!(report.conversion_failures, 0);
    assert!(report.fnmr <= 0.02, "{report}");
    assert!(report.fmr <= 0.002, "{report}");
    // The distributions are well apart around the threshold.
    assert!(report.genuine_scores.p1 > THRESHOLD * 1.5, "{report}");
    assert!(report.impostor_scores.p99 < THRESHOLD / 2.0, "{report}");
}

// ---------------------------------------------------------------------------
// Property tests.

fn arb_record() -> impl Strategy<Value = FingerRecord> {
    let minutia = (0u8..3, 0u16..512, 0u16..400, any::<u8>(), 0u8..=100).prop_map(
        |(k, x, y, angle, quality)| Minutia {
            kind: MinutiaKind::from_code(k).unwrap(),
            x,
            y,
            angle,
            quality,
        },
    );
    let block = (
        0x0101u16..=0xffff,
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_filter("low byte non-zero", |(t, _)| t & 0xff != 0)
        .prop_map(|(type_code, data)| ExtendedDataBlock { type_code, data });
    let view = (
        0u8..=10,
        0u8..16,
        prop::sample::select(vec![0u8, 1, 2, 3, 8]),
        0u8..=100,
        proptest::collection::vec(minutia, 1..20),
        proptest::collection::vec(block, 0..3),
    )
        .prop_map(|(p, view_number, it, quality, minutiae, extended_data)| {
            let mut v = FingerView {
                position: FingerPosition::from_code(p).unwrap(),
                view_number,
                impression_type: ImpressionType::from_code(it, Version::V2005).unwrap(),
                quality,
                minutiae,
                extended_data_len: 0,
                extended_data,
                capture_2011: None,
            };
            v.extended_data_len = v.computed_extended_data_len() as u16;
            v
        });
    (
        0u8..16,
        0u16..4096,
        1u16..1000,
        proptest::collection::vec(view, 1..4),
    )
        .prop_map(|(compliance, id, res, views)| FingerRecord {
            version: Version::V2005,
            capture_equipment_compliance: compliance,
            capture_equipment_id: id,
            width: 512,
            height: 400,
            resolution_x: res,
            resolution_y: res,
            certification_flag: false,
            views,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse(&bytes);
        let _ = compact_match(&bytes, &bytes);
    }

    #[test]
    fn random_bytes_with_valid_header_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        v2011 in any::<bool>(),
    ) {
        let mut b = b"FMR\0".to_vec();
        b.extend_from_slice(if v2011 { b"030\0" } else { b" 20\0" });
        b.extend_from_slice(&((body.len() + 12) as u32).to_be_bytes());
        b.extend_from_slice(&body);
        let _ = parse(&b);
    }

    #[test]
    fn mutated_samples_never_panic(
        which in any::<bool>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let name = if which { "iso19794-2-2005-sample" } else { "iso19794-2-2011-sample" };
        let (mut b, _) = sample(name);
        for (i, v) in edits {
            let i = i.index(b.len());
            b[i] = v;
        }
        if do_cut {
            b.truncate(cut.index(b.len()));
        }
        if let Ok(r) = parse(&b) {
            if r.version == Version::V2005 {
                prop_assert_eq!(parse(&encode_2005(&r).unwrap()).unwrap(), r);
            }
        }
        // Whatever the lenient parser accepts (padding, data-only block
        // lengths) re-encodes to a record the strict parser takes as is.
        let mut padded = b.clone();
        padded.extend_from_slice(&[0; 7]);
        for input in [&b, &padded] {
            if let Ok(p) = parse_with_warnings(input) {
                if p.record.version == Version::V2005 {
                    prop_assert_eq!(parse(&encode_2005(&p.record).unwrap()).unwrap(), p.record);
                }
            }
        }
    }

    #[test]
    fn encode_parse_round_trip(r in arb_record()) {
        let bytes = encode_2005(&r).unwrap();
        prop_assert_eq!(parse(&bytes).unwrap(), r);
    }

    #[test]
    fn compact_round_trip(bytes in proptest::collection::vec(any::<u8>(), 1..60)) {
        if let Ok(m) = parse_compact(&bytes) {
            prop_assert_eq!(serialize_compact(&m), bytes);
        }
    }

    #[test]
    fn compare_never_panics(a in proptest::collection::vec(any::<u8>(), 0..150), b in proptest::collection::vec(any::<u8>(), 0..150)) {
        if let Some(s) = match_score(&a, &b) {
            prop_assert!((0.0..=1.0).contains(&s.value));
        }
    }
}
