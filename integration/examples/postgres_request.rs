//! The walkthrough's last sentence, on a real database server: "When you're
//! running five database queries per request and a client disconnects
//! halfway through, you want those queries to stop."
//!
//! The example starts its own throwaway PostgreSQL (initdb into a temporary
//! directory, a server on 127.0.0.1, removed at the end; as root it runs the
//! server as the `postgres` user), serves an endpoint that runs five slow
//! queries concurrently in the request's scope, and shows what the database
//! server is running:
//!
//! 1. the client hangs up after 100 ms: with `taskscope::postgres` the five
//!    queries stop on the server;
//! 2. the same endpoint with plain tokio-postgres calls: the request's scope
//!    still cancels and joins its tasks, but dropping a query's future stops
//!    nothing on the server, and the five queries go on;
//! 3. a 300 ms request deadline: the queries run with a `statement_timeout`
//!    from the remaining budget, stop on the server, and the client gets 504.
//!
//! Run with `cargo run -p taskscope-integration --example postgres_request`.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use deadpool_postgres::Pool;
use taskscope::postgres::PgCancelExt;
use taskscope::remote::{RequestScope, RequestScopes};
use taskscope::BoxError;
use taskscope::{CancellationSource, ScopeError};
use tokio::net::TcpListener;
use tokio_postgres::NoTls;

#[path = "../tests/support/http.rs"]
mod http;
#[path = "../tests/support/postgres.rs"]
mod pg;

use pg::running;

/// The endpoint: five slow queries, one per pooled connection, run
/// concurrently in the request's scope.
async fn report(scope: RequestScope, State(app): State<Arc<App>>) -> &'static str {
    let mut queries = Vec::new();
    for i in 0..5 {
        let app = app.clone();
        queries.push(scope.spawn(async move {
            let client = app.pool.get().await.map_err(|e| Box::new(e) as BoxError)?;
            let sql = format!("SELECT pg_sleep(5) /* {} {i} */", app.marker);
            if app.cancellable {
                client.cancellable().query(&sql, &[]).await?; // one line per query
            } else {
                client.query(&sql, &[]).await?;
            }
            Ok::<_, BoxError>(())
        }));
    }
    for query in queries.into_iter().flatten() {
        let _ = query.await;
    }
    "the report"
}

struct App {
    pool: Pool,
    marker: &'static str,
    cancellable: bool,
}

/// Serves the endpoint, sends one request, and prints what the server runs
/// at each step. `hang_up` closes the connection 100 ms after the queries
/// started; otherwise the request waits for its answer.
async fn case(db: &pg::PgServer, app: App, timeout: Option<Duration>, hang_up: bool) {
    let config: tokio_postgres::Config = db.config().parse().unwrap();
    let (observer, connection) = config.connect(NoTls).await.expect("connect");
    tokio::spawn(connection);
    let marker = app.marker;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationSource::new();
    let server = {
        let stop = stop.token();
        tokio::spawn(async move {
            taskscope::scope(async |_s| {
                let mut requests = RequestScopes::new();
                if let Some(timeout) = timeout {
                    requests = requests.timeout(timeout);
                }
                let router = Router::new()
                    .route("/report", get(report))
                    .with_state(Arc::new(app));
                taskscope::axum::serve(listener, router)
                    .requests(requests)
                    .shutdown_on(&stop)
                    .into_future()
                    .await
            })
            .await
            .map_err(ScopeError::into_error)
        })
    };

    let start = Instant::now();
    let mut client = http::Client::connect(addr).await;
    let request = tokio::spawn(async move { client.get("/report").await });
    while running(&observer, marker).await < 5 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "  {:>5} ms  the server runs 5 queries",
        start.elapsed().as_millis()
    );
    if hang_up {
        tokio::time::sleep(Duration::from_millis(100)).await;
        request.abort();
        let _ = request.await;
        println!(
            "  {:>5} ms  the client hangs up",
            start.elapsed().as_millis()
        );
    } else {
        let (status, _) = request.await.unwrap();
        println!(
            "  {:>5} ms  the client gets {status}",
            start.elapsed().as_millis()
        );
    }
    let mut last = 5;
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_millis(1000) {
        let now = running(&observer, marker).await;
        if now != last {
            println!(
                "  {:>5} ms  the server runs {now} of the queries",
                start.elapsed().as_millis()
            );
            last = now;
        }
        if now == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if last > 0 {
        println!(
            "  {:>5} ms  still {last} running a second later: nothing told the database",
            start.elapsed().as_millis()
        );
        // Stop them by hand, so the server's scope can join the request.
        observer
            .execute(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity \
                 WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
                &[&marker],
            )
            .await
            .unwrap();
    }
    stop.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::main]
async fn main() {
    println!("starting a throwaway PostgreSQL server…");
    let db = pg::PgServer::start();

    println!("\n1. five queries with taskscope::postgres; the client hangs up:");
    let app = App {
        pool: db.pool(5),
        marker: "with-taskscope",
        cancellable: true,
    };
    case(&db, app, None, true).await;

    println!("\n2. the same five queries with plain tokio-postgres; the client hangs up:");
    let app = App {
        pool: db.pool(5),
        marker: "plain-tokio-postgres",
        cancellable: false,
    };
    case(&db, app, None, true).await;

    println!("\n3. five queries with taskscope::postgres under a 300 ms request deadline:");
    let app = App {
        pool: db.pool(5),
        marker: "with-deadline",
        cancellable: true,
    };
    case(&db, app, Some(Duration::from_millis(300)), false).await;

    println!("\nstopping the database server.");
}
