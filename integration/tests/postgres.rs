//! Queries cancelled *on the server*, against a real PostgreSQL the test
//! starts itself (127.0.0.1, an ephemeral port, removed afterwards): the
//! .NET walkthrough's "five queries per request and the client disconnects".
//!
//! Bounds on time are generous (seconds, where the server takes
//! milliseconds): the measured times are in docs/benchmarks.md.
#![cfg(not(loom))]

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use deadpool_postgres::Pool;
use taskscope::axum::RequestScopeLayer;
use taskscope::postgres::{PgCancelExt, QueryError};
use taskscope::remote::RequestScope;
use taskscope::BoxError;
use taskscope::{CancelReason, CancellationSource, Cancelled};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_postgres::{Client, NoTls};

#[path = "support/http.rs"]
mod http;
#[path = "support/postgres.rs"]
mod pg;

use http::Client as HttpClient;
use pg::{running, PgServer};

/// One server for the whole file: starting one takes a second or two.
fn server() -> &'static PgServer {
    static SERVER: std::sync::OnceLock<PgServer> = std::sync::OnceLock::new();
    SERVER.get_or_init(PgServer::start)
}

async fn connect() -> Client {
    let (client, connection) = tokio_postgres::connect(&server().config(), NoTls)
        .await
        .expect("cannot connect to the test server");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

fn pool(size: usize) -> Pool {
    server().pool(size)
}

/// Waits until the server runs no statement mentioning `marker` and says
/// how long that took; fails after `bound`.
async fn until_stopped(observer: &Client, marker: &str, bound: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if running(observer, marker).await == 0 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < bound,
            "the server still runs `{marker}` after {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the server runs `count` statements mentioning `marker`.
async fn until_running(observer: &Client, marker: &str, count: i64) {
    let start = Instant::now();
    while running(observer, marker).await < count {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "`{marker}` never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fired_token_stops_the_query_on_the_server_and_says_why() {
    let (client, observer) = (connect().await, connect().await);
    let user = CancellationSource::new();
    let token = user.token();
    let query = tokio::spawn(async move {
        client
            .until_cancelled(&token)
            .query("SELECT pg_sleep(60) /* fired-token */", &[])
            .await
    });
    until_running(&observer, "fired-token", 1).await;
    user.cancel_with(CancelReason::message("user pressed stop"));
    let err = query.await.unwrap().unwrap_err();
    let cancelled = err
        .cancelled()
        .expect("a cancellation, not a database error");
    assert_eq!(
        cancelled.reason(),
        &CancelReason::message("user pressed stop")
    );
    until_stopped(&observer, "fired-token", Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_whose_token_already_fired_is_never_sent() {
    let client = connect().await;
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS never_sent (n int)")
        .await
        .unwrap();
    let user = CancellationSource::new();
    user.cancel();
    let err = client
        .until_cancelled(&user.token())
        .execute("INSERT INTO never_sent VALUES (1)", &[])
        .await
        .unwrap_err();
    assert!(err.cancelled().is_some());
    let rows: i64 = client
        .query_one("SELECT count(*) FROM never_sent", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_sets_statement_timeout_for_the_statement_only() {
    let client = connect().await;
    let request = CancellationSource::with_timeout(Duration::from_millis(300));
    let row = client
        .until_cancelled(&request.token())
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap();
    let shown: String = row.get(0);
    let ms: u64 = shown.trim_end_matches("ms").parse().unwrap();
    // A little past the token's deadline, so the token's cancel lands first.
    assert!((300..=400).contains(&ms), "statement_timeout was {shown}");
    // Reset afterwards: the connection keeps no timeout of the request's.
    let after: String = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_stops_the_query_and_the_error_says_timeout() {
    let (client, observer) = (connect().await, connect().await);
    let request = CancellationSource::with_timeout(Duration::from_millis(300));
    let err = client
        .until_cancelled(&request.token())
        .query("SELECT pg_sleep(60) /* deadline */", &[])
        .await
        .unwrap_err();
    assert!(err.cancelled().unwrap().is_timeout(), "{err}");
    until_stopped(&observer, "deadline", Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_replaces_the_connection_of_a_cancelled_query() {
    let pool = pool(1);
    let user = CancellationSource::new();
    let cancel_soon = {
        let user = CancellationSource::linked([&user.token()]);
        user.cancel_after(Duration::from_millis(200));
        user
    };
    let cancelled_backend: i32 = {
        let connection = pool.get().await.unwrap();
        let backend = connection
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let err = connection
            .until_cancelled(&cancel_soon.token())
            .query("SELECT pg_sleep(60)", &[])
            .await
            .unwrap_err();
        assert!(err.cancelled().is_some());
        // Retired: nothing can run on it any more, so no late signal of the
        // cancel request can reach another statement.
        assert!(connection.is_closed());
        backend
    };
    // The pool's only slot, with a new connection.
    let connection = pool.get().await.unwrap();
    let row = connection
        .query_one("SELECT 6 * 7, pg_backend_pid()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    assert_ne!(row.get::<_, i32>(1), cancelled_backend);
    let timeout: String = connection
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(timeout, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_whose_token_never_fired_keeps_its_connection() {
    let client = connect().await;
    let user = CancellationSource::with_timeout(Duration::from_secs(60));
    for _ in 0..3 {
        let row = client
            .until_cancelled(&user.token())
            .query_one("SELECT 6 * 7", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 42);
    }
    assert!(!client.is_closed());
    let timeout: String = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(timeout, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_cancel_timeout_sends_nothing_and_max_waits_without_bound() {
    // ZERO: no cancel request; the statement runs to its end and the
    // connection is kept (nothing can be on its way).
    let client = connect().await;
    let token = fires_after(Duration::from_millis(50));
    let started = Instant::now();
    let row = client
        .until_cancelled(&token)
        .cancel_timeout(Duration::ZERO)
        .query_one("SELECT 1 FROM pg_sleep(0.3)", &[])
        .await
        .expect("no cancel was sent, so the statement completes");
    assert_eq!(row.get::<_, i32>(0), 1);
    assert!(token.is_cancelled());
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(!client.is_closed());
    // MAX: the default behaviour, with no bound on the request or the wait
    // for the retired connection.
    let token = fires_after(Duration::from_millis(50));
    let err = client
        .until_cancelled(&token)
        .cancel_timeout(Duration::MAX)
        .query_one("SELECT pg_sleep(60)", &[])
        .await
        .unwrap_err();
    assert!(err.cancelled().is_some(), "{err:?}");
    assert!(client.is_closed(), "retired after its cancel request");
}

/// The .NET walkthrough's endpoint: five slow queries run concurrently in the request's
/// scope; `cancellable` decides whether they stop on the server.
fn five_queries(pool: Pool, marker: &'static str, cancellable: bool) -> Router {
    Router::new()
        .route(
            "/report",
            get(
                move |scope: RequestScope, State(pool): State<Arc<Pool>>| async move {
                    let mut queries = Vec::new();
                    for i in 0..5 {
                        let pool = Pool::clone(&pool);
                        queries.push(scope.spawn(async move {
                            let client = pool.get().await.map_err(|e| Box::new(e) as BoxError)?;
                            let sql = format!("SELECT pg_sleep(30) /* {marker} {i} */");
                            if cancellable {
                                client.cancellable().query(&sql, &[]).await?;
                            } else {
                                client.query(&sql, &[]).await?;
                            }
                            Ok::<_, BoxError>(())
                        }));
                    }
                    for query in queries.into_iter().flatten() {
                        let _ = query.await;
                    }
                    "report"
                },
            ),
        )
        .with_state(Arc::new(pool))
        .layer(RequestScopeLayer::new())
}

/// A server running the five-query endpoint; the request was sent, the
/// five queries are running on the database, and the client hung up 100 ms
/// later. Returns the source that stops the server, and its task.
async fn request_then_hang_up(
    observer: &Client,
    marker: &'static str,
    cancellable: bool,
) -> (
    CancellationSource,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationSource::new();
    let server = {
        let (stop, pool) = (stop.token(), pool(5));
        tokio::spawn(async move {
            taskscope::scope(async |_s| {
                let app = five_queries(pool, marker, cancellable);
                taskscope::axum::serve(listener, app)
                    .shutdown_on(&stop)
                    .into_future()
                    .await
            })
            .await
            .map_err(taskscope::ScopeError::into_error)
        })
    };
    let mut client = HttpClient::connect(addr).await;
    let request = tokio::spawn(async move {
        client.get("/report").await;
    });
    until_running(observer, marker, 5).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    request.abort(); // the client hangs up
    let _ = request.await;
    (stop, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_stops_all_five_queries_on_the_server() {
    let observer = connect().await;
    let (stop, server) = request_then_hang_up(&observer, "leaves-cancellable", true).await;
    let took = until_stopped(&observer, "leaves-cancellable", Duration::from_secs(5)).await;
    println!("the five queries stopped {took:?} after the client left");
    stop.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_futures_alone_leaves_the_queries_running_on_the_server() {
    // The contrast: the same endpoint with plain queries. The request scope
    // cancels and joins its tasks, but a dropped tokio-postgres future
    // stops nothing on the server.
    let observer = connect().await;
    let (stop, server) = request_then_hang_up(&observer, "leaves-plain", false).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        running(&observer, "leaves-plain").await,
        5,
        "plain queries should have kept running"
    );
    // Clean up what the plain queries left behind, so the server's scope
    // (which joins the request's tasks) can finish.
    observer
        .execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity \
             WHERE query LIKE '%leaves-plain%' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    until_stopped(&observer, "leaves-plain", Duration::from_secs(10)).await;
    stop.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_deadline_stops_all_five_queries_and_the_errors_say_timeout() {
    let observer = connect().await;
    let pool = pool(5);
    let (errors_tx, mut errors) = mpsc::unbounded_channel::<QueryError>();
    let result = taskscope::ScopeBuilder::new()
        .timeout(Duration::from_millis(300))
        .run(async |s| {
            for i in 0..5 {
                let (pool, errors_tx) = (pool.clone(), errors_tx.clone());
                s.spawn(async move {
                    let client = pool.get().await.unwrap();
                    let sql = format!("SELECT pg_sleep(30) /* request-deadline {i} */");
                    if let Err(err) = client.cancellable().query(&sql, &[]).await {
                        errors_tx.send(err).unwrap();
                    }
                    Ok::<_, Cancelled>(())
                });
            }
            Ok::<_, Cancelled>(())
        })
        .await;
    assert!(result.is_ok());
    drop(errors_tx);
    let mut seen = 0;
    while let Some(err) = errors.recv().await {
        assert!(err.cancelled().unwrap().is_timeout(), "{err}");
        seen += 1;
    }
    assert_eq!(seen, 5);
    assert_eq!(running(&observer, "request-deadline").await, 0);
}

/// A small deterministic generator for the moments cancels fire at.
struct Moments(u64);

impl Moments {
    fn new(seed: u64) -> Moments {
        Moments(seed | 1)
    }

    /// A duration in `0..max`, in microseconds.
    fn next(&mut self, max: Duration) -> Duration {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        Duration::from_micros(x % max.as_micros() as u64)
    }
}

/// A token that fires after `delay`, from a thread of its own so the moment
/// is not rounded to the timer's millisecond.
fn fires_after(delay: Duration) -> taskscope::CancellationToken {
    let source = CancellationSource::new();
    let token = source.token();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        source.cancel();
    });
    token
}

/// Whether `err` is the server's "canceling statement" error.
fn is_57014(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
}

/// Runs the short cancellable statement of the cycle tests under `token`;
/// whether it was cancelled. Any database error fails the test: a stray
/// cancel would show as one.
async fn short_statement(
    client: &(impl PgCancelExt + ?Sized),
    token: &taskscope::CancellationToken,
    cycle: i32,
) -> bool {
    match client
        .until_cancelled(token)
        .query_one("SELECT pg_sleep(0.002)", &[])
        .await
    {
        Ok(_) => false,
        Err(QueryError::Cancelled(_)) => true,
        Err(err) => panic!("cycle {cycle}: a cancellable statement failed with {err:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_never_reaches_the_next_statement_on_one_client() {
    // A short statement whose token fires before, during or just after it
    // completes, then at once an unrelated statement on the same client.
    let mut moments = Moments::new(0x5eed_0019);
    let mut client = connect().await;
    let (mut cancelled, mut retired) = (0, 0);
    for cycle in 0..300 {
        let token = fires_after(moments.next(Duration::from_millis(6)));
        cancelled += usize::from(short_statement(&client, &token, cycle).await);
        if client.is_closed() {
            // The statement's cancel could not be shown to have landed: the
            // connection was retired rather than risk the next statement.
            retired += 1;
            client = connect().await;
        }
        let next: i32 = match client.query_one("SELECT $1::int + 1", &[&cycle]).await {
            Ok(row) => row.get(0),
            Err(err) if is_57014(&err) => {
                panic!("cycle {cycle}: a cancel reached the next statement: {err:?}")
            }
            Err(err) => panic!("cycle {cycle}: the next statement failed: {err:?}"),
        };
        assert_eq!(next, cycle + 1);
    }
    println!("300 cycles: {cancelled} cancelled, {retired} connections retired");
    assert!(
        cancelled > 0,
        "no cycle was cancelled: the moments are wrong"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_never_reaches_the_next_user_of_a_pooled_connection() {
    // The case, 1,000 times: a pool of one connection, a cancel at
    // a random moment around the statement's completion, and another
    // request's statement on the same connection right after.
    let pool = pool(1);
    let mut moments = Moments::new(0x00c0_ffee);
    let started = Instant::now();
    let (mut cancelled, mut retired) = (0, 0);
    for cycle in 0..1000 {
        let token = fires_after(moments.next(Duration::from_millis(5)));
        {
            let connection = pool.get().await.unwrap();
            cancelled += usize::from(short_statement(&**connection, &token, cycle).await);
            retired += usize::from(connection.is_closed());
        }
        let connection = pool.get().await.unwrap();
        match connection.query_one("SELECT $1::int * 2", &[&cycle]).await {
            Ok(row) => assert_eq!(row.get::<_, i32>(0), cycle * 2),
            Err(err) => panic!("cycle {cycle}: another request's statement failed: {err:?}"),
        }
    }
    println!(
        "1000 cycles in {:?}: {cancelled} cancelled, {retired} connections retired",
        started.elapsed()
    );
    assert!(
        cancelled > 0,
        "no cycle was cancelled: the moments are wrong"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_statement_never_leaves_its_cancel_to_the_next_user() {
    // A handler whose future is dropped when its request's token fires (the
    // client left): the statement is dropped mid-flight, its cancel is on
    // its way, and the connection goes straight back to the pool.
    let pool = pool(1);
    let mut moments = Moments::new(0x0d20_9bed);
    for cycle in 0..300 {
        let token = fires_after(moments.next(Duration::from_millis(5)));
        {
            let connection = pool.get().await.unwrap();
            let queries = connection.until_cancelled(&token);
            let statement = queries.query_one("SELECT pg_sleep(0.002)", &[]);
            tokio::select! {
                result = statement => match result {
                    Ok(_) | Err(QueryError::Cancelled(_)) => {}
                    Err(err) => panic!("cycle {cycle}: a cancellable statement failed with {err:?}"),
                },
                () = token.cancelled() => {} // the statement's future is dropped
            }
        }
        let connection = pool.get().await.unwrap();
        match connection.query_one("SELECT $1::int - 1", &[&cycle]).await {
            Ok(row) => assert_eq!(row.get::<_, i32>(0), cycle - 1),
            Err(err) => panic!("cycle {cycle}: another request's statement failed: {err:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_librarys_own_statement_timeout_is_always_a_timeout() {
    // Deadlines at and around whole milliseconds: whichever of the token's
    // timer and the server's statement_timeout fires first, the caller
    // sees its token's timeout, never a database error.
    let mut client = connect().await;
    for cycle in 0..200_u64 {
        if client.is_closed() {
            client = connect().await; // retired after a race (see above)
        }
        let budget = Duration::from_micros(
            1_000 * (1 + cycle % 20) + [0, 1, 499, 500, 999][(cycle % 5) as usize],
        );
        let request = CancellationSource::with_timeout(budget);
        let err = client
            .until_cancelled(&request.token())
            .query_one("SELECT pg_sleep(30)", &[])
            .await
            .unwrap_err();
        let cancelled = err
            .cancelled()
            .unwrap_or_else(|| panic!("budget {budget:?}: {err:?}"));
        assert!(cancelled.is_timeout(), "budget {budget:?}: {cancelled}");
    }
}
