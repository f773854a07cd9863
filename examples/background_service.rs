//! .NET's `BackgroundService` (a `DataSyncService`) as a periodic
//! [`Service`] under `#[taskscope::main]`.
//!
//! Every 2 s it syncs (each sync takes 0.8 s, and every third one fails
//! with an upstream error); after a failure it retries after 1 s instead
//! (the seed says 5 minutes and 30 s; the guide shows those). Press Ctrl-C
//! and the sync in flight is cancelled, the loop ends without any error
//! handler seeing the cancellation, and the process exits 0 — the .NET walkthrough's
//! `catch (OperationCanceledException)` before `catch (Exception)`, with no
//! catch to write. Run with `cargo run --example background_service`.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use taskscope::service::{Service, ServiceError};

static SYNCS: AtomicU32 = AtomicU32::new(0);

/// `SyncDataAsync(stoppingToken)`: observes the ambient token.
async fn sync_data() -> io::Result<()> {
    let sync = SYNCS.fetch_add(1, Ordering::SeqCst) + 1;
    println!("sync {sync}: started");
    let token = taskscope::token();
    let work = tokio::time::sleep(Duration::from_millis(800));
    if let Err(cancelled) = token.run_until_cancelled(work).await {
        println!("sync {sync}: cancelled ({})", cancelled.reason());
        return Err(cancelled.into());
    }
    if sync % 3 == 2 {
        println!("sync {sync}: upstream returned 503; retrying in 1 s");
        return Err(io::Error::other("upstream returned 503"));
    }
    println!("sync {sync}: done; next in 2 s");
    Ok(())
}

#[taskscope::main(shutdown_grace = "5s")]
async fn main() -> Result<(), ServiceError> {
    println!("data sync service running; press Ctrl-C to stop it");
    Service::new("data sync")
        .every(Duration::from_secs(2))
        .retry_after(Duration::from_secs(1))
        .run(|_| sync_data())
        .await?;
    println!("data sync service: stopped cleanly");
    Ok(())
}
