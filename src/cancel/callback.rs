//! A callback registered with `on_cancel`, and the race between running it
//! and unregistering it.
//!
//! # States
//!
//! ```text
//! PENDING ──run──▶ RUNNING ──▶ DONE
//!    │
//!    └──disarm──▶ DISARMED
//! ```
//!
//! Both transitions out of `PENDING` are compare-and-swaps, so exactly one of
//! "the callback runs" and "the unregister wins" happens. A `Registration`
//! that loses waits for `DONE` — unless the callback is running on its own
//! thread, further up the stack (it is being dropped from inside its own
//! callback, or from a callback that callback triggered), where waiting would
//! never end. Callbacks are plain synchronous closures, so "running on this
//! thread" is exact: a thread-local stack of the callbacks being executed.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::AtomicU64;
use std::sync::PoisonError;

use super::reason::CancelReason;
use crate::loom::sync::atomic::{AtomicU8, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::loom::thread;

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;
const DISARMED: u8 = 3;

/// Registration order across all tokens; only compared, never synchronised
/// on, so a plain std atomic (loom does not allow statics) is enough.
static NEXT_SEQ: AtomicU64 = AtomicU64::new(0);

type CallbackFn = Box<dyn FnOnce(&CancelReason) + Send>;

pub(crate) struct Callback {
    state: AtomicU8,
    seq: u64,
    f: Mutex<Option<CallbackFn>>,
}

#[cfg(not(loom))]
std::thread_local! {
    /// Addresses of the callbacks this thread is executing, innermost last.
    static EXECUTING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

#[cfg(loom)]
loom::thread_local! {
    static EXECUTING: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

impl Callback {
    pub(crate) fn new(f: CallbackFn) -> Arc<Callback> {
        Arc::new(Callback {
            state: AtomicU8::new(PENDING),
            seq: NEXT_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            f: Mutex::new(Some(f)),
        })
    }

    /// Registration order: higher was registered later.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    fn take(&self) -> Option<CallbackFn> {
        self.f.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn address(&self) -> usize {
        self as *const Callback as usize
    }

    /// Runs the callback unless it was disarmed first. Returns the panic
    /// payload if it panicked.
    pub(crate) fn run(&self, reason: &CancelReason) -> std::thread::Result<()> {
        if self
            .state
            .compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Ok(());
        }
        let f = self.take();
        EXECUTING.with(|stack| stack.borrow_mut().push(self.address()));
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            if let Some(f) = f {
                f(reason);
            }
        }));
        EXECUTING.with(|stack| stack.borrow_mut().pop());
        // Release: what the callback did happens-before a waiter seeing DONE.
        self.state.store(DONE, Ordering::Release);
        result
    }

    /// Stops a callback that has not started from ever running. Returns
    /// `true` if it won, `false` if the callback has started (or finished).
    pub(crate) fn disarm(&self) -> bool {
        let won = self
            .state
            .compare_exchange(PENDING, DISARMED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if won {
            drop(self.take());
        }
        won
    }

    /// Waits until a started callback has returned, unless it is running on
    /// this thread (then it cannot finish before we return).
    pub(crate) fn wait_until_done(&self) {
        let address = self.address();
        if EXECUTING.with(|stack| stack.borrow().contains(&address)) {
            return;
        }
        while self.state.load(Ordering::Acquire) != DONE {
            thread::yield_now();
        }
    }
}
