//! Opening a scope: the options, the entry functions, and the one `open`
//! every entry goes through.

use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::cancel::{CancelReason, CancellationSource, CancellationToken};
use crate::scope::engine::locals::{Binding, Inherited, Locals};
use crate::scope::engine::settings::{Policy, Settings, TaskName};
use crate::scope::engine::{Engine, ErrorType};
use crate::scope::face::any_scope::AnyScope;
use crate::scope::face::race::{self, RaceError, Racer};
use crate::scope::face::scope::Scope;
use crate::scope::face::scope_error::{ScopeClosed, ScopeError};
use crate::scope::face::scope_handle::ScopeHandle;
use crate::scope::face::scope_local::ScopeLocal;
use crate::scope::run::current;
use crate::scope::run::lifecycle::{Drive, Opened};
use crate::scope::task_error::TaskError;

/// How long a cancelled scope waits before it warns about tasks still
/// running, unless [`ScopeBuilder::warn_after`] says otherwise.
pub(crate) const DEFAULT_WARN_AFTER: Duration = Duration::from_secs(10);

/// What bounds a scope: at most one of a timeout, a deadline or a shield's
/// timeout, which the builder's type keeps from being set twice.
#[derive(Clone, Copy)]
enum Bound {
    None,
    Timeout(Duration),
    Deadline(Instant),
}

/// Implemented for a builder whose bound is not chosen yet (its type
/// parameter turns `true` once `timeout`, `deadline` or `shielded` was
/// called); the bounding methods require it, so a second bound does not
/// compile and the error says why. Not nameable outside the crate.
#[diagnostic::on_unimplemented(
    message = "this scope already has a bound: `timeout`, `deadline` and `shielded` each bound a scope, so keep one",
    label = "the bound was set before this call",
    note = "a bound known only at run time is one call: `.timeout(maybe.unwrap_or(Duration::MAX))`"
)]
pub trait Unbounded {}

impl Unbounded for ScopeBuilder<false> {}

/// Options for a scope, then [`run`](ScopeBuilder::run) to open it.
///
/// ```
/// use std::time::Duration;
/// use taskscope::{Policy, ScopeBuilder};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let value = ScopeBuilder::new()
///     .name("nightly import")
///     .policy(Policy::Supervise)
///     .limit(8)
///     .grace_period(Duration::from_secs(5))
///     .timeout(Duration::from_secs(60))
///     .run(async |s| {
///         s.spawn(async { Ok::<_, std::io::Error>(()) });
///         Ok(42)
///     })
///     .await
///     .unwrap();
/// assert_eq!(value, 42);
/// # }
/// ```
#[derive(Clone)]
#[must_use = "a ScopeBuilder does nothing until `run`"]
pub struct ScopeBuilder<const BOUNDED: bool = false> {
    name: TaskName,
    /// The scope given to `within`, else the ambient one.
    owner: Option<Arc<Engine>>,
    /// The reason the scope is cancelled with if its future is dropped.
    dropped: Option<CancelReason>,
    /// The other options, allocated once one is set: a scope's future
    /// carries the builder until it opens, so the common case of no options
    /// keeps every scope's future small. (The two above are inline: a
    /// server sets them on every request.)
    options: Option<Box<Options>>,
}

#[derive(Clone)]
struct Options {
    policy: Policy,
    limit: Option<usize>,
    grace: Option<Duration>,
    warn_after: Duration,
    bound: Bound,
    /// Not linked to the owner's token (a shield).
    shielded: bool,
    /// Linked to this token instead of the owner's.
    parent: Option<CancellationToken>,
    cancel_on_exit: bool,
    shutdown_grace: Option<Duration>,
    stderr_reports: bool,
    binds: Vec<Binding>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policy: Policy::FailFast,
            limit: None,
            grace: None,
            warn_after: DEFAULT_WARN_AFTER,
            bound: Bound::None,
            shielded: false,
            parent: None,
            cancel_on_exit: false,
            shutdown_grace: None,
            stderr_reports: false,
            binds: Vec::new(),
        }
    }
}

impl<const BOUNDED: bool> std::fmt::Debug for ScopeBuilder<BOUNDED> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options = self.options.as_deref();
        let bound = options.map_or(Bound::None, |o| o.bound);
        f.debug_struct("ScopeBuilder")
            .field("name", &self.name.to_string())
            .field("policy", &options.map(|o| o.policy))
            .field("limit", &options.and_then(|o| o.limit))
            .field(
                "timeout",
                &match bound {
                    Bound::Timeout(timeout) => Some(timeout),
                    _ => None,
                },
            )
            .field(
                "deadline",
                &match bound {
                    Bound::Deadline(deadline) => Some(deadline),
                    _ => None,
                },
            )
            .field("shielded", &options.is_some_and(|o| o.shielded))
            .finish_non_exhaustive()
    }
}

impl Default for ScopeBuilder {
    #[track_caller]
    fn default() -> Self {
        ScopeBuilder::new()
    }
}

impl ScopeBuilder {
    /// Default options: fail-fast, no limit, no grace period (wait),
    /// no deadline, linked to the enclosing scope, named after the caller's
    /// location.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let out = taskscope::ScopeBuilder::new().run(async |_s| Ok::<_, taskscope::Cancelled>(1)).await;
    /// assert_eq!(out.unwrap(), 1);
    /// # }
    /// ```
    #[track_caller]
    pub fn new() -> Self {
        ScopeBuilder {
            name: TaskName::at(Location::caller()),
            owner: None,
            dropped: None,
            options: None,
        }
    }
}

impl<const BOUNDED: bool> ScopeBuilder<BOUNDED> {
    /// Names the scope (for errors, warnings and the task tree).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::ScopeBuilder::new()
    ///     .name("request 7")
    ///     .run(async |s| { assert_eq!(s.name(), "request 7"); Ok::<_, taskscope::Cancelled>(()) })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = self.name.renamed(name.into());
        self
    }

    /// What a task's failure does; see [`Policy`].
    ///
    /// ```
    /// use taskscope::{Policy, ScopeBuilder, ScopeError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let result = ScopeBuilder::new()
    ///     .policy(Policy::Supervise)
    ///     .run(async |s| {
    ///         s.spawn(async { Err::<(), _>(std::io::Error::other("one failed")) });
    ///         let other = s.spawn(async { Ok(5) });
    ///         assert_eq!(other.await?, 5); // not cancelled by the failure
    ///         Ok(())
    ///     })
    ///     .await;
    /// assert!(matches!(result, Err(ScopeError::Failed { .. })));
    /// # }
    /// ```
    pub fn policy(mut self, policy: Policy) -> Self {
        self.options().policy = policy;
        self
    }

    /// At most `limit` tasks run at once; the others wait for a slot
    /// (`s.task().wait_for_slot()` makes the spawner wait instead: see
    /// [`TaskBuilder::wait_for_slot`](crate::TaskBuilder::wait_for_slot)).
    ///
    /// # Panics
    ///
    /// If `limit` is zero: no task could ever run.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::ScopeBuilder::new()
    ///     .limit(4)
    ///     .run(async |s| {
    ///         for i in 0..100 {
    ///             s.spawn(async move { Ok::<_, taskscope::Cancelled>(i) });
    ///         }
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub fn limit(mut self, limit: usize) -> Self {
        assert!(limit > 0, "a scope's concurrency limit must be at least 1");
        self.options().limit = Some(limit);
        self
    }

    /// After the scope is cancelled, tasks still running when `grace` has
    /// passed are aborted (dropped at their next await) and reported as
    /// aborted. Without it (the default) the scope waits for them.
    /// `Duration::ZERO` aborts at once; `Duration::MAX` never does.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let result = taskscope::ScopeBuilder::new()
    ///     .grace_period(Duration::from_secs(1))
    ///     .run(async |s| {
    ///         let stubborn = s.spawn(async {
    ///             std::future::pending::<()>().await; // ignores cancellation
    ///             Ok::<_, taskscope::Cancelled>(())
    ///         });
    ///         s.cancel();
    ///         stubborn.await // Err: aborted after the grace period
    ///     })
    ///     .await;
    /// assert!(result.is_err());
    /// # }
    /// ```
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.options().grace = Some(grace);
        self
    }

    /// How long a cancelled scope waits before it logs one `tracing`
    /// warning naming the tasks still running (default 10 s).
    /// `Duration::MAX` never warns.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = taskscope::ScopeBuilder::new().warn_after(Duration::from_secs(2));
    /// # let _ = builder;
    /// ```
    pub fn warn_after(mut self, after: Duration) -> Self {
        self.options().warn_after = after;
        self
    }

    /// Cancels the scope `timeout` after it opens, with reason
    /// [`CancelReason::Timeout`]. With [`run`](ScopeBuilder::run) a scope
    /// ended by it fails with [`ScopeError::TimedOut`];
    /// [`run_or_move_on`](ScopeBuilder::run_or_move_on) gives `Ok(None)`
    /// instead. `Duration::ZERO` cancels the scope
    /// as it opens; `Duration::MAX` (or any delay past what the clock holds)
    /// never fires, so `timeout(maybe.unwrap_or(Duration::MAX))` is a bound
    /// known only at run time.
    ///
    /// A scope has one bound: a timeout, a [`deadline`](ScopeBuilder::deadline)
    /// or a [`shielded`](ScopeBuilder::shielded) scope's timeout. Once one is
    /// set the others are not there to call (the builder's type says so), so
    /// a conflicting pair does not compile.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let result = taskscope::ScopeBuilder::new()
    ///     .timeout(Duration::from_secs(1))
    ///     .run(async |s| {
    ///         s.token().run_until_cancelled(tokio::time::sleep(Duration::from_secs(5))).await?;
    ///         Ok::<_, taskscope::Cancelled>(())
    ///     })
    ///     .await;
    /// assert!(result.unwrap_err().is_timeout());
    /// # }
    /// ```
    ///
    /// ```compile_fail
    /// # use std::time::Duration;
    /// let both = taskscope::ScopeBuilder::new()
    ///     .timeout(Duration::from_secs(1))
    ///     .deadline(tokio::time::Instant::now()); // this scope already has a bound
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> ScopeBuilder<true>
    where
        Self: Unbounded,
    {
        self.options().bound = Bound::Timeout(timeout);
        self.bounded()
    }

    /// Like [`timeout`](ScopeBuilder::timeout), at a point in time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let result = taskscope::ScopeBuilder::new()
    ///     .deadline(Instant::now() + Duration::from_secs(1))
    ///     .run_or_move_on(async |s| {
    ///         s.token().cancelled().await;
    ///         Err::<(), _>(taskscope::Cancelled::new(s.token().reason().unwrap()))
    ///     })
    ///     .await;
    /// assert!(matches!(result, Ok(None)));
    /// # }
    /// ```
    pub fn deadline(mut self, deadline: Instant) -> ScopeBuilder<true>
    where
        Self: Unbounded,
    {
        self.options().bound = Bound::Deadline(deadline);
        self.bounded()
    }

    /// Links the scope's token to `parent` instead of the enclosing
    /// scope's (explicit token passing). The enclosing scope, if any, still
    /// joins it. A [`shielded`](ScopeBuilder::shielded) scope with a parent
    /// is cancelled by that token, and by nothing above it.
    ///
    /// ```
    /// use taskscope::CancellationSource;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let request = CancellationSource::new();
    /// request.cancel();
    /// taskscope::ScopeBuilder::new()
    ///     .parent(&request.token())
    ///     .run(async |s| {
    ///         assert!(s.token().is_cancelled());
    ///         Ok::<_, taskscope::Cancelled>(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub fn parent(mut self, parent: &CancellationToken) -> Self {
        self.options().parent = Some(parent.clone());
        self
    }

    /// Shields the scope: its token is *not* linked to the enclosing
    /// scope's, so it runs cleanup that must happen even though the parent
    /// is cancelled. It must be
    /// bounded, so it takes its own `timeout`, which is the scope's bound.
    /// The enclosing scope still joins it. Only a [`parent`](ScopeBuilder::parent)
    /// token, if one is given, still cancels it.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     s.cancel();
    ///     let flushed = taskscope::ScopeBuilder::new()
    ///         .shielded(Duration::from_secs(5))
    ///         .run(async |cleanup| {
    ///             assert!(!cleanup.token().is_cancelled());
    ///             Ok::<_, taskscope::Cancelled>("flushed")
    ///         })
    ///         .await
    ///         .unwrap();
    ///     assert_eq!(flushed, "flushed");
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn shielded(mut self, timeout: Duration) -> ScopeBuilder<true>
    where
        Self: Unbounded,
    {
        let options = self.options();
        options.shielded = true;
        options.bound = Bound::Timeout(timeout);
        self.bounded()
    }

    /// The same builder, with its bound chosen.
    fn bounded(self) -> ScopeBuilder<true> {
        ScopeBuilder {
            name: self.name,
            owner: self.owner,
            dropped: self.dropped,
            options: self.options,
        }
    }

    /// How long a shutdown of this scope may take, for what runs inside it
    /// to budget its own stopping against: a
    /// [`Services`](crate::service::Services) set warns when its services'
    /// stopping budgets add up to more. Scopes inside inherit it (see
    /// [`AnyScope::shutdown_grace`]). `#[taskscope::main]` sets its
    /// `shutdown_grace` on its root scope this way. It changes nothing about
    /// how this scope itself stops; [`grace_period`](ScopeBuilder::grace_period)
    /// does that.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::ScopeBuilder::new()
    ///     .shutdown_grace(Duration::from_secs(10))
    ///     .run(async |_root| {
    ///         taskscope::scope(async |inner| {
    ///             assert_eq!(inner.shutdown_grace(), Some(Duration::from_secs(10)));
    ///             Ok::<_, taskscope::Cancelled>(())
    ///         })
    ///         .await
    ///         .map_err(taskscope::ScopeError::into_error)
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.options().shutdown_grace = Some(grace);
        self
    }

    /// Failures and laggard warnings in this scope and the scopes inside it
    /// also go to stderr, one line each, while no `tracing` subscriber is
    /// installed (see [`AnyScope::reports_to_stderr`]). `#[taskscope::main]`
    /// asks this of its root scope, so that a program that never set up
    /// logging still sees them; installing a subscriber turns the lines off
    /// (the same reports then arrive as `tracing` events).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::ScopeBuilder::new()
    ///     .stderr_reports()
    ///     .run(async |s| {
    ///         assert!(s.reports_to_stderr()); // no subscriber in this test
    ///         Ok::<_, taskscope::Cancelled>(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub fn stderr_reports(mut self) -> Self {
        self.options().stderr_reports = true;
        self
    }

    /// Binds `value` to the scope-local `key` for this scope and what runs
    /// below it (as far as the key's rule says; see [`ScopeLocal`]). Binding
    /// a key again, here or in a nested scope, replaces the value for that
    /// scope and below.
    ///
    /// ```
    /// use taskscope::{ScopeBuilder, ScopeLocal};
    ///
    /// static TENANT: ScopeLocal<&'static str> = ScopeLocal::new("tenant");
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let seen = ScopeBuilder::new()
    ///     .bind(&TENANT, "acme")
    ///     .run(async |s| {
    ///         let task = s.spawn_blocking(|_token| Ok::<_, taskscope::Cancelled>(TENANT.get()));
    ///         task.await
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(seen, Some("acme")); // read on the blocking thread
    /// # }
    /// ```
    pub fn bind<T: Send + Sync + 'static>(mut self, key: &'static ScopeLocal<T>, value: T) -> Self {
        self.options().binds.push(key.binding(value));
        self
    }

    /// Opens the scope inside `scope` instead of the enclosing one: `scope`
    /// joins it (does not finish before it has), and its token is linked to
    /// `scope`'s unless [`parent`](ScopeBuilder::parent) or
    /// [`shielded`](ScopeBuilder::shielded) says otherwise. This is how code
    /// that runs outside any scope (a server's connection tasks, a callback)
    /// opens work that a live scope owns. If `scope` has already finished,
    /// [`try_start`](ScopeBuilder::try_start) returns [`ScopeClosed`] and
    /// [`run`](ScopeBuilder::run) panics.
    ///
    /// ```
    /// use taskscope::{Cancelled, ScopeBuilder};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::ScopeBuilder::new().name("server").run(async |server| {
    ///     let owner = server.handle();
    ///     // Somewhere outside the server's scope, e.g. a connection task:
    ///     let request = tokio::spawn(async move {
    ///         ScopeBuilder::new()
    ///             .within(&owner)
    ///             .run(async |request| {
    ///                 assert!(taskscope::current_scope().is_some());
    ///                 Ok::<_, Cancelled>(request.name())
    ///             })
    ///             .await
    ///     });
    ///     assert!(request.await.unwrap().is_ok());
    ///     Ok::<_, Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn within(mut self, scope: &AnyScope) -> Self {
        self.owner = Some(Arc::clone(scope.engine()));
        self
    }

    /// When the body returns a value, cancels the tasks still running
    /// (reason: a message saying the body returned) and then joins them,
    /// instead of waiting for them to finish on their own (the default, as
    /// in `std::thread::scope`). For helpers that live as
    /// long as the body: a heartbeat, a progress reporter, a prefetcher. A
    /// body that fails cancels its tasks either way. How the cancelled tasks
    /// stopped is absorbed; a real failure is still reported.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::{Cancelled, ScopeBuilder};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let answer = ScopeBuilder::new()
    ///     .cancel_on_exit(true)
    ///     .run(async |s| {
    ///         s.spawn(async {
    ///             let token = taskscope::token();
    ///             loop {
    ///                 // a heartbeat, every second, until the body is done
    ///                 token.run_until_cancelled(tokio::time::sleep(Duration::from_secs(1))).await?;
    ///             }
    ///             #[allow(unreachable_code)]
    ///             Ok::<_, Cancelled>(())
    ///         });
    ///         tokio::time::sleep(Duration::from_secs(3)).await; // the real work
    ///         Ok(42)
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(answer, 42);
    /// # }
    /// ```
    pub fn cancel_on_exit(mut self, cancel: bool) -> Self {
        self.options().cancel_on_exit = cancel;
        self
    }

    /// The reason the scope is cancelled with if its future is dropped
    /// before it finished (by default a message saying so). A server's
    /// request scope says [`CancelReason::ClientDisconnected`].
    ///
    /// ```
    /// use taskscope::{CancelReason, ScopeBuilder};
    /// use tokio::sync::oneshot;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (tx, rx) = oneshot::channel();
    /// let request = ScopeBuilder::new()
    ///     .when_dropped(CancelReason::ClientDisconnected)
    ///     .run(async |s| {
    ///         let _log = s.token().on_cancel(move |reason| tx.send(reason.clone()).unwrap());
    ///         std::future::pending::<Result<(), taskscope::Cancelled>>().await
    ///     });
    /// let _ = tokio::time::timeout(std::time::Duration::from_millis(1), request).await;
    /// assert_eq!(rx.await.unwrap(), CancelReason::ClientDisconnected);
    /// # }
    /// ```
    pub fn when_dropped(mut self, reason: CancelReason) -> Self {
        self.dropped = Some(reason);
        self
    }

    /// Opens the scope, runs `body` in the caller's task (it may borrow
    /// from the caller), then cancels nothing and waits: the scope finishes
    /// when the body and every task and nested scope have finished.
    ///
    /// Returns the body's value, or why the scope failed:
    /// [`ScopeError::Failed`] with the first real failure and every later
    /// error it owns, or [`ScopeError::TimedOut`] if its own deadline ended
    /// it. A panic in the body or a task cancels the scope and is resumed
    /// here once everyone has been joined.
    ///
    /// The scope opens when the returned future is first polled. Dropping
    /// the future before it completes cancels the scope at once; its tasks
    /// are not detached: the enclosing scope (if any) waits for them, and
    /// after the grace period (if set) they are aborted.
    ///
    /// # Panics
    ///
    /// If the scope given to [`within`](ScopeBuilder::within) has already
    /// finished ([`try_start`](ScopeBuilder::try_start) returns an error
    /// instead).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let names = ["a", "b", "c"];
    /// let total = taskscope::ScopeBuilder::new()
    ///     .run(async |s| {
    ///         let tasks: Vec<_> = names
    ///             .iter()
    ///             .map(|n| {
    ///                 let n = n.to_string();
    ///                 s.spawn(async move { Ok::<_, taskscope::Cancelled>(n.len()) })
    ///             })
    ///             .collect();
    ///         let mut total = 0;
    ///         for task in tasks {
    ///             total += task.await?;
    ///         }
    ///         Ok(total)
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(total, 3);
    /// # }
    /// ```
    pub async fn run<T, E, F>(self, body: F) -> Result<T, ScopeError<E>>
    where
        F: AsyncFnOnce(&Scope<E>) -> Result<T, E>,
        E: TaskError,
    {
        let mut builder = self;
        let opened = match builder.open::<E>() {
            Ok(opened) => opened,
            Err(closed) => closed_owner(closed),
        };
        let scope = Scope::new(opened.start());
        Drive::new(scope.engine(), body(&scope)).await
    }

    /// Opens the scope now, and returns the future that runs `body` in it;
    /// [`ScopeClosed`] if the scope it would open in (given to
    /// [`within`](ScopeBuilder::within)) has already finished. The body owns
    /// a [`ScopeHandle`] instead of borrowing a `&Scope`, so its future is an
    /// ordinary `'static` future: what a framework integration (a tower
    /// service, say) needs to store and box it. Otherwise like
    /// [`run`](ScopeBuilder::run); dropping the future unpolled cancels the
    /// scope, as dropping it later would.
    ///
    /// ```
    /// use taskscope::{Cancelled, ScopeBuilder};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let request = ScopeBuilder::new()
    ///     .name("GET /")
    ///     .try_start(|scope| async move {
    ///         let task = scope.spawn(async { Ok::<_, Cancelled>(200) })?;
    ///         task.await
    ///     })
    ///     .unwrap();
    /// let boxed: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>> = Box::pin(request);
    /// assert_eq!(boxed.await.unwrap(), 200);
    /// # }
    /// ```
    pub fn try_start<T, E, F, Fut>(
        self,
        body: F,
    ) -> Result<impl Future<Output = Result<T, ScopeError<E>>>, ScopeClosed>
    where
        F: FnOnce(ScopeHandle<E>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: TaskError,
    {
        let mut builder = self;
        let opened = builder.open::<E>()?;
        Ok(async move {
            let engine = opened.start();
            Drive::new(&engine, body(ScopeHandle::new(Arc::clone(&engine)))).await
        })
    }

    /// Like [`run`](ScopeBuilder::run), but a scope ended by its own
    /// deadline gives `Ok(None)` and the caller carries on.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let quick = taskscope::ScopeBuilder::new()
    ///     .timeout(Duration::from_secs(1))
    ///     .run_or_move_on(async |_s| Ok::<_, taskscope::Cancelled>("done"))
    ///     .await;
    /// assert_eq!(quick.unwrap(), Some("done"));
    /// # }
    /// ```
    pub async fn run_or_move_on<T, E, F>(self, body: F) -> Result<Option<T>, ScopeError<E>>
    where
        F: AsyncFnOnce(&Scope<E>) -> Result<T, E>,
        E: TaskError,
    {
        match self.run(body).await {
            Ok(value) => Ok(Some(value)),
            Err(ScopeError::TimedOut { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    fn options(&mut self) -> &mut Options {
        self.options.get_or_insert_with(Box::default)
    }

    /// Opens the scope: links its token, counts it in its owner and
    /// registers it in the tree. `Err` if the owner has already finished.
    /// Not inlined: its locals would otherwise sit in every scope's poll
    /// frame, once per level of nesting.
    #[inline(never)]
    fn open<E: 'static>(&mut self) -> Result<Opened, ScopeClosed> {
        let options = self.options.take().map_or_else(Options::default, |o| *o);
        // The owner's token is lent, not cloned: no reference count.
        let link = |owner: &CancellationToken| match (&options.parent, options.shielded) {
            (Some(parent), _) => CancellationSource::linked([parent]),
            (None, false) => CancellationSource::linked([owner]),
            (None, true) => CancellationSource::new(),
        };
        let (owner, source) = match self.owner.take() {
            Some(owner) => {
                let source = link(owner.cancel.token_ref());
                (Some(owner), source)
            }
            None => current::with(|ambient| match ambient {
                Some(ambient) => (Some(Arc::clone(&ambient.engine)), link(ambient.token_ref())),
                None => (None, link(&CancellationToken::none())),
            }),
        };
        let deadline = match options.bound {
            Bound::Deadline(deadline) => Some(deadline),
            Bound::Timeout(timeout) if timeout == Duration::MAX => None,
            Bound::Timeout(timeout) => Instant::now().checked_add(timeout),
            Bound::None => None,
        };
        if let Some(deadline) = deadline {
            source.cancel_at(deadline);
        }
        // Counted in the owner last: nothing above can leave its unit behind.
        if let Some(owner) = &owner {
            if !owner.join.try_add() {
                return Err(ScopeClosed);
            }
        }
        let set = Inherited {
            shutdown_grace: options.shutdown_grace,
            stderr_reports: options.stderr_reports,
        };
        let locals = Locals::open(
            owner.as_ref().and_then(|owner| owner.locals()),
            options.shielded,
            options.binds,
            set,
        );
        let settings = Settings {
            locals,
            name: self.name.clone(),
            policy: options.policy,
            grace: options.grace,
            warn_after: options.warn_after,
            dropped: self.dropped.take(),
            cancel_on_exit: options.cancel_on_exit,
        };
        let engine = Engine::open(settings, options.limit, source, owner, ErrorType::of::<E>());
        Ok(Opened::new(engine))
    }
}

/// `run`'s panic, out of line: its formatting would otherwise sit in every
/// scope's poll frame.
#[cold]
#[inline(never)]
fn closed_owner(closed: ScopeClosed) -> ! {
    panic!(
        "ScopeBuilder::run: {closed} (the scope given to `within`); use `try_start` to handle this"
    )
}

/// Opens a scope with default options and runs `body` in it; see
/// [`ScopeBuilder::run`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let greeting = String::from("hello");
/// let len = taskscope::scope(async |s| {
///     let task = s.spawn(async { Ok::<_, taskscope::Cancelled>(5) });
///     Ok(greeting.len() + task.await?) // the body borrows from the caller
/// })
/// .await
/// .unwrap();
/// assert_eq!(len, 10);
/// # }
/// ```
#[track_caller]
pub fn scope<T, E, F>(body: F) -> impl Future<Output = Result<T, ScopeError<E>>>
where
    F: AsyncFnOnce(&Scope<E>) -> Result<T, E>,
    E: TaskError,
{
    ScopeBuilder::new().run(body)
}

/// Opens a scope that fails with [`ScopeError::TimedOut`] if `timeout`
/// passes before it finishes.
///
/// ```
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let result = taskscope::fail_after(Duration::from_millis(100), async |s| {
///     s.token().run_until_cancelled(std::future::pending::<()>()).await?;
///     Ok::<_, taskscope::Cancelled>(())
/// })
/// .await;
/// assert!(result.unwrap_err().is_timeout());
/// # }
/// ```
#[track_caller]
pub fn fail_after<T, E, F>(
    timeout: Duration,
    body: F,
) -> impl Future<Output = Result<T, ScopeError<E>>>
where
    F: AsyncFnOnce(&Scope<E>) -> Result<T, E>,
    E: TaskError,
{
    ScopeBuilder::new().timeout(timeout).run(body)
}

/// Opens a scope that, if `timeout` passes before it finishes, is cancelled
/// and gives `Ok(None)`.
///
/// ```
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let result = taskscope::move_on_after(Duration::from_millis(100), async |s| {
///     s.token().run_until_cancelled(std::future::pending::<()>()).await?;
///     Ok::<_, taskscope::Cancelled>("never")
/// })
/// .await;
/// assert_eq!(result.unwrap(), None);
/// # }
/// ```
#[track_caller]
pub fn move_on_after<T, E, F>(
    timeout: Duration,
    body: F,
) -> impl Future<Output = Result<Option<T>, ScopeError<E>>>
where
    F: AsyncFnOnce(&Scope<E>) -> Result<T, E>,
    E: TaskError,
{
    ScopeBuilder::new().timeout(timeout).run_or_move_on(body)
}

impl<const BOUNDED: bool> ScopeBuilder<BOUNDED> {
    /// Runs a [`race`](crate::race()) with these options (its policy is always a race).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let winner = taskscope::ScopeBuilder::new()
    ///     .name("mirrors")
    ///     .timeout(Duration::from_secs(5))
    ///     .race(async |r| {
    ///         r.spawn(async { Ok::<_, taskscope::Cancelled>("a") });
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(winner, "a");
    /// # }
    /// ```
    pub async fn race<T, E, F>(self, body: F) -> Result<T, RaceError<E>>
    where
        F: AsyncFnOnce(&Racer<'_, T, E>) -> Result<(), E>,
        T: Send + 'static,
        E: TaskError,
    {
        race::race_in(self, body).await
    }
}
