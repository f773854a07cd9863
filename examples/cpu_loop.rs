//! Seed section "Checking for Cancellation".
//!
//! CPU-bound work in a loop does not await, so it checks the token itself:
//! `check()?` (ThrowIfCancellationRequested) at the top of each iteration by
//! default, or `is_cancelled()` (IsCancellationRequested) when it needs a
//! graceful cleanup path before stopping. The loops run on blocking threads
//! so they never stall the async runtime.
//! Run with `cargo run --example cpu_loop`.

use std::time::Duration;

use taskscope::{CancellationToken, Cancelled};

/// A stand-in for expensive work on one item.
fn crunch(item: u64) -> u64 {
    (0..200_000u64).fold(item, |acc, x| acc.wrapping_mul(31).wrapping_add(x))
}

/// `check()?` at the top of the loop: stop by returning `Cancelled`.
fn process_items(
    items: impl Iterator<Item = u64>,
    token: &CancellationToken,
) -> Result<u64, Cancelled> {
    let mut checksum = 0u64;
    for item in items {
        token.check()?;
        checksum ^= crunch(item);
    }
    Ok(checksum)
}

/// `is_cancelled()` when there is something to do before stopping.
fn drain_queue(queue: &mut Vec<u64>, token: &CancellationToken) -> Vec<u64> {
    let mut partial = Vec::new();
    while let Some(item) = queue.pop() {
        if token.is_cancelled() {
            println!(
                "  drain: cancelled with {} items left, flushing {} partial results",
                queue.len() + 1,
                partial.len()
            );
            return partial; // FlushPartialResultsAsync
        }
        partial.push(crunch(item));
    }
    partial
}

#[tokio::main]
async fn main() {
    // Both loops are blocking tasks of one scope (`Scope::spawn_blocking`):
    // each gets its own token, which fires when the scope's 150 ms deadline
    // does, and the scope joins them before it returns.
    let result = taskscope::ScopeBuilder::new()
        .timeout(Duration::from_millis(150))
        .run_or_move_on(async |s| {
            let checked = s.spawn_blocking(|token| process_items(0.., &token));
            // A closure that never fails still names its error type.
            let drained = s.spawn_blocking(|token| {
                let mut queue: Vec<u64> = (0..1_000_000).collect();
                Ok::<_, Cancelled>(drain_queue(&mut queue, &token))
            });
            match checked.await {
                Ok(sum) => println!("  process_items finished: {sum}"),
                Err(cancelled) => println!("  process_items stopped: {cancelled}"),
            }
            let partial = drained.await?;
            println!("  drain kept {} results", partial.len());
            Ok::<_, Cancelled>(())
        })
        .await;
    // The body handled both stops itself, so the scope gives its value
    // (`Some`); had a loop's `Cancelled` been propagated with `?`, the
    // deadline's `run_or_move_on` would have given `None`.
    println!("  the scope: {result:?}");
}
