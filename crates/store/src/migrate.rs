//! The migration runner.
//!
//! Migrations are the numbered files of `migrations/`, embedded at build time so the binary
//! that runs them is the one that expects them. Each applied migration is recorded in
//! `schema_migrations` with a checksum; a changed or unknown migration stops the run rather than
//! guessing. An advisory lock serialises concurrent runners (several pods starting at once).

use tokio_postgres::Client;

use crate::StoreError;

/// One numbered schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this build knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial_schema",
        sql: include_str!("../../../migrations/0001_initial_schema.sql"),
    },
    Migration {
        version: 2,
        name: "posts_ingested_at_index",
        sql: include_str!("../../../migrations/0002_posts_ingested_at_index.sql"),
    },
    Migration {
        version: 3,
        name: "read_query_indexes",
        sql: include_str!("../../../migrations/0003_read_query_indexes.sql"),
    },
    Migration {
        version: 4,
        name: "search_trigram_index",
        sql: include_str!("../../../migrations/0004_search_trigram_index.sql"),
    },
    Migration {
        version: 5,
        name: "rollups",
        sql: include_str!("../../../migrations/0005_rollups.sql"),
    },
    Migration {
        version: 6,
        name: "time_partitions",
        sql: include_str!("../../../migrations/0006_time_partitions.sql"),
    },
    Migration {
        version: 7,
        name: "terms",
        sql: include_str!("../../../migrations/0007_terms.sql"),
    },
    Migration {
        version: 8,
        name: "api_keys",
        sql: include_str!("../../../migrations/0008_api_keys.sql"),
    },
];

/// Arbitrary key of the advisory lock held while migrating.
const MIGRATION_LOCK_KEY: i64 = 0x7075_6c73_655f_6d67;

/// FNV-1a, enough to notice an edited file; not a security measure.
fn checksum(sql: &str) -> String {
    let hash = sql.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Applies every pending migration in one transaction; returns the versions applied.
#[tracing::instrument(name = "migrate", skip_all, fields(db.system.name = "postgresql"))]
pub async fn run(client: &mut Client) -> Result<Vec<i64>, StoreError> {
    run_until(client, i64::MAX).await
}

/// Applies the pending migrations up to `last` (inclusive): how a test builds a database as an
/// older release left it, to check that the next migrations convert it.
pub async fn run_until(client: &mut Client, last: i64) -> Result<Vec<i64>, StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT NOT NULL,
             checksum   TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let applied: Vec<(i64, String)> = tx
        .query(
            "SELECT version, checksum FROM schema_migrations ORDER BY version",
            &[],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    for (version, _) in &applied {
        if !MIGRATIONS.iter().any(|m| m.version == *version) {
            return Err(StoreError::UnknownMigration(*version));
        }
    }
    let mut ran = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| m.version <= last) {
        let sum = checksum(migration.sql);
        match applied.iter().find(|(v, _)| *v == migration.version) {
            Some((_, recorded)) if *recorded == sum => continue,
            Some(_) => {
                return Err(StoreError::MigrationChanged {
                    version: migration.version,
                    name: migration.name.to_owned(),
                });
            }
            None => {}
        }
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applying migration"
        );
        tx.batch_execute(migration.sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&migration.version, &migration.name, &sum],
        )
        .await?;
        ran.push(migration.version);
    }
    tx.commit().await?;
    Ok(ran)
}

/// Versions this build expects but the database lacks; empty when the schema is current.
pub async fn pending(client: &Client) -> Result<Vec<i64>, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    let applied: Vec<i64> = if exists {
        client
            .query("SELECT version FROM schema_migrations", &[])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect()
    } else {
        Vec::new()
    };
    Ok(MIGRATIONS
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_strictly_increasing_and_checksums_differ() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        assert_ne!(checksum("a"), checksum("b"));
        assert_eq!(checksum("a"), checksum("a"));
    }
}
