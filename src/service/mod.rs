//! Services with a lifecycle, inside the scope tree: .NET's
//! `BackgroundService` and host, with restarts, readiness and an ordered,
//! phased shutdown.
//!
//! * [`Service`]: one named, long-running piece of work with a restart
//!   policy ([`Restart`]), a [`Backoff`] between restarts, a restart budget
//!   over a window, and what giving up does ([`OnGiveUp`]). A periodic job
//!   is [`Service::every`]. [`Service::run`] runs one in the caller's task.
//! * [`Services`]: a set started in dependency order, each optionally
//!   waited on until ready ([`ServiceSet::start`]),
//!   and stopped in reverse order in phases: readiness off → drain →
//!   cancel → grace → abort. Its [`Readiness`] is what a `/readyz` probe
//!   answers (`taskscope::axum::probes` with the `axum` feature).
//!
//! Everything here is built on the public scope API ([`ScopeBuilder`],
//! [`ScopeHandle`], [`Scope::start`]): a user could write it.
//!
//! A data sync service under
//! `#[taskscope::main]`:
//!
//! ```no_run
//! use std::time::Duration;
//! use taskscope::service::{Service, ServiceError};
//!
//! async fn sync_data() -> std::io::Result<()> {
//!     // ... talk to the upstream, observing taskscope::token() ...
//!     Ok(())
//! }
//!
//! #[taskscope::main]
//! async fn main() -> Result<(), ServiceError> {
//!     Service::new("data sync")
//!         .every(Duration::from_secs(5 * 60))
//!         .retry_after(Duration::from_secs(30))
//!         .run(|_| sync_data())
//!         .await
//! }
//! ```
//!
//! [`ScopeBuilder`]: crate::ScopeBuilder
//! [`ScopeHandle`]: crate::ScopeHandle
//! [`Scope::start`]: crate::Scope::start

mod error;
mod policy;
mod readiness;
mod runs;
mod set;

pub use error::ServiceError;
pub use policy::{Backoff, OnGiveUp, Restart};
pub use readiness::{Readiness, ReadyState};
pub use runs::{Service, ServiceContext};
pub use set::{ServiceSet, Services};
