//! SELECT, READ BINARY and UPDATE BINARY of the domestic OS, on the
//! generic file tree. Selection by FID (P1 00), by full DF name only
//! (P1 04, no partial names) and by path from the MF (P1 08); no SFI.
//! SELECT answers an FCP (P2 04) or nothing (P2 0C). UPDATE BINARY takes
//! at most 240 bytes ([`MAX_UPDATE`]); more → 6700.

use super::super::apdu::{sw, Command};
use super::super::card::SimCard;
use super::super::fs::{FileKind, MF_FID, MF_ID};
use super::super::security::{access_allowed_with, ef_am};
use super::super::tlv::tlv;
use super::exec::{ok, DomResult};
use super::MAX_UPDATE;

impl SimCard {
    /// SELECT `00 A4 P1 P2`: P1 00 FID (empty: MF), 04 DF name, 08 path
    /// from the MF; P2 04 FCP, 0C none. Not found → 6A82; other P1/P2 →
    /// 6A86; an FID that is not 2 bytes or an odd path → 6700.
    pub(super) fn dom_select(&mut self, c: &Command) -> DomResult {
        if !matches!(c.p2, 0x04 | 0x0C) {
            return Err(sw::WRONG_P1P2);
        }
        let st = &self.state;
        let id = match c.p1 {
            0x00 => match c.data.as_slice() {
                [] => MF_ID,
                [a, b] => st
                    .resolve_fid(self.dvol.cur_df, u16::from_be_bytes([*a, *b]))
                    .ok_or(sw::FILE_NOT_FOUND)?,
                _ => return Err(sw::WRONG_LENGTH),
            },
            0x04 => {
                if c.data.is_empty() || c.data.len() > 16 {
                    return Err(sw::WRONG_LENGTH);
                }
                st.dfs_named(&c.data)
                    .into_iter()
                    .find(|(_, exact)| *exact)
                    .map(|(id, _)| id)
                    .ok_or(sw::FILE_NOT_FOUND)?
            }
            0x08 => {
                if c.data.is_empty() || !c.data.len().is_multiple_of(2) {
                    return Err(sw::WRONG_LENGTH);
                }
                let path = match c.data.get(..2) {
                    Some(first) if first == MF_FID.to_be_bytes() => c.data.get(2..).unwrap_or(&[]),
                    _ => c.data.as_slice(),
                };
                st.resolve_path(MF_ID, path).ok_or(sw::FILE_NOT_FOUND)?
            }
            _ => return Err(sw::WRONG_P1P2),
        };
        let f = st.file(id).ok_or(sw::FILE_NOT_FOUND)?;
        let fcp = (c.p2 == 0x04).then(|| fcp(f));
        if f.is_df() {
            self.dvol.cur_df = id;
            self.dvol.cur_ef = None;
        } else {
            self.dvol.cur_df = f.parent.unwrap_or(MF_ID);
            self.dvol.cur_ef = Some(id);
        }
        self.dvol.sd_selected = false;
        ok(fcp.unwrap_or_default())
    }

    /// The current EF's size, after checking the access mode `bit`.
    fn dom_ef(&self, c: &Command, bit: u8) -> Result<(u32, usize), u16> {
        if c.p1 & 0x80 != 0 {
            return Err(sw::WRONG_P1P2);
        }
        let id = self.dvol.cur_ef.ok_or(sw::NO_CURRENT_EF)?;
        let f = self.state.file(id).ok_or(sw::NO_CURRENT_EF)?;
        let FileKind::Ef { data, .. } = &f.kind else {
            return Err(sw::INCOMPATIBLE_FILE);
        };
        access_allowed_with(f.security.as_deref(), bit, self.dom_sec_status())?;
        Ok((id, data.len()))
    }

    /// READ BINARY `00 B0 P1 P2 Le`: offset P1-P2 in the current EF;
    /// min(Ne, rest) bytes. Offset past the end → 6B00; an explicit Le
    /// beyond the end → the rest with 6282.
    pub(super) fn dom_read_binary(&mut self, c: &Command) -> DomResult {
        if !c.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let (id, size) = self.dom_ef(c, ef_am::READ)?;
        let offset = usize::from(c.p1p2());
        if offset > size {
            return Err(sw::OFFSET_OUTSIDE);
        }
        let ne = c.le.map_or(256, |l| l.ne);
        let end = size.min(offset.saturating_add(ne));
        let data = match self.state.file(id).map(|f| &f.kind) {
            Some(FileKind::Ef { data, .. }) => data.get(offset..end).unwrap_or(&[]).to_vec(),
            _ => return Err(sw::NO_CURRENT_EF),
        };
        let short = c.le.is_some_and(|l| !l.wildcard && data.len() < l.ne);
        Ok((data, if short { sw::EOF_REACHED } else { sw::OK }))
    }

    /// UPDATE BINARY `00 D6 P1 P2 Lc data`: at most 240 bytes (more →
    /// 6700) at offset P1-P2 of the current EF. Offset past the end → 6B00;
    /// data past the end → 6A84.
    pub(super) fn dom_update_binary(&mut self, c: &Command) -> DomResult {
        if c.data.is_empty() || c.data.len() > MAX_UPDATE {
            return Err(sw::WRONG_LENGTH);
        }
        let (id, size) = self.dom_ef(c, ef_am::UPDATE)?;
        let offset = usize::from(c.p1p2());
        if offset > size {
            return Err(sw::OFFSET_OUTSIDE);
        }
        let end = offset.saturating_add(c.data.len());
        if end > size {
            return Err(sw::NOT_ENOUGH_MEMORY);
        }
        let bytes = c.data.clone();
        self.mutate(|s| {
            if let Some(FileKind::Ef { data, .. }) = s.file_mut(id).map(|f| &mut f.kind) {
                if let Some(dst) = data.get_mut(offset..end) {
                    dst.copy_from_slice(&bytes);
                }
            }
        })?;
        ok(Vec::new())
    }
}

/// The domestic FCP: `62 { 82 descriptor, 83 FID, [84 DF name], [80 size] }`.
fn fcp(f: &super::super::fs::FileRec) -> Vec<u8> {
    let mut v = tlv(0x82, &[if f.is_df() { 0x38 } else { 0x01 }]);
    v.extend(tlv(0x83, &f.fid.to_be_bytes()));
    match &f.kind {
        FileKind::Df { name: Some(n) } => v.extend(tlv(0x84, n)),
        FileKind::Df { name: None } => {}
        FileKind::Ef { data, .. } => {
            let size = u16::try_from(data.len()).unwrap_or(u16::MAX);
            v.extend(tlv(0x80, &size.to_be_bytes()));
        }
    }
    tlv(0x62, &v)
}
