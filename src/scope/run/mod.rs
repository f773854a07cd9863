//! How a scope runs: a task's future and its accounting, the scope's
//! lifecycle from body to finished, the ambient scope, room on the stack,
//! and snapshots of the live tree.

pub(crate) mod current;
pub(crate) mod lifecycle;
pub(crate) mod spawn;
pub(crate) mod stack;
pub(crate) mod tree;
