//! The Kubernetes manifests as the tests read them: rendered, searched and resolved.
//!
//! [`render`] runs `kubectl kustomize` on an overlay, so generated ConfigMap and Secret names
//! carry their hash suffix exactly as applied. [`Manifests`] finds objects and pod templates and
//! reads ConfigMap and Secret values; [`Manifests::environment`] resolves a container's `env` and
//! `envFrom` the way the kubelet does. The end-to-end modules `manifests` (static checks) and
//! `cluster_rehearsal` (running the containers) share this reading, so both judge the same
//! manifests the same way.
//!
//! kubectl must be on the PATH: without it rendering fails, unless `PULSE_SKIP_MANIFESTS=1`,
//! which turns the failure into a printed skip (`scripts/test.sh` sets it when kubectl is
//! missing).

use std::{collections::BTreeSet, io::Write, path::PathBuf, process::Command};

use anyhow::{Context, bail};
use base64::Engine;
use clap::CommandFactory;
use pulse_testkit::workspace_root;
use serde_json::{Map, Value};

/// Set to `1` to skip what needs kubectl when it is not installed.
pub const SKIP_VAR: &str = "PULSE_SKIP_MANIFESTS";

/// The namespace every namespaced object lands in.
pub const NAMESPACE: &str = "pulse";

/// Every binary of the project; each must run somewhere in every overlay.
pub const PULSE_BINARIES: &[&str] = &[
    "pulse-ingester",
    "pulse-inference",
    "pulse-worker",
    "pulse-analytics",
    "pulse-gateway",
    "pulse-store",
];

/// Variables every Pulse binary honours besides its clap flags: logging, the OpenTelemetry SDK's
/// standard variables, and `HOSTNAME` (the worker's default consumer name).
pub const STANDARD_VARS: &[&str] = &[
    "RUST_LOG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_FILTER",
    "HOSTNAME",
];

/// Kinds whose objects carry a pod template.
pub const WORKLOAD_KINDS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"];

/// The overlay's directory, `deploy/k8s/overlays/<overlay>`.
pub fn overlay_dir(overlay: &str) -> PathBuf {
    workspace_root().join("deploy/k8s/overlays").join(overlay)
}

/// The overlay as `kubectl kustomize` renders it; `None` when kubectl is missing and
/// `PULSE_SKIP_MANIFESTS=1` says to skip (the skip is printed to stderr, so it never looks
/// like a pass).
pub fn render(overlay: &str) -> anyhow::Result<Option<Manifests>> {
    let dir = overlay_dir(overlay);
    let output = match Command::new("kubectl").arg("kustomize").arg(&dir).output() {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
                // Straight to stderr: libtest's capture hides print!/eprint! of passing tests.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: kubectl is not installed, so deploy/k8s/overlays/{overlay} was not \
                     checked ({SKIP_VAR}=1)"
                );
                return Ok(None);
            }
            bail!(
                "kubectl is not installed: it renders deploy/k8s/overlays/{overlay} for this test. \
                 Install kubectl (1.27 or newer), or set {SKIP_VAR}=1 to skip the manifest checks"
            );
        }
        Err(error) => return Err(error).context("cannot run kubectl"),
    };
    if !output.status.success() {
        bail!(
            "kubectl kustomize {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let yaml = String::from_utf8(output.stdout).context("kustomize wrote something not UTF-8")?;
    Ok(Some(Manifests::new(parse_documents(&yaml)?)))
}

/// Splits kustomize's output on its `---` separator lines and parses each document.
pub fn parse_documents(yaml: &str) -> anyhow::Result<Vec<Value>> {
    let mut documents = vec![String::new()];
    for line in yaml.lines() {
        if line == "---" {
            documents.push(String::new());
        } else if let Some(current) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    let mut values = Vec::new();
    for document in documents.iter().filter(|d| !d.trim().is_empty()) {
        let value: Value = serde_yaml_ng::from_str(document)
            .with_context(|| format!("kustomize output is not YAML:\n{document}"))?;
        if !value.is_null() {
            values.push(value);
        }
    }
    Ok(values)
}

/// The clap definition of a Pulse binary's command line; `None` for an image that is not one.
pub fn binary_command(binary: &str) -> Option<clap::Command> {
    Some(match binary {
        "pulse-ingester" => pulse_ingester::Config::command(),
        "pulse-inference" => pulse_inference::Config::command(),
        "pulse-worker" => pulse_worker::Config::command(),
        "pulse-analytics" => pulse_analytics::Config::command(),
        "pulse-gateway" => pulse_gateway::Config::command(),
        // pulse-store's CLI is private to its main.rs; its only variable is DATABASE_URL.
        "pulse-store" => clap::Command::new("pulse-store").arg(
            clap::Arg::new("database_url")
                .long("database-url")
                .env("DATABASE_URL")
                .default_value("postgres://postgres:postgres@127.0.0.1:5432/pulse"),
        ),
        _ => return None,
    })
}

/// The environment variables `binary` reads, from its own clap definition plus
/// [`STANDARD_VARS`]; `None` for an image that is not a Pulse binary.
pub fn variables_read_by(binary: &str) -> Option<BTreeSet<String>> {
    let command = binary_command(binary)?;
    let mut variables: BTreeSet<String> = command
        .get_arguments()
        .filter_map(clap::Arg::get_env)
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    variables.extend(STANDARD_VARS.iter().map(|name| (*name).to_owned()));
    Some(variables)
}

/// The Pulse binary an image holds: the last path segment of its repository when it names one
/// (`ghcr.io/pulse/pulse-worker:0.1.0` → `pulse-worker`).
pub fn pulse_binary(image: &str) -> Option<&str> {
    let repository = image.split('@').next().unwrap_or(image);
    let last = repository.rsplit('/').next().unwrap_or(repository);
    let name = last.split(':').next().unwrap_or(last);
    name.starts_with("pulse-").then_some(name)
}

pub fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, key| value.get(key))
}

pub fn array<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `Kind/name` of an object, for messages.
pub fn id(object: &Value) -> String {
    format!(
        "{}/{}",
        str_at(object, &["kind"]).unwrap_or("?"),
        str_at(object, &["metadata", "name"]).unwrap_or("?")
    )
}

/// Whether every `key: value` of a plain selector map is among `labels`.
pub fn map_matches(wanted: &Map<String, Value>, labels: &Map<String, Value>) -> bool {
    wanted
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}

/// Whether a LabelSelector (`matchLabels` and `matchExpressions`) selects `labels`.
pub fn selector_matches(selector: &Value, labels: &Map<String, Value>) -> bool {
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    let labels_match = at(selector, &["matchLabels"])
        .and_then(Value::as_object)
        .is_none_or(|wanted| map_matches(wanted, labels));
    let expressions_match = array(selector, &["matchExpressions"])
        .iter()
        .all(|expression| {
            let key = str_at(expression, &["key"]).unwrap_or_default();
            let values: Vec<&str> = array(expression, &["values"])
                .iter()
                .filter_map(Value::as_str)
                .collect();
            match str_at(expression, &["operator"]) {
                Some("In") => label(key).is_some_and(|value| values.contains(&value)),
                Some("NotIn") => label(key).is_none_or(|value| !values.contains(&value)),
                Some("Exists") => label(key).is_some(),
                Some("DoesNotExist") => label(key).is_none(),
                _ => false,
            }
        });
    labels_match && expressions_match
}

/// Whether `container` declares `port`, given as a probe, a Service or a NetworkPolicy names it
/// (a number, a port name, or a number written as a string).
pub fn container_declares(container: &Value, port: &Value) -> bool {
    container_port(container, port).is_some()
}

/// The `containerPort` that `port` (a number or a port name) names in `container`.
pub fn container_port(container: &Value, port: &Value) -> Option<u16> {
    let declared_number = |declared: &Value| {
        declared
            .get("containerPort")
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
    };
    array(container, &["ports"])
        .iter()
        .find_map(|declared| match port {
            Value::Number(number) => declared_number(declared)
                .filter(|declared| number.as_u64() == Some(u64::from(*declared))),
            Value::String(name) => {
                if str_at(declared, &["name"]) == Some(name.as_str())
                    || name.parse::<u16>().ok() == declared_number(declared)
                {
                    declared_number(declared)
                } else {
                    None
                }
            }
            _ => None,
        })
}

/// A pod template of the rendered output, with the object that owns it.
pub struct Workload<'a> {
    /// `Kind/name` of the owner.
    pub id: String,
    pub kind: String,
    pub name: String,
    pub labels: Map<String, Value>,
    /// The pod template's `spec`.
    pub pod: &'a Value,
}

impl Workload<'_> {
    /// Init containers first, then the others, as the pod runs them.
    pub fn containers(&self) -> impl Iterator<Item = &Value> {
        self.init_containers().iter().chain(self.main_containers())
    }

    pub fn init_containers(&self) -> &[Value] {
        array(self.pod, &["initContainers"])
    }

    pub fn main_containers(&self) -> &[Value] {
        array(self.pod, &["containers"])
    }

    pub fn declares(&self, port: &Value) -> bool {
        self.containers()
            .any(|container| container_declares(container, port))
    }

    /// The Pulse binaries the pod's containers run.
    pub fn pulse_binaries(&self) -> BTreeSet<&str> {
        self.containers()
            .filter_map(|container| str_at(container, &["image"]).and_then(pulse_binary))
            .collect()
    }
}

/// What the kubelet fills in for a `fieldRef`.
#[derive(Debug, Clone)]
pub struct PodFields {
    pub name: String,
    pub namespace: String,
    pub ip: String,
}

/// Every object of one rendered overlay.
pub struct Manifests {
    pub objects: Vec<Value>,
}

impl Manifests {
    pub fn new(objects: Vec<Value>) -> Self {
        Self { objects }
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> {
        self.objects
            .iter()
            .filter(move |object| str_at(object, &["kind"]) == Some(kind))
    }

    pub fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects.iter().find(|object| {
            str_at(object, &["kind"]) == Some(kind)
                && str_at(object, &["metadata", "name"]) == Some(name)
        })
    }

    /// The keys of ConfigMap or Secret `name`, or `None` when the output has no such object.
    pub fn keys(&self, kind: &str, name: &str) -> Option<BTreeSet<String>> {
        let object = self.find(kind, name)?;
        Some(
            ["data", "binaryData", "stringData"]
                .iter()
                .filter_map(|field| object.get(*field).and_then(Value::as_object))
                .flat_map(|data| data.keys().cloned())
                .collect(),
        )
    }

    /// The value of `key` in ConfigMap or Secret `name` as a container receives it (Secret
    /// `data` decoded from base64); `Ok(None)` when the object or the key is missing.
    pub fn value(&self, kind: &str, name: &str, key: &str) -> anyhow::Result<Option<String>> {
        let Some(object) = self.find(kind, name) else {
            return Ok(None);
        };
        if let Some(text) = str_at(object, &["stringData", key]) {
            return Ok(Some(text.to_owned()));
        }
        let Some(text) = str_at(object, &["data", key]) else {
            return Ok(None);
        };
        if kind != "Secret" {
            return Ok(Some(text.to_owned()));
        }
        // kustomize wraps long values over several lines; Kubernetes (Go's base64) skips the
        // line breaks.
        let text: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .with_context(|| format!("Secret {name}: key {key} is not base64"))?;
        Ok(Some(String::from_utf8(bytes).with_context(|| {
            format!("Secret {name}: key {key} is not UTF-8")
        })?))
    }

    /// Every key and value of ConfigMap or Secret `name`; `Ok(None)` when it is missing.
    fn values(&self, kind: &str, name: &str) -> anyhow::Result<Option<Vec<(String, String)>>> {
        let Some(keys) = self.keys(kind, name) else {
            return Ok(None);
        };
        let mut values = Vec::new();
        for key in keys {
            if let Some(value) = self.value(kind, name, &key)? {
                values.push((key, value));
            }
        }
        Ok(Some(values))
    }

    /// Every pod template, with its owner.
    pub fn workloads(&self) -> Vec<Workload<'_>> {
        self.objects
            .iter()
            .filter_map(|object| {
                let kind = str_at(object, &["kind"])?;
                if !WORKLOAD_KINDS.contains(&kind) {
                    return None;
                }
                let template = if kind == "CronJob" {
                    at(object, &["spec", "jobTemplate", "spec", "template"])?
                } else {
                    at(object, &["spec", "template"])?
                };
                Some(Workload {
                    id: id(object),
                    kind: kind.to_owned(),
                    name: str_at(object, &["metadata", "name"])?.to_owned(),
                    labels: at(template, &["metadata", "labels"])
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default(),
                    pod: template.get("spec")?,
                })
            })
            .collect()
    }

    /// The environment Kubernetes gives `container` (before the image's own `ENV`, which it
    /// overrides): `envFrom` sources in order, then `env` in order, each later name replacing
    /// an earlier one; `$(NAME)` in a value expands to a variable defined before it, `$$` to
    /// `$`. References to missing objects or keys are errors unless marked `optional`, as they
    /// keep the container from starting in a cluster.
    pub fn environment(
        &self,
        container: &Value,
        pod: &PodFields,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let mut env: Vec<(String, String)> = Vec::new();
        let set = |env: &mut Vec<(String, String)>, name: String, value: String| match env
            .iter_mut()
            .find(|(existing, _)| *existing == name)
        {
            Some(slot) => slot.1 = value,
            None => env.push((name, value)),
        };
        for source in array(container, &["envFrom"]) {
            let prefix = str_at(source, &["prefix"]).unwrap_or_default();
            for (kind, field) in [("ConfigMap", "configMapRef"), ("Secret", "secretRef")] {
                let Some(reference) = source.get(field) else {
                    continue;
                };
                let name = str_at(reference, &["name"]).unwrap_or_default();
                let optional = reference.get("optional") == Some(&Value::Bool(true));
                match self.values(kind, name)? {
                    Some(values) => {
                        for (key, value) in values {
                            set(&mut env, format!("{prefix}{key}"), value);
                        }
                    }
                    None if optional => {}
                    None => bail!("envFrom refers to {kind} {name}, which is not rendered"),
                }
            }
        }
        for variable in array(container, &["env"]) {
            let name = str_at(variable, &["name"])
                .context("an env entry without a name")?
                .to_owned();
            let value = if let Some(value) = str_at(variable, &["value"]) {
                Some(expand(value, &env))
            } else if let Some(from) = variable.get("valueFrom") {
                self.value_from(&name, from, container, pod)?
            } else {
                Some(String::new())
            };
            if let Some(value) = value {
                set(&mut env, name, value);
            }
        }
        Ok(env)
    }

    /// One `valueFrom`; `Ok(None)` for an optional reference that resolves to nothing.
    fn value_from(
        &self,
        name: &str,
        from: &Value,
        container: &Value,
        pod: &PodFields,
    ) -> anyhow::Result<Option<String>> {
        for (kind, field) in [("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")] {
            let Some(reference) = from.get(field) else {
                continue;
            };
            let object = str_at(reference, &["name"]).unwrap_or_default();
            let key = str_at(reference, &["key"]).unwrap_or_default();
            let optional = reference.get("optional") == Some(&Value::Bool(true));
            return match self.value(kind, object, key)? {
                Some(value) => Ok(Some(value)),
                None if optional => Ok(None),
                None => {
                    bail!("{name} refers to key {key} of {kind} {object}, which is not rendered")
                }
            };
        }
        if let Some(path) = str_at(from, &["fieldRef", "fieldPath"]) {
            return match path {
                "metadata.name" => Ok(Some(pod.name.clone())),
                "metadata.namespace" => Ok(Some(pod.namespace.clone())),
                "status.podIP" | "status.hostIP" => Ok(Some(pod.ip.clone())),
                other => bail!("{name}: fieldRef {other} is not one the tests can fill in"),
            };
        }
        if let Some(resource) = str_at(from, &["resourceFieldRef", "resource"]) {
            let (bound, what) = resource
                .split_once('.')
                .with_context(|| format!("{name}: resourceFieldRef {resource}"))?;
            let quantity = at(container, &["resources", bound, what])
                .and_then(|q| {
                    q.as_str()
                        .map(str::to_owned)
                        .or_else(|| Some(q.to_string()))
                })
                .with_context(|| format!("{name}: the container sets no {resource}"))?;
            return Ok(Some(quantity));
        }
        bail!("{name}: a valueFrom the tests do not know: {from}")
    }
}

/// Expands `$(NAME)` with the variables of `env` as Kubernetes does in `env` values, `command`
/// and `args`: unknown names stay as written, and `$$` stands for a literal `$`.
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
            && let Some((_, value)) = env.iter().find(|(name, _)| *name == inner[..end])
        {
            out.push_str(value);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Bytes of a Kubernetes quantity such as `64Mi`, `1G` or `512`.
pub fn quantity_bytes(quantity: &str) -> anyhow::Result<u64> {
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| quantity.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((quantity, 1.0));
    let number: f64 = number
        .parse()
        .with_context(|| format!("{quantity:?} is not a Kubernetes quantity"))?;
    // Quantities are whole bytes here; rounding up errs on the side of the limit.
    Ok((number * factor).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_kubernetes() {
        let env = vec![("A".to_owned(), "x".to_owned())];
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &env), "x-$(B)-$(A)-$");
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity_bytes("64Mi").ok(), Some(64 * 1024 * 1024));
        assert_eq!(quantity_bytes("1G").ok(), Some(1_000_000_000));
        assert_eq!(quantity_bytes("512").ok(), Some(512));
        assert!(quantity_bytes("lots").is_err());
    }

    #[test]
    fn images_name_their_binaries() {
        assert_eq!(
            pulse_binary("ghcr.io/pulse/pulse-store:0.1.0"),
            Some("pulse-store")
        );
        assert_eq!(pulse_binary("postgres:15.13-bookworm"), None);
    }
}
