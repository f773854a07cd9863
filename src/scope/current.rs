//! The ambient current scope: a task-local set around every scope body and
//! every task, so that `taskscope::token()` and nested scopes find their
//! enclosing scope without a parameter.

use std::sync::Arc as StdArc;

use super::join::JoinCounter;
use crate::loom::sync::Arc;
use crate::CancellationToken;

/// Where the current code runs: which token it should observe, and which
/// scope a scope opened here belongs to.
#[derive(Clone)]
pub(crate) struct Ambient {
    pub(crate) token: TokenSource,
    pub(crate) join: Arc<JoinCounter>,
}

/// The token of a scope body, or the lazily created own token of a task.
#[derive(Clone)]
pub(crate) enum TokenSource {
    Scope(CancellationToken),
    Task(StdArc<dyn OwnToken>),
}

/// A task's own token, created on first use (see `task.rs`).
pub(crate) trait OwnToken: Send + Sync {
    fn token(&self) -> CancellationToken;
}

impl TokenSource {
    pub(crate) fn token(&self) -> CancellationToken {
        match self {
            TokenSource::Scope(token) => token.clone(),
            TokenSource::Task(task) => task.token(),
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
    CURRENT
        .try_with(|ambient| ambient.token.token())
        .unwrap_or_default()
}
