use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = pulse_worker::Config::parse();
    pulse_runtime::telemetry::traced("pulse-worker", pulse_worker::run(config)).await
}
