use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = pulse_analytics::Config::parse();
    pulse_runtime::telemetry::traced("pulse-analytics", pulse_analytics::run(config)).await
}
