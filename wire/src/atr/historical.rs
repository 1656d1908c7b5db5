//! Historical bytes: category indicator, compact-TLV objects and the status
//! indicator (ISO/IEC 7816-4:2013 §8.1.1 "Historical bytes"; §12.1.1 for
//! card service data and card capabilities), plus the PC/SC Part 3 layout
//! that contactless readers synthesize for storage cards.
//!
//! The decoder returns the decoded structure and one note per byte so the
//! caller can show every historical byte with its meaning.

use super::defect::{Defect, TlvProblem};
use serde::Serialize;

/// Registered application provider identifier of the PC/SC Workgroup.
const PCSC_RID: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x06];

/// Decoded historical bytes, by category indicator (first historical byte).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum Historical {
    /// K = 0: no historical bytes.
    None,
    /// Category '00' (compact-TLV objects then a mandatory 3-byte status
    /// indicator) or '80' (compact-TLV objects, status indicator optional
    /// as a tag-8 object).
    CompactTlv {
        /// 0x00 or 0x80.
        category: u8,
        /// Objects decoded, in order.
        objects: Vec<CompactTlvObject>,
        /// Status indicator: the final 3 bytes for category '00', the
        /// tag-8 object for category '80'.
        status: Option<StatusIndicator>,
        /// Bytes left undecoded after a malformation (empty when all decoded).
        undecoded: Vec<u8>,
    },
    /// Category '10': a DIR data reference follows.
    DirDataReference {
        /// The byte after the category indicator.
        reference: Option<u8>,
        /// Any bytes after the reference (their use is not specified).
        extra: Vec<u8>,
    },
    /// Category '80' followed by the PC/SC Part 3 storage-card layout
    /// (`4F len A0 00 00 03 06 SS NN NN RFU…`): a contactless reader's
    /// synthesized ATR for a memory card. The '4F' here is a BER-TLV tag,
    /// not compact-TLV, so it is recognized before compact-TLV decoding.
    PcscStorageCard(PcscStorageCard),
    /// Category '81' to '8F': reserved for future use.
    Rfu {
        /// The category indicator.
        category: u8,
        /// The bytes after it.
        data: Vec<u8>,
    },
    /// Any other category: proprietary format, shown raw (not a defect).
    Proprietary {
        /// The category indicator (first historical byte).
        category: u8,
        /// All historical bytes, category byte included.
        data: Vec<u8>,
    },
}

impl Historical {
    /// Short name of the format, e.g. "compact-TLV (category 80)".
    pub fn format_name(&self) -> String {
        match self {
            Historical::None => "none".to_string(),
            Historical::CompactTlv { category, .. } => {
                format!("compact-TLV (category {category:02X})")
            }
            Historical::DirDataReference { .. } => "DIR data reference (category 10)".to_string(),
            Historical::PcscStorageCard(_) => "PC/SC Part 3 storage card (category 80)".to_string(),
            Historical::Rfu { category, .. } => format!("RFU category {category:02X}"),
            Historical::Proprietary { category, .. } => {
                format!("proprietary (category {category:02X})")
            }
        }
    }

    /// The compact-TLV objects, empty for other formats.
    pub fn objects(&self) -> &[CompactTlvObject] {
        match self {
            Historical::CompactTlv { objects, .. } => objects,
            _ => &[],
        }
    }
}

/// One compact-TLV data object (ISO/IEC 7816-4:2013 §8.1.1.2): a header byte
/// `tag << 4 | length`, then `length` value bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompactTlvObject {
    /// Offset of the header byte in the ATR.
    pub offset: usize,
    /// Tag nibble.
    pub tag: u8,
    /// Value bytes.
    pub value: Vec<u8>,
    /// Decoded value.
    pub content: TlvContent,
}

/// Meaning of a compact-TLV object, by tag (ISO/IEC 7816-4:2013 Table 11 "historical bytes").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TlvContent {
    /// Tag 1: country code (ISO 3166-1, 3 BCD digits) and national data.
    CountryCode {
        /// The three digits, when BCD coded.
        code: Option<String>,
    },
    /// Tag 2: issuer identification number (ISO/IEC 7812-1), BCD digits.
    IssuerIdentification {
        /// Digits, when BCD coded (padding 'F' removed).
        digits: Option<String>,
    },
    /// Tag 3: card service data.
    CardServiceData(CardServiceData),
    /// Tag 4: initial access data.
    InitialAccessData,
    /// Tag 5: card issuer's data.
    CardIssuerData,
    /// Tag 6: pre-issuing data.
    PreIssuingData,
    /// Tag 7: card capabilities.
    CardCapabilities(CardCapabilities),
    /// Tag 8: status indicator.
    StatusIndicator(StatusIndicator),
    /// Tag F: application identifier.
    ApplicationIdentifier {
        /// Registered application provider identifier (first 5 bytes).
        rid: Vec<u8>,
        /// Proprietary application identifier extension.
        pix: Vec<u8>,
    },
    /// A tag the standard does not define here (0, 9 to E).
    Rfu,
    /// A defined tag whose value has a length the standard does not allow,
    /// and nothing could be decoded.
    Invalid,
}

impl TlvContent {
    /// Name of a compact-TLV tag.
    pub fn tag_name(tag: u8) -> &'static str {
        match tag {
            1 => "country code",
            2 => "issuer identification number",
            3 => "card service data",
            4 => "initial access data",
            5 => "card issuer's data",
            6 => "pre-issuing data",
            7 => "card capabilities",
            8 => "status indicator",
            0xF => "application identifier",
            _ => "RFU tag",
        }
    }
}

/// How EF.DIR and EF.ATR/INFO are read (card service data bits 4-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EfAccess {
    /// 100: READ BINARY (transparent structure).
    ReadBinary,
    /// 000: READ RECORD(S) (record structure).
    ReadRecord,
    /// 010: GET DATA (TLV structure).
    GetData,
    /// Any other value: RFU.
    Rfu(u8),
}

/// Card service data byte (compact-TLV tag 3), ISO/IEC 7816-4:2013 §12.1.1.5.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardServiceData {
    /// The byte.
    pub value: u8,
    /// b8: application selection by full DF name.
    pub select_by_full_df_name: bool,
    /// b7: application selection by partial DF name.
    pub select_by_partial_df_name: bool,
    /// b6: BER-TLV data objects available in EF.DIR.
    pub bertlv_in_ef_dir: bool,
    /// b5: BER-TLV data objects available in EF.ATR/INFO.
    pub bertlv_in_ef_atr: bool,
    /// b4-b2: how EF.DIR and EF.ATR/INFO are accessed.
    pub ef_access: EfAccess,
    /// b1 = 0: the card has a master file.
    pub has_mf: bool,
}

impl CardServiceData {
    fn new(value: u8) -> CardServiceData {
        let access = (value >> 1) & 0x07;
        CardServiceData {
            value,
            select_by_full_df_name: value & 0x80 != 0,
            select_by_partial_df_name: value & 0x40 != 0,
            bertlv_in_ef_dir: value & 0x20 != 0,
            bertlv_in_ef_atr: value & 0x10 != 0,
            ef_access: match access {
                0b100 => EfAccess::ReadBinary,
                0b000 => EfAccess::ReadRecord,
                0b010 => EfAccess::GetData,
                other => EfAccess::Rfu(other),
            },
            has_mf: value & 0x01 == 0,
        }
    }
}

/// First software function table: selection methods
/// (ISO/IEC 7816-4:2013 §12.1.1.9, Table 86).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelectionMethods {
    /// The byte.
    pub value: u8,
    /// b8: DF selection by full DF name.
    pub by_full_df_name: bool,
    /// b7: DF selection by partial DF name.
    pub by_partial_df_name: bool,
    /// b6: DF selection by path.
    pub by_path: bool,
    /// b5: DF selection by file identifier.
    pub by_file_id: bool,
    /// b4: implicit DF selection.
    pub implicit: bool,
    /// b3: short EF identifier supported.
    pub short_ef_id: bool,
    /// b2: record number supported.
    pub record_number: bool,
    /// b1: record identifier supported.
    pub record_identifier: bool,
}

/// Write behaviour coded in the data coding byte, bits 7-6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WriteBehaviour {
    /// 00: one-time write.
    OneTime,
    /// 01: proprietary.
    Proprietary,
    /// 10: write OR.
    WriteOr,
    /// 11: write AND.
    WriteAnd,
}

/// Second software function table: data coding byte
/// (ISO/IEC 7816-4:2013 §12.1.1.9, Table 87).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataCoding {
    /// The byte.
    pub value: u8,
    /// b8: EFs of TLV structure supported.
    pub tlv_efs: bool,
    /// b7-b6: behaviour of write functions.
    pub write_behaviour: WriteBehaviour,
    /// b5: value 'FF' for the first byte of BER-TLV tag fields is valid
    /// (otherwise it is padding).
    pub ff_tag_valid: bool,
    /// b4-b1: data unit size exponent; the size is 2^exponent quartets.
    pub data_unit_exponent: u8,
    /// Data unit size in quartets (4-bit units).
    pub data_unit_quartets: u32,
}

/// Third software function table (ISO/IEC 7816-4:2013 §12.1.1.9, Table 88).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThirdFunctionTable {
    /// The byte.
    pub value: u8,
    /// b8: command chaining.
    pub command_chaining: bool,
    /// b7: extended Lc and Le fields.
    pub extended_lc_le: bool,
    /// b6: extended length information in EF.ATR/INFO.
    pub extended_length_info: bool,
    /// b5: logical channel numbers assigned by the card.
    pub channels_assigned_by_card: bool,
    /// b4: logical channel numbers assigned by the interface device.
    pub channels_assigned_by_ifd: bool,
    /// b3-b1 decoded: 4y + 2z + t + 1 channels, 8 meaning "eight or more".
    pub max_logical_channels: u8,
}

/// Card capabilities (compact-TLV tag 7): up to three software function tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardCapabilities {
    /// First table, selection methods.
    pub selection: Option<SelectionMethods>,
    /// Second table, data coding byte.
    pub data_coding: Option<DataCoding>,
    /// Third table, chaining, length fields and logical channels.
    pub third: Option<ThirdFunctionTable>,
    /// Command chaining supported (false when the third table is absent).
    pub command_chaining: bool,
    /// Extended Lc and Le fields supported (false when the third table is absent).
    pub extended_lc_le: bool,
    /// Maximum number of logical channels, basic channel included; 1 when
    /// the third table is absent or says no logical channel; 8 means "eight or more".
    pub logical_channels: u8,
}

impl CardCapabilities {
    /// Decode 1 to 3 table bytes (extra bytes are ignored; an empty slice gives
    /// "nothing announced").
    pub fn from_bytes(bytes: &[u8]) -> CardCapabilities {
        let selection = bytes.first().map(|&v| SelectionMethods {
            value: v,
            by_full_df_name: v & 0x80 != 0,
            by_partial_df_name: v & 0x40 != 0,
            by_path: v & 0x20 != 0,
            by_file_id: v & 0x10 != 0,
            implicit: v & 0x08 != 0,
            short_ef_id: v & 0x04 != 0,
            record_number: v & 0x02 != 0,
            record_identifier: v & 0x01 != 0,
        });
        let data_coding = bytes.get(1).map(|&v| DataCoding {
            value: v,
            tlv_efs: v & 0x80 != 0,
            write_behaviour: match (v >> 5) & 0x03 {
                0 => WriteBehaviour::OneTime,
                1 => WriteBehaviour::Proprietary,
                2 => WriteBehaviour::WriteOr,
                _ => WriteBehaviour::WriteAnd,
            },
            ff_tag_valid: v & 0x10 != 0,
            data_unit_exponent: v & 0x0F,
            data_unit_quartets: 1u32 << (v & 0x0F),
        });
        let third = bytes.get(2).map(|&v| {
            let bits = v & 0x07;
            ThirdFunctionTable {
                value: v,
                command_chaining: v & 0x80 != 0,
                extended_lc_le: v & 0x40 != 0,
                extended_length_info: v & 0x20 != 0,
                channels_assigned_by_card: v & 0x10 != 0,
                channels_assigned_by_ifd: v & 0x08 != 0,
                max_logical_channels: if bits == 0x07 { 8 } else { bits + 1 },
            }
        });
        let logical_channels = match &third {
            Some(t) if t.channels_assigned_by_card || t.channels_assigned_by_ifd => {
                t.max_logical_channels
            }
            _ => 1,
        };
        CardCapabilities {
            command_chaining: third.as_ref().is_some_and(|t| t.command_chaining),
            extended_lc_le: third.as_ref().is_some_and(|t| t.extended_lc_le),
            logical_channels,
            selection,
            data_coding,
            third,
        }
    }
}

/// Status indicator (ISO/IEC 7816-4:2013 §8.1.1.3): life cycle status byte
/// and/or a status word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusIndicator {
    /// Life cycle status byte (LCS).
    pub lcs: Option<u8>,
    /// SW1-SW2.
    pub sw: Option<u16>,
}

impl StatusIndicator {
    /// Meaning of the life cycle status byte (ISO/IEC 7816-4:2013 §7.4.10,
    /// Table 15); the table is [`crate::tlv::lcs_meaning`], shared with the
    /// FCP decoder.
    pub fn lcs_meaning(lcs: u8) -> &'static str {
        crate::tlv::lcs_meaning(lcs)
    }

    /// Meaning of a status word, as the host side knows it (ISO/IEC 7816-4 §5.6).
    pub fn sw_meaning(sw: u16) -> String {
        crate::apdu::StatusWord::from_u16(sw).meaning()
    }
}

/// PC/SC Part 3 synthesized historical bytes of a contactless storage card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PcscStorageCard {
    /// RID, always A0 00 00 03 06 (PC/SC Workgroup).
    pub rid: Vec<u8>,
    /// Standard byte SS.
    pub standard: Option<u8>,
    /// Name of the standard when known.
    pub standard_name: Option<String>,
    /// Card name bytes NN NN.
    pub card_name: Option<u16>,
    /// Card name when known.
    pub card_name_text: Option<String>,
    /// Remaining bytes (RFU, should be zero).
    pub rfu: Vec<u8>,
}

fn pcsc_standard_name(ss: u8) -> Option<&'static str> {
    Some(match ss {
        0x00 => "no information given",
        0x01 => "ISO/IEC 14443 A, part 1",
        0x02 => "ISO/IEC 14443 A, part 2",
        0x03 => "ISO/IEC 14443 A, part 3",
        0x05 => "ISO/IEC 14443 B, part 1",
        0x06 => "ISO/IEC 14443 B, part 2",
        0x07 => "ISO/IEC 14443 B, part 3",
        0x09 => "ISO/IEC 15693, part 1",
        0x0A => "ISO/IEC 15693, part 2",
        0x0B => "ISO/IEC 15693, part 3",
        0x0C => "ISO/IEC 15693, part 4",
        _ => return None,
    })
}

fn pcsc_card_name(nn: u16) -> Option<&'static str> {
    Some(match nn {
        0x0000 => "no information given",
        0x0001 => "MIFARE Classic 1K",
        0x0002 => "MIFARE Classic 4K",
        0x0003 => "MIFARE Ultralight",
        0x0026 => "MIFARE Mini",
        _ => return None,
    })
}

/// One note per historical byte: (offset in ATR, meaning, undecoded?).
pub(super) type HistNote = (usize, String, bool);

/// Decode historical bytes `h` that start at ATR offset `base`.
pub(super) fn decode(
    h: &[u8],
    base: usize,
    defects: &mut Vec<Defect>,
) -> (Historical, Vec<HistNote>) {
    let mut notes: Vec<HistNote> = Vec::new();
    let Some((&category, rest)) = h.split_first() else {
        return (Historical::None, notes);
    };
    let n = &mut notes;
    let decoded = match category {
        0x00 => category_00(rest, base, defects, n),
        0x80 => category_80(rest, base, defects, n),
        0x10 => dir_data_reference(rest, base, defects, n),
        0x81..=0x8F => rfu(category, rest, base, n),
        _ => proprietary(h, base, n),
    };
    (decoded, notes)
}

/// Category 00: compact-TLV objects, then a mandatory 3-byte status
/// indicator.
fn category_00(
    rest: &[u8],
    base: usize,
    defects: &mut Vec<Defect>,
    notes: &mut Vec<HistNote>,
) -> Historical {
    let category = 0x00;
    notes.push((
        base,
        "category indicator 00: compact-TLV objects, then a 3-byte status indicator".into(),
        false,
    ));
    if rest.len() < 3 {
        defects.push(Defect::MalformedCompactTlv {
            offset: base + 1,
            reason: TlvProblem::MissingStatusIndicator {
                available: rest.len(),
            },
        });
        for i in 0..rest.len() {
            notes.push((
                base + 1 + i,
                "undecoded: too short for the status indicator".into(),
                true,
            ));
        }
        return Historical::CompactTlv {
            category,
            objects: Vec::new(),
            status: None,
            undecoded: rest.to_vec(),
        };
    }
    let split = rest.len() - 3;
    let (tlv, status_bytes) = rest.split_at(split);
    let (objects, undecoded) = decode_tlv(tlv, base + 1, defects, notes);
    let lcs = status_bytes.first().copied();
    let sw = match (status_bytes.get(1), status_bytes.get(2)) {
        (Some(&a), Some(&b)) => Some(u16::from_be_bytes([a, b])),
        _ => None,
    };
    let so = base + 1 + split;
    if let Some(l) = lcs {
        notes.push((
            so,
            format!(
                "status indicator, LCS = {l:02X}: {}",
                StatusIndicator::lcs_meaning(l)
            ),
            false,
        ));
    }
    if let Some(sw) = sw {
        notes.push((so + 1, format!("status indicator, SW1 of {sw:04X}"), false));
        notes.push((
            so + 2,
            format!(
                "status indicator, SW2 of {sw:04X}: {}",
                StatusIndicator::sw_meaning(sw)
            ),
            false,
        ));
    }
    Historical::CompactTlv {
        category,
        objects,
        status: Some(StatusIndicator { lcs, sw }),
        undecoded,
    }
}

/// Category 80: a PC/SC storage card's layout, or compact-TLV objects with
/// an optional status indicator.
fn category_80(
    rest: &[u8],
    base: usize,
    defects: &mut Vec<Defect>,
    notes: &mut Vec<HistNote>,
) -> Historical {
    let category = 0x80;
    if let Some(card) = pcsc_storage(rest) {
        notes.push((
            base,
            "category indicator 80 (PC/SC Part 3 storage card layout)".into(),
            false,
        ));
        let labels = [
            "tag 4F (application identifier, BER-TLV)".to_string(),
            format!("length {:02X}", rest.get(1).copied().unwrap_or(0)),
        ];
        for (i, b) in rest.iter().enumerate() {
            let text = match i {
                0 | 1 => labels.get(i).cloned().unwrap_or_default(),
                2..=6 => "RID (PC/SC Workgroup: A0 00 00 03 06)".to_string(),
                7 => format!(
                    "standard SS = {b:02X}: {}",
                    card.standard_name.as_deref().unwrap_or("not known here")
                ),
                8 | 9 => format!(
                    "card name NN NN = {}: {}",
                    card.card_name
                        .map(|n| format!("{n:04X}"))
                        .unwrap_or_default(),
                    card.card_name_text.as_deref().unwrap_or("not known here")
                ),
                _ => "RFU (should be 00)".to_string(),
            };
            notes.push((base + 1 + i, text, false));
        }
        return Historical::PcscStorageCard(card);
    }
    notes.push((
        base,
        "category indicator 80: compact-TLV objects, status indicator optional".into(),
        false,
    ));
    let (objects, undecoded) = decode_tlv(rest, base + 1, defects, notes);
    let status = objects.iter().rev().find_map(|o| match &o.content {
        TlvContent::StatusIndicator(s) => Some(s.clone()),
        _ => None,
    });
    Historical::CompactTlv {
        category,
        objects,
        status,
        undecoded,
    }
}

/// Category 10: a DIR data reference.
fn dir_data_reference(
    rest: &[u8],
    base: usize,
    defects: &mut Vec<Defect>,
    notes: &mut Vec<HistNote>,
) -> Historical {
    notes.push((
        base,
        "category indicator 10: DIR data reference follows".into(),
        false,
    ));
    if rest.is_empty() {
        defects.push(Defect::MalformedCompactTlv {
            offset: base,
            reason: TlvProblem::MissingDirReference,
        });
    }
    for (i, b) in rest.iter().enumerate() {
        let text = if i == 0 {
            format!("DIR data reference = {b:02X}")
        } else {
            "after the DIR data reference (use not specified)".to_string()
        };
        notes.push((base + 1 + i, text, false));
    }
    Historical::DirDataReference {
        reference: rest.first().copied(),
        extra: rest.get(1..).unwrap_or_default().to_vec(),
    }
}

/// Categories 81 to 8F: reserved for future use.
fn rfu(category: u8, rest: &[u8], base: usize, notes: &mut Vec<HistNote>) -> Historical {
    notes.push((
        base,
        format!("category indicator {category:02X}: RFU"),
        false,
    ));
    for i in 0..rest.len() {
        notes.push((
            base + 1 + i,
            "content of an RFU category (not interpreted)".into(),
            false,
        ));
    }
    Historical::Rfu {
        category,
        data: rest.to_vec(),
    }
}

/// Any other category: proprietary historical bytes.
fn proprietary(h: &[u8], base: usize, notes: &mut Vec<HistNote>) -> Historical {
    let category = h.first().copied().unwrap_or_default();
    let rest = h.get(1..).unwrap_or_default();
    notes.push((
        base,
        format!("category {category:02X}: proprietary historical bytes"),
        false,
    ));
    for i in 0..rest.len() {
        notes.push((base + 1 + i, "proprietary".into(), false));
    }
    Historical::Proprietary {
        category,
        data: h.to_vec(),
    }
}

/// Recognize `4F LL A0 00 00 03 06 SS NN NN …` exactly filling the rest.
fn pcsc_storage(rest: &[u8]) -> Option<PcscStorageCard> {
    let (&tag, after) = rest.split_first()?;
    let (&len, value) = after.split_first()?;
    if tag != 0x4F || usize::from(len) != value.len() || !value.starts_with(&PCSC_RID) {
        return None;
    }
    let standard = value.get(5).copied();
    let card_name = match (value.get(6), value.get(7)) {
        (Some(&a), Some(&b)) => Some(u16::from_be_bytes([a, b])),
        _ => None,
    };
    Some(PcscStorageCard {
        rid: PCSC_RID.to_vec(),
        standard,
        standard_name: standard.and_then(pcsc_standard_name).map(str::to_string),
        card_name,
        card_name_text: card_name.and_then(pcsc_card_name).map(str::to_string),
        rfu: value.get(8..).unwrap_or_default().to_vec(),
    })
}

/// BCD digits of `bytes`, stopping at an 'F' filler nibble; `None` if a
/// nibble is neither a digit nor trailing filler.
fn bcd_digits(bytes: &[u8], max_digits: usize) -> Option<String> {
    let mut s = String::new();
    let mut ended = false;
    for nib in bytes.iter().flat_map(|b| [b >> 4, b & 0x0F]) {
        if s.len() == max_digits {
            break;
        }
        match nib {
            0..=9 if !ended => s.push(char::from(b'0' + nib)),
            0x0F => ended = true,
            _ => return None,
        }
    }
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

fn unexpected_length(
    defects: &mut Vec<Defect>,
    offset: usize,
    tag: u8,
    length: usize,
    allowed: &'static str,
) {
    defects.push(Defect::MalformedCompactTlv {
        offset,
        reason: TlvProblem::UnexpectedLength {
            tag,
            length,
            allowed,
        },
    });
}

/// Decode a run of compact-TLV objects starting at ATR offset `base`.
/// Returns the objects and the undecoded remainder after a malformation.
fn decode_tlv(
    data: &[u8],
    base: usize,
    defects: &mut Vec<Defect>,
    notes: &mut Vec<HistNote>,
) -> (Vec<CompactTlvObject>, Vec<u8>) {
    let mut objects = Vec::new();
    let mut i = 0usize;
    while let Some(&header) = data.get(i) {
        let tag = header >> 4;
        let len = usize::from(header & 0x0F);
        let offset = base + i;
        let Some(value) = data.get(i + 1..i + 1 + len) else {
            let available = data.len() - i - 1;
            defects.push(Defect::MalformedCompactTlv {
                offset,
                reason: TlvProblem::LengthOverrun {
                    tag,
                    declared: len,
                    available,
                },
            });
            for k in i..data.len() {
                let text = if k == i {
                    format!(
                        "undecoded: compact-TLV header {header:02X} (tag {tag:X}, {}) announces {len} byte(s), only {available} remain",
                        TlvContent::tag_name(tag)
                    )
                } else {
                    "undecoded: inside an overrunning compact-TLV object".to_string()
                };
                notes.push((base + k, text, true));
            }
            let undecoded = data.get(i..).unwrap_or_default().to_vec();
            return (objects, undecoded);
        };
        let content = match tag {
            1 => TlvContent::CountryCode {
                code: bcd_digits(value, 3).filter(|d| d.len() == 3),
            },
            2 => TlvContent::IssuerIdentification {
                digits: bcd_digits(value, 2 * value.len()),
            },
            3 => match value.first() {
                Some(&b) => {
                    if len != 1 {
                        unexpected_length(defects, offset, tag, len, "1");
                    }
                    TlvContent::CardServiceData(CardServiceData::new(b))
                }
                None => {
                    unexpected_length(defects, offset, tag, len, "1");
                    TlvContent::Invalid
                }
            },
            4 => TlvContent::InitialAccessData,
            5 => TlvContent::CardIssuerData,
            6 => TlvContent::PreIssuingData,
            7 => {
                if len == 0 || len > 3 {
                    unexpected_length(defects, offset, tag, len, "1 to 3");
                }
                if len == 0 {
                    TlvContent::Invalid
                } else {
                    TlvContent::CardCapabilities(CardCapabilities::from_bytes(value))
                }
            }
            8 => match value {
                [lcs] => TlvContent::StatusIndicator(StatusIndicator {
                    lcs: Some(*lcs),
                    sw: None,
                }),
                [a, b] => TlvContent::StatusIndicator(StatusIndicator {
                    lcs: None,
                    sw: Some(u16::from_be_bytes([*a, *b])),
                }),
                [lcs, a, b] => TlvContent::StatusIndicator(StatusIndicator {
                    lcs: Some(*lcs),
                    sw: Some(u16::from_be_bytes([*a, *b])),
                }),
                _ => {
                    unexpected_length(defects, offset, tag, len, "1 to 3");
                    TlvContent::Invalid
                }
            },
            0xF => TlvContent::ApplicationIdentifier {
                rid: value.get(..5).unwrap_or(value).to_vec(),
                pix: value.get(5..).unwrap_or_default().to_vec(),
            },
            _ => TlvContent::Rfu,
        };
        notes.push((
            offset,
            format!(
                "compact-TLV header {header:02X}: tag {tag:X} ({}), length {len}",
                TlvContent::tag_name(tag)
            ),
            false,
        ));
        for (k, b) in value.iter().enumerate() {
            notes.push((offset + 1 + k, value_note(&content, tag, k, *b, len), false));
        }
        objects.push(CompactTlvObject {
            offset,
            tag,
            value: value.to_vec(),
            content,
        });
        i += 1 + len;
    }
    (objects, Vec::new())
}

/// Meaning of value byte `k` of an object.
fn value_note(content: &TlvContent, tag: u8, k: usize, b: u8, len: usize) -> String {
    let name = TlvContent::tag_name(tag);
    match content {
        TlvContent::CardServiceData(_) if k == 0 => format!("card service data byte {b:02X}"),
        TlvContent::CardCapabilities(_) => match k {
            0 => format!("card capabilities, first software function table (selection methods) = {b:02X}"),
            1 => format!("card capabilities, second software function table (data coding byte) = {b:02X}"),
            2 => format!("card capabilities, third software function table (chaining, lengths, logical channels) = {b:02X}"),
            _ => "card capabilities: byte beyond the three defined tables".to_string(),
        },
        TlvContent::StatusIndicator(_) => {
            let role = match (len, k) {
                (1, _) | (3, 0) => "LCS",
                (2, 0) | (3, 1) => "SW1",
                _ => "SW2",
            };
            format!("status indicator, {role} = {b:02X}")
        }
        TlvContent::ApplicationIdentifier { .. } => {
            if k < 5 {
                "application identifier, RID".to_string()
            } else {
                "application identifier, PIX".to_string()
            }
        }
        _ => format!("value of {name}"),
    }
}
