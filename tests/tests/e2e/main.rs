//! Pulse end to end: one test binary, a module per concern.
//!
//! Every test here runs the real services against the real PostgreSQL, Redis and ONNX
//! Runtime: in this process (`pulse_e2e::Platform`), or as the workspace's built executables
//! (`pulse_e2e::binary`; build them first with `cargo build --workspace --bins`). Set-up values
//! (databases, Redis, prefixes, the ONNX Runtime library, model bundles, `TEST_LOG`) come
//! from `pulse_testkit`, whose documentation shows how to write a test.
//!
//! The tests run as threads of this one process, in parallel, so none of them changes
//! process-wide state: no `std::env::set_var` or current-directory change (a child process
//! gets its environment and folder through `Command`), no tracing subscriber or
//! OpenTelemetry provider of its own (services that export traces run as child processes),
//! and no fixed port. Tests that must not overlap each other share a lock in their module
//! (`cluster_rehearsal` runs one overlay at a time).
//!
//! Run one module with a filter, `cargo test -p pulse-e2e -- faults::`; with `TEST_LOG=1` and
//! `-- --nocapture` the in-process services' logs are printed.

mod api_analytics;
mod api_rest;
mod cluster_rehearsal;
mod exit_with_export;
mod faults;
mod insights;
mod manifests;
mod mesh;
mod observability;
mod process_faults;
mod replay;
mod security;
mod workload;
