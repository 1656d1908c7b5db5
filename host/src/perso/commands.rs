//! The card's commands, named by what they are for. A profile's
//! `[commands]` table (and each key's `generate`, `read_public_key` and
//! `sign`) gives every command the host sends as a template in the script
//! language (docs/card-profile.md, "Card commands"); the engines ask for a
//! [`Step`] with its variables and never know the bytes. A new chip needs
//! new templates, not new Rust.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::apdu::Command;
use crate::script::template::{Template, Vars};

/// What a command is for. Each has a key in `[commands]` and the variables
/// the host gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    SelectMf,
    SelectApplication,
    SelectFile,
    SelectFileBare,
    GetData,
    GetChallenge,
    ExternalAuthenticate,
    VerifyPin,
    PinStatus,
    PinLogout,
    SetPin,
    ResetRetryCounter,
    EnrolFinger,
    VerifyFinger,
    ClosePersonalization,
    Activate,
    Terminate,
    ClosedProbe,
    Generate,
    ReadPublicKey,
    Sign,
}

/// How a variable is marked in the command and its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plain,
    /// Wiped after use, `REDACTED` in every trace.
    Secret,
}

impl Step {
    /// The steps of `[commands]` (the key steps live with each key).
    pub const CARD: &'static [Step] = &[
        Step::SelectMf,
        Step::SelectApplication,
        Step::SelectFile,
        Step::SelectFileBare,
        Step::GetData,
        Step::GetChallenge,
        Step::ExternalAuthenticate,
        Step::VerifyPin,
        Step::PinStatus,
        Step::PinLogout,
        Step::SetPin,
        Step::ResetRetryCounter,
        Step::EnrolFinger,
        Step::VerifyFinger,
        Step::ClosePersonalization,
        Step::Activate,
        Step::Terminate,
        Step::ClosedProbe,
    ];

    /// The steps of one key (`[pki.commands]` for every key, or the key's
    /// own entry in `[[pki.keys]]`).
    pub const KEY: &'static [Step] = &[Step::Generate, Step::ReadPublicKey, Step::Sign];

    /// Its key in the profile.
    pub fn key(self) -> &'static str {
        match self {
            Step::SelectMf => "select_mf",
            Step::SelectApplication => "select_application",
            Step::SelectFile => "select_file",
            Step::SelectFileBare => "select_file_bare",
            Step::GetData => "get_data",
            Step::GetChallenge => "get_challenge",
            Step::ExternalAuthenticate => "external_authenticate",
            Step::VerifyPin => "verify_pin",
            Step::PinStatus => "pin_status",
            Step::PinLogout => "pin_logout",
            Step::SetPin => "set_pin",
            Step::ResetRetryCounter => "reset_retry_counter",
            Step::EnrolFinger => "enrol_finger",
            Step::VerifyFinger => "verify_finger",
            Step::ClosePersonalization => "close_personalization",
            Step::Activate => "activate",
            Step::Terminate => "terminate",
            Step::ClosedProbe => "closed_probe",
            Step::Generate => "generate",
            Step::ReadPublicKey => "read_public_key",
            Step::Sign => "sign",
        }
    }

    /// The variables the host gives this step, and how each is marked.
    pub fn variables(self) -> &'static [(&'static str, Kind)] {
        use Kind::{Plain, Secret};
        match self {
            Step::SelectMf
            | Step::ClosePersonalization
            | Step::Activate
            | Step::Terminate
            | Step::ClosedProbe => &[],
            Step::SelectApplication => &[("aid", Plain)],
            Step::SelectFile | Step::SelectFileBare => &[("fid", Plain)],
            Step::GetData => &[("tag", Plain)],
            Step::GetChallenge => &[("length", Plain)],
            Step::ExternalAuthenticate => &[("key_reference", Plain), ("cryptogram", Secret)],
            Step::VerifyPin => &[("pin_reference", Plain), ("pin", Secret)],
            Step::PinStatus | Step::PinLogout => &[("pin_reference", Plain)],
            Step::SetPin => &[
                ("pin_reference", Plain),
                ("old_pin", Secret),
                ("new_pin", Secret),
            ],
            Step::ResetRetryCounter => &[
                ("pin_reference", Plain),
                ("puk", Secret),
                ("new_pin", Secret),
            ],
            Step::EnrolFinger => &[
                ("reference", Plain),
                ("finger_position", Plain),
                ("finger_subtype", Plain),
                ("bit", Plain),
                ("minutiae", Secret),
                ("try_limit", Plain),
            ],
            Step::VerifyFinger => &[("reference", Plain), ("minutiae", Secret)],
            Step::Generate | Step::ReadPublicKey => &[("key_reference", Plain)],
            Step::Sign => &[("key_reference", Plain), ("digest", Plain)],
        }
    }

    /// Whether a profile may leave the step out. Without it the host does
    /// without: `select_file` before a write (whose FCP then gives the
    /// size to check), no PUK unblock, no logout (a reset logs out), no PIN
    /// state but the status list's, no CREATE FILE probe when verifying, no
    /// issuer authentication on a card whose issuer proves itself over its
    /// security domain.
    pub fn optional(self) -> bool {
        matches!(
            self,
            Step::SelectFileBare
                | Step::GetChallenge
                | Step::ExternalAuthenticate
                | Step::PinStatus
                | Step::PinLogout
                | Step::ResetRetryCounter
                | Step::ClosedProbe
        )
    }

    fn from_key(k: &str, among: &[Step]) -> Option<Step> {
        among.iter().copied().find(|s| s.key() == k)
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// One step's commands as written: one template, or several sent in turn
/// (every one but the last must answer 9000).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawStep {
    One(String),
    Several(Vec<String>),
}

impl RawStep {
    fn texts(&self) -> Vec<&str> {
        match self {
            RawStep::One(s) => vec![s.as_str()],
            RawStep::Several(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A table of steps as the TOML file has it, with where each one is.
pub type RawSteps = BTreeMap<String, toml::Spanned<RawStep>>;

/// A step's commands, parsed and checked against its variables.
#[derive(Debug, Clone, Default)]
pub struct Commands {
    steps: BTreeMap<Step, Vec<Template>>,
}

/// A problem with one step: the profile key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepProblem {
    pub key: String,
    pub message: String,
}

impl Commands {
    /// Parse the steps of table `table` (`commands`, `pki.commands`,
    /// `pki.keys[1]`) among `allowed`; `text` is the whole profile (for line
    /// numbers), `file` its name.
    pub fn parse(
        raw: &RawSteps,
        table: &str,
        allowed: &[Step],
        file: &str,
        text: &str,
    ) -> Result<Commands, StepProblem> {
        let mut steps = BTreeMap::new();
        for (k, v) in raw {
            let line = line_of(text, v.span().start);
            let key = format!("{table}.{k} (line {line})");
            let problem = |message: String| StepProblem {
                key: key.clone(),
                message,
            };
            let Some(step) = Step::from_key(k, allowed) else {
                return Err(problem(format!(
                    "not a step here; expected one of {}",
                    allowed
                        .iter()
                        .map(|s| s.key())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            let texts = v.get_ref().texts();
            if texts.is_empty() {
                return Err(problem("expected at least one command".into()));
            }
            let mut templates = Vec::new();
            for t in texts {
                let tpl = Template::parse(t, file, line)
                    .map_err(|e| problem(format!("in {t:?}, column {}: {}", e.col, e.message)))?;
                let known: BTreeSet<&str> = step.variables().iter().map(|(n, _)| *n).collect();
                if let Some(unknown) = tpl.variables().iter().find(|n| !known.contains(n.as_str()))
                {
                    return Err(problem(format!(
                        "${{{unknown}}} is not a variable of this step; it has {}",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known
                                .iter()
                                .map(|n| format!("${{{n}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    )));
                }
                templates.push(tpl);
            }
            steps.insert(step, templates);
        }
        Ok(Commands { steps })
    }

    /// These steps, with `other`'s where these have none.
    pub fn or(mut self, other: &Commands) -> Commands {
        for (s, t) in &other.steps {
            self.steps.entry(*s).or_insert_with(|| t.clone());
        }
        self
    }

    /// The first of `required` that is missing.
    pub fn missing(&self, required: &[Step]) -> Option<Step> {
        required
            .iter()
            .copied()
            .find(|s| !s.optional() && !self.steps.contains_key(s))
    }

    pub fn has(&self, step: Step) -> bool {
        self.steps.contains_key(&step)
    }

    /// The commands of `step` with `vars`. A missing step or a variable
    /// that does not fit its template is an error naming the step.
    pub fn build(&self, step: Step, vars: &Vars) -> Result<Vec<Command>, String> {
        let templates = self
            .steps
            .get(&step)
            .ok_or_else(|| format!("the card profile has no command for {step}"))?;
        templates
            .iter()
            .map(|t| {
                t.command(vars)
                    .map_err(|e| format!("{step}: {}: {e}", t.text()))
            })
            .collect()
    }
}

/// The 1-based line of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.get(..at).map_or(0, |b| b.matches('\n').count()) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Commands, StepProblem> {
        #[derive(Deserialize)]
        struct T {
            commands: RawSteps,
        }
        let t: T = toml::from_str(text).unwrap();
        Commands::parse(&t.commands, "commands", Step::CARD, "p.toml", text)
    }

    #[test]
    fn steps_are_parsed_and_built() {
        // `sign` is a key step, not a card step.
        let e = parse("[commands]\nsign = \"apdu(00 2A 9E 9A, ${digest}, 00)\"\n").unwrap_err();
        assert!(e.message.contains("not a step here"), "{e:?}");
        let c = parse(
            "[commands]\nget_data = \"apdu(80 CA ${tag}, , 00)\"\n\
             verify_pin = [\"apdu(00 22 41 B6, 80 01 11)\", \"apdu(00 20 00 ${pin_reference}, ${pin})\"]\n",
        )
        .unwrap();
        let cmds = c
            .build(Step::GetData, &Vars::new().bytes("tag", &[0x9F, 0x7F]))
            .unwrap();
        assert_eq!(cmds.len(), 1);
        assert_eq!(cmds[0].encode().unwrap(), [0x80, 0xCA, 0x9F, 0x7F, 0x00]);
        let pin = crate::secret::Secret::new(b"1234".to_vec());
        let two = c
            .build(
                Step::VerifyPin,
                &Vars::new().byte("pin_reference", 0x81).secret("pin", &pin),
            )
            .unwrap();
        assert_eq!(two.len(), 2);
        assert!(two[1].data.is_sensitive());
        let e = c.build(Step::Terminate, &Vars::new()).unwrap_err();
        assert!(e.contains("no command for terminate"), "{e}");
        assert_eq!(
            c.missing(&[Step::GetData, Step::Terminate]),
            Some(Step::Terminate)
        );
        assert_eq!(c.missing(&[Step::GetData, Step::PinLogout]), None);
    }

    #[test]
    fn problems_name_the_key_its_line_and_what_was_expected() {
        let e = parse("[commands]\n\nbogus = \"apdu(00 A4 00 0C)\"\n").unwrap_err();
        assert_eq!(e.key, "commands.bogus (line 3)");
        assert!(e.message.contains("expected one of select_mf"), "{e:?}");
        let e = parse("[commands]\nget_data = \"apdu(00 CA ${tg}, , 00)\"\n").unwrap_err();
        assert_eq!(e.key, "commands.get_data (line 2)");
        assert!(
            e.message
                .contains("${tg} is not a variable of this step; it has ${tag}"),
            "{e:?}"
        );
        let e = parse("[commands]\nselect_mf = \"apdu(00 A4 00, 3F00)\"\n").unwrap_err();
        assert!(
            e.message.contains("column 1") && e.message.contains("4 bytes"),
            "{e:?}"
        );
        let e = parse("[commands]\nterminate = []\n").unwrap_err();
        assert!(e.message.contains("at least one command"), "{e:?}");
    }
}
