//! Host-side response handling under arbitrary card answers: perso,
//! verify, read and the counter's inspection run against the simulated
//! card through a transport that rewrites the card's answers as a script
//! says. The script is any byte string (a fuzzer's input, or a seeded
//! random one in the test suite): most answers (15 in 16) pass unchanged so the flows
//! get deep, the others are replaced, cut, bit-flipped, turned into 61xx
//! or 6Cxx, or lose their data. Every flow must end with a result or an
//! error, never a panic, and within a bounded number of commands.
//!
//! Shared by `tests/host_responses.rs` and `fuzz/fuzz_targets/host_responses.rs`.
#![allow(dead_code)]

use cardsmith_host::perso::engine::{self, CardInput};
use cardsmith_host::perso::input;
use cardsmith_host::perso::input::compact_template;
use cardsmith_host::perso::side::{IssuerSide, SideConfig};
use cardsmith_host::record;
use cardsmith_host::sim::{Provision, SimCard, SimConfig};
use cardsmith_host::transport::sim::SimTransport;
use cardsmith_host::transport::{
    Channel, ExchangeOptions, Protocol, Session, Transport, TransportError,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// More commands than any flow sends; reaching it means a loop.
pub const MAX_COMMANDS: usize = 2_000;

/// The issuer side, one citizen's card input, and the image of a card
/// personalized for them (made once).
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub side: IssuerSide,
    pub input: CardInput,
    key: Vec<u8>,
    good_image: PathBuf,
    scratch: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let side = IssuerSide::open(&SideConfig {
            data_dir,
            ..SideConfig::default()
        })
        .expect("issuer side");
        let lines = cardsmith_host::perso::samples::sample_lines(1, 7, input::today());
        let batch = dir.path().join("one.jsonl");
        std::fs::write(&batch, lines.join("\n") + "\n").expect("write record");
        let loaded = record::load_records(
            &batch,
            &cardsmith_host::perso::input::IsoTemplates { max_minutiae: 60 },
        )
        .expect("load record");
        let (_, rec) = loaded.good.into_iter().next().expect("one good record");
        let input = input::card_input(&rec, &side.profile, input::today(), &compact_template)
            .expect("card input");
        let key = side.key.expose().to_vec();
        let mut fx = Fixture {
            good_image: dir.path().join("good.json"),
            scratch: dir.path().join("scratch.json"),
            _dir: dir,
            side,
            input,
            key,
        };
        let card = fx.blank();
        let shared = Arc::new(Mutex::new(card));
        let mut ch = Channel::new(
            Box::new(SimTransport::shared(shared.clone(), Default::default())),
            ExchangeOptions::default(),
        );
        engine::personalize(&mut ch, &fx.side.issuer(), &fx.input).expect("clean perso");
        drop(ch);
        let good = fx.good_image.clone();
        shared
            .lock()
            .expect("card")
            .save_image_to(&good)
            .expect("save the personalized card");
        fx.good_image = good;
        fx
    }

    /// A blank card with this issuer's keys.
    pub fn blank(&self) -> SimCard {
        SimCard::blank_provisioned(
            SimConfig::default(),
            Provision {
                issuer_key: Some(&self.key),
                scp03: self.side.scp03.as_ref().map(|k| &k.keys),
            },
        )
        .expect("blank card")
    }

    /// A fresh copy of the personalized card.
    pub fn personalized(&self) -> SimCard {
        std::fs::copy(&self.good_image, &self.scratch).expect("copy image");
        SimCard::open_image(&self.scratch, SimConfig::default()).expect("open image")
    }
}

/// Which host flow to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Perso,
    Verify,
    Read,
    Inspect,
}

pub const FLOWS: [Flow; 4] = [Flow::Perso, Flow::Verify, Flow::Read, Flow::Inspect];

/// Run `flow` with the card's answers rewritten by `script`; the number of
/// commands the host sent. Panics only if the host panicked (the point of
/// the exercise) or looped past [`MAX_COMMANDS`].
pub fn run(fx: &Fixture, flow: Flow, script: &[u8]) -> usize {
    let card = match flow {
        Flow::Perso => fx.blank(),
        _ => fx.personalized(),
    };
    let rewriter = Rewriter {
        inner: SimTransport::new(card),
        script: Arc::new(Mutex::new(Script {
            bytes: script.to_vec(),
            at: 0,
            sent: 0,
        })),
    };
    let script = rewriter.script.clone();
    let mut ch = Channel::new(Box::new(rewriter), ExchangeOptions::default());
    let p = &fx.side.profile;
    match flow {
        Flow::Perso => {
            let _ = engine::personalize(&mut ch, &fx.side.issuer(), &fx.input);
        }
        Flow::Verify => {
            let _ = engine::verify(&mut ch, &fx.side.issuer(), &fx.input);
        }
        Flow::Read => {
            let _ = engine::read(&mut ch, p);
        }
        Flow::Inspect => {
            use cardsmith_host::pki::CertificateAuthority;
            let _ = cardsmith_host::activate::ops::inspect(&mut ch, p, &fx.side.ca.chain());
        }
    }
    let sent = script.lock().map(|s| s.sent).unwrap_or(0);
    assert!(sent <= MAX_COMMANDS, "{flow:?}: {sent} commands, a loop");
    sent
}

struct Script {
    bytes: Vec<u8>,
    at: usize,
    sent: usize,
}

impl Script {
    fn next(&mut self) -> Option<u8> {
        let b = self.bytes.get(self.at).copied();
        self.at += 1;
        b
    }

    /// The card's answer as the script has it.
    fn rewrite(&mut self, real: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let Some(c) = self.next() else {
            return Ok(real);
        };
        if c < 0xF0 {
            return Ok(real);
        }
        let arg = self.next().unwrap_or(0);
        let mut r = real;
        match c % 9 {
            // Entirely the script's bytes.
            0 => {
                let n = usize::from(arg % 48);
                r = (0..n).map_while(|_| self.next()).collect();
            }
            // One bit flipped.
            1 => {
                if !r.is_empty() {
                    let i = usize::from(arg) % r.len();
                    if let Some(b) = r.get_mut(i) {
                        *b ^= 1 << (arg % 8);
                    }
                }
            }
            // Cut short.
            2 => r.truncate(usize::from(arg) % (r.len() + 1)),
            // More data announced.
            3 => r = vec![0x61, arg],
            // Wrong length, the right one given.
            4 => r = vec![0x6C, arg],
            // Data dropped, success claimed.
            5 => r = vec![0x90, 0x00],
            // Garbage appended before the status word.
            6 => {
                let sw = r.split_off(r.len().saturating_sub(2));
                r.extend((0..usize::from(arg % 16)).map(|i| arg.wrapping_mul(i as u8)));
                r.extend(sw);
            }
            // Another status word with the same data.
            7 => {
                let n = r.len().saturating_sub(2);
                r.truncate(n);
                r.extend([0x60 | (arg >> 4), arg]);
            }
            // The reader gives up.
            _ => {
                return Err(TransportError::Timeout(std::time::Duration::from_millis(1)));
            }
        }
        Ok(r)
    }
}

struct Rewriter {
    inner: SimTransport,
    script: Arc<Mutex<Script>>,
}

struct RewriterSession<'a> {
    inner: Box<dyn Session + 'a>,
    script: Arc<Mutex<Script>>,
}

impl Session for RewriterSession<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut s = self
            .script
            .lock()
            .map_err(|_| TransportError::Timeout(Default::default()))?;
        s.sent += 1;
        if s.sent > MAX_COMMANDS {
            return Err(TransportError::Timeout(Default::default()));
        }
        let real = self.inner.transmit(apdu)?;
        s.rewrite(real)
    }
}

impl Transport for Rewriter {
    fn begin(&mut self) -> Result<Box<dyn Session + '_>, TransportError> {
        Ok(Box::new(RewriterSession {
            inner: self.inner.begin()?,
            script: self.script.clone(),
        }))
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), TransportError> {
        self.inner.reconnect(reset)
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn protocol(&self) -> Protocol {
        self.inner.protocol()
    }
    fn reader(&self) -> String {
        self.inner.reader()
    }
}
