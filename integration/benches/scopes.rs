//! Scopes side by side with tokio's `JoinSet`, tokio-util's `TaskTracker`
//! and raw `tokio::spawn` (the targets in docs/benchmarks.md). Run with `cargo bench -p taskscope-integration --bench scopes`;
//! the run ends with the table pasted into `docs/benchmarks.md`.
//!
//! Batch cases report time per task (the batch's time divided by its size)
//! on a 2-worker multi-thread runtime.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use taskscope::Cancelled;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken as UtilToken;
use tokio_util::task::TaskTracker;

mod support;

use support::{listing_only, median_ns, runtime, COUNTING, LIVE_BYTES};

const SPAWNS: usize = 100_000;
const WAITERS: usize = 10_000;

/// Runs `batch` `iters` times on the runtime and returns the time per task.
fn per_task<F, Fut>(rt: &Runtime, iters: u64, size: usize, batch: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            batch().await;
        }
        start.elapsed() / size as u32
    })
}

/// A scope that spawns `SPAWNS` trivial tasks and joins them.
async fn scope_of_trivial_tasks() {
    taskscope::scope(async |s| {
        for _ in 0..SPAWNS {
            s.spawn(async { Ok::<_, Cancelled>(()) });
        }
        Ok::<_, Cancelled>(())
    })
    .await
    .unwrap();
}

fn spawn_join(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("spawn+join per task (100k)");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));
    g.bench_function("taskscope", |b| {
        b.iter_custom(|iters| per_task(&rt, iters, SPAWNS, scope_of_trivial_tasks))
    });
    g.bench_function("tokio spawn", |b| {
        b.iter_custom(|iters| {
            per_task(&rt, iters, SPAWNS, || async {
                let handles: Vec<_> = (0..SPAWNS).map(|_| tokio::spawn(async {})).collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            })
        })
    });
    g.bench_function("TaskTracker", |b| {
        b.iter_custom(|iters| {
            per_task(&rt, iters, SPAWNS, || async {
                let tracker = TaskTracker::new();
                for _ in 0..SPAWNS {
                    tracker.spawn(async {});
                }
                tracker.close();
                tracker.wait().await;
            })
        })
    });
    g.bench_function("JoinSet", |b| {
        b.iter_custom(|iters| {
            per_task(&rt, iters, SPAWNS, || async {
                let mut set = JoinSet::new();
                for _ in 0..SPAWNS {
                    set.spawn(async {});
                }
                while set.join_next().await.is_some() {}
            })
        })
    });
    g.finish();
}

/// Run last: once a subscriber has enabled the spans' callsites, tracing
/// keeps checking them for the rest of the process, which would distort the
/// other cases.
fn spawn_join_traced(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("spawn+join per task (100k)");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));
    g.bench_function("taskscope, spans recorded", |b| {
        // A subscriber that wants every span: the cost of tracing when it
        // is on (without one, task spans are not even stored).
        b.iter_custom(|iters| {
            per_task(&rt, iters, SPAWNS, || async {
                let dispatch = tracing::Dispatch::new(support::Enabled);
                let _default = tracing::dispatcher::set_default(&dispatch);
                scope_of_trivial_tasks().await;
            })
        })
    });
    g.finish();
}

fn spawn_cancel(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("spawn+cancel per task (10k waiting)");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));
    g.bench_function("taskscope", |b| {
        b.iter_custom(|iters| {
            per_task(&rt, iters, WAITERS, || async {
                taskscope::scope(async |s| {
                    for _ in 0..WAITERS {
                        s.spawn(async {
                            taskscope::token().cancelled().await;
                            Ok::<_, Cancelled>(())
                        });
                    }
                    s.cancel();
                    Ok::<_, Cancelled>(())
                })
                .await
                .unwrap();
            })
        })
    });
    g.bench_function("JoinSet + child tokens", |b| {
        b.iter_custom(|iters| {
            per_task(&rt, iters, WAITERS, || async {
                let parent = UtilToken::new();
                let mut set = JoinSet::new();
                for _ in 0..WAITERS {
                    let token = parent.child_token();
                    set.spawn(async move { token.cancelled().await });
                }
                parent.cancel();
                while set.join_next().await.is_some() {}
            })
        })
    });
    g.bench_function("TaskTracker + token", |b| {
        b.iter_custom(|iters| {
            per_task(&rt, iters, WAITERS, || async {
                let token = UtilToken::new();
                let tracker = TaskTracker::new();
                for _ in 0..WAITERS {
                    let token = token.clone();
                    tracker.spawn(async move { token.cancelled().await });
                }
                tracker.close();
                token.cancel();
                tracker.wait().await;
            })
        })
    });
    g.finish();
}

/// A nested scope opened and closed `iters` times inside an outer scope,
/// spawning `tasks` trivial tasks each time, against the same work with a
/// tokio-util child token and a `TaskTracker` (create, spawn, close, wait,
/// drop).
fn scope_against_tracker(c: &mut Criterion, group: &str, rt: &Runtime, tasks: usize) {
    let mut g = c.benchmark_group(group);
    g.bench_function("taskscope", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                taskscope::scope(async |_outer| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let inner = taskscope::scope(async |s| {
                            for _ in 0..tasks {
                                s.spawn(async { Ok::<_, Cancelled>(()) });
                            }
                            Ok::<_, Cancelled>(black_box(1))
                        })
                        .await;
                        black_box(inner.unwrap());
                    }
                    Ok::<_, Cancelled>(start.elapsed())
                })
                .await
                .unwrap()
            })
        })
    });
    g.bench_function("TaskTracker + child token", |b| {
        let parent = UtilToken::new();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let token = parent.child_token();
                    let tracker = TaskTracker::new();
                    for _ in 0..tasks {
                        tracker.spawn(async {});
                    }
                    tracker.close();
                    tracker.wait().await;
                    black_box(token);
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn nested_open_exit(c: &mut Criterion) {
    scope_against_tracker(c, "nested scope open+exit", &runtime(), 0);
}

/// On a current-thread runtime: the task runs as soon as the scope waits,
/// so the case measures the scope, not a wake-up across threads.
fn one_task_scope(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    scope_against_tracker(c, "scope with one trivial task", &rt, 1);
}

// ---- memory per idle task ---------------------------------------------------

/// Heap bytes per task while `WAITERS` tasks wait on their token.
fn idle_task_bytes(rt: &Runtime) -> (f64, f64, f64) {
    fn measure(
        rt: &Runtime,
        start: impl FnOnce(Arc<AtomicUsize>) -> Box<dyn FnOnce() + Send>,
    ) -> f64 {
        let ready = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            // Counting stays on from a quiet start to a quiet end, so every
            // free in the window matches an allocation in it.
            COUNTING.store(true, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
            let before = LIVE_BYTES.load(Ordering::Relaxed);
            let finish = start(ready.clone());
            while ready.load(Ordering::SeqCst) < WAITERS {
                tokio::task::yield_now().await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            let bytes = LIVE_BYTES.load(Ordering::Relaxed) - before;
            finish();
            tokio::time::sleep(Duration::from_millis(100)).await;
            COUNTING.store(false, Ordering::Relaxed);
            bytes as f64 / WAITERS as f64
        })
    }
    let ours = measure(rt, |ready| {
        let (tx, rx) = std::sync::mpsc::channel::<taskscope::CancellationToken>();
        let handle = tokio::spawn(async move {
            taskscope::scope(async |s| {
                tx.send(s.token()).unwrap();
                for _ in 0..WAITERS {
                    let ready = ready.clone();
                    s.spawn(async move {
                        let token = taskscope::token();
                        ready.fetch_add(1, Ordering::SeqCst);
                        token.cancelled().await;
                        Ok::<_, Cancelled>(())
                    });
                }
                Ok::<_, Cancelled>(())
            })
            .await
        });
        let _token = rx.recv().unwrap();
        Box::new(move || {
            // Cancelling needs a source: the scope's own cancel() runs in
            // its body, so stop the runtime's tasks by aborting the holder.
            handle.abort();
        })
    });
    let ours_scope_token = measure(rt, |ready| {
        let handle = tokio::spawn(async move {
            taskscope::scope(async |s| {
                for _ in 0..WAITERS {
                    let (ready, token) = (ready.clone(), s.token());
                    s.spawn(async move {
                        ready.fetch_add(1, Ordering::SeqCst);
                        token.cancelled().await;
                        Ok::<_, Cancelled>(())
                    });
                }
                Ok::<_, Cancelled>(())
            })
            .await
        });
        Box::new(move || handle.abort())
    });
    let joinset = measure(rt, |ready| {
        let parent = UtilToken::new();
        let mut set = JoinSet::new();
        for _ in 0..WAITERS {
            let (ready, token) = (ready.clone(), parent.child_token());
            set.spawn(async move {
                ready.fetch_add(1, Ordering::SeqCst);
                token.cancelled().await
            });
        }
        Box::new(move || {
            parent.cancel();
            drop(set);
        })
    });
    (ours, ours_scope_token, joinset)
}

// ---- the summary table --------------------------------------------------------

fn summary((ours, ours_scope_token, joinset): (f64, f64, f64)) {
    let show = |group: &str, ids: &[&str]| {
        let base = median_ns(group, ids[1]);
        for id in ids {
            match (median_ns(group, id), base) {
                (Some(t), Some(b)) => println!("| {group} | {id} | {t:.1} ns | {:.2}× |", t / b),
                _ => println!("| {group} | {id} | (not run) | |"),
            }
        }
    };
    println!("\n| case | contender | time | vs. second row |");
    println!("|---|---|---:|---:|");
    show(
        "spawn+join per task (100k)",
        &[
            "taskscope",
            "tokio spawn",
            "taskscope, spans recorded",
            "TaskTracker",
            "JoinSet",
        ],
    );
    show(
        "spawn+cancel per task (10k waiting)",
        &["taskscope", "JoinSet + child tokens", "TaskTracker + token"],
    );
    show(
        "nested scope open+exit",
        &["taskscope", "TaskTracker + child token"],
    );
    show(
        "scope with one trivial task",
        &["taskscope", "TaskTracker + child token"],
    );
    println!("| memory per idle task | taskscope, own token (`taskscope::token()`) | {ours:.0} B | {:.2}× |", ours / joinset);
    println!("| memory per idle task | JoinSet + child token | {joinset:.0} B | 1.00× |");
    println!(
        "| memory per idle task | taskscope, scope's token | {ours_scope_token:.0} B | {:.2}× |",
        ours_scope_token / joinset
    );
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .configure_from_args();
    spawn_join(&mut c);
    spawn_cancel(&mut c);
    nested_open_exit(&mut c);
    one_task_scope(&mut c);
    // Memory before any subscriber has been installed (see below).
    let memory = (!listing_only()).then(|| idle_task_bytes(&runtime()));
    spawn_join_traced(&mut c);
    c.final_summary();
    if let Some(memory) = memory {
        summary(memory);
    }
}
