//! The register's location and password file: any text as a journal URL
//! or as a password file gives a target or an error, never a panic, and a
//! password in the URL never comes back in an error or the display form.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (url, pgpass) = text.split_once('\n').unwrap_or((text, ""));
    let masked = cardsmith_host::register::pgconf::mask(url);
    let _ = cardsmith_host::register::pgconf::lookup(pgpass, "127.0.0.1", "5432", "register", "line1");
    // A password we can recognise: a long marker in the userinfo.
    let secret = "Zq9SecretMarker7";
    if text.contains(secret) {
        return;
    }
    let with_pw = format!("postgresql://u:{secret}@{}", url.trim_start_matches("postgresql://"));
    for (u, argv) in [(url, true), (url, false), (with_pw.as_str(), true), (with_pw.as_str(), false)] {
        match cardsmith_host::register::pgconf::parse(u, argv) {
            Ok(t) => assert!(!t.display.contains(secret), "display shows the password"),
            Err(e) => assert!(!e.to_string().contains(secret), "error shows the password: {e}"),
        }
    }
    assert!(!cardsmith_host::register::pgconf::mask(&with_pw).contains(secret));
    drop(masked);
});
