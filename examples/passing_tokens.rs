//! Seed section "Passing Tokens to Async Methods".
//!
//! The .NET walkthrough's `GetCustomerSummaryAsync`: every async function that may take a
//! while takes a token (callers without one pass `CancellationToken::none()`,
//! the .NET walkthrough's `default`) and passes it to every call it makes. When the token
//! fires halfway through, the next call that checks it returns `Cancelled`,
//! and `?` unwinds the whole operation.
//! Run with `cargo run --example passing_tokens`.

use std::time::Duration;

use taskscope::{CancelReason, CancellationSource, CancellationToken, Cancelled};
use tokio::time::sleep;

#[derive(Debug)]
struct CustomerSummary {
    customer: String,
    orders: Vec<u32>,
    balance: i64,
}

/// Stands in for a database or HTTP call that honours the token mid-await.
async fn call(what: &str, latency_ms: u64, token: &CancellationToken) -> Result<(), Cancelled> {
    println!("  {what}: started");
    token
        .run_until_cancelled(sleep(Duration::from_millis(latency_ms)))
        .await
        .inspect_err(|e| println!("  {what}: stopped ({e})"))?;
    println!("  {what}: done");
    Ok(())
}

async fn get_customer(id: u32, token: &CancellationToken) -> Result<String, Cancelled> {
    call("customers.get_by_id", 50, token).await?;
    Ok(format!("customer #{id}"))
}

async fn get_orders(id: u32, token: &CancellationToken) -> Result<Vec<u32>, Cancelled> {
    call("orders query", 120, token).await?;
    Ok(vec![id * 10, id * 10 + 1])
}

async fn get_balance(_id: u32, token: &CancellationToken) -> Result<i64, Cancelled> {
    call("billing.get_balance", 80, token).await?;
    Ok(1234)
}

async fn get_customer_summary(
    id: u32,
    token: &CancellationToken,
) -> Result<CustomerSummary, Cancelled> {
    let customer = get_customer(id, token).await?;
    let orders = get_orders(id, token).await?;
    let balance = get_balance(id, token).await?;
    Ok(CustomerSummary {
        customer,
        orders,
        balance,
    })
}

#[tokio::main]
async fn main() {
    println!("1. Nobody cancels (the caller passes CancellationToken::none()):");
    let summary = get_customer_summary(7, &CancellationToken::none())
        .await
        .unwrap();
    println!(
        "  -> {}: orders {:?}, balance {}\n",
        summary.customer, summary.orders, summary.balance
    );

    println!("2. The client goes away 100 ms in:");
    let request = CancellationSource::new();
    let token = request.token();
    let work = tokio::spawn(async move { get_customer_summary(7, &token).await });
    sleep(Duration::from_millis(100)).await;
    request.cancel_with(CancelReason::message("client disconnected"));
    match work.await.unwrap() {
        Ok(summary) => println!("  -> unexpectedly finished for {}", summary.customer),
        Err(cancelled) => println!("  -> {cancelled}; the balance call never started"),
    }
}
