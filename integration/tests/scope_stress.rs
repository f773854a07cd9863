//! Scopes under load on the multi-thread runtime: five levels of nested
//! scopes, about a hundred tasks a level, cancelled, failed, panicking and
//! dropped at random points, repeated with different seeds. Asserts that no
//! task outlives its scope, every scope returns, every panic surfaces
//! exactly once, and no tokio task is left alive.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use taskscope::{CancelReason, Cancelled, ScopeBuilder, TaskError};

const ROUNDS: u64 = 12;
const DEPTH: u32 = 5;
const TASKS_PER_LEVEL: u64 = 100;

/// A small deterministic generator, one per task, so runs are repeatable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct Tally {
    /// Tasks currently running, per scope instance.
    live: Mutex<Vec<Arc<AtomicUsize>>>,
    panics_surfaced: Mutex<Vec<u64>>,
    scopes_returned: AtomicUsize,
    scopes_opened: AtomicUsize,
    next_panic: AtomicU64,
}

#[derive(Debug)]
struct Failed;
impl From<Cancelled> for Failed {
    fn from(_: Cancelled) -> Self {
        Failed
    }
}
impl TaskError for Failed {}

/// Decrements a scope's live count however the task ends.
struct LiveGuard(Arc<AtomicUsize>);
impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn run_level(
    tally: Arc<Tally>,
    level: u32,
    seed: u64,
) -> futures_util::future::BoxFuture<'static, Result<(), Failed>> {
    async move {
        let live = Arc::new(AtomicUsize::new(0));
        tally.live.lock().unwrap().push(live.clone());
        tally.scopes_opened.fetch_add(1, Ordering::SeqCst);
        let panicked_here = Arc::new(AtomicBool::new(false));
        let injected: Arc<Mutex<Option<u64>>> = Arc::new(Mutex::new(None));
        let tasks = if level == 1 {
            TASKS_PER_LEVEL
        } else {
            TASKS_PER_LEVEL / 10
        };
        let result = AssertUnwindSafe(
            ScopeBuilder::new()
                .grace_period(Duration::from_millis(50))
                .run(async |s| {
                    for i in 0..tasks {
                        let mut rng = Rng(seed ^ (i + 1).wrapping_mul(0x9E3779B97F4A7C15));
                        let cancel_scope_now = rng.below(50) == 0;
                        let (tally, live, panicked_here, injected) = (
                            tally.clone(),
                            live.clone(),
                            panicked_here.clone(),
                            injected.clone(),
                        );
                        live.fetch_add(1, Ordering::SeqCst);
                        // Moved into the task: dropped with it even if it
                        // is aborted before its first poll.
                        let live_guard = LiveGuard(live);
                        s.spawn(async move {
                            let _live = live_guard;
                            let token = taskscope::token();
                            let work = Duration::from_micros(rng.below(2000));
                            match rng.below(20) {
                                // Open a nested scope (while levels remain).
                                0..=3 if level < DEPTH => {
                                    let child = run_level(tally.clone(), level + 1, rng.next());
                                    if rng.below(4) == 0 {
                                        // Dropped at a random point.
                                        let _ = tokio::time::timeout(work, child).await;
                                        Ok(())
                                    } else {
                                        child.await
                                    }
                                }
                                4 => {
                                    token.run_until_cancelled(tokio::time::sleep(work)).await?;
                                    Err(Failed)
                                }
                                5 if !panicked_here.swap(true, Ordering::SeqCst) => {
                                    tokio::task::yield_now().await;
                                    let id = tally.next_panic.fetch_add(1, Ordering::SeqCst);
                                    *injected.lock().unwrap() = Some(id);
                                    std::panic::panic_any(id);
                                }
                                6 => {
                                    taskscope::token();
                                    tokio::time::sleep(work).await;
                                    Err(Cancelled::new(CancelReason::message("cancel the scope"))
                                        .into())
                                }
                                7 => {
                                    // Ignores cancellation: aborted after the grace period.
                                    tokio::time::sleep(Duration::from_millis(200)).await;
                                    Ok(())
                                }
                                _ => {
                                    token.run_until_cancelled(tokio::time::sleep(work)).await?;
                                    Ok(())
                                }
                            }
                        });
                        if cancel_scope_now {
                            s.cancel();
                        }
                    }
                    Ok(())
                }),
        )
        .catch_unwind()
        .await;
        // Every task of this scope has ended by now.
        assert_eq!(live.load(Ordering::SeqCst), 0, "a task outlived its scope");
        tally.scopes_returned.fetch_add(1, Ordering::SeqCst);
        let injected = injected.lock().unwrap().take();
        match (result, injected) {
            (Ok(_), Some(id)) => panic!("panic {id} was lost"),
            (Ok(Ok(())), None) => Ok(()),
            (Ok(Err(_)), None) => Err(Failed),
            (Err(payload), injected) => {
                let id = *payload.downcast_ref::<u64>().expect("only injected panics");
                assert_eq!(Some(id), injected, "a panic surfaced in the wrong scope");
                tally.panics_surfaced.lock().unwrap().push(id);
                Err(Failed)
            }
        }
    }
    .boxed()
}

#[test]
fn nested_scopes_under_random_failures_cancels_panics_and_drops() {
    // Injected panics carry a u64; keep them out of the test output.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<u64>().is_none() {
            default_hook(info);
        }
    }));
    let (mut scopes, mut panics) = (0, 0);
    for round in 0..ROUNDS {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let tally = Arc::new(Tally::default());
        runtime.block_on(async {
            let _ = tokio::time::timeout(
                Duration::from_secs(60),
                run_level(tally.clone(), 1, round * 7919 + 1),
            )
            .await
            .expect("a scope did not return");
            // Reapers of dropped scopes end right after their scope is done.
            for _ in 0..100 {
                if tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks()
                    == 0
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(
                tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks(),
                0,
                "round {round}: tasks left alive"
            );
        });
        for live in tally.live.lock().unwrap().iter() {
            assert_eq!(
                live.load(Ordering::SeqCst),
                0,
                "round {round}: a task outlived its scope"
            );
        }
        // A dropped scope's future never returns; every other one did.
        assert!(tally.scopes_returned.load(Ordering::SeqCst) >= 1);
        assert!(
            tally.scopes_returned.load(Ordering::SeqCst)
                <= tally.scopes_opened.load(Ordering::SeqCst)
        );
        // Each returning scope checked its own panic surfaced (exactly
        // once: a scope resumes one panic); none surfaced twice overall.
        let mut surfaced = tally.panics_surfaced.lock().unwrap().clone();
        surfaced.sort();
        let count = surfaced.len();
        surfaced.dedup();
        assert_eq!(
            surfaced.len(),
            count,
            "round {round}: a panic surfaced twice"
        );
        runtime.shutdown_timeout(Duration::from_secs(5));
        scopes += tally.scopes_opened.load(Ordering::SeqCst);
        panics += count;
    }
    eprintln!("{ROUNDS} rounds: {scopes} scopes opened, {panics} panics surfaced");
    assert!(panics > 0, "the seeds never injected a panic");
}
