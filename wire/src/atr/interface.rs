//! Meaning of the interface bytes: code tables and the transmission
//! parameters derived from them (ISO/IEC 7816-3:2006 §8.3, §10.2, §11.4).
//!
//! Every value here is computed once by [`super::parse`] from the interface
//! groups; nothing in this file looks at raw input positions.

use serde::Serialize;

/// Conversion table for Fi (bits 8-5 of TA1): `(Fi, f(max) in kHz)`, `None` = RFU.
/// ISO/IEC 7816-3:2006 §8.3, Table 7.
const FI_TABLE: [Option<(u16, u32)>; 16] = [
    Some((372, 4_000)),
    Some((372, 5_000)),
    Some((558, 6_000)),
    Some((744, 8_000)),
    Some((1116, 12_000)),
    Some((1488, 16_000)),
    Some((1860, 20_000)),
    None,
    None,
    Some((512, 5_000)),
    Some((768, 7_500)),
    Some((1024, 10_000)),
    Some((1536, 15_000)),
    Some((2048, 20_000)),
    None,
    None,
];

/// Conversion table for Di (bits 4-1 of TA1), `None` = RFU.
/// ISO/IEC 7816-3:2006 §8.3, Table 8.
const DI_TABLE: [Option<u8>; 16] = [
    None,
    Some(1),
    Some(2),
    Some(4),
    Some(8),
    Some(16),
    Some(32),
    Some(64),
    Some(12),
    Some(20),
    None,
    None,
    None,
    None,
    None,
    None,
];

/// Fi and f(max) for a 4-bit FI code, `None` when RFU.
pub fn fi_lookup(code: u8) -> Option<(u16, u32)> {
    FI_TABLE.get(usize::from(code & 0x0F)).copied().flatten()
}

/// Di for a 4-bit DI code, `None` when RFU.
pub fn di_lookup(code: u8) -> Option<u8> {
    DI_TABLE.get(usize::from(code & 0x0F)).copied().flatten()
}

/// Name of a protocol type T as coded in TDi / TA2 (ISO/IEC 7816-3:2006 §8.2.3).
pub fn protocol_name(t: u8) -> &'static str {
    match t {
        0 => "T=0, half-duplex character transmission",
        1 => "T=1, half-duplex block transmission",
        2 | 3 => "reserved for future full-duplex operations",
        4 => "reserved for an enhanced half-duplex character transmission",
        5..=13 => "reserved for future use by ISO/IEC JTC 1/SC 17",
        14 => "T=14, not standardized by ISO/IEC (proprietary)",
        _ => "T=15, qualifies global interface bytes (not a transmission protocol)",
    }
}

/// Clock rate conversion and baud rate adjustment from TA1
/// (ISO/IEC 7816-3:2006 §8.3: Fi, f(max), Di; defaults Fi = 372, f(max) = 5 MHz, Di = 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClockRate {
    /// TA1 as transmitted; `None` when absent (defaults apply).
    pub ta1: Option<u8>,
    /// The byte in force: TA1, or 0x11 by default.
    pub code: u8,
    /// FI code (bits 8-5).
    pub fi_code: u8,
    /// Clock rate conversion integer Fi; `None` when the FI code is RFU.
    pub fi: Option<u16>,
    /// Maximum clock frequency f(max) in kHz; `None` when RFU.
    pub f_max_khz: Option<u32>,
    /// Maximum clock frequency f(max) in MHz; `None` when RFU.
    pub f_max_mhz: Option<f64>,
    /// DI code (bits 4-1).
    pub di_code: u8,
    /// Baud rate adjustment integer Di; `None` when the DI code is RFU.
    pub di: Option<u8>,
    /// True when the FI or DI code is RFU (flagged, not a defect).
    pub rfu: bool,
    /// Bits per second at f(max): f(max) × Di / Fi.
    pub baud_at_f_max: Option<f64>,
    /// Elementary time unit at f(max) in microseconds: Fi / (Di × f(max)).
    pub etu_us_at_f_max: Option<f64>,
}

impl ClockRate {
    pub(super) fn from_ta1(ta1: Option<u8>) -> ClockRate {
        let code = ta1.unwrap_or(0x11);
        let fi_code = code >> 4;
        let di_code = code & 0x0F;
        let fi_entry = fi_lookup(fi_code);
        let di = di_lookup(di_code);
        let fi = fi_entry.map(|(fi, _)| fi);
        let f_max_khz = fi_entry.map(|(_, f)| f);
        let (baud, etu) = match (fi, f_max_khz, di) {
            (Some(fi), Some(f), Some(di)) => {
                let hz = f64::from(f) * 1000.0;
                let baud = hz * f64::from(di) / f64::from(fi);
                (Some(baud), Some(1_000_000.0 / baud))
            }
            _ => (None, None),
        };
        ClockRate {
            ta1,
            code,
            fi_code,
            fi,
            f_max_khz,
            f_max_mhz: f_max_khz.map(|k| f64::from(k) / 1000.0),
            di_code,
            di,
            rfu: fi.is_none() || di.is_none(),
            baud_at_f_max: baud,
            etu_us_at_f_max: etu,
        }
    }

    /// f(max) in Hz, when defined.
    pub(super) fn f_max_hz(&self) -> Option<f64> {
        self.f_max_khz.map(|k| f64::from(k) * 1000.0)
    }
}

/// TA2, the specific mode byte (ISO/IEC 7816-3:2006 §8.3).
/// Its presence means the card is in specific mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecificMode {
    /// TA2 as transmitted.
    pub value: u8,
    /// Protocol T to use in specific mode (bits 4-1).
    pub protocol: u8,
    /// Bit 8 = 0: the card can change between negotiable and specific mode
    /// (e.g. after a warm reset); bit 8 = 1: it cannot.
    pub can_change_mode: bool,
    /// Bit 5 = 1: implicit transmission parameters, not those of TA1.
    pub implicit_parameters: bool,
    /// Bits 7-6 are RFU and should be 0; true when they are not.
    pub rfu_bits_set: bool,
}

impl SpecificMode {
    pub(super) fn from_ta2(value: u8) -> SpecificMode {
        SpecificMode {
            value,
            protocol: value & 0x0F,
            can_change_mode: value & 0x80 == 0,
            implicit_parameters: value & 0x10 != 0,
            rfu_bits_set: value & 0x60 != 0,
        }
    }
}

/// TB1 / TB2: programming voltage VPP on contact C6. Deprecated since
/// ISO/IEC 7816-3:2006 (§8.3: the card shall not send them, the interface
/// device shall ignore them); decoded here with the 1997 edition's meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegacyVpp {
    /// TB1 as transmitted.
    pub tb1: Option<u8>,
    /// TB2 as transmitted.
    pub tb2: Option<u8>,
    /// False when TB1 codes PI1 = 0 (VPP not connected) and TB2 is absent.
    pub connected: bool,
    /// PI1 (TB1 bits 5-1): VPP in volts.
    pub pi1_volts: Option<u8>,
    /// II (TB1 bits 7-6): maximum programming current in mA (`None` if RFU or TB1 absent).
    pub max_current_ma: Option<u8>,
    /// PI2 (TB2): VPP in tenths of a volt, overrides PI1.
    pub pi2_decivolts: Option<u8>,
}

impl LegacyVpp {
    pub(super) fn from_bytes(tb1: Option<u8>, tb2: Option<u8>) -> Option<LegacyVpp> {
        if tb1.is_none() && tb2.is_none() {
            return None;
        }
        let pi1 = tb1.map(|b| b & 0x1F);
        let max_current_ma = tb1.and_then(|b| match (b >> 5) & 0x03 {
            0 => Some(25),
            1 => Some(50),
            2 => Some(100),
            _ => None,
        });
        Some(LegacyVpp {
            tb1,
            tb2,
            connected: tb2.is_some() || pi1.is_some_and(|p| p != 0),
            pi1_volts: pi1.filter(|p| *p != 0),
            max_current_ma,
            pi2_decivolts: tb2,
        })
    }
}

/// TC1: extra guard time integer N (ISO/IEC 7816-3:2006 §8.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtraGuardTime {
    /// TC1 as transmitted.
    pub tc1: Option<u8>,
    /// N in force (default 0).
    pub n: u8,
    /// N = 255: minimum guard time, 12 etu for T=0 (and PPS), 11 etu for T=1.
    pub minimum: bool,
    /// Guard time in etu between two characters sent to the card with T=0
    /// (12 + N, or 12 when N = 255).
    pub guard_time_t0_etu: u16,
    /// Same for T=1 (12 + N, or 11 when N = 255).
    pub guard_time_t1_etu: u16,
}

impl ExtraGuardTime {
    pub(super) fn from_tc1(tc1: Option<u8>) -> ExtraGuardTime {
        let n = tc1.unwrap_or(0);
        let minimum = n == 0xFF;
        ExtraGuardTime {
            tc1,
            n,
            minimum,
            guard_time_t0_etu: if minimum { 12 } else { 12 + u16::from(n) },
            guard_time_t1_etu: if minimum { 11 } else { 12 + u16::from(n) },
        }
    }
}

/// Parameters of protocol T=0 (ISO/IEC 7816-3:2006 §10.2): the waiting
/// time WT (called work waiting time, WWT, in earlier editions) from the
/// waiting time integer WI in TC2.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct T0Params {
    /// TC2 as transmitted.
    pub tc2: Option<u8>,
    /// Waiting time integer WI in force (default 10).
    pub wi: u8,
    /// WI = 0 is RFU (flagged).
    pub wi_rfu: bool,
    /// WT = WI × 960 × Fi clock cycles; `None` when Fi is RFU.
    pub wt_clock_cycles: Option<u32>,
    /// WT in milliseconds at f(max); `None` when Fi or f(max) is RFU.
    pub wt_ms_at_f_max: Option<f64>,
}

impl T0Params {
    pub(super) fn new(tc2: Option<u8>, clock: &ClockRate) -> T0Params {
        let wi = tc2.unwrap_or(10);
        let cycles = clock.fi.map(|fi| u32::from(wi) * 960 * u32::from(fi));
        let ms = match (cycles, clock.f_max_hz()) {
            (Some(c), Some(hz)) => Some(f64::from(c) / hz * 1000.0),
            _ => None,
        };
        T0Params {
            tc2,
            wi,
            wi_rfu: wi == 0,
            wt_clock_cycles: cycles,
            wt_ms_at_f_max: ms,
        }
    }
}

/// Error detection code of T=1 (ISO/IEC 7816-3:2006 §11.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorDetection {
    /// Longitudinal redundancy check, 1 byte (default).
    Lrc,
    /// Cyclic redundancy check, 2 bytes.
    Crc,
}

/// Parameters of protocol T=1 from the first TA, TB and TC following a TDi
/// (i ≥ 2) that indicates T=1 (ISO/IEC 7816-3:2006 §11.4).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct T1Params {
    /// The first TAi (i > 2) for T=1, as transmitted.
    pub ta: Option<u8>,
    /// IFSC in force (default 32). 0x00 and 0xFF are RFU.
    pub ifsc: u8,
    /// True when the IFSC byte is 0x00 or 0xFF (RFU).
    pub ifsc_rfu: bool,
    /// The first TBi (i > 2) for T=1, as transmitted.
    pub tb: Option<u8>,
    /// Block waiting time integer (bits 8-5, default 4); values 10..15 are RFU.
    pub bwi: u8,
    /// True when BWI > 9 (RFU).
    pub bwi_rfu: bool,
    /// Character waiting time integer (bits 4-1, default 13).
    pub cwi: u8,
    /// CWT = (11 + 2^CWI) etu.
    pub cwt_etu: u32,
    /// BWT = 11 etu + 2^BWI × 960 × 372 / f, in milliseconds at f(max).
    pub bwt_ms_at_f_max: Option<f64>,
    /// The first TCi (i > 2) for T=1, as transmitted.
    pub tc: Option<u8>,
    /// Error detection code (bit 1 of that TC, default LRC).
    pub error_detection: ErrorDetection,
    /// True when bits 8-2 of that TC are not 0 (RFU).
    pub tc_rfu_bits_set: bool,
}

impl T1Params {
    pub(super) fn new(
        ta: Option<u8>,
        tb: Option<u8>,
        tc: Option<u8>,
        clock: &ClockRate,
    ) -> T1Params {
        let ifsc = ta.unwrap_or(32);
        let bwi = tb.map_or(4, |b| b >> 4);
        let cwi = tb.map_or(13, |b| b & 0x0F);
        let bwt_ms = match (clock.f_max_hz(), clock.etu_us_at_f_max) {
            (Some(hz), Some(etu_us)) => {
                let wait = f64::from(1u32 << bwi) * 960.0 * 372.0 / hz * 1000.0;
                Some(11.0 * etu_us / 1000.0 + wait)
            }
            _ => None,
        };
        let tcv = tc.unwrap_or(0);
        T1Params {
            ta,
            ifsc,
            ifsc_rfu: ifsc == 0 || ifsc == 0xFF,
            tb,
            bwi,
            bwi_rfu: bwi > 9,
            cwi,
            cwt_etu: 11 + (1u32 << cwi),
            bwt_ms_at_f_max: bwt_ms,
            tc,
            error_detection: if tcv & 0x01 != 0 {
                ErrorDetection::Crc
            } else {
                ErrorDetection::Lrc
            },
            tc_rfu_bits_set: tcv & 0xFE != 0,
        }
    }
}

/// Clock stop indicator X, bits 8-7 of the first TA for T=15
/// (ISO/IEC 7816-3:2006 §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ClockStop {
    /// 00: clock stop not supported.
    NotSupported,
    /// 01: clock may be stopped in state L.
    StateL,
    /// 10: clock may be stopped in state H.
    StateH,
    /// 11: clock may be stopped, no preference.
    NoPreference,
}

/// An operating condition class (ISO/IEC 7816-3:2006 §5.1.3, class indicator Y).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VoltageClass {
    /// Class A, 5 V.
    A,
    /// Class B, 3 V.
    B,
    /// Class C, 1.8 V.
    C,
}

impl VoltageClass {
    /// Nominal supply voltage.
    pub fn nominal(self) -> &'static str {
        match self {
            VoltageClass::A => "5 V",
            VoltageClass::B => "3 V",
            VoltageClass::C => "1.8 V",
        }
    }
}

/// Global parameters qualified by T=15 (ISO/IEC 7816-3:2006 §8.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct T15Params {
    /// The first TAi (i > 2) for T=15, as transmitted.
    pub ta: Option<u8>,
    /// Clock stop indicator (`None` when that TA is absent).
    pub clock_stop: Option<ClockStop>,
    /// Classes accepted by the card (empty when that TA is absent: class A only by default).
    pub classes: Vec<VoltageClass>,
    /// True when class-indicator bits 6-4 (RFU) are set.
    pub class_rfu_bits_set: bool,
    /// The first TBi (i > 2) for T=15: use of contact C6 (SPU), as transmitted.
    pub spu: Option<u8>,
}

impl T15Params {
    pub(super) fn new(ta: Option<u8>, tb: Option<u8>) -> T15Params {
        let clock_stop = ta.map(|b| match b >> 6 {
            0 => ClockStop::NotSupported,
            1 => ClockStop::StateL,
            2 => ClockStop::StateH,
            _ => ClockStop::NoPreference,
        });
        let y = ta.unwrap_or(0) & 0x3F;
        let mut classes = Vec::new();
        for (bit, class) in [
            (0x01, VoltageClass::A),
            (0x02, VoltageClass::B),
            (0x04, VoltageClass::C),
        ] {
            if y & bit != 0 {
                classes.push(class);
            }
        }
        T15Params {
            ta,
            clock_stop,
            classes,
            class_rfu_bits_set: y & 0x38 != 0,
            spu: tb,
        }
    }
}

/// Which protocols the card offers (ISO/IEC 7816-3:2006 §8.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Protocols {
    /// Transmission protocols offered, in the order of the TDi bytes, without
    /// duplicates and without T=15. `[0]` when no TD1 is present.
    pub offered: Vec<u8>,
    /// True when no protocol is indicated, so T=0 applies implicitly.
    pub implicit_t0: bool,
    /// The first offered protocol (the one used after a reset in negotiable mode without PPS).
    pub default_protocol: u8,
    /// True when some TDi indicates T=15 (global interface bytes follow).
    pub global_t15: bool,
    /// True when TCK is mandatory: some TDi indicates a type other than T=0.
    pub tck_required: bool,
}

impl Protocols {
    pub(super) fn from_td_types(types: &[u8]) -> Protocols {
        let mut offered: Vec<u8> = Vec::new();
        for &t in types {
            if t != 15 && !offered.contains(&t) {
                offered.push(t);
            }
        }
        let implicit_t0 = offered.is_empty();
        if implicit_t0 {
            offered.push(0);
        }
        Protocols {
            default_protocol: offered.first().copied().unwrap_or(0),
            offered,
            implicit_t0,
            global_t15: types.contains(&15),
            tck_required: types.iter().any(|&t| t != 0),
        }
    }

    /// True when protocol `t` is offered.
    pub fn offers(&self, t: u8) -> bool {
        self.offered.contains(&t)
    }
}
