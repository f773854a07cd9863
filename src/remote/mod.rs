//! Deadlines and cancellation across process boundaries: the wire formats
//! and the policies the `axum`, `tonic` and `reqwest` integrations share.
//!
//! A request's budget travels with it: gRPC's `grpc-timeout`, or over
//! HTTP the milliseconds left in [`BUDGET_HEADER`] (configurable, for
//! Envoy's `x-envoy-expected-rq-timeout-ms` and the like). A server reads
//! it ([`Inbound`]), clamps it to its maximum, refuses a request that
//! arrives with nothing left, and runs the request in a scope whose token
//! fires at the deadline with [`CancelReason::RemoteDeadline`]
//! ([`CallerDeadline`]); a caller that leaves fires it with
//! [`CancelReason::ClientDisconnected`]. A client writes what is left of
//! its token's deadline, less a margin for the trip ([`Outbound`]), and
//! does not send a call whose budget is spent. A server that stopped a
//! request says why in [`REASON_HEADER`].
//!
//! Every parser here takes untrusted bytes and returns a [`WireError`];
//! none panics.
//!
//! [`CancelReason::RemoteDeadline`]: crate::CancelReason::RemoteDeadline
//! [`CancelReason::ClientDisconnected`]: crate::CancelReason::ClientDisconnected

mod budget;
mod deadline;
mod wire;

pub use budget::{
    Inbound, InboundBudget, Outbound, BUDGET_HEADER, DEFAULT_MARGIN, GRPC_TIMEOUT_HEADER,
    REASON_HEADER,
};
pub use deadline::{CallerDeadline, Refusal, RESET_TOLERANCE};
pub use wire::{
    budget_millis, grpc_timeout, parse_budget_millis, parse_grpc_timeout, reason_from_wire,
    reason_to_wire, WireError,
};
