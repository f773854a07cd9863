//! Async cleanup owned by a scope (`defer`): exactly once on every way a
//! scope ends (each fault: an error, a panic, a timeout, a cancellation, an
//! abort after the grace period, the future dropped), on both runtime
//! flavours; after the scope's tasks stopped;
//! shielded and bounded; newest first; its failures reported after the
//! scope's own; still run, and joined, when the scope's future is dropped.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use taskscope::{CancelReason, Cancelled, ScopeBuilder, ScopeEnd, ScopeError};

/// How a scope ends, for the matrix.
#[derive(Clone, Copy, Debug)]
enum Exit {
    Returns,
    BodyFails,
    TaskFails,
    TimesOut,
    CancelledFromOutside,
    BodyPanics,
    TaskPanics,
    FutureDropped,
    /// A task ignores its cancellation and is aborted after the grace
    /// period.
    TaskAborted,
}

const EXITS: [Exit; 9] = [
    Exit::Returns,
    Exit::BodyFails,
    Exit::TaskFails,
    Exit::TimesOut,
    Exit::CancelledFromOutside,
    Exit::BodyPanics,
    Exit::TaskPanics,
    Exit::FutureDropped,
    Exit::TaskAborted,
];

/// How many times a step ran, what it saw, and whether every task of its
/// scope had stopped when it ran.
type Observed = (usize, Option<ScopeEnd>, bool);

/// Runs one scope that ends as `exit` with one cleanup step.
async fn one(exit: Exit) -> Observed {
    let runs = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(None));
    let task_running = Arc::new(AtomicBool::new(false));
    let tasks_stopped_first = Arc::new(AtomicBool::new(true));
    let outer = taskscope::scope(async |outer| {
        let cancel_from_outside = outer.handle();
        let (runs2, seen2, running2, first2) = (
            Arc::clone(&runs),
            Arc::clone(&seen),
            Arc::clone(&task_running),
            Arc::clone(&tasks_stopped_first),
        );
        let inner = ScopeBuilder::new()
            .name("inner")
            .grace_period(Duration::from_millis(20))
            .timeout(match exit {
                Exit::TimesOut => Duration::from_millis(20),
                _ => Duration::MAX,
            })
            .run(async move |s| {
                s.defer(Duration::from_secs(5), move |end| async move {
                    if running2.load(Ordering::SeqCst) {
                        first2.store(false, Ordering::SeqCst);
                    }
                    runs2.fetch_add(1, Ordering::SeqCst);
                    *seen2.lock().unwrap() = Some(end);
                    Ok(())
                });
                // A task that takes a moment to stop when cancelled.
                let running = Arc::clone(&task_running);
                running.store(true, Ordering::SeqCst);
                s.spawn(async move {
                    let token = taskscope::token();
                    token.cancelled().await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    running.store(false, Ordering::SeqCst);
                    Ok::<_, Cancelled>(())
                });
                match exit {
                    Exit::Returns => {
                        s.cancel();
                        Ok(())
                    }
                    Exit::BodyFails => Err(Cancelled::new(CancelReason::message("real"))),
                    Exit::TaskFails => {
                        s.spawn(async {
                            Err::<(), _>(Cancelled::new(CancelReason::message("real")))
                        });
                        taskscope::token().cancelled().await;
                        Ok(())
                    }
                    Exit::TimesOut | Exit::CancelledFromOutside | Exit::FutureDropped => {
                        taskscope::token().cancelled().await;
                        Ok(())
                    }
                    Exit::BodyPanics => panic!("body panics"),
                    Exit::TaskPanics => {
                        s.spawn(async { panic!("task panics") as Result<(), Cancelled> });
                        taskscope::token().cancelled().await;
                        Ok(())
                    }
                    Exit::TaskAborted => {
                        // Never looks at its token: aborted after the grace.
                        s.spawn(async {
                            std::future::pending::<()>().await;
                            Ok::<_, Cancelled>(())
                        });
                        s.cancel();
                        Ok(())
                    }
                }
            });
        match exit {
            Exit::CancelledFromOutside => {
                let (result, ()) = tokio::join!(AssertUnwindSafe(inner).catch_unwind(), async {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    cancel_from_outside.cancel();
                });
                let _ = result;
            }
            Exit::FutureDropped => {
                // Dropped mid-way: the outer scope joins what is left,
                // the cleanup included.
                let _ = tokio::time::timeout(Duration::from_millis(10), inner).await;
            }
            _ => {
                let _ = AssertUnwindSafe(inner).catch_unwind().await;
            }
        }
        Ok::<_, Cancelled>(())
    });
    let _ = AssertUnwindSafe(outer).catch_unwind().await;
    let end = seen.lock().unwrap().clone();
    (
        runs.load(Ordering::SeqCst),
        end,
        tasks_stopped_first.load(Ordering::SeqCst),
    )
}

fn check_matrix(results: Vec<(Exit, Observed)>) {
    for (exit, (runs, end, after_tasks)) in results {
        assert_eq!(runs, 1, "{exit:?}: ran {runs} times");
        assert!(
            after_tasks,
            "{exit:?}: ran while a task of the scope still ran"
        );
        let end = end.unwrap();
        let expected_failed = matches!(
            exit,
            Exit::BodyFails | Exit::TaskFails | Exit::BodyPanics | Exit::TaskPanics
        );
        match end {
            ScopeEnd::Failed => assert!(expected_failed, "{exit:?}: {end:?}"),
            ScopeEnd::Cancelled(ref reason) => {
                assert!(!expected_failed, "{exit:?}: {end:?}");
                if let Exit::TimesOut = exit {
                    assert_eq!(*reason, CancelReason::Timeout);
                }
            }
            ScopeEnd::Succeeded => panic!("{exit:?}: every path here cancels or fails"),
            _ => panic!("{exit:?}: {end:?}"),
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn exactly_once_on_every_exit_current_thread() {
    let mut results = Vec::new();
    for exit in EXITS {
        results.push((exit, one(exit).await));
    }
    check_matrix(results);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_on_every_exit_multi_thread() {
    let mut results = Vec::new();
    for _ in 0..10 {
        for exit in EXITS {
            results.push((exit, one(exit).await));
        }
    }
    check_matrix(results);
}

#[tokio::test]
async fn a_scope_that_succeeds_says_so_and_steps_run_newest_first() {
    let order = Arc::new(Mutex::new(Vec::new()));
    ScopeBuilder::new()
        .run(async |s| {
            for step in 0..3 {
                let order = Arc::clone(&order);
                s.defer(Duration::from_secs(1), move |end| async move {
                    assert_eq!(end, ScopeEnd::Succeeded);
                    order.lock().unwrap().push(step);
                    Ok(())
                });
            }
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
    assert_eq!(*order.lock().unwrap(), [2, 1, 0]);
}

#[tokio::test(start_paused = true)]
async fn a_step_sees_no_cancellation_from_above_and_its_timeout_bounds_it() {
    let outer = ScopeBuilder::new()
        .run(async |outer| {
            let result = ScopeBuilder::new().run(async |s| {
                s.defer(Duration::from_millis(500), |_| async {
                    let token = taskscope::token();
                    // The scope above was cancelled; this step's
                    // token was not.
                    assert!(!token.is_cancelled());
                    token.cancelled().await; // until its own timeout
                    assert_eq!(token.reason(), Some(CancelReason::Timeout));
                    Err(Cancelled::new(CancelReason::Timeout))
                });
                taskscope::token().cancelled().await;
                Ok::<_, Cancelled>(())
            });
            outer.cancel();
            let started = tokio::time::Instant::now();
            let result = result.await;
            // The step ran its 500 ms, no more.
            assert_eq!(started.elapsed(), Duration::from_millis(500));
            Ok::<_, Cancelled>(result)
        })
        .await
        .unwrap();
    // The step that ran out of time is reported.
    assert!(matches!(outer, Err(ScopeError::Failed { .. })), "{outer:?}");
}

#[tokio::test(start_paused = true)]
async fn zero_and_max_timeouts_are_accepted() {
    let result = ScopeBuilder::new()
        .run(async |s| {
            s.defer(Duration::ZERO, |_| async {
                taskscope::token().cancelled().await;
                Err(Cancelled::new(CancelReason::Timeout))
            });
            s.defer(Duration::MAX, |_| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            });
            Ok::<_, Cancelled>(())
        })
        .await;
    // MAX let its step sleep an hour; ZERO cancelled its step at once.
    let error = result.unwrap_err();
    assert_eq!(error.into_errors().len(), 1);
}

#[tokio::test]
async fn a_failing_step_comes_after_the_scopes_own_failure_and_fails_a_success() {
    let failed = ScopeBuilder::new()
        .run(async |s| {
            s.defer(Duration::from_secs(1), |_| async {
                Err(std::io::Error::other("cleanup failed"))
            });
            Err::<(), _>(std::io::Error::other("body failed"))
        })
        .await
        .unwrap_err();
    let messages: Vec<String> = failed
        .into_errors()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(messages, ["body failed", "cleanup failed"]);

    let succeeded_but = ScopeBuilder::new()
        .run(async |s| {
            s.defer(Duration::from_secs(1), |_| async {
                Err(std::io::Error::other("cleanup failed"))
            });
            Ok::<_, std::io::Error>(())
        })
        .await
        .unwrap_err();
    assert_eq!(succeeded_but.first().unwrap().to_string(), "cleanup failed");
}

#[tokio::test]
async fn a_panicking_step_is_resumed_when_the_scope_exits() {
    let result = AssertUnwindSafe(ScopeBuilder::new().run(async |s| {
        s.defer(Duration::from_secs(1), |_| async {
            panic!("cleanup panicked")
        });
        Ok::<_, Cancelled>(())
    }))
    .catch_unwind()
    .await;
    let payload = result.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"cleanup panicked"));
}

#[tokio::test]
async fn a_dropped_scopes_cleanup_is_joined_by_its_owner_and_shows_in_the_tree() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let cleaned = Arc::new(AtomicBool::new(false));
    let seen_in_tree = Arc::new(AtomicBool::new(false));
    let (cleaned2, seen2) = (Arc::clone(&cleaned), Arc::clone(&seen_in_tree));
    ScopeBuilder::new()
        .name("owner")
        .run(async move |owner| {
            let inner = ScopeBuilder::new().name("dropped").run(async move |s| {
                s.defer(Duration::from_secs(5), move |end| async move {
                    assert!(matches!(end, ScopeEnd::Cancelled(_)), "{end:?}");
                    // Slow cleanup: the owner must wait for it.
                    let _ = rx.await;
                    cleaned2.store(true, Ordering::SeqCst);
                    Ok(())
                });
                taskscope::token().cancelled().await;
                Ok::<_, Cancelled>(())
            });
            // Dropped before it finished.
            let _ = tokio::time::timeout(Duration::from_millis(5), inner).await;
            // The cleanup runs as a shielded scope in the owner.
            for _ in 0..100 {
                let tree = owner.snapshot().unwrap().to_string();
                if tree.contains("cleanup") {
                    seen2.store(true, Ordering::SeqCst);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tx.send(()).unwrap();
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
    // The owner returned only after the cleanup had finished.
    assert!(cleaned.load(Ordering::SeqCst));
    assert!(seen_in_tree.load(Ordering::SeqCst));
}

#[tokio::test]
async fn defer_on_a_finished_scope_is_refused() {
    let handle = taskscope::scope(async |s| Ok::<_, Cancelled>(s.handle()))
        .await
        .unwrap();
    let refused = handle.defer(Duration::from_secs(1), |_| async { Ok(()) });
    assert_eq!(refused, Err(taskscope::ScopeClosed));
}
