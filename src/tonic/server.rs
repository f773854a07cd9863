//! The server side: a request scope per call, with the caller's deadline.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::tonic::body::Body;
use ::tonic::Status;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::status::status_from_cancelled;
use crate::cancel::{CancelReason, CancellationToken, Cancelled};
use crate::remote::{CallerDeadline, Inbound, Refusal};
use crate::scope::{current_scope, AnyScope, BoxError, ScopeBuilder, ScopeError, ScopeHandle};

/// A tower layer for tonic servers that runs every call in its own scope
/// with the caller's `grpc-timeout` as its deadline; see the
/// [module](super).
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
#[derive(Clone)]
pub struct GrpcScopeLayer {
    owner: Option<AnyScope>,
    inbound: Inbound,
}

impl GrpcScopeLayer {
    /// Call scopes nested in the current scope, reading `grpc-timeout` as
    /// [`Inbound::grpc()`] does (no maximum).
    pub fn new() -> Self {
        GrpcScopeLayer {
            owner: current_scope(),
            inbound: Inbound::grpc(),
        }
    }

    /// How the caller's budget is read: a maximum to clamp to, a minimum
    /// below which a call counts as expired.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::{remote::Inbound, tonic::GrpcScopeLayer};
    ///
    /// let layer = GrpcScopeLayer::new().inbound(Inbound::grpc().max(Duration::from_secs(30)));
    /// # drop(layer);
    /// ```
    pub fn inbound(mut self, inbound: Inbound) -> Self {
        self.inbound = inbound;
        self
    }
}

impl Default for GrpcScopeLayer {
    fn default() -> Self {
        GrpcScopeLayer::new()
    }
}

impl fmt::Debug for GrpcScopeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcScopeLayer")
            .field("owner", &self.owner.as_ref().map(AnyScope::name))
            .field("inbound", &self.inbound)
            .finish()
    }
}

impl<S> Layer<S> for GrpcScopeLayer {
    type Service = GrpcScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcScopeService {
            inner,
            settings: Arc::new(self.clone()),
        }
    }
}

/// The service [`GrpcScopeLayer`] wraps around a tonic server's routes.
#[derive(Clone)]
pub struct GrpcScopeService<S> {
    inner: S,
    settings: Arc<GrpcScopeLayer>,
}

impl<S> fmt::Debug for GrpcScopeService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcScopeService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<Request<B>> for GrpcScopeService<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = GrpcScopeFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let settings = &self.settings;
        let value = request.headers().get(settings.inbound.header_name());
        let linked = || {
            settings
                .owner
                .as_ref()
                .map_or_else(CancellationToken::none, AnyScope::token)
        };
        let caller_deadline = match settings.inbound.begin(value.map(|v| v.as_bytes()), linked) {
            Ok(deadline) => deadline,
            Err(Refusal::Malformed(error)) => {
                let status = Status::invalid_argument(format!("bad grpc-timeout header: {error}"));
                return GrpcScopeFuture::ready(status);
            }
            Err(Refusal::Expired) => {
                let expired = Cancelled::new(CancelReason::RemoteDeadline);
                return GrpcScopeFuture::ready(status_from_cancelled(&expired));
            }
        };
        let mut builder = ScopeBuilder::new()
            .name(request.uri().path().to_owned())
            .when_dropped(CancelReason::ClientDisconnected);
        if let Some(owner) = &settings.owner {
            builder = builder.within(owner);
        }
        if let Some(deadline) = &caller_deadline {
            builder = builder.parent(&deadline.token());
        }
        let opened = builder.try_start(move |scope: ScopeHandle<BoxError>| async move {
            request.extensions_mut().insert(scope.token());
            request.extensions_mut().insert(scope);
            Ok(Box::pin(inner.call(request)).await)
        });
        match opened {
            Ok(call) => GrpcScopeFuture {
                caller_deadline,
                inner: Inner::Scope(Box::pin(call)),
            },
            Err(_closed) => GrpcScopeFuture::ready(status_from_cancelled(&Cancelled::new(
                CancelReason::Shutdown,
            ))),
        }
    }
}

/// The future of a [`GrpcScopeService`] call. Dropping it before it
/// completes (the caller reset the stream) cancels the call's scope with
/// [`CancelReason::ClientDisconnected`], or with
/// [`CancelReason::RemoteDeadline`] once the deadline has passed.
pub struct GrpcScopeFuture<E> {
    /// Dropped before `inner`: the reason is set before the scope sees the
    /// drop.
    caller_deadline: Option<CallerDeadline>,
    inner: Inner<E>,
}

/// What a call's scope ends with: the inner service's result, or why the
/// scope failed.
type CallOutcome<E> = Result<Result<Response<Body>, E>, ScopeError<BoxError>>;

enum Inner<E> {
    Scope(Boxed<CallOutcome<E>>),
    Ready(Option<Response<Body>>),
}

impl<E> GrpcScopeFuture<E> {
    fn ready(status: Status) -> Self {
        GrpcScopeFuture {
            caller_deadline: None,
            inner: Inner::Ready(Some(status.into_http())),
        }
    }
}

impl<E> Unpin for GrpcScopeFuture<E> {}

impl<E> Future for GrpcScopeFuture<E> {
    type Output = Result<Response<Body>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // tonic's server runs its own `grpc-timeout` timer outside every
        // layer, armed just after this call's (so never earlier), and polls
        // this future before its timer; whenever it wakes for its timer,
        // ours has passed too, and the caller gets DEADLINE_EXCEEDED from
        // here rather than tonic's CANCELLED. Dropping the call's scope
        // fires its token with the caller's deadline as the reason.
        if let Some(deadline) = &self.caller_deadline {
            if tokio::time::Instant::now() >= deadline.deadline() {
                // The deadline first (its drop fires the call's token with
                // the caller's deadline), then the call's scope.
                drop(self.caller_deadline.take());
                self.inner = Inner::Ready(None);
                let expired = Cancelled::new(CancelReason::RemoteDeadline);
                return Poll::Ready(Ok(status_from_cancelled(&expired).into_http()));
            }
        }
        let output = match &mut self.inner {
            Inner::Scope(call) => match std::task::ready!(call.as_mut().poll(cx)) {
                Ok(response) => response,
                Err(error) => Ok(failed(&error).into_http()),
            },
            Inner::Ready(response) => Ok(response.take().expect("polled after completion")),
        };
        if let Some(deadline) = self.caller_deadline.take() {
            deadline.complete();
        }
        Poll::Ready(output)
    }
}

impl<E> fmt::Debug for GrpcScopeFuture<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcScopeFuture").finish_non_exhaustive()
    }
}

/// The status of a call whose scope failed (a task it spawned failed).
fn failed(error: &ScopeError<BoxError>) -> Status {
    if error.is_timeout() {
        status_from_cancelled(&Cancelled::new(CancelReason::Timeout))
    } else {
        Status::internal("the call failed")
    }
}
