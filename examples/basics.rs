//! Seed section "The Basics: CancellationTokenSource and CancellationToken".
//!
//! The source triggers cancellation; the token is what you hand out. Callers
//! holding only a token can observe cancellation but cannot trigger it.
//! Run with `cargo run --example basics`.

use taskscope::{CancellationSource, CancellationToken};

/// Receives only the token: it can look, not cancel.
fn report(name: &str, token: &CancellationToken) {
    println!(
        "{name}: can be cancelled = {}, cancelled = {}, reason = {:?}",
        token.can_be_cancelled(),
        token.is_cancelled(),
        token.reason().map(|r| r.to_string())
    );
}

fn main() {
    // var cts = new CancellationTokenSource();
    let source = CancellationSource::new();
    // CancellationToken token = cts.Token;
    let token = source.token();
    report("before cancel", &token);

    // Later, when you want to cancel: cts.Cancel();
    source.cancel();
    report("after cancel", &token);

    // CancellationToken.None / default: never cancelled, allocates nothing.
    report("CancellationToken::none()", &CancellationToken::none());
    assert_eq!(CancellationToken::none(), CancellationToken::default());
}
