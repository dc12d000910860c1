//! `pulse-store migrate`: creates the database if needed and applies pending migrations.
//! Run once per deploy (a Kubernetes Job) before the services start. `pulse-store maintain` runs
//! one partition maintenance pass (the workers run one every hour). `pulse-store keys` creates,
//! lists and revokes the gateway's API keys.

mod keys;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "pulse-store", version, about = "Pulse database administration")]
struct Cli {
    #[command(flatten)]
    database: pulse_settings::DatabaseSettings,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates the database when missing, then applies every pending migration.
    Migrate,
    /// Lists migrations this build expects that the database lacks; exits 1 when any.
    Status,
    /// Creates the coming weeks' partitions and drops those past retention, once.
    Maintain(pulse_settings::RetentionSettings),
    /// API keys of the gateway: create, list, revoke.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    pulse_runtime::telemetry::traced("pulse-store", run(cli)).await
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Migrate => {
            if pulse_store::provision::ensure_database(cli.database.url.expose()).await? {
                tracing::info!("database created");
            }
            let pool = pulse_store::connect_pool(cli.database.url.expose(), 1)?;
            let mut client = pool.get().await?;
            let applied = pulse_store::migrate::run(&mut client).await?;
            tracing::info!(?applied, "schema is current");
        }
        Command::Status => {
            let pool = pulse_store::connect_pool(cli.database.url.expose(), 1)?;
            let client = pool.get().await?;
            let pending = pulse_store::migrate::pending(&client).await?;
            if !pending.is_empty() {
                tracing::warn!(?pending, "migrations pending");
                return Ok(ExitCode::FAILURE);
            }
            tracing::info!("schema is current");
        }
        Command::Maintain(retention) => {
            let pool = pulse_store::connect_pool(cli.database.url.expose(), 1)?;
            let mut client = pool.get().await?;
            let policy = pulse_store::partitions::Retention::from_days(
                retention.raw_days,
                retention.rollup_days,
            );
            match pulse_store::partitions::maintain(
                &mut client,
                chrono::Utc::now(),
                retention.ahead_days,
                policy,
            )
            .await?
            {
                Some(_) => tracing::info!("partitions are current"),
                None => tracing::info!("another instance is maintaining the partitions"),
            }
        }
        Command::Keys(command) => {
            let pool = pulse_store::connect_pool(cli.database.url.expose(), 1)?;
            if !keys::run(&pool, command).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
