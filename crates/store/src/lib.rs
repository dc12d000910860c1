//! Everything Pulse says to PostgreSQL.
//!
//! Every SQL statement of the project lives in this crate, behind typed functions, so a schema
//! change is reviewed in one place. The [`migrate`] runner applies `migrations/*.sql` (embedded
//! at build time) and records what ran; [`provision`] creates databases (set-up, and one per
//! test); [`posts`], [`stats`], [`windows`] and [`alerts`] hold the queries, [`rollups`] says
//! which part of a time range the rollup tables answer, [`partitions`] creates the days ahead
//! and drops those past retention, and [`leader`] elects one instance for once-only jobs.
//! [`terms`] reads the term rollups behind the insights; [`keys`] holds the gateway's API keys.
//! [`cancel`] ends on the server the reads whose caller stopped waiting; [`synthetic`] fills a
//! database for benchmarks.

pub mod alerts;
pub mod cancel;
pub mod error;
pub mod keys;
pub mod leader;
pub mod migrate;
pub mod partitions;
pub mod pool;
pub mod posts;
pub mod provision;
pub mod query;
pub mod rollups;
pub mod stats;
pub mod synthetic;
pub mod terms;
pub mod windows;

pub use cancel::CancelOnDrop;
pub use error::StoreError;
pub use pool::{Pool, connect_pool, connect_read_pool, connect_search_pool};
pub use query::PostQuery;
