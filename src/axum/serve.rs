//! `serve`: an axum server in a scope of its own, stopped by its enclosing
//! scope, with a drain period for requests in flight.

use std::fmt::{self, Debug};
use std::future::{Future, IntoFuture};
use std::io;
use std::pin::Pin;
use std::time::Duration;

use ::axum::serve::Listener;
use ::axum::Router;

use super::RequestScopeLayer;
use crate::cancel::{CancelReason, CancellationSource, CancellationToken};
use crate::remote::RequestScopes;
use crate::scope::{current_scope, ScopeBuilder, ScopeError};

/// How long requests in flight when shutdown begins may keep running before
/// their tokens fire, unless [`Serve::drain_period`] says otherwise.
pub(crate) const DEFAULT_DRAIN_PERIOD: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` inside a scope named `http server`, giving
/// each request a scope of its own ([`RequestScopeLayer`] is added for you).
///
/// The server stops when the enclosing scope's token fires (under
/// `#[taskscope::main]`: on SIGINT or SIGTERM), or the token given to
/// [`shutdown_on`](Serve::shutdown_on). Then:
///
/// 1. it stops accepting connections and closes idle ones;
/// 2. requests in flight get the [drain period](Serve::drain_period) to
///    finish normally;
/// 3. then their tokens fire, with the shutdown's reason (usually
///    [`CancelReason::Shutdown`]);
/// 4. it returns once every connection has closed and every request's
///    tasks have been joined, including those of requests whose clients
///    disconnected earlier.
///
/// A handler that ignores its token can keep step 4 waiting; the enclosing
/// scope's [grace period](crate::ScopeBuilder::grace_period) (under
/// `#[taskscope::main]`, its `shutdown_grace`) is the backstop.
///
/// # Examples
///
/// ```
/// use axum::{routing::get, Router};
/// use taskscope::CancellationSource;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let app = Router::new().route("/", get(|| async { "hello" }));
/// let stop = CancellationSource::new();
/// stop.cancel(); // a real server would cancel it on a signal
/// taskscope::axum::serve(listener, app).shutdown_on(&stop.token()).await?;
/// # Ok(())
/// # }
/// ```
pub fn serve<L>(listener: L, router: Router) -> Serve<L> {
    Serve {
        listener,
        router,
        shutdown: None,
        drain: DEFAULT_DRAIN_PERIOD,
        requests: None,
    }
}

/// A server being configured; `.await` runs it. See [`serve`].
///
/// ```
/// use std::time::Duration;
/// use taskscope::remote::RequestScopes;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let result = taskscope::scope(async |s| {
///     let server = taskscope::axum::serve(listener, axum::Router::new())
///         .drain_period(Duration::from_secs(2))
///         .requests(RequestScopes::new().timeout(Duration::from_secs(30)));
///     s.cancel(); // stops the server: it is a scope of `s`
///     server.await
/// })
/// .await;
/// assert!(result.is_ok());
/// # Ok(())
/// # }
/// ```
#[must_use = "a server does nothing until awaited"]
pub struct Serve<L> {
    listener: L,
    router: Router,
    shutdown: Option<CancellationToken>,
    drain: Duration,
    requests: Option<RequestScopes>,
}

impl<L> Serve<L> {
    /// Also stop when `token` fires (the enclosing scope still stops the
    /// server too).
    ///
    /// ```
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # listener.set_nonblocking(true).unwrap();
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// # let _guard = rt.enter();
    /// # let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    /// let stop = taskscope::CancellationSource::new();
    /// let server = taskscope::axum::serve(listener, axum::Router::new()).shutdown_on(&stop.token());
    /// # drop(server);
    /// ```
    pub fn shutdown_on(mut self, token: &CancellationToken) -> Self {
        self.shutdown = Some(token.clone());
        self
    }

    /// How long requests in flight when shutdown begins may run before
    /// their tokens fire; 10 s by default. Zero cancels
    /// them at once.
    ///
    /// ```
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # listener.set_nonblocking(true).unwrap();
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// # let _guard = rt.enter();
    /// # let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    /// use std::time::Duration;
    /// let server = taskscope::axum::serve(listener, axum::Router::new())
    ///     .drain_period(Duration::from_secs(2));
    /// # drop(server);
    /// ```
    pub fn drain_period(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }

    /// Options for the request scopes: a [`timeout`](RequestScopes::timeout),
    /// the caller's deadline ([`deadline_from`](RequestScopes::deadline_from)),
    /// a [`grace_period`](RequestScopes::grace_period). (Their owner and
    /// parent are set by the server.)
    ///
    /// ```
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # listener.set_nonblocking(true).unwrap();
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// # let _guard = rt.enter();
    /// # let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    /// use std::time::Duration;
    /// use taskscope::remote::RequestScopes;
    ///
    /// let server = taskscope::axum::serve(listener, axum::Router::new())
    ///     .requests(RequestScopes::new().timeout(Duration::from_secs(30)));
    /// # drop(server);
    /// ```
    pub fn requests(mut self, scopes: RequestScopes) -> Self {
        self.requests = Some(scopes);
        self
    }
}

impl<L> Debug for Serve<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("shutdown", &self.shutdown)
            .field("drain", &self.drain)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl<L> IntoFuture for Serve<L>
where
    L: Listener,
    L::Addr: Debug,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            ScopeBuilder::new()
                .name("http server")
                .run(async |server| self.run(server.token()).await)
                .await
                .map_err(ScopeError::into_error)
        })
    }
}

impl<L> Serve<L>
where
    L: Listener,
    L::Addr: Debug,
{
    /// The server's scope body: `own` is that scope's token.
    async fn run(self, own: CancellationToken) -> io::Result<()> {
        let stop = match &self.shutdown {
            Some(token) => CancellationSource::linked([&own, token]),
            None => CancellationSource::linked([&own]),
        };
        // The requests' parent: not linked to `stop`, so requests outlive
        // the start of shutdown by the drain period.
        let requests = CancellationSource::new();
        let mut scopes = self.requests.unwrap_or_default().parent(&requests.token());
        // This is the server's scope body: its requests nest here.
        if let Some(server) = current_scope() {
            scopes = scopes.within(&server);
        }
        let app = self.router.layer(RequestScopeLayer::from(scopes));
        let server = ::axum::serve(self.listener, app)
            .with_graceful_shutdown(stop.token().cancelled_owned())
            .into_future();
        tokio::pin!(server);
        let drained = async {
            stop.token().cancelled().await;
            tokio::time::sleep(self.drain).await;
        };
        tokio::select! {
            result = &mut server => return result,
            () = drained => {}
        }
        let reason = stop
            .token()
            .reason()
            .map_or(CancelReason::Shutdown, |reason| reason.root().clone());
        tracing::debug!(%reason, "drain period over: cancelling the requests still running");
        requests.cancel_with(reason);
        server.await
    }
}
