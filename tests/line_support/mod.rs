//! Shared by the line tests: build a batch, and account for every record
//! in the journal and on the cards that came out of the readers.
#![allow(dead_code)]

use cardsmith::cli::perso::{CardArgs, SideFromArgs};
use cardsmith::perso::card::{self as pcard, LifeCycle};
use cardsmith::perso::input::{compact_template, IsoTemplates};
use cardsmith::perso::profile::Profile;
use cardsmith::perso::side::IssuerSide;
use cardsmith::perso::side::Profiles;
use cardsmith::perso::{engine, input};
use cardsmith::record::{self, Record};
use cardsmith::register::journal::{CardKnown, Journal};
use cardsmith::register::sqlite::SqliteJournal;
use cardsmith::sim::vpcd::SharedCard;
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{Channel, ExchangeError, ExchangeOptions};
use std::collections::HashMap;
use std::path::Path;

/// Write `count` sample records to `path`; return them by id.
pub fn batch(path: &Path, count: usize, seed: u64) -> HashMap<String, Record> {
    let lines = cardsmith::perso::samples::sample_lines(count, seed, input::today());
    std::fs::write(path, lines.join("\n") + "\n").expect("write batch");
    let b = record::load_records(path, &IsoTemplates { max_minutiae: 60 }).expect("load");
    assert!(b.bad.is_empty(), "{:?}", b.bad);
    b.good
        .into_iter()
        .map(|(_, r)| (r.record_id().to_string(), r))
        .collect()
}

pub fn issuer(data_dir: &Path) -> IssuerSide {
    IssuerSide::load(&CardArgs {
        data_dir: Some(data_dir.to_path_buf()),
        ..CardArgs::default()
    })
    .expect("issuer side")
}

/// What the blank cards of a data directory ship with: its issuer key and
/// its SCP03 keys (the same files the CLI finds there).
#[derive(Clone)]
pub struct BlankKeys {
    pub key: Vec<u8>,
    pub scp03: Option<cardsmith::scp03::keyfile::Scp03Keys>,
}

impl BlankKeys {
    pub fn of(data_dir: &Path) -> BlankKeys {
        let side = issuer(data_dir);
        BlankKeys {
            key: side.key.expose().to_vec(),
            scp03: side.scp03.clone(),
        }
    }

    /// A fresh blank card with these keys.
    pub fn card(&self, config: cardsmith::sim::SimConfig) -> cardsmith::sim::SimCard {
        cardsmith::sim::SimCard::blank_provisioned(
            config,
            cardsmith::sim::Provision {
                issuer_key: Some(&self.key),
                scp03: self.scp03.as_ref().map(|k| &k.keys),
            },
        )
        .expect("blank card")
    }
}

/// What a card that came out of a reader is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardState {
    Terminated,
    Life(LifeCycle),
}

pub fn card_state(card: &SharedCard, side: &IssuerSide) -> (String, CardState) {
    card_state_as(card, &side.profile)
}

/// [`card_state`] of a card of profile `p`.
pub fn card_state_as(card: &SharedCard, p: &Profile) -> (String, CardState) {
    let serial = cardsmith::hex::compact(&card.lock().expect("card").serial());
    let mut ch = Channel::new(
        Box::new(SimTransport::shared(card.clone(), Default::default())),
        ExchangeOptions::default(),
    );
    let r = ch.converse(async |io| {
        pcard::select_mf(io, p).await?;
        pcard::life_cycle(io, p).await
    });
    let st = match r {
        Ok(lc) => CardState::Life(lc),
        Err(ExchangeError::Status { .. }) => CardState::Terminated,
        Err(e) => panic!("card {serial}: {e}"),
    };
    (serial, st)
}

/// Every record is on exactly one good card, that card verifies against
/// it, and no other card out of the readers is a usable personalized card
/// that the journal does not account for.
pub fn account(
    journal: &SqliteJournal,
    batch_id: i64,
    records: &HashMap<String, Record>,
    cards: &[SharedCard],
    side: &IssuerSide,
) -> String {
    account_as(
        journal,
        batch_id,
        records,
        cards,
        side,
        &Profiles::new(side.profile.clone(), Vec::new()),
    )
}

/// [`account`] for a line taking cards of several profiles: each card is
/// verified and read with the profile its ATR picks.
pub fn account_as(
    journal: &SqliteJournal,
    batch_id: i64,
    records: &HashMap<String, Record>,
    cards: &[SharedCard],
    side: &IssuerSide,
    profiles: &Profiles,
) -> String {
    let profile_of = |card: &SharedCard| {
        let atr = card.lock().expect("card").atr();
        // A card of none of them is read as the first's (as `account` does).
        profiles.pick(&atr).unwrap_or(profiles.first())
    };
    let mut good_serials = HashMap::new();
    for (id, rec) in records {
        let r = journal
            .record(id)
            .expect("journal")
            .expect("record in journal");
        assert_eq!(r.state, "good", "record {id}: {r:?}");
        let attempts = journal.attempts_for_record(id).expect("attempts");
        let goods: Vec<_> = attempts.iter().filter(|a| a.outcome == "good").collect();
        assert_eq!(goods.len(), 1, "record {id}: {attempts:?}");
        let serial = goods[0].card_serial.clone().expect("serial");
        assert_eq!(r.card_serial.as_deref(), Some(serial.as_str()));
        let card = cards
            .iter()
            .find(|c| cardsmith::hex::compact(&c.lock().expect("card").serial()) == serial)
            .unwrap_or_else(|| panic!("record {id}: good card {serial} is not among the cards"));
        let mut ch = Channel::new(
            Box::new(SimTransport::shared(card.clone(), Default::default())),
            ExchangeOptions::default(),
        );
        let p = profile_of(card);
        let input = input::card_input(rec, p, input::today(), &compact_template).expect("input");
        let rep = engine::verify(&mut ch, &side.issuer_for(p), &input).expect("verify");
        assert!(
            rep.passed,
            "record {id} card {serial}: {:?}",
            rep.failures()
        );
        assert!(good_serials.insert(serial, id.clone()).is_none());
    }
    let mut personalized_other = 0;
    let mut terminated = 0;
    let mut blank = 0;
    for c in cards {
        let (serial, st) = card_state_as(c, profile_of(c));
        if good_serials.contains_key(&serial) {
            continue;
        }
        match st {
            CardState::Terminated => terminated += 1,
            CardState::Life(LifeCycle::Blank) => blank += 1,
            CardState::Life(lc) => {
                // A personalized card that is not good must be known to
                // the journal as interrupted or rejected (to be destroyed).
                let known = journal.card(&serial).expect("journal");
                assert!(
                    matches!(
                        known,
                        CardKnown::Interrupted { .. } | CardKnown::Rejected { .. }
                    ),
                    "card {serial} is {lc} but the journal says {known:?}"
                );
                personalized_other += 1;
            }
        }
    }
    let s = journal.summary(batch_id).expect("summary");
    assert!(s.finished() && s.good as usize == records.len(), "{s:?}");
    format!(
        "{} good cards; other cards: {terminated} terminated, {blank} blank, {personalized_other} personalized but journaled interrupted/rejected; {} attempts, {} rejected, {} interrupted",
        good_serials.len(),
        s.attempts,
        s.rejected,
        s.interrupted
    )
}
