//! A shielded scope: cleanup that must run even though its parent was
//! cancelled (Trio's `shield`, Kotlin's `NonCancellable`). The shield is
//! bounded by its own timeout, and the parent still joins it.
//! Run with `cargo run --example shielded_cleanup`.

use std::time::Duration;

use taskscope::{CancelReason, Cancelled, ScopeBuilder};

async fn upload_chunks() -> Result<(), Cancelled> {
    let token = taskscope::token();
    for chunk in 1.. {
        token
            .run_until_cancelled(tokio::time::sleep(Duration::from_millis(40)))
            .await?;
        println!("  uploaded chunk {chunk}");
    }
    Ok(())
}

/// Must tell the server to discard the partial upload, cancelled or not.
async fn abort_upload_on_server() -> Result<(), Cancelled> {
    let result = ScopeBuilder::new()
        .name("abort upload")
        .shielded(Duration::from_secs(2))
        .run(async |cleanup| {
            println!(
                "  cleanup: shielded, cancelled = {}",
                cleanup.token().is_cancelled()
            );
            tokio::time::sleep(Duration::from_millis(100)).await; // the DELETE request
            println!("  cleanup: server discarded the partial upload");
            Ok::<_, Cancelled>(())
        })
        .await;
    result.map_err(|e| {
        e.into_errors()
            .pop()
            .unwrap_or_else(|| Cancelled::new(CancelReason::Timeout))
    })
}

#[tokio::main]
async fn main() {
    let result = taskscope::scope(async |s| {
        s.task().name("upload").spawn(async {
            if let Err(cancelled) = upload_chunks().await {
                println!("  upload: cancelled ({}), cleaning up", cancelled.reason());
                abort_upload_on_server().await?;
                return Err(cancelled);
            }
            Ok(())
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        println!("user: cancel the upload");
        s.cancel_with(CancelReason::message("user pressed cancel"));
        Ok(())
    })
    .await;
    println!(
        "scope returned after the cleanup: {:?}",
        result.map_err(|e| e.to_string())
    );
}
