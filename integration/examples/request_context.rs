//! What a scope carries, end to end, on 127.0.0.1:
//!
//! * the process binds `SERVICE` on its root scope
//!   (`#[taskscope::main(bind = …)]`);
//! * a client binds a request id and a tenant and calls the frontend; both
//!   travel as W3C `baggage`, and the frontend's request scope binds them;
//! * the frontend's handler reads them in a spawned task and in a blocking
//!   task, and calls the next service, which reads the tenant from the
//!   `baggage` the frontend's reqwest call sent on;
//! * a transaction handle bound "not into shields" is visible to the
//!   handler but not to its shielded cleanup;
//! * a request whose client hangs up still writes its audit record: a
//!   `defer` step on the request's scope runs once its work has stopped.
//!
//! Run with `cargo run -p taskscope-integration --example request_context`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use taskscope::remote::{RequestScope, RequestScopes};
use taskscope::reqwest::CancellableRequestExt;
use taskscope::{BoxError, ScopeBuilder, ScopeError, ScopeHandle, ScopeLocal};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Which process this is: bound once, on the root scope.
static SERVICE: ScopeLocal<&'static str> = ScopeLocal::new("service");
/// Travel to the next service in `baggage`.
static REQUEST_ID: ScopeLocal<String> =
    ScopeLocal::new("request_id").across_processes(|id| id.clone(), |text| Some(text.to_owned()));
static TENANT: ScopeLocal<String> =
    ScopeLocal::new("tenant").across_processes(|t| t.clone(), |text| Some(text.to_owned()));
/// The request's database transaction: cleanup that outlives the request
/// must not use it.
static TRANSACTION: ScopeLocal<u64> = ScopeLocal::new("transaction").not_into_shields();

/// Where audit records go (standing in for a database).
static AUDIT: OnceLock<mpsc::UnboundedSender<String>> = OnceLock::new();

/// A slow report: registers its audit record on the request's scope, then
/// works until its client gives up.
async fn slow_report(scope: RequestScope) -> Result<String, taskscope::ScopeClosed> {
    let id = REQUEST_ID.get();
    scope.defer(Duration::from_secs(2), move |end| async move {
        let record = format!("audit: request {id:?} ended {end:?}");
        AUDIT.get().expect("set by main").send(record).ok();
        Ok(())
    })?;
    taskscope::token().cancelled().await; // the client hangs up
    Ok(String::new())
}

/// What a handler sees, as one line.
fn seen(place: &str) -> String {
    format!(
        "{place}: service={:?} request_id={:?} tenant={:?} transaction={:?}",
        SERVICE.get(),
        REQUEST_ID.get(),
        TENANT.get(),
        TRANSACTION.get()
    )
}

/// The next service: reports what it sees.
async fn next_service() -> String {
    seen("next service")
}

/// The frontend: a request scope with the caller's values, a transaction
/// of its own, work in a task and on the blocking pool, a call onwards,
/// and cleanup in a shield.
async fn frontend(next: String) -> Result<String, BoxError> {
    let mut lines = vec![seen("frontend handler")];
    // (`try_start` and a handle, not `run` and an async closure: axum
    // needs the handler's future to be `Send` for every lifetime.)
    let work = ScopeBuilder::new().bind(&TRANSACTION, 42).try_start(
        move |s: ScopeHandle<BoxError>| async move {
            let task = s.spawn(async { Ok(seen("spawned task")) })?;
            let blocking = s.spawn_blocking(|_token| Ok(seen("blocking task")))?;
            let onwards = s.spawn(async move {
                let response = reqwest::Client::new()
                    .get(next)
                    .cancellable()
                    .send()
                    .await?;
                Ok(response.text().await?)
            })?;
            let cleanup = ScopeBuilder::new()
                .shielded(Duration::from_secs(1))
                .try_start(|_: ScopeHandle<BoxError>| async { Ok(seen("shielded cleanup")) })?
                .await
                .map_err(ScopeError::into_error)?;
            Ok((task.await?, blocking.await?, onwards.await?, cleanup))
        },
    )?;
    let (task, blocking, onwards, cleanup) = work.await.map_err(ScopeError::into_error)?;
    lines.extend([task, blocking, onwards, cleanup]);
    Ok(lines.join("\n"))
}

/// Serves `router` on 127.0.0.1 in the current scope, its request scopes
/// reading the request id and the tenant from `baggage`; its address.
async fn serve(router: Router) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scope = taskscope::current_scope().unwrap();
    scope
        .spawn(async move {
            let requests = RequestScopes::new().accept(&REQUEST_ID).accept(&TENANT);
            let _ = taskscope::axum::serve(listener, router)
                .requests(requests)
                .await;
        })
        .unwrap();
    addr
}

#[taskscope::main(bind = (SERVICE, "example"))]
async fn main() -> Result<(), BoxError> {
    let (audit, mut records) = mpsc::unbounded_channel();
    AUDIT.set(audit).expect("main runs once");
    let next = serve(Router::new().route("/", get(next_service))).await;
    let next_url = format!("http://{next}/");
    let frontend_addr = serve(
        Router::new()
            .route(
                "/",
                get(move || async move {
                    frontend(next_url.clone())
                        .await
                        .unwrap_or_else(|error| format!("failed: {error}"))
                }),
            )
            .route("/slow", get(slow_report)),
    )
    .await;

    // The client: a request id and a tenant bound on its scope travel with
    // its call.
    let answer = ScopeBuilder::new()
        .bind(&REQUEST_ID, "r-1001".to_owned())
        .bind(&TENANT, "acme corp".to_owned())
        .run(async |_| {
            let response = reqwest::Client::new()
                .get(format!("http://{frontend_addr}/"))
                .cancellable()
                .send()
                .await?;
            Ok::<_, BoxError>(response.text().await?)
        })
        .await
        .map_err(|e| e.into_error())?;
    println!("{answer}");

    // A client that hangs up after 100 ms: the request's work is
    // cancelled, and its audit record is written anyway.
    let gave_up = ScopeBuilder::new()
        .bind(&REQUEST_ID, "r-1002".to_owned())
        .timeout(Duration::from_millis(100))
        .run(async |_| {
            reqwest::Client::new()
                .get(format!("http://{frontend_addr}/slow"))
                .cancellable()
                .send()
                .await?;
            Ok::<_, BoxError>(())
        })
        .await;
    assert!(gave_up.is_err());
    println!("{}", records.recv().await.expect("the audit record"));
    // Done: stop the servers.
    taskscope::current_scope().unwrap().cancel();
    Ok(())
}
