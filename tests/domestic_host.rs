//! The host personalizes, verifies and reads the domestic card from its
//! profile alone (issue 17): the same engines as for the reference card,
//! with apdu-scripts/domestic/profile.toml telling them every command, the
//! file system made at the factory, the factory PINs, the block size, the
//! life cycle and the match-on-card layout. In process here; through
//! pcscd in tests/domestic_pcsc.rs.

mod line_support;

use cardsmith::cli::perso::{CardArgs, SideFromArgs};
use cardsmith::perso::card::{self as pcard, LifeCycle};
use cardsmith::perso::engine;
use cardsmith::perso::input;
use cardsmith::perso::input::compact_template;
use cardsmith::perso::side::IssuerSide;
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

/// Records with one finger and with two: the domestic card's second
/// biometric reference exists from the factory either way.
#[test]
fn the_domestic_card_is_personalized_verified_and_read_from_its_profile() {
    let dir = tempfile::tempdir().unwrap();
    let recs = line_support::batch(&dir.path().join("b.jsonl"), 10, 1);
    let side = side(dir.path());
    let keys = line_support::BlankKeys::of(dir.path());
    let mut finger_counts = std::collections::BTreeSet::new();
    for rec in recs.values() {
        finger_counts.insert(rec.fingerprints().len());
        personalize_verify_read(&side, &keys, rec);
    }
    assert!(
        finger_counts.contains(&1) && finger_counts.contains(&2),
        "{finger_counts:?}"
    );
}

fn personalize_verify_read(
    side: &IssuerSide,
    keys: &line_support::BlankKeys,
    rec: &cardsmith::record::Record,
) {
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
        .converse(async |io| {
            pcard::select_mf(io, &side.profile).await?;
            pcard::life_cycle(io, &side.profile).await
        })
        .unwrap();
    assert_eq!(lc, LifeCycle::Personalized);
    let dump = engine::read(&mut ch, &side.profile).unwrap();
    let text = format!("{dump:?}");
    assert!(text.contains(rec.record_id()), "{text}");
}

/// A copy of the domestic profile with `edit` applied, in `dir`.
fn edited_profile(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(domestic_profile()).unwrap();
    let p = dir.join("profile.toml");
    std::fs::write(&p, edit(text)).unwrap();
    p
}

fn perso_with(
    dir: &Path,
    profile: &Path,
) -> (Result<engine::PersoResult, engine::PersoError>, SharedCard) {
    let recs = line_support::batch(&dir.join("b.jsonl"), 1, 18);
    let rec = recs.values().next().unwrap();
    let side = IssuerSide::load(&CardArgs {
        data_dir: Some(dir.to_path_buf()),
        profile: Some(profile.to_path_buf()),
        ..CardArgs::default()
    })
    .expect("the edited profile loads");
    let keys = line_support::BlankKeys::of(dir);
    let card: SharedCard = Arc::new(Mutex::new(keys.card(SimConfig::domestic())));
    let mut ch = channel(&card);
    let input = input::card_input(rec, &side.profile, input::today(), &compact_template).unwrap();
    (engine::personalize(&mut ch, &side.issuer(), &input), card)
}

/// The card's life cycle byte, read directly.
fn life_cycle_byte(card: &SharedCard) -> u8 {
    let mut c = card.lock().unwrap();
    let r = c.transmit(&[0x80, 0xCA, 0x9F, 0x70, 0x00]);
    let r = match r.as_slice() {
        [0x61, n] => c.transmit(&[0x00, 0xC0, 0x00, 0x00, *n]),
        _ => r,
    };
    r[3]
}

/// A file the profile says the factory made but the card lacks: refused
/// by name before anything is written, the card still blank.
#[test]
fn a_missing_factory_file_is_refused_by_name_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let profile = edited_profile(dir.path(), |t| {
        t + "\n[[files]]\npath = \"7F10/7105\"\nsize = 16\n"
    });
    let (r, card) = perso_with(dir.path(), &profile);
    let e = r.expect_err("a card without EF 7105");
    assert!(
        e.detail.contains("7F10/7105") && e.detail.contains("6A82"),
        "{e:?}"
    );
    assert_eq!(life_cycle_byte(&card), 0x01, "still OP_READY (blank)");
}

/// A data group larger than its factory EF: refused from the profile,
/// before a command writes anything.
#[test]
fn a_data_group_larger_than_its_factory_ef_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let profile = edited_profile(dir.path(), |t| {
        t.replacen("size = 1024\nfields", "size = 64\nfields", 1)
    });
    let (r, card) = perso_with(dir.path(), &profile);
    let e = r.expect_err("DG1 does not fit 64 bytes");
    assert!(
        e.detail.contains("data group 1") && e.detail.contains("holds 64"),
        "{e:?}"
    );
    assert_eq!(life_cycle_byte(&card), 0x01);
}
