//! `pulse-bench`: measurements that back the numbers in docs/benchmarks.md.
//!
//! [`inference`] measures the raw ceiling of the model sessions in a tight loop and the
//! inference service under concurrent gRPC load, in the same process and run, so the two are
//! comparable. [`mesh`] measures the running platform from outside (ingest to WebSocket, and
//! WebSocket fan-out). [`load`] fills a database with synthetic posts for the read benchmarks;
//! [`insights`] fills the term rollups of a day at the mesh's rate and times the insights.
//! [`texts`] provides the workload; [`stats`] the percentiles.

pub mod inference;
pub mod insights;
pub mod load;
pub mod mesh;
pub mod stats;
pub mod texts;

use std::path::PathBuf;

/// Command line of `pulse-bench`.
#[derive(Debug, clap::Parser)]
#[command(name = "pulse-bench", version, about = "Pulse benchmarks")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Raw model throughput per batch size, then the gRPC service at several client counts.
    Inference(inference::Options),
    /// The running platform end to end: ingester to WebSocket throughput and latency.
    Mesh(mesh::Options),
    /// WebSocket fan-out: many clients connected to the gateway, each receiving every post.
    Fanout(mesh::FanoutOptions),
    /// Fills a database with synthetic analysed posts spread over days (read benchmarks).
    Load(load::LoadOptions),
    /// The insights' queries over the term rollups of a day of posts at the mesh's rate.
    Insights(insights::InsightsOptions),
}

/// Runs the chosen benchmark.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Inference(options) => inference::run(options).await,
        Command::Mesh(options) => mesh::run(options).await,
        Command::Fanout(options) => mesh::fanout(options).await,
        Command::Load(options) => load::run(options).await,
        Command::Insights(options) => insights::run(options).await,
    }
}

/// Default ONNX Runtime library location of a local set-up.
pub fn default_ort_library() -> PathBuf {
    PathBuf::from(".deps/onnxruntime/libonnxruntime.so.1.31.1")
}
