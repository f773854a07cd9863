//! Request scopes against a real axum server on 127.0.0.1 and a real HTTP
//! client (hyper's): a client that disconnects mid-request, a normal
//! request, and a shutdown with requests in flight (docs/semantics.md, part V).
//!
//! Nothing here asserts a duration: the server's drain period is the only
//! clock, and the assertions are about order (what finished before what).

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use taskscope::remote::RequestScope;
use taskscope::BoxError;
use taskscope::{CancelReason, CancellationSource, CancellationToken};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

#[path = "support/http.rs"]
mod http;
use http::Client;

/// A bound listener and its address.
async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A server running `app` with the given drain period, its address, the
/// source that stops it, and its task.
async fn start(app: Router, drain: Duration) -> (SocketAddr, CancellationSource, Server) {
    let (listener, addr) = listen().await;
    let stop = CancellationSource::new();
    let server = tokio::spawn(
        taskscope::axum::serve(listener, app)
            .shutdown_on(&stop.token())
            .drain_period(drain)
            .into_future(),
    );
    (addr, stop, server)
}

type Server = tokio::task::JoinHandle<std::io::Result<()>>;

/// Awaits `rx`'s next message, failing the test (instead of hanging) if
/// nothing comes within a generous bound.
async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("nothing arrived within 30 s")
        .expect("the sender is still alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_cancels_the_request_and_its_cleanup_runs() {
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let (reason_tx, mut reasons) = mpsc::unbounded_channel::<CancelReason>();
    let cleaned_up = Arc::new(AtomicBool::new(false));
    let app = Router::new().route(
        "/search",
        get({
            let cleaned_up = cleaned_up.clone();
            move |scope: RequestScope| async move {
                // The handler's own registration runs too: the token fires
                // before hyper's drop reaches the handler's locals.
                let _registration = scope.token().on_cancel({
                    let reason_tx = reason_tx.clone();
                    move |reason| reason_tx.send(reason.clone()).unwrap()
                });
                let worker = scope.spawn({
                    let reason_tx = reason_tx.clone();
                    let cleaned_up = cleaned_up.clone();
                    async move {
                        let token = taskscope::token();
                        token.cancelled().await;
                        reason_tx.send(token.reason().unwrap()).unwrap();
                        // Cleanup that takes a while: the server must still join it.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        cleaned_up.store(true, Ordering::SeqCst);
                        Ok::<_, BoxError>(())
                    }
                });
                started_tx.send(()).unwrap();
                let _ = worker.unwrap().await;
                "never sent"
            }
        }),
    );
    let (addr, stop, server) = start(app, Duration::from_secs(10)).await;

    let mut client = Client::connect(addr).await;
    let request = tokio::spawn(async move {
        client.get("/search?q=boots").await;
    });
    next(&mut started).await;
    request.abort(); // drops the client and its socket mid-request
    let _ = request.await;

    // The handler's registration sees the reason itself; the task (its own
    // token is a child of the request's) inherits it. Either may come first.
    let mut seen = [next(&mut reasons).await, next(&mut reasons).await];
    seen.sort_by_key(CancelReason::is_inherited);
    assert_eq!(seen[0], CancelReason::ClientDisconnected);
    assert_eq!(seen[1].root(), &CancelReason::ClientDisconnected);
    assert_eq!(
        seen[1].to_string(),
        "an ancestor was cancelled: the client disconnected"
    );

    stop.cancel_with(CancelReason::Shutdown);
    server.await.unwrap().unwrap();
    assert!(
        cleaned_up.load(Ordering::SeqCst),
        "the server returned before the dropped request's task finished its cleanup"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_request_completes_after_its_work_and_cancels_nothing() {
    let (token_tx, mut tokens) = mpsc::unbounded_channel::<CancellationToken>();
    let background_done = Arc::new(AtomicBool::new(false));
    let app = Router::new().route(
        "/summary/{id}",
        get({
            let background_done = background_done.clone();
            move |scope: RequestScope, token: CancellationToken| async move {
                assert_eq!(token, scope.token());
                assert_eq!(
                    token,
                    taskscope::token(),
                    "the handler runs as the scope's body"
                );
                token_tx.send(token).unwrap();
                let orders = scope.spawn(async { Ok::<_, BoxError>(3) });
                // Not awaited: the response still waits for it.
                scope
                    .spawn({
                        let background_done = background_done.clone();
                        async move {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            background_done.store(true, Ordering::SeqCst);
                            Ok::<_, BoxError>(())
                        }
                    })
                    .unwrap();
                format!("{} orders", orders.unwrap().await.unwrap())
            }
        }),
    );
    let (addr, stop, server) = start(app, Duration::from_secs(10)).await;

    let mut client = Client::connect(addr).await;
    let (status, body) = client.get("/summary/7").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "3 orders");
    assert!(
        background_done.load(Ordering::SeqCst),
        "the response was sent before the request's tasks finished"
    );
    let token = next(&mut tokens).await;
    assert!(
        !token.is_cancelled(),
        "a completed request cancelled its token"
    );
    assert_eq!(token.reason(), None);

    // Keep-alive: the same connection serves a second request.
    let (status, _) = client.get("/summary/8").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!next(&mut tokens).await.is_cancelled());

    drop(client);
    stop.cancel_with(CancelReason::Shutdown);
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_then_cancels_requests_in_flight_and_joins_them() {
    let (started_tx, mut started) = mpsc::unbounded_channel::<&'static str>();
    let release = Arc::new(Notify::new());
    let cleaned_up = Arc::new(AtomicBool::new(false));
    let app = Router::new()
        .route(
            "/finishes",
            get({
                let release = release.clone();
                let started_tx = started_tx.clone();
                move |token: CancellationToken| async move {
                    started_tx.send("finishes").unwrap();
                    tokio::select! {
                        () = release.notified() => "finished".to_string(),
                        () = token.cancelled() => format!("cancelled: {}", token.reason().unwrap()),
                    }
                }
            }),
        )
        .route(
            "/ignores-the-drain",
            get({
                let cleaned_up = cleaned_up.clone();
                move |scope: RequestScope| async move {
                    let worker = scope.spawn({
                        let cleaned_up = cleaned_up.clone();
                        async move {
                            let token = taskscope::token();
                            token.cancelled().await;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            cleaned_up.store(true, Ordering::SeqCst);
                            Ok::<_, BoxError>(token.reason().unwrap())
                        }
                    });
                    started_tx.send("ignores").unwrap();
                    let reason = worker.unwrap().await.unwrap();
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("cancelled: {}", reason.root()),
                    )
                }
            }),
        );
    let (addr, stop, server) = start(app, Duration::from_millis(500)).await;

    let mut first = Client::connect(addr).await;
    let mut second = Client::connect(addr).await;
    let finishes = tokio::spawn(async move { first.get("/finishes").await });
    let ignores = tokio::spawn(async move { second.get("/ignores-the-drain").await });
    let mut seen = [next(&mut started).await, next(&mut started).await];
    seen.sort();
    assert_eq!(seen, ["finishes", "ignores"]);

    stop.cancel_with(CancelReason::Shutdown);
    // In the drain period a request in flight may still finish normally.
    release.notify_one();
    assert_eq!(
        finishes.await.unwrap(),
        (StatusCode::OK, "finished".to_string())
    );
    // After it, the requests still running see their tokens fire.
    assert_eq!(
        ignores.await.unwrap(),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "cancelled: shutting down".to_string()
        )
    );
    server.await.unwrap().unwrap();
    assert!(cleaned_up.load(Ordering::SeqCst));
    // The listener is closed: nothing accepts any more.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enclosing_scope_stops_the_server() {
    let (listener, addr) = listen().await;
    let app = Router::new().route("/", get(|| async { "hello" }));
    let result = taskscope::scope(async |s| {
        let server = s.spawn(taskscope::axum::serve(listener, app).into_future());
        let mut client = Client::connect(addr).await;
        assert_eq!(client.get("/").await, (StatusCode::OK, "hello".to_string()));
        drop(client);
        s.cancel_with(CancelReason::Shutdown);
        server.await
    })
    .await;
    result.unwrap();
}

// ---- answers without a network: failures, timeouts, a finished owner -------------

/// Calls `app` once, in-process, and reads the response.
async fn call(app: &mut Router, path: &str) -> (StatusCode, String) {
    use tower_service::Service;
    let request = Request::get(path).body(axum::body::Body::empty()).unwrap();
    let response = app.call(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_failed_task_cancels_its_request_and_answers_500() {
    let (reason_tx, mut reasons) = mpsc::unbounded_channel::<CancelReason>();
    taskscope::scope(async |_s| {
        let mut app = Router::new()
            .route(
                "/",
                get(move |scope: RequestScope| async move {
                    scope
                        .task()
                        .name("pricing")
                        .spawn(async { Err::<(), BoxError>("no prices".into()) })
                        .unwrap();
                    scope.token().cancelled().await;
                    reason_tx.send(scope.token().reason().unwrap()).unwrap();
                    "a response the client never gets"
                }),
            )
            .layer(taskscope::axum::RequestScopeLayer::new());
        let (status, _) = call(&mut app, "/").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        Ok::<_, taskscope::Cancelled>(())
    })
    .await
    .unwrap();
    assert_eq!(
        next(&mut reasons).await,
        CancelReason::sibling_failed("pricing")
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_past_its_timeout_answers_504() {
    taskscope::scope(async |_s| {
        let mut app = Router::new()
            .route(
                "/",
                get(|token: CancellationToken| async move {
                    token.cancelled().await;
                    assert!(token.reason().unwrap().is_timeout());
                    "too late"
                }),
            )
            .layer(taskscope::axum::RequestScopeLayer::from(
                taskscope::remote::RequestScopes::new().timeout(Duration::from_secs(30)),
            ));
        let (status, body) = call(&mut app, "/").await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(body, "the request timed out");
        Ok::<_, taskscope::Cancelled>(())
    })
    .await
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn zero_and_max_durations_on_the_request_layer_mean_at_once_and_never() {
    taskscope::scope(async |_s| {
        let layer = |timeout, grace| {
            taskscope::axum::RequestScopeLayer::from(
                taskscope::remote::RequestScopes::new()
                    .timeout(timeout)
                    .grace_period(grace),
            )
        };
        let mut at_once = Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(layer(Duration::ZERO, Duration::MAX));
        assert_eq!(call(&mut at_once, "/").await.0, StatusCode::GATEWAY_TIMEOUT);
        let mut never = Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(layer(Duration::MAX, Duration::ZERO));
        assert_eq!(call(&mut never, "/").await, (StatusCode::OK, "ok".into()));
        Ok::<_, taskscope::Cancelled>(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_and_max_drain_periods_stop_an_idle_server_at_once() {
    for drain in [Duration::ZERO, Duration::MAX] {
        let (addr, stop, server) = start(Router::new(), drain).await;
        let mut client = Client::connect(addr).await;
        assert_eq!(client.get("/").await.0, StatusCode::NOT_FOUND);
        drop(client);
        stop.cancel();
        server.await.unwrap().unwrap(); // no request in flight: returns at once
    }
}

#[tokio::test]
async fn a_request_after_its_owner_finished_answers_503() {
    let mut app = taskscope::scope(async |_s| {
        Ok::<_, taskscope::Cancelled>(
            Router::new()
                .route("/", get(|| async { "hello" }))
                .layer(taskscope::axum::RequestScopeLayer::new()),
        )
    })
    .await
    .unwrap();
    let (status, body) = call(&mut app, "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "the server is shutting down");
}

#[tokio::test]
async fn without_the_layer_the_extractors_answer_500_naming_it() {
    let mut app = Router::new().route("/", get(|_token: CancellationToken| async { "" }));
    let (status, body) = call(&mut app, "/").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("RequestScopeLayer"), "{body}");
}

/// `probes` with a `ServiceSet`: `/readyz` answers 200 once the services
/// started, then 503 from the moment the stop begins and before the server
/// drains, while `/livez` stays 200.
#[tokio::test]
async fn readyz_turns_503_before_the_server_drains() {
    use taskscope::service::{Service, ServiceError, Services};

    let draining = Arc::new(AtomicBool::new(false));
    let host = Arc::new(CancellationSource::new());
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let result = taskscope::ScopeBuilder::new()
        .parent(&host.token())
        .run(async |_s| {
            Services::new()
                .unready_delay(Duration::from_secs(2))
                .run(async |services| {
                    let readiness = services.readiness();
                    let flag = draining.clone();
                    let addr = services
                        .start(Service::new("http"), move |ctx| {
                            let readiness = readiness.clone();
                            let flag = flag.clone();
                            async move {
                                let (listener, addr) = listen().await;
                                ctx.ready(addr);
                                let app = Router::new().merge(taskscope::axum::probes(readiness));
                                let draining = ctx.draining();
                                let _mark =
                                    draining.on_cancel(move |_| flag.store(true, Ordering::SeqCst));
                                taskscope::axum::serve(listener, app)
                                    .shutdown_on(&draining)
                                    .await
                            }
                        })
                        .await?;
                    // A load balancer's probe, on its own connection: once it
                    // sees the set ready, the host shuts down.
                    let flag = draining.clone();
                    let host = host.clone();
                    tokio::spawn(async move {
                        let mut client = Client::connect(addr).await;
                        loop {
                            let (ready, body) = client.get("/readyz").await;
                            let (live, _) = client.get("/livez").await;
                            let drained = flag.load(Ordering::SeqCst);
                            let _ = seen_tx.send((ready, body, live, drained));
                            match ready {
                                StatusCode::OK => {
                                    host.cancel_with(CancelReason::Shutdown);
                                }
                                _ if host.is_cancelled() => return,
                                _ => {}
                            };
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    });
                    Ok(())
                })
                .await
        })
        .await
        .map_err(taskscope::ScopeError::<ServiceError>::into_error);
    assert!(result.is_ok(), "{result:?}");
    let mut seen = Vec::new();
    while let Ok(probe) = seen_rx.try_recv() {
        seen.push(probe);
    }
    let ready = seen.iter().position(|p| p.0 == StatusCode::OK);
    let stopping = seen.iter().position(|p| p.1 == "stopping");
    assert!(
        ready.is_some() && ready < stopping,
        "200, then 503: {seen:?}"
    );
    let (status, _, live, drained) = &seen[stopping.unwrap()];
    assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(*live, StatusCode::OK, "liveness stays 200 while stopping");
    assert!(!drained, "readiness turned off before the drain began");
    assert!(
        draining.load(Ordering::SeqCst),
        "and then the server drained"
    );
}
