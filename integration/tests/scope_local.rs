//! Scopes with `!Send` futures: a `!Send` body and `spawn_local` tasks on a
//! current-thread runtime's `LocalSet`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use taskscope::{CancelReason, Cancelled, ScopeBuilder, ScopeError};
use tokio::task::LocalSet;

#[tokio::test(start_paused = true)]
async fn local_tasks_share_rc_state_and_are_joined() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let local = LocalSet::new();
    local
        .run_until(ScopeBuilder::new().name("local").run(async |s| {
            for i in 0..3u64 {
                let log = Rc::clone(&log);
                s.spawn_local(async move {
                    tokio::time::sleep(Duration::from_millis(10 * (3 - i))).await;
                    log.borrow_mut().push(i);
                    Ok::<_, Cancelled>(())
                });
            }
            // The body holds a `RefCell` borrow across no await, and an
            // `Rc` across one: it is `!Send` too.
            let held = Rc::clone(&log);
            tokio::task::yield_now().await;
            drop(held);
            Ok(())
        }))
        .await
        .unwrap();
    assert_eq!(
        *log.borrow(),
        [2, 1, 0],
        "the scope joined every local task"
    );
}

#[tokio::test(start_paused = true)]
async fn cancelling_the_scope_reaches_local_tasks_with_the_reason() {
    let local = LocalSet::new();
    let reason = local
        .run_until(taskscope::scope(async |s| {
            let not_send = Rc::new(());
            let waiter = s.spawn_local(async move {
                let _keep = not_send;
                taskscope::token().cancelled().await;
                Ok::<_, Cancelled>(taskscope::token().reason())
            });
            s.cancel_with(CancelReason::message("stop"));
            waiter.await
        }))
        .await
        .unwrap();
    assert_eq!(reason.unwrap().root(), &CancelReason::message("stop"));
}

#[tokio::test(start_paused = true)]
async fn a_failing_local_task_fails_the_scope_and_cancels_its_siblings() {
    let local = LocalSet::new();
    let outcome = local
        .run_until(taskscope::scope(async |s| {
            s.spawn_local(async {
                taskscope::token().cancelled().await;
                Err::<(), _>(std::io::Error::from(Cancelled::new(
                    CancelReason::requested(),
                )))
            });
            s.spawn_local(async { Err::<(), _>(std::io::Error::other("local failure")) });
            Ok::<_, std::io::Error>(())
        }))
        .await;
    match outcome {
        Err(ScopeError::Failed { first, .. }) => assert_eq!(first.to_string(), "local failure"),
        other => panic!("expected the local failure first, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_limit_applies_to_local_tasks() {
    let running = Rc::new(RefCell::new((0usize, 0usize))); // (now, peak)
    let local = LocalSet::new();
    local
        .run_until(ScopeBuilder::new().limit(2).run(async |s| {
            for _ in 0..6 {
                let running = Rc::clone(&running);
                s.spawn_local(async move {
                    {
                        let mut r = running.borrow_mut();
                        r.0 += 1;
                        r.1 = r.1.max(r.0);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    running.borrow_mut().0 -= 1;
                    Ok::<_, Cancelled>(())
                });
            }
            Ok(())
        }))
        .await
        .unwrap();
    assert_eq!(running.borrow().1, 2, "at most two ran at once");
}
