//! How much stack one level of nesting costs: a scope inside a scope inside
//! a scope…, against the same nesting done with a plain boxed async
//! recursion and by hand with tokio-util (a child token and a `TaskTracker`
//! per level). Each is nested `DEPTH` levels deep; at the bottom the address
//! of a local is compared with the one at the top.
//!
//! `cargo run --release --example nesting_stack` prints the table in
//! `docs/benchmarks.md`. (A debug build's frames are several times larger
//! for all three.)

use std::future::Future;
use std::pin::Pin;

use taskscope::{Cancelled, ScopeBuilder, ScopeError};
use tokio_util::sync::CancellationToken as UtilToken;
use tokio_util::task::TaskTracker;

const DEPTH: usize = 1_000;

type Level = Pin<Box<dyn Future<Output = usize> + Send>>;

/// The address of a local at the current depth of the stack.
#[inline(never)]
fn stack_here() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

fn plain(levels: usize) -> Level {
    Box::pin(async move {
        if levels == 0 {
            stack_here()
        } else {
            plain(levels - 1).await
        }
    })
}

fn by_hand(levels: usize, parent: UtilToken) -> Level {
    Box::pin(async move {
        let token = parent.child_token();
        let tracker = TaskTracker::new();
        let bottom = if levels == 0 {
            stack_here()
        } else {
            by_hand(levels - 1, token.clone()).await
        };
        tracker.close();
        tracker.wait().await;
        drop(token);
        bottom
    })
}

fn scopes(levels: usize) -> Level {
    Box::pin(async move {
        ScopeBuilder::new()
            .run(async |_s| {
                Ok::<_, Cancelled>(if levels == 0 {
                    stack_here()
                } else {
                    scopes(levels - 1).await
                })
            })
            .await
            .map_err(ScopeError::into_error)
            .unwrap()
    })
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let per_level = |level: Level| {
        let top = stack_here();
        let bottom = runtime.block_on(level);
        (top - bottom) as f64 / DEPTH as f64
    };
    let plain = per_level(plain(DEPTH));
    let by_hand = per_level(by_hand(DEPTH, UtilToken::new()));
    let scopes = per_level(scopes(DEPTH));
    println!("| nesting | stack per level | vs. plain boxed recursion |");
    println!("|---|---:|---:|");
    for (case, bytes) in [
        ("plain boxed async recursion", plain),
        ("tokio-util child token + TaskTracker", by_hand),
        ("taskscope scope", scopes),
    ] {
        println!("| {case} | {bytes:.0} B | {:.2}× |", bytes / plain);
    }
    let levels_on_2_mib = (2.0 * 1024.0 * 1024.0 / scopes) as usize;
    println!(
        "\nAt this rate a 2 MiB stack would hold about {levels_on_2_mib} levels; when a \
         thread's stack runs low a scope goes on on a fresh segment, so depth is not \
         limited by it."
    );
}
