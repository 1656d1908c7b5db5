//! Batch files of any size: read in chunks, validated in parallel, handed
//! on chunk by chunk in line order.
//!
//! [`super::load_records`] holds the whole file and every parsed record
//! (photos and templates included) at once; a million records is about
//! 5 GB. [`stream_records`] keeps a bounded window instead: one thread
//! reads a chunk of lines and validates it on all cores (each worker a
//! contiguous slice, so results come back in line order), then checks for
//! duplicates in line order and sends the chunk to the caller through a
//! channel of one slot, so the caller works on one chunk (e.g. inserting
//! it into the register) while the next is read and validated.
//!
//! The outcome is the same as [`super::load_records`]': the same records
//! accepted, the same errors with the same locations, fields and rules,
//! the same warnings. Only the grouping into chunks is new. A file that is
//! one pretty-printed JSON object is one record, read whole as before.
//!
//! What still grows with the file is the duplicate index: a `record_id` or
//! `national_id` seen on an earlier line must be refused. It keeps no
//! strings: a national ID (10 digits) is packed with its line in 8 bytes, a
//! `record_id` as a 96-bit keyed hash (from two SipHash-1-3 with independent
//! random keys; a false duplicate among a million ids has a probability
//! near 10^-17) with its line in 16: 24 bytes a record, 30 to 60 with the
//! hash tables' spare room.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::Path;
use std::sync::mpsc;

use super::{load_records, parse_record_at, Record, RecordError, TemplateValidator};

/// How a file is cut and validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// Lines per chunk (at least 1).
    pub chunk_lines: usize,
    /// A chunk ends early once its lines hold this many bytes (a file of
    /// huge lines still moves in bounded steps); at least one line.
    pub chunk_bytes: usize,
    /// Validating threads (at least 1).
    pub workers: usize,
}

impl Default for StreamOptions {
    /// 2,048 lines or 16 MiB a chunk, one worker per core.
    fn default() -> Self {
        StreamOptions {
            chunk_lines: 2048,
            chunk_bytes: 16 << 20,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// One chunk of a batch file, in line order; every line of a chunk comes
/// after every line of the chunk before.
#[derive(Debug)]
pub struct Chunk<T> {
    /// Valid records (as made by the caller's map), with the 1-based line
    /// on which each starts.
    pub good: Vec<(usize, T)>,
    /// Errors of refused records (several per record are possible).
    pub bad: Vec<RecordError>,
    /// Warnings about accepted records.
    pub warnings: Vec<RecordError>,
}

impl<T> Default for Chunk<T> {
    fn default() -> Self {
        Chunk {
            good: Vec::new(),
            bad: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// What a worker keeps of a valid record for the ordered pass: the keys of
/// the duplicate check, the warnings, and the caller's value.
struct Checked<T> {
    record_id: String,
    national_id: String,
    warnings: Vec<(usize, String)>,
    item: T,
}

type Outcome<T> = (usize, Result<Checked<T>, Vec<RecordError>>);

/// Validates `path` chunk by chunk and calls `consume` with an iterator
/// over the chunks (each an I/O error or a chunk). Each valid record is
/// turned into the caller's value by `map` on the validating thread, so
/// photos and templates need not outlive their chunk. `Err` only if the
/// file cannot be opened; a read error mid-file ends the iterator with
/// that error.
pub fn stream_records<T, R>(
    path: &Path,
    v: &(dyn TemplateValidator + Sync),
    opts: &StreamOptions,
    map: &(dyn Fn(usize, Record) -> T + Sync),
    consume: impl FnOnce(&mut dyn Iterator<Item = std::io::Result<Chunk<T>>>) -> R,
) -> std::io::Result<R>
where
    T: Send,
{
    let file = std::fs::File::open(path)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    if starts_as_one_document(&mut reader)? {
        // One pretty-printed object (or what looks like one): the whole
        // file is one record, exactly as `load_records` reads it.
        let batch = load_records(path, v)?;
        let chunk = Chunk {
            good: batch
                .good
                .into_iter()
                .map(|(n, r)| (n, map(n, r)))
                .collect(),
            bad: batch.bad,
            warnings: batch.warnings,
        };
        return Ok(consume(&mut std::iter::once(Ok(chunk))));
    }
    let name = path.display().to_string();
    let opts = StreamOptions {
        chunk_lines: opts.chunk_lines.max(1),
        chunk_bytes: opts.chunk_bytes.max(1),
        workers: opts.workers.max(1),
    };
    Ok(std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<std::io::Result<Chunk<T>>>(1);
        let name = &name;
        s.spawn(move || {
            let mut lines = Lines {
                reader,
                next_line: 1,
                buf: Vec::new(),
                spans: Vec::new(),
            };
            let mut seen = Seen::new();
            loop {
                match lines.fill(&opts) {
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
                let outcomes = validate(&lines, name, v, map, opts.workers);
                let chunk = seen.check(name, outcomes);
                if tx.send(Ok(chunk)).is_err() {
                    // The consumer stopped early.
                    break;
                }
            }
        });
        let mut it = rx.into_iter();
        consume(&mut it)
    }))
}

/// Does the file start the way `load_records` takes for one pretty-printed
/// document (its first non-blank line is `{`)? The reader is left where it
/// was: only its buffer is looked at.
fn starts_as_one_document(reader: &mut BufReader<std::fs::File>) -> std::io::Result<bool> {
    let head = reader.fill_buf()?;
    // A line cut by the buffer's end is never an object's short opening.
    Ok(head_is_object(
        head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head),
    ))
}

/// The current chunk's lines: one buffer, and each line's number and span
/// in it (without its `\n` or `\r\n`).
struct Lines {
    reader: BufReader<std::fs::File>,
    next_line: usize,
    buf: Vec<u8>,
    spans: Vec<(usize, Range<usize>)>,
}

impl Lines {
    /// Read the next chunk; `false` at the end of the file.
    fn fill(&mut self, opts: &StreamOptions) -> std::io::Result<bool> {
        self.buf.clear();
        self.spans.clear();
        while self.spans.len() < opts.chunk_lines && self.buf.len() < opts.chunk_bytes {
            let start = self.buf.len();
            let n = self.reader.read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                break;
            }
            let mut end = self.buf.len();
            if self.buf.get(end - 1) == Some(&b'\n') {
                end -= 1;
            }
            if end > start && self.buf.get(end - 1) == Some(&b'\r') {
                end -= 1;
            }
            let mut from = start;
            if self.next_line == 1
                && self
                    .buf
                    .get(start..end)
                    .is_some_and(|l| l.starts_with(b"\xEF\xBB\xBF"))
            {
                from += 3;
            }
            self.spans.push((self.next_line, from..end));
            self.next_line += 1;
        }
        Ok(!self.spans.is_empty())
    }
}

/// Validate the chunk's lines on `workers` threads, each a contiguous
/// slice; the outcomes come back in line order (blank lines dropped).
fn validate<T: Send>(
    lines: &Lines,
    name: &str,
    v: &(dyn TemplateValidator + Sync),
    map: &(dyn Fn(usize, Record) -> T + Sync),
    workers: usize,
) -> Vec<Outcome<T>> {
    let per = lines.spans.len().div_ceil(workers).max(1);
    let buf = &lines.buf;
    let work = |spans: &[(usize, Range<usize>)]| -> Vec<Outcome<T>> {
        let mut out = Vec::with_capacity(spans.len());
        for (n, span) in spans {
            let raw = buf.get(span.clone()).unwrap_or_default();
            if let Some(o) = validate_line(raw, *n, name, v, map) {
                out.push(o);
            }
        }
        out
    };
    let mut parts = lines.spans.chunks(per);
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    std::thread::scope(|s| {
        let others: Vec<_> = parts.map(|p| s.spawn(move || work(p))).collect();
        let mut all = work(first);
        for h in others {
            match h.join() {
                Ok(mut o) => all.append(&mut o),
                // A worker cannot panic on input (the parsers are
                // panic-free); if one did, say so in place of its lines.
                Err(_) => all.push((
                    0,
                    Err(vec![RecordError {
                        location: name.to_string(),
                        record_id: None,
                        field: String::new(),
                        rule: "a validating thread failed; lines of this chunk are missing".into(),
                    }]),
                )),
            }
        }
        all
    })
}

/// One line, as `load_records` takes it: blank lines are skipped, invalid
/// UTF-8 is refused for that line, the rest is a record.
fn validate_line<T>(
    raw: &[u8],
    n: usize,
    name: &str,
    v: &(dyn TemplateValidator + Sync),
    map: &(dyn Fn(usize, Record) -> T + Sync),
) -> Option<Outcome<T>> {
    let loc = format!("{name}:{n}");
    let text = match std::str::from_utf8(raw) {
        Ok(s) if s.trim().is_empty() => return None,
        Ok(s) => s,
        Err(e) => {
            return Some((
                n,
                Err(vec![RecordError {
                    location: loc,
                    record_id: None,
                    field: String::new(),
                    rule: format!(
                        "line is not valid UTF-8 (invalid byte at byte offset {})",
                        e.valid_up_to()
                    ),
                }]),
            ))
        }
    };
    Some((
        n,
        parse_record_at(text, &loc, n, v).map(|r| {
            let warnings = r
                .fingerprints
                .iter()
                .enumerate()
                .flat_map(|(i, f)| f.summary.warnings.iter().map(move |w| (i, w.clone())))
                .collect();
            Checked {
                record_id: r.record_id.clone(),
                national_id: r.national_id.clone(),
                warnings,
                item: map(n, r),
            }
        }),
    ))
}

/// A `record_id`'s 96-bit keyed hash and the line it was first seen on, in
/// 16 bytes; compared and hashed by the hash alone.
#[derive(Debug, Clone, Copy)]
struct IdEntry {
    hash: [u32; 3],
    line: u32,
}

impl PartialEq for IdEntry {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
    }
}
impl Eq for IdEntry {}
impl std::hash::Hash for IdEntry {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.hash.hash(state);
    }
}

/// Bits of a [`NidEntry`] that hold the national ID (10^10 < 2^34); the
/// other 30 hold the line.
const NID_BITS: u32 = 34;
const NID_MASK: u64 = (1 << NID_BITS) - 1;

/// A 10-digit national ID and the line it was first seen on, in 8 bytes;
/// compared and hashed by the ID alone.
#[derive(Debug, Clone, Copy)]
struct NidEntry(u64);

impl PartialEq for NidEntry {
    fn eq(&self, other: &Self) -> bool {
        self.0 & NID_MASK == other.0 & NID_MASK
    }
}
impl Eq for NidEntry {}
impl std::hash::Hash for NidEntry {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.0 & NID_MASK).hash(state);
    }
}

/// The batch's duplicate index (see the module header): 16 + 8 bytes a
/// record in the packed sets. Lines past what a packed entry holds (4
/// billion for ids, a billion for national IDs) and national IDs that are
/// not 10 digits (validation refuses them) are kept exactly in the maps.
struct Seen {
    ids: HashSet<IdEntry>,
    nids: HashSet<NidEntry>,
    other_ids: HashMap<String, usize>,
    other_nids: HashMap<String, usize>,
    k1: RandomState,
    k2: RandomState,
}

impl Seen {
    fn new() -> Seen {
        Seen {
            ids: HashSet::new(),
            nids: HashSet::new(),
            other_ids: HashMap::new(),
            other_nids: HashMap::new(),
            k1: RandomState::new(),
            k2: RandomState::new(),
        }
    }

    /// The first line of `record_id`, after noting it on line `n`.
    fn first_id(&mut self, id: &str, n: usize) -> Option<usize> {
        let (h1, h2) = (self.k1.hash_one(id), self.k2.hash_one(id));
        let hash = [h1 as u32, (h1 >> 32) as u32, h2 as u32];
        if let Some(e) = self.ids.get(&IdEntry { hash, line: 0 }) {
            return Some(e.line as usize);
        }
        match u32::try_from(n) {
            Ok(line) => {
                self.ids.insert(IdEntry { hash, line });
                None
            }
            Err(_) => first_in(&mut self.other_ids, id, n),
        }
    }

    /// The first line of `national_id`, after noting it on line `n`.
    fn first_nid(&mut self, nid: &str, n: usize) -> Option<usize> {
        let number = match nid.parse::<u64>() {
            // Ten digits: the number is the ID (leading zeros included).
            Ok(k) if nid.len() == 10 && nid.bytes().all(|b| b.is_ascii_digit()) => Some(k),
            _ => None,
        };
        if let Some(k) = number {
            if let Some(e) = self.nids.get(&NidEntry(k)) {
                return Some((e.0 >> NID_BITS) as usize);
            }
            if (n as u64) < 1 << (64 - NID_BITS) {
                self.nids.insert(NidEntry(k | (n as u64) << NID_BITS));
                return None;
            }
        }
        first_in(&mut self.other_nids, nid, n)
    }

    /// The ordered pass of `load_records`: refuse a record whose id or
    /// national ID appeared on an earlier line, and collect warnings of
    /// the accepted ones.
    fn check<T>(&mut self, name: &str, outcomes: Vec<Outcome<T>>) -> Chunk<T> {
        let mut chunk = Chunk::default();
        for (n, result) in outcomes {
            let c = match result {
                Err(errs) => {
                    chunk.bad.extend(errs);
                    continue;
                }
                Ok(c) => c,
            };
            let loc = format!("{name}:{n}");
            let first_id = self.first_id(&c.record_id, n);
            let first_nid = self.first_nid(&c.national_id, n);
            if let Some(first) = first_id {
                chunk.bad.push(RecordError {
                    location: loc.clone(),
                    record_id: Some(c.record_id.clone()),
                    field: "record_id".into(),
                    rule: format!("duplicate record_id; first used on line {first}"),
                });
            }
            if let Some(first) = first_nid {
                chunk.bad.push(RecordError {
                    location: loc.clone(),
                    record_id: Some(c.record_id.clone()),
                    field: "national_id".into(),
                    rule: format!("duplicate national_id; first used on line {first}"),
                });
            }
            if first_id.is_some() || first_nid.is_some() {
                continue;
            }
            for (i, w) in &c.warnings {
                chunk.warnings.push(RecordError {
                    location: loc.clone(),
                    record_id: Some(c.record_id.clone()),
                    field: format!("fingerprints[{i}].data"),
                    rule: format!("template accepted with a warning: {w}"),
                });
            }
            chunk.good.push((n, c.item));
        }
        chunk
    }
}

/// The line `key` was first seen on, after noting it on line `n`.
fn first_in(map: &mut HashMap<String, usize>, key: &str, n: usize) -> Option<usize> {
    match map.get(key) {
        Some(&first) => Some(first),
        None => {
            map.insert(key.to_string(), n);
            None
        }
    }
}

/// Finds a record of a batch file again by its line without holding the
/// file: the byte offset of every `every`-th line (for a million lines and
/// `every` = 64, 125 KB). A look-up reads at most `every` lines from the
/// nearest mark and validates the record again, so what the line puts on
/// a card is always what the file says now, checked by the same rules.
#[derive(Debug, Clone)]
pub struct LineIndex {
    path: std::path::PathBuf,
    name: String,
    every: usize,
    /// `offsets[i]`: where line `i * every + 1` starts.
    offsets: Vec<u64>,
    /// Lines in the file (a last line without `\n` counts).
    lines: u64,
    /// The file is one pretty-printed record ([`load_records`]' rule).
    single: bool,
}

impl LineIndex {
    /// Read `path` once, marking every `every`-th line; each block read is
    /// also given to `feed` (e.g. to hash the file in the same pass).
    pub fn build(
        path: &Path,
        every: usize,
        feed: &mut dyn FnMut(&[u8]),
    ) -> std::io::Result<LineIndex> {
        use std::io::Read;
        let every = every.max(1);
        let mut file = std::fs::File::open(path)?;
        let mut block = vec![0u8; 1 << 20];
        let mut offsets = vec![0u64];
        let mut at = 0u64;
        let mut lines_done = 0u64;
        let mut first = true;
        let mut single = false;
        let mut tail_open = false;
        loop {
            let n = file.read(&mut block)?;
            if n == 0 {
                break;
            }
            let data = block.get(..n).unwrap_or_default();
            feed(data);
            if first {
                first = false;
                let head = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
                single = head_is_object(head);
            }
            for i in memchr::memchr_iter(b'\n', data) {
                lines_done += 1;
                if lines_done.is_multiple_of(every as u64) {
                    offsets.push(at + i as u64 + 1);
                }
            }
            tail_open = data.last() != Some(&b'\n');
            at += n as u64;
        }
        let lines = lines_done + u64::from(tail_open);
        // A mark at the very end of the file names no line.
        if offsets.len() as u64 > lines.div_ceil(every as u64).max(1) {
            offsets.pop();
        }
        Ok(LineIndex {
            path: path.to_path_buf(),
            name: path.display().to_string(),
            every,
            offsets,
            lines,
            single,
        })
    }

    /// Lines in the file.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The record that starts on `line`, validated. `Err` names the file
    /// and line and says what is wrong (every error of the record).
    pub fn record(&self, line: u64, v: &dyn TemplateValidator) -> Result<Record, String> {
        let joined = |errs: Vec<RecordError>| {
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        if self.single {
            let batch = load_records(&self.path, v).map_err(|e| format!("{}: {e}", self.name))?;
            if !batch.bad.is_empty() {
                return Err(joined(batch.bad));
            }
            return batch
                .good
                .into_iter()
                .find(|(n, _)| *n as u64 == line)
                .map(|(_, r)| r)
                .ok_or_else(|| format!("{}: no record starts on line {line}", self.name));
        }
        let raw = self
            .line_bytes(line)
            .map_err(|e| format!("{}:{line}: {e}", self.name))?;
        let raw = if line == 1 {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&raw)
        } else {
            &raw
        };
        let loc = format!("{}:{line}", self.name);
        let text = std::str::from_utf8(raw).map_err(|e| {
            format!(
                "{loc}: line is not valid UTF-8 (invalid byte at byte offset {})",
                e.valid_up_to()
            )
        })?;
        parse_record_at(text, &loc, usize::try_from(line).unwrap_or(usize::MAX), v).map_err(joined)
    }

    /// The bytes of `line` without its line end.
    fn line_bytes(&self, line: u64) -> std::io::Result<Vec<u8>> {
        use std::io::{Seek, SeekFrom};
        let not_there = || {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the file has {} lines", self.lines),
            )
        };
        if line == 0 || line > self.lines {
            return Err(not_there());
        }
        let mark = (line - 1) / self.every as u64;
        let start = usize::try_from(mark)
            .ok()
            .and_then(|m| self.offsets.get(m))
            .copied()
            .ok_or_else(not_there)?;
        let mut file = std::fs::File::open(&self.path)?;
        file.seek(SeekFrom::Start(start))?;
        let mut reader = BufReader::with_capacity(256 << 10, file);
        let mut buf = Vec::new();
        for _ in 0..(line - 1) % self.every as u64 {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                return Err(not_there());
            }
        }
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Err(not_there());
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(buf)
    }
}

/// Is the first non-blank line of `head` (a file's first block, BOM
/// removed) a lone `{`?
fn head_is_object(head: &[u8]) -> bool {
    for raw in head.split(|&b| b == b'\n') {
        match std::str::from_utf8(raw.strip_suffix(b"\r").unwrap_or(raw)) {
            Ok(s) if s.trim().is_empty() => continue,
            Ok(s) => return s.trim() == "{",
            Err(_) => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::Seen;

    #[test]
    fn the_duplicate_index_gives_the_first_line_at_any_line_number() {
        let mut s = Seen::new();
        assert_eq!(s.first_id("R-1", 5), None);
        assert_eq!(s.first_id("R-2", 6), None);
        assert_eq!(s.first_id("R-1", 9), Some(5));
        assert_eq!(s.first_nid("0012345678", 5), None);
        assert_eq!(s.first_nid("0012345679", 6), None);
        assert_eq!(s.first_nid("0012345678", 9), Some(5));
        // Past what a packed entry holds.
        let far = u32::MAX as usize + 10;
        assert_eq!(s.first_id("R-3", far), None);
        assert_eq!(s.first_id("R-3", far + 1), Some(far));
        assert_eq!(s.first_id("R-1", far + 2), Some(5));
        let far = (1usize << 30) + 10;
        assert_eq!(s.first_nid("9912345678", far), None);
        assert_eq!(s.first_nid("9912345678", far + 1), Some(far));
        assert_eq!(s.first_nid("0012345679", far + 2), Some(6));
        // Not ten digits (never valid, kept exactly all the same).
        assert_eq!(s.first_nid("12", 3), None);
        assert_eq!(s.first_nid("12", 4), Some(3));
    }
}
