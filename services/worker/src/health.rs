//! Whether the worker's dependencies answer: Redis, PostgreSQL (with the tables it writes) and
//! the inference service.
//!
//! The worker is ready while all three answer and no outage is being waited out. A watcher
//! probes every [`PROBE_EVERY`], so readiness is current even when there is nothing to read;
//! after a failed batch the read loop itself probes (with backoff) before it reads anything
//! again, so an outage costs a pending entry one delivery, not one per retry.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use pulse_proto::v1::{GetModelInfoRequest, inference_service_client::InferenceServiceClient};
use pulse_runtime::{admin::Readiness, propagation::TracedChannel};
use pulse_store::Pool;
use pulse_stream::GroupConsumer;

/// How often the watcher probes.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);

/// How long one probe may take before its dependency counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The dependencies that failed a probe, with why.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|(name, why)| format!("{name}: {why}")).collect::<Vec<_>>().join("; "))]
pub struct Unhealthy(pub Vec<(&'static str, String)>);

/// What the worker needs in order to make progress.
#[derive(Clone)]
pub struct Dependencies {
    pub consumer: GroupConsumer,
    pub pool: Pool,
    pub inference: InferenceServiceClient<TracedChannel>,
}

impl Dependencies {
    /// Probes all three at once.
    pub async fn probe(&self) -> Result<(), Unhealthy> {
        let redis = async {
            self.consumer
                .ping()
                .await
                .map_err(|e| ("redis", e.to_string()))
        };
        let postgres = async {
            let client = self
                .pool
                .get()
                .await
                .map_err(|e| ("postgres", e.to_string()))?;
            pulse_store::posts::check_writable(&client)
                .await
                .map_err(|e| ("postgres", e.to_string()))
        };
        let inference = async {
            let mut request = tonic::Request::new(GetModelInfoRequest {});
            request.set_timeout(PROBE_TIMEOUT);
            self.inference
                .clone()
                .get_model_info(request)
                .await
                .map(drop)
                .map_err(|e| ("inference", e.message().to_owned()))
        };
        let (redis, postgres, inference) = tokio::join!(
            within("redis", redis),
            within("postgres", postgres),
            within("inference", inference),
        );
        let failures: Vec<(&'static str, String)> = [redis, postgres, inference]
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Unhealthy(failures))
        }
    }
}

/// `probe`, or a failure when it takes longer than [`PROBE_TIMEOUT`].
async fn within(
    name: &'static str,
    probe: impl Future<Output = Result<(), (&'static str, String)>>,
) -> Result<(), (&'static str, String)> {
    tokio::time::timeout(PROBE_TIMEOUT, probe)
        .await
        .unwrap_or_else(|_| Err((name, "no answer in time".to_owned())))
}

/// The worker's readiness: dependencies answered the last probe, and no outage is open.
#[derive(Clone)]
pub struct Health {
    readiness: Readiness,
    probes_ok: Arc<AtomicBool>,
    outage: Arc<AtomicBool>,
}

impl Health {
    pub fn new(readiness: Readiness) -> Self {
        Self {
            readiness,
            probes_ok: Arc::new(AtomicBool::new(false)),
            outage: Arc::new(AtomicBool::new(false)),
        }
    }

    fn update(&self) {
        self.readiness
            .set(self.probes_ok.load(Ordering::Relaxed) && !self.outage.load(Ordering::Relaxed));
    }

    /// A batch failed because a dependency did: not ready until it answers again.
    pub fn outage_started(&self) {
        self.outage.store(true, Ordering::Relaxed);
        self.update();
    }

    /// Every dependency answered after an outage.
    pub fn outage_ended(&self) {
        self.outage.store(false, Ordering::Relaxed);
        self.probes_ok.store(true, Ordering::Relaxed);
        self.update();
    }

    pub fn probed(&self, ok: bool) {
        self.probes_ok.store(ok, Ordering::Relaxed);
        self.update();
    }
}

/// Probes every [`PROBE_EVERY`] and keeps `health` current.
pub async fn watch(dependencies: Dependencies, health: Health) {
    let mut ticker = tokio::time::interval(PROBE_EVERY);
    loop {
        ticker.tick().await;
        match dependencies.probe().await {
            Ok(()) => health.probed(true),
            Err(e) => {
                tracing::warn!(error = %e, "a dependency does not answer");
                health.probed(false);
            }
        }
    }
}
