//! A tour of taskscope: a source and its token, a linked token with a
//! per-operation timeout, a callback, a task that stops when its token
//! fires, and a scope whose first failure cancels and joins its siblings.
//! Run it with `cargo run --example tour`.

use std::time::Duration;

use taskscope::{CancelReason, CancellationSource, CancellationToken, Cancelled};
use tokio::time::{sleep, Instant};

/// A slow operation that checks its token between steps, as every long
/// operation should.
async fn crawl(name: &str, token: &CancellationToken, started: Instant) -> Result<u32, Cancelled> {
    let mut pages = 0;
    loop {
        token.check()?;
        token
            .run_until_cancelled(sleep(Duration::from_millis(40)))
            .await?;
        pages += 1;
        if pages % 5 == 0 {
            println!(
                "  [{:>4} ms] {name}: {pages} pages",
                started.elapsed().as_millis()
            );
        }
    }
}

#[tokio::main]
async fn main() {
    let started = Instant::now();

    println!("1. A source cancels; its tokens only observe.");
    let app = CancellationSource::new();
    let token = app.token();
    println!("   token cancelled? {}", token.is_cancelled());

    println!("2. A callback bridges cancellation to code that takes no token.");
    let _registration = token.on_cancel(|reason| {
        println!("   callback: the app was cancelled ({reason}), closing the connection pool");
    });
    println!("   registered; it runs in step 4, when the app is cancelled");

    println!("3. A linked source adds a 300 ms timeout to one operation.");
    let operation = CancellationSource::linked([&app.token()]);
    operation.cancel_after(Duration::from_millis(300));
    let result = crawl("timed crawl", &operation.token(), started).await;
    match result {
        Err(cancelled) => println!("   timed crawl stopped: {cancelled}"),
        Ok(pages) => println!("   timed crawl finished {pages} pages"),
    }
    println!(
        "   the app is untouched by the child's timeout: cancelled? {}",
        app.is_cancelled()
    );

    println!("4. A background task stops when the app is cancelled.");
    let background = CancellationSource::linked([&app.token()]);
    let task = tokio::spawn({
        let token = background.token();
        async move { crawl("background crawl", &token, started).await }
    });
    sleep(Duration::from_millis(250)).await;
    println!("   cancelling the app ...");
    app.cancel_with(CancelReason::message("user pressed Ctrl-C"));
    let outcome = task.await.expect("the task does not panic");
    let reason = outcome.unwrap_err().into_reason();
    println!("   background task stopped: {reason}");
    println!(
        "   it came from an ancestor: {}, originally: {}",
        reason.is_inherited(),
        reason.root()
    );

    println!("5. A scope owns its tasks: the first failure cancels the others, and the");
    println!("   scope returns only after every task has stopped.");
    let result = taskscope::scope(async |s| {
        s.task().name("crawler").spawn(async move {
            crawl("scoped crawl", &taskscope::token(), started).await?;
            Ok(())
        });
        s.task().name("quota check").spawn(async {
            sleep(Duration::from_millis(220)).await;
            Err::<(), _>(std::io::Error::other("quota exceeded"))
        });
        Ok::<_, std::io::Error>(())
    })
    .await;
    match result {
        Ok(()) => println!("   scope finished"),
        Err(err) => {
            let errors = err.into_errors();
            println!(
                "   scope failed: {} ({} error(s) in all; the others were caused by the cancel)",
                errors[0],
                errors.len()
            );
        }
    }
}
