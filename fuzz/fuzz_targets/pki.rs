//! Security objects, certificates and certificate requests from a card or a
//! file: parsing and checking never panic.
#![no_main]
use cardsmith_host::pki;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = std::time::SystemTime::now();
    let _ = pki::verify_sod(data, &[data.to_vec()], now);
    let _ = pki::describe_certificate(data);
    let _ = pki::certificate_public_key(data);
    let _ = pki::check_certificate(data, &[4; 65], pki::CertProfile::Signature, &[data.to_vec()], now);
    let policy = pki::CertPolicy {
        oid: "2.999.364.1.1".into(),
        cps_uri: Some("https://pki.national-id.example/cps".into()),
    };
    let crl = ["http://pki.national-id.example/crl/card-ca.crl".to_string()];
    let terms = pki::CardTerms {
        card_end: 2_017_180_800,
        card_expiry: "1412/09/13",
        max_days_before: 1,
        crl_distribution_points: &crl,
        policy: &policy,
    };
    let _ = pki::check_card_terms(data, &terms);
    let _ = pki::verify_csr(data);
    let _ = pki::der_to_raw_sig(data);
});
