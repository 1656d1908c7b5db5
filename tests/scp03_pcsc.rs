//! SCP03 through the real pcscd with the simulated card in vpcd: the
//! `scp03` commands, a tampered MAC, a wrong key. Personalization over
//! SCP03 through pcscd is in `perso_pcsc.rs`.

mod common;

use cardsmith::scp03::keyfile::Scp03Keys;
use cardsmith::scp03::link;
use cardsmith::sim::faults::Faults;
use cardsmith::sim::{Provision, SimCard, SimConfig, SD_AUTH_TRY_LIMIT};
use common::*;
use serde_json::Value;
use std::path::Path;

const READER: &str = "Virtual PCD 00 00";

fn private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

struct Setup {
    dir: tempfile::TempDir,
    key: Vec<u8>,
    scp03: Scp03Keys,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let key: Vec<u8> = (0..16u8).map(|i| i ^ 0xA5).collect();
        let data = dir.path().join("data");
        write_issuer_key(&data, &key);
        let scp03 = Scp03Keys::locate(None, &data).unwrap();
        Setup { dir, key, scp03 }
    }
    fn image(&self) -> std::path::PathBuf {
        self.dir.path().join("card.json")
    }
    fn card(&self) -> SimCard {
        SimCard::open_image_provisioned(
            &self.image(),
            SimConfig::default(),
            Provision {
                issuer_key: Some(&self.key),
                scp03: Some(&self.scp03.keys),
            },
        )
        .unwrap()
    }
    fn run(&self, args: &[&str]) -> std::process::Output {
        cardsmith_env(
            args,
            &[("CARDSMITH_DATA_DIR", self.dir.path().join("data"))],
        )
    }
    /// `scp03 check` on the card in the reader, with `keys` or the default.
    fn check(&self, keys: Option<&Path>) -> std::process::Output {
        let mut args = vec!["scp03", "check", "--reader", READER];
        if let Some(k) = keys {
            args.extend(["--scp03-keys", k.to_str().unwrap()]);
        }
        self.run(&args)
    }
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_str(stdout(o).lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
}

/// `scp03 check` opens the channel with the data directory's keys; with
/// another batch's keys it fails with exit 4 before EXTERNAL AUTHENTICATE,
/// leaving the card's counter as it was; `scp03 rotate` replaces the keys
/// and proves the new ones.
#[test]
fn check_and_rotate_through_pcscd() {
    let _g = pcsc();
    let s = Setup::new();
    let card = insert(s.card(), 0, Faults::default());

    let o = s.run(&["--json", "scp03", "check", "--reader", READER]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let v = json(&o);
    assert_eq!(v["kvn"], "30", "{v}");
    assert_eq!(v["level"], "C-MAC C-DECRYPTION R-MAC R-ENCRYPTION", "{v}");
    assert_eq!(v["sequence_counter"], 1, "{v}");

    let wrong = s.dir.path().join("wrong-keys");
    private(
        &wrong,
        "kvn = 30\nmaster = 000102030405060708090A0B0C0D0E0F\n",
    );
    let o = s.check(Some(&wrong));
    assert_eq!(o.status.code(), Some(4), "{}\n{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("EXTERNAL AUTHENTICATE was not sent"), "{err}");
    assert!(!err.contains("000102030405"), "{err}");
    // A key file others can read is refused before any card is touched.
    let open = s.dir.path().join("open-keys");
    std::fs::write(&open, "kvn = 30\nkey = 000102030405060708090A0B0C0D0E0F\n").unwrap();
    let o = s.check(Some(&open));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));

    let new = s.dir.path().join("new-keys");
    private(
        &new,
        "kvn = 31\nenc = 101112131415161718191A1B1C1D1E1F\nmac = 202122232425262728292A2B2C2D2E2F\ndek = 303132333435363738393A3B3C3D3E3F\n",
    );
    let o = s.run(&[
        "--json",
        "scp03",
        "rotate",
        "--reader",
        READER,
        "--new-keys",
        new.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let v = json(&o);
    assert_eq!(v["result"], "rotated", "{v}");
    assert_eq!(v["kvn"], "31", "{v}");
    assert_eq!(v["kcv"].as_array().map(Vec::len), Some(3), "{v}");
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!out.contains("101112") && !out.contains("303132"), "{out}");

    // The old keys no longer open it; the new ones do.
    let o = s.check(None);
    assert_eq!(o.status.code(), Some(4), "{}\n{}", stdout(&o), stderr(&o));
    let o = s.check(Some(&new));
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    // The same keys from the environment, `;`-separated.
    let o = cardsmith_env(
        &["scp03", "check", "--reader", READER],
        &[
            ("CARDSMITH_DATA_DIR", s.dir.path().join("data").display().to_string()),
            (
                "CARDSMITH_SCP03_KEYS",
                "kvn=31; enc=101112131415161718191A1B1C1D1E1F; mac=202122232425262728292A2B2C2D2E2F; dek=303132333435363738393A3B3C3D3E3F".to_string(),
            ),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    card.remove().unwrap();
    let info = SimCard::open_image(&s.image(), SimConfig::default())
        .unwrap()
        .security_domain()
        .unwrap();
    assert_eq!(info.kvn, 0x31);
    // No EXTERNAL AUTHENTICATE ever failed: the wrong keys were caught first.
    assert_eq!(info.auth_tries_left, SD_AUTH_TRY_LIMIT);
}

/// Through pcscd, a command with a changed MAC byte is refused with 6982
/// and ends the session.
#[test]
fn tampered_mac_through_pcscd() {
    let _g = pcsc();
    let s = Setup::new();
    let card = insert(s.card(), 0, Faults::default());
    let mut ch = channel(READER);
    let opts = cardsmith::perso::profile::Profile::reference()
        .security_domain
        .unwrap()
        .options();
    let (mut l, _) = ch
        .run(|ex| link::handshake(ex, &s.scp03, &opts))
        .expect("handshake");
    let plain = cardsmith::hex::parse("00A4000C023F00").unwrap();
    let mut w = l.wrap(&plain).unwrap();
    let n = w.len();
    w[n - 3] ^= 0x80;
    let r = ch.run(|ex| ex.transmit_bytes(&w, false)).unwrap();
    assert_eq!(u16::from_be_bytes(r.sw.bytes()), 0x6982, "{}", r.sw);
    let good = l.wrap(&plain).unwrap();
    let r = ch.run(|ex| ex.transmit_bytes(&good, false)).unwrap();
    assert_eq!(
        u16::from_be_bytes(r.sw.bytes()),
        0x6982,
        "aborted: {}",
        r.sw
    );
    drop(ch);
    card.remove().unwrap();
}
