//! A snapshot of the live task tree: every live scope and task, its state,
//! age and cancellation reason — the answer to "what is this shutdown
//! waiting on?" without a debugger.
//!
//! Depth is free: taking a snapshot, printing it, cloning it and dropping it
//! are loops over an explicit stack, never recursion, and a printed line's
//! indentation stops growing after 16 levels (deeper scopes
//! show their depth instead), so the text is linear in the tree's size.

use std::fmt;
use std::time::Duration;

use crate::scope::engine::{self, Engine};

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
    /// The name given with `task().name(…)`, if any.
    pub name: Option<String>,
    /// Where it was spawned (`file:line`).
    pub location: String,
    /// Its state (that of its scope, or `Aborting` once it was aborted).
    pub state: RunState,
    /// How long it has been running.
    pub age: Duration,
}

/// One live scope in a [`TreeSnapshot`], with its tasks and nested scopes.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ScopeSnapshot {
    /// The name given to the scope, if any.
    pub name: Option<String>,
    /// Where it was opened (`file:line`).
    pub location: String,
    /// Its state.
    pub state: RunState,
    /// How long it has been in the tree: since it first waited (a scope
    /// that finishes without ever waiting is never listed).
    pub age: Duration,
    /// How long ago it was cancelled, if it was.
    pub cancelled_for: Option<Duration>,
    /// Why it was cancelled, if it was.
    pub reason: Option<String>,
    /// What its owner says it is doing, if it said (see
    /// [`AnyScope::set_status`](crate::AnyScope::set_status)): a
    /// service's phase, say.
    pub status: Option<String>,
    /// The names of the scope-local keys it binds itself (see
    /// [`ScopeLocal`](crate::ScopeLocal)); never their values.
    pub binds: Vec<&'static str>,
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
///     s.task().name("accept loop").spawn(async {
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

/// Levels of indentation a printed tree shows; deeper scopes print their
/// depth instead, so no line grows with the depth of the tree.
const MAX_INDENT: usize = 16;

/// A snapshot of every live scope and task in the process.
///
/// ```
/// let tree = taskscope::tree();
/// assert!(tree.scopes.is_empty()); // nothing runs outside a runtime here
/// ```
pub fn tree() -> TreeSnapshot {
    TreeSnapshot {
        scopes: engine::roots()
            .iter()
            .filter_map(|root| snapshot(root))
            .collect(),
    }
}

impl ScopeSnapshot {
    /// The tasks running in this scope and the scopes inside it, each as
    /// "name (in scope name)", depth first: the listing a scope's warning
    /// about tasks that ignore their cancellation, and the host's report of
    /// a slow shutdown, print. A loop over the snapshot, not recursion.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::ScopeBuilder::new().name("jobs").run(async |s| {
    ///     s.task().name("import").spawn(async {
    ///         taskscope::token().cancelled().await;
    ///         Ok::<_, taskscope::Cancelled>(())
    ///     });
    ///     tokio::task::yield_now().await;
    ///     let running = s.snapshot().unwrap().running_tasks();
    ///     assert_eq!(running, ["import (in scope jobs)"]);
    ///     s.cancel();
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn running_tasks(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut stack = vec![self];
        while let Some(scope) = stack.pop() {
            let scope_name = scope.name.as_deref().unwrap_or(&scope.location);
            for task in &scope.tasks {
                let task_name = task.name.as_deref().unwrap_or(&task.location);
                names.push(format!("{task_name} (in scope {scope_name})"));
            }
            stack.extend(scope.scopes.iter().rev());
        }
        names
    }
}

/// The snapshot of `root` and everything inside it, or `None` if it has
/// finished: a breadth-first walk, then the nodes are put together from the
/// deepest up (no recursion).
pub(crate) fn snapshot(root: &Engine) -> Option<ScopeSnapshot> {
    let mut nodes = vec![(snapshot_here(root)?, usize::MAX)];
    let mut engines = vec![root.registry.children()];
    let mut next = 0;
    while next < engines.len() {
        let children = std::mem::take(&mut engines[next]);
        for child in children {
            if let Some(node) = snapshot_here(&child) {
                nodes.push((node, next));
                engines.push(child.registry.children());
            }
        }
        next += 1;
    }
    Some(assemble(nodes))
}

/// Builds a tree from nodes listed parents first, each with its parent's
/// index (`usize::MAX` for the root, which is first).
fn assemble(nodes: Vec<(ScopeSnapshot, usize)>) -> ScopeSnapshot {
    let mut slots: Vec<(Option<ScopeSnapshot>, usize)> = nodes
        .into_iter()
        .map(|(node, parent)| (Some(node), parent))
        .collect();
    // From the last node up: a node's children all come after it, so by the
    // time it is moved into its parent its own list is complete.
    for index in (1..slots.len()).rev() {
        let (node, parent) = &mut slots[index];
        let parent = *parent;
        let mut node = node.take().expect("each node is moved once");
        node.scopes.reverse();
        slots[parent]
            .0
            .as_mut()
            .expect("a parent comes before its children")
            .scopes
            .push(node);
    }
    let mut root = slots.swap_remove(0).0.expect("the root is first");
    root.scopes.reverse();
    root
}

/// One scope and its running tasks, without nested scopes; `None` once it
/// has finished.
fn snapshot_here(engine: &Engine) -> Option<ScopeSnapshot> {
    if engine.join.is_done() {
        return None;
    }
    let cancelled_at = engine.cancel.cancelled_at();
    let state = if engine.is_aborting() {
        RunState::Aborting
    } else if engine.cancel.is_cancelled() {
        RunState::CancelRequested
    } else {
        RunState::Running
    };
    let tasks = engine
        .registry
        .running()
        .into_iter()
        .map(|task| TaskSnapshot {
            name: task.name.given().map(str::to_owned),
            location: task.name.location(),
            state: if task.aborted {
                RunState::Aborting
            } else {
                state
            },
            age: task.age,
        })
        .collect();
    let settings = &engine.settings;
    Some(ScopeSnapshot {
        name: settings.name.given().map(str::to_owned),
        location: settings.name.location(),
        state,
        age: engine
            .listed_since()
            .map_or(Duration::ZERO, |since| since.elapsed()),
        cancelled_for: cancelled_at
            .map(|at| tokio::time::Instant::now().saturating_duration_since(at)),
        reason: engine.cancel.reason().map(|r| r.to_string()),
        status: engine.registry.status().map(|s| s.to_string()),
        binds: engine
            .locals()
            .map_or_else(Vec::new, |locals| locals.bound_here().collect()),
        tasks,
        scopes: Vec::new(),
    })
}

impl ScopeSnapshot {
    /// This node's fields with no nested scopes.
    fn shallow(&self) -> ScopeSnapshot {
        ScopeSnapshot {
            name: self.name.clone(),
            location: self.location.clone(),
            state: self.state,
            age: self.age,
            cancelled_for: self.cancelled_for,
            reason: self.reason.clone(),
            status: self.status.clone(),
            binds: self.binds.clone(),
            tasks: self.tasks.clone(),
            scopes: Vec::new(),
        }
    }

    /// Every node depth first, in print order, with its depth and whether
    /// it is the last child of its parent.
    fn walk(&self) -> Vec<(&ScopeSnapshot, usize, bool)> {
        let mut order = Vec::new();
        let mut stack = vec![(self, 0, true)];
        while let Some((node, depth, last)) = stack.pop() {
            order.push((node, depth, last));
            let count = node.scopes.len();
            for (i, child) in node.scopes.iter().enumerate().rev() {
                stack.push((child, depth + 1, i + 1 == count));
            }
        }
        order
    }
}

impl Clone for ScopeSnapshot {
    fn clone(&self) -> Self {
        // Breadth first with parent indices, then assembled: no recursion.
        let mut nodes = vec![(self.shallow(), usize::MAX)];
        let mut sources = vec![self];
        let mut next = 0;
        while next < sources.len() {
            let source = sources[next];
            for child in &source.scopes {
                nodes.push((child.shallow(), next));
                sources.push(child);
            }
            next += 1;
        }
        assemble(nodes)
    }
}

impl Drop for ScopeSnapshot {
    fn drop(&mut self) {
        // Each node is dropped with its list already emptied: no recursion.
        let mut stack = std::mem::take(&mut self.scopes);
        while let Some(mut node) = stack.pop() {
            stack.append(&mut node.scopes);
        }
    }
}

impl fmt::Debug for ScopeSnapshot {
    /// The fields of this node; nested scopes are counted, not printed
    /// (use `Display` for the whole tree), so a deep tree cannot overflow
    /// the stack.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeSnapshot")
            .field("name", &self.name)
            .field("location", &self.location)
            .field("state", &self.state)
            .field("age", &self.age)
            .field("cancelled_for", &self.cancelled_for)
            .field("reason", &self.reason)
            .field("status", &self.status)
            .field("binds", &self.binds)
            .field("tasks", &self.tasks)
            .field("scopes", &format_args!("[{} nested]", self.scopes.len()))
            .finish()
    }
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

/// The indentation for a line under ancestors whose "has more siblings"
/// flags are `open`: at most [`MAX_INDENT`] levels drawn, then the depth.
fn indent(open: &[bool]) -> String {
    let mut prefix = String::new();
    for &more in open.iter().take(MAX_INDENT) {
        prefix.push_str(if more { "│  " } else { "   " });
    }
    if open.len() > MAX_INDENT {
        prefix.push_str(&format!("┆ depth {} ", open.len() + 1));
    }
    prefix
}

impl fmt::Display for ScopeSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `open[k]` says whether the ancestor at depth k + 1 has siblings
        // still to print below (draw "│" under it).
        let mut open: Vec<bool> = Vec::new();
        for (node, depth, last) in self.walk() {
            open.truncate(depth.saturating_sub(1));
            let branch = match (depth, last) {
                (0, _) => "",
                (_, true) => "└─ ",
                (_, false) => "├─ ",
            };
            write!(
                f,
                "{}{branch}scope {} {}",
                indent(&open),
                label(&node.name, &node.location),
                node.state
            )?;
            if let Some(status) = &node.status {
                write!(f, " [{status}]")?;
            }
            if !node.binds.is_empty() {
                write!(f, " (binds {})", node.binds.join(", "))?;
            }
            match (node.cancelled_for, &node.reason) {
                (Some(ago), Some(reason)) => writeln!(f, " {} ago: {reason}", seconds(ago))?,
                _ => writeln!(f, " {}", seconds(node.age))?,
            }
            if depth > 0 {
                open.push(!last);
            }
            let inner = indent(&open);
            let count = node.tasks.len() + node.scopes.len();
            for (i, task) in node.tasks.iter().enumerate() {
                let branch = if i + 1 == count { "└─ " } else { "├─ " };
                write!(
                    f,
                    "{inner}{branch}task {} {} {}",
                    label(&task.name, &task.location),
                    task.state,
                    seconds(task.age)
                )?;
                if node.state != RunState::Running {
                    f.write_str("  <- holding the scope")?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
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
