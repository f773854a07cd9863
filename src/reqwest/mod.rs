//! Deadlines and cancellation for [reqwest](https://docs.rs/reqwest/0.12)
//! calls (feature `reqwest`).
//!
//! [`CancellableRequestExt::cancellable`] turns a `RequestBuilder` into a
//! call that observes a token (the caller's ambient
//! [`taskscope::token()`](crate::token) unless one is given): it is not sent
//! if the token has fired or its budget is spent; what is left of the
//! token's deadline, less a margin, goes in `x-request-budget-ms` (see
//! [`Outbound`]); the call is dropped the moment the token fires (for
//! HTTP/1 the connection is closed, for HTTP/2 the stream is reset); and a
//! `504 Gateway Timeout` answer comes back as a [`Cancelled`] timeout with
//! the reason the server gave in `x-cancel-reason`.
//!
//! ```no_run
//! use taskscope::reqwest::{CallError, CancellableRequestExt};
//!
//! async fn fetch_price(client: &reqwest::Client) -> Result<String, CallError> {
//!     let response = client
//!         .get("http://127.0.0.1:8080/price")
//!         .cancellable() // the ambient token, its deadline in the header
//!         .send()
//!         .await?;
//!     Ok(response.text().await?)
//! }
//! ```

use std::error::Error;
use std::fmt;

use ::reqwest::{RequestBuilder, Response, StatusCode};

use crate::cancel::{CancelReason, CancellationToken, Cancelled};
use crate::remote::Outbound;
use crate::scope::TaskError;

/// `cancellable()` on a reqwest `RequestBuilder`.
pub trait CancellableRequestExt {
    /// This request, observing a token; see the [module](self).
    fn cancellable(self) -> CancellableRequest;
}

impl CancellableRequestExt for RequestBuilder {
    fn cancellable(self) -> CancellableRequest {
        CancellableRequest {
            builder: self,
            token: None,
            outbound: Outbound::http(),
        }
    }
}

/// A reqwest request that observes a token: `.send().await` it.
#[must_use = "a request does nothing until it is sent"]
#[derive(Debug)]
pub struct CancellableRequest {
    builder: RequestBuilder,
    token: Option<CancellationToken>,
    outbound: Outbound,
}

impl CancellableRequest {
    /// Observes `token` instead of the ambient one.
    pub fn token(mut self, token: &CancellationToken) -> Self {
        self.token = Some(token.clone());
        self
    }

    /// How the budget is written: another header, another margin.
    pub fn outbound(mut self, outbound: Outbound) -> Self {
        self.outbound = outbound;
        self
    }

    /// Sends the request, racing it against the token.
    pub async fn send(self) -> Result<Response, CallError> {
        let token = self.token.unwrap_or_else(crate::scope::token);
        let mut builder = self.builder;
        if let Some(budget) = self.outbound.value_for(&token)? {
            tracing::debug!(budget = %budget, "budget propagated");
            builder = builder.header(self.outbound.header_name(), budget);
        }
        // The scope-local values that travel, as W3C baggage.
        if let Some(baggage) = self.outbound.baggage() {
            builder = builder.header("baggage", baggage);
        }
        let response = token
            .run_until_cancelled(builder.send())
            .await?
            .map_err(CallError::Http)?;
        if response.status() == StatusCode::GATEWAY_TIMEOUT {
            let reason = response
                .headers()
                .get(CancelReason::WIRE_HEADER)
                .and_then(|value| CancelReason::from_wire(value.as_bytes()).ok())
                .unwrap_or(CancelReason::Timeout);
            let remote = Cancelled::new(reason);
            return Err(CallError::Cancelled(
                self.outbound.settle(&token, remote).await,
            ));
        }
        Ok(response)
    }
}

/// Why a [`CancellableRequest`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CallError {
    /// The token fired (before or during the call), the budget was spent,
    /// or the server answered 504.
    Cancelled(Cancelled),
    /// reqwest's own error: the connection, the body, a redirect loop.
    Http(::reqwest::Error),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Cancelled(cancelled) => write!(f, "{cancelled}"),
            CallError::Http(error) => write!(f, "{error}"),
        }
    }
}

impl Error for CallError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CallError::Cancelled(cancelled) => Some(cancelled),
            CallError::Http(error) => Some(error),
        }
    }
}

impl From<Cancelled> for CallError {
    fn from(cancelled: Cancelled) -> Self {
        CallError::Cancelled(cancelled)
    }
}

impl From<::reqwest::Error> for CallError {
    fn from(error: ::reqwest::Error) -> Self {
        CallError::Http(error)
    }
}

impl TaskError for CallError {
    fn is_cancellation(&self) -> bool {
        matches!(self, CallError::Cancelled(_))
    }
}
