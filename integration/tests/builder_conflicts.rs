//! Options that conflict are rejected, naming both, whatever their order:
//! the builder never resolves them silently.

use std::time::Duration;

use taskscope::{CancellationSource, ScopeBuilder};
use tokio::time::Instant;

fn expect_conflict(
    build: impl FnOnce() -> ScopeBuilder + std::panic::UnwindSafe,
    names: [&str; 2],
) {
    let panic = std::panic::catch_unwind(build).expect_err("the builder accepted a conflict");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    for name in names {
        assert!(message.contains(&format!("`{name}`")), "{message}");
    }
    assert!(message.contains("keep one"), "{message}");
}

#[test]
fn timeout_and_deadline_conflict_in_either_order() {
    let at = Instant::now() + Duration::from_secs(1);
    expect_conflict(
        move || {
            ScopeBuilder::new()
                .timeout(Duration::from_secs(1))
                .deadline(at)
        },
        ["deadline", "timeout"],
    );
    expect_conflict(
        move || {
            ScopeBuilder::new()
                .deadline(at)
                .timeout(Duration::from_secs(1))
        },
        ["timeout", "deadline"],
    );
}

#[test]
fn a_shield_conflicts_with_a_parent_and_with_another_bound() {
    let parent = CancellationSource::new().token();
    let p = parent.clone();
    expect_conflict(
        move || {
            ScopeBuilder::new()
                .shielded(Duration::from_secs(5))
                .parent(&p)
        },
        ["parent", "shielded"],
    );
    expect_conflict(
        move || {
            ScopeBuilder::new()
                .parent(&parent)
                .shielded(Duration::from_secs(5))
        },
        ["shielded", "parent"],
    );
    // A longer timeout must not quietly loosen the shield's bound.
    expect_conflict(
        || {
            ScopeBuilder::new()
                .shielded(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
        },
        ["timeout", "shielded"],
    );
    expect_conflict(
        || {
            ScopeBuilder::new()
                .timeout(Duration::from_secs(60))
                .shielded(Duration::from_secs(5))
        },
        ["shielded", "timeout"],
    );
}

#[test]
fn setting_the_same_option_again_replaces_it_and_compatible_options_combine() {
    let parent = CancellationSource::new().token();
    let _ = ScopeBuilder::new()
        .timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        .parent(&parent)
        .parent(&parent)
        .grace_period(Duration::ZERO);
    let _ = ScopeBuilder::new()
        .shielded(Duration::from_secs(1))
        .shielded(Duration::MAX)
        .name("cleanup");
}
