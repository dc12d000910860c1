//! Loading the models and serving them.

use std::{future::Future, sync::Arc};

use anyhow::Context;
use pulse_proto::v1::inference_service_server::InferenceServiceServer;
use tokio::net::TcpListener;

use crate::{
    Config,
    model::Classifier,
    runtime,
    service::{InferenceApi, Limits},
};

pub use crate::service::Models;

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
            config.max_sequence_length,
        )
        .map(Arc::new)
        .with_context(|| format!("loading the model in {}", dir.display()))
    };
    let sentiment = load(&config.sentiment_model_dir)?;
    tracing::info!(model = %sentiment.id(), labels = ?sentiment.labels, threads, "sentiment model loaded");
    let emotion = config.emotion_model_dir.as_deref().map(load).transpose()?;
    if let Some(emotion) = &emotion {
        tracing::info!(model = %emotion.id(), labels = ?emotion.labels, "emotion model loaded");
    }
    Ok(Models { sentiment, emotion })
}

/// Serves `models` on `listener` until `shutdown`.
pub async fn serve(
    config: &Config,
    models: Models,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let api = InferenceApi::new(
        models,
        Limits {
            max_batch_size: config.max_batch_size,
            max_input_chars: config.max_input_chars,
        },
    );
    let (health, health_service) = pulse_core::grpc::health();
    // Models are loaded before the server starts, so it is SERVING from its first request.
    health
        .set_serving::<InferenceServiceServer<InferenceApi>>()
        .await;
    let router = pulse_core::grpc::server()
        .add_service(health_service)
        .add_service(InferenceServiceServer::new(api));
    let router = pulse_core::grpc::with_reflection(router)?;
    tracing::info!(addr = %listener.local_addr()?, "inference listening");
    pulse_core::grpc::serve(router, listener, shutdown).await?;
    Ok(())
}

/// Loads the models, then serves on the configured address until SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let models = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || load_models(&config)).await??
    };
    let listener = pulse_core::grpc::bind(config.addr).await?;
    serve(&config, models, listener, pulse_core::shutdown::signal()).await
}
