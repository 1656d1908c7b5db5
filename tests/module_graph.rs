//! The layers the module headers promise, checked on the source: no import
//! cycle between modules, and no import that points up a layer.
//!
//! Every `crate::…` and `super::…` path in the non-test code of each
//! workspace crate's `src/` (use lines, use trees and paths written inline)
//! is an edge from the file's module to the module it names. Between crates
//! the compiler keeps the layers, and `tests/crate_graph.rs` checks with
//! `cargo tree` which crate may depend on which. Modules are the top-level ones,
//! with the host-side parts of SCP03 (`scp03::keyfile`, `scp03::link`) as
//! nodes of their own, since they sit in a different layer from their
//! parent. Test code (`#[cfg(test)]` modules and their files) is left out:
//! it moves with its code.
//!
//! The command line is a crate of its own (`cardsmith`, in `src/`), the
//! only one that knows clap and anyhow: the host crate (`host/src`) cannot
//! import it (cargo refuses the cycle), and no crate but it names clap or
//! anyhow in its code (checked here on the source, and on the dependencies
//! by `tests/crate_graph.rs`).
//!
//! Inside each top-level module of the host crate, the submodules
//! (`pki::ca`, `pki::crl` …, each with the files below it) must not import
//! each other in a cycle either. There the parent module's own file
//! (`pki/mod.rs`) is the node `pki`: the shared pieces its children use.
//! Its declarations and re-exports (`pub mod ca;`, `pub use ca::X;`) are
//! ownership, not imports, and are not read as edges; a path through a
//! re-export (`crate::pki::X`) is an import of the child that defines `X`.
//!
//! Run alone: `cargo test --test module_graph`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that are their own node rather than part of their parent.
const SUB_NODES: &[(&str, &str)] = &[
    ("scp03::keyfile", "scp03::keyfile"),
    ("scp03::link", "scp03::link"),
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

/// The module path of a file under `src/` (`perso::engine`, `cli`, `""`
/// for lib.rs).
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_string());
    }
    parts
}

fn node_of(path: &[String]) -> Option<String> {
    let first = path.first()?;
    if let Some(second) = path.get(1) {
        let two = format!("{first}::{second}");
        if let Some((_, node)) = SUB_NODES.iter().find(|(m, _)| *m == two) {
            return Some(node.to_string());
        }
    }
    Some(first.clone())
}

/// The source without comments and without `#[cfg(test)]` items; the names
/// of test-only child modules declared as `mod name;`.
fn strip(src: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut test_mods = Vec::new();
    let lines: Vec<&str> = src.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_test_cfg(line.trim()) {
            // The item that follows: `mod x;`, or a braced item to skip.
            let mut j = i + 1;
            while j < lines.len() && lines[j].trim_start().starts_with("#[") {
                j += 1;
            }
            let item = lines.get(j).map(|l| l.trim()).unwrap_or("");
            if let Some(name) = item
                .trim_start_matches("pub ")
                .strip_prefix("mod ")
                .and_then(|r| r.strip_suffix(';'))
            {
                test_mods.push(name.trim().to_string());
                i = j + 1;
                continue;
            }
            let mut depth = 0i32;
            let mut opened = false;
            while j < lines.len() {
                let code = lines[j].split("//").next().unwrap_or("");
                for c in code.chars() {
                    match c {
                        '{' => {
                            depth += 1;
                            opened = true;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                j += 1;
                if (opened && depth <= 0) || (!opened && code.trim_end().ends_with(';')) {
                    break;
                }
            }
            i = j;
            continue;
        }
        out.push_str(line.split("//").next().unwrap_or(""));
        out.push('\n');
        i += 1;
    }
    (out, test_mods)
}

/// `#[cfg(test)]`, `#[cfg(all(test, unix))]` and the like.
fn is_test_cfg(attr: &str) -> bool {
    attr.starts_with("#[cfg(")
        && !attr.contains("not(test")
        && attr
            .split(|c: char| !is_ident(c))
            .any(|word| word == "test")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths a use tree or inline path starting at `s` names, each as a
/// list of segments (as far as they go; `{…}` groups expanded).
fn paths_at(s: &str) -> Vec<Vec<String>> {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('{') {
        let mut depth = 1;
        let mut end = rest.len();
        for (k, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k;
                        break;
                    }
                }
                _ => {}
            }
        }
        let inner = &rest[..end];
        let mut items = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        for (k, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&inner[start..k]);
                    start = k + 1;
                }
                _ => {}
            }
        }
        items.push(&inner[start..]);
        return items
            .into_iter()
            .filter(|i| !i.trim().is_empty())
            .flat_map(paths_at)
            .collect();
    }
    let name: String = s.chars().take_while(|c| is_ident(*c)).collect();
    if name.is_empty() {
        return vec![vec![]];
    }
    let rest = &s[name.len()..];
    match rest.strip_prefix("::") {
        Some(more) => paths_at(more)
            .into_iter()
            .map(|mut p| {
                p.insert(0, name.clone());
                p
            })
            .collect(),
        None => vec![vec![name]],
    }
}

/// Every module path the code names through `crate::` or `super::`.
fn references(code: &str, module: &[String], is_mod_rs: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (k, _) in code.match_indices("crate::") {
        if code[..k].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        out.extend(paths_at(&code[k + "crate::".len()..]));
    }
    // `super` in `a/b.rs` is `a`; in `a/mod.rs` (module `a`) it is the root.
    let parent: Vec<String> = if is_mod_rs || module.len() <= 1 {
        module[..module.len().saturating_sub(1)].to_vec()
    } else {
        module[..module.len() - 1].to_vec()
    };
    for (k, _) in code.match_indices("super::") {
        if code[..k].chars().next_back().is_some_and(is_ident) || code[..k].ends_with("::") {
            continue;
        }
        for p in paths_at(&code[k + "super::".len()..]) {
            let mut full = parent.clone();
            full.extend(p);
            out.push(full);
        }
    }
    out
}

struct Graph {
    edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

/// The `src/` of every crate of the workspace (the host first, the
/// command line last).
const CRATES: &[&str] = &[
    "host/src",
    "wire/src",
    "scp03/src",
    "biometric/src",
    "pki/src",
    "sim/src",
    "pkcs11/src",
    "src",
];

/// The command line's `src/`: the one crate that may know clap and anyhow.
const CLI_CRATE: &str = "src";

fn crate_src(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
}

/// The non-test source files under a crate's `src/` (not `main.rs`, not
/// lib.rs): path relative to `src/`, module path, node, code without
/// comments and test items.
fn sources(root: &Path) -> Vec<(PathBuf, Vec<String>, String, String)> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mut test_files: BTreeSet<PathBuf> = BTreeSet::new();
    let mut stripped = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let (code, test_mods) = strip(&src);
        let dir = if f
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
        {
            f.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            f.with_extension("")
        };
        for m in test_mods {
            test_files.insert(dir.join(format!("{m}.rs")));
            test_files.insert(dir.join(&m));
        }
        stripped.push((f.clone(), code));
    }
    let mut out = Vec::new();
    for (f, code) in stripped {
        if test_files
            .iter()
            .any(|t| f == *t || (t.is_dir() && f.starts_with(t)))
        {
            continue;
        }
        let rel = f.strip_prefix(root).expect("under src").to_path_buf();
        if rel == Path::new("main.rs") {
            continue;
        }
        let module = module_path(&rel);
        let Some(node) = node_of(&module) else {
            continue; // lib.rs
        };
        out.push((rel, module, node, code));
    }
    out
}

/// The module graph of one crate.
fn build_crate(root: &Path) -> Graph {
    let mut edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (rel, module, from, code) in sources(root) {
        let is_mod_rs = rel.file_name().is_some_and(|n| n == "mod.rs");
        for r in references(&code, &module, is_mod_rs) {
            let Some(to) = node_of(&r) else { continue };
            if to != from && to != "self" && to != "super" {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    Graph { edges }
}

/// The host crate's module graph.
fn build() -> Graph {
    build_crate(&crate_src("host/src"))
}

/// The files (of `sources`, relative to `dir`) whose non-test code names
/// clap or anyhow.
fn naming_clap_or_anyhow(
    dir: &str,
    sources: &[(PathBuf, Vec<String>, String, String)],
) -> Vec<String> {
    sources
        .iter()
        .filter(|(_, _, _, code)| {
            code.split(|c: char| !is_ident(c))
                .any(|w| w == "clap" || w == "anyhow")
        })
        .map(|(rel, ..)| format!("  {dir}/{}", rel.display()))
        .collect()
}

#[test]
fn only_the_command_line_knows_clap_and_anyhow() {
    // Engines take plain configuration values and return typed errors; the
    // command line parses and validates arguments, builds those values and
    // maps the errors to exit codes.
    let mut bad = Vec::new();
    for dir in CRATES.iter().filter(|d| **d != CLI_CRATE) {
        bad.extend(naming_clap_or_anyhow(dir, &sources(&crate_src(dir))));
    }
    assert!(
        bad.is_empty(),
        "code below the command line that uses clap or anyhow:\n{}",
        bad.join("\n")
    );
    // The check sees the command line's own use of both.
    let cli = naming_clap_or_anyhow(CLI_CRATE, &sources(&crate_src(CLI_CRATE)));
    assert!(
        cli.iter().any(|f| f.ends_with("cli/mod.rs")),
        "the checker does not see clap in the command line: {cli:?}"
    );
}

/// A cycle as a list of nodes, if there is one.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        n: &str,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.edges.get(n).map(|e| e.keys()).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(g, m, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.edges.keys() {
        if !state.contains_key(n) {
            let mut stack = Vec::new();
            if let Some(c) = visit(g, n, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

fn describe(g: &Graph, cycle: &[String]) -> String {
    cycle
        .windows(2)
        .map(|w| {
            let files = &g.edges[&w[0]][&w[1]];
            format!(
                "  {} -> {} ({})",
                w[0],
                w[1],
                files.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_import_cycle_between_modules() {
    for dir in CRATES {
        let g = build_crate(&crate_src(dir));
        assert!(
            !g.edges.is_empty(),
            "{dir}: the checker found no import at all"
        );
        if let Some(c) = find_cycle(&g) {
            panic!("import cycle in {dir}:\n{}", describe(&g, &c));
        }
    }
}

/// Import cycles between the submodules of a top-level module that are
/// known and not yet broken: each entry is one cycle's set of submodules
/// (a strongly connected component of that module's graph). Empty: the
/// last two (perso's certs/engine/input and datagroups/profile) were broken
/// by moving CardInput to `input` and DatePair to `profile`. The test fails
/// on any cycle not listed, and on a listed one that is gone.
const KNOWN_SUBMODULE_CYCLES: &[&[&str]] = &[];

/// The node of `path` in the graph of its top-level module: `top::child`
/// when `child` is one of `children`, else the top-level module itself.
fn sub_node(path: &[String], children: &BTreeSet<String>) -> Option<String> {
    let top = path.first()?;
    match path.get(1) {
        Some(child) if children.contains(child) => Some(format!("{top}::{child}")),
        _ => Some(top.clone()),
    }
}

/// The names a parent module's own file re-exports from its children
/// (`pub use ca::{LocalCa, …};`), each with the child it comes from.
fn reexported(code: &str, kids: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, _) in code.match_indices("use ") {
        let before = code[..k].trim_end();
        if !(before.ends_with("pub") || before.ends_with("pub(crate)")) {
            continue;
        }
        for mut p in paths_at(&code[k + "use ".len()..]) {
            if p.first().is_some_and(|s| s == "self") {
                p.remove(0);
            }
            if let ([child, .., name], true) = (p.as_slice(), p.len() >= 2) {
                if kids.contains(child) {
                    out.insert(name.clone(), child.clone());
                }
            }
        }
    }
    out
}

/// One graph per top-level module with submodules, whose nodes are those
/// submodules (and the module's own file). `sources` as from [`sources`].
fn submodule_graphs(sources: &[(PathBuf, Vec<String>, String, String)]) -> BTreeMap<String, Graph> {
    let mut children: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, module, _, _) in sources {
        if let [top, child, ..] = module.as_slice() {
            children
                .entry(top.clone())
                .or_default()
                .insert(child.clone());
        }
    }
    let mut reexports: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (_, module, _, code) in sources {
        if let ([top], Some(kids)) = (module.as_slice(), children.get(&module[0])) {
            reexports.insert(top.clone(), reexported(code, kids));
        }
    }
    let mut graphs: BTreeMap<String, Graph> = BTreeMap::new();
    for (rel, module, _, code) in sources {
        let Some(top) = module.first() else { continue };
        let Some(kids) = children.get(top) else {
            continue;
        };
        let Some(from) = sub_node(module, kids) else {
            continue;
        };
        let is_mod_rs = rel.file_name().is_some_and(|n| n == "mod.rs");
        for r in references(code, module, is_mod_rs) {
            if r.first() != Some(top) {
                continue;
            }
            // `crate::pki::LocalCa` is `pki::ca`'s, through the re-export.
            let through = r
                .get(1)
                .and_then(|name| reexports.get(top)?.get(name))
                .map(|child| format!("{top}::{child}"));
            let Some(to) = through.or_else(|| sub_node(&r, kids)) else {
                continue;
            };
            if to != from {
                graphs
                    .entry(top.clone())
                    .or_insert_with(|| Graph {
                        edges: BTreeMap::new(),
                    })
                    .edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    graphs
}

/// The nodes reachable from `n` (itself included).
fn reachable(g: &Graph, n: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::from([n.to_string()]);
    let mut todo = vec![n.to_string()];
    while let Some(m) = todo.pop() {
        for next in g.edges.get(&m).map(|e| e.keys()).into_iter().flatten() {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

/// Every cycle of `g` as the set of nodes that reach each other (its
/// strongly connected components of more than one node).
fn cycles(g: &Graph) -> Vec<BTreeSet<String>> {
    let reach: BTreeMap<&String, BTreeSet<String>> =
        g.edges.keys().map(|n| (n, reachable(g, n))).collect();
    let mut out: Vec<BTreeSet<String>> = Vec::new();
    for (n, from_n) in &reach {
        let component: BTreeSet<String> = from_n
            .iter()
            .filter(|m| reach.get(m).is_some_and(|r| r.contains(*n)))
            .cloned()
            .collect();
        if component.len() > 1 && !out.contains(&component) {
            out.push(component);
        }
    }
    out
}

/// The imports inside one cycle, with the files that make them.
fn describe_component(g: &Graph, component: &BTreeSet<String>) -> String {
    let mut lines = Vec::new();
    for (from, tos) in &g.edges {
        if !component.contains(from) {
            continue;
        }
        for (to, files) in tos {
            if component.contains(to) {
                lines.push(format!(
                    "  {from} -> {to} ({})",
                    files.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    lines.join("\n")
}

/// The cycles between submodules that are not in `known`, described, and
/// the entries of `known` that no longer are cycles.
fn submodule_cycle_report(
    sources: &[(PathBuf, Vec<String>, String, String)],
    known: &[&[&str]],
) -> (Vec<String>, Vec<String>) {
    let known: Vec<BTreeSet<String>> = known
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
    let mut found = Vec::new();
    let mut new = Vec::new();
    for g in submodule_graphs(sources).values() {
        for c in cycles(g) {
            if !known.contains(&c) {
                new.push(format!(
                    "{:?}:\n{}",
                    c.iter().collect::<Vec<_>>(),
                    describe_component(g, &c)
                ));
            }
            found.push(c);
        }
    }
    let gone = known
        .iter()
        .filter(|k| !found.contains(k))
        .map(|k| format!("{:?}", k.iter().collect::<Vec<_>>()))
        .collect();
    (new, gone)
}

#[test]
fn no_import_cycle_between_submodules() {
    let sources = sources(&crate_src("host/src"));
    assert!(
        submodule_graphs(&sources).contains_key("perso"),
        "the checker found no import between perso's submodules at all"
    );
    let (new, gone) = submodule_cycle_report(&sources, KNOWN_SUBMODULE_CYCLES);
    assert!(
        new.is_empty(),
        "import cycles between submodules:\n{}",
        new.join("\n")
    );
    assert!(
        gone.is_empty(),
        "KNOWN_SUBMODULE_CYCLES lists cycles that are gone; delete them there: {}",
        gone.join(", ")
    );
}

/// The command line's modules (`cli` and one per area, sharing
/// `cli::common`) do not import each other in a cycle either.
#[test]
fn no_import_cycle_between_command_line_modules() {
    let sources = sources(&crate_src(CLI_CRATE));
    assert!(
        submodule_graphs(&sources).contains_key("cli"),
        "the checker found no import between the command line's modules at all"
    );
    let (new, _) = submodule_cycle_report(&sources, &[]);
    assert!(
        new.is_empty(),
        "import cycles between command-line modules:\n{}",
        new.join("\n")
    );
}

/// What the register (the journal store) may use: it sits below the line
/// and the counter, and knows no command line. The PKI is below it: the
/// register keeps the CA's revocations in the PKI's own types
/// (`pki::revocation`), and the PKI knows no register.
const REGISTER_MAY_USE: &[&str] = &["hex", "private", "crypto", "secret", "errors", "utc", "pki"];

#[test]
fn the_register_uses_no_engine_and_no_command_line() {
    let g = build();
    let bad: Vec<String> = g
        .edges
        .get("register")
        .map(|tos| {
            tos.iter()
                .filter(|(to, _)| !REGISTER_MAY_USE.contains(&to.as_str()))
                .map(|(to, files)| {
                    format!(
                        "  register -> {to} ({})",
                        files.iter().cloned().collect::<Vec<_>>().join(", ")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        g.edges.contains_key("register"),
        "the checker found no import of the register at all; is host/src/register scanned?"
    );
    assert!(
        bad.is_empty(),
        "the register imports modules above it:\n{}",
        bad.join("\n")
    );
}

/// The checker itself finds what it should.
#[test]
fn the_checker_sees_use_trees_inline_paths_and_super() {
    let code = "use crate::{apdu::cmd, perso::{side::X, card}, scp03::{keyfile::K}};\nfn f() { crate::scp03::link::open(); }\nuse super::slot::Y;\n";
    let refs = references(code, &["line".into(), "station".into()], false);
    let nodes: BTreeSet<String> = refs.iter().filter_map(|p| node_of(p)).collect();
    let want: BTreeSet<String> = ["apdu", "perso", "scp03::keyfile", "scp03::link", "line"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(nodes, want);
    let (code, mods) = strip("use crate::a;\n// crate::b\n#[cfg(test)]\nmod tests {\n    use crate::c;\n}\n#[cfg(test)]\nmod more;\n");
    assert!(code.contains("crate::a") && !code.contains("crate::b") && !code.contains("crate::c"));
    assert_eq!(mods, vec!["more".to_string()]);
}

/// The cycle search finds a cycle through several modules, and none in a
/// graph without one.
#[test]
fn the_checker_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g = Graph {
            edges: BTreeMap::new(),
        };
        for (a, b) in edges {
            g.edges
                .entry(a.to_string())
                .or_default()
                .entry(b.to_string())
                .or_default()
                .insert("x.rs".into());
        }
        g
    };
    let g = graph(&[
        ("cli", "perso::cli"),
        ("perso::cli", "cli_common"),
        ("perso::cli", "perso"),
    ]);
    assert_eq!(find_cycle(&g), None);
    let g = graph(&[
        ("cli", "perso::cli"),
        ("perso::cli", "line::cli"),
        ("line::cli", "cli"),
        ("line::cli", "line"),
    ]);
    let c = find_cycle(&g).expect("a cycle");
    assert_eq!(c.first(), c.last());
    assert_eq!(c.len(), 4, "{c:?}");
}

/// A made-up cycle between submodules is reported with the files that
/// make it; listing it as known silences it, and a known entry that is not
/// a cycle is reported as gone.
#[test]
fn the_checker_finds_cycles_between_submodules() {
    let file = |rel: &str, module: &[&str], code: &str| {
        (
            PathBuf::from(rel),
            module.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            module.first().map(|s| s.to_string()).unwrap_or_default(),
            code.to_string(),
        )
    };
    let acyclic = vec![
        file("pki/mod.rs", &["pki"], "pub use ca::Ca;\n"),
        file(
            "pki/ca.rs",
            &["pki", "ca"],
            "use super::{oid::X, PkiError};\n",
        ),
        file("pki/crl.rs", &["pki", "crl"], "use crate::pki::ca::Ca;\n"),
        file("pki/oid.rs", &["pki", "oid"], "use crate::hex;\n"),
    ];
    assert_eq!(submodule_cycle_report(&acyclic, &[]), (vec![], vec![]));
    let mut cyclic = acyclic.clone();
    cyclic.push(file(
        "pki/oid/names.rs",
        &["pki", "oid", "names"],
        "fn f() { crate::pki::crl::g(); }\n",
    ));
    let (new, gone) = submodule_cycle_report(&cyclic, &[]);
    assert!(gone.is_empty());
    let [c] = new.as_slice() else {
        panic!("one cycle expected: {new:?}")
    };
    assert!(
        c.starts_with(r#"["pki::ca", "pki::crl", "pki::oid"]"#),
        "{c}"
    );
    assert!(c.contains("pki::oid -> pki::crl (pki/oid/names.rs)"), "{c}");
    assert_eq!(
        submodule_cycle_report(&cyclic, &[&["pki::oid", "pki::ca", "pki::crl"]]),
        (vec![], vec![])
    );
    // Through the parent's re-export: oid -> crl (pki::Crl) -> ca -> oid.
    let mut through = acyclic.clone();
    through[0].3.push_str("pub use crl::{self, Crl};\n");
    through.push(file(
        "pki/oid/names.rs",
        &["pki", "oid", "names"],
        "use crate::pki::Crl;\n",
    ));
    let (new, _) = submodule_cycle_report(&through, &[]);
    assert!(
        new.len() == 1 && new[0].contains("pki::oid -> pki::crl (pki/oid/names.rs)"),
        "{new:?}"
    );
    let (new, gone) = submodule_cycle_report(&acyclic, &[&["pki::ca", "pki::crl"]]);
    assert!(new.is_empty());
    assert_eq!(gone, vec![r#"["pki::ca", "pki::crl"]"#.to_string()]);
}
