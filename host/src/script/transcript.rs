//! Transcripts: what went over the wire in a run (`--record`), replaying a
//! transcript against the in-process simulated card, and comparing two.
//!
//! A transcript holds the ATR, the protocol and every APDU with its
//! response and time. Sensitive commands are stored redacted (they are
//! never written to disk in the clear), so they cannot be replayed: replay
//! skips them and says so; a diff then shows their responses as differing.

use super::report::Report;
use crate::hex;
use crate::sim::SimCard;
use crate::transport::sim::SimTransport;
use crate::transport::{Channel, ExchangeError, ExchangeOptions, Transport};
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "cardsmith-transcript";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    pub format: String,
    pub version: u32,
    pub reader: Option<String>,
    pub protocol: Option<String>,
    pub atr: Option<String>,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub file: String,
    pub line: usize,
    /// "apdu" or "reset" (then `response` is the new ATR).
    pub kind: String,
    /// The command as sent (spaced hex), or with REDACTED in place of sensitive data.
    pub command: String,
    pub response: String,
    pub sw: String,
    pub micros: u64,
    /// The command holds sensitive data and is stored redacted.
    pub redacted: bool,
}

impl Transcript {
    pub fn from_report(r: &Report) -> Transcript {
        let mut entries = Vec::new();
        for s in r
            .suites
            .iter()
            .flat_map(|s| &s.cases)
            .flat_map(|c| &c.steps)
        {
            // A reset that failed (the card was gone) did not happen.
            if s.kind == "reset" && s.ok {
                entries.push(Entry {
                    file: s.file.clone(),
                    line: s.line,
                    kind: "reset".into(),
                    command: "RESET".into(),
                    response: s.data.clone().unwrap_or_default(),
                    sw: String::new(),
                    micros: s.micros,
                    redacted: false,
                });
            }
            for w in &s.wire {
                entries.push(Entry {
                    file: s.file.clone(),
                    line: s.line,
                    kind: "apdu".into(),
                    command: w.command.clone(),
                    response: w.data.clone(),
                    sw: w.sw.clone(),
                    micros: w.micros,
                    redacted: w.command.contains("REDACTED")
                        || w.command.contains("PERSONAL(")
                        || w.data.contains("**"),
                });
            }
        }
        Transcript {
            format: FORMAT.into(),
            version: 1,
            reader: r.reader.clone(),
            protocol: r.protocol.clone(),
            atr: r.atr.clone(),
            entries,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Transcript, String> {
        let t: Transcript = serde_json::from_str(text).map_err(|e| {
            format!(
                "line {}, column {}: {}",
                e.line(),
                e.column(),
                crate::errors::json_message(&e)
            )
        })?;
        if t.format != FORMAT {
            return Err(format!(
                "not a transcript: format is {:?}, expected {FORMAT:?}",
                t.format
            ));
        }
        if t.version != 1 {
            return Err(format!(
                "transcript version {} is not supported (1 is)",
                t.version
            ));
        }
        Ok(t)
    }
}

/// Send every command of `t` again, raw, to `card`; the new transcript.
/// Redacted commands are not sent; their entries keep the command and have
/// an empty response and sw "not replayed".
pub fn replay(t: &Transcript, card: SimCard) -> Result<Transcript, ExchangeError> {
    let transport = SimTransport::new(card);
    let atr = hex::spaced(&transport.atr());
    let protocol = transport.protocol().to_string();
    let reader = transport.reader();
    let mut ch = Channel::new(Box::new(transport), ExchangeOptions::raw());
    let mut out = Vec::new();
    for e in &t.entries {
        if e.kind == "reset" {
            let t0 = std::time::Instant::now();
            ch.reconnect(true)?;
            out.push(Entry {
                response: hex::spaced(&ch.atr()),
                micros: t0.elapsed().as_micros() as u64,
                ..e.clone()
            });
            continue;
        }
        let bytes = match (e.redacted, hex::parse(&e.command)) {
            (false, Ok(b)) => b,
            _ => {
                out.push(Entry {
                    response: String::new(),
                    sw: "not replayed".into(),
                    micros: 0,
                    ..e.clone()
                });
                continue;
            }
        };
        let (resp, micros) = ch.run(|x| -> Result<_, ExchangeError> {
            let t0 = std::time::Instant::now();
            let r = x.transmit_bytes(&bytes, false)?;
            Ok((r, t0.elapsed().as_micros() as u64))
        })?;
        out.push(Entry {
            response: hex::spaced(&resp.data),
            sw: hex::compact(&resp.sw.bytes()),
            micros,
            ..e.clone()
        });
    }
    Ok(Transcript {
        format: FORMAT.into(),
        version: 1,
        reader: Some(reader),
        protocol: Some(protocol),
        atr: Some(atr),
        entries: out,
    })
}

/// One difference between two transcripts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// 0-based entry number.
    pub index: usize,
    pub file: String,
    pub line: usize,
    /// "atr", "protocol", "command", "response", "sw", "missing-left", "missing-right".
    pub what: String,
    pub left: String,
    pub right: String,
}

/// Entry-by-entry comparison (times are ignored).
pub fn diff(a: &Transcript, b: &Transcript) -> Vec<Difference> {
    let mut out = Vec::new();
    let top = |what: &str, l: &Option<String>, r: &Option<String>| Difference {
        index: 0,
        file: String::new(),
        line: 0,
        what: what.into(),
        left: l.clone().unwrap_or_default(),
        right: r.clone().unwrap_or_default(),
    };
    if a.atr != b.atr {
        out.push(top("atr", &a.atr, &b.atr));
    }
    if a.protocol != b.protocol {
        out.push(top("protocol", &a.protocol, &b.protocol));
    }
    let n = a.entries.len().max(b.entries.len());
    for i in 0..n {
        match (a.entries.get(i), b.entries.get(i)) {
            (Some(x), Some(y)) => {
                for (what, l, r) in [
                    ("command", &x.command, &y.command),
                    ("response", &x.response, &y.response),
                    ("sw", &x.sw, &y.sw),
                ] {
                    if l != r {
                        out.push(Difference {
                            index: i,
                            file: x.file.clone(),
                            line: x.line,
                            what: what.into(),
                            left: l.clone(),
                            right: r.clone(),
                        });
                    }
                }
            }
            (Some(x), None) | (None, Some(x)) => {
                let left_has = a.entries.get(i).is_some();
                out.push(Difference {
                    index: i,
                    file: x.file.clone(),
                    line: x.line,
                    what: if left_has {
                        "missing-right"
                    } else {
                        "missing-left"
                    }
                    .into(),
                    left: if left_has {
                        x.command.clone()
                    } else {
                        String::new()
                    },
                    right: if left_has {
                        String::new()
                    } else {
                        x.command.clone()
                    },
                });
            }
            (None, None) => {}
        }
    }
    out
}
