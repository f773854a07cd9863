//! The server's side of a caller's deadline: a source that fires at it,
//! and the reason a request gets when its future is dropped.

use std::time::Duration;

use tokio::time::Instant;

use super::budget::{Inbound, InboundBudget};
use super::wire::WireError;
use crate::cancel::{CancelReason, CancellationSource, CancellationToken};

/// How close to its deadline a dropped request counts as stopped by the
/// deadline rather than by a caller that left: a caller enforcing the
/// budget it sent gives up one trip (loopback to a region away) before the
/// callee's clock says so.
pub const RESET_TOLERANCE: Duration = Duration::from_millis(20);

/// A request's deadline as its caller sent it, for a server's request
/// scope to link to: its token fires at the deadline with
/// [`CancelReason::RemoteDeadline`], and if the request's future is dropped
/// first (the caller reset the stream or closed the connection), dropping
/// this fires it with [`CancelReason::ClientDisconnected`], or with
/// `RemoteDeadline` if the deadline has passed or is less than
/// [`RESET_TOLERANCE`] away: a server framework that enforces the deadline
/// itself drops the future then, and a client that enforces the budget it
/// sent (tonic's channel does) resets the stream up to one trip early.
///
/// ```
/// use std::time::Duration;
/// use taskscope::remote::CallerDeadline;
/// use taskscope::{CancelReason, CancellationToken};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let deadline = CallerDeadline::start(Duration::from_millis(300), &CancellationToken::none());
/// let token = deadline.token();
/// assert_eq!(token.remaining(), Some(Duration::from_millis(300)));
/// token.cancelled().await; // at the deadline
/// assert_eq!(token.reason(), Some(CancelReason::RemoteDeadline));
///
/// let early = CallerDeadline::start(Duration::from_secs(5), &CancellationToken::none());
/// let token = early.token();
/// drop(early); // the caller went away
/// assert_eq!(token.reason(), Some(CancelReason::ClientDisconnected));
/// # }
/// ```
#[derive(Debug)]
pub struct CallerDeadline {
    source: Option<CancellationSource>,
    deadline: Instant,
    budget: Duration,
}

impl CallerDeadline {
    /// Starts the clock on `budget`, for a request whose token would
    /// otherwise be linked to `parent` (the server's token).
    pub fn start(budget: Duration, parent: &CancellationToken) -> Self {
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
            budget,
        }
    }

    /// The request's token: link the request scope to it.
    pub fn token(&self) -> CancellationToken {
        self.source
            .as_ref()
            .map_or_else(CancellationToken::none, CancellationSource::token)
    }

    /// When the caller's budget runs out.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The budget the caller sent (after clamping).
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// The request was answered: nothing to cancel.
    pub fn complete(mut self) {
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

/// Why a server answers a request at once, running nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The budget header cannot be read (answer 400 / `INVALID_ARGUMENT`).
    Malformed(WireError),
    /// The budget is spent, or at or below the server's minimum (answer 504
    /// / `DEADLINE_EXCEEDED`).
    Expired,
}

impl Inbound {
    /// What a server does with a request's budget header (`value`; `None`
    /// if absent): `Ok(None)`, no deadline; `Ok(Some(deadline))`, the
    /// caller's deadline, started now and linked below the token `linked`
    /// returns (called only then); or why the request must be refused. The
    /// one step the `axum` and `tonic` integrations share, for a server
    /// framework of your own.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::remote::{Inbound, Refusal};
    /// use taskscope::CancellationToken;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let inbound = Inbound::http();
    /// let deadline = inbound.begin(Some(b"250"), CancellationToken::none).unwrap().unwrap();
    /// assert_eq!(deadline.token().remaining(), Some(Duration::from_millis(250)));
    /// assert_eq!(inbound.begin(None, CancellationToken::none).unwrap().map(|d| d.budget()), None);
    /// assert_eq!(inbound.begin(Some(b"0"), CancellationToken::none).unwrap_err(), Refusal::Expired);
    /// assert!(matches!(inbound.begin(Some(b"x"), CancellationToken::none), Err(Refusal::Malformed(_))));
    /// # }
    /// ```
    pub fn begin(
        &self,
        value: Option<&[u8]>,
        linked: impl FnOnce() -> CancellationToken,
    ) -> Result<Option<CallerDeadline>, Refusal> {
        match self.read(value).map_err(Refusal::Malformed)? {
            InboundBudget::Unbounded => Ok(None),
            InboundBudget::Expired => Err(Refusal::Expired),
            InboundBudget::Within(budget) => Ok(Some(CallerDeadline::start(budget, &linked()))),
        }
    }
}
