//! Running a future until a token is cancelled.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::reason::Cancelled;
use super::wait::WaitForCancellation;

pin_project! {
    /// Runs a future until it completes or a token is cancelled, whichever
    /// comes first; returned by [`CancellationToken::run_until_cancelled`],
    /// and by [`CancellationToken::run_until_cancelled_owned`] as a
    /// `RunUntilCancelled<'static, F>` that owns a clone of the token (so
    /// it is `'static` when the future is, and can be spawned).
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
    }
}

impl<'a, F: Future> RunUntilCancelled<'a, F> {
    pub(crate) fn new(cancelled: WaitForCancellation<'a>, future: F) -> Self {
        RunUntilCancelled {
            future: Some(future),
            cancelled,
        }
    }
}

impl<F: Future> Future for RunUntilCancelled<'_, F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut future = this.future;
        assert!(
            future.is_some(),
            "a cancellable future was polled after completion"
        );
        // Cancellation first: an already cancelled token never polls the
        // future.
        let wait = this.cancelled;
        if Pin::new(&mut *wait).poll(cx).is_ready() {
            future.set(None);
            let reason = wait.token().reason().unwrap_or_default();
            return Poll::Ready(Err(Cancelled::new(reason)));
        }
        let inner = future.as_mut().as_pin_mut().expect("checked above");
        let output = std::task::ready!(inner.poll(cx));
        future.set(None);
        Poll::Ready(Ok(output))
    }
}

impl<F> fmt::Debug for RunUntilCancelled<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunUntilCancelled")
            .field("token", self.cancelled.token())
            .field("done", &self.future.is_none())
            .finish()
    }
}
