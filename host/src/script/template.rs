//! Command templates: one card command written in the script language,
//! `apdu(CLA INS P1 P2, data[, Le])` with `${name}` variables and functions
//! such as `tlv(…)`. A card profile names each command the host sends by
//! what it is for and gives its template (docs/card-profile.md, "Card
//! commands"); the host fills in the variables of that step.

use std::collections::BTreeSet;

use super::ast::{Expr, Loc, Term};
use super::eval::{Env, EvalError, Value};
use super::ParseError;
use crate::apdu::Command;
use crate::secret::Secret;

/// A parsed command template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    header: Expr,
    data: Expr,
    le: Option<Expr>,
    loc: Loc,
    /// As written, for messages.
    text: String,
}

impl Template {
    /// Parse `text`; errors name `file`, `line` and the column in `text`.
    pub fn parse(text: &str, file: &str, line: usize) -> Result<Template, ParseError> {
        match super::parser::parse_command(text, file, line)? {
            Term::Apdu {
                header,
                data,
                le,
                loc,
            } => Ok(Template {
                header: *header,
                data: *data,
                le: le.map(|l| *l),
                loc,
                text: text.trim().to_string(),
            }),
            _ => Err(ParseError::new(
                &std::sync::Arc::from(file),
                line,
                1,
                "expected one command written apdu(CLA INS P1 P2, data[, Le])",
            )),
        }
    }

    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every `${name}` the template uses.
    pub fn variables(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for e in [Some(&self.header), Some(&self.data), self.le.as_ref()]
            .into_iter()
            .flatten()
        {
            collect(e, &mut out);
        }
        out
    }

    /// The command with these variables.
    pub fn command(&self, vars: &Vars) -> Result<Command, EvalError> {
        vars.env
            .apdu_command(&self.header, &self.data, self.le.as_ref(), &self.loc)
            .map(|(c, _)| c)
    }
}

fn collect(e: &Expr, out: &mut BTreeSet<String>) {
    for t in &e.terms {
        match t {
            Term::Var { name, .. } => {
                out.insert(name.clone());
            }
            Term::Tlv { tag, value } => {
                collect(tag, out);
                collect(value, out);
            }
            Term::Len { of: x, .. } | Term::Secret(x) | Term::Personal(x) => collect(x, out),
            Term::Apdu {
                header, data, le, ..
            } => {
                collect(header, out);
                collect(data, out);
                if let Some(l) = le {
                    collect(l, out);
                }
            }
            Term::Hex(_) | Term::Text(_) => {}
        }
    }
}

/// The variables of one step: plain bytes, secrets (wiped, never shown:
/// the command's data field becomes sensitive) and personal data.
#[derive(Default)]
pub struct Vars {
    env: Env,
}

impl Vars {
    pub fn new() -> Vars {
        Vars::default()
    }

    /// `name` is these bytes.
    pub fn bytes(mut self, name: &str, v: &[u8]) -> Vars {
        self.env.set(name, Value::plain(v.to_vec()));
        self
    }

    /// `name` is one byte.
    pub fn byte(self, name: &str, v: u8) -> Vars {
        self.bytes(name, &[v])
    }

    /// `name` is a secret (a PIN, a cryptogram, minutiae).
    pub fn secret(mut self, name: &str, v: &Secret) -> Vars {
        self.env.set(name, Value::secret(v.expose().to_vec()));
        self
    }

    /// `name` is a citizen's personal data.
    pub fn personal(mut self, name: &str, v: &[u8]) -> Vars {
        let mut value = Value::plain(v.to_vec());
        value.mark_personal();
        self.env.set(name, value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_makes_its_command() {
        let t = Template::parse("apdu(80 46 00 ${key_reference}, , 00)", "p.toml", 7).unwrap();
        assert_eq!(t.variables(), BTreeSet::from(["key_reference".to_string()]));
        let c = t.command(&Vars::new().byte("key_reference", 0x21)).unwrap();
        assert_eq!(c.encode().unwrap(), [0x80, 0x46, 0x00, 0x21, 0x00]);
    }

    #[test]
    fn secrets_stay_secret() {
        let t = Template::parse("apdu(00 20 00 ${pin_reference}, ${pin})", "p.toml", 1).unwrap();
        let pin = Secret::new(b"123456".to_vec());
        let c = t
            .command(&Vars::new().byte("pin_reference", 0x81).secret("pin", &pin))
            .unwrap();
        assert!(c.data.is_sensitive());
        assert!(!format!("{c:?}").contains("313233"));
        assert_eq!(c.encode().unwrap().get(5..), Some(&b"123456"[..]));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = Template::parse("apdu(00 20 00 81, ${pin}), 00", "p.toml", 12).unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("p.toml", 12));
        assert!(e.message.contains("after the command"), "{e}");
        let e = Template::parse("00 20 00 81", "p.toml", 3).unwrap_err();
        assert!(e.message.contains("apdu(CLA INS P1 P2"), "{e}");
        let e = Template::parse("apdu(00 20 00, ${pin})", "p.toml", 4).unwrap_err();
        assert!(e.message.contains("4 bytes, not 3"), "{e}");
        let t = Template::parse("apdu(00 20 00 ${r}, ${pin})", "p.toml", 4).unwrap();
        let e = t
            .command(&Vars::new().bytes("r", &[1, 2]).bytes("pin", b"1"))
            .unwrap_err();
        assert!(e.to_string().contains("4 bytes, not 5"), "{e}");
        let e = t.command(&Vars::new()).unwrap_err();
        assert!(e.to_string().contains("${r} is not defined"), "{e}");
    }
}
