//! One task of a scope: the shared cell its result goes to, the handle that
//! awaits it, and the guard that accounts for it however it ends.
//!
//! # Who gets a task's error
//!
//! Exactly one party: the [`TaskHandle`] if it is still alive when the task
//! fails (it will return the error from `.await`), else the scope (which
//! reports it in [`ScopeError`](crate::ScopeError)). A handle dropped
//! before it took a failure hands the error to the scope. `slot` decides
//! the race under its lock; it is released before the scope's state is
//! locked, so the two locks are never held together.

use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc as StdArc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::task::JoinHandle;

use super::current::TaskContext;
use super::join::JoinCounter;
use super::shared::{Failure, RunningTask, ScopeShared, TaskName};
use crate::loom::sync::Arc;
use crate::{CancelReason, CancellationSource, CancellationToken, Cancelled};

/// How a task ended.
pub(crate) enum Outcome<T, E> {
    Completed(T),
    /// With when, and in what state, it happened.
    Failed(Failure, E),
    /// The panic itself went to the scope, to be resumed at its exit.
    Panicked,
    /// Dropped before completion (aborted after the grace period, or its
    /// runtime shut down), with the scope's reason at that moment.
    Aborted(CancelReason),
}

struct Slot<T, E> {
    outcome: Option<Outcome<T, E>>,
    waker: Option<Waker>,
    handle_alive: bool,
}

/// Shared by a task, its handle and its scope (which holds it weakly, to
/// name and abort it).
pub(crate) struct TaskCell<T, E> {
    slot: Mutex<Slot<T, E>>,
    pub(crate) name: TaskName,
    pub(crate) shared: StdArc<ScopeShared<E>>,
    /// The task's own token, created on first use: most tasks never need
    /// one, so it is boxed to keep the cell small.
    own: OnceLock<Box<CancellationSource>>,
    /// Set once the task is spawned; used to abort it.
    pub(crate) join_handle: OnceLock<JoinHandle<()>>,
}

impl<T, E> TaskCell<T, E> {
    pub(crate) fn new(name: TaskName, shared: StdArc<ScopeShared<E>>) -> Self {
        TaskCell {
            slot: Mutex::new(Slot {
                outcome: None,
                waker: None,
                handle_alive: true,
            }),
            name,
            shared,
            own: OnceLock::new(),
            join_handle: OnceLock::new(),
        }
    }

    fn own_source(&self) -> &CancellationSource {
        self.own
            .get_or_init(|| Box::new(CancellationSource::linked([&self.shared.source.token()])))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot<T, E>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores how the task ended, for the handle. Without a handle, a
    /// failure goes to the scope and a value is dropped at once.
    pub(crate) fn finish(&self, outcome: Outcome<T, E>) {
        let mut slot = self.lock();
        if slot.outcome.is_some() {
            return;
        }
        if !slot.handle_alive {
            drop(slot);
            if let Outcome::Failed(failure, error) = outcome {
                self.shared.push_failure(failure, error);
            }
            return;
        }
        slot.outcome = Some(outcome);
        if let Some(waker) = slot.waker.take() {
            drop(slot);
            waker.wake();
        }
    }

    /// Whether the task's token (its own, or else its scope's) is cancelled.
    pub(crate) fn token_is_cancelled(&self) -> bool {
        match self.own.get() {
            Some(own) => own.is_cancelled(),
            None => self.shared.source.is_cancelled(),
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.lock().outcome.is_some()
    }
}

impl<T: Send, E: Send + 'static> TaskContext for TaskCell<T, E> {
    fn token(&self) -> CancellationToken {
        self.own_source().token()
    }

    fn join(&self) -> Arc<JoinCounter> {
        Arc::clone(&self.shared.join)
    }
}

impl<T: Send, E: Send> RunningTask for TaskCell<T, E> {
    fn name(&self) -> String {
        self.name.to_string()
    }

    fn abort(&self) {
        if let Some(handle) = self.join_handle.get() {
            handle.abort();
        }
    }

    fn is_finished(&self) -> bool {
        TaskCell::is_finished(self)
    }
}

/// Awaits one task of a scope; returned by [`Scope::spawn`](crate::Scope::spawn).
///
/// `.await` gives `Ok(output)` if the task succeeded, `Err(error)` with the
/// task's own error if it failed, and `Err(E::from(Cancelled))` if it did
/// not finish: aborted after its scope's grace period (with the scope's
/// reason), or panicked (the panic itself is resumed when the scope exits).
///
/// The handle borrows its scope, so it cannot outlive the scope's body.
/// Dropping it does not stop the task (the scope still joins it); a failure
/// it did not take is reported by the scope instead.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let sum = taskscope::scope(async |s| {
///     let a = s.spawn(async { Ok::<_, std::io::Error>(1) });
///     let b = s.spawn(async { Ok(2) });
///     Ok(a.await? + b.await?)
/// })
/// .await
/// .unwrap();
/// assert_eq!(sum, 3);
/// # }
/// ```
pub struct TaskHandle<'scope, T, E> {
    cell: StdArc<TaskCell<T, E>>,
    _scope: PhantomData<&'scope ()>,
}

impl<T, E> TaskHandle<'_, T, E> {
    pub(crate) fn new(cell: StdArc<TaskCell<T, E>>) -> Self {
        TaskHandle {
            cell,
            _scope: PhantomData,
        }
    }

    /// Cancels this task alone: its own token (what `taskscope::token()`
    /// returns inside it) fires with `reason`; its scope and siblings are
    /// untouched.
    ///
    /// ```
    /// use taskscope::{CancelReason, Cancelled};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let slow = s.spawn(async {
    ///         taskscope::token().cancelled().await;
    ///         Err::<(), _>(Cancelled::new(taskscope::token().reason().unwrap()))
    ///     });
    ///     slow.cancel(CancelReason::message("not needed"));
    ///     let err = slow.await.unwrap_err();
    ///     assert_eq!(err.reason().root(), &CancelReason::message("not needed"));
    ///     assert!(!s.token().is_cancelled());
    ///     Ok::<_, Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn cancel(&self, reason: CancelReason) {
        self.cell.own_source().cancel_with(reason);
    }

    /// Whether the task has ended (in any way).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let task = s.spawn(async { Ok::<_, taskscope::Cancelled>(()) });
    ///     tokio::task::yield_now().await;
    ///     assert!(task.is_finished());
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.cell.is_finished()
    }

    /// The task's name: the one given to
    /// [`spawn_named`](crate::Scope::spawn_named), else where it was spawned.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let task = s.spawn_named("fetch orders", async { Ok::<_, taskscope::Cancelled>(()) });
    ///     assert_eq!(task.name(), "fetch orders");
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn name(&self) -> String {
        self.cell.name.to_string()
    }
}

/// The future of [`TaskHandle`]'s `.await`.
#[must_use = "futures do nothing unless polled"]
pub struct JoinTask<'scope, T, E> {
    handle: Option<TaskHandle<'scope, T, E>>,
}

impl<'scope, T, E: From<Cancelled>> IntoFuture for TaskHandle<'scope, T, E> {
    type Output = Result<T, E>;
    type IntoFuture = JoinTask<'scope, T, E>;

    fn into_future(self) -> Self::IntoFuture {
        JoinTask { handle: Some(self) }
    }
}

impl<T, E: From<Cancelled>> Future for JoinTask<'_, T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, E>> {
        let handle = self
            .handle
            .as_ref()
            .expect("JoinTask polled after completion");
        let outcome = {
            let mut slot = handle.cell.lock();
            match slot.outcome.take() {
                Some(outcome) => outcome,
                None => {
                    if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        slot.waker = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
            }
        };
        let name = handle.cell.name.to_string();
        self.handle = None;
        Poll::Ready(match outcome {
            Outcome::Completed(value) => Ok(value),
            Outcome::Failed(_, error) => Err(error),
            Outcome::Panicked => Err(E::from(Cancelled::new(CancelReason::sibling_failed(
                format!("{name} panicked"),
            )))),
            Outcome::Aborted(reason) => Err(E::from(Cancelled::new(reason))),
        })
    }
}

impl<T, E> Drop for TaskHandle<'_, T, E> {
    fn drop(&mut self) {
        let mut slot = self.cell.lock();
        slot.handle_alive = false;
        slot.waker = None;
        if matches!(slot.outcome, Some(Outcome::Failed(..))) {
            if let Some(Outcome::Failed(failure, error)) = slot.outcome.take() {
                drop(slot);
                self.cell.shared.push_failure(failure, error);
            }
        }
    }
}
