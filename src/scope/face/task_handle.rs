//! One task of a scope as its spawner sees it: the handle that awaits it.
//!
//! A task shares no allocation with its handle beyond tokio's own task (a
//! second, shared allocation per task doubled the cost of a spawn under
//! allocator contention). Its value comes back through tokio's
//! `JoinHandle`; its error stays in the scope's ledger, where the handle
//! claims it. Dropping the handle detaches nothing that matters: the scope
//! still joins the task and still owns its error.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::task::JoinHandle;

use crate::cancel::{cancel_child, CancelReason, Cancelled};
use crate::scope::engine::settings::TaskName;
use crate::scope::engine::Engine;
use crate::scope::run::spawn::{Spawned, TaskOutput};
use crate::scope::task_error::TaskError;

/// The scope a handle reports to: borrowed from a body's `&Scope` (no
/// reference count per spawn), or owned by a handle from a `ScopeHandle`.
enum Owner<'scope> {
    Borrowed(&'scope Arc<Engine>),
    Shared(Arc<Engine>),
}

impl Deref for Owner<'_> {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        match self {
            Owner::Borrowed(engine) => engine,
            Owner::Shared(engine) => engine,
        }
    }
}

/// Awaits one task of a scope; returned by [`Scope::spawn`](crate::Scope::spawn).
///
/// `.await` gives `Ok(output)` if the task succeeded, `Err(error)` with the
/// task's own error if it failed, and `Err(E::from(Cancelled))` if it did
/// not finish: aborted after its scope's grace period (with the scope's
/// reason), or panicked (the panic itself is resumed when the scope exits).
///
/// A handle from [`Scope::spawn`](crate::Scope::spawn) borrows its scope,
/// so it cannot outlive the scope's body; one from
/// [`ScopeHandle::spawn`](crate::ScopeHandle::spawn) is `'static`.
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
    join: JoinHandle<TaskOutput<T>>,
    scope: Owner<'scope>,
    name: TaskName,
    id: u64,
    /// Set by [`TaskHandle::abort`], so that joining says so.
    aborted: AtomicBool,
    _error: PhantomData<fn() -> E>,
}

impl<'scope, T, E> TaskHandle<'scope, T, E> {
    pub(crate) fn borrowed(
        scope: &'scope Arc<Engine>,
        spawned: Spawned<T>,
        name: TaskName,
    ) -> Self {
        TaskHandle::new(Owner::Borrowed(scope), spawned, name)
    }

    fn new(scope: Owner<'scope>, Spawned { join, id }: Spawned<T>, name: TaskName) -> Self {
        TaskHandle {
            join,
            scope,
            name,
            id,
            aborted: AtomicBool::new(false),
            _error: PhantomData,
        }
    }
}

impl<T, E> TaskHandle<'static, T, E> {
    pub(crate) fn owned(scope: Arc<Engine>, spawned: Spawned<T>, name: TaskName) -> Self {
        TaskHandle::new(Owner::Shared(scope), spawned, name)
    }
}

impl<T, E> TaskHandle<'_, T, E> {
    /// Cancels this task alone: its own token (what `taskscope::token()`
    /// returns inside it) fires with [`CancelReason::Requested`]; its scope
    /// and siblings are untouched. See [`cancel_with`](TaskHandle::cancel_with).
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
    ///     slow.cancel();
    ///     let err = slow.await.unwrap_err();
    ///     assert_eq!(err.reason(), &CancelReason::requested());
    ///     assert!(!s.token().is_cancelled());
    ///     Ok::<_, Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn cancel(&self) {
        self.cancel_with(CancelReason::requested());
    }

    /// Cancels this task alone, with `reason`.
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
    ///     slow.cancel_with(CancelReason::message("not needed"));
    ///     let err = slow.await.unwrap_err();
    ///     assert_eq!(err.reason().root(), &CancelReason::message("not needed"));
    ///     Ok::<_, Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn cancel_with(&self, reason: CancelReason) {
        let scope = &*self.scope;
        let own = scope.registry.own_token(self.id, &scope.token());
        cancel_child(&own, reason);
    }
}

impl<T, E> TaskHandle<'_, T, E> {
    /// Aborts the task at once (tokio's `abort`): its future is dropped at
    /// its next `.await` without being asked, so prefer
    /// [`cancel`](TaskHandle::cancel), which lets it stop cleanly. The scope
    /// still joins it; awaiting the handle gives `Err(E::from(Cancelled))`
    /// with a message saying it was aborted, unless it had already finished.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let stuck = s.spawn(async {
    ///         std::future::pending::<()>().await; // never looks at its token
    ///         Ok::<_, taskscope::Cancelled>(())
    ///     });
    ///     stuck.abort();
    ///     let err = stuck.await.unwrap_err();
    ///     assert_eq!(err.to_string(), "operation cancelled: cancellation requested: aborted through its handle");
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::Relaxed);
        self.join.abort();
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
        self.join.is_finished()
    }

    /// The task's name: the one given to
    /// [`TaskBuilder::name`](crate::TaskBuilder::name), else where it was
    /// spawned.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let task = s.task().name("fetch orders").spawn(async { Ok::<_, taskscope::Cancelled>(()) });
    ///     assert_eq!(task.name(), "fetch orders");
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn name(&self) -> String {
        self.name.to_string()
    }
}

impl<T, E> fmt::Debug for TaskHandle<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("name", &self.name.to_string())
            .field("finished", &self.join.is_finished())
            .finish()
    }
}

/// The future of [`TaskHandle`]'s `.await`.
#[must_use = "futures do nothing unless polled"]
pub struct JoinTask<'scope, T, E> {
    handle: TaskHandle<'scope, T, E>,
}

impl<'scope, T, E: TaskError> IntoFuture for TaskHandle<'scope, T, E> {
    type Output = Result<T, E>;
    type IntoFuture = JoinTask<'scope, T, E>;

    fn into_future(self) -> Self::IntoFuture {
        JoinTask { handle: self }
    }
}

impl<T, E: TaskError> Future for JoinTask<'_, T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, E>> {
        let handle = &mut self.handle;
        let output = std::task::ready!(Pin::new(&mut handle.join).poll(cx));
        let scope = &*handle.scope;
        Poll::Ready(match output {
            Ok(TaskOutput::Completed(value)) => Ok(value),
            Ok(TaskOutput::Failed) => Err(*scope
                .ledger
                .claim(handle.id)
                .expect("a failed task left its error with the scope")
                .downcast::<E>()
                .expect("a task's error has its scope's error type")),
            Ok(TaskOutput::Panicked) => Err(E::from(Cancelled::new(CancelReason::sibling_failed(
                format!("{} panicked", handle.name),
            )))),
            Err(error) if error.is_cancelled() && handle.aborted.load(Ordering::Relaxed) => {
                Err(E::from(Cancelled::new(CancelReason::message(
                    "aborted through its handle",
                ))))
            }
            // Aborted after the grace period (or its runtime shut down).
            Err(_) => Err(E::from(Cancelled::new(
                scope
                    .cancel
                    .reason()
                    .unwrap_or_else(|| CancelReason::message("task dropped by its runtime")),
            ))),
        })
    }
}
