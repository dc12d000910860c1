//! A cluster rehearsal: every Pulse container of each overlay runs as Kubernetes would run it.
//!
//! Each overlay is rendered (`kubectl kustomize`), and every Job, Deployment and init container
//! running a Pulse image is started as a process of its image's binary (the workspace's debug
//! build), with exactly the rendered `command`/`args` (or the image's `ENTRYPOINT`/`CMD` from
//! `deploy/docker/Dockerfile`) and only the environment Kubernetes would give it: the image's
//! `ENV`, then `envFrom` and `env` resolved from the rendered ConfigMaps and Secrets, plus
//! `HOSTNAME` (the pod name) and `PATH`. The rehearsal then asserts what the cluster would:
//!
//! - init containers (`wait-for-schema`) keep waiting while the schema is missing, and exit 0
//!   once the migration Job has run;
//! - the migration Job exits 0 within its deadline, twice (the second run finds nothing to do);
//! - every Deployment's container passes its startup, liveness and readiness probes as written
//!   (`grpc` with its `service`, `httpGet` with its path and port by number or name, `tcpSocket`,
//!   `exec`), within the time the kubelet would allow before restarting it;
//! - the liveness probe keeps passing while the mesh works, and no container exits;
//! - a post published through the ingester (`IngestService.Publish`) reaches the gateway's
//!   WebSocket through the Ingress's backend Service, a few hundred more are stored, and every
//!   service's spans reach the OTLP receiver that stands in for Jaeger or the collector;
//! - after `preStop`, SIGTERM ends every container, with status 0, within
//!   `terminationGracePeriodSeconds`;
//! - no container's peak resident memory (all its processes) exceeds its memory limit.
//!
//! What stands in for the cluster (the mapping is applied to every value, so the containers
//! reach each other exactly as the manifests wire them, and nothing is shared with other tests):
//!
//! - Service names (`inference`, `inference.pulse.svc.cluster.local`, ...) resolve through the
//!   rendered Service (its port, `targetPort`, selector) to the selected pod's port; each pod
//!   port and each listen address (`0.0.0.0:9104`) becomes a free loopback port, consistently
//!   for the listener, its probes and its callers. A name no rendered Service carries fails, as
//!   DNS would in the cluster.
//! - PostgreSQL (a `postgres://` URL, in-namespace or managed) is the test server
//!   (`TEST_DATABASE_URL`, with its credentials), each database name becoming a fresh database
//!   that the migration Job itself creates; Redis (`redis://`) is the test Redis
//!   (`TEST_REDIS_URL`, without credentials); an `OTEL_EXPORTER_OTLP_*ENDPOINT` is the in-process
//!   collector ([`Collector`]).
//! - `STREAM_PREFIX`: the manifests set `pulse`, which every other run would share; each distinct
//!   prefix becomes one unique to this run (equal prefixes stay equal).
//! - Image paths (`/models/...`, `ORT_DYLIB_PATH`, `DASHBOARD_DIR`, `/usr/local/bin/pulse-*`)
//!   map to local files through the Dockerfile's own `COPY` instructions
//!   (`pulse_e2e::dockerfile`); an `emptyDir` volume is a fresh folder.
//! - Flags a manifest leaves unset keep the binary's default, except listen addresses, stream
//!   prefixes and paths, which are moved as above (isolation, not configuration).
//!
//! Probe timing is compressed: probes are polled every [`POLL`] until they first pass, and the
//! liveness watch probes every [`LIVENESS_PERIOD`] instead of `periodSeconds` (stricter, never
//! laxer). The bounds are the kubelet's own: a startup probe must pass within `initialDelaySeconds
//! + failureThreshold × periodSeconds` (or the container is restarted), the first liveness probe
//! likewise from start-up, and `failureThreshold` consecutive liveness failures fail the test.
//! Readiness has no bound in Kubernetes other than the rollout's progress deadline; here it is
//! [`READY_DEADLINE`]. A `preStop` sleep is not waited out: its seconds are taken off the grace
//! period, which the kubelet counts from the start of `preStop`.
//!
//! One pod per Deployment (replicas and HPAs are a scheduler's business), and one overlay at a
//! time: two meshes at once on a small machine starve each other's probes. kubectl must be on
//! the PATH (or `PULSE_SKIP_MANIFESTS=1`, as for the `manifests` module); the binaries must be
//! built (`cargo build --workspace --bins`; a stale one is refused). What only a real cluster
//! can show is listed in docs/operations.md, "Cluster rehearsal".

mod cluster;
mod plan;
mod pod;
mod probes;

use std::time::{Duration, Instant};

use anyhow::Context;
use pulse_e2e::{collector::Collector, dockerfile::Dockerfile, manifests::render};

use self::{cluster::Cluster, plan::Planner};

/// How long a Deployment's container may take to become ready.
pub(crate) const READY_DEADLINE: Duration = Duration::from_secs(60);
/// How long one run of a Job may take (unless the Job's `activeDeadlineSeconds` is shorter).
pub(crate) const JOB_DEADLINE: Duration = Duration::from_secs(60);
/// How long init containers may take to finish once the migration has run.
pub(crate) const INIT_DEADLINE: Duration = Duration::from_secs(30);
/// How long init containers must keep waiting before the migration runs.
pub(crate) const INIT_MUST_WAIT: Duration = Duration::from_millis(1500);
/// How often a probe is tried until it first passes.
pub(crate) const POLL: Duration = Duration::from_millis(250);
/// How often the liveness watch probes (in place of `periodSeconds`).
pub(crate) const LIVENESS_PERIOD: Duration = Duration::from_secs(1);
/// Liveness probes every container must pass while the mesh works, at least.
pub(crate) const LIVENESS_HOLD: u32 = 3;
/// Posts published through the ingester under load, in calls of [`LOAD_BATCH`].
pub(crate) const LOAD_POSTS: usize = 300;
pub(crate) const LOAD_BATCH: usize = 50;
/// How long the load may take to be stored.
pub(crate) const LOAD_DEADLINE: Duration = Duration::from_secs(90);
/// How often resident memory is sampled.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The whole rehearsal of one overlay.
pub(crate) const WHOLE_DEADLINE: Duration = Duration::from_secs(240);

/// One overlay at a time (see the module documentation).
static ONE_OVERLAY_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_overlay_runs_as_a_cluster_would_run_it() -> anyhow::Result<()> {
    rehearse("dev").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_overlay_runs_as_a_cluster_would_run_it() -> anyhow::Result<()> {
    rehearse("production").await
}

async fn rehearse(overlay: &str) -> anyhow::Result<()> {
    let _turn = ONE_OVERLAY_AT_A_TIME.lock().await;
    let Some(manifests) = render(overlay)? else {
        return Ok(());
    };
    let dockerfile = Dockerfile::load()?;
    let (collector, collector_addr) = Collector::start().await?;
    let started = Instant::now();
    let plan = Planner::new(overlay, &manifests, &dockerfile, collector_addr)
        .and_then(Planner::plan)
        .with_context(|| format!("deploy/k8s/overlays/{overlay}: cannot plan the rehearsal"))?;
    let mut cluster = Cluster::new(plan)?;
    let result = tokio::time::timeout(WHOLE_DEADLINE, cluster.run(&collector))
        .await
        .unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "the rehearsal took over {WHOLE_DEADLINE:?}"
            ))
        });
    cluster.kill_all();
    let cleaned = cluster.clean_up().await;
    match result {
        Ok(report) => {
            println!(
                "{overlay}: rehearsed in {:.1} s\n{report}",
                started.elapsed().as_secs_f64()
            );
            cleaned?;
            let _ = std::fs::remove_dir_all(&cluster.plan.root);
            Ok(())
        }
        Err(error) => Err(error.context(format!(
            "deploy/k8s/overlays/{overlay}: the cluster rehearsal failed (logs in {})",
            cluster.plan.root.display()
        ))),
    }
}
