//! The layers between crates, checked with `cargo tree`: each crate depends
//! on the cardsmith crates of its layer and below, never on a crate above
//! it or sideways. Above all, the simulated card depends on the wire types
//! and the pure algorithms only: a card that shares nothing with the host
//! (`cardsmith-host`) but the wire; and the PKI depends on the wire only,
//! never on the register or anything else of the host's. The host library
//! and the PKCS#11 module
//! depend on no command line; the command line (`cardsmith`) is the only
//! crate that depends on clap or anyhow.
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
    ("cardsmith-pki", &["cardsmith-pki", "cardsmith-wire"]),
    (
        "cardsmith-sim",
        &[
            "cardsmith-sim",
            "cardsmith-wire",
            "cardsmith-scp03",
            "cardsmith-biometric",
        ],
    ),
    (
        "cardsmith-host",
        &[
            "cardsmith-host",
            "cardsmith-pki",
            "cardsmith-sim",
            "cardsmith-wire",
            "cardsmith-scp03",
            "cardsmith-biometric",
        ],
    ),
    (
        "cardsmith-pkcs11",
        &[
            "cardsmith-pkcs11",
            "cardsmith-host",
            "cardsmith-pki",
            "cardsmith-sim",
            "cardsmith-wire",
            "cardsmith-scp03",
            "cardsmith-biometric",
        ],
    ),
];

/// The crates that must not know the command line's libraries: every
/// workspace crate but the command line itself.
const NO_CLI_LIBRARIES: &[&str] = &[
    "cardsmith-wire",
    "cardsmith-scp03",
    "cardsmith-biometric",
    "cardsmith-sim",
    "cardsmith-pki",
    "cardsmith-host",
    "cardsmith-pkcs11",
];

/// The command line's libraries, as `cargo tree` names them.
fn cli_libraries(tree: &str) -> BTreeSet<String> {
    tree.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| name.starts_with("clap") || *name == "anyhow")
        .map(str::to_string)
        .collect()
}

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
fn only_the_command_line_depends_on_clap_or_anyhow() {
    for package in NO_CLI_LIBRARIES {
        let found = cli_libraries(&tree_of(package));
        assert!(
            found.is_empty(),
            "{package} depends on {found:?}; only the command line (cardsmith) may"
        );
    }
    // The command line does, so the check is reading real trees.
    let cli = cli_libraries(&tree_of("cardsmith"));
    assert!(
        cli.contains("clap") && cli.contains("anyhow"),
        "the command line's tree shows no clap or anyhow: {cli:?}"
    );
}

#[test]
fn the_host_sits_on_the_card_layers() {
    // The other direction: the host does use the layers below it, and the
    // command line the host, so the checks above are looking at the crates
    // that are really there.
    let cli = cardsmith_crates(&tree_of("cardsmith"));
    assert!(
        cli.contains("cardsmith-host"),
        "the command line does not depend on the host: {cli:?}"
    );
    let found = cardsmith_crates(&tree_of("cardsmith-host"));
    for c in [
        "cardsmith-wire",
        "cardsmith-scp03",
        "cardsmith-biometric",
        "cardsmith-sim",
        "cardsmith-pki",
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
    let tree = "cardsmith-host v0.1.0 (/w/host)\nclap v4.5.0\nclap_builder v4.5.0\nanyhow v1.0.0\nclassy v1.0.0\n";
    let found = cli_libraries(tree);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["anyhow", "clap", "clap_builder"]
    );
}

/// The crate roots whose non-test code reads cards, files or the network,
/// and so must deny the lints that keep a panic out of reach of input.
const INPUT_READERS: &[&str] = &[
    "src/lib.rs",
    "host/src/lib.rs",
    "wire/src/lib.rs",
    "scp03/src/lib.rs",
    "biometric/src/lib.rs",
    "pki/src/lib.rs",
    "sim/src/lib.rs",
    "pkcs11/src/lib.rs",
    "ifd/src/lib.rs",
];

/// The lints a crate root denies outside tests (`#![deny(…)]` or
/// `#![cfg_attr(not(test), deny(…))]`, over one or several attributes).
fn denied_lints(root: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = root;
    while let Some(at) = rest.find("deny(") {
        let tail = &rest[at + "deny(".len()..];
        let end = tail.find(')').unwrap_or(tail.len());
        for lint in tail[..end].split(',') {
            out.insert(lint.trim().to_string());
        }
        rest = &tail[end..];
    }
    out
}

/// No panic reachable from input, enforced where clippy runs: every crate
/// that reads cards, files or the network denies indexing, unwrap and
/// expect outside its tests.
#[test]
fn every_crate_that_reads_input_denies_panicking_shortcuts() {
    let want = [
        "clippy::indexing_slicing",
        "clippy::unwrap_used",
        "clippy::expect_used",
    ];
    for path in INPUT_READERS {
        let root =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
                .unwrap_or_else(|e| panic!("{path}: {e}"));
        let denied = denied_lints(&root);
        for lint in want {
            assert!(
                denied.contains(lint),
                "{path} does not deny {lint}: {denied:?}"
            );
        }
    }
    // The reading finds what an attribute says, and only that.
    let d = denied_lints("#![cfg_attr(\n    not(test),\n    deny(clippy::indexing_slicing, clippy::unwrap_used)\n)]\n#![deny(clippy::expect_used)]\n#![allow(clippy::panic)]\n");
    assert_eq!(
        d,
        [
            "clippy::expect_used",
            "clippy::indexing_slicing",
            "clippy::unwrap_used"
        ]
        .map(String::from)
        .into_iter()
        .collect()
    );
}
