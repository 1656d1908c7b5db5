//! The layers between crates, checked with `cargo tree`: each crate below
//! the host depends on the cardsmith crates of its layer and below, never
//! on the host (`cardsmith`), the PKCS#11 module or each other sideways.
//! Above all, the simulated card depends on the wire types and the pure
//! algorithms only: a card that shares nothing with the host but the wire.
//!
//! Run alone: `cargo test --test crate_graph`.

use std::collections::BTreeSet;
use std::process::Command;

/// Each crate and the cardsmith crates it may depend on (normal and build
/// dependencies, transitively; itself included).
const ALLOWED: &[(&str, &[&str])] = &[
    ("cardsmith-wire", &["cardsmith-wire"]),
    ("cardsmith-biometric", &["cardsmith-biometric"]),
    ("cardsmith-scp03", &["cardsmith-scp03", "cardsmith-wire"]),
    (
        "cardsmith-sim",
        &[
            "cardsmith-sim",
            "cardsmith-wire",
            "cardsmith-scp03",
            "cardsmith-biometric",
        ],
    ),
];

/// The cardsmith crates named in `cargo tree --prefix none -f {p}` output
/// (`name vX.Y.Z (path)` per line).
fn cardsmith_crates(tree: &str) -> BTreeSet<String> {
    tree.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name == "cardsmith" || name.starts_with("cardsmith-"))
        .map(str::to_string)
        .collect()
}

fn tree_of(package: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--locked", "--offline", "-p", package])
        .args(["-e", "normal,build", "--prefix", "none", "-f", "{p}"])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("cargo tree prints UTF-8")
}

#[test]
fn each_layer_depends_only_on_the_layers_below() {
    for (package, allowed) in ALLOWED {
        let found = cardsmith_crates(&tree_of(package));
        assert!(
            found.contains(*package),
            "cargo tree -p {package} does not list the crate itself: is it in the workspace?"
        );
        let bad: Vec<&String> = found
            .iter()
            .filter(|c| !allowed.contains(&c.as_str()))
            .collect();
        assert!(
            bad.is_empty(),
            "{package} depends on {bad:?}; it may depend on {allowed:?} only"
        );
    }
}

#[test]
fn the_host_sits_on_the_card_layers() {
    // The other direction: the host does use the layers below it, so the
    // check above is looking at the crates that are really there.
    let found = cardsmith_crates(&tree_of("cardsmith"));
    for c in [
        "cardsmith-wire",
        "cardsmith-scp03",
        "cardsmith-biometric",
        "cardsmith-sim",
    ] {
        assert!(
            found.contains(c),
            "the host does not depend on {c}: {found:?}"
        );
    }
}

/// The reading of `cargo tree` output catches a host crate among the
/// dependencies, as the check needs it to.
#[test]
fn the_checker_sees_a_host_crate_in_the_tree() {
    let tree = "cardsmith-sim v0.1.0 (/w/sim)\nring v0.17.14\ncardsmith v0.1.0 (/w)\ncardsmith-wire v0.1.0 (/w/wire)\n";
    let found = cardsmith_crates(tree);
    assert!(found.contains("cardsmith"));
    assert!(found.contains("cardsmith-wire"));
    assert!(!found.contains("ring"));
}
