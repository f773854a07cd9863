//! The server behind the loopback HTTP comparison in `docs/benchmarks.md`:
//! one route answering `ok`, served bare, with a do-it-yourself request
//! token (tokio-util's, cancelled by a drop guard), or through
//! `taskscope::axum::serve` with the handler taking the request's token.
//!
//! ```text
//! cargo build --release --example http_overhead --features axum
//! taskset -c 0 target/release/examples/http_overhead scope 127.0.0.1:8099 &
//! taskset -c 1 wrk -t1 -c32 -d5s http://127.0.0.1:8099/
//! ```
//!
//! Modes: `bare`, `util`, `layer` (`RequestScopeLayer` under plain
//! `axum::serve`), `scope`. One worker thread, so the server and the
//! load generator each have a core of their own on a 2-core machine.

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use taskscope::CancellationToken;
use tokio_util::sync::CancellationToken as UtilToken;

/// The do-it-yourself request token: cancelled when the request's future is
/// dropped, and nothing more.
async fn util_token(mut request: Request, next: Next) -> Response {
    let token = UtilToken::new();
    let _cancel_on_drop = token.clone().drop_guard();
    request.extensions_mut().insert(token);
    next.run(request).await
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "scope".into());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8099".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("{mode}: serving http://{addr}/");
        match mode.as_str() {
            "bare" => {
                let app = Router::new().route("/", get(|| async { "ok" }));
                axum::serve(listener, app).await
            }
            "util" => {
                let app = Router::new()
                    .route(
                        "/",
                        get(|Extension(_token): Extension<UtilToken>| async { "ok" }),
                    )
                    .layer(middleware::from_fn(util_token));
                axum::serve(listener, app).await
            }
            "layer" => {
                // The layer alone, under plain `axum::serve` (no drain).
                taskscope::scope(async |_s| {
                    let app = Router::new()
                        .route("/", get(|_token: CancellationToken| async { "ok" }))
                        .layer(taskscope::axum::RequestScopeLayer::new());
                    axum::serve(listener, app).await
                })
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
            }
            "scope" => {
                let app = Router::new().route("/", get(|_token: CancellationToken| async { "ok" }));
                taskscope::axum::serve(listener, app).await
            }
            other => Err(std::io::Error::other(format!(
                "unknown mode {other:?}: bare, util, layer or scope"
            ))),
        }
    })
}
