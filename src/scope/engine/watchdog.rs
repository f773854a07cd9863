//! The watchdog: what a cancelled scope does while it still waits. After
//! the grace period it aborts the tasks still running (here and in the
//! scopes nested in it); after `warn_after` it logs one warning naming them.
//! Both count from the moment the scope was cancelled.
//!
//! One watchdog serves both cases: a scope that is awaited polls it from
//! its driver (beside the body, then beside the join), and a scope whose
//! future was dropped while tasks still ran gets a small tokio task of its
//! own that polls it until the last of them has stopped ([`orphan`]).
//!
//! A duration of `Duration::MAX`, or one that would overflow the clock, is
//! "never"; zero is "at once".

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::scope::engine::Engine;

/// What the watchdog does when a delay after cancellation has passed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Duty {
    Warn,
    Abort,
}

/// The watchdog's state: which duties are done, and at most one timer.
#[derive(Default)]
pub(crate) struct Watchdog {
    warned: bool,
    aborted: bool,
    /// Allocated only once a cancelled scope has to wait for a deadline:
    /// every scope's future carries one pointer, not a timer.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Watchdog {
    /// Does what is due and arms the timer for what is next. Call it on
    /// every pending poll of a cancelled scope.
    pub(crate) fn poll(&mut self, engine: &Engine, cx: &mut Context<'_>) {
        let Some(cancelled_at) = engine.cancel.cancelled_at() else {
            return;
        };
        while let Some((deadline, duty)) = self.next(engine, cancelled_at) {
            if Instant::now() < deadline {
                let sleep = match &mut self.sleep {
                    Some(sleep) => {
                        if sleep.deadline() != deadline {
                            sleep.as_mut().reset(deadline);
                        }
                        sleep
                    }
                    None => self
                        .sleep
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                if sleep.as_mut().poll(cx).is_pending() {
                    return;
                }
            }
            match duty {
                Duty::Warn => {
                    self.warned = true;
                    warn_laggards(engine);
                }
                Duty::Abort => {
                    self.aborted = true;
                    engine.abort_running();
                }
            }
        }
    }

    /// The earliest duty not done yet, with its deadline; `None` if nothing
    /// is left to do (or only "never").
    fn next(&self, engine: &Engine, cancelled_at: Instant) -> Option<(Instant, Duty)> {
        let settings = &engine.settings;
        let warn = (!self.warned)
            .then(|| after(cancelled_at, settings.warn_after))
            .flatten()
            .map(|at| (at, Duty::Warn));
        let abort = (!self.aborted)
            .then(|| settings.grace.and_then(|grace| after(cancelled_at, grace)))
            .flatten()
            .map(|at| (at, Duty::Abort));
        match (warn, abort) {
            (Some(w), Some(a)) => Some(if a.0 <= w.0 { a } else { w }),
            (w, a) => w.or(a),
        }
    }
}

/// `start + delay`, or `None` for "never" (`Duration::MAX`, or past what
/// the clock can hold).
fn after(start: Instant, delay: Duration) -> Option<Instant> {
    if delay == Duration::MAX {
        return None;
    }
    start.checked_add(delay)
}

fn warn_laggards(engine: &Engine) {
    let names = engine.running_names();
    if names.is_empty() {
        return;
    }
    let reason = engine
        .cancel
        .reason()
        .map(|r| r.to_string())
        .unwrap_or_default();
    tracing::warn!(
        scope = %engine.settings.name,
        reason = %reason,
        waited = ?engine.settings.warn_after,
        running = names.len(),
        tasks = %names.join(", "),
        "cancelled scope is still waiting for its tasks",
    );
    if engine.reports_to_stderr() {
        eprintln!(
            "taskscope: scope `{}`, cancelled ({reason}) {:?} ago, still waits for {} task(s): {}",
            engine.settings.name,
            engine.settings.warn_after,
            names.len(),
            names.join(", ")
        );
    }
}

/// Keeps the grace period of a scope whose future was dropped while its
/// tasks still ran: a small tokio task polls the watchdog until the last of
/// them has stopped, then runs `then` (the scope's cleanup steps, if it
/// registered any). Nothing is spawned outside a runtime, or without a
/// grace period to keep and nothing to run after.
pub(crate) fn orphan(engine: &Arc<Engine>, then: Option<Pin<Box<dyn Future<Output = ()> + Send>>>) {
    let watch = engine.settings.grace.is_some() && !engine.join.is_done();
    if !watch && then.is_none() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        if then.is_some() {
            tracing::error!(parent: engine.span(), "no runtime to run the dropped scope's cleanup steps on");
        }
        return;
    };
    let engine = Arc::clone(engine);
    let mut watchdog = Watchdog::default();
    let joined = std::future::poll_fn(move |cx| {
        if engine.join.poll_done(cx).is_ready() {
            return Poll::Ready(());
        }
        if watch {
            engine.note_cancelled();
            watchdog.poll(&engine, cx);
        }
        Poll::Pending
    });
    runtime.spawn(async move {
        joined.await;
        if let Some(then) = then {
            then.await;
        }
    });
}
