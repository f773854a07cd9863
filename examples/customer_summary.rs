//! The .NET walkthrough's `GetCustomerSummaryAsync` as a scope: the three calls run
//! concurrently, each a task tied to the scope. With the default fail-fast
//! policy the first failure cancels the other two (they see reason "a
//! sibling task failed: billing"), the scope joins them, and the caller gets
//! the billing error *first* — the cancellation errors it caused come after
//! it, never ahead of it (a real failure is judged by what it is, so it is
//! never reported behind a cancellation).
//! Run with `cargo run --example customer_summary`.

use std::io;
use std::time::Duration;

use tokio::time::sleep;

/// Stands in for a database or HTTP call that honours the ambient token.
async fn call(what: &'static str, latency_ms: u64, fail: bool) -> io::Result<&'static str> {
    let token = taskscope::token();
    let slept = token
        .run_until_cancelled(sleep(Duration::from_millis(latency_ms)))
        .await;
    if let Err(cancelled) = slept {
        println!("  {what}: stopped early ({})", cancelled.reason());
        return Err(cancelled.into());
    }
    if fail {
        println!("  {what}: failed");
        return Err(io::Error::other(format!("{what} is unavailable")));
    }
    println!("  {what}: done");
    Ok(what)
}

async fn get_customer_summary(
    id: u32,
    billing_fails: bool,
) -> Result<String, taskscope::ScopeError<io::Error>> {
    taskscope::scope(async |s| {
        let customer = s.task().name("customer").spawn(call("customer", 80, false));
        let orders = s.task().name("orders").spawn(call("orders", 150, false));
        let balance = s
            .task()
            .name("billing")
            .spawn(call("billing", 40, billing_fails));
        Ok(format!(
            "customer #{id}: {} / {} / {}",
            customer.await?,
            orders.await?,
            balance.await?
        ))
    })
    .await
}

/// The same with the macro, which also names the scope and bounds it.
async fn get_customer_summary_macro(id: u32) -> Result<String, taskscope::ScopeError<io::Error>> {
    taskscope::scope!(
        name = "customer summary",
        timeout = Duration::from_secs(2),
        |s| {
            let customer = s.task().name("customer").spawn(call("customer", 80, false));
            let orders = s.task().name("orders").spawn(call("orders", 150, false));
            let balance = s.task().name("billing").spawn(call("billing", 40, false));
            Ok(format!(
                "customer #{id}: {} / {} / {}",
                customer.await?,
                orders.await?,
                balance.await?
            ))
        }
    )
    .await
}

#[tokio::main]
async fn main() {
    println!("all three succeed:");
    println!(
        "  -> {:?}\n",
        get_customer_summary(7, false)
            .await
            .map_err(|e| e.to_string())
    );

    println!("the macro form:");
    println!(
        "  -> {:?}\n",
        get_customer_summary_macro(7)
            .await
            .map_err(|e| e.to_string())
    );

    println!("billing fails first:");
    match get_customer_summary(7, true).await {
        Ok(summary) => println!("  -> unexpected: {summary}"),
        Err(err) => {
            println!("  -> failed: {}", err.first().unwrap());
            let errors = err.into_errors();
            println!(
                "     ({} errors in all; the later ones are the cancellations it caused)",
                errors.len()
            );
        }
    }
}
