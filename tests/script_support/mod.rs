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
