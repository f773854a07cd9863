//! A token knows its effective deadline: the earliest of its own source's
//! and every ancestor's (docs/semantics.md, part I §4). A child can tighten
//! it, never extend it; a deadline set on a parent later reaches children
//! already linked.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use taskscope::{CancellationSource, CancellationToken, Cancelled, ScopeBuilder, ScopeError};
use tokio::time::{sleep, Instant};

#[tokio::test(start_paused = true)]
async fn a_token_has_no_deadline_until_its_source_gets_one() {
    let source = CancellationSource::new();
    assert_eq!(source.token().deadline(), None);
    assert_eq!(source.token().remaining(), None);
    assert_eq!(CancellationToken::none().deadline(), None);

    let start = Instant::now();
    source.cancel_after(Duration::from_secs(10));
    assert_eq!(
        source.token().deadline(),
        Some(start + Duration::from_secs(10))
    );
    sleep(Duration::from_secs(4)).await;
    assert_eq!(source.token().remaining(), Some(Duration::from_secs(6)));
    sleep(Duration::from_secs(7)).await;
    assert!(source.is_cancelled());
    assert_eq!(source.token().remaining(), Some(Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn a_child_inherits_its_parents_deadline_and_can_only_tighten_it() {
    let parent = CancellationSource::with_timeout(Duration::from_secs(30));
    let child = CancellationSource::linked([&parent.token()]);
    assert_eq!(child.deadline(), parent.deadline());

    child.cancel_after(Duration::from_secs(60));
    assert_eq!(
        child.remaining(),
        Some(Duration::from_secs(30)),
        "not extended"
    );
    child.cancel_after(Duration::from_secs(5));
    assert_eq!(child.remaining(), Some(Duration::from_secs(5)), "tightened");
    child.cancel_after(Duration::from_secs(20));
    assert_eq!(child.remaining(), Some(Duration::from_secs(20)), "re-armed");
    assert_eq!(parent.remaining(), Some(Duration::from_secs(30)), "one-way");
}

#[tokio::test(start_paused = true)]
async fn the_earliest_of_many_parents_wins() {
    let slow = CancellationSource::with_timeout(Duration::from_secs(50));
    let fast = CancellationSource::with_timeout(Duration::from_secs(2));
    let none = CancellationSource::new();
    let child = CancellationSource::linked([&slow.token(), &none.token(), &fast.token()]);
    assert_eq!(child.remaining(), Some(Duration::from_secs(2)));
}

#[tokio::test(start_paused = true)]
async fn a_deadline_set_on_a_parent_later_reaches_linked_descendants() {
    let root = CancellationSource::new();
    let child = CancellationSource::linked([&root.token()]);
    let grandchild = CancellationSource::linked([&child.token()]);
    let tight = CancellationSource::linked([&child.token()]);
    tight.cancel_after(Duration::from_secs(1));

    root.cancel_after(Duration::from_secs(8));
    assert_eq!(child.remaining(), Some(Duration::from_secs(8)));
    assert_eq!(grandchild.remaining(), Some(Duration::from_secs(8)));
    assert_eq!(
        tight.remaining(),
        Some(Duration::from_secs(1)),
        "not loosened"
    );
}

#[tokio::test(start_paused = true)]
async fn zero_is_now_and_max_is_no_deadline() {
    let now = CancellationSource::new();
    now.cancel_after(Duration::ZERO);
    assert!(now.is_cancelled());
    assert_eq!(now.remaining(), Some(Duration::ZERO));

    let never = CancellationSource::with_timeout(Duration::MAX);
    assert_eq!(never.deadline(), None);
    let child = CancellationSource::linked([&never.token()]);
    assert_eq!(child.deadline(), None);
}

#[tokio::test(start_paused = true)]
async fn scopes_and_their_tasks_see_the_effective_deadline() {
    let result = ScopeBuilder::new()
        .timeout(Duration::from_secs(10))
        .run(async |outer| {
            assert_eq!(outer.remaining(), Some(Duration::from_secs(10)));
            let task = outer.spawn(async {
                // A task's own token inherits its scope's deadline.
                Ok::<_, Cancelled>(taskscope::token().remaining())
            });
            assert_eq!(task.await?, Some(Duration::from_secs(10)));
            let inner = ScopeBuilder::new()
                .timeout(Duration::from_secs(60))
                .run(async |inner| Ok::<_, Cancelled>(inner.remaining()))
                .await
                .map_err(ScopeError::into_error)?;
            assert_eq!(
                inner,
                Some(Duration::from_secs(10)),
                "a nested scope cannot extend"
            );
            let tighter = ScopeBuilder::new()
                .timeout(Duration::from_secs(1))
                .run(async |inner| Ok::<_, Cancelled>(inner.remaining()))
                .await
                .map_err(ScopeError::into_error)?;
            assert_eq!(tighter, Some(Duration::from_secs(1)));
            Ok::<_, Cancelled>(())
        })
        .await;
    result.unwrap();
}

#[test]
fn tightening_a_million_deep_chain_does_not_overflow_a_small_stack() {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _entered = runtime.enter();
            let mut chain = vec![CancellationSource::new()];
            for _ in 1..1_000_000 {
                let next = CancellationSource::linked([&chain.last().unwrap().token()]);
                chain.push(next);
            }
            chain[0].cancel_after(Duration::from_secs(3600));
            assert_eq!(chain.last().unwrap().deadline(), chain[0].deadline());
            drop(chain);
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Children linked on several threads while another thread tightens their
/// parent: every child ends at or before the parent's deadline.
#[test]
fn children_linked_while_the_parent_tightens_never_miss_it() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for round in 0..200 {
        let parent = Arc::new(CancellationSource::new());
        let barrier = Arc::new(Barrier::new(4));
        let linkers: Vec<_> = (0..3)
            .map(|_| {
                let (parent, barrier) = (parent.token(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..20)
                        .map(|_| CancellationSource::linked([&parent]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let tightener = {
            let (parent, barrier) = (parent.clone(), barrier.clone());
            let handle = runtime.handle().clone();
            std::thread::spawn(move || {
                let _entered = handle.enter();
                barrier.wait();
                parent.cancel_after(Duration::from_secs(1000 + round));
            })
        };
        tightener.join().unwrap();
        let deadline = parent.deadline().unwrap();
        for linker in linkers {
            for child in linker.join().unwrap() {
                assert_eq!(child.deadline(), Some(deadline), "round {round}");
            }
        }
    }
}
