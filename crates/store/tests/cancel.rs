//! An abandoned read ends on the real PostgreSQL, and the pool goes on serving.

use std::time::{Duration, Instant};

use pulse_store::{CancelOnDrop, Pool, cancel};
use tokio_postgres::NoTls;

/// A read pool of one connection without a statement timeout: only the cancel can end a
/// statement early.
fn pool() -> Pool {
    pulse_store::connect_read_pool(&pulse_testkit::database_server_url(), 1, Duration::ZERO)
        .expect("pool")
}

/// A connection outside the pool, to watch `pg_stat_activity` from.
async fn observer() -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&pulse_testkit::database_server_url(), NoTls)
            .await
            .expect("connect the observer");
    tokio::spawn(connection);
    client
}

/// Backends other than the observer running a statement whose text contains `marker`.
async fn running(observer: &tokio_postgres::Client, marker: &str) -> Vec<i32> {
    observer
        .query(
            "SELECT pid FROM pg_stat_activity
             WHERE state = 'active' AND pid <> pg_backend_pid()
               AND position($1 in query) > 0",
            &[&marker],
        )
        .await
        .expect("pg_stat_activity")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn backend_exists(observer: &tokio_postgres::Client, pid: i32) -> bool {
    observer
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .expect("pg_stat_activity")
        .get::<_, i64>(0)
        > 0
}

async fn backend_pid(pool: &Pool) -> i32 {
    let client = pool.get().await.expect("checkout");
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0)
}

/// Waits up to `within` for `done`; true when it held.
async fn eventually(within: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done().await
}

#[tokio::test]
async fn an_abandoned_read_is_cancelled_on_the_server_and_the_pool_serves_on() {
    let pool = pool();
    let observer = observer().await;
    let pid = backend_pid(&pool).await;
    let marker = pulse_testkit::unique_name("cancel");
    let sql = format!("SELECT pg_sleep(30) /* {marker} */");

    let read = cancel::scope(async {
        let client = CancelOnDrop::get(&pool).await?;
        client
            .simple_query(&sql)
            .await
            .map_err(pulse_store::StoreError::from)?;
        Ok::<_, pulse_store::StoreError>(())
    });
    let (abandoned, seen) = tokio::join!(
        tokio::time::timeout(Duration::from_millis(200), read),
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            running(&observer, &marker).await
        }
    );
    assert!(
        abandoned.is_err(),
        "the read must still be running at 200 ms"
    );
    assert_eq!(seen, [pid], "the statement ran on the pooled backend");

    // Gone within a couple of seconds of the drop.
    let ended = async || running(&observer, &marker).await.is_empty();
    assert!(
        eventually(Duration::from_secs(2), ended).await,
        "the statement is still running: {:?}",
        running(&observer, &marker).await
    );
    // Its connection is closed rather than reused (a late cancel would hit the next borrower),
    // and the pool's next connection answers, uncancelled.
    let closed = async || !backend_exists(&observer, pid).await;
    assert!(
        eventually(Duration::from_secs(2), closed).await,
        "backend {pid} is still connected"
    );
    let client = tokio::time::timeout(Duration::from_secs(5), pool.get())
        .await
        .expect("the pool has room again")
        .expect("checkout");
    client
        .simple_query("SELECT pg_sleep(0.3)")
        .await
        .expect("a later statement runs to its end");
}

#[tokio::test]
async fn a_completed_read_cancels_nothing_and_an_idle_abandoned_guard_spares_the_next_caller() {
    let pool = pool();
    // A read that completes: its connection returns at once, and nothing is cancelled.
    let answered = cancel::scope(async {
        let client = CancelOnDrop::get(&pool).await.expect("checkout");
        client
            .query_one("SELECT 41 + 1", &[])
            .await
            .map(|row| row.get::<_, i32>(0))
    })
    .await
    .expect("answered");
    assert_eq!(answered, 42);
    pool.get()
        .await
        .expect("checkout")
        .simple_query("SELECT pg_sleep(0.3)")
        .await
        .expect("not cancelled");

    // A request abandoned while its connection is idle: the cancel finds nothing to cancel,
    // and the next caller's statement runs to its end.
    let request = cancel::scope(async {
        let _client = CancelOnDrop::get(&pool).await.expect("checkout");
        std::future::pending::<()>().await;
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(100), request)
            .await
            .is_err()
    );
    let client = tokio::time::timeout(Duration::from_secs(5), pool.get())
        .await
        .expect("the connection returns to the pool")
        .expect("checkout");
    client
        .simple_query("SELECT pg_sleep(0.3)")
        .await
        .expect("the next caller's statement is not cancelled");
}

#[tokio::test]
async fn a_guard_outside_any_scope_never_cancels() {
    let pool = pool();
    let guard = CancelOnDrop::get(&pool).await.expect("checkout");
    assert!(!guard.is_abandoned());
    drop(guard);
    pool.get()
        .await
        .expect("checkout")
        .simple_query("SELECT pg_sleep(0.2)")
        .await
        .expect("not cancelled");
}
