//! `on_cancel` and `Registration` (docs/semantics.md, part I §5), including the misuse cases:
//! cancelling or registering from inside a callback, dropping a registration
//! inside its own callback.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use taskscope::{CancelReason, CancellationSource, CancellationToken, Registration};

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn count_into(runs: &Arc<AtomicUsize>) -> impl FnOnce(&CancelReason) + Send + 'static {
    let runs = runs.clone();
    move |_| {
        runs.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn callback_runs_exactly_once_on_the_cancelling_thread_with_the_reason() {
    let source = CancellationSource::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let _registration = source.token().on_cancel({
        let seen = seen.clone();
        move |reason| {
            seen.lock()
                .unwrap()
                .push((reason.clone(), thread::current().id()));
        }
    });
    source.cancel_with(CancelReason::message("x"));
    source.cancel();
    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        vec![(CancelReason::message("x"), thread::current().id())]
    );
}

#[test]
fn callback_on_cancelled_token_runs_inline() {
    let source = CancellationSource::new();
    source.cancel_with(CancelReason::Shutdown);
    let ran = Arc::new(Mutex::new(None));
    let registration = source.token().on_cancel({
        let ran = ran.clone();
        move |reason| *ran.lock().unwrap() = Some(reason.clone())
    });
    assert_eq!(*ran.lock().unwrap(), Some(CancelReason::Shutdown));
    assert!(!registration.unregister());
}

#[test]
fn callback_on_none_token_never_runs() {
    let runs = counter();
    let registration = CancellationToken::none().on_cancel(count_into(&runs));
    assert!(registration.unregister());
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[test]
fn dropped_registration_never_runs() {
    let source = CancellationSource::new();
    let runs = counter();
    drop(source.token().on_cancel(count_into(&runs)));
    source.cancel();
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[test]
fn unregister_says_whether_it_won() {
    let source = CancellationSource::new();
    let runs = counter();
    let early = source.token().on_cancel(count_into(&runs));
    assert!(early.unregister());
    let late = source.token().on_cancel(count_into(&runs));
    source.cancel();
    assert!(!late.unregister());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn callbacks_run_last_registered_first_and_ancestors_first() {
    let parent = CancellationSource::new();
    let child = CancellationSource::linked([&parent.token()]);
    let order = Arc::new(Mutex::new(Vec::new()));
    let push = |name: &'static str| {
        let order = order.clone();
        move |_: &CancelReason| order.lock().unwrap().push(name)
    };
    let _c1 = child.token().on_cancel(push("child 1"));
    let _p1 = parent.token().on_cancel(push("parent 1"));
    let _p2 = parent.token().on_cancel(push("parent 2"));
    let _c2 = child.token().on_cancel(push("child 2"));
    let _p3 = parent.token().on_cancel(push("parent 3"));
    parent.cancel();
    assert_eq!(
        *order.lock().unwrap(),
        ["parent 3", "parent 2", "parent 1", "child 2", "child 1"]
    );
}

#[test]
fn every_descendant_is_flagged_before_any_callback_runs() {
    let parent = CancellationSource::new();
    let child = CancellationSource::linked([&parent.token()]);
    let seen_child_cancelled = Arc::new(AtomicBool::new(false));
    let _registration = parent.token().on_cancel({
        let child = child.token();
        let seen = seen_child_cancelled.clone();
        move |_| seen.store(child.is_cancelled(), Ordering::SeqCst)
    });
    parent.cancel();
    assert!(seen_child_cancelled.load(Ordering::SeqCst));
}

#[test]
fn panicking_callback_does_not_stop_the_others_and_is_resumed_from_cancel() {
    let source = CancellationSource::new();
    let runs = counter();
    let _a = source.token().on_cancel(count_into(&runs));
    let _b = source.token().on_cancel(|_| panic!("callback failed"));
    let _c = source.token().on_cancel(count_into(&runs));
    let panic = catch_unwind(AssertUnwindSafe(|| source.cancel())).unwrap_err();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"callback failed"));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert!(source.is_cancelled());
    assert!(source.token().is_cancellation_complete());
}

#[test]
fn inline_callback_panic_propagates_from_on_cancel() {
    let source = CancellationSource::new();
    source.cancel();
    let panic = catch_unwind(|| source.token().on_cancel(|_| panic!("inline"))).unwrap_err();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"inline"));
}

#[test]
fn registration_drop_waits_for_running_callback() {
    let source = Arc::new(CancellationSource::new());
    let started = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let registration = source.token().on_cancel({
        let (started, finished) = (started.clone(), finished.clone());
        move |_| {
            started.store(true, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(100));
            finished.store(true, Ordering::SeqCst);
        }
    });
    let canceller = {
        let source = source.clone();
        thread::spawn(move || source.cancel())
    };
    while !started.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    drop(registration);
    assert!(
        finished.load(Ordering::SeqCst),
        "drop returned while the callback ran"
    );
    canceller.join().unwrap();
}

#[test]
fn registration_dropped_inside_its_own_callback_does_not_deadlock() {
    let source = CancellationSource::new();
    let slot: Arc<Mutex<Option<Registration>>> = Arc::new(Mutex::new(None));
    let runs = counter();
    let registration = source.token().on_cancel({
        let slot = slot.clone();
        let runs = runs.clone();
        move |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            drop(slot.lock().unwrap().take());
        }
    });
    *slot.lock().unwrap() = Some(registration);
    source.cancel();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(slot.lock().unwrap().is_none());
}

#[test]
fn registration_dropped_from_a_nested_callback_does_not_deadlock() {
    // Outer callback cancels a second source whose callback drops the outer
    // registration: the outer one is still running up this thread's stack.
    let first = CancellationSource::new();
    let second = Arc::new(CancellationSource::new());
    let slot: Arc<Mutex<Option<Registration>>> = Arc::new(Mutex::new(None));
    let _inner = second.token().on_cancel({
        let slot = slot.clone();
        move |_| drop(slot.lock().unwrap().take())
    });
    let outer = first.token().on_cancel({
        let second = second.clone();
        move |_| {
            second.cancel();
        }
    });
    *slot.lock().unwrap() = Some(outer);
    first.cancel();
    assert!(second.is_cancelled());
    assert!(slot.lock().unwrap().is_none());
}

#[test]
fn cancelling_its_own_source_from_a_callback_is_a_no_op() {
    let source = Arc::new(CancellationSource::new());
    let returned = Arc::new(Mutex::new(None));
    let _registration = source.token().on_cancel({
        let source = source.clone();
        let returned = returned.clone();
        move |_| *returned.lock().unwrap() = Some(source.cancel_with(CancelReason::Timeout))
    });
    assert!(source.cancel());
    assert_eq!(*returned.lock().unwrap(), Some(false));
    assert_eq!(source.reason(), Some(CancelReason::requested()));
}

#[test]
fn registering_from_a_callback_runs_the_new_callback_inline() {
    let source = CancellationSource::new();
    let runs = counter();
    let kept = Arc::new(Mutex::new(Vec::new()));
    let _registration = source.token().on_cancel({
        let token = source.token();
        let runs = runs.clone();
        let kept = kept.clone();
        move |_| {
            let inner = token.on_cancel(count_into(&runs));
            kept.lock().unwrap().push(inner);
        }
    });
    source.cancel();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn cancelling_another_source_from_a_callback_runs_its_callbacks() {
    let first = CancellationSource::new();
    let second = Arc::new(CancellationSource::new());
    let runs = counter();
    let _inner = second.token().on_cancel(count_into(&runs));
    let _outer = first.token().on_cancel({
        let second = second.clone();
        move |_| {
            second.cancel();
        }
    });
    first.cancel();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_complete_waits_for_callbacks() {
    let source = CancellationSource::new();
    let token = source.token();
    let finished = Arc::new(AtomicBool::new(false));
    let _slow = token.on_cancel({
        let finished = finished.clone();
        move |_| {
            thread::sleep(Duration::from_millis(50));
            finished.store(true, Ordering::SeqCst);
        }
    });
    let started = Arc::new(AtomicBool::new(false));
    let canceller = {
        let started = started.clone();
        thread::spawn(move || {
            started.store(true, Ordering::SeqCst);
            source.cancel();
        })
    };
    token.cancelled().await; // requested: visible before the callback ends
    token.cancellation_complete().await;
    assert!(finished.load(Ordering::SeqCst));
    assert!(token.is_cancellation_complete());
    canceller.join().unwrap();
}
