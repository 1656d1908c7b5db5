//! The domestic OS's command pipeline: class checks, dispatch, and T=0
//! response shaping. Every response that carries data is parked and
//! announced with `61 La` (La = 00 for 256 or more); GET RESPONSE
//! `00 C0 00 00 La` hands out at most 256 bytes, with `61 xx` while more
//! remains and the command's own status word after the last piece. A GET
//! RESPONSE whose Le is not the length on offer gets `6C La` (the data
//! stays). Any other command discards the parked data.

use super::super::apdu::{self, sw, Command};
use super::super::card::SimCard;
use super::super::security::SecStatus;
use super::{life_cycle, DomState};

/// A command's outcome: data (possibly empty) and status word.
pub(super) type DomResult = Result<(Vec<u8>, u16), u16>;

pub(super) fn ok(data: Vec<u8>) -> DomResult {
    Ok((data, sw::OK))
}

fn sw_bytes(sw: u16) -> Vec<u8> {
    sw.to_be_bytes().to_vec()
}

/// 61 xx for `n` bytes waiting (xx = 00 for 256 or more).
fn sw_61(n: usize) -> u16 {
    0x6100 | u16::from(u8::try_from(n).unwrap_or(0))
}

/// Instructions the domestic OS knows, by class.
fn known(cla: u8, ins: u8) -> bool {
    match cla {
        0x00 => matches!(ins, 0xA4 | 0xB0 | 0xD6 | 0x20 | 0x21 | 0x24 | 0xC0),
        0x80 => matches!(ins, 0x46 | 0x2A | 0xF0 | 0xCA | 0x50),
        _ => false,
    }
}

impl SimCard {
    pub(super) fn dom(&self) -> Result<&DomState, u16> {
        self.state.domestic.as_ref().ok_or(sw::MEMORY_FAILURE)
    }

    /// Change the domestic state and write the image (rolled back on
    /// failure, 6581).
    pub(super) fn dom_mutate(&mut self, f: impl FnOnce(&mut DomState)) -> Result<(), u16> {
        self.dom()?;
        self.mutate(|s| {
            if let Some(d) = s.domestic.as_mut() {
                f(d);
            }
        })
    }

    pub(crate) fn dom_life_cycle(&self) -> u8 {
        self.state
            .domestic
            .as_ref()
            .map_or(life_cycle::TERMINATED, |d| d.life_cycle)
    }

    /// The command comes from the issuer: through the security domain's
    /// channel at its personalization level, or, on a card without a
    /// security domain, in the perso phase (before SECURED).
    pub(super) fn dom_issuer(&self) -> bool {
        match &self.state.sd {
            Some(sd) => {
                self.dvol.sm_level != 0 && self.dvol.sm_level & sd.perso_level == sd.perso_level
            }
            None => self.dom_life_cycle() < life_cycle::SECURED,
        }
    }

    pub(super) fn dom_sec_status(&self) -> SecStatus {
        SecStatus {
            verified: self.dvol.verified,
            issuer: self.dom_issuer(),
        }
    }

    /// Process one command APDU on the domestic OS.
    pub(crate) fn domestic_execute(&mut self, raw: &[u8]) -> Vec<u8> {
        if self.dom_life_cycle() == life_cycle::TERMINATED {
            self.dvol.pending = None;
            return sw_bytes(sw::FUNC_NOT_SUPPORTED);
        }
        if let Some(out) = self.dom_sd_route(raw) {
            return out;
        }
        let cmd = match apdu::parse(raw, false) {
            Ok(c) => c,
            Err(e) => {
                self.dvol.pending = None;
                return sw_bytes(e);
            }
        };
        if cmd.ins != 0xC0 {
            self.dvol.pending = None;
        }
        if let Err(e) = class_check(cmd.cla) {
            return sw_bytes(e);
        }
        if cmd.cla == 0x00 && cmd.ins == 0xC0 {
            return self.dom_get_response(&cmd);
        }
        self.dvol.sm_level = 0;
        self.dom_run(&cmd)
    }

    /// Dispatch a plain (or unwrapped) command and shape its answer.
    pub(super) fn dom_run(&mut self, cmd: &Command) -> Vec<u8> {
        match self.dom_dispatch(cmd) {
            Ok((data, status)) => self.dom_shape(data, status),
            Err(e) => sw_bytes(e),
        }
    }

    /// The unshaped answer to a command.
    pub(super) fn dom_dispatch(&mut self, c: &Command) -> DomResult {
        if !known(c.cla, c.ins) {
            return Err(if known(c.cla ^ 0x80, c.ins) {
                sw::CLA_NOT_SUPPORTED
            } else {
                sw::INS_NOT_SUPPORTED
            });
        }
        match (c.cla, c.ins) {
            (0x00, 0xA4) => self.dom_select(c),
            (0x00, 0xB0) => self.dom_read_binary(c),
            (0x00, 0xD6) => self.dom_update_binary(c),
            (0x00, 0x20) => self.dom_verify(c),
            (0x00, 0x24) => self.dom_change_reference_data(c),
            (0x00, 0x21) => self.dom_verify_bio(c),
            (0x80, 0x46) => self.dom_generate_key(c),
            (0x80, 0x2A) => self.dom_sign(c),
            (0x80, 0xF0) => self.dom_set_status(c),
            (0x80, 0xCA) => self.dom_get_data(c),
            // INITIALIZE UPDATE outside the security domain.
            _ => Err(sw::CONDITIONS_NOT_SATISFIED),
        }
    }

    /// Park the data, answer 61 La; no data: the status word alone.
    pub(super) fn dom_shape(&mut self, data: Vec<u8>, status: u16) -> Vec<u8> {
        if data.is_empty() {
            return sw_bytes(status);
        }
        let n = data.len();
        self.dvol.pending = Some((data, status));
        sw_bytes(sw_61(n))
    }

    /// GET RESPONSE `00 C0 00 00 La`.
    fn dom_get_response(&mut self, c: &Command) -> Vec<u8> {
        if c.p1p2() != 0 {
            return sw_bytes(sw::WRONG_P1P2);
        }
        if !c.data.is_empty() {
            return sw_bytes(sw::WRONG_LENGTH);
        }
        let Some((data, status)) = self.dvol.pending.as_mut() else {
            return sw_bytes(sw::CONDITIONS_NOT_SATISFIED);
        };
        let chunk = data.len().min(256);
        if c.le.map(|l| l.ne) != Some(chunk) {
            return sw_bytes(0x6C00 | (chunk & 0xFF) as u16);
        }
        let rest = data.split_off(chunk);
        let mut out = std::mem::replace(data, rest);
        if data.is_empty() {
            out.extend_from_slice(&status.to_be_bytes());
            self.dvol.pending = None;
        } else {
            out.extend_from_slice(&sw_61(data.len()).to_be_bytes());
        }
        out
    }
}

/// The class byte of a plain command: 00 (interindustry) or 80
/// (proprietary, GlobalPlatform). Chaining (b5) → 6884; a logical channel
/// → 6881; secure messaging outside a session → 6882; anything else → 6E00.
fn class_check(cla: u8) -> Result<(), u16> {
    if cla & 0x10 != 0 && cla & 0x60 == 0 {
        return Err(sw::CHAINING_NOT_SUPPORTED);
    }
    if cla & 0xE0 == 0 || cla & 0xE0 == 0x80 {
        if cla & 0x03 != 0 {
            return Err(sw::CHANNEL_NOT_SUPPORTED);
        }
        if cla & 0x0C != 0 {
            return Err(sw::SM_NOT_SUPPORTED);
        }
    }
    match cla {
        0x00 | 0x80 => Ok(()),
        _ => Err(sw::CLA_NOT_SUPPORTED),
    }
}
