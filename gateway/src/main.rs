use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = pulse_gateway::Config::parse();
    let _telemetry = pulse_core::telemetry::init("pulse-gateway")?;
    pulse_gateway::run(config).await
}
