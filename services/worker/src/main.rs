use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = pulse_worker::Config::parse();
    let _telemetry = pulse_core::telemetry::init("pulse-worker")?;
    pulse_worker::run(config).await
}
