//! Personalization and verification as step machines (issue 13): the
//! test is the driver. `engine::personalization` and
//! `engine::verification` are conversations over a `sansio::Io`; here a
//! loop takes each command they ask and answers it, first from the
//! project's simulated card (in process, through a channel that also runs
//! the profile's scripts when the machine hands them over), recording
//! every answer, then from the recorded answers alone, with no card and
//! no transport at all. Canned answers then show what a
//! step machine makes possible: a refusal at any command stops
//! personalization right there, and no corrupted answer makes a card pass
//! verification.

mod line_support;

use cardsmith::apdu::{Command, Response};
use cardsmith::perso::engine::{self, ScriptsOutcome};
use cardsmith::perso::input::compact_template;
use cardsmith::perso::input::{self, CardInput};
use cardsmith::perso::side::IssuerSide;
use cardsmith::sim::vpcd::SharedCard;
use cardsmith::sim::{SimCard, SimConfig};
use cardsmith::transport::sansio::{ChannelNeed, Facts, Io, Machine, Next};
use cardsmith::transport::sim::SimTransport;
use cardsmith::transport::{Channel, ExchangeError, ExchangeOptions};
use std::future::Future;
use std::sync::{Arc, Mutex};

/// What the driver answered, in order.
#[derive(Clone, Debug)]
enum Answer {
    /// The card's answer to a command (data and status word).
    Card(Vec<u8>),
    /// The outcome of the profile's scripts.
    Scripts(ScriptsOutcome),
}

/// One driven conversation: the commands it asked (encoded), the answers
/// it was given, its result.
struct Run<T> {
    sent: Vec<Vec<u8>>,
    answers: Vec<Answer>,
    result: T,
}

/// Where the answers come from.
enum Source<'a> {
    /// The simulated card, through a channel.
    Card(&'a mut Channel),
    /// Recorded answers, in order; none left is a failed read.
    Canned(std::vec::IntoIter<Answer>),
}

impl Source<'_> {
    fn command(&mut self, command: &Command) -> Option<Vec<u8>> {
        match self {
            Source::Card(ch) => {
                let r = ch.run(|ex| ex.transmit(command)).ok()?;
                let mut bytes = r.data;
                bytes.extend_from_slice(&r.sw.to_u16().to_be_bytes());
                Some(bytes)
            }
            Source::Canned(it) => match it.next() {
                Some(Answer::Card(r)) => Some(r),
                _ => None,
            },
        }
    }

    fn scripts(&mut self, work: Box<dyn std::any::Any>) -> Option<ScriptsOutcome> {
        match self {
            Source::Card(ch) => {
                let (outcome, _) = engine::run_scripts(ch, work);
                outcome.downcast::<ScriptsOutcome>().ok().map(|o| *o)
            }
            Source::Canned(it) => match it.next() {
                Some(Answer::Scripts(o)) => Some(o),
                _ => None,
            },
        }
    }
}

/// The one loop: resume the machine, answer what it asks, until it ends.
fn drive<T, E: From<ExchangeError>>(
    io: &Io,
    conversation: impl Future<Output = Result<T, E>>,
    mut source: Source<'_>,
) -> Run<Result<T, E>> {
    let mut m = Machine::new(io, conversation);
    let (mut sent, mut answers) = (Vec::new(), Vec::new());
    loop {
        match m.resume() {
            Next::Done(result) => {
                return Run {
                    sent,
                    answers,
                    result,
                }
            }
            Next::Send { command, .. } => {
                let apdu = command.encode().expect("the engine's commands encode");
                let answer = source.command(&command);
                sent.push(apdu);
                let r = match answer {
                    Some(bytes) => {
                        answers.push(Answer::Card(bytes.clone()));
                        Response::from_bytes(&bytes).map_err(ExchangeError::from)
                    }
                    None => Err(ExchangeError::BadResponseData {
                        command: "canned card".into(),
                        detail: "no answer left".into(),
                    }),
                };
                // The driver does not follow the selection: every
                // application is selected again when it is needed.
                m.answer(r, None);
            }
            Next::Channel(ChannelNeed::Extension(work)) => {
                let outcome = source
                    .scripts(work)
                    .unwrap_or(ScriptsOutcome::Stopped("no scripts outcome left".into()));
                answers.push(Answer::Scripts(outcome.clone()));
                m.answer_extension(Box::new(outcome), 0, Facts::short());
            }
            // One card, one caller: transactions, reconnects and secure
            // messaging (no security domain here) need nothing.
            Next::Channel(_) => m.answer_channel(Ok(()), None),
        }
    }
}

/// The reference card without a security domain (`--no-secure-channel`):
/// the issuer authenticates with its key, and nothing random passes
/// between host and card that a replay would change, but the host's own
/// signatures and the verifier's fresh challenges.
struct Bench {
    _dir: tempfile::TempDir,
    side: IssuerSide,
    input: CardInput,
}

/// The bench, and a channel to its blank card.
fn bench(seed: u64) -> (Bench, Channel) {
    let dir = tempfile::tempdir().unwrap();
    let recs = line_support::batch(&dir.path().join("b.jsonl"), 1, seed);
    let rec = recs.values().next().unwrap();
    let mut side = line_support::issuer(dir.path());
    side.profile.security_domain = None;
    side.scp03 = None;
    let keys = line_support::BlankKeys::of(dir.path());
    let card: SharedCard = Arc::new(Mutex::new(
        SimCard::blank_with_issuer_key(SimConfig::default(), &keys.key).unwrap(),
    ));
    let ch = Channel::new(
        Box::new(SimTransport::shared(card, Default::default())),
        ExchangeOptions::default(),
    );
    let input = input::card_input(rec, &side.profile, input::today(), &compact_template).unwrap();
    (
        Bench {
            _dir: dir,
            side,
            input,
        },
        ch,
    )
}

type PersoRun = Run<Result<Result<engine::PersoResult, engine::PersoError>, ExchangeError>>;

fn personalize(b: &Bench, source: Source<'_>) -> PersoRun {
    let io = Io::new(Facts::short());
    let iss = b.side.issuer();
    let conversation = async {
        Ok::<_, ExchangeError>(engine::personalization(&io, &iss, &b.input, &mut |_| {}).await)
    };
    drive(&io, conversation, source)
}

fn verify(b: &Bench, source: Source<'_>) -> Run<Result<engine::VerifyReport, ExchangeError>> {
    let io = Io::new(Facts::short());
    let iss = b.side.issuer();
    drive(&io, engine::verification(&io, &iss, &b.input), source)
}

/// Header (CLA INS P1 P2) of each command.
fn headers(sent: &[Vec<u8>]) -> Vec<[u8; 4]> {
    sent.iter().map(|c| [c[0], c[1], c[2], c[3]]).collect()
}

#[test]
fn personalization_replayed_from_canned_answers_asks_the_same_commands() {
    let (b, mut ch) = bench(41);
    let live = personalize(&b, Source::Card(&mut ch));
    let done = live.result.unwrap().expect("perso on the simulated card");
    assert!(live.sent.len() > 20, "{} commands", live.sent.len());
    assert!(
        live.answers
            .iter()
            .any(|a| matches!(a, Answer::Scripts(ScriptsOutcome::Passed))),
        "the profile's scripts ran"
    );
    let replay = personalize(&b, Source::Canned(live.answers.clone().into_iter()));
    let again = replay.result.unwrap().expect("perso from canned answers");
    assert_eq!(again.serial, done.serial);
    assert_eq!(headers(&replay.sent), headers(&live.sent));
    // The commands that carry no host signature are the same bytes; the
    // certificates and the security object carry fresh ECDSA signatures.
    let same = live
        .sent
        .iter()
        .zip(&replay.sent)
        .filter(|(a, b)| a == b)
        .count();
    assert!(same * 2 > live.sent.len(), "{same} of {}", live.sent.len());
    assert_eq!(again.apdus, live.sent.len());
}

/// Every command of a personalization answered 6F00 in turn: the machine
/// stops right there with an error, and asks the card nothing more.
#[test]
fn a_refusal_at_any_command_stops_personalization_there() {
    let (b, mut ch) = bench(42);
    let live = personalize(&b, Source::Card(&mut ch));
    live.result.unwrap().expect("perso on the simulated card");
    let cards: Vec<usize> = (0..live.answers.len())
        .filter(|i| matches!(live.answers[*i], Answer::Card(_)))
        .collect();
    assert_eq!(cards.len(), live.sent.len());
    for (n, i) in cards.iter().enumerate() {
        let mut answers = live.answers.clone();
        answers[*i] = Answer::Card(vec![0x6F, 0x00]);
        let run = personalize(&b, Source::Canned(answers.into_iter()));
        let e = run
            .result
            .unwrap()
            .expect_err(&format!("6F00 to command {n} must stop perso"));
        assert_eq!(
            run.sent.len(),
            n + 1,
            "command {n} refused ({e}): the machine asked {} commands",
            run.sent.len()
        );
        assert!(
            e.to_string().contains("6F00") || e.to_string().contains("script"),
            "command {n}: {e}"
        );
    }
}

/// Verification replayed from canned answers gives the same verdicts, but
/// for the keys' proofs: the verifier's challenge is fresh each time, so
/// the card's recorded signature is over another challenge, and that is
/// seen. Any answer the card gave as 9000, replaced by a failure, fails
/// verification (or stops it with an error).
#[test]
fn verification_from_canned_answers_sees_every_bad_answer() {
    let (b, mut ch) = bench(43);
    personalize(&b, Source::Card(&mut ch))
        .result
        .unwrap()
        .expect("perso");
    let live = verify(&b, Source::Card(&mut ch));
    let rep = live.result.expect("verify");
    assert!(rep.passed, "{:?}", rep.failures());
    let replay = verify(&b, Source::Canned(live.answers.clone().into_iter()));
    let again = replay.result.expect("verify from canned answers");
    assert_eq!(headers(&replay.sent), headers(&live.sent));
    let failures = again.failures();
    assert!(!failures.is_empty());
    assert!(
        failures.iter().all(|f| f.contains("proof")),
        "only the proofs fail: {failures:?}"
    );
    let verdicts = |rep: &engine::VerifyReport| -> Vec<(String, bool, String)> {
        rep.checks
            .iter()
            .map(|c| (c.name.clone(), c.passed, c.detail.clone()))
            .collect()
    };
    let baseline = verdicts(&again);
    for (i, a) in live.answers.iter().enumerate() {
        let Answer::Card(bytes) = a else { continue };
        if !bytes.ends_with(&[0x90, 0x00]) {
            continue;
        }
        for bad in [
            vec![0x6F, 0x00],
            bytes[..bytes.len().saturating_sub(3)].to_vec(),
        ] {
            let mut answers = live.answers.clone();
            answers[i] = Answer::Card(bad.clone());
            let run = verify(&b, Source::Canned(answers.into_iter()));
            if let Ok(rep) = &run.result {
                assert!(!rep.passed);
                assert_ne!(
                    verdicts(rep),
                    baseline,
                    "answer {i} replaced by {} is not seen",
                    cardsmith::hex::spaced(&bad)
                );
            }
        }
    }
}
