//! A snapshot of the live task tree: every live scope and task, its state,
//! age and cancellation reason — the answer to "what is this shutdown
//! waiting on?" without a debugger.

use std::fmt;
use std::sync::{Mutex, PoisonError, Weak};
use std::time::Duration;

use super::current::ScopeContext;
use std::sync::Arc as StdArc;

/// Where a scope or task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum RunState {
    /// Not cancelled.
    Running,
    /// Its token was cancelled; it has not finished yet.
    CancelRequested,
    /// The grace period ran out; it is being aborted.
    Aborting,
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunState::Running => "running",
            RunState::CancelRequested => "cancel requested",
            RunState::Aborting => "aborting",
        })
    }
}

/// One live task in a [`TreeSnapshot`].
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TaskSnapshot {
    /// The name given to `spawn_named`, if any.
    pub name: Option<String>,
    /// Where it was spawned (`file:line`).
    pub location: String,
    /// Its state (that of its scope, or `Aborting` once it was aborted).
    pub state: RunState,
    /// How long it has been running.
    pub age: Duration,
}

/// One live scope in a [`TreeSnapshot`], with its tasks and nested scopes.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ScopeSnapshot {
    /// The name given to the scope, if any.
    pub name: Option<String>,
    /// Where it was opened (`file:line`).
    pub location: String,
    /// Its state.
    pub state: RunState,
    /// How long it has been open.
    pub age: Duration,
    /// How long ago it was cancelled, if it was.
    pub cancelled_for: Option<Duration>,
    /// Why it was cancelled, if it was.
    pub reason: Option<String>,
    /// Its tasks still running.
    pub tasks: Vec<TaskSnapshot>,
    /// Scopes opened inside it (by its body or its tasks) that are alive.
    pub scopes: Vec<ScopeSnapshot>,
}

/// The live task tree: every root scope (opened outside any scope) with
/// everything inside it. `Display`s as an indented tree; with the `serde`
/// feature it serialises (to JSON, say).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// taskscope::ScopeBuilder::new().name("server").run(async |s| {
///     s.spawn_named("accept loop", async {
///         taskscope::token().cancelled().await;
///         Ok::<_, taskscope::Cancelled>(())
///     });
///     tokio::task::yield_now().await;
///     let tree = taskscope::tree();
///     let server = tree.scopes.iter().find(|s| s.name.as_deref() == Some("server")).unwrap();
///     assert_eq!(server.tasks[0].name.as_deref(), Some("accept loop"));
///     println!("{tree}");
///     s.cancel();
///     Ok::<_, taskscope::Cancelled>(())
/// })
/// .await
/// .unwrap();
/// # }
/// ```
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TreeSnapshot {
    /// The root scopes.
    pub scopes: Vec<ScopeSnapshot>,
}

/// Scopes opened outside any scope (weak; swept when the list grows).
static ROOTS: Mutex<Vec<Weak<dyn ScopeContext>>> = Mutex::new(Vec::new());

pub(crate) fn register_root(scope: Weak<dyn ScopeContext>) {
    let mut roots = ROOTS.lock().unwrap_or_else(PoisonError::into_inner);
    if roots.len() == roots.capacity() {
        roots.retain(|root| root.strong_count() > 0);
        let live = roots.len();
        roots.reserve(live.max(4));
    }
    roots.push(scope);
}

/// A snapshot of every live scope and task in the process.
///
/// ```
/// let tree = taskscope::tree();
/// assert!(tree.scopes.is_empty()); // nothing runs outside a runtime here
/// ```
pub fn tree() -> TreeSnapshot {
    let roots: Vec<StdArc<dyn ScopeContext>> = ROOTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    TreeSnapshot {
        scopes: roots.iter().filter_map(|root| snapshot(&**root)).collect(),
    }
}

/// The snapshot of `scope` and everything inside it, or `None` if it has
/// finished.
pub(crate) fn snapshot(scope: &dyn ScopeContext) -> Option<ScopeSnapshot> {
    let mut node = scope.snapshot_here()?;
    node.scopes = scope
        .children()
        .iter()
        .filter_map(|child| snapshot(&**child))
        .collect();
    Some(node)
}

fn seconds(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn label(name: &Option<String>, location: &str) -> String {
    match name {
        Some(name) => format!("\"{name}\" ({location})"),
        None => format!("({location})"),
    }
}

impl ScopeSnapshot {
    fn fmt_tree(
        &self,
        f: &mut fmt::Formatter<'_>,
        prefix: &str,
        last: bool,
        root: bool,
    ) -> fmt::Result {
        let (branch, next) = match (root, last) {
            (true, _) => ("", String::new()),
            (false, true) => ("└─ ", format!("{prefix}   ")),
            (false, false) => ("├─ ", format!("{prefix}│  ")),
        };
        write!(
            f,
            "{prefix}{branch}scope {} {}",
            label(&self.name, &self.location),
            self.state
        )?;
        match (self.cancelled_for, &self.reason) {
            (Some(ago), Some(reason)) => writeln!(f, " {} ago: {reason}", seconds(ago))?,
            _ => writeln!(f, " {}", seconds(self.age))?,
        }
        let count = self.tasks.len() + self.scopes.len();
        for (i, task) in self.tasks.iter().enumerate() {
            let branch = if i + 1 == count { "└─ " } else { "├─ " };
            write!(
                f,
                "{next}{branch}task {} {} {}",
                label(&task.name, &task.location),
                task.state,
                seconds(task.age)
            )?;
            if self.state != RunState::Running {
                f.write_str("  <- holding the scope")?;
            }
            writeln!(f)?;
        }
        for (i, scope) in self.scopes.iter().enumerate() {
            scope.fmt_tree(f, &next, self.tasks.len() + i + 1 == count, false)?;
        }
        Ok(())
    }
}

impl fmt::Display for ScopeSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_tree(f, "", true, true)
    }
}

impl fmt::Display for TreeSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scopes.is_empty() {
            return writeln!(f, "(no live scopes)");
        }
        for scope in &self.scopes {
            write!(f, "{scope}")?;
        }
        Ok(())
    }
}
