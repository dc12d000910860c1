use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = pulse_ingester::Config::parse();
    let _telemetry = pulse_core::telemetry::init("pulse-ingester")?;
    pulse_ingester::run(config).await
}
