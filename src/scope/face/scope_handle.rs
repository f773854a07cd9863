//! `ScopeHandle`: an owned handle to a live scope, for integrations and for
//! tasks that spawn siblings.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::cancel::{CancelReason, CancellationToken, Cancelled};
use crate::scope::engine::cleanups::{ScopeEnd, Step, StepErrors, StepFuture};
use crate::scope::engine::ledger::Payload;
use crate::scope::engine::settings::TaskName;
use crate::scope::engine::Engine;
use crate::scope::face::any_scope::AnyScope;
use crate::scope::face::scope_builder::ScopeBuilder;
use crate::scope::face::scope_error::{ScopeClosed, ScopeError};
use crate::scope::face::start::{Ready, StartError};
use crate::scope::face::task_builder::TaskBuilder;
use crate::scope::face::task_handle::TaskHandle;
use crate::scope::task_error::TaskError;

/// A scope whose tasks' error type is `E`, owned: `Clone + Send + Sync +
/// 'static`. What a body's `&Scope` dereferences to; it dereferences in turn
/// to [`AnyScope`], which has what does not depend on `E` (its token,
/// deadline, name; cancelling it).
///
/// A task can hold one and spawn siblings into its own scope; an integration
/// can hold one and open scopes inside it with
/// [`ScopeBuilder::within`](crate::ScopeBuilder::within). It never keeps the
/// scope open: once the scope has finished, its verbs
/// ([`spawn`](ScopeHandle::spawn),
/// [`spawn_blocking`](ScopeHandle::spawn_blocking),
/// [`spawn_local`](ScopeHandle::spawn_local), [`start`](ScopeHandle::start),
/// and the same on [`task()`](ScopeHandle::task)) return [`ScopeClosed`].
///
/// Get one from [`Scope::handle`](crate::Scope::handle) (typed by the
/// scope's error type), or from an [`AnyScope`] (see
/// [`typed`](AnyScope::typed)).
///
/// # Examples
///
/// A task that spawns a sibling:
///
/// ```
/// use taskscope::Cancelled;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let found = taskscope::scope(async |s| {
///     let siblings = s.handle();
///     let crawler = s.spawn(async move {
///         // The follow-up runs beside this task, in the same scope (which
///         // is open: this task holds it open).
///         let follow_up = siblings.spawn(async { Ok::<_, Cancelled>(2) })?;
///         Ok(1 + follow_up.await?)
///     });
///     crawler.await
/// })
/// .await
/// .unwrap();
/// assert_eq!(found, 3);
/// # }
/// ```
pub struct ScopeHandle<E> {
    any: AnyScope,
    _error: PhantomData<fn() -> E>,
}

impl<E> ScopeHandle<E> {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        ScopeHandle {
            any: AnyScope::new(engine),
            _error: PhantomData,
        }
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        self.any.engine()
    }
}

impl<E> Deref for ScopeHandle<E> {
    type Target = AnyScope;

    fn deref(&self) -> &AnyScope {
        &self.any
    }
}

impl<E: TaskError> ScopeHandle<E> {
    /// Options for one task (a name, waiting for a free slot), then one of
    /// the verbs: see [`TaskBuilder`]. Each verb returns [`ScopeClosed`] once
    /// the scope has finished.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let handle = s.handle();
    ///     let task = handle.task().name("refresh").spawn(async { Ok::<_, taskscope::Cancelled>(()) })?;
    ///     assert_eq!(task.name(), "refresh");
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    #[track_caller]
    pub fn task(&self) -> TaskBuilder<'_, ScopeHandle<E>> {
        TaskBuilder::new(self)
    }

    /// Spawns `future` as a task of the scope (see
    /// [`Scope::spawn`](crate::Scope::spawn)), or returns [`ScopeClosed`] if
    /// the scope has already finished. The task's handle is owned
    /// (`'static`).
    ///
    /// ```
    /// use taskscope::{Cancelled, ScopeClosed};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let handle = taskscope::scope(async |s| {
    ///     let task = s.handle().spawn(async { Ok::<_, Cancelled>(7) })?;
    ///     assert_eq!(task.await?, 7);
    ///     Ok(s.handle())
    /// })
    /// .await
    /// .unwrap();
    /// // The scope has finished: nothing more runs in it.
    /// assert_eq!(handle.spawn(async { Ok(()) }).unwrap_err(), ScopeClosed);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, future: F) -> Result<TaskHandle<'static, T, E>, ScopeClosed>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        self.task().spawn(future)
    }

    /// Runs a blocking closure on tokio's blocking pool as a task of the
    /// scope (see [`Scope::spawn_blocking`](crate::Scope::spawn_blocking)),
    /// or returns [`ScopeClosed`].
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let handle = s.handle();
    ///     // From another task: the handle is owned, Send and Sync.
    ///     let hasher = tokio::spawn(async move {
    ///         handle.spawn_blocking(|token| {
    ///             token.check()?;
    ///             Ok::<_, taskscope::Cancelled>(0xfeed)
    ///         })
    ///     });
    ///     let hashed = hasher.await.unwrap()?;
    ///     assert_eq!(hashed.await?, 0xfeed);
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, T>(&self, f: F) -> Result<TaskHandle<'static, T, E>, ScopeClosed>
    where
        F: FnOnce(CancellationToken) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
    {
        self.task().spawn_blocking(f)
    }

    /// Spawns a `!Send` future on the current `LocalSet` as a task of the
    /// scope (see [`Scope::spawn_local`](crate::Scope::spawn_local)), or
    /// returns [`ScopeClosed`].
    ///
    /// ```
    /// use std::rc::Rc;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let local = tokio::task::LocalSet::new();
    /// local
    ///     .run_until(taskscope::scope(async |s| {
    ///         let handle = s.handle();
    ///         let shared = Rc::new(1);
    ///         let task = handle.spawn_local(async move { Ok::<_, taskscope::Cancelled>(*shared) })?;
    ///         assert_eq!(task.await?, 1);
    ///         Ok(())
    ///     }))
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_local<F, T>(&self, future: F) -> Result<TaskHandle<'static, T, E>, ScopeClosed>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        self.task().spawn_local(future)
    }

    /// Spawns a task and waits until it is ready (see
    /// [`Scope::start`](crate::Scope::start)); [`StartError::Closed`] if the
    /// scope has already finished.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let handle = s.handle();
    ///     let port = handle.start(|ready| async move {
    ///         ready.send(8080);
    ///         Ok(())
    ///     });
    ///     assert_eq!(port.await.map_err(|e| e.into_error())?, 8080);
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    #[track_caller]
    pub fn start<T, F, Fut>(
        &self,
        task: F,
    ) -> impl Future<Output = Result<T, StartError<E>>> + Send + 'static
    where
        F: FnOnce(Ready<T>) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        T: Send + 'static,
    {
        self.task().start(task)
    }

    /// Registers an async cleanup step: `cleanup` runs exactly once when the
    /// scope ends, however it ends (its body returned or failed, a timeout,
    /// a cancellation, a panic, or its future dropped), after every task of
    /// the scope has stopped. It gets how the scope ended ([`ScopeEnd`]).
    ///
    /// It runs in a [shielded](crate::ScopeBuilder::shielded) scope of its
    /// own, bounded by `timeout` (`Duration::ZERO` cancels it at once,
    /// `Duration::MAX` never): no cancellation from above reaches it, and it
    /// cannot hang a shutdown. Several steps run one after another, the
    /// last registered first. A step that fails, panics or runs out of time
    /// is reported with the scope's result, after the scope's own errors
    /// (a panic is resumed when the scope exits); when the scope's future
    /// was dropped, the steps still run, joined by the nearest enclosing
    /// scope, and their failures are logged.
    ///
    /// `Err(ScopeClosed)` once the scope has finished, or its future was
    /// dropped.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::{CancelReason, Cancelled, ScopeBuilder, ScopeEnd};
    /// use tokio::sync::mpsc;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (audit, mut written) = mpsc::unbounded_channel();
    /// let result = ScopeBuilder::new()
    ///     .timeout(Duration::from_millis(100))
    ///     .run(async |s| {
    ///         s.handle().defer(Duration::from_secs(5), move |end| async move {
    ///             // Async work after the scope's tasks stopped, cancelled or not.
    ///             tokio::time::sleep(Duration::from_millis(10)).await;
    ///             audit.send(end).unwrap();
    ///             Ok(())
    ///         })?;
    ///         taskscope::token().cancelled().await; // until the timeout
    ///         Ok::<_, Cancelled>(())
    ///     })
    ///     .await;
    /// // The step ran before the scope returned, and saw why it ended.
    /// assert_eq!(written.try_recv().unwrap(), ScopeEnd::Cancelled(CancelReason::Timeout));
    /// # let _ = result;
    /// # }
    /// ```
    #[track_caller]
    pub fn defer<F, Fut>(&self, timeout: Duration, cleanup: F) -> Result<(), ScopeClosed>
    where
        F: FnOnce(ScopeEnd) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let engine = self.engine();
        let owner = engine
            .parent()
            .map(|owner| AnyScope::new(Arc::clone(owner)));
        let name = TaskName::named(Arc::from("cleanup"), Location::caller());
        let run = move |end: ScopeEnd| -> StepFuture {
            Box::pin(async move {
                let mut builder = ScopeBuilder::new().name("cleanup");
                if let Some(owner) = &owner {
                    builder = builder.within(owner);
                }
                let step = builder
                    .shielded(timeout)
                    .try_start(move |_: ScopeHandle<E>| cleanup(end));
                let outcome = match step {
                    Ok(step) => step.await,
                    Err(closed) => Err(ScopeError::Failed {
                        first: E::from(Cancelled::new(CancelReason::message(closed.to_string()))),
                        later: Vec::new(),
                    }),
                };
                step_errors(outcome)
            })
        };
        let step = Step {
            name,
            run: Box::new(run),
        };
        engine.defer(step).map_err(|_| ScopeClosed)
    }
}

/// A cleanup step's outcome as the ledger keeps errors: nothing when it
/// succeeded; a step that ran out of time without an error of its own
/// reports the timeout.
fn step_errors<E: TaskError>(outcome: Result<(), ScopeError<E>>) -> StepErrors {
    let errors = match outcome {
        Ok(()) => return Vec::new(),
        Err(ScopeError::TimedOut { errors }) if errors.is_empty() => {
            vec![E::from(Cancelled::new(CancelReason::Timeout))]
        }
        Err(error) => error.into_errors(),
    };
    errors
        .into_iter()
        .map(|error| Box::new(error) as Payload)
        .collect()
}

impl<E> Clone for ScopeHandle<E> {
    fn clone(&self) -> Self {
        ScopeHandle {
            any: self.any.clone(),
            _error: PhantomData,
        }
    }
}

impl<E> fmt::Debug for ScopeHandle<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ScopeHandle").field(&self.any).finish()
    }
}
