//! The PIN policy the holder's new PINs must meet at the counter.
//!
//! The card itself only checks lengths (the reference card takes 6–12
//! digits); everything that makes a PIN guessable is refused here, before
//! the card sees it, with a reason the holder can act on:
//! - only decimal digits, and a length within the policy's bounds;
//! - not all the same digit (`111111`);
//! - not a run of consecutive digits going up or down (`123456`,
//!   `876543`, also wrapping round: `890123`);
//! - not the PIN's transport value, nor any other transport value of the
//!   card (they are derived from the national ID with the issuer key, and
//!   whoever handled the card in transit may know them);
//! - the signature PIN not equal to the ID PIN (they protect different
//!   things: one unlocks the card, the other signs in the holder's name).
//!
//! The default length is 6–8 digits for both PINs. A longer maximum is
//! allowed up to what the card accepts (12 on the reference card).

use crate::secret::Secret;

/// Bounds and rules for the holder's PINs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinPolicy {
    pub min_len: usize,
    pub max_len: usize,
}

impl Default for PinPolicy {
    fn default() -> Self {
        PinPolicy {
            min_len: 6,
            max_len: 8,
        }
    }
}

/// What the card accepts at most, whatever the policy says.
pub const CARD_MIN_LEN: usize = 6;
pub const CARD_MAX_LEN: usize = 12;

impl PinPolicy {
    /// Parse `6-8` (or `6`) from the command line.
    pub fn parse_length(s: &str) -> Result<PinPolicy, String> {
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (s.trim(), s.trim()),
        };
        let n = |t: &str| -> Result<usize, String> {
            t.parse::<usize>()
                .map_err(|_| format!("--pin-length {s:?}: expected MIN-MAX in digits, e.g. 6-8"))
        };
        let (min, max) = (n(a)?, n(b)?);
        if min > max {
            return Err(format!(
                "--pin-length {s:?}: the minimum {min} is above the maximum {max}"
            ));
        }
        if min < CARD_MIN_LEN || max > CARD_MAX_LEN {
            return Err(format!(
                "--pin-length {s:?}: the card takes PINs of {CARD_MIN_LEN} to {CARD_MAX_LEN} digits"
            ));
        }
        Ok(PinPolicy {
            min_len: min,
            max_len: max,
        })
    }

    /// `6–8 digits`
    pub fn describe(&self) -> String {
        if self.min_len == self.max_len {
            format!("{} digits", self.min_len)
        } else {
            format!("{}–{} digits", self.min_len, self.max_len)
        }
    }

    /// Check a candidate PIN. `forbidden` are values it must not equal
    /// (transport values, the other PIN), each with the reason to give.
    /// The reason never contains the PIN.
    pub fn check(&self, pin: &Secret, forbidden: &[(&Secret, &str)]) -> Result<(), String> {
        let b = pin.expose();
        if b.is_empty() {
            return Err("nothing was entered".into());
        }
        if !b.iter().all(u8::is_ascii_digit) {
            return Err("only the digits 0–9 are allowed".into());
        }
        if b.len() < self.min_len || b.len() > self.max_len {
            return Err(format!(
                "it has {} digits; the PIN must have {}",
                b.len(),
                self.describe()
            ));
        }
        if b.windows(2).all(|w| matches!(w, [x, y] if x == y)) {
            return Err("all its digits are the same".into());
        }
        let step = |d: i16| {
            b.windows(2).all(|w| match w {
                [x, y] => (i16::from(*y) - i16::from(*x) - d).rem_euclid(10) == 0,
                _ => false,
            })
        };
        if step(1) {
            return Err("it is a run of ascending digits".into());
        }
        if step(-1) {
            return Err("it is a run of descending digits".into());
        }
        for (f, why) in forbidden {
            if crate::crypto::ct_eq(f.expose(), b) {
                return Err((*why).to_string());
            }
        }
        Ok(())
    }

    /// Whether `pin`, refused by [`check`](Self::check), broke only the
    /// rules a supervisor may waive for a holder who insists: a guessable
    /// PIN (one digit repeated, a run). Length, digits only and the
    /// forbidden values (transport PINs, the other PIN) are never waived.
    pub fn waivable(&self, pin: &Secret, forbidden: &[(&Secret, &str)]) -> bool {
        let b = pin.expose();
        self.check(pin, forbidden).is_err()
            && !b.is_empty()
            && b.iter().all(u8::is_ascii_digit)
            && (self.min_len..=self.max_len).contains(&b.len())
            && !forbidden
                .iter()
                .any(|(f, _)| crate::crypto::ct_eq(f.expose(), b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_guessable_pins_are_waivable() {
        let p = PinPolicy::parse_length("6-8").expect("policy");
        let s = |x: &str| Secret::new(x.as_bytes().to_vec());
        let t = s("482913");
        let forbidden = [(&t, "it is a transport PIN of this card")];
        assert!(p.waivable(&s("123456"), &forbidden));
        assert!(p.waivable(&s("777777"), &forbidden));
        assert!(
            !p.waivable(&s("480913"), &forbidden),
            "a good PIN needs no waiver"
        );
        assert!(!p.waivable(&s("482913"), &forbidden), "a transport PIN");
        assert!(!p.waivable(&s("12345"), &forbidden), "too short");
        assert!(!p.waivable(&s("12345a"), &forbidden), "not digits");
        let t = s("123456");
        assert!(!p.waivable(&t, &[(&t, "it is the same as the ID PIN")]));
    }

    fn s(x: &str) -> Secret {
        Secret::new(x.as_bytes().to_vec())
    }

    #[test]
    fn good_pins_pass() {
        let p = PinPolicy::default();
        for pin in ["480913", "2468013", "73920461", "112358"] {
            assert_eq!(p.check(&s(pin), &[]), Ok(()), "{pin}");
        }
    }

    #[test]
    fn each_rule_refuses_with_its_reason() {
        let p = PinPolicy::default();
        let transport = s("480913");
        let cases = [
            ("", "nothing"),
            ("48091a", "only the digits"),
            ("48091", "5 digits"),
            ("480913775", "9 digits"),
            ("777777", "same"),
            ("123456", "ascending"),
            ("890123", "ascending"),
            ("98765432", "descending"),
            ("210987", "descending"),
            ("480913", "transport"),
        ];
        for (pin, want) in cases {
            let e = p
                .check(&s(pin), &[(&transport, "it is the transport PIN")])
                .expect_err(pin);
            assert!(e.contains(want), "{pin}: {e}");
            assert!(
                pin.is_empty() || !e.contains(pin),
                "the reason quotes the PIN: {e}"
            );
        }
    }

    #[test]
    fn lengths_parse_within_the_card() {
        assert_eq!(
            PinPolicy::parse_length("6-10"),
            Ok(PinPolicy {
                min_len: 6,
                max_len: 10
            })
        );
        assert_eq!(
            PinPolicy::parse_length("8").map(|p| p.describe()),
            Ok("8 digits".into())
        );
        assert!(PinPolicy::parse_length("4-8").is_err());
        assert!(PinPolicy::parse_length("8-6").is_err());
        assert!(PinPolicy::parse_length("6-13").is_err());
        assert!(PinPolicy::parse_length("six").is_err());
    }
}
