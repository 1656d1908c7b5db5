//! Iranian national ID (کد ملی) check digit.

/// Check digit for the first nine digits (each `0..=9`):
/// `s = Σ d_i × (11 − i)` for `i = 1..=9`, `r = s mod 11`; the check digit
/// is `r` when `r < 2`, otherwise `11 − r`.
pub fn national_id_check_digit(first_nine: &[u8; 9]) -> u8 {
    let s: u32 = first_nine
        .iter()
        .zip((2..=10).rev())
        .map(|(&d, w)| u32::from(d) * w)
        .sum();
    let r = (s % 11) as u8;
    if r < 2 {
        r
    } else {
        11 - r
    }
}

/// Validates an already digit-normalized national ID; returns the broken
/// rule.
pub fn check_national_id(s: &str) -> Result<(), String> {
    if s.chars().count() != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be exactly 10 digits".into());
    }
    let d: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
    if d.windows(2).all(|w| matches!(w, [x, y] if x == y)) {
        return Err("all ten digits are the same; such numbers are never issued".into());
    }
    let Some((first, [last])) = d.split_first_chunk::<9>() else {
        return Err("must be exactly 10 digits".into());
    };
    let expected = national_id_check_digit(first);
    if *last != expected {
        return Err(format!(
            "check digit is {last} but the first nine digits require {expected}"
        ));
    }
    Ok(())
}

/// True if `s` (ASCII digits) is a valid national ID.
pub fn is_valid_national_id(s: &str) -> bool {
    check_national_id(s).is_ok()
}
