//! Cancellation: sources, tokens, callbacks and reasons.
//!
//! The public handles are thin: [`CancellationSource`] (source.rs) cancels,
//! [`CancellationToken`] (token.rs) observes, [`Registration`]
//! (registration.rs) guards a callback. The engine they share is `node.rs`,
//! which opens with its invariants; `callback.rs` holds the run/unregister
//! race of one callback, `wait.rs` and `until.rs` the futures, `timer.rs`
//! the deadlines.

mod callback;
mod child;
mod deadline;
mod node;
mod reason;
mod registration;
mod source;
mod timer;
mod token;
mod until;
mod wait;

pub(crate) use child::{cancel_child, ChildToken};
pub(crate) use deadline::process_epoch;
pub use reason::{CancelReason, Cancelled};
pub use registration::Registration;
pub use source::{CancellationSource, DropGuard};
pub use token::CancellationToken;
pub use until::RunUntilCancelled;
pub(crate) use wait::CancelWatch;
pub use wait::WaitForCancellation;
