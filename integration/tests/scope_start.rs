//! `Scope::start`: a task that says when it is ready (Trio's
//! `nursery.start`), and the status a scope shows in the tree.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use taskscope::{Cancelled, Ready, ScopeBuilder, ScopeError, StartError};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn start_returns_the_value_the_task_sends_and_the_task_runs_on() {
    let served = Arc::new(AtomicBool::new(false));
    let result = ScopeBuilder::new()
        .run(async |s| {
            let served = served.clone();
            let addr = s
                .task()
                .name("listener")
                .start(move |ready: Ready<std::net::SocketAddr>| async move {
                    let listener = TcpListener::bind("127.0.0.1:0").await?;
                    ready.send(listener.local_addr()?);
                    let (_conn, _) = listener.accept().await?;
                    served.store(true, Ordering::SeqCst);
                    Ok(())
                })
                .await
                .map_err(StartError::into_error)?;
            TcpStream::connect(addr).await?;
            Ok::<_, io::Error>(addr)
        })
        .await
        .unwrap();
    assert!(result.ip().is_loopback());
    assert!(
        served.load(Ordering::SeqCst),
        "the scope joined the started task"
    );
}

#[tokio::test]
async fn a_failure_before_ready_goes_to_the_caller_not_the_scope() {
    let outcome = ScopeBuilder::new()
        .run(async |s| {
            let started = s
                .task()
                .name("bind")
                .start(|_ready: Ready<u16>| async {
                    Err(io::Error::new(io::ErrorKind::AddrInUse, "port taken"))
                })
                .await;
            match started {
                Err(StartError::Failed(error)) => {
                    assert_eq!(error.kind(), io::ErrorKind::AddrInUse)
                }
                other => panic!("expected the task's error, got {other:?}"),
            }
            Ok::<_, io::Error>("the scope is not failed")
        })
        .await;
    assert_eq!(outcome.unwrap(), "the scope is not failed");
}

#[tokio::test]
async fn a_failure_after_ready_fails_the_scope() {
    let outcome = ScopeBuilder::new()
        .run(async |s| {
            s.task()
                .name("late")
                .start(|ready: Ready<()>| async move {
                    ready.send(());
                    Err(io::Error::other("broke after start"))
                })
                .await
                .map_err(StartError::into_error)?;
            Ok::<_, io::Error>(())
        })
        .await;
    match outcome {
        Err(ScopeError::Failed { first, .. }) => assert_eq!(first.to_string(), "broke after start"),
        other => panic!("expected the scope to fail, got {other:?}"),
    }
}

#[tokio::test]
async fn a_task_that_ends_unready_is_reported() {
    ScopeBuilder::new()
        .run(async |s| {
            let started = s
                .task()
                .name("quitter")
                .start(|_ready: Ready<u8>| async { Ok(()) })
                .await;
            assert!(matches!(started, Err(StartError::NotReady)), "{started:?}");
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_stops_waiting_cancels_the_task() {
    let cancelled = Arc::new(AtomicBool::new(false));
    ScopeBuilder::new()
        .run(async |s| {
            let cancelled = cancelled.clone();
            let start = s
                .task()
                .name("slow")
                .start(move |_ready: Ready<()>| async move {
                    let token = taskscope::token();
                    token.cancelled().await;
                    cancelled.store(true, Ordering::SeqCst);
                    Ok(())
                });
            let gave_up = tokio::time::timeout(Duration::from_secs(1), start).await;
            assert!(gave_up.is_err());
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
    assert!(cancelled.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_start_dropped_unpolled_cancels_the_task() {
    let cancelled = Arc::new(AtomicBool::new(false));
    ScopeBuilder::new()
        .run(async |s| {
            let cancelled = cancelled.clone();
            drop(
                s.task()
                    .name("never awaited")
                    .start(move |_ready: Ready<()>| async move {
                        taskscope::token().cancelled().await;
                        cancelled.store(true, Ordering::SeqCst);
                        Ok(())
                    }),
            );
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
    assert!(cancelled.load(Ordering::SeqCst));
}

#[tokio::test]
async fn start_on_a_finished_scope_is_refused() {
    let handle = taskscope::scope(async |s| Ok::<_, Cancelled>(s.handle()))
        .await
        .unwrap();
    let started = handle
        .task()
        .name("late")
        .start(|ready: Ready<()>| async move {
            ready.send(());
            Ok(())
        })
        .await;
    assert!(matches!(started, Err(StartError::Closed(_))));
}

#[tokio::test]
async fn the_tree_shows_a_scope_status() {
    ScopeBuilder::new()
        .name("importer")
        .run(async |s| {
            s.handle().set_status(Some("batch 3 of 7"));
            s.spawn(async { Ok::<_, Cancelled>(()) });
            tokio::task::yield_now().await;
            let snapshot = s.snapshot().unwrap();
            assert_eq!(snapshot.status.as_deref(), Some("batch 3 of 7"));
            let tree = taskscope::tree().to_string();
            assert!(tree.contains("[batch 3 of 7]"), "{tree}");
            s.set_status(None);
            assert_eq!(s.snapshot().unwrap().status, None);
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
}

/// Invariant 2 of `src/scope/face/start.rs` under races: a task that fails right around
/// the moment its caller stops waiting has its failure reach exactly one
/// side, the caller or the scope, never both and never neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_early_failure_reaches_exactly_one_side() {
    const STARTS: usize = 2_000;
    let mut to_callers = 0;
    let outcome = ScopeBuilder::new()
        .policy(taskscope::Policy::Supervise)
        .run(async |s| {
            for i in 0..STARTS {
                let start = s
                    .task()
                    .name("racer")
                    .start(move |_ready: Ready<()>| async move {
                        if i % 2 == 0 {
                            tokio::task::yield_now().await;
                        }
                        Err(io::Error::other("early"))
                    });
                // Half the callers give up at once, racing the failure.
                let waited = if i % 3 == 0 {
                    futures_util::FutureExt::now_or_never(start)
                } else {
                    Some(start.await)
                };
                if let Some(Err(StartError::Failed(_))) = waited {
                    to_callers += 1;
                }
            }
            Ok::<_, io::Error>(())
        })
        .await;
    let to_scope = match outcome {
        Ok(()) => 0,
        Err(error) => error.into_errors().len(),
    };
    assert_eq!(
        to_callers + to_scope,
        STARTS,
        "callers {to_callers}, scope {to_scope}"
    );
}
