//! The public edge: keys and scopes, namespaced post ids and idempotent retries, rate limits,
//! CORS, and the live feed's tickets, Origin check, caps and idle timeout. Every refusal is
//! checked for its status, its code in the error envelope, and (where one applies) its header.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, ensure};
use futures::StreamExt;
use pulse_e2e::{Options, Platform, Scope, authorized_client};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

/// Asserts `response` is a refusal with `status` and `code` in the envelope; returns its headers.
async fn refused(
    response: Response,
    status: u16,
    code: &str,
) -> anyhow::Result<reqwest::header::HeaderMap> {
    let headers = response.headers().clone();
    let got = response.status();
    let body: Value = response.json().await.context("an error envelope")?;
    ensure!(
        got.as_u16() == status && body["code"] == code && body["error"].is_string(),
        "expected {status} {code}, got {got}: {body}"
    );
    ensure!(body["timestamp"].is_string(), "no timestamp: {body}");
    Ok(headers)
}

fn posts(ids: &[&str]) -> Value {
    json!({"posts": ids.iter().map(|id| json!({
        "post_id": id, "source": "twitter", "author": "sec", "content": "great phone, love it"
    })).collect::<Vec<_>>()})
}

/// The handshake's HTTP status when the gateway refuses an upgrade.
async fn upgrade_status(request: tungstenite::handshake::client::Request) -> anyhow::Result<u16> {
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => Ok(101),
        Err(tungstenite::Error::Http(response)) => Ok(response.status().as_u16()),
        Err(e) => Err(e.into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_scopes_namespaces_and_idempotent_publishing() -> anyhow::Result<()> {
    let platform = Platform::start(
        "security",
        Options {
            // Every lookup goes to the database, so a revocation shows at once.
            gateway_config: |config| config.auth_cache = Duration::ZERO,
            ..Options::default()
        },
    )
    .await?;
    let url = |path: &str| platform.gateway_url(path);
    let anonymous = reqwest::Client::new();

    // No key, a malformed one, an unknown one: 401 with WWW-Authenticate.
    let headers = refused(
        anonymous.get(url("/api/posts")).send().await?,
        401,
        "UNAUTHENTICATED",
    )
    .await?;
    ensure!(
        headers
            .get("www-authenticate")
            .is_some_and(|v| v == "Bearer")
    );
    for presented in [
        "Basic dXNlcjpwYXNz".to_owned(),
        "Bearer not-a-key".to_owned(),
        format!("Bearer pk_000000000000_{}", "0".repeat(64)),
    ] {
        refused(
            anonymous
                .get(url("/api/sentiment/distribution"))
                .header("authorization", presented)
                .send()
                .await?,
            401,
            "UNAUTHENTICATED",
        )
        .await?;
    }
    // Public: health and the API's description.
    ensure!(
        anonymous
            .get(url("/api/openapi.json"))
            .send()
            .await?
            .status()
            == StatusCode::OK
    );

    // A read key reads, and may neither publish nor analyse.
    let read_key = platform.create_key("reader", &[Scope::Read]).await?;
    let reader = authorized_client(&read_key)?;
    ensure!(reader.get(url("/api/posts")).send().await?.status() == StatusCode::OK);
    refused(
        reader
            .post(url("/api/posts"))
            .json(&posts(&["x"]))
            .send()
            .await?,
        403,
        "INSUFFICIENT_SCOPE",
    )
    .await?;
    refused(
        reader
            .post(url("/api/analyze"))
            .json(&json!({"text": "fine"}))
            .send()
            .await?,
        403,
        "INSUFFICIENT_SCOPE",
    )
    .await?;

    // Two publishers using the same post id each get their own post: ids are namespaced.
    let alice = authorized_client(&platform.create_key("alice", &[Scope::Write]).await?)?;
    let bob = authorized_client(&platform.create_key("bob", &[Scope::Write]).await?)?;
    let mut stored_ids = Vec::new();
    for publisher in [&alice, &bob] {
        let answer: Value = publisher
            .post(url("/api/posts"))
            .json(&posts(&["order-1"]))
            .send()
            .await?
            .json()
            .await?;
        ensure!(answer["data"][0]["accepted"] == true, "{answer}");
        stored_ids.push(
            answer["data"][0]["post_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    ensure!(
        stored_ids[0] != stored_ids[1] && stored_ids.iter().all(|id| id.ends_with(":order-1")),
        "{stored_ids:?}"
    );
    // Too long an id for the namespace is refused with a clear error.
    refused(
        alice
            .post(url("/api/posts"))
            .json(&posts(&[&"x".repeat(116)]))
            .send()
            .await?,
        400,
        "INVALID_ARGUMENT",
    )
    .await?;

    // Idempotency-Key: a retry replays the answer; posts without ids get the same derived ids.
    let batch = json!({"posts": [
        {"source": "reddit", "author": "sec", "content": "battery died again, awful"},
        {"source": "reddit", "author": "sec", "content": "works fine"},
    ]});
    let publish = |key: &'static str, body: Value| {
        let alice = alice.clone();
        let url = url("/api/posts");
        async move {
            alice
                .post(url)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
        }
    };
    let first = publish("retry-17", batch.clone()).await?;
    ensure!(first.status() == StatusCode::OK);
    ensure!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await?;
    let again = publish("retry-17", batch.clone()).await?;
    ensure!(
        again
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true")
    );
    let again: Value = again.json().await?;
    ensure!(first["data"] == again["data"], "{first} / {again}");
    refused(
        publish("retry-17", posts(&["other"])).await?,
        422,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await?;
    refused(
        alice
            .post(url("/api/posts"))
            .header("idempotency-key", "has space")
            .json(&batch)
            .send()
            .await?,
        400,
        "INVALID_IDEMPOTENCY_KEY",
    )
    .await?;
    // The first answer lost (as after a 504): the retry publishes again, with the same ids, and
    // the worker stores nothing twice.
    pulse_testkit::delete_redis_keys(&format!("{}:cache:idempotency", platform.stream_prefix))
        .await?;
    let retried: Value = publish("retry-17", batch.clone()).await?.json().await?;
    ensure!(first["data"][0]["post_id"] == retried["data"][0]["post_id"]);
    // 2 namespaced order-1 posts and the batch of 2.
    Platform::wait_until(Duration::from_secs(60), || async {
        let (posts, _) = platform.counts().await?;
        let backlog = platform.backlog().await?;
        Ok(posts >= 4 && backlog.pending == 0 && backlog.lag == Some(0))
    })
    .await?;
    ensure!(
        platform.counts().await?.0 == 4,
        "a retry stored a post twice"
    );

    // A revoked key stops working (the cache is off here; AUTH_CACHE_SECS bounds it otherwise).
    let pool = pulse_store::connect_pool(&platform.database.url, 1)?;
    let id = pulse_store::keys::id_of(&read_key)
        .context("id")?
        .to_owned();
    pulse_store::keys::revoke(&*pool.get().await?, &id).await?;
    refused(
        reader.get(url("/api/posts")).send().await?,
        401,
        "UNAUTHENTICATED",
    )
    .await?;

    // The live feed: a ticket opens it once; no key, a used ticket, a foreign page do not.
    let ws_url = format!("ws://{}/ws/sentiment", platform.gateway_addr);
    ensure!(upgrade_status(ws_url.clone().into_client_request()?).await? == 401);
    ensure!(upgrade_status(platform.ws_request()?).await? == 101);
    let ticket: Value = platform
        .http()?
        .post(url("/api/ws-ticket"))
        .send()
        .await?
        .json()
        .await?;
    let ticket = ticket["data"]["ticket"]
        .as_str()
        .context("a ticket")?
        .to_owned();
    let with_ticket = format!("{ws_url}?ticket={ticket}");
    ensure!(upgrade_status(with_ticket.clone().into_client_request()?).await? == 101);
    ensure!(upgrade_status(with_ticket.into_client_request()?).await? == 401);
    let mut foreign = platform.ws_request()?;
    foreign
        .headers_mut()
        .insert("origin", "https://evil.example".parse()?);
    ensure!(upgrade_status(foreign).await? == 403);

    platform.shutdown().await
}

/// A gateway alone, reads public, in front of an analytics that accepts connections and never
/// answers, behind one trusted proxy (so a test can speak from many addresses).
async fn lone_gateway(
    prefix: &str,
    configure: impl FnOnce(&mut pulse_gateway::Config),
) -> anyhow::Result<(SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    use clap::Parser;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let silent_addr = silent.local_addr()?;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut config = pulse_gateway::Config::parse_from(["pulse-gateway"]);
    config.addr = addr;
    config.admin.addr = Some("127.0.0.1:0".parse()?);
    config.analytics_url = format!("http://{silent_addr}");
    config.inference.url = "http://127.0.0.1:9".into();
    config.ingester_url = "http://127.0.0.1:9".into();
    config.upstream_timeout = Duration::from_secs(4);
    config.redis.url = pulse_settings::ConnectionUrl::new(pulse_testkit::redis_url());
    config.redis.prefix = prefix.to_owned();
    config.public_reads = true;
    config.trusted_proxies = 1;
    configure(&mut config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        pulse_gateway::serve(&config, listener, async {
            let _ = stopped.await;
        })
        .await
    });
    let probe = reqwest::Client::new();
    Platform::wait_until(Duration::from_secs(10), || async {
        Ok(probe
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_ok())
    })
    .await?;
    Ok((addr, stop))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_per_address_block_exports_and_live_connections() -> anyhow::Result<()> {
    let prefix = pulse_testkit::unique_name("limits");
    let (addr, stop) = lone_gateway(&prefix, |config| {
        config.rate_limit_requests = 3;
        config.rate_limit_window = Duration::from_secs(60);
        config.export_max_concurrent = 1;
        config.ws_max_per_client = 2;
        config.ws_max_connections = 3;
        config.ws_idle_timeout = Duration::from_secs(1);
    })
    .await?;
    let http = reqwest::Client::new();
    let from = |client: &str| {
        http.get(format!("http://{addr}/api/openapi.json"))
            .header("x-forwarded-for", client)
    };

    // Three at once from one address, then 429 with Retry-After; a forged leftmost hop does
    // not make a new client, and two addresses of one IPv6 /64 share an allowance.
    for _ in 0..3 {
        ensure!(from("203.0.113.5").send().await?.status() == StatusCode::OK);
    }
    let headers = refused(
        from("198.51.100.99, 203.0.113.5").send().await?,
        429,
        "RATE_LIMITED",
    )
    .await?;
    let retry: u64 = headers
        .get("retry-after")
        .context("Retry-After")?
        .to_str()?
        .parse()?;
    ensure!((1..=20).contains(&retry), "{retry}");
    ensure!(from("203.0.113.6").send().await?.status() == StatusCode::OK);
    for _ in 0..3 {
        ensure!(from("2001:db8:7:7::1").send().await?.status() == StatusCode::OK);
    }
    refused(from("2001:db8:7:7::2").send().await?, 429, "RATE_LIMITED").await?;
    ensure!(from("2001:db8:7:8::1").send().await?.status() == StatusCode::OK);

    // One export at a time: the first waits on an analytics that never answers.
    let export = |client: &'static str| {
        http.get(format!("http://{addr}/api/posts/export.csv"))
            .header("x-forwarded-for", client)
            .send()
    };
    let first = tokio::spawn(export("192.0.2.1"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    refused(export("192.0.2.2").await?, 429, "EXPORT_BUSY").await?;
    let first = first.await??;
    ensure!(
        first.status() == StatusCode::GATEWAY_TIMEOUT,
        "{}",
        first.status()
    );
    // The permit came back with the failed export.
    refused(export("192.0.2.3").await?, 504, "UPSTREAM_TIMEOUT").await?;

    // Live connections: two per client, three in all.
    let ws = |client: &str| -> anyhow::Result<tungstenite::handshake::client::Request> {
        let mut request = format!("ws://{addr}/ws/sentiment").into_client_request()?;
        request
            .headers_mut()
            .insert("x-forwarded-for", client.parse()?);
        Ok(request)
    };
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(tokio_tungstenite::connect_async(ws("192.0.2.10")?).await?.0);
    }
    ensure!(upgrade_status(ws("192.0.2.10")?).await? == 429);
    open.push(tokio_tungstenite::connect_async(ws("192.0.2.11")?).await?.0);
    ensure!(upgrade_status(ws("192.0.2.12")?).await? == 503);

    // A client that reads nothing (so answers no ping) is closed after the idle timeout, and
    // its slot is free again.
    let mut silent = open.remove(0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(message) = silent.next().await {
            match message {
                Ok(tungstenite::Message::Close(_)) | Err(_) => return true,
                Ok(_) => {}
            }
        }
        true
    })
    .await
    .unwrap_or(false);
    ensure!(closed, "the silent client was not closed");
    drop(open);
    Platform::wait_until(Duration::from_secs(5), || async {
        Ok(upgrade_status(ws("192.0.2.12")?).await? == 101)
    })
    .await?;

    let _ = stop.send(());
    pulse_testkit::delete_redis_keys(&prefix).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_limited_across_its_addresses() -> anyhow::Result<()> {
    let platform = Platform::start(
        "keylimit",
        Options {
            gateway_config: |config| {
                config.rate_limit_key_requests = 4;
                config.trusted_proxies = 1;
            },
            ..Options::default()
        },
    )
    .await?;
    let key = platform.create_key("busy", &[Scope::Read]).await?;
    let client = authorized_client(&key)?;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let response = client
            .get(platform.gateway_url("/api/alerts"))
            .header("x-forwarded-for", format!("192.0.2.{}", 20 + i))
            .send()
            .await?;
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused(response, 429, "RATE_LIMITED").await?;
        }
    }
    ensure!(statuses == [200, 200, 200, 200, 429, 429], "{statuses:?}");
    // Another key is not affected.
    let other = platform.http()?;
    ensure!(
        other
            .get(platform.gateway_url("/api/alerts"))
            .send()
            .await?
            .status()
            == StatusCode::OK
    );
    platform.shutdown().await
}
