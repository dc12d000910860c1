//! One post, one trace; every admin endpoint measures.
//!
//! The five services run as separate processes, their built binaries (`telemetry::init` with
//! the binary's name, then `run` with a configuration read from the environment), so each has
//! its own tracer provider and `service.name`, exporting OTLP/gRPC to a collector inside this
//! test. One post is published through the gateway with a `traceparent` the test chose; the
//! test then checks that every span of the post's life (gateway HTTP, ingester, worker,
//! inference, database write, event publication, WebSocket broadcast) arrived under that one
//! trace id, from the right service, with the right parent. It also scrapes each service's
//! admin `/metrics` before and after and checks that the counters of that work moved.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use pulse_e2e::{
    binary,
    collector::{Collector, Received},
    feed::wait_for_post,
    migrated_database,
};
use pulse_testkit::{
    TestDatabase, default_model_bundle, delete_redis_keys, free_address, ort_library, redis_url,
    unique_name, workspace_root,
};
use serde_json::{Value, json};

const POST_TEXT: &str = "The new release is wonderful, everything feels faster";

/// Every metric a query of the Grafana dashboard (`deploy/grafana/pulse.json`) reads is one the
/// services export, so a renamed metric cannot leave a panel silently empty.
fn dashboard_queries_use_exported_metrics(scraped: &HashMap<&str, String>) -> anyhow::Result<()> {
    let path = workspace_root().join("deploy/grafana/pulse.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("parsing {}", path.display()))?;
    let exported: std::collections::HashSet<&str> = scraped
        .values()
        .flat_map(|text| text.lines())
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();
    let panels = dashboard["panels"]
        .as_array()
        .context("the dashboard has no panels")?;
    let mut missing = Vec::new();
    let mut queries = 0;
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().context("a target without expr")?;
            queries += 1;
            let names = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| word.starts_with("pulse_"));
            for name in names {
                if !exported.contains(name) {
                    missing.push(format!("{name} (panel {:?})", panel["title"]));
                }
            }
        }
    }
    ensure!(queries > 0, "the dashboard has no queries");
    ensure!(
        missing.is_empty(),
        "dashboard queries read metrics no service exports: {missing:#?}"
    );
    Ok(())
}

/// The service processes; killed when dropped, whatever happened.
struct Services {
    children: Vec<(String, Child)>,
    logs: PathBuf,
}

impl Services {
    fn spawn(&mut self, role: &str, env: &[(&str, String)]) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.logs.join(format!("{role}.log")))?;
        let child = Command::new(binary(&format!("pulse-{role}"))?)
            .env_remove("OTEL_SERVICE_NAME")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {role}"))?;
        self.children.push((role.to_owned(), child));
        Ok(())
    }

    fn log(&self, role: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{role}.log"))).unwrap_or_default()
    }

    /// The last lines each service logged, for a failure's report.
    fn log_tails(&self) -> String {
        let mut out = String::new();
        for (role, _) in &self.children {
            let text =
                std::fs::read_to_string(self.logs.join(format!("{role}.log"))).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            out.push_str(&format!("\n--- {role} ---\n{tail}\n"));
        }
        out
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.logs);
    }
}

/// Waits until every admin endpoint answers `/readyz` with 200.
async fn wait_ready(http: &reqwest::Client, admins: &[(&str, SocketAddr)]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    for (role, addr) in admins {
        loop {
            let ready = http
                .get(format!("http://{addr}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            ensure!(Instant::now() < deadline, "{role} did not become ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Sums the samples of `name` whose labels contain every one of `labels` (`key="value"`).
fn sample(exposition: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, label_text) = series.split_once('{').unwrap_or((series, ""));
        if metric == name && labels.iter().all(|l| label_text.contains(l)) {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    found
}

async fn scrape(http: &reqwest::Client, addr: SocketAddr) -> anyhow::Result<String> {
    Ok(http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Publishes one post through the gateway; returns its stored id (in the key's namespace).
async fn publish(
    http: &reqwest::Client,
    gateway: SocketAddr,
    post_id: &str,
    traceparent: Option<&str>,
) -> anyhow::Result<String> {
    let mut request = http
        .post(format!("http://{gateway}/api/posts"))
        .json(&json!({"posts": [{
            "post_id": post_id,
            "source": "twitter",
            "author": "observer",
            "content": POST_TEXT,
        }]}));
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response: Value = request.send().await?.error_for_status()?.json().await?;
    ensure!(
        response["metadata"]["accepted"] == 1,
        "not accepted: {response}"
    );
    Ok(response["data"][0]["post_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_post_is_one_trace_and_every_service_is_measured() -> anyhow::Result<()> {
    let (collector, collector_addr) = Collector::start().await?;

    let database = migrated_database("observability").await?;
    let prefix = unique_name("observability");
    let logs = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&logs)?;
    let mut services = Services {
        children: Vec::new(),
        logs,
    };
    let result = run_scenario(
        &collector,
        collector_addr,
        &database,
        &prefix,
        &mut services,
    )
    .await;
    let result = result.map_err(|e| e.context(services.log_tails()));
    drop(services);
    database.drop_now().await?;
    delete_redis_keys(&prefix).await?;
    result
}

async fn run_scenario(
    collector: &Collector,
    collector_addr: SocketAddr,
    database: &TestDatabase,
    prefix: &str,
    services: &mut Services,
) -> anyhow::Result<()> {
    let [inference, analytics, ingester, gateway] = [
        free_address()?,
        free_address()?,
        free_address()?,
        free_address()?,
    ];
    let admin: HashMap<&str, SocketAddr> =
        ["inference", "analytics", "worker", "ingester", "gateway"]
            .into_iter()
            .map(|role| Ok((role, free_address()?)))
            .collect::<anyhow::Result<_>>()?;
    let common = |role: &str| -> Vec<(&'static str, String)> {
        vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{collector_addr}"),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            (
                "RUST_LOG",
                if role == "gateway" {
                    "info,pulse_gateway::server=debug"
                } else {
                    "info"
                }
                .into(),
            ),
            ("ADMIN_ADDR", admin[role].to_string()),
            ("DATABASE_URL", database.url.clone()),
            ("REDIS_URL", redis_url()),
            ("STREAM_PREFIX", prefix.to_owned()),
        ]
    };
    let model = default_model_bundle().display().to_string();
    let with = |role: &str, extra: Vec<(&'static str, String)>| {
        let mut env = common(role);
        env.extend(extra);
        env
    };
    services.spawn(
        "inference",
        &with(
            "inference",
            vec![
                ("INFERENCE_ADDR", inference.to_string()),
                ("SENTIMENT_MODEL_DIR", model.clone()),
                ("EMOTION_MODEL_DIR", model),
                ("ORT_DYLIB_PATH", ort_library().display().to_string()),
                ("ORT_INTRA_THREADS", "1".into()),
            ],
        ),
    )?;
    services.spawn(
        "analytics",
        &with("analytics", vec![("ANALYTICS_ADDR", analytics.to_string())]),
    )?;
    services.spawn(
        "worker",
        &with(
            "worker",
            vec![
                ("INFERENCE_URL", format!("http://{inference}")),
                ("CONSUMER_NAME", "observed-worker".into()),
                ("BLOCK_MS", "200".into()),
            ],
        ),
    )?;
    services.spawn(
        "ingester",
        &with(
            "ingester",
            vec![
                ("INGESTER_ADDR", ingester.to_string()),
                ("POSTS_PER_MINUTE", "0".into()),
            ],
        ),
    )?;
    services.spawn(
        "gateway",
        &with(
            "gateway",
            vec![
                ("GATEWAY_ADDR", gateway.to_string()),
                ("ANALYTICS_URL", format!("http://{analytics}")),
                ("INFERENCE_URL", format!("http://{inference}")),
                ("INGESTER_URL", format!("http://{ingester}")),
                (
                    "DASHBOARD_DIR",
                    workspace_root()
                        .join("dashboard/dist")
                        .display()
                        .to_string(),
                ),
            ],
        ),
    )?;

    let key =
        pulse_e2e::create_key(&database.url, "observability", &[pulse_e2e::Scope::Admin]).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {key}").parse()?,
            )]
            .into_iter()
            .collect(),
        )
        .build()?;
    let mut roles: Vec<(&str, SocketAddr)> = admin.iter().map(|(r, a)| (*r, *a)).collect();
    roles.sort();
    wait_ready(&http, &roles).await?;

    // The live feed follows events from the moment the gateway subscribed: warm up until a post
    // makes it all the way to a socket.
    let (mut ws, _) = tokio_tungstenite::connect_async(pulse_e2e::ws_request(
        &format!("ws://{gateway}/ws/sentiment"),
        &key,
    )?)
    .await?;
    let mut warmed = false;
    for attempt in 0..30 {
        let id = publish(&http, gateway, &format!("warm-up-{attempt}"), None).await?;
        if wait_for_post(&mut ws, &id, Duration::from_secs(2)).await? {
            warmed = true;
            break;
        }
    }
    ensure!(warmed, "no post reached the WebSocket");

    let before: HashMap<&str, String> = {
        let mut out = HashMap::new();
        for (role, addr) in &roles {
            out.insert(*role, scrape(&http, *addr).await?);
        }
        out
    };

    // The post under observation, sent as a client that already has a trace would send it.
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let client_span_id = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{client_span_id}-01");
    let post_id = publish(
        &http,
        gateway,
        &format!("observed-{}", &trace_id[..8]),
        Some(&traceparent),
    )
    .await?;
    ensure!(
        wait_for_post(&mut ws, &post_id, Duration::from_secs(20)).await?,
        "the observed post did not reach the WebSocket"
    );
    // A read query, so the analytics service has work of its own to count.
    http.get(format!("http://{gateway}/api/sentiment/distribution"))
        .send()
        .await?
        .error_for_status()?;

    // ---- the trace --------------------------------------------------------------------------
    let trace_bytes = from_hex(&trace_id);
    let stream = format!("{prefix}:posts");
    let events = format!("{prefix}:events");
    // (key, service, span name, kind)
    let expected: [(&str, &str, String, SpanKind); 12] = [
        (
            "http",
            "pulse-gateway",
            "POST /api/posts".into(),
            SpanKind::Server,
        ),
        (
            "publish-call",
            "pulse-gateway",
            "pulse.v1.IngestService/Publish".into(),
            SpanKind::Client,
        ),
        (
            "publish-rpc",
            "pulse-ingester",
            "pulse.v1.IngestService/Publish".into(),
            SpanKind::Server,
        ),
        (
            "publish",
            "pulse-ingester",
            "ingest.publish".into(),
            SpanKind::Producer,
        ),
        (
            "process",
            "pulse-worker",
            format!("process {stream}"),
            SpanKind::Consumer,
        ),
        (
            "batch",
            "pulse-worker",
            "worker.batch".into(),
            SpanKind::Internal,
        ),
        (
            "analyze-call",
            "pulse-worker",
            "pulse.v1.InferenceService/AnalyzeBatch".into(),
            SpanKind::Client,
        ),
        (
            "analyze-rpc",
            "pulse-inference",
            "pulse.v1.InferenceService/AnalyzeBatch".into(),
            SpanKind::Server,
        ),
        (
            "analyze",
            "pulse-inference",
            "inference.analyze_batch".into(),
            SpanKind::Internal,
        ),
        (
            "store",
            "pulse-worker",
            "INSERT social_media_posts sentiment_analysis".into(),
            SpanKind::Client,
        ),
        (
            "events",
            "pulse-worker",
            format!("send {events}"),
            SpanKind::Producer,
        ),
        (
            "broadcast",
            "pulse-gateway",
            "broadcast live event".into(),
            SpanKind::Producer,
        ),
    ];
    let parents = [
        ("publish-call", "http"),
        ("publish-rpc", "publish-call"),
        ("publish", "publish-rpc"),
        ("process", "publish"),
        ("batch", "process"),
        ("analyze-call", "batch"),
        ("analyze-rpc", "analyze-call"),
        ("analyze", "analyze-rpc"),
        ("store", "batch"),
        ("events", "batch"),
        ("broadcast", "process"),
    ];
    let find = |spans: &[Received]| -> HashMap<&'static str, Received> {
        let mut found = HashMap::new();
        for (key, service, name, kind) in &expected {
            if let Some(r) = spans.iter().find(|r| {
                r.service == *service && r.span.name == *name && r.span.kind == *kind as i32
            }) {
                found.insert(*key, r.clone());
            }
        }
        found
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let (spans, found) = loop {
        let spans = collector.trace(&trace_bytes);
        let found = find(&spans);
        if found.len() == expected.len() {
            break (spans, found);
        }
        if Instant::now() > deadline {
            let missing: Vec<&str> = expected
                .iter()
                .filter(|(k, ..)| !found.contains_key(k))
                .map(|(k, ..)| *k)
                .collect();
            let got: Vec<String> = spans
                .iter()
                .map(|r| format!("{} {:?} kind {}", r.service, r.span.name, r.span.kind))
                .collect();
            let total = collector.all().len();
            bail!(
                "spans missing from trace {trace_id}: {missing:?}; received: {got:#?} ({total} spans in all)"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        hex(&found["http"].span.parent_span_id),
        client_span_id,
        "the gateway's span continues the caller's trace"
    );
    for (child, parent) in parents {
        assert_eq!(
            hex(&found[child].span.parent_span_id),
            hex(&found[parent].span.span_id),
            "{child} should be a child of {parent}"
        );
    }
    // Nothing in the trace hangs off a span that was never exported.
    let ids: Vec<&[u8]> = spans.iter().map(|r| r.span.span_id.as_slice()).collect();
    for r in &spans {
        let parent = r.span.parent_span_id.as_slice();
        assert!(
            ids.contains(&parent) || hex(parent) == client_span_id,
            "span {:?} of {} has a parent outside the trace",
            r.span.name,
            r.service
        );
    }
    // The post's processing appears in this trace only.
    let elsewhere = collector
        .all()
        .into_iter()
        .filter(|r| r.attribute("pulse.post_id").as_deref() == Some(post_id.as_str()))
        .filter(|r| r.span.trace_id != trace_bytes)
        .count();
    assert_eq!(elsewhere, 0, "spans of {post_id} outside its trace");
    assert_eq!(
        found["process"].attribute("pulse.post_id").as_deref(),
        Some(post_id.as_str())
    );
    // Semantic conventions on the way.
    assert_eq!(
        found["http"].attribute("http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        found["http"].attribute("http.route").as_deref(),
        Some("/api/posts")
    );
    assert_eq!(
        found["http"]
            .attribute("http.response.status_code")
            .as_deref(),
        Some("200")
    );
    assert_eq!(
        found["analyze-rpc"].attribute("rpc.system").as_deref(),
        Some("grpc")
    );
    assert_eq!(
        found["analyze-rpc"]
            .attribute("rpc.grpc.status_code")
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        found["store"].attribute("db.system.name").as_deref(),
        Some("postgresql")
    );
    assert_eq!(
        found["process"].attribute("messaging.system").as_deref(),
        Some("redis")
    );
    assert_eq!(
        found["process"]
            .attribute("messaging.destination.name")
            .as_deref(),
        Some(stream.as_str())
    );

    // ---- the metrics ------------------------------------------------------------------------
    let mut after = HashMap::new();
    for (role, addr) in &roles {
        after.insert(*role, scrape(&http, *addr).await?);
    }
    // (service, metric, labels): counters that the observed post must have moved.
    let moved: [(&str, &str, &[&str]); 12] = [
        (
            "gateway",
            "pulse_http_requests_total",
            &["route=\"/api/posts\"", "status=\"200\""],
        ),
        (
            "gateway",
            "pulse_http_request_seconds_count",
            &["route=\"/api/posts\""],
        ),
        ("ingester", "pulse_ingester_posts_ingested_total", &[]),
        (
            "ingester",
            "pulse_grpc_requests_total",
            &["method=\"pulse.v1.IngestService/Publish\"", "code=\"0\""],
        ),
        ("worker", "pulse_worker_posts_processed_total", &[]),
        ("worker", "pulse_worker_batch_size_count", &[]),
        ("worker", "pulse_worker_inference_seconds_count", &[]),
        ("inference", "pulse_inference_texts_total", &[]),
        ("inference", "pulse_inference_run_seconds_count", &[]),
        ("inference", "pulse_inference_queue_seconds_count", &[]),
        (
            "analytics",
            "pulse_grpc_requests_total",
            &["method=\"pulse.v1.AnalyticsService/GetDistribution\""],
        ),
        (
            "inference",
            "pulse_grpc_requests_total",
            &[
                "method=\"pulse.v1.InferenceService/AnalyzeBatch\"",
                "code=\"0\"",
            ],
        ),
    ];
    for (role, name, labels) in moved {
        let was = sample(&before[role], name, labels).unwrap_or(0.0);
        let now = sample(&after[role], name, labels)
            .with_context(|| format!("{role} does not expose {name}{labels:?}"))?;
        assert!(
            now > was,
            "{role} {name}{labels:?} did not move: {was} -> {now}"
        );
    }
    // Gauges and families that must be exposed (their values depend on timing).
    let present: [(&str, &str); 7] = [
        ("gateway", "pulse_websocket_connections"),
        ("worker", "pulse_stream_length"),
        ("worker", "pulse_stream_pending"),
        ("worker", "pulse_stream_consumer_lag"),
        ("worker", "pulse_worker_posts_dead_lettered_total"),
        ("ingester", "pulse_ingester_backlog"),
        ("analytics", "pulse_distribution_cache_misses_total"),
    ];
    for (role, name) in present {
        ensure!(
            sample(&after[role], name, &[]).is_some(),
            "{role} does not expose {name}"
        );
    }
    dashboard_queries_use_exported_metrics(&after)?;
    assert_eq!(
        sample(&after["gateway"], "pulse_websocket_connections", &[]),
        Some(1.0),
        "one WebSocket client is connected"
    );

    // ---- the logs ---------------------------------------------------------------------------
    let gateway_log = services.log("gateway");
    let served: Vec<Value> = gateway_log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "request served" && line["trace_id"] == trace_id.as_str())
        .collect();
    ensure!(
        served.len() == 1,
        "one access log line for the observed request: {served:?}"
    );
    let line = &served[0];
    assert_eq!(line["level"], "DEBUG");
    assert_eq!(line["target"], "pulse_gateway::server");
    assert_eq!(
        line["span_id"].as_str(),
        Some(hex(&found["http"].span.span_id).as_str())
    );
    assert!(
        line["span"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "the request id is on the line: {line}"
    );
    for role in ["inference", "analytics", "worker", "ingester", "gateway"] {
        let log = services.log(role);
        ensure!(
            !log.contains(POST_TEXT),
            "{role} logged a post's text above debug level"
        );
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            let value: Value = serde_json::from_str(line)
                .with_context(|| format!("{role} wrote a line that is not JSON: {line}"))?;
            ensure!(
                value["level"].is_string() && value["target"].is_string(),
                "{role}: {line}"
            );
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}
