//! A tower layer that counts gRPC requests by method and status and times them.
//!
//! The status comes from the response's `grpc-status` header, which tonic sets for every
//! error answered before a body ("trailers-only"); a response without it succeeded as far as
//! its headers go (a stream can still fail later; that shows in the service's own metrics).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use tower::{Layer, Service};

#[derive(Clone)]
pub struct GrpcMetricsLayer {
    requests: IntCounterVec,
    seconds: HistogramVec,
}

impl GrpcMetricsLayer {
    /// Registers `pulse_grpc_requests_total{method,code}` and `pulse_grpc_request_seconds{method}`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "pulse_grpc_requests_total",
                "gRPC requests served, by method and status code",
            ),
            &["method", "code"],
        )?;
        let seconds = HistogramVec::new(
            HistogramOpts::new(
                "pulse_grpc_request_seconds",
                "Time to answer a gRPC request (to its headers)",
            )
            .buckets(prometheus::exponential_buckets(0.0005, 2.0, 16)?),
            &["method"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(seconds.clone()))?;
        Ok(Self { requests, seconds })
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    layer: GrpcMetricsLayer,
}

impl<S, B, R> Service<http::Request<B>> for GrpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().trim_start_matches('/').to_owned();
        let started = Instant::now();
        let future = self.inner.call(request);
        let layer = self.layer.clone();
        Box::pin(async move {
            let result = future.await;
            // Polled inside the request's span (tonic's `trace_fn`), so this records on it.
            if let Ok(response) = &result {
                crate::propagation::record_grpc_status(
                    &tracing::Span::current(),
                    response.headers(),
                );
            }
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map_or_else(|| "0".to_owned(), str::to_owned),
                Err(_) => "transport".to_owned(),
            };
            layer
                .requests
                .with_label_values(&[method.as_str(), code.as_str()])
                .inc();
            layer
                .seconds
                .with_label_values(&[method.as_str()])
                .observe(started.elapsed().as_secs_f64());
            result
        })
    }
}
