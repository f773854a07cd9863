//! Loom models of a scope's join counting: the body, tasks and child scopes
//! finishing on different threads, a late spawn racing the last finish, and
//! a child scope releasing its parent. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom_scope`.
#![cfg(loom)]

use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;
use taskscope::JoinCounter;

#[test]
fn units_finishing_on_other_threads_wake_the_waiter_once_all_are_done() {
    loom::model(|| {
        let counter = JoinCounter::new(None).unwrap(); // the body's unit
        assert!(counter.try_add()); // task 1
        assert!(counter.try_add()); // task 2
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let counter = counter.clone();
                thread::spawn(move || JoinCounter::release(&counter))
            })
            .collect();
        JoinCounter::release(&counter); // the body returns
                                        // No lost wake-up: blocks forever (and loom says so) otherwise.
        block_on(counter.done().cancelled());
        assert!(counter.is_done());
        for task in tasks {
            task.join().unwrap();
        }
    });
}

#[test]
fn a_spawn_racing_the_last_release_never_joins_a_finished_scope() {
    loom::model(|| {
        let counter = JoinCounter::new(None).unwrap();
        assert!(counter.try_add()); // a running task that may spawn a sibling
        let spawner = {
            let counter = counter.clone();
            thread::spawn(move || {
                let added = counter.try_add();
                if added {
                    // The sibling runs and finishes.
                    JoinCounter::release(&counter);
                }
                JoinCounter::release(&counter); // the spawning task finishes
                added
            })
        };
        JoinCounter::release(&counter); // the body
        let added = spawner.join().unwrap();
        // The spawner held a unit while it spawned, so the add always wins.
        assert!(added);
        assert!(counter.is_done());
        assert!(!counter.try_add(), "a finished scope accepted a unit");
    });
}

#[test]
fn child_scope_holds_its_parent_until_its_own_units_finish() {
    loom::model(|| {
        let parent = JoinCounter::new(None).unwrap();
        let child = JoinCounter::new(Some(parent.clone())).unwrap();
        assert!(child.try_add()); // a task of the child scope
        let task = {
            let child = child.clone();
            thread::spawn(move || JoinCounter::release(&child))
        };
        JoinCounter::release(&child); // the child's body (or its dropped future)
        JoinCounter::release(&parent); // the parent's body
        block_on(parent.done().cancelled());
        // The parent finished only after the child's last unit.
        assert!(child.is_done());
        task.join().unwrap();
        drop(Arc::clone(&parent));
    });
}
