//! Spawning: a task as tokio runs it, and the accounting that ties it to
//! its scope however it ends.
//!
//! # Invariants
//!
//! 1. A task holds one unit of its scope's join counter from just before it
//!    is spawned until its future has been dropped, however it ends:
//!    completed, failed, panicked, aborted, or dropped by a runtime
//!    shutdown. The future is dropped first (with its ambient scope
//!    current), the unit released last, so no code of a task runs after its
//!    scope has finished.
//! 2. A task shares no allocation with its spawner beyond tokio's own task:
//!    its value goes back through tokio's `JoinHandle`, its error to the
//!    scope's ledger (tagged with its id), where the handle claims it.
//! 3. The task's error is judged where its type is known (here): a
//!    cancellation error from a task whose token fired is a cancellation,
//!    anything else is real.

use std::future::Future;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;

use crate::cancel::CancellationToken;
use crate::scope::engine::ledger::Kind;
use crate::scope::engine::settings::TaskName;
use crate::scope::engine::Engine;
use crate::scope::face::scope_error::ScopeClosed;
use crate::scope::run::current::{self, Ambient};
use crate::scope::task_error::TaskError;

/// What a task's future returns to its handle. A failure's error stays
/// with the scope until the handle claims it (invariant 2).
pub(crate) enum TaskOutput<T> {
    Completed(T),
    Failed,
    Panicked,
}

/// A spawned task: its tokio handle and its id in the scope.
pub(crate) struct Spawned<T> {
    pub(crate) join: JoinHandle<TaskOutput<T>>,
    pub(crate) id: u64,
}

/// Spawns `future` as a task of `engine` (invariant 1); `Err` if the scope
/// has already finished. With a `permit` the task holds it while it runs;
/// under a limit without one, it waits for a slot first.
pub(crate) fn spawn<F, T, E>(
    engine: &Arc<Engine>,
    name: TaskName,
    future: F,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<Spawned<T>, ScopeClosed>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: TaskError,
{
    let (task, id) = prepare(engine, &name, future)?;
    let join = match (permit, engine.limit()) {
        (None, None) => tokio::spawn(task),
        (Some(permit), _) => tokio::spawn(async move {
            let _permit = permit;
            task.await
        }),
        (None, Some(limit)) => {
            let limit = Arc::clone(limit);
            tokio::spawn(async move {
                let _permit = limit.acquire_owned().await;
                task.await
            })
        }
    };
    Ok(track(engine, id, name, join))
}

/// Like [`spawn`], for a future that is not `Send`: a task of the current
/// thread's `LocalSet` (tokio's `spawn_local`).
///
/// # Panics
///
/// Outside a `LocalSet`, as `tokio::task::spawn_local` does.
pub(crate) fn spawn_local<F, T, E>(
    engine: &Arc<Engine>,
    name: TaskName,
    future: F,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<Spawned<T>, ScopeClosed>
where
    F: Future<Output = Result<T, E>> + 'static,
    T: 'static,
    E: TaskError,
{
    let (task, id) = prepare(engine, &name, future)?;
    let join = match (permit, engine.limit()) {
        (None, None) => tokio::task::spawn_local(task),
        (Some(permit), _) => tokio::task::spawn_local(async move {
            let _permit = permit;
            task.await
        }),
        (None, Some(limit)) => {
            let limit = Arc::clone(limit);
            tokio::task::spawn_local(async move {
                let _permit = limit.acquire_owned().await;
                task.await
            })
        }
    };
    Ok(track(engine, id, name, join))
}

/// Takes a unit of the scope for a new task and wraps its future
/// (invariant 1); `Err` if the scope has already finished.
fn prepare<F, T, E>(
    engine: &Arc<Engine>,
    name: &TaskName,
    future: F,
) -> Result<(TaskFuture<F, E>, u64), ScopeClosed>
where
    F: Future<Output = Result<T, E>>,
    E: TaskError,
{
    if !engine.join.try_add() {
        return Err(ScopeClosed);
    }
    let id = engine.next_task_id();
    let span = tracing::debug_span!(
        parent: engine.span(),
        "task",
        name = %name,
        location = %name.location(),
        scope = engine.id,
    );
    let task = TaskFuture {
        future: Some(future),
        ambient: Some(Ambient::task(Arc::clone(engine), id)),
        // Boxed, and only when a subscriber wants it: an idle task
        // without tracing pays one word, not a whole span.
        span: (!span.is_disabled()).then(|| Box::new(span)),
        at: name.site(),
        _error: PhantomData,
    };
    Ok((task, id))
}

/// Registers a spawned task with its scope, so it can be named and aborted.
fn track<T>(
    engine: &Engine,
    id: u64,
    name: TaskName,
    join: JoinHandle<TaskOutput<T>>,
) -> Spawned<T> {
    engine.registry.track(id, name, join.abort_handle());
    Spawned { join, id }
}

/// Runs `f` on tokio's blocking pool as a task of `engine`. It gets the
/// task's own token; an abort cannot stop it once it has started.
pub(crate) fn spawn_blocking<F, T, E>(
    engine: &Arc<Engine>,
    name: TaskName,
    f: F,
) -> Result<Spawned<T>, ScopeClosed>
where
    F: FnOnce(CancellationToken) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: TaskError,
{
    if !engine.join.try_add() {
        return Err(ScopeClosed);
    }
    let id = engine.next_task_id();
    let token = engine.registry.own_token(id, &engine.token());
    let guard = Finish {
        engine: Arc::clone(engine),
        id,
    };
    let fallback = name.clone();
    let join = tokio::task::spawn_blocking(move || {
        // The task's scope is the ambient one on the blocking thread too:
        // `taskscope::token()` and scope-local values work there.
        let mut ambient = Some(Ambient::task(Arc::clone(&guard.engine), id));
        let result = current::enter(&mut ambient, || {
            panic::catch_unwind(AssertUnwindSafe(|| f(token.clone())))
        });
        guard.complete(&fallback, result, || token.is_cancelled())
    });
    engine.registry.track(id, name, join.abort_handle());
    Ok(Spawned { join, id })
}

/// Accounts for one task however it ends: releases its unit when dropped
/// (invariant 1).
struct Finish {
    engine: Arc<Engine>,
    id: u64,
}

impl Finish {
    /// Records how the task ended (invariant 3) and hands its value on.
    fn complete<T, E: TaskError>(
        &self,
        fallback: &TaskName,
        result: std::thread::Result<Result<T, E>>,
        was_cancelled: impl FnOnce() -> bool,
    ) -> TaskOutput<T> {
        match result {
            Ok(Ok(value)) => TaskOutput::Completed(value),
            Ok(Err(error)) => {
                let kind = Kind::judge(error.is_cancellation(), was_cancelled());
                let name = self.engine.task_name(self.id, fallback);
                self.engine
                    .fail(&name, Some(self.id), kind, Box::new(error));
                TaskOutput::Failed
            }
            Err(payload) => {
                let name = self.engine.task_name(self.id, fallback);
                self.engine.panicked(&name, payload);
                TaskOutput::Panicked
            }
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.engine
            .registry
            .forget_own(self.id, &self.engine.token());
        self.engine.release();
    }
}

pin_project! {
    /// A task as spawned: the user's future, polled with its ambient scope
    /// current and its panics caught. Written by hand rather than as an
    /// `async` block, which would store the user's future twice (as a
    /// capture and as a local) and make every idle task bigger.
    struct TaskFuture<F, E> {
        #[pin]
        future: Option<F>,
        // `None` once the task has finished.
        ambient: Option<Ambient>,
        span: Option<Box<tracing::Span>>,
        // Where it was spawned, for a failure before the registry knows it.
        at: &'static Location<'static>,
        _error: PhantomData<fn() -> E>,
    }

    impl<F, E> PinnedDrop for TaskFuture<F, E> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if this.ambient.is_none() {
                return; // finished: accounted for already
            }
            // Aborted, or dropped by its runtime: the future is dropped with
            // its scope current, then the unit released (invariant 1).
            let mut future = this.future;
            current::enter(this.ambient, || future.set(None));
            if let Some(ambient) = this.ambient.take() {
                let id = ambient.task_id().expect("a task's ambient names it");
                drop(Finish {
                    engine: ambient.engine,
                    id,
                });
            }
        }
    }
}

impl<F, T, E> Future for TaskFuture<F, E>
where
    F: Future<Output = Result<T, E>>,
    E: TaskError,
{
    type Output = TaskOutput<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskOutput<T>> {
        let this = self.project();
        let _entered = this.span.as_ref().map(|span| span.enter());
        let mut future = this.future;
        let polled = current::enter(this.ambient, || {
            let future = future
                .as_mut()
                .as_pin_mut()
                .expect("a task polled after it finished");
            match panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                Ok(Poll::Pending) => None,
                Ok(Poll::Ready(result)) => Some(Ok(result)),
                Err(payload) => Some(Err(payload)),
            }
        });
        let Some(result) = polled else {
            return Poll::Pending;
        };
        // Back in this future: the ambient value holds the task's own token,
        // if the task asked for one.
        let was_cancelled = this.ambient.as_ref().is_some_and(Ambient::is_cancelled);
        // The future is done; drop it now, inside its scope (invariant 1).
        current::enter(this.ambient, || future.set(None));
        let ambient = this.ambient.take().expect("a task completes once");
        let id = ambient.task_id().expect("a task's ambient names it");
        let finish = Finish {
            engine: ambient.engine,
            id,
        };
        let output = finish.complete(&TaskName::at(this.at), result, || was_cancelled);
        drop(finish);
        Poll::Ready(output)
    }
}
