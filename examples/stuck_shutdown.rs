//! "What is shutdown waiting on?" One task ignores cancellation; when you
//! press Ctrl-C the others stop, and halfway through the grace period the
//! live task tree is printed to stderr, pointing at the one holding the
//! shutdown (`<- holding the scope`). Press Ctrl-C again to abort at once,
//! or wait for the grace period to end (exit code 2). Send SIGQUIT
//! (Ctrl-\) at any time to print the tree and keep running.
//!
//! Run with `cargo run --example stuck_shutdown`, then press Ctrl-C.
//! To see it without a terminal: `cargo run --example stuck_shutdown -- --self-interrupt`.

use std::time::Duration;

use taskscope::{scope, Cancelled};

async fn well_behaved(name: &'static str) -> Result<(), Cancelled> {
    let token = taskscope::token();
    token.cancelled().await;
    println!("{name}: stopped ({})", token.reason().unwrap());
    Ok(())
}

/// Forgets to look at its token: a blocking-style loop with no checkpoint.
async fn reindex() -> Result<(), Cancelled> {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[taskscope::main(shutdown_grace = "4s")]
async fn main() -> Result<(), Cancelled> {
    if std::env::args().any(|arg| arg == "--self-interrupt") {
        tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            // Interrupt ourselves, as a Ctrl-C would.
            let _ = std::process::Command::new("kill")
                .args(["-INT", &std::process::id().to_string()])
                .status();
        });
    }
    scope!(name = "api server", |s| {
        s.task()
            .name("accept loop")
            .spawn(well_behaved("accept loop"));
        s.task().name("metrics").spawn(well_behaved("metrics"));
        scope!(name = "search index", |index| {
            index.task().name("reindex").spawn(reindex());
            Ok::<_, Cancelled>(())
        })
        .await
        .map_err(taskscope::ScopeError::into_error)?;
        Ok(())
    })
    .await
    .map_err(taskscope::ScopeError::into_error)
}
