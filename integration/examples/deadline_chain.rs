//! A deadline and a cancellation crossing three services, in one process:
//! A (axum) → B (tonic gRPC) → C (axum, running a SQLite query that only
//! its token can stop). Run with
//! `cargo run -p taskscope-integration --example deadline_chain`.
//!
//! Request 1 is sent to A with a budget of 300 ms (`x-request-budget-ms`).
//! A passes what is left, less a 5 ms margin, to B in `grpc-timeout`; B
//! passes what is left of that to C in `x-request-budget-ms`. Each
//! service's token fires at its own deadline with the reason "the caller's
//! deadline passed", C's query is interrupted, and A answers 504.
//!
//! Request 2 has no budget; its client hangs up while C's query runs. A's
//! request is dropped, which resets B's stream, which closes C's
//! connection: each token fires with "the client disconnected", and C's
//! query is interrupted. C's audit record, written in a shielded scope,
//! still finishes afterwards.

use std::time::Duration;

use taskscope::{Cancelled, ScopeBuilder};
use tokio::time::Instant;

#[path = "../tests/support/chain.rs"]
mod chain;
#[path = "../tests/support/http.rs"]
mod http_client;

use chain::{Event, Log};

fn print_timeline(log: &Log, t0: Instant) {
    for event in log.events() {
        match event {
            Event::Started(service, left) => match left {
                Some(left) => println!("  {service}: handler starts with {left:.0?} left"),
                None => println!("  {service}: handler starts, no deadline"),
            },
            Event::Cancelled(service, reason, at) => {
                println!(
                    "  {service}: token fired at {:>4} ms: {reason}",
                    (at - t0).as_millis()
                )
            }
            Event::QueryEnded { interrupted, at } => {
                let how = if interrupted {
                    "interrupted"
                } else {
                    "finished"
                };
                println!("  C: SQLite query {how} at {:>4} ms", (at - t0).as_millis())
            }
            Event::AuditWritten => println!("  C: audit record written (in a shielded scope)"),
            Event::Tenant(service, Some(tenant)) => {
                println!("  {service}: runs for tenant {tenant:?} (from baggage)")
            }
            Event::HandlerRan(_) | Event::Tenant(_, None) => {}
        }
    }
}

async fn wait_for(log: &Log, done: impl Fn(&[Event]) -> bool) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while !done(&log.events()) && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main]
async fn main() {
    ScopeBuilder::new()
        .name("three services")
        .cancel_on_exit(true)
        .run(async |_s| {
            let log = Log::default();
            let chain = chain::start(&log).await;
            println!(
                "A http://{}  B grpc://{}  C http://{}",
                chain.a, chain.b, chain.c
            );

            println!(
                "\nrequest 1: GET A/work with x-request-budget-ms: 300 and baggage: tenant=acme"
            );
            let t0 = Instant::now();
            let mut client = http_client::Client::connect(chain.a).await;
            let (status, _) = client
                .get_with(
                    "/work",
                    &[("x-request-budget-ms", "300"), ("baggage", "tenant=acme")],
                )
                .await;
            wait_for(&log, |e| e.contains(&Event::AuditWritten)).await;
            print_timeline(&log, t0);
            println!("  client: {status} after {} ms", t0.elapsed().as_millis());

            println!("\nrequest 2: GET A/work, no budget; the client hangs up after C starts");
            let log2 = Log::default();
            let chain2 = chain::start(&log2).await;
            let t0 = Instant::now();
            let client = http_client::Client::connect(chain2.a).await;
            let request = tokio::spawn(async move {
                let mut client = client;
                client.get("/work").await
            });
            wait_for(&log2, |e| {
                e.iter().any(|e| matches!(e, Event::Started("C", _)))
            })
            .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            println!("  client: hangs up at {} ms", t0.elapsed().as_millis());
            request.abort();
            wait_for(&log2, |e| e.contains(&Event::AuditWritten)).await;
            print_timeline(&log2, t0);
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
}
