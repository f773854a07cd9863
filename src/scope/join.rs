//! Counting what a scope must wait for, and telling it when that reaches zero.
//!
//! # Invariants
//!
//! 1. `count` is the number of units still running: the scope's body (one
//!    unit, from creation until the body returns or is dropped), each task,
//!    and each child scope (one unit until *its* count reaches zero, which
//!    may be long after the child's future was dropped: DESIGN §3.8).
//! 2. Once `count` has reached zero it never rises again: [`JoinCounter::try_add`]
//!    refuses, so nothing can join a scope that has finished.
//! 3. `done` is cancelled exactly when `count` reaches zero, after which the
//!    parent's count (if any) is decremented once — so an ancestor cannot
//!    finish before every descendant unit has.
//!
//! "Done" is signalled by a [`CancellationSource`]: waiting for it is
//! `cancelled().await`, the engine's lost-wake-up-free registry, so the loom
//! models of the token cover the wake-up and `tests/loom_scope.rs` covers the
//! counting.

use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::Arc;
use crate::{CancelReason, CancellationSource, CancellationToken};

/// Counts a scope's running units; see the module docs.
pub struct JoinCounter {
    count: AtomicUsize,
    done: CancellationSource,
    parent: Option<Arc<JoinCounter>>,
}

impl JoinCounter {
    /// A counter holding one unit (the scope's body), counted as one unit
    /// of `parent` until it reaches zero. `parent` must still be running
    /// (hold a unit of its own), else `None` is returned.
    pub fn new(parent: Option<Arc<JoinCounter>>) -> Option<Arc<JoinCounter>> {
        if let Some(parent) = &parent {
            if !parent.try_add() {
                return None;
            }
        }
        Some(Arc::new(JoinCounter {
            count: AtomicUsize::new(1),
            done: CancellationSource::new(),
            parent,
        }))
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

    /// Removes a unit; the last one signals `done` and releases the
    /// parent's unit, and so on up the chain (a loop, not recursion).
    pub fn release(this: &Arc<Self>) {
        let mut counter = Arc::clone(this);
        // AcqRel: whatever a finished unit did happens-before the waiter
        // that sees zero.
        while counter.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            counter
                .done
                .cancel_with(CancelReason::message("scope finished"));
            match &counter.parent {
                Some(parent) => counter = Arc::clone(parent),
                None => break,
            }
        }
    }

    /// Fires when the count has reached zero.
    pub fn done(&self) -> CancellationToken {
        self.done.token()
    }

    /// Whether the count has reached zero.
    pub fn is_done(&self) -> bool {
        self.done.is_cancelled()
    }
}
