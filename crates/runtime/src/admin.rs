//! The admin HTTP endpoint every service runs beside its main port (`ADMIN_ADDR`):
//! `/metrics` (Prometheus text exposition), `/healthz` (the process is alive) and `/readyz`
//! (it can do its work now: dependencies reachable, models loaded). Kubernetes probes and
//! Prometheus scrape this port, never the public one.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use prometheus::{Encoder, Registry, TextEncoder};
use warp::{Filter, http::StatusCode};

/// Whether the service can take work; shared between the service and its admin endpoint.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        let was = self.0.swap(ready, Ordering::Relaxed);
        if was != ready {
            tracing::info!(ready, "readiness changed");
        }
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Renders `registry` in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut buffer = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut buffer) {
        tracing::warn!(error = %e, "cannot encode metrics");
    }
    String::from_utf8(buffer).unwrap_or_default()
}

/// The admin routes over `registry` and `readiness`.
pub fn routes(
    registry: Registry,
    readiness: Readiness,
) -> impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone {
    let metrics = warp::path!("metrics").and(warp::get()).map(move || {
        warp::reply::with_header(
            render(&registry),
            "content-type",
            "text/plain; version=0.0.4; charset=utf-8",
        )
    });
    let healthz = warp::path!("healthz").and(warp::get()).map(|| "ok");
    let readyz = warp::path!("readyz").and(warp::get()).map(move || {
        if readiness.is_ready() {
            warp::reply::with_status("ready", StatusCode::OK)
        } else {
            warp::reply::with_status("not ready", StatusCode::SERVICE_UNAVAILABLE)
        }
    });
    metrics.or(healthz).or(readyz)
}

/// A running admin endpoint; it stops when this is dropped, so it lives exactly as long as
/// the service function that started it.
#[derive(Debug)]
pub struct AdminEndpoint {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Serves the admin routes on `addr` until the returned [`AdminEndpoint`] is dropped.
pub async fn start(
    addr: SocketAddr,
    registry: Registry,
    readiness: Readiness,
) -> std::io::Result<AdminEndpoint> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = routes(registry, readiness).recover(|_| async {
        Ok::<_, Infallible>(warp::reply::with_status("not found", StatusCode::NOT_FOUND))
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        warp::serve(app)
            .incoming(listener)
            .graceful(async {
                // Resolves when the sender is dropped as well as when it sends.
                let _ = stopped.await;
            })
            .run(),
    );
    tracing::info!(addr = %bound, "admin endpoint listening");
    Ok(AdminEndpoint {
        addr: bound,
        _stop: stop,
    })
}
