//! The tower layer that opens one scope per request.
//!
//! A request's scope is opened when the service is *called* (not when its
//! future is first polled), inside the owner captured by
//! [`RequestScopeLayer::new`] ([`ScopeBuilder::within`] and
//! [`ScopeBuilder::try_start`]), so hyper's connection tasks, which run
//! outside any scope, still nest every request in the server's scope. If
//! the owner has already finished, the request is refused with 503. Only
//! the public API is used: an integration for another framework can be
//! written the same way.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ::axum::http::{Request, StatusCode};
use ::axum::response::{IntoResponse, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::extract::RequestScope;
use crate::cancel::{CancelReason, CancellationToken};
use crate::remote::{reason_to_wire, CallerDeadline, Inbound, Refusal, REASON_HEADER};
use crate::scope::{current_scope, AnyScope, BoxError, ScopeBuilder, ScopeError, ScopeHandle};

/// A [tower layer](tower_layer::Layer) that runs every request in its own
/// [`Scope`](crate::Scope), nested in the scope the layer was created in.
///
/// The handler runs as the request scope's body: [`taskscope::token()`](crate::token)
/// is the request's token there, and the [`RequestScope`] and
/// [`CancellationToken`] extractors hand the scope and token to handlers.
/// The token fires with [`CancelReason::ClientDisconnected`] if hyper drops
/// the request's future (the client went away), and when the owner scope (or
/// the [`parent`](RequestScopeLayer::parent) token) is cancelled.
///
/// A request whose scope fails (a task it spawned returned an error) is
/// answered `500 Internal Server Error`; one that runs past its
/// [`timeout`](RequestScopeLayer::timeout) `504 Gateway Timeout`; one that
/// arrives after the owner scope has finished `503 Service Unavailable`.
/// A request that already has a scope (the layer was applied twice) keeps it.
///
/// [`serve`](super::serve) adds this layer itself; add it by hand to serve
/// with something else.
///
/// # Examples
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use taskscope::axum::{RequestScope, RequestScopeLayer};
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
#[derive(Clone)]
pub struct RequestScopeLayer {
    owner: Option<AnyScope>,
    parent: Option<CancellationToken>,
    grace: Option<Duration>,
    timeout: Option<Duration>,
    inbound: Option<Inbound>,
}

impl RequestScopeLayer {
    /// A layer whose request scopes nest in the current scope (the scope
    /// whose body or task this is called from, [`current_scope`]): that
    /// scope joins every request's work, and cancelling it cancels every
    /// request. Outside any scope the request scopes are roots.
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
        RequestScopeLayer {
            owner: current_scope(),
            parent: None,
            grace: None,
            timeout: None,
            inbound: None,
        }
    }

    /// Links request tokens to `parent` instead of the owner scope's token
    /// (the owner still joins them). [`serve`](super::serve) uses this to
    /// let requests drain after shutdown begins.
    ///
    /// ```
    /// use taskscope::{axum::RequestScopeLayer, CancellationSource};
    ///
    /// let requests = CancellationSource::new();
    /// let layer = RequestScopeLayer::new().parent(&requests.token());
    /// # drop(layer);
    /// ```
    pub fn parent(mut self, parent: &CancellationToken) -> Self {
        self.parent = Some(parent.clone());
        self
    }

    /// How long tasks a request spawned may keep running after its token
    /// fired before they are aborted; see [`ScopeBuilder::grace_period`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::axum::RequestScopeLayer;
    ///
    /// let layer = RequestScopeLayer::new().grace_period(Duration::from_secs(5));
    /// # drop(layer);
    /// ```
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// A deadline for each request: its token fires with
    /// [`CancelReason::Timeout`], and once the handler has stopped the client
    /// gets `504 Gateway Timeout`, whatever the handler returned (as ASP.NET
    /// Core's request timeouts).
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::axum::RequestScopeLayer;
    ///
    /// let layer = RequestScopeLayer::new().timeout(Duration::from_secs(30));
    /// # drop(layer);
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl RequestScopeLayer {
    /// Reads the budget the caller sent (see [`Inbound`]; usually
    /// `Inbound::http()`, the milliseconds left in `x-request-budget-ms`)
    /// and gives the request that deadline: its token fires at it with
    /// [`CancelReason::RemoteDeadline`], and once the handler has stopped
    /// the client gets `504 Gateway Timeout` with `x-cancel-reason:
    /// deadline`. A request that arrives with nothing left is answered 504
    /// and runs no handler; one whose header cannot be read is answered
    /// `400 Bad Request`, saying why, and runs no handler. A request
    /// without the header runs as before.
    ///
    /// ```
    /// use axum::{body::Body, http::{Request, StatusCode}, routing::get, Router};
    /// use taskscope::axum::RequestScopeLayer;
    /// use taskscope::remote::Inbound;
    /// use tower_service::Service;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut app = Router::new()
    ///     .route("/", get(|| async { taskscope::token().remaining().is_some().to_string() }))
    ///     .layer(RequestScopeLayer::new().deadline_from(Inbound::http()));
    /// let request = Request::get("/").header("x-request-budget-ms", "250").body(Body::empty()).unwrap();
    /// let response = app.call(request).await.unwrap();
    /// let body = axum::body::to_bytes(response.into_body(), 16).await.unwrap();
    /// assert_eq!(body, "true"); // the handler's token has the caller's deadline
    ///
    /// let expired = Request::get("/").header("x-request-budget-ms", "0").body(Body::empty()).unwrap();
    /// assert_eq!(app.call(expired).await.unwrap().status(), StatusCode::GATEWAY_TIMEOUT);
    /// let garbage = Request::get("/").header("x-request-budget-ms", "-1").body(Body::empty()).unwrap();
    /// assert_eq!(app.call(garbage).await.unwrap().status(), StatusCode::BAD_REQUEST);
    /// # }
    /// ```
    pub fn deadline_from(mut self, inbound: Inbound) -> Self {
        self.inbound = Some(inbound);
        self
    }

    /// These options, owned by the current scope and linked to `parent`.
    pub(super) fn into_owned_by_current(mut self, parent: &CancellationToken) -> Self {
        self.owner = current_scope();
        self.parent = Some(parent.clone());
        self
    }
}

impl Default for RequestScopeLayer {
    fn default() -> Self {
        RequestScopeLayer::new()
    }
}

impl fmt::Debug for RequestScopeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestScopeLayer")
            .field("owner", &self.owner.as_ref().map(AnyScope::name))
            .field("parent", &self.parent)
            .field("grace", &self.grace)
            .field("timeout", &self.timeout)
            .field("inbound", &self.inbound)
            .finish()
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
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // Call the instance that was polled ready; keep a fresh clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if request.extensions().get::<RequestScope>().is_some() {
            let response = inner.call(request);
            return ResponseFuture::passed(async move { Ok(response.await?.into_response()) });
        }

        let settings = &self.settings;
        let caller_deadline = match &settings.inbound {
            None => None,
            Some(inbound) => {
                let value = request.headers().get(inbound.header_name());
                // The token the request would be linked to: the caller's
                // deadline goes below it.
                let linked = || match (&settings.parent, &settings.owner) {
                    (Some(parent), _) => parent.clone(),
                    (None, Some(owner)) => owner.token(),
                    (None, None) => CancellationToken::none(),
                };
                match inbound.begin(value.map(|v| v.as_bytes()), linked) {
                    Ok(deadline) => deadline,
                    Err(Refusal::Malformed(error)) => {
                        let message = format!("bad {} header: {error}", inbound.header_name());
                        return ResponseFuture::ready(
                            (StatusCode::BAD_REQUEST, message).into_response(),
                        );
                    }
                    Err(Refusal::Expired) => {
                        return ResponseFuture::ready(timed_out_response(
                            &CancelReason::RemoteDeadline,
                        ));
                    }
                }
            }
        };
        let name = request_name(request.method().as_str(), request.uri().path());
        let mut builder = ScopeBuilder::new()
            .name(name)
            .when_dropped(CancelReason::ClientDisconnected);
        if let Some(owner) = &settings.owner {
            builder = builder.within(owner);
        }
        if let Some(parent) = &settings.parent {
            builder = builder.parent(parent);
        }
        if let Some(grace) = settings.grace {
            builder = builder.grace_period(grace);
        }
        if let Some(deadline) = &caller_deadline {
            builder = builder.parent(&deadline.token());
        }
        // `Duration::MAX` never fires: no timeout.
        let builder = builder.timeout(settings.timeout.unwrap_or(Duration::MAX));
        let has_deadline = settings.timeout.is_some() || caller_deadline.is_some();
        let opened = builder.try_start(move |scope: ScopeHandle<BoxError>| async move {
            // Only a request with a deadline of its own can time out.
            let token = has_deadline.then(|| scope.token());
            request.extensions_mut().insert(RequestScope::new(scope));
            // Boxed: the router's future is large, and the scope's future
            // around it is moved a few times before it runs.
            let response = match Box::pin(inner.call(request)).await {
                Ok(response) => response,
                Err(error) => return Ok(Err(error)),
            };
            // Past its own deadline, whatever the handler made of it, the
            // request timed out (its own reason, not an inherited one).
            let expired = token.and_then(|t| t.reason()).filter(|reason| {
                *reason == CancelReason::Timeout || *reason.root() == CancelReason::RemoteDeadline
            });
            if let Some(reason) = expired {
                return Ok(Ok(timed_out_response(reason.root())));
            }
            Ok(Ok(response.into_response()))
        });
        match opened {
            // Boxed where it is made: the scope's future is large.
            Ok(request_scope) => ResponseFuture {
                caller_deadline,
                inner: Inner::Scope(Box::pin(request_scope)),
            },
            Err(_closed) => ResponseFuture::ready(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(REASON_HEADER, reason_to_wire(&CancelReason::Shutdown))],
                    "the server is shutting down",
                )
                    .into_response(),
            ),
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

/// The response to a request whose scope failed. The failure itself is
/// logged by the scope (at error level), not sent to the client.
fn failed_response(error: &ScopeError<BoxError>) -> Response {
    if error.is_timeout() {
        timed_out_response(&CancelReason::Timeout)
    } else {
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

/// `504`, saying whose deadline it was in [`REASON_HEADER`].
fn timed_out_response(reason: &CancelReason) -> Response {
    let message = if *reason == CancelReason::RemoteDeadline {
        "the caller's deadline passed"
    } else {
        "the request timed out"
    };
    (
        StatusCode::GATEWAY_TIMEOUT,
        [(REASON_HEADER, reason_to_wire(reason))],
        message,
    )
        .into_response()
}

/// The future of a [`RequestScopeService`] call: the request's scope, from
/// the handler to the last task it spawned. Dropping it before it completes
/// is what a client disconnecting looks like: the request's token fires with
/// [`CancelReason::ClientDisconnected`].
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use taskscope::{axum::RequestScopeLayer, CancelReason, CancellationToken};
/// use tokio::sync::mpsc;
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (tx, mut rx) = mpsc::unbounded_channel();
/// let mut app = Router::new()
///     .route("/", get(|token: CancellationToken| async move {
///         let _log = token.on_cancel(move |reason| tx.send(reason.clone()).unwrap());
///         std::future::pending::<()>().await;
///     }))
///     .layer(RequestScopeLayer::new());
/// let response = app.call(Request::new(Body::empty()));
/// let _ = tokio::time::timeout(std::time::Duration::from_millis(10), response).await; // dropped
/// assert_eq!(rx.recv().await.unwrap(), CancelReason::ClientDisconnected);
/// # }
/// ```
pub struct ResponseFuture<E> {
    /// Dropped before `inner` (fields drop in order): a request dropped
    /// mid-way is cancelled with the right reason before its scope sees
    /// the drop.
    caller_deadline: Option<CallerDeadline>,
    inner: Inner<E>,
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

enum Inner<E> {
    /// The request's scope, running the handler.
    Scope(Boxed<Result<Result<Response, E>, ScopeError<BoxError>>>),
    /// A request that already had a scope (the layer was applied twice).
    Passed(Boxed<Result<Response, E>>),
    /// Refused without running anything.
    Ready(Option<Result<Response, E>>),
}

impl<E> ResponseFuture<E> {
    fn passed(future: impl Future<Output = Result<Response, E>> + Send + 'static) -> Self {
        ResponseFuture {
            caller_deadline: None,
            inner: Inner::Passed(Box::pin(future)),
        }
    }

    fn ready(response: Response) -> Self {
        ResponseFuture {
            caller_deadline: None,
            inner: Inner::Ready(Some(Ok(response))),
        }
    }
}

impl<E> Unpin for ResponseFuture<E> {}

impl<E> Future for ResponseFuture<E> {
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let output = match &mut self.inner {
            Inner::Scope(scope) => match std::task::ready!(scope.as_mut().poll(cx)) {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(error)) => Err(error),
                Err(error) => Ok(failed_response(&error)),
            },
            Inner::Passed(future) => std::task::ready!(future.as_mut().poll(cx)),
            Inner::Ready(response) => response.take().expect("polled after completion"),
        };
        if let Some(deadline) = self.caller_deadline.take() {
            deadline.complete();
        }
        Poll::Ready(output)
    }
}

impl<E> fmt::Debug for ResponseFuture<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
