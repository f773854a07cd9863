//! Structured concurrency for Tokio, built on cancellation tokens in the
//! style of .NET's `CancellationTokenSource` / `CancellationToken`.
//!
//! Every task has an owner, every owner stops its tasks when it fails, and
//! every long operation stops when a request is aborted, a timeout fires or
//! the process shuts down.
//!
//! | you want | use | |
//! |---|---|---|
//! | to stop work you started, and say why | [`CancellationSource`] / [`CancellationToken`] | tokens |
//! | tasks that cannot outlive their owner | [`scope()`], [`scope!`], [`ScopeBuilder`] | scopes |
//! | a whole program that shuts down on a signal | [`#[taskscope::main]`](macro@main) | host |
//! | a request whose work stops when its client leaves | [`axum::RequestScopeLayer`] (feature `axum`) | integrations |
//! | database queries stopped on the server | [`postgres::PgCancelExt`] (feature `postgres`) | integrations |
//! | to see what is running | [`tree()`], SIGQUIT under `main` | observability |
//!
//! # Tokens
//!
//! Only a source cancels; a token observes. Tokens link, carry a reason and
//! a deadline, run callbacks and stop any future.
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
//! # Scopes
//!
//! A scope runs its body in the caller's task, spawns tasks tied to it, and
//! does not finish before all of them have. The first real failure cancels
//! the rest; a panic is resumed after everyone has been joined. Tasks are
//! `'static`, as with `tokio::spawn`: move what they use into them
//! (`async move`); without the `move`, rustc reports that a borrowed value
//! "does not live long enough" (E0597).
//!
//! ```
//! use std::time::Duration;
//! use taskscope::{scope, Cancelled};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let total = scope!(timeout = Duration::from_secs(5), |s| {
//!     let a = s.spawn(async { Ok::<_, Cancelled>(1) });
//!     let b = s.spawn(async { Ok(2) });
//!     Ok(a.await? + b.await?)
//! })
//! .await
//! .unwrap();
//! assert_eq!(total, 3);
//! # }
//! ```
//!
//! # The host
//!
//! `#[taskscope::main]` runs `main` in a root scope that SIGINT/SIGTERM
//! cancel, with a shutdown grace period and exit codes; `#[taskscope::test]`
//! fails a test whose tasks outlive it.
//!
//! ```no_run
//! #[taskscope::main(shutdown_grace = "10s")]
//! async fn main() {
//!     taskscope::token().cancelled().await; // until Ctrl-C
//! }
//! ```
//!
//! # Integrations
//!
//! They use only the public API ([`ScopeHandle`], [`ScopeBuilder::within`]),
//! so you can write your own. With the `axum` feature every request gets a
//! scope whose token fires when the client disconnects:
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # mod with_axum {
//! use axum::{routing::get, Router};
//! use taskscope::CancellationToken;
//!
//! async fn search(token: CancellationToken) -> &'static str {
//!     token.cancelled().await; // the client left, or the server stops
//!     ""
//! }
//!
//! #[taskscope::main]
//! async fn main() -> std::io::Result<()> {
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     taskscope::axum::serve(listener, Router::new().route("/search", get(search))).await
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! With the `postgres` feature, `client.cancellable().query(…)` stops the
//! query on the PostgreSQL server when the token fires (see [`postgres`]).
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `host` | yes | `#[taskscope::main]`, `#[taskscope::test]`, [`host::run_main`]: signals and the multi-thread runtime |
//! | `axum` | no | request scopes for axum servers ([`axum`]) |
//! | `postgres` | no | tokio-postgres queries cancelled on the server ([`postgres`]) |
//! | `tonic` | no | gRPC deadlines and cancellation across calls ([`tonic`]) |
//! | `reqwest` | no | HTTP calls that observe a token and send its budget ([`reqwest`]) |
//! | `anyhow` | no | `anyhow::Error` as a scope's error type |
//! | `serde` | no | `Serialize` for task-tree snapshots |
//!
//! Tokens and scopes need only tokio's `rt`, `time` and `sync`: with
//! `default-features = false` they run on any tokio runtime.
//!
//! # Modules
//!
//! The crate root holds tokens, scopes and the macros. [`host`] is the
//! process entry point behind `#[taskscope::main]`; [`tree`](mod@tree) holds the
//! types of the live task tree. [`service`] runs
//! services with restarts, readiness and an ordered, phased shutdown.
//! [`remote`] holds the wire formats and policies that carry a deadline
//! across processes. [`axum`], [`tonic`], [`reqwest`] and [`postgres`] are
//! the integrations. The repository's `docs/` folder has the
//! guide (the .NET walkthrough retold), the guarantees and where each is
//! tested, the mapping from .NET, a comparison with other libraries, and the
//! benchmarks.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(all(feature = "axum", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
mod cancel;
#[cfg(all(feature = "postgres", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(all(feature = "reqwest", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
#[cfg(all(feature = "tonic", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub mod tonic;
// tokio has no signal support under `--cfg loom`; the models do not need it.
#[cfg(all(feature = "host", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "host")))]
pub mod host;
mod loom;
#[cfg(not(loom))]
pub mod remote;
mod scope;
#[cfg(not(loom))]
pub mod service;

pub use cancel::{
    CancelReason, CancellationSource, CancellationToken, Cancelled, DropGuard, Registration,
    RunUntilCancelled, WaitForCancellation,
};

/// The live task tree, as data: what [`tree()`] returns (its
/// [`Display`](std::fmt::Display) is the indented text SIGQUIT prints) and
/// what [`AnyScope::snapshot`] gives for one scope.
pub mod tree {
    pub use crate::scope::{RunState, ScopeSnapshot, TaskSnapshot, TreeSnapshot};
}

pub use scope::{
    current_scope, fail_after, move_on_after, race, scope, token, tree, AnyScope, BoxError,
    JoinTask, Policy, RaceError, Racer, Ready, Scope, ScopeBuilder, ScopeClosed, ScopeEnd,
    ScopeError, ScopeHandle, ScopeLocal, StartError, TaskBuilder, TaskError, TaskHandle, TaskSet,
};

/// Opens a scope around a body, writing the [`ScopeBuilder`] boilerplate.
///
/// The body is a closure taking the scope (`|s| { … }`); options go first as
/// `key = value` pairs. It expands to a [`ScopeBuilder`] chain ending in
/// `.run(async |s| { … })` (or `run_or_move_on`, or `race`), so it is a
/// future: `.await` it.
///
/// The scope's name defaults to where the macro is called (`file:line`),
/// so warnings and errors point at your code. A `scope!` inside another
/// scope (its body or one of its tasks) links to it.
///
/// | option | value | builder call |
/// |---|---|---|
/// | `name` | `impl Into<Arc<str>>` | [`ScopeBuilder::name`] |
/// | `policy` | `fail_fast` (default), `supervise`, `race` | [`ScopeBuilder::policy`], or [`ScopeBuilder::race`] |
/// | `limit` | `usize` | [`ScopeBuilder::limit`] |
/// | `grace_period` | `Duration` | [`ScopeBuilder::grace_period`] |
/// | `warn_after` | `Duration` | [`ScopeBuilder::warn_after`] |
/// | `timeout` | `Duration` ("fail" form) | [`ScopeBuilder::timeout`] |
/// | `move_on_after` | `Duration` ("move on" form: `Ok(None)`) | [`ScopeBuilder::timeout`] + [`ScopeBuilder::run_or_move_on`] |
/// | `deadline` | `tokio::time::Instant` | [`ScopeBuilder::deadline`] |
/// | `shielded` | `Duration` (required bound) | [`ScopeBuilder::shielded`] |
/// | `parent` | a [`CancellationToken`] | [`ScopeBuilder::parent`] |
/// | `cancel_on_exit` | `bool` | [`ScopeBuilder::cancel_on_exit`] |
/// | `bind` | `(KEY, value)`, a [`ScopeLocal`] and its value; may repeat | [`ScopeBuilder::bind`] |
///
/// The keys are the builder's method names (`move_on_after` is the one
/// that picks a form rather than an option). A scope has one bound:
/// `timeout`, `move_on_after`, `deadline` and `shielded` each bound it, and
/// two of them are a compile error naming both, as they are for the
/// builder.
///
/// # What it expands to
///
/// ```text
/// scope!(name = "fetch", timeout = Duration::from_secs(5), |s| { body })
/// // becomes
/// ::taskscope::ScopeBuilder::new()
///     .name("fetch")
///     .timeout(Duration::from_secs(5))
///     .run(async |s| { body })
/// ```
///
/// # Examples
///
/// No options: a fail-fast scope.
///
/// ```
/// use taskscope::{scope, Cancelled};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let total = scope!(|s| {
///     let a = s.spawn(async { Ok::<_, Cancelled>(1) });
///     let b = s.spawn(async { Ok(2) });
///     Ok(a.await? + b.await?)
/// })
/// .await
/// .unwrap();
/// assert_eq!(total, 3);
/// # }
/// ```
///
/// `name`, `policy = supervise` and `limit`:
///
/// ```
/// use taskscope::{scope, ScopeError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let result = scope!(name = "import", policy = supervise, limit = 4, |s| {
///     for i in 0..10 {
///         s.spawn(async move {
///             if i == 3 {
///                 return Err(std::io::Error::other("row 3 is malformed"));
///             }
///             Ok(())
///         });
///     }
///     Ok(())
/// })
/// .await;
/// assert!(matches!(result, Err(ScopeError::Failed { .. }))); // the other rows ran
/// # }
/// ```
///
/// `timeout` (fail) and `move_on_after` (carry on):
///
/// ```
/// use std::time::Duration;
/// use taskscope::{scope, Cancelled};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let slow = async { tokio::time::sleep(Duration::from_secs(10)).await };
/// let failed = scope!(timeout = Duration::from_secs(1), |s| {
///     s.token().run_until_cancelled(slow).await?;
///     Ok::<_, Cancelled>(())
/// })
/// .await;
/// assert!(failed.unwrap_err().is_timeout());
///
/// let moved_on = scope!(move_on_after = Duration::from_secs(1), |s| {
///     s.token().run_until_cancelled(std::future::pending::<()>()).await?;
///     Ok::<_, Cancelled>(42)
/// })
/// .await;
/// assert_eq!(moved_on.unwrap(), None);
/// # }
/// ```
///
/// `deadline`:
///
/// ```
/// use std::time::Duration;
/// use taskscope::{scope, Cancelled};
/// use tokio::time::Instant;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let at = Instant::now() + Duration::from_secs(2);
/// let result = scope!(deadline = at, |s| {
///     s.token().cancelled().await;
///     Err::<(), _>(Cancelled::new(s.token().reason().unwrap()))
/// })
/// .await;
/// assert!(result.unwrap_err().is_timeout());
/// # }
/// ```
///
/// A race is not a policy (its body enters contestants and it returns the
/// winner): it is [`race`], or `ScopeBuilder::race` with
/// options; `policy = race` is a compile error saying so.
///
/// `grace_period` and `warn_after`: stubborn tasks are aborted after the grace
/// period; a warning names them first.
///
/// ```
/// use std::time::Duration;
/// use taskscope::{scope, Cancelled};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let result = scope!(grace_period = Duration::from_secs(2), warn_after = Duration::from_secs(1), |s| {
///     let stubborn = s.spawn(async {
///         std::future::pending::<()>().await; // never looks at its token
///         Ok::<_, Cancelled>(())
///     });
///     s.cancel();
///     stubborn.await
/// })
/// .await;
/// assert!(result.is_err()); // aborted
/// # }
/// ```
///
/// `parent` (explicit token passing) and `shielded` (cleanup that must run):
///
/// ```
/// use std::time::Duration;
/// use taskscope::{scope, CancellationSource, Cancelled};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let request = CancellationSource::new();
/// request.cancel();
/// let cleaned = scope!(parent = request.token(), |s| {
///     assert!(s.token().is_cancelled());
///     let flushed = scope!(shielded = Duration::from_secs(5), |cleanup| {
///         Ok::<_, Cancelled>(!cleanup.token().is_cancelled())
///     })
///     .await
///     .unwrap();
///     Ok::<_, Cancelled>(flushed)
/// })
/// .await
/// .unwrap();
/// assert!(cleaned);
/// # }
/// ```
pub use taskscope_macros::scope;

/// Runs `async fn main` in a root scope whose token fires on SIGINT or
/// SIGTERM (Ctrl-C where there are no Unix signals) with
/// [`CancelReason::Shutdown`]; see [`host::run_main`], which it expands to.
///
/// Options (all optional): `flavor = "multi_thread"` (default) or
/// `"current_thread"`, `worker_threads = N`, `bind = (KEY, value)` (a
/// [`ScopeLocal`] bound on the root scope, seen by everything the program
/// runs; may repeat), and `shutdown_grace = "30s"`
/// (also `"500ms"`, `"2m"`; default 30 s). Tasks still running when the grace
/// period ends are aborted; a second signal aborts at once.
///
/// `main` may return `()` or `Result<(), E: Debug>`. The process exits with
/// 0 (also after a graceful shutdown), 1 (an error; printed to stderr),
/// 2 (the grace period ran out) or 130 (a second signal); see
/// [the exit codes](host#exit-codes).
///
/// ```no_run
/// use taskscope::Cancelled;
///
/// #[taskscope::main(shutdown_grace = "10s")]
/// async fn main() -> Result<(), Cancelled> {
///     let stopping = taskscope::token();
///     while !stopping.is_cancelled() {
///         // one unit of work, honouring `stopping`
///         stopping.run_until_cancelled(tokio::time::sleep(std::time::Duration::from_secs(1))).await.ok();
///     }
///     println!("stopping: {}", stopping.reason().unwrap());
///     Ok(())
/// }
/// ```
///
/// It expands to roughly:
///
/// ```text
/// fn main() -> std::process::ExitCode {
///     async fn __taskscope_main() -> Result<(), Cancelled> { /* the body */ }
///     taskscope::host::run_main(
///         tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap(),
///         "main (src/main.rs:3)",
///         Duration::from_millis(10_000),
///         __taskscope_main(),
///     )
///     // (with `bind`, the root scope's builder binds each value first)
/// }
/// ```
pub use taskscope_macros::main;

/// Like `#[tokio::test]` (same `flavor`, `worker_threads` and
/// `start_paused` options; current-thread by default), with the body in a
/// root scope; `bind = (KEY, value)` binds a [`ScopeLocal`] on that root
/// scope (and may repeat). The test fails, naming the tasks, if a task started through
/// taskscope is still running when the body returns; it fails too if the
/// body returns an `Err`.
///
/// ```
/// #[taskscope::test(start_paused = true)]
/// async fn nested_scopes_link_to_the_test() {
///     let token = taskscope::token(); // the test's root scope
///     let inner = taskscope::scope(async |s| {
///         Ok::<_, taskscope::Cancelled>(s.token().is_cancelled())
///     })
///     .await
///     .unwrap();
///     assert!(!inner && !token.is_cancelled());
/// }
/// # fn main() {}
/// ```
///
/// It expands to roughly:
///
/// ```text
/// #[test]
/// fn nested_scopes_link_to_the_test() {
///     async fn __taskscope_test() { /* the body */ }
///     taskscope::__private::run_test(
///         tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap(),
///         "nested_scopes_link_to_the_test (tests/x.rs:1)",
///         |root| root, // the `bind` options, if any
///         __taskscope_test(),
///     )
/// }
/// ```
pub use taskscope_macros::test;

#[doc(hidden)]
#[cfg(not(loom))]
pub mod __private {
    //! Used by the macros' expansions; not part of the API.
    #[cfg(feature = "host")]
    pub use crate::host::DEFAULT_SHUTDOWN_GRACE;
    #[cfg(feature = "host")]
    pub use crate::host::{run_main_bound, run_test};
    pub use tokio;
}

/// The README's example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
