//! Why a scope failed.

use std::fmt;

use crate::cancel::{CancelReason, Cancelled};
use crate::scope::task_error::TaskError;

/// Why a scope did not return its body's value.
///
/// Errors are never lost: a task's error goes to its [`TaskHandle`](crate::TaskHandle)
/// if the handle is awaited, and to the scope otherwise. The scope reports
/// the ones it owns here, in the order they happened, beside the body's own
/// error. Panics are not reported here: they are resumed when the scope
/// exits (as `std::thread::scope` does).
///
/// # Examples
///
/// ```
/// use std::io;
/// use taskscope::ScopeError;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let result = taskscope::scope(async |s| {
///     s.spawn(async { Err::<(), _>(io::Error::other("disk full")) });
///     Ok::<_, io::Error>(())
/// })
/// .await;
/// match result {
///     Err(ScopeError::Failed { first, .. }) => assert_eq!(first.to_string(), "disk full"),
///     other => panic!("unexpected {other:?}"),
/// }
/// # }
/// ```
/// The enum is `#[non_exhaustive]`: a `match` on it needs a `_` arm, and
/// [`first`](ScopeError::first), [`is_timeout`](ScopeError::is_timeout),
/// [`is_cancellation`](ScopeError::is_cancellation) and
/// [`into_error`](ScopeError::into_error) answer the usual questions
/// without one.
#[derive(Debug)]
#[non_exhaustive]
pub enum ScopeError<E> {
    /// The body or a task failed. `first` is the first *real* failure (an
    /// error that is not a cancellation; see [`TaskError`](crate::TaskError)),
    /// or, if there is none, the first cancellation error; `later` holds
    /// every other error the scope owned (often the cancellation errors the
    /// first one caused), in the order they happened.
    Failed {
        /// The first error.
        first: E,
        /// Every later error the scope owned.
        later: Vec<E>,
    },
    /// The scope's own deadline passed before its work finished (the
    /// "fail" form of a timeout). `errors` are those returned after the
    /// deadline, usually the tasks' cancellation errors.
    TimedOut {
        /// Errors returned after the deadline.
        errors: Vec<E>,
    },
}

impl<E> ScopeError<E> {
    /// The first error, if any.
    ///
    /// ```
    /// use taskscope::ScopeError;
    /// let err = ScopeError::Failed { first: 1, later: vec![2] };
    /// assert_eq!(err.first(), Some(&1));
    /// assert_eq!(ScopeError::<i32>::TimedOut { errors: vec![] }.first(), None);
    /// ```
    pub fn first(&self) -> Option<&E> {
        match self {
            ScopeError::Failed { first, .. } => Some(first),
            ScopeError::TimedOut { errors } => errors.first(),
        }
    }

    /// Every error, in the order they happened.
    ///
    /// ```
    /// use taskscope::ScopeError;
    /// let err = ScopeError::Failed { first: 1, later: vec![2, 3] };
    /// assert_eq!(err.into_errors(), vec![1, 2, 3]);
    /// ```
    pub fn into_errors(self) -> Vec<E> {
        match self {
            ScopeError::Failed { first, mut later } => {
                later.insert(0, first);
                later
            }
            ScopeError::TimedOut { errors } => errors,
        }
    }

    /// One error of the tasks' type, for `?` in code that returns `E`
    /// (a nested scope inside a task, `main`): the first failure; for a
    /// scope ended by its own deadline, [`Cancelled`] with
    /// [`CancelReason::Timeout`]. The later errors are dropped.
    ///
    /// ```
    /// use std::io;
    /// use taskscope::ScopeError;
    ///
    /// let err = ScopeError::Failed { first: io::Error::other("disk full"), later: vec![] };
    /// assert_eq!(err.into_error().to_string(), "disk full");
    ///
    /// let timed_out = ScopeError::<io::Error>::TimedOut { errors: vec![] }.into_error();
    /// assert_eq!(timed_out.kind(), io::ErrorKind::TimedOut);
    /// ```
    pub fn into_error(self) -> E
    where
        E: From<Cancelled>,
    {
        match self {
            ScopeError::Failed { first, .. } => first,
            ScopeError::TimedOut { .. } => Cancelled::new(CancelReason::Timeout).into(),
        }
    }

    /// Whether the scope's own deadline ended it.
    ///
    /// ```
    /// use taskscope::ScopeError;
    /// assert!(ScopeError::<()>::TimedOut { errors: vec![] }.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, ScopeError::TimedOut { .. })
    }
}

impl<E: TaskError> ScopeError<E> {
    /// Whether the scope ended by cancellation alone: its own deadline, or
    /// errors that are all cancellations (see [`TaskError`]); no task
    /// failed for real. A service shut down by Ctrl-C says `true`; one whose
    /// database went away says `false`.
    ///
    /// ```
    /// use taskscope::{CancelReason, Cancelled, ScopeError};
    ///
    /// let shutdown = ScopeError::Failed {
    ///     first: Cancelled::new(CancelReason::Shutdown),
    ///     later: vec![Cancelled::new(CancelReason::Shutdown)],
    /// };
    /// assert!(shutdown.is_cancellation());
    /// let failed = ScopeError::Failed { first: std::io::Error::other("disk full"), later: vec![] };
    /// assert!(!failed.is_cancellation());
    /// ```
    pub fn is_cancellation(&self) -> bool {
        match self {
            ScopeError::Failed { first, later } => {
                first.is_cancellation() && later.iter().all(TaskError::is_cancellation)
            }
            ScopeError::TimedOut { .. } => true,
        }
    }
}

/// The first error, and how many later ones were real failures (the
/// cancellations the first caused are not counted).
impl<E: fmt::Display + TaskError> fmt::Display for ScopeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeError::Failed { first, later } => {
                let failures = later.iter().filter(|e| !e.is_cancellation()).count();
                match failures {
                    0 => write!(f, "{first}"),
                    1 => write!(f, "{first} (and 1 later failure)"),
                    n => write!(f, "{first} (and {n} later failures)"),
                }
            }
            ScopeError::TimedOut { .. } => f.write_str("the scope's deadline passed"),
        }
    }
}

impl<E: std::error::Error + TaskError> std::error::Error for ScopeError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.first()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The error of spawning into, or opening a scope inside, a scope that has
/// already finished (see [`ScopeHandle::spawn`](crate::ScopeHandle::spawn)).
/// It converts into [`Cancelled`] (the work was never run), so `?` takes it
/// in a task whose error type converts from `Cancelled`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = taskscope::scope(async |s| Ok::<_, taskscope::Cancelled>(s.handle()))
///     .await
///     .unwrap();
/// let late = handle.spawn(async { Ok(()) });
/// assert_eq!(late.unwrap_err(), taskscope::ScopeClosed);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScopeClosed;

impl fmt::Display for ScopeClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the scope has already finished: nothing more can be spawned into it")
    }
}

impl std::error::Error for ScopeClosed {}

impl From<ScopeClosed> for Cancelled {
    fn from(closed: ScopeClosed) -> Self {
        Cancelled::new(CancelReason::message(closed.to_string()))
    }
}
