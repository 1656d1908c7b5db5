//! Photo validation: the bytes must be a complete baseline or progressive
//! JPEG within the size and dimension limits.

use std::io::Cursor;

use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Largest accepted photo, in bytes (20 KiB).
pub const MAX_PHOTO_BYTES: usize = 20 * 1024;
/// Smallest accepted width × height.
pub const MIN_PHOTO_DIMENSIONS: (u16, u16) = (90, 120);
/// Largest accepted width × height.
pub const MAX_PHOTO_DIMENSIONS: (u16, u16) = (1200, 1600);

/// JPEG coding process, from the frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JpegProcess {
    /// SOF0, baseline sequential DCT.
    Baseline,
    /// SOF2, progressive DCT with Huffman coding.
    Progressive,
}

/// What validation learned about a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PhotoInfo {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Number of colour components (1 grey, 3 colour).
    pub components: u8,
    /// Coding process.
    pub process: JpegProcess,
}

/// Walks the marker segments up to the first SOS and returns the frame
/// header's marker, width, height and component count.
fn frame_header(bytes: &[u8]) -> Result<(u8, u16, u16, u8), String> {
    if bytes.len() < 4 || !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err("is not a JPEG (no SOI marker at the start)".into());
    }
    let mut i = 2;
    let mut frame = None;
    loop {
        let Some(&first) = bytes.get(i) else {
            return Err("is a truncated JPEG (ends before the image data)".into());
        };
        if first != 0xFF {
            return Err(format!(
                "is a malformed JPEG (expected a marker at byte {i})"
            ));
        }
        while bytes.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return Err("is a truncated JPEG (ends inside a marker)".into());
        };
        i += 1;
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            continue;
        }
        if marker == 0xD9 {
            return Err("is a JPEG without image data (EOI before any scan)".into());
        }
        let Some(len) = bytes
            .get(i..)
            .and_then(|b| b.first_chunk::<2>())
            .map(|b| usize::from(u16::from_be_bytes(*b)))
        else {
            return Err("is a truncated JPEG (ends inside a segment header)".into());
        };
        let Some(seg) = bytes.get(i + 2..i + len).filter(|_| len >= 2) else {
            return Err("is a truncated or malformed JPEG (bad segment length)".into());
        };
        let is_sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            if frame.is_some() {
                return Err("is a malformed JPEG (more than one frame header)".into());
            }
            let [_, h1, h2, w1, w2, n, ..] = *seg else {
                return Err("is a malformed JPEG (short frame header)".into());
            };
            let h = u16::from_be_bytes([h1, h2]);
            let w = u16::from_be_bytes([w1, w2]);
            frame = Some((marker, w, h, n));
        }
        if marker == 0xDA {
            return frame.ok_or_else(|| "is a malformed JPEG (scan before frame header)".into());
        }
        i += len;
    }
}

/// Validates a photo; on failure returns the broken rule (without any of the
/// photo's bytes).
pub fn inspect_jpeg(bytes: &[u8]) -> Result<PhotoInfo, String> {
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(format!(
            "is {} bytes; the limit is {} bytes (20 KiB)",
            bytes.len(),
            MAX_PHOTO_BYTES
        ));
    }
    let (marker, width, height, components) = frame_header(bytes)?;
    let process = match marker {
        0xC0 => JpegProcess::Baseline,
        0xC2 => JpegProcess::Progressive,
        m => {
            return Err(format!(
                "uses JPEG process SOF{}; only baseline (SOF0) and progressive (SOF2) are accepted",
                m - 0xC0
            ))
        }
    };
    let (min_w, min_h) = MIN_PHOTO_DIMENSIONS;
    let (max_w, max_h) = MAX_PHOTO_DIMENSIONS;
    if !(min_w..=max_w).contains(&width) || !(min_h..=max_h).contains(&height) {
        return Err(format!(
            "is {width}×{height} pixels; width must be {min_w}..={max_w} and height {min_h}..={max_h}"
        ));
    }
    if !matches!(components, 1 | 3) {
        return Err(format!(
            "has {components} colour components; expected 1 (grey) or 3 (colour)"
        ));
    }
    // The image data must end with EOI: a file cut short is refused even if
    // a lenient decoder could fill in the missing blocks.
    let trimmed = match bytes.iter().rposition(|b| *b != 0x00) {
        Some(last) => bytes.get(..=last).unwrap_or_default(),
        None => &[],
    };
    if !trimmed.ends_with(&[0xFF, 0xD9]) {
        return Err("is a truncated JPEG (no EOI marker at the end)".into());
    }
    // Decoded to luma only: every coefficient of every component is still
    // entropy-decoded (a corrupt scan fails the same), but the colour
    // conversion and chroma upsampling, a third of a batch's validation
    // time, are skipped; no pixel is looked at beyond its count.
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(zune_jpeg::zune_core::colorspace::ColorSpace::Luma)
        .set_strict_mode(true)
        .set_max_width(usize::from(max_w))
        .set_max_height(usize::from(max_h));
    let mut decoder = JpegDecoder::new_with_options(Cursor::new(bytes), options);
    let pixels = decoder
        .decode()
        .map_err(|e| format!("does not decode as a JPEG: {e}"))?;
    let info = decoder
        .info()
        .ok_or_else(|| "does not decode as a JPEG (no image information)".to_string())?;
    if info.width != width || info.height != height {
        return Err("does not decode as a JPEG (inconsistent dimensions)".into());
    }
    let expected_min = usize::from(width) * usize::from(height);
    if pixels.len() < expected_min {
        return Err("does not decode as a JPEG (incomplete image data)".into());
    }
    Ok(PhotoInfo {
        width,
        height,
        components,
        process,
    })
}
