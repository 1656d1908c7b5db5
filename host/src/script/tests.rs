//! Parser unit tests: every construct, every error with its line and column.

use super::ast::*;
use super::eval::Env;
use super::*;
use crate::hex;

fn p(text: &str) -> Script {
    parse_str(text, "t.apdu").unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> ParseError {
    match parse_str(text, "t.apdu") {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(e) => e,
    }
}

fn quirks(text: &str) -> Script {
    parse_with(
        text,
        "q.apdu",
        ParseOptions {
            scriptor_quirks: true,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// What a script does, as strings: APDUs in hex, "RESET", "EXIT", others by kind.
fn plan(s: &Script) -> Vec<String> {
    let env = Env::new();
    s.stmts
        .iter()
        .map(|st| match &st.kind {
            StmtKind::Command { apdu, .. } => env
                .eval(apdu)
                .map(|v| hex::compact(v.expose()))
                .unwrap_or_else(|e| format!("ERR {e}")),
            StmtKind::Reset => "RESET".into(),
            StmtKind::Exit => "EXIT".into(),
            other => format!("{other:?}"),
        })
        .collect()
}

fn at(e: &ParseError) -> (usize, usize) {
    (e.line, e.col)
}

// ---------------------------------------------------------------- scriptor

#[test]
fn scriptor_hex_lines() {
    let s = p("00 A4 04 00 02 3F 00\n00A4000C023F00\n  00 b0 00 00 04  \n");
    assert_eq!(plan(&s), ["00A40400023F00", "00A4000C023F00", "00B0000004"]);
    assert_eq!(s.stmts[0].loc.line, 1);
    assert_eq!(s.stmts[2].loc.line, 3);
    assert_eq!(s.stmts[2].loc.col, 3);
}

#[test]
fn scriptor_comments_blank_reset_exit() {
    let s = p("# header\n\nreset\nRESET\n00 C0 00 00 17\n   \nExit\nthis is never parsed ((\n");
    assert_eq!(plan(&s), ["RESET", "RESET", "00C0000017", "EXIT"]);
}

#[test]
fn continuation_joins_lines_and_skips_comments_between() {
    let s = p("00 A4 04 00 \\\n# the AID\n\n07 A0 00 00 00 03 10 10\\\n 00\n");
    assert_eq!(plan(&s), ["00A4040007A000000003101000"]);
    // Positions still point into the physical lines.
    let e = err("00 A4 \\\n04 0G\n");
    assert_eq!(at(&e), (2, 5));
}

#[test]
fn continuation_without_spaces_as_scriptor_expands_it() {
    let s = p("00A4\\\n0400\\\n023F00\n");
    assert_eq!(plan(&s), ["00A40400023F00"]);
}

#[test]
fn continuation_never_splits_a_byte() {
    // scriptor joins with a blank, so "A" and "4" are two (bad) tokens there too.
    let e = err("00 A\\\n4 00\n");
    assert!(e.message.contains("odd number"), "{e}");
    assert_eq!(at(&e), (1, 4));
}

#[test]
fn dangling_continuation_is_dropped_with_a_warning() {
    let s = p("00 A4 00 00\n00 B0 \\\n");
    assert_eq!(plan(&s), ["00A40000"]);
    assert!(s
        .warnings
        .iter()
        .any(|w| w.line == 2 && w.message.contains("never sent")));
    let s = p("00 B0 \\\nexit\n");
    assert_eq!(plan(&s), ["EXIT"]);
    assert!(s.warnings.iter().any(|w| w.message.contains("never sent")));
}

#[test]
fn reset_inside_continuation_happens_first() {
    let s = p("00 A4 \\\nreset\n00 00\n");
    assert_eq!(plan(&s), ["RESET", "00A40000"]);
    assert!(s.warnings.iter().any(|w| w.line == 2));
}

#[test]
fn crlf_and_tabs_are_fine() {
    let s = p("00 A4 00 00\r\n00\tB0\t00 00 \\\r\n 04\r\n");
    assert_eq!(plan(&s), ["00A40000", "00B0000004"]);
}

#[test]
fn divergences_from_scriptor_are_warned_about() {
    let s = p("# exit here\n00 A4 00 00 # reset the card\n  # reset\n# reset at col 1 is fine\n");
    assert_eq!(plan(&s), ["00A40000"]);
    let w: Vec<(usize, usize)> = s.warnings.iter().map(|w| (w.line, w.col)).collect();
    assert_eq!(w, [(1, 3), (2, 15), (3, 5)]);
    assert!(s.warnings[0].message.contains("end the script"));
    assert!(s.warnings[1].message.contains("reset the card"));
}

#[test]
fn text_after_reset_or_exit_is_an_error_in_normal_mode() {
    let e = err("reset the card\n");
    assert_eq!(at(&e), (1, 7));
    assert!(e.message.contains("--scriptor-quirks"), "{e}");
    let e = err("00 A4 00 00\nexit now\n");
    assert_eq!(at(&e), (2, 6));
    // A comment is fine.
    assert_eq!(plan(&p("reset # warm\nexit # done\n")), ["RESET", "EXIT"]);
}

#[test]
fn quirks_mode_is_scriptor_exactly() {
    let s = quirks("00 A4 00 00\n# select exit file\n00 B0 00 00 04\n");
    assert_eq!(plan(&s), ["00A40000", "EXIT"]);
    let s = quirks("  # reset the card\nReset it\n#reset\n00 A4 00 00\n");
    assert_eq!(plan(&s), ["RESET", "RESET", "00A40000"]);
    let e = parse_with(
        "00 A4 => 9000\n",
        "q",
        ParseOptions {
            scriptor_quirks: true,
        },
    )
    .unwrap_err();
    assert_eq!(at(&e), (1, 7));
}

// ---------------------------------------------------------------- literals

#[test]
fn strings_ascii_and_utf8() {
    let s = p(r#"00 D6 00 00 05 "AB\"\\\x7F""#);
    assert_eq!(plan(&s), ["00D60000054142225C7F"]);
    let s = p("00 D6 00 00 02 u\"é\"");
    assert_eq!(plan(&s), ["00D6000002C3A9"]);
    let e = err("00 D6 00 00 02 \"é\"");
    assert_eq!(at(&e), (1, 17));
    assert!(e.message.contains("u\"…\""), "{e}");
    let e = err("00 D6 \"abc");
    assert_eq!(at(&e), (1, 7));
    assert!(e.message.contains("not closed"));
    let e = err(r#"00 "\q""#);
    assert_eq!(at(&e), (1, 6));
    let e = err(r#"00 "\x4""#);
    assert!(e.message.contains("two hex digits"));
}

#[test]
fn hash_inside_a_string_is_not_a_comment() {
    let s = p("00 D6 00 00 03 \"#1#\"  # comment\n");
    assert_eq!(plan(&s), ["00D6000003233123"]);
}

#[test]
fn hex_errors_point_at_the_character() {
    let e = err("00 A4 0G 00");
    assert_eq!(at(&e), (1, 8));
    assert!(e.message.contains("hex digit"), "{e}");
    let e = err("00 A40 00");
    assert_eq!(at(&e), (1, 4));
    assert!(e.message.contains("odd number"));
    let e = err("00 A4 xx");
    assert!(e.message.contains("after `=>`"), "{e}");
    assert_eq!(plan(&p("0x00 0xA4 0x0400")), ["00A40400"]);
}

#[test]
fn unknown_words_and_characters() {
    let e = err("sleep 100");
    assert_eq!(at(&e), (1, 1));
    assert!(e.message.contains("unknown command `sleep`"), "{e}");
    let e = err("00 A4 ; 00");
    assert_eq!(at(&e), (1, 7));
    let e = err("00 frob(01)");
    assert!(e.message.contains("unknown function"), "{e}");
    assert_eq!(at(&e), (1, 4));
}

// ---------------------------------------------------------------- functions

#[test]
fn tlv_lengths_are_computed() {
    let s = p("00 E0 00 00 apdu(00 E0 00 00, tlv(62, tlv(80, 0100) tlv(82, 01)))");
    assert_eq!(plan(&s), ["00E0000000E0000009620780020100820101"]);
    let s = p("tlv(5F20, tlv(80, \"x\"))");
    assert_eq!(plan(&s), ["5F200380017 8".replace(' ', "")]);
    // Long form lengths.
    let long = "AA".repeat(200);
    let s = p(&format!("tlv(53, {long})"));
    assert!(plan(&s)[0].starts_with("5381C8AA"));
    let long = "AA".repeat(300);
    let s = p(&format!("tlv(53, {long})"));
    assert!(plan(&s)[0].starts_with("5382012CAA"));
    let s = p("tlv(80, )");
    assert_eq!(plan(&s), ["8000"]);
}

#[test]
fn tlv_errors() {
    let e = err("tlv(62)");
    assert!(e.message.contains("two arguments"), "{e}");
    assert_eq!(at(&e), (1, 1));
    let e = err("00 tlv(1F, 00)");
    assert!(e.message.contains("more tag bytes"), "{e}");
    assert_eq!(at(&e), (1, 4));
    let e = err("tlv(5F80, 00)");
    assert!(e.message.contains("b8"), "{e}");
    let e = err("tlv(62, 01");
    assert_eq!(at(&e), (1, 11));
    assert!(e.message.contains("`)`"), "{e}");
}

#[test]
fn len_secret_apdu() {
    assert_eq!(plan(&p("00 A4 04 00 len(A000) A000")), ["00A4040002A000"]);
    assert_eq!(
        plan(&p("apdu(00 20 00 01, secret(\"1234\"))")),
        ["002000010431323334"]
    );
    assert_eq!(plan(&p("apdu(00 B0 00 00, , 00)")), ["00B0000000"]);
    assert_eq!(plan(&p("apdu(00 B0 00 00, , 0000)")), ["00B00000000000"]);
    let big = "11".repeat(300);
    assert!(plan(&p(&format!("apdu(00 D6 00 00, {big})")))[0]
        .starts_with("00D60000 00012C11".replace(' ', "").as_str()));
    let e = err("apdu(00 20 00, 01)");
    assert!(e.message.contains("4 bytes"), "{e}");
    let e = err("apdu(00 20 00 01, 01, 000000)");
    assert!(e.message.contains("Le is one byte"), "{e}");
    let e = err("len(01, 02)");
    assert!(e.message.contains("one argument"), "{e}");
    let s = p(&format!("len({})", "00".repeat(256)));
    assert!(plan(&s)[0].starts_with("ERR"), "{:?}", plan(&s));
}

#[test]
fn secret_values_are_masked() {
    let s = p("apdu(00 20 00 01, secret(\"1234\"))");
    let StmtKind::Command { apdu, .. } = &s.stmts[0].kind else {
        panic!()
    };
    let v = Env::new().eval(apdu).unwrap();
    assert!(v.is_sensitive());
    assert!(!v.sensitive_in(0..5));
    assert!(v.sensitive_in(5..9));
    assert_eq!(format!("{v:?}"), "Value(00 20 00 01 04 ** ** ** **)");
}

// ---------------------------------------------------------------- variables

#[test]
fn variables() {
    let s = p("let aid = A0 00 00 00 03\n00 A4 04 00 len(${aid}) ${aid} 00\n");
    let mut env = Env::new();
    let StmtKind::Let { name, value } = &s.stmts[0].kind else {
        panic!()
    };
    env.set(name, env.eval(value).unwrap());
    let StmtKind::Command { apdu, .. } = &s.stmts[1].kind else {
        panic!()
    };
    assert_eq!(
        hex::compact(env.eval(apdu).unwrap().expose()),
        "00A4040005A00000000300"
    );
}

#[test]
fn variable_syntax_errors() {
    let e = err("00 ${aid");
    assert_eq!(at(&e), (1, 9));
    let e = err("00 $aid");
    assert_eq!(at(&e), (1, 4));
    let e = err("00 ${}");
    assert_eq!(at(&e), (1, 6));
    let e = err("00 ${1x}");
    assert!(e.message.contains("start with a letter"), "{e}");
    let e = err("let = 01");
    assert_eq!(at(&e), (1, 5));
    let e = err("let x 01");
    assert!(e.message.contains("`=`"));
    let e = err("let x =");
    assert!(e.message.contains("value"), "{e}");
}

#[test]
fn undefined_variables_are_found_before_running() {
    let s = p("let a = 01\n00 ${a} ${b}\n");
    let e = check_vars(&s, &Default::default()).unwrap_err();
    assert_eq!((e.line, e.col), (2, 9));
    assert!(e.message.contains("${b} is not defined"), "{e}");
    let ext = ["b".to_string()].into_iter().collect();
    check_vars(&s, &ext).unwrap();
    // Use before the let that defines it.
    let s = p("00 ${a}\nlet a = 01\n");
    assert!(check_vars(&s, &Default::default()).is_err());
    // In patterns too.
    let s = p("00 B0 00 00 => 9000 [${c}]\n");
    assert!(check_vars(&s, &Default::default()).is_err());
    // Captures define.
    let s = p("00 B0 00 00\ncapture c = data\n00 ${c}\n");
    check_vars(&s, &Default::default()).unwrap();
}

// ---------------------------------------------------------------- expectations

fn expect_of(text: &str) -> Expect {
    match &p(text).stmts[0].kind {
        StmtKind::Command {
            expect: Some(e), ..
        } => e.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn status_word_patterns() {
    let e = expect_of("00 A4 00 00 => 9000");
    assert_eq!(e.sw.len(), 1);
    assert!(e.sw[0].matches(0x9000));
    assert!(!e.sw[0].matches(0x9001));
    let e = expect_of("00 A4 00 00 => 61xx | 63Cx|90 00");
    assert_eq!(e.sw.len(), 3);
    assert!(e.sw[0].matches(0x6112));
    assert!(e.sw[1].matches(0x63C2));
    assert!(!e.sw[1].matches(0x6382));
    assert!(e.sw[2].matches(0x9000));
    assert_eq!(e.sw[1].to_string(), "63Cx");
    let e = expect_of("00 A4 00 00 => 6.8.");
    assert!(e.sw[0].matches(0x6A82));
    assert!(e.data.is_none());
}

#[test]
fn status_word_errors() {
    let e = err("00 A4 00 00 =>");
    assert_eq!(at(&e), (1, 15));
    assert!(e.message.contains("status word"), "{e}");
    let e = err("00 A4 00 00 => 900");
    assert_eq!(at(&e), (1, 16));
    let e = err("00 A4 00 00 => 90G0");
    assert_eq!(at(&e), (1, 18));
    let e = err("00 A4 00 00 => 9000 |");
    assert!(e.message.contains("status word"));
    let e = err("00 A4 00 00 => 9000 junk");
    assert_eq!(at(&e), (1, 21));
    assert!(e.message.contains("end of the line"));
}

#[test]
fn data_patterns() {
    let e = expect_of("00 B0 00 00 => 9000 [6F .. 84 x7 * \"AB\" ${v} tlv(80, 01)]");
    let d = e.data.unwrap();
    assert_eq!(d.len(), 8);
    assert_eq!(
        d[0],
        PatItem::Byte {
            value: 0x6F,
            mask: 0xFF
        }
    );
    assert_eq!(d[1], PatItem::Byte { value: 0, mask: 0 });
    assert_eq!(
        d[3],
        PatItem::Byte {
            value: 0x07,
            mask: 0x0F
        }
    );
    assert_eq!(d[4], PatItem::Any);
    assert!(matches!(d[5], PatItem::Expr(_)));
    let e = expect_of("00 B0 00 00 => 9000 []");
    assert_eq!(e.data, Some(vec![]));
    let e = err("00 B0 00 00 => 9000 [01 02");
    assert!(e.message.contains("`]`"), "{e}");
    assert_eq!(at(&e), (1, 27));
    let e = err("00 B0 00 00 => 9000 [012]");
    assert_eq!(at(&e), (1, 22));
    let e = err("00 B0 00 00 => 9000 [0G]");
    assert_eq!(at(&e), (1, 23));
    let e = err("00 B0 00 00 => 9000 [01 , 02]");
    assert_eq!(at(&e), (1, 25));
}

// ---------------------------------------------------------------- captures

#[test]
fn captures() {
    let s = p("00 A4 04 00 02 3F00 00\ncapture a = tlv 6F/84\ncapture b = tlv 6F/A5/BF0C[1]/61\ncapture c = data 2..6\ncapture d = data 2..\ncapture e = data ..4\ncapture f = data\ncapture g = sw\n");
    let caps: Vec<CaptureSource> = s
        .stmts
        .iter()
        .filter_map(|st| match &st.kind {
            StmtKind::Capture { source, .. } => Some(source.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(caps.len(), 7);
    let CaptureSource::Tlv(path) = &caps[1] else {
        panic!()
    };
    assert_eq!(path.len(), 4);
    assert_eq!(path[2].tag, vec![0xBF, 0x0C]);
    assert_eq!(path[2].index, 1);
    assert_eq!(
        caps[2],
        CaptureSource::Range {
            start: 2,
            end: Some(6)
        }
    );
    assert_eq!(
        caps[3],
        CaptureSource::Range {
            start: 2,
            end: None
        }
    );
    assert_eq!(
        caps[4],
        CaptureSource::Range {
            start: 0,
            end: Some(4)
        }
    );
    assert_eq!(caps[6], CaptureSource::Sw);
}

#[test]
fn capture_errors() {
    let e = err("let a = 01\ncapture x = sw\n");
    assert_eq!(at(&e), (2, 1));
    assert!(e.message.contains("must follow a command"), "{e}");
    let e = err("capture x = sw\n");
    assert_eq!(at(&e), (1, 1));
    let e = err("00 B0 00 00\ncapture x = tlv 1F\n");
    assert_eq!(at(&e), (2, 17));
    let e = err("00 B0 00 00\ncapture x = data 6..2\n");
    assert!(e.message.contains("ends before it starts"), "{e}");
    let e = err("00 B0 00 00\ncapture x = data 2-6\n");
    assert!(e.message.contains("byte range"), "{e}");
    let e = err("00 B0 00 00\ncapture x = body\n");
    assert_eq!(at(&e), (2, 13));
    let e = err("00 B0 00 00\ncapture x = tlv 6F/\n");
    assert_eq!(at(&e), (2, 20));
}

// ---------------------------------------------------------------- other statements

#[test]
fn tests_includes_options_secrets() {
    let s = p("test \"select MF\"\ninclude \"common.apdu\"\noption get-response on\noption resend-6c off\nsecret pin, puk\n");
    assert_eq!(
        s.stmts.iter().map(|s| s.kind.clone()).collect::<Vec<_>>(),
        vec![
            StmtKind::Test {
                name: "select MF".into()
            },
            StmtKind::Include {
                path: "common.apdu".into()
            },
            StmtKind::SetOption {
                name: OptionName::GetResponse,
                on: true
            },
            StmtKind::SetOption {
                name: OptionName::Resend6C,
                on: false
            },
            StmtKind::SecretDecl {
                names: vec!["pin".into(), "puk".into()]
            },
        ]
    );
    let e = err("test select MF\n");
    assert_eq!(at(&e), (1, 6));
    assert!(e.message.contains("in quotes"));
    let e = err("include common.apdu\n");
    assert_eq!(at(&e), (1, 9));
    let e = err("option speed on\n");
    assert_eq!(at(&e), (1, 8));
    let e = err("option get-response maybe\n");
    assert_eq!(at(&e), (1, 21));
    let e = err("secret\n");
    assert_eq!(at(&e), (1, 7));
}

#[test]
fn chunked_writes() {
    let s = p("update-binary offset=0x10 sfi=3 max=100 ${photo} => 9000\nstore-data cla=80 p1=10 max=200 tlv(70, 01)\n");
    let StmtKind::Chunked {
        kind, max, expect, ..
    } = &s.stmts[0].kind
    else {
        panic!()
    };
    assert_eq!(
        *kind,
        ChunkKind::UpdateBinary {
            offset: 16,
            sfi: Some(3)
        }
    );
    assert_eq!(*max, Some(100));
    assert!(expect.is_some());
    let StmtKind::Chunked { kind, max, .. } = &s.stmts[1].kind else {
        panic!()
    };
    assert_eq!(
        *kind,
        ChunkKind::StoreData {
            cla: 0x80,
            p1: 0x10
        }
    );
    assert_eq!(*max, Some(200));
    let e = err("update-binary offset=16777216 01\n");
    assert_eq!(at(&e), (1, 22));
    let e = err("update-binary sfi=31 01\n");
    assert!(e.message.contains("1 to 30"));
    let e = err("update-binary cla=80 01\n");
    assert_eq!(at(&e), (1, 15));
    assert!(e.message.contains("unknown option"));
    let e = err("store-data p1=80 01\n");
    assert!(e.message.contains("b8"));
    let e = err("update-binary max=0 01\n");
    assert!(e.message.contains("1 to 65535"));
    let e = err("update-binary offset=300 sfi=1 01\n");
    assert!(e.message.contains("at most 255"));
    let e = err("update-binary\n");
    assert!(e.message.contains("data to write"));
    let e = err("update-binary offset=abc 01\n");
    assert!(e.message.contains("number"));
}

#[test]
fn includes_are_inlined_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("lib");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("common.apdu"), "00 A4 00 0C 02 3F 00\n").unwrap();
    std::fs::write(
        dir.path().join("main.apdu"),
        "include \"lib/common.apdu\"\n00 B0 00 00 01\n",
    )
    .unwrap();
    let s = load(&dir.path().join("main.apdu"), ParseOptions::default()).unwrap();
    assert_eq!(plan(&s), ["00A4000C023F00", "00B0000001"]);
    assert!(s.stmts[0].loc.file.ends_with("common.apdu"));
    // Missing include: error at the include line.
    std::fs::write(
        dir.path().join("bad.apdu"),
        "00 B0 00 00 01\n  include \"nope.apdu\"\n",
    )
    .unwrap();
    let e = load(&dir.path().join("bad.apdu"), ParseOptions::default()).unwrap_err();
    assert_eq!((e.line, e.col), (2, 3));
    assert!(e.message.contains("cannot include"), "{e}");
    // Cycle.
    std::fs::write(dir.path().join("a.apdu"), "include \"b.apdu\"\n").unwrap();
    std::fs::write(
        dir.path().join("b.apdu"),
        "00 A4 00 00\ninclude \"a.apdu\"\n",
    )
    .unwrap();
    let e = load(&dir.path().join("a.apdu"), ParseOptions::default()).unwrap_err();
    assert!(e.file.ends_with("b.apdu"), "{e}");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("includes itself"), "{e}");
    // Errors inside an included file name that file.
    std::fs::write(dir.path().join("c.apdu"), "include \"d.apdu\"\n").unwrap();
    std::fs::write(dir.path().join("d.apdu"), "\n00 0G\n").unwrap();
    let e = load(&dir.path().join("c.apdu"), ParseOptions::default()).unwrap_err();
    assert!(e.file.ends_with("d.apdu"));
    assert_eq!((e.line, e.col), (2, 5));
    // Not UTF-8.
    std::fs::write(dir.path().join("e.apdu"), b"00 A4\n00 \xFF\n").unwrap();
    let e = load(&dir.path().join("e.apdu"), ParseOptions::default()).unwrap_err();
    assert_eq!((e.line, e.col), (2, 4));
}

#[test]
fn comments_anywhere() {
    let s = p("00 A4 00 00   # select\n  # indented\nlet a = 01 # one\n00 ${a} => 9000 # ok\n");
    assert_eq!(s.stmts.len(), 3);
}

#[test]
fn error_display_has_file_line_col() {
    let e = err("\n\n   00 0G");
    assert_eq!(e.to_string(), format!("t.apdu:3:8: {}", e.message));
}
