//! Citizen record validation never panics, whatever the text.
#![no_main]
use cardsmith_host::record::{parse_record, FingerPosition, TemplateSummary, TemplateValidator};
use libfuzzer_sys::fuzz_target;

struct Iso;
impl TemplateValidator for Iso {
    fn validate(&self, _: FingerPosition, bytes: &[u8]) -> Result<TemplateSummary, String> {
        let p = cardsmith_host::biometric::parse_with_warnings(bytes).map_err(|e| e.to_string())?;
        let c = cardsmith_host::biometric::to_compact(&p.record, 0, 60).map_err(|e| e.to_string())?;
        Ok(TemplateSummary {
            minutiae: c.len() / 3,
            warnings: p.warnings.iter().map(|w| w.to_string()).collect(),
        })
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_record(text, "fuzz", &Iso);
    }
});
