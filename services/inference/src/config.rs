//! Command-line and environment configuration.

use std::{net::SocketAddr, path::PathBuf};

/// Every setting of `pulse-inference`; each flag falls back to the environment variable named.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "pulse-inference",
    version,
    about = "Sentiment and emotion inference over gRPC"
)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "INFERENCE_ADDR", default_value = "0.0.0.0:50051")]
    pub addr: SocketAddr,

    /// Directory of the sentiment model (model.onnx, tokenizer.json, config.json).
    #[arg(long, env = "SENTIMENT_MODEL_DIR", default_value = "models/sentiment")]
    pub sentiment_model_dir: PathBuf,

    /// Directory of the emotion model; without it the service answers sentiment only.
    #[arg(long, env = "EMOTION_MODEL_DIR")]
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

    /// Tokens per sequence; longer texts are truncated (and flagged as such).
    #[arg(long, env = "MAX_SEQUENCE_LENGTH", default_value_t = 128)]
    pub max_sequence_length: usize,

    /// Most texts accepted in one AnalyzeBatch call.
    #[arg(long, env = "MAX_BATCH_SIZE", default_value_t = 256)]
    pub max_batch_size: usize,

    /// Longest text accepted, in characters; longer ones are refused.
    #[arg(long, env = "MAX_INPUT_CHARS", default_value_t = 5_000)]
    pub max_input_chars: usize,
}

impl Config {
    /// Intra-op threads with 0 resolved to the number of cores.
    pub fn resolved_threads(&self) -> usize {
        if self.intra_threads > 0 {
            self.intra_threads
        } else {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }
    }
}
