//! Command-line and environment configuration.

use std::{net::SocketAddr, time::Duration};

/// A tool to run instead of the worker.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Inspect or replay the dead-letter stream (`<prefix>:posts:dlq`).
    #[command(subcommand)]
    Dlq(DlqCommand),
}

/// What to do with dead letters.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DlqCommand {
    /// Prints dead letters, oldest first: id, original id, deliveries, reason, fields.
    List {
        /// Most entries printed.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Puts dead letters back on the posts stream with their original fields and removes them
    /// from the dead-letter stream (atomically per entry).
    Replay {
        /// Replay every dead letter.
        #[arg(long, conflicts_with = "ids", required_unless_present = "ids")]
        all: bool,
        /// Dead-letter ids (as `dlq list` prints them).
        ids: Vec<String>,
    },
}

/// Every setting of `pulse-worker`; each flag falls back to the environment variable named.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "pulse-worker",
    version,
    about = "Analyses posts from the Pulse stream into PostgreSQL"
)]
pub struct Config {
    /// Run the worker (the default), or a tool.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address of the admin endpoint (/metrics, /healthz, /readyz).
    #[arg(long, env = "ADMIN_ADDR", default_value = "0.0.0.0:9104")]
    pub admin_addr: SocketAddr,

    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/pulse"
    )]
    pub database_url: String,

    /// Most database connections this worker opens.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 4)]
    pub database_pool_size: usize,

    /// gRPC address of the inference service.
    #[arg(long, env = "INFERENCE_URL", default_value = "http://127.0.0.1:50051")]
    pub inference_url: String,

    /// Prefix of every Redis key (`<prefix>:posts`, ...).
    #[arg(long, env = "STREAM_PREFIX", default_value = "pulse")]
    pub stream_prefix: String,

    /// Name of this consumer in the group; unique per instance (defaults to host-pid, and in
    /// Kubernetes HOSTNAME is the pod name).
    #[arg(long, env = "CONSUMER_NAME")]
    pub consumer_name: Option<String>,

    /// Entries read and analysed together (one AnalyzeBatch call, one transaction).
    #[arg(long, env = "BATCH_SIZE", default_value_t = 32)]
    pub batch_size: usize,

    /// Batches processed at the same time by this worker.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,

    /// How long one read waits for new entries, in milliseconds.
    #[arg(long, env = "BLOCK_MS", default_value_t = 1_000)]
    pub block_ms: u64,

    /// Deadline of one batch from read to acknowledgement, in milliseconds; a batch that
    /// overruns it is abandoned and its entries stay pending. Must exceed INFERENCE_TIMEOUT_MS.
    #[arg(long, env = "BATCH_TIMEOUT_MS", default_value_t = 30_000)]
    pub batch_timeout_ms: u64,

    /// Idle time after which a pending entry of any consumer is taken over, in seconds. Must
    /// exceed BATCH_TIMEOUT_MS, so an entry still in flight somewhere is never taken.
    #[arg(long, env = "CLAIM_IDLE_SECS", default_value_t = 60)]
    pub claim_idle_secs: u64,

    /// How often idle entries are looked for (XAUTOCLAIM) and processed entries trimmed from
    /// the stream, in milliseconds.
    #[arg(long, env = "CLAIM_INTERVAL_MS", default_value_t = 10_000)]
    pub claim_interval_ms: u64,

    /// Deliveries after which an entry is dead-lettered instead of retried.
    #[arg(long, env = "MAX_DELIVERIES", default_value_t = 5)]
    pub max_deliveries: u64,

    /// Deadline of one AnalyzeBatch call, in milliseconds.
    #[arg(long, env = "INFERENCE_TIMEOUT_MS", default_value_t = 10_000)]
    pub inference_timeout_ms: u64,

    /// Longest wait between retries while a dependency (Redis, PostgreSQL, inference) is down,
    /// in milliseconds; waits grow exponentially up to it, with jitter.
    #[arg(long, env = "RETRY_MAX_MS", default_value_t = 10_000)]
    pub retry_max_ms: u64,

    /// On SIGTERM, how long batches in flight may take to finish before they are abandoned
    /// (left pending for another worker), in seconds.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// Approximate cap on the events stream's length.
    #[arg(long, env = "EVENTS_MAX_LEN", default_value_t = pulse_stream::events::DEFAULT_EVENTS_MAX_LEN)]
    pub events_max_len: usize,
}

/// A combination of settings that would break a delivery guarantee.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error(
        "CLAIM_IDLE_SECS ({claim_idle:?}) must exceed BATCH_TIMEOUT_MS ({batch_timeout:?}), or \
         entries still in flight would be taken over by another worker"
    )]
    ClaimIdleTooShort {
        claim_idle: Duration,
        batch_timeout: Duration,
    },
    #[error(
        "BATCH_TIMEOUT_MS ({batch_timeout:?}) must exceed INFERENCE_TIMEOUT_MS \
         ({inference_timeout:?}), or every slow inference call abandons its batch"
    )]
    BatchTimeoutTooShort {
        batch_timeout: Duration,
        inference_timeout: Duration,
    },
}

impl Config {
    pub fn consumer_name(&self) -> String {
        self.consumer_name.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "worker".to_owned());
            format!("{host}-{}", std::process::id())
        })
    }

    /// Refuses settings under which an entry could be processed by two workers at once.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("BATCH_SIZE", self.batch_size as u64),
            ("WORKER_CONCURRENCY", self.concurrency as u64),
            ("MAX_DELIVERIES", self.max_deliveries),
            ("CLAIM_INTERVAL_MS", self.claim_interval_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.claim_idle() <= self.batch_timeout() {
            return Err(ConfigError::ClaimIdleTooShort {
                claim_idle: self.claim_idle(),
                batch_timeout: self.batch_timeout(),
            });
        }
        if self.batch_timeout() <= self.inference_timeout() {
            return Err(ConfigError::BatchTimeoutTooShort {
                batch_timeout: self.batch_timeout(),
                inference_timeout: self.inference_timeout(),
            });
        }
        Ok(())
    }

    pub fn block(&self) -> Duration {
        Duration::from_millis(self.block_ms)
    }

    pub fn batch_timeout(&self) -> Duration {
        Duration::from_millis(self.batch_timeout_ms)
    }

    pub fn claim_idle(&self) -> Duration {
        Duration::from_secs(self.claim_idle_secs)
    }

    pub fn claim_interval(&self) -> Duration {
        Duration::from_millis(self.claim_interval_ms)
    }

    pub fn inference_timeout(&self) -> Duration {
        Duration::from_millis(self.inference_timeout_ms)
    }

    pub fn retry_max(&self) -> Duration {
        Duration::from_millis(self.retry_max_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn defaults_keep_claim_idle_above_the_longest_batch() {
        let config = Config::parse_from(["pulse-worker"]);
        assert_eq!(config.check(), Ok(()));
        assert!(config.command.is_none());
    }

    #[test]
    fn unsafe_timeouts_are_refused() {
        let config = Config::parse_from(["pulse-worker", "--claim-idle-secs", "30"]);
        assert!(matches!(
            config.check(),
            Err(ConfigError::ClaimIdleTooShort { .. })
        ));
        let config = Config::parse_from(["pulse-worker", "--batch-timeout-ms", "10000"]);
        assert!(matches!(
            config.check(),
            Err(ConfigError::BatchTimeoutTooShort { .. })
        ));
        let config = Config::parse_from(["pulse-worker", "--concurrency", "0"]);
        assert_eq!(config.check(), Err(ConfigError::Zero("WORKER_CONCURRENCY")));
    }

    #[test]
    fn dlq_commands_parse() {
        let config = Config::parse_from(["pulse-worker", "dlq", "list", "--limit", "5"]);
        assert!(matches!(
            config.command,
            Some(Command::Dlq(DlqCommand::List { limit: 5 }))
        ));
        let config = Config::parse_from(["pulse-worker", "dlq", "replay", "1-0", "2-0"]);
        assert!(
            matches!(config.command, Some(Command::Dlq(DlqCommand::Replay { all: false, ref ids })) if ids.len() == 2)
        );
        assert!(Config::try_parse_from(["pulse-worker", "dlq", "replay"]).is_err());
        assert!(Config::try_parse_from(["pulse-worker", "dlq", "replay", "--all", "1-0"]).is_err());
    }
}
