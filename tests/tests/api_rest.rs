//! The REST API end to end: every endpoint and filter through the gateway, in the envelope,
//! with its error paths; the CSV export; the OpenAPI document against the routes; request ids,
//! CORS, gzip, rate limiting and the health endpoint's 503.

use std::{collections::HashSet, time::Duration};

use chrono::{SecondsFormat, Utc};
use pulse_e2e::{Options, Platform};
use reqwest::StatusCode;
use serde_json::{Value, json};

const POSITIVE: &str = "I absolutely love this phone, the camera is stunning";
const NEGATIVE: &str = "The update broke everything, worst release ever";

fn ago(minutes: i64) -> String {
    (Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn get(client: &reqwest::Client, platform: &Platform, path: &str) -> anyhow::Result<Value> {
    let response = client.get(platform.gateway_url(path)).send().await?;
    anyhow::ensure!(
        response.status() == StatusCode::OK,
        "{path}: {}",
        response.status()
    );
    Ok(response.json().await?)
}

async fn expect_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
    what: &str,
) -> anyhow::Result<()> {
    assert_eq!(response.status().as_u16(), status, "{what}");
    let body: Value = response.json().await?;
    assert_eq!(body["code"], code, "{what}: {body}");
    assert!(
        body["error"].is_string() && body["timestamp"].is_string(),
        "{what}: {body}"
    );
    Ok(())
}

/// Parses RFC 4180 CSV (quoted fields may hold commas, quotes and line breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_endpoint_filter_and_error_path() -> anyhow::Result<()> {
    let platform = Platform::start("api", Options::default()).await?;
    let client = reqwest::Client::new();

    // Publishing through the gateway: per-item results, a bad item refused on its own.
    let tricky = "Arrived on Tuesday, \"as promised\", with commas\nand a second line";
    let injection = "'; DROP TABLE social_media_posts; --";
    let body = json!({"posts": [
        {"post_id": "r-1", "source": "reddit", "author": "alice", "content": POSITIVE, "created_at": ago(5)},
        {"post_id": "r-2", "source": "reddit", "author": "bob", "content": NEGATIVE, "created_at": ago(4)},
        {"post_id": "t-1", "source": "twitter", "author": "alice", "content": tricky, "created_at": ago(3)},
        {"post_id": "t-2", "source": "twitter", "author": "carol", "content": "50%_off is the worst deal ever, terrible", "created_at": ago(2)},
        {"post_id": "t-3", "source": "twitter", "author": "dave", "content": injection, "created_at": ago(1)},
        {"post_id": "bad id", "source": "twitter", "author": "eve", "content": "x"},
    ]});
    let response = client
        .post(platform.gateway_url("/api/posts"))
        .json(&body)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let published: Value = response.json().await?;
    assert_eq!(published["metadata"]["accepted"], 5, "{published}");
    assert_eq!(published["metadata"]["rejected"], 1);
    let results = published["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 6);
    assert!(
        results[..5]
            .iter()
            .all(|r| r["accepted"] == true && r["entry_id"].is_string())
    );
    assert_eq!(results[5]["accepted"], false);
    assert!(results[5]["error"].as_str().is_some_and(|e| !e.is_empty()));
    Platform::wait_until(Duration::from_secs(60), || async {
        Ok(platform.counts().await? == (5, 5))
    })
    .await?;

    // ListPosts: envelope, newest first, honest total with limit/offset.
    let all = get(&client, &platform, "/api/posts").await?;
    assert!(all["timestamp"].is_string() && all["filters"].is_object());
    assert_eq!(all["metadata"]["total"], 5);
    let ids: Vec<&str> = all["data"]
        .as_array()
        .map(|d| d.iter().filter_map(|p| p["post_id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["t-3", "t-2", "t-1", "r-2", "r-1"]);
    let page = get(&client, &platform, "/api/posts?limit=2&offset=3").await?;
    assert_eq!(page["metadata"]["total"], 5);
    assert_eq!(page["metadata"]["returned"], 2);
    assert_eq!(page["data"][0]["post_id"], "r-2");
    assert!(
        page["data"][0]["analyses"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );

    // Every filter.
    let total = |v: &Value| v["metadata"]["total"].as_u64().unwrap_or(u64::MAX);
    for (query, expected) in [
        ("source=reddit", 2),
        ("author=alice", 2),
        ("search=ARRIVED%20on", 1),
        ("search=50%25_off", 1),
        ("search=50%25_x", 0),
        ("emotion=no-such-emotion", 0),
        ("sentiment=positive&source=reddit", 1),
        ("sentiment=negative&source=reddit", 1),
        (
            &format!("from={}&to={}", ago(3).replace('+', "%2B"), ago(1)),
            2,
        ),
    ] {
        let v = get(&client, &platform, &format!("/api/posts?{query}")).await?;
        assert_eq!(total(&v), expected, "{query}: {v}");
    }
    let joy = get(&client, &platform, "/api/posts?emotion=JOY").await?;
    assert!(
        joy["data"]
            .as_array()
            .is_some_and(|d| d.iter().all(|p| p["emotion"] == "joy")),
        "{joy}"
    );
    let negative = get(&client, &platform, "/api/posts?sentiment=negative").await?;
    assert!(
        negative["data"]
            .as_array()
            .is_some_and(|d| d.iter().all(|p| p["sentiment_label"] == "negative"))
    );
    assert_eq!(negative["filters"]["sentiment"], "negative");

    // SQL injection is data: it matches as text, and nothing changed.
    let v = client
        .get(platform.gateway_url("/api/posts"))
        .query(&[("search", injection), ("author", "dave' OR '1'='1")])
        .send()
        .await?;
    assert_eq!(v.status(), StatusCode::OK);
    assert_eq!(v.json::<Value>().await?["metadata"]["total"], 0);
    let v = client
        .get(platform.gateway_url("/api/posts"))
        .query(&[("search", injection)])
        .send()
        .await?
        .json::<Value>()
        .await?;
    assert_eq!(v["metadata"]["total"], 1);
    assert_eq!(platform.counts().await?, (5, 5));

    // Distribution (per source on request) and aggregate buckets without gaps.
    let d = get(
        &client,
        &platform,
        "/api/sentiment/distribution?by_source=true",
    )
    .await?;
    assert_eq!(d["data"]["total"], 5);
    let shares: f64 = d["data"]["sentiment"]
        .as_array()
        .map(|s| s.iter().filter_map(|c| c["percentage"].as_f64()).sum())
        .unwrap_or_default();
    assert!((shares - 100.0).abs() < 1e-6, "{d}");
    let sources: HashSet<&str> = d["data"]["sources"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["source"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(sources, HashSet::from(["reddit", "twitter"]));
    let d = get(
        &client,
        &platform,
        "/api/sentiment/distribution?source=reddit",
    )
    .await?;
    assert_eq!(d["data"]["total"], 2);
    let a = get(
        &client,
        &platform,
        &format!("/api/sentiment/aggregate?bucket=minute&from={}", ago(10)),
    )
    .await?;
    let buckets = a["data"].as_array().cloned().unwrap_or_default();
    assert!(buckets.len() >= 10, "{a}");
    assert_eq!(
        buckets
            .iter()
            .filter_map(|b| b["total"].as_u64())
            .sum::<u64>(),
        5
    );
    assert!(buckets.iter().any(|b| b["total"] == 0));
    let alerts = get(&client, &platform, "/api/alerts?limit=10").await?;
    assert_eq!(alerts["data"], json!([]));

    // Ad-hoc analysis.
    let response = client
        .post(platform.gateway_url("/api/analyze"))
        .json(&json!({"text": POSITIVE, "tasks": ["sentiment"]}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let analysed: Value = response.json().await?;
    let sentiment = &analysed["data"]["sentiment"];
    assert_eq!(sentiment["label"], "positive", "{analysed}");
    assert!(sentiment["score"].as_f64().is_some_and(|s| s > 0.5));
    assert!(
        sentiment["scores"]
            .as_object()
            .is_some_and(|s| s.len() >= 2)
    );
    assert!(sentiment["model"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(sentiment["backend"], "local");
    assert!(sentiment["timings"]["inference_us"].is_u64());
    let default_tasks: Value = client
        .post(platform.gateway_url("/api/analyze"))
        .json(&json!({"text": NEGATIVE}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(default_tasks["data"]["sentiment"]["label"], "negative");

    // Bad input: a code for each, nothing stored.
    for (path, status, code) in [
        ("/api/posts?colour=red", 400, "UNKNOWN_PARAMETER"),
        ("/api/posts?limit=0", 400, "OUT_OF_RANGE"),
        ("/api/posts?limit=501", 400, "OUT_OF_RANGE"),
        ("/api/posts?offset=-1", 400, "OUT_OF_RANGE"),
        ("/api/posts?from=2026-13-45", 400, "INVALID_DATE"),
        (
            "/api/posts?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
            "INVALID_RANGE",
        ),
        (
            "/api/sentiment/distribution?by_source=maybe",
            400,
            "INVALID_PARAMETER",
        ),
        (
            "/api/sentiment/aggregate?bucket=week",
            400,
            "INVALID_PARAMETER",
        ),
        ("/api/alerts?since=now", 400, "INVALID_DATE"),
        ("/api/alerts?limit=100000", 400, "OUT_OF_RANGE"),
        (
            "/api/posts/export.csv?sentiment=angry",
            400,
            "INVALID_PARAMETER",
        ),
        ("/api/analyze", 405, "METHOD_NOT_ALLOWED"),
        ("/api/nope", 404, "NOT_FOUND"),
    ] {
        let response = client.get(platform.gateway_url(path)).send().await?;
        expect_error(response, status, code, path).await?;
    }
    let long = "x".repeat(10_000);
    let response = client
        .get(platform.gateway_url("/api/posts"))
        .query(&[("search", long.as_str())])
        .send()
        .await?;
    expect_error(response, 400, "PARAMETER_TOO_LONG", "long search").await?;
    for (path, body, code) in [
        ("/api/analyze", "{not json".to_owned(), "INVALID_BODY"),
        ("/api/analyze", json!({"text": "x", "extra": 1}).to_string(), "INVALID_BODY"),
        ("/api/analyze", json!({}).to_string(), "INVALID_BODY"),
        ("/api/analyze", json!({"text": "  "}).to_string(), "INVALID_PARAMETER"),
        ("/api/analyze", json!({"text": "x", "tasks": ["summary"]}).to_string(), "INVALID_PARAMETER"),
        ("/api/analyze", json!({"text": "x".repeat(6_000)}).to_string(), "PARAMETER_TOO_LONG"),
        ("/api/posts", json!({"posts": []}).to_string(), "OUT_OF_RANGE"),
        ("/api/posts", json!({"posts": [{"source": "a", "author": "b", "content": "c", "created_at": "soon"}]}).to_string(), "INVALID_DATE"),
        ("/api/posts", json!({"posts": [{"source": "a", "author": "b", "content": "x".repeat(2_000_000)}]}).to_string(), "BODY_TOO_LARGE"),
    ] {
        let response = client
            .post(platform.gateway_url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        expect_error(response, 400, code, &format!("POST {path} {code}")).await?;
    }
    // A chunked body (no Content-Length) over the limit is refused the same way.
    let chunks =
        futures::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])));
    let response = client
        .post(platform.gateway_url("/api/posts"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await?;
    expect_error(response, 400, "BODY_TOO_LARGE", "chunked").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(platform.counts().await?, (5, 5));

    // CSV export: streamed, quoted, an attachment, the same filters.
    let response = client
        .get(platform.gateway_url("/api/posts/export.csv?source=twitter"))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/csv"));
    assert!(header("content-disposition").starts_with("attachment; filename="));
    let rows = parse_csv(&response.text().await?);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[0][0], "post_id");
    let content_column = rows[0].iter().position(|c| c == "content").unwrap_or(0);
    assert!(rows.iter().all(|r| r.len() == rows[0].len()));
    assert!(rows.iter().any(|r| r[content_column] == tricky));
    assert!(rows.iter().any(|r| r[content_column] == injection));

    // Many pages: rows written straight to the database, exported without gaps or repeats.
    let extra = 1_234;
    {
        let pool = pulse_store::connect_pool(&platform.database.url, 1)?;
        let mut db = pool.get().await?;
        let created = Utc::now() - chrono::Duration::hours(1);
        let posts: Vec<pulse_domain::Post> = (0..extra)
            .map(|i| pulse_domain::Post {
                post_id: format!("bulk-{i}"),
                source: "bulk".into(),
                author: "loader".into(),
                content: format!("bulk post {i}, \"quoted\""),
                created_at: created + chrono::Duration::milliseconds(i),
            })
            .collect();
        let analyses: Vec<pulse_domain::Analysis> = posts
            .iter()
            .map(|p| pulse_domain::Analysis {
                post_id: p.post_id.clone(),
                model_name: "test-model".into(),
                sentiment_label: "neutral".into(),
                confidence_score: 0.9,
                emotion: None,
                emotion_score: None,
                emotion_model: None,
                analyzed_at: Utc::now(),
            })
            .collect();
        pulse_store::posts::insert_analysed(&mut db, &posts, &analyses).await?;
    }
    let text = client
        .get(platform.gateway_url("/api/posts/export.csv?source=bulk"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let rows = parse_csv(&text);
    let ids: HashSet<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(rows.len() - 1, extra as usize);
    assert_eq!(ids.len(), extra as usize);

    // Request ids: generated, or kept when well-formed.
    let response = client
        .get(platform.gateway_url("/api/alerts"))
        .send()
        .await?;
    let generated = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    for (incoming, kept) in [("trace-abc.123", true), ("bad id<script>", false)] {
        let response = client
            .get(platform.gateway_url("/api/nope"))
            .header("x-request-id", incoming)
            .send()
            .await?;
        let id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(id == incoming, kept, "{incoming} -> {id}");
        assert!(!id.is_empty());
    }

    // CORS preflight and gzip.
    let response = client
        .request(reqwest::Method::OPTIONS, platform.gateway_url("/api/posts"))
        .header("origin", "https://dashboard.example")
        .header("access-control-request-method", "GET")
        .send()
        .await?;
    assert!(response.status().is_success());
    assert!(
        response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let response = client
        .get(platform.gateway_url("/api/posts"))
        .header("accept-encoding", "gzip")
        .send()
        .await?;
    assert_eq!(
        response
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );

    // The OpenAPI document: every documented operation is routed (never the catch-all).
    let doc = get(&client, &platform, "/api/openapi.json").await?;
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let mut operations = 0;
    for (path, ops) in &paths {
        for method in ops
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let request = match method.as_str() {
                "get" => client.get(platform.gateway_url(path)),
                "post" => client.post(platform.gateway_url(path)).body("{}"),
                other => anyhow::bail!("undocumented method {other}"),
            };
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.text().await?;
            assert!(
                status != 404 && status != 405,
                "{method} {path} is documented but not routed: {status} {body}"
            );
            operations += 1;
        }
    }
    assert_eq!(operations, pulse_gateway::openapi::ROUTES.len());
    for (method, path) in pulse_gateway::openapi::ROUTES {
        assert!(
            paths.get(*path).is_some_and(|p| p.get(*method).is_some()),
            "{method} {path}"
        );
    }

    platform.shutdown().await
}

/// Only a gateway, in front of services that are not there: the rate limiter, and health's
/// 503 when analytics (and so the database) cannot be reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_unhealthy_dependencies() -> anyhow::Result<()> {
    use clap::Parser;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut config = pulse_gateway::Config::parse_from(["pulse-gateway"]);
    config.addr = addr;
    config.admin.addr = Some("127.0.0.1:0".parse()?);
    // Port 9 (discard) is closed on loopback: every upstream is unreachable.
    config.analytics_url = "http://127.0.0.1:9".into();
    config.inference_url = "http://127.0.0.1:9".into();
    config.ingester_url = "http://127.0.0.1:9".into();
    config.upstream_timeout = std::time::Duration::from_secs(1);
    config.redis.prefix = format!("pulse-test-ratelimit-{}", uuid::Uuid::new_v4().simple());
    config.rate_limit_requests = 5;
    config.rate_limit_window = std::time::Duration::from_secs(60);
    config.cors_allowed_origins = "https://dashboard.example".into();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        pulse_gateway::serve(&config, listener, async {
            let _ = stopped.await;
        })
        .await
    });
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{addr}{path}");
    pulse_e2e::Platform::wait_until(Duration::from_secs(10), || async {
        Ok(client.get(url("/healthz")).send().await.is_ok())
    })
    .await?;

    let health = client.get(url("/api/health")).send().await?;
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = health.json().await?;
    assert_eq!(health["data"]["status"], "unhealthy");
    assert_eq!(health["data"]["dependencies"]["database"], "unreachable");
    let posts = client.get(url("/api/posts")).send().await?;
    expect_error(posts, 503, "SERVICE_UNAVAILABLE", "posts without analytics").await?;

    // A disallowed origin is refused; an allowed one gets the header.
    let response = client
        .get(url("/api/openapi.json"))
        .header("origin", "https://evil.example")
        .send()
        .await?;
    expect_error(response, 403, "CORS_FORBIDDEN", "foreign origin").await?;
    let response = client
        .get(url("/api/openapi.json"))
        .header("origin", "https://dashboard.example")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://dashboard.example")
    );

    // At most 5 requests per window: within a few more, one is refused.
    let mut limited = None;
    for _ in 0..6 {
        let response = client.get(url("/api/openapi.json")).send().await?;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let limited = limited.ok_or_else(|| anyhow::anyhow!("never rate limited"))?;
    let retry_after: u64 = limited
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    expect_error(limited, 429, "RATE_LIMITED", "over the limit").await?;
    // Probes and the dashboard are not limited.
    assert_eq!(
        client.get(url("/healthz")).send().await?.status(),
        StatusCode::OK
    );

    let _ = stop.send(());
    server.await??;
    Ok(())
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Ws, timeout: Duration) -> anyhow::Result<Option<Value>> {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let Ok(next) = tokio::time::timeout_at(deadline, ws.next()).await else {
            return Ok(None);
        };
        let Some(message) = next else {
            return Ok(None);
        };
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message? {
            return Ok(Some(serde_json::from_str(&text)?));
        }
    }
}

/// Sends a text message and returns the first reply of type `want`.
async fn request(ws: &mut Ws, text: &str, want: &str) -> anyhow::Result<Value> {
    use futures::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        text.to_owned(),
    ))
    .await?;
    while let Some(v) = next_json(ws, Duration::from_secs(5)).await? {
        if v["type"] == want {
            return Ok(v);
        }
    }
    anyhow::bail!("no {want} reply to {text}")
}

/// Post ids of the new_post messages that arrive within `timeout`.
async fn new_posts(ws: &mut Ws, timeout: Duration) -> anyhow::Result<HashSet<String>> {
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(v) = next_json(ws, left).await? else {
            return Ok(seen);
        };
        if v["type"] == "new_post" {
            seen.insert(v["data"]["post_id"].as_str().unwrap_or_default().to_owned());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn websocket_clients_receive_live_events_through_their_filters() -> anyhow::Result<()> {
    let platform = Platform::start("apiws", Options::default()).await?;
    let url = format!("ws://{}/ws/sentiment", platform.gateway_addr);
    let mut everything = tokio_tungstenite::connect_async(&url).await?.0;
    let mut reddit = tokio_tungstenite::connect_async(&url).await?.0;
    let mut negative = tokio_tungstenite::connect_async(&url).await?.0;
    for ws in [&mut everything, &mut reddit, &mut negative] {
        let hello = next_json(ws, Duration::from_secs(5)).await?;
        assert_eq!(hello.map(|h| h["type"].clone()), Some(json!("connected")));
    }
    let pong = request(&mut everything, r#"{"type":"ping"}"#, "pong").await?;
    assert!(pong["timestamp"].is_string());
    let error = request(
        &mut reddit,
        r#"{"type":"subscribe","sentiment":"furious"}"#,
        "error",
    )
    .await?;
    assert_eq!(error["data"]["code"], "INVALID_MESSAGE");
    let ok = request(
        &mut reddit,
        r#"{"type":"subscribe","source":"reddit"}"#,
        "subscribed",
    )
    .await?;
    assert_eq!(ok["data"]["source"], "reddit");
    request(
        &mut negative,
        r#"{"type":"subscribe","sentiment":"negative"}"#,
        "subscribed",
    )
    .await?;

    // The feed is live once a first post reaches the unfiltered client.
    let client = reqwest::Client::new();
    let publish = |posts: Value| {
        let client = client.clone();
        let url = platform.gateway_url("/api/posts");
        async move {
            client
                .post(url)
                .json(&json!({ "posts": posts }))
                .send()
                .await?
                .error_for_status()?;
            anyhow::Ok(())
        }
    };
    for attempt in 0..20 {
        publish(json!([{"post_id": format!("warm-{attempt}"), "source": "warmup", "author": "t", "content": "Warming up"}])).await?;
        if !new_posts(&mut everything, Duration::from_secs(2))
            .await?
            .is_empty()
        {
            break;
        }
    }
    publish(json!([
        {"post_id": "ws-r-pos", "source": "reddit", "author": "a", "content": POSITIVE},
        {"post_id": "ws-r-neg", "source": "reddit", "author": "a", "content": NEGATIVE},
        {"post_id": "ws-t-pos", "source": "twitter", "author": "a", "content": POSITIVE},
        {"post_id": "ws-t-neg", "source": "twitter", "author": "a", "content": NEGATIVE},
    ]))
    .await?;
    let wanted: HashSet<String> = ["ws-r-pos", "ws-r-neg", "ws-t-pos", "ws-t-neg"]
        .map(String::from)
        .into();
    let all = new_posts(&mut everything, Duration::from_secs(20)).await?;
    assert!(wanted.is_subset(&all), "{all:?}");
    let only = |seen: HashSet<String>| -> HashSet<String> {
        seen.into_iter()
            .filter(|id| id.starts_with("ws-"))
            .collect()
    };
    assert_eq!(
        only(new_posts(&mut reddit, Duration::from_secs(3)).await?),
        ["ws-r-pos", "ws-r-neg"].map(String::from).into()
    );
    assert_eq!(
        only(new_posts(&mut negative, Duration::from_secs(3)).await?),
        ["ws-r-neg", "ws-t-neg"].map(String::from).into()
    );
    platform.shutdown().await
}
