//! Card conversations without I/O.
//!
//! A conversation is an `async fn` over an [`Io`]: personalization's and
//! verification's card steps, the read-back, the counter's checks. It never
//! touches a reader. Each command it wants answered it hands to its [`Io`]
//! and waits; whoever drives it takes the command, has the card answer it
//! however it likes, and hands the answer back. The compiler turns each
//! conversation into a step machine; [`Machine`] is the one loop's view of
//! it: [`Machine::resume`] gives the next command to send (or the result),
//! [`Machine::answer`] takes the card's response.
//!
//! Two drivers use it:
//! - [`converse`] answers over an [`Exchange`] (a reader or the simulated
//!   card, with GET RESPONSE, 6Cxx, chaining, secure messaging and the
//!   trace below the conversation);
//! - a test answers from a list of canned responses (see this module's
//!   tests and `tests/host_responses.rs`), with no transport at all.
//!
//! What the conversation may ask beyond the card's answers is fixed when
//! it starts ([`Facts`]: the card's APDU limits) or comes back with each
//! answer (the card's current DF as the exchange follows it).
//!
//! A whole engine (personalization, verification) is one conversation too.
//! Besides commands it asks its channel for what only a channel does
//! ([`ChannelNeed`]): a transaction begun and ended
//! ([`Io::transaction`], which runs its part again once if another process
//! reset the card, as [`super::Channel::run`] does), a reconnect, secure
//! messaging installed or removed, and work of the driver's own kind (the
//! profile's scripts, which run on the script interpreter). Its driver is
//! [`super::Channel::drive`].

use super::{describe, ok_data, Exchange, ExchangeError, FromExchange, SecureMessaging, Selected};
use crate::apdu::{Command, Response, StatusWord};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// What a conversation knows about the card before it says anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The card's current DF as far as the host knows (`None`: unknown).
    pub selected: Option<Selected>,
    /// Largest data field one command carries (after secure messaging).
    pub max_data: usize,
    /// Largest Ne one command asks for.
    pub max_ne: usize,
    /// Whether a longer data field goes as one chained command.
    pub chaining: bool,
    /// The card's largest UPDATE BINARY block (its profile's), if smaller.
    pub max_update_block: Option<usize>,
    /// The secure messaging in force, if any (its label).
    pub secure_label: Option<String>,
}

impl Facts {
    /// A card of short APDUs, without chaining, nothing selected: what a
    /// test's canned card is unless it says otherwise.
    pub fn short() -> Facts {
        Facts {
            selected: None,
            max_data: crate::apdu::SHORT_MAX_NC,
            max_ne: crate::apdu::SHORT_MAX_NE,
            chaining: false,
            max_update_block: None,
            secure_label: None,
        }
    }
}

/// What a conversation needs of its channel beyond the card's answers.
pub enum ChannelNeed {
    /// Begin one transaction (one PC/SC transaction on a reader).
    Begin,
    /// The transaction is over. `ok`: the conversation's part in it
    /// succeeded, so the card's selection after it is known.
    End { ok: bool },
    /// Another process reset the card: reconnect (without a reset).
    Reconnect,
    /// Protect every command from now on with this secure messaging
    /// (`None`: back to plain commands).
    Secure(Option<Box<dyn SecureMessaging>>),
    /// Work of the driver's own kind; answered with
    /// [`Machine::answer_extension`].
    Extension(Box<dyn Any>),
}

impl std::fmt::Debug for ChannelNeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelNeed::Begin => f.write_str("Begin"),
            ChannelNeed::End { ok } => write!(f, "End {{ ok: {ok} }}"),
            ChannelNeed::Reconnect => f.write_str("Reconnect"),
            ChannelNeed::Secure(s) => write!(f, "Secure({:?})", s.as_ref().map(|s| s.label())),
            ChannelNeed::Extension(_) => f.write_str("Extension"),
        }
    }
}

/// A command or need the conversation waits on, or the answer it waits for.
enum Mailbox {
    Empty,
    Asking { command: Command, personal: bool },
    Needing(ChannelNeed),
    Answered(Result<Response, ExchangeError>),
    Done(Result<(), ExchangeError>),
    Extended(Box<dyn Any>),
}

/// The conversation's side of the card: it asks, the driver answers.
pub struct Io {
    mailbox: RefCell<Mailbox>,
    personal: Cell<bool>,
    facts: RefCell<Facts>,
    /// Physical APDUs the driver reported (GET RESPONSE rounds included).
    apdus: Cell<usize>,
    /// Reconnects after another process reset the card.
    resets: Cell<u32>,
}

impl Io {
    pub fn new(facts: Facts) -> Io {
        Io {
            mailbox: RefCell::new(Mailbox::Empty),
            personal: Cell::new(false),
            facts: RefCell::new(facts),
            apdus: Cell::new(0),
            resets: Cell::new(0),
        }
    }

    /// Physical APDUs sent for this conversation so far, as its driver
    /// counted them (GET RESPONSE rounds and other work included).
    pub fn apdus(&self) -> usize {
        self.apdus.get()
    }

    /// Count `n` more APDUs sent for this conversation (by work the driver
    /// did for it, such as scripts).
    pub fn add_apdus(&self, n: usize) {
        self.apdus.set(self.apdus.get() + n);
    }

    /// Times this conversation reconnected after another process reset
    /// the card.
    pub fn resets_recovered(&self) -> u32 {
        self.resets.get()
    }

    /// The secure messaging in force, if any (its label).
    pub fn secure_label(&self) -> Option<String> {
        self.facts.borrow().secure_label.clone()
    }

    /// Ask the channel for `need`.
    async fn channel(&self, need: ChannelNeed) -> Result<(), ExchangeError> {
        match self.ask(Post::Need(need)).await {
            Mailbox::Done(r) => r,
            _ => Err(ExchangeError::Driver(
                "a channel need answered as something else".into(),
            )),
        }
    }

    /// Run `op` in one transaction. If another process reset the card
    /// during it, reconnect and run it again from its start, once (as
    /// [`super::Channel::run`]); with a secure channel in force the session
    /// is gone with the reset, so the secure messaging is dropped and the
    /// error stands.
    pub async fn transaction<T, E: FromExchange>(
        &self,
        mut op: impl AsyncFnMut(&Io) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            // A reset another process made shows at the begin as often as
            // inside the transaction: either way, reconnect and run again.
            let r = match self.channel(ChannelNeed::Begin).await {
                Ok(()) => {
                    let r = op(self).await;
                    self.channel(ChannelNeed::End { ok: r.is_ok() }).await?;
                    r
                }
                Err(e) => Err(E::from(e)),
            };
            match r {
                Err(e) if e.card_reset() && attempt == 1 => {
                    if self.secure_label().is_some() {
                        self.secure(None).await?;
                        return Err(e);
                    }
                    tracing::info!("card was reset by another process; reconnecting and running the operation again");
                    self.channel(ChannelNeed::Reconnect).await?;
                    self.resets.set(self.resets.get() + 1);
                }
                other => return other,
            }
        }
    }

    /// Protect every command from now on with `sm` (`None`: plain again).
    pub async fn secure(&self, sm: Option<Box<dyn SecureMessaging>>) -> Result<(), ExchangeError> {
        self.channel(ChannelNeed::Secure(sm)).await
    }

    /// Hand `work` of the driver's own kind to the driver; its answer.
    pub async fn extension(&self, work: Box<dyn Any>) -> Result<Box<dyn Any>, ExchangeError> {
        match self.ask(Post::Need(ChannelNeed::Extension(work))).await {
            Mailbox::Extended(a) => Ok(a),
            Mailbox::Done(Err(e)) => Err(e),
            _ => Err(ExchangeError::Driver(
                "its driver does no extension work".into(),
            )),
        }
    }

    /// The card's current DF as far as the host knows (`None`: unknown),
    /// as of the last answer.
    pub fn selected(&self) -> Option<Selected> {
        self.facts.borrow().selected.clone()
    }

    /// Largest data field the card takes in one command.
    pub fn max_data_per_apdu(&self) -> usize {
        self.facts.borrow().max_data
    }

    /// The card's answer to `c`.
    pub async fn transmit(&self, c: &Command) -> Result<Response, ExchangeError> {
        match self.ask(Post::Command(c.clone())).await {
            Mailbox::Answered(r) => r,
            _ => Err(ExchangeError::Driver(
                "a command answered as something else".into(),
            )),
        }
    }

    /// Post `post` and wait for the answer.
    fn ask(&self, post: Post) -> Pending<'_> {
        Pending {
            io: self,
            post: Some(post),
        }
    }

    /// The data of the card's 9000 answer to `c`; any other status is an
    /// error naming the command.
    pub async fn expect_ok(&self, c: &Command) -> Result<Vec<u8>, ExchangeError> {
        ok_data(c, self.transmit(c).await?)
    }

    /// [`Io::expect_ok`] for a read: 6282 (end of file before Ne bytes)
    /// still brings good data.
    async fn expect_read(&self, c: &Command) -> Result<Vec<u8>, ExchangeError> {
        let r = self.transmit(c).await?;
        if r.sw.is_ok() || r.sw == StatusWord::EndOfFile {
            Ok(r.data)
        } else {
            Err(ExchangeError::Status {
                command: describe(c),
                sw: r.sw,
            })
        }
    }

    /// Run `f` with every answer marked as a citizen's personal data: the
    /// trace shows `PERSONAL(n bytes)` for their data unless the session
    /// asked for personal data (reads of data groups and certificates).
    pub async fn personal<T>(&self, f: impl Future<Output = T>) -> T {
        let before = self.personal.replace(true);
        let r = f.await;
        self.personal.set(before);
        r
    }

    /// Read `len` bytes of the current EF from `offset`, in as few READ
    /// BINARY commands as the card allows: one extended read when it takes
    /// extended length, otherwise 256-byte pieces. Offsets above 32767 use
    /// odd INS B1.
    pub async fn read_binary(&self, offset: usize, len: usize) -> Result<Vec<u8>, ExchangeError> {
        let mut out = Vec::with_capacity(len.min(1 << 16));
        let max = self.facts.borrow().max_ne;
        while out.len() < len {
            let at = offset + out.len();
            let want = (len - out.len()).min(max);
            let data = if at <= 0x7FFF {
                self.expect_read(&crate::apdu::cmd::read_binary(at as u16, want))
                    .await?
            } else {
                // B1 wraps the data in DO 53 (tag, up to 3 length bytes):
                // leave room for that header in Ne, then take the value.
                let want = want.min(max - 4);
                let ne = (want + 4).min(max);
                let wrapped = self
                    .expect_read(&crate::apdu::cmd::read_binary_odd(at as u32, ne))
                    .await?;
                unwrap_do53(&wrapped).ok_or_else(|| ExchangeError::BadResponseData {
                    command: "READ BINARY (odd INS B1)".into(),
                    detail: format!(
                        "expected the data in a DO 53, got {}",
                        crate::hex::spaced(wrapped.get(..8).unwrap_or(&wrapped))
                    ),
                })?
            };
            if data.is_empty() {
                break;
            }
            out.extend_from_slice(&data);
        }
        out.truncate(len);
        Ok(out)
    }

    /// Write `data` into the current EF at `offset`: one command when
    /// extended length or chaining carries it, otherwise UPDATE BINARY
    /// pieces at increasing offsets (at most the card's own block).
    /// Offsets above 32767 use odd INS D7.
    pub async fn update_binary(&self, offset: usize, data: &[u8]) -> Result<(), ExchangeError> {
        self.update_binary_as(offset, data, false).await
    }

    /// [`Io::update_binary`] for a citizen's personal data: every
    /// command's data field is marked personal.
    pub async fn update_binary_personal(
        &self,
        offset: usize,
        data: &[u8],
    ) -> Result<(), ExchangeError> {
        self.update_binary_as(offset, data, true).await
    }

    async fn update_binary_as(
        &self,
        offset: usize,
        data: &[u8],
        personal: bool,
    ) -> Result<(), ExchangeError> {
        let mark = |c: Command| if personal { c.personal() } else { c };
        let f = self.facts.borrow().clone();
        let chunk = if f.max_data >= data.len() || f.chaining {
            data.len().max(1)
        } else {
            crate::apdu::SHORT_MAX_NC.min(f.max_data)
        };
        // The card's own limit (its profile's), whatever the transport allows.
        let chunk = f.max_update_block.map_or(chunk, |m| chunk.min(m.max(1)));
        let mut done = 0;
        while done < data.len() {
            let at = offset + done;
            // Odd INS carries 54/53 headers: keep the piece small enough for them.
            let (end, c) = if at <= 0x7FFF {
                let end = (done + chunk).min(data.len());
                let piece = data.get(done..end).unwrap_or_default();
                (end, crate::apdu::cmd::update_binary(at as u16, piece))
            } else {
                let end = (done + chunk.saturating_sub(10).max(1)).min(data.len());
                let piece = data.get(done..end).unwrap_or_default();
                (end, crate::apdu::cmd::update_binary_odd(at as u32, piece))
            };
            self.expect_ok(&mark(c)).await?;
            done = end;
        }
        Ok(())
    }
}

/// The value of a DO 53 (discretionary data) as returned by odd-INS READ BINARY.
fn unwrap_do53(b: &[u8]) -> Option<Vec<u8>> {
    let (&tag, rest) = b.split_first()?;
    if tag != 0x53 {
        return None;
    }
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = match l0 {
        0..=0x7F => (l0 as usize, rest),
        0x81 => (*rest.first()? as usize, rest.get(1..)?),
        0x82 => (
            u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as usize,
            rest.get(2..)?,
        ),
        _ => return None,
    };
    rest.get(..len).map(|v| v.to_vec())
}

/// What a conversation posts: a command for the card, or a need of its
/// channel.
enum Post {
    Command(Command),
    Need(ChannelNeed),
}

/// A conversation asking: it posts on its first poll (a command marked
/// personal if the conversation is inside [`Io::personal`] then), and is
/// ready with whatever answer comes in.
struct Pending<'a> {
    io: &'a Io,
    post: Option<Post>,
}

impl Future for Pending<'_> {
    type Output = Mailbox;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Mailbox> {
        if let Some(post) = self.post.take() {
            *self.io.mailbox.borrow_mut() = match post {
                Post::Command(command) => Mailbox::Asking {
                    command,
                    personal: self.io.personal.get(),
                },
                Post::Need(need) => Mailbox::Needing(need),
            };
            return Poll::Pending;
        }
        let mut mailbox = self.io.mailbox.borrow_mut();
        match std::mem::replace(&mut *mailbox, Mailbox::Empty) {
            m @ (Mailbox::Done(_) | Mailbox::Extended(_) | Mailbox::Answered(_)) => Poll::Ready(m),
            other => {
                *mailbox = other;
                Poll::Pending
            }
        }
    }
}

/// What a conversation wants next.
#[derive(Debug)]
pub enum Next<T> {
    /// Send this command and [`Machine::answer`] with the card's response.
    /// `personal`: the answer is a citizen's personal data (for the trace).
    Send { command: Command, personal: bool },
    /// Do this for the conversation and [`Machine::answer_channel`] (or,
    /// for an extension, [`Machine::answer_extension`]).
    Channel(ChannelNeed),
    /// The conversation is over.
    Done(T),
}

/// A conversation as a step machine: the one loop that drives it asks
/// [`Machine::resume`] for the next command and gives back the answer.
pub struct Machine<'a, F: Future> {
    io: &'a Io,
    conversation: Pin<Box<F>>,
}

impl<'a, T, E, F> Machine<'a, F>
where
    F: Future<Output = Result<T, E>>,
    E: From<ExchangeError>,
{
    /// `conversation` must ask only `io`.
    pub fn new(io: &'a Io, conversation: F) -> Self {
        Machine {
            io,
            conversation: Box::pin(conversation),
        }
    }

    /// Run the conversation to its next command, or to its end.
    pub fn resume(&mut self) -> Next<Result<T, E>> {
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(r) = self.conversation.as_mut().poll(&mut cx) {
            return Next::Done(r);
        }
        let mut mailbox = self.io.mailbox.borrow_mut();
        match std::mem::replace(&mut *mailbox, Mailbox::Empty) {
            Mailbox::Asking { command, personal } => Next::Send { command, personal },
            Mailbox::Needing(need) => Next::Channel(need),
            // Pending on anything but the card: only a conversation that
            // awaits something other than its Io gets here.
            _ => Next::Done(Err(E::from(ExchangeError::Driver(
                "the conversation waited on something other than the card".into(),
            )))),
        }
    }

    /// The card's answer to the command [`Machine::resume`] gave, and the
    /// card's current DF after it as far as the driver knows.
    pub fn answer(&mut self, r: Result<Response, ExchangeError>, selected: Option<Selected>) {
        self.answer_wire(r, selected, 1);
    }

    /// [`Machine::answer`], saying how many physical APDUs the command
    /// took (GET RESPONSE rounds, chained parts).
    pub fn answer_wire(
        &mut self,
        r: Result<Response, ExchangeError>,
        selected: Option<Selected>,
        apdus: usize,
    ) {
        self.io.facts.borrow_mut().selected = selected;
        self.io.add_apdus(apdus);
        *self.io.mailbox.borrow_mut() = Mailbox::Answered(r);
    }

    /// The outcome of a [`ChannelNeed`]; `facts`: what the channel is now,
    /// when that changed (a transaction begun, secure messaging installed).
    pub fn answer_channel(&mut self, r: Result<(), ExchangeError>, facts: Option<Facts>) {
        if let Some(f) = facts {
            *self.io.facts.borrow_mut() = f;
        }
        *self.io.mailbox.borrow_mut() = Mailbox::Done(r);
    }

    /// The driver's answer to [`ChannelNeed::Extension`], the APDUs it
    /// sent for it, and what the channel is now.
    pub fn answer_extension(&mut self, answer: Box<dyn Any>, apdus: usize, facts: Facts) {
        *self.io.facts.borrow_mut() = facts;
        self.io.add_apdus(apdus);
        *self.io.mailbox.borrow_mut() = Mailbox::Extended(answer);
    }
}

/// Run `conversation` over `ex`: the one loop. Every command it asks goes
/// through the exchange (GET RESPONSE, 6Cxx, chaining, secure messaging,
/// trace); every answer goes back with the card's current DF.
pub fn drive<T, E, F>(ex: &mut Exchange<'_>, io: &Io, conversation: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: From<ExchangeError>,
{
    let mut m = Machine::new(io, conversation);
    loop {
        match m.resume() {
            Next::Done(r) => return r,
            Next::Send { command, personal } => {
                let (r, apdus) = transmit_counted(ex, &command, personal);
                m.answer_wire(r, ex.selected().cloned(), apdus);
            }
            // Already in one transaction: a nested one is the same.
            Next::Channel(ChannelNeed::Begin | ChannelNeed::End { .. }) => {
                m.answer_channel(Ok(()), None)
            }
            Next::Channel(need) => m.answer_channel(
                Err(ExchangeError::Driver(format!(
                    "{need:?} inside one exchange"
                ))),
                None,
            ),
        }
    }
}

/// Send `command` over `ex`; the answer and the physical APDUs it took.
pub(super) fn transmit_counted(
    ex: &mut Exchange<'_>,
    command: &Command,
    personal: bool,
) -> (Result<Response, ExchangeError>, usize) {
    let before = ex.wire_apdus();
    let r = if personal {
        ex.personal(|ex| ex.transmit(command))
    } else {
        ex.transmit(command)
    };
    (r, ex.wire_apdus().saturating_sub(before))
}

/// A driver's work of its own kind ([`ChannelNeed::Extension`]): its
/// answer and the APDUs it sent.
pub type Extension<'a> = dyn FnMut(&mut super::Channel, Box<dyn Any>) -> (Box<dyn Any>, usize) + 'a;

/// The extension work of a driver that does none.
pub fn no_extension(_: &mut super::Channel, _: Box<dyn Any>) -> (Box<dyn Any>, usize) {
    (Box::new(()), 0)
}

/// The [`Facts`] of an exchange.
pub fn facts_of(ex: &Exchange<'_>) -> Facts {
    Facts {
        selected: ex.selected().cloned(),
        max_data: ex.max_data_per_apdu(),
        max_ne: ex.max_ne_per_apdu(),
        chaining: ex.caps.chaining && ex.opts.allow_chaining,
        max_update_block: ex.max_update_block,
        secure_label: ex.secure_label(),
    }
}

/// Hold the conversation `op` makes over `ex` ([`drive`] with an [`Io`]
/// made for it).
pub fn converse<T, E>(
    ex: &mut Exchange<'_>,
    op: impl AsyncFnOnce(&Io) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<ExchangeError>,
{
    let io = Io::new(facts_of(ex));
    drive(ex, &io, op(&io))
}

#[cfg(test)]
mod tests {
    //! The machine fed canned answers: no transport, no exchange.
    use super::*;
    use crate::apdu::cmd;
    use crate::hex::parse as h;

    /// Drive `conversation` with `answers` in order; the commands it sent.
    fn canned<T>(
        io: &Io,
        conversation: impl Future<Output = Result<T, ExchangeError>>,
        answers: &[&str],
    ) -> (Vec<String>, Result<T, ExchangeError>) {
        let mut m = Machine::new(io, conversation);
        let mut sent = Vec::new();
        let mut answers = answers.iter();
        loop {
            match m.resume() {
                Next::Done(r) => return (sent, r),
                Next::Channel(_) => m.answer_channel(Ok(()), None),
                Next::Send { command, .. } => {
                    sent.push(crate::hex::compact(&command.encode().unwrap()));
                    let r = answers
                        .next()
                        .map(|a| Response::from_bytes(&h(a).unwrap()).map_err(ExchangeError::from))
                        .unwrap_or(Err(ExchangeError::BadResponseData {
                            command: "canned".into(),
                            detail: "no more answers".into(),
                        }));
                    m.answer(r, None);
                }
            }
        }
    }

    #[test]
    fn a_long_read_is_asked_in_pieces() {
        let io = Io::new(Facts::short());
        let first = format!("{}9000", "11".repeat(256));
        let second = format!("{}9000", "22".repeat(44));
        let (sent, r) = canned(&io, io.read_binary(0, 300), &[&first, &second]);
        assert_eq!(sent, ["00B0000000", "00B001002C"]);
        let data = r.unwrap();
        assert_eq!(data.len(), 300);
        assert_eq!(data[256..], [0x22; 44]);
    }

    #[test]
    fn a_read_stops_where_the_file_ends() {
        let io = Io::new(Facts::short());
        let first = format!("{}9000", "11".repeat(256));
        let (sent, r) = canned(&io, io.read_binary(0, 300), &[&first, "6282"]);
        assert_eq!(sent, ["00B0000000", "00B001002C"]);
        assert_eq!(r.unwrap(), vec![0x11; 256]);
    }

    #[test]
    fn a_refused_write_stops_the_conversation_naming_the_command() {
        let io = Io::new(Facts {
            max_update_block: Some(4),
            ..Facts::short()
        });
        let (sent, r) = canned(
            &io,
            io.update_binary(0, &[1, 2, 3, 4, 5, 6, 7, 8, 9]),
            &["9000", "6A84"],
        );
        // The third piece is never asked: the card refused the second.
        assert_eq!(sent, ["00D600000401020304", "00D600040405060708"]);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("00 D6 00 04") && e.contains("6A84"), "{e}");
    }

    #[test]
    fn answers_and_the_selection_reach_the_conversation() {
        let io = Io::new(Facts::short());
        let conv = async {
            let before = io.selected();
            let r = io.transmit(&cmd::select_mf(cmd::SelectReturn::Fcp)).await?;
            Ok::<_, ExchangeError>((before, r.sw, io.selected()))
        };
        let mut m = Machine::new(&io, conv);
        let Next::Send { command, personal } = m.resume() else {
            panic!("expected a command")
        };
        assert_eq!(command.ins, 0xA4);
        assert!(!personal);
        m.answer(
            Ok(Response::from_bytes(&[0x90, 0x00]).unwrap()),
            Some(Selected::Mf),
        );
        let Next::Done(Ok((before, sw, after))) = m.resume() else {
            panic!("expected the end")
        };
        assert_eq!(
            (before, sw, after),
            (None, StatusWord::Ok, Some(Selected::Mf))
        );
    }

    #[test]
    fn personal_marks_only_the_commands_inside_it() {
        let io = Io::new(Facts::short());
        let conv = async {
            io.personal(io.transmit(&cmd::read_binary(0, 4))).await?;
            io.transmit(&cmd::read_binary(0, 4)).await?;
            Ok::<_, ExchangeError>(())
        };
        let mut m = Machine::new(&io, conv);
        let mut marks = Vec::new();
        while let Next::Send { personal, .. } = m.resume() {
            marks.push(personal);
            m.answer(Ok(Response::from_bytes(&[0x90, 0x00]).unwrap()), None);
        }
        assert_eq!(marks, [true, false]);
    }

    /// A reset seen when the transaction begins is recovered like one
    /// inside it: reconnect, begin again, run the operation.
    #[test]
    fn a_reset_at_the_begin_of_a_transaction_reconnects_and_runs_again() {
        let io = Io::new(Facts::short());
        let conv = io.transaction(async |io| io.transmit(&cmd::get_challenge(8)).await);
        let mut m = Machine::new(&io, conv);
        let reset = || {
            ExchangeError::Transport(crate::transport::TransportError::CardReset {
                reader: "r".into(),
            })
        };
        let mut seen = Vec::new();
        let r = loop {
            match m.resume() {
                Next::Done(r) => break r,
                Next::Channel(need) => {
                    let first_begin = matches!(need, ChannelNeed::Begin) && seen.is_empty();
                    seen.push(format!("{need:?}"));
                    m.answer_channel(if first_begin { Err(reset()) } else { Ok(()) }, None);
                }
                Next::Send { .. } => {
                    seen.push("Send".into());
                    m.answer(Ok(Response::from_bytes(&[1, 2, 0x90, 0x00]).unwrap()), None);
                }
            }
        };
        assert_eq!(r.unwrap().data, [1, 2]);
        assert_eq!(
            seen,
            ["Begin", "Reconnect", "Begin", "Send", "End { ok: true }"]
        );
        assert_eq!(io.resets_recovered(), 1);
    }

    #[test]
    fn a_conversation_that_waits_on_something_else_ends_with_an_error() {
        let io = Io::new(Facts::short());
        let conv = async {
            std::future::pending::<()>().await;
            Ok::<(), ExchangeError>(())
        };
        let mut m = Machine::new(&io, conv);
        assert!(matches!(
            m.resume(),
            Next::Done(Err(ExchangeError::Driver(_)))
        ));
    }
}
