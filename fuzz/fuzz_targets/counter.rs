//! What the pickup counter reads from people and files never panics: text
//! to show (shaping and bidi), PIN candidates against the policy, PIN
//! lines, PIN length arguments, dates from the card.
#![no_main]
use cardsmith_host::activate::{counter, display, pinentry, policy};
use cardsmith_host::secret::Secret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = display::for_terminal(&text, display::RtlMode::Visual);
    let _ = policy::PinPolicy::parse_length(&text);
    let other = Secret::new(data.iter().rev().copied().collect());
    let _ = policy::PinPolicy::default().check(&Secret::new(data.to_vec()), &[(&other, "x")]);
    let _ = counter::both_calendars(&text);
    let mut lines = pinentry::LinePins::new(Box::new(std::io::Cursor::new(data.to_vec())), "fuzz");
    lines.echo_prompts = false;
    use pinentry::PinInput as _;
    while let Ok(Some(_)) = lines.secret("") {}
});
