//! A scope's fixed options: its name, failure policy, grace period,
//! warning delay and concurrency limit. Set once when the scope opens and
//! never changed, so every other part reads them without a lock.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use super::locals::Locals;
use crate::cancel::CancelReason;

/// What a scope does when a task fails.
///
/// ```
/// use taskscope::{Policy, ScopeBuilder};
/// let builder = ScopeBuilder::new().policy(Policy::Supervise);
/// # drop(builder);
/// assert_eq!(Policy::default(), Policy::FailFast);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    /// The first real error or panic cancels the scope (reason
    /// [`CancelReason::SiblingFailed`](crate::CancelReason::SiblingFailed));
    /// the scope joins everyone and returns that error first.
    #[default]
    FailFast,
    /// A task's error cancels nobody; errors are collected and returned when
    /// the scope ends. (Panics still cancel.)
    Supervise,
}

/// A task's or scope's name: where it was spawned or opened, and the name
/// it was given, if any.
#[derive(Clone)]
pub(crate) struct TaskName {
    given: Option<Arc<str>>,
    at: &'static Location<'static>,
}

impl TaskName {
    pub(crate) fn at(at: &'static Location<'static>) -> Self {
        TaskName { given: None, at }
    }

    pub(crate) fn named(name: Arc<str>, at: &'static Location<'static>) -> Self {
        TaskName {
            given: Some(name),
            at,
        }
    }

    /// The same location under another name.
    pub(crate) fn renamed(&self, name: Arc<str>) -> Self {
        TaskName::named(name, self.at)
    }

    /// Where it was spawned or opened.
    pub(crate) fn site(&self) -> &'static Location<'static> {
        self.at
    }

    pub(crate) fn given(&self) -> Option<&str> {
        self.given.as_deref()
    }

    pub(crate) fn location(&self) -> String {
        format!("{}:{}", self.at.file(), self.at.line())
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.given {
            Some(name) => f.write_str(name),
            None => write!(f, "{}:{}", self.at.file(), self.at.line()),
        }
    }
}

/// The options of one open scope.
pub(crate) struct Settings {
    pub(crate) name: TaskName,
    pub(crate) policy: Policy,
    /// Abort tasks still running this long after the scope was cancelled;
    /// `None` waits for them. `Duration::MAX` also means never.
    pub(crate) grace: Option<Duration>,
    /// Warn about laggards this long after the scope was cancelled;
    /// `Duration::MAX` means never.
    pub(crate) warn_after: Duration,
    /// The reason the scope is cancelled with if its future is dropped
    /// before it finished; `None` for the default message.
    pub(crate) dropped: Option<CancelReason>,
    /// Cancel the tasks still running when the body returns (instead of
    /// waiting for them).
    pub(crate) cancel_on_exit: bool,
    /// What it carries down (`None`: nothing bound or set here or above):
    /// its scope-local values, the shutdown grace and whether reports go
    /// to stderr, each from the nearest scope that set it.
    pub(crate) locals: Option<Arc<Locals>>,
}
