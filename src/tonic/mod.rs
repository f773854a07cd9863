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
//!   The handler finds the token as [`taskscope::token()`](crate::token),
//!   and the call's [`RequestScope`](crate::remote::RequestScope) in the
//!   request's extensions. When the deadline passes the caller gets
//!   `DEADLINE_EXCEEDED` from this layer, every time.
//! * [`DeadlineLayer`], on a channel, writes what is left of the caller's
//!   token's deadline (less a margin) into `grpc-timeout`, refuses to send
//!   a call whose token has fired or whose budget is spent, and drops the
//!   call (HTTP/2 `RST_STREAM`) the moment the token fires.
//! * `Status::from(cancelled)` and `Status::from(refusal)` say a
//!   cancellation or a [`Refusal`](crate::remote::Refusal) as a status;
//!   [`Cancelled::from_status`](crate::Cancelled::from_status) reads a
//!   `DEADLINE_EXCEEDED` or `CANCELLED` status back with its reason.
//!
//! The layers use only the public API: [`remote`](crate::remote)'s
//! [`RequestScopes`](crate::remote::RequestScopes) on the server, its
//! [`Outbound`](crate::remote::Outbound) on the client.

mod client;
mod server;
mod status;

pub use client::{DeadlineLayer, DeadlineService};
pub use server::{GrpcScopeLayer, GrpcScopeService};
