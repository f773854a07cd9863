//! The server side every integration shares: a scope per request, nested in
//! the server's scope, with the caller's deadline, answered by the
//! protocol's adapter (axum's layer, tonic's layer, or one of your own).
//!
//! The owner scope, the parent token and the budget header's bytes go in;
//! a running request scope comes out, or the [`Refusal`] to answer with.
//! The request's future settles the caller's deadline: answered, it fires
//! nothing; dropped (the caller left), it fires the request's token with
//! [`CancelReason::ClientDisconnected`], or with
//! [`CancelReason::RemoteDeadline`] near the deadline.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use super::baggage;
use super::budget::Inbound;
use super::deadline::CallerDeadline;
use super::wire::WireError;
use crate::cancel::{CancelReason, CancellationToken};
use crate::scope::{
    current_scope, AnyScope, BoxError, ScopeBuilder, ScopeError, ScopeHandle, ScopeLocal,
};

/// The request's scope, handed to its handler by every server integration
/// (axum's extractor, a tonic request's extensions): spawn work that must
/// stop when the request does. It dereferences to a [`ScopeHandle`], so it
/// has the handle's verbs ([`spawn`](ScopeHandle::spawn) and the others)
/// and [`token`](crate::AnyScope::token).
///
/// The response is sent only once every task spawned here has finished;
/// if the caller leaves first, the tasks are cancelled (with
/// [`CancelReason::ClientDisconnected`]) and the server's scope joins them.
/// A `RequestScope` kept after its response was sent refers to a finished
/// scope: its verbs return [`ScopeClosed`](crate::ScopeClosed).
///
/// ```
/// use taskscope::remote::{RequestScope, RequestScopes};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let scopes = RequestScopes::new();
/// let answer = scopes.open("GET /", None, &[], |scope: RequestScope| async move {
///     let task = scope.spawn(async { Ok::<_, taskscope::BoxError>(6 * 7) }).unwrap();
///     task.await.unwrap()
/// }, |_refusal| 0);
/// assert_eq!(answer.await, 42);
/// # }
/// ```
#[derive(Clone)]
pub struct RequestScope {
    scope: ScopeHandle<BoxError>,
}

impl Deref for RequestScope {
    type Target = ScopeHandle<BoxError>;

    fn deref(&self) -> &ScopeHandle<BoxError> {
        &self.scope
    }
}

impl fmt::Debug for RequestScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestScope").field(&self.scope).finish()
    }
}

/// Why a server answers a request itself instead of with its handler's
/// response: refused on arrival, or stopped while it ran. Each protocol
/// says it its own way:
///
/// | refusal | HTTP | gRPC | `x-cancel-reason` |
/// |---|---|---|---|
/// | [`Malformed`](Refusal::Malformed) | 400 | `INVALID_ARGUMENT` | |
/// | [`Expired`](Refusal::Expired) | 504 | `DEADLINE_EXCEEDED` | `deadline` or `timeout` |
/// | [`Closed`](Refusal::Closed) | 503 | `UNAVAILABLE` | `shutdown` |
/// | [`Failed`](Refusal::Failed) | 500 | `INTERNAL` | |
///
/// ```
/// use taskscope::remote::{Inbound, Refusal};
/// use taskscope::CancelReason;
///
/// assert_eq!(Inbound::http().read(Some(b"0")), Err(Refusal::Expired(CancelReason::RemoteDeadline)));
/// assert!(matches!(Inbound::http().read(Some(b"-1")), Err(Refusal::Malformed { .. })));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The budget header cannot be read.
    Malformed {
        /// The header's name.
        header: Cow<'static, str>,
        /// What is wrong with its value.
        error: WireError,
    },
    /// The caller's deadline ([`CancelReason::RemoteDeadline`]) or the
    /// request's own timeout ([`CancelReason::Timeout`]) passed: on
    /// arrival, or while the request ran.
    Expired(CancelReason),
    /// The server's scope has finished: it is shutting down.
    Closed,
    /// A task the request spawned failed. The error itself went to the
    /// scope's log, not to the caller.
    Failed,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed { header, error } => write!(f, "bad {header} header: {error}"),
            Refusal::Expired(CancelReason::RemoteDeadline) => {
                f.write_str("the caller's deadline passed")
            }
            Refusal::Expired(_) => f.write_str("the request timed out"),
            Refusal::Closed => f.write_str("the server is shutting down"),
            Refusal::Failed => f.write_str("the request failed"),
        }
    }
}

impl std::error::Error for Refusal {}

/// How a server opens each request's scope: the scope that owns (joins)
/// the requests, the token they are linked to, their grace period and
/// timeout, and where the caller's budget is read from. The one core under
/// the `axum` and `tonic` layers; a server framework of your own calls
/// [`open`](RequestScopes::open) per request the same way.
///
/// ```
/// use std::time::Duration;
/// use taskscope::remote::{Inbound, Refusal, RequestScopes};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let scopes = RequestScopes::new()
///     .deadline_from(Inbound::http())
///     .timeout(Duration::from_secs(30));
/// // What an adapter does per request: the budget header's bytes in, the
/// // handler's answer (or the refusal, said in the protocol's way) out.
/// fn refuse(refusal: Refusal) -> String {
///     format!("refused: {refusal}")
/// }
/// let ok = scopes.open("GET /", Some(b"250"), &[], |_scope| async {
///     taskscope::token().remaining().is_some().to_string()
/// }, refuse);
/// assert_eq!(ok.await, "true"); // the handler's token has the caller's deadline
/// let spent = scopes.open("GET /", Some(b"0"), &[], |_scope| async { String::new() }, refuse);
/// assert_eq!(spent.await, "refused: the caller's deadline passed");
/// # }
/// ```
#[derive(Clone)]
pub struct RequestScopes {
    owner: Option<AnyScope>,
    parent: Option<CancellationToken>,
    grace: Option<Duration>,
    timeout: Option<Duration>,
    inbound: Option<Inbound>,
    answer_at_deadline: bool,
    accepted: Vec<Accepted>,
    baggage_limits: baggage::Limits,
}

/// A scope-local key a server reads from `baggage`: its name, and how a
/// value read for it is bound on a request's builder (unchanged if the
/// key's decoder refuses it).
#[derive(Clone)]
struct Accepted {
    name: &'static str,
    bind: Arc<BindFromWire>,
}

/// Binds a value read from the wire on a request's builder.
type BindFromWire = dyn Fn(ScopeBuilder, &str) -> ScopeBuilder + Send + Sync;

impl RequestScopes {
    /// Request scopes nested in the current scope (the scope whose body or
    /// task this is called from, [`current_scope`]): it joins every
    /// request's work, and cancelling it cancels every request. Outside any
    /// scope the request scopes are roots. No deadline is read.
    pub fn new() -> Self {
        RequestScopes {
            owner: current_scope(),
            parent: None,
            grace: None,
            timeout: None,
            inbound: None,
            answer_at_deadline: false,
            accepted: Vec::new(),
            baggage_limits: baggage::Limits::default(),
        }
    }

    /// Reads `key`'s value from the request's W3C `baggage` header, if the
    /// caller sent one, and binds it on the request's scope: the handler
    /// and everything below it see it, as if the server had bound it. The
    /// key must travel ([`ScopeLocal::across_processes`]); what arrives is
    /// untrusted, and a member that is malformed, or that the key's decoder
    /// refuses, is skipped (with a debug event), never a panic or a refusal.
    ///
    /// ```
    /// use taskscope::remote::RequestScopes;
    /// use taskscope::ScopeLocal;
    ///
    /// static TENANT: ScopeLocal<String> =
    ///     ScopeLocal::new("tenant").across_processes(|t| t.clone(), |s| Some(s.to_owned()));
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scopes = RequestScopes::new().accept(&TENANT);
    /// let seen = scopes.open("GET /", None, &[b"tenant=acme,other=1"], |_| async {
    ///     TENANT.get()
    /// }, |_| None);
    /// assert_eq!(seen.await.as_deref(), Some("acme"));
    /// # }
    /// ```
    pub fn accept<T: Send + Sync + 'static>(mut self, key: &'static ScopeLocal<T>) -> Self {
        let bind = move |builder: ScopeBuilder, text: &str| match key.decode_wire(text) {
            Some(value) => builder.bind(key, value),
            None => {
                tracing::debug!(
                    key = key.name(),
                    "baggage: value refused by the key's decoder"
                );
                builder
            }
        };
        self.accepted.push(Accepted {
            name: key.name(),
            bind: Arc::new(bind),
        });
        self
    }

    /// Whether [`open`](RequestScopes::open) reads `baggage` (a key was
    /// [accepted](RequestScopes::accept)): an adapter need not look for the
    /// header otherwise.
    pub fn accepts_baggage(&self) -> bool {
        !self.accepted.is_empty()
    }

    /// How much of an incoming `baggage` header is read: at most `bytes`
    /// bytes (what lies beyond the last whole member inside them is
    /// ignored) and `members` members. W3C's minimums, 8,192 bytes and 64
    /// members, by default; zero reads nothing.
    pub fn baggage_limits(mut self, bytes: usize, members: usize) -> Self {
        self.baggage_limits = baggage::Limits { bytes, members };
        self
    }

    /// Links request tokens to `parent` instead of the owner scope's token
    /// (the owner still joins them): `taskscope::axum::serve` uses this to
    /// let requests drain after shutdown begins.
    ///
    /// ```
    /// use taskscope::{remote::RequestScopes, CancellationSource};
    ///
    /// let requests = CancellationSource::new();
    /// let scopes = RequestScopes::new().parent(&requests.token());
    /// # drop(scopes);
    /// ```
    pub fn parent(mut self, parent: &CancellationToken) -> Self {
        self.parent = Some(parent.clone());
        self
    }

    /// How long tasks a request spawned may keep running after its token
    /// fired before they are aborted; see [`ScopeBuilder::grace_period`].
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// A deadline for each request: its token fires with
    /// [`CancelReason::Timeout`], and once the handler has stopped the
    /// request is answered with [`Refusal::Expired`], whatever the handler
    /// returned. `Duration::MAX` is no timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Reads the budget the caller sent (see [`Inbound`]) and gives the
    /// request that deadline: its token fires at it with
    /// [`CancelReason::RemoteDeadline`], and once the handler has stopped
    /// the request is answered with [`Refusal::Expired`]. A request that
    /// arrives with nothing left, or whose header cannot be read, is
    /// refused and runs no handler. A request without the header runs as
    /// before.
    pub fn deadline_from(mut self, inbound: Inbound) -> Self {
        self.inbound = Some(inbound);
        self
    }

    /// Answers [`Refusal::Expired`] the moment the caller's deadline passes,
    /// without waiting for the handler to stop (its scope is cancelled and
    /// joined by the owner): for protocols whose server enforces the
    /// deadline itself, as tonic's does, so that the caller hears this
    /// answer rather than the framework's.
    pub fn answer_at_deadline(mut self) -> Self {
        self.answer_at_deadline = true;
        self
    }

    /// Request scopes nested in `owner` instead of the scope `new` was
    /// called in.
    ///
    /// ```
    /// use taskscope::remote::RequestScopes;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// taskscope::scope(async |s| {
    ///     let scopes = RequestScopes::new().within(s);
    ///     let request = scopes.open("GET /", None, &[], |_| async {
    ///         taskscope::token().cancelled().await;
    ///         "stopped with its owner"
    ///     }, |_| "refused");
    ///     s.cancel();
    ///     assert_eq!(request.await, "stopped with its owner");
    ///     Ok::<_, taskscope::Cancelled>(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn within(mut self, owner: &AnyScope) -> Self {
        self.owner = Some(owner.clone());
        self
    }

    /// The header the caller's budget is read from, if
    /// [`deadline_from`](RequestScopes::deadline_from) was given: an
    /// adapter passes its value to [`open`](RequestScopes::open).
    pub fn budget_header(&self) -> Option<&str> {
        self.inbound.as_ref().map(Inbound::header_name)
    }

    /// Opens the scope of one request named `name` (`GET /path`, the gRPC
    /// method) whose budget header holds `budget` (`None`: absent) and
    /// whose `baggage` headers hold `baggage` (one slice per header line;
    /// empty: none), and runs `handler` as its body. The future it returns is the request:
    /// the handler's value, or `refuse`'s answer to a [`Refusal`] (on
    /// arrival it runs no handler). Dropping it before it completes is what
    /// a caller leaving looks like: the request's token fires with
    /// [`CancelReason::ClientDisconnected`].
    ///
    /// The scope is opened here, not when the future is first polled, so a
    /// request nests in the owner even where the server's connection tasks
    /// run outside any scope.
    #[inline]
    pub fn open<R, F, Fut>(
        &self,
        name: impl Into<Arc<str>>,
        budget: Option<&[u8]>,
        baggage: &[&[u8]],
        handler: F,
        refuse: fn(Refusal) -> R,
    ) -> RequestFuture<R>
    where
        F: FnOnce(RequestScope) -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: Send + 'static,
    {
        let caller_deadline = match &self.inbound {
            None => None,
            Some(inbound) => match inbound.read(budget) {
                Ok(None) => None,
                // Below the token the request would otherwise be linked to.
                Ok(Some(budget)) => Some(CallerDeadline::start(budget, &self.linked_token())),
                Err(refusal) => return RequestFuture::refused(refuse(refusal)),
            },
        };
        let mut builder = ScopeBuilder::new()
            .name(name)
            .when_dropped(CancelReason::ClientDisconnected);
        if let Some(owner) = &self.owner {
            builder = builder.within(owner);
        }
        if let Some(parent) = &self.parent {
            builder = builder.parent(parent);
        }
        if let Some(grace) = self.grace {
            builder = builder.grace_period(grace);
        }
        if !baggage.is_empty() && !self.accepted.is_empty() {
            builder = self.bind_baggage(builder, baggage);
        }
        if let Some(deadline) = &caller_deadline {
            builder = builder.parent(&deadline.token());
        }
        // `Duration::MAX` never fires: no timeout.
        let builder = builder.timeout(self.timeout.unwrap_or(Duration::MAX));
        let has_deadline = self.timeout.is_some() || caller_deadline.is_some();
        let opened = builder.try_start(move |scope: ScopeHandle<BoxError>| Handling {
            // Only a request with a deadline of its own can time out.
            token: has_deadline.then(|| scope.token()),
            handler: handler(RequestScope { scope }),
        });
        match opened {
            Ok(running) => RequestFuture {
                caller_deadline,
                answer_at_deadline: self.answer_at_deadline,
                refuse,
                // Boxed where it is made: the scope's future is large, and
                // the server moves the request's future a few times. The
                // outcome is mapped in `poll`: an `async` block around it
                // would move it once more.
                state: State::Running(Box::pin(running)),
            },
            Err(_closed) => RequestFuture::refused(refuse(Refusal::Closed)),
        }
    }

    /// Binds the accepted keys the caller's `baggage` carries.
    #[cold]
    fn bind_baggage(&self, mut builder: ScopeBuilder, lines: &[&[u8]]) -> ScopeBuilder {
        // Several header lines are one list (W3C), read within one limit.
        let header = lines.join(&b',');
        for (name, value) in baggage::parse(&header, self.baggage_limits) {
            if let Some(accepted) = self.accepted.iter().find(|a| a.name == name) {
                builder = (accepted.bind)(builder, &value);
            }
        }
        builder
    }

    /// [`open`](RequestScopes::open) for an HTTP request (axum, tonic, or a
    /// framework of your own on the `http` types): reads the budget header
    /// and the `baggage` lines from `request`, puts the [`RequestScope`] in
    /// its extensions, and runs `handler` with it. (Features `axum` or
    /// `tonic`.)
    ///
    /// ```
    /// use taskscope::remote::{Inbound, RequestScope, RequestScopes};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scopes = RequestScopes::new().deadline_from(Inbound::http());
    /// let request = http::Request::get("/").header("x-request-budget-ms", "250").body(()).unwrap();
    /// let answer = scopes.open_http("GET /", request, |request| async move {
    ///     let scope = request.extensions().get::<RequestScope>().unwrap();
    ///     scope.token().remaining().is_some()
    /// }, |_| false);
    /// assert!(answer.await); // the handler's scope has the caller's deadline
    /// # }
    /// ```
    #[cfg(any(feature = "axum", feature = "tonic"))]
    #[inline]
    pub fn open_http<B, R, F, Fut>(
        &self,
        name: impl Into<Arc<str>>,
        mut request: http::Request<B>,
        handler: F,
        refuse: fn(Refusal) -> R,
    ) -> RequestFuture<R>
    where
        B: Send + 'static,
        F: FnOnce(http::Request<B>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: Send + 'static,
    {
        // Clones of the values share their bytes; `baggage` is looked for
        // only when a key is accepted.
        let headers = request.headers();
        let budget = self
            .budget_header()
            .and_then(|header| headers.get(header))
            .cloned();
        let baggage: Vec<_> = match self.accepts_baggage() {
            true => headers.get_all("baggage").iter().cloned().collect(),
            false => Vec::new(),
        };
        let lines: Vec<&[u8]> = baggage.iter().map(|value| value.as_bytes()).collect();
        let handler = move |scope: RequestScope| {
            request.extensions_mut().insert(scope);
            handler(request)
        };
        let budget = budget.as_ref().map(|value| value.as_bytes());
        self.open(name, budget, &lines, handler, refuse)
    }

    /// The token a request is linked to when no caller deadline comes
    /// between: the parent, else the owner's token.
    fn linked_token(&self) -> CancellationToken {
        match (&self.parent, &self.owner) {
            (Some(parent), _) => parent.clone(),
            (None, Some(owner)) => owner.token(),
            (None, None) => CancellationToken::none(),
        }
    }
}

impl Default for RequestScopes {
    fn default() -> Self {
        RequestScopes::new()
    }
}

impl fmt::Debug for RequestScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestScopes")
            .field("owner", &self.owner.as_ref().map(AnyScope::name))
            .field("parent", &self.parent)
            .field("grace", &self.grace)
            .field("timeout", &self.timeout)
            .field("inbound", &self.inbound)
            .field("answer_at_deadline", &self.answer_at_deadline)
            .field(
                "accepted",
                &self.accepted.iter().map(|a| a.name).collect::<Vec<_>>(),
            )
            .field("baggage_limits", &self.baggage_limits)
            .finish()
    }
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pin_project! {
    /// The body of a request's scope: the handler's future, then whether
    /// the request's own deadline passed meanwhile. A future of its own,
    /// not an `async` block, so the handler's output is not moved through
    /// one more state machine.
    struct Handling<F> {
        #[pin]
        handler: F,
        token: Option<CancellationToken>,
    }
}

impl<F: Future> Future for Handling<F> {
    type Output = Result<Result<F::Output, CancelReason>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.handler.poll(cx));
        // Past its own deadline, whatever the handler made of it, the
        // request timed out (its own reason, not an inherited one).
        let expired = this.token.take().and_then(|t| t.reason()).filter(|reason| {
            *reason == CancelReason::Timeout || *reason.root() == CancelReason::RemoteDeadline
        });
        Poll::Ready(Ok(match expired {
            Some(reason) => Err(reason.root().clone()),
            None => Ok(output),
        }))
    }
}

/// One request, from [`RequestScopes::open`]: the handler's value or the
/// answer to a [`Refusal`]. Dropping it before it completes (the caller
/// left) cancels the request's scope with
/// [`CancelReason::ClientDisconnected`], or with
/// [`CancelReason::RemoteDeadline`] once the caller's deadline is (nearly)
/// past; the owner scope joins what is still running.
#[must_use = "a request's future does nothing unless polled; dropping it cancels the request"]
pub struct RequestFuture<R> {
    /// Dropped before `state` (fields drop in order): a request dropped
    /// mid-way is cancelled with the right reason before its scope sees
    /// the drop.
    caller_deadline: Option<CallerDeadline>,
    answer_at_deadline: bool,
    refuse: fn(Refusal) -> R,
    state: State<R>,
}

/// What a request's scope ends with: the handler's value or the deadline
/// that passed, or why the scope failed.
type Outcome<R> = Result<Result<R, CancelReason>, ScopeError<BoxError>>;

enum State<R> {
    /// The request's scope, running the handler.
    Running(Boxed<Outcome<R>>),
    /// Answered without running anything, or already polled to the end.
    Done(Option<R>),
}

impl<R> RequestFuture<R> {
    fn refused(answer: R) -> Self {
        RequestFuture {
            caller_deadline: None,
            answer_at_deadline: false,
            refuse: |_| unreachable!("a refused request is answered already"),
            state: State::Done(Some(answer)),
        }
    }

    /// A request that needs no scope of its own, answered by `future` as
    /// it is: one that already runs in a request scope (a layer applied
    /// twice), say.
    ///
    /// ```
    /// use taskscope::remote::RequestFuture;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// assert_eq!(RequestFuture::passed(async { 7 }).await, 7);
    /// # }
    /// ```
    pub fn passed(future: impl Future<Output = R> + Send + 'static) -> Self
    where
        R: 'static,
    {
        RequestFuture {
            caller_deadline: None,
            answer_at_deadline: false,
            refuse: |_| unreachable!("a passed request is never refused"),
            state: State::Running(Box::pin(async move { Ok(Ok(future.await)) })),
        }
    }
}

impl<R> Unpin for RequestFuture<R> {}

impl<R> Future for RequestFuture<R> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let this = &mut *self;
        if this.answer_at_deadline {
            // tonic's server runs its own `grpc-timeout` timer outside
            // every layer, armed just after ours (so never earlier), and
            // polls this future before its timer: whenever it wakes for its
            // timer, ours has passed too, and the caller hears this answer.
            let passed = this
                .caller_deadline
                .as_ref()
                .is_some_and(|d| tokio::time::Instant::now() >= d.deadline());
            if passed {
                // The deadline first (its drop fires the request's token
                // with the caller's deadline), then the request's scope.
                drop(this.caller_deadline.take());
                this.state = State::Done(None);
                return Poll::Ready((this.refuse)(Refusal::Expired(
                    CancelReason::RemoteDeadline,
                )));
            }
        }
        let answer = match &mut this.state {
            State::Running(running) => {
                // The finished scope's future is dropped with this one, as
                // a server drops a request's future once it has answered.
                let outcome = std::task::ready!(running.as_mut().poll(cx));
                let answer = match outcome {
                    Ok(answer) => answer.map_err(Refusal::Expired),
                    Err(error) if error.is_timeout() => {
                        Err(Refusal::Expired(CancelReason::Timeout))
                    }
                    // The error went to the scope's log.
                    Err(_) => Err(Refusal::Failed),
                };
                answer.unwrap_or_else(this.refuse)
            }
            State::Done(answer) => answer.take().expect("polled after completion"),
        };
        if let Some(deadline) = this.caller_deadline.take() {
            deadline.complete();
        }
        Poll::Ready(answer)
    }
}

impl<R> fmt::Debug for RequestFuture<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestFuture")
            .field("caller_deadline", &self.caller_deadline)
            .field("answer_at_deadline", &self.answer_at_deadline)
            .finish_non_exhaustive()
    }
}
