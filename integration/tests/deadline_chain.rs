//! Deadlines and cancellation across three real services on 127.0.0.1:
//! A (axum) → B (tonic) → C (axum, an interruptible SQLite query), with
//! real clients (hyper, tonic's channel, reqwest). See
//! `integration/tests/support/chain.rs` and docs/distributed.md.
//!
//! Real sockets: no paused clock. Bounds on time are generous, except the
//! one the contract names (tokens fire within 50 ms of the deadline).

use std::time::Duration;

use axum::http::StatusCode;
use taskscope::{CancelReason, Cancelled, ScopeBuilder};
use tokio::time::Instant;

#[path = "support/chain.rs"]
mod chain;
#[path = "support/http.rs"]
mod http_client;

use chain::{Event, Log};
use http_client::Client;

/// Runs `test` with the chain up, in a scope that stops it afterwards.
async fn with_chain<F>(test: F)
where
    F: AsyncFnOnce(chain::Chain, Log),
{
    let log = Log::default();
    ScopeBuilder::new()
        .name("chain")
        .cancel_on_exit(true)
        .run(async |_s| {
            let chain = chain::start(&log).await;
            test(chain, log.clone()).await;
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
}

/// Waits (up to 10 s) until `done` holds for the log.
async fn until(log: &Log, done: impl Fn(&[Event]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&log.events()) {
        assert!(
            Instant::now() < deadline,
            "gave up waiting; events: {:#?}",
            log.events()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn query_ended(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::QueryEnded { .. }))
}

/// 1 and 5: a 300 ms budget sent to A reaches B and C, shrinking by the
/// margin at each hop; all three tokens fire with the caller's deadline as
/// the reason, within 50 ms of it; C's query is interrupted; nothing is
/// left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_ms_budget_stops_all_three_services_at_the_deadline() {
    with_chain(async |chain, log| {
        let mut client = Client::connect(chain.a).await;
        let sent = Instant::now();
        let (status, _body) = client
            .get_with("/work", &[("x-request-budget-ms", "300")])
            .await;
        let deadline = sent + Duration::from_millis(300);
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        until(&log, query_ended).await;

        for service in ["A", "B", "C"] {
            let (reason, at) = log
                .cancelled(service)
                .unwrap_or_else(|| panic!("{service} was not cancelled: {:#?}", log.events()));
            assert_eq!(reason, CancelReason::RemoteDeadline, "{service}");
            let off = if at > deadline {
                at - deadline
            } else {
                deadline - at
            };
            assert!(
                off <= Duration::from_millis(50),
                "{service} fired {off:?} from the deadline"
            );
        }
        assert!(log.query_interrupted(), "{:#?}", log.events());

        // 5: each hop keeps back its margin; the budget shrinks along the chain.
        let left = |s| {
            log.started(s)
                .flatten()
                .unwrap_or_else(|| panic!("{s} had no deadline"))
        };
        let (a, b, c) = (left("A"), left("B"), left("C"));
        assert!(a <= Duration::from_millis(300), "{a:?}");
        assert!(a > b && b > c, "A {a:?}, B {b:?}, C {c:?}");
        assert!(
            a - b >= taskscope::remote::Outbound::http().margin_value(),
            "A {a:?}, B {b:?}"
        );
        assert!(
            b - c >= taskscope::remote::Outbound::http().margin_value(),
            "B {b:?}, C {c:?}"
        );

        // Nothing left running in any service (the audit writer aside,
        // which is shielded and bounded: see test 4).
        until(&log, |events| events.contains(&Event::AuditWritten)).await;
        // This test's own chain scope (other tests run chains of their own
        // in parallel): the body runs in it.
        let chain_scope = taskscope::current_scope().unwrap().snapshot().unwrap();
        let busy: Vec<_> = chain_scope.scopes.iter().map(|r| r.name.clone()).collect();
        assert!(
            busy.is_empty(),
            "request scopes still open: {busy:?}\n{chain_scope}"
        );
    })
    .await;
}

/// 2 and 4: A's client hangs up while C's query runs. B and C are
/// cancelled and their reason says the caller left; C's query is
/// interrupted; C's shielded audit write still finishes after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_cancels_b_and_c_and_the_reason_says_so() {
    with_chain(async |chain, log| {
        let client = Client::connect(chain.a).await;
        let request = tokio::spawn(async move {
            let mut client = client;
            client.get("/work").await
        });
        until(&log, |events| {
            events.iter().any(|e| matches!(e, Event::Started("C", _)))
        })
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        request.abort(); // drops the client: the connection closes
        until(&log, query_ended).await;

        for service in ["A", "B", "C"] {
            let (reason, _) = log
                .cancelled(service)
                .unwrap_or_else(|| panic!("{service} was not cancelled: {:#?}", log.events()));
            assert_eq!(reason, CancelReason::ClientDisconnected, "{service}");
        }
        assert!(log.query_interrupted(), "{:#?}", log.events());
        // 4: the detached subtree finished its work after the caller left.
        until(&log, |events| events.contains(&Event::AuditWritten)).await;
        let audit = log.events().iter().position(|e| *e == Event::AuditWritten);
        let stopped = log
            .events()
            .iter()
            .position(|e| matches!(e, Event::Cancelled("C", ..)));
        assert!(
            stopped < audit,
            "the audit was written after C was cancelled"
        );
    })
    .await;
}

/// 3: a request that arrives with its budget already spent runs no handler
/// code, at A (HTTP) or at B (gRPC).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_budget_runs_no_handler() {
    with_chain(async |chain, log| {
        let mut client = Client::connect(chain.a).await;
        let (status, _) = client
            .get_with("/work", &[("x-request-budget-ms", "0")])
            .await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);

        // 90 ms, under B's minimum of 100 ms: expired on arrival (a zero
        // budget would expire in tonic's own client before it was sent).
        let status = call_b(chain.b, "90m").await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        assert!(
            !log.ran("A") && !log.ran("B") && !log.ran("C"),
            "{:#?}",
            log.events()
        );
    })
    .await;
}

/// 6: malformed budget headers get a clear error and run nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_budget_headers_are_refused_clearly() {
    with_chain(async |chain, log| {
        let mut client = Client::connect(chain.a).await;
        for bad in ["soon", "-300", "1.5", "99999999999999999999999"] {
            let (status, body) = client
                .get_with("/work", &[("x-request-budget-ms", bad)])
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(
                body.contains("bad x-request-budget-ms header"),
                "{bad}: {body}"
            );
        }
        for bad in ["300", "300x", "123456789S", "-1S"] {
            let status = call_b(chain.b, bad).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad}");
            assert!(
                status.message().contains("bad grpc-timeout header"),
                "{bad}: {status:?}"
            );
        }
        assert!(!log.ran("A") && !log.ran("B"), "{:#?}", log.events());
    })
    .await;
}

/// A call to B with a raw `grpc-timeout` value, past any client layer.
async fn call_b(b: std::net::SocketAddr, timeout: &str) -> Result<String, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{b}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    let mut request = tonic::Request::new("raw".to_owned());
    request
        .metadata_mut()
        .insert("grpc-timeout", timeout.parse().unwrap());
    let path = http::uri::PathAndQuery::from_static(chain::B_WORK);
    client
        .unary(request, path, chain::Utf8Codec)
        .await
        .map(tonic::Response::into_inner)
}

/// Calls A with a 300 ms budget and `baggage`; once C's handler ran, the
/// tenant each of A, B and C saw.
async fn tenants_seen(
    chain: &chain::Chain,
    log: &Log,
    baggage: &str,
) -> Vec<Option<Option<String>>> {
    let mut client = Client::connect(chain.a).await;
    let (status, _body) = client
        .get_with(
            "/work",
            &[("x-request-budget-ms", "300"), ("baggage", baggage)],
        )
        .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    until(log, |events| {
        events.iter().any(|e| matches!(e, Event::Tenant("C", _)))
    })
    .await;
    ["A", "B", "C"].map(|service| log.tenant(service)).to_vec()
}

/// A scope-local value that travels: the caller's `baggage` binds the
/// tenant on A's request scope; A's call to B (tonic's channel) and B's to
/// C (reqwest) carry it on, each server reading it into its request scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_in_baggage_reaches_b_and_c() {
    with_chain(async |chain, log| {
        let seen = tenants_seen(&chain, &log, "unrelated=1, tenant=acme%20corp;ttl=5").await;
        let acme = Some(Some("acme corp".to_owned()));
        assert_eq!(
            seen,
            [acme.clone(), acme.clone(), acme],
            "{:#?}",
            log.events()
        );
    })
    .await;
}

/// Untrusted baggage: a malformed member is skipped, never a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_baggage_is_skipped_and_the_request_runs() {
    with_chain(async |chain, log| {
        let seen = tenants_seen(&chain, &log, "tenant=%zz,=,;;").await;
        assert_eq!(seen, [Some(None), Some(None), Some(None)]);
    })
    .await;
}
