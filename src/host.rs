//! Entry points: the root scope behind `#[taskscope::main]` and
//! `#[taskscope::test]`, usable without the macros too.
//!
//! A process is a root scope whose token fires on SIGINT or SIGTERM (Ctrl-C
//! where there are no Unix signals) with [`CancelReason::Shutdown`] — the
//! analogue of .NET's host lifetime and `BackgroundService`'s
//! `stoppingToken`. After the first signal the scope has a grace period
//! to finish; tasks
//! still running then are aborted. A second signal aborts at once. Halfway
//! through the grace period, and on SIGQUIT at any time, the live task tree
//! is printed to stderr: what the shutdown is waiting on.
//!
//! # Exit codes
//!
//! | code | when |
//! |---|---|
//! | 0 | `main` returned `Ok`, also after a graceful shutdown |
//! | 1 | `main` returned an error (printed to stderr), or a task failed it |
//! | 2 | shutdown was requested and the grace period ran out: what was still running was aborted |
//! | 130 | a second shutdown signal arrived: everything was aborted at once (128 + SIGINT, as shells report it) |

use std::fmt;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use crate::cancel::{CancelReason, CancellationSource, Cancelled};
use crate::scope::{ScopeBuilder, ScopeError, TaskError};

/// The exit codes of a process run by [`run_main`] (and so by
/// `#[taskscope::main]`), listed in the [module docs](self).
pub(crate) mod exit_code {
    /// `main` returned `Ok` (also after a graceful shutdown).
    pub const SUCCESS: u8 = 0;
    /// `main` returned an error (printed to stderr), or a task failed it.
    pub const FAILURE: u8 = 1;
    /// Shutdown was requested and the grace period ran out: what was still
    /// running was aborted.
    pub const ABORTED: u8 = 2;
    /// A second shutdown signal arrived: everything was aborted at once
    /// (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
}

/// The grace period `#[taskscope::main]` gives a shutdown unless told
/// otherwise: 30 s.
#[doc(hidden)]
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The error type of the root scope: the application's own error, or the
/// cancellation that stopped it.
#[derive(Debug)]
pub enum MainError<E> {
    /// `main` (or a task it awaited) returned this error.
    App(E),
    /// Work stopped because it was cancelled.
    Cancelled(Cancelled),
}

impl<E> From<Cancelled> for MainError<E> {
    fn from(cancelled: Cancelled) -> Self {
        MainError::Cancelled(cancelled)
    }
}

/// The shutdown's cancellation is a cancellation; the application's own
/// errors are real failures.
impl<E: Send + 'static> TaskError for MainError<E> {
    fn is_cancellation(&self) -> bool {
        matches!(self, MainError::Cancelled(_))
    }
}

impl<E: fmt::Debug> fmt::Display for MainError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MainError::App(error) => write!(f, "{error:?}"),
            MainError::Cancelled(cancelled) => write!(f, "{cancelled}"),
        }
    }
}

/// What `main` may return: `()` or `Result<(), E>` with a `Debug` error.
pub trait MainResult {
    /// The error type.
    type Error: fmt::Debug + Send + 'static;
    /// As a `Result`.
    fn into_result(self) -> Result<(), Self::Error>;
}

impl MainResult for () {
    type Error = std::convert::Infallible;
    fn into_result(self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl<E: fmt::Debug + Send + 'static> MainResult for Result<(), E> {
    type Error = E;
    fn into_result(self) -> Result<(), E> {
        self
    }
}

/// Runs `main` as the body of a root scope on `runtime`, shutting down on
/// SIGINT / SIGTERM with `grace` to finish, and returns the exit code (see
/// [the exit codes](self#exit-codes)). This is what `#[taskscope::main]`
/// expands to.
///
/// ```no_run
/// use std::time::Duration;
///
/// fn main() -> std::process::ExitCode {
///     let runtime = tokio::runtime::Runtime::new().unwrap();
///     taskscope::host::run_main(runtime, "main", Duration::from_secs(10), async {
///         let token = taskscope::token(); // fires on Ctrl-C
///         token.cancelled().await;
///         println!("shutting down cleanly");
///     })
/// }
/// ```
#[track_caller]
pub fn run_main<F>(
    runtime: tokio::runtime::Runtime,
    name: &'static str,
    grace: Duration,
    main: F,
) -> ExitCode
where
    F: Future,
    F::Output: MainResult,
{
    run_main_bound(runtime, name, grace, |root| root, main)
}

/// [`run_main`] with the root scope's builder passed through `bind` first:
/// the scope-local values `#[taskscope::main(bind = (KEY, value))]` binds.
#[doc(hidden)]
#[track_caller]
pub fn run_main_bound<F>(
    runtime: tokio::runtime::Runtime,
    name: &'static str,
    grace: Duration,
    bind: impl FnOnce(ScopeBuilder) -> ScopeBuilder,
    main: F,
) -> ExitCode
where
    F: Future,
    F::Output: MainResult,
{
    // Made here, outside the async block, so the root scope's location is
    // the caller's `main`.
    // The grace travels with the tree: what runs inside reads it from its
    // scope (`AnyScope::shutdown_grace`).
    let builder = bind(ScopeBuilder::new())
        .name(name)
        .shutdown_grace(grace)
        .stderr_reports();
    let code = runtime.block_on(async move {
        let shutdown = CancellationSource::new();
        let mut signals = Signals::new();
        // The grace period is enforced here, not by the root scope: when it
        // ends the process exits ABORTED and the runtime drops what is left.
        let root = builder
            .parent(&shutdown.token())
            .run(async |_scope| main.await.into_result().map_err(MainError::App));
        tokio::pin!(root);
        loop {
            tokio::select! {
                result = &mut root => return finished(result),
                event = signals.next() => match event {
                    Event::Stop => break,
                    Event::Dump => eprint!("taskscope: task tree\n{}", crate::scope::tree()),
                },
            }
        }
        eprintln!("taskscope: shutdown requested; {grace:?} to finish (signal again to abort)");
        shutdown.cancel_with(CancelReason::Shutdown);
        // tokio's `sleep` takes any duration: `Duration::MAX` never ends.
        let deadline = tokio::time::sleep(grace);
        let halfway = tokio::time::sleep(grace / 2);
        tokio::pin!(deadline, halfway);
        let mut reported = false;
        loop {
            tokio::select! {
                result = &mut root => return finished(result),
                event = signals.next() => match event {
                    Event::Stop => {
                        eprintln!("taskscope: second shutdown signal; aborting");
                        return exit_code::INTERRUPTED;
                    }
                    Event::Dump => eprint!("taskscope: task tree\n{}", crate::scope::tree()),
                },
                () = &mut halfway, if !reported => {
                    reported = true;
                    eprint!("taskscope: shutdown still waiting after {:?} on:\n{}", grace / 2, crate::scope::tree());
                }
                () = &mut deadline => {
                    eprint!(
                        "taskscope: grace period of {grace:?} is over; aborting what is still running:\n{}",
                        crate::scope::tree()
                    );
                    return exit_code::ABORTED;
                }
            }
        }
    });
    // Shutting the runtime down drops every task still alive: the abort.
    // Blocking tasks cannot be dropped; do not wait for them.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::from(code)
}

/// The exit code for a root scope that finished.
fn finished<E: fmt::Debug>(result: Result<(), ScopeError<MainError<E>>>) -> u8 {
    match result {
        Ok(()) => exit_code::SUCCESS,
        Err(error) => {
            for error in error.into_errors() {
                match error {
                    // Stopping because of the shutdown is not a failure.
                    MainError::Cancelled(c) if c.reason().root() == &CancelReason::Shutdown => {}
                    other => {
                        eprintln!("Error: {other}");
                        return exit_code::FAILURE;
                    }
                }
            }
            exit_code::SUCCESS
        }
    }
}

/// SIGINT and SIGTERM on Unix, Ctrl-C elsewhere; SIGQUIT asks for a dump
/// of the task tree (as a JVM prints its threads), and the process keeps
/// running.
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    quit: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
                quit: signal(SignalKind::quit()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    /// The next signal: a request to stop, or to dump the task tree.
    async fn next(&mut self) -> Event {
        #[cfg(unix)]
        {
            tokio::select! {
                () = next(&mut self.interrupt) => Event::Stop,
                () = next(&mut self.terminate) => Event::Stop,
                () = next(&mut self.quit) => Event::Dump,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Event::Stop
        }
    }
}

enum Event {
    Stop,
    Dump,
}

#[cfg(unix)]
async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// How long a test's root scope lets tasks that were still running when the
/// test returned stop before aborting them.
const TEST_GRACE: Duration = Duration::from_secs(5);

/// Runs `test` as the body of a root scope on `runtime`, and panics (failing
/// the test) if it returns an error or returns while tasks it started through
/// taskscope are still running, naming them. What `#[taskscope::test]`
/// expands to.
#[doc(hidden)]
#[track_caller]
pub fn run_test<F>(
    runtime: tokio::runtime::Runtime,
    name: &'static str,
    bind: impl FnOnce(ScopeBuilder) -> ScopeBuilder,
    test: F,
) where
    F: Future,
    F::Output: MainResult,
{
    let builder = bind(ScopeBuilder::new())
        .name(name)
        .grace_period(TEST_GRACE);
    let (result, escaped) = runtime.block_on(async move {
        let mut escaped = Vec::new();
        let result = builder
            .run(
                async |scope: &crate::Scope<MainError<<F::Output as MainResult>::Error>>| {
                    let outcome = test.await.into_result().map_err(MainError::App);
                    escaped = scope
                        .handle()
                        .snapshot()
                        .map_or_else(Vec::new, |s| s.running_tasks());
                    if !escaped.is_empty() {
                        scope.cancel_with(CancelReason::message(
                            "the test returned with tasks still running",
                        ));
                    }
                    outcome
                },
            )
            .await;
        (result, escaped)
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
    if !escaped.is_empty() {
        panic!(
            "test `{name}` returned while tasks it started through taskscope were still running: {}",
            escaped.join(", ")
        );
    }
    if let Err(error) = result {
        let errors: Vec<String> = error
            .into_errors()
            .iter()
            .map(ToString::to_string)
            .collect();
        panic!("test `{name}` failed: {}", errors.join("; "));
    }
}
