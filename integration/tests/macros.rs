//! `scope!` and `#[taskscope::test]`: each option does what it says, and
//! a test whose tasks outlive its body fails naming them.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use taskscope::{scope, CancelReason, CancellationSource, Cancelled, ScopeError};
use tokio::time::{sleep, Instant};

mod support;

#[taskscope::test]
async fn scope_macro_without_options_is_a_fail_fast_scope() {
    let result = scope!(|s| {
        s.spawn(async { Err::<(), _>(io::Error::other("boom")) });
        let other = s.spawn(async {
            taskscope::token().cancelled().await;
            Ok::<_, io::Error>(taskscope::token().reason().unwrap())
        });
        let reason = other.await?;
        assert!(matches!(reason.root(), CancelReason::SiblingFailed(_)));
        Ok(())
    })
    .await;
    assert_eq!(result.unwrap_err().first().unwrap().to_string(), "boom");
}

#[taskscope::test]
async fn scope_macro_names_the_scope_after_its_location_by_default() {
    let name = scope!(|s| Ok::<_, Cancelled>(s.name())).await.unwrap();
    assert!(name.starts_with("integration/tests/macros.rs:"), "{name}");
    let named = scope!(name = "importer", |s| Ok::<_, Cancelled>(s.name()))
        .await
        .unwrap();
    assert_eq!(named, "importer");
}

#[taskscope::test(start_paused = true)]
async fn scope_macro_timeout_fails_and_move_on_after_carries_on() {
    let failed = scope!(timeout = Duration::from_secs(1), |s| {
        s.token()
            .run_until_cancelled(sleep(Duration::from_secs(5)))
            .await?;
        Ok::<_, Cancelled>(())
    })
    .await;
    assert!(failed.unwrap_err().is_timeout());

    let started = Instant::now();
    let moved_on = scope!(move_on_after = Duration::from_secs(2), |s| {
        s.token()
            .run_until_cancelled(sleep(Duration::from_secs(5)))
            .await?;
        Ok::<_, Cancelled>("late")
    })
    .await;
    assert_eq!(moved_on.unwrap(), None);
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[taskscope::test]
async fn scope_macro_policies() {
    let supervised = scope!(policy = supervise, |s| {
        s.spawn(async { Err::<(), _>(io::Error::other("one")) });
        let survivor = s.spawn(async {
            tokio::task::yield_now().await;
            Ok(taskscope::token().is_cancelled())
        });
        assert!(!survivor.await?);
        Ok::<_, io::Error>(())
    })
    .await;
    assert!(matches!(supervised, Err(ScopeError::Failed { .. })));
}

#[taskscope::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_macro_limit_and_grace() {
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    scope!(limit = 2, |s| {
        for _ in 0..20 {
            let running = running.clone();
            s.spawn(async move {
                assert!(running.fetch_add(1, Ordering::SeqCst) < 2);
                sleep(Duration::from_millis(1)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Cancelled>(())
            });
        }
        Ok(())
    })
    .await
    .unwrap();

    let result = scope!(grace_period = Duration::from_millis(50), |s| {
        let stubborn = s.spawn(async {
            sleep(Duration::from_secs(3600)).await;
            Ok::<_, Cancelled>(())
        });
        s.cancel();
        stubborn.await
    })
    .await;
    assert!(result.is_err(), "aborted after the grace period");
}

#[taskscope::test]
async fn scope_macro_parent_and_shield() {
    let request = CancellationSource::new();
    request.cancel_with(CancelReason::message("client left"));
    let reason = scope!(parent = request.token(), |s| Ok::<_, Cancelled>(
        s.token().reason()
    ))
    .await
    .unwrap()
    .unwrap();
    assert_eq!(reason.root(), &CancelReason::message("client left"));

    let outer = scope!(|outer| {
        outer.cancel();
        let shielded = scope!(shielded = Duration::from_secs(5), |cleanup| {
            Ok::<_, Cancelled>(cleanup.token().is_cancelled())
        })
        .await
        .unwrap();
        Ok::<_, Cancelled>(shielded)
    })
    .await
    .unwrap();
    assert!(!outer, "the shield is not cancelled by its parent");
}

#[taskscope::test(start_paused = true)]
async fn scope_macro_cancel_on_exit_cancels_the_helpers_when_the_body_returns() {
    let helper_saw = Arc::new(std::sync::Mutex::new(None));
    let answer = scope!(cancel_on_exit = true, |s| {
        let helper_saw = helper_saw.clone();
        s.spawn(async move {
            let token = taskscope::token();
            token.cancelled().await; // a heartbeat that would run forever
            *helper_saw.lock().unwrap() = token.reason();
            Err::<(), _>(Cancelled::new(token.reason().unwrap()))
        });
        sleep(Duration::from_secs(2)).await;
        Ok::<_, Cancelled>(42)
    })
    .await;
    // The helper's cancellation is absorbed: the body's value comes back.
    assert_eq!(answer.unwrap(), 42);
    let reason = helper_saw.lock().unwrap().clone().unwrap();
    assert_eq!(
        reason.root(),
        &CancelReason::message("the scope's body returned")
    );

    // Without it the scope waits for its tasks (the default).
    let waited = scope!(cancel_on_exit = false, |s| {
        s.spawn(async {
            sleep(Duration::from_secs(5)).await;
            Ok::<_, Cancelled>(())
        });
        Ok::<_, Cancelled>(tokio::time::Instant::now())
    })
    .await
    .unwrap();
    assert!(waited.elapsed() >= Duration::from_secs(5));
}

#[taskscope::test]
async fn nested_scope_macro_links_to_the_enclosing_scope() {
    let reason = scope!(|outer| {
        let inner = outer.spawn(async {
            scope!(|inner| {
                inner.token().cancelled().await;
                Ok::<_, Cancelled>(inner.token().reason().unwrap())
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
    assert_eq!(reason.root(), &CancelReason::Shutdown);
}

#[taskscope::test]
async fn test_attribute_accepts_a_result_returning_test() -> Result<(), io::Error> {
    let value = scope!(|s| s.spawn(async { Ok::<_, io::Error>(7) }).await).await;
    assert_eq!(value.map_err(ScopeError::into_error)?, 7);
    Ok(())
}

#[taskscope::test(start_paused = true)]
async fn test_attribute_root_scope_gives_the_body_a_token() {
    let token = taskscope::token();
    assert!(token.can_be_cancelled());
    assert!(!token.is_cancelled());
}

// A test of the test: the body drops a scope whose task is still cleaning
// up; #[taskscope::test] must fail and name that task.
#[taskscope::test(start_paused = true)]
#[should_panic(expected = "were still running: slow cleanup (in scope leaky)")]
async fn test_attribute_fails_when_a_task_escapes_the_body() {
    let done = Arc::new(AtomicBool::new(false));
    let leaky = taskscope::ScopeBuilder::new().name("leaky").run(async |s| {
        let done = done.clone();
        s.task().name("slow cleanup").spawn(async move {
            taskscope::token().cancelled().await;
            sleep(Duration::from_secs(60)).await; // cleanup outlives the body
            done.store(true, Ordering::SeqCst);
            Ok::<_, Cancelled>(())
        });
        std::future::pending::<()>().await;
        Ok::<_, Cancelled>(())
    });
    let _ = tokio::time::timeout(Duration::from_millis(10), leaky).await;
}

#[taskscope::test(start_paused = true)]
async fn scope_macro_deadline_and_explicit_fail_fast() {
    let at = Instant::now() + Duration::from_secs(3);
    let result = scope!(deadline = at, policy = fail_fast, |s| {
        s.token().cancelled().await;
        Err::<(), _>(Cancelled::new(s.token().reason().unwrap()))
    })
    .await;
    assert!(result.unwrap_err().is_timeout());
    assert_eq!(Instant::now(), at);
}

#[taskscope::test(start_paused = true)]
async fn scope_macro_warn_after_sets_when_laggards_are_reported() {
    let capture = support::capture::Capture::default();
    let _guard = capture.install();
    let started = Instant::now();
    scope!(warn_after = Duration::from_secs(1), |s| {
        s.spawn(async {
            taskscope::token().cancelled().await;
            sleep(Duration::from_secs(60)).await;
            Ok::<_, Cancelled>(())
        });
        s.cancel();
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(60));
    let events = capture.0.lock().unwrap();
    let warning = events
        .iter()
        .find(|(level, _)| *level == tracing::Level::WARN)
        .expect("a laggard warning");
    assert!(warning.1.contains("waited=1s"), "{}", warning.1);
}
