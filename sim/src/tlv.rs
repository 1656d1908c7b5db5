//! Minimal BER-TLV reader/writer (ISO/IEC 7816-4:2013 §5.2, ISO/IEC 8825-1).
//!
//! The card only needs one level of parsing at a time (an FCP template, the
//! PIN-creation data, the odd-INS offset/data objects), so this is a small,
//! strict, panic-free reader: a truncated or over-long element is an error,
//! never silently dropped.

/// One data object: tag (1–3 bytes, kept as an integer) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tlv<'a> {
    pub tag: u32,
    pub value: &'a [u8],
}

/// Parse a concatenation of BER-TLV data objects. Any malformation (tag
/// longer than 3 bytes, length over 3 bytes or indefinite, value running past
/// the end) is an error.
pub(super) fn parse_all(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, ()> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tlv, rest) = parse_one(input)?;
        out.push(tlv);
        input = rest;
    }
    Ok(out)
}

/// Parse exactly one data object from the front of `input`.
pub(super) fn parse_one(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), ()> {
    let (&first, mut rest) = input.split_first().ok_or(())?;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        // Subsequent tag bytes while b8 is set; we accept up to 3 tag bytes.
        let mut count = 0;
        loop {
            let (&b, r) = rest.split_first().ok_or(())?;
            rest = r;
            tag = (tag << 8) | u32::from(b);
            count += 1;
            if b & 0x80 == 0 {
                break;
            }
            if count >= 2 {
                return Err(());
            }
        }
    }
    let (&l0, r) = rest.split_first().ok_or(())?;
    rest = r;
    let len = if l0 < 0x80 {
        usize::from(l0)
    } else {
        let n = usize::from(l0 & 0x7F);
        if n == 0 || n > 3 {
            return Err(());
        }
        let (lb, r) = rest.split_at_checked(n).ok_or(())?;
        rest = r;
        lb.iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let (value, rest) = rest.split_at_checked(len).ok_or(())?;
    Ok((Tlv { tag, value }, rest))
}

/// Number of bytes the BER length field takes for `len`.
pub(super) fn len_field_size(len: usize) -> usize {
    match len {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        0x100..=0xFFFF => 3,
        _ => 4,
    }
}

/// Append a data object with a tag of 1 or 2 bytes (tags above 0xFF are
/// written as two bytes), through the one TLV writer.
pub(super) fn push_tlv(out: &mut Vec<u8>, tag: u16, value: &[u8]) {
    let [hi, lo] = tag.to_be_bytes();
    if hi == 0 {
        cardsmith_wire::tlv::push(out, &[lo], value);
    } else {
        cardsmith_wire::tlv::push(out, &[hi, lo], value);
    }
}

/// A data object as a fresh vector.
pub(super) fn tlv(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len().saturating_add(6));
    push_tlv(&mut out, tag, value);
    out
}

/// Big-endian unsigned integer of 1..=4 bytes.
pub(super) fn be_uint(bytes: &[u8]) -> Option<usize> {
    if bytes.is_empty() || bytes.len() > 4 {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
    )
}

/// Shortest big-endian encoding (at least one byte) of `v`.
pub(super) fn be_min(v: usize) -> Vec<u8> {
    let b = (v as u64).to_be_bytes();
    let skip = b.iter().take(7).take_while(|x| **x == 0).count();
    b.get(skip..).unwrap_or(&[0]).to_vec()
}
