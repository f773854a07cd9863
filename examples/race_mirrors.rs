//! Racing two mirrors: the first download to succeed wins, the other is
//! cancelled and joined. A mirror that fails does not stop the race.
//! Run with `cargo run --example race_mirrors`.

use std::io;
use std::time::Duration;

async fn download(mirror: &'static str, latency_ms: u64, works: bool) -> io::Result<String> {
    let token = taskscope::token();
    if let Err(cancelled) = token
        .run_until_cancelled(tokio::time::sleep(Duration::from_millis(latency_ms)))
        .await
    {
        println!("  {mirror}: cancelled ({})", cancelled.reason());
        return Err(cancelled.into());
    }
    if !works {
        println!("  {mirror}: failed");
        return Err(io::Error::other(format!("{mirror}: connection reset")));
    }
    println!("  {mirror}: finished");
    Ok(format!("package from {mirror}"))
}

#[tokio::main]
async fn main() {
    println!("race 1: eu is slow, us is fast");
    let winner = taskscope::race(async |r| {
        r.spawn(download("eu mirror", 300, true));
        r.spawn(download("us mirror", 100, true));
        Ok(())
    })
    .await;
    println!("  -> {:?}\n", winner.map_err(|e| e.to_string()));

    println!("race 2: the fast mirror fails, the slow one still wins");
    let winner = taskscope::race(async |r| {
        r.spawn(download("eu mirror", 200, true));
        r.spawn(download("us mirror", 50, false));
        Ok(())
    })
    .await;
    println!("  -> {:?}\n", winner.map_err(|e| e.to_string()));

    println!("race 3: both fail");
    let result = taskscope::race::<String, io::Error, _>(async |r| {
        r.spawn(download("eu mirror", 20, false));
        r.spawn(download("us mirror", 10, false));
        Ok(())
    })
    .await;
    let errors: Vec<_> = result
        .unwrap_err()
        .into_errors()
        .iter()
        .map(|e| e.to_string())
        .collect();
    println!("  -> all failed: {errors:?}");
}
