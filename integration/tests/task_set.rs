//! `TaskSet`: a scope's tasks joined in the order they finish.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use taskscope::{Cancelled, ScopeBuilder, ScopeError, TaskSet};
use tokio::time::sleep;

#[tokio::test(start_paused = true)]
async fn tasks_are_joined_in_the_order_they_finish() {
    let order = taskscope::scope(async |s| {
        let mut set = TaskSet::new();
        for ms in [50u64, 10, 40, 20, 30] {
            set.push(s.task().name(format!("sleep {ms}")).spawn(async move {
                sleep(Duration::from_millis(ms)).await;
                Ok::<_, Cancelled>(ms)
            }));
        }
        assert_eq!(set.len(), 5);
        let mut order = Vec::new();
        while let Some(done) = set.join_next().await {
            order.push(done?);
        }
        assert!(set.is_empty());
        Ok(order)
    })
    .await
    .unwrap();
    assert_eq!(order, [10, 20, 30, 40, 50]);
}

#[tokio::test(start_paused = true)]
async fn a_failure_joined_from_the_set_is_the_callers_not_the_scopes() {
    let outcome = ScopeBuilder::new()
        .run(async |s| {
            let mut set = TaskSet::<u32, io::Error>::new();
            set.push(s.spawn(async { Err(io::Error::other("bad shard")) }));
            set.push(s.spawn(async {
                sleep(Duration::from_millis(10)).await;
                Ok(7)
            }));
            let first = set.join_next().await.unwrap();
            assert_eq!(first.unwrap_err().to_string(), "bad shard");
            assert_eq!(set.join_next().await.unwrap()?, 7);
            Ok::<_, io::Error>("handled")
        })
        .await;
    assert_eq!(outcome.unwrap(), "handled");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_set_leaves_its_tasks_to_the_scope() {
    let finished = Arc::new(AtomicBool::new(false));
    let outcome = ScopeBuilder::new()
        .run(async |s| {
            let mut set = TaskSet::<(), io::Error>::new();
            let done = finished.clone();
            set.push(s.spawn(async move {
                sleep(Duration::from_millis(10)).await;
                done.store(true, Ordering::SeqCst);
                Ok(())
            }));
            set.push(s.spawn(async { Err(io::Error::other("nobody joined me")) }));
            drop(set);
            Ok::<_, io::Error>(())
        })
        .await;
    assert!(finished.load(Ordering::SeqCst), "the scope joined the task");
    match outcome {
        Err(ScopeError::Failed { first, .. }) => assert_eq!(first.to_string(), "nobody joined me"),
        other => panic!("the scope reports the failure nobody took: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn join_next_is_cancel_safe_and_cancelling_the_scope_reaches_the_set() {
    taskscope::scope(async |s| {
        let mut set = TaskSet::new();
        set.push(s.spawn(async {
            sleep(Duration::from_secs(5)).await;
            Ok::<_, Cancelled>("slow")
        }));
        // Dropping `join_next` before the task finishes loses nothing.
        assert!(
            tokio::time::timeout(Duration::from_secs(1), set.join_next())
                .await
                .is_err()
        );
        assert_eq!(set.len(), 1);
        assert_eq!(set.join_next().await.unwrap()?, "slow");

        set.push(s.spawn(async {
            taskscope::token().cancelled().await;
            Err(Cancelled::new(taskscope::CancelReason::requested()))
        }));
        s.cancel();
        let stopped = set.join_next().await.unwrap();
        assert!(stopped.is_err());
        Ok::<_, Cancelled>(())
    })
    .await
    .unwrap();
}
