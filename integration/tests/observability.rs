//! The live task tree and tracing (docs/semantics.md, part II §9): a known tree is asserted
//! structurally, and the events a scope emits are captured with their
//! levels.

use std::time::Duration;

use taskscope::tree::RunState;
use taskscope::{CancelReason, Cancelled, ScopeBuilder};
use tokio::time::sleep;

mod support;
use support::capture::Capture;
use support::until_cancelled;

#[tokio::test(start_paused = true)]
async fn snapshot_of_a_known_tree_has_states_reasons_and_nesting() {
    ScopeBuilder::new()
        .name("server")
        .run(async |server| {
            server.task().name("accept loop").spawn(until_cancelled());
            let request = server.task().name("request 7 handler").spawn(async {
                ScopeBuilder::new()
                    .name("request 7")
                    .run(async |request| {
                        request.spawn(async {
                            sleep(Duration::from_secs(100)).await; // ignores its token
                            Ok::<_, Cancelled>(())
                        });
                        sleep(Duration::from_secs(1)).await;
                        request.cancel_with(CancelReason::message("client disconnected"));
                        Ok(())
                    })
                    .await
                    .map_err(taskscope::ScopeError::into_error)
            });
            sleep(Duration::from_secs(41)).await;

            let tree = taskscope::tree();
            let server_node = tree
                .scopes
                .iter()
                .find(|s| s.name.as_deref() == Some("server"))
                .expect("the server scope is a root");
            assert_eq!(server_node.state, RunState::Running);
            assert_eq!(server_node.age, Duration::from_secs(41));
            let names: Vec<_> = server_node.tasks.iter().map(|t| t.name.clone()).collect();
            assert_eq!(
                names,
                [Some("accept loop".into()), Some("request 7 handler".into())]
            );
            assert!(server_node.tasks.iter().all(|t| t
                .location
                .starts_with("integration/tests/observability.rs:")));

            assert_eq!(server_node.scopes.len(), 1);
            let request_node = &server_node.scopes[0];
            assert_eq!(request_node.name.as_deref(), Some("request 7"));
            assert_eq!(request_node.state, RunState::CancelRequested);
            assert_eq!(request_node.cancelled_for, Some(Duration::from_secs(40)));
            assert_eq!(
                request_node.reason.as_deref(),
                Some("cancellation requested: client disconnected")
            );
            assert_eq!(request_node.tasks.len(), 1);
            assert_eq!(request_node.tasks[0].name, None);
            assert_eq!(request_node.tasks[0].state, RunState::CancelRequested);

            let text = tree.to_string();
            assert!(
                text.contains("scope \"server\" (integration/tests/observability.rs:"),
                "{text}"
            );
            assert!(text.contains("├─ task \"accept loop\""), "{text}");
            assert!(
                text.contains("└─ scope \"request 7\"")
                    && text.contains(
                        "cancel requested 40s ago: cancellation requested: client disconnected"
                    ),
                "{text}"
            );
            assert!(text.contains("holding the scope"), "{text}");

            // The same subtree from the scope itself.
            assert_eq!(server.snapshot().unwrap().scopes.len(), 1);
            server.cancel();
            let _ = request.await;
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
    assert!(
        !taskscope::tree()
            .scopes
            .iter()
            .any(|s| s.name.as_deref() == Some("server")),
        "a finished scope leaves the tree"
    );
}

#[tokio::test(start_paused = true)]
async fn aborting_tasks_show_as_aborting() {
    ScopeBuilder::new()
        .name("aborter")
        .grace_period(Duration::from_secs(1))
        .run(async |s| {
            s.task().name("stubborn").spawn(async {
                std::future::pending::<()>().await;
                Ok::<_, Cancelled>(())
            });
            s.cancel();
            sleep(Duration::from_secs(2)).await;
            let snapshot = s.snapshot().unwrap();
            assert_eq!(snapshot.state, RunState::Aborting);
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn spans_and_events_carry_names_and_levels() {
    let capture = Capture::default();
    let _guard = capture.install();

    // Ordinary cancellation: a debug event with the reason, nothing louder.
    ScopeBuilder::new()
        .name("quiet")
        .run(async |s| {
            s.task().name("waiter").spawn(until_cancelled());
            s.cancel_with(CancelReason::message("done for today"));
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
    {
        let events = capture.0.lock().unwrap();
        assert!(
            events
                .iter()
                .any(|(level, fields)| *level == tracing::Level::DEBUG
                    && fields.contains("done for today")),
            "{events:?}"
        );
        assert!(
            events
                .iter()
                .all(|(level, _)| *level > tracing::Level::WARN),
            "ordinary cancellation logged loudly: {events:?}"
        );
        let spans = capture.1.lock().unwrap();
        assert!(
            spans
                .iter()
                .any(|(name, fields)| name == "scope" && fields.contains("quiet")),
            "{spans:?}"
        );
        assert!(
            spans
                .iter()
                .any(|(name, fields)| name == "task" && fields.contains("waiter")),
            "{spans:?}"
        );
    }

    // A failure that fails the scope: one error event naming the task.
    let _ = ScopeBuilder::new()
        .name("loud")
        .run(async |s| {
            s.task()
                .name("db")
                .spawn(async { Err::<(), _>(std::io::Error::other("gone")) });
            s.task().name("sibling").spawn(async {
                until_cancelled().await?;
                Ok::<_, std::io::Error>(())
            });
            Ok::<_, std::io::Error>(())
        })
        .await;
    let events = capture.0.lock().unwrap();
    let errors: Vec<_> = events
        .iter()
        .filter(|(level, _)| *level == tracing::Level::ERROR)
        .collect();
    assert_eq!(errors.len(), 1, "{events:?}");
    assert!(errors[0].1.contains("task=db"), "{events:?}");
}

#[tokio::test]
async fn snapshot_serialises_to_json() {
    ScopeBuilder::new()
        .name("json")
        .run(async |s| {
            s.task().name("worker").spawn(until_cancelled());
            tokio::task::yield_now().await;
            let json = serde_json::to_value(s.snapshot()).unwrap();
            assert_eq!(json["name"], "json");
            assert_eq!(json["state"], "running");
            assert_eq!(json["tasks"][0]["name"], "worker");
            s.cancel();
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
}

/// A service logs each failure with its attempt number, error and delay (a
/// warning), and giving up as an error; a shutdown logs nothing loud.
#[tokio::test(start_paused = true)]
async fn a_service_logs_each_failure_with_its_attempt_and_reason() {
    use taskscope::service::{Backoff, Service};

    let capture = Capture::default();
    let _guard = capture.install();
    let result = Service::new("importer")
        .backoff(Backoff::fixed(Duration::from_secs(2)))
        .budget(2, Duration::from_secs(60))
        .run(|_| async { Err::<(), _>(std::io::Error::other("disk full")) })
        .await;
    assert!(result.is_err());
    let events = capture.0.lock().unwrap();
    let warnings: Vec<_> = events
        .iter()
        .filter(|(level, _)| *level == tracing::Level::WARN)
        .map(|(_, fields)| fields.clone())
        .collect();
    assert_eq!(warnings.len(), 2, "one per restart: {events:?}");
    for (attempt, fields) in warnings.iter().enumerate() {
        assert!(fields.contains("service=importer"), "{fields}");
        assert!(
            fields.contains(&format!("attempt={}", attempt + 1)),
            "{fields}"
        );
        assert!(fields.contains("error=disk full"), "{fields}");
        assert!(fields.contains("retry_in=2s"), "{fields}");
    }
    assert!(
        events
            .iter()
            .any(|(level, fields)| *level == tracing::Level::ERROR
                && fields.contains("gave up")
                && fields.contains("2 restarts")),
        "{events:?}"
    );
}

/// The caller's deadline is logged when a request arrives (with its
/// budget), and how the request ended: by that deadline, or because the
/// caller left.
#[tokio::test(start_paused = true)]
async fn a_request_logs_the_budget_it_received_and_why_it_stopped() {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use taskscope::axum::RequestScopeLayer;
    use taskscope::remote::{Inbound, RequestScopes};
    use tower_service::Service;

    let capture = Capture::default();
    let _guard = capture.install();
    let mut app = axum::Router::new()
        .route("/", get(|| async { std::future::pending::<()>().await }))
        .layer(RequestScopeLayer::from(
            RequestScopes::new().deadline_from(Inbound::http()),
        ));

    let request = |budget: &str| {
        Request::get("/")
            .header("x-request-budget-ms", budget)
            .body(Body::empty())
            .unwrap()
    };
    // Dropped after 100 ms of a 250 ms budget: the caller left.
    let call = app.call(request("250"));
    let _ = tokio::time::timeout(Duration::from_millis(100), call).await;
    // Past its 50 ms budget (axum's answer after the handler stops is 504).
    let call = app.call(request("50"));
    let _ = tokio::time::timeout(Duration::from_millis(200), call).await;

    let events = capture.0.lock().unwrap();
    let debug: Vec<&String> = events
        .iter()
        .filter(|(level, _)| *level == tracing::Level::DEBUG)
        .map(|(_, fields)| fields)
        .collect();
    let has = |text: &str| debug.iter().any(|fields| fields.contains(text));
    assert!(
        has("deadline received from the caller") && has("budget_ms=250"),
        "{debug:?}"
    );
    assert!(has("budget_ms=50"), "{debug:?}");
    assert!(has("the caller left"), "{debug:?}");
    assert!(has("cancelled by the caller's deadline"), "{debug:?}");
}
