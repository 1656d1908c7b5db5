//! A PIN's bytes do not outlive the command that carries it: while a
//! VERIFY goes through the exchange, every heap block freed is searched for
//! them (a global allocator of this test binary). The encoded APDU of a
//! secret command is wiped before it is freed, as are the command's own
//! copies.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use cardsmith::apdu::cmd;
use cardsmith::secret::Secret;
use cardsmith::transport::{CardCaps, Exchange, ExchangeOptions, Session, TransportError};

/// The PIN: bytes no other allocation of this test holds.
const PIN: [u8; 8] = [0x13, 0x57, 0x9B, 0xDF, 0x24, 0x68, 0xAC, 0xE0];

static WATCH: AtomicBool = AtomicBool::new(false);
static FOUND: AtomicUsize = AtomicUsize::new(0);

struct Watch;

unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if WATCH.load(Ordering::SeqCst) && layout.size() >= PIN.len() {
            // SAFETY: the block is still allocated and `size` bytes long.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if block.windows(PIN.len()).any(|w| w == PIN) {
                FOUND.fetch_add(1, Ordering::SeqCst);
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Watch = Watch;

/// A card that says 9000 to everything and keeps nothing.
struct Agreeable;

impl Session for Agreeable {
    fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(vec![0x90, 0x00])
    }
}

#[test]
fn a_verify_leaves_no_copy_of_the_pin_in_freed_memory() {
    let caps = CardCaps {
        extended_length: false,
        chaining: false,
    };
    let mut ex = Exchange::new(Box::new(Agreeable), ExchangeOptions::default(), caps);
    WATCH.store(true, Ordering::SeqCst);
    let r = ex
        .transmit(&cmd::verify(0x81, Secret::new(PIN.to_vec())))
        .expect("exchange");
    drop(ex);
    WATCH.store(false, Ordering::SeqCst);
    assert!(r.sw.is_ok());
    assert_eq!(
        FOUND.load(Ordering::SeqCst),
        0,
        "heap blocks freed with the PIN still in them"
    );
}
/// Each thing made from a secret command, made and dropped on its own: what
/// leaks is named.
#[test]
fn a_secret_command_its_clone_encoding_and_trace_forms_are_wiped() {
    let leaks = |f: &dyn Fn()| {
        FOUND.store(0, Ordering::SeqCst);
        WATCH.store(true, Ordering::SeqCst);
        f();
        WATCH.store(false, Ordering::SeqCst);
        FOUND.load(Ordering::SeqCst)
    };
    let pin = || Secret::new(PIN.to_vec());
    assert_eq!(leaks(&|| drop(pin())), 0, "the secret");
    assert_eq!(leaks(&|| drop(cmd::verify(0x81, pin()))), 0, "the command");
    assert_eq!(
        leaks(&|| drop(cmd::verify(0x81, pin()).clone())),
        0,
        "its clone"
    );
    assert_eq!(
        leaks(&|| {
            let c = cmd::verify(0x81, pin());
            assert!(c.redacted().contains("REDACTED(8 bytes)"));
            assert!(c.traced().contains("REDACTED(8 bytes)"));
        }),
        0,
        "its redacted and traced forms (built from its encoding)"
    );
}
