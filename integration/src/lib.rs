//! taskscope's integration tests (`tests/`), benchmarks (`benches/`) and
//! the examples that run servers (`examples/`), in a crate of their own so
//! that their dependencies stay out of the library's. Nothing here is
//! published.

/// `docs/guide.md`, every snippet compiled and run (the database one is
/// compiled only: it needs a server).
#[cfg(doctest)]
#[doc = include_str!("../../docs/guide.md")]
struct GuideDoctests;
