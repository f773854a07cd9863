//! Soak and churn: many create/link/cancel/drop cycles against a long-lived
//! parent, many tasks through nested scopes, and a very wide fan-out, with
//! resident memory sampled after a warm-up and at the end. Sizes come from
//! `TASKSCOPE_SOAK`: `quick` (default, for `cargo test`) or `full` (run by
//! `.ci/run` in release mode: 10,000,000 cycles and 1,000,000 tasks).

use std::time::Duration;

use taskscope::{CancelReason, CancellationSource, Cancelled};

struct Sizes {
    cycles: usize,
    tasks: usize,
    wide: usize,
}

fn sizes() -> Sizes {
    match std::env::var("TASKSCOPE_SOAK").as_deref() {
        Ok("full") => Sizes {
            cycles: 10_000_000,
            tasks: 1_000_000,
            wide: 1_000_000,
        },
        _ => Sizes {
            cycles: 100_000,
            tasks: 20_000,
            wide: 100_000,
        },
    }
}

/// Resident set size in bytes (Linux), or `None` elsewhere.
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The tests of this file run one at a time, so one's allocations do not
/// show in another's resident memory.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How far resident memory may move between the warm-up and the end.
const MARGIN: u64 = 16 * 1024 * 1024;

fn assert_rss_back(start: Option<u64>, what: &str) {
    if let (Some(start), Some(end)) = (start, rss()) {
        eprintln!(
            "{what}: rss {} KiB after warm-up, {} KiB at the end",
            start / 1024,
            end / 1024
        );
        assert!(
            end <= start + MARGIN,
            "{what}: resident memory grew from {start} to {end} bytes"
        );
    }
}

#[test]
fn churn_against_a_long_lived_parent_returns_its_memory() {
    let _serial = serial();
    let Sizes { cycles, .. } = sizes();
    let parent = CancellationSource::new();
    let shutdown = CancellationSource::new();
    let token = parent.token();
    let mut start = None;
    for i in 0..cycles {
        if i == cycles / 10 {
            start = rss();
        }
        let child = CancellationSource::linked([&token, &shutdown.token()]);
        let grandchild = CancellationSource::linked([&child.token()]);
        let registration = grandchild.token().on_cancel(|_| {});
        if i % 3 == 0 {
            child.cancel_with(CancelReason::message("churn"));
            assert!(grandchild.is_cancelled());
        }
        drop(registration);
        drop(grandchild);
        drop(child);
    }
    assert!(!parent.is_cancelled());
    assert_rss_back(start, "token churn");
}

#[test]
fn very_wide_fan_out_cancels_and_drops() {
    let _serial = serial();
    let Sizes { wide, .. } = sizes();
    let parent = CancellationSource::new();
    let children: Vec<_> = (0..wide)
        .map(|_| CancellationSource::linked([&parent.token()]))
        .collect();
    parent.cancel();
    assert!(children.iter().all(CancellationSource::is_cancelled));
    drop(children);
}

#[test]
fn many_tasks_through_nested_scopes_return_their_memory() {
    let _serial = serial();
    let Sizes { tasks, .. } = sizes();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rounds = 20;
    let per_round = tasks / rounds;
    let mut start = None;
    for round in 0..rounds {
        if round == 2 {
            start = rss();
        }
        runtime.block_on(async {
            taskscope::scope(async |outer| {
                for batch in 0..10 {
                    outer.spawn(async move {
                        taskscope::scope(async |inner| {
                            for i in 0..per_round / 10 {
                                inner.spawn(async move {
                                    if (i + batch) % 97 == 0 {
                                        tokio::time::sleep(Duration::from_micros(10)).await;
                                    }
                                    Ok::<_, Cancelled>(())
                                });
                            }
                            Ok::<_, Cancelled>(())
                        })
                        .await
                        .map_err(taskscope::ScopeError::into_error)
                    });
                }
                Ok::<_, Cancelled>(())
            })
            .await
            .unwrap();
        });
        // A task releases its scope just before tokio retires it: give the
        // workers a moment, then nothing may be left.
        for _ in 0..1000 {
            if runtime.metrics().num_alive_tasks() == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(runtime.metrics().num_alive_tasks(), 0);
    }
    assert_rss_back(start, "tasks through scopes");
}

/// A long-lived server's scope: many requests through `RequestScopeLayer`
/// (feature `axum`), each spawning a task, every tenth dropped mid-request
/// as a disconnecting client's would be. Memory returns, no request scope
/// stays in the server's tree, and no task outlives the server's scope.
#[test]
fn many_requests_through_a_long_lived_server_scope_return_their_memory() {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use futures_util::FutureExt;
    use taskscope::axum::RequestScopeLayer;
    use taskscope::remote::RequestScope;
    use taskscope::BoxError;
    use tower_service::Service;

    let _serial = serial();
    let Sizes {
        tasks: requests, ..
    } = sizes();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // On a worker, as a server's connection tasks run (from `block_on`
    // every spawned task's wake-up would cross threads).
    let server = runtime.spawn(taskscope::scope(async move |server| {
        let mut app = axum::Router::new()
            .route(
                "/",
                get(|scope: RequestScope| async move {
                    let lookup = scope.spawn(async {
                        tokio::task::yield_now().await;
                        Ok::<_, BoxError>(7)
                    });
                    lookup
                        .unwrap()
                        .await
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                }),
            )
            .layer(RequestScopeLayer::new());
        let mut start = None;
        let mut dropped = 0;
        for i in 0..requests {
            if i == requests / 10 {
                start = rss();
            }
            let response = app.call(Request::new(Body::empty()));
            if i % 10 == 0 {
                // One poll, then the client is gone.
                if response.now_or_never().is_none() {
                    dropped += 1;
                }
            } else {
                assert!(response.await.unwrap().status().is_success());
            }
        }
        // Dropped requests' tasks finish on their own; let them.
        for _ in 0..1000 {
            if server.snapshot().unwrap().scopes.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(
            server.snapshot().unwrap().scopes.is_empty(),
            "request scopes left in the server's tree"
        );
        assert_rss_back(start, "requests through a server scope");
        Ok::<_, Cancelled>(dropped)
    }));
    let dropped = runtime.block_on(server).unwrap().unwrap();
    eprintln!("{requests} requests, {dropped} dropped mid-request");
    assert!(dropped > 0, "no request was dropped mid-request");
    for _ in 0..1000 {
        if runtime.metrics().num_alive_tasks() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(runtime.metrics().num_alive_tasks(), 0);
}
