//! Why a service, or a set of services, stopped for good.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::cancel::Cancelled;
use crate::scope::{BoxError, TaskError};

/// Why a service gave up, or why starting one failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServiceError {
    /// The service failed and its policy does not restart it
    /// ([`Restart::Never`](super::Restart::Never), or a failure while it
    /// was being stopped).
    Failed {
        /// The service's name.
        service: Arc<str>,
        /// Which run failed, counted from 1.
        attempt: u32,
        /// Its error.
        error: BoxError,
    },
    /// The service failed again after `restarts` restarts within `window`:
    /// its restart budget is spent.
    BudgetSpent {
        /// The service's name.
        service: Arc<str>,
        /// The restarts the budget allowed.
        restarts: u32,
        /// The window they were counted in.
        window: Duration,
        /// The last failure.
        error: BoxError,
    },
    /// A service given to [`ServiceSet::start`](super::ServiceSet::start)
    /// ended before it called [`ServiceContext::ready`](super::ServiceContext::ready).
    NotReady {
        /// The service's name.
        service: Arc<str>,
    },
    /// The services of a set cannot all stop within the shutdown grace
    /// period: what [`ServiceSet::check_shutdown_budget`](super::ServiceSet::check_shutdown_budget)
    /// returns (and the set logs once, as a warning).
    OverBudget {
        /// The unready delay plus every service's drain and grace periods.
        needed: Duration,
        /// The shutdown grace period.
        available: Duration,
        /// The services, in start order.
        services: Vec<Arc<str>>,
    },
    /// Work stopped because it was cancelled: not a failure of a service.
    Cancelled(Cancelled),
}

impl ServiceError {
    /// The name of the service it is about, if any.
    ///
    /// ```
    /// use taskscope::service::ServiceError;
    /// let err = ServiceError::NotReady { service: "http".into() };
    /// assert_eq!(err.service(), Some("http"));
    /// ```
    pub fn service(&self) -> Option<&str> {
        match self {
            ServiceError::Failed { service, .. }
            | ServiceError::BudgetSpent { service, .. }
            | ServiceError::NotReady { service } => Some(service),
            ServiceError::OverBudget { .. } | ServiceError::Cancelled(_) => None,
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Failed {
                service,
                attempt,
                error,
            } => write!(f, "service `{service}` failed (run {attempt}): {error}"),
            ServiceError::BudgetSpent {
                service,
                restarts,
                window,
                error,
            } => write!(
                f,
                "service `{service}` gave up: failed again after {restarts} restarts within {window:?}: {error}"
            ),
            ServiceError::NotReady { service } => {
                write!(f, "service `{service}` ended before it was ready")
            }
            ServiceError::OverBudget {
                needed,
                available,
                services,
            } => {
                write!(
                    f,
                    "stopping the services may take {needed:?} but the shutdown grace period \
                     is {available:?}; shorten the drain or grace periods of: "
                )?;
                for (i, service) in services.iter().enumerate() {
                    let separator = if i == 0 { "" } else { ", " };
                    write!(f, "{separator}{service}")?;
                }
                Ok(())
            }
            ServiceError::Cancelled(cancelled) => write!(f, "{cancelled}"),
        }
    }
}

impl Error for ServiceError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ServiceError::Failed { error, .. } | ServiceError::BudgetSpent { error, .. } => {
                Some(error.as_ref())
            }
            ServiceError::Cancelled(cancelled) => Some(cancelled),
            ServiceError::NotReady { .. } | ServiceError::OverBudget { .. } => None,
        }
    }
}

impl From<Cancelled> for ServiceError {
    fn from(cancelled: Cancelled) -> Self {
        ServiceError::Cancelled(cancelled)
    }
}

impl TaskError for ServiceError {
    fn is_cancellation(&self) -> bool {
        matches!(self, ServiceError::Cancelled(_))
    }
}
