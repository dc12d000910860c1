//! Containers as processes: starting, signalling and waiting for them, and sampling their
//! resident memory.

use std::{
    collections::BTreeMap,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};

use super::{SAMPLE_EVERY, plan::ContainerPlan};

/// A started container: its process (the leader of its own process group).
pub(crate) struct Process {
    pub(crate) plan: ContainerPlan,
    pub(crate) child: Mutex<Child>,
    pub(crate) pid: u32,
    pub(crate) started: Instant,
}

impl Process {
    pub(crate) fn start(plan: &ContainerPlan) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt;
        // What runs, for whoever reads the logs after a failure.
        let mut line = format!("{} {}\n", plan.program.display(), plan.args.join(" "));
        for (key, value) in &plan.env {
            line.push_str(&format!("{key}={value}\n"));
        }
        std::fs::write(plan.log.with_extension("env"), line)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&plan.log)?;
        let child = Command::new(&plan.program)
            .args(&plan.args)
            .env_clear()
            .envs(plan.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&plan.cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("{}: starting {}", plan.label, plan.program.display()))?;
        Ok(Self {
            pid: child.id(),
            plan: plan.clone(),
            child: Mutex::new(child),
            started: Instant::now(),
        })
    }

    pub(crate) fn exited(&self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_wait()?)
    }

    /// Waits for the process to end until `deadline`; `None` if it is still running.
    pub(crate) async fn wait_until(&self, deadline: Instant) -> anyhow::Result<Option<ExitStatus>> {
        loop {
            if let Some(status) = self.exited()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -<signal> <pid>`, or the whole group with `group`.
    pub(crate) fn signal(&self, signal: &str, group: bool) -> anyhow::Result<()> {
        let target = if group {
            format!("-{}", self.pid)
        } else {
            self.pid.to_string()
        };
        let status = Command::new("kill")
            .args([format!("-{signal}"), "--".to_owned(), target])
            .stderr(Stdio::null())
            .status()?;
        ensure!(status.success(), "kill -{signal} {} failed", self.pid);
        Ok(())
    }

    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.plan.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..]
            .iter()
            .map(|line| match line.char_indices().nth(300) {
                Some((cut, _)) => format!("{}…", &line[..cut]),
                None => (*line).to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// An error about this container, with the end of its log.
    pub(crate) fn fail(&self, what: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!(
            "{}: {what}\n--- last lines of its log ({}) ---\n{}",
            self.plan.label,
            self.plan.log.display(),
            self.log_tail(20)
        )
    }
}

pub(crate) fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => "an unknown status".to_owned(),
    }
}

/// Peak resident memory per container, sampled from /proc over its whole process group.
#[derive(Clone, Default)]
pub(crate) struct MemorySampler {
    groups: Arc<Mutex<BTreeMap<u32, String>>>,
    peaks: Arc<Mutex<BTreeMap<String, u64>>>,
    stopped: Arc<AtomicBool>,
}

impl MemorySampler {
    pub(crate) fn track(&self, process: &Process) {
        self.groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(process.pid, process.plan.label.clone());
    }

    pub(crate) fn start(&self) -> std::thread::JoinHandle<()> {
        let sampler = self.clone();
        std::thread::spawn(move || {
            while !sampler.stopped.load(Ordering::Relaxed) {
                sampler.sample();
                std::thread::sleep(SAMPLE_EVERY);
            }
        })
    }

    fn sample(&self) {
        let groups = self
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut totals: BTreeMap<&String, u64> = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Some(group) = process_group(pid) else {
                continue;
            };
            if let Some(label) = groups.get(&group) {
                *totals.entry(label).or_default() += resident_bytes(pid).unwrap_or(0);
            }
        }
        let mut peaks = self.peaks.lock().unwrap_or_else(PoisonError::into_inner);
        for (label, bytes) in totals {
            let peak = peaks.entry(label.clone()).or_default();
            *peak = (*peak).max(bytes);
        }
    }

    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    pub(crate) fn peak(&self, label: &str) -> Option<u64> {
        self.peaks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(label)
            .copied()
    }
}

/// The process group of `pid`, from /proc/<pid>/stat (after the command name in parentheses:
/// state, ppid, pgrp).
fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after) = stat.rsplit_once(')')?;
    after.split_whitespace().nth(2)?.parse().ok()
}

/// VmRSS of `pid` in bytes.
fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
