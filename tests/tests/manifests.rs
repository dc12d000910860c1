//! The Kubernetes manifests agree with the binaries they run.
//!
//! Each overlay under `deploy/k8s/overlays/` is rendered with `kubectl kustomize` (so generated
//! ConfigMap and Secret names carry their hash suffix, exactly as applied) and checked:
//!
//! - every environment variable a container gets (`env`, and the keys of `envFrom` ConfigMaps
//!   and Secrets) is one its binary reads: a flag's `env` in the binary's own clap `Config`, or a
//!   standard variable (`pulse_e2e::manifests::STANDARD_VARS`); the binary is named by the image
//!   (`…/pulse-worker:…`);
//! - every ConfigMap, Secret and key that a container refers to exists in the rendered output;
//! - every port named by a probe, a Service's `targetPort` or a NetworkPolicy is declared by the
//!   containers it points at (by number or by name);
//! - every Service selects the pods of at least one workload;
//! - every image has an explicit tag (or digest) that is not `latest`;
//! - every pod is labelled, runs as non-root with the RuntimeDefault seccomp profile, and every
//!   container has a read-only root filesystem, no privilege escalation, no capabilities, and
//!   CPU and memory requests and limits;
//! - every namespaced object lands in the namespace `pulse`.
//!
//! kubectl must be on the PATH: without it the test fails, unless `PULSE_SKIP_MANIFESTS=1`,
//! which turns the failure into a printed skip.

use std::collections::BTreeSet;

use pulse_e2e::manifests::{
    Manifests, NAMESPACE, PULSE_BINARIES, Workload, array, at, container_declares, id, map_matches,
    pulse_binary, render, selector_matches, str_at, variables_read_by,
};
use serde_json::{Map, Value};

/// Kinds that live outside any namespace (among those an overlay may render).
const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
];

#[test]
fn dev_overlay_matches_the_binaries() {
    // Dev holds every component (PostgreSQL, Redis and Jaeger too), so every label a policy
    // names must match some pod there.
    check_overlay("dev", true);
}

#[test]
fn production_overlay_matches_the_binaries() {
    // Production reaches PostgreSQL, Redis and the collector outside the namespace: the base's
    // policies naming those pods match nothing there, by design.
    check_overlay("production", false);
}

fn check_overlay(overlay: &str, complete: bool) {
    let Some(manifests) = render(overlay).unwrap_or_else(|e| panic!("{e:#}")) else {
        return;
    };
    let mut failures = Vec::new();
    check_namespaces(&manifests, &mut failures);
    check_workloads(&manifests, &mut failures);
    check_services(&manifests, &mut failures);
    check_network_policies(&manifests, complete, &mut failures);
    // Guards against a vacuous pass (an overlay that renders nothing of Pulse).
    let binaries: BTreeSet<&str> = manifests
        .objects
        .iter()
        .flat_map(|object| {
            ["containers", "initContainers"]
                .into_iter()
                .flat_map(move |field| array(object, &["spec", "template", "spec", field]))
        })
        .filter_map(|container| str_at(container, &["image"]).and_then(pulse_binary))
        .collect();
    for binary in PULSE_BINARIES {
        if !binaries.contains(binary) {
            failures.push(format!("no container runs {binary}"));
        }
    }
    println!(
        "{overlay}: checked {} objects ({} workloads)",
        manifests.objects.len(),
        manifests.workloads().len()
    );
    assert!(
        failures.is_empty(),
        "deploy/k8s/overlays/{overlay}: {} problem(s):\n  - {}",
        failures.len(),
        failures.join("\n  - ")
    );
}

/// Whether `image` names one build: a digest, or an explicit tag other than `latest`.
fn image_is_pinned(image: &str) -> Result<(), String> {
    if image.contains("@sha256:") {
        return Ok(());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => Err(format!("image {image} has no tag (it would mean `latest`)")),
        Some((_, "latest")) => Err(format!("image {image} uses the tag `latest`")),
        Some((_, "")) => Err(format!("image {image} has an empty tag")),
        Some(_) => Ok(()),
    }
}

/// A port as a probe, a Service or a NetworkPolicy names it: a number or a port name.
fn port_label(port: &Value) -> String {
    match port {
        Value::String(name) => format!("`{name}`"),
        other => other.to_string(),
    }
}

fn check_namespaces(manifests: &Manifests, failures: &mut Vec<String>) {
    for object in &manifests.objects {
        let kind = str_at(object, &["kind"]).unwrap_or_default();
        if CLUSTER_SCOPED_KINDS.contains(&kind) {
            continue;
        }
        let namespace = str_at(object, &["metadata", "namespace"]);
        if namespace != Some(NAMESPACE) {
            failures.push(format!(
                "{}: namespace {namespace:?}, expected {NAMESPACE:?}",
                id(object)
            ));
        }
    }
}

fn check_workloads(manifests: &Manifests, failures: &mut Vec<String>) {
    for workload in manifests.workloads() {
        for label in ["app.kubernetes.io/name", "app.kubernetes.io/part-of"] {
            if !workload.labels.contains_key(label) {
                failures.push(format!(
                    "{}: pod template lacks the label {label}",
                    workload.id
                ));
            }
        }
        check_pod_security(&workload, failures);
        check_volumes(manifests, &workload, failures);
        for container in workload.containers() {
            let name = str_at(container, &["name"]).unwrap_or("?");
            let context = format!("{} container {name}", workload.id);
            check_image(container, &context, failures);
            check_environment(manifests, &workload, container, &context, failures);
            check_probes(container, &context, failures);
            check_container_security(container, &context, failures);
            check_resources(container, &context, failures);
        }
    }
}

fn check_image(container: &Value, context: &str, failures: &mut Vec<String>) {
    match str_at(container, &["image"]) {
        None => failures.push(format!("{context}: no image")),
        Some(image) => {
            if let Err(problem) = image_is_pinned(image) {
                failures.push(format!("{context}: {problem}"));
            }
        }
    }
}

/// Every variable the container gets is one its binary reads, and every reference resolves.
fn check_environment(
    manifests: &Manifests,
    workload: &Workload<'_>,
    container: &Value,
    context: &str,
    failures: &mut Vec<String>,
) {
    let mut received: Vec<(String, String)> = Vec::new();
    for variable in array(container, &["env"]) {
        let name = str_at(variable, &["name"]).unwrap_or("?").to_owned();
        for (kind, field) in [("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")] {
            if let Some(reference) = at(variable, &["valueFrom", field]) {
                let object = str_at(reference, &["name"]).unwrap_or("?");
                let key = str_at(reference, &["key"]).unwrap_or("?");
                match manifests.keys(kind, object) {
                    None => failures.push(format!(
                        "{context}: {name} refers to {kind} {object}, which is not rendered"
                    )),
                    Some(keys) if !keys.contains(key) => failures.push(format!(
                        "{context}: {name} refers to key {key} of {kind} {object}, which lacks it"
                    )),
                    Some(_) => {}
                }
            }
        }
        received.push((name, "env".to_owned()));
    }
    for source in array(container, &["envFrom"]) {
        let prefix = str_at(source, &["prefix"]).unwrap_or_default();
        for (kind, field) in [("ConfigMap", "configMapRef"), ("Secret", "secretRef")] {
            let Some(object) = str_at(source, &[field, "name"]) else {
                continue;
            };
            match manifests.keys(kind, object) {
                None => failures.push(format!(
                    "{context}: envFrom refers to {kind} {object}, which is not rendered"
                )),
                Some(keys) => received.extend(
                    keys.into_iter()
                        .map(|key| (format!("{prefix}{key}"), format!("envFrom {kind} {object}"))),
                ),
            }
        }
    }

    let Some(binary) = str_at(container, &["image"]).and_then(pulse_binary) else {
        return; // PostgreSQL, Redis, Jaeger: their variables are their images' business.
    };
    let Some(read) = variables_read_by(binary) else {
        failures.push(format!(
            "{context}: image of {binary}, which this test does not know: add its Config"
        ));
        return;
    };
    for (name, origin) in received {
        if !read.contains(&name) {
            failures.push(format!(
                "{context}: gets {name} ({origin}), which {binary} does not read \
                     (not in its clap Config, nor a standard variable)"
            ));
        }
    }
    if workload.pod.get("enableServiceLinks") != Some(&Value::Bool(false)) {
        failures.push(format!(
            "{}: enableServiceLinks must be false, or Kubernetes adds <SERVICE>_PORT \
                 variables that {binary} does not read",
            workload.id
        ));
    }
}

/// ConfigMaps and Secrets mounted as volumes exist, with the keys they project.
fn check_volumes(manifests: &Manifests, workload: &Workload<'_>, failures: &mut Vec<String>) {
    for volume in array(workload.pod, &["volumes"]) {
        for (kind, field, name_field) in [
            ("ConfigMap", "configMap", "name"),
            ("Secret", "secret", "secretName"),
        ] {
            let Some(source) = volume.get(field) else {
                continue;
            };
            let object = str_at(source, &[name_field]).unwrap_or("?");
            if source.get("optional") == Some(&Value::Bool(true)) {
                continue;
            }
            match manifests.keys(kind, object) {
                None => failures.push(format!(
                    "{}: volume of {kind} {object}, which is not rendered",
                    workload.id
                )),
                Some(keys) => {
                    for item in array(source, &["items"]) {
                        let key = str_at(item, &["key"]).unwrap_or("?");
                        if !keys.contains(key) {
                            failures.push(format!(
                                "{}: volume projects key {key} of {kind} {object}, which lacks it",
                                workload.id
                            ));
                        }
                    }
                }
            }
        }
    }
}

fn check_pod_security(workload: &Workload<'_>, failures: &mut Vec<String>) {
    let pod = at(workload.pod, &["securityContext"]);
    let pod_field = |field: &str| pod.and_then(|context| context.get(field));
    for container in workload.containers() {
        let name = str_at(container, &["name"]).unwrap_or("?");
        let own = |field: &str| at(container, &["securityContext", field]);
        let effective = |field: &str| own(field).or_else(|| pod_field(field));
        if effective("runAsNonRoot") != Some(&Value::Bool(true)) {
            failures.push(format!(
                "{} container {name}: runAsNonRoot is not true",
                workload.id
            ));
        }
        if effective("seccompProfile").and_then(|profile| str_at(profile, &["type"]))
            != Some("RuntimeDefault")
        {
            failures.push(format!(
                "{} container {name}: seccompProfile is not RuntimeDefault",
                workload.id
            ));
        }
        let is_pulse = str_at(container, &["image"])
            .and_then(pulse_binary)
            .is_some();
        if is_pulse && effective("runAsUser").and_then(Value::as_u64) != Some(10001) {
            failures.push(format!(
                "{} container {name}: runAsUser is not 10001, the images' user",
                workload.id
            ));
        }
    }
}

fn check_services(manifests: &Manifests, failures: &mut Vec<String>) {
    let workloads = manifests.workloads();
    for service in manifests.of_kind("Service") {
        let Some(selector) = at(service, &["spec", "selector"]).and_then(Value::as_object) else {
            continue; // No selector: endpoints managed by hand (ExternalName and the like).
        };
        let selected: Vec<&Workload<'_>> = workloads
            .iter()
            .filter(|workload| map_matches(selector, &workload.labels))
            .collect();
        if selected.is_empty() {
            failures.push(format!(
                "{}: its selector matches no workload's pods",
                id(service)
            ));
        }
        for port in array(service, &["spec", "ports"]) {
            let Some(target) = port.get("targetPort").or_else(|| port.get("port")) else {
                continue;
            };
            for workload in &selected {
                if !workload.declares(target) {
                    failures.push(format!(
                        "{}: targetPort {} is not a port of {}",
                        id(service),
                        port_label(target),
                        workload.id
                    ));
                }
            }
        }
    }
}

fn check_network_policies(manifests: &Manifests, complete: bool, failures: &mut Vec<String>) {
    let workloads = manifests.workloads();
    for policy in manifests.of_kind("NetworkPolicy") {
        let policy_id = id(policy);
        let pod_selector = at(policy, &["spec", "podSelector"]).unwrap_or(&Value::Null);
        let targets = select(&workloads, pod_selector);
        if complete && targets.is_empty() && !is_empty_selector(pod_selector) {
            failures.push(format!(
                "{policy_id}: its podSelector matches no workload's pods"
            ));
        }
        // Ingress ports are ports of the pods the policy selects.
        for rule in array(policy, &["spec", "ingress"]) {
            check_ports(&policy_id, "ingress", rule, &targets, failures);
            let _ = peers(&workloads, &policy_id, rule, "from", complete, failures);
        }
        // Egress ports are ports of the destination pods, where those are pods of this
        // namespace (a podSelector without a namespaceSelector).
        for rule in array(policy, &["spec", "egress"]) {
            let destinations = peers(&workloads, &policy_id, rule, "to", complete, failures);
            check_ports(&policy_id, "egress", rule, &destinations, failures);
        }
    }
}

/// The workloads whose pods `selector` (a LabelSelector) selects.
fn select<'w>(workloads: &'w [Workload<'w>], selector: &Value) -> Vec<&'w Workload<'w>> {
    workloads
        .iter()
        .filter(|workload| selector_matches(selector, &workload.labels))
        .collect()
}

/// `{}` (or no selector at all): every pod of the namespace.
fn is_empty_selector(selector: &Value) -> bool {
    selector.as_object().is_none_or(|fields| {
        fields.values().all(|value| {
            value.as_object().is_some_and(Map::is_empty)
                || value.as_array().is_some_and(Vec::is_empty)
        })
    })
}

/// Every port of a policy rule is declared by each of `workloads`.
fn check_ports(
    policy_id: &str,
    direction: &str,
    rule: &Value,
    workloads: &[&Workload<'_>],
    failures: &mut Vec<String>,
) {
    for port in array(rule, &["ports"]).iter().filter_map(|p| p.get("port")) {
        for workload in workloads {
            if !workload.declares(port) {
                failures.push(format!(
                    "{policy_id}: {direction} port {} is not a port of {}",
                    port_label(port),
                    workload.id
                ));
            }
        }
    }
}

/// The workloads that a rule's same-namespace pod peers (`from` or `to`) select; in a complete
/// overlay, each such peer must select some.
fn peers<'w>(
    workloads: &'w [Workload<'w>],
    policy_id: &str,
    rule: &Value,
    direction: &str,
    complete: bool,
    failures: &mut Vec<String>,
) -> Vec<&'w Workload<'w>> {
    let mut selected = Vec::new();
    for peer in array(rule, &[direction]) {
        if peer.get("namespaceSelector").is_some() || peer.get("ipBlock").is_some() {
            continue;
        }
        let Some(selector) = peer.get("podSelector") else {
            continue;
        };
        let matched = select(workloads, selector);
        if complete && matched.is_empty() {
            failures.push(format!(
                "{policy_id}: {direction} peer {selector} matches no workload's pods"
            ));
        }
        selected.extend(matched);
    }
    selected
}

fn check_probes(container: &Value, context: &str, failures: &mut Vec<String>) {
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(probe_spec) = container.get(probe) else {
            continue;
        };
        for handler in ["httpGet", "tcpSocket", "grpc"] {
            if let Some(port) = at(probe_spec, &[handler, "port"])
                && !container_declares(container, port)
            {
                failures.push(format!(
                    "{context}: {probe} uses port {}, which the container does not declare",
                    port_label(port)
                ));
            }
        }
    }
}

fn check_container_security(container: &Value, context: &str, failures: &mut Vec<String>) {
    let field = |name: &str| at(container, &["securityContext", name]);
    if field("allowPrivilegeEscalation") != Some(&Value::Bool(false)) {
        failures.push(format!("{context}: allowPrivilegeEscalation is not false"));
    }
    if field("readOnlyRootFilesystem") != Some(&Value::Bool(true)) {
        failures.push(format!("{context}: readOnlyRootFilesystem is not true"));
    }
    let drops_all = array(container, &["securityContext", "capabilities", "drop"])
        .iter()
        .any(|capability| capability.as_str() == Some("ALL"));
    if !drops_all {
        failures.push(format!("{context}: capabilities do not drop ALL"));
    }
}

fn check_resources(container: &Value, context: &str, failures: &mut Vec<String>) {
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            if at(container, &["resources", bound, resource]).is_none() {
                failures.push(format!("{context}: no {resource} in resources.{bound}"));
            }
        }
    }
}

#[test]
fn image_pinning_rules() {
    assert!(image_is_pinned("ghcr.io/pulse/pulse-worker:0.1.0").is_ok());
    assert!(image_is_pinned("postgres:15.13-bookworm").is_ok());
    assert!(image_is_pinned("localhost:5000/pulse-worker@sha256:0123").is_ok());
    assert!(image_is_pinned("ghcr.io/pulse/pulse-worker").is_err());
    assert!(image_is_pinned("localhost:5000/pulse-worker").is_err());
    assert!(image_is_pinned("redis:latest").is_err());
    assert_eq!(
        pulse_binary("ghcr.io/pulse/pulse-store:0.1.0"),
        Some("pulse-store")
    );
    assert_eq!(pulse_binary("postgres:15.13-bookworm"), None);
}

#[test]
fn selectors_follow_kubernetes_semantics() {
    let labels = serde_json::json!({"app.kubernetes.io/name": "worker", "app.kubernetes.io/part-of": "pulse"});
    let labels = labels.as_object().cloned().unwrap_or_default();
    let selector = serde_json::json!({
        "matchLabels": {"app.kubernetes.io/part-of": "pulse"},
        "matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["worker", "analytics"]}]
    });
    assert!(selector_matches(&selector, &labels));
    let other = serde_json::json!({"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["worker"]}]});
    assert!(!selector_matches(&other, &labels));
    assert!(selector_matches(&serde_json::json!({}), &labels));
}

#[test]
fn every_pulse_binary_is_known() {
    for binary in PULSE_BINARIES {
        let read = variables_read_by(binary).unwrap_or_default();
        assert!(read.contains("RUST_LOG"), "{binary}: {read:?}");
    }
    assert!(
        variables_read_by("pulse-worker")
            .unwrap_or_default()
            .contains("REDIS_URL")
    );
}

