//! A scope's life, from open to its one typed exit.
//!
//! ```text
//!  open ──► Body ──(returns, fails or panics)──► Joining ──(count 0)──► Cleanup ──► Finished
//!             │                                    │                     │
//!             └── dropped: cancel, drop the body,  └── dropped: cancel,  └── dropped: the
//!                 release its unit, orphan            orphan watchdog,       runner goes on
//!                 watchdog, cleanup runner            cleanup runner
//! ```
//!
//! * **Body**: the body runs in the caller's task with the scope current;
//!   the watchdog runs beside it once the scope is cancelled.
//! * **Joining**: the body's unit is released; the scope waits for its
//!   count to reach zero, the watchdog still beside it.
//! * **Cleanup** (only with `defer` steps): the steps run newest first on a
//!   runner task joined by the scope's owner; their failures join the
//!   ledger.
//! * **Finished**: the outcome is computed once, from the ledger, and the
//!   errors are given their type ([`finish`]).
//!
//! # The drop-order rule
//!
//! A scope dropped before it finished cancels its token *first*, and only
//! then drops its body: registrations the body made (an `on_cancel` that
//! interrupts a database query, say) see the token fire. Its tasks are not
//! detached: they keep their units of the counter, so the nearest enclosing
//! scope still awaited waits for them, and with a grace period a small task
//! aborts them when it ends ([`watchdog::orphan`]). A scope opened but never
//! started ([`Opened`] dropped) does the same.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::cancel::{CancelReason, CancelWatch, Cancelled};
use crate::scope::engine::cleanups;
use crate::scope::engine::ledger::{outcome, Ending, Kind, Payload, Verdict};
use crate::scope::engine::settings::Policy;
use crate::scope::engine::watchdog::{self, Watchdog};
use crate::scope::engine::Engine;
use crate::scope::face::scope_error::ScopeError;
use crate::scope::run::current::{self, Ambient};
use crate::scope::run::stack;
use crate::scope::task_error::TaskError;

/// Where a scope is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Body,
    Joining,
    Cleanup,
    Finished,
}

/// A scope that is open (its body's unit counted, its token linked) but
/// whose body has not started. Dropped unstarted, it follows the drop-order
/// rule.
pub(crate) struct Opened {
    engine: Option<Arc<Engine>>,
}

impl Opened {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        Opened {
            engine: Some(engine),
        }
    }

    /// The engine, for the body; the driver takes over the drop rule.
    pub(crate) fn start(mut self) -> Arc<Engine> {
        self.engine.take().expect("a scope starts once")
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            engine.cancel_with(drop_reason(&engine));
            engine.release();
            // Unstarted: no body ran, so no step was registered.
            watchdog::orphan(&engine, None);
        }
    }
}

fn drop_reason(engine: &Engine) -> CancelReason {
    match &engine.settings.dropped {
        Some(reason) => reason.clone(),
        None => CancelReason::message("scope dropped before it finished"),
    }
}

pin_project! {
    /// Runs a started scope: the body, then the join, then the outcome.
    pub(crate) struct Drive<'a, B, T> {
        engine: &'a Arc<Engine>,
        #[pin]
        body: Option<B>,
        ambient: Option<Ambient>,
        phase: Phase,
        value: Option<T>,
        watch: CancelWatch,
        watchdog: Watchdog,
    }

    impl<'a, B, T> PinnedDrop for Drive<'a, B, T> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let engine = *this.engine;
            if matches!(*this.phase, Phase::Body | Phase::Joining) {
                // The drop-order rule.
                engine.cancel_with(drop_reason(engine));
                if *this.phase == Phase::Body {
                    let mut body = this.body;
                    current::enter(this.ambient, || stack::with_room(|| body.set(None)));
                    engine.release();
                }
                if !engine.join.is_done() {
                    // Its tasks live on: the tree shows them.
                    engine.list();
                }
                let steps = engine.driver_dropped();
                let cleanup = (!steps.is_empty()).then(|| orphan_cleanup(engine, steps));
                watchdog::orphan(engine, cleanup);
            }
            // In `Cleanup` the runner goes on, joined by the owner.
            this.watch.release(engine.cancel.source());
        }
    }
}

impl<'a, B, T> Drive<'a, B, T> {
    pub(crate) fn new(engine: &'a Arc<Engine>, body: B) -> Self {
        Drive {
            engine,
            body: Some(body),
            ambient: Some(Ambient::body(Arc::clone(engine))),
            phase: Phase::Body,
            value: None,
            watch: CancelWatch::default(),
            watchdog: Watchdog::default(),
        }
    }
}

impl<B, T, E> Future for Drive<'_, B, T>
where
    B: Future<Output = Result<T, E>>,
    E: TaskError,
{
    type Output = Result<T, ScopeError<E>>;

    // Inlined into the caller: one frame per level of nesting, not two.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let engine = *this.engine;
        let mut body = this.body;
        if *this.phase == Phase::Body {
            let polled = current::enter(this.ambient, || {
                let body = body.as_mut().as_pin_mut().expect("the body runs once");
                stack::with_room(|| panic::catch_unwind(AssertUnwindSafe(|| body.poll(cx))))
            });
            match polled {
                Ok(Poll::Pending) => {
                    wait(engine, this.watch, this.watchdog, cx);
                    return Poll::Pending;
                }
                Ok(Poll::Ready(Ok(value))) => {
                    *this.value = Some(value);
                    if engine.settings.cancel_on_exit {
                        body_returned(engine);
                    }
                }
                Ok(Poll::Ready(Err(error))) => body_failed(engine, error),
                Err(payload) => body_panicked(engine, payload),
            }
            // A finished (or panicked) body's future holds nothing to drop
            // with the scope current.
            body.set(None);
            *this.phase = Phase::Joining;
            engine.release();
        }
        if *this.phase == Phase::Joining {
            if engine.join.poll_done(cx).is_pending() {
                wait(engine, this.watch, this.watchdog, cx);
                return Poll::Pending;
            }
            if engine.gate.any() {
                start_cleanup(engine);
                *this.phase = Phase::Cleanup;
            }
        }
        if *this.phase == Phase::Cleanup && poll_cleanup(engine, cx).is_pending() {
            return Poll::Pending;
        }
        assert!(
            *this.phase != Phase::Finished,
            "a scope polled after it finished"
        );
        *this.phase = Phase::Finished;
        this.watch.release(engine.cancel.source());
        Poll::Ready(finish(engine, this.value.take()))
    }
}

/// Starts the runner of the steps `defer` registered, for a driver that
/// waits for it ([`poll_cleanup`]): their failures go to the ledger. The
/// runner's handle is kept by the engine, not the driver: a driver stays
/// one size whether its scope defers or not.
#[cold]
#[inline(never)]
fn start_cleanup(engine: &Arc<Engine>) {
    let steps = engine.exit_cleanups();
    let unit = cleanups::OwnerUnit::take(engine);
    let runner = cleanups::run_holding(Arc::clone(engine), steps, true, unit);
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => engine.registry.set_runner(runtime.spawn(runner)),
        Err(_) => {
            tracing::error!(parent: engine.span(), "no runtime to run the scope's cleanup steps on");
        }
    }
}

/// Ready once the cleanup runner has finished (or there is none).
#[cold]
#[inline(never)]
fn poll_cleanup(engine: &Engine, cx: &mut Context<'_>) -> Poll<()> {
    engine.registry.poll_runner(cx)
}

/// The runner of a dropped scope's steps, to run once every task has
/// stopped; their failures are logged (nobody awaits the scope). The
/// owner's unit is taken now, before the scope's count reaches zero.
#[cold]
#[inline(never)]
fn orphan_cleanup(
    engine: &Arc<Engine>,
    steps: Vec<cleanups::Step>,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    let unit = cleanups::OwnerUnit::take(engine);
    Box::pin(cleanups::run_holding(
        Arc::clone(engine),
        steps,
        false,
        unit,
    ))
}

/// A pending poll: keeps the driver woken by its token and, once the scope
/// is cancelled, runs the watchdog.
#[inline(never)]
fn wait(
    engine: &Arc<Engine>,
    watch: &mut CancelWatch,
    watchdog: &mut Watchdog,
    cx: &mut Context<'_>,
) {
    engine.list();
    if watch.poll(engine.cancel.source(), cx).is_ready() {
        engine.note_cancelled();
        watchdog.poll(engine, cx);
    }
}

/// `cancel_on_exit`: the body is done, so are the tasks it kept going.
#[inline(never)]
fn body_returned(engine: &Engine) {
    engine.cancel_with(CancelReason::message("the scope's body returned"));
}

#[inline(never)]
fn body_failed<E: TaskError>(engine: &Engine, error: E) {
    let kind = Kind::judge(error.is_cancellation(), engine.cancel.is_cancelled());
    let name = engine.settings.name.renamed(Arc::from("scope body"));
    engine.fail(&name, None, kind, Box::new(error));
}

#[inline(never)]
fn body_panicked(engine: &Engine, payload: Box<dyn std::any::Any + Send>) {
    let name = engine.settings.name.renamed(Arc::from("scope body"));
    engine.panicked(&name, payload);
}

/// The one typed exit: what the scope returns, from the body's value and
/// the ledger. A panic is resumed here, after everyone has been joined.
#[cold]
#[inline(never)]
fn finish<T, E: TaskError>(engine: &Engine, value: Option<T>) -> Result<T, ScopeError<E>> {
    let (failures, panic) = engine.ledger.take();
    let value = match value {
        // Nothing failed: the body's value, without building an outcome.
        Some(value) if failures.is_empty() && panic.is_none() => return Ok(value),
        value => value,
    };
    if let Some(payload) = panic {
        if !failures.is_empty() {
            tracing::error!(
                parent: engine.span(),
                errors = failures.len(),
                "a task panicked; resuming the panic, so the scope's errors are not returned",
            );
        }
        panic::resume_unwind(payload);
    }
    let ending = Ending {
        body_returned: value.is_some(),
        timed_out: engine.cancel.timed_out(),
        cancelled_from_outside: engine.cancel.cancelled_from_outside(),
    };
    let typed = |error: Payload| -> E {
        *error
            .downcast::<E>()
            .expect("every failure a scope records has the scope's error type")
    };
    match outcome(failures, ending) {
        Verdict::Value => value.ok_or_else(|| {
            // Unreachable in practice: a body without a value left a failure.
            let reason = engine
                .cancel
                .reason()
                .unwrap_or_else(|| CancelReason::message("the scope's body did not finish"));
            ScopeError::Failed {
                first: E::from(Cancelled::new(reason)),
                later: Vec::new(),
            }
        }),
        Verdict::Failed { first, later } => {
            if engine.settings.policy == Policy::Supervise {
                // Fail-fast logged the failure when it cancelled the scope.
                tracing::error!(parent: engine.span(), errors = later.len() + 1, "supervised tasks failed; the scope fails");
            }
            Err(ScopeError::Failed {
                first: typed(first),
                later: later.into_iter().map(typed).collect(),
            })
        }
        Verdict::TimedOut { errors } => Err(ScopeError::TimedOut {
            errors: errors.into_iter().map(typed).collect(),
        }),
    }
}
