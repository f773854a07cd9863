//! Three services that depend on each other, under `#[taskscope::main]`:
//! a database pool, a periodic sync that uses it, and an HTTP server (axum)
//! with `/readyz` and `/livez` probes.
//!
//! They start in dependency order — each `start` waits until the service
//! says it is ready — and on Ctrl-C (SIGINT or SIGTERM) they stop in
//! reverse order, in phases: `/readyz` turns 503 at once; 300 ms later the
//! HTTP server drains (stops accepting, lets requests in flight finish);
//! then each service in turn is cancelled and given its grace period. The
//! process exits 0.
//!
//! `cargo run --features axum --example services -- exhaust` adds a worker
//! that fails on every run: after three restarts with exponential backoff
//! its budget is spent, the others are stopped in order, and the process
//! exits 1.

use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use taskscope::service::{Backoff, Readiness, Service, ServiceContext, ServiceError, Services};

/// The pool every other service needs: ready once "connected".
async fn database(ctx: ServiceContext<String>) -> io::Result<()> {
    tokio::time::sleep(Duration::from_millis(100)).await; // connecting
    println!("database: connected");
    ctx.ready("postgres://127.0.0.1/app".to_owned());
    ctx.token().cancelled().await;
    println!("database: cancelled; pool closed");
    Ok(())
}

/// A periodic job that uses the pool.
async fn sync(pool: String) -> io::Result<()> {
    println!("sync: syncing through {pool}");
    Ok(())
}

/// The HTTP server: ready with its bound address; drains when told.
async fn http(ctx: ServiceContext<SocketAddr>, readiness: Readiness) -> io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    ctx.ready(listener.local_addr()?);
    let app = Router::new()
        .route("/", get(|| async { "hello\n" }))
        .merge(taskscope::axum::probes(readiness));
    let draining = ctx.draining();
    let announce = async {
        draining.cancelled().await;
        let reason = draining.reason().unwrap_or_default();
        println!("http: draining ({reason}); /readyz already says 503");
    };
    let serve = taskscope::axum::serve(listener, app)
        .shutdown_on(&draining)
        .drain_period(Duration::from_secs(2));
    let (served, ()) = tokio::join!(serve.into_future(), announce);
    served?;
    println!("http: stopped");
    Ok(())
}

/// A worker whose upstream is gone: it fails on every run.
async fn worker(ctx: ServiceContext) -> io::Result<()> {
    println!("worker: run {} failed: queue unreachable", ctx.attempt());
    Err(io::Error::other("queue unreachable"))
}

#[taskscope::main(shutdown_grace = "10s")]
async fn main() -> Result<(), ServiceError> {
    let exhaust = std::env::args().any(|arg| arg == "exhaust");
    Services::new()
        .unready_delay(Duration::from_millis(300))
        .run(async |services| {
            let pool = services.start(Service::new("database"), database).await?;
            let every = Service::new("sync").every(Duration::from_secs(1));
            services.spawn(every, move |_| sync(pool.clone()));
            if exhaust {
                let worker_service = Service::new("worker")
                    .backoff(Backoff::exponential(Duration::from_millis(50)))
                    .budget(3, Duration::from_secs(60));
                services.spawn(worker_service, worker);
            }
            let readiness = services.readiness();
            let server = Service::new("http").drain(Duration::from_secs(2));
            let addr = services
                .start(server, move |ctx| http(ctx, readiness.clone()))
                .await?;
            println!("ready: http://{addr}/ (and /readyz, /livez); press Ctrl-C to stop");
            Ok(())
        })
        .await?;
    println!("all services stopped");
    Ok(())
}
