//! The services, Redis and PostgreSQL as operating-system processes, for fault tests that do to
//! them what production does: SIGKILL a worker mid-batch, kill and restart Redis on its AOF,
//! stop and start PostgreSQL.
//!
//! In-process services ([`crate::Platform`]) die politely: an aborted task still runs its
//! destructors, and a shared tokio runtime keeps sockets tidy. A killed process leaves exactly
//! what the kernel leaves, which is what the delivery guarantees must survive.
//!
//! Every process here is owned by a guard that kills it when dropped, so a failing test leaves
//! nothing running; its output goes to a log file in the test's [`Scratch`] folder, which is
//! kept (and named on stderr) when the test panics.

use std::{
    fs::File,
    net::SocketAddr,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use pulse_testkit::{default_model_bundle, free_address, ort_library, unique_name};

use crate::binary;

/// How long a service may take to become ready (inference loads its models first).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A folder of one test's own (logs, data directories), removed when dropped unless the test
/// is panicking: then it is kept for the post-mortem and its path printed.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(unique_name(tag));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("logs and data kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A child process that is killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl ChildProcess {
    /// Starts `command` with stdout and stderr appended to `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> anyhow::Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::options().create(true).append(true).open(&log)?;
        command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, then waits for the process to be gone.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            // An error here means it had already exited; reaping it is all that is left.
            let _ = child.kill();
            child
                .wait()
                .with_context(|| format!("reaping {}", self.name))?;
        }
        Ok(())
    }

    /// The exit status when the process has ended by itself.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits up to `timeout` for the process to end by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                self.child = None;
                return Ok(status);
            }
            ensure!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// One series of a scrape: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// One scrape of a Prometheus text exposition.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: Vec<Sample>,
}

impl Scrape {
    /// Parses `name{label="value",...} value` lines; comments and malformed lines are skipped.
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let value: f64 = value.parse().ok()?;
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)),
                    None => (series, Vec::new()),
                };
                Some((name.to_owned(), labels, value))
            })
            .collect();
        Self { samples }
    }

    /// The sum of `name` over the series whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, series_labels, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| series_labels.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .map(|(_, _, value)| value)
            .sum()
    }
}

/// `a="x",b="y"` (values without escaped quotes, which Pulse's labels never have).
fn parse_labels(text: &str) -> Vec<(String, String)> {
    text.split("\",")
        .filter_map(|pair| {
            let (key, value) = pair.split_once("=\"")?;
            Some((
                key.trim_matches(',').to_owned(),
                value.trim_end_matches('"').to_owned(),
            ))
        })
        .collect()
}

fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()?)
}

/// A Pulse service running as its built binary, with its admin endpoint.
#[derive(Debug)]
pub struct Service {
    pub process: ChildProcess,
    /// Where it serves (gRPC or HTTP); `None` for the worker.
    pub addr: Option<SocketAddr>,
    pub admin: SocketAddr,
}

impl Service {
    /// Scrapes `/metrics`.
    pub async fn metrics(&self) -> anyhow::Result<Scrape> {
        let text = http()?
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .with_context(|| format!("scraping {}", self.process.name()))?
            .error_for_status()?
            .text()
            .await?;
        Ok(Scrape::parse(&text))
    }

    /// Whether `/readyz` answers 200 (an unanswered or failed request counts as not ready).
    pub async fn is_ready(&self) -> bool {
        let Ok(client) = http() else { return false };
        client
            .get(format!("http://{}/readyz", self.admin))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// Whether the admin endpoint answers at all (the process is not hung).
    pub async fn is_alive(&self) -> bool {
        let Ok(client) = http() else { return false };
        client
            .get(format!("http://{}/healthz", self.admin))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// `http://<addr>`, for gRPC clients and the other services.
    pub fn url(&self) -> anyhow::Result<String> {
        let addr = self.addr.context("this service serves nothing")?;
        Ok(format!("http://{addr}"))
    }

    /// Waits until `/readyz` answers 200; fails early, with the log, when the process exits.
    async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_ready().await {
                return Ok(());
            }
            if let Some(status) = self.process.exited() {
                bail!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.process.name(),
                    self.process.log_tail(30)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} not ready within {timeout:?}:\n{}",
                    self.process.name(),
                    self.process.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The worker's timeouts for fault tests: reclaim and recovery within seconds, with
/// `CLAIM_IDLE` > `BATCH_TIMEOUT` > `INFERENCE_TIMEOUT` as production requires, and wide margins
/// over the ~10-100 ms a batch takes, since the tests share two cores.
pub const WORKER_FAULT_TUNING: [(&str, &str); 8] = [
    ("BLOCK_MS", "200"),
    ("INFERENCE_TIMEOUT_MS", "8000"),
    ("BATCH_TIMEOUT_MS", "10000"),
    ("CLAIM_IDLE_SECS", "12"),
    ("CLAIM_INTERVAL_MS", "1000"),
    ("RETRY_MAX_MS", "2000"),
    ("SHUTDOWN_GRACE_SECS", "5"),
    ("DATABASE_POOL_SIZE", "2"),
];

/// Where one test's services find PostgreSQL and Redis, and the logs of all its processes.
#[derive(Debug)]
pub struct Deployment {
    pub scratch: Scratch,
    pub database_url: String,
    pub redis_url: String,
    pub prefix: String,
}

impl Deployment {
    pub fn new(
        scratch: Scratch,
        database_url: impl Into<String>,
        redis_url: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Self {
        Self {
            scratch,
            database_url: database_url.into(),
            redis_url: redis_url.into(),
            prefix: prefix.into(),
        }
    }

    /// `binary` with the deployment's Redis, database and prefix, its own admin port, and
    /// nothing from this process's environment that would send it elsewhere.
    fn command(&self, binary_name: &str) -> anyhow::Result<(Command, SocketAddr)> {
        let admin = free_address()?;
        let mut command = Command::new(binary(binary_name)?);
        command
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("DATABASE_READ_URL")
            .env("RUST_LOG", "info")
            .env("ADMIN_ADDR", admin.to_string())
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", &self.redis_url)
            .env("STREAM_PREFIX", &self.prefix);
        Ok((command, admin))
    }

    async fn start(
        &self,
        name: &str,
        command: Command,
        addr: Option<SocketAddr>,
        admin: SocketAddr,
    ) -> anyhow::Result<Service> {
        let process = ChildProcess::spawn(name, command, self.scratch.path())?;
        let mut service = Service {
            process,
            addr,
            admin,
        };
        service.wait_ready(START_TIMEOUT).await?;
        Ok(service)
    }

    /// `pulse-inference` with the default model bundle.
    pub async fn inference(&self) -> anyhow::Result<Service> {
        let (mut command, admin) = self.command("pulse-inference")?;
        let addr = free_address()?;
        let bundle = default_model_bundle();
        command
            .env("INFERENCE_ADDR", addr.to_string())
            .env("SENTIMENT_MODEL_DIR", &bundle)
            .env("EMOTION_MODEL_DIR", &bundle)
            .env("ORT_DYLIB_PATH", ort_library())
            .env("ORT_INTRA_THREADS", "2");
        self.start("inference", command, Some(addr), admin).await
    }

    /// `pulse-worker` named `consumer`, analysing through `inference_url`, with the fault
    /// tuning, then `env` (which may override it, or point `DATABASE_URL` at a proxy).
    pub async fn worker(
        &self,
        consumer: &str,
        inference_url: &str,
        env: &[(&str, String)],
    ) -> anyhow::Result<Service> {
        let (mut command, admin) = self.command("pulse-worker")?;
        command
            .env("CONSUMER_NAME", consumer)
            .env("INFERENCE_URL", inference_url)
            .envs(WORKER_FAULT_TUNING)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        self.start(consumer, command, None, admin).await
    }

    /// `pulse-ingester` with its generator off (posts come through `Publish`).
    pub async fn ingester(&self) -> anyhow::Result<Service> {
        let (mut command, admin) = self.command("pulse-ingester")?;
        let addr = free_address()?;
        command
            .env("INGESTER_ADDR", addr.to_string())
            .env("POSTS_PER_MINUTE", "0");
        self.start("ingester", command, Some(addr), admin).await
    }

    pub async fn analytics(&self) -> anyhow::Result<Service> {
        let (mut command, admin) = self.command("pulse-analytics")?;
        let addr = free_address()?;
        command.env("ANALYTICS_ADDR", addr.to_string());
        self.start("analytics", command, Some(addr), admin).await
    }

    pub async fn gateway(
        &self,
        analytics: &Service,
        inference: &Service,
        ingester: &Service,
    ) -> anyhow::Result<Service> {
        let (mut command, admin) = self.command("pulse-gateway")?;
        let addr = free_address()?;
        command
            .env("GATEWAY_ADDR", addr.to_string())
            // The tests read the live feed without a key, as a wall dashboard does.
            .env("PUBLIC_READS", "true")
            .env("ANALYTICS_URL", analytics.url()?)
            .env("INFERENCE_URL", inference.url()?)
            .env("INGESTER_URL", ingester.url()?)
            .env(
                "DASHBOARD_DIR",
                pulse_testkit::workspace_root().join("dashboard/dist"),
            );
        self.start("gateway", command, Some(addr), admin).await
    }
}

/// `redis-server`'s durability arguments in the dev overlay (`--appendonly yes --appendfsync
/// everysec`), so the restart test runs Redis the way the manifests do.
pub fn overlay_redis_durability() -> anyhow::Result<Vec<String>> {
    let path = pulse_testkit::workspace_root().join("deploy/k8s/overlays/dev/redis.yaml");
    let text = std::fs::read_to_string(&path)?;
    let args_line = text
        .lines()
        .map(str::trim)
        .find_map(|line| {
            line.strip_prefix("args:")
                .filter(|a| a.contains("redis-server"))
        })
        .with_context(|| format!("no redis-server args in {}", path.display()))?;
    let args: Vec<String> = serde_json::from_str(args_line.trim())
        .with_context(|| format!("the args line of {}", path.display()))?;
    let mut durability = Vec::new();
    for flag in ["--appendonly", "--appendfsync"] {
        let at = args
            .iter()
            .position(|a| a == flag)
            .with_context(|| format!("{} does not set {flag}", path.display()))?;
        durability.push(flag.to_owned());
        durability.push(
            args.get(at + 1)
                .with_context(|| format!("{flag} has no value"))?
                .clone(),
        );
    }
    Ok(durability)
}

/// A `redis-server` of one test's own, on a loopback port, with its AOF in the test's scratch
/// folder: it can be killed and started again on the same port and data.
#[derive(Debug)]
pub struct RedisServer {
    dir: PathBuf,
    port: u16,
    durability: Vec<String>,
    process: Option<ChildProcess>,
    starts: u32,
}

impl RedisServer {
    pub async fn start(scratch: &Scratch) -> anyhow::Result<Self> {
        let dir = scratch.path().join("redis");
        std::fs::create_dir_all(&dir)?;
        let mut server = Self {
            dir,
            port: free_address()?.port(),
            durability: overlay_redis_durability()?,
            process: None,
            starts: 0,
        };
        server.run().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn durability(&self) -> &[String] {
        &self.durability
    }

    async fn run(&mut self) -> anyhow::Result<()> {
        self.starts += 1;
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args([
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "no",
                "--save",
                "",
            ])
            .args(&self.durability)
            .arg("--dir")
            .arg(&self.dir);
        let process = ChildProcess::spawn(
            &format!("redis-{}", self.starts),
            command,
            self.dir.parent().unwrap_or(&self.dir),
        )?;
        self.process = Some(process);
        self.wait_answering(Duration::from_secs(30)).await
    }

    /// Waits until PING answers PONG (not LOADING), or the process exits.
    async fn wait_answering(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let answer = async {
                let client = redis::Client::open(self.url())?;
                let mut conn = client.get_multiplexed_async_connection().await?;
                let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
                anyhow::Ok(pong)
            };
            if let Ok(Ok(pong)) = tokio::time::timeout(Duration::from_secs(2), answer).await
                && pong == "PONG"
            {
                return Ok(());
            }
            if let Some(process) = self.process.as_mut()
                && let Some(status) = process.exited()
            {
                bail!("redis-server exited ({status}):\n{}", process.log_tail(20));
            }
            ensure!(
                Instant::now() < deadline,
                "redis-server not answering within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no save, no goodbye; what survives is what the AOF already had.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut process) = self.process.take() {
            process.kill()?;
        }
        Ok(())
    }

    /// Starts it again on the same port and data directory; returns once it answers (its AOF
    /// loaded).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        ensure!(self.process.is_none(), "redis-server is still running");
        self.run().await
    }

    /// Its log so far, every start.
    pub fn log(&self) -> String {
        let mut log = String::new();
        for n in 1..=self.starts {
            let path = self
                .dir
                .parent()
                .unwrap_or(&self.dir)
                .join(format!("redis-{n}.log"));
            log.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
        log
    }
}

/// A PostgreSQL cluster of one test's own (`initdb` in the scratch folder, trust
/// authentication, a loopback port), which can be stopped and started under the services.
///
/// PostgreSQL refuses to run as root, and CI runs the tests as root: then every PostgreSQL
/// command runs as the `postgres` user (`runuser`), which owns the cluster's folder.
#[derive(Debug)]
pub struct PostgresServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    running: bool,
}

impl PostgresServer {
    pub async fn start(scratch: &Scratch) -> anyhow::Result<Self> {
        let bin = postgres_bin()?;
        let dir = scratch.path().join("postgres");
        std::fs::create_dir_all(&dir)?;
        let as_postgres = std::fs::metadata("/proc/self")?.uid() == 0;
        if as_postgres {
            let (uid, gid) = (id("-u")?, id("-g")?);
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .with_context(|| format!("giving {} to postgres", dir.display()))?;
        }
        let mut server = Self {
            dir,
            bin,
            port: free_address()?.port(),
            as_postgres,
            running: false,
        };
        let data = server.data();
        server
            .run(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
            )
            .await?;
        server.start_again().await?;
        Ok(server)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// The URL of `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs a PostgreSQL program (as `postgres` when this process is root) to its end.
    async fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&path);
            command
        } else {
            Command::new(&path)
        };
        command.args(args).current_dir(&self.dir);
        let what = format!("{program} {}", args.join(" "));
        let output = tokio::task::spawn_blocking(move || command.output())
            .await?
            .with_context(|| format!("running {what}"))?;
        ensure!(
            output.status.success(),
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// `pg_ctl start`, waiting until it accepts connections.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        let data = self.data();
        let log = self.dir.join("postgres.log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=50",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start",
            ],
        )
        .await?;
        self.running = true;
        Ok(())
    }

    /// `pg_ctl stop -m fast`: sessions are ended, open transactions rolled back, and the
    /// cluster checkpoints and exits.
    pub async fn stop_fast(&mut self) -> anyhow::Result<()> {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "-t", "60", "stop"],
        )
        .await?;
        self.running = false;
        Ok(())
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let data = self.data();
        let pg_ctl = self.bin.join("pg_ctl");
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(pg_ctl);
            command
        } else {
            Command::new(pg_ctl)
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb` and `pg_ctl`.
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL's programs are not in /usr/lib/postgresql")?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no /usr/lib/postgresql/<version>/bin with initdb and pg_ctl")
}

/// `id <flag> postgres`: the postgres user's uid or gid.
fn id(flag: &str) -> anyhow::Result<u32> {
    let output = Command::new("id").args([flag, "postgres"]).output()?;
    ensure!(output.status.success(), "there is no postgres user");
    Ok(String::from_utf8(output.stdout)?.trim().parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrapes_are_summed_by_label() {
        let scrape = Scrape::parse(
            "# HELP x y\n\
             pulse_inference_texts_total{backend=\"local\",task=\"sentiment\"} 12\n\
             pulse_inference_texts_total{backend=\"local\",task=\"emotion\"} 10\n\
             pulse_worker_posts_processed_total 7\n",
        );
        assert_eq!(scrape.sum("pulse_inference_texts_total", &[]), 22.0);
        assert_eq!(
            scrape.sum("pulse_inference_texts_total", &[("task", "sentiment")]),
            12.0
        );
        assert_eq!(scrape.sum("pulse_worker_posts_processed_total", &[]), 7.0);
        assert_eq!(scrape.sum("missing", &[]), 0.0);
    }

    #[test]
    fn the_dev_overlay_runs_redis_with_an_append_only_file() -> anyhow::Result<()> {
        let durability = overlay_redis_durability()?;
        assert_eq!(durability[..2], ["--appendonly", "yes"]);
        assert_eq!(durability[2], "--appendfsync");
        Ok(())
    }
}
