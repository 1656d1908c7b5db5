//! The profile's `[pki.commands]` encodings reach the card operations:
//! a profile that says the card answers a bare point or a DER signature,
//! put before the reference card (which answers 7F49 templates and raw
//! r ‖ s), stops personalization at that answer with an error that says
//! what was expected. The conversions themselves are unit-tested in
//! `perso::encoding`.

mod line_support;

use cardsmith::perso::encoding::{PointEncoding, SignatureEncoding};
use cardsmith::perso::engine;
use cardsmith::perso::input;
use cardsmith::perso::input::compact_template;
use cardsmith::sim::SimConfig;
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{Channel, ExchangeOptions};
use std::sync::{Arc, Mutex};

fn perso_error(point: PointEncoding, signature: SignatureEncoding) -> String {
    let dir = tempfile::tempdir().unwrap();
    let recs = line_support::batch(&dir.path().join("b.jsonl"), 1, 17);
    let rec = recs.values().next().unwrap();
    let mut side = line_support::issuer(dir.path());
    for k in &mut side.profile.keys {
        k.point_encoding = point;
        k.signature_encoding = signature;
    }
    let keys = line_support::BlankKeys::of(dir.path());
    let card = Arc::new(Mutex::new(keys.card(SimConfig::default())));
    let t = SimTransport::shared(card, Default::default());
    let mut ch = Channel::new(Box::new(t), ExchangeOptions::default());
    let input = input::card_input(rec, &side.profile, input::today(), &compact_template).unwrap();
    engine::personalize(&mut ch, &side.issuer(), &input)
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

#[test]
fn a_profile_expecting_a_bare_point_refuses_the_reference_cards_template() {
    let e = perso_error(PointEncoding::UncompressedPoint, SignatureEncoding::Raw);
    assert!(
        e.contains("GENERATE ASYMMETRIC KEY PAIR")
            && e.contains("expected an uncompressed P-256 point")
            && e.contains("stage keys"),
        "{e}"
    );
}

#[test]
fn a_profile_expecting_der_signatures_refuses_the_reference_cards_raw_ones() {
    let e = perso_error(PointEncoding::PublicKeyTemplate, SignatureEncoding::Der);
    assert!(e.contains("expected a DER ECDSA-Sig-Value"), "{e}");
}
