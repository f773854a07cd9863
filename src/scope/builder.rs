//! Opening a scope: the options, the entry functions, and the one `run`
//! that every entry goes through.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::Arc as StdArc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;
use tracing::Instrument;

use super::current::{self, Ambient, ScopeContext, CURRENT};
use super::error::ScopeError;
use super::handle::Scope;
use super::join::JoinCounter;
use super::shared::{Policy, ScopeShared, Settings, TaskName};
use crate::{CancelReason, CancellationSource, CancellationToken, Cancelled};

/// How long a cancelled scope waits before it warns about tasks still
/// running, unless [`ScopeBuilder::warn_after`] says otherwise.
pub const DEFAULT_WARN_AFTER: Duration = Duration::from_secs(10);

/// What a new scope's token is linked to.
#[derive(Clone)]
enum Link {
    /// The enclosing scope body or task, if any.
    Ambient,
    /// A token the caller gives (the enclosing scope still joins it).
    Token(CancellationToken),
    /// Nothing: a shielded scope.
    Shielded,
}

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
pub struct ScopeBuilder {
    name: TaskName,
    policy: Policy,
    limit: Option<usize>,
    grace: Option<Duration>,
    warn_after: Duration,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    link: Link,
    /// The reason the scope is cancelled with if its future is dropped.
    dropped: Option<CancelReason>,
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
            policy: Policy::FailFast,
            limit: None,
            grace: None,
            warn_after: DEFAULT_WARN_AFTER,
            timeout: None,
            deadline: None,
            link: Link::Ambient,
            dropped: None,
        }
    }

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
    pub fn name(mut self, name: impl Into<StdArc<str>>) -> Self {
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
        self.policy = policy;
        self
    }

    /// At most `limit` tasks run at once; the others wait for a slot (see
    /// [`Scope::spawn_when_free`]). Panics if `limit` is zero.
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
        self.limit = Some(limit);
        self
    }

    /// After the scope is cancelled, tasks still running when `grace` has
    /// passed are aborted (dropped at their next await) and reported as
    /// aborted. Without it (the default) the scope waits for them.
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
        self.grace = Some(grace);
        self
    }

    /// How long a cancelled scope waits before it logs one `tracing`
    /// warning naming the tasks still running (default
    /// [`DEFAULT_WARN_AFTER`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = taskscope::ScopeBuilder::new().warn_after(Duration::from_secs(2));
    /// # let _ = builder;
    /// ```
    pub fn warn_after(mut self, after: Duration) -> Self {
        self.warn_after = after;
        self
    }

    /// Cancels the scope `timeout` after it opens, with reason
    /// [`CancelReason::Timeout`]. With [`run`](ScopeBuilder::run) a scope
    /// ended by it fails with [`ScopeError::TimedOut`] (Trio's `fail_after`);
    /// [`run_or_move_on`](ScopeBuilder::run_or_move_on) gives `Ok(None)`
    /// instead (Trio's `move_on_after`).
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
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
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
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Links the scope's token to `parent` instead of the enclosing
    /// scope's (explicit token passing, the seed's convention). The
    /// enclosing scope, if any, still joins it.
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
        self.link = Link::Token(parent.clone());
        self
    }

    /// Shields the scope: its token is *not* linked to the enclosing
    /// scope's, so it runs cleanup that must happen even though the parent
    /// is cancelled (Trio's `shield`, Kotlin's `NonCancellable`). It must be
    /// bounded, so it takes its own `timeout`. The enclosing scope still
    /// joins it.
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
    pub fn shielded(mut self, timeout: Duration) -> Self {
        self.link = Link::Shielded;
        self.timeout = Some(timeout);
        self
    }

    /// Opens the scope, runs `body` in the caller's task (it may borrow
    /// from the caller), then cancels nothing and waits: the scope finishes
    /// when the body and every task and nested scope have finished.
    ///
    /// Returns the body's value, or why the scope failed:
    /// [`ScopeError::Failed`] with the first error and every later one it
    /// owns, or [`ScopeError::TimedOut`] if its own deadline ended it. A
    /// panic in the body or a task cancels the scope and is resumed here
    /// once everyone has been joined.
    ///
    /// Dropping the returned future before it completes cancels the scope at
    /// once; its tasks are not detached: the enclosing scope (if any) waits
    /// for them, and after the grace period (if set) they are aborted.
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
        E: From<Cancelled> + Send + 'static,
    {
        let exit = self
            .open::<E>()
            .expect("the enclosing scope is still running while its code runs");
        let scope = Scope {
            shared: StdArc::clone(&exit.shared),
        };
        drive(exit, body(&scope)).await
    }

    /// Opens the scope now, unless the enclosing scope has already finished
    /// (then `None`), and returns the future that runs it; the body gets
    /// its own handle to the scope. The request layer opens request scopes
    /// from outside the server's scope this way.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn try_start<T, E, F, Fut>(
        self,
        body: F,
    ) -> Option<impl Future<Output = Result<T, ScopeError<E>>>>
    where
        F: FnOnce(Scope<E>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Cancelled> + Send + 'static,
    {
        let exit = self.open::<E>()?;
        let scope = Scope {
            shared: StdArc::clone(&exit.shared),
        };
        Some(drive(exit, body(scope)))
    }

    /// Like [`run`](ScopeBuilder::run), but a scope ended by its own
    /// deadline gives `Ok(None)` and the caller carries on (Trio's
    /// `move_on_after`, Kotlin's `withTimeoutOrNull`).
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
        E: From<Cancelled> + Send + 'static,
    {
        match self.run(body).await {
            Ok(value) => Ok(Some(value)),
            Err(ScopeError::TimedOut { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// The reason to cancel with if the scope's future is dropped before it
    /// finished (a request scope says the client disconnected).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn when_dropped(mut self, reason: CancelReason) -> Self {
        self.dropped = Some(reason);
        self
    }

    /// Opens the scope: links its token, joins it to the enclosing scope
    /// and registers it in the tree. `None` if the enclosing scope has
    /// already finished.
    fn open<E: Send + 'static>(self) -> Option<ExitGuard<E>> {
        let ambient = current::ambient();
        let join = JoinCounter::new(ambient.as_ref().map(Ambient::join))?;
        let source = match (&self.link, &ambient) {
            (Link::Ambient, Some(ambient)) => CancellationSource::linked([&ambient.token()]),
            (Link::Ambient, None) | (Link::Shielded, _) => CancellationSource::new(),
            (Link::Token(parent), _) => CancellationSource::linked([parent]),
        };
        let deadline = match (self.deadline, self.timeout) {
            (Some(deadline), _) => Some(deadline),
            (None, Some(timeout)) => Instant::now().checked_add(timeout),
            (None, None) => None,
        };
        if let Some(deadline) = deadline {
            source.cancel_at(deadline);
        }
        let settings = Settings {
            name: self.name,
            policy: self.policy,
            grace: self.grace,
            warn_after: self.warn_after,
            limit: self.limit,
        };
        let parent = ambient.as_ref().map(|a| a.scope().id());
        let shared = ScopeShared::new(settings, source, join, parent);
        let weak = StdArc::downgrade(&shared);
        match ambient {
            Some(ambient) => ambient.scope().register_child(weak),
            None => super::tree::register_root(weak),
        }
        Some(ExitGuard {
            shared,
            dropped: self.dropped,
            body_running: true,
            finished: false,
        })
    }
}

/// Runs an opened scope: the body in the caller's task, then the join, then
/// the outcome (see [`ScopeBuilder::run`]).
async fn drive<T, E, B>(mut exit: ExitGuard<E>, body: B) -> Result<T, ScopeError<E>>
where
    B: Future<Output = Result<T, E>>,
    E: From<Cancelled> + Send + 'static,
{
    let shared = &exit.shared;
    let ambient = Ambient::Body {
        scope: StdArc::clone(shared) as StdArc<dyn ScopeContext>,
    };
    let body_name = shared.settings.name.renamed(StdArc::from("scope body"));
    let watchdog = shared.watchdog();
    tokio::pin!(watchdog);
    let body = CURRENT
        .scope(ambient, AssertUnwindSafe(body).catch_unwind())
        .instrument(shared.span.clone());
    tokio::pin!(body);
    // Declared after `body`, so dropped before it: a scope dropped while its
    // body runs cancels first, and the body's own registrations (an
    // `on_cancel` that interrupts a query, say) still see the token fire.
    let cancel_first = CancelOnDrop {
        source: &shared.source,
        dropped: &exit.dropped,
        armed: true,
    };
    let outcome = std::future::poll_fn(|cx| {
        let _ = watchdog.as_mut().poll(cx);
        body.as_mut().poll(cx)
    })
    .await;
    cancel_first.disarm();
    let value = match outcome {
        Ok(Ok(value)) => Some(value),
        Ok(Err(error)) => {
            let failure = shared.on_failure(&body_name, None, shared.source.is_cancelled());
            // A failed body ends the scope whatever the policy.
            shared
                .source
                .cancel_with(CancelReason::sibling_failed("scope body"));
            shared.push_failure(failure, error);
            None
        }
        Err(payload) => {
            shared.on_panic(&body_name, payload);
            None
        }
    };
    exit.body_running = false;
    JoinCounter::release(&shared.join);
    let done = shared.join.done();
    tokio::select! {
        biased;
        _ = done.cancelled() => {}
        _ = &mut watchdog => unreachable!("the watchdog never completes"),
    }
    exit.finished = true;

    let (failures, panic) = shared.take_results();
    if let Some(payload) = panic {
        if !failures.is_empty() {
            tracing::error!(
                parent: &shared.span,
                errors = failures.len(),
                "a task panicked; resuming the panic, so the scope's errors are not returned",
            );
        }
        panic::resume_unwind(payload);
    }
    shared.outcome(value, failures)
}

/// Cancels the scope if its future is dropped before it finished, and
/// makes sure its tasks are still accounted for (DESIGN §3.8).
struct ExitGuard<E: Send + 'static> {
    shared: StdArc<ScopeShared<E>>,
    dropped: Option<CancelReason>,
    body_running: bool,
    finished: bool,
}

/// The reason a scope dropped before it finished is cancelled with.
fn drop_reason(dropped: &Option<CancelReason>) -> CancelReason {
    dropped
        .clone()
        .unwrap_or_else(|| CancelReason::message("scope dropped before it finished"))
}

/// Cancels `source` when dropped, unless disarmed.
struct CancelOnDrop<'a> {
    source: &'a CancellationSource,
    dropped: &'a Option<CancelReason>,
    armed: bool,
}

impl CancelOnDrop<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.source.cancel_with(drop_reason(self.dropped));
        }
    }
}

impl<E: Send + 'static> Drop for ExitGuard<E> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let shared = &self.shared;
        shared.source.cancel_with(drop_reason(&self.dropped));
        if self.body_running {
            JoinCounter::release(&shared.join);
        }
        // The tasks keep their units: the enclosing scope (if any) waits for
        // them. Nobody awaits this scope any more, so its grace period is
        // enforced by a small task of its own.
        if let (Some(grace), Ok(runtime)) =
            (shared.settings.grace, tokio::runtime::Handle::try_current())
        {
            if !shared.join.is_done() {
                let shared = StdArc::clone(shared);
                runtime.spawn(async move {
                    let done = shared.join.done();
                    tokio::select! {
                        _ = done.cancelled() => {}
                        _ = shared.after_cancel(grace) => shared.abort_running(),
                    }
                });
            }
        }
    }
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
pub fn scope<T, E, F>(body: F) -> impl std::future::Future<Output = Result<T, ScopeError<E>>>
where
    F: AsyncFnOnce(&Scope<E>) -> Result<T, E>,
    E: From<Cancelled> + Send + 'static,
{
    ScopeBuilder::new().run(body)
}

/// Opens a scope that fails with [`ScopeError::TimedOut`] if `timeout`
/// passes before it finishes (Trio's `fail_after`, Kotlin's `withTimeout`).
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
) -> impl std::future::Future<Output = Result<T, ScopeError<E>>>
where
    F: AsyncFnOnce(&Scope<E>) -> Result<T, E>,
    E: From<Cancelled> + Send + 'static,
{
    ScopeBuilder::new().timeout(timeout).run(body)
}

/// Opens a scope that, if `timeout` passes before it finishes, is cancelled
/// and gives `Ok(None)` (Trio's `move_on_after`, Kotlin's
/// `withTimeoutOrNull`).
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
) -> impl std::future::Future<Output = Result<Option<T>, ScopeError<E>>>
where
    F: AsyncFnOnce(&Scope<E>) -> Result<T, E>,
    E: From<Cancelled> + Send + 'static,
{
    ScopeBuilder::new().timeout(timeout).run_or_move_on(body)
}
