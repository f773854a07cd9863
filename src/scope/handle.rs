//! `ScopeHandle`: an owned handle to a live scope, for integrations and for
//! tasks that spawn siblings.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::Arc;

use super::current;
use super::engine::Engine;
use super::error::ScopeClosed;
use super::settings::TaskName;
use super::spawn;
use super::task::TaskHandle;
use super::task_error::TaskError;
use super::tree::{self, ScopeSnapshot};
use crate::cancel::{CancelReason, CancellationToken, Cancelled};

/// The error type of a [`ScopeHandle`] that does not know its scope's
/// error type ([`current_scope`] gives one): it can do everything but
/// spawn. [`ScopeHandle::typed`] names the type.
#[derive(Debug)]
pub enum Untyped {}

/// An owned, clonable handle to a live scope: `Clone + Send + Sync +
/// 'static`, unlike the `&Scope` a body borrows.
///
/// A task can hold one and spawn siblings into its own scope (as Trio passes
/// a nursery around); an integration can hold one and open scopes inside it
/// with [`ScopeBuilder::within`](crate::ScopeBuilder::within). It never
/// keeps the scope open: once the scope has finished,
/// [`try_spawn`](ScopeHandle::try_spawn) returns [`ScopeClosed`].
///
/// Get one from [`Scope::handle`](crate::Scope::handle) (typed by the
/// scope's error type), or from [`current_scope`] (untyped: see
/// [`typed`](ScopeHandle::typed)).
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
///         let follow_up = siblings.spawn(async { Ok::<_, Cancelled>(2) });
///         Ok(1 + follow_up.await?)
///     });
///     crawler.await
/// })
/// .await
/// .unwrap();
/// assert_eq!(found, 3);
/// # }
/// ```
pub struct ScopeHandle<E = Untyped> {
    engine: Arc<Engine>,
    _error: PhantomData<fn() -> E>,
}

impl<E> ScopeHandle<E> {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        ScopeHandle {
            engine,
            _error: PhantomData,
        }
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The scope's token.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     assert_eq!(s.handle().token(), s.token());
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn token(&self) -> CancellationToken {
        self.engine.token()
    }

    /// The scope's deadline (see [`Scope::deadline`](crate::Scope::deadline)).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// taskscope::fail_after(Duration::from_secs(3), async |s| {
    ///     assert_eq!(s.handle().remaining(), Some(Duration::from_secs(3)));
    ///     assert_eq!(s.handle().deadline(), s.deadline());
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.engine.cancel.token_ref().deadline()
    }

    /// How long until the scope's deadline; zero once it has passed, `None`
    /// without one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     assert_eq!(s.handle().remaining(), None);
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn remaining(&self) -> Option<std::time::Duration> {
        self.engine.cancel.token_ref().remaining()
    }

    /// The scope's name: the one it was given, else where it was opened.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::ScopeBuilder::new().name("import").run(async |s| {
    ///     assert_eq!(s.handle().name(), "import");
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn name(&self) -> String {
        self.engine.settings.name.to_string()
    }

    /// Cancels the scope: every task and nested scope sees its token fire.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let handle = s.handle();
    ///     s.spawn(async move {
    ///         handle.cancel(); // a task can stop its own scope
    ///         Ok::<_, taskscope::Cancelled>(())
    ///     });
    ///     s.token().cancelled().await;
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
    ///     s.handle().cancel_with(CancelReason::Shutdown);
    ///     assert_eq!(s.token().reason(), Some(CancelReason::Shutdown));
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn cancel_with(&self, reason: CancelReason) {
        self.engine.cancel.source().cancel_with(reason);
    }

    /// Whether the scope has finished: its body and every task and nested
    /// scope have ended, so nothing more can be spawned into it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let handle = taskscope::scope(async |s| {
    ///     assert!(!s.handle().is_finished());
    ///     Ok::<_, taskscope::Cancelled>(s.handle())
    /// })
    /// .await
    /// .unwrap();
    /// assert!(handle.is_finished());
    /// # }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.engine.join.is_done()
    }

    /// A snapshot of the scope, its running tasks and the scopes inside it;
    /// `None` once it has finished.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::ScopeBuilder::new().name("batch").run(async |s| {
    ///     let snapshot = s.handle().snapshot().unwrap();
    ///     assert_eq!(snapshot.name.as_deref(), Some("batch"));
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn snapshot(&self) -> Option<ScopeSnapshot> {
        tree::snapshot(&self.engine)
    }

    /// Says what the scope is doing, in a few words the task tree shows
    /// after its state (`[draining]`), and [`ScopeSnapshot::status`]
    /// holds; `None` clears it. A service shows its shutdown phase this
    /// way. It changes nothing about how the scope runs.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::ScopeBuilder::new().name("importer").run(async |s| {
    ///     s.handle().set_status(Some("reading batch 3"));
    ///     let snapshot = s.snapshot();
    ///     assert_eq!(snapshot.status.as_deref(), Some("reading batch 3"));
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn set_status(&self, status: Option<&str>) {
        self.engine.registry.set_status(status.map(Arc::from));
    }

    /// The same handle, forgetting the error type.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let any: taskscope::ScopeHandle = s.handle().untyped();
    ///     assert_eq!(any.token(), s.token());
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn untyped(&self) -> ScopeHandle<Untyped> {
        ScopeHandle::new(Arc::clone(&self.engine))
    }

    /// The same handle typed by `F`, if `F` is the scope's error type (a
    /// scope's tasks all share one error type); `None` otherwise.
    ///
    /// ```
    /// use std::io;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |_s| {
    ///     let here = taskscope::current_scope().unwrap();
    ///     assert!(here.typed::<taskscope::Cancelled>().is_none());
    ///     let typed = here.typed::<io::Error>().unwrap();
    ///     typed.try_spawn(async { Ok::<_, io::Error>(()) }).unwrap();
    ///     Ok::<_, io::Error>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn typed<F: 'static>(&self) -> Option<ScopeHandle<F>> {
        self.engine
            .error_type
            .is::<F>()
            .then(|| ScopeHandle::new(Arc::clone(&self.engine)))
    }
}

impl<E> ScopeHandle<E> {
    /// Spawns a task that cannot fail (its output is `()`) into the scope,
    /// whatever the scope's error type: the cleanup an integration owes a
    /// scope, such as a cancel request sent to a server from an `on_cancel`
    /// callback. The scope joins it like any task; a panic in it is resumed
    /// when the scope exits. [`ScopeClosed`] once the scope has finished.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let sent = Arc::new(AtomicBool::new(false));
    /// taskscope::scope(async |_s| {
    ///     let here = taskscope::current_scope().unwrap(); // untyped
    ///     let sent = sent.clone();
    ///     here.try_spawn_infallible(async move { sent.store(true, Ordering::SeqCst) })
    ///         .unwrap();
    ///     Ok::<_, std::io::Error>(())
    /// })
    /// .await
    /// .unwrap();
    /// assert!(sent.load(Ordering::SeqCst)); // the scope joined it
    /// # }
    /// ```
    #[track_caller]
    pub fn try_spawn_infallible<F>(
        &self,
        future: F,
    ) -> Result<TaskHandle<'static, (), Cancelled>, ScopeClosed>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let name = TaskName::at(Location::caller());
        let task = async move {
            future.await;
            Ok::<(), Cancelled>(())
        };
        let spawned = spawn::spawn(&self.engine, name.clone(), task, None)?;
        Ok(TaskHandle::owned(Arc::clone(&self.engine), spawned, name))
    }
}

impl<E: TaskError> ScopeHandle<E> {
    /// Spawns `future` as a task of the scope, or returns [`ScopeClosed`]
    /// if the scope has already finished. The task is like one spawned with
    /// [`Scope::spawn`](crate::Scope::spawn); its handle is owned
    /// (`'static`).
    ///
    /// ```
    /// use taskscope::{Cancelled, ScopeClosed};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let handle = taskscope::scope(async |s| {
    ///     let task = s.handle().try_spawn(async { Ok::<_, Cancelled>(7) }).unwrap();
    ///     assert_eq!(task.await?, 7);
    ///     Ok(s.handle())
    /// })
    /// .await
    /// .unwrap();
    /// assert_eq!(handle.try_spawn(async { Ok(()) }).unwrap_err(), ScopeClosed);
    /// # }
    /// ```
    #[track_caller]
    pub fn try_spawn<F, T>(&self, future: F) -> Result<TaskHandle<'static, T, E>, ScopeClosed>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_as(TaskName::at(Location::caller()), future)
    }

    /// Like [`try_spawn`](ScopeHandle::try_spawn), with a name for errors,
    /// warnings and the task tree.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let task = s.handle().try_spawn_named("refresh", async { Ok::<_, taskscope::Cancelled>(()) });
    ///     assert_eq!(task.unwrap().name(), "refresh");
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    #[track_caller]
    pub fn try_spawn_named<F, T>(
        &self,
        name: impl Into<Arc<str>>,
        future: F,
    ) -> Result<TaskHandle<'static, T, E>, ScopeClosed>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_as(TaskName::named(name.into(), Location::caller()), future)
    }

    /// Like [`try_spawn`](ScopeHandle::try_spawn), for a scope known to be
    /// live.
    ///
    /// # Panics
    ///
    /// If the scope has already finished.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let task = s.handle().spawn(async { Ok::<_, taskscope::Cancelled>(1) });
    ///     assert_eq!(task.await?, 1);
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, future: F) -> TaskHandle<'static, T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        match self.spawn_as(TaskName::at(Location::caller()), future) {
            Ok(task) => task,
            Err(closed) => panic!(
                "spawn into scope `{}`: {closed}; use `try_spawn` to handle this",
                self.name()
            ),
        }
    }

    /// Like [`spawn`](ScopeHandle::spawn), with a name for errors, warnings
    /// and the task tree.
    ///
    /// # Panics
    ///
    /// If the scope has already finished.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let task = s.handle().spawn_named("audit", async { Ok::<_, taskscope::Cancelled>(()) });
    ///     assert_eq!(task.name(), "audit");
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_named<F, T>(
        &self,
        name: impl Into<Arc<str>>,
        future: F,
    ) -> TaskHandle<'static, T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        match self.spawn_as(TaskName::named(name.into(), Location::caller()), future) {
            Ok(task) => task,
            Err(closed) => panic!(
                "spawn into scope `{}`: {closed}; use `try_spawn_named` to handle this",
                self.name()
            ),
        }
    }

    fn spawn_as<F, T>(
        &self,
        name: TaskName,
        future: F,
    ) -> Result<TaskHandle<'static, T, E>, ScopeClosed>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        let spawned = spawn::spawn(&self.engine, name.clone(), future, None)?;
        Ok(TaskHandle::owned(Arc::clone(&self.engine), spawned, name))
    }
}

impl<E> Clone for ScopeHandle<E> {
    fn clone(&self) -> Self {
        ScopeHandle::new(Arc::clone(&self.engine))
    }
}

impl<E> fmt::Debug for ScopeHandle<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeHandle")
            .field("name", &self.name())
            .field("error_type", &self.engine.error_type.name())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// A handle to the scope the caller runs in (its body or one of its
/// tasks), or `None` outside any scope. It is untyped: name the scope's
/// error type with [`typed`](ScopeHandle::typed) to spawn through it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert!(taskscope::current_scope().is_none());
/// taskscope::ScopeBuilder::new().name("outer").run(async |s| {
///     assert_eq!(taskscope::current_scope().unwrap().name(), "outer");
///     let task = s.spawn(async {
///         Ok::<_, taskscope::Cancelled>(taskscope::current_scope().unwrap().name())
///     });
///     assert_eq!(task.await?, "outer"); // a task's scope is the one it was spawned in
///     Ok::<_, taskscope::Cancelled>(())
/// })
/// .await
/// .unwrap();
/// # }
/// ```
pub fn current_scope() -> Option<ScopeHandle> {
    current::with(|ambient| ambient.map(|a| ScopeHandle::new(Arc::clone(&a.engine))))
}
