//! The LLM modes against a local OpenAI-compatible server that answers well, badly, slowly or
//! not at all, depending on the text it is sent.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use clap::Parser;
use pulse_inference::Config;
use pulse_proto::v1::{Backend, inference_service_client::InferenceServiceClient};
use serde_json::{Value, json};
use tonic::transport::Channel;
use warp::Filter;

mod common;

use common::{ort_library, root};

/// The fake LLM: the user message picks the behaviour.
async fn fake_llm(calls: Arc<AtomicUsize>) -> SocketAddr {
    let route = warp::post()
        .and(warp::path!("v1" / "chat" / "completions"))
        .and(warp::body::json())
        .then(move |body: Value| {
            let calls = Arc::clone(&calls);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let text = body["messages"][1]["content"].as_str().unwrap_or_default().to_owned();
                let content = if text.contains("[slow]") {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    json!({"label": "positive", "confidence": 0.99}).to_string()
                } else if text.contains("[malformed]") {
                    "Sure! The sentiment is positive.".to_owned()
                } else if text.contains("[unknown-label]") {
                    json!({"label": "ecstatic", "confidence": 0.9}).to_string()
                } else if text.contains("[error]") {
                    return warp::reply::with_status(
                        warp::reply::json(&json!({"error": {"message": "boom", "type": "server_error", "param": null, "code": null}})),
                        warp::http::StatusCode::INTERNAL_SERVER_ERROR,
                    );
                } else {
                    json!({"label": "negative", "confidence": 0.93}).to_string()
                };
                warp::reply::with_status(
                    warp::reply::json(&json!({
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": 1_700_000_000,
                        "model": "fake-model",
                        "choices": [{
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop",
                            "logprobs": null
                        }],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
                    })),
                    warp::http::StatusCode::OK,
                )
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(warp::serve(route).incoming(listener).run());
    addr
}

async fn start(mode: &str, llm: SocketAddr, extra: &[&str]) -> InferenceServiceClient<Channel> {
    let ort = ort_library().display().to_string();
    let models = root().join("models/sentiment").display().to_string();
    let base = format!("http://{llm}/v1");
    let mut args = vec![
        "pulse-inference",
        "--addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
        "--ort-library",
        &ort,
        "--sentiment-model-dir",
        &models,
        "--emotion-model-dir",
        "none",
        "--intra-threads",
        "1",
        "--llm-mode",
        mode,
        "--llm-base-url",
        &base,
        "--llm-model",
        "fake-model",
        "--llm-api-key",
        "sk-test-secret",
        "--llm-timeout-ms",
        "300",
        "--llm-max-retries",
        "1",
    ];
    args.extend_from_slice(extra);
    let config = Config::parse_from(args);
    assert!(
        !format!("{config:?}").contains("sk-test-secret"),
        "the key never shows"
    );
    let addr = common::serve(config, std::future::pending()).await;
    InferenceServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

async fn sentiment(
    client: &mut InferenceServiceClient<Channel>,
    text: &str,
) -> pulse_proto::v1::TaskResult {
    common::analyze(client, text).await.results.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_mode_uses_valid_answers_and_keeps_local_ones_otherwise() {
    let calls = Arc::new(AtomicUsize::new(0));
    let llm = fake_llm(Arc::clone(&calls)).await;
    let mut client = start("external", llm, &[]).await;

    let good = sentiment(&mut client, "I love this phone").await;
    assert_eq!(good.backend, i32::from(Backend::Llm));
    assert_eq!(good.model, "llm:fake-model");
    assert_eq!(
        good.label, "negative",
        "the LLM's answer, not the local one"
    );
    assert!((good.score - 0.93).abs() < 1e-6);

    for bad in [
        "I love this phone [malformed]",
        "I love this phone [unknown-label]",
    ] {
        let kept = sentiment(&mut client, bad).await;
        assert_eq!(kept.backend, i32::from(Backend::Local), "{bad}");
        assert!(
            kept.model.starts_with("pulse-minilm"),
            "{bad}: {}",
            kept.model
        );
    }

    // Late answers: the call is abandoned at 300 ms, retried once, then the local result stands.
    let before = calls.load(Ordering::SeqCst);
    let started = std::time::Instant::now();
    let late = sentiment(&mut client, "I love this phone [slow]").await;
    assert_eq!(late.backend, i32::from(Backend::Local));
    assert_eq!(
        calls.load(Ordering::SeqCst) - before,
        2,
        "one try and one retry"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "never waits for the slow answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_api_opens_the_circuit() {
    let calls = Arc::new(AtomicUsize::new(0));
    let llm = fake_llm(Arc::clone(&calls)).await;
    let mut client = start(
        "external",
        llm,
        &[
            "--llm-max-retries",
            "0",
            "--llm-breaker-threshold",
            "3",
            "--llm-breaker-cooldown-secs",
            "60",
        ],
    )
    .await;
    for _ in 0..3 {
        let result = sentiment(&mut client, "Great stuff [error]").await;
        assert_eq!(result.backend, i32::from(Backend::Local));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    for _ in 0..5 {
        let result = sentiment(&mut client, "Great stuff").await;
        assert_eq!(result.backend, i32::from(Backend::Local));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "no calls while the circuit is open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_mode_asks_only_below_the_threshold() {
    let calls = Arc::new(AtomicUsize::new(0));
    let llm = fake_llm(Arc::clone(&calls)).await;
    let mut confident = start("fallback", llm, &[]).await;
    let local = sentiment(&mut confident, "I love this phone").await;
    assert_eq!(local.backend, i32::from(Backend::Local));
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    let mut unsure = start("fallback", llm, &["--llm-confidence-threshold", "1.01"]).await;
    let asked = sentiment(&mut unsure, "I love this phone").await;
    assert_eq!(asked.backend, i32::from(Backend::Llm));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
