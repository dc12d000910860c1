//! The read loop of one worker.

use std::{future::Future, time::Duration};

use pulse_core::{backoff::Backoff, propagation::TraceContextInterceptor};
use pulse_proto::v1::inference_service_client::InferenceServiceClient;
use pulse_stream::{EventFeed, GroupConsumer, StreamKeys, connection::connect_blocking};
use tonic::transport::Endpoint;

use crate::{
    Config,
    metrics::WorkerMetrics,
    processor::{BatchError, Processor},
};
use pulse_core::admin::Readiness;

/// How often entries of dead consumers are looked for.
const CLAIM_EVERY: Duration = Duration::from_secs(10);

/// How often the backlog gauges are refreshed.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// Keeps the stream gauges current.
async fn watch_backlog(consumer: GroupConsumer, metrics: WorkerMetrics) {
    let mut ticker = tokio::time::interval(BACKLOG_EVERY);
    loop {
        ticker.tick().await;
        match consumer.backlog().await {
            Ok(backlog) => {
                metrics
                    .stream_pending
                    .set(i64::try_from(backlog.pending).unwrap_or(i64::MAX));
                if let Some(lag) = backlog.lag {
                    metrics
                        .consumer_lag
                        .set(i64::try_from(lag).unwrap_or(i64::MAX));
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot read the group's backlog"),
        }
        if let Ok(len) = consumer.stream_len().await {
            metrics
                .stream_length
                .set(i64::try_from(len).unwrap_or(i64::MAX));
        }
    }
}

/// Builds the processor's connections; none of them needs its peer to be up yet.
pub async fn processor(config: &Config, metrics: WorkerMetrics) -> anyhow::Result<Processor> {
    let keys = StreamKeys::new(&config.stream_prefix);
    let conn = pulse_stream::connect(&config.redis_url).await?;
    let blocking = connect_blocking(&config.redis_url, config.block()).await?;
    let consumer = GroupConsumer::new(conn.clone(), blocking, keys.clone(), config.consumer_name());
    let channel = Endpoint::from_shared(config.inference_url.clone())?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .connect_lazy();
    let inference = InferenceServiceClient::with_interceptor(channel, TraceContextInterceptor);
    let pool = pulse_store::connect_pool(&config.database_url, config.database_pool_size)?;
    Ok(Processor {
        metrics,
        consumer,
        inference,
        pool,
        events: EventFeed::new(conn, &keys, config.events_max_len),
        max_deliveries: config.max_deliveries,
        inference_timeout: Duration::from_millis(config.inference_timeout_ms),
    })
}

/// Reads and processes batches until `shutdown`.
///
/// After any failure the worker goes back to its own pending entries (read from id `0`) before
/// taking new ones, so a batch that failed is retried first; every [`CLAIM_EVERY`] it takes
/// over entries that other consumers left idle for longer than `CLAIM_IDLE`.
pub async fn serve(
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let registry = prometheus::Registry::new();
    let metrics = WorkerMetrics::new(&registry)?;
    let readiness = Readiness::default();
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    pulse_core::admin::spawn(
        config.admin_addr,
        registry,
        readiness.clone(),
        shutdown.clone(),
    )
    .await?;
    let processor = processor(config, metrics.clone()).await?;
    let consumer = processor.consumer.clone();
    let backlog = tokio::spawn(watch_backlog(consumer.clone(), metrics.clone()));
    tracing::info!(
        consumer = consumer.consumer_name(),
        batch_size = config.batch_size,
        "worker started"
    );
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let mut group_ready = false;
    let mut recovering = true;
    let mut last_claim = tokio::time::Instant::now();
    let mut claim_cursor = "0-0".to_owned();
    tokio::pin!(shutdown);
    loop {
        let step = async {
            if !group_ready {
                consumer.ensure_group().await?;
                group_ready = true;
            }
            if last_claim.elapsed() >= CLAIM_EVERY {
                last_claim = tokio::time::Instant::now();
                let (claimed, next) = consumer
                    .autoclaim(config.claim_idle(), &claim_cursor, config.batch_size)
                    .await?;
                claim_cursor = next;
                if !claimed.is_empty() {
                    tracing::info!(count = claimed.len(), "claimed entries of an idle consumer");
                    processor.process(claimed, true).await?;
                    return Ok::<_, anyhow::Error>(());
                }
            }
            if recovering {
                let pending = consumer.read_own_pending("0", config.batch_size).await?;
                if pending.is_empty() {
                    recovering = false;
                } else {
                    processor.process(pending, true).await?;
                }
                return Ok(());
            }
            let batch = consumer.read_new(config.batch_size, config.block()).await?;
            processor.process(batch, false).await?;
            Ok(())
        };
        tokio::select! {
            () = &mut shutdown => break,
            result = step => match result {
                Ok(()) => {
                    backoff.reset();
                    readiness.set(true);
                }
                Err(e) => {
                    recovering = true;
                    readiness.set(false);
                    let cause = e.downcast_ref::<BatchError>().map_or("redis", BatchError::cause);
                    metrics.batches_failed.with_label_values(&[cause]).inc();
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, ?delay, attempts = backoff.attempts(), "batch failed; entries stay pending");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
    backlog.abort();
    tracing::info!("worker stopped");
    Ok(())
}

/// Runs until SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    serve(&config, pulse_core::shutdown::signal()).await
}
