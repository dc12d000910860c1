//! What every Pulse service shares: the domain model of a post and its analysis,
//! telemetry set-up, W3C trace-context propagation across gRPC and Redis streams,
//! retry backoff and graceful shutdown.

pub mod admin;
pub mod backoff;
pub mod domain;
pub mod grpc;
pub mod grpc_metrics;
pub mod log_format;
pub mod propagation;
pub mod shutdown;
pub mod telemetry;

pub use domain::{Analysis, Post, PostError};
