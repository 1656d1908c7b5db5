//! How a card answers with a public key and with a signature.
//!
//! Card operating systems differ here as much as anywhere: one answers a
//! key generation with an ISO/IEC 7816-8 public key template
//! (`7F49 { 86 <point> }`), another with the bare uncompressed point; one
//! gives an ECDSA signature as raw `r ‖ s`, another as a DER
//! `ECDSA-Sig-Value`. The profile says which (`[pki.commands]`
//! `public_key_encoding` and `signature_encoding`, docs/card-profile.md),
//! and every caller converts through the one function for each here: the
//! engine, the counter and the PKCS#11 module alike. Both give what the
//! rest of cardsmith works with: the 65-byte uncompressed P-256 point, and
//! the 64-byte `r ‖ s`.

use crate::tlv;

/// Length of an uncompressed P-256 point: `04 ‖ X ‖ Y`.
pub const POINT_LEN: usize = 65;
/// Length of a raw P-256 ECDSA signature: `r ‖ s`.
pub const RAW_SIGNATURE_LEN: usize = 64;

/// How the card gives a public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PointEncoding {
    /// `7F49 { 86 <04 ‖ X ‖ Y> }` (ISO/IEC 7816-8): the reference card.
    #[default]
    PublicKeyTemplate,
    /// The bare uncompressed point `04 ‖ X ‖ Y`.
    UncompressedPoint,
}

/// How the card gives an ECDSA signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureEncoding {
    /// `r ‖ s`, 32 bytes each: the reference card.
    #[default]
    Raw,
    /// A DER `ECDSA-Sig-Value` (SEQUENCE of two INTEGERs).
    Der,
}

impl PointEncoding {
    /// The profile's names, for error messages.
    pub const EXPECTED: &'static str = "\"7f49-template\" or \"uncompressed-point\"";

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "7f49-template" => Some(Self::PublicKeyTemplate),
            "uncompressed-point" => Some(Self::UncompressedPoint),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::PublicKeyTemplate => "7f49-template",
            Self::UncompressedPoint => "uncompressed-point",
        }
    }
}

impl SignatureEncoding {
    /// The profile's names, for error messages.
    pub const EXPECTED: &'static str = "\"raw\" or \"der\"";

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "raw" => Some(Self::Raw),
            "der" => Some(Self::Der),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Der => "der",
        }
    }
}

/// The uncompressed P-256 point in a card's answer given as `encoding`.
/// The error says what was expected and what came.
pub fn public_point(encoding: PointEncoding, answer: &[u8]) -> Result<Vec<u8>, String> {
    let point = match encoding {
        PointEncoding::PublicKeyTemplate => {
            let nodes = tlv::decode(answer);
            let top = tlv::expect_one(&nodes, &[0x7F, 0x49])?;
            tlv::child_value(top, &[0x86])
                .ok_or("no public point (86) in 7F49")?
                .to_vec()
        }
        PointEncoding::UncompressedPoint => answer.to_vec(),
    };
    if point.len() != POINT_LEN || point.first() != Some(&0x04) {
        return Err(format!(
            "expected an uncompressed P-256 point (65 bytes, 04 ‖ X ‖ Y), found {} bytes{}",
            point.len(),
            match point.first() {
                Some(b) if point.len() == POINT_LEN => format!(" starting {b:02X}"),
                _ => String::new(),
            }
        ));
    }
    Ok(point)
}

/// The raw `r ‖ s` of a card's signature given as `encoding`. A DER
/// signature must be strict DER (minimal positive INTEGERs of at most 32
/// significant bytes).
pub fn raw_signature(encoding: SignatureEncoding, answer: &[u8]) -> Result<Vec<u8>, String> {
    match encoding {
        SignatureEncoding::Raw if answer.len() == RAW_SIGNATURE_LEN => Ok(answer.to_vec()),
        SignatureEncoding::Raw => Err(format!("expected 64 bytes (r ‖ s), found {}", answer.len())),
        SignatureEncoding::Der => crate::pki::der_to_raw_sig(answer)
            .map_err(|e| format!("expected a DER ECDSA-Sig-Value: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point() -> Vec<u8> {
        let mut p = vec![0x04];
        p.extend((1..=64).map(|i| i as u8));
        p
    }

    #[test]
    fn a_point_comes_out_of_either_encoding() {
        let p = point();
        let mut template = vec![0x7F, 0x49, 0x43, 0x86, 0x41];
        template.extend(&p);
        assert_eq!(
            public_point(PointEncoding::PublicKeyTemplate, &template).unwrap(),
            p
        );
        assert_eq!(
            public_point(PointEncoding::UncompressedPoint, &p).unwrap(),
            p
        );
    }

    #[test]
    fn a_point_in_the_wrong_form_is_refused_with_what_was_expected() {
        let p = point();
        // The bare point where a template was expected, and the reverse.
        let e = public_point(PointEncoding::PublicKeyTemplate, &p).unwrap_err();
        assert!(e.contains("7F49"), "{e}");
        let mut template = vec![0x7F, 0x49, 0x43, 0x86, 0x41];
        template.extend(&p);
        let e = public_point(PointEncoding::UncompressedPoint, &template).unwrap_err();
        assert!(
            e.contains("65 bytes") && e.contains("found 70 bytes"),
            "{e}"
        );
        // A compressed point, and a 65-byte string that is not a point.
        let e = public_point(PointEncoding::UncompressedPoint, &p[..33]).unwrap_err();
        assert!(e.contains("found 33 bytes"), "{e}");
        let mut not04 = p.clone();
        not04[0] = 0x05;
        let e = public_point(PointEncoding::UncompressedPoint, &not04).unwrap_err();
        assert!(e.contains("starting 05"), "{e}");
        // A template without its point.
        let e = public_point(PointEncoding::PublicKeyTemplate, &[0x7F, 0x49, 0x00]).unwrap_err();
        assert!(e.contains("no public point (86)"), "{e}");
        assert!(public_point(PointEncoding::PublicKeyTemplate, &[]).is_err());
    }

    #[test]
    fn a_signature_comes_out_of_either_encoding() {
        let r = [0x81u8; 32];
        let s = [0x01u8; 31];
        // r needs a leading zero (high bit), s is one byte short.
        let mut der = vec![0x30, 2 + 33 + 2 + 31, 0x02, 33, 0x00];
        der.extend_from_slice(&r);
        der.extend_from_slice(&[0x02, 31]);
        der.extend_from_slice(&s);
        let raw = raw_signature(SignatureEncoding::Der, &der).unwrap();
        assert_eq!(&raw[..32], &r);
        assert_eq!(raw[32], 0);
        assert_eq!(&raw[33..], &s);
        assert_eq!(
            raw_signature(SignatureEncoding::Raw, &[7; 64]).unwrap(),
            vec![7; 64]
        );
    }

    #[test]
    fn a_signature_in_the_wrong_form_is_refused_with_what_was_expected() {
        // Raw bytes given to the DER reading, and DER to the raw one.
        let e = raw_signature(SignatureEncoding::Der, &[7; 64]).unwrap_err();
        assert!(e.contains("DER ECDSA-Sig-Value"), "{e}");
        let der = crate::pki::raw_to_der_sig(&[5; 64]).unwrap();
        let e = raw_signature(SignatureEncoding::Raw, &der).unwrap_err();
        assert!(e.contains("expected 64 bytes"), "{e}");
        // Not strict DER: a negative r, an empty sequence, trailing bytes.
        assert!(raw_signature(SignatureEncoding::Der, &[0x30, 6, 2, 1, 0x80, 2, 1, 1]).is_err());
        assert!(raw_signature(SignatureEncoding::Der, &[0x30, 0x00]).is_err());
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(raw_signature(SignatureEncoding::Der, &trailing).is_err());
        assert!(raw_signature(SignatureEncoding::Der, &[]).is_err());
    }

    #[test]
    fn der_and_raw_agree_on_random_signatures() {
        use ring::rand::SecureRandom;
        let rng = ring::rand::SystemRandom::new();
        for _ in 0..200 {
            let mut raw = [0u8; 64];
            rng.fill(&mut raw).unwrap();
            // r and s are never zero.
            raw[31] |= 1;
            raw[63] |= 1;
            let der = crate::pki::raw_to_der_sig(&raw).unwrap();
            assert_eq!(raw_signature(SignatureEncoding::Der, &der).unwrap(), raw);
        }
    }

    #[test]
    fn names_round_trip() {
        for e in [
            PointEncoding::PublicKeyTemplate,
            PointEncoding::UncompressedPoint,
        ] {
            assert_eq!(PointEncoding::from_name(e.name()), Some(e));
        }
        for e in [SignatureEncoding::Raw, SignatureEncoding::Der] {
            assert_eq!(SignatureEncoding::from_name(e.name()), Some(e));
        }
        assert_eq!(PointEncoding::from_name("7F49"), None);
        assert_eq!(SignatureEncoding::from_name("DER"), None);
    }
}
