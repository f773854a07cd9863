//! `Scope<E>`: the face a scope's body spawns with. It is the scope's
//! [`ScopeHandle`] (it dereferences to one), plus what only the body can do:
//! spawn without the possibility that the scope has already finished.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::cancel::CancellationToken;
use crate::scope::engine::cleanups::ScopeEnd;
use crate::scope::engine::Engine;
use crate::scope::face::scope_handle::ScopeHandle;
use crate::scope::face::start::{Ready, StartError};
use crate::scope::face::task_builder::TaskBuilder;
use crate::scope::face::task_handle::TaskHandle;
use crate::scope::task_error::TaskError;

/// A node of the task tree, as its body sees it: spawns tasks that it
/// cancels and joins before it finishes. A body gets `&Scope` from
/// [`scope`](crate::scope()), [`scope!`](crate::scope!) or a
/// [`ScopeBuilder`](crate::ScopeBuilder); the reference cannot leave the
/// body, and while the body runs the scope is open, so its spawns cannot
/// fail.
///
/// `Scope` dereferences to the scope's [`ScopeHandle`] and through it to
/// [`AnyScope`](crate::AnyScope), which have everything else: [`token`](crate::AnyScope::token),
/// [`cancel`](crate::AnyScope::cancel), [`deadline`](crate::AnyScope::deadline),
/// [`name`](crate::AnyScope::name), [`snapshot`](crate::AnyScope::snapshot)… Take
/// an owned handle with [`handle`](Scope::handle) to spawn from where the
/// borrow cannot reach (a task spawning siblings, a callback).
///
/// Every task of a scope has `E` as its error type: a task's `Err` fails the
/// scope (under the default [`Policy::FailFast`](crate::Policy)). `E` is a
/// [`TaskError`]: it converts from [`Cancelled`](crate::Cancelled), so that
/// a task that never finished can still be reported through its handle, and
/// it can say whether an error is a cancellation, so that a real failure is
/// never taken for one.
///
/// Tasks are `'static`, as with `tokio::spawn`: move what they use into
/// them (`async move`). Without `move`, rustc reports that a borrowed value
/// "does not live long enough" (E0597) and underlines the whole scope.
///
/// | a task that runs | verb |
/// |---|---|
/// | on the runtime's workers | [`spawn`](Scope::spawn) |
/// | a blocking closure, on the blocking pool | [`spawn_blocking`](Scope::spawn_blocking) |
/// | a `!Send` future, on the current `LocalSet` | [`spawn_local`](Scope::spawn_local) |
/// | until it says it is ready, then on | [`start`](Scope::start) |
///
/// Each verb is also on [`task()`](Scope::task), which adds a name and
/// waiting for a free slot under the scope's limit.
///
/// # Examples
///
/// Three calls run concurrently; the first failure cancels the other two.
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
    handle: ScopeHandle<E>,
}

impl<E> Scope<E> {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        Scope {
            handle: ScopeHandle::new(engine),
        }
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        self.handle.engine()
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
    ///         let sibling = handle.spawn(async { Ok::<_, taskscope::Cancelled>(2) })?;
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
        self.handle.clone()
    }
}

impl<E> Deref for Scope<E> {
    type Target = ScopeHandle<E>;

    fn deref(&self) -> &ScopeHandle<E> {
        &self.handle
    }
}

impl<E: TaskError> Scope<E> {
    /// Options for one task (a name, waiting for a free slot), then one of
    /// the verbs: see [`TaskBuilder`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     for shard in 0..3 {
    ///         // A name per task: an error says which shard failed.
    ///         s.task().name(format!("shard {shard}")).spawn(async move {
    ///             Ok::<_, std::io::Error>(shard)
    ///         });
    ///     }
    ///     Ok(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    #[track_caller]
    pub fn task(&self) -> TaskBuilder<'_, Scope<E>> {
        TaskBuilder::new(self)
    }

    /// Spawns `future` as a tokio task of this scope and returns its handle.
    /// The task is named after where it was spawned.
    ///
    /// The scope will not finish before the task has. Inside the task,
    /// [`taskscope::token()`](crate::token) is the task's own token (a
    /// child of the scope's) and scopes opened there belong to this one.
    /// Under a [concurrency limit](crate::ScopeBuilder::limit) the task
    /// waits for a free slot before it starts; `s.task().wait_for_slot()`
    /// makes the spawner wait instead.
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
        self.task().spawn(future)
    }

    /// Runs a blocking closure on tokio's blocking pool as a task of this
    /// scope; it receives the task's token and should call
    /// [`check`](CancellationToken::check) as it goes. Unlike async tasks
    /// it cannot be aborted once started.
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
        self.task().spawn_blocking(f)
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
        self.task().spawn_local(future)
    }

    /// Spawns a task and waits until it says it is ready, returning the
    /// value it gives [`Ready::send`]: a server
    /// binds its listener, sends the address, then serves. If the task fails
    /// before it is ready, its error is returned here
    /// ([`StartError::Failed`]) instead of failing the scope; if the future
    /// returned by `start` is dropped first, the task is cancelled. After
    /// `send` the task runs on as an ordinary task of the scope.
    ///
    /// ```
    /// use taskscope::Ready;
    /// use tokio::net::TcpListener;
    ///
    /// async fn serve(ready: Ready<std::net::SocketAddr>) -> std::io::Result<()> {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     ready.send(listener.local_addr()?);
    ///     let token = taskscope::token();
    ///     while let Ok(accepted) = token.run_until_cancelled(listener.accept()).await {
    ///         drop(accepted?); // answer the connection
    ///     }
    ///     Ok(())
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::ScopeBuilder::new()
    ///     .cancel_on_exit(true)
    ///     .run(async |s| {
    ///         let addr = s.task().name("listener").start(serve).await.map_err(|e| e.into_error())?;
    ///         tokio::net::TcpStream::connect(addr).await?; // it is listening
    ///         Ok::<_, std::io::Error>(())
    ///     })
    ///     .await
    ///     .unwrap();
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

    /// Registers an async cleanup step that runs exactly once when the
    /// scope ends, however it ends, after its tasks have stopped, shielded
    /// and bounded by `timeout`; see [`ScopeHandle::defer`]. From the body
    /// the scope is open, so this cannot fail.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::{ScopeBuilder, ScopeEnd};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let result = ScopeBuilder::new()
    ///     .run(async |s| {
    ///         s.defer(Duration::from_secs(1), |end| async move {
    ///             assert_eq!(end, ScopeEnd::Failed); // the body failed
    ///             Ok(())
    ///         });
    ///         Err::<(), _>(std::io::Error::other("disk full"))
    ///     })
    ///     .await;
    /// assert_eq!(result.unwrap_err().first().unwrap().to_string(), "disk full");
    /// # }
    /// ```
    #[track_caller]
    pub fn defer<F, Fut>(&self, timeout: Duration, cleanup: F)
    where
        F: FnOnce(ScopeEnd) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        ScopeHandle::defer(self, timeout, cleanup).expect("a scope is open while its body runs");
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
