//! Wiring: loading the models from the configuration, then serving the engine over gRPC on a
//! listener, with health, reflection and the admin endpoint (metrics, readiness).

use std::{future::Future, sync::Arc};

use anyhow::Context;
use pulse_proto::v1::inference_service_server::InferenceServiceServer;
use tokio::net::TcpListener;

use pulse_runtime::admin::Readiness;

use crate::{
    Config,
    batcher::BatchPolicy,
    engine::{Engine, Limits, Models, TaskModel},
    grpc::InferenceApi,
    metrics::InferenceMetrics,
    model::Classifier,
    runtime,
};

/// Loads ONNX Runtime and every configured model.
pub fn load_models(config: &Config) -> anyhow::Result<Models> {
    let runtime = runtime::init(&config.ort_library).map_err(anyhow::Error::msg)?;
    tracing::info!(library = %runtime.library.display(), "ONNX Runtime loaded");
    let threads = config.resolved_threads();
    let load = |dir: &std::path::Path| {
        Classifier::load(
            &runtime.environment,
            dir,
            threads,
            config.intra_op_spinning,
            config.max_sequence_length,
        )
        .map(Arc::new)
        .with_context(|| format!("loading the model in {}", dir.display()))
    };
    let route = |model: &Arc<Classifier>, task: &str| {
        model
            .head_for(task)
            .map(|head| TaskModel {
                model: Arc::clone(model),
                head,
            })
            .with_context(|| format!("model {} has no head for {task}", model.id()))
    };
    let sentiment_model = load(&config.sentiment_model_dir)?;
    let sentiment = route(&sentiment_model, "sentiment")?;
    tracing::info!(model = %sentiment_model.id(), labels = ?sentiment.labels(), threads, "sentiment model loaded");
    let emotion_dir = config
        .emotion_model_dir
        .as_ref()
        .filter(|dir| !dir.as_os_str().is_empty() && dir.as_os_str() != "none");
    let emotion = match emotion_dir {
        None => None,
        Some(dir) => {
            let same = std::fs::canonicalize(dir).ok()
                == std::fs::canonicalize(&config.sentiment_model_dir).ok();
            let model = if same {
                Arc::clone(&sentiment_model)
            } else {
                load(dir)?
            };
            let emotion = route(&model, "emotion")?;
            tracing::info!(model = %model.id(), labels = ?emotion.labels(), shared = same, "emotion model loaded");
            Some(emotion)
        }
    };
    Ok(Models { sentiment, emotion })
}

/// Serves `models` on `listener` until `shutdown`.
pub async fn serve(
    config: &Config,
    models: Models,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let registry = prometheus::Registry::new();
    let metrics = InferenceMetrics::new(&registry)?;
    let engine = Engine::start(
        models,
        Limits {
            max_batch_size: config.max_batch_size,
            max_input_chars: config.max_input_chars,
        },
        BatchPolicy {
            max_batch_texts: config.batch_max_texts,
            max_batch_tokens: config.batch_max_tokens,
            max_wait: config.batch_max_wait,
            max_queued_texts: config.max_queued_texts,
        },
        metrics.clone(),
    )?;
    let api = InferenceApi::new(engine, config.llm_backend(&metrics), metrics)
        .with_fault_fail_on_text(config.fault_fail_on_text.clone());
    if let Some(marker) = &config.fault_fail_on_text {
        tracing::warn!(%marker, "FAULT_FAIL_ON_TEXT is set: requests with this marker fail on purpose");
    }
    let (health, health_service) = pulse_runtime::grpc::health();
    // Models are loaded before the server starts, so it is SERVING from its first request.
    health
        .set_serving::<InferenceServiceServer<InferenceApi>>()
        .await;
    let router = pulse_runtime::grpc::server(&registry)?
        .add_service(health_service)
        .add_service(InferenceServiceServer::new(api));
    let router = pulse_runtime::grpc::with_reflection(router, "pulse.v1.InferenceService")?;
    let readiness = Readiness::default();
    readiness.set(true);
    let _admin = pulse_runtime::admin::start(config.admin_addr(), registry, readiness).await?;
    tracing::info!(addr = %listener.local_addr()?, "inference listening");
    let served = pulse_runtime::grpc::serve(router, listener, shutdown).await;
    Ok(served?)
}

/// The multi-label threshold of GoEmotions' baseline, for bundles that were not calibrated.
const DEFAULT_MULTILABEL_THRESHOLD: f32 = 0.3;

/// Loads the models, then serves on the configured address until SIGTERM, or runs the tool
/// the command line names.
pub async fn run(config: Config) -> anyhow::Result<()> {
    if let Some(crate::config::Command::Eval {
        file,
        task,
        batch,
        threshold,
    }) = &config.command
    {
        let models = load_models(&config)?;
        let tm = match task.as_str() {
            "emotion" => models
                .emotion
                .context("no emotion model is configured (EMOTION_MODEL_DIR)")?,
            _ => models.sentiment,
        };
        let started = std::time::Instant::now();
        let threshold = threshold
            .or(tm.model.calibration.emotion_multilabel_threshold)
            .unwrap_or(DEFAULT_MULTILABEL_THRESHOLD);
        let report = crate::eval::evaluate(&tm, file, *batch, threshold)?;
        println!(
            "model     {}\ntask      {task}\nfile      {}",
            tm.model.id(),
            file.display()
        );
        print!("{report}");
        println!("seconds   {:.1}", started.elapsed().as_secs_f64());
        return Ok(());
    }
    let models = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || load_models(&config)).await??
    };
    let listener = pulse_runtime::grpc::bind(config.addr).await?;
    serve(&config, models, listener, pulse_runtime::shutdown::signal()).await
}
