//! The wire formats of a budget and a reason: gRPC's `grpc-timeout`, a
//! budget in milliseconds, and a cancel reason. Every parser takes untrusted
//! bytes, returns a [`WireError`] saying what is wrong, and never panics.

use std::fmt;
use std::time::Duration;

use crate::cancel::CancelReason;

/// Why a header value could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The value is empty.
    Empty,
    /// The value has more digits than the format allows.
    TooLong {
        /// The number of digits found.
        digits: usize,
        /// The most the format allows.
        max: usize,
    },
    /// The number does not fit 64 bits.
    TooLarge,
    /// A character that is not a digit where a digit was expected (a sign,
    /// a space, a dot, a non-ASCII byte).
    NotADigit,
    /// A `grpc-timeout` unit other than `H M S m u n`, or none.
    BadUnit,
    /// A cancel reason this library does not know.
    UnknownReason,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Empty => f.write_str("the value is empty"),
            WireError::TooLong { digits, max } => {
                write!(f, "{digits} digits, at most {max} are allowed")
            }
            WireError::TooLarge => f.write_str("the number is too large"),
            WireError::NotADigit => f.write_str("expected only the digits 0-9"),
            WireError::BadUnit => {
                f.write_str("expected a unit after the digits: one of H, M, S, m, u, n")
            }
            WireError::UnknownReason => f.write_str("not a known cancel reason"),
        }
    }
}

impl std::error::Error for WireError {}

/// The most digits a `grpc-timeout` value may have (gRPC's HTTP/2 spec).
const GRPC_DIGITS: usize = 8;

/// The largest number 8 digits hold.
const GRPC_MAX_VALUE: u64 = 99_999_999;

/// The `grpc-timeout` units, finest first, with their length.
const GRPC_UNITS: [(u8, Duration); 6] = [
    (b'n', Duration::from_nanos(1)),
    (b'u', Duration::from_micros(1)),
    (b'm', Duration::from_millis(1)),
    (b'S', Duration::from_secs(1)),
    (b'M', Duration::from_secs(60)),
    (b'H', Duration::from_secs(3600)),
];

/// Reads a `grpc-timeout` value: 1 to 8 ASCII digits and a unit, one of
/// `H` (hours), `M` (minutes), `S` (seconds), `m` (milliseconds), `u`
/// (microseconds) or `n` (nanoseconds).
pub(crate) fn parse_grpc_timeout(value: &[u8]) -> Result<Duration, WireError> {
    let Some((&unit, digits)) = value.split_last() else {
        return Err(WireError::Empty);
    };
    if unit.is_ascii_digit() {
        return Err(WireError::BadUnit);
    }
    let count = parse_digits(digits, GRPC_DIGITS)?;
    let (_, length) = GRPC_UNITS
        .iter()
        .find(|(symbol, _)| *symbol == unit)
        .ok_or(WireError::BadUnit)?;
    // At most 99,999,999 hours: fits a `Duration`, but saturate anyway.
    Ok(length.saturating_mul(u32::try_from(count).unwrap_or(u32::MAX)))
}

/// Writes `budget` as a `grpc-timeout` value, in the finest unit whose
/// count fits 8 digits, rounded *down* (a budget sent on is never longer
/// than the one held). Budgets beyond 99,999,999 hours are sent as that.
pub(crate) fn grpc_timeout(budget: Duration) -> String {
    for (symbol, length) in GRPC_UNITS {
        let count = budget.as_nanos() / length.as_nanos();
        if count <= u128::from(GRPC_MAX_VALUE) {
            return format!("{count}{}", symbol as char);
        }
    }
    format!("{GRPC_MAX_VALUE}H")
}

/// The most digits a budget in milliseconds may have: 20 fit a `u64`.
const MILLIS_DIGITS: usize = 20;

/// Reads a budget in whole milliseconds: 1 to 20 ASCII digits, nothing
/// else (no sign, no spaces, no fraction). Values beyond `u64` are an error.
pub(crate) fn parse_budget_millis(value: &[u8]) -> Result<Duration, WireError> {
    parse_digits(value, MILLIS_DIGITS).map(Duration::from_millis)
}

/// Writes `budget` as whole milliseconds, rounded down.
pub(crate) fn budget_millis(budget: Duration) -> String {
    let millis = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
    millis.to_string()
}

/// 1 to `max` ASCII digits as a number; anything else is an error.
fn parse_digits(digits: &[u8], max: usize) -> Result<u64, WireError> {
    if digits.is_empty() {
        return Err(WireError::Empty);
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(WireError::NotADigit);
    }
    if digits.len() > max {
        return Err(WireError::TooLong {
            digits: digits.len(),
            max,
        });
    }
    digits.iter().try_fold(0u64, |total, digit| {
        total
            .checked_mul(10)
            .and_then(|total| total.checked_add(u64::from(digit - b'0')))
            .ok_or(WireError::TooLarge)
    })
}

impl CancelReason {
    /// The response header a server names the reason it stopped a request
    /// in, `x-cancel-reason`, and a client reads it from: the value is
    /// [`to_wire`](CancelReason::to_wire)'s word.
    pub const WIRE_HEADER: &'static str = "x-cancel-reason";

    /// The reason as a header value: one word per kind (`deadline`,
    /// `timeout`, `shutdown`, `client-disconnected`, `sibling-failed` or
    /// `requested`), for the [root](CancelReason::root) reason; a message
    /// or a task's name is never sent.
    ///
    /// ```
    /// use taskscope::CancelReason;
    /// assert_eq!(CancelReason::RemoteDeadline.to_wire(), "deadline");
    /// assert_eq!(CancelReason::from_wire(b"shutdown"), Ok(CancelReason::Shutdown));
    /// assert!(CancelReason::from_wire(b"bored").is_err());
    /// ```
    pub fn to_wire(&self) -> &'static str {
        match self.root() {
            CancelReason::Timeout => "timeout",
            CancelReason::RemoteDeadline => "deadline",
            CancelReason::SiblingFailed(_) => "sibling-failed",
            CancelReason::Shutdown => "shutdown",
            CancelReason::ClientDisconnected => "client-disconnected",
            _ => "requested",
        }
    }

    /// Reads a reason written by [`to_wire`](CancelReason::to_wire) (for
    /// `sibling-failed`, a message saying a task of the remote service
    /// failed). Untrusted bytes: anything else is a [`WireError`].
    pub fn from_wire(value: &[u8]) -> Result<CancelReason, WireError> {
        Ok(match value {
            b"" => return Err(WireError::Empty),
            b"timeout" => CancelReason::Timeout,
            b"deadline" => CancelReason::RemoteDeadline,
            b"sibling-failed" => CancelReason::message("a task of the remote service failed"),
            b"shutdown" => CancelReason::Shutdown,
            b"client-disconnected" => CancelReason::ClientDisconnected,
            b"requested" => CancelReason::requested(),
            _ => return Err(WireError::UnknownReason),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_reads_and_the_largest_value_fits() {
        for (symbol, length) in GRPC_UNITS {
            let value = format!("99999999{}", symbol as char);
            assert_eq!(
                parse_grpc_timeout(value.as_bytes()),
                Ok(length * 99_999_999)
            );
        }
        assert_eq!(parse_grpc_timeout(b"0n"), Ok(Duration::ZERO));
        assert_eq!(parse_grpc_timeout(b"00000001S"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        assert_eq!(parse_grpc_timeout(b""), Err(WireError::Empty));
        assert_eq!(parse_grpc_timeout(b"S"), Err(WireError::Empty));
        assert_eq!(parse_grpc_timeout(b"100"), Err(WireError::BadUnit));
        assert_eq!(parse_grpc_timeout(b"1.5S"), Err(WireError::NotADigit));
        assert_eq!(parse_grpc_timeout(b"1 S"), Err(WireError::NotADigit));
        assert_eq!(
            parse_grpc_timeout("1é".as_bytes()),
            Err(WireError::NotADigit)
        );
        assert_eq!(
            parse_budget_millis(b"18446744073709551615"),
            Ok(Duration::from_millis(u64::MAX))
        );
        assert_eq!(
            parse_budget_millis(b"18446744073709551616"),
            Err(WireError::TooLarge)
        );
        assert!(matches!(
            parse_budget_millis(b"123456789012345678901"),
            Err(WireError::TooLong {
                digits: 21,
                max: 20
            })
        ));
        assert_eq!(parse_budget_millis(b"-5"), Err(WireError::NotADigit));
        assert_eq!(parse_budget_millis(b"+5"), Err(WireError::NotADigit));
        assert_eq!(
            CancelReason::from_wire(b"bored"),
            Err(WireError::UnknownReason)
        );
    }

    #[test]
    fn encoding_picks_the_finest_unit_that_fits_and_never_rounds_up() {
        assert_eq!(grpc_timeout(Duration::from_nanos(99_999_999)), "99999999n");
        assert_eq!(grpc_timeout(Duration::from_nanos(100_000_001)), "100000u");
        assert_eq!(grpc_timeout(Duration::from_secs(200_000)), "200000S");
        assert_eq!(
            grpc_timeout(Duration::from_secs(100_000 * 3600)),
            "6000000M"
        );
    }
}
