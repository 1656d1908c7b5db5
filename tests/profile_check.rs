//! `cardsmith profile check`: a profile is validated with every problem
//! named by file, line and key, then dry-run on a simulated card in a
//! throwaway data directory that never touches the station's keys.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cardsmith"))
        .args(args)
        .envs(envs.iter().copied())
        .env("TMPDIR", std::env::temp_dir())
        .output()
        .expect("run cardsmith");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The reference profile's directory copied, with `edit` applied to its
/// profile.toml.
fn edited(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let src = root().join("apdu-scripts/reference-card");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let p = dir.join("profile.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, edit(text)).unwrap();
    p
}

/// The dry runs' data directories now in the temporary directory.
fn throwaway_dirs() -> Vec<PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("cardsmith-profile-check-")
        })
        .map(|e| e.path())
        .collect()
}

#[test]
fn the_reference_profile_is_valid_and_a_card_made_with_it_verifies() {
    let profile = root().join("apdu-scripts/reference-card/profile.toml");
    let before = throwaway_dirs();
    // Whatever key the environment names, the dry run makes its own.
    let (code, out, err) = check(
        &["--json", "profile", "check", profile.to_str().unwrap()],
        &[
            ("CARDSMITH_ISSUER_KEY", "not a key"),
            ("CARDSMITH_SCP03_KEYS", "nor this"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["dry_run"]["verify_passed"], true, "{v}");
    assert_eq!(v["dry_run"]["read_data_groups"], 4);
    assert!(v["dry_run"]["secure_channel"]
        .as_str()
        .unwrap()
        .starts_with("SCP03"));
    assert!(v["dry_run"]["perso_apdus"].as_u64().unwrap() > 0);
    // Its throwaway directory is gone.
    let after: Vec<_> = throwaway_dirs()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert!(after.is_empty(), "left behind: {after:?}");
}

#[test]
fn a_broken_profile_is_refused_with_its_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    // An unknown key: named with its line.
    let p = edited(dir.path(), |t| t.replace("[pki]\n", "[pki]\nbogus = 1\n"));
    let (code, out, err) = check(&["profile", "check", p.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("profile.toml") && err.contains("line") && err.contains("bogus"),
        "{err}"
    );
    // A value out of its range: named by its key.
    let p = edited(dir.path(), |t| {
        t.replace(
            "signature_encoding = \"raw\"",
            "signature_encoding = \"ber\"",
        )
    });
    let (code, _, err) = check(
        &["profile", "check", "--no-dry-run", p.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("pki.commands.signature_encoding") && err.contains("\"raw\" or \"der\""),
        "{err}"
    );
    // A script the profile names that is not there.
    let p = edited(dir.path(), |t| t);
    std::fs::remove_file(dir.path().join("filesystem.apdu")).unwrap();
    let (code, _, err) = check(&["profile", "check", p.to_str().unwrap()], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("filesystem.apdu"), "{err}");
}

#[test]
fn validation_alone_needs_no_card() {
    let profile = root().join("apdu-scripts/reference-card/profile.toml");
    let (code, out, err) = check(
        &[
            "profile",
            "check",
            "--no-dry-run",
            profile.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid (4 data groups, 2 keys"), "{out}");
    assert!(!out.contains("dry run"), "{out}");
}

/// The domestic profile (issue 17) is valid and dry-runs on a simulated
/// card of its own OS, picked by the ATR the profile names.
#[test]
fn the_domestic_profile_dry_runs_on_a_domestic_card() {
    let profile = root().join("apdu-scripts/domestic/profile.toml");
    let (code, out, err) = check(
        &["--json", "profile", "check", profile.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["dry_run"]["verify_passed"], true, "{out}");
}

/// A card command template with a variable its step does not have is
/// named by file, key and line, with the variables the step has.
#[test]
fn a_bad_command_template_is_named_by_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = edited(dir.path(), |t| {
        t.replace(
            "get_data = \"apdu(00 CA ${tag}, , 00)\"",
            "get_data = \"apdu(00 CA ${tg}, , 00)\"",
        )
    });
    let text = std::fs::read_to_string(&p).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("get_data ="))
        .unwrap()
        + 1;
    let (code, out, err) = check(&["profile", "check", p.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains(&format!("commands.get_data (line {line})"))
            && all.contains("${tg} is not a variable of this step; it has ${tag}")
            && all.contains("profile.toml"),
        "{all}"
    );
}
