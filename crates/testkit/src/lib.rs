//! What every Pulse test sets up, in one place: the test PostgreSQL server and a throw-away
//! database per test, the test Redis, names no other test uses, the ONNX Runtime library and
//! the model bundles, and `TEST_LOG`.
//!
//! Every crate dev-depends on this kit (`pulse-testkit.workspace = true` under
//! `[dev-dependencies]`); it depends on no Pulse crate, so any of them, `pulse-store`
//! included, can use it without a dependency cycle.
//!
//! # The environment
//!
//! | variable | default | read by |
//! |---|---|---|
//! | `TEST_DATABASE_URL` | `postgres://postgres:postgres@127.0.0.1:5432/postgres` | [`database_server_url`]; a database is created per test on that server |
//! | `TEST_REDIS_URL` | `redis://127.0.0.1:6379` | [`redis_url`]; a key prefix is made per test |
//! | `ORT_DYLIB_PATH` | `<repo>/.deps/onnxruntime/libonnxruntime.so.1.31.1` (where `scripts/install.sh` puts it) | [`ort_library`] |
//! | `TEST_LOG` | unset: quiet | [`logs`]: `1` prints the `info` logs of the services a test runs, any other value is a filter (`TEST_LOG=pulse_worker=debug`) |
//!
//! Run with `-- --nocapture` to see logs as they come; otherwise libtest shows a test's
//! output, logs included, only when it fails.
//!
//! # Writing a test
//!
//! Tests run in parallel, as threads of one process: a test never shares a database, a Redis
//! key or a file with another, so it takes its own from the kit and cleans up after itself.
//!
//! - A database: [`TestDatabase::create`] makes a fresh, empty one named after the test's
//!   tag; migrate it with `pulse_store::migrate::run` (`pulse_e2e::migrated_database` does
//!   both), and drop it with [`TestDatabase::drop_now`] at the end. For code that creates the
//!   database itself (`pulse-store migrate`), [`TestDatabase::unique`] only names one.
//! - Redis: [`unique_name`] is a key prefix (`RedisKeys::new(&prefix)`, `STREAM_PREFIX`) no
//!   other test uses; [`delete_redis_keys`] deletes everything under it at the end.
//! - Files and ports: [`temp_path`] is a file of this test's own in the temporary folder;
//!   [`free_address`] a loopback address nothing listens on.
//! - Inference: [`ort_library`] for `Config::ort_library` (or `ORT_DYLIB_PATH` of a child
//!   process), [`default_model_bundle`] or [`model_dir`] for the model directories.
//! - Logs: [`logs`] turns `TEST_LOG` on; [`TestDatabase::unique`] (and so `create`) and
//!   [`redis_url`] call it, so a test that uses either need not.
//!
//! A test of one crate, `crates/<crate>/tests/<concern>.rs`, as `#[tokio::test] async fn
//! name() -> anyhow::Result<()>` with a body like:
//!
//! ```no_run
//! # async fn a_test() -> anyhow::Result<()> {
//! use pulse_testkit::{TestDatabase, delete_redis_keys, redis_url, unique_name};
//!
//! let database = TestDatabase::create("orders").await?; // pulse_test_orders_<uuid>, empty
//! let prefix = unique_name("orders"); // pulse-test-orders-<uuid>
//! let result = async {
//!     // ... connect to `database.url` and `redis_url()` with keys under `prefix`, assert ...
//!     anyhow::Ok(())
//! }
//! .await;
//! delete_redis_keys(&prefix).await?;
//! database.drop_now().await?;
//! result
//! # }
//! ```
//!
//! An end-to-end test is a module of the one `pulse-e2e` test binary: a file
//! `tests/tests/e2e/<concern>.rs` named in `tests/tests/e2e/main.rs`. `pulse_e2e::Platform`
//! starts the five services in the test's process on its own database and prefix (all from
//! this kit), and `pulse_e2e::binary` runs a service's built executable instead. Because
//! every end-to-end test shares one process, a test never changes process-wide state: no
//! `std::env::set_var`, no current-directory change, no global tracing subscriber or
//! OpenTelemetry provider of its own (a child process gets its environment through
//! `Command::env`), and no fixed port (use [`free_address`] or bind port 0).

mod database;
mod inference;
mod logs;
mod names;
mod redis;

pub use database::{DATABASE_ENV, TestDatabase, database_server_url};
pub use inference::{
    DEFAULT_MODEL_BUNDLE, ORT_ENV, default_model_bundle, model_dir, ort_library, workspace_root,
};
pub use logs::{LOG_ENV, logs};
pub use names::{free_address, temp_path, unique_name};
pub use redis::{REDIS_ENV, delete_redis_keys, redis_url};
