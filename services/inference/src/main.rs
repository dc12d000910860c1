use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = pulse_inference::Config::parse();
    let _telemetry = pulse_core::telemetry::init("pulse-inference")?;
    pulse_inference::run(config).await
}
