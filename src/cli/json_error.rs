//! The error document every command writes on stdout under `--json` when
//! it fails (the schema is in the README, "Errors under --json").
//!
//! ```json
//! {"error": {"kind": "record_refused", "exit_code": 2,
//!            "message": "the record was refused before any card was touched: …",
//!            "file": "bad.json", "line": 1, "field": "national_id",
//!            "problems": [{"file": "bad.json", "line": 1, "record_id": "R-000001",
//!                          "field": "national_id", "message": "all ten digits are the same; …"}],
//!            "causes": ["…", "…"]}}
//! ```
//!
//! `kind` is one of a fixed list (see [`kind`]); `message` is the same text
//! the command prints on stderr without `--json`; `file`, `line`, `column`,
//! `field`, `reader` and `sw` are there when the error names them. Like
//! every error, the document never holds a PIN, a key or a template: it is
//! built from the same redacted errors.

use serde_json::{json, Map, Value};

use crate::apdu::ApduError;
use crate::cli::common::{exit_code, CardStatusError};
pub use crate::cli::common::{key_refused, KeyRefused, RecordsRefused, UsageError};
pub use crate::errors::{file, FileContext};
use crate::hex::HexError;
use crate::transport::{ExchangeError, TransportError};

/// The `kind` of an error: what went wrong, finer than the exit code.
///
/// | kind | exit code |
/// |---|---|
/// | `usage` (arguments), `bad_hex`, `bad_apdu`, `record_refused` (citizen records), `key_file` (an issuer or SCP03 key that cannot be had), `bad_input` (profiles, dates, options and other input refused before any card is touched), `script` (a script that does not parse) | 2 |
/// | `no_service`, `no_reader`, `no_card` | 3 |
/// | `card_status` (the card answered an error status word), `secure_channel_refused` | 4 |
/// | `transport` (card reset, mute, PC/SC error, malformed response, secure messaging failure) | 5 |
/// | `io` (a file could not be read or written), `journal`, `card_image`, `pki`, `other` | 1 |
pub fn kind(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        if let Some(t) = cause.downcast_ref::<TransportError>() {
            return transport_kind(t);
        }
        if let Some(x) = cause.downcast_ref::<ExchangeError>() {
            return match x {
                ExchangeError::Transport(t) => transport_kind(t),
                ExchangeError::ChainBroken { .. } | ExchangeError::Status { .. } => "card_status",
                ExchangeError::Encode(_) | ExchangeError::TooLong { .. } => "bad_apdu",
                _ => "transport",
            };
        }
        if cause.downcast_ref::<CardStatusError>().is_some() {
            return "card_status";
        }
        if cause
            .downcast_ref::<crate::cli::common::ChannelRefused>()
            .is_some()
        {
            return "secure_channel_refused";
        }
        if cause.downcast_ref::<UsageError>().is_some() {
            return "usage";
        }
        if cause.downcast_ref::<RecordsRefused>().is_some() {
            return "record_refused";
        }
        if cause.downcast_ref::<KeyRefused>().is_some() {
            return "key_file";
        }
        if cause
            .downcast_ref::<crate::cli::common::RecordRefused>()
            .is_some()
        {
            return "bad_input";
        }
        if let Some(u) = cause.downcast_ref::<crate::script::runner::UsageError>() {
            return match u {
                crate::script::runner::UsageError::Parse(_) => "script",
                crate::script::runner::UsageError::Var(_) => "bad_input",
            };
        }
        if cause.downcast_ref::<HexError>().is_some() {
            return "bad_hex";
        }
        if cause.downcast_ref::<ApduError>().is_some() {
            return "bad_apdu";
        }
        if cause.downcast_ref::<crate::script::ParseError>().is_some() {
            return "script";
        }
    }
    // Exit code 1: the most specific cause first.
    for cause in e.chain() {
        if cause
            .downcast_ref::<crate::register::journal::JournalError>()
            .is_some()
        {
            return "journal";
        }
        if cause.downcast_ref::<crate::sim::ImageError>().is_some() {
            return "card_image";
        }
        if cause.downcast_ref::<crate::keyfile::KeyError>().is_some() {
            return "key_file";
        }
        if cause.downcast_ref::<crate::pki::PkiError>().is_some() {
            return "pki";
        }
    }
    if e.chain()
        .any(|c| c.downcast_ref::<std::io::Error>().is_some())
    {
        return "io";
    }
    "other"
}

fn transport_kind(t: &TransportError) -> &'static str {
    match t {
        TransportError::NoService(_) => "no_service",
        TransportError::NoReaders
        | TransportError::ReaderNotFound { .. }
        | TransportError::AmbiguousReader { .. } => "no_reader",
        TransportError::NoCard { .. }
        | TransportError::CardRemoved { .. }
        | TransportError::WaitTimeout(_) => "no_card",
        _ => "transport",
    }
}

/// Split "file:line" (a record's location) into its parts.
fn file_line(location: &str) -> (String, Option<u64>) {
    match location.rsplit_once(':') {
        Some((f, l)) if !f.is_empty() => match l.parse::<u64>() {
            Ok(n) => (f.to_string(), Some(n)),
            Err(_) => (location.to_string(), None),
        },
        _ => (location.to_string(), None),
    }
}

fn record_problem(r: &crate::record::RecordError) -> Value {
    let (file, line) = file_line(&r.location);
    let mut m = Map::new();
    m.insert("file".into(), json!(file));
    if let Some(l) = line {
        m.insert("line".into(), json!(l));
    }
    if let Some(id) = &r.record_id {
        m.insert("record_id".into(), json!(id));
    }
    if !r.field.is_empty() {
        m.insert("field".into(), json!(r.field));
    }
    m.insert("message".into(), json!(r.rule));
    Value::Object(m)
}

/// Put `key` in `m` unless something more specific (nearer the top of the
/// chain) already did.
fn put(m: &mut Map<String, Value>, key: &str, v: Value) {
    m.entry(key.to_string()).or_insert(v);
}

/// What the error names: file, line, column, field, reader, status word.
fn locate(e: &anyhow::Error, m: &mut Map<String, Value>) {
    // A context is found through anyhow's own downcast, not in the chain.
    if let Some(f) = e.downcast_ref::<FileContext>() {
        put(m, "file", json!(f.path));
    }
    for cause in e.chain() {
        if let Some(r) = cause.downcast_ref::<RecordsRefused>() {
            let problems: Vec<Value> = r.errors.iter().map(record_problem).collect();
            if let Some(Value::Object(first)) = problems.first() {
                for k in ["file", "line", "field"] {
                    if let Some(v) = first.get(k) {
                        put(m, k, v.clone());
                    }
                }
            }
            put(m, "problems", Value::Array(problems));
        }
        if let Some(r) = cause.downcast_ref::<crate::record::RecordError>() {
            if let Value::Object(p) = record_problem(r) {
                for k in ["file", "line", "field"] {
                    if let Some(v) = p.get(k) {
                        put(m, k, v.clone());
                    }
                }
            }
        }
        if let Some(u) = cause.downcast_ref::<UsageError>() {
            if let Some(a) = &u.argument {
                put(m, "field", json!(a));
            }
        }
        let script = match cause.downcast_ref::<crate::script::runner::UsageError>() {
            Some(crate::script::runner::UsageError::Parse(p)) => Some(p),
            _ => cause.downcast_ref::<crate::script::ParseError>(),
        };
        if let Some(p) = script {
            put(m, "file", json!(p.file));
            put(m, "line", json!(p.line));
            put(m, "column", json!(p.col));
        }
        if let Some(h) = cause.downcast_ref::<HexError>() {
            match h {
                HexError::BadChar { column, .. } | HexError::OddDigit { column } => {
                    put(m, "column", json!(column))
                }
                HexError::Empty => {}
            }
        }
        if let Some(i) = cause.downcast_ref::<crate::sim::ImageError>() {
            put(m, "file", json!(i.path()));
        }
        if let Some(crate::register::journal::JournalError::Storage { path, .. }) =
            cause.downcast_ref::<crate::register::journal::JournalError>()
        {
            put(m, "file", json!(path));
        }
        let key = cause
            .downcast_ref::<KeyRefused>()
            .map(|k| &k.0)
            .or_else(|| cause.downcast_ref::<crate::keyfile::KeyError>());
        if let Some(k) = key {
            if let Some(f) = k.file() {
                put(m, "file", json!(f));
            }
            if let Some(l) = k.line() {
                put(m, "line", json!(l));
            }
        }
        if let Some(
            crate::pki::PkiError::Io { path, .. }
            | crate::pki::PkiError::BadFile { path, .. }
            | crate::pki::PkiError::InsecureKeyFile { path, .. },
        ) = cause.downcast_ref::<crate::pki::PkiError>()
        {
            put(m, "file", json!(path));
        }
        let t = cause.downcast_ref::<TransportError>().or_else(|| {
            match cause.downcast_ref::<ExchangeError>() {
                Some(ExchangeError::Transport(t)) => Some(t),
                _ => None,
            }
        });
        if let Some(t) = t {
            match t {
                TransportError::ReaderNotFound { query, .. }
                | TransportError::AmbiguousReader { query, .. } => put(m, "reader", json!(query)),
                TransportError::NoCard { reader }
                | TransportError::CardRemoved { reader }
                | TransportError::CardReset { reader }
                | TransportError::SharingViolation { reader }
                | TransportError::Unresponsive { reader } => put(m, "reader", json!(reader)),
                _ => {}
            }
        }
        if let Some(ExchangeError::Status { sw, .. } | ExchangeError::ChainBroken { sw, .. }) =
            cause.downcast_ref::<ExchangeError>()
        {
            put(m, "sw", json!(crate::hex::compact(&sw.bytes())));
        }
        if let Some(c) = cause.downcast_ref::<CardStatusError>() {
            put(m, "sw", json!(crate::hex::compact(&c.sw.bytes())));
        }
    }
}

static ATTACHED: std::sync::Mutex<Vec<(String, Value)>> = std::sync::Mutex::new(Vec::new());

/// Put `value` beside the error in the document of this run's error, under
/// `key` (what a command had done before it failed, e.g. a script's report),
/// instead of printing a second document.
pub fn attach(key: &str, value: Value) {
    if let Ok(mut a) = ATTACHED.lock() {
        a.push((key.to_string(), value));
    }
}

/// The error document for `e` (see the module header).
pub fn document(e: &anyhow::Error) -> Value {
    let code = exit_code(e);
    let mut top = Map::new();
    if let Ok(a) = ATTACHED.lock() {
        for (k, v) in a.iter() {
            top.insert(k.clone(), v.clone());
        }
    }
    let mut m = Map::new();
    m.insert("kind".into(), json!(kind(e)));
    m.insert("exit_code".into(), json!(code));
    m.insert("message".into(), json!(format!("{e:#}")));
    locate(e, &mut m);
    let causes: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    if causes.len() > 1 {
        m.insert("causes".into(), json!(causes));
    }
    top.insert("error".into(), Value::Object(m));
    Value::Object(top)
}

/// Whether the raw command line asks for `--json` (before a `--`): for
/// errors found before the arguments could be parsed.
pub fn wants_json<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> bool {
    args.into_iter()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// The usage error for a clap error (the argument it names, if any).
pub fn usage(e: &clap::Error) -> anyhow::Error {
    use clap::error::{ContextKind, ContextValue};
    let argument = e.get(ContextKind::InvalidArg).and_then(|v| match v {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(s) => s.first().cloned(),
        _ => None,
    });
    // clap's rendered text, without its "error: " prefix and usage footer.
    let rendered = e.render().to_string();
    let message = rendered
        .lines()
        .next()
        .unwrap_or("bad usage")
        .trim_start_matches("error: ")
        .to_string();
    anyhow::Error::new(UsageError { message, argument })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_record_refusal_names_file_line_and_field() {
        let e = anyhow::Error::new(RecordsRefused {
            message: "refused".into(),
            errors: vec![crate::record::RecordError {
                location: "dir/bad.json:3".into(),
                record_id: Some("R-1".into()),
                field: "national_id".into(),
                rule: "all ten digits are the same".into(),
            }],
        });
        let d = document(&e);
        let err = &d["error"];
        assert_eq!(err["kind"], "record_refused");
        assert_eq!(err["exit_code"], 2);
        assert_eq!(err["file"], "dir/bad.json");
        assert_eq!(err["line"], 3);
        assert_eq!(err["field"], "national_id");
        assert_eq!(err["problems"][0]["record_id"], "R-1");
    }

    #[test]
    fn an_io_error_names_its_file() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = anyhow::Error::new(io).context(file("writing", Path::new("/x/out.jsonl")));
        let d = document(&e);
        assert_eq!(d["error"]["kind"], "io");
        assert_eq!(d["error"]["exit_code"], 1);
        assert_eq!(d["error"]["file"], "/x/out.jsonl");
        assert_eq!(d["error"]["message"], "writing /x/out.jsonl: denied");
    }

    #[test]
    fn json_is_wanted_only_before_a_double_dash() {
        let a = |v: &[&str]| wants_json(v.iter().map(std::ffi::OsString::from));
        assert!(a(&["cardsmith", "atr", "--json", "zz"]));
        assert!(!a(&["cardsmith", "run", "--", "--json"]));
        assert!(!a(&["--json"]), "the program name is not an argument");
    }
}
