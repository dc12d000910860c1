//! Analytics with DATABASE_READ_URL: the read queries answer from the read database while the
//! alert monitor evaluates and writes on the primary, and the `postgres` health covers both.
//!
//! Two unrelated databases stand in for a primary and its replica, so where each answer comes
//! from is plain: the "replica" holds posts the primary lacks, and the primary holds the
//! negative burst that raises an alert.

use std::time::{Duration, Instant};

use chrono::Utc;
use pulse_domain::{Analysis, Post};
use pulse_proto::v1::{
    GetDistributionRequest, ListAlertsRequest, ListPostsRequest,
    analytics_service_client::AnalyticsServiceClient,
};
use pulse_settings::ConnectionUrl;
use pulse_testkit::TestDatabase;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client};

mod support;
use support::Served;

async fn migrated(tag: &str) -> anyhow::Result<(TestDatabase, pulse_store::Pool)> {
    let database = TestDatabase::create(tag).await?;
    let pool = pulse_store::connect_pool(&database.url, 2)?;
    let mut client = pool.get().await?;
    pulse_store::migrate::run(&mut client).await?;
    drop(client);
    Ok((database, pool))
}

async fn seed(pool: &pulse_store::Pool, prefix: &str, label: &str, n: usize) -> anyhow::Result<()> {
    let now = Utc::now();
    let posts: Vec<Post> = (0..n)
        .map(|i| Post {
            post_id: format!("{prefix}-{i}"),
            source: "twitter".into(),
            author: "replica-test".into(),
            content: format!("{label} post {i}"),
            created_at: now,
        })
        .collect();
    let analyses: Vec<Analysis> = posts
        .iter()
        .map(|p| Analysis {
            post_id: p.post_id.clone(),
            model_name: "test-model@1".into(),
            sentiment_label: label.into(),
            confidence_score: 0.9,
            emotion: None,
            emotion_score: None,
            emotion_model: None,
            analyzed_at: now,
        })
        .collect();
    let mut client = pool.get().await?;
    pulse_store::posts::insert_analysed(&mut client, &posts, &analyses).await?;
    Ok(())
}

async fn wait_until<F: AsyncFnMut() -> anyhow::Result<bool>>(
    within: Duration,
    what: &str,
    mut done: F,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if done().await? {
            return Ok(());
        }
        anyhow::ensure!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_answer_from_the_replica_and_alerts_are_written_to_the_primary() -> anyhow::Result<()>
{
    let (primary, primary_pool) = migrated("analytics_primary").await?;
    let (replica, replica_pool) = migrated("analytics_replica").await?;
    seed(&replica_pool, "replica", "positive", 3).await?;
    seed(&primary_pool, "primary", "negative", 8).await?;

    let prefix = pulse_testkit::unique_name("replica");
    let mut config = support::config(&primary.url, &prefix);
    config.database_read_url = Some(ConnectionUrl::new(replica.url.clone()));
    config.alert_interval = Duration::from_secs(1);
    config.alert_min_posts = 3;
    let served = Served::start(config).await?;

    let channel = served.channel().await?;
    let mut analytics = AnalyticsServiceClient::new(channel.clone());
    let mut health = health_client::HealthClient::new(channel);

    // ListPosts and the distribution come from the replica: only its posts, none of the primary's.
    let page = analytics
        .list_posts(ListPostsRequest::default())
        .await?
        .into_inner();
    let ids: Vec<&str> = page
        .posts
        .iter()
        .filter_map(|p| p.post.as_ref().map(|p| p.post_id.as_str()))
        .collect();
    assert_eq!(page.total, 3, "{ids:?}");
    assert!(ids.iter().all(|id| id.starts_with("replica-")), "{ids:?}");
    let distribution = analytics
        .get_distribution(GetDistributionRequest::default())
        .await?
        .into_inner();
    let labels: Vec<(&str, u64)> = distribution
        .sentiment
        .iter()
        .filter(|l| l.count > 0)
        .map(|l| (l.label.as_str(), l.count))
        .collect();
    assert_eq!((distribution.total, labels), (3, vec![("positive", 3)]));

    // The monitor sees the primary's negative burst and stores its alert there.
    wait_until(
        Duration::from_secs(15),
        "an alert on the primary",
        async || {
            let client = primary_pool.get().await?;
            Ok(!pulse_store::alerts::list(&client, 10, None)
                .await?
                .is_empty())
        },
    )
    .await?;
    let client = replica_pool.get().await?;
    let on_replica = pulse_store::alerts::list(&client, 10, None).await?;
    drop(client);
    assert!(on_replica.is_empty(), "{on_replica:?}");
    // ListAlerts reads the replica, which has not got it (a real one would after its lag).
    let alerts = analytics
        .list_alerts(ListAlertsRequest::default())
        .await?
        .into_inner();
    assert!(alerts.alerts.is_empty(), "{:?}", alerts.alerts);

    // `postgres` is serving while both answer, and stops when the replica goes away.
    let postgres = async |health: &mut health_client::HealthClient<_>| {
        let response = health
            .check(HealthCheckRequest {
                service: "postgres".into(),
            })
            .await?;
        anyhow::Ok(response.into_inner().status)
    };
    wait_until(Duration::from_secs(10), "postgres serving", async || {
        Ok(postgres(&mut health).await? == ServingStatus::Serving as i32)
    })
    .await?;
    drop(replica_pool);
    replica.drop_now().await?;
    wait_until(
        Duration::from_secs(15),
        "postgres not serving",
        async || Ok(postgres(&mut health).await? == ServingStatus::NotServing as i32),
    )
    .await?;

    served.stop().await?;
    drop(primary_pool);
    primary.drop_now().await?;
    pulse_testkit::delete_redis_keys(&prefix).await
}
