//! gRPC callers the project did not write, against a tonic server under
//! `GrpcScopeLayer`, over real HTTP/2 on 127.0.0.1: a call whose deadline
//! passes while its handler waits on its token is answered
//! `DEADLINE_EXCEEDED` with `x-cancel-reason: deadline`, every time, though
//! tonic's own timer, armed for the same instant, answers `CANCELLED`.
//!
//! * `curl` sends a raw gRPC request with `grpc-timeout` and keeps no
//!   deadline of its own, so what it prints is exactly the server's answer;
//! * Python's `grpcio` (which `.ci/run` installs) is a caller as users have
//!   one: it also enforces its deadline itself, so it may report its own
//!   `DEADLINE_EXCEEDED` (without the server's trailers) first, but never
//!   `CANCELLED`.
//!
//! `curl` also sends W3C `baggage`: the call's scope sees the tenant a
//! well-formed member carries, and a malformed one binds nothing.
#![cfg(not(loom))]

use std::net::SocketAddr;
use std::process::Command;

use taskscope::remote::RequestScopes;
use taskscope::tonic::GrpcScopeLayer;
use taskscope::{CancelReason, Cancelled};
use tokio::net::TcpListener;

#[path = "support/chain.rs"]
mod chain;

use chain::Unary;

const WAIT: &str = "/chain/Wait";

/// The script's path, from this crate's directory.
fn client_script() -> String {
    format!(
        "{}/tests/support/grpc_client.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Where grpcio is importable from: the system's Python if it has it
/// (`.ci/run` installs it there), else a copy this test installs once from
/// PyPI into the target directory, so the suite needs no step by hand.
fn grpcio_path() -> Option<String> {
    let has_grpcio = |path: Option<&str>| {
        let mut python = Command::new("python3");
        python.args(["-c", "import grpc"]);
        if let Some(path) = path {
            python.env("PYTHONPATH", path);
        }
        python.output().is_ok_and(|out| out.status.success())
    };
    if has_grpcio(None) {
        return None;
    }
    let local = format!("{}/grpcio", env!("CARGO_TARGET_TMPDIR"));
    if !has_grpcio(Some(&local)) {
        let installed = Command::new("python3")
            .args([
                "-m", "pip", "install", "--quiet", "--target", &local, "grpcio",
            ])
            .status()
            .expect("cannot run pip");
        assert!(installed.success(), "could not install grpcio into {local}");
    }
    Some(local)
}

/// Runs the Python client: `count` calls with a deadline of `timeout_ms`;
/// one line per call, "CODE REASON".
fn python_calls(addr: SocketAddr, count: usize, timeout_ms: u64) -> Vec<String> {
    let mut python = Command::new("python3");
    if let Some(path) = grpcio_path() {
        python.env("PYTHONPATH", path);
    }
    let output = python
        .arg(client_script())
        .arg(addr.to_string())
        .arg(WAIT)
        .arg(count.to_string())
        .arg(timeout_ms.to_string())
        .output()
        .expect("cannot run python3");
    assert!(
        output.status.success(),
        "the grpcio client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs `curl` once: a raw gRPC request (one empty message) with
/// `grpc-timeout: {timeout_ms}m`; returns "STATUS REASON" from the
/// response's trailers.
fn curl_call(addr: SocketAddr, timeout_ms: u64) -> String {
    curl_call_with(addr, timeout_ms, &[])
}

/// [`curl_call`] with more request headers (`"name: value"`).
fn curl_call_with(addr: SocketAddr, timeout_ms: u64, headers: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--http2-prior-knowledge"])
        .args([
            "--max-time",
            "10",
            "--output",
            "/dev/null",
            "--dump-header",
            "-",
        ])
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .args(["-H", &format!("grpc-timeout: {timeout_ms}m")])
        .args(headers.iter().flat_map(|header| ["-H", header]))
        // A gRPC message: not compressed, length 0.
        .args(["--data-binary", "@-"])
        .arg(format!("http://{addr}{WAIT}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&[0, 0, 0, 0, 0])?;
            child.wait_with_output()
        })
        .expect("cannot run curl");
    assert!(output.status.success(), "curl failed: {output:?}");
    let headers = String::from_utf8_lossy(&output.stdout).to_lowercase();
    let field = |name: &str| {
        headers
            .lines()
            .find_map(|line| line.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| "-".to_owned())
    };
    format!("{} {}", field("grpc-status:"), field("x-cancel-reason:"))
}

/// A scope-local value callers may send in `baggage`.
static TENANT: taskscope::ScopeLocal<String> = taskscope::ScopeLocal::new("tenant")
    .across_processes(|tenant| tenant.clone(), |text| Some(text.to_owned()));

/// The tenant each call's handler saw, in order.
static TENANTS_SEEN: std::sync::Mutex<Vec<Option<String>>> = std::sync::Mutex::new(Vec::new());

/// Runs `client` against a server whose one method records the tenant it
/// sees and waits on its token.
async fn against_waiting_server<T: Send + 'static>(
    client: impl FnOnce(SocketAddr) -> T + Send + 'static,
) -> T {
    taskscope::scope(async |s| {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = s.token();
        let waits = Unary::new(WAIT, |_request| async {
            TENANTS_SEEN.lock().unwrap().push(TENANT.get());
            // The handler stops when its token fires, and says why.
            let token = taskscope::token();
            token.cancelled().await;
            let reason = token.reason().unwrap_or(CancelReason::requested());
            Err(tonic::Status::from(Cancelled::new(reason)))
        });
        s.spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            tonic::transport::Server::builder()
                .layer(GrpcScopeLayer::from(RequestScopes::new().accept(&TENANT)))
                .add_service(waits)
                .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await })
                .await
                .map_err(|e| Cancelled::new(CancelReason::message(e.to_string())))
        });
        let outcome = tokio::task::spawn_blocking(move || client(addr))
            .await
            .unwrap();
        s.cancel();
        Ok::<_, Cancelled>(outcome)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_is_answered_deadline_exceeded_on_the_wire_every_time() {
    let calls =
        against_waiting_server(|addr| (0..30).map(|_| curl_call(addr, 100)).collect::<Vec<_>>())
            .await;
    for (i, call) in calls.iter().enumerate() {
        // 4 is DEADLINE_EXCEEDED (tonic's own answer would be 1, CANCELLED).
        assert_eq!(call, "4 deadline", "call {i}: {calls:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpcio_caller_sees_deadline_exceeded_never_cancelled() {
    let calls = against_waiting_server(|addr| python_calls(addr, 30, 100)).await;
    assert_eq!(calls.len(), 30, "{calls:?}");
    for (i, call) in calls.iter().enumerate() {
        assert!(
            call == "DEADLINE_EXCEEDED deadline" || call == "DEADLINE_EXCEEDED -",
            "call {i}: {calls:?}"
        );
    }
}

/// A caller the project did not write sends W3C `baggage`: the call's
/// scope sees the tenant in it (percent-decoded); a malformed member is
/// skipped and the call still runs to its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curls_baggage_reaches_the_handler_and_a_malformed_member_is_skipped() {
    let calls = against_waiting_server(|addr| {
        [
            curl_call_with(addr, 100, &["baggage: other=1, tenant=acme%20corp;ttl=5"]),
            curl_call_with(addr, 100, &["baggage: tenant=%zz"]),
        ]
    })
    .await;
    assert_eq!(calls, ["4 deadline", "4 deadline"]);
    // Other tests' calls send no baggage: the one tenant any handler saw
    // is the well-formed one, and the malformed member bound nothing.
    let seen = TENANTS_SEEN.lock().unwrap().clone();
    let tenants: Vec<&String> = seen.iter().flatten().collect();
    assert_eq!(tenants, ["acme corp"], "{seen:?}");
}
