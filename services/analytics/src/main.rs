use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = pulse_analytics::Config::parse();
    let _telemetry = pulse_core::telemetry::init("pulse-analytics")?;
    pulse_analytics::run(config).await
}
