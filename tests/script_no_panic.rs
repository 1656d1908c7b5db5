//! No input makes the parser (or a dry run of what it parsed) panic.

use cardsmith::script::eval::Env;
use cardsmith::script::{
    check_vars, execute, parse_str, parse_with, ParseOptions, RunConfig, Target,
};
use proptest::prelude::*;

fn exercise(text: &str) {
    for quirks in [false, true] {
        let Ok(s) = parse_with(
            text,
            "f",
            ParseOptions {
                scriptor_quirks: quirks,
            },
        ) else {
            continue;
        };
        let _ = check_vars(&s, &Default::default());
        let (r, _) = execute(
            &[("f".into(), s)],
            Env::new(),
            Target::DryRun,
            RunConfig {
                keep_going: true,
                dry_run: true,
            },
            &mut std::io::sink(),
        );
        let _ = r.to_junit();
        let _ = r.to_json();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_text(text in ".{0,300}") {
        exercise(&text);
    }

    #[test]
    fn grammar_soup(parts in prop::collection::vec(prop_oneof![
        Just("00"), Just("A4"), Just("0x"), Just("x"), Just(".."), Just("*"), Just(" "), Just("\n"),
        Just("\\"), Just("\\\n"), Just("#"), Just("\""), Just("u\""), Just("${"), Just("}"), Just("("),
        Just(")"), Just(","), Just("["), Just("]"), Just("=>"), Just("="), Just("|"), Just("/"),
        Just("tlv"), Just("len"), Just("apdu"), Just("secret"), Just("let"), Just("test"),
        Just("capture"), Just("data"), Just("sw"), Just("include"), Just("update-binary"),
        Just("store-data"), Just("offset="), Just("sfi="), Just("max="), Just("p1="), Just("cla="),
        Just("option"), Just("get-response"), Just("on"), Just("reset"), Just("exit"), Just("9000"),
        Just("63Cx"), Just("2..6"), Just("é"), Just("\r"), Just("\t"), Just("FFFFFFFFFFFFFFFFFFFF"),
        Just("99999999999999999999999"), Just("a"), Just("1F"), Just("5F80"),
    ], 0..60)) {
        exercise(&parts.concat());
    }
}

#[test]
fn some_nasty_inputs() {
    for t in [
        "",
        "\\",
        "\\\n\\\n",
        "\"",
        "u\"",
        "${",
        "$",
        "tlv(",
        "tlv(1F",
        "=> ",
        "00 => [",
        "00 => 9000 [*",
        "capture",
        "00\ncapture x = tlv",
        "00\ncapture x = tlv 6F[",
        "00\ncapture x = data ..",
        "00\ncapture x = data 99999999999999999999999..",
        "let x = len(tlv(80, ))",
        "apdu(,)",
        "apdu(00 00 00 00, , 00)",
        "update-binary offset=32767 0102",
        "store-data max=1 tlv(80, ${x})",
        "\u{feff}00 A4",
        "00 \"\\x\"",
        "00 \"\\",
        "reset\\",
        "exit\\",
        "#\\\n00",
    ] {
        exercise(t);
        let _ = parse_str(t, "n");
    }
    // Deep nesting does not overflow the stack at reasonable depths.
    let deep = format!("{}01{}", "tlv(80, ".repeat(60), ")".repeat(60));
    exercise(&deep);
    let deeper = format!("{}01{}", "tlv(80, ".repeat(100_000), ")".repeat(100_000));
    let e = parse_str(&deeper, "n").unwrap_err();
    assert!(e.message.contains("nested more than 64"), "{e}");
}
