//! How a server reads the budget its caller sent, and how a client writes
//! the budget it has left.

use std::borrow::Cow;
use std::time::Duration;

use super::wire::{self, WireError};
use crate::cancel::{CancelReason, CancellationToken, Cancelled};

/// The header a budget travels in over HTTP unless told otherwise: the
/// milliseconds the caller still allows, as a decimal number.
pub const BUDGET_HEADER: &str = "x-request-budget-ms";

/// gRPC's deadline header.
pub const GRPC_TIMEOUT_HEADER: &str = "grpc-timeout";

/// The response header that says why a server stopped a request
/// ([`reason_to_wire`](super::reason_to_wire)): `deadline`, `timeout`,
/// `shutdown`, `client-disconnected`, `sibling-failed` or `requested`.
pub const REASON_HEADER: &str = "x-cancel-reason";

/// How a client keeps back for the trip unless told otherwise: 5 ms.
pub const DEFAULT_MARGIN: Duration = Duration::from_millis(5);

/// How a budget is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Millis,
    Grpc,
}

impl Format {
    fn parse(self, value: &[u8]) -> Result<Duration, WireError> {
        match self {
            Format::Millis => wire::parse_budget_millis(value),
            Format::Grpc => wire::parse_grpc_timeout(value),
        }
    }

    fn write(self, budget: Duration) -> String {
        match self {
            Format::Millis => wire::budget_millis(budget),
            Format::Grpc => wire::grpc_timeout(budget),
        }
    }
}

/// What a server makes of a request's budget header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundBudget {
    /// The request carries no budget.
    Unbounded,
    /// The budget is at or below the minimum: the request must not run.
    Expired,
    /// The time the caller allows, clamped to the server's maximum.
    Within(Duration),
}

/// How a server reads the budget its caller sent: the header, its format,
/// a maximum it clamps to, and a minimum at or below which a request counts
/// as already expired.
///
/// ```
/// use std::time::Duration;
/// use taskscope::remote::{Inbound, InboundBudget};
///
/// let inbound = Inbound::http()
///     .header("x-envoy-expected-rq-timeout-ms")
///     .max(Duration::from_secs(30))
///     .min(Duration::from_millis(2));
/// assert_eq!(inbound.read(Some(b"250")), Ok(InboundBudget::Within(Duration::from_millis(250))));
/// assert_eq!(inbound.read(Some(b"90000")), Ok(InboundBudget::Within(Duration::from_secs(30))));
/// assert_eq!(inbound.read(Some(b"2")), Ok(InboundBudget::Expired));
/// assert_eq!(inbound.read(None), Ok(InboundBudget::Unbounded));
/// assert!(inbound.read(Some(b"soon")).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct Inbound {
    header: Cow<'static, str>,
    format: Format,
    max: Option<Duration>,
    min: Duration,
}

impl Inbound {
    /// A budget in milliseconds in [`BUDGET_HEADER`]; no maximum; zero
    /// counts as expired.
    pub fn http() -> Self {
        Inbound {
            header: Cow::Borrowed(BUDGET_HEADER),
            format: Format::Millis,
            max: None,
            min: Duration::ZERO,
        }
    }

    /// gRPC's `grpc-timeout`; no maximum; zero counts as expired.
    pub fn grpc() -> Self {
        Inbound {
            header: Cow::Borrowed(GRPC_TIMEOUT_HEADER),
            format: Format::Grpc,
            max: None,
            min: Duration::ZERO,
        }
    }

    /// Reads the budget from the header `name` (lowercase) instead, in the
    /// same format: Envoy's `x-envoy-expected-rq-timeout-ms`, say.
    pub fn header(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.header = name.into();
        self
    }

    /// The longest budget the server grants; longer ones are clamped to it.
    pub fn max(mut self, max: Duration) -> Self {
        self.max = Some(max);
        self
    }

    /// A budget at or below `min` counts as already expired: too little to
    /// do anything useful in.
    pub fn min(mut self, min: Duration) -> Self {
        self.min = min;
        self
    }

    /// The header the budget is read from.
    pub fn header_name(&self) -> &str {
        &self.header
    }

    /// What the header's value (`None`: no header) says, or why it cannot
    /// be read.
    pub fn read(&self, value: Option<&[u8]>) -> Result<InboundBudget, WireError> {
        let Some(value) = value else {
            return Ok(InboundBudget::Unbounded);
        };
        let budget = self.format.parse(value)?;
        // Clamped first: a maximum of zero leaves nothing to run in.
        let budget = self.max.map_or(budget, |max| budget.min(max));
        if budget <= self.min {
            return Ok(InboundBudget::Expired);
        }
        Ok(InboundBudget::Within(budget))
    }
}

/// How a client writes the budget it has left: the header, its format, and
/// a margin kept back for the trip, so that the callee gives up a little
/// before the caller does.
///
/// ```
/// use std::time::Duration;
/// use taskscope::remote::Outbound;
/// use taskscope::CancellationSource;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let request = CancellationSource::with_timeout(Duration::from_millis(300));
/// let outbound = Outbound::grpc().margin(Duration::from_millis(20));
/// let value = outbound.value_for(&request.token()).unwrap();
/// assert_eq!(value.as_deref(), Some("280000u")); // 280 ms, in µs: the finest unit that fits 8 digits
/// assert_eq!(Outbound::http().value_for(&taskscope::CancellationToken::none()), Ok(None));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Outbound {
    header: Cow<'static, str>,
    format: Format,
    margin: Duration,
}

impl Outbound {
    /// Milliseconds in [`BUDGET_HEADER`], with [`DEFAULT_MARGIN`].
    pub fn http() -> Self {
        Outbound {
            header: Cow::Borrowed(BUDGET_HEADER),
            format: Format::Millis,
            margin: DEFAULT_MARGIN,
        }
    }

    /// gRPC's `grpc-timeout`, with [`DEFAULT_MARGIN`].
    pub fn grpc() -> Self {
        Outbound {
            header: Cow::Borrowed(GRPC_TIMEOUT_HEADER),
            format: Format::Grpc,
            margin: DEFAULT_MARGIN,
        }
    }

    /// Writes the budget into the header `name` (lowercase) instead.
    pub fn header(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.header = name.into();
        self
    }

    /// The time kept back for the trip at each hop (any duration).
    pub fn margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The header the budget is written to.
    pub fn header_name(&self) -> &str {
        &self.header
    }

    /// The time kept back for the trip.
    pub fn margin_value(&self) -> Duration {
        self.margin
    }

    /// The header value for a call made under `token`: `None` if it has no
    /// deadline; [`Cancelled`] if it has fired, or if what is left after the
    /// margin is nothing (the call must not be sent, nor retried).
    pub fn value_for(&self, token: &CancellationToken) -> Result<Option<String>, Cancelled> {
        token.check()?;
        let Some(remaining) = token.remaining() else {
            return Ok(None);
        };
        let budget = remaining.saturating_sub(self.margin);
        if budget.is_zero() {
            return Err(Cancelled::new(CancelReason::Timeout));
        }
        Ok(Some(self.format.write(budget)))
    }

    /// The cancellation a call reports once its callee said the budget it
    /// was given ran out (`remote`, a timeout). That budget was the
    /// caller's less the margin, so the caller's own deadline is about a
    /// margin away: this waits for it (at most twice the margin) and
    /// returns the caller's own cancellation, so that every token along a
    /// chain fires at its own deadline and the caller sees its own reason.
    /// Otherwise (not a timeout, no deadline here, or the callee clamped
    /// the budget) it returns `remote` at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::remote::Outbound;
    /// use taskscope::{CancelReason, CancellationSource, Cancelled};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let request = CancellationSource::with_timeout(Duration::from_millis(100));
    /// tokio::time::sleep(Duration::from_millis(95)).await; // the callee gave up at 95 ms
    /// let remote = Cancelled::new(CancelReason::RemoteDeadline);
    /// let mine = Outbound::http().settle(&request.token(), remote).await;
    /// assert_eq!(mine.reason(), &CancelReason::Timeout); // this side's own deadline
    /// # }
    /// ```
    pub async fn settle(&self, token: &CancellationToken, remote: Cancelled) -> Cancelled {
        if remote.is_timeout() && token.deadline().is_some() {
            let wait = self.margin.saturating_mul(2).max(Duration::from_millis(1));
            if tokio::time::timeout(wait, token.cancelled()).await.is_ok() {
                if let Some(reason) = token.reason() {
                    return Cancelled::new(reason);
                }
            }
        }
        remote
    }
}
