//! Evaluating expressions, matching responses, taking captures.
//!
//! A [`Value`] keeps its bytes in a zeroizing [`Secret`] and knows, byte by
//! byte, which of them are sensitive, so that a PIN concatenated into an APDU
//! is still known to be a PIN when the APDU is shown. It knows in the same
//! way which bytes are a citizen's personal data (`personal(…)`), which an
//! APDU shows as `PERSONAL(n bytes)` unless the session was started with
//! `--trace-personal-data`.

use super::ast::*;
use crate::apdu::{Command, Data, LengthForm};
use crate::hex;
use crate::secret::Secret;
use crate::tlv;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// Bytes plus which of them are sensitive, and which are personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct Value {
    bytes: Secret,
    mask: Vec<bool>,
    personal: Vec<bool>,
}

impl Value {
    pub fn plain(v: Vec<u8>) -> Value {
        let mask = vec![false; v.len()];
        Value {
            bytes: Secret::new(v),
            personal: mask.clone(),
            mask,
        }
    }

    pub fn secret(v: Vec<u8>) -> Value {
        let mask = vec![true; v.len()];
        Value {
            bytes: Secret::new(v),
            personal: vec![false; mask.len()],
            mask,
        }
    }

    /// Whether any byte is a citizen's personal data.
    pub fn is_personal(&self) -> bool {
        self.personal.iter().any(|m| *m)
    }

    /// Whether any byte in `range` is personal data.
    pub fn personal_in(&self, range: std::ops::Range<usize>) -> bool {
        self.personal
            .get(range)
            .is_some_and(|m| m.iter().any(|x| *x))
    }

    pub fn mark_personal(&mut self) {
        self.personal.iter_mut().for_each(|m| *m = true);
    }

    pub fn empty() -> Value {
        Value::plain(Vec::new())
    }

    /// The bytes. Only for sending to the card and for comparisons.
    pub fn expose(&self) -> &[u8] {
        self.bytes.expose()
    }

    pub fn len(&self) -> usize {
        self.mask.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mask.is_empty()
    }

    pub fn is_sensitive(&self) -> bool {
        self.mask.iter().any(|m| *m)
    }

    /// Whether any byte in `range` is sensitive.
    pub fn sensitive_in(&self, range: std::ops::Range<usize>) -> bool {
        self.mask.get(range).is_some_and(|m| m.iter().any(|x| *x))
    }

    pub fn mark_sensitive(&mut self) {
        self.mask.iter_mut().for_each(|m| *m = true);
    }

    fn concat(parts: &[Value]) -> Value {
        let mut v = Vec::with_capacity(parts.iter().map(Value::len).sum());
        let mut mask = Vec::with_capacity(v.capacity());
        let mut personal = Vec::with_capacity(v.capacity());
        for p in parts {
            v.extend_from_slice(p.expose());
            mask.extend_from_slice(&p.mask);
            personal.extend_from_slice(&p.personal);
        }
        Value {
            bytes: Secret::new(v),
            mask,
            personal,
        }
    }

    /// A sub-range (clamped to the value).
    pub fn slice(&self, start: usize, end: usize) -> Value {
        let end = end.min(self.len());
        let start = start.min(end);
        Value {
            bytes: Secret::new(self.expose().get(start..end).unwrap_or(&[]).to_vec()),
            mask: self.mask.get(start..end).unwrap_or(&[]).to_vec(),
            personal: self.personal.get(start..end).unwrap_or(&[]).to_vec(),
        }
    }

    /// Spaced hex with every sensitive byte shown as `**`.
    pub fn redacted_hex(&self) -> String {
        self.expose()
            .iter()
            .zip(&self.mask)
            .map(|(b, m)| {
                if *m {
                    "**".to_string()
                } else {
                    format!("{b:02X}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({})", self.redacted_hex())
    }
}

/// Why an expression has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// A real error, at a place in the script.
    At { loc: Loc, message: String },
    /// A variable that only a run can give (a capture), in a dry run.
    Pending { name: String },
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::At { loc, message } => write!(f, "{loc}: {message}"),
            EvalError::Pending { name } => {
                write!(
                    f,
                    "depends on ${{{name}}}, which is captured when the script runs"
                )
            }
        }
    }
}

/// What a variable holds.
#[derive(Debug, Clone)]
pub enum Binding {
    Known(Value),
    /// Its capture failed at this place.
    Failed(Loc),
    /// Known only when running (dry run).
    Pending,
}

/// Variables and which names are sensitive.
#[derive(Debug, Default, Clone)]
pub struct Env {
    vars: HashMap<String, Binding>,
    secret_names: BTreeSet<String>,
}

impl Env {
    pub fn new() -> Env {
        Env::default()
    }

    /// Declare `name` sensitive: its value, now and later, is marked so.
    pub fn declare_secret(&mut self, name: &str) {
        self.secret_names.insert(name.to_string());
        if let Some(Binding::Known(v)) = self.vars.get_mut(name) {
            v.mark_sensitive();
        }
    }

    pub fn set(&mut self, name: &str, mut v: Value) {
        if self.secret_names.contains(name) {
            v.mark_sensitive();
        }
        self.vars.insert(name.to_string(), Binding::Known(v));
    }

    pub fn set_binding(&mut self, name: &str, b: Binding) {
        match b {
            Binding::Known(v) => self.set(name, v),
            other => {
                self.vars.insert(name.to_string(), other);
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&Binding> {
        self.vars.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.vars.keys()
    }

    pub fn eval(&self, e: &Expr) -> Result<Value, EvalError> {
        let parts = e
            .terms
            .iter()
            .map(|t| self.term(t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Value::concat(&parts))
    }

    fn term(&self, t: &Term) -> Result<Value, EvalError> {
        match t {
            Term::Hex(b) | Term::Text(b) => Ok(Value::plain(b.clone())),
            Term::Var { name, loc } => match self.vars.get(name) {
                Some(Binding::Known(v)) => Ok(v.clone()),
                Some(Binding::Pending) => Err(EvalError::Pending { name: name.clone() }),
                Some(Binding::Failed(at)) => Err(EvalError::At {
                    loc: loc.clone(),
                    message: format!("${{{name}}} has no value: its capture at {at} failed"),
                }),
                None => Err(EvalError::At {
                    loc: loc.clone(),
                    message: format!("${{{name}}} is not defined: give it with --var {name}=…, in a --vars file, or with let/capture before this line"),
                }),
            },
            Term::Secret(e) => {
                let mut v = self.eval(e)?;
                v.mark_sensitive();
                Ok(v)
            }
            Term::Personal(e) => {
                let mut v = self.eval(e)?;
                v.mark_personal();
                Ok(v)
            }
            Term::Len { of, loc } => {
                let v = self.eval(of)?;
                u8::try_from(v.len())
                    .map(|n| Value::plain(vec![n]))
                    .map_err(|_| EvalError::At {
                        loc: loc.clone(),
                        message: format!("len(…) is {} bytes, more than one byte can say (255); use tlv(…) for BER lengths", v.len()),
                    })
            }
            Term::Tlv { tag, value } => {
                let tv = self.eval(tag)?;
                let vv = self.eval(value)?;
                // Tags in expressions are checked when literal at parse time;
                // a tag from a variable is checked here.
                if let Err(message) = super::parser::check_tag(tv.expose()) {
                    let loc = first_loc(tag).unwrap_or_else(|| Loc::new(&"?".into(), 0, 0));
                    return Err(EvalError::At {
                        loc,
                        message: format!("tlv(…): {message}"),
                    });
                }
                let len = Value::plain(crate::tlv::len_bytes(vv.len()));
                Ok(Value::concat(&[tv, len, vv]))
            }
            Term::Apdu {
                header,
                data,
                le,
                loc,
            } => {
                let at = |message: String| EvalError::At {
                    loc: loc.clone(),
                    message,
                };
                let (c, d) = self.apdu_command(header, data, le.as_deref(), loc)?;
                let bytes = c.encode().map_err(|e| at(format!("apdu(…): {e}")))?;
                let data_at = if d.is_empty() {
                    bytes.len()
                } else if c.needs_extended() {
                    7
                } else {
                    5
                };
                let mut mask = vec![false; bytes.len()];
                let mut personal = vec![false; bytes.len()];
                if d.is_sensitive() {
                    for m in mask.iter_mut().skip(data_at).take(d.len()) {
                        *m = true;
                    }
                } else if d.is_personal() {
                    for m in personal.iter_mut().skip(data_at).take(d.len()) {
                        *m = true;
                    }
                }
                Ok(Value {
                    bytes: Secret::new(bytes),
                    mask,
                    personal,
                })
            }
        }
    }

    /// The command an `apdu(header, data[, le])` term stands for, and its
    /// data field's value (with its marks). Also a card profile's command
    /// templates ([`super::template`]).
    pub fn apdu_command(
        &self,
        header: &Expr,
        data: &Expr,
        le: Option<&Expr>,
        loc: &Loc,
    ) -> Result<(Command, Value), EvalError> {
        let at = |message: String| EvalError::At {
            loc: loc.clone(),
            message,
        };
        let h = self.eval(header)?;
        let [cla, ins, p1, p2] = *h.expose() else {
            return Err(at(format!(
                "apdu(…): the header is CLA INS P1 P2, 4 bytes, not {}",
                h.len()
            )));
        };
        if h.is_sensitive() {
            return Err(at("apdu(…): the header cannot be secret".into()));
        }
        let d = self.eval(data)?;
        let mut c = Command::new(cla, ins, p1, p2);
        c.data = if d.is_sensitive() {
            Data::Sensitive(Secret::new(d.expose().to_vec()))
        } else if d.is_personal() {
            Data::Personal(d.expose().to_vec())
        } else {
            Data::Plain(d.expose().to_vec())
        };
        if let Some(le) = le {
            let l = self.eval(le)?;
            match *l.expose() {
                [b] => c.ne = Some(if b == 0 { 256 } else { b as usize }),
                [hi, lo] => {
                    let n = u16::from_be_bytes([hi, lo]) as usize;
                    c.ne = Some(if n == 0 { 65_536 } else { n });
                    c.form = LengthForm::Extended;
                }
                _ => {
                    return Err(at(
                        "apdu(…): Le is one byte (short, 00 = 256) or two bytes (extended, 0000 = 65536)"
                            .into(),
                    ))
                }
            }
        }
        Ok((c, d))
    }

    /// Resolve a data pattern to bytes-with-masks.
    pub fn resolve_pattern(&self, items: &[PatItem]) -> Result<Vec<Pat>, EvalError> {
        let mut out = Vec::new();
        for it in items {
            match it {
                PatItem::Any => out.push(Pat::Any),
                PatItem::Byte { value, mask } => out.push(Pat::Byte {
                    value: *value,
                    mask: *mask,
                }),
                PatItem::Expr(e) => {
                    let v = self.eval(e)?;
                    out.extend(v.expose().iter().map(|b| Pat::Byte {
                        value: *b,
                        mask: 0xFF,
                    }));
                }
            }
        }
        Ok(out)
    }
}

fn first_loc(e: &Expr) -> Option<Loc> {
    e.terms.iter().find_map(|t| match t {
        Term::Var { loc, .. } | Term::Len { loc, .. } | Term::Apdu { loc, .. } => Some(loc.clone()),
        _ => None,
    })
}

/// A resolved pattern element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pat {
    Byte { value: u8, mask: u8 },
    Any,
}

/// Whole-data glob match: `Any` takes any run of bytes. Iterative, with
/// backtracking only to the last `Any`, so O(len × pattern) at worst.
pub fn matches(pat: &[Pat], data: &[u8]) -> bool {
    let (mut p, mut d) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while d < data.len() {
        match (pat.get(p), data.get(d)) {
            (Some(Pat::Byte { value, mask }), Some(b)) if b & mask == value & mask => {
                p += 1;
                d += 1;
            }
            (Some(Pat::Any), _) => {
                star = Some((p, d));
                p += 1;
            }
            _ => match star {
                Some((sp, sd)) => {
                    p = sp + 1;
                    d = sd + 1;
                    star = Some((sp, sd + 1));
                }
                None => return false,
            },
        }
    }
    pat.iter().skip(p).all(|x| *x == Pat::Any)
}

/// Render an expectation as written (variables by name, never their value).
pub fn describe_expect(e: &Expect) -> String {
    let mut s =
        e.sw.iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("|");
    if let Some(items) = &e.data {
        s.push_str(" [");
        let parts: Vec<String> = items.iter().map(describe_item).collect();
        s.push_str(&parts.join(" "));
        s.push(']');
    }
    s
}

fn describe_item(it: &PatItem) -> String {
    match it {
        PatItem::Any => "*".into(),
        PatItem::Byte { value, mask } => {
            let nib = |shift: u8| {
                if (mask >> shift) & 0xF == 0 {
                    "x".to_string()
                } else {
                    format!("{:X}", (value >> shift) & 0xF)
                }
            };
            format!("{}{}", nib(4), nib(0))
        }
        PatItem::Expr(e) => describe_expr(e),
    }
}

/// An expression as text with variables by name and secrets hidden.
pub fn describe_expr(e: &Expr) -> String {
    e.terms
        .iter()
        .map(|t| match t {
            Term::Hex(b) => hex::compact(b),
            Term::Text(b) => format!("{:?}", String::from_utf8_lossy(b)),
            Term::Var { name, .. } => format!("${{{name}}}"),
            Term::Tlv { tag, value } => {
                format!("tlv({}, {})", describe_expr(tag), describe_expr(value))
            }
            Term::Len { of, .. } => format!("len({})", describe_expr(of)),
            Term::Secret(_) => "secret(…)".into(),
            Term::Personal(_) => "personal(…)".into(),
            Term::Apdu {
                header, data, le, ..
            } => match le {
                Some(l) => format!(
                    "apdu({}, {}, {})",
                    describe_expr(header),
                    describe_expr(data),
                    describe_expr(l)
                ),
                None => format!("apdu({}, {})", describe_expr(header), describe_expr(data)),
            },
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a capture found nothing.
pub fn capture(src: &CaptureSource, data: &[u8], sw: [u8; 2]) -> Result<Vec<u8>, String> {
    match src {
        CaptureSource::Sw => Ok(sw.to_vec()),
        CaptureSource::Range { start, end } => {
            let end_v = end.unwrap_or(data.len());
            data.get(*start..end_v).map(|s| s.to_vec()).ok_or_else(|| {
                format!(
                    "bytes {start}..{} are outside the {}-byte response",
                    end.map(|e| e.to_string()).unwrap_or_default(),
                    data.len()
                )
            })
        }
        CaptureSource::Tlv(path) => {
            let nodes = tlv::decode(data);
            let mut level: &[tlv::Node] = &nodes;
            let mut found: Option<&tlv::Node> = None;
            let mut so_far = String::new();
            for (k, step) in path.iter().enumerate() {
                if k > 0 {
                    let Some(tlv::NodeKind::Tlv {
                        constructed: true,
                        children,
                        ..
                    }) = found.map(|n| &n.kind)
                    else {
                        return Err(format!(
                            "{so_far} is not a constructed data object, so it has no {}",
                            hex::compact(&step.tag)
                        ));
                    };
                    level = children;
                    so_far.push('/');
                }
                so_far.push_str(&hex::compact(&step.tag));
                if step.index > 0 {
                    so_far.push_str(&format!("[{}]", step.index));
                }
                found = level
                    .iter()
                    .filter(
                        |n| matches!(&n.kind, tlv::NodeKind::Tlv { tag, .. } if *tag == step.tag),
                    )
                    .nth(step.index);
                if found.is_none() {
                    return Err(format!("no data object {so_far} in the response"));
                }
            }
            match found.map(|n| (n.offset, &n.kind)) {
                Some((
                    offset,
                    tlv::NodeKind::Tlv {
                        header_len, length, ..
                    },
                )) => {
                    let start = offset.saturating_add(*header_len);
                    data.get(start..start.saturating_add(*length))
                        .map(|s| s.to_vec())
                        .ok_or_else(|| {
                            format!("data object {so_far} runs past the end of the response")
                        })
                }
                _ => Err("empty tag path".into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: u8) -> Pat {
        Pat::Byte {
            value: v,
            mask: 0xFF,
        }
    }

    #[test]
    fn glob() {
        assert!(matches(&[], &[]));
        assert!(!matches(&[], &[1]));
        assert!(matches(&[Pat::Any], &[]));
        assert!(matches(&[Pat::Any], &[1, 2, 3]));
        assert!(matches(&[b(1), Pat::Any], &[1, 2, 3]));
        assert!(!matches(&[b(2), Pat::Any], &[1, 2, 3]));
        assert!(matches(&[Pat::Any, b(3)], &[1, 2, 3]));
        assert!(matches(&[Pat::Any, b(2), Pat::Any], &[1, 2, 3]));
        assert!(matches(&[b(1), Pat::Any, b(1)], &[1, 1]));
        assert!(!matches(&[b(1), Pat::Any, b(1)], &[1]));
        assert!(matches(
            &[Pat::Byte {
                value: 0xC0,
                mask: 0xF0
            }],
            &[0xC3]
        ));
    }

    #[test]
    fn tlv_capture() {
        let data = hex::parse("6F 0B 84 03 A0 00 01 A5 04 50 02 41 42").unwrap();
        let path = |s: &[(&[u8], usize)]| {
            CaptureSource::Tlv(
                s.iter()
                    .map(|(t, i)| PathStep {
                        tag: t.to_vec(),
                        index: *i,
                    })
                    .collect(),
            )
        };
        assert_eq!(
            capture(&path(&[(&[0x6F], 0), (&[0x84], 0)]), &data, [0x90, 0]).unwrap(),
            vec![0xA0, 0, 1]
        );
        assert_eq!(
            capture(
                &path(&[(&[0x6F], 0), (&[0xA5], 0), (&[0x50], 0)]),
                &data,
                [0x90, 0]
            )
            .unwrap(),
            b"AB".to_vec()
        );
        assert!(
            capture(&path(&[(&[0x6F], 0), (&[0x84], 1)]), &data, [0x90, 0])
                .unwrap_err()
                .contains("no data object 6F/84[1]")
        );
        assert!(capture(
            &path(&[(&[0x6F], 0), (&[0x84], 0), (&[0x01], 0)]),
            &data,
            [0x90, 0]
        )
        .unwrap_err()
        .contains("not a constructed"));
    }
}
