//! Spawning options that combine: a name, waiting for a free slot, and
//! where the task runs (a worker, the local set, the blocking pool).

use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

use super::settings::TaskName;
use super::spawn;
use super::task::TaskHandle;
use super::task_error::TaskError;
use super::typed::Scope;
use crate::cancel::CancellationToken;

/// Options for one task of a scope, then one of the `spawn` methods
/// (`Scope::task`; as `tokio::task::Builder`). The options combine with
/// every way of running a task: a name for errors, warnings and the tree;
/// waiting for a free slot under the scope's limit; a worker thread, the
/// local set (`!Send`) or the blocking pool.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// taskscope::ScopeBuilder::new()
///     .limit(4)
///     .run(async |s| {
///         let index = s.task().name("index").spawn(async { Ok::<_, taskscope::Cancelled>(1) });
///         let hash = s.task().name("hash").spawn_blocking(|token| {
///             token.check()?;
///             Ok(2)
///         });
///         // Waits for a free slot first: backpressure, with a name.
///         let upload = s.task().name("upload").wait_for_slot().spawn(async { Ok(3) }).await;
///         assert_eq!(upload.name(), "upload");
///         assert_eq!(index.await? + hash.await? + upload.await?, 6);
///         Ok(())
///     })
///     .await
///     .unwrap();
/// # }
/// ```
#[must_use = "a TaskBuilder spawns nothing until one of its `spawn` methods"]
#[derive(Debug)]
pub struct TaskBuilder<'scope, E> {
    scope: &'scope Scope<E>,
    name: Option<Arc<str>>,
    at: &'static Location<'static>,
}

/// A [`TaskBuilder`] that waits for a free slot under the scope's limit
/// before it spawns; its `spawn` methods are `async`.
#[must_use = "a TaskBuilder spawns nothing until one of its `spawn` methods"]
#[derive(Debug)]
pub struct WaitingTaskBuilder<'scope, E> {
    task: TaskBuilder<'scope, E>,
}

impl<E: TaskError> Scope<E> {
    /// Options for one task: see [`TaskBuilder`]. `s.spawn(f)` is
    /// `s.task().spawn(f)`.
    #[track_caller]
    pub fn task(&self) -> TaskBuilder<'_, E> {
        TaskBuilder {
            scope: self,
            name: None,
            at: Location::caller(),
        }
    }
}

impl<'scope, E: TaskError> TaskBuilder<'scope, E> {
    /// The task's name, for errors, warnings and the task tree.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Waits for a free slot under the scope's [limit](crate::ScopeBuilder::limit)
    /// before spawning (backpressure); without a limit it spawns at once.
    pub fn wait_for_slot(self) -> WaitingTaskBuilder<'scope, E> {
        WaitingTaskBuilder { task: self }
    }

    fn task_name(&self) -> TaskName {
        match &self.name {
            Some(name) => TaskName::named(Arc::clone(name), self.at),
            None => TaskName::at(self.at),
        }
    }

    /// Spawns `future` on the runtime's workers; see [`Scope::spawn`].
    pub fn spawn<F, T>(self, future: F) -> TaskHandle<'scope, T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        let name = self.task_name();
        let spawned = spawn::spawn(&self.scope.engine, name.clone(), future, None);
        self.scope.handle_for(spawned, name)
    }

    /// Spawns a `!Send` `future` on the current `LocalSet`; see
    /// [`Scope::spawn_local`].
    pub fn spawn_local<F, T>(self, future: F) -> TaskHandle<'scope, T, E>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        let name = self.task_name();
        let spawned = spawn::spawn_local(&self.scope.engine, name.clone(), future);
        self.scope.handle_for(spawned, name)
    }

    /// Runs `f` on the blocking pool; see [`Scope::spawn_blocking`].
    pub fn spawn_blocking<F, T>(self, f: F) -> TaskHandle<'scope, T, E>
    where
        F: FnOnce(CancellationToken) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
    {
        let name = self.task_name();
        let spawned = spawn::spawn_blocking(&self.scope.engine, name.clone(), f);
        self.scope.handle_for(spawned, name)
    }
}

impl<'scope, E: TaskError> WaitingTaskBuilder<'scope, E> {
    /// Waits for a slot, then spawns `future` on the runtime's workers.
    pub async fn spawn<F, T>(self, future: F) -> TaskHandle<'scope, T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.task.scope.slot().await;
        let name = self.task.task_name();
        let scope = self.task.scope;
        let spawned = spawn::spawn(&scope.engine, name.clone(), future, permit);
        scope.handle_for(spawned, name)
    }

    /// Waits for a slot, then runs `f` on the blocking pool, holding the
    /// slot while it runs.
    pub async fn spawn_blocking<F, T>(self, f: F) -> TaskHandle<'scope, T, E>
    where
        F: FnOnce(CancellationToken) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.task.scope.slot().await;
        let task = self.task;
        let name = task.task_name();
        let spawned = spawn::spawn_blocking(&task.scope.engine, name.clone(), move |token| {
            let _slot = permit;
            f(token)
        });
        task.scope.handle_for(spawned, name)
    }
}
