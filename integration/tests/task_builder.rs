//! `Scope::task()`: a name, waiting for a slot, and where the task runs,
//! combined freely.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use taskscope::{Cancelled, ScopeBuilder};

#[tokio::test]
async fn every_kind_of_task_takes_a_name_and_reports_the_callers_line() {
    ScopeBuilder::new()
        .run(async |s| {
            let worker = s.task().name("worker").spawn(async {
                taskscope::token().cancelled().await;
                Ok::<_, Cancelled>(())
            });
            let blocking = s.task().name("crunch").spawn_blocking(|_token| Ok(()));
            assert_eq!(worker.name(), "worker");
            assert_eq!(blocking.name(), "crunch");
            let unnamed = s.task().spawn(async { Ok(()) });
            assert!(
                unnamed
                    .name()
                    .starts_with("integration/tests/task_builder.rs:"),
                "{}",
                unnamed.name()
            );
            tokio::task::yield_now().await;
            let tree = taskscope::tree().to_string();
            assert!(tree.contains("task \"worker\""), "{tree}");
            s.cancel();
            Ok(())
        })
        .await
        .unwrap();

    let local = tokio::task::LocalSet::new();
    local
        .run_until(taskscope::scope(async |s| {
            let shared = Rc::new(5);
            let task = s
                .task()
                .name("local")
                .spawn_local(async move { Ok::<_, Cancelled>(*shared) });
            assert_eq!(task.name(), "local");
            assert_eq!(task.await?, 5);
            Ok::<_, Cancelled>(())
        }))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_slot_holds_it_while_blocking_work_runs() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    ScopeBuilder::new()
        .limit(2)
        .run(async |s| {
            for i in 0..8 {
                let (running, peak) = (running.clone(), peak.clone());
                let task = s
                    .task()
                    .name(format!("job {i}"))
                    .wait_for_slot()
                    .spawn_blocking(move |_token| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(5));
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, Cancelled>(())
                    })
                    .await;
                assert_eq!(task.name(), format!("job {i}"));
            }
            Ok(())
        })
        .await
        .unwrap();
    assert!(
        peak.load(Ordering::SeqCst) <= 2,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
}
