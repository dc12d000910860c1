//! The analytics service: every read of analysed posts, and the live event feed.
//!
//! [`grpc`] serves `pulse.v1.AnalyticsService`: each read request goes to [`queries`], which
//! validates it and answers from `pulse-store` (distributions through [`cache`], kept in Redis;
//! post totals through [`totals`], kept in memory), and `WatchEvents` goes to [`feed`], which
//! follows `pulse:events` for one subscriber. [`insights`] finds what drives a sentiment (for
//! `GetDrivers` and `GetEntities`, and for the alerts). [`alerts`] is the alert monitor; [`convert`] maps
//! stored rows to the wire types; [`cursor`] reads and writes the page cursors; [`server`] wires
//! them together.
//!
//! Modules import downwards only: `grpc` uses `queries` and `feed`, `feed` uses `queries`, and
//! `queries` uses neither.

pub mod alerts;
pub mod cache;
pub mod config;
pub mod convert;
pub mod cursor;
pub mod feed;
pub mod grpc;
pub mod insights;
pub mod metrics;
pub mod queries;
pub mod server;
pub mod totals;

pub use config::Config;
pub use server::{run, serve};
