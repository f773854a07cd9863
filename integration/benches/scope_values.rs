//! Scope-local values: what a read costs near and far from its binding,
//! and what bound keys add to spawning. Run with
//! `cargo bench -p taskscope-integration --bench scope_values`; the run
//! ends with the table pasted into `docs/benchmarks.md`.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::time::{Duration, Instant};

use criterion::{Bencher, Criterion};
use taskscope::{Cancelled, ScopeBuilder, ScopeError, ScopeLocal};

mod support;

use support::{median_ns, runtime};

static K0: ScopeLocal<u64> = ScopeLocal::new("k0");
static K1: ScopeLocal<u64> = ScopeLocal::new("k1");
static K2: ScopeLocal<u64> = ScopeLocal::new("k2");
static K3: ScopeLocal<u64> = ScopeLocal::new("k3");
static K4: ScopeLocal<u64> = ScopeLocal::new("k4");
static K5: ScopeLocal<u64> = ScopeLocal::new("k5");
static K6: ScopeLocal<u64> = ScopeLocal::new("k6");
static K7: ScopeLocal<u64> = ScopeLocal::new("k7");

const DEPTH: usize = 10_000;
const SPAWNS: usize = 100_000;

type Level = Pin<Box<dyn Future<Output = Result<Duration, Cancelled>> + Send>>;

/// `levels` nested scopes that bind nothing; the innermost times `iters`
/// reads of `K0`.
fn nest(levels: usize, iters: u64) -> Level {
    Box::pin(async move {
        taskscope::scope(async move |_| {
            if levels == 0 {
                let start = Instant::now();
                for _ in 0..iters {
                    K0.with(|v| black_box(v.copied()));
                }
                Ok(start.elapsed())
            } else {
                nest(levels - 1, iters).await
            }
        })
        .await
        .map_err(ScopeError::into_error)
    })
}

fn reads(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("read a scope-local value");
    let at_depth = |b: &mut Bencher<'_>, depth: usize| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                ScopeBuilder::new()
                    .bind(&K0, 7)
                    .run(async |_| nest(depth, iters).await)
                    .await
                    .unwrap()
            })
        })
    };
    g.bench_function("bound 1 scope up", |b| at_depth(b, 0));
    g.bench_function("bound 10,001 scopes up", |b| at_depth(b, DEPTH));
    g.bench_function("outside any binding", |b| {
        b.iter(|| K0.with(|v| black_box(v.copied())))
    });
    g.finish();
}

/// A scope opened by `builder` that spawns `SPAWNS` trivial tasks and
/// joins them.
async fn spawn_join(builder: ScopeBuilder) {
    builder
        .run(async |s| {
            for _ in 0..SPAWNS {
                s.spawn(async { Ok::<_, Cancelled>(()) });
            }
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
}

fn eight_keys() -> ScopeBuilder {
    ScopeBuilder::new()
        .bind(&K0, 0)
        .bind(&K1, 1)
        .bind(&K2, 2)
        .bind(&K3, 3)
        .bind(&K4, 4)
        .bind(&K5, 5)
        .bind(&K6, 6)
        .bind(&K7, 7)
}

fn spawns(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("spawn+join per task (100k)");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));
    for (name, keys) in [("no keys bound", false), ("8 keys bound", true)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let builder = if keys {
                            eight_keys()
                        } else {
                            ScopeBuilder::new()
                        };
                        spawn_join(builder).await;
                    }
                    start.elapsed() / SPAWNS as u32
                })
            })
        });
    }
    g.finish();
}

fn main() {
    // The 10,000-deep case needs the stack a debug build would: run the
    // benches on a thread with 64 MiB.
    std::thread::Builder::new()
        .stack_size(64 * 1024 * 1024)
        .spawn(|| {
            let mut c = Criterion::default().configure_from_args();
            reads(&mut c);
            spawns(&mut c);
            c.final_summary();
            print_table();
        })
        .unwrap()
        .join()
        .unwrap();
}

fn print_table() {
    let read = "read a scope-local value";
    let spawn = "spawn+join per task (100k)";
    let rows = [
        (read, "bound 1 scope up"),
        (read, "bound 10,001 scopes up"),
        (read, "outside any binding"),
        (spawn, "no keys bound"),
        (spawn, "8 keys bound"),
    ];
    println!("\n| case | time |\n|---|---:|");
    for (group, case) in rows {
        match median_ns(group, case) {
            Some(ns) => println!("| {group}: {case} | {ns:.1} ns |"),
            None => println!("| {group}: {case} | (not run) |"),
        }
    }
}
