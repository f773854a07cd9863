//! Loom models of the token's races. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom_token`.
//!
//! Each model is named after the race it explores; loom runs every
//! interleaving of the threads (up to its bounds) and fails on a broken
//! assertion, a deadlock or a lost wake-up (a blocked `block_on` that nobody
//! wakes).
#![cfg(loom)]

use loom::future::block_on;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use taskscope::{CancelReason, CancellationSource};

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

#[test]
fn cancel_races_register() {
    loom::model(|| {
        let source = Arc::new(CancellationSource::new());
        let token = source.token();
        let runs = counter();

        let canceller = {
            let source = source.clone();
            thread::spawn(move || {
                source.cancel();
            })
        };
        let registration = token.on_cancel({
            let runs = runs.clone();
            move |_| {
                runs.fetch_add(1, Ordering::SeqCst);
            }
        });
        canceller.join().unwrap();
        // Registered before the cancel: run by the canceller before its
        // `cancel` returned. After: run inline by `on_cancel`. Either way, once.
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        drop(registration);
    });
}

#[test]
fn cancel_races_registration_drop() {
    loom::model(|| {
        let source = Arc::new(CancellationSource::new());
        let started = counter();
        let finished = counter();
        let registration = source.token().on_cancel({
            let (started, finished) = (started.clone(), finished.clone());
            move |_| {
                started.fetch_add(1, Ordering::SeqCst);
                thread::yield_now();
                finished.fetch_add(1, Ordering::SeqCst);
            }
        });

        let canceller = {
            let source = source.clone();
            thread::spawn(move || {
                source.cancel();
            })
        };
        drop(registration);
        // After the drop the callback has either never started, or finished.
        let (s, f) = (
            started.load(Ordering::SeqCst),
            finished.load(Ordering::SeqCst),
        );
        assert!(s == f, "drop returned while the callback was running");
        canceller.join().unwrap();
        assert!(started.load(Ordering::SeqCst) <= 1);
        assert_eq!(
            started.load(Ordering::SeqCst),
            finished.load(Ordering::SeqCst)
        );
    });
}

#[test]
fn cancel_races_unregister() {
    loom::model(|| {
        let source = Arc::new(CancellationSource::new());
        let runs = counter();
        let registration = source.token().on_cancel({
            let runs = runs.clone();
            move |_| {
                runs.fetch_add(1, Ordering::SeqCst);
            }
        });
        let canceller = {
            let source = source.clone();
            thread::spawn(move || {
                source.cancel();
            })
        };
        let won = registration.unregister();
        canceller.join().unwrap();
        // Exactly one of "unregister won" and "the callback ran".
        assert_eq!(runs.load(Ordering::SeqCst), usize::from(!won));
    });
}

#[test]
fn cancel_races_cancelled_poll() {
    loom::model(|| {
        let source = Arc::new(CancellationSource::new());
        let token = source.token();
        let canceller = {
            let source = source.clone();
            thread::spawn(move || {
                source.cancel();
            })
        };
        // Deadlocks (and loom reports it) if the wake-up is lost.
        block_on(token.cancelled());
        assert!(token.is_cancelled());
        canceller.join().unwrap();
    });
}

#[test]
fn cancel_races_linked_child_creation() {
    loom::model(|| {
        let parent = Arc::new(CancellationSource::new());
        let canceller = {
            let parent = parent.clone();
            thread::spawn(move || {
                parent.cancel_with(CancelReason::Shutdown);
            })
        };
        let child = CancellationSource::linked([&parent.token()]);
        let runs = counter();
        let _registration = child.token().on_cancel({
            let runs = runs.clone();
            move |_| {
                runs.fetch_add(1, Ordering::SeqCst);
            }
        });
        canceller.join().unwrap();
        assert!(child.is_cancelled());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let reason = child.reason().unwrap();
        assert!(reason.is_inherited());
        assert_eq!(reason.root(), &CancelReason::Shutdown);
    });
}

#[test]
fn two_parents_cancel_one_child() {
    loom::model(|| {
        let a = Arc::new(CancellationSource::new());
        let b = Arc::new(CancellationSource::new());
        let child = Arc::new(CancellationSource::linked([&a.token(), &b.token()]));
        let runs = counter();
        let _registration = child.token().on_cancel({
            let runs = runs.clone();
            move |_| {
                runs.fetch_add(1, Ordering::SeqCst);
            }
        });

        let spawn_cancel = |source: Arc<CancellationSource>, reason: CancelReason| {
            let child = child.clone();
            thread::spawn(move || {
                source.cancel_with(reason);
                // Synchronous propagation holds even when the other parent
                // got to the child first.
                assert!(child.is_cancelled());
            })
        };
        let ta = spawn_cancel(a.clone(), CancelReason::message("a"));
        let tb = spawn_cancel(b.clone(), CancelReason::message("b"));
        ta.join().unwrap();
        tb.join().unwrap();

        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let root = child.reason().unwrap().root().clone();
        assert!(root == CancelReason::message("a") || root == CancelReason::message("b"));
    });
}

#[test]
fn grandchild_is_cancelled_when_either_cancel_returns() {
    loom::model(|| {
        let a = Arc::new(CancellationSource::new());
        let b = Arc::new(CancellationSource::new());
        let child = CancellationSource::linked([&a.token(), &b.token()]);
        let grandchild = Arc::new(CancellationSource::linked([&child.token()]));
        let threads: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|source| {
                let grandchild = grandchild.clone();
                thread::spawn(move || {
                    source.cancel();
                    assert!(grandchild.is_cancelled());
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(child);
    });
}

#[test]
fn child_drop_races_parent_cancel() {
    loom::model(|| {
        let parent = Arc::new(CancellationSource::new());
        let child = CancellationSource::linked([&parent.token()]);
        let child_token = child.token();
        let canceller = {
            let parent = parent.clone();
            thread::spawn(move || {
                parent.cancel();
            })
        };
        drop(child);
        canceller.join().unwrap();
        // Either the cancel reached the child before it unlinked, or the
        // child was gone from the parent first; never a crash or a leak.
        if let Some(reason) = child_token.reason() {
            assert!(reason.is_inherited());
        }
        // A new child of the cancelled parent starts cancelled.
        assert!(CancellationSource::linked([&parent.token()]).is_cancelled());
    });
}
