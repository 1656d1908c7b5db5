//! Where the holder's PINs come from, never from the command line.
//!
//! - [`TtyPins`]: the terminal (`/dev/tty`), echo off while the holder
//!   types (rpassword); nothing typed appears on the screen.
//! - [`LinePins`]: one PIN per line from a file descriptor
//!   (`--pins-from-fd N`, e.g. a pipe from a PIN pad driver or a test) or
//!   from a file that only its owner can read (`--pins-file`, mode 600).
//!   Each prompt takes the next line, so a script answers the prompts in
//!   the order the screen shows them (the same PIN twice, then the next).
//!
//! Values travel as [`Secret`]s; a line's trailing CR/LF is not part of
//! the PIN.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use zeroize::Zeroizing;

use crate::secret::Secret;

/// A source of secret entries.
pub trait PinInput {
    /// Ask for one secret entry. `Ok(None)`: the input has ended.
    fn secret(&mut self, prompt: &str) -> std::io::Result<Option<Secret>>;
    /// Entries are typed by someone watching the screen (so a refused
    /// entry can be asked again).
    fn interactive(&self) -> bool;
    /// A PIN was refused for a rule a supervisor may waive (`why`, as the
    /// policy says it): a supervisor's waiver, or None when the holder
    /// chooses another PIN. Only the web station asks a supervisor.
    fn waiver(&mut self, _label: &str, _why: &str) -> Option<Waiver> {
        None
    }
}

/// A supervisor let a refused PIN through, with a written reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    pub supervisor: String,
    pub reason: String,
}

/// The terminal, with echo off.
pub struct TtyPins;

impl PinInput for TtyPins {
    fn secret(&mut self, prompt: &str) -> std::io::Result<Option<Secret>> {
        match rpassword::prompt_password(prompt) {
            Ok(s) => {
                let s = Zeroizing::new(s);
                Ok(Some(Secret::new(s.as_bytes().to_vec())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn interactive(&self) -> bool {
        true
    }
}

/// One entry per line from a reader (fd or private file).
pub struct LinePins {
    reader: Box<dyn BufRead>,
    /// Where the entries come from, for messages ("fd 3").
    pub source: String,
    /// Print each prompt (without the entry) to stderr, so a log shows the
    /// order in which entries were taken.
    pub echo_prompts: bool,
}

impl LinePins {
    pub fn new(reader: Box<dyn Read>, source: &str) -> LinePins {
        LinePins {
            reader: Box::new(BufReader::new(reader)),
            source: source.to_string(),
            echo_prompts: true,
        }
    }

    /// Entries from file descriptor `fd` (opened through /dev/fd).
    pub fn from_fd(fd: u32) -> std::io::Result<LinePins> {
        let f = std::fs::File::open(format!("/dev/fd/{fd}"))?;
        Ok(LinePins::new(Box::new(f), &format!("fd {fd}")))
    }

    /// Entries from a file that must not be readable by group or others.
    pub fn from_file(path: &Path) -> Result<LinePins, String> {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).map_err(|e| format!("--pins-file {}: {e}", path.display()))?;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "--pins-file {}: readable by group or others (mode {:o}); expected 600: chmod 600 {}",
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
        let f = std::fs::File::open(path)
            .map_err(|e| format!("--pins-file {}: {e}", path.display()))?;
        Ok(LinePins::new(
            Box::new(f),
            &format!("file {}", path.display()),
        ))
    }
}

impl PinInput for LinePins {
    fn secret(&mut self, prompt: &str) -> std::io::Result<Option<Secret>> {
        if self.echo_prompts {
            eprintln!("{prompt}(from {})", self.source);
        }
        let mut line = Zeroizing::new(Vec::new());
        let n = self.reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(None);
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Ok(Some(Secret::new(line.to_vec())))
    }
    fn interactive(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_taken_in_order_without_their_line_ends() {
        let mut p = LinePins::new(Box::new(&b"480913\r\n480913\n"[..]), "test");
        p.echo_prompts = false;
        assert_eq!(
            p.secret("a").ok().flatten().map(|s| s.expose().to_vec()),
            Some(b"480913".to_vec())
        );
        assert_eq!(
            p.secret("b").ok().flatten().map(|s| s.expose().to_vec()),
            Some(b"480913".to_vec())
        );
        assert!(p.secret("c").expect("eof").is_none());
    }

    #[test]
    fn a_pins_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("pins");
        std::fs::write(&f, "480913\n").expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = LinePins::from_file(&f).err().expect("refused");
        assert!(e.contains("mode 644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(LinePins::from_file(&f).is_ok());
    }
}
