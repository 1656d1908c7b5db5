//! Through the real pcscd: every file cardsmith creates with a fresh data
//! directory (sample records and captures, perso, the line with its journal
//! and reports, read with the photo, the counter, script transcripts) is
//! mode 600 in 700 directories; and the JSON error documents of the exit
//! codes that need a card (4: the card says no, 5: a transport failure).

mod common;

use cardsmith::cli::perso::{CardArgs, SideFromArgs};
use cardsmith::perso::side::IssuerSide;
use cardsmith::sim::faults::Faults;
use cardsmith::sim::feeder::{FeedOptions, Feeder};
use cardsmith::sim::timing::Timing;
use cardsmith::sim::{SimCard, SimConfig};
use serde_json::Value;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const COUNTER: &str = "Virtual PCD 00 00";

fn run(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cardsmith"));
    c.args(args)
        .env("CARDSMITH_DATA_DIR", data)
        .env_remove("CARDSMITH_ISSUER_KEY")
        .env_remove("CARDSMITH_SCP03_KEYS")
        .env_remove("CARDSMITH_OPERATOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run cardsmith");
    if let Some(mut si) = child.stdin.take() {
        if let Some(text) = stdin {
            si.write_all(text.as_bytes()).expect("stdin");
        }
    }
    child.wait_with_output().expect("wait")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(0), "{what}:\n{}", text(o));
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

/// Every directory under `dir` (and `dir`) with its mode, and every file.
fn walk(dir: &Path, dirs: &mut Vec<PathBuf>, files: &mut Vec<PathBuf>) {
    dirs.push(dir.to_path_buf());
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            walk(&p, dirs, files);
        } else {
            files.push(p);
        }
    }
}

#[test]
fn every_file_cardsmith_creates_is_private() {
    let _guard = common::pcsc_lines();
    let tmp = tempfile::tempdir().expect("tempdir");
    // The data directory does not exist yet: cardsmith makes it.
    let data = tmp.path().join("data");

    // sample-records: the batch and the live captures.
    let batch = data.join("batch.jsonl");
    let captures = data.join("captures");
    let o = run(
        &data,
        &[
            "sample-records",
            "--count",
            "3",
            "--seed",
            "21",
            "--out",
            s(&batch),
            "--live-captures",
            s(&captures),
        ],
        None,
    );
    ok(&o, "sample-records");
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(&batch)
            .expect("batch")
            .lines()
            .next()
            .expect("a record"),
    )
    .expect("json");
    assert_eq!(first["request"]["type"], "first_issue", "{first}");

    // perso and read on a simulated card kept in the data directory.
    let one = data.join("one.json");
    ok(
        &run(
            &data,
            &[
                "sample-records",
                "--count",
                "1",
                "--seed",
                "9",
                "--out",
                s(&one),
            ],
            None,
        ),
        "sample-records --out",
    );
    let image = data.join("perso-card.json");
    ok(
        &run(
            &data,
            &["perso", "--record", s(&one), "--sim-image", s(&image)],
            None,
        ),
        "perso",
    );
    let photo = data.join("holder.jpg");
    ok(
        &run(
            &data,
            &["read", "--sim-image", s(&image), "--photo", s(&photo)],
            None,
        ),
        "read",
    );

    // The line, through pcscd, with the card handler feeding the hopper.
    use cardsmith::sim::line_readers::{line_reader_addr, line_reader_name};
    let side = IssuerSide::load(&CardArgs {
        data_dir: Some(data.clone()),
        ..CardArgs::default()
    })
    .expect("issuer side");
    let hopper = data.join("hopper");
    let feeder = Feeder::start(FeedOptions {
        readers: vec![(line_reader_name(0), line_reader_addr(0))],
        out_dir: hopper.clone(),
        count: None,
        config: SimConfig::default(),
        timing: Some(Timing::FAST),
        issuer_key: Some(side.key.expose().to_vec()),
        scp03: side.scp03.as_ref().map(|k| k.keys.clone()),
        handling: Duration::from_millis(100),
    })
    .expect("feeder");
    let o = run(
        &data,
        &[
            "line",
            "run",
            s(&batch),
            "--reader",
            "Cardsmith Line 01",
            "--plain",
            "--operator",
            "line-tester",
        ],
        None,
    );
    feeder.stop();
    ok(&o, "line run");

    // The counter: ship the first record's card and activate it.
    let id = first["record_id"].as_str().expect("id");
    let office = first["issuing_office"]["code"].as_str().expect("office");
    let finger = first["fingerprints"][0]["position"]
        .as_str()
        .expect("finger");
    ok(
        &run(
            &data,
            &["activate", "ship", "--office", office, "--record", id],
            None,
        ),
        "ship",
    );
    let journal =
        cardsmith::register::sqlite::SqliteJournal::open(&data.join("line/journal.sqlite"))
            .expect("journal");
    let card_image = std::fs::read_dir(&hopper)
        .expect("hopper")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            let c = SimCard::open_image(p, SimConfig::default()).expect("image");
            let serial = cardsmith::hex::compact(&c.serial());
            use cardsmith::register::journal::Journal as _;
            matches!(journal.card(&serial).expect("journal"),
                cardsmith::register::journal::CardKnown::Good { record_id, .. } if record_id == id)
        })
        .expect("the first record's card");
    drop(journal);
    let card = SimCard::open_image(&card_image, SimConfig::default()).expect("image");
    let served = common::insert(card, 0, Faults::none());
    let template = captures.join(format!("{id}-{finger}.iso"));
    let o = run(
        &data,
        &[
            "activate",
            "card",
            "--office",
            office,
            "--reader",
            COUNTER,
            "--template",
            s(&template),
            "--pins-from-fd",
            "0",
            "--operator",
            "clerk7",
        ],
        Some("480913\n480913\n73920461\n73920461\n"),
    );
    served.remove().expect("remove the card");
    ok(&o, "activate card");
    assert!(text(&o).contains("Photo saved to"), "{}", text(&o));

    // Script reports and transcripts.
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("apdu-scripts/smoke.apdu");
    let transcript = data.join("transcript.json");
    ok(
        &run(
            &data,
            &[
                "run",
                "--sim",
                "--record",
                s(&transcript),
                "--report-json",
                s(&data.join("report.json")),
                "--junit",
                s(&data.join("junit.xml")),
                s(&smoke),
            ],
            None,
        ),
        "run",
    );
    let o = run(
        &data,
        &[
            "replay",
            s(&transcript),
            "--out",
            s(&data.join("replayed.json")),
        ],
        None,
    );
    assert!(matches!(o.status.code(), Some(0) | Some(4)), "{}", text(&o));

    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    walk(&data, &mut dirs, &mut files);
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(&data)
                .expect("under data")
                .display()
                .to_string()
        })
        .collect();
    // What the steps above must have left.
    for want in [
        "batch.jsonl",
        "one.json",
        "issuer-key",
        "scp03-keys",
        "perso-card.json",
        "holder.jpg",
        "line/journal.sqlite",
        "line/reports/batch-1.json",
        "line/reports/batch-1.csv",
        "line/reports/batch-1.html",
        "transcript.json",
        "report.json",
        "junit.xml",
        "replayed.json",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    for prefix in ["captures/", "hopper/", "counter/photos/"] {
        assert!(
            names.iter().any(|n| n.starts_with(prefix)),
            "nothing in {prefix}: {names:?}"
        );
    }
    let mut wrong = Vec::new();
    for d in &dirs {
        if mode(d) != 0o700 {
            wrong.push(format!("directory {} is {:o}", d.display(), mode(d)));
        }
    }
    for (f, n) in files.iter().zip(&names) {
        // The CA's and the document signer's certificates are public.
        let public = matches!(n.as_str(), "ca/ca-cert.pem" | "ca/ds-cert.pem");
        let want = if public { 0o644 } else { 0o600 };
        if mode(f) != want {
            wrong.push(format!("{n} is {:o}, expected {want:o}", mode(f)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// One JSON document on stdout: the error's, with the exit code.
fn error_doc(o: &Output, code: i32, kind: &str) -> Value {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut docs = serde_json::Deserializer::from_str(&out).into_iter::<Value>();
    let d = docs
        .next()
        .unwrap_or_else(|| panic!("no JSON on stdout: {}", text(o)))
        .expect("JSON");
    assert!(docs.next().is_none(), "more than one document: {out}");
    assert_eq!(d["error"]["exit_code"], code, "{d}");
    assert_eq!(d["error"]["kind"], kind, "{d}");
    assert!(d["error"]["message"].is_string(), "{d}");
    d
}

#[test]
fn card_refusals_and_transport_failures_are_json_documents() {
    let _guard = common::pcsc();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");

    // Exit 4: the card answers an error status word.
    let served = common::insert(SimCard::blank(SimConfig::default()), 0, Faults::none());
    let o = run(
        &data,
        &["send", "--json", "--reader", COUNTER, "00 B0 00 00 01"],
        None,
    );
    let d = error_doc(&o, 4, "card_status");
    assert!(d["error"]["sw"].is_string(), "{d}");
    assert!(d["responses"].is_array(), "the responses are kept: {d}");
    // A script whose command fails at the transport level is below; an
    // SCP03 check with keys that are not the card's is refused (exit 4).
    let keys = tmp.path().join("other.keys");
    std::fs::write(
        &keys,
        "kvn = 30\nmaster = 000102030405060708090A0B0C0D0E0F\n",
    )
    .expect("keys");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let o = run(
        &data,
        &[
            "scp03",
            "check",
            "--json",
            "--reader",
            COUNTER,
            "--scp03-keys",
            s(&keys),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let _: Value = serde_json::from_str(out.trim()).expect("one JSON document");

    // Exit 5: the card is held exclusively by another process (a PC/SC
    // sharing violation: a transport failure, not an absence).
    let held = cardsmith::transport::pcsc::PcscTransport::connect(
        Some(COUNTER),
        cardsmith::transport::pcsc::ConnectOptions {
            exclusive: true,
            protocol: None,
        },
    )
    .expect("hold the card exclusively");
    let o = run(
        &data,
        &["send", "--json", "--reader", COUNTER, "00 84 00 00 08"],
        None,
    );
    let d = error_doc(&o, 5, "transport");
    assert_eq!(d["error"]["reader"], COUNTER, "{d}");
    let o = run(&data, &["read", "--json", "--reader", COUNTER], None);
    error_doc(&o, 5, "transport");
    let o = run(
        &data,
        &["scp03", "check", "--json", "--reader", COUNTER],
        None,
    );
    error_doc(&o, 5, "transport");
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("apdu-scripts/smoke.apdu");
    let o = run(
        &data,
        &["run", "--json", "--reader", COUNTER, s(&smoke)],
        None,
    );
    error_doc(&o, 5, "transport");
    drop(held);
    served.remove().expect("remove");
}
