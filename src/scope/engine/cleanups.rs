//! Async cleanup steps a scope runs when it ends (`defer`): kept in the
//! scope's registry, taken once, run newest first after every task of the
//! scope has stopped.
//!
//! # Invariants
//!
//! 1. The steps are taken exactly once: by the scope's driver when its
//!    count reaches zero, or, if the driver was dropped first, by the
//!    runner the drop started, once the count reaches zero. The two are
//!    exclusive: a driver that reached zero is no longer dropped unfinished.
//! 2. A step is registered only while the registrant holds a unit of the
//!    scope (so before the count reaches zero) and only while the driver
//!    lives; after either, registering is refused. So a registered step is
//!    always taken (1), never lost. The second race (a registration
//!    against the driver's drop) is decided under the registry's lock:
//!    the drop marks the driver gone and takes the steps in one critical
//!    section, a registration checks the mark and pushes in another;
//!    `loom_models` below checks it.
//! 3. A runner holds a unit of the scope's owner until the last step has
//!    ended, taken while the owner is surely open: by a driver that is
//!    awaited (its awaiter holds a unit of the owner), or by a dropped
//!    driver before its own count reaches zero. The nearest live ancestor
//!    joins the cleanup.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::FutureExt;

use crate::loom::sync::atomic::{AtomicBool, Ordering};

use super::ledger::{Kind, Payload};
use super::settings::TaskName;
use super::Engine;
use crate::cancel::CancelReason;

/// How a scope ended, as its cleanup steps see it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScopeEnd {
    /// The body returned a value and nothing failed.
    Succeeded,
    /// The body or a task failed (or panicked).
    Failed,
    /// The scope was cancelled (a timeout, a shutdown, its future dropped)
    /// and nothing failed for real.
    Cancelled(CancelReason),
}

/// A step's errors, type-erased as the ledger keeps them.
pub(crate) type StepErrors = Vec<Payload>;

/// What a step's future ends with: its errors (empty: it succeeded).
pub(crate) type StepFuture = Pin<Box<dyn Future<Output = StepErrors> + Send>>;

/// One registered cleanup step.
pub(crate) struct Step {
    pub(crate) name: TaskName,
    pub(crate) run: Box<dyn FnOnce(ScopeEnd) -> StepFuture + Send>,
}

/// Whether a scope has cleanup steps, and whether its driver is gone.
///
/// `gone` is written and read only under the registry's lock (invariant
/// 2): the lock orders it. `deferred` lets a scope's exit skip the lock
/// when nothing was registered: every registration raises it before
/// releasing its unit, and the exit reads it after the count reached zero,
/// so the unit's release and acquire order it.
#[derive(Default)]
pub(crate) struct Gate {
    deferred: AtomicBool,
    gone: AtomicBool,
}

impl Gate {
    /// Under the registry's lock: whether the driver is gone (refuse the
    /// step); if not, the step is about to be pushed.
    pub(crate) fn admit(&self) -> bool {
        if self.gone.load(Ordering::Relaxed) {
            return false;
        }
        self.deferred.store(true, Ordering::Relaxed);
        true
    }

    /// Under the registry's lock: the driver is dropped unfinished.
    pub(crate) fn close(&self) {
        self.gone.store(true, Ordering::Relaxed);
    }

    /// At the scope's exit, once its count is zero: whether a step was
    /// registered.
    pub(crate) fn any(&self) -> bool {
        self.deferred.load(Ordering::Relaxed)
    }
}

/// How `engine` ended, for its steps: read once its count is zero.
pub(crate) fn end_of(engine: &Engine) -> ScopeEnd {
    if engine.ledger.has_real_failure() {
        ScopeEnd::Failed
    } else if let Some(reason) = engine.cancel.reason() {
        ScopeEnd::Cancelled(reason)
    } else {
        ScopeEnd::Succeeded
    }
}

/// Runs `steps` newest first. With `report` (the driver waits for the
/// result) failures and panics go to `engine`'s ledger, to come out with
/// the scope's result; without (the driver is gone) they are logged.
pub(crate) async fn run(engine: Arc<Engine>, steps: Vec<Step>, end: ScopeEnd, report: bool) {
    for step in steps.into_iter().rev() {
        let outcome = AssertUnwindSafe((step.run)(end.clone()))
            .catch_unwind()
            .await;
        match outcome {
            Ok(errors) => {
                for error in errors {
                    if report {
                        engine.ledger.record(None, Kind::Real, error);
                    }
                    tracing::error!(parent: engine.span(), step = %step.name, "a cleanup step failed");
                }
            }
            Err(payload) => {
                tracing::error!(parent: engine.span(), step = %step.name, "a cleanup step panicked");
                if report {
                    engine.ledger.record_panic(payload);
                }
            }
        }
    }
}

/// A unit of a scope's owner, held by a runner (invariant 3); released
/// when dropped, whether the runner ran or not.
pub(crate) struct OwnerUnit(Option<Arc<Engine>>);

impl OwnerUnit {
    /// A unit of `engine`'s owner, if it has one that is open.
    pub(crate) fn take(engine: &Engine) -> Self {
        OwnerUnit(
            engine
                .parent()
                .filter(|owner| owner.join.try_add())
                .cloned(),
        )
    }
}

impl Drop for OwnerUnit {
    fn drop(&mut self) {
        if let Some(owner) = self.0.take() {
            owner.release();
        }
    }
}

/// Runs `engine`'s `steps` while holding `unit`, newest first.
pub(crate) async fn run_holding(
    engine: Arc<Engine>,
    steps: Vec<Step>,
    report: bool,
    unit: OwnerUnit,
) {
    let end = end_of(&engine);
    run(engine, steps, end, report).await;
    drop(unit);
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::Gate;
    use crate::loom::sync::{Arc, Mutex};
    use crate::loom::thread;

    /// A registration racing the driver's drop: the step is either refused
    /// or taken by the drop, never pushed and left behind.
    #[test]
    fn a_step_is_refused_or_taken_never_lost() {
        loom::model(|| {
            let gate = Arc::new(Gate::default());
            let steps = Arc::new(Mutex::new(Vec::new()));
            let registrant = {
                let (gate, steps) = (Arc::clone(&gate), Arc::clone(&steps));
                thread::spawn(move || {
                    let mut steps = steps.lock().unwrap();
                    if !gate.admit() {
                        return false;
                    }
                    steps.push(1);
                    true
                })
            };
            let taken = {
                let mut steps = steps.lock().unwrap();
                gate.close();
                std::mem::take(&mut *steps)
            };
            let pushed = registrant.join().unwrap();
            let left = steps.lock().unwrap().len();
            assert_eq!(left, 0, "a step was pushed after the drop took the steps");
            assert_eq!(taken.len(), usize::from(pushed));
        });
    }
}
