//! ATR analysis: decoding an Answer-to-Reset (ISO/IEC 7816-3:2006 §8) and
//! its historical bytes (ISO/IEC 7816-4:2013 §8.1.1), and matching ATRs
//! against the pcsc-tools list of known cards ([`list`]).
//!
//! This module owns everything cardsmith knows about ATRs; the PC/SC layer
//! only hands it bytes. It is shaped around one rule: [`parse`] never fails
//! and never panics. Card ATRs in the field are often slightly wrong
//! (missing or wrong TCK, extra bytes, odd historical bytes), and the person
//! looking at one wants to see *everything* that could be decoded *and*
//! what is wrong, not an error. So [`Atr`] is a complete, immutable record:
//! the structure (TS, T0, interface groups, historical bytes, TCK), every
//! derived value computed once at parse time (protocols, Fi/Di and baud
//! rate, T=0/T=1/T=15 parameters, decoded historical bytes), a note for
//! every byte, and a list of [`Defect`]s. It serializes as such (serde),
//! and [`Atr::describe`] renders it for a human. The module only refers to
//! itself (`self::`/`super::`) so it can be dropped into any crate.

mod defect;
mod describe;
mod historical;
mod interface;
pub mod list;

#[cfg(test)]
mod tests;

use serde::Serialize;

pub use defect::{Defect, InterfaceByteKind, TlvProblem};
pub use historical::{
    CardCapabilities, CardServiceData, CompactTlvObject, DataCoding, EfAccess, Historical,
    PcscStorageCard, SelectionMethods, StatusIndicator, ThirdFunctionTable, TlvContent,
    WriteBehaviour,
};
pub use interface::{
    di_lookup, fi_lookup, protocol_name, ClockRate, ClockStop, ErrorDetection, ExtraGuardTime,
    LegacyVpp, Protocols, SpecificMode, T0Params, T15Params, T1Params, VoltageClass,
};
pub use list::{AtrList, AtrListEntry, AtrListError, SkippedPattern};

/// Maximum length of an ATR: TS plus at most 32 further bytes
/// (ISO/IEC 7816-3:2006 §8.2.1).
pub const MAX_ATR_LEN: usize = 33;

/// Upper-case, space-separated hex ("3B 8F 80").
pub use crate::hex::spaced as hex;

/// Transmission convention announced by TS (ISO/IEC 7816-3:2006 §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Convention {
    /// TS = 3B: direct convention (state H = 1, lsb first).
    Direct,
    /// TS = 3F: inverse convention (state L = 1, msb first).
    Inverse,
}

/// The initial character TS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ts {
    /// TS as given.
    pub value: u8,
    /// Its convention; `None` when TS is invalid.
    pub convention: Option<Convention>,
}

/// The format byte T0 (ISO/IEC 7816-3:2006 §8.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FormatByte {
    /// T0 as given.
    pub value: u8,
    /// Y1: bits 8-5, presence of TA1 (bit 5), TB1, TC1, TD1 (bit 8).
    pub y1: u8,
    /// K: bits 4-1, number of historical bytes.
    pub k: u8,
}

/// The interface bytes of one level i (ISO/IEC 7816-3:2006 §8.2.3).
/// Only levels with at least one byte are listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceGroup {
    /// Level i (1-based).
    pub level: usize,
    /// For i ≥ 2, the type T announced by TD(i-1); `None` for level 1.
    pub protocol: Option<u8>,
    /// TAi
    pub ta: Option<u8>,
    /// TBi
    pub tb: Option<u8>,
    /// TCi
    pub tc: Option<u8>,
    /// TDi
    pub td: Option<u8>,
    /// Offset of the first byte of this group in the ATR.
    pub offset: usize,
}

impl InterfaceGroup {
    /// The byte of the given kind.
    pub fn get(&self, kind: InterfaceByteKind) -> Option<u8> {
        match kind {
            InterfaceByteKind::Ta => self.ta,
            InterfaceByteKind::Tb => self.tb,
            InterfaceByteKind::Tc => self.tc,
            InterfaceByteKind::Td => self.td,
        }
    }

    fn slot(&mut self, kind: InterfaceByteKind) -> &mut Option<u8> {
        match kind {
            InterfaceByteKind::Ta => &mut self.ta,
            InterfaceByteKind::Tb => &mut self.tb,
            InterfaceByteKind::Tc => &mut self.tc,
            InterfaceByteKind::Td => &mut self.td,
        }
    }

    /// Present bytes of the group with their offsets, in transmission order.
    pub fn bytes(&self) -> Vec<(usize, InterfaceByteKind, u8)> {
        let mut out = Vec::new();
        let mut off = self.offset;
        for (_, kind) in InterfaceByteKind::ORDER {
            if let Some(v) = self.get(kind) {
                out.push((off, kind, v));
                off += 1;
            }
        }
        out
    }
}

/// Result of the TCK check (ISO/IEC 7816-3:2006 §8.2.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TckStatus {
    /// Present and XOR of T0..TCK is 00.
    Valid {
        /// TCK.
        value: u8,
    },
    /// Present but XOR of T0..TCK is not 00.
    Wrong {
        /// The correct value.
        expected: u8,
        /// The value found.
        found: u8,
    },
    /// Mandatory (a type other than T=0 is indicated) but absent.
    Missing,
    /// Absent, as required when only T=0 is indicated.
    AbsentAsAllowed,
    /// The ATR is cut before the TCK position, so it cannot be checked.
    Undetermined,
}

/// What a byte of the ATR is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ByteRole {
    /// Initial character.
    Ts,
    /// Format byte.
    T0,
    /// An interface byte.
    Interface,
    /// A decoded historical byte.
    Historical,
    /// A historical byte that could not be decoded (malformed).
    Undecoded,
    /// Check byte.
    Tck,
    /// After the end of the ATR.
    Trailing,
}

/// One byte of the ATR with its name and meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ByteNote {
    /// Offset in the ATR.
    pub offset: usize,
    /// The byte.
    pub value: u8,
    /// Role.
    pub role: ByteRole,
    /// Name: "TS", "T0", "TA1", "H3", "TCK", "extra".
    pub name: String,
    /// Meaning, one line.
    pub meaning: String,
}

/// A decoded ATR. Built by [`parse`]; every field is computed once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Atr {
    raw: Vec<u8>,
    ts: Option<Ts>,
    t0: Option<FormatByte>,
    groups: Vec<InterfaceGroup>,
    historical_bytes: Vec<u8>,
    historical: Historical,
    tck: Option<u8>,
    tck_status: TckStatus,
    trailing: Vec<u8>,
    protocols: Protocols,
    clock_rate: ClockRate,
    specific_mode: Option<SpecificMode>,
    vpp: Option<LegacyVpp>,
    extra_guard_time: ExtraGuardTime,
    t0_params: Option<T0Params>,
    t1_params: Option<T1Params>,
    t15_params: Option<T15Params>,
    layout: Vec<ByteNote>,
    defects: Vec<Defect>,
}

/// Compact overview of an ATR (serializable), for listings and JSON output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtrSummary {
    /// The ATR in hex.
    pub atr: String,
    /// Number of bytes.
    pub length: usize,
    /// Convention from TS.
    pub convention: Option<Convention>,
    /// Protocols offered.
    pub protocols: Vec<u8>,
    /// True when T=0 applies only by default.
    pub implicit_t0: bool,
    /// Global interface bytes (T=15) present.
    pub global_t15: bool,
    /// Fi (None when RFU).
    pub fi: Option<u16>,
    /// Di (None when RFU).
    pub di: Option<u8>,
    /// f(max) in MHz.
    pub f_max_mhz: Option<f64>,
    /// Baud rate at f(max).
    pub baud_at_f_max: Option<f64>,
    /// Protocol imposed by TA2 (specific mode), if any.
    pub specific_mode_protocol: Option<u8>,
    /// Extra guard time N.
    pub extra_guard_time_n: u8,
    /// IFSC when T=1 is offered.
    pub ifsc: Option<u8>,
    /// Format of the historical bytes.
    pub historical_format: String,
    /// Card capabilities from the historical bytes.
    pub card_capabilities: Option<CardCapabilities>,
    /// TCK check.
    pub tck: TckStatus,
    /// No defects.
    pub well_formed: bool,
    /// Defects, as text.
    pub defects: Vec<String>,
}

/// XOR of all bytes.
fn xor(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |a, b| a ^ b)
}

/// The interface bytes (ISO/IEC 7816-3:2006 §8.2.3), level by level as T0
/// and each TDi announce them: the groups, the protocol of each TDi, the
/// position after them, and whether the ATR was cut short.
fn interface_bytes(
    raw: &[u8],
    t0: &FormatByte,
    defects: &mut Vec<Defect>,
) -> (Vec<InterfaceGroup>, Vec<u8>, usize, bool) {
    let mut groups: Vec<InterfaceGroup> = Vec::new();
    let mut td_types: Vec<u8> = Vec::new();
    let mut pos = 2usize;
    let mut cut = false;
    let mut y = t0.y1;
    let mut level = 1usize;
    let mut protocol: Option<u8> = None;
    let mut announcer = ("T0".to_string(), t0.value);
    loop {
        let mut group = InterfaceGroup {
            level,
            protocol,
            ta: None,
            tb: None,
            tc: None,
            td: None,
            offset: pos,
        };
        for (bit, kind) in InterfaceByteKind::ORDER {
            if y & bit == 0 {
                continue;
            }
            match raw.get(pos) {
                Some(&b) => {
                    *group.slot(kind) = Some(b);
                    pos += 1;
                }
                None => {
                    defects.push(Defect::TruncatedInterfaceBytes {
                        level,
                        byte: kind,
                        offset: pos,
                        announced_by: announcer.0.clone(),
                        announcer_value: announcer.1,
                    });
                    cut = true;
                    break;
                }
            }
        }
        let next = group.td;
        if group.ta.is_some() || group.tb.is_some() || group.tc.is_some() || next.is_some() {
            groups.push(group);
        }
        match next {
            Some(td) if !cut => {
                let t = td & 0x0F;
                if level == 1 && t == 15 {
                    defects.push(Defect::T15InTd1 { offset: pos - 1 });
                }
                td_types.push(t);
                announcer = (format!("TD{level}"), td);
                y = td >> 4;
                protocol = Some(t);
                level += 1;
            }
            _ => break,
        }
    }
    (groups, td_types, pos, cut)
}

/// TCK (ISO/IEC 7816-3:2006 §8.2.5) at `pos`, when a protocol other than
/// T=0 requires it: its value and whether it checks; `pos` moves past it.
fn check_tck(
    raw: &[u8],
    pos: &mut usize,
    cut: bool,
    tck_required: bool,
    defects: &mut Vec<Defect>,
) -> (Option<u8>, TckStatus) {
    let mut tck = None;
    let tck_status = if cut {
        TckStatus::Undetermined
    } else if tck_required {
        match raw.get(*pos) {
            Some(&found) => {
                tck = Some(found);
                let expected = xor(raw.get(1..*pos).unwrap_or_default());
                *pos += 1;
                if expected == found {
                    TckStatus::Valid { value: found }
                } else {
                    defects.push(Defect::WrongTck {
                        offset: *pos - 1,
                        expected,
                        found,
                    });
                    TckStatus::Wrong { expected, found }
                }
            }
            None => {
                defects.push(Defect::MissingTck { offset: *pos });
                TckStatus::Missing
            }
        }
    } else {
        TckStatus::AbsentAsAllowed
    };
    (tck, tck_status)
}

/// The parameters the interface bytes set, per ISO/IEC 7816-3 §8.3 and the
/// protocol sections.
struct Derived {
    clock_rate: ClockRate,
    specific_mode: Option<SpecificMode>,
    vpp: Option<LegacyVpp>,
    extra_guard_time: ExtraGuardTime,
    t0_params: Option<T0Params>,
    t1_params: Option<T1Params>,
    t15_params: Option<T15Params>,
}

fn derived(groups: &[InterfaceGroup], protocols: &Protocols) -> Derived {
    let first = |kind: InterfaceByteKind, level: usize| {
        groups
            .iter()
            .find(|g| g.level == level)
            .and_then(|g| g.get(kind))
    };
    let first_for = |t: u8, kind: InterfaceByteKind| {
        groups
            .iter()
            .filter(|g| g.level >= 3 && g.protocol == Some(t))
            .find_map(|g| g.get(kind))
    };
    let clock_rate = ClockRate::from_ta1(first(InterfaceByteKind::Ta, 1));
    let specific_mode = first(InterfaceByteKind::Ta, 2).map(SpecificMode::from_ta2);
    let vpp = LegacyVpp::from_bytes(
        first(InterfaceByteKind::Tb, 1),
        first(InterfaceByteKind::Tb, 2),
    );
    let extra_guard_time = ExtraGuardTime::from_tc1(first(InterfaceByteKind::Tc, 1));
    let t0_params = protocols
        .offers(0)
        .then(|| T0Params::new(first(InterfaceByteKind::Tc, 2), &clock_rate));
    let t1_params = protocols.offers(1).then(|| {
        T1Params::new(
            first_for(1, InterfaceByteKind::Ta),
            first_for(1, InterfaceByteKind::Tb),
            first_for(1, InterfaceByteKind::Tc),
            &clock_rate,
        )
    });
    let t15_params = protocols.global_t15.then(|| {
        T15Params::new(
            first_for(15, InterfaceByteKind::Ta),
            first_for(15, InterfaceByteKind::Tb),
        )
    });

    Derived {
        clock_rate,
        specific_mode,
        vpp,
        extra_guard_time,
        t0_params,
        t1_params,
        t15_params,
    }
}

/// The layout notes that need the decoded ATR: interface bytes, historical
/// bytes, TCK and bytes after the end.
fn add_notes(atr: &mut Atr, hist_notes: Vec<(usize, String, bool)>, hist_start: usize) {
    atr.layout.extend(describe::interface_notes(atr));
    atr.layout.extend(
        hist_notes
            .into_iter()
            .map(|(offset, meaning, undecoded)| ByteNote {
                offset,
                value: atr.raw.get(offset).copied().unwrap_or(0),
                role: if undecoded {
                    ByteRole::Undecoded
                } else {
                    ByteRole::Historical
                },
                name: format!("H{}", offset.saturating_sub(hist_start) + 1),
                meaning,
            }),
    );
    if let (Some(v), Some(off)) = (atr.tck, atr.tck_offset()) {
        atr.layout.push(ByteNote {
            offset: off,
            value: v,
            role: ByteRole::Tck,
            name: "TCK".into(),
            meaning: describe::tck_meaning(&atr.tck_status),
        });
    }
    let trailing_start = atr.raw.len() - atr.trailing.len();
    for (i, &v) in atr.trailing.iter().enumerate() {
        atr.layout.push(ByteNote {
            offset: trailing_start + i,
            value: v,
            role: ByteRole::Trailing,
            name: "extra".into(),
            meaning: "after the end of the ATR".into(),
        });
    }
}

/// TS, the initial character (ISO/IEC 7816-3:2006 §8.1): the convention,
/// or a defect when it names none, or when the ATR is empty.
fn initial_character(
    raw: &[u8],
    defects: &mut Vec<Defect>,
    layout: &mut Vec<ByteNote>,
) -> Option<Ts> {
    let ts = raw.first().map(|&value| {
        let convention = match value {
            0x3B => Some(Convention::Direct),
            0x3F => Some(Convention::Inverse),
            _ => None,
        };
        Ts { value, convention }
    });
    match &ts {
        None => defects.push(Defect::Empty),
        Some(ts) => {
            if ts.convention.is_none() {
                defects.push(Defect::InvalidTs { value: ts.value });
            }
            layout.push(ByteNote {
                offset: 0,
                value: ts.value,
                role: ByteRole::Ts,
                name: "TS".into(),
                meaning: describe::ts_meaning(ts),
            });
        }
    }
    ts
}

/// Decode an ATR. Never fails and never panics: returns everything that
/// could be decoded plus the list of defects (see [`Defect`]).
///
/// Structure per ISO/IEC 7816-3:2006 §8.2: TS, T0, interface bytes
/// TAi/TBi/TCi/TDi announced level by level by the Y nibble of T0 and of
/// each TDi, K historical bytes, and TCK when a type other than T=0 is
/// indicated. When the ATR is cut short, the first missing element is
/// reported and everything after it is considered absent (not reported
/// again); historical bytes that are present are still decoded.
pub fn parse(bytes: &[u8]) -> Atr {
    let raw = bytes.to_vec();
    let mut defects = Vec::new();
    let mut layout = Vec::new();

    let ts = initial_character(&raw, &mut defects, &mut layout);

    let t0 = raw.get(1).map(|&value| FormatByte {
        value,
        y1: value >> 4,
        k: value & 0x0F,
    });
    if ts.is_some() && t0.is_none() {
        defects.push(Defect::MissingT0);
    }

    // Interface bytes, ISO/IEC 7816-3:2006 §8.2.3.
    let mut groups: Vec<InterfaceGroup> = Vec::new();
    let mut td_types: Vec<u8> = Vec::new();
    let mut pos = 2usize;
    let mut cut = t0.is_none();
    if let Some(t0) = &t0 {
        layout.push(ByteNote {
            offset: 1,
            value: t0.value,
            role: ByteRole::T0,
            name: "T0".into(),
            meaning: describe::t0_meaning(t0),
        });
        (groups, td_types, pos, cut) = interface_bytes(&raw, t0, &mut defects);
    }
    let protocols = Protocols::from_td_types(&td_types);

    // Historical bytes, ISO/IEC 7816-3:2006 §8.2.4.
    let mut historical_bytes = Vec::new();
    let mut historical = Historical::None;
    let mut hist_notes = Vec::new();
    let mut hist_start = pos;
    if let (Some(t0), false) = (&t0, cut) {
        let k = usize::from(t0.k);
        let present = raw.len().saturating_sub(pos).min(k);
        historical_bytes = raw.get(pos..pos + present).unwrap_or_default().to_vec();
        if present < k {
            defects.push(Defect::HistoricalBytesTruncated {
                announced: k,
                present,
                offset: pos,
            });
            cut = true;
        }
        let (h, notes) = historical::decode(&historical_bytes, pos, &mut defects);
        historical = h;
        hist_notes = notes;
        hist_start = pos;
        pos += present;
    }

    // TCK, ISO/IEC 7816-3:2006 §8.2.5.
    let (tck, tck_status) = check_tck(&raw, &mut pos, cut, protocols.tck_required, &mut defects);

    let trailing = if cut {
        Vec::new()
    } else {
        raw.get(pos..).unwrap_or_default().to_vec()
    };
    if !trailing.is_empty() {
        let checksum_like = !protocols.tck_required
            && trailing.len() == 1
            && xor(raw.get(1..).unwrap_or_default()) == 0;
        defects.push(Defect::TrailingBytes {
            offset: pos,
            bytes: trailing.clone(),
            checksum_like,
        });
    }
    if raw.len() > MAX_ATR_LEN {
        defects.push(Defect::TooLong { length: raw.len() });
    }

    let Derived {
        clock_rate,
        specific_mode,
        vpp,
        extra_guard_time,
        t0_params,
        t1_params,
        t15_params,
    } = derived(&groups, &protocols);

    let mut atr = Atr {
        raw,
        ts,
        t0,
        groups,
        historical_bytes,
        historical,
        tck,
        tck_status,
        trailing,
        protocols,
        clock_rate,
        specific_mode,
        vpp,
        extra_guard_time,
        t0_params,
        t1_params,
        t15_params,
        layout,
        defects,
    };
    add_notes(&mut atr, hist_notes, hist_start);
    atr
}

impl Atr {
    /// The bytes as given.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// "3B 8F 80 01 …": upper case, space separated.
    pub fn to_hex(&self) -> String {
        hex(&self.raw)
    }

    /// TS and its convention (`None` when the input is empty).
    pub fn ts(&self) -> Option<&Ts> {
        self.ts.as_ref()
    }

    /// The convention, when TS is valid.
    pub fn convention(&self) -> Option<Convention> {
        self.ts.as_ref().and_then(|t| t.convention)
    }

    /// T0 (`None` when missing).
    pub fn t0(&self) -> Option<&FormatByte> {
        self.t0.as_ref()
    }

    /// Interface groups, by level; only levels with at least one byte.
    pub fn groups(&self) -> &[InterfaceGroup] {
        &self.groups
    }

    /// Interface byte `kind` of level `level`, if present.
    pub fn interface_byte(&self, kind: InterfaceByteKind, level: usize) -> Option<u8> {
        self.groups
            .iter()
            .find(|g| g.level == level)
            .and_then(|g| g.get(kind))
    }

    /// The historical bytes that are present.
    pub fn historical_bytes(&self) -> &[u8] {
        &self.historical_bytes
    }

    /// The decoded historical bytes.
    pub fn historical(&self) -> &Historical {
        &self.historical
    }

    /// TCK, if present.
    pub fn tck(&self) -> Option<u8> {
        self.tck
    }

    /// Result of the TCK check.
    pub fn tck_status(&self) -> &TckStatus {
        &self.tck_status
    }

    /// Bytes after the end of the ATR.
    pub fn trailing(&self) -> &[u8] {
        &self.trailing
    }

    /// Protocols offered, TCK requirement, T=15 presence.
    pub fn protocols(&self) -> &Protocols {
        &self.protocols
    }

    /// Fi, f(max), Di and baud rate from TA1 (or defaults).
    pub fn clock_rate(&self) -> &ClockRate {
        &self.clock_rate
    }

    /// TA2, the specific mode byte, if present.
    pub fn specific_mode(&self) -> Option<&SpecificMode> {
        self.specific_mode.as_ref()
    }

    /// TB1/TB2 (deprecated VPP), if present.
    pub fn legacy_vpp(&self) -> Option<&LegacyVpp> {
        self.vpp.as_ref()
    }

    /// TC1, the extra guard time.
    pub fn extra_guard_time(&self) -> &ExtraGuardTime {
        &self.extra_guard_time
    }

    /// T=0 parameters, when T=0 is offered (explicitly or implicitly).
    pub fn t0_params(&self) -> Option<&T0Params> {
        self.t0_params.as_ref()
    }

    /// T=1 parameters, when T=1 is offered.
    pub fn t1_params(&self) -> Option<&T1Params> {
        self.t1_params.as_ref()
    }

    /// Global parameters qualified by T=15, when T=15 is indicated.
    pub fn t15_params(&self) -> Option<&T15Params> {
        self.t15_params.as_ref()
    }

    /// Every byte of the ATR with its name and meaning, in order.
    pub fn layout(&self) -> &[ByteNote] {
        &self.layout
    }

    /// Defects found.
    pub fn defects(&self) -> &[Defect] {
        &self.defects
    }

    /// True when no defect was found.
    pub fn is_well_formed(&self) -> bool {
        self.defects.is_empty()
    }

    /// Card capabilities (compact-TLV tag 7) from the historical bytes.
    pub fn card_capabilities(&self) -> Option<CardCapabilities> {
        self.historical
            .objects()
            .iter()
            .find_map(|o| match &o.content {
                TlvContent::CardCapabilities(c) => Some(c.clone()),
                _ => None,
            })
    }

    /// Status indicator from the historical bytes.
    pub fn status_indicator(&self) -> Option<&StatusIndicator> {
        match &self.historical {
            Historical::CompactTlv { status, .. } => status.as_ref(),
            _ => None,
        }
    }

    /// Offset of the first historical byte, when T0 is present and the interface bytes are complete.
    pub fn historical_offset(&self) -> Option<usize> {
        if self.t0.is_none()
            || self
                .defects
                .iter()
                .any(|d| matches!(d, Defect::TruncatedInterfaceBytes { .. }))
        {
            return None;
        }
        let n: usize = self.groups.iter().map(|g| g.bytes().len()).sum();
        Some(2 + n)
    }

    /// Offset of TCK, when present.
    pub fn tck_offset(&self) -> Option<usize> {
        self.tck?;
        self.historical_offset()
            .map(|h| h + self.historical_bytes.len())
    }

    /// Compact overview.
    pub fn summary(&self) -> AtrSummary {
        AtrSummary {
            atr: self.to_hex(),
            length: self.raw.len(),
            convention: self.convention(),
            protocols: self.protocols.offered.clone(),
            implicit_t0: self.protocols.implicit_t0,
            global_t15: self.protocols.global_t15,
            fi: self.clock_rate.fi,
            di: self.clock_rate.di,
            f_max_mhz: self.clock_rate.f_max_mhz,
            baud_at_f_max: self.clock_rate.baud_at_f_max,
            specific_mode_protocol: self.specific_mode.as_ref().map(|s| s.protocol),
            extra_guard_time_n: self.extra_guard_time.n,
            ifsc: self.t1_params.as_ref().map(|t| t.ifsc),
            historical_format: self.historical.format_name(),
            card_capabilities: self.card_capabilities(),
            tck: self.tck_status.clone(),
            well_formed: self.is_well_formed(),
            defects: self.defects.iter().map(ToString::to_string).collect(),
        }
    }

    /// A multi-line human report: every byte with its meaning, levels,
    /// protocols, timing, historical bytes decoded, TCK status and defects.
    pub fn describe(&self) -> String {
        describe::report(self)
    }
}

impl std::fmt::Display for Atr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}
