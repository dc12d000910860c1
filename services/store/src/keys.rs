//! `pulse-store keys`: API keys of the public gateway. A key is printed once, when created;
//! only its SHA-256 is stored, so a lost key is revoked and replaced, never recovered.

use std::io::Write;

use chrono::{TimeDelta, Utc};
use clap::Subcommand;
use pulse_store::{
    Pool,
    keys::{self, Scope},
};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Creates a key and prints it (the only time it is shown) on standard output.
    Create {
        /// Who or what holds the key ("wall dashboard", "crm-export").
        #[arg(long)]
        name: String,
        /// A scope the key grants: read, write, analyze or admin (admin implies the others);
        /// repeat for several.
        #[arg(long = "scope", required = true, value_parser = parse_scope)]
        scopes: Vec<Scope>,
        /// Days until the key expires; without it the key lasts until revoked.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
    },
    /// Lists every key: id, name, scopes, state. Never the keys themselves.
    List,
    /// Revokes the key with this id (the 12 hex digits after `pk_`); gateways stop accepting it
    /// within their cache time (`AUTH_CACHE_SECS`).
    Revoke { id: String },
}

fn parse_scope(raw: &str) -> Result<Scope, String> {
    raw.parse()
}

pub async fn run(pool: &Pool, command: KeysCommand) -> anyhow::Result<bool> {
    let client = pool.get().await?;
    let mut out = std::io::stdout().lock();
    match command {
        KeysCommand::Create {
            name,
            scopes,
            expires_in_days,
        } => {
            let name = name.trim();
            anyhow::ensure!(
                !name.is_empty() && name.chars().count() <= 200,
                "--name must hold 1 to 200 characters"
            );
            let expires_at =
                expires_in_days.map(|days| Utc::now() + TimeDelta::days(i64::from(days)));
            let created = keys::create(&client, name, &scopes, expires_at).await?;
            // The key alone on standard output (logs are JSON lines there too, so the note for
            // a person goes to standard error): `KEY=$(pulse-store keys create ...)` works.
            let granted: Vec<&str> = created.key.scopes.iter().map(|s| s.as_str()).collect();
            eprintln!(
                "created key {} ({name}), scopes {}; it is shown this once",
                created.key.id,
                granted.join(",")
            );
            writeln!(out, "{}", created.secret)?;
        }
        KeysCommand::List => {
            let now = Utc::now();
            writeln!(out, "id\tname\tscopes\tcreated\texpires\tstate")?;
            for key in keys::list(&client).await? {
                let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
                let state = if key.revoked_at.is_some() {
                    "revoked"
                } else if key.is_active(now) {
                    "active"
                } else {
                    "expired"
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{state}",
                    key.id,
                    key.name,
                    scopes.join(","),
                    key.created_at.to_rfc3339(),
                    key.expires_at
                        .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339()),
                )?;
            }
        }
        KeysCommand::Revoke { id } => {
            if !keys::revoke(&client, &id).await? {
                tracing::error!(id, "no active key has this id");
                return Ok(false);
            }
            tracing::info!(id, "key revoked");
        }
    }
    Ok(true)
}
