//! The "domestic" card OS: a second personality of the simulated card
//! (issue 17), as different from the reference OS as real chips of two
//! vendors are. It shares the wire with the reference OS (APDU parsing, the
//! status-word constants, BER-TLV helpers), the generic file tree (`fs`),
//! the compact access rules and PIN hashing (`security`), the card image,
//! and the pure algorithms of the wire crates (SCP03 core, match-on-card),
//! and nothing else: its command set, its response shaping, its objects and
//! its life cycle are its own.
//!
//! What makes it different:
//! - T=0 only, short APDUs only (extended length → 6700), no command
//!   chaining (CLA b5 → 6884). Every response with data is announced with
//!   `61 La` and fetched with GET RESPONSE `00 C0 00 00 La`; a GET
//!   RESPONSE whose Le is not La gets `6C La`.
//! - The file system, PINs, biometric references and key slots are made at
//!   the factory ([`factory`]); CREATE FILE does not exist (6D00).
//! - Its own AIDs, FIDs and references ([`EID_AID`], [`PIN_HOLDER`], …).
//!   PINs come with factory values ([`FACTORY_PINS`]) and are changed with
//!   CHANGE REFERENCE DATA `00 24 00 ref` old ‖ new, each an 8-byte PIN
//!   block (ASCII digits, padded with FF).
//! - Key generation `80 46 00 ref` answers the bare point 04 ‖ X ‖ Y;
//!   signing `80 2A 00 ref` a DER ECDSA signature.
//! - Data is written with UPDATE BINARY, at most 240 bytes per command.
//! - The card life cycle is GlobalPlatform's, set with SET STATUS
//!   `80 F0 80 state`: OP_READY 01 → INITIALIZED 07 → SECURED 0F, and
//!   TERMINATED FF from any state.
//! - Match-on-card with at most 40 minutiae ordered by coordinates (x, then
//!   y, ascending); an enrolment out of that order is refused (6A80), not
//!   reordered. The biometric information template keeps the algorithm
//!   parameters (B1) beside the biometric header template (A1).
//! - Its security domain has its own AID ([`SD_AID`]) and its own default
//!   SCP03 keys ([`default_scp03_keys`]).
//!
//! Layout: `exec` (class checks, dispatch, 61xx / GET RESPONSE), `files`
//! (SELECT, READ BINARY, UPDATE BINARY), `pins`, `keys`, `bio`, `gp`
//! (security domain, SET STATUS, GET DATA).

mod bio;
mod exec;
mod files;
mod gp;
mod keys;
mod pins;
#[cfg(test)]
mod tests;

pub(super) use super::domestic_state::{DomBio, DomKey, DomPin, DomState};
use super::fs::{lcs, CardState, FileKind, FileRec, MF_ID};
use super::security::pin_hash;

pub use crate::domestic_state::SD_AID;
/// AID and FID of the identity application DF.
pub const EID_AID: [u8; 7] = [0xD3, 0x64, 0x00, 0x00, 0x10, 0x01, 0x01];
pub const EID_FID: u16 = 0x7F10;
/// AID and FID of the PKI application DF.
pub const PKI_AID: [u8; 7] = [0xD3, 0x64, 0x00, 0x00, 0x10, 0x02, 0x01];
pub const PKI_FID: u16 = 0x7F20;

/// The factory-made EFs: (parent DF FID, FID, size in bytes).
pub const FACTORY_EFS: [(u16, u16, usize); 7] = [
    (EID_FID, 0x7101, 1024),  // demographics
    (EID_FID, 0x7102, 12288), // photo
    (EID_FID, 0x7103, 256),   // issuance
    (EID_FID, 0x7104, 512),   // biometric information
    (EID_FID, 0x710D, 4096),  // security object
    (PKI_FID, 0x7201, 2048),  // authentication certificate
    (PKI_FID, 0x7202, 2048),  // signature certificate
];

/// PIN references (VERIFY / CHANGE REFERENCE DATA P2).
pub const PIN_HOLDER: u8 = 0x11;
pub const PIN_SIGNATURE: u8 = 0x12;
/// The factory values of the PINs (ASCII digits), documented in the
/// domestic profile. The holder changes them with CHANGE REFERENCE DATA.
pub const FACTORY_PINS: [(u8, &str); 2] = [(PIN_HOLDER, "123456"), (PIN_SIGNATURE, "12345678")];
/// PIN block length: ASCII digits padded with FF.
pub const PIN_BLOCK: usize = 8;
/// Shortest PIN.
pub const PIN_MIN_DIGITS: usize = 4;
pub const PIN_TRY_LIMIT: u8 = 3;

/// Key slots (80 46 / 80 2A P2), with the PIN each needs: the
/// authentication key's once per session, the signature key's for every
/// signature.
pub const KEY_AUTH: u8 = 0x21;
pub const KEY_SIGN: u8 = 0x22;

/// Biometric reference numbers (VERIFY 00 21 00 ref) of the two fingers.
pub const BIO_REFS: [u8; 2] = [0x1C, 0x1D];
pub const BIO_TRY_LIMIT: u8 = 5;
/// Largest number of minutiae in a reference or a probe.
pub const BIO_MAX_MINUTIAE: usize = 40;
/// Minutiae order of ISO/IEC 19794-2 §8.3 the card requires: x-y
/// (b5-b3 = 001), ascending (b2-b1 = 01).
pub const BIO_ORDER_XY_ASCENDING: u8 = 0x05;
/// Format owner and type of the reference data (ISO/IEC JTC 1/SC 37,
/// compact card format).
pub const BIO_FORMAT_OWNER: u16 = 0x0101;
pub const BIO_FORMAT_TYPE: u16 = 0x0007;

/// Maximum data of an UPDATE BINARY.
pub const MAX_UPDATE: usize = 240;

/// GlobalPlatform card life cycle states (GPCS v2.3.1 §5.1.1).
pub mod life_cycle {
    pub const OP_READY: u8 = 0x01;
    pub const INITIALIZED: u8 = 0x07;
    pub const SECURED: u8 = 0x0F;
    pub const TERMINATED: u8 = 0xFF;

    pub fn valid(v: u8) -> bool {
        matches!(v, OP_READY | INITIALIZED | SECURED | TERMINATED)
    }
}

/// The default key version number of the domestic security domain.
pub const DEFAULT_KVN: u8 = 0x31;

/// The domestic vendor's default SCP03 keys (test keys, as a vendor ships
/// them before the programme puts its own): ENC = D1…, MAC = D2…, DEK = D3…
/// (16 bytes each), key version 31. Distinct from the GlobalPlatform test
/// keys (40…4F) the reference card is usually given.
pub fn default_scp03_keys() -> Result<cardsmith_scp03::StaticKeys, cardsmith_scp03::Error> {
    cardsmith_scp03::StaticKeys::new(DEFAULT_KVN, &[0xD1; 16], &[0xD2; 16], &[0xD3; 16])
}

/// Volatile state of the domestic OS, lost at reset.
#[derive(Default)]
pub(super) struct DomVolatile {
    pub cur_df: u32,
    pub cur_ef: Option<u32>,
    /// Bit (reference & 0F) set: that PIN or biometric reference verified.
    pub verified: u16,
    /// Response data waiting for GET RESPONSE, and the final status word.
    pub pending: Option<(Vec<u8>, u16)>,
    pub sd_selected: bool,
    pub sd: Option<cardsmith_scp03::CardSession>,
    /// Security level the command being processed arrived under.
    pub sm_level: u8,
}

/// The verified-bitmap bit of a PIN or biometric reference.
pub(super) fn ref_bit(reference: u8) -> u16 {
    1u16 << (reference & 0x0F)
}

/// Whether `block` is an 8-byte PIN block: 4 to 8 ASCII digits, then FF.
pub(super) fn pin_block_ok(block: &[u8]) -> bool {
    if block.len() != PIN_BLOCK {
        return false;
    }
    let digits = block.iter().take_while(|b| b.is_ascii_digit()).count();
    digits >= PIN_MIN_DIGITS && block.iter().skip(digits).all(|b| *b == 0xFF)
}

/// The PIN block of a PIN given as ASCII digits.
pub fn pin_block(digits: &str) -> Vec<u8> {
    let mut b: Vec<u8> = digits.bytes().take(PIN_BLOCK).collect();
    b.resize(PIN_BLOCK, 0xFF);
    b
}

/// Compact access rule (8C) of the factory EFs: UPDATE by the issuer (SC
/// 21: the security domain's channel, or the perso phase of a card without
/// one), READ always.
const EF_RULE: [u8; 3] = [0x03, 0x21, 0x00];

/// Make the factory file system and objects on a fresh card state: MF in
/// LCS 05 (operational: the card is made), the two application DFs with
/// their EFs, the PINs with their factory values, empty key slots and
/// biometric references; the card life cycle OP_READY.
pub(super) fn factory(state: &mut CardState) {
    if let Some(mf) = state.file_mut(MF_ID) {
        mf.lcs = lcs::ACTIVATED;
    }
    let mut next = state.next_id;
    let mut add = |files: &mut Vec<FileRec>, parent: u32, fid: u16, kind: FileKind, rule| {
        let id = next;
        next = next.saturating_add(1);
        files.push(FileRec {
            id,
            parent: Some(parent),
            fid,
            lcs: lcs::ACTIVATED,
            security: rule,
            kind,
        });
        id
    };
    let mut files = std::mem::take(&mut state.files);
    for (fid, aid) in [(EID_FID, EID_AID), (PKI_FID, PKI_AID)] {
        let df = add(
            &mut files,
            MF_ID,
            fid,
            FileKind::Df {
                name: Some(aid.to_vec()),
            },
            None,
        );
        for (_, ef, size) in FACTORY_EFS.iter().filter(|(p, _, _)| *p == fid) {
            add(
                &mut files,
                df,
                *ef,
                FileKind::Ef {
                    sfi: None,
                    data: vec![0u8; *size],
                },
                Some(EF_RULE.to_vec()),
            );
        }
    }
    state.files = files;
    state.next_id = next;
    let salt = state.pin_salt.clone();
    state.domestic = Some(DomState {
        life_cycle: life_cycle::OP_READY,
        pins: FACTORY_PINS
            .iter()
            .map(|(r, v)| DomPin {
                reference: *r,
                hash: pin_hash(&salt, *r, &pin_block(v)),
                try_limit: PIN_TRY_LIMIT,
                tries_left: PIN_TRY_LIMIT,
                factory: true,
            })
            .collect(),
        keys: vec![
            DomKey {
                reference: KEY_AUTH,
                pin: PIN_HOLDER,
                pin_per_use: false,
                private: None,
                public: None,
            },
            DomKey {
                reference: KEY_SIGN,
                pin: PIN_SIGNATURE,
                pin_per_use: true,
                private: None,
                public: None,
            },
        ],
        bios: BIO_REFS
            .iter()
            .map(|r| DomBio {
                reference: *r,
                subtype: 0,
                try_limit: BIO_TRY_LIMIT,
                tries_left: BIO_TRY_LIMIT,
                template: None,
            })
            .collect(),
    });
}

/// Historical bytes: category 80, then compact-TLV: card issuer's data
/// (5x) "DOMESTIC", card capabilities (71: selection by full DF name, path
/// and FID; no SFI, no chaining, no extended length), status (81: the GP
/// card life cycle).
pub(super) fn historical_bytes(card_life_cycle: u8) -> Vec<u8> {
    let mut h = vec![0x80, 0x58];
    h.extend_from_slice(b"DOMESTIC");
    h.extend_from_slice(&[0x71, 0xB0, 0x81, card_life_cycle]);
    h
}

/// The ATR: direct convention, no interface bytes (T=0 only), 14
/// historical bytes, no TCK: `3B 0E 80 58 "DOMESTIC" 71 B0 81 LC`.
pub(super) fn atr(card_life_cycle: u8) -> Vec<u8> {
    let hist = historical_bytes(card_life_cycle);
    let mut atr = vec![0x3B, (hist.len() & 0x0F) as u8];
    atr.extend_from_slice(&hist);
    atr
}

/// Checks of a domestic card's image beyond the generic ones.
pub(super) fn validate(s: &CardState) -> Result<(), String> {
    let d = s
        .domestic
        .as_ref()
        .ok_or("a domestic card's image needs its \"domestic\" state")?;
    if !life_cycle::valid(d.life_cycle) {
        return Err(format!(
            "domestic.life_cycle {:02X} is not 01, 07, 0F or FF",
            d.life_cycle
        ));
    }
    for p in &d.pins {
        if p.hash.len() != 32 || p.tries_left > p.try_limit || p.try_limit == 0 {
            return Err(format!(
                "domestic PIN {:02X}: inconsistent fields",
                p.reference
            ));
        }
    }
    for k in &d.keys {
        let ok = match (&k.private, &k.public) {
            (None, None) => true,
            (Some(sk), Some(pk)) => p256::ecdsa::SigningKey::from_slice(sk.expose())
                .is_ok_and(|sk| super::objects::public_point(&sk) == *pk),
            _ => false,
        };
        if !ok || !d.pins.iter().any(|p| p.reference == k.pin) {
            return Err(format!(
                "domestic key {:02X}: inconsistent fields",
                k.reference
            ));
        }
    }
    for b in &d.bios {
        let template_ok = b
            .template
            .as_ref()
            .is_none_or(|t| bio::minutiae_in_order(t.expose()));
        if !template_ok || b.tries_left > b.try_limit || b.try_limit == 0 {
            return Err(format!(
                "domestic biometric reference {:02X}: inconsistent fields",
                b.reference
            ));
        }
    }
    Ok(())
}
