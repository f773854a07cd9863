//! Errors are judged by what they are, not when they arrive (docs/semantics.md, part II §4):
//! a real failure is never dropped and never reported behind a
//! cancellation, whenever it comes; only errors that *are* cancellations,
//! from code whose token fired, are absorbed.

use std::io;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use taskscope::{
    CancelReason, CancellationSource, Cancelled, Policy, ScopeBuilder, ScopeError, TaskError,
};

mod support;
use support::until_cancelled;

fn disk_full() -> io::Error {
    io::Error::other("disk full")
}

/// The README's pattern: `Ok((a.await?, b.await?))` where `a` fails for
/// real and `b` stops because of it.
async fn readme_pattern() -> Result<((), ()), ScopeError<io::Error>> {
    taskscope::scope(async |s| {
        let a = s.spawn(async {
            tokio::task::yield_now().await;
            Err::<(), _>(disk_full())
        });
        let b = s.spawn(async {
            until_cancelled().await?;
            Ok::<_, io::Error>(())
        });
        Ok((a.await?, b.await?))
    })
    .await
}

fn assert_disk_full_first(result: Result<((), ()), ScopeError<io::Error>>) {
    let err = result.unwrap_err();
    assert_eq!(err.first().unwrap().to_string(), "disk full", "{err:?}");
    for later in match &err {
        ScopeError::Failed { later, .. } => later.iter(),
        other => panic!("unexpected {other:?}"),
    } {
        assert!(
            later.is_cancellation(),
            "only cancellations come later: {later}"
        );
    }
    assert_eq!(err.into_error().to_string(), "disk full");
}

#[tokio::test]
async fn the_readme_pattern_reports_the_real_failure_first_on_one_thread() {
    for _ in 0..50 {
        assert_disk_full_first(readme_pattern().await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_pattern_reports_the_real_failure_first_on_many_threads() {
    for _ in 0..200 {
        assert_disk_full_first(readme_pattern().await);
    }
}

#[tokio::test]
async fn a_real_error_spawned_after_the_scope_was_cancelled_is_not_lost() {
    let result = taskscope::scope(async |s| {
        s.cancel();
        let _ = s.spawn(async { Err::<(), _>(disk_full()) });
        Ok(())
    })
    .await;
    assert_eq!(result.unwrap_err().into_error().to_string(), "disk full");
}

#[tokio::test]
async fn a_real_failure_during_cleanup_after_cancel_is_reported() {
    let result = taskscope::scope(async |s| {
        s.spawn(async {
            let _ = until_cancelled().await;
            // Cleanup that fails for real.
            Err::<(), _>(io::Error::other("flush failed"))
        });
        tokio::task::yield_now().await;
        s.cancel();
        Ok(())
    })
    .await;
    assert_eq!(result.unwrap_err().into_error().to_string(), "flush failed");
}

#[tokio::test]
async fn a_real_failure_after_its_own_handle_cancelled_it_is_reported() {
    let result = ScopeBuilder::new()
        .policy(Policy::Supervise)
        .run(async |s| {
            let task = s.spawn(async {
                let _ = until_cancelled().await;
                Err::<(), _>(io::Error::other("rollback failed"))
            });
            task.cancel_with(CancelReason::message("not needed"));
            drop(task);
            assert!(!s.token().is_cancelled(), "only the task was cancelled");
            Ok(())
        })
        .await;
    assert_eq!(
        result.unwrap_err().into_error().to_string(),
        "rollback failed"
    );
}

#[tokio::test]
async fn cancellations_of_work_the_scope_cancelled_itself_are_absorbed() {
    let result = taskscope::scope(async |s| {
        for _ in 0..3 {
            s.spawn(async {
                until_cancelled().await?;
                Ok::<_, io::Error>(())
            });
        }
        let one = s.spawn(async {
            until_cancelled().await?;
            Ok::<_, io::Error>(())
        });
        one.cancel_with(CancelReason::message("enough"));
        tokio::task::yield_now().await;
        s.cancel();
        Ok("done")
    })
    .await;
    assert_eq!(result.unwrap(), "done");
}

#[tokio::test(start_paused = true)]
async fn a_cancellation_error_from_code_that_was_not_cancelled_is_a_real_failure() {
    // An inner timeout stops a task that nobody cancelled: the task failed.
    let result = taskscope::scope(async |s| {
        s.spawn(async {
            let inner = CancellationSource::with_timeout(Duration::from_secs(1));
            inner
                .token()
                .run_until_cancelled(tokio::time::sleep(Duration::from_secs(5)))
                .await?;
            Ok::<_, Cancelled>(())
        });
        Ok(())
    })
    .await;
    let err = result.unwrap_err();
    assert!(matches!(err, ScopeError::Failed { .. }));
    assert!(err.first().unwrap().is_timeout());
}

#[tokio::test]
async fn a_panicking_cancel_callback_does_not_hide_the_failure() {
    // A task fails, the scope cancels itself, the body's callback panics.
    let scope = taskscope::scope(async |s| {
        let _callback = s
            .token()
            .on_cancel(|_| panic!("the callback broke while the scope was cancelled"));
        s.spawn(async { Err::<(), _>(disk_full()) });
        s.token().cancelled().await;
        Ok(())
    });
    let outcome = AssertUnwindSafe(scope).catch_unwind().await;
    // Not `Ok`: the panic is resumed at the scope's exit, after the join.
    let payload = outcome.expect_err("the scope must not return Ok");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap();
    assert!(message.contains("the callback broke"), "{message}");
}

#[derive(Debug, PartialEq)]
enum SyncError {
    Remote(String),
    Cancelled(CancelReason),
}

impl From<Cancelled> for SyncError {
    fn from(cancelled: Cancelled) -> Self {
        SyncError::Cancelled(cancelled.into_reason())
    }
}

impl TaskError for SyncError {
    fn is_cancellation(&self) -> bool {
        matches!(self, SyncError::Cancelled(_))
    }
}

#[derive(Debug)]
struct Opaque;

impl From<Cancelled> for Opaque {
    fn from(_: Cancelled) -> Self {
        Opaque
    }
}

// The one-line opt-in: never a cancellation.
impl TaskError for Opaque {}

#[tokio::test]
async fn a_users_error_type_opts_in_with_one_impl() {
    // Its cancellation variant is absorbed when the scope cancelled itself…
    let absorbed = taskscope::scope(async |s| {
        s.spawn(async {
            until_cancelled().await?;
            Ok::<_, SyncError>(())
        });
        tokio::task::yield_now().await;
        s.cancel();
        Ok(1)
    })
    .await;
    assert_eq!(absorbed.unwrap(), 1);

    // …and its real variant comes first, after a cancellation.
    let failed = taskscope::scope(async |s| {
        s.spawn(async {
            until_cancelled().await?;
            Ok::<_, SyncError>(())
        });
        tokio::task::yield_now().await;
        s.cancel();
        tokio::task::yield_now().await;
        s.spawn(async { Err::<(), _>(SyncError::Remote("503".into())) });
        Ok(())
    })
    .await;
    assert_eq!(
        failed.unwrap_err().into_error(),
        SyncError::Remote("503".into())
    );

    // The default impl never absorbs: the caller learns the work stopped.
    let reported = taskscope::scope(async |s| {
        s.spawn(async {
            until_cancelled().await?;
            Ok::<_, Opaque>(())
        });
        tokio::task::yield_now().await;
        s.cancel();
        Ok(())
    })
    .await;
    assert!(matches!(reported, Err(ScopeError::Failed { .. })));
}

#[tokio::test]
async fn boxed_errors_are_judged_through_their_source_chain() {
    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let result = taskscope::scope(async |s| {
        s.spawn(async {
            until_cancelled().await?;
            Ok::<_, BoxError>(())
        });
        s.spawn(async {
            let _ = until_cancelled().await;
            Err::<(), BoxError>("could not release the lock".into())
        });
        tokio::task::yield_now().await;
        s.cancel();
        Ok(())
    })
    .await;
    let err = result.unwrap_err();
    assert_eq!(
        err.first().unwrap().to_string(),
        "could not release the lock"
    );
}

#[tokio::test]
async fn anyhow_errors_with_a_cancellation_in_their_chain_are_cancellations() {
    use anyhow::Context;
    let result = taskscope::scope(async |s| {
        s.spawn(async {
            until_cancelled().await.context("while syncing")?;
            Ok::<_, anyhow::Error>(())
        });
        tokio::task::yield_now().await;
        s.cancel();
        Ok("absorbed")
    })
    .await;
    assert_eq!(result.unwrap(), "absorbed");

    let real: anyhow::Error = anyhow::anyhow!("disk full");
    assert!(!real.is_cancellation());
}

#[tokio::test(start_paused = true)]
async fn the_message_counts_real_failures_not_the_cancellations_they_caused() {
    let result = taskscope::scope(async |s| {
        for _ in 0..3 {
            s.spawn(async {
                let token = taskscope::token();
                token
                    .run_until_cancelled(tokio::time::sleep(std::time::Duration::from_secs(60)))
                    .await?;
                Ok::<(), std::io::Error>(())
            });
        }
        s.spawn(async { Err::<(), _>(std::io::Error::other("disk full")) });
        Ok(())
    })
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.to_string(), "disk full");
    assert!(!err.is_cancellation());

    let result = taskscope::ScopeBuilder::new()
        .policy(taskscope::Policy::Supervise)
        .run(async |s| {
            s.spawn(async { Err::<(), _>(std::io::Error::other("first")) });
            s.spawn(async {
                tokio::task::yield_now().await;
                Err::<(), _>(std::io::Error::other("second"))
            });
            Ok(())
        })
        .await;
    assert_eq!(
        result.unwrap_err().to_string(),
        "first (and 1 later failure)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_scope_stopped_by_a_shutdown_says_it_was_a_cancellation() {
    let shutdown = taskscope::CancellationSource::new();
    let result = taskscope::ScopeBuilder::new()
        .parent(&shutdown.token())
        .run(async |s| {
            let worker = s.spawn(async {
                taskscope::token().cancelled().await;
                Err::<(), _>(taskscope::Cancelled::new(
                    taskscope::token().reason().unwrap(),
                ))
            });
            shutdown.cancel_with(taskscope::CancelReason::Shutdown);
            worker.await
        })
        .await;
    let err = result.unwrap_err();
    assert!(err.is_cancellation(), "{err:?}");
}
