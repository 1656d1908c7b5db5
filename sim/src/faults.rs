//! Faults a test can inject into a simulated card's connection.
//!
//! These live on the card side of the wire (they change what the *card*
//! does), and both connectors honour them: the vpcd connector used through
//! pcscd and the in-process transport. Numbering is 1-based over the APDUs
//! the card receives in its current insertion, not counting vpcd control
//! messages.

use std::time::Duration;

/// What the card does wrong, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// The card is pulled when APDU number k arrives: that APDU is not
    /// executed and never answered, and the connection closes.
    pub remove_at: Option<u64>,
    /// Every answer is held back this long (a slow card).
    pub delay: Option<Duration>,
    /// From APDU number k on, the card receives but never answers (a mute card).
    pub mute_from: Option<u64>,
}

/// What to do with the APDU number `n` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    Answer,
    Remove,
    Mute,
}

impl Faults {
    pub fn none() -> Faults {
        Faults::default()
    }

    pub fn action_for(&self, n: u64) -> FaultAction {
        if self.remove_at == Some(n) {
            FaultAction::Remove
        } else if self.mute_from.is_some_and(|k| n >= k) {
            FaultAction::Mute
        } else {
            FaultAction::Answer
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_by_index() {
        let f = Faults {
            remove_at: Some(3),
            mute_from: Some(5),
            delay: None,
        };
        assert_eq!(f.action_for(1), FaultAction::Answer);
        assert_eq!(f.action_for(3), FaultAction::Remove);
        assert_eq!(f.action_for(4), FaultAction::Answer);
        assert_eq!(f.action_for(5), FaultAction::Mute);
        assert_eq!(f.action_for(9), FaultAction::Mute);
        assert_eq!(Faults::none().action_for(1), FaultAction::Answer);
    }
}
