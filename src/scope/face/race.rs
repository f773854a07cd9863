//! Racing tasks: the first success wins and cancels the rest.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::{Arc, Mutex, PoisonError};

use crate::cancel::{CancelReason, CancellationToken, Cancelled};
use crate::scope::engine::settings::{Policy, TaskName};
use crate::scope::face::scope::Scope;
use crate::scope::face::scope_builder::ScopeBuilder;
use crate::scope::face::scope_error::ScopeError;
use crate::scope::run::spawn;
use crate::scope::task_error::TaskError;

/// What a [`race`] body uses to enter contestants.
pub struct Racer<'scope, T, E> {
    scope: &'scope Scope<E>,
    winner: Arc<Mutex<Option<T>>>,
}

impl<T: Send + 'static, E: TaskError> Racer<'_, T, E> {
    /// Enters `future` in the race as a task of the race's scope. The first
    /// contestant to return `Ok` wins; the others are cancelled (reason: a
    /// message naming the winner) and joined. A contestant's error cancels
    /// nobody.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let winner = taskscope::race(async |r| {
    ///     r.spawn(async { Ok::<_, taskscope::Cancelled>("only one") });
    ///     Ok(())
    /// })
    /// .await
    /// .unwrap();
    /// assert_eq!(winner, "only one");
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F)
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let name = TaskName::at(Location::caller());
        let winner = Arc::clone(&self.winner);
        let scope = self.scope.handle();
        let announced = name.clone();
        let contestant = async move {
            let value = future.await?;
            let mut slot = winner.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(value);
                drop(slot);
                scope.cancel_with(CancelReason::message(format!(
                    "another task won the race ({announced})"
                )));
            }
            Ok::<(), E>(())
        };
        // No handle is kept: a contestant's error stays with the scope.
        let spawned = spawn::spawn(self.scope.engine(), name, contestant, None);
        drop(spawned.expect("a race's scope is open while its body runs"));
    }

    /// The race's scope token.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let _ = taskscope::race(async |r| {
    ///     assert!(!r.token().is_cancelled());
    ///     r.spawn(async { Ok::<_, taskscope::Cancelled>(()) });
    ///     Ok(())
    /// })
    /// .await;
    /// # }
    /// ```
    pub fn token(&self) -> CancellationToken {
        self.scope.token()
    }
}

/// Races the contestants the body enters with [`Racer::spawn`]: returns the
/// first success and cancels (and joins) the rest. If every contestant
/// fails, returns [`RaceError::Failed`] with the scope's error (every
/// contestant's); [`RaceError::NoContestants`] if none was entered.
///
/// ```
/// use std::time::Duration;
///
/// async fn mirror(name: &'static str, latency_ms: u64) -> std::io::Result<&'static str> {
///     let token = taskscope::token();
///     token.run_until_cancelled(tokio::time::sleep(Duration::from_millis(latency_ms))).await?;
///     Ok(name)
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let fastest = taskscope::race(async |r| {
///     r.spawn(mirror("eu", 120));
///     r.spawn(mirror("us", 40));
///     Ok(())
/// })
/// .await
/// .unwrap();
/// assert_eq!(fastest, "us");
/// # }
/// ```
#[track_caller]
pub fn race<T, E, F>(body: F) -> impl Future<Output = Result<T, RaceError<E>>>
where
    F: AsyncFnOnce(&Racer<'_, T, E>) -> Result<(), E>,
    T: Send + 'static,
    E: TaskError,
{
    ScopeBuilder::new().race(body)
}

/// Runs `body` as a race in a scope opened by `builder`: what
/// [`ScopeBuilder::race`] does.
pub(crate) async fn race_in<T, E, F, const BOUNDED: bool>(
    builder: ScopeBuilder<BOUNDED>,
    body: F,
) -> Result<T, RaceError<E>>
where
    F: AsyncFnOnce(&Racer<'_, T, E>) -> Result<(), E>,
    T: Send + 'static,
    E: TaskError,
{
    let winner = Arc::new(Mutex::new(None));
    let result = builder
        .policy(Policy::Supervise)
        .run(async |scope: &Scope<E>| {
            let racer = Racer {
                scope,
                winner: Arc::clone(&winner),
            };
            body(&racer).await
        })
        .await;
    let won = winner.lock().unwrap_or_else(PoisonError::into_inner).take();
    match (won, result) {
        (Some(value), _) => Ok(value),
        (None, Err(error)) => Err(RaceError::Failed(error)),
        // Every contestant either won or failed: no winner, no failure
        // means there was nobody.
        (None, Ok(())) => Err(RaceError::NoContestants),
    }
}

/// Why a [`race`] has no winner.
#[derive(Debug)]
#[non_exhaustive]
pub enum RaceError<E> {
    /// Every contestant failed, or the race's scope failed or timed out:
    /// the scope's error, with every contestant's error.
    Failed(ScopeError<E>),
    /// The body entered no contestant.
    NoContestants,
}

impl<E> RaceError<E> {
    /// Every error, in the order they happened (none for `NoContestants`).
    ///
    /// ```
    /// use taskscope::{RaceError, ScopeError};
    /// let err = RaceError::Failed(ScopeError::Failed { first: "a", later: vec!["b"] });
    /// assert_eq!(err.into_errors(), vec!["a", "b"]);
    /// assert!(RaceError::<&str>::NoContestants.into_errors().is_empty());
    /// ```
    pub fn into_errors(self) -> Vec<E> {
        match self {
            RaceError::Failed(error) => error.into_errors(),
            RaceError::NoContestants => Vec::new(),
        }
    }

    /// One error of the contestants' type, for `?`: the first failure;
    /// [`Cancelled`] saying so for a race with no contestants.
    ///
    /// ```
    /// use taskscope::RaceError;
    /// let none = RaceError::<std::io::Error>::NoContestants.into_error();
    /// assert!(none.to_string().contains("no contestant"));
    /// ```
    pub fn into_error(self) -> E
    where
        E: From<Cancelled>,
    {
        match self {
            RaceError::Failed(error) => error.into_error(),
            RaceError::NoContestants => Cancelled::new(CancelReason::message(
                "a race with no contestant has no winner",
            ))
            .into(),
        }
    }
}

impl<E> From<ScopeError<E>> for RaceError<E> {
    fn from(error: ScopeError<E>) -> Self {
        RaceError::Failed(error)
    }
}

impl<E: fmt::Display + TaskError> fmt::Display for RaceError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaceError::Failed(error) => write!(f, "every contestant failed: {error}"),
            RaceError::NoContestants => f.write_str("a race with no contestant has no winner"),
        }
    }
}

impl<E: Error + TaskError> Error for RaceError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            RaceError::Failed(ScopeError::Failed { first, .. }) => Some(first),
            _ => None,
        }
    }
}
