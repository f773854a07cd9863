//! Seed section "Linking Tokens".
//!
//! The .NET walkthrough's `SearchAsync`: a per-search timeout linked to the user's
//! cancellation. One source does both (the seed needs two): linked to the
//! user's token, with a timer of its own. It fires when either does, and its
//! own timeout is reported as a timeout, the user's cancel as inherited. The
//! link is one-way, so neither cancelling nor dropping it touches the user's
//! token. (Unlike .NET, the source is not `Dispose`d by hand: dropping it
//! unlinks it.)
//! Run with `cargo run --example linking`.

use std::time::Duration;

use taskscope::{CancelReason, CancellationSource, CancellationToken, Cancelled};
use tokio::time::sleep;

async fn execute(
    query: &str,
    latency: Duration,
    token: &CancellationToken,
) -> Result<String, Cancelled> {
    token.run_until_cancelled(sleep(latency)).await?;
    Ok(format!("results for {query:?}"))
}

async fn search(
    query: &str,
    latency: Duration,
    user_cancellation: &CancellationToken,
) -> Result<String, Cancelled> {
    // Apply a per-search timeout, but also respect the caller's cancellation:
    // one source, linked to the caller's token, with a timer of its own.
    let per_search = CancellationSource::linked([user_cancellation]);
    per_search.cancel_after(Duration::from_millis(200));
    execute(query, latency, &per_search.token()).await
} // `per_search` dropped here: unlinked from the user's token, timer stopped

/// The same with a scope: `parent` links it to the user's token, `timeout`
/// bounds it, and the scope joins whatever the search spawns.
async fn search_in_scope(
    query: &str,
    latency: Duration,
    user_cancellation: &CancellationToken,
) -> Result<String, taskscope::ScopeError<Cancelled>> {
    taskscope::scope!(
        parent = user_cancellation.clone(),
        timeout = Duration::from_millis(200),
        |s| execute(query, latency, &s.token()).await
    )
    .await
}

#[tokio::main]
async fn main() {
    let user = CancellationSource::new();

    let fast = search("fast", Duration::from_millis(50), &user.token()).await;
    println!("fast search:  {fast:?}");

    let slow = search("slow", Duration::from_secs(5), &user.token()).await;
    println!("slow search:  {:?}", slow.map_err(|e| e.to_string()));
    println!(
        "user token after the timeout: cancelled = {}",
        user.is_cancelled()
    );

    let scoped = search_in_scope("slow, scoped", Duration::from_secs(5), &user.token()).await;
    println!("scoped search: {:?}", scoped.map_err(|e| e.to_string()));

    let token = user.token();
    let pending =
        tokio::spawn(async move { search("abandoned", Duration::from_secs(5), &token).await });
    sleep(Duration::from_millis(50)).await;
    user.cancel_with(CancelReason::message("user navigated away"));
    let abandoned = pending.await.unwrap().unwrap_err();
    println!("user-cancelled search: {abandoned}");
    println!(
        "  inherited from the user's token: {}",
        abandoned.reason().is_inherited()
    );
}
