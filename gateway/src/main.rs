use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = pulse_gateway::Config::parse();
    pulse_runtime::telemetry::traced("pulse-gateway", pulse_gateway::run(config)).await
}
