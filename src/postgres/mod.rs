//! Cancelling PostgreSQL queries *on the server* (feature `postgres`), for
//! [tokio-postgres](tokio_postgres) clients, transactions and pooled
//! connections.
//!
//! Dropping a tokio-postgres query future, or wrapping it in
//! `tokio::time::timeout`, stops nothing on the server: the statement keeps
//! running, holding its locks and its backend, until it finishes on its own.
//! A query run through [`PgCancelExt`] stops there too:
//!
//! * when its token fires, a cancel request is sent to the server over a
//!   connection of its own (tokio-postgres's
//!   [`CancelToken::cancel_query`](tokio_postgres::CancelToken::cancel_query)),
//!   from an `on_cancel` callback, so it is sent even if the query's future
//!   is dropped at the same moment (a request whose client left);
//! * when its token has a deadline, the statement runs with the server's
//!   `statement_timeout` set to the remaining budget, so the server stops it
//!   even if this process dies;
//! * a query stopped either way returns [`QueryError::Cancelled`] with the
//!   token's reason, not a generic database error; a query whose token had
//!   already fired is never sent.
//!
//! The cancel request is sent by a small task of the scope the query runs
//! in ([`ScopeHandle::try_spawn_infallible`](crate::ScopeHandle::try_spawn_infallible)),
//! so that scope (or, if it is being dropped, its owner) does not finish
//! before the request has gone out. Only public API is used.
//!
//! The connection stays usable after a cancel: the server answers the
//! cancelled statement with an error and goes on. With a pool, a connection
//! whose query future was dropped mid-query may still carry the
//! `statement_timeout` the query set; recycle with deadpool-postgres's
//! `RecyclingMethod::Clean` (or run `RESET statement_timeout`) to clear it.
//!
//! # Examples
//!
//! One line per query: the request's token (here the ambient one) cancels
//! the query on the server.
//!
//! ```no_run
//! use taskscope::postgres::{PgCancelExt, QueryError};
//!
//! async fn slowest_orders(client: &tokio_postgres::Client) -> Result<i64, QueryError> {
//!     let row = client
//!         .cancellable()
//!         .query_one("SELECT count(*) FROM orders WHERE total > $1", &[&1000_i64])
//!         .await?;
//!     Ok(row.get(0))
//! }
//! ```

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, NoTls, Row, ToStatement};

use crate::cancel::{CancelReason, CancellationToken, Cancelled};
use crate::scope::{current_scope, ScopeHandle, TaskError};

/// Runs tokio-postgres queries so that cancelling their token stops them on
/// the server. Implemented for everything tokio-postgres can query through
/// (`Client`, `Transaction`, and so a pooled connection that dereferences
/// to a `Client`).
///
/// ```no_run
/// use taskscope::postgres::PgCancelExt;
/// use taskscope::CancellationSource;
///
/// # async fn run(client: tokio_postgres::Client) -> Result<(), taskscope::postgres::QueryError> {
/// let user = CancellationSource::new();
/// let rows = client.until_cancelled(&user.token()).query("SELECT pg_sleep(60)", &[]).await;
/// # let _ = rows;
/// # Ok(())
/// # }
/// ```
pub trait PgCancelExt: GenericClient + Sync {
    /// Queries that stop on the server when `token` fires.
    fn until_cancelled(&self, token: &CancellationToken) -> Cancellable<'_, Self> {
        Cancellable {
            client: self,
            token: token.clone(),
        }
    }

    /// Queries that stop on the server when the current scope's token
    /// ([`taskscope::token()`](crate::token)) fires: in a request scope, when
    /// the client leaves or the request's deadline passes.
    fn cancellable(&self) -> Cancellable<'_, Self> {
        self.until_cancelled(&crate::scope::token())
    }
}

impl<C: GenericClient + Sync> PgCancelExt for C {}

/// A client's queries tied to a token; made by [`PgCancelExt`].
pub struct Cancellable<'a, C: ?Sized> {
    client: &'a C,
    token: CancellationToken,
}

impl<C: GenericClient + Sync + ?Sized> Cancellable<'_, C> {
    /// Like tokio-postgres's `query`, cancelled on the server with the token.
    ///
    /// ```no_run
    /// # use taskscope::postgres::PgCancelExt;
    /// # async fn run(client: tokio_postgres::Client) -> Result<(), taskscope::postgres::QueryError> {
    /// let rows = client.cancellable().query("SELECT id FROM users WHERE name = $1", &[&"ada"]).await?;
    /// # let _ = rows; Ok(()) }
    /// ```
    pub async fn query<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, QueryError>
    where
        T: ?Sized + ToStatement + Sync + Send,
    {
        self.run(self.client.query(statement, params)).await
    }

    /// Like tokio-postgres's `query_one`.
    ///
    /// ```no_run
    /// # use taskscope::postgres::PgCancelExt;
    /// # async fn run(client: tokio_postgres::Client) -> Result<(), taskscope::postgres::QueryError> {
    /// let row = client.cancellable().query_one("SELECT 6 * 7", &[]).await?;
    /// assert_eq!(row.get::<_, i32>(0), 42);
    /// # Ok(()) }
    /// ```
    pub async fn query_one<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, QueryError>
    where
        T: ?Sized + ToStatement + Sync + Send,
    {
        self.run(self.client.query_one(statement, params)).await
    }

    /// Like tokio-postgres's `query_opt`.
    ///
    /// ```no_run
    /// # use taskscope::postgres::PgCancelExt;
    /// # async fn run(client: tokio_postgres::Client) -> Result<(), taskscope::postgres::QueryError> {
    /// let row = client.cancellable().query_opt("SELECT 1 WHERE false", &[]).await?;
    /// assert!(row.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn query_opt<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, QueryError>
    where
        T: ?Sized + ToStatement + Sync + Send,
    {
        self.run(self.client.query_opt(statement, params)).await
    }

    /// Like tokio-postgres's `execute`: the number of rows changed.
    ///
    /// ```no_run
    /// # use taskscope::postgres::PgCancelExt;
    /// # async fn run(client: tokio_postgres::Client) -> Result<(), taskscope::postgres::QueryError> {
    /// let changed = client.cancellable().execute("UPDATE jobs SET done = true", &[]).await?;
    /// # let _ = changed; Ok(()) }
    /// ```
    pub async fn execute<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, QueryError>
    where
        T: ?Sized + ToStatement + Sync + Send,
    {
        self.run(self.client.execute(statement, params)).await
    }

    /// Runs one statement under the token (see the module docs).
    async fn run<T>(
        &self,
        statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, QueryError> {
        // Never send a statement nobody wants any more.
        self.token.check()?;
        let client = self.client.client();
        let cancel = client.cancel_token();
        let scope = current_scope();
        let runtime = tokio::runtime::Handle::try_current().ok();
        let _on_cancel = self
            .token
            .on_cancel(move |_| send_cancel_request(&cancel, scope, runtime));
        let result = match self.token.remaining() {
            None => statement.await,
            Some(budget) => {
                // The SET is pipelined with the statement (sent before it,
                // run before it by the server): no round trip of its own.
                // The RESET must follow the statement's execution, which an
                // unprepared statement sends only after its own preparation
                // comes back: it costs one round trip.
                let set = format!("SET statement_timeout = {}", statement_timeout_ms(budget));
                let (set, result) = tokio::join!(client.batch_execute(&set), statement);
                // Best effort: on a failed connection there is nothing to reset.
                let _ = client.batch_execute("RESET statement_timeout").await;
                set.and(result)
            }
        };
        result.map_err(|error| self.judge(error))
    }

    /// A statement's error: `Cancelled` if the server stopped it because of
    /// the token (a cancel request, or the statement_timeout set from its
    /// deadline).
    fn judge(&self, error: tokio_postgres::Error) -> QueryError {
        let stopped = error.code() == Some(&SqlState::QUERY_CANCELED);
        if stopped {
            if let Some(reason) = self.token.reason() {
                return QueryError::Cancelled(Cancelled::new(reason));
            }
            if self.token.remaining() == Some(Duration::ZERO) {
                // The server's timeout fired just before the token's own.
                return QueryError::Cancelled(Cancelled::new(CancelReason::Timeout));
            }
        }
        QueryError::Db(error)
    }
}

/// How long the cancel request may take to reach the server.
const CANCEL_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// `statement_timeout` in milliseconds for `budget`: at least 1 (0 means
/// "no timeout" to PostgreSQL), at most what it accepts.
fn statement_timeout_ms(budget: Duration) -> u64 {
    u64::try_from(budget.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, i32::MAX as u64)
}

/// Sends the cancel request from a task of the query's scope, so the scope
/// is not finished before it has gone out; outside any scope (or once the
/// scope has closed) from a plain task on the query's runtime.
fn send_cancel_request(
    cancel: &tokio_postgres::CancelToken,
    scope: Option<ScopeHandle>,
    runtime: Option<tokio::runtime::Handle>,
) {
    let request = |cancel: tokio_postgres::CancelToken| async move {
        // Best effort: the server says nothing back, and a failure to
        // connect leaves the statement_timeout (if any) as the backstop.
        let _ = tokio::time::timeout(CANCEL_REQUEST_TIMEOUT, cancel.cancel_query(NoTls)).await;
    };
    if let Some(scope) = scope {
        if scope.try_spawn_infallible(request(cancel.clone())).is_ok() {
            return;
        }
    }
    if let Some(runtime) = runtime {
        drop(runtime.spawn(request(cancel.clone())));
    }
}

/// Why a cancellable query failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum QueryError {
    /// The token fired: the query was not sent, or the server stopped it.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_timeouts_are_at_least_one_millisecond_and_fit_the_server() {
        assert_eq!(statement_timeout_ms(Duration::ZERO), 1);
        assert_eq!(statement_timeout_ms(Duration::from_micros(1500)), 1);
        assert_eq!(statement_timeout_ms(Duration::from_millis(300)), 300);
        assert_eq!(statement_timeout_ms(Duration::MAX), i32::MAX as u64);
    }
}
