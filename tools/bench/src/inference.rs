//! The inference benchmark.
//!
//! 1. Raw ceiling: the loaded model sessions in a tight loop (tokenize + run), per batch size,
//!    with the thread count the service uses.
//! 2. Service: the same sessions behind the real gRPC server (batcher included), loaded by
//!    `c` concurrent clients, each sending one text per `Analyze` call in a closed loop.
//!
//! Both run in one process, one after the other, so they share the machine's state.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Parser as _;
use pulse_inference::{Models, model::Encoding};
use pulse_proto::v1::{AnalyzeRequest, inference_service_client::InferenceServiceClient};

use crate::{stats::quantile, texts};

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Sentiment model directory.
    #[arg(long, default_value = "models/pulse-minilm")]
    pub sentiment_model_dir: PathBuf,
    /// Emotion model directory (the same as the sentiment one for a two-head bundle).
    #[arg(long, default_value = "models/pulse-minilm")]
    pub emotion_model_dir: Option<PathBuf>,
    /// ONNX Runtime library.
    #[arg(long, env = "ORT_DYLIB_PATH", default_value_os_t = crate::default_ort_library())]
    pub ort_library: PathBuf,
    /// ONNX Runtime intra-op threads, for both measurements.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Batch sizes of the raw loop.
    #[arg(long, value_delimiter = ',', default_value = "1,8,16,32,64,128")]
    pub batch_sizes: Vec<usize>,
    /// Concurrent gRPC clients.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub clients: Vec<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// JSONL file whose `text` fields are the workload (default: generated posts).
    #[arg(long)]
    pub texts: Option<PathBuf>,
    /// Batcher: most texts per batch.
    #[arg(long, default_value_t = 64)]
    pub batch_max_texts: usize,
    /// Batcher: microseconds to wait for more requests.
    #[arg(long, default_value_t = 1_000)]
    pub batch_max_wait_us: u64,
}

impl Options {
    fn service_config(&self) -> anyhow::Result<pulse_inference::Config> {
        let threads = self.threads.to_string();
        let max_texts = self.batch_max_texts.to_string();
        let max_wait = self.batch_max_wait_us.to_string();
        let mut args: Vec<std::ffi::OsString> = vec![
            "pulse-inference".into(),
            "--addr".into(),
            "127.0.0.1:0".into(),
            "--admin-addr".into(),
            "127.0.0.1:0".into(),
            "--sentiment-model-dir".into(),
            self.sentiment_model_dir.clone().into(),
            "--ort-library".into(),
            self.ort_library.clone().into(),
            "--intra-threads".into(),
            threads.into(),
            "--batch-max-texts".into(),
            max_texts.into(),
            "--batch-max-wait-us".into(),
            max_wait.into(),
        ];
        if let Some(dir) = &self.emotion_model_dir {
            args.push("--emotion-model-dir".into());
            args.push(dir.clone().into());
        }
        Ok(pulse_inference::Config::try_parse_from(args)?)
    }
}

/// The distinct models one text runs through.
fn distinct_models(models: &Models) -> Vec<Arc<pulse_inference::model::Classifier>> {
    let mut out = vec![Arc::clone(&models.sentiment.model)];
    if let Some(emotion) = &models.emotion
        && !Arc::ptr_eq(&emotion.model, &models.sentiment.model)
    {
        out.push(Arc::clone(&emotion.model));
    }
    out
}

/// Texts per second of the tight loop at `batch`.
fn raw_throughput(
    models: &Models,
    texts: &[String],
    batch: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    let sessions = distinct_models(models);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut done = 0usize;
    let mut offset = 0usize;
    while Instant::now() < deadline {
        let chunk: Vec<&str> = (0..batch)
            .map(|i| texts[(offset + i) % texts.len()].as_str())
            .collect();
        offset += batch;
        for model in &sessions {
            let encodings = model.tokenize(&chunk)?;
            let refs: Vec<&Encoding> = encodings.iter().collect();
            model.run(&refs)?;
        }
        done += batch;
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// Throughput and latencies of `clients` closed-loop clients.
async fn service_load(
    addr: SocketAddr,
    texts: Arc<Vec<String>>,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(f64, Duration, Duration)> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let mut client = InferenceServiceClient::new(channel.clone());
            let texts = Arc::clone(&texts);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = c * 7919;
                while Instant::now() < deadline {
                    let text = texts[i % texts.len()].clone();
                    i += 1;
                    let sent = Instant::now();
                    client
                        .analyze(AnalyzeRequest {
                            text,
                            tasks: vec![],
                        })
                        .await
                        .map_err(|s| anyhow::anyhow!("Analyze failed: {s}"))?;
                    latencies.push(sent.elapsed());
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let throughput = latencies.len() as f64 / elapsed;
    let p50 = quantile(&mut latencies, 0.50);
    let p99 = quantile(&mut latencies, 0.99);
    Ok((throughput, p50, p99))
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let texts = Arc::new(match &options.texts {
        Some(path) => texts::from_jsonl(path)?,
        None => texts::generated(4_096),
    });
    let config = options.service_config()?;
    let models = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || pulse_inference::server::load_models(&config)).await??
    };
    let names: Vec<String> = distinct_models(&models).iter().map(|m| m.id()).collect();
    println!("models    {}", names.join(" + "));
    println!("threads   {}", options.threads);
    #[allow(clippy::cast_precision_loss)]
    let mean_chars =
        texts.iter().map(|t| t.chars().count()).sum::<usize>() as f64 / texts.len() as f64;
    println!(
        "texts     {} (mean {:.0} characters)",
        texts.len(),
        mean_chars
    );

    println!("\nraw ceiling (tokenize + run, tight loop)\n  batch   texts/s");
    let mut best = (0usize, 0.0f64);
    for &batch in &options.batch_sizes {
        let models = models.clone();
        let texts = Arc::clone(&texts);
        let seconds = options.seconds;
        let rate =
            tokio::task::spawn_blocking(move || raw_throughput(&models, &texts, batch, seconds))
                .await??;
        println!("  {batch:>5}   {rate:>8.1}");
        if rate > best.1 {
            best = (batch, rate);
        }
    }
    println!("  best: {:.1} texts/s at batch {}", best.1, best.0);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server_config = config.clone();
    let server = tokio::spawn(async move {
        pulse_inference::serve(&server_config, models, listener, async {
            let _ = stopped.await;
        })
        .await
    });
    println!(
        "\ninference service (gRPC Analyze, one text per call)\n  clients   texts/s   p50 ms   p99 ms   of raw"
    );
    for &clients in &options.clients {
        let (rate, p50, p99) = service_load(addr, Arc::clone(&texts), clients, options.seconds)
            .await
            .with_context(|| format!("{clients} clients"))?;
        println!(
            "  {clients:>7}   {rate:>7.1}   {:>6.2}   {:>6.2}   {:>5.1}%",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            rate / best.1 * 100.0
        );
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
