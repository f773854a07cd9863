//! Three real services on 127.0.0.1 for the deadline tests and example:
//! A (axum) calls B (tonic, no code generation: a hand-written unary
//! method with a UTF-8 codec), which calls C (axum) with reqwest; C runs an
//! interruptible SQLite query. Each records what it saw.
#![allow(dead_code)] // each user takes what it needs

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use bytes::{Buf, BufMut};
use taskscope::axum::RequestScopeLayer;
use taskscope::remote::{Inbound, RequestScopes};
use taskscope::reqwest::CancellableRequestExt;
use taskscope::tonic::{DeadlineLayer, GrpcScopeLayer};
use taskscope::{CancelReason, ScopeBuilder};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};
use tower_layer::Layer;

/// What one service saw of one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The handler started with this much budget left.
    Started(&'static str, Option<Duration>),
    /// The request's token fired, with this (root) reason, at this time.
    Cancelled(&'static str, CancelReason, Instant),
    /// C's query stopped: interrupted, or finished, at this time.
    QueryEnded { interrupted: bool, at: Instant },
    /// C's detached audit record was written after the request.
    AuditWritten,
    /// A handler ran at all.
    HandlerRan(&'static str),
    /// The tenant the handler saw (a scope-local value that travels as
    /// `baggage`).
    Tenant(&'static str, Option<String>),
}

/// The tenant a request runs for: bound by whoever calls A, carried to B
/// and C in `baggage`.
pub static TENANT: taskscope::ScopeLocal<String> = taskscope::ScopeLocal::new("tenant")
    .across_processes(|tenant| tenant.clone(), |text| Some(text.to_owned()));

#[derive(Clone, Default)]
pub struct Log(
    Arc<Mutex<Vec<Event>>>,
    Arc<Mutex<Vec<taskscope::Registration>>>,
);

impl Log {
    pub fn push(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
    /// The tenant `service`'s handler saw, if it ran.
    pub fn tenant(&self, service: &str) -> Option<Option<String>> {
        self.events().into_iter().find_map(|e| match e {
            Event::Tenant(s, tenant) if s == service => Some(tenant),
            _ => None,
        })
    }
    pub fn started(&self, service: &str) -> Option<Option<Duration>> {
        self.events().into_iter().find_map(|e| match e {
            Event::Started(s, left) if s == service => Some(left),
            _ => None,
        })
    }
    pub fn cancelled(&self, service: &str) -> Option<(CancelReason, Instant)> {
        self.events().into_iter().find_map(|e| match e {
            Event::Cancelled(s, reason, at) if s == service => Some((reason, at)),
            _ => None,
        })
    }
    /// Whether C's query ended, interrupted.
    pub fn query_interrupted(&self) -> bool {
        self.events().iter().any(|e| {
            matches!(
                e,
                Event::QueryEnded {
                    interrupted: true,
                    ..
                }
            )
        })
    }

    pub fn ran(&self, service: &str) -> bool {
        self.events()
            .iter()
            .any(|e| matches!(e, Event::HandlerRan(s) if *s == service))
    }
}

/// Records the start and the cancellation of a request in `service`. The
/// callback's registration is kept by the log, not the handler: a handler
/// that returns the moment its token fires would otherwise unregister the
/// callback before the cancelling thread got to run it.
fn observe(service: &'static str, log: &Log) {
    let token = taskscope::token();
    log.push(Event::HandlerRan(service));
    log.push(Event::Tenant(service, TENANT.get()));
    log.push(Event::Started(service, token.remaining()));
    let events = log.clone();
    let registration = token.on_cancel(move |reason| {
        events.push(Event::Cancelled(
            service,
            reason.root().clone(),
            Instant::now(),
        ));
    });
    log.1.lock().unwrap().push(registration);
}

/// Strings as gRPC messages: the bytes of the UTF-8 text, no protobuf.
#[derive(Clone, Copy, Default)]
pub struct Utf8Codec;

impl Codec for Utf8Codec {
    type Encode = String;
    type Decode = String;
    type Encoder = Utf8Codec;
    type Decoder = Utf8Codec;
    fn encoder(&mut self) -> Self::Encoder {
        Utf8Codec
    }
    fn decoder(&mut self) -> Self::Decoder {
        Utf8Codec
    }
}

impl Encoder for Utf8Codec {
    type Item = String;
    type Error = Status;
    fn encode(&mut self, item: String, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(item.as_bytes());
        Ok(())
    }
}

impl Decoder for Utf8Codec {
    type Item = String;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<String>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| Status::invalid_argument("not UTF-8"))
    }
}

/// The gRPC path of B's one method.
pub const B_WORK: &str = "/chain/Work";

type UnaryFuture = Pin<Box<dyn Future<Output = Result<tonic::Response<String>, Status>> + Send>>;
type UnaryHandler = Arc<dyn Fn(tonic::Request<String>) -> UnaryFuture + Send + Sync>;

/// A gRPC service with one unary method at `path`, answering with
/// `handler`: written by hand, as generated code would be, so the tests
/// need no protoc.
#[derive(Clone)]
pub struct Unary {
    path: &'static str,
    handler: UnaryHandler,
}

impl Unary {
    pub fn new<F, Fut>(path: &'static str, handler: F) -> Self
    where
        F: Fn(tonic::Request<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<tonic::Response<String>, Status>> + Send + 'static,
    {
        let handler: UnaryHandler = Arc::new(move |request| Box::pin(handler(request)));
        Unary { path, handler }
    }
}

impl tonic::server::NamedService for Unary {
    const NAME: &'static str = "chain";
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Unary {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if request.uri().path() != this.path {
                return Ok(Status::unimplemented(request.uri().path().to_owned()).into_http());
            }
            let method = Method(this.handler);
            Ok(tonic::server::Grpc::new(Utf8Codec)
                .unary(method, request)
                .await)
        })
    }
}

struct Method(UnaryHandler);

impl tonic::server::UnaryService<String> for Method {
    type Response = String;
    type Future = UnaryFuture;

    fn call(&mut self, request: tonic::Request<String>) -> UnaryFuture {
        (self.0)(request)
    }
}

/// B's one method: calls C with the call's token and budget.
async fn work_b(
    request: tonic::Request<String>,
    c: SocketAddr,
    http: reqwest::Client,
    log: Log,
) -> Result<tonic::Response<String>, Status> {
    // The layer put the call's scope in the request too.
    let from_extensions = request
        .extensions()
        .get::<taskscope::remote::RequestScope>()
        .map(|scope| scope.token());
    observe("B", &log);
    assert_eq!(from_extensions, Some(taskscope::token()));
    let answer = http
        .get(format!("http://{c}/query"))
        .cancellable()
        .send()
        .await;
    match answer {
        Ok(response) => {
            let text = response.text().await.unwrap_or_default();
            Ok(tonic::Response::new(
                format!("B({})", request.into_inner()) + &text,
            ))
        }
        Err(taskscope::reqwest::CallError::Cancelled(cancelled)) => {
            Err(tonic::Status::from(cancelled))
        }
        Err(other) => Err(Status::unavailable(other.to_string())),
    }
}

const LONG_QUERY: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                          SELECT count(*) FROM c";

/// C's handler: a SQLite query that only its token's firing stops, and an
/// audit record written in a shielded scope, which outlives the request.
async fn query_c(State(log): State<Log>) -> Result<String, StatusCode> {
    observe("C", &log);
    let audit_log = log.clone();
    taskscope::current_scope()
        .expect("the request scope")
        .spawn(async move {
            // Detached from the caller's cancellation and deadline, bounded
            // by its own 5 s.
            let written = ScopeBuilder::new()
                .shielded(Duration::from_secs(5))
                .run(async |_s| {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    Ok::<_, taskscope::Cancelled>(())
                })
                .await;
            if written.is_ok() {
                audit_log.push(Event::AuditWritten);
            }
        })
        .unwrap();
    let token = taskscope::token();
    let result = tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let interrupt = conn.get_interrupt_handle();
        let _stop = token.on_cancel(move |_| interrupt.interrupt());
        let result = conn.query_row(LONG_QUERY, [], |row| row.get::<_, i64>(0));
        // Here, not after the await: a dropped handler never gets there.
        log.push(Event::QueryEnded {
            interrupted: result.is_err(),
            at: Instant::now(),
        });
        result
    })
    .await
    .unwrap();
    result
        .map(|rows| rows.to_string())
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
}

/// A's handler: calls B through a channel with the deadline layer.
async fn work_a(
    State((b, log)): State<(tonic::transport::Channel, Log)>,
) -> Result<String, StatusCode> {
    observe("A", &log);
    let channel = DeadlineLayer::new().layer(b);
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    let path = http::uri::PathAndQuery::from_static(B_WORK);
    match client
        .unary(tonic::Request::new("A".to_owned()), path, Utf8Codec)
        .await
    {
        Ok(response) => Ok(response.into_inner()),
        Err(status) if taskscope::Cancelled::from_status(&status).is_some() => {
            Err(StatusCode::GATEWAY_TIMEOUT)
        }
        Err(status) if status.code() == Code::Unavailable => Err(StatusCode::BAD_GATEWAY),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// The three services' addresses.
pub struct Chain {
    pub a: SocketAddr,
    pub b: SocketAddr,
    pub c: SocketAddr,
}

/// Starts C, B and A as tasks of the current scope (they stop when it is
/// cancelled), each recording into `log`.
pub async fn start(log: &Log) -> Chain {
    let scope = taskscope::current_scope().expect("start the chain inside a scope");

    let c_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = c_listener.local_addr().unwrap();
    let c_app = Router::new()
        .route("/query", get(query_c))
        .with_state(log.clone())
        .layer(RequestScopeLayer::from(
            RequestScopes::new()
                .deadline_from(Inbound::http())
                .accept(&TENANT),
        ));
    let stop = scope.token();
    scope
        .spawn(async move {
            let _ = axum::serve(c_listener, c_app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        })
        .unwrap();

    let b_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = b_listener.local_addr().unwrap();
    let (http, b_log) = (reqwest::Client::new(), log.clone());
    let service_b = Unary::new(B_WORK, move |request| {
        work_b(request, c, http.clone(), b_log.clone())
    });
    let stop = scope.token();
    let b_server = tonic::transport::Server::builder()
        .layer(GrpcScopeLayer::from(
            RequestScopes::new()
                .deadline_from(Inbound::grpc().min(Duration::from_millis(100)))
                .accept(&TENANT),
        ))
        .add_service(service_b);
    scope
        .spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(b_listener);
            let _ = b_server
                .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await })
                .await;
        })
        .unwrap();

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{b}"))
        .unwrap()
        .connect_lazy();
    let a_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = a_listener.local_addr().unwrap();
    let a_app = Router::new()
        .route("/work", get(work_a))
        .with_state((channel, log.clone()))
        .layer(RequestScopeLayer::from(
            RequestScopes::new()
                .deadline_from(Inbound::http())
                .accept(&TENANT),
        ));
    let stop = scope.token();
    scope
        .spawn(async move {
            let _ = axum::serve(a_listener, a_app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        })
        .unwrap();
    Chain { a, b, c }
}

/// The gRPC path of the echo method (for the client-layer benchmark).
pub const ECHO_SAY: &str = "/chain/Say";

/// Starts an echo gRPC server and a plain HTTP server (`GET /` → "ok") as
/// tasks of the current scope; returns their addresses.
pub async fn start_echo() -> (SocketAddr, SocketAddr) {
    let scope = taskscope::current_scope().expect("start the servers inside a scope");
    let grpc_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = grpc_listener.local_addr().unwrap();
    let stop = scope.token();
    scope
        .spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(grpc_listener);
            let _ = tonic::transport::Server::builder()
                .add_service(Unary::new(ECHO_SAY, |request| async move {
                    Ok(tonic::Response::new(request.into_inner()))
                }))
                .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await })
                .await;
        })
        .unwrap();
    let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = http_listener.local_addr().unwrap();
    let stop = scope.token();
    scope
        .spawn(async move {
            let app = Router::new().route("/", get(|| async { "ok" }));
            let _ = axum::serve(http_listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        })
        .unwrap();
    (grpc, http)
}
