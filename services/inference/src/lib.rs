//! The inference service: transformer classifiers through ONNX Runtime, served over gRPC.
//!
//! The modules, from the model up to the wire (each uses only those listed before it, so no
//! two import each other):
//!
//! - [`normalize`]: the text normalisation a bundle was trained with.
//! - [`model`]: loads a Hugging Face sequence-classification export (`model.onnx`,
//!   `tokenizer.json`, `config.json` with `id2label`) and classifies batches of texts.
//! - [`runtime`]: loads the ONNX Runtime library once per process.
//! - [`metrics`]: the service's Prometheus metrics.
//! - [`batcher`]: one queue for every connection, one thread running the models in batches;
//!   it reports a [`batcher::BatchError`].
//! - [`engine`]: the loaded [`Models`] and the local analysis path (validate → tokenize →
//!   batcher → scored results); it fails with an [`engine::EngineError`] and knows no gRPC.
//! - [`llm`]: the external LLM client (strict answers, retries, a circuit breaker);
//!   [`fallback`]: when its answers replace the engine's (modes `local`, `fallback`,
//!   `external`), built on the engine's types.
//! - [`config`]: the command line and environment; [`eval`]: the `eval` tool.
//! - [`grpc`]: `pulse.v1.InferenceService` over the engine and the LLM; the one place an
//!   `EngineError` becomes a `tonic::Status`.
//! - [`server`]: wiring: loads the models, serves the gRPC service with health, reflection and
//!   the admin endpoint.

pub mod batcher;
pub mod config;
pub mod engine;
pub mod eval;
pub mod fallback;
pub mod grpc;
pub mod llm;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod runtime;
pub mod server;

pub use config::Config;
pub use engine::{Models, TaskModel};
pub use server::{load_models, run, serve};
