//! The source/token split, reasons, `check`, and the futures (docs/semantics.md, part I §1,
//! §2.2, §2.6).

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use taskscope::{CancelReason, CancellationSource, CancellationToken, Cancelled};

#[test]
fn none_token_equals_default_and_can_never_be_cancelled() {
    let none = CancellationToken::none();
    assert_eq!(none, CancellationToken::default());
    assert!(!none.can_be_cancelled());
    assert!(!none.is_cancelled());
    assert_eq!(none.reason(), None);
    assert!(none.check().is_ok());
    // It is a null pointer: no allocation behind it.
    assert_eq!(
        std::mem::size_of::<CancellationToken>(),
        std::mem::size_of::<usize>()
    );
    assert_ne!(none, CancellationSource::new().token());
}

#[test]
fn none_token_cancelled_future_stays_pending() {
    let none = CancellationToken::none();
    let mut cx = Context::from_waker(Waker::noop());
    let mut fut = pin!(none.cancelled());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
}

#[test]
fn tokens_of_one_source_are_equal_and_observe_it() {
    let source = CancellationSource::new();
    let a = source.token();
    let b = a.clone();
    assert_eq!(a, b);
    assert!(a.can_be_cancelled());
    assert!(!a.is_cancelled());
    assert!(source.cancel());
    assert!(a.is_cancelled() && b.is_cancelled() && source.is_cancelled());
}

#[test]
fn cancel_is_idempotent_and_first_reason_wins() {
    let source = CancellationSource::new();
    assert!(source.cancel_with(CancelReason::message("first")));
    assert!(!source.cancel_with(CancelReason::Timeout));
    assert!(!source.cancel());
    assert_eq!(source.reason(), Some(CancelReason::message("first")));
    assert_eq!(
        source.token().reason(),
        Some(CancelReason::message("first"))
    );
}

#[test]
fn descendants_share_the_original_reason_and_know_it_is_inherited() {
    let root = CancellationSource::new();
    let child = CancellationSource::linked([&root.token()]);
    let grandchild = CancellationSource::linked([&child.token()]);
    root.cancel_with(CancelReason::Shutdown);

    assert_eq!(root.reason(), Some(CancelReason::Shutdown));
    for source in [&child, &grandchild] {
        let reason = source.reason().unwrap();
        // Wrapped once, whatever the depth.
        assert_eq!(
            reason,
            CancelReason::Ancestor(Arc::new(CancelReason::Shutdown))
        );
        assert!(reason.is_inherited());
        assert_eq!(reason.root(), &CancelReason::Shutdown);
    }
}

#[test]
fn check_returns_cancelled_with_the_reason() {
    let source = CancellationSource::new();
    let token = source.token();
    assert_eq!(token.check(), Ok(()));
    source.cancel_with(CancelReason::message("stop"));
    let err = token.check().unwrap_err();
    assert_eq!(err.reason(), &CancelReason::message("stop"));
    assert_eq!(
        err.to_string(),
        "operation cancelled: cancellation requested: stop"
    );
}

#[test]
fn cancelled_is_a_std_error_that_converts_into_io_error() {
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<Cancelled>();

    fn read_step(token: &CancellationToken) -> std::io::Result<usize> {
        token.check()?;
        Ok(1)
    }
    let source = CancellationSource::new();
    source.cancel();
    let err = read_step(&source.token()).unwrap_err();
    // Not `Interrupted`: std's io helpers retry that kind, and a cancelled
    // token stays cancelled.
    assert_eq!(err.kind(), std::io::ErrorKind::Other);
    assert_eq!(
        Cancelled::from_io(&err).unwrap().reason(),
        &CancelReason::requested()
    );

    let timed_out: std::io::Error = Cancelled::new(CancelReason::Timeout).into();
    assert_eq!(timed_out.kind(), std::io::ErrorKind::TimedOut);
    let other = std::io::Error::other("unrelated");
    assert!(Cancelled::from_io(&other).is_none());
}

#[test]
fn reasons_display_why() {
    let cases = [
        (CancelReason::requested(), "cancellation requested"),
        (CancelReason::message("bye"), "cancellation requested: bye"),
        (CancelReason::Timeout, "timed out"),
        (
            CancelReason::sibling_failed("db"),
            "a sibling task failed: db",
        ),
        (CancelReason::Shutdown, "shutting down"),
        (
            CancelReason::Ancestor(Arc::new(CancelReason::Timeout)),
            "an ancestor was cancelled: timed out",
        ),
    ];
    for (reason, text) in cases {
        assert_eq!(reason.to_string(), text);
    }
    assert!(CancelReason::Ancestor(Arc::new(CancelReason::Timeout)).is_timeout());
}

#[tokio::test]
async fn cancelled_future_resolves_when_cancelled() {
    let source = CancellationSource::new();
    let token = source.token();
    let waiter = tokio::spawn(async move {
        token.cancelled().await;
        token.reason()
    });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    source.cancel_with(CancelReason::Shutdown);
    assert_eq!(waiter.await.unwrap(), Some(CancelReason::Shutdown));
}

#[tokio::test]
async fn cancelled_is_level_triggered() {
    let source = CancellationSource::new();
    source.cancel();
    let token = source.token();
    for _ in 0..3 {
        token.cancelled().await;
        token.cancelled_owned().await;
    }
}

#[test]
fn cancelled_future_uses_the_latest_waker() {
    struct Flag(AtomicBool);
    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let first = Arc::new(Flag(AtomicBool::new(false)));
    let second = Arc::new(Flag(AtomicBool::new(false)));
    let source = CancellationSource::new();
    let token = source.token();
    let mut fut = pin!(token.cancelled());
    let first_waker = Waker::from(first.clone());
    let second_waker = Waker::from(second.clone());
    assert!(fut
        .as_mut()
        .poll(&mut Context::from_waker(&first_waker))
        .is_pending());
    assert!(fut
        .as_mut()
        .poll(&mut Context::from_waker(&second_waker))
        .is_pending());
    source.cancel();
    assert!(!first.0.load(Ordering::SeqCst));
    assert!(second.0.load(Ordering::SeqCst));
    assert_eq!(
        fut.as_mut().poll(&mut Context::from_waker(&second_waker)),
        Poll::Ready(())
    );
}

#[tokio::test]
async fn dropped_cancelled_future_is_cancel_safe() {
    let source = CancellationSource::new();
    let token = source.token();
    // Polled once, then dropped: its place in the registry is released and a
    // later cancel is unaffected.
    tokio::select! {
        biased;
        _ = token.cancelled() => unreachable!(),
        _ = async {} => {}
    }
    source.cancel();
    token.cancelled().await;
}

#[tokio::test]
async fn run_until_cancelled_returns_output_or_cancelled() {
    let source = CancellationSource::new();
    let token = source.token();
    assert_eq!(token.run_until_cancelled(async { 5 }).await, Ok(5));
    assert_eq!(token.run_until_cancelled_owned(async { 7 }).await, Ok(7));

    let pending = tokio::spawn(token.run_until_cancelled_owned(std::future::pending::<()>()));
    tokio::task::yield_now().await;
    source.cancel_with(CancelReason::message("enough"));
    let err = pending.await.unwrap().unwrap_err();
    assert_eq!(err.reason(), &CancelReason::message("enough"));
}

#[tokio::test]
async fn run_until_cancelled_does_not_poll_when_already_cancelled() {
    let source = CancellationSource::new();
    source.cancel();
    let polled = AtomicBool::new(false);
    let result = source
        .token()
        .run_until_cancelled(async {
            polled.store(true, Ordering::SeqCst);
        })
        .await;
    assert!(result.is_err());
    assert!(!polled.load(Ordering::SeqCst));
}

#[tokio::test]
async fn run_until_cancelled_drops_the_inner_future_promptly() {
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let source = CancellationSource::new();
    let token = source.token();
    let guard = SetOnDrop(dropped.clone());
    let mut fut = pin!(token.run_until_cancelled(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    }));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    source.cancel();
    assert!(matches!(fut.as_mut().poll(&mut cx), Poll::Ready(Err(_))));
    // Dropped when cancellation was seen, not when the adapter goes away.
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn happens_before_from_cancel_to_observer() {
    use std::sync::atomic::AtomicUsize;
    for _ in 0..200 {
        let data = Arc::new(AtomicUsize::new(0));
        let source = CancellationSource::new();
        let token = source.token();
        let observer = {
            let data = data.clone();
            std::thread::spawn(move || {
                while !token.is_cancelled() {
                    std::hint::spin_loop();
                }
                data.load(Ordering::Relaxed)
            })
        };
        data.store(42, Ordering::Relaxed);
        source.cancel();
        assert_eq!(observer.join().unwrap(), 42);
    }
}

#[test]
fn a_drop_guard_cancels_its_source_when_dropped_unless_disarmed() {
    let source = CancellationSource::new();
    let token = source.token();
    let guard = source.drop_guard();
    assert_eq!(guard.token(), token);
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _guard = guard;
        panic!("an early way out");
    }));
    assert!(unwound.is_err());
    assert!(token.is_cancelled(), "unwinding dropped the guard");

    let source = CancellationSource::new().drop_guard().disarm();
    assert!(!source.is_cancelled());
}

#[test]
// A token hashes by its source's identity, which never changes: clippy's
// worry about interior mutability in a key does not apply.
#[allow(clippy::mutable_key_type)]
fn tokens_hash_as_they_compare() {
    use std::collections::HashSet;
    let (a, b) = (CancellationSource::new(), CancellationSource::new());
    let set: HashSet<CancellationToken> = [
        a.token(),
        a.token(),
        b.token(),
        CancellationToken::none(),
        CancellationToken::default(),
    ]
    .into_iter()
    .collect();
    assert_eq!(set.len(), 3);
    assert!(set.contains(&a.token()) && set.contains(&CancellationToken::none()));
}
