//! One post's whole journey: IngestService → stream → worker → inference → PostgreSQL →
//! event feed → analytics → gateway REST and WebSocket.

use std::{collections::HashSet, time::Duration};

use chrono::Utc;
use futures::StreamExt;
use pulse_e2e::{Options, Platform};
use pulse_proto::v1::{Post, PublishRequest};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn post(id: &str, content: &str) -> Post {
    Post {
        post_id: id.to_owned(),
        source: "twitter".into(),
        author: "e2e".into(),
        content: content.to_owned(),
        created_at: Some(pulse_domain::datetime_to_timestamp(Utc::now())),
    }
}

/// Reads WebSocket messages until `want` new_post ids are seen or `timeout` passes.
async fn collect_new_posts(
    ws: &mut Ws,
    want: &HashSet<String>,
    timeout: Duration,
) -> anyhow::Result<HashSet<String>> {
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !want.is_subset(&seen) {
        let Ok(next) = tokio::time::timeout_at(deadline, ws.next()).await else {
            break;
        };
        let Some(message) = next else { break };
        if let Message::Text(text) = message? {
            let value: Value = serde_json::from_str(&text)?;
            if value["type"] == "new_post" {
                let id = value["data"]["post_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                anyhow::ensure!(
                    value["data"]["sentiment_label"].is_string(),
                    "new_post without a sentiment: {value}"
                );
                seen.insert(id);
            }
        }
    }
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn published_posts_reach_the_database_the_api_and_the_websocket() -> anyhow::Result<()> {
    let platform = Platform::start("mesh", Options::default()).await?;
    let mut ingest = platform.ingest_client().await?;

    // The live feed is connected once a first post makes it all the way to the socket.
    let (mut ws, _) = tokio_tungstenite::connect_async(platform.ws_request()?).await?;
    let first = ws
        .next()
        .await
        .ok_or_else(|| anyhow::anyhow!("socket closed"))??;
    let hello: Value = serde_json::from_str(first.to_text()?)?;
    assert_eq!(hello["type"], "connected");
    let mut warm_up = HashSet::new();
    for attempt in 0..20 {
        let id = format!("warmup-{attempt}");
        ingest
            .publish(PublishRequest {
                posts: vec![post(&id, "Warming up the pipeline")],
            })
            .await?;
        warm_up.insert(id);
        let seen = collect_new_posts(&mut ws, &warm_up, Duration::from_secs(2)).await?;
        if !seen.is_empty() {
            break;
        }
    }

    let n = 60;
    let texts = [
        "I absolutely love this phone, the camera is stunning",
        "The update broke everything, worst release ever",
        "The package arrived on Tuesday",
    ];
    let posts: Vec<Post> = (0..n)
        .map(|i| post(&format!("e2e-{i}"), texts[i % texts.len()]))
        .collect();
    let ids: HashSet<String> = posts.iter().map(|p| p.post_id.clone()).collect();
    let response = ingest.publish(PublishRequest { posts }).await?.into_inner();
    assert_eq!(response.accepted_count as usize, n);
    assert!(
        response
            .results
            .iter()
            .all(|r| r.accepted && !r.entry_id.is_empty())
    );

    let seen = collect_new_posts(&mut ws, &ids, Duration::from_secs(60)).await?;
    assert!(
        ids.is_subset(&seen),
        "{} of {n} new_post messages arrived",
        ids.intersection(&seen).count()
    );

    let expected = (n + warm_up.len()) as u64;
    Platform::wait_until(Duration::from_secs(10), || async {
        Ok(platform.counts().await? == (expected, expected))
    })
    .await?;

    // Nothing left pending in the consumer group.
    let redis = redis::Client::open(pulse_testkit::redis_url())?;
    let mut conn = redis.get_multiplexed_async_connection().await?;
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg(platform.stream_keys().posts())
        .arg("workers")
        .query_async(&mut conn)
        .await?;
    let redis::Value::Array(items) = summary else {
        anyhow::bail!("unexpected XPENDING reply");
    };
    assert_eq!(
        items.first(),
        Some(&redis::Value::Int(0)),
        "pending entries remain"
    );

    // The same posts through the REST API, in the seed's envelope, with real model labels.
    let body: Value = platform
        .get("/api/posts?limit=500&source=twitter")
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(body["metadata"]["total"].as_u64(), Some(expected));
    assert_eq!(body["filters"]["source"], "twitter");
    assert!(body["timestamp"].is_string());
    let data = body["data"].as_array().cloned().unwrap_or_default();
    let listed: HashSet<String> = data
        .iter()
        .filter_map(|p| p["post_id"].as_str().map(str::to_owned))
        .collect();
    assert!(ids.is_subset(&listed));
    let label_of = |text: &str| -> Vec<String> {
        data.iter()
            .filter(|p| p["content"] == text)
            .filter_map(|p| p["sentiment_label"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        label_of(texts[0]).iter().all(|l| l == "positive"),
        "{:?}",
        label_of(texts[0])
    );
    assert!(
        label_of(texts[1]).iter().all(|l| l == "negative"),
        "{:?}",
        label_of(texts[1])
    );

    let distribution: Value = platform
        .get("/api/sentiment/distribution")
        .await?
        .json()
        .await?;
    assert_eq!(distribution["data"]["total"].as_u64(), Some(expected));
    let aggregate: Value = platform
        .get("/api/sentiment/aggregate?bucket=minute&from=2020-01-01T00:00:00Z")
        .await?
        .json()
        .await?;
    // 2020 to now in minutes is far over the bucket limit: a clear 400, not a slow query.
    assert_eq!(aggregate["code"], "INVALID_ARGUMENT");
    let from = (Utc::now() - chrono::Duration::minutes(10))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let aggregate: Value = platform
        .get(&format!(
            "/api/sentiment/aggregate?bucket=minute&from={from}"
        ))
        .await?
        .json()
        .await?;
    let buckets = aggregate["data"].as_array().cloned().unwrap_or_default();
    assert!(
        buckets.len() >= 10,
        "empty minutes are present: {}",
        buckets.len()
    );
    let counted: u64 = buckets.iter().filter_map(|b| b["total"].as_u64()).sum();
    assert_eq!(counted, expected);

    platform.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_a_code_and_change_nothing() -> anyhow::Result<()> {
    let platform = Platform::start("badreq", Options::default()).await?;
    let client = platform.http()?;
    for (path, status, code) in [
        ("/api/posts?limit=0", 400, "OUT_OF_RANGE"),
        ("/api/posts?limit=abc", 400, "OUT_OF_RANGE"),
        ("/api/posts?colour=red", 400, "UNKNOWN_PARAMETER"),
        ("/api/posts?from=yesterday", 400, "INVALID_DATE"),
        ("/api/posts?sentiment=furious", 400, "INVALID_PARAMETER"),
        (
            "/api/sentiment/aggregate?bucket=week",
            400,
            "INVALID_PARAMETER",
        ),
        ("/api/nope", 404, "NOT_FOUND"),
    ] {
        let response = client.get(platform.gateway_url(path)).send().await?;
        assert_eq!(response.status().as_u16(), status, "{path}");
        let body: Value = response.json().await?;
        assert_eq!(body["code"], code, "{path}: {body}");
        assert!(body["error"].is_string() && body["timestamp"].is_string());
    }
    // An injection attempt is just a search string.
    let response = client
        .get(platform.gateway_url("/api/posts"))
        .query(&[("search", "'; DROP TABLE social_media_posts; --")])
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);

    // Invalid posts are refused one by one; valid ones in the same call go through.
    let mut ingest = platform.ingest_client().await?;
    let mut bad = post("bad id with spaces", "text");
    bad.source = "twitter".into();
    let response = ingest
        .publish(PublishRequest {
            posts: vec![bad, post("good-1", "Fine day")],
        })
        .await?
        .into_inner();
    assert_eq!(response.accepted_count, 1);
    assert!(
        !response.results[0].accepted
            && response.results[0].error.starts_with("INVALID_CHARACTERS")
    );
    assert!(response.results[1].accepted);
    Platform::wait_until(Duration::from_secs(30), || async {
        Ok(platform.counts().await? == (1, 1))
    })
    .await?;
    let (posts, analyses) = platform.counts().await?;
    assert_eq!((posts, analyses), (1, 1));

    let health: Value = platform.get("/api/health").await?.json().await?;
    assert_eq!(
        health["data"]["dependencies"]["inference"], "up",
        "{health}"
    );
    platform.shutdown().await
}
