//! Bridging an API that takes no token, on a real embedded database
//! (SQLite, bundled): an `on_cancel` callback calls SQLite's interrupt
//! handle. The long query stops promptly with SQLite's "interrupted" error,
//! the registration is dropped, and the connection is usable afterwards.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};
use taskscope::{CancelReason, CancellationSource, CancellationToken, Cancelled};

const LONG_QUERY: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                          SELECT count(*) FROM (SELECT x FROM c LIMIT 10000000000)";

/// Runs the long query, interrupted when `token` fires; counts callback runs.
fn long_query(
    conn: &Connection,
    token: &CancellationToken,
    runs: &Arc<AtomicUsize>,
) -> rusqlite::Result<i64> {
    let interrupt = conn.get_interrupt_handle();
    let registration = token.on_cancel({
        let runs = runs.clone();
        move |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            interrupt.interrupt();
        }
    });
    let result = conn.query_row(LONG_QUERY, [], |row| row.get(0));
    drop(registration);
    result
}

fn assert_interrupted(result: rusqlite::Result<i64>) {
    match result {
        Err(rusqlite::Error::SqliteFailure(error, _)) => {
            assert_eq!(error.code, ErrorCode::OperationInterrupted, "{error}")
        }
        other => panic!("expected SQLite's interrupted error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_interrupts_a_long_query_and_the_connection_stays_usable() {
    let source = CancellationSource::with_timeout(Duration::from_millis(300));
    let token = source.token();
    let runs = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let (conn, result) = tokio::task::spawn_blocking({
        let runs = runs.clone();
        move || {
            let conn = Connection::open_in_memory().unwrap();
            let result = long_query(&conn, &token, &runs);
            (conn, result)
        }
    })
    .await
    .unwrap();
    let took = started.elapsed();
    assert_interrupted(result);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(took >= Duration::from_millis(250), "took {took:?}");
    assert!(took < Duration::from_secs(20), "took {took:?}: not prompt");
    assert!(source.reason().unwrap().is_timeout());
    let answer: i64 = conn
        .query_row("SELECT 6 * 7", [], |row| row.get(0))
        .unwrap();
    assert_eq!(answer, 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_cancel_of_a_scope_interrupts_its_blocking_query() {
    let runs = Arc::new(AtomicUsize::new(0));
    let result = taskscope::scope(async |s| {
        let runs = runs.clone();
        let query = s.spawn_blocking(move |token| {
            let conn = Connection::open_in_memory().unwrap();
            let result = long_query(&conn, &token, &runs);
            // Usable afterwards, still on this thread.
            let one: i64 = conn.query_row("SELECT 1", [], |row| row.get(0)).unwrap();
            Ok::<_, Cancelled>((result.map_err(|e| e.to_string()), one))
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.cancel_with(CancelReason::message("user gave up"));
        query.await
    })
    .await
    .unwrap();
    let (query, one) = result;
    assert!(
        query.unwrap_err().contains("interrupt"),
        "the query was interrupted"
    );
    assert_eq!(one, 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn registration_dropped_before_cancel_never_touches_the_connection() {
    let conn = Connection::open_in_memory().unwrap();
    let source = CancellationSource::new();
    let runs = Arc::new(AtomicUsize::new(0));
    // A short query: finishes, drops its registration; a later cancel does
    // not run the callback (the handle would otherwise interrupt a later,
    // unrelated statement).
    let registration = source.token().on_cancel({
        let runs = runs.clone();
        let interrupt = conn.get_interrupt_handle();
        move |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            interrupt.interrupt();
        }
    });
    let n: i64 = conn
        .query_row("SELECT 2 + 2", [], |row| row.get(0))
        .unwrap();
    drop(registration);
    source.cancel();
    assert_eq!(n, 4);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

/// A query of about a millisecond.
const SHORT_QUERY: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                           SELECT count(*) FROM (SELECT x FROM c LIMIT 20000)";

/// The bridge for a connection that is used again: the registration lives
/// exactly as long as the statement, and dropping it (which waits for a
/// callback running on another thread) comes before the next statement.
fn short_query(conn: &Connection, token: &CancellationToken) -> rusqlite::Result<i64> {
    let interrupt = conn.get_interrupt_handle();
    let registration = token.on_cancel(move |_| interrupt.interrupt());
    let result = conn.query_row(SHORT_QUERY, [], |row| row.get(0));
    drop(registration);
    result
}

#[test]
fn an_interrupt_never_reaches_the_next_statement_on_the_connection() {
    // 1,000 statements, each with a token that fires from another thread at
    // a moment before, during or just after its end, and each followed at
    // once by an unrelated statement that must not be interrupted.
    let conn = Connection::open_in_memory().unwrap();
    // Moments up to twice as long as the statement takes here.
    let started = Instant::now();
    short_query(&conn, &CancellationToken::none()).unwrap();
    let window = started.elapsed().as_micros() as u64 * 2 + 1;
    let mut state: u64 = 0x5917_e001;
    let mut interrupted = 0;
    for cycle in 0..1000_i64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_micros(state % window);
        let source = CancellationSource::new();
        let token = source.token();
        let firing = std::thread::spawn(move || {
            std::thread::sleep(delay);
            source.cancel();
        });
        match short_query(&conn, &token) {
            Ok(n) => assert_eq!(n, 20000),
            Err(rusqlite::Error::SqliteFailure(error, _))
                if error.code == ErrorCode::OperationInterrupted =>
            {
                interrupted += 1
            }
            Err(other) => panic!("cycle {cycle}: {other:?}"),
        }
        let next: i64 = conn
            .query_row("SELECT ?1 + 1", [cycle], |row| row.get(0))
            .unwrap_or_else(|err| panic!("cycle {cycle}: the next statement failed: {err:?}"));
        assert_eq!(next, cycle + 1);
        firing.join().unwrap();
    }
    println!("1000 cycles: {interrupted} interrupted");
    assert!(
        (1..1000).contains(&interrupted),
        "{interrupted} of 1000 interrupted: the moments missed the statement's end"
    );
}
