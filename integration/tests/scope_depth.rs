//! Depth is free (docs/semantics.md, part II §10): 10,000 nested scopes run, cancel,
//! snapshot, print, clone and drop on a 2 MiB stack, and the printed tree is
//! linear in its size.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use taskscope::tree::ScopeSnapshot;
use taskscope::{Cancelled, ScopeBuilder, ScopeError, ScopeHandle};

const DEPTH: usize = 10_000;

type Level = Pin<Box<dyn Future<Output = Result<usize, Cancelled>> + Send>>;

/// Runs `f` on a fresh thread with a 2 MiB stack and a current-thread
/// runtime on it.
fn on_small_stack<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap()
                .block_on(f())
        })
        .unwrap()
        .join()
        .unwrap();
}

/// How deep `root` goes, and how many nodes it has (a loop, not recursion).
fn depth_and_size(root: &ScopeSnapshot) -> (usize, usize) {
    let mut stack = vec![(root, 1)];
    let (mut deepest, mut nodes) = (0, 0);
    while let Some((node, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        nodes += 1;
        stack.extend(node.scopes.iter().map(|child| (child, depth + 1)));
    }
    (deepest, nodes)
}

/// `levels` nested scopes; the innermost runs `bottom` with the root's
/// handle.
fn nest<B, BFut>(levels: usize, root: ScopeHandle<Cancelled>, bottom: B) -> Level
where
    B: FnOnce(ScopeHandle<Cancelled>) -> BFut + Send + 'static,
    BFut: Future<Output = Result<usize, Cancelled>> + Send + 'static,
{
    Box::pin(async move {
        ScopeBuilder::new()
            .run(async move |_s| {
                if levels == 1 {
                    bottom(root).await
                } else {
                    Ok(nest(levels - 1, root, bottom).await? + 1)
                }
            })
            .await
            .map_err(ScopeError::into_error)
    })
}

#[test]
fn ten_thousand_nested_scopes_run_snapshot_print_and_finish_on_a_small_stack() {
    on_small_stack(|| async {
        let depth = ScopeBuilder::new()
            .name("deep root")
            .run(async |root| {
                nest(DEPTH, root.handle(), |root| async move {
                    // A scope shows in the tree once it has waited.
                    tokio::task::yield_now().await;
                    let snapshot = root.snapshot().unwrap();
                    assert_eq!(depth_and_size(&snapshot), (DEPTH + 1, DEPTH + 1));
                    let text = snapshot.to_string();
                    assert_eq!(text.lines().count(), DEPTH + 1);
                    // Linear: no line grows with the depth.
                    assert!(text.lines().all(|line| line.len() < 200), "a line grew");
                    let copy = snapshot.clone();
                    assert_eq!(depth_and_size(&copy), (DEPTH + 1, DEPTH + 1));
                    drop((snapshot, copy));
                    let whole = taskscope::tree();
                    let ours = whole
                        .scopes
                        .iter()
                        .find(|s| s.name.as_deref() == Some("deep root"))
                        .unwrap();
                    assert_eq!(depth_and_size(ours).0, DEPTH + 1);
                    Ok(1)
                })
                .await
            })
            .await
            .unwrap();
        assert_eq!(depth, DEPTH);
    });
}

#[test]
fn ten_thousand_nested_scopes_are_cancelled_from_the_root_on_a_small_stack() {
    on_small_stack(|| async {
        let result = ScopeBuilder::new()
            .run(async |root| {
                let cancel = root.handle();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    cancel.cancel();
                });
                nest(DEPTH, root.handle(), |_root| async move {
                    let token = taskscope::token();
                    let deepest = tokio::spawn(async move {
                        token.cancelled().await;
                        token.reason().unwrap()
                    });
                    let reason = deepest.await.unwrap();
                    assert!(reason.is_inherited());
                    Err(Cancelled::new(reason))
                })
                .await
            })
            .await;
        assert!(result.unwrap_err().first().unwrap().reason().is_inherited());
    });
}

#[test]
fn ten_thousand_nested_scopes_dropped_mid_run_on_a_small_stack() {
    on_small_stack(|| async {
        let deep = ScopeBuilder::new().name("dropped root").run(async |root| {
            nest(DEPTH, root.handle(), |_root| async move {
                std::future::pending::<()>().await;
                Ok(0)
            })
            .await
        });
        // Dropped while all 10,000 scopes are open.
        let timed_out = tokio::time::timeout(Duration::from_secs(1), deep).await;
        assert!(timed_out.is_err());
        // Gone from the tree, with everything inside it (other tests of this
        // file may have deep trees of their own at the same time).
        assert!(taskscope::tree()
            .scopes
            .iter()
            .all(|s| s.name.as_deref() != Some("dropped root")));
    });
}
