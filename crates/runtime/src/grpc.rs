//! What every gRPC server of the mesh has: request spans parented to the caller's trace,
//! `grpc.health.v1`, and server reflection in both versions (grpcurl 1.8 speaks only v1alpha).

use std::{future::Future, net::SocketAddr};

use tokio::net::TcpListener;
use tonic::transport::{Server, server::Router};
use tonic_health::server::HealthReporter;

use crate::grpc_metrics::GrpcMetricsLayer;

/// Errors starting a gRPC server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A server with the metrics layer; what [`server`] builds.
pub type MeteredServer =
    Server<tower::layer::util::Stack<GrpcMetricsLayer, tower::layer::util::Identity>>;

/// A router of a [`MeteredServer`].
pub type MeteredRouter =
    Router<tower::layer::util::Stack<GrpcMetricsLayer, tower::layer::util::Identity>>;

/// A server builder whose every request gets a span parented to the caller's trace context
/// and is counted and timed in `registry`.
pub fn server(registry: &prometheus::Registry) -> Result<MeteredServer, ServeError> {
    Ok(Server::builder()
        .trace_fn(crate::propagation::grpc_server_span)
        .layer(GrpcMetricsLayer::new(registry)?))
}

/// The standard health service; the reporter starts with every service NOT_SERVING.
pub fn health() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    tonic_health::server::health_reporter()
}

/// Adds reflection v1 and v1alpha to `router`, advertising `service` (a fully qualified name
/// such as `pulse.v1.InferenceService`), the health service and reflection itself, so
/// `grpcurl list` shows exactly what this server answers.
pub fn with_reflection(router: MeteredRouter, service: &str) -> Result<MeteredRouter, ServeError> {
    let advertised = [
        service,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ];
    let builder = || {
        advertised.iter().fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(pulse_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(
                    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
                )
                .include_reflection_service(false),
            |b, name| b.with_service_name(*name),
        )
    };
    Ok(router
        .add_service(builder().build_v1()?)
        .add_service(builder().build_v1alpha()?))
}

/// Binds `addr` (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves `router` on `listener` until `shutdown` completes, then drains in-flight calls.
///
/// Accepted connections get `TCP_NODELAY`: a unary answer is several small HTTP/2 frames, and
/// with Nagle's algorithm the last of them waits for the client's delayed ACK (40 ms on Linux).
pub async fn serve(
    router: MeteredRouter,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    router
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}
