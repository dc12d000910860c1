//! A test harness that runs the whole mesh in one process.
//!
//! [`Platform::start`] creates a throw-away database (migrated) and a unique Redis key prefix,
//! then starts inference, analytics, worker, ingester and gateway on free loopback ports, each
//! through the same `serve` function its binary uses, talking real gRPC, HTTP, Redis and
//! PostgreSQL. Tests running in parallel never share a database or a stream.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Parser;
use pulse_proto::v1::ingest_service_client::IngestServiceClient;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

/// PostgreSQL server the tests use (a database is created per test on it).
pub fn database_server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The repository root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The ONNX Runtime library: `ORT_DYLIB_PATH`, or where set-up puts it.
pub fn ort_library() -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".deps/onnxruntime/libonnxruntime.so.1.31.1"))
}

/// A migrated database that is dropped by [`TestDatabase::drop_now`].
pub struct TestDatabase {
    pub url: String,
}

impl TestDatabase {
    pub async fn create(tag: &str) -> anyhow::Result<Self> {
        let name = format!("pulse_test_{tag}_{}", uuid::Uuid::new_v4().simple());
        let url = pulse_store::provision::with_database(&database_server_url(), &name)?;
        pulse_store::provision::ensure_database(&url).await?;
        let pool = pulse_store::connect_pool(&url, 1)?;
        let mut client = pool.get().await?;
        pulse_store::migrate::run(&mut client).await?;
        Ok(Self { url })
    }

    pub async fn drop_now(&self) -> anyhow::Result<()> {
        Ok(pulse_store::provision::drop_database(&self.url).await?)
    }
}

/// What [`Platform::start`] may vary.
#[derive(Debug, Clone)]
pub struct Options {
    pub posts_per_minute: u32,
    pub batch_size: usize,
    pub workers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            posts_per_minute: 0,
            batch_size: 10,
            workers: 1,
        }
    }
}

/// The five services running in this process.
pub struct Platform {
    pub database: TestDatabase,
    pub stream_prefix: String,
    pub inference_addr: SocketAddr,
    pub analytics_addr: SocketAddr,
    pub ingester_addr: SocketAddr,
    pub gateway_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
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
        let database = TestDatabase::create(tag).await?;
        let stream_prefix = format!("pulse-test-{tag}-{}", uuid::Uuid::new_v4().simple());
        let (stop, rx) = watch::channel(false);
        let mut tasks: Vec<JoinHandle<anyhow::Result<()>>> = Vec::new();

        let (listener, inference_addr) = loopback().await?;
        let mut inference = pulse_inference::Config::parse_from(["pulse-inference"]);
        inference.addr = inference_addr;
        inference.admin_addr = loopback_any();
        inference.sentiment_model_dir = workspace_root().join("models/sentiment");
        inference.emotion_model_dir = None;
        inference.ort_library = ort_library();
        inference.intra_threads = 2;
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
        analytics.admin_addr = loopback_any();
        analytics.database_url.clone_from(&database.url);
        analytics.redis_url = redis_url();
        analytics.stream_prefix.clone_from(&stream_prefix);
        let shutdown = stopped(&rx);
        tasks.push(tokio::spawn(async move {
            pulse_analytics::serve(&analytics, listener, shutdown).await
        }));

        for n in 0..options.workers {
            let mut worker = pulse_worker::Config::parse_from(["pulse-worker"]);
            worker.admin_addr = loopback_any();
            worker.redis_url = redis_url();
            worker.database_url.clone_from(&database.url);
            worker.database_pool_size = 2;
            worker.inference_url = format!("http://{inference_addr}");
            worker.stream_prefix.clone_from(&stream_prefix);
            worker.consumer_name = Some(format!("test-worker-{n}"));
            worker.batch_size = options.batch_size;
            worker.block_ms = 200;
            let shutdown = stopped(&rx);
            tasks.push(tokio::spawn(async move {
                pulse_worker::serve(&worker, shutdown).await
            }));
        }

        let (listener, ingester_addr) = loopback().await?;
        let mut ingester = pulse_ingester::Config::parse_from(["pulse-ingester"]);
        ingester.addr = ingester_addr;
        ingester.admin_addr = loopback_any();
        ingester.redis_url = redis_url();
        ingester.stream_prefix.clone_from(&stream_prefix);
        ingester.posts_per_minute = options.posts_per_minute;
        let shutdown = stopped(&rx);
        tasks.push(tokio::spawn(async move {
            pulse_ingester::server::serve(&ingester, listener, shutdown).await
        }));

        let (listener, gateway_addr) = loopback().await?;
        let mut gateway = pulse_gateway::Config::parse_from(["pulse-gateway"]);
        gateway.addr = gateway_addr;
        gateway.admin_addr = loopback_any();
        gateway.analytics_url = format!("http://{analytics_addr}");
        gateway.inference_url = format!("http://{inference_addr}");
        gateway.ingester_url = format!("http://{ingester_addr}");
        gateway.dashboard_dir = workspace_root().join("dashboard/dist");
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
            stop,
            tasks,
        })
    }

    pub fn gateway_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway_addr)
    }

    pub async fn ingest_client(
        &self,
    ) -> anyhow::Result<IngestServiceClient<tonic::transport::Channel>> {
        Ok(IngestServiceClient::connect(format!("http://{}", self.ingester_addr)).await?)
    }

    pub fn stream_keys(&self) -> pulse_stream::StreamKeys {
        pulse_stream::StreamKeys::new(&self.stream_prefix)
    }

    /// Rows in `social_media_posts` and `sentiment_analysis`.
    pub async fn counts(&self) -> anyhow::Result<(u64, u64)> {
        let pool = pulse_store::connect_pool(&self.database.url, 1)?;
        let client = pool.get().await?;
        Ok(pulse_store::posts::counts(&client).await?)
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
        for task in std::mem::take(&mut self.tasks) {
            match tokio::time::timeout(Duration::from_secs(10), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => return Err(e.context("a service failed")),
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => anyhow::bail!("a service did not stop within 10 s"),
            }
        }
        let keys = self.stream_keys();
        let client = redis::Client::open(redis_url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let _: () = redis::cmd("DEL")
            .arg(keys.posts())
            .arg(keys.dead_letters())
            .arg(keys.events())
            .query_async(&mut conn)
            .await?;
        self.database.drop_now().await
    }
}
