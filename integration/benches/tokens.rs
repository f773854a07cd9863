//! Cancellation primitives side by side with tokio-util's `CancellationToken`
//! (the targets in docs/benchmarks.md). Run with `cargo bench -p taskscope-integration --bench tokens`; the run ends with a
//! table of medians and ratios (taskscope / tokio-util), the one pasted into
//! `docs/benchmarks.md`.
//!
//! Per-child and per-task cases report time per child or task (the batch's
//! time divided by its size), so every row reads as "cost of one".

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use taskscope::CancellationSource;
use tokio_util::sync::CancellationToken as UtilToken;

mod support;

use support::{listing_only, median_ns, COUNTING, LIVE_BYTES};

/// Heap bytes per item that `make` keeps alive, over `n` items.
fn bytes_per_item<T>(n: usize, mut make: impl FnMut() -> T) -> f64 {
    LIVE_BYTES.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let items: Vec<T> = Vec::with_capacity(n);
    let vec_bytes = LIVE_BYTES.load(Ordering::Relaxed);
    let mut items = items;
    for _ in 0..n {
        items.push(make());
    }
    let bytes = LIVE_BYTES.load(Ordering::Relaxed) - vec_bytes;
    COUNTING.store(false, Ordering::Relaxed);
    drop(items);
    bytes as f64 / n as f64
}

// ---- the cases ------------------------------------------------------------

const FAN_OUT: [usize; 2] = [1_000, 100_000];
const WAITERS: usize = 10_000;

fn single_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("root new+drop");
    g.bench_function("taskscope", |b| {
        b.iter(|| black_box(CancellationSource::new()))
    });
    g.bench_function("tokio-util", |b| b.iter(|| black_box(UtilToken::new())));
    g.finish();

    let mut g = c.benchmark_group("child create+drop, 1 thread");
    let parent = CancellationSource::new();
    let token = parent.token();
    g.bench_function("taskscope", |b| {
        b.iter(|| black_box(CancellationSource::linked([&token])))
    });
    let util = UtilToken::new();
    g.bench_function("tokio-util", |b| b.iter(|| black_box(util.child_token())));
    g.finish();

    let mut g = c.benchmark_group("token clone+drop");
    g.bench_function("taskscope", |b| b.iter(|| black_box(token.clone())));
    g.bench_function("tokio-util", |b| b.iter(|| black_box(util.clone())));
    g.finish();

    let mut g = c.benchmark_group("is_cancelled");
    g.bench_function("taskscope", |b| b.iter(|| black_box(&token).is_cancelled()));
    g.bench_function("tokio-util", |b| b.iter(|| black_box(&util).is_cancelled()));
    g.finish();

    let mut g = c.benchmark_group("cancelled().await when already cancelled");
    let cancelled = CancellationSource::new();
    cancelled.cancel();
    let cancelled_token = cancelled.token();
    let util_cancelled = UtilToken::new();
    util_cancelled.cancel();
    let mut cx = Context::from_waker(Waker::noop());
    g.bench_function("taskscope", |b| {
        b.iter(|| {
            pin!(black_box(&cancelled_token).cancelled())
                .poll(&mut cx)
                .is_ready()
        })
    });
    g.bench_function("tokio-util", |b| {
        b.iter(|| {
            pin!(black_box(&util_cancelled).cancelled())
                .poll(&mut cx)
                .is_ready()
        })
    });
    g.finish();
}

/// Two threads create and drop children of one parent at once; the time is
/// the wall time for each thread to do one.
fn two_threads(c: &mut Criterion) {
    fn run(iters: u64, op: Arc<dyn Fn() + Send + Sync>) -> Duration {
        let barrier = Arc::new(Barrier::new(3));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (barrier, op) = (barrier.clone(), op.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..iters {
                        op();
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for t in threads {
            t.join().unwrap();
        }
        start.elapsed()
    }
    let mut g = c.benchmark_group("child create+drop, 2 threads");
    // Contention makes this case noisy: measure longer.
    g.measurement_time(Duration::from_secs(6));
    let parent = Arc::new(CancellationSource::new());
    let token = parent.token();
    g.bench_function("taskscope", |b| {
        let token = token.clone();
        let op: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            black_box(CancellationSource::linked([&token]));
        });
        b.iter_custom(|iters| run(iters, op.clone()))
    });
    let util = UtilToken::new();
    g.bench_function("tokio-util", |b| {
        let util = util.clone();
        let op: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            black_box(util.child_token());
        });
        b.iter_custom(|iters| run(iters, op.clone()))
    });
    g.finish();
}

/// Time to cancel a parent with `n` children, divided by `n`.
fn fan_out(c: &mut Criterion) {
    let mut g = c.benchmark_group("cancel fan-out, per child");
    g.sample_size(20);
    for n in FAN_OUT {
        g.bench_with_input(BenchmarkId::new("taskscope", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let parent = CancellationSource::new();
                    let token = parent.token();
                    let children: Vec<_> = (0..n)
                        .map(|_| CancellationSource::linked([&token]))
                        .collect();
                    let start = Instant::now();
                    parent.cancel();
                    total += start.elapsed();
                    drop(children);
                }
                total / n as u32
            })
        });
        g.bench_with_input(BenchmarkId::new("tokio-util", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let parent = UtilToken::new();
                    let children: Vec<_> = (0..n).map(|_| parent.child_token()).collect();
                    let start = Instant::now();
                    parent.cancel();
                    total += start.elapsed();
                    drop(children);
                }
                total / n as u32
            })
        });
    }
    g.finish();
}

/// 10,000 tasks wait on a token on a 2-worker runtime; the time from cancel
/// until every task has finished, divided by the number of tasks.
fn wake(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("wake per waiting task");
    g.sample_size(20);

    async fn measure<T, W>(token: T, cancel: impl FnOnce(), wait: W) -> Duration
    where
        T: Clone + Send + 'static,
        W: Fn(T) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    {
        let ready = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..WAITERS)
            .map(|_| {
                let (ready, waiting) = (ready.clone(), wait(token.clone()));
                tokio::spawn(async move {
                    ready.fetch_add(1, Ordering::Relaxed);
                    waiting.await
                })
            })
            .collect();
        while ready.load(Ordering::Relaxed) < WAITERS {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let start = Instant::now();
        cancel();
        for task in tasks {
            task.await.unwrap();
        }
        start.elapsed()
    }

    g.bench_function("taskscope", |b| {
        b.to_async(&runtime).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let source = CancellationSource::new();
                let token = source.token();
                total += measure(
                    token,
                    || {
                        source.cancel();
                    },
                    |t| Box::pin(async move { t.cancelled().await }),
                )
                .await;
            }
            total / WAITERS as u32
        })
    });
    g.bench_function("tokio-util", |b| {
        b.to_async(&runtime).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let token = UtilToken::new();
                let canceller = token.clone();
                total += measure(
                    token,
                    move || canceller.cancel(),
                    |t| Box::pin(async move { t.cancelled().await }),
                )
                .await;
            }
            total / WAITERS as u32
        })
    });
    g.finish();
}

// ---- the summary table ------------------------------------------------------

fn summary() {
    let rows: [(&str, &str, &str); 10] = [
        ("is_cancelled", "", "≤ 0.2×"),
        ("cancelled().await when already cancelled", "", "≤ 0.3×"),
        ("token clone+drop", "", "≤ 0.5×"),
        ("root new+drop", "", "–"),
        ("child create+drop, 1 thread", "", "≤ 0.5×"),
        ("child create+drop, 2 threads", "", "≤ 0.5×"),
        ("cancel fan-out, per child", "/1000", "≤ 1.0×"),
        ("cancel fan-out, per child", "/100000", "≤ 1.0×"),
        ("wake per waiting task", "", "≤ 1.0×"),
        ("", "", ""),
    ];
    println!("\n| case | taskscope | tokio-util | ratio | target |");
    println!("|---|---:|---:|---:|---|");
    for (group, param, target) in rows.iter().filter(|r| !r.0.is_empty()) {
        let ours = median_ns(group, &format!("taskscope{param}"));
        let theirs = median_ns(group, &format!("tokio-util{param}"));
        let label = format!("{group}{}", param.replace('/', " ×"));
        match (ours, theirs) {
            (Some(a), Some(b)) => {
                println!(
                    "| {label} | {a:.1} ns | {b:.1} ns | {:.2}× | {target} |",
                    a / b
                )
            }
            _ => println!("| {label} | (not run) | (not run) | | {target} |"),
        }
    }
    let parent = CancellationSource::new();
    let token = parent.token();
    let ours = bytes_per_item(10_000, || CancellationSource::linked([&token]));
    let util = UtilToken::new();
    let theirs = bytes_per_item(10_000, || util.child_token());
    println!(
        "| heap bytes per child token (10k children) | {ours:.0} B | {theirs:.0} B | {:.2}× | ≤ 96 B |",
        ours / theirs
    );
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    single_thread(&mut c);
    two_threads(&mut c);
    fan_out(&mut c);
    wake(&mut c);
    c.final_summary();
    if !listing_only() {
        summary();
    }
}
