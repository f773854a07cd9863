//! Deadlines and cancellation for [tonic](https://docs.rs/tonic/0.14) gRPC
//! servers and clients (feature `tonic`).
//!
//! * [`GrpcScopeLayer`], on a server (`Server::builder().layer(…)`), runs
//!   every call in a request scope of its own, nested in the scope the
//!   layer was created in. It reads `grpc-timeout`: the call's token fires
//!   at the caller's deadline with
//!   [`CancelReason::RemoteDeadline`](crate::CancelReason::RemoteDeadline);
//!   a call that arrives with nothing left is answered `DEADLINE_EXCEEDED`
//!   and runs no handler code; a malformed `grpc-timeout` is answered
//!   `INVALID_ARGUMENT`, saying why. A caller that resets the stream fires
//!   the token with
//!   [`CancelReason::ClientDisconnected`](crate::CancelReason::ClientDisconnected).
//!   The handler finds the token as [`taskscope::token()`](crate::token)
//!   and in the request's extensions.
//! * [`DeadlineLayer`], on a channel, writes what is left of the caller's
//!   token's deadline (less a margin) into `grpc-timeout`, refuses to send
//!   a call whose token has fired or whose budget is spent, and drops the
//!   call (HTTP/2 `RST_STREAM`) the moment the token fires.
//! * [`cancelled_from_status`] reads a `DEADLINE_EXCEEDED` or `CANCELLED`
//!   status back as a [`Cancelled`](crate::Cancelled) with its reason.
//!
//! The layers use only the public API: [`ScopeBuilder`](crate::ScopeBuilder),
//! [`current_scope`](crate::current_scope) and
//! [`remote`](crate::remote).

mod client;
mod server;
mod status;

pub use client::{DeadlineLayer, DeadlineService};
pub use server::{GrpcScopeLayer, GrpcScopeService};
pub use status::{cancelled_from_status, status_from_cancelled};
