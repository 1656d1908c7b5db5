//! File commands: SELECT, READ/UPDATE BINARY (even and odd INS), CREATE and
//! DELETE FILE, and the life cycle commands ACTIVATE / DEACTIVATE FILE,
//! TERMINATE DF / EF / CARD USAGE.
//!
//! ISO/IEC 7816-4:2013 §7.1 (SELECT), §7.2 (READ/UPDATE BINARY), ISO/IEC
//! 7816-9:2017 §8 (CREATE, DELETE, DEACTIVATE, ACTIVATE, TERMINATE). Access
//! rules are checked only for files in an operational state (LCS 04/05,
//! 7816-4 §7.4.10): during creation/initialisation the rules are stored but
//! not enforced.

use super::apdu::{sw, Command};
use super::card::{CmdResult, LeRule, Resp, SimCard};
use super::fcp::{self, NewFile};
use super::fs::{card_lc, lcs, FileKind, FileRec, MF_ID};
use super::security::{access_allowed_with, df_am, ef_am};
use super::tlv::{len_field_size, parse_all, push_tlv};

/// A 2-byte FID from a data field (other lengths → 6700).
fn fid_of(data: &[u8]) -> Result<u16, u16> {
    match data {
        [a, b] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(sw::WRONG_LENGTH),
    }
}

impl SimCard {
    fn rec(&self, id: u32) -> Result<&FileRec, u16> {
        self.state.file(id).ok_or(sw::FILE_NOT_FOUND)
    }

    /// Check the access rule of file `id` for access-mode bit `bit`, if the
    /// file is operational (LCS 04/05).
    pub(super) fn check_ac(&self, id: u32, bit: u8) -> Result<(), u16> {
        let f = self.rec(id)?;
        if !lcs::operational(f.lcs) {
            return Ok(());
        }
        access_allowed_with(f.security.as_deref(), bit, self.sec_status())
    }

    /// Make `id` the current file (DF or EF).
    fn make_current(&mut self, id: u32) {
        if let Some(f) = self.state.file(id) {
            if f.is_df() {
                self.vol.cur_df = id;
                self.vol.cur_ef = None;
            } else {
                self.vol.cur_df = f.parent.unwrap_or(MF_ID);
                self.vol.cur_ef = Some(id);
            }
        }
    }

    /// Resolve the SELECT parameters to a file id (no side effect).
    fn resolve_select(&mut self, p1: u8, p2: u8, data: &[u8]) -> Result<u32, u16> {
        let cur = self.vol.cur_df;
        let nf = sw::FILE_NOT_FOUND;
        match p1 {
            0x00 if data.is_empty() => Ok(MF_ID),
            0x00 => self.state.resolve_fid(cur, fid_of(data)?).ok_or(nf),
            0x01 => {
                let fid = fid_of(data)?;
                match self.state.child_by_fid(cur, fid) {
                    Some(f) if f.is_df() => Ok(f.id),
                    _ => Err(nf),
                }
            }
            0x02 => {
                let fid = fid_of(data)?;
                match self.state.child_by_fid(cur, fid) {
                    Some(f) if !f.is_df() => Ok(f.id),
                    _ => Err(nf),
                }
            }
            0x03 => {
                if !data.is_empty() {
                    return Err(sw::WRONG_LENGTH);
                }
                self.state.parent_of(cur).ok_or(nf)
            }
            0x04 => {
                if data.is_empty() || data.len() > 16 {
                    return Err(sw::WRONG_LENGTH);
                }
                let cands = self.state.dfs_named(data);
                let found = if p2 & 0x03 == 0x02 {
                    // Next occurrence: the candidate after the last match.
                    let pos = self
                        .vol
                        .last_name_match
                        .and_then(|l| cands.iter().position(|(id, _)| *id == l));
                    match pos {
                        Some(i) => cands.get(i.saturating_add(1)).map(|c| c.0),
                        None => cands.first().map(|c| c.0),
                    }
                } else {
                    cands
                        .iter()
                        .find(|c| c.1)
                        .or_else(|| cands.first())
                        .map(|c| c.0)
                };
                let id = found.ok_or(nf)?;
                self.vol.last_name_match = Some(id);
                Ok(id)
            }
            0x08 | 0x09 => {
                if data.is_empty() || !data.len().is_multiple_of(2) {
                    return Err(sw::WRONG_LENGTH);
                }
                let start = if p1 == 0x08 { MF_ID } else { cur };
                self.state.resolve_path(start, data).ok_or(nf)
            }
            _ => Err(sw::WRONG_P1P2),
        }
    }

    /// SELECT (7816-4 §7.1.1). P2 b4-b3: 00 FCI, 01 FCP, 10 FMD, 11 none;
    /// P2 b2-b1: 00 first/only occurrence, 10 next occurrence (P1=04 only).
    /// A deactivated file is selected with 6283, a terminated one with 6285.
    pub(super) fn cmd_select(&mut self, c: &Command) -> CmdResult {
        let occurrence = c.p2 & 0x03;
        if c.p2 & 0xF0 != 0 || !(occurrence == 0 || (occurrence == 2 && c.p1 == 0x04)) {
            return Err(sw::WRONG_P1P2);
        }
        let id = self.resolve_select(c.p1, c.p2, &c.data)?;
        self.make_current(id);
        let f = self.rec(id)?;
        let status = if lcs::terminated(f.lcs) || self.state.in_terminated_branch(id) {
            sw::FILE_TERMINATED
        } else if f.lcs == lcs::DEACTIVATED {
            sw::FILE_DEACTIVATED
        } else {
            sw::OK
        };
        let data = match c.p2 & 0x0C {
            0x00 => fcp::fci(&self.state, f),
            0x04 => fcp::fcp(&self.state, f),
            0x08 => fcp::fmd(f),
            _ => Vec::new(),
        };
        Ok(Resp::data(data, status, LeRule::Fixed))
    }

    /// The EF addressed by P1-P2 of READ/UPDATE BINARY with even INS
    /// (7816-4 §7.2.2): P1 b8=1 → b5..b1 SFI (selected as a side effect), P2
    /// offset; P1 b8=0 → current EF, 15-bit offset.
    fn even_target(&mut self, c: &Command) -> Result<(u32, usize), u16> {
        if c.p1 & 0x80 != 0 {
            if c.p1 & 0x60 != 0 {
                return Err(sw::WRONG_P1P2);
            }
            let sfi = c.p1 & 0x1F;
            if sfi == 0 || sfi == 0x1F {
                return Err(sw::WRONG_P1P2);
            }
            let id = self
                .state
                .child_by_sfi(self.vol.cur_df, sfi)
                .map(|f| f.id)
                .ok_or(sw::FILE_NOT_FOUND)?;
            self.make_current(id);
            Ok((id, usize::from(c.p2)))
        } else {
            let id = self.vol.cur_ef.ok_or(sw::NO_CURRENT_EF)?;
            Ok((id, usize::from(c.p1p2() & 0x7FFF)))
        }
    }

    /// The EF addressed by P1-P2 with odd INS (7816-4 §7.2.2): 0000 current
    /// EF; 0001..001E short EF identifier; anything else a FID resolved as
    /// SELECT P1=00 would. The file becomes current.
    fn odd_target(&mut self, c: &Command) -> Result<u32, u16> {
        let p = c.p1p2();
        let id = match p {
            0x0000 => self.vol.cur_ef.ok_or(sw::NO_CURRENT_EF)?,
            0x0001..=0x001E => self
                .state
                .child_by_sfi(self.vol.cur_df, c.p2)
                .map(|f| f.id)
                .ok_or(sw::FILE_NOT_FOUND)?,
            _ => self
                .state
                .resolve_fid(self.vol.cur_df, p)
                .ok_or(sw::FILE_NOT_FOUND)?,
        };
        if self.rec(id)?.is_df() {
            return Err(sw::INCOMPATIBLE_FILE);
        }
        self.make_current(id);
        Ok(id)
    }

    /// Common checks for data access to an EF: type, life cycle, access.
    fn ef_data_access(&self, id: u32, bit: u8) -> Result<usize, u16> {
        let f = self.rec(id)?;
        let FileKind::Ef { data, .. } = &f.kind else {
            return Err(sw::INCOMPATIBLE_FILE);
        };
        if f.lcs == lcs::DEACTIVATED || self.state.in_terminated_branch(id) {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        self.check_ac(id, bit)?;
        Ok(data.len())
    }

    fn ef_bytes(&self, id: u32) -> &[u8] {
        match self.state.file(id).map(|f| &f.kind) {
            Some(FileKind::Ef { data, .. }) => data,
            _ => &[],
        }
    }

    /// READ BINARY, even INS. Offset past the end → 6B00; offset at the end,
    /// or an explicit Le reaching past the end → the bytes there are +
    /// 6282. Le absent reads as if Le were 00.
    pub(super) fn cmd_read_binary(&mut self, c: &Command) -> CmdResult {
        if !c.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let (id, offset) = self.even_target(c)?;
        let size = self.ef_data_access(id, ef_am::READ)?;
        if offset > size {
            return Err(sw::OFFSET_OUTSIDE);
        }
        let (ne, wildcard) = c.le.map_or((256, true), |l| (l.ne, l.wildcard));
        let avail = size.saturating_sub(offset);
        let n = avail.min(ne);
        let data = self
            .ef_bytes(id)
            .get(offset..offset.saturating_add(n))
            .unwrap_or(&[])
            .to_vec();
        let status = if n < ne && (!wildcard || n == 0) {
            sw::EOF_REACHED
        } else {
            sw::OK
        };
        Ok(Resp::data(data, status, LeRule::Variable))
    }

    /// Parse the odd-INS data field: offset DO 54 (1–3 bytes) and, when
    /// `want_data`, discretionary data DO 53. Anything else → 6A80.
    fn odd_fields(data: &[u8], want_data: bool) -> Result<(usize, Option<Vec<u8>>), u16> {
        let items = parse_all(data).map_err(|_| sw::WRONG_DATA)?;
        let mut offset = None;
        let mut body = None;
        for t in items {
            match t.tag {
                0x54 if offset.is_none() && (1..=3).contains(&t.value.len()) => {
                    offset = t.value.iter().try_fold(0usize, |a, b| {
                        a.checked_mul(256)
                            .and_then(|x| x.checked_add(usize::from(*b)))
                    });
                }
                0x53 if want_data && body.is_none() => body = Some(t.value.to_vec()),
                _ => return Err(sw::WRONG_DATA),
            }
        }
        let offset = offset.ok_or(sw::WRONG_DATA)?;
        if want_data && body.is_none() {
            return Err(sw::WRONG_DATA);
        }
        Ok((offset, body))
    }

    /// READ BINARY, odd INS B1: data field holds DO 54 (offset); the answer
    /// is DO 53 holding as many bytes as fit in Ne.
    pub(super) fn cmd_read_binary_odd(&mut self, c: &Command) -> CmdResult {
        let (offset, _) = Self::odd_fields(&c.data, false)?;
        let id = self.odd_target(c)?;
        let size = self.ef_data_access(id, ef_am::READ)?;
        if offset > size {
            return Err(sw::OFFSET_OUTSIDE);
        }
        let (ne, wildcard) = c.le.map_or((256, true), |l| (l.ne, l.wildcard));
        let avail = size.saturating_sub(offset);
        // Largest n with 1 + len(L) + n <= Ne.
        let mut n = avail.min(ne);
        while n > 0 && n.saturating_add(1).saturating_add(len_field_size(n)) > ne {
            let over = n
                .saturating_add(1)
                .saturating_add(len_field_size(n))
                .saturating_sub(ne);
            n = n.saturating_sub(over.max(1));
        }
        let mut out = Vec::with_capacity(n.saturating_add(5));
        let bytes = self
            .ef_bytes(id)
            .get(offset..offset.saturating_add(n))
            .unwrap_or(&[]);
        push_tlv(&mut out, 0x53, bytes);
        let short = n == avail && out.len() < ne && !wildcard;
        let status = if short || avail == 0 {
            sw::EOF_REACHED
        } else {
            sw::OK
        };
        Ok(Resp::data(out, status, LeRule::Variable))
    }

    /// Write `bytes` at `offset` in EF `id` after the usual checks. Offset
    /// past the end → 6B00; data running past the end → 6A84 (not enough
    /// memory space in the file: EFs never grow).
    pub(super) fn write_ef(&mut self, id: u32, offset: usize, bytes: &[u8]) -> CmdResult {
        let size = self.ef_data_access(id, ef_am::UPDATE)?;
        if offset > size {
            return Err(sw::OFFSET_OUTSIDE);
        }
        let end = offset
            .checked_add(bytes.len())
            .ok_or(sw::NOT_ENOUGH_MEMORY)?;
        if end > size {
            return Err(sw::NOT_ENOUGH_MEMORY);
        }
        self.mutate(|s| {
            if let Some(FileKind::Ef { data, .. }) = s.file_mut(id).map(|f| &mut f.kind) {
                if let Some(dst) = data.get_mut(offset..end) {
                    dst.copy_from_slice(bytes);
                }
            }
        })?;
        Ok(Resp::ok())
    }

    /// UPDATE BINARY, even INS D6.
    pub(super) fn cmd_update_binary(&mut self, c: &Command) -> CmdResult {
        if c.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let (id, offset) = self.even_target(c)?;
        self.write_ef(id, offset, &c.data)
    }

    /// UPDATE BINARY, odd INS D7: DO 54 offset, DO 53 data.
    pub(super) fn cmd_update_binary_odd(&mut self, c: &Command) -> CmdResult {
        let (offset, body) = Self::odd_fields(&c.data, true)?;
        let id = self.odd_target(c)?;
        let body = body.unwrap_or_default();
        self.write_ef(id, offset, &body)
    }

    /// CREATE FILE (7816-9 §8.2): P1-P2 00 00, data = FCP template. The file
    /// is created in the current DF and becomes current. Default LCS: 03
    /// while the MF is in creation/initialisation, else 01 (creation); 8A
    /// overrides.
    pub(super) fn cmd_create_file(&mut self, c: &Command) -> CmdResult {
        if c.p1p2() != 0 {
            return Err(sw::WRONG_P1P2);
        }
        if c.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let nf: NewFile = fcp::parse_create(&c.data)?;
        self.structure_frozen()?;
        let parent = self.vol.cur_df;
        let pf = self.rec(parent)?;
        if pf.lcs == lcs::DEACTIVATED || self.state.in_terminated_branch(parent) {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        let bit = if nf.is_df {
            df_am::CREATE_DF
        } else {
            df_am::CREATE_EF
        };
        self.check_ac(parent, bit)?;
        if pf.fid == nf.fid || self.state.child_by_fid(parent, nf.fid).is_some() {
            return Err(sw::FILE_EXISTS);
        }
        if let Some(n) = &nf.name {
            if self
                .state
                .files
                .iter()
                .any(|f| f.name() == Some(n.as_slice()))
            {
                return Err(sw::NAME_EXISTS);
            }
        }
        let mf_lcs = self.state.mf_lcs();
        let default_lcs = if mf_lcs == lcs::CREATION || mf_lcs == lcs::INITIALISATION {
            lcs::INITIALISATION
        } else {
            lcs::CREATION
        };
        let kind = if nf.is_df {
            FileKind::Df { name: nf.name }
        } else {
            let sfi = match nf.sfi {
                Some(explicit) => explicit,
                None => Some((nf.fid & 0x1F) as u8).filter(|s| (1..=30).contains(s)),
            };
            FileKind::Ef {
                sfi,
                data: Vec::new(),
            }
        };
        let id = self.state.next_id;
        let next = id.checked_add(1).ok_or(sw::NOT_ENOUGH_MEMORY)?;
        let mut rec = FileRec {
            id,
            parent: Some(parent),
            fid: nf.fid,
            lcs: nf.lcs.unwrap_or(default_lcs),
            security: nf.security,
            kind,
        };
        if rec.footprint().saturating_add(nf.size) > self.state.free_memory() {
            return Err(sw::NOT_ENOUGH_MEMORY);
        }
        if let FileKind::Ef { data, .. } = &mut rec.kind {
            *data = vec![0u8; nf.size];
        }
        self.mutate(|s| {
            s.files.push(rec);
            s.next_id = next;
        })?;
        self.make_current(id);
        Ok(Resp::ok())
    }

    /// Target of DELETE / ACTIVATE / DEACTIVATE / TERMINATE: with no data
    /// and P1=00, `current`; otherwise the file named as SELECT with the same
    /// P1 would (it becomes current). P2 must be 00.
    fn lifecycle_target(&mut self, c: &Command, current: Option<u32>) -> Result<u32, u16> {
        if c.p2 != 0 {
            return Err(sw::WRONG_P1P2);
        }
        let id = if c.p1 == 0 && c.data.is_empty() {
            current.ok_or(sw::NO_CURRENT_EF)?
        } else {
            if c.p1 == 0x03 || c.p1 == 0x04 {
                return Err(sw::WRONG_P1P2);
            }
            self.resolve_select(c.p1, 0, &c.data)?
        };
        self.make_current(id);
        Ok(id)
    }

    /// On a card with an issuer key, the file structure is fixed once
    /// personalisation is closed (life cycle past BLANK): 6985.
    fn structure_frozen(&self) -> Result<(), u16> {
        if self.state.issuer_key.is_some() && self.state.life_cycle != card_lc::BLANK {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        Ok(())
    }

    fn current_file(&self) -> u32 {
        self.vol.cur_ef.unwrap_or(self.vol.cur_df)
    }

    /// DELETE FILE (7816-9 §8.3). Needs the file's own DELETE right (b7) and
    /// the parent DF's DELETE-child right (b1), each where enforced. The MF
    /// cannot be deleted (6985). A DF goes with its whole subtree.
    pub(super) fn cmd_delete_file(&mut self, c: &Command) -> CmdResult {
        let cur = self.current_file();
        let id = self.lifecycle_target(c, Some(cur))?;
        let f = self.rec(id)?;
        let Some(parent) = f.parent else {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        };
        self.structure_frozen()?;
        let own_bit = if f.is_df() {
            df_am::DELETE_SELF
        } else {
            ef_am::DELETE
        };
        self.check_ac(id, own_bit)?;
        self.check_ac(parent, df_am::DELETE_CHILD)?;
        let gone = self.state.subtree(id);
        self.mutate(|s| s.files.retain(|f| !gone.contains(&f.id)))?;
        if gone.contains(&self.vol.cur_df) {
            self.vol.cur_df = parent;
        }
        if self.vol.cur_ef.is_some_and(|e| gone.contains(&e)) {
            self.vol.cur_ef = None;
        }
        if self.vol.last_name_match.is_some_and(|e| gone.contains(&e)) {
            self.vol.last_name_match = None;
        }
        Ok(Resp::ok())
    }

    /// ACTIVATE FILE (7816-9 §8.5): LCS 01/03/04 → 05. Activating a DF also
    /// activates every file below it that is still in creation or
    /// initialisation; activating the MF thus ends personalisation. Needs
    /// the ACTIVATE right (b5) where enforced. Terminated → 6985.
    ///
    /// On the MF it also moves the card life cycle register: BLANK →
    /// PERSONALIZED (close personalisation); PERSONALIZED → ACTIVATED
    /// (holder activation) only if a biometric object was verified in this
    /// session and no PIN other than a PUK is still in transport state
    /// (else 6985); ACTIVATED stays ACTIVATED. A deactivated MF (04) is
    /// only reactivated, without a life cycle step.
    pub(super) fn cmd_activate(&mut self, c: &Command) -> CmdResult {
        let cur = self.current_file();
        let id = self.lifecycle_target(c, Some(cur))?;
        let f = self.rec(id)?;
        if self.state.in_terminated_branch(id) {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        if f.lcs == lcs::ACTIVATED && !f.is_df() {
            return Ok(Resp::ok());
        }
        let bit = if f.is_df() {
            df_am::ACTIVATE
        } else {
            ef_am::ACTIVATE
        };
        self.check_ac(id, bit)?;
        let mut life_cycle = self.state.life_cycle;
        if id == MF_ID && f.lcs != lcs::DEACTIVATED {
            match life_cycle {
                card_lc::BLANK => life_cycle = card_lc::PERSONALIZED,
                card_lc::PERSONALIZED => {
                    let transport_left = self
                        .state
                        .pins
                        .iter()
                        .any(|p| p.transport && !self.state.is_puk(p.number));
                    if self.vol.bio_verified == 0 || transport_left {
                        return Err(sw::CONDITIONS_NOT_SATISFIED);
                    }
                    life_cycle = card_lc::ACTIVATED;
                }
                _ => {}
            }
        }
        let subtree = self.state.subtree(id);
        self.mutate(|s| {
            for f in s.files.iter_mut() {
                let pending = f.lcs == lcs::CREATION || f.lcs == lcs::INITIALISATION;
                if f.id == id || (pending && subtree.contains(&f.id)) {
                    f.lcs = lcs::ACTIVATED;
                }
            }
            s.life_cycle = life_cycle;
        })?;
        Ok(Resp::ok())
    }

    /// DEACTIVATE FILE (7816-9 §8.4): LCS 05 → 04 (04 stays 04). A file
    /// not yet operational (01/03) or terminated cannot be deactivated
    /// (6985). Needs the DEACTIVATE right (b4).
    pub(super) fn cmd_deactivate(&mut self, c: &Command) -> CmdResult {
        let cur = self.current_file();
        let id = self.lifecycle_target(c, Some(cur))?;
        let f = self.rec(id)?;
        if !lcs::operational(f.lcs) || self.state.in_terminated_branch(id) {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        let bit = if f.is_df() {
            df_am::DEACTIVATE
        } else {
            ef_am::DEACTIVATE
        };
        self.check_ac(id, bit)?;
        if f.lcs == lcs::DEACTIVATED {
            return Ok(Resp::ok());
        }
        self.mutate(|s| {
            if let Some(f) = s.file_mut(id) {
                f.lcs = lcs::DEACTIVATED;
            }
        })?;
        Ok(Resp::ok())
    }

    fn terminate(&mut self, id: u32, new_lcs: u8) -> CmdResult {
        let f = self.rec(id)?;
        if self.state.in_terminated_branch(id) {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        let bit = if f.is_df() {
            df_am::TERMINATE
        } else {
            ef_am::TERMINATE
        };
        self.check_ac(id, bit)?;
        self.mutate(|s| {
            if let Some(f) = s.file_mut(id) {
                f.lcs = new_lcs;
            }
            if id == MF_ID {
                s.life_cycle = card_lc::TERMINATED;
            }
        })?;
        Ok(Resp::ok())
    }

    /// TERMINATE DF (7816-9 §8.6): the DF (current DF by default) goes to
    /// LCS 0C, irreversibly. An EF named here → 6981. Terminating the MF
    /// terminates the card.
    pub(super) fn cmd_terminate_df(&mut self, c: &Command) -> CmdResult {
        let cur = self.vol.cur_df;
        let id = self.lifecycle_target(c, Some(cur))?;
        if !self.rec(id)?.is_df() {
            return Err(sw::INCOMPATIBLE_FILE);
        }
        self.terminate(id, lcs::TERMINATED)
    }

    /// TERMINATE EF (7816-9 §8.7): the EF (current EF by default; none →
    /// 6986) goes to LCS 0C. A DF named here → 6981.
    pub(super) fn cmd_terminate_ef(&mut self, c: &Command) -> CmdResult {
        let cur = self.vol.cur_ef;
        let id = self.lifecycle_target(c, cur)?;
        if self.rec(id)?.is_df() {
            return Err(sw::INCOMPATIBLE_FILE);
        }
        self.terminate(id, lcs::TERMINATED)
    }

    /// TERMINATE CARD USAGE (7816-9 §8.8): P1-P2 00 00, no data. Needs the
    /// MF's TERMINATE right (b6) where enforced. The MF goes to LCS 0F; from
    /// then on every command is answered 6A81, also after reopening.
    pub(super) fn cmd_terminate_card(&mut self, c: &Command) -> CmdResult {
        if c.p1p2() != 0 {
            return Err(sw::WRONG_P1P2);
        }
        if !c.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        self.terminate(MF_ID, 0x0F)
    }
}
