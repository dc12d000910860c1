//! Wiring: the gRPC server and the generator loop.

use std::{future::Future, time::Duration};

use pulse_core::{admin::Readiness, backoff::Backoff, propagation::current_traceparent};
use pulse_proto::v1::ingest_service_server::IngestServiceServer;
use pulse_stream::{PostEntry, Producer, StreamKeys};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::{Config, generator, metrics::IngesterMetrics, service::IngestApi};

/// Runs the generator until `shutdown` resolves.
///
/// A post is generated only when the previous one was stored, so an outage of Redis pauses the
/// generator (with backoff) instead of piling posts up in memory.
pub async fn generate_forever(
    producer: Producer,
    posts_per_minute: u32,
    metrics: IngesterMetrics,
    shutdown: impl Future<Output = ()>,
) {
    if posts_per_minute == 0 {
        return;
    }
    let period = Duration::from_secs_f64(60.0 / f64::from(posts_per_minute));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = Backoff::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        let (post, _) = generator::generate(&mut rand::rng());
        let span = tracing::info_span!(
            "ingest.generate",
            otel.kind = "producer",
            messaging.system = "redis",
            messaging.operation = "publish",
            messaging.message.id = %post.post_id,
        );
        loop {
            let entry = PostEntry {
                post: post.clone(),
                traceparent: span.in_scope(current_traceparent),
            };
            match producer.publish(&entry).instrument(span.clone()).await {
                Ok(_) => {
                    metrics
                        .posts_ingested
                        .with_label_values(&["generator"])
                        .inc();
                    backoff.reset();
                    break;
                }
                Err(e) => {
                    metrics
                        .publish_failures
                        .with_label_values(&["generator"])
                        .inc();
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, ?delay, "cannot publish a generated post; retrying");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}

/// Keeps the stream-length gauge current; ready while Redis answers.
async fn watch_stream(producer: Producer, metrics: IngesterMetrics, readiness: Readiness) {
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    loop {
        ticker.tick().await;
        match producer.stream_len().await {
            Ok(len) => {
                metrics
                    .stream_length
                    .set(i64::try_from(len).unwrap_or(i64::MAX));
                readiness.set(true);
            }
            Err(e) => {
                tracing::warn!(error = %e, "redis unreachable");
                readiness.set(false);
            }
        }
    }
}

/// Serves IngestService on `listener` and runs the generator, until `shutdown`.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let registry = prometheus::Registry::new();
    let metrics = IngesterMetrics::new(&registry)?;
    let grpc_registry = registry.clone();
    let readiness = Readiness::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |rx: &tokio::sync::watch::Receiver<bool>| {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    pulse_core::admin::spawn(
        config.admin_addr,
        registry,
        readiness.clone(),
        stopped(&stop_rx),
    )
    .await?;
    let conn = pulse_stream::connect(&config.redis_url).await?;
    let producer = Producer::new(
        conn,
        &StreamKeys::new(&config.stream_prefix),
        config.stream_max_len,
    );
    let watcher = tokio::spawn(watch_stream(producer.clone(), metrics.clone(), readiness));
    let generator = tokio::spawn(generate_forever(
        producer.clone(),
        config.posts_per_minute,
        metrics.clone(),
        stopped(&stop_rx),
    ));
    let (health, health_service) = pulse_core::grpc::health();
    health.set_serving::<IngestServiceServer<IngestApi>>().await;
    let api = IngestApi::new(producer, config.max_publish_batch, metrics);
    let router = pulse_core::grpc::server(&grpc_registry)?
        .add_service(health_service)
        .add_service(IngestServiceServer::new(api));
    let router = pulse_core::grpc::with_reflection(router, "pulse.v1.IngestService")?;
    tracing::info!(addr = %listener.local_addr()?, posts_per_minute = config.posts_per_minute, "ingester listening");
    let result = pulse_core::grpc::serve(router, listener, shutdown).await;
    let _ = stop_tx.send(true);
    let _ = generator.await;
    watcher.abort();
    Ok(result?)
}

/// Binds the configured address and serves until SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listener = pulse_core::grpc::bind(config.addr).await?;
    serve(&config, listener, pulse_core::shutdown::signal()).await
}
