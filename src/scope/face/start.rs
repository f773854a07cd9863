//! Starting a task and waiting until it is ready.
//!
//! The task gets a [`Ready`] and calls [`Ready::send`] with a value (a bound
//! address, say) once the caller may go on. Until then it belongs to the
//! caller: a failure before `send` is returned by `start` and not recorded
//! by the scope, and if the caller stops waiting the task is cancelled.
//! After `send` it is an ordinary task of the scope.
//!
//! # Invariants
//!
//! 1. `sent` is set before the value is sent: once the caller has the value,
//!    a later failure of the task is the scope's, never lost between the two.
//! 2. A failure before `send` reaches exactly one side: the caller if it
//!    receives it, else the scope. The handover channel gives the error back
//!    to the task when the caller has gone; one handed over just before the
//!    caller went is taken back by the caller's drop and given to the scope.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;

use tokio::sync::OwnedSemaphorePermit;

use crate::cancel::{CancelReason, Cancelled};
use crate::scope::engine::settings::TaskName;
use crate::scope::engine::Engine;
use crate::scope::face::scope_error::ScopeClosed;
use crate::scope::face::task_handle::TaskHandle;
use crate::scope::run::spawn;
use crate::scope::task_error::TaskError;

/// Given to a task started with [`Scope::start`](crate::Scope::start): [`send`](Ready::send)
/// says the task is ready and hands its caller a value.
#[must_use = "the caller of `start` waits until `send` is called"]
pub struct Ready<T> {
    value: oneshot::Sender<T>,
    sent: Arc<AtomicBool>,
}

impl<T> Ready<T> {
    /// Tells the caller of `start` the task is ready, and gives it `value`.
    /// From now on a failure of the task is the scope's, like any task's.
    pub fn send(self, value: T) {
        // Invariant 1: the flag first.
        self.sent.store(true, Ordering::Release);
        // The caller may have stopped waiting; the task was then cancelled.
        let _ = self.value.send(value);
    }
}

impl<T> fmt::Debug for Ready<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ready").finish_non_exhaustive()
    }
}

/// Why [`Scope::start`](crate::Scope::start) returned without a value.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError<E> {
    /// The task failed before it was ready; this is its error (the scope
    /// does not see it).
    Failed(E),
    /// The task ended without calling [`Ready::send`]: it returned `Ok`,
    /// panicked (the scope resumes the panic when it exits) or dropped its
    /// `Ready` and then finished.
    NotReady,
    /// The scope had already finished; nothing was started.
    Closed(ScopeClosed),
}

impl<E> StartError<E> {
    /// One error of the task's type, for `?`: the task's own error, or a
    /// [`Cancelled`] saying why there is none.
    ///
    /// ```
    /// use std::io;
    /// use taskscope::StartError;
    ///
    /// let err = StartError::Failed(io::Error::other("address in use"));
    /// assert_eq!(err.into_error().to_string(), "address in use");
    /// ```
    pub fn into_error(self) -> E
    where
        E: From<Cancelled>,
    {
        match self {
            StartError::Failed(error) => error,
            StartError::NotReady => Cancelled::new(CancelReason::message(
                "the started task ended before it was ready",
            ))
            .into(),
            StartError::Closed(closed) => {
                Cancelled::new(CancelReason::message(closed.to_string())).into()
            }
        }
    }
}

impl<E: fmt::Display> fmt::Display for StartError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Failed(error) => write!(f, "failed before it was ready: {error}"),
            StartError::NotReady => f.write_str("the started task ended before it was ready"),
            StartError::Closed(closed) => write!(f, "{closed}"),
        }
    }
}

impl<E: Error + 'static> Error for StartError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            StartError::Failed(error) => Some(error),
            _ => None,
        }
    }
}

/// Spawns `task` into `engine`'s scope (holding `permit`, if any, while it
/// runs) and waits until it is ready: the one implementation behind every
/// receiver's `start`.
pub(crate) fn start<T, E, F, Fut>(
    engine: &Arc<Engine>,
    name: TaskName,
    permit: Option<OwnedSemaphorePermit>,
    task: F,
) -> impl Future<Output = Result<T, StartError<E>>> + Send + 'static
where
    E: TaskError,
    F: FnOnce(Ready<T>) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    T: Send + 'static,
{
    let (value_tx, value_rx) = oneshot::channel();
    let (failed_tx, failed_rx) = oneshot::channel::<E>();
    let sent = Arc::new(AtomicBool::new(false));
    let future = task(Ready {
        value: value_tx,
        sent: Arc::clone(&sent),
    });
    let task = async move {
        match future.await {
            // Invariant 2: to the caller if it still waits, else ours.
            Err(error) if !sent.load(Ordering::Acquire) => failed_tx.send(error),
            other => other,
        }
    };
    let spawned = spawn::spawn(engine, name.clone(), task, permit);
    // Armed now, not at the first poll: a `start` future dropped unpolled
    // cancels its task too.
    let waiting = spawned.map(|spawned| Waiting {
        task: Some(TaskHandle::owned(Arc::clone(engine), spawned, name.clone())),
        failed: failed_rx,
        engine: Arc::clone(engine),
        name,
    });
    async move {
        let mut waiting = waiting.map_err(StartError::Closed)?;
        let outcome = match value_rx.await {
            Ok(value) => Ok(value),
            // `Ready` is gone unsent: the task's outcome says why.
            Err(_) => match (&mut waiting.failed).await {
                Ok(error) => Err(StartError::Failed(error)),
                Err(_) => Err(StartError::NotReady),
            },
        };
        waiting.task = None;
        outcome
    }
}

/// The caller's side of a start while it waits. If the caller stops
/// waiting, it cancels the task, and a failure the task already handed over
/// goes back to the scope (invariant 2).
struct Waiting<E: TaskError> {
    /// `None` once the caller has its answer.
    task: Option<TaskHandle<'static, (), E>>,
    failed: oneshot::Receiver<E>,
    engine: Arc<Engine>,
    name: TaskName,
}

impl<E: TaskError> Drop for Waiting<E> {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        task.cancel_with(CancelReason::message(
            "the caller of `start` stopped waiting for it",
        ));
        // From here the task's send fails and it returns its error to the
        // scope itself; one sent before is taken back and given to the
        // scope as a task that fails at once (the scope is live: the task
        // that just failed is one of its own, and this caller with it).
        self.failed.close();
        if let Ok(error) = self.failed.try_recv() {
            let failing = async move { Err::<(), E>(error) };
            let _ = spawn::spawn(&self.engine, self.name.clone(), failing, None);
        }
    }
}
