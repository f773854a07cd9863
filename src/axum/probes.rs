//! Health probes: `/readyz` from a [`Readiness`], `/livez` always.

use ::axum::http::StatusCode;
use ::axum::routing::get;
use ::axum::Router;

use crate::service::{Readiness, ReadyState};

/// A router answering two probes, to merge into an application's router:
///
/// * `GET /readyz`: `200 ready` while `readiness` is
///   [`Ready`](crate::service::ReadyState::Ready); `503 starting` before,
///   and `503 stopping` from the moment a shutdown begins (a
///   [`ServiceSet`](crate::service::ServiceSet) turns it off before any
///   service drains), so that a load balancer stops sending traffic;
/// * `GET /livez`: `200 alive` for as long as the server answers, shutdown
///   included, so that an orchestrator does not restart a process that is
///   only stopping.
///
/// ```
/// use axum::{routing::get, Router};
/// use taskscope::service::Readiness;
///
/// let readiness = Readiness::new();
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .merge(taskscope::axum::probes(readiness.clone()));
/// ```
pub fn probes(readiness: Readiness) -> Router {
    Router::new()
        .route(
            "/readyz",
            get(move || {
                let state = readiness.state();
                let status = if state == ReadyState::Ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                async move { (status, state.to_string()) }
            }),
        )
        .route("/livez", get(|| async { "alive" }))
}
