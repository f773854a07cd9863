//! Scopes: the structured task tree.
//!
//! Every task lives in a scope; every scope owns a cancellation source
//! linked to its parent's token; a scope does not finish until its body and
//! all of its tasks and nested scopes have finished.
//!
//! A typed face over an untyped engine, one folder each:
//!
//! * `face/`, what users hold: [`Scope<E>`](Scope) (`scope.rs`), what a
//!   body spawns with; [`ScopeHandle`] (`scope_handle.rs`), an owned
//!   handle to a live scope; [`AnyScope`] (`any_scope.rs`), the methods
//!   every scope has whatever its error type; [`TaskHandle`]
//!   (`task_handle.rs`); [`ScopeBuilder`] and the entry functions
//!   (`scope_builder.rs`); [`race`] (`race.rs`); [`Scope::start`] and
//!   [`Ready`] (`start.rs`); [`TaskSet`] (`task_set.rs`); [`TaskBuilder`]
//!   (`task_builder.rs`); [`ScopeError`] (`scope_error.rs`). Each type's
//!   impls live in the file named after it.
//! * `engine/`, which does not know `E` and composes parts that each own
//!   one job and one lock: `settings.rs`, `cancel_state.rs`, `join.rs`
//!   (the counter, loom-checked), `ledger.rs` (failures and the pure
//!   `outcome`), `registry.rs` (tasks with their own tokens, child
//!   scopes), `watchdog.rs` (grace period and warnings, awaited or
//!   orphaned), `one_lock.rs` (the debug check that no two are held);
//! * `run/`, how a scope runs: `spawn.rs` (a task's future and
//!   accounting), `lifecycle.rs` (body → joining → finished, the
//!   drop-order rule, the one typed exit), `current.rs` (the ambient scope
//!   behind [`token()`]), `stack.rs` (room on the stack at every level of
//!   nesting), `tree.rs` (snapshots of the live tree, iterative).
//!
//! [`TaskError`] (`task_error.rs`), which tells a cancellation from a real
//! failure, is used by all three.
//!
//! Modules import downward: the face imports the engine and `run`; `run`
//! imports the engine; the engine's parts import nothing of each other but
//! `settings` and `ledger`'s types; all of it imports `crate::cancel`,
//! never the crate root.

mod engine;
mod face;
mod run;
mod task_error;

pub use engine::cleanups::ScopeEnd;
pub use engine::settings::Policy;
pub use face::any_scope::{current_scope, AnyScope};
pub use face::race::{race, RaceError, Racer};
pub use face::scope::Scope;
pub use face::scope_builder::{fail_after, move_on_after, scope, ScopeBuilder};
pub use face::scope_error::{ScopeClosed, ScopeError};
pub use face::scope_handle::ScopeHandle;
pub use face::scope_local::ScopeLocal;
pub use face::start::{Ready, StartError};
pub use face::task_builder::TaskBuilder;
pub use face::task_handle::{JoinTask, TaskHandle};
pub use face::task_set::TaskSet;
pub use run::current::token;
pub use run::tree::{tree, RunState, ScopeSnapshot, TaskSnapshot, TreeSnapshot};
pub use task_error::{BoxError, TaskError};
