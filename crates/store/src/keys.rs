//! API keys: creation, lookup by hash, listing and revocation.
//!
//! A key reads `pk_<id>_<secret>`: `id` is 12 hex digits that name the key anywhere it must be
//! named (logs, rate limits, the namespace of its posts) without revealing it, `secret` 64 hex
//! digits (256 random bits). Only the SHA-256 of the whole key is stored, so a copy of the
//! table grants nothing; a key is shown once, when it is created.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use crate::StoreError;

/// What a key allows. `admin` includes every other scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Every read: posts, charts, alerts, insights, the live feed.
    Read,
    /// Publishing posts.
    Write,
    /// Running analyses on demand.
    Analyze,
    /// Operating the platform (alert settings, dead letters); implies the others.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Analyze, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Analyze => "analyze",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?}: read, write, analyze or admin"))
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether the key may be used at `now`: not revoked and not expired.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }

    /// Whether the key grants `scope` (`admin` grants all).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

/// A key just created: `secret` is the whole key, shown once and never stored.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: String,
}

const PREFIX: &str = "pk_";
/// Length of a key's id, in characters.
pub const ID_LEN: usize = ID_HEX;
const ID_HEX: usize = 12;
const SECRET_HEX: usize = 64;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 the table stores for `key`.
pub fn digest(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// The id of a well-formed key, or `None` for anything that cannot be a key (checked before
/// any lookup, so garbage never reaches the database).
pub fn id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex_digits = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    (hex_digits(id, ID_HEX) && hex_digits(secret, SECRET_HEX)).then_some(id)
}

fn generate() -> (String, String) {
    let mut id = [0_u8; ID_HEX / 2];
    let mut secret = [0_u8; SECRET_HEX / 2];
    let mut rng = rand::rng();
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let id = hex(&id);
    let key = format!("{PREFIX}{id}_{}", hex(&secret));
    (id, key)
}

const COLUMNS: &str = "id, name, scopes, created_at, expires_at, revoked_at";

fn from_row(row: &tokio_postgres::Row) -> ApiKey {
    let scopes: Vec<String> = row.get(2);
    ApiKey {
        id: row.get(0),
        name: row.get(1),
        // The table's CHECK admits only known scopes.
        scopes: scopes.iter().filter_map(|s| s.parse().ok()).collect(),
        created_at: row.get(3),
        expires_at: row.get(4),
        revoked_at: row.get(5),
    }
}

/// Creates a key named `name` with `scopes`, valid until `expires_at` when given.
pub async fn create(
    client: &Client,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
) -> Result<CreatedKey, StoreError> {
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let (id, secret) = generate();
    let row = client
        .query_one(
            &format!(
                "INSERT INTO api_keys (id, name, key_hash, scopes, expires_at)
                 VALUES ($1, $2, $3, $4, $5)
                 RETURNING {COLUMNS}"
            ),
            &[&id, &name, &digest(&secret), &names, &expires_at],
        )
        .await?;
    Ok(CreatedKey {
        key: from_row(&row),
        secret,
    })
}

/// The key whose whole text is `key`, revoked or not; `None` when there is none.
pub async fn find(client: &Client, key: &str) -> Result<Option<ApiKey>, StoreError> {
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1"),
            &[&digest(key)],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Every key, newest first.
pub async fn list(client: &Client) -> Result<Vec<ApiKey>, StoreError> {
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at DESC, id"),
            &[],
        )
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// Revokes the key `id`; false when there is no such key or it was revoked already.
pub async fn revoke(client: &Client, id: &str) -> Result<bool, StoreError> {
    let revoked = client
        .execute(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            &[&id],
        )
        .await?;
    Ok(revoked == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let (id, key) = generate();
        assert_eq!(id_of(&key), Some(id.as_str()));
        let (_, other) = generate();
        assert_ne!(key, other);
        assert_eq!(digest(&key).len(), 32);
    }

    #[test]
    fn malformed_keys_have_no_id() {
        let (_, key) = generate();
        for bad in [
            "",
            "pk_",
            &key[..key.len() - 1],
            &format!("{key}0"),
            &key.replace("pk_", "sk_"),
            &key.to_uppercase(),
            "pk_0123456789ab_zz",
        ] {
            assert_eq!(id_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn admin_allows_everything_and_expiry_is_honoured() {
        let now = Utc::now();
        let mut key = ApiKey {
            id: "0".into(),
            name: "n".into(),
            scopes: vec![Scope::Read],
            created_at: now,
            expires_at: None,
            revoked_at: None,
        };
        assert!(key.allows(Scope::Read) && !key.allows(Scope::Write));
        key.scopes = vec![Scope::Admin];
        assert!(Scope::ALL.iter().all(|s| key.allows(*s)));
        assert!(key.is_active(now));
        key.expires_at = Some(now);
        assert!(!key.is_active(now));
        key.expires_at = None;
        key.revoked_at = Some(now);
        assert!(!key.is_active(now));
        assert_eq!("write".parse::<Scope>(), Ok(Scope::Write));
        assert!("root".parse::<Scope>().is_err());
    }
}
