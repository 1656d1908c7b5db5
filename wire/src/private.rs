//! The one writer for files that hold personal, biometric or secret data.
//!
//! Everything cardsmith writes that a stranger must not read goes through
//! here: citizen records and batches, live captures, journals, line
//! reports, photos, script transcripts and reports, key files and card
//! images. The rules:
//!
//! - a new file is created with mode 600 (owner read and write), never
//!   wider, whatever the umask;
//! - a directory created on the way is created with mode 700; a directory
//!   that already exists is left as it is (it may be shared on purpose,
//!   e.g. `/tmp`);
//! - an existing file is never loosened. When it is rewritten, it keeps its
//!   owner bits as far as they are within 600 (a 400 file stays 400) and
//!   loses any group and other bits: the file is about to hold personal
//!   data, and a file that others can read is exactly what the rules are
//!   there to prevent. The mode that was taken away is reported by
//!   [`Written::tightened`] so the command can say so.
//!
//! Writes of whole files are atomic: a temporary file of the right mode in
//! the same directory, synced, then renamed (or, for [`write_new`], linked)
//! into place, so a reader never sees half a file and there is never a
//! moment at which the data sits in a file with a wider mode.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of every private file created.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory created for private files.
pub const DIR_MODE: u32 = 0o700;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What a write did to an existing file's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    /// `Some((old, new))` when an existing file had group or other bits
    /// that were removed.
    pub tightened: Option<(u32, u32)>,
}

/// Create `dir` and any missing parents with mode 700. Existing
/// directories are not changed.
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(DIR_MODE);
    }
    b.create(dir)
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The mode an existing file at `path` should have once it holds private
/// data: its own owner bits within 600, nothing for group and others.
/// `None` when there is no such file.
#[cfg(unix)]
fn kept_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(meta.permissions().mode() & FILE_MODE)
}

#[cfg(unix)]
fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

/// Open options that create files with mode 600 (for callers with their own
/// needs: lock files, `create_new`).
pub fn open_options() -> OpenOptions {
    let mut opts = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(FILE_MODE);
    }
    opts
}

/// Open `path` for writing from the start (created 600 when missing,
/// parents 700; an existing file is truncated and its group and other bits
/// removed). For output that is streamed rather than written whole.
pub fn create(path: &Path) -> std::io::Result<(File, Written)> {
    create_dir_all(&parent_of(path))?;
    let before = {
        #[cfg(unix)]
        {
            mode_of(path)
        }
        #[cfg(not(unix))]
        {
            None::<u32>
        }
    };
    let f = open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let written = tighten(&f, before)?;
    Ok((f, written))
}

/// Make sure `path` exists as a private file without touching its content:
/// created empty with mode 600 when missing (parents 700), an existing
/// file's group and other bits removed. For files that another library
/// opens afterwards (the SQLite journal).
pub fn prepare(path: &Path) -> std::io::Result<Written> {
    create_dir_all(&parent_of(path))?;
    #[cfg(unix)]
    let before = mode_of(path);
    #[cfg(not(unix))]
    let before = None::<u32>;
    let f = open_options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    tighten(&f, before)
}

#[cfg(unix)]
fn tighten(f: &File, before: Option<u32>) -> std::io::Result<Written> {
    use std::os::unix::fs::PermissionsExt;
    match before {
        Some(old) if old & !FILE_MODE != 0 => {
            let new = old & FILE_MODE;
            f.set_permissions(std::fs::Permissions::from_mode(new))?;
            Ok(Written {
                tightened: Some((old, new)),
            })
        }
        _ => Ok(Written::default()),
    }
}

#[cfg(not(unix))]
fn tighten(_: &File, _: Option<u32>) -> std::io::Result<Written> {
    Ok(Written::default())
}

/// A temporary file next to `path`, created with `mode` (at most 600).
fn temp_next_to(path: &Path, mode: u32) -> std::io::Result<(PathBuf, File)> {
    let dir = parent_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode & FILE_MODE);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let f = opts.open(&tmp)?;
    Ok((tmp, f))
}

fn sync_dir(dir: &Path) {
    // Make a rename durable; not every platform can open a directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Write `data` to `path` atomically as a private file (see the module
/// rules): parents 700, mode 600 for a new file, an existing file's mode
/// kept within 600.
pub fn write(path: &Path, data: &[u8]) -> std::io::Result<Written> {
    create_dir_all(&parent_of(path))?;
    replace(path, data)
}

/// [`write`] into a directory that must exist already (a card image: a
/// directory that went away is a failed write, as EEPROM that fails).
pub fn replace(path: &Path, data: &[u8]) -> std::io::Result<Written> {
    // A symbolic link is written through (its target is replaced), and a
    // device or pipe (`--report-json /dev/stdout`) is written to as it is.
    let resolved;
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            resolved = std::fs::canonicalize(path)?;
            resolved.as_path()
        }
        _ => path,
    };
    if let Ok(m) = std::fs::metadata(path) {
        if !m.is_file() {
            let mut f = OpenOptions::new().write(true).open(path)?;
            f.write_all(data)?;
            return Ok(Written::default());
        }
    }
    let dir = parent_of(path);
    #[cfg(unix)]
    let (before, mode) = (mode_of(path), kept_mode(path).unwrap_or(FILE_MODE));
    #[cfg(not(unix))]
    let (before, mode) = (None::<u32>, FILE_MODE);
    let (tmp, mut f) = temp_next_to(path, mode)?;
    let result = (|| {
        // The umask may have taken owner bits away at creation; set exactly.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(&dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| Written {
        tightened: before
            .filter(|old| old & !FILE_MODE != 0)
            .map(|old| (old, mode)),
    })
}

/// Create `path` with `data` only if it does not exist yet, atomically: a
/// racing second process sees either nothing or the whole file, and when
/// another process created it first, theirs is kept (`Ok(false)`).
pub fn write_new(path: &Path, data: &[u8]) -> std::io::Result<bool> {
    let dir = parent_of(path);
    create_dir_all(&dir)?;
    let (tmp, mut f) = temp_next_to(path, FILE_MODE)?;
    let written = (|| {
        f.write_all(data)?;
        f.sync_all()
    })();
    drop(f);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // hard_link fails if the file exists already: keep it.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(&dir);
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// A one-line note for the operator when a write took bits away from an
/// existing file, e.g. "note: out.jsonl was mode 644; it is now 600 because
/// it holds personal data".
pub fn note(path: &Path, w: Written) -> Option<String> {
    w.tightened.map(|(old, new)| {
        format!(
            "note: {} was mode {old:o}; it is now {new:o} because it holds personal data",
            path.display()
        )
    })
}

/// Print [`note`] on stderr when there is one.
pub fn warn_tightened(path: &Path, w: Written) {
    if let Some(n) = note(path, w) {
        eprintln!("{n}");
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "cardsmith-private-{tag}-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn new_files_are_600_and_new_dirs_700() {
        let d = tmpdir("new");
        let a = d.join("a/b/c.json");
        write(&a, b"x").unwrap();
        let (mut f, _) = create(&d.join("s/stream.jsonl")).unwrap();
        f.write_all(b"y").unwrap();
        prepare(&d.join("j/journal.sqlite")).unwrap();
        assert!(write_new(&d.join("k/key"), b"z").unwrap());
        for f in ["a/b/c.json", "s/stream.jsonl", "j/journal.sqlite", "k/key"] {
            assert_eq!(mode(&d.join(f)), 0o600, "{f}");
        }
        for dir in ["a", "a/b", "s", "j", "k"] {
            assert_eq!(mode(&d.join(dir)), 0o700, "{dir}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn existing_files_are_never_loosened_and_loose_ones_are_tightened() {
        let d = tmpdir("existing");
        let strict = d.join("strict");
        std::fs::write(&strict, b"old").unwrap();
        std::fs::set_permissions(&strict, std::fs::Permissions::from_mode(0o400)).unwrap();
        let w = write(&strict, b"new").unwrap();
        assert_eq!(mode(&strict), 0o400);
        assert_eq!(w.tightened, None);
        assert_eq!(std::fs::read(&strict).unwrap(), b"new");

        let loose = d.join("loose");
        std::fs::write(&loose, b"old").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = write(&loose, b"new").unwrap();
        assert_eq!(mode(&loose), 0o600);
        assert_eq!(w.tightened, Some((0o644, 0o600)));
        assert!(note(&loose, w).unwrap().contains("was mode 644"));

        let streamed = d.join("streamed");
        std::fs::write(&streamed, b"old").unwrap();
        std::fs::set_permissions(&streamed, std::fs::Permissions::from_mode(0o664)).unwrap();
        let (_, w) = create(&streamed).unwrap();
        assert_eq!(mode(&streamed), 0o600);
        assert_eq!(w.tightened, Some((0o664, 0o600)));

        let prepared = d.join("prepared");
        std::fs::write(&prepared, b"keep").unwrap();
        std::fs::set_permissions(&prepared, std::fs::Permissions::from_mode(0o640)).unwrap();
        prepare(&prepared).unwrap();
        assert_eq!(mode(&prepared), 0o600);
        assert_eq!(std::fs::read(&prepared).unwrap(), b"keep");

        // A directory that exists is left alone.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        write(&d.join("in-existing"), b"x").unwrap();
        assert_eq!(mode(&d), 0o755);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn write_new_keeps_the_first_file() {
        let d = tmpdir("once");
        let p = d.join("key");
        assert!(write_new(&p, b"first").unwrap());
        assert!(!write_new(&p, b"second").unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn links_are_written_through_and_devices_written_to() {
        let d = tmpdir("links");
        let target = d.join("target.json");
        std::fs::write(&target, b"old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = d.join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        write(Path::new("/dev/null"), b"x").unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
