//! A scope has one bound (a timeout, a deadline, or a shield's timeout):
//! a second one does not compile (`tests/ui/builder_two_bounds.rs`). What
//! remains combines, and means the same whatever the order.

use std::time::Duration;

use taskscope::{CancelReason, CancellationSource, Cancelled, ScopeBuilder};

#[tokio::test(start_paused = true)]
async fn a_bound_known_only_at_run_time_is_one_call() {
    for timeout in [None, Some(Duration::from_secs(1))] {
        let started = tokio::time::Instant::now();
        let result = ScopeBuilder::new()
            .timeout(timeout.unwrap_or(Duration::MAX))
            .run_or_move_on(async |s| {
                s.token()
                    .run_until_cancelled(tokio::time::sleep(Duration::from_secs(5)))
                    .await?;
                Ok::<_, Cancelled>(())
            })
            .await
            .unwrap();
        match timeout {
            None => assert_eq!(
                (result, started.elapsed()),
                (Some(()), Duration::from_secs(5))
            ),
            Some(_) => assert_eq!((result, started.elapsed()), (None, Duration::from_secs(1))),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_shield_with_a_parent_answers_that_token_only_in_either_order() {
    for parent_first in [true, false] {
        let request = CancellationSource::new();
        let outcome = taskscope::scope(async |outer| {
            outer.cancel(); // the owner's cancellation does not reach the shield
            let builder = ScopeBuilder::new();
            let builder = if parent_first {
                builder
                    .parent(&request.token())
                    .shielded(Duration::from_secs(60))
            } else {
                builder
                    .shielded(Duration::from_secs(60))
                    .parent(&request.token())
            };
            let shielded = builder.run(async |s| {
                assert!(!s.token().is_cancelled());
                request.cancel_with(CancelReason::message("stop the cleanup"));
                assert!(s.token().is_cancelled()); // its parent's does
                Ok::<_, Cancelled>(s.token().reason().map(|r| r.root().clone()))
            });
            shielded.await.map_err(taskscope::ScopeError::into_error)
        })
        .await
        .unwrap();
        assert_eq!(outcome, Some(CancelReason::message("stop the cleanup")));
    }
}

#[test]
fn setting_the_same_option_again_replaces_it_and_compatible_options_combine() {
    let parent = CancellationSource::new().token();
    let _ = ScopeBuilder::new()
        .parent(&parent)
        .parent(&parent)
        .timeout(Duration::from_secs(2))
        .grace_period(Duration::ZERO)
        .name("bounded");
    let _ = ScopeBuilder::new().shielded(Duration::MAX).name("cleanup");
}
