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

/// Resolves when its token is cancelled; returned by
/// [`CancellationToken::cancelled`].
///
/// Cancel-safe, and level-triggered: once the token is cancelled every new
/// `cancelled()` future is ready at once. For a token that can never be
/// cancelled it never resolves.
#[must_use = "futures do nothing unless polled"]
pub struct WaitForCancellation<'a> {
    token: &'a CancellationToken,
    waiter: Waiter,
}

impl<'a> WaitForCancellation<'a> {
    pub(crate) fn new(token: &'a CancellationToken) -> Self {
        WaitForCancellation {
            token,
            waiter: Waiter::default(),
        }
    }
}

impl Future for WaitForCancellation<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.waiter.poll(this.token.node(), cx)
    }
}

impl Drop for WaitForCancellation<'_> {
    fn drop(&mut self) {
        self.waiter.release(self.token.node());
    }
}

impl fmt::Debug for WaitForCancellation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForCancellation")
            .field("token", self.token)
            .finish()
    }
}

/// Like [`WaitForCancellation`] but owns its token, so it is `'static`;
/// returned by [`CancellationToken::cancelled_owned`].
#[must_use = "futures do nothing unless polled"]
pub struct WaitForCancellationOwned {
    token: CancellationToken,
    waiter: Waiter,
}

impl WaitForCancellationOwned {
    pub(crate) fn new(token: CancellationToken) -> Self {
        WaitForCancellationOwned {
            token,
            waiter: Waiter::default(),
        }
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

impl Future for WaitForCancellationOwned {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.waiter.poll(this.token.node(), cx)
    }
}

impl Drop for WaitForCancellationOwned {
    fn drop(&mut self) {
        self.waiter.release(self.token.node());
    }
}

impl fmt::Debug for WaitForCancellationOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForCancellationOwned")
            .field("token", &self.token)
            .finish()
    }
}
