//! The read loop of one worker: what to read, how many batches run at once, outages, shutdown.
//!
//! Up to `WORKER_CONCURRENCY` batches are in flight, each a task that runs
//! [`Processor::process`] under the `BATCH_TIMEOUT` deadline. The loop reads the next batch only
//! when a slot is free, so a batch starts the moment its entries are delivered (which is what
//! lets `CLAIM_IDLE` > `BATCH_TIMEOUT` protect entries in flight, see [`crate::reclaim`]).
//!
//! When a batch fails because a dependency is down, the loop stops reading, lets the other
//! batches finish, and probes Redis, PostgreSQL and inference with exponential backoff and
//! jitter, reporting not-ready, until all answer; then it re-reads its own pending entries
//! first. The failed entries were never acknowledged, so nothing is lost; the deliveries an outage
//! costs them do not count towards `MAX_DELIVERIES` (only failures of their own do, see
//! [`crate::processor`]).
//!
//! On shutdown it stops reading, gives the batches in flight `SHUTDOWN_GRACE` to finish, and
//! abandons the rest: their entries stay pending, for this consumer name after a restart or for
//! another worker after `CLAIM_IDLE`.

use std::{future::Future, sync::Arc, time::Duration};

use futures::FutureExt;
use pulse_proto::v1::inference_service_client::InferenceServiceClient;
use pulse_runtime::{
    admin::Readiness,
    backoff::{Backoff, retry_until_ready},
    balanced_channel::{self, ChannelOptions},
    propagation::TracedChannel,
};
use pulse_stream::{
    Delivery, EventFeed, GroupConsumer, RedisKeys, StreamError, connection::connect_blocking,
};
use tokio::task::{JoinError, JoinSet};

use crate::{
    Config,
    health::{self, Dependencies, Health},
    inflight::InFlight,
    maintenance,
    metrics::WorkerMetrics,
    processor::{BatchError, BatchOutcome, Processor},
    reclaim::{Next, Reclaim},
    trim,
};

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
                metrics
                    .stream_length
                    .set(i64::try_from(backlog.length).unwrap_or(i64::MAX));
            }
            Err(e) => tracing::debug!(error = %e, "cannot read the group's backlog"),
        }
        match consumer.dead_letter_count().await {
            Ok(count) => metrics
                .dead_letters
                .set(i64::try_from(count).unwrap_or(i64::MAX)),
            Err(e) => tracing::debug!(error = %e, "cannot read the dead-letter stream's length"),
        }
    }
}

/// Builds the processor's connections; only Redis must answer (the others connect lazily).
pub async fn processor(config: &Config, metrics: WorkerMetrics) -> anyhow::Result<Processor> {
    let mentions = if config.insights_terms {
        Some(crate::mentions::Extractor::from_file(
            config.entities_file.as_deref(),
        )?)
    } else {
        None
    };
    let keys = RedisKeys::new(&config.redis.prefix);
    let conn = pulse_stream::connect(config.redis.url.expose()).await?;
    let blocking = connect_blocking(config.redis.url.expose(), config.block).await?;
    let consumer = GroupConsumer::new(conn.clone(), blocking, keys.clone(), config.consumer_name());
    let channel = balanced_channel::connect_lazy(
        &config.inference.url,
        ChannelOptions {
            connect_timeout: Duration::from_secs(2),
            timeout: None,
            resolve_every: config.inference.resolve,
        },
    )?;
    let inference = InferenceServiceClient::new(TracedChannel::new(channel));
    let pool = pulse_store::connect_pool(config.database.url.expose(), config.database_pool_size)?;
    Ok(Processor {
        metrics,
        consumer,
        inference,
        pool,
        events: EventFeed::new(conn, &keys, config.events_max_len),
        max_deliveries: config.max_deliveries,
        inference_timeout: config.inference_timeout,
        mentions,
    })
}

/// [`processor`], retried with backoff while Redis is unreachable; `None` on shutdown.
async fn processor_when_redis_answers(
    config: &Config,
    metrics: &WorkerMetrics,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> anyhow::Result<Option<Processor>> {
    retry_until_ready(
        Backoff::new(Duration::from_millis(200), config.retry_max),
        "redis unreachable at start",
        shutdown,
        || processor(config, metrics.clone()),
        |e: &anyhow::Error| {
            e.downcast_ref::<StreamError>()
                .is_some_and(StreamError::is_unavailable)
        },
    )
    .await
}

type BatchResult = Result<BatchOutcome, BatchError>;

/// The loop's state.
struct ReadLoop {
    config: Config,
    processor: Arc<Processor>,
    consumer: GroupConsumer,
    dependencies: Dependencies,
    health: Health,
    metrics: WorkerMetrics,
    in_flight: InFlight,
    batches: JoinSet<BatchResult>,
    reclaim: Reclaim,
    /// The cause of the outage being waited out.
    outage: Option<&'static str>,
    backoff: Backoff,
}

impl ReadLoop {
    /// Reads and dispatches batches until `shutdown`.
    async fn run(&mut self, shutdown: &mut (impl Future<Output = ()> + Unpin)) {
        loop {
            while let Some(done) = self.batches.try_join_next() {
                self.finished(done);
            }
            if (&mut *shutdown).now_or_never().is_some() {
                return;
            }
            if self.outage.is_some() {
                if !self.wait_out_outage(shutdown).await {
                    return;
                }
                continue;
            }
            if self.batches.len() >= self.config.concurrency {
                if !self.wait_for_a_batch(shutdown).await {
                    return;
                }
                continue;
            }
            let step = match self.reclaim.next(!self.batches.is_empty()) {
                Next::Drain => {
                    if !self.wait_for_a_batch(shutdown).await {
                        return;
                    }
                    continue;
                }
                Next::Scan { after } => self.scan(&after).await,
                Next::Claim { cursor } => self.claim(&cursor).await,
                Next::ReadNew => self.read_new().await,
            };
            if let Err(e) = step {
                self.outage_begins("redis", &e);
            }
        }
    }

    async fn scan(&mut self, after: &str) -> Result<(), StreamError> {
        let page = self
            .consumer
            .read_own_pending(after, self.config.batch_size)
            .await?;
        self.reclaim.scanned(page.last().map(|d| d.id.clone()));
        let page = self.not_in_flight(page);
        if !page.is_empty() {
            tracing::info!(count = page.len(), "processing own pending entries again");
            self.dispatch(page, true);
        }
        Ok(())
    }

    async fn claim(&mut self, cursor: &str) -> Result<(), StreamError> {
        let (claimed, next) = self
            .consumer
            .autoclaim(self.config.claim_idle, cursor, self.config.batch_size)
            .await?;
        self.reclaim.claimed(next);
        let claimed = self.not_in_flight(claimed);
        if !claimed.is_empty() {
            tracing::info!(
                count = claimed.len(),
                "took over entries idle for longer than CLAIM_IDLE"
            );
            self.metrics.entries_claimed.inc_by(claimed.len() as u64);
            self.dispatch(claimed, true);
        }
        Ok(())
    }

    async fn read_new(&mut self) -> Result<(), StreamError> {
        let batch = self
            .consumer
            .read_new(self.config.batch_size, self.config.block)
            .await?;
        if !batch.is_empty() {
            self.dispatch(batch, false);
        }
        Ok(())
    }

    /// Drops entries that are in flight here (they stay with their batch).
    fn not_in_flight(&self, deliveries: Vec<Delivery>) -> Vec<Delivery> {
        let (busy, free): (Vec<Delivery>, Vec<Delivery>) = deliveries
            .into_iter()
            .partition(|d| self.in_flight.contains(&d.id));
        if !busy.is_empty() {
            tracing::warn!(
                count = busy.len(),
                "re-read entries that are in flight here; leaving them to their batch"
            );
        }
        free
    }

    /// Starts a batch task under the batch deadline.
    fn dispatch(&mut self, deliveries: Vec<Delivery>, redelivered: bool) {
        let guard = self
            .in_flight
            .track(deliveries.iter().map(|d| d.id.clone()).collect());
        let processor = Arc::clone(&self.processor);
        let deadline = self.config.batch_timeout;
        self.batches.spawn(async move {
            let _in_flight = guard;
            tokio::time::timeout(deadline, processor.process(deliveries, redelivered))
                .await
                .unwrap_or(Err(BatchError::Timeout(deadline)))
        });
        self.metrics
            .batches_in_flight
            .set(i64::try_from(self.batches.len()).unwrap_or(i64::MAX));
    }

    /// Waits for one batch to finish; false on shutdown.
    async fn wait_for_a_batch(
        &mut self,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> bool {
        tokio::select! {
            () = &mut *shutdown => false,
            done = self.batches.join_next() => {
                if let Some(done) = done {
                    self.finished(done);
                }
                true
            }
        }
    }

    fn finished(&mut self, done: Result<BatchResult, JoinError>) {
        self.metrics
            .batches_in_flight
            .set(i64::try_from(self.batches.len()).unwrap_or(i64::MAX));
        match done {
            Ok(Ok(outcome)) => {
                self.backoff.reset();
                if outcome.failed > 0 {
                    self.reclaim.retry_later();
                }
            }
            Ok(Err(e)) => {
                self.metrics
                    .batches_failed
                    .with_label_values(&[e.cause()])
                    .inc();
                if e.is_transient() {
                    self.outage_begins(e.cause(), &e);
                } else {
                    tracing::warn!(error = %e, "batch failed; its entries stay pending");
                    self.reclaim.retry_later();
                }
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                tracing::error!(error = %e, "a batch task panicked; its entries stay pending");
                self.metrics
                    .batches_failed
                    .with_label_values(&["panic"])
                    .inc();
                self.reclaim.retry_later();
            }
        }
    }

    fn outage_begins(&mut self, cause: &'static str, error: &dyn std::fmt::Display) {
        if self.outage.is_none() {
            tracing::warn!(cause, %error, "a dependency failed; entries stay pending until it answers");
        }
        self.outage = Some(cause);
        self.health.outage_started();
    }

    /// Lets the batches in flight finish, then probes the dependencies with backoff until all
    /// answer; false on shutdown.
    async fn wait_out_outage(&mut self, shutdown: &mut (impl Future<Output = ()> + Unpin)) -> bool {
        while !self.batches.is_empty() {
            if !self.wait_for_a_batch(shutdown).await {
                return false;
            }
        }
        loop {
            let delay = self.backoff.next_delay();
            tokio::select! {
                () = &mut *shutdown => return false,
                () = tokio::time::sleep(delay) => {}
            }
            match self.dependencies.probe().await {
                Ok(()) => break,
                Err(e) => tracing::warn!(
                    cause = self.outage.unwrap_or("unknown"),
                    error = %e,
                    ?delay,
                    attempts = self.backoff.attempts(),
                    "still waiting for dependencies"
                ),
            }
        }
        // The stream or the group may have been deleted meanwhile.
        if let Err(e) = self.consumer.ensure_group().await {
            tracing::warn!(error = %e, "cannot create the consumer group");
            return true;
        }
        tracing::info!(
            cause = self.outage.unwrap_or("unknown"),
            "dependencies answer again; resuming with own pending entries"
        );
        self.outage = None;
        self.health.outage_ended();
        self.reclaim.scan_now();
        true
    }

    /// Creates the consumer group, retrying while Redis refuses; false on shutdown.
    async fn create_group(&mut self, shutdown: &mut (impl Future<Output = ()> + Unpin)) -> bool {
        loop {
            match self.consumer.ensure_group().await {
                Ok(()) => {
                    self.backoff.reset();
                    return true;
                }
                Err(e) => {
                    let delay = self.backoff.next_delay();
                    tracing::warn!(error = %e, ?delay, "cannot create the consumer group; retrying");
                    tokio::select! {
                        () = &mut *shutdown => return false,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Gives the batches in flight `grace` to finish, then abandons the rest (their entries
    /// stay pending).
    async fn drain(&mut self, grace: Duration) {
        let in_flight = self.batches.len();
        if in_flight > 0 {
            tracing::info!(
                batches = in_flight,
                ?grace,
                "stopping: finishing batches in flight"
            );
        }
        let finished = tokio::time::timeout(grace, async {
            while let Some(done) = self.batches.join_next().await {
                self.finished(done);
            }
        })
        .await;
        if finished.is_err() {
            let abandoned = self.batches.len();
            self.batches.shutdown().await;
            self.metrics.batches_abandoned.inc_by(abandoned as u64);
            tracing::warn!(
                batches = abandoned,
                "abandoned batches that overran the grace period; their entries stay pending"
            );
        }
    }
}

/// Runs the worker until `shutdown`, with its own metrics registry and readiness.
pub async fn serve(
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with(
        config,
        prometheus::Registry::new(),
        Readiness::default(),
        shutdown,
    )
    .await
}

/// Runs the worker until `shutdown`, registering its metrics in `registry` and reporting
/// readiness through `readiness` (so an embedding process or a test can observe both).
pub async fn serve_with(
    config: &Config,
    registry: prometheus::Registry,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.check()?;
    let metrics = WorkerMetrics::new(&registry)?;
    let mut shutdown = Box::pin(shutdown).shared();
    let _admin =
        pulse_runtime::admin::start(config.admin_addr(), registry, readiness.clone()).await?;
    let Some(processor) = processor_when_redis_answers(config, &metrics, &mut shutdown).await?
    else {
        return Ok(());
    };
    let consumer = processor.consumer.clone();
    let dependencies = Dependencies {
        consumer: consumer.clone(),
        pool: processor.pool.clone(),
        inference: processor.inference.clone(),
    };
    let health = Health::new(readiness);
    // Dropped (and so aborted) with this function, also when the task running it is aborted.
    let mut background = JoinSet::new();
    background.spawn(watch_backlog(consumer.clone(), metrics.clone()));
    background.spawn(trim::keep_trimmed(
        consumer.clone(),
        config.claim_interval,
        metrics.clone(),
    ));
    background.spawn(health::watch(dependencies.clone(), health.clone()));
    background.spawn(maintenance::keep_maintained(
        processor.pool.clone(),
        config.retention,
        config.maintenance_interval,
        metrics.clone(),
    ));
    tracing::info!(
        consumer = consumer.consumer_name(),
        batch_size = config.batch_size,
        concurrency = config.concurrency,
        claim_idle = ?config.claim_idle,
        batch_timeout = ?config.batch_timeout,
        "worker started"
    );
    let mut read_loop = ReadLoop {
        config: config.clone(),
        processor: Arc::new(processor),
        consumer,
        dependencies,
        health,
        metrics,
        in_flight: InFlight::default(),
        batches: JoinSet::new(),
        reclaim: Reclaim::new(config.claim_interval, config.retry_max),
        outage: None,
        backoff: Backoff::new(Duration::from_millis(200), config.retry_max),
    };
    if read_loop.create_group(&mut shutdown).await {
        read_loop.run(&mut shutdown).await;
    }
    read_loop.drain(config.shutdown_grace).await;
    background.shutdown().await;
    tracing::info!("worker stopped");
    Ok(())
}

/// Runs until SIGTERM, or runs the tool the command line names.
pub async fn run(config: Config) -> anyhow::Result<()> {
    if let Some(crate::config::Command::Dlq(command)) = &config.command {
        return crate::dlq::run(&config, command, &mut std::io::stdout()).await;
    }
    serve(&config, pulse_runtime::shutdown::signal()).await
}
