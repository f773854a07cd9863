//! Seed section "Timeouts".
//!
//! A source can cancel itself after a delay (`with_timeout`, the .NET walkthrough's
//! `new CancellationTokenSource(TimeSpan)`), or be given one later
//! (`cancel_after`, the .NET walkthrough's `CancelAfter`). The reason says it was a
//! timeout, so the caller can turn it into its own error without
//! `Task.WhenAny` juggling.
//! Run with `cargo run --example timeouts`.

use std::time::Duration;

use taskscope::{CancellationSource, CancellationToken, Cancelled};
use tokio::time::sleep;

#[derive(Debug)]
enum FetchError {
    TimedOut(Duration),
    Cancelled(Cancelled),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::TimedOut(after) => {
                write!(f, "external data fetch timed out after {after:?}")
            }
            FetchError::Cancelled(cancelled) => write!(f, "{cancelled}"),
        }
    }
}

fn show(result: Result<String, FetchError>) -> String {
    match result {
        Ok(data) => data,
        Err(e) => format!("error: {e}"),
    }
}

async fn fetch_external_data(
    latency: Duration,
    token: &CancellationToken,
) -> Result<String, Cancelled> {
    token.run_until_cancelled(sleep(latency)).await?;
    Ok(format!("data after {latency:?}"))
}

/// The .NET walkthrough's try/catch: an `OperationCanceledException` caused by our own
/// timeout becomes a `TimeoutException`.
async fn fetch_with_timeout(latency: Duration, timeout: Duration) -> Result<String, FetchError> {
    let source = CancellationSource::with_timeout(timeout);
    fetch_external_data(latency, &source.token())
        .await
        .map_err(|cancelled| {
            if cancelled.is_timeout() {
                FetchError::TimedOut(timeout)
            } else {
                FetchError::Cancelled(cancelled)
            }
        })
}

#[tokio::main]
async fn main() {
    let fast = fetch_with_timeout(Duration::from_millis(50), Duration::from_millis(300)).await;
    println!("fast call, 300 ms timeout: {}", show(fast));
    let slow = fetch_with_timeout(Duration::from_secs(5), Duration::from_millis(100)).await;
    println!("slow call, 100 ms timeout: {}", show(slow));

    // The scope form: the same timeout, and every task the fetch starts is
    // cancelled and joined with it.
    let scoped = taskscope::scope!(timeout = Duration::from_millis(100), |s| {
        fetch_external_data(Duration::from_secs(5), &s.token()).await
    })
    .await;
    println!(
        "scoped slow call, 100 ms timeout: timed out = {}",
        scoped.is_err_and(|e| e.is_timeout())
    );

    // Or set the timeout after creation: cts.CancelAfter(...)
    let source = CancellationSource::new();
    source.cancel_after(Duration::from_millis(100));
    let started = tokio::time::Instant::now();
    source.token().cancelled().await;
    println!(
        "cancel_after fired after ~{} ms: {}",
        started.elapsed().as_millis() / 10 * 10,
        source.reason().unwrap()
    );
}
