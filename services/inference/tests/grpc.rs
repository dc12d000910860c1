//! The inference service over real gRPC with the default model bundle and ONNX Runtime.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;
use pulse_inference::Config;
use pulse_proto::v1::{
    AnalyzeBatchRequest, AnalyzeRequest, Backend, GetModelInfoRequest, Task,
    inference_service_client::InferenceServiceClient,
};
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

mod common;

use common::{ort_library, root};

/// `config` on free local ports with these model directories, two threads.
fn on_local_ports(mut config: Config, sentiment: PathBuf, emotion: Option<PathBuf>) -> Config {
    config.addr = "127.0.0.1:0".parse().expect("addr");
    config.admin.addr = Some("127.0.0.1:0".parse().expect("addr"));
    config.sentiment_model_dir = sentiment;
    config.emotion_model_dir = emotion;
    config.ort_library = ort_library();
    config.intra_threads = 2;
    config
}

async fn start() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut config = on_local_ports(
        Config::parse_from(["pulse-inference"]),
        root().join("models/sentiment"),
        None,
    );
    config.max_batch_size = 8;
    config.max_input_chars = 1_000;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let addr = common::serve(config, async {
        let _ = rx.await;
    })
    .await;
    (addr, tx)
}

async fn client(addr: SocketAddr) -> InferenceServiceClient<Channel> {
    InferenceServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

#[tokio::test]
async fn analyzes_with_the_default_model_and_reports_everything() {
    let (addr, _stop) = start().await;
    let mut client = client(addr).await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel);
    let status = health
        .check(HealthCheckRequest {
            service: "pulse.v1.InferenceService".into(),
        })
        .await
        .expect("health")
        .into_inner()
        .status;
    assert_eq!(status, i32::from(ServingStatus::Serving));

    let cases = [
        (
            "I love this phone, it is amazing and works perfectly",
            "positive",
        ),
        ("This is the worst service ever, I hate it", "negative"),
    ];
    for (text, expected) in cases {
        let analysis = common::analyze(&mut client, text).await;
        let sentiment = &analysis.results[0];
        assert_eq!(sentiment.task, i32::from(Task::Sentiment));
        assert_eq!(sentiment.label, expected, "{text}");
        assert_eq!(sentiment.backend, i32::from(Backend::Local));
        assert_eq!(sentiment.scores.len(), 3);
        let sum: f32 = sentiment.scores.iter().map(|s| s.score).sum();
        assert!((sum - 1.0).abs() < 1e-4);
        assert_eq!(sentiment.scores[0].label, expected, "scores are sorted");
        assert!(sentiment.model.starts_with("pulse-minilm-sentiment@"));
        assert!(sentiment.timings.is_some());
        assert!(!analysis.truncated);
    }

    let long = "great ".repeat(150);
    let batch = client
        .analyze_batch(AnalyzeBatchRequest {
            texts: vec!["ok".into(), long, "terrible".into()],
            tasks: vec![Task::Sentiment.into()],
        })
        .await
        .expect("batch")
        .into_inner();
    assert_eq!(batch.analyses.len(), 3);
    assert!(batch.analyses[1].truncated, "150 words exceed 128 tokens");
    assert!(!batch.analyses[0].truncated);

    let info = client
        .get_model_info(GetModelInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    assert_eq!(info.models[0].labels, ["negative", "neutral", "positive"]);
    assert_eq!(info.max_batch_size, 8);
}

#[tokio::test]
async fn bad_input_is_invalid_argument_with_a_reason() {
    let (addr, _stop) = start().await;
    let mut client = client(addr).await;
    let status = |r: Result<tonic::Response<_>, tonic::Status>| {
        r.map(|_: tonic::Response<pulse_proto::v1::AnalyzeResponse>| ())
            .expect_err("refused")
    };
    let empty = status(
        client
            .analyze(AnalyzeRequest {
                text: "  ".into(),
                tasks: vec![],
            })
            .await,
    );
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert!(empty.message().contains("empty"));
    let long = status(
        client
            .analyze(AnalyzeRequest {
                text: "x".repeat(1_001),
                tasks: vec![],
            })
            .await,
    );
    assert_eq!(long.code(), Code::InvalidArgument);
    assert!(long.message().contains("1001 characters"));
    let unknown = status(
        client
            .analyze(AnalyzeRequest {
                text: "hi".into(),
                tasks: vec![42],
            })
            .await,
    );
    assert_eq!(unknown.code(), Code::InvalidArgument);
    let no_model = status(
        client
            .analyze(AnalyzeRequest {
                text: "hi".into(),
                tasks: vec![Task::Emotion.into()],
            })
            .await,
    );
    assert_eq!(no_model.code(), Code::FailedPrecondition);
    let too_many = client
        .analyze_batch(AnalyzeBatchRequest {
            texts: vec!["a".into(); 9],
            tasks: vec![],
        })
        .await
        .expect_err("refused");
    assert_eq!(too_many.code(), Code::InvalidArgument);
    assert!(too_many.message().contains("over the limit of 8"));
}

#[tokio::test]
async fn the_fault_hook_fails_only_requests_with_its_marker_and_is_off_by_default() {
    assert_eq!(
        Config::parse_from(["pulse-inference"]).fault_fail_on_text,
        None
    );
    let config = on_local_ports(
        Config::parse_from(["pulse-inference", "--fault-fail-on-text", "XFAILX"]),
        root().join("models/sentiment"),
        None,
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let addr = common::serve(config, async {
        let _ = rx.await;
    })
    .await;
    let mut client = client(addr).await;
    let failed = client
        .analyze_batch(AnalyzeBatchRequest {
            texts: vec!["fine".into(), "this one has XFAILX inside".into()],
            tasks: vec![],
        })
        .await
        .expect_err("injected fault");
    assert_eq!(failed.code(), Code::Internal);
    assert!(failed.message().contains("text 1"), "{}", failed.message());
    let fine = client
        .analyze_batch(AnalyzeBatchRequest {
            texts: vec!["fine".into(), "also fine".into()],
            tasks: vec![],
        })
        .await
        .expect("no marker, no fault")
        .into_inner();
    assert_eq!(fine.analyses.len(), 2);
    // Validation comes first, as it would before a model runs.
    let invalid = client
        .analyze_batch(AnalyzeBatchRequest {
            texts: vec!["".into(), "XFAILX".into()],
            tasks: vec![],
        })
        .await
        .expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let _ = tx.send(());
}

/// The accurate bundle keeps its weights in `model.weights.NN` files beside `model.onnx`,
/// since a git host refuses its 195 MB in one file; it must serve both tasks as any bundle.
#[tokio::test]
async fn serves_the_accurate_bundle_from_weights_beside_its_graph() {
    let bundle = root().join("models/pulse-mpnet");
    assert!(bundle.join("model.weights.00").is_file());
    let config = on_local_ports(
        Config::parse_from(["pulse-inference"]),
        bundle.clone(),
        Some(bundle),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let addr = common::serve(config, async {
        let _ = rx.await;
    })
    .await;
    let mut client = client(addr).await;

    let cases = [
        (
            "I love this phone, it is amazing and works perfectly",
            "positive",
            "joy",
        ),
        (
            "I am furious, they cancelled my flight again and nobody answers",
            "negative",
            "anger",
        ),
        (
            "I am terrified, there is someone walking around downstairs",
            "negative",
            "fear",
        ),
    ];
    for (text, sentiment, emotion) in cases {
        let analysis = common::analyze(&mut client, text).await;
        let [first, second] = &analysis.results[..] else {
            panic!("two tasks: {:?}", analysis.results);
        };
        assert_eq!(first.task, i32::from(Task::Sentiment));
        assert_eq!(first.label, sentiment, "{text}");
        assert_eq!(second.task, i32::from(Task::Emotion));
        assert_eq!(second.label, emotion, "{text}");
        assert!(first.model.starts_with("pulse-mpnet@2."), "{}", first.model);
    }
    let _ = tx.send(());
}
