//! The host personalizes, verifies and reads the domestic card from its
//! profile alone (issue 17): the same engines as for the reference card,
//! with apdu-scripts/domestic/profile.toml telling them every command, the
//! file system made at the factory, the factory PINs, the block size, the
//! life cycle and the match-on-card layout. In process here; through
//! pcscd in tests/domestic_pcsc.rs.

mod line_support;

use cardsmith::perso::card::{self as pcard, LifeCycle};
use cardsmith::perso::cli::{compact_template, CardArgs, IssuerSide};
use cardsmith::perso::engine;
use cardsmith::perso::input;
use cardsmith::sim::vpcd::SharedCard;
use cardsmith::sim::SimConfig;
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{Channel, ExchangeOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn domestic_profile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("apdu-scripts/domestic/profile.toml")
}

fn side(data: &Path) -> IssuerSide {
    IssuerSide::load(&CardArgs {
        data_dir: Some(data.to_path_buf()),
        profile: Some(domestic_profile()),
        ..CardArgs::default()
    })
    .expect("the domestic profile loads")
}

fn channel(card: &SharedCard) -> Channel {
    Channel::new(
        Box::new(SimTransport::shared(card.clone(), Default::default())),
        ExchangeOptions::default(),
    )
}

#[test]
fn the_domestic_card_is_personalized_verified_and_read_from_its_profile() {
    let dir = tempfile::tempdir().unwrap();
    let recs = line_support::batch(&dir.path().join("b.jsonl"), 1, 17);
    let rec = recs.values().next().unwrap();
    let side = side(dir.path());
    let keys = line_support::BlankKeys::of(dir.path());
    let card: SharedCard = Arc::new(Mutex::new(keys.card(SimConfig::domestic())));
    let mut ch = channel(&card);
    let input = input::card_input(rec, &side.profile, input::today(), &compact_template).unwrap();
    let done = engine::personalize(&mut ch, &side.issuer(), &input).expect("domestic perso");
    assert!(
        done.secure_channel.is_some(),
        "over the domestic security domain"
    );
    let rep = engine::verify(&mut ch, &side.issuer(), &input).unwrap();
    assert!(rep.passed, "{:?}", rep.failures());
    let lc = ch
        .run(|ex| {
            pcard::select_mf(ex, &side.profile)?;
            pcard::life_cycle(ex, &side.profile)
        })
        .unwrap();
    assert_eq!(lc, LifeCycle::Personalized);
    let dump = engine::read(&mut ch, &side.profile).unwrap();
    let text = format!("{dump:?}");
    assert!(text.contains(rec.record_id()), "{text}");
}
