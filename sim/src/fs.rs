//! The card's persistent state and its file tree.
//!
//! Owns [`CardState`] (everything that survives a power cycle: config,
//! serial, PIN salt, files, PIN objects) and the tree operations on it: child
//! lookup by FID, SFI and DF name, paths, subtree removal, memory accounting
//! (ISO/IEC 7816-4:2013 §5.3.1 file organisation and referencing). Files live
//! in a flat list with parent links; the MF always has id 0.

use serde::{Deserialize, Serialize};

use super::objects::{BioObject, KeyObject, SdState};
use super::security::{PinObject, SecretHex};
use super::serde_hex::{hex_bytes, hex_fid, opt_hex_bytes};
use super::SimConfig;

/// Identifier of the MF in [`CardState::files`].
pub(super) const MF_ID: u32 = 0;
/// File identifier of the MF.
pub(super) const MF_FID: u16 = 0x3F00;

/// Life cycle status bytes (7816-4 §7.4.10, table 15).
pub(super) mod lcs {
    pub const CREATION: u8 = 0x01;
    pub const INITIALISATION: u8 = 0x03;
    pub const DEACTIVATED: u8 = 0x04;
    pub const ACTIVATED: u8 = 0x05;
    pub const TERMINATED: u8 = 0x0C;

    /// Operational state: access rules are enforced.
    pub fn operational(v: u8) -> bool {
        v == DEACTIVATED || v == ACTIVATED
    }
    pub fn terminated(v: u8) -> bool {
        (0x0C..=0x0F).contains(&v)
    }
    /// Values this card accepts in an image or in tag 8A of CREATE FILE.
    pub fn valid(v: u8) -> bool {
        matches!(v, CREATION | INITIALISATION | DEACTIVATED | ACTIVATED) || terminated(v)
    }
}

/// The card life cycle register (GET DATA DF70), persistent. It moves
/// with the MF: BLANK while the MF is in 01/03, PERSONALIZED and ACTIVATED
/// while the MF is operational (04/05), TERMINATED with the MF.
pub(super) mod card_lc {
    pub const BLANK: u8 = 0x01;
    pub const PERSONALIZED: u8 = 0x03;
    pub const ACTIVATED: u8 = 0x07;
    pub const TERMINATED: u8 = 0x0F;

    pub fn valid(v: u8) -> bool {
        matches!(v, BLANK | PERSONALIZED | ACTIVATED | TERMINATED)
    }

    /// The register value that goes with an MF life cycle status, for
    /// images written before the register existed (version 1): an
    /// operational MF counts as ACTIVATED.
    pub fn from_mf_lcs(mf: u8) -> u8 {
        if super::lcs::terminated(mf) {
            TERMINATED
        } else if super::lcs::operational(mf) {
            ACTIVATED
        } else {
            BLANK
        }
    }

    /// Whether register value `v` is consistent with MF LCS `mf`.
    pub fn consistent(v: u8, mf: u8) -> bool {
        match v {
            BLANK => mf == super::lcs::CREATION || mf == super::lcs::INITIALISATION,
            PERSONALIZED | ACTIVATED => super::lcs::operational(mf),
            TERMINATED => super::lcs::terminated(mf),
            _ => false,
        }
    }
}

/// Retry limit of the issuer (transport) key.
pub(super) const ISSUER_TRY_LIMIT: u8 = 10;

fn issuer_try_limit() -> u8 {
    ISSUER_TRY_LIMIT
}

/// Bookkeeping overhead charged per file, PIN, key and biometric object.
pub(super) const FILE_OVERHEAD: usize = 32;
pub(super) const PIN_OVERHEAD: usize = 48;
pub(super) const KEY_OVERHEAD: usize = 128;
pub(super) const BIO_OVERHEAD: usize = 48;

/// What kind of file a record is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(super) enum FileKind {
    /// Dedicated file, optionally with a DF name (AID).
    Df {
        #[serde(default, with = "opt_hex_bytes")]
        name: Option<Vec<u8>>,
    },
    /// Transparent working EF; its size is `data.len()`.
    Ef {
        /// Short EF identifier 1..=30, if the EF has one.
        #[serde(default)]
        sfi: Option<u8>,
        #[serde(with = "hex_bytes")]
        data: Vec<u8>,
    },
}

/// One file of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FileRec {
    pub id: u32,
    pub parent: Option<u32>,
    #[serde(with = "hex_fid")]
    pub fid: u16,
    pub lcs: u8,
    /// Compact security attributes (value of tag 8C), as given at creation.
    #[serde(default, with = "opt_hex_bytes")]
    pub security: Option<Vec<u8>>,
    pub kind: FileKind,
}

impl FileRec {
    pub fn is_df(&self) -> bool {
        matches!(self.kind, FileKind::Df { .. })
    }
    pub fn name(&self) -> Option<&[u8]> {
        match &self.kind {
            FileKind::Df { name } => name.as_deref(),
            FileKind::Ef { .. } => None,
        }
    }
    pub fn sfi(&self) -> Option<u8> {
        match &self.kind {
            FileKind::Ef { sfi, .. } => *sfi,
            FileKind::Df { .. } => None,
        }
    }
    /// Bytes charged against the card's memory.
    pub fn footprint(&self) -> usize {
        let body = match &self.kind {
            FileKind::Df { name } => name.as_ref().map_or(0, Vec::len),
            FileKind::Ef { data, .. } => data.len(),
        };
        FILE_OVERHEAD
            .saturating_add(body)
            .saturating_add(self.security.as_ref().map_or(0, Vec::len))
    }
}

/// Everything the card keeps in non-volatile memory (and in the image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct CardState {
    pub format: String,
    pub version: u32,
    pub config: SimConfig,
    #[serde(with = "hex_bytes")]
    pub serial: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub pin_salt: Vec<u8>,
    pub next_id: u32,
    pub files: Vec<FileRec>,
    pub pins: Vec<PinObject>,
    /// Card life cycle register ([`card_lc`]); 0 only while loading a
    /// version-1 image, which has none.
    #[serde(default)]
    pub life_cycle: u8,
    /// Issuer (transport) AES key, 16/24/32 bytes; `None`: the card has no
    /// issuer key and personalisation needs no authentication.
    #[serde(default)]
    pub issuer_key: Option<SecretHex>,
    /// Tries left for EXTERNAL AUTHENTICATE with the issuer key.
    #[serde(default = "issuer_try_limit")]
    pub issuer_tries_left: u8,
    /// ECDSA P-256 key objects, key references 1..=4, in reference order.
    #[serde(default)]
    pub keys: Vec<KeyObject>,
    /// Biometric reference objects (numbers shared with PINs), in number
    /// order.
    #[serde(default)]
    pub bios: Vec<BioObject>,
    /// The issuer security domain (SCP03), if the card has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sd: Option<SdState>,
    /// The domestic OS's own objects (PINs, key slots, biometric
    /// references, card life cycle); `None` on a reference card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domestic: Option<super::domestic_state::DomState>,
}

impl CardState {
    pub fn file(&self, id: u32) -> Option<&FileRec> {
        self.files.iter().find(|f| f.id == id)
    }
    pub fn file_mut(&mut self, id: u32) -> Option<&mut FileRec> {
        self.files.iter_mut().find(|f| f.id == id)
    }
    pub fn mf_lcs(&self) -> u8 {
        self.file(MF_ID).map_or(lcs::TERMINATED, |f| f.lcs)
    }
    pub fn children(&self, df: u32) -> impl Iterator<Item = &FileRec> {
        self.files.iter().filter(move |f| f.parent == Some(df))
    }
    pub fn child_by_fid(&self, df: u32, fid: u16) -> Option<&FileRec> {
        self.children(df).find(|f| f.fid == fid)
    }
    pub fn parent_of(&self, id: u32) -> Option<u32> {
        self.file(id).and_then(|f| f.parent)
    }
    /// EF child of `df` with short EF identifier `sfi`.
    pub fn child_by_sfi(&self, df: u32, sfi: u8) -> Option<&FileRec> {
        self.children(df).find(|f| f.sfi() == Some(sfi))
    }
    /// True if `anc` is `id` or one of its ancestors.
    pub fn is_within(&self, id: u32, anc: u32) -> bool {
        let mut cur = Some(id);
        // The tree depth is bounded by the number of files (no cycles after
        // image validation); the counter makes that robust anyway.
        for _ in 0..=self.files.len() {
            match cur {
                Some(c) if c == anc => return true,
                Some(c) => cur = self.parent_of(c),
                None => return false,
            }
        }
        false
    }
    /// True if `id` or any ancestor is in a termination state.
    pub fn in_terminated_branch(&self, id: u32) -> bool {
        let mut cur = Some(id);
        for _ in 0..=self.files.len() {
            match cur.and_then(|c| self.file(c)) {
                Some(f) if lcs::terminated(f.lcs) => return true,
                Some(f) => cur = f.parent,
                None => return false,
            }
        }
        false
    }
    /// Ids of `id` and all its descendants.
    pub fn subtree(&self, id: u32) -> Vec<u32> {
        self.files
            .iter()
            .filter(|f| self.is_within(f.id, id))
            .map(|f| f.id)
            .collect()
    }
    /// Resolve a FID as SELECT P1=00 does (7816-4 §5.3.1.1): the MF, then
    /// the children of the current DF, the current DF itself, its parent, and
    /// the parent's children.
    pub fn resolve_fid(&self, cur_df: u32, fid: u16) -> Option<u32> {
        if fid == MF_FID {
            return Some(MF_ID);
        }
        if let Some(f) = self.child_by_fid(cur_df, fid) {
            return Some(f.id);
        }
        let cur = self.file(cur_df)?;
        if cur.fid == fid {
            return Some(cur_df);
        }
        let parent = cur.parent?;
        if self.file(parent).is_some_and(|p| p.fid == fid) {
            return Some(parent);
        }
        self.child_by_fid(parent, fid).map(|f| f.id)
    }
    /// Follow a path (concatenated FIDs) starting at DF `start`. Every
    /// element but the last must be a DF.
    pub fn resolve_path(&self, start: u32, path: &[u8]) -> Option<u32> {
        let mut cur = start;
        let mut chunks = path.chunks_exact(2).peekable();
        while let Some(c) = chunks.next() {
            let fid = match c {
                [a, b] => u16::from_be_bytes([*a, *b]),
                _ => return None,
            };
            let f = self.child_by_fid(cur, fid)?;
            if chunks.peek().is_some() && !f.is_df() {
                return None;
            }
            cur = f.id;
        }
        Some(cur)
    }
    /// Bytes in use (files and PIN objects).
    pub fn used_memory(&self) -> usize {
        let files = self
            .files
            .iter()
            .fold(0usize, |a, f| a.saturating_add(f.footprint()));
        let keys = self.keys.len().saturating_mul(KEY_OVERHEAD);
        let bios = self.bios.iter().fold(0usize, |a, b| {
            a.saturating_add(BIO_OVERHEAD)
                .saturating_add(b.template.len())
        });
        files
            .saturating_add(self.pins.len().saturating_mul(PIN_OVERHEAD))
            .saturating_add(keys)
            .saturating_add(bios)
    }
    pub fn free_memory(&self) -> usize {
        self.config.memory_bytes.saturating_sub(self.used_memory())
    }
    /// DFs whose name starts with `prefix`, in creation order.
    pub fn dfs_named(&self, prefix: &[u8]) -> Vec<(u32, bool)> {
        self.files
            .iter()
            .filter_map(|f| {
                let n = f.name()?;
                n.starts_with(prefix).then_some((f.id, n == prefix))
            })
            .collect()
    }
    pub fn pin(&self, number: u8) -> Option<&PinObject> {
        self.pins.iter().find(|p| p.number == number)
    }
    pub fn pin_mut(&mut self, number: u8) -> Option<&mut PinObject> {
        self.pins.iter_mut().find(|p| p.number == number)
    }
    pub fn bio(&self, number: u8) -> Option<&BioObject> {
        self.bios.iter().find(|b| b.number == number)
    }
    pub fn bio_mut(&mut self, number: u8) -> Option<&mut BioObject> {
        self.bios.iter_mut().find(|b| b.number == number)
    }
    pub fn key(&self, kid: u8) -> Option<&KeyObject> {
        self.keys.iter().find(|k| k.kid == kid)
    }
    /// True if PIN `number` is named as the PUK of some PIN.
    pub fn is_puk(&self, number: u8) -> bool {
        self.pins.iter().any(|p| p.puk == Some(number))
    }
}
