//! Linked sources (docs/semantics.md, part I §3): any number of parents, one-way, diamonds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use taskscope::{CancelReason, CancellationSource, CancellationToken};

#[test]
fn linked_source_is_cancelled_when_any_parent_is() {
    for which in 0..3 {
        let parents: Vec<_> = (0..3).map(|_| CancellationSource::new()).collect();
        let tokens: Vec<_> = parents.iter().map(CancellationSource::token).collect();
        let child = CancellationSource::linked(&tokens);
        assert!(!child.is_cancelled());
        parents[which].cancel_with(CancelReason::message(format!("parent {which}")));
        assert!(child.is_cancelled());
        assert_eq!(
            child.reason().unwrap().root(),
            &CancelReason::message(format!("parent {which}"))
        );
    }
}

#[test]
fn linked_link_is_one_way() {
    let a = CancellationSource::new();
    let b = CancellationSource::new();
    let child = CancellationSource::linked([&a.token(), &b.token()]);
    child.cancel();
    drop(child);
    assert!(!a.is_cancelled());
    assert!(!b.is_cancelled());
}

#[test]
fn linked_to_a_cancelled_parent_starts_cancelled() {
    let parent = CancellationSource::new();
    parent.cancel_with(CancelReason::Timeout);
    let other = CancellationSource::new();
    let child = CancellationSource::linked([&other.token(), &parent.token()]);
    assert!(child.is_cancelled());
    assert_eq!(
        child.reason(),
        Some(CancelReason::Ancestor(Arc::new(CancelReason::Timeout)))
    );
    assert!(child.reason().unwrap().is_timeout());
}

#[test]
fn linked_ignores_none_parents_and_may_have_none_at_all() {
    let lonely = CancellationSource::linked(std::iter::empty());
    assert!(!lonely.is_cancelled());
    let with_none = CancellationSource::linked([&CancellationToken::none()]);
    assert!(with_none.token().can_be_cancelled());
    with_none.cancel();
    assert!(with_none.is_cancelled());
}

#[test]
fn cancel_propagates_synchronously_to_every_descendant() {
    let root = CancellationSource::new();
    let mut level = vec![CancellationSource::linked([&root.token()])];
    let mut all = Vec::new();
    for _ in 0..4 {
        let next: Vec<_> = level
            .iter()
            .flat_map(|p| {
                [
                    CancellationSource::linked([&p.token()]),
                    CancellationSource::linked([&p.token()]),
                ]
            })
            .collect();
        all.append(&mut level);
        level = next;
    }
    all.append(&mut level);
    assert_eq!(all.len(), 1 + 2 + 4 + 8 + 16);
    root.cancel();
    assert!(all.iter().all(CancellationSource::is_cancelled));
}

#[test]
fn diamond_is_cancelled_once_with_callbacks_once() {
    //      top
    //     /   \
    //  left   right
    //     \   /
    //     bottom
    let top = CancellationSource::new();
    let left = CancellationSource::linked([&top.token()]);
    let right = CancellationSource::linked([&top.token()]);
    let bottom = CancellationSource::linked([&left.token(), &right.token()]);
    let runs = Arc::new(AtomicUsize::new(0));
    let _registration = bottom.token().on_cancel({
        let runs = runs.clone();
        move |_| {
            runs.fetch_add(1, Ordering::SeqCst);
        }
    });
    top.cancel_with(CancelReason::message("top"));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        bottom.reason().unwrap().root(),
        &CancelReason::message("top")
    );
    // A later cancel through the other side changes nothing.
    right.cancel_with(CancelReason::message("right"));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        bottom.reason().unwrap().root(),
        &CancelReason::message("top")
    );
}

#[test]
fn dropped_linked_source_unlinks_from_every_parent() {
    let a = CancellationSource::new();
    let b = CancellationSource::new();
    let child = CancellationSource::linked([&a.token(), &b.token()]);
    let token = child.token();
    drop(child);
    a.cancel();
    b.cancel();
    // Unlinked: the orphaned token never fires (as after .NET's Dispose).
    assert!(!token.is_cancelled());
}

#[test]
fn dropping_a_parent_source_does_not_cancel_children() {
    let parent = CancellationSource::new();
    let child = CancellationSource::linked([&parent.token()]);
    drop(parent);
    assert!(!child.is_cancelled());
    child.cancel();
    assert!(child.is_cancelled());
}
