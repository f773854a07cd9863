//! Scopes: the structured task tree.
//!
//! Every task lives in a scope; every scope owns a cancellation source
//! linked to its parent's token; a scope does not finish until its body and
//! all of its tasks and nested scopes have finished.
//!
//! A typed face over an untyped engine:
//!
//! * the face: [`Scope<E>`](Scope) (`typed.rs`), what a body spawns with;
//!   [`ScopeHandle`] (`handle.rs`), an owned handle to a live scope;
//!   [`TaskHandle`] (`task.rs`); [`ScopeBuilder`] and the entry functions
//!   (`builder.rs`); [`race`] (`race.rs`); [`Scope::start`] and
//!   [`Ready`] (`start.rs`); [`TaskSet`] (`task_set.rs`); [`TaskBuilder`]
//!   (`task_builder.rs`); [`TaskError`] (`task_error.rs`),
//!   which tells a cancellation from a real failure; [`ScopeError`]
//!   (`error.rs`);
//! * the engine (`engine.rs`), which does not know `E` and composes parts
//!   that each own one job and one lock: `settings.rs`, `cancel_state.rs`,
//!   `join.rs` (the counter, loom-checked), `ledger.rs` (failures and the
//!   pure `outcome`), `registry.rs` (tasks with their own tokens, child
//!   scopes), `watchdog.rs` (grace period and warnings, awaited or
//!   orphaned);
//! * how a scope runs: `spawn.rs` (a task's future and accounting),
//!   `lifecycle.rs` (body → joining → finished, the drop-order rule, the
//!   one typed exit), `current.rs` (the ambient scope behind [`token()`]),
//!   `stack.rs` (room on the stack at every level of nesting), `tree.rs`
//!   (snapshots of the live tree, iterative).
//!
//! Modules import downward: the face imports the engine and its parts; the
//! parts import nothing of each other but `settings` and `ledger`'s types;
//! all of it imports `crate::cancel`, never the crate root.

mod any_scope;
mod builder;
mod cancel_state;
mod current;
mod engine;
mod error;
mod handle;
mod join;
mod ledger;
mod lifecycle;
mod one_lock;
mod race;
mod registry;
mod settings;
mod spawn;
mod stack;
mod start;
mod task;
mod task_builder;
mod task_error;
mod task_set;
mod tree;
mod typed;
mod watchdog;

pub use any_scope::{current_scope, AnyScope};
pub use builder::{fail_after, move_on_after, scope, ScopeBuilder};
pub use current::token;
pub use error::{ScopeClosed, ScopeError};
pub use handle::ScopeHandle;
pub use race::{race, RaceError, Racer};
pub use settings::Policy;
pub use start::{Ready, StartError};
pub use task::{JoinTask, TaskHandle};
pub use task_builder::TaskBuilder;
pub use task_error::{BoxError, TaskError};
pub use task_set::TaskSet;
pub use tree::{tree, RunState, ScopeSnapshot, TaskSnapshot, TreeSnapshot};
pub use typed::Scope;
