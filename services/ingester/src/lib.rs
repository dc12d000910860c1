//! The ingester: the entry point of posts into the platform.
//!
//! [`generator`] produces the seed's synthetic posts at `POSTS_PER_MINUTE`; [`service`]
//! implements `pulse.v1.IngestService` for real posts. Both validate every post and append it
//! to the work stream through [`pulse_stream::Producer`], with the trace context of the publish.

pub mod config;
pub mod generator;
pub mod metrics;
pub mod server;
pub mod service;

pub use config::Config;
pub use server::run;
