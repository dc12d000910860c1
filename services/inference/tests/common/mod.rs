//! Set-up shared by the inference service's integration tests.

use std::{future::Future, net::SocketAddr};

use pulse_inference::Config;
use pulse_proto::v1::{Analysis, AnalyzeRequest, inference_service_client::InferenceServiceClient};
use tonic::transport::Channel;

/// The repository root and the ONNX Runtime library, as every test finds them.
pub use pulse_testkit::{ort_library, workspace_root as root};

/// Loads `config`'s models and serves them on its address until `shutdown`; returns the
/// bound address.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> SocketAddr {
    pulse_testkit::logs();
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
