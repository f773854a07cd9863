//! Scopes (docs/semantics.md, part II §1–8): structure, policies, panics, deadlines, grace
//! periods, shields, dropping, and the ambient scope. Tests that need time
//! pause tokio's clock.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use taskscope::{
    CancelReason, CancellationSource, CancellationToken, Cancelled, Policy, ScopeBuilder,
    ScopeError,
};
use tokio::time::{sleep, Instant};

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

// ---- structure -------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn scope_returns_only_after_every_task_and_nested_scope_completed() {
    let completed = Arc::new(AtomicUsize::new(0));
    let spawned = Arc::new(AtomicUsize::new(0));
    let mut seed = 12345u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let delays: Vec<u64> = (0..3000).map(|_| next() % 1000).collect();
    taskscope::scope(async |s| {
        for (i, &delay) in delays.iter().enumerate() {
            let (completed, spawned) = (completed.clone(), spawned.clone());
            spawned.fetch_add(1, Ordering::SeqCst);
            if i % 100 == 0 {
                // A task that opens a nested scope with tasks of its own.
                s.spawn(async move {
                    taskscope::scope(async |inner| {
                        for j in 0..10u64 {
                            let completed = completed.clone();
                            spawned.fetch_add(1, Ordering::SeqCst);
                            inner.spawn(async move {
                                sleep(Duration::from_millis(delay + j * 37)).await;
                                completed.fetch_add(1, Ordering::SeqCst);
                                Ok::<_, Cancelled>(())
                            });
                        }
                        Ok::<_, Cancelled>(())
                    })
                    .await
                    .map_err(ScopeError::into_error)?;
                    completed.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                });
            } else {
                s.spawn(async move {
                    sleep(Duration::from_millis(delay)).await;
                    completed.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Cancelled>(())
                });
            }
        }
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(
        completed.load(Ordering::SeqCst),
        spawned.load(Ordering::SeqCst)
    );
    assert_eq!(spawned.load(Ordering::SeqCst), 3000 + 30 * 10);
    assert_eq!(alive_tasks(), 0);
}

#[tokio::test]
async fn body_borrows_from_the_callers_stack_and_returns_its_value() {
    let mut log = Vec::new();
    let words = ["a".to_string(), "bb".to_string()];
    let total = taskscope::scope(async |s| {
        log.push("body ran");
        let handles: Vec<_> = words
            .iter()
            .map(|w| {
                let len = w.len();
                s.spawn(async move { Ok::<_, Cancelled>(len) })
            })
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.await?;
        }
        Ok(total)
    })
    .await
    .unwrap();
    assert_eq!(total, 3);
    assert_eq!(log, ["body ran"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_on_the_multi_thread_runtime() {
    let done = Arc::new(AtomicUsize::new(0));
    taskscope::scope(async |s| {
        for _ in 0..1000 {
            let done = done.clone();
            s.spawn(async move {
                tokio::task::yield_now().await;
                done.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Cancelled>(())
            });
        }
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 1000);
}

// ---- fail-fast -------------------------------------------------------------

#[tokio::test]
async fn fail_fast_cancels_siblings_naming_the_failed_task_and_returns_the_first_error() {
    let sibling_reason = Arc::new(Mutex::new(None));
    let result = taskscope::scope(async |s| {
        let reason = sibling_reason.clone();
        s.spawn(async move {
            let token = taskscope::token();
            token.cancelled().await;
            *reason.lock().unwrap() = token.reason();
            Err::<(), _>(io::Error::other("sibling stopped"))
        });
        s.task().name("billing").spawn(async {
            tokio::task::yield_now().await;
            Err::<(), _>(io::Error::other("billing is down"))
        });
        Ok::<_, io::Error>(())
    })
    .await;
    match result {
        Err(ScopeError::Failed { first, later }) => {
            assert_eq!(first.to_string(), "billing is down");
            // The later error is not lost.
            assert_eq!(later.len(), 1);
            assert_eq!(later[0].to_string(), "sibling stopped");
        }
        other => panic!("unexpected {other:?}"),
    }
    let reason = sibling_reason.lock().unwrap().clone().unwrap();
    assert_eq!(reason.root(), &CancelReason::sibling_failed("billing"));
}

#[tokio::test]
async fn first_error_is_first_in_time_even_when_the_body_propagates_another() {
    // The body awaits `slow` first; `fails` fails first and cancels `slow`,
    // whose cancellation error the body then propagates.
    let result = taskscope::scope(async |s| {
        let slow = s.spawn(async {
            until_cancelled().await?;
            Ok::<_, io::Error>(1)
        });
        let fails = s
            .task()
            .name("fails")
            .spawn(async { Err::<i32, _>(io::Error::other("root cause")) });
        let a = slow.await?;
        let b = fails.await?;
        Ok(a + b)
    })
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.first().unwrap().to_string(), "root cause");
    assert_eq!(err.into_errors().len(), 2);
}

#[tokio::test]
async fn error_taken_through_a_handle_is_not_reported_again() {
    let result = taskscope::ScopeBuilder::new()
        .policy(Policy::Supervise)
        .run(async |s| {
            let fails = s.spawn(async { Err::<(), _>(io::Error::other("handled")) });
            let err = fails.await.unwrap_err();
            assert_eq!(err.to_string(), "handled");
            Ok::<_, io::Error>("recovered")
        })
        .await;
    assert_eq!(result.unwrap(), "recovered");
}

#[tokio::test]
async fn body_error_cancels_the_tasks_and_is_returned() {
    let result = taskscope::scope(async |s| {
        s.spawn(until_cancelled());
        Err::<(), _>(Cancelled::new(CancelReason::message("body gave up")))
    })
    .await;
    let errors = result.unwrap_err().into_errors();
    assert_eq!(errors[0].reason(), &CancelReason::message("body gave up"));
    assert_eq!(
        errors[1].reason().root(),
        &CancelReason::sibling_failed("scope body")
    );
}

// ---- supervise and race ----------------------------------------------------

#[tokio::test]
async fn supervise_cancels_nobody_and_collects_every_error() {
    let survivor_finished = Arc::new(AtomicBool::new(false));
    let result = ScopeBuilder::new()
        .policy(Policy::Supervise)
        .run(async |s| {
            s.spawn(async { Err::<(), _>(io::Error::other("first")) });
            s.spawn(async {
                tokio::task::yield_now().await;
                Err::<(), _>(io::Error::other("second"))
            });
            let finished = survivor_finished.clone();
            s.spawn(async move {
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
                assert!(!taskscope::token().is_cancelled());
                finished.store(true, Ordering::SeqCst);
                Ok(())
            });
            Ok::<_, io::Error>(())
        })
        .await;
    assert!(survivor_finished.load(Ordering::SeqCst));
    let errors: Vec<_> = result
        .unwrap_err()
        .into_errors()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors, ["first", "second"]);
}

#[tokio::test(start_paused = true)]
async fn race_returns_the_first_success_and_cancels_the_rest() {
    let loser_reason = Arc::new(Mutex::new(None));
    let winner = taskscope::race(async |r| {
        r.spawn(async {
            sleep(Duration::from_millis(50)).await;
            Err::<&str, _>(io::Error::other("mirror a is down"))
        });
        r.spawn(async {
            sleep(Duration::from_millis(100)).await;
            Ok("mirror b")
        });
        let reason = loser_reason.clone();
        r.spawn(async move {
            let token = taskscope::token();
            token.cancelled().await;
            *reason.lock().unwrap() = token.reason();
            Err(Cancelled::new(token.reason().unwrap()).into())
        });
        Ok::<_, io::Error>(())
    })
    .await
    .unwrap();
    assert_eq!(winner, "mirror b");
    let reason = loser_reason.lock().unwrap().clone().unwrap();
    assert!(reason.root().to_string().contains("won the race"));
}

#[tokio::test]
async fn race_where_all_fail_returns_every_error_and_empty_race_says_so() {
    let result = taskscope::race(async |r| {
        r.spawn(async { Err::<(), _>(io::Error::other("a")) });
        r.spawn(async { Err::<(), _>(io::Error::other("b")) });
        Ok::<_, io::Error>(())
    })
    .await;
    let mut errors: Vec<_> = result
        .unwrap_err()
        .into_errors()
        .iter()
        .map(|e| e.to_string())
        .collect();
    errors.sort();
    assert_eq!(errors, ["a", "b"]);

    let empty = taskscope::race::<(), Cancelled, _>(async |_r| Ok(())).await;
    assert!(matches!(
        empty,
        Err(taskscope::RaceError::<Cancelled>::NoContestants)
    ));
}

// ---- concurrency limit -----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_bounds_running_tasks() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    ScopeBuilder::new()
        .limit(3)
        .run(async |s| {
            for i in 0..60 {
                let (running, peak) = (running.clone(), peak.clone());
                let task = async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, Cancelled>(())
                };
                if i % 2 == 0 {
                    let _ = s.spawn(task);
                } else {
                    let _ = s.task().wait_for_slot().spawn(task).await;
                }
            }
            Ok(())
        })
        .await
        .unwrap();
    assert!(
        peak.load(Ordering::SeqCst) <= 3,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    assert!(peak.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn waiting_for_a_slot_makes_the_spawner_wait() {
    let gate = Arc::new(tokio::sync::Notify::new());
    ScopeBuilder::new()
        .limit(1)
        .run(async |s| {
            let g = gate.clone();
            let _ = s.spawn(async move {
                g.notified().await;
                Ok::<_, Cancelled>(())
            });
            tokio::task::yield_now().await; // the first task takes the slot
            let second = s
                .task()
                .wait_for_slot()
                .spawn(async { Ok::<_, Cancelled>(()) });
            tokio::pin!(second);
            // Not admitted while the slot is taken.
            assert!(futures_util::poll!(second.as_mut()).is_pending());
            gate.notify_one();
            let _ = second.await;
            Ok(())
        })
        .await
        .unwrap();
}

// ---- panics ------------------------------------------------------------------

#[tokio::test]
async fn task_panic_cancels_the_scope_and_is_resumed_after_everyone_joined() {
    let cleaned_up = Arc::new(AtomicBool::new(false));
    let result = std::panic::AssertUnwindSafe(taskscope::scope(async |s| {
        let cleaned_up = cleaned_up.clone();
        s.spawn(async move {
            let _ = until_cancelled().await;
            tokio::task::yield_now().await; // cleanup takes a while
            cleaned_up.store(true, Ordering::SeqCst);
            Ok::<_, Cancelled>(())
        });
        s.spawn(async {
            tokio::task::yield_now().await;
            if true {
                panic!("boom: {}", 42);
            }
            Ok::<_, Cancelled>(())
        });
        Ok::<_, Cancelled>(())
    }))
    .catch_unwind()
    .await;
    let payload = result.unwrap_err();
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()));
    assert_eq!(
        message.as_deref(),
        Some("boom: 42"),
        "payload type {:?}",
        (*payload).type_id()
    );
    assert!(
        cleaned_up.load(Ordering::SeqCst),
        "resumed before the sibling finished"
    );
}

#[tokio::test]
async fn body_panic_is_resumed_after_the_tasks_are_joined() {
    let joined = Arc::new(AtomicBool::new(false));
    let result = std::panic::AssertUnwindSafe(taskscope::scope(async |s| {
        let joined = joined.clone();
        s.spawn(async move {
            let _ = until_cancelled().await;
            joined.store(true, Ordering::SeqCst);
            Ok::<_, Cancelled>(())
        });
        tokio::task::yield_now().await;
        panic!("body panicked");
        #[allow(unreachable_code)]
        Ok::<_, Cancelled>(())
    }))
    .catch_unwind()
    .await;
    assert_eq!(
        *result.unwrap_err().downcast_ref::<&str>().unwrap(),
        "body panicked"
    );
    assert!(joined.load(Ordering::SeqCst));
}

// ---- deadlines ---------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn fail_after_fails_with_timed_out_and_tasks_see_timeout() {
    let seen = Arc::new(Mutex::new(None));
    let started = Instant::now();
    let result = taskscope::fail_after(Duration::from_secs(2), async |s| {
        let seen = seen.clone();
        s.spawn(async move {
            let token = taskscope::token();
            token.cancelled().await;
            *seen.lock().unwrap() = token.reason();
            Err::<(), _>(Cancelled::new(token.reason().unwrap()))
        });
        Ok::<_, Cancelled>(())
    })
    .await;
    assert!(result.unwrap_err().is_timeout());
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert!(seen.lock().unwrap().as_ref().unwrap().is_timeout());
}

#[tokio::test(start_paused = true)]
async fn move_on_after_carries_on_with_none() {
    let result = taskscope::move_on_after(Duration::from_secs(1), async |s| {
        s.spawn(until_cancelled());
        s.token().cancelled().await;
        Err::<u32, _>(Cancelled::new(CancelReason::Timeout))
    })
    .await;
    assert_eq!(result.unwrap(), None);

    let in_time =
        taskscope::move_on_after(Duration::from_secs(1), async |_| Ok::<_, Cancelled>(7)).await;
    assert_eq!(in_time.unwrap(), Some(7));
}

#[tokio::test(start_paused = true)]
async fn failure_before_the_deadline_is_a_failure_not_a_timeout() {
    let result = taskscope::fail_after(Duration::from_secs(10), async |s| {
        s.spawn(async { Err::<(), _>(io::Error::other("real failure")) });
        Ok::<_, io::Error>(())
    })
    .await;
    assert!(!result.as_ref().unwrap_err().is_timeout());
    assert_eq!(
        result.unwrap_err().first().unwrap().to_string(),
        "real failure"
    );
}

// ---- grace period and laggards ------------------------------------------------

#[tokio::test(start_paused = true)]
async fn tasks_still_running_after_the_grace_period_are_aborted_and_reported() {
    let started = Instant::now();
    let result = ScopeBuilder::new()
        .grace_period(Duration::from_secs(3))
        .run(async |s| {
            let stubborn = s.spawn(async {
                sleep(Duration::from_secs(3600)).await; // ignores its token
                Ok::<_, Cancelled>("finished")
            });
            let polite = s.spawn(until_cancelled());
            s.cancel_with(CancelReason::message("stop"));
            let aborted = stubborn.await.unwrap_err();
            assert_eq!(aborted.reason(), &CancelReason::message("stop"));
            assert!(polite.await.is_err());
            Ok::<_, Cancelled>(())
        })
        .await;
    assert!(result.is_ok());
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(alive_tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn without_a_grace_period_the_scope_waits_for_cleanup() {
    let cleaned = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    taskscope::scope(async |s| {
        let cleaned = cleaned.clone();
        s.spawn(async move {
            let _ = until_cancelled().await;
            sleep(Duration::from_secs(100)).await; // long cleanup
            cleaned.store(true, Ordering::SeqCst);
            Ok::<_, Cancelled>(())
        });
        s.cancel();
        Ok(())
    })
    .await
    .unwrap();
    assert!(cleaned.load(Ordering::SeqCst));
    assert_eq!(started.elapsed(), Duration::from_secs(100));
}

mod support;
use support::{capture, until_cancelled};

#[tokio::test(start_paused = true)]
async fn cancelled_scope_waiting_too_long_warns_once_naming_the_laggards() {
    let capture = capture::Capture::default();
    let _guard = capture.install();
    ScopeBuilder::new()
        .name("importer")
        .warn_after(Duration::from_secs(5))
        .run(async |s| {
            s.task().name("slow cleanup").spawn(async {
                let _ = until_cancelled().await;
                sleep(Duration::from_secs(30)).await;
                Ok::<_, Cancelled>(())
            });
            s.task().name("quick").spawn(until_cancelled());
            s.cancel();
            Ok(())
        })
        .await
        .unwrap();
    let events = capture.0.lock().unwrap();
    let warnings: Vec<_> = events
        .iter()
        .filter(|(level, _)| *level == tracing::Level::WARN)
        .collect();
    assert_eq!(warnings.len(), 1, "{events:?}");
    assert!(warnings[0].1.contains("slow cleanup"), "{}", warnings[0].1);
    assert!(!warnings[0].1.contains("quick"), "{}", warnings[0].1);
    assert!(warnings[0].1.contains("importer"), "{}", warnings[0].1);
}

// ---- shield ------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn shielded_scope_ignores_the_parents_cancellation_but_is_joined_and_bounded() {
    let flushed = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    taskscope::scope(async |s| {
        let flushed = flushed.clone();
        s.spawn(async move {
            let _ = until_cancelled().await;
            // Cleanup that must run although we are cancelled.
            let result = ScopeBuilder::new()
                .shielded(Duration::from_secs(5))
                .run(async |cleanup| {
                    assert!(!cleanup.token().is_cancelled());
                    let flushed = flushed.clone();
                    cleanup.spawn(async move {
                        sleep(Duration::from_secs(1)).await;
                        flushed.store(true, Ordering::SeqCst);
                        Ok::<_, Cancelled>(())
                    });
                    Ok(())
                })
                .await;
            assert!(result.is_ok());
            Ok::<_, Cancelled>(())
        });
        s.cancel();
        Ok(())
    })
    .await
    .unwrap();
    assert!(flushed.load(Ordering::SeqCst));
    assert_eq!(started.elapsed(), Duration::from_secs(1));

    // The shield's own timeout still applies.
    let bounded = ScopeBuilder::new()
        .shielded(Duration::from_secs(2))
        .run(async |s| {
            s.token().cancelled().await;
            Err::<(), _>(Cancelled::new(s.token().reason().unwrap()))
        })
        .await;
    assert!(bounded.unwrap_err().is_timeout());
}

// ---- dropping a scope ----------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn dropped_inner_scope_is_cancelled_and_the_outer_scope_waits_for_its_tasks() {
    let cleanup_done = Arc::new(AtomicBool::new(false));
    let outer_finished_at = taskscope::scope(async |_outer| {
        let cleanup_done = cleanup_done.clone();
        tokio::select! {
            _ = taskscope::scope(async |inner| {
                inner.spawn(async move {
                    let _ = until_cancelled().await;
                    sleep(Duration::from_secs(10)).await; // cleanup after cancellation
                    cleanup_done.store(true, Ordering::SeqCst);
                    Ok::<_, Cancelled>(())
                });
                std::future::pending::<()>().await;
                Ok::<_, Cancelled>(())
            }) => unreachable!(),
            _ = sleep(Duration::from_secs(1)) => {} // the inner scope loses the race
        }
        Ok::<_, Cancelled>(Instant::now())
    })
    .await
    .unwrap();
    // The outer scope returned only after the orphaned task's cleanup.
    assert!(cleanup_done.load(Ordering::SeqCst));
    assert!(Instant::now() >= outer_finished_at + Duration::from_secs(10));
    assert_eq!(alive_tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn dropped_root_scope_cancels_its_tasks_and_aborts_them_after_the_grace_period() {
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let scope = ScopeBuilder::new()
        .grace_period(Duration::from_secs(2))
        .run(async |s| {
            let saw_cancel = saw_cancel.clone();
            s.spawn(async move {
                taskscope::token().cancelled().await;
                saw_cancel.store(true, Ordering::SeqCst);
                sleep(Duration::from_secs(3600)).await; // too slow: aborted
                Ok::<_, Cancelled>(())
            });
            std::future::pending::<()>().await;
            Ok::<_, Cancelled>(())
        });
    let _ = tokio::time::timeout(Duration::from_secs(1), scope).await; // dropped here
    tokio::task::yield_now().await;
    assert!(saw_cancel.load(Ordering::SeqCst));
    assert!(
        alive_tasks() >= 1,
        "the task is not detached silently before the grace ends"
    );
    sleep(Duration::from_secs(3)).await;
    assert_eq!(alive_tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_scope_cancels_before_its_body_is_dropped() {
    // The body's own registration must see the token fire: a body that
    // bridges an API without tokens (an interrupt handle, say) relies on it.
    let seen = Arc::new(Mutex::new(None));
    let scope = taskscope::scope(async |s| {
        let _registration = s.token().on_cancel({
            let seen = seen.clone();
            move |reason| *seen.lock().unwrap() = Some(reason.clone())
        });
        std::future::pending::<()>().await;
        Ok::<_, Cancelled>(())
    });
    let _ = tokio::time::timeout(Duration::from_secs(1), scope).await; // dropped here
    assert_eq!(
        seen.lock().unwrap().clone(),
        Some(taskscope::CancelReason::message(
            "scope dropped before it finished"
        ))
    );
}

// ---- the ambient scope and explicit tokens --------------------------------------

#[tokio::test]
async fn token_outside_any_scope_is_none_and_nested_scopes_link_automatically() {
    assert_eq!(taskscope::token(), CancellationToken::none());
    let inner_reason = taskscope::scope(async |outer| {
        let inner = outer.spawn(async {
            taskscope::scope(async |inner| {
                let task = inner.spawn(async {
                    let token = taskscope::token();
                    token.cancelled().await;
                    Ok::<_, Cancelled>(token.reason().unwrap())
                });
                task.await
            })
            .await
            .map_err(ScopeError::into_error)
        });
        tokio::task::yield_now().await;
        outer.cancel_with(CancelReason::Shutdown);
        inner.await
    })
    .await
    .unwrap();
    assert!(inner_reason.is_inherited());
    assert_eq!(inner_reason.root(), &CancelReason::Shutdown);
}

#[tokio::test]
async fn scope_can_be_linked_to_a_token_the_caller_gives() {
    let request = CancellationSource::new();
    let result = ScopeBuilder::new()
        .parent(&request.token())
        .run(async |s| {
            let task = s.spawn(until_cancelled());
            request.cancel_with(CancelReason::message("client disconnected"));
            task.await
        })
        .await;
    let err = result.unwrap_err().into_error();
    assert_eq!(
        err.reason().root(),
        &CancelReason::message("client disconnected")
    );
}

#[tokio::test]
async fn a_task_can_be_cancelled_alone_through_its_handle() {
    taskscope::scope(async |s| {
        let lonely = s.spawn(until_cancelled());
        let bystander = s.spawn(async {
            for _ in 0..5 {
                tokio::task::yield_now().await;
            }
            Ok::<_, Cancelled>(taskscope::token().is_cancelled())
        });
        lonely.cancel_with(CancelReason::message("only you"));
        let err = lonely.await.unwrap_err();
        assert_eq!(err.reason().root(), &CancelReason::message("only you"));
        assert!(!bystander.await?);
        assert!(!s.token().is_cancelled());
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_task_can_be_aborted_through_its_handle_and_is_still_joined() {
    let dropped = Arc::new(AtomicBool::new(false));
    let result = taskscope::scope(async |s| {
        struct SetOnDrop(Arc<AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let guard = SetOnDrop(dropped.clone());
        let stubborn = s.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await; // never looks at its token
            Ok::<_, Cancelled>(())
        });
        tokio::task::yield_now().await;
        stubborn.abort();
        let err = stubborn.await.unwrap_err();
        assert_eq!(
            err.reason(),
            &CancelReason::message("aborted through its handle")
        );
        assert!(!s.token().is_cancelled(), "only the task was aborted");
        Ok::<_, Cancelled>(())
    })
    .await;
    result.unwrap();
    assert!(
        dropped.load(Ordering::SeqCst),
        "the aborted task's future was dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_task_gets_its_token_and_stops_when_cancelled() {
    let iterations = Arc::new(AtomicUsize::new(0));
    let result = taskscope::scope(async |s| {
        let counter = iterations.clone();
        let busy = s.spawn_blocking(move |token| -> Result<(), Cancelled> {
            loop {
                token.check()?;
                counter.fetch_add(1, Ordering::Relaxed);
                std::thread::yield_now();
            }
        });
        while iterations.load(Ordering::Relaxed) < 10 {
            tokio::task::yield_now().await;
        }
        s.cancel();
        busy.await
    })
    .await;
    assert!(result.is_err());
}
