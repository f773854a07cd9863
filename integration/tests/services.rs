//! Services: restarts with backoff and a budget, the periodic form,
//! readiness, and the ordered, phased stop. Paused time wherever no real
//! socket is involved.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskscope::service::{Backoff, OnGiveUp, ReadyState, Restart, Service, ServiceError, Services};
use taskscope::{CancelReason, CancellationSource, ScopeBuilder};
use tokio::time::Instant;

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn push(log: &Log, line: impl Into<String>) {
    log.lock().unwrap().push(line.into());
}

fn lines(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// Runs `body` in a scope whose parent fires with `Shutdown` after `after`.
async fn with_shutdown_after<F>(after: Duration, body: F) -> Result<(), ServiceError>
where
    F: AsyncFnOnce() -> Result<(), ServiceError>,
{
    let host = CancellationSource::new();
    let token = host.token();
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(after).await;
        host.cancel_with(CancelReason::Shutdown);
    });
    let result = ScopeBuilder::new()
        .parent(&token)
        .run(async |_s| body().await)
        .await
        .map_err(taskscope::ScopeError::into_error);
    stopper.abort();
    result
}

/// The .NET walkthrough's sync: 10 s of work, failing on the runs listed in `fail_on`.
async fn sync_data(run: u32, fail_on: &[u32], log: &Log, t0: Instant) -> io::Result<()> {
    push(log, format!("start {run} at {}s", t0.elapsed().as_secs()));
    let token = taskscope::token();
    if let Err(cancelled) = token
        .run_until_cancelled(tokio::time::sleep(Duration::from_secs(10)))
        .await
    {
        push(
            log,
            format!("cancelled {run} at {}s", t0.elapsed().as_secs()),
        );
        return Err(cancelled.into());
    }
    if fail_on.contains(&run) {
        return Err(io::Error::other("upstream returned 503"));
    }
    Ok(())
}

fn data_sync() -> Service {
    Service::new("data sync")
        .every(Duration::from_secs(5 * 60))
        .retry_after(Duration::from_secs(30))
}

#[tokio::test(start_paused = true)]
async fn a_failed_sync_retries_after_30_s_and_a_good_one_after_5_min() {
    let log = log();
    let t0 = Instant::now();
    let result = with_shutdown_after(Duration::from_secs(700), async || {
        data_sync()
            .run(|ctx| {
                let log = log.clone();
                async move { sync_data(ctx.attempt(), &[1], &log, t0).await }
            })
            .await
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    // Run 1 fails at 10 s: retried 30 s later. Run 2 succeeds at 50 s: the
    // next is 300 s later, at 350 s, then 660 s; the shutdown at 700 s
    // comes while waiting for the next.
    assert_eq!(
        lines(&log),
        [
            "start 1 at 0s",
            "start 2 at 40s",
            "start 3 at 350s",
            "start 4 at 660s"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn every_is_a_fixed_delay_and_at_fixed_rate_counts_from_each_start() {
    // Runs of 2 s, then one of 7 s, then 2 s again, every 5 s.
    for fixed_rate in [false, true] {
        let log = log();
        let t0 = Instant::now();
        let result = with_shutdown_after(Duration::from_secs(25), async || {
            let service = Service::new("report").every(Duration::from_secs(5));
            let service = if fixed_rate {
                service.at_fixed_rate()
            } else {
                service
            };
            service
                .run(|ctx| {
                    let log = log.clone();
                    async move {
                        push(
                            &log,
                            format!("start {} at {}s", ctx.attempt(), t0.elapsed().as_secs()),
                        );
                        let took = if ctx.attempt() == 3 { 7 } else { 2 };
                        tokio::time::sleep(Duration::from_secs(took)).await;
                        Ok::<_, io::Error>(())
                    }
                })
                .await
        })
        .await;
        assert!(result.is_ok(), "{result:?}");
        let expected: &[&str] = if fixed_rate {
            // 0, 5, 10 (takes 7: ends at 17, past 15, so the next starts at
            // once), 17, 22.
            &[
                "start 1 at 0s",
                "start 2 at 5s",
                "start 3 at 10s",
                "start 4 at 17s",
                "start 5 at 22s",
            ]
        } else {
            // Each 5 s after the last run ended: 0, 7, 14 (ends at 21), 26
            // is past the shutdown.
            &["start 1 at 0s", "start 2 at 7s", "start 3 at 14s"]
        };
        assert_eq!(lines(&log), expected, "fixed rate: {fixed_rate}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_during_the_delay_exits_at_once() {
    let log = log();
    let t0 = Instant::now();
    let result = with_shutdown_after(Duration::from_secs(100), async || {
        data_sync()
            .run(|ctx| {
                let log = log.clone();
                async move { sync_data(ctx.attempt(), &[], &log, t0).await }
            })
            .await
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(lines(&log), ["start 1 at 0s"]);
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(100),
        "no wait after the shutdown"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_during_a_sync_cancels_it_and_is_not_a_failure() {
    let log = log();
    let t0 = Instant::now();
    let result = with_shutdown_after(Duration::from_secs(5), async || {
        data_sync()
            .run(|ctx| {
                let log = log.clone();
                async move { sync_data(ctx.attempt(), &[], &log, t0).await }
            })
            .await
    })
    .await;
    assert!(
        result.is_ok(),
        "a cancelled sync is not an error: {result:?}"
    );
    assert_eq!(lines(&log), ["start 1 at 0s", "cancelled 1 at 5s"]);
}

#[tokio::test(start_paused = true)]
async fn restarts_back_off_exponentially_until_the_budget_is_spent() {
    let starts = log();
    let t0 = Instant::now();
    let result = Service::new("flaky")
        .backoff(Backoff::exponential(Duration::from_secs(1)).jitter(0.0))
        .budget(3, Duration::from_secs(60))
        .run(|ctx| {
            let starts = starts.clone();
            async move {
                push(
                    &starts,
                    format!("{} at {}s", ctx.attempt(), t0.elapsed().as_secs()),
                );
                Err::<(), _>(io::Error::other("connection refused"))
            }
        })
        .await;
    assert_eq!(lines(&starts), ["1 at 0s", "2 at 1s", "3 at 3s", "4 at 7s"]);
    match result {
        Err(ServiceError::BudgetSpent {
            service,
            restarts: 3,
            error,
            ..
        }) => {
            assert_eq!(&*service, "flaky");
            assert_eq!(error.to_string(), "connection refused");
        }
        other => panic!("expected the budget to be spent, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn restart_never_and_on_failure_end_after_ok() {
    for restart in [Restart::Never, Restart::OnFailure] {
        let runs = log();
        let result = Service::new("once")
            .restart(restart)
            .run(|_| {
                let runs = runs.clone();
                async move {
                    push(&runs, "run");
                    Ok::<_, io::Error>(())
                }
            })
            .await;
        assert!(result.is_ok());
        assert_eq!(lines(&runs).len(), 1, "{restart:?}");
    }
    let failed = Service::new("once")
        .restart(Restart::Never)
        .run(|_| async { Err::<(), _>(io::Error::other("boom")) })
        .await;
    assert!(matches!(
        failed,
        Err(ServiceError::Failed { attempt: 1, .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_service_that_stops_itself_gives_up_quietly() {
    let result = Service::new("optional")
        .restart(Restart::Never)
        .on_give_up(OnGiveUp::StopService)
        .run(|_| async { Err::<(), _>(io::Error::other("boom")) })
        .await;
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test(start_paused = true)]
async fn a_cancellation_error_nobody_asked_for_is_a_failure_and_restarts() {
    // An inner timeout is a cancellation error, but the service's token did
    // not fire: it must be retried, not taken for a shutdown.
    let runs = log();
    let result = with_shutdown_after(Duration::from_secs(100), async || {
        Service::new("inner timeout")
            .retry_after(Duration::from_secs(10))
            .run(|ctx| {
                let runs = runs.clone();
                async move {
                    push(&runs, format!("run {}", ctx.attempt()));
                    let inner = CancellationSource::with_timeout(Duration::from_secs(1));
                    inner.token().cancelled().await;
                    inner.token().check().map_err(io::Error::from)
                }
            })
            .await
    })
    .await;
    assert!(result.is_ok());
    assert!(lines(&runs).len() >= 9, "restarted: {:?}", lines(&runs));
}

#[test]
#[should_panic(expected = "`every` repeats the service")]
fn every_with_another_restart_policy_is_rejected() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _ = runtime.block_on(
        Service::new("conflict")
            .every(Duration::from_secs(1))
            .restart(Restart::Never)
            .run(|_| async { Ok::<_, io::Error>(()) }),
    );
}

#[tokio::test(start_paused = true)]
async fn zero_and_max_durations_are_accepted() {
    let runs = log();
    let result = with_shutdown_after(Duration::from_secs(1), async || {
        Service::new("edges")
            .every(Duration::MAX)
            .retry_after(Duration::ZERO)
            .drain(Duration::MAX)
            .grace_period(Duration::ZERO)
            .run(|ctx| {
                let runs = runs.clone();
                async move {
                    push(&runs, "run");
                    if ctx.attempt() < 3 {
                        return Err(io::Error::other("again"));
                    }
                    Ok(())
                }
            })
            .await
    })
    .await;
    assert!(result.is_ok());
    assert_eq!(lines(&runs).len(), 3);
}

/// A service that says it is ready, records its phases, and stops when its
/// token fires.
fn recorder(
    log: &Log,
) -> impl FnMut(
    taskscope::service::ServiceContext,
) -> futures_util::future::BoxFuture<'static, io::Result<()>>
       + Send
       + 'static {
    let log = log.clone();
    move |ctx| {
        let log = log.clone();
        Box::pin(async move {
            ctx.ready(());
            ctx.draining().cancelled().await;
            push(&log, format!("{} draining", ctx.name()));
            ctx.token().cancelled().await;
            push(&log, format!("{} cancelled", ctx.name()));
            Ok(())
        })
    }
}

#[tokio::test(start_paused = true)]
async fn dependent_services_stop_in_reverse_order_in_phases() {
    let log = log();
    let result = with_shutdown_after(Duration::from_secs(10), async || {
        Services::new()
            .run(async |services| {
                for name in ["database", "cache", "http"] {
                    let service = Service::new(name).drain(Duration::from_secs(1));
                    services.start(service, recorder(&log)).await?;
                }
                Ok(())
            })
            .await
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(
        lines(&log),
        [
            "http draining",
            "http cancelled",
            "cache draining",
            "cache cancelled",
            "database draining",
            "database cancelled"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_tree_shows_each_service_phase_and_a_stubborn_one_is_aborted() {
    let phases = log();
    let t0 = Instant::now();
    let result = with_shutdown_after(Duration::from_secs(1), async || {
        Services::new()
            .name("app")
            .run(async |services| {
                let stubborn = Service::new("stubborn")
                    .drain(Duration::from_secs(2))
                    .grace_period(Duration::from_secs(3));
                services.spawn(stubborn, |_| async {
                    // Ignores draining and cancellation alike.
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok::<_, io::Error>(())
                });
                let phases = phases.clone();
                tokio::spawn(async move {
                    for _ in 0..8 {
                        tokio::time::sleep(Duration::from_millis(900)).await;
                        push(&phases, taskscope::tree().to_string());
                    }
                });
                Ok(())
            })
            .await
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    // Drain (2 s) and grace (3 s) after the shutdown at 1 s: aborted at 6 s.
    assert_eq!(t0.elapsed(), Duration::from_secs(6));
    let trees = lines(&phases).join("\n");
    for phase in [
        "[run 1]",
        "[draining, up to 2s]",
        "[cancelled, grace period 3s]",
    ] {
        assert!(trees.contains(phase), "no {phase} in:\n{trees}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_service_that_gives_up_stops_the_others_in_order_and_fails_the_set() {
    let log = log();
    let result = Services::new()
        .run(async |services| {
            services
                .start(Service::new("database"), recorder(&log))
                .await?;
            let worker = Service::new("worker")
                .retry_after(Duration::from_secs(1))
                .budget(2, Duration::from_secs(60));
            services.spawn(worker, |_| async {
                Err::<(), _>(io::Error::other("queue gone"))
            });
            Ok(())
        })
        .await;
    match result {
        Err(ServiceError::BudgetSpent { service, .. }) => assert_eq!(&*service, "worker"),
        other => panic!("expected the worker to give up, got {other:?}"),
    }
    assert_eq!(lines(&log), ["database draining", "database cancelled"]);
}

#[tokio::test(start_paused = true)]
async fn readiness_turns_on_after_start_and_off_before_any_drain() {
    let log = log();
    let seen = log.clone();
    let result = with_shutdown_after(Duration::from_secs(5), async || {
        Services::new()
            .unready_delay(Duration::from_secs(2))
            .run(async |services| {
                let readiness = services.readiness();
                assert_eq!(readiness.state(), ReadyState::Starting);
                let http_seen = seen.clone();
                services
                    .start(Service::new("http"), move |ctx| {
                        let readiness = readiness.clone();
                        let seen = http_seen.clone();
                        async move {
                            ctx.ready(());
                            ctx.draining().cancelled().await;
                            push(&seen, format!("draining while {}", readiness.state()));
                            Ok::<_, io::Error>(())
                        }
                    })
                    .await?;
                let readiness = services.readiness();
                let seen = seen.clone();
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    push(&seen, format!("after start: {}", readiness.state()));
                });
                Ok(())
            })
            .await
    })
    .await;
    assert!(result.is_ok());
    assert_eq!(
        lines(&log),
        ["after start: ready", "draining while stopping"]
    );
}

#[tokio::test]
async fn start_returns_the_bound_address_of_a_real_listener() {
    let result = Services::new()
        .run(async |services| {
            let addr = services
                .start(Service::new("echo"), |ctx| async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                    ctx.ready(listener.local_addr()?);
                    let (mut conn, _) = listener.accept().await?;
                    let (mut read, mut write) = conn.split();
                    tokio::io::copy(&mut read, &mut write).await?;
                    Ok::<_, io::Error>(())
                })
                .await?;
            assert!(addr.ip().is_loopback() && addr.port() != 0);
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
            client.write_all(b"ping").await.unwrap();
            client.shutdown().await.unwrap();
            let mut echoed = String::new();
            client.read_to_string(&mut echoed).await.unwrap();
            assert_eq!(echoed, "ping");
            Ok(())
        })
        .await;
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test(start_paused = true)]
async fn a_service_that_gives_up_before_ready_fails_start() {
    let result = Services::new()
        .run(async |services| {
            let bind = Service::new("bind")
                .retry_after(Duration::from_secs(1))
                .budget(1, Duration::from_secs(60));
            let started = services
                .start(
                    bind,
                    |_ctx: taskscope::service::ServiceContext<u16>| async {
                        Err::<(), _>(io::Error::new(io::ErrorKind::AddrInUse, "port taken"))
                    },
                )
                .await;
            assert!(
                matches!(&started, Err(ServiceError::BudgetSpent { .. })),
                "{started:?}"
            );
            started.map(drop)
        })
        .await;
    assert!(matches!(result, Err(ServiceError::BudgetSpent { .. })));
}

#[tokio::test]
async fn the_shutdown_budget_names_the_services_that_do_not_fit() {
    Services::new()
        .shutdown_grace(Duration::from_secs(10))
        .unready_delay(Duration::from_secs(1))
        .run(async |services| {
            services.spawn(
                Service::new("a").grace_period(Duration::from_secs(4)),
                |_| async { Ok::<_, io::Error>(()) },
            );
            assert!(services.check_shutdown_budget().is_ok());
            services.spawn(Service::new("b").drain(Duration::from_secs(5)), |_| async {
                Ok::<_, io::Error>(())
            });
            let over = services.check_shutdown_budget().unwrap_err();
            let ServiceError::OverBudget {
                services: names,
                needed,
                ..
            } = &over
            else {
                panic!("{over:?}");
            };
            assert_eq!(*names, ["a".into(), "b".into()]);
            assert_eq!(*needed, Duration::from_secs(1 + 4 + 5 + 5));
            assert!(over
                .to_string()
                .contains("shorten the drain or grace periods of: a, b"));
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_shutdown_grace_comes_from_the_scope_the_set_runs_in() {
    // As `#[taskscope::main(shutdown_grace = "10s")]` sets it on its root
    // scope: no process global, a nested scope in between.
    taskscope::ScopeBuilder::new()
        .shutdown_grace(Duration::from_secs(10))
        .run(async |_root| {
            taskscope::scope(async |_between| {
                Services::new()
                    .run(async |services| {
                        services.spawn(
                            Service::new("slow").grace_period(Duration::from_secs(20)),
                            |_| async { Ok::<_, io::Error>(()) },
                        );
                        let over = services.check_shutdown_budget().unwrap_err();
                        assert!(
                            matches!(&over, ServiceError::OverBudget { services, .. } if **services == ["slow".into()]),
                            "{over:?}"
                        );
                        Ok(())
                    })
                    .await
            })
            .await
            .map_err(taskscope::ScopeError::into_error)
        })
        .await
        .unwrap();
    // Under a scope that sets none (a plain #[tokio::main]), nothing is
    // checked, as before.
    Services::new()
        .run(async |services| {
            services.spawn(
                Service::new("slow").grace_period(Duration::from_secs(20)),
                |_| async { Ok::<_, io::Error>(()) },
            );
            assert!(services.check_shutdown_budget().is_ok());
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_zero_shutdown_grace_fits_nothing_and_max_fits_everything() {
    for (grace, fits) in [(Duration::ZERO, false), (Duration::MAX, true)] {
        taskscope::ScopeBuilder::new()
            .shutdown_grace(grace)
            .run(async |_root| {
                Services::new()
                    .run(async |services| {
                        services.spawn(
                            Service::new("slow").grace_period(Duration::MAX),
                            |_| async { Ok::<_, io::Error>(()) },
                        );
                        assert_eq!(services.check_shutdown_budget().is_ok(), fits, "{grace:?}");
                        Ok(())
                    })
                    .await
            })
            .await
            .map_err(taskscope::ScopeError::into_error)
            .unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn at_fixed_rate_with_a_zero_period_runs_back_to_back_and_with_max_once() {
    for (period, expected) in [
        (
            Duration::ZERO,
            &[
                "start 1 at 0s",
                "start 2 at 1s",
                "start 3 at 2s",
                "start 4 at 3s",
            ][..],
        ),
        (Duration::MAX, &["start 1 at 0s"][..]),
    ] {
        let log = log();
        let t0 = Instant::now();
        let result = with_shutdown_after(Duration::from_millis(3500), async || {
            Service::new("report")
                .every(period)
                .at_fixed_rate()
                .run(|ctx| {
                    let log = log.clone();
                    async move {
                        push(
                            &log,
                            format!("start {} at {}s", ctx.attempt(), t0.elapsed().as_secs()),
                        );
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Ok::<_, io::Error>(())
                    }
                })
                .await
        })
        .await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(lines(&log), expected, "period {period:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn extreme_set_durations_saturate_and_zero_delays_stop_at_once() {
    let t0 = Instant::now();
    let result = with_shutdown_after(Duration::from_secs(1), async || {
        Services::new()
            .shutdown_grace(Duration::MAX)
            .unready_delay(Duration::ZERO)
            .run(async |services| {
                let huge = Service::new("huge")
                    .drain(Duration::MAX)
                    .grace_period(Duration::MAX);
                services.spawn(huge, |ctx| async move {
                    ctx.draining().cancelled().await; // stops when asked
                    Ok::<_, io::Error>(())
                });
                // MAX + MAX saturates, and still fits a MAX grace period.
                assert!(services.check_shutdown_budget().is_ok());
                Ok(())
            })
            .await
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(1),
        "no delay before the drain"
    );
}
