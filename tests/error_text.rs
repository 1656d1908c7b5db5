//! Every error the `cardsmith` binary prints says its cause once: the OS
//! error of a missing directory, the position of a JSON syntax error.

use std::path::Path;
use std::process::{Command, Output};

fn cardsmith(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cardsmith"))
        .args(args)
        .env("CARDSMITH_DATA_DIR", data)
        .env_remove("CARDSMITH_ISSUER_KEY")
        .env_remove("CARDSMITH_SCP03_KEYS")
        .output()
        .expect("run cardsmith")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `needle` occurs exactly once in the error output, which is one `error:` line.
fn said_once(o: &Output, needle: &str) -> String {
    let e = stderr(o);
    assert!(!o.status.success(), "{e}");
    assert_eq!(
        e.matches(needle).count(),
        1,
        "{needle:?} not said once in:\n{e}"
    );
    assert_eq!(e.matches("error: ").count(), 1, "{e}");
    e
}

const EEXIST: &str = "File exists (os error 17)";

#[test]
fn sim_image_where_no_directory_can_be_made_says_the_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = cardsmith(&data, &["sample-records", "--count", "1", "--seed", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let record = dir.path().join("r.json");
    std::fs::write(&record, &o.stdout).unwrap();
    // A missing directory is created (private, 700) for a new card image;
    // one that cannot be created (a file is in the way) is an OS error.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let image = blocker.join("x.json");
    let (record, image) = (record.to_str().unwrap(), image.to_str().unwrap());
    for args in [
        vec!["perso", "--record", record, "--sim-image", image],
        vec!["verify", "--record", record, "--sim-image", image],
        vec!["read", "--sim-image", image],
    ] {
        let e = said_once(&cardsmith(&data, &args), EEXIST);
        // The path in the way is named, once.
        let blocker = blocker.to_str().unwrap();
        assert_eq!(e.matches(blocker).count(), 1, "{args:?}: {e}");
    }
}

#[test]
fn json_syntax_errors_give_their_position_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\n  x").unwrap();
    let bad = bad.to_str().unwrap();
    // A transcript, a --vars record, a simulated card image.
    let script = dir.path().join("s.apdu");
    std::fs::write(&script, "00 A4 00 0C 02 3F 00\n").unwrap();
    let script = script.to_str().unwrap();
    for args in [
        vec!["replay", bad],
        vec!["run", "--sim", "--vars", bad, script],
        vec!["read", "--sim-image", bad],
    ] {
        let o = cardsmith(&data, &args);
        let e = stderr(&o);
        assert!(!o.status.success(), "{args:?}: {e}");
        assert!(e.contains("line 2"), "{args:?}: {e}");
        assert_eq!(e.matches("line 2").count(), 1, "{args:?}: {e}");
        assert_eq!(e.matches("column 3").count(), 1, "{args:?}: {e}");
    }
}
