//! A simulated card handler: keeps feeding fresh blank cards into virtual
//! readers, the way a personalization machine's input hopper does. A card
//! leaves its reader when the host powers it down after using it (the line
//! releases every card it is done with); the handler then saves it to the
//! output directory and, after the handling time, inserts the next blank.
//!
//! The cards reach the readers over the vpcd protocol, so they work with
//! Debian's vpcd slots and with the project's own line readers.

use super::faults::Faults;
use super::timing::Timing;
use super::vpcd::{serve, Ended, SharedCard, Stats, VpcdOptions};
use super::{SimCard, SimConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What to feed, and where.
#[derive(Debug, Clone)]
pub struct FeedOptions {
    /// The readers: a label for messages and the vpcd address.
    pub readers: Vec<(String, SocketAddr)>,
    /// Where used cards are saved (`card-NNNNN-<serial>.json`).
    pub out_dir: PathBuf,
    /// Stop after this many cards in total (None: until stopped).
    pub count: Option<u64>,
    pub config: SimConfig,
    pub timing: Option<Timing>,
    /// The issuer transport key blank cards carry.
    pub issuer_key: Option<Vec<u8>>,
    /// SCP03 keys for the blank cards' security domain (none: no security domain).
    pub scp03: Option<cardsmith_scp03::KeySource>,
    /// Time between a card leaving and the next one being inserted.
    pub handling: Duration,
}

/// One card that went through a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FedCard {
    pub number: u64,
    pub reader: String,
    pub serial: String,
    pub image: PathBuf,
    pub ended: String,
}

/// A running card handler.
pub struct Feeder {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    fed: Arc<Mutex<Vec<FedCard>>>,
    /// The cards in the readers right now, by reader label.
    current: Arc<Mutex<Vec<(String, u64, SharedCard)>>>,
    out_dir: PathBuf,
}

fn save(
    out_dir: &Path,
    number: u64,
    card: &SharedCard,
    reader: &str,
    ended: &str,
) -> Option<FedCard> {
    let c = card.lock().ok()?;
    let serial = cardsmith_wire::hex::compact(&c.serial());
    let image = out_dir.join(format!("card-{number:05}-{serial}.json"));
    if let Err(e) = c.save_image_to(&image) {
        tracing::warn!("saving card {serial}: {e}");
    }
    Some(FedCard {
        number,
        reader: reader.to_string(),
        serial,
        image,
        ended: ended.to_string(),
    })
}

impl Feeder {
    /// Start one feeding thread per reader.
    pub fn start(opts: FeedOptions) -> std::io::Result<Feeder> {
        cardsmith_wire::private::create_dir_all(&opts.out_dir)?;
        let stop = Arc::new(AtomicBool::new(false));
        let fed = Arc::new(Mutex::new(Vec::new()));
        let current = Arc::new(Mutex::new(Vec::new()));
        let next = Arc::new(AtomicU64::new(1));
        let mut threads = Vec::new();
        for (label, addr) in opts.readers.clone() {
            let (stop, fed, current, next, opts) = (
                stop.clone(),
                fed.clone(),
                current.clone(),
                next.clone(),
                opts.clone(),
            );
            threads.push(std::thread::spawn(move || {
                feed_reader(&label, addr, &opts, &stop, &fed, &current, &next)
            }));
        }
        Ok(Feeder {
            stop,
            threads,
            fed,
            current,
            out_dir: opts.out_dir,
        })
    }

    /// Cards that have left a reader so far.
    pub fn fed(&self) -> Vec<FedCard> {
        self.fed.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Take every card out, save the ones still inserted, and return all.
    pub fn stop(mut self) -> Vec<FedCard> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let mut all = self.fed();
        if let Ok(cur) = self.current.lock() {
            for (reader, n, card) in cur.iter() {
                if let Some(f) = save(
                    &self.out_dir,
                    *n,
                    card,
                    reader,
                    "still inserted when the feeder stopped",
                ) {
                    all.push(f);
                }
            }
        }
        all.sort_by_key(|f| f.number);
        all
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn feed_reader(
    label: &str,
    addr: SocketAddr,
    opts: &FeedOptions,
    stop: &AtomicBool,
    fed: &Mutex<Vec<FedCard>>,
    current: &Mutex<Vec<(String, u64, SharedCard)>>,
    next: &AtomicU64,
) {
    while !stop.load(Ordering::SeqCst) {
        let n = next.fetch_add(1, Ordering::SeqCst);
        if opts.count.is_some_and(|c| n > c) {
            return;
        }
        let config = SimConfig {
            timing: opts.timing,
            ..opts.config.clone()
        };
        let provision = super::Provision {
            issuer_key: opts.issuer_key.as_deref(),
            scp03: opts.scp03.as_ref(),
        };
        let card = match SimCard::blank_provisioned(config, provision) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("feeder: {e}");
                return;
            }
        };
        let card: SharedCard = Arc::new(Mutex::new(card));
        if let Ok(mut cur) = current.lock() {
            cur.push((label.to_string(), n, card.clone()));
        }
        let vo = VpcdOptions {
            addr,
            faults: Faults::none(),
            reconnect: true,
            connect_timeout: None,
            eject_on_power_off: true,
        };
        let stats = Stats::default();
        let ended = serve(&card, &vo, stop, &stats);
        if let Ok(mut cur) = current.lock() {
            cur.retain(|(_, m, _)| *m != n);
        }
        let how = match &ended {
            Ok(Ended::Ejected { apdus }) => format!("ejected after {apdus} APDUs"),
            Ok(other) => format!("{other:?}"),
            Err(e) => format!("connection failed: {e}"),
        };
        if let Some(f) = save(&opts.out_dir, n, &card, label, &how) {
            tracing::info!("feeder: card {} left {label}: {how}", f.serial);
            if let Ok(mut v) = fed.lock() {
                v.push(f);
            }
        }
        match ended {
            Ok(Ended::Ejected { .. }) => std::thread::sleep(opts.handling),
            Ok(_) => return,
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}
