//! The inference service: transformer classifiers through ONNX Runtime, served over gRPC.
//!
//! [`model`] loads any Hugging Face sequence-classification export (`model.onnx`,
//! `tokenizer.json`, `config.json` with `id2label`) and classifies batches of texts;
//! [`batcher`] merges the requests of every connection into model runs;
//! [`runtime`] loads the ONNX Runtime library once per process; [`service`] implements
//! `pulse.v1.InferenceService` on top of the loaded models; [`server`] wires it with health and
//! reflection.

pub mod batcher;
pub mod config;
pub mod eval;
pub mod fallback;
pub mod llm;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod runtime;
pub mod server;
pub mod service;

pub use config::Config;
pub use server::{Models, run, serve};
