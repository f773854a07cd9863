//! The right to observe cancellation.

use std::fmt;
use std::future::Future;

use std::time::Duration;

use tokio::time::Instant;

use super::callback::Callback;
use super::deadline;
use super::node::{Handler, Node};
use super::reason::{CancelReason, Cancelled};
use super::registration::Registration;
use super::until::RunUntilCancelled;
use super::wait::WaitForCancellation;
use crate::loom::sync::Arc;

/// Observes whether, and why, a [`CancellationSource`](crate::CancellationSource)
/// was cancelled (.NET's `CancellationToken`).
///
/// A token can only observe; only its source can cancel. Tokens are cheap to
/// clone (one reference count) and are `Send + Sync`. Pass one down every call
/// chain that may take a while. [`CancellationToken::none()`] (also
/// `Default`) never fires and allocates nothing, for callers that have
/// nothing to cancel with.
///
/// Two tokens are equal when they observe the same source; all `none()`
/// tokens are equal.
///
/// # Examples
///
/// ```
/// use taskscope::{CancellationSource, CancellationToken};
///
/// async fn fetch(id: u32, token: &CancellationToken) -> Result<u32, taskscope::Cancelled> {
///     token.check()?; // stop before starting if nobody wants the result
///     Ok(id * 2)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let source = CancellationSource::new();
/// let token = source.token();
/// assert_eq!(fetch(21, &token).await, Ok(42));
/// assert_eq!(fetch(21, &CancellationToken::none()).await, Ok(42));
///
/// source.cancel();
/// assert!(token.is_cancelled());
/// assert!(fetch(21, &token).await.is_err());
/// # }
/// ```
#[derive(Clone, Default)]
pub struct CancellationToken {
    node: Option<Arc<Node>>,
}

impl CancellationToken {
    pub(crate) fn from_node(node: Arc<Node>) -> Self {
        CancellationToken { node: Some(node) }
    }

    pub(crate) fn node(&self) -> Option<&Arc<Node>> {
        self.node.as_ref()
    }

    /// A token that is never cancelled.
    /// Allocates nothing; equal to `CancellationToken::default()`.
    ///
    /// ```
    /// use taskscope::CancellationToken;
    /// let token = CancellationToken::none();
    /// assert!(!token.can_be_cancelled());
    /// assert_eq!(token, CancellationToken::default());
    /// ```
    pub const fn none() -> Self {
        CancellationToken { node: None }
    }

    /// Whether this token could ever be cancelled: `false` only for
    /// [`none()`](CancellationToken::none).
    ///
    /// ```
    /// use taskscope::CancellationSource;
    /// assert!(CancellationSource::new().token().can_be_cancelled());
    /// ```
    pub fn can_be_cancelled(&self) -> bool {
        self.node.is_some()
    }

    /// Whether cancellation has been requested. One atomic load. Whatever the cancelling
    /// thread did before `cancel` is visible to a thread that sees `true`.
    ///
    /// ```
    /// use taskscope::CancellationSource;
    /// let source = CancellationSource::new();
    /// let token = source.token();
    /// assert!(!token.is_cancelled());
    /// source.cancel();
    /// assert!(token.is_cancelled());
    /// ```
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.node.as_ref().is_some_and(|node| node.is_cancelled())
    }

    /// The earliest deadline of this token's source and of every source it
    /// is linked below, on tokio's clock; `None` if none has one. A child
    /// can tighten its parents' deadline, never extend it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::CancellationSource;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let request = CancellationSource::with_timeout(Duration::from_secs(30));
    /// let query = CancellationSource::linked([&request.token()]);
    /// query.cancel_after(Duration::from_secs(60)); // cannot extend the request's
    /// assert_eq!(query.token().deadline(), request.token().deadline());
    /// query.cancel_after(Duration::from_secs(5)); // can tighten it
    /// assert_eq!(query.token().remaining(), Some(Duration::from_secs(5)));
    /// # }
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.node
            .as_ref()
            .and_then(|node| deadline::from_nanos(node.deadline().get()))
    }

    /// How long until [`deadline`](CancellationToken::deadline): zero once it
    /// has passed, `None` without a deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::CancellationSource;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let source = CancellationSource::with_timeout(Duration::from_millis(300));
    /// tokio::time::sleep(Duration::from_millis(100)).await;
    /// assert_eq!(source.token().remaining(), Some(Duration::from_millis(200)));
    /// assert_eq!(taskscope::CancellationToken::none().remaining(), None);
    /// # }
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Why the token was cancelled, or `None` if it was not. A token
    /// cancelled through a linked parent reports
    /// [`CancelReason::Ancestor`] with the parent's original reason.
    ///
    /// ```
    /// use taskscope::{CancelReason, CancellationSource};
    /// let source = CancellationSource::new();
    /// assert_eq!(source.token().reason(), None);
    /// source.cancel_with(CancelReason::Shutdown);
    /// assert_eq!(source.token().reason(), Some(CancelReason::Shutdown));
    /// ```
    pub fn reason(&self) -> Option<CancelReason> {
        self.node.as_ref()?.reason()
    }

    /// `Err(Cancelled)` if cancellation has been requested, else `Ok(())`.
    /// Call it at the top of loops and between expensive steps.
    ///
    /// ```
    /// use taskscope::CancellationSource;
    /// let source = CancellationSource::new();
    /// assert!(source.token().check().is_ok());
    /// source.cancel();
    /// let err = source.token().check().unwrap_err();
    /// assert_eq!(err.to_string(), "operation cancelled: cancellation requested");
    /// ```
    #[inline]
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled::new(self.reason().unwrap_or_default()))
        } else {
            Ok(())
        }
    }

    /// A future that resolves when the token is cancelled. Cancel-safe; ready
    /// at once if the token already is; never ready for
    /// [`none()`](CancellationToken::none).
    ///
    /// ```
    /// use taskscope::CancellationSource;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let source = CancellationSource::new();
    /// let token = source.token();
    /// let waiter = tokio::spawn(async move {
    ///     token.cancelled().await;
    ///     "stopped"
    /// });
    /// source.cancel();
    /// assert_eq!(waiter.await.unwrap(), "stopped");
    /// # }
    /// ```
    pub fn cancelled(&self) -> WaitForCancellation<'_> {
        WaitForCancellation::new(self)
    }

    /// Like [`cancelled`](CancellationToken::cancelled) but owns a clone of
    /// the token, so the future is `'static`.
    ///
    /// ```
    /// use taskscope::CancellationSource;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let source = CancellationSource::new();
    /// let waiter = tokio::spawn(source.token().cancelled_owned());
    /// source.cancel();
    /// waiter.await.unwrap();
    /// # }
    /// ```
    pub fn cancelled_owned(&self) -> WaitForCancellation<'static> {
        WaitForCancellation::owned(self.clone())
    }

    /// Runs `future` until it completes (`Ok(output)`) or the token is
    /// cancelled (`Err(Cancelled)`), whichever comes first. `Err` at once,
    /// without polling `future`, if the token already is cancelled.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::CancellationSource;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let source = CancellationSource::with_timeout(Duration::from_millis(10));
    /// let token = source.token();
    /// let result = token.run_until_cancelled(tokio::time::sleep(Duration::from_secs(5))).await;
    /// assert!(result.unwrap_err().is_timeout());
    /// # }
    /// ```
    pub fn run_until_cancelled<F: Future>(&self, future: F) -> RunUntilCancelled<'_, F> {
        RunUntilCancelled::new(self.cancelled(), future)
    }

    /// Like [`run_until_cancelled`](CancellationToken::run_until_cancelled),
    /// owning a clone of the token: the result is `'static` when `future`
    /// is, so it can be spawned.
    ///
    /// ```
    /// use taskscope::CancellationSource;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let source = CancellationSource::new();
    /// let task = tokio::spawn(source.token().run_until_cancelled_owned(std::future::pending::<()>()));
    /// source.cancel();
    /// assert!(task.await.unwrap().is_err());
    /// # }
    /// ```
    pub fn run_until_cancelled_owned<F: Future>(&self, future: F) -> RunUntilCancelled<'static, F> {
        RunUntilCancelled::new(self.cancelled_owned(), future)
    }

    /// Registers `f` to run once when the token is cancelled; it gets the reason.
    ///
    /// * `f` runs synchronously on the thread that cancels, so keep it short.
    /// * If the token is already cancelled, `f` runs inline before `on_cancel`
    ///   returns. For [`none()`](CancellationToken::none) it never runs.
    /// * Dropping the returned [`Registration`] unregisters `f`; see there for
    ///   what happens when that races with cancellation.
    /// * Order: cancelling marks the token and all its descendants first, then
    ///   wakes tasks waiting in [`cancelled`](CancellationToken::cancelled),
    ///   then runs callbacks token by token, ancestors before descendants and,
    ///   within one token, the most recently registered first.
    /// * A panicking callback does not stop the others; the first panic is
    ///   resumed from `cancel` once every callback has run.
    /// * Registering or cancelling from inside a callback is fine.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tokio::sync::Semaphore;
    /// use taskscope::CancellationSource;
    ///
    /// let semaphore = Arc::new(Semaphore::new(0));
    /// let source = CancellationSource::new();
    /// let _registration = source.token().on_cancel({
    ///     let semaphore = semaphore.clone();
    ///     move |reason| {
    ///         println!("cancelled ({reason}): releasing the permit");
    ///         semaphore.add_permits(1);
    ///     }
    /// });
    /// source.cancel();
    /// assert_eq!(semaphore.available_permits(), 1);
    /// ```
    pub fn on_cancel<F>(&self, f: F) -> Registration
    where
        F: FnOnce(&CancelReason) + Send + 'static,
    {
        let Some(node) = &self.node else {
            return Registration::never();
        };
        let callback = Callback::new(Box::new(f));
        match node.register(Handler::Callback(Arc::clone(&callback))) {
            Ok(key) => Registration::armed(Arc::clone(node), key, callback),
            Err(handler) => {
                drop(handler);
                let reason = node.reason().unwrap_or_default();
                if let Err(payload) = callback.run(&reason) {
                    std::panic::resume_unwind(payload);
                }
                Registration::ran()
            }
        }
    }

    /// Resolves once the token is cancelled *and* the callbacks that the
    /// cancellation ran have all returned. [`is_cancelled`](Self::is_cancelled)
    /// turns true before callbacks start; this waits for them to finish.
    ///
    /// ```
    /// use taskscope::CancellationSource;
    ///
    /// # #[tokio::main]
    /// # async fn main() {
    /// let source = CancellationSource::new();
    /// let token = source.token();
    /// let _slow = token.on_cancel(|_| std::thread::sleep(std::time::Duration::from_millis(20)));
    /// let canceller = std::thread::spawn(move || source.cancel());
    /// token.cancellation_complete().await; // the slow callback has returned
    /// canceller.join().unwrap();
    /// # }
    /// ```
    pub async fn cancellation_complete(&self) {
        self.cancelled().await;
        if let Some(origin) = self.node.as_ref().and_then(|node| node.origin()) {
            origin.wait_notified().await;
        }
    }

    /// Whether the token is cancelled and every callback that the
    /// cancellation ran has returned; see
    /// [`cancellation_complete`](Self::cancellation_complete).
    ///
    /// ```
    /// use taskscope::CancellationSource;
    /// let source = CancellationSource::new();
    /// assert!(!source.token().is_cancellation_complete());
    /// source.cancel();
    /// assert!(source.token().is_cancellation_complete());
    /// ```
    pub fn is_cancellation_complete(&self) -> bool {
        self.is_cancelled()
            && self
                .node
                .as_ref()
                .and_then(|node| node.origin())
                .is_some_and(|origin| origin.is_notified())
    }
}

impl PartialEq for CancellationToken {
    fn eq(&self, other: &Self) -> bool {
        match (&self.node, &other.node) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for CancellationToken {}

/// Consistent with `Eq`: tokens of the same source hash alike (by the
/// source's identity, which never changes, so a token is a sound key even
/// though clippy's `mutable_key_type` lint cannot tell); every `none()`
/// token hashes alike.
///
/// ```
/// use std::collections::HashSet;
/// use taskscope::{CancellationSource, CancellationToken};
///
/// let source = CancellationSource::new();
/// let seen: HashSet<CancellationToken> = [source.token(), source.token(), CancellationToken::none()].into();
/// assert_eq!(seen.len(), 2);
/// ```
impl std::hash::Hash for CancellationToken {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let identity = self.node.as_ref().map_or(std::ptr::null(), Arc::as_ptr);
        identity.hash(state);
    }
}

impl fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.node.is_none() {
            return f.write_str("CancellationToken::none()");
        }
        f.debug_struct("CancellationToken")
            .field("reason", &self.reason())
            .finish()
    }
}
