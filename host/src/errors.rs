//! Error text for people: every cause said once.
//!
//! cardsmith's error types name their cause in their own message (so that
//! `{e}` alone is complete, e.g. in JSON output and journals) and also
//! expose it as [`std::error::Error::source`]. Printing the chain the usual
//! way (`{e:#}`: each message, then each source's) would therefore say the
//! cause twice — `cannot write: No such file or directory (os error 2): No
//! such file or directory (os error 2)`. [`error_text`] prints the chain with
//! every cause once.
//!
//! [`FileContext`] names the file an I/O error happened on, for the error
//! document and for people.

use std::path::{Path, PathBuf};

/// The error and its causes, outermost first, joined with `": "`; a cause
/// whose text is already part of what was said is not repeated. (The
/// command line's errors carry context: it has its own `error_text` over
/// the same [`chain_text`].)
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    chain_text(std::iter::successors(Some(e), |e| e.source()))
}

/// [`error_text`] for any error and its `source()` chain.
pub fn chain_text<'a>(
    chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>,
) -> String {
    let mut out = String::new();
    for cause in chain {
        let t = cause.to_string();
        if t.is_empty() || out.contains(&t) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&t);
    }
    out
}

pub use cardsmith_wire::json_message;

/// A file the command was working on when an I/O error happened: a typed
/// context, so that the error document can name the file. Displays as
/// "`action` `path`", e.g. "writing out/batch.jsonl".
#[derive(Debug, thiserror::Error)]
#[error("{action} {}", path.display())]
pub struct FileContext {
    pub action: &'static str,
    pub path: PathBuf,
}

/// `FileContext` for `path` (for `with_context`).
pub fn file(action: &'static str, path: impl AsRef<Path>) -> FileContext {
    FileContext {
        action,
        path: path.as_ref().to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("card image {path}: cannot write: {source}")]
    struct Names {
        path: String,
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("opening the simulated card image")]
    struct Opening(#[source] Names);

    fn enoent() -> std::io::Error {
        std::io::Error::from_raw_os_error(2)
    }

    #[test]
    fn a_cause_the_message_already_names_is_said_once() {
        let e = Opening(Names {
            path: "/x/y.json".into(),
            source: enoent(),
        });
        let os = enoent().to_string();
        let t = error_text(&e);
        assert_eq!(t.matches(&os).count(), 1, "{t}");
        assert_eq!(
            t,
            format!("opening the simulated card image: card image /x/y.json: cannot write: {os}")
        );
    }

    #[test]
    fn json_position_is_not_repeated() {
        let e = serde_json::from_str::<serde_json::Value>("{\n  x").unwrap_err();
        assert_eq!((e.line(), e.column()), (2, 3));
        let m = json_message(&e);
        assert!(!m.contains("line"), "{m}");
        assert!(e.to_string().starts_with(&m));
    }
}
