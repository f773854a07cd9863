//! One place to import synchronisation primitives from.
//!
//! Under `--cfg loom` these are loom's model-checked versions; otherwise they
//! are std's. The cancellation engine imports only from here, so the code the
//! loom models explore is the code users run.

#[cfg(loom)]
pub(crate) use loom::{sync, thread};

#[cfg(not(loom))]
pub(crate) mod sync {
    pub(crate) use std::sync::{atomic, Arc, Mutex, MutexGuard};
}

#[cfg(not(loom))]
pub(crate) mod thread {
    pub(crate) use std::thread::yield_now;
}
