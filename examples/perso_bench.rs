//! Benchmark (not a test): host CPU time per card for `personalize` and
//! `verify`, with the card's own time excluded; the APDUs per card
//! compared with the minimum the payload and the card's command set allow;
//! and the card time under the simulated card's timing model (`typical`)
//! compared with its floor.
//!
//! The minimum is a list of commands (see [`Minimum`]): each EF's content
//! in ceil(bytes / max data field) UPDATE or READ BINARY, one SELECT per EF
//! and one per DF (identity, PKI, MF), the profile script's CREATE FILEs and
//! PIN objects and the record's fingers one each, and the fixed commands
//! (GET DATA, issuer authentication, per key GENERATE / MSE / sign or READ
//! PUBLIC KEY / MSE / sign, VERIFY per finger, ACTIVATE, the closed check).
//! Counts come from the profile and the record, never from the run; the
//! wire only gives the sizes of the fixed commands' data. The floor is the
//! timing model's charge for exactly those commands: minimum APDUs x
//! latency + their bytes at the baud rate + the EEPROM pages they write +
//! the key generations (src/sim/timing.rs, `Timing::apdu_cost`, the same
//! function the simulated card charges with); the modelled card time is the
//! same function over the APDUs really sent.
//!
//! Run with `bench/perso.sh` (or `cargo run --release --example perso_bench -- --help`).
//!
//! How time is measured. Everything runs on one thread (the simulated card
//! is in-process and runs inside `Session::transmit`). The clock is the
//! thread CPU clock, `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, declared here
//! with `extern "C"` because std already links the C library (no new
//! dependency; `libc` is not one). It has nanosecond resolution and does not
//! count time the thread is descheduled, unlike wall time; `/proc/self/stat`
//! would also be CPU time but only in 10 ms ticks, too coarse for one card.
//! A wrapper `Transport`/`Session` reads the clock just before and just after
//! the inner (simulated card's) `transmit`; that interval is card time.
//! Host time = CPU time of the `personalize`/`verify` call minus card time,
//! corrected for the cost of the clock reads themselves (calibrated in the
//! same run: each APDU adds about one clock read to each side).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use cardsmith::cli::perso::{CardArgs, SideFromArgs};
use cardsmith::perso::engine::{self, CardInput};
use cardsmith::perso::input;
use cardsmith::perso::input::{compact_template, IsoTemplates};
use cardsmith::perso::side::IssuerSide;
use cardsmith::record::{self, date::JalaliDate};
use cardsmith::sim::timing::Timing;
use cardsmith::sim::{SimCard, SimConfig};
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{
    Channel, ExchangeOptions, Protocol, Session, Transport, TransportError,
};

// ---------------------------------------------------------------------------
// Thread CPU clock

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
extern "C" {
    fn clock_gettime(clk: i32, ts: *mut Timespec) -> i32;
}

/// Thread CPU time in ns (Linux); elsewhere monotonic wall time.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn cpu_ns() -> u64 {
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec (two 64-bit fields on 64-bit Linux).
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn cpu_ns() -> u64 {
    use std::sync::OnceLock;
    static T0: OnceLock<Instant> = OnceLock::new();
    T0.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

const CLOCK_NAME: &str = if cfg!(all(target_os = "linux", target_pointer_width = "64")) {
    "thread CPU time (clock_gettime CLOCK_THREAD_CPUTIME_ID)"
} else {
    "wall time (Instant; no thread CPU clock on this platform)"
};

/// Cost of one clock read, ns (median of batches).
fn calibrate_clock() -> f64 {
    let mut per = Vec::new();
    for _ in 0..21 {
        let n = 20_000u64;
        let t0 = cpu_ns();
        let mut x = 0u64;
        for _ in 0..n {
            x = x.wrapping_add(cpu_ns());
        }
        let t1 = cpu_ns();
        std::hint::black_box(x);
        per.push((t1 - t0) as f64 / n as f64);
    }
    median(&mut per)
}

// ---------------------------------------------------------------------------
// Metering transport

/// One APDU on the wire.
#[derive(Clone, Debug)]
struct Wire {
    cmd: Vec<u8>,
    resp_len: usize,
    sw: u16,
    /// Host CPU time since the previous APDU ended (or the phase started).
    gap_ns: u64,
    /// Time inside the card's transmit.
    card_ns: u64,
}

#[derive(Default)]
struct Meter {
    log: Vec<Wire>,
    last_end: u64,
}

impl Meter {
    fn start_phase(&mut self) {
        self.log.clear();
        self.last_end = cpu_ns();
    }
}

struct Metered {
    inner: SimTransport,
    meter: Arc<Mutex<Meter>>,
}

struct MeteredSession<'a> {
    inner: Box<dyn Session + 'a>,
    meter: Arc<Mutex<Meter>>,
}

impl Session for MeteredSession<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let t0 = cpu_ns();
        let r = self.inner.transmit(apdu);
        let t1 = cpu_ns();
        let mut m = self.meter.lock().unwrap_or_else(|e| e.into_inner());
        let gap_ns = t0.saturating_sub(m.last_end);
        let (resp_len, sw) = match &r {
            Ok(b) if b.len() >= 2 => (
                b.len(),
                u16::from_be_bytes([b[b.len() - 2], b[b.len() - 1]]),
            ),
            Ok(b) => (b.len(), 0),
            Err(_) => (0, 0),
        };
        m.log.push(Wire {
            cmd: apdu.to_vec(),
            resp_len,
            sw,
            gap_ns,
            card_ns: t1 - t0,
        });
        m.last_end = cpu_ns();
        r
    }
}

impl Transport for Metered {
    fn begin(&mut self) -> Result<Box<dyn Session + '_>, TransportError> {
        let meter = self.meter.clone();
        let inner = self.inner.begin()?;
        Ok(Box::new(MeteredSession { inner, meter }))
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), TransportError> {
        self.inner.reconnect(reset)
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn protocol(&self) -> Protocol {
        self.inner.protocol()
    }
    fn reader(&self) -> String {
        self.inner.reader()
    }
}

// ---------------------------------------------------------------------------
// APDU decoding (just enough to classify and size)

struct Cmd<'a> {
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: &'a [u8],
}

fn parse_cmd(b: &[u8]) -> Cmd<'_> {
    let (cla, ins, p1, p2) = (b[0], b[1], b[2], b[3]);
    let data: &[u8] = if b.len() <= 5 {
        &[]
    } else if b[4] != 0 {
        let lc = usize::from(b[4]);
        b.get(5..5 + lc).unwrap_or(&[])
    } else if b.len() > 7 {
        let lc = usize::from(u16::from_be_bytes([b[5], b[6]]));
        b.get(7..7 + lc).unwrap_or(&[])
    } else {
        &[]
    };
    Cmd {
        cla,
        ins,
        p1,
        p2,
        data,
    }
}

fn label(c: &Cmd<'_>) -> String {
    let chain = if c.cla & 0x10 != 0 {
        " (chained part)"
    } else {
        ""
    };
    let s = match (c.ins, c.p1) {
        (0xA4, 0x00) if c.data == [0x3F, 0x00] || c.data.is_empty() => "SELECT MF".to_string(),
        (0xA4, 0x04) => format!("SELECT AID {}", cardsmith::hex::compact(c.data)),
        (0xA4, 0x00) => format!("SELECT DF {}", cardsmith::hex::compact(c.data)),
        (0xA4, 0x02) => format!(
            "SELECT EF {} ({})",
            cardsmith::hex::compact(c.data),
            if c.p2 == 0x04 { "FCP" } else { "no data" }
        ),
        (0xA4, _) => "SELECT".into(),
        (0xCA, _) => format!("GET DATA {:02X}{:02X}", c.p1, c.p2),
        (0x84, _) => "GET CHALLENGE".into(),
        (0x82, _) => "EXTERNAL AUTHENTICATE".into(),
        (0xDA, 0x01) => format!("PUT DATA create PIN {:02X}", c.p2),
        (0xDA, 0x02) => format!("PUT DATA enrol finger {:02X}", c.p2),
        (0xE0, _) => "CREATE FILE".into(),
        (0xD6, _) | (0xD7, _) => "UPDATE BINARY".into(),
        (0xB0, _) | (0xB1, _) => "READ BINARY".into(),
        (0x46, 0x00) => "GENERATE KEY PAIR".into(),
        (0x46, _) => "READ PUBLIC KEY".into(),
        (0x22, _) => "MSE SET".into(),
        (0x2A, _) => "PSO COMPUTE DIGITAL SIGNATURE".into(),
        (0x88, _) => "INTERNAL AUTHENTICATE".into(),
        (0x44, _) => "ACTIVATE FILE".into(),
        (0x21, _) => "VERIFY (biometric)".into(),
        (0x20, _) => "VERIFY (PIN)".into(),
        (0xC0, _) => "GET RESPONSE".into(),
        (i, _) => format!("INS {i:02X}"),
    };
    format!("{s}{chain}")
}

/// Coarse class of a command, for the APDU breakdown.
fn class(c: &Cmd<'_>) -> &'static str {
    match c.ins {
        0xA4 => "SELECT",
        0xCA => "GET DATA",
        0x84 | 0x82 => "issuer auth",
        0xDA | 0xE0 => "create (script) / enrol",
        0xD6 | 0xD7 => "UPDATE BINARY",
        0xB0 | 0xB1 => "READ BINARY",
        0x46 => "key pair (gen/read)",
        0x22 | 0x2A | 0x88 => "MSE + sign",
        0x44 => "ACTIVATE",
        0x21 | 0x20 => "VERIFY",
        0xC0 => "GET RESPONSE",
        _ => "other",
    }
}

// ---------------------------------------------------------------------------
// Minimum APDU count and the card-time floor

/// The simulated card's timing model the floor and the modelled card time
/// use (src/sim/timing.rs; what `--timing typical` makes the card wait).
const MODEL: Timing = Timing::TYPICAL;

fn us_of(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Card time of a logged exchange under [`MODEL`], µs: each APDU as the
/// simulated card charges it (latency, bytes at the baud rate, EEPROM
/// pages, key generation).
fn model_us(log: &[Wire]) -> f64 {
    log.iter()
        .map(|w| us_of(MODEL.apdu_cost(&w.cmd, w.resp_len, w.sw)))
        .sum()
}

/// What one phase (perso or verify) needs at least: every command the
/// payload and the card's command set make unavoidable, each with what
/// the timing model charges for it. Its length is the minimum APDU count;
/// the sum of the charges is the card-time floor (minimum APDUs x latency +
/// their bytes at the baud rate + the EEPROM pages they write + the key
/// generations).
#[derive(Default, Clone)]
struct Minimum {
    /// (what, model cost µs) per command.
    cmds: Vec<(String, f64)>,
}

impl Minimum {
    fn count(&self) -> usize {
        self.cmds.len()
    }
    fn floor_us(&self) -> f64 {
        self.cmds.iter().map(|(_, c)| c).sum()
    }
    /// A command of `cmd` bytes answered by `resp` bytes (data + SW) that
    /// writes `written` bytes of EEPROM.
    fn push(&mut self, what: &str, cmd: usize, resp: usize, written: usize) {
        self.cmds
            .push((what.to_string(), us_of(MODEL.cost(cmd, resp, written, 0))));
    }
    /// `count` commands of a class the phase cannot do without, sized as
    /// the first `count` such commands on the wire: their data (FCPs, PIN
    /// objects, templates, digests, signatures, keys, challenges) is the
    /// payload itself. The count never comes from the wire, only the sizes.
    fn fixed(&mut self, log: &[Wire], what: &str, count: usize, pred: impl Fn(&Cmd<'_>) -> bool) {
        let mut found = log
            .iter()
            .filter(|w| {
                let c = parse_cmd(&w.cmd);
                c.cla & 0x10 == 0 && pred(&c)
            })
            .map(|w| us_of(MODEL.apdu_cost(&w.cmd, w.resp_len, w.sw)));
        for _ in 0..count {
            // A command the run did not send (a card that answered
            // otherwise) is charged as a bare 4-byte command.
            let c = found
                .next()
                .unwrap_or_else(|| us_of(MODEL.cost(4, 2, 0, 0)));
            self.cmds.push((what.to_string(), c));
        }
    }
    /// EF content of `bytes` written in pieces of at most `max` bytes.
    fn writes(&mut self, what: &str, bytes: usize, max: usize) {
        let lc = if max > 255 { 3 } else { 1 };
        let mut left = bytes;
        loop {
            let n = left.min(max);
            self.push(what, 4 + lc + n, 2, n);
            left -= n;
            if left == 0 {
                break;
            }
        }
    }
    /// EF content of `bytes` read in pieces of at most `max` bytes.
    fn reads(&mut self, what: &str, bytes: usize, max: usize) {
        let le = if max > 256 { 3 } else { 1 };
        let mut left = bytes;
        loop {
            let n = left.min(max);
            self.push(what, 4 + le, n + 2, 0);
            left -= n;
            if left == 0 {
                break;
            }
        }
    }
    /// The three DFs a card's work is grouped by: the identity application,
    /// the PKI application, and the MF (closing / the closed check).
    /// Selecting the MF at power-on is implicit.
    fn select_dfs(&mut self, p: &cardsmith::perso::profile::Profile) {
        self.push(
            "SELECT identity application",
            5 + p.identity_aid.len(),
            2,
            0,
        );
        self.push("SELECT PKI application", 5 + p.pki_aid.len(), 2, 0);
        self.push("SELECT MF", 7, 2, 0);
    }
}

/// Per-EF content bytes written in a perso log: UPDATE BINARY data summed
/// by the EF selected before it (chained parts included).
fn writes_by_ef(log: &[Wire]) -> BTreeMap<String, usize> {
    let mut cur = String::from("?");
    let mut out = BTreeMap::new();
    for w in log {
        let c = parse_cmd(&w.cmd);
        match (c.ins, c.p1) {
            _ if is_ef_select(&c) => cur = cardsmith::hex::compact(c.data),
            (0xD6, _) | (0xD7, _) => *out.entry(cur.clone()).or_insert(0) += c.data.len(),
            _ => {}
        }
    }
    out
}

/// A SELECT of an EF: P1=02 (under the current DF), or P1=00 with a FID
/// other than the MF's (the domestic card selects its EFs so).
fn is_ef_select(c: &Cmd<'_>) -> bool {
    c.ins == 0xA4 && (c.p1 == 0x02 || (c.p1 == 0x00 && c.data.len() == 2 && c.data != [0x3F, 0x00]))
}

/// Count of logical commands (chained parts counted once) matching `pred`.
fn count_on_wire(log: &[Wire], pred: impl Fn(&Cmd<'_>) -> bool) -> usize {
    log.iter()
        .filter(|w| {
            let c = parse_cmd(&w.cmd);
            c.cla & 0x10 == 0 && pred(&c)
        })
        .count()
}

/// The perso minimum with data fields of at most `max` bytes (65,535
/// extended, 255 short).
fn perso_minimum(log: &[Wire], p: &cardsmith::perso::profile::Profile, max: usize) -> Minimum {
    let keys = p.keys.len();
    let mut m = Minimum::default();
    let efs = writes_by_ef(log);
    for (ef, n) in &efs {
        m.writes(&format!("EF {ef} content"), *n, max);
        m.push(&format!("SELECT EF {ef}"), 7, 2, 0);
    }
    // The profile script's files and PINs and the record's fingers: their
    // number is the payload (what the script and the record hold); each
    // carries its own small data object (< 255 bytes: one APDU in any
    // length form).
    for (what, pred) in [
        (
            "CREATE FILE",
            (|c: &Cmd<'_>| c.ins == 0xE0) as fn(&Cmd<'_>) -> bool,
        ),
        ("PIN object", |c: &Cmd<'_>| c.ins == 0xDA && c.p1 == 0x01),
        ("finger enrolment", |c: &Cmd<'_>| {
            c.ins == 0xDA && c.p1 == 0x02
        }),
    ] {
        m.fixed(log, what, count_on_wire(log, pred), pred);
    }
    m.fixed(log, "GET DATA life cycle + CPLC serial", 2, |c| {
        c.ins == 0xCA
    });
    m.fixed(log, "GET CHALLENGE", 1, |c| c.ins == 0x84);
    m.fixed(log, "EXTERNAL AUTHENTICATE", 1, |c| c.ins == 0x82);
    m.fixed(log, "GENERATE KEY PAIR, 1 per key", keys, |c| {
        c.ins == 0x46 && c.p1 == 0
    });
    m.fixed(log, "MSE SET, 1 per key (CSR)", keys, |c| c.ins == 0x22);
    m.fixed(log, "sign, 1 per key (CSR)", keys, |c| {
        matches!(c.ins, 0x2A | 0x88)
    });
    m.select_dfs(p);
    m.fixed(log, "ACTIVATE FILE (close)", 1, |c| c.ins == 0x44);
    m
}

/// The verify minimum with Ne of at most `max` bytes (65,536 extended:
/// one READ BINARY per EF; 256 short). `contents` = (item, content bytes)
/// for each EF verify reads.
fn verify_minimum(
    log: &[Wire],
    p: &cardsmith::perso::profile::Profile,
    contents: &[(String, usize)],
    fingers: usize,
    max: usize,
) -> Minimum {
    let keys = p.keys.len();
    let mut m = Minimum::default();
    for (n, b) in contents {
        m.reads(n, *b, max);
        m.push(&format!("SELECT {n}"), 7, 2, 0);
    }
    m.select_dfs(p);
    // Life cycle, CPLC serial, PIN/biometric status, and (since issue 12)
    // the card's BIT group template; not the simulated card's optional
    // score (DF72), which is a diagnostic.
    m.fixed(
        log,
        "GET DATA life cycle, CPLC, status, BIT group",
        4,
        |c| c.ins == 0xCA && !(c.p1 == 0xDF && c.p2 == 0x72),
    );
    m.fixed(log, "READ PUBLIC KEY, 1 per key", keys, |c| {
        c.ins == 0x46 && c.p1 != 0
    });
    m.fixed(log, "MSE SET, 1 per key (challenge)", keys, |c| {
        c.ins == 0x22
    });
    m.fixed(log, "sign, 1 per key (challenge)", keys, |c| {
        matches!(c.ins, 0x2A | 0x88)
    });
    // The signature key signs before activation only for the issuer; the
    // closed check is made as the issuer.
    m.fixed(log, "GET CHALLENGE", 1, |c| c.ins == 0x84);
    m.fixed(log, "EXTERNAL AUTHENTICATE", 1, |c| c.ins == 0x82);
    m.fixed(log, "VERIFY per finger", fingers, |c| c.ins == 0x21);
    m.fixed(log, "CREATE FILE refused (closed check)", 1, |c| {
        c.ins == 0xE0
    });
    m
}

/// The minimum over SCP03 from the one in clear for the same record: the
/// security domain's handshake (SELECT, INITIALIZE UPDATE, EXTERNAL
/// AUTHENTICATE) and the SELECT that ends the session replace issuer
/// authentication (perso) or come on top (verify, for the fingers); in
/// perso the data groups go as STORE DATA DGIs (ceil(bytes / max) commands,
/// no SELECT EF) instead of one SELECT EF + UPDATE BINARY each. The new
/// commands are charged as sent on the SCP03 wire; the secure messaging's
/// own bytes on the other commands (MACs, padding) are not in the floor.
fn scp03_minimum(
    clear: &Minimum,
    scp_log: &[Wire],
    p: &cardsmith::perso::profile::Profile,
    perso: bool,
) -> Minimum {
    let Some(sd) = &p.security_domain else {
        return clear.clone();
    };
    let dg_efs: Vec<String> = p
        .data_groups
        .iter()
        .map(|d| format!("{:04X}", d.fid))
        .collect();
    let mut had_dgs = false;
    let mut m = Minimum::default();
    for (what, c) in &clear.cmds {
        let is_dg = dg_efs
            .iter()
            .any(|f| what == &format!("EF {f} content") || what == &format!("SELECT EF {f}"));
        if perso && is_dg && sd.store_data {
            had_dgs = true;
            continue;
        }
        if perso && (what == "GET CHALLENGE" || what == "EXTERNAL AUTHENTICATE") {
            continue;
        }
        m.cmds.push((what.clone(), *c));
    }
    let sd_select = |c: &Cmd<'_>| c.ins == 0xA4 && c.p1 == 0x04 && c.data == sd.aid.as_slice();
    m.fixed(
        scp_log,
        "SELECT security domain (open, close)",
        2,
        sd_select,
    );
    m.fixed(scp_log, "INITIALIZE UPDATE", 1, |c| c.ins == 0x50);
    m.fixed(scp_log, "EXTERNAL AUTHENTICATE (SCP03)", 1, |c| {
        c.ins == 0x82 && c.cla & 0x80 != 0
    });
    if perso && had_dgs {
        // One STORE DATA carries every DGI up to the card's maximum.
        let total: usize = count_store_data_bytes(scp_log);
        let n = total.div_ceil(65_535).max(1);
        m.fixed(scp_log, "STORE DATA (data groups)", n, |c| c.ins == 0xE2);
    }
    m
}

/// The domestic card's perso minimum (issue 17), in clear, with UPDATE
/// BINARY blocks of at most `max` bytes: its command set has no CREATE
/// FILE (the files come from the factory), key generation and signing are
/// one command each, the issuer gives the key's factory PIN before the
/// request is signed, and SET STATUS closes; it speaks T=0, so every answer
/// with data takes a GET RESPONSE. Counts come from the profile and the
/// record; the wire gives sizes only.
fn domestic_perso_minimum(
    log: &[Wire],
    p: &cardsmith::perso::profile::Profile,
    fingers: usize,
    max: usize,
) -> Minimum {
    let keys = p.keys.len();
    let factory = factory_pin_keys(p);
    let mut m = Minimum::default();
    for (ef, n) in writes_by_ef(log) {
        m.writes(&format!("EF {ef} content"), n, max);
        m.push(&format!("SELECT EF {ef}"), 7, 2, 0);
    }
    m.push(
        "SELECT identity application",
        5 + p.identity_aid.len(),
        2,
        0,
    );
    m.push("SELECT PKI application", 5 + p.pki_aid.len(), 2, 0);
    m.fixed(log, "GET DATA life cycle + CPLC serial", 2, |c| {
        c.ins == 0xCA
    });
    m.fixed(log, "finger enrolment", fingers, |c| {
        c.ins == 0x24 && c.p1 == 0x01
    });
    m.fixed(log, "GENERATE KEY PAIR, 1 per key", keys, |c| {
        c.ins == 0x46 && c.p1 == 0
    });
    m.fixed(log, "VERIFY factory PIN (CSR)", factory, |c| c.ins == 0x20);
    m.fixed(log, "sign, 1 per key (CSR)", keys, |c| c.ins == 0x2A);
    m.fixed(
        log,
        "GET RESPONSE (T=0: GET DATA, keys, signatures)",
        2 + 2 * keys,
        |c| c.ins == 0xC0,
    );
    m.fixed(log, "SET STATUS (close)", 1, |c| c.ins == 0xF0);
    m
}

/// The domestic card's verify minimum: each EF selected (no FCP) and read
/// in 256-byte READ BINARY, each with its GET RESPONSE (T=0); the life
/// cycle, CPLC and BIT group; per key its public key, its factory PIN and a
/// signature; per finger a VERIFY.
fn domestic_verify_minimum(
    log: &[Wire],
    p: &cardsmith::perso::profile::Profile,
    contents: &[(String, usize)],
    fingers: usize,
) -> Minimum {
    let keys = p.keys.len();
    let mut m = Minimum::default();
    for (n, b) in contents {
        m.push(&format!("SELECT {n}"), 7, 2, 0);
        let mut left = *b;
        loop {
            let k = left.min(256);
            m.push(&format!("{n}: READ BINARY"), 5, 2, 0);
            m.push(&format!("{n}: GET RESPONSE"), 5, k + 2, 0);
            left -= k;
            if left == 0 {
                break;
            }
        }
    }
    m.push(
        "SELECT identity application",
        5 + p.identity_aid.len(),
        2,
        0,
    );
    m.push("SELECT PKI application", 5 + p.pki_aid.len(), 2, 0);
    m.fixed(log, "GET DATA life cycle, CPLC, BIT group", 3, |c| {
        c.ins == 0xCA
    });
    m.fixed(log, "READ PUBLIC KEY, 1 per key", keys, |c| {
        c.ins == 0x46 && c.p1 != 0
    });
    m.fixed(
        log,
        "VERIFY factory PIN (challenge)",
        factory_pin_keys(p),
        |c| c.ins == 0x20,
    );
    m.fixed(log, "sign, 1 per key (challenge)", keys, |c| c.ins == 0x2A);
    m.fixed(
        log,
        "GET RESPONSE (T=0: GET DATA, keys, signatures)",
        3 + 2 * keys,
        |c| c.ins == 0xC0,
    );
    m.fixed(log, "VERIFY per finger", fingers, |c| c.ins == 0x21);
    m
}

/// Keys whose PIN has a factory value (the issuer gives it before they sign).
fn factory_pin_keys(p: &cardsmith::perso::profile::Profile) -> usize {
    p.keys
        .iter()
        .filter(|k| p.key_factory_pin(k).is_some())
        .count()
}

/// Over SCP03 with R-MAC on a T=0 card every answer inside the channel
/// carries data (its MAC), so each command there takes a GET RESPONSE;
/// `extra` counts the commands of the minimum sent in the channel that
/// would answer no data in clear (those that do have their GET RESPONSE in
/// the clear minimum already). The handshake's own answers with data
/// (the security domain's FCI, INITIALIZE UPDATE) take theirs too, counted
/// from the wire. Each is charged as fetching an 8-byte MAC.
fn t0_secure_minimum(scp: Minimum, extra: usize, scp_log: &[Wire], sd_aid: &[u8]) -> Minimum {
    let handshake_gr = scp_log
        .windows(2)
        .filter(|w| {
            let (a, b) = (parse_cmd(&w[0].cmd), parse_cmd(&w[1].cmd));
            b.ins == 0xC0 && (a.ins == 0x50 || (a.ins == 0xA4 && a.p1 == 0x04 && a.data == sd_aid))
        })
        .count();
    let mut m = scp;
    for _ in 0..extra {
        m.push("GET RESPONSE (R-MAC on T=0)", 5, 8 + 2, 0);
    }
    m.fixed(scp_log, "GET RESPONSE (handshake)", handshake_gr, |c| {
        c.ins == 0xC0
    });
    m
}

/// GET RESPONSEs in a minimum.
fn get_responses(m: &Minimum) -> usize {
    m.cmds
        .iter()
        .filter(|(w, _)| w.contains("GET RESPONSE"))
        .count()
}

/// Data bytes of the STORE DATA commands on a wire.
fn count_store_data_bytes(log: &[Wire]) -> usize {
    log.iter()
        .map(|w| parse_cmd(&w.cmd))
        .filter(|c| c.ins == 0xE2)
        .map(|c| c.data.len())
        .sum()
}

// ---------------------------------------------------------------------------
// Statistics

fn median(v: &mut [f64]) -> f64 {
    pct(v, 0.5)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i]
}

fn us(ns: f64) -> String {
    format!("{:.1}", ns / 1000.0)
}

// ---------------------------------------------------------------------------
// Records

fn write_records(path: &Path, count: usize, seed: u64, date: JalaliDate) -> Result<()> {
    let lines = cardsmith::perso::samples::sample_lines(count, seed, date);
    std::fs::write(path, lines.join("\n") + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

// ---------------------------------------------------------------------------
// Main

struct Opts {
    cards: usize,
    seed: u64,
    short: bool,
    rtt_loops: usize,
    records: Option<PathBuf>,
    detail: bool,
    /// Also the domestic card OS (issue 17), with its own minimums.
    domestic: bool,
}

fn parse_args() -> Result<Opts> {
    let mut o = Opts {
        cards: 50,
        seed: 1,
        short: false,
        rtt_loops: 5000,
        records: None,
        detail: true,
        domestic: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| anyhow!("{a} needs a value"));
        match a.as_str() {
            "--cards" | "-n" => o.cards = val()?.parse()?,
            "--seed" => o.seed = val()?.parse()?,
            "--short" => o.short = true,
            "--rtt-loops" => o.rtt_loops = val()?.parse()?,
            "--records" => o.records = Some(PathBuf::from(val()?)),
            "--no-detail" => o.detail = false,
            "--domestic" => o.domestic = true,
            "-h" | "--help" => {
                println!(
                    "perso_bench [--cards N=50] [--seed S=1] [--short] [--domestic] [--rtt-loops N=5000] [--records FILE] [--no-detail]\n\
                     --short: also run every card on a simulated card without extended length (short APDUs + chaining)\n\
                     --domestic: also run every card on the domestic card OS (T=0, its own profile and minimums)"
                );
                std::process::exit(0);
            }
            _ => bail!("unknown argument {a:?} (try --help)"),
        }
    }
    if o.cards == 0 {
        bail!("--cards must be at least 1");
    }
    Ok(o)
}

/// One card's measurements.
#[derive(Default, Clone)]
struct CardRun {
    prep_ns: u64,
    perso_total_ns: u64,
    perso_card_ns: u64,
    perso_apdus: usize,
    perso_apdus_engine: usize,
    perso_cmd_bytes: usize,
    perso_resp_bytes: usize,
    bytes_written: usize,
    verify_total_ns: u64,
    verify_card_ns: u64,
    verify_apdus: usize,
    verify_cmd_bytes: usize,
    verify_resp_bytes: usize,
    /// The minimums in this run's length form (None: not computed).
    perso_min: Option<Minimum>,
    verify_min: Option<Minimum>,
    /// The minimum APDU counts with short APDUs (for an extended run).
    perso_min_short: usize,
    verify_min_short: usize,
    /// Card time of the logged APDUs under the timing model, µs.
    perso_model_us: f64,
    verify_model_us: f64,
    perso_log: Vec<Wire>,
    verify_log: Vec<Wire>,
    ef_reads: Vec<(String, usize, usize)>,
}

fn new_channel(side: &IssuerSide, cfg: SimConfig, meter: &Arc<Mutex<Meter>>) -> Result<Channel> {
    let card = SimCard::blank_provisioned(
        cfg,
        cardsmith::sim::Provision {
            issuer_key: Some(side.key.expose()),
            scp03: side.scp03.as_ref().map(|k| &k.keys),
        },
    )
    .map_err(|e| anyhow!("simulated card: {e:?}"))?;
    let mut card = card;
    card.power_on();
    Ok(Channel::new(
        Box::new(Metered {
            inner: SimTransport::new(card),
            meter: meter.clone(),
        }),
        ExchangeOptions::default(),
    ))
}

fn run_card(
    side: &IssuerSide,
    rec: &record::Record,
    cfg: SimConfig,
    meter: &Arc<Mutex<Meter>>,
    clock_ns: f64,
) -> Result<CardRun> {
    let p = &side.profile;
    let iss = side.issuer();
    let mut r = CardRun::default();

    let t0 = cpu_ns();
    let inp: CardInput = input::card_input(rec, p, input::today(), &compact_template)
        .map_err(|e| anyhow!("record {}: {e}", rec.record_id()))?;
    r.prep_ns = cpu_ns() - t0;

    let ext = cfg.extended_length;
    let mut ch = new_channel(side, cfg, meter)?;

    // Personalize.
    meter.lock().unwrap().start_phase();
    let t0 = cpu_ns();
    let done = engine::personalize(&mut ch, &iss, &inp).map_err(|e| anyhow!("{e}"))?;
    let t1 = cpu_ns();
    r.perso_log = std::mem::take(&mut meter.lock().unwrap().log);
    r.perso_total_ns = t1 - t0;
    r.perso_card_ns = r.perso_log.iter().map(|w| w.card_ns).sum();
    r.perso_apdus = r.perso_log.len();
    r.perso_apdus_engine = done.apdus;
    r.bytes_written = done.bytes_written;
    r.perso_cmd_bytes = r.perso_log.iter().map(|w| w.cmd.len()).sum();
    r.perso_resp_bytes = r.perso_log.iter().map(|w| w.resp_len).sum();

    // Verify, on the same channel (as `cardsmith perso` does).
    meter.lock().unwrap().start_phase();
    let t0 = cpu_ns();
    let rep = engine::verify(&mut ch, &iss, &inp).map_err(|e| anyhow!("verify: {e}"))?;
    let t1 = cpu_ns();
    r.verify_log = std::mem::take(&mut meter.lock().unwrap().log);
    if !rep.passed {
        bail!("verify failed for {}: {:?}", inp.record_id, rep.failures());
    }
    r.verify_total_ns = t1 - t0;
    r.verify_card_ns = r.verify_log.iter().map(|w| w.card_ns).sum();
    r.verify_apdus = r.verify_log.len();
    r.verify_cmd_bytes = r.verify_log.iter().map(|w| w.cmd.len()).sum();
    r.verify_resp_bytes = r.verify_log.iter().map(|w| w.resp_len).sum();

    // Clock-read correction: about one read per APDU lands in each side.
    let c = clock_ns as u64;
    r.perso_card_ns = r.perso_card_ns.saturating_sub(c * r.perso_apdus as u64);
    r.verify_card_ns = r.verify_card_ns.saturating_sub(c * r.verify_apdus as u64);
    r.perso_total_ns = r
        .perso_total_ns
        .saturating_sub(2 * c * r.perso_apdus as u64);
    r.verify_total_ns = r
        .verify_total_ns
        .saturating_sub(2 * c * r.verify_apdus as u64);

    r.perso_model_us = model_us(&r.perso_log);
    r.verify_model_us = model_us(&r.verify_log);

    // Minimums: from the wire, which is only readable in clear (under
    // SCP03 the commands' data is ciphertext; main derives the SCP03
    // minimum from the clear run of the same record).
    if p.security_domain.is_some() {
        return Ok(r);
    }
    if !p.files.is_empty() {
        // A card whose file system comes from the factory: the domestic OS.
        let max = p.max_update_binary.unwrap_or(255).min(255);
        let fingers = inp.fingers.len();
        r.perso_min = Some(domestic_perso_minimum(&r.perso_log, p, fingers, max));
        let contents: Vec<(String, usize)> = writes_by_ef(&r.perso_log)
            .into_iter()
            .map(|(ef, n)| (format!("EF {ef}"), n))
            .collect();
        r.verify_min = Some(domestic_verify_minimum(
            &r.verify_log,
            p,
            &contents,
            fingers,
        ));
        return Ok(r);
    }
    let (max_nc, max_ne) = if ext { (65_535, 65_536) } else { (255, 256) };
    r.perso_min = Some(perso_minimum(&r.perso_log, p, max_nc));
    r.perso_min_short = perso_minimum(&r.perso_log, p, 255).count();
    let written = writes_by_ef(&r.perso_log);
    r.ef_reads = reads_of(&r.verify_log)
        .into_iter()
        .map(|(ef, read, _)| {
            let c = written.get(&ef).copied().unwrap_or(read);
            (ef, read, c)
        })
        .collect();
    let contents: Vec<(String, usize)> = r
        .ef_reads
        .iter()
        .map(|(n, _, c)| (format!("EF {n}"), *c))
        .collect();
    let fingers = inp.fingers.len();
    r.verify_min = Some(verify_minimum(&r.verify_log, p, &contents, fingers, max_ne));
    r.verify_min_short = verify_minimum(&r.verify_log, p, &contents, fingers, 256).count();
    Ok(r)
}

/// Bytes verify read per EF (READ BINARY / GET RESPONSE data after a SELECT EF).
fn reads_of(log: &[Wire]) -> Vec<(String, usize, usize)> {
    // Allocated bytes read per EF, from READ BINARY response lengths.
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut read = 0usize;
    for w in log {
        let c = parse_cmd(&w.cmd);
        match c.ins {
            0xA4 => {
                if !cur.is_empty() && read > 0 {
                    out.push((cur.clone(), read, 0));
                }
                read = 0;
                cur = if is_ef_select(&c) {
                    cardsmith::hex::compact(c.data)
                } else {
                    String::new()
                };
            }
            0xB0 | 0xB1 | 0xC0 if !cur.is_empty() => read += w.resp_len.saturating_sub(2),
            _ => {}
        }
    }
    if !cur.is_empty() && read > 0 {
        out.push((cur, read, 0));
    }
    out
}

fn main() -> Result<()> {
    let o = parse_args()?;
    if std::env::var_os("CARDSMITH_ISSUER_KEY").is_some() {
        bail!("unset CARDSMITH_ISSUER_KEY: the benchmark uses a fresh issuer key in its temp data dir");
    }
    let tmp = tempfile::tempdir()?;
    let data_dir = tmp.path().join("data");
    std::fs::create_dir_all(&data_dir)?;
    let side = IssuerSide::load(&CardArgs {
        data_dir: Some(data_dir.clone()),
        ..Default::default()
    })?;
    let p = &side.profile;

    // Records: deterministic for the seed (fixed request date).
    let rec_path = match &o.records {
        Some(p) => p.clone(),
        None => {
            let path = tmp.path().join("records.jsonl");
            let date = JalaliDate::new(1404, 1, 15).map_err(|e| anyhow!("{e}"))?;
            write_records(&path, o.cards, o.seed, date)?;
            path
        }
    };
    let batch = record::load_records(
        &rec_path,
        &IsoTemplates {
            max_minutiae: usize::from(p.max_minutiae),
        },
    )?;
    if !batch.bad.is_empty() {
        bail!("sample records refused: {:?}", batch.bad.first());
    }
    let records: Vec<record::Record> = batch
        .good
        .into_iter()
        .map(|(_, r)| r)
        .take(o.cards)
        .collect();
    let meter = Arc::new(Mutex::new(Meter::default()));
    let clock_ns = calibrate_clock();

    // Warm-up: one card, not counted (page faults, lazy statics, CA key load).
    run_card(&side, &records[0], SimConfig::default(), &meter, clock_ns)?;

    // ---- Baselines, same run, same wrapper ----
    // B1: one bare round trip: Channel::run + SELECT MF (no data) through the
    // metered session, card time excluded. This is the host's fixed cost per
    // APDU/transaction (encode, parse, trace entry, session setup).
    let mut ch = new_channel(&side, SimConfig::default(), &meter)?;
    let mut b1 = Vec::new();
    for _ in 0..5 {
        meter.lock().unwrap().start_phase();
        let t0 = cpu_ns();
        for _ in 0..o.rtt_loops {
            // A SELECT sent every time: pcard::select_mf would skip it once
            // the channel knows the MF is current.
            ch.run(|ex| {
                ex.expect_ok(&cardsmith::apdu::cmd::select_mf(
                    cardsmith::apdu::cmd::SelectReturn::Nothing,
                ))
            })
            .map_err(|e| anyhow!("{e}"))?;
        }
        let t1 = cpu_ns();
        let card: u64 = meter.lock().unwrap().log.iter().map(|w| w.card_ns).sum();
        let n = o.rtt_loops as f64;
        let host = (t1 - t0) as f64 - card as f64 - clock_ns * n; // net: see run_card
        b1.push(host / n);
        meter.lock().unwrap().log.clear();
    }
    let rtt_ns = median(&mut b1);
    // B2: the host's unit of crypto work in both phases: one ECDSA P-256
    // SHA-256 signature verification (ring) over a 1 KiB message; verify does
    // several (SOD, certificate chain, card challenges), perso does them for
    // the CA's certificate checks.
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .map_err(|_| anyhow!("ring keygen"))?;
    let kp = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8.as_ref(),
        &rng,
    )
    .map_err(|_| anyhow!("ring key"))?;
    let msg = vec![0x5Au8; 1024];
    let sig = kp.sign(&rng, &msg).map_err(|_| anyhow!("ring sign"))?;
    use ring::signature::KeyPair as _;
    let pk = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        kp.public_key().as_ref().to_vec(),
    );
    let mut b2 = Vec::new();
    for _ in 0..5 {
        let n = 400;
        let t0 = cpu_ns();
        for _ in 0..n {
            pk.verify(std::hint::black_box(&msg), sig.as_ref())
                .map_err(|_| anyhow!("verify"))?;
        }
        b2.push((cpu_ns() - t0) as f64 / n as f64);
    }
    let ecdsa_ns = median(&mut b2);

    // ---- The cards ----
    // The same cards in clear (a card without a security domain, issuer
    // EXTERNAL AUTHENTICATE): the cost of the secure channel, and the APDU
    // minimums, which need a readable wire.
    let mut clear = IssuerSide::load(&CardArgs {
        data_dir: Some(data_dir.clone()),
        ..Default::default()
    })?;
    clear.profile.security_domain = None;
    clear.scp03 = None;
    let mut variants: Vec<(&str, SimConfig, &IssuerSide)> = vec![
        (
            "SCP03, extended length (sim default)",
            SimConfig::default(),
            &side,
        ),
        ("in clear, extended length", SimConfig::default(), &clear),
    ];
    if o.short {
        variants.push((
            "in clear, short APDUs + chaining (extended_length=false)",
            SimConfig {
                extended_length: false,
                ..SimConfig::default()
            },
            &clear,
        ));
    }

    println!("cardsmith perso benchmark");
    println!(
        "  {} cards (sample records, seed {}), profile: {}; clock: {CLOCK_NAME}",
        records.len(),
        o.seed,
        p.name
    );
    println!(
        "  clock read cost {:.0} ns (calibrated; subtracted per APDU); host = CPU time of the call - time inside the card's transmit",
        clock_ns
    );
    println!("baselines (same run):");
    println!(
        "  RTT   = host CPU of one bare round trip (Channel::run + SELECT MF, card excluded): {} us",
        us(rtt_ns)
    );
    println!(
        "  ECDSA = one P-256 ECDSA-SHA256 verify of 1 KiB (ring):                         {} us",
        us(ecdsa_ns)
    );

    let mut results = Vec::new();
    for (vname, cfg, sd) in variants {
        let wall0 = Instant::now();
        let mut runs = Vec::new();
        for rec in &records {
            runs.push(run_card(sd, rec, cfg.clone(), &meter, clock_ns)?);
        }
        let wall = wall0.elapsed();
        results.push((vname, sd.profile.security_domain.is_some(), runs, wall));
    }
    // The SCP03 minimums, from the clear runs of the same records (the
    // second variant: in clear, extended length, like the first).
    if let [(_, true, scp, _), (_, false, clear, _), ..] = results.as_mut_slice() {
        for (s, c) in scp.iter_mut().zip(clear.iter()) {
            s.perso_min = c
                .perso_min
                .as_ref()
                .map(|m| scp03_minimum(m, &s.perso_log, p, true));
            s.verify_min = c
                .verify_min
                .as_ref()
                .map(|m| scp03_minimum(m, &s.verify_log, p, false));
        }
    }
    if o.domestic {
        results.extend(domestic_runs(&data_dir, &records, &meter, clock_ns)?);
    }
    for (vname, _, runs, wall) in &results {
        report(vname, runs, rtt_ns, ecdsa_ns, *wall, o.detail);
    }
    Ok(())
}

/// One variant's runs: its name, whether over SCP03, the cards, the wall time.
type Variant = (&'static str, bool, Vec<CardRun>, std::time::Duration);

/// The same records on the domestic card OS (issue 17): over its security
/// domain, and in clear on cards made without one (whose readable wire
/// gives the minimums; the SCP03 minimum adds the handshake and, for R-MAC
/// on T=0, a GET RESPONSE per command).
fn domestic_runs(
    data_dir: &Path,
    records: &[record::Record],
    meter: &Arc<Mutex<Meter>>,
    clock_ns: f64,
) -> Result<Vec<Variant>> {
    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join("apdu-scripts/domestic/profile.toml");
    let load = || {
        IssuerSide::load(&CardArgs {
            data_dir: Some(data_dir.to_path_buf()),
            profile: Some(profile.clone()),
            ..Default::default()
        })
    };
    let side = load()?;
    let mut clear = load()?;
    clear.profile.security_domain = None;
    clear.scp03 = None;
    let p = &side.profile;
    let mut out = Vec::new();
    for (name, sd) in [
        ("domestic OS, SCP03 (T=0, short APDUs)", &side),
        ("domestic OS, in clear (T=0, short APDUs)", &clear),
    ] {
        let wall0 = Instant::now();
        let mut runs = Vec::new();
        for rec in records {
            runs.push(run_card(sd, rec, SimConfig::domestic(), meter, clock_ns)?);
        }
        out.push((
            name,
            sd.profile.security_domain.is_some(),
            runs,
            wall0.elapsed(),
        ));
    }
    let sd_aid = p
        .security_domain
        .as_ref()
        .map(|sd| sd.aid.clone())
        .unwrap_or_default();
    if let [(_, true, scp, _), (_, false, clear, _)] = out.as_mut_slice() {
        for ((s, c), rec) in scp.iter_mut().zip(clear.iter()).zip(records) {
            // Perso: all but the two GET DATA before the channel go through
            // it; of those, the ones answering data in clear have their GET
            // RESPONSE already. Verify: only the fingers' VERIFYs go through it.
            s.perso_min = c.perso_min.as_ref().map(|m| {
                let gr = get_responses(m);
                let extra = m.count().saturating_sub(2 * gr);
                t0_secure_minimum(
                    scp03_minimum(m, &s.perso_log, p, true),
                    extra,
                    &s.perso_log,
                    &sd_aid,
                )
            });
            s.verify_min = c.verify_min.as_ref().map(|m| {
                let fingers = rec.fingerprints().len();
                t0_secure_minimum(
                    scp03_minimum(m, &s.verify_log, p, false),
                    fingers,
                    &s.verify_log,
                    &sd_aid,
                )
            });
        }
    }
    Ok(out)
}

fn col(runs: &[CardRun], f: impl Fn(&CardRun) -> f64) -> (f64, f64) {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
    (median(&mut v), pct(&mut v, 0.9))
}

fn report(
    name: &str,
    runs: &[CardRun],
    rtt: f64,
    ecdsa: f64,
    wall: std::time::Duration,
    detail: bool,
) {
    println!();
    println!(
        "== card: {name} — {} cards, {:.2} s wall for the loop",
        runs.len(),
        wall.as_secs_f64()
    );
    println!(
        "{:<34} {:>10} {:>10} {:>9} {:>9}",
        "time per card", "median us", "p90 us", "x RTT", "x ECDSA"
    );
    let row = |label: &str, (m, p9): (f64, f64)| {
        println!(
            "{:<34} {:>10} {:>10} {:>9.1} {:>9.2}",
            label,
            us(m),
            us(p9),
            m / rtt,
            m / ecdsa
        );
    };
    row(
        "perso host (card excluded)",
        col(runs, |r| (r.perso_total_ns - r.perso_card_ns) as f64),
    );
    row(
        "verify host (card excluded)",
        col(runs, |r| (r.verify_total_ns - r.verify_card_ns) as f64),
    );
    row(
        "perso+verify host",
        col(runs, |r| {
            (r.perso_total_ns - r.perso_card_ns + r.verify_total_ns - r.verify_card_ns) as f64
        }),
    );
    row(
        "record -> CardInput (host, before)",
        col(runs, |r| r.prep_ns as f64),
    );
    row("perso card time", col(runs, |r| r.perso_card_ns as f64));
    row("verify card time", col(runs, |r| r.verify_card_ns as f64));
    row(
        "APDU machinery share (APDUs x RTT)",
        col(runs, |r| (r.perso_apdus + r.verify_apdus) as f64 * rtt),
    );

    println!();
    println!(
        "{:<34} {:>8} {:>8} {:>9} {:>9} {:>8}",
        "APDUs per card (median)", "actual", "minimum", "act/min", "min short", "engine"
    );
    let apdu_row = |label: &str, a: f64, m: Option<f64>, ms: f64, eng: String| match m {
        Some(m) => println!(
            "{:<34} {:>8.0} {:>8.0} {:>9.3} {:>9} {:>8}",
            label,
            a,
            m,
            a / m,
            if ms > 0.0 {
                format!("{ms:.0}")
            } else {
                "-".into()
            },
            eng
        ),
        None => println!(
            "{:<34} {:>8.0} {:>8} {:>9} {:>9} {:>8}",
            label, a, "n/a", "-", "-", eng
        ),
    };
    let have = |f: &dyn Fn(&CardRun) -> Option<f64>| -> Option<f64> {
        runs.iter()
            .all(|r| f(r).is_some())
            .then(|| col(runs, |r| f(r).unwrap_or(f64::NAN)).0)
    };
    let (pa, _) = col(runs, |r| r.perso_apdus as f64);
    let pm = have(&|r| r.perso_min.as_ref().map(|m| m.count() as f64));
    let (pms, _) = col(runs, |r| r.perso_min_short as f64);
    let (pe, _) = col(runs, |r| r.perso_apdus_engine as f64);
    apdu_row("perso", pa, pm, pms, format!("{pe:.0}"));
    let (va, _) = col(runs, |r| r.verify_apdus as f64);
    let vm = have(&|r| r.verify_min.as_ref().map(|m| m.count() as f64));
    let (vms, _) = col(runs, |r| r.verify_min_short as f64);
    apdu_row("verify", va, vm, vms, "-".into());
    // Per card ratios, worst card: the goal holds for every card, not
    // only the median.
    let worst = |f: &dyn Fn(&CardRun) -> Option<f64>| -> Option<f64> {
        runs.iter()
            .map(f)
            .try_fold(0f64, |a, x| x.map(|x| a.max(x)))
    };
    if let (Some(wp), Some(wv)) = (
        worst(&|r| {
            r.perso_min
                .as_ref()
                .map(|m| r.perso_apdus as f64 / m.count() as f64)
        }),
        worst(&|r| {
            r.verify_min
                .as_ref()
                .map(|m| r.verify_apdus as f64 / m.count() as f64)
        }),
    ) {
        println!("  worst card: perso {wp:.3} x minimum, verify {wv:.3} x minimum");
    }

    println!();
    println!(
        "{:<34} {:>10} {:>10} {:>9} {:>9}",
        "card time, model typical (median)", "model ms", "floor ms", "x floor", "worst"
    );
    let time_row =
        |label: &str, t: &dyn Fn(&CardRun) -> f64, fl: &dyn Fn(&CardRun) -> Option<f64>| {
            let (tm, _) = col(runs, t);
            if runs.iter().any(|r| fl(r).is_none()) {
                println!(
                    "{:<34} {:>10.1} {:>10} {:>9} {:>9}",
                    label,
                    tm / 1000.0,
                    "n/a",
                    "-",
                    "-"
                );
                return;
            }
            let ratio = |r: &CardRun| t(r) / fl(r).unwrap_or(f64::NAN);
            let (f, _) = col(runs, |r| fl(r).unwrap_or(f64::NAN));
            let (med, _) = col(runs, ratio);
            let w = runs.iter().map(ratio).fold(0f64, f64::max);
            println!(
                "{:<34} {:>10.1} {:>10.1} {:>9.3} {:>9.3}",
                label,
                tm / 1000.0,
                f / 1000.0,
                med,
                w
            );
        };
    let pf = |r: &CardRun| r.perso_min.as_ref().map(Minimum::floor_us);
    let vf = |r: &CardRun| r.verify_min.as_ref().map(Minimum::floor_us);
    time_row("perso", &|r| r.perso_model_us, &pf);
    time_row("verify", &|r| r.verify_model_us, &vf);
    time_row(
        "perso + verify",
        &|r| r.perso_model_us + r.verify_model_us,
        &|r| Some(pf(r)? + vf(r)?),
    );
    let mismatch = runs
        .iter()
        .filter(|r| r.perso_apdus != r.perso_apdus_engine)
        .count();
    if mismatch > 0 {
        println!("  note: PersoResult.apdus differs from the wire count on {mismatch} cards");
    }

    println!();
    println!(
        "{:<34} {:>10} {:>10} {:>10}",
        "bytes per card (median)", "command", "response", "EF content"
    );
    let (a, _) = col(runs, |r| r.perso_cmd_bytes as f64);
    let (b, _) = col(runs, |r| r.perso_resp_bytes as f64);
    let (c, _) = col(runs, |r| r.bytes_written as f64);
    println!("{:<34} {:>10.0} {:>10.0} {:>10.0}", "perso", a, b, c);
    let (a, _) = col(runs, |r| r.verify_cmd_bytes as f64);
    let (b, _) = col(runs, |r| r.verify_resp_bytes as f64);
    println!("{:<34} {:>10.0} {:>10.0} {:>10}", "verify", a, b, "-");

    if !detail {
        return;
    }
    // The first card in detail: APDUs by class, and where host time goes.
    let r = &runs[runs.len() / 2];
    for (phase, log) in [("perso", &r.perso_log), ("verify", &r.verify_log)] {
        println!();
        println!("-- {phase}, one card (the median-index record): APDUs by command, host CPU before each");
        println!(
            "{:<44} {:>5} {:>11} {:>11}",
            "command (host time = gap before it)", "count", "host us", "card us"
        );
        let mut by: BTreeMap<String, (usize, u64, u64)> = BTreeMap::new();
        for w in log.iter() {
            let c = parse_cmd(&w.cmd);
            let e = by.entry(label(&c)).or_default();
            e.0 += 1;
            e.1 += w.gap_ns;
            e.2 += w.card_ns;
        }
        let mut rows: Vec<_> = by.into_iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1 .1));
        for (l, (n, h, c)) in rows {
            println!(
                "{:<44} {:>5} {:>11} {:>11}",
                l,
                n,
                us(h as f64),
                us(c as f64)
            );
        }
        // The largest single gaps, with the commands either side: the host
        // work between two APDUs (CA issuing, SOD signing, checks...).
        let mut gaps: Vec<(u64, String, String)> = log
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let before = if i == 0 {
                    "(phase start)".to_string()
                } else {
                    label(&parse_cmd(&log[i - 1].cmd))
                };
                (w.gap_ns, before, label(&parse_cmd(&w.cmd)))
            })
            .collect();
        gaps.sort_by_key(|g| std::cmp::Reverse(g.0));
        let total: u64 = log.iter().map(|w| w.gap_ns).sum();
        println!(
            "  largest host gaps (of {} us between APDUs):",
            us(total as f64)
        );
        for (g, a, b) in gaps.iter().take(6) {
            println!("    {:>8} us  after {a:<30} before {b}", us(*g as f64));
        }
        let mut classes: BTreeMap<&str, usize> = BTreeMap::new();
        for w in log.iter() {
            *classes.entry(class(&parse_cmd(&w.cmd))).or_default() += 1;
        }
        println!(
            "  by class: {}",
            classes
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // Redundant SELECTs: a SELECT of the DF that is already current.
        let mut cur_df: Option<Vec<u8>> = Some(vec![0x3F, 0x00]);
        let mut redundant = 0;
        for w in log.iter() {
            let c = parse_cmd(&w.cmd);
            if c.ins == 0xA4 && c.p1 != 0x02 {
                let target = if c.data.is_empty() {
                    vec![0x3F, 0x00]
                } else {
                    c.data.to_vec()
                };
                if cur_df.as_deref() == Some(target.as_slice()) && w.sw == 0x9000 {
                    redundant += 1;
                }
                if w.sw == 0x9000 {
                    cur_df = Some(target);
                }
            } else if c.ins == 0xE0 && w.sw == 0x9000 {
                // CREATE FILE selects what it created.
                cur_df = None;
            }
        }
        println!("  SELECTs of the DF/AID that was already current: {redundant}");
        if phase == "perso" {
            let ef = writes_by_ef(log);
            println!(
                "  EF contents written (bytes): {}",
                ef.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        } else {
            println!(
                "  EF bytes read (allocated EF size, padding included): {}",
                r.ef_reads
                    .iter()
                    .map(|(k, v, _)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}
