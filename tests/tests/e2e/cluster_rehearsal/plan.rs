//! The plan: every Pulse container of the overlay as a process to start (program, arguments,
//! environment, ports, limits), with every cluster address pointed at what stands in for it
//! on this machine.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use pulse_e2e::{
    binary,
    dockerfile::{BASE_PROGRAMS, Dockerfile, Image},
    manifests::{
        Manifests, NAMESPACE, PodFields, Workload, array, at, binary_command, container_port,
        map_matches, pulse_binary, quantity_bytes, str_at,
    },
};
use pulse_testkit::{TestDatabase, free_address, redis_url};
use serde_json::Value;

/// The part a container plays in its pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Job,
    Init,
    Main,
}

/// One container, ready to start as a process.
#[derive(Debug, Clone)]
pub(crate) struct ContainerPlan {
    /// `Deployment/worker container wait-for-schema`, for messages.
    pub(crate) label: String,
    /// The owning workload's name (`worker`).
    pub(crate) pod: String,
    pub(crate) role: Role,
    pub(crate) spec: Value,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: PathBuf,
    /// The pod's ports: container port → local port.
    pub(crate) ports: BTreeMap<u16, u16>,
    pub(crate) memory_limit: Option<u64>,
    /// `terminationGracePeriodSeconds`.
    pub(crate) grace: Duration,
    /// A `preStop` sleep, taken off the grace period.
    pub(crate) pre_stop: Duration,
    /// For a Job: `activeDeadlineSeconds`.
    pub(crate) deadline: Option<Duration>,
    pub(crate) log: PathBuf,
    /// Variables not in the manifests that the rehearsal set (defaults moved for isolation).
    pub(crate) moved_defaults: Vec<String>,
}

impl ContainerPlan {
    pub(crate) fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The `service.name` its spans carry, when it exports any.
    pub(crate) fn traced_service(&self) -> Option<&str> {
        self.var("OTEL_EXPORTER_OTLP_ENDPOINT")?;
        self.var("OTEL_SERVICE_NAME")
    }
}

/// Every container of the overlay, and what stands in around them.
pub(crate) struct Plan {
    pub(crate) root: PathBuf,
    pub(crate) jobs: Vec<ContainerPlan>,
    /// Init containers, by pod.
    pub(crate) inits: BTreeMap<String, Vec<ContainerPlan>>,
    pub(crate) mains: Vec<ContainerPlan>,
    /// The local databases standing in for the manifests' (the migration Job creates them).
    pub(crate) databases: Vec<TestDatabase>,
    /// Local stream prefixes standing in for the manifests'.
    pub(crate) prefixes: Vec<String>,
    /// Local `host:port` of the Ingress's backend (the gateway) and of Service `ingester`.
    pub(crate) gateway: String,
    pub(crate) ingester: String,
    /// The gateway's dashboard folder on this machine.
    pub(crate) dashboard: Option<PathBuf>,
}

pub(crate) struct Planner<'a> {
    overlay: &'a str,
    manifests: &'a Manifests,
    dockerfile: &'a Dockerfile,
    tag: String,
    root: PathBuf,
    collector: SocketAddr,
    /// Pod ports of every rehearsed Deployment: container port → local port.
    ports: BTreeMap<String, BTreeMap<u16, u16>>,
    /// Manifest database name → local URL.
    databases: BTreeMap<String, TestDatabase>,
    /// Manifest stream prefix → local one.
    prefixes: BTreeMap<String, String>,
}

impl<'a> Planner<'a> {
    pub(crate) fn new(
        overlay: &'a str,
        manifests: &'a Manifests,
        dockerfile: &'a Dockerfile,
        collector: SocketAddr,
    ) -> anyhow::Result<Self> {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let root = std::env::temp_dir().join(format!("pulse-rehearsal-{overlay}-{tag}"));
        std::fs::create_dir_all(root.join("logs"))?;
        let mut ports = BTreeMap::new();
        for workload in &manifests.workloads() {
            if !workload.pulse_binaries().is_empty() && workload.kind == "Deployment" {
                let mut pod = BTreeMap::new();
                for container in workload.containers() {
                    for port in array(container, &["ports"]) {
                        if let Some(number) = port
                            .get("containerPort")
                            .and_then(Value::as_u64)
                            .and_then(|n| u16::try_from(n).ok())
                        {
                            pod.insert(number, free_port()?);
                        }
                    }
                }
                ports.insert(workload.name.clone(), pod);
            }
        }
        Ok(Self {
            overlay,
            manifests,
            dockerfile,
            tag,
            root,
            collector,
            ports,
            databases: BTreeMap::new(),
            prefixes: BTreeMap::new(),
        })
    }

    pub(crate) fn plan(mut self) -> anyhow::Result<Plan> {
        let mut jobs = Vec::new();
        let mut inits: BTreeMap<String, Vec<ContainerPlan>> = BTreeMap::new();
        let mut mains = Vec::new();
        let manifests = self.manifests;
        for workload in &manifests.workloads() {
            if workload.pulse_binaries().is_empty() {
                continue; // PostgreSQL, Redis, Jaeger: stood in for by the test's own.
            }
            let role_of_mains = match workload.kind.as_str() {
                "Deployment" => Role::Main,
                "Job" => Role::Job,
                other => bail!(
                    "{}: a {other} runs a Pulse image; the rehearsal knows Jobs and Deployments",
                    workload.id
                ),
            };
            for container in workload.init_containers() {
                let plan = self.container(workload, container, Role::Init)?;
                inits.entry(workload.name.clone()).or_default().push(plan);
            }
            for container in workload.main_containers() {
                let plan = self.container(workload, container, role_of_mains)?;
                match role_of_mains {
                    Role::Job => jobs.push(plan),
                    _ => mains.push(plan),
                }
            }
        }
        // Listen addresses found while resolving may have added pod ports: hand out the final maps.
        for plan in jobs
            .iter_mut()
            .chain(mains.iter_mut())
            .chain(inits.values_mut().flatten())
        {
            plan.ports = self.ports.get(&plan.pod).cloned().unwrap_or_default();
        }
        ensure!(
            !jobs.is_empty(),
            "no Job runs a Pulse image (the migration)"
        );
        ensure!(!mains.is_empty(), "no Deployment runs a Pulse image");
        let gateway = self.ingress_backend()?;
        let ingester = self.service_address("ingester", &Value::String("grpc".into()))?;
        let dashboard = mains
            .iter()
            .find_map(|plan| plan.var("DASHBOARD_DIR"))
            .map(PathBuf::from);
        Ok(Plan {
            root: self.root,
            jobs,
            inits,
            mains,
            databases: self.databases.into_values().collect(),
            prefixes: self.prefixes.into_values().collect(),
            gateway,
            ingester,
            dashboard,
        })
    }

    fn container(
        &mut self,
        workload: &Workload<'_>,
        container: &Value,
        role: Role,
    ) -> anyhow::Result<ContainerPlan> {
        let name = str_at(container, &["name"]).unwrap_or("?");
        let label = format!("{} container {name}", workload.id);
        let image_name = str_at(container, &["image"]).unwrap_or_default();
        let binary_name = pulse_binary(image_name)
            .with_context(|| format!("{label}: image {image_name} is not a Pulse image"))?;
        let target = binary_name.trim_start_matches("pulse-");
        let image = self
            .dockerfile
            .image(target)
            .with_context(|| format!("{label}: the Dockerfile has no target {target}"))?;
        let pod_name = match role {
            Role::Job => format!("{}-{}", workload.name, &self.tag[..5]),
            _ => format!("{}-rehearsal-{}", workload.name, &self.tag[..5]),
        };
        let fields = PodFields {
            name: pod_name.clone(),
            namespace: NAMESPACE.to_owned(),
            ip: "127.0.0.1".to_owned(),
        };
        let manifest_env = self
            .manifests
            .environment(container, &fields)
            .with_context(|| label.clone())?;
        let volumes = self.volumes(workload, container, &pod_name)?;
        let pod_dir = self.root.join("pods").join(&pod_name);
        let cwd = pod_dir.join(format!("{name}-root"));
        std::fs::create_dir_all(&cwd)?;

        // The image's ENV first, then Kubernetes' HOSTNAME, then the manifest's variables.
        let mut env: Vec<(String, String)> = Vec::new();
        let put = |env: &mut Vec<(String, String)>, key: String, value: String| {
            env.retain(|(existing, _)| *existing != key);
            env.push((key, value));
        };
        let context = Scope {
            pod: &workload.name,
            image: &image,
            volumes: &volumes,
        };
        for (key, value) in image.env() {
            let value = self
                .rewrite(&context, key, value)
                .with_context(|| format!("{label}: the image's ENV {key}={value}"))?;
            put(&mut env, key.clone(), value);
        }
        put(&mut env, "HOSTNAME".into(), pod_name.clone());
        for (key, value) in &manifest_env {
            let value = self
                .rewrite(&context, key, value)
                .with_context(|| format!("{label}: {key}={value}"))?;
            put(&mut env, key.clone(), value);
        }
        let moved_defaults = self.move_defaults(&context, binary_name, &mut env, &label)?;
        let bin = self.bin_dir(&image, target)?;
        put(
            &mut env,
            "PATH".into(),
            format!("{}:/usr/bin:/bin", bin.display()),
        );

        let (program, args) = self
            .command_line(&image, container, &manifest_env, &bin)
            .with_context(|| label.clone())?;
        let seconds =
            |value: Option<&Value>| value.and_then(Value::as_u64).map(Duration::from_secs);
        let memory_limit = str_at(container, &["resources", "limits", "memory"])
            .map(quantity_bytes)
            .transpose()
            .with_context(|| label.clone())?;
        let pre_stop = match at(container, &["lifecycle", "preStop"]) {
            None => Duration::ZERO,
            Some(handler) => match seconds(at(handler, &["sleep", "seconds"])) {
                Some(sleep) => sleep,
                None => {
                    bail!("{label}: preStop {handler} is not a sleep, which the rehearsal knows")
                }
            },
        };
        Ok(ContainerPlan {
            log: self
                .root
                .join("logs")
                .join(format!("{}-{name}.log", workload.name)),
            label,
            pod: workload.name.clone(),
            role,
            spec: container.clone(),
            program,
            args,
            env,
            cwd,
            ports: BTreeMap::new(),
            memory_limit,
            grace: seconds(workload.pod.get("terminationGracePeriodSeconds"))
                .unwrap_or(Duration::from_secs(30)),
            pre_stop,
            deadline: seconds(
                self.manifests
                    .find("Job", &workload.name)
                    .and_then(|job| at(job, &["spec", "activeDeadlineSeconds"])),
            ),
            moved_defaults,
        })
    }

    /// The container's volume mounts: mount path → local folder (`emptyDir` only).
    fn volumes(
        &self,
        workload: &Workload<'_>,
        container: &Value,
        pod_name: &str,
    ) -> anyhow::Result<Vec<(String, PathBuf)>> {
        let mut mounts = Vec::new();
        for mount in array(container, &["volumeMounts"]) {
            let volume_name = str_at(mount, &["name"]).unwrap_or_default();
            let path = str_at(mount, &["mountPath"]).unwrap_or_default();
            let volume = array(workload.pod, &["volumes"])
                .iter()
                .find(|volume| str_at(volume, &["name"]) == Some(volume_name))
                .with_context(|| format!("{}: no volume {volume_name}", workload.id))?;
            if volume.get("emptyDir").is_none() {
                bail!(
                    "{}: volume {volume_name} is not an emptyDir, which the rehearsal knows",
                    workload.id
                );
            }
            let local = self
                .root
                .join("pods")
                .join(pod_name)
                .join("volumes")
                .join(volume_name);
            std::fs::create_dir_all(&local)?;
            mounts.push((path.trim_end_matches('/').to_owned(), local));
        }
        Ok(mounts)
    }

    /// A folder with the image's `/usr/local/bin` programs, standing first on the `PATH`.
    fn bin_dir(&self, image: &Image<'_>, target: &str) -> anyhow::Result<PathBuf> {
        let dir = self.root.join("bin").join(target);
        if !dir.exists() {
            std::fs::create_dir_all(&dir)?;
            for name in image.files_in("/usr/local/bin") {
                let local = local_program(image, &format!("/usr/local/bin/{name}"))?;
                std::os::unix::fs::symlink(&local, dir.join(&name))?;
            }
        }
        Ok(dir)
    }

    /// The program and arguments Kubernetes would run: `command` + `args`, or the image's
    /// `ENTRYPOINT` + (`args`, or else `CMD`), with `$(VAR)` expanded.
    fn command_line(
        &self,
        image: &Image<'_>,
        container: &Value,
        env: &[(String, String)],
        bin: &Path,
    ) -> anyhow::Result<(PathBuf, Vec<String>)> {
        let strings = |field: &str| -> Option<Vec<String>> {
            container.get(field).map(|_| {
                array(container, &[field])
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|text| pulse_e2e::manifests::expand(text, env))
                    .collect()
            })
        };
        let argv: Vec<String> = match (strings("command"), strings("args")) {
            (Some(command), args) => command
                .into_iter()
                .chain(args.unwrap_or_default())
                .collect(),
            (None, args) => {
                let entrypoint = image.stage.entrypoint.clone().unwrap_or_default();
                let rest = args.or_else(|| image.stage.cmd.clone()).unwrap_or_default();
                entrypoint.into_iter().chain(rest).collect()
            }
        };
        let (first, args) = argv.split_first().context("nothing to run")?;
        let program = if first.starts_with('/') {
            local_program(image, first)?
        } else {
            [bin, Path::new("/usr/bin"), Path::new("/bin")]
                .iter()
                .map(|dir| dir.join(first))
                .find(|path| path.exists())
                .with_context(|| format!("{first} is on no PATH folder"))?
        };
        Ok((program, args.to_vec()))
    }

    /// `value` of `key` as this machine needs it (see the module documentation).
    fn rewrite(&mut self, context: &Scope<'_>, key: &str, value: &str) -> anyhow::Result<String> {
        if key == "STREAM_PREFIX" {
            return Ok(self.prefix(value));
        }
        if value.contains("://") {
            return self.dial(key, value);
        }
        if let Some(port) = listen_port(value) {
            return Ok(format!("127.0.0.1:{}", self.pod_port(context.pod, port)?));
        }
        if value.starts_with('/') {
            return Ok(context.local_path(value)?.display().to_string());
        }
        Ok(value.to_owned())
    }

    /// Variables the binary reads that the container leaves unset and whose default must move
    /// here: listen addresses, stream prefixes and paths. A default URL at loopback is an error:
    /// in a pod it would point at the pod itself.
    fn move_defaults(
        &mut self,
        context: &Scope<'_>,
        binary: &str,
        env: &mut Vec<(String, String)>,
        label: &str,
    ) -> anyhow::Result<Vec<String>> {
        let mut moved = Vec::new();
        let Some(command) = binary_command(binary) else {
            return Ok(moved);
        };
        for argument in command.get_arguments() {
            let Some(variable) = argument.get_env().map(|v| v.to_string_lossy().into_owned())
            else {
                continue;
            };
            if env.iter().any(|(key, _)| *key == variable) {
                continue;
            }
            let Some(default) = argument.get_default_values().first() else {
                continue;
            };
            let default = default.to_string_lossy().into_owned();
            let is_path =
                argument.get_value_parser().type_id() == std::any::TypeId::of::<PathBuf>();
            let value = if variable == "STREAM_PREFIX" {
                self.prefix(&default)
            } else if let Some(port) = listen_port(&default) {
                format!("127.0.0.1:{}", self.pod_port(context.pod, port)?)
            } else if is_path {
                let path = if default.starts_with('/') {
                    default.clone()
                } else {
                    format!(
                        "{}/{default}",
                        context.image.stage.workdir.trim_end_matches('/')
                    )
                };
                context.local_path(&path)?.display().to_string()
            } else if default.contains("://")
                && parse_url(&default).is_ok_and(|url| is_loopback(url.host))
            {
                bail!(
                    "{label}: {variable} is unset, so {binary} uses its default {default}, which \
                     in a pod points at the pod itself"
                );
            } else {
                continue;
            };
            moved.push(format!("{variable}={value}"));
            env.push((variable, value));
        }
        Ok(moved)
    }

    fn prefix(&mut self, value: &str) -> String {
        let tag = &self.tag;
        self.prefixes
            .entry(value.to_owned())
            .or_insert_with(|| format!("{value}-rehearsal-{tag}"))
            .clone()
    }

    fn pod_port(&mut self, pod: &str, port: u16) -> anyhow::Result<u16> {
        let ports = self.ports.entry(pod.to_owned()).or_default();
        if let Some(local) = ports.get(&port) {
            return Ok(*local);
        }
        let local = free_port()?;
        ports.insert(port, local);
        Ok(local)
    }

    /// A URL a container dials, pointed at what stands in for its host.
    fn dial(&mut self, key: &str, value: &str) -> anyhow::Result<String> {
        let url = parse_url(value)?;
        let port = url
            .port
            .or_else(|| default_port(url.scheme))
            .with_context(|| format!("{value}: no port, and {} has no default", url.scheme))?;
        if let Some(service) = service_name(url.host) {
            let target = self.service_port(service, &Value::from(port))?;
            if let Some(local) = target {
                return Ok(format!("{}://127.0.0.1:{local}{}", url.scheme, url.rest));
            }
            // A Service of pods the rehearsal does not run (PostgreSQL, Redis, Jaeger): the
            // test's own stand in below.
        }
        match url.scheme {
            "postgres" | "postgresql" => self.database(&url),
            "redis" => {
                let local = parse_url_owned(&redis_url())?;
                Ok(format!("redis://{}{}", local.authority, url.rest))
            }
            _ if key.starts_with("OTEL_EXPORTER_OTLP_") && key.ends_with("ENDPOINT") => {
                Ok(format!("http://{}", self.collector))
            }
            _ => bail!(
                "{key}={value}: {} is outside the overlay, and the rehearsal has nothing to \
                 stand in for it",
                url.host
            ),
        }
    }

    /// The local URL of the database `url` names: the test server, a database of this run
    /// (with the manifest's query, `?sslmode=...`).
    fn database(&mut self, url: &Url<'_>) -> anyhow::Result<String> {
        let (path, query) = url.rest.split_once('?').unwrap_or((url.rest, ""));
        let name = path.trim_start_matches('/');
        let name = if name.is_empty() { "postgres" } else { name };
        let overlay = self.overlay;
        let database = self.databases.entry(name.to_owned()).or_insert_with(|| {
            // `pulse_test_<overlay>_<name>_<uuid>`, within the kit's 19 characters of tag.
            let clean = |text: &str, most: usize| -> String {
                text.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(most)
                    .collect::<String>()
                    .to_ascii_lowercase()
            };
            TestDatabase::unique(&format!("{}_{}", clean(overlay, 10), clean(name, 8)))
        });
        Ok(match query {
            "" => database.url.clone(),
            query => format!("{}?{query}", database.url),
        })
    }

    /// The local port behind port `port` (number or name) of Service `name`: `Ok(None)` when
    /// the Service selects only pods the rehearsal does not run.
    fn service_port(&self, name: &str, port: &Value) -> anyhow::Result<Option<u16>> {
        let service = self.manifests.find("Service", name).with_context(|| {
            format!("no Service {name} in the overlay: the name would not resolve in the cluster")
        })?;
        let entry = array(service, &["spec", "ports"])
            .iter()
            .find(|entry| match port {
                Value::String(port_name) => str_at(entry, &["name"]) == Some(port_name),
                number => entry.get("port").and_then(Value::as_u64) == number.as_u64(),
            })
            .with_context(|| format!("Service {name} has no port {port}"))?;
        let target = entry
            .get("targetPort")
            .or_else(|| entry.get("port"))
            .with_context(|| format!("Service {name}: a port without a number"))?;
        let selector = at(service, &["spec", "selector"])
            .and_then(Value::as_object)
            .with_context(|| format!("Service {name} has no selector"))?;
        let workloads = self.manifests.workloads();
        let selected: Vec<&Workload<'_>> = workloads
            .iter()
            .filter(|workload| map_matches(selector, &workload.labels))
            .collect();
        ensure!(!selected.is_empty(), "Service {name} selects no pods");
        for workload in selected {
            let Some(pod) = self.ports.get(&workload.name) else {
                continue;
            };
            let number = workload
                .containers()
                .find_map(|container| container_port(container, target))
                .with_context(|| {
                    format!(
                        "Service {name}: targetPort {target} is no port of {}",
                        workload.id
                    )
                })?;
            let local = pod
                .get(&number)
                .with_context(|| format!("{}: port {number} has no local port", workload.id))?;
            return Ok(Some(*local));
        }
        Ok(None)
    }

    fn service_address(&self, name: &str, port: &Value) -> anyhow::Result<String> {
        let local = self
            .service_port(name, port)?
            .with_context(|| format!("Service {name} selects no pod of a Pulse image"))?;
        Ok(format!("127.0.0.1:{local}"))
    }

    /// The local address of the first Ingress backend: where outside traffic enters.
    fn ingress_backend(&self) -> anyhow::Result<String> {
        let backend = self
            .manifests
            .of_kind("Ingress")
            .flat_map(|ingress| array(ingress, &["spec", "rules"]))
            .flat_map(|rule| array(rule, &["http", "paths"]))
            .find_map(|path| at(path, &["backend", "service"]))
            .context("no Ingress backend: nothing reaches the gateway from outside")?;
        let name = str_at(backend, &["name"]).context("an Ingress backend without a Service")?;
        let port = at(backend, &["port", "name"])
            .or_else(|| at(backend, &["port", "number"]))
            .context("an Ingress backend without a port")?;
        self.service_address(name, port)
    }
}

/// What one container's values are rewritten against.
struct Scope<'c> {
    pod: &'c str,
    image: &'c Image<'c>,
    volumes: &'c [(String, PathBuf)],
}

impl Scope<'_> {
    /// The local path of image path `path`: on a volume, or from the image through the
    /// Dockerfile.
    fn local_path(&self, path: &str) -> anyhow::Result<PathBuf> {
        for (mount, local) in self.volumes {
            if path == mount {
                return Ok(local.clone());
            }
            if let Some(rest) = path.strip_prefix(&format!("{mount}/")) {
                return Ok(local.join(rest));
            }
        }
        self.image.local_path(path)
    }
}

/// The local program for image path `path`: from the image, or the base image's own.
fn local_program(image: &Image<'_>, path: &str) -> anyhow::Result<PathBuf> {
    if image.provenance(path).is_some() {
        let local = image.local_path(path)?;
        if let Some(name) = local.file_name().and_then(|n| n.to_str())
            && local.parent() == pulse_e2e::target_dir().ok().as_deref()
        {
            return binary(name); // Refuses a missing or stale build.
        }
        return Ok(local);
    }
    ensure!(
        BASE_PROGRAMS.contains(&path),
        "{path} is not in the image (no COPY puts it there, and the base image is not known to)"
    );
    Ok(PathBuf::from(path))
}

/// The port of a listen address (`0.0.0.0:9104`, `[::]:8080`), if `value` is one.
fn listen_port(value: &str) -> Option<u16> {
    let (host, port) = value.rsplit_once(':')?;
    matches!(
        host,
        "0.0.0.0" | "[::]" | "::" | "127.0.0.1" | "localhost" | ""
    )
    .then(|| port.parse().ok())
    .flatten()
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1")
}

/// The Service a host name names in the namespace (`inference`, `inference.pulse`,
/// `inference.pulse.svc`, `inference.pulse.svc.cluster.local`), if it names one.
fn service_name(host: &str) -> Option<&str> {
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        [name] if !is_loopback(host) => Some(name),
        [name, NAMESPACE]
        | [name, NAMESPACE, "svc"]
        | [name, NAMESPACE, "svc", "cluster", "local"] => Some(name),
        _ => None,
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "postgres" | "postgresql" => Some(5432),
        "redis" => Some(6379),
        _ => None,
    }
}

/// `scheme://[userinfo@]host[:port][rest]`.
struct Url<'u> {
    scheme: &'u str,
    host: &'u str,
    port: Option<u16>,
    /// Path, query and fragment, as written.
    rest: &'u str,
}

fn parse_url(url: &str) -> anyhow::Result<Url<'_>> {
    let (scheme, after) = url.split_once("://").context("not a URL")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (
            host,
            Some(
                port.parse()
                    .with_context(|| format!("{url}: port {port}"))?,
            ),
        ),
        _ => (host_port, None),
    };
    Ok(Url {
        scheme,
        host,
        port,
        rest,
    })
}

/// The authority (`host:port`) of a URL of the test environment.
struct OwnedUrl {
    authority: String,
}

fn parse_url_owned(url: &str) -> anyhow::Result<OwnedUrl> {
    let parsed = parse_url(url)?;
    let port = parsed
        .port
        .or_else(|| default_port(parsed.scheme))
        .context("no port")?;
    Ok(OwnedUrl {
        authority: format!("{}:{port}", parsed.host),
    })
}

fn free_port() -> anyhow::Result<u16> {
    Ok(free_address()?.port())
}

#[test]
fn names_and_addresses() -> anyhow::Result<()> {
    assert_eq!(service_name("inference"), Some("inference"));
    assert_eq!(
        service_name("inference.pulse.svc.cluster.local"),
        Some("inference")
    );
    assert_eq!(
        service_name("otel-collector.observability.svc.cluster.local"),
        None
    );
    assert_eq!(service_name("redis.example.internal"), None);
    assert_eq!(service_name("localhost"), None);
    assert_eq!(listen_port("0.0.0.0:9104"), Some(9104));
    assert_eq!(listen_port("[::]:8080"), Some(8080));
    assert_eq!(listen_port("redis:6379"), None);
    let url = parse_url("postgres://pulse:secret@postgres:5432/pulse?sslmode=disable")?;
    assert_eq!(
        (url.scheme, url.host, url.port),
        ("postgres", "postgres", Some(5432))
    );
    assert_eq!(url.rest, "/pulse?sslmode=disable");
    Ok(())
}
