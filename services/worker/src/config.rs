//! Command-line and environment configuration.

use std::time::Duration;

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

    #[command(flatten)]
    pub admin: pulse_settings::AdminSettings,

    #[command(flatten)]
    pub redis: pulse_settings::RedisSettings,

    #[command(flatten)]
    pub database: pulse_settings::DatabaseSettings,

    #[command(flatten)]
    pub retention: pulse_settings::RetentionSettings,

    /// Seconds between partition maintenance passes (partitions ahead, retention behind); the
    /// first runs at start. One worker at a time does the work.
    #[arg(
        long = "maintenance-interval-secs",
        env = "MAINTENANCE_INTERVAL_SECS",
        value_name = "MAINTENANCE_INTERVAL_SECS",
        default_value = "3600",
        value_parser = pulse_settings::duration::secs,
    )]
    pub maintenance_interval: Duration,

    /// Most database connections this worker opens.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 4)]
    pub database_pool_size: usize,

    #[command(flatten)]
    pub inference: pulse_settings::InferenceSettings,

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
    #[arg(
        long = "block-ms",
        env = "BLOCK_MS",
        value_name = "BLOCK_MS",
        default_value = "1000",
        value_parser = pulse_settings::duration::millis,
    )]
    pub block: Duration,

    /// Deadline of one batch from read to acknowledgement, in milliseconds; a batch that
    /// overruns it is abandoned and its entries stay pending. Must exceed INFERENCE_TIMEOUT_MS.
    #[arg(
        long = "batch-timeout-ms",
        env = "BATCH_TIMEOUT_MS",
        value_name = "BATCH_TIMEOUT_MS",
        default_value = "30000",
        value_parser = pulse_settings::duration::millis,
    )]
    pub batch_timeout: Duration,

    /// Idle time after which a pending entry of any consumer is taken over, in seconds. Must
    /// exceed BATCH_TIMEOUT_MS, so an entry still in flight somewhere is never taken.
    #[arg(
        long = "claim-idle-secs",
        env = "CLAIM_IDLE_SECS",
        value_name = "CLAIM_IDLE_SECS",
        default_value = "60",
        value_parser = pulse_settings::duration::secs,
    )]
    pub claim_idle: Duration,

    /// How often idle entries are looked for (XAUTOCLAIM) and processed entries trimmed from
    /// the stream, in milliseconds.
    #[arg(
        long = "claim-interval-ms",
        env = "CLAIM_INTERVAL_MS",
        value_name = "CLAIM_INTERVAL_MS",
        default_value = "10000",
        value_parser = pulse_settings::duration::millis,
    )]
    pub claim_interval: Duration,

    /// Failures by an entry's own fault (its text refused or failed on by inference, its row
    /// rejected) after which it is dead-lettered; failures of an unavailable dependency never
    /// count, however many deliveries they cost.
    #[arg(long, env = "MAX_DELIVERIES", default_value_t = 5)]
    pub max_deliveries: u64,

    /// Deadline of one AnalyzeBatch call, in milliseconds.
    #[arg(
        long = "inference-timeout-ms",
        env = "INFERENCE_TIMEOUT_MS",
        value_name = "INFERENCE_TIMEOUT_MS",
        default_value = "10000",
        value_parser = pulse_settings::duration::millis,
    )]
    pub inference_timeout: Duration,

    /// Longest wait between retries while a dependency (Redis, PostgreSQL, inference) is down,
    /// in milliseconds; waits grow exponentially up to it, with jitter.
    #[arg(
        long = "retry-max-ms",
        env = "RETRY_MAX_MS",
        value_name = "RETRY_MAX_MS",
        default_value = "10000",
        value_parser = pulse_settings::duration::millis,
    )]
    pub retry_max: Duration,

    /// On SIGTERM, how long batches in flight may take to finish before they are abandoned
    /// (left pending for another worker), in seconds.
    #[arg(
        long = "shutdown-grace-secs",
        env = "SHUTDOWN_GRACE_SECS",
        value_name = "SHUTDOWN_GRACE_SECS",
        default_value = "20",
        value_parser = pulse_settings::duration::secs,
    )]
    pub shutdown_grace: Duration,

    /// Extract each post's terms and entities as it is stored, for the insights (what drives a
    /// sentiment); `false` stores posts without them.
    #[arg(long, env = "INSIGHTS_TERMS", default_value_t = true, action = clap::ArgAction::Set)]
    pub insights_terms: bool,

    /// The products and brands posts are searched for: lines of `Name` or `Name: alias,
    /// alias` (`#` starts a comment). Without it, the products of the ingester's generator.
    #[arg(long, env = "ENTITIES_FILE")]
    pub entities_file: Option<std::path::PathBuf>,

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
    /// Default port of the admin endpoint.
    pub const ADMIN_PORT: u16 = 9104;

    pub fn admin_addr(&self) -> std::net::SocketAddr {
        self.admin.addr_or(Self::ADMIN_PORT)
    }

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
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.maintenance_interval.is_zero() {
            return Err(ConfigError::Zero("MAINTENANCE_INTERVAL_SECS"));
        }
        if self.claim_interval.is_zero() {
            return Err(ConfigError::Zero("CLAIM_INTERVAL_MS"));
        }
        if self.claim_idle <= self.batch_timeout {
            return Err(ConfigError::ClaimIdleTooShort {
                claim_idle: self.claim_idle,
                batch_timeout: self.batch_timeout,
            });
        }
        if self.batch_timeout <= self.inference_timeout {
            return Err(ConfigError::BatchTimeoutTooShort {
                batch_timeout: self.batch_timeout,
                inference_timeout: self.inference_timeout,
            });
        }
        Ok(())
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
