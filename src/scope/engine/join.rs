//! Counting what a scope must wait for, and waking it when that reaches zero.
//!
//! # Invariants
//!
//! 1. `count` is the number of units still running: the scope's body (one
//!    unit, from creation until the body returns or is dropped), each task,
//!    and each child scope (one unit until *its* count reaches zero, which
//!    may be long after the child's future was dropped).
//! 2. Once `count` has reached zero it never rises again: [`JoinCounter::try_add`]
//!    refuses, so nothing can join a scope that has finished.
//! 3. The unit that brings `count` to zero wakes the waiter, then (in
//!    [`release_chain`]) releases the parent's unit once: an ancestor
//!    cannot finish before every descendant unit has.
//! 4. No lost wake-up: a waiter stores its waker under `waiter`'s lock and
//!    then reads `count`; the last release decrements `count` and then
//!    takes the waker under the same lock. Whichever locks second sees the
//!    other's write.
//!
//! The loom models at the bottom of this file check all four
//! (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom_models`).

use std::task::{Context, Poll, Waker};

use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::Mutex;
use crate::scope::engine::one_lock::Locked;

/// Counts a scope's running units; see the module docs.
pub(crate) struct JoinCounter {
    count: AtomicUsize,
    waiter: Mutex<Option<Waker>>,
}

impl Default for JoinCounter {
    fn default() -> Self {
        JoinCounter::new()
    }
}

impl JoinCounter {
    /// A counter holding one unit: the scope's body.
    pub(crate) fn new() -> Self {
        JoinCounter {
            count: AtomicUsize::new(1),
            waiter: Mutex::new(None),
        }
    }

    /// Adds a unit unless the count already reached zero (invariant 2).
    pub(crate) fn try_add(&self) -> bool {
        let mut current = self.count.load(Ordering::Acquire);
        loop {
            if current == 0 {
                return false;
            }
            match self.count.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Removes a unit. Returns `true` if it was the last one; then the
    /// waiter has been woken (invariant 3).
    pub(crate) fn release(&self) -> bool {
        // AcqRel: whatever a finished unit did happens-before the waiter
        // that sees zero.
        let before = self.count.fetch_sub(1, Ordering::AcqRel);
        debug_assert_ne!(
            before, 0,
            "a join counter was released more than it was added"
        );
        if before != 1 {
            return false;
        }
        let waiter = self.lock().take();
        if let Some(waker) = waiter {
            waker.wake();
        }
        true
    }

    /// Ready once the count has reached zero (invariant 4).
    pub(crate) fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_done() {
            return Poll::Ready(());
        }
        let replaced = {
            let mut waiter = self.lock();
            match &*waiter {
                Some(current) if current.will_wake(cx.waker()) => None,
                _ => waiter.replace(cx.waker().clone()),
            }
        };
        drop(replaced);
        if self.is_done() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Whether the count has reached zero.
    pub(crate) fn is_done(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    fn lock(&self) -> Locked<crate::loom::sync::MutexGuard<'_, Option<Waker>>> {
        // Only a waker is stored under this lock: never poisoned by user code.
        Locked::new(
            self.waiter
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// Releases one unit of `node`'s counter and, each time a counter reaches
/// zero, one unit of its parent's, up the chain: a loop, not recursion.
/// `counter` and `parent` say where a node keeps its counter and parent.
pub(crate) fn release_chain<'a, N: 'a>(
    node: &'a N,
    counter: impl Fn(&'a N) -> &'a JoinCounter,
    parent: impl Fn(&'a N) -> Option<&'a N>,
) {
    let mut node = node;
    while counter(node).release() {
        match parent(node) {
            Some(next) => node = next,
            None => break,
        }
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! The body, tasks and child scopes finishing on different threads, a
    //! late spawn racing the last finish, and a child scope releasing its
    //! parent.

    use std::future::poll_fn;

    use loom::future::block_on;
    use loom::sync::Arc;
    use loom::thread;

    use super::{release_chain, JoinCounter};

    /// A scope as the chain sees it: its counter and the scope that joins it.
    struct Node {
        counter: JoinCounter,
        parent: Option<Arc<Node>>,
    }

    impl Node {
        fn new(parent: Option<Arc<Node>>) -> Arc<Node> {
            if let Some(parent) = &parent {
                assert!(parent.counter.try_add(), "the parent is running");
            }
            Arc::new(Node {
                counter: JoinCounter::new(),
                parent,
            })
        }

        fn release(&self) {
            release_chain(self, |n| &n.counter, |n| n.parent.as_deref());
        }
    }

    fn wait(counter: &JoinCounter) {
        block_on(poll_fn(|cx| counter.poll_done(cx)));
    }

    #[test]
    fn units_finishing_on_other_threads_wake_the_waiter_once_all_are_done() {
        loom::model(|| {
            let scope = Node::new(None); // the body's unit
            assert!(scope.counter.try_add()); // task 1
            assert!(scope.counter.try_add()); // task 2
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let scope = scope.clone();
                    thread::spawn(move || scope.release())
                })
                .collect();
            scope.release(); // the body returns
                             // No lost wake-up: blocks forever (and loom says so) otherwise.
            wait(&scope.counter);
            assert!(scope.counter.is_done());
            for task in tasks {
                task.join().unwrap();
            }
        });
    }

    #[test]
    fn a_spawn_racing_the_last_release_never_joins_a_finished_scope() {
        loom::model(|| {
            let scope = Node::new(None);
            assert!(scope.counter.try_add()); // a running task that may spawn a sibling
            let spawner = {
                let scope = scope.clone();
                thread::spawn(move || {
                    let added = scope.counter.try_add();
                    if added {
                        // The sibling runs and finishes.
                        scope.release();
                    }
                    scope.release(); // the spawning task finishes
                    added
                })
            };
            scope.release(); // the body
            let added = spawner.join().unwrap();
            // The spawner held a unit while it spawned, so the add always wins.
            assert!(added);
            assert!(scope.counter.is_done());
            assert!(!scope.counter.try_add(), "a finished scope accepted a unit");
        });
    }

    #[test]
    fn child_scope_holds_its_parent_until_its_own_units_finish() {
        loom::model(|| {
            let parent = Node::new(None);
            let child = Node::new(Some(parent.clone()));
            assert!(child.counter.try_add()); // a task of the child scope
            let task = {
                let child = child.clone();
                thread::spawn(move || child.release())
            };
            child.release(); // the child's body (or its dropped future)
            parent.release(); // the parent's body
            wait(&parent.counter);
            // The parent finished only after the child's last unit.
            assert!(child.counter.is_done());
            task.join().unwrap();
        });
    }
}
