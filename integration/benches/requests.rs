//! What a request scope costs a request (feature `axum`): requests sent
//! in-process through an axum `Router` (no sockets, so the overhead is not
//! drowned in syscalls), bare, with the do-it-yourself alternative (a
//! tokio-util token cancelled by a drop guard in a middleware), and with
//! `RequestScopeLayer`. Run with `cargo bench -p taskscope-integration --bench requests`;
//! the run ends with the table pasted into `docs/benchmarks.md`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use criterion::Criterion;
use taskscope::axum::RequestScopeLayer;
use taskscope::remote::RequestScope;
use taskscope::BoxError;
use taskscope::CancellationToken;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken as UtilToken;
use tower_service::Service;

mod support;

use support::{listing_only, median_ns, runtime};

const GROUP: &str = "request through a router, in-process";

/// The do-it-yourself request token: a tokio-util token in the request's
/// extensions, cancelled when the request's future is dropped.
async fn util_token(mut request: Request, next: Next) -> Response {
    let token = UtilToken::new();
    let _cancel_on_drop = token.clone().drop_guard();
    request.extensions_mut().insert(token);
    next.run(request).await
}

/// Runs `future` on one of the runtime's workers, as a connection task
/// runs (`block_on` would run it on the bench's thread, and every spawned
/// task's wake-up would cross threads).
fn on_worker<T: Send + 'static>(
    rt: &Runtime,
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    rt.block_on(rt.spawn(future)).unwrap()
}

/// Sends `iters` requests to `app` one after another; the time they took.
async fn send(mut app: Router, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let response = app.call(Request::new(Body::empty())).await.unwrap();
        black_box(response);
    }
    start.elapsed()
}

/// The same, with `app` built (so its layer owned) by a scope.
async fn send_in_scope(app: impl FnOnce() -> Router, iters: u64) -> Duration {
    taskscope::scope(async |_s| Ok::<_, taskscope::Cancelled>(send(app(), iters).await))
        .await
        .unwrap()
}

fn requests(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group(GROUP);

    let bare = Router::new().route("/", get(|| async { "ok" }));
    g.bench_function("bare router", |b| {
        b.iter_custom(|iters| on_worker(&rt, send(bare.clone(), iters)))
    });

    let util = Router::new()
        .route(
            "/",
            get(|Extension(token): Extension<UtilToken>| async move {
                black_box(token);
                "ok"
            }),
        )
        .layer(middleware::from_fn(util_token));
    g.bench_function("tokio-util token + drop guard", |b| {
        b.iter_custom(|iters| on_worker(&rt, send(util.clone(), iters)))
    });

    // The layer's owner is the scope it is created in: each batch opens one.
    let ours = || {
        Router::new()
            .route(
                "/",
                get(|token: CancellationToken| async move {
                    black_box(token);
                    "ok"
                }),
            )
            .layer(RequestScopeLayer::new())
    };
    g.bench_function("taskscope RequestScopeLayer", |b| {
        b.iter_custom(|iters| on_worker(&rt, send_in_scope(ours, iters)))
    });

    let util_spawn = Router::new()
        .route(
            "/",
            get(|Extension(token): Extension<UtilToken>| async move {
                let child = token.child_token();
                let task = tokio::spawn(async move {
                    black_box(child);
                    1
                });
                task.await.unwrap().to_string()
            }),
        )
        .layer(middleware::from_fn(util_token));
    g.bench_function("tokio-util token + drop guard, one spawned task", |b| {
        b.iter_custom(|iters| on_worker(&rt, send(util_spawn.clone(), iters)))
    });

    let ours_spawn = || {
        Router::new()
            .route(
                "/",
                get(|scope: RequestScope| async move {
                    let task = scope.spawn(async { Ok::<_, BoxError>(1) });
                    task.unwrap().await.unwrap().to_string()
                }),
            )
            .layer(RequestScopeLayer::new())
    };
    g.bench_function("taskscope RequestScopeLayer, one spawned task", |b| {
        b.iter_custom(|iters| on_worker(&rt, send_in_scope(ours_spawn, iters)))
    });
    g.finish();
}

fn summary() {
    let rows = [
        "bare router",
        "tokio-util token + drop guard",
        "taskscope RequestScopeLayer",
        "tokio-util token + drop guard, one spawned task",
        "taskscope RequestScopeLayer, one spawned task",
    ];
    let bare = median_ns(GROUP, "bare router").unwrap_or(f64::NAN);
    println!("| case | time per request | over the bare router |");
    println!("|---|---:|---:|");
    for id in rows {
        let ns = median_ns(GROUP, id).unwrap_or(f64::NAN);
        println!("| {id} | {ns:.0} ns | +{:.0} ns |", ns - bare);
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .configure_from_args();
    requests(&mut c);
    c.final_summary();
    if !listing_only() {
        summary();
    }
}
