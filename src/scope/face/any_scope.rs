//! `AnyScope`: a live scope whatever its error type; what every handle to a
//! scope dereferences to, so its methods are written once.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

use crate::cancel::{CancelReason, CancellationToken, Cancelled};
use crate::scope::engine::settings::TaskName;
use crate::scope::engine::Engine;
use crate::scope::face::scope_error::ScopeClosed;
use crate::scope::face::scope_handle::ScopeHandle;
use crate::scope::face::task_handle::TaskHandle;
use crate::scope::run::current;
use crate::scope::run::spawn;
use crate::scope::run::tree::{self, ScopeSnapshot};

/// A live scope, whatever its tasks' error type: `Clone + Send + Sync +
/// 'static`. [`current_scope`] gives one; a [`ScopeHandle`] (and so a body's
/// [`Scope`](crate::Scope)) dereferences to one, so everything here is on
/// those too.
///
/// It observes and steers the scope (its token, deadline, name, snapshot;
/// cancelling it), and it is what [`ScopeBuilder::within`](crate::ScopeBuilder::within)
/// opens a scope inside. It spawns only tasks that cannot fail; name the
/// error type with [`typed`](AnyScope::typed) for the rest. It never keeps
/// the scope open.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// taskscope::ScopeBuilder::new().name("import").run(async |_s| {
///     let here = taskscope::current_scope().unwrap();
///     assert_eq!(here.name(), "import");
///     assert!(here.typed::<std::io::Error>().is_some()); // the scope's error type
///     Ok::<_, std::io::Error>(())
/// })
/// .await
/// .unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct AnyScope {
    engine: Arc<Engine>,
}

impl AnyScope {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        AnyScope { engine }
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Whether a report about this scope (a failure, a warning) should also
    /// go to stderr: this scope or one above asked for it
    /// ([`ScopeBuilder::stderr_reports`](crate::ScopeBuilder::stderr_reports);
    /// `#[taskscope::main]` does), and no `tracing` subscriber is installed.
    /// The library's own reports follow it; code of yours can too.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     assert!(!s.reports_to_stderr()); // nobody asked
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn reports_to_stderr(&self) -> bool {
        self.engine.reports_to_stderr()
    }

    /// The scope's token: cancelled when the scope is (by
    /// [`cancel`](AnyScope::cancel), a failure, its deadline, being
    /// dropped, or its parent).
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

    /// How long until the scope's deadline; zero once it has passed, `None`
    /// without one.
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

    /// The scope's name: the one it was given, else where it was opened.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::ScopeBuilder::new().name("import").run(async |s| {
    ///     assert_eq!(s.name(), "import");
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
    ///     s.cancel_with(CancelReason::Shutdown);
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
    ///     assert!(!s.is_finished());
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

    /// The scope-local values this scope sees whose keys travel to the next
    /// service ([`ScopeLocal::across_processes`](crate::ScopeLocal::across_processes)),
    /// encoded, with their keys' names: what the client layers send as
    /// `baggage`. A client of your own sends the same.
    ///
    /// ```
    /// use taskscope::{ScopeBuilder, ScopeLocal};
    ///
    /// static TENANT: ScopeLocal<String> =
    ///     ScopeLocal::new("tenant").across_processes(|t| t.clone(), |s| Some(s.to_owned()));
    /// static SECRET: ScopeLocal<String> = ScopeLocal::new("secret"); // stays here
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// ScopeBuilder::new()
    ///     .bind(&TENANT, "acme".to_owned())
    ///     .bind(&SECRET, "hunter2".to_owned())
    ///     .run(async |s| {
    ///         assert_eq!(s.outgoing_values(), [("tenant", "acme".to_owned())]);
    ///         Ok::<_, taskscope::Cancelled>(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub fn outgoing_values(&self) -> Vec<(&'static str, String)> {
        self.engine
            .locals()
            .map_or_else(Vec::new, |locals| locals.to_wire().collect())
    }

    /// A snapshot of the scope, its running tasks and the scopes inside it;
    /// `None` once it has finished.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::ScopeBuilder::new().name("batch").run(async |s| {
    ///     let snapshot = s.snapshot().unwrap();
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
    ///     s.set_status(Some("reading batch 3"));
    ///     let snapshot = s.snapshot().unwrap();
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

    /// How long a shutdown of this scope may take: the
    /// [`shutdown_grace`](crate::ScopeBuilder::shutdown_grace) of this scope
    /// or the nearest one above that set one (under `#[taskscope::main]`,
    /// its `shutdown_grace`); `None` if none did.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     assert_eq!(s.shutdown_grace(), None); // nobody set one
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn shutdown_grace(&self) -> Option<std::time::Duration> {
        self.engine.shutdown_grace()
    }

    /// A handle typed by `F`, if `F` is the scope's error type (a scope's
    /// tasks all share one error type); `None` otherwise.
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
    ///     typed.spawn(async { Ok::<_, io::Error>(()) }).unwrap();
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

impl AnyScope {
    /// Spawns a task that cannot fail (its output is `()`) into the scope,
    /// whatever the scope's error type, or returns [`ScopeClosed`]: the
    /// cleanup an integration owes a scope it did not open, such as a cancel
    /// request sent to a server from an `on_cancel` callback. The scope joins
    /// it like any task; a panic in it is resumed when the scope exits. Name
    /// the error type with [`typed`](AnyScope::typed) for every other task
    /// (a typed [`ScopeHandle`]'s own `spawn` takes its place there).
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
    ///     here.spawn(async move { sent.store(true, Ordering::SeqCst) }).unwrap();
    ///     Ok::<_, std::io::Error>(())
    /// })
    /// .await
    /// .unwrap();
    /// assert!(sent.load(Ordering::SeqCst)); // the scope joined it
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> Result<TaskHandle<'static, (), Cancelled>, ScopeClosed>
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

impl fmt::Debug for AnyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyScope")
            .field("name", &self.name())
            .field("error_type", &self.engine.error_type.name())
            .field("finished", &self.is_finished())
            .field("binds", &BoundNames(&self.engine))
            .finish()
    }
}

/// The names of the scope-local keys a scope binds, for `Debug`.
struct BoundNames<'a>(&'a Engine);

impl fmt::Debug for BoundNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.0.locals().into_iter().flat_map(|l| l.bound_here());
        f.debug_list().entries(names).finish()
    }
}

/// The scope the caller runs in (its body or one of its tasks), or `None`
/// outside any scope. Name the scope's error type with
/// [`typed`](AnyScope::typed) to spawn fallible tasks through it.
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
pub fn current_scope() -> Option<AnyScope> {
    current::with(|ambient| ambient.map(|a| AnyScope::new(Arc::clone(&a.engine))))
}
