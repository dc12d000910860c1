//! Set-up shared by the inference service's integration tests.

use std::{future::Future, net::SocketAddr, path::PathBuf};

use pulse_inference::Config;
use pulse_proto::v1::{Analysis, AnalyzeRequest, inference_service_client::InferenceServiceClient};
use tonic::transport::Channel;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The ONNX Runtime library: `ORT_DYLIB_PATH`, or where set-up puts it.
pub fn ort_library() -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".deps/onnxruntime/libonnxruntime.so.1.31.1"))
}

/// Loads `config`'s models and serves them on its address until `shutdown`; returns the
/// bound address.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> SocketAddr {
    let models = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || pulse_inference::server::load_models(&config))
            .await
            .expect("join")
            .expect("models load")
    };
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { pulse_inference::serve(&config, models, listener, shutdown).await });
    addr
}

/// `text` analysed for the default tasks; the call must succeed.
pub async fn analyze(client: &mut InferenceServiceClient<Channel>, text: &str) -> Analysis {
    client
        .analyze(AnalyzeRequest {
            text: text.into(),
            tasks: vec![],
        })
        .await
        .expect("analyze")
        .into_inner()
        .analysis
        .expect("analysis")
}
