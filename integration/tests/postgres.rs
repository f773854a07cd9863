//! Queries cancelled *on the server*, against a real PostgreSQL the test
//! starts itself (127.0.0.1, an ephemeral port, removed afterwards): the
//! seed's "five queries per request and the client disconnects".
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
use taskscope::axum::{BoxError, RequestScope, RequestScopeLayer};
use taskscope::postgres::{PgCancelExt, QueryError};
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
    assert!((1..=300).contains(&ms), "statement_timeout was {shown}");
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
async fn a_pooled_connection_is_usable_after_its_query_was_cancelled() {
    let pool = pool(1);
    let user = CancellationSource::new();
    let cancel_soon = {
        let user = CancellationSource::linked([&user.token()]);
        user.cancel_after(Duration::from_millis(200));
        user
    };
    {
        let connection = pool.get().await.unwrap();
        let err = connection
            .until_cancelled(&cancel_soon.token())
            .query("SELECT pg_sleep(60)", &[])
            .await
            .unwrap_err();
        assert!(err.cancelled().is_some());
    }
    // The pool's only connection, back from the cancel.
    let connection = pool.get().await.unwrap();
    let answer: i32 = connection
        .query_one("SELECT 6 * 7", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(answer, 42);
    let timeout: String = connection
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(timeout, "0");
}

/// The seed's endpoint: five slow queries run concurrently in the request's
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
                    for query in queries {
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
