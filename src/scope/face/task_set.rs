//! Tasks of a scope joined in the order they finish (tokio's
//! `JoinSet::join_next`, for tasks a scope owns).

use std::fmt;
use std::future::IntoFuture;

use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::scope::face::task_handle::{JoinTask, TaskHandle};
use crate::scope::task_error::TaskError;

/// Tasks with the same output type, joined in the order they finish:
/// [`join_next`](TaskSet::join_next), as tokio's `JoinSet::join_next`.
/// Unlike a `JoinSet` it spawns nothing and owns nothing: tasks are spawned
/// with the scope's verbs and [`push`](TaskSet::push)ed here, so every
/// option combines with it (a name, waiting for a free slot, the blocking
/// pool). Dropping the set neither aborts nor detaches its tasks (their
/// scope still joins them, and reports a failure nobody took), and
/// cancelling the scope cancels them.
///
/// ```
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let order = taskscope::ScopeBuilder::new()
///     .limit(2)
///     .run(async |s| {
///         let mut set = taskscope::TaskSet::new();
///         for ms in [30, 10, 5] {
///             // Backpressure (at most two at a time) and completion order.
///             let task = s.task().name(format!("sleep {ms}")).wait_for_slot();
///             set.push(task.spawn(async move {
///                 tokio::time::sleep(Duration::from_millis(ms)).await;
///                 Ok::<_, std::io::Error>(ms)
///             }).await);
///         }
///         let mut order = Vec::new();
///         while let Some(done) = set.join_next().await {
///             order.push(done?);
///         }
///         Ok(order)
///     })
///     .await
///     .unwrap();
/// assert_eq!(order, [10, 5, 30]); // 5 waited for the slot 10 freed
/// # }
/// ```
#[must_use = "a TaskSet joins nothing unless `join_next` is awaited"]
pub struct TaskSet<'scope, T, E> {
    running: FuturesUnordered<JoinTask<'scope, T, E>>,
}

impl<'scope, T, E: TaskError> TaskSet<'scope, T, E> {
    /// An empty set.
    pub fn new() -> Self {
        TaskSet {
            running: FuturesUnordered::new(),
        }
    }

    /// Adds a spawned task to the set.
    pub fn push(&mut self, task: TaskHandle<'scope, T, E>) {
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

impl<T, E: TaskError> Default for TaskSet<'_, T, E> {
    fn default() -> Self {
        TaskSet::new()
    }
}

impl<T, E> fmt::Debug for TaskSet<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSet")
            .field("unjoined", &self.running.len())
            .finish()
    }
}
