//! The state one scope shares with its tasks: its cancellation source, its
//! join counter, the failures and panics it owns, and its running tasks.
//!
//! # Invariants
//!
//! 1. Every task holds one unit of `join` from just before it is spawned
//!    until its guard is dropped — however the task ends: completed,
//!    failed, panicked, or dropped by an abort or a runtime shutdown.
//! 2. `tasks` holds the name and abort handle of every task spawned since
//!    the last sweep, so the scope can name and abort the live ones;
//!    finished tasks are swept when the list would grow. Only spawning
//!    locks the scope, on the spawner's thread: a task that completes does
//!    not, unless it failed or panicked.
//! 3. A task shares no allocation with its spawner beyond tokio's own task:
//!    its failure goes to `failures` (tagged with the task's id), where the
//!    task's handle claims it if awaited, so a dropped handle loses nothing.
//! 4. Each failure is given a sequence number when it happens; the scope
//!    reports the failures it owns sorted by it, so "first" means first in
//!    time.
//!
//! # Lock order
//!
//! `state` and `own_tokens` are never held together, nor while user code
//! or a cancellation runs.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc as StdArc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::futures::TaskLocalFuture;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

use super::current::{Ambient, ScopeContext, CURRENT};
use super::error::ScopeError;
use super::join::JoinCounter;
use super::tree::{RunState, ScopeSnapshot, TaskSnapshot};
use crate::cancel::ChildToken;
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

/// A task's or scope's name: where it was spawned or opened, and the name
/// it was given, if any.
#[derive(Clone)]
pub(crate) struct TaskName {
    given: Option<StdArc<str>>,
    pub(crate) at: &'static Location<'static>,
}

impl TaskName {
    pub(crate) fn at(at: &'static Location<'static>) -> Self {
        TaskName { given: None, at }
    }

    pub(crate) fn named(name: StdArc<str>, at: &'static Location<'static>) -> Self {
        TaskName {
            given: Some(name),
            at,
        }
    }

    /// The same location under another name.
    pub(crate) fn renamed(&self, name: StdArc<str>) -> Self {
        TaskName::named(name, self.at)
    }

    pub(crate) fn given(&self) -> Option<&str> {
        self.given.as_deref()
    }

    pub(crate) fn location(&self) -> String {
        format!("{}:{}", self.at.file(), self.at.line())
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.given {
            Some(name) => f.write_str(name),
            None => write!(f, "{}:{}", self.at.file(), self.at.line()),
        }
    }
}

/// Scope ids, for spans and the task tree.
static NEXT_SCOPE: AtomicU64 = AtomicU64::new(1);

/// What `catch_unwind` gives for a panic.
pub(crate) type PanicPayload = Box<dyn Any + Send>;

/// When a failure happened, and whether it was how cancelled code stopped.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Failure {
    /// Order of the failures within the scope (invariant 4).
    pub(crate) seq: u64,
    /// The failed task, `None` for the body.
    pub(crate) task: Option<u64>,
    /// The failing code's token was already cancelled: this error is how it
    /// stopped, not a new failure (Kotlin's rule for `CancellationException`).
    pub(crate) while_cancelled: bool,
}

/// What the watchdog does when a delay after cancellation has passed.
#[derive(Clone, Copy)]
enum Duty {
    Abort,
    Warn,
}

/// A task as its scope sees it (invariant 2).
struct Tracked {
    id: u64,
    name: TaskName,
    abort: AbortHandle,
    /// The wall clock, not tokio's: reading tokio's (paused) clock costs a
    /// context lookup on every spawn.
    started: std::time::Instant,
    aborted: bool,
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
    /// Every task spawned and not yet swept (invariant 2).
    tasks: Vec<Tracked>,
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
    next_task: AtomicU64,
    state: Mutex<State<E>>,
    /// Tasks' own tokens, created on first use (by the task or its handle).
    own_tokens: Mutex<HashMap<u64, ChildToken>>,
    own_count: AtomicUsize,
    /// Scopes opened inside this one (weak; swept when the list grows).
    children: Mutex<Vec<Weak<dyn ScopeContext>>>,
    opened: Instant,
    pub(crate) id: u64,
    /// The scope's `tracing` span; tasks' spans are its children.
    pub(crate) span: tracing::Span,
    /// Set once the grace period ran out and tasks were aborted.
    aborting: AtomicBool,
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
        parent: Option<u64>,
    ) -> StdArc<Self> {
        let id = NEXT_SCOPE.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!(
            "scope",
            name = %settings.name,
            location = %settings.name.location(),
            id,
            parent,
        );
        let limit = settings.limit.map(|n| StdArc::new(Semaphore::new(n)));
        let shared = StdArc::new(ScopeShared {
            settings,
            source,
            join,
            limit,
            next_failure: AtomicU64::new(0),
            next_task: AtomicU64::new(0),
            own_tokens: Mutex::new(HashMap::new()),
            own_count: AtomicUsize::new(0),
            children: Mutex::new(Vec::new()),
            opened: Instant::now(),
            id,
            span,
            aborting: AtomicBool::new(false),
            state: Mutex::new(State {
                failures: Vec::new(),
                panics: Vec::new(),
                tasks: Vec::new(),
            }),
            cancelled_at: StdArc::new(OnceLock::new()),
            _on_cancel: OnceLock::new(),
        });
        // Remember when the scope was cancelled (the grace period counts
        // from then) and whether its own deadline did it.
        let registration = shared.source.token().on_cancel({
            let cancelled_at = StdArc::clone(&shared.cancelled_at);
            let span = shared.span.clone();
            move |reason| {
                tracing::debug!(parent: &span, reason = %reason, "scope cancelled");
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
    pub(crate) fn on_failure(
        &self,
        who: &TaskName,
        task: Option<u64>,
        while_cancelled: bool,
    ) -> Failure {
        let seq = self.next_failure.fetch_add(1, Ordering::AcqRel);
        if self.settings.policy == Policy::FailFast
            && !while_cancelled
            && self
                .source
                .cancel_with(CancelReason::sibling_failed(who.to_string()))
        {
            // Ordinary cancellation never logs above debug; a failure that
            // fails the scope does.
            tracing::error!(parent: &self.span, task = %who, "task failed; cancelling its scope");
        }
        Failure {
            seq,
            task,
            while_cancelled,
        }
    }

    /// A panic cancels the scope whatever the policy; it is resumed at exit.
    pub(crate) fn on_panic(&self, who: &TaskName, payload: PanicPayload) {
        tracing::error!(parent: &self.span, task = %who, "task panicked; cancelling its scope");
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
    ) -> (JoinHandle<TaskOutput<T>>, u64)
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        let guard = self.admit(&name);
        let id = guard.id;
        let ambient = Ambient::Task {
            scope: StdArc::clone(self) as StdArc<dyn ScopeContext>,
            id,
            own: OnceLock::new(),
        };
        let tracked_name = name.clone();
        let span = tracing::debug_span!(
            parent: &self.span,
            "task",
            name = %name,
            location = %name.location(),
            scope = self.id,
        );
        let task = TaskFuture {
            inner: CURRENT.scope(ambient, Guarded { future }),
            done: Some(guard),
            // Boxed, and only when a subscriber wants it: an idle task
            // without tracing pays one word, not a whole span.
            span: (!span.is_disabled()).then(|| Box::new(span)),
        };
        let task = match (permit, self.limit.clone()) {
            (None, None) => tokio::spawn(task),
            (Some(permit), _) => tokio::spawn(async move {
                let _permit = permit;
                task.await
            }),
            (None, Some(limit)) => tokio::spawn(async move {
                let _permit = limit.acquire_owned().await;
                task.await
            }),
        };
        self.track(id, tracked_name, task.abort_handle());
        (task, id)
    }

    /// Runs `f` on tokio's blocking pool as a task of this scope. It gets
    /// the task's own token; an abort cannot stop it once it has started.
    pub(crate) fn spawn_blocking<F, T>(
        self: &StdArc<Self>,
        name: TaskName,
        f: F,
    ) -> (JoinHandle<TaskOutput<T>>, u64)
    where
        F: FnOnce(crate::CancellationToken) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
    {
        let guard = self.admit(&name);
        let id = guard.id;
        let token = self.own_token(id);
        let tracked_name = name.clone();
        let task = tokio::task::spawn_blocking(move || {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(token.clone())));
            guard.complete(result, token.is_cancelled())
        });
        self.track(id, tracked_name, task.abort_handle());
        (task, id)
    }

    /// Counts a new task in, before it is spawned.
    fn admit(self: &StdArc<Self>, name: &TaskName) -> TaskGuard<E> {
        let admitted = self.join.try_add();
        assert!(
            admitted,
            "spawned into a scope that has already finished \
             (was a `taskscope::axum::RequestScope` kept after its response was sent?)"
        );
        TaskGuard {
            shared: StdArc::clone(self),
            id: self.next_task.fetch_add(1, Ordering::Relaxed),
            at: name.at,
        }
    }

    /// Task `id`'s name, from the registry (the task's own future keeps only
    /// its location, to stay small); its location if it is not there yet.
    fn task_name(&self, id: u64, at: &'static Location<'static>) -> TaskName {
        self.lock()
            .tasks
            .iter()
            .find(|task| task.id == id)
            .map_or_else(|| TaskName::at(at), |task| task.name.clone())
    }

    /// Remembers a spawned task so it can be named and aborted.
    fn track(&self, id: u64, name: TaskName, abort: AbortHandle) {
        let mut state = self.lock();
        let tasks = &mut state.tasks;
        if tasks.len() == tasks.capacity() {
            // Sweep finished tasks before growing: amortised O(1), and the
            // list never holds more than twice the tasks alive at its peak.
            tasks.retain(|task| !task.abort.is_finished());
            tasks.reserve(tasks.len().max(4));
        }
        tasks.push(Tracked {
            id,
            name,
            abort,
            started: std::time::Instant::now(),
            aborted: false,
        });
    }

    /// Aborts every task still running here and in the scopes opened inside
    /// this one (the grace period is over): orphans of a dropped nested scope
    /// are aborted with the ancestor that waits for them.
    pub(crate) fn abort_running(&self) {
        self.abort_here();
        for scope in super::current::descendants(self) {
            scope.abort_here();
        }
    }

    fn abort_here(&self) {
        self.aborting.store(true, Ordering::Relaxed);
        let running: Vec<AbortHandle> = self
            .lock()
            .tasks
            .iter_mut()
            .filter(|task| !task.abort.is_finished())
            .map(|task| {
                task.aborted = true;
                task.abort.clone()
            })
            .collect();
        for task in running {
            task.abort();
        }
    }

    /// Names of the tasks still running.
    pub(crate) fn running_names(&self) -> Vec<String> {
        self.lock()
            .tasks
            .iter()
            .filter(|task| !task.abort.is_finished())
            .map(|task| task.name.to_string())
            .collect()
    }

    /// The own token of task `id`, created on first use.
    pub(crate) fn own_token(&self, id: u64) -> crate::CancellationToken {
        let mut own = self
            .own_tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        own.entry(id)
            .or_insert_with(|| {
                self.own_count.fetch_add(1, Ordering::Relaxed);
                ChildToken::new(&self.source.token())
            })
            .token()
    }

    /// Cancels task `id` alone, through its own token.
    pub(crate) fn cancel_task(&self, id: u64, reason: CancelReason) {
        // Cancelled after the lock is released: callbacks may ask for tokens.
        let token = self.own_token(id);
        crate::cancel::cancel_child(&token, reason);
    }

    /// Drops task `id`'s own token, if it had one.
    fn forget_own(&self, id: u64) {
        if self.own_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let removed = self
            .own_tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        if let Some(own) = removed {
            self.own_count.fetch_sub(1, Ordering::Relaxed);
            own.unlink(&self.source.token());
        }
    }

    /// Hands task `id`'s failure to its handle.
    pub(crate) fn claim_failure(&self, id: u64) -> Option<E> {
        let mut state = self.lock();
        let index = state
            .failures
            .iter()
            .position(|(failure, _)| failure.task == Some(id))?;
        Some(state.failures.remove(index).1)
    }

    /// Whether task `id` is cancelled: its own token if it has one, else
    /// the scope's.
    fn task_is_cancelled(&self, id: u64) -> bool {
        if self.own_count.load(Ordering::Relaxed) > 0 {
            let own = self
                .own_tokens
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(source) = own.get(&id) {
                return source.is_cancelled();
            }
        }
        self.source.is_cancelled()
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
        // One wait and one timer at a time, in deadline order: this future
        // lives in every scope's future, so it is kept small.
        let (warn, grace) = (self.settings.warn_after, self.settings.grace);
        let (first, second) = match grace {
            Some(grace) if grace < warn => (Some((grace, Duty::Abort)), Some((warn, Duty::Warn))),
            Some(grace) => (Some((warn, Duty::Warn)), Some((grace, Duty::Abort))),
            None => (Some((warn, Duty::Warn)), None),
        };
        for (delay, duty) in [first, second].into_iter().flatten() {
            self.after_cancel(delay).await;
            match duty {
                Duty::Abort => self.abort_running(),
                Duty::Warn => self.warn_laggards(),
            }
        }
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
            if self.settings.policy == Policy::Supervise {
                // Fail-fast logged the failure when it cancelled the scope.
                tracing::error!(parent: &self.span, errors = errors.len(), "supervised tasks failed; the scope fails");
            }
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

pin_project! {
    /// A task as spawned: the user's future in its ambient scope, then its
    /// accounting. Written by hand rather than as an `async` block, which
    /// would store the user's future twice (as a capture and as a local)
    /// and make every idle task bigger.
    struct TaskFuture<F, E>
    where
        E: Send,
        E: 'static,
    {
        #[pin]
        inner: TaskLocalFuture<Ambient, Guarded<F>>,
        done: Option<TaskGuard<E>>,
        span: Option<Box<tracing::Span>>,
    }
}

impl<F, T, E> Future for TaskFuture<F, E>
where
    F: Future<Output = Result<T, E>>,
    E: Send + 'static,
{
    type Output = TaskOutput<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskOutput<T>> {
        let this = self.project();
        let _entered = this.span.as_ref().map(|span| span.enter());
        let (result, while_cancelled) = std::task::ready!(this.inner.poll(cx));
        let guard = this.done.take().expect("a task polled after completion");
        Poll::Ready(guard.complete(result, while_cancelled))
    }
}

pin_project! {
    /// Polls the user's future catching panics; on completion also says
    /// whether the task's token was cancelled by then (read inside the
    /// ambient scope, where the task's own token is).
    struct Guarded<F> {
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Guarded<F> {
    type Output = (std::thread::Result<F::Output>, bool);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.project().future;
        match panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                Poll::Ready((Ok(output), CURRENT.with(Ambient::is_cancelled)))
            }
            Err(payload) => Poll::Ready((Err(payload), true)),
        }
    }
}

/// What a task's future returns to its handle. A failure's error stays
/// with the scope until the handle claims it (invariant 3).
pub(crate) enum TaskOutput<T> {
    Completed(T),
    Failed,
    Panicked,
}

/// Accounts for one task however it ends (invariant 1).
pub(crate) struct TaskGuard<E: Send + 'static> {
    shared: StdArc<ScopeShared<E>>,
    id: u64,
    at: &'static Location<'static>,
}

impl<E: Send + 'static> TaskGuard<E> {
    fn complete<T>(
        self,
        result: std::thread::Result<Result<T, E>>,
        while_cancelled: bool,
    ) -> TaskOutput<T> {
        if let Ok(Ok(value)) = result {
            return TaskOutput::Completed(value);
        }
        let name = self.shared.task_name(self.id, self.at);
        match result {
            Ok(Ok(_)) => unreachable!("returned above"),
            Ok(Err(error)) => {
                let failure = self
                    .shared
                    .on_failure(&name, Some(self.id), while_cancelled);
                self.shared.push_failure(failure, error);
                TaskOutput::Failed
            }
            Err(payload) => {
                self.shared.on_panic(&name, payload);
                TaskOutput::Panicked
            }
        }
    }
}

impl<E: Send + 'static> Drop for TaskGuard<E> {
    fn drop(&mut self) {
        self.shared.forget_own(self.id);
        JoinCounter::release(&self.shared.join);
    }
}

impl<E: Send + 'static> ScopeContext for ScopeShared<E> {
    fn id(&self) -> u64 {
        self.id
    }

    fn token(&self) -> crate::CancellationToken {
        self.source.token()
    }

    fn register_child(&self, child: Weak<dyn ScopeContext>) {
        let mut children = self.children.lock().unwrap_or_else(PoisonError::into_inner);
        if children.len() == children.capacity() {
            children.retain(|c| c.strong_count() > 0);
            let live = children.len();
            children.reserve(live.max(4));
        }
        children.push(child);
    }

    fn children(&self) -> Vec<StdArc<dyn ScopeContext>> {
        self.children
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    fn abort_here(&self) {
        ScopeShared::abort_here(self);
    }

    fn snapshot_here(&self) -> Option<ScopeSnapshot> {
        if self.join.is_done() {
            return None;
        }
        let now = Instant::now();
        let cancelled = self.cancelled_at.get();
        let state = if self.aborting.load(Ordering::Relaxed) {
            RunState::Aborting
        } else if cancelled.is_some() || self.source.is_cancelled() {
            RunState::CancelRequested
        } else {
            RunState::Running
        };
        let tasks = self
            .lock()
            .tasks
            .iter()
            .filter(|task| !task.abort.is_finished())
            .map(|task| TaskSnapshot {
                name: task.name.given().map(str::to_owned),
                location: task.name.location(),
                state: if task.aborted {
                    RunState::Aborting
                } else {
                    state
                },
                age: task.started.elapsed(),
            })
            .collect();
        Some(ScopeSnapshot {
            name: self.settings.name.given().map(str::to_owned),
            location: self.settings.name.location(),
            state,
            age: now.saturating_duration_since(self.opened),
            cancelled_for: cancelled.map(|c| now.saturating_duration_since(c.at)),
            reason: self.source.reason().map(|r| r.to_string()),
            tasks,
            scopes: Vec::new(),
        })
    }

    fn running_tree_here(&self) -> Vec<String> {
        let scope = self.settings.name.to_string();
        self.running_names()
            .into_iter()
            .map(|task| format!("{task} (in scope {scope})"))
            .collect()
    }
    fn join(&self) -> Arc<JoinCounter> {
        Arc::clone(&self.join)
    }

    fn own_token(&self, task: u64) -> crate::CancellationToken {
        ScopeShared::own_token(self, task)
    }

    fn task_is_cancelled(&self, task: u64) -> bool {
        ScopeShared::task_is_cancelled(self, task)
    }
}
