//! What cancelling on the server costs a query that is not cancelled
//! (feature `postgres`): a `SELECT 1` round trip to a real PostgreSQL on
//! 127.0.0.1 (started by the bench, removed at the end), plain, through
//! `cancellable()` with a token that never fires, and through it with a
//! deadline (which adds the `statement_timeout` round trips). Run with
//! `cargo bench -p taskscope-integration --bench postgres`; the run ends with the
//! table pasted into `docs/benchmarks.md`.

use std::time::Duration;

use criterion::Criterion;
use taskscope::postgres::PgCancelExt;
use taskscope::CancellationSource;
use tokio_postgres::NoTls;

#[path = "../tests/support/postgres.rs"]
mod pg;
mod support;

use support::{listing_only, median_ns};

const GROUP: &str = "SELECT 1 round trip";

fn main() {
    if listing_only() {
        return;
    }
    let db = pg::PgServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&db.config(), NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    });
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .configure_from_args();
    let mut g = c.benchmark_group(GROUP);
    g.bench_function("tokio-postgres", |b| {
        b.to_async(&runtime)
            .iter(|| async { client.query_one("SELECT 1", &[]).await.unwrap() })
    });
    let user = CancellationSource::new();
    g.bench_function("cancellable, no deadline", |b| {
        b.to_async(&runtime).iter(|| async {
            client
                .until_cancelled(&user.token())
                .query_one("SELECT 1", &[])
                .await
                .unwrap()
        })
    });
    let request =
        runtime.block_on(async { CancellationSource::with_timeout(Duration::from_secs(3600)) });
    g.bench_function("cancellable, with a deadline", |b| {
        b.to_async(&runtime).iter(|| async {
            client
                .until_cancelled(&request.token())
                .query_one("SELECT 1", &[])
                .await
                .unwrap()
        })
    });
    g.finish();
    c.final_summary();

    let base = median_ns(GROUP, "tokio-postgres");
    println!("\n| case | time per query | vs. plain |");
    println!("|---|---:|---:|");
    for id in [
        "tokio-postgres",
        "cancellable, no deadline",
        "cancellable, with a deadline",
    ] {
        match (median_ns(GROUP, id), base) {
            (Some(t), Some(b)) => println!("| {id} | {:.1} µs | {:.3}× |", t / 1000.0, t / b),
            _ => println!("| {id} | (not run) | |"),
        }
    }
    drop(db);
}
