//! The server side: a request scope per call, with the caller's deadline.
//! A thin adapter over [`RequestScopes`], the core every server
//! integration shares ([`RequestScopes::open_http`] reads `grpc-timeout`
//! and puts the [`RequestScope`](crate::remote::RequestScope) in the call's
//! extensions): it says a [`Refusal`] as a gRPC status.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::tonic::body::Body;
use ::tonic::Status;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::remote::{Inbound, Refusal, RequestFuture, RequestScopes};

/// A tower layer for tonic servers that runs every call in its own scope
/// with the caller's `grpc-timeout` as its deadline; see the
/// [module](super).
///
/// The call's [`RequestScope`](crate::remote::RequestScope) is in the request's extensions
/// (`request.extensions().get::<RequestScope>()`), and
/// [`taskscope::token()`](crate::token) is the call's token in the handler.
/// When the caller's deadline passes the caller gets `DEADLINE_EXCEEDED`
/// from this layer at once, with `x-cancel-reason: deadline`, and the
/// call's scope is cancelled and joined by the server's scope.
///
/// ```no_run
/// use taskscope::tonic::GrpcScopeLayer;
/// # fn routes() -> tonic::service::Routes { tonic::service::Routes::default() }
///
/// # async fn serve() -> Result<(), tonic::transport::Error> {
/// // Inside the scope that owns the server (under #[taskscope::main], main):
/// tonic::transport::Server::builder()
///     .layer(GrpcScopeLayer::new())
///     .add_routes(routes())
///     .serve("127.0.0.1:50051".parse().unwrap())
///     .await
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct GrpcScopeLayer {
    scopes: RequestScopes,
}

impl GrpcScopeLayer {
    /// Call scopes nested in the current scope, reading `grpc-timeout` as
    /// [`Inbound::grpc()`] does (no maximum).
    pub fn new() -> Self {
        GrpcScopeLayer::from(RequestScopes::new())
    }
}

impl Default for GrpcScopeLayer {
    fn default() -> Self {
        GrpcScopeLayer::new()
    }
}

/// A layer opening call scopes as `scopes` says (a maximum budget, a
/// timeout of the server's own, a grace period), reading `grpc-timeout`
/// unless `scopes` read another header, and answering at the caller's
/// deadline ([`RequestScopes::answer_at_deadline`]).
///
/// ```
/// use std::time::Duration;
/// use taskscope::remote::{Inbound, RequestScopes};
/// use taskscope::tonic::GrpcScopeLayer;
///
/// let scopes = RequestScopes::new().deadline_from(Inbound::grpc().max(Duration::from_secs(30)));
/// let layer = GrpcScopeLayer::from(scopes);
/// # drop(layer);
/// ```
impl From<RequestScopes> for GrpcScopeLayer {
    fn from(mut scopes: RequestScopes) -> Self {
        if scopes.budget_header().is_none() {
            scopes = scopes.deadline_from(Inbound::grpc());
        }
        GrpcScopeLayer {
            scopes: scopes.answer_at_deadline(),
        }
    }
}

impl<S> Layer<S> for GrpcScopeLayer {
    type Service = GrpcScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcScopeService {
            inner,
            scopes: Arc::new(self.scopes.clone()),
        }
    }
}

/// The service [`GrpcScopeLayer`] wraps around a tonic server's routes.
#[derive(Clone)]
pub struct GrpcScopeService<S> {
    inner: S,
    scopes: Arc<RequestScopes>,
}

impl<S> fmt::Debug for GrpcScopeService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcScopeService")
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for GrpcScopeService<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = RequestFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Call the instance that was polled ready; keep a fresh clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let name = request.uri().path().to_owned();
        let handler = move |request| async move { Box::pin(inner.call(request)).await };
        self.scopes.open_http(name, request, handler, refuse)
    }
}

/// A refusal said in gRPC: a trailers-only response with its status.
fn refuse<E>(refusal: Refusal) -> Result<Response<Body>, E> {
    Ok(Status::from(refusal).into_http())
}
