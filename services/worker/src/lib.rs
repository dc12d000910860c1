//! The worker: turns stream entries into stored analyses, at least once, with an exactly-once
//! effect.
//!
//! [`consumer`] runs the read loop as one member of the `workers` group: up to
//! `WORKER_CONCURRENCY` batches in flight, outages waited out with backoff ([`health`]), and a
//! bounded drain on shutdown. [`reclaim`] decides when to re-read its own pending entries and
//! take over those of dead workers, never touching what is in flight ([`inflight`]).
//! [`processor`] handles one batch: decode, analyse through one `AnalyzeBatch` call, store
//! posts and analyses (with what each post mentions, from [`mentions`]) in one transaction,
//! acknowledge only after the commit, then announce on
//! the event feed. A batch refused for its content is split until the entries at fault are
//! alone; those are retried and dead-lettered after `MAX_DELIVERIES` failures of their own, while
//! an unavailable dependency never counts against an entry. [`trim`] keeps the stream short without dropping pending entries,
//! [`maintenance`] keeps the database's week partitions ahead and its retention behind, and
//! [`dlq`] is the `pulse-worker dlq` command.

pub mod config;
pub mod consumer;
pub mod dlq;
pub mod health;
pub mod inflight;
pub mod maintenance;
pub mod mentions;
pub mod metrics;
pub mod processor;
pub mod reclaim;
pub mod trim;

pub use config::Config;
pub use consumer::{run, serve, serve_with};
