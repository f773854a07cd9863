//! What happens when a service stops: whether it restarts, how long it
//! waits first, and how many restarts it may spend.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tokio::time::Instant;

/// When a [`Service`](super::Service) that stopped is started again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Restart {
    /// Never: a failure is final (see [`OnGiveUp`]).
    Never,
    /// After a failure, not after it returned `Ok` (the default).
    #[default]
    OnFailure,
    /// After a failure, and after it returned `Ok`: it is meant to run for
    /// as long as its scope. [`Service::every`](super::Service::every)
    /// implies it.
    Always,
}

/// What a service does once it will not be restarted after a failure: its
/// restart budget is spent, or its policy is [`Restart::Never`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnGiveUp {
    /// The failure fails the scope the service runs in, which stops the
    /// other services; under `#[taskscope::main]` the process exits with
    /// exit code 1 ([`host`](crate::host#exit-codes)). The default.
    #[default]
    FailScope,
    /// The failure is logged and the service stays stopped; the rest runs
    /// on.
    StopService,
}

/// How long a service waits before a restart: exponential, capped, with
/// jitter; or fixed.
///
/// The `n`th restart in a row waits `first × 2ⁿ⁻¹`, at most `max`, less a
/// random part of up to `jitter` of it (so that many services failing
/// together do not restart together). A run that lasted at least `max`
/// starts the count again.
///
/// ```
/// use std::time::Duration;
/// use taskscope::service::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_millis(100))
///     .max(Duration::from_secs(1))
///     .jitter(0.0);
/// assert_eq!(backoff.delay(1), Duration::from_millis(100));
/// assert_eq!(backoff.delay(3), Duration::from_millis(400));
/// assert_eq!(backoff.delay(10), Duration::from_secs(1)); // capped
///
/// let fixed = Backoff::fixed(Duration::from_secs(30));
/// assert_eq!(fixed.delay(7), Duration::from_secs(30));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    exponential: bool,
    jitter: f64,
}

impl Default for Backoff {
    /// Exponential from 100 ms, at most 30 s, with 20 % jitter.
    fn default() -> Self {
        Backoff::exponential(Duration::from_millis(100))
    }
}

impl Backoff {
    /// Doubling from `first` on each restart in a row, at most 30 s unless
    /// [`max`](Backoff::max) says otherwise, with 20 % jitter.
    pub fn exponential(first: Duration) -> Self {
        Backoff {
            first,
            max: Duration::from_secs(30).max(first),
            exponential: true,
            jitter: 0.2,
        }
    }

    /// Always `delay`, without jitter.
    pub fn fixed(delay: Duration) -> Self {
        Backoff {
            first: delay,
            max: delay,
            exponential: false,
            jitter: 0.0,
        }
    }

    /// The longest wait. Any duration, `Duration::MAX` included.
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// The part of each wait that is random: `0.0` for none, `1.0` for
    /// anything from zero to the full wait. Values outside `0.0..=1.0` are
    /// clamped; NaN counts as `0.0`.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// The wait before the `restarts`th restart in a row (counted from 1;
    /// 0 is taken as 1).
    pub fn delay(&self, restarts: u32) -> Duration {
        let full = if self.exponential {
            let doublings = restarts.saturating_sub(1).min(31);
            self.first.saturating_mul(1 << doublings)
        } else {
            self.first
        };
        let full = full.min(self.max);
        if self.jitter == 0.0 {
            return full;
        }
        full.mul_f64(1.0 - self.jitter * random_unit())
    }

    /// How long a run must last for the count of restarts in a row to
    /// start again.
    pub(crate) fn settled_after(&self) -> Duration {
        self.max
    }
}

/// A number in `0.0..1.0`, different on each call: std's hasher keys are
/// random per process and change per `RandomState`.
fn random_unit() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u8(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// How many restarts after failures are allowed within a sliding window.
#[derive(Debug)]
pub(crate) struct RestartBudget {
    max: u32,
    window: Duration,
    /// When each restart still inside the window happened, oldest first.
    spent: VecDeque<Instant>,
}

impl RestartBudget {
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        RestartBudget {
            max,
            window,
            spent: VecDeque::new(),
        }
    }

    /// Spends one restart at `now`, or says the budget is spent.
    pub(crate) fn spend(&mut self, now: Instant) -> bool {
        // A window longer than the clock's past keeps every restart.
        if let Some(start) = now.checked_sub(self.window) {
            while self.spent.front().is_some_and(|&at| at <= start) {
                self.spent.pop_front();
            }
        }
        if self.spent.len() >= self.max as usize {
            return false;
        }
        self.spent.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_takes_any_duration() {
        let b = Backoff::exponential(Duration::from_secs(1)).jitter(0.0);
        assert_eq!(b.delay(0), Duration::from_secs(1));
        assert_eq!(b.delay(2), Duration::from_secs(2));
        assert_eq!(b.delay(6), Duration::from_secs(30));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
        let huge = Backoff::exponential(Duration::MAX).jitter(0.0);
        assert_eq!(huge.delay(40), Duration::MAX);
        let zero = Backoff::exponential(Duration::ZERO).max(Duration::ZERO);
        assert_eq!(zero.delay(5), Duration::ZERO);
        let uncapped = Backoff::exponential(Duration::from_secs(1))
            .max(Duration::MAX)
            .jitter(0.0);
        assert_eq!(uncapped.delay(40), Duration::from_secs(1 << 31));
    }

    #[test]
    fn jitter_only_shortens_and_is_clamped() {
        let b = Backoff::fixed(Duration::from_secs(10)).jitter(0.5);
        for _ in 0..200 {
            let d = b.delay(1);
            assert!(
                d <= Duration::from_secs(10) && d >= Duration::from_secs(5),
                "{d:?}"
            );
        }
        assert_eq!(
            Backoff::fixed(Duration::from_secs(1))
                .jitter(f64::NAN)
                .jitter,
            0.0
        );
        assert_eq!(
            Backoff::fixed(Duration::from_secs(1)).jitter(7.0).jitter,
            1.0
        );
        assert_eq!(
            Backoff::fixed(Duration::from_secs(1)).jitter(-1.0).jitter,
            0.0
        );
    }

    #[test]
    fn budget_slides_with_its_window() {
        let t0 = Instant::now();
        let mut budget = RestartBudget::new(2, Duration::from_secs(10));
        assert!(budget.spend(t0));
        assert!(budget.spend(t0 + Duration::from_secs(1)));
        assert!(!budget.spend(t0 + Duration::from_secs(2)));
        // The first restart leaves the window.
        assert!(budget.spend(t0 + Duration::from_secs(10)));
        assert!(!budget.spend(t0 + Duration::from_secs(10)));

        let mut none = RestartBudget::new(0, Duration::ZERO);
        assert!(!none.spend(t0));
        let mut forever = RestartBudget::new(1, Duration::MAX);
        assert!(forever.spend(t0));
        assert!(!forever.spend(t0 + Duration::from_secs(1_000_000)));
    }
}
