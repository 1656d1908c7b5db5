//! Where the module finds the card profiles that tell it where things are
//! on a card (applications, certificate files, key references, PINs).
//!
//! Search order (docs/pkcs11.md):
//!
//! 1. `CARDSMITH_PKCS11_PROFILES`: a `:`-separated list of profile files or
//!    directories. When it is set, only these are used.
//! 2. `/usr/share/cardsmith/profiles`.
//! 3. `profiles/` next to the module's own file (e.g.
//!    `/usr/lib/x86_64-linux-gnu/pkcs11/profiles/`).
//! 4. The reference profile built into the module, when 2 and 3 hold none.
//!
//! A directory holds a `profile.toml` of its own, or one directory per
//! profile, each with its `profile.toml` (`profiles/reference-card/profile.toml`).
//! A profile that does not load is an error naming the file and the key,
//! and the module does not initialize: a card must never be read with a
//! layout the holder's programme did not mean.

use std::path::{Path, PathBuf};

use cardsmith_host::perso::profile::Profile;

/// The environment variable that lists profiles.
pub const ENV: &str = "CARDSMITH_PKCS11_PROFILES";
/// Where installed profiles live.
pub const INSTALLED: &str = "/usr/share/cardsmith/profiles";

/// The profile files an entry of the search path stands for.
fn files_in(entry: &Path) -> Vec<PathBuf> {
    if entry.is_file() {
        return vec![entry.to_path_buf()];
    }
    let own = entry.join("profile.toml");
    if own.is_file() {
        return vec![own];
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(entry)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().join("profile.toml"))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The directory the module's shared library was loaded from.
fn library_dir() -> Option<PathBuf> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address, a function of this library,
    // and fills `info`; `dli_fname` is a C string owned by the loader.
    let found = unsafe { libc::dladdr(library_dir as *const libc::c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: checked non-null above; the loader keeps the string alive.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    use std::os::unix::ffi::OsStrExt;
    let path = Path::new(std::ffi::OsStr::from_bytes(name.to_bytes()));
    path.parent().map(Path::to_path_buf)
}

/// The search path: explicit entries, or the installed and local ones.
pub fn search_path(env: Option<&str>) -> (Vec<PathBuf>, bool) {
    match env {
        Some(list) if !list.trim().is_empty() => (
            list.split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect(),
            true,
        ),
        _ => {
            let mut v = vec![PathBuf::from(INSTALLED)];
            if let Some(d) = library_dir() {
                v.push(d.join("profiles"));
            }
            (v, false)
        }
    }
}

/// Load every profile on the search path. An explicit entry that holds no
/// profile, or any profile that does not load, is an error.
pub fn load(env: Option<&str>) -> Result<Vec<Profile>, String> {
    let (path, explicit) = search_path(env);
    let mut out = Vec::new();
    for entry in &path {
        let files = files_in(entry);
        if files.is_empty() && explicit {
            return Err(format!(
                "{ENV}: {}: no profile.toml there (expected a profile file, or a directory holding profile.toml or */profile.toml)",
                entry.display()
            ));
        }
        for f in files {
            out.push(Profile::load(&f).map_err(|e| e.to_string())?);
        }
    }
    if out.is_empty() {
        out.push(Profile::reference());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_profile(dir: &Path, text: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("filesystem.apdu"),
            cardsmith_host::perso::profile::REFERENCE_FILESYSTEM,
        )
        .unwrap();
        let p = dir.join("profile.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn explicit_entries_files_and_directories() {
        let d = tempfile::tempdir().unwrap();
        let reference = cardsmith_host::perso::profile::REFERENCE_PROFILE;
        let a = write_profile(&d.path().join("all/a"), reference);
        write_profile(
            &d.path().join("all/b"),
            &reference.replace("F043534D504B01", "F043534D504B02"),
        );
        let v = load(Some(a.to_str().unwrap())).unwrap();
        assert_eq!(v.len(), 1);
        let v = load(Some(d.path().join("all").to_str().unwrap())).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].pki_aid, vec![0xF0, 0x43, 0x53, 0x4D, 0x50, 0x4B, 0x02]);
    }

    #[test]
    fn a_bad_profile_or_an_empty_entry_is_named() {
        let d = tempfile::tempdir().unwrap();
        let reference = cardsmith_host::perso::profile::REFERENCE_PROFILE;
        let bad = write_profile(
            &d.path().join("bad"),
            &reference.replace("aid = \"F043534D504B01\"", "aid = \"F0\""),
        );
        let e = load(Some(bad.to_str().unwrap())).unwrap_err();
        assert!(e.contains("profile.toml") && e.contains("pki.aid"), "{e}");
        let empty = d.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let e = load(Some(empty.to_str().unwrap())).unwrap_err();
        assert!(e.contains(ENV) && e.contains("empty"), "{e}");
    }

    #[test]
    fn without_the_variable_the_installed_places_then_the_reference() {
        let (path, explicit) = search_path(None);
        assert!(!explicit);
        assert_eq!(path[0], PathBuf::from(INSTALLED));
        let (_, explicit) = search_path(Some(""));
        assert!(!explicit);
    }
}
