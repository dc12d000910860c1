//! Probes as the kubelet runs them (`grpc`, `httpGet`, `tcpSocket`, `exec`), and the start-up
//! and liveness rules built on them.

use std::{
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use pulse_e2e::manifests::{array, container_port, str_at};
use serde_json::Value;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::{
    LIVENESS_PERIOD, POLL, READY_DEADLINE,
    pod::{Process, describe},
};

/// A probe's timing fields, with Kubernetes' defaults.
struct Timing {
    initial_delay: Duration,
    period: Duration,
    timeout: Duration,
    failure_threshold: u32,
}

impl Timing {
    fn of(probe: &Value) -> Self {
        let number =
            |field: &str, default: u64| probe.get(field).and_then(Value::as_u64).unwrap_or(default);
        Self {
            initial_delay: Duration::from_secs(number("initialDelaySeconds", 0)),
            period: Duration::from_secs(number("periodSeconds", 10)),
            timeout: Duration::from_secs(number("timeoutSeconds", 1)),
            failure_threshold: u32::try_from(number("failureThreshold", 3)).unwrap_or(u32::MAX),
        }
    }

    /// How long the kubelet lets the probe fail before it restarts the container.
    fn kubelet_bound(&self) -> Duration {
        self.initial_delay + self.period * self.failure_threshold
    }
}

/// One probe of `process`, as the kubelet runs it; `Err` says why it failed.
async fn probe(process: &Process, kind: &str, http: &reqwest::Client) -> Result<(), String> {
    let Some(spec) = process.plan.spec.get(kind) else {
        return Ok(());
    };
    let timing = Timing::of(spec);
    let local_port = |port: &Value| -> Result<u16, String> {
        let number = container_port(&process.plan.spec, port)
            .or_else(|| port.as_u64().and_then(|n| u16::try_from(n).ok()))
            .ok_or_else(|| format!("{kind} names port {port}, which the container lacks"))?;
        process
            .plan
            .ports
            .get(&number)
            .copied()
            .ok_or_else(|| format!("{kind}: port {number} has no local port"))
    };
    if let Some(grpc) = spec.get("grpc") {
        let port = local_port(grpc.get("port").unwrap_or(&Value::Null))?;
        let service = str_at(grpc, &["service"]).unwrap_or_default().to_owned();
        let check = async {
            let channel =
                tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
                    .map_err(|e| e.to_string())?
                    .connect()
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
            let response = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: service.clone(),
                })
                .await
                .map_err(|e| format!("grpc.health.v1 Check({service:?}): {}", e.message()))?;
            let status = response.get_ref().status;
            if status == i32::from(ServingStatus::Serving) {
                Ok(())
            } else {
                Err(format!(
                    "grpc.health.v1 Check({service:?}) answered status {status}"
                ))
            }
        };
        return tokio::time::timeout(timing.timeout, check)
            .await
            .unwrap_or_else(|_| Err(format!("no gRPC health answer within {:?}", timing.timeout)));
    }
    if let Some(get) = spec.get("httpGet") {
        let port = local_port(get.get("port").unwrap_or(&Value::Null))?;
        if str_at(get, &["scheme"]).is_some_and(|scheme| scheme != "HTTP") {
            return Err("httpGet with a scheme other than HTTP".to_owned());
        }
        let path = str_at(get, &["path"]).unwrap_or("/");
        let mut request = http
            .get(format!("http://127.0.0.1:{port}{path}"))
            .timeout(timing.timeout);
        for header in array(get, &["httpHeaders"]) {
            request = request.header(
                str_at(header, &["name"]).unwrap_or_default(),
                str_at(header, &["value"]).unwrap_or_default(),
            );
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status().as_u16();
        // The kubelet's rule: 200 to 399 passes.
        return if (200..400).contains(&status) {
            Ok(())
        } else {
            Err(format!("GET {path} answered {status}"))
        };
    }
    if let Some(tcp) = spec.get("tcpSocket") {
        let port = local_port(tcp.get("port").unwrap_or(&Value::Null))?;
        return tokio::time::timeout(
            timing.timeout,
            tokio::net::TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        .map_err(|_| "tcpSocket: no connection in time".to_owned())?
        .map(|_| ())
        .map_err(|e| format!("tcpSocket: {e}"));
    }
    if let Some(exec) = spec.get("exec") {
        let argv: Vec<&str> = array(exec, &["command"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let Some((program, args)) = argv.split_first() else {
            return Err("exec without a command".to_owned());
        };
        let started = Command::new(program)
            .args(args)
            .env_clear()
            .envs(process.plan.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&process.plan.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = started.map_err(|e| format!("exec {argv:?}: {e}"))?;
        let deadline = Instant::now() + timing.timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(format!("exec {argv:?} ended with {}", describe(status)));
                }
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("exec {argv:?} took over {:?}", timing.timeout));
                }
                Err(e) => return Err(format!("exec {argv:?}: {e}")),
            }
        }
    }
    Err(format!(
        "{kind} has a handler the rehearsal does not know: {spec}"
    ))
}

/// Polls probe `kind` until it passes; fails once `bound` has passed since `since`, or when
/// the process exits.
async fn pass(
    process: &Process,
    kind: &str,
    http: &reqwest::Client,
    since: Instant,
    bound: Duration,
    why: &str,
) -> anyhow::Result<()> {
    let Some(spec) = process.plan.spec.get(kind) else {
        return Ok(());
    };
    tokio::time::sleep_until(tokio::time::Instant::from_std(
        since + Timing::of(spec).initial_delay,
    ))
    .await;
    loop {
        if let Some(status) = process.exited()? {
            return Err(process.fail(format!(
                "exited with {} before its {kind} passed (CrashLoopBackOff in a cluster)",
                describe(status)
            )));
        }
        let last = match probe(process, kind, http).await {
            Ok(()) => return Ok(()),
            Err(why_not) => why_not,
        };
        if since.elapsed() > bound {
            return Err(process.fail(format!(
                "{kind} still failing after {bound:?} ({why}); last failure: {last}"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Start-up as the kubelet sees it: the startup probe, then the first liveness probe, each
/// within what the kubelet allows, and readiness within [`READY_DEADLINE`]; returns how long
/// the container took to become ready.
pub(crate) async fn come_up(
    process: Arc<Process>,
    http: reqwest::Client,
) -> anyhow::Result<Duration> {
    let spec = &process.plan.spec;
    let mut since = process.started;
    if let Some(startup) = spec.get("startupProbe") {
        let timing = Timing::of(startup);
        let (bound, why) = bounded(timing.kubelet_bound());
        pass(&process, "startupProbe", &http, since, bound, why).await?;
        since = Instant::now();
    }
    if let Some(liveness) = spec.get("livenessProbe") {
        let (bound, why) = bounded(Timing::of(liveness).kubelet_bound());
        pass(&process, "livenessProbe", &http, since, bound, why).await?;
    }
    pass(
        &process,
        "readinessProbe",
        &http,
        process.started,
        READY_DEADLINE,
        "the rehearsal's readiness deadline",
    )
    .await?;
    Ok(process.started.elapsed())
}

/// The kubelet's bound, or the rehearsal's deadline when that is shorter.
fn bounded(kubelet: Duration) -> (Duration, &'static str) {
    if kubelet <= READY_DEADLINE {
        (
            kubelet,
            "the kubelet would restart it: initialDelaySeconds + failureThreshold x periodSeconds",
        )
    } else {
        (READY_DEADLINE, "the rehearsal's readiness deadline")
    }
}

/// Probes liveness every [`LIVENESS_PERIOD`] until `stop`; fails on `failureThreshold`
/// consecutive failures or when the process exits. Counts the probes in `count`.
pub(crate) async fn watch_liveness(
    process: Arc<Process>,
    http: reqwest::Client,
    count: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let threshold = process
        .plan
        .spec
        .get("livenessProbe")
        .map_or(u32::MAX, |spec| Timing::of(spec).failure_threshold);
    let mut failures = 0;
    while !stop.load(Ordering::Relaxed) {
        if let Some(status) = process.exited()? {
            return Err(process.fail(format!(
                "exited with {} while serving (a restart in a cluster)",
                describe(status)
            )));
        }
        match probe(&process, "livenessProbe", &http).await {
            Ok(()) => failures = 0,
            Err(why) => {
                failures += 1;
                if failures >= threshold {
                    return Err(process.fail(format!(
                        "livenessProbe failed {failures} times in a row (the kubelet would \
                         restart it): {why}"
                    )));
                }
            }
        }
        count.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(LIVENESS_PERIOD).await;
    }
    Ok(())
}
