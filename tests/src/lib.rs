//! A test harness that runs the whole mesh in one process.
//!
//! [`Platform::start`] creates a throw-away database (migrated) and a unique Redis key prefix
//! (from `pulse_testkit`, like every set-up value here), then starts inference, analytics,
//! worker, ingester and gateway on free loopback ports, each through the same `serve` function
//! its binary uses, talking real gRPC, HTTP, Redis and PostgreSQL. Tests running in parallel
//! never share a database or a stream.
//!
//! For fault tests, [`Options::proxied`] puts a [`proxy::FaultProxy`] between the workers (and
//! the ingester, for Redis) and PostgreSQL, Redis or inference, so a test can cut and restore
//! one dependency for its own services only; [`Platform::abort_worker`] kills a worker without
//! a clean shutdown. [`processes`] runs the services, Redis and PostgreSQL as operating-system
//! processes instead, for tests that SIGKILL or restart them.

pub mod collector;
pub mod dockerfile;
pub mod feed;
pub mod manifests;
pub mod processes;
pub mod proxy;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Parser;
use pulse_proto::v1::ingest_service_client::IngestServiceClient;
use pulse_runtime::admin::Readiness;
use pulse_settings::ConnectionUrl;
pub use pulse_store::keys::Scope;
use pulse_testkit::{
    TestDatabase, default_model_bundle, ort_library, redis_url, unique_name, workspace_root,
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

pub use proxy::FaultProxy;

/// The folder of the workspace's built binaries (`target/debug` for `cargo test`): the test
/// executable's grandparent, `target/debug/deps/<test>`.
pub fn target_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(std::path::Path::parent)
        .map(std::path::Path::to_path_buf)
        .context("the test executable has no target folder")
}

/// A built binary of the workspace (`pulse-store`, ...), for tests that run the real
/// executables. `cargo test -p pulse-e2e` does not build other packages' binaries, so a binary
/// may be missing or older than its sources: both are errors, since a stale binary would test
/// code that no longer exists. Freshness comes from the dep-info file Cargo writes beside the
/// binary (`<name>.d`, every source file it was built from).
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = target_dir()?.join(name);
    let build = "build the workspace's binaries first (cargo build --workspace --bins)";
    anyhow::ensure!(path.is_file(), "{} is missing: {build}", path.display());
    let built = std::fs::metadata(&path)?.modified()?;
    if let Ok(dep_info) = std::fs::read_to_string(path.with_extension("d")) {
        let sources = dep_info.split_once(": ").map_or("", |(_, sources)| sources);
        // Paths are separated by spaces; a space inside a path is escaped as `\ `.
        let sources = sources.replace("\\ ", "\u{0}");
        for source in sources.split_whitespace() {
            let source = PathBuf::from(source.replace('\u{0}', " "));
            let changed = std::fs::metadata(&source).and_then(|m| m.modified());
            if changed.is_ok_and(|changed| changed > built) {
                anyhow::bail!(
                    "{} is older than {}: {build}",
                    path.display(),
                    source.display()
                );
            }
        }
    }
    Ok(path)
}

/// `host:port` of a `scheme://[user[:password]@]host[:port][/path][?query]` URL.
pub fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:{default_port}")
    }
}

/// `url` with its host and port replaced by `addr`.
pub fn with_address(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let user = authority
        .rsplit_once('@')
        .map_or(String::new(), |(user, _)| format!("{user}@"));
    format!("{scheme}://{user}{addr}{tail}")
}

/// A throw-away database of the test server with every migration applied: the services
/// expect the schema that `pulse-store migrate` makes.
pub async fn migrated_database(tag: &str) -> anyhow::Result<TestDatabase> {
    let database = TestDatabase::create(tag).await?;
    let pool = pulse_store::connect_pool(&database.url, 1)?;
    let mut client = pool.get().await?;
    pulse_store::migrate::run(&mut client).await?;
    Ok(database)
}

/// Which dependencies of the workers (and, for Redis, of the ingester) go through a
/// [`FaultProxy`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Proxied {
    pub postgres: bool,
    pub redis: bool,
    pub inference: bool,
}

/// What [`Platform::start`] may vary.
#[derive(Debug, Clone)]
pub struct Options {
    pub posts_per_minute: u32,
    pub batch_size: usize,
    pub workers: usize,
    pub proxied: Proxied,
    /// Adjusts each worker's configuration after the harness set it up.
    pub worker_config: fn(&mut pulse_worker::Config),
    /// Adjusts the ingester's configuration after the harness set it up.
    pub ingester_config: fn(&mut pulse_ingester::Config),
    /// Adjusts the inference service's configuration after the harness set it up.
    pub inference_config: fn(&mut pulse_inference::Config),
    /// Adjusts the analytics configuration after the harness set it up (alert rules, Redis).
    pub analytics_config: fn(&mut pulse_analytics::Config),
    /// Adjusts the gateway configuration after the harness set it up (rate limits, CORS).
    pub gateway_config: fn(&mut pulse_gateway::Config),
}

impl Default for Options {
    fn default() -> Self {
        Self {
            posts_per_minute: 0,
            batch_size: 10,
            workers: 1,
            proxied: Proxied::default(),
            worker_config: |_| {},
            ingester_config: |_| {},
            inference_config: |_| {},
            analytics_config: |_| {},
            gateway_config: |_| {},
        }
    }
}

/// The proxies in front of the dependencies, for the ones [`Options::proxied`] asked for.
#[derive(Debug, Default)]
pub struct Proxies {
    pub postgres: Option<FaultProxy>,
    pub redis: Option<FaultProxy>,
    pub inference: Option<FaultProxy>,
}

/// A running worker: its metrics, its readiness, and its task (to abort it).
pub struct WorkerHandle {
    pub name: String,
    pub registry: prometheus::Registry,
    pub readiness: Readiness,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    stop: watch::Sender<bool>,
}

/// The five services running in this process.
pub struct Platform {
    pub database: TestDatabase,
    pub stream_prefix: String,
    pub inference_addr: SocketAddr,
    pub analytics_addr: SocketAddr,
    pub ingester_addr: SocketAddr,
    pub gateway_addr: SocketAddr,
    /// An admin key of this platform's gateway (every scope); [`Platform::http`] sends it.
    pub api_key: String,
    pub proxies: Proxies,
    pub workers: Vec<WorkerHandle>,
    pub ingester_registry: prometheus::Registry,
    pub ingester_readiness: Readiness,
    ingester: Option<JoinHandle<anyhow::Result<()>>>,
    ingester_stop: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// Creates an API key with `scopes` in the database at `url`; returns the key.
pub async fn create_key(url: &str, name: &str, scopes: &[Scope]) -> anyhow::Result<String> {
    let pool = pulse_store::connect_pool(url, 1)?;
    let client = pool.get().await?;
    Ok(pulse_store::keys::create(&client, name, scopes, None)
        .await?
        .secret)
}

/// An HTTP client that sends `key` as `Authorization: Bearer` with every request.
pub fn authorized_client(key: &str) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse()?,
    );
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}

/// A WebSocket upgrade request for `url` that sends `key` as `Authorization: Bearer`.
pub fn ws_request(
    url: &str,
    key: &str,
) -> anyhow::Result<tokio_tungstenite::tungstenite::handshake::client::Request> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {key}").parse()?);
    Ok(request)
}

/// 127.0.0.1 on a port the OS picks, for endpoints a test does not call.
fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn loopback() -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

fn stopped(rx: &watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

impl Platform {
    pub async fn start(tag: &str, options: Options) -> anyhow::Result<Self> {
        pulse_testkit::logs();
        let database = migrated_database(tag).await?;
        let stream_prefix = unique_name(tag);
        let (stop, rx) = watch::channel(false);
        let mut tasks: Vec<JoinHandle<anyhow::Result<()>>> = Vec::new();

        let (listener, inference_addr) = loopback().await?;
        let mut inference = pulse_inference::Config::parse_from(["pulse-inference"]);
        inference.addr = inference_addr;
        inference.admin.addr = Some(loopback_any());
        inference.sentiment_model_dir = default_model_bundle();
        inference.emotion_model_dir = Some(default_model_bundle());
        inference.ort_library = ort_library();
        inference.intra_threads = 2;
        (options.inference_config)(&mut inference);
        let models = {
            let config = inference.clone();
            tokio::task::spawn_blocking(move || pulse_inference::server::load_models(&config))
                .await?
                .context("loading the default model bundle")?
        };
        let shutdown = stopped(&rx);
        tasks.push(tokio::spawn(async move {
            pulse_inference::serve(&inference, models, listener, shutdown).await
        }));

        let (listener, analytics_addr) = loopback().await?;
        let mut analytics = pulse_analytics::Config::parse_from(["pulse-analytics"]);
        analytics.addr = analytics_addr;
        analytics.admin.addr = Some(loopback_any());
        analytics.database.url = ConnectionUrl::new(database.url.clone());
        analytics.redis.url = ConnectionUrl::new(redis_url());
        analytics.redis.prefix.clone_from(&stream_prefix);
        // Tests compare totals with what they have just stored.
        analytics.list_total_ttl = Duration::ZERO;
        (options.analytics_config)(&mut analytics);
        let shutdown = stopped(&rx);
        tasks.push(tokio::spawn(async move {
            pulse_analytics::serve(&analytics, listener, shutdown).await
        }));

        let proxies = Proxies {
            postgres: match options.proxied.postgres {
                true => Some(FaultProxy::start(host_port(&database.url, 5432)).await?),
                false => None,
            },
            redis: match options.proxied.redis {
                true => Some(FaultProxy::start(host_port(&redis_url(), 6379)).await?),
                false => None,
            },
            inference: match options.proxied.inference {
                true => Some(FaultProxy::start(inference_addr.to_string()).await?),
                false => None,
            },
        };
        let worker_database_url = proxies.postgres.as_ref().map_or_else(
            || database.url.clone(),
            |p| with_address(&database.url, p.addr()),
        );
        let service_redis_url = proxies
            .redis
            .as_ref()
            .map_or_else(redis_url, |p| with_address(&redis_url(), p.addr()));
        let worker_inference_url = format!(
            "http://{}",
            proxies
                .inference
                .as_ref()
                .map_or(inference_addr, FaultProxy::addr)
        );

        let mut workers = Vec::new();
        for n in 0..options.workers {
            let mut worker = pulse_worker::Config::parse_from(["pulse-worker"]);
            worker.admin.addr = Some(loopback_any());
            worker.redis.url = ConnectionUrl::new(service_redis_url.clone());
            worker.database.url = ConnectionUrl::new(worker_database_url.clone());
            worker.database_pool_size = 2;
            worker.inference.url.clone_from(&worker_inference_url);
            worker.redis.prefix.clone_from(&stream_prefix);
            worker.consumer_name = Some(format!("test-worker-{n}"));
            worker.batch_size = options.batch_size;
            worker.block = Duration::from_millis(200);
            worker.shutdown_grace = Duration::from_secs(5);
            (options.worker_config)(&mut worker);
            let registry = prometheus::Registry::new();
            let readiness = Readiness::default();
            let (worker_stop, worker_rx) = watch::channel(false);
            let stop_all = stopped(&rx);
            let stop_one = stopped(&worker_rx);
            let shutdown = async move {
                tokio::select! {
                    () = stop_all => {},
                    () = stop_one => {},
                }
            };
            let task = {
                let registry = registry.clone();
                let readiness = readiness.clone();
                tokio::spawn(async move {
                    pulse_worker::serve_with(&worker, registry, readiness, shutdown).await
                })
            };
            workers.push(WorkerHandle {
                name: format!("test-worker-{n}"),
                registry,
                readiness,
                task: Some(task),
                stop: worker_stop,
            });
        }

        let (listener, ingester_addr) = loopback().await?;
        let mut ingester = pulse_ingester::Config::parse_from(["pulse-ingester"]);
        ingester.addr = ingester_addr;
        ingester.admin.addr = Some(loopback_any());
        ingester.redis.url = ConnectionUrl::new(service_redis_url.clone());
        ingester.redis.prefix.clone_from(&stream_prefix);
        ingester.posts_per_minute = options.posts_per_minute;
        (options.ingester_config)(&mut ingester);
        let ingester_registry = prometheus::Registry::new();
        let ingester_readiness = Readiness::default();
        let (ingester_stop, ingester_rx) = watch::channel(false);
        let ingester_task = {
            let registry = ingester_registry.clone();
            let readiness = ingester_readiness.clone();
            let stop_all = stopped(&rx);
            let stop_one = stopped(&ingester_rx);
            tokio::spawn(async move {
                let shutdown = async move {
                    tokio::select! {
                        () = stop_all => {},
                        () = stop_one => {},
                    }
                };
                pulse_ingester::server::serve_with(
                    &ingester, listener, registry, readiness, shutdown,
                )
                .await
            })
        };

        let (listener, gateway_addr) = loopback().await?;
        let mut gateway = pulse_gateway::Config::parse_from(["pulse-gateway"]);
        gateway.addr = gateway_addr;
        gateway.admin.addr = Some(loopback_any());
        gateway.analytics_url = format!("http://{analytics_addr}");
        gateway.inference.url = format!("http://{inference_addr}");
        gateway.ingester_url = format!("http://{ingester_addr}");
        gateway.dashboard_dir = workspace_root().join("dashboard/dist");
        gateway.redis.url = ConnectionUrl::new(redis_url());
        gateway.redis.prefix.clone_from(&stream_prefix);
        gateway.database.url = ConnectionUrl::new(database.url.clone());
        (options.gateway_config)(&mut gateway);
        let api_key = create_key(&database.url, "e2e admin", &[Scope::Admin]).await?;
        let shutdown = stopped(&rx);
        tasks.push(tokio::spawn(async move {
            pulse_gateway::serve(&gateway, listener, shutdown).await
        }));

        Ok(Self {
            database,
            stream_prefix,
            inference_addr,
            analytics_addr,
            ingester_addr,
            gateway_addr,
            api_key,
            proxies,
            workers,
            ingester_registry,
            ingester_readiness,
            ingester: Some(ingester_task),
            ingester_stop,
            stop,
            tasks,
        })
    }

    /// The proxy in front of `which` ("postgres", "redis", "inference"), or an error when the
    /// platform was started without it.
    pub fn proxy(&self, which: &str) -> anyhow::Result<&FaultProxy> {
        match which {
            "postgres" => self.proxies.postgres.as_ref(),
            "redis" => self.proxies.redis.as_ref(),
            "inference" => self.proxies.inference.as_ref(),
            _ => None,
        }
        .with_context(|| format!("no {which} proxy: set Options::proxied.{which}"))
    }

    /// Kills worker `n` the hard way: its task is aborted mid-flight, nothing is drained or
    /// acknowledged, and its entries stay in the pending list under its name.
    pub async fn abort_worker(&mut self, n: usize) -> anyhow::Result<()> {
        let worker = self.workers.get_mut(n).context("no such worker")?;
        let task = worker.task.take().context("worker already stopped")?;
        task.abort();
        match task.await {
            Err(e) if e.is_cancelled() => Ok(()),
            Err(e) => Err(e.into()),
            Ok(result) => result.context("the worker had ended before it was aborted"),
        }
    }

    /// Stops worker `n` as SIGTERM would; returns how long it took.
    pub async fn stop_worker(&mut self, n: usize) -> anyhow::Result<Duration> {
        let worker = self.workers.get_mut(n).context("no such worker")?;
        let task = worker.task.take().context("worker already stopped")?;
        let started = tokio::time::Instant::now();
        let _ = worker.stop.send(true);
        task.await??;
        Ok(started.elapsed())
    }

    /// Stops the ingester (its generator and IngestService) as SIGTERM would.
    pub async fn stop_ingester(&mut self) -> anyhow::Result<()> {
        let _ = self.ingester_stop.send(true);
        if let Some(task) = self.ingester.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .context("the ingester did not stop within 10 s")???;
        }
        Ok(())
    }

    /// An HTTP client that sends this platform's admin key with every request.
    pub fn http(&self) -> anyhow::Result<reqwest::Client> {
        authorized_client(&self.api_key)
    }

    /// `GET path` on the gateway with the admin key.
    pub async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        Ok(self.http()?.get(self.gateway_url(path)).send().await?)
    }

    /// The upgrade request of the live feed, with the admin key.
    pub fn ws_request(
        &self,
    ) -> anyhow::Result<tokio_tungstenite::tungstenite::handshake::client::Request> {
        ws_request(
            &format!("ws://{}/ws/sentiment", self.gateway_addr),
            &self.api_key,
        )
    }

    /// A new key of this platform with `scopes`.
    pub async fn create_key(&self, name: &str, scopes: &[Scope]) -> anyhow::Result<String> {
        create_key(&self.database.url, name, scopes).await
    }

    pub fn gateway_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway_addr)
    }

    pub async fn ingest_client(
        &self,
    ) -> anyhow::Result<IngestServiceClient<tonic::transport::Channel>> {
        Ok(IngestServiceClient::connect(format!("http://{}", self.ingester_addr)).await?)
    }

    pub fn stream_keys(&self) -> pulse_stream::RedisKeys {
        pulse_stream::RedisKeys::new(&self.stream_prefix)
    }

    /// Rows in `social_media_posts` and `sentiment_analysis`.
    pub async fn counts(&self) -> anyhow::Result<(u64, u64)> {
        let pool = pulse_store::connect_pool(&self.database.url, 1)?;
        let client = pool.get().await?;
        Ok(pulse_store::posts::counts(&client).await?)
    }

    /// Rows and distinct keys of both tables (direct connection, never through a proxy).
    pub async fn census(&self) -> anyhow::Result<pulse_store::posts::Census> {
        let pool = pulse_store::connect_pool(&self.database.url, 1)?;
        let client = pool.get().await?;
        Ok(pulse_store::posts::census(&client).await?)
    }

    /// Rollup keys whose counts differ from a recount of the stored posts (all zero when every
    /// post is counted once).
    pub async fn rollup_drift(&self) -> anyhow::Result<pulse_store::rollups::Drift> {
        let pool = pulse_store::connect_pool(&self.database.url, 1)?;
        let client = pool.get().await?;
        Ok(pulse_store::rollups::drift(&client).await?)
    }

    /// Every stored post id.
    pub async fn stored_ids(&self) -> anyhow::Result<std::collections::HashSet<String>> {
        let pool = pulse_store::connect_pool(&self.database.url, 1)?;
        let client = pool.get().await?;
        Ok(pulse_store::posts::all_ids(&client)
            .await?
            .into_iter()
            .collect())
    }

    /// A direct Redis connection (never through a proxy).
    pub async fn redis(&self) -> anyhow::Result<redis::aio::ConnectionManager> {
        Ok(pulse_stream::connect(&redis_url()).await?)
    }

    /// The workers group's backlog (pending, lag, length).
    pub async fn backlog(&self) -> anyhow::Result<pulse_stream::Backlog> {
        let producer = pulse_stream::Producer::new(self.redis().await?, &self.stream_keys(), 1);
        Ok(producer.backlog().await?)
    }

    /// The dead-letter stream.
    pub async fn dead_letters(&self) -> anyhow::Result<pulse_stream::DeadLetters> {
        Ok(pulse_stream::DeadLetters::new(
            self.redis().await?,
            self.stream_keys(),
        ))
    }

    /// The sum of metric `name` over the series whose labels include `labels`.
    pub fn metric(registry: &prometheus::Registry, name: &str, labels: &[(&str, &str)]) -> f64 {
        registry
            .gather()
            .iter()
            .filter(|family| family.name() == name)
            .flat_map(|family| family.get_metric())
            .filter(|metric| {
                labels.iter().all(|(k, v)| {
                    metric
                        .get_label()
                        .iter()
                        .any(|l| l.name() == *k && l.value() == *v)
                })
            })
            // A series is a counter or a gauge; the other part reads as 0.
            .map(|metric| metric.get_counter().get_value() + metric.get_gauge().get_value())
            .sum()
    }

    /// [`Platform::metric`] summed over every worker.
    pub fn workers_metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.workers
            .iter()
            .map(|w| Self::metric(&w.registry, name, labels))
            .sum()
    }

    /// Polls `condition` every 100 ms until it holds or `timeout` passes.
    pub async fn wait_until<F, Fut>(timeout: Duration, mut condition: F) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<bool>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if condition().await? {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "condition not met within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops every service, drops the database and deletes the stream keys.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let mut tasks = std::mem::take(&mut self.tasks);
        tasks.extend(self.workers.iter_mut().filter_map(|w| w.task.take()));
        tasks.extend(self.ingester.take());
        for task in tasks {
            match tokio::time::timeout(Duration::from_secs(10), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => return Err(e.context("a service failed")),
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => anyhow::bail!("a service did not stop within 10 s"),
            }
        }
        pulse_testkit::delete_redis_keys(&self.stream_prefix).await?;
        self.database.drop_now().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_pointed_at_a_proxy() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 4242));
        assert_eq!(
            host_port("postgres://postgres@127.0.0.1:5432/pulse_test_x", 5432),
            "127.0.0.1:5432"
        );
        assert_eq!(host_port("redis://localhost", 6379), "localhost:6379");
        assert_eq!(
            with_address("postgres://u:p@db:5432/name?sslmode=disable", addr),
            "postgres://u:p@127.0.0.1:4242/name?sslmode=disable"
        );
        assert_eq!(
            with_address("redis://127.0.0.1:6379", addr),
            "redis://127.0.0.1:4242"
        );
    }
}
