//! A scope's cancellation: its source, when it was cancelled, and why.
//!
//! # Invariants
//!
//! 1. The scope's token is the source's; the first reason wins, so
//!    "timed out" is read off the reason, not kept as a second flag.
//! 2. `cancelled_at` is set once, by whoever first sees the token cancelled
//!    (the cancelling code inside the scope, the driver woken by the token,
//!    or the watchdog of a dropped scope); the grace period and warnings
//!    count from it.
//! 3. Cancellation run by the scope itself never unwinds into the scope's
//!    machinery: a panicking `on_cancel` callback is caught and handed back
//!    to the caller, which records it (a panic in user code during
//!    cancellation must never cost a failure).

use std::panic::{self, AssertUnwindSafe};
use std::sync::OnceLock;

use tokio::time::Instant;

use crate::cancel::{CancelReason, CancellationSource, CancellationToken};
use crate::scope::engine::ledger::PanicPayload;

pub(crate) struct CancelState {
    source: CancellationSource,
    cancelled_at: OnceLock<Instant>,
}

impl CancelState {
    pub(crate) fn new(source: CancellationSource) -> Self {
        CancelState {
            source,
            cancelled_at: OnceLock::new(),
        }
    }

    pub(crate) fn token(&self) -> CancellationToken {
        self.source.token()
    }

    /// The scope's token, lent.
    pub(crate) fn token_ref(&self) -> &CancellationToken {
        self.source.token_ref()
    }

    pub(crate) fn source(&self) -> &CancellationSource {
        &self.source
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.source.is_cancelled()
    }

    pub(crate) fn reason(&self) -> Option<CancelReason> {
        self.source.reason()
    }

    /// Cancels with `reason` (invariant 3): `Ok(true)` if this call
    /// cancelled, `Ok(false)` if the scope already was, `Err` with the first
    /// callback panic once every callback has run.
    pub(crate) fn cancel(&self, reason: CancelReason) -> Result<bool, PanicPayload> {
        let result = panic::catch_unwind(AssertUnwindSafe(|| self.source.cancel_with(reason)));
        self.note_cancelled();
        // A panic came after the token was flagged: the scope is cancelled.
        result
    }

    /// Records when the scope was cancelled, if it is and nobody has yet
    /// (invariant 2). Returns `true` the one time it records.
    pub(crate) fn note_cancelled(&self) -> bool {
        if !self.source.is_cancelled() || self.cancelled_at.get().is_some() {
            return false;
        }
        self.cancelled_at.set(Instant::now()).is_ok()
    }

    /// When the scope was seen cancelled.
    pub(crate) fn cancelled_at(&self) -> Option<Instant> {
        self.cancelled_at.get().copied()
    }

    /// Whether the scope's own deadline cancelled it (invariant 1).
    pub(crate) fn timed_out(&self) -> bool {
        self.source.reason() == Some(CancelReason::Timeout)
    }

    /// Whether an ancestor, or a token the scope was linked to, cancelled it.
    pub(crate) fn cancelled_from_outside(&self) -> bool {
        self.source.reason().is_some_and(|r| r.is_inherited())
    }
}
