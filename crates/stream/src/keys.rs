//! Every Redis key Pulse uses, all derived from one prefix: the streams, the read cache,
//! the rate-limit allowances and the gateway's tickets. No other crate names a key.
//!
//! The default prefix `pulse` gives `pulse:posts`, `pulse:posts:dlq` and `pulse:events`. Tests
//! use a unique prefix each so they never see each other's entries.

/// Consumer group of the workers on the posts stream.
pub const WORKER_GROUP: &str = "workers";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisKeys {
    prefix: String,
}

impl RedisKeys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The work stream of posts waiting for analysis.
    pub fn posts(&self) -> String {
        format!("{}:posts", self.prefix)
    }

    /// Entries that could not be processed, with the reason.
    pub fn dead_letters(&self) -> String {
        format!("{}:posts:dlq", self.prefix)
    }

    /// The failures that pending entry `id` of the posts stream had because of its own content
    /// (see [`crate::failures`]).
    pub fn entry_failures(&self, id: &str) -> String {
        format!("{}:posts:failures:{id}", self.prefix)
    }

    /// Analysed posts and alerts, written after they are stored.
    pub fn events(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// A cache entry of the read side.
    pub fn cache(&self, name: &str) -> String {
        format!("{}:cache:{name}", self.prefix)
    }

    /// The distribution cache entry of one filter, named by a digest of the canonical filter.
    pub fn distribution_cache(&self, digest: &str) -> String {
        self.cache(&format!("distribution:{digest}"))
    }

    /// The rate-limit allowance of one client: `kind` says what identifies it (`ip`, `key`),
    /// `client` is the address block or key id.
    pub fn throttle(&self, kind: &str, client: &str) -> String {
        format!("{}:throttle:{kind}:{client}", self.prefix)
    }

    /// A WebSocket ticket of the gateway (see [`crate::tickets`]).
    pub fn websocket_ticket(&self, ticket: &str) -> String {
        format!("{}:ws-ticket:{ticket}", self.prefix)
    }

    /// The stored answer to an idempotent request: `caller` is the key id, `digest` a digest
    /// of the caller's `Idempotency-Key`.
    pub fn idempotent_reply(&self, caller: &str, digest: &str) -> String {
        self.cache(&format!("idempotency:{caller}:{digest}"))
    }
}

impl Default for RedisKeys {
    fn default() -> Self {
        Self::new("pulse")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keys_match_the_design() {
        let keys = RedisKeys::default();
        assert_eq!(keys.posts(), "pulse:posts");
        assert_eq!(keys.dead_letters(), "pulse:posts:dlq");
        assert_eq!(keys.events(), "pulse:events");
    }
}
