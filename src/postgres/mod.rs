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
//!   `statement_timeout` set a little past the token's deadline (rounded up,
//!   plus 100 ms), so the server stops it even if this process dies;
//! * a query stopped either way returns [`QueryError::Cancelled`] with the
//!   token's reason, not a generic database error; a query whose token had
//!   already fired is never sent.
//!
//! # A cancel never reaches a later statement
//!
//! PostgreSQL's cancel request names a connection, not a statement, and the
//! server acts on it a moment after it is sent: a cancel sent just as one
//! statement completes can stop the *next* statement on that connection,
//! another request's query on a pooled connection. Nor does a statement
//! stopped by the request mean the request is done: the server's process
//! that handles it signals the backend twice, and on a busy machine the
//! second signal can stop the statement after. So a statement whose token
//! sent a cancel request **retires its connection** before it returns: the
//! backend is ended (`pg_terminate_backend`) before anything else can run
//! on it, and the statement waits until the client sees the connection
//! closed. The statement still returns its own outcome (`Cancelled`, or its
//! result if it completed first); the next statement on that client fails
//! with a closed connection, never with someone else's cancel, and a pool
//! discards the connection when it is next checked out (deadpool-postgres
//! checks `is_closed` under every recycling method) and makes a new one.
//!
//! If the statement's future is dropped after its token sent a cancel
//! request, the retiring statements are queued on the connection as the
//! future drops, behind the dropped statement and ahead of anything else.
//! A pool that hands the connection out before it has closed gives out a
//! connection whose next statement fails with a closed connection; with
//! deadpool-postgres's `RecyclingMethod::Verified` or `Clean` the recycle
//! check runs into it instead, and the pool makes a new one.
//!
//! A statement whose token does not fire pays nothing of this. One that is
//! cancelled costs its connection; inside a transaction, the transaction is
//! rolled back. [`Cancellable::cancel_timeout`] bounds the cancel request
//! and the wait for a retired connection to close.
//!
//! The cancel request is sent by a small task of the scope the query runs
//! in ([`ScopeHandle::spawn`](crate::ScopeHandle::spawn), untyped),
//! so that scope (or, if it is being dropped, its owner) does not finish
//! before the request has gone out. Only public API is used.
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

mod error;
mod settle;

use std::future::Future;
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row, ToStatement};

use crate::cancel::{CancelReason, CancellationToken, Cancelled};

pub use error::QueryError;
use settle::{stopped, CancelWatch};

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
            cancel_timeout: DEFAULT_CANCEL_TIMEOUT,
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
    cancel_timeout: Duration,
}

/// How long a cancel request may take unless told otherwise.
const DEFAULT_CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// How much later than the token's deadline the server's own
/// `statement_timeout` fires: enough for the token's cancel request to land
/// first, so the server's timer is only the backstop for a process that died.
const SERVER_TIMEOUT_MARGIN: Duration = Duration::from_millis(100);

impl<C: GenericClient + Sync + ?Sized> Cancellable<'_, C> {
    /// How long the cancel request may take to reach the server, and how
    /// long a statement waits for a retired connection to close (see the
    /// [module docs](self)); 5 s unless set. `Duration::ZERO` sends no
    /// cancel request: the statement stops at its `statement_timeout` or
    /// runs to its end. `Duration::MAX` waits without a bound.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use taskscope::postgres::PgCancelExt;
    /// # async fn run(client: tokio_postgres::Client) -> Result<(), taskscope::postgres::QueryError> {
    /// let rows = client
    ///     .cancellable()
    ///     .cancel_timeout(Duration::from_millis(500))
    ///     .query("SELECT id FROM jobs", &[])
    ///     .await?;
    /// # let _ = rows; Ok(()) }
    /// ```
    pub fn cancel_timeout(mut self, timeout: Duration) -> Self {
        self.cancel_timeout = timeout;
        self
    }

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
        let budget = self.token.remaining();
        let timeout_set = budget.is_some();
        let watch = CancelWatch::arm(client, &self.token, self.cancel_timeout, timeout_set);
        let result = match budget {
            None => statement.await,
            Some(budget) => {
                // The SET is pipelined with the statement (sent before it,
                // run before it by the server): no round trip of its own.
                let set = format!("SET statement_timeout = {}", statement_timeout_ms(budget));
                let (set, result) = tokio::join!(client.batch_execute(&set), statement);
                set.and(result)
            }
        };
        watch.settle(self.cancel_timeout).await;
        match result {
            Ok(value) => Ok(value),
            Err(error) => Err(self.judge(error, timeout_set).await),
        }
    }

    /// A statement's error: `Cancelled` if the server stopped it because of
    /// the token (its cancel request, or the `statement_timeout` set from
    /// its deadline).
    async fn judge(&self, error: tokio_postgres::Error, timeout_set: bool) -> QueryError {
        if !stopped(&error) {
            return QueryError::Db(error);
        }
        if let Some(reason) = self.token.reason() {
            return QueryError::Cancelled(Cancelled::new(reason));
        }
        if timeout_set && !stopped_by_request(&error) {
            // The server's timer, set from the token's deadline, fired
            // before the token's own (a stalled process): ours all the same.
            // The token fires within the margin; report its reason.
            let fired = tokio::time::timeout(SERVER_TIMEOUT_MARGIN, self.token.cancelled()).await;
            let reason = match fired {
                Ok(()) => self.token.reason().unwrap_or(CancelReason::Timeout),
                Err(_) => CancelReason::Timeout,
            };
            return QueryError::Cancelled(Cancelled::new(reason));
        }
        // Stopped by someone else's cancel (an administrator's
        // pg_cancel_backend, say): a database error to this caller.
        QueryError::Db(error)
    }
}

/// Whether the server stopped the statement on a cancel request rather than
/// on its `statement_timeout` (a server whose messages are translated is
/// taken to mean the timeout).
fn stopped_by_request(error: &tokio_postgres::Error) -> bool {
    error
        .as_db_error()
        .is_some_and(|db| db.message() == "canceling statement due to user request")
}

/// `statement_timeout` in milliseconds for `budget`: rounded up, plus the
/// margin, so the server's timer fires after the token's; at most what the
/// server accepts.
fn statement_timeout_ms(budget: Duration) -> u64 {
    let margin = SERVER_TIMEOUT_MARGIN.as_millis() as u64;
    let millis = budget.as_nanos().div_ceil(1_000_000);
    u64::try_from(millis)
        .unwrap_or(u64::MAX)
        .saturating_add(margin)
        .min(i32::MAX as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_timeouts_fire_after_the_token_and_fit_the_server() {
        assert_eq!(statement_timeout_ms(Duration::ZERO), 100);
        assert_eq!(statement_timeout_ms(Duration::from_nanos(1)), 101);
        assert_eq!(statement_timeout_ms(Duration::from_micros(1500)), 102);
        assert_eq!(statement_timeout_ms(Duration::from_millis(300)), 400);
        assert_eq!(statement_timeout_ms(Duration::MAX), i32::MAX as u64);
    }
}
