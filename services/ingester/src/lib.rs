//! The ingester: the entry point of posts into the platform.
//!
//! [`generator`] produces the seed's synthetic posts at `POSTS_PER_MINUTE`; [`service`]
//! implements `pulse.v1.IngestService` for real posts; [`replay`] publishes a JSONL file
//! (`pulse-ingester replay FILE`); [`scenario`] plays a normal mix and then a burst of
//! complaints about one product (`pulse-ingester scenario`), to show the insights at work. All
//! validate every post and append it to the work stream through [`pulse_stream::Producer`], with
//! the trace context of the publish, and all pass the [`backpressure`] gate, which pauses them
//! while the workers are too far behind; the tools share [`publish`].

pub mod backpressure;
pub mod config;
pub mod generator;
pub mod metrics;
pub mod publish;
pub mod replay;
pub mod scenario;
pub mod server;
pub mod service;

pub use config::Config;
pub use server::run;
