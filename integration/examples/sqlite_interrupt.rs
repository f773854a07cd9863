//! Seed section "Registering Callbacks", on a real database: SQLite's query
//! API takes no cancellation token, so an `on_cancel` callback bridges the
//! token to SQLite's interrupt handle. When the token fires (a timeout here,
//! or an explicit cancel) the long query returns SQLite's "interrupted"
//! error promptly, the registration is dropped, and the connection is
//! usable again.
//! Run with `cargo run -p taskscope-integration --example sqlite_interrupt`.

use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};
use taskscope::{CancellationSource, CancellationToken};

/// A query that would run for a very long time.
const LONG_QUERY: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                          SELECT count(*) FROM (SELECT x FROM c LIMIT 10000000000)";

/// Runs `sql` on `conn`, interrupted when `token` fires.
fn query_with_token(
    conn: &Connection,
    sql: &str,
    token: &CancellationToken,
) -> rusqlite::Result<i64> {
    let interrupt = conn.get_interrupt_handle();
    let registration = token.on_cancel(move |reason| {
        println!("  callback: {reason}; interrupting the query");
        interrupt.interrupt();
    });
    // A cancel that came before the query started would interrupt nothing:
    // check once the callback is in place.
    if token.is_cancelled() {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT),
            Some("cancelled before the query started".into()),
        ));
    }
    let result = conn.query_row(sql, [], |row| row.get(0));
    drop(registration); // the handle is not touched after this
    result
}

fn main() {
    let conn = Connection::open_in_memory().expect("open an in-memory database");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();

    let source = CancellationSource::with_timeout(Duration::from_millis(300));
    println!("running a long query with a 300 ms timeout ...");
    let started = Instant::now();
    let result = query_with_token(&conn, LONG_QUERY, &source.token());
    match result {
        Err(rusqlite::Error::SqliteFailure(error, _))
            if error.code == ErrorCode::OperationInterrupted =>
        {
            println!("  stopped after {:?}: {error}", started.elapsed())
        }
        other => println!("  unexpected: {other:?}"),
    }

    // The same query stopped by an explicit cancel from another thread (a
    // user pressing stop): the callback runs on that thread.
    let user = CancellationSource::new();
    println!("running it again; another thread cancels after 200 ms ...");
    let started = Instant::now();
    let result = std::thread::scope(|threads| {
        threads.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            user.cancel_with(taskscope::CancelReason::message("the user pressed stop"));
        });
        query_with_token(&conn, LONG_QUERY, &user.token())
    });
    match result {
        Err(rusqlite::Error::SqliteFailure(error, _))
            if error.code == ErrorCode::OperationInterrupted =>
        {
            println!("  stopped after {:?}: {error}", started.elapsed())
        }
        other => println!("  unexpected: {other:?}"),
    }

    let answer: i64 = conn
        .query_row("SELECT 6 * 7", [], |row| row.get(0))
        .unwrap();
    println!("the connection still works: SELECT 6 * 7 = {answer}");
}
