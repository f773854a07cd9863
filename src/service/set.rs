//! Services started in order and stopped in reverse, each in phases.
//!
//! # Invariants
//!
//! 1. The set's scope is not linked to the token of the scope it runs in:
//!    a shutdown reaches the services only through the phased stop, one
//!    service at a time, newest first. (A panic or a drop of the set still
//!    cancels them all at once.)
//! 2. Each service's tokens form a chain: `cancel` is linked to the set's
//!    scope, `drain` to `cancel`, so cancelling implies draining.
//! 3. `finished` fires when a service's task ends, however it ends (it is
//!    a drop guard the task owns): the stop of the next service waits on it.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use super::error::ServiceError;
use super::readiness::Readiness;
use super::runs::{Service, ServiceContext, Shared};
use crate::cancel::{CancelReason, CancellationSource, CancellationToken};
use crate::scope::{
    current_scope, BoxError, Policy, Scope, ScopeBuilder, ScopeError, ScopeHandle, StartError,
    TaskError,
};

/// Options for a set of services, then [`run`](Services::run) to start them.
///
/// The body of `run` starts the services in dependency order:
/// [`ServiceSet::start`] waits until a service says it is ready (and hands
/// back a value, such as its bound address) before the body goes on;
/// [`ServiceSet::spawn`] does not wait. Once the body returns, the set's
/// [`Readiness`] turns `Ready` and the services run until the enclosing
/// scope's token fires (under `#[taskscope::main]`, SIGINT or SIGTERM), a
/// service gives up, or [`ServiceSet::stop`] is called. Then the set stops:
///
/// 1. readiness turns `Stopping` (a `/readyz` probe answers 503), and the
///    set waits [`unready_delay`](Services::unready_delay) for load balancers
///    to notice;
/// 2. then, for each service, newest first: **drain** (its
///    [`ServiceContext::draining`] token fires; up to its
///    [`drain`](Service::drain) time to finish on its own), **cancel** (its
///    token fires), **grace** (up to its
///    [`grace_period`](Service::grace_period) to finish), **abort**.
///
/// The task tree shows each service's phase after its scope's state.
///
/// ```
/// use std::time::Duration;
/// use taskscope::service::{Service, ServiceError, Services};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let shutdown = taskscope::CancellationSource::with_timeout(Duration::from_secs(60));
/// let stopped = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// taskscope::ScopeBuilder::new()
///     .parent(&shutdown.token())
///     .run(async |_s| {
///         Services::new().run(async |services| {
///             for name in ["database", "cache", "http"] {
///                 let stopped = stopped.clone();
///                 services.start(Service::new(name), move |ctx| {
///                     let stopped = stopped.clone();
///                     async move {
///                         ctx.ready(());
///                         ctx.token().cancelled().await;
///                         stopped.lock().unwrap().push(ctx.name().to_owned());
///                         Ok::<_, std::io::Error>(())
///                     }
///                 })
///                 .await?;
///             }
///             Ok(())
///         })
///         .await
///     })
///     .await
///     .unwrap();
/// assert_eq!(*stopped.lock().unwrap(), ["http", "cache", "database"]);
/// # }
/// ```
#[must_use = "a Services does nothing until `run`"]
pub struct Services {
    name: Arc<str>,
    shutdown_grace: Option<Duration>,
    unready_delay: Duration,
    readiness: Readiness,
    at: &'static Location<'static>,
}

impl Default for Services {
    #[track_caller]
    fn default() -> Self {
        Services::new()
    }
}

impl Services {
    /// A set named "services", checked against the
    /// [`shutdown_grace`](crate::AnyScope::shutdown_grace) of the scope it
    /// runs in (under `#[taskscope::main]`, the host's), with no unready
    /// delay and a new [`Readiness`].
    #[track_caller]
    pub fn new() -> Self {
        Services {
            name: Arc::from("services"),
            shutdown_grace: None,
            unready_delay: Duration::ZERO,
            readiness: Readiness::new(),
            at: Location::caller(),
        }
    }

    /// The name of the set's scope in the task tree.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The time a shutdown has in all. The sum of the services' drain and
    /// grace periods (and the unready delay) is checked against it as each
    /// service starts, with a warning naming the services when it does not
    /// fit. By default, the grace period of `#[taskscope::main]`, if the set
    /// runs under it; else nothing is checked.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = Some(grace);
        self
    }

    /// How long to keep serving after readiness turns `Stopping` and before
    /// the first service drains, so that load balancers stop sending
    /// traffic first. Zero by default.
    pub fn unready_delay(mut self, delay: Duration) -> Self {
        self.unready_delay = delay;
        self
    }

    /// Uses `readiness` (a flag a probe already answers from) instead of a
    /// new one.
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    /// Opens the set's scope in the enclosing scope, runs `body` to start
    /// the services, runs them until a stop is due, and stops them (see
    /// [`Services`]). Returns `Ok` after a stop for a shutdown or a finish;
    /// the first failure if a service gave up with
    /// [`OnGiveUp::FailScope`](super::OnGiveUp::FailScope) or the body
    /// failed.
    pub async fn run<F>(self, body: F) -> Result<(), ServiceError>
    where
        F: AsyncFnOnce(&ServiceSet) -> Result<(), ServiceError>,
    {
        // Invariant 1: the set watches the enclosing token; its scope is
        // linked to a token of its own, which fires only if the set is
        // dropped mid-way (and then through `when_dropped`).
        let outer = crate::scope::token();
        let detached = CancellationSource::new();
        let budget = self
            .shutdown_grace
            .or_else(|| current_scope().and_then(|scope| scope.shutdown_grace()));
        ScopeBuilder::new()
            .name(Arc::clone(&self.name))
            .policy(Policy::Supervise)
            .parent(&detached.token())
            .run(async |scope: &Scope<ServiceError>| {
                let set = ServiceSet {
                    scope: scope.handle(),
                    entries: Mutex::new(Vec::new()),
                    readiness: self.readiness.clone(),
                    stop: Arc::new(CancellationSource::new()),
                    budget,
                    unready_delay: self.unready_delay,
                    warned: AtomicBool::new(false),
                    at: self.at,
                };
                let started = tokio::select! {
                    started = body(&set) => started,
                    // A shutdown while starting: stop what started.
                    () = outer.cancelled() => Ok(()),
                };
                let reason = if started.is_ok() {
                    set.readiness.set_ready();
                    let asked = set.stop.token();
                    tokio::select! {
                        () = outer.cancelled() => outer.reason().map(|r| r.root().clone()),
                        () = asked.cancelled() => asked.reason(),
                        () = set.all_finished() => None,
                    }
                } else {
                    Some(CancelReason::message("starting the services failed"))
                };
                set.stop_all(reason.unwrap_or(CancelReason::Shutdown)).await;
                started
            })
            .await
            .map_err(ScopeError::into_error)
    }
}

/// A running set of services, given to the body of [`Services::run`].
pub struct ServiceSet {
    scope: ScopeHandle<ServiceError>,
    entries: Mutex<Vec<Entry>>,
    readiness: Readiness,
    /// Fired to stop the set early: by [`ServiceSet::stop`], or by a
    /// service that gave up.
    stop: Arc<CancellationSource>,
    budget: Option<Duration>,
    unready_delay: Duration,
    warned: AtomicBool,
    at: &'static Location<'static>,
}

/// One service as the set stops it.
struct Entry {
    name: Arc<str>,
    drain: Duration,
    grace: Duration,
    draining: CancellationSource,
    cancel: CancellationSource,
    abort: CancellationSource,
    finished: CancellationToken,
    /// The service's own scope, once it opened: where its phase is shown.
    scope: Arc<OnceLock<ScopeHandle<ServiceError>>>,
}

impl ServiceSet {
    /// Starts `service` and waits until it calls [`ServiceContext::ready`],
    /// returning the value it gives. A service that fails before it is ready is
    /// restarted as its policy says; if it gives up, or ends, before it is ready,
    /// the error is returned here.
    ///
    /// ```
    /// use taskscope::service::{Service, Services};
    /// use tokio::net::TcpListener;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// Services::new()
    ///     .run(async |services| {
    ///         let addr = services
    ///             .start(Service::new("listener"), |ctx| async move {
    ///                 let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///                 ctx.ready(listener.local_addr()?);
    ///                 Ok::<_, std::io::Error>(()) // would serve until cancelled
    ///             })
    ///             .await?;
    ///         assert!(addr.ip().is_loopback());
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub async fn start<T, F, Fut, E>(&self, service: Service, run: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnMut(ServiceContext<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send,
        E: TaskError + Into<BoxError>,
    {
        let name = Arc::clone(&service.name);
        let started = self.scope.task().name(Arc::clone(&name)).start(|ready| {
            let cell = Arc::new(Mutex::new(Some(ready)));
            self.launch(service, run, Some(cell))
        });
        match started.await {
            Ok(value) => Ok(value),
            Err(StartError::Failed(error)) => Err(error),
            Err(StartError::NotReady) => Err(ServiceError::NotReady { service: name }),
            Err(StartError::Closed(closed)) => Err(ServiceError::Failed {
                service: name,
                attempt: 0,
                error: closed.into(),
            }),
        }
    }

    /// Starts `service` without waiting for it to be ready.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::service::{Service, Services};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// Services::new()
    ///     .run(async |services| {
    ///         services.spawn(Service::new("warm cache"), |_ctx| async {
    ///             tokio::time::sleep(Duration::from_secs(1)).await;
    ///             Ok::<_, std::io::Error>(()) // done: the set finishes
    ///         });
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub fn spawn<F, Fut, E>(&self, service: Service, run: F)
    where
        F: FnMut(ServiceContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send,
        E: TaskError + Into<BoxError>,
    {
        let name = Arc::clone(&service.name);
        let task = self.launch(service, run, None);
        // The set's scope is live while its body runs.
        drop(self.scope.task().name(name).spawn(task));
    }

    /// The readiness flag: `Starting` while the body starts services,
    /// `Ready` once it returned, `Stopping` from the moment a stop begins.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Begins the stop now, as if the enclosing scope's token had fired.
    pub fn stop(&self) {
        self.stop
            .cancel_with(CancelReason::message("the services were asked to stop"));
    }

    /// The time the stop would take at most, against the shutdown grace
    /// period: [`ServiceError::OverBudget`] names the services when they
    /// cannot fit.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskscope::service::{Service, ServiceError, Services};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// Services::new()
    ///     .shutdown_grace(Duration::from_secs(10))
    ///     .run(async |services| {
    ///         let slow = Service::new("slow").drain(Duration::from_secs(8));
    ///         services.spawn(slow, |_| async { Ok::<_, std::io::Error>(()) });
    ///         match services.check_shutdown_budget() {
    ///             Err(ServiceError::OverBudget { services, .. }) => assert_eq!(services, ["slow".into()]),
    ///             other => panic!("{other:?}"),
    ///         }
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub fn check_shutdown_budget(&self) -> Result<(), ServiceError> {
        let Some(available) = self.budget else {
            return Ok(());
        };
        let entries = self.entries();
        let needed = entries.iter().fold(self.unready_delay, |sum, entry| {
            sum.saturating_add(entry.drain).saturating_add(entry.grace)
        });
        if needed <= available {
            return Ok(());
        }
        Err(ServiceError::OverBudget {
            needed,
            available,
            services: entries.iter().map(|e| Arc::clone(&e.name)).collect(),
        })
    }

    fn entries(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes a service's entry and the future of its task.
    fn launch<T, F, Fut, E>(
        &self,
        service: Service,
        run: F,
        ready: Option<Arc<Mutex<Option<crate::scope::Ready<T>>>>>,
    ) -> impl Future<Output = Result<(), ServiceError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnMut(ServiceContext<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send,
        E: TaskError + Into<BoxError>,
    {
        let restart = service.restart_policy();
        // Invariant 2.
        let cancel = CancellationSource::linked([&self.scope.token()]);
        let draining = CancellationSource::linked([&cancel.token()]);
        let abort = CancellationSource::new();
        let finished = CancellationSource::new();
        let cell = Arc::new(OnceLock::new());
        let entry = Entry {
            name: Arc::clone(&service.name),
            drain: service.drain,
            grace: service.grace,
            draining,
            cancel,
            abort,
            finished: finished.token(),
            scope: Arc::clone(&cell),
        };
        let token = entry.cancel.token();
        let shared = Shared {
            draining: entry.draining.token(),
            ready,
        };
        let aborted = entry.abort.token();
        let stop = Arc::clone(&self.stop);
        self.entries().push(entry);
        if let Err(over) = self.check_shutdown_budget() {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(set = %self.at, "{over}");
            }
        }
        async move {
            // Invariant 3: fires however the task ends.
            let _finished = finished.drop_guard();
            let name = Arc::clone(&service.name);
            let running = ScopeBuilder::new()
                .name(Arc::clone(&name))
                .parent(&token)
                .grace_period(service.grace)
                .run(async |scope: &Scope<ServiceError>| {
                    let _ = cell.set(scope.handle());
                    service
                        .run_loop(restart, &scope.handle(), shared, run)
                        .await
                });
            let outcome = tokio::select! {
                biased;
                () = aborted.cancelled() => {
                    tracing::warn!(service = %name, "service did not stop within its grace period; aborted");
                    Ok(())
                }
                outcome = running => outcome.map_err(ScopeError::into_error),
            };
            if outcome.is_err() {
                // It gave up and fails the set: stop the others in order.
                stop.cancel_with(CancelReason::message(format!("service `{name}` gave up")));
            }
            outcome
        }
    }

    /// Waits until every service's task has ended.
    async fn all_finished(&self) {
        let finished: Vec<_> = self.entries().iter().map(|e| e.finished.clone()).collect();
        for token in finished {
            token.cancelled().await;
        }
    }

    /// The phased stop: readiness off, then each service newest first.
    async fn stop_all(&self, reason: CancelReason) {
        self.readiness.set_stopping();
        let entries = std::mem::take(&mut *self.entries());
        if !self.unready_delay.is_zero() && !entries.is_empty() {
            tokio::time::sleep(self.unready_delay).await;
        }
        for entry in entries.into_iter().rev() {
            entry.stop(&reason).await;
        }
    }
}

impl Entry {
    async fn stop(&self, reason: &CancelReason) {
        if self.finished.is_cancelled() {
            return;
        }
        self.show(format!("draining, up to {:?}", self.drain));
        self.draining.cancel_with(reason.clone());
        if self.wait(self.drain).await {
            return;
        }
        self.show(format!("cancelled, grace period {:?}", self.grace));
        self.cancel.cancel_with(reason.clone());
        if self.wait(self.grace).await {
            return;
        }
        self.show("aborting".to_owned());
        self.abort.cancel();
        self.finished.cancelled().await;
    }

    /// Whether the service's task ended within `limit`.
    async fn wait(&self, limit: Duration) -> bool {
        // tokio's `timeout` takes any duration: `Duration::MAX` never ends.
        tokio::time::timeout(limit, self.finished.cancelled())
            .await
            .is_ok()
    }

    fn show(&self, phase: String) {
        if let Some(scope) = self.scope.get() {
            scope.set_status(Some(&phase));
        }
    }
}

impl fmt::Debug for ServiceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.entries().iter().map(|e| e.name.clone()).collect();
        f.debug_struct("ServiceSet")
            .field("services", &names)
            .field("readiness", &self.readiness)
            .finish_non_exhaustive()
    }
}
