//! What users hold: the scope in a body, its owned handle, the methods
//! every scope has, the builders, and the handles of tasks. Each type's
//! impls live in the file named after it.

pub(crate) mod any_scope;
pub(crate) mod race;
pub(crate) mod scope;
pub(crate) mod scope_builder;
pub(crate) mod scope_error;
pub(crate) mod scope_handle;
pub(crate) mod scope_local;
pub(crate) mod start;
pub(crate) mod task_builder;
pub(crate) mod task_handle;
pub(crate) mod task_set;
