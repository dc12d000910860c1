//! The test PostgreSQL server and one throw-away database per test on it.

use anyhow::Context;
use tokio_postgres::NoTls;

/// The variable naming the test server (any database on it: the kit connects there to create
/// and drop the tests' databases).
pub const DATABASE_ENV: &str = "TEST_DATABASE_URL";

const DEFAULT_SERVER: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

/// The PostgreSQL server the tests use: `TEST_DATABASE_URL`, or the local one.
pub fn database_server_url() -> String {
    std::env::var(DATABASE_ENV)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
}

/// The URL of database `name` on the test server: the server's URL with its database
/// replaced, credentials and query (`?sslmode=...`) kept.
fn database_url(name: &str) -> String {
    with_database(&database_server_url(), name)
}

fn with_database(server: &str, name: &str) -> String {
    let (base, query) = server.split_once('?').unwrap_or((server, ""));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut url = format!("{}/{name}", &base[..authority_end]);
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// A database of one test on the test server, `pulse_test_<tag>_<uuid>`. Nothing drops it
/// implicitly: call [`TestDatabase::drop_now`] when the test is done with it.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// A name and URL no other test uses, for code under test that creates the database
    /// itself (`pulse-store migrate`). `tag` says which test it is: up to 19 characters of
    /// `[a-z0-9_]`.
    pub fn unique(tag: &str) -> Self {
        crate::logs();
        assert!(
            !tag.is_empty()
                && tag.len() <= 19
                && tag
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "a database tag is 1-19 characters of [a-z0-9_], not {tag:?}"
        );
        let name = format!("pulse_test_{tag}_{}", uuid::Uuid::new_v4().simple());
        let url = database_url(&name);
        Self { name, url }
    }

    /// A fresh, empty database: [`TestDatabase::unique`], created. Migrating it is the
    /// caller's business (`pulse_store::migrate::run`).
    pub async fn create(tag: &str) -> anyhow::Result<Self> {
        let database = Self::unique(tag);
        server()
            .await?
            .batch_execute(&format!("CREATE DATABASE \"{}\"", database.name))
            .await
            .with_context(|| format!("creating database {}", database.name))?;
        Ok(database)
    }

    /// Drops the database (if it exists), disconnecting whoever still uses it.
    pub async fn drop_now(&self) -> anyhow::Result<()> {
        server()
            .await?
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await
            .with_context(|| format!("dropping database {}", self.name))
    }
}

/// A connection to the test server's own database, for `CREATE` and `DROP DATABASE`.
async fn server() -> anyhow::Result<tokio_postgres::Client> {
    let url = database_server_url();
    let (client, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .with_context(|| {
            format!("connecting to the test database server {url} ({DATABASE_ENV})")
        })?;
    tokio::spawn(connection);
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_valid_database_names() {
        let (a, b) = (TestDatabase::unique("store"), TestDatabase::unique("store"));
        assert_ne!(a.name, b.name);
        assert!(a.name.starts_with("pulse_test_store_") && a.name.len() <= 63);
        assert_eq!(a.url, database_url(&a.name));
    }

    #[test]
    fn the_database_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u:p@h:5432/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
    }

    #[test]
    #[should_panic(expected = "a database tag")]
    fn a_tag_that_is_no_identifier_is_refused() {
        TestDatabase::unique("bad-tag; DROP");
    }
}
