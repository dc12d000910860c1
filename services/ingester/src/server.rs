//! Wiring: the gRPC server and the generator loop.

use std::{future::Future, path::Path, time::Duration};

use pulse_proto::v1::ingest_service_server::IngestServiceServer;
use pulse_runtime::{
    admin::Readiness,
    backoff::{Backoff, retry_until_ready},
    propagation::current_traceparent,
};
use pulse_stream::{PostEntry, Producer, RedisKeys, StreamError};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::{
    Config,
    backpressure::{self, Backpressure, Marks},
    config::{Command, ScenarioArgs},
    generator,
    metrics::IngesterMetrics,
    service::IngestApi,
};

/// Runs the generator until `shutdown` resolves.
///
/// A post is generated only when the previous one was stored and the backpressure gate is
/// open, so an outage of Redis (retried with backoff) or workers that fall behind pause the
/// generator instead of piling posts up in memory: nothing is generated that is not published.
pub async fn generate_forever(
    producer: Producer,
    posts_per_minute: u32,
    gate: Backpressure,
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
        tokio::select! {
            () = &mut shutdown => return,
            () = gate.wait_open() => {}
        }
        let (post, _) = generator::generate(&mut rand::rng());
        let span = tracing::info_span!(
            "ingest.generate",
            otel.kind = "producer",
            messaging.system = "redis",
            messaging.operation.type = "send",
            pulse.post_id = %post.post_id,
        );
        loop {
            let entry = PostEntry {
                post: post.clone(),
                traceparent: span.in_scope(current_traceparent),
            };
            match producer.publish(&entry).instrument(span.clone()).await {
                Ok(_) => {
                    gate.record(1);
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

/// Connects to Redis, retrying with backoff while it is unreachable; `None` on shutdown.
async fn connect_when_redis_answers(
    config: &Config,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> anyhow::Result<Option<Producer>> {
    let keys = RedisKeys::new(&config.redis.prefix);
    let producer = retry_until_ready(
        Backoff::default(),
        "redis unreachable at start",
        shutdown,
        || async {
            let conn = pulse_stream::connect(config.redis.url.expose()).await?;
            Ok(Producer::new(conn, &keys, config.stream_max_len))
        },
        StreamError::is_unavailable,
    )
    .await?;
    Ok(producer)
}

/// The backpressure gate of `config`, fed by a task measuring the backlog (abort it when done).
fn backpressure(
    config: &Config,
    producer: &Producer,
    metrics: &IngesterMetrics,
) -> (Backpressure, tokio::task::JoinHandle<()>) {
    let gate = Backpressure::new(
        Marks {
            high: config.backlog_high_water,
            low: config.backlog_low_water,
        },
        metrics.clone(),
    );
    let task = tokio::spawn(backpressure::watch(
        producer.clone(),
        gate.clone(),
        config.backlog_poll,
        metrics.clone(),
    ));
    (gate, task)
}

/// Serves IngestService on `listener` and runs the generator, until `shutdown`.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    serve_with(
        config,
        listener,
        prometheus::Registry::new(),
        Readiness::default(),
        shutdown,
    )
    .await
}

/// [`serve`], registering metrics in `registry` and reporting readiness through `readiness`
/// (so an embedding process or a test can observe both).
pub async fn serve_with(
    config: &Config,
    listener: TcpListener,
    registry: prometheus::Registry,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    config.check()?;
    let metrics = IngesterMetrics::new(&registry)?;
    let grpc_registry = registry.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |rx: &tokio::sync::watch::Receiver<bool>| {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let _admin =
        pulse_runtime::admin::start(config.admin_addr(), registry, readiness.clone()).await?;
    let mut shutdown = std::pin::pin!(shutdown);
    let Some(producer) = connect_when_redis_answers(config, &mut shutdown).await? else {
        let _ = stop_tx.send(true);
        return Ok(());
    };
    let (gate, gate_task) = backpressure(config, &producer, &metrics);
    let watcher = tokio::spawn(watch_stream(producer.clone(), metrics.clone(), readiness));
    let generator = tokio::spawn(generate_forever(
        producer.clone(),
        config.posts_per_minute,
        gate.clone(),
        metrics.clone(),
        stopped(&stop_rx),
    ));
    let (health, health_service) = pulse_runtime::grpc::health();
    health.set_serving::<IngestServiceServer<IngestApi>>().await;
    let api = IngestApi::new(producer, config.max_publish_batch, metrics, gate);
    let router = pulse_runtime::grpc::server(&grpc_registry)?
        .add_service(health_service)
        .add_service(IngestServiceServer::new(api));
    let router = pulse_runtime::grpc::with_reflection(router, "pulse.v1.IngestService")?;
    tracing::info!(addr = %listener.local_addr()?, posts_per_minute = config.posts_per_minute, "ingester listening");
    let result = pulse_runtime::grpc::serve(router, listener, shutdown).await;
    let _ = stop_tx.send(true);
    let _ = generator.await;
    watcher.abort();
    gate_task.abort();
    Ok(result?)
}

/// Binds the configured address and serves until SIGTERM, or runs the tool the command line
/// names.
pub async fn run(config: Config) -> anyhow::Result<()> {
    match &config.command {
        Some(Command::Replay { file, rate }) => return replay_file(&config, file, *rate).await,
        Some(Command::Scenario(args)) => return play_scenario(&config, args).await,
        None => {}
    }
    let listener = pulse_runtime::grpc::bind(config.addr).await?;
    serve(&config, listener, pulse_runtime::shutdown::signal()).await
}

/// `pulse-ingester replay FILE`: invalid lines go to stderr, the summary to stdout.
async fn replay_file(config: &Config, file: &Path, rate: Option<f64>) -> anyhow::Result<()> {
    config.check()?;
    if let Some(rate) = rate {
        anyhow::ensure!(
            rate.is_finite() && rate > 0.0,
            "--rate must be a positive number of posts per second"
        );
    }
    let metrics = IngesterMetrics::new(&prometheus::Registry::new())?;
    let mut shutdown = std::pin::pin!(pulse_runtime::shutdown::signal());
    let Some(producer) = connect_when_redis_answers(config, &mut shutdown).await? else {
        return Ok(());
    };
    let (gate, gate_task) = backpressure(config, &producer, &metrics);
    let summary = crate::replay::replay(
        &producer,
        &gate,
        &metrics,
        file,
        rate,
        shutdown,
        &mut std::io::stderr(),
    )
    .await;
    gate_task.abort();
    let summary = summary?;
    println!("{}: {summary}", file.display());
    Ok(())
}

/// `pulse-ingester scenario`: the phase lines and the summary go to stdout.
async fn play_scenario(config: &Config, args: &ScenarioArgs) -> anyhow::Result<()> {
    config.check()?;
    let plan = crate::scenario::Plan::new(args)?;
    let metrics = IngesterMetrics::new(&prometheus::Registry::new())?;
    let mut shutdown = std::pin::pin!(pulse_runtime::shutdown::signal());
    let Some(producer) = connect_when_redis_answers(config, &mut shutdown).await? else {
        return Ok(());
    };
    let (gate, gate_task) = backpressure(config, &producer, &metrics);
    let summary = crate::scenario::play(
        &producer,
        &gate,
        &metrics,
        &plan,
        shutdown,
        &mut std::io::stdout(),
    )
    .await;
    gate_task.abort();
    summary.map(drop)
}
