//! Security domain commands sent inside the secure channel: PUT KEY with
//! AES keys (GPCS v2.3.1 §11.8, Amendment D §7.2) and STORE DATA with DGI
//! formatted data (GPCS §11.11), host builders and card-side parsers.
//!
//! The builders return plain commands; the host wraps them with
//! [`HostSession::wrap`](super::host::HostSession::wrap). The card-side
//! parsers take the commands that
//! [`CardSession::unwrap_command`](super::card::CardSession::unwrap_command)
//! returned. Parsers never panic: malformed input is an [`Error`].

use zeroize::Zeroizing;

use super::crypto::{self, BLOCK};
use super::error::{Error, Result};
use super::keys::{AesKey, StaticKeys};
use super::reader::Reader;
use cardsmith_wire::apdu::{Command, Response};

/// CLA of GlobalPlatform commands on logical channel 0 (before wrapping).
const CLA_GP: u8 = 0x80;
/// INS of PUT KEY.
pub const INS_PUT_KEY: u8 = 0xD8;
/// INS of STORE DATA.
pub const INS_STORE_DATA: u8 = 0xE2;
/// Key type of an AES key (GPCS §11.1.8).
pub const KEY_TYPE_AES: u8 = 0x88;
/// STORE DATA P1 b8: last block.
pub const STORE_DATA_LAST_BLOCK: u8 = 0x80;
/// STORE DATA P1 b5-b4 = 01: the data field is DGI formatted.
pub const STORE_DATA_DGI: u8 = 0x08;

// ---------------------------------------------------------------------------
// PUT KEY
// ---------------------------------------------------------------------------

/// A PUT KEY command and the response data that proves the card stored the
/// keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutKey {
    /// The plain command, to be wrapped.
    pub command: Command,
    /// New KVN followed by the three key check values (GPCS §11.8.3.1).
    pub expected_response: Vec<u8>,
}

impl PutKey {
    /// Check the (unwrapped) response: status '9000', then the new key
    /// version number and the KCVs of ENC, MAC and DEK as sent.
    pub fn check_response(&self, resp: &Response) -> Result<()> {
        if !resp.sw.is_ok() {
            return Err(Error::CardStatus {
                sw: resp.sw.to_u16(),
            });
        }
        if resp.data.len() != self.expected_response.len() {
            return Err(Error::MalformedResponse(
                "PUT KEY response is not KVN and three KCVs",
            ));
        }
        if resp.data.first() != self.expected_response.first() {
            return Err(Error::MalformedResponse(
                "PUT KEY response names another key version",
            ));
        }
        let got = resp.data.get(1..).unwrap_or_default().chunks(3);
        let want = self
            .expected_response
            .get(1..)
            .unwrap_or_default()
            .chunks(3);
        for (index, (g, w)) in got.zip(want).enumerate() {
            if g != w {
                return Err(Error::KcvMismatch { index });
            }
        }
        Ok(())
    }
}

/// PUT KEY replacing (or adding) a whole SCP03 key set, each key encrypted
/// under `dek` (the static Key-DEK of the current session).
///
/// * CLA '80', INS 'D8', P1 = `old_kvn` ('00' adds a new key set, b8 = 0:
///   last command), P2 = '81' (several keys, first key identifier '01'), Le '00'.
/// * Data: `new_kvn`, then for ENC, MAC and DEK (key identifiers 01, 02, 03)
///   the key data field of Amendment D Table 7-10:
///   `88 | Lk+1 | Lk | AES-CBC(DEK, ICV 0, key ‖ pad) | 03 | KCV`, where Lk is
///   the key length ('10', '18', '20'); a 24-byte key is padded with 8
///   bytes ('00' here; the spec allows any) to a whole block.
/// * KCV: first 3 bytes of AES(key, 16 × '01') (§7.2.2).
///
/// `new_kvn` must equal `new_keys.kvn()` (stated twice so a key set built for
/// one version is not sent under another by mistake).
pub fn put_key(new_keys: &StaticKeys, new_kvn: u8, old_kvn: u8, dek: &AesKey) -> Result<PutKey> {
    if !(0x01..=0x7F).contains(&new_kvn) {
        return Err(Error::BadKvn { kvn: new_kvn });
    }
    if old_kvn > 0x7F {
        return Err(Error::BadKvn { kvn: old_kvn });
    }
    if new_keys.kvn() != new_kvn {
        return Err(Error::WrongParameters(
            "new_kvn differs from the key set's version number",
        ));
    }
    let mut data = vec![new_kvn];
    let mut expected = vec![new_kvn];
    for key in [new_keys.enc(), new_keys.mac(), new_keys.dek()] {
        let mut block = Zeroizing::new(key.expose().to_vec());
        block.resize(key.len().div_ceil(BLOCK) * BLOCK, 0);
        crypto::cbc_encrypt(dek.expose(), [0; BLOCK], &mut block)?;
        let kcv = key.kcv();
        data.push(KEY_TYPE_AES);
        data.push((block.len() + 1) as u8);
        data.push(key.len() as u8);
        data.extend_from_slice(&block);
        data.push(3);
        data.extend_from_slice(&kcv);
        expected.extend_from_slice(&kcv);
    }
    Ok(PutKey {
        // The keys travel encrypted under the DEK, yet the field is kept a
        // secret: wiped on drop and never traced.
        command: Command::new(CLA_GP, INS_PUT_KEY, old_kvn, 0x81)
            .with_secret(cardsmith_wire::secret::Secret::new(data))
            .with_ne(256),
        expected_response: expected,
    })
}

/// A PUT KEY command as the card understood it.
#[derive(Clone, Debug)]
pub struct ParsedPutKey {
    /// P1 b7-b1: version of the key set to replace ('00': add).
    pub old_kvn: u8,
    /// P1 b8: more PUT KEY commands follow.
    pub more_commands: bool,
    /// P2 b7-b1: key identifier of the first key.
    pub first_key_id: u8,
    /// P2 b8: several keys in this command.
    pub multiple: bool,
    /// Version number of the new keys.
    pub new_kvn: u8,
    /// The decrypted keys, in key identifier order, each KCV-checked.
    pub keys: Vec<AesKey>,
}

impl ParsedPutKey {
    /// The response data field: new KVN then the KCV of each key
    /// (GPCS §11.8.3.1).
    pub fn response_data(&self) -> Vec<u8> {
        let mut out = vec![self.new_kvn];
        for k in &self.keys {
            out.extend_from_slice(&k.kcv());
        }
        out
    }

    /// The keys as an SCP03 key set: exactly three keys of one length with
    /// identifiers 01 (ENC), 02 (MAC), 03 (DEK).
    pub fn to_static_keys(&self) -> Result<StaticKeys> {
        match self.keys.as_slice() {
            [enc, mac, dek] if self.first_key_id == 1 => {
                StaticKeys::new(self.new_kvn, enc.expose(), mac.expose(), dek.expose())
            }
            _ => Err(Error::MalformedPutKey(
                "not an SCP03 key set (three keys from id 01)",
            )),
        }
    }
}

/// BER length (GPCS §11.8.2.3.1): '01'–'80' (a single '80' means 128, for
/// backward compatibility), '81 xx', '82 xx xx'.
fn ber_length(r: &mut Reader<'_>) -> Result<usize> {
    match r.byte()? {
        n @ 0x00..=0x80 => Ok(usize::from(n)),
        0x81 => Ok(usize::from(r.byte()?)),
        0x82 => Ok(usize::from(r.u16()?)),
        _ => Err(Error::MalformedPutKey("length field longer than 3 bytes")),
    }
}

/// Card side: parse and decrypt a (plain) PUT KEY command carrying AES keys
/// encrypted under `dek`, in the Basic format (GPCS Table 11-68).
///
/// Key Component Blocks whose length is not a multiple of 16 start with the
/// clear key length (Table 11-70, the form Amendment D Table 7-10 uses:
/// `88 11 10 …`); blocks of whole AES blocks are the bare ciphertext
/// (Table 11-71: `88 10 …`). The KCV (3 bytes, mandatory here) must match
/// the decrypted key, else [`Error::KcvMismatch`] ('6982').
pub fn parse_put_key(cmd: &Command, dek: &AesKey) -> Result<ParsedPutKey> {
    if cmd.ins != INS_PUT_KEY {
        return Err(Error::UnexpectedCommand("not PUT KEY"));
    }
    let mut r = Reader::new(cmd.data(), Error::MalformedPutKey("truncated"));
    let new_kvn = r.byte()?;
    if !(0x01..=0x7F).contains(&new_kvn) {
        return Err(Error::BadKvn { kvn: new_kvn });
    }
    let mut keys = Vec::new();
    while !r.is_empty() {
        let key_type = r.byte()?;
        if key_type == 0xFF {
            return Err(Error::MalformedPutKey(
                "extended format key data is not supported",
            ));
        }
        if key_type != KEY_TYPE_AES {
            return Err(Error::MalformedPutKey(
                "only AES keys (key type 88) are supported",
            ));
        }
        let kcb_len = ber_length(&mut r)?;
        let kcb = r.take(kcb_len)?;
        let mut kr = Reader::new(kcb, Error::MalformedPutKey("truncated key component block"));
        let key_len = if !kcb_len.is_multiple_of(BLOCK) {
            ber_length(&mut kr)?
        } else {
            kcb_len
        };
        let cipher = kr.take(kr.remaining())?;
        if cipher.is_empty() || !cipher.len().is_multiple_of(BLOCK) || key_len > cipher.len() {
            return Err(Error::MalformedPutKey(
                "encrypted key is not whole AES blocks",
            ));
        }
        let mut plain = Zeroizing::new(cipher.to_vec());
        crypto::cbc_decrypt(dek.expose(), [0; BLOCK], &mut plain)?;
        let key = AesKey::new(plain.get(..key_len).unwrap_or_default())
            .map_err(|_| Error::MalformedPutKey("key is not 16, 24 or 32 bytes"))?;
        let kcv_len = usize::from(r.byte()?);
        if kcv_len != 3 {
            return Err(Error::MalformedPutKey(
                "AES keys need a 3-byte key check value",
            ));
        }
        if r.take(3)? != key.kcv() {
            return Err(Error::KcvMismatch { index: keys.len() });
        }
        keys.push(key);
    }
    let multiple = cmd.p2 & 0x80 != 0;
    if keys.is_empty() || (!multiple && keys.len() != 1) {
        return Err(Error::MalformedPutKey("number of keys does not match P2"));
    }
    Ok(ParsedPutKey {
        old_kvn: cmd.p1 & 0x7F,
        more_commands: cmd.p1 & 0x80 != 0,
        first_key_id: cmd.p2 & 0x7F,
        multiple,
        new_kvn,
        keys,
    })
}

// ---------------------------------------------------------------------------
// DGI and STORE DATA
// ---------------------------------------------------------------------------

/// A Data Grouping Identifier and its value.
pub type Dgi = (u16, Vec<u8>);

/// Encode DGIs (GlobalPlatform Scripting / EMV CPS format): 2-byte tag, then
/// the value length on 1 byte ('00'–'FE') or 'FF' + 2 bytes (255–65535),
/// then the value.
pub fn encode_dgis(dgis: &[Dgi]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (tag, value) in dgis {
        out.extend_from_slice(&tag.to_be_bytes());
        match value.len() {
            n @ 0..=254 => out.push(n as u8),
            n @ 255..=65_535 => {
                out.push(0xFF);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => return Err(Error::DataTooLong { len: n }),
        }
        out.extend_from_slice(value);
    }
    Ok(out)
}

/// Parse a concatenation of DGIs; truncated tags, lengths or values are
/// [`Error::MalformedDgi`].
pub fn parse_dgis(data: &[u8]) -> Result<Vec<Dgi>> {
    let mut r = Reader::new(data, Error::MalformedDgi("truncated"));
    let mut out = Vec::new();
    while !r.is_empty() {
        let tag = r.u16()?;
        let len = match r.byte()? {
            0xFF => usize::from(r.u16()?),
            n => usize::from(n),
        };
        out.push((tag, r.take(len)?.to_vec()));
    }
    Ok(out)
}

/// STORE DATA commands carrying these DGIs to the security domain.
///
/// The DGI stream is cut into blocks of at most `max_block_len` bytes —
/// use [`HostSession::max_plain_data_len`](super::host::HostSession::max_plain_data_len)`(255)`
/// so that each block still fits a short APDU after C-MAC and C-ENC padding.
/// A DGI may straddle two blocks (GPCS §11.11.2.3: its length field always
/// gives the full length). Each command is `80 E2 P1 P2 Lc data` (case 3):
/// P1 = '08' (DGI format) plus '80' on the last block, P2 = block number
/// '00'..'FF'.
pub fn store_data(dgis: &[Dgi], max_block_len: usize) -> Result<Vec<Command>> {
    if max_block_len == 0 {
        return Err(Error::WrongParameters("block length must be positive"));
    }
    let stream = encode_dgis(dgis)?;
    if stream.is_empty() {
        return Err(Error::WrongLength("no DGI to store"));
    }
    let blocks = stream.len().div_ceil(max_block_len);
    if blocks > 256 {
        return Err(Error::TooManyBlocks { blocks });
    }
    Ok(stream
        .chunks(max_block_len)
        .enumerate()
        .map(|(i, chunk)| {
            let last = i + 1 == blocks;
            let p1 = STORE_DATA_DGI | if last { STORE_DATA_LAST_BLOCK } else { 0 };
            Command::new(CLA_GP, INS_STORE_DATA, p1, i as u8).with_data(chunk.to_vec())
        })
        .collect())
}

/// Card side: collect STORE DATA blocks and return the DGIs after the last
/// block.
#[derive(Debug, Default)]
pub struct StoreDataAssembler {
    /// Number of blocks received so far (the next expected P2).
    received: usize,
    buffer: Vec<u8>,
}

impl StoreDataAssembler {
    pub fn new() -> StoreDataAssembler {
        StoreDataAssembler::default()
    }

    /// Take one (plain) STORE DATA command. Returns the parsed DGIs after the
    /// block with P1 b8 set, `None` before. A block out of sequence, a P1 not
    /// announcing DGI format, or malformed DGIs reset the assembler and are
    /// errors (GPCS §11.11.2.2: the block counter resets on errors).
    pub fn push(&mut self, cmd: &Command) -> Result<Option<Vec<Dgi>>> {
        let result = self.accept(cmd);
        if !matches!(result, Ok(None)) {
            self.received = 0;
            self.buffer.clear();
        }
        result
    }

    fn accept(&mut self, cmd: &Command) -> Result<Option<Vec<Dgi>>> {
        if cmd.ins != INS_STORE_DATA {
            return Err(Error::UnexpectedCommand("not STORE DATA"));
        }
        if self.received > 255 {
            return Err(Error::TooManyBlocks {
                blocks: self.received + 1,
            });
        }
        let expected = self.received as u8;
        if cmd.p2 != expected {
            return Err(Error::StoreDataSequence {
                expected,
                got: cmd.p2,
            });
        }
        if cmd.p1 & 0x18 != STORE_DATA_DGI {
            return Err(Error::WrongParameters(
                "STORE DATA P1 does not announce DGI format",
            ));
        }
        self.buffer.extend_from_slice(cmd.data());
        self.received += 1;
        if cmd.p1 & STORE_DATA_LAST_BLOCK != 0 {
            return parse_dgis(&self.buffer).map(Some);
        }
        Ok(None)
    }
}
