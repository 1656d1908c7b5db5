//! The office directory: each office's and consulate's code, kind, Persian
//! and English names and region. The batch records carry only codes; the
//! view shows names from here, and a code the directory does not know by
//! its code alone.
//!
//! The directory shipped with cardsmith is `data/offices.csv` (built into
//! the binary); `--offices FILE` replaces it. Format: UTF-8 lines
//! `code,kind,name_fa,name_en,region`, `#` comments and blank lines
//! skipped, no commas or double quotes inside a field.

use std::collections::BTreeMap;
use std::path::Path;

/// The directory shipped with cardsmith.
pub const BUILTIN: &str = include_str!("../../../data/offices.csv");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Office {
    pub code: String,
    /// `domestic` or `consulate`.
    pub kind: String,
    pub name_fa: String,
    pub name_en: String,
    /// The province at home, the country abroad.
    pub region: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    offices: BTreeMap<String, Office>,
}

/// Why a directory file was refused: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {what}")]
pub struct DirectoryError {
    pub file: String,
    pub line: usize,
    pub what: String,
}

impl Directory {
    /// The directory shipped with cardsmith.
    #[allow(
        clippy::expect_used,
        reason = "the shipped directory is checked by a test"
    )]
    pub fn builtin() -> Directory {
        Directory::parse(BUILTIN, "data/offices.csv")
            .expect("the shipped directory is checked by a test")
    }

    pub fn load(path: &Path) -> Result<Directory, DirectoryError> {
        let text = std::fs::read(path).map_err(|e| DirectoryError {
            file: path.display().to_string(),
            line: 0,
            what: format!("cannot read the office directory: {e}"),
        })?;
        let text = String::from_utf8(text).map_err(|e| DirectoryError {
            file: path.display().to_string(),
            line: 0,
            what: format!("not UTF-8 (byte {})", e.utf8_error().valid_up_to()),
        })?;
        Directory::parse(&text, &path.display().to_string())
    }

    /// Parse directory text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Directory, DirectoryError> {
        let mut offices = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let err = |what: String| DirectoryError {
                file: file.to_string(),
                line: i + 1,
                what,
            };
            let line = raw.trim_start_matches('\u{feff}').trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.contains('"') {
                return Err(err(
                    "double quotes are not allowed; fields are plain text without commas".into(),
                ));
            }
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let [code, kind, name_fa, name_en, region] = f.as_slice() else {
                return Err(err(format!(
                    "{} fields; expected 5: code,kind,name_fa,name_en,region",
                    f.len()
                )));
            };
            let (code, kind) = (*code, *kind);
            let domestic = code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit());
            let consulate = match code.as_bytes() {
                [c1, c2, b'-', rest @ ..] => {
                    rest.len() == 3 && [c1, c2].into_iter().chain(rest).all(u8::is_ascii_uppercase)
                }
                _ => false,
            };
            match kind {
                "domestic" if !domestic => {
                    return Err(err(format!(
                        "code {code:?}: a domestic office has 4 digits (1021)"
                    )))
                }
                "consulate" if !consulate => {
                    return Err(err(format!(
                        "code {code:?}: a consulate is CC-XXX (AE-DXB)"
                    )))
                }
                "domestic" | "consulate" => {}
                other => {
                    return Err(err(format!(
                        "kind {other:?}; expected domestic or consulate"
                    )))
                }
            }
            if name_fa.is_empty() || name_en.is_empty() {
                return Err(err(format!(
                    "office {code}: name_fa and name_en are required"
                )));
            }
            let o = Office {
                code: code.to_string(),
                kind: kind.to_string(),
                name_fa: name_fa.to_string(),
                name_en: name_en.to_string(),
                region: region.to_string(),
            };
            if offices.insert(code.to_string(), o).is_some() {
                return Err(err(format!("office {code} is listed twice")));
            }
        }
        Ok(Directory { offices })
    }

    pub fn get(&self, code: &str) -> Option<&Office> {
        self.offices.get(code)
    }

    pub fn len(&self) -> usize {
        self.offices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offices.is_empty()
    }
}
