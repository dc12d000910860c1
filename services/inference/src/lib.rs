//! The inference service: transformer classifiers through ONNX Runtime, served over gRPC.
//!
//! [`model`] loads any Hugging Face sequence-classification export (`model.onnx`,
//! `tokenizer.json`, `config.json` with `id2label`) and classifies batches of texts;
//! [`runtime`] loads the ONNX Runtime library once per process; [`service`] implements
//! `pulse.v1.InferenceService` on top of the loaded models; [`server`] wires it with health and
//! reflection.

pub mod config;
pub mod model;
pub mod runtime;
pub mod server;
pub mod service;

pub use config::Config;
pub use server::{Models, run, serve};
