//! Status words (ISO/IEC 7816-4:2013 §5.6, tables 5 and 6).
//!
//! Every SW1-SW2 the project acts on is a variant, so code matches on
//! `StatusWord::WrongPin { retries }` instead of comparing `0x63C0 | n`.
//! Anything else falls back to `Other(sw1, sw2)`; the conversion is lossless
//! both ways (`to_u16(from(x)) == x` for every x, a unit test checks all 65,536).

use serde::Serialize;

/// An ISO 7816-4 status word with its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind")]
pub enum StatusWord {
    /// 9000: normal processing.
    Ok,
    /// 61xx: `available` more bytes can be fetched with GET RESPONSE (xx=00: 256 or more).
    MoreData { available: u16 },
    /// 6281: part of the returned data may be corrupted.
    DataMayBeCorrupted,
    /// 6282: end of file or record reached before reading Ne bytes.
    EndOfFile,
    /// 6283: selected file deactivated.
    FileDeactivated,
    /// 6284: file control information not formatted per ISO 7816-4.
    BadFciFormat,
    /// 6285: selected file in termination state.
    FileTerminated,
    /// 62xx other: warning, non-volatile memory unchanged.
    WarningUnchanged(u8),
    /// 6381: file filled up by the last write.
    FileFilledUp,
    /// 63Cx: verification failed, `retries` tries left.
    WrongPin { retries: u8 },
    /// 63xx other: warning, non-volatile memory changed.
    WarningChanged(u8),
    /// 64xx: execution error, non-volatile memory unchanged.
    ExecutionError(u8),
    /// 6581: memory failure.
    MemoryFailure,
    /// 65xx other: execution error, non-volatile memory changed.
    ExecutionErrorChanged(u8),
    /// 6700: wrong length.
    WrongLength,
    /// 6881: logical channel not supported.
    LogicalChannelNotSupported,
    /// 6882: secure messaging not supported.
    SecureMessagingNotSupported,
    /// 6883: last command of the chain expected.
    LastCommandOfChainExpected,
    /// 6884: command chaining not supported.
    ChainingNotSupported,
    /// 6981: command incompatible with file structure.
    IncompatibleFileStructure,
    /// 6982: security status not satisfied.
    SecurityNotSatisfied,
    /// 6983: authentication method blocked.
    AuthenticationBlocked,
    /// 6984: reference data not usable.
    ReferenceDataNotUsable,
    /// 6985: conditions of use not satisfied.
    ConditionsNotSatisfied,
    /// 6986: command not allowed (no current EF).
    NoCurrentEf,
    /// 6987: expected secure messaging data objects missing.
    SmObjectsMissing,
    /// 6988: incorrect secure messaging data objects.
    SmObjectsIncorrect,
    /// 6A80: incorrect parameters in the command data field.
    IncorrectData,
    /// 6A81: function not supported.
    FunctionNotSupported,
    /// 6A82: file or application not found.
    FileNotFound,
    /// 6A83: record not found.
    RecordNotFound,
    /// 6A84: not enough memory space in the file.
    NotEnoughMemory,
    /// 6A85: Nc inconsistent with TLV structure.
    LcInconsistentWithTlv,
    /// 6A86: incorrect parameters P1-P2.
    IncorrectP1P2,
    /// 6A87: Nc inconsistent with parameters P1-P2.
    LcInconsistentWithP1P2,
    /// 6A88: referenced data or reference data not found.
    ReferenceNotFound,
    /// 6A89: file already exists.
    FileExists,
    /// 6A8A: DF name already exists.
    DfNameExists,
    /// 6B00: wrong parameters P1-P2 (offset outside the EF).
    WrongP1P2,
    /// 6Cxx: wrong Le; `exact` is the number of bytes the card has (xx=00: 256).
    WrongLe { exact: u16 },
    /// 6D00: instruction code not supported or invalid.
    InsNotSupported,
    /// 6E00: class not supported.
    ClaNotSupported,
    /// 6F00: no precise diagnosis.
    NoPreciseDiagnosis,
    /// Any other status word.
    Other { sw1: u8, sw2: u8 },
}

use StatusWord::*;

impl StatusWord {
    pub fn new(sw1: u8, sw2: u8) -> StatusWord {
        let n256 = |x: u8| if x == 0 { 256 } else { x as u16 };
        match (sw1, sw2) {
            (0x90, 0x00) => Ok,
            (0x61, x) => MoreData { available: n256(x) },
            (0x62, 0x81) => DataMayBeCorrupted,
            (0x62, 0x82) => EndOfFile,
            (0x62, 0x83) => FileDeactivated,
            (0x62, 0x84) => BadFciFormat,
            (0x62, 0x85) => FileTerminated,
            (0x62, x) => WarningUnchanged(x),
            (0x63, 0x81) => FileFilledUp,
            (0x63, x) if x & 0xF0 == 0xC0 => WrongPin { retries: x & 0x0F },
            (0x63, x) => WarningChanged(x),
            (0x64, x) => ExecutionError(x),
            (0x65, 0x81) => MemoryFailure,
            (0x65, x) => ExecutionErrorChanged(x),
            (0x67, 0x00) => WrongLength,
            (0x68, 0x81) => LogicalChannelNotSupported,
            (0x68, 0x82) => SecureMessagingNotSupported,
            (0x68, 0x83) => LastCommandOfChainExpected,
            (0x68, 0x84) => ChainingNotSupported,
            (0x69, 0x81) => IncompatibleFileStructure,
            (0x69, 0x82) => SecurityNotSatisfied,
            (0x69, 0x83) => AuthenticationBlocked,
            (0x69, 0x84) => ReferenceDataNotUsable,
            (0x69, 0x85) => ConditionsNotSatisfied,
            (0x69, 0x86) => NoCurrentEf,
            (0x69, 0x87) => SmObjectsMissing,
            (0x69, 0x88) => SmObjectsIncorrect,
            (0x6A, 0x80) => IncorrectData,
            (0x6A, 0x81) => FunctionNotSupported,
            (0x6A, 0x82) => FileNotFound,
            (0x6A, 0x83) => RecordNotFound,
            (0x6A, 0x84) => NotEnoughMemory,
            (0x6A, 0x85) => LcInconsistentWithTlv,
            (0x6A, 0x86) => IncorrectP1P2,
            (0x6A, 0x87) => LcInconsistentWithP1P2,
            (0x6A, 0x88) => ReferenceNotFound,
            (0x6A, 0x89) => FileExists,
            (0x6A, 0x8A) => DfNameExists,
            (0x6B, 0x00) => WrongP1P2,
            (0x6C, x) => WrongLe { exact: n256(x) },
            (0x6D, 0x00) => InsNotSupported,
            (0x6E, 0x00) => ClaNotSupported,
            (0x6F, 0x00) => NoPreciseDiagnosis,
            (sw1, sw2) => Other { sw1, sw2 },
        }
    }

    pub fn from_u16(sw: u16) -> StatusWord {
        let [a, b] = sw.to_be_bytes();
        StatusWord::new(a, b)
    }

    /// SW1 and SW2 as sent by the card.
    pub fn bytes(self) -> [u8; 2] {
        let x = |n: u16| (n & 0xFF) as u8; // 256 encodes as 00
        match self {
            Ok => [0x90, 0x00],
            MoreData { available } => [0x61, x(available)],
            DataMayBeCorrupted => [0x62, 0x81],
            EndOfFile => [0x62, 0x82],
            FileDeactivated => [0x62, 0x83],
            BadFciFormat => [0x62, 0x84],
            FileTerminated => [0x62, 0x85],
            WarningUnchanged(v) => [0x62, v],
            FileFilledUp => [0x63, 0x81],
            WrongPin { retries } => [0x63, 0xC0 | (retries & 0x0F)],
            WarningChanged(v) => [0x63, v],
            ExecutionError(v) => [0x64, v],
            MemoryFailure => [0x65, 0x81],
            ExecutionErrorChanged(v) => [0x65, v],
            WrongLength => [0x67, 0x00],
            LogicalChannelNotSupported => [0x68, 0x81],
            SecureMessagingNotSupported => [0x68, 0x82],
            LastCommandOfChainExpected => [0x68, 0x83],
            ChainingNotSupported => [0x68, 0x84],
            IncompatibleFileStructure => [0x69, 0x81],
            SecurityNotSatisfied => [0x69, 0x82],
            AuthenticationBlocked => [0x69, 0x83],
            ReferenceDataNotUsable => [0x69, 0x84],
            ConditionsNotSatisfied => [0x69, 0x85],
            NoCurrentEf => [0x69, 0x86],
            SmObjectsMissing => [0x69, 0x87],
            SmObjectsIncorrect => [0x69, 0x88],
            IncorrectData => [0x6A, 0x80],
            FunctionNotSupported => [0x6A, 0x81],
            FileNotFound => [0x6A, 0x82],
            RecordNotFound => [0x6A, 0x83],
            NotEnoughMemory => [0x6A, 0x84],
            LcInconsistentWithTlv => [0x6A, 0x85],
            IncorrectP1P2 => [0x6A, 0x86],
            LcInconsistentWithP1P2 => [0x6A, 0x87],
            ReferenceNotFound => [0x6A, 0x88],
            FileExists => [0x6A, 0x89],
            DfNameExists => [0x6A, 0x8A],
            WrongP1P2 => [0x6B, 0x00],
            WrongLe { exact } => [0x6C, x(exact)],
            InsNotSupported => [0x6D, 0x00],
            ClaNotSupported => [0x6E, 0x00],
            NoPreciseDiagnosis => [0x6F, 0x00],
            Other { sw1, sw2 } => [sw1, sw2],
        }
    }

    pub fn to_u16(self) -> u16 {
        u16::from_be_bytes(self.bytes())
    }

    /// The status words GlobalPlatform secure messaging protects with an
    /// R-MAC (GPC 2.3 Amd D §6.2.5): 9000 and the warnings 62xx and 63xx.
    /// Any other status word goes out alone, without data or R-MAC.
    pub fn is_success_or_warning(self) -> bool {
        self.is_ok() || self.is_warning()
    }

    /// 9000 only. Warnings (62xx, 63xx) are not success: the caller must decide.
    pub fn is_ok(self) -> bool {
        self == Ok
    }

    /// 62xx and 63xx: processed with a warning.
    pub fn is_warning(self) -> bool {
        matches!(self.bytes()[0], 0x62 | 0x63)
    }

    /// The ISO 7816-4 meaning, in words.
    pub fn meaning(self) -> String {
        let s: &str = match self {
            Ok => "normal processing",
            MoreData { available } => {
                return format!("{available} more bytes available (GET RESPONSE)")
            }
            DataMayBeCorrupted => "warning: part of the returned data may be corrupted",
            EndOfFile => "warning: end of file reached before reading Le bytes",
            FileDeactivated => "warning: selected file deactivated",
            BadFciFormat => "warning: file control information not formatted per ISO 7816-4",
            FileTerminated => "warning: selected file in termination state",
            WarningUnchanged(_) => "warning: non-volatile memory unchanged",
            FileFilledUp => "warning: file filled up by the last write",
            WrongPin { retries } => {
                return format!("verification failed, {retries} tries left");
            }
            WarningChanged(_) => "warning: non-volatile memory changed",
            ExecutionError(_) => "execution error: non-volatile memory unchanged",
            MemoryFailure => "execution error: memory failure",
            ExecutionErrorChanged(_) => "execution error: non-volatile memory changed",
            WrongLength => "wrong length",
            LogicalChannelNotSupported => "logical channel not supported",
            SecureMessagingNotSupported => "secure messaging not supported",
            LastCommandOfChainExpected => "last command of the chain expected",
            ChainingNotSupported => "command chaining not supported",
            IncompatibleFileStructure => "command incompatible with file structure",
            SecurityNotSatisfied => "security status not satisfied",
            AuthenticationBlocked => "authentication method blocked",
            ReferenceDataNotUsable => "reference data not usable",
            ConditionsNotSatisfied => "conditions of use not satisfied",
            NoCurrentEf => "command not allowed (no current EF)",
            SmObjectsMissing => "expected secure messaging data objects missing",
            SmObjectsIncorrect => "incorrect secure messaging data objects",
            IncorrectData => "incorrect parameters in the command data field",
            FunctionNotSupported => "function not supported",
            FileNotFound => "file or application not found",
            RecordNotFound => "record not found",
            NotEnoughMemory => "not enough memory space in the file",
            LcInconsistentWithTlv => "Nc inconsistent with TLV structure",
            IncorrectP1P2 => "incorrect parameters P1-P2",
            LcInconsistentWithP1P2 => "Nc inconsistent with parameters P1-P2",
            ReferenceNotFound => "referenced data or reference data not found",
            FileExists => "file already exists",
            DfNameExists => "DF name already exists",
            WrongP1P2 => "wrong parameters P1-P2 (offset outside the EF)",
            WrongLe { exact } => return format!("wrong Le: the card has {exact} bytes"),
            InsNotSupported => "instruction code not supported or invalid",
            ClaNotSupported => "class not supported",
            NoPreciseDiagnosis => "no precise diagnosis",
            Other { sw1, .. } => match sw1 {
                0x64 => "execution error: non-volatile memory unchanged",
                0x66 => "security-related issue",
                0x67 => "wrong length",
                0x68 => "functions in CLA not supported",
                0x69 => "command not allowed",
                0x6A | 0x6B => "wrong parameters P1-P2",
                0x6C => "wrong Le",
                0x90..=0x9F => "proprietary status",
                _ => "unknown status word",
            },
        };
        s.to_string()
    }
}

impl From<u16> for StatusWord {
    fn from(sw: u16) -> StatusWord {
        StatusWord::from_u16(sw)
    }
}

impl PartialEq<u16> for StatusWord {
    fn eq(&self, other: &u16) -> bool {
        self.to_u16() == *other
    }
}

impl std::fmt::Display for StatusWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b] = self.bytes();
        write!(f, "{a:02X}{b:02X} ({})", self.meaning())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_word_round_trips() {
        for sw in 0..=u16::MAX {
            assert_eq!(StatusWord::from_u16(sw).to_u16(), sw, "{sw:04X}");
        }
    }

    #[test]
    fn named_meanings() {
        assert_eq!(StatusWord::from_u16(0x9000), Ok);
        assert_eq!(StatusWord::from_u16(0x6110), MoreData { available: 16 });
        assert_eq!(StatusWord::from_u16(0x6100), MoreData { available: 256 });
        assert_eq!(StatusWord::from_u16(0x6C08), WrongLe { exact: 8 });
        assert_eq!(StatusWord::from_u16(0x63C2), WrongPin { retries: 2 });
        assert_eq!(StatusWord::from_u16(0x6982), SecurityNotSatisfied);
        assert_eq!(StatusWord::from_u16(0x6983), AuthenticationBlocked);
        assert_eq!(StatusWord::from_u16(0x6A82), FileNotFound);
        assert_eq!(StatusWord::from_u16(0x6A86), IncorrectP1P2);
        assert_eq!(StatusWord::from_u16(0x6D00), InsNotSupported);
        assert_eq!(StatusWord::from_u16(0x6E00), ClaNotSupported);
        assert_eq!(
            StatusWord::from_u16(0x9123),
            Other {
                sw1: 0x91,
                sw2: 0x23
            }
        );
        assert_eq!(
            StatusWord::from_u16(0x63C2).to_string(),
            "63C2 (verification failed, 2 tries left)"
        );
        assert!(StatusWord::from_u16(0x6282).is_warning());
        assert!(!StatusWord::from_u16(0x6282).is_ok());
    }
}
