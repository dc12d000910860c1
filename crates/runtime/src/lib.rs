//! The process plumbing every Pulse service shares: telemetry set-up, the admin endpoint
//! (metrics, liveness, readiness), gRPC server helpers, W3C trace-context propagation across
//! gRPC and Redis streams, retry backoff, graceful shutdown, and a client channel that balances
//! calls over every address of a service. The domain model is in `pulse-domain`.

pub mod admin;
pub mod backoff;
pub mod balanced_channel;
pub mod grpc;
pub mod grpc_metrics;
pub mod log_format;
pub mod propagation;
pub mod shutdown;
pub mod telemetry;
