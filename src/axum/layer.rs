//! The tower layer that opens one scope per request.
//!
//! A thin adapter over [`RequestScopes`], the core every server
//! integration shares ([`RequestScopes::open_http`] reads the headers and
//! puts the [`RequestScope`] in the request's extensions): it names the
//! request and says a [`Refusal`] in HTTP. Only the public API is used: an integration for another framework
//! can be written the same way.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::axum::http::{Request, StatusCode};
use ::axum::response::{IntoResponse, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::cancel::CancelReason;
use crate::remote::{Refusal, RequestFuture, RequestScope, RequestScopes};

/// A [tower layer](tower_layer::Layer) that runs every request in its own
/// [`Scope`](crate::Scope), nested in the scope the layer was created in.
///
/// The handler runs as the request scope's body: [`taskscope::token()`](crate::token)
/// is the request's token there, and the [`RequestScope`] and
/// [`CancellationToken`](crate::CancellationToken) extractors hand the scope and token to handlers.
/// The token fires with [`CancelReason::ClientDisconnected`] if hyper drops
/// the request's future (the client went away), and when the owner scope (or
/// the [`parent`](RequestScopes::parent) token) is cancelled.
///
/// A request whose scope fails (a task it spawned returned an error) is
/// answered `500 Internal Server Error`; one that runs past its
/// [`timeout`](RequestScopes::timeout) or its caller's deadline `504
/// Gateway Timeout`; one that arrives after the owner scope has finished
/// `503 Service Unavailable` (see [`Refusal`]).
/// A request that already has a scope (the layer was applied twice) keeps it.
///
/// [`serve`](super::serve) adds this layer itself; add it by hand to serve
/// with something else.
///
/// # Examples
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use taskscope::axum::RequestScopeLayer;
/// use taskscope::remote::RequestScope;
/// use tower_service::Service;
///
/// async fn handler(scope: RequestScope) -> Result<String, taskscope::ScopeClosed> {
///     let task = scope.spawn(async { Ok::<_, taskscope::BoxError>(6 * 7) })?;
///     Ok(task.await.map_or_else(|e| e.to_string(), |n| n.to_string()))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// taskscope::scope(async |_s| {
///     // Created inside the scope that owns (joins) the requests.
///     let mut app = Router::new()
///         .route("/", get(handler))
///         .layer(RequestScopeLayer::new());
///     let response = app.call(Request::new(Body::empty())).await.unwrap();
///     assert!(response.status().is_success());
///     Ok::<_, taskscope::Cancelled>(())
/// })
/// .await
/// .unwrap();
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct RequestScopeLayer {
    scopes: RequestScopes,
}

impl RequestScopeLayer {
    /// A layer whose request scopes nest in the current scope (the scope
    /// whose body or task this is called from, [`current_scope`](crate::current_scope)):
    /// that scope joins every request's work, and cancelling it cancels
    /// every request. Outside any scope the request scopes are roots. For
    /// a timeout, a caller's deadline or a grace period, build it
    /// [`from`](#impl-From%3CRequestScopes%3E-for-RequestScopeLayer)
    /// [`RequestScopes`].
    ///
    /// ```
    /// use taskscope::axum::RequestScopeLayer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |_s| {
    ///     let app = axum::Router::<()>::new().layer(RequestScopeLayer::new());
    ///     # drop(app);
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn new() -> Self {
        RequestScopeLayer::from(RequestScopes::new())
    }
}

/// A layer opening request scopes as `scopes` says: a timeout, the
/// caller's deadline, a grace period, a parent token.
///
/// ```
/// use std::time::Duration;
/// use axum::{body::Body, http::{Request, StatusCode}, routing::get, Router};
/// use taskscope::axum::RequestScopeLayer;
/// use taskscope::remote::{Inbound, RequestScopes};
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let scopes = RequestScopes::new().deadline_from(Inbound::http()).timeout(Duration::from_secs(30));
/// let mut app = Router::new()
///     .route("/", get(|| async { taskscope::token().remaining().is_some().to_string() }))
///     .layer(RequestScopeLayer::from(scopes));
/// let request = Request::get("/").header("x-request-budget-ms", "250").body(Body::empty()).unwrap();
/// let response = app.call(request).await.unwrap();
/// let body = axum::body::to_bytes(response.into_body(), 16).await.unwrap();
/// assert_eq!(body, "true"); // the handler's token has the caller's deadline
///
/// // Refused without running the handler: nothing left, or a header that cannot be read.
/// let expired = Request::get("/").header("x-request-budget-ms", "0").body(Body::empty()).unwrap();
/// assert_eq!(app.call(expired).await.unwrap().status(), StatusCode::GATEWAY_TIMEOUT);
/// let garbage = Request::get("/").header("x-request-budget-ms", "-1").body(Body::empty()).unwrap();
/// assert_eq!(app.call(garbage).await.unwrap().status(), StatusCode::BAD_REQUEST);
/// # }
/// ```
impl From<RequestScopes> for RequestScopeLayer {
    fn from(scopes: RequestScopes) -> Self {
        RequestScopeLayer { scopes }
    }
}

impl<S> Layer<S> for RequestScopeLayer {
    type Service = RequestScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestScopeService {
            inner,
            settings: Arc::new(self.clone()),
        }
    }
}

/// The service [`RequestScopeLayer`] wraps around a router or handler.
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use taskscope::axum::RequestScopeLayer;
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let router = Router::new().route("/", get(|| async { taskscope::token().is_cancelled().to_string() }));
/// let mut service = RequestScopeLayer::new().layer(router);
/// let response = service.call(Request::new(Body::empty())).await.unwrap();
/// let body = axum::body::to_bytes(response.into_body(), 64).await.unwrap();
/// assert_eq!(body, "false"); // the handler saw the request's token
/// # }
/// ```
#[derive(Clone)]
pub struct RequestScopeService<S> {
    inner: S,
    settings: Arc<RequestScopeLayer>,
}

impl<S> fmt::Debug for RequestScopeService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestScopeService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for RequestScopeService<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Response: IntoResponse + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequestFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Call the instance that was polled ready; keep a fresh clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if request.extensions().get::<RequestScope>().is_some() {
            let response = inner.call(request);
            return RequestFuture::passed(async move { Ok(response.await?.into_response()) });
        }
        let name = request_name(request.method().as_str(), request.uri().path());
        let handler = move |request| async move {
            // Boxed: the router's future is large, and the scope's future
            // around it is moved a few times before it runs.
            Ok(Box::pin(inner.call(request)).await?.into_response())
        };
        self.settings
            .scopes
            .open_http(name, request, handler, refuse)
    }
}

/// A refusal said in HTTP: the response of [`Refusal`]'s `IntoResponse`.
fn refuse<E>(refusal: Refusal) -> Result<Response, E> {
    Ok(refusal.into_response())
}

/// A [`Refusal`] as an HTTP response: 400 for a malformed budget header,
/// 504 when a deadline passed, 503 while shutting down, 500 when a task
/// failed; a deadline's or a shutdown's reason in `x-cancel-reason`.
///
/// ```
/// use axum::{http::StatusCode, response::IntoResponse};
/// use taskscope::{remote::Refusal, CancelReason};
///
/// let response = Refusal::Expired(CancelReason::RemoteDeadline).into_response();
/// assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
/// assert_eq!(response.headers()[CancelReason::WIRE_HEADER], "deadline");
/// assert_eq!(Refusal::Closed.into_response().status(), StatusCode::SERVICE_UNAVAILABLE);
/// ```
impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match &self {
            Refusal::Malformed { .. } => (StatusCode::BAD_REQUEST, message).into_response(),
            Refusal::Expired(reason) => (
                StatusCode::GATEWAY_TIMEOUT,
                [(CancelReason::WIRE_HEADER, reason.to_wire())],
                message,
            )
                .into_response(),
            Refusal::Closed => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(CancelReason::WIRE_HEADER, CancelReason::Shutdown.to_wire())],
                message,
            )
                .into_response(),
            Refusal::Failed => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
}

/// The request scope's name, `METHOD /path`, in one allocation (the name
/// is made for every request).
fn request_name(method: &str, path: &str) -> Arc<str> {
    let mut buffer = [0u8; 128];
    let len = method.len() + 1 + path.len();
    if len > buffer.len() {
        return Arc::from(format!("{method} {path}"));
    }
    buffer[..method.len()].copy_from_slice(method.as_bytes());
    buffer[method.len()] = b' ';
    buffer[method.len() + 1..len].copy_from_slice(path.as_bytes());
    match std::str::from_utf8(&buffer[..len]) {
        Ok(name) => Arc::from(name),
        // Unreachable: both parts are `str`, joined by a space.
        Err(_) => Arc::from(format!("{method} {path}")),
    }
}
