//! Every duration the scope layer accepts takes `Duration::ZERO` ("at
//! once") and `Duration::MAX` ("never") without panicking (docs/semantics.md, part I §4).

use std::time::Duration;

use taskscope::{CancelReason, Cancelled, ScopeBuilder, ScopeError};
use tokio::time::{sleep, Instant};

mod support;
use support::until_cancelled;

/// A task that notices its cancellation only after `late`, then stops.
async fn slow_to_stop(late: Duration) -> Result<(), Cancelled> {
    let _ = until_cancelled().await;
    sleep(late).await;
    Err(Cancelled::new(CancelReason::message("stopped late")))
}

#[tokio::test(start_paused = true)]
async fn max_grace_and_max_warning_mean_never_and_the_scope_waits() {
    let opened = Instant::now();
    let result = ScopeBuilder::new()
        .grace_period(Duration::MAX)
        .warn_after(Duration::MAX)
        .run(async |s| {
            s.spawn(slow_to_stop(Duration::from_secs(3600)));
            tokio::task::yield_now().await;
            s.cancel();
            Ok::<_, Cancelled>("done")
        })
        .await;
    assert_eq!(result.unwrap(), "done");
    assert_eq!(opened.elapsed(), Duration::from_secs(3600)); // never aborted
}

#[tokio::test(start_paused = true)]
async fn zero_grace_and_zero_warning_act_at_once() {
    let opened = Instant::now();
    let result = ScopeBuilder::new()
        .grace_period(Duration::ZERO)
        .warn_after(Duration::ZERO)
        .run(async |s| {
            let task = s.spawn(slow_to_stop(Duration::from_secs(3600)));
            tokio::task::yield_now().await;
            s.cancel();
            task.await // aborted at once
        })
        .await;
    assert!(result.is_err());
    assert!(opened.elapsed() < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn max_grace_on_a_dropped_scope_never_aborts_and_does_not_panic() {
    let scope = ScopeBuilder::new()
        .grace_period(Duration::MAX)
        .run(async |s| {
            s.spawn(slow_to_stop(Duration::from_secs(10)));
            std::future::pending::<Result<(), Cancelled>>().await
        });
    let _ = tokio::time::timeout(Duration::from_secs(1), scope).await; // dropped
    sleep(Duration::from_secs(20)).await;
    assert_eq!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn zero_timeout_cancels_as_the_scope_opens_and_max_never_fires() {
    let at_once = ScopeBuilder::new()
        .timeout(Duration::ZERO)
        .run(async |s| {
            assert!(s.token().is_cancelled());
            s.token().check()?;
            Ok::<_, Cancelled>(())
        })
        .await;
    assert!(matches!(at_once, Err(ScopeError::TimedOut { .. })));

    let never = ScopeBuilder::new()
        .timeout(Duration::MAX)
        .run(async |s| {
            sleep(Duration::from_secs(365 * 24 * 3600)).await;
            assert!(!s.token().is_cancelled());
            Ok::<_, Cancelled>("a year later")
        })
        .await;
    assert_eq!(never.unwrap(), "a year later");

    let moved_on = taskscope::move_on_after(Duration::ZERO, async |s| {
        s.token().cancelled().await;
        s.token().check()?;
        Ok::<_, Cancelled>(())
    })
    .await;
    assert_eq!(moved_on.unwrap(), None);
    let failed = taskscope::fail_after(Duration::MAX, async |_s| Ok::<_, Cancelled>(7)).await;
    assert_eq!(failed.unwrap(), 7);
}

#[tokio::test(start_paused = true)]
async fn a_shield_bounded_by_max_is_unbounded_and_by_zero_is_over_at_once() {
    let result = taskscope::scope(async |s| {
        s.cancel();
        let unbounded = ScopeBuilder::new()
            .shielded(Duration::MAX)
            .run(async |cleanup| {
                sleep(Duration::from_secs(60)).await;
                Ok::<_, Cancelled>(!cleanup.token().is_cancelled())
            })
            .await
            .unwrap();
        let over = ScopeBuilder::new()
            .shielded(Duration::ZERO)
            .run(async |cleanup| Ok::<_, Cancelled>(cleanup.token().is_cancelled()))
            .await
            .unwrap();
        Ok::<_, Cancelled>((unbounded, over))
    })
    .await;
    assert_eq!(result.unwrap(), (true, true));
}

/// `run_main` with a shutdown grace of `Duration::MAX` ("never abort") takes
/// a real SIGINT, sent by the process to itself, and exits cleanly.
#[cfg(unix)]
#[test]
fn max_shutdown_grace_is_never_and_does_not_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let code = taskscope::host::run_main(runtime, "main", Duration::MAX, async {
        let stopping = taskscope::token();
        // The signal handler is installed once `run_main` runs: ask for the
        // signal from inside.
        let pid = std::process::id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        stopping.cancelled().await;
        assert_eq!(stopping.reason().unwrap().root(), &CancelReason::Shutdown);
    });
    assert_eq!(code, std::process::ExitCode::SUCCESS);
}
