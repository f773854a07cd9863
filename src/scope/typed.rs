//! `Scope<E>`: the typed face a scope body spawns with, over the untyped
//! engine.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::Arc;

use super::engine::Engine;
use super::handle::ScopeHandle;
use super::settings::TaskName;
use super::spawn::{self, Spawned};
use super::task::TaskHandle;
use super::task_error::TaskError;
use super::tree::{self, ScopeSnapshot};
use crate::cancel::{CancelReason, CancellationToken};

/// A node of the task tree: spawns tasks that it cancels and joins before
/// it finishes. A body gets `&Scope` from [`scope`](crate::scope()) (or a
/// [`ScopeBuilder`](crate::ScopeBuilder)); the reference cannot leave the
/// body, so nothing can be spawned into a scope that has finished.
///
/// Every task of a scope has `E` as its error type: a task's `Err` fails the
/// scope (under the default [`Policy::FailFast`](crate::Policy)). `E` is a
/// [`TaskError`]: it converts from [`Cancelled`](crate::Cancelled), so that
/// a task that never finished can still be reported through its handle, and
/// it can say whether an error is a cancellation, so that a real failure is
/// never taken for one.
///
/// To spawn from somewhere the borrow cannot reach (a task spawning
/// siblings, a callback), take an owned [`handle`](Scope::handle).
///
/// # Examples
///
/// The seed's `GetCustomerSummaryAsync`, with the three calls run
/// concurrently; the first failure cancels the other two.
///
/// ```
/// use std::io;
///
/// async fn customer(id: u32) -> io::Result<String> { Ok(format!("customer {id}")) }
/// async fn orders(id: u32) -> io::Result<Vec<u32>> { Ok(vec![id]) }
/// async fn balance(_id: u32) -> io::Result<i64> { Err(io::Error::other("billing is down")) }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let result = taskscope::scope(async |s| {
///     let c = s.spawn(customer(7));
///     let o = s.spawn(orders(7));
///     let b = s.spawn(balance(7));
///     Ok((c.await?, o.await?, b.await?))
/// })
/// .await;
/// let err = result.unwrap_err();
/// assert_eq!(err.first().unwrap().to_string(), "billing is down");
/// # }
/// ```
pub struct Scope<E> {
    pub(crate) engine: Arc<Engine>,
    _error: PhantomData<fn() -> E>,
}

impl<E> Scope<E> {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        Scope {
            engine,
            _error: PhantomData,
        }
    }
}

impl<E: TaskError> Scope<E> {
    /// Spawns `future` as a tokio task of this scope and returns its handle.
    /// The task is named after where it was spawned.
    ///
    /// The scope will not finish before the task has. Inside the task,
    /// [`taskscope::token()`](crate::token) is the task's own token (a
    /// child of the scope's) and scopes opened there belong to this one.
    ///
    /// Under a [concurrency limit](crate::ScopeBuilder::limit) the task
    /// waits for a free slot before it starts; use
    /// [`spawn_when_free`](Scope::spawn_when_free) to make the spawner wait
    /// instead.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let doubled = taskscope::scope(async |s| {
    ///     let task = s.spawn(async { Ok::<_, taskscope::Cancelled>(21 * 2) });
    ///     task.await
    /// })
    /// .await
    /// .unwrap();
    /// assert_eq!(doubled, 42);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, future: F) -> TaskHandle<'_, T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_as(TaskName::at(Location::caller()), future)
    }

    /// Like [`spawn`](Scope::spawn), with a name for errors, warnings and
    /// the task tree.
    ///
    /// ```
    /// use taskscope::{CancelReason, ScopeError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let result = taskscope::scope(async |s| {
    ///     s.spawn_named("db", async { Err::<(), _>(std::io::Error::other("gone")) });
    ///     let other = s.spawn_named("cache", async {
    ///         taskscope::token().cancelled().await;
    ///         Ok::<_, std::io::Error>(taskscope::token().reason().unwrap())
    ///     });
    ///     let reason = other.await?;
    ///     assert_eq!(reason.root(), &CancelReason::sibling_failed("db"));
    ///     Ok(())
    /// })
    /// .await;
    /// assert!(matches!(result, Err(ScopeError::Failed { .. })));
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_named<F, T>(&self, name: impl Into<Arc<str>>, future: F) -> TaskHandle<'_, T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_as(TaskName::named(name.into(), Location::caller()), future)
    }

    /// Waits (asynchronously) for a free slot under the scope's
    /// [concurrency limit](crate::ScopeBuilder::limit), then spawns. Without
    /// a limit it spawns at once. This is the backpressure form: a producer
    /// that spawns in a loop never runs more than the limit ahead.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let running = Arc::new(AtomicUsize::new(0));
    /// taskscope::ScopeBuilder::new()
    ///     .limit(2)
    ///     .run(async |s| {
    ///         for _ in 0..10 {
    ///             let running = running.clone();
    ///             let _ = s.spawn_when_free(async move {
    ///                 assert!(running.fetch_add(1, Ordering::SeqCst) < 2);
    ///                 tokio::task::yield_now().await;
    ///                 running.fetch_sub(1, Ordering::SeqCst);
    ///                 Ok::<_, taskscope::Cancelled>(())
    ///             })
    ///             .await;
    ///         }
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_when_free<F, T>(
        &self,
        future: F,
    ) -> impl Future<Output = TaskHandle<'_, T, E>> + '_
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        self.task().wait_for_slot().spawn(future)
    }

    /// Runs a blocking closure on tokio's blocking pool as a task of this
    /// scope; it receives the task's token and should call
    /// [`check`](CancellationToken::check) as it goes (the seed's CPU-bound
    /// loop). Unlike async tasks it cannot be aborted once started.
    ///
    /// A closure whose only way out is `?` gives Rust nothing to infer its
    /// error type from (the error reads ``cannot satisfy `_:
    /// From<Cancelled>` ``): write its return type, `|token| -> Result<T, E>
    /// { … }`, as below.
    ///
    /// ```
    /// use taskscope::Cancelled;
    ///
    /// # #[tokio::main]
    /// # async fn main() {
    /// let result = taskscope::scope(async |s| {
    ///     let busy = s.spawn_blocking(|token| -> Result<u64, Cancelled> {
    ///         let mut n = 0u64;
    ///         loop {
    ///             token.check()?; // the only exit
    ///             n = n.wrapping_add(1);
    ///         }
    ///     });
    ///     s.cancel();
    ///     busy.await
    /// })
    /// .await;
    /// assert!(result.is_err());
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, T>(&self, f: F) -> TaskHandle<'_, T, E>
    where
        F: FnOnce(CancellationToken) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
    {
        let name = TaskName::at(Location::caller());
        let spawned = spawn::spawn_blocking(&self.engine, name.clone(), f);
        self.handle_for(spawned, name)
    }

    /// Spawns a future that is not `Send` (it holds an `Rc`, a `RefCell`
    /// guard, a `!Send` client) as a task of the scope, on the current
    /// thread's `LocalSet` (tokio's `spawn_local`): otherwise like
    /// [`spawn`](Scope::spawn). The scope's body may itself be `!Send`: a
    /// scope runs its body in the caller's task.
    ///
    /// # Panics
    ///
    /// Outside a [`tokio::task::LocalSet`] (or a runtime that runs local
    /// tasks), as `tokio::task::spawn_local` does.
    ///
    /// ```
    /// use std::rc::Rc;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let local = tokio::task::LocalSet::new();
    /// let total = local
    ///     .run_until(taskscope::scope(async |s| {
    ///         let shared = Rc::new(20); // not Send
    ///         let a = s.spawn_local({
    ///             let shared = Rc::clone(&shared);
    ///             async move { Ok::<_, taskscope::Cancelled>(*shared + 1) }
    ///         });
    ///         let b = s.spawn_local(async move { Ok(*shared + 1) });
    ///         Ok(a.await? + b.await?)
    ///     }))
    ///     .await
    ///     .unwrap();
    /// assert_eq!(total, 42);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_local<F, T>(&self, future: F) -> TaskHandle<'_, T, E>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        let name = TaskName::at(Location::caller());
        let spawned = spawn::spawn_local(&self.engine, name.clone(), future);
        self.handle_for(spawned, name)
    }

    fn spawn_as<F, T>(&self, name: TaskName, future: F) -> TaskHandle<'_, T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        let spawned = spawn::spawn(&self.engine, name.clone(), future, None);
        self.handle_for(spawned, name)
    }

    /// A slot under the scope's limit, once one is free; `None` without a
    /// limit.
    pub(crate) async fn slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match self.engine.limit() {
            Some(limit) => Arc::clone(limit).acquire_owned().await.ok(),
            None => None,
        }
    }

    pub(crate) fn handle_for<T>(
        &self,
        spawned: Result<Spawned<T>, super::error::ScopeClosed>,
        name: TaskName,
    ) -> TaskHandle<'_, T, E> {
        // The body holds a unit of the scope while it runs: it is open.
        let spawned = spawned.expect("a scope is open while its body runs");
        TaskHandle::borrowed(&self.engine, spawned, name)
    }
}

impl<E> Scope<E> {
    /// The scope's token: cancelled when the scope is (by [`cancel`](Scope::cancel),
    /// a failure, its deadline, being dropped, or its parent).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let token = s.token();
    ///     assert!(!token.is_cancelled());
    ///     s.cancel();
    ///     assert!(token.is_cancelled());
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn token(&self) -> CancellationToken {
        self.engine.token()
    }

    /// The scope's deadline: the earliest of its own (a
    /// [`timeout`](crate::ScopeBuilder::timeout) or
    /// [`deadline`](crate::ScopeBuilder::deadline)) and its parents'; a
    /// nested scope can tighten its parent's, never extend it. See
    /// [`CancellationToken::deadline`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// taskscope::fail_after(Duration::from_secs(10), async |outer| {
    ///     taskscope::fail_after(Duration::from_secs(60), async |inner| {
    ///         assert_eq!(inner.deadline(), outer.deadline()); // not extended
    ///         assert_eq!(inner.remaining(), Some(Duration::from_secs(10)));
    ///         Ok::<_, taskscope::Cancelled>(())
    ///     })
    ///     .await
    ///     .map_err(taskscope::ScopeError::into_error)
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.engine.cancel.token_ref().deadline()
    }

    /// How long until the scope's [`deadline`](Scope::deadline); zero once it
    /// has passed, `None` without one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     assert_eq!(s.remaining(), None);
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn remaining(&self) -> Option<std::time::Duration> {
        self.engine.cancel.token_ref().remaining()
    }

    /// Cancels the scope: every task (and nested scope) sees its token fire.
    /// The scope still joins them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     s.spawn(async { taskscope::token().cancelled().await; Ok::<_, taskscope::Cancelled>(()) });
    ///     s.cancel(); // without this the scope would wait forever
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn cancel(&self) {
        self.engine.cancel.source().cancel();
    }

    /// Cancels the scope with `reason`.
    ///
    /// ```
    /// use taskscope::CancelReason;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     s.cancel_with(CancelReason::message("enough results"));
    ///     assert_eq!(s.token().reason(), Some(CancelReason::message("enough results")));
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn cancel_with(&self, reason: CancelReason) {
        self.engine.cancel.source().cancel_with(reason);
    }

    /// The scope's name: the one given to
    /// [`ScopeBuilder::name`](crate::ScopeBuilder::name), else where it was
    /// opened (`file:line`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     assert!(s.name().starts_with("src/scope/handle.rs:") || s.name().contains(".rs:"));
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn name(&self) -> String {
        self.engine.settings.name.to_string()
    }
}

impl<E> Scope<E> {
    /// A snapshot of this scope, its running tasks and the scopes inside it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::ScopeBuilder::new().name("request 7").run(async |s| {
    ///     s.spawn(async { taskscope::token().cancelled().await; Ok::<_, taskscope::Cancelled>(()) });
    ///     tokio::task::yield_now().await;
    ///     let snapshot = s.snapshot();
    ///     assert_eq!(snapshot.name.as_deref(), Some("request 7"));
    ///     assert_eq!(snapshot.tasks.len(), 1);
    ///     s.cancel();
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn snapshot(&self) -> ScopeSnapshot {
        tree::snapshot(&self.engine).expect("a scope is alive while its body runs")
    }

    /// An owned handle to this scope (`Clone + Send + Sync + 'static`), for
    /// code the body's borrow cannot reach: a task that spawns siblings, an
    /// integration that opens scopes inside this one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let handle = s.handle();
    ///     let task = s.spawn(async move {
    ///         let sibling = handle.spawn(async { Ok::<_, taskscope::Cancelled>(2) });
    ///         sibling.await
    ///     });
    ///     assert_eq!(task.await?, 2);
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn handle(&self) -> ScopeHandle<E> {
        ScopeHandle::new(Arc::clone(&self.engine))
    }
}

impl<E> fmt::Debug for Scope<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("name", &self.name())
            .field("token", &self.token())
            .finish()
    }
}
