//! One service: its options, what it is given, and the loop of runs that
//! restarts it.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::error::ServiceError;
use super::policy::{Backoff, OnGiveUp, Restart, RestartBudget};
use crate::cancel::CancellationToken;
use crate::scope::{
    current_scope, BoxError, Ready, Scope, ScopeBuilder, ScopeError, ScopeHandle, TaskError,
};

/// A named, long-running piece of work with a restart policy: .NET's
/// `BackgroundService`, Erlang's supervised child.
///
/// The service is a function called once per *run*. It is given a
/// [`ServiceContext`] and returns `Result<(), E>`; each run is a scope of
/// its own, so whatever it spawned is joined before the next. What happens
/// when a run ends:
///
/// * it was **cancelled** (an error that [is a
///   cancellation](TaskError::is_cancellation), once the service's token has
///   fired): the service stops cleanly. No error handler sees it, so no
///   error handler can swallow it and restart the loop;
/// * it **failed**: the failure is logged with its attempt number, and the
///   service restarts after its [`Backoff`] unless its [`Restart`] policy
///   says never or its restart [`budget`](Service::budget) is spent, in
///   which case it gives up ([`OnGiveUp`]);
/// * it returned **`Ok`**: the service is done, unless it repeats
///   ([`Service::every`], [`Restart::Always`]).
///
/// Every wait between runs ends at once when the token fires.
///
/// A data sync service: sync every five minutes, retry after 30 s on
/// error, stop on shutdown:
///
/// ```
/// use std::time::Duration;
/// use taskscope::service::Service;
///
/// async fn sync_data() -> std::io::Result<()> {
///     let token = taskscope::token();
///     token.run_until_cancelled(tokio::time::sleep(Duration::from_secs(2))).await?;
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// # let host = taskscope::CancellationSource::with_timeout(Duration::from_secs(900));
/// # taskscope::ScopeBuilder::new().parent(&host.token()).run(async |_s| {
/// Service::new("data sync")
///     .every(Duration::from_secs(5 * 60))
///     .retry_after(Duration::from_secs(30))
///     .run(|_| sync_data())
///     .await
/// # }).await.unwrap();
/// # }
/// ```
#[derive(Clone)]
#[must_use = "a Service does nothing until it is run"]
pub struct Service {
    pub(crate) name: Arc<str>,
    restart: Option<Restart>,
    backoff: Backoff,
    every: Option<Duration>,
    /// `every` counts from the start of the last run, not its end.
    at_fixed_rate: bool,
    budget: Option<(u32, Duration)>,
    on_give_up: OnGiveUp,
    pub(crate) drain: Duration,
    pub(crate) grace: Duration,
    at: &'static Location<'static>,
}

/// How long a service stopped by a [`ServiceSet`](super::ServiceSet) has to
/// finish once cancelled, unless [`Service::grace_period`] says otherwise.
pub(crate) const DEFAULT_SERVICE_GRACE: Duration = Duration::from_secs(5);

impl Service {
    /// A service named `name` (for logs and the task tree): restarted after
    /// a failure ([`Restart::OnFailure`]) with the default [`Backoff`], no
    /// restart budget, failing its scope if it gives up, no drain time, and
    /// 5 s to stop once cancelled (see [`grace_period`](Service::grace_period)).
    #[track_caller]
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Service {
            name: name.into(),
            restart: None,
            backoff: Backoff::default(),
            every: None,
            at_fixed_rate: false,
            budget: None,
            on_give_up: OnGiveUp::FailScope,
            drain: Duration::ZERO,
            grace: DEFAULT_SERVICE_GRACE,
            at: Location::caller(),
        }
    }

    /// When the service is started again after it stopped.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = Some(restart);
        self
    }

    /// How long to wait before each restart after a failure.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Runs the service again `period` after each run that returned `Ok`:
    /// a periodic job. It is a fixed *delay* between the end of one run
    /// and the start of the next (a run of 2 minutes every 5 minutes starts
    /// every 7); add [`at_fixed_rate`](Service::at_fixed_rate) for a
    /// schedule that counts from each start. Either way runs never overlap
    /// and a slow run never causes a burst of catch-up runs. Implies [`Restart::Always`];
    /// naming another policy as well is an error, reported when the service
    /// is run.
    pub fn every(mut self, period: Duration) -> Self {
        self.every = Some(period);
        self
    }

    /// Makes [`every`](Service::every) a fixed *rate*: each run starts
    /// `period` after the previous run *started*. A run that takes longer
    /// than the period is followed by the next at once; the starts it missed
    /// are skipped, never caught up in a burst, and runs never overlap.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::service::Service;
    ///
    /// # async fn report() -> std::io::Result<()> { Ok(()) }
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let stop = taskscope::CancellationSource::with_timeout(Duration::from_secs(3600));
    /// # taskscope::ScopeBuilder::new().parent(&stop.token()).run(async |_s| {
    /// // A report at the top of every hour, however long each takes.
    /// Service::new("hourly report")
    ///     .every(Duration::from_secs(3600))
    ///     .at_fixed_rate()
    ///     .run(|_| report())
    ///     .await
    /// # }).await.unwrap();
    /// # }
    /// ```
    pub fn at_fixed_rate(mut self) -> Self {
        self.at_fixed_rate = true;
        self
    }

    /// Restarts after a failure wait `delay`, always: shorthand for
    /// `.backoff(Backoff::fixed(delay))`.
    pub fn retry_after(self, delay: Duration) -> Self {
        self.backoff(Backoff::fixed(delay))
    }

    /// At most `restarts` restarts after failures within any `window`; the
    /// next failure gives up ([`OnGiveUp`]). No limit by default.
    pub fn budget(mut self, restarts: u32, window: Duration) -> Self {
        self.budget = Some((restarts, window));
        self
    }

    /// What giving up does: fail the scope (the default) or only stop this
    /// service.
    pub fn on_give_up(mut self, on_give_up: OnGiveUp) -> Self {
        self.on_give_up = on_give_up;
        self
    }

    /// When a [`ServiceSet`](super::ServiceSet) stops this service, how long
    /// it may drain ([`ServiceContext::draining`] has fired, its token has
    /// not) before it is cancelled. Zero by default.
    pub fn drain(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }

    /// When a [`ServiceSet`](super::ServiceSet) stops this service, how long
    /// it has to finish once cancelled before it is aborted.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the service in the caller's task, in a scope of its own named
    /// after it, until it stops: `Ok` once it was cancelled (the enclosing
    /// scope's token fired) or finished, or its error if it gave up with
    /// [`OnGiveUp::FailScope`].
    ///
    /// # Panics
    ///
    /// If [`every`](Service::every) was combined with a restart policy other
    /// than [`Restart::Always`].
    ///
    /// ```
    /// use taskscope::service::{Restart, Service, ServiceError};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let outcome = Service::new("flaky")
    ///     .restart(Restart::Never)
    ///     .run(|_| async { Err::<(), _>(std::io::Error::other("disk full")) })
    ///     .await;
    /// assert!(matches!(outcome, Err(ServiceError::Failed { attempt: 1, .. })));
    /// # }
    /// ```
    pub async fn run<F, Fut, E>(self, service: F) -> Result<(), ServiceError>
    where
        F: FnMut(ServiceContext) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: TaskError + Into<BoxError>,
    {
        let restart = self.restart_policy();
        ScopeBuilder::new()
            .name(Arc::clone(&self.name))
            .run(async |scope: &Scope<ServiceError>| {
                let shared = Shared {
                    draining: scope.token(),
                    ready: None,
                };
                self.run_loop(restart, &scope.handle(), shared, service)
                    .await
            })
            .await
            .map_err(ScopeError::into_error)
    }

    /// The restart policy, checked against `every`.
    #[track_caller]
    pub(crate) fn restart_policy(&self) -> Restart {
        match (self.every, self.restart) {
            (None, restart) => restart.unwrap_or_default(),
            (Some(_), None | Some(Restart::Always)) => Restart::Always,
            (Some(_), Some(other)) => panic!(
                "service `{}` ({}): `every` repeats the service after each run, which is \
                 Restart::Always, but `.restart(Restart::{other:?})` was also given; remove one",
                self.name, self.at
            ),
        }
    }

    /// Calls `service` run after run, in `scope` (the service's own), until
    /// it stops for good.
    pub(crate) async fn run_loop<T, F, Fut, E>(
        &self,
        restart: Restart,
        scope: &ScopeHandle<ServiceError>,
        shared: Shared<T>,
        mut service: F,
    ) -> Result<(), ServiceError>
    where
        F: FnMut(ServiceContext<T>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: TaskError + Into<BoxError>,
    {
        let token = scope.token();
        let mut budget = self
            .budget
            .map(|(restarts, window)| RestartBudget::new(restarts, window));
        let mut in_a_row = 0u32;
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            scope.set_status(Some(&format!("run {attempt}")));
            let context = ServiceContext {
                name: Arc::clone(&self.name),
                attempt,
                token: token.clone(),
                shared: shared.clone(),
            };
            let began = Instant::now();
            let run = ScopeBuilder::new()
                .name(format!("{} run {attempt}", self.name))
                .run(async |_run: &Scope<E>| service(context).await)
                .await
                .map_err(ScopeError::into_error);
            let pause = match run {
                Ok(()) => {
                    in_a_row = 0;
                    match (self.every, restart) {
                        (Some(period), _) => {
                            let pause = if self.at_fixed_rate {
                                period.saturating_sub(began.elapsed())
                            } else {
                                period
                            };
                            scope.set_status(Some(&format!("next run in {pause:?}")));
                            pause
                        }
                        (None, Restart::Always) => self.backoff.delay(1),
                        (None, _) => return Ok(()),
                    }
                }
                // Stopped as asked: no handler sees it, nothing restarts.
                Err(error) if error.is_cancellation() && token.is_cancelled() => return Ok(()),
                Err(error) => {
                    let error: BoxError = error.into();
                    if restart == Restart::Never || token.is_cancelled() {
                        return self.give_up(ServiceError::Failed {
                            service: Arc::clone(&self.name),
                            attempt,
                            error,
                        });
                    }
                    if let Some(budget) = &mut budget {
                        if !budget.spend(Instant::now()) {
                            let (restarts, window) = self.budget.unwrap_or_default();
                            return self.give_up(ServiceError::BudgetSpent {
                                service: Arc::clone(&self.name),
                                restarts,
                                window,
                                error,
                            });
                        }
                    }
                    in_a_row = if began.elapsed() >= self.backoff.settled_after() {
                        1
                    } else {
                        in_a_row.saturating_add(1)
                    };
                    let delay = self.backoff.delay(in_a_row);
                    tracing::warn!(
                        service = %self.name,
                        attempt,
                        error = %error,
                        retry_in = ?delay,
                        "service failed; restarting after a delay"
                    );
                    if scope.reports_to_stderr() {
                        eprintln!(
                            "taskscope: service `{}` failed (run {attempt}): {error}; restarting in {delay:?}",
                            self.name
                        );
                    }
                    scope.set_status(Some(&format!(
                        "run {attempt} failed; restarting in {delay:?}"
                    )));
                    delay
                }
            };
            // tokio's `sleep` takes any duration: `Duration::MAX` never ends.
            let wait = tokio::time::sleep(pause);
            if token.run_until_cancelled(wait).await.is_err() {
                return Ok(());
            }
        }
    }

    fn give_up(&self, error: ServiceError) -> Result<(), ServiceError> {
        tracing::error!(service = %self.name, error = %error, "service gave up");
        if current_scope().is_some_and(|scope| scope.reports_to_stderr()) {
            eprintln!("taskscope: {error}");
        }
        match self.on_give_up {
            OnGiveUp::FailScope => Err(error),
            OnGiveUp::StopService => Ok(()),
        }
    }
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("restart", &self.restart)
            .field("backoff", &self.backoff)
            .field("every", &self.every)
            .field("budget", &self.budget)
            .field("on_give_up", &self.on_give_up)
            .field("drain", &self.drain)
            .field("grace", &self.grace)
            .finish()
    }
}

/// What every run of one service shares.
pub(crate) struct Shared<T> {
    pub(crate) draining: CancellationToken,
    /// The readiness hand-over of a started service, until used.
    pub(crate) ready: Option<Arc<Mutex<Option<Ready<T>>>>>,
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            draining: self.draining.clone(),
            ready: self.ready.clone(),
        }
    }
}

/// What a service is given on each run.
///
/// `T` is the value a service started with
/// [`ServiceSet::start`](super::ServiceSet::start) hands its caller through
/// [`ready`](ServiceContext::ready); `()` otherwise.
pub struct ServiceContext<T = ()> {
    name: Arc<str>,
    attempt: u32,
    token: CancellationToken,
    shared: Shared<T>,
}

impl<T> ServiceContext<T> {
    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which run this is, counted from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The service's token (also [`taskscope::token()`](crate::token) inside
    /// it): fires when the service is cancelled.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Fires when the service should start draining (stop taking new work
    /// and finish what it has: an HTTP server's graceful shutdown), and at
    /// the latest when its [`token`](ServiceContext::token) fires. For a
    /// service run on its own, the same as the token.
    pub fn draining(&self) -> CancellationToken {
        self.shared.draining.clone()
    }

    /// Says the service is ready and hands `value` to the caller of
    /// [`ServiceSet::start`](super::ServiceSet::start). Only the first call
    /// in the service's life counts (a restarted service is not started
    /// again); later calls, and calls in a service that was not started
    /// that way, do nothing.
    pub fn ready(&self, value: T) {
        let ready = self
            .shared
            .ready
            .as_ref()
            .and_then(|cell| cell.lock().unwrap_or_else(PoisonError::into_inner).take());
        if let Some(ready) = ready {
            ready.send(value);
        }
    }
}

impl<T> fmt::Debug for ServiceContext<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceContext")
            .field("name", &self.name)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}
