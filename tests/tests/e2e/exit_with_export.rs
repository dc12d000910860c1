//! Short-lived commands exit promptly with trace export on.
//!
//! Each command runs as its real binary with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the way the
//! Kubernetes Job and an operator's shell run it, against three collectors: one that answers
//! (an in-process OTLP receiver), a closed port (connection refused) and a black hole (accepts
//! the connection, never answers). Each run must exit with its usual status well within
//! `DEADLINE`, and with a working collector its spans must have arrived. `pulse-store` runs on
//! a current-thread runtime, the others on the multi-threaded one, so both flavours are covered.

use std::{
    net::{SocketAddr, TcpListener},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use pulse_e2e::{binary, collector::Collector};
use pulse_testkit::{
    TestDatabase, default_model_bundle, delete_redis_keys, free_address, ort_library, redis_url,
    temp_path, unique_name,
};

/// `pulse_runtime::telemetry::SHUTDOWN_DEADLINE` plus start-up and slack on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(12);

/// Where the commands send their traces.
enum Endpoint {
    Collector(SocketAddr),
    Refused(SocketAddr),
    BlackHole(SocketAddr),
}

impl Endpoint {
    fn url(&self) -> String {
        let (Self::Collector(a) | Self::Refused(a) | Self::BlackHole(a)) = self;
        format!("http://{a}")
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Collector(_) => "a working collector",
            Self::Refused(_) => "a closed port",
            Self::BlackHole(_) => "a collector that never answers",
        }
    }
}

fn refused() -> anyhow::Result<Endpoint> {
    Ok(Endpoint::Refused(free_address()?))
}

/// Accepts connections and keeps them open without a byte in reply, until the test ends.
fn black_hole() -> anyhow::Result<Endpoint> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    Ok(Endpoint::BlackHole(addr))
}

/// Runs a binary with export on; returns its exit status and how long it took.
async fn run(
    name: &str,
    args: &[&str],
    env: &[(&str, String)],
    endpoint: &Endpoint,
) -> anyhow::Result<(i32, Duration)> {
    let mut command = Command::new(binary(name)?);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.url())
        .env("OTEL_SERVICE_NAME", name)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let what = format!("{name} {} with {}", args.join(" "), endpoint.name());
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        loop {
            if let Some(status) = child.try_wait()? {
                let code = status.code().unwrap_or(-1);
                return Ok((code, started.elapsed()));
            }
            if started.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{what} did not exit within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await?
}

async fn endpoints() -> anyhow::Result<(Collector, Vec<Endpoint>)> {
    let (collector, addr) = Collector::start().await?;
    Ok((
        collector,
        vec![Endpoint::Collector(addr), refused()?, black_hole()?],
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_commands_exit_promptly_with_export_on() -> anyhow::Result<()> {
    let (collector, endpoints) = endpoints().await?;
    for (i, endpoint) in endpoints.iter().enumerate() {
        // Named only: the migration creates it.
        let database = TestDatabase::unique(&format!("exit_{i}"));
        let env = [("DATABASE_URL", database.url.clone())];
        let result = async {
            // Twice: the second run of the migration Job finds the schema current.
            for _ in 0..2 {
                let (code, took) = run("pulse-store", &["migrate"], &env, endpoint).await?;
                ensure!(code == 0, "migrate exited {code} with {}", endpoint.name());
                println!("pulse-store migrate, {}: {took:?}", endpoint.name());
            }
            let (code, _) = run("pulse-store", &["status"], &env, endpoint).await?;
            ensure!(code == 0, "status exited {code} with {}", endpoint.name());
            let (code, _) = run("pulse-store", &["maintain"], &env, endpoint).await?;
            ensure!(code == 0, "maintain exited {code} with {}", endpoint.name());
            Ok(())
        }
        .await;
        database.drop_now().await?;
        result?;
    }
    // The migration's span left the current-thread runtime before the process exited.
    ensure!(
        collector
            .all()
            .iter()
            .any(|r| r.service == "pulse-store" && r.span.name == "migrate"),
        "pulse-store migrate's span never reached the collector"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_commands_exit_promptly_and_their_spans_arrive() -> anyhow::Result<()> {
    let (collector, endpoints) = endpoints().await?;
    let prefix = unique_name("exit");
    let file = temp_path("exit", "jsonl");
    let lines: Vec<String> = (0..3)
        .map(|i| {
            serde_json::json!({
                "post_id": format!("{prefix}-{i}"),
                "source": "twitter",
                "author": "exit-test",
                "content": "the battery lasts all day",
                "created_at": "2026-11-29T12:00:00Z",
            })
            .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n"))?;
    let path = file.to_string_lossy().into_owned();
    let env = [
        ("REDIS_URL", redis_url()),
        ("STREAM_PREFIX", prefix.clone()),
    ];

    let result = async {
        for endpoint in &endpoints {
            let (code, took) = run("pulse-ingester", &["replay", &path], &env, endpoint).await?;
            ensure!(code == 0, "replay exited {code} with {}", endpoint.name());
            println!("pulse-ingester replay, {}: {took:?}", endpoint.name());
            for dlq in [&["dlq", "list"][..], &["dlq", "replay", "--all"]] {
                let (code, _) = run("pulse-worker", dlq, &env, endpoint).await?;
                ensure!(code == 0, "{dlq:?} exited {code} with {}", endpoint.name());
            }
        }
        let from_replay = collector
            .all()
            .iter()
            .filter(|r| r.service == "pulse-ingester")
            .count();
        ensure!(
            from_replay > 0,
            "the replay's spans never reached the collector before the process exited"
        );
        Ok(())
    }
    .await;
    std::fs::remove_file(&file)?;
    delete_redis_keys(&prefix).await?;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_eval_exits_promptly_with_export_on() -> anyhow::Result<()> {
    let (_collector, endpoints) = endpoints().await?;
    let file = temp_path("eval", "jsonl");
    std::fs::write(
        &file,
        "{\"text\": \"I love it\", \"label\": \"positive\"}\n\
         {\"text\": \"this is awful\", \"label\": \"negative\"}\n",
    )?;
    let model = default_model_bundle();
    let env = [
        ("ORT_DYLIB_PATH", ort_library().display().to_string()),
        ("SENTIMENT_MODEL_DIR", model.display().to_string()),
        ("EMOTION_MODEL_DIR", model.display().to_string()),
    ];
    let path = file.to_string_lossy().into_owned();
    let result = async {
        for endpoint in &endpoints {
            let (code, took) = run("pulse-inference", &["eval", &path], &env, endpoint).await?;
            ensure!(code == 0, "eval exited {code} with {}", endpoint.name());
            println!("pulse-inference eval, {}: {took:?}", endpoint.name());
        }
        Ok(())
    }
    .await;
    std::fs::remove_file(&file)?;
    result
}
