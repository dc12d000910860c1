use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = pulse_inference::Config::parse();
    pulse_runtime::telemetry::traced("pulse-inference", pulse_inference::run(config)).await
}
