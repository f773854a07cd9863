use std::time::Duration;

fn main() {
    let _ = taskscope::ScopeBuilder::new()
        .timeout(Duration::from_secs(1))
        .deadline(tokio::time::Instant::now());
    let _ = taskscope::ScopeBuilder::new()
        .shielded(Duration::from_secs(5))
        .timeout(Duration::from_secs(60));
}
