//! The client side: the caller's budget into `grpc-timeout`, and the call
//! dropped when the caller's token fires.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::tonic::Status;
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::cancel::{CancelReason, CancellationToken, Cancelled};
use crate::remote::Outbound;
use crate::scope::BoxError;

/// A tower layer for tonic channels: every call carries what is left of
/// its token's deadline in `grpc-timeout` (less a margin), is not sent if
/// the token has fired or the budget is spent, and is dropped (HTTP/2
/// `RST_STREAM`) when the token fires. The token is the caller's ambient
/// [`taskscope::token()`](crate::token) unless one is given.
///
/// A call stopped this way fails with `DEADLINE_EXCEEDED` (a timeout) or
/// `CANCELLED`, whose metadata says why
/// ([`Cancelled::from_status`]).
///
/// ```no_run
/// use std::time::Duration;
/// use taskscope::tonic::DeadlineLayer;
/// use tower_layer::Layer;
///
/// # async fn connect() -> Result<(), Box<dyn std::error::Error>> {
/// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051")
///     .connect()
///     .await?;
/// let channel = DeadlineLayer::new().margin(Duration::from_millis(10)).layer(channel);
/// let client = tonic::client::Grpc::new(channel); // or a generated client's `new`
/// # drop(client);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DeadlineLayer {
    outbound: Outbound,
    token: Option<CancellationToken>,
}

impl DeadlineLayer {
    /// `grpc-timeout` with the default margin, from the ambient token.
    pub fn new() -> Self {
        DeadlineLayer {
            outbound: Outbound::grpc(),
            token: None,
        }
    }

    /// The time kept back for the trip (see [`Outbound::margin`]).
    pub fn margin(mut self, margin: std::time::Duration) -> Self {
        self.outbound = self.outbound.margin(margin);
        self
    }

    /// Every call through this channel observes `token` instead of the
    /// caller's ambient one.
    pub fn token(mut self, token: &CancellationToken) -> Self {
        self.token = Some(token.clone());
        self
    }
}

impl Default for DeadlineLayer {
    fn default() -> Self {
        DeadlineLayer::new()
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`DeadlineLayer`] wraps around a channel.
#[derive(Clone)]
pub struct DeadlineService<S> {
    inner: S,
    layer: DeadlineLayer,
}

impl<S> fmt::Debug for DeadlineService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlineService")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> Service<Request<B>> for DeadlineService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = Boxed<Result<Response<RB>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let token = self.layer.token.clone().unwrap_or_else(crate::scope::token);
        match self.layer.outbound.value_for(&token) {
            Err(cancelled) => return Box::pin(std::future::ready(Err(refused(&cancelled)))),
            Ok(None) => {}
            Ok(Some(value)) => {
                let name = HeaderName::from_bytes(self.layer.outbound.header_name().as_bytes());
                if let (Ok(name), Ok(value)) = (name, HeaderValue::from_str(&value)) {
                    tracing::debug!(budget = %value.to_str().unwrap_or_default(), "budget propagated");
                    request.headers_mut().insert(name, value);
                }
            }
        }
        // The scope-local values that travel, as W3C baggage.
        if let Some(baggage) = self.layer.outbound.baggage() {
            if let Ok(value) = HeaderValue::from_str(&baggage) {
                request.headers_mut().append("baggage", value);
            }
        }
        let call = self.inner.call(request);
        let outbound = self.layer.outbound.clone();
        Box::pin(async move {
            let outcome = match token.run_until_cancelled(call).await {
                Ok(outcome) => outcome.map_err(Into::into),
                // Dropping the call resets its stream.
                Err(cancelled) => return Err(refused(&cancelled)),
            };
            // The callee (or the channel, which enforces `grpc-timeout`
            // too) says the budget it was given ran out: report this
            // side's own deadline once it passes (`Outbound::settle`).
            let status = match &outcome {
                Ok(response) => Status::from_header_map(response.headers()),
                Err(error) => status_in(error.as_ref()),
            };
            let remote = status.and_then(|status| budget_ran_out(&status, &token, &outbound));
            match remote {
                Some(remote) => Err(refused(&outbound.settle(&token, remote).await)),
                None => outcome,
            }
        })
    }
}

/// The status in `error`'s chain: a `Status`, or the channel's own
/// `grpc-timeout` expiry as `DEADLINE_EXCEEDED`.
fn status_in(error: &(dyn std::error::Error + 'static)) -> Option<Status> {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<::tonic::TimeoutExpired>() {
            return Some(Status::deadline_exceeded("the budget sent ran out"));
        }
        if let Some(status) = error.downcast_ref::<Status>() {
            return Some(status.clone());
        }
        next = error.source();
    }
    None
}

/// Whether `status` says the budget this call carried ran out: a
/// `DEADLINE_EXCEEDED`, or a `CANCELLED` without a reason of ours that
/// arrives when what is left here is about the margin (tonic's server
/// enforces `grpc-timeout` itself and answers `CANCELLED` when it does).
fn budget_ran_out(
    status: &Status,
    token: &CancellationToken,
    outbound: &Outbound,
) -> Option<Cancelled> {
    let cancelled = Cancelled::from_status(status)?;
    if cancelled.is_timeout() {
        return Some(cancelled);
    }
    let ours = status.metadata().get(CancelReason::WIRE_HEADER).is_some();
    (!ours && outbound.near_deadline(token)).then(|| Cancelled::new(CancelReason::Timeout))
}

fn refused(cancelled: &Cancelled) -> BoxError {
    Box::new(Status::from(cancelled.clone()))
}
