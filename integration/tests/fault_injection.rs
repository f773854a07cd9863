//! Fault injection for scopes: nested scopes whose tasks succeed, fail,
//! panic, panic inside their cleanup, or ignore cancellation (forcing
//! grace-period aborts), and whose futures are dropped after N polls for
//! every N up to a bound. For every case: the enclosing scope returns, no
//! task outlives it, each error surfaces exactly once when no panic
//! happened, exactly one panic (one of those injected) surfaces otherwise,
//! and the runtime has no task left alive. (A scope resumes its first
//! panic; its other panics and its errors are then logged, not returned.)

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use taskscope::{Cancelled, ScopeBuilder, ScopeError, TaskError};

/// Polls its future at most `polls` times, then gives up (dropping it).
struct DropAfterPolls<F> {
    future: Pin<Box<F>>,
    polls: usize,
}

impl<F: Future> Future for DropAfterPolls<F> {
    type Output = Option<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.polls == 0 {
            return Poll::Ready(None);
        }
        self.polls -= 1;
        self.future.as_mut().poll(cx).map(Some)
    }
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Succeed,
    Fail,
    Panic,
    PanicInCleanup,
    IgnoreCancel,
}

const FAULTS: [Fault; 5] = [
    Fault::Succeed,
    Fault::Fail,
    Fault::Panic,
    Fault::PanicInCleanup,
    Fault::IgnoreCancel,
];

#[derive(Debug)]
struct Injected(usize);

impl From<Cancelled> for Injected {
    fn from(_: Cancelled) -> Self {
        Injected(usize::MAX)
    }
}

impl TaskError for Injected {
    fn is_cancellation(&self) -> bool {
        self.0 == usize::MAX
    }
}

struct Live(Arc<AtomicUsize>);
impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One scope with one task per fault in `faults`; records what it injected.
async fn faulty_scope(
    faults: &[Fault],
    live: &Arc<AtomicUsize>,
    injected_errors: &Mutex<Vec<usize>>,
    injected_panics: &Mutex<Vec<usize>>,
    next_id: &AtomicUsize,
) -> Result<(), ScopeError<Injected>> {
    ScopeBuilder::new()
        .grace_period(Duration::from_millis(100))
        .run(async |s| {
            for &fault in faults {
                let id = next_id.fetch_add(1, Ordering::SeqCst);
                live.fetch_add(1, Ordering::SeqCst);
                let guard = Live(live.clone());
                match fault {
                    Fault::Fail => injected_errors.lock().unwrap().push(id),
                    Fault::Panic | Fault::PanicInCleanup => {
                        injected_panics.lock().unwrap().push(id)
                    }
                    _ => {}
                }
                s.spawn(async move {
                    let _guard = guard;
                    let token = taskscope::token();
                    tokio::time::sleep(Duration::from_millis(1 + id as u64 % 5)).await;
                    match fault {
                        Fault::Succeed => Ok(()),
                        Fault::Fail => Err(Injected(id)),
                        Fault::Panic => std::panic::panic_any(id),
                        Fault::PanicInCleanup => {
                            // Cleanup after cancellation (or after its work,
                            // if nobody cancels) panics.
                            let _ =
                                tokio::time::timeout(Duration::from_millis(50), token.cancelled())
                                    .await;
                            std::panic::panic_any(id)
                        }
                        Fault::IgnoreCancel => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            Ok(())
                        }
                    }
                });
            }
            Ok(())
        })
        .await
}

#[test]
fn scopes_survive_every_fault_and_every_drop_point() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<usize>().is_none() {
            default_hook(info);
        }
    }));
    let mut cases = 0;
    let (mut dropped, mut panicked, mut failed, mut ok) = (0, 0, 0, 0);
    // Every pair of faults, dropped after N polls for every N up to the
    // bound (12, or 40 with TASKSCOPE_SOAK=full), or never.
    let bound = match std::env::var("TASKSCOPE_SOAK").as_deref() {
        Ok("full") => 40,
        _ => 12,
    };
    for (a, b) in FAULTS
        .iter()
        .flat_map(|a| FAULTS.iter().map(move |b| (*a, *b)))
    {
        for polls in (0..=bound).map(Some).chain([None]) {
            cases += 1;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap();
            let live = Arc::new(AtomicUsize::new(0));
            let errors = Mutex::new(Vec::new());
            let panics = Mutex::new(Vec::new());
            let next_id = AtomicUsize::new(0);
            let outcome = runtime.block_on(async {
                let outer = ScopeBuilder::new().run(async |_outer| {
                    // The inner scope, perhaps dropped after `polls` polls;
                    // the outer scope must still wait for its tasks.
                    let faults = [a, b];
                    let inner =
                        AssertUnwindSafe(faulty_scope(&faults, &live, &errors, &panics, &next_id))
                            .catch_unwind();
                    let result = match polls {
                        Some(polls) => {
                            DropAfterPolls {
                                future: Box::pin(inner),
                                polls,
                            }
                            .await
                        }
                        None => Some(inner.await),
                    };
                    Ok::<_, Cancelled>(result)
                });
                let result = tokio::time::timeout(Duration::from_secs(7200), outer).await;
                // Tasks retire just after releasing their scope.
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
                assert_eq!(
                    tokio::runtime::Handle::current()
                        .metrics()
                        .num_alive_tasks(),
                    0,
                    "{a:?}+{b:?} dropped after {polls:?}: a task is still alive"
                );
                result.unwrap_or_else(|_| {
                    panic!("{a:?}+{b:?} dropped after {polls:?}: the outer scope did not return")
                })
            });
            assert_eq!(
                live.load(Ordering::SeqCst),
                0,
                "{a:?}+{b:?} {polls:?}: a task outlived its scope"
            );
            let inner = outcome.expect("the outer scope itself does not fail");
            let injected_errors = errors.lock().unwrap().clone();
            let injected_panics = panics.lock().unwrap().clone();
            match inner {
                None => dropped += 1, // nobody awaits a dropped scope's result
                Some(Err(payload)) => {
                    panicked += 1;
                    let id = *payload.downcast_ref::<usize>().expect("an injected panic");
                    assert!(
                        injected_panics.contains(&id),
                        "{a:?}+{b:?}: surfaced panic {id} was not injected"
                    );
                }
                Some(Ok(result)) => {
                    assert!(
                        injected_panics.is_empty() || polls.is_some(),
                        "{a:?}+{b:?}: a panic was lost"
                    );
                    let mut surfaced: Vec<usize> = match result {
                        Ok(()) => Vec::new(),
                        Err(error) => error
                            .into_errors()
                            .into_iter()
                            .map(|Injected(id)| id)
                            .filter(|&id| id != usize::MAX)
                            .collect(),
                    };
                    surfaced.sort();
                    if surfaced.is_empty() {
                        ok += 1;
                    } else {
                        failed += 1;
                    }
                    assert_eq!(
                        surfaced, injected_errors,
                        "{a:?}+{b:?}: errors did not surface exactly once"
                    );
                }
            }
        }
    }
    eprintln!(
        "{cases} fault-injection cases: {dropped} dropped, {panicked} panicked, {failed} failed, {ok} ok"
    );
    assert_eq!(cases, 25 * (bound + 2));
    assert!(dropped > 0 && panicked > 0 && failed > 0 && ok > 0);
}
