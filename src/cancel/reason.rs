//! Why a token was cancelled, and the error an operation returns because of it.

use std::fmt;
use std::io;
use std::sync::Arc;

/// A reason shared by every node one cancellation reaches (a std `Arc` even
/// under loom: it is immutable data, not synchronisation).
pub(crate) type SharedReason = Arc<CancelReason>;

/// Why a cancellation happened.
///
/// The first reason given to a source wins; every token of that source and of
/// every source linked below it reports it. A descendant reports
/// [`CancelReason::Ancestor`] wrapping the *original* reason, never one
/// wrapper per level, so a million-deep chain stays linear.
///
/// # Examples
///
/// ```
/// use taskscope::{CancelReason, CancellationSource};
///
/// let parent = CancellationSource::new();
/// let child = CancellationSource::linked([&parent.token()]);
/// parent.cancel_with(CancelReason::message("user pressed stop"));
///
/// assert_eq!(parent.token().reason(), Some(CancelReason::message("user pressed stop")));
/// let inherited = child.token().reason().unwrap();
/// assert!(inherited.is_inherited());
/// assert_eq!(inherited.root(), &CancelReason::message("user pressed stop"));
/// assert_eq!(inherited.to_string(), "an ancestor was cancelled: cancellation requested: user pressed stop");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelReason {
    /// [`cancel`](crate::CancellationSource::cancel) was called, optionally
    /// with a message saying why.
    Requested(Option<Arc<str>>),
    /// A timeout or deadline expired.
    Timeout,
    /// The deadline the *caller* gave passed: a budget that came with the
    /// request (a `grpc-timeout` or budget header), as distinct from a local
    /// timeout. A timeout too ([`is_timeout`](CancelReason::is_timeout)).
    RemoteDeadline,
    /// A sibling task failed, so its scope cancelled the rest; names the task.
    SiblingFailed(Arc<str>),
    /// The process is shutting down.
    Shutdown,
    /// The client went away before the response was sent: the HTTP server
    /// dropped the request's future. Set by
    /// the `axum` feature's request scopes.
    ClientDisconnected,
    /// A parent (or a further ancestor) was cancelled; holds its original
    /// reason.
    Ancestor(Arc<CancelReason>),
}

impl CancelReason {
    /// A plain request, the reason [`cancel`](crate::CancellationSource::cancel) gives.
    ///
    /// ```
    /// use taskscope::CancelReason;
    /// assert_eq!(CancelReason::requested().to_string(), "cancellation requested");
    /// ```
    pub fn requested() -> Self {
        CancelReason::Requested(None)
    }

    /// A request with a message saying why.
    ///
    /// ```
    /// use taskscope::CancelReason;
    /// let reason = CancelReason::message("client disconnected");
    /// assert_eq!(reason.to_string(), "cancellation requested: client disconnected");
    /// ```
    pub fn message(message: impl Into<Arc<str>>) -> Self {
        CancelReason::Requested(Some(message.into()))
    }

    /// A sibling task named `task` failed.
    ///
    /// ```
    /// use taskscope::CancelReason;
    /// let reason = CancelReason::sibling_failed("fetch orders");
    /// assert_eq!(reason.to_string(), "a sibling task failed: fetch orders");
    /// ```
    pub fn sibling_failed(task: impl Into<Arc<str>>) -> Self {
        CancelReason::SiblingFailed(task.into())
    }

    /// Whether the cancellation came from an ancestor rather than this
    /// token's own source.
    ///
    /// ```
    /// use taskscope::CancelReason;
    /// use std::sync::Arc;
    /// assert!(!CancelReason::Timeout.is_inherited());
    /// assert!(CancelReason::Ancestor(Arc::new(CancelReason::Timeout)).is_inherited());
    /// ```
    pub fn is_inherited(&self) -> bool {
        matches!(self, CancelReason::Ancestor(_))
    }

    /// The original reason, looking through [`CancelReason::Ancestor`].
    ///
    /// ```
    /// use taskscope::CancelReason;
    /// use std::sync::Arc;
    /// let inherited = CancelReason::Ancestor(Arc::new(CancelReason::Shutdown));
    /// assert_eq!(inherited.root(), &CancelReason::Shutdown);
    /// ```
    pub fn root(&self) -> &CancelReason {
        let mut reason = self;
        while let CancelReason::Ancestor(inner) = reason {
            reason = inner;
        }
        reason
    }

    /// Whether the original reason is a timeout or deadline.
    ///
    /// ```
    /// use taskscope::CancelReason;
    /// assert!(CancelReason::Timeout.is_timeout());
    /// assert!(CancelReason::RemoteDeadline.is_timeout());
    /// assert!(!CancelReason::Shutdown.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.root(),
            CancelReason::Timeout | CancelReason::RemoteDeadline
        )
    }
}

impl Default for CancelReason {
    fn default() -> Self {
        CancelReason::requested()
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::Requested(None) => f.write_str("cancellation requested"),
            CancelReason::Requested(Some(message)) => {
                write!(f, "cancellation requested: {message}")
            }
            CancelReason::Timeout => f.write_str("timed out"),
            CancelReason::RemoteDeadline => f.write_str("the caller's deadline passed"),
            CancelReason::SiblingFailed(task) => write!(f, "a sibling task failed: {task}"),
            CancelReason::Shutdown => f.write_str("shutting down"),
            CancelReason::ClientDisconnected => f.write_str("the client disconnected"),
            CancelReason::Ancestor(inner) => write!(f, "an ancestor was cancelled: {inner}"),
        }
    }
}

/// The error an operation returns when it stopped because its token was
/// cancelled (.NET's `OperationCanceledException`).
///
/// It carries the [`CancelReason`]. It converts into [`std::io::Error`] so
/// `?` works in io code: the kind is [`io::ErrorKind::TimedOut`] when the
/// original reason is a timeout and [`io::ErrorKind::Other`] otherwise. It is
/// deliberately *not* `Interrupted`: std's io helpers retry `Interrupted`
/// errors, and a cancelled token stays cancelled, so a retry would spin
/// forever. [`Cancelled::from_io`] recovers the value from such an error.
///
/// # Examples
///
/// ```
/// use taskscope::{CancellationSource, Cancelled};
///
/// fn step(token: &taskscope::CancellationToken) -> std::io::Result<()> {
///     token.check()?; // Cancelled -> io::Error
///     Ok(())
/// }
///
/// let source = CancellationSource::new();
/// assert!(step(&source.token()).is_ok());
/// source.cancel();
/// let err = step(&source.token()).unwrap_err();
/// assert_eq!(err.to_string(), "operation cancelled: cancellation requested");
/// assert!(Cancelled::from_io(&err).is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cancelled {
    reason: CancelReason,
}

impl Cancelled {
    /// An error saying the operation stopped for `reason`.
    ///
    /// ```
    /// use taskscope::{CancelReason, Cancelled};
    /// let err = Cancelled::new(CancelReason::Timeout);
    /// assert!(err.is_timeout());
    /// ```
    pub fn new(reason: CancelReason) -> Self {
        Cancelled { reason }
    }

    /// Why the operation was cancelled.
    ///
    /// ```
    /// use taskscope::{CancelReason, Cancelled};
    /// assert_eq!(Cancelled::new(CancelReason::Shutdown).reason(), &CancelReason::Shutdown);
    /// ```
    pub fn reason(&self) -> &CancelReason {
        &self.reason
    }

    /// Takes the reason out.
    ///
    /// ```
    /// use taskscope::{CancelReason, Cancelled};
    /// assert_eq!(Cancelled::new(CancelReason::Timeout).into_reason(), CancelReason::Timeout);
    /// ```
    pub fn into_reason(self) -> CancelReason {
        self.reason
    }

    /// Whether the original reason is a timeout.
    ///
    /// ```
    /// use taskscope::{CancelReason, Cancelled};
    /// assert!(!Cancelled::new(CancelReason::requested()).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.reason.is_timeout()
    }

    /// The `Cancelled` inside an [`io::Error`] made from one, if it is.
    ///
    /// ```
    /// use taskscope::{CancelReason, Cancelled};
    /// let err: std::io::Error = Cancelled::new(CancelReason::Timeout).into();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// assert_eq!(Cancelled::from_io(&err).unwrap().reason(), &CancelReason::Timeout);
    /// ```
    pub fn from_io(error: &io::Error) -> Option<&Cancelled> {
        error.get_ref()?.downcast_ref::<Cancelled>()
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "operation cancelled: {}", self.reason)
    }
}

impl std::error::Error for Cancelled {}

impl From<Cancelled> for io::Error {
    fn from(cancelled: Cancelled) -> Self {
        let kind = if cancelled.is_timeout() {
            io::ErrorKind::TimedOut
        } else {
            io::ErrorKind::Other
        };
        io::Error::new(kind, cancelled)
    }
}

impl From<CancelReason> for Cancelled {
    fn from(reason: CancelReason) -> Self {
        Cancelled::new(reason)
    }
}
