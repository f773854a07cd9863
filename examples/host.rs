//! A long-running service with background loops that shuts down gracefully
//! on Ctrl-C (or SIGTERM): `#[taskscope::main]` runs `main` in a root scope
//! whose token fires with reason `Shutdown`, the analogue of .NET's generic
//! host and `BackgroundService`'s `stoppingToken`. Each loop finishes its
//! current step, cleans up, and returns; the process exits 0. A second
//! Ctrl-C aborts at once (exit code 130); loops still running after the
//! grace period (30 s unless `shutdown_grace` says otherwise) are aborted
//! (exit code 2).
//!
//! Run with `cargo run --example host`, then press Ctrl-C.

use std::time::Duration;

use taskscope::{scope, Cancelled};

/// A background loop: one step every `period` until shutdown.
async fn background_loop(name: &'static str, period: Duration) -> Result<(), Cancelled> {
    let stopping = taskscope::token();
    let mut steps = 0u64;
    while stopping
        .run_until_cancelled(tokio::time::sleep(period))
        .await
        .is_ok()
    {
        steps += 1;
        println!("{name}: step {steps}");
    }
    println!(
        "{name}: stopping ({}), cleaning up after {steps} steps",
        stopping.reason().unwrap()
    );
    tokio::time::sleep(Duration::from_millis(50)).await; // flush, close
    println!("{name}: cleanup done");
    Ok(())
}

#[taskscope::main]
async fn main() -> Result<(), Cancelled> {
    scope!(name = "services", |s| {
        s.task()
            .name("metrics flusher")
            .spawn(background_loop("metrics", Duration::from_millis(300)));
        s.task()
            .name("queue worker")
            .spawn(background_loop("worker", Duration::from_millis(200)));
        println!("ready: press Ctrl-C to stop");
        Ok::<_, Cancelled>(())
    })
    .await
    .map_err(taskscope::ScopeError::into_error)?;
    println!("all services stopped");
    Ok(())
}
