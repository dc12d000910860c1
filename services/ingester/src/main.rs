use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = pulse_ingester::Config::parse();
    pulse_runtime::telemetry::traced("pulse-ingester", pulse_ingester::run(config)).await
}
