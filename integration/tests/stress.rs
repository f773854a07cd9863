//! The loom models' races again, with real threads and many repetitions.
//! The sizes are kept small enough for a debug `cargo test` on two cores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use taskscope::{CancelReason, CancellationSource};

const ROUNDS: usize = 300;

/// Runs `f(i)` on `n` threads released together by a barrier.
fn together<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, f) = (barrier.clone(), f.clone());
            thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn stress_cancel_races_register_and_drop() {
    for _ in 0..ROUNDS {
        let source = Arc::new(CancellationSource::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let kept = {
            let (source, runs) = (source.clone(), runs.clone());
            together(4, move |i| {
                if i == 0 {
                    source.cancel();
                    return 0;
                }
                let mut kept = 0;
                for j in 0..50 {
                    let runs = runs.clone();
                    let registration = source.token().on_cancel(move |_| {
                        runs.fetch_add(1, Ordering::SeqCst);
                    });
                    if j % 2 == 0 {
                        // Dropped: ran already, or never will.
                        drop(registration);
                    } else if !registration.unregister() {
                        kept += 1; // lost the race: it ran (or is running)
                    }
                }
                kept
            })
        };
        let lost_unregisters: usize = kept.iter().sum();
        let ran = runs.load(Ordering::SeqCst);
        // Every callback that lost `unregister` ran; dropped ones may have.
        assert!(ran >= lost_unregisters);
        assert!(ran <= 3 * 50);
    }
}

#[test]
fn stress_two_parents_cancel_shared_children_at_once() {
    for _ in 0..ROUNDS {
        let a = Arc::new(CancellationSource::new());
        let b = Arc::new(CancellationSource::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let children: Arc<Vec<_>> = Arc::new(
            (0..20)
                .map(|_| CancellationSource::linked([&a.token(), &b.token()]))
                .collect(),
        );
        let grandchildren: Arc<Vec<_>> = Arc::new(
            children
                .iter()
                .map(|c| CancellationSource::linked([&c.token()]))
                .collect(),
        );
        let registrations: Vec<_> = grandchildren
            .iter()
            .map(|g| {
                let runs = runs.clone();
                g.token().on_cancel(move |_| {
                    runs.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        {
            let (a, b, grandchildren) = (a.clone(), b.clone(), grandchildren.clone());
            together(2, move |i| {
                let (source, reason) = if i == 0 {
                    (&a, CancelReason::message("a"))
                } else {
                    (&b, CancelReason::message("b"))
                };
                source.cancel_with(reason);
                assert!(grandchildren.iter().all(CancellationSource::is_cancelled));
            });
        }
        assert_eq!(runs.load(Ordering::SeqCst), 20);
        for g in grandchildren.iter() {
            let root = g.reason().unwrap().root().clone();
            assert!(root == CancelReason::message("a") || root == CancelReason::message("b"));
        }
        drop(registrations);
    }
}

#[test]
fn stress_children_come_and_go_while_the_parent_cancels() {
    for _ in 0..ROUNDS {
        let parent = Arc::new(CancellationSource::new());
        let survivors = {
            let parent = parent.clone();
            together(3, move |i| {
                if i == 0 {
                    thread::yield_now();
                    parent.cancel();
                    return Vec::new();
                }
                let mut kept = Vec::new();
                for j in 0..100 {
                    let child = CancellationSource::linked([&parent.token()]);
                    if j % 10 == 0 {
                        kept.push(child);
                    }
                }
                kept
            })
        };
        assert!(parent.is_cancelled());
        // Children created after the cancel started cancelled; the others
        // were reached by it. None is left uncancelled.
        for child in survivors.iter().flatten() {
            assert!(child.is_cancelled());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_many_tasks_wake_on_cancel() {
    for _ in 0..20 {
        let source = CancellationSource::new();
        let tasks: Vec<_> = (0..500)
            .map(|_| {
                let token = source.token();
                tokio::spawn(async move { token.cancelled().await })
            })
            .collect();
        tokio::task::yield_now().await;
        source.cancel();
        for task in tasks {
            task.await.unwrap();
        }
    }
}

#[test]
fn stress_cancel_with_different_reasons_from_many_threads() {
    for _ in 0..ROUNDS {
        let source = Arc::new(CancellationSource::new());
        let winners = {
            let source = source.clone();
            together(4, move |i| {
                source.cancel_with(CancelReason::message(format!("{i}")))
            })
        };
        assert_eq!(winners.iter().filter(|&&won| won).count(), 1);
        let winner = winners.iter().position(|&won| won).unwrap();
        assert_eq!(
            source.reason(),
            Some(CancelReason::message(format!("{winner}")))
        );
    }
}
