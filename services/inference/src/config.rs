//! Command-line and environment configuration.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::{
    fallback::{LlmBackend, LlmMode},
    llm::{LlmClassifier, LlmSettings},
    metrics::InferenceMetrics,
};

/// A secret that never shows in `Debug` output (and so never in logs).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKey(pub String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl std::str::FromStr for ApiKey {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// What to do instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Reports how good a task's model is on a labelled JSONL file (`{"text": ..., "label":
    /// ...}` per line, optionally `"labels": [...]` for texts with several): accuracy, macro-F1,
    /// macro-recall, calibration error, and multi-label macro-F1 when lines carry several labels.
    Eval {
        /// The labelled file.
        file: PathBuf,
        /// The task whose model is evaluated.
        #[arg(long, default_value = "sentiment", value_parser = ["sentiment", "emotion"])]
        task: String,
        /// Texts per model run.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Score from which a label counts as predicted on multi-label lines (default: the
        /// bundle's calibrated threshold, else 0.3).
        #[arg(long)]
        threshold: Option<f32>,
    },
}

/// Every setting of `pulse-inference`; each flag falls back to the environment variable named.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "pulse-inference",
    version,
    about = "Sentiment and emotion inference over gRPC",
    args_override_self = true
)]
pub struct Config {
    /// Serve (the default), or run a tool.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address the gRPC server listens on.
    #[arg(long, env = "INFERENCE_ADDR", default_value = "0.0.0.0:50051")]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub admin: pulse_settings::AdminSettings,

    /// Directory of the sentiment model (model.onnx, tokenizer.json, config.json).
    #[arg(
        long,
        env = "SENTIMENT_MODEL_DIR",
        default_value = "models/pulse-minilm"
    )]
    pub sentiment_model_dir: PathBuf,

    /// Directory of the emotion model (the sentiment one again for a two-head bundle, which
    /// then runs once per text); `none`: the service answers sentiment only.
    #[arg(long, env = "EMOTION_MODEL_DIR", default_value = "models/pulse-minilm")]
    pub emotion_model_dir: Option<PathBuf>,

    /// Path of the ONNX Runtime shared library (libonnxruntime.so.1.31.x).
    #[arg(
        long,
        env = "ORT_DYLIB_PATH",
        default_value = ".deps/onnxruntime/libonnxruntime.so.1.31.1"
    )]
    pub ort_library: PathBuf,

    /// Threads ONNX Runtime uses inside one model run; 0 means one per CPU core.
    #[arg(long, env = "ORT_INTRA_THREADS", default_value_t = 0)]
    pub intra_threads: usize,

    /// Let ONNX Runtime's threads spin while waiting for work. Spinning shaves latency on a
    /// machine of its own but burns cores that the worker, Postgres and Redis need when they
    /// share it, so it is off unless asked for.
    #[arg(long, env = "ORT_INTRA_OP_SPINNING", default_value_t = false, action = clap::ArgAction::Set)]
    pub intra_op_spinning: bool,

    /// Tokens per sequence; longer texts are truncated (and flagged as such).
    #[arg(long, env = "MAX_SEQUENCE_LENGTH", default_value_t = 128)]
    pub max_sequence_length: usize,

    /// Most texts accepted in one AnalyzeBatch call.
    #[arg(long, env = "MAX_BATCH_SIZE", default_value_t = 256)]
    pub max_batch_size: usize,

    /// Most texts the batcher puts into one batch.
    #[arg(long, env = "BATCH_MAX_TEXTS", default_value_t = 64)]
    pub batch_max_texts: usize,

    /// Most padded tokens (texts × longest text) in one model run.
    #[arg(long, env = "BATCH_MAX_TOKENS", default_value_t = 8_192)]
    pub batch_max_tokens: usize,

    /// Microseconds the batcher waits for more requests when the queue ran dry early.
    #[arg(
        long = "batch-max-wait-us",
        env = "BATCH_MAX_WAIT_US",
        value_name = "BATCH_MAX_WAIT_US",
        default_value = "1000",
        value_parser = pulse_settings::duration::micros,
    )]
    pub batch_max_wait: Duration,

    /// Most texts waiting for the batcher; requests beyond are refused (RESOURCE_EXHAUSTED).
    #[arg(long, env = "MAX_QUEUED_TEXTS", default_value_t = 4_096)]
    pub max_queued_texts: usize,

    /// Longest text accepted, in characters; longer ones are refused.
    #[arg(long, env = "MAX_INPUT_CHARS", default_value_t = 5_000)]
    pub max_input_chars: usize,

    /// When the external LLM is used: never (`local`), for every text (`external`, keeping the
    /// local answer when the LLM's is invalid or late), or when the local model fails or is
    /// unsure (`fallback`).
    #[arg(long, env = "LLM_MODE", value_enum, default_value = "local")]
    pub llm_mode: LlmMode,

    /// Base URL of an OpenAI-compatible API (ending in /v1).
    #[arg(long, env = "LLM_BASE_URL", required_if_eq_any([("llm_mode", "external"), ("llm_mode", "fallback")]))]
    pub llm_base_url: Option<String>,

    /// Model name sent to the LLM API.
    #[arg(long, env = "LLM_MODEL", default_value = "gpt-4o-mini")]
    pub llm_model: String,

    /// API key of the LLM endpoint (never logged).
    #[arg(long, env = "LLM_API_KEY", hide_env_values = true, default_value = "")]
    pub llm_api_key: ApiKey,

    /// Deadline of one LLM call, in milliseconds.
    #[arg(
        long = "llm-timeout-ms",
        env = "LLM_TIMEOUT_MS",
        value_name = "LLM_TIMEOUT_MS",
        default_value = "3000",
        value_parser = pulse_settings::duration::millis,
    )]
    pub llm_timeout: Duration,

    /// Retries after a failed or late LLM call.
    #[arg(long, env = "LLM_MAX_RETRIES", default_value_t = 1)]
    pub llm_max_retries: u32,

    /// In `fallback` mode, local results below this confidence go to the LLM (0 = only failures).
    #[arg(long, env = "LLM_CONFIDENCE_THRESHOLD", default_value_t = 0.0)]
    pub llm_confidence_threshold: f32,

    /// Consecutive LLM failures that open the circuit breaker.
    #[arg(long, env = "LLM_BREAKER_THRESHOLD", default_value_t = 5)]
    pub llm_breaker_threshold: u32,

    /// Seconds an open circuit breaker refuses LLM calls.
    #[arg(
        long = "llm-breaker-cooldown-secs",
        env = "LLM_BREAKER_COOLDOWN_SECS",
        value_name = "LLM_BREAKER_COOLDOWN_SECS",
        default_value = "30",
        value_parser = pulse_settings::duration::secs,
    )]
    pub llm_breaker_cooldown: Duration,

    /// LLM calls in flight at once per request.
    #[arg(long, env = "LLM_CONCURRENCY", default_value_t = 8)]
    pub llm_concurrency: usize,

    /// FAULT INJECTION, for tests only; off when unset. Any request with a text containing this
    /// marker fails with INTERNAL after validation, as a model crashing on that input would, so
    /// the worker's isolation of a bad entry can be exercised end to end. Never set it in
    /// production.
    #[arg(long, env = "FAULT_FAIL_ON_TEXT")]
    pub fault_fail_on_text: Option<String>,
}

impl Config {
    /// Default port of the admin endpoint.
    pub const ADMIN_PORT: u16 = 9101;

    pub fn admin_addr(&self) -> std::net::SocketAddr {
        self.admin.addr_or(Self::ADMIN_PORT)
    }

    /// The LLM backend this configuration asks for; `None` in mode `local`.
    pub fn llm_backend(&self, metrics: &InferenceMetrics) -> Option<LlmBackend> {
        if self.llm_mode == LlmMode::Local {
            return None;
        }
        let settings = LlmSettings {
            base_url: self.llm_base_url.clone().unwrap_or_default(),
            model: self.llm_model.clone(),
            api_key: self.llm_api_key.0.clone(),
            timeout: self.llm_timeout,
            max_retries: self.llm_max_retries,
            breaker_threshold: self.llm_breaker_threshold.max(1),
            breaker_cooldown: self.llm_breaker_cooldown,
        };
        Some(LlmBackend {
            mode: self.llm_mode,
            classifier: LlmClassifier::new(settings),
            confidence_threshold: self.llm_confidence_threshold,
            concurrency: self.llm_concurrency,
            metrics: metrics.clone(),
        })
    }

    /// Intra-op threads with 0 resolved to the number of cores.
    pub fn resolved_threads(&self) -> usize {
        if self.intra_threads > 0 {
            self.intra_threads
        } else {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }
    }
}
