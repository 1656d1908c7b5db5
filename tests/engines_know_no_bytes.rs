//! The engines know what a card command is for, never its bytes (issue
//! 17): personalization, verification, reading, activation, the line and
//! the PKCS#11 module send every card command through the profile's named
//! steps (`perso::card::send`, docs/card-profile.md "Card commands").
//!
//! This test reads their non-test source and fails on anything that makes
//! a command by hand: `Command::new`, a `Command { … }` literal, the wire
//! crate's ISO command builders (`cmd::…`), raw APDU bytes handed to the
//! transport (`transmit_bytes`), or a `with_data`/`with_ne` that shapes one.
//! READ BINARY, UPDATE BINARY and GET RESPONSE stay in the transport
//! (ISO/IEC 7816-4 with offsets and block sizes), STORE DATA and the SCP03
//! handshake with the security domain (GlobalPlatform); those are not
//! engines.
//!
//! Run alone: `cargo test --test engines_know_no_bytes`.

use std::path::{Path, PathBuf};

/// The engines' source directories, from the workspace root.
const ENGINES: &[&str] = &[
    "host/src/perso",
    "host/src/activate",
    "host/src/line",
    "pkcs11/src",
];

/// The one module that turns steps into commands.
const ALLOWED: &[&str] = &["host/src/perso/commands.rs"];

/// What making a command by hand looks like.
const FORBIDDEN: &[&str] = &[
    "Command::new(",
    "Command {",
    "cmd::",
    "transmit_bytes",
    ".with_data(",
    ".with_ne(",
    ".with_secret(",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file up to its test module, without comments.
fn non_test_code(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        let code = match line.find("//") {
            // A `//` inside a string ("http://…") is not a comment; good
            // enough: only cut when no quote precedes it.
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        out.push((i + 1, code.to_string()));
    }
    out
}

/// `code` holds `pat` not as the tail of a longer name (`ProfileCommand {`
/// is not `Command {`).
fn contains_word(code: &str, pat: &str) -> bool {
    code.match_indices(pat).any(|(at, _)| {
        !pat.starts_with(|c: char| c.is_alphanumeric())
            || !code[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Every place in `files` that makes a command by hand, as "file:line: text".
fn violations(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut found = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(root)
            .unwrap_or(f)
            .to_string_lossy()
            .to_string();
        if ALLOWED.contains(&rel.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{rel}: {e}"));
        for (n, code) in non_test_code(&text) {
            if let Some(bad) = FORBIDDEN.iter().find(|b| contains_word(&code, b)) {
                found.push(format!("{rel}:{n}: {bad} in `{}`", code.trim()));
            }
        }
    }
    found
}

#[test]
fn engines_send_only_the_profiles_steps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for d in ENGINES {
        rust_files(&root.join(d), &mut files);
    }
    assert!(files.len() > 20, "found only {} engine files", files.len());
    let found = violations(root, &files);
    assert!(
        found.is_empty(),
        "the engines make card commands by hand; write them as steps of the profile instead:\n{}",
        found.join("\n")
    );
}

/// The check can fail: a made-up engine file that builds a VERIFY by hand
/// is caught, and its test module is not.
#[test]
fn a_hand_made_command_is_caught() {
    let dir = std::env::temp_dir().join(format!("cardsmith-nobytes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("engine.rs");
    std::fs::write(
        &f,
        "fn pin(ex: &mut Exchange) {\n    // Command::new in a comment is fine\n    \
         let c = Command::new(0x00, 0x20, 0x00, 0x81);\n}\n\
         #[cfg(test)]\nmod tests {\n    fn t() { cmd::verify(1, s); }\n}\n",
    )
    .unwrap();
    let found = violations(&dir, &[f]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("engine.rs:3: Command::new("),
        "{found:?}"
    );
}
