//! A set of a scope's tasks joined in the order they finish
//! (tokio's `JoinSet::join_next`, owned by a scope).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::handle::ScopeHandle;
use super::task::JoinTask;
use super::task_error::TaskError;
use super::typed::Scope;

/// Tasks of one scope with the same output type, joined in the order they
/// finish: [`join_next`](TaskSet::join_next), as tokio's
/// `JoinSet::join_next`. Unlike a `JoinSet`, the tasks belong to the scope:
/// dropping the set neither aborts nor detaches them (the scope still joins
/// them, and reports a failure nobody took), and cancelling the scope
/// cancels them.
///
/// ```
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let order = taskscope::scope(async |s| {
///     let mut set = s.task_set();
///     for ms in [30, 10, 20] {
///         set.spawn(async move {
///             tokio::time::sleep(Duration::from_millis(ms)).await;
///             Ok::<_, std::io::Error>(ms)
///         });
///     }
///     let mut order = Vec::new();
///     while let Some(done) = set.join_next().await {
///         order.push(done?);
///     }
///     Ok(order)
/// })
/// .await
/// .unwrap();
/// assert_eq!(order, [10, 20, 30]);
/// # }
/// ```
#[must_use = "a TaskSet joins nothing unless `join_next` is awaited"]
pub struct TaskSet<'scope, T, E> {
    spawner: Spawner<'scope, E>,
    running: FuturesUnordered<JoinTask<'scope, T, E>>,
}

enum Spawner<'scope, E> {
    Borrowed(&'scope Scope<E>),
    Owned(ScopeHandle<E>),
}

impl<E: TaskError> Scope<E> {
    /// An empty [`TaskSet`] spawning into this scope.
    pub fn task_set<T: Send + 'static>(&self) -> TaskSet<'_, T, E> {
        TaskSet {
            spawner: Spawner::Borrowed(self),
            running: FuturesUnordered::new(),
        }
    }
}

impl<E: TaskError> ScopeHandle<E> {
    /// An empty [`TaskSet`] spawning into this scope, owned (`'static`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let mut set = s.handle().task_set();
    ///     set.spawn(async { Ok(1) });
    ///     assert_eq!(set.join_next().await.transpose()?, Some(1));
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn task_set<T: Send + 'static>(&self) -> TaskSet<'static, T, E> {
        TaskSet {
            spawner: Spawner::Owned(self.clone()),
            running: FuturesUnordered::new(),
        }
    }
}

impl<'scope, T: Send + 'static, E: TaskError> TaskSet<'scope, T, E> {
    /// Spawns `future` into the scope and adds it to the set.
    ///
    /// # Panics
    ///
    /// If the set came from a [`ScopeHandle`] whose scope has finished.
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let task = match &self.spawner {
            Spawner::Borrowed(scope) => scope.spawn(future),
            Spawner::Owned(handle) => handle.spawn(future),
        };
        self.running.push(task.into_future());
    }

    /// Like [`spawn`](TaskSet::spawn), with a name for errors, warnings and
    /// the task tree.
    #[track_caller]
    pub fn spawn_named<F>(&mut self, name: impl Into<Arc<str>>, future: F)
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let task = match &self.spawner {
            Spawner::Borrowed(scope) => scope.spawn_named(name, future),
            Spawner::Owned(handle) => handle.spawn_named(name, future),
        };
        self.running.push(task.into_future());
    }

    /// The next task to finish: its value or its error (a failure joined
    /// here is the caller's, not the scope's, as with a task's handle);
    /// `None` once the set is empty. Cancel-safe: dropping the future loses
    /// no task.
    pub async fn join_next(&mut self) -> Option<Result<T, E>> {
        self.running.next().await
    }

    /// How many tasks have not been joined yet.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether every task has been joined.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

impl<T, E> fmt::Debug for TaskSet<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSet")
            .field("unjoined", &self.running.len())
            .finish()
    }
}
