//! Third-party PC/SC clients against the simulated card: if OpenSC's
//! opensc-tool, pcsc-tools' scriptor and pyscard all get the answers a real
//! card would give, the card (and vpcd connector) is honest ISO 7816.

mod common;

use cardsmith::sim::faults::Faults;
use cardsmith::sim::SimConfig;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn opensc_tool_sends_apdus() {
    let _g = pcsc();
    let _card = insert(blank(SimConfig::default()), 0, Faults::none());
    let o = Command::new("opensc-tool")
        .args([
            "-r",
            &reader(0),
            "-s",
            "00 A4 00 04 02 3F 00 00",
            "-s",
            "00 84 00 00 08",
        ])
        .output()
        .expect("opensc-tool is installed (scripts/setup.sh)");
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    let received: Vec<&str> = out.lines().filter(|l| l.starts_with("Received")).collect();
    assert_eq!(received.len(), 2, "{out}");
    assert!(
        received.iter().all(|l| l.contains("SW1=0x90, SW2=0x00")),
        "{out}"
    );
    assert!(out.contains("62 "), "FCP returned: {out}");
}

#[test]
fn scriptor_runs_a_script() {
    let _g = pcsc();
    let _card = insert(blank(SimConfig::default()), 0, Faults::none());
    let mut child = Command::new("scriptor")
        .args(["-r", &reader(0)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("scriptor is installed (scripts/setup.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"# select MF\n00 A4 00 04 02 3F 00 00\n00 84 00 00 08\n00 A4 00 0C 02 12 34\nexit\n",
        )
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    // scriptor wraps long answers over several lines: an answer runs from
    // its "< " line up to the next "> " line.
    let mut answers: Vec<String> = Vec::new();
    for line in out.lines() {
        if let Some(a) = line.strip_prefix("< ") {
            answers.push(a.to_string());
        } else if line.starts_with("> ") {
            continue;
        } else if let Some(last) = answers.last_mut() {
            last.push(' ');
            last.push_str(line);
        }
    }
    assert_eq!(answers.len(), 3, "{out}");
    assert!(
        answers[0].starts_with("62 ") && answers[0].contains("90 00"),
        "{out}"
    );
    assert!(answers[1].contains("90 00"), "{out}");
    assert!(answers[2].contains("6A 82"), "{out}");
}

#[test]
fn pyscard_talks_to_the_card() {
    let _g = pcsc();
    let _card = insert(blank(SimConfig::default()), 0, Faults::none());
    let script = r#"
from smartcard.System import readers
r = [x for x in readers() if str(x) == "Virtual PCD 00 00"][0]
c = r.createConnection()
c.connect()
print("ATR", " ".join("%02X" % b for b in c.getATR()))
data, sw1, sw2 = c.transmit([0x00, 0xA4, 0x00, 0x04, 0x02, 0x3F, 0x00, 0x00])
print("SELECT %02X%02X %d" % (sw1, sw2, len(data)))
data, sw1, sw2 = c.transmit([0x00, 0x84, 0x00, 0x00, 0x10])
print("CHALLENGE %02X%02X %d" % (sw1, sw2, len(data)))
data, sw1, sw2 = c.transmit([0x00, 0x20, 0x00, 0x05, 0x02, 0x31, 0x32])
print("VERIFY %02X%02X" % (sw1, sw2))
"#;
    let o = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .output()
        .expect("Debian python3 with python3-pyscard");
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    assert!(out.contains("ATR 3B"), "{out}");
    assert!(out.contains("SELECT 9000"), "{out}");
    assert!(out.contains("CHALLENGE 9000 16"), "{out}");
    assert!(out.contains("VERIFY 6A88"), "unknown PIN reference: {out}");
}
