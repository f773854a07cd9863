//! A service for the shutdown tests (`integration/tests/shutdown.rs`), with a short
//! grace period. `cargo run --example shutdown_probe -- stubborn` adds a
//! task that ignores cancellation, so a shutdown must abort it after the
//! 300 ms grace period; its scope warns about it 100 ms after the cancel
//! (on stderr: the program installs no `tracing` subscriber).

use std::time::Duration;

use taskscope::{scope, Cancelled};

#[taskscope::main(flavor = "multi_thread", worker_threads = 2, shutdown_grace = "300ms")]
async fn main() -> Result<(), Cancelled> {
    let stubborn = std::env::args().any(|arg| arg == "stubborn");
    scope!(
        name = "probe",
        warn_after = Duration::from_millis(100),
        |s| {
            s.task().name("polite").spawn(async {
                taskscope::token().cancelled().await;
                println!("polite: cleanup done");
                Ok::<_, Cancelled>(())
            });
            if stubborn {
                s.task().name("stubborn").spawn(async {
                    tokio::time::sleep(Duration::from_secs(3600)).await; // ignores its token
                    println!("stubborn: finished");
                    Ok(())
                });
            }
            println!("ready");
            Ok(())
        }
    )
    .await
    .map_err(taskscope::ScopeError::into_error)
}
