use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = pulse_bench::Cli::parse();
    pulse_bench::run(cli).await
}
