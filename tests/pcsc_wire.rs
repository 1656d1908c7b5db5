//! The wire, end to end: the real `cardsmith` binary and the library's PC/SC
//! transport, through the real pcscd, to the simulated card on the vpcd
//! virtual reader.

mod common;

use cardsmith::apdu::{cmd, Command, StatusWord};
use cardsmith::secret::Secret;
use cardsmith::sim::faults::Faults;
use cardsmith::sim::{SimConfig, SimProtocol};
use cardsmith::transport::pcsc::{ConnectOptions, PcscTransport};
use cardsmith::transport::{Channel, ExchangeError, ExchangeOptions, Protocol, TransportError};
use common::*;
use serde_json::Value;
use std::time::Duration;

const CREATE_DF: &str =
    "00 E0 00 00 1A 62 18 82 01 38 83 02 DF 01 84 07 A0 00 00 00 01 02 03 8A 01 03 8C 03 03 00 00";
const CREATE_EF: &str = "00 E0 00 00 13 62 11 80 02 01 00 82 01 01 83 02 EF 01 8A 01 03 8C 01 00";
const CREATE_PIN: &str = "00 DA 01 01 0C 80 04 31 32 33 34 81 01 03 83 01 04";

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
}

fn connect(slot: u16) -> Channel {
    let t = PcscTransport::connect(Some(&reader(slot)), ConnectOptions::default()).unwrap();
    Channel::new(Box::new(t), ExchangeOptions::default())
}

#[test]
fn readers_lists_virtual_readers_and_sees_the_card() {
    let _g = pcsc();
    let _card = insert(blank(SimConfig::default()), 0, Faults::none());
    let o = cardsmith(&["readers", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let rs = v["readers"].as_array().unwrap();
    let r0 = rs
        .iter()
        .find(|r| r["name"] == "Virtual PCD 00 00")
        .unwrap();
    let r1 = rs
        .iter()
        .find(|r| r["name"] == "Virtual PCD 00 01")
        .unwrap();
    assert_eq!(r0["card_present"], true);
    assert_eq!(r1["card_present"], false);
    let text = stdout(&cardsmith(&["readers"]));
    assert!(
        text.contains("Virtual PCD 00 00  [card present  3B"),
        "{text}"
    );
}

#[test]
fn atr_from_the_reader_decodes() {
    let _g = pcsc();
    let _card = insert(blank(SimConfig::default()), 0, Faults::none());
    let o = cardsmith(&["atr", "--reader", "0", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["atr"]["defects"].as_array().unwrap().len(), 0, "{v}");
    let o = cardsmith(&["atr", "--reader", "Virtual PCD 00 00"]);
    let text = stdout(&o);
    assert!(text.contains("T=1"), "{text}");
}

#[test]
fn send_select_mf_and_get_challenge() {
    let _g = pcsc();
    let _card = insert(blank(SimConfig::default()), 0, Faults::none());
    let o = cardsmith(&[
        "send",
        "--reader",
        "0",
        "--json",
        "00 A4 00 04 02 3F 00 00",
        "00 84 00 00 08",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let rs = v["responses"].as_array().unwrap();
    assert_eq!(rs[0]["sw"], "9000");
    assert!(
        rs[0]["data"].as_str().unwrap().starts_with("62 "),
        "FCP template: {v}"
    );
    assert!(rs[0]["tlv"].is_array(), "FCP decoded as TLV: {v}");
    assert_eq!(rs[1]["sw"], "9000");
    assert_eq!(rs[1]["data"].as_str().unwrap().split(' ').count(), 8);
    // Text output names the status meaning and shows the TLV tree and a time.
    let o = cardsmith(&["send", "--reader", "0", "00A4000402 3F00 00"]);
    let text = stdout(&o);
    assert!(text.contains("9000 (normal processing)"), "{text}");
    assert!(text.contains(" ms"), "{text}");
    assert!(text.contains("62 ("), "TLV tree: {text}");
}

#[test]
fn create_update_read_round_trip() {
    let _g = pcsc();
    let _card = insert(blank(SimConfig::default()), 0, Faults::none());
    let o = cardsmith(&[
        "send",
        "--reader",
        "0",
        "--json",
        CREATE_DF,
        CREATE_EF,
        "00 D6 00 00 0B 68 65 6C 6C 6F 20 63 61 72 64 21",
        "00 B0 00 00 0B",
        "00 A4 04 0C 07 A0 00 00 00 01 02 03",
        "00 A4 02 0C 02 EF 01",
        "00 B0 00 06 05",
    ]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let v = json(&o);
    let rs = v["responses"].as_array().unwrap();
    assert!(rs.iter().all(|r| r["sw"] == "9000"), "{v}");
    assert_eq!(rs[3]["data"], "68 65 6C 6C 6F 20 63 61 72 64 21");
    assert_eq!(rs[6]["data"], "63 61 72 64 21");
}

#[test]
fn wrong_pin_then_blocked_pin() {
    let _g = pcsc();
    let _card = insert(blank(SimConfig::default()), 0, Faults::none());
    let o = cardsmith(&["send", "--reader", "0", "--secret", CREATE_PIN]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stdout(&o).contains("31 32 33 34"),
        "PIN leaked: {}",
        stdout(&o)
    );
    let wrong = "00 20 00 01 04 39 39 39 39";
    let o = cardsmith(&["send", "--reader", "0", "--secret", "--json", wrong]);
    assert_eq!(o.status.code(), Some(4), "error status exit code");
    let v = json(&o);
    assert_eq!(v["responses"][0]["sw"], "63C2");
    assert!(!stdout(&o).contains("39 39 39 39"), "PIN leaked");
    let text = stdout(&cardsmith(&["send", "--reader", "0", "--secret", wrong]));
    assert!(
        text.contains("63C1 (verification failed, 1 tries left)"),
        "{text}"
    );
    let o = cardsmith(&["send", "--reader", "0", "--secret", "--json", wrong]);
    assert_eq!(json(&o)["responses"][0]["sw"], "63C0");
    // Blocked: even the right PIN is refused.
    let o = cardsmith(&[
        "send",
        "--reader",
        "0",
        "--secret",
        "--json",
        "00 20 00 01 04 31 32 33 34",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(json(&o)["responses"][0]["sw"], "6983");
    let text = stdout(&cardsmith(&[
        "send",
        "--reader",
        "0",
        "00 20 00 01 04 31 32 33 34",
    ]));
    assert!(
        text.contains("6983 (authentication method blocked)"),
        "{text}"
    );
}

#[test]
fn exit_codes_distinguish_failures() {
    let _g = pcsc();
    // Bad hex: usage error with the column.
    let o = cardsmith(&["send", "--reader", "0", "00 A4 0G 00"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("column 8"), "{}", stderr(&o));
    // No card in the reader.
    let o = cardsmith(&["send", "--reader", "1", "00 A4 00 00"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // Unknown reader.
    let o = cardsmith(&["send", "--reader", "Gemalto", "00 A4 00 00"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Virtual PCD 00 00"),
        "lists readers: {}",
        stderr(&o)
    );
    // Ambiguous reader.
    let o = cardsmith(&["send", "--reader", "virtual", "00 A4 00 00"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("several readers"), "{}", stderr(&o));
    // Error status from the card.
    let _card = insert(blank(SimConfig::default()), 0, Faults::none());
    let o = cardsmith(&["send", "--reader", "0", "00 A4 00 0C 02 12 34"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stdout(&o).contains("6A82 (file or application not found)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn get_response_and_wrong_le_over_pcsc() {
    let _g = pcsc();
    let cfg = SimConfig {
        force_get_response: true,
        ..SimConfig::default()
    };
    let _card = insert(blank(cfg), 0, Faults::none());
    let mut ch = connect(0);
    let (fcp, wire) = ch
        .run(|ex| -> Result<_, ExchangeError> {
            let r = ex.transmit(&cmd::select_mf(cmd::SelectReturn::Fcp))?;
            Ok((r, ex.take_trace()))
        })
        .unwrap();
    assert_eq!(fcp.sw, StatusWord::Ok);
    assert_eq!(fcp.data.first(), Some(&0x62));
    assert!(wire.len() >= 2, "61xx then GET RESPONSE: {wire:?}");
    assert!(wire[1].command.starts_with("00 C0 00 00"), "{wire:?}");
    // Raw: the 61xx is handed back.
    ch.opts = ExchangeOptions::raw();
    let r = ch
        .run(|ex| ex.transmit(&cmd::select_mf(cmd::SelectReturn::Fcp)))
        .unwrap();
    assert!(matches!(r.sw, StatusWord::MoreData { .. }), "{r:?}");
    // 6Cxx on a too-small Le: re-sent with the exact length.
    ch.opts = ExchangeOptions::default();
    let small = cmd::select_mf(cmd::SelectReturn::Fcp).with_ne(2);
    let r = ch.run(|ex| ex.transmit(&small)).unwrap();
    assert_eq!(r.sw, StatusWord::Ok);
    assert_eq!(r.data, fcp.data);
}

fn big_file_round_trip(ch: &mut Channel, size: usize) -> (Vec<u8>, usize) {
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let fcp_body = {
        let mut v = vec![0x80, 0x02, (size >> 8) as u8, size as u8];
        v.extend_from_slice(&[0x82, 0x01, 0x01, 0x83, 0x02, 0xEF, 0x02, 0x8A, 0x01, 0x03]);
        v
    };
    let mut fcp = vec![0x62, fcp_body.len() as u8];
    fcp.extend_from_slice(&fcp_body);
    ch.run(|ex| -> Result<_, ExchangeError> {
        assert_eq!(
            ex.transmit(&cmd::select_mf(cmd::SelectReturn::Nothing))?.sw,
            StatusWord::Ok
        );
        assert_eq!(ex.transmit(&cmd::create_file(&fcp))?.sw, StatusWord::Ok);
        ex.update_binary(0, &data)?;
        let r = ex.read_binary(0, size)?;
        Ok((r, ex.trace().len()))
    })
    .map(|(read, n)| {
        assert_eq!(read, data);
        (read, n)
    })
    .unwrap()
}

#[test]
fn extended_length_over_pcsc() {
    let _g = pcsc();
    let _card = insert(blank(SimConfig::default()), 0, Faults::none());
    let mut ch = connect(0);
    assert!(
        ch.caps().extended_length,
        "sim ATR announces extended length"
    );
    let (_, apdus) = big_file_round_trip(&mut ch, 3000);
    // SELECT, CREATE, one extended UPDATE, one extended READ.
    assert_eq!(apdus, 4);
}

#[test]
fn chaining_over_pcsc_when_no_extended_length() {
    let _g = pcsc();
    let cfg = SimConfig {
        extended_length: false,
        ..SimConfig::default()
    };
    let _card = insert(blank(cfg), 0, Faults::none());
    let mut ch = connect(0);
    assert!(!ch.caps().extended_length);
    assert!(ch.caps().chaining);
    let (_, apdus) = big_file_round_trip(&mut ch, 600);
    // SELECT, CREATE, 3 chained UPDATE parts, 3 short READ BINARY.
    assert_eq!(apdus, 2 + 3 + 3);
}

#[test]
fn card_removed_mid_sequence_is_its_own_error() {
    let _g = pcsc();
    let faults = Faults {
        remove_at: Some(3),
        ..Faults::default()
    };
    let _card = insert(blank(SimConfig::default()), 0, faults);
    let mut ch = connect(0);
    let mut done = 0;
    let e = ch
        .run(|ex| -> Result<(), ExchangeError> {
            for _ in 0..5 {
                ex.transmit(&cmd::get_challenge(8))?;
                done += 1;
            }
            Ok(())
        })
        .unwrap_err();
    assert_eq!(done, 2);
    assert!(
        matches!(
            e,
            ExchangeError::Transport(TransportError::CardRemoved { .. })
        ),
        "{e:?}"
    );
}

#[test]
fn card_reset_by_another_process_is_recovered() {
    let _g = pcsc();
    let _card = insert(blank(SimConfig::default()), 0, Faults::none());
    let mut ch = connect(0);
    // Select a DF-less state and verify we are connected.
    ch.run(|ex| ex.transmit(&cmd::select_mf(cmd::SelectReturn::Nothing)))
        .unwrap();
    // Another process (here: another PC/SC context) resets the card.
    let mut other = connect(0);
    other.reconnect(true).unwrap();
    drop(other);
    let mut runs = 0;
    let r = ch
        .run(|ex| {
            runs += 1;
            ex.transmit(&cmd::get_challenge(8))
        })
        .unwrap();
    assert_eq!(r.sw, StatusWord::Ok);
    assert_eq!(ch.resets_recovered(), 1, "reconnected once");
    assert!(runs >= 1);
}

#[test]
fn t0_card_with_get_response() {
    let _g = pcsc();
    let cfg = SimConfig {
        protocol: SimProtocol::T0,
        force_get_response: true,
        ..SimConfig::default()
    };
    let _card = insert(blank(cfg), 0, Faults::none());
    let t = PcscTransport::connect(
        Some(&reader(0)),
        ConnectOptions {
            exclusive: true,
            protocol: Some(Protocol::T0),
        },
    )
    .unwrap();
    let mut ch = Channel::new(Box::new(t), ExchangeOptions::default());
    assert_eq!(ch.protocol(), Protocol::T0);
    let r = ch
        .run(|ex| ex.transmit(&cmd::select_mf(cmd::SelectReturn::Fcp)))
        .unwrap();
    assert_eq!(r.sw, StatusWord::Ok);
    assert_eq!(r.data.first(), Some(&0x62));
    // Exclusive: a second connection is refused while we hold the card.
    let e = PcscTransport::connect(Some(&reader(0)), ConnectOptions::default()).err();
    assert!(
        matches!(e, Some(TransportError::SharingViolation { .. })),
        "{e:?}"
    );
}

#[test]
fn verify_with_secret_over_the_library() {
    let _g = pcsc();
    let _card = insert(blank(SimConfig::default()), 0, Faults::none());
    let mut ch = connect(0);
    let r = ch
        .run(|ex| -> Result<_, ExchangeError> {
            ex.transmit(&Command::parse_hex(CREATE_PIN).unwrap())?;
            let r = ex.transmit(&cmd::verify(1, Secret::new(b"0000".to_vec())))?;
            let t = serde_json::to_string(ex.trace()).unwrap();
            assert!(!t.contains("30 30 30 30"), "{t}");
            Ok(r)
        })
        .unwrap();
    assert_eq!(r.sw, StatusWord::WrongPin { retries: 2 });
}

#[test]
fn readers_wait_for_insert_and_remove() {
    let _g = pcsc();
    let waiter = std::thread::spawn(|| {
        cardsmith(&[
            "readers",
            "--wait",
            "insert",
            "--reader",
            "0",
            "--timeout",
            "20",
            "--json",
        ])
    });
    std::thread::sleep(Duration::from_millis(700));
    let card = insert(blank(SimConfig::default()), 0, Faults::none());
    let o = waiter.join().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["reader"]["card_present"], true);
    let waiter = std::thread::spawn(|| {
        cardsmith(&[
            "readers",
            "--wait",
            "remove",
            "--reader",
            "0",
            "--timeout",
            "20",
        ])
    });
    std::thread::sleep(Duration::from_millis(700));
    card.remove().unwrap();
    let o = waiter.join().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Timeout is an absence (exit 3) and says so.
    let o = cardsmith(&[
        "readers",
        "--wait",
        "insert",
        "--reader",
        "1",
        "--timeout",
        "0.5",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("timed out"), "{}", stderr(&o));
}
