//! Extractors: the request's scope and token as handler parameters.

use std::fmt;

use ::axum::extract::FromRequestParts;
use ::axum::http::request::Parts;
use ::axum::http::StatusCode;
use ::axum::response::{IntoResponse, Response};

use crate::cancel::CancellationToken;
use crate::remote::RequestScope;
use crate::scope::ScopeClosed;

/// The request's [`RequestScope`] as a handler parameter: spawn work that
/// must stop when the request does.
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use taskscope::axum::RequestScopeLayer;
/// use taskscope::remote::RequestScope;
/// use taskscope::{BoxError, ScopeClosed};
/// use tower_service::Service;
///
/// async fn summary(scope: RequestScope) -> Result<String, ScopeClosed> {
///     let customer = scope.spawn(async { Ok::<_, BoxError>("Ada") })?;
///     let orders = scope.spawn(async { Ok::<_, BoxError>(3) })?;
///     Ok(match (customer.await, orders.await) {
///         (Ok(c), Ok(o)) => format!("{c}: {o} orders"),
///         _ => String::from("unavailable"),
///     })
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # taskscope::scope(async |_s| {
/// let mut app = Router::new().route("/", get(summary)).layer(RequestScopeLayer::new());
/// let response = app.call(Request::new(Body::empty())).await.unwrap();
/// let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
/// assert_eq!(body, "Ada: 3 orders");
/// # Ok::<_, taskscope::Cancelled>(())
/// # }).await.unwrap();
/// # }
/// ```
impl<S: Send + Sync> FromRequestParts<S> for RequestScope {
    type Rejection = MissingRequestScope;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestScope>()
            .cloned()
            .ok_or(MissingRequestScope)
    }
}

/// The request's token as a handler parameter, as ASP.NET Core binds a
/// `CancellationToken` parameter to `HttpContext.RequestAborted`.
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use taskscope::{axum::RequestScopeLayer, CancellationToken};
/// use tower_service::Service;
///
/// async fn handler(token: CancellationToken) -> &'static str {
///     if token.is_cancelled() { "" } else { "still wanted" }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut app = Router::new().route("/", get(handler)).layer(RequestScopeLayer::new());
/// let response = app.call(Request::new(Body::empty())).await.unwrap();
/// assert!(response.status().is_success());
/// # }
/// ```
impl<S: Send + Sync> FromRequestParts<S> for CancellationToken {
    type Rejection = MissingRequestScope;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestScope>()
            .map(|scope| scope.token())
            .ok_or(MissingRequestScope)
    }
}

/// The rejection of the [`RequestScope`] and [`CancellationToken`]
/// extractors when the request has no scope: the router is missing
/// [`RequestScopeLayer`](super::RequestScopeLayer). Answered with
/// `500 Internal Server Error`, since it is the server's mistake.
///
/// ```
/// use axum::{body::Body, http::{Request, StatusCode}, routing::get, Router};
/// use taskscope::CancellationToken;
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // No RequestScopeLayer:
/// let mut app = Router::new().route("/", get(|_token: CancellationToken| async { "" }));
/// let response = app.call(Request::new(Body::empty())).await.unwrap();
/// assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingRequestScope;

impl fmt::Display for MissingRequestScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the request has no taskscope scope: add `taskscope::axum::RequestScopeLayer` \
             to the router, or serve it with `taskscope::axum::serve`",
        )
    }
}

impl std::error::Error for MissingRequestScope {}

impl IntoResponse for MissingRequestScope {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

/// A handler that spawns into a finished scope (a `RequestScope` kept past
/// its response, a server's scope that has shut down) answers 503, so `?`
/// takes a spawn's [`ScopeClosed`] in a handler returning
/// `Result<_, ScopeClosed>`.
///
/// ```
/// use axum::response::IntoResponse;
/// let response = taskscope::ScopeClosed.into_response();
/// assert_eq!(response.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
/// ```
impl IntoResponse for ScopeClosed {
    fn into_response(self) -> Response {
        (StatusCode::SERVICE_UNAVAILABLE, self.to_string()).into_response()
    }
}
