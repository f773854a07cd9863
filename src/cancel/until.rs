//! Running a future until a token is cancelled.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::reason::{CancelReason, Cancelled};
use super::token::CancellationToken;
use super::wait::{WaitForCancellation, WaitForCancellationOwned};

pin_project! {
    /// Runs a future until it completes or a token is cancelled, whichever
    /// comes first; returned by [`CancellationToken::run_until_cancelled`].
    ///
    /// Resolves to `Ok(output)`, or `Err(Cancelled)` with the token's reason.
    /// Cancellation is checked first on every poll, so an already cancelled
    /// token gives `Err` without polling the future at all; the inner future
    /// is dropped as soon as cancellation is seen.
    #[must_use = "futures do nothing unless polled"]
    pub struct RunUntilCancelled<'a, F> {
        #[pin]
        future: Option<F>,
        cancelled: WaitForCancellation<'a>,
        token: &'a CancellationToken,
    }
}

pin_project! {
    /// Like [`RunUntilCancelled`] but owns its token, so it is `'static` when
    /// the future is (it can be spawned); returned by
    /// [`CancellationToken::run_until_cancelled_owned`].
    #[must_use = "futures do nothing unless polled"]
    pub struct RunUntilCancelledOwned<F> {
        #[pin]
        future: Option<F>,
        cancelled: WaitForCancellationOwned,
    }
}

impl<'a, F: Future> RunUntilCancelled<'a, F> {
    pub(crate) fn new(token: &'a CancellationToken, future: F) -> Self {
        RunUntilCancelled {
            future: Some(future),
            cancelled: token.cancelled(),
            token,
        }
    }
}

impl<F: Future> RunUntilCancelledOwned<F> {
    pub(crate) fn new(token: CancellationToken, future: F) -> Self {
        RunUntilCancelledOwned {
            future: Some(future),
            cancelled: token.cancelled_owned(),
        }
    }
}

/// The race both adapters run: cancellation first, then the future.
/// `cancelled` polls the token and gives its reason once it is cancelled.
fn poll_race<F: Future>(
    mut future: Pin<&mut Option<F>>,
    cx: &mut Context<'_>,
    cancelled: impl FnOnce(&mut Context<'_>) -> Option<CancelReason>,
) -> Poll<Result<F::Output, Cancelled>> {
    assert!(
        future.is_some(),
        "a cancellable future was polled after completion"
    );
    if let Some(reason) = cancelled(cx) {
        future.set(None);
        return Poll::Ready(Err(Cancelled::new(reason)));
    }
    let inner = future.as_mut().as_pin_mut().expect("checked above");
    let output = std::task::ready!(inner.poll(cx));
    future.set(None);
    Poll::Ready(Ok(output))
}

fn reason_if_ready(
    wait: Pin<&mut impl Future<Output = ()>>,
    token: &CancellationToken,
    cx: &mut Context<'_>,
) -> Option<CancelReason> {
    wait.poll(cx)
        .is_ready()
        .then(|| token.reason().unwrap_or_default())
}

impl<F: Future> Future for RunUntilCancelled<'_, F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (wait, token) = (this.cancelled, *this.token);
        poll_race(this.future, cx, |cx| {
            reason_if_ready(Pin::new(wait), token, cx)
        })
    }
}

impl<F: Future> Future for RunUntilCancelledOwned<F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let wait = this.cancelled;
        poll_race(this.future, cx, |cx| {
            let ready = Pin::new(&mut *wait).poll(cx).is_ready();
            ready.then(|| wait.token().reason().unwrap_or_default())
        })
    }
}

impl<F> fmt::Debug for RunUntilCancelled<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunUntilCancelled")
            .field("token", self.token)
            .field("done", &self.future.is_none())
            .finish()
    }
}

impl<F> fmt::Debug for RunUntilCancelledOwned<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunUntilCancelledOwned")
            .field("token", self.cancelled.token())
            .field("done", &self.future.is_none())
            .finish()
    }
}
