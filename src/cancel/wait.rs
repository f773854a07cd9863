//! Futures that resolve when a token is cancelled.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::node::{Handler, Node};
use super::source::CancellationSource;
use super::token::CancellationToken;
use crate::loom::sync::Arc;

/// A waiting future's place in a node's registry.
#[derive(Default)]
struct Waiter {
    key: Option<usize>,
}

/// A waker kept in a token's registry by its owner, who polls it by hand
/// and must [`release`](CancelWatch::release) it with the same token: how
/// a scope's driver learns its token fired without a future of its own.
#[derive(Default)]
pub(crate) struct CancelWatch {
    waiter: Waiter,
}

impl CancelWatch {
    /// Ready once `token` is cancelled; otherwise keeps the task's waker
    /// registered (one lock of the token's node per call).
    pub(crate) fn poll(&mut self, source: &CancellationSource, cx: &mut Context<'_>) -> Poll<()> {
        self.waiter.poll(Some(source.node()), cx)
    }

    /// Removes the waker, if it is still registered.
    pub(crate) fn release(&mut self, source: &CancellationSource) {
        self.waiter.release(Some(source.node()));
    }
}

impl Waiter {
    fn poll(&mut self, node: Option<&Arc<Node>>, cx: &mut Context<'_>) -> Poll<()> {
        // A token that can never be cancelled never wakes anyone.
        let Some(node) = node else {
            return Poll::Pending;
        };
        if node.is_cancelled() {
            // Cancellation drained the registry: the key is gone already.
            self.key = None;
            return Poll::Ready(());
        }
        match self.key {
            Some(key) if node.update_waker(key, cx.waker()) => Poll::Pending,
            Some(_) => {
                self.key = None;
                Poll::Ready(())
            }
            // The state is checked again under the node's lock: a cancel
            // either sees this waker or happened before, never in between.
            None => match node.register(Handler::Waker(cx.waker().clone())) {
                Ok(key) => {
                    self.key = Some(key);
                    Poll::Pending
                }
                Err(_) => Poll::Ready(()),
            },
        }
    }

    fn release(&mut self, node: Option<&Arc<Node>>) {
        if let (Some(key), Some(node)) = (self.key.take(), node) {
            drop(node.deregister(key));
        }
    }
}

/// The token a waiting future watches: borrowed by
/// [`cancelled`](CancellationToken::cancelled), owned (a clone) by
/// [`cancelled_owned`](CancellationToken::cancelled_owned).
enum TokenRef<'a> {
    Borrowed(&'a CancellationToken),
    Owned(CancellationToken),
}

impl TokenRef<'_> {
    fn get(&self) -> &CancellationToken {
        match self {
            TokenRef::Borrowed(token) => token,
            TokenRef::Owned(token) => token,
        }
    }
}

/// Resolves when its token is cancelled; returned by
/// [`CancellationToken::cancelled`], and by
/// [`CancellationToken::cancelled_owned`] as a `WaitForCancellation<'static>`
/// that owns a clone of the token (so it can be spawned or stored).
///
/// Cancel-safe, and level-triggered: once the token is cancelled every new
/// `cancelled()` future is ready at once. For a token that can never be
/// cancelled it never resolves.
#[must_use = "futures do nothing unless polled"]
pub struct WaitForCancellation<'a> {
    token: TokenRef<'a>,
    waiter: Waiter,
}

impl<'a> WaitForCancellation<'a> {
    pub(crate) fn new(token: &'a CancellationToken) -> Self {
        WaitForCancellation {
            token: TokenRef::Borrowed(token),
            waiter: Waiter::default(),
        }
    }

    /// The token it waits for.
    pub(crate) fn token(&self) -> &CancellationToken {
        self.token.get()
    }
}

impl WaitForCancellation<'static> {
    pub(crate) fn owned(token: CancellationToken) -> Self {
        WaitForCancellation {
            token: TokenRef::Owned(token),
            waiter: Waiter::default(),
        }
    }
}

impl Future for WaitForCancellation<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.waiter.poll(this.token.get().node(), cx)
    }
}

impl Drop for WaitForCancellation<'_> {
    fn drop(&mut self) {
        self.waiter.release(self.token.get().node());
    }
}

impl fmt::Debug for WaitForCancellation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForCancellation")
            .field("token", self.token.get())
            .finish()
    }
}
