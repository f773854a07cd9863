//! Settling a statement's cancel request, so that a cancel sent for one
//! statement can never stop a later one on the same connection.
//!
//! PostgreSQL's cancel request names a backend, not a statement, and the
//! server acts on it asynchronously: a process of its own reads the request
//! and signals the backend, which stops whatever statement it is running
//! when the signal arrives. That process signals twice (the backend, then
//! its process group), and on a busy machine the second signal can arrive
//! after the first has stopped the statement, and stop the next one. Only
//! that process's exit says it is done (libpq waits for the request's
//! connection to close), but tokio-postgres's `cancel_query` returns once
//! the request is written and does not say where the server is, so that
//! connection cannot be watched. A statement whose token sent a cancel
//! request therefore retires its connection: `pg_terminate_backend` runs
//! on it before anything else can, so the next statement finds a closed
//! connection (a pool's check discards it), never a stray cancel:
//!
//! * after the statement's outcome, the retiring statement runs, again if a
//!   cancel lands on it, until the backend has ended, and the statement
//!   waits (bounded) until the client sees its connection closed;
//! * if the statement's future is dropped, the retiring statements are
//!   queued on the connection from `drop`, behind the dropped statement and
//!   ahead of anything the connection is given next.
//!
//! # Invariants
//!
//! 1. A cancel request was sent exactly when the `on_cancel` callback that
//!    sends it ran or is running: `Registration::unregister` returning
//!    `true` means it never did and never will.
//! 2. When a cancel request was sent, the retiring statement is queued on
//!    the connection before the statement returns or its future finishes
//!    dropping, once more than the request can signal. tokio-postgres sends a
//!    connection's requests in the order they were queued, so nothing runs
//!    on that backend after the first retiring statement that is not
//!    cancelled.
//! 3. A `statement_timeout` set for the statement is reset before the
//!    connection is given anything else, or dies with the retired backend.

use std::time::Duration;

use futures_util::FutureExt;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use crate::cancel::{CancellationToken, Registration};
use crate::scope::{current_scope, AnyScope};

/// Ends the connection's backend. Queued behind a statement whose cancel
/// may still be on its way, it runs before anything else can.
const RETIRE: &str = "SELECT pg_terminate_backend(pg_backend_pid())";

/// Clears the `statement_timeout` a statement was run under.
const RESET_TIMEOUT: &str = "RESET statement_timeout";

/// How many signals one cancel request can send the backend: each can stop
/// one retiring statement, so one more retiring statement than this always
/// ends it.
const SIGNALS_PER_REQUEST: usize = 2;

/// A statement's watch over its cancel request, from before the statement
/// is sent until its cancel is settled (see the module docs).
pub(super) struct CancelWatch<'c> {
    client: &'c Client,
    /// The callback that sends the request; `None` once disarmed, or if no
    /// request is ever to be sent.
    registration: Option<Registration>,
    /// The statement runs under a `statement_timeout` of its own.
    timeout_set: bool,
    /// `settle` ran: nothing is left for `drop` to do.
    settled: bool,
}

impl<'c> CancelWatch<'c> {
    /// Sends a cancel request for `client`'s running statement when `token`
    /// fires (none if `timeout` is zero), until the watch settles or drops.
    /// `timeout_set`: the statement runs under a `statement_timeout` of its
    /// own.
    pub(super) fn arm(
        client: &'c Client,
        token: &CancellationToken,
        timeout: Duration,
        timeout_set: bool,
    ) -> Self {
        let registration = (!timeout.is_zero()).then(|| {
            let request = CancelRequest {
                cancel: client.cancel_token(),
                scope: current_scope(),
                runtime: tokio::runtime::Handle::try_current().ok(),
                timeout,
            };
            token.on_cancel(move |_| request.send())
        });
        CancelWatch {
            client,
            registration,
            timeout_set,
            settled: false,
        }
    }

    /// Stops sending cancels; true if one was sent (invariant 1).
    fn disarm(&mut self) -> bool {
        self.registration
            .take()
            .is_some_and(|registration| !registration.unregister())
    }

    /// Settles the statement's cancel once its outcome has arrived: retires
    /// the connection if a cancel request was sent (waiting at most `bound`
    /// for it to close), else resets its `statement_timeout`.
    pub(super) async fn settle(mut self, bound: Duration) {
        self.settled = true;
        if self.disarm() {
            retire(self.client, bound).await;
        } else if self.timeout_set {
            // Best effort: on a failed connection there is nothing to reset.
            let _ = self.client.batch_execute(RESET_TIMEOUT).await;
        }
    }
}

impl Drop for CancelWatch<'_> {
    /// The statement's future was dropped before its outcome arrived: the
    /// statement may still be running, its cancel on its way.
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if self.disarm() {
            tracing::debug!("a cancelled statement was dropped: retiring its connection");
            for _ in 0..=SIGNALS_PER_REQUEST {
                queue(self.client, RETIRE);
            }
        } else if self.timeout_set {
            queue(self.client, RESET_TIMEOUT);
        }
    }
}

/// Whether `error` is the server stopping a statement on a signal: a cancel
/// request, or a `statement_timeout` (the code is the same).
pub(super) fn stopped(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::QUERY_CANCELED)
}

/// Ends the connection's backend, and waits (at most `bound`) until the
/// client sees its connection closed, so that a pool's check sees it too.
async fn retire(client: &Client, bound: Duration) {
    tracing::debug!("a cancel request was sent: retiring the connection");
    let closed = async {
        for _ in 0..=SIGNALS_PER_REQUEST {
            match client.simple_query(RETIRE).await {
                // A signal of the request stopped the retiring statement:
                // the backend lives; retire it again.
                Err(error) if stopped(&error) => continue,
                _ => break,
            }
        }
        // Answered once the connection has closed (an error), at once if it
        // already has.
        if client.simple_query("").await.is_ok() {
            tracing::warn!(
                "could not end a PostgreSQL backend after cancelling its statement \
                 (is pg_terminate_backend allowed?): its next statement may be cancelled"
            );
        }
    };
    // Past the bound the retiring statements are still queued first
    // (invariant 2): the connection is retired all the same.
    let _ = tokio::time::timeout(bound, closed).await;
}

/// Queues `sql` on the connection at once, without waiting for its answer.
fn queue(client: &Client, sql: &str) {
    // tokio-postgres queues a simple query when its future is first polled,
    // before it waits for anything; the answer is discarded.
    match client.simple_query_raw(sql).now_or_never() {
        Some(_) => {}
        None => tracing::warn!("could not queue `{sql}` on a PostgreSQL connection"),
    }
}

/// What the `on_cancel` callback needs to send a cancel request.
struct CancelRequest {
    cancel: tokio_postgres::CancelToken,
    scope: Option<AnyScope>,
    runtime: Option<tokio::runtime::Handle>,
    timeout: Duration,
}

impl CancelRequest {
    /// Sends the request from a task of the statement's scope, so the scope
    /// is not finished before it has gone out; outside any scope (or once
    /// the scope has closed) from a plain task on the statement's runtime.
    fn send(self) {
        let CancelRequest {
            cancel,
            scope,
            runtime,
            timeout,
        } = self;
        let request = move || async move {
            // The server says nothing back; a request that cannot be sent
            // leaves the statement_timeout (if any) as the backstop.
            let _ = tokio::time::timeout(timeout, cancel.cancel_query(NoTls)).await;
        };
        if let Some(scope) = scope {
            if scope.spawn(request.clone()()).is_ok() {
                return;
            }
        }
        if let Some(runtime) = runtime {
            drop(runtime.spawn(request()));
        }
    }
}
