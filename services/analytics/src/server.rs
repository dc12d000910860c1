//! Wiring: pool, event feed and the gRPC server.

use std::future::Future;

use std::time::Duration;

use pulse_proto::v1::analytics_service_server::AnalyticsServiceServer;
use pulse_stream::{Connection, EventFeed, RedisKeys};
use tokio::net::TcpListener;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    Config, alerts::AlertMonitor, cache::DistributionCache, feed::Feed, grpc::AnalyticsApi,
    metrics::AnalyticsMetrics, totals::TotalCache,
};
use pulse_runtime::admin::Readiness;

/// How often the reachability of PostgreSQL and Redis is re-checked.
const DEPENDENCY_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Keeps the health services `postgres` and `redis` current, so the gateway's health endpoint
/// (and a readiness probe) can tell which dependency is down.
async fn watch_dependencies(
    readiness: Readiness,
    health: HealthReporter,
    pool: pulse_store::Pool,
    redis: Connection,
) {
    let mut ticker = tokio::time::interval(DEPENDENCY_CHECK_EVERY);
    loop {
        ticker.tick().await;
        let status = |ok: bool| {
            if ok {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            }
        };
        let db_ok = tokio::time::timeout(DEPENDENCY_CHECK_EVERY, pulse_store::pool::ping(&pool))
            .await
            .is_ok_and(|r| r.is_ok());
        let redis_ok = tokio::time::timeout(
            DEPENDENCY_CHECK_EVERY,
            pulse_stream::connection::ping(&redis),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        readiness.set(db_ok);
        health.set_service_status("postgres", status(db_ok)).await;
        health.set_service_status("redis", status(redis_ok)).await;
    }
}

/// Serves AnalyticsService on `listener` until `shutdown`.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let pool = pulse_store::connect_read_pool(
        config.database.url.expose(),
        config.database_pool_size,
        config.read_statement_timeout,
    )?;
    // Lazy: reads fall back to PostgreSQL while Redis is down, so the service starts without it.
    let conn = pulse_stream::connection::connect_lazy(config.redis.url.expose())?;
    let keys = RedisKeys::new(&config.redis.prefix);
    let events = EventFeed::new(
        conn.clone(),
        &keys,
        pulse_stream::events::DEFAULT_EVENTS_MAX_LEN,
    );
    // Event subscriptions never end on their own; they are told to when shutdown begins, so the
    // graceful drain of the gRPC server can finish.
    let (stopping, stop_feed) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    let feed = Feed::new(
        events.clone(),
        config.redis.url.clone(),
        pool.clone(),
        config.metrics_interval(),
        stop_feed,
    );
    let (health, health_service) = pulse_runtime::grpc::health();
    health
        .set_serving::<AnalyticsServiceServer<AnalyticsApi>>()
        .await;
    let registry = prometheus::Registry::new();
    let metrics = AnalyticsMetrics::new(&registry)?;
    let cache = DistributionCache::new(
        conn.clone(),
        keys.clone(),
        config.distribution_cache_ttl,
        metrics.clone(),
    );
    let monitor = (!config.alert_interval.is_zero()).then(|| {
        tokio::spawn(
            AlertMonitor::new(
                config.database.url.clone(),
                events.clone(),
                config.alert_rules(),
                config.alert_interval,
                metrics.clone(),
            )
            .run(),
        )
    });
    let readiness = Readiness::default();
    let dependencies = tokio::spawn(watch_dependencies(
        readiness.clone(),
        health.clone(),
        pool.clone(),
        conn,
    ));
    let router = pulse_runtime::grpc::server(&registry)?
        .add_service(health_service)
        .add_service(AnalyticsServiceServer::new(AnalyticsApi::new(
            pool,
            feed,
            cache,
            TotalCache::new(config.list_total_ttl),
        )));
    let router = pulse_runtime::grpc::with_reflection(router, "pulse.v1.AnalyticsService")?;
    tracing::info!(addr = %listener.local_addr()?, "analytics listening");
    let _admin = pulse_runtime::admin::start(config.admin_addr(), registry, readiness).await?;
    let served = pulse_runtime::grpc::serve(router, listener, shutdown).await;
    dependencies.abort();
    if let Some(monitor) = monitor {
        monitor.abort();
    }
    Ok(served?)
}

/// Binds the configured address and serves until SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listener = pulse_runtime::grpc::bind(config.addr).await?;
    serve(&config, listener, pulse_runtime::shutdown::signal()).await
}
