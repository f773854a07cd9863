//! Seed section "Registering Callbacks".
//!
//! `on_cancel` runs a callback synchronously on the cancelling thread — the
//! bridge to APIs that take no token. Here, as in the seed, the callback logs
//! and releases a semaphore permit that a waiter (which knows nothing about
//! tokens) is blocked on. Dropping the `Registration` (the .NET walkthrough's `using`)
//! unregisters it.
//! Run with `cargo run --example callbacks`.

use std::sync::Arc;
use std::time::Duration;

use taskscope::CancellationSource;
use tokio::sync::Semaphore;

#[tokio::main]
async fn main() {
    let semaphore = Arc::new(Semaphore::new(0));
    let source = CancellationSource::new();
    let token = source.token();

    // A waiter that knows nothing about cancellation tokens.
    let waiter = tokio::spawn({
        let semaphore = semaphore.clone();
        async move {
            let _permit = semaphore.acquire().await.unwrap();
            println!("waiter: got the permit, exiting");
        }
    });

    // using var registration = cancellationToken.Register(() => { ... });
    let registration = token.on_cancel({
        let semaphore = semaphore.clone();
        move |reason| {
            println!("callback: operation cancelled ({reason}), releasing resources");
            semaphore.add_permits(1);
        }
    });

    // A second registration that is dropped before cancellation never runs.
    drop(token.on_cancel(|_| unreachable!("unregistered")));

    tokio::time::sleep(Duration::from_millis(50)).await;
    println!("main: cancelling");
    source.cancel();
    waiter.await.unwrap();

    // Registering on a token that is already cancelled runs inline.
    let _late =
        token.on_cancel(|_| println!("late callback: ran inline, the token was already cancelled"));
    drop(registration);
}
