//! The server's side of a caller's deadline: a source that fires at it,
//! and the reason a request gets when its future is dropped.

use std::time::Duration;

use tokio::time::Instant;

use crate::cancel::{CancelReason, CancellationSource, CancellationToken};

/// How close to its deadline a dropped request counts as stopped by the
/// deadline rather than by a caller that left: a caller enforcing the
/// budget it sent gives up one trip (loopback to a region away) before the
/// callee's clock says so.
pub(crate) const RESET_TOLERANCE: Duration = Duration::from_millis(20);

/// A request's deadline as its caller sent it, for a server's request
/// scope to link to: its token fires at the deadline with
/// [`CancelReason::RemoteDeadline`], and if the request's future is dropped
/// first (the caller reset the stream or closed the connection), dropping
/// this fires it with [`CancelReason::ClientDisconnected`], or with
/// `RemoteDeadline` if the deadline has passed or is less than
/// [`RESET_TOLERANCE`] away: a server framework that enforces the deadline
/// itself drops the future then, and a client that enforces the budget it
/// sent (tonic's channel does) resets the stream up to one trip early.
#[derive(Debug)]
pub(crate) struct CallerDeadline {
    source: Option<CancellationSource>,
    deadline: Instant,
}

impl CallerDeadline {
    /// Starts the clock on `budget`, for a request whose token would
    /// otherwise be linked to `parent` (the server's token).
    pub(crate) fn start(budget: Duration, parent: &CancellationToken) -> Self {
        let source = CancellationSource::linked([parent]);
        // A budget too large for the clock never fires.
        let deadline = Instant::now().checked_add(budget);
        if let Some(deadline) = deadline {
            source.cancel_at_with(deadline, CancelReason::RemoteDeadline);
        }
        tracing::debug!(
            budget_ms = budget.as_millis() as u64,
            "deadline received from the caller"
        );
        CallerDeadline {
            source: Some(source),
            deadline: deadline.unwrap_or_else(far_future),
        }
    }

    /// The request's token: link the request scope to it.
    pub(crate) fn token(&self) -> CancellationToken {
        self.source
            .as_ref()
            .map_or_else(CancellationToken::none, CancellationSource::token)
    }

    /// When the caller's budget runs out.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The request was answered: nothing to cancel.
    pub(crate) fn complete(mut self) {
        if let Some(source) = self.source.take() {
            // Stops its timer without firing.
            drop(source);
        }
    }
}

impl Drop for CallerDeadline {
    fn drop(&mut self) {
        let Some(source) = self.source.take() else {
            return;
        };
        if source.is_cancelled() {
            if source
                .reason()
                .is_some_and(|r| r == CancelReason::RemoteDeadline)
            {
                tracing::debug!("request cancelled by the caller's deadline");
            }
            return;
        }
        if Instant::now() + RESET_TOLERANCE >= self.deadline {
            tracing::debug!("request cancelled by the caller's deadline");
            source.cancel_with(CancelReason::RemoteDeadline);
        } else {
            tracing::debug!("request cancelled: the caller left");
            source.cancel_with(CancelReason::ClientDisconnected);
        }
    }
}

fn far_future() -> Instant {
    // About 30 years, as tokio's own "far future".
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn fires_at_the_deadline_or_says_the_caller_left() {
        let deadline =
            CallerDeadline::start(Duration::from_millis(300), &CancellationToken::none());
        let token = deadline.token();
        assert_eq!(token.remaining(), Some(Duration::from_millis(300)));
        token.cancelled().await;
        assert_eq!(token.reason(), Some(CancelReason::RemoteDeadline));
        drop(deadline);

        let early = CallerDeadline::start(Duration::from_secs(5), &CancellationToken::none());
        let token = early.token();
        drop(early); // the caller went away
        assert_eq!(token.reason(), Some(CancelReason::ClientDisconnected));

        let answered = CallerDeadline::start(Duration::from_secs(5), &CancellationToken::none());
        let token = answered.token();
        answered.complete();
        assert_eq!(token.reason(), None);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_budget_too_large_for_the_clock_never_fires() {
        let deadline = CallerDeadline::start(Duration::MAX, &CancellationToken::none());
        tokio::time::sleep(Duration::from_secs(86_400 * 365)).await;
        assert!(!deadline.token().is_cancelled());
        deadline.complete();
    }
}
