//! Deadlines a token knows: the earliest among its own source's and every
//! ancestor's.
//!
//! A node keeps its effective deadline as one word: nanoseconds of tokio's
//! clock since a process-wide epoch, or [`NEVER`]. A source computes it as
//! the earlier of its own timer and its parents' effective deadlines when it
//! is linked or re-armed; tightening it then walks the linked descendants
//! (breadth first, a loop) and lowers theirs, never raising one. So a child
//! can tighten its parent's deadline, never extend it; and a deadline set on
//! a parent after a child was linked reaches the child.
//!
//! # Invariants
//!
//! 1. A node's deadline only ever decreases, except when its own source
//!    re-arms its timer: then it is recomputed from that timer and the
//!    parents' current deadlines.
//! 2. A linked child reads its parents' deadlines *after* registering with
//!    them; a parent lowers its own deadline *before* walking its children.
//!    Whichever of the two locks the parent's registry second sees the
//!    other's write, so no tightening is lost.

use std::sync::OnceLock;

use tokio::time::Instant;

use super::node::Node;
use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// No deadline.
pub(crate) const NEVER: u64 = u64::MAX;

/// The process's epoch: the first instant the library read. Deadlines are
/// counted from it here, and task ages in the task tree.
pub(crate) fn process_epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// The instant deadlines are counted from, on tokio's clock.
fn epoch() -> Instant {
    Instant::from_std(process_epoch())
}

/// `deadline` as nanoseconds since the epoch (a deadline before the epoch
/// is the epoch: already past).
pub(crate) fn to_nanos(deadline: Option<Instant>) -> u64 {
    match deadline {
        None => NEVER,
        Some(deadline) => {
            let since = deadline.saturating_duration_since(epoch());
            u64::try_from(since.as_nanos())
                .unwrap_or(NEVER - 1)
                .min(NEVER - 1)
        }
    }
}

/// The instant `nanos` stands for; `None` for [`NEVER`] or an instant the
/// clock cannot hold.
pub(crate) fn from_nanos(nanos: u64) -> Option<Instant> {
    if nanos == NEVER {
        return None;
    }
    epoch().checked_add(std::time::Duration::from_nanos(nanos))
}

/// A node's effective deadline (see the module docs).
pub(crate) struct Deadline(AtomicU64);

impl Default for Deadline {
    fn default() -> Self {
        Deadline(AtomicU64::new(NEVER))
    }
}

impl Deadline {
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Sets it outright (invariant 1: only the node's own source does).
    pub(crate) fn set(&self, nanos: u64) {
        self.0.store(nanos, Ordering::Release);
    }

    /// Lowers it to `nanos` if that is earlier; `true` if it changed.
    pub(crate) fn lower(&self, nanos: u64) -> bool {
        let mut current = self.0.load(Ordering::Acquire);
        while nanos < current {
            match self
                .0
                .compare_exchange_weak(current, nanos, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
        false
    }
}

/// Lowers the deadline of every node linked below `root` (not `root`
/// itself) to at most `nanos`: breadth first, a loop. A node already at
/// or before `nanos` stops the walk below it (its descendants are too).
pub(crate) fn tighten_below(root: &crate::loom::sync::Arc<Node>, nanos: u64) {
    if nanos == NEVER {
        return;
    }
    let mut queue = root.children();
    while let Some(node) = queue.pop() {
        if node.deadline().lower(nanos) {
            queue.extend(node.children());
        }
    }
}
