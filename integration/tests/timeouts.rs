//! Timeouts and deadlines on tokio's clock (docs/semantics.md, part I §4). Every test pauses
//! time, so none depends on the machine's speed.

use std::time::Duration;

use taskscope::{CancelReason, CancellationSource};
use tokio::time::{advance, Instant};

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

#[tokio::test(start_paused = true)]
async fn with_timeout_cancels_with_reason_timeout_after_the_delay() {
    let source = CancellationSource::with_timeout(Duration::from_secs(30));
    let token = source.token();
    let start = Instant::now();
    advance(Duration::from_secs(29)).await;
    assert!(!token.is_cancelled());
    token.cancelled().await;
    assert_eq!(Instant::now() - start, Duration::from_secs(30));
    assert_eq!(token.reason(), Some(CancelReason::Timeout));
}

#[tokio::test(start_paused = true)]
async fn with_deadline_cancels_at_the_deadline() {
    let deadline = Instant::now() + Duration::from_millis(1500);
    let source = CancellationSource::with_deadline(deadline);
    source.token().cancelled().await;
    assert_eq!(Instant::now(), deadline);
    assert!(source.reason().unwrap().is_timeout());
}

#[test]
fn zero_timeout_is_cancelled_at_once_without_a_runtime() {
    let source = CancellationSource::with_timeout(Duration::ZERO);
    assert_eq!(source.reason(), Some(CancelReason::Timeout));
    let past = CancellationSource::with_deadline(Instant::now() - Duration::from_secs(1));
    assert!(past.is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn max_timeout_never_fires_and_does_not_overflow() {
    let source = CancellationSource::with_timeout(Duration::MAX);
    advance(Duration::from_secs(100 * 365 * 24 * 3600)).await;
    assert!(!source.is_cancelled());
    assert_eq!(alive_tasks(), 0, "an infinite timeout needs no timer task");
}

#[tokio::test(start_paused = true)]
async fn cancel_after_replaces_the_previous_timer() {
    let source = CancellationSource::with_timeout(Duration::from_secs(1));
    source.cancel_after(Duration::from_secs(10));
    advance(Duration::from_secs(5)).await;
    assert!(!source.is_cancelled());
    advance(Duration::from_secs(5)).await;
    tokio::task::yield_now().await;
    assert!(source.is_cancelled());

    // A delay too large to represent removes the timer altogether.
    let source = CancellationSource::with_timeout(Duration::from_secs(1));
    source.cancel_after(Duration::MAX);
    advance(Duration::from_secs(3600)).await;
    assert!(!source.is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn earlier_explicit_cancel_keeps_its_reason() {
    let source = CancellationSource::with_timeout(Duration::from_secs(1));
    source.cancel_with(CancelReason::message("user"));
    advance(Duration::from_secs(2)).await;
    assert_eq!(source.reason(), Some(CancelReason::message("user")));
}

#[tokio::test(start_paused = true)]
async fn dropped_source_leaves_no_timer_task_behind() {
    let source = CancellationSource::with_timeout(Duration::from_secs(60));
    assert_eq!(alive_tasks(), 1);
    drop(source);
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    assert_eq!(alive_tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn replaced_timer_task_is_gone_too() {
    let source = CancellationSource::new();
    for secs in 1..=10 {
        source.cancel_after(Duration::from_secs(secs * 100));
    }
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    assert_eq!(alive_tasks(), 1);
}

#[tokio::test(start_paused = true)]
async fn timeout_reason_reaches_linked_children() {
    let user = CancellationSource::new();
    let per_search = CancellationSource::linked([&user.token()]);
    per_search.cancel_after(Duration::from_secs(10));
    let search = CancellationSource::linked([&per_search.token()]);
    search.token().cancelled().await;
    assert!(search.reason().unwrap().is_timeout());
    assert!(!user.is_cancelled());
}

#[test]
#[should_panic(expected = "must be set from within a Tokio runtime")]
fn future_timeout_outside_a_runtime_panics_with_a_clear_message() {
    let _source = CancellationSource::with_timeout(Duration::from_secs(1));
}
