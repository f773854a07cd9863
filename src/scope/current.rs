//! The ambient current scope: a task-local set around every scope body and
//! every task, so that `taskscope::token()` and nested scopes find their
//! enclosing scope without a parameter.

use std::sync::Arc as StdArc;

use super::join::JoinCounter;
use crate::loom::sync::Arc;
use crate::CancellationToken;

/// Where the current code runs: a scope's body, or one of its tasks.
#[derive(Clone)]
pub(crate) enum Ambient {
    Body {
        token: CancellationToken,
        join: Arc<JoinCounter>,
    },
    /// One reference for everything a task needs, so setting the ambient
    /// scope costs a task a single reference count.
    Task(StdArc<dyn TaskContext>),
}

/// What the ambient scope needs from a task (see `task.rs`).
pub(crate) trait TaskContext: Send + Sync {
    /// The task's own token, created on first use.
    fn token(&self) -> CancellationToken;
    /// The join counter of the task's scope.
    fn join(&self) -> Arc<JoinCounter>;
}

impl Ambient {
    pub(crate) fn token(&self) -> CancellationToken {
        match self {
            Ambient::Body { token, .. } => token.clone(),
            Ambient::Task(task) => task.token(),
        }
    }

    pub(crate) fn join(&self) -> Arc<JoinCounter> {
        match self {
            Ambient::Body { join, .. } => Arc::clone(join),
            Ambient::Task(task) => task.join(),
        }
    }
}

tokio::task_local! {
    pub(crate) static CURRENT: Ambient;
}

/// The ambient scope, if the caller runs inside a scope body or task.
pub(crate) fn ambient() -> Option<Ambient> {
    CURRENT.try_with(Ambient::clone).ok()
}

/// The cancellation token of the current scope body or task, or
/// [`CancellationToken::none()`] outside any scope.
///
/// Inside a task it is the task's own token (a child of its scope's token,
/// so it fires when the scope is cancelled *or* when the task alone is
/// cancelled through [`TaskHandle::cancel`](crate::TaskHandle::cancel)).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert!(!taskscope::token().can_be_cancelled()); // outside any scope
///
/// taskscope::scope(async |s| {
///     assert_eq!(taskscope::token(), s.token());
///     s.spawn(async {
///         let token = taskscope::token(); // no parameter needed
///         token.cancelled().await;
///         Ok::<_, taskscope::Cancelled>(())
///     });
///     s.cancel();
///     Ok::<_, taskscope::Cancelled>(())
/// })
/// .await
/// .unwrap();
/// # }
/// ```
pub fn token() -> CancellationToken {
    CURRENT.try_with(Ambient::token).unwrap_or_default()
}
