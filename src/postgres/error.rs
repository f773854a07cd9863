//! What a cancellable query returns when it fails.

use std::error::Error;
use std::fmt;

use crate::cancel::Cancelled;
use crate::scope::TaskError;

/// Why a cancellable query failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum QueryError {
    /// The token fired: the query was not sent, or the server stopped it
    /// (by the cancel request, or by the `statement_timeout` set from the
    /// token's deadline).
    Cancelled(Cancelled),
    /// Any other error from the database or the connection.
    Db(tokio_postgres::Error),
}

impl QueryError {
    /// The cancellation, if the query stopped because of its token.
    ///
    /// ```
    /// use taskscope::{postgres::QueryError, CancelReason, Cancelled};
    /// let err = QueryError::from(Cancelled::new(CancelReason::Timeout));
    /// assert!(err.cancelled().unwrap().is_timeout());
    /// ```
    pub fn cancelled(&self) -> Option<&Cancelled> {
        match self {
            QueryError::Cancelled(cancelled) => Some(cancelled),
            QueryError::Db(_) => None,
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Cancelled(cancelled) => write!(f, "query {cancelled}"),
            QueryError::Db(error) => write!(f, "database error: {error}"),
        }
    }
}

impl Error for QueryError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            QueryError::Cancelled(cancelled) => Some(cancelled),
            QueryError::Db(error) => Some(error),
        }
    }
}

impl From<Cancelled> for QueryError {
    fn from(cancelled: Cancelled) -> Self {
        QueryError::Cancelled(cancelled)
    }
}

impl From<tokio_postgres::Error> for QueryError {
    fn from(error: tokio_postgres::Error) -> Self {
        QueryError::Db(error)
    }
}

/// A scope of queries absorbs how cancelled queries stopped, and reports
/// database errors.
impl TaskError for QueryError {
    fn is_cancellation(&self) -> bool {
        matches!(self, QueryError::Cancelled(_))
    }
}
