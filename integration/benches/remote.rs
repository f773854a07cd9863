//! What the client layers cost a call that is not cancelled (features
//! `tonic` and `reqwest`): a unary gRPC call to an echo server and an HTTP
//! GET, both on 127.0.0.1, plain and through taskscope's layer with a token
//! that has a deadline (so the budget header is written on every call).
//! Run with `cargo bench -p taskscope-integration --bench remote`; the
//! run ends with the table pasted into `docs/benchmarks.md`.

use std::time::Duration;

use criterion::Criterion;
use taskscope::reqwest::CancellableRequestExt;
use taskscope::tonic::DeadlineLayer;
use taskscope::{CancellationSource, Cancelled, ScopeBuilder};
use tower_layer::Layer;

#[path = "../tests/support/chain.rs"]
mod chain;
mod support;

use support::{listing_only, median_ns};

const GRPC: &str = "gRPC unary call";
const HTTP: &str = "HTTP GET";

fn main() {
    if listing_only() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .configure_from_args();
    let stop = CancellationSource::new();
    let (addrs_tx, addrs_rx) = std::sync::mpsc::channel();
    std::thread::scope(|threads| {
        // The servers, in a scope of their own on a second thread.
        threads.spawn(|| {
            runtime.block_on(
                ScopeBuilder::new()
                    .parent(&stop.token())
                    .cancel_on_exit(true)
                    .run(async |_s| {
                        addrs_tx.send(chain::start_echo().await).unwrap();
                        taskscope::token().cancelled().await;
                        Ok::<_, Cancelled>(())
                    }),
            )
        });
        let (grpc, http) = addrs_rx.recv().unwrap();
        let request =
            runtime.block_on(async { CancellationSource::with_timeout(Duration::from_secs(3600)) });
        let token = request.token();
        let channel = runtime.block_on(async {
            tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
                .unwrap()
                .connect()
                .await
                .unwrap()
        });
        let plain = tonic::client::Grpc::new(channel.clone());
        let layered = tonic::client::Grpc::new(DeadlineLayer::new().token(&token).layer(channel));
        let path = http::uri::PathAndQuery::from_static(chain::ECHO_SAY);

        let mut g = c.benchmark_group(GRPC);
        g.bench_function("tonic", |b| {
            b.to_async(&runtime).iter(|| {
                let mut client = plain.clone();
                let path = path.clone();
                async move {
                    client.ready().await.unwrap();
                    let message = tonic::Request::new("hi".to_owned());
                    client.unary(message, path, chain::Utf8Codec).await.unwrap()
                }
            })
        });
        g.bench_function("tonic, grpc-timeout set by hand", |b| {
            b.to_async(&runtime).iter(|| {
                let mut client = plain.clone();
                let path = path.clone();
                async move {
                    client.ready().await.unwrap();
                    let mut message = tonic::Request::new("hi".to_owned());
                    message.set_timeout(Duration::from_secs(3600));
                    client.unary(message, path, chain::Utf8Codec).await.unwrap()
                }
            })
        });
        g.bench_function("tonic + DeadlineLayer", |b| {
            b.to_async(&runtime).iter(|| {
                let mut client = layered.clone();
                let path = path.clone();
                async move {
                    client.ready().await.unwrap();
                    let message = tonic::Request::new("hi".to_owned());
                    client.unary(message, path, chain::Utf8Codec).await.unwrap()
                }
            })
        });
        g.finish();

        let client = reqwest::Client::new();
        let url = format!("http://{http}/");
        let mut g = c.benchmark_group(HTTP);
        g.bench_function("reqwest", |b| {
            b.to_async(&runtime).iter(|| async {
                client
                    .get(&url)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap()
            })
        });
        g.bench_function("reqwest + cancellable", |b| {
            b.to_async(&runtime).iter(|| async {
                let response = client.get(&url).cancellable().token(&token).send().await;
                response.unwrap().bytes().await.unwrap()
            })
        });
        g.finish();
        stop.cancel();
    });
    c.final_summary();

    if let (Some(p), Some(h)) = (
        median_ns(GRPC, "tonic"),
        median_ns(GRPC, "tonic, grpc-timeout set by hand"),
    ) {
        println!(
            "\ntonic with grpc-timeout set by hand: {:.1} µs ({:.3}× plain)",
            h / 1000.0,
            h / p
        );
    }
    println!("\n| call | plain | with taskscope's layer | ratio |");
    println!("|---|---:|---:|---:|");
    for (group, plain, layered) in [
        (GRPC, "tonic", "tonic + DeadlineLayer"),
        (HTTP, "reqwest", "reqwest + cancellable"),
    ] {
        match (median_ns(group, plain), median_ns(group, layered)) {
            (Some(p), Some(l)) => println!(
                "| {group} | {:.1} µs | {:.1} µs | {:.3}× |",
                p / 1000.0,
                l / 1000.0,
                l / p
            ),
            _ => println!("| {group} | (not run) | | |"),
        }
    }
}
