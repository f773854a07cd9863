//! The public handle to a live scope (docs/semantics.md, part II §11): what integrations and
//! tasks that spawn siblings hold, with no private door.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use taskscope::{
    AnyScope, CancelReason, Cancelled, ScopeBuilder, ScopeClosed, ScopeError, ScopeHandle,
};
use tokio::time::sleep;

mod support;
use support::until_cancelled;

fn assert_handle<T: Clone + Send + Sync + 'static>() {}

#[test]
fn a_handle_is_clone_send_sync_and_static() {
    assert_handle::<ScopeHandle<std::io::Error>>();
    assert_handle::<AnyScope>();
}

#[tokio::test(start_paused = true)]
async fn a_task_spawns_siblings_through_a_handle_and_the_scope_joins_them() {
    let finished = Arc::new(AtomicUsize::new(0));
    let started_at = tokio::time::Instant::now();
    taskscope::scope(async |s| {
        let siblings = s.handle();
        let finished = finished.clone();
        s.spawn(async move {
            for delay in 1..=3 {
                let finished = finished.clone();
                let spawned = siblings.spawn(async move {
                    sleep(Duration::from_secs(delay)).await;
                    finished.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Cancelled>(())
                });
                assert!(spawned.is_ok(), "this task holds its scope open");
            }
            Ok::<_, Cancelled>(())
        });
        Ok(())
    })
    .await
    .unwrap();
    // The scope waited for the siblings its task spawned.
    assert_eq!(finished.load(Ordering::SeqCst), 3);
    assert_eq!(started_at.elapsed(), Duration::from_secs(3));
}

#[tokio::test]
async fn every_verb_on_a_finished_scope_says_closed() {
    let handle = taskscope::ScopeBuilder::new()
        .name("finished")
        .run(async |s| Ok::<_, Cancelled>(s.handle()))
        .await
        .unwrap();
    assert!(handle.is_finished());
    assert!(handle.snapshot().is_none());
    assert_eq!(handle.spawn(async { Ok(()) }).unwrap_err(), ScopeClosed);
    assert_eq!(handle.spawn_blocking(|_| Ok(())).unwrap_err(), ScopeClosed);
    assert_eq!(
        handle
            .task()
            .name("late")
            .spawn(async { Ok(()) })
            .unwrap_err(),
        ScopeClosed
    );
    let waited = handle.task().wait_for_slot().spawn(async { Ok(()) }).await;
    assert_eq!(waited.unwrap_err(), ScopeClosed);
    let started = handle.start(|ready| async move {
        ready.send(());
        Ok(())
    });
    assert!(matches!(
        started.await,
        Err(taskscope::StartError::Closed(ScopeClosed))
    ));
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            assert_eq!(
                handle.spawn_local(async { Ok(()) }).unwrap_err(),
                ScopeClosed
            );
        })
        .await;
    assert!(AnyScope::clone(&handle).spawn(async {}).is_err());
}

#[tokio::test(start_paused = true)]
async fn within_opens_a_child_of_a_live_scope_from_outside_any_scope() {
    let cleaned_up = Arc::new(AtomicUsize::new(0));
    let result = ScopeBuilder::new()
        .name("server")
        .run(async |server| {
            let owner = server.handle();
            let cleaned_up = cleaned_up.clone();
            // A plain tokio task, outside any scope (as hyper's connection
            // tasks are).
            let connection = tokio::spawn(async move {
                assert!(taskscope::current_scope().is_none());
                ScopeBuilder::new()
                    .name("request")
                    .within(&owner)
                    .run(async |request| {
                        assert_eq!(taskscope::current_scope().unwrap().name(), "request");
                        request.spawn(async move {
                            let _ = until_cancelled().await;
                            sleep(Duration::from_secs(5)).await; // slow cleanup
                            cleaned_up.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, Cancelled>(())
                        });
                        Ok::<_, Cancelled>(())
                    })
                    .await
            });
            sleep(Duration::from_secs(1)).await;
            // Cancelling the owner reaches the request opened within it.
            server.cancel_with(CancelReason::Shutdown);
            connection.await.unwrap().map_err(ScopeError::into_error)
        })
        .await;
    assert!(result.is_ok());
    // The server's scope finished only after the request's cleanup.
    assert_eq!(cleaned_up.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn within_a_finished_scope_try_start_refuses_and_run_panics() {
    let finished = taskscope::scope(async |s| Ok::<_, Cancelled>(s.handle()))
        .await
        .unwrap();
    let started = ScopeBuilder::new()
        .within(&finished)
        .try_start(|_handle| async { Ok::<_, Cancelled>(()) });
    assert_eq!(started.err(), Some(ScopeClosed));

    let run = ScopeBuilder::new()
        .within(&finished)
        .run(async |_s| Ok::<_, Cancelled>(()));
    let panicked = tokio::spawn(run).await.unwrap_err();
    assert!(panicked.is_panic());
}

#[tokio::test(start_paused = true)]
async fn a_scope_opened_but_never_polled_does_not_hold_its_owner() {
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        taskscope::scope(async |s| {
            let opened = ScopeBuilder::new()
                .within(s)
                .try_start(|_inner| async { Ok::<_, Cancelled>(()) })
                .unwrap();
            drop(opened); // never polled
            Ok::<_, Cancelled>(())
        }),
    )
    .await;
    assert!(result.expect("the owner did not wait forever").is_ok());
}

#[tokio::test]
async fn current_scope_is_untyped_and_typed_names_the_error_type() {
    taskscope::scope(async |s| {
        let here = taskscope::current_scope().unwrap();
        assert_eq!(here.token(), s.token());
        assert!(here.typed::<std::io::Error>().is_none());
        let typed = here
            .typed::<Cancelled>()
            .expect("the scope's own error type");
        let task = typed.spawn(async { Ok(5) }).unwrap();
        assert_eq!(task.await?, 5);
        // In a task, the current scope is the task's scope.
        let inner =
            s.spawn(async { Ok::<_, Cancelled>(taskscope::current_scope().unwrap().token()) });
        assert_eq!(inner.await?, s.token());
        Ok::<_, Cancelled>(())
    })
    .await
    .unwrap();
    assert!(taskscope::current_scope().is_none());
}

#[tokio::test]
async fn a_handle_cancels_and_snapshots_its_scope() {
    let result = ScopeBuilder::new()
        .name("jobs")
        .run(async |s| {
            let handle = s.handle();
            s.task().name("waiter").spawn(until_cancelled());
            tokio::task::yield_now().await;
            let snapshot = handle.snapshot().unwrap();
            assert_eq!(snapshot.name.as_deref(), Some("jobs"));
            assert_eq!(snapshot.tasks.len(), 1);
            handle.cancel_with(CancelReason::message("stop"));
            Ok::<_, Cancelled>(())
        })
        .await;
    // The scope cancelled itself: the waiter's cancellation is absorbed.
    assert!(result.is_ok());
}

#[tokio::test]
async fn try_start_gives_the_body_an_owned_handle_and_a_static_future() {
    let future = ScopeBuilder::new()
        .name("boxed")
        .try_start(|scope: ScopeHandle<Cancelled>| async move {
            let task = scope.spawn(async { Ok::<_, Cancelled>(21) })?;
            Ok(task.await? * 2)
        })
        .unwrap();
    let boxed: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send + 'static>> =
        Box::pin(future);
    let value: Result<i32, ScopeError<Cancelled>> = tokio::spawn(boxed).await.unwrap();
    assert_eq!(value.unwrap(), 42);
}
