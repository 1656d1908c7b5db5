//! Secret bytes: PINs, keys, biometric templates.
//!
//! A secret is a type, not a convention, so that the compiler keeps it out of
//! logs: `Secret` has no `Display`, its `Debug` prints `REDACTED`, and its
//! memory is wiped on drop. The only way to see the bytes is `expose()`, which
//! is easy to grep for in review.

use zeroize::Zeroizing;

/// Bytes that must never appear in a log, trace, error or journal.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(Zeroizing::new(bytes))
    }

    /// The secret bytes. Call only to hand them to the card or to a KDF.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&[u8]> for Secret {
    fn from(b: &[u8]) -> Self {
        Secret::new(b.to_vec())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "REDACTED({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let s = Secret::new(b"123456".to_vec());
        let shown = format!("{s:?} {:#?}", s);
        assert!(!shown.contains("123456"));
        assert!(!shown.contains("31 32"));
        assert!(shown.contains("REDACTED"));
        assert_eq!(s.expose(), b"123456");
    }
}
