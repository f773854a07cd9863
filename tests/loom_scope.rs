//! Loom models of a scope's join counting: the body, tasks and child scopes
//! finishing on different threads, a late spawn racing the last finish, and
//! a child scope releasing its parent. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom_scope`.
#![cfg(loom)]

use std::future::poll_fn;

use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;
use taskscope::{release_chain, JoinCounter};

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
