//! Analytics behaviour that needs its own configuration: the alert monitor (exactly one
//! alert per sustained condition, with two analytics instances competing), the distribution
//! cache's hit path, and reads while analytics cannot reach Redis.

use std::{collections::HashMap, time::Duration};

use chrono::Utc;
use clap::Parser;
use futures::StreamExt;
use pulse_e2e::{Options, Platform};
use pulse_proto::v1::{Post, PublishRequest};
use pulse_settings::ConnectionUrl;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const NEGATIVE: &[&str] = &[
    "The update broke everything, worst release ever",
    "Terrible service, I hate this product",
    "Awful experience, completely broken and useless",
    "This is the worst purchase I have ever made",
];

fn post(id: &str, content: &str) -> Post {
    Post {
        post_id: id.to_owned(),
        source: "twitter".into(),
        author: "alerts".into(),
        content: content.to_owned(),
        created_at: Some(pulse_domain::datetime_to_timestamp(Utc::now())),
    }
}

fn alert_rules(config: &mut pulse_analytics::Config) {
    config.alert_interval = Duration::from_secs(1);
    config.alert_window = Duration::from_secs(8);
    config.alert_min_posts = 6;
    config.alert_negative_threshold = 0.5;
}

async fn alerts_of_type(platform: &Platform, kind: &str) -> anyhow::Result<Vec<Value>> {
    let body: Value = platform
        .get("/api/alerts?limit=100")
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(body["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|a| a["alert_type"] == kind)
                .cloned()
                .collect()
        })
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sustained_condition_raises_exactly_one_alert() -> anyhow::Result<()> {
    let options = Options {
        analytics_config: alert_rules,
        ..Options::default()
    };
    let platform = Platform::start("alerts", options).await?;
    // A second analytics instance on the same database and Redis: only one may alert.
    let mut second = pulse_analytics::Config::parse_from(["pulse-analytics"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    second.addr = listener.local_addr()?;
    second.admin.addr = Some("127.0.0.1:0".parse()?);
    second.database.url = ConnectionUrl::new(platform.database.url.clone());
    second.redis.url = ConnectionUrl::new(pulse_testkit::redis_url());
    second.redis.prefix.clone_from(&platform.stream_prefix);
    alert_rules(&mut second);
    let (stop_second, second_stopped) = tokio::sync::oneshot::channel::<()>();
    let second_task = tokio::spawn(async move {
        pulse_analytics::serve(&second, listener, async {
            let _ = second_stopped.await;
        })
        .await
    });

    let (mut ws, _) = tokio_tungstenite::connect_async(platform.ws_request()?).await?;
    let alert_events = std::sync::Arc::new(std::sync::Mutex::new(HashMap::<String, u32>::new()));
    let events = alert_events.clone();
    let watcher = tokio::spawn(async move {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message
                && let Ok(v) = serde_json::from_str::<Value>(&text)
                && v["type"] == "alert"
                && let Ok(mut events) = events.lock()
            {
                let kind = v["data"]["alert_type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                *events.entry(kind).or_default() += 1;
            }
        }
    });
    let negative_events = || {
        alert_events
            .lock()
            .map(|e| {
                e.get(pulse_analytics::alerts::NEGATIVE_SENTIMENT)
                    .copied()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    };

    let mut ingest = platform.ingest_client().await?;
    let burst = |round: usize| PublishRequest {
        posts: (0..8)
            .map(|i| post(&format!("neg-{round}-{i}"), NEGATIVE[i % NEGATIVE.len()]))
            .collect(),
    };
    ingest.publish(burst(1)).await?;
    Platform::wait_until(Duration::from_secs(60), || async {
        Ok(platform.counts().await?.1 == 8)
    })
    .await?;
    let kind = pulse_analytics::alerts::NEGATIVE_SENTIMENT;
    Platform::wait_until(Duration::from_secs(10), || async {
        Ok(!alerts_of_type(&platform, kind).await?.is_empty())
    })
    .await?;
    // Several more evaluations by both instances while the condition lasts: still one.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let alerts = alerts_of_type(&platform, kind).await?;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert!(
        alert["actual_value"].as_f64().is_some_and(|v| v > 0.5),
        "{alert}"
    );
    assert_eq!(alert["threshold_value"], 0.5);
    assert!(alert["post_count"].as_u64().is_some_and(|n| n >= 6));
    let details = &alert["details"];
    assert!(
        details["top_negative_posts"]
            .as_array()
            .is_some_and(|p| !p.is_empty() && p.len() <= 5),
        "{details}"
    );
    assert_eq!(details["sources"][0]["source"], "twitter", "{details}");
    Platform::wait_until(Duration::from_secs(5), || async {
        Ok(negative_events() == 1)
    })
    .await?;

    // The condition ends when the burst leaves the window, and a new burst is a new alert.
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(alerts_of_type(&platform, kind).await?.len(), 1);
    ingest.publish(burst(2)).await?;
    Platform::wait_until(Duration::from_secs(30), || async {
        Ok(alerts_of_type(&platform, kind).await?.len() == 2)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(alerts_of_type(&platform, kind).await?.len(), 2);
    Platform::wait_until(Duration::from_secs(5), || async {
        Ok(negative_events() == 2)
    })
    .await?;

    watcher.abort();
    let _ = stop_second.send(());
    second_task.await??;
    platform.shutdown().await
}

async fn distribution(platform: &Platform, query: &str) -> anyhow::Result<Value> {
    Ok(platform
        .get(&format!("/api/sentiment/distribution{query}"))
        .await?
        .error_for_status()?
        .json()
        .await?)
}

async fn publish_and_wait(platform: &Platform, ids: &[&str], expected: u64) -> anyhow::Result<()> {
    let mut ingest = platform.ingest_client().await?;
    ingest
        .publish(PublishRequest {
            posts: ids.iter().map(|id| post(id, NEGATIVE[0])).collect(),
        })
        .await?;
    Platform::wait_until(Duration::from_secs(60), || async {
        Ok(platform.counts().await?.1 == expected)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn distributions_are_cached_per_filter() -> anyhow::Result<()> {
    let platform = Platform::start("cache", Options::default()).await?;
    publish_and_wait(&platform, &["c-1", "c-2", "c-3"], 3).await?;

    let first = distribution(&platform, "").await?;
    assert_eq!(first["metadata"]["cached"], false);
    assert_eq!(first["data"]["total"], 3);
    let second = distribution(&platform, "").await?;
    assert_eq!(second["metadata"]["cached"], true);
    assert_eq!(second["data"], first["data"]);

    // The entry lives in Redis with a TTL of at most 60 s.
    let redis = redis::Client::open(pulse_testkit::redis_url())?;
    let mut conn = redis.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:cache:distribution:*", platform.stream_prefix))
        .query_async(&mut conn)
        .await?;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await?;
    assert!((1..=60).contains(&ttl), "{ttl}");

    // A new post does not show until the entry expires: proof the answer came from the cache.
    publish_and_wait(&platform, &["c-4"], 4).await?;
    let stale = distribution(&platform, "").await?;
    assert_eq!(stale["metadata"]["cached"], true);
    assert_eq!(stale["data"]["total"], 3);
    // Each distinct filter has its own entry.
    let by_source = distribution(&platform, "?by_source=true").await?;
    assert_eq!(by_source["metadata"]["cached"], false);
    assert_eq!(by_source["data"]["total"], 4);
    let filtered = distribution(&platform, "?source=twitter").await?;
    assert_eq!(filtered["metadata"]["cached"], false);

    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
    let fresh = distribution(&platform, "").await?;
    assert_eq!(fresh["metadata"]["cached"], false);
    assert_eq!(fresh["data"]["total"], 4);
    platform.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_fall_back_to_postgres_when_redis_is_down() -> anyhow::Result<()> {
    // Only analytics loses Redis (a closed port); the rest of the mesh keeps it.
    let options = Options {
        analytics_config: |config| config.redis.url = ConnectionUrl::new("redis://127.0.0.1:9"),
        ..Options::default()
    };
    let platform = Platform::start("noredis", options).await?;
    publish_and_wait(&platform, &["n-1", "n-2"], 2).await?;
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let d = distribution(&platform, "").await?;
        assert_eq!(d["metadata"]["cached"], false);
        assert_eq!(d["data"]["total"], 2);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    let posts: Value = platform
        .get("/api/posts")
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(posts["metadata"]["total"], 2);
    Platform::wait_until(Duration::from_secs(15), || async {
        let health: Value = platform.get("/api/health").await?.json().await?;
        Ok(health["data"]["dependencies"]["redis"] == "down"
            && health["data"]["dependencies"]["database"] == "up"
            && health["data"]["status"] == "healthy")
    })
    .await?;
    platform.shutdown().await
}
