#![allow(dead_code)]

use cardsmith::script::eval::Env;
use cardsmith::script::{execute, parse_str, Report, RunConfig, Target};
use cardsmith::sim::{SimCard, SimConfig};
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{Channel, ExchangeOptions};

/// Run script text on a fresh simulated card; the report and the text trace.
pub fn run_text(text: &str, config: SimConfig, env: Env, keep_going: bool) -> (Report, String) {
    let script = parse_str(text, "inline.apdu").unwrap_or_else(|e| panic!("{e}"));
    let mut ch = Channel::new(
        Box::new(SimTransport::new(SimCard::blank(config))),
        ExchangeOptions::raw(),
    );
    let mut out = Vec::new();
    let (report, err) = execute(
        &[("inline.apdu".to_string(), script)],
        env,
        Target::Card(&mut ch),
        RunConfig {
            keep_going,
            dry_run: false,
        },
        &mut out,
    );
    if let Some(e) = err {
        panic!("transport error: {e:#}");
    }
    (report, String::from_utf8(out).unwrap())
}

pub fn run_default(text: &str) -> (Report, String) {
    run_text(text, SimConfig::default(), Env::new(), false)
}

pub fn no_extended() -> SimConfig {
    SimConfig {
        extended_length: false,
        command_chaining: false,
        ..SimConfig::default()
    }
}

/// Every wire command of a report, in order.
pub fn wire_commands(r: &Report) -> Vec<String> {
    r.suites
        .iter()
        .flat_map(|s| &s.cases)
        .flat_map(|c| &c.steps)
        .flat_map(|s| &s.wire)
        .map(|w| w.command.clone())
        .collect()
}

/// A minimal XML well-formedness check: balanced tags, quoted attributes,
/// no raw `<` or `&` outside markup and entities.
pub fn check_xml(x: &str) -> Result<(), String> {
    let body = x
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .ok_or("no XML declaration")?;
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('<') {
            let end = after.find('>').ok_or("unclosed tag")?;
            let tag = &after[..end];
            if tag.contains('<') {
                return Err(format!("'<' inside tag {tag:?}"));
            }
            check_attr_quotes(tag)?;
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().ok_or(format!("close without open: {name}"))?;
                if open != name {
                    return Err(format!("</{name}> closes <{open}>"));
                }
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap_or("").to_string();
                stack.push(name);
            }
            rest = &after[end + 1..];
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            let text = &rest[..end];
            check_entities(text)?;
            if text.contains('>') {
                return Err(format!("raw '>' in text {text:?}"));
            }
            rest = &rest[end..];
        }
        if stack.is_empty() && !rest.trim().is_empty() && !rest.trim_start().starts_with('<') {
            return Err("text after the root element".into());
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed elements {stack:?}"));
    }
    Ok(())
}

fn check_attr_quotes(tag: &str) -> Result<(), String> {
    if !tag.matches('"').count().is_multiple_of(2) {
        return Err(format!("odd number of quotes in {tag:?}"));
    }
    for (i, part) in tag.split('"').enumerate() {
        if i % 2 == 1 {
            check_entities(part)?;
        }
    }
    Ok(())
}

fn check_entities(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        let after = &rest[i + 1..];
        let end = after.find(';').ok_or(format!("bare & in {text:?}"))?;
        let ent = &after[..end];
        let ok = ["amp", "lt", "gt", "quot", "apos"].contains(&ent)
            || (ent.starts_with('#') && ent[1..].chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(format!("unknown entity &{ent};"));
        }
        rest = &after[end..];
    }
    Ok(())
}

/// Attribute value of the first element named `elem`.
pub fn attr(x: &str, elem: &str, name: &str) -> Option<String> {
    let start = x.find(&format!("<{elem} "))?;
    let tag = &x[start..start + x[start..].find('>')?];
    let key = format!(" {name}=\"");
    let v = &tag[tag.find(&key)? + key.len()..];
    Some(v[..v.find('"')?].to_string())
}

/// One `<testcase>` of a JUnit report: its suite, name, outcome
/// ("passed", "failure", "error", "skipped") and the message of its
/// failure or error element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JunitCase {
    pub suite: String,
    pub name: String,
    pub outcome: String,
    pub message: Option<String>,
    pub body: String,
}

/// Parse a JUnit report and check the structure CI systems (Jenkins,
/// GitLab, GitHub test reporters) rely on: a `testsuites` root whose
/// `tests`/`failures`/`errors`/`skipped` are the sums over its suites; every
/// `testsuite` with those four counts equal to its `testcase` children with
/// a `failure`, `error` or `skipped` child; every `testcase` with `name`,
/// `classname` and `time`, and at most one outcome element; `failure` and
/// `error` with a non-empty `message` and `type`. Returns the cases in order.
pub fn junit_cases(x: &str) -> Result<Vec<JunitCase>, String> {
    let doc = roxmltree::Document::parse(x).map_err(|e| format!("not well-formed XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "testsuites" {
        return Err(format!(
            "root is <{}>, not <testsuites>",
            root.tag_name().name()
        ));
    }
    let num = |n: roxmltree::Node, a: &str| -> Result<usize, String> {
        n.attribute(a)
            .ok_or(format!("<{}> has no {a} attribute", n.tag_name().name()))?
            .parse::<usize>()
            .map_err(|e| format!("<{}> {a}: {e}", n.tag_name().name()))
    };
    let mut cases = Vec::new();
    let mut totals = [0usize; 4];
    for suite in root.children().filter(|n| n.is_element()) {
        if suite.tag_name().name() != "testsuite" {
            return Err(format!("<{}> inside <testsuites>", suite.tag_name().name()));
        }
        let sname = suite
            .attribute("name")
            .ok_or("testsuite without name")?
            .to_string();
        let mut counts = [0usize; 4];
        for tc in suite.children().filter(|n| n.is_element()) {
            if tc.tag_name().name() != "testcase" {
                return Err(format!("<{}> inside <testsuite>", tc.tag_name().name()));
            }
            let name = tc
                .attribute("name")
                .ok_or("testcase without name")?
                .to_string();
            for a in ["classname", "time"] {
                if tc.attribute(a).is_none() {
                    return Err(format!("testcase {name:?} has no {a}"));
                }
            }
            tc.attribute("time")
                .unwrap_or("")
                .parse::<f64>()
                .map_err(|e| format!("testcase {name:?} time: {e}"))?;
            let outcomes: Vec<_> = tc
                .children()
                .filter(|n| {
                    n.is_element() && ["failure", "error", "skipped"].contains(&n.tag_name().name())
                })
                .collect();
            if outcomes.len() > 1 {
                return Err(format!(
                    "testcase {name:?} has {} outcome elements",
                    outcomes.len()
                ));
            }
            counts[0] += 1;
            let (outcome, message, body) = match outcomes.first() {
                None => ("passed".to_string(), None, String::new()),
                Some(o) => {
                    let kind = o.tag_name().name().to_string();
                    match kind.as_str() {
                        "failure" => counts[1] += 1,
                        "error" => counts[2] += 1,
                        _ => counts[3] += 1,
                    }
                    let message = o.attribute("message").map(str::to_string);
                    if kind != "skipped" {
                        if message.as_deref().unwrap_or("").is_empty() {
                            return Err(format!("testcase {name:?}: <{kind}> without a message"));
                        }
                        if o.attribute("type").unwrap_or("").is_empty() {
                            return Err(format!("testcase {name:?}: <{kind}> without a type"));
                        }
                    }
                    (kind, message, o.text().unwrap_or("").to_string())
                }
            };
            cases.push(JunitCase {
                suite: sname.clone(),
                name,
                outcome,
                message,
                body,
            });
        }
        for (i, a) in ["tests", "failures", "errors", "skipped"]
            .iter()
            .enumerate()
        {
            let n = num(suite, a)?;
            if n != counts[i] {
                return Err(format!(
                    "testsuite {sname:?} says {a}=\"{n}\" but has {}",
                    counts[i]
                ));
            }
            totals[i] += n;
        }
    }
    for (i, a) in ["tests", "failures", "errors", "skipped"]
        .iter()
        .enumerate()
    {
        let n = num(root, a)?;
        if n != totals[i] {
            return Err(format!(
                "testsuites says {a}=\"{n}\" but its suites add up to {}",
                totals[i]
            ));
        }
    }
    Ok(cases)
}

/// (name, outcome) of every case, for compact assertions.
pub fn outcomes(cases: &[JunitCase]) -> Vec<(String, String)> {
    cases
        .iter()
        .map(|c| (c.name.clone(), c.outcome.clone()))
        .collect()
}
