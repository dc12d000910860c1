//! Entries read again from the pending list, against a real PostgreSQL and Redis, with an
//! inference address where nothing listens: whatever needs inference fails as a dependency
//! failure, and whatever does not must succeed without it.

use std::time::Duration;

use chrono::Utc;
use pulse_domain::{Analysis, Post};
use pulse_proto::v1::inference_service_client::InferenceServiceClient;
use pulse_runtime::propagation::TracedChannel;
use pulse_stream::{
    EventFeed, GroupConsumer, PostEntry, Producer, RedisKeys,
    connection::{connect, connect_blocking},
};
use pulse_testkit::{TestDatabase, delete_redis_keys, free_address, redis_url, unique_name};
use pulse_worker::{metrics::WorkerMetrics, processor::Processor};

fn post(id: &str) -> Post {
    Post {
        post_id: id.into(),
        source: "twitter".into(),
        author: "a".into(),
        content: "the camera is stunning".into(),
        created_at: Utc::now(),
    }
}

fn analysis(id: &str) -> Analysis {
    Analysis {
        post_id: id.into(),
        model_name: "m@1".into(),
        sentiment_label: "positive".into(),
        confidence_score: 0.9,
        emotion: None,
        emotion_score: None,
        emotion_model: None,
        analyzed_at: Utc::now(),
    }
}

#[tokio::test]
async fn stored_posts_are_acknowledged_without_inference_and_outages_count_nothing()
-> anyhow::Result<()> {
    let database = TestDatabase::create("redeliver").await?;
    let pool = pulse_store::connect_pool(&database.url, 2)?;
    let mut client = pool.get().await?;
    pulse_store::migrate::run(&mut client).await?;
    let prefix = unique_name("redeliver");
    let keys = RedisKeys::new(&prefix);
    let conn = connect(&redis_url()).await?;
    let blocking = connect_blocking(&redis_url(), Duration::from_millis(100)).await?;
    let consumer = GroupConsumer::new(conn.clone(), blocking, keys.clone(), "w");
    consumer.ensure_group().await?;
    let nowhere = tonic::transport::Endpoint::from_shared(format!("http://{}", free_address()?))?
        .connect_timeout(Duration::from_secs(1))
        .connect_lazy();
    let registry = prometheus::Registry::new();
    let processor = Processor {
        metrics: WorkerMetrics::new(&registry)?,
        consumer: consumer.clone(),
        inference: InferenceServiceClient::new(TracedChannel::new(nowhere)),
        pool: pool.clone(),
        events: EventFeed::new(conn.clone(), &keys, 1_000),
        // One failure of its own would dead-letter an entry: none may be counted here.
        max_deliveries: 1,
        inference_timeout: Duration::from_secs(2),
        mentions: None,
    };
    let entries: Vec<PostEntry> = ["r1", "r2", "r3"]
        .into_iter()
        .map(|id| PostEntry {
            post: post(id),
            traceparent: None,
        })
        .collect();
    Producer::new(conn.clone(), &keys, 1_000)
        .publish_many(&entries)
        .await?;
    let got = consumer.read_new(10, Duration::from_millis(100)).await?;
    assert_eq!(got.len(), 3);
    // A worker committed r1 and r2, then died before acknowledging them.
    pulse_store::posts::insert_analysed(
        &mut client,
        &[post("r1"), post("r2")],
        &[analysis("r1"), analysis("r2")],
    )
    .await?;

    // Read again: r1 and r2 are acknowledged without inference; r3 needs it and inference is
    // away, which is nobody's fault but the dependency's.
    for _ in 0..3 {
        let pending = consumer.read_own_pending("0", 10).await?;
        let error = processor
            .process(pending, true)
            .await
            .expect_err("inference is unreachable");
        assert!(error.is_transient(), "{error}");
    }
    assert_eq!(consumer.pending_count().await?, 1);
    let left = consumer.read_own_pending("0", 10).await?;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, got[2].id);
    assert!(consumer.failures(&[got[2].id.clone()]).await?.is_empty());
    assert_eq!(consumer.dead_letter_count().await?, 0);
    let already = registry
        .gather()
        .iter()
        .find(|f| f.name() == "pulse_worker_entries_already_stored_total")
        .map(|f| f.get_metric()[0].get_counter().get_value());
    assert_eq!(already, Some(2.0));

    // Once r3 is stored too (by another worker, say), it goes the same way.
    pulse_store::posts::insert_analysed(&mut client, &[post("r3")], &[analysis("r3")]).await?;
    let outcome = processor.process(left, true).await?;
    assert_eq!((outcome.already_stored, outcome.stored), (1, 0));
    assert_eq!(consumer.pending_count().await?, 0);

    drop(client);
    delete_redis_keys(&prefix).await?;
    database.drop_now().await
}
