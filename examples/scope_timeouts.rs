//! A scope with a timeout, in both forms: "fail" (Trio's `fail_after`,
//! Kotlin's `withTimeout`) returns an error saying the deadline passed;
//! "move on" (Trio's `move_on_after`, Kotlin's `withTimeoutOrNull`) returns
//! `None` and the caller carries on. Either way the tasks see reason
//! `Timeout` and are joined before the scope returns.
//! Run with `cargo run --example scope_timeouts`.

use std::time::Duration;

use taskscope::Cancelled;

async fn slow_report(name: &'static str, ms: u64) -> Result<&'static str, Cancelled> {
    let token = taskscope::token();
    token
        .run_until_cancelled(tokio::time::sleep(Duration::from_millis(ms)))
        .await
        .inspect_err(|c| println!("  {name}: stopped ({})", c.reason()))?;
    println!("  {name}: done");
    Ok(name)
}

#[tokio::main]
async fn main() {
    println!("fail form, 100 ms for work that needs 300 ms:");
    let failed = taskscope::fail_after(Duration::from_millis(100), async |s| {
        let a = s.spawn(slow_report("sales", 50));
        let b = s.spawn(slow_report("inventory", 300));
        Ok((a.await?, b.await?))
    })
    .await;
    match failed {
        Ok(reports) => println!("  -> {reports:?}"),
        Err(err) if err.is_timeout() => println!("  -> error: {err}"),
        Err(err) => println!("  -> failed: {err}"),
    }

    println!("move-on form, the same work:");
    let moved_on = taskscope::move_on_after(Duration::from_millis(100), async |s| {
        let a = s.spawn(slow_report("sales", 50));
        let b = s.spawn(slow_report("inventory", 300));
        Ok((a.await?, b.await?))
    })
    .await
    .unwrap();
    match moved_on {
        Some(reports) => println!("  -> {reports:?}"),
        None => println!("  -> no reports this time; carrying on with cached ones"),
    }

    println!("move-on form with enough time:");
    let in_time = taskscope::move_on_after(Duration::from_millis(500), async |s| {
        let a = s.spawn(slow_report("sales", 50));
        a.await
    })
    .await
    .unwrap();
    println!("  -> {in_time:?}");
}
