//! Whether a process is ready for traffic: the state behind a `/readyz`
//! probe.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// The phase a [`Readiness`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadyState {
    /// Services are still starting: not ready yet.
    Starting,
    /// Every service started: ready for traffic.
    Ready,
    /// Shutdown has begun: not ready any more, and never again.
    Stopping,
}

impl fmt::Display for ReadyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadyState::Starting => "starting",
            ReadyState::Ready => "ready",
            ReadyState::Stopping => "stopping",
        })
    }
}

/// A shared readiness flag, cheap to clone and to read: what a `/readyz`
/// probe answers (see `taskscope::axum::probes`). A
/// [`ServiceSet`](super::ServiceSet) turns it `Ready` once its body has
/// started every service, and `Stopping` the moment shutdown begins, before
/// any service drains. `Stopping` is final.
///
/// ```
/// use taskscope::service::{Readiness, ReadyState};
///
/// let readiness = Readiness::new();
/// assert_eq!(readiness.state(), ReadyState::Starting);
/// readiness.set_ready();
/// assert!(readiness.is_ready());
/// readiness.set_stopping();
/// readiness.set_ready(); // too late: stopping is final
/// assert_eq!(readiness.state(), ReadyState::Stopping);
/// ```
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicU8>);

const STARTING: u8 = 0;
const READY: u8 = 1;
const STOPPING: u8 = 2;

impl Readiness {
    /// A new flag, `Starting`.
    pub fn new() -> Self {
        Readiness::default()
    }

    /// The current state.
    pub fn state(&self) -> ReadyState {
        match self.0.load(Ordering::Acquire) {
            STARTING => ReadyState::Starting,
            READY => ReadyState::Ready,
            _ => ReadyState::Stopping,
        }
    }

    /// Whether the state is `Ready`.
    pub fn is_ready(&self) -> bool {
        self.state() == ReadyState::Ready
    }

    /// `Starting` → `Ready`; no change once `Stopping`.
    pub fn set_ready(&self) {
        let _ = self
            .0
            .compare_exchange(STARTING, READY, Ordering::AcqRel, Ordering::Acquire);
    }

    /// → `Stopping`, for good.
    pub fn set_stopping(&self) {
        self.0.store(STOPPING, Ordering::Release);
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Readiness").field(&self.state()).finish()
    }
}
