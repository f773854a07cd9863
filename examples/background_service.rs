//! The seed's `BackgroundService` (`DataSyncService`) as a long-lived scope.
//!
//! The loop runs until its token fires: a cancellation (the host shutting
//! down) ends it cleanly, while an ordinary error is logged and the loop
//! retries after a delay — cancellation is told apart from other errors, as
//! the seed's `catch (OperationCanceledException)` before
//! `catch (Exception)`. The service scope joins the loop before returning.
//! Run with `cargo run --example background_service`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use taskscope::{CancelReason, CancellationSource, Cancelled, TaskError};

#[derive(Debug)]
enum SyncError {
    Cancelled(Cancelled),
    Remote(String),
}

impl From<Cancelled> for SyncError {
    fn from(cancelled: Cancelled) -> Self {
        SyncError::Cancelled(cancelled)
    }
}

// Lets a scope tell how a cancelled sync stopped from a real failure.
impl TaskError for SyncError {
    fn is_cancellation(&self) -> bool {
        matches!(self, SyncError::Cancelled(_))
    }
}

static ATTEMPT: AtomicU32 = AtomicU32::new(0);

async fn sync_data() -> Result<(), SyncError> {
    let token = taskscope::token();
    token
        .run_until_cancelled(tokio::time::sleep(Duration::from_millis(30)))
        .await?;
    if ATTEMPT.fetch_add(1, Ordering::SeqCst) % 3 == 1 {
        return Err(SyncError::Remote("upstream returned 503".into()));
    }
    println!("  sync: done");
    Ok(())
}

async fn pause(ms: u64) -> Result<(), SyncError> {
    let token = taskscope::token();
    token
        .run_until_cancelled(tokio::time::sleep(Duration::from_millis(ms)))
        .await?;
    Ok(())
}

/// `ExecuteAsync(stoppingToken)`: the loop body is the seed's `try` block.
async fn execute() -> Result<(), SyncError> {
    let stopping = taskscope::token();
    while !stopping.is_cancelled() {
        let attempt = async {
            sync_data().await?;
            pause(50).await
        };
        match attempt.await {
            Ok(()) => {}
            // catch (OperationCanceledException): exit the loop cleanly.
            Err(SyncError::Cancelled(cancelled)) => {
                println!("  sync: graceful shutdown ({})", cancelled.reason());
                break;
            }
            // catch (Exception): log, wait, keep the service running.
            Err(SyncError::Remote(error)) => {
                println!("  sync: failed ({error}), retrying after a delay");
                if pause(20).await.is_err() {
                    break;
                }
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let host = CancellationSource::new();
    let service = tokio::spawn({
        let host = host.token();
        async move {
            taskscope::ScopeBuilder::new()
                .name("data sync service")
                .parent(&host)
                .run(async |s| {
                    s.spawn_named("sync loop", execute());
                    Ok::<_, SyncError>(())
                })
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    println!("host: shutting down");
    host.cancel_with(CancelReason::Shutdown);
    let result = service.await.unwrap();
    match result {
        Ok(()) => println!("host: service stopped cleanly"),
        Err(err) => println!("host: service failed: {:?}", err.first()),
    }
}
