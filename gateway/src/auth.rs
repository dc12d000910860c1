//! Who is calling, and what they may do: API keys sent as `Authorization: Bearer <key>`.
//!
//! Keys live in PostgreSQL as SHA-256 digests (`pulse-store keys`). Looking one up on every
//! request would put the database on the path of every read, so answers (found or not) are
//! kept for `AUTH_CACHE_SECS`: that is also how long a revoked key may still be accepted. A
//! presented key is checked for its shape first, so garbage never reaches the database, and
//! the per-address rate limit runs before authentication, so guessing keys is throttled.
//!
//! Every `/api` route needs a scope ([`required_scope`]): `read` for every GET, `write` to
//! publish, `analyze` to run analyses; health and the OpenAPI document are public. With
//! `PUBLIC_READS` a caller without a key may read (a wall dashboard), but a key that is sent
//! must still be valid.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use pulse_store::{
    Pool,
    keys::{self, ApiKey, Scope},
};
use warp::http::{HeaderMap, Method, StatusCode, header::AUTHORIZATION};

use crate::envelope::ApiError;

/// Most cached lookups; past it, expired answers are dropped, and if that is not enough, all.
const CACHE_ENTRIES: usize = 10_000;
/// Longest a key lookup may take before the request fails with 503.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The scope a request needs, or `None` for the public endpoints.
pub fn required_scope(method: &Method, path: &str) -> Option<Scope> {
    match (method, path) {
        (_, "/api/health" | "/api/openapi.json") => None,
        (&Method::OPTIONS, _) => None,
        (&Method::POST, "/api/posts") => Some(Scope::Write),
        (&Method::POST, "/api/analyze") => Some(Scope::Analyze),
        _ => Some(Scope::Read),
    }
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    /// No key: allowed only where reads are public.
    Anonymous,
    Key(Arc<ApiKey>),
}

impl Caller {
    /// The key's id, which names the caller in rate limits and post ids.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Caller::Anonymous => None,
            Caller::Key(key) => Some(&key.id),
        }
    }
}

fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::UNAUTHORIZED,
        code: "UNAUTHENTICATED",
        message: message.into(),
    }
}

/// The key of an `Authorization: Bearer` header; an error for any other use of the header.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| unauthenticated("the Authorization header is not text"))?;
    match value.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty() => {
            Ok(Some(key.trim()))
        }
        _ => Err(unauthenticated(
            "the Authorization header must read `Bearer <key>`",
        )),
    }
}

struct Cached {
    at: Instant,
    key: Option<Arc<ApiKey>>,
}

#[derive(Clone)]
pub struct Authenticator {
    pool: Pool,
    ttl: Duration,
    public_reads: bool,
    cache: Arc<Mutex<HashMap<Vec<u8>, Cached>>>,
}

impl Authenticator {
    pub fn new(pool: Pool, ttl: Duration, public_reads: bool) -> Self {
        Self {
            pool,
            ttl,
            public_reads,
            cache: Arc::default(),
        }
    }

    pub fn public_reads(&self) -> bool {
        self.public_reads
    }

    /// The caller a request's headers name; 401 for a key that is malformed, unknown, revoked
    /// or expired, 503 when keys cannot be looked up.
    pub async fn identify(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        match bearer(headers)? {
            None => Ok(Caller::Anonymous),
            Some(presented) => self.key(presented).await.map(Caller::Key),
        }
    }

    /// The caller, if it may act with `scope`: 401 without a usable key (unless reads are
    /// public and `scope` is read), 403 when the key lacks the scope.
    pub async fn admit(&self, headers: &HeaderMap, scope: Scope) -> Result<Caller, ApiError> {
        let caller = self.identify(headers).await?;
        self.authorize(&caller, scope)?;
        Ok(caller)
    }

    /// Whether `caller` may act with `scope`.
    pub fn authorize(&self, caller: &Caller, scope: Scope) -> Result<(), ApiError> {
        match caller {
            Caller::Anonymous if scope == Scope::Read && self.public_reads => Ok(()),
            Caller::Anonymous => Err(unauthenticated(format!(
                "an API key with the {scope} scope is needed: send `Authorization: Bearer <key>`"
            ))),
            Caller::Key(key) if key.allows(scope) => Ok(()),
            Caller::Key(key) => Err(ApiError {
                status: StatusCode::FORBIDDEN,
                code: "INSUFFICIENT_SCOPE",
                message: format!("key {} lacks the {scope} scope", key.id),
            }),
        }
    }

    /// The active key whose text is `presented`.
    pub async fn key(&self, presented: &str) -> Result<Arc<ApiKey>, ApiError> {
        if keys::id_of(presented).is_none() {
            return Err(unauthenticated("this is not a Pulse API key"));
        }
        let digest = keys::digest(presented);
        let cached = self.cache.lock().ok().and_then(|cache| {
            cache
                .get(&digest)
                .filter(|c| c.at.elapsed() < self.ttl)
                .map(|c| c.key.clone())
        });
        let key = match cached {
            Some(key) => key,
            None => {
                let key = self.look_up(presented).await?.map(Arc::new);
                if let Ok(mut cache) = self.cache.lock() {
                    if cache.len() >= CACHE_ENTRIES {
                        cache.retain(|_, c| c.at.elapsed() < self.ttl);
                        if cache.len() >= CACHE_ENTRIES {
                            cache.clear();
                        }
                    }
                    cache.insert(
                        digest,
                        Cached {
                            at: Instant::now(),
                            key: key.clone(),
                        },
                    );
                }
                key
            }
        };
        match key {
            Some(key) if key.is_active(chrono::Utc::now()) => Ok(key),
            Some(key) if key.revoked_at.is_some() => {
                Err(unauthenticated(format!("key {} was revoked", key.id)))
            }
            Some(key) => Err(unauthenticated(format!("key {} has expired", key.id))),
            None => Err(unauthenticated("unknown API key")),
        }
    }

    async fn look_up(&self, presented: &str) -> Result<Option<ApiKey>, ApiError> {
        let unavailable = |detail: String| {
            tracing::warn!(error = %detail, "API keys cannot be looked up");
            ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "AUTH_UNAVAILABLE",
                message: "API keys cannot be checked right now; retry shortly".into(),
            }
        };
        let lookup = async {
            let client = self.pool.get().await.map_err(|e| e.to_string())?;
            keys::find(&client, presented)
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            Ok(Ok(key)) => Ok(key),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("timed out".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_but_health_and_the_document_needs_a_scope() {
        let cases = [
            (Method::GET, "/api/health", None),
            (Method::GET, "/api/openapi.json", None),
            (Method::GET, "/api/posts", Some(Scope::Read)),
            (Method::GET, "/api/posts/export.csv", Some(Scope::Read)),
            (Method::POST, "/api/posts", Some(Scope::Write)),
            (Method::POST, "/api/analyze", Some(Scope::Analyze)),
            (Method::POST, "/api/ws-ticket", Some(Scope::Read)),
            (Method::GET, "/api/unknown", Some(Scope::Read)),
            (Method::DELETE, "/api/posts", Some(Scope::Read)),
        ];
        for (method, path, scope) in cases {
            assert_eq!(required_scope(&method, path), scope, "{method} {path}");
        }
    }

    #[test]
    fn only_bearer_credentials_are_read() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), Ok(None));
        headers.insert(AUTHORIZATION, "Bearer  pk_x ".parse().expect("h"));
        assert_eq!(bearer(&headers), Ok(Some("pk_x")));
        for bad in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "pk_x"] {
            headers.insert(AUTHORIZATION, bad.parse().expect("h"));
            let refused = bearer(&headers).expect_err(bad);
            assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{bad}");
        }
    }
}
