//! A caller that gives up on a read ends its statement on the server: the request is dropped by
//! the gRPC server, and the statement it was running is cancelled long before
//! READ_STATEMENT_TIMEOUT_MS would end it.

use std::time::{Duration, Instant};

use pulse_proto::v1::{ListPostsRequest, analytics_service_client::AnalyticsServiceClient};
use pulse_testkit::TestDatabase;

mod support;
use support::Served;

/// Backends of the service (application name `pulse`) running a statement in `database`.
async fn busy(observer: &pulse_store::leader::Client, database: &str) -> anyhow::Result<i64> {
    Ok(observer
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = $1 AND application_name = 'pulse' AND state = 'active'",
            &[&database],
        )
        .await?
        .get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_list_posts_is_cancelled_in_postgres() -> anyhow::Result<()> {
    let database = TestDatabase::create("analytics_abandon").await?;
    let pool = pulse_store::connect_pool(&database.url, 1)?;
    let mut client = pool.get().await?;
    pulse_store::migrate::run(&mut client).await?;
    drop(client);
    drop(pool);

    let prefix = pulse_testkit::unique_name("abandon");
    let mut config = support::config(&database.url, &prefix);
    config.list_total_ttl = Duration::ZERO;
    config.read_statement_timeout = Duration::from_secs(20);
    let served = Served::start(config).await?;
    let mut analytics = AnalyticsServiceClient::new(served.channel().await?);

    // A transaction holding the posts table makes every read wait for as long as it lasts; an
    // observer outside it (a transaction sees one snapshot of pg_stat_activity) watches. Both
    // are sessions of their own, named `pulse-leader`, so neither counts among the service's.
    let locker = pulse_store::leader::LeaderSession::connect(&database.url).await?;
    locker
        .client()
        .batch_execute("BEGIN; LOCK TABLE social_media_posts IN ACCESS EXCLUSIVE MODE")
        .await?;
    let session = pulse_store::leader::LeaderSession::connect(&database.url).await?;
    let observer = session.client();

    let (answer, waiting) = tokio::join!(
        tokio::time::timeout(
            Duration::from_millis(400),
            analytics.list_posts(ListPostsRequest::default())
        ),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            busy(observer, &database.name).await
        }
    );
    assert!(answer.is_err(), "the read must wait for the lock");
    assert_eq!(waiting?, 1, "the read is running in PostgreSQL");

    // The caller gave up: its statement is gone well before the statement timeout.
    let start = Instant::now();
    while busy(observer, &database.name).await? > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the abandoned statement is still running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Once the table is free, the service answers as before.
    locker.client().batch_execute("ROLLBACK").await?;
    let page = analytics
        .list_posts(ListPostsRequest::default())
        .await?
        .into_inner();
    assert_eq!(page.total, 0);

    served.stop().await?;
    drop((locker, session));
    database.drop_now().await?;
    pulse_testkit::delete_redis_keys(&prefix).await
}
