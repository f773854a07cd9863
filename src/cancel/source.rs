//! The right to cancel.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::deadline;
use super::node::{self, Handler, Node};
use super::reason::{CancelReason, SharedReason};
use super::timer::Timer;
use super::token::CancellationToken;
use crate::loom::sync::Arc;

/// Triggers cancellation (.NET's `CancellationTokenSource`).
///
/// Keep the source; hand out its [`token`](CancellationSource::token)s.
/// Tokens can observe cancellation but cannot trigger it.
///
/// * [`linked`](CancellationSource::linked) makes a source that is also
///   cancelled when any of its parent tokens is; the link is one-way.
/// * [`with_timeout`](CancellationSource::with_timeout),
///   [`with_deadline`](CancellationSource::with_deadline) and
///   [`cancel_after`](CancellationSource::cancel_after) cancel on tokio's
///   clock with [`CancelReason::Timeout`].
/// * Dropping a source does **not** cancel it: its
///   tokens simply can never fire after that. It unlinks from its parents
///   and stops its timer, so nothing grows with churn and no timer task is
///   left behind. To share the right to cancel, wrap the source in an `Arc`.
///
/// # Examples
///
/// ```
/// use taskscope::CancellationSource;
///
/// let source = CancellationSource::new();
/// let token = source.token();
/// // hand `token` to callers; later, when the work should stop:
/// source.cancel();
/// assert!(token.is_cancelled());
/// ```
pub struct CancellationSource {
    /// Always holds a node; kept as a token so that it can be lent out
    /// ([`CancellationSource::token_ref`]) without a reference count.
    token: CancellationToken,
    links: Links,
    timer: Timer,
}

/// A source's places in its parents' registries. The first link is stored
/// inline, so the common single-parent child allocates nothing for it.
#[derive(Default)]
struct Links {
    first: Option<(Arc<Node>, usize)>,
    rest: Vec<(Arc<Node>, usize)>,
}

impl Links {
    fn iter(&self) -> impl Iterator<Item = &Arc<Node>> {
        self.first
            .iter()
            .chain(self.rest.iter())
            .map(|(parent, _)| parent)
    }

    fn push(&mut self, parent: Arc<Node>, key: usize) {
        if self.first.is_none() {
            self.first = Some((parent, key));
        } else {
            self.rest.push((parent, key));
        }
    }

    fn unlink_all(&mut self) {
        // Dropped after the parent's lock is released.
        if let Some((parent, key)) = self.first.take() {
            drop(parent.deregister(key));
        }
        if !self.rest.is_empty() {
            for (parent, key) in self.rest.drain(..) {
                drop(parent.deregister(key));
            }
        }
    }
}

impl CancellationSource {
    /// A new source, not linked to anything.
    ///
    /// ```
    /// use taskscope::CancellationSource;
    /// let source = CancellationSource::new();
    /// assert!(!source.is_cancelled());
    /// ```
    pub fn new() -> Self {
        CancellationSource {
            token: CancellationToken::from_node(Node::new()),
            links: Links::default(),
            timer: Timer::default(),
        }
    }

    /// A source that is cancelled when any of `parents` is, reporting
    /// [`CancelReason::Ancestor`] with the parent's original reason. Cancelling or
    /// dropping it never affects a parent; dropping it unlinks it from every
    /// parent. If a parent is already cancelled, so is the new source.
    /// [`CancellationToken::none()`] parents are ignored.
    ///
    /// Accepts any iterator of token references: `&[a, b]`, `[&a, &b]`, a
    /// `Vec`…
    ///
    /// ```
    /// use taskscope::{CancelReason, CancellationSource};
    ///
    /// let user = CancellationSource::new();
    /// let shutdown = CancellationSource::new();
    /// let operation = CancellationSource::linked([&user.token(), &shutdown.token()]);
    ///
    /// operation.cancel(); // one-way: the parents are untouched
    /// assert!(!user.is_cancelled() && !shutdown.is_cancelled());
    ///
    /// let operation = CancellationSource::linked([&user.token(), &shutdown.token()]);
    /// shutdown.cancel_with(CancelReason::Shutdown);
    /// assert!(operation.is_cancelled());
    /// assert_eq!(operation.token().reason().unwrap().root(), &CancelReason::Shutdown);
    /// ```
    pub fn linked<'a, I>(parents: I) -> Self
    where
        I: IntoIterator<Item = &'a CancellationToken>,
    {
        let mut source = CancellationSource::new();
        for parent in parents {
            let Some(parent) = parent.node() else {
                continue;
            };
            match parent.register(Handler::Child(Arc::clone(source.node()))) {
                Ok(key) => {
                    // After registering (deadline.rs, invariant 2).
                    source.node().deadline().lower(parent.deadline().get());
                    source.links.push(Arc::clone(parent), key);
                }
                Err(handler) => {
                    drop(handler);
                    if let Some(origin) = parent.origin() {
                        node::cancel(source.node(), origin.root_reason(), true);
                    }
                    break;
                }
            }
        }
        source
    }

    /// A source that cancels itself after `timeout`, with reason
    /// [`CancelReason::Timeout`]. Zero cancels at once; a timeout too large
    /// to represent (such as `Duration::MAX`) never fires.
    ///
    /// # Panics
    ///
    /// If `timeout` is not zero and this is called outside a Tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::CancellationSource;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let source = CancellationSource::with_timeout(Duration::from_secs(30));
    /// let token = source.token();
    /// tokio::time::sleep(Duration::from_secs(31)).await;
    /// assert!(token.reason().unwrap().is_timeout());
    /// # }
    /// ```
    ///
    /// # Keep the source
    ///
    /// The timer belongs to the source: `with_timeout(d).token()` drops the
    /// source at once, and its token never fires. Bind the source to a
    /// variable that lives as long as the work:
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::CancellationSource;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let lost = CancellationSource::with_timeout(Duration::from_secs(1)).token();
    /// let kept = CancellationSource::with_timeout(Duration::from_secs(1));
    /// tokio::time::sleep(Duration::from_secs(2)).await;
    /// assert!(!lost.is_cancelled()); // its source, and so its timer, are gone
    /// assert!(kept.is_cancelled());
    /// # }
    /// ```
    #[must_use = "the timer belongs to the source: keep the source as long as its tokens are used"]
    pub fn with_timeout(timeout: Duration) -> Self {
        let source = CancellationSource::new();
        source.cancel_after(timeout);
        source
    }

    /// A source that cancels itself at `deadline` (tokio's clock), with
    /// reason [`CancelReason::Timeout`]. A deadline already past cancels at
    /// once.
    ///
    /// # Panics
    ///
    /// If the deadline is in the future and this is called outside a Tokio
    /// runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::CancellationSource;
    /// use tokio::time::Instant;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let source = CancellationSource::with_deadline(Instant::now() + Duration::from_secs(2));
    /// source.token().cancelled().await;
    /// assert!(source.token().reason().unwrap().is_timeout());
    /// # }
    /// ```
    #[must_use = "the timer belongs to the source: keep the source as long as its tokens are used"]
    pub fn with_deadline(deadline: Instant) -> Self {
        let source = CancellationSource::new();
        source.cancel_at(deadline);
        source
    }

    /// Cancels this source after `delay`, replacing any timeout or deadline
    /// set before. Zero cancels at once; a delay too
    /// large to represent removes the timer (never fires). Does nothing if
    /// the source is already cancelled.
    ///
    /// # Panics
    ///
    /// If `delay` is not zero and this is called outside a Tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::CancellationSource;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let source = CancellationSource::new();
    /// source.cancel_after(Duration::from_secs(1));
    /// source.cancel_after(Duration::from_secs(10)); // replaces the first timer
    /// tokio::time::sleep(Duration::from_secs(5)).await;
    /// assert!(!source.is_cancelled());
    /// tokio::time::sleep(Duration::from_secs(6)).await;
    /// assert!(source.is_cancelled());
    /// # }
    /// ```
    pub fn cancel_after(&self, delay: Duration) {
        self.arm(Instant::now().checked_add(delay), CancelReason::Timeout);
    }

    /// Cancels this source at `deadline`, replacing any timeout or deadline
    /// set before. A deadline already past cancels at once.
    ///
    /// # Panics
    ///
    /// If the deadline is in the future and this is called outside a Tokio
    /// runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::CancellationSource;
    /// use tokio::time::Instant;
    ///
    /// let source = CancellationSource::new();
    /// source.cancel_at(Instant::now()); // already due: cancels at once, no runtime needed
    /// assert!(source.token().reason().unwrap().is_timeout());
    /// ```
    pub fn cancel_at(&self, deadline: Instant) {
        self.arm(Some(deadline), CancelReason::Timeout);
    }

    /// Like [`cancel_at`](CancellationSource::cancel_at), cancelling with
    /// `reason` instead of [`CancelReason::Timeout`]: a server uses
    /// [`CancelReason::RemoteDeadline`] for the deadline its caller sent.
    ///
    /// ```
    /// use taskscope::{CancelReason, CancellationSource};
    /// use tokio::time::Instant;
    ///
    /// let request = CancellationSource::new();
    /// request.cancel_at_with(Instant::now(), CancelReason::RemoteDeadline);
    /// assert_eq!(request.reason(), Some(CancelReason::RemoteDeadline));
    /// ```
    pub fn cancel_at_with(&self, deadline: Instant, reason: CancelReason) {
        self.arm(Some(deadline), reason);
    }

    /// Arms the timer for `deadline` (`None`: never) and recomputes the
    /// effective deadline: the earlier of it and the parents' (deadline.rs,
    /// invariant 1), then lowers the descendants'.
    fn arm(&self, deadline: Option<Instant>, reason: CancelReason) {
        let inherited = self
            .links
            .iter()
            .map(|parent| parent.deadline().get())
            .min();
        let effective = deadline::to_nanos(deadline).min(inherited.unwrap_or(deadline::NEVER));
        self.node().deadline().set(effective);
        deadline::tighten_below(self.node(), effective);
        self.timer.set(self.node(), deadline, reason);
    }

    /// The earliest deadline of this source and its ancestors, on tokio's
    /// clock, if any; see [`CancellationToken::deadline`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::CancellationSource;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let source = CancellationSource::with_timeout(Duration::from_secs(5));
    /// assert_eq!(source.remaining(), Some(Duration::from_secs(5)));
    /// # }
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.token.deadline()
    }

    /// How long until [`deadline`](CancellationSource::deadline): zero once
    /// it has passed, `None` without one.
    ///
    /// ```
    /// let source = taskscope::CancellationSource::new();
    /// assert_eq!(source.remaining(), None);
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        self.token.remaining()
    }

    /// Cancels with [`CancelReason::Requested`]. See
    /// [`cancel_with`](CancellationSource::cancel_with).
    ///
    /// ```
    /// use taskscope::CancellationSource;
    /// let source = CancellationSource::new();
    /// assert!(source.cancel());
    /// assert!(!source.cancel()); // idempotent: the second call changes nothing
    /// ```
    pub fn cancel(&self) -> bool {
        self.cancel_with(CancelReason::requested())
    }

    /// Cancels this source and every source linked below it, with `reason`.
    ///
    /// Returns `true` if this call cancelled the source, `false` if it was
    /// already cancelled (the first reason wins and stays).
    ///
    /// When it returns, this source's tokens and those of every descendant
    /// report cancelled. Callbacks run on this thread before it returns,
    /// except those another thread's cancellation got to first. If a
    /// callback panicked, the first panic is resumed here after every
    /// callback has run.
    ///
    /// ```
    /// use taskscope::{CancelReason, CancellationSource};
    ///
    /// let source = CancellationSource::new();
    /// source.cancel_with(CancelReason::message("user clicked stop"));
    /// source.cancel_with(CancelReason::Timeout); // too late: the first reason stays
    /// assert_eq!(source.token().reason(), Some(CancelReason::message("user clicked stop")));
    /// ```
    pub fn cancel_with(&self, reason: CancelReason) -> bool {
        node::cancel(self.node(), SharedReason::new(reason), false)
    }

    pub(crate) fn node(&self) -> &Arc<Node> {
        match self.token.node() {
            Some(node) => node,
            None => unreachable!("a source always has a node"),
        }
    }

    /// This source's token, lent: no reference count is taken.
    pub(crate) fn token_ref(&self) -> &CancellationToken {
        &self.token
    }

    /// A token observing this source.
    ///
    /// ```
    /// use taskscope::CancellationSource;
    /// let source = CancellationSource::new();
    /// assert_eq!(source.token(), source.token());
    /// ```
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Whether cancellation has been requested.
    ///
    /// ```
    /// use taskscope::CancellationSource;
    /// let source = CancellationSource::new();
    /// source.cancel();
    /// assert!(source.is_cancelled());
    /// ```
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.node().is_cancelled()
    }

    /// Why this source was cancelled, or `None`.
    ///
    /// ```
    /// use taskscope::{CancelReason, CancellationSource};
    /// let source = CancellationSource::new();
    /// source.cancel();
    /// assert_eq!(source.reason(), Some(CancelReason::requested()));
    /// ```
    pub fn reason(&self) -> Option<CancelReason> {
        self.node().reason()
    }
}

impl CancellationSource {
    /// Cancels this source when the returned guard is dropped, unless it was
    /// [disarmed](DropGuard::disarm) (tokio-util's `DropGuard`): "cancel on
    /// every way out" for code that may return early or unwind.
    ///
    /// ```
    /// use taskscope::CancellationSource;
    ///
    /// let source = CancellationSource::new();
    /// let token = source.token();
    /// {
    ///     let _guard = source.drop_guard();
    ///     // … an early return or a panic here still cancels …
    /// }
    /// assert!(token.is_cancelled());
    ///
    /// let kept = CancellationSource::new().drop_guard().disarm();
    /// assert!(!kept.is_cancelled());
    /// ```
    pub fn drop_guard(self) -> DropGuard {
        DropGuard { source: Some(self) }
    }
}

/// Cancels its source when dropped; made by
/// [`CancellationSource::drop_guard`].
#[must_use = "dropping the guard at once cancels its source at once"]
pub struct DropGuard {
    source: Option<CancellationSource>,
}

impl DropGuard {
    /// Gives the source back without cancelling it.
    ///
    /// ```
    /// let guard = taskscope::CancellationSource::new().drop_guard();
    /// let source = guard.disarm();
    /// assert!(!source.is_cancelled());
    /// ```
    pub fn disarm(mut self) -> CancellationSource {
        self.source
            .take()
            .expect("a guard holds its source until disarmed")
    }

    /// A token of the guarded source.
    ///
    /// ```
    /// let guard = taskscope::CancellationSource::new().drop_guard();
    /// let token = guard.token();
    /// drop(guard);
    /// assert!(token.is_cancelled());
    /// ```
    pub fn token(&self) -> CancellationToken {
        self.source
            .as_ref()
            .map(CancellationSource::token)
            .unwrap_or_default()
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(source) = self.source.take() {
            source.cancel();
        }
    }
}

impl fmt::Debug for DropGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropGuard")
            .field("source", &self.source)
            .finish()
    }
}

impl Default for CancellationSource {
    fn default() -> Self {
        CancellationSource::new()
    }
}

impl Drop for CancellationSource {
    fn drop(&mut self) {
        self.links.unlink_all();
    }
}

impl fmt::Debug for CancellationSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellationSource")
            .field("reason", &self.reason())
            .finish()
    }
}
