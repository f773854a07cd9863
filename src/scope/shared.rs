//! The state one scope shares with its tasks: its cancellation source, its
//! join counter, the failures and panics it owns, and its running tasks.
//!
//! # Invariants
//!
//! 1. Every task holds one unit of `join` from just before it is spawned
//!    until its guard is dropped — however the task ends: completed,
//!    failed, panicked, or dropped by an abort or a runtime shutdown.
//! 2. `running` holds a weak reference to every task spawned since the
//!    last sweep, so the scope can name and abort the live ones; finished
//!    tasks are swept when the list would grow. Tasks never lock the scope
//!    when they finish: only spawning does, on the spawner's thread.
//! 3. Each failure is given a sequence number when it happens; the scope
//!    reports the failures it owns sorted by it, so "first" means first in
//!    time even if a handle passed the error on later.
//!
//! # Lock order
//!
//! A task's cell before `state` (see `task.rs`); `state` is never held
//! while user code or a cancellation runs.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc as StdArc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::current::{Ambient, TaskContext, CURRENT};
use super::error::ScopeError;
use super::join::JoinCounter;
use super::task::{Outcome, TaskCell};
use crate::loom::sync::Arc;
use crate::{CancelReason, CancellationSource, Registration};

/// What a scope does when a task fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    /// The first error or panic cancels the scope (reason
    /// [`CancelReason::SiblingFailed`]); the scope joins everyone and returns
    /// the first error. Trio's nursery, Kotlin's `coroutineScope`, Go's
    /// `errgroup.WithContext`.
    #[default]
    FailFast,
    /// A task's error cancels nobody; errors are collected and returned when
    /// the scope ends. Kotlin's `supervisorScope`. (Panics still cancel.)
    Supervise,
}

/// A task's or scope's name: given, or where it was spawned or opened.
#[derive(Clone)]
pub(crate) enum TaskName {
    At(&'static Location<'static>),
    Named(StdArc<str>),
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskName::At(location) => write!(f, "{}:{}", location.file(), location.line()),
            TaskName::Named(name) => f.write_str(name),
        }
    }
}

/// What `catch_unwind` gives for a panic.
pub(crate) type PanicPayload = Box<dyn Any + Send>;

/// When a failure happened, and whether it was how cancelled code stopped.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Failure {
    /// Order of the failures within the scope (invariant 3).
    pub(crate) seq: u64,
    /// The failing code's token was already cancelled: this error is how it
    /// stopped, not a new failure (Kotlin's rule for `CancellationException`).
    pub(crate) while_cancelled: bool,
}

/// A running task as its scope sees it: a name and a way to abort it.
pub(crate) trait RunningTask: Send + Sync {
    fn name(&self) -> String;
    fn abort(&self);
    fn is_finished(&self) -> bool;
}

pub(crate) struct Settings {
    pub(crate) name: TaskName,
    pub(crate) policy: Policy,
    pub(crate) grace: Option<Duration>,
    pub(crate) warn_after: Duration,
    pub(crate) limit: Option<usize>,
}

struct State<E> {
    failures: Vec<(Failure, E)>,
    panics: Vec<PanicPayload>,
    /// Every task spawned and not yet swept (invariant 2): weak, so a
    /// finished task's cell is freed as soon as its handle and guard are.
    running: Vec<Weak<dyn RunningTask>>,
}

/// When the scope was cancelled, and whether by its own deadline.
struct CancelledAt {
    at: Instant,
    own_timeout: bool,
}

pub(crate) struct ScopeShared<E> {
    pub(crate) settings: Settings,
    pub(crate) source: CancellationSource,
    pub(crate) join: Arc<JoinCounter>,
    limit: Option<StdArc<Semaphore>>,
    next_failure: AtomicU64,
    state: Mutex<State<E>>,
    cancelled_at: StdArc<OnceLock<CancelledAt>>,
    _on_cancel: OnceLock<Registration>,
}

impl<E> ScopeShared<E> {
    fn lock(&self) -> MutexGuard<'_, State<E>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes ownership of a failure nobody else will report.
    pub(crate) fn push_failure(&self, failure: Failure, error: E) {
        self.lock().failures.push((failure, error));
    }
}

impl<E: Send + 'static> ScopeShared<E> {
    pub(crate) fn new(
        settings: Settings,
        source: CancellationSource,
        join: Arc<JoinCounter>,
    ) -> StdArc<Self> {
        let limit = settings.limit.map(|n| StdArc::new(Semaphore::new(n)));
        let shared = StdArc::new(ScopeShared {
            settings,
            source,
            join,
            limit,
            next_failure: AtomicU64::new(0),
            state: Mutex::new(State {
                failures: Vec::new(),
                panics: Vec::new(),
                running: Vec::new(),
            }),
            cancelled_at: StdArc::new(OnceLock::new()),
            _on_cancel: OnceLock::new(),
        });
        // Remember when the scope was cancelled (the grace period counts
        // from then) and whether its own deadline did it.
        let registration = shared.source.token().on_cancel({
            let cancelled_at = StdArc::clone(&shared.cancelled_at);
            move |reason| {
                let _ = cancelled_at.set(CancelledAt {
                    at: Instant::now(),
                    own_timeout: *reason == CancelReason::Timeout,
                });
            }
        });
        let _ = shared._on_cancel.set(registration);
        shared
    }

    pub(crate) fn limit(&self) -> Option<StdArc<Semaphore>> {
        self.limit.clone()
    }

    /// Gives a failure its place in time and applies the policy. An error
    /// returned by code whose token was already cancelled is how that code
    /// stops, not a new failure (Kotlin's rule for `CancellationException`),
    /// so it cancels nobody; it is still reported.
    pub(crate) fn on_failure(&self, who: &TaskName, while_cancelled: bool) -> Failure {
        let seq = self.next_failure.fetch_add(1, Ordering::AcqRel);
        if self.settings.policy == Policy::FailFast && !while_cancelled {
            self.source
                .cancel_with(CancelReason::sibling_failed(who.to_string()));
        }
        Failure {
            seq,
            while_cancelled,
        }
    }

    /// A panic cancels the scope whatever the policy; it is resumed at exit.
    pub(crate) fn on_panic(&self, who: &TaskName, payload: PanicPayload) {
        self.next_failure.fetch_add(1, Ordering::AcqRel);
        self.lock().panics.push(payload);
        self.source
            .cancel_with(CancelReason::sibling_failed(format!("{who} panicked")));
    }

    /// Spawns `future` as a task of this scope (see invariant 1).
    pub(crate) fn spawn<F, T>(
        self: &StdArc<Self>,
        name: TaskName,
        future: F,
        permit: Option<OwnedSemaphorePermit>,
    ) -> StdArc<TaskCell<T, E>>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        let guard = self.admit(name);
        let cell = StdArc::clone(&guard.cell);
        let limit = if permit.is_none() {
            self.limit.clone()
        } else {
            None
        };
        let ambient = Ambient::Task(cell.clone());
        let task = tokio::spawn(async move {
            let _permit = match (permit, limit) {
                (Some(permit), _) => Some(permit),
                (None, Some(limit)) => limit.acquire_owned().await.ok(),
                (None, None) => None,
            };
            let result = CURRENT
                .scope(ambient, AssertUnwindSafe(future).catch_unwind())
                .await;
            guard.complete(result);
        });
        let _ = cell.join_handle.set(task);
        cell
    }

    /// Runs `f` on tokio's blocking pool as a task of this scope. It gets
    /// the task's own token; an abort cannot stop it once it has started.
    pub(crate) fn spawn_blocking<F, T>(
        self: &StdArc<Self>,
        name: TaskName,
        f: F,
    ) -> StdArc<TaskCell<T, E>>
    where
        F: FnOnce(crate::CancellationToken) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
    {
        let guard = self.admit(name);
        let cell = StdArc::clone(&guard.cell);
        let token = TaskContext::token(&*cell);
        let task = tokio::task::spawn_blocking(move || {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(token)));
            guard.complete(result);
        });
        let _ = cell.join_handle.set(task);
        cell
    }

    /// Counts a new task in, before it is spawned, and registers it so the
    /// scope can name and abort it.
    fn admit<T: Send + 'static>(self: &StdArc<Self>, name: TaskName) -> TaskGuard<T, E> {
        let admitted = self.join.try_add();
        assert!(admitted, "a scope accepted a task after it finished");
        let cell = StdArc::new(TaskCell::new(name, StdArc::clone(self)));
        let weak: Weak<dyn RunningTask> = StdArc::downgrade(&cell) as Weak<dyn RunningTask>;
        let mut state = self.lock();
        let running = &mut state.running;
        if running.len() == running.capacity() {
            // Sweep finished tasks before growing: amortised O(1), and the
            // list never holds more than twice the tasks alive at its peak.
            running.retain(|task| task.strong_count() > 0);
            running.reserve(running.len().max(4));
        }
        running.push(weak);
        drop(state);
        TaskGuard {
            cell,
            completed: false,
        }
    }

    /// Aborts every task still running (the grace period is over).
    pub(crate) fn abort_running(&self) {
        for task in self.live_tasks() {
            task.abort();
        }
    }

    fn live_tasks(&self) -> Vec<StdArc<dyn RunningTask>> {
        self.lock()
            .running
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Names of the tasks still running.
    pub(crate) fn running_names(&self) -> Vec<String> {
        self.live_tasks()
            .iter()
            .filter(|task| !task.is_finished())
            .map(|task| task.name())
            .collect()
    }

    /// Waits until `delay` after the scope was cancelled.
    pub(crate) async fn after_cancel(&self, delay: Duration) {
        self.source.token().cancelled().await;
        let at = self.cancelled_at.get().map_or_else(Instant::now, |c| c.at);
        tokio::time::sleep_until(at + delay).await;
    }

    /// Enforces the grace period (aborting the tasks still running when it
    /// ends) and warns once about laggards after `warn_after`, both counted
    /// from the scope's cancellation. Runs beside the body and then beside
    /// the join, so a body awaiting a stubborn task is covered too. Never
    /// completes.
    pub(crate) async fn watchdog(&self) {
        let abort = async {
            if let Some(grace) = self.settings.grace {
                self.after_cancel(grace).await;
                self.abort_running();
            }
        };
        let warn = async {
            self.after_cancel(self.settings.warn_after).await;
            self.warn_laggards();
        };
        tokio::join!(abort, warn);
        std::future::pending::<()>().await;
    }

    fn warn_laggards(&self) {
        let names = self.running_names();
        if names.is_empty() {
            return;
        }
        let reason = self
            .source
            .reason()
            .map(|r| r.to_string())
            .unwrap_or_default();
        tracing::warn!(
            scope = %self.settings.name,
            reason = %reason,
            waited = ?self.settings.warn_after,
            running = names.len(),
            tasks = %names.join(", "),
            "cancelled scope is still waiting for its tasks",
        );
    }

    /// Everything the scope owns once all units have finished: its
    /// failures in order, and its first panic.
    pub(crate) fn take_results(&self) -> (Vec<(Failure, E)>, Option<PanicPayload>) {
        let mut state = self.lock();
        let mut failures = std::mem::take(&mut state.failures);
        failures.sort_by_key(|(failure, _)| failure.seq);
        let panic = if state.panics.is_empty() {
            None
        } else {
            Some(state.panics.swap_remove(0))
        };
        (failures, panic)
    }

    /// What the scope returns, from the body's value (if it returned one)
    /// and the failures it owns, in order:
    ///
    /// * a real failure (not the way cancelled code stopped): `Failed`, with
    ///   the first real one first and every other error after;
    /// * only errors of cancelled code, after the scope's own deadline:
    ///   `TimedOut`;
    /// * only errors of cancelled code, the cancellation from outside the
    ///   scope, or no value from the body: `Failed`;
    /// * otherwise the body's value: the scope cancelled its own tasks (by
    ///   `cancel`, a race's winner, one task's own token) and absorbs how
    ///   they stopped, as Trio's cancel scopes and Kotlin's scopes do.
    pub(crate) fn outcome<T>(
        &self,
        value: Option<T>,
        failures: Vec<(Failure, E)>,
    ) -> Result<T, ScopeError<E>> {
        let first_real = failures.iter().position(|(f, _)| !f.while_cancelled);
        let mut errors: Vec<E> = failures.into_iter().map(|(_, e)| e).collect();
        if let Some(index) = first_real {
            let first = errors.remove(index);
            return Err(ScopeError::Failed {
                first,
                later: errors,
            });
        }
        if errors.is_empty() {
            return value.ok_or_else(|| unreachable!("a body without a value left no error"));
        }
        if self.timed_out() {
            return Err(ScopeError::TimedOut { errors });
        }
        match value {
            Some(value) if !self.cancelled_from_outside() => Ok(value),
            _ => Err(ScopeError::failed(errors).expect("not empty")),
        }
    }

    /// Whether the scope's own deadline cancelled it.
    pub(crate) fn timed_out(&self) -> bool {
        self.cancelled_at.get().is_some_and(|c| c.own_timeout)
    }

    /// Whether an ancestor (or a token the scope was linked to) cancelled it.
    pub(crate) fn cancelled_from_outside(&self) -> bool {
        self.source.reason().is_some_and(|r| r.is_inherited())
    }
}

/// Accounts for one task however it ends (invariant 1).
pub(crate) struct TaskGuard<T: Send + 'static, E: Send + 'static> {
    cell: StdArc<TaskCell<T, E>>,
    completed: bool,
}

impl<T: Send + 'static, E: Send + 'static> TaskGuard<T, E> {
    fn complete(mut self, result: std::thread::Result<Result<T, E>>) {
        let shared = &self.cell.shared;
        let outcome = match result {
            Ok(Ok(value)) => Outcome::Completed(value),
            Ok(Err(error)) => {
                let while_cancelled = self.cell.token_is_cancelled();
                Outcome::Failed(shared.on_failure(&self.cell.name, while_cancelled), error)
            }
            Err(payload) => {
                shared.on_panic(&self.cell.name, payload);
                Outcome::Panicked
            }
        };
        self.cell.finish(outcome);
        self.completed = true;
    }
}

impl<T: Send + 'static, E: Send + 'static> Drop for TaskGuard<T, E> {
    fn drop(&mut self) {
        if !self.completed {
            // Dropped without completing: aborted, or its runtime shut down.
            let reason = self
                .cell
                .shared
                .source
                .reason()
                .unwrap_or_else(|| CancelReason::message("task dropped by its runtime"));
            self.cell.finish(Outcome::Aborted(reason));
        }
        JoinCounter::release(&self.cell.shared.join);
    }
}
