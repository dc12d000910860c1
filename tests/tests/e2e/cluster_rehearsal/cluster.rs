//! The overlay at work: everything started in the order Kubernetes would, the mesh exercised,
//! then stopped, with every check of the rehearsal on the way.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, PoisonError,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use pulse_e2e::{collector::Collector, feed::wait_for_post};
use pulse_proto::v1::{Post, PublishRequest, ingest_service_client::IngestServiceClient};
use serde_json::Value;

use super::{
    INIT_DEADLINE, INIT_MUST_WAIT, JOB_DEADLINE, LIVENESS_HOLD, LIVENESS_PERIOD, LOAD_BATCH,
    LOAD_DEADLINE, LOAD_POSTS, POLL,
    plan::{ContainerPlan, Plan, Role},
    pod::{MemorySampler, Process, describe},
    probes::{come_up, watch_liveness},
};

/// The running overlay.
pub(crate) struct Cluster {
    pub(crate) plan: Plan,
    processes: Vec<Arc<Process>>,
    memory: MemorySampler,
    http: reqwest::Client,
    /// A read key made after the migration, as an operator would (`pulse-store keys create`).
    read_key: String,
    /// What happened, line by line, for the test's output.
    report: String,
}

/// Containers on their way to ready: each task ends once its container is (or fails).
type ComingUp = Vec<tokio::task::JoinHandle<anyhow::Result<Duration>>>;

impl Cluster {
    pub(crate) fn new(plan: Plan) -> anyhow::Result<Self> {
        Ok(Self {
            plan,
            processes: Vec::new(),
            memory: MemorySampler::default(),
            // The kubelet does not follow redirects to elsewhere: a probe sees the 3xx itself.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            read_key: String::new(),
            report: String::new(),
        })
    }

    fn start(&mut self, plan: &ContainerPlan) -> anyhow::Result<Arc<Process>> {
        let process = Arc::new(Process::start(plan)?);
        self.memory.track(&process);
        self.processes.push(process.clone());
        Ok(process)
    }

    fn note(&mut self, label: &str, what: std::fmt::Arguments<'_>) {
        self.report.push_str(&format!("  {label:<55} {what}\n"));
    }

    /// Everything Kubernetes would do with the overlay, in its order, then the memory check;
    /// returns the report.
    pub(crate) async fn run(&mut self, collector: &Collector) -> anyhow::Result<String> {
        let sampler = self.memory.start();
        let result = self.lifecycle(collector).await;
        self.memory.stop();
        let _ = sampler.join();
        result?;
        self.check_memory()?;
        Ok(std::mem::take(&mut self.report))
    }

    async fn lifecycle(&mut self, collector: &Collector) -> anyhow::Result<()> {
        let moved: Vec<(String, String)> = self
            .plan
            .jobs
            .iter()
            .chain(&self.plan.mains)
            .chain(self.plan.inits.values().flatten())
            .filter(|plan| !plan.moved_defaults.is_empty())
            .map(|plan| (plan.label.clone(), plan.moved_defaults.join(" ")))
            .collect();
        for (label, defaults) in moved {
            self.note(
                &label,
                format_args!("unset in the manifests, moved: {defaults}"),
            );
        }
        let applied = Instant::now();
        let (waiting, mut coming_up) = self.apply().await?;
        self.migrate().await?;
        coming_up.extend(self.finish_init(waiting).await?);
        let mut not_ready = Vec::new();
        for task in coming_up {
            if let Err(e) = task.await? {
                not_ready.push(format!("{e:#}"));
            }
        }
        ensure!(not_ready.is_empty(), "{}", not_ready.join("\n\n"));
        self.note(
            "every container",
            format_args!("ready {:.1} s after apply", applied.elapsed().as_secs_f64()),
        );
        let traces = self.serve().await?;
        self.terminate().await?;
        self.check_spans(collector, &traces)
    }

    /// `kubectl apply`: init containers, and the containers of pods without any, start at
    /// once. The migration Job is held back until the init containers have looked once, so
    /// that their waiting for the schema is exercised; they must still be waiting.
    async fn apply(&mut self) -> anyhow::Result<(Vec<Arc<Process>>, ComingUp)> {
        let mut waiting = Vec::new();
        for inits in self.plan.inits.clone().into_values() {
            let [init] = inits.as_slice() else {
                bail!(
                    "{}: the rehearsal runs pods with one init container, not {}",
                    inits.first().map_or("?", |plan| plan.pod.as_str()),
                    inits.len()
                );
            };
            waiting.push(self.start(init)?);
        }
        let mut coming_up = Vec::new();
        for plan in self.plan.mains.clone() {
            if !self.plan.inits.contains_key(&plan.pod) {
                let process = self.start(&plan)?;
                coming_up.push(tokio::spawn(come_up(process, self.http.clone())));
            }
        }
        tokio::time::sleep(INIT_MUST_WAIT).await;
        for process in &waiting {
            if let Some(status) = process.exited()? {
                return Err(process.fail(format!(
                    "ended with {} before the migration ran: the service would start on a \
                     missing schema",
                    describe(status)
                )));
            }
        }
        Ok((waiting, coming_up))
    }

    /// The migration Job, twice: every upgrade runs it again, so a run that finds the schema
    /// current must succeed, applying nothing.
    async fn migrate(&mut self) -> anyhow::Result<()> {
        for plan in self.plan.jobs.clone() {
            let deadline = plan.deadline.map_or(JOB_DEADLINE, |d| d.min(JOB_DEADLINE));
            for run in 1..=2 {
                let logged_before = std::fs::metadata(&plan.log).map_or(0, |m| m.len());
                let process = self.start(&plan)?;
                match process.wait_until(Instant::now() + deadline).await? {
                    Some(status) if status.success() => {}
                    Some(status) => {
                        return Err(
                            process.fail(format!("run {run} ended with {}", describe(status)))
                        );
                    }
                    None => {
                        return Err(
                            process.fail(format!("run {run} did not finish within {deadline:?}"))
                        );
                    }
                }
                if run == 2 && plan.args.first().map(String::as_str) == Some("migrate") {
                    let log = std::fs::read(&plan.log)?;
                    let second = String::from_utf8_lossy(
                        log.get(logged_before as usize..).unwrap_or_default(),
                    );
                    // pulse-store logs what it applied: `"applied":"[]"` when nothing.
                    let applied_nothing = second
                        .lines()
                        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                        .any(|line| {
                            line["message"] == "schema is current" && line["applied"] == "[]"
                        });
                    if !applied_nothing {
                        return Err(process
                            .fail("run 2 did not report a current schema with nothing applied"));
                    }
                }
                let took = process.started.elapsed().as_secs_f64();
                self.note(&plan.label, format_args!("run {run} done in {took:.1} s"));
            }
            if plan.args.first().map(String::as_str) == Some("migrate") {
                self.read_key = create_read_key(&plan)?;
            }
        }
        ensure!(
            !self.read_key.is_empty(),
            "no migration Job to create a key with"
        );
        Ok(())
    }

    /// Init containers end once the schema is current; then their pods' containers start.
    async fn finish_init(&mut self, waiting: Vec<Arc<Process>>) -> anyhow::Result<ComingUp> {
        let migrated = Instant::now();
        let mut coming_up = Vec::new();
        for process in waiting {
            match process.wait_until(migrated + INIT_DEADLINE).await? {
                Some(status) if status.success() => {}
                Some(status) => {
                    return Err(process.fail(format!(
                        "ended with {} (Init:Error, restarted in a cluster)",
                        describe(status)
                    )));
                }
                None => {
                    return Err(process.fail(format!(
                        "still waiting {INIT_DEADLINE:?} after the migration finished"
                    )));
                }
            }
            let took = migrated.elapsed().as_secs_f64();
            self.note(
                &process.plan.label,
                format_args!("done {took:.1} s after the migration"),
            );
            for plan in self.plan.mains.clone() {
                if plan.pod == process.plan.pod {
                    let started = self.start(&plan)?;
                    coming_up.push(tokio::spawn(come_up(started, self.http.clone())));
                }
            }
        }
        Ok(coming_up)
    }

    /// The mesh at work while every container's liveness probe is watched; the probes must
    /// keep passing, at least [`LIVENESS_HOLD`] times each. Returns the traces to look for.
    async fn serve(&mut self) -> anyhow::Result<Traces> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut watches = Vec::new();
        for process in self.mains() {
            let count = Arc::new(AtomicU32::new(0));
            let task = tokio::spawn(watch_liveness(
                process.clone(),
                self.http.clone(),
                count.clone(),
                stop.clone(),
            ));
            watches.push((process, count, task));
        }
        let exercised = self.exercise().await;
        let hold_until = Instant::now() + LIVENESS_PERIOD * (LIVENESS_HOLD + 5);
        while watches.iter().any(|(_, count, task)| {
            count.load(Ordering::Relaxed) < LIVENESS_HOLD && !task.is_finished()
        }) && Instant::now() < hold_until
        {
            tokio::time::sleep(POLL).await;
        }
        stop.store(true, Ordering::Relaxed);
        let mut unhealthy = Vec::new();
        for (process, count, task) in watches {
            let probes = count.load(Ordering::Relaxed);
            if let Err(e) = task.await? {
                unhealthy.push(format!("{e:#}"));
            } else if process.plan.spec.get("livenessProbe").is_some() && probes < LIVENESS_HOLD {
                unhealthy.push(format!(
                    "{}: only {probes} liveness probes ran",
                    process.plan.label
                ));
            }
        }
        ensure!(unhealthy.is_empty(), "{}", unhealthy.join("\n\n"));
        exercised
    }

    /// `preStop`, then SIGTERM: each container must end, with status 0, within its grace
    /// period (less the `preStop` sleep, which is not waited out).
    async fn terminate(&mut self) -> anyhow::Result<()> {
        let mut stopping = Vec::new();
        for process in self.mains() {
            stopping.push(tokio::spawn(async move {
                let budget = process.plan.grace.saturating_sub(process.plan.pre_stop);
                let sent = Instant::now();
                process.signal("TERM", false)?;
                match process.wait_until(sent + budget).await? {
                    Some(status) if status.success() => {
                        Ok((process.plan.label.clone(), sent.elapsed()))
                    }
                    Some(status) => {
                        Err(process.fail(format!("ended with {} after SIGTERM", describe(status))))
                    }
                    None => Err(process.fail(format!(
                        "still running {budget:?} after SIGTERM (terminationGracePeriodSeconds \
                         {}s less the preStop sleep): the kubelet would SIGKILL it",
                        process.plan.grace.as_secs()
                    ))),
                }
            }));
        }
        let mut stuck = Vec::new();
        for task in stopping {
            match task.await? {
                Ok((label, took)) => {
                    let took = took.as_secs_f64();
                    self.note(&label, format_args!("stopped {took:.1} s after SIGTERM"));
                }
                Err(e) => stuck.push(format!("{e:#}")),
            }
        }
        ensure!(stuck.is_empty(), "{}", stuck.join("\n\n"));
        Ok(())
    }

    /// Every service's spans reached the collector (at exit at the latest), and the traced
    /// post's and query's came from every service on their way, whatever the sampler's ratio:
    /// a sampled caller's decision is followed. The migration Job's one span is a root span,
    /// which production's sampler keeps one time in ten, so it is not required here
    /// (the `exit_with_export` module checks that it leaves the process).
    fn check_spans(&mut self, collector: &Collector, traces: &Traces) -> anyhow::Result<()> {
        let expected: BTreeSet<String> = self
            .mains()
            .iter()
            .filter_map(|process| process.plan.traced_service().map(str::to_owned))
            .collect();
        let received: BTreeSet<String> = collector.all().into_iter().map(|r| r.service).collect();
        let missing: Vec<&String> = expected.difference(&received).collect();
        ensure!(
            missing.is_empty(),
            "no spans reached the collector from {missing:?} (received from {received:?})"
        );
        let paths: [(&[u8], &str, &[&str]); 2] = [
            (
                &traces.post,
                "the published post",
                &[
                    "pulse-ingester",
                    "pulse-worker",
                    "pulse-inference",
                    "pulse-gateway",
                ],
            ),
            (
                &traces.query,
                "the REST query",
                &["pulse-gateway", "pulse-analytics"],
            ),
        ];
        for (trace, what, services) in paths {
            let in_trace: BTreeSet<String> = collector
                .trace(trace)
                .into_iter()
                .map(|r| r.service)
                .collect();
            for service in services {
                ensure!(
                    in_trace.contains(*service),
                    "the trace of {what} has no span from {service} (it has {in_trace:?}): a \
                     sampled caller's decision must be followed"
                );
            }
        }
        self.note("spans", format_args!("received from {received:?}"));
        Ok(())
    }

    /// Each container's peak resident memory against its limit.
    fn check_memory(&mut self) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        let mut seen = BTreeSet::new();
        for process in self.processes.clone() {
            let plan = &process.plan;
            if !seen.insert(plan.label.clone()) {
                continue; // The Job's second run: one peak per container.
            }
            let peak = self.memory.peak(&plan.label).unwrap_or(0);
            let limit = plan.memory_limit.map_or("none".to_owned(), mib);
            self.note(
                &plan.label,
                format_args!("peak {:>9} of limit {limit}", mib(peak)),
            );
            if let Some(limit) = plan.memory_limit
                && peak >= limit
            {
                failures.push(format!(
                    "{}: peak resident memory {} reaches its limit {} (OOMKilled in a cluster)",
                    plan.label,
                    mib(peak),
                    mib(limit)
                ));
            }
        }
        ensure!(failures.is_empty(), "{}", failures.join("\n"));
        Ok(())
    }

    /// The Deployments' containers started so far.
    fn mains(&self) -> Vec<Arc<Process>> {
        self.processes
            .iter()
            .filter(|process| process.plan.role == Role::Main)
            .cloned()
            .collect()
    }

    /// The mesh at work: a post from the ingester to the WebSocket, a traced REST query, the
    /// dashboard, and [`LOAD_POSTS`] posts stored.
    async fn exercise(&self) -> anyhow::Result<Traces> {
        let gateway = &self.plan.gateway;
        let (mut ws, _) = tokio_tungstenite::connect_async(pulse_e2e::ws_request(
            &format!("ws://{gateway}/ws/sentiment"),
            &self.read_key,
        )?)
        .await
        .with_context(|| format!("WebSocket /ws/sentiment on the gateway ({gateway})"))?;
        let mut ingester = IngestServiceClient::connect(format!("http://{}", self.plan.ingester))
            .await
            .context("connecting to the ingester's Service")?;
        let run = &self
            .plan
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();

        // The live feed follows events from when the gateway subscribed: publish until one
        // arrives, then the traced post.
        let mut arrived = false;
        for attempt in 0..20 {
            let id = format!("{run}-warm-{attempt}");
            publish(&mut ingester, vec![post(&id)], None).await?;
            if wait_for_post(&mut ws, &id, Duration::from_secs(2)).await? {
                arrived = true;
                break;
            }
        }
        ensure!(
            arrived,
            "no post published through the ingester reached the gateway's WebSocket"
        );
        let post_trace = uuid::Uuid::new_v4().simple().to_string();
        let id = format!("{run}-traced");
        publish(
            &mut ingester,
            vec![post(&id)],
            Some(format!("00-{post_trace}-00f067aa0ba902b7-01")),
        )
        .await?;
        ensure!(
            wait_for_post(&mut ws, &id, Duration::from_secs(20)).await?,
            "the traced post did not reach the gateway's WebSocket"
        );

        // A REST query with a sampled trace: the gateway asks analytics.
        let query_trace = uuid::Uuid::new_v4().simple().to_string();
        for path in ["/api/posts?limit=5", "/api/sentiment/distribution"] {
            let response = self
                .http
                .get(format!("http://{gateway}{path}"))
                .bearer_auth(&self.read_key)
                .header(
                    "traceparent",
                    format!("00-{query_trace}-00f067aa0ba902b7-01"),
                )
                .timeout(Duration::from_secs(10))
                .send()
                .await?;
            ensure!(
                response.status().is_success(),
                "GET {path} through the gateway answered {}",
                response.status()
            );
        }
        if let Some(dist) = &self.plan.dashboard
            && dist.join("index.html").is_file()
        {
            let response = self.http.get(format!("http://{gateway}/")).send().await?;
            ensure!(
                response.status().is_success(),
                "the gateway does not serve the dashboard at / ({})",
                response.status()
            );
        }

        // Load: a few hundred posts, all stored.
        let ids: Vec<String> = (0..LOAD_POSTS).map(|i| format!("{run}-load-{i}")).collect();
        for chunk in ids.chunks(LOAD_BATCH) {
            publish(
                &mut ingester,
                chunk.iter().map(|id| post(id)).collect(),
                None,
            )
            .await?;
        }
        let database = self
            .plan
            .databases
            .first()
            .context("no database in the overlay")?;
        let pool = pulse_store::connect_pool(&database.url, 1)?;
        let deadline = Instant::now() + LOAD_DEADLINE;
        loop {
            let client = pool.get().await?;
            let stored: BTreeSet<String> = pulse_store::posts::all_ids(&client)
                .await?
                .into_iter()
                .collect();
            let missing = ids.iter().filter(|id| !stored.contains(*id)).count();
            if missing == 0 {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "{missing} of {LOAD_POSTS} posts published through the ingester were not stored \
                 within {LOAD_DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let _ = ws.close(None).await;
        Ok(Traces {
            post: from_hex(&post_trace),
            query: from_hex(&query_trace),
        })
    }

    /// Ends whatever still runs, whole process groups (an init container's shell and its
    /// children too).
    pub(crate) fn kill_all(&self) {
        for process in &self.processes {
            if matches!(process.exited(), Ok(None)) {
                let _ = process.signal("KILL", true);
                let _ = process
                    .child
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .wait();
            }
        }
    }

    /// Drops the run's databases and Redis keys.
    pub(crate) async fn clean_up(&self) -> anyhow::Result<()> {
        for database in &self.plan.databases {
            database.drop_now().await?;
        }
        for prefix in &self.plan.prefixes {
            pulse_testkit::delete_redis_keys(prefix).await?;
        }
        Ok(())
    }
}

/// The trace ids of the published post and of the REST query, both sampled by their caller.
struct Traces {
    post: Vec<u8>,
    query: Vec<u8>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// `pulse-store keys create --scope read` with the migration Job's program and environment.
fn create_read_key(job: &ContainerPlan) -> anyhow::Result<String> {
    let output = std::process::Command::new(&job.program)
        .args(["keys", "create", "--name", "rehearsal", "--scope", "read"])
        .env_clear()
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&job.cwd)
        .output()
        .with_context(|| format!("running {} keys create", job.program.display()))?;
    ensure!(
        output.status.success(),
        "keys create failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

fn post(id: &str) -> Post {
    Post {
        post_id: id.to_owned(),
        source: "twitter".to_owned(),
        author: "rehearsal".to_owned(),
        content: "The rollout went smoothly and the new release feels fast".to_owned(),
        created_at: Some(pulse_domain::datetime_to_timestamp(chrono::Utc::now())),
    }
}

async fn publish(
    client: &mut IngestServiceClient<tonic::transport::Channel>,
    posts: Vec<Post>,
    traceparent: Option<String>,
) -> anyhow::Result<()> {
    let count = posts.len();
    let mut request = tonic::Request::new(PublishRequest { posts });
    if let Some(traceparent) = traceparent {
        request
            .metadata_mut()
            .insert("traceparent", traceparent.parse()?);
    }
    let response = client
        .publish(request)
        .await
        .context("IngestService.Publish")?
        .into_inner();
    ensure!(
        response.accepted_count as usize == count,
        "the ingester accepted {} of {count} posts: {:?}",
        response.accepted_count,
        response.results
    );
    Ok(())
}

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}
