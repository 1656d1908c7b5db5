//! Shared by the activation tests: a batch of sample records with a
//! different live capture of each enrolled finger (rotated, shifted,
//! partial — the same generator as `sample-records --live-captures`), and
//! an impostor's capture labelled with the same finger.
#![allow(dead_code)]

use cardsmith_host::biometric::FingerPosition;
use cardsmith_host::perso::input;
use cardsmith_host::perso::input::IsoTemplates;
use cardsmith_host::perso::samples::{synthetic_capture, ENROLMENT_CAPTURE, LIVE_CAPTURE};
use cardsmith_host::record::{self, Record, Request};
use std::path::{Path, PathBuf};

pub struct Holder {
    pub record: Record,
    /// The first enrolled finger and a live capture of it (a file).
    pub finger: FingerPosition,
    pub live: PathBuf,
    /// Someone else's finger, labelled as the same finger.
    pub impostor: PathBuf,
}

impl Holder {
    pub fn id(&self) -> &str {
        self.record.record_id()
    }
    pub fn office(&self) -> String {
        self.record.issuing_office().code()
    }
    pub fn nid(&self) -> &str {
        self.record.national_id()
    }
}

/// Write `count` sample records (seed `seed`) to `dir/batch.jsonl` and each
/// holder's live and impostor captures to `dir/captures/`.
pub fn batch(dir: &Path, count: usize, seed: u64) -> (PathBuf, Vec<Holder>) {
    let mut persons: Vec<(u64, FingerPosition)> = Vec::new();
    let lines = record::sample_records(count, seed, input::today(), &mut |person, pos| {
        persons.push((person, pos));
        synthetic_capture(person, pos, ENROLMENT_CAPTURE ^ person)
    });
    let path = dir.join("batch.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write batch");
    let loaded = record::load_records(&path, &IsoTemplates { max_minutiae: 60 }).expect("load");
    assert!(loaded.bad.is_empty(), "{:?}", loaded.bad);
    let caps = dir.join("captures");
    std::fs::create_dir_all(&caps).expect("captures dir");
    let mut it = persons.iter();
    let mut out = Vec::new();
    for (_, rec) in loaded.good {
        let fingers: Vec<(u64, FingerPosition)> = (0..rec.fingerprints().len())
            .filter_map(|_| it.next().copied())
            .collect();
        let (person, pos) = fingers[0];
        let live = caps.join(format!("{}-{}.iso", rec.record_id(), pos.as_str()));
        std::fs::write(&live, synthetic_capture(person, pos, LIVE_CAPTURE ^ person)).expect("live");
        let other = person.wrapping_add(0x9E37_79B9);
        let impostor = caps.join(format!("{}-impostor.iso", rec.record_id()));
        std::fs::write(
            &impostor,
            synthetic_capture(other, pos, LIVE_CAPTURE ^ other),
        )
        .expect("impostor");
        out.push(Holder {
            record: rec,
            finger: pos,
            live,
            impostor,
        });
    }
    (path, out)
}

/// First-issue holders (the ones a counter activates without a replacement request).
pub fn first_issues(h: &[Holder]) -> Vec<&Holder> {
    h.iter()
        .filter(|h| *h.record.request() == Request::FirstIssue)
        .collect()
}

/// A file with `lines`, mode 600 (a PIN file).
pub fn pins_file(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").expect("pins");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    p
}
