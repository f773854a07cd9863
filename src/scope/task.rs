//! One task of a scope as its spawner sees it: the handle that awaits it.
//!
//! A task shares no allocation with its handle beyond tokio's own task (a
//! second, shared allocation per task doubled the cost of a spawn under
//! allocator contention). Its value comes back through tokio's
//! `JoinHandle`; its error stays with the scope, which the handle asks for
//! it (`shared.rs`, invariant 3). Dropping the handle detaches nothing that
//! matters: the scope still joins the task and still owns its error.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::JoinHandle;

use super::handle::Scope;
use super::shared::{TaskName, TaskOutput};
use crate::{CancelReason, Cancelled};

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
    join: JoinHandle<TaskOutput<T>>,
    scope: &'scope Scope<E>,
    name: TaskName,
    id: u64,
}

impl<'scope, T, E> TaskHandle<'scope, T, E> {
    pub(crate) fn new(
        scope: &'scope Scope<E>,
        (join, id): (JoinHandle<TaskOutput<T>>, u64),
        name: TaskName,
    ) -> Self {
        TaskHandle {
            join,
            scope,
            name,
            id,
        }
    }
}

impl<T, E: Send + 'static> TaskHandle<'_, T, E> {
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
        self.scope.shared.cancel_task(self.id, reason);
    }
}

impl<T, E> TaskHandle<'_, T, E> {
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

impl<'scope, T, E: From<Cancelled> + Send + 'static> IntoFuture for TaskHandle<'scope, T, E> {
    type Output = Result<T, E>;
    type IntoFuture = JoinTask<'scope, T, E>;

    fn into_future(self) -> Self::IntoFuture {
        JoinTask { handle: self }
    }
}

impl<T, E: From<Cancelled> + Send + 'static> Future for JoinTask<'_, T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, E>> {
        let handle = &mut self.handle;
        let shared = &handle.scope.shared;
        let output = std::task::ready!(Pin::new(&mut handle.join).poll(cx));
        Poll::Ready(match output {
            Ok(TaskOutput::Completed(value)) => Ok(value),
            Ok(TaskOutput::Failed) => Err(shared
                .claim_failure(handle.id)
                .expect("a failed task left its error with the scope")),
            Ok(TaskOutput::Panicked) => Err(E::from(Cancelled::new(CancelReason::sibling_failed(
                format!("{} panicked", handle.name),
            )))),
            // Aborted after the grace period (or its runtime shut down).
            Err(_) => Err(E::from(Cancelled::new(
                shared
                    .source
                    .reason()
                    .unwrap_or_else(|| CancelReason::message("task dropped by its runtime")),
            ))),
        })
    }
}
