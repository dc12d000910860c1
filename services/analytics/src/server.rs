//! Wiring: pools, event feed and the gRPC server.
//!
//! Every read query goes through one pool: on DATABASE_READ_URL (a replica) when it is set,
//! else on DATABASE_URL. The alert monitor (leader lock, evaluation, inserts) always works on
//! DATABASE_URL, and so does the event feed's look-up of an alert just raised, which a replica
//! may not have yet.

use std::future::Future;

use std::time::Duration;

use pulse_proto::v1::analytics_service_server::AnalyticsServiceServer;
use pulse_stream::{Connection, EventFeed, RedisKeys};
use tokio::net::TcpListener;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    Config, alerts::AlertMonitor, cache::DistributionCache, feed::Feed, grpc::AnalyticsApi,
    metrics::AnalyticsMetrics, queries::ReadPools, totals::TotalCache,
};
use pulse_runtime::admin::Readiness;

/// How often the reachability of PostgreSQL and Redis is re-checked.
const DEPENDENCY_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Keeps the health services `postgres` and `redis` current, so the gateway's health endpoint
/// (and a readiness probe) can tell which dependency is down. `postgres` is serving only while
/// both the primary and, when one is configured, the read replica answer.
async fn watch_dependencies(
    readiness: Readiness,
    health: HealthReporter,
    primary: pulse_store::Pool,
    replica: Option<pulse_store::Pool>,
    redis: Connection,
) {
    let status = |ok: bool| {
        if ok {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        }
    };
    let reachable = |pool: pulse_store::Pool| async move {
        tokio::time::timeout(DEPENDENCY_CHECK_EVERY, pulse_store::pool::ping(&pool))
            .await
            .is_ok_and(|r| r.is_ok())
    };
    let mut ticker = tokio::time::interval(DEPENDENCY_CHECK_EVERY);
    let mut replica_was_ok = true;
    loop {
        ticker.tick().await;
        let (primary_ok, replica_ok, redis_ok) = tokio::join!(
            reachable(primary.clone()),
            async {
                match &replica {
                    Some(pool) => reachable(pool.clone()).await,
                    None => true,
                }
            },
            async {
                tokio::time::timeout(
                    DEPENDENCY_CHECK_EVERY,
                    pulse_stream::connection::ping(&redis),
                )
                .await
                .is_ok_and(|r| r.is_ok())
            }
        );
        if replica_ok != replica_was_ok {
            if replica_ok {
                tracing::info!("the read replica (DATABASE_READ_URL) answers again");
            } else {
                tracing::warn!("the read replica (DATABASE_READ_URL) does not answer");
            }
            replica_was_ok = replica_ok;
        }
        let db_ok = primary_ok && replica_ok;
        readiness.set(db_ok);
        health.set_service_status("postgres", status(db_ok)).await;
        health.set_service_status("redis", status(redis_ok)).await;
    }
}

/// The pools of one analytics instance.
struct Pools {
    /// On DATABASE_URL: what must see the primary's latest writes.
    primary: pulse_store::Pool,
    /// Every read query a caller waits for: the replica's pool, or the primary's when there
    /// is no replica.
    reads: pulse_store::Pool,
    /// Reads with a text search, on the same server as `reads`: half its connections.
    searches: pulse_store::Pool,
    /// Whether `reads` is a pool of its own, on DATABASE_READ_URL.
    replica: bool,
}

impl Pools {
    fn connect(config: &Config) -> anyhow::Result<Self> {
        let read_pool = |url: &pulse_settings::ConnectionUrl, size: usize| {
            pulse_store::connect_read_pool(url.expose(), size, config.read_statement_timeout)
        };
        let search_pool = |url: &pulse_settings::ConnectionUrl| {
            pulse_store::connect_search_pool(
                url.expose(),
                (config.database_pool_size / 2).max(1),
                config.read_statement_timeout,
            )
        };
        Ok(match config.read_url() {
            Some(replica) => {
                tracing::info!(%replica, "read queries go to DATABASE_READ_URL");
                Self {
                    primary: read_pool(
                        &config.database.url,
                        Config::PRIMARY_POOL_SIZE_WITH_REPLICA.min(config.database_pool_size),
                    )?,
                    reads: read_pool(replica, config.database_pool_size)?,
                    searches: search_pool(replica)?,
                    replica: true,
                }
            }
            None => {
                let pool = read_pool(&config.database.url, config.database_pool_size)?;
                Self {
                    primary: pool.clone(),
                    reads: pool,
                    searches: search_pool(&config.database.url)?,
                    replica: false,
                }
            }
        })
    }
}

/// Serves AnalyticsService on `listener` until `shutdown`.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let pools = Pools::connect(config)?;
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
        pools.reads.clone(),
        pools.primary.clone(),
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
        pools.primary.clone(),
        pools.replica.then(|| pools.reads.clone()),
        conn,
    ));
    let router = pulse_runtime::grpc::server(&registry)?
        .add_service(health_service)
        .add_service(AnalyticsServiceServer::new(AnalyticsApi::new(
            ReadPools {
                reads: pools.reads,
                searches: pools.searches,
            },
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
