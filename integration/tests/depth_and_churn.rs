//! Nothing recursive in depth (docs/semantics.md, part I §7), and nothing grows with churn
//! (§2.3). Heap use is measured with a counting global allocator; the tests
//! of this file take one lock so no other test allocates while one measures.

use std::sync::{Mutex, MutexGuard, PoisonError};

use taskscope::CancellationSource;

#[path = "support/alloc.rs"]
mod alloc;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

const DEPTH: usize = 1_000_000;

/// Runs on a fresh thread with the default 2 MiB test stack.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

fn chain(depth: usize) -> Vec<CancellationSource> {
    let mut chain = vec![CancellationSource::new()];
    for _ in 1..depth {
        let next = CancellationSource::linked([&chain.last().unwrap().token()]);
        chain.push(next);
    }
    chain
}

#[test]
fn million_deep_chain_cancels_and_drops_on_a_small_stack() {
    let _serial = serial();
    on_small_stack(|| {
        let sources = chain(DEPTH);
        let deepest = sources.last().unwrap().token();
        sources[0].cancel();
        assert!(deepest.is_cancelled());
        assert!(deepest.reason().unwrap().is_inherited());
        drop(sources);
    });
}

#[test]
fn million_deep_chain_drops_uncancelled_in_either_order_on_a_small_stack() {
    let _serial = serial();
    on_small_stack(|| {
        let sources = chain(DEPTH);
        let tokens: Vec<_> = sources.iter().map(CancellationSource::token).collect();
        drop(sources); // root first
        drop(tokens);
        let mut sources = chain(DEPTH);
        while sources.pop().is_some() {} // leaf first
    });
}

#[test]
fn long_lived_parent_with_million_short_lived_children_does_not_grow() {
    let _serial = serial();
    let parent = CancellationSource::new();
    let token = parent.token();
    // Warm up: the parent's registry is allocated on first use.
    drop(CancellationSource::linked([&token]));
    let before = alloc::live_bytes();
    for _ in 0..1_000_000 {
        let child = CancellationSource::linked([&token]);
        let grandchild = CancellationSource::linked([&child.token()]);
        drop(grandchild);
        drop(child);
    }
    let grown = alloc::live_bytes() - before;
    // A leak of even one byte per child would show as a megabyte.
    assert!(
        grown < 64 * 1024,
        "heap grew by {grown} bytes over 1,000,000 children"
    );
    parent.cancel();
}

#[test]
fn waiting_futures_and_registrations_release_their_slots() {
    let _serial = serial();
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    let parent = CancellationSource::new();
    let token = parent.token();
    let mut cx = Context::from_waker(Waker::noop());
    {
        let mut fut = pin!(token.cancelled());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        drop(token.on_cancel(|_| {}));
    }
    let before = alloc::live_bytes();
    for _ in 0..200_000 {
        let mut fut = pin!(token.cancelled());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        drop(token.on_cancel(|_| {}));
    }
    let grown = alloc::live_bytes() - before;
    assert!(grown < 64 * 1024, "heap grew by {grown} bytes");
}
