//! `Scope`: what a scope body uses to spawn tasks.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc as StdArc;

use super::shared::{ScopeShared, TaskName};
use super::task::TaskHandle;
use crate::{CancelReason, CancellationToken, Cancelled};

/// A node of the task tree: spawns tasks that it cancels and joins before
/// it finishes. A body gets `&Scope` from [`scope`](crate::scope()) (or a
/// [`ScopeBuilder`](crate::ScopeBuilder)); the reference cannot leave the
/// body, so nothing can be spawned into a scope that has finished.
///
/// Every task of a scope has `E` as its error type: a task's `Err` fails the
/// scope (under the default [`Policy::FailFast`](crate::Policy)). `E` must
/// convert from [`Cancelled`], so that a task that never finished can still
/// be reported through its handle.
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
    pub(crate) shared: StdArc<ScopeShared<E>>,
}

impl<E: From<Cancelled> + Send + 'static> Scope<E> {
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
        let name = TaskName::at(Location::caller());
        TaskHandle::new(self, self.shared.spawn(name.clone(), future, None), name)
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
    pub fn spawn_named<F, T>(&self, name: impl Into<StdArc<str>>, future: F) -> TaskHandle<'_, T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        let name = TaskName::named(name.into(), Location::caller());
        TaskHandle::new(self, self.shared.spawn(name.clone(), future, None), name)
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
        let name = TaskName::at(Location::caller());
        async move {
            let permit = match &self.shared.limit() {
                Some(limit) => StdArc::clone(limit).acquire_owned().await.ok(),
                None => None,
            };
            TaskHandle::new(self, self.shared.spawn(name.clone(), future, permit), name)
        }
    }

    /// Runs a blocking closure on tokio's blocking pool as a task of this
    /// scope; it receives the task's token and should call
    /// [`check`](CancellationToken::check) as it goes (the seed's CPU-bound
    /// loop). Unlike async tasks it cannot be aborted once started.
    ///
    /// ```
    /// use taskscope::Cancelled;
    ///
    /// # #[tokio::main]
    /// # async fn main() {
    /// let result = taskscope::scope(async |s| {
    ///     let busy = s.spawn_blocking(|token| {
    ///         let mut n = 0u64;
    ///         loop {
    ///             token.check()?;
    ///             n = n.wrapping_add(1);
    ///         }
    ///         #[allow(unreachable_code)]
    ///         Ok::<u64, Cancelled>(n)
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
        TaskHandle::new(self, self.shared.spawn_blocking(name.clone(), f), name)
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
        self.shared.source.token()
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
        self.shared.source.cancel();
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
        self.shared.source.cancel_with(reason);
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
        self.shared.settings.name.to_string()
    }
}

impl<E: Send + 'static> Scope<E> {
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
    pub fn snapshot(&self) -> super::tree::ScopeSnapshot {
        super::tree::snapshot(&*self.shared).expect("a scope is alive while its body runs")
    }

    /// Names of the tasks still running in this scope and the scopes inside
    /// it.
    pub(crate) fn running_tree(&self) -> Vec<String> {
        super::current::ScopeContext::running_tree(&*self.shared)
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
