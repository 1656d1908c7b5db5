//! Human-readable texts: the one-line meaning of each byte and the
//! multi-line report of [`super::Atr::describe`].

use super::historical::{
    CardCapabilities, CardServiceData, EfAccess, Historical, StatusIndicator, TlvContent,
    WriteBehaviour,
};
use super::interface::{di_lookup, fi_lookup, protocol_name, ClockStop, ErrorDetection};
use super::{
    hex, Atr, ByteNote, ByteRole, Convention, Defect, FormatByte, InterfaceByteKind,
    InterfaceGroup, TckStatus, Ts,
};
use std::fmt::Write as _;

pub(super) fn ts_meaning(ts: &Ts) -> String {
    match ts.convention {
        Some(Convention::Direct) => "direct convention".into(),
        Some(Convention::Inverse) => "inverse convention".into(),
        None => "invalid: neither 3B (direct) nor 3F (inverse)".into(),
    }
}

/// "TA2, TD2" for a Y nibble announcing level `level`.
fn presence(y: u8, level: usize) -> String {
    let names: Vec<String> = InterfaceByteKind::ORDER
        .iter()
        .filter(|(bit, _)| y & bit != 0)
        .map(|(_, k)| format!("{k}{level}"))
        .collect();
    if names.is_empty() {
        "no further interface bytes".into()
    } else {
        format!("{} present", names.join(", "))
    }
}

pub(super) fn t0_meaning(t0: &FormatByte) -> String {
    format!(
        "Y1 = {:04b}b: {}; K = {} historical byte(s)",
        t0.y1,
        presence(t0.y1, 1),
        t0.k
    )
}

pub(super) fn tck_meaning(status: &TckStatus) -> String {
    match status {
        TckStatus::Valid { .. } => "check byte: valid (XOR of T0..TCK = 00)".into(),
        TckStatus::Wrong { expected, found } => {
            format!("check byte: WRONG, found {found:02X}, expected {expected:02X}")
        }
        TckStatus::Missing => "check byte: missing".into(),
        TckStatus::AbsentAsAllowed => "absent, as allowed when only T=0 is indicated".into(),
        TckStatus::Undetermined => "not checked: the ATR is cut before the TCK position".into(),
    }
}

fn fi_di_text(code: u8) -> String {
    let fi_code = code >> 4;
    let di_code = code & 0x0F;
    let fi = match fi_lookup(fi_code) {
        Some((fi, f)) => format!("FI = {fi_code:X}: Fi = {fi}, f(max) = {} MHz", mhz(f)),
        None => format!("FI = {fi_code:X}: RFU"),
    };
    let di = match di_lookup(di_code) {
        Some(di) => format!("DI = {di_code:X}: Di = {di}"),
        None => format!("DI = {di_code:X}: RFU"),
    };
    let rate = match (fi_lookup(fi_code), di_lookup(di_code)) {
        (Some((fi, f)), Some(di)) => {
            let baud = f64::from(f) * 1000.0 * f64::from(di) / f64::from(fi);
            format!("; {baud:.0} bit/s at f(max)")
        }
        _ => String::new(),
    };
    format!("{fi}; {di}{rate}")
}

fn mhz(khz: u32) -> String {
    if khz.is_multiple_of(1000) {
        format!("{}", khz / 1000)
    } else {
        format!("{}", f64::from(khz) / 1000.0)
    }
}

/// Level of the first group at level ≥ 3 qualified by `t` that carries `kind`.
fn first_level_for(atr: &Atr, t: u8, kind: InterfaceByteKind) -> Option<usize> {
    atr.groups()
        .iter()
        .find(|g| g.level >= 3 && g.protocol == Some(t) && g.get(kind).is_some())
        .map(|g| g.level)
}

fn interface_meaning(atr: &Atr, g: &InterfaceGroup, kind: InterfaceByteKind, v: u8) -> String {
    use InterfaceByteKind::{Ta, Tb, Tc, Td};
    if kind == Td {
        let t = v & 0x0F;
        return format!(
            "Y{} = {:04b}b: {}; T = {t}: {}",
            g.level + 1,
            v >> 4,
            presence(v >> 4, g.level + 1),
            protocol_name(t)
        );
    }
    match (g.level, kind) {
        (1, Ta) => format!("global, clock rate and baud rate: {}", fi_di_text(v)),
        (1, Tb) => {
            let base = "global, VPP (deprecated since ISO/IEC 7816-3:2006, to be ignored)";
            if v == 0 {
                format!("{base}: PI1 = 0, VPP not connected")
            } else {
                let ii = match (v >> 5) & 0x03 {
                    0 => "25 mA",
                    1 => "50 mA",
                    2 => "100 mA",
                    _ => "RFU",
                };
                format!("{base}: PI1 = {} V, II: max {ii}", v & 0x1F)
            }
        }
        (1, Tc) => {
            if v == 0xFF {
                "global, extra guard time N = 255: minimum guard time, 12 etu for T=0, 11 etu for T=1".into()
            } else {
                format!("global, extra guard time N = {v}: guard time {} etu", 12 + u16::from(v))
            }
        }
        (2, Ta) => {
            let t = v & 0x0F;
            format!(
                "global, specific mode byte: protocol T={t}; {}; {}{}",
                if v & 0x80 != 0 {
                    "unable to change mode"
                } else {
                    "capable of changing to negotiable mode"
                },
                if v & 0x10 != 0 {
                    "implicit transmission parameters"
                } else {
                    "parameters Fi/Di as given by TA1"
                },
                if v & 0x60 != 0 { "; RFU bits 7-6 set" } else { "" }
            )
        }
        (2, Tb) => format!(
            "global, PI2 = {v}: VPP = {}.{} V (deprecated since ISO/IEC 7816-3:2006, to be ignored)",
            v / 10,
            v % 10
        ),
        (2, Tc) => {
            let mut s = format!("specific to T=0, waiting time integer WI = {v}");
            if v == 0 {
                s.push_str(" (RFU)");
            }
            if g.protocol != Some(0) {
                if let Some(t) = g.protocol {
                    let _ = write!(s, "; note: TD1 indicates T={t}, TC2 only applies to T=0");
                }
            }
            s
        }
        (_, _) => match g.protocol {
            Some(1) => {
                if first_level_for(atr, 1, kind) != Some(g.level) {
                    return format!(
                        "specific to T=1: only the first {kind} for T=1 is defined, this one is not interpreted"
                    );
                }
                match kind {
                    Ta => {
                        let rfu = if v == 0 || v == 0xFF { " (RFU value)" } else { "" };
                        format!("specific to T=1, IFSC = {v}{rfu}")
                    }
                    Tb => {
                        let bwi = v >> 4;
                        format!(
                            "specific to T=1, BWI = {bwi}{}, CWI = {}",
                            if bwi > 9 { " (RFU)" } else { "" },
                            v & 0x0F
                        )
                    }
                    _ => format!(
                        "specific to T=1, error detection code: {}{}",
                        if v & 1 != 0 { "CRC" } else { "LRC" },
                        if v & 0xFE != 0 { "; RFU bits set" } else { "" }
                    ),
                }
            }
            Some(15) => {
                if first_level_for(atr, 15, kind) != Some(g.level) || kind == Tc {
                    return format!(
                        "global (T=15): no meaning defined for this {kind} by ISO/IEC 7816-3, not interpreted"
                    );
                }
                match kind {
                    Ta => format!("global (T=15), clock stop: {}; classes: {}", clock_stop_text(v >> 6), classes_text(v & 0x3F)),
                    _ => {
                        if v == 0 {
                            "global (T=15), SPU: contact C6 not used".into()
                        } else if v & 0x80 != 0 {
                            format!("global (T=15), SPU = {v:02X}: proprietary use of contact C6")
                        } else {
                            format!("global (T=15), SPU = {v:02X}: standard use of contact C6")
                        }
                    }
                }
            }
            Some(0) => "specific to T=0: no meaning defined by ISO/IEC 7816-3, not interpreted".into(),
            Some(t) => format!("specific to T={t} ({}): not interpreted", protocol_name(t)),
            None => "not interpreted".into(),
        },
    }
}

fn clock_stop_text(x: u8) -> &'static str {
    match x {
        0 => "not supported",
        1 => "supported in state L",
        2 => "supported in state H",
        _ => "supported, no preference",
    }
}

fn classes_text(y: u8) -> String {
    let mut parts = Vec::new();
    if y & 1 != 0 {
        parts.push("A (5 V)");
    }
    if y & 2 != 0 {
        parts.push("B (3 V)");
    }
    if y & 4 != 0 {
        parts.push("C (1.8 V)");
    }
    if y & 0x38 != 0 {
        parts.push("RFU bits set");
    }
    if parts.is_empty() {
        "none indicated".into()
    } else {
        parts.join(", ")
    }
}

pub(super) fn interface_notes(atr: &Atr) -> Vec<ByteNote> {
    let mut out = Vec::new();
    for g in atr.groups() {
        for (offset, kind, value) in g.bytes() {
            out.push(ByteNote {
                offset,
                value,
                role: ByteRole::Interface,
                name: format!("{kind}{}", g.level),
                meaning: interface_meaning(atr, g, kind, value),
            });
        }
    }
    out
}

/// The bytes as text when they are at least 3 printable ASCII characters.
fn ascii(bytes: &[u8]) -> Option<String> {
    if bytes.len() >= 3 && bytes.iter().all(|b| (0x20..0x7F).contains(b)) {
        Some(bytes.iter().map(|&b| char::from(b)).collect())
    } else {
        None
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn service_data_lines(s: &CardServiceData) -> Vec<String> {
    let access = match s.ef_access {
        EfAccess::ReadBinary => "READ BINARY (transparent EF)".to_string(),
        EfAccess::ReadRecord => "READ RECORD(S) (record EF)".to_string(),
        EfAccess::GetData => "GET DATA (TLV structure)".to_string(),
        EfAccess::Rfu(b) => format!("RFU ({b:03b}b)"),
    };
    vec![
        format!(
            "application selection by full DF name: {}",
            yes_no(s.select_by_full_df_name)
        ),
        format!(
            "application selection by partial DF name: {}",
            yes_no(s.select_by_partial_df_name)
        ),
        format!(
            "BER-TLV data objects in EF.DIR: {}",
            yes_no(s.bertlv_in_ef_dir)
        ),
        format!(
            "BER-TLV data objects in EF.ATR/INFO: {}",
            yes_no(s.bertlv_in_ef_atr)
        ),
        format!("EF.DIR and EF.ATR/INFO access: {access}"),
        format!(
            "card {} a master file (MF)",
            if s.has_mf { "has" } else { "has no" }
        ),
    ]
}

fn capabilities_lines(c: &CardCapabilities) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = &c.selection {
        let mut sel = Vec::new();
        for (on, name) in [
            (s.by_full_df_name, "full DF name"),
            (s.by_partial_df_name, "partial DF name"),
            (s.by_path, "path"),
            (s.by_file_id, "file identifier"),
            (s.implicit, "implicit"),
        ] {
            if on {
                sel.push(name);
            }
        }
        out.push(format!(
            "table 1 ({:02X}): DF selection by {}; short EF identifier: {}; record number: {}; record identifier: {}",
            s.value,
            if sel.is_empty() { "none indicated".to_string() } else { sel.join(", ") },
            yes_no(s.short_ef_id),
            yes_no(s.record_number),
            yes_no(s.record_identifier)
        ));
    }
    if let Some(d) = &c.data_coding {
        let write = match d.write_behaviour {
            WriteBehaviour::OneTime => "one-time write",
            WriteBehaviour::Proprietary => "proprietary",
            WriteBehaviour::WriteOr => "write OR",
            WriteBehaviour::WriteAnd => "write AND",
        };
        let unit = if d.data_unit_quartets >= 2 {
            format!(
                "{} quartets = {} byte(s)",
                d.data_unit_quartets,
                d.data_unit_quartets / 2
            )
        } else {
            "1 quartet".to_string()
        };
        out.push(format!(
            "table 2, data coding byte ({:02X}): TLV EFs: {}; write functions: {write}; 'FF' as first tag byte: {}; data unit size: {unit}",
            d.value,
            yes_no(d.tlv_efs),
            if d.ff_tag_valid { "valid" } else { "invalid (padding)" }
        ));
    }
    if let Some(t) = &c.third {
        let assign = match (t.channels_assigned_by_card, t.channels_assigned_by_ifd) {
            (true, true) => "by the card and by the interface device",
            (true, false) => "by the card",
            (false, true) => "by the interface device",
            (false, false) => "no logical channel",
        };
        out.push(format!(
            "table 3 ({:02X}): command chaining: {}; extended Lc/Le: {}; extended length info in EF.ATR/INFO: {}; logical channel assignment: {assign}; maximum logical channels: {}{}",
            t.value,
            yes_no(t.command_chaining),
            yes_no(t.extended_lc_le),
            yes_no(t.extended_length_info),
            t.max_logical_channels,
            if t.max_logical_channels == 8 { " or more" } else { "" }
        ));
    }
    out
}

fn status_line(s: &StatusIndicator) -> String {
    let mut parts = Vec::new();
    if let Some(l) = s.lcs {
        parts.push(format!(
            "LCS = {l:02X} ({})",
            StatusIndicator::lcs_meaning(l)
        ));
    }
    if let Some(sw) = s.sw {
        parts.push(format!(
            "SW1-SW2 = {sw:04X} ({})",
            StatusIndicator::sw_meaning(sw)
        ));
    }
    parts.join(", ")
}

fn historical_section(atr: &Atr, out: &mut String) {
    let h = atr.historical();
    let _ = writeln!(
        out,
        "Historical bytes (ISO/IEC 7816-4 §8.1.1): {}",
        h.format_name()
    );
    match h {
        Historical::None => {}
        Historical::CompactTlv {
            objects,
            status,
            undecoded,
            ..
        } => {
            for o in objects {
                let mut line = format!(
                    "  [{:2}] tag {:X} {}: {}",
                    o.offset,
                    o.tag,
                    TlvContent::tag_name(o.tag),
                    if o.value.is_empty() {
                        "(empty)".to_string()
                    } else {
                        hex(&o.value)
                    }
                );
                if let Some(a) = ascii(&o.value) {
                    let _ = write!(line, " \"{a}\"");
                }
                let _ = writeln!(out, "{line}");
                let details: Vec<String> = match &o.content {
                    TlvContent::CountryCode { code: Some(c) } => vec![format!("country code {c}")],
                    TlvContent::IssuerIdentification { digits: Some(d) } => {
                        vec![format!("issuer identification number {d}")]
                    }
                    TlvContent::CardServiceData(s) => service_data_lines(s),
                    TlvContent::CardCapabilities(c) => capabilities_lines(c),
                    TlvContent::StatusIndicator(s) => vec![status_line(s)],
                    TlvContent::ApplicationIdentifier { rid, pix } => {
                        vec![format!(
                            "RID {}, PIX {}",
                            hex(rid),
                            if pix.is_empty() {
                                "none".to_string()
                            } else {
                                hex(pix)
                            }
                        )]
                    }
                    TlvContent::Rfu => vec!["tag not defined by ISO/IEC 7816-4 (RFU)".into()],
                    TlvContent::Invalid => {
                        vec!["length not allowed for this tag; not decoded".into()]
                    }
                    _ => Vec::new(),
                };
                for d in details {
                    let _ = writeln!(out, "         {d}");
                }
            }
            if !undecoded.is_empty() {
                let _ = writeln!(out, "  undecoded: {}", hex(undecoded));
            }
            if let Some(s) = status {
                let _ = writeln!(out, "  status indicator: {}", status_line(s));
            }
        }
        Historical::DirDataReference { reference, extra } => {
            match reference {
                Some(r) => {
                    let _ = writeln!(out, "  DIR data reference: {r:02X}");
                }
                None => {
                    let _ = writeln!(out, "  DIR data reference: missing");
                }
            }
            if !extra.is_empty() {
                let _ = writeln!(out, "  further bytes: {}", hex(extra));
            }
        }
        Historical::PcscStorageCard(c) => {
            let _ = writeln!(out, "  RID {} (PC/SC Workgroup)", hex(&c.rid));
            if let Some(ss) = c.standard {
                let _ = writeln!(
                    out,
                    "  standard SS = {ss:02X}: {}",
                    c.standard_name.as_deref().unwrap_or("not known here")
                );
            }
            if let Some(nn) = c.card_name {
                let _ = writeln!(
                    out,
                    "  card name NN = {nn:04X}: {}",
                    c.card_name_text
                        .as_deref()
                        .unwrap_or("not known here (see the PC/SC Part 3 supplement)")
                );
            }
            if !c.rfu.is_empty() {
                let _ = writeln!(out, "  RFU: {}", hex(&c.rfu));
            }
        }
        Historical::Rfu { category, data } => {
            let _ = writeln!(
                out,
                "  category {category:02X} is RFU; content: {}",
                hex(data)
            );
        }
        Historical::Proprietary { data, .. } => {
            let mut line = format!("  {}", hex(data));
            if let Some(a) = ascii(data) {
                let _ = write!(line, " \"{a}\"");
            }
            let _ = writeln!(out, "{line}");
        }
    }
}

/// The full multi-line report.
pub(super) fn report(atr: &Atr) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "ATR: {}", atr.to_hex());
    let n = atr.defects().len();
    let _ = writeln!(
        out,
        "  {} byte(s); {}",
        atr.raw().len(),
        if n == 0 {
            "well-formed".to_string()
        } else {
            format!("{n} defect(s)")
        }
    );
    out.push('\n');

    bytes_section(&mut out, atr);
    protocols_section(&mut out, atr);
    transmission_section(&mut out, atr);
    protocol_parameters_section(&mut out, atr);
    let tck = match atr.tck_status() {
        TckStatus::Valid { value } => format!("valid ({value:02X})"),
        other => tck_meaning(other),
    };
    let _ = writeln!(out, "TCK: {tck}");
    if n == 0 {
        let _ = writeln!(out, "Defects: none");
    } else {
        let _ = writeln!(out, "Defects ({n}):");
        for d in atr.defects() {
            let _ = writeln!(out, "  - {d}");
        }
    }
    out
}

/// Every byte with its meaning, by level, then what is announced but missing.
fn bytes_section(out: &mut String, atr: &Atr) {
    let _ = writeln!(out, "Bytes (ISO/IEC 7816-3 §8.2):");
    let mut level_shown = 0usize;
    let notes = atr.layout();
    let mut idx = 0usize;
    while let Some(note) = notes.get(idx) {
        // Collapse a run of historical bytes with the same meaning
        // (proprietary content) into one line.
        let mut run = 1usize;
        if matches!(note.role, ByteRole::Historical) {
            while notes.get(idx + run).is_some_and(|n| {
                n.role == note.role && n.meaning == note.meaning && n.offset == note.offset + run
            }) {
                run += 1;
            }
        }
        idx += run;
        let indent = match note.role {
            ByteRole::Interface => {
                if let Some(g) = atr
                    .groups()
                    .iter()
                    .find(|g| g.bytes().iter().any(|(o, _, _)| *o == note.offset))
                {
                    if g.level != level_shown {
                        level_shown = g.level;
                        let title = match g.protocol {
                            None => "global interface bytes".to_string(),
                            Some(15) => "global interface bytes, after T=15".to_string(),
                            Some(t) if g.level == 2 => format!("after TD1 indicating T={t}"),
                            Some(t) => format!("specific to T={t}"),
                        };
                        let _ = writeln!(out, "  Level {} ({title})", g.level);
                    }
                }
                "    "
            }
            ByteRole::Historical | ByteRole::Undecoded => "    ",
            _ => "  ",
        };
        if note.offset == atr.historical_offset().unwrap_or(usize::MAX) {
            let _ = writeln!(
                out,
                "  Historical bytes ({}):",
                atr.historical_bytes().len()
            );
        }
        if run > 1 {
            let last = note.offset + run - 1;
            let values = atr.raw().get(note.offset..=last).unwrap_or_default();
            let first_h = note
                .offset
                .saturating_sub(atr.historical_offset().unwrap_or(0))
                + 1;
            let _ = writeln!(
                out,
                "{indent}[{:2}-{}] H{}-H{}  {}  {}",
                note.offset,
                last,
                first_h,
                first_h + run - 1,
                hex(values),
                note.meaning
            );
        } else {
            let _ = writeln!(
                out,
                "{indent}[{:2}] {:<4} {:02X}  {}",
                note.offset, note.name, note.value, note.meaning
            );
        }
    }
    // What is announced but missing.
    for d in atr.defects() {
        match d {
            Defect::MissingT0 => {
                let _ = writeln!(out, "  [ 1] T0   --  missing");
            }
            Defect::TruncatedInterfaceBytes {
                level,
                byte,
                offset,
                announced_by,
                announcer_value,
            } => {
                let _ = writeln!(
                    out,
                    "    [{offset:2}] {:<4} --  missing (announced by {announced_by} = {announcer_value:02X}); the ATR ends here",
                    format!("{byte}{level}")
                );
                let _ = writeln!(
                    out,
                    "  note: the interface bytes are incomplete; the values below assume the missing bytes are absent"
                );
            }
            Defect::HistoricalBytesTruncated {
                announced, present, ..
            } => {
                let _ = writeln!(
                    out,
                    "    --   H{}-H{announced}  missing ({announced} historical bytes announced by T0, {present} present)",
                    present + 1
                );
            }
            Defect::MissingTck { offset } => {
                let _ = writeln!(out, "  [{offset:2}] TCK  --  missing (mandatory: a protocol other than T=0 is indicated)");
            }
            _ => {}
        }
    }
    out.push('\n');
}

/// The protocols offered, the default one, and the specific mode.
fn protocols_section(out: &mut String, atr: &Atr) {
    let p = atr.protocols();
    let _ = writeln!(out, "Protocols:");
    let offered: Vec<String> = p.offered.iter().map(|t| format!("T={t}")).collect();
    let _ = writeln!(
        out,
        "  offered: {}{}",
        offered.join(", "),
        if p.implicit_t0 {
            " (implicit: no protocol indicated)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "  default (first offered): T={}", p.default_protocol);
    let _ = writeln!(
        out,
        "  global interface bytes after T=15: {}",
        if p.global_t15 { "present" } else { "absent" }
    );
    match atr.specific_mode() {
        Some(s) => {
            let _ = writeln!(
                out,
                "  mode: specific (TA2), T={}, {}, {}",
                s.protocol,
                if s.implicit_parameters {
                    "implicit parameters"
                } else {
                    "parameters from TA1"
                },
                if s.can_change_mode {
                    "can change to negotiable mode"
                } else {
                    "cannot change mode"
                }
            );
        }
        None => {
            let _ = writeln!(out, "  mode: negotiable (no TA2; PPS possible)");
        }
    }
    out.push('\n');
}

/// Clock rate conversion, baud rate, guard time, Vpp.
fn transmission_section(out: &mut String, atr: &Atr) {
    let _ = writeln!(out, "Transmission parameters:");
    let c = atr.clock_rate();
    let fi = c.fi.map_or("RFU".to_string(), |v| v.to_string());
    let di = c.di.map_or("RFU".to_string(), |v| v.to_string());
    let fmax = c
        .f_max_khz
        .map_or("RFU".to_string(), |k| format!("{} MHz", mhz(k)));
    let source = match c.ta1 {
        Some(v) => format!("TA1 = {v:02X}"),
        None => "TA1 absent: defaults".to_string(),
    };
    let _ = write!(out, "  Fi = {fi}, f(max) = {fmax}, Di = {di} ({source})");
    match (c.baud_at_f_max, c.etu_us_at_f_max) {
        (Some(b), Some(e)) => {
            let _ = writeln!(out, ": {b:.0} bit/s at f(max), 1 etu = {e:.2} µs");
        }
        _ => {
            let _ = writeln!(out, ": baud rate undefined (RFU code)");
        }
    }
    let g = atr.extra_guard_time();
    if g.minimum {
        let _ = writeln!(
            out,
            "  extra guard time: N = 255, minimum (12 etu for T=0, 11 etu for T=1)"
        );
    } else {
        let _ = writeln!(
            out,
            "  extra guard time: N = {}{} → {} etu between characters",
            g.n,
            if g.tc1.is_none() { " (default)" } else { "" },
            g.guard_time_t0_etu
        );
    }
    if let Some(v) = atr.legacy_vpp() {
        let _ = writeln!(
            out,
            "  VPP (TB1/TB2, deprecated, ignored by ISO/IEC 7816-3:2006 readers): {}",
            if v.connected {
                "connected"
            } else {
                "not connected"
            }
        );
    }
}

/// The parameters of T=0, T=1 and T=15, where the ATR gives them.
fn protocol_parameters_section(out: &mut String, atr: &Atr) {
    if let Some(t) = atr.t0_params() {
        let _ = write!(
            out,
            "  T=0: WI = {}{}",
            t.wi,
            if t.tc2.is_none() {
                " (default)"
            } else {
                " (TC2)"
            }
        );
        if let (Some(cy), Some(ms)) = (t.wt_clock_cycles, t.wt_ms_at_f_max) {
            let _ = write!(
                out,
                " → WT (WWT) = {cy} clock cycles = {ms:.2} ms at f(max)"
            );
        }
        if t.wi_rfu {
            out.push_str(" (WI = 0 is RFU)");
        }
        out.push('\n');
    }
    if let Some(t) = atr.t1_params() {
        let _ = writeln!(
            out,
            "  T=1: IFSC = {}{}; BWI = {}, CWI = {}{} → CWT = {} etu{}; error detection: {}{}",
            t.ifsc,
            if t.ta.is_none() {
                " (default)"
            } else if t.ifsc_rfu {
                " (RFU value)"
            } else {
                ""
            },
            t.bwi,
            t.cwi,
            if t.tb.is_none() { " (defaults)" } else { "" },
            t.cwt_etu,
            t.bwt_ms_at_f_max
                .map_or(String::new(), |ms| format!(", BWT = {ms:.1} ms at f(max)")),
            match t.error_detection {
                ErrorDetection::Lrc => "LRC",
                ErrorDetection::Crc => "CRC",
            },
            if t.tc.is_none() { " (default)" } else { "" }
        );
    }
    if let Some(t) = atr.t15_params() {
        let stop = match t.clock_stop {
            None => "not indicated",
            Some(ClockStop::NotSupported) => "not supported",
            Some(ClockStop::StateL) => "supported in state L",
            Some(ClockStop::StateH) => "supported in state H",
            Some(ClockStop::NoPreference) => "supported, no preference",
        };
        let classes: Vec<String> = t
            .classes
            .iter()
            .map(|c| format!("{:?} ({})", c, c.nominal()))
            .collect();
        let _ = writeln!(
            out,
            "  T=15: clock stop {stop}; classes: {}{}",
            if classes.is_empty() {
                "not indicated (class A by default)".to_string()
            } else {
                classes.join(", ")
            },
            match t.spu {
                Some(s) => format!("; SPU = {s:02X}"),
                None => String::new(),
            }
        );
    }
    out.push('\n');

    historical_section(atr, out);
    out.push('\n');
}
