//! Starting a task and waiting until it is ready (Trio's `nursery.start`).
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
//! 2. A failure before `send` reaches exactly one side: the caller if it is
//!    still waiting, else the scope (the handover channel gives the error
//!    back when nobody receives it).

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::error::ScopeClosed;
use super::handle::ScopeHandle;
use super::task::TaskHandle;
use super::task_error::TaskError;
use super::typed::Scope;
use crate::cancel::{CancelReason, Cancelled};

/// Given to a task started with [`Scope::start`]: [`send`](Ready::send)
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

/// Why [`Scope::start`] returned without a value.
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

impl<E: TaskError> Scope<E> {
    /// Spawns a task named `name` and waits until it says it is ready,
    /// returning the value it gives [`Ready::send`] (Trio's
    /// `nursery.start`): a server binds its listener, sends the address,
    /// then serves. If the task fails before it is ready, its error is
    /// returned here ([`StartError::Failed`]) instead of failing the scope;
    /// if the future returned by `start` is dropped first, the task is
    /// cancelled. After `send` the task runs on as an ordinary task of the
    /// scope.
    ///
    /// ```
    /// use taskscope::{Cancelled, Ready};
    /// use tokio::net::TcpListener;
    ///
    /// async fn serve(ready: Ready<std::net::SocketAddr>) -> std::io::Result<()> {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     ready.send(listener.local_addr()?);
    ///     let token = taskscope::token();
    ///     while let Ok(accepted) = token.run_until_cancelled(listener.accept()).await {
    ///         drop(accepted?); // answer the connection
    ///     }
    ///     Ok(())
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::ScopeBuilder::new()
    ///     .cancel_on_exit(true)
    ///     .run(async |s| {
    ///         let addr = s.start("listener", serve).await.map_err(|e| e.into_error())?;
    ///         tokio::net::TcpStream::connect(addr).await?; // it is listening
    ///         Ok::<_, std::io::Error>(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    #[track_caller]
    pub fn start<T, F, Fut>(
        &self,
        name: impl Into<Arc<str>>,
        task: F,
    ) -> impl Future<Output = Result<T, StartError<E>>> + Send + 'static
    where
        F: FnOnce(Ready<T>) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        T: Send + 'static,
    {
        self.handle().start(name, task)
    }
}

impl<E: TaskError> ScopeHandle<E> {
    /// [`Scope::start`] from an owned handle.
    ///
    /// ```
    /// use taskscope::Cancelled;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let handle = s.handle();
    ///     let port = handle.start("config", |ready| async move {
    ///         ready.send(8080);
    ///         Ok(())
    ///     });
    ///     assert_eq!(port.await.map_err(|e| e.into_error())?, 8080);
    ///     Ok::<_, Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    #[track_caller]
    pub fn start<T, F, Fut>(
        &self,
        name: impl Into<Arc<str>>,
        task: F,
    ) -> impl Future<Output = Result<T, StartError<E>>> + Send + 'static
    where
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
        let spawned = self.try_spawn_named(name, async move {
            match future.await {
                // Invariant 2: to the caller if it still waits, else ours.
                Err(error) if !sent.load(Ordering::Acquire) => failed_tx.send(error),
                other => other,
            }
        });
        // Armed now, not at the first poll: a `start` future dropped
        // unpolled cancels its task too.
        let waiting = spawned.map(|task| CancelUnlessReady(Some(task)));
        async move {
            let waiting = waiting.map_err(StartError::Closed)?;
            match value_rx.await {
                Ok(value) => {
                    waiting.disarm();
                    Ok(value)
                }
                // `Ready` is gone unsent: the task's outcome says why.
                Err(_) => match failed_rx.await {
                    Ok(error) => Err(StartError::Failed(error)),
                    Err(_) => Err(StartError::NotReady),
                },
            }
        }
    }
}

/// Cancels a started task if its caller stops waiting before it is ready.
struct CancelUnlessReady<E>(Option<TaskHandle<'static, (), E>>);

impl<E> CancelUnlessReady<E> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl<E> Drop for CancelUnlessReady<E> {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.cancel_with(CancelReason::message(
                "the caller of `start` stopped waiting for it",
            ));
        }
    }
}
