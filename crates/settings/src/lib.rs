//! Settings that more than one Pulse process reads, declared once.
//!
//! Each binary's `Config` is a `clap::Parser` whose flags fall back to environment variables.
//! The settings below mean the same thing in every process, so they are `clap::Args` groups
//! that a `Config` pulls in with `#[command(flatten)]`:
//!
//! ```
//! use clap::Parser;
//! use pulse_settings::{AdminSettings, DatabaseSettings, RedisSettings};
//!
//! #[derive(Debug, Parser)]
//! struct Config {
//!     #[command(flatten)]
//!     database: DatabaseSettings,
//!     #[command(flatten)]
//!     redis: RedisSettings,
//!     #[command(flatten)]
//!     admin: AdminSettings,
//! }
//!
//! let config = Config::parse_from(["demo", "--database-url", "postgres://app:s3cret@db/pulse"]);
//! // The password never reaches a log line or a panic message.
//! assert_eq!(format!("{:?}", config.database.url), "postgres://app:***@db/pulse");
//! assert_eq!(config.database.url.expose(), "postgres://app:s3cret@db/pulse");
//! assert_eq!(config.admin.addr_or(9102).port(), 9102);
//! ```
//!
//! [`duration`] parses the many timeouts and intervals as [`std::time::Duration`]s: a bare
//! number keeps the unit its flag is named in (`BLOCK_MS=200`), and a unit may be spelled out
//! (`BLOCK_MS=2s`).

pub mod duration;
mod groups;
mod url;

pub use groups::{
    AdminSettings, DatabaseSettings, InferenceSettings, RedisSettings, RetentionSettings,
};
pub use url::ConnectionUrl;
