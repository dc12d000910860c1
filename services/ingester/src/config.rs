//! Command-line and environment configuration.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// A tool to run instead of the server.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Publishes the posts of a JSONL file (one `{"post_id", "source", "author", "content",
    /// "created_at"}` object per line, created_at in RFC 3339) to the stream, then prints a
    /// summary. Invalid lines are reported with their number and skipped.
    Replay {
        /// The JSONL file.
        file: PathBuf,
        /// Posts per second; without it, as fast as backpressure allows.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Plays a scripted stream that shows what drives a sentiment shift: first the
    /// generator's normal mix at --rate for --normal-seconds, then a burst of the same mix plus
    /// complaints about one --product (its battery drains, it is overheating) at --burst-rate
    /// for --burst-seconds. Prints one line as each phase starts and a summary with the posts of
    /// each phase at the end; stops on SIGTERM or ctrl-c.
    Scenario(ScenarioArgs),
}

/// The script of `pulse-ingester scenario`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScenarioArgs {
    /// Length of the normal phase, in seconds.
    #[arg(long, env = "SCENARIO_NORMAL_SECONDS", default_value_t = 60.0)]
    pub normal_seconds: f64,
    /// Length of the burst phase, in seconds.
    #[arg(long, env = "SCENARIO_BURST_SECONDS", default_value_t = 30.0)]
    pub burst_seconds: f64,
    /// Posts per second of the normal mix, in both phases.
    #[arg(long, env = "SCENARIO_RATE", default_value_t = 20.0)]
    pub rate: f64,
    /// Complaints per second during the burst, on top of the normal mix.
    #[arg(long, env = "SCENARIO_BURST_RATE", default_value_t = 20.0)]
    pub burst_rate: f64,
    /// The product complained about; one of the insights' default products.
    #[arg(long, env = "SCENARIO_PRODUCT", default_value = "Pixel 9")]
    pub product: String,
    /// Seed of the random draws (templates, products, authors, sources) for a repeatable run;
    /// ids and timestamps are always new. Without it, random.
    #[arg(long, env = "SCENARIO_SEED")]
    pub seed: Option<u64>,
}

/// Every setting of `pulse-ingester`; each flag falls back to the environment variable named.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "pulse-ingester",
    version,
    about = "Publishes posts to the Pulse stream"
)]
pub struct Config {
    /// Serve (the default), or run a tool.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address the IngestService gRPC server listens on.
    #[arg(long, env = "INGESTER_ADDR", default_value = "0.0.0.0:50053")]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub admin: pulse_settings::AdminSettings,

    #[command(flatten)]
    pub redis: pulse_settings::RedisSettings,

    /// Approximate cap on the posts stream's length (XADD MAXLEN ~), a last resort against
    /// unbounded Redis memory; must be at least twice BACKLOG_HIGH_WATER so it never cuts into
    /// the backlog (workers trim processed entries long before).
    #[arg(long, env = "STREAM_MAX_LEN", default_value_t = pulse_stream::producer::DEFAULT_MAX_LEN)]
    pub stream_max_len: usize,

    /// Synthetic posts generated per minute; 0 turns the generator off.
    #[arg(long, env = "POSTS_PER_MINUTE", default_value_t = 60)]
    pub posts_per_minute: u32,

    /// Most posts accepted in one Publish call.
    #[arg(long, env = "MAX_PUBLISH_BATCH", default_value_t = 500)]
    pub max_publish_batch: usize,

    /// Unprocessed entries (the workers group's pending plus lag) at which publishing pauses:
    /// the generator and replay wait, Publish answers RESOURCE_EXHAUSTED.
    #[arg(long, env = "BACKLOG_HIGH_WATER", default_value_t = 10_000)]
    pub backlog_high_water: u64,

    /// Unprocessed entries at or below which publishing resumes after a pause.
    #[arg(long, env = "BACKLOG_LOW_WATER", default_value_t = 5_000)]
    pub backlog_low_water: u64,

    /// How often the backlog is measured, in milliseconds.
    #[arg(
        long = "backlog-poll-ms",
        env = "BACKLOG_POLL_MS",
        value_name = "BACKLOG_POLL_MS",
        default_value = "500",
        value_parser = pulse_settings::duration::millis,
    )]
    pub backlog_poll: Duration,
}

/// Settings that contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "BACKLOG_LOW_WATER ({low}) must be below BACKLOG_HIGH_WATER ({high}), and the high mark above 0"
    )]
    Marks { low: u64, high: u64 },
    #[error(
        "STREAM_MAX_LEN ({max_len}) must be at least twice BACKLOG_HIGH_WATER ({high}), or \
         trimming on append could drop entries still waiting for a worker"
    )]
    MaxLenTooSmall { max_len: usize, high: u64 },
    #[error("BACKLOG_POLL_MS must be at least 1")]
    Poll,
}

impl Config {
    /// Default port of the admin endpoint.
    pub const ADMIN_PORT: u16 = 9103;

    pub fn admin_addr(&self) -> std::net::SocketAddr {
        self.admin.addr_or(Self::ADMIN_PORT)
    }

    /// Refuses settings under which backpressure could not work or trimming could lose work.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.backlog_high_water == 0 || self.backlog_low_water >= self.backlog_high_water {
            return Err(ConfigError::Marks {
                low: self.backlog_low_water,
                high: self.backlog_high_water,
            });
        }
        if (self.stream_max_len as u64) < self.backlog_high_water.saturating_mul(2) {
            return Err(ConfigError::MaxLenTooSmall {
                max_len: self.stream_max_len,
                high: self.backlog_high_water,
            });
        }
        if self.backlog_poll.is_zero() {
            return Err(ConfigError::Poll);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn defaults_are_consistent() {
        let config = Config::parse_from(["pulse-ingester"]);
        assert_eq!(config.check(), Ok(()));
    }

    #[test]
    fn contradictions_are_refused() {
        let config = Config::parse_from(["pulse-ingester", "--backlog-low-water", "10000"]);
        assert!(matches!(config.check(), Err(ConfigError::Marks { .. })));
        let config = Config::parse_from(["pulse-ingester", "--stream-max-len", "15000"]);
        assert!(matches!(
            config.check(),
            Err(ConfigError::MaxLenTooSmall { .. })
        ));
    }

    #[test]
    fn replay_parses() {
        let config =
            Config::parse_from(["pulse-ingester", "replay", "posts.jsonl", "--rate", "50"]);
        assert!(
            matches!(config.command, Some(Command::Replay { ref file, rate: Some(r) }) if file.ends_with("posts.jsonl") && (r - 50.0).abs() < f64::EPSILON)
        );
    }

    #[test]
    fn scenario_parses() {
        let config = Config::parse_from([
            "pulse-ingester",
            "scenario",
            "--normal-seconds",
            "2",
            "--product",
            "Kindle",
            "--seed",
            "9",
        ]);
        assert!(
            matches!(config.command, Some(Command::Scenario(ref args)) if args.product == "Kindle" && args.seed == Some(9) && (args.normal_seconds - 2.0).abs() < f64::EPSILON && (args.burst_seconds - 30.0).abs() < f64::EPSILON)
        );
    }
}
