//! Deadlines and cancellation across process boundaries: the wire formats
//! and the policies the `axum`, `tonic` and `reqwest` integrations share.
//!
//! A request's budget travels with it: gRPC's `grpc-timeout`, or over
//! HTTP the milliseconds left in `x-request-budget-ms` (configurable, for
//! Envoy's `x-envoy-expected-rq-timeout-ms` and the like). A server reads
//! it ([`Inbound`]), clamps it to its maximum, refuses a request that
//! arrives with nothing left, and runs the request in a scope whose token
//! fires at the deadline with [`CancelReason::RemoteDeadline`]; a caller
//! that leaves fires it with [`CancelReason::ClientDisconnected`]
//! ([`RequestScopes`], the core the `axum` and `tonic` layers adapt). A
//! client writes what is left of its token's deadline, less a margin for
//! the trip ([`Outbound`]), and does not send a call whose budget is spent.
//! A server that stopped a request says why in
//! [`CancelReason::WIRE_HEADER`](crate::CancelReason::WIRE_HEADER).
//!
//! Every parser here takes untrusted bytes and returns a [`WireError`];
//! none panics.
//!
//! [`CancelReason::RemoteDeadline`]: crate::CancelReason::RemoteDeadline
//! [`CancelReason::ClientDisconnected`]: crate::CancelReason::ClientDisconnected

mod baggage;
mod budget;
mod deadline;
mod request;
mod wire;

pub use budget::{Inbound, Outbound};
pub use request::{Refusal, RequestFuture, RequestScope, RequestScopes};
pub use wire::WireError;
