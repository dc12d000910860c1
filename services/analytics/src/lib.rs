//! The analytics service: every read of analysed posts, and the live event feed.
//!
//! [`queries`] turns `pulse.v1.AnalyticsService` requests into `pulse-store` queries (after
//! validating them); [`cache`] keeps distributions in Redis; [`feed`] follows `pulse:events` for
//! `WatchEvents`; [`alerts`] is the alert monitor; [`convert`] maps stored rows to the wire types.

pub mod alerts;
pub mod cache;
pub mod config;
pub mod convert;
pub mod feed;
pub mod metrics;
pub mod queries;
pub mod server;
pub mod totals;

pub use config::Config;
pub use server::{run, serve};
