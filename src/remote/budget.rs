//! How a server reads the budget its caller sent, and how a client writes
//! the budget it has left.

use std::borrow::Cow;
use std::time::Duration;

use super::baggage;
use super::deadline::RESET_TOLERANCE;
use super::request::Refusal;
use super::wire::{self, WireError};
use crate::cancel::{CancelReason, CancellationToken, Cancelled};
use crate::scope::current_scope;

/// The header a budget travels in over HTTP unless told otherwise: the
/// milliseconds the caller still allows, as a decimal number.
const BUDGET_HEADER: &str = "x-request-budget-ms";

/// gRPC's deadline header.
const GRPC_TIMEOUT_HEADER: &str = "grpc-timeout";

/// How a client keeps back for the trip unless told otherwise.
const DEFAULT_MARGIN: Duration = Duration::from_millis(5);

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

/// How a server reads the budget its caller sent: the header, its format,
/// a maximum it clamps to, and a minimum at or below which a request counts
/// as already expired.
///
/// ```
/// use std::time::Duration;
/// use taskscope::remote::{Inbound, Refusal};
/// use taskscope::CancelReason;
///
/// let inbound = Inbound::http()
///     .header("x-envoy-expected-rq-timeout-ms")
///     .max(Duration::from_secs(30))
///     .min(Duration::from_millis(2));
/// assert_eq!(inbound.read(Some(b"250")), Ok(Some(Duration::from_millis(250))));
/// assert_eq!(inbound.read(Some(b"90000")), Ok(Some(Duration::from_secs(30)))); // clamped
/// assert_eq!(inbound.read(Some(b"2")), Err(Refusal::Expired(CancelReason::RemoteDeadline)));
/// assert_eq!(inbound.read(None), Ok(None)); // no budget: no deadline
/// assert!(matches!(inbound.read(Some(b"soon")), Err(Refusal::Malformed { .. })));
/// ```
#[derive(Clone, Debug)]
pub struct Inbound {
    header: Cow<'static, str>,
    format: Format,
    max: Option<Duration>,
    min: Duration,
}

impl Inbound {
    /// A budget in milliseconds in `x-request-budget-ms`; no maximum; zero
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

    /// The budget the header's value (`None`: no header) grants, clamped
    /// to the maximum: `Ok(None)` for no header; otherwise the budget, or
    /// why the request must be refused: [`Refusal::Malformed`] if the value
    /// cannot be read, [`Refusal::Expired`] (with
    /// [`CancelReason::RemoteDeadline`]) if it is at or below the minimum.
    pub fn read(&self, value: Option<&[u8]>) -> Result<Option<Duration>, Refusal> {
        let Some(value) = value else {
            return Ok(None);
        };
        let budget = self.parse(value).map_err(|error| Refusal::Malformed {
            header: self.header.clone(),
            error,
        })?;
        // Clamped first: a maximum of zero leaves nothing to run in.
        let budget = self.max.map_or(budget, |max| budget.min(max));
        if budget <= self.min {
            return Err(Refusal::Expired(CancelReason::RemoteDeadline));
        }
        Ok(Some(budget))
    }

    /// The value in this format, without the maximum and minimum: for
    /// `grpc-timeout`, 1 to 8 ASCII digits and a unit (`H M S m u n`); for
    /// milliseconds, 1 to 20 ASCII digits. No sign, space or fraction.
    /// Untrusted bytes: anything else is a [`WireError`], never a panic.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::remote::{Inbound, WireError};
    ///
    /// assert_eq!(Inbound::grpc().parse(b"300m"), Ok(Duration::from_millis(300)));
    /// assert_eq!(Inbound::grpc().parse(b"2H"), Ok(Duration::from_secs(7200)));
    /// assert_eq!(Inbound::grpc().parse(b"123456789S"), Err(WireError::TooLong { digits: 9, max: 8 }));
    /// assert_eq!(Inbound::grpc().parse(b"10x"), Err(WireError::BadUnit));
    /// assert_eq!(Inbound::http().parse(b"1500"), Ok(Duration::from_millis(1500)));
    /// assert_eq!(Inbound::http().parse(b" 15"), Err(WireError::NotADigit));
    /// ```
    pub fn parse(&self, value: &[u8]) -> Result<Duration, WireError> {
        self.format.parse(value)
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
    /// Milliseconds in `x-request-budget-ms`, with a margin of 5 ms.
    pub fn http() -> Self {
        Outbound {
            header: Cow::Borrowed(BUDGET_HEADER),
            format: Format::Millis,
            margin: DEFAULT_MARGIN,
        }
    }

    /// gRPC's `grpc-timeout`, with a margin of 5 ms.
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

    /// The `baggage` header value for a call made from the current scope:
    /// every scope-local value it sees whose key travels
    /// ([`ScopeLocal::across_processes`](crate::ScopeLocal::across_processes));
    /// `None` when there is none (or outside any scope).
    ///
    /// ```
    /// use taskscope::{remote::Outbound, ScopeBuilder, ScopeLocal};
    ///
    /// static TENANT: ScopeLocal<String> =
    ///     ScopeLocal::new("tenant").across_processes(|t| t.clone(), |s| Some(s.to_owned()));
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// assert_eq!(Outbound::http().baggage(), None);
    /// ScopeBuilder::new()
    ///     .bind(&TENANT, "acme corp".to_owned())
    ///     .run(async |_| {
    ///         assert_eq!(Outbound::http().baggage().as_deref(), Some("tenant=acme%20corp"));
    ///         Ok::<_, taskscope::Cancelled>(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub fn baggage(&self) -> Option<String> {
        let values = current_scope()?.outgoing_values();
        baggage::format(values.iter().map(|(name, value)| (*name, value.as_str())))
    }

    /// Whether what is left of `token`'s deadline is within one trip of
    /// it (twice the margin, plus 20 ms for a caller that gave up a trip
    /// early): a callee's `CANCELLED` without a reason now is most likely
    /// its own enforcement of the budget this side sent.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::{remote::Outbound, CancellationSource};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let request = CancellationSource::with_timeout(Duration::from_secs(1));
    /// assert!(!Outbound::grpc().near_deadline(&request.token()));
    /// tokio::time::sleep(Duration::from_millis(985)).await;
    /// assert!(Outbound::grpc().near_deadline(&request.token()));
    /// // Extreme margins: MAX is always near, ZERO only within the 20 ms.
    /// assert!(Outbound::grpc().margin(Duration::MAX).near_deadline(&request.token()));
    /// assert!(Outbound::grpc().margin(Duration::ZERO).near_deadline(&request.token()));
    /// // No deadline: never near.
    /// assert!(!Outbound::grpc().margin(Duration::MAX).near_deadline(&taskscope::CancellationToken::none()));
    /// # }
    /// ```
    pub fn near_deadline(&self, token: &CancellationToken) -> bool {
        token.remaining().is_some_and(|left| {
            left <= self
                .margin
                .saturating_mul(2)
                .saturating_add(RESET_TOLERANCE)
        })
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
        Ok(Some(self.encode(budget)))
    }

    /// `budget` in this format, rounded *down* (a budget sent on is never
    /// longer than the one held): whole milliseconds, or for
    /// `grpc-timeout` the finest unit whose count fits 8 digits (beyond
    /// 99,999,999 hours, that). The margin is not applied.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::remote::Outbound;
    ///
    /// assert_eq!(Outbound::grpc().encode(Duration::from_millis(300)), "300000u");
    /// assert_eq!(Outbound::grpc().encode(Duration::ZERO), "0n");
    /// assert_eq!(Outbound::grpc().encode(Duration::MAX), "99999999H");
    /// assert_eq!(Outbound::http().encode(Duration::from_micros(2_999)), "2");
    /// ```
    pub fn encode(&self, budget: Duration) -> String {
        self.format.write(budget)
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
