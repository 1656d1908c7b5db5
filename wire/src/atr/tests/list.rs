//! The ATR list parser and matcher on small texts.

use super::super::*;
use super::h;

const SAMPLE: &str = "# comment\n\
\n\
3B 02 14 50\n\
\tSchlumberger Multiflex 3k\n\
\tsecond line\n\
\n\
3B 8F 80 01 80 4F 0C A0 00 00 03 06 .. 00 01 00 00 00 00 ..\n\
\tMIFARE Classic 1K\n\
\n\
3b 6[0-9a-f] 00 00 [^0]. 11\n\
\tlower case and classes\n\
\n\
3B 39 19 00 53 4F 4D 41 44 53 33 30 3[1,3]\n\
\tcomma inside a class\n\
\n\
3B EF 00 FF 81 31 42 45 .* 38\n\
\tregex fallback\n\
\n\
3B 02 ((\n\
\tinvalid regex, skipped\n\
\n\
3B0214\n\
\tcannot match, skipped\n\
\n\
3B 02 14 50  \n\
\ttrailing white space, duplicate\n";

#[test]
fn parses_entries_and_skips_bad_patterns() {
    let list = AtrList::parse(SAMPLE).expect("parse");
    assert_eq!(list.len(), 6);
    let first = &list.entries()[0];
    assert_eq!(first.line, 3);
    assert_eq!(first.pattern, "3B 02 14 50");
    assert_eq!(
        first.descriptions,
        vec!["Schlumberger Multiflex 3k", "second line"]
    );
    let skipped: Vec<usize> = list.skipped().iter().map(|s| s.line).collect();
    assert_eq!(skipped, vec![19, 22]);
    assert!(list.skipped()[0].reason.contains("regular expression"));
    assert!(list.skipped()[1].reason.contains("3n-1"));
    let exact: Vec<usize> = list.exact_atrs().iter().map(|(l, _)| *l).collect();
    assert_eq!(exact, vec![3, 25]);
    assert_eq!(list.exact_atrs()[0].1, h("3B 02 14 50"));
}

#[test]
fn matching() {
    let list = AtrList::parse(SAMPLE).expect("parse");
    let lines = |atr: &[u8]| list.matches(atr).iter().map(|e| e.line).collect::<Vec<_>>();
    assert_eq!(lines(&h("3B 02 14 50")), vec![3, 25]);
    // Whole-ATR match only.
    assert!(lines(&h("3B 02 14 50 00")).is_empty());
    assert!(lines(&h("3B 02 14")).is_empty());
    assert_eq!(
        lines(&h(
            "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A"
        )),
        vec![7]
    );
    assert_eq!(lines(&h("3B 6A 00 00 1F 11")), vec![10]);
    assert!(lines(&h("3B 6A 00 00 0F 11")).is_empty(), "negated class");
    assert_eq!(
        lines(&h("3B 39 19 00 53 4F 4D 41 44 53 33 30 33")),
        vec![13]
    );
    assert!(lines(&h("3B 39 19 00 53 4F 4D 41 44 53 33 30 32")).is_empty());
    assert_eq!(lines(&h("3B EF 00 FF 81 31 42 45 01 02 03 38")), vec![16]);
    assert!(lines(&[]).is_empty());
}

#[test]
fn errors_name_path_and_line() {
    let err = AtrList::parse("\tdescription first\n3B 00\n").expect_err("orphan");
    assert!(matches!(
        err,
        AtrListError::OrphanDescription { line: 1, .. }
    ));
    assert!(err.to_string().contains("line 1"), "{err}");

    let err = AtrList::parse("3B ((\n\tx\n").expect_err("nothing usable");
    assert!(err.to_string().contains("line 1"), "{err}");

    let missing = std::path::Path::new("/nonexistent/smartcard_list.txt");
    let err = AtrList::load(missing).expect_err("missing file");
    assert!(
        err.to_string().contains("/nonexistent/smartcard_list.txt"),
        "{err}"
    );

    let dir = std::env::temp_dir().join(format!("atr-list-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bad.txt");
    std::fs::write(&file, b"\tdesc\n").expect("write");
    let err = AtrList::load(&file).expect_err("orphan in file");
    let text = err.to_string();
    assert!(
        text.contains("bad.txt") && text.contains("line 1"),
        "{text}"
    );
    // Invalid UTF-8 is decoded lossily.
    std::fs::write(&file, b"3B 00\n\tcaf\xe9 card\n").expect("write");
    let list = AtrList::load(&file).expect("lossy load");
    assert_eq!(list.entries()[0].descriptions[0], "caf\u{FFFD} card");
    assert_eq!(list.source(), Some(file.as_path()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn empty_text_is_an_empty_list() {
    let list = AtrList::parse("# only comments\n\n").expect("parse");
    assert!(list.is_empty());
    assert!(list.matches(&h("3B 00")).is_empty());
}
