//! A tour of taskscope, under `#[taskscope::main]` (a root scope that
//! Ctrl-C cancels): scopes that own their tasks, a timeout, a task set in
//! completion order, then the tokens underneath (a linked timeout and a
//! callback). Run it with `cargo run --example tour`.

use std::io;
use std::time::Duration;

use taskscope::{scope, CancelReason, CancellationSource, TaskSet};
use tokio::time::{sleep, Instant};

/// A slow operation that stops when its task's token fires, as every long
/// operation should: `taskscope::token()` is the current task's token.
async fn crawl(_site: &'static str, pages: u32) -> io::Result<u32> {
    let token = taskscope::token();
    for _ in 0..pages {
        token
            .run_until_cancelled(sleep(Duration::from_millis(40)))
            .await?;
    }
    Ok(pages)
}

#[taskscope::main]
async fn main() -> io::Result<()> {
    let started = Instant::now();
    let at = move || format!("[{:>4} ms]", started.elapsed().as_millis());

    println!("1. A scope owns its tasks and returns only after every one has stopped.");
    let total = scope!(|s| {
        // Tasks are 'static, like tokio::spawn's: move what they use.
        let docs = s.spawn(crawl("docs", 3));
        let blog = s.spawn(crawl("blog", 5));
        Ok(docs.await? + blog.await?)
    })
    .await
    .map_err(taskscope::ScopeError::into_error)?;
    println!("   {} crawled {total} pages", at());

    println!("2. The first failure cancels the other tasks; the scope still joins them.");
    let result = scope!(|s| {
        s.task().name("crawler").spawn(crawl("forum", 100));
        s.task().name("quota check").spawn(async {
            sleep(Duration::from_millis(120)).await;
            Err::<u32, _>(io::Error::other("quota exceeded"))
        });
        Ok(())
    })
    .await;
    if let Err(err) = result {
        println!("   {} scope failed: {err}", at());
    }

    println!("3. A timeout bounds a whole scope: its tasks stop at the deadline.");
    let result = scope!(timeout = Duration::from_millis(150), |s| {
        s.spawn(crawl("archive", 100)).await
    })
    .await;
    println!(
        "   {} timed out: {}",
        at(),
        result.is_err_and(|err| err.is_timeout())
    );

    println!("4. A task set joins tasks as they finish; a limit gives backpressure.");
    scope!(limit = 2, |s| {
        let mut set = TaskSet::new();
        for (site, pages) in [("a", 4), ("b", 1), ("c", 2)] {
            let task = s.task().name(site).wait_for_slot();
            set.push(
                task.spawn(async move { Ok((site, crawl(site, pages).await?)) })
                    .await,
            );
        }
        while let Some(done) = set.join_next().await {
            let (site, pages) = done?;
            println!("   {} {site} done ({pages} pages)", at());
        }
        Ok::<_, io::Error>(())
    })
    .await
    .map_err(taskscope::ScopeError::into_error)?;

    println!("5. Underneath: a source cancels, its tokens observe, links are one-way.");
    let request = CancellationSource::new();
    let _registration = request.token().on_cancel(|reason| {
        println!("   callback: the request was cancelled ({reason})");
    });
    let per_call = CancellationSource::linked([&request.token()]);
    per_call.cancel_after(Duration::from_millis(100));
    let outcome = per_call
        .token()
        .run_until_cancelled(sleep(Duration::from_secs(5)))
        .await;
    println!(
        "   {} the call stopped: {}; the request is untouched: {}",
        at(),
        outcome.unwrap_err(),
        !request.is_cancelled()
    );
    request.cancel_with(CancelReason::message("the user pressed stop"));
    Ok(())
}
