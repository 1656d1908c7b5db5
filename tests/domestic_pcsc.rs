//! The domestic card OS (issue 17) through the real pcscd: its APDU scripts
//! (apdu-scripts/domestic/) pass with `cardsmith run` on a domestic
//! simulated card behind vpcd, scriptor talks T=0 to the same card
//! (61xx, 6Cxx, GET RESPONSE by hand), `cardsmith sim --os domestic` serves
//! one, and the domestic profile names the numbers the card uses.

mod common;

use cardsmith::sim::domestic;
use cardsmith::sim::faults::Faults;
use cardsmith::sim::SimConfig;
use cardsmith::transport::pcsc::{self as pc, CardEvent};
use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[path = "script_support/mod.rs"]
mod script_support;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("apdu-scripts/domestic")
}

const ID_PIN: &str = "id_pin_block=\"246810\" FF FF";
const SIG_PIN: &str = "sig_pin_block=\"13579246\"";

/// `test` lines of a script and the scripts it includes.
fn test_lines(name: &str) -> usize {
    let text = std::fs::read_to_string(dir().join(name)).unwrap();
    text.lines()
        .map(|l| {
            if l.starts_with("test ") {
                1
            } else if let Some(inc) = l.strip_prefix("include \"") {
                test_lines(inc.trim_end_matches('"'))
            } else {
                0
            }
        })
        .sum()
}

/// Send `apdu` to the card behind vpcd directly (no pcscd) and fetch the
/// data through 61xx.
fn direct(card: &cardsmith::sim::vpcd::VpcdCard, apdu: &[u8]) -> Vec<u8> {
    let mut c = card.card.lock().unwrap();
    let r = c.transmit(apdu);
    if r.len() == 2 && r[0] == 0x61 {
        c.transmit(&[0x00, 0xC0, 0x00, 0x00, r[1]])
    } else {
        r
    }
}

#[test]
fn domestic_scripts_pass_with_cardsmith_run_through_pcscd() {
    let _g = pcsc();
    let tmp = tempfile::tempdir().unwrap();
    let junit = tmp.path().join("junit.xml");
    let card = insert(blank(SimConfig::domestic()), 0, Faults::none());
    let o = cardsmith(&[
        "run",
        "--reader",
        "0",
        "--junit",
        junit.to_str().unwrap(),
        "--secret-var",
        ID_PIN,
        "--secret-var",
        SIG_PIN,
        dir().join("perso.apdu").to_str().unwrap(),
    ]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(o.status.success(), "{out}\n{err}");
    // The card ends SECURED, its keys generated and its finger enrolled.
    assert_eq!(
        direct(&card, &[0x80, 0xCA, 0x9F, 0x70, 0x00]),
        [0x9F, 0x70, 0x01, 0x0F, 0x90, 0x00]
    );
    let point = direct(&card, &[0x80, 0x46, 0x01, 0x22, 0x00]);
    assert_eq!((point.len(), point[0]), (67, 0x04));
    assert_eq!(
        direct(&card, &[0x00, 0x21, 0x00, 0x1C]),
        [0x63, 0xC5],
        "enrolled, not verified after the session"
    );
    drop(card);
    let x = std::fs::read_to_string(&junit).unwrap();
    let cases = script_support::junit_cases(&x).unwrap_or_else(|e| panic!("{e}\n{x}"));
    assert_eq!(cases.len(), test_lines("perso.apdu"), "{x}");
    assert!(cases.len() >= 18, "{x}");
    assert!(cases.iter().all(|c| c.outcome == "passed"), "{x}");
    // The new PINs and the factory values never reach the output.
    for needle in [
        "32 34 36 38 31 30",
        "31 33 35 37 39 32",
        "31 32 33 34 35 36",
        "246810",
        "13579246",
    ] {
        for (what, text) in [("stdout", &out), ("stderr", &err)] {
            if let Some(i) = text.find(needle) {
                panic!(
                    "{needle} in {what}: {}",
                    &text[i.saturating_sub(300)..(i + 100).min(text.len())]
                );
            }
        }
        assert!(!x.contains(needle), "{needle} in JUnit");
    }
}

#[test]
fn scriptor_speaks_t0_to_the_domestic_card() {
    let _g = pcsc();
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("t0.scriptor");
    std::fs::write(
        &script,
        "# select the identity application: 61 12, a wrong Le, GET RESPONSE\n\
         00 A4 04 04 07 D3 64 00 00 10 01 01 00\n\
         00 C0 00 00 10\n\
         00 C0 00 00 12\n\
         # the factory holder PIN\n\
         00 20 00 11 08 31 32 33 34 35 36 FF FF\n\
         # extended length, chaining\n\
         00 B0 00 00 00 01 00\n\
         10 A4 00 0C 02 3F 00\n",
    )
    .unwrap();
    let card = insert(blank(SimConfig::domestic()), 0, Faults::none());
    let o = Command::new("scriptor")
        .args(["-r", &reader(0)])
        .arg(&script)
        .output()
        .expect("scriptor is installed (scripts/setup.sh)");
    drop(card);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    // An answer runs from its "< " line to the line holding " : "
    // (scriptor wraps long answers).
    let mut answers: Vec<String> = Vec::new();
    let mut open: Option<String> = None;
    for line in out.lines() {
        let part = match (&mut open, line.strip_prefix("< ")) {
            (None, Some(a)) => open.insert(a.to_string()),
            (Some(a), _) => {
                a.push(' ');
                a.push_str(line);
                a
            }
            (None, None) => continue,
        };
        if let Some((bytes, _)) = part.split_once(" : ") {
            answers.push(bytes.split_whitespace().collect::<Vec<_>>().join(" "));
            open = None;
        }
    }
    assert_eq!(answers.len(), 6, "{out}");
    assert_eq!(answers[0], "61 12", "{out}");
    assert_eq!(answers[1], "6C 12", "{out}");
    assert!(
        answers[2].starts_with("62 10 82 01 38 83 02 7F 10 84 07 D3 64"),
        "{out}"
    );
    assert!(answers[2].ends_with("90 00"), "{out}");
    assert_eq!(answers[3], "90 00", "{out}");
    assert_eq!(answers[4], "67 00", "{out}");
    assert_eq!(answers[5], "68 84", "{out}");
}

#[test]
fn cardsmith_sim_serves_a_domestic_card() {
    let _g = pcsc();
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("domestic.json");
    let mut sim = Command::new(env!("CARGO_BIN_EXE_cardsmith"))
        .args(["sim", "--os", "domestic", "--no-issuer-key", "--slots", "0"])
        .arg("--image")
        .arg(&image)
        .args(["--seconds", "60"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let present = pc::wait_for(
        Some(&reader(0)),
        CardEvent::Inserted,
        Duration::from_secs(20),
    );
    let o = present.is_ok().then(|| {
        cardsmith(&[
            "run",
            "--reader",
            "0",
            dir().join("filesystem.apdu").to_str().unwrap(),
        ])
    });
    sim.kill().unwrap();
    let sim_out = sim.wait_with_output().unwrap();
    let sim_text = String::from_utf8_lossy(&sim_out.stdout);
    let r = present.unwrap_or_else(|e| panic!("{e}\n{sim_text}"));
    assert!(
        r.atr.as_deref().unwrap_or("").starts_with("3B 0E 80 58"),
        "{r:?}"
    );
    assert!(
        sim_text.contains("ATR 3B 0E 80 58 44 4F 4D 45 53 54 49 43 71 B0 81 01"),
        "{sim_text}"
    );
    let o = o.unwrap();
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    // The image keeps the OS.
    let text = std::fs::read_to_string(&image).unwrap();
    assert!(text.contains("\"os\": \"domestic\""), "{text}");
}

#[test]
fn the_profile_names_what_the_card_uses() {
    let text = std::fs::read_to_string(dir().join("profile.toml")).unwrap();
    let p: toml::Value = toml::from_str(&text).unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
    let card = cardsmith::sim::SimCard::blank(SimConfig::domestic());
    let atr = card.atr();
    assert_eq!(
        p["card"]["atr_prefix"].as_str().unwrap(),
        hex(&atr[..atr.len() - 1])
    );
    assert_eq!(
        p["identity"]["aid"].as_str().unwrap(),
        hex(&domestic::EID_AID)
    );
    assert_eq!(
        p["identity"]["fid"].as_str().unwrap(),
        format!("{:04X}", domestic::EID_FID)
    );
    assert_eq!(p["pki"]["aid"].as_str().unwrap(), hex(&domestic::PKI_AID));
    assert_eq!(
        p["pki"]["fid"].as_str().unwrap(),
        format!("{:04X}", domestic::PKI_FID)
    );
    assert_eq!(
        p["security_domain"]["aid"].as_str().unwrap(),
        hex(&domestic::SD_AID)
    );
    assert_eq!(
        p["security_domain"]["default_kvn"].as_integer().unwrap(),
        i64::from(domestic::DEFAULT_KVN)
    );
    for (name, (reference, value)) in ["id_pin", "signature_pin"]
        .iter()
        .zip(domestic::FACTORY_PINS)
    {
        assert_eq!(
            p["pins"][name]["reference"].as_integer().unwrap(),
            i64::from(reference)
        );
        assert_eq!(p["pins"][name]["factory_value"].as_str().unwrap(), value);
    }
    let keys = p["pki"]["keys"].as_array().unwrap();
    assert_eq!(
        keys[0]["reference"].as_integer().unwrap(),
        i64::from(domestic::KEY_AUTH)
    );
    assert_eq!(
        keys[1]["reference"].as_integer().unwrap(),
        i64::from(domestic::KEY_SIGN)
    );
    let refs: Vec<i64> = p["biometric"]["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_integer().unwrap())
        .collect();
    assert_eq!(refs, domestic::BIO_REFS.map(i64::from));
    assert_eq!(
        p["biometric"]["max_minutiae"].as_integer().unwrap(),
        domestic::BIO_MAX_MINUTIAE as i64
    );
    assert_eq!(
        p["perso"]["max_update_binary"].as_integer().unwrap(),
        domestic::MAX_UPDATE as i64
    );
    // Every factory EF, with its size, under [[files]].
    let files = p["files"].as_array().unwrap();
    for (parent, fid, size) in domestic::FACTORY_EFS {
        let path = format!("{parent:04X}/{fid:04X}");
        let f = files
            .iter()
            .find(|f| f["path"].as_str() == Some(path.as_str()))
            .unwrap_or_else(|| panic!("{path} not in [[files]]"));
        assert_eq!(f["size"].as_integer().unwrap(), size as i64, "{path}");
    }
    assert_eq!(files.len(), domestic::FACTORY_EFS.len() + 2);
}

/// The host personalizes, verifies and reads a domestic card through pcscd
/// with its profile alone (issue 17): `cardsmith perso`, `verify` and `read`
/// with `--profile apdu-scripts/domestic/profile.toml`, over the card's
/// security domain, T=0 short APDUs through the real PC/SC stack.
#[test]
fn perso_verify_and_read_work_on_the_domestic_card_through_pcscd() {
    let _g = pcsc();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key: Vec<u8> = (0..16u8).map(|i| i.wrapping_mul(29) ^ 0x5A).collect();
    write_issuer_key(&data, &key);
    let scp03 = cardsmith::scp03::keyfile::Scp03Keys::locate(None, &data).unwrap();
    let env = [("CARDSMITH_DATA_DIR", data.clone())];
    let records = tmp.path().join("records.jsonl");
    let o = cardsmith_env(
        &[
            "sample-records",
            "--count",
            "1",
            "--seed",
            "17",
            "--out",
            records.to_str().unwrap(),
        ],
        &env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let record: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&records).unwrap().trim()).unwrap();
    let card = cardsmith::sim::SimCard::blank_provisioned(
        SimConfig::domestic(),
        cardsmith::sim::Provision {
            issuer_key: Some(&key),
            scp03: Some(&scp03.keys),
        },
    )
    .unwrap();
    let card = insert(card, 0, Faults::none());
    let profile = dir().join("profile.toml");
    let (profile, records) = (profile.to_str().unwrap(), records.to_str().unwrap());
    let reader = reader(0);
    let json = |o: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
    };
    let o = cardsmith_env(
        &[
            "perso",
            "--record",
            records,
            "--reader",
            &reader,
            "--profile",
            profile,
            "--json",
        ],
        &env,
    );
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let perso = json(&o);
    assert_eq!(perso["verify"]["passed"], true, "{perso}");
    // The card's own life cycle: INITIALIZED (personalized).
    assert_eq!(
        direct(&card, &[0x80, 0xCA, 0x9F, 0x70, 0x00]),
        [0x9F, 0x70, 0x01, 0x07, 0x90, 0x00]
    );
    let o = cardsmith_env(
        &[
            "verify",
            "--record",
            records,
            "--reader",
            &reader,
            "--profile",
            profile,
            "--json",
        ],
        &env,
    );
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(json(&o)["passed"], true, "{}", stdout(&o));
    let o = cardsmith_env(
        &["read", "--reader", &reader, "--profile", profile, "--json"],
        &env,
    );
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let nid = record["national_id"].as_str().unwrap();
    assert!(stdout(&o).contains(nid), "{}", stdout(&o));
    // The factory PINs never reach the output.
    for o in [&o] {
        for needle in ["12345678", "31 32 33 34 35 36 37 38"] {
            assert!(!stdout(o).contains(needle) && !stderr(o).contains(needle));
        }
    }
}
