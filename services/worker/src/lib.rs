//! The worker: turns stream entries into stored analyses, at least once, with an exactly-once
//! effect.
//!
//! [`consumer`] runs the read loop as one member of the `workers` group (own pending entries
//! first, then new ones, and reclaiming entries of dead workers); [`processor`] handles one
//! batch: decode, analyse through one `AnalyzeBatch` call, store posts and analyses in one
//! transaction, acknowledge only after the commit, then announce on the event feed.

pub mod config;
pub mod consumer;
pub mod metrics;
pub mod processor;

pub use config::Config;
pub use consumer::{run, serve};
