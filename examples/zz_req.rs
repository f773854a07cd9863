//! profiling only
use axum::body::Body;
use axum::extract::Request;
use axum::routing::get;
use axum::Router;
use std::hint::black_box;
use taskscope::axum::RequestScopeLayer;
use taskscope::CancellationToken;
use tower_service::Service;
fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().unwrap())
        .unwrap_or(200_000);
    rt.block_on(async {
        taskscope::scope(async |_s| {
            let mut app = Router::new()
                .route(
                    "/",
                    get(|token: CancellationToken| async move {
                        black_box(token);
                        "ok"
                    }),
                )
                .layer(RequestScopeLayer::new());
            for _ in 0..n {
                let response = app.call(Request::new(Body::empty())).await.unwrap();
                black_box(response);
            }
            Ok::<_, taskscope::Cancelled>(())
        })
        .await
        .unwrap();
    });
}
