//! `TaskError`: what a scope asks of its tasks' error type, above all
//! whether an error *is* a cancellation.
//!
//! A scope judges a failure by what it is, not by when it arrives: an error
//! that is a cancellation, returned by code whose token had fired, is how
//! cancelled code stops, and the scope may absorb it; anything else is a
//! real failure, which is never dropped and never reported behind a
//! cancellation.

use std::error::Error;
use std::io;

use crate::cancel::Cancelled;

/// Any error, boxed: the error type of a request's or a service's tasks,
/// when they fail in different ways. It is a [`TaskError`]: a
/// [`Cancelled`](crate::Cancelled) anywhere in its source chain is a
/// cancellation.
///
/// ```
/// use taskscope::BoxError;
///
/// let error: BoxError = std::io::Error::other("upstream timed out").into();
/// let cancelled: BoxError = taskscope::Cancelled::new(taskscope::CancelReason::Shutdown).into();
/// assert_eq!(error.to_string(), "upstream timed out");
/// assert!(cancelled.is::<taskscope::Cancelled>());
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error type of a scope's tasks.
///
/// A scope needs two things from it: a way to report a task that never
/// finished (`From<Cancelled>`), and a way to tell a cancellation from a
/// real failure ([`is_cancellation`](TaskError::is_cancellation)). It is
/// implemented for [`Cancelled`], [`std::io::Error`] (an error made from a
/// `Cancelled`), `Box<dyn Error + Send + Sync>` (a `Cancelled` anywhere in
/// its source chain) and, with the `anyhow` feature, `anyhow::Error`.
///
/// Your own error type opts in with one impl. The default method says "never
/// a cancellation", which is always safe: such errors are never absorbed.
/// Point it at your cancellation variant to let a scope absorb how
/// cancelled tasks stopped.
///
/// # Examples
///
/// ```
/// use taskscope::{Cancelled, TaskError};
///
/// #[derive(Debug)]
/// enum SyncError {
///     Network(String),
///     Cancelled(Cancelled),
/// }
///
/// impl From<Cancelled> for SyncError {
///     fn from(c: Cancelled) -> Self {
///         SyncError::Cancelled(c)
///     }
/// }
///
/// impl TaskError for SyncError {
///     fn is_cancellation(&self) -> bool {
///         matches!(self, SyncError::Cancelled(_))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A real failure is reported even though the scope was already cancelled.
/// let result = taskscope::scope(async |s| {
///     s.cancel();
///     s.spawn(async { Err::<(), _>(SyncError::Network("reset".into())) });
///     Ok(())
/// })
/// .await;
/// assert!(matches!(result.unwrap_err().first(), Some(SyncError::Network(_))));
/// # }
/// ```
///
/// The one-line form, for a type with no cancellation variant:
///
/// ```
/// # #[derive(Debug)] struct Fatal;
/// # impl From<taskscope::Cancelled> for Fatal { fn from(_: taskscope::Cancelled) -> Self { Fatal } }
/// impl taskscope::TaskError for Fatal {}
/// ```
pub trait TaskError: From<Cancelled> + Send + 'static {
    /// Whether this error is a cancellation: how code stops when its token
    /// fires. The default says it never is.
    ///
    /// ```
    /// use taskscope::{CancelReason, Cancelled, TaskError};
    ///
    /// let err: std::io::Error = Cancelled::new(CancelReason::Shutdown).into();
    /// assert!(err.is_cancellation());
    /// assert!(!std::io::Error::other("disk full").is_cancellation());
    /// ```
    fn is_cancellation(&self) -> bool {
        false
    }
}

impl TaskError for Cancelled {
    fn is_cancellation(&self) -> bool {
        true
    }
}

impl TaskError for io::Error {
    fn is_cancellation(&self) -> bool {
        Cancelled::from_io(self).is_some()
    }
}

impl TaskError for Box<dyn Error + Send + Sync> {
    fn is_cancellation(&self) -> bool {
        find_in_chain(&**self).is_some()
    }
}

#[cfg(feature = "anyhow")]
#[cfg_attr(docsrs, doc(cfg(feature = "anyhow")))]
impl TaskError for anyhow::Error {
    fn is_cancellation(&self) -> bool {
        self.chain().any(|error| as_cancelled_here(error).is_some())
    }
}

/// A `Cancelled` (or an `io::Error` made from one) anywhere in `error`'s
/// source chain. A loop over the chain, not recursion.
fn find_in_chain<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a Cancelled> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(cancelled) = as_cancelled_here(error) {
            return Some(cancelled);
        }
        next = error.source();
    }
    None
}

/// `error` itself as a `Cancelled`, directly or inside an `io::Error`.
fn as_cancelled_here<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a Cancelled> {
    error.downcast_ref::<Cancelled>().or_else(|| {
        error
            .downcast_ref::<io::Error>()
            .and_then(Cancelled::from_io)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::CancelReason;
    use std::fmt;

    #[derive(Debug)]
    struct Wrapper(io::Error);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("while syncing")
        }
    }

    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn boxed_errors_are_cancellations_when_one_is_in_their_source_chain() {
        let direct: Box<dyn Error + Send + Sync> = Cancelled::new(CancelReason::Timeout).into();
        assert!(direct.is_cancellation());
        let wrapped: Box<dyn Error + Send + Sync> =
            Wrapper(Cancelled::new(CancelReason::Shutdown).into()).into();
        assert!(wrapped.is_cancellation());
        assert_eq!(
            find_in_chain(&*wrapped).unwrap().reason(),
            &CancelReason::Shutdown
        );
        let real: Box<dyn Error + Send + Sync> = Wrapper(io::Error::other("disk")).into();
        assert!(!real.is_cancellation());
    }

    #[test]
    fn io_errors_are_cancellations_only_when_made_from_one() {
        let cancelled: io::Error = Cancelled::new(CancelReason::requested()).into();
        assert!(cancelled.is_cancellation());
        let timed_out = io::Error::new(io::ErrorKind::TimedOut, "socket");
        assert!(!timed_out.is_cancellation());
    }
}
