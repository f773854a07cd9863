//! Scope-local values (`taskscope::ScopeLocal`): bound when a scope opens,
//! seen on every path a task can take below the binding, shadowed by a
//! nested binding, stopped where the key's rule says, named (never shown)
//! in the tree, and read at the bottom of 10,000 nested scopes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use taskscope::axum::RequestScopeLayer;
use taskscope::remote::RequestScope;
use taskscope::service::{Service, Services};
use taskscope::{BoxError, Cancelled, ScopeBuilder, ScopeError, ScopeLocal, TaskSet};
use tokio::task::LocalSet;
use tower_layer::Layer;
use tower_service::Service as _;

static REQUEST_ID: ScopeLocal<String> = ScopeLocal::new("request_id");
static TENANT: ScopeLocal<Arc<str>> = ScopeLocal::new("tenant");
static STEP: ScopeLocal<u32> = ScopeLocal::new("step").this_scope_only();
static TRANSACTION: ScopeLocal<u64> = ScopeLocal::new("transaction").not_into_shields();

fn bound() -> ScopeBuilder {
    ScopeBuilder::new().bind(&REQUEST_ID, "r-1".to_owned())
}

#[tokio::test]
async fn outside_any_binding_a_read_is_none() {
    assert_eq!(REQUEST_ID.get(), None);
    let inside = taskscope::scope(async |_| Ok::<_, Cancelled>(REQUEST_ID.get())).await;
    assert_eq!(inside.unwrap(), None);
    REQUEST_ID.with(|id| assert!(id.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_sees_the_value_on_any_worker() {
    let seen = bound()
        .run(async |s| {
            let tasks: Vec<_> = (0..16)
                .map(|_| s.spawn(async { Ok::<_, Cancelled>(REQUEST_ID.get()) }))
                .collect();
            let mut seen = Vec::new();
            for task in tasks {
                seen.push(task.await?);
            }
            Ok(seen)
        })
        .await
        .unwrap();
    assert!(seen.iter().all(|v| v.as_deref() == Some("r-1")), "{seen:?}");
}

#[tokio::test]
async fn spawn_blocking_reads_it_on_the_blocking_thread() {
    let seen = bound()
        .run(async |s| {
            let task = s.spawn_blocking(|_token| {
                let thread = std::thread::current().name().map(str::to_owned);
                Ok::<_, Cancelled>((REQUEST_ID.get(), thread))
            });
            task.await
        })
        .await
        .unwrap();
    assert_eq!(seen.0.as_deref(), Some("r-1"));
    assert_ne!(seen.1.as_deref(), Some("main"));
}

#[tokio::test]
async fn spawn_local_sees_it() {
    let local = LocalSet::new();
    let seen = local
        .run_until(bound().run(async |s| {
            s.spawn_local(async { Ok::<_, Cancelled>(REQUEST_ID.get()) })
                .await
        }))
        .await
        .unwrap();
    assert_eq!(seen.as_deref(), Some("r-1"));
}

#[tokio::test]
async fn a_handle_spawning_from_another_runtime_thread_sees_it() {
    let seen = bound()
        .run(async |s| {
            let handle = s.handle();
            // Another thread with a runtime of its own spawns into the scope.
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let task = handle
                        .spawn(async { Ok::<_, Cancelled>(REQUEST_ID.get()) })
                        .unwrap();
                    tx.send(task.await).unwrap();
                });
            });
            rx.await.unwrap()
        })
        .await
        .unwrap();
    assert_eq!(seen.as_deref(), Some("r-1"));
}

#[tokio::test]
async fn task_sets_and_start_see_it() {
    let (from_set, from_start) = bound()
        .run(async |s| {
            let mut set = TaskSet::new();
            set.push(s.spawn(async { Ok::<_, Cancelled>(REQUEST_ID.get()) }));
            let from_set = set.join_next().await.unwrap()?;
            let from_start = s
                .start(async |ready| {
                    ready.send(REQUEST_ID.get());
                    Ok(())
                })
                .await
                .unwrap();
            Ok((from_set, from_start))
        })
        .await
        .unwrap();
    assert_eq!(from_set.as_deref(), Some("r-1"));
    assert_eq!(from_start.as_deref(), Some("r-1"));
}

#[tokio::test]
async fn a_services_runs_see_it() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    bound()
        .run(async |_| {
            Services::new()
                .run(async |services| {
                    let tx = tx.clone();
                    services.spawn(Service::new("reader"), move |_ctx| {
                        let tx = tx.clone();
                        async move {
                            tx.send(REQUEST_ID.get()).unwrap();
                            Ok::<_, std::io::Error>(())
                        }
                    });
                    Ok(())
                })
                .await
        })
        .await
        .unwrap();
    assert_eq!(rx.recv().await.unwrap().as_deref(), Some("r-1"));
}

#[tokio::test]
async fn an_axum_request_scope_and_what_its_handler_spawns_see_it() {
    let response = bound()
        .bind(&TENANT, Arc::from("acme"))
        .run(async |_| {
            let mut app = Router::new()
                .route(
                    "/",
                    get(|scope: RequestScope| async move {
                        let here = TENANT.get().unwrap_or_else(|| "none".into());
                        let spawned = scope
                            .spawn(async { Ok::<_, BoxError>(REQUEST_ID.get()) })
                            .unwrap()
                            .await
                            .unwrap();
                        format!("{here} {}", spawned.unwrap_or_default())
                    }),
                )
                .layer(RequestScopeLayer::new());
            let response = app.call(Request::new(Body::empty())).await.unwrap();
            let body = axum::body::to_bytes(response.into_body(), 64)
                .await
                .unwrap();
            Ok::<_, Cancelled>(body)
        })
        .await
        .unwrap();
    assert_eq!(response, "acme r-1");
}

#[tokio::test]
async fn a_tonic_call_scope_sees_it() {
    let seen = bound()
        .run(async |_| {
            let mut service = taskscope::tonic::GrpcScopeLayer::new().layer(Echo);
            let response = service
                .call(http::Request::new(tonic::body::Body::empty()))
                .await
                .unwrap();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            Ok::<_, Cancelled>(body)
        })
        .await
        .unwrap();
    assert_eq!(seen, "true r-1");
}

/// A gRPC server's routes, reduced to one answer: whether the call's scope
/// is in the request's extensions, and the request id the handler sees.
#[derive(Clone)]
struct Echo;

impl tower_service::Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let in_extensions = request.extensions().get::<RequestScope>().is_some();
            let id = REQUEST_ID.get().unwrap_or_default();
            let body = tonic::body::Body::new(http_body_util::Full::new(bytes::Bytes::from(
                format!("{in_extensions} {id}"),
            )));
            Ok(http::Response::new(body))
        })
    }
}

#[tokio::test]
async fn a_nested_binding_shadows_for_that_scope_and_below_only() {
    bound()
        .run(async |s| {
            ScopeBuilder::new()
                .bind(&REQUEST_ID, "r-1/inner".to_owned())
                .run(async |inner| {
                    let below = inner.spawn(async {
                        taskscope::scope(async |_| Ok::<_, Cancelled>(REQUEST_ID.get()))
                            .await
                            .map_err(ScopeError::into_error)
                    });
                    let below = below.await?;
                    assert_eq!(below.as_deref(), Some("r-1/inner"));
                    Ok::<_, Cancelled>(())
                })
                .await
                .unwrap();
            let sibling = s.spawn(async { Ok::<_, Cancelled>(REQUEST_ID.get()) });
            assert_eq!(sibling.await?.as_deref(), Some("r-1"));
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn this_scope_only_reaches_its_tasks_not_nested_scopes() {
    ScopeBuilder::new()
        .bind(&STEP, 3)
        .run(async |s| {
            assert_eq!(STEP.get(), Some(3));
            let own = s.spawn(async { Ok::<_, Cancelled>(STEP.get()) });
            assert_eq!(own.await?, Some(3));
            let nested = taskscope::scope(async |n| {
                let task = n.spawn(async { Ok::<_, Cancelled>(STEP.get()) });
                Ok::<_, Cancelled>((STEP.get(), task.await?))
            });
            assert_eq!(nested.await.unwrap(), (None, None));
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn not_into_shields_stops_at_a_shield_and_below_it() {
    ScopeBuilder::new()
        .bind(&TRANSACTION, 9)
        .bind(&REQUEST_ID, "r-1".to_owned())
        .run(async |_| {
            let (in_shield, below_shield, id_in_shield) = ScopeBuilder::new()
                .shielded(Duration::from_secs(5))
                .run(async |shield| {
                    let below = shield.spawn(async {
                        taskscope::scope(async |_| Ok::<_, Cancelled>(TRANSACTION.get()))
                            .await
                            .map_err(ScopeError::into_error)
                    });
                    let below = below.await?;
                    Ok::<_, Cancelled>((TRANSACTION.get(), below, REQUEST_ID.get()))
                })
                .await
                .unwrap();
            assert_eq!(in_shield, None);
            assert_eq!(below_shield, None);
            // Other keys still reach into the shield.
            assert_eq!(id_in_shield.as_deref(), Some("r-1"));
            // Outside the shield the value is still there.
            let plain = taskscope::scope(async |_| Ok::<_, Cancelled>(TRANSACTION.get()));
            assert_eq!(plain.await.unwrap(), Some(9));
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_tree_and_debug_name_the_keys_never_the_values() {
    ScopeBuilder::new()
        .name("request")
        .bind(&REQUEST_ID, "secret-value".to_owned())
        .bind(&TENANT, Arc::from("acme-secret"))
        .run(async |s| {
            s.spawn(async {
                taskscope::token().cancelled().await;
                Ok::<_, Cancelled>(())
            });
            tokio::task::yield_now().await;
            let snapshot = s.snapshot().unwrap();
            assert_eq!(snapshot.binds, ["request_id", "tenant"]);
            let text = snapshot.to_string();
            assert!(text.contains("(binds request_id, tenant)"), "{text}");
            let debug = format!("{:?} {:?}", snapshot, taskscope::current_scope().unwrap());
            assert!(debug.contains("request_id"), "{debug}");
            for shown in [&text, &debug] {
                assert!(!shown.contains("secret"), "{shown}");
            }
            // A nested scope that binds nothing names no keys of its own.
            let nested = taskscope::scope(async |n| {
                tokio::task::yield_now().await;
                Ok::<_, Cancelled>(n.snapshot().unwrap().binds.clone())
            });
            assert!(nested.await.unwrap().is_empty());
            s.cancel();
            Ok(())
        })
        .await
        .unwrap();
}

type Level = Pin<Box<dyn Future<Output = Result<Option<String>, Cancelled>> + Send>>;

/// `levels` nested scopes, each binding `REQUEST_ID`; the innermost reads it.
fn nest(levels: usize) -> Level {
    Box::pin(async move {
        ScopeBuilder::new()
            .bind(&REQUEST_ID, format!("level {levels}"))
            .run(async move |_s| {
                if levels == 1 {
                    Ok(REQUEST_ID.get())
                } else {
                    nest(levels - 1).await
                }
            })
            .await
            .map_err(ScopeError::into_error)
    })
}

#[test]
fn ten_thousand_nested_bindings_read_at_the_bottom_on_a_small_stack() {
    let seen = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(bound().run(async |_| nest(10_000).await))
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(seen.unwrap().as_deref(), Some("level 1"));
}

#[tokio::test]
async fn scope_macro_binds_keys_and_may_bind_several() {
    let seen = taskscope::scope!(
        name = "request",
        bind = (REQUEST_ID, "r-7".to_owned()),
        bind = (TENANT, Arc::from("acme")),
        |s| {
            let task = s.spawn(async { Ok::<_, Cancelled>((REQUEST_ID.get(), TENANT.get())) });
            task.await
        }
    )
    .await
    .unwrap();
    assert_eq!(seen.0.as_deref(), Some("r-7"));
    assert_eq!(seen.1.as_deref(), Some("acme"));
}

#[taskscope::test(bind = (REQUEST_ID, "from the test's root".to_owned()), bind = (STEP, 1))]
async fn taskscope_test_binds_on_its_root_scope() {
    let root = taskscope::current_scope().unwrap();
    assert_eq!(root.snapshot().unwrap().binds, ["request_id", "step"]);
    let spawned = taskscope::scope(async |s| {
        s.spawn(async { Ok::<_, Cancelled>(REQUEST_ID.get()) })
            .await
    })
    .await
    .unwrap();
    assert_eq!(spawned.as_deref(), Some("from the test's root"));
    // `STEP` is this-scope-only: the root's body sees it, a nested scope not.
    assert_eq!(STEP.get(), Some(1));
    let nested = taskscope::scope(async |_| Ok::<_, Cancelled>(STEP.get())).await;
    assert_eq!(nested.unwrap(), None);
}
