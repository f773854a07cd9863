//! Procedural macros for [`taskscope`](https://docs.rs/taskscope).
//!
//! Use them through the `taskscope` crate, which re-exports them; do not
//! depend on this crate directly. The `scope!` macro and the
//! `#[taskscope::main]` / `#[taskscope::test]` attributes are built here on top
//! of the scope API; until they land this crate exports nothing.
