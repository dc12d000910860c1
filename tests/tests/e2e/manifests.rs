//! The Kubernetes manifests agree with the binaries they run and the images that carry them.
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
//! Every container of a Pulse image is also held against the image `deploy/docker/Dockerfile`
//! builds for it (`ghcr.io/pulse/pulse-<x>` is `--target <x>`; see `pulse_e2e::dockerfile`):
//!
//! - the target exists, its `ENTRYPOINT` is the binary the image is named after, and that file
//!   is one the build stage compiles (`cargo build -p pulse-<x>`) and copies out;
//! - a `command` runs a program the image has, and every `pulse-*` program a shell command
//!   calls is on the image's `PATH`;
//! - every absolute path the container's environment names (the manifest's `env`, `envFrom` and
//!   the image's own `ENV`: model folders, `ORT_DYLIB_PATH`, `DASHBOARD_DIR`, ...), and every
//!   path-valued flag the binary falls back to when unset, is in the image (a `COPY` puts it
//!   there, from a repository path that exists and that `.dockerignore` keeps) or on a volume;
//! - the image's `ENV` names only variables the binary reads;
//! - `runAsUser`/`runAsGroup` are the image's numeric `USER`;
//! - every `containerPort` is `EXPOSE`d by the image.
//!
//! kubectl must be on the PATH: without it the test fails, unless `PULSE_SKIP_MANIFESTS=1`,
//! which turns the failure into a printed skip.

use std::{any::TypeId, collections::BTreeSet, path::PathBuf};

use pulse_e2e::{
    dockerfile::{self, BASE_PATH, BASE_PROGRAMS, Dockerfile, Image, Provenance},
    manifests::{
        Manifests, NAMESPACE, PULSE_BINARIES, PodFields, Workload, array, at, binary_command,
        container_declares, id, map_matches, pulse_binary, render, selector_matches, str_at,
        variables_read_by,
    },
};
use pulse_testkit::workspace_root;
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

#[test]
fn dev_overlay_matches_the_images() {
    check_images("dev");
}

#[test]
fn production_overlay_matches_the_images() {
    check_images("production");
}

/// Every `COPY` of the Dockerfile can be served: sources from the build context exist and
/// `.dockerignore` keeps them, `--from` names an earlier stage, and every binary has a target.
#[test]
fn the_images_build_from_the_repository() {
    let dockerfile = Dockerfile::load().unwrap_or_else(|e| panic!("{e:#}"));
    let mut failures = Vec::new();
    for (index, stage) in dockerfile.stages.iter().enumerate() {
        let name = if stage.name.is_empty() {
            "(unnamed)"
        } else {
            &stage.name
        };
        for copy in &stage.copies {
            match &copy.from {
                None => {
                    for source in &copy.sources {
                        let path = source.trim_end_matches('/');
                        if !workspace_root().join(path).exists() {
                            failures.push(format!(
                                "stage {name}: COPY {source}: the repository has no {path}"
                            ));
                        } else if dockerfile::dockerignore_excludes(path) {
                            failures.push(format!(
                                "stage {name}: COPY {source}: .dockerignore leaves it out of the \
                                 build context"
                            ));
                        }
                    }
                }
                Some(from) => {
                    let earlier = dockerfile.stages[..index]
                        .iter()
                        .any(|stage| stage.name == *from);
                    if !earlier {
                        failures.push(format!(
                            "stage {name}: COPY --from={from}: no earlier stage has that name"
                        ));
                    }
                }
            }
        }
    }
    for binary in PULSE_BINARIES {
        let target = binary.trim_start_matches("pulse-");
        if dockerfile.image(target).is_none() {
            failures.push(format!("no target {target} builds the image of {binary}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}: {} problem(s):\n  - {}",
        dockerfile::PATH,
        failures.len(),
        failures.join("\n  - ")
    );
}

fn check_images(overlay: &str) {
    let Some(manifests) = render(overlay).unwrap_or_else(|e| panic!("{e:#}")) else {
        return;
    };
    let dockerfile = Dockerfile::load().unwrap_or_else(|e| panic!("{e:#}"));
    let mut failures = Vec::new();
    let mut checked = 0;
    for workload in manifests.workloads() {
        for container in workload.containers() {
            let Some(binary) = str_at(container, &["image"]).and_then(pulse_binary) else {
                continue;
            };
            let name = str_at(container, &["name"]).unwrap_or("?");
            let context = format!("{} container {name} ({binary})", workload.id);
            let target = binary.trim_start_matches("pulse-");
            let Some(image) = dockerfile.image(target) else {
                failures.push(format!(
                    "{context}: {} has no target {target} (docker build --target {target})",
                    dockerfile::PATH
                ));
                continue;
            };
            checked += 1;
            check_entrypoint(&image, binary, &context, &mut failures);
            check_command(&image, container, &context, &mut failures);
            check_image_paths(
                &manifests,
                &workload,
                container,
                &image,
                binary,
                &context,
                &mut failures,
            );
            check_user(&workload, container, &image, &context, &mut failures);
            for port in array(container, &["ports"]) {
                let number = port
                    .get("containerPort")
                    .and_then(Value::as_u64)
                    .and_then(|n| u16::try_from(n).ok());
                if let Some(number) = number
                    && !image.stage.expose.contains(&number)
                {
                    failures.push(format!(
                        "{context}: containerPort {number} is not EXPOSEd by target {target} \
                         (it exposes {:?})",
                        image.stage.expose
                    ));
                }
            }
        }
    }
    if checked == 0 {
        failures.push("no container runs a Pulse image".to_owned());
    }
    println!("{overlay}: checked {checked} containers against their images");
    assert!(
        failures.is_empty(),
        "deploy/k8s/overlays/{overlay} against {}: {} problem(s):\n  - {}",
        dockerfile::PATH,
        failures.len(),
        failures.join("\n  - ")
    );
}

/// The image's `ENTRYPOINT` is `binary`, compiled and copied out by a build stage.
fn check_entrypoint(image: &Image<'_>, binary: &str, context: &str, failures: &mut Vec<String>) {
    let Some(program) = image.stage.entrypoint.as_ref().and_then(|e| e.first()) else {
        failures.push(format!("{context}: the image has no ENTRYPOINT"));
        return;
    };
    if program.rsplit('/').next() != Some(binary) {
        failures.push(format!(
            "{context}: the image's ENTRYPOINT is {program}, not {binary}"
        ));
        return;
    }
    match image.provenance(program) {
        Some(Provenance::Built { stage, path }) => {
            let Some(builder) = image.dockerfile.stage(&stage) else {
                failures.push(format!(
                    "{context}: {program} comes from stage {stage}, which is missing"
                ));
                return;
            };
            let text: Vec<&str> = builder
                .runs
                .iter()
                .map(String::as_str)
                .chain(builder.args.values().map(String::as_str))
                .collect();
            let compiles = text.iter().any(|t| t.contains("cargo build"))
                && text.iter().any(|t| t.contains(&format!("-p {binary}")));
            let copies_out = path.rsplit('/').next() == Some(binary)
                && text.iter().any(|t| {
                    t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                        .any(|word| word == binary)
                });
            if !compiles || !copies_out {
                failures.push(format!(
                    "{context}: {program} is {path} of stage {stage}, which does not build \
                     {binary} (cargo build -p {binary}) and copy it there"
                ));
            }
        }
        other => failures.push(format!(
            "{context}: {program} (the ENTRYPOINT) is not a binary a build stage makes: {other:?}"
        )),
    }
}

/// A `command` names a program the image has, and every Pulse program it calls is on `PATH`.
fn check_command(image: &Image<'_>, container: &Value, context: &str, failures: &mut Vec<String>) {
    let command: Vec<&str> = array(container, &["command"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let Some(program) = command.first() else {
        return; // The image's ENTRYPOINT runs: check_entrypoint.
    };
    let on_path = |name: &str| {
        BASE_PATH.iter().any(|folder| {
            let path = format!("{folder}/{name}");
            BASE_PROGRAMS.contains(&path.as_str()) || image.holds(&path).is_ok()
        })
    };
    let found = if program.starts_with('/') {
        BASE_PROGRAMS.contains(program) || image.holds(program).is_ok()
    } else {
        on_path(program)
    };
    if !found {
        failures.push(format!("{context}: command {program} is not in the image"));
    }
    let words = command
        .iter()
        .copied()
        .chain(array(container, &["args"]).iter().filter_map(Value::as_str));
    for text in words {
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            if word.starts_with("pulse-") && !on_path(word) {
                failures.push(format!(
                    "{context}: its command calls {word}, which the image does not have on its \
                     PATH (it has {:?} in /usr/local/bin)",
                    image.files_in("/usr/local/bin")
                ));
            }
        }
    }
}

/// Every path the container's environment names is in the image or on a volume, and the
/// image's `ENV` names only variables the binary reads.
fn check_image_paths(
    manifests: &Manifests,
    workload: &Workload<'_>,
    container: &Value,
    image: &Image<'_>,
    binary: &str,
    context: &str,
    failures: &mut Vec<String>,
) {
    let read = variables_read_by(binary).unwrap_or_default();
    for (name, _) in image.env() {
        if !read.contains(name) {
            failures.push(format!(
                "{context}: the image sets ENV {name}, which {binary} does not read"
            ));
        }
    }
    let pod = PodFields {
        name: workload.name.clone(),
        namespace: NAMESPACE.to_owned(),
        ip: "127.0.0.1".to_owned(),
    };
    let manifest_env = match manifests.environment(container, &pod) {
        Ok(env) => env,
        Err(e) => {
            failures.push(format!("{context}: {e:#}"));
            return;
        }
    };
    // The container's environment: the image's ENV, overridden by the manifest's.
    let mut env: Vec<(String, String)> = image.env().to_vec();
    for (name, value) in manifest_env {
        env.retain(|(existing, _)| *existing != name);
        env.push((name, value));
    }
    let mounts: Vec<&str> = array(container, &["volumeMounts"])
        .iter()
        .filter_map(|mount| str_at(mount, &["mountPath"]))
        .collect();
    let check = |what: String, path: &str, failures: &mut Vec<String>| {
        let mounted = mounts.iter().any(|mount| {
            path == *mount || path.starts_with(&format!("{}/", mount.trim_end_matches('/')))
        });
        if !mounted && let Err(why) = image.holds(path) {
            failures.push(format!("{context}: {what}: {why}"));
        }
    };
    for (name, value) in &env {
        if value.starts_with('/') {
            check(format!("{name}={value}"), value, failures);
        }
    }
    // Path-valued flags left unset fall back to their default, relative to the WORKDIR.
    let Some(command) = binary_command(binary) else {
        return;
    };
    for argument in command.get_arguments() {
        let Some(variable) = argument.get_env().map(|v| v.to_string_lossy().into_owned()) else {
            continue;
        };
        if argument.get_value_parser().type_id() != TypeId::of::<PathBuf>()
            || env.iter().any(|(name, _)| *name == variable)
        {
            continue;
        }
        for default in argument.get_default_values() {
            let default = default.to_string_lossy();
            let path = if default.starts_with('/') {
                default.to_string()
            } else {
                format!("{}/{default}", image.stage.workdir.trim_end_matches('/'))
            };
            check(
                format!("{variable} is unset, so {binary} uses its default {default}"),
                &path,
                failures,
            );
        }
    }
}

/// `runAsUser`/`runAsGroup` (container over pod) are the image's numeric `USER`.
fn check_user(
    workload: &Workload<'_>,
    container: &Value,
    image: &Image<'_>,
    context: &str,
    failures: &mut Vec<String>,
) {
    let (uid, gid) = match image.user_ids() {
        Ok(ids) => ids,
        Err(e) => {
            failures.push(format!("{context}: {e:#}"));
            return;
        }
    };
    let effective = |field: &str| {
        at(container, &["securityContext", field])
            .or_else(|| at(workload.pod, &["securityContext", field]))
            .and_then(Value::as_u64)
    };
    if let Some(user) = effective("runAsUser")
        && user != uid
    {
        failures.push(format!(
            "{context}: runAsUser {user}, but the image's USER is {uid}"
        ));
    }
    if let (Some(group), Some(gid)) = (effective("runAsGroup"), gid)
        && group != gid
    {
        failures.push(format!(
            "{context}: runAsGroup {group}, but the image's USER group is {gid}"
        ));
    }
}
