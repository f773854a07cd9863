//! Counting what a scope must wait for, and waking it when that reaches zero.
//!
//! # Invariants
//!
//! 1. `count` is the number of units still running: the scope's body (one
//!    unit, from creation until the body returns or is dropped), each task,
//!    and each child scope (one unit until *its* count reaches zero, which
//!    may be long after the child's future was dropped).
//! 2. Once `count` has reached zero it never rises again: [`JoinCounter::try_add`]
//!    refuses, so nothing can join a scope that has finished.
//! 3. The unit that brings `count` to zero wakes the waiter, then (in
//!    [`release_chain`]) releases the parent's unit once: an ancestor
//!    cannot finish before every descendant unit has.
//! 4. No lost wake-up: a waiter stores its waker under `waiter`'s lock and
//!    then reads `count`; the last release decrements `count` and then
//!    takes the waker under the same lock. Whichever locks second sees the
//!    other's write.
//!
//! `tests/loom_scope.rs` model-checks all four.

use std::task::{Context, Poll, Waker};

use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::Mutex;

/// Counts a scope's running units; see the module docs.
pub struct JoinCounter {
    count: AtomicUsize,
    waiter: Mutex<Option<Waker>>,
}

impl Default for JoinCounter {
    fn default() -> Self {
        JoinCounter::new()
    }
}

impl JoinCounter {
    /// A counter holding one unit: the scope's body.
    pub fn new() -> Self {
        JoinCounter {
            count: AtomicUsize::new(1),
            waiter: Mutex::new(None),
        }
    }

    /// Adds a unit unless the count already reached zero (invariant 2).
    pub fn try_add(&self) -> bool {
        let mut current = self.count.load(Ordering::Acquire);
        loop {
            if current == 0 {
                return false;
            }
            match self.count.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Removes a unit. Returns `true` if it was the last one; then the
    /// waiter has been woken (invariant 3).
    pub fn release(&self) -> bool {
        // AcqRel: whatever a finished unit did happens-before the waiter
        // that sees zero.
        if self.count.fetch_sub(1, Ordering::AcqRel) != 1 {
            return false;
        }
        let waiter = self.lock().take();
        if let Some(waker) = waiter {
            waker.wake();
        }
        true
    }

    /// Ready once the count has reached zero (invariant 4).
    pub fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_done() {
            return Poll::Ready(());
        }
        let replaced = {
            let mut waiter = self.lock();
            match &*waiter {
                Some(current) if current.will_wake(cx.waker()) => None,
                _ => waiter.replace(cx.waker().clone()),
            }
        };
        drop(replaced);
        if self.is_done() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Whether the count has reached zero.
    pub fn is_done(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    fn lock(&self) -> crate::loom::sync::MutexGuard<'_, Option<Waker>> {
        // Only a waker is stored under this lock: never poisoned by user code.
        self.waiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Releases one unit of `node`'s counter and, each time a counter reaches
/// zero, one unit of its parent's, up the chain: a loop, not recursion.
/// `counter` and `parent` say where a node keeps its counter and parent.
pub fn release_chain<'a, N: 'a>(
    node: &'a N,
    counter: impl Fn(&'a N) -> &'a JoinCounter,
    parent: impl Fn(&'a N) -> Option<&'a N>,
) {
    let mut node = node;
    while counter(node).release() {
        match parent(node) {
            Some(next) => node = next,
            None => break,
        }
    }
}
