//! The running platform measured from outside: posts go in through the ingester's gRPC
//! `Publish`, come out as `new_post` messages on the gateway's WebSocket.
//!
//! [`run`] publishes either as fast as the ingester's backpressure allows (`--rate` unset) or
//! at a fixed rate, for `--seconds`, then waits for the stragglers. Every post carries a run tag
//! in its id and as its source, so the sockets recognise this run's posts and the REST API can
//! count what was stored. Latency is ingest to WebSocket: from just before the `Publish` call to the moment a
//! socket received the post, on this machine's monotonic clock.
//!
//! [`fanout`] opens many sockets first and measures how long each post takes to reach all of
//! them.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use futures::StreamExt;
use pulse_proto::v1::{PublishRequest, ingest_service_client::IngestServiceClient};
use serde_json::Value;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::{stats::quantile, texts};

#[derive(Debug, Clone, clap::Args)]
pub struct Endpoints {
    /// The ingester's gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:50053")]
    pub ingester_url: String,
    /// The gateway's base URL (REST; the WebSocket is derived from it).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub gateway_url: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub endpoints: Endpoints,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Posts per second; unset publishes as fast as backpressure allows.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Posts per `Publish` call when publishing as fast as possible.
    #[arg(long, default_value_t = 50)]
    pub publish_batch: usize,
    /// Seconds to wait for the last posts after publishing stops.
    #[arg(long, default_value_t = 120)]
    pub drain_seconds: u64,
    /// Seconds at the start left out of the sustained rate (the pipeline filling up).
    #[arg(long, default_value_t = 10)]
    pub warm_up_seconds: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct FanoutOptions {
    #[command(flatten)]
    pub endpoints: Endpoints,
    /// WebSocket clients.
    #[arg(long, default_value_t = 1_000)]
    pub clients: usize,
    /// Posts to publish once every client is connected.
    #[arg(long, default_value_t = 100)]
    pub posts: usize,
    /// Posts per second.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
}

/// When each post of the run was handed to `Publish`, and when sockets received it.
#[derive(Default)]
struct Ledger {
    sent: HashMap<String, Instant>,
    received: Vec<(Instant, Duration)>,
}

type SharedLedger = Arc<Mutex<Ledger>>;

fn lock(ledger: &SharedLedger) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

fn ws_url(gateway: &str) -> String {
    let base = gateway.trim_end_matches('/');
    let base = base
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .or_else(|| {
            base.strip_prefix("http://")
                .map(|rest| format!("ws://{rest}"))
        })
        .unwrap_or_else(|| base.to_owned());
    format!("{base}/ws/sentiment")
}

/// The post id of a `new_post` message, if it belongs to the run tagged `tag`.
fn post_id_of(text: &str, tag: &str) -> Option<String> {
    if !text.contains(tag) {
        return None;
    }
    let value: Value = serde_json::from_str(text).ok()?;
    if value["type"] != "new_post" {
        return None;
    }
    value["data"]["post_id"]
        .as_str()
        .filter(|id| id.starts_with(tag))
        .map(str::to_owned)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> anyhow::Result<Socket> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    // The greeting, so the socket is known to be subscribed before anything is published.
    socket.next().await.context("socket closed at once")??;
    Ok(socket)
}

/// Reads `socket` until it closes, recording this run's posts and when they arrived.
async fn follow(mut socket: Socket, tag: String, ledger: SharedLedger) {
    while let Some(Ok(message)) = socket.next().await {
        let Ok(text) = message.to_text() else {
            continue;
        };
        if let Some(id) = post_id_of(text, &tag) {
            let now = Instant::now();
            let mut ledger = lock(&ledger);
            if let Some(sent) = ledger.sent.get(&id).copied() {
                ledger.received.push((now, now - sent));
            }
        }
    }
}

fn post(tag: &str, n: usize, content: &str) -> pulse_proto::v1::Post {
    pulse_proto::v1::Post {
        post_id: format!("{tag}-{n}"),
        // The run's own source: the stored count is one indexed filter away.
        source: tag.to_owned(),
        author: "pulse-bench".into(),
        content: content.to_owned(),
        created_at: Some(pulse_domain::datetime_to_timestamp(chrono::Utc::now())),
    }
}

/// Publishes `posts`, retrying while the ingester pushes back; returns how often it did.
async fn publish(
    client: &mut IngestServiceClient<Channel>,
    posts: Vec<pulse_proto::v1::Post>,
    ledger: &SharedLedger,
) -> anyhow::Result<usize> {
    let mut throttled = 0;
    loop {
        let now = Instant::now();
        {
            let mut ledger = lock(ledger);
            for p in &posts {
                ledger.sent.insert(p.post_id.clone(), now);
            }
        }
        match client
            .publish(PublishRequest {
                posts: posts.clone(),
            })
            .await
        {
            Ok(response) => {
                let rejected = response
                    .into_inner()
                    .results
                    .iter()
                    .filter(|r| !r.accepted)
                    .count();
                ensure!(rejected == 0, "{rejected} posts rejected");
                return Ok(throttled);
            }
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                throttled += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => return Err(status).context("publishing"),
        }
    }
}

/// Posts of the run that the REST API lists (stored and analysed).
async fn stored(gateway: &str, tag: &str) -> anyhow::Result<u64> {
    let url = format!("{}/api/posts", gateway.trim_end_matches('/'));
    let response: Value = reqwest::Client::new()
        .get(url)
        .query(&[("source", tag), ("limit", "1")])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    response["metadata"]["total"]
        .as_u64()
        .context("no metadata.total in /api/posts")
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let tag = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let texts = texts::generated(4_096);
    let ledger = SharedLedger::default();
    let socket = connect(&ws_url(&options.endpoints.gateway_url)).await?;
    let reader = tokio::spawn(follow(socket, tag.clone(), Arc::clone(&ledger)));
    let mut client = IngestServiceClient::connect(options.endpoints.ingester_url.clone())
        .await
        .context("connecting to the ingester")?;

    let started = Instant::now();
    let publish_for = Duration::from_secs(options.seconds);
    let mut published = 0usize;
    let mut throttled = 0usize;
    match options.rate {
        Some(rate) => {
            ensure!(rate > 0.0, "--rate must be positive");
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while started.elapsed() < publish_for {
                tick.tick().await;
                let content = &texts[published % texts.len()];
                throttled +=
                    publish(&mut client, vec![post(&tag, published, content)], &ledger).await?;
                published += 1;
            }
        }
        None => {
            while started.elapsed() < publish_for {
                let batch: Vec<_> = (published..published + options.publish_batch)
                    .map(|n| post(&tag, n, &texts[n % texts.len()]))
                    .collect();
                throttled += publish(&mut client, batch, &ledger).await?;
                published += options.publish_batch;
            }
        }
    }
    let publishing_ended = Instant::now();
    let drain_deadline = publishing_ended + Duration::from_secs(options.drain_seconds);
    while lock(&ledger).received.len() < published && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reader.abort();
    let stored = stored(&options.endpoints.gateway_url, &tag).await?;

    let ledger = lock(&ledger);
    let mut latencies: Vec<Duration> = ledger.received.iter().map(|(_, l)| *l).collect();
    let delivered = latencies.len();
    let last = ledger.received.iter().map(|(at, _)| *at).max();
    let warm_up = started + Duration::from_secs(options.warm_up_seconds);
    let steady: Vec<Instant> = ledger
        .received
        .iter()
        .map(|(at, _)| *at)
        .filter(|at| *at >= warm_up && *at <= publishing_ended)
        .collect();
    let steady_secs = (publishing_ended - warm_up).as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let sustained = steady.len() as f64 / steady_secs;
    #[allow(clippy::cast_precision_loss)]
    let overall = last.map_or(0.0, |last| {
        delivered as f64 / (last - started).as_secs_f64()
    });

    println!("run        {tag}");
    match options.rate {
        Some(rate) => println!(
            "mode       fixed rate {rate} posts/s for {} s",
            options.seconds
        ),
        None => println!(
            "mode       as fast as backpressure allows for {} s ({} posts per call)",
            options.seconds, options.publish_batch
        ),
    }
    println!("published  {published} (throttled {throttled} times)");
    println!("stored     {stored}");
    println!("delivered  {delivered} on the WebSocket");
    println!(
        "sustained  {sustained:.1} posts/s delivered between {} s and the end of publishing",
        options.warm_up_seconds
    );
    println!("overall    {overall:.1} posts/s (all delivered / first publish to last delivery)");
    println!(
        "latency    p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms (ingest to WebSocket)",
        millis(quantile(&mut latencies, 0.5)),
        millis(quantile(&mut latencies, 0.99)),
        millis(quantile(&mut latencies, 1.0)),
    );
    #[allow(clippy::cast_possible_truncation)]
    let lost = published as i64 - stored as i64;
    println!("lost       {lost}");
    ensure!(lost == 0, "{lost} posts were published but not stored");
    Ok(())
}

pub async fn fanout(options: FanoutOptions) -> anyhow::Result<()> {
    let tag = format!("fan{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let url = ws_url(&options.endpoints.gateway_url);
    let ledger = SharedLedger::default();
    let connecting = Instant::now();
    let mut sockets = JoinSet::new();
    // Connect a few at a time, as a crowd of browsers would, not all in one burst.
    for chunk in (0..options.clients).collect::<Vec<_>>().chunks(50) {
        let mut opened = JoinSet::new();
        for _ in chunk {
            let url = url.clone();
            opened.spawn(async move { connect(&url).await });
        }
        while let Some(socket) = opened.join_next().await {
            sockets.spawn(follow(socket??, tag.clone(), Arc::clone(&ledger)));
        }
    }
    println!(
        "clients    {} connected in {:.1} s",
        options.clients,
        connecting.elapsed().as_secs_f64()
    );
    let mut client = IngestServiceClient::connect(options.endpoints.ingester_url.clone())
        .await
        .context("connecting to the ingester")?;
    let texts = texts::generated(options.posts);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / options.rate));
    for (n, text) in texts.iter().enumerate() {
        tick.tick().await;
        publish(&mut client, vec![post(&tag, n, text)], &ledger).await?;
    }
    let expected = options.clients * options.posts;
    let deadline = Instant::now() + Duration::from_secs(60);
    while lock(&ledger).received.len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sockets.abort_all();
    let ledger = lock(&ledger);
    let mut latencies: Vec<Duration> = ledger.received.iter().map(|(_, l)| *l).collect();
    println!("posts      {} at {} posts/s", options.posts, options.rate);
    println!(
        "delivered  {} of {expected} messages ({:.2} %)",
        latencies.len(),
        latencies.len() as f64 / expected as f64 * 100.0
    );
    println!(
        "latency    p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms (ingest to each socket)",
        millis(quantile(&mut latencies, 0.5)),
        millis(quantile(&mut latencies, 0.99)),
        millis(quantile(&mut latencies, 1.0)),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_this_runs_posts() {
        let ours = r#"{"type":"new_post","data":{"post_id":"benchab12-7"}}"#;
        assert_eq!(
            post_id_of(ours, "benchab12").as_deref(),
            Some("benchab12-7")
        );
        assert_eq!(post_id_of(ours, "benchzz99"), None);
        let other = r#"{"type":"metrics_update","data":{"post_id":"benchab12-7"}}"#;
        assert_eq!(post_id_of(other, "benchab12"), None);
        assert_eq!(ws_url("http://h:8080/"), "ws://h:8080/ws/sentiment");
        assert_eq!(ws_url("https://h"), "wss://h/ws/sentiment");
    }
}
