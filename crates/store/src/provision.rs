//! Creating and dropping databases: used by set-up (create the platform's database when it is
//! missing) and by tests (one throw-away database each, so tests run in parallel).

use std::str::FromStr;

use tokio_postgres::NoTls;

use crate::StoreError;

/// The name of the database in `url`.
pub fn database_name(url: &str) -> Result<String, StoreError> {
    let config =
        tokio_postgres::Config::from_str(url).map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
    config
        .get_dbname()
        .map(str::to_owned)
        .ok_or_else(|| StoreError::InvalidUrl("no database name".into()))
}

/// `url` pointing at another database on the same server.
pub fn with_database(url: &str, database: &str) -> Result<String, StoreError> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..authority_end], database);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

fn check_name(name: &str) -> Result<(), StoreError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::InvalidUrl(format!(
            "database name {name:?} must be 1-63 characters of [A-Za-z0-9_]"
        )))
    }
}

async fn admin_client(url: &str) -> Result<tokio_postgres::Client, StoreError> {
    let admin_url = with_database(url, "postgres")?;
    let (client, connection) = tokio_postgres::connect(&admin_url, NoTls)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "admin connection closed");
        }
    });
    Ok(client)
}

/// Creates the database named in `url` unless it exists. Returns true when it was created.
pub async fn ensure_database(url: &str) -> Result<bool, StoreError> {
    let name = database_name(url)?;
    check_name(&name)?;
    let client = admin_client(url).await?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if exists {
        return Ok(false);
    }
    match client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
    {
        Ok(()) => Ok(true),
        // Another instance created it between the check and the create.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Drops the database named in `url`, disconnecting its sessions.
pub async fn drop_database(url: &str) -> Result<(), StoreError> {
    let name = database_name(url)?;
    check_name(&name)?;
    let client = admin_client(url).await?;
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_the_database_and_keeps_the_rest() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/pulse?sslmode=disable", "t1").ok(),
            Some("postgres://u:p@h:5432/t1?sslmode=disable".to_owned())
        );
        assert_eq!(
            with_database("postgres://h", "t1").ok(),
            Some("postgres://h/t1".to_owned())
        );
        assert_eq!(database_name("postgres://h/abc").ok(), Some("abc".into()));
        assert!(check_name("x; DROP TABLE y").is_err());
    }
}
