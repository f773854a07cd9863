//! The ambient current scope: a task-local set around every scope body and
//! every task, so that `taskscope::token()` and nested scopes find their
//! enclosing scope without a parameter.

use std::sync::{Arc as StdArc, OnceLock, Weak};

use super::join::JoinCounter;
use crate::loom::sync::Arc;
use crate::CancellationToken;

/// Where the current code runs: a scope's body, or one of its tasks. A
/// task's value lives inside the task (tokio's task-local), so it costs the
/// task no allocation of its own.
#[derive(Clone)]
pub(crate) enum Ambient {
    Body {
        scope: StdArc<dyn ScopeContext>,
    },
    Task {
        scope: StdArc<dyn ScopeContext>,
        id: u64,
        /// The task's own token, fetched from the scope on first use.
        own: OnceLock<CancellationToken>,
    },
}

/// What the ambient scope needs from a scope, whatever its error type.
pub(crate) trait ScopeContext: Send + Sync {
    fn id(&self) -> u64;
    fn token(&self) -> CancellationToken;
    /// Remembers a scope opened inside this one, to name its tasks.
    fn register_child(&self, child: Weak<dyn ScopeContext>);
    /// Names of the tasks still running here and in nested scopes.
    fn running_tree(&self) -> Vec<String>
    where
        Self: Sized,
    {
        let mut names = self.running_tree_here();
        for scope in descendants(self) {
            names.extend(scope.running_tree_here());
        }
        names
    }
    /// Names of the tasks still running here.
    fn running_tree_here(&self) -> Vec<String>;
    /// Aborts the tasks still running here.
    fn abort_here(&self);
    /// This scope and its running tasks, without nested scopes; `None` once
    /// it has finished.
    fn snapshot_here(&self) -> Option<super::tree::ScopeSnapshot>;
    /// Scopes opened inside this one that are still alive.
    fn children(&self) -> Vec<StdArc<dyn ScopeContext>>;
    fn join(&self) -> Arc<JoinCounter>;
    /// Task `task`'s own token (a child of the scope's), created on first use.
    fn own_token(&self, task: u64) -> CancellationToken;
    fn task_is_cancelled(&self, task: u64) -> bool;
}

impl Ambient {
    pub(crate) fn token(&self) -> CancellationToken {
        match self {
            Ambient::Body { scope } => scope.token(),
            Ambient::Task { scope, id, own } => own.get_or_init(|| scope.own_token(*id)).clone(),
        }
    }

    pub(crate) fn join(&self) -> Arc<JoinCounter> {
        match self {
            Ambient::Body { scope } | Ambient::Task { scope, .. } => scope.join(),
        }
    }

    /// The scope the current code runs in.
    pub(crate) fn scope(&self) -> &StdArc<dyn ScopeContext> {
        match self {
            Ambient::Body { scope } | Ambient::Task { scope, .. } => scope,
        }
    }

    /// Whether the current code's token is cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        match self {
            Ambient::Body { scope } => scope.token().is_cancelled(),
            Ambient::Task { scope, id, own } => match own.get() {
                Some(token) => token.is_cancelled(),
                None => scope.task_is_cancelled(*id),
            },
        }
    }
}

/// Every live scope opened inside `scope`, at any depth, breadth first
/// (a loop, not recursion).
pub(crate) fn descendants(scope: &dyn ScopeContext) -> Vec<StdArc<dyn ScopeContext>> {
    let mut found = scope.children();
    let mut next = 0;
    while next < found.len() {
        let children = found[next].children();
        found.extend(children);
        next += 1;
    }
    found
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
