//! One task's options (a name, waiting for a free slot), then the verb that
//! says where it runs: the one way every receiver spawns.

use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use crate::cancel::CancellationToken;
use crate::scope::engine::settings::TaskName;
use crate::scope::engine::Engine;
use crate::scope::face::scope::Scope;
use crate::scope::face::scope_error::ScopeClosed;
use crate::scope::face::scope_handle::ScopeHandle;
use crate::scope::face::start::{self, Ready, StartError};
use crate::scope::face::task_handle::TaskHandle;
use crate::scope::run::spawn::{self, Spawned};
use crate::scope::task_error::TaskError;

pub(crate) use receiver::Receiver;

mod receiver {
    use super::*;

    /// What a [`TaskBuilder`] spawns into: a body's [`Scope`] (open while
    /// the body runs, so a spawn gives the task's handle) or a
    /// [`ScopeHandle`] (whose scope may have finished, so a spawn gives a
    /// `Result`). Sealed: the crate implements it for those two.
    #[allow(private_interfaces)]
    pub trait Receiver {
        /// The error type of the scope's tasks.
        type Error: TaskError;
        /// What a spawn returns.
        type Spawned<'a, T: 'static>
        where
            Self: 'a;

        #[doc(hidden)]
        fn engine(&self) -> &Arc<Engine>;

        #[doc(hidden)]
        fn finish<'a, T: 'static>(
            &'a self,
            spawned: Result<Spawned<T>, ScopeClosed>,
            name: TaskName,
        ) -> Self::Spawned<'a, T>;
    }
}

// The sealed trait's methods name crate types: users can neither name the
// trait nor call them.
#[allow(private_interfaces)]
impl<E: TaskError> Receiver for Scope<E> {
    type Error = E;
    type Spawned<'a, T: 'static> = TaskHandle<'a, T, E>;

    fn engine(&self) -> &Arc<Engine> {
        Scope::engine(self)
    }

    fn finish<'a, T: 'static>(
        &'a self,
        spawned: Result<Spawned<T>, ScopeClosed>,
        name: TaskName,
    ) -> TaskHandle<'a, T, E> {
        // The body holds a unit of the scope while it runs: it is open.
        let spawned = spawned.expect("a scope is open while its body runs");
        TaskHandle::borrowed(Scope::engine(self), spawned, name)
    }
}

#[allow(private_interfaces)]
impl<E: TaskError> Receiver for ScopeHandle<E> {
    type Error = E;
    type Spawned<'a, T: 'static> = Result<TaskHandle<'static, T, E>, ScopeClosed>;

    fn engine(&self) -> &Arc<Engine> {
        ScopeHandle::engine(self)
    }

    fn finish<T: 'static>(
        &self,
        spawned: Result<Spawned<T>, ScopeClosed>,
        name: TaskName,
    ) -> Result<TaskHandle<'static, T, E>, ScopeClosed> {
        let engine = Arc::clone(ScopeHandle::engine(self));
        spawned.map(|spawned| TaskHandle::owned(engine, spawned, name))
    }
}

/// Options for one task of a scope, then the verb that spawns it
/// (`s.task()`, as `tokio::task::Builder`). The options combine with every
/// verb:
///
/// * [`name`](TaskBuilder::name): for errors, warnings and the task tree
///   (by default a task is named after where it was spawned, which does not
///   tell apart tasks spawned in a loop);
/// * [`wait_for_slot`](TaskBuilder::wait_for_slot): the spawner waits for
///   a free slot under the scope's [limit](crate::ScopeBuilder::limit)
///   (backpressure), and the verbs become `async` (the builder's `WAIT`
///   parameter turns `true`; the task holds the slot while it runs).
///
/// The verbs are the same on every receiver: [`spawn`](TaskBuilder::spawn),
/// [`spawn_blocking`](TaskBuilder::spawn_blocking),
/// [`spawn_local`](TaskBuilder::spawn_local) and
/// [`start`](TaskBuilder::start). From a body's [`Scope`] a spawn returns the
/// task's [`TaskHandle`]; from a [`ScopeHandle`], whose scope may have
/// finished, `Result<TaskHandle, ScopeClosed>`.
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
///         // From an owned handle the same verbs return a Result.
///         let audit = s.handle().task().name("audit").spawn(async { Ok(4) })?;
///         assert_eq!(index.await? + hash.await? + upload.await? + audit.await?, 10);
///         Ok(())
///     })
///     .await
///     .unwrap();
/// # }
/// ```
#[must_use = "a TaskBuilder spawns nothing until one of its verbs"]
#[derive(Debug)]
pub struct TaskBuilder<'a, R, const WAIT: bool = false> {
    receiver: &'a R,
    name: Option<Arc<str>>,
    at: &'static Location<'static>,
}

impl<'a, R: Receiver, const WAIT: bool> TaskBuilder<'a, R, WAIT> {
    /// The task's name, for errors, warnings and the task tree.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    fn task_name(&self) -> TaskName {
        match &self.name {
            Some(name) => TaskName::named(Arc::clone(name), self.at),
            None => TaskName::at(self.at),
        }
    }
}

impl<'a, R: Receiver> TaskBuilder<'a, R> {
    #[track_caller]
    pub(crate) fn new(receiver: &'a R) -> Self {
        TaskBuilder {
            receiver,
            name: None,
            at: Location::caller(),
        }
    }

    /// Waits for a free slot under the scope's
    /// [limit](crate::ScopeBuilder::limit) before spawning (backpressure):
    /// the verbs become `async`, and the task holds its slot while it runs.
    /// Without a limit it spawns at once.
    pub fn wait_for_slot(self) -> TaskBuilder<'a, R, true> {
        TaskBuilder {
            receiver: self.receiver,
            name: self.name,
            at: self.at,
        }
    }

    /// Spawns `future` on the runtime's workers; see [`Scope::spawn`].
    pub fn spawn<F, T>(self, future: F) -> R::Spawned<'a, T>
    where
        F: Future<Output = Result<T, R::Error>> + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_with(None, future)
    }

    /// Runs `f` on the blocking pool; see [`Scope::spawn_blocking`].
    pub fn spawn_blocking<F, T>(self, f: F) -> R::Spawned<'a, T>
    where
        F: FnOnce(CancellationToken) -> Result<T, R::Error> + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_blocking_with(None, f)
    }

    /// Spawns a `!Send` `future` on the current `LocalSet`; see
    /// [`Scope::spawn_local`].
    pub fn spawn_local<F, T>(self, future: F) -> R::Spawned<'a, T>
    where
        F: Future<Output = Result<T, R::Error>> + 'static,
        T: 'static,
    {
        self.spawn_local_with(None, future)
    }

    /// Spawns `task` and waits until it is ready; see [`Scope::start`].
    /// A closed scope gives [`StartError::Closed`].
    pub fn start<T, F, Fut>(
        self,
        task: F,
    ) -> impl Future<Output = Result<T, StartError<R::Error>>> + Send + 'static
    where
        F: FnOnce(Ready<T>) -> Fut,
        Fut: Future<Output = Result<(), R::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let name = self.task_name();
        start::start(self.receiver.engine(), name, None, task)
    }

    fn spawn_with<F, T>(self, permit: Option<OwnedSemaphorePermit>, future: F) -> R::Spawned<'a, T>
    where
        F: Future<Output = Result<T, R::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let name = self.task_name();
        let spawned = spawn::spawn(self.receiver.engine(), name.clone(), future, permit);
        self.receiver.finish(spawned, name)
    }

    fn spawn_blocking_with<F, T>(
        self,
        permit: Option<OwnedSemaphorePermit>,
        f: F,
    ) -> R::Spawned<'a, T>
    where
        F: FnOnce(CancellationToken) -> Result<T, R::Error> + Send + 'static,
        T: Send + 'static,
    {
        let name = self.task_name();
        let spawned = spawn::spawn_blocking(self.receiver.engine(), name.clone(), move |token| {
            let _slot = permit;
            f(token)
        });
        self.receiver.finish(spawned, name)
    }

    fn spawn_local_with<F, T>(
        self,
        permit: Option<OwnedSemaphorePermit>,
        future: F,
    ) -> R::Spawned<'a, T>
    where
        F: Future<Output = Result<T, R::Error>> + 'static,
        T: 'static,
    {
        let name = self.task_name();
        let spawned = spawn::spawn_local(self.receiver.engine(), name.clone(), future, permit);
        self.receiver.finish(spawned, name)
    }
}

/// The verbs after [`wait_for_slot`](TaskBuilder::wait_for_slot): each
/// waits for a free slot first.
impl<'a, R: Receiver> TaskBuilder<'a, R, true> {
    /// A slot under the scope's limit, once one is free; `None` without a
    /// limit.
    async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        let limit = self.receiver.engine().limit()?;
        Arc::clone(limit).acquire_owned().await.ok()
    }

    /// The builder that spawns with the slot it got.
    fn with_slot(self) -> TaskBuilder<'a, R> {
        TaskBuilder {
            receiver: self.receiver,
            name: self.name,
            at: self.at,
        }
    }

    /// Waits for a slot, then spawns `future` on the runtime's workers.
    pub async fn spawn<F, T>(self, future: F) -> R::Spawned<'a, T>
    where
        F: Future<Output = Result<T, R::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.slot().await;
        self.with_slot().spawn_with(permit, future)
    }

    /// Waits for a slot, then runs `f` on the blocking pool.
    pub async fn spawn_blocking<F, T>(self, f: F) -> R::Spawned<'a, T>
    where
        F: FnOnce(CancellationToken) -> Result<T, R::Error> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.slot().await;
        self.with_slot().spawn_blocking_with(permit, f)
    }

    /// Waits for a slot, then spawns a `!Send` `future` on the current
    /// `LocalSet`.
    pub async fn spawn_local<F, T>(self, future: F) -> R::Spawned<'a, T>
    where
        F: Future<Output = Result<T, R::Error>> + 'static,
        T: 'static,
    {
        let permit = self.slot().await;
        self.with_slot().spawn_local_with(permit, future)
    }

    /// Waits for a slot, then starts `task` and waits until it is ready.
    pub async fn start<T, F, Fut>(self, task: F) -> Result<T, StartError<R::Error>>
    where
        F: FnOnce(Ready<T>) -> Fut,
        Fut: Future<Output = Result<(), R::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.slot().await;
        let name = self.task_name();
        start::start(self.receiver.engine(), name, permit, task).await
    }
}
