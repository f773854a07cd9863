//! The failure ledger: every error and panic a scope owns, and the pure
//! function that turns them into the scope's outcome.
//!
//! # Invariants
//!
//! 1. Every failure gets a sequence number when it is recorded, so "first"
//!    means first in time; [`Ledger::take`] returns them in that order.
//! 2. A failure tagged with a task belongs to the ledger until that task's
//!    handle claims it ([`Ledger::claim`]); a claimed failure is the
//!    handle's and is not reported again. Nothing else removes a failure.
//! 3. Errors are stored erased (`Box<dyn Any + Send>`): the ledger does not
//!    know the scope's error type. The typed face downcasts them once, at
//!    the scope's exit.
//! 4. The lock is held only to push, claim or take; never while user code
//!    runs.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::scope::engine::one_lock::Locked;

/// An erased error of the scope's error type.
pub(crate) type Payload = Box<dyn Any + Send>;

/// What `catch_unwind` gives for a panic.
pub(crate) type PanicPayload = Box<dyn Any + Send>;

/// What a failure is: judged by the error itself, not by when it came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A real failure: never absorbed, never displaced by a cancellation.
    Real,
    /// An error that is a cancellation, returned by code whose token had
    /// fired: how cancelled code stops.
    Cancellation,
}

impl Kind {
    /// The kind of an error that `is_cancellation` (by its type), from code
    /// whose token `was_cancelled`. A cancellation error from code that was
    /// not cancelled (an inner timeout, say) is a real failure of that code.
    pub(crate) fn judge(is_cancellation: bool, was_cancelled: bool) -> Kind {
        if is_cancellation && was_cancelled {
            Kind::Cancellation
        } else {
            Kind::Real
        }
    }
}

/// One failure the scope owns.
#[derive(Debug)]
pub(crate) struct Failure<P> {
    pub(crate) seq: u64,
    /// The failed task's id, `None` for the body.
    pub(crate) task: Option<u64>,
    pub(crate) kind: Kind,
    pub(crate) error: P,
}

#[derive(Default)]
struct Entries {
    failures: Vec<Failure<Payload>>,
    panics: Vec<PanicPayload>,
}

/// The failures and panics of one scope.
#[derive(Default)]
pub(crate) struct Ledger {
    /// The next sequence number: how many failures and panics were recorded.
    next: AtomicU64,
    /// Allocated on the first failure: most scopes never fail.
    entries: Mutex<Option<Box<Entries>>>,
}

impl Ledger {
    fn lock(&self) -> Locked<MutexGuard<'_, Option<Box<Entries>>>> {
        // Nothing that can panic runs under the lock (invariant 4).
        Locked::new(self.entries.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Records a failure (invariant 1).
    pub(crate) fn record(&self, task: Option<u64>, kind: Kind, error: Payload) {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.lock();
        entries.get_or_insert_default().failures.push(Failure {
            seq,
            task,
            kind,
            error,
        });
    }

    /// Records a panic, to be resumed when the scope exits.
    pub(crate) fn record_panic(&self, payload: PanicPayload) {
        self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().get_or_insert_default().panics.push(payload);
    }

    /// Whether a real failure or a panic has been recorded (and not yet
    /// claimed by a handle).
    pub(crate) fn has_real_failure(&self) -> bool {
        if self.next.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.lock().as_ref().is_some_and(|entries| {
            !entries.panics.is_empty() || entries.failures.iter().any(|f| f.kind == Kind::Real)
        })
    }

    /// Hands task `task`'s failure to its handle (invariant 2).
    pub(crate) fn claim(&self, task: u64) -> Option<Payload> {
        let mut entries = self.lock();
        let entries = entries.as_mut()?;
        let index = entries
            .failures
            .iter()
            .position(|failure| failure.task == Some(task))?;
        Some(entries.failures.remove(index).error)
    }

    /// Everything the ledger holds, once every unit of the scope has
    /// finished: the failures in order, and the first panic.
    pub(crate) fn take(&self) -> (Vec<Failure<Payload>>, Option<PanicPayload>) {
        // Every record happens-before the last unit of the scope is
        // released, and so before this: nothing recorded, nothing to lock.
        if self.next.load(Ordering::Relaxed) == 0 {
            return (Vec::new(), None);
        }
        let Some(mut entries) = self.lock().take() else {
            return (Vec::new(), None);
        };
        let mut failures = std::mem::take(&mut entries.failures);
        failures.sort_by_key(|failure| failure.seq);
        let panic = (!entries.panics.is_empty()).then(|| entries.panics.swap_remove(0));
        (failures, panic)
    }
}

/// How the scope ended, besides its failures.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ending {
    /// The body returned a value.
    pub(crate) body_returned: bool,
    /// The scope's own deadline cancelled it.
    pub(crate) timed_out: bool,
    /// An ancestor, or a token the scope was linked to, cancelled it.
    pub(crate) cancelled_from_outside: bool,
}

/// What the scope returns, before the errors are given their type.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict<P> {
    /// The body's value.
    Value,
    /// `first` is the first real failure if there is one, else the first
    /// cancellation error; `later` holds every other error, in order.
    Failed { first: P, later: Vec<P> },
    /// The scope's own deadline cut work short; only cancellation errors.
    TimedOut { errors: Vec<P> },
}

/// The scope's outcome from its failures (in order) and how it ended:
///
/// 1. a real failure: `Failed`, the first real one first, every other error
///    after it, in order (cancellations never displace a real failure);
/// 2. no failure: the body's value;
/// 3. only cancellation errors, after the scope's own deadline: `TimedOut`;
/// 4. only cancellation errors, and the body returned a value and nothing
///    outside cancelled the scope: the scope cancelled its own work (by
///    `cancel`, a race's winner, a task's own token) and absorbs how it
///    stopped: the body's value;
/// 5. otherwise `Failed`, so the caller learns the work did not finish.
pub(crate) fn outcome<P>(failures: Vec<Failure<P>>, ending: Ending) -> Verdict<P> {
    let first_real = failures.iter().position(|f| f.kind == Kind::Real);
    let mut errors: Vec<P> = failures.into_iter().map(|f| f.error).collect();
    if let Some(index) = first_real {
        let first = errors.remove(index);
        return Verdict::Failed {
            first,
            later: errors,
        };
    }
    if errors.is_empty() {
        return Verdict::Value;
    }
    if ending.timed_out {
        return Verdict::TimedOut { errors };
    }
    if ending.body_returned && !ending.cancelled_from_outside {
        return Verdict::Value;
    }
    let first = errors.remove(0);
    Verdict::Failed {
        first,
        later: errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(seq: u64, kind: Kind, error: &'static str) -> Failure<&'static str> {
        Failure {
            seq,
            task: Some(seq),
            kind,
            error,
        }
    }

    const RETURNED: Ending = Ending {
        body_returned: true,
        timed_out: false,
        cancelled_from_outside: false,
    };

    #[test]
    fn a_real_failure_comes_first_even_after_earlier_cancellations() {
        let failures = vec![
            failure(0, Kind::Cancellation, "sibling cancelled"),
            failure(1, Kind::Real, "disk full"),
            failure(2, Kind::Real, "later"),
        ];
        assert_eq!(
            outcome(failures, Ending::default()),
            Verdict::Failed {
                first: "disk full",
                later: vec!["sibling cancelled", "later"],
            }
        );
    }

    #[test]
    fn a_real_failure_is_never_absorbed_not_even_after_a_timeout() {
        let failures = vec![failure(0, Kind::Real, "cleanup failed")];
        let ending = Ending {
            timed_out: true,
            ..RETURNED
        };
        assert_eq!(
            outcome(failures, ending),
            Verdict::Failed {
                first: "cleanup failed",
                later: vec![],
            }
        );
    }

    #[test]
    fn no_failure_is_the_value() {
        assert_eq!(outcome::<()>(vec![], RETURNED), Verdict::Value);
    }

    #[test]
    fn cancellations_after_the_own_deadline_are_a_timeout() {
        let failures = vec![failure(0, Kind::Cancellation, "stopped")];
        let ending = Ending {
            timed_out: true,
            ..RETURNED
        };
        assert_eq!(
            outcome(failures, ending),
            Verdict::TimedOut {
                errors: vec!["stopped"]
            }
        );
    }

    #[test]
    fn cancellations_the_scope_caused_itself_are_absorbed() {
        let failures = vec![failure(0, Kind::Cancellation, "stopped")];
        assert_eq!(outcome(failures, RETURNED), Verdict::Value);
    }

    #[test]
    fn cancellations_from_outside_or_without_a_value_are_reported() {
        let outside = Ending {
            cancelled_from_outside: true,
            ..RETURNED
        };
        let failures = vec![failure(0, Kind::Cancellation, "stopped")];
        assert!(matches!(
            outcome(failures, outside),
            Verdict::Failed {
                first: "stopped",
                ..
            }
        ));
        let failures = vec![failure(0, Kind::Cancellation, "body stopped")];
        assert!(matches!(
            outcome(failures, Ending::default()),
            Verdict::Failed {
                first: "body stopped",
                ..
            }
        ));
    }

    #[test]
    fn kinds_are_judged_by_what_the_error_is_and_whether_its_code_was_cancelled() {
        assert_eq!(Kind::judge(true, true), Kind::Cancellation);
        assert_eq!(Kind::judge(false, true), Kind::Real);
        assert_eq!(Kind::judge(true, false), Kind::Real);
        assert_eq!(Kind::judge(false, false), Kind::Real);
    }

    #[test]
    fn the_ledger_returns_failures_in_order_and_hands_claimed_ones_to_their_handle() {
        let ledger = Ledger::default();
        ledger.record(Some(7), Kind::Real, Box::new("first"));
        ledger.record(None, Kind::Cancellation, Box::new("body"));
        ledger.record(Some(9), Kind::Real, Box::new("third"));
        let claimed = ledger.claim(7).unwrap();
        assert_eq!(*claimed.downcast::<&str>().unwrap(), "first");
        assert!(ledger.claim(7).is_none());
        let (failures, panic) = ledger.take();
        assert!(panic.is_none());
        let order: Vec<_> = failures.iter().map(|f| f.seq).collect();
        assert_eq!(order, vec![1, 2]);
    }
}
