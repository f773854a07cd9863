//! Scopes: the structured task tree.
//!
//! Every task lives in a scope; every scope owns a [`CancellationSource`]
//! linked to its parent's token; a scope does not finish until its body and
//! all of its tasks and nested scopes have finished.
//!
//! * `builder.rs` opens scopes ([`ScopeBuilder`], [`scope()`], [`fail_after`],
//!   [`move_on_after`]) and holds the one `run` they all go through;
//! * `handle.rs` is [`Scope`], what a body spawns with;
//! * `shared.rs` is the state a scope shares with its tasks (invariants at
//!   its top); `task.rs` is one task's cell, handle and guard;
//! * `join.rs` counts the units a scope waits for (loom-checked);
//! * `current.rs` is the ambient scope behind [`token()`];
//! * `race.rs` builds [`race`] on a supervising scope;
//! * `tree.rs` is the snapshot of the live tree ([`tree()`]).
//!
//! [`CancellationSource`]: crate::CancellationSource

mod builder;
mod current;
mod error;
mod handle;
mod join;
mod race;
mod shared;
mod task;
mod tree;

pub use builder::{fail_after, move_on_after, scope, ScopeBuilder, DEFAULT_WARN_AFTER};
pub use current::token;
#[cfg(all(feature = "axum", not(loom)))]
pub(crate) use current::{ambient, Ambient, CURRENT};
pub use error::ScopeError;
pub use handle::Scope;
pub use race::{race, Racer};
pub use shared::Policy;
pub use task::{JoinTask, TaskHandle};
pub use tree::{tree, RunState, ScopeSnapshot, TaskSnapshot, TreeSnapshot};

#[cfg(loom)]
#[doc(hidden)]
pub use join::JoinCounter;
