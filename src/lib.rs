//! Structured concurrency for Tokio, built on cancellation tokens in the
//! style of .NET's `CancellationTokenSource` / `CancellationToken`.
//!
//! This release holds the cancellation layer everything else stands on:
//!
//! * [`CancellationSource`] triggers cancellation; [`CancellationToken`]
//!   observes it. Only a source can cancel.
//! * Sources can be [linked](CancellationSource::linked) to any number of
//!   parents, cancel themselves [after a timeout](CancellationSource::with_timeout)
//!   on tokio's clock, and say [why](CancelReason) they were cancelled.
//! * Tokens can be [checked](CancellationToken::check) (`?` turns
//!   cancellation into a [`Cancelled`] error), [awaited](CancellationToken::cancelled),
//!   used to [stop any future](CancellableExt), and can run
//!   [callbacks](CancellationToken::on_cancel) on cancel.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use taskscope::{CancellationSource, CancellationToken, Cancelled};
//!
//! async fn search(query: &str, token: &CancellationToken) -> Result<Vec<String>, Cancelled> {
//!     let mut results = Vec::new();
//!     for page in 0..100 {
//!         token.check()?; // stop as soon as nobody wants the result
//!         tokio::time::sleep(Duration::from_millis(100)).await;
//!         results.push(format!("{query} #{page}"));
//!     }
//!     Ok(results)
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let user = CancellationSource::new(); // e.g. the request's token
//! // A per-search timeout that also respects the caller's cancellation:
//! let per_search = CancellationSource::linked([&user.token()]);
//! per_search.cancel_after(Duration::from_secs(1));
//!
//! let err = search("rust", &per_search.token()).await.unwrap_err();
//! assert!(err.is_timeout());
//! assert!(!user.is_cancelled()); // the link is one-way
//! # }
//! ```
//!
//! See `docs/` in the repository for the guarantees and the benchmarks.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cancel;
mod loom;
mod scope;

pub use cancel::{
    CancelReason, CancellableExt, CancellationSource, CancellationToken, Cancelled, Registration,
    RunUntilCancelled, WaitForCancellation, WaitForCancellationOwned, WithCancellationOwned,
};

pub use scope::{
    fail_after, move_on_after, race, scope, token, JoinTask, Policy, Racer, Scope, ScopeBuilder,
    ScopeError, TaskHandle, DEFAULT_WARN_AFTER,
};

#[doc(hidden)]
pub use taskscope_macros as __macros;

/// The join counter, public only to the loom models (`tests/loom_scope.rs`).
#[cfg(loom)]
#[doc(hidden)]
pub use scope::JoinCounter;

/// The README's example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
